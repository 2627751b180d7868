/*
 * lf-equal: the same fill plan through the plain userfaultfd engine and
 * through lazyfill.ko gives byte-identical memory (and the same
 * write-protect bits), with the task's threads faulting while it runs.
 *
 * A child maps three regions at fixed addresses (anonymous, shmem, and
 * anonymous registered for write-protect too), registers them with a uffd
 * and hands the uffd over; its threads read random pages meanwhile. The
 * parent installs every page per the plan, replays part of it (pages
 * present already), then the child dumps its memory into a shared memfd.
 */
#include "kt/kt.h"

#include <pthread.h>
#include <stdbool.h>

#include "fill/fill.h"
#include "fill/fill_kmod.h"

#define R_BASE 0x600000000000ull
#define R_PAGES 1024
#define S_BASE 0x600100000000ull
#define S_PAGES 256
#define W_BASE 0x600200000000ull
#define W_PAGES 256
#define ALL_PAGES (R_PAGES + S_PAGES + W_PAGES)
#define READERS 4
#define MAX_PLAN ALL_PAGES

struct region {
	uint64_t base;
	unsigned pages;
	bool wp;
};

static const struct region regions[3] = {
    {R_BASE, R_PAGES, false}, {S_BASE, S_PAGES, false}, {W_BASE, W_PAGES, true}};

struct step {
	uint64_t dst, len;
	bool zero, wp;
};

static struct step plan[MAX_PLAN];
static struct step sorted[MAX_PLAN]; /* the plan in address order: adjacent extents chain */
static size_t nplan;
static unsigned char *srcbuf; /* pattern source for every page, by page index */

static size_t page_index(uint64_t addr)
{
	size_t off = 0;

	for (int r = 0; r < 3; r++) {
		if (addr >= regions[r].base && addr < regions[r].base + regions[r].pages * PG)
			return off + (addr - regions[r].base) / PG;
		off += regions[r].pages;
	}
	die("address 0x%llx outside the regions", (unsigned long long)addr);
	return 0;
}

static int by_dst(const void *a, const void *b)
{
	const struct step *x = a, *y = b;

	return x->dst < y->dst ? -1 : x->dst > y->dst;
}

static void make_plan(uint64_t seed)
{
	for (int r = 0; r < 3; r++) {
		unsigned p = 0;

		while (p < regions[r].pages) {
			unsigned n = 1 + (unsigned)(rnd(&seed) % 8);

			if (n > regions[r].pages - p)
				n = regions[r].pages - p;
			plan[nplan++] = (struct step){
			    .dst = regions[r].base + (uint64_t)p * PG,
			    .len = (uint64_t)n * PG,
			    .zero = rnd(&seed) % 5 == 0,
			    .wp = regions[r].wp && rnd(&seed) % 2,
			};
			p += n;
		}
	}
	for (size_t i = nplan - 1; i > 0; i--) {
		size_t j = (size_t)(rnd(&seed) % (i + 1));
		struct step t = plan[i];

		plan[i] = plan[j];
		plan[j] = t;
	}
	memcpy(sorted, plan, sizeof(plan));
	qsort(sorted, nplan, sizeof(sorted[0]), by_dst);
	srcbuf =
	    mmap(NULL, ALL_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (srcbuf == MAP_FAILED)
		die("mmap src");
	for (int r = 0; r < 3; r++)
		for (unsigned p = 0; p < regions[r].pages; p++) {
			uint64_t a = regions[r].base + (uint64_t)p * PG;

			kt_pattern(srcbuf + page_index(a) * PG, a);
		}
}

/* ---- the child: the task being restored ---- */

static void *reader(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg * 7919 + 1;
	volatile uint64_t sum = 0;

	for (int i = 0; i < 200; i++) {
		const struct region *g = &regions[rnd(&seed) % 3];
		uint64_t a = g->base + (rnd(&seed) % g->pages) * PG;

		sum += *(volatile uint64_t *)(uintptr_t)a;
	}
	return NULL;
}

static void child(int sock, int outfd)
{
	int uffd, mfd;
	pthread_t th[READERS];
	char c;

	alarm(120);
	kt_map((void *)(uintptr_t)R_BASE, R_PAGES * PG);
	mfd = memfd_create("lf-equal-shmem", 0);
	if (mfd < 0 || ftruncate(mfd, S_PAGES * PG))
		die("memfd");
	if (mmap((void *)(uintptr_t)S_BASE, S_PAGES * PG, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED_NOREPLACE, mfd, 0) == MAP_FAILED)
		die("mmap shmem");
	kt_map((void *)(uintptr_t)W_BASE, W_PAGES * PG);

	uffd = kt_uffd(UFFD_FEATURE_PAGEFAULT_FLAG_WP);
	kt_register(uffd, (void *)(uintptr_t)R_BASE, R_PAGES * PG, UFFDIO_REGISTER_MODE_MISSING);
	kt_register(uffd, (void *)(uintptr_t)S_BASE, S_PAGES * PG, UFFDIO_REGISTER_MODE_MISSING);
	kt_register(uffd, (void *)(uintptr_t)W_BASE, W_PAGES * PG,
		    UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
	kt_send_fd(sock, uffd);
	close(uffd);

	for (long i = 0; i < READERS; i++)
		pthread_create(&th[i], NULL, reader, (void *)i);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);

	kt_read_all(sock, &c, 1); /* the parent is done */
	unsigned char *out =
	    mmap(NULL, ALL_PAGES * PG + ALL_PAGES, PROT_READ | PROT_WRITE, MAP_SHARED, outfd, 0);
	if (out == MAP_FAILED)
		die("mmap out");
	int pm = open("/proc/self/pagemap", O_RDONLY);
	if (pm < 0)
		die("pagemap");
	for (int r = 0; r < 3; r++)
		for (unsigned p = 0; p < regions[r].pages; p++) {
			uint64_t a = regions[r].base + (uint64_t)p * PG, ent = 0;
			size_t i = page_index(a);

			memcpy(out + i * PG, (void *)(uintptr_t)a, PG);
			if (pread(pm, &ent, 8, (off_t)(a / PG * 8)) != 8)
				die("pread pagemap");
			out[ALL_PAGES * PG + i] = (ent >> 57) & 1;
		}
	kt_write_all(sock, "D", 1);
	_exit(0);
}

/* ---- the parent: the filler ---- */

static int fill_plain(int uffd, const struct step *s, void *zero)
{
	struct filler f;
	uint64_t done;

	filler_uffd(&f);
	if (!s->wp)
		return s->zero ? f.ops->zero(f.ctx, uffd, s->dst, s->len, &done)
			       : f.ops->copy(f.ctx, uffd, s->dst, srcbuf + page_index(s->dst) * PG,
					     s->len, &done);
	for (uint64_t off = 0; off < s->len; off += PG) {
		struct uffdio_copy c = {
		    .dst = s->dst + off,
		    .src = (uint64_t)(uintptr_t)(s->zero ? zero
							 : srcbuf + page_index(s->dst + off) * PG),
		    .len = PG,
		    .mode = UFFDIO_COPY_MODE_WP,
		};
		if (ioctl(uffd, UFFDIO_COPY, &c))
			return -errno;
	}
	return 0;
}

static void to_extent(const struct step *s, struct lazyfill_extent *e)
{
	*e = (struct lazyfill_extent){
	    .dst = s->dst,
	    .len = s->len,
	    .src = s->zero ? 0 : (uint64_t)(uintptr_t)(srcbuf + page_index(s->dst) * PG),
	    .mode = s->zero ? LAZYFILL_MODE_ZERO : LAZYFILL_MODE_COPY,
	    .flags = s->wp ? LAZYFILL_EXT_WP : 0,
	};
}

static unsigned char *run(int how, pid_t *cpid_out)
{
	int sv[2], outfd = memfd_create("lf-equal-out", 0);
	size_t outlen = ALL_PAGES * PG + ALL_PAGES;
	static unsigned char zero[PG] __attribute__((aligned(4096)));
	struct lazyfill_extent ext[128];
	struct filler f;
	char c;

	if (outfd < 0 || ftruncate(outfd, (off_t)outlen))
		die("memfd out");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		close(sv[0]);
		child(sv[1], outfd);
	}
	close(sv[1]);
	*cpid_out = pid;
	int uffd = kt_recv_fd(sv[0]);
	uint64_t t0 = now_ns();

	bool kmod = how > 0;
	const struct step *order = how == 2 ? sorted : plan;

	if (kmod) {
		int rc = filler_kmod(&f);
		CHECK(rc == 0, "filler_kmod: %s", strerror(-rc));
		if (how == 1) {
			/*
			 * Bound to the wrong task (this one: a guessed pid gone wrong),
			 * the engine still installs right: the module refuses, the uffd
			 * takes the plain ioctl, and the session is dropped.
			 */
			size_t w = 0;
			while (plan[w].wp)
				w++;
			rc = filler_kmod_attach(&f, uffd, getpid(), -1, NULL);
			CHECK(rc == 0, "attach to the wrong task: %s", strerror(-rc));
			uint64_t done = 0;
			rc = plan[w].zero
				 ? f.ops->zero(f.ctx, uffd, plan[w].dst, plan[w].len, &done)
				 : f.ops->copy(f.ctx, uffd, plan[w].dst,
					       srcbuf + page_index(plan[w].dst) * PG, plan[w].len,
					       &done);
			struct filler_kmod_stats ks;
			filler_kmod_get_stats(&f, &ks);
			CHECK(rc == 0 && done == plan[w].len && ks.dropped == 1 && ks.sessions == 0,
			      "wrong task: rc %d done %llu dropped %u sessions %u", rc,
			      (unsigned long long)done, ks.dropped, ks.sessions);
		}
		/* The child registered before it sent the uffd: a verified attach works. */
		rc = how == 2 ? filler_kmod_attach_verified(&f, uffd, pid, -1, NULL)
			      : filler_kmod_attach(&f, uffd, pid, -1, NULL);
		CHECK(rc == 0, "attach: %s", strerror(-rc));
		for (size_t i = 0; i < nplan; i += 128) {
			uint32_t n = (uint32_t)(nplan - i < 128 ? nplan - i : 128);
			struct lazyfill_batch res;

			for (uint32_t k = 0; k < n; k++)
				to_extent(&order[i + k], &ext[k]);
			rc = filler_kmod_batch(&f, uffd, ext, n, 0, &res);
			CHECK(rc == 0 && res.settled == n, "batch at %zu: %s, settled %u of %u", i,
			      strerror(-rc), res.settled, n);
		}
		/* Replay: everything is present now. */
		for (uint32_t k = 0; k < 50; k++)
			to_extent(&plan[k], &ext[k]);
		struct lazyfill_batch res;
		rc = filler_kmod_batch(&f, uffd, ext, 50, 0, &res);
		CHECK(rc == 0 && res.bytes == 0, "replay: %s, %llu bytes", strerror(-rc),
		      (unsigned long long)res.bytes);
		for (uint32_t k = 0; k < 50; k++)
			CHECK(ext[k].status == LAZYFILL_ST_DONE && ext[k].present == ext[k].len,
			      "replay extent %u: status %u present %llu", k, ext[k].status,
			      (unsigned long long)ext[k].present);
		/* The filler_ops path reports a present page as UFFDIO_COPY does. */
		uint64_t done = 1;
		rc = f.ops->copy(f.ctx, uffd, plan[0].dst, srcbuf, PG, &done);
		CHECK(rc == -EEXIST && done == 0, "ops copy on present: %d done %llu", rc,
		      (unsigned long long)done);
		filler_kmod_close(&f);
	} else {
		for (size_t i = 0; i < nplan; i++) {
			int rc = fill_plain(uffd, &plan[i], zero);
			CHECK(rc == 0, "plain step %zu: %s", i, strerror(-rc));
		}
		for (size_t k = 0; k < 50; k++) {
			int rc = fill_plain(uffd, &plan[k], zero);
			CHECK(rc == -EEXIST, "plain replay %zu: %d", k, rc);
		}
	}
	printf("lf-equal: %s: %zu extents, %u pages in %.1f ms\n",
	       how == 2 ? "kmod, sorted (runs coalesce)"
	       : kmod	? "kmod"
			: "uffd",
	       nplan, ALL_PAGES, (double)(now_ns() - t0) / 1e6);
	kt_write_all(sv[0], "G", 1);
	kt_read_all(sv[0], &c, 1);
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	close(uffd);
	close(sv[0]);
	unsigned char *out = mmap(NULL, outlen, PROT_READ, MAP_SHARED, outfd, 0);
	if (out == MAP_FAILED)
		die("mmap out");
	close(outfd);
	return out;
}

int main(void)
{
	pid_t p1, p2, p3;

	make_plan(42);
	unsigned char *a = run(0, &p1);
	unsigned char *b = run(1, &p2);
	unsigned char *c = run(2, &p3);
	size_t diff = 0, bad = 0, wpbits = 0;

	for (size_t i = 0; i < ALL_PAGES; i++)
		if (memcmp(a + i * PG, b + i * PG, PG) || memcmp(a + i * PG, c + i * PG, PG))
			diff++;
	/* All three against the plan. */
	for (size_t s = 0; s < nplan; s++)
		for (uint64_t off = 0; off < plan[s].len; off += PG) {
			size_t i = page_index(plan[s].dst + off);
			static const unsigned char z[PG];
			const void *want = plan[s].zero ? z : srcbuf + i * PG;

			if (memcmp(b + i * PG, want, PG) || memcmp(a + i * PG, want, PG) ||
			    memcmp(c + i * PG, want, PG))
				bad++;
			if (b[ALL_PAGES * PG + i] != plan[s].wp ||
			    a[ALL_PAGES * PG + i] != plan[s].wp ||
			    c[ALL_PAGES * PG + i] != plan[s].wp)
				bad++;
			wpbits += plan[s].wp;
		}
	CHECK(diff == 0, "%zu pages differ between uffd, kmod and kmod sorted", diff);
	CHECK(bad == 0, "%zu pages (or wp bits) differ from the plan", bad);
	printf("lf-equal: %u pages (%zu write-protected) compared: %zu differ, %zu off-plan\n",
	       ALL_PAGES, wpbits, diff, bad);
	printf("%s\n", kt_failures ? "lf-equal: FAIL" : "lf-equal: ok");
	return kt_failures ? 1 : 0;
}

/*
 * lf-concur: several threads fill one task through lazyfill.ko while the
 * task forks and mremaps (uffd fork and remap events), then a task killed
 * in the middle of large batches; netlink counters and the exit event.
 *
 *   lf-concur [SECONDS]   (default 8: the fork/mremap phase)
 */
#include "kt/kt.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "fill/fill.h"
#include "fill/fill_kmod.h"
#include "lib/lazyfill_nl.h"

#define R_BASE 0x610000000000ull
#define NP 2048
#define MOVABLE 64 /* pages [0, MOVABLE) move to SPARE and back */
#define CHUNK 16
#define SPARE 0x611000000000ull
#define FILLERS 3

static struct filler F;
static int uffd;
static atomic_bool stop_fill, stop_events;
static atomic_long n_batches, n_refused, n_again, n_settled, n_present, n_fault, n_fork, n_remap,
    n_errors;

/* ---- the task ---- */

static atomic_bool readers_stop;
static atomic_long reader_bad;

static void *reader(void *arg)
{
	uint64_t s = (uint64_t)(uintptr_t)arg + 99;

	while (!atomic_load(&readers_stop)) {
		uint64_t a = R_BASE + (MOVABLE + rnd(&s) % (NP - MOVABLE)) * PG;

		if (kt_pattern_of((void *)(uintptr_t)a) != a)
			atomic_fetch_add(&reader_bad, 1);
	}
	return NULL;
}

/* A page of the movable part: made for its address, or for its address while at SPARE. */
static bool movable_ok(uint64_t a)
{
	uint64_t m = kt_pattern_of((void *)(uintptr_t)a);
	uint64_t off = a - R_BASE;

	return m == a || m == SPARE + off % (CHUNK * PG);
}

static void task(int sock, int seconds)
{
	pthread_t th[2];
	char c;
	long forks = 0, moves = 0, bad = 0;

	alarm(seconds + 120);
	kt_map((void *)(uintptr_t)R_BASE, NP * PG);
	if (mmap((void *)(uintptr_t)SPARE, CHUNK * PG, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED)
		die("spare");
	munmap((void *)(uintptr_t)SPARE, CHUNK * PG);
	int u = kt_uffd(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP);
	kt_register(u, (void *)(uintptr_t)R_BASE, NP * PG, UFFDIO_REGISTER_MODE_MISSING);
	kt_send_fd(sock, u);
	close(u);
	for (long i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, reader, (void *)i);

	uint64_t end = now_ns() + (uint64_t)seconds * 1000000000ull, s = 5;
	while (now_ns() < end) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		if (p > 0) {
			waitpid(p, NULL, 0);
			forks++;
		}
		uint64_t from = R_BASE + (rnd(&s) % (MOVABLE / CHUNK)) * CHUNK * PG;
		if (mremap((void *)(uintptr_t)from, CHUNK * PG, CHUNK * PG,
			   MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(uintptr_t)SPARE) == MAP_FAILED)
			die("mremap away");
		/* Touch a page while it is away: a fault at the new address. */
		volatile char *t = (volatile char *)(uintptr_t)(SPARE + (rnd(&s) % CHUNK) * PG);
		(void)*t;
		if (mremap((void *)(uintptr_t)SPARE, CHUNK * PG, CHUNK * PG,
			   MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(uintptr_t)from) == MAP_FAILED)
			die("mremap back");
		moves += 2;
		usleep(2000);
	}
	atomic_store(&readers_stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	kt_write_all(sock, "M", 1); /* done mutating */
	kt_read_all(sock, &c, 1);   /* everything filled */
	for (uint64_t a = R_BASE; a < R_BASE + NP * PG; a += PG) {
		bool ok = a < R_BASE + MOVABLE * PG ? movable_ok(a)
						    : kt_pattern_of((void *)(uintptr_t)a) == a;
		bad += !ok;
	}
	printf("lf-concur: task: %ld forks, %ld mremaps, %ld bad pages, %ld bad reads\n", forks,
	       moves, bad, atomic_load(&reader_bad));
	fflush(stdout);
	_exit(bad || atomic_load(&reader_bad) ? 1 : 0);
}

/* ---- the daemon side ---- */

/* Faults are served here; EAGAIN'd ones are retried after the next read. */
static void *events(void *arg)
{
	static uint64_t retry[4096];
	size_t nretry = 0;
	void *buf = aligned_alloc(PG, PG);

	(void)arg;
	while (!atomic_load(&stop_events)) {
		struct pollfd p = {.fd = uffd, .events = POLLIN};
		struct uffd_msg m;

		poll(&p, 1, 10);
		while (read(uffd, &m, sizeof(m)) == sizeof(m)) {
			switch (m.event) {
			case UFFD_EVENT_PAGEFAULT:
				atomic_fetch_add(&n_fault, 1);
				if (nretry < 4096)
					retry[nretry++] = m.arg.pagefault.address & ~(PG - 1);
				break;
			case UFFD_EVENT_FORK:
				atomic_fetch_add(&n_fork, 1);
				close((int)m.arg.fork.ufd);
				break;
			case UFFD_EVENT_REMAP:
				atomic_fetch_add(&n_remap, 1);
				break;
			}
		}
		size_t keep = 0;
		for (size_t i = 0; i < nretry; i++) {
			struct lazyfill_extent e = {.dst = retry[i],
						    .len = PG,
						    .src = (uint64_t)(uintptr_t)buf,
						    .mode = LAZYFILL_MODE_COPY};
			struct lazyfill_batch r;

			kt_pattern(buf, retry[i]);
			int rc = filler_kmod_batch(&F, uffd, &e, 1, 0, &r);
			if (rc == -EAGAIN)
				retry[keep++] = retry[i];
		}
		nretry = keep;
	}
	free(buf);
	return NULL;
}

static void *filler(void *arg)
{
	uint64_t s = (uint64_t)(uintptr_t)arg * 31 + 7;
	char *buf = aligned_alloc(PG, 32 * 4 * PG);
	struct lazyfill_extent e[32];

	while (!atomic_load(&stop_fill)) {
		uint32_t n = 1 + (uint32_t)(rnd(&s) % 31), k = 0;
		uint64_t start = rnd(&s) % NP;

		/* Sometimes a page where a moved chunk sits, then disjoint runs walking up. */
		if (rnd(&s) % 16 == 0) {
			e[k] = (struct lazyfill_extent){.dst = SPARE + (rnd(&s) % CHUNK) * PG,
							.len = PG,
							.src = (uint64_t)(uintptr_t)buf,
							.mode = LAZYFILL_MODE_COPY};
			kt_pattern(buf, e[k].dst);
			k++;
		}
		for (uint32_t i = 0; i < n; i++) {
			uint64_t len = 1 + rnd(&s) % 4;

			if (start + len > NP)
				break;
			e[k] = (struct lazyfill_extent){
			    .dst = R_BASE + start * PG,
			    .len = len * PG,
			    .src = (uint64_t)(uintptr_t)(buf + (size_t)k * 4 * PG),
			    .mode = LAZYFILL_MODE_COPY};
			for (uint64_t p = 0; p < len; p++)
				kt_pattern(buf + ((size_t)k * 4 + p) * PG, e[k].dst + p * PG);
			start += len + rnd(&s) % 8;
			k++;
		}
		if (!k)
			continue;
		struct lazyfill_batch r;
		int rc = filler_kmod_batch(&F, uffd, e, k, 0, &r);
		atomic_fetch_add(&n_batches, 1);
		if (rc && r.settled == 0 && r.bytes == 0 && e[0].status == LAZYFILL_ST_NOTRUN)
			atomic_fetch_add(&n_refused, 1);
		if (rc == -EAGAIN)
			atomic_fetch_add(&n_again, 1);
		for (uint32_t i = 0; i < k; i++) {
			if (e[i].status == LAZYFILL_ST_DONE)
				atomic_fetch_add(&n_settled, 1);
			if (e[i].present)
				atomic_fetch_add(&n_present, 1);
			if (e[i].status == LAZYFILL_ST_ERROR && e[i].error != -ENOENT)
				atomic_fetch_add(&n_errors, 1);
		}
	}
	free(buf);
	return NULL;
}

/* Fill every page of the task at its original address, until all settled. */
static void final_sweep(void)
{
	char *buf = aligned_alloc(PG, 64 * PG);
	struct lazyfill_extent e[64];

	for (uint64_t p = 0; p < NP; p += 64) {
		for (int tries = 0; tries < 1000; tries++) {
			for (int i = 0; i < 64; i++) {
				uint64_t a = R_BASE + (p + (uint64_t)i) * PG;

				kt_pattern(buf + (size_t)i * PG, a);
				e[i] = (struct lazyfill_extent){
				    .dst = a,
				    .len = PG,
				    .src = (uint64_t)(uintptr_t)(buf + (size_t)i * PG),
				    .mode = LAZYFILL_MODE_COPY};
			}
			struct lazyfill_batch r;
			int rc = filler_kmod_batch(&F, uffd, e, 64, 0, &r);
			if (!rc)
				break;
			CHECK(rc == -EAGAIN, "final sweep at page %llu: %s", (unsigned long long)p,
			      strerror(-rc));
			if (rc != -EAGAIN)
				break;
			usleep(1000);
		}
	}
	free(buf);
}

static void phase_mutate(int seconds)
{
	int sv[2];
	char c;
	pthread_t ev, th[FILLERS];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair");
	pid_t pid = fork();
	if (!pid) {
		close(sv[0]);
		task(sv[1], seconds);
	}
	close(sv[1]);
	uffd = kt_recv_fd(sv[0]);
	int rc = filler_kmod_attach(&F, uffd, pid, -1, NULL);
	if (rc)
		die("attach: %s", strerror(-rc));
	pthread_create(&ev, NULL, events, NULL);
	for (long i = 0; i < FILLERS; i++)
		pthread_create(&th[i], NULL, filler, (void *)i);
	kt_read_all(sv[0], &c, 1);
	atomic_store(&stop_fill, true);
	for (int i = 0; i < FILLERS; i++)
		pthread_join(th[i], NULL);
	final_sweep();
	kt_write_all(sv[0], "V", 1);
	int st;
	waitpid(pid, &st, 0);
	atomic_store(&stop_events, true);
	pthread_join(ev, NULL);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "task status 0x%x", st);
	CHECK(atomic_load(&n_errors) == 0, "%ld unexpected extent errors", atomic_load(&n_errors));
	CHECK(atomic_load(&n_fork) > 0 && atomic_load(&n_remap) > 0, "no fork/remap events");
	printf("lf-concur: mutate: %ld batches (%ld refused, %ld EAGAIN), %ld extents settled, "
	       "%ld with present pages, %ld faults, %ld fork and %ld remap events\n",
	       atomic_load(&n_batches), atomic_load(&n_refused), atomic_load(&n_again),
	       atomic_load(&n_settled), atomic_load(&n_present), atomic_load(&n_fault),
	       atomic_load(&n_fork), atomic_load(&n_remap));
	filler_kmod_detach(&F, uffd);
	close(uffd);
	close(sv[0]);
}

/* ---- a task killed in the middle of large batches ---- */

#define K_PAGES 8192 /* 32 MiB */
static atomic_long k_esrch, k_batches;

static void *big_filler(void *arg)
{
	char *buf = aligned_alloc(PG, 1024 * PG);
	struct lazyfill_extent *e = calloc(256, sizeof(*e));
	uint64_t base = (uint64_t)(uintptr_t)arg;

	memset(buf, 0x77, 1024 * PG);
	for (int round = 0; round < 1000; round++) {
		for (int i = 0; i < 256; i++)
			e[i] = (struct lazyfill_extent){
			    .dst = base + ((uint64_t)(round * 256 + i) % (K_PAGES / 4)) * 4 * PG,
			    .len = 4 * PG,
			    .src = (uint64_t)(uintptr_t)(buf + (size_t)i * 4 * PG),
			    .mode = LAZYFILL_MODE_COPY};
		struct lazyfill_batch r;
		int rc = filler_kmod_batch(&F, uffd, e, 256, 0, &r);
		atomic_fetch_add(&k_batches, 1);
		if (rc == -ESRCH) {
			atomic_fetch_add(&k_esrch, 1);
			break;
		}
	}
	free(buf);
	free(e);
	return NULL;
}

static void phase_exit(void)
{
	int sv[2];
	struct lazyfill_nl *nl;
	uint32_t sid;
	pthread_t th[FILLERS];

	int rc = lazyfill_nl_open(&nl);
	CHECK(rc == 0, "netlink open: %s", strerror(-rc));
	if (rc)
		return;
	rc = lazyfill_nl_subscribe(nl);
	CHECK(rc == 0, "netlink subscribe: %s", strerror(-rc));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair");
	pid_t pid = fork();
	if (!pid) {
		void *r = kt_map((void *)(uintptr_t)R_BASE, K_PAGES * PG);
		int u = kt_uffd(0);

		kt_register(u, r, K_PAGES * PG, UFFDIO_REGISTER_MODE_MISSING);
		kt_send_fd(sv[1], u);
		(void)*(volatile char *)r; /* blocked in a fault until filled */
		for (;;)
			pause();
	}
	close(sv[1]);
	uffd = kt_recv_fd(sv[0]);
	rc = filler_kmod_attach(&F, uffd, pid, -1, &sid);
	if (rc)
		die("attach: %s", strerror(-rc));
	for (long i = 0; i < FILLERS; i++)
		pthread_create(&th[i], NULL, big_filler, (void *)(uintptr_t)R_BASE);
	usleep(300 * 1000);
	struct lazyfill_nl_stats st;
	rc = lazyfill_nl_get(nl, sid, &st);
	CHECK(rc == 0 && st.session == sid && st.pid == (uint32_t)pid && st.batches > 0,
	      "session stats: %s, session %u pid %u batches %llu", strerror(-rc), st.session,
	      st.pid, (unsigned long long)st.batches);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (int i = 0; i < FILLERS; i++)
		pthread_join(th[i], NULL);
	CHECK(atomic_load(&k_esrch) == FILLERS, "%ld of %d fillers saw ESRCH",
	      atomic_load(&k_esrch), FILLERS);

	struct lazyfill_nl_stats ev;
	int got = 0;
	for (int i = 0; i < 50 && !got; i++) {
		rc = lazyfill_nl_event(nl, &ev, 100);
		if (rc == 1 && ev.session == sid)
			got = 1;
	}
	CHECK(got && ev.pid == (uint32_t)pid && ev.exited, "no exit event for session %u", sid);
	/* After the exit: ESRCH, and the session still answers netlink. */
	struct lazyfill_extent e = {.dst = R_BASE, .len = PG, .mode = LAZYFILL_MODE_ZERO};
	rc = filler_kmod_batch(&F, uffd, &e, 1, 0, NULL);
	CHECK(rc == -ESRCH, "fill after exit: %d", rc);
	rc = lazyfill_nl_get(nl, sid, &st);
	CHECK(rc == 0 && st.exited, "stats after exit: %d exited %d", rc, st.exited);
	size_t n = 0;
	struct lazyfill_nl_stats all[8];
	rc = lazyfill_nl_list(nl, all, 8, &n);
	CHECK(rc == 0 && n >= 1, "list: %d n %zu", rc, n);
	printf("lf-concur: exit: %ld batches, session %u: %llu batches %llu pages %llu wakes; "
	       "exit event %s\n",
	       atomic_load(&k_batches), sid, (unsigned long long)st.batches,
	       (unsigned long long)st.pages, (unsigned long long)st.wakes,
	       got ? "seen" : "MISSING");
	filler_kmod_detach(&F, uffd);
	close(uffd);
	close(sv[0]);
	rc = lazyfill_nl_get(nl, sid, &st);
	CHECK(rc == -ENOENT, "closed session still listed: %d", rc);
	lazyfill_nl_close(nl);
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 8;
	int rc = filler_kmod(&F);

	if (rc)
		die("filler_kmod: %s", strerror(-rc));
	phase_mutate(seconds);
	phase_exit();
	filler_kmod_close(&F);
	printf("%s\n", kt_failures ? "lf-concur: FAIL" : "lf-concur: ok");
	return kt_failures ? 1 : 0;
}

/*
 * lf-fillbench: the two fill engines through the filler_batch() wrapper (fill.h), as
 * criu-lazyd calls them, in one run: the kmod engine (lazyfill.ko's batch entry point, up
 * to 128 extents per ioctl) against the uffd engine (filler_batch()'s fallback: one
 * UFFDIO_COPY per extent).
 *
 *   lf-fillbench [PAGES] [REPEAT]   (default 8192 pages, best of 5)
 *
 * The process fills a region of its own (registered with its uffd, never touched: no
 * waiters), emptied with MADV_DONTNEED between runs; the engines alternate within each
 * repeat. Every run is checked: each extent settled, and its first and last bytes are the
 * source's. The kmod engine's counters must show it went through the module; before the
 * timing, both engines must report a batch that meets a present page alike.
 */
#include "kt/kt.h"

#include "fill/fill.h"
#include "fill/fill_kmod.h"

#define SRC_PAGES 1024

static char *reg, *src;
static size_t reg_pages;
static int uffd;

/* Source address of data page i (the buffer wraps around every SRC_PAGES pages). */
static const void *S(size_t i)
{
	return src + (i % SRC_PAGES) * PG;
}

static void shuffle(struct fill_extent *x, size_t n, uint64_t seed)
{
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(rnd(&seed) % (i + 1));
		struct fill_extent t = x[i];

		x[i] = x[j];
		x[j] = t;
	}
}

static void check(const struct filler *f, const struct fill_extent *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *d = (const uint8_t *)(uintptr_t)x[i].dst, *s = x[i].src;

		if (x[i].result || x[i].done != x[i].len)
			die("%s: extent %zu: result %d, done %llu of %llu", f->ops->name, i,
			    x[i].result, (unsigned long long)x[i].done,
			    (unsigned long long)x[i].len);
		if (d[0] != s[0] || d[x[i].len - 1] != s[x[i].len - 1])
			die("%s: extent %zu: not the source's data", f->ops->name, i);
	}
}

/*
 * Before timing: both engines report a batch that meets a present page alike (fill.h):
 * -EEXIST, *first at that extent, the extents before it settled, its done the bytes
 * before the page. (After it, the uffd engine stops; the module goes on.)
 */
static void same_stop(struct filler *f)
{
	struct fill_extent e[4] = {
	    {.dst = (uintptr_t)reg, .len = 2 * PG, .src = S(0)},
	    {.dst = (uintptr_t)reg + 4 * PG, .len = PG, .src = NULL},
	    {.dst = (uintptr_t)reg + 8 * PG, .len = 4 * PG, .src = S(8)},
	    {.dst = (uintptr_t)reg + 16 * PG, .len = PG, .src = S(16)},
	};
	uint64_t done;
	uint32_t first = 99;
	int rc;

	madvise(reg, reg_pages * PG, MADV_DONTNEED);
	if (f->ops->copy(f->ctx, uffd, (uintptr_t)reg + 10 * PG, S(100), PG, &done))
		die("%s: copy", f->ops->name);
	rc = filler_batch(f, uffd, e, 4, &first);
	if (rc != -EEXIST || first != 2 || e[0].result || e[0].done != 2 * PG || e[1].result ||
	    e[1].done != PG || e[2].result != -EEXIST || e[2].done != 2 * PG)
		die("%s: a batch meeting a present page: rc %d first %u, results %d %d %d, done "
		    "%llu %llu %llu",
		    f->ops->name, rc, first, e[0].result, e[1].result, e[2].result,
		    (unsigned long long)e[0].done, (unsigned long long)e[1].done,
		    (unsigned long long)e[2].done);
	if (reg[10 * PG] != *(const char *)S(100))
		die("%s: a present page was overwritten", f->ops->name);
}

/* One fill of x[0..n), per_call extents per filler_batch() call: ms. */
static double run(struct filler *f, struct fill_extent *x, size_t n, uint32_t per_call)
{
	madvise(reg, reg_pages * PG, MADV_DONTNEED);
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < n; i += per_call) {
		uint32_t k = (uint32_t)(n - i < per_call ? n - i : per_call), first;
		int rc = filler_batch(f, uffd, x + i, k, &first);

		if (rc)
			die("%s: filler_batch: extent %zu: %s", f->ops->name, i + first,
			    strerror(-rc));
	}
	double ms = (double)(now_ns() - t0) / 1e6;

	check(f, x, n);
	return ms;
}

static void bench(struct filler *u, struct filler *k, const char *name, struct fill_extent *x,
		  size_t n, uint32_t per_call, int repeat)
{
	double bu = 1e30, bk = 1e30;
	size_t pages = 0;

	for (size_t i = 0; i < n; i++)
		pages += x[i].len / PG;
	for (int r = 0; r < repeat; r++) {
		double tu = run(u, x, n, per_call), tk = run(k, x, n, per_call);

		bu = tu < bu ? tu : bu;
		bk = tk < bk ? tk : bk;
	}
	printf("%-24s %7zu %6zu %5u %9.1f %9.1f %7.2fx\n", name, n, pages, per_call, bu, bk,
	       bu / bk);
}

int main(int argc, char **argv)
{
	size_t pages = argc > 1 ? (size_t)atol(argv[1]) : 8192;
	int repeat = argc > 2 ? atoi(argv[2]) : 5;
	struct fill_extent *x;
	struct filler u, k;
	struct fill_stats st;
	int rc;

	if (pages < 64 || pages > (1u << 20) || repeat < 1)
		die("usage: lf-fillbench [PAGES 64..1048576] [REPEAT >= 1]");
	x = calloc(pages, sizeof(*x));
	if (!x)
		die("calloc");
	reg_pages = pages * 2;
	reg = kt_map(NULL, reg_pages * PG);
	src = kt_map(NULL, SRC_PAGES * PG);
	for (size_t i = 0; i < SRC_PAGES; i++)
		memset(src + i * PG, (int)(i * 7 + 1), PG);
	uffd = kt_uffd(0);
	kt_register(uffd, reg, reg_pages * PG, UFFDIO_REGISTER_MODE_MISSING);
	filler_uffd(&u);
	rc = filler_kmod(&k);
	if (rc)
		die("filler_kmod: %s", strerror(-rc));
	rc = filler_attach(&k, uffd, getpid(), -1, false);
	if (rc)
		die("filler_attach: %s", strerror(-rc));

	same_stop(&u);
	same_stop(&k);
	printf("\nfiller_batch(): kmod engine (lazyfill.ko batches) vs uffd engine (one "
	       "UFFDIO_COPY per extent): best of %d runs, ms; ratio = uffd time / kmod time "
	       "(> 1: the batch is faster)\n",
	       repeat);
	printf("%-24s %7s %6s %5s %9s %9s %8s\n", "case", "extents", "pages", "call", "uffd",
	       "kmod", "ratio");
	/* Scattered single pages: every other page, in random order. */
	for (size_t i = 0; i < pages; i++)
		x[i] = (struct fill_extent){
		    .dst = (uintptr_t)reg + 2 * i * PG, .len = PG, .src = S(i)};
	shuffle(x, pages, 1);
	bench(&u, &k, "scattered 4K", x, pages, 512, repeat);
	bench(&u, &k, "scattered 4K", x, pages, 64, repeat);
	/* Adjacent single pages, data contiguous too, in address order. */
	for (size_t i = 0; i < pages; i++)
		x[i] = (struct fill_extent){.dst = (uintptr_t)reg + i * PG, .len = PG, .src = S(i)};
	bench(&u, &k, "adjacent 4K, src contig", x, pages, 512, repeat);
	/* Contiguous runs of 16 pages (64 KiB), scattered. */
	size_t runs = pages / 16;
	for (size_t i = 0; i < runs; i++)
		x[i] = (struct fill_extent){
		    .dst = (uintptr_t)reg + 32 * i * PG, .len = 16 * PG, .src = S(16 * i)};
	shuffle(x, runs, 2);
	bench(&u, &k, "runs of 16 pages (64K)", x, runs, 64, repeat);

	filler_stats(&k, &st);
	printf("kmod engine: %llu module calls, %llu MiB through them, %llu plain calls, %u "
	       "session(s)\n",
	       (unsigned long long)st.batches, (unsigned long long)(st.batch_bytes >> 20),
	       (unsigned long long)st.plain_calls, st.sessions);
	if (!st.batches || st.plain_calls)
		die("the kmod engine did not go through the module alone");
	filler_detach(&k, uffd);
	filler_close(&k);
	filler_close(&u);
	close(uffd);
	free(x);
	return 0;
}

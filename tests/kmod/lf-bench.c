/*
 * lf-bench: lazyfill.ko batches vs one UFFDIO_COPY per extent, for
 * scattered 4 KiB pages and for contiguous runs, in one run.
 *
 *   lf-bench [PAGES] [REPEAT]   (default 8192 pages, best of 5)
 *
 * The process fills a region of its own (registered with its uffd, never
 * touched: no waiters), emptied with MADV_DONTNEED between runs. "nowake"
 * is the batch with LAZYFILL_FILL_NOWAKE: the install part alone, without
 * the one UFFDIO_WAKE per merged range that a batch otherwise ends with.
 */
#include "kt/kt.h"

struct ext {
	uint64_t dst, len, src;
};

#define SRC_PAGES 1024

static char *reg, *src;
static size_t reg_pages;
static int uffd, sfd;

static double run_uffd(const struct ext *x, size_t n)
{
	madvise(reg, reg_pages * PG, MADV_DONTNEED);
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < n; i++) {
		struct uffdio_copy c = {
		    .dst = x[i].dst, .src = (uint64_t)(uintptr_t)src, .len = x[i].len};

		if (ioctl(uffd, UFFDIO_COPY, &c))
			die("UFFDIO_COPY");
	}
	return (double)(now_ns() - t0) / 1e6;
}

static double run_kmod(const struct ext *x, size_t n, uint32_t per_batch, uint32_t flags)
{
	static struct lazyfill_extent e[LAZYFILL_MAX_EXTENTS];

	madvise(reg, reg_pages * PG, MADV_DONTNEED);
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < n; i += per_batch) {
		uint32_t k = (uint32_t)(n - i < per_batch ? n - i : per_batch);
		struct lazyfill_batch h;

		for (uint32_t j = 0; j < k; j++)
			e[j] = (struct lazyfill_extent){.dst = x[i + j].dst,
							.len = x[i + j].len,
							.src = x[i + j].src,
							.mode = LAZYFILL_MODE_COPY};
		int rc = kt_fill(sfd, e, k, flags, NULL, 0, &h);
		if (rc || h.settled != k)
			die("batch: %s", strerror(-rc));
	}
	return (double)(now_ns() - t0) / 1e6;
}

/* Source address of data page i (the buffer wraps around every SRC_PAGES pages). */
static uint64_t S(size_t i)
{
	return (uint64_t)(uintptr_t)src + (i % SRC_PAGES) * PG;
}

static void shuffle(struct ext *x, size_t n, uint64_t seed)
{
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(rnd(&seed) % (i + 1));
		struct ext t = x[i];

		x[i] = x[j];
		x[j] = t;
	}
}

static void bench(const char *name, struct ext *x, size_t n, uint32_t per_batch, int repeat)
{
	double bu = 1e30, bk = 1e30, bn = 1e30;
	size_t pages = 0;

	for (size_t i = 0; i < n; i++)
		pages += x[i].len / PG;
	for (int r = 0; r < repeat; r++) {
		double u = run_uffd(x, n), k = run_kmod(x, n, per_batch, 0);
		double w = run_kmod(x, n, per_batch, LAZYFILL_FILL_NOWAKE);

		bu = u < bu ? u : bu;
		bk = k < bk ? k : bk;
		bn = w < bn ? w : bn;
	}
	printf("%-24s %7zu %6zu %5u %9.1f %9.1f %7.2fx %9.1f %7.2fx\n", name, n, pages, per_batch,
	       bu, bk, bu / bk, bn, bu / bn);
}

int main(int argc, char **argv)
{
	size_t pages = argc > 1 ? (size_t)atol(argv[1]) : 8192;
	int repeat = argc > 2 ? atoi(argv[2]) : 5;
	struct ext *x = calloc(pages, sizeof(*x));

	reg_pages = pages * 2;
	reg = kt_map(NULL, reg_pages * PG);
	src = kt_map(NULL, SRC_PAGES * PG);
	memset(src, 0xab, SRC_PAGES * PG);
	uffd = kt_uffd(0);
	kt_register(uffd, reg, reg_pages * PG, UFFDIO_REGISTER_MODE_MISSING);
	sfd = kt_session(uffd, getpid(), NULL);
	if (sfd < 0)
		die("bind: %s", strerror(-sfd));

	printf("lazyfill batch vs one UFFDIO_COPY per extent: best of %d runs, ms; ratio = uffd "
	       "time / kmod time (> 1: the batch is faster); nowake: the batch without its wakes\n",
	       repeat);
	printf("%-24s %7s %6s %5s %9s %9s %8s %9s %8s\n", "case", "extents", "pages", "batch",
	       "uffd", "kmod", "ratio", "nowake", "ratio");
	/* Scattered single pages: every other page, in random order. */
	for (size_t i = 0; i < pages; i++)
		x[i] = (struct ext){(uint64_t)(uintptr_t)reg + 2 * i * PG, PG, S(i)};
	shuffle(x, pages, 1);
	bench("scattered 4K", x, pages, 512, repeat);
	bench("scattered 4K", x, pages, 64, repeat);
	/* Adjacent single pages (merged wakes), in address order. */
	for (size_t i = 0; i < pages; i++)
		x[i] = (struct ext){(uint64_t)(uintptr_t)reg + i * PG, PG, S(2 * i)};
	bench("adjacent 4K, src apart", x, pages, 512, repeat);
	/* The same with the data contiguous too: each batch is one run. */
	for (size_t i = 0; i < pages; i++)
		x[i] = (struct ext){(uint64_t)(uintptr_t)reg + i * PG, PG, S(i)};
	bench("adjacent 4K, src contig", x, pages, 512, repeat);
	/* Contiguous runs of 16 and 64 pages, scattered. */
	size_t runs = pages / 16;
	for (size_t i = 0; i < runs; i++)
		x[i] = (struct ext){(uint64_t)(uintptr_t)reg + 32 * i * PG, 16 * PG, S(16 * i)};
	shuffle(x, runs, 2);
	bench("runs of 16 pages (64K)", x, runs, 64, repeat);
	runs = pages / 64;
	for (size_t i = 0; i < runs; i++)
		x[i] = (struct ext){(uint64_t)(uintptr_t)reg + 128 * i * PG, 64 * PG, S(64 * i)};
	shuffle(x, runs, 3);
	bench("runs of 64 pages (256K)", x, runs, 16, repeat);
	close(sfd);
	close(uffd);
	return 0;
}

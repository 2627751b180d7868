/* criu-imgd's per-image cache of checksums and zero pages (lazy-pages/imgd/sumcache.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imgd/sumcache.h"
#include "wire/wire.h"

#define P WIRE_PAGE
#define NP 80 /* pages in the test's pages file */

static int pfd = -1;

/* A real pages file: random pages, with zero pages at 0, 5, 31..33 and 79. */
static void make_file(void)
{
	char name[] = "/tmp/test-sumcache-XXXXXX";
	static uint8_t buf[NP * P];

	pfd = mkstemp(name);
	cr_assert_geq(pfd, 0);
	unlink(name);
	srand(13);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	const int zeros[] = {0, 5, 31, 32, 33, NP - 1};
	for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++)
		memset(buf + (size_t)zeros[i] * P, 0, P);
	cr_assert_eq(write(pfd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
}

static void close_file(void)
{
	close(pfd);
}

/* What criu-imgd computes for n pages from page on: read them, hash them, mark the zeros. */
static void read_pages(uint64_t page, uint32_t n, uint64_t *sums, uint8_t *zmap)
{
	static uint8_t buf[64 * P];

	cr_assert_leq(n, 64);
	cr_assert_eq(pread(pfd, buf, (size_t)n * P, (off_t)(page * P)), (ssize_t)n * P);
	memset(zmap, 0, (n + 7) / 8);
	for (uint32_t i = 0; i < n; i++) {
		sums[i] = wire_page_sum(buf + (size_t)i * P);
		if (wire_page_is_zero(buf + (size_t)i * P))
			zmap[i / 8] |= (uint8_t)(1u << (i % 8));
	}
}

TestSuite(sumcache, .init = make_file, .fini = close_file);

Test(sumcache, gives_back_what_the_reads_computed)
{
	struct sumcache c;
	uint64_t sums[32], got[32];
	uint8_t zmap[4], gmap[4];

	cr_assert_eq(sumcache_init(&c, NP), 0);
	cr_assert_not(sumcache_get(&c, 0, 32, got, gmap), "nothing is known at first");
	for (uint64_t p = 0; p < NP; p += 32) {
		uint32_t n = NP - p < 32 ? (uint32_t)(NP - p) : 32;
		read_pages(p, n, sums, zmap);
		sumcache_put(&c, p, n, sums, zmap);
	}
	/* Any range, cut anywhere, as a fresh read of the file gives it. */
	const uint64_t from[] = {0, 3, 29, 31, 50, NP - 1};
	const uint32_t len[] = {32, 7, 5, 3, 30, 1};
	for (size_t k = 0; k < sizeof(from) / sizeof(from[0]); k++) {
		read_pages(from[k], len[k], sums, zmap);
		memset(got, 0xa5, sizeof(got));
		cr_assert(sumcache_get(&c, from[k], len[k], got, gmap), "range %zu", k);
		cr_assert_eq(memcmp(got, sums, len[k] * sizeof(sums[0])), 0, "range %zu", k);
		cr_assert_eq(memcmp(gmap, zmap, (len[k] + 7) / 8), 0, "range %zu", k);
	}
	read_pages(29, 5, sums, zmap);
	cr_assert_eq(zmap[0], 0x1c, "pages 31..33 of 29..33 are zero pages (map %#x)", zmap[0]);
	cr_assert_eq(c.hits, 32 + 7 + 5 + 3 + 30 + 1);
	sumcache_free(&c);
	cr_assert_eq(c.npages, 0);
	cr_assert_not(sumcache_get(&c, 0, 1, got, gmap), "a freed cache knows nothing");
	sumcache_free(&c); /* twice: harmless */
}

Test(sumcache, a_range_not_all_known_is_not_answered)
{
	struct sumcache c;
	uint64_t sums[32], got[32];
	uint8_t zmap[4], gmap[4] = {0x77, 0x77, 0x77, 0x77};

	cr_assert_eq(sumcache_init(&c, NP), 0);
	read_pages(10, 8, sums, zmap);
	sumcache_put(&c, 10, 8, sums, zmap);
	got[0] = 42;
	cr_assert_not(sumcache_get(&c, 9, 8, got, gmap), "page 9 was never read");
	cr_assert_not(sumcache_get(&c, 12, 8, got, gmap), "pages 18, 19 were never read");
	cr_assert_eq(got[0], 42, "nothing written when the answer is no");
	cr_assert_eq(gmap[0], 0x77);
	cr_assert_eq(c.hits, 0);
	cr_assert(sumcache_get(&c, 11, 6, got, gmap));
	cr_assert_eq(memcmp(got, sums + 1, 6 * sizeof(sums[0])), 0);
	sumcache_free(&c);
}

Test(sumcache, a_known_page_keeps_its_first_values)
{
	struct sumcache c;
	uint64_t sums[4], other[4] = {1, 2, 3, 4}, got[4];
	uint8_t zmap[1], ones[1] = {0xf}, gmap[1];

	cr_assert_eq(sumcache_init(&c, NP), 0);
	read_pages(4, 4, sums, zmap);
	sumcache_put(&c, 4, 4, sums, zmap);
	sumcache_put(&c, 4, 4, other, ones);
	cr_assert(sumcache_get(&c, 4, 4, got, gmap));
	cr_assert_eq(memcmp(got, sums, sizeof(sums)), 0);
	cr_assert_eq(gmap[0], zmap[0]);
	cr_assert_eq(gmap[0], 0x2, "page 5 of 4..7 is the zero page");
	sumcache_free(&c);
}

Test(sumcache, ranges_outside_the_file_are_refused)
{
	struct sumcache c;
	uint64_t sums[8] = {0}, got[8];
	uint8_t zmap[1] = {0}, gmap[1];

	cr_assert_eq(sumcache_init(&c, NP), 0);
	sumcache_put(&c, NP - 2, 4, sums, zmap); /* runs past the end: ignored, no write */
	sumcache_put(&c, UINT64_MAX - 1, 4, sums, zmap);
	cr_assert_not(sumcache_get(&c, NP - 2, 2, got, gmap), "the ignored put kept nothing");
	sumcache_put(&c, 0, NP, (uint64_t[NP]){0}, (uint8_t[NP / 8]){0});
	cr_assert(sumcache_get(&c, NP - 2, 2, got, gmap));
	cr_assert_not(sumcache_get(&c, NP - 2, 4, got, gmap), "past the end");
	cr_assert_not(sumcache_get(&c, NP, 1, got, gmap), "at the end");
	cr_assert_not(sumcache_get(&c, UINT64_MAX, 2, got, gmap), "wraps around");
	cr_assert_not(sumcache_get(&c, 0, 0, got, gmap), "no pages");
	sumcache_free(&c);
}

Test(sumcache, sizes_are_bounded)
{
	struct sumcache c;

	cr_assert_eq(sumcache_bytes(NP), NP * 8 + 2 * 2 * 8, "8 bytes and 2 bits a page");
	cr_assert_eq(sumcache_bytes(0), 0);
	cr_assert_eq(sumcache_bytes(UINT64_MAX / 4), 0, "overflow is told, not wrapped");
	cr_assert_eq(sumcache_init(&c, 0), -EINVAL);
	cr_assert_eq(sumcache_init(&c, UINT64_MAX / 4), -EOVERFLOW);
	cr_assert_eq(c.npages, 0);
	cr_assert_eq(sumcache_init(&c, 1), 0);
	sumcache_free(&c);
}

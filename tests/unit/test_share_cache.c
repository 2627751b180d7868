/* The cache of fetched pages kept for fork relatives (lazy-pages/lazyd/share_cache.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "lazyd/share_cache.h"

#define P IMG_PAGE_SIZE

static struct img_task a = {.pid = 1}, b = {.pid = 2};

static void fill(uint8_t *buf, unsigned n, uint8_t tag)
{
	for (unsigned i = 0; i < n; i++)
		memset(buf + (size_t)i * P, tag + i, P);
}

Test(share_cache, keeps_by_image_and_offset)
{
	static uint8_t in[4 * P], out[4 * P];
	struct share_cache c;

	share_cache_init(&c, 8);
	fill(in, 4, 10);
	cr_assert_eq(share_cache_put(&c, &a, 8 * P, in, 4), 0);
	cr_assert_eq(share_cache_get(&c, &a, 8 * P, out, 4), 4);
	cr_assert_eq(memcmp(in, out, sizeof(in)), 0);
	cr_assert_eq(share_cache_get(&c, &a, 10 * P, out, 4), 2, "a run from the middle");
	cr_assert_eq(out[0], 12);
	cr_assert_eq(share_cache_get(&c, &b, 8 * P, out, 4), 0, "another image's data is not it");
	cr_assert(share_cache_has(&c, &a, 11 * P) && !share_cache_has(&c, &a, 12 * P) &&
		  !share_cache_has(&c, &b, 11 * P));
	cr_assert_eq(share_cache_get(&c, &a, 7 * P, out, 4), 0, "nothing before it");
	share_cache_free(&c);
}

Test(share_cache, oldest_pages_go_first_and_no_page_is_kept_twice)
{
	static uint8_t in[6 * P], out[6 * P];
	struct share_cache c;

	share_cache_init(&c, 4);
	fill(in, 6, 50);
	cr_assert_eq(share_cache_put(&c, &a, 0, in, 3), 0);
	cr_assert_eq(share_cache_put(&c, &a, 0, in, 3), 0); /* again: nothing more kept */
	cr_assert_eq(c.used, 3);
	cr_assert_eq(share_cache_put(&c, &a, 3 * P, in + 3 * P, 3), 0); /* 2 of the first go */
	cr_assert_eq(share_cache_get(&c, &a, 0, out, 6), 0, "page 0 went");
	cr_assert_eq(share_cache_get(&c, &a, 1 * P, out, 6), 0, "page 1 went");
	cr_assert_eq(share_cache_get(&c, &a, 2 * P, out, 6), 4);
	cr_assert_eq(memcmp(out, in + 2 * P, 4 * P), 0, "every page its own data");
	share_cache_free(&c);
}

Test(share_cache, off_keeps_nothing)
{
	static uint8_t in[P], out[P];
	struct share_cache c;

	share_cache_init(&c, 0);
	cr_assert_eq(share_cache_put(&c, &a, 0, in, 1), 0);
	cr_assert_eq(share_cache_get(&c, &a, 0, out, 1), 0);
	share_cache_free(&c);
}

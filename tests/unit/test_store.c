/*
 * criu-imgd's object store (docs/store.md), the parts that need no store: the manifest's
 * format and its parser against hostile text (store_manifest.c), the chunk cache's bound and
 * recency (store_cache.c), the store URL and the credentials file's checks (store_s3.c).
 * The store itself is tested against a real radosgw by make storetest (tests/store/run.sh).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "imgd/store_cache.h"
#include "imgd/store_manifest.h"
#include "imgd/store_s3.h"

/* A manifest of two small files and a pages file of 2.5 chunks, formatted. */
static char *sample(size_t *len)
{
	static uint64_t csum[3] = {1, 0xfedcba9876543210ull, 3};
	struct store_file f[3] = {
	    {.name = "inventory.img", .size = 86, .sum = 0x1234},
	    {.name = "pages-1.img", .size = 10240, .pages = true, .csum = csum, .nchunks = 3},
	    {.name = "pstree.img", .size = 0, .sum = 0xabc},
	};
	struct store_manifest m = {.chunk = 4096, .n = 3, .f = f};
	char *text;

	memcpy(m.gen, "0123456789abcdef", 17);
	cr_assert_eq(store_manifest_format(&m, &text, len), 0);
	return text;
}

Test(store_manifest, round_trip)
{
	size_t len;
	char *text = sample(&len);
	struct store_manifest m;
	struct errmsg e;

	cr_assert_eq(store_manifest_parse(text, len, &m, &e), 0, "%s", e.msg);
	cr_assert_eq(m.chunk, 4096);
	cr_assert_str_eq(m.gen, "0123456789abcdef");
	cr_assert_eq(m.n, 3);
	const struct store_file *p = store_manifest_find(&m, "pages-1.img");
	cr_assert(p && p->pages);
	cr_assert_eq(p->size, 10240);
	cr_assert_eq(p->nchunks, 3);
	cr_assert_eq(p->csum[1], 0xfedcba9876543210ull);
	cr_assert_eq(store_manifest_find(&m, "inventory.img")->sum, 0x1234);
	cr_assert_null(store_manifest_find(&m, "core-1.img"));
	store_manifest_free(&m);
	free(text);
}

/* text with its end line recomputed, so that only the change under test is wrong. */
static int parse_resealed(const char *body, struct errmsg *e)
{
	char buf[4096];
	struct store_manifest m;
	size_t n = strlen(body);

	memcpy(buf, body, n);
	n += (size_t)sprintf(buf + n, "end %016llx\n",
			     (unsigned long long)XXH64(body, strlen(body), 0));
	int rc = store_manifest_parse(buf, n, &m, e);
	if (!rc)
		store_manifest_free(&m);
	return rc;
}

#define HEAD "criu-imgd-store 1\nchunk 4096\ngen 0123456789abcdef\n"

Test(store_manifest, hostile)
{
	static const struct {
		const char *body, *why;
	} bad[] = {
	    {"criu-imgd-store 2\nchunk 4096\ngen 0123456789abcdef\n", "not a criu-imgd"},
	    {"criu-imgd-store 1\nchunk 4095\ngen 0123456789abcdef\n", "chunk"},
	    {"criu-imgd-store 1\nchunk 0\ngen 0123456789abcdef\n", "chunk"},
	    /* a chunk of 1 GiB: a read of one page would fetch and hold all of it */
	    {"criu-imgd-store 1\nchunk 1073741824\ngen 0123456789abcdef\n", "chunk"},
	    /* 2^28 chunks said in a line, before any is listed: refused, nothing allocated */
	    {HEAD "pages pages-1.img 1099511627776\nc 0000000000000000\n", "more than the rest"},
	    {"criu-imgd-store 1\nchunk 4096\ngen 0123456789ABCDEF\n", "gen"},
	    {HEAD "file ../x 1 0000000000000000\n", "bad file name"},
	    {HEAD "file a/b 1 0000000000000000\n", "bad file name"},
	    {HEAD "file pages-1.img 1 0000000000000000\n", "bad file name"},
	    {HEAD "pages core-1.img 4096\nc 0000000000000000\n", "bad file name"},
	    {HEAD "file x.img 16777217 0000000000000000\n", "bad size"},
	    {HEAD "file x.img 01 0000000000000000\n", "bad size"},
	    {HEAD "file x.img -1 0000000000000000\n", "bad size"},
	    {HEAD "file x.img 99999999999999999999999 0000000000000000\n", "bad size"},
	    {HEAD "file x.img 1 000000000000000\n", "bad checksum"},
	    {HEAD "file x.img 1 0000000000000000\nfile x.img 1 0000000000000000\n", "twice"},
	    {HEAD "pages pages-1.img 8193\nc 0000000000000000\nc 0000000000000000\n", "chunk line"},
	    {HEAD "pages pages-1.img 4096\nx 0000000000000000\n", "chunk line"},
	    {HEAD "pages pages-1.img 2199023255553\n", "bad size"},
	    {HEAD "file  x.img 1 0000000000000000\n", "spaced"},
	    {HEAD "file x.img 1 0000000000000000 extra\n", "badly spaced"},
	    {HEAD "mystery 1\n", "unknown keyword"},
	};
	struct errmsg e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse_resealed(bad[i].body, &e), -EINVAL, "case %zu accepted", i);
		cr_assert(strstr(e.msg, bad[i].why), "case %zu: '%s' does not say '%s'", i, e.msg,
			  bad[i].why);
	}
	cr_assert_eq(parse_resealed(HEAD "file x.img 1 0000000000000000\n", &e), 0, "%s", e.msg);
}

Test(store_manifest, damaged_truncated_trailing)
{
	size_t len;
	char *text = sample(&len);
	struct store_manifest m;
	struct errmsg e;

	/* any byte changed: the end line's checksum no longer matches */
	text[40] ^= 1;
	cr_assert_eq(store_manifest_parse(text, len, &m, &e), -EINVAL);
	text[40] ^= 1;
	/* cut anywhere: never accepted */
	for (size_t cut = 0; cut < len; cut++)
		cr_assert_eq(store_manifest_parse(text, cut, &m, &e), -EINVAL, "cut at %zu", cut);
	/* bytes after the end line */
	char *more = malloc(len + 2);
	memcpy(more, text, len);
	memcpy(more + len, "x\n", 2);
	cr_assert_eq(store_manifest_parse(more, len + 2, &m, &e), -EINVAL);
	cr_assert(strstr(e.msg, "after 'end'"), "%s", e.msg);
	/* a NUL inside */
	text[20] = 0;
	cr_assert_eq(store_manifest_parse(text, len, &m, &e), -EINVAL);
	free(more);
	free(text);
}

Test(store_manifest, chunks)
{
	cr_assert_eq(store_chunks(0, 4096), 0);
	cr_assert_eq(store_chunks(1, 4096), 1);
	cr_assert_eq(store_chunks(4096, 4096), 1);
	cr_assert_eq(store_chunks(4097, 4096), 2);
	cr_assert_eq(store_chunks(1ull << 40, STORE_CHUNK), 262144);
}

static uint8_t *chunk(uint8_t v, size_t n)
{
	uint8_t *p = malloc(n);
	memset(p, v, n);
	return p;
}

Test(store_cache, bound_and_lru)
{
	struct store_cache c;
	uint32_t len;

	cr_assert_eq(store_cache_init(&c, 3 * 1000), 0);
	cr_assert_not_null(store_cache_put(&c, "a", chunk(1, 1000), 1000));
	cr_assert_not_null(store_cache_put(&c, "b", chunk(2, 1000), 1000));
	cr_assert_not_null(store_cache_put(&c, "c", chunk(3, 1000), 1000));
	cr_assert_eq(c.bytes, 3000);
	/* a is used: b is now the least recently used, and goes for d */
	const uint8_t *a = store_cache_get(&c, "a", &len);
	cr_assert(a && len == 1000 && a[999] == 1);
	cr_assert_not_null(store_cache_put(&c, "d", chunk(4, 1000), 1000));
	cr_assert_null(store_cache_get(&c, "b", &len));
	cr_assert_not_null(store_cache_get(&c, "a", &len));
	cr_assert_not_null(store_cache_get(&c, "c", &len));
	cr_assert_eq(c.bytes, 3000);
	cr_assert_eq(c.entries, 3);
	cr_assert_eq(c.evictions, 1);
	/* larger than the whole cache: not kept, nothing evicted */
	cr_assert_null(store_cache_put(&c, "huge", chunk(5, 4000), 4000));
	cr_assert_eq(c.entries, 3);
	/* the same key again replaces it */
	cr_assert_not_null(store_cache_put(&c, "a", chunk(9, 500), 500));
	cr_assert(store_cache_get(&c, "a", &len)[0] == 9 && len == 500);
	cr_assert_eq(c.bytes, 2500);
	cr_assert_eq(c.hits, 4);
	cr_assert_eq(c.misses, 1);
	store_cache_free(&c);
}

Test(store_s3, url)
{
	char b[64], p[256];
	struct errmsg e;

	cr_assert_eq(s3_parse_url("s3://images", b, sizeof(b), p, sizeof(p), &e), 0);
	cr_assert_str_eq(b, "images");
	cr_assert_str_eq(p, "");
	cr_assert_eq(s3_parse_url("s3://my.bucket-1/a/b_c/", b, sizeof(b), p, sizeof(p), &e), 0);
	cr_assert_str_eq(p, "a/b_c/");
	static const char *bad[] = {"http://x/y",    "s3://ab",	      "s3://Images",
				    "s3://img/../x", "s3://img/a//b", "s3://img/a b",
				    "s3://img/a?b",  "s3://"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(s3_parse_url(bad[i], b, sizeof(b), p, sizeof(p), &e), -EINVAL, "%s",
			     bad[i]);
}

Test(store_s3, credentials_file)
{
	char path[] = "/tmp/test-store-cred-XXXXXX", a[64], s[64];
	struct errmsg e;
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	dprintf(fd, "# comment\naccess_key = AK1\nsecret_key=SK2\n");
	close(fd);
	chmod(path, 0600);
	cr_assert_eq(s3_read_credentials(path, a, sizeof(a), s, sizeof(s), &e), 0, "%s", e.msg);
	cr_assert_str_eq(a, "AK1");
	cr_assert_str_eq(s, "SK2");
	chmod(path, 0640);
	cr_assert_eq(s3_read_credentials(path, a, sizeof(a), s, sizeof(s), &e), -EPERM);
	cr_assert(strstr(e.msg, "group or others"), "%s", e.msg);
	chmod(path, 0604);
	cr_assert_eq(s3_read_credentials(path, a, sizeof(a), s, sizeof(s), &e), -EPERM);
	fd = open(path, O_WRONLY | O_TRUNC);
	dprintf(fd, "access_key = AK1\n");
	close(fd);
	chmod(path, 0600);
	cr_assert_eq(s3_read_credentials(path, a, sizeof(a), s, sizeof(s), &e), -EINVAL);
	cr_assert(strstr(e.msg, "secret_key"), "%s", e.msg);
	unlink(path);
}

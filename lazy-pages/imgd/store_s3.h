/*
 * store_s3.c: the S3 client of the object store (docs/store.md): libcurl, path-style URLs
 * (ENDPOINT/BUCKET/KEY), AWS SigV4 by libcurl (CURLOPT_AWS_SIGV4) with an unsigned payload.
 * One easy handle, a fresh connection per request; calls block. Every answer is bounded by the
 * caller's buffer; an object larger than expected is an error, never a larger allocation.
 * store_be.c reaches it through store_s3_ops.
 */
#ifndef IMGD_STORE_S3_H
#define IMGD_STORE_S3_H

#include <stddef.h>
#include <stdint.h>

#include "store_be.h"
#include "util/err.h"

struct store_s3 {
	char base[1024];  /* ENDPOINT/BUCKET/ */
	char prefix[256]; /* "" or "PREFIX/" */
	char sigv4[96];	  /* aws:amz:REGION:s3 */
	char userpwd[512];
	void *h;	  /* CURL * */
	void *hdr, *phdr; /* struct curl_slist *: GET/HEAD, PUT */
};

extern const struct store_be_ops store_s3_ops;
/* A new client for store_be (*impl): 0, or -errno with e. */
int s3_be_open(void **impl, const struct store_cfg *c, struct errmsg *e);

/* Check the configuration and read the credentials: 0, or -errno with e. */
int s3_open(struct store_s3 *s, const struct store_cfg *c, struct errmsg *e);
void s3_close(struct store_s3 *s);
/* A second client of the same store (its own handle and counters, for another thread): 0, or
 * -ENOMEM with e. */
int s3_clone(struct store_s3 *dst, const struct store_s3 *src, struct errmsg *e);
/*
 * GET key (below the prefix) into buf: with len > 0 the bytes [off, off + len) (a ranged GET)
 * and exactly len must come; with len == 0 the whole object, at most cap bytes (*got).
 * 0; -ENOENT: no such object; -EACCES: refused (credentials); -EFBIG: larger than allowed;
 * -EIO: anything else. e says which.
 */
int s3_get(struct store_s3 *s, const char *key, uint64_t off, size_t len, void *buf, size_t cap,
	   size_t *got, struct errmsg *e);
/* PUT len bytes as key: 0, or -errno with e as s3_get. */
int s3_put(struct store_s3 *s, const char *key, const void *buf, size_t len, struct errmsg *e);
/* HEAD key: 0 (it exists), -ENOENT, or another -errno with e. */
int s3_head(struct store_s3 *s, const char *key, struct errmsg *e);
/* Parse s3://BUCKET[/PREFIX] into bucket and prefix ("" or "P/"): 0 or -EINVAL with e. */
int s3_parse_url(const char *url, char *bucket, size_t blen, char *prefix, size_t plen,
		 struct errmsg *e);
/* The credentials file: 0, or -errno with e (-EPERM: readable by group or other). */
int s3_read_credentials(const char *path, char *access, size_t alen, char *secret, size_t slen,
			struct errmsg *e);

#endif

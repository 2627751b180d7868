/*
 * The object store's backends behind one interface: the scheme of --store picks one, and every
 * request is counted here (criu-imgd status, the criu_imgd_store_* metrics).
 */
#include "store_be.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store_rados.h"
#include "store_s3.h"

bool store_seg_ok(const char *s, size_t n)
{
	if (!n || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}

int store_parse_prefix(const char *url, const char *p, char *prefix, size_t plen, struct errmsg *e)
{
	size_t pl = strlen(p);

	prefix[0] = 0;
	if (!pl)
		return 0;
	if (p[pl - 1] == '/')
		pl--;
	if (pl + 2 > plen || pl > 200)
		return errmsg_set(e, EINVAL, "--store %s: the prefix is too long (200 at most)",
				  url);
	for (const char *s = p; s < p + pl;) {
		const char *end = memchr(s, '/', (size_t)(p + pl - s));
		size_t sn = end ? (size_t)(end - s) : (size_t)(p + pl - s);
		if (!store_seg_ok(s, sn))
			return errmsg_set(e, EINVAL,
					  "--store %s: the prefix is segments of [A-Za-z0-9._-] "
					  "separated by single '/'",
					  url);
		s += sn + 1;
	}
	memcpy(prefix, p, pl);
	prefix[pl] = '/';
	prefix[pl + 1] = 0;
	return 0;
}

int store_be_open(struct store_be *b, const struct store_cfg *c, struct errmsg *e)
{
	int rc;

	memset(b, 0, sizeof(*b));
	if (!c->store)
		return errmsg_set(e, EINVAL, "no --store given");
	if (!strncmp(c->store, "s3://", 5)) {
		b->ops = &store_s3_ops;
		rc = s3_be_open(&b->impl, c, e);
	} else if (!strncmp(c->store, "rados://", 8)) {
		b->ops = &store_rados_ops;
		rc = rados_be_open(&b->impl, c, e);
	} else {
		return errmsg_set(e, EINVAL,
				  "--store %s: expected s3://BUCKET[/PREFIX] or "
				  "rados://POOL[/PREFIX]",
				  c->store);
	}
	if (rc)
		return rc;
	snprintf(b->url, sizeof(b->url), "%s", c->store);
	return 0;
}

int store_be_clone(struct store_be *dst, const struct store_be *src, struct errmsg *e)
{
	memset(dst, 0, sizeof(*dst));
	dst->ops = src->ops;
	memcpy(dst->url, src->url, sizeof(dst->url));
	return src->ops->clone(&dst->impl, src->impl, e);
}

void store_be_idle(struct store_be *b)
{
	if (b->impl)
		b->ops->idle(b->impl);
}

void store_be_close(struct store_be *b)
{
	if (b->impl)
		b->ops->close(b->impl);
	b->impl = NULL;
}

/* A request that failed for another reason than an absent object is an error. */
static int count(struct store_be *b, int rc)
{
	if (rc && rc != -ENOENT)
		b->errors++;
	return rc;
}

int store_be_get(struct store_be *b, const char *key, uint64_t off, size_t len, void *buf,
		 size_t cap, size_t *got, struct errmsg *e)
{
	size_t n = 0;
	int rc;

	if (strlen(key) >= STORE_KEY_MAX)
		return errmsg_set(e, ENAMETOOLONG, "object key too long");
	rc = b->ops->get(b->impl, key, off, len, buf, cap, &n, e);
	b->gets++;
	if (!rc) {
		b->get_bytes += n;
		if (got)
			*got = n;
	}
	return count(b, rc);
}

int store_be_put(struct store_be *b, const char *key, const void *buf, size_t len, bool excl,
		 struct errmsg *e)
{
	if (strlen(key) >= STORE_KEY_MAX)
		return errmsg_set(e, ENAMETOOLONG, "object key too long");
	int rc = b->ops->put(b->impl, key, buf, len, excl, e);
	b->puts++;
	if (!rc)
		b->put_bytes += len;
	return rc == -EEXIST ? rc : count(b, rc);
}

int store_be_head(struct store_be *b, const char *key, struct errmsg *e)
{
	if (strlen(key) >= STORE_KEY_MAX)
		return errmsg_set(e, ENAMETOOLONG, "object key too long");
	return count(b, b->ops->head(b->impl, key, e));
}

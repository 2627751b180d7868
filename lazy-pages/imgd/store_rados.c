/*
 * The RADOS backend (store_rados.h): one cluster connection per store, shared by its clones,
 * each with an io context of its own; every request bounded by librados' timeouts.
 */
#include "store_rados.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_rados_lib.h"

struct rados_conn {
	rados_t cl;
	unsigned refs; /* clients on it (the loop's thread only) */
};

struct store_rados {
	char pool[RADOS_POOL_MAX];
	char prefix[256]; /* "" or "PREFIX/" */
	char conf[4096];
	char id[RADOS_ID_MAX];
	struct rados_conn *conn; /* NULL until the first request */
	rados_ioctx_t io;
};

/* Setting name of cl into v: 0, or -errno with e (never silently "unset"). */
static int setting(const struct rados_lib *L, rados_t cl, const char *name, char *v, size_t len,
		   struct errmsg *e)
{
	int rc = L->rados_conf_get(cl, name, v, len);

	return rc ? errmsg_set(e, -rc, "--ceph-conf: cannot read its %s setting: %s", name,
			       strerror(-rc))
		  : 0;
}

/* The secrets the conf leads librados to: none that group or others may read. */
static int check_secrets(const struct rados_lib *L, rados_t cl, const struct store_rados *s,
			 struct errmsg *e)
{
	char v[4096], path[4096];
	int rc;

	if ((rc = setting(L, cl, "key", v, sizeof(v), e)) ||
	    (v[0] &&
	     (rc = rados_secret_file_check(s->conf, "the conf", "--ceph-conf: it sets key", e))))
		return rc;
	if ((rc = setting(L, cl, "keyfile", v, sizeof(v), e)) ||
	    (v[0] && (rc = rados_secret_file_check(v, "key file", "keyfile in --ceph-conf", e))))
		return rc;
	if ((rc = setting(L, cl, "keyring", v, sizeof(v), e)) ||
	    (rados_first_existing(v, path, sizeof(path)) &&
	     (rc = rados_secret_file_check(path, "keyring", "keyring in --ceph-conf", e))))
		return rc;
	return 0;
}

/* The cluster handle, configured and checked, not connected: 0 or -errno with e. */
static int cluster(const struct rados_lib *L, const struct store_rados *s, rados_t *out,
		   struct errmsg *e)
{
	static const char *const bounds[] = {"client_mount_timeout", "rados_mon_op_timeout",
					     "rados_osd_op_timeout"};
	char name[RADOS_ID_MAX + 8];
	rados_t cl;
	int rc;

	snprintf(name, sizeof(name), "client.%s", s->id);
	if ((rc = L->rados_create2(&cl, "ceph", name, 0)))
		return errmsg_set(e, -rc, "librados: cannot make a cluster handle: %s",
				  strerror(-rc));
	if ((rc = L->rados_conf_read_file(cl, s->conf))) {
		errmsg_set(e, -rc, "--ceph-conf %s: librados cannot read it: %s", s->conf,
			   strerror(-rc));
		goto fail;
	}
	if ((rc = check_secrets(L, cl, s, e)))
		goto fail;
	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++)
		if ((rc = L->rados_conf_set(cl, bounds[i], RADOS_TIMEOUT_S))) {
			errmsg_set(e, -rc, "librados: cannot set %s: %s", bounds[i], strerror(-rc));
			goto fail;
		}
	*out = cl;
	return 0;
fail:
	L->rados_shutdown(cl);
	return rc < 0 ? rc : -EINVAL;
}

/* conn() without its errno rule. */
static int conn_make(struct store_rados *s, struct errmsg *e)
{
	const struct rados_lib *L = rados_lib(e);
	struct rados_conn *c;
	int rc;

	if (s->conn)
		return 0;
	if (!L)
		return -ENOENT;
	if (!(c = calloc(1, sizeof(*c))))
		return errmsg_set(e, ENOMEM, "out of memory");
	if ((rc = cluster(L, s, &c->cl, e))) {
		free(c);
		return rc;
	}
	if ((rc = L->rados_connect(c->cl))) {
		/* cephx: an unknown user is EACCES, a wrong key EIO (its answer cannot be
		 * decrypted), no key at all ENOENT. */
		errmsg_set(e, -rc, "rados://%s: cannot connect as client.%s: %s%s", s->pool, s->id,
			   strerror(-rc),
			   rc == -EACCES || rc == -EPERM || rc == -ENOENT || rc == -EIO
			       ? " (the cluster refused this user or its key: check --ceph-id "
				 "and the keyring that --ceph-conf names)"
			   : rc == -ETIMEDOUT ? " (no monitor answered: check mon_host in "
						"--ceph-conf)"
					      : "");
		goto fail;
	}
	if ((rc = L->rados_ioctx_create(c->cl, s->pool, &s->io))) {
		errmsg_set(e, -rc, "rados://%s: %s", s->pool,
			   rc == -ENOENT ? "no such pool" : strerror(-rc));
		goto fail;
	}
	c->refs = 1;
	s->conn = c;
	return 0;
fail:
	L->rados_shutdown(c->cl);
	free(c);
	return rc;
}

/* s connected (once) with its io context: 0 or -errno with e, never -ENOENT (that is an
 * absent object to the callers: a pool, a keyring or librados that is missing is -ENXIO). */
static int conn(struct store_rados *s, struct errmsg *e)
{
	int rc = conn_make(s, e);

	return rc == -ENOENT ? -ENXIO : rc; /* e says what is missing */
}

static void disconnect(struct store_rados *s)
{
	const struct rados_lib *L = rados_lib(NULL);

	if (!s->conn || !L)
		return;
	L->rados_ioctx_destroy(s->io);
	if (!--s->conn->refs) {
		L->rados_shutdown(s->conn->cl);
		free(s->conn);
	}
	s->conn = NULL;
}

/* A failed request's words: 0 stays 0, -ENOENT is quiet but named. */
static int failed(const struct store_rados *s, const char *op, const char *key, int rc,
		  struct errmsg *e)
{
	if (rc == -ENOENT)
		return errmsg_set(e, ENOENT, "no object %s%s", s->prefix, key);
	return errmsg_set(
	    e, -rc, "%s %s%s in pool %s: %s%s", op, s->prefix, key, s->pool, strerror(-rc),
	    rc == -EACCES || rc == -EPERM ? " (client's OSD caps do not allow it on this pool)"
					  : "");
}

static int be_get(void *impl, const char *key, uint64_t off, size_t len, void *buf, size_t cap,
		  size_t *got, struct errmsg *e)
{
	struct store_rados *s = impl;
	const struct rados_lib *L = rados_lib(e);
	char oid[sizeof(s->prefix) + STORE_KEY_MAX];
	int rc;

	if ((rc = conn(s, e)))
		return rc;
	snprintf(oid, sizeof(oid), "%s%s", s->prefix, key);
	if (len) {
		int n = L->rados_read(s->io, oid, buf, len, off);
		if (n < 0)
			return failed(s, "read", key, n, e);
		if ((size_t)n != len)
			return errmsg_set(e, EIO, "read %s%s: %d bytes of the %zu asked for",
					  s->prefix, key, n, len);
		*got = len;
		return 0;
	}
	/* The whole object: its size and up to cap bytes in one atomic operation. */
	rados_read_op_t op = L->rados_create_read_op();
	uint64_t size = 0;
	time_t mtime;
	size_t n = 0;
	int srv = 0, rrv = 0;
	if (!op)
		return errmsg_set(e, ENOMEM, "out of memory");
	L->rados_read_op_stat(op, &size, &mtime, &srv);
	L->rados_read_op_read(op, 0, cap, buf, &n, &rrv);
	rc = L->rados_read_op_operate(op, s->io, oid, 0);
	L->rados_release_read_op(op);
	if (!rc)
		rc = srv ? srv : rrv;
	if (rc)
		return failed(s, "read", key, rc, e);
	if (size > cap)
		return errmsg_set(e, EFBIG, "read %s%s: larger than the %zu bytes expected",
				  s->prefix, key, cap);
	if (n != size)
		return errmsg_set(e, EIO, "read %s%s: %zu bytes of its %llu", s->prefix, key, n,
				  (unsigned long long)size);
	*got = n;
	return 0;
}

static int be_put(void *impl, const char *key, const void *buf, size_t len, bool excl,
		  struct errmsg *e)
{
	struct store_rados *s = impl;
	const struct rados_lib *L = rados_lib(e);
	char oid[sizeof(s->prefix) + STORE_KEY_MAX];
	int rc;

	if ((rc = conn(s, e)))
		return rc;
	snprintf(oid, sizeof(oid), "%s%s", s->prefix, key);
	rados_write_op_t op = L->rados_create_write_op();
	if (!op)
		return errmsg_set(e, ENOMEM, "out of memory");
	if (excl)
		L->rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	L->rados_write_op_write_full(op, buf, len);
	rc = L->rados_write_op_operate(op, s->io, oid, NULL, 0);
	L->rados_release_write_op(op);
	if (rc == -EEXIST && excl)
		return errmsg_set(e, EEXIST, "%s%s exists", s->prefix, key);
	return rc ? failed(s, "write", key, rc, e) : 0;
}

static int be_head(void *impl, const char *key, struct errmsg *e)
{
	struct store_rados *s = impl;
	const struct rados_lib *L = rados_lib(e);
	char oid[sizeof(s->prefix) + STORE_KEY_MAX];
	uint64_t size;
	time_t mtime;
	int rc;

	if ((rc = conn(s, e)))
		return rc;
	snprintf(oid, sizeof(oid), "%s%s", s->prefix, key);
	rc = L->rados_stat(s->io, oid, &size, &mtime);
	return rc == -ENOENT ? -ENOENT : rc ? failed(s, "stat", key, rc, e) : 0;
}

static int be_clone(void **dst, void *src, struct errmsg *e)
{
	struct store_rados *s = src, *d;
	const struct rados_lib *L = rados_lib(e);
	int rc;

	if ((rc = conn(s, e)))
		return rc;
	if (!(d = malloc(sizeof(*d))))
		return errmsg_set(e, ENOMEM, "out of memory");
	*d = *s;
	if ((rc = L->rados_ioctx_create(d->conn->cl, d->pool, &d->io))) {
		free(d);
		return errmsg_set(e, -rc, "rados://%s: %s", s->pool, strerror(-rc));
	}
	d->conn->refs++;
	*dst = d;
	return 0;
}

static void be_idle(void *impl)
{
	struct store_rados *s = impl;

	if (s->conn && s->conn->refs == 1)
		disconnect(s);
}

static void be_close(void *impl)
{
	disconnect(impl);
	free(impl);
}

int rados_be_open(void **impl, const struct store_cfg *c, struct errmsg *e)
{
	const char *conf = c->ceph_conf ? c->ceph_conf : RADOS_CONF_DEFAULT;
	const char *id = c->ceph_id ? c->ceph_id : "admin";
	struct store_rados *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return errmsg_set(e, ENOMEM, "out of memory");
	if ((rc = rados_parse_url(c->store, s->pool, sizeof(s->pool), s->prefix, sizeof(s->prefix),
				  e)) ||
	    (rc = rados_id_check(id, e)))
		goto fail;
	if (strlen(conf) >= sizeof(s->conf)) {
		rc = errmsg_set(e, ENAMETOOLONG, "--ceph-conf: path too long");
		goto fail;
	}
	snprintf(s->conf, sizeof(s->conf), "%s", conf);
	snprintf(s->id, sizeof(s->id), "%s", id);
	if (!rados_lib(e)) {
		rc = -ENOENT;
		goto fail;
	}
	*impl = s;
	return 0;
fail:
	free(s);
	return rc;
}

const struct store_be_ops store_rados_ops = {
    .get = be_get,
    .put = be_put,
    .head = be_head,
    .clone = be_clone,
    .idle = be_idle,
    .close = be_close,
    .atomic_excl = true,
};

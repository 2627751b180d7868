/*
 * store_be.c: the one interface to the object store's backends (docs/store.md). store.c,
 * store_fetch.c and store_xfer.c read and write objects through it and never know which
 * backend serves them:
 *
 *   s3://BUCKET[/PREFIX]    store_s3.c: libcurl, AWS SigV4 (--s3-endpoint, --s3-credentials)
 *   rados://POOL[/PREFIX]   store_rados.c: librados, a Ceph pool (--ceph-conf, --ceph-id)
 *
 * A key is below the prefix (ID/manifest, ID/GEN/...). Each client counts its requests here;
 * the calls block. A client is used by one thread at a time: a thread of its own takes a
 * clone (store_be_clone).
 */
#ifndef IMGD_STORE_BE_H
#define IMGD_STORE_BE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define STORE_KEY_MAX 512 /* bytes of a key below the prefix */
#define STORE_URL_LOG 64  /* bytes of the store's URL kept for the logs */

/* What the command line says about the store. */
struct store_cfg {
	const char *store;	    /* s3://BUCKET[/PREFIX] or rados://POOL[/PREFIX] */
	const char *s3_endpoint;    /* s3: http(s)://HOST[:PORT] */
	const char *s3_region;	    /* s3: default us-east-1 */
	const char *s3_credentials; /* s3: access_key = ..., secret_key = ...; mode 0600 */
	const char *ceph_conf;	    /* rados: the cluster's conf (default /etc/ceph/ceph.conf) */
	const char *ceph_id;	    /* rados: the cephx user, without "client." (default admin) */
};

/* A backend: every call 0 or -errno with e (-ENOENT: no such object, e set too). */
struct store_be_ops {
	/* With len > 0 exactly the bytes [off, off + len); with len == 0 the whole object, at
	 * most cap bytes (*got; -EFBIG when larger). */
	int (*get)(void *impl, const char *key, uint64_t off, size_t len, void *buf, size_t cap,
		   size_t *got, struct errmsg *e);
	/* excl: only if key does not exist (-EEXIST), atomically where the backend can. */
	int (*put)(void *impl, const char *key, const void *buf, size_t len, bool excl,
		   struct errmsg *e);
	int (*head)(void *impl, const char *key, struct errmsg *e);
	int (*clone)(void **dst, void *src, struct errmsg *e);
	/* Drop connections until the next call (before criu-imgd forks to detach). */
	void (*idle)(void *impl);
	void (*close)(void *impl);
	bool atomic_excl; /* put(excl) cannot lose a race with another put(excl) */
};

struct store_be {
	const struct store_be_ops *ops;
	void *impl;
	char url[STORE_URL_LOG]; /* as given (truncated), for the logs */
	uint64_t gets, get_bytes, puts, put_bytes, errors;
};

/* The backend that c->store names, its settings checked: 0, or -errno with e. */
int store_be_open(struct store_be *b, const struct store_cfg *c, struct errmsg *e);
/* A second client of the same store, for another thread (counters of its own). */
int store_be_clone(struct store_be *dst, const struct store_be *src, struct errmsg *e);
void store_be_idle(struct store_be *b);
void store_be_close(struct store_be *b);
int store_be_get(struct store_be *b, const char *key, uint64_t off, size_t len, void *buf,
		 size_t cap, size_t *got, struct errmsg *e);
int store_be_put(struct store_be *b, const char *key, const void *buf, size_t len, bool excl,
		 struct errmsg *e);
/* 0: key exists; -ENOENT: it does not; another -errno with e. */
int store_be_head(struct store_be *b, const char *key, struct errmsg *e);

/* A path segment of a prefix: [A-Za-z0-9._-]+, not "." or "..". */
bool store_seg_ok(const char *s, size_t n);
/* The PREFIX part of SCHEME://NAME[/PREFIX] (after the name) into prefix as "" or "P/": 0 or
 * -EINVAL with e (opt: the option named in the message). */
int store_parse_prefix(const char *url, const char *p, char *prefix, size_t plen, struct errmsg *e);

#endif

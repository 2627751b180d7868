/*
 * store_rados.c: the Ceph RADOS backend of the object store (--store rados://POOL[/PREFIX];
 * docs/store.md): librados, loaded when such a store is opened (store_rados_lib.c: criu-imgd
 * starts without librados on hosts that serve from S3 or a directory). Object names are
 * PREFIX + the key, in POOL. The cluster, the user (--ceph-id, default admin) and its keyring
 * come from --ceph-conf (default /etc/ceph/ceph.conf), read by librados; a keyring, key file
 * or conf holding a key that group or others may read is refused first
 * (store_rados_conf.c). A manifest is created exclusively (a write op with
 * LIBRADOS_CREATE_EXCLUSIVE): two publishers of one id cannot both succeed.
 *
 * Clones share the cluster connection (librados' I/O is thread-safe) with an io context
 * each. The connection is made at the first request and dropped by idle (librados' threads do
 * not survive criu-imgd's fork to detach).
 */
#ifndef IMGD_STORE_RADOS_H
#define IMGD_STORE_RADOS_H

#include <stdbool.h>
#include <stddef.h>

#include "store_be.h"
#include "util/err.h"

#define RADOS_POOL_MAX 128
#define RADOS_ID_MAX 64
#define RADOS_CONF_DEFAULT "/etc/ceph/ceph.conf"
#define RADOS_TIMEOUT_S "30" /* a mon or OSD request, and connecting, at most */

extern const struct store_be_ops store_rados_ops;
/* A new client for store_be (*impl), the settings and secret files checked (no connection
 * yet): 0, or -errno with e. */
int rados_be_open(void **impl, const struct store_cfg *c, struct errmsg *e);

/* store_rados_conf.c. rados://POOL[/PREFIX] into pool and prefix ("" or "P/"): 0 or -EINVAL
 * with e. */
int rados_parse_url(const char *url, char *pool, size_t plen, char *prefix, size_t xlen,
		    struct errmsg *e);
/* --ceph-id: [A-Za-z0-9._-], 1..63, without "client.": 0 or -EINVAL with e. */
int rados_id_check(const char *id, struct errmsg *e);
/*
 * A file that holds a secret (what: "keyring", ...; opt: the option that led to it): 0 when
 * it is a regular file of ours or root's that neither group nor others may read or write;
 * -EPERM (or the error of open) with e saying why and what to do.
 */
int rados_secret_file_check(const char *path, const char *what, const char *opt, struct errmsg *e);
/* The first of a librados search list ("a,b;c d") that exists, into out: true, or false. */
bool rados_first_existing(const char *list, char *out, size_t olen);

#endif

/*
 * store_rados_lib.c: librados, loaded once with dlopen("librados.so.2") when a rados:// store
 * is opened, its functions checked against <rados/librados.h> at compile time. criu-imgd does
 * not link it: hosts (and the CRIU roots of tests/native) that serve from S3 or a directory
 * need not have it.
 */
#ifndef IMGD_STORE_RADOS_LIB_H
#define IMGD_STORE_RADOS_LIB_H

#include <rados/librados.h>

#include "util/err.h"

#define RADOS_FUNCS(X)                                                                             \
	X(rados_create2)                                                                           \
	X(rados_conf_read_file)                                                                    \
	X(rados_conf_set)                                                                          \
	X(rados_conf_get)                                                                          \
	X(rados_connect)                                                                           \
	X(rados_shutdown)                                                                          \
	X(rados_ioctx_create)                                                                      \
	X(rados_ioctx_destroy)                                                                     \
	X(rados_read)                                                                              \
	X(rados_stat)                                                                              \
	X(rados_create_read_op)                                                                    \
	X(rados_release_read_op)                                                                   \
	X(rados_read_op_stat)                                                                      \
	X(rados_read_op_read)                                                                      \
	X(rados_read_op_operate)                                                                   \
	X(rados_create_write_op)                                                                   \
	X(rados_release_write_op)                                                                  \
	X(rados_write_op_create)                                                                   \
	X(rados_write_op_write_full)                                                               \
	X(rados_write_op_operate)

struct rados_lib {
#define RADOS_FIELD(f) __typeof__(f) *f;
	RADOS_FUNCS(RADOS_FIELD)
#undef RADOS_FIELD
};

/* librados' functions (loaded on the first call; not thread-safe before the first success):
 * the table, or NULL with e. */
const struct rados_lib *rados_lib(struct errmsg *e);

#endif

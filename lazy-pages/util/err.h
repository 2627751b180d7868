/*
 * The one error convention of lazy-pages/: a function returns 0 (or a count) on success and
 * -errno on failure; when the caller needs to tell an operator more than strerror() can, it
 * passes a struct errmsg that the failing function fills with what failed, where and why.
 * errmsg pointers may be NULL (the caller only wants the -errno).
 */
#ifndef LP_UTIL_ERR_H
#define LP_UTIL_ERR_H

#include <stddef.h>

#define ERRMSG_MAX 1024

struct errmsg {
	char msg[ERRMSG_MAX]; /* "" until a failure is described */
};

/* Describe a failure (replaces what e held). Returns -err when err > 0, else err, so that
 * `return errmsg_set(e, EINVAL, "...")` both describes and fails. */
__attribute__((format(printf, 3, 4))) int errmsg_set(struct errmsg *e, int err, const char *fmt,
						      ...);

/* Put context before what e already says ("CONTEXT: old text"). Returns err as errmsg_set. */
__attribute__((format(printf, 3, 4))) int errmsg_prefix(struct errmsg *e, int err,
							 const char *fmt, ...);

static inline void errmsg_clear(struct errmsg *e)
{
	if (e)
		e->msg[0] = '\0';
}

#endif

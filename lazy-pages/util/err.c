#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int ret(int err)
{
	return err > 0 ? -err : err;
}

int errmsg_set(struct errmsg *e, int err, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return ret(err);
}

int errmsg_prefix(struct errmsg *e, int err, const char *fmt, ...)
{
	char old[ERRMSG_MAX], ctx[ERRMSG_MAX];
	va_list ap;

	if (!e)
		return ret(err);
	memcpy(old, e->msg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	size_t n = strnlen(ctx, sizeof(ctx) - 1);
	memcpy(e->msg, ctx, n);
	e->msg[n] = '\0';
	if (old[0] && n + 2 < sizeof(e->msg)) {
		/* "CTX: OLD", cut at the end of the buffer */
		memcpy(e->msg + n, ": ", 2);
		size_t room = sizeof(e->msg) - n - 3, m = strnlen(old, room);
		memcpy(e->msg + n + 2, old, m);
		e->msg[n + 2 + m] = '\0';
	}
	return ret(err);
}

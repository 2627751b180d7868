/* Messages go to CRIU's log, at CRIU's levels, so they sit next to CRIU's own. */
#include <stdarg.h>
#include <stdio.h>

#include "lr.h"

void lr_log(int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (print_on_level) {
		/* CRIU prefixes errors with "Error (file:line)" only in its own macros. */
		print_on_level((unsigned)level, "%s: %s%s\n", LR_NAME,
			       level == LR_LOG_ERROR ? "Error: " : "", msg);
		return;
	}
	if (level <= LR_LOG_WARN)
		fprintf(stderr, "%s: %s\n", LR_NAME, msg);
}

/* Operator logs, levels as in CRIU: 0 msg, 1 error, 2 warn (default), 3 info, 4 debug. */
#ifndef LAZY_LOG_H
#define LAZY_LOG_H

#include <stdarg.h>

enum { LOG_MSG = 0, LOG_ERROR = 1, LOG_WARN = 2, LOG_INFO = 3, LOG_DEBUG = 4 };

extern int log_level;

int log_open(const char *path); /* NULL or "-": stderr */
void log_set_prefix(const char *prefix);
void log_printf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Progress for the operator: shown at the default level (-v2), without a "Warn:" tag. */
void log_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define pr_msg(...) log_printf(LOG_MSG, __VA_ARGS__)
#define pr_err(...) log_printf(LOG_ERROR, __VA_ARGS__)
#define pr_warn(...) log_printf(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log_printf(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_printf(LOG_DEBUG, __VA_ARGS__)

#endif

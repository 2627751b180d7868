#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_WARN;
static FILE *log_file;
static const char *log_prefix = "";
static struct timespec log_start;

int log_open(const char *path)
{
	clock_gettime(CLOCK_MONOTONIC, &log_start);
	if (!path || !strcmp(path, "-")) {
		log_file = stderr;
		return 0;
	}
	FILE *f = fopen(path, "ae");
	if (!f)
		return -errno;
	setvbuf(f, NULL, _IOLBF, 0);
	log_file = f;
	return 0;
}

void log_set_prefix(const char *prefix)
{
	log_prefix = prefix ? prefix : "";
}

static void log_line(int level, const char *tag, const char *fmt, va_list ap);

void log_printf(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	log_line(level, level == LOG_ERROR ? "Error: " : (level == LOG_WARN ? "Warn: " : ""), fmt,
		 ap);
	va_end(ap);
}

void log_note(const char *fmt, ...)
{
	va_list ap;

	if (LOG_WARN > log_level)
		return;
	va_start(ap, fmt);
	log_line(LOG_WARN, "", fmt, ap);
	va_end(ap);
}

static void log_line(int level, const char *tag, const char *fmt, va_list ap)
{
	struct timespec now;
	char line[1024];
	int n;

	(void)level;
	if (!log_file) {
		log_file = stderr;
		clock_gettime(CLOCK_MONOTONIC, &log_start);
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	long us =
	    (now.tv_sec - log_start.tv_sec) * 1000000L + (now.tv_nsec - log_start.tv_nsec) / 1000;
	n = snprintf(line, sizeof(line), "(%02ld.%06ld) %s%s", us / 1000000, us % 1000000, tag,
		     log_prefix);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	/* One write per line, so that concurrent writers never interleave inside a line. */
	size_t len = strnlen(line, sizeof(line) - 2);
	if (len == 0 || line[len - 1] != '\n')
		line[len++] = '\n';
	fwrite(line, 1, len, log_file);
	fflush(log_file);
}

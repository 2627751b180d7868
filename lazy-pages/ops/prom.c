/* Prometheus text exposition, built into a buffer (prom.h). */
#include "prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROM_MAX_TEXT (16u << 20) /* a bound on what one scrape can ask us to build */

void prom_init(struct prom_buf *b)
{
	*b = (struct prom_buf){0};
}

void prom_free(struct prom_buf *b)
{
	free(b->s);
	prom_init(b);
}

static void put(struct prom_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = cap <= PROM_MAX_TEXT ? realloc(b->s, cap) : NULL;
		if (!p) {
			b->failed = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void puts_(struct prom_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct prom_buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->failed = true;
		return;
	}
	put(b, tmp, (size_t)n);
}

bool prom_name_ok(const char *s, bool label)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			     (*p == ':' && !label);
		if (!alpha && !(p > s && *p >= '0' && *p <= '9'))
			return false;
	}
	return true;
}

/* HELP text escapes \ and newline; label values also ". */
static void escaped(struct prom_buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(b, "\\\\");
		else if (*s == '\n')
			puts_(b, "\\n");
		else if (*s == '"' && quote)
			puts_(b, "\\\"");
		else
			put(b, s, 1);
	}
}

void prom_head(struct prom_buf *b, const char *name, const char *type, const char *help)
{
	if (!prom_name_ok(name, false)) {
		b->failed = true;
		return;
	}
	putf(b, "# HELP %s ", name);
	escaped(b, help, false);
	putf(b, "\n# TYPE %s %s\n", name, type);
}

static void value(struct prom_buf *b, double v)
{
	if (isnan(v))
		puts_(b, "NaN");
	else if (isinf(v))
		puts_(b, v > 0 ? "+Inf" : "-Inf");
	else if (v == (double)(int64_t)v && fabs(v) < 9e15)
		putf(b, "%lld", (long long)v);
	else {
		/* The shortest text that reads back as v, as Prometheus' own clients write it. */
		char t[32];
		snprintf(t, sizeof(t), "%.15g", v);
		if (strtod(t, NULL) != v)
			snprintf(t, sizeof(t), "%.17g", v);
		puts_(b, t);
	}
}

static void labels(struct prom_buf *b, const struct prom_label *l, size_t nl, const char *le)
{
	if (!nl && !le)
		return;
	put(b, "{", 1);
	for (size_t i = 0; i < nl; i++) {
		if (!prom_name_ok(l[i].name, true)) {
			b->failed = true;
			return;
		}
		putf(b, "%s%s=\"", i ? "," : "", l[i].name);
		escaped(b, l[i].value ? l[i].value : "", true);
		put(b, "\"", 1);
	}
	if (le)
		putf(b, "%sle=\"%s\"", nl ? "," : "", le);
	put(b, "}", 1);
}

void prom_sample(struct prom_buf *b, const char *name, const struct prom_label *l, size_t nl,
		 double v)
{
	puts_(b, name);
	labels(b, l, nl, NULL);
	put(b, " ", 1);
	value(b, v);
	put(b, "\n", 1);
}

void prom_histogram(struct prom_buf *b, const char *name, const struct prom_label *l, size_t nl,
		    const double *bounds, const uint64_t *counts, size_t n, double sum)
{
	uint64_t cum = 0;
	char le[64];

	for (size_t i = 0; i <= n; i++) {
		cum += counts[i];
		if (i < n)
			snprintf(le, sizeof(le), "%.9g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		putf(b, "%s_bucket", name);
		labels(b, l, nl, le);
		putf(b, " %llu\n", (unsigned long long)cum);
	}
	putf(b, "%s_sum", name);
	labels(b, l, nl, NULL);
	put(b, " ", 1);
	value(b, sum);
	putf(b, "\n%s_count", name);
	labels(b, l, nl, NULL);
	putf(b, " %llu\n", (unsigned long long)cum);
}

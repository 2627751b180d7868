/*
 * Prometheus text exposition format (version 0.0.4), built into a growing buffer: a family's
 * HELP and TYPE lines, then its samples with escaped labels. Metric names follow
 * Prometheus' conventions (base units: _seconds, _bytes; counters end in _total); the caller
 * picks them, prom_head() refuses a name the format does not allow.
 */
#ifndef LP_OPS_PROM_H
#define LP_OPS_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prom_buf {
	char *s;
	size_t len, cap;
	bool failed; /* out of memory or a bad name: the text is not to be served */
};

struct prom_label {
	const char *name, *value;
};

void prom_init(struct prom_buf *b);
void prom_free(struct prom_buf *b);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void prom_head(struct prom_buf *b, const char *name, const char *type, const char *help);

/* One sample: name{labels} value. */
void prom_sample(struct prom_buf *b, const char *name, const struct prom_label *l, size_t nl,
		 double v);

/*
 * A histogram's samples: name_bucket{labels,le="bound"} for each of n upper bounds
 * (ascending), then le="+Inf", name_sum and name_count. counts[i] is the number of
 * observations in bucket i alone (at most bounds[i], more than bounds[i-1]); counts[n]
 * those above the last bound. The buckets are emitted cumulative, as the format wants.
 */
void prom_histogram(struct prom_buf *b, const char *name, const struct prom_label *l, size_t nl,
		    const double *bounds, const uint64_t *counts, size_t n, double sum);

/* Is s a metric (or label) name the format allows: [a-zA-Z_:][a-zA-Z0-9_:]* ? */
bool prom_name_ok(const char *s, bool label);

#endif

/*
 * metrics.c: criu-imgd's Prometheus families (docs/operations-imgd.md), rendered from the
 * status snapshot (status.c) through ops/prom.h, so that `criu-imgd status` and a scrape
 * never disagree. Per-image families carry an {image="ID"} label only while at most
 * METRICS_MAX_IMAGES images are loaded; beyond that they are left out (the totals stay).
 */
#ifndef IMGD_METRICS_H
#define IMGD_METRICS_H

#include "imgd-status.pb-c.h"
#include "ops/prom.h"

#define METRICS_MAX_IMAGES 64

/* The families of snapshot st into b. */
void metrics_render(const ImgdStatus *st, struct prom_buf *b);
/* metrics_fill_fn for ops/metrics_http.h (data: the server): a snapshot, rendered. */
void metrics_fill(void *srv, struct prom_buf *b);

#endif

/*
 * What an operator sees of a running criu-lazyd, from one snapshot of its state (a
 * lazyd_status message, proto/lazyd-status.proto):
 *   status.c   the snapshot, and the status socket's answer (the packed message)
 *   metrics.c  the Prometheus text, from the same snapshot
 *   client.c   `criu-lazyd status`: asks the socket, prints a table, JSON, or watches
 */
#ifndef LAZYD_STATUS_H
#define LAZYD_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "lazyd-status.pb-c.h"
#include "ops/prom.h"

/* In the work dir, next to lazy-pages.socket. */
#define LAZYD_STATUS_NAME "criu-lazyd.status"
/* Tasks listed in a snapshot (the rest count in the totals and tasks_omitted). */
#define LAZYD_STATUS_MAX_TASKS 4096
/* Per-task Prometheus series only for at most this many tasks: totals only above. */
#define LAZYD_METRICS_MAX_TASKS 64

/* Installed data pages, sampled each second: the rate over the last RATE_SAMPLES - 1 s. */
#define RATE_SAMPLES 6
struct lazyd_rate {
	double t[RATE_SAMPLES];
	uint64_t pages[RATE_SAMPLES];
	unsigned n, next;
};
void lazyd_rate_sample(struct lazyd_rate *r, double now, uint64_t pages);

struct lazyd;

/* The daemon's state at now (now_s()): NULL when out of memory. lazyd_snapshot_free() it. */
LazydStatus *lazyd_snapshot(const struct lazyd *d, double now);
void lazyd_snapshot_free(LazydStatus *m);

/* The status socket's answer (ops/ctl.h's ctl_reply_fn, data a struct lazyd): "status" gets
 * the packed snapshot, any other word an empty frame. */
uint8_t *lazyd_status_reply(void *data, const char *word, size_t *len);

/* metrics.c: the Prometheus families of a snapshot; lazyd_metrics_fill() is the /metrics
 * callback (ops/metrics_http.h's metrics_fill_fn, data a struct lazyd). */
void lazyd_metrics_text(const LazydStatus *m, struct prom_buf *b);
void lazyd_metrics_fill(void *data, struct prom_buf *b);

/* client.c: `criu-lazyd status ...` (argv[0] is "status"); the exit code. */
int lazyd_status_main(int argc, char **argv);

#endif

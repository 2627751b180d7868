/*
 * The daemons' Prometheus endpoint (--metrics-address ADDR:PORT): GET /metrics answered by
 * libmicrohttpd in the daemon's own thread. Given the daemon's event loop, the endpoint puts
 * its epoll fd there and runs when it is readable, and each second for the connections'
 * timeouts; a scrape builds its text then, through the daemon's fill callback, so it sees
 * the daemon's state between two events. Without a loop the caller drives it (fd, run).
 */
#ifndef LP_OPS_METRICS_HTTP_H
#define LP_OPS_METRICS_HTTP_H

#include "prom.h"
#include "util/err.h"
#include "util/ev.h"

struct metrics_http;

/* Append the daemon's families to b (prom.h). */
typedef void (*metrics_fill_fn)(void *data, struct prom_buf *b);

/* Listen on HOST:PORT or [V6]:PORT (numeric), served from loop (NULL: the caller drives
 * it with metrics_http_fd/run). 0 or -errno with e. */
int metrics_http_start(struct metrics_http **out, struct ev_loop *loop, const char *hostport,
		       metrics_fill_fn fill, void *data, struct errmsg *e);
/* The fd to watch for EV_READ. */
int metrics_http_fd(const struct metrics_http *m);
/* The port it listens on. */
unsigned metrics_http_port(const struct metrics_http *m);
/* Serve what is ready; also call it now and then (connection timeouts). */
void metrics_http_run(struct metrics_http *m);
/* Scrapes answered so far. */
unsigned long metrics_http_scrapes(const struct metrics_http *m);
/* Stop serving (out of its loop too) and free m; NULL is fine. */
void metrics_http_stop(struct metrics_http *m);

#endif

/* criu-lazyd command line: compatible with `criu lazy-pages`. */
#ifndef LAZYD_OPTS_H
#define LAZYD_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "wire/wire_tls.h"

enum fill_mode { FILL_AUTO, FILL_UFFD, FILL_KMOD };
/* --working-set (workset.c): auto records, and replays a record that exists. */
enum ws_mode { WS_OFF, WS_RECORD, WS_REPLAY, WS_AUTO };

struct lazyd_opts {
	const char *images_dir;
	const char *work_dir;
	const char *log_file;
	const char *pidfile;
	const char *stats_file;
	int verbosity;
	int status_fd;
	bool daemon;
	enum fill_mode fill;
	uint32_t fault_window; /* pages installed around a fault */
	uint32_t drain_chunk;  /* pages per background step */
	uint32_t fill_threads; /* --fill-threads: 0 auto, 1 none (the loop installs) */
	/* page sources other than the local images */
	const char *image_server; /* --image-server HOST:PORT (criu-imgd) */
	const char *image_id;	  /* --image ID */
	const char *auth_key;	  /* --auth-key FILE */
	struct wire_tls_cfg tls;  /* --tls/--no-tls, --tls-ca, --tls-cert, --tls-key, --tls-name */
	bool page_server;	  /* --page-server: CRIU's page server at address:port */
	const char *ps_address;
	int ps_port;
	uint32_t source_retries;     /* reconnects / re-reads before a page counts as lost */
	uint32_t source_timeout;     /* ms per network request */
	uint32_t prefetch_window;    /* background reads in flight (image server); 0: auto */
	uint32_t share_cache_mb;     /* fetched data kept for fork relatives (network sources) */
	int compress;		     /* --compress: 0 off, LW_COMPRESS__LW_COMPRESS_AUTO or _ON */
	int fault_dscp;		     /* --fault-dscp: wire_qos.h (WIRE_DSCP_OFF: unmarked) */
	bool fetch_only;	     /* --fetch-only: fill an empty -D with the metadata, exit */
	const char *metrics_address; /* --metrics-address ADDR:PORT: Prometheus /metrics */
	bool keeper;		     /* --keeper on|off: uffds held by a keeper process */
	enum ws_mode working_set;    /* --working-set off|record|replay|auto */
	uint32_t ws_hold_ms;	     /* --working-set-hold MS */
	unsigned worker_restarts;    /* --worker-restarts N/SECONDS: more crashes within */
	unsigned restart_window_s;   /* the window kill the tasks */
};

/* 0: run; 1: --help printed, exit 0; -1: bad usage (message printed), exit 1. */
int lazyd_parse_opts(int argc, char **argv, struct lazyd_opts *o);

#endif

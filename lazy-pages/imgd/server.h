/*
 * server.c: criu-imgd's event loop (util/ev.h) over non-blocking sockets: the listener, one
 * registration per session, the signalfd. After each turn, a service pass serves the urgent
 * (fault) work of every session first, then one frame of background work per session, so a
 * fault never waits behind another client's stream.
 */
#ifndef IMGD_SERVER_H
#define IMGD_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "linger.h"
#include "session.h"
#include "util/ev.h"

struct metrics_http;

struct imgd_server {
	struct imgd d; /* what the sessions share */
	struct ev_loop *loop;
	int listen_fd, sig_fd;
	int port; /* the port listened on (--port 0: the kernel's pick) */
	struct imgd_session *sessions;
	struct linger_set
	    lingering;	     /* closed sessions' connections, read until the client closes */
	bool stop;	     /* a signal came */
	bool accept_limited; /* the last accept failed for want of fds or memory (logged once) */
	uint64_t t_start;    /* mono_ms: server_init */
	/* the operators' interfaces (lazy-pages/ops/): the status socket, /metrics */
	int ctl_fd;
	char ctl_path[108];
	dev_t ctl_dev; /* the socket file we made: removed at the end if still ours */
	ino_t ctl_ino;
	struct metrics_http *metrics;
};

/* Before anything: no fds, no loop. */
void server_init(struct imgd_server *srv, const struct imgd_opts *o);
/* Listen (--address, --port), TLS if wanted, the event loop, the status socket and
 * --metrics-address: 0 or -errno (logged). */
int server_start(struct imgd_server *srv);
/* SIGTERM, SIGINT, SIGHUP stop the loop (once detached: the signalfd is the daemon's). 0 or
 * -errno (logged). */
int server_watch_signals(struct imgd_server *srv);
/* Serve until a signal: 0, or -errno (logged) when the loop fails. */
int server_run(struct imgd_server *srv);
/* Close every session ("server stopping"). */
void server_close_sessions(struct imgd_server *srv);
/* The loop, the fds, the status socket and the metrics endpoint, the TLS credentials (not
 * the catalog, not the keys). */
void server_free(struct imgd_server *srv);

#endif

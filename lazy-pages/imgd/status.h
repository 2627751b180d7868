/*
 * status.c: one snapshot of criu-imgd's state (proto/imgd-status.proto), built from the
 * counters in session.h, the sessions and the catalog between two events of the loop. The
 * status socket sends it packed (status_reply), metrics.c renders it for Prometheus, and
 * `criu-imgd status` (status_cli.c) prints it: one source of truth.
 */
#ifndef IMGD_STATUS_H
#define IMGD_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imgd-status.pb-c.h"
#include "server.h"

#define STATUS_SOCK_RUN_DIR "/run/criu-imgd"
#define STATUS_SOCK_NAME "status.sock"

/*
 * The status socket's path into buf: --status-socket (opt) if given; else
 * $RUNTIME_DIRECTORY/status.sock (systemd's RuntimeDirectory=; its first dir); else
 * /run/criu-imgd/status.sock, for the server only as root (for the client always).
 * 1: a path; 0: none (--status-socket none, or a server not root outside systemd);
 * -ENAMETOOLONG.
 */
int status_socket_path(const char *opt, bool server, char *buf, size_t len);

/* The snapshot of the server now: NULL when out of memory; status_free() it. Its strings
 * may point into the sessions: use it before the loop turns again. */
ImgdStatus *status_build(const struct imgd_server *srv);
void status_free(ImgdStatus *st);

/* The status socket's answer (ctl_reply_fn, data: the server): to "status", the packed
 * snapshot; to any other word, nothing. */
uint8_t *status_reply(void *srv, const char *word, size_t *len);

/* `criu-imgd status ARGS` (argv[0] is "status"): the exit status. */
int status_cli(int argc, char **argv);

#endif

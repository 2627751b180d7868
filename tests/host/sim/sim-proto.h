/*
 * restore-sim: the daemon under test and the restore side of CRIU's
 * lazy-pages socket protocol (per pstree entry: native int pid, then one
 * uffd by SCM_RIGHTS unless the pid is negative; then uint32 "RSTF").
 */
#ifndef SIM_PROTO_H
#define SIM_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "sim-model.h"

#define LAZY_SOCK_NAME "lazy-pages.socket"

/* Start the daemon: argv as for 'criu lazy-pages', output to outpath. Returns the status fd. */
int daemon_start(struct sim *s);

/* Reap the daemon if it has exited (or wait for it until the deadline). 1 if reaped. */
int daemon_reap(struct sim *s, uint64_t deadline);

void daemon_kill(struct sim *s); /* SIGKILL and reap, unless reaped */

bool daemon_exited_ok(const struct sim *s); /* reaped, and it exited 0 */

/*
 * Wait until the daemon is ready: it writes to --status-fd (as criu does), or
 * at least its socket exists. 0 ready, -1 it exited or hung.
 */
int daemon_wait_ready(struct sim *s, int stfd);

/*
 * With -d: the process we started must have exited 0, and the pid in --pidfile is the
 * daemon; we are a child subreaper, so it is our child now and we can wait for it.
 */
int daemon_adopt(struct sim *s);

/* Connect to the daemon's lazy-pages.socket (retried for 5 s while it is not there). */
int lazy_connect(struct sim *s);

/* Send 'n' pstree entries (all for a normal restore) and, if 'fin', the RSTF marker. */
int restore_handshake(struct sim *s, int n, bool fin);

/* Stop the daemon (SIGSTOP) and wait until it is stopped. */
int daemon_stop(struct sim *s, uint64_t deadline);

/* SC_INTRUDER: $SIM_INTRUDER SOCKET PID, or the built-in intruder. 1 if it was built in. */
int run_intruder(struct sim *s);

/* Receive a task's uffd over its control socket. */
int recv_fd(int sock, uint64_t deadline);

#endif

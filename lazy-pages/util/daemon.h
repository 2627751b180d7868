/* What criu-lazyd and criu-imgd share as daemons: detaching, pidfiles, signals. */
#ifndef LAZY_DAEMON_H
#define LAZY_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

/* 0 or -errno. */
int daemon_write_pidfile(const char *path, pid_t pid);
/*
 * Detach: the parent writes the child's pid to pidfile (if any) and exits 0,
 * or exits 1 with a message when it cannot; the child gets its own session
 * and /dev/null for stdin, stdout and (unless keep_stderr) stderr. Returns
 * in the child: 0, or -errno if fork failed.
 */
int daemon_detach(const char *prog, const char *pidfile, bool keep_stderr);
/*
 * daemon_detach(), except that the parent waits until the child says it is ready (a byte on
 * *ready_fd, then close it: daemon_detach_ready's child end) before it writes the pidfile
 * and exits 0; if the child closes *ready_fd without that byte (or dies), the parent exits 1.
 */
int daemon_detach_ready(const char *prog, const char *pidfile, bool keep_stderr, int *ready_fd);
/* Say "ready" on fd (one byte, as --status-fd and daemon_detach_ready's pipe expect) and
 * close it. 0 or -errno. */
int daemon_say_ready(int fd);
/* Block SIGTERM, SIGINT, SIGHUP and return a signalfd for them, or -errno. */
int daemon_signalfd(void);

#endif

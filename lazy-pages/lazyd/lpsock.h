/*
 * CRIU's lazy-pages socket, daemon side. criu restore connects to
 * lazy-pages.socket in the work dir and sends, per task in pstree.img, a
 * native int pid followed (pid > 0) by the task's uffd over SCM_RIGHTS, then
 * the uint32 LPS_RESTORE_FINISHED once all tasks are restored. CRIU sends a
 * task's pid and uffd from the task itself (it inherits the connection), so
 * the kernel's SCM_CREDENTIALS name the sender of every item.
 */
#ifndef LAZYD_LPSOCK_H
#define LAZYD_LPSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define LPS_NAME "lazy-pages.socket"
#define LPS_RESTORE_FINISHED 0x52535446u /* "RSTF" */
#define LPS_MAX_FDS 64
#define LPS_BUF 256

struct lps_rx {
	uint8_t buf[LPS_BUF];
	pid_t from[LPS_BUF]; /* the sender of each buffered byte (0: the kernel did not say) */
	size_t len;
	int fds[LPS_MAX_FDS];
	pid_t fd_from[LPS_MAX_FDS]; /* the sender of each fd */
	size_t nfds;
};

enum lps_item { LPS_NONE, LPS_TASK, LPS_ZOMBIE, LPS_FINISHED, LPS_EOF, LPS_ERROR };

/* One item: the pid as restore sent it, the uffd (LPS_TASK, the caller's), the sender. */
struct lps_msg {
	int pid;
	int uffd;
	pid_t sender; /* in our pid namespace; 0 if not known or not one process */
};

/*
 * Bind and listen on LPS_NAME in the current directory: the socket is 0600
 * and ours whatever the umask, the directory must be ours (or root's) and not
 * writable by others (unless sticky). fd, or -errno (the cause is logged).
 */
int lps_listen(void);
/* The same under another name in the current directory (a socket that listens before it
 * may be found: LPS_STARTING), and that name made LPS_NAME (rename: atomic). 0 or -errno. */
#define LPS_STARTING ".lazy-pages.socket.starting"
int lps_listen_as(const char *name);
int lps_publish(const char *name);
/*
 * Credentials of a connecting peer (into *cr), and NULL if it may be the
 * restore (our own uid, a pid we can see), else why not.
 */
const char *lps_check_peer(int conn, struct ucred *cr);
/*
 * Accept a connection on the listening socket: the restore's if its peer may be the restore
 * (lps_check_peer) and none has connected yet (!taken): its fd (non-blocking) with *cr its
 * credentials. Any other is closed unread with a warning; -1 then, or when there was none.
 */
int lps_accept(int listen_fd, bool taken, struct ucred *cr);
/* Is fd a userfaultfd? NULL yes, else why not. */
const char *lps_check_uffd(int fd);
/*
 * Read what is there and return the next complete item: a task (pid, uffd
 * taken by the caller), a zombie (pid), the finished marker, EOF or an
 * error; LPS_NONE when more bytes are needed. 'tasks_left' says whether a
 * pid or the marker comes next.
 */
enum lps_item lps_next(int conn, struct lps_rx *rx, size_t tasks_left, struct lps_msg *m);
void lps_rx_free(struct lps_rx *rx);

#endif

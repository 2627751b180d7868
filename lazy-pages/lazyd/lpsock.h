/*
 * CRIU's lazy-pages socket, daemon side. criu restore connects to
 * lazy-pages.socket in the work dir and sends, per task in pstree.img, a
 * native int pid followed (pid > 0) by the task's uffd over SCM_RIGHTS, then
 * the uint32 LPS_RESTORE_FINISHED once all tasks are restored.
 */
#ifndef LAZYD_LPSOCK_H
#define LAZYD_LPSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LPS_NAME "lazy-pages.socket"
#define LPS_RESTORE_FINISHED 0x52535446u /* "RSTF" */
#define LPS_MAX_FDS 64

struct lps_rx {
	uint8_t buf[256];
	size_t len;
	int fds[LPS_MAX_FDS];
	size_t nfds;
};

enum lps_item { LPS_NONE, LPS_TASK, LPS_ZOMBIE, LPS_FINISHED, LPS_EOF, LPS_ERROR };

/* Bind and listen on LPS_NAME in the current directory. fd or -errno. */
int lps_listen(void);
/* Peer's pid (the restoring criu), or -1. */
pid_t lps_peer_pid(int conn);
/*
 * Read what is there and return the next complete item: a task (pid, uffd
 * taken by the caller), a zombie (pid), the finished marker, EOF or an
 * error; LPS_NONE when more bytes are needed. 'tasks_left' says whether a
 * pid or the marker comes next.
 */
enum lps_item lps_next(int conn, struct lps_rx *rx, size_t tasks_left, int *pid, int *uffd);
void lps_rx_free(struct lps_rx *rx);

#endif

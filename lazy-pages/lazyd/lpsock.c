#include "lpsock.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

int lps_listen(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, LPS_NAME);
	unlink(LPS_NAME);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4)) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

pid_t lps_peer_pid(int conn)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return -1;
	return cr.pid;
}

/* One recvmsg: append bytes to rx->buf and fds to rx->fds. >0, 0 on EOF, -errno. */
static ssize_t rx_fill(int conn, struct lps_rx *rx)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {rx->buf + rx->len, sizeof(rx->buf) - rx->len};
	struct msghdr mh = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cm.buf,
	    .msg_controllen = sizeof(cm.buf),
	};

	if (iov.iov_len == 0)
		return -EPROTO;
	ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[16];
		memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
		for (size_t i = 0; i < nfd; i++) {
			if (rx->nfds < LPS_MAX_FDS)
				rx->fds[rx->nfds++] = fds[i];
			else
				close(fds[i]);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		pr_warn("lazy-pages socket: control data truncated");
	rx->len += (size_t)n;
	return n;
}

static void consume(struct lps_rx *rx, size_t n)
{
	memmove(rx->buf, rx->buf + n, rx->len - n);
	rx->len -= n;
}

static int take_fd(struct lps_rx *rx)
{
	int fd = rx->fds[0];
	memmove(rx->fds, rx->fds + 1, (rx->nfds - 1) * sizeof(int));
	rx->nfds--;
	return fd;
}

/* Parse one item from what is buffered; LPS_NONE if incomplete. */
static enum lps_item parse(struct lps_rx *rx, size_t tasks_left, int *pid, int *uffd)
{
	int32_t v;

	if (rx->len < sizeof(v))
		return LPS_NONE;
	memcpy(&v, rx->buf, sizeof(v));
	/*
	 * The marker cannot be a pid (it is above PID_MAX_LIMIT), so it is
	 * recognised even if criu sends fewer tasks than pstree.img lists.
	 */
	if ((uint32_t)v == LPS_RESTORE_FINISHED) {
		if (tasks_left)
			pr_warn("restore finished with %zu tasks of pstree.img not sent",
				tasks_left);
		consume(rx, sizeof(v));
		return LPS_FINISHED;
	}
	if (!tasks_left) {
		pr_err("lazy-pages socket: expected the restore-finished marker, got 0x%08x",
		       (uint32_t)v);
		return LPS_ERROR;
	}
	if (v == 0) {
		pr_err("lazy-pages socket: pid 0 is not a task");
		return LPS_ERROR;
	}
	if (v < 0) {
		consume(rx, sizeof(v));
		*pid = -v;
		return LPS_ZOMBIE;
	}
	/* The uffd comes with at least one data byte after the pid. */
	if (rx->len < sizeof(v) + 1 || !rx->nfds)
		return LPS_NONE;
	consume(rx, sizeof(v) + 1);
	*pid = v;
	*uffd = take_fd(rx);
	return LPS_TASK;
}

enum lps_item lps_next(int conn, struct lps_rx *rx, size_t tasks_left, int *pid, int *uffd)
{
	enum lps_item it = parse(rx, tasks_left, pid, uffd);

	if (it != LPS_NONE)
		return it;
	ssize_t n = rx_fill(conn, rx);
	if (n == -EAGAIN || n == -EINTR)
		return LPS_NONE;
	if (n < 0) {
		pr_err("lazy-pages socket: %s", strerror((int)-n));
		return LPS_ERROR;
	}
	if (n == 0)
		return rx->len ? LPS_ERROR : LPS_EOF;
	return parse(rx, tasks_left, pid, uffd);
}

void lps_rx_free(struct lps_rx *rx)
{
	for (size_t i = 0; i < rx->nfds; i++)
		close(rx->fds[i]);
	rx->nfds = 0;
	rx->len = 0;
}

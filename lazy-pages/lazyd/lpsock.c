#include "lpsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

#define LPS_MODE 0600

/*
 * Anyone who may write the work dir could put a socket of their own in our
 * place, and criu would hand them the tasks' uffds: refuse such a dir.
 */
static int check_dir(void)
{
	struct stat st;

	if (stat(".", &st))
		return -errno;
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		pr_err("work dir: owned by uid %u, not by us (uid %u) or root: another user could "
		       "replace %s",
		       (unsigned)st.st_uid, (unsigned)geteuid(), LPS_NAME);
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		pr_err("work dir: mode %04o lets others replace %s: make it writable by its "
		       "owner only (or sticky)",
		       (unsigned)(st.st_mode & 07777), LPS_NAME);
		return -EPERM;
	}
	return 0;
}

/* Bound under umask 077, then 0600: the socket is never open to others, whatever our umask. */
static int bind_private(int fd, const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;

	strcpy(sa.sun_path, name);
	if (unlink(name) && errno != ENOENT)
		return -errno;
	mode_t old = umask(0077);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc || chmod(name, LPS_MODE) || lstat(name, &st))
		return -errno;
	if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 07777) != LPS_MODE) {
		pr_err("%s: mode %04o, uid %u after bind: not a private socket of ours", name,
		       (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return -EPERM;
	}
	return 0;
}

int lps_listen(void)
{
	return lps_listen_as(LPS_NAME);
}

int lps_publish(const char *name)
{
	return rename(name, LPS_NAME) ? -errno : 0;
}

int lps_listen_as(const char *name)
{
	int one = 1, rc = check_dir();

	if (rc)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Every item then carries its sender (accepted sockets inherit the option). */
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)))
		rc = -errno;
	if (!rc)
		rc = bind_private(fd, name);
	if (!rc && listen(fd, 4))
		rc = -errno;
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

const char *lps_check_peer(int conn, struct ucred *cr)
{
	socklen_t len = sizeof(*cr);
	int one = 1;

	memset(cr, 0, sizeof(*cr));
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, cr, &len))
		return "no peer credentials";
	if (cr->uid != geteuid())
		return "not our uid";
	if (cr->pid <= 0)
		return "its pid is not visible in our pid namespace";
	if (setsockopt(conn, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)))
		return "cannot ask for the senders' credentials";
	return NULL;
}

int lps_accept(int listen_fd, bool taken, struct ucred *cr)
{
	int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (c < 0)
		return -1;
	const char *why = lps_check_peer(c, cr);
	if (!why && taken)
		why = "a restore has connected already";
	if (why) {
		pr_warn("lazy-pages.socket: connection from pid %d (uid %u) refused: %s",
			(int)cr->pid, (unsigned)cr->uid, why);
		close(c);
		return -1;
	}
	return c;
}

const char *lps_check_uffd(int fd)
{
	static const char want[] = "anon_inode:[userfaultfd]";
	char path[64], link[sizeof(want) + 1];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return "its type cannot be read from /proc/self/fd";
	link[n] = '\0';
	return strcmp(link, want) ? "not a userfaultfd" : NULL;
}

/* Keep the fds of one SCM_RIGHTS message (those beyond LPS_MAX_FDS are closed). */
static void take_rights(struct lps_rx *rx, const struct cmsghdr *c, pid_t from)
{
	size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	int fds[16];

	if (nfd > 16)
		nfd = 16;
	memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
	for (size_t i = 0; i < nfd; i++) {
		if (rx->nfds < LPS_MAX_FDS) {
			rx->fd_from[rx->nfds] = from;
			rx->fds[rx->nfds++] = fds[i];
		} else {
			close(fds[i]);
		}
	}
}

/*
 * One recvmsg: append bytes to rx->buf, their sender to rx->from and fds to
 * rx->fds. The kernel never joins bytes of two senders in one read when
 * credentials are passed. >0, 0 on EOF, -errno.
 */
static ssize_t rx_fill(int conn, struct lps_rx *rx)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16) + CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {rx->buf + rx->len, sizeof(rx->buf) - rx->len};
	struct msghdr mh = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cm.buf,
	    .msg_controllen = sizeof(cm.buf),
	};
	pid_t from = 0;

	if (iov.iov_len == 0)
		return -EPROTO;
	ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			struct ucred cr;
			memcpy(&cr, CMSG_DATA(c), sizeof(cr));
			from = cr.pid;
		}
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			take_rights(rx, c, from);
	if (mh.msg_flags & MSG_CTRUNC)
		pr_warn("lazy-pages socket: control data truncated");
	for (ssize_t i = 0; i < n; i++)
		rx->from[rx->len + (size_t)i] = from;
	rx->len += (size_t)n;
	return n;
}

static void consume(struct lps_rx *rx, size_t n)
{
	memmove(rx->buf, rx->buf + n, rx->len - n);
	memmove(rx->from, rx->from + n, (rx->len - n) * sizeof(rx->from[0]));
	rx->len -= n;
}

/* The oldest fd; *from is set to 0 unless the same process sent it. */
static int take_fd(struct lps_rx *rx, pid_t *from)
{
	int fd = rx->fds[0];

	if (rx->fd_from[0] != *from)
		*from = 0;
	memmove(rx->fds, rx->fds + 1, (rx->nfds - 1) * sizeof(int));
	memmove(rx->fd_from, rx->fd_from + 1, (rx->nfds - 1) * sizeof(pid_t));
	rx->nfds--;
	return fd;
}

/* The one process that sent the first n buffered bytes, or 0. */
static pid_t sender_of(const struct lps_rx *rx, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (rx->from[i] != rx->from[0])
			return 0;
	return rx->from[0];
}

/* Parse one item from what is buffered; LPS_NONE if incomplete. */
static enum lps_item parse(struct lps_rx *rx, size_t tasks_left, struct lps_msg *m)
{
	int32_t v;

	if (rx->len < sizeof(v))
		return LPS_NONE;
	memcpy(&v, rx->buf, sizeof(v));
	m->sender = sender_of(rx, sizeof(v));
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
		m->pid = -v;
		return LPS_ZOMBIE;
	}
	/* The uffd comes with at least one data byte after the pid, from the same sender. */
	if (rx->len < sizeof(v) + 1 || !rx->nfds)
		return LPS_NONE;
	m->sender = sender_of(rx, sizeof(v) + 1);
	consume(rx, sizeof(v) + 1);
	m->pid = v;
	m->uffd = take_fd(rx, &m->sender);
	return LPS_TASK;
}

enum lps_item lps_next(int conn, struct lps_rx *rx, size_t tasks_left, struct lps_msg *m)
{
	enum lps_item it = parse(rx, tasks_left, m);

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
	return parse(rx, tasks_left, m);
}

void lps_rx_free(struct lps_rx *rx)
{
	for (size_t i = 0; i < rx->nfds; i++)
		close(rx->fds[i]);
	rx->nfds = 0;
	rx->len = 0;
}

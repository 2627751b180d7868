/*
 * Does a daemon already listen on lazy-pages.socket in the work dir? Connecting to find out
 * would be taken for the restore itself by a lazy-pages daemon (it serves one connection),
 * so we ask the kernel instead: sock_diag lists the listening Unix sockets with the inode of
 * the file each is bound to, and we look for the one of ./lazy-pages.socket.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lr.h"

/* The kernel's dev_t (20-bit minor) as reported by unix_diag, against a userspace st_dev. */
static bool same_dev(uint32_t kdev, dev_t dev)
{
	return (kdev >> 20) == major(dev) && (kdev & 0xfffff) == minor(dev);
}

struct diag_result {
	bool listening;	    /* a listening socket is bound to the file */
	unsigned backlog;   /* connections it has not accepted yet */
	unsigned connected; /* accepted connections (they share the listener's file) */
};

/* Ask sock_diag about the Unix sockets bound to the file INO/DEV. 0, or -errno if sock_diag
 * does not work here. */
static int diag_scan(ino_t ino, dev_t dev, struct diag_result *res)
{
	struct {
		struct nlmsghdr nh;
		struct unix_diag_req req;
	} msg = {
	    .nh = {.nlmsg_len = sizeof(msg),
		   .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		   .nlmsg_seq = 1},
	    .req = {.sdiag_family = AF_UNIX,
		    .udiag_states = (1U << TCP_LISTEN) | (1U << TCP_ESTABLISHED),
		    .udiag_show = UDIAG_SHOW_VFS | UDIAG_SHOW_RQLEN},
	};
	struct sockaddr_nl nladdr = {.nl_family = AF_NETLINK};
	static char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	int rc = 0;

	memset(res, 0, sizeof(*res));
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&nladdr, sizeof(nladdr)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	for (bool done = false; !done;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0) {
			rc = len < 0 ? -errno : -EIO;
			break;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
		     h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				rc = e->error ? e->error : -EIO;
				done = true;
				break;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				continue;
			struct unix_diag_msg *m = NLMSG_DATA(h);
			int alen = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));
			bool mine = false;
			unsigned rq = 0;
			for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
			     a = RTA_NEXT(a, alen)) {
				if (a->rta_type == UNIX_DIAG_VFS &&
				    RTA_PAYLOAD(a) >= (int)sizeof(struct unix_diag_vfs)) {
					struct unix_diag_vfs *v = RTA_DATA(a);
					mine = v->udiag_vfs_ino == ino &&
					       same_dev(v->udiag_vfs_dev, dev);
				} else if (a->rta_type == UNIX_DIAG_RQLEN &&
					   RTA_PAYLOAD(a) >= (int)sizeof(struct unix_diag_rqlen)) {
					rq = ((struct unix_diag_rqlen *)RTA_DATA(a))->udiag_rqueue;
				}
			}
			if (!mine)
				continue;
			if (m->udiag_state == TCP_LISTEN) {
				res->listening = true;
				res->backlog += rq; /* for a listener: its accept queue */
			} else {
				res->connected++;
			}
		}
	}
	close(fd);
	return rc;
}

int lr_socket_listening(struct errmsg *e)
{
	struct stat st;

	if (lstat(LR_SOCKET, &st)) {
		if (errno == ENOENT)
			return 0;
		return errmsg_set(e, errno, "cannot stat %s: %s", LR_SOCKET, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return errmsg_set(e, ENOTSOCK, "%s in the work dir exists and is not a socket",
				  LR_SOCKET);
	struct diag_result res;
	int rc = diag_scan(st.st_ino, st.st_dev, &res);
	if (rc == 0)
		return res.listening;
	return errmsg_set(e, rc, "cannot tell whether a daemon listens on %s (sock_diag: %s)",
			  LR_SOCKET, strerror(-rc));
}

/* Does the daemon hold a userfaultfd, i.e. serve restored tasks? */
static bool holds_uffd(pid_t pid)
{
	char dir[64], path[384], link[64];
	bool found = false;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return false;
	for (struct dirent *e; !found && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = !strcmp(link, "anon_inode:[userfaultfd]");
		}
	}
	closedir(d);
	return found;
}

int lr_daemon_engaged(const struct lr_daemon *d)
{
	struct diag_result res;

	/* In the order a lazy restore goes through them: a connection waiting to be accepted,
	 * an accepted one, the tasks' uffds after the restore hung up. */
	int rc = diag_scan(d->sock_ino, d->sock_dev, &res);
	if (rc == 0 && (res.backlog || res.connected))
		return 1;
	if (holds_uffd(d->pid))
		return 1;
	return rc;
}

/*
 * Does a daemon already listen on lazy-pages.socket in the work dir? Connecting to find out
 * would be taken for the restore itself by a lazy-pages daemon (it serves one connection),
 * so we ask the kernel instead: sock_diag lists the listening Unix sockets with the inode of
 * the file each is bound to, and we look for the one of ./lazy-pages.socket.
 */
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

/* 1 found, 0 not found, -errno if sock_diag does not work here. */
static int find_listener(const struct stat *st)
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
		    .udiag_states = 1U << TCP_LISTEN,
		    .udiag_show = UDIAG_SHOW_VFS},
	};
	struct sockaddr_nl nladdr = {.nl_family = AF_NETLINK};
	static char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	int found = 0, rc = 0;

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
			struct rtattr *a = (struct rtattr *)(m + 1);
			for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
				if (a->rta_type != UNIX_DIAG_VFS ||
				    RTA_PAYLOAD(a) < (int)sizeof(struct unix_diag_vfs))
					continue;
				struct unix_diag_vfs *v = RTA_DATA(a);
				if (v->udiag_vfs_ino == st->st_ino &&
				    same_dev(v->udiag_vfs_dev, st->st_dev))
					found = 1;
			}
		}
	}
	close(fd);
	return found ? 1 : rc;
}

int lr_socket_listening(char *why, size_t n)
{
	struct stat st;

	if (lstat(LR_SOCKET, &st)) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, n, "cannot stat %s: %s", LR_SOCKET, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, n, "%s in the work dir exists and is not a socket", LR_SOCKET);
		return -1;
	}
	int rc = find_listener(&st);
	if (rc >= 0)
		return rc;
	snprintf(why, n, "cannot tell whether a daemon listens on %s (sock_diag: %s)", LR_SOCKET,
		 strerror(-rc));
	return -1;
}

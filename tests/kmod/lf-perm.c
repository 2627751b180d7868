/*
 * lf-perm: who may use lazyfill.ko. Run as root; the unprivileged cases run
 * in children that drop to nobody (uid and gid 65534, no groups, no
 * capabilities) with setresgid()/setresuid(), as setpriv --reuid --regid
 * --clear-groups does.
 *
 *  1. /dev/lazyfill is a root-owned 0600 character device: nobody cannot
 *     open it (EACCES).
 *  2. BIND needs ptrace rights over the task (the kernel's
 *     PTRACE_MODE_ATTACH_REALCREDS rules). Nobody holds /dev/lazyfill files
 *     opened by root (inherited across the privilege drop, and one passed
 *     over a unix socket afterwards) and a uffd of its own, and gets EPERM
 *     binding: a root task by pid, by pidfd, with LAZYFILL_BIND_VERIFY; a
 *     task of its own uid that is not dumpable; from a user namespace of its
 *     own (where it has every capability), the root task and the
 *     non-dumpable one (run from pid 1's root: the guest's chroot forbids
 *     user namespaces). It may bind itself and a dumpable task of its own
 *     uid and gid. Root may bind nobody's tasks, dumpable or not.
 *  3. The netlink "events" group needs CAP_NET_ADMIN: nobody, and nobody as
 *     root of its own user namespace, gets EPERM joining it
 *     (NETLINK_ADD_MEMBERSHIP); GET_STATS is refused too. Root joins.
 *
 * Exit 0 if every check passed, 1 otherwise.
 */
#include "kt/kt.h"

#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>

#include "lib/lazyfill_nl.h"

#define NOBODY 65534

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Device files opened by root before the unprivileged child drops. */
enum { FD_PID, FD_PIDFD, FD_VERIFY, FD_NODUMP, FD_DUMP, FD_SELF, FD_NS1, FD_NS2, FD_NR };

static int devfd[FD_NR];
static pid_t root_task, nobody_dump, nobody_nodump;

static void drop_to_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		die("dropping to uid/gid %d", NOBODY);
	if (getuid() != NOBODY || geteuid() != NOBODY || getgid() != NOBODY)
		die("still privileged");
}

/*
 * A task that waits to be killed: as root, or as nobody (dumpable or not).
 * Changing uids made it non-dumpable (commit_creds()); the dumpable one
 * asks to be dumpable again, as an exec of a plain program would make it.
 */
static pid_t spawn_target(int as_nobody, int dumpable)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe(p))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		close(p[0]);
		if (as_nobody) {
			drop_to_nobody();
			if (prctl(PR_SET_DUMPABLE, dumpable ? 1 : 0, 0, 0, 0))
				die("PR_SET_DUMPABLE");
		}
		kt_write_all(p[1], "r", 1);
		for (;;)
			pause();
	}
	close(p[1]);
	kt_read_all(p[0], &c, 1);
	close(p[0]);
	return pid;
}

/* BIND fd to (uffd, pid or pidfd): 0 or -errno. */
static int bind_fd(int fd, int uffd, pid_t pid, int pidfd, uint32_t flags)
{
	struct lazyfill_bind b = {
		.version = LAZYFILL_UAPI_VERSION,
		.flags = flags,
		.uffd = uffd,
		.pidfd = pidfd,
		.pid = pidfd >= 0 ? 0 : pid,
	};

	return ioctl(fd, LAZYFILL_IOC_BIND, &b) ? -errno : 0;
}

/* Join the "events" group: 0, -errno from NETLINK_ADD_MEMBERSHIP, or -ENOENT. */
static int join_events(void)
{
	struct nl_sock *sk = nl_socket_alloc();
	int grp, rc;

	if (!sk || genl_connect(sk))
		die("generic netlink socket");
	grp = genl_ctrl_resolve_grp(sk, LAZYFILL_GENL_NAME, LAZYFILL_GENL_MCGRP);
	if (grp < 0) {
		nl_socket_free(sk);
		return -ENOENT;
	}
	rc = setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp,
			sizeof(grp)) ? -errno : 0;
	nl_socket_free(sk);
	return rc;
}

/* GET_STATS (global counters): 0 or -errno. */
static int get_stats(void)
{
	struct lazyfill_nl *nl;
	struct lazyfill_nl_stats st;
	int rc = lazyfill_nl_open(&nl);

	if (rc)
		return rc;
	rc = lazyfill_nl_get(nl, 0, &st);
	lazyfill_nl_close(nl);
	return rc;
}

#define EXPECT(what, rc, want)                                                                     \
	do {                                                                                       \
		int _rc = (rc);                                                                    \
		CHECK(_rc == (want), "%s: %d (%s), want %d (%s)", what, _rc, strerror(-_rc),       \
		      want, strerror(-(want)));                                                    \
		if (_rc == (want))                                                                 \
			printf("ok: %s: %s\n", what, (want) ? strerror(-(want)) : "allowed");      \
	} while (0)

/*
 * Nobody as root of a user namespace of its own (a child of root): every
 * capability there, none outside. The guest runs the tests in a chroot, and
 * a chrooted task may not create a user namespace (EPERM), so it first
 * moves to pid 1's root (still as root; a no-op outside a chroot).
 */
static int userns_child(void)
{
	int uffd = kt_uffd(0);

	kt_failures = 0;
	if (!chroot("/proc/1/root") && chdir("/"))
		die("chdir /");
	drop_to_nobody();
	if (unshare(CLONE_NEWUSER)) {
		printf("skip: user namespace cases (unshare: %s)\n", strerror(errno));
		return 0;
	}
	EXPECT("userns: bind a root task", bind_fd(devfd[FD_NS1], uffd, root_task, -1, 0), -EPERM);
	EXPECT("userns: bind a non-dumpable task of its uid",
	       bind_fd(devfd[FD_NS2], uffd, nobody_nodump, -1, 0), -EPERM);
	EXPECT("userns: join the events group", join_events(), -EPERM);
	EXPECT("userns: GET_STATS", get_stats(), -EPERM);
	return kt_failures;
}

/* The unprivileged side (a child): returns its failure count. */
static int as_nobody(int sock)
{
	int uffd = kt_uffd(0); /* created before the drop: unprivileged_userfaultfd may be 0 */
	char *reg = kt_map(NULL, 16 * PG);
	int pidfd, passed;

	kt_failures = 0;
	kt_register(uffd, reg, 16 * PG, UFFDIO_REGISTER_MODE_MISSING);
	drop_to_nobody();

	EXPECT("open /dev/lazyfill", open(LAZYFILL_DEVICE, O_RDWR) < 0 ? -errno : 0, -EACCES);

	/* Someone else's task: a root task, by pid, by pidfd, and with VERIFY. */
	EXPECT("bind a root task by pid", bind_fd(devfd[FD_PID], uffd, root_task, -1, 0), -EPERM);
	pidfd = (int)syscall(SYS_pidfd_open, root_task, 0);
	if (pidfd < 0)
		die("pidfd_open");
	EXPECT("bind a root task by pidfd", bind_fd(devfd[FD_PIDFD], uffd, 0, pidfd, 0), -EPERM);
	close(pidfd);
	EXPECT("bind a root task with VERIFY",
	       bind_fd(devfd[FD_VERIFY], uffd, root_task, -1, LAZYFILL_BIND_VERIFY), -EPERM);

	/* A device file passed over a unix socket after the drop. */
	passed = kt_recv_fd(sock);
	EXPECT("bind a root task (fd passed)", bind_fd(passed, uffd, root_task, -1, 0), -EPERM);
	close(passed);

	/* Its own uid: not dumpable (refused), dumpable (allowed); itself. */
	EXPECT("bind a non-dumpable task of its uid",
	       bind_fd(devfd[FD_NODUMP], uffd, nobody_nodump, -1, 0), -EPERM);
	EXPECT("bind a dumpable task of its uid", bind_fd(devfd[FD_DUMP], uffd, nobody_dump, -1, 0),
	       0);
	EXPECT("bind itself (VERIFY)",
	       bind_fd(devfd[FD_SELF], uffd, getpid(), -1, LAZYFILL_BIND_VERIFY), 0);

	/* Netlink. */
	EXPECT("join the events group", join_events(), -EPERM);
	EXPECT("GET_STATS", get_stats(), -EPERM);

	return kt_failures;
}

int main(void)
{
	struct stat sb;
	int sp[2], st, uffd;
	pid_t child;

	if (geteuid())
		die("lf-perm must run as root");
	setvbuf(stdout, NULL, _IOLBF, 0); /* nothing buffered across fork() */

	/* 1. The device node. */
	if (stat(LAZYFILL_DEVICE, &sb))
		die("stat %s", LAZYFILL_DEVICE);
	CHECK(S_ISCHR(sb.st_mode) && (sb.st_mode & 07777) == 0600 && sb.st_uid == 0,
	      "%s: mode %o uid %u, want a 0600 root character device", LAZYFILL_DEVICE,
	      (unsigned int)sb.st_mode, (unsigned int)sb.st_uid);
	printf("ok: %s mode %o uid %u\n", LAZYFILL_DEVICE, (unsigned int)(sb.st_mode & 07777),
	       (unsigned int)sb.st_uid);

	root_task = spawn_target(0, 0);
	nobody_dump = spawn_target(1, 1);
	nobody_nodump = spawn_target(1, 0);

	/* 2 and 3, unprivileged. */
	for (int i = 0; i < FD_NR; i++)
		devfd[i] = kt_open_dev();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		die("socketpair");
	child = fork();
	if (child < 0)
		die("fork");
	if (!child) {
		close(sp[0]);
		exit(as_nobody(sp[1]) ? 1 : 0);
	}
	close(sp[1]);
	int passed = kt_open_dev();

	kt_send_fd(sp[0], passed);
	close(passed);
	close(sp[0]);
	if (waitpid(child, &st, 0) != child)
		die("waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "unprivileged child: status 0x%x", st);
	child = fork();
	if (child < 0)
		die("fork");
	if (!child)
		exit(userns_child() ? 1 : 0);
	if (waitpid(child, &st, 0) != child)
		die("waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "user namespace child: status 0x%x", st);
	for (int i = 0; i < FD_NR; i++)
		close(devfd[i]);

	/* Root: CAP_SYS_PTRACE binds nobody's tasks; CAP_NET_ADMIN joins. */
	uffd = kt_uffd(0);
	int fd = kt_open_dev();

	EXPECT("root: bind a non-dumpable task of nobody", bind_fd(fd, uffd, nobody_nodump, -1, 0),
	       0);
	close(fd);
	fd = kt_open_dev();
	EXPECT("root: bind a dumpable task of nobody", bind_fd(fd, uffd, nobody_dump, -1, 0), 0);
	close(fd);
	close(uffd);
	EXPECT("root: join the events group", join_events(), 0);
	EXPECT("root: GET_STATS", get_stats(), 0);

	kill(root_task, SIGKILL);
	kill(nobody_dump, SIGKILL);
	kill(nobody_nodump, SIGKILL);
	while (wait(NULL) > 0)
		;
	if (kt_failures) {
		fprintf(stderr, "lf-perm: %d failures\n", kt_failures);
		return 1;
	}
	printf("lf-perm: ok\n");
	return 0;
}

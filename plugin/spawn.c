/*
 * Start criu-lazyd detached from CRIU: double fork, its own session, no terminal, stdin
 * /dev/null, stdout and stderr into its log, no fd of CRIU's but the status pipe. It tells us
 * it listens by writing a byte to --status-fd; before exec the child writes its pid there.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lr.h"

#define STATUS_FD 3
#define REC_LEN 5 /* 'P' pid, or 'E' errno: a tag and a native int */

static void put_rec(int fd, char tag, int v)
{
	char rec[REC_LEN];

	rec[0] = tag;
	memcpy(rec + 1, &v, sizeof(int));
	if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		_exit(126);
}

static void close_from(int lowfd)
{
#ifdef SYS_close_range
	if (!syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0))
		return;
#endif
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = lowfd; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
		close((int)fd);
}

/* In the grandchild: never returns. */
static void exec_daemon(int status_wr, int logfd, char **argv)
{
	sigset_t all;

	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL); /* CRIU's handlers and ignored signals do not carry over */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	/* Its own process group (not a session leader: it can never get a terminal), so that
	 * a stop also reaches anything it started. */
	setpgid(0, 0);
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	int s = fcntl(status_wr, F_DUPFD_CLOEXEC, 10);
	int l = fcntl(logfd, F_DUPFD_CLOEXEC, 10);
	if (nul < 0 || s < 0 || l < 0)
		_exit(125);
	if (dup2(nul, 0) < 0 || dup2(l, 1) < 0 || dup2(l, 2) < 0 || dup2(s, STATUS_FD) < 0)
		_exit(125);
	close_from(STATUS_FD + 1);
	put_rec(STATUS_FD, 'P', (int)getpid());
	execv(argv[0], argv);
	put_rec(STATUS_FD, 'E', errno);
	_exit(127);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the daemon wrote to its log since START: its error lines, else its last line. */
static void log_reason(const char *log, off_t start, char *out, size_t n)
{
	size_t len = 0;
	char *text = lr_read_file(log, 1 << 20, &len);
	char errs[1024] = "", last[512] = "";

	out[0] = '\0';
	if (!text)
		return;
	if ((size_t)start > len)
		start = 0;
	for (char *save = NULL, *l = strtok_r(text + start, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (!*l)
			continue;
		snprintf(last, sizeof(last), "%s", l);
		if (strstr(l, "Error") || strstr(l, "criu-lazyd:")) {
			size_t el = strlen(errs);
			if (el < sizeof(errs) - 1)
				snprintf(errs + el, sizeof(errs) - el, "%s%s", el ? " | " : "", l);
		}
	}
	snprintf(out, n, "%s", errs[0] ? errs : last);
	free(text);
}

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

int lr_spawn(const struct lr_conf *c, const char *daemon, const char *imgdir, struct lr_daemon *d,
	     struct errmsg *e)
{
	const char *log = c->log[0] ? c->log : LRCONF_DEFAULT_LOG;
	char rec[2 * REC_LEN];
	size_t got = 0;
	int p[2], st;

	d->pid = -1;
	d->pidfd = -1;
	/* Relative to the work dir (our cwd), as the daemon's own -o. */
	int logfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (logfd < 0)
		return errmsg_set(e, errno, "cannot open the daemon's log %s: %s", log,
				  strerror(errno));
	off_t log_start = lseek(logfd, 0, SEEK_END);
	if (pipe2(p, O_CLOEXEC)) {
		int rc = errmsg_set(e, errno, "pipe: %s", strerror(errno));
		close(logfd);
		return rc;
	}
	char **argv = lr_daemon_argv(c, daemon, imgdir, log, STATUS_FD);
	{
		char cmd[4096] = "";
		for (int i = 0; argv[i]; i++) {
			size_t l = strlen(cmd);
			snprintf(cmd + l, sizeof(cmd) - l, "%s%s", i ? " " : "", argv[i]);
		}
		lr_info("starting %s", cmd);
	}
	pid_t a = fork();
	if (a < 0) {
		int rc = errmsg_set(e, errno, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		close(logfd);
		return rc;
	}
	if (a == 0) {
		close(p[0]);
		setsid(); /* a new session: the daemon never gets CRIU's terminal */
		pid_t b = fork();
		if (b < 0)
			put_rec(p[1], 'E', errno);
		if (b != 0)
			_exit(b < 0);
		exec_daemon(p[1], logfd, argv);
	}
	close(p[1]);
	close(logfd);
	while (waitpid(a, &st, 0) < 0 && errno == EINTR)
		;

	double deadline = now_s() + c->timeout;
	bool ready = false, eof = false;
	while (!ready && !eof) {
		double left = deadline - now_s();
		if (left <= 0)
			break;
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		int pr = poll(&pf, 1, (int)(left * 1000) + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t r = read(p[0], rec + got, sizeof(rec) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			eof = true;
			break;
		}
		got += (size_t)r;
		if (got >= REC_LEN && rec[0] == 'P' && d->pid < 0) {
			int pid;
			memcpy(&pid, rec + 1, sizeof(pid));
			d->pid = pid;
			d->pidfd = pidfd_open_(pid);
		}
		if (got >= REC_LEN + 1 && rec[0] == 'P' && rec[REC_LEN] == 0)
			ready = true;
		if ((rec[0] == 'E' && got >= REC_LEN) ||
		    (got >= 2 * REC_LEN && rec[REC_LEN] == 'E') || got == sizeof(rec))
			eof = true; /* an exec or fork error record, or garbage */
	}
	close(p[0]);
	if (ready) {
		struct stat sst;
		if (stat(LR_SOCKET, &sst) || !S_ISSOCK(sst.st_mode)) {
			int rc = errmsg_set(
			    e, ENOENT, "%s said it listens, but there is no %s in the work dir",
			    daemon, LR_SOCKET);
			lr_stop(d, "it does not listen where CRIU connects");
			return rc;
		}
		d->sock_ino = sst.st_ino;
		d->sock_dev = sst.st_dev;
		lr_info("%s (pid %d) listens on %s; its log: %s", daemon, (int)d->pid, LR_SOCKET,
			log);
		return 0;
	}

	int err = 0, rc;
	const char *erec = rec[0] == 'E'				 ? rec
			   : (got >= 2 * REC_LEN && rec[REC_LEN] == 'E') ? rec + REC_LEN
									 : NULL;
	if (erec) {
		memcpy(&err, erec + 1, sizeof(err));
		/* err > 0 from the child's errno; anything else is not an errno */
		rc = errmsg_set(e, err > 0 ? err : EIO, "cannot run %s: %s", daemon, strerror(err));
	} else if (eof) {
		char reason[1024];
		log_reason(log, log_start, reason, sizeof(reason));
		rc = errmsg_set(e, ECHILD, "%s exited before it listened on %s%s%s (log: %s)",
				daemon, LR_SOCKET, reason[0] ? ": " : "", reason, log);
	} else {
		rc = errmsg_set(e, ETIMEDOUT,
				"%s did not listen on %s within %d s (key 'timeout'; log: %s)",
				daemon, LR_SOCKET, c->timeout, log);
	}
	if (d->pid > 0 && !erec && !eof)
		lr_stop(d, "it did not listen in time");
	lr_forget(d);
	return rc;
}

/* Wait up to MS for the daemon to exit. CRIU's SIGCHLD handler may interrupt us by now. */
static bool gone(struct lr_daemon *d, int ms)
{
	double end = now_s() + ms / 1000.0;

	for (;;) {
		int left = (int)((end - now_s()) * 1000);
		if (left < 0)
			left = 0;
		if (d->pidfd >= 0) {
			struct pollfd pf = {.fd = d->pidfd, .events = POLLIN};
			int r = poll(&pf, 1, left);
			if (r > 0)
				return true;
			if (r < 0 && errno != EINTR)
				return false;
		} else {
			if (kill(d->pid, 0) && errno == ESRCH)
				return true;
			usleep(20000);
		}
		if (now_s() >= end)
			return false;
	}
}

static int send_sig(struct lr_daemon *d, int sig)
{
#ifdef SYS_pidfd_send_signal
	if (d->pidfd >= 0)
		return (int)syscall(SYS_pidfd_send_signal, d->pidfd, sig, NULL, 0);
#endif
	return kill(d->pid, sig);
}

void lr_stop(struct lr_daemon *d, const char *reason)
{
	if (d->pid <= 0)
		return;
	lr_info("stopping the daemon (pid %d): %s", (int)d->pid, reason);
	if (send_sig(d, SIGTERM) == 0 && !gone(d, 3000)) {
		lr_warn("daemon pid %d did not stop on SIGTERM: killing it", (int)d->pid);
		send_sig(d, SIGKILL);
		gone(d, 1000);
	}
	/* Leftovers in its process group: the group id cannot be reused while any is alive. */
	kill(-d->pid, SIGKILL);
	lr_forget(d);
}

void lr_forget(struct lr_daemon *d)
{
	if (d->pidfd >= 0)
		close(d->pidfd);
	d->pidfd = -1;
	d->pid = -1;
}

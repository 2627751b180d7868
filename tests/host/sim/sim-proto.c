/*
 * restore-sim: the daemon under test and the restore side of CRIU's lazy-pages socket
 * protocol (per pstree entry: native int pid, then one uffd by SCM_RIGHTS unless the pid is
 * negative; then uint32 "RSTF").
 */
#include "sim-proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim-task.h"

#define LAZY_FIN_MARKER 0x52535446u /* "RSTF" */
#define DAEMON_READY_MS 15000

static void daemon_exec(struct sim *s, int stfd)
{
	char fdnum[16];
	const char *argv[32];
	int n = 0;

	snprintf(fdnum, sizeof(fdnum), "%d", stfd);
	for (int i = 0; i < 8 && s->daemon_argv[i]; i++)
		argv[n++] = s->daemon_argv[i];
	if (s->sc->flags & SC_RELPATHS) {
		/* As criu: -D and -W relative to the cwd, -o relative to the work dir. */
		if (chdir(s->dir))
			_exit(126);
		argv[n++] = "-D";
		argv[n++] = "img";
		if (strcmp(s->workdir, s->imgdir)) {
			argv[n++] = "-W";
			argv[n++] = "work";
		}
		argv[n++] = "-o";
		argv[n++] = "lazyd.log";
	} else {
		argv[n++] = "-D";
		argv[n++] = s->imgdir;
		argv[n++] = "-W";
		argv[n++] = s->workdir;
		argv[n++] = "-o";
		argv[n++] = s->logpath;
	}
	argv[n++] = "-v4";
	if (s->sc->daemon_arg)
		argv[n++] = s->sc->daemon_arg;
	argv[n++] = "--status-fd";
	argv[n++] = fdnum;
	if (!s->no_stats) {
		argv[n++] = "--stats-file";
		argv[n++] = s->statspath;
	}
	if (s->sc->flags & SC_DAEMONIZE) {
		argv[n++] = "-d";
		argv[n++] = "--pidfile";
		argv[n++] = s->pidpath;
	}
	argv[n] = NULL;
	execvp(argv[0], (char *const *)argv);
	fprintf(stderr, "restore-sim: cannot exec %s: %s\n", s->daemon, strerror(errno));
	_exit(127);
}

/* Start the daemon: argv as for 'criu lazy-pages', output to outpath. Returns the status fd. */
int daemon_start(struct sim *s)
{
	int st[2];

	if (pipe2(st, O_CLOEXEC))
		return -1;
	s->dpid = fork();
	if (s->dpid < 0)
		return -1;
	if (s->dpid == 0) {
		int out = open(s->outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		/* A killed simulator must not leave the daemon behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 || fcntl(st[1], F_SETFD, 0))
			_exit(126);
		daemon_exec(s, st[1]);
	}
	close(st[1]);
	sim_log("daemon %s started, pid %d", s->daemon, (int)s->dpid);
	return st[0];
}

/* Reap the daemon if it has exited (or wait for it until the deadline). 1 if reaped. */
int daemon_reap(struct sim *s, uint64_t deadline)
{
	for (;;) {
		if (s->dreaped)
			return 1;
		pid_t r = waitpid(s->dpid, &s->dstatus, WNOHANG);
		if (r == s->dpid) {
			s->dreaped = true;
			if (WIFEXITED(s->dstatus))
				sim_log("daemon exited with %d", WEXITSTATUS(s->dstatus));
			else
				sim_log("daemon killed by signal %d", WTERMSIG(s->dstatus));
			return 1;
		}
		if (r < 0 || !ms_left(deadline))
			return 0;
		usleep(10000);
	}
}

void daemon_kill(struct sim *s)
{
	if (s->dpid > 0 && !s->dreaped) {
		kill(s->dpid, SIGKILL);
		daemon_reap(s, now_ms() + 5000);
	}
}

bool daemon_exited_ok(const struct sim *s)
{
	return s->dreaped && WIFEXITED(s->dstatus) && WEXITSTATUS(s->dstatus) == 0;
}

/*
 * Wait until the daemon is ready: it writes to --status-fd (as criu does), or
 * at least its socket exists. 0 ready, -1 it exited or hung.
 */
int daemon_wait_ready(struct sim *s, int stfd)
{
	uint64_t deadline = now_ms() + DAEMON_READY_MS;
	struct pollfd pfd = {.fd = stfd, .events = POLLIN};
	struct stat sb;
	char c;

	while (ms_left(deadline)) {
		if (poll(&pfd, 1, 20) == 1) {
			ssize_t n = read(stfd, &c, 1);
			if (n == 1)
				return 0;
			/* EOF: the status fd was closed without a word. */
			pfd.fd = -1;
		}
		/* With -d the process we started exits 0 once the daemon is on its own. */
		if (daemon_reap(s, 0) && !((s->sc->flags & SC_DAEMONIZE) && daemon_exited_ok(s)))
			return -1;
		if (pfd.fd < 0 && stat(s->sockpath, &sb) == 0 && S_ISSOCK(sb.st_mode))
			return 0;
	}
	sim_log("daemon not ready after %d ms", DAEMON_READY_MS);
	return -1;
}

/*
 * With -d: the process we started must have exited 0, and the pid in --pidfile is the
 * daemon; we are a child subreaper, so it is our child now and we can wait for it.
 */
int daemon_adopt(struct sim *s)
{
	uint64_t deadline = now_ms() + 5000;
	char buf[32];

	if (!daemon_reap(s, deadline) || !daemon_exited_ok(s)) {
		sim_log("FAIL: with -d, the started process did not exit 0");
		return -1;
	}
	while (ms_left(deadline)) {
		FILE *f = fopen(s->pidpath, "re");
		long pid = 0;
		if (f) {
			if (fgets(buf, sizeof(buf), f))
				pid = strtol(buf, NULL, 10);
			fclose(f);
		}
		if (pid > 0 && kill((pid_t)pid, 0) == 0) {
			sim_log("daemon detached as pid %ld (--pidfile)", pid);
			s->dpid = (pid_t)pid;
			s->dreaped = false;
			return 0;
		}
		usleep(10000);
	}
	sim_log("FAIL: no live daemon pid in %s", s->pidpath);
	return -1;
}

int lazy_connect(struct sim *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint64_t deadline = now_ms() + 5000;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->sockpath);
	while (ms_left(deadline)) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		int e = errno;
		close(fd);
		if ((e != ENOENT && e != ECONNREFUSED) || daemon_reap(s, 0))
			break;
		usleep(10000);
	}
	sim_log("cannot connect to %s: %s", s->sockpath, strerror(errno));
	return -1;
}

/*
 * One pstree entry: the pid, then the uffd (a zombie: the negated pid, no fd). As criu
 * restore does, each task sends its own over the restore's connection (the daemon may check
 * who sent it): we pass the connection and the fd to it and wait for its 's'.
 */
static int send_task(int sock, const struct sim_task *t)
{
	int pid = -t->pid, fds[2] = {sock, t->uffd};

	if (t->zombie)
		return send(sock, &pid, sizeof(pid), MSG_NOSIGNAL) == sizeof(pid) ? 0 : -1;
	if (send_fds(t->ctl, 'S', fds, 2) || write_all(t->ctl, &t->send_pid, sizeof(int)))
		return -1;
	return read_byte(t->ctl, now_ms() + 10000) == 's' ? 0 : -1;
}

static int send_fin(int sock)
{
	uint32_t fin = LAZY_FIN_MARKER;

	return send(sock, &fin, sizeof(fin), MSG_NOSIGNAL) == sizeof(fin) ? 0 : -1;
}

/* Send 'n' pstree entries (all for a normal restore) and, if 'fin', the RSTF marker. */
int restore_handshake(struct sim *s, int n, bool fin)
{
	for (int i = 0; i < n; i++)
		if (send_task(s->sock, &s->task[i])) {
			sim_log("sending task %d to the daemon: %s", s->task[i].pid,
				strerror(errno));
			return -1;
		}
	if (fin && send_fin(s->sock)) {
		sim_log("sending RSTF: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Stop the daemon (SIGSTOP) and wait until it is stopped. */
int daemon_stop(struct sim *s, uint64_t deadline)
{
	char path[64], buf[256];

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)s->dpid);
	if (kill(s->dpid, SIGSTOP))
		return -1;
	while (ms_left(deadline)) {
		FILE *f = fopen(path, "re");
		char *state = NULL;
		if (f && fgets(buf, sizeof(buf), f))
			state = strrchr(buf, ')');
		if (f)
			fclose(f);
		if (state && state[1] == ' ' && state[2] == 'T')
			return 0;
		usleep(1000);
	}
	sim_log("the daemon did not stop");
	return -1;
}

/* SC_INTRUDER, built in: a task's pid with a pipe, then pid 0. 1 if we could connect. */
static int intrude(struct sim *s, int victim)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int p[2], bad = 0, fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->sockpath);
	if (fd < 0 || pipe2(p, O_CLOEXEC))
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		sim_log("intruder: connect: %s", strerror(errno));
		close(fd);
		return 0;
	}
	if (send(fd, &victim, sizeof(victim), MSG_NOSIGNAL) != sizeof(victim) ||
	    send_fd(fd, p[0]) || send(fd, &bad, sizeof(bad), MSG_NOSIGNAL) != sizeof(bad))
		sim_log("intruder: send: %s", strerror(errno));
	else
		sim_log("intruder: sent pid %d with a pipe, then pid 0", victim);
	close(fd);
	close(p[0]);
	close(p[1]);
	return 1;
}

/* SC_INTRUDER: $SIM_INTRUDER SOCKET PID, or the built-in intruder. 1 if it was built in. */
int run_intruder(struct sim *s)
{
	const char *cmd = getenv("SIM_INTRUDER");
	int victim = 0;
	char line[1024];

	for (int i = 0; i < s->ntasks && !victim; i++)
		if (!s->task[i].zombie)
			victim = s->task[i].pid;
	if (!cmd || !*cmd)
		return intrude(s, victim);
	snprintf(line, sizeof(line), "%s '%s' %d", cmd, s->sockpath, victim);
	int st = system(line);
	sim_log("intruder: %s: exit %d", line, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

/* Receive a task's uffd over its control socket. */
int recv_fd(int sock, uint64_t deadline)
{
	char dummy;
	struct iovec iov = {.iov_base = &dummy, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	int fd = -1;

	if (wait_readable(sock, deadline) != 1)
		return -1;
	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

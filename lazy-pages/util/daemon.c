#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

int daemon_write_pidfile(const char *path, pid_t pid)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f, "%d", (int)pid);
	return fclose(f) ? -errno : 0;
}

/* In the parent: wait for the child's byte (ready >= 0), write the pidfile, exit. */
static void parent_exit(const char *prog, const char *pidfile, pid_t pid, int ready)
{
	char c;
	ssize_t n = 1;

	if (ready >= 0)
		while ((n = read(ready, &c, 1)) < 0 && errno == EINTR)
			;
	if (n != 1) {
		fprintf(stderr, "%s: the daemon failed to start (see its log)\n", prog);
		_exit(1);
	}
	int rc = pidfile ? daemon_write_pidfile(pidfile, pid) : 0;
	if (rc) {
		fprintf(stderr, "%s: cannot write pidfile %s: %s\n", prog, pidfile, strerror(-rc));
		kill(pid, SIGKILL);
		_exit(1);
	}
	_exit(0);
}

/* Fork; the parent exits (parent_exit), the child returns 0 in a session of its own. */
static int detach(const char *prog, const char *pidfile, bool keep_stderr, int *ready_fd)
{
	int p[2] = {-1, -1};

	if (ready_fd && pipe2(p, O_CLOEXEC))
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int rc = -errno;
		if (ready_fd) {
			close(p[0]);
			close(p[1]);
		}
		return rc;
	}
	if (pid > 0) {
		/* Without a ready pipe the caller listens already: whoever started us may
		 * connect once we return. */
		if (ready_fd)
			close(p[1]);
		parent_exit(prog, pidfile, pid, p[0]);
	}
	if (ready_fd) {
		close(p[0]);
		*ready_fd = p[1];
	}
	setsid();
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		if (!keep_stderr)
			dup2(nul, 2);
		close(nul);
	}
	return 0;
}

int daemon_detach(const char *prog, const char *pidfile, bool keep_stderr)
{
	return detach(prog, pidfile, keep_stderr, NULL);
}

int daemon_detach_ready(const char *prog, const char *pidfile, bool keep_stderr, int *ready_fd)
{
	return detach(prog, pidfile, keep_stderr, ready_fd);
}

int daemon_say_ready(int fd)
{
	char c = 0;
	int rc = write(fd, &c, 1) == 1 ? 0 : -errno;

	close(fd);
	return rc;
}

int daemon_signalfd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return sfd < 0 ? -errno : sfd;
}

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

int daemon_detach(const char *prog, const char *pidfile, bool keep_stderr)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		/* The caller listens already: whoever started us may connect once we return. */
		int rc = pidfile ? daemon_write_pidfile(pidfile, pid) : 0;
		if (rc) {
			fprintf(stderr, "%s: cannot write pidfile %s: %s\n", prog, pidfile,
				strerror(-rc));
			kill(pid, SIGKILL);
			_exit(1);
		}
		_exit(0);
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

int daemon_detach_ready(const char *prog, const char *pidfile, bool keep_stderr, int *ready_fd)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int rc = -errno;
		close(p[0]);
		close(p[1]);
		return rc;
	}
	if (pid > 0) {
		char c;
		close(p[1]);
		ssize_t n;
		while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (n != 1) {
			fprintf(stderr, "%s: the daemon failed to start (see its log)\n", prog);
			_exit(1);
		}
		int rc = pidfile ? daemon_write_pidfile(pidfile, pid) : 0;
		if (rc) {
			fprintf(stderr, "%s: cannot write pidfile %s: %s\n", prog, pidfile,
				strerror(-rc));
			kill(pid, SIGKILL);
			_exit(1);
		}
		_exit(0);
	}
	close(p[0]);
	*ready_fd = p[1];
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

/* Which criu-lazyd to run, whether it can serve the configured source, and its arguments. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lr.h"

/*
 * Is P the daemon to run? 1 yes; 0 nothing runnable there: look further; -errno there is
 * one, but CRIU (root) must not run it (E): fail, never fall back to another.
 */
static int candidate(const char *p, struct errmsg *e)
{
	if (access(p, X_OK))
		return 0;
	int rc = lr_check_trusted(p, "daemon", e);
	return rc ? rc : 1;
}

/* criu-lazyd beside this plugin in the same tree: PREFIX/lib/criu/x.so -> PREFIX/bin. */
static int sibling_daemon(char *out, size_t n, struct errmsg *e)
{
	Dl_info info;
	char dir[4096];

	if (!dladdr((void *)sibling_daemon, &info) || !info.dli_fname || info.dli_fname[0] != '/')
		return 0;
	snprintf(dir, sizeof(dir), "%s", info.dli_fname);
	for (int up = 0; up < 3; up++) {
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			return 0;
		*slash = '\0';
	}
	if ((size_t)snprintf(out, n, "%s/bin/%s", dir, LR_DAEMON_NAME) >= n)
		return 0;
	return candidate(out, e);
}

/* The `daemon` key: it must be there and be trusted. */
static int configured_daemon(const struct lr_conf *c, char *out, size_t n, struct errmsg *e)
{
	struct errmsg reason;
	int rc;

	if (access(c->daemon, X_OK))
		return errmsg_set(e, errno, "daemon %s (key 'daemon', %s:%d) cannot be run: %s",
				  c->daemon, c->file, c->line[LRK_DAEMON], strerror(errno));
	if ((rc = lr_check_trusted(c->daemon, "daemon", &reason)))
		return errmsg_set(e, rc, "%s (key 'daemon', %s:%d)", reason.msg, c->file,
				  c->line[LRK_DAEMON]);
	snprintf(out, n, "%s", c->daemon);
	return 0;
}

int lr_daemon_path(const struct lr_conf *c, char *out, size_t n, struct errmsg *e)
{
	int r;

	if (c->daemon[0])
		return configured_daemon(c, out, n, e);
	if ((r = sibling_daemon(out, n, e)))
		return r > 0 ? 0 : r;
#ifdef LR_BINDIR
	/* Where `make install` put the binaries (PREFIX/bin), when the Makefile tells us. */
	if ((size_t)snprintf(out, n, "%s/%s", LR_BINDIR, LR_DAEMON_NAME) < n &&
	    (r = candidate(out, e)))
		return r > 0 ? 0 : r;
#endif
	const char *path = getenv("PATH");
	char buf[8192];
	snprintf(buf, sizeof(buf), "%s:/usr/local/bin:/usr/bin:/usr/local/sbin:/usr/sbin",
		 path && *path ? path : "/bin");
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (d[0] != '/')
			continue;
		if ((size_t)snprintf(out, n, "%s/%s", d, LR_DAEMON_NAME) < n &&
		    (r = candidate(out, e)))
			return r > 0 ? 0 : r;
	}
	return errmsg_set(e, ENOENT,
			  "no %s found (beside the plugin, in $PATH or /usr/local/bin, /usr/bin): "
			  "install it or set `daemon PATH` in %s",
			  LR_DAEMON_NAME, c->file[0] ? c->file : LRCONF_DEFAULT_PATH);
}

/* The first bytes of `DAEMON --help`; "" if it cannot be run. */
static void daemon_help(const char *daemon, char *out, size_t n)
{
	int p[2];
	size_t got = 0;

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC))
		return;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(p[1], 1);
		dup2(nul, 2);
		execl(daemon, daemon, "--help", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (poll(&pf, 1, 5000) <= 0)
			break;
		ssize_t r = read(p[0], out + got, n - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == n - 1)
			break;
	}
	out[got] = '\0';
	close(p[0]);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int lr_daemon_supports(const struct lr_conf *c, const char *daemon, struct errmsg *e)
{
	static char help[65536];
	const char *need[3] = {NULL, NULL, NULL};
	int k = 0;

	switch (c->source) {
	case LR_SRC_LOCAL:
		return 0;
	case LR_SRC_PAGE_SERVER:
		need[k++] = "--page-server";
		break;
	case LR_SRC_IMAGE_SERVER:
		need[k++] = "--image-server";
		if (c->image[0])
			need[k++] = "--image ";
		if (c->auth_key[0])
			need[k++] = "--auth-key";
		break;
	}
	daemon_help(daemon, help, sizeof(help));
	for (int i = 0; i < k; i++)
		if (!strstr(help, need[i]))
			return errmsg_set(
			    e, ENOTSUP,
			    "`source %s` (%s:%d) is not supported yet: %s has no %.*s option",
			    lrconf_source_name(c->source), c->file, c->line[LRK_SOURCE], daemon,
			    (int)strcspn(need[i], " "), need[i]);
	return 0;
}

/* The TLS settings for criu-lazyd --image-server (at most 7 words). */
static int tls_args(const struct lr_conf *c, char **argv, int i)
{
	if (c->tls != LR_TLS_AUTO)
		argv[i++] = c->tls == LR_TLS_ON ? "--tls" : "--no-tls";
	if (c->tls_ca[0]) {
		argv[i++] = "--tls-ca";
		argv[i++] = (char *)c->tls_ca;
	}
	if (c->tls_cert[0]) {
		argv[i++] = "--tls-cert";
		argv[i++] = (char *)c->tls_cert;
		argv[i++] = "--tls-key";
		argv[i++] = (char *)c->tls_key;
	}
	return i;
}

char **lr_daemon_argv(const struct lr_conf *c, const char *daemon, const char *imgdir,
		      const char *log, int status_fd)
{
	static char *argv[32];
	static char verb[32], sfd[16], port[16];
	int i = 0;

	snprintf(verb, sizeof(verb), "--verbosity=%d", c->verbosity);
	snprintf(sfd, sizeof(sfd), "%d", status_fd);
	argv[i++] = (char *)daemon;
	argv[i++] = "-D";
	argv[i++] = (char *)imgdir;
	argv[i++] = "-W";
	argv[i++] = "."; /* the daemon starts in CRIU's work dir */
	argv[i++] = "-o";
	argv[i++] = (char *)log;
	argv[i++] = verb;
	argv[i++] = "--status-fd";
	argv[i++] = sfd;
	argv[i++] = "--fill";
	argv[i++] = (char *)lrconf_fill_name(c->fill);
	switch (c->source) {
	case LR_SRC_LOCAL:
		break;
	case LR_SRC_PAGE_SERVER:
		/* As `criu lazy-pages --page-server --address A --port P`. */
		snprintf(port, sizeof(port), "%u", c->server.port_num);
		argv[i++] = "--page-server";
		argv[i++] = "--address";
		argv[i++] = (char *)c->server.host;
		argv[i++] = "--port";
		argv[i++] = port;
		break;
	case LR_SRC_IMAGE_SERVER:
		argv[i++] = "--image-server";
		argv[i++] = (char *)c->servers;
		if (c->image[0]) {
			argv[i++] = "--image";
			argv[i++] = (char *)c->image;
		}
		if (c->auth_key[0]) {
			argv[i++] = "--auth-key";
			argv[i++] = (char *)c->auth_key;
		}
		i = tls_args(c, argv, i);
		break;
	}
	argv[i] = NULL;
	return argv;
}

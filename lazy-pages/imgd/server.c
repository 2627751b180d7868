/* criu-imgd's event loop and service pass (server.h). */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "metrics.h"
#include "ops/ctl.h"
#include "ops/metrics_http.h"
#include "protocol.h"
#include "status.h"
#include "util/clock.h"
#include "util/daemon.h"
#include "util/log.h"
#include "wire/wire_tls.h"

#define ACCEPTS_PER_PASS 64
#define ACCEPT_REST_MS 100 /* out of fds or memory: how long the listening socket rests */
#define FD_RESERVE 64	   /* fds beside the clients': images, listeners, log, loop */
#define IDLE_WAIT_MS 1000  /* the longest turn with nothing to do: timeouts are checked */

void server_init(struct imgd_server *srv, const struct imgd_opts *o)
{
	*srv = (struct imgd_server){.listen_fd = -1, .sig_fd = -1, .ctl_fd = -1};
	srv->d.o = o;
	srv->t_start = mono_ms();
}

/* A listening socket on --address, --port: the fd, or -errno (logged). */
static int do_listen(const struct imgd_opts *o, int *port)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;
	char ps[16];

	snprintf(ps, sizeof(ps), "%d", o->port);
	int rc = getaddrinfo(o->address, ps, &hints, &ai);
	if (rc) {
		pr_err("bad --address %s: %s", o->address, gai_strerror(rc));
		return -EINVAL;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
		rc = -errno;
		pr_err("cannot listen on %s:%d: %s", o->address, o->port, strerror(-rc));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static void peer_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		port = ntohs(s->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		port = ntohs(s->sin6_port);
	}
	snprintf(buf, len, "%s:%d", host, port);
}

/* A session's fd is readable, hung up, or (during the TLS handshake) writable. */
static void on_session(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct imgd_session *s = data;

	(void)l;
	(void)fd;
	if (events & (EV_READ | EV_HUP) || protocol_tls_wants_write(s))
		protocol_on_readable(s);
	/* writable: the service pass after this turn flushes */
}

/* One over --max-clients: a short ERROR (not inside TLS: that client retries), then the
 * door. */
static void refuse(struct imgd_server *srv, int fd, const char *peer)
{
	if (!srv->d.tls_on) {
		uint8_t buf[WIRE_HDR_SIZE + 128];
		LwError e = LW_ERROR__INIT;
		e.code = LW_ERR__LW_E_BUSY;
		e.text = "too many clients";
		int n = wire_pack(WT_ERROR, &e.base, 0, buf, sizeof(buf));
		if (n > 0 && send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			pr_debug("refusing %s: %s", peer, strerror(errno));
		else if (n > 0)
			srv->d.errors[LW_ERR__LW_E_BUSY]++;
	}
	srv->d.results[CR_REFUSED_BUSY]++;
	pr_warn("refused %s: already %u clients", peer, srv->d.nconns);
	close(fd);
}

static void on_accept(struct ev_loop *l, int lfd, unsigned events, void *data);

static void accept_again(struct ev_loop *l, uint64_t id, void *data)
{
	struct imgd_server *srv = data;
	int rc = ev_add(l, srv->listen_fd, EV_READ, on_accept, srv);

	(void)id;
	if (rc) /* nothing to do but stop: no connection could come in any more */
		pr_err("cannot watch the listening socket again: %s: stopping", strerror(-rc));
	srv->stop = srv->stop || rc;
}

/*
 * accept4 failed with err: may the pass go on? Out of fds or memory, the connection stays in
 * the kernel's queue and the listening socket stays readable: it rests ACCEPT_REST_MS out of
 * the loop (the clients wait in the queue until sessions end) instead of waking the loop at
 * once, again and again.
 */
static bool accept_failed(struct imgd_server *srv, int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK)
		return false;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return true; /* that connection went (ECONNABORTED...): the next one */
	if (!srv->accept_limited)
		pr_warn("cannot accept a connection with %u clients: %s: the waiting ones are "
			"taken as sessions end (--max-clients %d; fd limit: ulimit -n)",
			srv->d.nconns, strerror(err), srv->d.o->max_clients);
	srv->accept_limited = true;
	ev_del(srv->loop, srv->listen_fd);
	if (!ev_timer_add(srv->loop, ACCEPT_REST_MS, accept_again, srv))
		accept_again(srv->loop, 0, srv);
	return false;
}

static void on_accept(struct ev_loop *l, int lfd, unsigned events, void *data)
{
	struct imgd_server *srv = data;

	(void)events;
	for (int i = 0; i < ACCEPTS_PER_PASS && !srv->stop; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[64];
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (accept_failed(srv, errno))
				continue;
			return;
		}
		srv->accept_limited = false;
		srv->d.connections++;
		peer_name(&ss, peer, sizeof(peer));
		if (srv->d.nconns >= (unsigned)srv->d.o->max_clients) {
			refuse(srv, fd, peer);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct imgd_session *s;
		int rc = session_new(&srv->d, fd, peer, &s);
		if (rc) {
			pr_err("cannot take the connection from %s: %s", peer, strerror(-rc));
			srv->d.results[CR_REFUSED_ERROR]++;
			close(fd);
			continue;
		}
		s->local = wire_addr_loopback((struct sockaddr *)&ss);
		rc = ev_add(l, fd, EV_READ, on_session, s);
		if (rc) {
			pr_err("cannot take the connection from %s: %s", peer, strerror(-rc));
			srv->d.results[CR_REFUSED_ERROR]++;
			s->counted = true;
			protocol_close(s, "out of resources");
			continue;
		}
		s->ev_mask = EV_READ;
		s->next = srv->sessions;
		srv->sessions = s;
	}
}

static void on_signal(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct imgd_server *srv = data;
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	if (read(fd, &si, sizeof(si)) == sizeof(si)) {
		pr_msg("signal %u: stopping with %u clients", si.ssi_signo, srv->d.nconns);
		srv->stop = true;
	}
}

/* TLS on every connection when we listen beyond loopback (or --tls, or certificates). */
static int setup_tls(struct imgd_server *srv)
{
	const struct imgd_opts *o = srv->d.o;
	struct imgd *d = &srv->d;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct errmsg e;

	if (getsockname(srv->listen_fd, (struct sockaddr *)&ss, &sl)) {
		int rc = -errno;
		pr_err("getsockname: %s", strerror(-rc));
		return rc;
	}
	d->tls_on = wire_tls_wanted(&o->tls, (struct sockaddr *)&ss);
	if (!d->tls_on)
		return 0;
	int rc = wire_tls_server_init(&d->tls, &o->tls, &d->read_key,
				      o->accept_uploads ? &d->upload_key : NULL, &e);
	if (rc) {
		pr_err("%s", e.msg);
		d->tls_on = false; /* nothing to free */
	}
	return rc;
}

/* A status client waits: answer it (and a few more), from the loop. */
static void on_ctl(struct ev_loop *l, int fd, unsigned events, void *data)
{
	(void)l;
	(void)events;
	for (int i = 0; i < 4 && !ctl_serve_one(fd, status_reply, data); i++)
		;
}

/* Does a server answer on the Unix socket at path? */
static bool sock_live(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	live = fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (fd >= 0)
		close(fd);
	return live;
}

/*
 * The status socket: --status-socket PATH (any failure is fatal), or the default (a failure
 * is logged and the server goes on without one: two servers as root share the default).
 * 0 or -errno (logged).
 */
static int start_status_socket(struct imgd_server *srv)
{
	const char *opt = srv->d.o->status_socket;
	char *path = srv->ctl_path;
	struct errmsg e;
	struct stat st;
	int rc = status_socket_path(opt, true, path, sizeof(srv->ctl_path));

	if (rc == 0) {
		pr_info("no status socket (%s)", opt ? "--status-socket none"
						     : "not root, no RUNTIME_DIRECTORY: give "
						       "--status-socket PATH");
		return 0;
	}
	if (rc < 0) {
		pr_err("status socket: path too long (at most %zu bytes)",
		       sizeof(srv->ctl_path) - 1);
		return opt ? rc : 0;
	}
	if (!opt && !getenv("RUNTIME_DIRECTORY") && mkdir(STATUS_SOCK_RUN_DIR, 0700) &&
	    errno != EEXIST)
		pr_warn("cannot make %s: %s", STATUS_SOCK_RUN_DIR, strerror(errno));
	if (sock_live(path)) {
		log_printf(opt ? LOG_ERROR : LOG_WARN,
			   "status socket %s: another server answers there: %s", path,
			   opt ? "give another --status-socket PATH (or none)"
			       : "going on without one (--status-socket PATH to have one)");
		return opt ? -EADDRINUSE : 0;
	}
	rc = ctl_listen(path, &e);
	if (rc < 0) {
		log_printf(opt ? LOG_ERROR : LOG_WARN, "status socket: %s%s", e.msg,
			   opt ? "" : " (going on without one)");
		return opt ? rc : 0;
	}
	srv->ctl_fd = rc;
	if (!lstat(path, &st)) {
		srv->ctl_dev = st.st_dev;
		srv->ctl_ino = st.st_ino;
	}
	rc = ev_add(srv->loop, srv->ctl_fd, EV_READ, on_ctl, srv);
	if (rc)
		pr_err("epoll: %s", strerror(-rc));
	else
		pr_info("status socket %s (criu-imgd status --status-socket %s)", path, path);
	return rc;
}

/* --metrics-address: GET /metrics, its fd in the loop. 0 or -errno (logged). */
static int start_metrics(struct imgd_server *srv)
{
	const char *addr = srv->d.o->metrics_address;
	struct errmsg e;

	if (!addr)
		return 0;
	int rc = metrics_http_start(&srv->metrics, srv->loop, addr, metrics_fill, srv, &e);
	if (rc)
		pr_err("--metrics-address %s: %s", addr, e.msg);
	else
		pr_info("metrics on http://%s/metrics", addr);
	return rc;
}

/* As many fds as allowed (every client holds one); a warning if --max-clients cannot fit. */
static void raise_nofile(int max_clients)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r))
		return;
	if (r.rlim_cur < r.rlim_max) {
		rlim_t was = r.rlim_cur;
		r.rlim_cur = r.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &r)) {
			pr_warn("cannot raise the fd limit to %lu: %s", (unsigned long)r.rlim_max,
				strerror(errno));
			r.rlim_cur = was;
		}
	}
	if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < (rlim_t)max_clients + FD_RESERVE)
		pr_warn("fd limit %lu, below the %d fds --max-clients %d needs: when they are all "
			"in use, new connections wait",
			(unsigned long)r.rlim_cur, max_clients + FD_RESERVE, max_clients);
}

int server_start(struct imgd_server *srv)
{
	raise_nofile(srv->d.o->max_clients);
	int rc = do_listen(srv->d.o, &srv->port);

	if (rc < 0)
		return rc;
	srv->listen_fd = rc;
	rc = setup_tls(srv);
	if (rc)
		return rc;
	srv->loop = ev_loop_new();
	srv->lingering.loop = srv->loop;
	if (!srv->loop) {
		pr_err("epoll: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	rc = ev_add(srv->loop, srv->listen_fd, EV_READ, on_accept, srv);
	if (rc) {
		pr_err("epoll: %s", strerror(-rc));
		return rc;
	}
	rc = start_status_socket(srv);
	if (!rc)
		rc = start_metrics(srv);
	return rc;
}

int server_watch_signals(struct imgd_server *srv)
{
	int rc = daemon_signalfd();

	if (rc >= 0) {
		srv->sig_fd = rc;
		rc = ev_add(srv->loop, srv->sig_fd, EV_READ, on_signal, srv);
	}
	if (rc < 0)
		pr_err("signalfd: %s", strerror(-rc));
	return rc < 0 ? rc : 0;
}

/* A closed session leaves the loop and the list; its connection lingers (linger.h) unless
 * the server stops. */
static void drop(struct imgd_server *srv, struct imgd_session **link, const char *why)
{
	struct imgd_session *s = *link;

	*link = s->next;
	ev_del(srv->loop, session_fd(s));
	int fd = srv->stop ? -1 : session_take_fd(s);
	protocol_close(s, why);
	linger_close(&srv->lingering, fd);
}

/* One service pass; true if some session can make progress without waiting. */
static bool service(struct imgd_server *srv)
{
	uint64_t now = mono_ms();
	bool busy = false;

	for (struct imgd_session *s = srv->sessions; s; s = s->next)
		if (protocol_has_urgent(s))
			busy |= protocol_pump(s, true);
	for (struct imgd_session *s = srv->sessions; s; s = s->next) {
		if (protocol_rx_pending(s))
			protocol_on_readable(s);
		busy |= protocol_pump(s, false);
		protocol_check_timeouts(s, now);
	}
	for (struct imgd_session **link = &srv->sessions; *link;) {
		struct imgd_session *s = *link;
		if (protocol_closable(s)) {
			drop(srv, link, NULL);
			continue;
		}
		unsigned want = EV_READ | (protocol_wants_write(s) ? EV_WRITE : 0);
		if (want != s->ev_mask && !ev_mod(srv->loop, session_fd(s), want))
			s->ev_mask = want;
		link = &s->next;
	}
	return busy;
}

int server_run(struct imgd_server *srv)
{
	bool busy = false;

	while (!srv->stop) {
		int n = ev_run_once(srv->loop, busy ? 0 : IDLE_WAIT_MS);
		if (n < 0) {
			pr_err("epoll_wait: %s", strerror(-n));
			return n;
		}
		if (srv->stop)
			break;
		busy = service(srv);
	}
	return 0;
}

void server_close_sessions(struct imgd_server *srv)
{
	while (srv->sessions)
		drop(srv, &srv->sessions, "server stopping");
}

void server_free(struct imgd_server *srv)
{
	server_close_sessions(srv);
	linger_free(&srv->lingering);
	if (srv->d.tls_on)
		wire_tls_server_free(&srv->d.tls);
	srv->d.tls_on = false;
	compress_free(&srv->d);
	metrics_http_stop(srv->metrics);
	srv->metrics = NULL;
	if (srv->ctl_fd >= 0) {
		struct stat st;
		ev_del(srv->loop, srv->ctl_fd);
		close(srv->ctl_fd);
		/* our socket file only: another server may have replaced it since */
		if (!lstat(srv->ctl_path, &st) && st.st_dev == srv->ctl_dev &&
		    st.st_ino == srv->ctl_ino)
			unlink(srv->ctl_path);
		srv->ctl_fd = -1;
	}
	ev_loop_free(srv->loop);
	srv->loop = NULL;
	if (srv->sig_fd >= 0)
		close(srv->sig_fd);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	srv->sig_fd = srv->listen_fd = -1;
}

/*
 * criu-imgd: one event loop over non-blocking sockets. Each pass serves the
 * urgent (fault) work of every connection first, then one frame of background
 * work per connection, so a fault never waits behind another client's stream.
 */
#include "util/daemon.h"
#include "imgd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define MAX_EVENTS 64
#define ACCEPTS_PER_PASS 64

static int listen_tag, signal_tag;

double imgd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int do_listen(struct imgd_opts *o, int *port)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;
	char ps[16];

	snprintf(ps, sizeof(ps), "%d", o->port);
	int rc = getaddrinfo(o->address, ps, &hints, &ai);
	if (rc) {
		pr_err("bad --address %s: %s", o->address, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
		pr_err("cannot listen on %s:%d: %s", o->address, o->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
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

static void on_accept(struct imgd *d)
{
	for (int i = 0; i < ACCEPTS_PER_PASS; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[64];
		int fd = accept4(d->listen_fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		peer_name(&ss, peer, sizeof(peer));
		if (d->nconns >= (unsigned)d->o->max_clients && d->tls_on) {
			pr_warn("refused %s: already %u clients", peer, d->nconns);
			close(fd); /* no plain ERROR inside TLS: the client retries */
			continue;
		}
		if (d->nconns >= (unsigned)d->o->max_clients) {
			/* Best effort: a short ERROR, then the door. */
			uint8_t buf[WIRE_HDR_SIZE + 128];
			LwError e = LW_ERROR__INIT;
			e.code = LW_ERR__LW_E_BUSY;
			e.text = "too many clients";
			int n = wire_pack(WT_ERROR, &e.base, 0, buf, sizeof(buf));
			if (n > 0 && send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				pr_debug("refusing %s: %s", peer, strerror(errno));
			pr_warn("refused %s: already %u clients", peer, d->nconns);
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct imgd_conn *c = conn_new(d, fd, peer);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (!c || epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			pr_err("cannot take the connection from %s: %s", peer, strerror(errno));
			if (c)
				conn_close(d, c, "out of resources");
			else
				close(fd);
		}
	}
}

/* One service pass; true if some connection can make progress without waiting. */
static bool service(struct imgd *d)
{
	bool busy = false;
	double now = imgd_now();

	for (struct imgd_conn *c = d->conns; c; c = c->next)
		if (c->state == CS_READY && conn_has_urgent(c))
			busy |= conn_pump(d, c, true);
	for (struct imgd_conn *c = d->conns; c; c = c->next) {
		if (conn_rx_pending(c))
			conn_on_readable(d, c);
		busy |= conn_pump(d, c, false);
		if (c->state != CS_READY && c->state != CS_CLOSING &&
		    now - c->t_start > IMGD_HANDSHAKE_S)
			conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "handshake not done in %d s",
				  IMGD_HANDSHAKE_S);
		else if (c->state == CS_READY && !c->nq && now - c->t_last > IMGD_IDLE_S)
			conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "idle for %d s", IMGD_IDLE_S);
		if (c->tx_len && now - c->t_sent > IMGD_STALL_S) {
			/* It asked and does not read: its buffers go back. */
			snprintf(c->close_why, sizeof(c->close_why), "client read nothing for %d s",
				 IMGD_STALL_S);
			c->state = CS_CLOSING;
			c->dead = true;
		}
	}
	for (struct imgd_conn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == CS_CLOSING) {
			conn_pump(d, c, false);
			if (c->dead || (!c->tx_len && !c->errf_len)) {
				conn_close(d, c, c->close_why[0] ? c->close_why : "closed");
				continue;
			}
		}
		uint32_t want = EPOLLIN | (c->tx_len || conn_tls_wants_write(c) ? EPOLLOUT : 0);
		struct epoll_event ev = {.events = want, .data.ptr = c};
		epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
	return busy;
}

static int loop(struct imgd *d, int sfd)
{
	struct epoll_event evs[MAX_EVENTS];
	bool busy = false;

	for (;;) {
		int n = epoll_wait(d->epfd, evs, MAX_EVENTS, busy ? 0 : 1000);
		if (n < 0 && errno != EINTR) {
			pr_err("epoll_wait: %s", strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &listen_tag) {
				on_accept(d);
			} else if (p == &signal_tag) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					pr_msg("signal %u: stopping with %u clients", si.ssi_signo,
					       d->nconns);
					return 0;
				}
			} else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR) ||
				   conn_tls_wants_write(p)) {
				conn_on_readable(d, p);
			}
		}
		busy = service(d);
	}
}

static int make_sums(struct imgd *d)
{
	struct errmsg e;
	struct imgd_image *img;

	if (d->cat.rootfd >= 0) {
		pr_err("--make-sums works on one image: use -D DIR");
		return 1;
	}
	if (catalog_get(&d->cat, "default", &img, &e)) {
		pr_err("%s", e.msg);
		return 1;
	}
	int rc = 0;
	for (size_t i = 0; i < img->set.nr_tasks && !rc; i++) {
		const struct img_task *t = &img->set.tasks[i];
		if (!t->has_mm)
			continue;
		rc = sums_write(img->dirfd, t);
		if (rc)
			pr_err("pid %d: cannot write pages-%u.img.xxh64: %s", t->pid, t->pages_id,
			       strerror(-rc));
		else
			pr_info("pid %d: pages-%u.img.xxh64 written (%lu pages)", t->pid,
				t->pages_id, (unsigned long)(t->pages_size / WIRE_PAGE));
	}
	catalog_put(&d->cat, img);
	return rc ? 1 : 0;
}

static int setup_signals(struct imgd *d)
{
	int sfd = daemon_signalfd();
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &signal_tag};
	if (sfd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, sfd, &ev)) {
		pr_err("signalfd: %s", strerror(sfd < 0 ? -sfd : errno));
		return -1;
	}
	return sfd;
}

/* The keys: the readers' one always, the publishers' one with --accept-uploads, never equal. */
static int load_keys(struct imgd *d, const struct imgd_opts *o)
{
	char err[256];

	if (wire_key_load(o->auth_key, &d->read_key, err, sizeof(err))) {
		pr_err("--auth-key: %s", err);
		return -1;
	}
	if (!o->upload_key)
		return 0;
	if (wire_key_load(o->upload_key, &d->upload_key, err, sizeof(err))) {
		pr_err("--upload-key: %s", err);
		return -1;
	}
	if (wire_key_same(&d->read_key, &d->upload_key)) {
		pr_err("--upload-key and --auth-key hold the same key: a publisher could read and "
		       "a reader publish (make a key of its own for each)");
		return -1;
	}
	return 0;
}

/* TLS on every connection when we listen beyond loopback (or --tls, or certificates). */
static int setup_tls(struct imgd *d, const struct imgd_opts *o)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char err[512];

	if (getsockname(d->listen_fd, (struct sockaddr *)&ss, &sl)) {
		pr_err("getsockname: %s", strerror(errno));
		return -1;
	}
	d->tls_on = wire_tls_wanted(&o->tls, (struct sockaddr *)&ss);
	if (!d->tls_on)
		return 0;
	if (wire_tls_server_init(&d->tls, &o->tls, &d->read_key,
				 o->accept_uploads ? &d->upload_key : NULL, err, sizeof(err))) {
		pr_err("%s", err);
		return -1;
	}
	return 0;
}

static int start(struct imgd *d, struct imgd_opts *o, int *port)
{
	if (load_keys(d, o))
		return -1;
	if (o->accept_uploads && upload_init(d))
		return -1;
	d->listen_fd = do_listen(o, port);
	if (d->listen_fd < 0 || setup_tls(d, o))
		return -1;
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
	if (d->epfd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->listen_fd, &ev)) {
		pr_err("epoll: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct imgd_opts o;
	struct imgd d = {.listen_fd = -1, .epfd = -1};
	int rc = imgd_parse_opts(argc, argv, &o), port = 0;

	if (rc)
		return rc > 0 ? 0 : 1;
	signal(SIGPIPE, SIG_IGN);
	d.o = &o;
	log_level = o.verbosity;
	log_set_prefix("imgd: ");
	if (log_open(o.log_file)) {
		fprintf(stderr, "criu-imgd: cannot open log file %s: %s\n", o.log_file,
			strerror(errno));
		return 1;
	}
	struct errmsg e;
	if (catalog_init(&d.cat, &o, &e)) {
		pr_err("%s", e.msg);
		return 1;
	}
	if (o.make_sums) {
		rc = make_sums(&d);
		catalog_free(&d.cat);
		return rc;
	}
	if (start(&d, &o, &port))
		return 1;
	pr_msg("listening on %s port %d, key required (%s), %s, serving %s %s", o.address, port,
	       o.accept_uploads ? "readers --auth-key, publishers --upload-key" : "--auth-key",
	       !d.tls_on ? "no TLS (loopback; --tls to force)"
	       : o.tls.cert
		   ? (o.tls.ca ? "TLS 1.3, X.509, client certificates required" : "TLS 1.3, X.509")
		   : "TLS 1.3, PSK from the keys",
	       o.root ? "--root" : "-D", o.root ? o.root : o.dir);
	if (o.daemon && daemon_detach("criu-imgd", o.pidfile, !o.log_file)) {
		pr_err("cannot daemonize: %s", strerror(errno));
		return 1;
	}
	if (!o.daemon && o.pidfile && daemon_write_pidfile(o.pidfile, getpid()))
		pr_warn("cannot write pidfile %s: %s", o.pidfile, strerror(errno));
	int sfd = setup_signals(&d);
	if (sfd < 0)
		return 1;
	if (o.status_fd >= 0) {
		dprintf(o.status_fd, "%d\n", port);
		close(o.status_fd);
	}
	rc = loop(&d, sfd);
	while (d.conns)
		conn_close(&d, d.conns, "server stopping");
	pr_msg("stopped: %lu sessions, %lu refused for authentication", (unsigned long)d.sessions,
	       (unsigned long)d.refused);
	catalog_free(&d.cat);
	explicit_bzero(&d.read_key, sizeof(d.read_key));
	explicit_bzero(&d.upload_key, sizeof(d.upload_key));
	if (d.tls_on)
		wire_tls_server_free(&d.tls);
	close(sfd);
	close(d.listen_fd);
	close(d.epfd);
	return rc ? 1 : 0;
}

/*
 * delayproxy: a TCP relay that delays. Every connection accepted is relayed both ways to
 * --to; each byte is held back --delay-us microseconds from the moment the relay read it,
 * then released in order (a one-way delay: the round trip through the relay is twice that).
 * The end of a stream (FIN) is delayed the same way. Single-threaded, epoll-driven.
 *
 *   delayproxy (--listen ADDR:PORT | --listen-port P) --to HOST:PORT --delay-us N
 *              [--buffer BYTES] [--status-fd FD]
 *
 * --listen-port P listens on 127.0.0.1:P (0: any free port). The listening port is written
 * to FD (a line) once it listens. Each direction of a connection has a queue of --buffer
 * bytes (default 4 MiB; it must hold rate x delay to keep a link full). When it is full
 * the relay stops reading that side, so the sender's TCP window closes and rate shaping
 * before or after the relay still applies end to end. TCP_NODELAY on both sides. Not
 * delayed: the TCP handshake (the relay accepts at once and connects to --to at once).
 * Up to MAX_CONNS connections at a time; more are refused (closed). Exits 0 on SIGTERM or
 * SIGINT, 1 on a fatal error, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define MAX_RECS 16384	       /* arrival records per direction (one per read) */
#define MAX_READ (256 * 1024)  /* bytes per recv() */
#define MAX_DELAY_US 10000000L /* 10 s */
#define EV_LISTEN UINT64_MAX
#define EV_SIGNAL (UINT64_MAX - 1)
#define MASK_GONE UINT32_MAX /* the fd is out of the epoll set */

struct rec {
	uint64_t end; /* stream offset just past the bytes of this read */
	int64_t t;    /* when they may go (monotonic ns) */
};

/* One direction: bytes read from side `from`, to be written to the other side. */
struct dir {
	uint8_t *buf;
	struct rec *rec;
	uint64_t in, out, rel; /* stream offsets: read, written, released */
	unsigned rhead, rcount;
	int64_t eof_t; /* > 0: EOF read; FIN goes at that time */
	bool readable, blocked, shut;
};

struct conn {
	bool used, connected;
	int fd[2];	  /* 0: the client, 1: the upstream (--to) */
	uint32_t mask[2]; /* epoll interest registered, or MASK_GONE */
	struct dir d[2];  /* d[k]: read from fd[k], written to fd[!k] */
};

static struct conn conns[MAX_CONNS];
static int ep = -1;
static size_t bufcap = 4u << 20;
static int64_t delay_ns;
static struct sockaddr_in to_addr;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *c = strrchr(s, ':');
	char *e;

	if (!c || (size_t)(c - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = 0;
	long port = strtol(c + 1, &e, 10);
	if (*e || e == c + 1 || port < 0 || port > 65535)
		return -1;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static void conn_close(struct conn *c, const char *why)
{
	if (why)
		fprintf(stderr, "delayproxy: connection %ld closed: %s\n", (long)(c - conns), why);
	for (int k = 0; k < 2; k++) {
		if (c->fd[k] >= 0)
			close(c->fd[k]);
		free(c->d[k].buf);
		free(c->d[k].rec);
	}
	memset(c, 0, sizeof(*c));
}

/* The epoll id of side k of c. */
static uint64_t ev_id(const struct conn *c, int k)
{
	return (uint64_t)(c - conns) * 2 + (uint64_t)k;
}

static void set_nodelay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		perror("delayproxy: TCP_NODELAY");
}

static void do_accept(int ls)
{
	for (int n = 0; n < MAX_CONNS; n++) {
		int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				perror("delayproxy: accept");
			return;
		}
		struct conn *c = NULL;
		for (int i = 0; i < MAX_CONNS && !c; i++)
			if (!conns[i].used)
				c = &conns[i];
		if (!c) {
			fprintf(stderr, "delayproxy: %d connections open, refusing one\n",
				MAX_CONNS);
			close(cfd);
			continue;
		}
		c->used = true;
		c->fd[0] = cfd;
		c->fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		for (int k = 0; k < 2; k++) {
			c->d[k].buf = malloc(bufcap);
			c->d[k].rec = malloc(MAX_RECS * sizeof(struct rec));
		}
		if (c->fd[1] < 0 || !c->d[0].buf || !c->d[1].buf || !c->d[0].rec || !c->d[1].rec) {
			conn_close(c, "out of memory or sockets");
			continue;
		}
		set_nodelay(c->fd[0]);
		set_nodelay(c->fd[1]);
		if (connect(c->fd[1], (struct sockaddr *)&to_addr, sizeof(to_addr)) &&
		    errno != EINPROGRESS) {
			conn_close(c, strerror(errno));
			continue;
		}
		for (int k = 0; k < 2; k++) {
			struct epoll_event ev = {.events = 0, .data.u64 = ev_id(c, k)};
			if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd[k], &ev)) {
				conn_close(c, strerror(errno));
				break;
			}
		}
	}
}

/* Read what fits from side k into d = c->d[k]; -1 if the connection is to be closed. */
static int pump_in(struct conn *c, int k)
{
	struct dir *d = &c->d[k];

	for (int n = 0; n < 64 && d->readable && !d->eof_t; n++) {
		size_t used = (size_t)(d->in - d->out), at = (size_t)(d->in % bufcap);
		size_t room = bufcap - used;
		if (room > bufcap - at)
			room = bufcap - at; /* contiguous part of the ring */
		if (room > MAX_READ)
			room = MAX_READ;
		if (!room || d->rcount == MAX_RECS)
			return 0; /* full: back-pressure (EPOLLIN is dropped below) */
		ssize_t r = recv(c->fd[k], d->buf + at, room, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			d->readable = false;
			return 0;
		}
		if (r < 0)
			return -1;
		int64_t t = now_ns() + delay_ns;
		if (r == 0) {
			d->eof_t = t;
			return 0;
		}
		d->in += (uint64_t)r;
		struct rec *last =
		    d->rcount ? &d->rec[(d->rhead + d->rcount - 1) % MAX_RECS] : NULL;
		if (last && last->t == t)
			last->end = d->in;
		else
			d->rec[(d->rhead + d->rcount++) % MAX_RECS] = (struct rec){d->in, t};
	}
	return 0;
}

/* Release what is due and write it to the other side; -1 to close. Updates *next (the
 * earliest time something is due, 0 if nothing). */
static int pump_out(struct conn *c, int k, int64_t now, int64_t *next)
{
	struct dir *d = &c->d[k];
	int to = c->fd[!k];

	while (d->rcount && d->rec[d->rhead].t <= now) {
		d->rel = d->rec[d->rhead].end;
		d->rhead = (d->rhead + 1) % MAX_RECS;
		d->rcount--;
	}
	while (c->connected && !d->blocked && d->out < d->rel) {
		size_t at = (size_t)(d->out % bufcap), len = (size_t)(d->rel - d->out);
		if (len > bufcap - at)
			len = bufcap - at;
		ssize_t w = send(to, d->buf + at, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			d->blocked = true;
			break;
		}
		if (w <= 0)
			return -1;
		d->out += (uint64_t)w;
	}
	if (c->connected && d->eof_t && !d->shut && d->out == d->in) {
		if (d->eof_t <= now) {
			if (shutdown(to, SHUT_WR) && errno != ENOTCONN)
				return -1;
			d->shut = true;
		} else if (!*next || d->eof_t < *next) {
			*next = d->eof_t;
		}
	}
	if (d->rcount && (!*next || d->rec[d->rhead].t < *next))
		*next = d->rec[d->rhead].t;
	return 0;
}

/* Pump both directions of c and register the epoll interest that follows; -1 to close. */
static int pump(struct conn *c, int64_t *next)
{
	int64_t now = now_ns();

	for (int k = 0; k < 2; k++)
		if (pump_in(c, k) || pump_out(c, k, now, next))
			return -1;
	if (c->d[0].shut && c->d[1].shut)
		return 1; /* both ways done */
	for (int k = 0; k < 2; k++) {
		/* in: read from fd[k]; out: written to fd[k] */
		struct dir *in = &c->d[k], *out = &c->d[!k];
		bool room = in->in - in->out < bufcap && in->rcount < MAX_RECS;
		uint32_t m = (room && !in->eof_t ? EPOLLIN : 0) | (out->blocked ? EPOLLOUT : 0);
		if (k == 1 && !c->connected)
			m = EPOLLOUT;
		/* EOF read and FIN sent: nothing more on this fd (it would only report HUP). */
		bool done = in->eof_t && out->shut;
		if (c->mask[k] != MASK_GONE && (done || m != c->mask[k])) {
			struct epoll_event ev = {.events = m, .data.u64 = ev_id(c, k)};
			if (epoll_ctl(ep, done ? EPOLL_CTL_DEL : EPOLL_CTL_MOD, c->fd[k], &ev))
				return -1;
			c->mask[k] = done ? MASK_GONE : m;
		}
	}
	return 0;
}

static void on_event(uint64_t id, uint32_t evs)
{
	struct conn *c = &conns[id / 2];
	int k = (int)(id % 2);

	if (!c->used)
		return;
	if (k == 1 && !c->connected) {
		int err = 0;
		socklen_t l = sizeof(err);
		if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &l) || err) {
			conn_close(c, err ? strerror(err) : "getsockopt");
			return;
		}
		c->connected = true;
		return;
	}
	if (evs & EPOLLERR) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(c->fd[k], SOL_SOCKET, SO_ERROR, &err, &l);
		conn_close(c, err ? strerror(err) : "socket error");
		return;
	}
	if (evs & (EPOLLIN | EPOLLHUP))
		c->d[k].readable = true;
	if (evs & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->d[!k].blocked = false;
}

static int usage(void)
{
	fprintf(stderr, "usage: delayproxy (--listen ADDR:PORT | --listen-port P) --to HOST:PORT "
			"--delay-us N [--buffer BYTES] [--status-fd FD]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"listen", required_argument, NULL, 'l'},
					   {"listen-port", required_argument, NULL, 'p'},
					   {"to", required_argument, NULL, 't'},
					   {"delay-us", required_argument, NULL, 'd'},
					   {"buffer", required_argument, NULL, 'b'},
					   {"status-fd", required_argument, NULL, 's'},
					   {0}};
	struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	long delay = -1, stfd = -1, v;
	bool have_to = false, have_listen = false;
	char *e;
	int o;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'l':
			if (parse_addr(optarg, &la))
				return usage();
			have_listen = true;
			break;
		case 'p':
			v = strtol(optarg, &e, 10);
			if (*e || v < 0 || v > 65535)
				return usage();
			la.sin_port = htons((uint16_t)v);
			have_listen = true;
			break;
		case 't':
			if (parse_addr(optarg, &to_addr) || !to_addr.sin_port)
				return usage();
			have_to = true;
			break;
		case 'd':
			delay = strtol(optarg, &e, 10);
			if (*e || delay < 0 || delay > MAX_DELAY_US)
				return usage();
			break;
		case 'b':
			v = strtol(optarg, &e, 10);
			if (*e || v < 65536 || v > (1L << 30))
				return usage();
			bufcap = (size_t)v;
			break;
		case 's':
			stfd = strtol(optarg, &e, 10);
			if (*e || stfd < 0 || stfd > 1 << 20)
				return usage();
			break;
		default:
			return usage();
		}
	}
	if (!have_to || !have_listen || delay < 0 || optind != argc)
		return usage();
	delay_ns = delay * 1000;
	/* Wake-ups as close to the release time as the scheduler allows. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGPIPE);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sigdelset(&sigs, SIGPIPE);
	int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	socklen_t sl = sizeof(la);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ls < 0 || ep < 0 ||
	    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (struct sockaddr *)&la, sizeof(la)) || listen(ls, 128) ||
	    getsockname(ls, (struct sockaddr *)&la, &sl)) {
		perror("delayproxy: cannot listen");
		return 1;
	}
	struct epoll_event lev = {.events = EPOLLIN, .data.u64 = EV_LISTEN};
	struct epoll_event sev = {.events = EPOLLIN, .data.u64 = EV_SIGNAL};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev) || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev)) {
		perror("delayproxy: epoll");
		return 1;
	}
	if (stfd >= 0) {
		if (dprintf((int)stfd, "%d\n", ntohs(la.sin_port)) < 0) {
			perror("delayproxy: --status-fd");
			return 1;
		}
		close((int)stfd);
	}
	for (int64_t next = 0;;) {
		struct epoll_event evs[64];
		struct timespec ts, *tp = NULL;
		if (next) {
			int64_t w = next - now_ns();
			w = w < 0 ? 0 : w;
			ts = (struct timespec){(time_t)(w / 1000000000), (long)(w % 1000000000)};
			tp = &ts;
		}
		int n = epoll_pwait2(ep, evs, 64, tp, NULL);
		if (n < 0 && errno != EINTR) {
			perror("delayproxy: epoll_pwait2");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == EV_SIGNAL) {
				for (int k = 0; k < MAX_CONNS; k++)
					if (conns[k].used)
						conn_close(&conns[k], NULL);
				return 0;
			}
			if (evs[i].data.u64 == EV_LISTEN)
				do_accept(ls);
			else
				on_event(evs[i].data.u64, evs[i].events);
		}
		next = 0;
		for (int k = 0; k < MAX_CONNS; k++) {
			if (!conns[k].used)
				continue;
			int r = pump(&conns[k], &next);
			if (r)
				conn_close(&conns[k], r < 0 ? "reset or error" : NULL);
		}
	}
}

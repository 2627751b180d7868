/* GET /metrics with libmicrohttpd, driven by the daemon's event loop (metrics_http.h). */
#include "metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/log.h"
#include "util/parse.h"

#define METRICS_CONN_LIMIT 16
#define METRICS_PER_IP_LIMIT 4
#define METRICS_CONN_TIMEOUT_S 10
#define METRICS_CONN_MEMORY (32u * 1024)

struct metrics_http {
	struct MHD_Daemon *mhd;
	metrics_fill_fn fill;
	void *data;
	unsigned port;
	unsigned long scrapes;
	struct ev_loop *loop; /* NULL: driven by the caller */
	uint64_t timer;
};

static void on_ready(struct ev_loop *l, int fd, unsigned events, void *data)
{
	(void)l;
	(void)fd;
	(void)events;
	metrics_http_run(data);
}

/* Each second: the connections' timeouts. */
static void on_timer(struct ev_loop *l, uint64_t id, void *data)
{
	struct metrics_http *m = data;

	(void)id;
	metrics_http_run(m);
	m->timer = ev_timer_add(l, 1000, on_timer, m);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	pr_warn("metrics endpoint: %s", line);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     const char *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	struct metrics_http *m = cls;
	static const char text[] = "text/plain; charset=utf-8";

	(void)version;
	(void)upload_data;
	if (*upload_size) /* no request body is ours to read */
		return reply(c, MHD_HTTP_BAD_REQUEST, text, "no body\n", 8);
	if (!*con_cls) { /* headers only so far: answer on the next call */
		*con_cls = m;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, "GET /metrics\n", 13);
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, text, "GET /metrics\n", 13);
	struct prom_buf b;
	prom_init(&b);
	m->fill(m->data, &b);
	enum MHD_Result rc;
	if (b.failed || !b.s) {
		pr_err("metrics endpoint: cannot build the metrics text (out of memory or a bad "
		       "name)");
		rc = reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text, "error\n", 6);
	} else {
		m->scrapes++;
		rc = reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.s, b.len);
	}
	prom_free(&b);
	return rc;
}

/* HOST:PORT into a socket address: numeric hosts only (no lookups in a daemon's start). */
static int address(const char *hostport, struct sockaddr_storage *sa, struct errmsg *e)
{
	struct hostport hp;
	int rc = parse_hostport(hostport, &hp, e);

	if (rc)
		return rc;
	memset(sa, 0, sizeof(*sa));
	struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
	if (inet_pton(AF_INET, hp.host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)hp.port_num);
	} else if (inet_pton(AF_INET6, hp.host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)hp.port_num);
	} else {
		return errmsg_set(
		    e, EINVAL, "'%s': the host must be a numeric IPv4 or [IPv6] address", hostport);
	}
	return 0;
}

int metrics_http_start(struct metrics_http **out, struct ev_loop *loop, const char *hostport,
		       metrics_fill_fn fill, void *data, struct errmsg *e)
{
	struct sockaddr_storage sa;
	int rc = address(hostport, &sa, e);

	if (rc)
		return rc;
	struct metrics_http *m = calloc(1, sizeof(*m));
	if (!m)
		return errmsg_set(e, ENOMEM, "out of memory");
	m->fill = fill;
	m->data = data;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger first: libmicrohttpd warns (on its own stderr logger) otherwise. */
	m->mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)METRICS_CONN_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)METRICS_PER_IP_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)METRICS_CONN_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)METRICS_CONN_MEMORY, MHD_OPTION_END);
	if (!m->mhd) {
		free(m);
		return errmsg_set(e, EADDRNOTAVAIL,
				  "cannot listen on %s for metrics (address in use or not "
				  "ours?)",
				  hostport);
	}
	const union MHD_DaemonInfo *pi = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
	m->port = pi ? pi->port : 0;
	if (loop) {
		m->loop = loop;
		rc = ev_add(loop, metrics_http_fd(m), EV_READ, on_ready, m);
		m->timer = rc ? 0 : ev_timer_add(loop, 1000, on_timer, m);
		if (rc || !m->timer) {
			metrics_http_stop(m);
			return errmsg_set(e, rc ? -rc : ENOMEM,
					  "cannot serve %s from the event loop: %s", hostport,
					  strerror(rc ? -rc : ENOMEM));
		}
	}
	*out = m;
	return 0;
}

int metrics_http_fd(const struct metrics_http *m)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);

	return i ? i->epoll_fd : -1;
}

unsigned metrics_http_port(const struct metrics_http *m)
{
	return m->port;
}

void metrics_http_run(struct metrics_http *m)
{
	if (m)
		MHD_run(m->mhd);
}

unsigned long metrics_http_scrapes(const struct metrics_http *m)
{
	return m ? m->scrapes : 0;
}

void metrics_http_stop(struct metrics_http *m)
{
	if (!m)
		return;
	if (m->loop) {
		ev_del(m->loop, metrics_http_fd(m));
		ev_timer_del(m->loop, m->timer);
	}
	MHD_stop_daemon(m->mhd);
	free(m);
}

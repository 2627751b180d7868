/* A session's life and its one way out (session.h). */
#include "session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/clock.h"
#include "util/log.h"

int session_new(struct imgd *d, int fd, const char *peer, struct imgd_session **out)
{
	struct imgd_session *s = calloc(1, sizeof(*s));
	int rc = -ENOMEM;

	if (!s)
		return -ENOMEM;
	s->q = calloc(WIRE_MAX_INFLIGHT, sizeof(*s->q));
	if (!s->q)
		goto fail;
	rc = wire_random(s->challenge, sizeof(s->challenge));
	if (rc) {
		rc = rc < 0 ? rc : -EIO;
		goto fail;
	}
	rc = conn_io_init(&s->io, fd, d->tls_on ? &d->tls : NULL);
	if (rc)
		goto fail;
	s->d = d;
	s->up.dirfd = s->up.fd = -1;
	s->id = ++d->next_id;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	s->t_start = s->t_last = mono_ms();
	s->state = CS_HELLO;
	d->nconns++;
	pr_info("session %lu: connection from %s", (unsigned long)s->id, s->peer);
	*out = s;
	return 0;
fail:
	free(s->q);
	free(s);
	return rc;
}

/* What the session did goes into the server's sums (and its image's) as it closes. */
static void fold_counters(struct imgd_session *s)
{
	struct imgd *d = s->d;
	struct imgd_work *c = &d->closed[s->cls];

	if (!s->counted)
		d->results[s->auth_failed ? CR_AUTH_FAILED : CR_HANDSHAKE_FAILED]++;
	s->counted = true;
	c->requests += s->work.requests;
	c->pages += s->work.pages;
	c->zero_pages += s->work.zero_pages;
	c->bytes += s->work.bytes;
	if (s->img)
		s->img->pages_closed += s->work.pages;
	s->work = (struct imgd_work){0};
}

void session_free(struct imgd_session *s)
{
	fold_counters(s);
	conn_io_free(&s->io);
	catalog_put(&s->d->cat, s->img);
	s->d->nconns--;
	free(s->q);
	free(s);
}

int session_fd(const struct imgd_session *s)
{
	return s->io.fd;
}

int session_take_fd(struct imgd_session *s)
{
	int fd = s->io.fd;

	s->io.fd = -1;
	return fd;
}

const double imgd_hist_le[IMGD_HIST_N] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
					  0.01,	  0.025,   0.05,   0.1,	  1};

void imgd_hist_add(struct imgd_hist *h, double seconds)
{
	size_t i = 0;

	while (i < IMGD_HIST_N && seconds > imgd_hist_le[i])
		i++;
	h->count[i]++;
	h->sum += seconds;
}

void session_auth_failed(struct imgd_session *s)
{
	s->d->auth_failures++;
	s->auth_failed = true;
}

const char *conn_class_name(enum conn_class cls)
{
	switch (cls) {
	case CONN_URGENT:
		return "urgent";
	case CONN_BULK:
		return "bulk";
	case CONN_META:
		return "meta";
	case CONN_UPLOAD:
		return "upload";
	default:
		return "none";
	}
}

int session_auth_challenge(const struct imgd_session *s, uint8_t out[WIRE_NONCE])
{
	return conn_io_bind(&s->io, s->challenge, out);
}

int session_tls_role(const struct imgd_session *s)
{
	return s->io.tls_role;
}

void session_describe_tls(const struct imgd_session *s, char *buf, size_t len)
{
	conn_io_describe(&s->io, buf, len);
}

uint8_t *session_pay(struct imgd_session *s)
{
	return s->io.pay;
}

int session_reply(struct imgd_session *s, unsigned type, const ProtobufCMessage *m, size_t plen)
{
	int len = conn_io_queue(&s->io, type, m, plen);

	if (len > 0)
		s->work.bytes += (uint64_t)len;
	return len;
}

bool session_sends_files(const struct imgd_session *s)
{
	return conn_io_sends_files(&s->io);
}

int session_reply_file(struct imgd_session *s, unsigned type, const ProtobufCMessage *m, int fd,
		       const struct conn_io_seg *seg, unsigned nseg)
{
	int len = conn_io_queue_file(&s->io, type, m, fd, seg, nseg);

	if (len > 0)
		s->work.bytes += (uint64_t)len;
	return len;
}

int session_fail(struct imgd_session *s, int code, int64_t req, const char *fmt, ...)
{
	char text[WIRE_MAX_TEXT];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pr_warn("session %lu: %s: %s", (unsigned long)s->id, s->peer, text);
	s->d->errors[code > 0 && code < IMGD_NERR ? code : 0]++;
	LwError e = LW_ERROR__INIT;
	e.code = code;
	e.text = text;
	if (req >= 0) {
		e.has_req = true;
		e.req = (uint32_t)req;
	}
	conn_io_queue_error(&s->io, &e.base);
	if (req < 0)
		session_end(s, "%s", text);
	return -EPROTO;
}

void session_end(struct imgd_session *s, const char *fmt, ...)
{
	va_list ap;

	s->state = CS_CLOSING;
	va_start(ap, fmt);
	vsnprintf(s->close_why, sizeof(s->close_why), fmt, ap);
	va_end(ap);
}

/*
 * The lazy-wire state machine of one session (protocol.h): HELLO, AUTH, OPEN (or UPLOAD),
 * then the requests of its class. Nothing is read from an image before the client has
 * authenticated and opened an image by a valid id.
 */
#include "protocol.h"

#include <errno.h>
#include <stdio.h>

#include "handlers.h"
#include "util/clock.h"
#include "util/log.h"

#define MAX_FRAMES_PER_READ 64

/* Which frame types each state accepts. */
static bool expected(const struct imgd_session *s, unsigned type)
{
	if (type == WT_CLOSE)
		return true;
	switch (s->state) {
	case CS_HELLO:
		return type == WT_HELLO;
	case CS_AUTH:
		return type == WT_AUTH;
	case CS_OPEN:
		return type == WT_OPEN || type == WT_UPLOAD;
	case CS_READY:
		if (s->cls == CONN_META)
			return type == WT_META_LIST || type == WT_META_GET;
		if (s->cls == CONN_UPLOAD)
			return type == WT_UPLOAD_FILE || type == WT_UPLOAD_END;
		return type == WT_INDEX_GET || type == WT_GET;
	default:
		return false;
	}
}

/* A checked frame to its handler; the state moves on the handshake's successes. */
static void on_frame(struct imgd_session *s, unsigned type, const ProtobufCMessage *m)
{
	s->t_last = mono_ms();
	if (s->state == CS_READY && type != WT_CLOSE)
		s->work.requests++;
	switch (type) {
	case WT_HELLO:
		if (!handshake_hello(s, (const LwHello *)m))
			s->state = CS_AUTH;
		break;
	case WT_AUTH:
		if (!handshake_auth(s, (const LwAuth *)m))
			s->state = CS_OPEN;
		break;
	case WT_OPEN:
		if (!handshake_open(s, (const LwOpen *)m))
			s->state = CS_READY;
		break;
	case WT_UPLOAD:
		if (!upload_begin(s, (const LwUpload *)m))
			s->state = CS_READY;
		break;
	case WT_INDEX_GET:
		index_start(s);
		break;
	case WT_GET:
		pages_queue_get(s, (const LwGet *)m);
		break;
	case WT_META_LIST:
		meta_on_list(s, (const LwMetaList *)m);
		break;
	case WT_META_GET:
		meta_on_get(s, (const LwMetaGet *)m);
		break;
	case WT_UPLOAD_FILE:
		upload_file(s, (const LwUploadFile *)m);
		break;
	case WT_UPLOAD_END:
		if (!upload_end(s, (const LwUploadEnd *)m))
			session_end(s, "upload done");
		break;
	case WT_CLOSE:
		session_end(s, "client said CLOSE");
		break;
	}
}

/* The frame at the head of rx: 1 handled, 0 incomplete, -EPROTO the session failed. */
static int take_frame(struct imgd_session *s)
{
	struct wire_hdr h;
	struct errmsg e;
	int rc = conn_io_peek(&s->io, &h, &e);

	if (rc == 0)
		return 0;
	if (rc < 0)
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "bad frame header: %s", e.msg);
	if (!expected(s, h.type))
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "unexpected %s frame",
				    wire_type_name(h.type));
	if (s->state >= CS_OPEN && !wire_role_may(s->role, h.type)) {
		session_auth_failed(s);
		return session_fail(s, LW_ERR__LW_E_AUTH, -1,
				    "%s refused: this connection holds the %s key",
				    wire_type_name(h.type), wire_role_name(s->role));
	}
	const uint8_t *msg = conn_io_msg(&s->io, &h);
	if (!msg)
		return 0;
	ProtobufCMessage *m = wire_unpack(h.type, msg, h.msg_len);
	if (!m)
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "malformed %s message",
				    wire_type_name(h.type));
	if (wire_check(h.type, m, &h, &e)) {
		/* A GET out of limits is refused alone; anything else ends the session. */
		bool get = h.type == WT_GET;
		rc = session_fail(s, get ? LW_ERR__LW_E_LIMIT : LW_ERR__LW_E_PROTO,
				  get ? (int64_t)((LwGet *)m)->req : -1, "%s: %s",
				  wire_type_name(h.type), e.msg);
		wire_free(m);
		if (!get)
			return rc;
	} else {
		on_frame(s, h.type, m);
		wire_free(m);
	}
	conn_io_drop(&s->io, &h);
	return 1;
}

/* The TLS handshake, when there is one: true once it is done. */
static bool tls_step(struct imgd_session *s)
{
	struct errmsg e;
	int rc = conn_io_handshake(&s->io, &e);

	if (rc > 0)
		return true;
	if (rc == -EPROTONOSUPPORT) { /* told so in plain, and closed */
		session_auth_failed(s);
		session_fail(s, LW_ERR__LW_E_AUTH, -1,
			     "this criu-imgd speaks TLS only (it listens beyond loopback, or "
			     "--tls): the client must use TLS too (--tls, or `tls on`)");
	} else if (rc < 0) {
		session_auth_failed(s);
		pr_warn("session %lu: %s: TLS handshake failed: %s", (unsigned long)s->id, s->peer,
			e.msg);
		session_end(s, "TLS handshake: %s", e.msg);
	}
	return false;
}

void protocol_on_readable(struct imgd_session *s)
{
	struct errmsg e;

	if (s->state == CS_CLOSING || !tls_step(s))
		return;
	for (int frames = 0; frames < MAX_FRAMES_PER_READ && s->state != CS_CLOSING;) {
		/* A handshake reply is still going out: the next one waits for it. */
		if (conn_io_out_pending(&s->io) &&
		    (s->state != CS_READY || s->cls == CONN_META || s->cls == CONN_UPLOAD))
			return;
		if (s->state == CS_READY && s->nq >= WIRE_MAX_INFLIGHT)
			return; /* back-pressure: the socket stays readable */
		int r = take_frame(s);
		if (r < 0)
			return;
		if (r > 0) {
			frames++;
			continue;
		}
		r = conn_io_recv(&s->io, &e);
		if (r > 0)
			continue;
		if (r != -EAGAIN)
			session_end(s, "%s", e.msg); /* the connection is dead: nobody to send to */
		return;
	}
}

bool protocol_has_urgent(const struct imgd_session *s)
{
	return s->state == CS_READY && pages_has_urgent(s);
}

bool protocol_rx_pending(const struct imgd_session *s)
{
	return conn_io_rx_pending(&s->io);
}

bool protocol_tls_wants_write(const struct imgd_session *s)
{
	return s->state != CS_CLOSING && conn_io_wants_write(&s->io);
}

bool protocol_wants_write(const struct imgd_session *s)
{
	return conn_io_tx_busy(&s->io) || protocol_tls_wants_write(s);
}

bool protocol_pump(struct imgd_session *s, bool urgent_only)
{
	/*
	 * Background work gets one frame a pass, so that the loop comes back to urgent
	 * requests (of any connection) after at most one chunk per connection.
	 */
	int max_frames = urgent_only ? 4 : 1;
	struct errmsg e;

	for (int frames = 0; frames < max_frames; frames++) {
		if (s->io.dead) {
			s->state = CS_CLOSING;
			return false;
		}
		if (conn_io_flush(&s->io, &e)) { /* the connection is dead */
			session_end(s, "%s", e.msg);
			return false;
		}
		if (conn_io_tx_busy(&s->io))
			return false; /* socket full: the event loop tells when it takes more */
		if (conn_io_next_error(&s->io))
			continue;
		if (s->state != CS_READY)
			return false;
		int r = 0;
		if (s->ix_active && !urgent_only) {
			r = index_next_frame(s);
			if (r == 0)
				s->ix_active = false;
		}
		if (r == 0)
			r = pages_next_frame(s, urgent_only);
		if (r <= 0)
			return false;
	}
	return s->nq || s->ix_active;
}

/* The times compare as t + limit < now: a t taken after now (in this pass) is not late. */
void protocol_check_timeouts(struct imgd_session *s, uint64_t now_ms)
{
	if (s->state != CS_READY && s->state != CS_CLOSING &&
	    now_ms > s->t_start + IMGD_HANDSHAKE_S * 1000ull)
		session_fail(s, LW_ERR__LW_E_PROTO, -1, "handshake not done in %d s",
			     IMGD_HANDSHAKE_S);
	else if (s->state == CS_READY && !s->nq && now_ms > s->t_last + IMGD_IDLE_S * 1000ull)
		session_fail(s, LW_ERR__LW_E_PROTO, -1, "idle for %d s", IMGD_IDLE_S);
	if (conn_io_stalled(&s->io, now_ms, IMGD_STALL_S * 1000ull)) {
		/* It asked and does not read: its buffers go back. */
		session_end(s, "client read nothing for %d s", IMGD_STALL_S);
		s->io.dead = true;
	}
}

bool protocol_closable(struct imgd_session *s)
{
	if (s->state != CS_CLOSING)
		return false;
	protocol_pump(s, false);
	return s->io.dead || !conn_io_out_pending(&s->io);
}

void protocol_close(struct imgd_session *s, const char *why)
{
	double dt = (double)(mono_ms() - s->t_start) / 1e3;

	if (!why)
		why = s->close_why[0] ? s->close_why : "closed";
	char z[128];

	compress_describe(s, z, sizeof(z));
	if (s->img)
		pr_msg("session %lu: %s closed (%s): image %s (%s), %lu requests, %lu pages served "
		       "in %lu frames (%lu zero, not sent), %lu bytes%s, %.3f s",
		       (unsigned long)s->id, s->peer, why, s->img->id, conn_class_name(s->cls),
		       (unsigned long)s->work.requests, (unsigned long)s->work.pages,
		       (unsigned long)s->work.frames, (unsigned long)s->work.zero_pages,
		       (unsigned long)s->work.bytes, z, dt);
	else
		pr_info("session %lu: %s closed (%s) before opening an image, %.3f s",
			(unsigned long)s->id, s->peer, why, dt);
	upload_abort(s);
	session_free(s);
}

/*
 * One client connection: frames in, the handshake state machine, frames out.
 * Nothing is read from an image before the client has authenticated (when a
 * key is configured) and opened an image by a valid id.
 */
#include "imgd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/log.h"

#define MAX_FRAMES_PER_READ 64

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

struct imgd_conn *conn_new(struct imgd *d, int fd, const char *peer)
{
	struct imgd_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->rx = malloc(WIRE_HDR_SIZE + WIRE_MAX_MSG);
	c->tx = malloc(IMGD_HEAD_CAP);
	c->pay = malloc((size_t)IMGD_CHUNK_PAGES * WIRE_PAGE);
	c->q = calloc(WIRE_MAX_INFLIGHT, sizeof(*c->q));
	if (!c->rx || !c->tx || !c->pay || !c->q ||
	    wire_random(c->challenge, sizeof(c->challenge))) {
		free(c->rx);
		free(c->tx);
		free(c->pay);
		free(c->q);
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->tls_role = -1;
	if (d->tls_on && wire_tls_server_session(&d->tls, fd, &c->tls)) {
		free(c->rx);
		free(c->tx);
		free(c->pay);
		free(c->q);
		free(c);
		return NULL;
	}
	c->up_dirfd = c->up_fd = -1;
	c->id = ++d->next_id;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->t_start = c->t_last = c->t_sent = imgd_now();
	c->state = c->tls ? CS_TLS : CS_HELLO;
	c->next = d->conns;
	d->conns = c;
	d->nconns++;
	d->sessions++;
	pr_info("session %lu: connection from %s", (unsigned long)c->id, c->peer);
	return c;
}

void conn_close(struct imgd *d, struct imgd_conn *c, const char *why)
{
	double dt = imgd_now() - c->t_start;

	if (c->img)
		pr_msg(
		    "session %lu: %s closed (%s): image %s (%s), %lu GETs, %lu pages served (%lu "
		    "zero, not sent), %lu bytes, %.3f s",
		    (unsigned long)c->id, c->peer, why, c->img->id, conn_class_name(c->cls),
		    (unsigned long)c->gets, (unsigned long)c->pages, (unsigned long)c->zero_pages,
		    (unsigned long)c->bytes, dt);
	else
		pr_info("session %lu: %s closed (%s) before opening an image, %.3f s",
			(unsigned long)c->id, c->peer, why, dt);
	upload_abort(d, c);
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->tls)
		gnutls_deinit(c->tls);
	close(c->fd);
	catalog_put(&d->cat, c->img);
	for (struct imgd_conn **p = &d->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	d->nconns--;
	free(c->rx);
	free(c->tx);
	free(c->pay);
	free(c->q);
	free(c);
}

int conn_queue_frame(struct imgd_conn *c, unsigned type, const ProtobufCMessage *m)
{
	int n = wire_pack(type, m, 0, c->tx, IMGD_HEAD_CAP);

	if (n < 0)
		return n;
	c->tx_head = c->tx_len = (size_t)n;
	c->tx_off = 0;
	c->t_sent = imgd_now(); /* the stall clock starts with the frame */
	return 0;
}

void conn_fail(struct imgd *d, struct imgd_conn *c, int code, int64_t req, const char *fmt, ...)
{
	char text[WIRE_MAX_TEXT];
	va_list ap;

	(void)d;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pr_warn("session %lu: %s: %s", (unsigned long)c->id, c->peer, text);
	LwError e = LW_ERROR__INIT;
	e.code = code;
	e.text = text;
	if (req >= 0) {
		e.has_req = true;
		e.req = (uint32_t)req;
	}
	/* After the frame being sent, if any; a second error before that one went is dropped. */
	if (!c->errf_len) {
		int n = wire_pack(WT_ERROR, &e.base, 0, c->errf, sizeof(c->errf));
		c->errf_len = n > 0 ? (size_t)n : 0;
	}
	if (req < 0) {
		c->state = CS_CLOSING;
		snprintf(c->close_why, sizeof(c->close_why), "%s", text);
	}
}

static void send_hello_reply(struct imgd *d, struct imgd_conn *c, const LwHello *h)
{
	if (h->version_min > WIRE_VERSION || h->version_max < WIRE_VERSION) {
		conn_fail(d, c, LW_ERR__LW_E_VERSION, -1,
			  "no common protocol version (client %u..%u, server %u)", h->version_min,
			  h->version_max, WIRE_VERSION);
		return;
	}
	LwHelloReply r = LW_HELLO_REPLY__INIT;
	r.version = WIRE_VERSION;
	r.auth_required = true; /* always: no connection reads or publishes without a key */
	r.challenge.data = c->challenge;
	r.challenge.len = sizeof(c->challenge);
	r.server = "criu-imgd";
	conn_queue_frame(c, WT_HELLO_REPLY, &r.base);
	pr_debug("session %lu: hello from '%s'", (unsigned long)c->id, h->client ? h->client : "");
	c->state = CS_AUTH;
}

/* The key of a role, or NULL when this server takes no such connections. */
static const struct wire_key *role_key(const struct imgd *d, LwRole role)
{
	if (role == LW_ROLE__LW_ROLE_READ)
		return &d->read_key;
	if (role == LW_ROLE__LW_ROLE_PUBLISH && d->o->accept_uploads)
		return &d->upload_key;
	return NULL;
}

static void on_auth(struct imgd *d, struct imgd_conn *c, const LwAuth *a)
{
	uint8_t want[WIRE_MAC], proof[WIRE_MAC], bound[WIRE_NONCE];
	const struct wire_key *key = role_key(d, a->role);
	const uint8_t *challenge = c->challenge;

	/* Inside TLS the proofs cover the TLS session (wire_tls_bind): no relaying them. */
	if (c->tls && wire_tls_bind(c->tls, c->challenge, bound)) {
		conn_fail(d, c, LW_ERR__LW_E_AUTH, -1, "cannot bind to the TLS session");
		return;
	}
	if (c->tls)
		challenge = bound;
	if (c->tls_role >= 0 && (int)a->role != c->tls_role) {
		d->refused++;
		conn_fail(d, c, LW_ERR__LW_E_AUTH, -1, "AUTH as %s on a TLS session of the %s key",
			  wire_role_name(a->role), wire_role_name((LwRole)c->tls_role));
		return;
	}
	if (!key) {
		d->refused++;
		conn_fail(d, c, LW_ERR__LW_E_AUTH, -1,
			  "uploads are not accepted here (criu-imgd --root DIR --accept-uploads "
			  "--upload-key FILE)");
		return;
	}
	if (wire_auth_client_mac(key, a->role, challenge, a->nonce.data, want) ||
	    !wire_mac_equal(want, a->mac.data)) {
		d->refused++;
		conn_fail(d, c, LW_ERR__LW_E_AUTH, -1, "authentication failed (%s)",
			  a->role == LW_ROLE__LW_ROLE_READ
			      ? "not the readers' key, --auth-key"
			      : "not the publishers' key, --upload-key");
		return;
	}
	if (wire_auth_server_mac(key, a->role, challenge, a->nonce.data, proof)) {
		conn_fail(d, c, LW_ERR__LW_E_AUTH, -1, "cannot compute the server proof");
		return;
	}
	LwAuthOk ok = LW_AUTH_OK__INIT;
	ok.mac.data = proof;
	ok.mac.len = sizeof(proof);
	conn_queue_frame(c, WT_AUTH_OK, &ok.base);
	c->role = a->role;
	c->state = CS_OPEN;
	char how[96] = "no TLS";
	if (c->tls)
		wire_tls_describe(c->tls, how, sizeof(how));
	pr_info("session %lu: authenticated to %s (%s)", (unsigned long)c->id,
		wire_role_name(c->role), how);
}

static void on_open(struct imgd *d, struct imgd_conn *c, const LwOpen *o)
{
	struct errmsg e;

	if (o->image[0] == '.') { /* uploads in progress live below the root as .upload-* */
		conn_fail(d, c, LW_ERR__LW_E_NOIMAGE, -1, "open '%s': no such image", o->image);
		return;
	}
	int rc = catalog_get(&d->cat, o->image, &c->img, &e);
	if (rc) {
		conn_fail(d, c, rc == -ENOENT ? LW_ERR__LW_E_NOIMAGE : LW_ERR__LW_E_IO, -1,
			  "open '%s': %s", o->image, e.msg);
		return;
	}
	c->cls = o->class_ == LW_CLASS__LW_CLASS_URGENT ? CONN_URGENT
		 : o->class_ == LW_CLASS__LW_CLASS_META ? CONN_META
							: CONN_BULK;
	LwOpenReply r = LW_OPEN_REPLY__INIT;
	r.nr_tasks = (uint32_t)c->img->set.nr_tasks;
	r.lazy_pages = c->img->lazy_pages;
	r.zero_pages = c->img->zero_pages;
	r.dump_checksums = c->img->dump_sums;
	conn_queue_frame(c, WT_OPEN_REPLY, &r.base);
	c->state = CS_READY;
	pr_info("session %lu: %s opened image %s (%s connection)", (unsigned long)c->id, c->peer,
		c->img->id, conn_class_name(c->cls));
}

/* Which frame types each state accepts. */
static bool expected(const struct imgd_conn *c, unsigned type)
{
	if (type == WT_CLOSE)
		return true;
	switch (c->state) {
	case CS_HELLO:
		return type == WT_HELLO;
	case CS_AUTH:
		return type == WT_AUTH;
	case CS_OPEN:
		return type == WT_OPEN || type == WT_UPLOAD;
	case CS_READY:
		if (c->cls == CONN_META)
			return type == WT_META_LIST || type == WT_META_GET;
		if (c->cls == CONN_UPLOAD)
			return type == WT_UPLOAD_FILE || type == WT_UPLOAD_END;
		return type == WT_INDEX_GET || type == WT_GET;
	default:
		return false;
	}
}

static void on_frame(struct imgd *d, struct imgd_conn *c, const struct wire_hdr *h,
		     const ProtobufCMessage *m)
{
	c->t_last = imgd_now();
	switch (h->type) {
	case WT_HELLO:
		send_hello_reply(d, c, (const LwHello *)m);
		break;
	case WT_AUTH:
		on_auth(d, c, (const LwAuth *)m);
		break;
	case WT_OPEN:
		on_open(d, c, (const LwOpen *)m);
		break;
	case WT_INDEX_GET:
		if (c->index_active) {
			conn_fail(d, c, LW_ERR__LW_E_PROTO, -1,
				  "INDEX_GET while the index streams");
			break;
		}
		c->index_active = true;
		c->ix_task = c->ix_ext = 0;
		break;
	case WT_GET:
		c->gets++;
		pages_queue_get(d, c, (const LwGet *)m);
		break;
	case WT_META_LIST:
		meta_on_list(d, c, (const LwMetaList *)m);
		break;
	case WT_UPLOAD:
		upload_begin(d, c, (const LwUpload *)m);
		break;
	case WT_UPLOAD_FILE:
		upload_file(d, c, (const LwUploadFile *)m);
		break;
	case WT_UPLOAD_END:
		upload_end(d, c, (const LwUploadEnd *)m);
		break;
	case WT_META_GET:
		meta_on_get(d, c, (const LwMetaGet *)m);
		break;
	case WT_CLOSE:
		c->state = CS_CLOSING;
		snprintf(c->close_why, sizeof(c->close_why), "client said CLOSE");
		break;
	}
}

/* One complete frame in c->rx: 1 handled, 0 incomplete, -1 the connection failed. */
static int take_frame(struct imgd *d, struct imgd_conn *c)
{
	struct wire_hdr h;
	const char *why;

	if (c->rx_len < WIRE_HDR_SIZE)
		return 0;
	if (wire_hdr_get(c->rx, &h, &why) || h.payload_len) {
		conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "bad frame header: %s",
			  h.payload_len ? "payload from a client" : why);
		return -1;
	}
	if (!expected(c, h.type)) {
		conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "unexpected %s frame",
			  wire_type_name(h.type));
		return -1;
	}
	if (c->state >= CS_OPEN && !wire_role_may(c->role, h.type)) {
		d->refused++;
		conn_fail(d, c, LW_ERR__LW_E_AUTH, -1,
			  "%s refused: this connection holds the %s key", wire_type_name(h.type),
			  wire_role_name(c->role));
		return -1;
	}
	size_t total = WIRE_HDR_SIZE + h.msg_len;
	if (c->rx_len < total)
		return 0;
	ProtobufCMessage *m = wire_unpack(h.type, c->rx + WIRE_HDR_SIZE, h.msg_len);
	if (!m) {
		conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "malformed %s message",
			  wire_type_name(h.type));
		return -1;
	}
	if (wire_check(h.type, m, &h, &why)) {
		bool get = h.type == WT_GET;
		conn_fail(d, c, get ? LW_ERR__LW_E_LIMIT : LW_ERR__LW_E_PROTO,
			  get ? (int64_t)((LwGet *)m)->req : -1, "%s: %s", wire_type_name(h.type),
			  why);
		wire_free(m);
		if (!get)
			return -1;
	} else {
		on_frame(d, c, &h, m);
		wire_free(m);
	}
	memmove(c->rx, c->rx + total, c->rx_len - total);
	c->rx_len -= total;
	return 1;
}

/* A client that speaks plain lazy-wire to a TLS server: told so in plain, and closed. */
static bool plain_client(struct imgd *d, struct imgd_conn *c)
{
	uint8_t b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n != 1 || b != (WIRE_MAGIC >> 8))
		return false; /* a TLS ClientHello starts with 0x16; EOF shows in the handshake */
	gnutls_deinit(c->tls);
	c->tls = NULL;
	d->refused++;
	conn_fail(d, c, LW_ERR__LW_E_AUTH, -1,
		  "this criu-imgd speaks TLS only (it listens beyond loopback, or --tls): the "
		  "client must use TLS too (--tls, or `tls on`)");
	return true;
}

/* Go on with the TLS handshake: true once it is done. */
static bool tls_step(struct imgd *d, struct imgd_conn *c)
{
	if (!c->tls_started) {
		if (plain_client(d, c))
			return false;
		c->tls_started = true;
	}
	int rc = gnutls_handshake(c->tls);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ||
	    (rc < 0 && !gnutls_error_is_fatal(rc)))
		return false;
	if (rc < 0) {
		d->refused++;
		pr_warn("session %lu: %s: TLS handshake failed: %s", (unsigned long)c->id, c->peer,
			gnutls_strerror(rc));
		snprintf(c->close_why, sizeof(c->close_why), "TLS handshake: %s",
			 gnutls_strerror(rc));
		c->state = CS_CLOSING;
		c->dead = true;
		return false;
	}
	c->tls_role = wire_tls_psk_role(c->tls);
	c->state = CS_HELLO;
	return true;
}

bool conn_tls_wants_write(const struct imgd_conn *c)
{
	return c->state == CS_TLS && c->tls_started && gnutls_record_get_direction(c->tls) == 1;
}

bool conn_rx_pending(const struct imgd_conn *c)
{
	return c->rx_len >= WIRE_HDR_SIZE ||
	       (c->tls && c->state != CS_TLS && gnutls_record_check_pending(c->tls) > 0);
}

static ssize_t sock_recv(struct imgd_conn *c, void *buf, size_t len)
{
	if (c->tls)
		return wire_tls_recv(c->tls, buf, len);
	ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);
	return n >= 0 ? n : errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
}

void conn_on_readable(struct imgd *d, struct imgd_conn *c)
{
	if (c->state == CS_TLS && !tls_step(d, c))
		return;
	for (int frames = 0; frames < MAX_FRAMES_PER_READ && c->state != CS_CLOSING;) {
		/* A handshake reply is still going out: the next one waits for it. */
		if ((c->tx_len || c->errf_len) &&
		    (c->state != CS_READY || c->cls == CONN_META || c->cls == CONN_UPLOAD))
			return;
		if (c->state == CS_READY && c->nq >= WIRE_MAX_INFLIGHT)
			return; /* back-pressure: the socket stays readable */
		int r = take_frame(d, c);
		if (r < 0)
			return;
		if (r > 0) {
			frames++;
			continue;
		}
		size_t cap = WIRE_HDR_SIZE + WIRE_MAX_MSG;
		ssize_t n = sock_recv(c, c->rx + c->rx_len, cap - c->rx_len);
		if (n > 0) {
			c->rx_len += (size_t)n;
			continue;
		}
		if (n == -EAGAIN)
			return;
		c->state = CS_CLOSING;
		snprintf(c->close_why, sizeof(c->close_why), "%s%s",
			 c->tls && n == -EBADMSG ? "TLS record failed its integrity check: " : "",
			 n == 0 ? "client went away" : strerror((int)-n));
		c->dead = true; /* nobody to send to */
		return;
	}
}

bool conn_has_urgent(const struct imgd_conn *c)
{
	for (unsigned i = 0; i < c->nq; i++)
		if (c->q[i].urgent)
			return true;
	return false;
}

/*
 * One TLS record's worth of tx: the head, then the payload. After -EAGAIN the next call
 * offers the same bytes (tx_off has not moved), as gnutls_record_send wants.
 */
static ssize_t send_tls(struct imgd_conn *c)
{
	if (c->tx_off < c->tx_head)
		return wire_tls_send(c->tls, c->tx + c->tx_off, c->tx_head - c->tx_off);
	return wire_tls_send(c->tls, c->pay + (c->tx_off - c->tx_head), c->tx_len - c->tx_off);
}

/* Send what is buffered; -1 on a dead socket. */
static int flush(struct imgd_conn *c)
{
	while (c->tx_off < c->tx_len && c->tls) {
		ssize_t n = send_tls(c);
		if (n > 0) {
			c->tx_off += (size_t)n;
			c->t_sent = imgd_now();
			continue;
		}
		if (n == -EAGAIN)
			return 0;
		snprintf(c->close_why, sizeof(c->close_why), "send: %s",
			 n < 0 ? strerror((int)-n) : "closed");
		return -1;
	}
	while (c->tx_off < c->tx_len) {
		struct iovec iov[2];
		struct msghdr mh = {.msg_iov = iov};
		if (c->tx_off < c->tx_head) {
			iov[0] = (struct iovec){c->tx + c->tx_off, c->tx_head - c->tx_off};
			iov[1] = (struct iovec){c->pay, c->tx_len - c->tx_head};
			mh.msg_iovlen = c->tx_len > c->tx_head ? 2 : 1;
		} else {
			iov[0] = (struct iovec){c->pay + (c->tx_off - c->tx_head),
						c->tx_len - c->tx_off};
			mh.msg_iovlen = 1;
		}
		ssize_t n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			c->tx_off += (size_t)n;
			c->t_sent = imgd_now();
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		snprintf(c->close_why, sizeof(c->close_why), "send: %s",
			 n < 0 ? strerror(errno) : "closed");
		return -1;
	}
	c->tx_len = c->tx_off = c->tx_head = 0;
	return 0;
}

bool conn_pump(struct imgd *d, struct imgd_conn *c, bool urgent_only)
{
	/*
	 * Background work gets one frame a pass, so that the loop comes back to urgent
	 * requests (of any connection) after at most one chunk per connection.
	 */
	int max_frames = urgent_only ? 4 : 1;

	for (int frames = 0; frames < max_frames; frames++) {
		if (c->dead || flush(c)) {
			c->state = CS_CLOSING;
			c->dead = true;
			return false;
		}
		if (c->tx_len)
			return false; /* socket full: EPOLLOUT will tell */
		if (c->errf_len) {
			memcpy(c->tx, c->errf, c->errf_len);
			c->tx_head = c->tx_len = c->errf_len;
			c->t_sent = imgd_now();
			c->errf_len = 0;
			continue;
		}
		if (c->state != CS_READY)
			return false;
		int r = 0;
		if (c->index_active && !urgent_only) {
			r = index_next_frame(d, c);
			if (r == 0)
				c->index_active = false;
		}
		if (r == 0)
			r = pages_next_frame(d, c, urgent_only);
		if (r <= 0)
			return false;
	}
	return c->nq || c->index_active;
}

/* lazy-wire client: connect, TLS, HELLO, AUTH (see wire_client_conn.h). */
#include "wire_client_conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/parse.h"

int wire_client_parse(struct wire_client *c, const char *server, struct errmsg *e)
{
	struct hostport hp[WIRE_MAX_SERVERS];
	unsigned n;
	int rc = parse_hostport_list(server, hp, WIRE_MAX_SERVERS, &n, e);

	if (rc)
		return rc;
	_Static_assert(sizeof(c->srv[0].host) >= sizeof(hp[0].host), "host fits");
	_Static_assert(sizeof(c->srv[0].port) >= sizeof(hp[0].port), "port fits");
	for (unsigned i = 0; i < n; i++) {
		memcpy(c->srv[i].host, hp[i].host, sizeof(hp[i].host));
		memcpy(c->srv[i].port, hp[i].port, sizeof(hp[i].port));
	}
	c->nsrv = n;
	wire_client_use(c, 0);
	return 0;
}

void wire_client_use(struct wire_client *c, unsigned i)
{
	memcpy(c->host, c->srv[i].host, sizeof(c->host));
	memcpy(c->port, c->srv[i].port, sizeof(c->port));
}

int wire_err_errno(int code)
{
	switch (code) {
	case LW_ERR__LW_E_AUTH:
		return -EACCES;
	case LW_ERR__LW_E_NOIMAGE:
		return -ENOENT;
	case LW_ERR__LW_E_RANGE:
		return -ERANGE;
	case LW_ERR__LW_E_CHECKSUM:
		return -EBADMSG;
	case LW_ERR__LW_E_BUSY:
	case LW_ERR__LW_E_IO:
		return -EAGAIN;
	default:
		return -EPROTO;
	}
}

/* connect() on a non-blocking socket, bounded by the deadline. 0 or -errno. */
static int connect_by(int fd, const struct addrinfo *a, uint64_t deadline)
{
	if (!connect(fd, a->ai_addr, a->ai_addrlen))
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	for (;;) {
		uint64_t now = mono_ms();
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (now >= deadline)
			return -ETIMEDOUT;
		int n = poll(&p, 1, (int)(deadline - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			continue;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
			return -errno;
		return -soerr;
	}
}

/* A TCP connection to c->host:c->port (every address it resolves to, in turn): fd or -errno. */
static int dial(const struct wire_client *c, struct errmsg *e)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai, *a;
	int rc = getaddrinfo(c->host, c->port, &hints, &ai), fd = -1, err = 0;

	if (rc)
		return errmsg_set(e, EHOSTUNREACH, "cannot resolve %s: %s", c->host,
				  gai_strerror(rc));
	for (a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			err = -errno;
		} else if ((err = connect_by(fd, a, mono_ms() + c->timeout_ms))) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return errmsg_set(e, err ? err : -ECONNREFUSED, "cannot connect to %s:%s: %s",
				  c->host, c->port, strerror(-err));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* TLS when the config says on, or auto and the server is not on loopback: 0 or -errno. */
static int maybe_tls(int fd, const struct wire_client *c, LwRole role, uint64_t deadline,
		     struct errmsg *e)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl))
		return errmsg_set(e, errno, "getpeername: %s", strerror(errno));
	if (!wire_tls_wanted(c->tls, (struct sockaddr *)&ss))
		return 0;
	return wire_tls_client(fd, c->tls, c->host, c->key, role, deadline, e);
}

int wire_client_expect(int fd, uint8_t *scratch, unsigned type, ProtobufCMessage **m,
		       uint64_t deadline, struct errmsg *e)
{
	struct wire_hdr h;
	int rc = wire_recv(fd, scratch, &h, m, NULL, 0, deadline, e);

	if (rc)
		return errmsg_prefix(e, rc == -EPROTO ? rc : -EAGAIN, "waiting for %s",
				     wire_type_name(type));
	if (h.type == WT_ERROR) {
		LwError *x = (LwError *)*m;
		rc = errmsg_set(e, wire_err_errno(x->code), "server: %s", x->text);
	} else if (h.type != type) {
		rc = errmsg_set(e, EPROTO, "expected %s, got %s", wire_type_name(type),
				wire_type_name(h.type));
	}
	if (rc) {
		wire_free(*m);
		*m = NULL;
	}
	return rc;
}

/* AUTH with our key for role, then AUTH_OK must prove the server holds it too. 0 or -errno. */
static int authenticate(int fd, const struct wire_client *c, LwRole role, uint8_t *scratch,
			const uint8_t *challenge, uint64_t deadline, struct errmsg *e)
{
	uint8_t nonce[WIRE_NONCE], mac[WIRE_MAC], want[WIRE_MAC], bound[WIRE_NONCE];
	gnutls_session_t tls = wire_tls_of(fd);
	ProtobufCMessage *m;

	/* Inside TLS the proofs cover the TLS session too (wire_tls_bind). */
	if (tls && wire_tls_bind(tls, challenge, bound))
		return errmsg_set(e, EACCES, "cannot bind the authentication to the TLS session");
	if (tls)
		challenge = bound;
	if (wire_random(nonce, sizeof(nonce)) ||
	    wire_auth_client_mac(c->key, role, challenge, nonce, mac))
		return errmsg_set(e, EACCES, "cannot compute the authentication reply");
	LwAuth a = LW_AUTH__INIT;
	a.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
	a.mac = (ProtobufCBinaryData){sizeof(mac), mac};
	a.has_role = true;
	a.role = role;
	int rc = wire_send(fd, scratch, WT_AUTH, &a.base, NULL, 0, deadline);
	if (!rc)
		rc = wire_client_expect(fd, scratch, WT_AUTH_OK, &m, deadline, e);
	if (rc)
		return rc;
	bool ok = !wire_auth_server_mac(c->key, role, challenge, nonce, want) &&
		  wire_mac_equal(want, ((LwAuthOk *)m)->mac.data);
	wire_free(m);
	explicit_bzero(want, sizeof(want));
	if (!ok)
		return errmsg_set(e, EACCES, "the server does not hold our key (bad AUTH_OK)");
	return 0;
}

/* HELLO_REPLY's codec: one we offered, or none. 0 or -EPROTO. */
static int take_codec(const struct wire_client *c, const LwHelloReply *hr, LwCodec *codec,
		      struct errmsg *e)
{
	LwCodec got = hr->has_codec ? hr->codec : LW_CODEC__LW_CODEC_NONE;

	if (codec)
		*codec = got;
	if (got == LW_CODEC__LW_CODEC_NONE ||
	    (codec && c->compress && got == LW_CODEC__LW_CODEC_ZSTD))
		return 0;
	return errmsg_set(e, EPROTO, "the server chose a compression we did not offer (%d)", got);
}

int wire_client_handshake(const struct wire_client *c, LwRole role, uint8_t *scratch,
			  uint64_t deadline, LwCodec *codec, struct errmsg *e)
{
	uint8_t challenge[WIRE_NONCE];
	ProtobufCMessage *m;
	int rc = wire_client_hello_ok(c->key != NULL, true, e);

	if (rc)
		return rc;
	int fd = dial(c, e);
	if (fd < 0)
		return fd;
	rc = maybe_tls(fd, c, role, deadline, e);
	if (rc)
		goto fail;
	LwHello h = LW_HELLO__INIT;
	h.version_min = h.version_max = WIRE_VERSION;
	h.client = "criu-lazyd";
	if (codec && c->compress) {
		h.has_codecs = h.has_compress = true;
		h.codecs = 1u << LW_CODEC__LW_CODEC_ZSTD;
		h.compress = (LwCompress)c->compress;
	}
	rc = wire_send(fd, scratch, WT_HELLO, &h.base, NULL, 0, deadline);
	if (!rc)
		rc = wire_client_expect(fd, scratch, WT_HELLO_REPLY, &m, deadline, e);
	if (rc)
		goto fail;
	LwHelloReply *hr = (LwHelloReply *)m;
	bool auth = hr->auth_required;
	memcpy(challenge, hr->challenge.data, sizeof(challenge));
	rc = hr->version == WIRE_VERSION ? 0 : -EPROTO;
	if (rc)
		errmsg_set(e, rc, "the server chose a protocol version we did not offer");
	else
		rc = take_codec(c, hr, codec, e);
	wire_free(m);
	if (rc)
		goto fail;
	rc = wire_client_hello_ok(true, auth, e);
	if (rc)
		goto fail;
	rc = authenticate(fd, c, role, scratch, challenge, deadline, e);
	if (rc)
		goto fail;
	return fd;
fail:
	wire_sock_close(fd);
	return rc < 0 ? rc : -EPROTO;
}

/* lazy-wire client: connect, TLS, HELLO, AUTH (see wire_client_conn.h). */
#include "wire_client_conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/parse.h"

int wire_client_parse(struct wire_client *c, const char *server)
{
	struct hostport hp;
	int rc = parse_hostport(server, &hp, NULL);

	if (rc)
		return rc;
	_Static_assert(sizeof(c->host) >= sizeof(hp.host), "host fits");
	_Static_assert(sizeof(c->port) >= sizeof(hp.port), "port fits");
	memcpy(c->host, hp.host, sizeof(hp.host));
	memcpy(c->port, hp.port, sizeof(hp.port));
	return 0;
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

/* connect() on a non-blocking socket, bounded by the deadline. 0, or -1 with errno. */
static int connect_by(int fd, const struct addrinfo *a, uint64_t deadline)
{
	if (!connect(fd, a->ai_addr, a->ai_addrlen))
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	for (;;) {
		uint64_t now = mono_ms();
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		int n = poll(&p, 1, (int)(deadline - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			continue;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
			return -1;
		errno = soerr;
		return soerr ? -1 : 0;
	}
}

static int dial(const struct wire_client *c, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai, *a;
	int rc = getaddrinfo(c->host, c->port, &hints, &ai), fd = -1, e = 0;

	if (rc) {
		snprintf(err, errlen, "cannot resolve %s: %s", c->host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			e = errno;
		else if (connect_by(fd, a, mono_ms() + c->timeout_ms)) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to %s:%s: %s", c->host, c->port, strerror(e));
		return -(e ? e : ECONNREFUSED);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* TLS when the config says on, or auto and the server is not on loopback: 0 or -errno. */
static int maybe_tls(int fd, const struct wire_client *c, LwRole role, uint64_t deadline, char *err,
		     size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		snprintf(err, errlen, "getpeername: %s", strerror(errno));
		return -errno;
	}
	if (!wire_tls_wanted(c->tls, (struct sockaddr *)&ss))
		return 0;
	return wire_tls_client(fd, c->tls, c->host, c->key, role, deadline, err, errlen);
}

/* Receive the expected frame type; an ERROR becomes its errno. */
int wire_client_expect(int fd, uint8_t *scratch, unsigned type, ProtobufCMessage **m,
		       uint64_t deadline, char *err, size_t errlen)
{
	struct wire_hdr h;
	const char *why;
	int rc = wire_recv(fd, scratch, &h, m, NULL, 0, deadline, &why);

	if (rc) {
		snprintf(err, errlen, "waiting for %s: %s", wire_type_name(type),
			 rc == -EPROTO ? why : strerror(-rc));
		return rc == -EPROTO ? rc : -EAGAIN;
	}
	if (h.type == WT_ERROR) {
		LwError *e = (LwError *)*m;
		snprintf(err, errlen, "server: %s", e->text);
		rc = wire_err_errno(e->code);
	} else if (h.type != type) {
		snprintf(err, errlen, "expected %s, got %s", wire_type_name(type),
			 wire_type_name(h.type));
		rc = -EPROTO;
	}
	if (rc) {
		wire_free(*m);
		*m = NULL;
	}
	return rc;
}

/* AUTH with our key for role, then AUTH_OK must prove the server holds it too. */
static int authenticate(int fd, const struct wire_client *c, LwRole role, uint8_t *scratch,
			const uint8_t *challenge, uint64_t deadline, char *err, size_t errlen)
{
	uint8_t nonce[WIRE_NONCE], mac[WIRE_MAC], want[WIRE_MAC], bound[WIRE_NONCE];
	gnutls_session_t tls = wire_tls_of(fd);
	ProtobufCMessage *m;

	/* Inside TLS the proofs cover the TLS session too (wire_tls_bind). */
	if (tls && wire_tls_bind(tls, challenge, bound)) {
		snprintf(err, errlen, "cannot bind the authentication to the TLS session");
		return -EACCES;
	}
	if (tls)
		challenge = bound;
	if (wire_random(nonce, sizeof(nonce)) ||
	    wire_auth_client_mac(c->key, role, challenge, nonce, mac)) {
		snprintf(err, errlen, "cannot compute the authentication reply");
		return -EACCES;
	}
	LwAuth a = LW_AUTH__INIT;
	a.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
	a.mac = (ProtobufCBinaryData){sizeof(mac), mac};
	a.has_role = true;
	a.role = role;
	int rc = wire_send(fd, scratch, WT_AUTH, &a.base, NULL, 0, deadline);
	if (!rc)
		rc = wire_client_expect(fd, scratch, WT_AUTH_OK, &m, deadline, err, errlen);
	if (rc)
		return rc;
	bool ok = !wire_auth_server_mac(c->key, role, challenge, nonce, want) &&
		  wire_mac_equal(want, ((LwAuthOk *)m)->mac.data);
	wire_free(m);
	explicit_bzero(want, sizeof(want));
	if (!ok) {
		snprintf(err, errlen, "the server does not hold our key (bad AUTH_OK)");
		return -EACCES;
	}
	return 0;
}

/*
 * Connect, TLS (maybe_tls), HELLO, AUTH for role: the fd, or a negative errno with err.
 * Mutual, always: we need a key, the server must ask for it and then prove that it holds it
 * (wire_auth.h).
 */
int wire_client_handshake(const struct wire_client *c, LwRole role, uint8_t *scratch,
			  uint64_t deadline, char *err, size_t errlen)
{
	uint8_t challenge[WIRE_NONCE];
	ProtobufCMessage *m;
	const char *why;
	int rc = wire_client_hello_ok(c->key != NULL, true, &why);

	if (rc) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	int fd = dial(c, err, errlen);
	if (fd < 0)
		return fd;
	rc = maybe_tls(fd, c, role, deadline, err, errlen);
	if (rc)
		goto fail;
	LwHello h = LW_HELLO__INIT;
	h.version_min = h.version_max = WIRE_VERSION;
	h.client = "criu-lazyd";
	rc = wire_send(fd, scratch, WT_HELLO, &h.base, NULL, 0, deadline);
	if (!rc)
		rc = wire_client_expect(fd, scratch, WT_HELLO_REPLY, &m, deadline, err, errlen);
	if (rc)
		goto fail;
	LwHelloReply *hr = (LwHelloReply *)m;
	bool auth = hr->auth_required;
	memcpy(challenge, hr->challenge.data, sizeof(challenge));
	rc = hr->version == WIRE_VERSION ? 0 : -EPROTO;
	wire_free(m);
	if (rc) {
		snprintf(err, errlen, "the server chose a protocol version we did not offer");
		goto fail;
	}
	rc = wire_client_hello_ok(true, auth, &why);
	if (rc) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	rc = authenticate(fd, c, role, scratch, challenge, deadline, err, errlen);
	if (rc)
		goto fail;
	return fd;
fail:
	wire_sock_close(fd);
	return rc < 0 ? rc : -EPROTO;
}

/* TLS 1.3 for lazy-wire with GnuTLS (see wire_tls.h, docs/protocol.md "TLS"). */
#include "wire_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"
#include "wire_io.h"

/*
 * TLS 1.3 only; AES-128-GCM first (the fastest with AES-NI; an external PSK is bound to
 * SHA-256, so AES-256-GCM-SHA384 is not on offer with it), ChaCha20-Poly1305 for CPUs
 * without AES. PSK: with (EC)DHE only (+PSK, the key exchange without it, is not offered).
 */
#define PRIO_BASE                                                                                  \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305:+AES-256-GCM"
#define PRIO_PSK PRIO_BASE ":+ECDHE-PSK:+DHE-PSK"
#define PRIO_X509 PRIO_BASE
#define EXPORTER "EXPORTER-lazy-wire-auth"
#define MAX_CLIENT_TLS 256 /* TLS client connections of one process at once */

int wire_tls_mode_parse(const char *s, enum wire_tls_mode *m)
{
	if (!strcmp(s, "auto"))
		*m = WIRE_TLS_AUTO;
	else if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "true"))
		*m = WIRE_TLS_ON;
	else if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "false"))
		*m = WIRE_TLS_OFF;
	else
		return -EINVAL;
	return 0;
}

const char *wire_tls_mode_name(enum wire_tls_mode m)
{
	return m == WIRE_TLS_ON ? "on" : m == WIRE_TLS_OFF ? "off" : "auto";
}

bool wire_tls_x509(const struct wire_tls_cfg *cfg, bool server)
{
	return cfg && (server ? cfg->cert != NULL : cfg->ca != NULL);
}

int wire_tls_cfg_check(const struct wire_tls_cfg *cfg, bool server, struct errmsg *e)
{
	const char *bad = NULL;

	if (!cfg)
		return 0;
	if (!cfg->cert != !cfg->key)
		bad = "--tls-cert and --tls-key go together";
	else if (cfg->mode == WIRE_TLS_OFF && (cfg->ca || cfg->cert || cfg->name))
		bad = "certificate options with --no-tls";
	else if (server && cfg->ca && !cfg->cert)
		bad = "--tls-ca (clients' certificates) needs --tls-cert and --tls-key";
	else if (server && cfg->name)
		bad = "--tls-name is for clients";
	else if (!server && (cfg->cert || cfg->name) && !cfg->ca)
		bad = "a client certificate or --tls-name needs --tls-ca (X.509 mode)";
	return bad ? errmsg_set(e, EINVAL, "%s", bad) : 0;
}

bool wire_addr_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return sa->sa_family == AF_UNIX;
}

bool wire_tls_wanted(const struct wire_tls_cfg *cfg, const struct sockaddr *sa)
{
	enum wire_tls_mode m = cfg ? cfg->mode : WIRE_TLS_AUTO;

	bool certs = cfg && (cfg->ca || cfg->cert);

	return m == WIRE_TLS_ON || (m == WIRE_TLS_AUTO && (certs || !wire_addr_loopback(sa)));
}

const char *wire_tls_identity(LwRole role)
{
	if (role == LW_ROLE__LW_ROLE_READ)
		return "lazy-wire-read";
	if (role == LW_ROLE__LW_ROLE_PUBLISH)
		return "lazy-wire-publish";
	return NULL;
}

int wire_tls_identity_role(const char *identity)
{
	if (identity && !strcmp(identity, "lazy-wire-read"))
		return LW_ROLE__LW_ROLE_READ;
	if (identity && !strcmp(identity, "lazy-wire-publish"))
		return LW_ROLE__LW_ROLE_PUBLISH;
	return -1;
}

int wire_tls_psk(const struct wire_key *key, LwRole role, uint8_t out[WIRE_TLS_PSK_LEN])
{
	const char *id = wire_tls_identity(role);
	char label[64];

	if (!id)
		return -EINVAL;
	int n = snprintf(label, sizeof(label), "lazy-wire-tls-psk %s", id);
	return wire_hmac(key->k, key->len, label, (size_t)n, out);
}

int wire_tls_bind(gnutls_session_t s, const uint8_t challenge[WIRE_NONCE], uint8_t out[WIRE_NONCE])
{
	uint8_t buf[WIRE_NONCE + 32];

	memcpy(buf, challenge, WIRE_NONCE);
	if (gnutls_prf_rfc5705(s, strlen(EXPORTER), EXPORTER, 0, NULL, 32,
			       (char *)buf + WIRE_NONCE) ||
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, sizeof(buf), out))
		return -EIO;
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

static ssize_t tls_errno(ssize_t rc)
{
	switch (rc) {
	case GNUTLS_E_AGAIN:
	case GNUTLS_E_INTERRUPTED:
		return -EAGAIN;
	case GNUTLS_E_DECRYPTION_FAILED:
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
	case GNUTLS_E_UNEXPECTED_PACKET:
	case GNUTLS_E_RECORD_OVERFLOW:
		return -EBADMSG;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_PULL_ERROR:
		return -ECONNRESET;
	default:
		return -ECONNABORTED;
	}
}

ssize_t wire_tls_send(gnutls_session_t s, const void *buf, size_t len)
{
	ssize_t n = gnutls_record_send(s, buf, len);

	return n >= 0 ? n : tls_errno(n);
}

ssize_t wire_tls_recv(gnutls_session_t s, void *buf, size_t len)
{
	for (int i = 0; i < 16; i++) {
		ssize_t n = gnutls_record_recv(s, buf, len);
		if (n >= 0)
			return n;
		/* A warning alert or a post-handshake message (key update): go on. */
		if (n == GNUTLS_E_REHANDSHAKE || n == GNUTLS_E_WARNING_ALERT_RECEIVED ||
		    n == GNUTLS_E_GOT_APPLICATION_DATA)
			continue;
		return tls_errno(n);
	}
	return -ECONNABORTED;
}

void wire_tls_describe(gnutls_session_t s, char *buf, size_t len)
{
	const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(s));
	const char *c = gnutls_cipher_get_name(gnutls_cipher_get(s));
	const char *k = gnutls_kx_get_name(gnutls_kx_get(s));
	bool psk = gnutls_auth_get_type(s) == GNUTLS_CRD_PSK;

	snprintf(buf, len, "%s %s %s", v ? v : "?", c ? c : "?", psk ? (k ? k : "PSK") : "X.509");
}

/* ---- clients: a session per fd ---- */

struct client_tls {
	int fd;
	gnutls_session_t s;
	gnutls_psk_client_credentials_t psk;
	gnutls_certificate_credentials_t x509;
};

static struct client_tls tls_tab[MAX_CLIENT_TLS];
static unsigned tls_used;
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;

static void ct_free(struct client_tls *t)
{
	if (t->s)
		gnutls_deinit(t->s);
	if (t->psk)
		gnutls_psk_free_client_credentials(t->psk);
	if (t->x509)
		gnutls_certificate_free_credentials(t->x509);
	*t = (struct client_tls){.fd = -1};
}

gnutls_session_t wire_tls_of(int fd)
{
	gnutls_session_t s = NULL;

	if (!__atomic_load_n(&tls_used, __ATOMIC_ACQUIRE))
		return NULL; /* no TLS in this process: no lock on the plain path */
	pthread_mutex_lock(&tls_lock);
	for (unsigned i = 0; i < MAX_CLIENT_TLS && !s; i++)
		if (tls_tab[i].s && tls_tab[i].fd == fd)
			s = tls_tab[i].s;
	pthread_mutex_unlock(&tls_lock);
	return s;
}

static int ct_register(const struct client_tls *t)
{
	int rc = -EMFILE;

	pthread_mutex_lock(&tls_lock);
	for (unsigned i = 0; i < MAX_CLIENT_TLS; i++)
		if (!tls_tab[i].s) {
			tls_tab[i] = *t;
			__atomic_add_fetch(&tls_used, 1, __ATOMIC_RELEASE);
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&tls_lock);
	return rc;
}

void wire_sock_close(int fd)
{
	struct client_tls t = {.fd = -1};

	if (fd < 0)
		return;
	if (__atomic_load_n(&tls_used, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&tls_lock);
		for (unsigned i = 0; i < MAX_CLIENT_TLS; i++)
			if (tls_tab[i].s && tls_tab[i].fd == fd) {
				t = tls_tab[i];
				tls_tab[i] = (struct client_tls){.fd = -1};
				__atomic_sub_fetch(&tls_used, 1, __ATOMIC_RELEASE);
				break;
			}
		pthread_mutex_unlock(&tls_lock);
	}
	ct_free(&t);
	close(fd);
}

ssize_t wire_sock_send(int fd, const void *buf, size_t len)
{
	gnutls_session_t s = wire_tls_of(fd);

	if (s)
		return wire_tls_send(s, buf, len);
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n >= 0 ? n : (errno == EINTR ? -EAGAIN : -errno);
}

ssize_t wire_sock_recv(int fd, void *buf, size_t len)
{
	gnutls_session_t s = wire_tls_of(fd);

	if (s)
		return wire_tls_recv(s, buf, len);
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
	return n >= 0 ? n : (errno == EINTR ? -EAGAIN : -errno);
}

bool wire_sock_pending(int fd)
{
	gnutls_session_t s = wire_tls_of(fd);

	return s && gnutls_record_check_pending(s) > 0;
}

static bool is_ip(const char *host)
{
	struct in6_addr a;

	return inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1;
}

static int client_x509(struct client_tls *t, const struct wire_tls_cfg *cfg, const char *host,
		       struct errmsg *e)
{
	const char *name = cfg->name ? cfg->name : host;
	int rc = gnutls_certificate_allocate_credentials(&t->x509);

	if (!rc) {
		rc = gnutls_certificate_set_x509_trust_file(t->x509, cfg->ca, GNUTLS_X509_FMT_PEM);
		if (rc <= 0)
			return errmsg_set(e, EACCES, "--tls-ca %s: %s", cfg->ca,
					  rc ? gnutls_strerror(rc) : "no certificate in it");
		rc = 0;
	}
	if (!rc && cfg->cert) {
		rc = gnutls_certificate_set_x509_key_file(t->x509, cfg->cert, cfg->key,
							  GNUTLS_X509_FMT_PEM);
		if (rc < 0)
			return errmsg_set(e, EACCES, "--tls-cert %s / --tls-key %s: %s", cfg->cert,
					  cfg->key, gnutls_strerror(rc));
	}
	if (!rc)
		rc = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, t->x509);
	if (!rc && !is_ip(name))
		rc = gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, name, strlen(name));
	if (!rc)
		rc = gnutls_priority_set_direct(t->s, PRIO_X509, NULL);
	if (rc)
		return errmsg_set(e, EACCES, "TLS setup: %s", gnutls_strerror(rc));
	/* The handshake fails unless the chain ends at the CA and names host (DNS or IP SAN). */
	gnutls_session_set_verify_cert(t->s, name, 0);
	return 0;
}

static int client_psk(struct client_tls *t, const struct wire_key *key, LwRole role,
		      struct errmsg *e)
{
	uint8_t psk[WIRE_TLS_PSK_LEN];
	gnutls_datum_t d = {psk, sizeof(psk)};
	int rc = -1;

	if (!key || wire_tls_psk(key, role, psk))
		return errmsg_set(e, EACCES, "TLS (PSK mode) needs the role's key");
	rc = gnutls_psk_allocate_client_credentials(&t->psk);
	if (!rc)
		rc = gnutls_psk_set_client_credentials(t->psk, wire_tls_identity(role), &d,
						       GNUTLS_PSK_KEY_RAW);
	if (!rc)
		rc = gnutls_credentials_set(t->s, GNUTLS_CRD_PSK, t->psk);
	if (!rc)
		rc = gnutls_priority_set_direct(t->s, PRIO_PSK, NULL);
	explicit_bzero(psk, sizeof(psk));
	if (rc)
		return errmsg_set(e, EACCES, "TLS setup: %s", gnutls_strerror(rc));
	return 0;
}

/* Drive the handshake of s on non-blocking fd to its end, or the deadline. GnuTLS code. */
static int handshake_by(gnutls_session_t s, int fd, uint64_t deadline)
{
	for (;;) {
		int rc = gnutls_handshake(s);
		if (rc == 0)
			return 0;
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED) {
			if (gnutls_error_is_fatal(rc))
				return rc;
			continue; /* a warning alert */
		}
		uint64_t now = mono_ms();
		if (now >= deadline)
			return GNUTLS_E_TIMEDOUT;
		struct pollfd p = {.fd = fd,
				   .events = gnutls_record_get_direction(s) ? POLLOUT : POLLIN};
		if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			return GNUTLS_E_PULL_ERROR;
	}
}

static int handshake_errno(int rc)
{
	switch (rc) {
	case GNUTLS_E_TIMEDOUT:
		return -ETIMEDOUT;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
		return -ECONNRESET;
	default:
		return -EACCES; /* refused: a wrong key or certificate, or no TLS there */
	}
}

int wire_tls_client(int fd, const struct wire_tls_cfg *cfg, const char *host,
		    const struct wire_key *key, LwRole role, uint64_t deadline, struct errmsg *e)
{
	struct client_tls t = {.fd = fd};
	bool x509 = wire_tls_x509(cfg, false);
	int rc = gnutls_init(&t.s, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL);

	if (rc)
		return errmsg_set(e, ENOMEM, "TLS: %s", gnutls_strerror(rc));
	rc = x509 ? client_x509(&t, cfg, host, e) : client_psk(&t, key, role, e);
	if (rc) {
		ct_free(&t);
		return rc;
	}
	gnutls_transport_set_int(t.s, fd);
	rc = handshake_by(t.s, fd, deadline);
	if (rc) {
		unsigned st = x509 ? gnutls_session_get_verify_cert_status(t.s) : 0;
		gnutls_datum_t why = {NULL, 0};
		if (st)
			gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509, &why, 0);
		errmsg_set(e, 0, "TLS handshake (%s) failed: %s%s%s%s", x509 ? "X.509" : "PSK",
			   gnutls_strerror(rc), why.data ? ": " : "",
			   why.data ? (char *)why.data : "",
			   rc == GNUTLS_E_UNEXPECTED_PACKET_LENGTH ||
				   rc == GNUTLS_E_UNSUPPORTED_VERSION_PACKET
			       ? " (does the server do TLS? criu-imgd --tls)"
			       : "");
		gnutls_free(why.data);
		ct_free(&t);
		return handshake_errno(rc);
	}
	if (ct_register(&t)) {
		ct_free(&t);
		return errmsg_set(e, EMFILE, "more than %d TLS connections at once",
				  MAX_CLIENT_TLS);
	}
	return 0;
}

/* ---- the server ---- */

static int psk_lookup(gnutls_session_t session, const char *username, gnutls_datum_t *key)
{
	const struct wire_tls_server *s = gnutls_session_get_ptr(session);
	int role = wire_tls_identity_role(username);
	const struct wire_key *k = NULL;

	if (role == LW_ROLE__LW_ROLE_READ)
		k = s->keys[0];
	else if (role == LW_ROLE__LW_ROLE_PUBLISH)
		k = s->keys[1];
	if (!k)
		return -1; /* unknown identity, or uploads not taken: the handshake fails */
	key->data = gnutls_malloc(WIRE_TLS_PSK_LEN);
	if (!key->data)
		return -1;
	key->size = WIRE_TLS_PSK_LEN;
	return wire_tls_psk(k, (LwRole)role, key->data) ? -1 : 0;
}

static int server_x509(struct wire_tls_server *s, const struct wire_tls_cfg *cfg, struct errmsg *e)
{
	int rc = gnutls_certificate_allocate_credentials(&s->x509);

	if (!rc)
		rc = gnutls_certificate_set_x509_key_file(s->x509, cfg->cert, cfg->key,
							  GNUTLS_X509_FMT_PEM);
	if (rc < 0)
		return errmsg_set(e, EINVAL, "--tls-cert %s / --tls-key %s: %s", cfg->cert,
				  cfg->key, gnutls_strerror(rc));
	if (cfg->ca) {
		rc = gnutls_certificate_set_x509_trust_file(s->x509, cfg->ca, GNUTLS_X509_FMT_PEM);
		if (rc <= 0)
			return errmsg_set(e, EINVAL, "--tls-ca %s: %s", cfg->ca,
					  rc ? gnutls_strerror(rc) : "no certificate in it");
		s->client_certs = true;
	}
	rc = gnutls_priority_init(&s->prio, PRIO_X509, NULL);
	if (rc)
		return errmsg_set(e, EINVAL, "TLS priorities: %s", gnutls_strerror(rc));
	return 0;
}

/* Credentials for PSK mode: a key per role, looked up by the client's identity. 0 or -errno. */
static int server_psk(struct wire_tls_server *s, struct errmsg *e)
{
	int rc = gnutls_psk_allocate_server_credentials(&s->psk);

	if (!rc) {
		gnutls_psk_set_server_credentials_function(s->psk, psk_lookup);
		rc = gnutls_priority_init(&s->prio, PRIO_PSK, NULL);
	}
	if (rc)
		return errmsg_set(e, EINVAL, "TLS (PSK): %s", gnutls_strerror(rc));
	return 0;
}

int wire_tls_server_init(struct wire_tls_server *s, const struct wire_tls_cfg *cfg,
			 const struct wire_key *read_key, const struct wire_key *upload_key,
			 struct errmsg *e)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->keys[0] = read_key;
	s->keys[1] = upload_key;
	rc = wire_tls_x509(cfg, true) ? server_x509(s, cfg, e) : server_psk(s, e);
	if (rc)
		wire_tls_server_free(s);
	return rc;
}

void wire_tls_server_free(struct wire_tls_server *s)
{
	if (s->psk)
		gnutls_psk_free_server_credentials(s->psk);
	if (s->x509)
		gnutls_certificate_free_credentials(s->x509);
	if (s->prio)
		gnutls_priority_deinit(s->prio);
	memset(s, 0, sizeof(*s));
}

int wire_tls_server_session(struct wire_tls_server *s, int fd, gnutls_session_t *out)
{
	gnutls_session_t ss;
	int rc = gnutls_init(&ss, GNUTLS_SERVER | GNUTLS_NO_SIGNAL | GNUTLS_NONBLOCK);

	if (rc)
		return -ENOMEM;
	gnutls_session_set_ptr(ss, s);
	rc = gnutls_priority_set(ss, s->prio);
	if (!rc && s->psk)
		rc = gnutls_credentials_set(ss, GNUTLS_CRD_PSK, s->psk);
	if (!rc && s->x509) {
		rc = gnutls_credentials_set(ss, GNUTLS_CRD_CERTIFICATE, s->x509);
		if (s->client_certs) {
			gnutls_certificate_server_set_request(ss, GNUTLS_CERT_REQUIRE);
			gnutls_session_set_verify_cert(ss, NULL, 0);
		}
	}
	if (rc) {
		gnutls_deinit(ss);
		return -EINVAL;
	}
	gnutls_transport_set_int(ss, fd);
	*out = ss;
	return 0;
}

int wire_tls_psk_role(gnutls_session_t s)
{
	if (gnutls_auth_get_type(s) != GNUTLS_CRD_PSK)
		return -1;
	return wire_tls_identity_role(gnutls_psk_server_get_username(s));
}

/*
 * TLS 1.3 for lazy-wire (GnuTLS), from the first byte of a connection (docs/protocol.md
 * "TLS"). Two modes: PSK (a key derived from the role's key file, identity = the role, with
 * (EC)DHE; nothing else to configure) and X.509 (certificates; the client checks the server's
 * name or IP). The lazy-wire handshake runs inside, bound to the TLS session.
 */
#ifndef LAZY_WIRE_TLS_H
#define LAZY_WIRE_TLS_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "util/err.h"
#include "wire.h"
#include "wire_auth.h"

/*
 * auto: TLS whenever the peer is not loopback (the server: when it listens beyond loopback),
 * or certificate options are given.
 */
enum wire_tls_mode { WIRE_TLS_AUTO = 0, WIRE_TLS_ON, WIRE_TLS_OFF };

struct wire_tls_cfg {
	enum wire_tls_mode mode;
	const char *ca;	  /* X.509: CA file (client: the server's issuer; server: clients') */
	const char *cert; /* X.509: our certificate (server: required for X.509; client: opt.) */
	const char *key;  /* its private key */
	const char *name; /* client: the name or IP the server's cert must carry (def: host) */
};

#define WIRE_TLS_PSK_LEN 32

/* "auto", "on", "off" (and yes/true, no/false): 0, or -EINVAL. */
int wire_tls_mode_parse(const char *s, enum wire_tls_mode *m);
const char *wire_tls_mode_name(enum wire_tls_mode m);
/* The options go together (cert with key; X.509 needs --tls-ca on a client, a cert on a
 * server; no X.509 option with TLS off). 0, or -EINVAL with the reason in e. */
int wire_tls_cfg_check(const struct wire_tls_cfg *cfg, bool server, struct errmsg *e);
/* X.509 mode: a CA (client) or a certificate (server) is given. */
bool wire_tls_x509(const struct wire_tls_cfg *cfg, bool server);

/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104. */
bool wire_addr_loopback(const struct sockaddr *sa);
/* Whether a connection to (client) or a listener on (server) sa uses TLS. */
bool wire_tls_wanted(const struct wire_tls_cfg *cfg, const struct sockaddr *sa);

/* The PSK of a role: HMAC-SHA256(key, "lazy-wire-tls-psk " identity). 0 or -EIO. */
int wire_tls_psk(const struct wire_key *key, LwRole role, uint8_t out[WIRE_TLS_PSK_LEN]);
/* The PSK identity of a role ("lazy-wire-read", "lazy-wire-publish"), and back (-1: none). */
const char *wire_tls_identity(LwRole role);
int wire_tls_identity_role(const char *identity);

/*
 * The challenge the lazy-wire MACs are computed over inside TLS: SHA-256(challenge |
 * TLS exporter "EXPORTER-lazy-wire-auth"), so that proofs made on one TLS session are worth
 * nothing on another (a relay that terminates TLS on both sides cannot pass them on).
 */
int wire_tls_bind(gnutls_session_t s, const uint8_t challenge[WIRE_NONCE], uint8_t out[WIRE_NONCE]);

/* One record-level send/recv: >0 bytes, 0 EOF (recv), -EAGAIN, -errno (-EBADMSG: a record
 * that fails its integrity check, -ECONNRESET: the peer went, -ECONNABORTED: other). */
ssize_t wire_tls_send(gnutls_session_t s, const void *buf, size_t len);
ssize_t wire_tls_recv(gnutls_session_t s, void *buf, size_t len);
/* "TLS1.3 AES-128-GCM ECDHE-PSK" */
void wire_tls_describe(gnutls_session_t s, char *buf, size_t len);

/*
 * Client: the TLS handshake on connected (non-blocking) fd before the deadline; the session
 * is then tied to fd and wire_sock_* go through it. PSK of role from key unless X.509.
 * 0, or -errno with the text in e (-EACCES: refused, not worth a retry).
 */
int wire_tls_client(int fd, const struct wire_tls_cfg *cfg, const char *host,
		    const struct wire_key *key, LwRole role, uint64_t deadline, struct errmsg *e);
/* The TLS session of a client fd, or NULL (plain). */
gnutls_session_t wire_tls_of(int fd);

/* Socket I/O of a client fd, through its TLS session if it has one (see wire_tls_send). */
ssize_t wire_sock_send(int fd, const void *buf, size_t len);
ssize_t wire_sock_recv(int fd, void *buf, size_t len);
/* Decrypted bytes wait inside GnuTLS: poll() on fd would not see them. */
bool wire_sock_pending(int fd);
/* Close fd and free its TLS session. */
void wire_sock_close(int fd);

/* Server side: credentials made once, a session per connection. */
struct wire_tls_server {
	gnutls_psk_server_credentials_t psk;
	gnutls_certificate_credentials_t x509; /* X.509 mode */
	gnutls_priority_t prio;
	bool client_certs;		/* --tls-ca: clients must show a certificate it signed */
	const struct wire_key *keys[2]; /* by role: READ, PUBLISH (NULL: not taken) */
};

/* The credentials for cfg (X.509 or PSK with the keys by role; upload_key NULL: uploads not
 * taken). 0, or -errno with the reason in e (s then holds nothing to free). */
int wire_tls_server_init(struct wire_tls_server *s, const struct wire_tls_cfg *cfg,
			 const struct wire_key *read_key, const struct wire_key *upload_key,
			 struct errmsg *e);
void wire_tls_server_free(struct wire_tls_server *s);
/* A server session on accepted fd (handshake not started). 0 or -errno. */
int wire_tls_server_session(struct wire_tls_server *s, int fd, gnutls_session_t *out);
/* The role a PSK session authenticated (its identity), or -1 (X.509 or none). */
int wire_tls_psk_role(gnutls_session_t s);

#endif

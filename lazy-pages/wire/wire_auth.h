/*
 * Shared-key challenge-response for lazy-wire: HMAC-SHA256 (GnuTLS), keys from files that
 * only their owner can read, random nonces, constant-time comparison, and the rules of the
 * handshake (docs/protocol.md "Authentication"): every connection is mutually authenticated,
 * with a key per role (reading images, publishing them).
 */
#ifndef LAZY_WIRE_AUTH_H
#define LAZY_WIRE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "wire.h"

#define WIRE_KEY_MIN 16u
#define WIRE_KEY_MAX 4096u

struct wire_key {
	uint8_t k[WIRE_KEY_MAX];
	size_t len;
};

/*
 * Read a key file: a regular file of 16..4096 bytes (one trailing newline is dropped), owned
 * by root or by the user we run as, with no permission for group or others (chmod 600).
 * 0, or -errno with the reason in e (-EPERM: owner or mode, -EINVAL: not a regular file or
 * too short, -EFBIG: too long, or open's and read's errno); nothing of a refused key is kept.
 */
int wire_key_load(const char *path, struct wire_key *key, struct errmsg *e);
/* The same bytes: one key may not serve two roles. */
bool wire_key_same(const struct wire_key *a, const struct wire_key *b);

/* HMAC-SHA256(key, data): 0, or -ENOSYS when GnuTLS cannot be loaded, -EIO on failure. */
int wire_hmac(const uint8_t *key, size_t keylen, const void *data, size_t len,
	      uint8_t out[WIRE_MAC]);

/* The client's proof: HMAC(key, "lazy-wire-c1" (READ) or "lazy-wire-cp" | challenge | nonce). */
int wire_auth_client_mac(const struct wire_key *key, LwRole role,
			 const uint8_t challenge[WIRE_NONCE], const uint8_t nonce[WIRE_NONCE],
			 uint8_t out[WIRE_MAC]);
/* The server's proof: HMAC(key, "lazy-wire-s1" (READ) or "lazy-wire-sp" | nonce | challenge). */
int wire_auth_server_mac(const struct wire_key *key, LwRole role,
			 const uint8_t challenge[WIRE_NONCE], const uint8_t nonce[WIRE_NONCE],
			 uint8_t out[WIRE_MAC]);

bool wire_mac_equal(const uint8_t *a, const uint8_t *b);
int wire_random(void *buf, size_t len);

/*
 * The handshake rules, shared by both sides and the tests.
 *
 * Client: it goes on only with a key of its own and a server that asks for it (HELLO_REPLY
 * auth_required), and then only once AUTH_OK proves the server holds the key. 0, or -EACCES
 * with the reason in e.
 */
int wire_client_hello_ok(bool have_key, bool auth_required, struct errmsg *e);
/* Server: whether a connection authenticated for role may send a frame of this type. */
bool wire_role_may(LwRole role, unsigned type);
const char *wire_role_name(LwRole role);

#endif

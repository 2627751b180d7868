/* Challenge-response authentication with HMAC-SHA256 from GnuTLS. */
#include "wire_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int wire_hmac(const uint8_t *key, size_t keylen, const void *data, size_t len,
	      uint8_t out[WIRE_MAC])
{
	return gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, keylen, data, len, out) ? -EIO : 0;
}

static int mac3(const struct wire_key *key, const char *label, const uint8_t *a, const uint8_t *b,
		uint8_t out[WIRE_MAC])
{
	uint8_t msg[12 + 2 * WIRE_NONCE];

	memcpy(msg, label, 12);
	memcpy(msg + 12, a, WIRE_NONCE);
	memcpy(msg + 12 + WIRE_NONCE, b, WIRE_NONCE);
	return wire_hmac(key->k, key->len, msg, sizeof(msg), out);
}

/* A role outside the enum gets no label, so no proof can be made or checked for it. */
int wire_auth_client_mac(const struct wire_key *key, LwRole role,
			 const uint8_t challenge[WIRE_NONCE], const uint8_t nonce[WIRE_NONCE],
			 uint8_t out[WIRE_MAC])
{
	if (role == LW_ROLE__LW_ROLE_READ)
		return mac3(key, "lazy-wire-c1", challenge, nonce, out);
	if (role == LW_ROLE__LW_ROLE_PUBLISH)
		return mac3(key, "lazy-wire-cp", challenge, nonce, out);
	return -EINVAL;
}

int wire_auth_server_mac(const struct wire_key *key, LwRole role,
			 const uint8_t challenge[WIRE_NONCE], const uint8_t nonce[WIRE_NONCE],
			 uint8_t out[WIRE_MAC])
{
	if (role == LW_ROLE__LW_ROLE_READ)
		return mac3(key, "lazy-wire-s1", nonce, challenge, out);
	if (role == LW_ROLE__LW_ROLE_PUBLISH)
		return mac3(key, "lazy-wire-sp", nonce, challenge, out);
	return -EINVAL;
}

bool wire_mac_equal(const uint8_t *a, const uint8_t *b)
{
	volatile uint8_t d = 0;

	for (size_t i = 0; i < WIRE_MAC; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

int wire_random(void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom((char *)buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		got += (size_t)n;
	}
	return 0;
}

/* Only its owner may use a key file, and the owner must be root or us. 0 or -errno. */
static int key_file_ok(const char *path, const struct stat *st, struct errmsg *e)
{
	uid_t me = geteuid();

	if (!S_ISREG(st->st_mode))
		return errmsg_set(e, EINVAL, "key file %s is not a regular file", path);
	if (st->st_uid != 0 && st->st_uid != me)
		return errmsg_set(
		    e, EPERM,
		    "key file %s is owned by uid %u: a key file must be owned by root "
		    "or by uid %u (who runs this)",
		    path, (unsigned)st->st_uid, (unsigned)me);
	if (st->st_mode & 0077)
		return errmsg_set(
		    e, EPERM,
		    "key file %s has mode %04o: group or others may use it (chmod 600 "
		    "%s)",
		    path, (unsigned)(st->st_mode & 07777), path);
	return 0;
}

/* At most sizeof(key->k) bytes; -errno if the file is longer, shorter than a key, unreadable. */
static int key_read(int fd, const char *path, struct wire_key *key, struct errmsg *e)
{
	ssize_t n = read(fd, key->k, sizeof(key->k));
	char extra;
	bool more = n == (ssize_t)sizeof(key->k) && read(fd, &extra, 1) == 1;

	if (n < 0)
		return errmsg_set(e, errno, "key file %s: %s", path, strerror(errno));
	if (more)
		return errmsg_set(e, EFBIG, "key file %s: longer than 4096 bytes", path);
	if (n > 0 && key->k[n - 1] == '\n')
		n--;
	if ((size_t)n < WIRE_KEY_MIN)
		return errmsg_set(e, EINVAL, "key file %s: key shorter than %u bytes", path,
				  WIRE_KEY_MIN);
	key->len = (size_t)n;
	return 0;
}

int wire_key_load(const char *path, struct wire_key *key, struct errmsg *e)
{
	struct stat st;
	int rc, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		rc = errmsg_set(e, errno, "cannot open key file %s: %s", path, strerror(errno));
	else if (fstat(fd, &st))
		rc = errmsg_set(e, errno, "key file %s: %s", path, strerror(errno));
	else
		rc = key_file_ok(path, &st, e);
	if (!rc)
		rc = key_read(fd, path, key, e);
	if (fd >= 0)
		close(fd);
	if (rc)
		explicit_bzero(key, sizeof(*key)); /* nothing of a refused key is kept */
	return rc;
}

bool wire_key_same(const struct wire_key *a, const struct wire_key *b)
{
	volatile uint8_t d = 0;

	if (a->len != b->len)
		return false;
	for (size_t i = 0; i < a->len; i++)
		d |= a->k[i] ^ b->k[i];
	return d == 0;
}

int wire_client_hello_ok(bool have_key, bool auth_required, struct errmsg *e)
{
	if (!have_key)
		return errmsg_set(
		    e, EACCES,
		    "no key: criu-imgd always asks for one, and without one the server "
		    "cannot be told from an impostor (give --auth-key FILE)");
	if (!auth_required)
		return errmsg_set(e, EACCES,
				  "the server does not ask for a key, so it cannot prove that it "
				  "holds ours: refused (an impostor on the port, or a criu-imgd "
				  "without authentication)");
	return 0;
}

bool wire_role_may(LwRole role, unsigned type)
{
	switch (type) {
	case WT_CLOSE:
		return true;
	case WT_OPEN:
	case WT_INDEX_GET:
	case WT_GET:
	case WT_META_LIST:
	case WT_META_GET:
		return role == LW_ROLE__LW_ROLE_READ;
	case WT_UPLOAD:
	case WT_UPLOAD_FILE:
	case WT_UPLOAD_END:
		return role == LW_ROLE__LW_ROLE_PUBLISH;
	default:
		return false;
	}
}

const char *wire_role_name(LwRole role)
{
	switch (role) {
	case LW_ROLE__LW_ROLE_READ:
		return "read";
	case LW_ROLE__LW_ROLE_PUBLISH:
		return "publish";
	default:
		return "unknown";
	}
}

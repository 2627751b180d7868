/* The client side of the lazy-wire handshake and index download. */
#ifndef LAZY_WIRE_CLIENT_H
#define LAZY_WIRE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "img/images.h"
#include "wire_auth.h"
#include "wire_io.h"
#include "wire_tls.h"

struct wire_client {
	char host[256];
	char port[8];
	const char *image;
	const struct wire_key *key; /* NULL: none */
	unsigned timeout_ms;
	const struct wire_tls_cfg *tls; /* NULL: mode auto, PSK (TLS beyond loopback) */
};

struct wire_open_info {
	uint32_t nr_tasks;
	uint64_t lazy_pages, zero_pages;
	bool dump_checksums;
};

/* HOST:PORT or [V6]:PORT, by util/parse.h's parse_hostport: 0 or -EINVAL. */
int wire_client_parse(struct wire_client *c, const char *server);

/*
 * Connect, TLS (c->tls: on, or auto and the server is not on loopback), HELLO, AUTH (when
 * asked; a server asking without our having a key fails), OPEN. Returns the connected fd
 * (close it with wire_sock_close), or a negative errno with err: -EACCES/-ENOENT/-EPROTO are
 * not worth a retry, others are.
 */
int wire_client_open(const struct wire_client *c, LwClass cls, uint8_t *scratch,
		     struct wire_open_info *info, char *err, size_t errlen);

/* INDEX_GET, then build set from the INDEX_PARTs (pages_fd -1). 0 or -1 with err. */
int wire_client_index(int fd, uint8_t *scratch, unsigned timeout_ms, uint32_t nr_tasks,
		      struct img_set *set, char *err, size_t errlen);

struct wire_meta_result {
	unsigned files;
	uint64_t bytes;
};

/*
 * Restore by image id: fetch every metadata file of c->image (a META connection) into the
 * dir dirfd. Names and sizes are checked (wire.h limits); a name that already exists in the
 * dir fails the fetch before anything is written; each file is written to a temp name and
 * renamed (RENAME_NOREPLACE) once complete. On failure the files it created are removed.
 * 0, or -1 with err.
 */
int wire_meta_fetch(const struct wire_client *c, int dirfd, struct wire_meta_result *res, char *err,
		    size_t errlen);

/*
 * Publish: upload every regular file of dirfd with an upload name (wire_upload_name_ok: not
 * *.log) as image c->image to criu-imgd --accept-uploads (which requires the key). 0 once the
 * server has renamed the complete image into place, or -1 with err (the server then keeps
 * nothing).
 */
int wire_upload(const struct wire_client *c, int dirfd, struct wire_meta_result *res, char *err,
		size_t errlen);

/* errno for a server ERROR code: whether it is worth a retry. */
int wire_err_errno(int code);

#endif

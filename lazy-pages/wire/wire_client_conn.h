/*
 * The lazy-wire client, its connection: the server's address, connect (bounded by the
 * timeout), TLS (wire_tls.h), HELLO and the mutual AUTH for a role (wire_auth.h). What it says
 * on the connection afterwards is in wire_client_read.h (OPEN, INDEX, GET),
 * wire_client_meta.h (metadata files) and wire_client_upload.h (publish).
 */
#ifndef LAZY_WIRE_CLIENT_CONN_H
#define LAZY_WIRE_CLIENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "wire_auth.h"
#include "wire_io.h"
#include "wire_tls.h"

#define WIRE_MAX_SERVERS 8 /* addresses of one --image-server list */

struct wire_server {
	char host[256];
	char port[8];
};

struct wire_client {
	char host[256]; /* the server it dials: one of srv[] (wire_client_use) */
	char port[8];
	struct wire_server srv[WIRE_MAX_SERVERS]; /* every server that serves the image */
	unsigned nsrv;
	const char *image;
	const struct wire_key *key; /* NULL: none */
	unsigned timeout_ms;
	const struct wire_tls_cfg *tls; /* NULL: mode auto, PSK (TLS beyond loopback) */
	int compress; /* PAGES compression asked for: 0 none, LW_COMPRESS__LW_COMPRESS_AUTO or _ON
		       */
};

/*
 * HOST:PORT or [V6]:PORT, by util/parse.h's parse_hostport, or several of them separated by
 * commas (at most WIRE_MAX_SERVERS, none twice): servers of the same images, the first one
 * in use. 0, or -EINVAL with what is wrong in e.
 */
int wire_client_parse(struct wire_client *c, const char *server, struct errmsg *e);
/* Dial server i (< c->nsrv) from now on. */
void wire_client_use(struct wire_client *c, unsigned i);

/* errno for a server ERROR code: whether it is worth a retry. */
int wire_err_errno(int code);

/* ---- for the other wire_client_*.c (errors: -errno, the text in e) ---- */

/*
 * Connect, TLS (c->tls: on, or auto and the server is not on loopback), HELLO, AUTH for role.
 * Mutual, always: we need a key, the server must ask for it and then prove that it holds it.
 * With codec (a connection that takes PAGES) HELLO offers zstd as c->compress says and
 * *codec is what the server chose (LW_CODEC__LW_CODEC_NONE: never compressed); NULL offers
 * nothing. The fd (close it with wire_sock_close), or a negative errno.
 */
int wire_client_handshake(const struct wire_client *c, LwRole role, uint8_t *scratch,
			  uint64_t deadline, LwCodec *codec, struct errmsg *e);

/* Receive a frame of the expected type into *m (wire_free it); an ERROR becomes its errno
 * (wire_err_errno) and "server: TEXT". */
int wire_client_expect(int fd, uint8_t *scratch, unsigned type, ProtobufCMessage **m,
		       uint64_t deadline, struct errmsg *e);

#endif

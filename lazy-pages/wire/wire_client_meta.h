/* The lazy-wire client's metadata fetch: every metadata file of an image into a dir. */
#ifndef LAZY_WIRE_CLIENT_META_H
#define LAZY_WIRE_CLIENT_META_H

#include <stddef.h>
#include <stdint.h>

#include "wire_client_conn.h"

/* What a fetch or an upload moved. */
struct wire_meta_result {
	unsigned files;
	uint64_t bytes;
	char server[272]; /* meta_fetch_if_empty: HOST:PORT of the server they came from */
};

/*
 * Restore by image id: fetch every metadata file of c->image (a META connection) into the
 * dir dirfd. Names and sizes are checked (wire.h limits); a name that already exists in the
 * dir fails the fetch before anything is written; each file is written to a temp name and
 * renamed (RENAME_NOREPLACE) once complete. On failure the files it created are removed.
 * 0, or -errno with the text in e (-EEXIST: a name exists in the dir; as wire_client_open for
 * the connection; -EPROTO: the server broke the protocol).
 */
int wire_meta_fetch(const struct wire_client *c, int dirfd, struct wire_meta_result *res,
		    struct errmsg *e);

#endif

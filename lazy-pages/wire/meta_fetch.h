/* Restore by image id: fill an images dir that holds no images with an image's metadata. */
#ifndef LAZY_META_FETCH_H
#define LAZY_META_FETCH_H

#include <stddef.h>

#include "wire_client.h"

struct meta_fetch_cfg {
	const char *server;		/* HOST:PORT or [V6]:PORT of criu-imgd */
	const char *image;		/* image id; NULL: "default" */
	const char *key_file;		/* required: NULL fails the fetch */
	unsigned timeout_ms;		/* per request; 0: 10 s */
	const struct wire_tls_cfg *tls; /* NULL: TLS auto, PSK from the key (wire_tls.h) */
};

/*
 * If dir has neither inventory.img nor pstree.img, fetch every metadata file of cfg->image
 * into it (wire_meta_fetch: files of mode 0600) and return 1 with *res filled; if it has
 * them, return 0 and touch nothing; on failure return -errno with the text in e (nothing is
 * left half-written; -EINVAL: a bad address, image id or TLS option; -EACCES: no key). The
 * key is required (the server must prove it holds it), and its file must pass wire_key_load's
 * checks.
 */
int meta_fetch_if_empty(const struct meta_fetch_cfg *cfg, const char *dir,
			struct wire_meta_result *res, struct errmsg *e);

#endif

/*
 * The object store under criu-imgd (--store s3://BUCKET[/PREFIX]; docs/store.md). Without it,
 * images are directories (catalog.c: -D, --root); with it, an image ID is the objects
 *
 *   PREFIX/ID/manifest                  written last: the image exists once it does
 *   PREFIX/ID/GEN/meta/NAME             each small file (metadata, checksum index)
 *   PREFIX/ID/GEN/pages/NAME/%08x       each STORE_CHUNK bytes of a pages file
 *
 * (store_manifest.h: the manifest lists every file with its size and XXH64, every chunk's
 * XXH64; GEN is one upload's random name, so two uploads never mix their objects). Serving
 * such an image: its small files are fetched into a private dir (mode 0700) below the spool,
 * where img/ reads them as it reads any image (pages files there are holes of the right
 * size); page data is read through a bounded LRU of whole, verified chunks (store_cache.h).
 *
 * store.c: opening the store, an image served from it, its page reads.
 * store_xfer.c: an image dir into the store (publish, `store put`) and back (`store get`).
 */
#ifndef IMGD_STORE_H
#define IMGD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "store_cache.h"
#include "store_manifest.h"
#include "store_s3.h"
#include "util/parse.h"

struct imgd_store {
	struct store_s3 s3;
	struct store_cache cache;
	uint64_t chunk_reads; /* chunk objects read from the store (cache misses) */
	uint64_t bad_chunks;  /* chunk or small objects that did not match their checksum */
};

/* An image of the store, being served. */
struct store_img {
	struct store_manifest m;
	char id[IMAGE_ID_MAX + 1];
	char local[IMAGE_ID_MAX + 32]; /* its dir below the spool */
	int spoolfd;
};

/* 0, or -errno with e. cache_bytes: the chunk cache's size. */
int store_init(struct imgd_store *st, const struct store_s3_cfg *cfg, size_t cache_bytes,
	       struct errmsg *e);
void store_free(struct imgd_store *st);
/* The manifest of id: 0; -ENOENT: no complete image id; another -errno with e. */
int store_manifest_get(struct imgd_store *st, const char *id, struct store_manifest *m,
		       struct errmsg *e);
/*
 * Image id of the store, ready to serve: its small files in a new dir below spoolfd (*dirfd,
 * the caller's). 0; -ENOENT with e: no complete image id; another -errno with e.
 */
int store_image_open(struct imgd_store *st, int spoolfd, const char *id, struct store_img **out,
		     int *dirfd, struct errmsg *e);
/* Its local dir removed, si freed (si may be NULL). */
void store_image_close(struct store_img *si);
/*
 * len bytes of pages file name from off, through the chunk cache: 0; -EILSEQ: a chunk did
 * not match its checksum; -EINVAL: beyond the file; another -errno (the store) with e.
 */
int store_image_read(struct imgd_store *st, const struct store_img *si, const char *name,
		     uint64_t off, size_t len, void *buf, struct errmsg *e);
/* A chunk of file f into a new buffer, verified (store_xfer.c too): 0 or -errno with e. */
int store_chunk_fetch(struct imgd_store *st, const char *id, const struct store_manifest *m,
		      const struct store_file *f, uint64_t k, uint8_t **out, uint32_t *len,
		      struct errmsg *e);
/* Small file f into dirfd, fetched whole, size and checksum checked: 0 or -errno with e. */
int store_small_fetch(struct imgd_store *st, const char *id, const struct store_manifest *m,
		      const struct store_file *f, int dirfd, struct errmsg *e);

/* store_xfer.c: publish the image in dirfd as id (manifest last; an id that exists is never
 * replaced): 0, or -errno with e (-EEXIST: it exists). */
int store_put_dir(struct imgd_store *st, int dirfd, const char *id, struct errmsg *e);
/* Fetch image id into the empty dir dirfd, every byte verified: 0, or -errno with e. */
int store_get_dir(struct imgd_store *st, const char *id, int dirfd, struct errmsg *e);

#endif

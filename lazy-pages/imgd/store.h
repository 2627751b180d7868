/*
 * The object store under criu-imgd (--store s3://BUCKET[/PREFIX] or rados://POOL[/PREFIX];
 * docs/store.md; the backends behind store_be.h). Without it,
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
 * store_fetch.c: read-ahead threads that bring the next chunks of a read into the cache.
 * store_xfer.c: an image dir into the store (publish, `store put`) and back (`store get`).
 */
#ifndef IMGD_STORE_H
#define IMGD_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_cache.h"
#include "store_manifest.h"
#include "store_be.h"
#include "util/parse.h"

#define STORE_RA_THREADS 4 /* read-ahead threads */
#define STORE_RA_CHUNKS 8  /* chunks read ahead of a read (at most 1/8 of the cache) */
#define STORE_RA_QUEUE 32  /* read-ahead jobs waiting */

/* A read-ahead job: all it needs, no pointer into an image that may be unloaded meanwhile. */
struct store_job {
	char ckey[STORE_CACHE_KEY]; /* in the cache */
	char okey[STORE_KEY_MAX];   /* in the store */
	uint32_t len;
	uint64_t csum;
};

/* store_fetch.c's state; mu guards it, the cache and the store's counters while it runs. */
struct store_fetch {
	pthread_mutex_t mu;
	pthread_cond_t work, done; /* a job queued; a job finished */
	struct store_job q[STORE_RA_QUEUE];
	unsigned qh, nq;
	char cur[STORE_RA_THREADS][STORE_CACHE_KEY]; /* what each thread fetches */
	bool busy[STORE_RA_THREADS];
	pthread_t th[STORE_RA_THREADS];
	struct store_be be[STORE_RA_THREADS];
	unsigned nth;
	bool inited, started, stop;
	uint64_t fetched, failed, gets, get_bytes;
};

struct imgd_store {
	struct store_be be; /* the loop's client */
	struct store_cache cache;
	uint64_t chunk_reads; /* chunk objects read from the store (cache misses) */
	uint64_t bad_chunks;  /* chunk or small objects that did not match their checksum */
	struct store_fetch ra;
};

/* An image of the store, being served. */
struct store_img {
	struct store_manifest m;
	char id[IMAGE_ID_MAX + 1];
	char local[IMAGE_ID_MAX + 32]; /* its dir below the spool */
	int spoolfd;
};

/* 0, or -errno with e. cache_bytes: the chunk cache's size. */
int store_init(struct imgd_store *st, const struct store_cfg *cfg, size_t cache_bytes,
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
/* A chunk of file f into a new buffer, verified (store_xfer.c too): 0, or -errno with e
 * (-EILSEQ: its checksum does not match). The caller counts it. */
int store_chunk_fetch(struct imgd_store *st, const char *id, const struct store_manifest *m,
		      const struct store_file *f, uint64_t k, uint8_t **out, uint32_t *len,
		      struct errmsg *e);
/* Small file f into dirfd, fetched whole, size and checksum checked: 0 or -errno with e. */
int store_small_fetch(struct imgd_store *st, const char *id, const struct store_manifest *m,
		      const struct store_file *f, int dirfd, struct errmsg *e);

/* Chunk k of file f of si: its key in the cache and in the store. */
void store_chunk_keys(const struct store_img *si, const struct store_file *f, uint64_t k,
		      char ckey[STORE_CACHE_KEY], char okey[STORE_KEY_MAX]);
/* Bytes of chunk k of file f. */
uint32_t store_chunk_len(const struct store_manifest *m, const struct store_file *f, uint64_t k);
/* The counters and the cache, consistent while read-ahead threads run (no-ops without). */
void store_lock(struct imgd_store *st);
void store_unlock(struct imgd_store *st);

/* store_fetch.c: read-ahead for the server (the store commands read without it). */
int store_fetch_init(struct imgd_store *st);
/* Stop and join the threads (store_free calls it). */
void store_fetch_stop(struct imgd_store *st);
/* Queue the chunks after chunk k of file for the threads (started on the first call). */
void store_fetch_ahead(struct imgd_store *st, const struct store_img *si,
		       const struct store_file *file, uint64_t k);
/* With st->ra.mu held: ckey, if queued, is taken out of the queue (the caller fetches it);
 * if a thread fetches it, wait until it is done. Whether it waited. */
bool store_fetch_wait(struct imgd_store *st, const char *ckey);
/* ckey taken out of f's queue (the order of the others kept): whether it was there. */
bool store_fetch_unqueue(struct store_fetch *f, const char *ckey);

/* store_xfer.c: publish the image in dirfd as id (manifest last; an id that exists is never
 * replaced): 0, or -errno with e (-EEXIST: it exists). */
int store_put_dir(struct imgd_store *st, int dirfd, const char *id, struct errmsg *e);
/* Fetch image id into the empty dir dirfd, every byte verified: 0, or -errno with e. */
int store_get_dir(struct imgd_store *st, const char *id, int dirfd, struct errmsg *e);

#endif

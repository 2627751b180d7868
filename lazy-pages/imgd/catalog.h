/* catalog.c: the images criu-imgd serves, loaded on first open and shared by their sessions. */
#ifndef IMGD_CATALOG_H
#define IMGD_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imgd.h"
#include "sumcache.h"
#include "store.h"
#include "img/images.h"
#include "util/err.h"
#include "util/parse.h"

/* A task's data in its pages file, contiguous runs of lazy data by file offset. */
struct imgd_dext {
	uint64_t off, end;
};

struct imgd_image {
	char id[IMAGE_ID_MAX + 1];
	struct imgd_dext **dext; /* per task */
	size_t *ndext;
	int dirfd;
	struct img_set set;
	int *sums_fd;	     /* per task: pages-N.img.xxh64, or -1 */
	struct sumcache *sc; /* per task: its pages file's checksums and zero pages */
	size_t sc_bytes;     /* their memory (the catalog's budget) */
	bool dump_sums;
	uint64_t lazy_pages, zero_pages;
	uint64_t fingerprint;  /* img/fingerprint.h: which dump this is (0: unknown) */
	uint64_t sums_fp;      /* sums_fingerprint: which page data, with dump-time sums */
	struct store_img *st;  /* an image of --store (its dirfd: the small files), or NULL */
	unsigned refs;	       /* its sessions */
	uint64_t pages_closed; /* pages its closed sessions were sent (session_free) */
	struct imgd_image *next;
};

struct imgd_catalog {
	int rootfd; /* --root, or -1; with --store: the spool (uploads, served images) */
	struct imgd_store *store; /* --store, or NULL */
	char spool[64];		  /* with --store: the spool dir we made (removed at the end) */
	const char *dir;	  /* -D */
	const char *dir_id;	  /* its basename: the id it answers to (also "default") */
	struct imgd_image *loaded;
	size_t sc_bytes; /* memory of the loaded images' sum caches (IMGD_SUMCACHE_BUDGET) */
};

/* -D or --root: 0, or -errno with e. */
int catalog_init(struct imgd_catalog *c, const struct imgd_opts *o, struct errmsg *e);
/* Whether the image in dirfd loads as criu-imgd would serve it: 0, or -errno with e. */
int catalog_check_dir(int dirfd, struct errmsg *e);
/*
 * Take a reference on image id (*out): 0; -ENOENT with e: no such image here (a bad id, or
 * no dir of that name); another -errno with e: it is there but cannot be served.
 */
int catalog_get(struct imgd_catalog *c, const char *id, struct imgd_image **out, struct errmsg *e);
/* Drop a reference (img may be NULL); the last one unloads the image. */
void catalog_put(struct imgd_catalog *c, struct imgd_image *img);
void catalog_free(struct imgd_catalog *c);
/*
 * Whether image id exists (an upload must not replace it): 0 (yes), -ENOENT (no), or another
 * -errno with e (cannot tell).
 */
int catalog_exists(struct imgd_catalog *c, const char *id, struct errmsg *e);
/* len bytes of task ti's pages file from off (the dir, or the store's chunks): 0; -EILSEQ
 * (a chunk of the store is damaged); another -errno with e. */
int image_read(struct imgd_catalog *c, const struct imgd_image *img, size_t ti, uint64_t off,
	       size_t len, void *buf, struct errmsg *e);
/*
 * Task ti's cache of checksums and zero pages (sumcache.h), set up on its first use while
 * the loaded images' caches stay within IMGD_SUMCACHE_BUDGET; NULL: the task has none.
 */
struct sumcache *image_sumcache(struct imgd_catalog *c, struct imgd_image *img, size_t ti);
/* The task with image pid, and its index in the pstree. */
const struct img_task *image_task(const struct imgd_image *img, int32_t pid, size_t *idx);

#endif

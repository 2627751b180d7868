/*
 * The working-set record: which pages the tasks of a restore touched first, in order, kept
 * beside the images (WS_FILE_NAME) so that the next restore of the same images prefetches
 * them before anything else (criu-lazyd --working-set, lazyd/workset.c).
 *
 * The record only orders prefetching: every page still comes from the images and goes in
 * only where it is pending. A record that does not belong to the images (their identity,
 * img_workset_identity, differs), or that is truncated or corrupt, is refused whole.
 *
 * File: "LZWSET01", the little-endian xxh64 of the rest, then one lws_record
 * (proto/lazy-workset.proto). Written to a private temporary file and renamed over the old
 * one, so a reader sees the old record or the new one, never a part.
 */
#ifndef LAZY_IMG_WORKSET_H
#define LAZY_IMG_WORKSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "images.h"
#include "util/err.h"

#define WS_FILE_NAME "lazy-workset.img"
#define WS_VERSION 1
#define WS_MAX_FILE (64u << 20)	       /* bytes of a record file */
#define WS_MAX_TASK_ENTRIES (1u << 20) /* first touches kept per task */
#define WS_MAX_ENTRY_PAGES (1u << 16)  /* pages one entry covers */
#define WS_JOIN_PAGES 256	       /* gap between entries that ws_merge joins, at most */
#define WS_JOIN_MIN 4		       /* entries of a trail that ws_merge joins, at least */
#define WS_JOIN_TRAILS 8	       /* trails that ws_merge follows at once */

struct ws_entry {
	uint64_t addr;	/* page aligned */
	uint32_t pages; /* 1..WS_MAX_ENTRY_PAGES */
	uint32_t t_ms;	/* first touch after the restore began (the first restore's) */
	uint32_t seen;	/* restores that faulted on it */
};

struct ws_task {
	int32_t pid; /* as in pstree.img */
	struct ws_entry *e;
	uint32_t n, cap;
};

struct workset {
	uint64_t image;	   /* img_workset_identity() of the images it belongs to */
	uint32_t restores; /* restores merged into it */
	struct ws_task *tasks;
	uint32_t ntasks;
};

void ws_init(struct workset *ws, uint64_t image);
void ws_free(struct workset *ws);
/* pid's entries, or NULL. */
const struct ws_task *ws_find(const struct workset *ws, int32_t pid);
/*
 * A first touch of pid's at addr (pages installed from there), t_ms after the restore
 * began, appended. 0; -ENOMEM; -E2BIG when pid has WS_MAX_TASK_ENTRIES already (not kept).
 */
int ws_note(struct workset *ws, int32_t pid, uint64_t addr, uint32_t pages, uint32_t t_ms);
/*
 * This restore's notes (ws_note) merged into a record: an address in both is seen once
 * more (its time stays the record's); new ones are seen once. Each task's entries end
 * sorted by the restores that touched them (most first), then time, then address, one per
 * address, at most WS_MAX_TASK_ENTRIES (the first ones). An entry inside another ranked no
 * lower is dropped, and a trail of at least WS_JOIN_MIN entries, each touched after the one
 * before and starting at most WS_JOIN_PAGES after the trail's end (of WS_JOIN_TRAILS
 * trails followed at once), is joined into one entry, its gaps included (a region read in
 * order is replayed in order).
 * into->restores counts one more. 0 or -ENOMEM (into unchanged).
 */
int ws_merge(struct workset *into, const struct workset *notes);

/* The record in buf: 0, or -EINVAL with e saying what is wrong (nothing allocated). */
int ws_decode(const uint8_t *buf, size_t len, struct workset *ws, struct errmsg *e);
/* ws as a file's bytes in *buf (malloc'd), *len. 0 or -ENOMEM / -E2BIG. */
int ws_encode(const struct workset *ws, uint8_t **buf, size_t *len);
/*
 * The record in dirfd/name for the images whose identity is image: 0; -ENOENT if there is
 * none; -ESTALE if it belongs to other images; -EINVAL if it is corrupt or truncated;
 * another -errno if it cannot be read. e says why.
 */
int ws_load(int dirfd, const char *name, uint64_t image, struct workset *ws, struct errmsg *e);
/* ws written to dirfd/name atomically, mode 0600. 0 or -errno with e. */
int ws_save(int dirfd, const char *name, const struct workset *ws, struct errmsg *e);

/*
 * The identity of the images in dirfd: a hash of inventory.img (it holds the dump's time),
 * pstree.img, and each task's mm and pagemap images with its count of lazy data pages (the
 * same with the pages from criu-imgd: a record made with either serves both). Another dump,
 * even of the same process to the same dir, has another identity.
 */
int img_workset_identity(int dirfd, const struct img_set *set, uint64_t *id, struct errmsg *e);

#endif

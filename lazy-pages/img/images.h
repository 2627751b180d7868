/* Reading CRIU images: the per-task lazy page index a lazy-pages daemon serves from. */
#ifndef LAZY_IMAGES_H
#define LAZY_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define IMG_PAGE_SIZE 4096ULL

/* Hard limits: hostile images get an error, never an unbounded allocation. */
#define IMG_MAX_ENTRY_SIZE (64u << 20) /* one protobuf entry */
#define IMG_MAX_TASKS 65536
#define IMG_MAX_VMAS (1u << 20) /* vma entries of one mm, guard entries included */
#define IMG_MAX_PAGEMAP_ENTRIES (1u << 24)

/* CRIU image magics. */
#define IMG_COMMON_MAGIC 0x54564319u
#define IMG_SERVICE_MAGIC 0x55105940u
#define IMG_INVENTORY_MAGIC 0x58313116u
#define IMG_PSTREE_MAGIC 0x50273030u
#define IMG_PAGEMAP_MAGIC 0x56084025u
#define IMG_MM_MAGIC 0x57492820u

/* pagemap_entry.flags */
#define IMG_PE_PARENT 1u
#define IMG_PE_LAZY 2u
#define IMG_PE_PRESENT 4u

struct img_vma {
	uint64_t start, end;
	uint32_t prot, flags, status;
	bool lazy; /* registered with userfaultfd by criu restore --lazy-pages */
};

/*
 * A guard region (madvise MADV_GUARD_INSTALL, Linux 6.13+): touching it raises SIGSEGV.
 * CRIU 4.2 writes each run of guard pages as an extra vma entry after the real VMAs:
 * status VMA_AREA_GUARD (1 << 16) and nothing else, prot 0, flags 0, pgoff 0, shmid 0,
 * fd -1; it dumps no pages for it and re-installs the guard on restore, after the VMAs
 * are registered with userfaultfd. One entry may span adjacent VMAs. A daemon must never
 * install a page there: UFFDIO_COPY onto a guard replaces it with the data.
 */
struct img_guard {
	uint64_t start, end; /* page aligned, end exclusive */
};

/*
 * One run of lazy pages inside one lazy VMA. Data extents are PE_LAZY
 * pagemap entries, their bytes at pages_off in the task's pages file; zero
 * extents are the addresses of a lazy VMA that no pagemap entry covers.
 */
struct img_extent {
	uint64_t start, end; /* page aligned, end exclusive */
	uint64_t pages_off;  /* byte offset in pages-<pages_id>.img; unused when zero or remote */
	bool zero;
	bool remote; /* PE_LAZY without PE_PRESENT (criu dump --lazy-pages): page server only */
};

struct img_task {
	int32_t pid, ppid;
	uint32_t nr_threads;
	bool has_mm;	      /* false for zombies and helpers: no mm/pagemap images */
	struct img_vma *vmas; /* the real VMAs, sorted by start, disjoint */
	size_t nr_vmas;
	struct img_guard *guards; /* sorted by start, disjoint, each inside the VMAs */
	size_t nr_guards;
	struct img_extent *extents; /* sorted by start, disjoint, never inside a guard */
	size_t nr_extents;
	uint64_t lazy_pages, zero_pages;
	uint32_t pages_id;
	int pages_fd; /* read-only, -1 without mm */
	uint64_t pages_size;
};

struct img_set {
	int dirfd;
	uint32_t img_version;
	struct img_task *tasks; /* in pstree order */
	size_t nr_tasks;
};

/*
 * Load pstree, mm, pagemap and open pages images from an images dir fd (not taken).
 * The vma entries may come in any order (CRIU 4.2 appends its guard entries); real VMAs
 * must not overlap. Extents never cross a VMA boundary (UFFDIO_COPY/ZEROPAGE work within
 * one VMA), so adjacent zero runs of two VMAs stay two extents, and never cover a guard
 * page: guards are carved out of zero runs, and a PE_LAZY entry over a guard page is an
 * error. lazy_pages counts data extent pages (remote ones included), zero_pages zero
 * extent pages. On failure returns -errno (-EINVAL: a malformed image, -ENOENT: a missing
 * one, or the errno of the I/O) with err->msg "FILE: offset N: problem" and *set left empty
 * (nothing allocated or open).
 */
int img_set_load(int dirfd, struct img_set *set, struct errmsg *err);
const struct img_task *img_set_find(const struct img_set *set, int32_t pid);
void img_set_free(struct img_set *set);

/* The lowest guard of t that intersects [start, end), or NULL. */
const struct img_guard *img_task_guard(const struct img_task *t, uint64_t start, uint64_t end);

#endif

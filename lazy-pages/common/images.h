/* Reading CRIU images: the per-task lazy page index a lazy-pages daemon serves from. */
#ifndef LAZY_IMAGES_H
#define LAZY_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMG_PAGE_SIZE 4096ULL

/* Hard limits: hostile images get an error, never an unbounded allocation. */
#define IMG_MAX_ENTRY_SIZE (64u << 20) /* one protobuf entry */
#define IMG_MAX_TASKS 65536
#define IMG_MAX_VMAS (1u << 20)
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

/* "FILE: offset N: problem", filled in by every failing call. */
struct img_error {
	char msg[512];
};

struct img_vma {
	uint64_t start, end;
	uint32_t prot, flags, status;
	bool lazy; /* registered with userfaultfd by criu restore --lazy-pages */
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
	bool has_mm; /* false for zombies and helpers: no mm/pagemap images */
	struct img_vma *vmas;
	size_t nr_vmas;
	struct img_extent *extents; /* sorted by start, disjoint */
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
 * Extents never cross a VMA boundary (UFFDIO_COPY/ZEROPAGE work within one VMA), so
 * adjacent zero runs of two VMAs stay two extents. lazy_pages counts data extent pages
 * (remote ones included), zero_pages zero extent pages. On failure returns -1 with
 * err->msg "FILE: offset N: problem" and *set left empty (nothing allocated or open).
 */
int img_set_load(int dirfd, struct img_set *set, struct img_error *err);
const struct img_task *img_set_find(const struct img_set *set, int32_t pid);
void img_set_free(struct img_set *set);

#endif

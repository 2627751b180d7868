/*
 * sumcache.c: what criu-imgd learnt about the pages of one pages file, kept for every later
 * session on the image: per page its checksum and whether it is a zero page.
 */
#ifndef IMGD_SUMCACHE_H
#define IMGD_SUMCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sumcache {
	uint64_t npages; /* pages of the file it covers; 0: nothing kept (not set up) */
	uint64_t *sum;	 /* npages checksums */
	uint64_t *known; /* bit per page: sum and zero bit are set */
	uint64_t *zero;	 /* bit per page: a zero page */
	uint64_t hits;	 /* pages answered from it */
	bool off;	 /* none for this file (over criu-imgd's budget, or no memory) */
};

/* The bytes a cache of npages pages takes; 0 if that cannot be told (overflow). */
size_t sumcache_bytes(uint64_t npages);
/* Set up an empty cache for npages pages (npages >= 1): 0, -EINVAL, -EOVERFLOW, -ENOMEM. */
int sumcache_init(struct sumcache *c, uint64_t npages);
/* Free it (a cache never set up too); it is then empty. */
void sumcache_free(struct sumcache *c);
/*
 * The checksums and the zero map (bit i of byte i / 8: page + i is a zero page) of pages
 * [page, page + n): true if every one of them is known, else false and nothing written.
 */
bool sumcache_get(struct sumcache *c, uint64_t page, uint32_t n, uint64_t *sums, uint8_t *zmap);
/*
 * Keep the checksums and zero map of pages [page, page + n), computed from the bytes just
 * read. A range beyond the file is ignored. A page already known keeps its values.
 */
void sumcache_put(struct sumcache *c, uint64_t page, uint32_t n, const uint64_t *sums,
		  const uint8_t *zmap);

#endif

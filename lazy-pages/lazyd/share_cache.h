/*
 * share_cache.c: page data that came over the network, kept a while for the other tasks of
 * the restore that read the same image (a fork child and its parent share their images):
 * when one of them needs a page whose data is here (at any address: the range may have
 * moved since), it is installed from here instead of being fetched again. Keyed by image and
 * pages-file offset; a ring of at most cap pages, the oldest reused first.
 */
#ifndef LAZY_SHARE_CACHE_H
#define LAZY_SHARE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "img/images.h"

struct share_cache {
	uint32_t cap;  /* pages; 0: off */
	uint32_t used; /* slots filled so far (the ring wraps once they all are) */
	uint32_t next; /* the slot to fill next */
	uint8_t *mem;  /* cap pages, allocated on the first put */
	struct sc_slot *slot;
	int32_t *bucket;  /* hash heads: slot index or -1 */
	uint32_t nbucket; /* a power of two */
	uint64_t hits;	  /* pages handed out */
};

/* Up to pages pages (0: none). Nothing is allocated yet. */
void share_cache_init(struct share_cache *c, uint32_t pages);
void share_cache_free(struct share_cache *c);
/* Keep n pages of img's data from pages-file offset src (a page already kept stays). 0, or
 * -ENOMEM (nothing kept: the cache is an optimisation). */
int share_cache_put(struct share_cache *c, const struct img_task *img, uint64_t src,
		    const void *data, uint32_t n);
/* How many pages of img's data from src on are here, in a row (at most max); they are copied
 * to out (max pages of room). */
uint32_t share_cache_get(struct share_cache *c, const struct img_task *img, uint64_t src, void *out,
			 uint32_t max);
/* Whether the page of img's data at src is here. */
bool share_cache_has(const struct share_cache *c, const struct img_task *img, uint64_t src);

#endif

/*
 * store_cache.c: a bounded in-memory LRU of chunk objects (whole, verified chunks), shared by
 * every image and session of one criu-imgd, so that N restores of one image read each chunk
 * from the store once while it stays hot. One thread: a pointer from store_cache_get is valid
 * until the next store_cache_put.
 */
#ifndef IMGD_STORE_CACHE_H
#define IMGD_STORE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_CACHE_KEY 320

struct store_cache_ent;

struct store_cache {
	size_t cap, bytes; /* bytes of chunk data allowed, held */
	size_t nb;	   /* hash buckets */
	struct store_cache_ent **tab;
	struct store_cache_ent *mru, *lru;
	uint64_t hits, misses, evictions;
	size_t entries;
};

/* cap bytes at most: 0 or -ENOMEM. */
int store_cache_init(struct store_cache *c, size_t cap);
void store_cache_free(struct store_cache *c);
/* The chunk of key (now the most recently used) and its length, or NULL (a miss). */
const uint8_t *store_cache_get(struct store_cache *c, const char *key, uint32_t *len);
/* Whether key is held (no count, no change of recency). */
bool store_cache_has(const struct store_cache *c, const char *key);
/*
 * Keep data (malloc'ed, len bytes; owned by the cache from now on, freed on any failure),
 * evicting the least recently used chunks to make room. A chunk larger than the cache is not
 * kept. The kept data, or NULL (not kept: data freed).
 */
const uint8_t *store_cache_put(struct store_cache *c, const char *key, uint8_t *data, uint32_t len);

#endif

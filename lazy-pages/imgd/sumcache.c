/*
 * The per-image cache of checksums and zero pages: the first session that reads a page of a
 * pages file hashes it and checks it for zeros; every later session on the same image takes
 * both from here and sends the page from the page cache without reading it. An image is
 * immutable while it is served (catalog.c), and only values computed from the bytes read
 * are kept, so a value here is what a fresh read would have given. 8 bytes and 2 bits per
 * page of the file, allocated in one piece.
 */
#include "sumcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WORDS(n) (((n) + 63) / 64)

static bool bit(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

size_t sumcache_bytes(uint64_t npages)
{
	if (!npages || npages > (SIZE_MAX / 2) / 8 - 64)
		return 0;
	return (size_t)(npages * 8 + 2 * WORDS(npages) * 8);
}

int sumcache_init(struct sumcache *c, uint64_t npages)
{
	memset(c, 0, sizeof(*c));
	if (!npages)
		return -EINVAL;
	size_t bytes = sumcache_bytes(npages);
	if (!bytes)
		return -EOVERFLOW;
	uint64_t *mem = calloc(1, bytes);
	if (!mem)
		return -ENOMEM;
	c->npages = npages;
	c->sum = mem;
	c->known = mem + npages;
	c->zero = c->known + WORDS(npages);
	return 0;
}

void sumcache_free(struct sumcache *c)
{
	free(c->sum);
	memset(c, 0, sizeof(*c));
}

static bool in_file(const struct sumcache *c, uint64_t page, uint32_t n)
{
	return n && page < c->npages && n <= c->npages - page;
}

bool sumcache_get(struct sumcache *c, uint64_t page, uint32_t n, uint64_t *sums, uint8_t *zmap)
{
	if (!in_file(c, page, n))
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (!bit(c->known, page + i))
			return false;
	memset(zmap, 0, (n + 7) / 8);
	for (uint32_t i = 0; i < n; i++) {
		sums[i] = c->sum[page + i];
		if (bit(c->zero, page + i))
			zmap[i / 8] |= (uint8_t)(1u << (i % 8));
	}
	c->hits += n;
	return true;
}

void sumcache_put(struct sumcache *c, uint64_t page, uint32_t n, const uint64_t *sums,
		  const uint8_t *zmap)
{
	if (!in_file(c, page, n))
		return;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t p = page + i;
		if (bit(c->known, p))
			continue;
		c->sum[p] = sums[i];
		if (zmap[i / 8] >> (i % 8) & 1)
			c->zero[p / 64] |= 1ull << (p % 64);
		c->known[p / 64] |= 1ull << (p % 64);
	}
}

/* Page data kept for fork relatives (share_cache.h). */
#include "share_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE IMG_PAGE_SIZE

struct sc_slot {
	const struct img_task *img; /* NULL: empty */
	uint64_t src;
	int32_t next; /* the bucket's chain */
};

void share_cache_init(struct share_cache *c, uint32_t pages)
{
	*c = (struct share_cache){.cap = pages};
}

void share_cache_free(struct share_cache *c)
{
	free(c->mem);
	free(c->slot);
	free(c->bucket);
	share_cache_init(c, 0);
}

static uint32_t hash(const struct share_cache *c, const struct img_task *img, uint64_t src)
{
	uint64_t h =
	    ((uintptr_t)img >> 4) * 0x9e3779b97f4a7c15ull ^ (src / PAGE) * 0xff51afd7ed558ccdull;
	return (uint32_t)(h >> 32) & (c->nbucket - 1);
}

static int alloc(struct share_cache *c)
{
	uint32_t nb = 1;

	while (nb < c->cap * 2u && nb < (1u << 30))
		nb <<= 1;
	c->mem = malloc((size_t)c->cap * PAGE);
	c->slot = calloc(c->cap, sizeof(*c->slot));
	c->bucket = malloc((size_t)nb * sizeof(*c->bucket));
	if (!c->mem || !c->slot || !c->bucket) {
		uint32_t cap = c->cap;
		share_cache_free(c);
		c->cap = cap;
		return -ENOMEM;
	}
	c->nbucket = nb;
	memset(c->bucket, 0xff, (size_t)nb * sizeof(*c->bucket));
	return 0;
}

static int32_t find(const struct share_cache *c, const struct img_task *img, uint64_t src)
{
	for (int32_t i = c->bucket[hash(c, img, src)]; i >= 0; i = c->slot[i].next)
		if (c->slot[i].img == img && c->slot[i].src == src)
			return i;
	return -1;
}

/* Take slot i out of its bucket's chain. */
static void unlink_slot(struct share_cache *c, int32_t i)
{
	int32_t *at = &c->bucket[hash(c, c->slot[i].img, c->slot[i].src)];

	while (*at >= 0 && *at != i)
		at = &c->slot[*at].next;
	if (*at == i)
		*at = c->slot[i].next;
	c->slot[i].img = NULL;
}

int share_cache_put(struct share_cache *c, const struct img_task *img, uint64_t src,
		    const void *data, uint32_t n)
{
	if (!c->cap || !img)
		return 0;
	if (!c->mem && alloc(c))
		return -ENOMEM;
	for (uint32_t k = 0; k < n; k++) {
		uint64_t at = src + (uint64_t)k * PAGE;
		if (find(c, img, at) >= 0)
			continue;
		int32_t i = (int32_t)c->next;
		c->next = (c->next + 1) % c->cap;
		if (c->slot[i].img)
			unlink_slot(c, i); /* the oldest page goes */
		else
			c->used++;
		memcpy(c->mem + (size_t)i * PAGE, (const uint8_t *)data + (size_t)k * PAGE, PAGE);
		uint32_t b = hash(c, img, at);
		c->slot[i] = (struct sc_slot){img, at, c->bucket[b]};
		c->bucket[b] = i;
	}
	return 0;
}

uint32_t share_cache_get(struct share_cache *c, const struct img_task *img, uint64_t src, void *out,
			 uint32_t max)
{
	uint32_t n = 0;

	if (!c->mem || !c->used)
		return 0;
	for (; n < max; n++) {
		int32_t i = find(c, img, src + (uint64_t)n * PAGE);
		if (i < 0)
			break;
		memcpy((uint8_t *)out + (size_t)n * PAGE, c->mem + (size_t)i * PAGE, PAGE);
	}
	c->hits += n;
	return n;
}

bool share_cache_has(const struct share_cache *c, const struct img_task *img, uint64_t src)
{
	return c->used && find(c, img, src) >= 0;
}

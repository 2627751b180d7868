/* A bounded LRU of chunk objects: a hash table on the key, a doubly linked recency list. */
#include "store_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct store_cache_ent {
	char key[STORE_CACHE_KEY];
	uint8_t *data;
	uint32_t len;
	struct store_cache_ent *prev, *next; /* recency: prev is more recent */
	struct store_cache_ent *hnext;
};

int store_cache_init(struct store_cache *c, size_t cap)
{
	memset(c, 0, sizeof(*c));
	c->cap = cap;
	c->nb = 64;
	while (c->nb < cap / (1u << 20) && c->nb < (1u << 20)) /* ~ one bucket per MiB */
		c->nb *= 2;
	c->tab = calloc(c->nb, sizeof(*c->tab));
	return c->tab ? 0 : -ENOMEM;
}

static size_t bucket(const struct store_cache *c, const char *key)
{
	return (size_t)(XXH64(key, strlen(key), 0) & (c->nb - 1));
}

static void unlink_lru(struct store_cache *c, struct store_cache_ent *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		c->mru = x->next;
	if (x->next)
		x->next->prev = x->prev;
	else
		c->lru = x->prev;
	x->prev = x->next = NULL;
}

static void push_mru(struct store_cache *c, struct store_cache_ent *x)
{
	x->next = c->mru;
	x->prev = NULL;
	if (c->mru)
		c->mru->prev = x;
	c->mru = x;
	if (!c->lru)
		c->lru = x;
}

static void evict(struct store_cache *c, struct store_cache_ent *x)
{
	unlink_lru(c, x);
	for (struct store_cache_ent **p = &c->tab[bucket(c, x->key)]; *p; p = &(*p)->hnext)
		if (*p == x) {
			*p = x->hnext;
			break;
		}
	c->bytes -= x->len;
	c->entries--;
	free(x->data);
	free(x);
}

void store_cache_free(struct store_cache *c)
{
	while (c->lru)
		evict(c, c->lru);
	free(c->tab);
	memset(c, 0, sizeof(*c));
}

bool store_cache_has(const struct store_cache *c, const char *key)
{
	for (const struct store_cache_ent *x = c->tab[bucket(c, key)]; x; x = x->hnext)
		if (!strcmp(x->key, key))
			return true;
	return false;
}

const uint8_t *store_cache_get(struct store_cache *c, const char *key, uint32_t *len)
{
	for (struct store_cache_ent *x = c->tab[bucket(c, key)]; x; x = x->hnext)
		if (!strcmp(x->key, key)) {
			unlink_lru(c, x);
			push_mru(c, x);
			c->hits++;
			*len = x->len;
			return x->data;
		}
	c->misses++;
	return NULL;
}

const uint8_t *store_cache_put(struct store_cache *c, const char *key, uint8_t *data, uint32_t len)
{
	struct store_cache_ent *x;

	if (len > c->cap || strlen(key) >= STORE_CACHE_KEY || !(x = calloc(1, sizeof(*x)))) {
		free(data);
		return NULL;
	}
	for (struct store_cache_ent *o = c->tab[bucket(c, key)]; o; o = o->hnext)
		if (!strcmp(o->key, key)) { /* the same chunk again: keep the newer */
			evict(c, o);
			break;
		}
	while (c->bytes + len > c->cap && c->lru) {
		evict(c, c->lru);
		c->evictions++;
	}
	memcpy(x->key, key, strlen(key) + 1);
	x->data = data;
	x->len = len;
	size_t b = bucket(c, key);
	x->hnext = c->tab[b];
	c->tab[b] = x;
	push_mru(c, x);
	c->bytes += len;
	c->entries++;
	return data;
}

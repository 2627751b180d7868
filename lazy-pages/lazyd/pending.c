#include "pending.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE IMG_PAGE_SIZE

void pending_init(struct pending *p)
{
	memset(p, 0, sizeof(*p));
}

void pending_free(struct pending *p)
{
	free(p->v ? p->v - p->head : NULL);
	pending_init(p);
}

/* Room for need extents from v on (the head given back first). */
static int reserve(struct pending *p, size_t need)
{
	if (need <= p->cap - p->head)
		return 0;
	struct pend_extent *mem = p->v ? p->v - p->head : NULL;
	if (p->head) {
		memmove(mem, p->v, p->n * sizeof(*p->v));
		p->v = mem;
		p->head = 0;
		if (need <= p->cap)
			return 0;
	}
	size_t cap = p->cap ? p->cap : 16;
	while (cap < need) {
		if (cap > SIZE_MAX / 2 / sizeof(*p->v))
			return -ENOMEM;
		cap *= 2;
	}
	struct pend_extent *v = realloc(mem, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->v = v;
	p->cap = cap;
	return 0;
}

/* Take extent i out of the array, moving whichever side of it is shorter. */
static void remove_at(struct pending *p, size_t i)
{
	if (i < p->n / 2) {
		memmove(p->v + 1, p->v, i * sizeof(*p->v));
		p->v++;
		p->head++;
	} else {
		memmove(p->v + i, p->v + i + 1, (p->n - i - 1) * sizeof(*p->v));
	}
	p->n--;
}

/* Account 'bytes' of extent e as added (sign 1) or removed (sign -1). */
static void account(struct pending *p, const struct pend_extent *e, uint64_t bytes, int sign)
{
	uint64_t n = bytes / PAGE;
	if (sign > 0) {
		p->pages += n;
		if (!(e->flags & PEND_ZERO))
			p->data_pages += n;
	} else {
		p->pages -= n;
		if (!(e->flags & PEND_ZERO))
			p->data_pages -= n;
	}
}

/* Index of the first extent whose end is above addr (n if none). */
static size_t first_above(const struct pending *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->v[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int insert_at(struct pending *p, size_t i, const struct pend_extent *e)
{
	if (p->head && i < p->n / 2) {
		/* Into the head's room: the i extents before it move down one. */
		p->v--;
		p->head--;
		memmove(p->v, p->v + 1, i * sizeof(*p->v));
	} else {
		int rc = reserve(p, p->n + 1);
		if (rc)
			return rc;
		memmove(&p->v[i + 1], &p->v[i], (p->n - i) * sizeof(*p->v));
	}
	p->v[i] = *e;
	p->n++;
	account(p, e, e->end - e->start, 1);
	return 0;
}

/* Insert an extent that overlaps nothing already pending. */
static int insert_sorted(struct pending *p, const struct pend_extent *e)
{
	return insert_at(p, first_above(p, e->start), e);
}

int pending_from_image(struct pending *p, const struct img_task *t)
{
	pending_init(p);
	if (!t->nr_extents)
		return 0;
	if (reserve(p, t->nr_extents))
		return -ENOMEM;
	for (size_t i = 0; i < t->nr_extents; i++) {
		const struct img_extent *x = &t->extents[i];
		struct pend_extent *e = &p->v[p->n++];
		e->start = x->start;
		e->end = x->end;
		e->src = x->zero ? 0 : x->pages_off;
		e->flags = x->zero ? PEND_ZERO : 0;
		account(p, e, e->end - e->start, 1);
	}
	return 0;
}

int pending_clone(struct pending *dst, const struct pending *src)
{
	pending_init(dst);
	if (reserve(dst, src->n))
		return -ENOMEM;
	if (src->n)
		memcpy(dst->v, src->v, src->n * sizeof(*src->v));
	dst->n = src->n;
	dst->pages = src->pages;
	dst->data_pages = src->data_pages;
	return 0;
}

const struct pend_extent *pending_lookup(const struct pending *p, uint64_t addr)
{
	size_t i = first_above(p, addr);
	if (i < p->n && p->v[i].start <= addr)
		return &p->v[i];
	return NULL;
}

/* The part of e from 'from' on, at most max_len bytes (rounded down to pages, >= 1 page). */
static void clip(const struct pend_extent *e, uint64_t from, uint64_t max_len,
		 struct pend_extent *out)
{
	uint64_t start = from > e->start ? from : e->start;
	uint64_t len = e->end - start;

	max_len &= ~(PAGE - 1);
	if (max_len < PAGE)
		max_len = PAGE;
	if (len > max_len)
		len = max_len;
	out->start = start;
	out->end = start + len;
	out->flags = e->flags;
	out->src = (e->flags & PEND_ZERO) ? 0 : e->src + (start - e->start);
}

bool pending_run_at(const struct pending *p, uint64_t addr, uint64_t max_len,
		    struct pend_extent *out)
{
	const struct pend_extent *e = pending_lookup(p, addr);
	if (!e)
		return false;
	clip(e, addr, max_len, out);
	return true;
}

bool pending_next(const struct pending *p, uint64_t from, uint64_t max_len, bool data_only,
		  struct pend_extent *out)
{
	if (!p->n || (data_only && !p->data_pages))
		return false;
	size_t start = first_above(p, from);
	/* Two passes at most: from 'from' to the top, then from the bottom. */
	for (size_t k = 0; k < p->n; k++) {
		size_t i = (start + k) % p->n;
		if (data_only && (p->v[i].flags & PEND_ZERO))
			continue;
		clip(&p->v[i], i >= start ? from : 0, max_len, out);
		return true;
	}
	return false;
}

int pending_remove(struct pending *p, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	size_t i = first_above(p, start);

	while (i < p->n && p->v[i].start < end) {
		struct pend_extent *e = &p->v[i];

		if (e->start < start && e->end > end) {
			/* Punch a hole: keep the head here, insert the tail after it. */
			struct pend_extent tail = *e;
			tail.start = end;
			if (!(tail.flags & PEND_ZERO))
				tail.src = e->src + (end - e->start);
			int rc = reserve(p, p->n + 1);
			if (rc)
				return rc;
			e = &p->v[i];
			account(p, e, e->end - start, -1);
			e->end = start;
			/* insert_at accounts the tail back in. */
			return insert_at(p, i + 1, &tail);
		}
		if (e->start < start) {
			account(p, e, e->end - start, -1);
			e->end = start;
			i++;
		} else if (e->end > end) {
			account(p, e, end - e->start, -1);
			if (!(e->flags & PEND_ZERO))
				e->src += end - e->start;
			e->start = end;
			break;
		} else {
			account(p, e, e->end - e->start, -1);
			remove_at(p, i); /* the next extent is at i now */
		}
	}
	return 0;
}

int pending_move(struct pending *p, uint64_t from, uint64_t to, uint64_t len)
{
	if (!len || from == to)
		return 0;
	uint64_t end = from + len;
	size_t i = first_above(p, from), n = 0;

	while (i + n < p->n && p->v[i + n].start < end)
		n++;
	struct pend_extent *moved = n ? malloc(n * sizeof(*moved)) : NULL;
	if (n && !moved)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		struct pend_extent cut;
		clip(&p->v[i + k], from, end - from, &cut);
		if (cut.end > end)
			cut.end = end;
		cut.start = to + (cut.start - from);
		cut.end = to + (cut.end - from);
		moved[k] = cut;
	}
	/* The old range is gone, and whatever was pending at the destination was unmapped. */
	int rc = pending_remove(p, from, end);
	if (!rc)
		rc = pending_remove(p, to, to + len);
	for (size_t k = 0; !rc && k < n; k++)
		rc = insert_sorted(p, &moved[k]);
	free(moved);
	return rc;
}

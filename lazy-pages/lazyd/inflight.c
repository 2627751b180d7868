/*
 * The background reads in flight (struct pf_slot, lazyd.h): which of their runs covers an
 * address range of a task, or a range of its image's data for a fork relative. The drain
 * asks so as not to ask twice, the fault path so as to wait rather than fetch. And a
 * fault's own read, queued on the source's fault path in a slot of its own (collected with
 * the stream's, stream.c).
 */
#include <errno.h>
#include <string.h>

#include "lazyd.h"

const struct pf_run *pf_slot_run(const struct pf_slot *sl, uint64_t start, uint64_t end)
{
	if (!sl->used || start >= sl->end || sl->start >= end)
		return NULL;
	for (unsigned i = 0; i < sl->nrun; i++)
		if (start < sl->run[i].start + sl->run[i].len && sl->run[i].start < end)
			return &sl->run[i];
	return NULL;
}

const struct pf_run *pf_relative_run(const struct lazyd *d, const struct lz_task *t, uint64_t src,
				     uint64_t len)
{
	const struct pf_run *hit = NULL;

	for (unsigned k = 0; k < LAZYD_PF_SLOTS; k++) {
		const struct pf_slot *sl = &d->pf[k];
		if (!sl->used || sl->t == t || sl->t->img != t->img || src >= sl->src + sl->len ||
		    sl->src >= src + len)
			continue;
		for (unsigned i = 0; i < sl->nrun; i++) {
			const struct pf_run *pr = &sl->run[i];
			if (src < pr->src + pr->len && pr->src < src + len &&
			    (!hit || pr->src < hit->src))
				hit = pr;
		}
	}
	return hit;
}

int lazyd_fault_read(struct lazyd *d, struct lz_task *t, const struct pend_extent *r)
{
	struct src_range rg = {r->src, r->end - r->start};
	unsigned slot = 0;

	if (d->pf_fault >= LAZYD_FAULT_READS)
		return -EBUSY;
	while (slot < LAZYD_PF_SLOTS - 1 && d->pf[slot].used)
		slot++;
	if (d->pf[slot].used)
		return -EBUSY;
	int rc = d->src.ops->faultv(&d->src, t->img, &rg, 1, slot);
	if (rc == -EBUSY)
		return rc;
	if (rc) {
		lazyd_task_fail(d, t, "cannot ask the page source for 0x%lx: %s",
				(unsigned long)r->start, strerror(-rc));
		return rc;
	}
	d->pf[slot] = (struct pf_slot){.t = t,
				       .start = r->start,
				       .end = r->end,
				       .src = r->src,
				       .len = rg.len,
				       .run = {{r->start, r->src, rg.len}},
				       .nrun = 1,
				       .used = true,
				       .fault = true};
	d->pf_used++;
	d->pf_fault++;
	t->inflight++;
	return 0;
}

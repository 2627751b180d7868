/*
 * The background reads in flight (struct pf_slot, lazyd.h): which of their runs covers an
 * address range of a task, or a range of its image's data for a fork relative. The drain
 * asks so as not to ask twice (a relative's fill job too), the fault path so as to wait
 * rather than fetch. And a fault's own read, queued on the source's fault path in a slot
 * of its own (collected with the stream's, stream.c).
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

bool pf_relative_held(const struct lazyd *d, const struct lz_task *t, uint64_t src, uint64_t len,
		      struct pf_run *out)
{
	const struct pf_run *rel = pf_relative_run(d, t, src, len);
	bool hit = rel != NULL;

	if (hit)
		*out = *rel;
	/* A relative's stream job holds its data until it settles; a fork since it was planned
	 * has it kept then (pfill.c), where this task's stream finds it. */
	for (unsigned k = 0; k < d->jobs_max; k++) {
		const struct lz_job *jb = &d->job[k];
		if (!jb->t || jb->t == t || jb->t->img != t->img || jb->hold < 0)
			continue;
		for (uint32_t i = 0; i < jb->j.n; i++) {
			const struct pend_extent *r = &jb->run[i];
			uint64_t n = r->end - r->start;
			if (src < r->src + n && r->src < src + len && (!hit || r->src < out->src)) {
				*out = (struct pf_run){r->start, r->src, n};
				hit = true;
			}
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

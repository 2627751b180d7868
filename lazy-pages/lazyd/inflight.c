/*
 * The background reads in flight (struct pf_slot, lazyd.h): which of their runs covers an
 * address range of a task, or a range of its image's data for a fork relative. The drain
 * asks so as not to ask twice, the fault path so as to wait rather than fetch.
 */
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

/*
 * Batches and jobs being gathered (gather.h): the runs a drain step or a read's data
 * installs together, or hands to the fill threads as one job.
 */
#include "gather.h"

#define PAGE IMG_PAGE_SIZE
#define JOB_BYTES (2u << 20) /* a fill thread's job, at least */

bool lazyd_drainable(const struct lz_task *t)
{
	return !t->gone && !t->killed && !t->exit_seen && t->pend.data_pages;
}

/* What a batch or a job may gather: a job is larger, so that the loop's work per job (plan,
 * settle, wake a thread) is small against the thread's (2 MB: 1.8x with two threads,
 * 512 kB: 1.6x). */
uint64_t gather_budget(const struct lazyd *d, bool job)
{
	return job && d->buf_len < JOB_BYTES ? JOB_BYTES : d->buf_len;
}

/* What g gathered: to the fill threads (a job), or installed here. */
void gather_flush(struct lazyd *d, struct lz_task *t, struct gather *g)
{
	if (g->n && g->job)
		lazyd_pfill_submit(d, t, g->runs, g->data, g->n, g->path, g->hold);
	else if (g->n && !t->gone && !t->killed)
		lazyd_install_batch(d, t, g->runs, g->data, g->n, g->path);
	g->n = 0;
}

/* false: a job is full (r not taken). */
bool gather_add(struct lazyd *d, struct lz_task *t, struct gather *g, const struct pend_extent *r,
		const void *data)
{
	if (g->job && g->n == FILL_JOB_MAX)
		return false;
	if (!g->job && g->n == LAZYD_BATCH_MAX)
		gather_flush(d, t, g);
	g->runs[g->n] = *r;
	g->data[g->n++] = data;
	return true;
}

/*
 * The zero runs pending right after a run of data (at most PF_GAP_PAGES, up to the next
 * data): pages the task never wrote, between the runs of a read or of a drain step.
 * Installed with the data, they save the task a fault each as it reads on; a long stretch
 * of untouched memory is left alone (not worth page tables).
 */
void gather_zero_after(struct lazyd *d, struct lz_task *t, struct gather *g, uint64_t from)
{
	uint64_t to = from + PF_GAP_PAGES * PAGE;
	struct pend_extent z;

	for (uint64_t at = from; at < to;) {
		if (!pending_next(&t->pend, at, to - at, false, &z) || z.start < at ||
		    z.start >= to || !(z.flags & PEND_ZERO))
			return;
		if (z.end > to)
			z.end = to;
		if ((g->job && lazyd_job_run(d, t, z.start, z.end)) ||
		    !gather_add(d, t, g, &z, NULL))
			return;
		at = z.end;
	}
}

/*
 * The background stream: what no task asked for yet, installed between faults. With a
 * source that pipelines (criu-imgd), a window of reads is kept in flight on the source's
 * own path (stream.c); otherwise one run is read and installed per step, here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gather.h"

#define PAGE IMG_PAGE_SIZE

/* Run r's data where the source maps it (local images), or NULL: it must be read. */
static const void *mapped(struct lazyd *d, const struct lz_task *t, const struct pend_extent *r)
{
	return d->src.ops->map ? d->src.ops->map(&d->src, t->img, r->src, r->end - r->start) : NULL;
}

/*
 * One chunk of t's working-set replay (workset.c), in the order the record has it: the
 * pending runs of its next entries, as one batch when the source maps its data, else the
 * next run alone. false when the replay is done.
 */
static bool replay_runs(struct lazyd *d, struct lz_task *t, bool job)
{
	struct gather g = {.n = 0, .path = PATH_REPLAY, .job = job, .hold = -1};
	uint64_t budget = gather_budget(d, job);
	uint32_t max = job ? FILL_JOB_MAX : LAZYD_BATCH_MAX;
	struct pend_extent r;

	for (unsigned guard = 0;
	     guard < 4 * FILL_JOB_MAX && g.n < max && budget && lazyd_ws_next(t, budget, &r);
	     guard++) {
		const struct pend_extent *hit = job ? lazyd_job_run(d, t, r.start, r.end) : NULL;
		if (hit && hit->start <= r.start)
			continue; /* a job of the replay's brings it already */
		if (hit)
			r.end = hit->start;
		const void *p = NULL;
		if (!(r.flags & PEND_ZERO)) {
			p = mapped(d, t, &r);
			if (!p) {
				gather_flush(d, t, &g);
				if (r.end - r.start > d->buf_len) /* read into d->buf */
					r.end = r.start + d->buf_len;
				if (!t->gone && !t->killed && !lazyd_job_run(d, t, r.start, r.end))
					lazyd_install_run(d, t, r, PATH_REPLAY, NULL);
				return true;
			}
		}
		gather_add(d, t, &g, &r, p);
		budget -= r.end - r.start;
	}
	bool any = g.n > 0;
	gather_flush(d, t, &g);
	return any;
}

/*
 * One chunk (--drain-chunk pages) of t from its cursor on. With a source whose data can be
 * mapped, the chunk may span several runs (with pages the task faulted in, or zero pages,
 * between them: the short zero gaps go in with it) and goes in as one batch, or to the fill
 * threads as one job (planned around the jobs in flight); otherwise it is the first run,
 * read and installed alone. false when nothing was left to take.
 */
static bool drain_runs(struct lazyd *d, struct lz_task *t, bool job)
{
	struct gather g = {.n = 0, .path = PATH_DRAIN, .job = job, .hold = -1};
	uint64_t budget = gather_budget(d, job);
	uint64_t from = t->cursor;
	unsigned nrun = 0, skips = 0;

	while (nrun < PF_RUNS && budget) {
		struct pend_extent r;
		if (!pending_next(&t->pend, from, budget, true, &r) || (nrun && r.start < from))
			break;
		const struct pend_extent *hit = job ? lazyd_job_run(d, t, r.start, r.end) : NULL;
		if (hit && hit->start <= r.start) {
			/* In flight: the job goes up to there, or starts after it. */
			if (nrun || ++skips > LAZYD_MAX_JOBS)
				break;
			from = hit->end;
			continue;
		}
		if (hit)
			r.end = hit->start;
		const void *p = mapped(d, t, &r);
		if (nrun && !p)
			break;
		if (job && !p) { /* not mapped after all: read into d->buf, installed here */
			if (r.end - r.start > d->buf_len)
				r.end = r.start + d->buf_len;
			t->cursor = r.end;
			lazyd_install_run(d, t, r, PATH_DRAIN, NULL);
			return true;
		}
		if (!gather_add(d, t, &g, &r, p))
			break;
		if (p)
			gather_zero_after(d, t, &g, r.end);
		nrun++;
		budget -= r.end - r.start;
		from = t->cursor = r.end;
		if (!p)
			break; /* one run, read and installed alone */
	}
	if (job) {
		bool any = g.n > 0;
		gather_flush(d, t, &g);
		return any;
	}
	if (g.n == 1 && !(g.runs[0].flags & PEND_ZERO)) {
		/* One run, read (or mapped) by the install; then the zero pages after it. */
		uint64_t end = g.runs[0].end;
		lazyd_install_run(d, t, g.runs[0], PATH_DRAIN, NULL);
		struct gather z = {.n = 0, .path = PATH_DRAIN};
		if (!t->gone && !t->killed && !t->need_events)
			gather_zero_after(d, t, &z, end);
		gather_flush(d, t, &z);
		return true;
	}
	bool any = g.n > 0;
	gather_flush(d, t, &g);
	return any;
}

/*
 * With fill threads: jobs for the tasks, round robin, while there is room for more; a task
 * that replays its working set, or that the threads cannot take, gets a step of the loop's
 * own. When nothing more can be planned (all that is pending is in flight, or no room) the
 * loop waits for the threads (pfill.c's callback).
 */
static bool drain_parallel(struct lazyd *d)
{
	bool any = false, work = false;

	for (unsigned pass = 0; pass < LAZYD_MAX_JOBS && d->jobs_used < d->jobs_max; pass++) {
		bool progress = false;
		for (struct lz_task *t = d->tasks; t && d->jobs_used < d->jobs_max; t = t->next) {
			if (!lazyd_drainable(t) || t->need_events)
				continue;
			work = true;
			/* The replay first, as jobs too: faults on its pages wait for a thread's
			 * install, never for the loop's. */
			bool fit = lazyd_pfill_can(d, t);
			if (t->ws && (fit || (!pass && !t->jobs)) && replay_runs(d, t, fit))
				progress = true;
			else if (fit)
				progress |= drain_runs(d, t, true);
			else if (!pass && !t->jobs)
				progress |= drain_runs(d, t, false);
		}
		any |= progress;
		if (!progress)
			break;
	}
	d->drain_blocked = !any && d->jobs_used;
	return work || d->jobs_used;
}

bool lazyd_drain_step(struct lazyd *d)
{
	if (d->src.ops->prefetch)
		return lazyd_stream_step(d);
	if (d->pool)
		return drain_parallel(d);

	struct lz_task *t = d->drain_at ? d->drain_at : d->tasks;
	struct lz_task *first = t;

	if (!t)
		return false;
	/* Round robin over the tasks that still have data pending. */
	while (!lazyd_drainable(t) || t->need_events) {
		t = t->next ? t->next : d->tasks;
		if (t == first)
			return false;
	}
	d->drain_at = t->next;
	if (!t->ws || !replay_runs(d, t, false))
		drain_runs(d, t, false);
	return true;
}

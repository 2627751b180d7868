/*
 * The background stream: what no task asked for yet, installed between faults. With a
 * source that pipelines (criu-imgd), a window of reads is kept in flight on the source's
 * own path; otherwise one run is read and installed per step.
 */
#include <errno.h>
#include <string.h>

#include "lazyd.h"

#define PAGE IMG_PAGE_SIZE
#define PREFETCH_CHUNKS_PER_STEP 1

static bool drainable(const struct lz_task *t)
{
	return !t->gone && !t->killed && !t->exit_seen && t->pend.data_pages;
}

/* Install what a background read brought, where its pages are still pending: one batch. */
static void install_chunk(struct lazyd *d, const struct pf_slot *sl, const struct src_chunk *ch)
{
	struct lz_task *t = sl->t;
	uint64_t base = sl->start + (ch->src - sl->src);
	struct pend_extent runs[LAZYD_BATCH_MAX];
	const void *data[LAZYD_BATCH_MAX];
	uint32_t n = 0;

	for (uint32_t i = 0; i < ch->n && n < LAZYD_BATCH_MAX;) {
		uint64_t addr = base + (uint64_t)i * PAGE, off = ch->src + (uint64_t)i * PAGE;
		struct pend_extent r;
		/* Installed by a fault meanwhile, moved or dropped: not this data's to fill. */
		if (!pending_run_at(&t->pend, addr, (uint64_t)(ch->n - i) * PAGE, &r) ||
		    (r.flags & PEND_ZERO) || r.src != off) {
			i++;
			continue;
		}
		runs[n] = r;
		data[n++] = (const char *)ch->data + (size_t)i * PAGE;
		i += (uint32_t)((r.end - r.start) / PAGE);
	}
	if (n && !t->gone && !t->killed)
		lazyd_install_batch(d, t, runs, data, n, PATH_DRAIN);
	lazyd_share_fetched(d, t, base, ch->src, ch->data, (uint64_t)ch->n * PAGE);
}

static void collect_chunks(struct lazyd *d)
{
	struct src_chunk ch;

	/*
	 * One chunk (at most 32 pages) a step: the event loop serves faults between steps, so
	 * a fault waits for one chunk's install at most, never for a batch of them.
	 */
	for (int i = 0; i < PREFETCH_CHUNKS_PER_STEP && d->pf_used; i++) {
		int rc = d->src.ops->collect(&d->src, &ch);
		if (rc == 0)
			return;
		struct pf_slot *sl = &d->pf[ch.tag];
		if (rc < 0 && !sl->t->gone)
			lazyd_task_fail(d, sl->t,
					"cannot read page data for 0x%lx (%lu pages) from the page "
					"source: %s",
					(unsigned long)sl->start, (unsigned long)(sl->len / PAGE),
					strerror(-rc));
		else if (rc > 0 && !sl->t->gone)
			install_chunk(d, sl, &ch);
		if (ch.last) {
			sl->used = false;
			sl->t->inflight--;
			d->pf_used--;
		}
	}
}

/* The reads in flight for t: the first that overlaps [start, end), lowest address first. */
static const struct pf_slot *inflight_at(const struct lazyd *d, const struct lz_task *t,
					 uint64_t start, uint64_t end)
{
	const struct pf_slot *hit = NULL;

	for (unsigned k = 0; k < LAZYD_MAX_PREFETCH; k++) {
		const struct pf_slot *sl = &d->pf[k];
		if (sl->used && sl->t == t && start < sl->start + sl->len && sl->start < end &&
		    (!hit || sl->start < hit->start))
			hit = sl;
	}
	return hit;
}

/* Queue one background read for t; false if t has nothing (more) to ask for now. */
static bool submit_one(struct lazyd *d, struct lz_task *t)
{
	struct pend_extent r;
	unsigned slot = 0;

	if (!drainable(t) || t->need_events)
		return false;
	/*
	 * Never ask again for what is in flight. A fault moves the cursor back to where the
	 * task touches, often behind reads already asked for: skip those.
	 */
	uint64_t from = t->cursor;
	for (unsigned guard = 0;; guard++) {
		if (guard > LAZYD_MAX_PREFETCH ||
		    !pending_next(&t->pend, from, d->buf_len, true, &r))
			return false;
		/* Wrapped around onto data that may be in flight: wait for it first. */
		if (r.start < from && t->inflight)
			return false;
		const struct pf_slot *hit = inflight_at(d, t, r.start, r.end);
		if (!hit)
			break;
		if (hit->start > r.start) {
			r.end = hit->start; /* the part before the read in flight */
			break;
		}
		from = hit->start + hit->len;
	}
	while (d->pf[slot].used)
		slot++;
	int rc = d->src.ops->prefetch(&d->src, t->img, r.src, r.end - r.start, slot);
	if (rc == -EBUSY)
		return false;
	if (rc) {
		lazyd_task_fail(d, t, "cannot ask the page source for 0x%lx: %s",
				(unsigned long)r.start, strerror(-rc));
		return false;
	}
	d->pf[slot] = (struct pf_slot){t, r.start, r.src, r.end - r.start, true};
	d->pf_used++;
	t->inflight++;
	t->cursor = r.end;
	return true;
}

static void on_source(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct lazyd *d = data;

	(void)l;
	(void)fd;
	(void)events;
	d->drain_blocked = false; /* background data arrived: the next drain step takes it */
}

/* The pipelined drain: collect what arrived, then fill the window again, round robin. */
static bool drain_async(struct lazyd *d)
{
	unsigned window = d->o->prefetch_window;
	bool any = false;

	if (window > LAZYD_MAX_PREFETCH)
		window = LAZYD_MAX_PREFETCH;
	collect_chunks(d);
	for (unsigned pass = 0; pass < window && d->pf_used < window; pass++) {
		bool progress = false;
		for (struct lz_task *t = d->tasks; t && d->pf_used < window; t = t->next)
			progress |= submit_one(d, t);
		any |= progress;
		if (!progress)
			break;
	}
	int fd = d->src.ops->poll_fd(&d->src);
	/* The bulk connection may be new since the last step: (re)register it. */
	if (d->pf_used && fd >= 0 && ev_add(d->loop, fd, EV_READ, on_source, d))
		pr_warn("event loop: cannot watch the page source's connection");
	/* Nothing could be asked for and reads are out: sleep until they arrive, or until the
	 * source tries its connection again. */
	d->drain_blocked = !any && d->pf_used && fd >= 0;
	if (!any && d->pf_used && fd < 0)
		lazyd_source_backoff(d, false);
	for (struct lz_task *t = d->tasks; t; t = t->next)
		if (drainable(t))
			return true;
	return d->pf_used > 0;
}

/*
 * One chunk (--drain-chunk pages) of t from its cursor on. With an engine that takes
 * batches and a source whose data can be mapped, the chunk may span several runs (with
 * pages the task faulted in, or zero pages, between them) and goes in as one batch;
 * otherwise it is the first run, read and installed alone.
 */
static void drain_runs(struct lazyd *d, struct lz_task *t)
{
	struct pend_extent runs[LAZYD_BATCH_MAX];
	const void *data[LAZYD_BATCH_MAX];
	uint64_t budget = d->buf_len, from = t->cursor;
	bool batch = d->src.ops->map && lazyd_can_batch(d, t);
	uint32_t n = 0;

	while (n < LAZYD_BATCH_MAX && budget) {
		struct pend_extent r;
		if (!pending_next(&t->pend, from, budget, true, &r) || (n && r.start < from))
			break;
		const void *p =
		    batch ? d->src.ops->map(&d->src, t->img, r.src, r.end - r.start) : NULL;
		if (n && !p)
			break;
		runs[n] = r;
		data[n++] = p;
		budget -= r.end - r.start;
		from = t->cursor = r.end;
		if (!p)
			break; /* one run, read (or mapped) and installed alone */
	}
	if (n == 1)
		lazyd_install_run(d, t, runs[0], PATH_DRAIN, NULL);
	else if (n)
		lazyd_install_batch(d, t, runs, data, n, PATH_DRAIN);
}

bool lazyd_drain_step(struct lazyd *d)
{
	if (d->src.ops->prefetch)
		return drain_async(d);

	struct lz_task *t = d->drain_at ? d->drain_at : d->tasks;
	struct lz_task *first = t;

	if (!t)
		return false;
	/* Round robin over the tasks that still have data pending. */
	while (!drainable(t) || t->need_events) {
		t = t->next ? t->next : d->tasks;
		if (t == first)
			return false;
	}
	d->drain_at = t->next;
	drain_runs(d, t);
	return true;
}

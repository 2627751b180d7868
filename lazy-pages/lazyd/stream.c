/*
 * The pipelined stream from a source that queues reads (criu-imgd): a window of background
 * reads kept in flight on the source's own path, what they bring installed between faults;
 * and the faults' own reads on the source's fault path (faultv), which the faults wait for
 * as they wait for the stream's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gather.h"
#include "util/clock.h"
#include "util/log.h"

#define PAGE IMG_PAGE_SIZE
#define PREFETCH_CHUNKS_PER_STEP 1

/* The part [*s0, *s1) of run pr's data that chunk ch brought; false if none. */
static bool run_in_chunk(const struct pf_run *pr, const struct src_chunk *ch, uint64_t *s0,
			 uint64_t *s1)
{
	uint64_t ch_end = ch->src + (uint64_t)ch->n * PAGE;

	*s0 = pr->src > ch->src ? pr->src : ch->src;
	*s1 = pr->src + pr->len < ch_end ? pr->src + pr->len : ch_end;
	return *s0 < *s1;
}

/* Add run r to g; a job that is full is handed over, and the rest of the chunk installed
 * here (the job holds the data's buffer until it is settled, after this). */
static void add_run(struct lazyd *d, struct lz_task *t, struct gather *g,
		    const struct pend_extent *r, const void *data)
{
	if (gather_add(d, t, g, r, data))
		return;
	gather_flush(d, t, g);
	g->job = false;
	g->hold = -1;
	gather_add(d, t, g, r, data);
}

/*
 * What a read brought, for sl's task's fork relatives (installed where they have it pending
 * at the same address, or kept for them): also when that task is gone, since a relative's
 * stream did not ask for what this read was bringing.
 */
static void share_chunk(struct lazyd *d, const struct pf_slot *sl, const struct src_chunk *ch)
{
	uint64_t s0, s1;

	for (unsigned k = 0; k < sl->nrun; k++) {
		const struct pf_run *pr = &sl->run[k];
		if (run_in_chunk(pr, ch, &s0, &s1))
			lazyd_share_fetched(d, sl->t, pr->start + (s0 - pr->src), s0,
					    (const char *)ch->data + (s0 - ch->src), s1 - s0);
	}
}

/*
 * Install what a background read brought, where its pages are still pending (installed
 * by a fault meanwhile, moved or dropped: not this data's to fill), with the zero pages
 * between its runs: as few batches as the runs allow.
 */
static void install_chunk(struct lazyd *d, const struct pf_slot *sl, const struct src_chunk *ch)
{
	struct lz_task *t = sl->t;
	struct gather g = {.n = 0,
			   .path = sl->fault	? PATH_FAULT
				   : sl->replay ? PATH_REPLAY
						: PATH_DRAIN,
			   .hold = -1};
	uint64_t s0, s1;

	/* The stream's data goes to the fill threads (pfill.c), its buffer held until the
	 * job is settled, while the loop receives on; a fault's is installed at once. */
	if (!sl->fault && d->src.ops->hold && lazyd_pfill_can(d, t) && d->jobs_used < d->jobs_max) {
		g.hold = d->src.ops->hold(&d->src, ch);
		g.job = g.hold >= 0;
	}

	for (unsigned k = 0; k < sl->nrun && !t->gone && !t->killed; k++) {
		const struct pf_run *pr = &sl->run[k];
		if (!run_in_chunk(pr, ch, &s0, &s1))
			continue;
		uint64_t base = pr->start + (s0 - pr->src);
		for (uint64_t at = base, off = s0; off < s1;) {
			struct pend_extent r;
			if (!pending_run_at(&t->pend, at, s1 - off, &r) || (r.flags & PEND_ZERO) ||
			    r.src != off) {
				at += PAGE;
				off += PAGE;
				continue;
			}
			add_run(d, t, &g, &r, (const char *)ch->data + (off - ch->src));
			off += r.end - r.start;
			at = r.end;
		}
		if (s1 == pr->src + pr->len) /* the run is complete: the zero pages after it */
			gather_zero_after(d, t, &g, pr->start + pr->len);
	}
	int unused = g.job && !g.n ? g.hold : -1; /* nothing of it was pending any more */
	gather_flush(d, t, &g);
	/* The address space changed under the install (a fork under way): what did not go in
	 * is wanted again once the events are read, here or in the new child (a job's data:
	 * pfill.c keeps it when it is settled). */
	if (!g.job && t->need_events && !t->gone && !t->killed)
		lazyd_keep_fetched(d, t, ch->src, ch->data, (uint64_t)ch->n * PAGE);
	share_chunk(d, sl, ch);
	if (unused >= 0)
		d->src.ops->release(&d->src, unused);
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
		if (rc > 0)
			lazyd_rx_note(d, ch.t, ch.src, ch.n);
		if (rc < 0 && !sl->t->gone)
			lazyd_task_fail(d, sl->t,
					"cannot read page data for 0x%lx (%lu pages) from the page "
					"source: %s",
					(unsigned long)sl->start, (unsigned long)(sl->len / PAGE),
					strerror(-rc));
		else if (rc > 0 && !sl->t->gone)
			install_chunk(d, sl, &ch);
		else if (rc > 0)
			share_chunk(d, sl, &ch);
		if (rc > 0 && !sl->fault)
			sw_data(&d->sw, &sl->sw, (uint64_t)ch.n * PAGE, mono_ns());
		if (ch.last && !sl->fault) {
			uint64_t now = mono_ns();
			sw_done(&d->sw, &sl->sw, now);
			pr_debug(
			    "stream: %lu of %lu bytes at 0x%lx in %lu us; window %lu, queue "
			    "%lu us over %lu",
			    (unsigned long)sl->sw.got, (unsigned long)sl->sw.bytes,
			    (unsigned long)sl->start, (unsigned long)(now - sl->sw.sent_ns) / 1000,
			    (unsigned long)sw_window(&d->sw), (unsigned long)d->sw.qdelay / 1000,
			    (unsigned long)d->sw.base / 1000);
		}
		if (ch.last) {
			sl->used = false;
			sl->t->inflight--;
			d->pf_used--;
			if (sl->fault) {
				d->pf_fault--;
				sl->t->nwaiting = 0; /* its faults: served again, and done */
			}
		}
	}
}

/* The run in flight for t that overlaps [start, end) lowest, or NULL. */
static const struct pf_run *inflight_at(const struct lazyd *d, const struct lz_task *t,
					uint64_t start, uint64_t end)
{
	const struct pf_run *hit = NULL;

	for (unsigned k = 0; k < LAZYD_PF_SLOTS; k++) {
		const struct pf_slot *sl = &d->pf[k];
		if (sl->t != t)
			continue;
		const struct pf_run *pr = pf_slot_run(sl, start, end);
		if (pr && (!hit || pr->start < hit->start))
			hit = pr;
	}
	return hit;
}

/* The same, and the runs of t's fill jobs (data that came, a thread installs it): the
 * lowest of what is on its way in [start, end), into *out; false if nothing is. */
static bool busy_at(const struct lazyd *d, const struct lz_task *t, uint64_t start, uint64_t end,
		    struct pf_run *out)
{
	const struct pf_run *hit = inflight_at(d, t, start, end);
	const struct pend_extent *job = lazyd_job_run(d, t, start, end);

	if (job && (!hit || job->start < hit->start)) {
		*out = (struct pf_run){job->start, job->src, job->end - job->start};
		return true;
	}
	if (hit)
		*out = *hit;
	return hit != NULL;
}

/*
 * The first run t may ask for from its cursor: never what is in flight already. A fault
 * moves the cursor back to where the task touches, often behind reads asked for: those are
 * skipped. false if there is nothing to ask for now.
 */
static bool first_run(const struct lazyd *d, const struct lz_task *t, uint64_t max,
		      struct pend_extent *r)
{
	uint64_t from = t->cursor;

	for (unsigned guard = 0; guard <= LAZYD_MAX_PREFETCH * PF_RUNS; guard++) {
		if (!pending_next(&t->pend, from, max, true, r))
			return false;
		/* Wrapped around onto data that may be in flight: wait for it first. */
		if (r->start < from && t->inflight)
			return false;
		/* A relative's read brings this data (a fork child's copy, perhaps moved since):
		 * it is shared or kept for us when it arrives, not read twice. */
		struct pf_run rel;
		bool held = pf_relative_held(d, t, r->src, r->end - r->start, &rel);
		if (held && rel.src > r->src)
			r->end = r->start + (rel.src - r->src);
		else if (held) {
			from = r->start + (rel.src + rel.len - r->src);
			if (from >= r->end)
				from = r->end;
			continue;
		}
		struct pf_run hit;
		if (!busy_at(d, t, r->start, r->end, &hit))
			return true;
		if (hit.start > r->start) {
			r->end = hit.start; /* the part before the read in flight */
			return true;
		}
		from = hit.start + hit.len;
	}
	return false;
}

/*
 * A background read for t: its first run, then the runs after it whose data follows in
 * the pages file, up to max bytes, while the gaps between them are short and nothing of
 * them is in flight.
 */
static bool gather_read(const struct lazyd *d, const struct lz_task *t, uint64_t max,
			struct pf_slot *sl)
{
	struct pend_extent r;
	struct pf_run busy;

	if (!first_run(d, t, max, &r))
		return false;
	*sl = (struct pf_slot){
	    .t = (struct lz_task *)t, .start = r.start, .src = r.src, .used = true};
	for (;;) {
		sl->run[sl->nrun++] = (struct pf_run){r.start, r.src, r.end - r.start};
		sl->len += r.end - r.start;
		sl->end = r.end;
		if (sl->nrun == PF_RUNS || sl->len >= max ||
		    !pending_next(&t->pend, r.end, max - sl->len, true, &r) || r.start < sl->end ||
		    r.start - sl->end > PF_GAP_PAGES * PAGE || r.src != sl->src + sl->len ||
		    busy_at(d, t, r.start, r.end, &busy))
			return true;
	}
}

/* Whether run r overlaps one of sl's. */
static bool slot_has(const struct pf_slot *sl, const struct pend_extent *r)
{
	for (unsigned k = 0; k < sl->nrun; k++)
		if (r->start < sl->run[k].start + sl->run[k].len && sl->run[k].start < r->end)
			return true;
	return false;
}

static int by_start(const void *a, const void *b)
{
	const struct pf_run *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * The next runs of t's working-set replay that are not in flight (workset.c), in the
 * record's order, as one read: a working set's touches are scattered, so with a source
 * that takes many ranges in one request (prefetchv) a read asks for up to PF_RUNS of them
 * (at most --drain-chunk pages), else for one. The slot holds them by address. Zero runs
 * and data a relative fetched go in at once. false when there is nothing to ask for.
 */
static bool replay_read(struct lazyd *d, struct lz_task *t, struct pf_slot *sl)
{
	unsigned max = d->src.ops->prefetchv ? PF_RUNS : 1;
	uint64_t bytes = 0;
	struct pend_extent r;

	*sl = (struct pf_slot){.t = t, .used = true, .replay = true};
	for (unsigned guard = 0; guard < LAZYD_BATCH_MAX + max && sl->nrun < max; guard++) {
		if (bytes >= d->buf_len || t->need_events ||
		    !lazyd_ws_next(t, d->buf_len - bytes, &r))
			break;
		if (r.flags & PEND_ZERO) {
			lazyd_install_run(d, t, r, PATH_REPLAY, NULL);
			continue;
		}
		struct pf_run rel;
		if (pf_relative_held(d, t, r.src, r.end - r.start, &rel))
			continue; /* shared or kept for t when it comes */
		struct pf_run hit;
		bool busy = busy_at(d, t, r.start, r.end, &hit);
		if ((busy && hit.start <= r.start) || slot_has(sl, &r))
			continue; /* on its way already */
		if (busy)
			r.end = hit.start;
		if (lazyd_shared_hit(d, t, &r)) {
			lazyd_install_run(d, t, r, PATH_REPLAY, d->buf);
			continue;
		}
		sl->run[sl->nrun++] = (struct pf_run){r.start, r.src, r.end - r.start};
		bytes += r.end - r.start;
	}
	if (!sl->nrun)
		return false;
	qsort(sl->run, sl->nrun, sizeof(sl->run[0]), by_start);
	uint64_t src_end = 0;
	sl->start = sl->run[0].start;
	sl->src = UINT64_MAX;
	for (unsigned k = 0; k < sl->nrun; k++) {
		const struct pf_run *pr = &sl->run[k];
		if (pr->start + pr->len > sl->end)
			sl->end = pr->start + pr->len;
		if (pr->src < sl->src)
			sl->src = pr->src;
		if (pr->src + pr->len > src_end)
			src_end = pr->src + pr->len;
	}
	sl->len = src_end - sl->src; /* the span: the quick test of pf_relative_run() */
	return true;
}

/* Ask the source for slot sl's data (tag slot): its runs as ranges of one request. */
static int ask(struct lazyd *d, const struct pf_slot *sl, unsigned slot)
{
	struct src_range rg[PF_RUNS];

	if (!sl->replay || sl->nrun == 1)
		return d->src.ops->prefetch(&d->src, sl->t->img, sl->src, sl->len, slot);
	for (unsigned k = 0; k < sl->nrun; k++)
		rg[k] = (struct src_range){sl->run[k].src, sl->run[k].len};
	return d->src.ops->prefetchv(&d->src, sl->t->img, rg, sl->nrun, slot);
}

/* Queue one background read for t of at most max bytes (a replay's: --drain-chunk pages);
 * false if t has nothing (more) to ask for now. */
static bool submit_one(struct lazyd *d, struct lz_task *t, uint64_t max)
{
	struct pf_slot sl;
	unsigned slot = 0;

	if (!lazyd_drainable(t) || t->need_events)
		return false;
	bool replay = t->ws && replay_read(d, t, &sl);
	if (!replay && !gather_read(d, t, max, &sl))
		return false;
	/* A relative fetched its first run already (share_cache.h): from there, no read (the
	 * replay looked at each of its runs). */
	struct pend_extent r0 = {sl.run[0].start, sl.run[0].start + sl.run[0].len, sl.run[0].src,
				 0};
	if (!replay && lazyd_shared_hit(d, t, &r0)) {
		t->cursor = r0.end;
		lazyd_install_run(d, t, r0, PATH_DRAIN, d->buf);
		return true;
	}
	while (slot < LAZYD_PF_SLOTS - 1 && d->pf[slot].used)
		slot++;
	if (d->pf[slot].used)
		return false;
	/* Stamped before the ask: a wait after it (another process took the CPU) must not
	 * shorten the round trip measured. */
	uint64_t asked = mono_ns();
	int rc = ask(d, &sl, slot);
	if (rc == -EBUSY)
		return false;
	if (rc) {
		lazyd_task_fail(d, t, "cannot ask the page source for 0x%lx: %s",
				(unsigned long)sl.start, strerror(-rc));
		return false;
	}
	uint64_t bytes = 0;
	for (unsigned k = 0; k < sl.nrun; k++)
		bytes += sl.run[k].len;
	sw_sent(&d->sw, &sl.sw, asked, bytes);
	d->pf[slot] = sl;
	d->pf_used++;
	d->st.stream_reads++;
	d->st.stream_ranges += replay ? sl.nrun : 1;
	t->inflight++;
	if (!replay)
		t->cursor = sl.end;
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

/* Room in the stream's window for another read: a count of reads, or bytes (auto). */
static bool room(const struct lazyd *d, unsigned window, uint64_t bytes)
{
	return d->pf_used - d->pf_fault < window &&
	       (d->o->prefetch_window || d->sw.inflight < bytes);
}

/* Auto: the reads are paced too; true if the next one must wait. */
static bool paced(const struct lazyd *d)
{
	return !d->o->prefetch_window && sw_pace_wait(&d->sw, mono_ns());
}

/* The pipelined drain: collect what arrived, then fill the window again, round robin. */
bool lazyd_stream_step(struct lazyd *d)
{
	unsigned window = d->o->prefetch_window ? d->o->prefetch_window : LAZYD_MAX_PREFETCH;
	if (!d->o->prefetch_window && d->src.ops->loopback)
		sw_local(&d->sw, d->src.ops->loopback(&d->src));
	uint64_t bytes = sw_window(&d->sw);
	uint64_t max = d->o->prefetch_window ? d->buf_len : sw_read_size(&d->sw, d->buf_len);
	bool any = false;

	/* A working set's reads are small and scattered: more of them in flight, for about
	 * the bytes the stream's window holds. */
	for (struct lz_task *t = d->tasks; t; t = t->next)
		if (t->ws && t->ws_next < t->ws->n && lazyd_drainable(t))
			window = LAZYD_MAX_PREFETCH;
	if (window > LAZYD_MAX_PREFETCH)
		window = LAZYD_MAX_PREFETCH;
	collect_chunks(d);
	/* Faults overtake the stream: with a window of N reads, while a fault's read is out
	 * the stream asks for nothing new, so that its answer queues behind no more of the
	 * stream's data than is on its way already (the link's queue is shared; measured:
	 * docs/benchmarks.md, "Faults off the event loop"). The auto window keeps that queue
	 * near empty itself: the stream goes on. */
	if (d->pf_fault && d->o->prefetch_window)
		window = 0;
	bool idle = window == 0;
	for (unsigned pass = 0; pass < window && room(d, window, bytes) && !paced(d); pass++) {
		bool progress = false;
		for (struct lz_task *t = d->tasks; t && room(d, window, bytes) && !paced(d);
		     t = t->next)
			progress |= submit_one(d, t, max);
		any |= progress;
		if (!progress) {
			idle = true;
			break;
		}
	}
	/* Room left that the stream does not use: what it measures meanwhile is not the path. */
	if (idle)
		sw_idle(&d->sw);
	int fd = d->src.ops->poll_fd(&d->src);
	/* The bulk connection may be new since the last step: (re)register it. */
	if (d->pf_used && fd >= 0 && ev_add(d->loop, fd, EV_READ, on_source, d))
		pr_warn("event loop: cannot watch the page source's connection");
	/* Nothing could be asked for and reads or fill jobs are out: sleep until they arrive or
	 * are done (pfill.c's callback), or until the source tries its connection again. */
	d->drain_blocked = !any && ((d->pf_used && fd >= 0) || d->jobs_used);
	if (!any && d->pf_used && fd < 0)
		lazyd_source_backoff(d, false);
	/* Paced, with room: look again when the next read is due (if no data comes first). */
	bool wanted = false;
	for (struct lz_task *t = d->tasks; t && !wanted; t = t->next)
		wanted = lazyd_drainable(t);
	if (fd >= 0 && wanted && room(d, window, bytes) && paced(d))
		lazyd_source_wake_in_ns(d, sw_pace_wait(&d->sw, mono_ns()), false);
	/* ... and, waiting on the connection, look again when its reads would count as stalled. */
	unsigned stall =
	    d->drain_blocked && d->src.ops->stall_ms ? d->src.ops->stall_ms(&d->src) : 0;
	if (stall)
		lazyd_source_wake_in(d, stall, false);
	return wanted || d->pf_used > 0;
}

void lazyd_fault_reads(struct lazyd *d)
{
	for (int turn = 0; d->pf_fault && turn < 8; turn++) {
		collect_chunks(d);
		if (!d->pf_fault)
			return;
		int fd = d->src.ops->fault_fd(&d->src);
		if (fd >= 0) {
			if (ev_add(d->loop, fd, EV_READ, on_source, d))
				pr_warn(
				    "event loop: cannot watch the page source's fault connection");
			return;
		}
		/* Connecting or backing off: come back then. (-1 with no wait: bytes that TLS
		 * decrypted already, which make no poll event: take them now.) */
		unsigned ms = d->src.ops->wait_ms ? d->src.ops->wait_ms(&d->src) : 1;
		if (ms) {
			lazyd_source_wake_in(d, ms, true);
			return;
		}
	}
	if (d->pf_fault)
		lazyd_source_wake_in(d, 1, true);
}

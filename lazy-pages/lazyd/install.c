/*
 * Installing pending pages, and the fault path.
 *
 * Every install goes through lazyd_install_run(), which keeps the pending set in step with
 * what the kernel did: only bytes the kernel reports as installed leave the set, so a page
 * is never installed twice and never forgotten. An error path never reads the uffd itself
 * (the caller may be walking the task list): it asks for the events to be read first
 * (-EAGAIN, t->need_events) and the caller retries.
 */
#include <errno.h>
#include <string.h>

#include "lazyd.h"
#include "util/clock.h"

#define PAGE IMG_PAGE_SIZE
#define SOURCE_RETRIES 3

static void on_source_ready(struct ev_loop *l, uint64_t id, void *data)
{
	struct lazyd *d = data;

	(void)l;
	(void)id;
	d->src_timer = 0;
	d->faults_wait = false;
	d->drain_blocked = false;
}

void lazyd_source_backoff(struct lazyd *d, bool faults)
{
	lazyd_source_wake_in(d, d->src.ops->wait_ms ? d->src.ops->wait_ms(&d->src) : 0, faults);
}

void lazyd_source_wake_in(struct lazyd *d, unsigned ms, bool faults)
{
	lazyd_source_wake_in_ns(d, ms * 1000000ull, faults);
}

void lazyd_source_wake_in_ns(struct lazyd *d, uint64_t ns, bool faults)
{
	uint64_t at = mono_ns() + ns;

	if (!ns)
		return;
	if (faults)
		d->faults_wait = true;
	else
		d->drain_blocked = true;
	if (d->src_timer && d->src_timer_at <= at)
		return;
	ev_timer_del(d->loop, d->src_timer);
	d->src_timer = ev_timer_add_ns(d->loop, ns, on_source_ready, d);
	d->src_timer_at = at;
	if (!d->src_timer) /* no timer: ask again on the next turn rather than never */
		d->faults_wait = d->drain_blocked = false;
}

/*
 * Read len bytes of data for a run into d->buf. A source that reconnects says -EAGAIN at
 * once (the caller keeps the fault queued and the loop waits, lazyd_source_backoff); for
 * the others -EAGAIN and -EINTR are retried here.
 */
static int fetch(struct lazyd *d, struct lz_task *t, const struct pend_extent *r)
{
	uint64_t len = r->end - r->start;
	int rc = -EIO;

	if (len > d->buf_len) /* a run the callers should have cut: never past the buffer */
		return -E2BIG;

	for (int i = 0; i < SOURCE_RETRIES; i++) {
		rc = d->src.ops->read(&d->src, t->img, r->src, d->buf, len);
		if (!rc && !d->src.ops->map)
			lazyd_rx_note(d, t->img, r->src, len / PAGE);
		if (rc == -EAGAIN && d->src.ops->wait_ms) {
			lazyd_source_backoff(d, true);
			return rc;
		}
		if (rc != -EAGAIN && rc != -EINTR)
			break;
	}
	return rc;
}

int lazyd_installed(struct lazyd *d, struct lz_task *t, const struct pend_extent *r, uint64_t bytes,
		    enum fill_path p)
{
	uint64_t pages = bytes / PAGE;

	if (r->flags & PEND_ZERO) {
		d->st.pages_zero += pages;
		t->cnt.zero += pages;
	} else {
		d->st.bytes_copied += bytes;
		t->cnt.bytes += bytes;
		if (p == PATH_FAULT) {
			d->st.pages_fault += pages;
			t->cnt.fault += pages;
		} else {
			d->st.pages_prefetch += pages;
			t->cnt.prefetch += pages;
			if (p == PATH_REPLAY)
				d->st.ws_replayed += pages;
		}
	}
	if (pending_remove(&t->pend, r->start, r->start + bytes)) {
		lazyd_task_fail(d, t, "out of memory while tracking pending pages");
		return -ENOMEM;
	}
	return 0;
}

void lazyd_found_present(struct lazyd *d, struct lz_task *t, uint64_t at)
{
	uint64_t before = t->pend.data_pages;

	d->st.eexist++;
	pending_remove(&t->pend, at, at + PAGE);
	t->cnt.dropped += before - t->pend.data_pages;
	d->fill.ops->wake(d->fill.ctx, t->uffd, at, PAGE);
}

/*
 * Guard regions the task installed itself after restore (MADV_GUARD_INSTALL sends no
 * userfaultfd event) on pages still pending: UFFDIO_COPY would replace them with the data
 * (the kernel refuses only UFFDIO_ZEROPAGE there). The images' own guards are never
 * pending (images.h). So before copying, look at the task's pagemap: a guard run found is
 * dropped from the pending set and the run r is cut before it. true if r's first page is
 * a guard (nothing to copy). Only for tasks whose images have guards (glibc 2.42+ thread
 * stacks, allocators that use them): the look costs a pagemap read per run (about 2 us for
 * a 16-page fault window, 8 us for a 128-page drain chunk). Best effort: a guard installed
 * between the look and the copy is still replaced; only the kernel could refuse it.
 */
static bool skip_guards(struct lazyd *d, struct lz_task *t, struct pend_extent *r)
{
	uint64_t gs, ge;
	int fd;

	if (!t->img || !t->img->nr_guards)
		return false;
	fd = task_pagemap(t);
	if (fd < 0 || task_find_guard(fd, r->start, r->end, &gs, &ge) != 1)
		return false;
	task_info(t, "0x%lx-0x%lx became a guard region after restore: not filled",
		  (unsigned long)gs, (unsigned long)ge);
	lazyd_drop_range(d, t, gs, ge);
	/* A thread that faulted there before the guard came retries and gets its SIGSEGV. */
	d->fill.ops->wake(d->fill.ctx, t->uffd, gs, ge - gs);
	if (gs == r->start)
		return true;
	r->end = gs;
	return false;
}

/*
 * The kernel has no registered VMA at 'at' (a one-page run). An mremap or munmap may be
 * under way whose event is still queued: the first time, the events are read before the
 * page is retried (it may live elsewhere now); if the kernel says so again, nobody can see
 * the page: it is dropped and any thread waiting there woken.
 */
static int no_vma(struct lazyd *d, struct lz_task *t, uint64_t at)
{
	if (t->enoent_at != (at | 1)) {
		t->enoent_at = at | 1; /* pages are aligned: bit 0 marks "set" */
		t->need_events = true;
		return -EAGAIN;
	}
	t->enoent_at = 0;
	task_info(t, "no userfaultfd VMA at 0x%lx any more, page dropped", (unsigned long)at);
	lazyd_drop_range(d, t, at, at + PAGE);
	d->fill.ops->wake(d->fill.ctx, t->uffd, at, PAGE);
	return 0;
}

int lazyd_install_run(struct lazyd *d, struct lz_task *t, struct pend_extent r, enum fill_path p,
		      const void *given)
{
	bool use_read = !d->src.ops->map;

	/* The source is reconnecting and this run needs it: the fault waits for the timer. */
	if (d->faults_wait && !given && !(r.flags & PEND_ZERO) && !d->src.ops->map)
		return -EAGAIN;
	for (int tries = 0; tries < 3; tries++) {
		if (!(r.flags & PEND_ZERO) && skip_guards(d, t, &r))
			return 0;
		uint64_t len = r.end - r.start, done = 0;
		const void *data = NULL;
		int rc;

		struct ident id;
		lazyd_ident_prepare(d, t, r.start, &id);
		if (r.flags & PEND_ZERO) {
			rc = d->fill.ops->zero(d->fill.ctx, t->uffd, r.start, len, &done);
		} else if (given) {
			/* Data a background read brought (source prefetch), checked already, or
			 * a mapped image's pages. */
			rc = d->fill.ops->copy(d->fill.ctx, t->uffd, r.start, given, len, &done);
			if (rc == -EFAULT && !done) {
				/* A mapped image that could not be read: read() says why. */
				given = NULL;
				use_read = true;
				continue;
			}
		} else {
			/* Straight from the mapped image when the source can: one copy less. */
			if (!use_read)
				data = d->src.ops->map(&d->src, t->img, r.src, len);
			if (!data && lazyd_shared_hit(d, t, &r)) {
				len = r.end - r.start; /* what a relative fetched already */
				data = d->buf;
			}
			if (!data) {
				rc = fetch(d, t, &r);
				if (rc == -EAGAIN && d->src.ops->wait_ms)
					return rc; /* the source reconnects: the fault waits */
				if (rc) {
					lazyd_task_fail(
					    d, t, "cannot read page data for 0x%lx (%lu pages): %s",
					    (unsigned long)r.start, (unsigned long)(len / PAGE),
					    strerror(-rc));
					return rc;
				}
				data = d->buf;
			}
			rc = d->fill.ops->copy(d->fill.ctx, t->uffd, r.start, data, len, &done);
			if (rc == -EFAULT && data != d->buf && !done) {
				/* The mapped image could not be read: read() says why. */
				use_read = true;
				continue;
			}
		}
		if (done && id.n)
			lazyd_ident_finish(d, t, &id);
		if (done && lazyd_installed(d, t, &r, done, p))
			return -ENOMEM;
		if (data == d->buf)
			lazyd_share_fetched(d, t, r.start, r.src, d->buf, len);
		if (!rc)
			return 0;
		uint64_t at = r.start + done;
		switch (rc) {
		case -EEXIST:
			/* Present already (a racing install): never overwrite it. */
			task_debug(t, "page 0x%lx already present", (unsigned long)at);
			lazyd_found_present(d, t, at);
			return 0;
		case -EAGAIN:
			d->st.eagain++;
			t->need_events = true;
			/* The address space is changing (a fork under way): the data fetched is
			 * wanted again once the events are read, here or in the new child. */
			if (data == d->buf && !d->src.ops->map)
				lazyd_keep_fetched(d, t, r.src + done, data + done, len - done);
			return done ? 0 : -EAGAIN;
		case -ESRCH:
			lazyd_task_exited(d, t);
			return rc;
		case -ENOENT:
		case -EINVAL:
			if (done)
				return 0;
			if (len > PAGE) {
				/* The run may span VMAs the task split since: go page by page. */
				r.end = r.start + PAGE;
				continue;
			}
			return no_vma(d, t, at);
		default:
			lazyd_task_fail(d, t, "installing 0x%lx failed: %s", (unsigned long)at,
					strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Another task that is still served reads t's image: a fork relative. */
static bool has_relatives(const struct lazyd *d, const struct lz_task *t)
{
	for (const struct lz_task *o = d->tasks; o; o = o->next)
		if (o != t && o->img == t->img && !o->gone && !o->killed && !o->exit_seen &&
		    o->pend.data_pages)
			return true;
	return false;
}

void lazyd_keep_fetched(struct lazyd *d, const struct lz_task *t, uint64_t src, const void *data,
			uint64_t len)
{
	if (share_cache_put(&d->shared, t->img, src, data, (uint32_t)(len / PAGE)))
		pr_warn("out of memory for the cache of fetched pages: relatives fetch again");
}

void lazyd_shared_cut(const struct lazyd *d, const struct lz_task *t, struct pend_extent *r)
{
	if (!d->shared.used || (r->flags & PEND_ZERO))
		return;
	for (uint64_t at = r->start + PAGE; at < r->end; at += PAGE)
		if (share_cache_has(&d->shared, t->img, r->src + (at - r->start))) {
			r->end = at;
			return;
		}
}

bool lazyd_shared_hit(struct lazyd *d, struct lz_task *t, struct pend_extent *r)
{
	if (!d->shared.used || (r->flags & PEND_ZERO))
		return false;
	uint64_t max = (r->end - r->start) / PAGE;
	if (max > d->buf_len / PAGE)
		max = d->buf_len / PAGE;
	uint32_t n = share_cache_get(&d->shared, t->img, r->src, d->buf, (uint32_t)max);
	if (!n)
		return false;
	r->end = r->start + (uint64_t)n * PAGE;
	d->st.pages_shared += n;
	return true;
}

void lazyd_share_fetched(struct lazyd *d, struct lz_task *t, uint64_t addr, uint64_t src,
			 const void *data, uint64_t len)
{
	/* Over the network, for a task with relatives: kept for them (at any address). */
	if (!d->src.ops->map && has_relatives(d, t))
		lazyd_keep_fetched(d, t, src, data, len);
	for (struct lz_task *o = d->tasks; o; o = o->next) {
		if (o == t || o->img != t->img || o->gone || o->killed || o->exit_seen ||
		    !o->pend.data_pages)
			continue;
		for (uint64_t at = addr;
		     at < addr + len && !o->gone && !o->killed && !o->exit_seen;) {
			struct pend_extent r;
			/* The same data where o has it pending at the same address (a fork's
			 * copy of the range; a range o moved since keeps its own fetch). */
			if (!pending_run_at(&o->pend, at, addr + len - at, &r) ||
			    (r.flags & PEND_ZERO) || r.src != src + (at - addr)) {
				at += PAGE;
				continue;
			}
			d->st.pages_shared += (r.end - r.start) / PAGE;
			/* A fork child not identified yet is named by an install of its own (a
			 * look at every candidate's pagemap, events.c): not paid for here. */
			d->sharing = true;
			lazyd_install_run(d, o, r, PATH_DRAIN, (const char *)data + (at - addr));
			d->sharing = false;
			at = r.end;
		}
	}
}

/* A fault on a page that is not pending: a duplicate message, or a zero page. */
static int serve_unpending(struct lazyd *d, struct lz_task *t, uint64_t page)
{
	uint64_t done;
	int rc = d->fill.ops->zero(d->fill.ctx, t->uffd, page, PAGE, &done);

	switch (rc) {
	case 0:
		d->st.pages_zero++;
		t->cnt.zero++;
		return 0;
	case -EEXIST:
		d->fill.ops->wake(d->fill.ctx, t->uffd, page, PAGE);
		return 0;
	case -EAGAIN:
		d->st.eagain++;
		t->need_events = true;
		return rc;
	case -ESRCH:
		lazyd_task_exited(d, t);
		return rc;
	default:
		/* Not ours to fill (no VMA): wake it, the kernel decides on the refault. */
		d->fill.ops->wake(d->fill.ctx, t->uffd, page, PAGE);
		return 0;
	}
}

/*
 * The background stream's reads in flight for t, against a fault's run r: true when one of
 * them covers r's first page (asked for at that address with that data, so not moved
 * since): its data is on the way and the fault waits for it. Otherwise r is cut before the
 * first read in flight inside it. Either way no page is fetched twice.
 */
static bool stream_brings(const struct lazyd *d, const struct lz_task *t, struct pend_extent *r)
{
	/* A relative's read of the same data (wherever the range lives now): it is shared, or
	 * kept for this task (share_cache.h), when it arrives. */
	const struct pf_run *rel = pf_relative_run(d, t, r->src, r->end - r->start);
	if (rel && rel->src <= r->src)
		return true;
	if (rel)
		r->end = r->start + (rel->src - r->src);
	for (unsigned k = 0; k < LAZYD_PF_SLOTS; k++) {
		const struct pf_slot *sl = &d->pf[k];
		if (sl->t != t)
			continue;
		for (const struct pf_run *pr = pf_slot_run(sl, r->start, r->end); pr;
		     pr = pr + 1 < sl->run + sl->nrun && pr[1].start < r->end ? pr + 1 : NULL) {
			if (pr->start <= r->start) {
				if (r->start < pr->start + pr->len &&
				    r->src == pr->src + (r->start - pr->start))
					return true;
				continue; /* moved here since: that data is not this page's */
			}
			r->end = pr->start;
			break;
		}
	}
	return false;
}

/*
 * The pages a fault at addr installs: --fault-window, doubled for each fault that comes
 * where the last one's window ended (a task reading on in order: fewer, larger fetches;
 * *grown), up to the staging buffer; any other fault starts again from --fault-window.
 */
static uint32_t fault_window(const struct lazyd *d, const struct lz_task *t, uint64_t addr,
			     bool *grown)
{
	uint32_t max = (uint32_t)(d->buf_len / PAGE);
	unsigned ms;

	*grown = t->ra_pages && addr == t->ra_next;
	if (*grown)
		return t->ra_pages > max / 2 ? max : t->ra_pages * 2;
	/* While the working set is recorded (workset.c), a lone fault brings its page only:
	 * the pages around it would come untouched by the task, and unseen by the record. */
	return lazyd_ws_holding(d, &ms) ? 1 : d->o->fault_window;
}

/*
 * A fault's read of run r (its page first) as two reads: its page alone, then the rest of
 * the window behind it on the same connection. The task waits for the first only: on a link
 * the rest would add its transfer time (16 pages: 0.5 ms at 1 Gbit/s) to every fault's.
 * -EINPROGRESS, or the error that failed the task.
 */
static int fault_read_split(struct lazyd *d, struct lz_task *t, const struct pend_extent *r)
{
	struct pend_extent head = *r, rest = *r;

	head.end = head.start + PAGE;
	int rc = lazyd_fault_read(d, t, &head);
	if (!rc && head.end < r->end) {
		rest.start = head.end;
		rest.src += PAGE;
		rc = lazyd_fault_read(d, t, &rest); /* -EBUSY: the stream or a fault takes it */
	}
	return !rc || rc == -EBUSY ? -EINPROGRESS : rc;
}

/*
 * A fault installs its page and the window's pending pages after it (fault_window);
 * -EINPROGRESS when the stream is bringing that page already (the fault waits for it:
 * stream_brings).
 */
static int serve_fault(struct lazyd *d, struct lz_task *t, struct lz_fault *f)
{
	struct pend_extent r;
	bool grown;
	uint32_t window = fault_window(d, t, f->addr, &grown);
	bool pending = pending_run_at(&t->pend, f->addr, (uint64_t)window * PAGE, &r);

	if (!f->noted) { /* a first touch (served again when it waits: noted once) */
		f->noted = true;
		/* What the task touched: the page; a window that grew, as the task reads on in
		 * order, is read whole (the pages around a lone fault are a guess). */
		lazyd_ws_fault(d, t, f->addr, pending && grown ? (r.end - r.start) / PAGE : 1);
	}
	if (!pending)
		return serve_unpending(d, t, f->addr);
	/* A fill thread is installing it (pfill.c): its install wakes the task. */
	const struct pend_extent *job = lazyd_job_run(d, t, r.start, r.end);
	if (job && job->start <= r.start)
		return -EINPROGRESS;
	if (job)
		r.end = job->start;
	if (d->src.ops->prefetch && !(r.flags & PEND_ZERO) && stream_brings(d, t, &r))
		return -EINPROGRESS;
	t->ra_pages = window;
	t->ra_next = r.end;
	task_debug(t, "fault at 0x%lx: %s %lu pages", (unsigned long)f->addr,
		   (r.flags & PEND_ZERO) ? "zero" : "copy",
		   (unsigned long)((r.end - r.start) / PAGE));
	/* The background stream goes on from where the task touches: it will want that next. */
	t->cursor = r.end;
	if (d->src.ops->faultv && !(r.flags & PEND_ZERO)) {
		/* Off the loop: the fault waits for its read as for the stream's; the loop goes
		 * on serving the others and taking the stream in meanwhile. */
		struct pend_extent h = r;
		if (lazyd_shared_hit(d, t, &h))
			return lazyd_install_run(d, t, h, PATH_FAULT, d->buf);
		/* What follows, kept already, is installed from there on the next round. */
		lazyd_shared_cut(d, t, &r);
		return fault_read_split(d, t, &r);
	}
	return lazyd_install_run(d, t, r, PATH_FAULT, NULL);
}

void lazyd_serve_faults(struct lazyd *d)
{
	for (struct lz_task *t = d->tasks; t; t = t->next) {
		size_t keep = 0, waiting = 0, n;
		bool stop = false;

		if (t->gone || t->killed || t->exit_seen)
			continue;
		if (t->need_events)
			lazyd_read_uffd(d, t);
		n = t->nfaults;
		/* Served faults leave the queue; the rest keep their order. */
		for (size_t i = 0; i < n && !t->gone && !t->killed; i++) {
			struct lz_fault f = t->faults[i];
			int rc = stop ? -EAGAIN : serve_fault(d, t, &f);
			if (rc == -EAGAIN || rc == -EINPROGRESS) {
				stop |= rc == -EAGAIN;
				waiting += rc == -EINPROGRESS;
				t->faults[keep++] = f;
				continue;
			}
			d->st.faults++;
			stats_fault_latency(&d->st, mono_ns() - f.t_ns);
		}
		if (!t->gone && !t->killed) {
			/* Faults queued meanwhile (the keeper's messages applied during an install,
			 * keeper_sync) come after the ones kept. */
			size_t added = t->nfaults - n;
			if (added)
				memmove(t->faults + keep, t->faults + n,
					added * sizeof(t->faults[0]));
			t->nfaults = keep + added;
			t->nwaiting = waiting;
		}
	}
}

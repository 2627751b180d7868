/*
 * The fill threads (--fill-threads, fill_pool.h). The event loop keeps the state: it plans
 * each job from the pending set (drain.c), hands it to a thread, and settles it when the
 * thread is done, as if it had installed the runs itself (batch.c's rules). A job's runs
 * are in flight meanwhile: the drain plans around them and a fault there waits (the
 * thread's UFFDIO_COPY wakes the faulting thread). So the threads touch no state of ours,
 * and everything the loop decides stays decided in one place.
 *
 * Events: a job's installs run only while no event has been read since it was planned
 * (the fence: fill_pool.h; the keeper, or we without one, hold it while reading). A job
 * settled after its task's events moved the pages is not trusted to say where they are:
 * what it installed went in before the event, and the event took it along (a fork copies
 * it, an mremap moves it, a discard drops it); the pages stay in the pending set and are
 * found present when the stream comes there, never overwritten.
 *
 * The threads take the stream from mapped images (drain.c) and, from a source that can
 * hold a chunk's buffer (criu-imgd), what the stream's reads bring (stream.c): such a job
 * holds the buffer until it is settled, and data an event kept from going in is kept for
 * the task (share_cache.h) rather than read again. A fault's data is installed by the loop
 * at once; CRIU's page server gives one run at a time, installed by the loop too.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lazyd.h"

#define FILL_THREADS_AUTO_MAX 8

/* Jobs the threads are done with, marked so (their slot still held). */
static void reap_all(struct lazyd *d)
{
	struct fill_job *j;

	while ((j = fill_pool_reap(d->pool)))
		((struct lz_job *)j)->done = true; /* j is its job's first member */
}

static void release(struct lazyd *d, struct lz_job *jb)
{
	jb->t->jobs--;
	jb->t = NULL;
	jb->done = false;
	d->jobs_used--;
}

/* The source's buffer of a stream job: its data is not read again. */
static void let_go(struct lazyd *d, struct lz_job *jb)
{
	if (jb->hold >= 0)
		d->src.ops->release(&d->src, jb->hold);
	jb->hold = -1;
}

/*
 * The data of a stream job's runs [i..n) that its pending set still lists (an event came
 * first), from what of run i went in already (all: the whole of each, when an event moved
 * the pages and what went in is not known to be where it was): kept for t
 * (share_cache.h), where the stream, coming back, finds it instead of asking for it again
 * over the network. Mapped images read it again.
 */
static void keep_rest(struct lazyd *d, struct lz_task *t, const struct lz_job *jb, uint32_t i,
		      bool all)
{
	for (; jb->hold >= 0 && i < jb->j.n; i++) {
		const struct fill_extent *e = &jb->j.ext[i];
		uint64_t from = all ? 0 : e->done;
		if (e->src && from < e->len)
			lazyd_keep_fetched(d, t, jb->run[i].src + from, (const char *)e->src + from,
					   e->len - from);
	}
}

static void settle_runs(struct lazyd *d, struct lz_task *t, struct lz_job *jb)
{
	const struct fill_job *j = &jb->j;

	if (t->events != jb->t_events) {
		d->st.fill_jobs_moved++;
		task_debug(t,
			   "a fill job at 0x%lx settled after an event: its pages are found "
			   "present again",
			   (unsigned long)jb->start);
		if (jb->start < t->cursor)
			t->cursor = jb->start;
		keep_rest(d, t, jb, 0, true);
		return;
	}
	if (lazyd_installed_ext(d, t, jb->run, j->ext, j->n, jb->path))
		return;
	for (uint32_t i = 0; i < j->n; i++) {
		const struct fill_extent *e = &j->ext[i];
		if (!e->result)
			continue;
		/* The stream comes back here: what follows this extent was not attempted. */
		uint64_t at = jb->run[i].start + e->done;
		if (at < t->cursor)
			t->cursor = at;
		if (e->result == -EAGAIN) {
			/* An event read since (the fence), or one the kernel holds: read them. */
			d->st.fill_jobs_stale += j->stale;
			d->st.eagain += !j->stale;
			t->need_events = true;
			keep_rest(d, t, jb, i, false);
		} else {
			lazyd_settle_rest(d, t, &jb->run[i], e->src, e, jb->path);
			/* What an event kept out of run i too (the one-run path keeps only what it
			 * read itself). */
			keep_rest(d, t, jb, t->need_events ? i : i + 1, false);
		}
		return;
	}
}

/* What job jb did, into t's pending set and counts (batch.c's rules); its buffer let go. */
static void settle(struct lazyd *d, struct lz_job *jb)
{
	struct lz_task *t = jb->t;

	release(d, jb); /* no longer in flight: what follows sees the runs as pending */
	d->st.fill_jobs++;
	if (!t->gone && !t->killed)
		settle_runs(d, t, jb);
	let_go(d, jb);
}

/* Settle every job the threads are done with. */
static void collect(struct lazyd *d)
{
	for (;;) {
		struct lz_job *jb = NULL;
		reap_all(d);
		for (unsigned k = 0; k < d->jobs_max && !jb; k++)
			if (d->job[k].t && d->job[k].done)
				jb = &d->job[k];
		if (!jb)
			return;
		settle(d, jb);
	}
}

static void on_pool(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct lazyd *d = data;

	(void)l;
	(void)fd;
	(void)events;
	collect(d);
	d->drain_blocked = false; /* jobs free again: the next drain step plans more */
}

int lazyd_pfill_start(struct lazyd *d, const struct filler *engine)
{
	unsigned n = d->o->fill_threads;
	int rc;

	if (!n) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c < 1 ? 1 : c > FILL_THREADS_AUTO_MAX ? FILL_THREADS_AUTO_MAX : (unsigned)c;
	}
	if (n <= 1)
		return 0;
	if (!d->src.ops->map && !d->src.ops->hold) {
		pr_info("fill threads: none (the page source, %s, answers one read at a time)",
			d->src.ops->name);
		return 0;
	}
	if (engine->ops->batch) {
		pr_info("fill threads: none (%s installs batches itself)", engine->ops->name);
		return 0;
	}
	if (d->keeper) {
		d->fence = (struct fill_fence){
		    d->keeper->shm->fill_lock, d->keeper->shm->fill_owner,
		    &d->keeper->shm->events_read, &d->keeper->shm->fill_readers};
	} else {
		rc = fill_fence_init(d->fence_locks, n, false);
		if (rc) {
			pr_err("cannot set up the fill threads' locks: %s", strerror(-rc));
			return -1;
		}
		atomic_init(&d->fence_readers, 0);
		d->fence = (struct fill_fence){d->fence_locks, d->fence_owner, &d->fence_gen,
					       &d->fence_readers};
	}
	rc = fill_pool_new(&d->pool, engine, n, &d->fence);
	if (rc) {
		pr_err("cannot start %u fill threads: %s", n, strerror(-rc));
		return -1;
	}
	rc = ev_add(d->loop, fill_pool_fd(d->pool), EV_READ, on_pool, d);
	if (rc) {
		pr_err("event loop: cannot watch the fill threads: %s", strerror(-rc));
		fill_pool_free(d->pool);
		d->pool = NULL;
		return -1;
	}
	d->fill_threads = d->st.fill_threads = n;
	d->jobs_max = 2 * n; /* one being installed and one waiting, per thread */
	pr_info("fill threads: %u", n);
	return 0;
}

void lazyd_pfill_stop(struct lazyd *d)
{
	if (!d->pool)
		return;
	while (d->jobs_used) {
		fill_pool_wait(d->pool, 100);
		collect(d);
	}
	ev_del(d->loop, fill_pool_fd(d->pool));
	fill_pool_free(d->pool);
	d->pool = NULL;
}

bool lazyd_pfill_can(const struct lazyd *d, const struct lz_task *t)
{
	/* An unidentified fork child is named by an install of the loop's own (events.c);
	 * guard regions are looked for before each run (install.c). */
	return d->pool && t->real > 0 && t->uffd >= 0 && !t->need_events &&
	       !(t->img && t->img->nr_guards);
}

void lazyd_pfill_submit(struct lazyd *d, struct lz_task *t, const struct pend_extent *r,
			const void *const *data, uint32_t n, enum fill_path p, int hold)
{
	struct lz_job *jb = NULL;

	for (unsigned k = 0; k < d->jobs_max && !jb; k++)
		if (!d->job[k].t)
			jb = &d->job[k];
	if (!jb || !n || n > FILL_JOB_MAX) {
		/* lazyd_pfill_can() said there is room: not reached */
		if (hold >= 0)
			d->src.ops->release(&d->src, hold);
		return;
	}
	jb->t = t;
	jb->hold = hold;
	jb->done = false;
	jb->path = p;
	jb->t_events = t->events;
	jb->start = UINT64_MAX;
	jb->end = 0;
	jb->j.uffd = t->uffd;
	/* Planned on every event applied so far: the count the fence must still have. */
	jb->j.gen = d->keeper ? d->keeper->events_seen : d->fence_gen;
	jb->j.n = n;
	for (uint32_t i = 0; i < n; i++) {
		jb->run[i] = r[i];
		/* The span: a replay's runs come in the record's order, not the address's. */
		if (r[i].start < jb->start)
			jb->start = r[i].start;
		if (r[i].end > jb->end)
			jb->end = r[i].end;
		jb->j.ext[i] =
		    (struct fill_extent){.dst = r[i].start,
					 .len = r[i].end - r[i].start,
					 .src = (r[i].flags & PEND_ZERO) ? NULL : data[i]};
	}
	t->jobs++;
	d->jobs_used++;
	fill_pool_submit(d->pool, &jb->j);
}

const struct pend_extent *lazyd_job_run(const struct lazyd *d, const struct lz_task *t,
					uint64_t start, uint64_t end)
{
	const struct pend_extent *hit = NULL;

	if (!t->jobs)
		return NULL;
	for (unsigned k = 0; k < d->jobs_max; k++) {
		const struct lz_job *jb = &d->job[k];
		if (jb->t != t || start >= jb->end || jb->start >= end)
			continue;
		for (uint32_t i = 0; i < jb->j.n; i++) {
			const struct pend_extent *r = &jb->run[i];
			if (start < r->end && r->start < end && (!hit || r->start < hit->start))
				hit = r;
		}
	}
	return hit;
}

void lazyd_pfill_forget(struct lazyd *d, struct lz_task *t)
{
	while (t->jobs) {
		bool running = false;
		reap_all(d);
		for (unsigned k = 0; k < d->jobs_max; k++) {
			struct lz_job *jb = &d->job[k];
			if (jb->t != t)
				continue;
			if (!jb->done) {
				running = true;
				continue;
			}
			/* What went in is counted (the task read it, perhaps, before it went);
			 * not after an event of its own moved the pages (settle()). */
			if (t->events == jb->t_events)
				lazyd_installed_ext(d, t, jb->run, jb->j.ext, jb->j.n, jb->path);
			release(d, jb);
			let_go(d, jb);
		}
		if (running)
			fill_pool_wait(d->pool, 100);
	}
	/* Other tasks' jobs reaped here wait to be settled: the loop must hear of them (the
	 * reaping emptied the pool's fd), or their runs stay in flight for ever. */
	for (unsigned k = 0; k < d->jobs_max; k++)
		if (d->job[k].t && d->job[k].done) {
			fill_pool_kick(d->pool);
			break;
		}
}

void lazyd_fence_hold(struct lazyd *d)
{
	if (!d->pool || d->keeper)
		return;
	d->fence_held = fill_fence_hold(&d->fence, d->fill_threads);
	if (!d->fence_held) /* robust and private: only if a thread died, and then we did */
		pr_warn("fill threads: cannot take their locks");
}

void lazyd_fence_release(struct lazyd *d, unsigned events)
{
	/* Counted even unheld: a job planned before is refused from now on either way. */
	d->fence_gen += events;
	if (d->fence_held)
		fill_fence_release(&d->fence, d->fill_threads);
	d->fence_held = false;
}

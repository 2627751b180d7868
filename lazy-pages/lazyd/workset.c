/*
 * Working-set replay (--working-set, img/workset.h): the first touches of this restore's
 * tasks are noted as their faults come (address, pages the fault installed, time), and
 * merged into the record beside the images at the end; a record of an earlier restore of
 * the same images is replayed first by the background stream, in the order its pages were
 * touched, before the address-order drain. Faults still overtake everything: a fault on a
 * recorded page not replayed yet moves the replay past it (the task is there already).
 * The record never decides what goes in: only pending pages, from the images, as always.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lazyd.h"
#include "util/clock.h"

#define PAGE IMG_PAGE_SIZE

#define WS_LATE_JUMP 1024 /* entries a fault ahead of the replay may move it on */

static bool recording(const struct lazyd *d)
{
	return d->ws_on && (d->o->working_set == WS_RECORD || d->o->working_set == WS_AUTO);
}

/* First touches in a record, all tasks. */
static uint64_t entries(const struct workset *ws)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < ws->ntasks; i++)
		n += ws->tasks[i].n;
	return n;
}

void lazyd_ws_start(struct lazyd *d)
{
	enum ws_mode m = d->o->working_set;
	struct errmsg e;
	uint64_t id;

	if (m == WS_OFF)
		return;
	errmsg_clear(&e);
	d->ws_dirfd = open(d->o->images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->ws_dirfd < 0 || img_workset_identity(d->ws_dirfd, &d->img, &id, &e)) {
		pr_warn("working set: off, the images' identity cannot be had: %s",
			e.msg[0] ? e.msg : strerror(errno));
		return;
	}
	d->ws_on = true;
	ws_init(&d->ws_notes, id);
	int rc = ws_load(d->ws_dirfd, WS_FILE_NAME, id, &d->ws_rec, &e);
	if (rc == -ENOENT) {
		pr_info("working set: no record in %s yet%s", d->o->images_dir,
			recording(d) ? ": this restore records one" : "");
	} else if (rc) {
		/* Never trusted blindly: another dump's, or damaged. Replaced if we record. */
		pr_warn("working set: record ignored: %s", e.msg);
		ws_init(&d->ws_rec, id);
	} else {
		d->st.ws_entries = entries(&d->ws_rec);
		pr_info("working set: record of %u restores, %lu first touches in %u tasks%s",
			d->ws_rec.restores, (unsigned long)d->st.ws_entries, d->ws_rec.ntasks,
			m == WS_RECORD ? " (mode record: not replayed)" : ": replayed first");
	}
}

static uint64_t end_of(const struct ws_entry *e)
{
	return e->addr + (uint64_t)e->pages * PAGE;
}

static int by_entry_addr(const void *a, const void *b, void *arg)
{
	const struct ws_entry *e = arg;
	uint64_t x = e[*(const uint32_t *)a].addr, y = e[*(const uint32_t *)b].addr;

	return x < y ? -1 : x > y;
}

void lazyd_ws_attach(struct lazyd *d, struct lz_task *t)
{
	if (!d->ws_on || d->o->working_set == WS_RECORD || !t->img)
		return;
	const struct ws_task *w = ws_find(&d->ws_rec, t->img->pid);
	if (!w || !w->n)
		return;
	t->ws_by_addr = malloc((size_t)w->n * sizeof(uint32_t));
	t->ws_reach = malloc((size_t)w->n * sizeof(uint32_t));
	if (!t->ws_by_addr || !t->ws_reach) {
		lazyd_ws_detach(t);
		task_warn(t, "working set: out of memory, not replayed");
		return;
	}
	for (uint32_t i = 0; i < w->n; i++)
		t->ws_by_addr[i] = i;
	qsort_r(t->ws_by_addr, w->n, sizeof(uint32_t), by_entry_addr, w->e);
	for (uint32_t i = 0; i < w->n; i++) {
		uint32_t k = t->ws_by_addr[i], r = i ? t->ws_reach[i - 1] : k;
		t->ws_reach[i] = end_of(&w->e[k]) > end_of(&w->e[r]) ? k : r;
	}
	t->ws = w;
	t->ws_next = 0;
	t->ws_noted = 0;
	t->ws_at = w->e[0].addr;
	task_info(t, "working set: %u first touches to replay", w->n);
}

void lazyd_ws_detach(struct lz_task *t)
{
	free(t->ws_by_addr);
	free(t->ws_reach);
	t->ws_by_addr = NULL;
	t->ws_reach = NULL;
	t->ws = NULL;
}

/*
 * The index of a recorded entry of t's that covers addr, or -1: the one starting nearest
 * below, or else, of those starting below, the one that ends last (entries may overlap: a
 * joined trail, img/workset.h, and touches inside it that rank higher).
 */
static int64_t entry_at(const struct lz_task *t, uint64_t addr)
{
	const struct ws_entry *e = t->ws->e;
	uint32_t lo = 0, hi = t->ws->n;

	while (lo < hi) { /* the first whose address is above addr */
		uint32_t mid = lo + (hi - lo) / 2;
		if (e[t->ws_by_addr[mid]].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -1;
	uint32_t i = t->ws_by_addr[lo - 1], r = t->ws_reach[lo - 1];
	if (addr < end_of(&e[i]))
		return i;
	return addr < end_of(&e[r]) ? (int64_t)r : -1;
}

/*
 * Recording with nothing to replay (the first restore of these images): a page the stream
 * installs before the task touches it is a touch the record never sees (reads leave no
 * trace we can read). So for up to --working-set-hold ms after the restore the stream waits
 * while the tasks fault, until they have not faulted for WS_QUIET_MS: their first touches
 * are faults, and the record has the working set whole.
 */
#define WS_QUIET_MS 100

bool lazyd_ws_holding(const struct lazyd *d, unsigned *wait_ms)
{
	if (!d->ws_hold || !d->restore_finished)
		return false;
	uint64_t now = mono_ns(), restored = d->ws_restored_ns;
	uint64_t last = d->ws_last_fault_ns > restored ? d->ws_last_fault_ns : restored;
	uint64_t end = last + (uint64_t)WS_QUIET_MS * 1000000;
	uint64_t cap = restored + (uint64_t)d->o->ws_hold_ms * 1000000;

	if (end > cap)
		end = cap;
	if (now >= end)
		return false;
	*wait_ms = (unsigned)((end - now) / 1000000) + 1;
	return true;
}

void lazyd_ws_restored(struct lazyd *d)
{
	d->ws_restored_ns = mono_ns();
	d->ws_hold = recording(d) && d->o->ws_hold_ms && !d->ws_rec.ntasks;
	if (d->ws_hold)
		pr_info("working set: the stream waits while the tasks fault (up to %u ms), so "
			"that the record sees their first touches",
			d->o->ws_hold_ms);
}

static void note(struct lazyd *d, const struct lz_task *t, uint64_t addr, uint32_t pages,
		 uint32_t ms)
{
	int rc = ws_note(&d->ws_notes, t->img->pid, addr, pages, ms);

	if (rc == -ENOMEM && !d->ws_oom) {
		d->ws_oom = true;
		pr_warn("working set: out of memory, first touches not all recorded");
	}
}

void lazyd_ws_fault(struct lazyd *d, struct lz_task *t, uint64_t addr, uint64_t pages)
{
	if (!d->ws_on)
		return;
	d->ws_last_fault_ns = mono_ns();
	if (t->ws && t->ws_next < t->ws->n) {
		int64_t i = entry_at(t, addr);
		if (i < 0) {
			d->st.ws_missed++;
		} else if ((uint32_t)i >= t->ws_next) {
			/* The task is there before the replay: go on from after the fault, in
			 * that entry (a trail goes on where the task reads), if that is near (one
			 * touch out of the record's order must not skip the rest). */
			d->st.ws_late++;
			if ((uint32_t)i - t->ws_next < WS_LATE_JUMP) {
				uint64_t at = (addr & ~(PAGE - 1)) + pages * PAGE;
				t->ws_next = (uint32_t)i;
				t->ws_at = at < end_of(&t->ws->e[i]) ? at : end_of(&t->ws->e[i]);
			}
		}
	}
	if (!recording(d) || !t->img)
		return;
	if (!d->ws_t0)
		d->ws_t0 = mono_ns();
	uint64_t ms = (mono_ns() - d->ws_t0) / 1000000;
	note(d, t, addr & ~(PAGE - 1),
	     pages > WS_MAX_ENTRY_PAGES ? WS_MAX_ENTRY_PAGES : (uint32_t)pages,
	     ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms);
}

/*
 * The replay takes or passes entry e (t's ws_next): noted as touched by this restore too.
 * No accessed bit tells whether the task read the page the replay brought; counting it
 * keeps the record's working set ahead of what this restore faulted on only because the
 * replay had spared it the rest (ws_merge ranks by restores that touched a page).
 */
static void replayed(struct lz_task *t, const struct ws_entry *e)
{
	if (t->ws_noted == t->ws_next + 1)
		return;
	t->ws_noted = t->ws_next + 1;
	if (recording(t->d) && t->img)
		note(t->d, t, e->addr, e->pages, e->t_ms);
}

bool lazyd_ws_next(struct lz_task *t, uint64_t max, struct pend_extent *r)
{
	while (t->ws && t->ws_next < t->ws->n) {
		const struct ws_entry *e = &t->ws->e[t->ws_next];
		uint64_t end = e->addr + (uint64_t)e->pages * PAGE;
		if (t->ws_at < e->addr || t->ws_at > end)
			t->ws_at = e->addr;
		if (t->ws_at < end && pending_next(&t->pend, t->ws_at, end - t->ws_at, false, r) &&
		    r->start >= t->ws_at && r->start < end) {
			if (r->end > end)
				r->end = end;
			if (r->end - r->start > max)
				r->end = r->start + max;
			t->ws_at = r->end;
			replayed(t, e);
			return true;
		}
		replayed(t, e); /* in already (by the replay, the stream, a fault): covered */
		if (++t->ws_next < t->ws->n)
			t->ws_at = t->ws->e[t->ws_next].addr;
	}
	return false;
}

void lazyd_ws_finish(struct lazyd *d)
{
	struct errmsg e;

	if (!recording(d))
		return;
	/* The merge replaces the record the tasks replay from: none replays from it now. */
	for (struct lz_task *t = d->tasks; t; t = t->next)
		lazyd_ws_detach(t);
	errmsg_clear(&e);
	if (ws_merge(&d->ws_rec, &d->ws_notes))
		pr_warn("working set: out of memory, record not written");
	else if (ws_save(d->ws_dirfd, WS_FILE_NAME, &d->ws_rec, &e))
		pr_warn("working set: record not written: %s", e.msg);
	else
		pr_info("working set: record of %u restores written to %s/%s (%lu first touches)",
			d->ws_rec.restores, d->o->images_dir, WS_FILE_NAME,
			(unsigned long)entries(&d->ws_rec));
}

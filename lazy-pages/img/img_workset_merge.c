/* The working-set record in memory: notes of one restore, and their merge into a record. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "workset.h"

void ws_init(struct workset *ws, uint64_t image)
{
	*ws = (struct workset){.image = image};
}

void ws_free(struct workset *ws)
{
	for (uint32_t i = 0; i < ws->ntasks; i++)
		free(ws->tasks[i].e);
	free(ws->tasks);
	ws_init(ws, ws->image);
}

const struct ws_task *ws_find(const struct workset *ws, int32_t pid)
{
	for (uint32_t i = 0; i < ws->ntasks; i++)
		if (ws->tasks[i].pid == pid)
			return &ws->tasks[i];
	return NULL;
}

static struct ws_task *task_of(struct workset *ws, int32_t pid)
{
	struct ws_task *t = (struct ws_task *)ws_find(ws, pid);

	if (t)
		return t;
	if (ws->ntasks >= IMG_MAX_TASKS)
		return NULL;
	t = realloc(ws->tasks, (ws->ntasks + 1) * sizeof(*t));
	if (!t)
		return NULL;
	ws->tasks = t;
	t = &ws->tasks[ws->ntasks++];
	*t = (struct ws_task){.pid = pid};
	return t;
}

static int task_reserve(struct ws_task *t, uint32_t n)
{
	if (n <= t->cap)
		return 0;
	uint32_t cap = t->cap ? t->cap : 256;
	while (cap < n)
		cap *= 2;
	struct ws_entry *e = realloc(t->e, (size_t)cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	t->e = e;
	t->cap = cap;
	return 0;
}

int ws_note(struct workset *ws, int32_t pid, uint64_t addr, uint32_t pages, uint32_t t_ms)
{
	struct ws_task *t = task_of(ws, pid);

	if (!t)
		return -ENOMEM;
	if (t->n >= WS_MAX_TASK_ENTRIES)
		return -E2BIG;
	if (task_reserve(t, t->n + 1))
		return -ENOMEM;
	if (pages > WS_MAX_ENTRY_PAGES)
		pages = WS_MAX_ENTRY_PAGES;
	t->e[t->n++] = (struct ws_entry){addr, pages ? pages : 1, t_ms, 1};
	return 0;
}

/* Merge order: by address, the record's entry before the notes' (tag), then time. */
struct tagged {
	struct ws_entry e;
	bool note;
};

static int by_addr(const void *a, const void *b)
{
	const struct tagged *x = a, *y = b;

	if (x->e.addr != y->e.addr)
		return x->e.addr < y->e.addr ? -1 : 1;
	if (x->note != y->note)
		return x->note ? 1 : -1;
	return x->e.t_ms < y->e.t_ms ? -1 : x->e.t_ms > y->e.t_ms;
}

/* The record's order: touched by more restores first, then by time, then address. */
static int by_rank(const void *a, const void *b)
{
	const struct ws_entry *x = a, *y = b;

	if (x->seen != y->seen)
		return x->seen > y->seen ? -1 : 1;
	if (x->t_ms != y->t_ms)
		return x->t_ms < y->t_ms ? -1 : 1;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static uint64_t end_of(const struct ws_entry *e)
{
	return e->addr + (uint64_t)e->pages * IMG_PAGE_SIZE;
}

/*
 * e (n entries, by address) without those that lie inside another entry ranked no lower:
 * its pages are replayed then already. Without this a task that a replay kept just ahead
 * of adds, restore after restore, the faults where it overtook the replay as entries of
 * their own inside the ones replayed. The count kept.
 */
static size_t absorb(struct ws_entry *e, size_t n)
{
	size_t m = 0, cov = 0;

	for (size_t i = 0; i < n; i++) {
		if (m && end_of(&e[cov]) >= end_of(&e[i]) && by_rank(&e[cov], &e[i]) <= 0)
			continue;
		e[m] = e[i];
		if (!m || end_of(&e[m]) > end_of(&e[cov]))
			cov = m;
		m++;
	}
	return m;
}

/* Time order: first touch, then address. */
static int by_time(const void *a, const void *b)
{
	const struct ws_entry *x = a, *y = b;

	if (x->t_ms != y->t_ms)
		return x->t_ms < y->t_ms ? -1 : 1;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* A trail: the entry it began with, and the pages from its start to its end so far. */
struct trail {
	size_t head;
	uint64_t end;
};

/* Whether b, touched after trail t's last piece, goes on t (see join). */
static bool joins(const struct ws_entry *head, uint64_t end, const struct ws_entry *b)
{
	uint64_t to = end_of(b) > end ? end_of(b) : end;

	return b->addr >= head->addr && b->addr <= end + (uint64_t)WS_JOIN_PAGES * IMG_PAGE_SIZE &&
	       (to - head->addr) / IMG_PAGE_SIZE <= WS_MAX_ENTRY_PAGES;
}

/*
 * e (n entries, in time order), where a trail of at least WS_JOIN_MIN entries is joined
 * into one, its gaps too: each entry of a trail starts inside it or at most WS_JOIN_PAGES
 * after its end (one of the WS_JOIN_TRAILS trails last grown), and the trail stays within
 * WS_MAX_ENTRY_PAGES. A joined entry has the first one's time and is seen as often as the
 * most seen of its pieces.
 * A task that reads a region in order faults only where it overtakes the stream, so its
 * record is a trail of small entries with the pages the stream brought in between, and
 * the next restore, which replays the trail, adds the faults where the task overtook the
 * replay, in gaps of the trail, seen once fewer. Replayed entry by entry and by restores
 * seen, such a trail runs ahead of the task or behind it while it faults on every gap.
 * Joined, the region is replayed in order, as the task reads it. Several trails at once are
 * a task with a few threads reading, or one reading and touching elsewhere too; touches at
 * random seldom make a trail of WS_JOIN_MIN. An entry of more than WS_JOIN_PAGES counts as
 * a trail whole. The count kept, or -ENOMEM (e unchanged).
 */
static ssize_t join(struct ws_entry *e, size_t n)
{
	struct trail open[WS_JOIN_TRAILS];
	size_t nopen = 0, *on = malloc(n * sizeof(*on) + 1), *count = calloc(n + 1, sizeof(*count));

	if (!on || !count) {
		free(on);
		free(count);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) { /* which trail each entry is on */
		size_t k = 0;
		while (k < nopen && !joins(&e[open[k].head], open[k].end, &e[i]))
			k++;
		struct trail t = {i, end_of(&e[i])};
		if (k < nopen) {
			t = open[k];
			if (end_of(&e[i]) > t.end)
				t.end = end_of(&e[i]);
		} else {
			k = nopen < WS_JOIN_TRAILS ? nopen++ : WS_JOIN_TRAILS - 1;
		}
		memmove(&open[1], &open[0], k * sizeof(open[0])); /* the latest first */
		open[0] = t;
		on[i] = t.head;
		/* An entry this large is a trail joined by an earlier merge (or a fault's
		 * window that large): what joins it goes with it. */
		count[t.head] += e[i].pages > WS_JOIN_PAGES ? WS_JOIN_MIN : 1;
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		size_t h = on[i];
		if (count[h] < WS_JOIN_MIN) {
			e[m++] = e[i];
			continue;
		}
		if (h == i) { /* the head: it becomes the joined entry, where it is */
			on[i] = m;
			e[m++] = e[i];
			continue;
		}
		struct ws_entry *j = &e[on[h]];
		uint64_t to = end_of(&e[i]) > end_of(j) ? end_of(&e[i]) : end_of(j);
		j->pages = (uint32_t)((to - j->addr) / IMG_PAGE_SIZE);
		if (e[i].seen > j->seen)
			j->seen = e[i].seen;
	}
	free(on);
	free(count);
	return (ssize_t)m;
}

/* rec's entries and notes' for one pid, merged into out (allocated, *n entries). */
static int merge_task(const struct ws_task *rec, const struct ws_task *notes, struct ws_entry **out,
		      uint32_t *n)
{
	size_t nr = rec ? rec->n : 0, nn = notes ? notes->n : 0, k = 0;
	struct tagged *all = malloc((nr + nn) * sizeof(*all) + 1);

	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++)
		all[k++] = (struct tagged){rec->e[i], false};
	for (size_t i = 0; i < nn; i++)
		all[k++] = (struct tagged){notes->e[i], true};
	qsort(all, k, sizeof(*all), by_addr);
	struct ws_entry *e = malloc(k * sizeof(*e) + 1);
	if (!e) {
		free(all);
		return -ENOMEM;
	}
	size_t m = 0;
	for (size_t i = 0; i < k;) {
		struct ws_entry cur = all[i].e;
		bool was_rec = !all[i].note, new_seen = false;
		size_t j = i + 1;
		/* One entry per address: the record's (or the first note), and if this
		 * restore touched it too, seen once more. Its time stays the record's: a
		 * restore that replays reaches pages sooner, and its times would pull pages it
		 * faulted on ahead of those the replay spared it. */
		for (; j < k && all[j].e.addr == cur.addr; j++) {
			if (!all[j].note || new_seen)
				continue;
			if (!was_rec)
				continue; /* a second note of one restore: the first counts */
			cur.seen = cur.seen < UINT32_MAX ? cur.seen + 1 : cur.seen;
			if (all[j].e.pages > cur.pages)
				cur.pages = all[j].e.pages;
			new_seen = true;
		}
		e[m++] = cur;
		i = j;
	}
	free(all);
	m = absorb(e, m);
	qsort(e, m, sizeof(*e), by_time);
	ssize_t joined = join(e, m);
	if (joined < 0) {
		free(e);
		return -ENOMEM;
	}
	m = (size_t)joined;
	qsort(e, m, sizeof(*e), by_rank);
	if (m > WS_MAX_TASK_ENTRIES)
		m = WS_MAX_TASK_ENTRIES;
	*out = e;
	*n = (uint32_t)m;
	return 0;
}

int ws_merge(struct workset *into, const struct workset *notes)
{
	struct workset out;
	int rc = 0;

	ws_init(&out, into->image);
	out.restores = into->restores < UINT32_MAX ? into->restores + 1 : into->restores;
	/* Every pid of either, each once. */
	for (int side = 0; side < 2 && !rc; side++) {
		const struct workset *w = side ? notes : into;
		for (uint32_t i = 0; i < w->ntasks && !rc; i++) {
			int32_t pid = w->tasks[i].pid;
			if (ws_find(&out, pid))
				continue;
			struct ws_task *t = task_of(&out, pid);
			if (!t) {
				rc = -ENOMEM;
				break;
			}
			rc = merge_task(ws_find(into, pid), ws_find(notes, pid), &t->e, &t->n);
			t->cap = t->n;
		}
	}
	if (rc) {
		ws_free(&out);
		return rc;
	}
	ws_free(into);
	*into = out;
	return 0;
}

/* The working-set record in memory: notes of one restore, and their merge into a record. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

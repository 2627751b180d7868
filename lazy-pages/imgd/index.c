/* Streaming an image's task list and lazy page index as INDEX_PART frames. */
#include "handlers.h"

#include <errno.h>

#include "util/log.h"

static LwExtent ext[WIRE_MAX_INDEX_EXTENTS];
static LwExtent *extp[WIRE_MAX_INDEX_EXTENTS];

int index_start(struct imgd_session *s)
{
	if (s->ix_active)
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "INDEX_GET while the index streams");
	s->ix_active = true;
	s->ix_task = s->ix_ext = 0;
	return 0;
}

int index_next_frame(struct imgd_session *s)
{
	const struct img_set *set = &s->img->set;

	if (s->ix_task >= set->nr_tasks)
		return 0;
	const struct img_task *t = &set->tasks[s->ix_task];
	size_t n = t->nr_extents - s->ix_ext;
	if (n > WIRE_MAX_INDEX_EXTENTS)
		n = WIRE_MAX_INDEX_EXTENTS;
	for (size_t i = 0; i < n; i++) {
		const struct img_extent *x = &t->extents[s->ix_ext + i];
		ext[i] = (LwExtent)LW_EXTENT__INIT;
		ext[i].start = x->start;
		ext[i].end = x->end;
		ext[i].zero = x->zero;
		ext[i].has_off = !x->zero;
		ext[i].off = x->pages_off;
		extp[i] = &ext[i];
	}
	LwIndexPart p = LW_INDEX_PART__INIT;
	p.pid = t->pid;
	p.ppid = t->ppid;
	p.nr_threads = t->nr_threads;
	p.has_mm = t->has_mm;
	p.nr_extents = (uint32_t)t->nr_extents;
	p.n_extents = n;
	p.extents = extp;
	s->ix_ext += n;
	if (s->ix_ext >= t->nr_extents) {
		s->ix_ext = 0;
		s->ix_task++;
	}
	p.last = s->ix_task >= set->nr_tasks;
	if (session_reply(s, WT_INDEX_PART, &p.base, 0) < 0)
		return session_fail(s, LW_ERR__LW_E_IO, -1, "cannot encode an INDEX_PART frame");
	if (p.last)
		pr_info("session %lu: index of %zu tasks sent", (unsigned long)s->id,
			set->nr_tasks);
	return 1;
}

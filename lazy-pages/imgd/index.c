/* Streaming an image's task list and lazy page index as INDEX_PART frames. */
#include "imgd.h"

#include "util/log.h"

static LwExtent ext[WIRE_MAX_INDEX_EXTENTS];
static LwExtent *extp[WIRE_MAX_INDEX_EXTENTS];

int index_next_frame(struct imgd *d, struct imgd_conn *c)
{
	const struct img_set *s = &c->img->set;

	if (c->ix_task >= s->nr_tasks)
		return 0;
	const struct img_task *t = &s->tasks[c->ix_task];
	size_t n = t->nr_extents - c->ix_ext;
	if (n > WIRE_MAX_INDEX_EXTENTS)
		n = WIRE_MAX_INDEX_EXTENTS;
	for (size_t i = 0; i < n; i++) {
		const struct img_extent *x = &t->extents[c->ix_ext + i];
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
	c->ix_ext += n;
	if (c->ix_ext >= t->nr_extents) {
		c->ix_ext = 0;
		c->ix_task++;
	}
	p.last = c->ix_task >= s->nr_tasks;
	if (conn_queue_frame(c, WT_INDEX_PART, &p.base)) {
		conn_fail(d, c, LW_ERR__LW_E_IO, -1, "cannot encode an INDEX_PART frame");
		return -1;
	}
	if (p.last)
		pr_info("session %lu: index of %zu tasks sent", (unsigned long)c->id, s->nr_tasks);
	return 1;
}

/* lazy-wire client: OPEN and the index of an image (see wire_client_read.h). */
#include "wire_client_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

int wire_client_open(const struct wire_client *c, LwClass cls, uint8_t *scratch,
		     struct wire_open_info *info, char *err, size_t errlen)
{
	uint64_t deadline = mono_ms() + c->timeout_ms;
	ProtobufCMessage *m;
	int rc,
	    fd = wire_client_handshake(c, LW_ROLE__LW_ROLE_READ, scratch, deadline, err, errlen);

	if (fd < 0)
		return fd;
	LwOpen o = LW_OPEN__INIT;
	o.image = (char *)(c->image ? c->image : "default");
	o.class_ = cls;
	rc = wire_send(fd, scratch, WT_OPEN, &o.base, NULL, 0, deadline);
	if (!rc)
		rc = wire_client_expect(fd, scratch, WT_OPEN_REPLY, &m, deadline, err, errlen);
	if (rc)
		goto fail;
	LwOpenReply *r = (LwOpenReply *)m;
	*info =
	    (struct wire_open_info){r->nr_tasks, r->lazy_pages, r->zero_pages, r->dump_checksums};
	wire_free(m);
	return fd;
fail:
	wire_sock_close(fd);
	return rc < 0 ? rc : -EPROTO;
}

struct ix_state {
	size_t begun;  /* tasks started */
	size_t cap;    /* extents allocated for the current one */
	uint32_t want; /* extents announced for the current one */
};

static int add_extents(struct img_task *t, struct ix_state *st, const LwIndexPart *p, char *err,
		       size_t errlen)
{
	if (t->nr_extents + p->n_extents > st->want) {
		snprintf(err, errlen, "pid %d: more extents than announced", t->pid);
		return -1;
	}
	if (t->nr_extents + p->n_extents > st->cap) {
		/* Grown with what arrives, never to the announced size up front. */
		size_t nc = st->cap ? st->cap * 2 : 64;
		while (nc < t->nr_extents + p->n_extents)
			nc *= 2;
		if (nc > st->want)
			nc = st->want;
		struct img_extent *e = realloc(t->extents, nc * sizeof(*e));
		if (!e) {
			snprintf(err, errlen, "out of memory for the index");
			return -1;
		}
		t->extents = e;
		st->cap = nc;
	}
	for (size_t i = 0; i < p->n_extents; i++) {
		const LwExtent *x = p->extents[i];
		if (t->nr_extents && x->start < t->extents[t->nr_extents - 1].end) {
			snprintf(err, errlen, "pid %d: extents unsorted", t->pid);
			return -1;
		}
		struct img_extent *e = &t->extents[t->nr_extents++];
		*e = (struct img_extent){.start = x->start, .end = x->end, .zero = x->zero};
		e->pages_off = x->zero ? 0 : x->off;
		if (x->zero)
			t->zero_pages += (x->end - x->start) / IMG_PAGE_SIZE;
		else
			t->lazy_pages += (x->end - x->start) / IMG_PAGE_SIZE;
	}
	return 0;
}

static int take_part(struct img_set *set, struct ix_state *st, const LwIndexPart *p, char *err,
		     size_t errlen)
{
	struct img_task *t = st->begun ? &set->tasks[st->begun - 1] : NULL;
	bool cont = t && t->pid == p->pid && t->nr_extents < st->want;

	if (cont && (p->nr_extents != st->want || p->n_extents == 0)) {
		snprintf(err, errlen, "pid %d: inconsistent index part", p->pid);
		return -1;
	}
	if (!cont) {
		if (t && t->nr_extents != st->want) {
			snprintf(err, errlen, "pid %d: index parts missing", t->pid);
			return -1;
		}
		if (st->begun >= set->nr_tasks) {
			snprintf(err, errlen, "more tasks in the index than announced");
			return -1;
		}
		for (size_t i = 0; i < st->begun; i++)
			if (set->tasks[i].pid == p->pid) {
				snprintf(err, errlen, "pid %d twice in the index", p->pid);
				return -1;
			}
		t = &set->tasks[st->begun++];
		t->pid = p->pid;
		t->ppid = p->ppid;
		t->nr_threads = p->nr_threads;
		t->has_mm = p->has_mm;
		st->want = p->nr_extents;
		st->cap = 0;
	}
	return add_extents(t, st, p, err, errlen);
}

int wire_client_index(int fd, uint8_t *scratch, unsigned timeout_ms, uint32_t nr_tasks,
		      struct img_set *set, char *err, size_t errlen)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	struct ix_state st = {0};
	bool last = false;
	int rc;

	memset(set, 0, sizeof(*set));
	set->dirfd = -1;
	if (nr_tasks == 0 || nr_tasks > WIRE_MAX_TASKS) {
		snprintf(err, errlen, "the server announced %u tasks", nr_tasks);
		return -1;
	}
	set->tasks = calloc(nr_tasks, sizeof(*set->tasks));
	if (!set->tasks) {
		snprintf(err, errlen, "out of memory for %u tasks", nr_tasks);
		return -1;
	}
	set->nr_tasks = nr_tasks;
	for (size_t i = 0; i < nr_tasks; i++)
		set->tasks[i].pages_fd = -1;
	LwIndexGet g = LW_INDEX_GET__INIT;
	rc = wire_send(fd, scratch, WT_INDEX_GET, &g.base, NULL, 0, deadline);
	if (rc) {
		snprintf(err, errlen, "sending INDEX_GET: %s", strerror(-rc));
		goto fail;
	}
	/* Every part starts a task or brings extents (take_part refuses others); a deadline. */
	while (!last) {
		ProtobufCMessage *m;
		if (wire_client_expect(fd, scratch, WT_INDEX_PART, &m, deadline, err, errlen))
			goto fail;
		rc = take_part(set, &st, (LwIndexPart *)m, err, errlen);
		last = ((LwIndexPart *)m)->last;
		wire_free(m);
		if (rc)
			goto fail;
	}
	if (st.begun != set->nr_tasks || set->tasks[st.begun - 1].nr_extents != st.want) {
		snprintf(err, errlen, "the index ended after %zu of %zu tasks", st.begun,
			 set->nr_tasks);
		goto fail;
	}
	return 0;
fail:
	img_set_free(set);
	return -1;
}

/* lazy-wire client: OPEN, the index of an image, GET (see wire_client_read.h). */
#include "wire_client_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

int wire_client_open(const struct wire_client *c, LwClass cls, uint8_t *scratch,
		     struct wire_open_info *info, struct errmsg *e)
{
	uint64_t deadline = mono_ms() + c->timeout_ms;
	ProtobufCMessage *m;
	LwCodec codec = LW_CODEC__LW_CODEC_NONE;
	/* Only connections that take PAGES offer compression. */
	LwCodec *want = cls == LW_CLASS__LW_CLASS_META ? NULL : &codec;
	int rc, fd = wire_client_handshake(c, LW_ROLE__LW_ROLE_READ, scratch, deadline, want, e);

	if (fd < 0)
		return fd;
	LwOpen o = LW_OPEN__INIT;
	o.image = (char *)(c->image ? c->image : "default");
	o.class_ = cls;
	rc = wire_send(fd, scratch, WT_OPEN, &o.base, NULL, 0, deadline);
	if (!rc)
		rc = wire_client_expect(fd, scratch, WT_OPEN_REPLY, &m, deadline, e);
	if (rc) {
		wire_sock_close(fd);
		return rc;
	}
	LwOpenReply *r = (LwOpenReply *)m;
	*info =
	    (struct wire_open_info){.nr_tasks = r->nr_tasks,
				    .lazy_pages = r->lazy_pages,
				    .zero_pages = r->zero_pages,
				    .dump_checksums = r->dump_checksums,
				    .codec = codec,
				    .fingerprint = r->has_fingerprint ? r->fingerprint : 0,
				    .sums_fp = r->has_sums_fingerprint ? r->sums_fingerprint : 0};
	wire_free(m);
	return fd;
}

struct ix_state {
	size_t begun;  /* tasks started */
	size_t cap;    /* extents allocated for the current one */
	uint32_t want; /* extents announced for the current one */
};

/* p's extents onto task t (the one the part continues or starts): 0 or -errno. */
static int add_extents(struct img_task *t, struct ix_state *st, const LwIndexPart *p,
		       struct errmsg *e)
{
	if (t->nr_extents + p->n_extents > st->want)
		return errmsg_set(e, EPROTO, "pid %d: more extents than announced", t->pid);
	if (t->nr_extents + p->n_extents > st->cap) {
		/* Grown with what arrives, never to the announced size up front. */
		size_t nc = st->cap ? st->cap * 2 : 64;
		while (nc < t->nr_extents + p->n_extents)
			nc *= 2;
		if (nc > st->want)
			nc = st->want;
		struct img_extent *v = realloc(t->extents, nc * sizeof(*v));
		if (!v)
			return errmsg_set(e, ENOMEM, "out of memory for the index");
		t->extents = v;
		st->cap = nc;
	}
	for (size_t i = 0; i < p->n_extents; i++) {
		const LwExtent *x = p->extents[i];
		if (t->nr_extents && x->start < t->extents[t->nr_extents - 1].end)
			return errmsg_set(e, EPROTO, "pid %d: extents unsorted", t->pid);
		struct img_extent *v = &t->extents[t->nr_extents++];
		*v = (struct img_extent){.start = x->start, .end = x->end, .zero = x->zero};
		v->pages_off = x->zero ? 0 : x->off;
		if (x->zero)
			t->zero_pages += (x->end - x->start) / IMG_PAGE_SIZE;
		else
			t->lazy_pages += (x->end - x->start) / IMG_PAGE_SIZE;
	}
	return 0;
}

/* One INDEX_PART: it continues the current task or starts the next one. 0 or -errno. */
static int take_part(struct img_set *set, struct ix_state *st, const LwIndexPart *p,
		     struct errmsg *e)
{
	struct img_task *t = st->begun ? &set->tasks[st->begun - 1] : NULL;
	bool cont = t && t->pid == p->pid && t->nr_extents < st->want;

	if (cont && (p->nr_extents != st->want || p->n_extents == 0))
		return errmsg_set(e, EPROTO, "pid %d: inconsistent index part", p->pid);
	if (!cont) {
		if (t && t->nr_extents != st->want)
			return errmsg_set(e, EPROTO, "pid %d: index parts missing", t->pid);
		if (st->begun >= set->nr_tasks)
			return errmsg_set(e, EPROTO, "more tasks in the index than announced");
		for (size_t i = 0; i < st->begun; i++)
			if (set->tasks[i].pid == p->pid)
				return errmsg_set(e, EPROTO, "pid %d twice in the index", p->pid);
		t = &set->tasks[st->begun++];
		t->pid = p->pid;
		t->ppid = p->ppid;
		t->nr_threads = p->nr_threads;
		t->has_mm = p->has_mm;
		st->want = p->nr_extents;
		st->cap = 0;
	}
	return add_extents(t, st, p, e);
}

int wire_client_index(int fd, uint8_t *scratch, unsigned timeout_ms, uint32_t nr_tasks,
		      struct img_set *set, struct errmsg *e)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	struct ix_state st = {0};
	bool last = false;
	int rc;

	memset(set, 0, sizeof(*set));
	set->dirfd = -1;
	if (nr_tasks == 0 || nr_tasks > WIRE_MAX_TASKS)
		return errmsg_set(e, EPROTO, "the server announced %u tasks", nr_tasks);
	set->tasks = calloc(nr_tasks, sizeof(*set->tasks));
	if (!set->tasks)
		return errmsg_set(e, ENOMEM, "out of memory for %u tasks", nr_tasks);
	set->nr_tasks = nr_tasks;
	for (size_t i = 0; i < nr_tasks; i++)
		set->tasks[i].pages_fd = -1;
	LwIndexGet g = LW_INDEX_GET__INIT;
	rc = wire_send(fd, scratch, WT_INDEX_GET, &g.base, NULL, 0, deadline);
	if (rc) {
		errmsg_set(e, rc, "sending INDEX_GET: %s", strerror(-rc));
		goto fail;
	}
	/* Every part starts a task or brings extents (take_part refuses others); a deadline. */
	while (!last) {
		ProtobufCMessage *m;
		rc = wire_client_expect(fd, scratch, WT_INDEX_PART, &m, deadline, e);
		if (rc)
			goto fail;
		rc = take_part(set, &st, (LwIndexPart *)m, e);
		last = ((LwIndexPart *)m)->last;
		wire_free(m);
		if (rc)
			goto fail;
	}
	if (st.begun != set->nr_tasks || set->tasks[st.begun - 1].nr_extents != st.want) {
		rc = errmsg_set(e, EPROTO, "the index ended after %zu of %zu tasks", st.begun,
				set->nr_tasks);
		goto fail;
	}
	return 0;
fail:
	img_set_free(set);
	return rc;
}

int wire_client_get(int fd, uint8_t *scratch, uint32_t req, LwClass prio, int32_t pid, uint64_t off,
		    uint32_t n, uint64_t deadline)
{
	return wire_client_getv(fd, scratch, req, prio, pid, &off, &n, 1, deadline);
}

int wire_client_getv(int fd, uint8_t *scratch, uint32_t req, LwClass prio, int32_t pid,
		     const uint64_t *off, const uint32_t *n, unsigned nr, uint64_t deadline)
{
	LwRange r[WIRE_MAX_RANGES], *rp[WIRE_MAX_RANGES];
	LwGet g = LW_GET__INIT;

	if (!nr || nr > WIRE_MAX_RANGES)
		return -EINVAL;
	for (unsigned i = 0; i < nr; i++) {
		r[i] = (LwRange)LW_RANGE__INIT;
		r[i].pid = pid;
		r[i].off = off[i];
		r[i].nr_pages = n[i];
		rp[i] = &r[i];
	}
	g.req = req;
	g.prio = prio;
	g.n_ranges = nr;
	g.ranges = rp;
	return wire_send(fd, scratch, WT_GET, &g.base, NULL, 0, deadline);
}

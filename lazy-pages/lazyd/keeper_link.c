/*
 * The worker's end of the keeper (keeper.h): what the keeper forwards is dispatched here to
 * the same handlers a daemon without keeper uses for its own socket and uffds; the notes the
 * keeper needs go back; installs are guarded against events the keeper read but the worker
 * has not applied yet; and a restarted worker resumes after its replay.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lazyd.h"
#include "util/clock.h"

#define PAGE IMG_PAGE_SIZE
#define LINK_WAIT_MS 10000
/* UFFDIO_WAKE over every user address a task can have (x86-64, 4-level tables). */
#define WAKE_FROM 0x10000ULL
#define WAKE_TO 0x7ffffffff000ULL

/*
 * Notes wait in a queue of ours when the link is full: the worker never blocks on a send, so
 * it always goes back to reading what the keeper sends (a keeper blocked sending a replay,
 * and a worker blocked sending notes, would wait for each other for ever).
 */
static struct kp_msg *outq;
static size_t outq_n, outq_cap;

static void flush_notes(struct lazyd *d)
{
	size_t sent = 0;

	if (!outq_n)
		return;
	while (sent < outq_n) {
		ssize_t n =
		    send(d->keeper->fd, &outq[sent], sizeof(outq[0]), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break; /* full: later; gone: the link's EOF says so */
		sent++;
	}
	memmove(outq, outq + sent, (outq_n - sent) * sizeof(outq[0]));
	outq_n -= sent;
}

void keeper_note(struct lazyd *d, uint32_t type, int slot, int32_t a, int32_t c)
{
	struct kp_msg m = {.type = type, .slot = (uint32_t)slot, .a = a, .c = c};

	if (!d->keeper || slot < 0 || d->keeper->lost)
		return;
	if (outq_n == outq_cap) {
		size_t cap = outq_cap ? outq_cap * 2 : 256;
		struct kp_msg *q = realloc(outq, cap * sizeof(*q));
		if (!q) {
			/* A lost note would mislead the next worker: stop, the keeper restarts us.
			 */
			pr_err("out of memory for a note to the keeper: this worker stops");
			_exit(3);
		}
		outq = q;
		outq_cap = cap;
	}
	outq[outq_n++] = m;
	flush_notes(d);
}

void keeper_flush_notes(struct lazyd *d, bool wait)
{
	if (!d->keeper || d->keeper->lost)
		return;
	flush_notes(d);
	/* The last words (WK_DONE) before we exit: wait until the keeper took them. */
	for (int i = 0; wait && i < 1000 && outq_n && !d->keeper->lost; i++) {
		struct pollfd p = {d->keeper->fd, POLLOUT, 0};
		poll(&p, 1, 10);
		flush_notes(d);
	}
}

static struct lz_task *task_of_slot(struct lazyd *d, uint32_t slot)
{
	for (struct lz_task *t = d->tasks; t; t = t->next)
		if (t->slot >= 0 && (uint32_t)t->slot == slot)
			return t->gone ? NULL : t;
	return NULL;
}

/*
 * The replay's ghosts: tasks whose uffd the keeper closed since (they exited), rebuilt from
 * the images and their own events only so that a fork they made before exiting gets their
 * pending set, as it did when it happened. Never served; freed when the replay is over.
 */
static struct lz_task *ghost_of_slot(struct lazyd *d, uint32_t slot)
{
	for (struct lz_task *t = d->ghosts; t; t = t->next)
		if ((uint32_t)t->slot == slot)
			return t;
	return NULL;
}

static void ghost_new(struct lazyd *d, uint32_t slot, const struct img_task *img,
		      const struct pending *from, bool closed)
{
	struct lz_task *g = calloc(1, sizeof(*g));
	struct pending p = {0};

	if (!g || (from ? pending_clone(&p, from) : pending_from_image(&p, img))) {
		free(g); /* its forks cannot be followed then: they are killed (on_uffd_msg) */
		pending_free(&p);
		return;
	}
	/* killed: no uffd of its own to serve; closed: its uffd is closed at the keeper too
	 * (a replay's), so nothing more will come for it after the replay */
	*g = (struct lz_task){.pid = -1,
			      .real = -1,
			      .pidfd = -1,
			      .uffd = -1,
			      .slot = (int)slot,
			      .pagemap_fd = -2,
			      .img = img,
			      .pend = p,
			      .gone = true,
			      .killed = closed,
			      .d = d};
	snprintf(g->name, sizeof(g->name), "exited task (slot %u)", slot);
	g->next = d->ghosts;
	d->ghosts = g;
}

void keeper_ghost(struct lazyd *d, int slot, const struct img_task *img)
{
	ghost_new(d, (uint32_t)slot, img, NULL, false);
}

/* Ghosts whose slot is closed (all: at teardown), or the one of slot (its KP_GONE). */
static void free_ghosts_if(struct lazyd *d, bool all, bool closed, int slot)
{
	for (struct lz_task **pp = &d->ghosts; *pp;) {
		struct lz_task *g = *pp;
		if (!all && !(closed && g->killed) && g->slot != slot) {
			pp = &g->next;
			continue;
		}
		*pp = g->next;
		pending_free(&g->pend);
		free(g->faults);
		free(g);
	}
}

static void free_ghosts(struct lazyd *d)
{
	free_ghosts_if(d, false, true, -1);
}

void keeper_drop_ghosts(struct lazyd *d)
{
	free_ghosts_if(d, true, false, -1);
}

/* A ghost's event: what a fork inherits and where its pages are now. */
static void ghost_event(struct lazyd *d, struct lz_task *g, const struct uffd_msg *m,
			uint32_t child_slot, int fd)
{
	switch (m->event) {
	case UFFD_EVENT_FORK:
		if (fd < 0) {
			ghost_new(d, child_slot, g->img, &g->pend, true);
			return;
		}
		/* A live child of an exited task: served with what it inherited. */
		struct lz_task *c =
		    lazyd_add_task(d, -1, -1, fd, g->img, &g->pend, "child of an exited task");
		if (c) {
			/* No parent to look among for its pid (ours exited; the pid may be
			 * another process's now): served without one. */
			c->slot = (int)child_slot;
		} else {
			close(fd);
			keeper_note(d, WK_DROP, (int)child_slot, 2, 0);
		}
		return;
	case UFFD_EVENT_REMAP:
		pending_move(&g->pend, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
		return;
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		pending_remove(&g->pend, m->arg.remove.start, m->arg.remove.end);
		return;
	}
}

#define KILL_MAX 4096

static bool known(const pid_t *v, size_t n, pid_t p)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == p)
			return true;
	return false;
}

/*
 * A uffd the keeper had and had not handed over yet (a task item, a fork) is gone with it:
 * its task is one we do not know, below criu (the restore) or below a task we know. Those
 * are killed; the tasks we know that still needed pages were killed already.
 */
static void kill_unknown(struct lazyd *d)
{
	static pid_t seen[KILL_MAX], todo[KILL_MAX], ours[KILL_MAX];
	size_t nseen = 0, ntodo = 0, nours = 0;

	for (struct lz_task *t = d->tasks; t && nours < KILL_MAX; t = t->next)
		if (t->real > 0)
			ours[nours++] = t->real;
	if (d->peer > 0)
		todo[ntodo++] = d->peer;
	for (struct lz_task *t = d->tasks; t && ntodo < KILL_MAX; t = t->next)
		if (t->real > 0 && !t->gone)
			todo[ntodo++] = t->real;
	while (ntodo) {
		pid_t p = todo[--ntodo], c[64];
		size_t n = task_children(p, seen, nseen, c, 64);
		for (size_t i = 0; i < n && nseen < KILL_MAX; i++) {
			seen[nseen++] = c[i];
			if (!known(ours, nours, c[i])) {
				pr_err("pid %d (here), a child of pid %d: killing it: its uffd may "
				       "have "
				       "died with the keeper",
				       (int)c[i], (int)p);
				kill(c[i], SIGKILL);
			}
			if (ntodo < KILL_MAX)
				todo[ntodo++] = c[i];
		}
	}
}

static void keeper_lost(struct lazyd *d, const char *why)
{
	struct keeper_link *k = d->keeper;

	if (k->lost)
		return;
	k->lost = true;
	pr_err("the keeper is gone (%s): nothing would hold the tasks' uffds if this worker "
	       "died, and nothing reads them now",
	       why);
	lazyd_kill_pending(d, "the daemon's keeper died");
	kill_unknown(d);
	d->stop = true;
	d->rc = -1;
}

/* Pages the dead worker installed are in the tasks already: out of the pending sets. */
static uint64_t drop_present(struct lazyd *d, struct lz_task *t)
{
	int fd = task_pagemap(t);
	uint64_t found = 0;

	if (fd < 0 || !t->pend.n)
		return 0;
	struct pend_extent *v = malloc(t->pend.n * sizeof(*v));
	size_t n = t->pend.n;
	if (!v)
		return 0; /* installs of present pages say EEXIST: slower, still right */
	memcpy(v, t->pend.v, n * sizeof(*v));
	for (size_t i = 0; i < n && !t->killed; i++) {
		for (uint64_t at = v[i].start; at < v[i].end;) {
			uint64_t ent[512];
			size_t want = (v[i].end - at) / PAGE;
			if (want > 512)
				want = 512;
			ssize_t got = pread(fd, ent, want * sizeof(ent[0]), (off_t)(at / PAGE * 8));
			if (got <= 0)
				break;
			size_t m = (size_t)got / sizeof(ent[0]);
			for (size_t j = 0; j < m; j++) {
				/* present (63) or swapped (62): there, whatever it holds now */
				if (!(ent[j] >> 62))
					continue;
				uint64_t p = at + j * PAGE;
				size_t run = j + 1;
				while (run < m && (ent[run] >> 62))
					run++;
				/* installed, not dropped by the task: out of the set, counted apart
				 * (t's own count keeps total = pending + installed + dropped) */
				uint64_t before = t->pend.data_pages;
				if (pending_remove(&t->pend, p, at + run * PAGE)) {
					lazyd_task_fail(d, t, "out of memory while resuming");
					break;
				}
				t->cnt.dropped += before - t->pend.data_pages;
				found += before - t->pend.data_pages;
				j = run - 1;
			}
			at += m * PAGE;
		}
	}
	free(v);
	return found;
}

/*
 * After the replay: a restarted worker drops what is present; every worker wakes every
 * waiter, so that a fault the keeper read while no worker could take it (a dead one's, or
 * one before the first worker was ready) is raised again by its thread.
 */
static void resume(struct lazyd *d, bool restarted)
{
	uint64_t present = 0, pending = 0;
	size_t n = 0;

	for (struct lz_task *t = d->tasks; t; t = t->next) {
		if (t->gone || t->killed)
			continue;
		n++;
		if (restarted)
			present += drop_present(d, t);
		pending += t->pend.data_pages;
		d->fill.ops->wake(d->fill.ctx, t->uffd, WAKE_FROM, WAKE_TO - WAKE_FROM);
	}
	if (!restarted)
		return;
	d->st.pages_resumed_present += present;
	pr_msg("resumed after worker restart %u: %zu tasks, %lu data pages found installed, "
	       "%lu still to serve",
	       d->keeper->restarts, n, (unsigned long)present, (unsigned long)pending);
}

static void on_uffd_msg(struct lazyd *d, const struct kp_msg *m, int fd)
{
	struct keeper_link *k = d->keeper;
	struct lz_task *t = task_of_slot(d, m->slot);
	struct uffd_msg um = m->m;

	if (um.event != UFFD_EVENT_PAGEFAULT)
		k->events_seen++;
	struct lz_task *g = !t ? ghost_of_slot(d, m->slot) : NULL;
	if (g) {
		if (um.event != UFFD_EVENT_PAGEFAULT)
			ghost_event(d, g, &um, (uint32_t)m->b, fd);
		return;
	}
	if (!t) {
		/* A task no longer served (refused, gone): a fork of it inherits nothing we know
		 * (lazyd_task_exited() applies a task's messages before it is gone): the child
		 * is killed (WK_DROP 2) rather than left to read zeros. */
		if (fd >= 0)
			close(fd);
		if (um.event == UFFD_EVENT_FORK) {
			pr_err("a fork of a task no longer served (slot %u): killing the child",
			       m->slot);
			keeper_note(d, WK_DROP, m->b, 2, 0);
		}
		return;
	}
	if (um.event == UFFD_EVENT_FORK) {
		if (fd < 0) { /* the child exited since (replay): a ghost, for its own forks */
			if (!k->live)
				ghost_new(d, (uint32_t)m->b, t->img, &t->pend, true);
			return;
		}
		um.arg.fork.ufd = (uint32_t)fd;
		struct lz_task *head = d->tasks;
		lazyd_handle_msg(d, t, &um);
		/* lazyd_add_task() puts a new task first */
		if (d->tasks != head)
			d->tasks->slot = m->b;
		else
			keeper_note(d, WK_DROP, m->b, 2, 0); /* not followed: killed */
		return;
	}
	d->msg_read_ns = m->t_ns;
	lazyd_handle_msg(d, t, &um);
	d->msg_read_ns = 0;
}

static void dispatch(struct lazyd *d, const struct kp_msg *m, int fd)
{
	struct keeper_link *k = d->keeper;
	struct lz_task *t;
	struct lps_msg lm = {.pid = m->a, .uffd = fd, .sender = m->b};

	switch (m->type) {
	case KP_HELLO:
		k->restarts = (unsigned)m->a;
		k->resuming = m->b;
		d->st.worker_restarts = k->restarts;
		return;
	case KP_CONNECTED:
		d->peer = m->a;
		if (!k->resuming)
			pr_info("restore connected (criu pid %d)", m->a);
		return;
	case KP_TASK:
		/* The replay of a task that exited since: a ghost, for the forks it made. */
		if (fd < 0 && !k->live && m->slot != UINT32_MAX && !(m->flags & KPF_REFUSED) &&
		    img_set_find(&d->img, m->a))
			ghost_new(d, m->slot, img_set_find(&d->img, m->a), NULL, true);
		lazyd_restore_item(d, LPS_TASK, &lm, m->slot == UINT32_MAX ? -1 : (int)m->slot,
				   m->flags, m->c);
		return;
	case KP_ZOMBIE:
		lazyd_restore_item(d, LPS_ZOMBIE, &lm, -1, 0, 0);
		return;
	case KP_FINISHED:
		lazyd_restore_item(d, LPS_FINISHED, &lm, -1, 0, 0);
		return;
	case KP_RESTORE_FAILED:
		lazyd_restore_item(d, m->a ? LPS_ERROR : LPS_EOF, &lm, -1, 0, 0);
		return;
	case KP_UFFD:
		on_uffd_msg(d, m, fd);
		return;
	case KP_GONE:
		if ((t = task_of_slot(d, m->slot)))
			lazyd_task_gone(d, t, "address space released");
		free_ghosts_if(d, false, false, (int)m->slot);
		return;
	case KP_IDENT:
		if ((t = task_of_slot(d, m->slot)) && t->real <= 0)
			lazyd_task_is(d, t, m->c);
		return;
	case KP_LIVE:
		k->live = true;
		free_ghosts(d);
		resume(d, k->resuming);
		return;
	case KP_SYNCED:
		k->synced = true;
		return;
	}
	if (fd >= 0)
		close(fd);
	pr_warn("keeper: unknown message %u ignored", m->type);
}

/* One datagram: 1 (handled), 0 (nothing there), -1 (the keeper is gone). */
static int recv_one(struct lazyd *d, int wait_ms)
{
	struct kp_msg in[KP_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {in, sizeof(in)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	int fd = -1;

	if (outq_n)
		flush_notes(d);
	for (uint64_t until = mono_ms() + (uint64_t)wait_ms; wait_ms;) {
		/* Readable, or (notes queued) writable: our notes may be what it waits for. */
		struct pollfd p = {d->keeper->fd, POLLIN | (outq_n ? POLLOUT : 0), 0};
		uint64_t now = mono_ms();
		int rc = now < until ? poll(&p, 1, (int)(until - now)) : 0;
		if (rc == 0) {
			keeper_lost(d, "it did not answer");
			return -1;
		}
		if (rc > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
			break;
		if (outq_n)
			flush_notes(d);
	}
	ssize_t n = recvmsg(d->keeper->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		keeper_lost(d, n ? strerror(errno) : "its socket closed");
		return -1;
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		/* A uffd did not reach us (out of fds): never serve without it. The keeper
		 * starts another worker, with fds to spare, and replays. */
		pr_err("a uffd from the keeper was lost (out of file descriptors?): this worker "
		       "stops");
		_exit(3);
	}
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	for (size_t i = 0; i < (size_t)n / sizeof(in[0]); i++)
		dispatch(d, &in[i], i == 0 ? fd : -1);
	return 1;
}

static void on_keeper(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct lazyd *d = data;

	(void)l;
	(void)fd;
	(void)events;
	for (int i = 0; i < 64 && !d->keeper->lost && recv_one(d, 0) > 0; i++)
		;
}

void keeper_sync(struct lazyd *d)
{
	struct keeper_link *k = d->keeper;
	if (k->lost)
		return;
	k->synced = false;
	keeper_note(d, WK_SYNC, 0, 0, 0);
	while (!k->synced && !k->lost && recv_one(d, LINK_WAIT_MS) >= 0)
		;
}

int keeper_link_start(struct lazyd *d)
{
	struct keeper_link *k = d->keeper;
	int rc = ev_add(d->loop, k->fd, EV_READ, on_keeper, d);

	if (rc)
		return rc;
	keeper_note(d, WK_READY, 0, (int32_t)d->img.nr_tasks, 0);
	/* The replay, whole, before anything is installed (pending sets must be complete). */
	while (!k->live && !k->lost && recv_one(d, LINK_WAIT_MS) >= 0)
		;
	return k->lost ? -EPIPE : 0;
}

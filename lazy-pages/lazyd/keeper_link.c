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

#define PAGE IMG_PAGE_SIZE
#define LINK_WAIT_MS 10000
/* UFFDIO_WAKE over every user address a task can have (x86-64, 4-level tables). */
#define WAKE_FROM 0x10000ULL
#define WAKE_TO 0x7ffffffff000ULL

void keeper_note(struct lazyd *d, uint32_t type, int slot, int32_t a, int32_t c)
{
	struct kp_msg m = {.type = type, .slot = (uint32_t)slot, .a = a, .c = c};

	if (!d->keeper || slot < 0 || d->keeper->lost)
		return;
	/* A keeper that is gone is seen on the link's EOF, where the tasks are killed. */
	while (send(d->keeper->fd, &m, sizeof(m), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static struct lz_task *task_of_slot(struct lazyd *d, uint32_t slot)
{
	for (struct lz_task *t = d->tasks; t; t = t->next)
		if (t->slot >= 0 && (uint32_t)t->slot == slot)
			return t->gone ? NULL : t;
	return NULL;
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
				uint64_t before = t->pend.data_pages;
				lazyd_drop_range(d, t, p, at + run * PAGE);
				/* installed, not dropped by the task: counted apart */
				d->st.pages_dropped -= before - t->pend.data_pages;
				found += before - t->pend.data_pages;
				j = run - 1;
			}
			at += m * PAGE;
		}
	}
	free(v);
	return found;
}

/* After the replay of a restarted worker: drop what is present, wake every waiter. */
static void resume(struct lazyd *d)
{
	uint64_t present = 0, pending = 0;
	size_t n = 0;

	for (struct lz_task *t = d->tasks; t; t = t->next) {
		if (t->gone || t->killed)
			continue;
		n++;
		present += drop_present(d, t);
		pending += t->pend.data_pages;
		/* A fault the dead worker had read is raised again by its thread. */
		d->fill.ops->wake(d->fill.ctx, t->uffd, WAKE_FROM, WAKE_TO - WAKE_FROM);
	}
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
	if (!t) {
		/* A task no longer served (refused, gone): its fork has nothing it could inherit
		 * (lazyd_task_exited() applies a task's messages before it is gone). */
		if (fd >= 0)
			close(fd);
		if (um.event == UFFD_EVENT_FORK)
			pr_warn("a fork of a task no longer served (slot %u): not followed", m->slot);
		if (um.event == UFFD_EVENT_FORK)
			keeper_note(d, WK_DROP, m->b, 0, 0);
		return;
	}
	if (um.event == UFFD_EVENT_FORK) {
		if (fd < 0)
			return; /* the child is gone since (replay) */
		um.arg.fork.ufd = (uint32_t)fd;
		struct lz_task *head = d->tasks;
		lazyd_handle_msg(d, t, &um);
		/* lazyd_add_task() puts a new task first */
		if (d->tasks != head)
			d->tasks->slot = m->b;
		else
			keeper_note(d, WK_DROP, m->b, 0, 0);
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
		return;
	case KP_IDENT:
		if ((t = task_of_slot(d, m->slot)) && t->real <= 0)
			lazyd_task_is(d, t, m->c);
		return;
	case KP_LIVE:
		k->live = true;
		if (k->resuming)
			resume(d);
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

	if (wait_ms) {
		struct pollfd p = {d->keeper->fd, POLLIN, 0};
		int rc = poll(&p, 1, wait_ms);
		if (rc == 0) {
			keeper_lost(d, "it did not answer");
			return -1;
		}
	}
	ssize_t n = recvmsg(d->keeper->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		keeper_lost(d, n ? strerror(errno) : "its socket closed");
		return -1;
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
	struct kp_msg m = {.type = WK_SYNC};

	if (k->lost)
		return;
	k->synced = false;
	if (send(k->fd, &m, sizeof(m), MSG_NOSIGNAL) < 0) {
		keeper_lost(d, strerror(errno));
		return;
	}
	while (!k->synced && !k->lost && recv_one(d, LINK_WAIT_MS) >= 0)
		;
}

int keeper_link_start(struct lazyd *d)
{
	struct keeper_link *k = d->keeper;
	struct kp_msg m = {.type = WK_READY, .a = (int32_t)d->img.nr_tasks};
	int rc = ev_add(d->loop, k->fd, EV_READ, on_keeper, d);

	if (rc)
		return rc;
	if (send(k->fd, &m, sizeof(m), MSG_NOSIGNAL) < 0)
		return -errno;
	/* The replay, whole, before anything is installed (pending sets must be complete). */
	while (!k->live && !k->lost && recv_one(d, LINK_WAIT_MS) >= 0)
		;
	return k->lost ? -EPIPE : 0;
}

/* ---- the fill engine, guarded: keeper.h says why ---- */

struct guard {
	struct filler inner;
	struct keeper_link *k;
};

static struct guard guard;

static bool guard_enter(struct keeper_link *k)
{
	int rc = pthread_mutex_lock(&k->shm->lock);

	if (rc == EOWNERDEAD) /* the keeper died holding it: the link's EOF follows */
		rc = pthread_mutex_consistent(&k->shm->lock);
	if (rc)
		return false;
	if (k->shm->events_read != k->events_seen) {
		pthread_mutex_unlock(&k->shm->lock);
		return false;
	}
	return true;
}

static int g_copy(void *ctx, int uffd, uint64_t dst, const void *src, uint64_t len, uint64_t *done)
{
	struct guard *g = ctx;

	*done = 0;
	if (!guard_enter(g->k))
		return -EAGAIN;
	int rc = g->inner.ops->copy(g->inner.ctx, uffd, dst, src, len, done);
	pthread_mutex_unlock(&g->k->shm->lock);
	return rc;
}

static int g_zero(void *ctx, int uffd, uint64_t dst, uint64_t len, uint64_t *done)
{
	struct guard *g = ctx;

	*done = 0;
	if (!guard_enter(g->k))
		return -EAGAIN;
	int rc = g->inner.ops->zero(g->inner.ctx, uffd, dst, len, done);
	pthread_mutex_unlock(&g->k->shm->lock);
	return rc;
}

static int g_wake(void *ctx, int uffd, uint64_t dst, uint64_t len)
{
	struct guard *g = ctx;

	return g->inner.ops->wake(g->inner.ctx, uffd, dst, len);
}

static int g_attach(void *ctx, int uffd, pid_t pid, int pidfd, bool verify)
{
	struct guard *g = ctx;

	return filler_attach(&g->inner, uffd, pid, pidfd, verify);
}

static void g_detach(void *ctx, int uffd)
{
	struct guard *g = ctx;

	filler_detach(&g->inner, uffd);
}

static int g_batch(void *ctx, int uffd, struct fill_extent *ext, uint32_t n, uint32_t *first)
{
	struct guard *g = ctx;

	if (!guard_enter(g->k)) {
		for (uint32_t i = 0; i < n; i++) {
			ext[i].done = 0;
			ext[i].result = -EAGAIN;
		}
		*first = 0;
		return -EAGAIN;
	}
	int rc = filler_batch(&g->inner, uffd, ext, n, first);
	pthread_mutex_unlock(&g->k->shm->lock);
	return rc;
}

static void g_stats(void *ctx, struct fill_stats *st)
{
	struct guard *g = ctx;

	filler_stats(&g->inner, st);
}

static void g_close(void *ctx)
{
	struct guard *g = ctx;

	filler_close(&g->inner);
}

static struct filler_ops guard_ops = {
    .copy = g_copy,
    .zero = g_zero,
    .wake = g_wake,
    .attach = g_attach,
    .detach = g_detach,
    .stats = g_stats,
    .close = g_close,
};

void keeper_guard_filler(struct lazyd *d)
{
	guard.inner = d->fill;
	guard.k = d->keeper;
	guard_ops.name = d->fill.ops->name;
	/* Optional ops stay optional: the daemon asks whether the engine has them. */
	guard_ops.attach = d->fill.ops->attach ? g_attach : NULL;
	guard_ops.detach = d->fill.ops->detach ? g_detach : NULL;
	guard_ops.batch = d->fill.ops->batch ? g_batch : NULL;
	guard_ops.stats = d->fill.ops->stats ? g_stats : NULL;
	d->fill = (struct filler){&guard_ops, &guard};
}

/*
 * The restore's connection on lazy-pages.socket: criu connects once, then each restored task
 * sends its pid and uffd over it (lpsock.c reads the protocol), then the restore-finished
 * marker. A task is served only if the kernel says the sender is that task, in criu's tree.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lazyd.h"

void lazyd_kill_pending(struct lazyd *d, const char *why)
{
	for (struct lz_task *t = d->tasks; t; t = t->next)
		if (!t->gone && (t->pend.data_pages || t->nfaults))
			lazyd_task_fail(d, t, "%s", why);
}

/* The restore cannot go on: every task that still needs pages is killed, the daemon stops. */
static void restore_failed(struct lazyd *d)
{
	d->stop = true;
	d->rc = -1;
	lazyd_kill_pending(d, "the restore failed");
}

/*
 * An item restore sent that we do not serve. 'real' is the process it
 * names, if we know it: killed, so that it never runs on with pages that
 * nobody serves. A pid we could not resolve kills nothing.
 */
static void reject_task(struct lazyd *d, int pid, pid_t real, int uffd, int slot, const char *why)
{
	struct lz_task tmp = {.pid = pid, .real = real, .pidfd = task_open_pidfd(real)};

	snprintf(tmp.name, sizeof(tmp.name), "pid %d", pid);
	if (real > 0) {
		task_err(&tmp, "restore sent a task %s; killing it (pid %d here)", why, (int)real);
		if (task_kill(&tmp))
			d->st.tasks_killed++;
	} else {
		task_err(&tmp, "refused: %s; nothing killed", why);
	}
	if (tmp.pidfd >= 0)
		close(tmp.pidfd);
	close(uffd);
	keeper_note(d, WK_DROP, slot, 1, 0);
	d->items_refused++;
}

/* Why a task whose sender checked out is not to be served; NULL: serve it. */
static const char *check_task(struct lazyd *d, const struct lps_msg *m, const struct img_task *img)
{
	static char why[96];
	const char *cause = lps_check_uffd(m->uffd);

	if (cause) {
		snprintf(why, sizeof(why), "with an fd that is %s", cause);
		return why;
	}
	if (!img)
		return "that pstree.img does not list";
	if (!img->has_mm)
		return "that has no memory images";
	for (struct lz_task *t = d->tasks; t; t = t->next)
		if (t->img == img && t->pid == m->pid)
			return "twice";
	return NULL;
}

/*
 * The task sent its uffd and exited before we read it: nothing to serve. With a keeper, a
 * fork it made first may still be in its uffd: the keeper keeps reading it, and a ghost of
 * the task (its pending set, never served) gives such a child what it inherited.
 */
static void task_gone_early(struct lazyd *d, const struct lps_msg *m, int slot)
{
	const struct img_task *img = img_set_find(&d->img, m->pid);

	pr_info("pid %d: exited before its uffd was read: nothing to serve", m->pid);
	d->st.tasks++;
	d->st.tasks_exited++;
	close(m->uffd);
	if (slot >= 0 && img && img->has_mm)
		keeper_ghost(d, slot, img);
	else
		keeper_note(d, WK_DROP, slot, 0, 0);
}

/* The keeper's replay of a task whose uffd it closed since: decided by an earlier worker. */
static void task_replayed_closed(struct lazyd *d, uint32_t flags)
{
	if (flags & KPF_REFUSED) {
		d->items_refused++;
	} else {
		d->st.tasks++;
		d->st.tasks_exited++;
	}
}

static void new_task(struct lazyd *d, const struct lps_msg *m, int slot, uint32_t flags,
		     pid_t accepted)
{
	const struct img_task *img = img_set_find(&d->img, m->pid);
	char name[48];
	const char *cause;
	struct errmsg e;
	pid_t real = accepted;

	d->received++;
	if (m->uffd < 0) {
		task_replayed_closed(d, flags);
		return;
	}
	/* A task an earlier worker accepted was checked then (criu may have exited since). */
	if (!(flags & KPF_ACCEPTED) && task_resolve_sender(d->peer, m->sender, m->pid, &real, &e)) {
		reject_task(d, m->pid, real, m->uffd, slot, e.msg);
		return;
	}
	if (!real) {
		task_gone_early(d, m, slot);
		return;
	}
	if ((cause = check_task(d, m, img))) {
		reject_task(d, m->pid, real, m->uffd, slot, cause);
		return;
	}
	snprintf(name, sizeof(name), "pid %d", m->pid);
	struct lz_task *t = lazyd_add_task(d, m->pid, real, m->uffd, img, NULL, name);
	if (!t) {
		reject_task(d, m->pid, real, m->uffd, slot, "we cannot track");
		return;
	}
	t->slot = slot;
	keeper_note(d, WK_ACCEPT, slot, m->pid, real);
	d->st.tasks++;
	if (real != m->pid && !(flags & KPF_ACCEPTED))
		pr_info("pid %d is pid %d here", m->pid, (int)real);
}

/* Hang up on the restore connection; the tasks it sent are served on. */
static void drop_conn(struct lazyd *d)
{
	ev_del(d->loop, d->conn_fd);
	close(d->conn_fd);
	d->conn_fd = -1;
	lps_rx_free(&d->rx);
}

/* Anything but the hang-up after the finished marker is not criu's: ignored. */
static void after_finish(struct lazyd *d, enum lps_item it)
{
	if (it == LPS_NONE)
		return;
	if (it != LPS_EOF)
		pr_warn("lazy-pages socket: data after the restore-finished marker: hung up, "
			"nothing changed");
	drop_conn(d);
}

void lazyd_restore_item(struct lazyd *d, enum lps_item it, const struct lps_msg *m, int slot,
			uint32_t flags, pid_t real)
{
	switch (it) {
	case LPS_NONE:
		return;
	case LPS_TASK:
		pr_debug("received pid %d, uffd %d, from pid %d", m->pid, m->uffd, (int)m->sender);
		new_task(d, m, slot, flags, real);
		return;
	case LPS_ZOMBIE:
		pr_debug("received zombie pid %d", m->pid);
		d->received++;
		d->st.zombies++;
		return;
	case LPS_FINISHED:
		d->restore_finished = true;
		d->st.t_restored = now_s();
		lazyd_ws_restored(d);
		pr_info("restore finished (%zu of %zu tasks): background prefetch starts",
			d->received, d->img.nr_tasks);
		return;
	case LPS_EOF:
		pr_err("criu closed lazy-pages.socket before the restore finished: the "
		       "restore failed");
		restore_failed(d);
		return;
	case LPS_ERROR:
		pr_err("protocol error on lazy-pages.socket: giving up on this restore");
		restore_failed(d);
		return;
	}
}

static void on_conn(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct lazyd *d = data;

	(void)l;
	(void)fd;
	(void)events;
	while (d->conn_fd >= 0) {
		struct lps_msg m = {.uffd = -1};
		size_t left = d->restore_finished ? 0 : d->img.nr_tasks - d->received;
		enum lps_item it = lps_next(d->conn_fd, &d->rx, left, &m);
		if (d->restore_finished) {
			after_finish(d, it);
			return;
		}
		if (it == LPS_EOF || it == LPS_ERROR)
			drop_conn(d);
		lazyd_restore_item(d, it, &m, -1, 0, 0);
		if (it == LPS_NONE || it == LPS_EOF || it == LPS_ERROR)
			return;
	}
}

/*
 * The first connection of our own uid is the restore (criu connects once,
 * and its tasks send their uffds over that connection); any other is closed
 * unread: it changes nothing.
 */
static void on_accept(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct lazyd *d = data;
	struct ucred cr;

	(void)events;
	int c = lps_accept(fd, d->peer > 0, &cr);
	if (c < 0)
		return;
	d->conn_fd = c;
	d->peer = cr.pid;
	int rc = ev_add(l, c, EV_READ, on_conn, d);
	if (rc)
		pr_err("event loop: cannot watch the restore's connection: %s", strerror(-rc));
	pr_info("restore connected (criu pid %d)", (int)d->peer);
}

int lazyd_listen(struct lazyd *d)
{
	d->listen_fd = lps_listen();
	if (d->listen_fd < 0)
		return d->listen_fd;
	return ev_add(d->loop, d->listen_fd, EV_READ, on_accept, d);
}

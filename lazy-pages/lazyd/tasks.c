/*
 * A served task's life: tracked (its uffd and pidfd in the event loop, bound in the fill
 * engine), gone (exited or its mm released), failed (killed, so that it never runs on with
 * a wrong page).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lazyd.h"

static void on_uffd(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct lz_task *t = data;

	(void)l;
	(void)fd;
	(void)events;
	if (!t->gone)
		lazyd_read_uffd(t->d, t);
}

static void on_pidfd(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct lz_task *t = data;

	(void)l;
	(void)fd;
	(void)events;
	lazyd_task_exited(t->d, t);
	lazyd_reap_exited(t->d); /* from the loop itself: at once */
}

/* Bind the task's uffd in the fill engine (an engine that needs no binding says 0). */
static void attach(struct lazyd *d, struct lz_task *t, bool verify)
{
	int rc = filler_attach(&d->fill, t->uffd, t->real, t->pidfd, verify);

	if (rc == -EPERM && verify)
		task_warn(t, "lazyfill.ko says its uffd is not this process's: plain userfaultfd "
			     "for it");
	else if (rc)
		task_warn(t, "no lazyfill.ko session (%s): plain userfaultfd for it",
			  strerror(-rc));
}

struct lz_task *lazyd_add_task(struct lazyd *d, int pid, pid_t real, int uffd,
			       const struct img_task *img, const struct pending *pend,
			       const char *name)
{
	struct lz_task *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->pid = pid;
	t->real = real;
	t->uffd = uffd;
	t->slot = -1;
	t->pagemap_fd = -1;
	t->img = img;
	t->d = d;
	t->pidfd = task_open_pidfd(real);
	snprintf(t->name, sizeof(t->name), "%s", name);
	int rc = pend ? pending_clone(&t->pend, pend) : pending_from_image(&t->pend, img);
	int fl = fcntl(uffd, F_GETFL);
	if (!rc && (fl < 0 || fcntl(uffd, F_SETFL, fl | O_NONBLOCK)))
		rc = -errno;
	if (!rc && !d->keeper) /* with a keeper, it reads the uffds */
		rc = ev_add(d->loop, uffd, EV_READ, on_uffd, t);
	if (!rc && t->pidfd >= 0)
		rc = ev_add(d->loop, t->pidfd, EV_READ, on_pidfd, t);
	if (rc) {
		pr_err("%s: cannot track the task: %s", name, strerror(-rc));
		ev_del(d->loop, uffd);
		if (t->pidfd >= 0) {
			ev_del(d->loop, t->pidfd);
			close(t->pidfd);
		}
		pending_free(&t->pend);
		free(t);
		return NULL;
	}
	t->cnt.total = t->pend.data_pages;
	t->next = d->tasks;
	d->tasks = t;
	task_info(t, "serving %lu pages (%lu with data), uffd %d, pidfd %d",
		  (unsigned long)t->pend.pages, (unsigned long)t->pend.data_pages, uffd, t->pidfd);
	if (d->fill.ops->attach && real <= 0 && t->pidfd < 0)
		/* The module binds a uffd to a task by pid: without one, plain ioctls. */
		task_info(t, "pid unknown: plain userfaultfd for it until it is known");
	else if (d->fill.ops->attach)
		attach(d, t, false);
	if (!pend) /* an image task (a fork child has no record of its own) */
		lazyd_ws_attach(d, t);
	return t;
}

void lazyd_task_identified(struct lazyd *d, struct lz_task *t)
{
	if (ev_add(d->loop, t->pidfd, EV_READ, on_pidfd, t))
		task_warn(t, "cannot watch its pidfd: its exit is seen on its uffd only");
	/* Verified: the module checks that this process's VMAs are this uffd's. */
	if (d->fill.ops->attach)
		attach(d, t, true);
}

void lazyd_task_exited(struct lazyd *d, struct lz_task *t)
{
	/*
	 * With a keeper, what it read of this task's uffd may still be on its way: a fork the
	 * task made just before it exited (a daemon's double fork) must reach us while the
	 * task's pending set, which the child inherits, is still there. The messages are
	 * applied by the event loop's next turn (lazyd_reap_exited), never in the middle of an
	 * install, whose runs they could move.
	 */
	if (d->keeper) {
		t->exit_seen = true;
		return;
	}
	lazyd_task_gone(d, t, "exited");
}

void lazyd_reap_exited(struct lazyd *d)
{
	bool any = false;

	for (struct lz_task *t = d->tasks; t && !any; t = t->next)
		any = t->exit_seen && !t->gone;
	if (!any)
		return;
	keeper_sync(d);
	for (struct lz_task *t = d->tasks; t; t = t->next)
		if (t->exit_seen && !t->gone)
			lazyd_task_gone(d, t, "exited");
}

void lazyd_task_gone(struct lazyd *d, struct lz_task *t, const char *why)
{
	if (t->gone)
		return;
	/* A fill thread may be installing through the uffd: never close it under one (its
	 * number could name another task's uffd by then). What its jobs installed counts. */
	lazyd_pfill_forget(d, t);
	if (t->pend.data_pages)
		task_info(t, "gone (%s) with %lu data pages not needed any more", why,
			  (unsigned long)t->pend.data_pages);
	else
		task_info(t, "gone (%s)", why);
	t->gone = true;
	d->st.tasks_exited++;
	ev_del(d->loop, t->uffd);
	ev_del(d->loop, t->pidfd);
	/* A session holds the uffd too: drop it first, or the registration stays. */
	filler_detach(&d->fill, t->uffd);
	close(t->uffd);
	t->uffd = -1;
	keeper_note(d, WK_DROP, t->slot, 0, 0);
	if (t->pidfd >= 0)
		close(t->pidfd);
	t->pidfd = -1;
	if (t->pagemap_fd >= 0)
		close(t->pagemap_fd);
	t->pagemap_fd = -2;
	t->nfaults = 0;
	t->nwaiting = 0;
	t->cnt.dropped += t->pend.data_pages;
	pending_free(&t->pend);
	lazyd_ws_detach(t);
}

/*
 * The task cannot be served correctly: it must not run on with a wrong
 * page, so it is killed. Its uffd stays open until it is gone, so that
 * nothing it touches in the meantime is zero-filled by the kernel.
 */
void lazyd_task_fail(struct lazyd *d, struct lz_task *t, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (t->killed || t->gone)
		return;
	task_err(t, "killing the task: %s", why);
	keeper_note(d, WK_KILLED, 0, 0, 0);
	if (task_kill(t))
		d->st.tasks_killed++;
	else
		task_err(t, "holding its uffd so that it never reads a zero-filled page; "
			    "kill it by hand");
	/* Served no more either way; gone once its pidfd says it exited. */
	t->killed = true;
	t->nfaults = 0;
	t->nwaiting = 0;
}

void lazyd_drop_range(struct lazyd *d, struct lz_task *t, uint64_t start, uint64_t end)
{
	uint64_t before = t->pend.data_pages;
	if (pending_remove(&t->pend, start, end))
		lazyd_task_fail(d, t, "out of memory while tracking pending pages");
	d->st.pages_dropped += before - t->pend.data_pages;
	t->cnt.dropped += before - t->pend.data_pages;
}

bool lazyd_all_done(const struct lazyd *d)
{
	for (const struct lz_task *t = d->tasks; t; t = t->next) {
		if (t->gone)
			continue;
		if (t->killed || t->nfaults || t->pend.data_pages || t->need_events)
			return false;
	}
	return true;
}

void lazyd_free_tasks(struct lazyd *d)
{
	struct lz_task *t = d->tasks;

	while (t) {
		struct lz_task *next = t->next;
		if (t->uffd >= 0) {
			ev_del(d->loop, t->uffd);
			close(t->uffd);
		}
		if (t->pidfd >= 0) {
			ev_del(d->loop, t->pidfd);
			close(t->pidfd);
		}
		if (t->pagemap_fd >= 0)
			close(t->pagemap_fd);
		pending_free(&t->pend);
		lazyd_ws_detach(t);
		free(t->faults);
		free(t);
		t = next;
	}
	d->tasks = NULL;
	d->drain_at = NULL;
}

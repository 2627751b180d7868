/*
 * criu-lazyd: serves the memory of tasks restored by `criu restore
 * --lazy-pages`, from local images. One event loop: the lazy-pages socket,
 * every task's uffd and pidfd; faults first, then one background step.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fill/fill_kmod.h"
#include "util/daemon.h"
#include "lazyd.h"
#include "util/log.h"

#define PAGE IMG_PAGE_SIZE
#define MAX_EVENTS 64

static unsigned items_refused; /* tasks restore sent that we did not serve */

static int ep_add(struct lazyd *d, int fd, struct ep_tag *tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* Kill every task that still needs pages from us: used when we cannot go on. */
static void kill_pending_tasks(struct lazyd *d, const char *why)
{
	for (struct lz_task *t = d->tasks; t; t = t->next)
		if (!t->gone && (t->pend.data_pages || t->nfaults))
			lazyd_task_fail(d, t, "%s", why);
}

/*
 * An item restore sent that we do not serve. 'real' is the process it
 * names, if we know it: killed, so that it never runs on with pages that
 * nobody serves. A pid we could not resolve kills nothing.
 */
static void reject_task(struct lazyd *d, int pid, pid_t real, int uffd, const char *why)
{
	struct lz_task tmp = {.pid = pid, .real = real, .pidfd = task_open_pidfd(real)};

	snprintf(tmp.name, sizeof(tmp.name), "pid %d", pid);
	if (real > 0) {
		pr_err("pid %d: restore sent a task %s; killing it (pid %d here)", pid, why,
		       (int)real);
		if (task_kill(&tmp))
			d->st.tasks_killed++;
	} else {
		pr_err("pid %d: refused: %s; nothing killed", pid, why);
	}
	if (tmp.pidfd >= 0)
		close(tmp.pidfd);
	close(uffd);
	items_refused++;
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

/* The task sent its uffd and exited before we read it: nothing to serve. */
static void task_gone_early(struct lazyd *d, const struct lps_msg *m)
{
	pr_info("pid %d: exited before its uffd was read: nothing to serve", m->pid);
	d->st.tasks++;
	d->st.tasks_exited++;
	close(m->uffd);
}

static void new_task(struct lazyd *d, const struct lps_msg *m)
{
	const struct img_task *img = img_set_find(&d->img, m->pid);
	char name[48], why[160];
	const char *cause;

	d->received++;
	pid_t real = task_resolve_sender(d->peer, m->sender, m->pid, &cause);
	if (!real && !cause) {
		task_gone_early(d, m);
		return;
	}
	if (cause) {
		snprintf(why, sizeof(why), "%s (sender pid %d, criu pid %d)", cause, (int)m->sender,
			 (int)d->peer);
		reject_task(d, m->pid, real, m->uffd, why);
		return;
	}
	if ((cause = check_task(d, m, img))) {
		reject_task(d, m->pid, real, m->uffd, cause);
		return;
	}
	snprintf(name, sizeof(name), "pid %d", m->pid);
	if (!lazyd_add_task(d, m->pid, real, m->uffd, img, NULL, name)) {
		reject_task(d, m->pid, real, m->uffd, "we cannot track");
		return;
	}
	d->st.tasks++;
	if (real != m->pid)
		pr_info("pid %d is pid %d here", m->pid, (int)real);
}

/* Hang up on the restore connection; the tasks it sent are served on. */
static void drop_conn(struct lazyd *d)
{
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->conn_fd, NULL);
	close(d->conn_fd);
	d->conn_fd = -1;
	lps_rx_free(&d->rx);
}

/* Anything but the hang-up after the finished marker is not criu's: ignored. */
static int after_finish(struct lazyd *d, enum lps_item it)
{
	if (it == LPS_NONE)
		return 0;
	if (it != LPS_EOF)
		pr_warn("lazy-pages socket: data after the restore-finished marker: hung up, "
			"nothing changed");
	drop_conn(d);
	return 0;
}

/* Returns -1 when the restore failed and the daemon must stop. */
static int on_conn(struct lazyd *d)
{
	while (d->conn_fd >= 0) {
		struct lps_msg m = {.uffd = -1};
		size_t left = d->restore_finished ? 0 : d->img.nr_tasks - d->received;
		enum lps_item it = lps_next(d->conn_fd, &d->rx, left, &m);
		if (d->restore_finished)
			return after_finish(d, it);
		switch (it) {
		case LPS_NONE:
			return 0;
		case LPS_TASK:
			pr_debug("received pid %d, uffd %d, from pid %d", m.pid, m.uffd,
				 (int)m.sender);
			new_task(d, &m);
			break;
		case LPS_ZOMBIE:
			pr_debug("received zombie pid %d", m.pid);
			d->received++;
			d->st.zombies++;
			break;
		case LPS_FINISHED:
			d->restore_finished = true;
			d->st.t_restored = now_s();
			pr_info("restore finished (%zu of %zu tasks): background prefetch starts",
				d->received, d->img.nr_tasks);
			break;
		case LPS_EOF:
			drop_conn(d);
			pr_err("criu closed lazy-pages.socket before the restore finished: the "
			       "restore failed");
			return -1;
		case LPS_ERROR:
			pr_err("protocol error on lazy-pages.socket: giving up on this restore");
			return -1;
		}
	}
	return 0;
}

/*
 * The first connection of our own uid is the restore (criu connects once,
 * and its tasks send their uffds over that connection); any other is closed
 * unread: it changes nothing.
 */
static void on_accept(struct lazyd *d)
{
	struct ucred cr;
	int c = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (c < 0)
		return;
	const char *why = lps_check_peer(c, &cr);
	if (!why && d->peer > 0)
		why = "a restore has connected already";
	if (why) {
		pr_warn("lazy-pages.socket: connection from pid %d (uid %u) refused: %s",
			(int)cr.pid, (unsigned)cr.uid, why);
		close(c);
		return;
	}
	d->conn_fd = c;
	d->peer = cr.pid;
	d->conn_tag = (struct ep_tag){EP_CONN, NULL};
	if (ep_add(d, c, &d->conn_tag))
		pr_err("epoll: %s", strerror(errno));
	pr_info("restore connected (criu pid %d)", (int)d->peer);
}

static void progress(struct lazyd *d)
{
	double t = now_s();
	if (t < d->next_progress)
		return;
	d->next_progress = t + 1.0;
	uint64_t done = d->st.pages_fault + d->st.pages_prefetch;
	pr_info("progress: %lu of %lu data pages in (%lu%%), %lu faults served",
		(unsigned long)done, (unsigned long)d->st.pages_total,
		(unsigned long)(d->st.pages_total ? done * 100 / d->st.pages_total : 100),
		(unsigned long)d->st.faults);
}

static bool have_work(const struct lazyd *d)
{
	for (const struct lz_task *t = d->tasks; t; t = t->next)
		if (!t->gone && !t->killed &&
		    (t->nfaults || t->need_events ||
		     (d->restore_finished && t->pend.data_pages && !d->drain_blocked)))
			return true;
	return false;
}

/* Before closing the uffds: a fork not yet read would leave its child unserved. */
static bool late_events(struct lazyd *d)
{
	size_t before = 0, after = 0;

	for (struct lz_task *t = d->tasks; t; t = t->next)
		before++;
	for (struct lz_task *t = d->tasks; t; t = t->next)
		if (!t->gone)
			lazyd_read_uffd(d, t);
	for (struct lz_task *t = d->tasks; t; t = t->next)
		after++;
	return after != before || !lazyd_all_done(d);
}

static int dispatch(struct lazyd *d, struct epoll_event *ev, int sfd)
{
	struct ep_tag *tag = ev->data.ptr;

	switch (tag->kind) {
	case EP_SIGNAL: {
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			pr_err("signal %u: stopping", si.ssi_signo);
			kill_pending_tasks(d, "the daemon was stopped before their pages were in");
			return -1;
		}
		return 0;
	}
	case EP_LISTEN:
		on_accept(d);
		return 0;
	case EP_CONN:
		return on_conn(d);
	case EP_UFFD:
		if (!tag->task->gone)
			lazyd_read_uffd(d, tag->task);
		return 0;
	case EP_PIDFD:
		lazyd_task_gone(d, tag->task, "exited");
		return 0;
	case EP_SRC:
		d->drain_blocked = false; /* background data arrived: the drain step takes it */
		return 0;
	}
	return 0;
}

static int run(struct lazyd *d)
{
	struct epoll_event evs[MAX_EVENTS];
	static struct ep_tag signal_tag = {EP_SIGNAL, NULL};
	int sfd = daemon_signalfd();
	if (sfd < 0 || ep_add(d, sfd, &signal_tag)) {
		pr_err("signalfd: %s", strerror(sfd < 0 ? -sfd : errno));
		return -1;
	}
	d->listen_tag = (struct ep_tag){EP_LISTEN, NULL};
	if (ep_add(d, d->listen_fd, &d->listen_tag)) {
		pr_err("epoll: %s", strerror(errno));
		return -1;
	}
	int rc = 0;
	for (;;) {
		int n = epoll_wait(d->epfd, evs, MAX_EVENTS, have_work(d) ? 0 : 1000);
		if (n < 0 && errno != EINTR) {
			pr_err("epoll_wait: %s", strerror(errno));
			rc = -1;
			break;
		}
		for (int i = 0; i < n && !rc; i++)
			rc = dispatch(d, &evs[i], sfd);
		if (rc) {
			kill_pending_tasks(d, "the restore failed");
			break;
		}
		lazyd_serve_faults(d);
		if (d->restore_finished)
			lazyd_drain_step(d);
		progress(d);
		if (d->restore_finished && lazyd_all_done(d) && !late_events(d))
			break;
	}
	close(sfd);
	return rc;
}

/* Local images: the pages are in pages-N.img, or (--page-server) with the source's page server. */
static int load_local(struct lazyd *d, struct lazyd_opts *o)
{
	struct errmsg err;

	int dirfd = open(o->images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		pr_err("cannot open images dir %s: %s", o->images_dir, strerror(errno));
		return -1;
	}
	if (img_set_load(dirfd, &d->img, &err)) {
		pr_err("images in %s: %s", o->images_dir, err.msg);
		close(dirfd);
		return -1;
	}
	for (size_t i = 0; i < d->img.nr_tasks; i++) {
		struct img_task *t = &d->img.tasks[i];
		for (size_t k = 0; k < t->nr_extents; k++) {
			struct img_extent *x = &t->extents[k];
			if (x->zero)
				continue;
			if (o->page_server) {
				/*
				 * The page server has every lazy page (criu dump --lazy-pages kept
				 * them, criu page-server --lazy-pages reads them from its images)
				 * and names them by their dump-time address: key them by it.
				 */
				x->pages_off = x->start;
				continue;
			}
			if (!x->remote)
				continue;
			/* criu dump --lazy-pages left these pages with the source's page server. */
			pr_err(
			    "images in %s: pid %d has lazy pages at 0x%lx that are not in the "
			    "images (dumped with --lazy-pages): run with --page-server --address "
			    "A --port P to fetch them from the source's page server",
			    o->images_dir, t->pid, (unsigned long)x->start);
			return -1;
		}
	}
	return 0;
}

/* Pick the page source; with --image-server the index comes from it too. */
static int open_source(struct lazyd *d, struct lazyd_opts *o)
{
	char err[256] = "";

	if (o->image_server) {
		if (lazyd_fetch_meta(o))
			return -1;
		struct imgd_source_cfg cfg = {o->image_server,	  o->image_id,
					      o->auth_key,	  o->source_retries,
					      o->source_timeout,  o->prefetch_window,
					      &o->tls};
		if (page_source_imgd(&d->src, &cfg, err, sizeof(err)) ||
		    d->src.ops->load_index(&d->src, &d->img, err, sizeof(err))) {
			pr_err("image server %s: %s", o->image_server, err);
			return -1;
		}
		return 0;
	}
	if (load_local(d, o))
		return -1;
	if (o->page_server) {
		struct ps_source_cfg cfg = {o->ps_address, o->ps_port, o->source_retries,
					    o->source_timeout};
		if (page_source_ps(&d->src, &cfg, err, sizeof(err))) {
			pr_err("%s", err);
			return -1;
		}
		return 0;
	}
	if (page_source_local(&d->src)) {
		pr_err("out of memory for the page source");
		return -1;
	}
	return 0;
}

static int setup(struct lazyd *d, struct lazyd_opts *o)
{
	if (open_source(d, o))
		return -1;
	for (size_t i = 0; i < d->img.nr_tasks; i++)
		d->st.pages_total += d->img.tasks[i].lazy_pages;
	pr_info("images %s: %zu tasks, %lu lazy data pages, page source: %s",
		o->image_server ? o->image_server : o->images_dir, d->img.nr_tasks,
		(unsigned long)d->st.pages_total, d->src.ops->name);
	if (o->fill == FILL_UFFD) {
		filler_uffd(&d->fill);
	} else {
		int frc = filler_kmod(&d->fill);
		const char *why = frc == -ENOENT ? "no " LAZYFILL_DEVICE " (lazyfill.ko not loaded)"
				  : frc == -EPROTO ? "lazyfill.ko speaks another UAPI version"
						   : strerror(-frc);
		if (frc && o->fill == FILL_KMOD) {
			pr_err("--fill kmod: %s", why);
			return -1;
		}
		if (frc) {
			pr_info("fill: lazyfill.ko not used: %s", why);
			filler_uffd(&d->fill);
		}
	}
	pr_info("fill engine: %s", d->fill.ops->name);
	uint32_t pages = o->drain_chunk > o->fault_window ? o->drain_chunk : o->fault_window;
	d->buf_len = (size_t)pages * PAGE;
	if (posix_memalign(&d->buf, PAGE, d->buf_len)) {
		pr_err("out of memory for a %zu byte buffer", d->buf_len);
		return -1;
	}
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0) {
		pr_err("epoll_create1: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void teardown(struct lazyd *d)
{
	if (d->fill.ops && filler_is_kmod(&d->fill))
		filler_kmod_close(&d->fill);
	lazyd_free_tasks(d);
	lps_rx_free(&d->rx);
	if (d->conn_fd >= 0)
		close(d->conn_fd);
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		unlink(LPS_NAME);
	}
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->src.ops)
		d->src.ops->close(&d->src);
	if (d->img.tasks) {
		int dirfd = d->img.dirfd;
		img_set_free(&d->img);
		if (dirfd >= 0)
			close(dirfd);
	}
	free(d->buf);
}

int main(int argc, char **argv)
{
	struct lazyd_opts o;
	struct lazyd d = {.epfd = -1, .listen_fd = -1, .conn_fd = -1};
	int rc = lazyd_parse_opts(argc, argv, &o);

	if (rc)
		return rc > 0 ? 0 : 1;
	signal(SIGPIPE, SIG_IGN);
	d.o = &o;
	d.st.t_start = now_s();
	log_level = o.verbosity;
	log_set_prefix("lazy-pages: ");

	/* As in criu: -D and -W are relative to the cwd, -o, --pidfile, --stats-file to -W. */
	char *imgdir = realpath(o.images_dir, NULL);
	if (!imgdir || chdir(o.work_dir)) {
		fprintf(stderr, "criu-lazyd: cannot enter %s: %s\n",
			imgdir ? o.work_dir : o.images_dir, strerror(errno));
		free(imgdir);
		return 1;
	}
	o.images_dir = imgdir;
	const char *logf = o.log_file ? o.log_file : (o.daemon ? "criu-lazyd.log" : NULL);
	if (log_open(logf)) {
		fprintf(stderr, "criu-lazyd: cannot open log file %s: %s\n", logf, strerror(errno));
		return 1;
	}
	if (o.fetch_only) {
		/* For a restore by id whose CRIU reads inventory.img before any plugin (4.x). */
		rc = lazyd_fetch_meta(&o);
		free(imgdir);
		return rc ? 1 : 0;
	}
	if (setup(&d, &o)) {
		teardown(&d);
		free(imgdir);
		return 1;
	}
	d.listen_fd = lps_listen();
	if (d.listen_fd < 0) {
		pr_err("cannot listen on %s in %s: %s", LPS_NAME, o.work_dir,
		       strerror(-d.listen_fd));
		teardown(&d);
		free(imgdir);
		return 1;
	}
	pr_info("listening on %s in %s", LPS_NAME, o.work_dir);
	if (o.daemon && daemon_detach("criu-lazyd", o.pidfile, false)) {
		pr_err("cannot daemonize: %s", strerror(errno));
		teardown(&d);
		free(imgdir);
		return 1;
	}
	if (!o.daemon && o.pidfile && daemon_write_pidfile(o.pidfile, getpid()))
		pr_warn("cannot write pidfile %s: %s", o.pidfile, strerror(errno));
	if (o.status_fd >= 0) {
		char c = 0;
		if (write(o.status_fd, &c, 1) != 1)
			pr_warn("cannot write to status fd %d: %s", o.status_fd, strerror(errno));
		close(o.status_fd);
	}
	rc = run(&d);
	d.st.t_done = now_s();
	stats_log_summary(&d.st);
	if (filler_is_kmod(&d.fill)) {
		struct filler_kmod_stats ks;
		filler_kmod_get_stats(&d.fill, &ks);
		pr_msg("summary: fill engine kmod: %lu batches, %lu MiB installed by lazyfill.ko; "
		       "%lu calls with plain userfaultfd (%lu tasks the module refused, %lu "
		       "sessions dropped as bound to a wrong pid)",
		       (unsigned long)ks.batches, (unsigned long)(ks.kmod_bytes >> 20),
		       (unsigned long)ks.plain_calls, (unsigned long)ks.attach_failed,
		       (unsigned long)ks.dropped);
	} else {
		pr_msg("summary: fill engine uffd: every page with plain userfaultfd ioctls");
	}
	if (o.stats_file && stats_write_json(&d.st, o.stats_file))
		pr_err("cannot write stats file %s", o.stats_file);
	teardown(&d);
	free(imgdir);
	/* A restore we had to kill or refuse tasks of did not succeed. */
	return rc || d.st.tasks_killed || items_refused ? 1 : 0;
}

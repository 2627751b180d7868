/*
 * criu-lazyd: serves the memory of tasks restored by `criu restore --lazy-pages`, from
 * local images, criu-imgd or CRIU's page server. main.c owns the event loop: each turn
 * reads what is ready (the restore's connection, every task's uffd and pidfd, the page
 * source, signals), then serves the queued faults, then takes one background step.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fill/fill_kmod.h"
#include "lazyd.h"
#include "ops/ctl.h"
#include "ops/metrics_http.h"
#include "util/daemon.h"
#include "util/log.h"

#define PAGE IMG_PAGE_SIZE
#define PROGRESS_MS 1000
#define PROGRESS_LOG_TICKS 5

static void on_signal(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct lazyd *d = data;
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	pr_err("signal %u: stopping", si.ssi_signo);
	lazyd_kill_pending(d, "the daemon was stopped before their pages were in");
	d->stop = true;
	d->rc = -1;
}

/* What the page source says it received (network sources): into the stats. */
static void source_counts(struct lazyd *d)
{
	struct src_state ss;

	if (!d->src.ops || !d->src.ops->state)
		return;
	d->src.ops->state(&d->src, &ss);
	d->st.src_network = 1;
	d->st.src_bytes_rx = ss.bytes_rx;
	d->st.src_failovers = ss.failovers;
	d->st.src_data_fault = ss.data_pages_rx[SRC_FAULTS];
	d->st.src_data_stream = ss.data_pages_rx[SRC_STREAM];
	d->st.src_pages = ss.pages_rx[SRC_FAULTS] + ss.pages_rx[SRC_STREAM];
	if (!d->o->prefetch_window && d->sw.samples) {
		d->st.stream_window = sw_window(&d->sw);
		d->st.stream_rate = d->sw.rate;
		d->st.stream_rtt_ns = d->sw.base;
		d->st.stream_local = d->sw.local;
	}
}

/* Every PROGRESS_LOG_TICKS: one line for the operator (-v2) and the stats file, in flight. */
static void progress_report(struct lazyd *d)
{
	LazydStatus *m = lazyd_snapshot(d, now_s());
	char eta[32] = "?";

	if (!m)
		return;
	const LazydTotals *t = m->totals;
	uint64_t in = t->pages_fault + t->pages_prefetch;
	if (m->has_eta_s)
		snprintf(eta, sizeof(eta), "%.0f s", m->eta_s);
	source_counts(d);
	char net[128] = "";
	if (d->st.src_network && d->st.stream_window)
		snprintf(
		    net, sizeof(net),
		    "; %.1f MiB received; stream window %.0f KiB (%.1f MiB/s, round trip %.2f ms)",
		    d->st.src_bytes_rx / 1048576.0, d->st.stream_window / 1024.0,
		    d->st.stream_rate / 1048576.0, d->st.stream_rtt_ns / 1e6);
	else if (d->st.src_network)
		snprintf(net, sizeof(net), "; %.1f MiB received", d->st.src_bytes_rx / 1048576.0);
	log_note(
	    "progress: %lu of %lu data pages in (%.1f%%), %lu pending in %u tasks; %.0f pages/s "
	    "(%.1f MiB/s), ETA %s; %lu faults served%s",
	    (unsigned long)in, (unsigned long)t->pages_total,
	    t->pages_total ? 100.0 * (double)in / (double)t->pages_total : 100.0,
	    (unsigned long)t->pages_pending, t->served, m->rate_pages_s,
	    m->rate_pages_s * PAGE / 1048576.0, eta, (unsigned long)d->st.faults, net);
	lazyd_snapshot_free(m);
	if (d->o->stats_file && stats_write_json(&d->st, d->o->stats_file))
		pr_warn("cannot write stats file %s", d->o->stats_file);
}

static void on_progress(struct ev_loop *l, uint64_t id, void *data)
{
	struct lazyd *d = data;
	uint64_t done = d->st.pages_fault + d->st.pages_prefetch;

	(void)id;
	lazyd_rate_sample(&d->rate, now_s(), done);
	if (++d->progress_ticks % PROGRESS_LOG_TICKS == 0 && d->restore_finished)
		progress_report(d);
	d->progress_timer = ev_timer_add(l, PROGRESS_MS, on_progress, d);
}

/* The status socket: answer whoever asks, a few a turn. */
static void on_ctl(struct ev_loop *l, int fd, unsigned events, void *data)
{
	(void)l;
	(void)events;
	for (int i = 0; i < 8 && ctl_serve_one(fd, lazyd_status_reply, data) != -EAGAIN; i++)
		;
}

/*
 * The operator's interfaces, in the loop: WORKDIR/criu-lazyd.status (a warning when it
 * cannot be: the restore matters more) and --metrics-address (asked for: an error).
 */
static int ops_start(struct lazyd *d)
{
	struct errmsg e = {""};
	int rc;

	d->ctl_fd = ctl_listen(LAZYD_STATUS_NAME, &e);
	if (d->ctl_fd < 0)
		pr_warn("no status socket (criu-lazyd status will not work): %s", e.msg);
	else if ((rc = ev_add(d->loop, d->ctl_fd, EV_READ, on_ctl, d)))
		pr_warn("event loop: cannot watch the status socket: %s", strerror(-rc));
	if (!d->o->metrics_address)
		return 0;
	rc = metrics_http_start(&d->metrics, d->loop, d->o->metrics_address, lazyd_metrics_fill, d,
				&e);
	if (rc && d->keeper && d->keeper->restarts) {
		/* A restarted worker: the restore matters more than its metrics. */
		pr_warn("--metrics-address %s: %s: no metrics from this worker",
			d->o->metrics_address, e.msg);
		return 0;
	}
	if (rc) {
		pr_err("--metrics-address %s: %s", d->o->metrics_address, e.msg);
		return rc;
	}
	pr_info("metrics at http://%s/metrics", d->o->metrics_address);
	return 0;
}

static void ops_stop(struct lazyd *d)
{
	if (d->ctl_fd >= 0) {
		ev_del(d->loop, d->ctl_fd);
		close(d->ctl_fd);
		unlink(LAZYD_STATUS_NAME);
		d->ctl_fd = -1;
	}
	metrics_http_stop(d->metrics);
	d->metrics = NULL;
}

static bool have_work(const struct lazyd *d, bool hold)
{
	for (const struct lz_task *t = d->tasks; t; t = t->next)
		if (!t->gone && !t->killed &&
		    ((t->nfaults > t->nwaiting && !d->faults_wait) || t->need_events ||
		     (d->restore_finished && !hold && t->pend.data_pages && !d->drain_blocked)))
			return true;
	return false;
}

/* Before closing the uffds: a fork not yet read would leave its child unserved. */
static bool late_events(struct lazyd *d)
{
	size_t before = 0, after = 0;

	for (struct lz_task *t = d->tasks; t; t = t->next)
		before++;
	if (d->keeper)
		keeper_sync(d); /* the keeper reads them all */
	for (struct lz_task *t = d->tasks; t && !d->keeper; t = t->next)
		if (!t->gone)
			lazyd_read_uffd(d, t);
	for (struct lz_task *t = d->tasks; t; t = t->next)
		after++;
	return after != before || !lazyd_all_done(d);
}

static int run(struct lazyd *d)
{
	int rc = ev_add(d->loop, d->signal_fd, EV_READ, on_signal, d);

	if (rc) {
		pr_err("event loop: cannot watch signals: %s", strerror(-rc));
		return -1;
	}
	d->progress_timer = ev_timer_add(d->loop, PROGRESS_MS, on_progress, d);
	while (!d->stop) {
		unsigned hold_ms = 0;
		bool hold = lazyd_ws_holding(d, &hold_ms);
		rc = ev_run_once(d->loop, have_work(d, hold) ? 0 : hold ? (int)hold_ms : 1000);
		if (rc < 0) {
			pr_err("event loop: %s", strerror(-rc));
			lazyd_kill_pending(d, "the restore failed");
			return -1;
		}
		if (d->stop)
			break;
		lazyd_serve_faults(d);
		lazyd_fault_reads(d);
		if (d->restore_finished && !lazyd_ws_holding(d, &hold_ms))
			lazyd_drain_step(d);
		lazyd_reap_exited(d);
		keeper_flush_notes(d, false);
		if (d->restore_finished && lazyd_all_done(d) && !late_events(d))
			break;
	}
	return d->rc;
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
	struct errmsg e;

	if (o->image_server) {
		uint64_t fp = 0;
		if (lazyd_fetch_meta(o, &fp))
			return -1;
		struct imgd_source_cfg cfg = {
		    .server = o->image_server,
		    .image = o->image_id,
		    .key_file = o->auth_key,
		    .retries = o->source_retries,
		    .timeout_ms = o->source_timeout,
		    /* The drain keeps its own window (drain.c: wider
		     * while a working set replays); the source's is the
		     * most it may take, so a read asked for is never
		     * refused after its runs were taken from the replay. */
		    .window = LAZYD_MAX_PREFETCH,
		    .tls = &o->tls,
		    .compress = o->compress,
		    .dial_inline = false,
		    .fingerprint = fp,
		    .fault_dscp = o->fault_dscp};
		if (page_source_imgd(&d->src, &cfg, &e) ||
		    d->src.ops->load_index(&d->src, &d->img, &e)) {
			pr_err("image server %s: %s", o->image_server, e.msg);
			return -1;
		}
		return 0;
	}
	if (load_local(d, o))
		return -1;
	if (o->page_server) {
		struct ps_source_cfg cfg = {o->ps_address, o->ps_port, o->source_retries,
					    o->source_timeout};
		if (page_source_ps(&d->src, &cfg, &e)) {
			pr_err("%s", e.msg);
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
	share_cache_init(&d->shared, o->share_cache_mb * (uint32_t)(1048576 / PAGE));
	lazyd_ws_start(d);
	d->loop = ev_loop_new();
	d->signal_fd = daemon_signalfd();
	if (!d->loop || d->signal_fd < 0) {
		pr_err("cannot set up the event loop: %s",
		       strerror(d->loop ? -d->signal_fd : ENOMEM));
		return -1;
	}
	return 0;
}

/* The source's connections opened while the restore runs (never before a fork). */
static void warm_source(struct lazyd *d)
{
	if (d->src.ops->warm)
		d->src.ops->warm(&d->src);
}

/*
 * Ready to serve: with a keeper, it has the socket and said so (the worker takes its replay);
 * without, listen, detach and say so here.
 */
static int start(struct lazyd *d, struct lazyd_opts *o)
{
	int rc;

	if (d->keeper) {
		/* The threads install with the engine itself; the loop's own installs go
		 * through the keeper's guard. */
		if (lazyd_pfill_start(d, &d->fill))
			return -1;
		warm_source(d);
		keeper_guard_filler(d);
		if (ops_start(d))
			return -1;
		rc = keeper_link_start(d);
		if (rc)
			pr_err("cannot take over from the keeper: %s", strerror(-rc));
		return rc;
	}
	rc = lazyd_listen(d);
	if (rc) {
		pr_err("cannot listen on %s in %s: %s", LPS_NAME, o->work_dir, strerror(-rc));
		return -1;
	}
	pr_info("listening on %s in %s", LPS_NAME, o->work_dir);
	if (ops_start(d))
		return -1;
	if (o->daemon && daemon_detach("criu-lazyd", o->pidfile, false)) {
		pr_err("cannot daemonize: %s", strerror(errno));
		return -1;
	}
	if (!o->daemon && o->pidfile && daemon_write_pidfile(o->pidfile, getpid()))
		pr_warn("cannot write pidfile %s: %s", o->pidfile, strerror(errno));
	/* After the detach: a fork takes only the thread that forks. */
	if (lazyd_pfill_start(d, &d->fill))
		return -1;
	warm_source(d);
	if (o->status_fd >= 0 && (rc = daemon_say_ready(o->status_fd)))
		pr_warn("cannot write to status fd %d: %s", o->status_fd, strerror(-rc));
	return 0;
}

static void teardown(struct lazyd *d)
{
	ops_stop(d);
	lazyd_pfill_stop(d);
	if (d->fill.ops)
		filler_close(&d->fill);
	lazyd_free_tasks(d);
	keeper_drop_ghosts(d);
	lps_rx_free(&d->rx);
	lazyd_rx_free(d);
	if (d->conn_fd >= 0) {
		ev_del(d->loop, d->conn_fd);
		close(d->conn_fd);
	}
	if (d->listen_fd >= 0) {
		ev_del(d->loop, d->listen_fd);
		close(d->listen_fd);
		unlink(LPS_NAME);
	}
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	ev_loop_free(d->loop);
	d->loop = NULL;
	if (d->src.ops)
		d->src.ops->close(&d->src);
	if (d->img.tasks) {
		int dirfd = d->img.dirfd;
		img_set_free(&d->img);
		if (dirfd >= 0)
			close(dirfd);
	}
	free(d->buf);
	share_cache_free(&d->shared);
	ws_free(&d->ws_rec);
	ws_free(&d->ws_notes);
	if (d->ws_dirfd >= 0)
		close(d->ws_dirfd);
}

int main(int argc, char **argv)
{
	struct lazyd_opts o;
	struct lazyd d = {
	    .listen_fd = -1, .conn_fd = -1, .signal_fd = -1, .ctl_fd = -1, .ws_dirfd = -1};
	int rc;

	/* `criu-lazyd status ...` asks a running daemon; it is not one. */
	if (argc > 1 && !strcmp(argv[1], "status"))
		return lazyd_status_main(argc - 1, argv + 1);
	rc = lazyd_parse_opts(argc, argv, &o);

	if (rc)
		return rc > 0 ? 0 : 1;
	signal(SIGPIPE, SIG_IGN);
	d.o = &o;
	sw_init(&d.sw);
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
	static char workdir[4096];
	d.work_dir = getcwd(workdir, sizeof(workdir)) ? workdir : o.work_dir;
	const char *logf = o.log_file ? o.log_file : (o.daemon ? "criu-lazyd.log" : NULL);
	if (log_open(logf)) {
		fprintf(stderr, "criu-lazyd: cannot open log file %s: %s\n", logf, strerror(errno));
		return 1;
	}
	if (o.fetch_only) {
		/* For a restore by id whose CRIU reads inventory.img before any plugin (4.x). */
		uint64_t fp;
		rc = lazyd_fetch_meta(&o, &fp);
		free(imgdir);
		return rc ? 1 : 0;
	}
	static struct keeper_link link;
	if (o.keeper) {
		/* This process keeps the uffds; a worker (a child) comes back here to serve. */
		rc = keeper_start(&o, &link);
		if (rc != KEEPER_WORKER) {
			free(imgdir);
			return rc;
		}
		d.keeper = &link;
	}
	if (setup(&d, &o) || start(&d, &o)) {
		teardown(&d);
		free(imgdir);
		return 1;
	}
	rc = run(&d);
	d.st.t_done = now_s();
	struct rusage ru;
	if (!getrusage(RUSAGE_SELF, &ru)) {
		d.st.cpu_user_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
		d.st.cpu_sys_s = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	}
	lazyd_ws_finish(&d);
	source_counts(&d);
	stats_log_summary(&d.st);
	if (d.fill.ops->batch) {
		struct fill_stats fs;
		filler_stats(&d.fill, &fs);
		pr_msg("summary: fill engine %s: %lu batches, %lu MiB installed by lazyfill.ko; "
		       "%lu calls with plain userfaultfd (%lu tasks the module refused, %lu "
		       "sessions dropped as bound to a wrong pid)",
		       d.fill.ops->name, (unsigned long)fs.batches,
		       (unsigned long)(fs.batch_bytes >> 20), (unsigned long)fs.plain_calls,
		       (unsigned long)fs.attach_failed, (unsigned long)fs.dropped);
	} else {
		pr_msg("summary: fill engine %s: every page with plain userfaultfd ioctls",
		       d.fill.ops->name);
	}
	if (o.stats_file && stats_write_json(&d.st, o.stats_file))
		pr_err("cannot write stats file %s", o.stats_file);
	/* A restore we had to kill or refuse tasks of did not succeed. */
	rc = rc || d.st.tasks_killed || d.items_refused ? 1 : 0;
	keeper_note(&d, WK_DONE, 0, rc, 0);
	keeper_flush_notes(&d, true);
	teardown(&d);
	free(imgdir);
	return rc;
}

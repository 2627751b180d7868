/*
 * criu-lazyd's status snapshot (lazy-pages/lazyd/status.c) and its Prometheus text
 * (metrics.c) on a daemon state made by hand: three tasks (served, killed, gone) tracked the
 * way the daemon tracks them, counters, latencies, a reconnecting source. The text is checked
 * line by line and by `promtool check metrics` (Prometheus' own linter) when it is installed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lazyd/lazyd.h"
#include "ops/pb_json.h"
#include "util/version.h"

#define P IMG_PAGE_SIZE
#define BASE 0x10000000ull

/* Each task: pages 0..5 data, 6..7 zero. */
static struct img_extent ext[2] = {
    {.start = BASE, .end = BASE + 6 * P, .pages_off = 0},
    {.start = BASE + 6 * P, .end = BASE + 8 * P, .zero = true},
};
static struct img_vma vma = {.start = BASE, .end = BASE + 8 * P, .lazy = true};
static struct img_task img = {.pid = 42,
			      .has_mm = true,
			      .vmas = &vma,
			      .nr_vmas = 1,
			      .extents = ext,
			      .nr_extents = 2,
			      .lazy_pages = 6,
			      .zero_pages = 2,
			      .pages_fd = -1};

static int s_read(struct page_source *s, const struct img_task *t, uint64_t src, void *buf,
		  size_t len)
{
	(void)s, (void)t, (void)src, (void)buf, (void)len;
	return -EIO;
}

static void s_close(struct page_source *s)
{
	(void)s;
}

static void s_state(struct page_source *s, struct src_state *st)
{
	(void)s;
	*st = (struct src_state){
	    .reconnecting = true, .retry_ms = 400, .failures = 3, .reconnects = 2, .bad_sums = 1};
}

static const struct page_source_ops reconnecting_src = {
    .name = "image-server", .read = s_read, .close = s_close, .state = s_state};

static struct lazyd_opts opts = {.images_dir = "/img",
				 .image_server = "10.0.0.1:7070",
				 .image_id = "web-1",
				 .fault_window = 16,
				 .drain_chunk = 16};
static struct lazyd d;
static int pipes[3][2];

static struct lz_task *add(int pid, int i)
{
	char name[32];

	cr_assert_eq(pipe(pipes[i]), 0);
	snprintf(name, sizeof(name), "pid %d", pid);
	struct lz_task *t = lazyd_add_task(&d, pid, -1, pipes[i][0], &img, NULL, name);
	cr_assert_not_null(t);
	return t;
}

/* Pages [first, first + n) of t installed by path p (as install.c counts them). */
static void installed(struct lz_task *t, uint64_t first, uint64_t n, enum fill_path p)
{
	struct pend_extent r;

	cr_assert(pending_run_at(&t->pend, BASE + first * P, n * P, &r));
	cr_assert_eq(lazyd_installed(&d, t, &r, n * P, p), 0);
}

/*
 * pid 10: 2 pages by faults, 1 by the drain, 1 zero page, 1 data page unmapped;
 * pid 20: killed, untouched; pid 30: 1 page by a fault, then gone.
 */
static void setup(void)
{
	memset(&d, 0, sizeof(d));
	d.o = &opts;
	d.loop = ev_loop_new();
	d.ctl_fd = -1;
	d.work_dir = "/run/restore";
	filler_uffd(&d.fill);
	d.src = (struct page_source){&reconnecting_src, NULL};
	d.st.t_start = 100.0;
	d.st.t_restored = 101.0;
	d.restore_finished = true;
	d.st.pages_total = 3 * 6;

	struct lz_task *a = add(10, 0), *b = add(20, 1), *c = add(30, 2);
	installed(a, 0, 2, PATH_FAULT);
	installed(a, 2, 1, PATH_DRAIN);
	installed(a, 6, 1, PATH_FAULT);
	lazyd_drop_range(&d, a, BASE + 5 * P, BASE + 6 * P);
	b->killed = true;
	installed(c, 0, 1, PATH_FAULT);
	lazyd_task_gone(&d, c, "exited");
	d.st.faults = 3;
	d.st.eexist = 4;
	d.st.eagain = 5;
	d.st.forks = 6;
	d.st.remaps = 7;
	d.st.tasks = 3;
	d.st.tasks_killed = 1;
	d.st.tasks_exited = 1;
	d.items_refused = 1;
	stats_fault_latency(&d.st, 1500);	   /* (1.024 us, 2.048 us] */
	stats_fault_latency(&d.st, 3000);	   /* (2.048 us, 4.096 us] */
	stats_fault_latency(&d.st, 2000000000ull); /* above 2^29 ns: +Inf only */
	/* 4 data pages in by now; 2 a second ago. */
	lazyd_rate_sample(&d.rate, 103.0, 2);
}

static void teardown(void)
{
	lazyd_free_tasks(&d);
	ev_loop_free(d.loop);
	for (int i = 0; i < 3; i++)
		close(pipes[i][1]);
}

TestSuite(status, .init = setup, .fini = teardown);

Test(status, snapshot_fields)
{
	LazydStatus *m = lazyd_snapshot(&d, 104.0);

	cr_assert_not_null(m);
	cr_assert_str_eq(m->version, CRIU_LAZY_VERSION);
	cr_assert_eq(m->daemon_pid, getpid());
	cr_assert_float_eq(m->uptime_s, 4.0, 1e-9);
	cr_assert(m->restore_finished);
	cr_assert(m->has_since_restore_s);
	cr_assert_float_eq(m->since_restore_s, 3.0, 1e-9);

	/* Served first, then killed, then gone. */
	cr_assert_eq(m->n_tasks, 3);
	cr_assert_eq(m->tasks_omitted, 0);
	const LazydTaskStatus *a = m->tasks[0], *b = m->tasks[1], *c = m->tasks[2];
	cr_assert_eq(a->pid, 10);
	cr_assert_eq(a->state, LAZYD_TASK_STATE__LAZYD_TASK_SERVED);
	cr_assert_str_eq(a->name, "pid 10");
	cr_assert_eq(a->pages_total, 6);
	cr_assert_eq(a->pages_fault, 2);
	cr_assert_eq(a->pages_prefetch, 1);
	cr_assert_eq(a->pages_dropped, 1);
	cr_assert_eq(a->pages_pending, 2);
	cr_assert_eq(a->zero_pending, 1);
	cr_assert_eq(a->pages_zero, 1);
	cr_assert_eq(a->bytes_copied, 3 * P);
	cr_assert_eq(b->pid, 20);
	cr_assert_eq(b->state, LAZYD_TASK_STATE__LAZYD_TASK_KILLED);
	cr_assert_eq(b->pages_pending, 6);
	cr_assert_eq(c->pid, 30);
	cr_assert_eq(c->state, LAZYD_TASK_STATE__LAZYD_TASK_GONE);
	cr_assert_eq(c->pages_pending, 0);
	cr_assert_eq(c->pages_fault, 1);
	cr_assert_eq(c->pages_dropped, 5, "what a gone task had pending");
	for (size_t i = 0; i < m->n_tasks; i++) {
		const LazydTaskStatus *t = m->tasks[i];
		cr_assert_eq(t->pages_total,
			     t->pages_pending + t->pages_fault + t->pages_prefetch +
				 t->pages_dropped,
			     "pid %d adds up", t->pid);
	}

	const LazydTotals *s = m->totals;
	cr_assert_eq(s->tasks, 3);
	cr_assert_eq(s->served, 1);
	cr_assert_eq(s->killed, 1);
	cr_assert_eq(s->gone, 1);
	cr_assert_eq(s->pages_total, 18);
	cr_assert_eq(s->pages_pending, 8);
	cr_assert_eq(s->pages_fault, 3);
	cr_assert_eq(s->pages_prefetch, 1);
	cr_assert_eq(s->pages_dropped, 6);
	cr_assert_eq(s->image_pages, 18);
	cr_assert_eq(s->pages_zero, 1);

	/* 4 data pages in, 2 of them since the sample a second ago. */
	cr_assert_float_eq(m->rate_window_s, 1.0, 1e-9);
	cr_assert_float_eq(m->rate_pages_s, 2.0, 1e-9);
	cr_assert(m->has_eta_s);
	cr_assert_float_eq(m->eta_s, 4.0, 1e-9, "8 pending at 2 pages/s");

	const LazydLatency *l = m->fault_latency;
	cr_assert_eq(l->count, 3);
	cr_assert_eq(l->sum_ns, 2000004500ull);
	cr_assert_eq(l->max_ns, 2000000000ull);
	cr_assert_eq(l->n_buckets, 3);
	for (size_t i = 0; i < l->n_buckets; i++) {
		cr_assert_lt(l->buckets[i]->lo_ns, l->buckets[i]->hi_ns);
		cr_assert_eq(l->buckets[i]->count, 1);
	}
	cr_assert(l->buckets[0]->lo_ns <= 1500 && 1500 < l->buckets[0]->hi_ns);
	cr_assert(l->buckets[1]->lo_ns <= 3000 && 3000 < l->buckets[1]->hi_ns);

	const LazydCounters *k = m->counters;
	cr_assert_eq(k->faults, 3);
	cr_assert_eq(k->eexist, 4);
	cr_assert_eq(k->eagain, 5);
	cr_assert_eq(k->forks, 6);
	cr_assert_eq(k->remaps, 7);
	cr_assert_eq(k->items_refused, 1);

	const LazydSource *src = m->source;
	cr_assert_str_eq(src->name, "image-server");
	cr_assert_str_eq(src->server, "10.0.0.1:7070");
	cr_assert_str_eq(src->image, "web-1");
	cr_assert_eq(src->state, LAZYD_SOURCE_STATE__LAZYD_SOURCE_RECONNECTING);
	cr_assert(src->has_retry_in_ms && src->retry_in_ms == 400);
	cr_assert(src->has_failures && src->failures == 3);
	cr_assert_eq(src->reconnects, 2);
	cr_assert_str_eq(m->fill->name, "uffd");
	cr_assert_str_eq(m->work_dir, "/run/restore");
	cr_assert_str_eq(m->images, "10.0.0.1:7070");
	lazyd_snapshot_free(m);
}

Test(status, no_rate_no_eta)
{
	memset(&d.rate, 0, sizeof(d.rate));
	d.st.pages_fault = d.st.pages_prefetch = 0;
	LazydStatus *m = lazyd_snapshot(&d, 100.0);
	cr_assert_not_null(m);
	cr_assert_float_eq(m->rate_pages_s, 0, 1e-12);
	cr_assert_not(m->has_eta_s, "no rate yet: no ETA");
	lazyd_snapshot_free(m);
}

/* The rate is over the oldest of the last samples. */
Test(status, rate_over_the_last_samples)
{
	memset(&d.rate, 0, sizeof(d.rate));
	for (int i = 0; i < 10; i++)
		lazyd_rate_sample(&d.rate, 200.0 + i, (uint64_t)i * 100);
	d.st.pages_fault = 1000;
	d.st.pages_prefetch = 0;
	LazydStatus *m = lazyd_snapshot(&d, 210.0);
	/* The oldest kept: t 204, 400 pages; now 1000 pages at 210. */
	cr_assert_float_eq(m->rate_window_s, 6.0, 1e-9);
	cr_assert_float_eq(m->rate_pages_s, 100.0, 1e-9);
	lazyd_snapshot_free(m);
}

/* The socket's answer is the packed snapshot, and it unpacks to the same thing as JSON. */
Test(status, reply_packs_the_snapshot)
{
	size_t len;
	uint8_t *buf = lazyd_status_reply(&d, "status", &len);

	cr_assert_not_null(buf);
	cr_assert_gt(len, 0);
	LazydStatus *m = lazyd_status__unpack(NULL, len, buf);
	cr_assert_not_null(m);
	cr_assert_eq(m->totals->pages_pending, 8);
	cr_assert_eq(m->n_tasks, 3);
	struct json_object *o = pb_to_json(&m->base);
	struct json_object *tot, *v;
	cr_assert(json_object_object_get_ex(o, "totals", &tot));
	cr_assert(json_object_object_get_ex(tot, "pages_pending", &v));
	cr_assert_eq(json_object_get_int64(v), 8);
	cr_assert(json_object_object_get_ex(o, "source", &tot));
	cr_assert(json_object_object_get_ex(tot, "state", &v));
	cr_assert_str_eq(json_object_get_string(v), "LAZYD_SOURCE_RECONNECTING");
	json_object_put(o);
	lazyd_status__free_unpacked(m, NULL);
	free(buf);

	buf = lazyd_status_reply(&d, "other", &len);
	cr_assert_null(buf);
	cr_assert_eq(len, 0);
}

static char *metrics(void)
{
	struct prom_buf b;
	LazydStatus *m = lazyd_snapshot(&d, 104.0);

	prom_init(&b);
	lazyd_metrics_text(m, &b);
	lazyd_snapshot_free(m);
	cr_assert_not(b.failed);
	return b.s;
}

static void has(const char *text, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	cr_expect_not_null(strstr(text, want), "no line '%s' in:\n%s", line, text);
}

Test(status, metrics_text)
{
	char *s = metrics();

	has(s, "# TYPE criu_lazyd_info gauge");
	has(s, "criu_lazyd_info{version=\"" CRIU_LAZY_VERSION
	       "\",source=\"image-server\",fill=\"uffd\",image=\"web-1\"} 1");
	has(s, "# TYPE criu_lazyd_pages_installed_total counter");
	has(s, "criu_lazyd_pages_installed_total{path=\"fault\"} 3");
	has(s, "criu_lazyd_pages_installed_total{path=\"prefetch\"} 1");
	has(s, "criu_lazyd_pages_installed_total{path=\"zero\"} 1");
	has(s, "criu_lazyd_pages_pending 8");
	has(s, "criu_lazyd_pages_dropped_total 6");
	has(s, "criu_lazyd_bytes_copied_total 16384");
	has(s, "criu_lazyd_faults_total 3");
	has(s, "criu_lazyd_restore_finished 1");
	has(s, "criu_lazyd_eta_seconds 4");
	has(s, "criu_lazyd_tasks{state=\"served\"} 1");
	has(s, "criu_lazyd_tasks{state=\"gone\"} 1");
	has(s, "criu_lazyd_tasks{state=\"killed\"} 1");
	has(s, "criu_lazyd_source_connected 0");
	has(s, "criu_lazyd_source_reconnects_total 2");
	has(s, "criu_lazyd_source_backoff_seconds 0.4");
	has(s, "criu_lazyd_install_conflicts_total{result=\"eexist\"} 4");
	has(s, "criu_lazyd_uffd_events_total{event=\"fork\"} 6");
	/* The histogram from the daemon's buckets: exact at powers of two of nanoseconds. */
	has(s, "# TYPE criu_lazyd_fault_latency_seconds histogram");
	has(s, "criu_lazyd_fault_latency_seconds_bucket{le=\"1.024e-06\"} 0");
	has(s, "criu_lazyd_fault_latency_seconds_bucket{le=\"2.048e-06\"} 1");
	has(s, "criu_lazyd_fault_latency_seconds_bucket{le=\"4.096e-06\"} 2");
	has(s, "criu_lazyd_fault_latency_seconds_bucket{le=\"0.536870912\"} 2");
	has(s, "criu_lazyd_fault_latency_seconds_bucket{le=\"+Inf\"} 3");
	has(s, "criu_lazyd_fault_latency_seconds_count 3");
	has(s, "criu_lazyd_fault_latency_seconds_sum 2.0000045");
	/* Per task, few tasks: served and killed ones, not the gone one. */
	has(s, "criu_lazyd_task_pages_pending{pid=\"10\"} 2");
	has(s, "criu_lazyd_task_pages_pending{pid=\"20\"} 6");
	has(s, "criu_lazyd_task_pages_installed_total{pid=\"10\",path=\"fault\"} 2");
	cr_expect_null(strstr(s, "pid=\"30\""), "a gone task has no series");
	free(s);
}

/* More than LAZYD_METRICS_MAX_TASKS tasks: the totals only. */
Test(status, metrics_bounded_per_task)
{
	int fds[LAZYD_METRICS_MAX_TASKS][2];

	for (int i = 0; i < LAZYD_METRICS_MAX_TASKS; i++) {
		cr_assert_eq(pipe(fds[i]), 0);
		cr_assert_not_null(lazyd_add_task(&d, 1000 + i, -1, fds[i][0], &img, NULL, "x"));
	}
	char *s = metrics();
	cr_expect_null(strstr(s, "criu_lazyd_task_"), "no per-task series for %d tasks",
		       LAZYD_METRICS_MAX_TASKS + 3);
	has(s, "criu_lazyd_tasks{state=\"served\"} 65");
	free(s);
	for (int i = 0; i < LAZYD_METRICS_MAX_TASKS; i++)
		close(fds[i][1]);
}

/* Prometheus' own linter on the text (the host test runs it on a live daemon's). */
Test(status, promtool_check_metrics)
{
	if (system("command -v promtool >/dev/null 2>&1"))
		cr_skip_test("promtool not installed (apt-get install prometheus)");
	char *s = metrics();
	char path[] = "/tmp/test-lazyd-metrics-XXXXXX", cmd[128], out[4096] = "";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	unlink(path);
	cr_expect_eq(st, 0, "promtool check metrics: %s", out);
	free(s);
}

/*
 * One snapshot of the daemon's state as a lazyd_status message (status.h): the status
 * socket sends it packed, `criu-lazyd status` prints it, metrics.c turns it into the
 * Prometheus text. It reads the daemon's state and changes nothing.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lazyd.h"
#include "util/version.h"

void lazyd_rate_sample(struct lazyd_rate *r, double now, uint64_t pages)
{
	r->t[r->next] = now;
	r->pages[r->next] = pages;
	r->next = (r->next + 1) % RATE_SAMPLES;
	if (r->n < RATE_SAMPLES)
		r->n++;
}

/* Everything one snapshot owns, freed at once. */
struct snap {
	LazydStatus m;
	LazydTotals totals;
	LazydLatency lat;
	LazydCounters counters;
	LazydSource source;
	LazydFill fill;
	LazydTaskStatus *tasks, **tp;
	LazydLatencyBucket *b, **bp;
	char server[2400]; /* the option: a list of servers */
	char serving[272];
};

static struct snap *snap_of(LazydStatus *m)
{
	return (struct snap *)((char *)m - offsetof(struct snap, m));
}

void lazyd_snapshot_free(LazydStatus *m)
{
	if (!m)
		return;
	struct snap *s = snap_of(m);
	free(s->tasks);
	free(s->tp);
	free(s->b);
	free(s->bp);
	free(s);
}

static LazydTaskState task_state(const struct lz_task *t)
{
	return t->gone	   ? LAZYD_TASK_STATE__LAZYD_TASK_GONE
	       : t->killed ? LAZYD_TASK_STATE__LAZYD_TASK_KILLED
			   : LAZYD_TASK_STATE__LAZYD_TASK_SERVED;
}

static void task_fill(LazydTaskStatus *o, const struct lz_task *t)
{
	lazyd_task_status__init(o);
	o->pid = t->pid;
	o->real_pid = t->real;
	o->name = (char *)t->name;
	o->state = task_state(t);
	o->pages_total = t->cnt.total;
	o->pages_pending = t->pend.data_pages;
	o->pages_fault = t->cnt.fault;
	o->pages_prefetch = t->cnt.prefetch;
	o->pages_dropped = t->cnt.dropped;
	o->zero_pending = t->pend.pages - t->pend.data_pages;
	o->pages_zero = t->cnt.zero;
	o->bytes_copied = t->cnt.bytes;
	o->faults_queued = (uint32_t)t->nfaults;
}

static void totals_add(LazydTotals *s, const LazydTaskStatus *o)
{
	s->tasks++;
	if (o->state == LAZYD_TASK_STATE__LAZYD_TASK_SERVED)
		s->served++;
	else if (o->state == LAZYD_TASK_STATE__LAZYD_TASK_GONE)
		s->gone++;
	else
		s->killed++;
	s->pages_total += o->pages_total;
	s->pages_pending += o->pages_pending;
	s->pages_fault += o->pages_fault;
	s->pages_prefetch += o->pages_prefetch;
	s->pages_dropped += o->pages_dropped;
	s->zero_pending += o->zero_pending;
	s->pages_zero += o->pages_zero;
	s->bytes_copied += o->bytes_copied;
	s->faults_queued += o->faults_queued;
}

/* Served tasks first, then killed, then gone; by pid inside each. */
static int rank(const LazydTaskStatus *t)
{
	return t->state == LAZYD_TASK_STATE__LAZYD_TASK_SERVED	 ? 0
	       : t->state == LAZYD_TASK_STATE__LAZYD_TASK_KILLED ? 1
								 : 2;
}

static int task_cmp(const void *a, const void *b)
{
	const LazydTaskStatus *x = *(LazydTaskStatus *const *)a, *y = *(LazydTaskStatus *const *)b;

	if (rank(x) != rank(y))
		return rank(x) - rank(y);
	return (x->pid > y->pid) - (x->pid < y->pid);
}

static int tasks_fill(struct snap *s, const struct lazyd *d)
{
	size_t n = 0;

	for (const struct lz_task *t = d->tasks; t; t = t->next)
		n++;
	s->tasks = calloc(n ? n : 1, sizeof(*s->tasks));
	s->tp = calloc(n ? n : 1, sizeof(*s->tp));
	if (!s->tasks || !s->tp)
		return -1;
	lazyd_totals__init(&s->totals);
	size_t i = 0;
	for (const struct lz_task *t = d->tasks; t; t = t->next, i++) {
		task_fill(&s->tasks[i], t);
		totals_add(&s->totals, &s->tasks[i]);
		s->tp[i] = &s->tasks[i];
	}
	qsort(s->tp, n, sizeof(*s->tp), task_cmp);
	s->totals.image_pages = d->st.pages_total;
	s->m.totals = &s->totals;
	s->m.n_tasks = n > LAZYD_STATUS_MAX_TASKS ? LAZYD_STATUS_MAX_TASKS : n;
	s->m.tasks = s->tp;
	s->m.tasks_omitted = (uint32_t)(n - s->m.n_tasks);
	return 0;
}

static int latency_fill(struct snap *s, const struct lazyd_stats *st)
{
	size_t n = 0;

	lazyd_latency__init(&s->lat);
	for (unsigned b = 0; b < LAT_BUCKETS; b++)
		if (st->lat[b]) {
			n++;
			s->lat.count += st->lat[b];
		}
	s->b = calloc(n ? n : 1, sizeof(*s->b));
	s->bp = calloc(n ? n : 1, sizeof(*s->bp));
	if (!s->b || !s->bp)
		return -1;
	n = 0;
	for (unsigned b = 0; b < LAT_BUCKETS; b++) {
		if (!st->lat[b])
			continue;
		lazyd_latency_bucket__init(&s->b[n]);
		stats_bucket_range(b, &s->b[n].lo_ns, &s->b[n].hi_ns);
		s->b[n].count = st->lat[b];
		s->bp[n] = &s->b[n];
		n++;
	}
	s->lat.n_buckets = n;
	s->lat.buckets = s->bp;
	s->lat.sum_ns = st->lat_sum_ns;
	s->lat.p50_ns = stats_percentile_ns(st, 50);
	s->lat.p99_ns = stats_percentile_ns(st, 99);
	s->lat.max_ns = st->lat_max_ns;
	s->m.fault_latency = &s->lat;
	return 0;
}

static void counters_fill(struct snap *s, const struct lazyd *d)
{
	const struct lazyd_stats *st = &d->st;
	LazydCounters *c = &s->counters;

	lazyd_counters__init(c);
	c->faults = st->faults;
	c->eexist = st->eexist;
	c->eagain = st->eagain;
	c->forks = st->forks;
	c->remaps = st->remaps;
	c->removes = st->removes;
	c->unmaps = st->unmaps;
	c->tasks_received = st->tasks;
	c->zombies = st->zombies;
	c->tasks_exited = st->tasks_exited;
	c->tasks_killed = st->tasks_killed;
	c->items_refused = d->items_refused;
	c->has_worker_restarts = d->keeper != NULL;
	c->worker_restarts = st->worker_restarts;
	s->m.counters = c;
}

static void source_fill(struct snap *s, const struct lazyd *d)
{
	LazydSource *o = &s->source;
	const struct lazyd_opts *opt = d->o;
	struct src_state st;

	lazyd_source__init(o);
	o->name = (char *)(d->src.ops ? d->src.ops->name : "none");
	o->state = LAZYD_SOURCE_STATE__LAZYD_SOURCE_LOCAL;
	if (opt && opt->image_server) {
		snprintf(s->server, sizeof(s->server), "%s", opt->image_server);
		o->image = (char *)(opt->image_id ? opt->image_id : "default");
	} else if (opt && opt->page_server) {
		snprintf(s->server, sizeof(s->server), "%s:%d", opt->ps_address, opt->ps_port);
	}
	if (s->server[0])
		o->server = s->server;
	if (d->src.ops && d->src.ops->state) {
		d->src.ops->state((struct page_source *)&d->src, &st);
		o->state = st.lost	     ? LAZYD_SOURCE_STATE__LAZYD_SOURCE_LOST
			   : st.reconnecting ? LAZYD_SOURCE_STATE__LAZYD_SOURCE_RECONNECTING
					     : LAZYD_SOURCE_STATE__LAZYD_SOURCE_CONNECTED;
		o->has_reconnects = o->has_bad_checksums = 1;
		o->reconnects = st.reconnects;
		if (st.server[0] && opt && opt->image_server && strchr(opt->image_server, ',')) {
			snprintf(s->serving, sizeof(s->serving), "%s", st.server);
			o->serving = s->serving;
			o->has_failovers = 1;
			o->failovers = st.failovers;
		}
		o->bad_checksums = st.bad_sums;
		o->has_bytes_received = o->has_data_pages_fault = o->has_data_pages_stream = 1;
		o->bytes_received = st.bytes_rx;
		o->data_pages_fault = st.data_pages_rx[SRC_FAULTS];
		o->data_pages_stream = st.data_pages_rx[SRC_STREAM];
		if (st.reconnecting) {
			o->has_retry_in_ms = o->has_failures = 1;
			o->retry_in_ms = st.retry_ms;
			o->failures = st.failures;
		}
	}
	s->m.source = o;
}

static void fill_fill(struct snap *s, const struct lazyd *d)
{
	struct fill_stats fs = {0};

	lazyd_fill__init(&s->fill);
	s->fill.name = (char *)(d->fill.ops ? d->fill.ops->name : "none");
	if (d->fill.ops)
		filler_stats(&d->fill, &fs);
	s->fill.batches = fs.batches;
	s->fill.batch_bytes = fs.batch_bytes;
	s->fill.plain_calls = fs.plain_calls;
	s->fill.sessions = fs.sessions;
	s->fill.attach_failed = fs.attach_failed;
	s->fill.dropped = fs.dropped;
	s->m.fill = &s->fill;
}

/* Data pages per second over the samples of the last seconds (from the start before any). */
static void rate_fill(struct snap *s, const struct lazyd *d, double now)
{
	const struct lazyd_rate *r = &d->rate;
	uint64_t pages = d->st.pages_fault + d->st.pages_prefetch;
	double t0 = d->st.t_start;
	uint64_t p0 = 0;

	if (r->n) {
		unsigned oldest = r->n < RATE_SAMPLES ? 0 : r->next;
		t0 = r->t[oldest];
		p0 = r->pages[oldest];
	}
	s->m.rate_window_s = now > t0 ? now - t0 : 0;
	s->m.rate_pages_s =
	    s->m.rate_window_s > 0 && pages >= p0 ? (double)(pages - p0) / s->m.rate_window_s : 0;
	if (!s->totals.pages_pending) {
		s->m.has_eta_s = 1;
		s->m.eta_s = 0;
	} else if (s->m.rate_pages_s > 0) {
		s->m.has_eta_s = 1;
		s->m.eta_s = (double)s->totals.pages_pending / s->m.rate_pages_s;
	}
}

LazydStatus *lazyd_snapshot(const struct lazyd *d, double now)
{
	struct snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	lazyd_status__init(&s->m);
	if (tasks_fill(s, d) || latency_fill(s, &d->st)) {
		lazyd_snapshot_free(&s->m);
		return NULL;
	}
	s->m.version = (char *)CRIU_LAZY_VERSION;
	s->m.daemon_pid = (int32_t)getpid();
	s->m.uptime_s = now > d->st.t_start ? now - d->st.t_start : 0;
	s->m.restore_finished = d->restore_finished;
	if (d->st.t_restored > 0) {
		s->m.has_since_restore_s = 1;
		s->m.since_restore_s = now > d->st.t_restored ? now - d->st.t_restored : 0;
	}
	counters_fill(s, d);
	source_fill(s, d);
	fill_fill(s, d);
	rate_fill(s, d, now);
	s->m.work_dir = (char *)(d->work_dir ? d->work_dir : "");
	s->m.images =
	    (char *)(d->o ? (d->o->image_server ? d->o->image_server : d->o->images_dir) : "");
	return &s->m;
}

uint8_t *lazyd_status_reply(void *data, const char *word, size_t *len)
{
	const struct lazyd *d = data;

	*len = 0;
	if (strcmp(word, "status"))
		return NULL;
	LazydStatus *m = lazyd_snapshot(d, now_s());
	uint8_t *buf = m ? malloc(lazyd_status__get_packed_size(m)) : NULL;
	if (buf)
		*len = lazyd_status__pack(m, buf);
	else
		pr_err("status socket: out of memory for the status");
	lazyd_snapshot_free(m);
	return buf;
}

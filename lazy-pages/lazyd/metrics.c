/*
 * criu-lazyd's Prometheus families (docs/operations.md), built from one status snapshot
 * (status.c), so that `criu-lazyd status` and /metrics never disagree. Base units (seconds,
 * bytes), counters end in _total. Per-task series (label pid, the pid in the images) only
 * while at most LAZYD_METRICS_MAX_TASKS tasks are tracked, and only for tasks not gone;
 * beyond that the totals only, so that a fork storm cannot blow up the series.
 */
#include <stdio.h>
#include <string.h>

#include "lazyd.h"
#include "util/version.h"

#define NS 1e-9
/* Fault latency buckets: powers of two of nanoseconds, 2^10 (1 us) to 2^29 (0.54 s; 9 digits, as
 * prom.h prints a bound); each is a bucket boundary of the daemon's log-linear histogram, so the
 * counts are exact. */
#define LAT_POW_MIN 10
#define LAT_POW_MAX 29
#define LAT_NB (LAT_POW_MAX - LAT_POW_MIN + 1)

static void one(struct prom_buf *b, const char *name, const char *type, const char *help, double v)
{
	prom_head(b, name, type, help);
	prom_sample(b, name, NULL, 0, v);
}

static void latency(struct prom_buf *b, const LazydLatency *l)
{
	double bounds[LAT_NB];
	uint64_t counts[LAT_NB + 1] = {0};

	for (unsigned i = 0; i < LAT_NB; i++)
		bounds[i] = (double)(1ull << (LAT_POW_MIN + i)) * NS;
	for (size_t k = 0; k < l->n_buckets; k++) {
		const LazydLatencyBucket *bk = l->buckets[k];
		unsigned i = 0;
		/* [lo, hi) holds integers up to hi - 1: within the first bound >= hi - 1. */
		while (i < LAT_NB && (1ull << (LAT_POW_MIN + i)) < bk->hi_ns - 1)
			i++;
		counts[i] += bk->count;
	}
	prom_head(b, "criu_lazyd_fault_latency_seconds", "histogram",
		  "Time from a fault message read to its page installed.");
	prom_histogram(b, "criu_lazyd_fault_latency_seconds", NULL, 0, bounds, counts, LAT_NB,
		       (double)l->sum_ns * NS);
}

static void pages(struct prom_buf *b, const LazydTotals *t)
{
	static const char inst[] = "criu_lazyd_pages_installed_total";
	struct prom_label path[1] = {{"path", NULL}};

	prom_head(b, inst, "counter",
		  "Pages installed: data pages by the fault path and the background drain, zero "
		  "pages by either.");
	path[0].value = "fault";
	prom_sample(b, inst, path, 1, (double)t->pages_fault);
	path[0].value = "prefetch";
	prom_sample(b, inst, path, 1, (double)t->pages_prefetch);
	path[0].value = "zero";
	prom_sample(b, inst, path, 1, (double)t->pages_zero);
	one(b, "criu_lazyd_pages_pending", "gauge", "Data pages still to install.",
	    (double)t->pages_pending);
	one(b, "criu_lazyd_zero_pages_pending", "gauge",
	    "Zero pages pending (installed only when a task touches them).",
	    (double)t->zero_pending);
	one(b, "criu_lazyd_pages_dropped_total", "counter",
	    "Data pages never installed by the daemon: unmapped or discarded by the tasks, "
	    "found present, or their task was gone.",
	    (double)t->pages_dropped);
	one(b, "criu_lazyd_image_pages", "gauge", "Lazy data pages in the images.",
	    (double)t->image_pages);
	one(b, "criu_lazyd_bytes_copied_total", "counter", "Bytes of page data installed.",
	    (double)t->bytes_copied);
	one(b, "criu_lazyd_faults_queued", "gauge", "Fault messages read and not served yet.",
	    (double)t->faults_queued);
}

static void tasks(struct prom_buf *b, const LazydStatus *m)
{
	static const char *const names[] = {"served", "gone", "killed"};
	const uint32_t n[] = {m->totals->served, m->totals->gone, m->totals->killed};
	struct prom_label l[1] = {{"state", NULL}};

	prom_head(b, "criu_lazyd_tasks", "gauge", "Tasks tracked, by state.");
	for (unsigned i = 0; i < 3; i++) {
		l[0].value = names[i];
		prom_sample(b, "criu_lazyd_tasks", l, 1, n[i]);
	}
	one(b, "criu_lazyd_tasks_received_total", "counter",
	    "Tasks the restore sent (zombies included).", (double)m->counters->tasks_received);
	one(b, "criu_lazyd_tasks_refused_total", "counter",
	    "Tasks the restore sent that the daemon refused to serve.", m->counters->items_refused);
}

/* A task's series, when the daemon tracks few enough tasks: served and killed ones, each pid
 * once (a fork child not identified yet has none). */
static bool task_series(const LazydStatus *m, size_t i)
{
	const LazydTaskStatus *t = m->tasks[i];

	if (m->totals->tasks > LAZYD_METRICS_MAX_TASKS || t->pid <= 0 ||
	    t->state == LAZYD_TASK_STATE__LAZYD_TASK_GONE)
		return false;
	for (size_t k = 0; k < i; k++)
		if (m->tasks[k]->pid == t->pid && task_series(m, k))
			return false;
	return true;
}

static void per_task(struct prom_buf *b, const LazydStatus *m)
{
	static const char pend[] = "criu_lazyd_task_pages_pending";
	static const char inst[] = "criu_lazyd_task_pages_installed_total";
	char pid[16];
	struct prom_label l[2] = {{"pid", pid}, {"path", NULL}};

	prom_head(b, pend, "gauge", "Data pages still to install, per task (at most 64 tasks).");
	for (size_t i = 0; i < m->n_tasks; i++)
		if (task_series(m, i)) {
			snprintf(pid, sizeof(pid), "%d", m->tasks[i]->pid);
			prom_sample(b, pend, l, 1, (double)m->tasks[i]->pages_pending);
		}
	prom_head(b, inst, "counter", "Pages installed, per task (at most 64 tasks).");
	for (size_t i = 0; i < m->n_tasks; i++) {
		const LazydTaskStatus *t = m->tasks[i];
		if (!task_series(m, i))
			continue;
		snprintf(pid, sizeof(pid), "%d", t->pid);
		l[1].value = "fault";
		prom_sample(b, inst, l, 2, (double)t->pages_fault);
		l[1].value = "prefetch";
		prom_sample(b, inst, l, 2, (double)t->pages_prefetch);
		l[1].value = "zero";
		prom_sample(b, inst, l, 2, (double)t->pages_zero);
	}
}

static void counters(struct prom_buf *b, const LazydCounters *c)
{
	static const char ev[] = "criu_lazyd_uffd_events_total";
	static const char conf[] = "criu_lazyd_install_conflicts_total";
	struct prom_label l[1] = {{"event", NULL}};

	one(b, "criu_lazyd_faults_total", "counter", "Faults served.", (double)c->faults);
	if (c->has_worker_restarts)
		one(b, "criu_lazyd_worker_restarts_total", "counter",
		    "Workers the keeper restarted after they died (each resumed the restore).",
		    (double)c->worker_restarts);
	prom_head(b, ev, "counter", "Userfaultfd events applied to the pending pages.");
	const char *const en[] = {"fork", "remap", "remove", "unmap"};
	const uint64_t ev_n[] = {c->forks, c->remaps, c->removes, c->unmaps};
	for (unsigned i = 0; i < 4; i++) {
		l[0].value = en[i];
		prom_sample(b, ev, l, 1, (double)ev_n[i]);
	}
	prom_head(b, conf, "counter",
		  "Installs the kernel refused: the page was present (eexist), or the address "
		  "space was changing (eagain, retried).");
	l[0].name = "result";
	l[0].value = "eexist";
	prom_sample(b, conf, l, 1, (double)c->eexist);
	l[0].value = "eagain";
	prom_sample(b, conf, l, 1, (double)c->eagain);
}

static void source_fill(struct prom_buf *b, const LazydStatus *m)
{
	const LazydSource *s = m->source;
	const LazydFill *f = m->fill;
	bool up = s->state == LAZYD_SOURCE_STATE__LAZYD_SOURCE_LOCAL ||
		  s->state == LAZYD_SOURCE_STATE__LAZYD_SOURCE_CONNECTED;

	one(b, "criu_lazyd_source_connected", "gauge",
	    "1 while the page source can be read (local images, or its connections up), 0 while "
	    "it reconnects or is lost.",
	    up);
	one(b, "criu_lazyd_source_reconnects_total", "counter",
	    "Connections to the page source re-established.", (double)s->reconnects);
	one(b, "criu_lazyd_source_failovers_total", "counter",
	    "Connections opened to another image server of the list than the one before.",
	    (double)s->failovers);
	one(b, "criu_lazyd_source_backoff_seconds", "gauge",
	    "While reconnecting: time until the next attempt.", (double)s->retry_in_ms / 1e3);
	one(b, "criu_lazyd_source_bad_checksums_total", "counter",
	    "Pages from the image server that failed their checksum (and were read again).",
	    (double)s->bad_checksums);
	if (s->has_bytes_received) {
		one(b, "criu_lazyd_source_bytes_received_total", "counter",
		    "Frame bytes received from a network page source.", (double)s->bytes_received);
		one(b, "criu_lazyd_source_data_pages_received_total", "counter",
		    "Data pages received from a network page source (both connections).",
		    (double)(s->data_pages_fault + s->data_pages_stream));
	}
	one(b, "criu_lazyd_fill_batches_total", "counter",
	    "Batches installed through the fill engine's batch path (lazyfill.ko).",
	    (double)f->batches);
	one(b, "criu_lazyd_fill_batch_bytes_total", "counter", "Bytes installed by those batches.",
	    (double)f->batch_bytes);
	one(b, "criu_lazyd_fill_plain_calls_total", "counter",
	    "Calls the fill engine served with plain userfaultfd ioctls.", (double)f->plain_calls);
}

void lazyd_metrics_text(const LazydStatus *m, struct prom_buf *b)
{
	struct prom_label info[4] = {{"version", m->version},
				     {"source", m->source->name},
				     {"fill", m->fill->name},
				     {"image", m->source->image ? m->source->image : m->images}};

	prom_head(b, "criu_lazyd_info", "gauge",
		  "Always 1: the daemon's version, page source, fill engine and image (the image "
		  "id on criu-imgd, else the images dir).");
	prom_sample(b, "criu_lazyd_info", info, 4, 1);
	one(b, "criu_lazyd_uptime_seconds", "gauge", "Time since the daemon started.", m->uptime_s);
	one(b, "criu_lazyd_restore_finished", "gauge",
	    "1 once the restore sent its finished marker (the background drain runs).",
	    m->restore_finished);
	pages(b, m->totals);
	one(b, "criu_lazyd_install_rate_pages_per_second", "gauge",
	    "Data pages installed per second over the last seconds.", m->rate_pages_s);
	if (m->has_eta_s)
		one(b, "criu_lazyd_eta_seconds", "gauge",
		    "Time until every pending data page is in, at the current rate (absent while "
		    "the rate is 0).",
		    m->eta_s);
	latency(b, m->fault_latency);
	counters(b, m->counters);
	tasks(b, m);
	if (m->totals->tasks <= LAZYD_METRICS_MAX_TASKS)
		per_task(b, m);
	source_fill(b, m);
}

void lazyd_metrics_fill(void *data, struct prom_buf *b)
{
	LazydStatus *m = lazyd_snapshot(data, now_s());

	if (!m) {
		b->failed = true;
		return;
	}
	lazyd_metrics_text(m, b);
	lazyd_snapshot_free(m);
}

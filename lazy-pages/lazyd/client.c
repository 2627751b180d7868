/*
 * `criu-lazyd status [-W WORKDIR] [--json] [--watch [SECONDS]]`: asks the daemon serving
 * WORKDIR on its status socket (status.h) and prints a short table, the message as JSON, or,
 * with --watch, a refresh every SECONDS until the daemon is gone (on a terminal redrawn in
 * place, else one progress line per refresh).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lazyd.h"
#include "ops/ctl.h"
#include "ops/pb_json.h"

#define MIN_INTERVAL 0.1

struct client {
	const char *work_dir;
	char path[4096];
	bool json, watch, tty;
	double interval;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: criu-lazyd status [-W DIR] [--json] [--watch [SECONDS]]\n"
		   "Show the progress of the restore a running criu-lazyd serves.\n"
		   "\n"
		   "  -W, --work-dir DIR  the daemon's work dir (default: .)\n"
		   "      --json          the whole status as JSON\n"
		   "      --watch [SECONDS]  refresh every SECONDS (default 1) until the daemon "
		   "exits\n"
		   "  -h, --help          this text\n");
}

static int parse(struct client *c, int argc, char **argv)
{
	c->work_dir = ".";
	c->interval = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 1;
		} else if (!strcmp(a, "--json")) {
			c->json = true;
		} else if (!strcmp(a, "--watch") || !strncmp(a, "--watch=", 8)) {
			const char *v = a[7] == '=' ? a + 8 : NULL;
			char *end;
			c->watch = true;
			if (!v && i + 1 < argc && argv[i + 1][0] != '-')
				v = argv[++i];
			if (!v)
				continue;
			errno = 0;
			c->interval = strtod(v, &end);
			if (errno || end == v || *end || c->interval < MIN_INTERVAL ||
			    c->interval > 3600) {
				fprintf(stderr,
					"criu-lazyd status: bad --watch interval '%s' (seconds, "
					"0.1..3600)\n",
					v);
				return -1;
			}
		} else if (!strcmp(a, "-W") || !strcmp(a, "--work-dir")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "criu-lazyd status: %s needs a directory\n", a);
				return -1;
			}
			c->work_dir = argv[++i];
		} else if (!strncmp(a, "--work-dir=", 11)) {
			c->work_dir = a + 11;
		} else if (!strncmp(a, "-W", 2)) {
			c->work_dir = a + 2;
		} else {
			fprintf(stderr, "criu-lazyd status: unknown argument '%s' (see --help)\n",
				a);
			return -1;
		}
	}
	if ((size_t)snprintf(c->path, sizeof(c->path), "%s/%s", c->work_dir, LAZYD_STATUS_NAME) >=
	    sizeof(c->path)) {
		fprintf(stderr, "criu-lazyd status: work dir path too long\n");
		return -1;
	}
	c->tty = isatty(STDOUT_FILENO);
	return 0;
}

/* One status from the daemon: 0, or -errno with e. */
static int query(const struct client *c, LazydStatus **out, struct errmsg *e)
{
	uint8_t *buf;
	size_t len;
	int rc = ctl_query(c->path, "status", &buf, &len, e);

	if (rc)
		return rc;
	*out = len ? lazyd_status__unpack(NULL, len, buf) : NULL;
	free(buf);
	if (!*out)
		return errmsg_set(e, EBADMSG,
				  "%s: the daemon's answer is not a status (%zu bytes): is it a "
				  "criu-lazyd of another version?",
				  c->path, len);
	return 0;
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 100.0;
}

/* "12 s", "3 min 4 s", "2 h 5 min"; "unknown" when t < 0. */
static const char *dur(double t, char *b, size_t n)
{
	if (t < 0)
		snprintf(b, n, "unknown");
	else if (t < 60)
		snprintf(b, n, "%.0f s", t);
	else if (t < 3600)
		snprintf(b, n, "%ld min %ld s", (long)t / 60, (long)t % 60);
	else
		snprintf(b, n, "%ld h %ld min", (long)(t / 3600), ((long)t % 3600) / 60);
	return b;
}

static const char *state_name(LazydTaskState s)
{
	return s == LAZYD_TASK_STATE__LAZYD_TASK_SERVED ? "served"
	       : s == LAZYD_TASK_STATE__LAZYD_TASK_GONE ? "gone"
							: "killed";
}

static const char *source_line(const LazydSource *s, char *b, size_t n)
{
	const char *st = s->state == LAZYD_SOURCE_STATE__LAZYD_SOURCE_LOCAL	  ? "local images"
			 : s->state == LAZYD_SOURCE_STATE__LAZYD_SOURCE_CONNECTED ? "connected"
			 : s->state == LAZYD_SOURCE_STATE__LAZYD_SOURCE_LOST	  ? "lost"
										  : "reconnecting";
	int k = s->state == LAZYD_SOURCE_STATE__LAZYD_SOURCE_LOCAL
		    ? snprintf(b, n, "%s", st)
		    : snprintf(b, n, "%s%s%s, %s", s->name, s->server ? " " : "",
			       s->server ? s->server : "", st);
	if (s->state == LAZYD_SOURCE_STATE__LAZYD_SOURCE_RECONNECTING && k > 0 && (size_t)k < n)
		k += snprintf(b + k, n - (size_t)k, " (attempt %u failed, next in %u ms)",
			      s->failures, s->retry_in_ms);
	if (s->serving && k > 0 && (size_t)k < n)
		k += snprintf(b + k, n - (size_t)k, ", through %s (%lu failovers)", s->serving,
			      (unsigned long)s->failovers);
	if (s->has_reconnects && s->reconnects && k > 0 && (size_t)k < n)
		snprintf(b + k, n - (size_t)k, ", %lu reconnects", (unsigned long)s->reconnects);
	return b;
}

/* A latency: "85 us", "12.3 ms", "1.20 s". */
static const char *lat(uint64_t ns, char *b, size_t n)
{
	if (ns < 1000000)
		snprintf(b, n, "%.0f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(b, n, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(b, n, "%.2f s", (double)ns / 1e9);
	return b;
}

/* The one-line summary: installed of total, pending, rate, ETA, latency, source. */
static void totals_line(FILE *f, const LazydStatus *m)
{
	const LazydTotals *t = m->totals;
	uint64_t in = t->pages_fault + t->pages_prefetch;
	char eta[32], src[256], p50[16], p99[16];

	fprintf(f,
		"%lu of %lu data pages in (%.1f%%), %lu pending; %.0f pages/s, ETA %s; "
		"%lu faults, p50 %s, p99 %s; source %s\n",
		(unsigned long)in, (unsigned long)t->pages_total, pct(in, t->pages_total),
		(unsigned long)t->pages_pending, m->rate_pages_s,
		dur(m->has_eta_s ? m->eta_s : -1, eta, sizeof(eta)),
		(unsigned long)m->counters->faults, lat(m->fault_latency->p50_ns, p50, sizeof(p50)),
		lat(m->fault_latency->p99_ns, p99, sizeof(p99)),
		source_line(m->source, src, sizeof(src)));
}

static void table(FILE *f, const LazydStatus *m)
{
	char up[32];

	fprintf(f, "criu-lazyd %s, pid %d, up %s, %s; fill %s; images %s\n", m->version,
		m->daemon_pid, dur(m->uptime_s, up, sizeof(up)),
		m->restore_finished ? "restore finished, draining" : "restore running",
		m->fill->name, m->images);
	fprintf(f, "%8s  %-7s %10s %10s %10s %7s %7s\n", "PID", "STATE", "PENDING", "INSTALLED",
		"DROPPED", "DONE", "QUEUED");
	for (size_t i = 0; i < m->n_tasks; i++) {
		const LazydTaskStatus *t = m->tasks[i];
		uint64_t in = t->pages_fault + t->pages_prefetch;
		fprintf(f, "%8d  %-7s %10lu %10lu %10lu %6.1f%% %7u\n", t->pid,
			state_name(t->state), (unsigned long)t->pages_pending, (unsigned long)in,
			(unsigned long)t->pages_dropped, pct(in, t->pages_total), t->faults_queued);
	}
	if (m->tasks_omitted)
		fprintf(f, "(%u more tasks, in the totals)\n", m->tasks_omitted);
	if (!m->totals->tasks && !m->restore_finished)
		fprintf(f, "(no task yet: waiting for criu restore to connect)\n");
	fprintf(f, "total: ");
	totals_line(f, m);
}

static int show(const struct client *c, const LazydStatus *m)
{
	if (c->json) {
		if (pb_json_print(stdout, &m->base, c->watch)) {
			fprintf(stderr, "criu-lazyd status: out of memory for the JSON\n");
			return -ENOMEM;
		}
		return fflush(stdout) ? -errno : 0;
	}
	if (!c->watch) {
		table(stdout, m);
	} else if (c->tty) {
		fputs("\033[H\033[2J", stdout); /* home, clear: redraw in place */
		table(stdout, m);
	} else {
		char up[32];
		printf("up %s: ", dur(m->uptime_s, up, sizeof(up)));
		totals_line(stdout, m);
	}
	return fflush(stdout) ? -errno : 0;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int lazyd_status_main(int argc, char **argv)
{
	struct client c = {0};
	struct errmsg e = {""};
	LazydStatus *m;
	int rc = parse(&c, argc, argv);

	if (rc)
		return rc > 0 ? 0 : 1;
	rc = query(&c, &m, &e);
	if (rc) {
		fprintf(stderr,
			"criu-lazyd status: %s\n"
			"criu-lazyd status: is criu-lazyd running with -W %s? Are you root or the "
			"daemon's user? (-W DIR names another work dir)\n",
			e.msg, c.work_dir);
		return 1;
	}
	for (;;) {
		rc = show(&c, m);
		lazyd_status__free_unpacked(m, NULL);
		if (rc || !c.watch)
			return rc ? 1 : 0;
		sleep_s(c.interval);
		rc = query(&c, &m, &e);
		if (rc == -ENOENT || rc == -ECONNREFUSED || rc == -ECONNRESET) {
			/* It exited (its socket removed) or died: the watch is over. */
			printf("criu-lazyd status: the daemon serving %s is gone\n", c.work_dir);
			return 0;
		}
		if (rc) {
			fprintf(stderr, "criu-lazyd status: %s\n", e.msg);
			return 1;
		}
	}
}

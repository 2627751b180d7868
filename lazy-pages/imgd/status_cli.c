/*
 * `criu-imgd status [--status-socket PATH] [--json] [--watch [SECONDS]]`: ask a running
 * criu-imgd for its status snapshot (status.h) over its status socket and print it: a table
 * of the sessions and the totals, or the message as JSON (ops/pb_json.h). --watch asks again
 * every SECONDS until the server is gone: redrawn in place on a terminal, one line per
 * refresh otherwise.
 */
#include "status.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ops/ctl.h"
#include "ops/pb_json.h"
#include "util/parse.h"

#define WATCH_DEFAULT_S 2
#define WATCH_MAX_S 3600

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: criu-imgd status [--status-socket PATH] [--json] [--watch [SECONDS]]\n"
		"Show a running criu-imgd's sessions and totals (root or its user only).\n"
		"\n"
		"      --status-socket PATH\n"
		"                         the server's status socket (default\n"
		"                         $RUNTIME_DIRECTORY/status.sock, else\n"
		"                         /run/criu-imgd/status.sock)\n"
		"      --json             the status message as JSON\n"
		"      --watch [SECONDS]  again every SECONDS (default %d) until the server is\n"
		"                         gone: redrawn on a terminal, else a line each time\n"
		"  -h, --help             this text\n",
		WATCH_DEFAULT_S);
}

/* Ask once: the snapshot (imgd_status__free_unpacked it), or NULL with why in e. */
static ImgdStatus *ask(const char *path, struct errmsg *e, int *err)
{
	uint8_t *b;
	size_t len;
	int rc = ctl_query(path, "status", &b, &len, e);

	*err = -rc;
	if (rc)
		return NULL;
	ImgdStatus *st = len ? imgd_status__unpack(NULL, len, b) : NULL;
	free(b);
	if (!st) {
		*err = EPROTO;
		errmsg_set(e, EPROTO, "%s: %s", path,
			   len ? "the answer is not a status message (another program's socket?)"
			       : "an empty answer (the server is out of memory, or not criu-imgd)");
	}
	return st;
}

/* What failed, and what to do. */
static void explain(const char *path, int err, const struct errmsg *e)
{
	if (err == ENOENT || err == ECONNREFUSED)
		fprintf(stderr,
			"criu-imgd status: no criu-imgd answers at %s (%s): is it running? It "
			"makes this socket unless started with --status-socket none; give its "
			"--status-socket PATH\n",
			path, strerror(err));
	else if (err == EACCES || err == EPERM || err == ECONNRESET || err == EPIPE)
		fprintf(stderr,
			"criu-imgd status: %s: %s: only root and the user criu-imgd runs as may "
			"ask it (try sudo, or sudo -u criu-imgd)\n",
			path, strerror(err));
	else
		fprintf(stderr, "criu-imgd status: %s\n", e->msg[0] ? e->msg : strerror(err));
}

/* 1536 -> "1.5K", pages and bytes alike (powers of 1024). */
static const char *human(uint64_t v, char *buf, size_t len)
{
	static const char u[] = "KMGTP";
	double x = (double)v;
	int i = -1;

	while (x >= 1024 && i < 4) {
		x /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "%lu", (unsigned long)v);
	else
		snprintf(buf, len, "%.1f%c", x, u[i]);
	return buf;
}

static const char *dur(double s, char *buf, size_t len)
{
	unsigned long t = (unsigned long)s;

	if (s < 60)
		snprintf(buf, len, "%.1fs", s);
	else if (t < 3600)
		snprintf(buf, len, "%lum%02lus", t / 60, t % 60);
	else
		snprintf(buf, len, "%luh%02lum", t / 3600, t / 60 % 60);
	return buf;
}

static void print_counts(FILE *f, ImgdStatusCount *const *c, size_t n)
{
	int any = 0;

	for (size_t i = 0; i < n; i++)
		if (c[i]->value)
			fprintf(f, "%s%s %lu", any++ ? ", " : " ", c[i]->name,
				(unsigned long)c[i]->value);
	fprintf(f, "%s\n", any ? "" : " none");
}

static void print_table(FILE *f, const ImgdStatus *st)
{
	const ImgdStatusTotals *t = st->totals;
	char a[32], b[32], c[32], d[32];

	fprintf(f, "criu-imgd %s, pid %u, up %s: listening on %s, TLS %s, serving %s %s%s\n",
		st->version, st->pid, dur(st->uptime_seconds, a, sizeof(a)), st->listen, st->tls,
		st->store  ? "--store"
		: st->root ? "--root"
			   : "-D",
		st->serving, st->accept_uploads ? " (accepts uploads)" : "");
	if (st->store) {
		const ImgdStatusStore *s = st->store;
		fprintf(f,
			"store: %lu GETs (%sB), %lu chunk reads, %lu PUTs (%sB), %lu errors, %lu "
			"bad objects; chunk cache %sB of %sB, %lu hits, %lu misses\n",
			(unsigned long)s->gets, human(s->get_bytes, a, sizeof(a)),
			(unsigned long)s->chunk_reads, (unsigned long)s->puts,
			human(s->put_bytes, b, sizeof(b)), (unsigned long)s->errors,
			(unsigned long)s->bad_objects, human(s->cache_bytes, c, sizeof(c)),
			human(s->cache_capacity, d, sizeof(d)), (unsigned long)s->cache_hits,
			(unsigned long)s->cache_misses);
	}
	fprintf(f, "\nimages loaded: %zu\n", st->n_images);
	if (st->n_images)
		fprintf(f, "  %-24s %6s %11s %9s %11s\n", "IMAGE", "TASKS", "LAZY-PAGES",
			"SESSIONS", "PAGES-SENT");
	for (size_t i = 0; i < st->n_images; i++) {
		const ImgdStatusImage *im = st->images[i];
		fprintf(f, "  %-24s %6u %11lu %9u %11lu\n", im->id, im->tasks,
			(unsigned long)im->lazy_pages, im->sessions, (unsigned long)im->pages_sent);
	}
	fprintf(f, "\nsessions: %zu (at most %u)\n", st->n_sessions, st->max_clients);
	if (st->n_sessions)
		fprintf(f, "  %-6s %-22s %-7s %-7s %-7s %-16s %8s %7s %7s %6s %7s %7s\n", "ID",
			"PEER", "CLASS", "STATE", "ROLE", "IMAGE", "REQUESTS", "PAGES", "BYTES",
			"QUEUED", "AGE", "IDLE");
	for (size_t i = 0; i < st->n_sessions; i++) {
		const ImgdStatusSession *s = st->sessions[i];
		char p[32], by[32];
		fprintf(f, "  %-6lu %-22s %-7s %-7s %-7s %-16s %8lu %7s %7s %6u %7s %7s\n",
			(unsigned long)s->id, s->peer, s->class_, s->state, s->role ? s->role : "-",
			s->image ? s->image : "-", (unsigned long)s->requests,
			human(s->pages_sent, p, sizeof(p)), human(s->bytes_sent, by, sizeof(by)),
			s->queued, dur(s->age_seconds, a, sizeof(a)),
			dur(s->idle_seconds, b, sizeof(b)));
	}
	fprintf(f, "\ntotals:\n  connections %lu:", (unsigned long)t->connections);
	print_counts(f, t->connections_by_result, t->n_connections_by_result);
	fprintf(f, "  auth failures %lu, checksum failures %lu\n", (unsigned long)t->auth_failures,
		(unsigned long)t->checksum_failures);
	fprintf(f, "  requests %lu, pages sent %lu (%lu zero), bytes sent %sB\n",
		(unsigned long)t->requests, (unsigned long)t->pages_sent,
		(unsigned long)t->zero_pages, human(t->bytes_sent, c, sizeof(c)));
	for (size_t i = 0; i < t->n_classes; i++) {
		const ImgdStatusClass *k = t->classes[i];
		if (k->sessions || k->requests || k->pages_sent)
			fprintf(f, "  %-7s %u open, %lu requests, %lu pages, %sB\n", k->class_,
				k->sessions, (unsigned long)k->requests,
				(unsigned long)k->pages_sent, human(k->bytes_sent, c, sizeof(c)));
	}
	fprintf(f, "  errors sent:");
	print_counts(f, t->errors_sent, t->n_errors_sent);
}

/* --watch without a terminal: one line per refresh. */
static void print_line(FILE *f, const ImgdStatus *st)
{
	const ImgdStatusTotals *t = st->totals;
	uint64_t errors = 0;
	char when[16];
	time_t now = time(NULL);

	for (size_t i = 0; i < t->n_errors_sent; i++)
		errors += t->errors_sent[i]->value;
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	fprintf(f,
		"%s sessions %zu images %zu connections %lu auth_failures %lu requests %lu "
		"pages_sent %lu bytes_sent %lu errors %lu\n",
		when, st->n_sessions, st->n_images, (unsigned long)t->connections,
		(unsigned long)t->auth_failures, (unsigned long)t->requests,
		(unsigned long)t->pages_sent, (unsigned long)t->bytes_sent, (unsigned long)errors);
}

struct cli {
	char path[108];
	bool json, watch;
	long every;
};

/* 0, 1 (--help printed), or -EINVAL (what is wrong printed). */
static int parse(int argc, char **argv, struct cli *c)
{
	static const struct option lo[] = {
	    {"status-socket", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"watch", optional_argument, NULL, 'w'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *sock = NULL;
	int o;

	c->every = WATCH_DEFAULT_S;
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (o) {
		case 's':
			sock = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		case 'w': {
			/* --watch SECONDS as well as --watch=SECONDS */
			const char *v = optarg;
			if (!v && optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9')
				v = argv[optind++];
			c->watch = true;
			if (v && parse_long(v, 1, WATCH_MAX_S, &c->every)) {
				fprintf(
				    stderr,
				    "criu-imgd status: bad value '%s' for --watch: seconds, 1 to "
				    "%d\n",
				    v, WATCH_MAX_S);
				return -EINVAL;
			}
			break;
		}
		case 'h':
			usage(stdout);
			return 1;
		case ':':
			fprintf(stderr, "criu-imgd status: option '%s' needs a value\n",
				argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr, "criu-imgd status: unknown option '%s' (see --help)\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "criu-imgd status: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	int rc = status_socket_path(sock, false, c->path, sizeof(c->path));
	if (rc == 0) {
		fprintf(stderr, "criu-imgd status: --status-socket none: nothing to ask\n");
		return -EINVAL;
	}
	if (rc < 0) {
		fprintf(stderr, "criu-imgd status: the socket path is too long (at most %zu)\n",
			sizeof(c->path) - 1);
		return -EINVAL;
	}
	return 0;
}

int status_cli(int argc, char **argv)
{
	struct cli c = {0};
	struct errmsg e = {""};
	bool tty = isatty(STDOUT_FILENO);
	int err, rc = parse(argc, argv, &c);

	if (rc)
		return rc > 0 ? 0 : 1;
	for (unsigned n = 0;; n++) {
		ImgdStatus *st = ask(c.path, &e, &err);
		if (!st && n == 0) {
			explain(c.path, err, &e);
			return 1;
		}
		if (!st) { /* watching, and the server has gone */
			fprintf(stderr, "criu-imgd status: the server at %s is gone (%s)\n", c.path,
				strerror(err));
			return 0;
		}
		if (c.watch && tty && !c.json)
			fputs("\033[H\033[2J", stdout); /* home, clear */
		if (c.json) {
			rc = pb_json_print(stdout, &st->base, c.watch);
			if (rc)
				fprintf(stderr, "criu-imgd status: out of memory\n");
		} else if (c.watch && !tty)
			print_line(stdout, st);
		else
			print_table(stdout, st);
		imgd_status__free_unpacked(st, NULL);
		fflush(stdout);
		if (rc)
			return 1;
		if (!c.watch)
			return 0;
		sleep((unsigned)c.every);
	}
}

/*
 * lf-nlstat: print lazyfill.ko's counters over generic netlink: the global
 * ones, then one line per live session.
 *   lf-nlstat [--live N]   exit 1 unless exactly N sessions are live
 */
#include "kt/kt.h"

#include "lib/lazyfill_nl.h"

static void show(const char *what, const struct lazyfill_nl_stats *s)
{
	printf("%s session=%u pid=%u exited=%d batches=%llu extents=%llu pages=%llu bytes=%llu "
	       "wakes=%llu eagain=%llu eexist=%llu refused=%llu",
	       what, s->session, s->pid, s->exited, (unsigned long long)s->batches,
	       (unsigned long long)s->extents, (unsigned long long)s->pages,
	       (unsigned long long)s->bytes, (unsigned long long)s->wakes,
	       (unsigned long long)s->eagain, (unsigned long long)s->eexist,
	       (unsigned long long)s->refused);
	if (!s->session)
		printf(" sessions_live=%llu sessions_total=%llu",
		       (unsigned long long)s->sessions_live, (unsigned long long)s->sessions_total);
	printf("\n");
}

int main(int argc, char **argv)
{
	struct lazyfill_nl *nl;
	struct lazyfill_nl_stats g, all[64];
	size_t n = 0;
	long want = argc > 2 && !strcmp(argv[1], "--live") ? atol(argv[2]) : -1;
	int rc = lazyfill_nl_open(&nl);

	if (rc) {
		fprintf(stderr, "lf-nlstat: %s\n", strerror(-rc));
		return 2;
	}
	rc = lazyfill_nl_get(nl, 0, &g);
	if (rc) {
		fprintf(stderr, "lf-nlstat: get: %s\n", strerror(-rc));
		return 2;
	}
	show("global", &g);
	rc = lazyfill_nl_list(nl, all, 64, &n);
	if (rc) {
		fprintf(stderr, "lf-nlstat: list: %s\n", strerror(-rc));
		return 2;
	}
	for (size_t i = 0; i < n && i < 64; i++)
		show("live", &all[i]);
	lazyfill_nl_close(nl);
	if (want >= 0 && (g.sessions_live != (uint64_t)want || n != (size_t)want)) {
		fprintf(stderr, "lf-nlstat: %llu sessions live (%zu listed), want %ld\n",
			(unsigned long long)g.sessions_live, n, want);
		return 1;
	}
	return 0;
}

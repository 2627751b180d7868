/* memhog -m MB [-s SEED] [-x] [-f] [-r N] [-w PERMILLE] -c CTLDIR -o RESULT
 *
 * Maps MB megabytes of private anonymous memory, fills it with the pattern of wl.h (data
 * pages, explicit zero pages, never-touched pages and a never-touched tail), reports "ready",
 * then waits. After restore (CTL/restored appears) it reports "resumed <ns>" at once, without
 * touching the big region; on CTL/verify it checks every byte and reports (if CTL/corrupt
 * exists it first flips one byte, to test the checker); then it keeps
 * working: every second it appends "tick N <ns>" and rewrites (and checks) one page.
 * With -x it instead exits right after "resumed", having read four pages, so most of
 * its pages are still pending when it goes (the daemon must notice and finish).
 * With -r N (default 1) the verification is done by N readers that split the region into N
 * contiguous slices and read (check) each page of their slice once, concurrently: the main
 * thread takes the first slice, N-1 threads (created at verify time, so the dump sees one
 * thread) the others. The "verify" line is the same; ms= and at= count until the last reader
 * is done.
 * With -f (fork; not with -r or -x) it forks on CTL/verify, right after restore when the test
 * verifies at once: parent and child both read and check every byte of the region (the child's
 * copy faults through the daemon's fork handling), each timing the first touch of every page.
 * The child appends "child-verify ok|FAIL ..." and sends its result to the parent through a
 * pipe, then exits (the parent reaps it); the parent, done with its own
 * check, waits for the child's and appends the one "verify ok|FAIL ..." line for both: at= is
 * when the later of the two was done, pms=/cms= each one's ms, and stall_n=, stall_p50_us=,
 * stall_p99_us=, stall_max_us= describe the first touches of both that took 100 us or more
 * (a page that was not there yet: a fault served by the daemon).
 * With -w PERMILLE (working set; not with -f or -x) the verification first reads a fixed
 * random PERMILLE/1000 of the pages (the same pages in the same order on every run with the
 * same -m and -s: a working set), timing the first touch of each, and reports "ws ok|FAIL
 * pages=N ms= at= stall_n= stall_p50_us= stall_p99_us= stall_max_us=" (at=: when the working
 * set was read; stalls as for -f); then it checks every page as without -w. */
#include <pthread.h>
#include <sys/wait.h>

#include "wl.h"

#define MAX_READERS 64

struct reader {
	const char *mem;
	uint64_t npages, seed, from, to, bad;
	long long done; /* now_ns() when this reader had checked its slice */
	char err[256];
	pthread_t th;
};

/* Fork mode: one process's check, timed per page, sent from the child to the parent. */
#define STALL_US 100
struct fork_result {
	uint64_t bad;
	long long t0, done;
	uint32_t nstall, p50_us, p99_us, max_us;
	char err[256];
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Check every page of the region, timing the first load from each; the stalls (first touches of
 * STALL_US or more) go to stall[] (npages entries), their count to *nstall. */
static void timed_check(const char *mem, uint64_t npages, uint64_t seed, struct fork_result *r,
			uint32_t *stall)
{
	r->t0 = now_ns();
	for (uint64_t p = 0; p < npages; p++) {
		const volatile uint64_t *w = (const volatile uint64_t *)(mem + p * PAGE);
		long long a = now_ns();
		(void)*w;
		long long us = (now_ns() - a) / 1000;
		if (us >= STALL_US)
			stall[r->nstall++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		uint64_t b = check_region(mem, npages, seed, p, p + 1, r->bad ? NULL : r->err,
					  sizeof(r->err));
		r->bad += b;
	}
	r->done = now_ns();
	qsort(stall, r->nstall, sizeof(*stall), cmp_u32);
	if (r->nstall) {
		r->p50_us = stall[(r->nstall - 1) * 50 / 100];
		r->p99_us = stall[(r->nstall - 1) * 99 / 100];
		r->max_us = stall[r->nstall - 1];
	}
}

static void fork_verify(const char *mem, uint64_t npages, uint64_t seed)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC))
		die("pipe");
	uint32_t *stall = malloc(2 * npages * sizeof(*stall));
	if (!stall)
		die("malloc");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	struct fork_result r = { 0 };
	timed_check(mem, npages, seed, &r, stall);
	if (child == 0) {
		wl_report("child-verify %s pages=%llu ms=%lld at=%lld stalls=%u p50_us=%u p99_us=%u%s%s",
			  r.bad ? "FAIL" : "ok", (unsigned long long)npages, (r.done - r.t0) / 1000000,
			  r.done, r.nstall, r.p50_us, r.p99_us, r.bad ? " first: " : "",
			  r.bad ? r.err : "");
		/* The stalls themselves follow the summary, for the parent's percentiles. */
		if (write(pfd[1], &r, sizeof(r)) != (ssize_t)sizeof(r) ||
		    write(pfd[1], stall, r.nstall * sizeof(*stall)) !=
			(ssize_t)(r.nstall * sizeof(*stall)))
			die("write to parent");
		_exit(r.bad ? 1 : 0);
	}
	close(pfd[1]);
	struct fork_result c;
	char *buf = (char *)&c;
	size_t got = 0;
	while (got < sizeof(c)) {
		ssize_t n = read(pfd[0], buf + got, sizeof(c) - got);
		if (n <= 0) {
			wl_report("verify FAIL the child sent no result (%s)", n ? strerror(errno) : "EOF");
			waitpid(child, NULL, 0);
			return;
		}
		got += n;
	}
	uint32_t *all = stall + r.nstall;
	buf = (char *)all;
	size_t want = c.nstall * sizeof(*stall);
	got = 0;
	while (got < want) {
		ssize_t n = read(pfd[0], buf + got, want - got);
		if (n <= 0) {
			wl_report("verify FAIL the child's stalls were cut short");
			waitpid(child, NULL, 0);
			return;
		}
		got += n;
	}
	close(pfd[0]);
	/* Reaped here: an orphan would stay a zombie under the guest's pid 1 (busybox sh). */
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	uint32_t n = r.nstall + c.nstall;
	qsort(stall, n, sizeof(*stall), cmp_u32);
	uint32_t p50 = n ? stall[(n - 1) * 50 / 100] : 0, p99 = n ? stall[(n - 1) * 99 / 100] : 0,
		 mx = n ? stall[n - 1] : 0;
	long long end = c.done > r.done ? c.done : r.done;
	if (r.bad || c.bad)
		wl_report("verify FAIL bad_pages=%llu child_bad_pages=%llu first: %s",
			  (unsigned long long)r.bad, (unsigned long long)c.bad, r.bad ? r.err : c.err);
	else
		wl_report("verify ok pages=%llu ms=%lld at=%lld pms=%lld cms=%lld stall_n=%u "
			  "stall_p50_us=%u stall_p99_us=%u stall_max_us=%u",
			  (unsigned long long)npages, (end - r.t0) / 1000000, end,
			  (r.done - r.t0) / 1000000, (c.done - c.t0) / 1000000, n, p50, p99, mx);
	free(stall);
}

/* -w: the working set's pages, read and checked in their fixed random order, timed. */
static void ws_verify(const char *mem, uint64_t npages, uint64_t seed, unsigned permille)
{
	uint64_t n = npages * permille / 1000, x = seed * GOLDEN + 0x5eed;
	uint8_t *seen = calloc(npages / 8 + 1, 1);
	uint32_t *stall = malloc((n + 1) * sizeof(*stall));
	struct fork_result r = { 0 };

	if (!seen || !stall)
		die("malloc");
	r.t0 = now_ns();
	for (uint64_t i = 0; i < n;) {
		x ^= x >> 12; /* xorshift64*: the same sequence for the same seed */
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t p = (x * 2685821657736338717ULL) % npages;
		if (seen[p / 8] & (1u << (p % 8)))
			continue;
		seen[p / 8] |= 1u << (p % 8);
		i++;
		const volatile uint64_t *w = (const volatile uint64_t *)(mem + p * PAGE);
		long long a = now_ns();
		(void)*w;
		long long us = (now_ns() - a) / 1000;
		if (us >= STALL_US)
			stall[r.nstall++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		r.bad += check_region(mem, npages, seed, p, p + 1, r.bad ? NULL : r.err,
				      sizeof(r.err));
	}
	r.done = now_ns();
	qsort(stall, r.nstall, sizeof(*stall), cmp_u32);
	if (r.nstall) {
		r.p50_us = stall[(r.nstall - 1) * 50 / 100];
		r.p99_us = stall[(r.nstall - 1) * 99 / 100];
		r.max_us = stall[r.nstall - 1];
	}
	wl_report("ws %s pages=%llu ms=%lld at=%lld stall_n=%u stall_p50_us=%u stall_p99_us=%u "
		  "stall_max_us=%u%s%s",
		  r.bad ? "FAIL" : "ok", (unsigned long long)n, (r.done - r.t0) / 1000000, r.done,
		  r.nstall, r.p50_us, r.p99_us, r.max_us, r.bad ? " first: " : "",
		  r.bad ? r.err : "");
	free(seen);
	free(stall);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	r->bad = check_region(r->mem, r->npages, r->seed, r->from, r->to, r->err, sizeof(r->err));
	r->done = now_ns();
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t mb = 16, seed = 1;
	int opt, quit = 0, nreaders = 1, forkv = 0;
	unsigned ws = 0;
	while ((opt = getopt(argc, argv, "m:s:xfr:w:c:o:")) != -1) {
		switch (opt) {
		case 'm':
			mb = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'x':
			quit = 1;
			break;
		case 'f':
			forkv = 1;
			break;
		case 'r':
			nreaders = atoi(optarg);
			if (nreaders < 1 || nreaders > MAX_READERS) {
				fprintf(stderr, "memhog: -r wants 1..%d readers\n", MAX_READERS);
				return 2;
			}
			break;
		case 'w':
			ws = (unsigned)atoi(optarg);
			if (ws < 1 || ws > 1000) {
				fprintf(stderr, "memhog: -w wants 1..1000 (per mille)\n");
				return 2;
			}
			break;
		case 'c':
		case 'o':
			wl_common_opt(opt, optarg);
			break;
		default:
			fprintf(stderr, "usage: memhog -m MB [-s SEED] [-x|-f|-r N] [-w PERMILLE] -c CTLDIR "
					"-o RESULT\n");
			return 2;
		}
	}
	if (forkv && (quit || nreaders > 1)) {
		fprintf(stderr, "memhog: -f goes with neither -x nor -r\n");
		return 2;
	}
	if (ws && (forkv || quit)) {
		fprintf(stderr, "memhog: -w goes with neither -f nor -x\n");
		return 2;
	}
	uint64_t npages = mb * 1024 * 1024 / PAGE;
	char *mem = map_anon(npages * PAGE);
	/* A scratch page outside the checked region for the "keeps working" phase. */
	uint64_t *scratch = map_anon(PAGE);
	fill_region(mem, npages, seed);
	memset(scratch, 0, PAGE);
	wl_report("ready %lld pages=%llu", now_ns(), (unsigned long long)npages);

	wait_ctl("restored");
	wl_report("resumed %lld", now_ns());
	if (quit) {
		char err[256] = "";
		uint64_t bad = 0;
		for (uint64_t p = 0; p < npages; p += npages / 4)
			bad += check_region(mem, npages, seed, p, p + 1, err, sizeof(err));
		wl_report("exiting %s%s", bad ? "FAIL " : "ok", err);
		_exit(bad ? 1 : 0);
	}

	wait_ctl("verify");
	if (ctl_exists("corrupt")) /* self-test of the checker: one wrong byte must be found */
		mem[3 * PAGE + 100] ^= 1;
	if (forkv) {
		fork_verify(mem, npages, seed);
		goto work;
	}
	if (ws)
		ws_verify(mem, npages, seed, ws);
	static struct reader rd[MAX_READERS];
	long long t0 = now_ns();
	for (int i = 0; i < nreaders; i++) {
		rd[i] = (struct reader){ .mem = mem, .npages = npages, .seed = seed,
					 .from = npages * i / nreaders,
					 .to = npages * (i + 1) / nreaders };
		if (i > 0) {
			int e = pthread_create(&rd[i].th, NULL, reader_main, &rd[i]);
			if (e) {
				errno = e;
				die("pthread_create");
			}
		}
	}
	reader_main(&rd[0]);
	uint64_t bad = 0;
	const char *err = "";
	long long t1 = rd[0].done;
	for (int i = 0; i < nreaders; i++) {
		if (i > 0)
			pthread_join(rd[i].th, NULL);
		if (rd[i].bad && !bad)
			err = rd[i].err;
		bad += rd[i].bad;
		if (rd[i].done > t1)
			t1 = rd[i].done;
	}
	if (bad)
		wl_report("verify FAIL bad_pages=%llu first: %s", (unsigned long long)bad, err);
	else
		wl_report("verify ok pages=%llu ms=%lld at=%lld", (unsigned long long)npages,
			  (t1 - t0) / 1000000, t1);

work:
	for (uint64_t tick = 1;; tick++) {
		sleep_ms(1000);
		for (uint64_t i = 0; i < PAGE / 8; i++)
			scratch[i] = tick * GOLDEN + i;
		uint64_t sum = 0;
		for (uint64_t i = 0; i < PAGE / 8; i++)
			sum += scratch[i] - (tick * GOLDEN + i);
		wl_report("tick %llu %lld%s", (unsigned long long)tick, now_ns(),
			  sum ? " scratch-mismatch" : "");
	}
}

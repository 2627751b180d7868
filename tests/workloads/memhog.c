/* memhog -m MB [-s SEED] [-x] [-r N] -c CTLDIR -o RESULT
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
 * is done. */
#include <pthread.h>

#include "wl.h"

#define MAX_READERS 64

struct reader {
	const char *mem;
	uint64_t npages, seed, from, to, bad;
	long long done; /* now_ns() when this reader had checked its slice */
	char err[256];
	pthread_t th;
};

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
	int opt, quit = 0, nreaders = 1;
	while ((opt = getopt(argc, argv, "m:s:xr:c:o:")) != -1) {
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
		case 'r':
			nreaders = atoi(optarg);
			if (nreaders < 1 || nreaders > MAX_READERS) {
				fprintf(stderr, "memhog: -r wants 1..%d readers\n", MAX_READERS);
				return 2;
			}
			break;
		case 'c':
		case 'o':
			wl_common_opt(opt, optarg);
			break;
		default:
			fprintf(stderr, "usage: memhog -m MB [-s SEED] [-x] [-r N] -c CTLDIR -o RESULT\n");
			return 2;
		}
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

/* memhog -m MB [-s SEED] [-x] -c CTLDIR -o RESULT
 *
 * Maps MB megabytes of private anonymous memory, fills it with the pattern of wl.h (data
 * pages, explicit zero pages, never-touched pages and a never-touched tail), reports "ready",
 * then waits. After restore (CTL/restored appears) it reports "resumed <ns>" at once, without
 * touching the big region; on CTL/verify it checks every byte and reports (if CTL/corrupt
 * exists it first flips one byte, to test the checker); then it keeps
 * working: every second it appends "tick N <ns>" and rewrites (and checks) one page.
 * With -x it instead exits right after "resumed", having read four pages, so most of
 * its pages are still pending when it goes (the daemon must notice and finish). */
#include "wl.h"

int main(int argc, char **argv)
{
	uint64_t mb = 16, seed = 1;
	int opt, quit = 0;
	while ((opt = getopt(argc, argv, "m:s:xc:o:")) != -1) {
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
		case 'c':
		case 'o':
			wl_common_opt(opt, optarg);
			break;
		default:
			fprintf(stderr, "usage: memhog -m MB [-s SEED] [-x] -c CTLDIR -o RESULT\n");
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
	long long t0 = now_ns();
	char err[256] = "";
	uint64_t bad = check_region(mem, npages, seed, 0, npages, err, sizeof(err));
	long long t1 = now_ns();
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

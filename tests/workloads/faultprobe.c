/* faultprobe -m MB [-s SEED] [-n PROBES] -c CTLDIR -o RESULT
 *
 * A VM workload (wl.h protocol) that measures fault latency as the restored task sees it:
 * after restore it touches up to PROBES random pages that are not yet present (checked in
 * /proc/self/pagemap, so each touch is a real userfaultfd fault while the daemon streams the
 * rest in the background), one every millisecond, timing each touch. It reports
 *   "probes n=N p50_us=X p99_us=Y max_us=Z"
 * then, on CTL/verify, checks every byte as memhog does ("verify ok|FAIL ..."). */
#include "../workloads/wl.h"

#define MAX_PROBES 100000

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

/* Present in RAM (pagemap bit 63), or swapped (bit 62): either way no fault. */
static int present(int pm, const void *addr)
{
	uint64_t e;
	off_t off = (off_t)((uintptr_t)addr / PAGE * 8);
	if (pread(pm, &e, sizeof(e), off) != sizeof(e))
		return -1;
	return (e >> 62) & 3 ? 1 : 0;
}

int main(int argc, char **argv)
{
	uint64_t mb = 256, seed = 1, nprobes = 2000;
	int opt;

	while ((opt = getopt(argc, argv, "m:s:n:c:o:")) != -1) {
		switch (opt) {
		case 'm':
			mb = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			nprobes = strtoull(optarg, NULL, 0);
			break;
		case 'c':
		case 'o':
			wl_common_opt(opt, optarg);
			break;
		default:
			fprintf(stderr,
				"usage: faultprobe -m MB [-s SEED] [-n PROBES] -c CTL -o RES\n");
			return 2;
		}
	}
	if (nprobes > MAX_PROBES)
		nprobes = MAX_PROBES;
	uint64_t npages = mb * 1024 * 1024 / PAGE;
	char *mem = map_anon(npages * PAGE);
	static long long lat[MAX_PROBES];
	fill_region(mem, npages, seed);
	wl_report("ready %lld pages=%llu", now_ns(), (unsigned long long)npages);

	wait_ctl("restored");
	wl_report("resumed %lld", now_ns());
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t n = 0, x = seed, misses = 0;
	volatile char sink = 0;
	/* Bounded: stop after PROBES faults or 50 * PROBES draws of present pages (drain done). */
	while (pm >= 0 && n < nprobes && misses < 50 * nprobes) {
		x = mix64(x);
		uint64_t p = x % npages;
		if (page_kind(p, npages) != KIND_DATA || present(pm, mem + p * PAGE) != 0) {
			misses++;
			continue;
		}
		long long t0 = now_ns();
		sink += mem[p * PAGE + 8];
		lat[n++] = now_ns() - t0;
		sleep_ms(1);
	}
	(void)sink;
	qsort(lat, n, sizeof(lat[0]), cmp_ll);
	wl_report("probes n=%llu p50_us=%lld p99_us=%lld max_us=%lld", (unsigned long long)n,
		  n ? lat[n / 2] / 1000 : -1, n ? lat[n * 99 / 100] / 1000 : -1,
		  n ? lat[n - 1] / 1000 : -1);

	wait_ctl("verify");
	long long t0 = now_ns();
	char err[256] = "";
	uint64_t bad = check_region(mem, npages, seed, 0, npages, err, sizeof(err));
	long long t1 = now_ns();
	if (bad)
		wl_report("verify FAIL bad_pages=%llu first: %s", (unsigned long long)bad, err);
	else
		wl_report("verify ok pages=%llu ms=%lld at=%lld", (unsigned long long)npages,
			  (t1 - t0) / 1000000, t1);
	for (;;)
		sleep_ms(1000);
}

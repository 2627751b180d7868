/* thp -m MB [-s SEED] -c CTLDIR -o RESULT
 *
 * Transparent huge pages: maps MB megabytes (rounded up to 2 MB) 2 MB-aligned, asks for huge
 * pages (MADV_HUGEPAGE), fills it with the wl.h pattern and reports "ready <ns> pages=N
 * thp_kb=K" (K: AnonHugePages of the region, from /proc/self/smaps; 0 when the kernel gave no
 * huge page). After restore (CTL/restored) "resumed <ns>"; on CTL/verify it checks every byte
 * and reports "verify ok|FAIL ...", then ticks like memhog. */
#include "wl.h"

#define HUGE (2UL << 20)

/* AnonHugePages (kB) of the mapping that contains addr. */
static long thp_kb(const void *addr)
{
	char line[256];
	unsigned long lo, hi;
	long kb = -1;
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	uint64_t mb = 64, seed = 1;
	int opt;

	while ((opt = getopt(argc, argv, "m:s:c:o:")) != -1) {
		switch (opt) {
		case 'm':
			mb = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'c':
		case 'o':
			wl_common_opt(opt, optarg);
			break;
		default:
			fprintf(stderr, "usage: thp -m MB [-s SEED] -c CTLDIR -o RESULT\n");
			return 2;
		}
	}
	uint64_t len = (mb * 1024 * 1024 + HUGE - 1) / HUGE * HUGE;
	uint64_t npages = len / PAGE;
	/* Over-map by one huge page and trim, so the region starts 2 MB-aligned. */
	char *raw = map_anon(len + HUGE);
	char *mem = (char *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	if (mem > raw)
		munmap(raw, mem - raw);
	munmap(mem + len, raw + HUGE - mem);
	if (madvise(mem, len, MADV_HUGEPAGE))
		die("madvise(MADV_HUGEPAGE)");
	fill_region(mem, npages, seed);
	wl_report("ready %lld pages=%llu thp_kb=%ld", now_ns(), (unsigned long long)npages,
		  thp_kb(mem));

	wait_ctl("restored");
	wl_report("resumed %lld", now_ns());
	wait_ctl("verify");
	char err[256] = "";
	uint64_t bad = check_region(mem, npages, seed, 0, npages, err, sizeof(err));
	if (bad)
		wl_report("verify FAIL bad_pages=%llu first: %s", (unsigned long long)bad, err);
	else
		wl_report("verify ok pages=%llu thp_kb=%ld at=%lld", (unsigned long long)npages,
			  thp_kb(mem), now_ns());
	for (uint64_t tick = 1;; tick++) {
		sleep_ms(1000);
		wl_report("tick %llu %lld", (unsigned long long)tick, now_ns());
	}
}

/* chaos [-k PAGES] [-s SEED] -c CTLDIR -o RESULT
 *
 * Exercises the userfaultfd events a lazy-pages daemon must handle, right after restore,
 * while most pages are still pending. Eight regions of PAGES pages (default 256) in one
 * mapping, each with its own seed (wl.h pattern). As soon as CTL/restored appears it reports
 * "resumed" and then, first all the operations back to back and then all the checks:
 *   fork     a child verifies its copy of R0 and R6 (EVENT_FORK), parent goes on meanwhile
 *   mremap   R1: first quarter read, then the region is moved to a new address (EVENT_REMAP);
 *            contents checked at the new address
 *   madvise  first half of R2 MADV_DONTNEED (EVENT_REMOVE): must read zeros; second half kept
 *   munmap   middle half of R3 (EVENT_UNMAP): mincore() says unmapped; outer quarters kept
 *   write    R4: the first 64 bytes of every page written without reading first (write
 *            faults on pending pages): new bytes there, the old pattern in the rest
 *   shrink   R5 mremap'ed in place to half its size: head kept, tail unmapped
 *   rest     R0, R6, R7 checked after the child exits
 * Each check appends "check NAME ok|FAIL ..." and finally "verify ok|FAIL". Then it idles. */
#include "wl.h"
#include <sys/wait.h>

#define NREG 8

static uint64_t K = 256, seed = 7;
static char *base;
static int failed;

static char *reg(int r) { return base + (uint64_t)r * K * PAGE; }
static uint64_t rseed(int r) { return seed * 100 + (uint64_t)r; }

static void result(const char *name, uint64_t bad, const char *err)
{
	if (bad) {
		failed = 1;
		wl_report("check %s FAIL bad_pages=%llu first: %s", name, (unsigned long long)bad, err);
	} else {
		wl_report("check %s ok", name);
	}
}

/* Check pages [from,to) of region r (pattern numbered within the region) at address at. */
static uint64_t chk(const char *at, int r, uint64_t from, uint64_t to, char *err)
{
	return check_region(at, K, rseed(r), from, to, err, 256);
}

static uint64_t chk_zero(const char *at, uint64_t n, char *err)
{
	uint64_t bad = 0;
	for (uint64_t p = 0; p < n; p++)
		for (uint64_t i = 0; i < PAGE; i++)
			if (at[p * PAGE + i]) {
				if (!bad++)
					snprintf(err, 256, "page %llu byte %llu not zero",
						 (unsigned long long)p, (unsigned long long)i);
				break;
			}
	return bad;
}

/* Pages of [at, at+n pages) that mincore() does not report as unmapped (ENOMEM). */
static uint64_t chk_unmapped(char *at, uint64_t n, char *err)
{
	unsigned char v;
	uint64_t bad = 0;
	for (uint64_t p = 0; p < n; p++)
		if (mincore(at + p * PAGE, PAGE, &v) == 0 || errno != ENOMEM) {
			if (!bad++)
				snprintf(err, 256, "page %llu still mapped", (unsigned long long)p);
		}
	return bad;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "k:s:c:o:")) != -1) {
		switch (opt) {
		case 'k':
			K = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'c':
		case 'o':
			wl_common_opt(opt, optarg);
			break;
		default:
			fprintf(stderr, "usage: chaos [-k PAGES] [-s SEED] -c CTLDIR -o RESULT\n");
			return 2;
		}
	}
	if (K < 64 || K % 4)
		K = 256;
	base = map_anon(NREG * K * PAGE);
	/* Where R1 will be moved to: reserved now, so the target is part of the dumped layout
	 * (a PROT_NONE mapping) and far from the other regions. */
	char *target = mmap(NULL, K * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (target == MAP_FAILED)
		die("mmap target");
	for (int r = 0; r < NREG; r++)
		fill_region(reg(r), K, rseed(r));
	wl_report("ready %lld pages=%llu", now_ns(), (unsigned long long)(NREG * K));

	wait_ctl("restored");
	wl_report("resumed %lld", now_ns());
	char err[256] = "";

	/* fork: the child checks its copy of R0 and R6. */
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		uint64_t bad = chk(reg(0), 0, 0, K, err) + chk(reg(6), 6, 0, K, err);
		if (bad)
			wl_report("check fork-child FAIL bad_pages=%llu first: %s",
				  (unsigned long long)bad, err);
		_exit(bad ? 1 : 0);
	}

	/* First all the events, back to back, while most pages are still pending ... */
	if (madvise(reg(2), K / 2 * PAGE, MADV_DONTNEED))
		die("madvise");
	if (munmap(reg(3) + K / 4 * PAGE, K / 2 * PAGE))
		die("munmap");
	if (mremap(reg(5), K * PAGE, K / 2 * PAGE, 0) != reg(5))
		die("mremap shrink");
	uint64_t bad1 = chk(reg(1), 1, 0, K / 4, err); /* a quarter of R1 faulted in first */
	char *moved = mremap(reg(1), K * PAGE, K * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	if (moved == MAP_FAILED)
		die("mremap move");
	for (uint64_t p = 0; p < K; p++) /* write faults on pending pages */
		memset(reg(4) + p * PAGE, 0xA5, 64);

	/* ... then the checks. */
	uint64_t bad = bad1 + chk(moved, 1, 0, K, err);
	if (!bad)
		bad += chk_unmapped(reg(1), K, err);
	result("mremap-move", bad, err);

	bad = chk_zero(reg(2), K / 2, err);
	bad += chk(reg(2), 2, K / 2, K, err);
	result("madvise-dontneed", bad, err);

	bad = chk_unmapped(reg(3) + K / 4 * PAGE, K / 2, err);
	bad += chk(reg(3), 3, 0, K / 4, err);
	bad += chk(reg(3), 3, 3 * K / 4, K, err);
	result("munmap", bad, err);

	bad = 0;
	for (uint64_t p = 0; p < K; p++) {
		uint64_t *w = (uint64_t *)(reg(4) + p * PAGE);
		uint64_t h = page_hash(rseed(4), p);
		int kind = page_kind(p, K);
		for (uint64_t i = 0; i < PAGE / 8; i++) {
			uint64_t want = i < 8 ? 0xA5A5A5A5A5A5A5A5ULL
					      : (kind == KIND_DATA ? (h ^ (i * GOLDEN)) : 0);
			if (w[i] != want) {
				if (!bad++)
					snprintf(err, sizeof(err),
						 "page %llu word %llu: got %016llx want %016llx",
						 (unsigned long long)p, (unsigned long long)i,
						 (unsigned long long)w[i], (unsigned long long)want);
				break;
			}
		}
	}
	result("write-pending", bad, err);

	bad = chk(reg(5), 5, 0, K / 2, err);
	bad += chk_unmapped(reg(5) + K / 2 * PAGE, K / 2, err);
	result("mremap-shrink", bad, err);

	int st = 0;
	if (waitpid(child, &st, 0) != child)
		die("waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		failed = 1;
		wl_report("check fork-child FAIL status=0x%x", st);
	} else {
		wl_report("check fork-child ok");
	}

	bad = chk(reg(0), 0, 0, K, err) + chk(reg(6), 6, 0, K, err) + chk(reg(7), 7, 0, K, err);
	result("untouched", bad, err);

	wl_report("verify %s", failed ? "FAIL" : "ok");
	for (;;)
		sleep_ms(1000);
}

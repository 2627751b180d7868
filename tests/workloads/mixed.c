/* mixed [-k PAGES] -f DATAFILE -c CTLDIR -o RESULT
 *
 * Mappings of the kinds CRIU does and does not restore lazily, side by side, PAGES pages each
 * (default 512), each with its own seed (wl.h pattern):
 *   anon     private anonymous, read-write                      (lazy)
 *   ro       private anonymous, made read-only after the fill   (lazy, into a read-only VMA)
 *   none     private anonymous, made PROT_NONE after the fill; made readable after restore
 *   thp      private anonymous with MADV_HUGEPAGE, 2 MB aligned (lazy, THP-eligible)
 *   shared   shared anonymous                                   (not lazy: shmem)
 *   locked   private anonymous, mlock()ed                       (not lazy)
 *   file     private mapping of DATAFILE (on tmpfs), written    (copy-on-write file pages)
 * After restore ("resumed"), on CTL/verify every mapping is checked ("check NAME ok|FAIL"),
 * then "verify ok|FAIL". DATAFILE must still exist, unchanged, at restore. */
#include "wl.h"

static uint64_t K = 512;
static int failed;

static void check(const char *name, const void *p, uint64_t seed)
{
	char err[256] = "";
	uint64_t bad = check_region(p, K, seed, 0, K, err, sizeof(err));
	if (bad) {
		failed = 1;
		wl_report("check %s FAIL bad_pages=%llu first: %s", name, (unsigned long long)bad, err);
	} else {
		wl_report("check %s ok", name);
	}
}

int main(int argc, char **argv)
{
	const char *datafile = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "k:f:c:o:")) != -1) {
		switch (opt) {
		case 'k':
			K = strtoull(optarg, NULL, 0);
			break;
		case 'f':
			datafile = optarg;
			break;
		case 'c':
		case 'o':
			wl_common_opt(opt, optarg);
			break;
		default:
			fprintf(stderr, "usage: mixed [-k PAGES] -f DATAFILE -c CTLDIR -o RESULT\n");
			return 2;
		}
	}
	if (!datafile) {
		fprintf(stderr, "mixed: -f DATAFILE needed\n");
		return 2;
	}
	if (K < 64)
		K = 512;
	size_t len = K * PAGE;

	char *anon = map_anon(len);
	char *ro = map_anon(len);
	char *none = map_anon(len);
	/* THP: a 2 MB aligned region inside a bigger reservation. */
	size_t huge = 2UL << 20;
	char *raw = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		die("mmap thp");
	char *thp = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
	if (madvise(thp, len, MADV_HUGEPAGE))
		wl_report("note: MADV_HUGEPAGE: %s", strerror(errno));
	char *shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		die("mmap shared");
	char *locked = map_anon(len);

	int fd = open(datafile, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open datafile");
	if (ftruncate(fd, (off_t)len))
		die("ftruncate");
	char *file = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED)
		die("mmap file");
	close(fd);

	fill_region(anon, K, 21);
	fill_region(ro, K, 22);
	fill_region(none, K, 23);
	fill_region(thp, K, 24);
	fill_region(shared, K, 25);
	fill_region(locked, K, 26);
	fill_region(file, K, 27);
	if (mprotect(ro, len, PROT_READ))
		die("mprotect ro");
	if (mprotect(none, len, PROT_NONE))
		die("mprotect none");
	if (mlock(locked, len))
		wl_report("note: mlock: %s", strerror(errno));
	wl_report("ready %lld pages=%llu", now_ns(), (unsigned long long)(7 * K));

	wait_ctl("restored");
	wl_report("resumed %lld", now_ns());
	wait_ctl("verify");
	check("anon", anon, 21);
	check("ro", ro, 22);
	if (mprotect(none, len, PROT_READ))
		die("mprotect none -> read");
	check("none", none, 23);
	check("thp", thp, 24);
	check("shared", shared, 25);
	check("locked", locked, 26);
	check("file", file, 27);
	wl_report("verify %s", failed ? "FAIL" : "ok");
	for (;;)
		sleep_ms(1000);
}

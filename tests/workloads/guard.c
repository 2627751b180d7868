/* guard -m MB [-s SEED] [-t THREADS] [-L] -c CTLDIR -o RESULT
 *
 * Guard regions (madvise MADV_GUARD_INSTALL, Linux 6.13+): CRIU 4.2 dumps them as extra VMA
 * entries and re-installs them on restore; a lazy-pages daemon must never fill a page inside
 * one (UFFDIO_COPY would silently replace the guard with data).
 *
 * Maps MB megabytes of private anonymous memory filled with the pattern of wl.h and installs
 * guard regions in it: single pages between data pages, on a zero page and on a hole page,
 * multi-page runs, and at both edges of the region. THREADS-1 more threads (default 4 threads
 * in all) each run on a stack of their own mapping with a 2-page guard at its low end (as
 * glibc 2.42 does for thread stacks), and each own a data area beside it with guards inside.
 * Before "ready" every guard is probed once (no guards at all: exits 3). After restore
 * (CTL/restored) it reports "resumed <ns>"; on CTL/verify every thread checks every non-guard
 * byte of its memory and that every guard page still raises SIGSEGV on a read and on a write,
 * and the main thread reports "verify ok pages=N guards=G ..." or "verify FAIL ...". Self-tests
 * of the checker: CTL/corrupt flips a data byte, CTL/unguard removes one guard page
 * (MADV_GUARD_REMOVE) before the check; either must give "verify FAIL". Then it ticks like
 * memhog. If the kernel does not know MADV_GUARD_INSTALL (EINVAL), it says so and exits 3.
 * With -L it installs more guards right after "resumed", on data pages near the end of the
 * main region that a lazy restore has most likely not installed yet ("late" guards: no
 * userfaultfd event tells the daemon, which must still never fill them). */
#include "wl.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

#define MAX_THREADS 16
#define MAX_RUNS 32
#define STACK_GUARD 2  /* pages at the low end of a thread stack */
#define STACK_PAGES 64 /* usable stack above it */
#define TDATA_PAGES 32 /* a thread's data area, right above its stack */

/* A run of guard pages, as page numbers in an area. */
struct run {
	uint64_t first, n;
};

/* Memory one thread checks: pattern pages except the guard runs. */
struct area {
	char *base;
	uint64_t npages, seed;
	uint64_t check_from; /* pages below are not pattern (a stack): only guards probed */
	struct run runs[MAX_RUNS];
	int nruns;
	/* verification result */
	uint64_t bad_pages, bad_guards, pages, guards;
	char err[256];
};

static __thread sigjmp_buf probe_env;
static __thread volatile int probing;
static __thread void *volatile fault_addr;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!probing) {
		signal(sig, SIG_DFL); /* a real crash: let it happen */
		return;
	}
	fault_addr = si->si_addr;
	siglongjmp(probe_env, 1);
}

/* 1 if touching addr (read, or write if wr) raised SIGSEGV at addr, 0 if it did not, -1 if a
 * SIGSEGV came from elsewhere. */
static int faults(volatile char *addr, int wr)
{
	fault_addr = NULL;
	probing = 1;
	if (sigsetjmp(probe_env, 1)) {
		probing = 0;
		return fault_addr == (void *)addr ? 1 : -1;
	}
	if (wr)
		*addr = 0x5a;
	else
		(void)*addr;
	probing = 0;
	return 0;
}

static int in_guard(const struct area *a, uint64_t p)
{
	for (int i = 0; i < a->nruns; i++)
		if (p >= a->runs[i].first && p < a->runs[i].first + a->runs[i].n)
			return 1;
	return 0;
}

static void add_run(struct area *a, uint64_t first, uint64_t n)
{
	if (a->nruns == MAX_RUNS || first + n > a->npages || !n)
		return;
	a->runs[a->nruns++] = (struct run){first, n};
}

static void guard_fail(const char *what)
{
	if (errno == EINVAL) {
		fprintf(stderr,
			"guard: madvise(MADV_GUARD_INSTALL) failed with EINVAL: this kernel "
			"has no guard regions (Linux 6.13 or later needed)\n");
		wl_report("error %s: MADV_GUARD_INSTALL not supported by this kernel (EINVAL)",
			  what);
		exit(3);
	}
	die(what);
}

static void install_guards(struct area *a)
{
	for (int i = 0; i < a->nruns; i++)
		if (madvise(a->base + a->runs[i].first * PAGE, a->runs[i].n * PAGE,
			    MADV_GUARD_INSTALL))
			guard_fail("madvise(MADV_GUARD_INSTALL)");
}

static void bad_guard(struct area *a, uint64_t p, const char *how)
{
	if (!a->bad_guards++)
		snprintf(a->err, sizeof(a->err), "guard page %llu at %p: %s", (unsigned long long)p,
			 (void *)(a->base + p * PAGE), how);
}

/* Every page of every guard run must fault on a read and on a write, at both ends. */
static void check_guards(struct area *a)
{
	for (int i = 0; i < a->nruns; i++) {
		for (uint64_t p = a->runs[i].first; p < a->runs[i].first + a->runs[i].n; p++) {
			char *pg = a->base + p * PAGE;
			int r = faults(pg, 0), w = faults(pg + PAGE - 1, 1);

			a->guards++;
			if (r == 0)
				bad_guard(a, p, "readable (no SIGSEGV)");
			else if (w == 0)
				bad_guard(a, p, "writable (no SIGSEGV)");
			else if (r < 0 || w < 0)
				bad_guard(a, p, "SIGSEGV at another address");
		}
	}
}

static void check_area(struct area *a)
{
	char err[256] = "";

	a->bad_pages = a->bad_guards = a->pages = a->guards = 0;
	a->err[0] = 0;
	for (uint64_t p = a->check_from; p < a->npages; p++) {
		if (in_guard(a, p))
			continue;
		a->pages++;
		if (check_region(a->base, a->npages, a->seed, p, p + 1, err, sizeof(err)) &&
		    !a->bad_pages++)
			snprintf(a->err, sizeof(a->err), "%s", err);
	}
	check_guards(a);
}

/* The main region: guards at both edges, single pages of each kind, multi-page runs. */
static void main_runs(struct area *a)
{
	uint64_t n = a->npages;

	add_run(a, 0, 1);	       /* lower edge */
	add_run(a, 17, 1);	       /* one data page between data pages */
	add_run(a, 21, 1);	       /* a never-touched (hole) page */
	add_run(a, 41, 1);	       /* a zero page */
	add_run(a, 64, 8);	       /* 8 pages: data, hole, zero and data again */
	add_run(a, 100, 3);	       /* 3 data pages */
	add_run(a, n / 2, 16);	       /* 16 pages in the middle */
	add_run(a, n / 2 + 17, 1);     /* one page after a single data page */
	add_run(a, n - n / 16 - 2, 4); /* across the start of the never-touched tail */
	add_run(a, n - 2, 2);	       /* upper edge */
}

/* Installed after restore: single pages and runs in the last quarter, away from the others. */
static void late_runs(struct area *m)
{
	int first = m->nruns;
	uint64_t n = m->npages, q = n - n / 4;

	add_run(m, q + 3, 1);
	add_run(m, q + 7, 5);
	add_run(m, q + n / 8, 2);
	add_run(m, n - n / 16 - 9, 3);
	for (int i = first; i < m->nruns; i++)
		if (madvise(m->base + m->runs[i].first * PAGE, m->runs[i].n * PAGE,
			    MADV_GUARD_INSTALL))
			guard_fail("madvise(MADV_GUARD_INSTALL) after restore");
}

/* ---- threads ---- */

struct thr {
	pthread_t tid;
	struct area stack; /* guard + stack + data area, one mapping */
};

static struct thr thr[MAX_THREADS];
static int nthreads = 4;
static volatile int threads_ready;

static void *thread_main(void *arg)
{
	struct thr *t = arg;

	__atomic_add_fetch(&threads_ready, 1, __ATOMIC_SEQ_CST);
	wait_ctl("verify");
	/* Each thread probes its own guards: SIGSEGV goes to the thread that faults. */
	check_area(&t->stack);
	return NULL;
}

static void setup_thread(struct thr *t, uint64_t seed)
{
	struct area *a = &t->stack;
	uint64_t data = STACK_GUARD + STACK_PAGES;
	pthread_attr_t attr;

	a->npages = data + TDATA_PAGES;
	a->base = map_anon(a->npages * PAGE);
	a->seed = seed;
	/* Pattern pages are numbered in the whole mapping; the stack part is overwritten. */
	fill_region(a->base, a->npages, seed);
	a->check_from = data;
	add_run(a, 0, STACK_GUARD); /* below the stack, as glibc 2.42 puts it */
	add_run(a, data + 3, 1);    /* in the data area */
	add_run(a, data + 10, 4);
	add_run(a, a->npages - 1, 1); /* upper edge of the mapping */
	install_guards(a);
	if (pthread_attr_init(&attr) ||
	    pthread_attr_setstack(&attr, a->base + STACK_GUARD * PAGE, STACK_PAGES * PAGE) ||
	    pthread_create(&t->tid, &attr, thread_main, t))
		die("pthread_create");
	pthread_attr_destroy(&attr);
}

/* ---- main ---- */

static void sum_up(const struct area *a, uint64_t *pages, uint64_t *guards, uint64_t *bad,
		   char *err, size_t len, const char *who)
{
	*pages += a->pages;
	*guards += a->guards;
	if ((a->bad_pages || a->bad_guards) && !*bad)
		snprintf(err, len, "%s: %s", who, a->err);
	*bad += a->bad_pages + a->bad_guards;
}

static void verify(struct area *m)
{
	uint64_t pages = 0, guards = 0, bad = 0;
	char err[400] = "", who[32];
	long long t0 = now_ns(), t1;

	if (ctl_exists("corrupt")) /* self-test: one wrong byte must be found */
		m->base[3 * PAGE + 100] ^= 1;
	if (ctl_exists("unguard") && madvise(m->base + 17 * PAGE, PAGE, MADV_GUARD_REMOVE))
		die("madvise(MADV_GUARD_REMOVE)");
	check_area(m);
	sum_up(m, &pages, &guards, &bad, err, sizeof(err), "main");
	for (int i = 1; i < nthreads; i++) {
		pthread_join(thr[i].tid, NULL);
		snprintf(who, sizeof(who), "thread %d", i);
		sum_up(&thr[i].stack, &pages, &guards, &bad, err, sizeof(err), who);
	}
	t1 = now_ns();
	if (bad)
		wl_report("verify FAIL bad=%llu guards=%llu first: %s", (unsigned long long)bad,
			  (unsigned long long)guards, err);
	else
		wl_report("verify ok pages=%llu guards=%llu threads=%d ms=%lld at=%lld",
			  (unsigned long long)pages, (unsigned long long)guards, nthreads,
			  (t1 - t0) / 1000000, t1);
}

/* Before "ready": every guard must already work, or the test would prove nothing. */
static void precheck(struct area *m)
{
	check_guards(m);
	for (int i = 1; i < nthreads; i++)
		check_guards(&thr[i].stack);
	for (int i = 0; i < nthreads; i++) {
		struct area *a = i ? &thr[i].stack : m;

		if (a->bad_guards) {
			fprintf(stderr, "guard: installed guards do not fault: %s\n", a->err);
			wl_report("error guards do not work: %s", a->err);
			exit(3);
		}
		a->guards = 0;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: guard -m MB [-s SEED] [-t THREADS] [-L] -c CTLDIR -o RESULT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static struct area m;
	struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO};
	uint64_t mb = 4, seed = 1;
	int opt, late = 0;

	while ((opt = getopt(argc, argv, "m:s:t:Lc:o:")) != -1) {
		switch (opt) {
		case 'm':
			mb = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			nthreads = atoi(optarg);
			break;
		case 'L':
			late = 1;
			break;
		case 'c':
		case 'o':
			wl_common_opt(opt, optarg);
			break;
		default:
			usage();
		}
	}
	if (mb < 1 || nthreads < 1 || nthreads > MAX_THREADS)
		usage();
	if (sigaction(SIGSEGV, &sa, NULL))
		die("sigaction");
	m.npages = mb * 1024 * 1024 / PAGE;
	m.base = map_anon(m.npages * PAGE);
	m.seed = seed;
	fill_region(m.base, m.npages, seed);
	main_runs(&m);
	install_guards(&m);
	for (int i = 1; i < nthreads; i++) {
		setup_thread(&thr[i], seed * 1000 + (uint64_t)i);
	}
	while (__atomic_load_n(&threads_ready, __ATOMIC_SEQ_CST) < nthreads - 1)
		sleep_ms(1);
	precheck(&m);
	uint64_t *scratch = map_anon(PAGE);
	memset(scratch, 0, PAGE);
	wl_report("ready %lld pages=%llu threads=%d", now_ns(), (unsigned long long)m.npages,
		  nthreads);

	wait_ctl("restored");
	wl_report("resumed %lld", now_ns());
	if (late)
		late_runs(&m);
	wait_ctl("verify");
	verify(&m);

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

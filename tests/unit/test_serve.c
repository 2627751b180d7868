/*
 * criu-lazyd's serving policy (lazy-pages/lazyd/install.c, events.c) against a scripted
 * fill engine and page source, case by case (after the kernel's uffd-unit-tests: one
 * harness, a table of cases). The engine answers each call from the case's script (bytes
 * done, result) the way the kernel's UFFDIO_COPY/ZEROPAGE do; the test then checks what
 * is still pending, what was counted, woken, and whether the task was dropped or failed.
 * The real-kernel behaviour of the same paths is covered by tests/host (real userfaultfd).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lazyd/lazyd.h"

#define P IMG_PAGE_SIZE
#define BASE 0x10000000ull
#define NPAGES 8
#define MAX_STEPS 4

struct step {
	uint64_t done_pages; /* pages the engine says it installed */
	int rc; /* then this result (0 / -EEXIST / -EAGAIN / -ENOENT / -ESRCH / -EIO) */
};

struct script {
	struct step s[MAX_STEPS];
	int n, at;
	/* what was asked */
	int copies, zeros, wakes, batches;
	uint32_t batch_n; /* extents in the last batch */
	uint64_t last_dst, last_len, wake_at;
};

static struct script sc;
static int src_rc;	  /* the page source's read() result */
static int src_reads;	  /* read() calls */
static unsigned src_wait; /* the reconnecting source's wait_ms() */

static int scripted(uint64_t dst, uint64_t len, uint64_t *done)
{
	struct step st = sc.at < sc.n ? sc.s[sc.at] : (struct step){len / P, 0};
	sc.at++;
	sc.last_dst = dst;
	sc.last_len = len;
	*done = st.done_pages * P > len ? len : st.done_pages * P;
	return st.rc;
}

static int f_copy(void *ctx, int uffd, uint64_t dst, const void *src, uint64_t len, uint64_t *done)
{
	(void)ctx, (void)uffd, (void)src;
	sc.copies++;
	return scripted(dst, len, done);
}

static int f_zero(void *ctx, int uffd, uint64_t dst, uint64_t len, uint64_t *done)
{
	(void)ctx, (void)uffd;
	sc.zeros++;
	return scripted(dst, len, done);
}

static int f_wake(void *ctx, int uffd, uint64_t dst, uint64_t len)
{
	(void)ctx, (void)uffd, (void)len;
	sc.wakes++;
	sc.wake_at = dst;
	return 0;
}

/* A batch: every extent answered from the script in turn; not attempted after one stops. */
static int f_batch(void *ctx, int uffd, struct fill_extent *e, uint32_t n, uint32_t *first)
{
	(void)ctx, (void)uffd;
	sc.batches++;
	sc.batch_n = n;
	*first = n;
	for (uint32_t i = 0; i < n; i++) {
		if (*first < n) {
			e[i].done = 0;
			e[i].result = -EAGAIN;
			continue;
		}
		e[i].result = scripted(e[i].dst, e[i].len, &e[i].done);
		if (e[i].result)
			*first = i;
	}
	return *first < n ? e[*first].result : 0;
}

static const struct filler_ops scripted_ops = {
    .name = "scripted", .copy = f_copy, .zero = f_zero, .wake = f_wake};
static const struct filler_ops scripted_batch_ops = {
    .name = "scripted-batch", .copy = f_copy, .zero = f_zero, .wake = f_wake, .batch = f_batch};

static int s_read(struct page_source *s, const struct img_task *t, uint64_t src, void *buf,
		  size_t len)
{
	(void)s, (void)t, (void)src;
	src_reads++;
	memset(buf, 0x5a, len);
	return src_rc;
}

static void s_close(struct page_source *s)
{
	(void)s;
}

static unsigned s_wait_ms(struct page_source *s)
{
	(void)s;
	return src_wait;
}

static const struct page_source_ops scripted_src = {
    .name = "scripted", .read = s_read, .close = s_close};
/* A source with a background stream (criu-imgd's): prefetch() is never called here, the
 * tests put the reads in flight into d.pf themselves. */
static int s_prefetch(struct page_source *s, const struct img_task *t, uint64_t src, size_t len,
		      uint64_t tag)
{
	(void)s, (void)t, (void)src, (void)len, (void)tag;
	return -EBUSY;
}

static const struct page_source_ops streaming_src = {
    .name = "streaming", .read = s_read, .close = s_close, .prefetch = s_prefetch};
/* A source that reconnects (criu-imgd's): -EAGAIN at once, and when to come back. */
static const struct page_source_ops reconnecting_src = {
    .name = "reconnecting", .read = s_read, .close = s_close, .wait_ms = s_wait_ms};

/* One task: pages 0..5 data (pages-file offsets 0..), pages 6..7 zero. */
static struct img_extent ext[2] = {
    {.start = BASE, .end = BASE + 6 * P, .pages_off = 0},
    {.start = BASE + 6 * P, .end = BASE + NPAGES * P, .zero = true},
};
static struct img_vma vma = {.start = BASE, .end = BASE + NPAGES * P, .lazy = true};
static struct img_task img = {.pid = 42,
			      .has_mm = true,
			      .vmas = &vma,
			      .nr_vmas = 1,
			      .extents = ext,
			      .nr_extents = 2,
			      .lazy_pages = 6,
			      .zero_pages = 2,
			      .pages_fd = -1};

static struct lazyd_opts opts = {.fault_window = 16, .drain_chunk = 16, .prefetch_window = 4};
static struct lazyd d;
static struct lz_task *t;
static int fake_uffd[2];

static void setup(void)
{
	memset(&sc, 0, sizeof(sc));
	src_rc = 0;
	src_reads = 0;
	src_wait = 0;
	memset(&d, 0, sizeof(d));
	d.o = &opts;
	d.loop = ev_loop_new();
	d.fill = (struct filler){&scripted_ops, NULL};
	d.src = (struct page_source){&scripted_src, NULL};
	d.buf_len = 16 * P;
	cr_assert_eq(posix_memalign(&d.buf, P, d.buf_len), 0);
	/* The engine never touches the uffd: a pipe stands for it in the event loop. */
	cr_assert_eq(pipe(fake_uffd), 0);
	t = lazyd_add_task(&d, 42, -1, fake_uffd[0], &img, NULL, "pid 42");
	cr_assert_not_null(t);
}

static void teardown(void)
{
	/* Whatever a case did, each task's data pages add up (status.c shows them). */
	for (struct lz_task *k = d.tasks; k; k = k->next)
		cr_expect_eq(
		    k->cnt.total,
		    k->pend.data_pages + k->cnt.fault + k->cnt.prefetch + k->cnt.dropped,
		    "%s: %lu data pages, %lu pending + %lu fault + %lu prefetch + %lu dropped",
		    k->name, (unsigned long)k->cnt.total, (unsigned long)k->pend.data_pages,
		    (unsigned long)k->cnt.fault, (unsigned long)k->cnt.prefetch,
		    (unsigned long)k->cnt.dropped);
	lazyd_free_tasks(&d);
	ev_loop_free(d.loop);
	close(fake_uffd[1]);
	free(d.buf);
}

TestSuite(serve, .init = setup, .fini = teardown);

static bool pending(uint64_t page)
{
	return pending_lookup(&t->pend, BASE + page * P) != NULL;
}

static struct pend_extent run(uint64_t first, uint64_t pages)
{
	struct pend_extent r;
	cr_assert(pending_run_at(&t->pend, BASE + first * P, pages * P, &r));
	return r;
}

/* ---- the case table of lazyd_install_run ---- */

struct install_case {
	const char *name;
	uint64_t first, pages; /* the run */
	struct step script[MAX_STEPS];
	int nsteps;
	int want_rc;
	const char *want_pending; /* per page 0..7: 'p' pending, '.' not */
	bool want_need_events, want_gone, want_killed;
	uint64_t want_eexist, want_fault_pages, want_zero_pages;
	int want_wakes;
};

static const struct install_case install_cases[] = {
    {"all copied", 0, 4, {{4, 0}}, 1, 0, "....pppp", false, false, false, 0, 4, 0, 0},
    {"zero run", 6, 2, {{2, 0}}, 1, 0, "pppppp..", false, false, false, 0, 0, 2, 0},
    /* 2 pages in, then the third is present already: never overwritten, its waiter woken */
    {"EEXIST mid-run", 0, 4, {{2, -EEXIST}}, 1, 0, "...ppppp", false, false, false, 1, 2, 0, 1},
    /* the address space changes: what is in stays in, the rest waits for the events */
    {"partial EAGAIN", 0, 4, {{1, -EAGAIN}}, 1, 0, ".ppppppp", true, false, false, 0, 1, 0, 0},
    {"EAGAIN, nothing in",
     0,
     4,
     {{0, -EAGAIN}},
     1,
     -EAGAIN,
     "pppppppp",
     true,
     false,
     false,
     0,
     0,
     0,
     0},
    /* a multi-page run with no VMA: split to its first page; no VMA there either: the events
     * are read first (no re-entry here), the page stays pending */
    {"ENOENT on a split",
     0,
     4,
     {{0, -ENOENT}, {0, -ENOENT}},
     2,
     -EAGAIN,
     "pppppppp",
     true,
     false,
     false,
     0,
     0,
     0,
     0},
    {"ESRCH: task gone",
     0,
     4,
     {{0, -ESRCH}},
     1,
     -ESRCH,
     "........",
     false,
     true,
     false,
     0,
     0,
     0,
     0},
    {"other error: killed", 0, 4, {{0, -EIO}}, 1, -EIO, "pppppppp", false, false, true, 0, 0, 0, 0},
};

static void install_case_run(const struct install_case *c)
{
	memcpy(sc.s, c->script, sizeof(sc.s));
	sc.n = c->nsteps;
	int rc = lazyd_install_run(&d, t, run(c->first, c->pages), PATH_FAULT, NULL);
	cr_expect_eq(rc, c->want_rc, "%s: rc %d, want %d", c->name, rc, c->want_rc);
	if (!c->want_gone)
		for (int i = 0; i < NPAGES; i++)
			cr_expect_eq(pending(i), c->want_pending[i] == 'p', "%s: page %d", c->name,
				     i);
	cr_expect_eq(t->need_events, c->want_need_events, "%s: need_events", c->name);
	cr_expect_eq(t->gone, c->want_gone, "%s: gone", c->name);
	cr_expect_eq(t->killed, c->want_killed, "%s: killed", c->name);
	cr_expect_eq(d.st.eexist, c->want_eexist, "%s: eexist", c->name);
	cr_expect_eq(d.st.pages_fault, c->want_fault_pages, "%s: fault pages", c->name);
	cr_expect_eq(d.st.pages_zero, c->want_zero_pages, "%s: zero pages", c->name);
	cr_expect_eq(sc.wakes, c->want_wakes, "%s: wakes", c->name);
}

/* Every case of the table on a fresh task. */
Test(serve_table, install_cases)
{
	for (size_t i = 0; i < sizeof(install_cases) / sizeof(install_cases[0]); i++) {
		setup();
		install_case_run(&install_cases[i]);
		teardown();
	}
}

/* The second ENOENT at the same page, after the events were read: dropped and woken. */
Test(serve, enoent_twice_drops_the_page)
{
	sc.s[0] = (struct step){0, -ENOENT};
	sc.s[1] = (struct step){0, -ENOENT};
	sc.n = 2;
	cr_assert_eq(lazyd_install_run(&d, t, run(3, 1), PATH_FAULT, NULL), -EAGAIN);
	cr_assert(t->need_events);
	t->need_events = false; /* the caller read the events: nothing moved the page */
	cr_assert_eq(lazyd_install_run(&d, t, run(3, 1), PATH_FAULT, NULL), 0);
	cr_assert_not(pending(3), "dropped");
	cr_assert(pending(2) && pending(4));
	cr_assert_eq(d.st.pages_dropped, 1);
	cr_assert_eq(sc.wakes, 1);
	cr_assert_eq(sc.wake_at, BASE + 3 * P);
	cr_assert_not(t->killed);
}

/* The source cannot give the data: the task is killed, never left with a zero page. */
Test(serve, source_failure_kills)
{
	src_rc = -EIO;
	cr_assert_eq(lazyd_install_run(&d, t, run(0, 2), PATH_FAULT, NULL), -EIO);
	cr_assert(t->killed);
	cr_assert_eq(sc.copies, 0, "nothing installed");
	cr_assert(pending(0) && pending(1));
}

/* The source reconnects: the fault waits (queued, the task unharmed) for the loop's timer,
 * and nothing is asked of the source before it; then the page goes in. */
Test(serve, source_reconnecting_fault_waits_for_the_loop)
{
	d.src.ops = &reconnecting_src;
	src_rc = -EAGAIN;
	src_wait = 20;
	cr_assert_eq(lazyd_install_run(&d, t, run(0, 2), PATH_FAULT, NULL), -EAGAIN);
	cr_assert_not(t->killed);
	cr_assert(d.faults_wait);
	cr_assert_neq(d.src_timer, 0, "a timer wakes the loop");
	cr_assert_eq(src_reads, 1, "asked once, not retried in a loop");
	cr_assert_eq(lazyd_install_run(&d, t, run(0, 2), PATH_FAULT, NULL), -EAGAIN);
	cr_assert_eq(src_reads, 1, "not asked again before its time");
	cr_assert(pending(0) && pending(1));
	for (int i = 0; i < 10 && d.faults_wait; i++)
		cr_assert_geq(ev_run_once(d.loop, 1000), 0);
	cr_assert_not(d.faults_wait, "the timer fired");
	src_rc = 0;
	cr_assert_eq(lazyd_install_run(&d, t, run(0, 2), PATH_FAULT, NULL), 0);
	cr_assert_eq(src_reads, 2);
	cr_assert_not(pending(0) || pending(1));
}

/* Data a background read brought is installed as given, counted as prefetch. */
Test(serve, drain_data_given)
{
	static char data[2 * P];
	cr_assert_eq(lazyd_install_run(&d, t, run(4, 2), PATH_DRAIN, data), 0);
	cr_assert_eq(d.st.pages_prefetch, 2);
	cr_assert_eq(d.st.pages_fault, 0);
	cr_assert_not(pending(4) || pending(5));
}

/* ---- events ---- */

static struct uffd_msg msg(uint8_t event)
{
	struct uffd_msg m;
	memset(&m, 0, sizeof(m));
	m.event = event;
	return m;
}

Test(serve, fault_is_queued_page_aligned)
{
	struct uffd_msg m = msg(UFFD_EVENT_PAGEFAULT);
	m.arg.pagefault.address = BASE + 2 * P + 123;
	lazyd_handle_msg(&d, t, &m);
	cr_assert_eq(t->nfaults, 1);
	cr_assert_eq(t->faults[0].addr, BASE + 2 * P);
}

Test(serve, remap_moves_pending)
{
	struct uffd_msg m = msg(UFFD_EVENT_REMAP);
	m.arg.remap.from = BASE;
	m.arg.remap.to = BASE + 0x100000;
	m.arg.remap.len = 2 * P;
	lazyd_handle_msg(&d, t, &m);
	cr_assert_not(pending(0) || pending(1));
	const struct pend_extent *e = pending_lookup(&t->pend, BASE + 0x100000 + P);
	cr_assert_not_null(e, "page 1 moved with its data");
	cr_assert_eq(d.st.remaps, 1);
}

/* mremap onto pending pages: those were unmapped, so they count as dropped for the task. */
Test(serve, remap_onto_pending_counts_dropped)
{
	struct uffd_msg m = msg(UFFD_EVENT_REMAP);
	m.arg.remap.from = BASE;
	m.arg.remap.to = BASE + 2 * P;
	m.arg.remap.len = 2 * P;
	lazyd_handle_msg(&d, t, &m);
	cr_assert_eq(t->pend.data_pages, 4);
	cr_assert_eq(t->cnt.dropped, 2);
	cr_assert_eq(t->cnt.total, 6);
}

/* Each path counts in the task: fault, background, zero, present already. */
Test(serve, task_counts_by_path)
{
	cr_assert_eq(lazyd_install_run(&d, t, run(0, 2), PATH_FAULT, NULL), 0);
	cr_assert_eq(lazyd_install_run(&d, t, run(2, 1), PATH_DRAIN, NULL), 0);
	cr_assert_eq(lazyd_install_run(&d, t, run(6, 2), PATH_FAULT, NULL), 0);
	cr_assert_eq(sc.at, 3, "one engine call a run");
	sc.s[3] = (struct step){0, -EEXIST};
	sc.n = 4;
	cr_assert_eq(lazyd_install_run(&d, t, run(3, 1), PATH_DRAIN, NULL), 0);
	cr_assert_eq(t->cnt.fault, 2);
	cr_assert_eq(t->cnt.prefetch, 1);
	cr_assert_eq(t->cnt.zero, 2);
	cr_assert_eq(t->cnt.dropped, 1, "present already: left the set without our install");
	cr_assert_eq(t->cnt.bytes, 3 * P);
	cr_assert_eq(t->pend.data_pages, 2);
}

Test(serve, remove_and_unmap_drop)
{
	struct uffd_msg m = msg(UFFD_EVENT_REMOVE);
	m.arg.remove.start = BASE + P;
	m.arg.remove.end = BASE + 3 * P;
	lazyd_handle_msg(&d, t, &m);
	m = msg(UFFD_EVENT_UNMAP);
	m.arg.remove.start = BASE + 4 * P;
	m.arg.remove.end = BASE + 5 * P;
	lazyd_handle_msg(&d, t, &m);
	cr_assert(pending(0) && !pending(1) && !pending(2) && pending(3) && !pending(4));
	cr_assert_eq(d.st.pages_dropped, 3);
	cr_assert_eq(d.st.removes, 1);
	cr_assert_eq(d.st.unmaps, 1);
}

Test(serve, fork_copies_pending)
{
	int child_uffd[2];
	cr_assert_eq(pipe(child_uffd), 0);
	struct uffd_msg m = msg(UFFD_EVENT_FORK);
	m.arg.fork.ufd = (uint32_t)child_uffd[0];
	lazyd_handle_msg(&d, t, &m);
	struct lz_task *c = d.tasks;
	cr_assert_neq(c, t, "the child is tracked");
	cr_assert_eq(c->pend.pages, t->pend.pages);
	cr_assert_eq(c->pend.data_pages, t->pend.data_pages);
	cr_assert_eq(c->img, t->img, "the child's data is the parent's image");
	cr_assert_eq(d.st.forks, 1);
	close(child_uffd[1]);
}

/* ---- batches (batch.c): a drain chunk of several runs in one call ---- */

static char chunk[NPAGES * P];

/* Runs {0}, {2,3}, {5}: pages 1 and 4 were installed by faults meanwhile. */
static uint32_t three_runs(struct pend_extent *r, const void **data)
{
	pending_remove(&t->pend, BASE + 1 * P, BASE + 2 * P);
	pending_remove(&t->pend, BASE + 4 * P, BASE + 5 * P);
	t->cnt.fault += 2;
	r[0] = run(0, 1), r[1] = run(2, 2), r[2] = run(5, 1);
	data[0] = chunk, data[1] = chunk + 2 * P, data[2] = chunk + 5 * P;
	return 3;
}

Test(serve, batch_one_call_for_a_chunk)
{
	struct pend_extent r[3];
	const void *data[3];
	d.fill.ops = &scripted_batch_ops;
	lazyd_install_batch(&d, t, r, data, three_runs(r, data), PATH_DRAIN);
	cr_assert_eq(sc.batches, 1);
	cr_assert_eq(sc.batch_n, 3);
	cr_assert_eq(sc.copies, 0);
	for (int i = 0; i < 6; i++)
		cr_assert_not(pending(i), "page %d", i);
	cr_assert_eq(d.st.pages_prefetch, 4);
}

/* Without a batch op the same runs go one by one. */
Test(serve, batch_without_engine_op)
{
	struct pend_extent r[3];
	const void *data[3];
	lazyd_install_batch(&d, t, r, data, three_runs(r, data), PATH_DRAIN);
	cr_assert_eq(sc.copies, 3);
	cr_assert_eq(d.st.pages_prefetch, 4);
}

/* The second run meets a present page after one: the first two pages stay installed, the
 * present page is never overwritten, the rest goes one run at a time. */
Test(serve, batch_eexist_rest_one_by_one)
{
	struct pend_extent r[3];
	const void *data[3];
	d.fill.ops = &scripted_batch_ops;
	sc.s[0] = (struct step){1, 0};
	sc.s[1] = (struct step){1, -EEXIST};
	sc.n = 2;
	lazyd_install_batch(&d, t, r, data, three_runs(r, data), PATH_DRAIN);
	cr_assert_eq(sc.batches, 1);
	/* page 3 is present: left alone and woken; run 2 was not attempted: one copy */
	cr_assert_eq(sc.copies, 1);
	cr_assert_eq(d.st.eexist, 1);
	cr_assert_eq(sc.wakes, 1);
	cr_assert_eq(sc.wake_at, BASE + 3 * P);
	cr_assert_eq(d.st.pages_prefetch, 1 + 1 + 1, "pages 0, 2 and 5");
	for (int i = 0; i < 6; i++)
		cr_assert_not(pending(i), "page %d", i);
	cr_assert(pending(6) && pending(7), "zero pages untouched");
}

/* The address space changes under the batch: nothing more is tried before the events. */
Test(serve, batch_eagain_waits_for_events)
{
	struct pend_extent r[3];
	const void *data[3];
	d.fill.ops = &scripted_batch_ops;
	sc.s[0] = (struct step){0, -EAGAIN};
	sc.s[1] = (struct step){0, -EAGAIN}; /* the one-run retry of the first */
	sc.n = 2;
	lazyd_install_batch(&d, t, r, data, three_runs(r, data), PATH_DRAIN);
	cr_assert(t->need_events);
	cr_assert_eq(sc.copies, 1, "only the first run is retried, once");
	cr_assert(pending(0) && pending(2) && pending(3) && pending(5));
	cr_assert_not(t->killed);
}

/* The engine failed the data at the first extent: the task is killed, nothing left
 * half-done is reported as installed. */
Test(serve, batch_error_kills)
{
	struct pend_extent r[3];
	const void *data[3];
	d.fill.ops = &scripted_batch_ops;
	sc.s[0] = (struct step){0, -EIO};
	sc.s[1] = (struct step){0, -EIO};
	sc.n = 2;
	lazyd_install_batch(&d, t, r, data, three_runs(r, data), PATH_DRAIN);
	cr_assert(t->killed);
	cr_assert(pending(0) && pending(2) && pending(3) && pending(5));
}

/* A fork child not yet identified is never batched: its first install tells who it is. */
Test(serve, batch_not_for_unidentified_child)
{
	struct pend_extent r[3];
	const void *data[3];
	d.fill.ops = &scripted_batch_ops;
	t->real = -1;
	t->parent_real = 1;
	lazyd_install_batch(&d, t, r, data, three_runs(r, data), PATH_DRAIN);
	cr_assert_eq(sc.batches, 0);
	cr_assert_eq(sc.copies, 3);
}

/* ---- faults and the stream: no page is fetched twice ---- */

static void fault_at(uint64_t page)
{
	struct uffd_msg m = msg(UFFD_EVENT_PAGEFAULT);
	m.arg.pagefault.address = BASE + page * P;
	lazyd_handle_msg(&d, t, &m);
}

/* A read in flight for pages [first, first+n) as they are pending now. */
static void in_flight(unsigned slot, uint64_t first, uint64_t n)
{
	struct pend_extent r = run(first, n);
	d.pf[slot] = (struct pf_slot){
	    .t = t, .start = r.start, .end = r.end, .src = r.src, .len = n * P, .nrun = 1, .used = true};
	d.pf[slot].run[0] = (struct pf_run){r.start, r.src, n * P};
	d.pf_used++;
}

/* The faulting page is on its way in the stream: the fault waits, nothing is fetched. */
Test(serve, fault_waits_for_the_stream)
{
	d.src.ops = &streaming_src;
	in_flight(0, 0, 4);
	fault_at(2);
	lazyd_serve_faults(&d);
	cr_assert_eq(src_reads, 0, "not fetched again");
	cr_assert_eq(sc.copies, 0);
	cr_assert_eq(t->nfaults, 1, "still queued");
	cr_assert_eq(t->nwaiting, 1);
	/* The stream's data arrived (the read done, the pages in): the fault is settled. */
	static char data[4 * P];
	cr_assert_eq(lazyd_install_run(&d, t, run(0, 4), PATH_DRAIN, data), 0);
	d.pf[0].used = false;
	d.pf_used = 0;
	lazyd_serve_faults(&d);
	cr_assert_eq(t->nfaults, 0);
	cr_assert_eq(t->nwaiting, 0);
	cr_assert_eq(src_reads, 0);
	cr_assert_eq(d.st.faults, 1);
}

/* The fault's window stops where the stream's reads begin. */
Test(serve, fault_window_cut_before_the_stream)
{
	d.src.ops = &streaming_src;
	in_flight(0, 3, 3);
	fault_at(0);
	lazyd_serve_faults(&d);
	cr_assert_eq(src_reads, 1);
	cr_assert_eq(sc.copies, 1);
	cr_assert_eq(sc.last_len, 3 * P, "pages 0-2 only, 3-5 are in flight");
	cr_assert(!pending(0) && !pending(2) && pending(3) && pending(5));
	cr_assert_eq(t->nfaults, 0);
}

/* A read in flight for data that has moved away since: the fault does not wait for it. */
Test(serve, fault_does_not_wait_for_moved_data)
{
	d.src.ops = &streaming_src;
	in_flight(0, 0, 2);
	d.pf[0].src += 7 * P; /* that read is for other data than what is pending here now */
	d.pf[0].run[0].src += 7 * P;
	fault_at(0);
	lazyd_serve_faults(&d);
	cr_assert_eq(src_reads, 1);
	cr_assert_eq(t->nfaults, 0);
	cr_assert_not(pending(0));
}

/* ---- the stream: one read covers the runs whose data follows in the pages file ---- */

/* pid 43: data 0-2 (pages-file 0-2), zero 3 (never dumped), data 4-6 (pages-file 3-5),
 * zero 7. */
static struct img_extent gap_ext[4] = {
    {.start = BASE, .end = BASE + 3 * P, .pages_off = 0},
    {.start = BASE + 3 * P, .end = BASE + 4 * P, .zero = true},
    {.start = BASE + 4 * P, .end = BASE + 7 * P, .pages_off = 3 * P},
    {.start = BASE + 7 * P, .end = BASE + 8 * P, .zero = true},
};
static struct img_task gap_img = {.pid = 43,
				  .has_mm = true,
				  .vmas = &vma,
				  .nr_vmas = 1,
				  .extents = gap_ext,
				  .nr_extents = 4,
				  .lazy_pages = 6,
				  .zero_pages = 2,
				  .pages_fd = -1};

static struct {
	uint64_t src, len, tag;
	int calls;
	bool ready; /* collect() returns the read's data */
} gap_pf;
static char gap_data[6 * P];

static int g_prefetch(struct page_source *s, const struct img_task *it, uint64_t src, size_t len,
		      uint64_t tag)
{
	(void)s;
	if (it != &gap_img)
		return -EBUSY;
	gap_pf.calls++;
	gap_pf.src = src;
	gap_pf.len = len;
	gap_pf.tag = tag;
	return 0;
}

static int g_poll_fd(struct page_source *s)
{
	(void)s;
	return -1;
}

static int g_collect(struct page_source *s, struct src_chunk *c)
{
	(void)s;
	if (!gap_pf.ready)
		return 0;
	gap_pf.ready = false;
	*c = (struct src_chunk){gap_pf.tag, &gap_img, gap_pf.src, gap_data,
				(uint32_t)(gap_pf.len / P), true};
	return 1;
}

static const struct page_source_ops gap_src = {.name = "gap",
					       .read = s_read,
					       .close = s_close,
					       .prefetch = g_prefetch,
					       .poll_fd = g_poll_fd,
					       .collect = g_collect};

Test(serve, one_read_covers_runs_and_fills_the_zero_gaps)
{
	int fd[2];

	memset(&gap_pf, 0, sizeof(gap_pf));
	cr_assert_eq(pipe(fd), 0);
	struct lz_task *g = lazyd_add_task(&d, 43, -1, fd[0], &gap_img, NULL, "pid 43");
	cr_assert_not_null(g);
	d.src.ops = &gap_src;
	lazyd_drain_step(&d);
	cr_assert_eq(gap_pf.calls, 1, "one read for both runs");
	cr_assert_eq(gap_pf.src, 0);
	cr_assert_eq(gap_pf.len, 6 * P, "pages-file 0-5: the runs at 0-2 and 4-6");
	/* While it is in flight: a fault in its second run waits for it, one on the zero
	 * page between the runs is served at once. */
	struct uffd_msg m = msg(UFFD_EVENT_PAGEFAULT);
	m.arg.pagefault.address = BASE + 5 * P;
	lazyd_handle_msg(&d, g, &m);
	m.arg.pagefault.address = BASE + 3 * P;
	lazyd_handle_msg(&d, g, &m);
	lazyd_serve_faults(&d);
	cr_assert_eq(src_reads, 0, "nothing fetched on the fault path");
	cr_assert_eq(sc.zeros, 1);
	cr_assert_eq(g->nwaiting, 1);
	lazyd_drain_step(&d);
	cr_assert_eq(gap_pf.calls, 1, "nothing asked twice");
	/* The data arrives: both runs and the zero page after the last one go in. */
	gap_pf.ready = true;
	lazyd_drain_step(&d);
	cr_assert_eq(sc.copies, 2);
	cr_assert_eq(sc.zeros, 2);
	cr_assert_eq(g->cnt.prefetch, 6);
	cr_assert_eq(g->pend.pages, 0, "nothing left pending");
	close(fd[1]);
}

/* Faults each where the last one's window ended double the window; another fault starts
 * again from --fault-window. */
Test(serve, sequential_faults_grow_the_window)
{
	opts.fault_window = 1;
	fault_at(0);
	lazyd_serve_faults(&d);
	cr_assert_eq(sc.last_len, 1 * P, "first fault: --fault-window");
	fault_at(1);
	lazyd_serve_faults(&d);
	cr_assert_eq(sc.last_len, 2 * P, "in order: doubled");
	fault_at(3);
	lazyd_serve_faults(&d);
	cr_assert_eq(sc.last_len, 3 * P, "doubled again (4), clipped to the data run's end");
	/* Out of order: back to one page (the zero run after the data: one page). */
	fault_at(7);
	lazyd_serve_faults(&d);
	cr_assert_eq(sc.last_len, 1 * P);
	cr_assert_eq(t->ra_pages, 1);
	opts.fault_window = 16;
}

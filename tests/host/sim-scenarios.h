/*
 * restore-sim: the scenarios. A layout builds the model (tasks, VMAs, page
 * kinds); a run function is what every restored task does once it runs.
 */
#ifndef SIM_SCENARIOS_H
#define SIM_SCENARIOS_H

#include <pthread.h>
#include <stdatomic.h>

#include "sim-images.h"
#include "sim-task.h"

#define RW (PROT_READ | PROT_WRITE)

struct sim_fork_side {
	bool child;
	int wfd, rfd; /* barrier pipes to the other side */
	uint64_t salt;
};
#define PG(n) ((uint64_t)(n)*SIM_PAGE)

/* ---- 1: read everything in order ---- */

static void layout_seq(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 64, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 1, 16, PROT_READ, &MIX_DEFAULT, 0);
	add_vma(s, t, 2, 1024, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 3, 8, RW, NULL, PK_HOLE);	   /* a lazy VMA without any pagemap entry */
	add_vma(s, t, 4, 8, RW, NULL, PK_PRESENT); /* nothing lazy in it */
	add_vma(s, t, 5, 32, RW, NULL, PK_LAZY);
}

static int run_seq(struct sim *s, struct sim_task *t)
{
	return check_all(s, t) ? 1 : 0;
}

/* ---- 2: random-order touches from several threads ---- */

#define SIM_THREADS 4

struct thr_arg {
	struct sim *s;
	struct sim_task *t;
	int n;
	atomic_ullong *bad;
};

/* A few threads of a task, all running one function over the task's memory. */
struct thr_group {
	pthread_t th[SIM_THREADS];
	struct thr_arg arg[SIM_THREADS];
	int started;
};

/* Start n (<= SIM_THREADS) threads running fn; false if not all of them started. */
static bool thr_start(struct thr_group *g, int n, void *(*fn)(void *), struct sim *s,
		      struct sim_task *t, atomic_ullong *bad)
{
	g->started = 0;
	for (int i = 0; i < n; i++) {
		g->arg[i] = (struct thr_arg){.s = s, .t = t, .n = i, .bad = bad};
		if (pthread_create(&g->th[i], NULL, fn, &g->arg[i]))
			return false;
		g->started++;
	}
	return true;
}

static void thr_join(struct thr_group *g)
{
	for (int i = 0; i < g->started; i++)
		pthread_join(g->th[i], NULL);
}

static void *thr_touch(void *p)
{
	struct thr_arg *a = p;
	const struct sim_vma *v = &a->t->vma[0];
	/* Threads 0 and 2, 1 and 3 go in the same order: they fault on the same pages at once. */
	struct sim_rng r = {.s = a->s->seed + 1000 + (uint64_t)(a->n % 2)};
	uint64_t *order = malloc(v->npages * sizeof(*order));
	int reports = 0;

	if (!order) {
		atomic_fetch_add(a->bad, 1);
		return NULL;
	}
	for (uint64_t i = 0; i < v->npages; i++)
		order[i] = i;
	shuffle(order, v->npages, &r);
	for (uint64_t i = 0; i < v->npages; i++) {
		uint64_t addr = v->start + PG(order[i]);
		if (check_page(a->s, a->t, addr, addr, NULL, &reports))
			atomic_fetch_add(a->bad, 1);
	}
	free(order);
	return NULL;
}

static void layout_threads(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 2048, RW, &MIX_DEFAULT, 0);
}

/* SC_EARLY: every page is served by the fault path, several threads faulting at once. */
static int run_threads(struct sim *s, struct sim_task *t)
{
	struct thr_group g;
	atomic_ullong bad = 0;
	bool all = thr_start(&g, SIM_THREADS, thr_touch, s, t, &bad);

	thr_join(&g);
	if (task_phase_done(t))
		return 1;
	if (!all) {
		sim_log("pthread_create failed");
		return 1;
	}
	if (bad)
		sim_log("pid %d: %llu bad page reads from %d threads", (int)getpid(),
			(unsigned long long)bad, SIM_THREADS);
	return (bad || check_all(s, t)) ? 1 : 0;
}

/* ---- 3: writes into pending pages ---- */

static void layout_writes(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 512, RW, &MIX_DEFAULT, 0);
}

static uint64_t marker(const struct sim_task *t, uint64_t addr, uint64_t salt)
{
	return (addr ^ salt ^ ((uint64_t)(uint32_t)t->pid << 32)) | 1;
}

static uint64_t check_patched(struct sim *s, struct sim_task *t, const struct page_patch *patch)
{
	const struct sim_vma *v = &t->vma[0];
	int reports = 0;
	uint64_t bad = 0;

	for (uint64_t p = 0; p < v->npages; p++)
		bad += check_page(s, t, v->start + PG(p), v->start + PG(p), &patch[p], &reports);
	if (bad)
		sim_log("pid %d: %llu pages lost or mangled a write", (int)getpid(),
			(unsigned long long)bad);
	return bad;
}

/* SC_EARLY, SC_DRAIN: write faults into pending pages; the drain must not undo them. */
static int run_writes(struct sim *s, struct sim_task *t)
{
	const struct sim_vma *v = &t->vma[0];
	struct page_patch *patch = calloc(v->npages, sizeof(*patch));
	struct sim_rng r = {.s = s->seed + 77};
	uint64_t bad = 0;

	if (!patch)
		return 1;
	/* The first touch of 3 pages in 4 is a write (a write fault into a missing page). */
	for (uint64_t p = 0; p < v->npages; p++) {
		patch[p].off = ~0u;
		if (rng_below(&r, 4) == 0)
			continue;
		uint64_t addr = v->start + PG(p);
		patch[p].off = (unsigned)(rng_below(&r, SIM_WORDS) * 8);
		patch[p].val = marker(t, addr, s->seed);
		*(volatile uint64_t *)(addr + patch[p].off) = patch[p].val;
	}
	if (task_phase_done(t))
		return 1;
	bad += check_patched(s, t, patch);
	if (task_wait_daemon_exit(t, s->timeout_s))
		bad++;
	else
		bad += check_patched(s, t, patch);
	free(patch);
	return bad ? 1 : 0;
}

/* ---- 4: fork while pages are pending ---- */

static void layout_fork(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 1024, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 1, 64, RW, &MIX_DEFAULT, 0);
}

static int barrier(int wfd, int rfd, int timeout_s)
{
	char c = 'b';

	if (write_all(wfd, &c, 1))
		return -1;
	return read_byte(rfd, now_ms() + (uint64_t)timeout_s * 1000) == 'b' ? 0 : -1;
}

/* Check one half of every VMA (the first or the second), the other left pending. */
static uint64_t check_half(struct sim *s, struct sim_task *t, bool second)
{
	uint64_t bad = 0;

	for (int i = 0; i < t->nvmas; i++) {
		const struct sim_vma *v = &t->vma[i];
		uint64_t half = v->npages / 2, from = second ? half : 0;
		bad += check_range(s, t, v->start + PG(from), v->start + PG(from),
				   second ? v->npages - half : half);
	}
	return bad;
}

/* Stamp every page, let the other side stamp its own, check that each sees only its own. */
static uint64_t stamp_and_check(struct sim *s, struct sim_task *t, struct sim_fork_side *fs)
{
	uint64_t bad = 0;
	int reports = 0;

	for (int i = 0; i < t->nvmas; i++)
		for (uint64_t j = 0; j < t->vma[i].npages; j++)
			*(volatile uint64_t *)(t->vma[i].start + PG(j)) =
			    marker(t, t->vma[i].start + PG(j), fs->salt);
	if (barrier(fs->wfd, fs->rfd, s->timeout_s))
		return bad + 1;
	for (int i = 0; i < t->nvmas; i++)
		for (uint64_t j = 0; j < t->vma[i].npages; j++) {
			uint64_t a = t->vma[i].start + PG(j);
			struct page_patch pt = {.off = 0, .val = marker(t, a, fs->salt)};
			bad += check_page(s, t, a, a, &pt, &reports);
		}
	return bad;
}

/*
 * One side of the fork: check its half of memory by faults (the parent the first half, the
 * child the second); the parent then lets the daemon drain and finish and tells the child;
 * both check all their memory (any page the daemon did not serve reads as zeros now), then
 * diverge.
 */
static uint64_t fork_side(struct sim *s, struct sim_task *t, struct sim_fork_side *fs)
{
	uint64_t bad = check_half(s, t, fs->child);

	if (barrier(fs->wfd, fs->rfd, s->timeout_s))
		return bad + 1;
	if (!fs->child && (task_phase_done(t) || task_wait_daemon_exit(t, s->timeout_s)))
		bad++;
	if (barrier(fs->wfd, fs->rfd, s->timeout_s))
		return bad + 1;
	bad += check_all(s, t);
	return bad + stamp_and_check(s, t, fs);
}

/* SC_EARLY, SC_DRAIN */
static int run_fork(struct sim *s, struct sim_task *t)
{
	int p2c[2], c2p[2];
	int reports = 0;
	uint64_t bad = 0;

	/* Some pages installed before the fork, the rest pending. */
	for (uint64_t j = 0; j < t->vma[0].npages; j += 4)
		bad += check_page(s, t, t->vma[0].start + PG(j), t->vma[0].start + PG(j), NULL,
				  &reports);
	if (pipe2(p2c, O_CLOEXEC) || pipe2(c2p, O_CLOEXEC))
		return 1;
	pid_t child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		struct sim_fork_side fs = {
		    .child = true, .wfd = c2p[1], .rfd = p2c[0], .salt = 0xc41d};
		task_arm_timeout(s->timeout_s);
		uint64_t cb = fork_side(s, t, &fs);
		if (cb)
			sim_log("forked child %d: %llu bad pages", (int)getpid(),
				(unsigned long long)cb);
		_exit(cb ? 1 : 0);
	}
	struct sim_fork_side fs = {.child = false, .wfd = p2c[1], .rfd = c2p[0], .salt = 0x9a4e47};
	bad += fork_side(s, t, &fs);
	int st = 0;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st)) {
		sim_log("forked child %d failed (status 0x%x)", (int)child, st);
		bad++;
	}
	return bad ? 1 : 0;
}

/* ---- 5: mremap of pending pages: move, grow in place, grow and move ---- */

static void layout_mremap(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 256, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 2, 128, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 4, 64, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 6, 128, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 8, 64, RW, &MIX_DEFAULT, 0);
}

static int remap_fixed(uint64_t from, uint64_t len, uint64_t new_len, uint64_t to)
{
	void *p = mremap((void *)from, len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)to);

	if (p != (void *)to) {
		sim_log("mremap 0x%llx -> 0x%llx: %s", (unsigned long long)from,
			(unsigned long long)to, strerror(errno));
		return -1;
	}
	return 0;
}

/* Where each piece of the mremap scenario is after the changes. */
#define MR_MOVED(a) ((a) + SIM_VMA_SPAN / 2)
#define MR_GROWN(a) ((a) + SIM_VMA_SPAN)

/* The memory of the mremap scenario after the changes (some by faults, some drained). */
static uint64_t mremap_check(struct sim *s, struct sim_task *t, bool all)
{
	uint64_t a = t->vma[0].start, b = t->vma[1].start, c = t->vma[2].start, bad = 0;

	bad += check_range(s, t, MR_MOVED(a), a + PG(64), all ? 128 : 64);
	bad += check_range(s, t, a, a, 64);
	if (all)
		bad += check_range(s, t, a + PG(192), a + PG(192), 64);
	bad += check_range(s, t, b, b, all ? 128 : 40);
	bad += check_range(s, t, b + PG(128), 0, 72); /* page 200 holds 42 */
	bad += check_range(s, t, b + PG(201), 0, 55);
	if (*(volatile uint64_t *)(b + PG(200)) != 42)
		bad++;
	bad += check_range(s, t, MR_GROWN(c), c, all ? 64 : 20);
	bad += check_range(s, t, MR_GROWN(c) + PG(64), 0, 64);
	/* MREMAP_DONTUNMAP: the data moved, the old range stays mapped and empty. */
	uint64_t e = t->vma[4].start;
	bad += check_range(s, t, MR_MOVED(e), e, all ? 64 : 16);
	bad += check_range(s, t, e, 0, 64);
	/* Shrunk to 32 pages and grown back: what was cut off is gone for good. */
	bad += check_range(s, t, t->vma[3].start, t->vma[3].start, all ? 32 : 8);
	bad += check_range(s, t, t->vma[3].start + PG(32), 0, 96);
	return bad;
}

/* SC_EARLY, SC_DRAIN */
static int run_mremap(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start, b = t->vma[1].start, c = t->vma[2].start, bad = 0;

	/* Move the middle half of a VMA: 32 of its pages installed, the rest pending. */
	bad += check_range(s, t, a + PG(64), a + PG(64), 16);
	bad += check_range(s, t, a + PG(176), a + PG(176), 16);
	if (remap_fixed(a + PG(64), PG(128), PG(128), MR_MOVED(a)))
		return 1;
	if (!range_unmapped(a + PG(64), PG(128))) {
		sim_log("pid %d: old range still mapped after mremap", (int)getpid());
		bad++;
	}
	/* Grow in place: the tail is still registered, and must read as zeros. */
	bad += check_range(s, t, b, b, 16);
	if (mremap((void *)b, PG(128), PG(256), 0) != (void *)b) {
		sim_log("mremap grow in place 0x%llx: %s", (unsigned long long)b, strerror(errno));
		return 1;
	}
	*(volatile uint64_t *)(b + PG(200)) = 42;
	/* Grow and move. */
	bad += check_range(s, t, c + PG(8), c + PG(8), 4);
	if (remap_fixed(c, PG(64), PG(128), MR_GROWN(c)))
		return 1;
	/* Shrink (the cut-off pending pages are unmapped), then grow back in place. */
	uint64_t d = t->vma[3].start;
	bad += check_range(s, t, d + PG(30), d + PG(30), 4);
	if (mremap((void *)d, PG(128), PG(32), 0) != (void *)d ||
	    mremap((void *)d, PG(32), PG(128), 0) != (void *)d) {
		sim_log("mremap shrink and grow 0x%llx: %s", (unsigned long long)d,
			strerror(errno));
		return 1;
	}
	uint64_t e = t->vma[4].start;
	bad += check_range(s, t, e + PG(60), e + PG(60), 4);
	if (mremap((void *)e, PG(64), PG(64), MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
		   (void *)MR_MOVED(e)) != (void *)MR_MOVED(e)) {
		sim_log("mremap DONTUNMAP 0x%llx: %s", (unsigned long long)e, strerror(errno));
		return 1;
	}
	bad += mremap_check(s, t, false);
	if (task_phase_done(t) || task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	bad += mremap_check(s, t, true);
	return bad ? 1 : 0;
}

/* ---- 6: MADV_DONTNEED on a partly pending range ---- */

static void layout_madvise(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 256, RW, &MIX_DEFAULT, 0);
}

static uint64_t madvise_check(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start, bad = 0;

	bad += check_range(s, t, a, a, 32);
	bad += check_range(s, t, a + PG(32), 0, 8);
	bad += check_range(s, t, a + PG(41), 0, 119); /* page 40 holds 7 */
	bad += check_range(s, t, a + PG(160), a + PG(160), 96);
	if (*(volatile uint64_t *)(a + PG(40)) != 7)
		bad++;
	return bad;
}

/* SC_EARLY, SC_DRAIN: the drain must not bring back discarded pages. */
static int run_madvise(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start, bad = 0;
	int reports = 0;

	bad += check_range(s, t, a, a, 64);
	for (uint64_t p = 64; p < 128; p += 2)
		bad += check_page(s, t, a + PG(p), a + PG(p), NULL, &reports);
	if (madvise((void *)(a + PG(32)), PG(128), MADV_DONTNEED)) {
		sim_log("madvise: %s", strerror(errno));
		return 1;
	}
	*(volatile uint64_t *)(a + PG(40)) = 7;
	bad += check_range(s, t, a + PG(100), 0, 20);
	if (task_phase_done(t) || task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	bad += madvise_check(s, t);
	return bad ? 1 : 0;
}

/* ---- 7: munmap of a pending range while the daemon drains ---- */

static void layout_munmap(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 4096, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 1, 256, RW, &MIX_DEFAULT, 0);
}

static uint64_t munmap_check(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start, bad = 0;

	bad += check_range(s, t, a, a, 512);
	bad += check_range(s, t, a + PG(512), 0, 256); /* the grown tail */
	bad += check_range(s, t, a + PG(3584), a + PG(3584), 512);
	bad += check_range(s, t, a + PG(1024), 0, 64);
	return bad;
}

/* SC_EARLY, SC_DRAIN: unmap pending pages, map new memory there; the drain leaves it alone. */
static int run_munmap(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start, bad = 0;

	bad += check_range(s, t, a + PG(500), a + PG(500), 24);
	if (munmap((void *)(a + PG(512)), PG(3072))) {
		sim_log("munmap: %s", strerror(errno));
		return 1;
	}
	void *p = mmap((void *)(a + PG(1024)), PG(64), RW,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)(a + PG(1024))) {
		sim_log("mmap over the unmapped range: %s", strerror(errno));
		return 1;
	}
	/*
	 * Grow the first part back over 256 of the unmapped pages: the tail is registered
	 * (the VMA grew), and must read as zeros, never as the old pending data.
	 */
	if (mremap((void *)a, PG(512), PG(768), 0) != (void *)a) {
		sim_log("mremap grow over the unmapped range: %s", strerror(errno));
		return 1;
	}
	if (task_phase_done(t))
		return 1;
	/* Now the daemon drains while we fault. */
	bad += munmap_check(s, t);
	if (task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	bad += munmap_check(s, t);
	bad += check_vma(s, t, &t->vma[1]);
	return bad ? 1 : 0;
}

/* ---- 8: a tree of tasks with a zombie ---- */

static void layout_tree(struct sim *s)
{
	struct sim_task *root = add_task(s, -1);

	add_vma(s, root, 0, 512, RW, &MIX_DEFAULT, 0);
	add_vma(s, root, 1, 32, RW, &MIX_DEFAULT, 0);
	struct sim_task *c1 = add_task(s, 0);
	add_vma(s, c1, 0, 300, RW, &MIX_DEFAULT, 0);
	add_vma(s, c1, 3, 17, PROT_READ, &MIX_DEFAULT, 0);
	add_task(s, 0)->zombie = true;
	struct sim_task *c2 = add_task(s, 1);
	add_vma(s, c2, 0, 700, RW, &MIX_DEFAULT, 0);
	add_vma(s, c2, 1, 5, RW, NULL, PK_LAZY);
	add_task(s, 1); /* a task without any VMA: an empty mm image */
	add_task(s, 3)->zombie = true;
}

static int run_tree(struct sim *s, struct sim_task *t)
{
	if (!t->nvmas)
		return 0;
	struct sim_rng r = {.s = s->seed + (uint64_t)t->idx};
	const struct sim_vma *v = &t->vma[0];
	int reports = 0;
	uint64_t bad = 0;

	for (int i = 0; i < 64; i++) {
		uint64_t a = v->start + PG(rng_below(&r, v->npages));
		bad += check_page(s, t, a, a, NULL, &reports);
	}
	return (bad || check_all(s, t)) ? 1 : 0;
}

/* ---- 9: 256 MB in one task: faults, drain, exit, stats ---- */

static const struct kind_mix MIX_LARGE = {.zero = 10, .hole = 10, .present = 10, .max_run = 512};

static void layout_large(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 65536, RW, &MIX_LARGE, 0);
}

/* 500 random pages from each of 4 threads, while the daemon drains. */
static void *thr_random(void *p)
{
	struct thr_arg *a = p;
	const struct sim_vma *v = &a->t->vma[0];
	struct sim_rng r = {.s = a->s->seed + 9 + (uint64_t)a->n};
	int reports = 0;

	for (int i = 0; i < 500; i++) {
		uint64_t addr = v->start + PG(rng_below(&r, v->npages));
		if (check_page(a->s, a->t, addr, addr, NULL, &reports))
			atomic_fetch_add(a->bad, 1);
	}
	return NULL;
}

static int run_large(struct sim *s, struct sim_task *t)
{
	struct thr_group g;
	atomic_ullong bad = 0;
	bool all = thr_start(&g, SIM_THREADS, thr_random, s, t, &bad);

	thr_join(&g);
	if (!all || task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	/* The daemon is gone: any page it did not install would read as zeros now. */
	return (bad || check_all(s, t)) ? 1 : 0;
}

/* ---- 10: the daemon exits when the tasks are gone, or when all is drained ---- */

static void layout_two(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 256, RW, &MIX_DEFAULT, 0);
	t = add_task(s, 0);
	add_vma(s, t, 0, 256, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 1, 64, RW, &MIX_DEFAULT, 0);
}

static int run_exit_now(struct sim *s, struct sim_task *t)
{
	(void)s;
	(void)t;
	return 0;
}

static int run_drain(struct sim *s, struct sim_task *t)
{
	if (task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	return check_all(s, t) ? 1 : 0;
}

/* SC_EARLY: exit while threads are blocked in faults on pending pages. */
static void *thr_spin(void *p)
{
	struct thr_arg *a = p;
	const struct sim_vma *v = &a->t->vma[a->n % a->t->nvmas];
	volatile uint64_t sum = 0;

	for (uint64_t i = 0; i < v->npages; i++)
		sum += *(volatile uint64_t *)(v->start + PG((i * 7 + (uint64_t)a->n) % v->npages));
	return NULL;
}

static int run_exit_faulting(struct sim *s, struct sim_task *t)
{
	pthread_t th[SIM_THREADS];
	struct thr_arg arg[SIM_THREADS];

	for (int i = 0; i < SIM_THREADS; i++) {
		arg[i] = (struct thr_arg){.s = s, .t = t, .n = i, .bad = NULL};
		if (pthread_create(&th[i], NULL, thr_spin, &arg[i]))
			return 1;
	}
	usleep(2000);
	task_phase_done(t);
	_exit(0); /* the threads die wherever they are, some inside a fault */
}

/* ---- adjacent VMAs: pagemap entries and fault windows across VMA boundaries ---- */

static void set_kinds(struct sim_vma *v, uint64_t from, uint64_t n, uint8_t kind)
{
	for (uint64_t i = from; i < from + n && i < v->npages; i++)
		v->kind[i] = kind;
}

static void layout_adjacent(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);
	struct sim_vma *a = add_vma(s, t, 0, 64, RW, &MIX_DEFAULT, 0);
	struct sim_vma *b = add_vma_after(s, t, 16, PROT_READ, &MIX_DEFAULT, 0);
	struct sim_vma *c = add_vma_after(s, t, 48, RW, &MIX_DEFAULT, 0);
	struct sim_vma *d = add_vma(s, t, 1, 8, RW, NULL, PK_HOLE);
	struct sim_vma *e = add_vma_after(s, t, 8, RW | PROT_EXEC, NULL, PK_HOLE);

	/* Data entries across a->b, holes across b->c, data into a hole across d->e. */
	set_kinds(a, 56, 8, PK_LAZY);
	set_kinds(b, 0, 4, PK_LAZY);
	set_kinds(b, 12, 4, PK_HOLE);
	set_kinds(c, 0, 4, PK_HOLE);
	set_kinds(d, 4, 4, PK_LAZY);
	set_kinds(e, 0, 2, PK_LAZY);
}

/* SC_EARLY, SC_DRAIN: fault just before each boundary, so that a fault window crosses it. */
static int run_adjacent(struct sim *s, struct sim_task *t)
{
	int reports = 0;
	uint64_t bad = 0;

	for (int i = 0; i < t->nvmas; i++) {
		const struct sim_vma *v = &t->vma[i];
		uint64_t a = vma_end(v) - PG(2);
		bad += check_page(s, t, a, a, NULL, &reports);
	}
	bad += check_vma(s, t, &t->vma[1]);
	if (task_phase_done(t) || task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	return (bad || check_all(s, t)) ? 1 : 0;
}

/* ---- fork, then parent and child change their memory differently ---- */

static void layout_fork_remap(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 512, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 1, 128, RW, &MIX_DEFAULT, 0);
}

#define FR_TO(a) ((a) + SIM_VMA_SPAN * 4)

/* The child: moves half of VMA 0, discards part of VMA 1, forks a grandchild that checks. */
static uint64_t fork_remap_child(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start, b = t->vma[1].start, bad = 0;

	if (remap_fixed(a + PG(256), PG(256), PG(256), FR_TO(a)))
		return 1;
	if (madvise((void *)(b + PG(64)), PG(64), MADV_DONTNEED))
		return 1;
	pid_t g = fork();
	if (g == 0) {
		task_arm_timeout(s->timeout_s);
		uint64_t gb = check_range(s, t, FR_TO(a), a + PG(256), 256);
		gb += check_range(s, t, b + PG(64), 0, 64);
		gb += check_range(s, t, a, a, 256);
		_exit(gb ? 1 : 0);
	}
	int st = 0;
	if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st)) {
		sim_log("grandchild failed (status 0x%x)", st);
		bad++;
	}
	/* Some by faults now, the rest after the drain. */
	bad += check_range(s, t, a, a, 64);
	bad += check_range(s, t, FR_TO(a), a + PG(256), 64);
	bad += check_range(s, t, b, b, 32);
	bad += check_range(s, t, b + PG(64), 0, 16);
	return bad;
}

static uint64_t fork_remap_child_after(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start, b = t->vma[1].start, bad = 0;

	bad += check_range(s, t, a, a, 256);
	bad += check_range(s, t, FR_TO(a), a + PG(256), 256);
	bad += check_range(s, t, b, b, 64);
	bad += check_range(s, t, b + PG(64), 0, 64);
	return bad;
}

/* The parent: unmaps the first half of VMA 0 and keeps the rest where it was. */
static uint64_t fork_remap_parent(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start;

	if (munmap((void *)a, PG(256)))
		return 1;
	return check_range(s, t, a + PG(256), a + PG(256), 32);
}

static uint64_t fork_remap_parent_after(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start;

	return check_range(s, t, a + PG(256), a + PG(256), 256) + check_vma(s, t, &t->vma[1]);
}

/*
 * SC_EARLY, SC_DRAIN: after a fork both change their memory (all of it still pending) in
 * different ways; then the daemon drains and exits and both check everything. A daemon that
 * shares pending state between parent and child, or applies one's events to the other, fails.
 */
static int run_fork_remap(struct sim *s, struct sim_task *t)
{
	int p2c[2], c2p[2];
	uint64_t bad = 0;

	if (pipe2(p2c, O_CLOEXEC) || pipe2(c2p, O_CLOEXEC))
		return 1;
	pid_t child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		task_arm_timeout(s->timeout_s);
		uint64_t cb = fork_remap_child(s, t);
		if (barrier(c2p[1], p2c[0], s->timeout_s))
			cb++;
		else
			cb += fork_remap_child_after(s, t);
		_exit(cb ? 1 : 0);
	}
	bad += fork_remap_parent(s, t);
	/* Wait for the child's changes, then let the daemon drain and finish. */
	if (read_byte(c2p[0], now_ms() + (uint64_t)s->timeout_s * 1000) != 'b')
		bad++;
	if (task_phase_done(t) || task_wait_daemon_exit(t, s->timeout_s))
		bad++;
	if (write_all(p2c[1], "b", 1))
		bad++;
	bad += fork_remap_parent_after(s, t);
	int st = 0;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st)) {
		sim_log("forked child %d failed (status 0x%x)", (int)child, st);
		bad++;
	}
	return bad ? 1 : 0;
}

/* ---- many forks while other threads fault ---- */

#define STORM_CHILDREN 32

static void layout_fork_storm(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 1024, RW, &MIX_DEFAULT, 0);
}

/* A forked child: 96 pages, a write of its own in each, then it exits with pages pending. */
static int storm_child(struct sim *s, struct sim_task *t, int n)
{
	const struct sim_vma *v = &t->vma[0];
	struct sim_rng r = {.s = s->seed + 500 + (uint64_t)n};
	uint64_t first = rng_below(&r, v->npages);
	int reports = 0;
	uint64_t bad = 0;

	task_arm_timeout(s->timeout_s);
	/*
	 * 96 different pages (17 is prime to the page count): each written once; a pause
	 * after 64, so that the children end at different times.
	 */
	for (uint64_t i = 0; i < 96; i++) {
		if (i == 64)
			usleep(2000 + 500 * (unsigned)n);
		uint64_t a = v->start + PG((first + i * 17) % v->npages);
		struct page_patch pt = {.off = 8, .val = marker(t, a, (uint64_t)n)};
		bad += check_page(s, t, a, a, NULL, &reports);
		*(volatile uint64_t *)(a + 8) = pt.val;
		bad += check_page(s, t, a, a, &pt, &reports);
	}
	return bad ? 1 : 0;
}

/* SC_EARLY, SC_DRAIN: 32 children forked while two threads of the parent fault. */
static int run_fork_storm(struct sim *s, struct sim_task *t)
{
	struct thr_group g;
	atomic_ullong tbad = 0;
	pid_t kids[STORM_CHILDREN];
	uint64_t bad = 0;
	int n = 0;

	if (!thr_start(&g, 2, thr_touch, s, t, &tbad))
		return 1;
	for (; n < STORM_CHILDREN; n++) {
		kids[n] = fork();
		if (kids[n] == 0)
			_exit(storm_child(s, t, n));
		if (kids[n] < 0)
			break;
	}
	thr_join(&g);
	for (int i = 0; i < n; i++) {
		int st = 0;
		if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st)) {
			sim_log("storm child %d failed (status 0x%x)", (int)kids[i], st);
			bad++;
		}
	}
	if (n != STORM_CHILDREN || tbad || task_phase_done(t) ||
	    task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	return (bad || check_all(s, t)) ? 1 : 0;
}

/* ---- the daemon cannot read page data any more: the tasks must die, not see zeros ---- */

static int run_touch_all(struct sim *s, struct sim_task *t)
{
	if (task_phase_done(t))
		return 1;
	return check_all(s, t) ? 1 : 0;
}

/* ---- exec with pages pending: the new program must run on, unharmed ---- */

static int run_exec(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start;

	if (check_range(s, t, a, a, 8))
		return 1;
	if (task_phase_done(t))
		return 1;
	/* The daemon meets the old mm gone (ESRCH); it must not kill the new program. */
	execl("/bin/sleep", "sleep", "0.3", (char *)NULL);
	sim_log("exec /bin/sleep: %s", strerror(errno));
	return 1;
}

/* ---- 1 GB sparse: huge zero extents, a few data runs ---- */

static void layout_sparse(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);
	struct sim_vma *v = add_vma(s, t, 0, 262144, RW, NULL, PK_HOLE);
	struct sim_rng r = {.s = s->seed + 262144};

	for (int i = 0; i < 100; i++) {
		uint64_t at = rng_below(&r, v->npages - 64);
		set_kinds(v, at, 1 + rng_below(&r, 64),
			  rng_below(&r, 4) ? PK_LAZY
					   : (rng_below(&r, 2) ? PK_PRESENT : PK_LAZY_ZERO));
	}
}

/* Every data page and a sample of the holes. */
static uint64_t sparse_check(struct sim *s, struct sim_task *t, uint64_t seed)
{
	const struct sim_vma *v = &t->vma[0];
	struct sim_rng r = {.s = seed};
	int reports = 0;
	uint64_t bad = 0;

	for (uint64_t p = 0; p < v->npages; p++)
		if (v->kind[p] != PK_HOLE)
			bad += check_page(s, t, v->start + PG(p), v->start + PG(p), NULL, &reports);
	for (int i = 0; i < 2000; i++) {
		uint64_t a = v->start + PG(rng_below(&r, v->npages));
		bad += check_page(s, t, a, a, NULL, &reports);
	}
	return bad;
}

/* SC_DRAIN */
static int run_sparse(struct sim *s, struct sim_task *t)
{
	uint64_t bad = sparse_check(s, t, s->seed + 1);

	if (task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	bad += sparse_check(s, t, s->seed + 2);
	return bad ? 1 : 0;
}

/* ---- negative tests ---- */

/* The image file name (fmt with the task's pid) and its path in the images dir. */
static const char *image_file(struct sim *s, const char *fmt, int pid, char *path, size_t len)
{
	static char name[64];

	snprintf(name, sizeof(name), fmt, pid);
	snprintf(path, len, "%s/%s", s->imgdir, name);
	return name;
}

static const char *corrupt_pagemap_magic(struct sim *s)
{
	char path[400];
	const char *name = image_file(s, "pagemap-%d.img", s->task[0].pid, path, sizeof(path));

	return corrupt_magic(path) ? NULL : name;
}

static const char *corrupt_mm_truncated(struct sim *s)
{
	char path[400];
	const char *name = image_file(s, "mm-%d.img", s->task[1].pid, path, sizeof(path));

	return truncate_by(path, 5) ? NULL : name;
}

static const char *corrupt_pages_short(struct sim *s)
{
	char path[400];
	const char *name =
	    image_file(s, "pages-%d.img", (int)s->task[1].pages_id, path, sizeof(path));

	return truncate_by(path, 2 * (off_t)SIM_PAGE + 100) ? NULL : name;
}

static const char *corrupt_pstree_magic(struct sim *s)
{
	char path[400];
	const char *name = image_file(s, "pstree.img", 0, path, sizeof(path));

	return corrupt_magic(path) ? NULL : name;
}

/* ---- what restore sends: only the task itself may send its pid and a uffd ---- */

/* SC_INTRUDER: enough memory that the drain is far from done when the intruder comes. */
static void layout_intruder(struct sim *s)
{
	for (int i = 0; i < 2; i++)
		add_vma(s, add_task(s, i - 1), 0, 4096, RW, &MIX_DEFAULT, 0);
}

/* Task 0 hands over a pipe instead of its uffd. */
static const char *swap_uffd_for_pipe(struct sim *s)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return NULL;
	close(p[1]);
	close(s->task[0].uffd);
	s->task[0].uffd = p[0];
	return "not a userfaultfd";
}

/* Task 0 sends task 1's pid with its own uffd. */
static const char *forge_pid(struct sim *s)
{
	s->task[0].send_pid = s->task[1].pid;
	return "another process than that task";
}

/* clang-format off */
static const struct scenario scenarios[] = {
	{.name = "seq", .what = "read every page in order, six kinds of VMA",
	 .layout = layout_seq, .run = run_seq, .flags = SC_STATS, .timeout_s = 60},
	{.name = "threads", .what = "random-order touches from 4 threads",
	 .layout = layout_threads, .run = run_threads, .flags = SC_EARLY | SC_STATS, .timeout_s = 60},
	{.name = "writes", .what = "writes into pending pages stick, the rest is the image",
	 .layout = layout_writes, .run = run_writes, .flags = SC_EARLY | SC_DRAIN | SC_STATS, .timeout_s = 60},
	{.name = "fork", .what = "fork with pages pending; parent and child check and diverge",
	 .layout = layout_fork, .run = run_fork, .flags = SC_EARLY | SC_DRAIN, .timeout_s = 60},
	{.name = "mremap", .what = "move, grow, grow-move, shrink+regrow, DONTUNMAP pending pages",
	 .layout = layout_mremap, .run = run_mremap, .flags = SC_EARLY | SC_DRAIN, .timeout_s = 60},
	{.name = "madvise", .what = "MADV_DONTNEED on a partly pending range reads zeros",
	 .layout = layout_madvise, .run = run_madvise, .flags = SC_EARLY | SC_DRAIN, .timeout_s = 60},
	{.name = "munmap", .what = "munmap pending pages while the daemon drains",
	 .layout = layout_munmap, .run = run_munmap, .flags = SC_EARLY | SC_DRAIN | SC_STATS | SC_DROPS, .timeout_s = 90},
	{.name = "tree", .what = "4 tasks (one without memory) and 2 zombies",
	 .layout = layout_tree, .run = run_tree, .flags = SC_STATS, .timeout_s = 60},
	{.name = "large", .what = "256 MB: faults, full drain, daemon exit, stats",
	 .layout = layout_large, .run = run_large, .flags = SC_DRAIN | SC_STATS, .timeout_s = 240},
	{.name = "exit-early", .what = "tasks exit at once; the daemon exits 0",
	 .layout = layout_two, .run = run_exit_now, .flags = 0, .timeout_s = 60},
	{.name = "drain", .what = "untouched tasks: the daemon drains all and exits 0",
	 .layout = layout_two, .run = run_drain, .flags = SC_DRAIN | SC_STATS, .timeout_s = 90},
	{.name = "criu42", .what = "pagemaps as CRIU 4.2 writes them (nr_pages in field 5)",
	 .layout = layout_seq, .run = run_seq, .flags = SC_PM42 | SC_STATS, .timeout_s = 60},
	{.name = "daemonize", .what = "-d --pidfile: detaches, serves, drains, exits 0",
	 .layout = layout_two, .run = run_drain, .flags = SC_DAEMONIZE | SC_DRAIN | SC_STATS, .timeout_s = 60},
	{.name = "exit-faulting", .what = "a task exits while its threads wait in faults",
	 .layout = layout_two, .run = run_exit_faulting, .flags = SC_EARLY, .timeout_s = 60},
	{.name = "adjacent", .what = "adjacent VMAs: entries and fault windows across boundaries",
	 .layout = layout_adjacent, .run = run_adjacent, .flags = SC_EARLY | SC_DRAIN | SC_STATS, .timeout_s = 60},
	{.name = "fork-remap", .what = "after a fork the child moves and discards, the parent unmaps",
	 .layout = layout_fork_remap, .run = run_fork_remap, .flags = SC_EARLY | SC_DRAIN, .timeout_s = 60},
	{.name = "fork-storm", .what = "32 forks while two threads fault; children exit with pages pending",
	 .layout = layout_fork_storm, .run = run_fork_storm, .flags = SC_EARLY | SC_DRAIN, .timeout_s = 60},
	{.name = "pages-vanish", .what = "page data unreadable after start: tasks killed, never zeros",
	 .layout = layout_two, .run = run_touch_all, .flags = SC_EARLY | SC_VANISH, .timeout_s = 60},
	{.name = "relpaths", .what = "relative -D -W -o: -o lands in the work dir, as with criu",
	 .layout = layout_two, .run = run_seq, .flags = SC_RELPATHS | SC_STATS, .timeout_s = 60},
	{.name = "no-workdir", .what = "no -W: the socket and the log are in the images dir",
	 .layout = layout_two, .run = run_seq, .flags = SC_RELPATHS | SC_NO_WORKDIR, .timeout_s = 60},
	{.name = "exec", .what = "a task execs with pages pending: the new program runs on",
	 .layout = layout_two, .run = run_exec, .flags = SC_EARLY, .timeout_s = 60},
	{.name = "sparse", .what = "1 GB VMA of holes with 100 data runs",
	 .layout = layout_sparse, .run = run_sparse, .flags = SC_DRAIN | SC_STATS, .timeout_s = 120},
	{.name = "pidns", .what = "the task is pid 1 of a new pid namespace, restore outside it",
	 .layout = layout_writes, .run = run_writes, .flags = SC_PIDNS | SC_EARLY | SC_DRAIN | SC_STATS, .timeout_s = 60},
	{.name = "pidns-vanish", .what = "page data lost for a task in its own pid namespace: killed",
	 .layout = layout_writes, .run = run_touch_all, .flags = SC_PIDNS | SC_EARLY | SC_VANISH, .timeout_s = 15},
	{.name = "bad-magic", .what = "corrupt pagemap magic: the daemon fails naming the file",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_pagemap_magic},
	{.name = "truncated", .what = "truncated mm image: the daemon fails naming the file",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_mm_truncated},
	{.name = "bad-pstree", .what = "corrupt pstree magic: the daemon fails naming the file",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_pstree_magic},
	{.name = "short-pages", .what = "pages file shorter than its pagemap: the daemon fails naming it",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_pages_short},
	{.name = "hangup", .what = "restore hangs up after one task, before RSTF: the daemon fails",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL | SC_HANGUP, .timeout_s = 30, .hangup_after = 1},
	{.name = "hangup-empty", .what = "restore connects and hangs up at once: the daemon fails",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL | SC_HANGUP, .timeout_s = 30},
	{.name = "intruder", .what = "a second client after restore hung up: refused, nothing changes",
	 .layout = layout_intruder, .run = run_drain, .flags = SC_DRAIN | SC_INTRUDER | SC_STATS, .timeout_s = 60},
	{.name = "not-uffd", .what = "a task sends a pipe, not a uffd: refused, the task killed",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = swap_uffd_for_pipe},
	{.name = "forged-pid", .what = "a task sends another task's pid: refused",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = forge_pid},
};
/* clang-format on */

#define NR_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

#endif

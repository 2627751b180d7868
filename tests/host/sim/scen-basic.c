/*
 * restore-sim scenarios: reads in order and from threads, writes, a tree with zombies,
 * 256 MB, tasks that exit or exec, 1 GB sparse.
 */
#include "scen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- 1: read everything in order ---- */

void layout_seq(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 64, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 1, 16, PROT_READ, &MIX_DEFAULT, 0);
	add_vma(s, t, 2, 1024, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 3, 8, RW, NULL, PK_HOLE);	   /* a lazy VMA without any pagemap entry */
	add_vma(s, t, 4, 8, RW, NULL, PK_PRESENT); /* nothing lazy in it */
	add_vma(s, t, 5, 32, RW, NULL, PK_LAZY);
}

int run_seq(struct sim *s, struct sim_task *t)
{
	return check_all(s, t) ? 1 : 0;
}

/* ---- 2: random-order touches from several threads ---- */

/* Start n (<= SIM_THREADS) threads running fn; false if not all of them started. */
bool thr_start(struct thr_group *g, int n, void *(*fn)(void *), struct sim *s, struct sim_task *t,
	       atomic_ullong *bad)
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

void thr_join(struct thr_group *g)
{
	for (int i = 0; i < g->started; i++)
		pthread_join(g->th[i], NULL);
}

void *thr_touch(void *p)
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

void layout_threads(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 2048, RW, &MIX_DEFAULT, 0);
}

/* SC_EARLY: every page is served by the fault path, several threads faulting at once. */
int run_threads(struct sim *s, struct sim_task *t)
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

void layout_writes(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 512, RW, &MIX_DEFAULT, 0);
}

uint64_t marker(const struct sim_task *t, uint64_t addr, uint64_t salt)
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
int run_writes(struct sim *s, struct sim_task *t)
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

/* ---- 8: a tree of tasks with a zombie ---- */

void layout_tree(struct sim *s)
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

int run_tree(struct sim *s, struct sim_task *t)
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

void layout_large(struct sim *s)
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

int run_large(struct sim *s, struct sim_task *t)
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

/* ---- 9b: a fragmented pending set: every second page touched before the drain ---- */

void layout_strided(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 32768, RW, NULL, PK_LAZY);
}

/*
 * Before RSTF (SC_EARLY) the task reads every second page, so the drain that follows finds
 * one-page runs between present pages (with --fault-window 1): the case where a fill
 * engine's batch entry point takes a whole chunk's runs in one call.
 */
int run_strided(struct sim *s, struct sim_task *t)
{
	const struct sim_vma *v = &t->vma[0];
	int reports = 0;
	uint64_t bad = 0;

	for (uint64_t p = 0; p < v->npages; p += 2)
		bad += check_page(s, t, v->start + PG(p), v->start + PG(p), NULL, &reports);
	if (task_phase_done(t) || task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	return (bad || check_all(s, t)) ? 1 : 0;
}

/* ---- 10: the daemon exits when the tasks are gone, or when all is drained ---- */

void layout_two(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 256, RW, &MIX_DEFAULT, 0);
	t = add_task(s, 0);
	add_vma(s, t, 0, 256, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 1, 64, RW, &MIX_DEFAULT, 0);
}

int run_exit_now(struct sim *s, struct sim_task *t)
{
	(void)s;
	(void)t;
	return 0;
}

int run_drain(struct sim *s, struct sim_task *t)
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

int run_exit_faulting(struct sim *s, struct sim_task *t)
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

/* ---- the daemon cannot read page data any more: the tasks must die, not see zeros ---- */

int run_touch_all(struct sim *s, struct sim_task *t)
{
	if (task_phase_done(t))
		return 1;
	return check_all(s, t) ? 1 : 0;
}

/* ---- exec with pages pending: the new program must run on, unharmed ---- */

int run_exec(struct sim *s, struct sim_task *t)
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

void layout_sparse(struct sim *s)
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
int run_sparse(struct sim *s, struct sim_task *t)
{
	uint64_t bad = sparse_check(s, t, s->seed + 1);

	if (task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	bad += sparse_check(s, t, s->seed + 2);
	return bad ? 1 : 0;
}

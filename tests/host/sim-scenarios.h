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

static void *thr_touch(void *p)
{
	struct thr_arg *a = p;
	const struct sim_vma *v = &a->t->vma[0];
	struct sim_rng r = {.s = a->s->seed + 1000 + (uint64_t)a->n};
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

static int run_threads(struct sim *s, struct sim_task *t)
{
	pthread_t th[SIM_THREADS];
	struct thr_arg arg[SIM_THREADS];
	atomic_ullong bad = 0;
	int started = 0;

	for (int i = 0; i < SIM_THREADS; i++) {
		arg[i] = (struct thr_arg){.s = s, .t = t, .n = i, .bad = &bad};
		if (pthread_create(&th[i], NULL, thr_touch, &arg[i]))
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (started != SIM_THREADS) {
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

static int run_writes(struct sim *s, struct sim_task *t)
{
	const struct sim_vma *v = &t->vma[0];
	struct page_patch *patch = calloc(v->npages, sizeof(*patch));
	struct sim_rng r = {.s = s->seed + 77};
	int reports = 0;
	uint64_t bad = 0;

	if (!patch)
		return 1;
	/* The first write to most pages is the fault (a write fault into a missing page). */
	for (uint64_t p = 0; p < v->npages; p++) {
		patch[p].off = ~0u;
		if (rng_below(&r, 4) == 0)
			continue;
		uint64_t addr = v->start + PG(p);
		patch[p].off = (unsigned)(rng_below(&r, SIM_WORDS) * 8);
		patch[p].val = marker(t, addr, s->seed);
		*(volatile uint64_t *)(addr + patch[p].off) = patch[p].val;
	}
	for (uint64_t p = 0; p < v->npages; p++)
		bad += check_page(s, t, v->start + PG(p), v->start + PG(p), &patch[p], &reports);
	free(patch);
	if (bad)
		sim_log("pid %d: %llu pages lost or mangled a write", (int)getpid(),
			(unsigned long long)bad);
	return bad ? 1 : 0;
}

/* ---- 4: fork while pages are pending ---- */

static void layout_fork(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 1024, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 1, 64, RW, &MIX_DEFAULT, 0);
}

static int barrier(int wfd, int rfd)
{
	char c = 'b';

	if (write_all(wfd, &c, 1))
		return -1;
	return read_byte(rfd, now_ms() + 60000) == 'b' ? 0 : -1;
}

/* Check every page backwards or forwards, then (after the barrier) stamp and check again. */
static uint64_t fork_side(struct sim *s, struct sim_task *t, bool backwards, int wfd, int rfd,
			  uint64_t salt)
{
	uint64_t bad = 0;
	int reports = 0;

	for (int i = 0; i < t->nvmas; i++) {
		const struct sim_vma *v = &t->vma[backwards ? t->nvmas - 1 - i : i];
		for (uint64_t j = 0; j < v->npages; j++) {
			uint64_t a = v->start + PG(backwards ? v->npages - 1 - j : j);
			bad += check_page(s, t, a, a, NULL, &reports);
		}
	}
	if (barrier(wfd, rfd))
		return bad + 1;
	for (int i = 0; i < t->nvmas; i++)
		for (uint64_t j = 0; j < t->vma[i].npages; j++)
			*(volatile uint64_t *)(t->vma[i].start + PG(j)) =
			    marker(t, t->vma[i].start + PG(j), salt);
	if (barrier(wfd, rfd))
		return bad + 1;
	for (int i = 0; i < t->nvmas; i++)
		for (uint64_t j = 0; j < t->vma[i].npages; j++) {
			uint64_t a = t->vma[i].start + PG(j);
			struct page_patch pt = {.off = 0, .val = marker(t, a, salt)};
			bad += check_page(s, t, a, a, &pt, &reports);
		}
	return bad;
}

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
		task_arm_timeout(s->timeout_s);
		uint64_t cb = fork_side(s, t, true, c2p[1], p2c[0], 0xc41dULL);
		if (cb)
			sim_log("forked child %d: %llu bad pages", (int)getpid(),
				(unsigned long long)cb);
		_exit(cb ? 1 : 0);
	}
	bad += fork_side(s, t, false, p2c[1], c2p[0], 0x9a4e47ULL);
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

static uint64_t mremap_move(struct sim *s, struct sim_task *t)
{
	const struct sim_vma *v = &t->vma[0];
	uint64_t a = v->start, to = a + SIM_VMA_SPAN / 2, bad = 0;

	bad += check_range(s, t, a, a, 32);
	if (remap_fixed(a + PG(64), PG(128), PG(128), to))
		return bad + 1;
	bad += check_range(s, t, to, a + PG(64), 128);
	bad += check_range(s, t, a, a, 64);
	bad += check_range(s, t, a + PG(192), a + PG(192), 64);
	if (!range_unmapped(a + PG(64), PG(128))) {
		sim_log("pid %d: old range still mapped after mremap", (int)getpid());
		bad++;
	}
	return bad;
}

static uint64_t mremap_grow(struct sim *s, struct sim_task *t)
{
	const struct sim_vma *v = &t->vma[1];
	uint64_t a = v->start, bad = 0;

	bad += check_range(s, t, a, a, 16);
	void *p = mremap((void *)a, PG(128), PG(256), 0);
	if (p != (void *)a) {
		sim_log("mremap grow in place 0x%llx: %s", (unsigned long long)a, strerror(errno));
		return bad + 1;
	}
	bad += check_range(s, t, a, a, 128);
	bad += check_range(s, t, a + PG(128), 0, 128);
	/* The new tail is ordinary memory now. */
	*(volatile uint64_t *)(a + PG(200)) = 42;
	if (*(volatile uint64_t *)(a + PG(200)) != 42)
		bad++;
	return bad;
}

static uint64_t mremap_grow_move(struct sim *s, struct sim_task *t)
{
	const struct sim_vma *v = &t->vma[2];
	uint64_t a = v->start, to = a + SIM_VMA_SPAN, bad = 0;

	bad += check_range(s, t, a + PG(8), a + PG(8), 4);
	if (remap_fixed(a, PG(64), PG(128), to))
		return bad + 1;
	bad += check_range(s, t, to, a, 64);
	bad += check_range(s, t, to + PG(64), 0, 64);
	return bad;
}

static int run_mremap(struct sim *s, struct sim_task *t)
{
	uint64_t bad = mremap_move(s, t);

	bad += mremap_grow(s, t);
	bad += mremap_grow_move(s, t);
	return bad ? 1 : 0;
}

/* ---- 6: MADV_DONTNEED on a partly pending range ---- */

static void layout_madvise(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 256, RW, &MIX_DEFAULT, 0);
}

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
	bad += check_range(s, t, a, a, 32);
	bad += check_range(s, t, a + PG(32), 0, 128);
	bad += check_range(s, t, a + PG(160), a + PG(160), 96);
	*(volatile uint64_t *)(a + PG(40)) = 7;
	if (*(volatile uint64_t *)(a + PG(40)) != 7)
		bad++;
	return bad ? 1 : 0;
}

/* ---- 7: munmap of a pending range while the daemon drains ---- */

static void layout_munmap(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 4096, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 1, 256, RW, &MIX_DEFAULT, 0);
}

static int run_munmap(struct sim *s, struct sim_task *t)
{
	uint64_t a = t->vma[0].start, bad = 0;

	if (munmap((void *)(a + PG(512)), PG(3072))) {
		sim_log("munmap: %s", strerror(errno));
		return 1;
	}
	bad += check_range(s, t, a, a, 512);
	bad += check_range(s, t, a + PG(3584), a + PG(3584), 512);
	/* New memory where pending pages were: the daemon must leave it alone. */
	void *p = mmap((void *)(a + PG(1024)), PG(64), RW,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)(a + PG(1024))) {
		sim_log("mmap over the unmapped range: %s", strerror(errno));
		return 1;
	}
	bad += check_range(s, t, a + PG(1024), 0, 64);
	if (task_wait_daemon_exit(t, s->timeout_s))
		return 1;
	bad += check_range(s, t, a, a, 512);
	bad += check_range(s, t, a + PG(3584), a + PG(3584), 512);
	bad += check_range(s, t, a + PG(1024), 0, 64);
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
}

static int run_tree(struct sim *s, struct sim_task *t)
{
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

static int run_large(struct sim *s, struct sim_task *t)
{
	struct sim_rng r = {.s = s->seed + 9};
	const struct sim_vma *v = &t->vma[0];
	int reports = 0;
	uint64_t bad = 0;

	for (int i = 0; i < 2000; i++) {
		uint64_t a = v->start + PG(rng_below(&r, v->npages));
		bad += check_page(s, t, a, a, NULL, &reports);
	}
	if (task_wait_daemon_exit(t, s->timeout_s))
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

static const char *corrupt_pstree_magic(struct sim *s)
{
	char path[400];
	const char *name = image_file(s, "pstree.img", 0, path, sizeof(path));

	return corrupt_magic(path) ? NULL : name;
}

/* clang-format off */
static const struct scenario scenarios[] = {
	{.name = "seq", .what = "read every page in order, six kinds of VMA",
	 .layout = layout_seq, .run = run_seq, .flags = SC_STATS, .timeout_s = 60},
	{.name = "threads", .what = "random-order touches from 4 threads",
	 .layout = layout_threads, .run = run_threads, .flags = SC_STATS, .timeout_s = 60},
	{.name = "writes", .what = "writes into pending pages stick, the rest is the image",
	 .layout = layout_writes, .run = run_writes, .flags = SC_STATS, .timeout_s = 60},
	{.name = "fork", .what = "fork with pages pending; parent and child check and diverge",
	 .layout = layout_fork, .run = run_fork, .flags = 0, .timeout_s = 60},
	{.name = "mremap", .what = "move pending pages; grow in place and grow-move: tails are zero",
	 .layout = layout_mremap, .run = run_mremap, .flags = 0, .timeout_s = 60},
	{.name = "madvise", .what = "MADV_DONTNEED on a partly pending range reads zeros",
	 .layout = layout_madvise, .run = run_madvise, .flags = 0, .timeout_s = 60},
	{.name = "munmap", .what = "munmap pending pages while the daemon drains",
	 .layout = layout_munmap, .run = run_munmap, .flags = SC_DRAIN | SC_STATS | SC_DROPS, .timeout_s = 90},
	{.name = "tree", .what = "3 tasks and a zombie",
	 .layout = layout_tree, .run = run_tree, .flags = SC_STATS, .timeout_s = 60},
	{.name = "large", .what = "256 MB: faults, full drain, daemon exit, stats",
	 .layout = layout_large, .run = run_large, .flags = SC_DRAIN | SC_STATS, .timeout_s = 240},
	{.name = "exit-early", .what = "tasks exit at once; the daemon exits 0",
	 .layout = layout_two, .run = run_exit_now, .flags = 0, .timeout_s = 60},
	{.name = "drain", .what = "untouched tasks: the daemon drains all and exits 0",
	 .layout = layout_two, .run = run_drain, .flags = SC_DRAIN | SC_STATS, .timeout_s = 90},
	{.name = "bad-magic", .what = "corrupt pagemap magic: the daemon fails naming the file",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_pagemap_magic},
	{.name = "truncated", .what = "truncated mm image: the daemon fails naming the file",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_mm_truncated},
	{.name = "bad-pstree", .what = "corrupt pstree magic: the daemon fails naming the file",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_pstree_magic},
	{.name = "hangup", .what = "restore hangs up after one task, before RSTF: the daemon fails",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL | SC_HANGUP, .timeout_s = 30, .hangup_after = 1},
	{.name = "hangup-empty", .what = "restore connects and hangs up at once: the daemon fails",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL | SC_HANGUP, .timeout_s = 30},
};
/* clang-format on */

#define NR_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

#endif

/*
 * restore-sim scenarios: forks with pages pending; parent and child change their memory
 * differently; many forks while threads fault.
 */
#include "scen.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct sim_fork_side {
	bool child;
	int wfd, rfd; /* barrier pipes to the other side */
	uint64_t salt;
};

/* ---- 4: fork while pages are pending ---- */

void layout_fork(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 1024, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 1, 64, RW, &MIX_DEFAULT, 0);
}

int barrier(int wfd, int rfd, int timeout_s)
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
int run_fork(struct sim *s, struct sim_task *t)
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

/* ---- fork, then parent and child change their memory differently ---- */

void layout_fork_remap(struct sim *s)
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
int run_fork_remap(struct sim *s, struct sim_task *t)
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

void layout_fork_storm(struct sim *s)
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
int run_fork_storm(struct sim *s, struct sim_task *t)
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

/* ---- a task forks and exits at once (a daemon's fork): the child runs on, orphaned ---- */

void orphan_result_path(const struct sim *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s/orphan-result", s->dir);
}

/*
 * SC_ORPHAN: the fork's event and the parent's exit reach the daemon together; the child
 * must still get every page (restore-sim reads its verdict from orphan-result).
 */
int run_fork_exit(struct sim *s, struct sim_task *t)
{
	char path[300];
	pid_t child = fork();

	if (child < 0)
		return 1;
	if (child == 0) {
		/* No PR_SET_PDEATHSIG (task_arm_timeout): its parent is about to exit. */
		signal(SIGALRM, SIG_DFL);
		alarm((unsigned)s->timeout_s);
		uint64_t bad = check_all(s, t);
		orphan_result_path(s, path, sizeof(path));
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			if (write(fd, bad ? "bad" : "ok", bad ? 3 : 2) < 0)
				bad++;
			close(fd);
		}
		_exit(bad ? 1 : 0);
	}
	return 0; /* at once: the child is on its own */
}

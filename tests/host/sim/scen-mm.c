/*
 * restore-sim scenarios: the tasks change their address space over pending pages (mremap,
 * madvise, munmap) or fault across the boundaries of adjacent VMAs.
 */
#include "scen.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- 5: mremap of pending pages: move, grow in place, grow and move ---- */

void layout_mremap(struct sim *s)
{
	struct sim_task *t = add_task(s, -1);

	add_vma(s, t, 0, 256, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 2, 128, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 4, 64, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 6, 128, RW, &MIX_DEFAULT, 0);
	add_vma(s, t, 8, 64, RW, &MIX_DEFAULT, 0);
}

int remap_fixed(uint64_t from, uint64_t len, uint64_t new_len, uint64_t to)
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
int run_mremap(struct sim *s, struct sim_task *t)
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

void layout_madvise(struct sim *s)
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
int run_madvise(struct sim *s, struct sim_task *t)
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

void layout_munmap(struct sim *s)
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
int run_munmap(struct sim *s, struct sim_task *t)
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

/* ---- adjacent VMAs: pagemap entries and fault windows across VMA boundaries ---- */

void set_kinds(struct sim_vma *v, uint64_t from, uint64_t n, uint8_t kind)
{
	for (uint64_t i = from; i < from + n && i < v->npages; i++)
		v->kind[i] = kind;
}

void layout_adjacent(struct sim *s)
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
int run_adjacent(struct sim *s, struct sim_task *t)
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

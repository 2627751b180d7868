/* The pending-page set: every operation checked against a page-by-page model. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "lazyd/pending.h"

#define P 4096ULL
#define SPAN 512 /* pages in the model's address range */
#define BASE 0x100000ULL

/* Model: per page, -1 not pending, -2 zero, else the src offset in pages. */
static long model[SPAN];

static void model_reset(void)
{
	for (int i = 0; i < SPAN; i++)
		model[i] = -1;
}

static void check_against_model(const struct pending *p)
{
	uint64_t pages = 0, data = 0;

	for (size_t i = 0; i + 1 < p->n; i++)
		cr_assert(p->v[i].end <= p->v[i + 1].start, "extents sorted and disjoint");
	for (int i = 0; i < SPAN; i++) {
		uint64_t a = BASE + i * P;
		const struct pend_extent *e = pending_lookup(p, a);
		if (model[i] == -1) {
			cr_assert_null(e, "page %d must not be pending", i);
			continue;
		}
		cr_assert_not_null(e, "page %d must be pending", i);
		pages++;
		if (model[i] == -2) {
			cr_assert(e->flags & PEND_ZERO, "page %d is a zero page", i);
		} else {
			data++;
			cr_assert_eq(e->src + (a - e->start), (uint64_t)model[i] * P, "page %d src", i);
		}
	}
	cr_assert_eq(p->pages, pages);
	cr_assert_eq(p->data_pages, data);
}

static struct img_task image_task(struct img_extent *x, size_t n)
{
	struct img_task t;
	memset(&t, 0, sizeof(t));
	t.extents = x;
	t.nr_extents = n;
	return t;
}

static void seed(struct pending *p)
{
	struct img_extent x[] = {
		{ .start = BASE, .end = BASE + 100 * P },
		{ .start = BASE + 100 * P, .end = BASE + 150 * P, .zero = true },
		{ .start = BASE + 200 * P, .end = BASE + 300 * P, .pages_off = 100 * P },
	};
	struct img_task t = image_task(x, 3);
	model_reset();
	for (int i = 0; i < 100; i++)
		model[i] = i;
	for (int i = 100; i < 150; i++)
		model[i] = -2;
	for (int i = 200; i < 300; i++)
		model[i] = 100 + (i - 200);
	cr_assert_eq(pending_from_image(p, &t), 0);
}

Test(pending, from_image)
{
	struct pending p;
	seed(&p);
	check_against_model(&p);
	pending_free(&p);
}

Test(pending, remove_splits_and_trims)
{
	struct pending p;
	seed(&p);
	cr_assert_eq(pending_remove(&p, BASE + 10 * P, BASE + 20 * P), 0); /* hole */
	for (int i = 10; i < 20; i++)
		model[i] = -1;
	cr_assert_eq(pending_remove(&p, BASE + 90 * P, BASE + 210 * P), 0); /* across three */
	for (int i = 90; i < 210; i++)
		model[i] = -1;
	cr_assert_eq(pending_remove(&p, BASE + 400 * P, BASE + 500 * P), 0); /* nothing there */
	check_against_model(&p);
	pending_free(&p);
}

Test(pending, move_keeps_sources)
{
	struct pending p;
	seed(&p);
	/* mremap pages 50..250 to 300..500 (the destination held pages 300.. of nothing). */
	cr_assert_eq(pending_move(&p, BASE + 50 * P, BASE + 300 * P, 200 * P), 0);
	long moved[200];
	memcpy(moved, &model[50], sizeof(moved));
	for (int i = 50; i < 250; i++)
		model[i] = -1;
	memcpy(&model[300], moved, sizeof(moved));
	check_against_model(&p);
	pending_free(&p);
}

Test(pending, move_drops_destination)
{
	struct pending p;
	seed(&p);
	/* Moving onto pending pages replaces them (mremap unmaps the target). */
	cr_assert_eq(pending_move(&p, BASE + 0, BASE + 220 * P, 10 * P), 0);
	long moved[10];
	memcpy(moved, &model[0], sizeof(moved));
	for (int i = 0; i < 10; i++)
		model[i] = -1;
	memcpy(&model[220], moved, sizeof(moved));
	check_against_model(&p);
	pending_free(&p);
}

Test(pending, run_at_and_next)
{
	struct pending p;
	struct pend_extent r;
	seed(&p);
	cr_assert(pending_run_at(&p, BASE + 95 * P, 16 * P, &r));
	cr_assert_eq(r.start, BASE + 95 * P);
	cr_assert_eq(r.end, BASE + 100 * P, "a run stays inside one extent");
	cr_assert_eq(r.src, 95 * P);
	cr_assert_not(pending_run_at(&p, BASE + 160 * P, 16 * P, &r));
	/* data_only skips the zero extent; from past the top it wraps around. */
	cr_assert(pending_next(&p, BASE + 100 * P, 1000 * P, true, &r));
	cr_assert_eq(r.start, BASE + 200 * P);
	cr_assert(pending_next(&p, BASE + 300 * P, 8 * P, true, &r));
	cr_assert_eq(r.start, BASE);
	cr_assert_eq(r.end, BASE + 8 * P);
	cr_assert(pending_next(&p, BASE + 120 * P, 8 * P, false, &r));
	cr_assert_eq(r.start, BASE + 120 * P);
	cr_assert(r.flags & PEND_ZERO);
	pending_free(&p);
}

Test(pending, clone_is_independent)
{
	struct pending a, b;
	seed(&a);
	cr_assert_eq(pending_clone(&b, &a), 0);
	cr_assert_eq(pending_remove(&a, BASE, BASE + 300 * P), 0);
	cr_assert_eq(a.pages, 0);
	check_against_model(&b);
	pending_free(&a);
	pending_free(&b);
}

/* Random remove/move sequences against the model. */
/* The same operation on the set and on the model: pages [a, a+len) installed. */
static void remove_both(struct pending *p, int a, int len)
{
	cr_assert_eq(pending_remove(p, BASE + a * P, BASE + (a + len) * P), 0);
	for (int i = a; i < a + len; i++)
		model[i] = -1;
}

/* ... and moved to [to, to+len) (mremap). */
static void move_both(struct pending *p, int a, int to, int len)
{
	long tmp[SPAN];

	cr_assert_eq(pending_move(p, BASE + a * P, BASE + to * P, len * P), 0);
	memcpy(tmp, &model[a], len * sizeof(long));
	for (int i = a; i < a + len; i++)
		model[i] = -1;
	memcpy(&model[to], tmp, len * sizeof(long));
}

Test(pending, random_ops_match_model)
{
	struct pending p;
	unsigned s = 12345;
	seed(&p);
	for (int iter = 0; iter < 3000; iter++) {
		s = s * 1103515245 + 12345;
		int a = (s >> 8) % SPAN, len = 1 + (s >> 20) % 40;
		if (a + len > SPAN)
			len = SPAN - a;
		if ((s >> 4) & 1) {
			remove_both(&p, a, len);
		} else {
			s = s * 1103515245 + 12345;
			int to = (s >> 8) % (SPAN - len + 1);
			if (to < a + len && a < to + len)
				continue; /* mremap ranges never overlap */
			move_both(&p, a, to, len);
		}
		check_against_model(&p);
	}
	pending_free(&p);
}

/*
 * Many small extents, worked on mostly near the lowest address as the drain and the faults
 * do: removals and inserts there go through the array's head room (pending.h), moves
 * and splits elsewhere grow it again. Checked against the model after every step.
 */
Test(pending, front_heavy_ops_match_model)
{
	static struct img_extent x[SPAN / 2];
	struct pending p;
	unsigned s = 777, front = 0;
	size_t max_head = 0;

	model_reset();
	for (int i = 0; i < SPAN / 2; i++) {
		bool zero = i % 3 == 2;
		x[i] = (struct img_extent){.start = BASE + 2 * i * P,
					   .end = BASE + (2 * i + 1) * P,
					   .pages_off = zero ? 0 : (uint64_t)i * P,
					   .zero = zero};
		model[2 * i] = zero ? -2 : i;
	}
	struct img_task t = image_task(x, SPAN / 2);
	cr_assert_eq(pending_from_image(&p, &t), 0);
	for (int iter = 0; iter < 4000; iter++) {
		s = s * 1103515245 + 12345;
		int a, len = 1 + (s >> 20) % 4;
		if ((s >> 4) % 4) {
			a = (int)(front + (s >> 8) % 8) % SPAN; /* near the front */
			if (a + len > SPAN)
				len = SPAN - a;
			remove_both(&p, a, len);
			front = (front + 1) % SPAN;
		} else {
			a = (int)((s >> 8) % SPAN);
			if (a + len > SPAN)
				len = SPAN - a;
			s = s * 1103515245 + 12345;
			int to = (int)(front + (s >> 8) % 16) % (SPAN - len + 1);
			if (to < a + len && a < to + len)
				continue;
			move_both(&p, a, to, len);
		}
		check_against_model(&p);
		if (p.head > max_head)
			max_head = p.head;
	}
	cr_assert_gt(max_head, 0, "the head room was used");
	pending_free(&p);
}

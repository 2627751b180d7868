/* mm-PID.img: the vma entries made into a task's sorted VMAs and guard regions (images.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "criu-images.pb-c.h"
#include "img_load.h"

/* vma_entry.status bits, as CRIU defines them. */
#define VMA_AREA_REGULAR (1u << 0)
#define VMA_AREA_VSYSCALL (1u << 2)
#define VMA_AREA_VDSO (1u << 3)
#define VMA_AREA_GUARD (1u << 16) /* CRIU 4.2: a guard region, not a VMA (see images.h) */

#define MM_VMAS_FIELD 14 /* mm_entry.vmas */

/* CRIU registers a VMA with userfaultfd on restore exactly when this holds. */
static bool vma_is_lazy(uint32_t flags, uint32_t status)
{
	return (flags & MAP_ANONYMOUS) && (flags & MAP_PRIVATE) && !(flags & MAP_LOCKED) &&
	       !(status & VMA_AREA_VDSO) && !(status & VMA_AREA_VSYSCALL) &&
	       (status & VMA_AREA_REGULAR);
}

static bool entry_is_guard(const ImgVmaEntry *e)
{
	return e->status & VMA_AREA_GUARD;
}

/* Where a VMA or guard was in the mm entry (for messages: the arrays are sorted). */
static size_t entry_index(const ImgMmEntry *mm, uint64_t start, uint64_t end, bool guard)
{
	size_t i;

	for (i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->start == start && mm->vmas[i]->end == end &&
		    entry_is_guard(mm->vmas[i]) == guard)
			break;
	return i;
}

static int entry_fail(struct errmsg *err, const char *name, uint64_t off, size_t i, bool guard,
		      uint64_t start, uint64_t end, const char *what)
{
	return img_fail(err, EINVAL, name, off, "vma %zu%s [0x%llx-0x%llx)%s", i,
			guard ? " (guard)" : "", (unsigned long long)start, (unsigned long long)end,
			what);
}

static int check_entry(const ImgVmaEntry *e, size_t i, const char *name, uint64_t off,
		       struct errmsg *err)
{
	const char *bad = NULL;

	if ((e->start | e->end) % IMG_PAGE_SIZE)
		bad = ": not page aligned";
	else if (e->start >= e->end)
		bad = ": empty or inverted (start >= end)";
	if (!bad)
		return 0;
	return entry_fail(err, name, off, i, entry_is_guard(e), e->start, e->end, bad);
}

static int cmp_vma(const void *a, const void *b)
{
	uint64_t x = ((const struct img_vma *)a)->start, y = ((const struct img_vma *)b)->start;

	return (x > y) - (x < y);
}

static int cmp_guard(const void *a, const void *b)
{
	uint64_t x = ((const struct img_guard *)a)->start, y = ((const struct img_guard *)b)->start;

	return (x > y) - (x < y);
}

/* Two sorted ranges that overlap: "vma I [..) overlaps [guard] vma J [..)". */
static int overlap_fail(const ImgMmEntry *mm, bool guard, uint64_t s0, uint64_t e0, uint64_t s1,
			uint64_t e1, const char *name, uint64_t off, struct errmsg *err)
{
	char what[128];

	snprintf(what, sizeof(what), " overlaps %svma %zu [0x%llx-0x%llx)", guard ? "guard " : "",
		 entry_index(mm, s0, e0, guard), (unsigned long long)s0, (unsigned long long)e0);
	return entry_fail(err, name, off, entry_index(mm, s1, e1, guard), guard, s1, e1, what);
}

static int check_vmas(const struct img_task *t, const ImgMmEntry *mm, const char *name,
		      uint64_t off, struct errmsg *err)
{
	size_t i;

	for (i = 1; i < t->nr_vmas; i++) {
		const struct img_vma *a = &t->vmas[i - 1], *b = &t->vmas[i];

		if (b->start < a->end)
			return overlap_fail(mm, false, a->start, a->end, b->start, b->end, name,
					    off, err);
	}
	return 0;
}

/* Guards must not overlap each other, and each page of one must be in a real VMA. */
static int check_guards(const struct img_task *t, const ImgMmEntry *mm, const char *name,
			uint64_t off, struct errmsg *err)
{
	char what[96];
	size_t i, v = 0;

	for (i = 0; i < t->nr_guards; i++) {
		const struct img_guard *g = &t->guards[i];
		uint64_t addr = g->start;

		if (i && g->start < g[-1].end)
			return overlap_fail(mm, true, g[-1].start, g[-1].end, g->start, g->end,
					    name, off, err);
		while (addr < g->end) {
			while (v < t->nr_vmas && t->vmas[v].end <= addr)
				v++;
			if (v == t->nr_vmas || t->vmas[v].start > addr) {
				snprintf(what, sizeof(what), ": page 0x%llx is outside every VMA",
					 (unsigned long long)addr);
				return entry_fail(err, name, off,
						  entry_index(mm, g->start, g->end, true), true,
						  g->start, g->end, what);
			}
			addr = t->vmas[v].end;
		}
	}
	return 0;
}

static void copy_vma(struct img_vma *v, const ImgVmaEntry *e)
{
	v->start = e->start;
	v->end = e->end;
	v->prot = e->prot;
	v->flags = e->flags;
	v->status = e->status;
	v->lazy = vma_is_lazy(e->flags, e->status);
}

/* Split the vma entries into real VMAs and guards, each array sorted by start. */
static int copy_vmas(struct img_task *t, const ImgMmEntry *mm, const char *name, uint64_t off,
		     struct errmsg *err)
{
	size_t i, nv = 0, ng = 0;
	int rc;

	for (i = 0; i < mm->n_vmas; i++) {
		rc = check_entry(mm->vmas[i], i, name, off, err);
		if (rc)
			return rc;
		ng += entry_is_guard(mm->vmas[i]);
	}
	if (mm->n_vmas > ng && !(t->vmas = calloc(mm->n_vmas - ng, sizeof(*t->vmas))))
		return img_fail(err, ENOMEM, name, off, "out of memory for %zu vmas",
				mm->n_vmas - ng);
	if (ng && !(t->guards = calloc(ng, sizeof(*t->guards))))
		return img_fail(err, ENOMEM, name, off, "out of memory for %zu guards", ng);
	for (i = 0; i < mm->n_vmas; i++) {
		const ImgVmaEntry *e = mm->vmas[i];

		if (entry_is_guard(e))
			t->guards[t->nr_guards++] = (struct img_guard){e->start, e->end};
		else
			copy_vma(&t->vmas[nv++], e);
	}
	t->nr_vmas = nv;
	if (t->nr_vmas > 1)
		qsort(t->vmas, t->nr_vmas, sizeof(*t->vmas), cmp_vma);
	if (t->nr_guards > 1)
		qsort(t->guards, t->nr_guards, sizeof(*t->guards), cmp_guard);
	rc = check_vmas(t, mm, name, off, err);
	return rc ? rc : check_guards(t, mm, name, off, err);
}

int img_load_vmas(struct img_task *t, struct img_file *f, struct errmsg *err)
{
	const uint8_t *data;
	ImgMmEntry *mm;
	uint64_t off;
	size_t len;
	long nr;
	int ret;

	ret = img_file_next(f, &data, &len, &off, err);
	if (ret == 0)
		return img_fail(err, EINVAL, f->name, f->off, "no mm entry");
	if (ret < 0)
		return ret;
	/* Unpacking allocates every VMA: cap their number on the wire first. */
	nr = img_pb_count_field(data, len, MM_VMAS_FIELD);
	if (nr < 0)
		return img_decode_fail(err, f->name, off, "mm entry");
	if (nr > IMG_MAX_VMAS)
		return img_fail(err, E2BIG, f->name, off, "too many vmas: %ld (limit %u)", nr,
				IMG_MAX_VMAS);
	mm = img_mm_entry__unpack(NULL, len, data);
	if (!mm)
		return img_decode_fail(err, f->name, off, "mm entry");
	ret = copy_vmas(t, mm, f->name, off, err);
	img_mm_entry__free_unpacked(mm, NULL);
	if (ret)
		return ret;
	ret = img_file_next(f, &data, &len, &off, err);
	if (ret > 0)
		return img_fail(err, EINVAL, f->name, off, "unexpected second mm entry");
	return ret;
}

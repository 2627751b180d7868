/* Reading CRIU images into the per-task lazy page index (see images.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "criu-images.pb-c.h"
#include "img_file.h"
#include "images.h"

/* vma_entry.status bits, as CRIU defines them. */
#define VMA_AREA_REGULAR (1u << 0)
#define VMA_AREA_VSYSCALL (1u << 2)
#define VMA_AREA_VDSO (1u << 3)
#define VMA_AREA_GUARD (1u << 16) /* CRIU 4.2: a guard region, not a VMA (see images.h) */

#define MM_VMAS_FIELD 14 /* mm_entry.vmas */

#define IMG_NAME_MAX 64

/* CRIU registers a VMA with userfaultfd on restore exactly when this holds. */
static bool vma_is_lazy(uint32_t flags, uint32_t status)
{
	return (flags & MAP_ANONYMOUS) && (flags & MAP_PRIVATE) && !(flags & MAP_LOCKED) &&
	       !(status & VMA_AREA_VDSO) && !(status & VMA_AREA_VSYSCALL) &&
	       (status & VMA_AREA_REGULAR);
}

static int decode_fail(struct errmsg *err, const char *file, uint64_t off, const char *what)
{
	return img_fail(err, file, off, "cannot decode %s (bad protobuf message)", what);
}

/* ---- inventory.img, pstree.img ---- */

static int load_inventory(struct img_set *set, struct errmsg *err)
{
	const char *name = "inventory.img";
	ImgInventoryEntry *ie;
	struct img_file f;
	const uint8_t *data;
	uint64_t off;
	size_t len;
	int ret;

	if (img_file_open(&f, set->dirfd, name, IMG_INVENTORY_MAGIC, false, err))
		return -1;
	ret = img_file_next(&f, &data, &len, &off, err);
	if (ret == 0)
		img_fail(err, name, f.off, "no inventory entry");
	if (ret <= 0)
		goto out;
	ret = -1;
	ie = img_inventory_entry__unpack(NULL, len, data);
	if (!ie) {
		decode_fail(err, name, off, "inventory entry");
		goto out;
	}
	set->img_version = ie->img_version;
	img_inventory_entry__free_unpacked(ie, NULL);
	ret = 0;
out:
	img_file_close(&f);
	return ret;
}

static int pstree_task(struct img_task *t, const uint8_t *data, size_t len, uint64_t off,
		       const char *name, struct errmsg *err)
{
	ImgPstreeEntry *pe = img_pstree_entry__unpack(NULL, len, data);
	int ret = 0;

	if (!pe)
		return decode_fail(err, name, off, "pstree entry");
	if (pe->pid == 0 || pe->pid > INT32_MAX || pe->ppid > INT32_MAX) {
		ret = img_fail(err, name, off, "bad pid %u (ppid %u)", pe->pid, pe->ppid);
	} else {
		t->pid = pe->pid;
		t->ppid = pe->ppid;
		t->nr_threads = pe->n_threads;
	}
	img_pstree_entry__free_unpacked(pe, NULL);
	return ret;
}

static int load_pstree(struct img_set *set, struct errmsg *err)
{
	const char *name = "pstree.img";
	struct img_file f;
	const uint8_t *data;
	uint64_t off;
	size_t len, nr, i;
	int ret = -1;

	if (img_file_open(&f, set->dirfd, name, IMG_PSTREE_MAGIC, false, err))
		return -1;
	/* Count first: the tasks array is allocated once, at its final, capped size. */
	if (img_file_count(&f, IMG_MAX_TASKS, "tasks", &nr, err))
		goto out;
	if (nr == 0) {
		img_fail(err, name, f.off, "no tasks");
		goto out;
	}
	set->tasks = calloc(nr, sizeof(*set->tasks));
	if (!set->tasks) {
		img_fail(err, name, f.off, "out of memory for %zu tasks", nr);
		goto out;
	}
	for (i = 0; i < nr; i++)
		set->tasks[i].pages_fd = -1;
	set->nr_tasks = nr;
	for (i = 0; i < nr; i++) {
		int r = img_file_next(&f, &data, &len, &off, err);

		if (r == 0)
			img_fail(err, name, f.off, "file changed while reading");
		if (r != 1)
			goto out;
		if (pstree_task(&set->tasks[i], data, len, off, name, err))
			goto out;
	}
	ret = 0;
out:
	img_file_close(&f);
	return ret;
}

static int cmp_pid(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

static int check_dup_pids(const struct img_set *set, struct errmsg *err)
{
	int32_t *pids = malloc(set->nr_tasks * sizeof(*pids));
	size_t i;
	int ret = 0;

	if (!pids)
		return img_fail(err, "pstree.img", 0, "out of memory");
	for (i = 0; i < set->nr_tasks; i++)
		pids[i] = set->tasks[i].pid;
	qsort(pids, set->nr_tasks, sizeof(*pids), cmp_pid);
	for (i = 1; i < set->nr_tasks; i++) {
		if (pids[i] == pids[i - 1]) {
			ret = img_fail(err, "pstree.img", 0, "duplicate pid %d", pids[i]);
			break;
		}
	}
	free(pids);
	return ret;
}

/* ---- mm-PID.img ---- */

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
	return img_fail(err, name, off, "vma %zu%s [0x%llx-0x%llx)%s", i, guard ? " (guard)" : "",
			(unsigned long long)start, (unsigned long long)end, what);
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

	for (i = 0; i < mm->n_vmas; i++) {
		if (check_entry(mm->vmas[i], i, name, off, err))
			return -1;
		ng += entry_is_guard(mm->vmas[i]);
	}
	if (mm->n_vmas > ng && !(t->vmas = calloc(mm->n_vmas - ng, sizeof(*t->vmas))))
		return img_fail(err, name, off, "out of memory for %zu vmas", mm->n_vmas - ng);
	if (ng && !(t->guards = calloc(ng, sizeof(*t->guards))))
		return img_fail(err, name, off, "out of memory for %zu guards", ng);
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
	if (check_vmas(t, mm, name, off, err) || check_guards(t, mm, name, off, err))
		return -1;
	return 0;
}

static int load_vmas(struct img_task *t, struct img_file *f, struct errmsg *err)
{
	const uint8_t *data;
	ImgMmEntry *mm;
	uint64_t off;
	size_t len;
	long nr;
	int ret;

	ret = img_file_next(f, &data, &len, &off, err);
	if (ret == 0)
		return img_fail(err, f->name, f->off, "no mm entry");
	if (ret < 0)
		return -1;
	/* Unpacking allocates every VMA: cap their number on the wire first. */
	nr = img_pb_count_field(data, len, MM_VMAS_FIELD);
	if (nr < 0)
		return decode_fail(err, f->name, off, "mm entry");
	if (nr > IMG_MAX_VMAS)
		return img_fail(err, f->name, off, "too many vmas: %ld (limit %u)", nr,
				IMG_MAX_VMAS);
	mm = img_mm_entry__unpack(NULL, len, data);
	if (!mm)
		return decode_fail(err, f->name, off, "mm entry");
	ret = copy_vmas(t, mm, f->name, off, err);
	img_mm_entry__free_unpacked(mm, NULL);
	if (ret)
		return -1;
	ret = img_file_next(f, &data, &len, &off, err);
	if (ret > 0)
		return img_fail(err, f->name, off, "unexpected second mm entry");
	return ret;
}

/* ---- pagemap-PID.img -> extents ---- */

/* Index of the first guard that ends above addr (n if none): guards are sorted and disjoint. */
static size_t guard_above(const struct img_guard *g, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct img_guard *guard_in(const struct img_guard *g, size_t n, uint64_t start,
					uint64_t end)
{
	size_t i = guard_above(g, n, start);

	return i < n && g[i].start < end ? &g[i] : NULL;
}

const struct img_guard *img_task_guard(const struct img_task *t, uint64_t start, uint64_t end)
{
	return guard_in(t->guards, t->nr_guards, start, end);
}

/*
 * Builds the extent list in one sweep over the (sorted) pagemap entries and
 * the (sorted) VMAs. Everything below cursor has been dealt with.
 */
struct ext_builder {
	const struct img_vma *vmas;
	size_t nr_vmas;
	const struct img_guard *guards;
	size_t nr_guards;
	size_t v; /* first VMA that may still end above cursor */
	uint64_t cursor;
	struct img_extent *ext;
	size_t nr, cap;
	uint64_t lazy_pages, zero_pages;
	const char *name; /* for errors */
};

static int push(struct ext_builder *b, const struct img_extent *x, uint64_t off,
		struct errmsg *err)
{
	struct img_extent *e;

	if (b->nr == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;

		e = realloc(b->ext, cap * sizeof(*e));
		if (!e)
			return img_fail(err, b->name, off, "out of memory for %zu extents", cap);
		b->ext = e;
		b->cap = cap;
	}
	b->ext[b->nr++] = *x;
	if (x->zero)
		b->zero_pages += (x->end - x->start) / IMG_PAGE_SIZE;
	else
		b->lazy_pages += (x->end - x->start) / IMG_PAGE_SIZE;
	return 0;
}

/*
 * Add the extent [start, end) minus the guard regions: no extent holds a guard page.
 * Each part of a local data extent keeps the offset of its own first page.
 */
static int emit(struct ext_builder *b, uint64_t start, uint64_t end, bool zero, bool remote,
		uint64_t pages_off, uint64_t off, struct errmsg *err)
{
	struct img_extent x = {.zero = zero, .remote = remote};
	size_t g = guard_above(b->guards, b->nr_guards, start);
	uint64_t first = start;

	while (start < end) {
		const struct img_guard *gd = g < b->nr_guards ? &b->guards[g] : NULL;
		uint64_t hi = gd && gd->start < end ? gd->start : end;

		if (start < hi) {
			x.start = start;
			x.end = hi;
			if (!zero && !remote)
				x.pages_off = pages_off + (start - first);
			if (push(b, &x, off, err))
				return -1;
		}
		if (hi == end)
			break;
		start = gd->end; /* above start: gd is the first guard ending above it */
		g++;
	}
	return 0;
}

/*
 * Emit zero extents for the lazy VMA parts in [cursor, addr): nothing covers
 * them. Zero runs come out maximal within a VMA; they are not merged across
 * VMA boundaries because UFFDIO_ZEROPAGE/COPY must stay within one VMA.
 */
static int zero_until(struct ext_builder *b, uint64_t addr, uint64_t off, struct errmsg *err)
{
	while (b->v < b->nr_vmas && b->vmas[b->v].start < addr) {
		const struct img_vma *vma = &b->vmas[b->v];
		uint64_t lo = vma->start > b->cursor ? vma->start : b->cursor;
		uint64_t hi = vma->end < addr ? vma->end : addr;

		if (vma->lazy && lo < hi && emit(b, lo, hi, true, false, 0, off, err))
			return -1;
		if (vma->end > addr)
			break;
		b->v++;
	}
	if (addr > b->cursor)
		b->cursor = addr;
	return 0;
}

struct pm_entry {
	uint64_t start, end;
	uint32_t flags;
	uint64_t pages_off; /* where its data starts in pages-N.img, if PE_PRESENT */
	uint64_t off;	    /* in the pagemap file, for errors */
};

static int lazy_fail(struct ext_builder *b, const struct pm_entry *pe, uint64_t addr,
		     const char *where, struct errmsg *err)
{
	return img_fail(err, b->name, pe->off, "PE_LAZY entry 0x%llx+%llu pages: page 0x%llx %s",
			(unsigned long long)pe->start,
			(unsigned long long)((pe->end - pe->start) / IMG_PAGE_SIZE),
			(unsigned long long)addr, where);
}

/* CRIU dumps no page of a guard region: data for one would replace the guard on restore. */
static int guard_fail(struct ext_builder *b, const struct pm_entry *pe, const struct img_guard *g,
		      struct errmsg *err)
{
	uint64_t addr = g->start > pe->start ? g->start : pe->start;

	return img_fail(err, b->name, pe->off,
			"PE_LAZY entry 0x%llx+%llu pages: page 0x%llx is in the guard region "
			"[0x%llx-0x%llx) (a guard has no data: installing a page would remove it)",
			(unsigned long long)pe->start,
			(unsigned long long)((pe->end - pe->start) / IMG_PAGE_SIZE),
			(unsigned long long)addr, (unsigned long long)g->start,
			(unsigned long long)g->end);
}

/*
 * A PE_LAZY entry becomes data extents, one per VMA it spans; each of its
 * pages must be in a lazy VMA, or restore would not have registered it.
 */
static int lazy_entry(struct ext_builder *b, const struct pm_entry *pe, struct errmsg *err)
{
	const struct img_guard *g = guard_in(b->guards, b->nr_guards, pe->start, pe->end);
	bool remote = !(pe->flags & IMG_PE_PRESENT);
	uint64_t addr = pe->start;
	size_t i = b->v;

	if (g)
		return guard_fail(b, pe, g, err);
	while (addr < pe->end) {
		const struct img_vma *vma;
		uint64_t hi;

		while (i < b->nr_vmas && b->vmas[i].end <= addr)
			i++;
		vma = i < b->nr_vmas ? &b->vmas[i] : NULL;
		if (!vma || vma->start > addr)
			return lazy_fail(b, pe, addr, "is outside every VMA", err);
		if (!vma->lazy)
			return lazy_fail(b, pe, addr, "is in a non-lazy VMA", err);
		hi = vma->end < pe->end ? vma->end : pe->end;
		if (emit(b, addr, hi, false, remote, pe->pages_off + (addr - pe->start), pe->off,
			 err))
			return -1;
		addr = hi;
	}
	return 0;
}

/* Account for one pagemap entry; any entry, lazy or not, covers its pages (no zero fill). */
static int take_entry(struct ext_builder *b, const struct pm_entry *pe, struct errmsg *err)
{
	if (zero_until(b, pe->start, pe->off, err))
		return -1;
	if ((pe->flags & IMG_PE_LAZY) && lazy_entry(b, pe, err))
		return -1;
	b->cursor = pe->end;
	while (b->v < b->nr_vmas && b->vmas[b->v].end <= pe->end)
		b->v++;
	return 0;
}

/* Fill in pe from a decoded entry, with CRIU's defaults for images older than flags / nr_pages. */
static int pm_entry_decode(struct pm_entry *pe, const ImgPagemapEntry *e, const char *name,
			   struct errmsg *err)
{
	uint64_t nr = e->has_nr_pages ? e->nr_pages : e->compat_nr_pages;
	uint32_t flags = e->has_flags ? e->flags : 0;

	if (e->has_in_parent && e->in_parent)
		flags |= IMG_PE_PARENT;
	else if (!e->has_flags)
		flags = IMG_PE_PRESENT;
	pe->start = e->vaddr;
	pe->flags = flags;
	if (e->vaddr % IMG_PAGE_SIZE)
		return img_fail(err, name, pe->off, "entry vaddr 0x%llx not page aligned",
				(unsigned long long)e->vaddr);
	if (nr == 0)
		return img_fail(err, name, pe->off, "entry 0x%llx has zero pages",
				(unsigned long long)e->vaddr);
	if (nr > (UINT64_MAX - e->vaddr) / IMG_PAGE_SIZE)
		return img_fail(err, name, pe->off,
				"entry 0x%llx+%llu pages overflows the address space",
				(unsigned long long)e->vaddr, (unsigned long long)nr);
	pe->end = e->vaddr + nr * IMG_PAGE_SIZE;
	if ((flags & IMG_PE_LAZY) && (flags & IMG_PE_PARENT))
		return img_fail(err, name, pe->off,
				"entry 0x%llx: lazy pages in a parent (pre-dump) image are not "
				"supported yet",
				(unsigned long long)e->vaddr);
	return 0;
}

static int check_order(const struct pm_entry *pe, const struct pm_entry *prev, const char *name,
		       struct errmsg *err)
{
	if (pe->start >= prev->end)
		return 0;
	return img_fail(err, name, pe->off, "entry 0x%llx %s (previous 0x%llx-0x%llx)",
			(unsigned long long)pe->start,
			pe->start < prev->start ? "is unsorted" : "overlaps the previous entry",
			(unsigned long long)prev->start, (unsigned long long)prev->end);
}

static int open_pages(int dirfd, struct img_task *t, const char *pm_name, struct errmsg *err)
{
	char name[IMG_NAME_MAX];
	struct stat st;

	snprintf(name, sizeof(name), "pages-%u.img", t->pages_id);
	t->pages_fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (t->pages_fd < 0)
		return img_fail(err, name, 0, "cannot open pages_id %u of %s: %s", t->pages_id,
				pm_name, strerror(errno));
	if (fstat(t->pages_fd, &st) < 0)
		return img_fail(err, name, 0, "fstat: %s", strerror(errno));
	t->pages_size = st.st_size;
	return 0;
}

static int load_pagemap_head(int dirfd, struct img_task *t, struct img_file *f,
			     struct errmsg *err)
{
	ImgPagemapHead *h;
	const uint8_t *data;
	uint64_t off;
	size_t len;
	int ret;

	ret = img_file_next(f, &data, &len, &off, err);
	if (ret == 0)
		return img_fail(err, f->name, f->off, "no pagemap head");
	if (ret < 0)
		return -1;
	h = img_pagemap_head__unpack(NULL, len, data);
	if (!h)
		return decode_fail(err, f->name, off, "pagemap head");
	t->pages_id = h->pages_id;
	img_pagemap_head__free_unpacked(h, NULL);
	return open_pages(dirfd, t, f->name, err);
}

static int pagemap_entries(struct ext_builder *b, struct img_file *f, uint64_t *present,
			   struct errmsg *err)
{
	struct pm_entry prev = {0}, pe;
	const uint8_t *data;
	size_t len, nr, i;

	/* Entries are not stored, but bound the work and the extents array anyway. */
	if (img_file_count(f, IMG_MAX_PAGEMAP_ENTRIES, "pagemap entries", &nr, err))
		return -1;
	for (i = 0; i < nr; i++) {
		ImgPagemapEntry *e;
		int ret;

		ret = img_file_next(f, &data, &len, &pe.off, err);
		if (ret == 0)
			img_fail(err, f->name, f->off, "file changed while reading");
		if (ret != 1)
			return -1;
		e = img_pagemap_entry__unpack(NULL, len, data);
		if (!e)
			return decode_fail(err, f->name, pe.off, "pagemap entry");
		ret = pm_entry_decode(&pe, e, f->name, err);
		img_pagemap_entry__free_unpacked(e, NULL);
		if (ret || (i && check_order(&pe, &prev, f->name, err)))
			return -1;
		/* Every PE_PRESENT entry, lazy or not, takes the next pages in pages-N.img. */
		pe.pages_off = *present * IMG_PAGE_SIZE;
		if (pe.flags & IMG_PE_PRESENT)
			*present += (pe.end - pe.start) / IMG_PAGE_SIZE;
		if (take_entry(b, &pe, err))
			return -1;
		prev = pe;
	}
	return zero_until(b, UINT64_MAX, f->off, err);
}

static int load_pagemap(int dirfd, struct img_task *t, struct img_file *f, struct errmsg *err)
{
	struct ext_builder b = {.vmas = t->vmas,
				.nr_vmas = t->nr_vmas,
				.guards = t->guards,
				.nr_guards = t->nr_guards,
				.name = f->name};
	uint64_t present = 0;
	char name[IMG_NAME_MAX];

	if (load_pagemap_head(dirfd, t, f, err))
		return -1;
	if (pagemap_entries(&b, f, &present, err)) {
		free(b.ext);
		return -1;
	}
	t->extents = b.ext;
	t->nr_extents = b.nr;
	t->lazy_pages = b.lazy_pages;
	t->zero_pages = b.zero_pages;
	if (t->pages_size / IMG_PAGE_SIZE < present) {
		snprintf(name, sizeof(name), "pages-%u.img", t->pages_id);
		return img_fail(err, name, t->pages_size,
				"file too short: %llu present pages in %s need %llu bytes",
				(unsigned long long)present, f->name,
				(unsigned long long)(present * IMG_PAGE_SIZE));
	}
	return 0;
}

/* ---- per task ---- */

static int load_task(int dirfd, struct img_task *t, struct errmsg *err)
{
	char mm_name[IMG_NAME_MAX], pm_name[IMG_NAME_MAX];
	struct img_file mm, pm;
	int mm_ret, pm_ret, ret = -1;

	snprintf(mm_name, sizeof(mm_name), "mm-%d.img", t->pid);
	snprintf(pm_name, sizeof(pm_name), "pagemap-%d.img", t->pid);
	mm_ret = img_file_open(&mm, dirfd, mm_name, IMG_MM_MAGIC, true, err);
	if (mm_ret < 0)
		return -1;
	pm_ret = img_file_open(&pm, dirfd, pm_name, IMG_PAGEMAP_MAGIC, true, err);
	if (pm_ret < 0)
		goto out;
	if (mm_ret == 1 && pm_ret == 1) {
		ret = 0; /* zombie or helper: no memory */
	} else if (mm_ret == 1 || pm_ret == 1) {
		img_fail(err, mm_ret ? mm_name : pm_name, 0, "missing, but %s exists",
			 mm_ret ? pm_name : mm_name);
	} else {
		t->has_mm = true;
		if (!load_vmas(t, &mm, err) && !load_pagemap(dirfd, t, &pm, err))
			ret = 0;
	}
	img_file_close(&pm);
out:
	img_file_close(&mm);
	return ret;
}

int img_set_load(int dirfd, struct img_set *set, struct errmsg *err)
{
	size_t i;

	memset(set, 0, sizeof(*set));
	set->dirfd = dirfd;
	if (load_inventory(set, err) || load_pstree(set, err) || check_dup_pids(set, err))
		goto fail;
	for (i = 0; i < set->nr_tasks; i++)
		if (load_task(dirfd, &set->tasks[i], err))
			goto fail;
	return 0;
fail:
	img_set_free(set);
	return -1;
}

const struct img_task *img_set_find(const struct img_set *set, int32_t pid)
{
	size_t i;

	for (i = 0; i < set->nr_tasks; i++)
		if (set->tasks[i].pid == pid)
			return &set->tasks[i];
	return NULL;
}

void img_set_free(struct img_set *set)
{
	size_t i;

	for (i = 0; i < set->nr_tasks; i++) {
		struct img_task *t = &set->tasks[i];

		if (t->pages_fd >= 0)
			close(t->pages_fd);
		free(t->vmas);
		free(t->guards);
		free(t->extents);
	}
	free(set->tasks);
	memset(set, 0, sizeof(*set));
	set->dirfd = -1;
}

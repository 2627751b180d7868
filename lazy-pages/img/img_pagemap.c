/*
 * pagemap-PID.img made into a task's extents: data extents for its PE_LAZY entries, zero
 * extents for the lazy VMA parts no entry covers, none over a guard region (images.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "criu-images.pb-c.h"
#include "img_load.h"

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

static int push(struct ext_builder *b, const struct img_extent *x, uint64_t off, struct errmsg *err)
{
	struct img_extent *e;

	if (b->nr == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;

		e = realloc(b->ext, cap * sizeof(*e));
		if (!e)
			return img_fail(err, ENOMEM, b->name, off, "out of memory for %zu extents",
					cap);
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
	size_t g = img_guard_above(b->guards, b->nr_guards, start);
	uint64_t first = start;
	int rc;

	while (start < end) {
		const struct img_guard *gd = g < b->nr_guards ? &b->guards[g] : NULL;
		uint64_t hi = gd && gd->start < end ? gd->start : end;

		if (start < hi) {
			x.start = start;
			x.end = hi;
			if (!zero && !remote)
				x.pages_off = pages_off + (start - first);
			rc = push(b, &x, off, err);
			if (rc)
				return rc;
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

		if (vma->lazy && lo < hi) {
			int rc = emit(b, lo, hi, true, false, 0, off, err);

			if (rc)
				return rc;
		}
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
	return img_fail(err, EINVAL, b->name, pe->off,
			"PE_LAZY entry 0x%llx+%llu pages: page 0x%llx %s",
			(unsigned long long)pe->start,
			(unsigned long long)((pe->end - pe->start) / IMG_PAGE_SIZE),
			(unsigned long long)addr, where);
}

/* CRIU dumps no page of a guard region: data for one would replace the guard on restore. */
static int guard_fail(struct ext_builder *b, const struct pm_entry *pe, const struct img_guard *g,
		      struct errmsg *err)
{
	uint64_t addr = g->start > pe->start ? g->start : pe->start;

	return img_fail(err, EINVAL, b->name, pe->off,
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
	const struct img_guard *g = img_guard_in(b->guards, b->nr_guards, pe->start, pe->end);
	bool remote = !(pe->flags & IMG_PE_PRESENT);
	uint64_t addr = pe->start;
	size_t i = b->v;
	int rc;

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
		rc = emit(b, addr, hi, false, remote, pe->pages_off + (addr - pe->start), pe->off,
			  err);
		if (rc)
			return rc;
		addr = hi;
	}
	return 0;
}

/* Account for one pagemap entry; any entry, lazy or not, covers its pages (no zero fill). */
static int take_entry(struct ext_builder *b, const struct pm_entry *pe, struct errmsg *err)
{
	int rc = zero_until(b, pe->start, pe->off, err);

	if (!rc && (pe->flags & IMG_PE_LAZY))
		rc = lazy_entry(b, pe, err);
	if (rc)
		return rc;
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
		return img_fail(err, EINVAL, name, pe->off, "entry vaddr 0x%llx not page aligned",
				(unsigned long long)e->vaddr);
	if (nr == 0)
		return img_fail(err, EINVAL, name, pe->off, "entry 0x%llx has zero pages",
				(unsigned long long)e->vaddr);
	if (nr > (UINT64_MAX - e->vaddr) / IMG_PAGE_SIZE)
		return img_fail(err, EINVAL, name, pe->off,
				"entry 0x%llx+%llu pages overflows the address space",
				(unsigned long long)e->vaddr, (unsigned long long)nr);
	pe->end = e->vaddr + nr * IMG_PAGE_SIZE;
	if ((flags & IMG_PE_LAZY) && (flags & IMG_PE_PARENT))
		return img_fail(err, EINVAL, name, pe->off,
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
	return img_fail(err, EINVAL, name, pe->off, "entry 0x%llx %s (previous 0x%llx-0x%llx)",
			(unsigned long long)pe->start,
			pe->start < prev->start ? "is unsorted" : "overlaps the previous entry",
			(unsigned long long)prev->start, (unsigned long long)prev->end);
}

static int open_pages(int dirfd, struct img_task *t, const char *pm_name, struct errmsg *err)
{
	char name[IMG_NAME_MAX];
	struct stat st;
	int e;

	snprintf(name, sizeof(name), "pages-%u.img", t->pages_id);
	t->pages_fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (t->pages_fd < 0) {
		e = errno;
		return img_fail(err, e, name, 0, "cannot open pages_id %u of %s: %s", t->pages_id,
				pm_name, strerror(e));
	}
	if (fstat(t->pages_fd, &st) < 0) {
		e = errno;
		return img_fail(err, e, name, 0, "fstat: %s", strerror(e));
	}
	t->pages_size = st.st_size;
	return 0;
}

static int load_pagemap_head(int dirfd, struct img_task *t, struct img_file *f, struct errmsg *err)
{
	ImgPagemapHead *h;
	const uint8_t *data;
	uint64_t off;
	size_t len;
	int ret;

	ret = img_file_next(f, &data, &len, &off, err);
	if (ret == 0)
		return img_fail(err, EINVAL, f->name, f->off, "no pagemap head");
	if (ret < 0)
		return ret;
	h = img_pagemap_head__unpack(NULL, len, data);
	if (!h)
		return img_decode_fail(err, f->name, off, "pagemap head");
	t->pages_id = h->pages_id;
	img_pagemap_head__free_unpacked(h, NULL);
	return open_pages(dirfd, t, f->name, err);
}

/* The next pagemap entry into pe (pe->off set), checked. */
static int next_entry(struct img_file *f, struct pm_entry *pe, struct errmsg *err)
{
	ImgPagemapEntry *e;
	const uint8_t *data;
	size_t len;
	int ret;

	ret = img_file_next(f, &data, &len, &pe->off, err);
	if (ret == 0)
		return img_fail(err, EINVAL, f->name, f->off, "file changed while reading");
	if (ret < 0)
		return ret;
	e = img_pagemap_entry__unpack(NULL, len, data);
	if (!e)
		return img_decode_fail(err, f->name, pe->off, "pagemap entry");
	ret = pm_entry_decode(pe, e, f->name, err);
	img_pagemap_entry__free_unpacked(e, NULL);
	return ret;
}

static int pagemap_entries(struct ext_builder *b, struct img_file *f, uint64_t *present,
			   struct errmsg *err)
{
	struct pm_entry prev = {0}, pe;
	size_t nr, i;
	int ret;

	/* Entries are not stored, but bound the work and the extents array anyway. */
	ret = img_file_count(f, IMG_MAX_PAGEMAP_ENTRIES, "pagemap entries", &nr, err);
	if (ret)
		return ret;
	for (i = 0; i < nr; i++) {
		ret = next_entry(f, &pe, err);
		if (!ret && i)
			ret = check_order(&pe, &prev, f->name, err);
		if (ret)
			return ret;
		/* Every PE_PRESENT entry, lazy or not, takes the next pages in pages-N.img. */
		pe.pages_off = *present * IMG_PAGE_SIZE;
		if (pe.flags & IMG_PE_PRESENT)
			*present += (pe.end - pe.start) / IMG_PAGE_SIZE;
		ret = take_entry(b, &pe, err);
		if (ret)
			return ret;
		prev = pe;
	}
	return zero_until(b, UINT64_MAX, f->off, err);
}

int img_load_pagemap(int dirfd, struct img_task *t, struct img_file *f, struct errmsg *err)
{
	struct ext_builder b = {.vmas = t->vmas,
				.nr_vmas = t->nr_vmas,
				.guards = t->guards,
				.nr_guards = t->nr_guards,
				.name = f->name};
	uint64_t present = 0;
	char name[IMG_NAME_MAX];
	int ret;

	ret = load_pagemap_head(dirfd, t, f, err);
	if (ret)
		return ret;
	ret = pagemap_entries(&b, f, &present, err);
	if (ret) {
		free(b.ext);
		return ret;
	}
	t->extents = b.ext;
	t->nr_extents = b.nr;
	t->lazy_pages = b.lazy_pages;
	t->zero_pages = b.zero_pages;
	if (t->pages_size / IMG_PAGE_SIZE < present) {
		snprintf(name, sizeof(name), "pages-%u.img", t->pages_id);
		return img_fail(err, EINVAL, name, t->pages_size,
				"file too short: %llu present pages in %s need %llu bytes",
				(unsigned long long)present, f->name,
				(unsigned long long)(present * IMG_PAGE_SIZE));
	}
	return 0;
}

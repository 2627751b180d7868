/*
 * libFuzzer harness: the CRIU image reader (images.c, img_file.c) on hostile image dirs.
 *
 * Input: parts separated by "#LWFUZZ#" (fuzz_util.h), each "NAME\0CONTENT": a file of the
 * images dir (NAME: 1..63 of [A-Za-z0-9._-], not starting with '.'; other parts are skipped).
 * A pages-N.img part's content is its size in pages instead (4 bytes little endian, at most
 * 2^20): the reader only looks at the size of a pages file, and a sparse file costs nothing.
 * The files are written into a directory of this process (under /dev/shm), which then holds
 * exactly this input's files (those the last input had the same are not written again); then
 * img_set_load, the invariants images.h promises, and img_set_free.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "img/images.h"

#define MAX_PARTS 16

/* The files of the last iteration: one left as it is costs no write (most mutations change
 * one file). */
static struct {
	char name[64];
	uint64_t hash;
	bool used;
} last[MAX_PARTS];
static size_t nr_last;

static uint64_t hash(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull ^ n;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static char dir[4096];
static int dirfd_ = -1;
static int base_fd = -1;

static void cleanup(void)
{
	if (dir[0])
		fuzz_rm_tree(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_mkdtemp(dir, sizeof(dir), "images");
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_ < 0)
		fuzz_die("cannot open the scratch directory");
	atexit(cleanup);
	return 0;
}

static bool is_pages(const char *name)
{
	return !strncmp(name, "pages-", 6);
}

/* The part's file name into name: its length + 1 (the content follows), or 0 to skip it. */
static size_t part_name(const uint8_t *p, size_t n, char name[64])
{
	const uint8_t *z = memchr(p, '\0', n < 64 ? n : 64);
	size_t len = z ? (size_t)(z - p) : 0;

	if (!len || p[0] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	memcpy(name, p, len);
	name[len] = '\0';
	return len + 1;
}

static void check_task(const struct img_set *set, const struct img_task *t)
{
	uint64_t lazy = 0, zero = 0;

	if (img_set_find(set, t->pid) != t)
		fuzz_die("img_set_find does not find a loaded task");
	if (t->pid <= 0)
		fuzz_die("task with a pid <= 0");
	if (!t->has_mm) {
		if (t->nr_vmas || t->nr_extents || t->nr_guards || t->pages_fd >= 0)
			fuzz_die("a task without mm has VMAs, extents or a pages fd");
		return;
	}
	if (t->pages_fd < 0)
		fuzz_die("a task with mm and no pages fd");
	for (size_t i = 0; i < t->nr_vmas; i++) {
		const struct img_vma *v = &t->vmas[i];
		if (v->start % IMG_PAGE_SIZE || v->end % IMG_PAGE_SIZE || v->start >= v->end)
			fuzz_die("VMA not page aligned or empty");
		if (i && v->start < t->vmas[i - 1].end)
			fuzz_die("VMAs unsorted or overlapping");
	}
	for (size_t i = 0; i < t->nr_guards; i++) {
		const struct img_guard *g = &t->guards[i];
		if (g->start % IMG_PAGE_SIZE || g->end % IMG_PAGE_SIZE || g->start >= g->end)
			fuzz_die("guard not page aligned or empty");
		if (i && g->start < t->guards[i - 1].end)
			fuzz_die("guards unsorted or overlapping");
		if (img_task_guard(t, g->start, g->end) != g)
			fuzz_die("img_task_guard does not find a guard");
		/* every page of a guard is in some VMA */
		size_t v = 0;
		for (uint64_t a = g->start; a < g->end;) {
			while (v < t->nr_vmas && t->vmas[v].end <= a)
				v++;
			if (v == t->nr_vmas || t->vmas[v].start > a)
				fuzz_die("guard page outside every VMA");
			a = t->vmas[v].end;
		}
	}
	size_t v = 0;
	for (size_t i = 0; i < t->nr_extents; i++) {
		const struct img_extent *x = &t->extents[i];
		uint64_t len = x->end - x->start;
		if (x->start % IMG_PAGE_SIZE || x->end % IMG_PAGE_SIZE || x->start >= x->end)
			fuzz_die("extent not page aligned or empty");
		if (i && x->start < t->extents[i - 1].end)
			fuzz_die("extents unsorted or overlapping");
		if (x->zero && x->remote)
			fuzz_die("an extent both zero and remote");
		if (img_task_guard(t, x->start, x->end))
			fuzz_die("extent over a guard page");
		while (v < t->nr_vmas && t->vmas[v].end <= x->start)
			v++;
		if (v == t->nr_vmas || t->vmas[v].start > x->start || t->vmas[v].end < x->end)
			fuzz_die("extent not inside one VMA");
		if (!t->vmas[v].lazy)
			fuzz_die("extent in a VMA that is not lazy");
		if (!x->zero && !x->remote &&
		    (x->pages_off % IMG_PAGE_SIZE || x->pages_off > t->pages_size ||
		     len > t->pages_size - x->pages_off))
			fuzz_die("data extent outside its pages file");
		if (x->zero)
			zero += len / IMG_PAGE_SIZE;
		else
			lazy += len / IMG_PAGE_SIZE;
	}
	if (lazy != t->lazy_pages || zero != t->zero_pages)
		fuzz_die("lazy_pages or zero_pages do not add up");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[MAX_PARTS];
	size_t n = fuzz_split(data, size, parts, MAX_PARTS);

	/* per iteration: libFuzzer opens fds of its own between them (the symbolizer) */
	base_fd = fuzz_lowest_free_fd();
	for (size_t k = 0; k < nr_last; k++)
		last[k].used = false;
	/* later parts of the same name win, as when written in order */
	bool later[MAX_PARTS] = {false};
	char names[MAX_PARTS][64];
	size_t skips[MAX_PARTS];
	for (size_t i = 0; i < n; i++) {
		skips[i] = part_name(parts[i].p, parts[i].n, names[i]);
		for (size_t j = 0; skips[i] && j < i; j++)
			if (skips[j] && !strcmp(names[i], names[j]))
				later[j] = true;
	}
	size_t nr_now = 0;
	typeof(last[0]) now[MAX_PARTS];
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		size_t skip = skips[i];
		if (!skip || later[i])
			continue;
		const uint8_t *p = parts[i].p + skip;
		size_t len = parts[i].n - skip;
		uint64_t h = hash(p, len) ^ (is_pages(name) ? 0x9e3779b97f4a7c15ull : 0);
		bool same = false;
		for (size_t k = 0; k < nr_last; k++)
			if (!strcmp(last[k].name, name)) {
				last[k].used = true;
				same = last[k].hash == h;
			}
		snprintf(now[nr_now].name, sizeof(now[0].name), "%s", name);
		now[nr_now++].hash = h;
		if (same)
			continue;
		if (is_pages(name)) {
			uint32_t pages = 0;
			for (size_t b = 0; b < 4 && b < len; b++)
				pages |= (uint32_t)p[b] << (8 * b);
			pages &= (1u << 20) - 1;
			int fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0 || ftruncate(fd, (off_t)pages * IMG_PAGE_SIZE))
				fuzz_die("cannot write a pages file");
			close(fd);
		} else if (fuzz_write_file(dirfd_, name, p, len)) {
			fuzz_die("cannot write an image file");
		}
	}
	for (size_t k = 0; k < nr_last; k++)
		if (!last[k].used && unlinkat(dirfd_, last[k].name, 0))
			fuzz_die("cannot remove an image file");
	memcpy(last, now, sizeof(now[0]) * nr_now);
	nr_last = nr_now;

	struct img_set set;
	struct errmsg err;
	err.msg[0] = '\0';
	memset(&set, 0xa5, sizeof(set));
	if (img_set_load(dirfd_, &set, &err)) {
		if (set.tasks || set.nr_tasks)
			fuzz_die("a failed load left tasks behind");
		if (!err.msg[0] || !memchr(err.msg, '\0', sizeof(err.msg)))
			fuzz_die("a failed load without a message");
	} else {
		if (!set.nr_tasks || !set.tasks || set.dirfd != dirfd_)
			fuzz_die("a loaded set without tasks");
		for (size_t i = 0; i < set.nr_tasks; i++)
			check_task(&set, &set.tasks[i]);
		if (img_set_find(&set, 0) || img_set_find(&set, -1))
			fuzz_die("img_set_find finds pid 0 or -1");
		img_set_free(&set);
	}
	if (fuzz_lowest_free_fd() != base_fd)
		fuzz_die("an fd leaked");
	return 0;
}

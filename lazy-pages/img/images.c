/*
 * Reading CRIU images into the per-task lazy page index (see images.h): the set of tasks
 * (inventory.img, pstree.img) and each task's memory through img_load.h's parts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "criu-images.pb-c.h"
#include "img_load.h"

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

	ret = img_file_open(&f, set->dirfd, name, IMG_INVENTORY_MAGIC, false, err);
	if (ret)
		return ret;
	ret = img_file_next(&f, &data, &len, &off, err);
	if (ret == 0)
		ret = img_fail(err, EINVAL, name, f.off, "no inventory entry");
	if (ret < 0)
		goto out;
	ie = img_inventory_entry__unpack(NULL, len, data);
	if (!ie) {
		ret = img_decode_fail(err, name, off, "inventory entry");
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
		return img_decode_fail(err, name, off, "pstree entry");
	if (pe->pid == 0 || pe->pid > INT32_MAX || pe->ppid > INT32_MAX) {
		ret = img_fail(err, EINVAL, name, off, "bad pid %u (ppid %u)", pe->pid, pe->ppid);
	} else {
		t->pid = pe->pid;
		t->ppid = pe->ppid;
		t->nr_threads = pe->n_threads;
	}
	img_pstree_entry__free_unpacked(pe, NULL);
	return ret;
}

/* The tasks array, allocated once at its final, capped size (the entries counted first). */
static int alloc_tasks(struct img_set *set, struct img_file *f, struct errmsg *err)
{
	size_t nr, i;
	int ret = img_file_count(f, IMG_MAX_TASKS, "tasks", &nr, err);

	if (ret)
		return ret;
	if (nr == 0)
		return img_fail(err, EINVAL, f->name, f->off, "no tasks");
	set->tasks = calloc(nr, sizeof(*set->tasks));
	if (!set->tasks)
		return img_fail(err, ENOMEM, f->name, f->off, "out of memory for %zu tasks", nr);
	for (i = 0; i < nr; i++)
		set->tasks[i].pages_fd = -1;
	set->nr_tasks = nr;
	return 0;
}

static int load_pstree(struct img_set *set, struct errmsg *err)
{
	const char *name = "pstree.img";
	struct img_file f;
	const uint8_t *data;
	uint64_t off;
	size_t len, i;
	int ret;

	ret = img_file_open(&f, set->dirfd, name, IMG_PSTREE_MAGIC, false, err);
	if (ret)
		return ret;
	ret = alloc_tasks(set, &f, err);
	for (i = 0; !ret && i < set->nr_tasks; i++) {
		ret = img_file_next(&f, &data, &len, &off, err);
		if (ret == 0)
			ret = img_fail(err, EINVAL, name, f.off, "file changed while reading");
		if (ret > 0)
			ret = pstree_task(&set->tasks[i], data, len, off, name, err);
	}
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
		return img_fail(err, ENOMEM, "pstree.img", 0, "out of memory");
	for (i = 0; i < set->nr_tasks; i++)
		pids[i] = set->tasks[i].pid;
	qsort(pids, set->nr_tasks, sizeof(*pids), cmp_pid);
	for (i = 1; i < set->nr_tasks; i++) {
		if (pids[i] == pids[i - 1]) {
			ret = img_fail(err, EINVAL, "pstree.img", 0, "duplicate pid %d", pids[i]);
			break;
		}
	}
	free(pids);
	return ret;
}

/* ---- per task ---- */

static int load_task(int dirfd, struct img_task *t, struct errmsg *err)
{
	char mm_name[IMG_NAME_MAX], pm_name[IMG_NAME_MAX];
	struct img_file mm, pm;
	int mm_ret, pm_ret, ret;

	snprintf(mm_name, sizeof(mm_name), "mm-%d.img", t->pid);
	snprintf(pm_name, sizeof(pm_name), "pagemap-%d.img", t->pid);
	mm_ret = img_file_open(&mm, dirfd, mm_name, IMG_MM_MAGIC, true, err);
	if (mm_ret < 0)
		return mm_ret;
	pm_ret = img_file_open(&pm, dirfd, pm_name, IMG_PAGEMAP_MAGIC, true, err);
	if (pm_ret < 0) {
		ret = pm_ret;
		goto out;
	}
	if (mm_ret == 1 && pm_ret == 1) {
		ret = 0; /* zombie or helper: no memory */
	} else if (mm_ret == 1 || pm_ret == 1) {
		ret = img_fail(err, ENOENT, mm_ret ? mm_name : pm_name, 0, "missing, but %s exists",
			       mm_ret ? pm_name : mm_name);
	} else {
		t->has_mm = true;
		ret = img_load_vmas(t, &mm, err);
		if (!ret)
			ret = img_load_pagemap(dirfd, t, &pm, err);
	}
	img_file_close(&pm);
out:
	img_file_close(&mm);
	return ret;
}

int img_set_load(int dirfd, struct img_set *set, struct errmsg *err)
{
	int rc;

	memset(set, 0, sizeof(*set));
	set->dirfd = dirfd;
	rc = load_inventory(set, err);
	if (!rc)
		rc = load_pstree(set, err);
	if (!rc)
		rc = check_dup_pids(set, err);
	for (size_t i = 0; !rc && i < set->nr_tasks; i++)
		rc = load_task(dirfd, &set->tasks[i], err);
	if (rc)
		img_set_free(set);
	return rc;
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

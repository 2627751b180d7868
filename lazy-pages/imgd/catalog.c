/*
 * The images criu-imgd serves: loaded on first open, shared by every session
 * on them, freed with the last one. An id names one directory entry below
 * --root (never a path: wire_id_ok refuses '/', '.' and '..'), opened without
 * following a symlink.
 */
#include "imgd.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

int catalog_init(struct imgd_catalog *c, const struct imgd_opts *o)
{
	memset(c, 0, sizeof(*c));
	c->rootfd = -1;
	if (o->root) {
		c->rootfd = open(o->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->rootfd < 0) {
			pr_err("cannot open --root %s: %s", o->root, strerror(errno));
			return -1;
		}
		return 0;
	}
	c->dir = o->dir;
	static char base[WIRE_MAX_ID + 1];
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", o->dir);
	snprintf(base, sizeof(base), "%s", basename(tmp));
	c->dir_id = base;
	return 0;
}

static int open_dir(struct imgd_catalog *c, const char *id)
{
	if (c->rootfd >= 0)
		return openat(c->rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (strcmp(id, "default") && strcmp(id, c->dir_id)) {
		errno = ENOENT;
		return -1;
	}
	return open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* The task's lazy data as runs of the pages file, merged where they touch. */
static int build_dext(struct imgd_image *img, size_t ti)
{
	const struct img_task *t = &img->set.tasks[ti];
	size_t n = 0;

	img->dext[ti] = calloc(t->nr_extents ? t->nr_extents : 1, sizeof(struct imgd_dext));
	if (!img->dext[ti])
		return -1;
	for (size_t k = 0; k < t->nr_extents; k++) {
		const struct img_extent *x = &t->extents[k];
		uint64_t len = x->end - x->start;
		if (x->zero)
			continue;
		if (n && img->dext[ti][n - 1].end == x->pages_off)
			img->dext[ti][n - 1].end += len;
		else
			img->dext[ti][n++] = (struct imgd_dext){x->pages_off, x->pages_off + len};
	}
	img->ndext[ti] = n;
	return 0;
}

static int load(struct imgd_image *img, char *why, size_t whylen)
{
	struct errmsg err;

	if (img_set_load(img->dirfd, &img->set, &err)) {
		snprintf(why, whylen, "cannot read the image: %s", err.msg);
		return -1;
	}
	img->sums_fd = calloc(img->set.nr_tasks, sizeof(int));
	img->dext = calloc(img->set.nr_tasks, sizeof(*img->dext));
	img->ndext = calloc(img->set.nr_tasks, sizeof(*img->ndext));
	if (!img->sums_fd || !img->dext || !img->ndext) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < img->set.nr_tasks; i++)
		img->sums_fd[i] = -1;
	img->dump_sums = true;
	for (size_t i = 0; i < img->set.nr_tasks; i++) {
		const struct img_task *t = &img->set.tasks[i];
		if (build_dext(img, i)) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		img->lazy_pages += t->lazy_pages;
		img->zero_pages += t->zero_pages;
		for (size_t k = 0; k < t->nr_extents; k++)
			if (t->extents[k].remote) {
				snprintf(why, whylen,
					 "pid %d has lazy pages that are not in the image (dumped "
					 "with --lazy-pages): serve them with criu's page server",
					 t->pid);
				return -1;
			}
		if (!t->has_mm)
			continue;
		img->sums_fd[i] = sums_open(img->dirfd, t);
		if (img->sums_fd[i] < 0)
			img->dump_sums = false;
	}
	return 0;
}

static void image_free(struct imgd_image *img)
{
	if (img->sums_fd)
		for (size_t i = 0; i < img->set.nr_tasks; i++)
			if (img->sums_fd[i] >= 0)
				close(img->sums_fd[i]);
	free(img->sums_fd);
	if (img->dext)
		for (size_t i = 0; i < img->set.nr_tasks; i++)
			free(img->dext[i]);
	free(img->dext);
	free(img->ndext);
	if (img->set.tasks)
		img_set_free(&img->set);
	if (img->dirfd >= 0)
		close(img->dirfd);
	free(img);
}

int catalog_check_dir(int dirfd, char *why, size_t whylen)
{
	struct imgd_image *img = calloc(1, sizeof(*img));

	if (!img) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	img->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (img->dirfd < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		free(img);
		return -1;
	}
	int rc = load(img, why, whylen);
	image_free(img);
	return rc;
}

struct imgd_image *catalog_get(struct imgd_catalog *c, const char *id, int *code, char *why,
			       size_t whylen)
{
	*code = LW_ERR__LW_E_NOIMAGE;
	if (!wire_id_ok(id)) {
		snprintf(why, whylen, "bad image id");
		return NULL;
	}
	for (struct imgd_image *i = c->loaded; i; i = i->next)
		if (!strcmp(i->id, id)) {
			i->refs++;
			return i;
		}
	struct imgd_image *img = calloc(1, sizeof(*img));
	if (!img) {
		*code = LW_ERR__LW_E_IO;
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	snprintf(img->id, sizeof(img->id), "%s", id);
	img->dirfd = open_dir(c, id);
	if (img->dirfd < 0) {
		snprintf(why, whylen, "no image '%s' here", id);
		image_free(img);
		return NULL;
	}
	if (load(img, why, whylen)) {
		*code = LW_ERR__LW_E_IO;
		pr_err("image %s: %s", id, why);
		image_free(img);
		return NULL;
	}
	pr_info("image %s loaded: %zu tasks, %lu data pages, %lu zero pages, %s checksums", id,
		img->set.nr_tasks, (unsigned long)img->lazy_pages, (unsigned long)img->zero_pages,
		img->dump_sums ? "dump-time" : "serve-time");
	img->refs = 1;
	img->next = c->loaded;
	c->loaded = img;
	return img;
}

void catalog_put(struct imgd_catalog *c, struct imgd_image *img)
{
	if (!img || --img->refs)
		return;
	for (struct imgd_image **p = &c->loaded; *p; p = &(*p)->next)
		if (*p == img) {
			*p = img->next;
			break;
		}
	pr_info("image %s unloaded (no sessions left)", img->id);
	image_free(img);
}

void catalog_free(struct imgd_catalog *c)
{
	while (c->loaded) {
		struct imgd_image *n = c->loaded->next;
		image_free(c->loaded);
		c->loaded = n;
	}
	if (c->rootfd >= 0)
		close(c->rootfd);
}

const struct img_task *image_task(const struct imgd_image *img, int32_t pid, size_t *idx)
{
	for (size_t i = 0; i < img->set.nr_tasks; i++)
		if (img->set.tasks[i].pid == pid) {
			*idx = i;
			return &img->set.tasks[i];
		}
	return NULL;
}

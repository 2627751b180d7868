/*
 * The images criu-imgd serves: loaded on first open, shared by every session
 * on them, freed with the last one. An id names one directory entry below
 * --root (never a path: image_id_ok refuses '/' and a leading '.'), opened without
 * following a symlink.
 */
#include "catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sums.h"
#include "img/fingerprint.h"
#include "util/log.h"
#include "util/parse.h"

/* --store: the store, and a private spool dir for uploads and served images' small files. */
static int init_store(struct imgd_catalog *c, const struct imgd_opts *o, struct errmsg *e)
{
	const char *tmp = getenv("TMPDIR");
	struct store_cfg cfg = {o->store,	   o->s3_endpoint, o->s3_region,
				o->s3_credentials, o->ceph_conf,   o->ceph_id};
	int rc;

	c->store = calloc(1, sizeof(*c->store));
	if (!c->store)
		return errmsg_set(e, ENOMEM, "out of memory");
	if ((rc = store_init(c->store, &cfg, o->store_cache, e))) {
		free(c->store);
		c->store = NULL;
		return rc;
	}
	if (store_fetch_init(c->store))
		pr_warn("store: no read-ahead (cannot make its lock): chunks are read one by one");
	snprintf(c->spool, sizeof(c->spool), "%s/criu-imgd.XXXXXX",
		 tmp && *tmp && strlen(tmp) < 40 ? tmp : "/var/tmp");
	if (!mkdtemp(c->spool) ||
	    (c->rootfd = open(c->spool, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		rc = errmsg_set(e, errno, "cannot make a spool dir %s: %s", c->spool,
				strerror(errno));
		c->spool[0] = 0;
		return rc;
	}
	pr_info("store %s at %s: chunk cache %zu MiB, spool %s", o->store,
		o->s3_endpoint ? o->s3_endpoint
		: o->ceph_conf ? o->ceph_conf
			       : "the default ceph.conf",
		o->store_cache >> 20, c->spool);
	return 0;
}

int catalog_init(struct imgd_catalog *c, const struct imgd_opts *o, struct errmsg *e)
{
	memset(c, 0, sizeof(*c));
	c->rootfd = -1;
	if (o->store)
		return init_store(c, o, e);
	if (o->root) {
		c->rootfd = open(o->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->rootfd < 0)
			return errmsg_set(e, errno, "cannot open --root %s: %s", o->root,
					  strerror(errno));
		return 0;
	}
	c->dir = o->dir;
	static char base[IMAGE_ID_MAX + 1];
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", o->dir);
	snprintf(base, sizeof(base), "%s", basename(tmp));
	c->dir_id = base;
	return 0;
}

/* The image dir of id: an fd, or -errno. */
static int open_dir(struct imgd_catalog *c, const char *id)
{
	int fd;

	if (c->rootfd >= 0)
		fd = openat(c->rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	else if (strcmp(id, "default") && strcmp(id, c->dir_id))
		return -ENOENT;
	else
		fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* The task's lazy data as runs of the pages file, merged where they touch. 0 or -ENOMEM. */
static int build_dext(struct imgd_image *img, size_t ti)
{
	const struct img_task *t = &img->set.tasks[ti];
	size_t n = 0;

	img->dext[ti] = calloc(t->nr_extents ? t->nr_extents : 1, sizeof(struct imgd_dext));
	if (!img->dext[ti])
		return -ENOMEM;
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

/* Read the image in img->dirfd as it is served: 0, or -errno with e (never -ENOENT). */
static int load(struct imgd_image *img, struct errmsg *e)
{
	if (img_set_load(img->dirfd, &img->set, e))
		return errmsg_prefix(e, EIO, "cannot read the image");
	img->sums_fd = calloc(img->set.nr_tasks, sizeof(int));
	img->dext = calloc(img->set.nr_tasks, sizeof(*img->dext));
	img->ndext = calloc(img->set.nr_tasks, sizeof(*img->ndext));
	img->sc = calloc(img->set.nr_tasks, sizeof(*img->sc));
	if (!img->sums_fd || !img->dext || !img->ndext || !img->sc)
		return errmsg_set(e, ENOMEM, "out of memory");
	for (size_t i = 0; i < img->set.nr_tasks; i++)
		img->sums_fd[i] = -1;
	img->dump_sums = true;
	for (size_t i = 0; i < img->set.nr_tasks; i++) {
		const struct img_task *t = &img->set.tasks[i];
		if (build_dext(img, i))
			return errmsg_set(e, ENOMEM, "out of memory");
		img->lazy_pages += t->lazy_pages;
		img->zero_pages += t->zero_pages;
		for (size_t k = 0; k < t->nr_extents; k++)
			if (t->extents[k].remote)
				return errmsg_set(
				    e, EOPNOTSUPP,
				    "pid %d has lazy pages that are not in the image "
				    "(dumped with --lazy-pages): serve them with criu's "
				    "page server",
				    t->pid);
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
	if (img->sc)
		for (size_t i = 0; i < img->set.nr_tasks; i++)
			sumcache_free(&img->sc[i]);
	free(img->sc);
	if (img->dext)
		for (size_t i = 0; i < img->set.nr_tasks; i++)
			free(img->dext[i]);
	free(img->dext);
	free(img->ndext);
	if (img->set.tasks)
		img_set_free(&img->set);
	if (img->dirfd >= 0)
		close(img->dirfd);
	store_image_close(img->st);
	free(img);
}

int catalog_check_dir(int dirfd, struct errmsg *e)
{
	struct imgd_image *img = calloc(1, sizeof(*img));

	if (!img)
		return errmsg_set(e, ENOMEM, "out of memory");
	img->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (img->dirfd < 0) {
		int rc = errmsg_set(e, errno, "%s", strerror(errno));
		free(img);
		return rc;
	}
	int rc = load(img, e);
	image_free(img);
	return rc;
}

int catalog_get(struct imgd_catalog *c, const char *id, struct imgd_image **out, struct errmsg *e)
{
	int rc;

	if (!image_id_ok(id))
		return errmsg_set(e, ENOENT, "bad image id (%s)", IMAGE_ID_RULE);
	for (struct imgd_image *i = c->loaded; i; i = i->next)
		if (!strcmp(i->id, id)) {
			i->refs++;
			*out = i;
			return 0;
		}
	struct imgd_image *img = calloc(1, sizeof(*img));
	if (!img)
		return errmsg_set(e, ENOMEM, "out of memory");
	snprintf(img->id, sizeof(img->id), "%s", id);
	if (c->store) {
		img->dirfd = -1;
		rc = store_image_open(c->store, c->rootfd, id, &img->st, &img->dirfd, e);
		if (rc) {
			pr_err("image %s: %s", id, e ? e->msg : strerror(-rc));
			image_free(img);
			return rc;
		}
	} else if ((img->dirfd = open_dir(c, id)) < 0) {
		image_free(img);
		return errmsg_set(e, ENOENT, "no image '%s' here", id);
	}
	rc = load(img, e);
	if (rc) {
		pr_err("image %s: %s", id, e ? e->msg : strerror(-rc));
		image_free(img);
		return rc;
	}
	/* Which dump, and which page data, this is (clients that fail over compare them):
	 * without them the image is served as before, its clients told nothing. */
	struct errmsg why;
	if (img_fingerprint(img->dirfd, &img->fingerprint, &why)) {
		img->fingerprint = 0;
		pr_warn("image %s: no fingerprint (%s): clients cannot check it against another "
			"server's",
			id, why.msg);
	}
	if (img->dump_sums && sums_fingerprint(&img->set, img->sums_fd, &img->sums_fp)) {
		img->sums_fp = 0;
		pr_warn("image %s: cannot read its checksum index for its fingerprint", id);
	}
	pr_info("image %s loaded: %zu tasks, %lu data pages, %lu zero pages, %s checksums, "
		"fingerprint %016llx",
		id, img->set.nr_tasks, (unsigned long)img->lazy_pages,
		(unsigned long)img->zero_pages, img->dump_sums ? "dump-time" : "serve-time",
		(unsigned long long)img->fingerprint);
	img->refs = 1;
	img->next = c->loaded;
	c->loaded = img;
	*out = img;
	return 0;
}

static void log_unload(const struct imgd_image *img, const char *why)
{
	uint64_t hits = 0;

	for (size_t i = 0; i < img->set.nr_tasks; i++)
		hits += img->sc[i].hits;
	pr_info("image %s unloaded (%s); %lu pages were sent with the checksums of an earlier "
		"read (%zu kB kept)",
		img->id, why, (unsigned long)hits, img->sc_bytes >> 10);
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
	log_unload(img, "no sessions left");
	c->sc_bytes -= img->sc_bytes;
	image_free(img);
}

void catalog_free(struct imgd_catalog *c)
{
	while (c->loaded) {
		struct imgd_image *n = c->loaded->next;
		log_unload(c->loaded, "criu-imgd exits");
		image_free(c->loaded);
		c->loaded = n;
	}
	if (c->rootfd >= 0)
		close(c->rootfd);
	if (c->spool[0] && rmdir(c->spool))
		pr_warn("cannot remove the spool dir %s: %s", c->spool, strerror(errno));
	if (c->store)
		store_free(c->store);
	free(c->store);
}

int catalog_exists(struct imgd_catalog *c, const char *id, struct errmsg *e)
{
	struct stat st;
	char key[STORE_KEY_MAX];

	if (!c->store)
		return !fstatat(c->rootfd, id, &st, AT_SYMLINK_NOFOLLOW) || errno != ENOENT
			   ? 0
			   : -ENOENT;
	snprintf(key, sizeof(key), "%s/manifest", id);
	return store_be_head(&c->store->be, key, e);
}

int image_read(struct imgd_catalog *c, const struct imgd_image *img, size_t ti, uint64_t off,
	       size_t len, void *buf, struct errmsg *e)
{
	const struct img_task *t = &img->set.tasks[ti];
	char name[64];

	if (img->st) {
		snprintf(name, sizeof(name), "pages-%u.img", t->pages_id);
		return store_image_read(c->store, img->st, name, off, len, buf, e);
	}
	for (size_t got = 0; got < len;) {
		ssize_t r = pread(t->pages_fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return errmsg_set(e, r < 0 ? errno : EIO, "reading pages-%u.img: %s",
					  t->pages_id, r < 0 ? strerror(errno) : "short read");
		got += (size_t)r;
	}
	return 0;
}

struct sumcache *image_sumcache(struct imgd_catalog *c, struct imgd_image *img, size_t ti)
{
	struct sumcache *sc = &img->sc[ti];
	const struct img_task *t = &img->set.tasks[ti];

	if (sc->npages)
		return sc;
	if (sc->off)
		return NULL;
	uint64_t npages = t->pages_size / WIRE_PAGE;
	size_t bytes = sumcache_bytes(npages);
	int rc = -E2BIG;
	if (bytes && bytes <= IMGD_SUMCACHE_BUDGET - c->sc_bytes)
		rc = sumcache_init(sc, npages);
	if (rc) {
		sc->off = true;
		if (npages)
			pr_warn("image %s: pid %d: checksums are computed for every read of "
				"pages-%u.img (%lu pages), none kept: %s",
				img->id, t->pid, t->pages_id, (unsigned long)npages,
				rc == -E2BIG ? "over the budget of the images' sum caches"
					     : strerror(-rc));
		return NULL;
	}
	img->sc_bytes += bytes;
	c->sc_bytes += bytes;
	return sc;
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

/*
 * META connections: an image's metadata files (every regular file of the image dir but
 * pages-*, *.log and unsafe names), listed and read in bounded chunks, so that a destination
 * with an empty images dir can restore by image id. Names are checked (wire_meta_served), and
 * files are opened relative to the image dir with O_NOFOLLOW and must be regular files.
 */
#include "handlers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

#define META_MAX_DIRENTS 65536u /* entries of an image dir we look at */

struct meta_ent {
	char name[WIRE_MAX_META_NAME + 1];
	uint64_t size;
	bool sparse;
};

/* The index of the task whose pages file NAME is (pages-N.img), or -ENOENT: other pages
 * files are not served. */
static ssize_t pages_task(const struct imgd_image *img, const char *name)
{
	int64_t id = wire_meta_pages_id(name);

	for (size_t i = 0; id >= 0 && i < img->set.nr_tasks; i++)
		if (img->set.tasks[i].has_mm && img->set.tasks[i].pages_id == (uint32_t)id)
			return (ssize_t)i;
	return -ENOENT;
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct meta_ent *)a)->name, ((const struct meta_ent *)b)->name);
}

/* A served file's size: 0, or -errno (-ENOENT: not a regular file or not served). */
static int meta_stat(int dirfd, const char *name, uint64_t *size)
{
	struct stat st;

	if (!wire_meta_served(name))
		return -ENOENT;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	*size = (uint64_t)st.st_size;
	return 0;
}

int meta_on_list(struct imgd_session *s, const LwMetaList *l)
{
	const struct imgd_image *img = s->img;
	int fd = openat(img->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct meta_ent *e = NULL;
	size_t n = 0, seen = 0;
	uint64_t total = 0;
	int rc = 0;

	if (!dir) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return session_fail(s, LW_ERR__LW_E_IO, -1, "image %s: cannot list its dir: %s",
				    img->id, strerror(err));
	}
	e = calloc(WIRE_MAX_META_FILES, sizeof(*e));
	if (!e) {
		closedir(dir);
		return session_fail(s, LW_ERR__LW_E_IO, -1, "out of memory listing image %s",
				    img->id);
	}
	for (struct dirent *de; (de = readdir(dir));) {
		uint64_t size = 0;
		if (++seen > META_MAX_DIRENTS) {
			rc = session_fail(s, LW_ERR__LW_E_LIMIT, -1,
					  "image %s: more than %u entries", img->id,
					  META_MAX_DIRENTS);
			goto out;
		}
		if (!wire_meta_served(de->d_name) || meta_stat(img->dirfd, de->d_name, &size))
			continue;
		bool sparse = wire_meta_pages_id(de->d_name) >= 0;
		if (sparse && pages_task(img, de->d_name) < 0)
			continue;
		if (sparse ? size > WIRE_MAX_META_SPARSE
			   : size > WIRE_MAX_META_FILE || (total += size) > WIRE_MAX_META_TOTAL) {
			rc = session_fail(s, LW_ERR__LW_E_LIMIT, -1,
					  "image %s: metadata file %s or all of them too large",
					  img->id, de->d_name);
			goto out;
		}
		if (n == WIRE_MAX_META_FILES) {
			rc = session_fail(s, LW_ERR__LW_E_LIMIT, -1,
					  "image %s: more than %u metadata files", img->id,
					  WIRE_MAX_META_FILES);
			goto out;
		}
		memcpy(e[n].name, de->d_name, strlen(de->d_name) + 1); /* checked: <= 128 */
		e[n].sparse = sparse;
		e[n++].size = size;
	}
	qsort(e, n, sizeof(*e), ent_cmp);
	size_t first = 0;
	while (l->after && first < n && strcmp(e[first].name, l->after) <= 0)
		first++;
	size_t cnt = n - first < WIRE_META_LIST_PART ? n - first : WIRE_META_LIST_PART;
	LwMetaFile files[WIRE_META_LIST_PART], *fp[WIRE_META_LIST_PART];
	for (size_t i = 0; i < cnt; i++) {
		lw_meta_file__init(&files[i]);
		files[i].name = e[first + i].name;
		files[i].size = e[first + i].size;
		files[i].has_sparse = e[first + i].sparse;
		files[i].sparse = e[first + i].sparse;
		fp[i] = &files[i];
	}
	LwMetaListReply r = LW_META_LIST_REPLY__INIT;
	r.n_files = cnt;
	r.files = fp;
	r.last = first + cnt == n;
	if (session_reply(s, WT_META_LIST_REPLY, &r.base, 0) < 0)
		rc =
		    session_fail(s, LW_ERR__LW_E_LIMIT, -1, "META_LIST_REPLY does not fit a frame");
	else
		pr_info("session %lu: image %s: listed %zu of %zu metadata files",
			(unsigned long)s->id, img->id, cnt, n);
out:
	free(e);
	closedir(dir);
	return rc;
}

/*
 * In a sparse pages file: the lazy run that holds off (*skip = bytes to its end), or the
 * bytes of non-lazy data from off before the next lazy run (*limit). Runs: img->dext.
 */
static void pages_span(const struct imgd_image *img, size_t ti, uint64_t off, uint64_t size,
		       uint64_t *skip, uint64_t *limit)
{
	uint64_t next = size;

	*skip = 0;
	for (size_t i = 0; i < img->ndext[ti]; i++) {
		const struct imgd_dext *x = &img->dext[ti][i];
		if (off >= x->off && off < x->end) {
			*skip = (x->end < size ? x->end : size) - off;
			return;
		}
		if (x->off > off && x->off < next)
			next = x->off;
	}
	*limit = next - off;
}

/*
 * want bytes from off of the file open as fd into pay: from fd, or for a sparse pages file
 * of an image of the store (task ti), from the store. The bytes, or -1 with errno.
 */
static ssize_t meta_read(struct imgd_session *s, int fd, ssize_t ti, uint64_t off, size_t want,
			 uint8_t *pay)
{
	struct errmsg err;

	if (!want)
		return 0;
	if (ti < 0 || !s->img->st)
		return pread(fd, pay, want, (off_t)off);
	int rc = image_read(&s->d->cat, s->img, (size_t)ti, off, want, pay, &err);
	if (!rc)
		return (ssize_t)want;
	pr_err("image %s: %s", s->img->id, err.msg);
	errno = -rc;
	return -1;
}

int meta_on_get(struct imgd_session *s, const LwMetaGet *g)
{
	const struct imgd_image *img = s->img;
	uint8_t *pay = session_pay(s);
	struct stat st;
	int fd = -1, rc = 0;
	ssize_t ti = -1;
	uint64_t skip = 0, limit = UINT64_MAX;

	if (!wire_meta_served(g->name) ||
	    (fd = openat(img->dirfd, g->name,
			 O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		/* Our own want (fds, memory) is not the client's: say it, and log it. */
		int err = fd < 0 && errno != ENOENT && errno != ELOOP ? errno : 0;
		if (err == EMFILE || err == ENFILE || err == ENOMEM)
			pr_err("image %s: cannot open %s: %s", img->id, g->name, strerror(err));
		rc = session_fail(s, LW_ERR__LW_E_IO, -1, "image %s: no metadata file '%s'%s%s",
				  img->id, g->name, err ? ": " : "", err ? strerror(err) : "");
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size;
	bool sparse = wire_meta_pages_id(g->name) >= 0;
	if (sparse && (ti = pages_task(img, g->name)) < 0) {
		rc = session_fail(s, LW_ERR__LW_E_IO, -1, "image %s: %s is no task's pages file",
				  img->id, g->name);
		goto out;
	}
	if (size > (sparse ? WIRE_MAX_META_SPARSE : WIRE_MAX_META_FILE) || g->off > size) {
		rc = session_fail(s, LW_ERR__LW_E_LIMIT, -1,
				  "image %s: %s: offset %llu of %llu bytes", img->id, g->name,
				  (unsigned long long)g->off, (unsigned long long)size);
		goto out;
	}
	if (sparse)
		pages_span(img, (size_t)ti, g->off, size, &skip, &limit);
	LwMetaData r = LW_META_DATA__INIT;
	r.name = g->name;
	r.off = g->off;
	r.size = size;
	if (skip) {
		/* Lazy data: the daemon gets it from us page by page; never sent here. */
		r.has_skip = true;
		r.skip = skip;
		if (session_reply(s, WT_META_DATA, &r.base, 0) < 0)
			rc = session_fail(s, LW_ERR__LW_E_LIMIT, -1,
					  "META_DATA does not fit a frame");
		goto out;
	}
	uint64_t left = size - g->off < limit ? size - g->off : limit;
	size_t want = left < WIRE_META_CHUNK ? (size_t)left : WIRE_META_CHUNK;
	ssize_t got = meta_read(s, fd, ti, g->off, want, pay);
	if (got < 0 || (size_t)got != want) {
		rc = session_fail(s, LW_ERR__LW_E_IO, -1, "image %s: reading %s: %s", img->id,
				  g->name, got < 0 ? strerror(errno) : "short read (file changed)");
		goto out;
	}
	r.data.data = pay;
	r.data.len = want;
	if (session_reply(s, WT_META_DATA, &r.base, 0) < 0) /* its bytes: counted there */
		rc = session_fail(s, LW_ERR__LW_E_LIMIT, -1, "META_DATA does not fit a frame");
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

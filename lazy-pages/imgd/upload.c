/*
 * Uploads (criu-imgd --root DIR --accept-uploads --upload-key FILE): a dump published by the
 * plugin's `publish`, on a connection authenticated with the publishers' key. The files go
 * into DIR/.upload-ID.SESSION (created 0700, files 0600, names checked, O_EXCL|O_NOFOLLOW, one
 * file at a time, chunks in order), within the quotas (--upload-max for one upload,
 * --upload-total for all in progress: a file's declared size counts before a byte of it is
 * written). UPLOAD_END checks the file count and that the image loads as it would be served,
 * then renames the temp dir to DIR/ID with RENAME_NOREPLACE: an image appears complete or not
 * at all, and an id that exists is never replaced. Anything else removes the temp dir; at
 * start, the temp dirs of a crashed server are removed (one server takes uploads into a root).
 */
#include "imgd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/parse.h"
#include "wire/wire_io.h"

#define UPLOAD_TMP_PREFIX ".upload-"
#define ROOT_MAX_DIRENTS 65536u /* entries of the root looked at by the sweep */

static void reply(struct imgd *d, struct imgd_conn *c)
{
	LwUploadReply r = LW_UPLOAD_REPLY__INIT;
	r.nr_files = c->up_files;
	r.bytes = c->up_bytes;
	if (conn_queue_frame(c, WT_UPLOAD_REPLY, &r.base))
		conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "cannot queue UPLOAD_REPLY");
}

void upload_begin(struct imgd *d, struct imgd_conn *c, const LwUpload *u)
{
	struct stat st;

	if (!d->o->accept_uploads || d->cat.rootfd < 0 || c->role != LW_ROLE__LW_ROLE_PUBLISH) {
		conn_fail(d, c, LW_ERR__LW_E_AUTH, -1,
			  "uploads are not accepted here (criu-imgd --root DIR --accept-uploads "
			  "--upload-key FILE)");
		return;
	}
	if (!image_id_ok(u->image)) { /* what could not be opened is not published */
		conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "upload '%s': bad image id (%s)", u->image,
			  IMAGE_ID_RULE);
		return;
	}
	if (!fstatat(d->cat.rootfd, u->image, &st, AT_SYMLINK_NOFOLLOW) || errno != ENOENT) {
		conn_fail(d, c, LW_ERR__LW_E_LIMIT, -1,
			  "upload '%s': the image exists: not replaced", u->image);
		return;
	}
	snprintf(c->up_id, sizeof(c->up_id), "%s", u->image);
	snprintf(c->up_tmp, sizeof(c->up_tmp), UPLOAD_TMP_PREFIX "%s.%lu", u->image,
		 (unsigned long)c->id);
	if (mkdirat(d->cat.rootfd, c->up_tmp, 0700)) {
		conn_fail(d, c, LW_ERR__LW_E_IO, -1, "upload '%s': cannot create %s: %s", u->image,
			  c->up_tmp, strerror(errno));
		c->up_tmp[0] = 0;
		return;
	}
	c->up_dirfd =
	    openat(d->cat.rootfd, c->up_tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->up_dirfd < 0 || fchmod(c->up_dirfd, 0700)) { /* 0700 whatever the umask */
		conn_fail(d, c, LW_ERR__LW_E_IO, -1, "upload '%s': cannot open %s: %s", u->image,
			  c->up_tmp, strerror(errno));
		return;
	}
	c->cls = CONN_UPLOAD;
	c->state = CS_READY;
	pr_info("session %lu: %s uploads image %s (into %s)", (unsigned long)c->id, c->peer,
		u->image, c->up_tmp);
	reply(d, c);
}

/* A new file of size bytes fits in the quotas: reserve it. 0, or -1 (the connection failed). */
static int reserve(struct imgd *d, struct imgd_conn *c, const char *name, uint64_t size)
{
	const struct imgd_opts *o = d->o;

	/* No overflow: up_reserved <= upload_max <= 2^50, size <= 2^40 (wire_check). */
	if (c->up_reserved + size > o->upload_max) {
		conn_fail(d, c, LW_ERR__LW_E_LIMIT, -1,
			  "upload %s: %s would bring it to %llu bytes, over the quota of %llu for "
			  "one upload (--upload-max)",
			  c->up_id, name, (unsigned long long)(c->up_reserved + size),
			  (unsigned long long)o->upload_max);
		return -1;
	}
	if (d->up_inflight + size > o->upload_total) {
		conn_fail(d, c, LW_ERR__LW_E_LIMIT, -1,
			  "upload %s: %s would bring the uploads in progress to %llu bytes, over "
			  "the quota of %llu for all of them (--upload-total)",
			  c->up_id, name, (unsigned long long)(d->up_inflight + size),
			  (unsigned long long)o->upload_total);
		return -1;
	}
	c->up_reserved += size;
	d->up_inflight += size;
	return 0;
}

/* The upload's bytes leave the quota of uploads in progress (published or removed). */
static void release(struct imgd *d, struct imgd_conn *c)
{
	d->up_inflight -= c->up_reserved < d->up_inflight ? c->up_reserved : d->up_inflight;
	c->up_reserved = 0;
}

/* The current file is complete: 0, or -1 (the connection failed). */
static int finish_file(struct imgd *d, struct imgd_conn *c)
{
	if (c->up_fd < 0)
		return 0;
	int rc = close(c->up_fd);
	c->up_fd = -1;
	if (rc || c->up_off != c->up_size) {
		conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "upload %s: %s: %s", c->up_id, c->up_name,
			  rc ? strerror(errno) : "incomplete");
		return -1;
	}
	return 0;
}

void upload_file(struct imgd *d, struct imgd_conn *c, const LwUploadFile *f)
{
	if (c->up_fd < 0 || strcmp(f->name, c->up_name)) {
		/* A new file: the previous one must be complete; each name once (O_EXCL). */
		if (finish_file(d, c))
			return;
		if (f->off) {
			conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "upload %s: %s does not start at 0",
				  c->up_id, f->name);
			return;
		}
		if (c->up_files >= WIRE_MAX_META_FILES) {
			conn_fail(d, c, LW_ERR__LW_E_LIMIT, -1, "upload %s: more than %u files",
				  c->up_id, WIRE_MAX_META_FILES);
			return;
		}
		if (reserve(d, c, f->name, f->size))
			return;
		c->up_fd = wire_create_private(c->up_dirfd, f->name); /* 0600 */
		if (c->up_fd < 0) {
			conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "upload %s: cannot create %s: %s",
				  c->up_id, f->name, strerror(errno));
			return;
		}
		snprintf(c->up_name, sizeof(c->up_name), "%s", f->name);
		c->up_size = f->size;
		c->up_off = 0;
		c->up_files++;
	}
	if (f->off != c->up_off || f->size != c->up_size) {
		conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "upload %s: %s: chunk out of order",
			  c->up_id, f->name);
		return;
	}
	if (f->data.len) {
		ssize_t n = pwrite(c->up_fd, f->data.data, f->data.len, (off_t)f->off);
		if (n < 0 || (size_t)n != f->data.len) {
			conn_fail(d, c, LW_ERR__LW_E_IO, -1, "upload %s: writing %s: %s", c->up_id,
				  f->name, n < 0 ? strerror(errno) : "short write");
			return;
		}
	}
	c->up_off += f->data.len;
	c->up_bytes += f->data.len;
}

void upload_end(struct imgd *d, struct imgd_conn *c, const LwUploadEnd *e)
{
	struct stat st;

	if (finish_file(d, c))
		return;
	if (e->nr_files != c->up_files) {
		conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "upload %s: %u files announced, %u came",
			  c->up_id, e->nr_files, c->up_files);
		return;
	}
	if (fstatat(c->up_dirfd, "inventory.img", &st, AT_SYMLINK_NOFOLLOW) ||
	    fstatat(c->up_dirfd, "pstree.img", &st, AT_SYMLINK_NOFOLLOW)) {
		conn_fail(d, c, LW_ERR__LW_E_PROTO, -1,
			  "upload %s: no inventory.img or pstree.img: not an image", c->up_id);
		return;
	}
	/* What is published must be an image we can serve: read it as we would. */
	struct errmsg err;
	if (catalog_check_dir(c->up_dirfd, &err)) {
		conn_fail(d, c, LW_ERR__LW_E_PROTO, -1, "upload %s: not a valid image: %s",
			  c->up_id, err.msg);
		return;
	}
	if (fsync(c->up_dirfd) ||
	    renameat2(d->cat.rootfd, c->up_tmp, d->cat.rootfd, c->up_id, RENAME_NOREPLACE)) {
		conn_fail(d, c, LW_ERR__LW_E_LIMIT, -1, "upload %s: cannot publish: %s", c->up_id,
			  errno == EEXIST ? "the image exists: not replaced" : strerror(errno));
		return;
	}
	pr_msg("session %lu: %s published image %s: %u files, %llu bytes", (unsigned long)c->id,
	       c->peer, c->up_id, c->up_files, (unsigned long long)c->up_bytes);
	c->up_tmp[0] = 0; /* nothing to remove any more */
	release(d, c);
	close(c->up_dirfd);
	c->up_dirfd = -1;
	reply(d, c);
	c->state = CS_CLOSING;
	snprintf(c->close_why, sizeof(c->close_why), "upload done");
}

/*
 * Empty and remove the temp dir name below the root. Only files are in it (what an upload
 * created, at most WIRE_MAX_META_FILES): anything else is left, and so is the dir. 0 or -1.
 */
static int remove_tmp(int rootfd, const char *name)
{
	int dfd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	unsigned n = 0;

	if (!dir) {
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	for (struct dirent *de; (de = readdir(dir)) && n <= WIRE_MAX_META_FILES + 2; n++)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dfd, de->d_name, 0);
	closedir(dir);
	return unlinkat(rootfd, name, AT_REMOVEDIR);
}

void upload_abort(struct imgd *d, struct imgd_conn *c)
{
	if (c->up_fd >= 0)
		close(c->up_fd);
	c->up_fd = -1;
	if (c->up_tmp[0]) {
		if (remove_tmp(d->cat.rootfd, c->up_tmp))
			pr_warn("upload %s: cannot remove %s: %s", c->up_id, c->up_tmp,
				strerror(errno));
		else
			pr_info("session %lu: upload of %s abandoned: %s removed",
				(unsigned long)c->id, c->up_id, c->up_tmp);
	}
	release(d, c);
	if (c->up_dirfd >= 0)
		close(c->up_dirfd);
	c->up_dirfd = -1;
	c->up_tmp[0] = 0;
}

/* A temp dir of an upload: .upload-*, a directory (not followed). */
static bool is_tmp(int rootfd, const char *name)
{
	struct stat st;

	return !strncmp(name, UPLOAD_TMP_PREFIX, strlen(UPLOAD_TMP_PREFIX)) &&
	       !fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) && S_ISDIR(st.st_mode);
}

/*
 * Remove the temp dirs of uploads a crashed criu-imgd left below the root (removing entries
 * while reading the dir leaves the others listed). At most ROOT_MAX_DIRENTS entries are looked
 * at; the upload lock is ours, so no live upload is among them.
 */
static void sweep(int rootfd, const char *root)
{
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	unsigned seen = 0;
	struct dirent *de;

	if (!dir) {
		pr_warn("cannot list --root %s to sweep stale uploads: %s", root, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir)) && seen++ < ROOT_MAX_DIRENTS) {
		if (!is_tmp(rootfd, de->d_name))
			continue;
		if (remove_tmp(rootfd, de->d_name))
			pr_warn("stale upload %s/%s: cannot remove it: %s", root, de->d_name,
				strerror(errno));
		else
			pr_msg("stale upload %s/%s (left by a criu-imgd that stopped during an "
			       "upload) removed",
			       root, de->d_name);
	}
	if (de)
		pr_warn("--root %s: more than %u entries: the sweep of stale uploads stopped there",
			root, ROOT_MAX_DIRENTS);
	closedir(dir);
}

int upload_init(struct imgd *d)
{
	if (flock(d->cat.rootfd, LOCK_EX | LOCK_NB)) {
		pr_err("--root %s: %s", d->o->root,
		       errno == EWOULDBLOCK ? "another criu-imgd takes uploads into it"
					    : strerror(errno));
		return -1;
	}
	sweep(d->cat.rootfd, d->o->root);
	return 0;
}

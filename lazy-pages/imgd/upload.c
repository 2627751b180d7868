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
#include "handlers.h"

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

static int reply(struct imgd_session *s)
{
	LwUploadReply r = LW_UPLOAD_REPLY__INIT;
	r.nr_files = s->up.files;
	r.bytes = s->up.bytes;
	if (session_reply(s, WT_UPLOAD_REPLY, &r.base, 0) < 0)
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "cannot queue UPLOAD_REPLY");
	return 0;
}

int upload_begin(struct imgd_session *s, const LwUpload *u)
{
	struct imgd *d = s->d;
	struct imgd_upload *up = &s->up;

	if (!d->o->accept_uploads || d->cat.rootfd < 0 || s->role != LW_ROLE__LW_ROLE_PUBLISH)
		return session_fail(s, LW_ERR__LW_E_AUTH, -1,
				    "uploads are not accepted here (criu-imgd --root DIR "
				    "--accept-uploads --upload-key FILE)");
	if (!image_id_ok(u->image)) /* what could not be opened is not published */
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "upload '%s': bad image id (%s)",
				    u->image, IMAGE_ID_RULE);
	struct errmsg err;
	int ex = catalog_exists(&d->cat, u->image, &err);
	if (ex != -ENOENT)
		return session_fail(s, LW_ERR__LW_E_LIMIT, -1, "upload '%s': %s", u->image,
				    ex ? err.msg : "the image exists: not replaced");
	snprintf(up->id, sizeof(up->id), "%s", u->image);
	snprintf(up->tmp, sizeof(up->tmp), UPLOAD_TMP_PREFIX "%s.%lu", u->image,
		 (unsigned long)s->id);
	if (mkdirat(d->cat.rootfd, up->tmp, 0700)) {
		int rc = session_fail(s, LW_ERR__LW_E_IO, -1, "upload '%s': cannot create %s: %s",
				      u->image, up->tmp, strerror(errno));
		up->tmp[0] = 0;
		return rc;
	}
	up->dirfd = openat(d->cat.rootfd, up->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (up->dirfd < 0 || fchmod(up->dirfd, 0700)) /* 0700 whatever the umask */
		return session_fail(s, LW_ERR__LW_E_IO, -1, "upload '%s': cannot open %s: %s",
				    u->image, up->tmp, strerror(errno));
	s->cls = CONN_UPLOAD;
	pr_info("session %lu: %s uploads image %s (into %s)", (unsigned long)s->id, s->peer,
		u->image, up->tmp);
	return reply(s);
}

/* A new file of size bytes fits in the quotas: reserve it. 0, or -EPROTO (refused). */
static int reserve(struct imgd_session *s, const char *name, uint64_t size)
{
	struct imgd *d = s->d;
	struct imgd_upload *up = &s->up;
	const struct imgd_opts *o = d->o;

	/* No overflow: reserved <= upload_max <= 2^50, size <= 2^40 (wire_check). */
	if (up->reserved + size > o->upload_max)
		return session_fail(s, LW_ERR__LW_E_LIMIT, -1,
				    "upload %s: %s would bring it to %llu bytes, over the quota of "
				    "%llu for one upload (--upload-max)",
				    up->id, name, (unsigned long long)(up->reserved + size),
				    (unsigned long long)o->upload_max);
	if (d->up_inflight + size > o->upload_total)
		return session_fail(
		    s, LW_ERR__LW_E_LIMIT, -1,
		    "upload %s: %s would bring the uploads in progress to %llu "
		    "bytes, over the quota of %llu for all of them (--upload-total)",
		    up->id, name, (unsigned long long)(d->up_inflight + size),
		    (unsigned long long)o->upload_total);
	up->reserved += size;
	d->up_inflight += size;
	return 0;
}

/* The upload's bytes leave the quota of uploads in progress (published or removed). */
static void release(struct imgd_session *s)
{
	struct imgd *d = s->d;
	uint64_t r = s->up.reserved;

	d->up_inflight -= r < d->up_inflight ? r : d->up_inflight;
	s->up.reserved = 0;
}

/* The current file is complete: 0, or -EPROTO (refused). */
static int finish_file(struct imgd_session *s)
{
	struct imgd_upload *up = &s->up;

	if (up->fd < 0)
		return 0;
	int rc = close(up->fd);
	up->fd = -1;
	if (rc || up->off != up->size)
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "upload %s: %s: %s", up->id,
				    up->name, rc ? strerror(errno) : "incomplete");
	return 0;
}

/* A file's first chunk: the previous file must be complete; each name once (O_EXCL). */
static int start_file(struct imgd_session *s, const LwUploadFile *f)
{
	struct imgd_upload *up = &s->up;
	int rc = finish_file(s);

	if (rc)
		return rc;
	if (f->off)
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "upload %s: %s does not start at 0",
				    up->id, f->name);
	if (up->files >= WIRE_MAX_META_FILES)
		return session_fail(s, LW_ERR__LW_E_LIMIT, -1, "upload %s: more than %u files",
				    up->id, WIRE_MAX_META_FILES);
	rc = reserve(s, f->name, f->size);
	if (rc)
		return rc;
	up->fd = wire_create_private(up->dirfd, f->name); /* 0600 */
	if (up->fd < 0)
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "upload %s: cannot create %s: %s",
				    up->id, f->name, strerror(errno));
	snprintf(up->name, sizeof(up->name), "%s", f->name);
	up->size = f->size;
	up->off = 0;
	up->files++;
	return 0;
}

int upload_file(struct imgd_session *s, const LwUploadFile *f)
{
	struct imgd_upload *up = &s->up;

	if (up->fd < 0 || strcmp(f->name, up->name)) {
		int rc = start_file(s, f);
		if (rc)
			return rc;
	}
	if (f->off != up->off || f->size != up->size)
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "upload %s: %s: chunk out of order",
				    up->id, f->name);
	if (f->data.len) {
		ssize_t n = pwrite(up->fd, f->data.data, f->data.len, (off_t)f->off);
		if (n < 0 || (size_t)n != f->data.len)
			return session_fail(s, LW_ERR__LW_E_IO, -1, "upload %s: writing %s: %s",
					    up->id, f->name,
					    n < 0 ? strerror(errno) : "short write");
	}
	up->off += f->data.len;
	up->bytes += f->data.len;
	return 0;
}

static int remove_tmp(int rootfd, const char *name);

/* --store: the checked upload into the store (manifest last), then its temp dir removed. */
static int publish_store(struct imgd_session *s)
{
	struct imgd_upload *up = &s->up;
	struct errmsg err;
	int rc = store_put_dir(s->d->cat.store, up->dirfd, up->id, &err);

	if (rc) {
		pr_err("upload %s: cannot write it to the store: %s", up->id, err.msg);
		return session_fail(s, rc == -EEXIST ? LW_ERR__LW_E_LIMIT : LW_ERR__LW_E_IO, -1,
				    "upload %s: cannot publish: %s", up->id, err.msg);
	}
	pr_msg("session %lu: %s published image %s into the store: %u files, %llu bytes",
	       (unsigned long)s->id, s->peer, up->id, up->files, (unsigned long long)up->bytes);
	rc = remove_tmp(s->d->cat.rootfd, up->tmp);
	if (rc)
		pr_warn("upload %s: cannot remove %s: %s", up->id, up->tmp, strerror(-rc));
	up->tmp[0] = 0;
	release(s);
	close(up->dirfd);
	up->dirfd = -1;
	return reply(s);
}

int upload_end(struct imgd_session *s, const LwUploadEnd *e)
{
	struct imgd *d = s->d;
	struct imgd_upload *up = &s->up;
	struct errmsg err;
	struct stat st;
	int rc = finish_file(s);

	if (rc)
		return rc;
	if (e->nr_files != up->files)
		return session_fail(s, LW_ERR__LW_E_PROTO, -1,
				    "upload %s: %u files announced, %u came", up->id, e->nr_files,
				    up->files);
	if (fstatat(up->dirfd, "inventory.img", &st, AT_SYMLINK_NOFOLLOW) ||
	    fstatat(up->dirfd, "pstree.img", &st, AT_SYMLINK_NOFOLLOW))
		return session_fail(s, LW_ERR__LW_E_PROTO, -1,
				    "upload %s: no inventory.img or pstree.img: not an image",
				    up->id);
	/* What is published must be an image we can serve: read it as we would. */
	if (catalog_check_dir(up->dirfd, &err))
		return session_fail(s, LW_ERR__LW_E_PROTO, -1, "upload %s: not a valid image: %s",
				    up->id, err.msg);
	if (d->cat.store)
		return publish_store(s);
	if (fsync(up->dirfd) ||
	    renameat2(d->cat.rootfd, up->tmp, d->cat.rootfd, up->id, RENAME_NOREPLACE))
		return session_fail(
		    s, LW_ERR__LW_E_LIMIT, -1, "upload %s: cannot publish: %s", up->id,
		    errno == EEXIST ? "the image exists: not replaced" : strerror(errno));
	pr_msg("session %lu: %s published image %s: %u files, %llu bytes", (unsigned long)s->id,
	       s->peer, up->id, up->files, (unsigned long long)up->bytes);
	up->tmp[0] = 0; /* nothing to remove any more */
	release(s);
	close(up->dirfd);
	up->dirfd = -1;
	return reply(s);
}

/*
 * Empty and remove the temp dir name below the root. Only files are in it (what an upload
 * created, at most WIRE_MAX_META_FILES): anything else is left, and so is the dir.
 * 0 or -errno.
 */
static int remove_tmp(int rootfd, const char *name)
{
	int dfd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	unsigned n = 0;

	if (!dir) {
		int rc = -errno;
		if (dfd >= 0)
			close(dfd);
		return rc;
	}
	for (struct dirent *de; (de = readdir(dir)) && n <= WIRE_MAX_META_FILES + 2; n++)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dfd, de->d_name, 0);
	closedir(dir);
	return unlinkat(rootfd, name, AT_REMOVEDIR) ? -errno : 0;
}

void upload_abort(struct imgd_session *s)
{
	struct imgd_upload *up = &s->up;

	if (up->fd >= 0)
		close(up->fd);
	up->fd = -1;
	if (up->tmp[0]) {
		int rc = remove_tmp(s->d->cat.rootfd, up->tmp);
		if (rc)
			pr_warn("upload %s: cannot remove %s: %s", up->id, up->tmp, strerror(-rc));
		else
			pr_info("session %lu: upload of %s abandoned: %s removed",
				(unsigned long)s->id, up->id, up->tmp);
	}
	release(s);
	if (up->dirfd >= 0)
		close(up->dirfd);
	up->dirfd = -1;
	up->tmp[0] = 0;
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
		int rc = remove_tmp(rootfd, de->d_name);
		if (rc)
			pr_warn("stale upload %s/%s: cannot remove it: %s", root, de->d_name,
				strerror(-rc));
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
		int rc = -errno;
		pr_err("--root %s: %s", d->o->root,
		       rc == -EWOULDBLOCK ? "another criu-imgd takes uploads into it"
					  : strerror(-rc));
		return rc;
	}
	sweep(d->cat.rootfd, d->o->root);
	return 0;
}

/* lazy-wire client: an image's metadata files over a META connection (see wire_client_meta.h). */
#include "wire_client_meta.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/fingerprint.h"
#include "util/clock.h"
#include "wire_client_read.h"

struct meta_want {
	char name[WIRE_MAX_META_NAME + 1];
	uint64_t size;
	bool sparse;
	bool created;
};

/* Every metadata file of the image, sorted, checked. n files into *w (malloc'ed). 0 or -errno. */
static int meta_list(int fd, uint8_t *scratch, unsigned timeout_ms, struct meta_want **w, size_t *n,
		     struct errmsg *e)
{
	struct meta_want *v = calloc(WIRE_MAX_META_FILES, sizeof(*v));
	uint64_t total = 0;
	bool last = false;
	int rc = 0;

	*n = 0;
	if (!v)
		return errmsg_set(e, ENOMEM, "out of memory for the file list");
	/* Each reply brings at least one file unless it is the last: bounded by the file cap. */
	for (unsigned round = 0; !last; round++) {
		uint64_t deadline = mono_ms() + timeout_ms;
		ProtobufCMessage *m;
		LwMetaList l = LW_META_LIST__INIT;
		l.after = *n ? v[*n - 1].name : NULL;
		if (round > WIRE_MAX_META_FILES) {
			rc = errmsg_set(e, EPROTO, "the file list does not end");
			goto fail;
		}
		rc = wire_send(fd, scratch, WT_META_LIST, &l.base, NULL, 0, deadline);
		if (rc) {
			errmsg_set(e, rc, "sending META_LIST: %s", strerror(-rc));
			goto fail;
		}
		rc = wire_client_expect(fd, scratch, WT_META_LIST_REPLY, &m, deadline, e);
		if (rc)
			goto fail;
		LwMetaListReply *r = (LwMetaListReply *)m;
		last = r->last;
		const char *bad = NULL;
		if (!r->n_files && !last)
			bad = "an empty part that is not the last";
		for (size_t i = 0; !bad && i < r->n_files; i++) {
			if (*n && strcmp(r->files[i]->name, v[*n - 1].name) <= 0)
				bad = "names unsorted or repeated";
			else if (*n == WIRE_MAX_META_FILES)
				bad = "too many files";
			else if (!r->files[i]->sparse &&
				 (total += r->files[i]->size) > WIRE_MAX_META_TOTAL)
				bad = "too many bytes in all";
			else {
				/* wire_check: a served name of <= WIRE_MAX_META_NAME bytes */
				memcpy(v[*n].name, r->files[i]->name,
				       strlen(r->files[i]->name) + 1);
				v[*n].sparse = r->files[i]->sparse;
				v[(*n)++].size = r->files[i]->size;
			}
		}
		wire_free(m);
		if (bad) {
			rc = errmsg_set(e, EPROTO, "the server's file list: %s", bad);
			goto fail;
		}
	}
	if (!*n) {
		rc = errmsg_set(e, ENOENT, "the image has no metadata files");
		goto fail;
	}
	*w = v;
	return 0;
fail:
	free(v);
	return rc;
}

/* One file into tmp (created, O_EXCL), chunk by chunk. 0 or -errno. */
static int meta_get(int fd, uint8_t *scratch, unsigned timeout_ms, int dirfd,
		    const struct meta_want *w, const char *tmp, uint64_t *sent, struct errmsg *e)
{
	int out = wire_create_private(dirfd, tmp); /* images are secrets: 0600 */
	uint64_t off = 0;
	int rc = 0;

	if (out < 0)
		return errmsg_set(e, errno, "cannot create %s: %s", tmp, strerror(errno));
	/* Every reply advances off by at least one byte (checked), off <= size <= the cap. */
	while (off < w->size) {
		uint64_t deadline = mono_ms() + timeout_ms;
		ProtobufCMessage *m;
		LwMetaGet g = LW_META_GET__INIT;
		g.name = (char *)w->name;
		g.off = off;
		rc = wire_send(fd, scratch, WT_META_GET, &g.base, NULL, 0, deadline);
		if (rc) {
			errmsg_set(e, rc, "sending META_GET: %s", strerror(-rc));
			goto fail;
		}
		rc = wire_client_expect(fd, scratch, WT_META_DATA, &m, deadline, e);
		if (rc)
			goto fail;
		LwMetaData *d = (LwMetaData *)m;
		const char *bad = NULL;
		if (strcmp(d->name, w->name) || d->off != off)
			bad = "a reply for another file or offset";
		else if (d->size != w->size)
			bad = "the file changed size since it was listed";
		else if (d->has_skip && !w->sparse)
			bad = "a skip in a file that is not sparse";
		else if (d->has_skip)
			off += d->skip; /* wire_check: skip <= size - off */
		else if (!d->data.len)
			bad = "no data before the end";
		else if ((*sent += d->data.len) > WIRE_MAX_META_TOTAL)
			bad = "more data than the limit for all files";
		else {
			ssize_t wr = pwrite(out, d->data.data, d->data.len, (off_t)off);
			if (wr < 0)
				bad = strerror(errno);
			else if ((size_t)wr != d->data.len)
				bad = "short write";
			else
				off += d->data.len;
		}
		wire_free(m);
		if (bad) {
			rc = errmsg_set(e, EPROTO, "%s: %s", w->name, bad);
			goto fail;
		}
	}
	/* A sparse file ends with holes where its last lazy data was. */
	rc = ftruncate(out, (off_t)w->size) ? -errno : 0;
	if (close(out) && !rc)
		rc = -errno;
	if (rc)
		return errmsg_set(e, rc, "writing %s: %s", tmp, strerror(-rc));
	return 0;
fail:
	close(out);
	return rc;
}

/* The fingerprint of the n files w that a fetch wrote (whatever else the dir holds). */
static int written_fingerprint(int dirfd, const struct meta_want *w, size_t n, uint64_t *fp,
			       struct errmsg *e)
{
	const char **names = calloc(n ? n : 1, sizeof(*names));
	int rc;

	if (!names)
		return errmsg_set(e, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		names[i] = w[i].name;
	rc = img_fingerprint_of(dirfd, names, n, fp, e);
	free(names);
	return rc;
}

/* The fetch: 0, or -errno with *res zero and the dir as it was. */
static int meta_fetch(const struct wire_client *c, int dirfd, uint8_t *scratch,
		      struct wire_meta_result *res, struct errmsg *e)
{
	struct meta_want *w = NULL;
	struct wire_open_info info;
	char tmp[WIRE_MAX_META_NAME + 16];
	size_t n = 0, i;
	uint64_t sent = 0;
	int fd, rc;
	struct stat st;

	fd = wire_client_open(c, LW_CLASS__LW_CLASS_META, scratch, &info, e);
	if (fd < 0)
		return fd;
	rc = meta_list(fd, scratch, c->timeout_ms, &w, &n, e);
	if (rc)
		goto out;
	/* Nothing is overwritten: every name must be free before anything is written. */
	for (i = 0; i < n; i++)
		if (!fstatat(dirfd, w[i].name, &st, AT_SYMLINK_NOFOLLOW) || errno != ENOENT) {
			rc = errmsg_set(e, EEXIST, "%s exists in the images dir: not overwritten",
					w[i].name);
			goto out;
		}
	for (i = 0; i < n; i++) {
		/* A leading '.' never starts a served name: no clash with the image's files. */
		snprintf(tmp, sizeof(tmp), ".%s.lw-part", w[i].name);
		unlinkat(dirfd, tmp, 0);
		rc = meta_get(fd, scratch, c->timeout_ms, dirfd, &w[i], tmp, &sent, e);
		if (rc) {
			unlinkat(dirfd, tmp, 0);
			goto out;
		}
		if (renameat2(dirfd, tmp, dirfd, w[i].name, RENAME_NOREPLACE)) {
			rc = errmsg_set(e, errno, "cannot rename %s to %s: %s", tmp, w[i].name,
					strerror(errno));
			unlinkat(dirfd, tmp, 0);
			goto out;
		}
		w[i].created = true;
		res->files++;
		res->bytes = sent;
	}
	/* What we wrote must be the dump the server named. */
	uint64_t fp;
	if (info.fingerprint && !(rc = written_fingerprint(dirfd, w, n, &fp, e)) &&
	    fp != info.fingerprint)
		rc = errmsg_set(e, EBADMSG,
				"the files fetched are not the image the server named (fingerprint "
				"%016llx, the server's %016llx)",
				(unsigned long long)fp, (unsigned long long)info.fingerprint);
	if (rc)
		goto out;
	LwClose cl = LW_CLOSE__INIT;
	wire_send(fd, scratch, WT_CLOSE, &cl.base, NULL, 0, mono_ms() + c->timeout_ms);
out:
	/* A failed fetch leaves the dir as it was. */
	for (i = 0; rc && w && i < n; i++)
		if (w[i].created)
			unlinkat(dirfd, w[i].name, 0);
	wire_sock_close(fd);
	free(w);
	return rc;
}

int wire_meta_fetch(const struct wire_client *c, int dirfd, struct wire_meta_result *res,
		    struct errmsg *e)
{
	uint8_t *scratch = malloc(WIRE_SCRATCH);
	int rc;

	memset(res, 0, sizeof(*res));
	rc = scratch ? meta_fetch(c, dirfd, scratch, res, e)
		     : errmsg_set(e, ENOMEM, "out of memory");
	free(scratch);
	if (rc)
		memset(res, 0, sizeof(*res));
	return rc;
}

/* lazy-wire client: an image's metadata files over a META connection (see wire_client_meta.h). */
#include "wire_client_meta.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/clock.h"
#include "wire_client_read.h"

struct meta_want {
	char name[WIRE_MAX_META_NAME + 1];
	uint64_t size;
	bool sparse;
	bool created;
};

/* Every metadata file of the image, sorted, checked. n files into *w (malloc'ed). */
static int meta_list(int fd, uint8_t *scratch, unsigned timeout_ms, struct meta_want **w, size_t *n,
		     char *err, size_t errlen)
{
	struct meta_want *v = calloc(WIRE_MAX_META_FILES, sizeof(*v));
	uint64_t total = 0;
	bool last = false;

	*n = 0;
	if (!v) {
		snprintf(err, errlen, "out of memory for the file list");
		return -1;
	}
	/* Each reply brings at least one file unless it is the last: bounded by the file cap. */
	for (unsigned round = 0; !last; round++) {
		uint64_t deadline = mono_ms() + timeout_ms;
		ProtobufCMessage *m;
		LwMetaList l = LW_META_LIST__INIT;
		l.after = *n ? v[*n - 1].name : NULL;
		if (round > WIRE_MAX_META_FILES) {
			snprintf(err, errlen, "the file list does not end");
			goto fail;
		}
		int rc = wire_send(fd, scratch, WT_META_LIST, &l.base, NULL, 0, deadline);
		if (rc) {
			snprintf(err, errlen, "sending META_LIST: %s", strerror(-rc));
			goto fail;
		}
		if (wire_client_expect(fd, scratch, WT_META_LIST_REPLY, &m, deadline, err, errlen))
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
			snprintf(err, errlen, "the server's file list: %s", bad);
			goto fail;
		}
	}
	if (!*n) {
		snprintf(err, errlen, "the image has no metadata files");
		goto fail;
	}
	*w = v;
	return 0;
fail:
	free(v);
	return -1;
}

/* One file into tmp (created, O_EXCL), chunk by chunk. */
static int meta_get(int fd, uint8_t *scratch, unsigned timeout_ms, int dirfd,
		    const struct meta_want *w, const char *tmp, uint64_t *sent, char *err,
		    size_t errlen)
{
	int out = wire_create_private(dirfd, tmp); /* images are secrets: 0600 */
	uint64_t off = 0;

	if (out < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	/* Every reply advances off by at least one byte (checked), off <= size <= the cap. */
	while (off < w->size) {
		uint64_t deadline = mono_ms() + timeout_ms;
		ProtobufCMessage *m;
		LwMetaGet g = LW_META_GET__INIT;
		g.name = (char *)w->name;
		g.off = off;
		int rc = wire_send(fd, scratch, WT_META_GET, &g.base, NULL, 0, deadline);
		if (rc) {
			snprintf(err, errlen, "sending META_GET: %s", strerror(-rc));
			goto fail;
		}
		if (wire_client_expect(fd, scratch, WT_META_DATA, &m, deadline, err, errlen))
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
			snprintf(err, errlen, "%s: %s", w->name, bad);
			goto fail;
		}
	}
	/* A sparse file ends with holes where its last lazy data was. */
	if (ftruncate(out, (off_t)w->size) || close(out)) {
		snprintf(err, errlen, "writing %s: %s", tmp, strerror(errno));
		return -1;
	}
	return 0;
fail:
	close(out);
	return -1;
}

int wire_meta_fetch(const struct wire_client *c, int dirfd, struct wire_meta_result *res, char *err,
		    size_t errlen)
{
	uint8_t *scratch = malloc(WIRE_SCRATCH);
	struct meta_want *w = NULL;
	struct wire_open_info info;
	char tmp[WIRE_MAX_META_NAME + 16];
	size_t n = 0, i;
	uint64_t sent = 0;
	int fd = -1, rc = -1;
	struct stat st;

	memset(res, 0, sizeof(*res));
	if (!scratch) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fd = wire_client_open(c, LW_CLASS__LW_CLASS_META, scratch, &info, err, errlen);
	if (fd < 0)
		goto out;
	if (meta_list(fd, scratch, c->timeout_ms, &w, &n, err, errlen))
		goto out;
	/* Nothing is overwritten: every name must be free before anything is written. */
	for (i = 0; i < n; i++)
		if (!fstatat(dirfd, w[i].name, &st, AT_SYMLINK_NOFOLLOW) || errno != ENOENT) {
			snprintf(err, errlen, "%s exists in the images dir: not overwritten",
				 w[i].name);
			goto out;
		}
	for (i = 0; i < n; i++) {
		/* A leading '.' never starts a served name: no clash with the image's files. */
		snprintf(tmp, sizeof(tmp), ".%s.lw-part", w[i].name);
		unlinkat(dirfd, tmp, 0);
		if (meta_get(fd, scratch, c->timeout_ms, dirfd, &w[i], tmp, &sent, err, errlen)) {
			unlinkat(dirfd, tmp, 0);
			goto out;
		}
		if (renameat2(dirfd, tmp, dirfd, w[i].name, RENAME_NOREPLACE)) {
			snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, w[i].name,
				 strerror(errno));
			unlinkat(dirfd, tmp, 0);
			goto out;
		}
		w[i].created = true;
		res->files++;
		res->bytes = sent;
	}
	LwClose cl = LW_CLOSE__INIT;
	wire_send(fd, scratch, WT_CLOSE, &cl.base, NULL, 0, mono_ms() + c->timeout_ms);
	rc = 0;
out:
	/* A failed fetch leaves the dir as it was. */
	for (i = 0; rc && w && i < n; i++)
		if (w[i].created)
			unlinkat(dirfd, w[i].name, 0);
	if (rc)
		memset(res, 0, sizeof(*res));
	wire_sock_close(fd);
	free(w);
	free(scratch);
	return rc;
}

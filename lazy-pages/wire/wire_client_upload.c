/* lazy-wire client: publish an images dir (see wire_client_upload.h). */
#include "wire_client_upload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/clock.h"

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The upload's file names: regular files with upload names, sorted. 0 or -errno. */
static int up_list(int dirfd, char ***names, size_t *n, struct errmsg *e)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	char **v = calloc(WIRE_MAX_META_FILES, sizeof(*v));
	unsigned seen = 0;
	struct stat st;
	int rc = 0;

	*n = 0;
	if (!dir || !v) {
		rc = errmsg_set(e, errno, "cannot list the images dir: %s", strerror(errno));
		goto out;
	}
	for (struct dirent *de; (de = readdir(dir));) {
		if (++seen > 65536) {
			rc = errmsg_set(e, E2BIG, "more than 65536 entries in the images dir");
			goto out;
		}
		if (!wire_upload_name_ok(de->d_name) ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (*n == WIRE_MAX_META_FILES) {
			rc = errmsg_set(e, E2BIG, "more than %u files", WIRE_MAX_META_FILES);
			goto out;
		}
		if (!(v[*n] = strdup(de->d_name))) {
			rc = errmsg_set(e, ENOMEM, "out of memory");
			goto out;
		}
		(*n)++;
	}
	qsort(v, *n, sizeof(*v), name_cmp);
out:
	if (dir)
		closedir(dir);
	else if (fd >= 0)
		close(fd);
	if (rc && v) {
		for (size_t i = 0; i < *n; i++)
			free(v[i]);
		free(v);
		v = NULL;
		*n = 0;
	}
	*names = v;
	return rc;
}

/* After a failed send: the server's ERROR if it sent one (it closes after it) replaces e. */
static void server_reason(int fd, uint8_t *scratch, struct errmsg *e)
{
	struct errmsg why;
	ProtobufCMessage *m;

	errmsg_clear(&why);
	if (!wire_client_expect(fd, scratch, WT_UPLOAD_REPLY, &m, mono_ms() + 2000, &why))
		wire_free(m);
	else if (!strncmp(why.msg, "server: ", 8))
		errmsg_set(e, 0, "%s", why.msg);
}

/* One file in UPLOAD_FILE chunks. 0 or -errno. */
static int up_file(int fd, uint8_t *scratch, uint8_t *buf, unsigned timeout_ms, int dirfd,
		   const char *name, struct errmsg *e)
{
	int in = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	uint64_t off = 0;
	int rc = 0;

	if (in < 0 || fstat(in, &st) || !S_ISREG(st.st_mode)) {
		rc = errmsg_set(e, in < 0 ? errno : EINVAL, "%s: %s", name,
				in < 0 ? strerror(errno) : "not a file");
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size;
	if (size > WIRE_MAX_META_SPARSE) {
		rc = errmsg_set(e, EFBIG, "%s: too large", name);
		goto out;
	}
	/* One chunk a pass, off grows by it; an empty file is one empty chunk. */
	do {
		size_t want = size - off < WIRE_META_CHUNK ? (size_t)(size - off) : WIRE_META_CHUNK;
		ssize_t got = want ? pread(in, buf, want, (off_t)off) : 0;
		if (got < 0 || (size_t)got != want) {
			rc = errmsg_set(e, got < 0 ? errno : EIO, "reading %s: %s", name,
					got < 0 ? strerror(errno) : "it shrank");
			goto out;
		}
		LwUploadFile f = LW_UPLOAD_FILE__INIT;
		f.name = (char *)name;
		f.off = off;
		f.size = size;
		f.data = (ProtobufCBinaryData){want, buf};
		rc = wire_send(fd, scratch, WT_UPLOAD_FILE, &f.base, NULL, 0,
			       mono_ms() + timeout_ms);
		if (rc) {
			errmsg_set(e, rc, "sending %s: %s", name, strerror(-rc));
			goto out;
		}
		off += want;
	} while (off < size);
out:
	if (in >= 0)
		close(in);
	return rc;
}

/* The upload on scratch and buf: 0, or -errno (the server then keeps nothing). */
static int upload(const struct wire_client *c, int dirfd, uint8_t *scratch, uint8_t *buf,
		  struct wire_meta_result *res, struct errmsg *e)
{
	char **names = NULL;
	size_t n = 0;
	int fd = -1, rc;
	ProtobufCMessage *m;

	if (!c->image || !wire_id_ok(c->image))
		return errmsg_set(e, EINVAL, "bad image id '%s'", c->image ? c->image : "");
	rc = up_list(dirfd, &names, &n, e);
	if (rc)
		return rc;
	fd = wire_client_handshake(c, LW_ROLE__LW_ROLE_PUBLISH, scratch, mono_ms() + c->timeout_ms,
				   NULL, e);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	LwUpload u = LW_UPLOAD__INIT;
	u.image = (char *)c->image;
	uint64_t deadline = mono_ms() + c->timeout_ms;
	rc = wire_send(fd, scratch, WT_UPLOAD, &u.base, NULL, 0, deadline);
	if (!rc)
		rc = wire_client_expect(fd, scratch, WT_UPLOAD_REPLY, &m, deadline, e);
	if (rc)
		goto out;
	wire_free(m);
	for (size_t i = 0; i < n; i++) {
		rc = up_file(fd, scratch, buf, c->timeout_ms, dirfd, names[i], e);
		if (rc) {
			server_reason(fd, scratch, e);
			goto out;
		}
	}
	LwUploadEnd end = LW_UPLOAD_END__INIT;
	end.nr_files = (uint32_t)n;
	deadline = mono_ms() + c->timeout_ms;
	rc = wire_send(fd, scratch, WT_UPLOAD_END, &end.base, NULL, 0, deadline);
	if (rc) {
		server_reason(fd, scratch, e);
		goto out;
	}
	rc = wire_client_expect(fd, scratch, WT_UPLOAD_REPLY, &m, deadline, e);
	if (rc)
		goto out;
	LwUploadReply *r = (LwUploadReply *)m;
	res->files = r->nr_files;
	res->bytes = r->bytes;
	wire_free(m);
	if (res->files != n)
		rc = errmsg_set(e, EPROTO, "the server took %u of %zu files", res->files, n);
out:
	wire_sock_close(fd);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int wire_upload(const struct wire_client *c, int dirfd, struct wire_meta_result *res,
		struct errmsg *e)
{
	uint8_t *scratch = malloc(WIRE_SCRATCH), *buf = malloc(WIRE_META_CHUNK);
	int rc;

	memset(res, 0, sizeof(*res));
	if (!scratch || !buf)
		rc = errmsg_set(e, ENOMEM, "out of memory");
	else
		rc = upload(c, dirfd, scratch, buf, res, e);
	free(buf);
	free(scratch);
	return rc;
}

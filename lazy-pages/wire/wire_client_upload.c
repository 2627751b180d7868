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

/* The upload's file names: regular files with upload names, sorted. */
static int up_list(int dirfd, char ***names, size_t *n, char *err, size_t errlen)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	char **v = calloc(WIRE_MAX_META_FILES, sizeof(*v));
	unsigned seen = 0;
	struct stat st;
	int rc = -1;

	*n = 0;
	if (!dir || !v) {
		snprintf(err, errlen, "cannot list the images dir: %s", strerror(errno));
		goto out;
	}
	for (struct dirent *de; (de = readdir(dir));) {
		if (++seen > 65536) {
			snprintf(err, errlen, "more than 65536 entries in the images dir");
			goto out;
		}
		if (!wire_upload_name_ok(de->d_name) ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (*n == WIRE_MAX_META_FILES) {
			snprintf(err, errlen, "more than %u files", WIRE_MAX_META_FILES);
			goto out;
		}
		if (!(v[*n] = strdup(de->d_name))) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		(*n)++;
	}
	qsort(v, *n, sizeof(*v), name_cmp);
	rc = 0;
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

/* After a failed send: the server's ERROR if it sent one (it closes after it). */
static void server_reason(int fd, uint8_t *scratch, char *err, size_t errlen)
{
	ProtobufCMessage *m;
	char e2[256];

	if (!wire_client_expect(fd, scratch, WT_UPLOAD_REPLY, &m, mono_ms() + 2000, e2, sizeof(e2)))
		wire_free(m);
	else if (!strncmp(e2, "server: ", 8))
		snprintf(err, errlen, "%s", e2);
}

static int up_file(int fd, uint8_t *scratch, uint8_t *buf, unsigned timeout_ms, int dirfd,
		   const char *name, char *err, size_t errlen)
{
	int in = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	uint64_t off = 0;
	int rc = -1;

	if (in < 0 || fstat(in, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: %s", name, in < 0 ? strerror(errno) : "not a file");
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size;
	if (size > WIRE_MAX_META_SPARSE) {
		snprintf(err, errlen, "%s: too large", name);
		goto out;
	}
	/* One chunk a pass, off grows by it; an empty file is one empty chunk. */
	do {
		size_t want = size - off < WIRE_META_CHUNK ? (size_t)(size - off) : WIRE_META_CHUNK;
		ssize_t got = want ? pread(in, buf, want, (off_t)off) : 0;
		if (got < 0 || (size_t)got != want) {
			snprintf(err, errlen, "reading %s: %s", name,
				 got < 0 ? strerror(errno) : "it shrank");
			goto out;
		}
		LwUploadFile f = LW_UPLOAD_FILE__INIT;
		f.name = (char *)name;
		f.off = off;
		f.size = size;
		f.data = (ProtobufCBinaryData){want, buf};
		int r = wire_send(fd, scratch, WT_UPLOAD_FILE, &f.base, NULL, 0,
				  mono_ms() + timeout_ms);
		if (r) {
			snprintf(err, errlen, "sending %s: %s", name, strerror(-r));
			goto out;
		}
		off += want;
	} while (off < size);
	rc = 0;
out:
	if (in >= 0)
		close(in);
	return rc;
}

int wire_upload(const struct wire_client *c, int dirfd, struct wire_meta_result *res, char *err,
		size_t errlen)
{
	uint8_t *scratch = malloc(WIRE_SCRATCH), *buf = malloc(WIRE_META_CHUNK);
	char **names = NULL;
	size_t n = 0;
	int fd = -1, rc = -1;
	ProtobufCMessage *m;

	memset(res, 0, sizeof(*res));
	if (!scratch || !buf) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!c->image || !wire_id_ok(c->image)) {
		snprintf(err, errlen, "bad image id '%s'", c->image ? c->image : "");
		goto out;
	}
	if (up_list(dirfd, &names, &n, err, errlen))
		goto out;
	fd = wire_client_handshake(c, LW_ROLE__LW_ROLE_PUBLISH, scratch, mono_ms() + c->timeout_ms,
				   err, errlen);
	if (fd < 0)
		goto out;
	LwUpload u = LW_UPLOAD__INIT;
	u.image = (char *)c->image;
	uint64_t deadline = mono_ms() + c->timeout_ms;
	if (wire_send(fd, scratch, WT_UPLOAD, &u.base, NULL, 0, deadline) ||
	    wire_client_expect(fd, scratch, WT_UPLOAD_REPLY, &m, deadline, err, errlen))
		goto out;
	wire_free(m);
	for (size_t i = 0; i < n; i++)
		if (up_file(fd, scratch, buf, c->timeout_ms, dirfd, names[i], err, errlen)) {
			server_reason(fd, scratch, err, errlen);
			goto out;
		}
	LwUploadEnd e = LW_UPLOAD_END__INIT;
	e.nr_files = (uint32_t)n;
	deadline = mono_ms() + c->timeout_ms;
	if (wire_send(fd, scratch, WT_UPLOAD_END, &e.base, NULL, 0, deadline)) {
		server_reason(fd, scratch, err, errlen);
		goto out;
	}
	if (wire_client_expect(fd, scratch, WT_UPLOAD_REPLY, &m, deadline, err, errlen))
		goto out;
	LwUploadReply *r = (LwUploadReply *)m;
	res->files = r->nr_files;
	res->bytes = r->bytes;
	wire_free(m);
	if (res->files != n) {
		snprintf(err, errlen, "the server took %u of %zu files", res->files, n);
		goto out;
	}
	rc = 0;
out:
	wire_sock_close(fd);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(buf);
	free(scratch);
	return rc;
}

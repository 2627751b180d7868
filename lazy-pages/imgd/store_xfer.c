/*
 * Images between a directory and the object store: publish (UPLOAD_END of criu-imgd --store),
 * `criu-imgd store put DIR ID` and `criu-imgd store get ID DIR`. A put writes every object of
 * the image under a fresh GEN, then the manifest: until that last PUT the image does not
 * exist for any criu-imgd; a put killed half-way leaves objects no manifest names.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/log.h"
#include "wire/wire_io.h"

#define XFER_MAX_DIRENTS 65536u /* entries of an image dir looked at */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_file *)a)->name, ((const struct store_file *)b)->name);
}

/* The files of the image in dirfd into m (names, sizes; sorted). 0 or -errno with e. */
static int list_dir(int dirfd, struct store_manifest *m, struct errmsg *e)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	unsigned seen = 0;
	int rc = 0;

	if (!dir) {
		rc = errmsg_set(e, errno, "cannot list the image dir: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	for (struct dirent *de; !rc && (de = readdir(dir));) {
		struct stat st;
		if (++seen > XFER_MAX_DIRENTS) {
			rc = errmsg_set(e, E2BIG, "more than %u entries", XFER_MAX_DIRENTS);
			break;
		}
		if (de->d_name[0] == '.' || fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (!wire_upload_name_ok(de->d_name)) {
			pr_info("store: %s is not stored (not an image file)", de->d_name);
			continue;
		}
		bool pages = wire_meta_pages_id(de->d_name) >= 0;
		if (m->n == WIRE_MAX_META_FILES ||
		    (uint64_t)st.st_size > (pages ? STORE_PAGES_MAX : WIRE_MAX_META_FILE)) {
			rc = errmsg_set(e, EFBIG, "%s: too many files, or too large", de->d_name);
			break;
		}
		struct store_file *f = &m->f[m->n++];
		memcpy(f->name, de->d_name, strlen(de->d_name) + 1); /* checked: <= 128 */
		f->size = (uint64_t)st.st_size;
		f->pages = pages;
	}
	closedir(dir);
	if (!rc)
		qsort(m->f, m->n, sizeof(*m->f), name_cmp);
	return rc;
}

/* pread exactly len bytes: 0 or -errno. */
static int read_full(int fd, void *buf, size_t len, uint64_t off)
{
	for (size_t got = 0; got < len;) {
		ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return 0;
}

/* Every object of file f (its checksums into f), read from dirfd. 0 or -errno with e. */
static int put_file(struct imgd_store *st, int dirfd, const char *id, struct store_manifest *m,
		    struct store_file *f, uint8_t *buf, struct errmsg *e)
{
	char key[STORE_KEY_MAX];
	int fd = openat(dirfd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errmsg_set(e, errno, "cannot open %s: %s", f->name, strerror(errno));
	if (!f->pages) {
		if ((rc = read_full(fd, buf, f->size, 0)))
			rc = errmsg_set(e, -rc, "reading %s: %s", f->name, strerror(-rc));
		f->sum = XXH64(buf, f->size, 0);
		snprintf(key, sizeof(key), "%s/%s/meta/%s", id, m->gen, f->name);
		if (!rc)
			rc = store_be_put(&st->be, key, buf, f->size, false, e);
		close(fd);
		return rc;
	}
	f->nchunks = store_chunks(f->size, m->chunk);
	f->csum = calloc(f->nchunks ? f->nchunks : 1, sizeof(*f->csum));
	if (!f->csum)
		rc = errmsg_set(e, ENOMEM, "out of memory");
	for (uint64_t k = 0; !rc && k < f->nchunks; k++) {
		uint64_t off = k * m->chunk;
		size_t n = f->size - off < m->chunk ? (size_t)(f->size - off) : m->chunk;
		if ((rc = read_full(fd, buf, n, off))) {
			rc = errmsg_set(e, -rc, "reading %s: %s", f->name, strerror(-rc));
			break;
		}
		f->csum[k] = XXH64(buf, n, 0);
		snprintf(key, sizeof(key), "%s/%s/pages/%s/%08llx", id, m->gen, f->name,
			 (unsigned long long)k);
		rc = store_be_put(&st->be, key, buf, n, false, e);
	}
	close(fd);
	return rc;
}

int store_put_dir(struct imgd_store *st, int dirfd, const char *id, struct errmsg *e)
{
	struct store_manifest m = {.chunk = STORE_CHUNK};
	char key[STORE_KEY_MAX], *text = NULL;
	uint8_t rnd[8], *buf = NULL;
	size_t tlen;
	int rc;

	if (!image_id_ok(id))
		return errmsg_set(e, EINVAL, "bad image id '%s' (%s)", id, IMAGE_ID_RULE);
	snprintf(key, sizeof(key), "%s/manifest", id);
	rc = store_be_head(&st->be, key, e);
	if (rc != -ENOENT)
		return rc ? rc
			  : errmsg_set(e, EEXIST, "image %s exists in %s: not replaced", id,
				       st->be.url);
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return errmsg_set(e, errno, "getrandom: %s", strerror(errno));
	for (int i = 0; i < 8; i++)
		snprintf(m.gen + 2 * i, 3, "%02x", rnd[i]);
	m.f = calloc(WIRE_MAX_META_FILES, sizeof(*m.f));
	buf = malloc(WIRE_MAX_META_FILE > STORE_CHUNK ? WIRE_MAX_META_FILE : STORE_CHUNK);
	if (!m.f || !buf) {
		rc = errmsg_set(e, ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = list_dir(dirfd, &m, e)))
		goto out;
	uint64_t bytes = 0;
	for (size_t i = 0; i < m.n && !rc; i++) {
		rc = put_file(st, dirfd, id, &m, &m.f[i], buf, e);
		bytes += m.f[i].size;
	}
	if (!rc && (rc = store_manifest_format(&m, &text, &tlen)))
		errmsg_set(e, -rc, "cannot write the manifest: %s", strerror(-rc));
	/* Put only if absent: atomic with rados (an exclusive create); with S3 a HEAD first,
	 * which narrows but does not close the window for two publishers of one id (their
	 * objects never mix, GEN; the last manifest wins). */
	if (!rc && (rc = store_be_put(&st->be, key, text, tlen, true, e)) == -EEXIST)
		errmsg_set(e, EEXIST, "image %s appeared meanwhile: not replaced", id);
	if (!rc)
		pr_msg("store: image %s written to %s: %zu files, %llu bytes (gen %s)", id,
		       st->be.url, m.n, (unsigned long long)bytes, m.gen);
out:
	free(text);
	free(buf);
	store_manifest_free(&m);
	return rc;
}

int store_get_dir(struct imgd_store *st, const char *id, int dirfd, struct errmsg *e)
{
	struct store_manifest m = {0};
	int rc = store_manifest_get(st, id, &m, e);

	for (size_t i = 0; !rc && i < m.n; i++) {
		const struct store_file *f = &m.f[i];
		if (!f->pages) {
			rc = store_small_fetch(st, id, &m, f, dirfd, e);
			continue;
		}
		int fd = wire_create_private(dirfd, f->name);
		if (fd < 0) {
			rc = errmsg_set(e, errno, "cannot create %s: %s", f->name, strerror(errno));
			break;
		}
		for (uint64_t k = 0; !rc && k < f->nchunks; k++) {
			uint8_t *data;
			uint32_t n;
			rc = store_chunk_fetch(st, id, &m, f, k, &data, &n, e);
			st->chunk_reads++;
			st->bad_chunks += rc == -EILSEQ;
			if (rc)
				break;
			ssize_t w = pwrite(fd, data, n, (off_t)(k * m.chunk));
			if (w < 0 || (size_t)w != n)
				rc = errmsg_set(e, EIO, "writing %s: %s", f->name,
						w < 0 ? strerror(errno) : "short write");
			free(data);
		}
		if (close(fd) && !rc)
			rc = errmsg_set(e, errno, "closing %s: %s", f->name, strerror(errno));
	}
	if (!rc)
		pr_msg("store: image %s fetched from %s: %zu files, every byte verified", id,
		       st->be.url, m.n);
	store_manifest_free(&m);
	return rc;
}

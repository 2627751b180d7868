/* An image's identity: see fingerprint.h. */
#include "fingerprint.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/parse.h"
#include "workset.h"

#define FP_MAX_DIRENTS (2u * IMG_FP_MAX_FILES) /* entries of the dir we look at */
#define FP_BUF (64u << 10)

bool img_fingerprint_file(const char *name)
{
	size_t n = strnlen(name, IMG_FP_NAME_MAX + 1);

	if (!file_name_ok(name, IMG_FP_NAME_MAX) || n < 5 || strcmp(name + n - 4, ".img"))
		return false;
	return strncmp(name, "pages-", 6) && strcmp(name, WS_FILE_NAME);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct names {
	char **v;
	size_t n, cap;
};

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct names){0};
}

static int names_add(struct names *l, const char *name, struct errmsg *e)
{
	if (l->n == IMG_FP_MAX_FILES)
		return errmsg_set(e, EFBIG, "more than %u image files", IMG_FP_MAX_FILES);
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return errmsg_set(e, ENOMEM, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(name)))
		return errmsg_set(e, ENOMEM, "out of memory");
	l->n++;
	return 0;
}

/* A regular file (not a symlink, a dir...): only those are sent (imgd/meta.c). */
static bool regular(int dirfd, const char *name)
{
	struct stat st;

	return !fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode);
}

/* The names of dirfd's files that take part (l: names_free it). */
static int list(int dirfd, struct names *l, struct errmsg *e)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	size_t seen = 0;
	int rc = 0;

	if (!dir) {
		rc = errmsg_set(e, errno, "cannot list the images dir: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	for (struct dirent *de; !rc && (de = readdir(dir));) {
		if (++seen > FP_MAX_DIRENTS)
			rc = errmsg_set(e, EFBIG, "more than %u entries", FP_MAX_DIRENTS);
		else if (img_fingerprint_file(de->d_name) && regular(dirfd, de->d_name))
			rc = names_add(l, de->d_name, e);
	}
	closedir(dir);
	return rc;
}

/* Hash one file in: its name, its size, its bytes. */
static int hash_file(XXH64_state_t *h, int dirfd, const char *name, uint8_t *buf, uint64_t *total,
		     struct errmsg *e)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	int rc = 0;

	if (fd < 0)
		return errmsg_set(e, errno, "%s: %s", name, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		rc = errmsg_set(e, EINVAL, "%s: not a regular file", name);
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size, le = htole64(size);
	if ((*total += size) > IMG_FP_MAX_BYTES) {
		rc = errmsg_set(e, EFBIG, "image files larger than %llu MiB together",
				(unsigned long long)(IMG_FP_MAX_BYTES >> 20));
		goto out;
	}
	XXH64_update(h, name, strlen(name) + 1);
	XXH64_update(h, &le, sizeof(le));
	for (uint64_t done = 0; done < size;) {
		size_t want = size - done < FP_BUF ? (size_t)(size - done) : FP_BUF;
		ssize_t got = pread(fd, buf, want, (off_t)done);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = errmsg_set(e, got ? errno : EIO, "%s: %s", name,
					got ? strerror(errno) : "shorter than its size");
			goto out;
		}
		XXH64_update(h, buf, (size_t)got);
		done += (uint64_t)got;
	}
out:
	close(fd);
	return rc;
}

/* The fingerprint of the files of l (sorted here). */
static int hash_names(int dirfd, struct names *l, uint64_t *fp, struct errmsg *e)
{
	XXH64_state_t *h = XXH64_createState();
	uint8_t *buf = malloc(FP_BUF);
	uint64_t total = 0;
	int rc = 0;

	if (!h || !buf) {
		rc = errmsg_set(e, ENOMEM, "out of memory");
		goto out;
	}
	qsort(l->v, l->n, sizeof(*l->v), name_cmp);
	XXH64_reset(h, 0);
	for (size_t i = 0; !rc && i < l->n; i++)
		rc = hash_file(h, dirfd, l->v[i], buf, &total, e);
	if (!rc) {
		*fp = XXH64_digest(h);
		if (!*fp) /* 0 means "none" on the wire */
			*fp = 1;
	}
out:
	free(buf);
	XXH64_freeState(h);
	return rc;
}

int img_fingerprint(int dirfd, uint64_t *fp, struct errmsg *e)
{
	struct names l = {0};
	int rc;

	if (faccessat(dirfd, "inventory.img", F_OK, AT_SYMLINK_NOFOLLOW))
		return errmsg_set(e, ENOENT, "no inventory.img");
	rc = list(dirfd, &l, e);
	if (!rc)
		rc = hash_names(dirfd, &l, fp, e);
	names_free(&l);
	return rc;
}

int img_fingerprint_of(int dirfd, const char *const *names, size_t n, uint64_t *fp,
		       struct errmsg *e)
{
	struct names l = {0};
	int rc = 0;

	for (size_t i = 0; !rc && i < n; i++)
		if (img_fingerprint_file(names[i]))
			rc = names_add(&l, names[i], e);
	if (!rc)
		rc = hash_names(dirfd, &l, fp, e);
	names_free(&l);
	return rc;
}

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

#include "workset.h"

#define FP_NAME_MAX 255
#define FP_MAX_DIRENTS 65536u /* entries of the dir we look at */
#define FP_BUF (64u << 10)

bool img_fingerprint_file(const char *name)
{
	size_t n = strnlen(name, FP_NAME_MAX + 1);

	if (n > FP_NAME_MAX || n < 5 || strcmp(name + n - 4, ".img"))
		return false;
	return strncmp(name, "pages-", 6) && strcmp(name, WS_FILE_NAME);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dirfd's files that take part, sorted (*names: free each and the array). */
static int list(int dirfd, char ***names, size_t *n, struct errmsg *e)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	size_t seen = 0;
	int rc = 0;

	*names = NULL;
	*n = 0;
	if (!dir) {
		rc = errmsg_set(e, errno, "cannot list the images dir: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	*names = calloc(IMG_FP_MAX_FILES, sizeof(**names));
	if (!*names) {
		closedir(dir);
		return errmsg_set(e, ENOMEM, "out of memory");
	}
	for (struct dirent *de; !rc && (de = readdir(dir));) {
		struct stat st;
		if (++seen > FP_MAX_DIRENTS)
			rc = errmsg_set(e, EFBIG, "more than %u entries", FP_MAX_DIRENTS);
		else if (!img_fingerprint_file(de->d_name) ||
			 fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
			 !S_ISREG(st.st_mode))
			continue; /* only the files a server lists and sends (imgd/meta.c) */
		else if (*n == IMG_FP_MAX_FILES)
			rc = errmsg_set(e, EFBIG, "more than %u image files", IMG_FP_MAX_FILES);
		else if (!((*names)[*n] = strdup(de->d_name)))
			rc = errmsg_set(e, ENOMEM, "out of memory");
		else
			(*n)++;
	}
	closedir(dir);
	if (!rc)
		qsort(*names, *n, sizeof(**names), name_cmp);
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
		rc = errmsg_set(e, EFBIG, "image files larger than %u MiB together",
				IMG_FP_MAX_BYTES >> 20);
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

int img_fingerprint(int dirfd, uint64_t *fp, struct errmsg *e)
{
	XXH64_state_t *h = XXH64_createState();
	uint8_t *buf = malloc(FP_BUF);
	char **names = NULL;
	size_t n = 0;
	uint64_t total = 0;
	int rc;

	if (!h || !buf) {
		rc = errmsg_set(e, ENOMEM, "out of memory");
		goto out;
	}
	if (faccessat(dirfd, "inventory.img", F_OK, AT_SYMLINK_NOFOLLOW)) {
		rc = errmsg_set(e, ENOENT, "no inventory.img");
		goto out;
	}
	rc = list(dirfd, &names, &n, e);
	XXH64_reset(h, 0);
	for (size_t i = 0; !rc && i < n; i++)
		rc = hash_file(h, dirfd, names[i], buf, &total, e);
	if (!rc) {
		*fp = XXH64_digest(h);
		if (!*fp) /* 0 means "none" on the wire */
			*fp = 1;
	}
out:
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	free(buf);
	XXH64_freeState(h);
	return rc;
}

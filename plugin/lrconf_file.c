/* Which settings file, and reading it: small, a regular file, not writable by anyone. */
#include "lrconf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *lrconf_path(bool *explicit_path)
{
	const char *env = getenv(LRCONF_ENV);

	if (env && *env) {
		*explicit_path = true;
		return env;
	}
	*explicit_path = false;
	return LRCONF_DEFAULT_PATH;
}

/* The file behind FD may be read: 0, or -errno (EISDIR/EINVAL: not a file, EFBIG: too big,
 * EPERM: anyone may write it). */
static int check_file(int fd, size_t max, struct stat *st)
{
	if (fstat(fd, st))
		return -errno;
	if (!S_ISREG(st->st_mode))
		return S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
	if ((size_t)st->st_size > max)
		return -EFBIG;
	/* It names a program that CRIU (root) will run: anyone who can write it could pick it. */
	if (st->st_mode & S_IWOTH)
		return -EPERM;
	return 0;
}

/* Up to SIZE bytes of FD into a new buffer (*len: how many). 0 or -errno. */
static int read_upto(int fd, size_t size, char **out, size_t *len)
{
	char *buf = malloc(size + 1);
	size_t got = 0;

	if (!buf)
		return -ENOMEM;
	/* One byte more than fstat said: a file that grew while reading is read as far as fits. */
	while (got < size + 1) {
		ssize_t r = read(fd, buf + got, size + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;
			free(buf);
			return -err;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*out = buf;
	*len = got > size ? size : got;
	return 0;
}

/* Read a whole small file: 0 or -errno. */
static int slurp(const char *path, size_t max, char **text, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -errno;
	int rc = check_file(fd, max, &st);
	if (!rc)
		rc = read_upto(fd, (size_t)st.st_size, text, len);
	close(fd);
	return rc;
}

int lrconf_load(struct lr_conf *c, const char *path, bool missing_ok, struct errmsg *e)
{
	size_t len = 0;
	char *text = NULL;
	int rc = slurp(path, LRCONF_MAX_SIZE, &text, &len);

	if (rc) {
		lrconf_defaults(c);
		if (rc == -ENOENT && missing_ok) {
			errmsg_clear(e);
			return 0;
		}
		return errmsg_set(e, rc, "%s: cannot read: %s", path,
				  rc == -EFBIG	  ? "larger than 1 MiB"
				  : rc == -EINVAL ? "not a regular file"
				  : rc == -EPERM  ? "writable by anyone (chmod o-w): refused"
						  : strerror(-rc));
	}
	rc = lrconf_parse(c, path, text, len, e);
	free(text);
	return rc;
}

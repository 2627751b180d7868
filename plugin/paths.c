/* Where CRIU's images are, and small-file reading. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lr.h"

int lr_images_dir(char *out, size_t n, struct errmsg *e)
{
	char link[64];
	struct stat a, b;

	if (!criu_get_image_dir)
		return errmsg_set(e, ENOSYS,
				  "criu_get_image_dir() is not available (not loaded by CRIU?)");
	int fd = criu_get_image_dir();
	if (fd < 0 || fstat(fd, &a))
		return errmsg_set(e, EBADF, "CRIU's images dir fd %d is not open", fd);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t len = readlink(link, out, n - 1);
	if (len < 0)
		return errmsg_set(e, errno, "readlink %s: %s", link, strerror(errno));
	out[len] = '\0';
	/* The daemon opens it by name: the name must still lead to the same directory. */
	if (out[0] != '/' || stat(out, &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return errmsg_set(e, ESTALE, "the images dir (%s) cannot be reached by its path",
				  out);
	return 0;
}

char *lr_read_file(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t got = 0, cap = 4096;
	char *buf;

	if (fd < 0)
		return NULL;
	buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	for (;;) {
		if (got == cap) {
			if (cap >= max)
				break;
			cap = cap * 2 > max ? max : cap * 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb)
				break;
			buf = nb;
		}
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*len = got;
	return buf;
}

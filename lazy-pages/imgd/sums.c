/*
 * The dump-time checksum index: pages-N.img.xxh64 next to pages-N.img, one
 * little-endian XXH64 per 4 KiB page of the pages file. Written once
 * (criu-imgd --make-sums, after the dump); read a slice at a time.
 */
#include "sums.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "wire/wire.h"

#define SUMS_BATCH 256 /* pages hashed per read */

static void sums_name(const struct img_task *t, char *buf, size_t len)
{
	snprintf(buf, len, "pages-%u.img.xxh64", t->pages_id);
}

int sums_write(int dirfd, const struct img_task *t)
{
	char name[64], tmp[80];
	uint64_t pages = t->pages_size / WIRE_PAGE;
	void *buf = malloc((size_t)SUMS_BATCH * WIRE_PAGE);
	uint64_t sums[SUMS_BATCH];
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	sums_name(t, name, sizeof(name));
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && fchmod(fd, 0600)) { /* hashes of secret pages: private as the pages */
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	for (uint64_t p = 0; p < pages && !rc; p += SUMS_BATCH) {
		uint32_t n = pages - p < SUMS_BATCH ? (uint32_t)(pages - p) : SUMS_BATCH;
		ssize_t got =
		    pread(t->pages_fd, buf, (size_t)n * WIRE_PAGE, (off_t)(p * WIRE_PAGE));
		if (got != (ssize_t)n * WIRE_PAGE) {
			rc = got < 0 ? -errno : -EIO;
			break;
		}
		for (uint32_t i = 0; i < n; i++)
			sums[i] = htole64(wire_page_sum((char *)buf + (size_t)i * WIRE_PAGE));
		if (write(fd, sums, n * sizeof(sums[0])) != (ssize_t)(n * sizeof(sums[0])))
			rc = -EIO;
	}
	free(buf);
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && renameat(dirfd, tmp, dirfd, name))
		rc = -errno;
	if (rc)
		unlinkat(dirfd, tmp, 0);
	return rc;
}

int sums_open(int dirfd, const struct img_task *t)
{
	char name[64];
	struct stat st;

	sums_name(t, name, sizeof(name));
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if ((uint64_t)st.st_size != t->pages_size / WIRE_PAGE * 8) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int sums_read(int fd, uint64_t page, uint32_t n, uint64_t *out)
{
	ssize_t got = pread(fd, out, n * sizeof(*out), (off_t)(page * sizeof(*out)));

	if (got != (ssize_t)(n * sizeof(*out)))
		return -EIO;
	for (uint32_t i = 0; i < n; i++)
		out[i] = le64toh(out[i]);
	return 0;
}

int sums_fingerprint(const struct img_set *set, const int *fds, uint64_t *fp)
{
	XXH64_state_t *h = XXH64_createState();
	uint8_t *buf = malloc(64u << 10);
	int rc = h && buf ? 0 : -ENOMEM;

	if (h)
		XXH64_reset(h, 0);
	for (size_t i = 0; !rc && i < set->nr_tasks; i++) {
		if (fds[i] < 0)
			continue;
		uint64_t size = set->tasks[i].pages_size / WIRE_PAGE * 8;
		uint64_t tag = htole64(((uint64_t)set->tasks[i].pages_id << 32) ^ size);
		XXH64_update(h, &tag, sizeof(tag));
		for (uint64_t done = 0; !rc && done < size;) {
			size_t want =
			    size - done < (64u << 10) ? (size_t)(size - done) : (64u << 10);
			ssize_t got = pread(fds[i], buf, want, (off_t)done);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				rc = -EIO;
			else {
				XXH64_update(h, buf, (size_t)got);
				done += (uint64_t)got;
			}
		}
	}
	if (!rc) {
		*fp = XXH64_digest(h);
		if (!*fp)
			*fp = 1;
	}
	free(buf);
	XXH64_freeState(h);
	return rc;
}

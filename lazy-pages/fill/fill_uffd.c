/* The plain userfaultfd fill engine: UFFDIO_COPY, UFFDIO_ZEROPAGE, UFFDIO_WAKE. */
#include "fill.h"

#include <errno.h>
#include <stddef.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

/*
 * The kernel may install part of a range and then stop: it reports the bytes
 * done (the ioctl fails with EAGAIN), or a negative errno when nothing was
 * done. Loop until all is in or an error comes with no progress.
 */
static int uffd_copy(void *ctx, int uffd, uint64_t dst, const void *src, uint64_t len,
		     uint64_t *done)
{
	(void)ctx;
	*done = 0;
	while (*done < len) {
		struct uffdio_copy c = {
		    .dst = dst + *done,
		    .src = (uint64_t)(uintptr_t)src + *done,
		    .len = len - *done,
		    .mode = 0,
		};
		int rc = ioctl(uffd, UFFDIO_COPY, &c);
		if (c.copy > 0) {
			*done += (uint64_t)c.copy;
			continue;
		}
		if (rc == 0)
			return -EIO; /* success with no progress: should not happen */
		return c.copy < 0 ? (int)c.copy : -errno;
	}
	return 0;
}

static int uffd_zero(void *ctx, int uffd, uint64_t dst, uint64_t len, uint64_t *done)
{
	(void)ctx;
	*done = 0;
	while (*done < len) {
		struct uffdio_zeropage z = {
		    .range = {.start = dst + *done, .len = len - *done},
		    .mode = 0,
		};
		int rc = ioctl(uffd, UFFDIO_ZEROPAGE, &z);
		if (z.zeropage > 0) {
			*done += (uint64_t)z.zeropage;
			continue;
		}
		if (rc == 0)
			return -EIO;
		return z.zeropage < 0 ? (int)z.zeropage : -errno;
	}
	return 0;
}

static int uffd_wake(void *ctx, int uffd, uint64_t dst, uint64_t len)
{
	(void)ctx;
	struct uffdio_range r = {.start = dst, .len = len};
	return ioctl(uffd, UFFDIO_WAKE, &r) ? -errno : 0;
}

static const struct filler_ops uffd_ops = {
    .name = "uffd",
    .copy = uffd_copy,
    .zero = uffd_zero,
    .wake = uffd_wake,
};

void filler_uffd(struct filler *f)
{
	f->ops = &uffd_ops;
	f->ctx = NULL;
}

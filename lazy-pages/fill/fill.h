/*
 * Installing pages into a restored task. One interface, several engines:
 * plain userfaultfd ioctls now, lazyfill.ko batches later.
 */
#ifndef LAZY_FILL_H
#define LAZY_FILL_H

#include <stdint.h>

/*
 * Results (negative errno style, as the kernel reports them):
 *   0        everything installed and the waiters woken
 *   -EEXIST  some page was already present (the rest is not installed)
 *   -EAGAIN  the address space is changing: read the uffd events, then retry
 *   -ESRCH   the task's mm is gone (exited or exec'd)
 *   -ENOENT  no registered VMA there any more
 * *done always says how many bytes from dst were installed.
 */
struct filler_ops {
	const char *name;
	int (*copy)(void *ctx, int uffd, uint64_t dst, const void *src, uint64_t len,
		    uint64_t *done);
	int (*zero)(void *ctx, int uffd, uint64_t dst, uint64_t len, uint64_t *done);
	int (*wake)(void *ctx, int uffd, uint64_t dst, uint64_t len);
};

struct filler {
	const struct filler_ops *ops;
	void *ctx;
};

void filler_uffd(struct filler *f);

#endif

/*
 * Installing pages into a restored task. One interface, two engines: plain
 * userfaultfd ioctls (fill_uffd.c) and lazyfill.ko's validated, atomic batches
 * (fill_kmod.c). The daemon calls the filler_*() wrappers below and never asks
 * which engine it has.
 */
#ifndef LAZY_FILL_H
#define LAZY_FILL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Results (negative errno style, as the kernel reports them):
 *   0        everything installed and the waiters woken
 *   -EEXIST  some page was already present (the rest is not installed)
 *   -EAGAIN  the address space is changing: read the uffd events, then retry
 *   -ESRCH   the task's mm is gone (exited or exec'd)
 *   -ENOENT  no registered VMA there any more
 * *done always says how many bytes from dst were installed.
 */

/*
 * One extent of a batch: install len bytes at dst from src (NULL: zero pages).
 * A present page stops its extent as it stops a copy: result -EEXIST, done the bytes
 * installed before it (the present page is at dst + done). An extent the batch did not
 * attempt (it stopped before, or was refused) has done 0 and result -EAGAIN: retry it.
 */
struct fill_extent {
	uint64_t dst, len;
	const void *src;
	/* out: */
	uint64_t done; /* bytes from dst installed (or present already) */
	int result;    /* 0 or the -errno above that stopped this extent */
};

/* Counters of an engine, for the summary and the stats file. */
struct fill_stats {
	uint64_t batches;     /* batch calls that went through the engine's own batch path */
	uint64_t batch_bytes; /* bytes installed by them */
	uint64_t plain_calls; /* calls served with plain ioctls */
	uint32_t sessions;    /* tasks attached now */
	uint32_t attach_failed;
	uint32_t dropped; /* sessions dropped: bound to the wrong task */
};

struct filler_ops {
	const char *name;
	int (*copy)(void *ctx, int uffd, uint64_t dst, const void *src, uint64_t len,
		    uint64_t *done);
	int (*zero)(void *ctx, int uffd, uint64_t dst, uint64_t len, uint64_t *done);
	int (*wake)(void *ctx, int uffd, uint64_t dst, uint64_t len);

	/* ---- optional (NULL when the engine has none; the wrappers below fall back) ---- */

	/* Bind uffd to its task (pidfd >= 0, or pid > 0); verify: only if the task has a VMA
	 * registered with uffd now (-EPERM if not). */
	int (*attach)(void *ctx, int uffd, pid_t pid, int pidfd, bool verify);
	void (*detach)(void *ctx, int uffd); /* before uffd is closed */
	/* Install ext[0..n) as one batch, each extent's done/result set; waiters woken.
	 * 0 when all settled, else the first extent's -errno that did not (*first = its index). */
	int (*batch)(void *ctx, int uffd, struct fill_extent *ext, uint32_t n, uint32_t *first);
	void (*stats)(void *ctx, struct fill_stats *st);
	void (*close)(void *ctx);
};

struct filler {
	const struct filler_ops *ops;
	void *ctx;
};

void filler_uffd(struct filler *f);

/*
 * The calls the daemon makes; each uses the engine's op when it has one:
 * attach: 0 when the engine needs no binding (plain uffd: the uffd is the task);
 * batch: without a batch op, extent by extent with copy/zero, in order, stopping at the
 * first that does not settle (same result contract); *first = n when all settled;
 * stats: zeros without a stats op; close: also resets f.
 */
int filler_attach(struct filler *f, int uffd, pid_t pid, int pidfd, bool verify);
void filler_detach(struct filler *f, int uffd);
int filler_batch(struct filler *f, int uffd, struct fill_extent *ext, uint32_t n, uint32_t *first);
void filler_stats(const struct filler *f, struct fill_stats *st);
void filler_close(struct filler *f);

/*
 * filler_batch()'s fallback, for engines too (what their own batch path cannot take):
 * ext[0..n) one by one with ops->copy/zero, stopping at the first extent that does not
 * settle; the extents after it are marked not attempted. *first = n when all settled.
 */
int fill_batch_each(const struct filler_ops *ops, void *ctx, int uffd, struct fill_extent *ext,
		    uint32_t n, uint32_t *first);

#endif

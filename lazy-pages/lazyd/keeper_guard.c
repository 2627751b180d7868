/*
 * The worker's fill engine, guarded (keeper.h): an install goes in only under the lock the
 * keeper reads the uffds under, and only when the worker has applied every event the keeper
 * has read; else -EAGAIN, as the kernel answers while an event is queued.
 */
#include <errno.h>
#include <pthread.h>

#include "lazyd.h"

struct guard {
	struct filler inner;
	struct keeper_link *k;
};

static struct guard guard;

static bool guard_enter(struct keeper_link *k)
{
	/* A worker that died holding it left nothing half done; a keeper that did may have
	 * read an event and not counted it: then nothing goes in any more (the link's EOF
	 * follows, and the tasks are killed). */
	if (!fill_fence_take(&k->shm->lock, &k->shm->lock_owner, FENCE_INSTALLER))
		return false;
	if (k->shm->events_read != k->events_seen) {
		pthread_mutex_unlock(&k->shm->lock);
		return false;
	}
	return true;
}

static int g_copy(void *ctx, int uffd, uint64_t dst, const void *src, uint64_t len, uint64_t *done)
{
	struct guard *g = ctx;

	*done = 0;
	if (!guard_enter(g->k))
		return -EAGAIN;
	int rc = g->inner.ops->copy(g->inner.ctx, uffd, dst, src, len, done);
	pthread_mutex_unlock(&g->k->shm->lock);
	return rc;
}

static int g_zero(void *ctx, int uffd, uint64_t dst, uint64_t len, uint64_t *done)
{
	struct guard *g = ctx;

	*done = 0;
	if (!guard_enter(g->k))
		return -EAGAIN;
	int rc = g->inner.ops->zero(g->inner.ctx, uffd, dst, len, done);
	pthread_mutex_unlock(&g->k->shm->lock);
	return rc;
}

static int g_wake(void *ctx, int uffd, uint64_t dst, uint64_t len)
{
	struct guard *g = ctx;

	return g->inner.ops->wake(g->inner.ctx, uffd, dst, len);
}

static int g_attach(void *ctx, int uffd, pid_t pid, int pidfd, bool verify)
{
	struct guard *g = ctx;

	return filler_attach(&g->inner, uffd, pid, pidfd, verify);
}

static void g_detach(void *ctx, int uffd)
{
	struct guard *g = ctx;

	filler_detach(&g->inner, uffd);
}

static int g_batch(void *ctx, int uffd, struct fill_extent *ext, uint32_t n, uint32_t *first)
{
	struct guard *g = ctx;

	if (!guard_enter(g->k)) {
		for (uint32_t i = 0; i < n; i++) {
			ext[i].done = 0;
			ext[i].result = -EAGAIN;
		}
		*first = 0;
		return -EAGAIN;
	}
	int rc = filler_batch(&g->inner, uffd, ext, n, first);
	pthread_mutex_unlock(&g->k->shm->lock);
	return rc;
}

static void g_stats(void *ctx, struct fill_stats *st)
{
	struct guard *g = ctx;

	filler_stats(&g->inner, st);
}

static void g_close(void *ctx)
{
	struct guard *g = ctx;

	filler_close(&g->inner);
}

static struct filler_ops guard_ops = {
    .copy = g_copy,
    .zero = g_zero,
    .wake = g_wake,
    .attach = g_attach,
    .detach = g_detach,
    .stats = g_stats,
    .close = g_close,
};

void keeper_guard_filler(struct lazyd *d)
{
	guard.inner = d->fill;
	guard.k = d->keeper;
	guard_ops.name = d->fill.ops->name;
	/* Optional ops stay optional: the daemon asks whether the engine has them. */
	guard_ops.attach = d->fill.ops->attach ? g_attach : NULL;
	guard_ops.detach = d->fill.ops->detach ? g_detach : NULL;
	guard_ops.batch = d->fill.ops->batch ? g_batch : NULL;
	guard_ops.stats = d->fill.ops->stats ? g_stats : NULL;
	d->fill = (struct filler){&guard_ops, &guard};
}

/* The filler_*() wrappers (see fill.h): the engine's op when it has one, else the fallback. */
#include "fill.h"

#include <errno.h>
#include <string.h>

int fill_batch_each(const struct filler_ops *ops, void *ctx, int uffd, struct fill_extent *ext,
		    uint32_t n, uint32_t *first)
{
	uint32_t i;
	int rc = 0;

	for (i = 0; i < n && !rc; i++) {
		struct fill_extent *e = &ext[i];

		e->done = 0;
		if (e->src)
			rc = ops->copy(ctx, uffd, e->dst, e->src, e->len, &e->done);
		else
			rc = ops->zero(ctx, uffd, e->dst, e->len, &e->done);
		e->result = rc;
	}
	*first = rc ? i - 1 : n;
	/* Not attempted: nothing installed there, to be retried. */
	for (; i < n; i++) {
		ext[i].done = 0;
		ext[i].result = -EAGAIN;
	}
	return rc;
}

int filler_attach(struct filler *f, int uffd, pid_t pid, int pidfd, bool verify)
{
	if (!f->ops->attach)
		return 0; /* plain uffd: the uffd is the task */
	return f->ops->attach(f->ctx, uffd, pid, pidfd, verify);
}

void filler_detach(struct filler *f, int uffd)
{
	if (f->ops->detach)
		f->ops->detach(f->ctx, uffd);
}

int filler_batch(struct filler *f, int uffd, struct fill_extent *ext, uint32_t n, uint32_t *first)
{
	if (f->ops->batch)
		return f->ops->batch(f->ctx, uffd, ext, n, first);
	return fill_batch_each(f->ops, f->ctx, uffd, ext, n, first);
}

void filler_stats(const struct filler *f, struct fill_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (f->ops && f->ops->stats)
		f->ops->stats(f->ctx, st);
}

void filler_close(struct filler *f)
{
	if (f->ops && f->ops->close)
		f->ops->close(f->ctx);
	f->ops = NULL;
	f->ctx = NULL;
}

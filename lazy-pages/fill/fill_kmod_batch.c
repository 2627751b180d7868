/*
 * The kmod engine's batch op: fill.h's extents go through filler_kmod_batch()
 * (lazyfill.ko's batch entry point), with the results translated back.
 */
#include "fill_kmod.h"

#include <errno.h>

#define KMOD_BATCH_MAX 128u /* extents per module call (translated on the stack) */

static void to_uapi(const struct fill_extent *e, struct lazyfill_extent *l)
{
	*l = (struct lazyfill_extent){
	    .dst = e->dst,
	    .len = e->len,
	    .src = (uint64_t)(uintptr_t)e->src,
	    .mode = e->src ? LAZYFILL_MODE_COPY : LAZYFILL_MODE_ZERO,
	};
}

/*
 * The module's result of one extent in fill.h's terms. The batch ran with
 * LAZYFILL_FILL_STOP_EXIST, so a present page ends its extent (ST_EXIST, the
 * page counted in done and present) as it ends a UFFDIO_COPY.
 */
static void from_uapi(const struct lazyfill_extent *l, struct fill_extent *e)
{
	uint64_t done = l->done <= e->len ? l->done : e->len;
	uint64_t installed = l->present <= done ? done - l->present : 0;

	switch (l->status) {
	case LAZYFILL_ST_DONE:
		e->done = done;
		e->result = 0;
		break;
	case LAZYFILL_ST_EXIST:
		e->done = installed;
		e->result = -EEXIST;
		break;
	case LAZYFILL_ST_AGAIN:
		e->done = installed;
		e->result = l->error < 0 ? l->error : -EAGAIN;
		break;
	case LAZYFILL_ST_ERROR:
		e->done = installed;
		e->result = l->error < 0 ? l->error : -EIO;
		break;
	default: /* not run: the batch stopped before it */
		e->done = 0;
		e->result = -EAGAIN;
		break;
	}
}

/* How many of ext[0..n) go in one module call: its extent and byte limits (at least one). */
static uint32_t chunk_len(const struct fill_extent *ext, uint32_t n)
{
	uint64_t bytes = ext[0].len;
	uint32_t m = 1;

	while (m < n && m < KMOD_BATCH_MAX && bytes <= LAZYFILL_MAX_BYTES &&
	       ext[m].len <= LAZYFILL_MAX_BYTES - bytes) {
		bytes += ext[m].len;
		m++;
	}
	return m;
}

/*
 * ext[0..m) in one module call. 0 when all settled, else the lowest extent's
 * result that did not (*bad = its index); the module goes on past an extent
 * that failed alone (a present page, an unmapped range), so later ones may be
 * in. A batch the module refuses as a whole (nothing installed), or a uffd
 * without a session, goes extent by extent through the engine's copy and
 * zero, where the plain ioctls take over what the module will not take.
 */
static int batch_chunk(struct filler *f, int uffd, struct fill_extent *ext, uint32_t m,
		       uint32_t *bad)
{
	struct lazyfill_extent l[KMOD_BATCH_MAX];
	struct lazyfill_batch res = {0};
	uint32_t i;
	int rc;

	for (i = 0; i < m; i++)
		to_uapi(&ext[i], &l[i]);
	rc = filler_kmod_batch(f, uffd, l, m, LAZYFILL_FILL_STOP_EXIST, &res);
	if (rc && (rc == -ENOTCONN || res.index >= m || l[res.index].status == LAZYFILL_ST_NOTRUN))
		return fill_batch_each(f->ops, f->ctx, uffd, ext, m, bad);
	rc = 0;
	*bad = m;
	for (i = 0; i < m; i++) {
		from_uapi(&l[i], &ext[i]);
		if (ext[i].result && !rc) {
			rc = ext[i].result;
			*bad = i;
		}
	}
	return rc;
}

int filler_kmod_batch_extents(struct filler *f, int uffd, struct fill_extent *ext, uint32_t n,
			      uint32_t *first)
{
	uint32_t i = 0;

	while (i < n) {
		uint32_t m = chunk_len(ext + i, n - i), bad;
		int rc = batch_chunk(f, uffd, ext + i, m, &bad);

		if (rc) {
			*first = i + bad;
			for (i += m; i < n; i++) {
				ext[i].done = 0;
				ext[i].result = -EAGAIN; /* not attempted */
			}
			return rc;
		}
		i += m;
	}
	*first = n;
	return 0;
}

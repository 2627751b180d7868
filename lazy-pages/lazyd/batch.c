/*
 * Several runs of one task installed at once. lazyfill.ko takes a whole batch in one call,
 * validated and applied extent by extent under one look at the task's mm; the plain uffd
 * engine has no batch op and gets the runs one by one. Either way the pending set follows
 * what the kernel reports per extent, and whatever a batch did not settle (a present page,
 * a changing address space, an extent it did not attempt) goes through the one-run path,
 * whose error handling (install.c) is the only one.
 */
#include <errno.h>

#include "lazyd.h"

#define PAGE IMG_PAGE_SIZE

/* Runs a batch must not take: an unidentified fork child (install.c watches the first
 * install to tell which process it is) or a task whose images have guard regions (each
 * run is checked against the task's pagemap first). */
bool lazyd_can_batch(const struct lazyd *d, const struct lz_task *t)
{
	if (!d->fill.ops->batch)
		return false;
	if (t->real <= 0 && t->parent_real > 0)
		return false;
	return !(t->img && t->img->nr_guards);
}

void lazyd_install_batch(struct lazyd *d, struct lz_task *t, const struct pend_extent *r,
			 const void *const *data, uint32_t n, enum fill_path p)
{
	struct fill_extent ext[LAZYD_BATCH_MAX];
	uint32_t first = 0;

	if (n > LAZYD_BATCH_MAX)
		n = LAZYD_BATCH_MAX;
	if (n < 2 || !lazyd_can_batch(d, t)) {
		for (uint32_t i = 0; i < n && !t->gone && !t->killed && !t->need_events; i++)
			lazyd_install_run(d, t, r[i], p, data[i]);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		ext[i] = (struct fill_extent){.dst = r[i].start,
					      .len = r[i].end - r[i].start,
					      .src = (r[i].flags & PEND_ZERO) ? NULL : data[i]};
	filler_batch(&d->fill, t->uffd, ext, n, &first);
	if (lazyd_installed_ext(d, t, r, ext, n, p))
		return;
	/* The rest, one run at a time, through the path that decides on each error. */
	for (uint32_t i = first; i < n && !t->gone && !t->killed && !t->need_events; i++)
		if (ext[i].result)
			lazyd_settle_rest(d, t, &r[i], data[i], &ext[i], p);
}

int lazyd_installed_ext(struct lazyd *d, struct lz_task *t, const struct pend_extent *r,
			const struct fill_extent *ext, uint32_t n, enum fill_path p)
{
	for (uint32_t i = 0; i < n; i++)
		if (ext[i].done && lazyd_installed(d, t, &r[i], ext[i].done, p))
			return -ENOMEM;
	return 0;
}

void lazyd_settle_rest(struct lazyd *d, struct lz_task *t, const struct pend_extent *r,
		       const void *data, const struct fill_extent *e, enum fill_path p)
{
	struct pend_extent rest = *r;
	uint64_t skip = e->done;

	if (e->result == -EEXIST) {
		/* Present already (a racing install): never overwritten, its waiter woken. */
		lazyd_found_present(d, t, r->start + skip);
		skip += PAGE;
		if (skip >= r->end - r->start)
			return;
	}
	rest.start += skip;
	rest.src += (r->flags & PEND_ZERO) ? 0 : skip;
	/* -EFAULT: the data could not be read (a mapped image that shrank): the one-run path
	 * reads it from the source again and says why. */
	const void *from = data && e->result != -EFAULT ? (const char *)data + skip : NULL;
	lazyd_install_run(d, t, rest, p, from);
}

/*
 * Which pages of each image task's data came over the network (by key; lazyd.h): a page
 * that comes a second time within the restore is counted, so that "no page crosses the
 * wire twice" is measured page by page (stats source_pages_twice), not inferred from totals
 * that pages the tasks dropped make loose.
 */
#include <stdlib.h>

#include "lazyd.h"
#include "util/log.h"

#define PAGE IMG_PAGE_SIZE
#define RXMAP_MAX_PAGES (1ull << 28) /* 1 TiB of keys, a 32 MiB map: larger is not mapped */

/* The map of image task img, made when its first page comes; NULL when none can be. */
static struct rx_map *map_of(struct lazyd *d, const struct img_task *img)
{
	if (d->o->page_server) /* CRIU's page server names pages by address */
		return NULL;
	if (!d->rxmap) {
		d->rxmap = calloc(d->img.nr_tasks ? d->img.nr_tasks : 1, sizeof(*d->rxmap));
		if (!d->rxmap)
			return NULL;
	}
	if (img < d->img.tasks || img >= d->img.tasks + d->img.nr_tasks)
		return NULL;
	struct rx_map *m = &d->rxmap[img - d->img.tasks];
	if (m->bits || m->off)
		return m->bits ? m : NULL;
	uint64_t end = 0;
	for (size_t i = 0; i < img->nr_extents; i++) {
		const struct img_extent *e = &img->extents[i];
		if (!e->zero && e->pages_off + (e->end - e->start) > end)
			end = e->pages_off + (e->end - e->start);
	}
	m->npages = end / PAGE;
	m->off = m->npages > RXMAP_MAX_PAGES ||
		 !(m->bits = calloc((m->npages + 63) / 64 + 1, sizeof(uint64_t)));
	return m->bits ? m : NULL;
}

void lazyd_rx_note(struct lazyd *d, const struct img_task *img, uint64_t src, uint64_t pages)
{
	struct rx_map *m = map_of(d, img);

	if (!m)
		return;
	for (uint64_t p = src / PAGE; p < src / PAGE + pages; p++) {
		if (p >= m->npages) /* past the image's data: a source's error, said elsewhere */
			break;
		uint64_t bit = 1ull << (p % 64);
		if (!(m->bits[p / 64] & bit))
			m->bits[p / 64] |= bit;
		else if (!d->st.pages_rx_twice++)
			pr_warn("pid %d: the page at offset 0x%lx came over the network a second "
				"time (the first of such pages: the stats count them)",
				img->pid, (unsigned long)(p * PAGE));
		else
			pr_debug("pid %d: the page at offset 0x%lx came a second time", img->pid,
				 (unsigned long)(p * PAGE));
	}
}

void lazyd_rx_free(struct lazyd *d)
{
	if (!d->rxmap)
		return;
	for (size_t i = 0; i < d->img.nr_tasks; i++)
		free(d->rxmap[i].bits);
	free(d->rxmap);
	d->rxmap = NULL;
}

/* Where page data comes from: local pages images now, the network later. */
#ifndef LAZY_SOURCE_H
#define LAZY_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "images.h"

struct page_source;

struct page_source_ops {
	const char *name;
	/*
	 * Read len bytes of task t's page data starting at pages-file offset
	 * off (vaddr is the page's address in the image, for remote sources).
	 * 0, or a negative errno: -EAGAIN is worth a retry, anything else is not.
	 */
	int (*read)(struct page_source *s, const struct img_task *t, uint64_t vaddr, uint64_t off,
		    void *buf, size_t len);
	void (*close)(struct page_source *s);
};

struct page_source {
	const struct page_source_ops *ops;
	void *priv;
};

int page_source_local(struct page_source *s);

#endif

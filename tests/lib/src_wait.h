/* For the tools that drive a page source without criu-lazyd's event loop. */
#ifndef TESTS_SRC_WAIT_H
#define TESTS_SRC_WAIT_H

#include "source/source.h"

/*
 * read(), waiting out a reconnecting source's backoff (source.h: -EAGAIN, then wait_ms())
 * by sleeping, as a daemon's loop would wait on a timer. The read's final result.
 */
int src_read_waiting(struct page_source *s, const struct img_task *t, uint64_t src, void *buf,
		     size_t len);

#endif

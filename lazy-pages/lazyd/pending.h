/*
 * The set of a task's pages that are still to be installed, keyed by the
 * address they have now in the task (mremap moves them). All page state of a
 * restore goes through this interface, so that parallel workers can later
 * claim disjoint ranges from it.
 */
#ifndef LAZY_PENDING_H
#define LAZY_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "img/images.h"

#define PEND_ZERO 1u /* no data: install a zero page */

struct pend_extent {
	uint64_t start, end; /* page aligned, end exclusive */
	uint64_t src;	     /* byte offset of the data for 'start' in the pages file */
	uint32_t flags;
};

struct pending {
	struct pend_extent *v; /* sorted by start, disjoint */
	size_t n, cap;
	/* v starts this many slots into its allocation: removing or inserting near the front
	 * (where the drain and the faults mostly work) moves the few extents before it, not
	 * the many after it. */
	size_t head;
	uint64_t pages;	     /* total pending pages */
	uint64_t data_pages; /* of which have data (not PEND_ZERO) */
};

void pending_init(struct pending *p);
void pending_free(struct pending *p);
int pending_from_image(struct pending *p, const struct img_task *t);
int pending_clone(struct pending *dst, const struct pending *src);

/* Extent containing addr, or NULL. */
const struct pend_extent *pending_lookup(const struct pending *p, uint64_t addr);

/*
 * The pending run that starts at addr (page aligned), clipped to max_len
 * bytes and to a single extent. false if addr is not pending.
 */
bool pending_run_at(const struct pending *p, uint64_t addr, uint64_t max_len,
		    struct pend_extent *out);

/*
 * The first pending run at or after 'from' (wrapping to the lowest), clipped
 * to max_len; with data_only, zero runs are skipped.
 */
bool pending_next(const struct pending *p, uint64_t from, uint64_t max_len, bool data_only,
		  struct pend_extent *out);

/* Drop [start, end): installed, unmapped or discarded. 0 or -ENOMEM. */
int pending_remove(struct pending *p, uint64_t start, uint64_t end);

/* Pages in [from, from+len) now live at [to, to+len) (mremap). 0 or -ENOMEM. */
int pending_move(struct pending *p, uint64_t from, uint64_t to, uint64_t len);

#endif

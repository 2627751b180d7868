/*
 * The parts of img_set_load() (images.c), one file each: the mm image's VMAs and guards
 * (img_mm.c), the guard lookups (img_guard.c), the pagemap made into extents
 * (img_pagemap.c). Each returns 0 or -errno with err saying "FILE: offset N: problem".
 */
#ifndef LAZY_IMG_LOAD_H
#define LAZY_IMG_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "images.h"
#include "img_file.h"

#define IMG_NAME_MAX 64 /* "pagemap-PID.img" and the like */

/* mm-PID.img (f open past its magic): t's VMAs and guards, sorted and checked. */
int img_load_vmas(struct img_task *t, struct img_file *f, struct errmsg *err);

/*
 * pagemap-PID.img (f open past its magic), after img_load_vmas(): t's extents and page
 * counts, and its pages file opened (from dirfd) and checked to be long enough.
 */
int img_load_pagemap(int dirfd, struct img_task *t, struct img_file *f, struct errmsg *err);

/* Index of the first of the n sorted, disjoint guards g that ends above addr (n if none). */
size_t img_guard_above(const struct img_guard *g, size_t n, uint64_t addr);
/* The lowest of the n sorted, disjoint guards g that intersects [start, end), or NULL. */
const struct img_guard *img_guard_in(const struct img_guard *g, size_t n, uint64_t start,
				     uint64_t end);

#endif

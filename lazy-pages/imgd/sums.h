/* sums.c: the dump-time checksum index, pages-N.img.xxh64 (one XXH64 LE per page). */
#ifndef IMGD_SUMS_H
#define IMGD_SUMS_H

#include <stdint.h>

#include "img/images.h"

/* Write it for task t (criu-imgd --make-sums): 0 or -errno. */
int sums_write(int dirfd, const struct img_task *t);
/* Open it for task t: an fd, or -errno (-EINVAL: not the size of its pages file). */
int sums_open(int dirfd, const struct img_task *t);
/* The sums of n pages from page: 0 or -EIO. */
int sums_read(int fd, uint64_t page, uint32_t n, uint64_t *out);
/*
 * XXH64 over the dump-time sums of every task of set with a pages file (fds[i]: task i's
 * sums_open fd, -1 for a task without mm), in pstree order: which page data a copy of a
 * dump holds (OPEN_REPLY's sums_fingerprint; never 0). 0 or -EIO.
 */
int sums_fingerprint(const struct img_set *set, const int *fds, uint64_t *fp);

#endif

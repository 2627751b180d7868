/*
 * An image's identity, so that a client can tell whether two criu-imgd instances (or an
 * instance and the images it holds itself) serve the same dump: XXH64 over CRIU's metadata
 * files, in name order, each as its name, its size and its bytes. The files: every regular
 * file named "*.img" that a server sends as metadata (the lazy-wire name rule:
 * [A-Za-z0-9._+-], at most 128 bytes, no leading '.', no ".."), but the pages files and our
 * working-set record. Core, mm, pagemap and inventory images differ between any two dumps,
 * so two dumps never share one; copies of a dump (a dir, or the objects of a store) do.
 */
#ifndef LAZY_IMG_FINGERPRINT_H
#define LAZY_IMG_FINGERPRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define IMG_FP_MAX_FILES (1u << 20)   /* at least a core image per thread of a big tree */
#define IMG_FP_MAX_BYTES (4ull << 30) /* all of them together */
#define IMG_FP_NAME_MAX 128

/* Whether a file of that name takes part in the fingerprint. */
bool img_fingerprint_file(const char *name);

/*
 * The fingerprint of the image in dirfd (never 0): 0, or -errno with e (-ENOENT: no
 * inventory.img; -EFBIG: more files or bytes than the limits above).
 */
int img_fingerprint(int dirfd, uint64_t *fp, struct errmsg *e);

/* The same over the files of names[0..n) only (others ignored; those that take part must
 * be there): what a metadata fetch wrote, whatever else the dir holds. */
int img_fingerprint_of(int dirfd, const char *const *names, size_t n, uint64_t *fp,
		       struct errmsg *e);

#endif

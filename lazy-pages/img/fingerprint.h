/*
 * An image's identity, so that a client can tell whether two criu-imgd instances (or an
 * instance and the images it holds itself) serve the same dump: XXH64 over CRIU's metadata
 * files (every regular file "*.img" but the pages files and our working-set record; not a
 * symlink, as criu-imgd sends none), in name order, each as its name, its size and its bytes. Core, mm, pagemap and inventory images differ between
 * any two dumps, so two dumps never share one; copies of a dump (a dir, or the objects of a
 * store) always do.
 */
#ifndef LAZY_IMG_FINGERPRINT_H
#define LAZY_IMG_FINGERPRINT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

#define IMG_FP_MAX_FILES 4096
#define IMG_FP_MAX_BYTES (256u << 20) /* all of them together */

/* Whether a file of that name takes part in the fingerprint. */
bool img_fingerprint_file(const char *name);

/*
 * The fingerprint of the image in dirfd (never 0): 0, or -errno with e (-ENOENT: no
 * inventory.img; -EFBIG: more files or bytes than the limits above).
 */
int img_fingerprint(int dirfd, uint64_t *fp, struct errmsg *e);

#endif

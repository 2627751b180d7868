/* Entry-level reader for CRIU image files: magic check, then length-prefixed protobuf entries. */
#ifndef LAZY_IMG_FILE_H
#define LAZY_IMG_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define IMG_FILE_BUF_SIZE (64u << 10)

struct img_file {
	int fd;
	char name[64];
	uint64_t size; /* at open time */
	uint64_t off;  /* next unread byte */
	uint8_t *buf;  /* read-ahead window [buf_off, buf_off + buf_len) */
	uint64_t buf_off;
	size_t buf_len;
	uint8_t *msg; /* the current entry, grown as needed up to IMG_MAX_ENTRY_SIZE */
	size_t msg_cap;
};

/*
 * The functions below return 0 (or what they say) or -errno: -EINVAL for a malformed image,
 * -E2BIG past a limit, -ENOMEM, or the errno of a failed call; err (may be NULL) then says
 * "FILE: offset N: problem".
 */

/* Set err to "FILE: offset N: ..." and return -errnum. */
int img_fail(struct errmsg *err, int errnum, const char *file, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* "FILE: offset N: cannot decode WHAT (bad protobuf message)", -EINVAL. */
int img_decode_fail(struct errmsg *err, const char *file, uint64_t off, const char *what);

/*
 * Open name in dirfd and check its magic (inventory: one word; others: IMG_COMMON_MAGIC
 * then their own). Returns 0, -errno, or 1 if the file does not exist and optional.
 */
int img_file_open(struct img_file *f, int dirfd, const char *name, uint32_t magic, bool optional,
		  struct errmsg *err);

/*
 * Next entry: 1 with *data and *len (valid until the next call) and the entry's file offset,
 * 0 at a clean end of file, -errno on error.
 */
int img_file_next(struct img_file *f, const uint8_t **data, size_t *len, uint64_t *entry_off,
		  struct errmsg *err);

/*
 * Count the entries left without decoding them (the position is kept), failing with
 * "too many WHAT" past max. Lets callers cap an allocation before making it.
 */
int img_file_count(struct img_file *f, size_t max, const char *what, size_t *count,
		   struct errmsg *err);

void img_file_close(struct img_file *f);

/*
 * Number of occurrences of top-level field number field in a protobuf message,
 * or -EINVAL if the wire format is malformed. Used to cap repeated fields before unpacking.
 */
long img_pb_count_field(const uint8_t *msg, size_t len, uint32_t field);

#endif

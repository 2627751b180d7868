/*
 * The one place for the rules of what operators and peers type: integers, byte sizes,
 * HOST:PORT addresses and image ids. Every function is strict (the whole string, no sign
 * where none is allowed, no overflow) and returns 0 or -EINVAL/-ERANGE.
 */
#ifndef LP_UTIL_PARSE_H
#define LP_UTIL_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* A decimal integer in [min, max]. */
int parse_long(const char *s, long min, long max, long *out);

/* A byte count with an optional K, M, G or T suffix (powers of 1024), in [min, max]. */
int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#define HOSTPORT_HOST_MAX 255

struct hostport {
	char host[HOSTPORT_HOST_MAX + 1]; /* a name, IPv4 or IPv6 (without the brackets) */
	char port[6];			  /* decimal, 1..65535 */
	unsigned port_num;
};

/* HOST:PORT, or [IPV6]:PORT. e says what is wrong. */
int parse_hostport(const char *s, struct hostport *hp, struct errmsg *e);
/* One or more of them separated by commas (no spaces, none twice), at most max, into
 * hp[0..*n). 0, or -EINVAL with what is wrong in e. */
int parse_hostport_list(const char *s, struct hostport *hp, unsigned max, unsigned *n,
			struct errmsg *e);

/* Image ids (catalog names on criu-imgd, --image-id, "image" in the plugin's file):
 * 1..IMAGE_ID_MAX of [A-Za-z0-9._-], starting with a letter or a digit (so never ".", ".."
 * or an option). */
#define IMAGE_ID_MAX 128
#define IMAGE_ID_RULE                                                                       \
	"1 to 128 characters: letters, digits, '.', '_', '-'; starting with a letter or digit"
bool image_id_ok(const char *id);

/* A file name safe to take from a peer: 1..max of [A-Za-z0-9._+-], not starting with '.',
 * no ".." (so never a path). The lazy-wire metadata names, and what an image's fingerprint
 * covers. */
bool file_name_ok(const char *name, size_t max);

#endif

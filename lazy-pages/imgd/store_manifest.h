/*
 * store_manifest.c: the manifest of an image in an object store (docs/store.md), the object
 * written last: what files the image has, their sizes and checksums. Text, one line each:
 *
 *   criu-imgd-store 1
 *   chunk 4194304                       bytes per chunk object of a pages file
 *   gen GEN                             16 hex digits: this upload's objects are ID/GEN/...
 *   file NAME SIZE XXH64                a small file, object ID/GEN/meta/NAME
 *   pages NAME SIZE                     a pages file, objects ID/GEN/pages/NAME/%08x
 *   c XXH64                               ... one line per chunk, in order
 *   end XXH64                           of every byte before this line
 *
 * XXH64s are 16 lower-case hex digits (seed 0). Parsing treats the text as hostile: every
 * count and size bounded, every name checked (wire_upload_name_ok), nothing after "end".
 */
#ifndef IMGD_STORE_MANIFEST_H
#define IMGD_STORE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "wire/wire.h"

#define STORE_CHUNK (4u << 20)		     /* bytes per chunk object */
#define STORE_CHUNK_MAX (16u << 20)	     /* the most a manifest may say (a read's buffer) */
#define STORE_MANIFEST_MAX (8u << 20)	     /* bytes of a manifest */
#define STORE_PAGES_MAX WIRE_MAX_META_SPARSE /* bytes of one pages file */
#define STORE_MANIFEST_MAGIC "criu-imgd-store 1"

struct store_file {
	char name[WIRE_MAX_META_NAME + 1];
	uint64_t size;
	bool pages;	/* chunked; else one small object */
	uint64_t sum;	/* small file: XXH64 of it */
	uint64_t *csum; /* pages: XXH64 per chunk */
	uint64_t nchunks;
};

struct store_manifest {
	uint32_t chunk;
	char gen[17];
	size_t n;
	struct store_file *f; /* at most WIRE_MAX_META_FILES */
	uint64_t sum;	      /* the end line's: tells one upload of an id from another */
};

/* Parse len bytes: 0, or -EINVAL / -ENOMEM with e (m then holds nothing to free). */
int store_manifest_parse(const char *text, size_t len, struct store_manifest *m, struct errmsg *e);
/* m as text (malloc'ed, *len bytes): 0 or -ENOMEM / -EINVAL (a bad name or size). */
int store_manifest_format(const struct store_manifest *m, char **text, size_t *len);
/* The file name of m, or NULL. */
const struct store_file *store_manifest_find(const struct store_manifest *m, const char *name);
/* Chunks of a pages file of size bytes. */
uint64_t store_chunks(uint64_t size, uint32_t chunk);
void store_manifest_free(struct store_manifest *m);

#endif

/*
 * The PAGES payload codec (docs/protocol.md, "Compression"): libzstd, one frame per payload.
 * One job each: wire_zstd_pack compresses a payload when that makes it shorter,
 * wire_zstd_unpack restores exactly the raw length a frame announced, never more. Contexts
 * are made once and reused (no allocation per frame).
 */
#ifndef LAZY_WIRE_ZSTD_H
#define LAZY_WIRE_ZSTD_H

#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

#define WIRE_ZSTD_LEVEL 1 /* criu-imgd's level: docs/benchmarks.md, "Compression" */

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

struct wire_zstd {
	struct ZSTD_CCtx_s *c; /* made by the first pack */
	struct ZSTD_DCtx_s *d; /* made by the first unpack */
	int level;	       /* 0: WIRE_ZSTD_LEVEL */
};

/* The contexts go (z can be used again). */
void wire_zstd_free(struct wire_zstd *z);

/*
 * Compress len bytes of src into dst, only if the result is shorter than cap: the compressed
 * length (< cap), 0 when it would not fit (incompressible: send src raw), or -ENOMEM.
 */
ssize_t wire_zstd_pack(struct wire_zstd *z, const void *src, size_t len, void *dst, size_t cap);

/*
 * Decompress the one zstd frame of len bytes at src into dst, which must come out exactly
 * raw_len bytes (dst holds raw_len): nothing is ever written past dst + raw_len and nothing
 * is allocated from what the frame says. 0, or -EBADMSG with the reason in e (corrupt data,
 * more than one frame, a size other than raw_len), or -ENOMEM.
 */
int wire_zstd_unpack(struct wire_zstd *z, const void *src, size_t len, void *dst, size_t raw_len,
		     struct errmsg *e);

#endif

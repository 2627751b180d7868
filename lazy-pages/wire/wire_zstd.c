/* PAGES payload compression with libzstd (wire_zstd.h). */
#include "wire_zstd.h"

#include <errno.h>
#include <zstd.h>
#include <zstd_errors.h>

/* Frames we take declare a window of at most this (payloads are at most 256 KiB). */
#define WIRE_ZSTD_WINDOW_LOG 20

void wire_zstd_free(struct wire_zstd *z)
{
	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	z->c = NULL;
	z->d = NULL;
}

ssize_t wire_zstd_pack(struct wire_zstd *z, const void *src, size_t len, void *dst, size_t cap)
{
	if (!z->c) {
		z->c = ZSTD_createCCtx();
		if (!z->c)
			return -ENOMEM;
		ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel,
				       z->level ? z->level : WIRE_ZSTD_LEVEL);
		ZSTD_CCtx_setParameter(z->c, ZSTD_c_contentSizeFlag, 1);
		ZSTD_CCtx_setParameter(z->c, ZSTD_c_checksumFlag, 0); /* pages carry sums */
	}
	if (!cap)
		return 0;
	/* cap - 1: only a result shorter than cap is worth sending. */
	size_t n = ZSTD_compress2(z->c, dst, cap - 1, src, len);
	if (!ZSTD_isError(n))
		return (ssize_t)n;
	if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
		return -ENOMEM;
	ZSTD_CCtx_reset(z->c, ZSTD_reset_session_only);
	return 0; /* dstSize_tooSmall: it does not shrink */
}

int wire_zstd_unpack(struct wire_zstd *z, const void *src, size_t len, void *dst, size_t raw_len,
		     struct errmsg *e)
{
	if (!z->d) {
		z->d = ZSTD_createDCtx();
		if (!z->d)
			return errmsg_set(e, ENOMEM, "out of memory for a zstd context");
		ZSTD_DCtx_setParameter(z->d, ZSTD_d_windowLogMax, WIRE_ZSTD_WINDOW_LOG);
	}
	unsigned long long declared = ZSTD_getFrameContentSize(src, len);
	if (declared == ZSTD_CONTENTSIZE_ERROR)
		return errmsg_set(e, EBADMSG, "compressed payload is not a zstd frame");
	if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != raw_len)
		return errmsg_set(e, EBADMSG,
				  "compressed payload declares %llu bytes, PAGES says %zu",
				  declared, raw_len);
	size_t flen = ZSTD_findFrameCompressedSize(src, len);
	if (ZSTD_isError(flen) || flen != len)
		return errmsg_set(e, EBADMSG, "compressed payload is not exactly one zstd frame");
	size_t n = ZSTD_decompressDCtx(z->d, dst, raw_len, src, len);
	if (ZSTD_isError(n)) {
		ZSTD_DCtx_reset(z->d, ZSTD_reset_session_only);
		return errmsg_set(e, EBADMSG, "compressed payload is corrupt: %s",
				  ZSTD_getErrorName(n));
	}
	if (n != raw_len)
		return errmsg_set(e, EBADMSG, "compressed payload gives %zu bytes, PAGES says %zu",
				  n, raw_len);
	return 0;
}

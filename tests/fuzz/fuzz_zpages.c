/*
 * libFuzzer harness: compressed PAGES on the client side, what a hostile criu-imgd can send
 * to criu-lazyd once zstd was agreed: the frame checks (wire_check, wire.c), decompression
 * (imgd_inflate, source_imgd_zstd.c; wire_zstd_unpack, wire_zstd.c) and the unpack that
 * checks and places the pages (imgd_unpack_pages, source_imgd.c), as the urgent and bulk
 * paths call them.
 *
 * Input: byte 0 picks the mode.
 *   bit 0 = 0, structured: byte 1 nr_pages (1..64), bytes 2..9 the zero bitmap, bytes 10..13
 *              raw_len (big-endian; 0: the right one, data pages * 4096), the rest the
 *              compressed payload. The checksums are made to match what decompresses (bit 1
 *              clear) so that the whole unpack runs, or are all zero (bit 1 set).
 *   bit 0 = 1, frame: bytes 1..2 the message length, then an lw_pages message, then the
 *              payload, as on the wire (the message decoded and checked by wire_check).
 * Checked: a frame the checks and the codec accept decompresses to exactly raw_len bytes and
 * its pages come out as decompressed (zero pages as zeros); nothing is written past the
 * output; a rejected frame is counted (bad_sums) and hands nothing out.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "source/source_imgd.h"
#include "util/log.h"

#define OUT_CAP (WIRE_MAX_REPLY_PAGES * WIRE_PAGE)

static struct imgd_src src;
static uint8_t out[OUT_CAP + WIRE_PAGE]; /* one guard page after the largest frame */

static void init_once(void)
{
	static bool done;
	static const uint8_t zero[WIRE_PAGE];

	if (done)
		return;
	done = true;
	log_level = getenv("FUZZ_LOG") ? atoi(getenv("FUZZ_LOG")) : -1; /* quiet */
	src.zero_sum = wire_page_sum(zero);
}

/* What the client does with one PAGES frame whose payload is pay[len]. */
static void take(const LwPages *p, const uint8_t *pay, size_t len, bool fix_sums)
{
	uint64_t sums[WIRE_MAX_REPLY_PAGES];
	LwPages q = *p;
	uint64_t bad0 = src.bad_sums;

	memset(out, 0xa5, sizeof(out));
	const uint8_t *raw = imgd_inflate(&src, p, pay, len, LW_CODEC__LW_CODEC_ZSTD);
	if (!raw) {
		if (src.bad_sums != bad0 + 1)
			abort(); /* a refusal is counted */
		return;
	}
	size_t data =
	    (size_t)(p->nr_pages - wire_count_zero(p->zero.data, p->nr_pages)) * WIRE_PAGE;
	if (p->codec == LW_CODEC__LW_CODEC_ZSTD && p->raw_len != data)
		abort(); /* wire_check let it through: it must be the data pages */
	if (fix_sums) {
		size_t at = 0;
		for (uint32_t i = 0; i < p->nr_pages; i++) {
			if (wire_zero_bit(p->zero.data, i)) {
				sums[i] = src.zero_sum;
			} else {
				sums[i] = wire_page_sum(raw + at);
				at += WIRE_PAGE;
			}
		}
		q.sums = sums;
	}
	int rc = imgd_unpack_pages(&src, &q, raw, out, SRC_STREAM, 0, NULL);
	for (size_t i = (size_t)p->nr_pages * WIRE_PAGE; i < sizeof(out); i++)
		if (out[i] != 0xa5)
			abort(); /* written past the frame's pages */
	if (rc == 0) {
		size_t at = 0;
		for (uint32_t i = 0; i < p->nr_pages; i++) {
			const uint8_t *dst = out + (size_t)i * WIRE_PAGE;
			if (wire_zero_bit(p->zero.data, i)) {
				if (!wire_page_is_zero(dst))
					abort();
			} else {
				if (memcmp(dst, raw + at, WIRE_PAGE))
					abort();
				at += WIRE_PAGE;
			}
		}
	} else if (fix_sums) {
		abort(); /* the sums were made to match */
	}
}

static void structured(const uint8_t *d, size_t n)
{
	uint8_t zmap[8];
	uint64_t sums[WIRE_MAX_REPLY_PAGES] = {0};

	if (n < 14)
		return;
	uint32_t pages = d[1] % WIRE_MAX_REPLY_PAGES + 1;
	memcpy(zmap, d + 2, sizeof(zmap));
	uint32_t raw_len =
	    (uint32_t)d[10] << 24 | (uint32_t)d[11] << 16 | (uint32_t)d[12] << 8 | d[13];
	LwPages p = LW_PAGES__INIT;
	p.nr_pages = pages;
	p.zero = (ProtobufCBinaryData){(pages + 7) / 8, zmap};
	p.n_sums = pages;
	p.sums = sums;
	p.has_codec = p.has_raw_len = true;
	p.codec = LW_CODEC__LW_CODEC_ZSTD;
	p.raw_len = raw_len ? raw_len : (pages - wire_count_zero(zmap, pages)) * WIRE_PAGE;
	/* As the client receives it: the header and the message checks first. */
	struct wire_hdr h = {WIRE_MAGIC, WT_PAGES, 0, (uint32_t)(n - 14)};
	struct errmsg e;
	if (n - 14 > WIRE_MAX_PAYLOAD || wire_check(WT_PAGES, &p.base, &h, &e))
		return;
	take(&p, d + 14, n - 14, !(d[0] & 2));
}

static void frame(const uint8_t *d, size_t n)
{
	if (n < 3)
		return;
	size_t mlen = (size_t)d[1] << 8 | d[2];
	if (mlen > n - 3)
		return;
	struct wire_hdr h = {WIRE_MAGIC, WT_PAGES, (uint32_t)mlen, (uint32_t)(n - 3 - mlen)};
	struct errmsg e;
	uint8_t hb[WIRE_HDR_SIZE];
	wire_hdr_put(hb, &h);
	if (wire_hdr_get(hb, &h, &e))
		return;
	ProtobufCMessage *m = wire_unpack(WT_PAGES, d + 3, mlen);
	if (!m)
		return;
	if (!wire_check(WT_PAGES, m, &h, &e))
		take((LwPages *)m, d + 3 + mlen, h.payload_len, !(d[0] & 2));
	wire_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	if (size < 1)
		return 0;
	if (data[0] & 1)
		frame(data, size);
	else
		structured(data, size);
	return 0;
}

/*
 * The criu-imgd source's compressed PAGES (source_imgd.h, docs/protocol.md "Compression"):
 * a payload is decompressed into a buffer of its own before imgd_unpack_pages checks and
 * places its pages, as if it had arrived raw. Bounded by the frame: wire_check has made sure
 * raw_len is the frame's data pages (at most WIRE_MAX_PAYLOAD), and the decompression writes
 * exactly that much or fails.
 */
#include "source_imgd.h"

#include <errno.h>
#include <stdlib.h>

#include "util/log.h"

const uint8_t *imgd_inflate(struct imgd_src *s, const LwPages *p, const uint8_t *pay, size_t len,
			    LwCodec codec)
{
	struct errmsg e;

	if (p->codec == LW_CODEC__LW_CODEC_NONE)
		return pay;
	if (p->codec != codec) {
		errmsg_set(&e, EPROTO, "compressed PAGES on a connection that did not agree to it");
	} else if (p->raw_len > WIRE_MAX_PAYLOAD) { /* wire_check's, again: the buffer's size */
		errmsg_set(&e, EPROTO, "compressed PAGES of %u bytes", p->raw_len);
	} else if (!s->zraw && !(s->zraw = malloc(WIRE_MAX_PAYLOAD))) {
		errmsg_set(&e, ENOMEM, "out of memory");
	} else if (!wire_zstd_unpack(&s->zstd, pay, len, s->zraw, p->raw_len, &e)) {
		s->zframes++;
		s->zbytes += len;
		s->zraw_bytes += p->raw_len;
		return s->zraw;
	}
	s->bad_sums++;
	pr_err("pid %d: pages at offset 0x%llx: %s", p->pid, (unsigned long long)p->off, e.msg);
	return NULL;
}

/*
 * lazy-wire framing (docs/protocol.md): a 12-byte header, a protobuf-c
 * message, then (PAGES frames only) raw page data. Shared by criu-imgd and
 * its client page source. Every decoded frame is checked against the limits
 * below before anything acts on it.
 */
#ifndef LAZY_WIRE_H
#define LAZY_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lazy-wire.pb-c.h"
#include "util/err.h"

#define WIRE_MAGIC 0x4c57u /* "LW" */
#define WIRE_VERSION 1u
#define WIRE_HDR_SIZE 12u
#define WIRE_PAGE 4096u

/* Limits, checked on receipt by both sides. */
#define WIRE_MAX_MSG (64u << 10) /* protobuf bytes in one frame */
#define WIRE_MAX_REPLY_PAGES 64u /* pages in one PAGES frame */
#define WIRE_MAX_PAYLOAD (WIRE_MAX_REPLY_PAGES * WIRE_PAGE)
#define WIRE_MAX_RANGES 64u		  /* ranges in one GET */
#define WIRE_MAX_GET_PAGES 4096u	  /* pages in one GET, all ranges */
#define WIRE_MAX_INFLIGHT 32u		  /* GETs a server queues per connection */
#define WIRE_MAX_INDEX_EXTENTS 1024u	  /* extents in one INDEX_PART */
#define WIRE_MAX_TASKS 65536u		  /* tasks in one index */
#define WIRE_MAX_TASK_EXTENTS (1u << 24)  /* extents of one task */
#define WIRE_MAX_ID 128u		  /* image id bytes */
#define WIRE_MAX_TEXT 256u		  /* error text bytes */
#define WIRE_MAX_NAME 64u		  /* hello client/server names */
#define WIRE_NONCE 32u			  /* challenge and nonce bytes */
#define WIRE_MAC 32u			  /* HMAC-SHA256 */
#define WIRE_MAX_META_NAME 128u		  /* metadata file name bytes */
#define WIRE_MAX_META_FILES 4096u	  /* metadata files of one image */
#define WIRE_META_LIST_PART 256u	  /* files in one META_LIST_REPLY */
#define WIRE_MAX_META_FILE (16u << 20)	  /* bytes of one metadata file */
#define WIRE_MAX_META_TOTAL (256u << 20)  /* bytes of all metadata files of one image */
#define WIRE_MAX_META_SPARSE (1ull << 40) /* bytes of one sparse pages file (holes included) */
#define WIRE_META_CHUNK (32u << 10)	  /* bytes in one META_DATA */

enum wire_type {
	WT_HELLO = 1,
	WT_HELLO_REPLY = 2,
	WT_AUTH = 3,
	WT_AUTH_OK = 4,
	WT_OPEN = 5,
	WT_OPEN_REPLY = 6,
	WT_INDEX_GET = 7,
	WT_INDEX_PART = 8,
	WT_GET = 9,
	WT_PAGES = 10,
	WT_ERROR = 11,
	WT_CLOSE = 12,
	WT_META_LIST = 13,
	WT_META_LIST_REPLY = 14,
	WT_META_GET = 15,
	WT_META_DATA = 16,
	WT_UPLOAD = 17,
	WT_UPLOAD_REPLY = 18,
	WT_UPLOAD_FILE = 19,
	WT_UPLOAD_END = 20,
	WT_MAX = 20,
};

struct wire_hdr {
	uint16_t magic;
	uint16_t type;
	uint32_t msg_len;
	uint32_t payload_len;
};

const char *wire_type_name(unsigned type);
const ProtobufCMessageDescriptor *wire_descriptor(unsigned type);

void wire_hdr_put(uint8_t out[WIRE_HDR_SIZE], const struct wire_hdr *h);
/*
 * Decode and check a header: magic, known type, sizes within the limits, a
 * payload only on PAGES. 0, or -EPROTO with the reason in e.
 */
int wire_hdr_get(const uint8_t in[WIRE_HDR_SIZE], struct wire_hdr *h, struct errmsg *e);

/*
 * Header + packed message into out (cap bytes). Returns the frame length
 * without the payload, or -EMSGSIZE. payload_len is only written to the header.
 */
int wire_pack(unsigned type, const ProtobufCMessage *m, uint32_t payload_len, uint8_t *out,
	      size_t cap);

/* Unpack a message of the header's type; NULL if malformed. Free with wire_free. */
ProtobufCMessage *wire_unpack(unsigned type, const uint8_t *msg, size_t len);
void wire_free(ProtobufCMessage *m);

/*
 * Semantic checks of a decoded message against the limits: 0, or -EPROTO with
 * the reason in e. They take the header so that payload sizes agree.
 */
int wire_check(unsigned type, const ProtobufCMessage *m, const struct wire_hdr *h,
	       struct errmsg *e);

/* Image ids: util/parse.h's image_id_ok (the one rule, IMAGE_ID_RULE), under its wire name. */
bool wire_id_ok(const char *id);

/*
 * Metadata file names (META_*): [A-Za-z0-9._+-]{1,WIRE_MAX_META_NAME}, not starting with
 * '.', no "..", so never a path. wire_meta_served() adds what a server lists: not *.log,
 * and of the pages-* names only pages-<digits>.img (never the checksum files). A pages file
 * is served sparse (wire_meta_pages_id: its N, or -1 for other names).
 */
bool wire_meta_name_ok(const char *name);
bool wire_meta_served(const char *name);
int64_t wire_meta_pages_id(const char *name);
/* Uploads (UPLOAD_FILE): any valid metadata name but *.log (checksum files too). */
bool wire_upload_name_ok(const char *name);

/* PAGES helpers. */
static inline bool wire_zero_bit(const uint8_t *map, uint32_t i)
{
	return map[i / 8] & (1u << (i % 8));
}
uint32_t wire_count_zero(const uint8_t *map, uint32_t n);
uint64_t wire_page_sum(const void *page);
bool wire_page_is_zero(const void *page);

#endif

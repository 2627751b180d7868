/*
 * Blocking lazy-wire frame I/O with deadlines, for clients and tests. An fd that went through
 * wire_tls_client() sends and receives through its TLS session (wire_tls.h).
 */
#ifndef LAZY_WIRE_IO_H
#define LAZY_WIRE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "util/clock.h"
#include "wire.h"

#define WIRE_SCRATCH (WIRE_HDR_SIZE + WIRE_MAX_MSG)

/* Write all of buf before the deadline (ms, CLOCK_MONOTONIC), blocking socket or not. 0 or -errno
 * (-ETIMEDOUT). */
int wire_write_all(int fd, const void *buf, size_t len, uint64_t deadline_ms);
int wire_read_all(int fd, void *buf, size_t len, uint64_t deadline_ms);

/* Send one frame; scratch holds WIRE_SCRATCH bytes. */
int wire_send(int fd, uint8_t *scratch, unsigned type, const ProtobufCMessage *m,
	      const void *payload, uint32_t payload_len, uint64_t deadline_ms);

/*
 * Receive one frame and check it (wire_hdr_get, wire_unpack, wire_check). The
 * payload goes to payload (cap bytes, at least WIRE_MAX_PAYLOAD for PAGES).
 * 0 with *m set (wire_free it), or -errno with the reason in e (-EPROTO: what was wrong
 * with the frame; others: strerror); -ECONNRESET on EOF.
 */
int wire_recv(int fd, uint8_t *scratch, struct wire_hdr *h, ProtobufCMessage **m, void *payload,
	      size_t cap, uint64_t deadline_ms, struct errmsg *e);

/* The deadlines' clock: util/clock.h's mono_ms (the name stays for the tests that use it). */
static inline uint64_t wire_now_ms(void)
{
	return mono_ms();
}

/*
 * Create NAME in dirfd for bytes that came from the network (images are secrets): a new file
 * (O_EXCL, O_NOFOLLOW) of mode exactly 0600 whatever the umask, as CRIU writes its images.
 * The fd (write only), or -1 with errno.
 */
int wire_create_private(int dirfd, const char *name);

#endif

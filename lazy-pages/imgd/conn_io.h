/*
 * conn_io.c: the bytes of one client connection, plain or TLS, never blocking. In: frames
 * read into one buffer and taken one at a time (clients send no payloads). Out: one frame at
 * a time, its head (header and message) then its payload, and at most one ERROR waiting
 * behind it. Nothing here knows what the frames mean (protocol.c does).
 */
#ifndef IMGD_CONN_IO_H
#define IMGD_CONN_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imgd.h"
#include "util/err.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#define CONN_IO_RX_CAP (WIRE_HDR_SIZE + WIRE_MAX_MSG)
#define CONN_IO_PAY_CAP ((size_t)IMGD_FRAME_MAX * WIRE_PAGE) /* payload of one frame */

/* A piece of a frame's payload that the kernel sends from a file's page cache (sendfile):
 * plain connections only, no copy in user space. */
struct conn_io_seg {
	uint64_t off;
	size_t len;
};

#define CONN_IO_MAX_SEGS IMGD_FRAME_MAX

struct conn_io {
	int fd;
	gnutls_session_t tls; /* NULL: plain (criu-imgd --no-tls, or on loopback) */
	int tls_role;	      /* the role a PSK session authenticated, or -1 */
	bool handshaking;     /* the TLS handshake is not done yet */
	bool tls_started;     /* it has begun (the first byte was not plain HELLO) */
	bool dead;	      /* the socket failed: close without sending more */
	/* receive: one frame at a time */
	uint8_t *rx;
	size_t rx_len;
	/* send: one frame at a time, its head (header + message) then its payload */
	uint8_t *tx, *pay;
	size_t tx_head, tx_len, tx_off; /* head bytes, frame bytes, bytes sent */
	int pay_fd; /* -1: the payload is in pay; else it is seg[] of this file */
	struct conn_io_seg seg[CONN_IO_MAX_SEGS];
	unsigned nseg;
	uint8_t errf[WIRE_HDR_SIZE + WIRE_MAX_TEXT + 32]; /* an ERROR waiting for tx */
	size_t errf_len;
	uint64_t t_sent; /* mono_ms: the last byte sent, or the frame queued */
	/* How long frames waited for the socket to take more (compress.c's auto mode): the sum
	 * of finished waits, and when the current one began (mono_ns, 0: none). */
	uint64_t blocked_ns, t_block;
};

/* On accepted socket fd, through a TLS session of tls (NULL: plain). 0 or -errno; on
 * failure fd stays the caller's. */
int conn_io_init(struct conn_io *io, int fd, struct wire_tls_server *tls);
/* The TLS session, the socket and the buffers go. */
void conn_io_free(struct conn_io *io);

/*
 * Go on with the TLS handshake: 1 done (or plain), 0 in progress; -EPROTONOSUPPORT: the
 * client speaks plain lazy-wire (TLS is dropped so that an ERROR can tell it so); another
 * -errno: it failed (e: GnuTLS's reason), the connection is dead.
 */
int conn_io_handshake(struct conn_io *io, struct errmsg *e);
/* The TLS handshake waits for the socket to take more. */
bool conn_io_wants_write(const struct conn_io *io);
/* The challenge the AUTH proofs cover: in TLS bound to the session (wire_tls_bind), so that
 * a proof is worth nothing on another; plain, the challenge itself. 0 or -EPROTO. */
int conn_io_bind(const struct conn_io *io, const uint8_t challenge[WIRE_NONCE],
		 uint8_t out[WIRE_NONCE]);
/* "no TLS", or the TLS version, cipher and key exchange. */
void conn_io_describe(const struct conn_io *io, char *buf, size_t len);

/* Read what the socket has: > 0 bytes; -EAGAIN none now; another -errno: the connection is
 * dead (e: "client went away", or why it failed). */
int conn_io_recv(struct conn_io *io, struct errmsg *e);
/* The frame at the head of rx: 1 its header is in (*h), 0 not yet, -EPROTO a bad header
 * (why in e). */
int conn_io_peek(const struct conn_io *io, struct wire_hdr *h, struct errmsg *e);
/* The message of frame h once all of it is in, else NULL. */
const uint8_t *conn_io_msg(const struct conn_io *io, const struct wire_hdr *h);
/* Frame h is done with. */
void conn_io_drop(struct conn_io *io, const struct wire_hdr *h);
/* A header, or bytes TLS decrypted already, wait to be taken (no poll event will say so). */
bool conn_io_rx_pending(const struct conn_io *io);

/* Queue one frame (tx must be empty): message m and plen bytes of payload already in io->pay.
 * The frame's bytes, or -errno (-EMSGSIZE: too large). */
int conn_io_queue(struct conn_io *io, unsigned type, const ProtobufCMessage *m, size_t plen);
/* The same with the payload taken from nseg ranges of file fd (which must stay open until the
 * frame is sent): only where conn_io_sends_files(). */
int conn_io_queue_file(struct conn_io *io, unsigned type, const ProtobufCMessage *m, int fd,
		       const struct conn_io_seg *seg, unsigned nseg);
/* A plain connection: payloads may come from files (TLS must encrypt them in user space). */
bool conn_io_sends_files(const struct conn_io *io);
/* Queue an ERROR after the frame being sent; a second one before that went is dropped. */
void conn_io_queue_error(struct conn_io *io, const ProtobufCMessage *err);
/* tx is empty and an ERROR waits: it becomes the frame to send (true). */
bool conn_io_next_error(struct conn_io *io);
/* Send what tx holds, as far as the socket takes it: 0, or -errno with e ("send: ..."): the
 * connection is dead. */
int conn_io_flush(struct conn_io *io, struct errmsg *e);
/* Nanoseconds frames have waited for the socket so far, the current wait included. */
uint64_t conn_io_blocked_ns(const struct conn_io *io, uint64_t now_ns);
/* A frame is being sent (the socket has not taken all of it). */
bool conn_io_tx_busy(const struct conn_io *io);
/* A frame is being sent, or an ERROR waits. */
bool conn_io_out_pending(const struct conn_io *io);
/* A frame has waited more than limit_ms for the client to read it. */
bool conn_io_stalled(const struct conn_io *io, uint64_t now_ms, uint64_t limit_ms);

#endif

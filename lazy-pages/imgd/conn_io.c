/* The bytes of one client connection (conn_io.h). */
#include "conn_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/clock.h"

static void free_buffers(struct conn_io *io)
{
	free(io->rx);
	free(io->tx);
	free(io->pay);
	io->rx = io->tx = io->pay = NULL;
}

int conn_io_init(struct conn_io *io, int fd, struct wire_tls_server *tls)
{
	*io = (struct conn_io){.fd = fd, .tls_role = -1, .pay_fd = -1};
	io->rx = malloc(CONN_IO_RX_CAP);
	io->tx = malloc(IMGD_HEAD_CAP);
	io->pay = malloc(CONN_IO_PAY_CAP);
	if (!io->rx || !io->tx || !io->pay) {
		free_buffers(io);
		return -ENOMEM;
	}
	if (tls && wire_tls_server_session(tls, fd, &io->tls)) {
		free_buffers(io);
		return -EPROTO;
	}
	io->handshaking = io->tls != NULL;
	io->t_sent = mono_ms();
	return 0;
}

void conn_io_free(struct conn_io *io)
{
	if (io->tls)
		gnutls_deinit(io->tls);
	io->tls = NULL;
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
	free_buffers(io);
}

/* A client that speaks plain lazy-wire to a TLS server (its first byte is lazy-wire's). */
static bool plain_client(const struct conn_io *io)
{
	uint8_t b;
	ssize_t n = recv(io->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	/* A TLS ClientHello starts with 0x16; EOF shows in the handshake. */
	return n == 1 && b == (WIRE_MAGIC >> 8);
}

int conn_io_handshake(struct conn_io *io, struct errmsg *e)
{
	if (!io->handshaking)
		return 1;
	if (!io->tls_started) {
		if (plain_client(io)) {
			gnutls_deinit(io->tls);
			io->tls = NULL;
			io->handshaking = false;
			return -EPROTONOSUPPORT;
		}
		io->tls_started = true;
	}
	int rc = gnutls_handshake(io->tls);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ||
	    (rc < 0 && !gnutls_error_is_fatal(rc)))
		return 0;
	io->handshaking = false;
	if (rc < 0) {
		io->dead = true;
		return errmsg_set(e, ECONNABORTED, "%s", gnutls_strerror(rc));
	}
	io->tls_role = wire_tls_psk_role(io->tls);
	return 1;
}

bool conn_io_wants_write(const struct conn_io *io)
{
	return io->handshaking && io->tls_started && gnutls_record_get_direction(io->tls) == 1;
}

int conn_io_bind(const struct conn_io *io, const uint8_t challenge[WIRE_NONCE],
		 uint8_t out[WIRE_NONCE])
{
	if (!io->tls) {
		memcpy(out, challenge, WIRE_NONCE);
		return 0;
	}
	return wire_tls_bind(io->tls, challenge, out) ? -EPROTO : 0;
}

void conn_io_describe(const struct conn_io *io, char *buf, size_t len)
{
	if (io->tls)
		wire_tls_describe(io->tls, buf, len);
	else if (len)
		snprintf(buf, len, "no TLS");
}

int conn_io_recv(struct conn_io *io, struct errmsg *e)
{
	void *at = io->rx + io->rx_len;
	size_t room = CONN_IO_RX_CAP - io->rx_len;
	ssize_t n;

	if (io->tls) {
		n = wire_tls_recv(io->tls, at, room);
	} else {
		n = recv(io->fd, at, room, MSG_DONTWAIT);
		if (n < 0)
			n = errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	}
	if (n > 0) {
		io->rx_len += (size_t)n;
		return (int)n;
	}
	if (n == -EAGAIN)
		return -EAGAIN;
	io->dead = true; /* nobody to send to */
	if (n == 0)
		return errmsg_set(e, ECONNRESET, "client went away");
	return errmsg_set(e, (int)-n, "%s%s",
			  io->tls && n == -EBADMSG ? "TLS record failed its integrity check: " : "",
			  strerror((int)-n));
}

int conn_io_peek(const struct conn_io *io, struct wire_hdr *h, struct errmsg *e)
{
	int rc;

	if (io->rx_len < WIRE_HDR_SIZE)
		return 0;
	rc = wire_hdr_get(io->rx, h, e);
	if (!rc && h->payload_len)
		rc = errmsg_set(e, EPROTO, "payload from a client");
	return rc ? rc : 1;
}

const uint8_t *conn_io_msg(const struct conn_io *io, const struct wire_hdr *h)
{
	return io->rx_len >= WIRE_HDR_SIZE + (size_t)h->msg_len ? io->rx + WIRE_HDR_SIZE : NULL;
}

void conn_io_drop(struct conn_io *io, const struct wire_hdr *h)
{
	size_t total = WIRE_HDR_SIZE + (size_t)h->msg_len;

	memmove(io->rx, io->rx + total, io->rx_len - total);
	io->rx_len -= total;
}

bool conn_io_rx_pending(const struct conn_io *io)
{
	return io->rx_len >= WIRE_HDR_SIZE ||
	       (io->tls && !io->handshaking && gnutls_record_check_pending(io->tls) > 0);
}

int conn_io_queue(struct conn_io *io, unsigned type, const ProtobufCMessage *m, size_t plen)
{
	if (plen > CONN_IO_PAY_CAP)
		return -EMSGSIZE;
	int n = wire_pack(type, m, (uint32_t)plen, io->tx, IMGD_HEAD_CAP);
	if (n < 0)
		return n;
	io->tx_head = (size_t)n;
	io->tx_len = (size_t)n + plen;
	io->tx_off = 0;
	io->pay_fd = -1;
	io->t_sent = mono_ms(); /* the stall clock starts with the frame */
	return (int)io->tx_len;
}

bool conn_io_sends_files(const struct conn_io *io)
{
	return !io->tls;
}

int conn_io_queue_file(struct conn_io *io, unsigned type, const ProtobufCMessage *m, int fd,
		       const struct conn_io_seg *seg, unsigned nseg)
{
	size_t plen = 0;

	if (io->tls || nseg > CONN_IO_MAX_SEGS)
		return -EINVAL;
	for (unsigned i = 0; i < nseg; i++)
		plen += seg[i].len;
	int n = conn_io_queue(io, type, m, plen);
	if (n < 0)
		return n;
	if (nseg) {
		io->pay_fd = fd;
		memcpy(io->seg, seg, nseg * sizeof(*seg));
		io->nseg = nseg;
	}
	return n;
}

void conn_io_queue_error(struct conn_io *io, const ProtobufCMessage *err)
{
	if (io->errf_len)
		return;
	int n = wire_pack(WT_ERROR, err, 0, io->errf, sizeof(io->errf));
	io->errf_len = n > 0 ? (size_t)n : 0;
}

bool conn_io_next_error(struct conn_io *io)
{
	if (io->tx_len || !io->errf_len)
		return false;
	memcpy(io->tx, io->errf, io->errf_len);
	io->tx_head = io->tx_len = io->errf_len;
	io->tx_off = 0;
	io->pay_fd = -1;
	io->t_sent = mono_ms();
	io->errf_len = 0;
	return true;
}

/*
 * One TLS record's worth of tx: the head, then the payload. After -EAGAIN the next call
 * offers the same bytes (tx_off has not moved), as gnutls_record_send wants.
 */
static ssize_t send_tls(struct conn_io *io)
{
	if (io->tx_off < io->tx_head)
		return wire_tls_send(io->tls, io->tx + io->tx_off, io->tx_head - io->tx_off);
	return wire_tls_send(io->tls, io->pay + (io->tx_off - io->tx_head),
			     io->tx_len - io->tx_off);
}

/* Plain, a payload in a file: the head (more to come), then the pages by sendfile. */
static ssize_t send_file(struct conn_io *io)
{
	if (io->tx_off < io->tx_head) {
		ssize_t n = send(io->fd, io->tx + io->tx_off, io->tx_head - io->tx_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
		return n;
	}
	size_t at = io->tx_off - io->tx_head;
	unsigned k = 0;
	while (k < io->nseg && at >= io->seg[k].len)
		at -= io->seg[k++].len;
	if (k == io->nseg)
		return -EIO;
	off_t off = (off_t)(io->seg[k].off + at);
	ssize_t n = sendfile(io->fd, io->pay_fd, &off, io->seg[k].len - at);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return n ? n : -EIO; /* the file is shorter than its pages: nothing more to send */
}

/* Plain: the rest of the head and the payload in one sendmsg. */
static ssize_t send_plain(struct conn_io *io)
{
	struct iovec iov[2];
	struct msghdr mh = {.msg_iov = iov};

	if (io->tx_off < io->tx_head) {
		iov[0] = (struct iovec){io->tx + io->tx_off, io->tx_head - io->tx_off};
		iov[1] = (struct iovec){io->pay, io->tx_len - io->tx_head};
		mh.msg_iovlen = io->tx_len > io->tx_head ? 2 : 1;
	} else {
		iov[0] =
		    (struct iovec){io->pay + (io->tx_off - io->tx_head), io->tx_len - io->tx_off};
		mh.msg_iovlen = 1;
	}
	ssize_t n = sendmsg(io->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return n;
}

int conn_io_flush(struct conn_io *io, struct errmsg *e)
{
	while (io->tx_off < io->tx_len) {
		ssize_t n = io->tls	      ? send_tls(io)
			    : io->pay_fd >= 0 ? send_file(io)
					      : send_plain(io);
		if (n > 0) {
			io->tx_off += (size_t)n;
			io->t_sent = mono_ms();
			continue;
		}
		if (n == -EAGAIN) {
			if (!io->t_block)
				io->t_block = mono_ns();
			return 0;
		}
		io->dead = true;
		if (n == 0)
			return errmsg_set(e, EPIPE, "send: closed");
		return errmsg_set(e, (int)-n, "send: %s", strerror((int)-n));
	}
	io->tx_len = io->tx_off = io->tx_head = 0;
	io->pay_fd = -1;
	if (io->t_block)
		io->blocked_ns += mono_ns() - io->t_block;
	io->t_block = 0;
	return 0;
}

uint64_t conn_io_blocked_ns(const struct conn_io *io, uint64_t now_ns)
{
	return io->blocked_ns + (io->t_block && now_ns > io->t_block ? now_ns - io->t_block : 0);
}

bool conn_io_tx_busy(const struct conn_io *io)
{
	return io->tx_len != 0;
}

bool conn_io_out_pending(const struct conn_io *io)
{
	return io->tx_len || io->errf_len;
}

bool conn_io_stalled(const struct conn_io *io, uint64_t now_ms, uint64_t limit_ms)
{
	return io->tx_len && now_ms > io->t_sent + limit_ms; /* t_sent may be after now_ms */
}

/* Blocking lazy-wire frame I/O (see wire_io.h). */
#include "wire_io.h"
#include "wire_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/clock.h"

static int wait_fd(int fd, short ev, uint64_t deadline_ms)
{
	uint64_t now = mono_ms();

	if (now >= deadline_ms)
		return -ETIMEDOUT;
	struct pollfd p = {.fd = fd, .events = ev};
	int n = poll(&p, 1, (int)(deadline_ms - now > 60000 ? 60000 : deadline_ms - now));
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return 0;
}

int wire_write_all(int fd, const void *buf, size_t len, uint64_t deadline_ms)
{
	size_t done = 0;

	while (done < len) {
		/* After -EAGAIN the same bytes are offered again, as GnuTLS wants. */
		ssize_t n = wire_sock_send(fd, (const char *)buf + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && n != -EAGAIN)
			return (int)n;
		int rc = wait_fd(fd, POLLOUT, deadline_ms);
		if (rc)
			return rc;
	}
	return 0;
}

int wire_read_all(int fd, void *buf, size_t len, uint64_t deadline_ms)
{
	size_t done = 0;

	while (done < len) {
		/* Bytes GnuTLS holds decrypted come first: poll only once it has none. */
		ssize_t n = wire_sock_recv(fd, (char *)buf + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (n != -EAGAIN)
			return (int)n;
		int rc = wait_fd(fd, POLLIN, deadline_ms);
		if (rc)
			return rc;
	}
	return 0;
}

int wire_send(int fd, uint8_t *scratch, unsigned type, const ProtobufCMessage *m,
	      const void *payload, uint32_t payload_len, uint64_t deadline_ms)
{
	int n = wire_pack(type, m, payload_len, scratch, WIRE_SCRATCH);

	if (n < 0)
		return n;
	int rc = wire_write_all(fd, scratch, (size_t)n, deadline_ms);
	if (!rc && payload_len)
		rc = wire_write_all(fd, payload, payload_len, deadline_ms);
	return rc;
}

int wire_recv(int fd, uint8_t *scratch, struct wire_hdr *h, ProtobufCMessage **m, void *payload,
	      size_t cap, uint64_t deadline_ms, struct errmsg *e)
{
	int rc = wire_read_all(fd, scratch, WIRE_HDR_SIZE, deadline_ms);

	*m = NULL;
	if (rc)
		return errmsg_set(e, rc, "%s", strerror(-rc));
	rc = wire_hdr_get(scratch, h, e);
	if (rc)
		return rc;
	if (h->payload_len > cap)
		return errmsg_set(e, EPROTO, "payload larger than the receive buffer");
	rc = wire_read_all(fd, scratch + WIRE_HDR_SIZE, h->msg_len, deadline_ms);
	if (!rc && h->payload_len)
		rc = wire_read_all(fd, payload, h->payload_len, deadline_ms);
	if (rc)
		return errmsg_set(e, rc, "%s", strerror(-rc));
	*m = wire_unpack(h->type, scratch + WIRE_HDR_SIZE, h->msg_len);
	if (!*m)
		return errmsg_set(e, EPROTO, "malformed protobuf message");
	rc = wire_check(h->type, *m, h, e);
	if (rc) {
		wire_free(*m);
		*m = NULL;
	}
	return rc;
}

int wire_create_private(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd >= 0 && fchmod(fd, 0600)) {
		int e = errno;
		close(fd);
		unlinkat(dirfd, name, 0);
		errno = e;
		return -1;
	}
	return fd;
}

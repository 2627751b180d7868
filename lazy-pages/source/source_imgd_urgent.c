/* The criu-imgd source's urgent path: read(), one GET at a time (source_imgd.h). */
#include "source_imgd.h"

#include <errno.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"

/* One GET of n pages on the urgent connection. */
static int get_once(struct imgd_src *s, int32_t pid, uint64_t off, uint32_t n, uint8_t *buf)
{
	uint32_t req = ++s->next_req, got = 0;
	uint64_t deadline = mono_ms() + s->timeout_ms;
	int rc = wire_client_get(s->ufd, s->uscratch, req, LW_CLASS__LW_CLASS_URGENT, pid, off, n,
				 deadline);

	while (!rc && got < n) {
		struct wire_hdr h;
		ProtobufCMessage *m;
		struct errmsg why;
		const uint8_t *raw;
		rc = wire_recv(s->ufd, s->uscratch, &h, &m, s->upay, WIRE_MAX_PAYLOAD, deadline,
			       &why);
		if (rc) {
			pr_warn("image server: %s", why.msg);
			return rc == -EPROTO ? -EPIPE : rc;
		}
		s->bytes_rx += WIRE_HDR_SIZE + (uint64_t)h.msg_len + h.payload_len;
		if (h.type == WT_ERROR) {
			LwError *e = (LwError *)m;
			pr_err("image server: %s", e->text);
			rc = e->has_req ? wire_err_errno(e->code) : -EPIPE;
		} else if (h.type != WT_PAGES) {
			rc = -EPIPE;
		} else {
			LwPages *p = (LwPages *)m;
			if (p->req != req || p->pid != pid ||
			    p->off != off + (uint64_t)got * WIRE_PAGE || p->nr_pages > n - got ||
			    (p->done != (got + p->nr_pages == n)))
				rc = -EPIPE;
			else if (!(raw = imgd_inflate(s, p, s->upay, h.payload_len, s->ucodec)))
				rc = -EBADMSG;
			else
				rc = imgd_unpack_pages(s, p, raw, buf + (size_t)got * WIRE_PAGE,
						       SRC_FAULTS, s->usrv, NULL);
			if (!rc)
				got += p->nr_pages;
		}
		wire_free(m);
	}
	return rc;
}

void imgd_drop_urgent(struct imgd_src *s)
{
	wire_sock_close(s->ufd);
	s->ufd = -1;
}

/*
 * A failed attempt of the urgent path: -EAGAIN with the next attempt's time set, while
 * retries are left; the read's final error once they are spent.
 */
static int urgent_failed(struct imgd_src *s, int rc)
{
	if (imgd_spent(s, ++s->ufails)) {
		s->ufails = 0;
		s->uretry_at = 0;
		return rc == -EBADMSG ? rc : -EIO;
	}
	unsigned ms = imgd_retry_ms(s, s->ufails);
	s->uretry_at = mono_ms() + ms;
	pr_info("image server: urgent connection: %s; attempt %u in %u ms", strerror(-rc),
		s->ufails + 1, ms);
	return -EAGAIN;
}

/*
 * One attempt, never a sleep: while the urgent connection is down and its backoff runs,
 * -EAGAIN at once (source.h: wait_ms() says when to come back).
 */
int imgd_read(struct page_source *ps, const struct img_task *t, uint64_t off, void *buf, size_t len)
{
	struct imgd_src *s = ps->priv;

	if (len % WIRE_PAGE || off % WIRE_PAGE || !len)
		return -EINVAL;
	if (s->ufd < 0 && !s->udial.running && s->uretry_at > mono_ms())
		return -EAGAIN;
	for (size_t done = 0; done < len;) {
		uint32_t n = (uint32_t)((len - done) / WIRE_PAGE);
		if (n > WIRE_MAX_GET_PAGES)
			n = WIRE_MAX_GET_PAGES;
		if (s->ufd < 0) {
			/* Reconnecting in a thread: the fault waits, the loop goes on (wait_ms). */
			int fd = s->udial.running ? imgd_dial_poll(s, &s->udial) : -ECHILD;
			unsigned srv = s->udial.srv;
			LwCodec codec = s->udial.info.codec;
			if (fd == -EINPROGRESS)
				return -EAGAIN;
			if (fd == -ECHILD) {
				if (!imgd_dial_start(s, &s->udial, LW_CLASS__LW_CLASS_URGENT,
						     s->uscratch))
					return -EAGAIN;
				fd = imgd_connect(s, LW_CLASS__LW_CLASS_URGENT, s->uscratch, &srv,
						  &codec);
			}
			if (fd < 0)
				return imgd_dial_fatal(s, fd) ? fd : urgent_failed(s, fd);
			s->ufd = fd;
			s->usrv = srv;
			s->ucodec = codec;
			if (s->ufails)
				s->reconnects++;
		}
		int rc = get_once(s, t->pid, off + done, n, (uint8_t *)buf + done);
		if (rc) {
			/* Anything else leaves the stream in an unknown state: start afresh. */
			imgd_drop_urgent(s);
			if (rc == -ERANGE || rc == -ENOENT || rc == -EACCES)
				return rc;
			imgd_server_down(s, s->usrv, rc);
			return urgent_failed(s, rc);
		}
		done += (size_t)n * WIRE_PAGE;
	}
	s->ufails = 0;
	return 0;
}

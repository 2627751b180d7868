/* The criu-imgd source's bulk path: prefetch() and collect(), a window of GETs (source_imgd.h). */
#include "source_imgd.h"

#include <errno.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"

void imgd_drop_bulk(struct imgd_src *s)
{
	wire_sock_close(s->bfd);
	s->bfd = -1;
	s->brx = (struct bulk_rx){0};
}

/* (Re)send what is left of read r, from range cur's page got on. */
static int submit(struct imgd_src *s, struct pf_req *r)
{
	uint64_t off[SRC_MAX_RANGES];
	uint32_t n[SRC_MAX_RANGES];
	unsigned k = 0;

	for (unsigned i = r->cur; i < r->nr; i++, k++) {
		uint32_t skip = i == r->cur ? r->got : 0;
		off[k] = r->off[i] + (uint64_t)skip * WIRE_PAGE;
		n[k] = r->n[i] - skip;
	}
	r->req = ++s->next_req;
	return wire_client_getv(s->bfd, s->btx, r->req, LW_CLASS__LW_CLASS_BULK, r->t->pid, off, n,
				k, mono_ms() + s->timeout_ms);
}

/*
 * (Re)connect the bulk path and send every request in flight again: 0 when up, -EAGAIN
 * while its backoff or the connection attempt runs (never a sleep or a blocking connect:
 * wait_ms() says when to come back), -EIO when the retries are spent (they start over for
 * the next read), or a fatal -errno.
 */
static int bulk_up(struct imgd_src *s)
{
	int fd;

	if (s->bfd >= 0)
		return 0;
	if (s->bdial.running) {
		fd = imgd_dial_poll(s, &s->bdial);
		if (fd == -EINPROGRESS)
			return -EAGAIN;
	} else {
		if (s->bretry_at > mono_ms())
			return -EAGAIN;
		unsigned srv;
		if (!imgd_dial_start(s, &s->bdial, LW_CLASS__LW_CLASS_BULK, s->bscratch))
			return -EAGAIN; /* the loop comes back (wait_ms) */
		fd = imgd_connect(s, LW_CLASS__LW_CLASS_BULK, s->bscratch, &srv); /* no thread */
	}
	int rc = fd;
	if (fd >= 0) {
		s->bfd = fd;
		s->brx_at = mono_ms();
		rc = 0;
		for (unsigned i = 0; i < s->npf && !rc; i++)
			rc = submit(s, &s->pf[i]);
		if (!rc) {
			if (s->npf) /* reads in flight: this is a reconnect */
				s->reconnects++;
			s->bfails = 0;
			return 0;
		}
		imgd_drop_bulk(s);
		imgd_server_down(s, s->bsrv, rc);
	} else if (imgd_dial_fatal(s, rc)) {
		return rc;
	}
	if (imgd_spent(s, ++s->bfails)) {
		s->bfails = 0;
		s->bretry_at = 0;
		return -EIO;
	}
	unsigned ms = imgd_retry_ms(s, s->bfails);
	s->bretry_at = mono_ms() + ms;
	pr_info("image server (bulk): %s; attempt %u in %u ms", strerror(-rc), s->bfails + 1, ms);
	return -EAGAIN;
}

int imgd_prefetchv(struct page_source *ps, const struct img_task *t, const struct src_range *rg,
		   unsigned nr, uint64_t tag)
{
	struct imgd_src *s = ps->priv;
	uint64_t pages = 0;

	if (s->npf >= s->window)
		return -EBUSY;
	if (!nr || nr > SRC_MAX_RANGES || nr > WIRE_MAX_RANGES)
		return -EINVAL;
	for (unsigned i = 0; i < nr; i++) {
		if (rg[i].len % WIRE_PAGE || rg[i].src % WIRE_PAGE || !rg[i].len)
			return -EINVAL;
		pages += rg[i].len / WIRE_PAGE;
	}
	if (pages > WIRE_MAX_GET_PAGES)
		return -EINVAL;
	int rc = bulk_up(s);
	if (rc && rc != -EAGAIN)
		return rc;
	struct pf_req *r = &s->pf[s->npf];
	if (!s->npf) /* the wait for data starts now */
		s->brx_at = mono_ms();
	*r = (struct pf_req){.tag = tag, .t = t, .nr = (uint8_t)nr};
	for (unsigned i = 0; i < nr; i++) {
		r->off[i] = rg[i].src;
		r->n[i] = (uint32_t)(rg[i].len / WIRE_PAGE);
	}
	s->npf++;
	/* Reconnecting: queued, sent with the others when the connection is back. */
	if (s->bfd >= 0 && (rc = submit(s, r))) {
		imgd_drop_bulk(s); /* sent again on the next collect */
		imgd_server_down(s, s->bsrv, rc);
	}
	return 0;
}

int imgd_prefetch(struct page_source *ps, const struct img_task *t, uint64_t off, size_t len,
		  uint64_t tag)
{
	struct src_range r = {off, len};

	return imgd_prefetchv(ps, t, &r, 1, tag);
}

int imgd_poll_fd(struct page_source *ps)
{
	struct imgd_src *s = ps->priv;

	/* Bytes TLS has decrypted already make no poll event: the daemon must not sleep. */
	return wire_sock_pending(s->bfd) ? -1 : s->bfd;
}

unsigned imgd_inflight(struct page_source *ps)
{
	return ((struct imgd_src *)ps->priv)->npf;
}

/* Receive what the bulk socket has toward one frame: 1 complete, 0 not yet, <0 dead. */
static int bulk_recv(struct imgd_src *s)
{
	struct bulk_rx *x = &s->brx;

	for (;;) {
		size_t want, at;
		uint8_t *dst;
		if (!x->hdr_ok) {
			want = WIRE_HDR_SIZE;
			at = x->have;
			dst = s->bscratch + at;
		} else if (x->have < WIRE_HDR_SIZE + x->h.msg_len) {
			want = WIRE_HDR_SIZE + x->h.msg_len;
			at = x->have;
			dst = s->bscratch + at;
		} else {
			want = WIRE_HDR_SIZE + x->h.msg_len + x->h.payload_len;
			at = x->have;
			dst = s->bpay + (at - WIRE_HDR_SIZE - x->h.msg_len);
		}
		if (at == want) {
			if (x->hdr_ok && want == WIRE_HDR_SIZE + x->h.msg_len + x->h.payload_len)
				return 1;
			if (!x->hdr_ok) {
				struct errmsg e;
				if (wire_hdr_get(s->bscratch, &x->h, &e)) {
					pr_warn("image server (bulk): %s", e.msg);
					return -EPROTO;
				}
				x->hdr_ok = true;
			}
			continue;
		}
		ssize_t n = wire_sock_recv(s->bfd, dst, want - at);
		if (n > 0) {
			x->have += (size_t)n;
			s->brx_at = mono_ms();
			continue;
		}
		if (n == -EAGAIN)
			return 0;
		return n == 0 ? -ECONNRESET : (int)n;
	}
}

static struct pf_req *find_pf(struct imgd_src *s, uint32_t req, unsigned *idx)
{
	for (unsigned i = 0; i < s->npf; i++)
		if (s->pf[i].req == req) {
			*idx = i;
			return &s->pf[i];
		}
	return NULL;
}

static void pf_remove(struct imgd_src *s, unsigned i)
{
	memmove(&s->pf[i], &s->pf[i + 1], (s->npf - i - 1) * sizeof(s->pf[0]));
	s->npf--;
}

/* Act on a complete bulk frame: 1 chunk out, 0 nothing for the caller, <0 error for chunk->tag. */
static int bulk_frame(struct imgd_src *s, struct src_chunk *out, bool *reset)
{
	const struct wire_hdr *h = &s->brx.h;
	struct errmsg why;
	ProtobufCMessage *m = wire_unpack(h->type, s->bscratch + WIRE_HDR_SIZE, h->msg_len);
	unsigned idx;
	int rc = 0;

	*reset = true;
	s->bytes_rx += WIRE_HDR_SIZE + (uint64_t)h->msg_len + h->payload_len;
	if (!m || wire_check(h->type, m, h, &why)) {
		pr_warn("image server (bulk): bad %s frame: %s", wire_type_name(h->type),
			m ? why.msg : "malformed message");
		wire_free(m);
		return 0;
	}
	if (h->type == WT_ERROR) {
		LwError *e = (LwError *)m;
		struct pf_req *r = e->has_req ? find_pf(s, e->req, &idx) : NULL;
		pr_err("image server (bulk): %s", e->text);
		rc = wire_err_errno(e->code);
		if (r && imgd_fatal(rc)) {
			*out = (struct src_chunk){.tag = r->tag, .t = r->t, .last = true};
			pf_remove(s, idx);
			*reset = false;
		} else {
			rc = 0;
		}
	} else if (h->type == WT_PAGES) {
		LwPages *p = (LwPages *)m;
		struct pf_req *r = find_pf(s, p->req, &idx);
		if (r && p->pid == r->t->pid &&
		    p->off == r->off[r->cur] + (uint64_t)r->got * WIRE_PAGE &&
		    p->nr_pages <= r->n[r->cur] - r->got &&
		    p->done == (r->cur + 1 == r->nr && r->got + p->nr_pages == r->n[r->cur])) {
			const uint8_t *data;
			const uint8_t *raw = imgd_inflate(s, p, s->bpay, h->payload_len, s->bcodec);
			if (!raw || imgd_unpack_pages(s, p, raw, s->chunk, SRC_STREAM, &data)) {
				if (++r->fails > s->retries) {
					*out = (struct src_chunk){
					    .tag = r->tag, .t = r->t, .last = true};
					pf_remove(s, idx);
					rc = -EBADMSG;
				}
			} else {
				r->fails = 0;
				r->got += p->nr_pages;
				if (r->got == r->n[r->cur]) {
					r->cur++;
					r->got = 0;
				}
				*out = (struct src_chunk){r->tag, r->t,	       p->off,
							  data,	  p->nr_pages, r->cur == r->nr};
				if (r->cur == r->nr)
					pf_remove(s, idx);
				*reset = false;
				rc = 1;
			}
		} else {
			pr_warn(
			    "image server (bulk): PAGES for request %u at 0x%llx that we did not "
			    "ask for (%s)",
			    p->req, (unsigned long long)p->off, r ? "out of order" : "unknown");
		}
	} else {
		pr_warn("image server (bulk): unexpected %s frame", wire_type_name(h->type));
	}
	wire_free(m);
	return rc;
}

unsigned imgd_stall_ms(struct page_source *ps)
{
	const struct imgd_src *s = ps->priv;
	uint64_t now = mono_ms(), at = s->brx_at + s->timeout_ms;

	if (s->bfd < 0 || !s->npf)
		return 0;
	return at > now ? (unsigned)(at - now) : 1;
}

int imgd_collect(struct page_source *ps, struct src_chunk *out)
{
	struct imgd_src *s = ps->priv;

	if (!s->npf)
		return 0;
	if (s->bfd >= 0 && mono_ms() >= s->brx_at + s->timeout_ms && !wire_sock_pending(s->bfd)) {
		/* A hung server, or its host gone without a reset: ask again elsewhere. */
		pr_warn("image server (bulk): nothing received for %u ms with %u reads in flight: "
			"reconnecting",
			s->timeout_ms, s->npf);
		imgd_drop_bulk(s);
		imgd_server_down(s, s->bsrv, -ETIMEDOUT);
		return 0;
	}
	if (s->bfd < 0) {
		int rc = bulk_up(s);
		if (rc == -EAGAIN)
			return 0; /* backing off: wait_ms() says until when */
		if (rc) {
			/* The server stays away: fail the oldest read for good. */
			*out =
			    (struct src_chunk){.tag = s->pf[0].tag, .t = s->pf[0].t, .last = true};
			pf_remove(s, 0);
			return rc;
		}
	}
	int rc = bulk_recv(s);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		pr_warn("image server (bulk): connection lost (%s): reconnecting", strerror(-rc));
		imgd_drop_bulk(s);
		imgd_server_down(s, s->bsrv, rc);
		return 0;
	}
	bool reset;
	rc = bulk_frame(s, out, &reset);
	s->brx = (struct bulk_rx){0};
	if (reset && rc <= 0) {
		imgd_drop_bulk(s); /* a frame we cannot place: resend everything on a new stream */
		imgd_server_down(s, s->bsrv, -EPROTO);
	}
	return rc;
}

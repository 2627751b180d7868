/*
 * The criu-imgd source's pipelined connections (source_imgd.h): a window of GETs in flight
 * on one connection, each answered by PAGES frames in order, received a piece at a time
 * without ever blocking. Two of them: the stream's (class BULK: prefetch(), prefetchv()) and
 * the faults' (class URGENT: faultv(), ahead of every stream read in criu-imgd). collect()
 * hands out what either brought, the faults' first.
 */
#include "source_imgd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/clock.h"
#include "util/log.h"
#include "wire/wire_tls.h"

void imgd_drop_pipe(struct imgd_pipe *p)
{
	wire_sock_close(p->fd);
	p->fd = -1;
	p->rx = (struct pipe_rx){0};
}

/* (Re)send what is left of read r, from range cur's page got on. */
static int submit(struct imgd_src *s, struct imgd_pipe *p, struct pf_req *r)
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
	return wire_client_getv(p->fd, p->tx, r->req, p->cls, r->t->pid, off, n, k,
				mono_ms() + s->timeout_ms);
}

/* p's connection failed or was lost (rc): closed, and the next one goes to the next server. */
static void pipe_lost(struct imgd_src *s, struct imgd_pipe *p, int rc)
{
	imgd_drop_pipe(p);
	imgd_server_down(s, p->srv, rc);
}

void imgd_warm(struct page_source *src)
{
	struct imgd_src *s = src->priv;
	struct imgd_pipe *ps[] = {&s->bulk, &s->fast};

	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		if (ps[i]->fd < 0 && !ps[i]->dial.running)
			imgd_dial_start(s, &ps[i]->dial, ps[i]->cls, ps[i]->scratch);
}

/*
 * (Re)connect p and send every request in flight again: 0 when up, -EAGAIN while its
 * backoff or the connection attempt runs (never a sleep or a blocking connect: wait_ms()
 * says when to come back), -EIO when the retries are spent (they start over for the next
 * read), or a fatal -errno.
 */
static int pipe_up(struct imgd_src *s, struct imgd_pipe *p)
{
	unsigned srv = s->cur;
	LwCodec codec = LW_CODEC__LW_CODEC_NONE;
	int fd;

	if (p->fd >= 0)
		return 0;
	if (p->dial.running) {
		fd = imgd_dial_poll(s, &p->dial);
		if (fd == -EINPROGRESS)
			return -EAGAIN;
		srv = p->dial.srv;
		codec = p->dial.info.codec;
	} else {
		if (p->retry_at > mono_ms())
			return -EAGAIN;
		if (!imgd_dial_start(s, &p->dial, p->cls, p->scratch))
			return -EAGAIN; /* the loop comes back (wait_ms) */
		fd = imgd_connect(s, p->cls, p->scratch, &srv, &codec); /* no thread */
	}
	int rc = fd;
	if (fd >= 0) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof(sa);
		p->fd = fd;
		p->srv = srv;
		p->codec = codec;
		p->local = !getpeername(fd, (struct sockaddr *)&sa, &sl) &&
			   wire_addr_loopback((struct sockaddr *)&sa);
		p->rx_at = mono_ms();
		rc = 0;
		for (unsigned i = 0; i < p->npf && !rc; i++)
			rc = submit(s, p, &p->pf[i]);
		if (!rc) {
			if (p->npf) /* reads in flight: this is a reconnect */
				s->reconnects++;
			p->fails = 0;
			return 0;
		}
		pipe_lost(s, p, rc);
	} else if (imgd_dial_fatal(s, rc)) {
		return rc;
	}
	if (imgd_spent(s, ++p->fails)) {
		p->fails = 0;
		p->retry_at = 0;
		return -EIO;
	}
	unsigned ms = imgd_retry_ms(s, p->fails);
	p->retry_at = mono_ms() + ms;
	pr_info("image server (%s): %s; attempt %u in %u ms", p->name, strerror(-rc), p->fails + 1,
		ms);
	return -EAGAIN;
}

/* Queue a read of ranges rg[0..nr) of t on p (sent at once when p is up). */
static int pipe_queue(struct imgd_src *s, struct imgd_pipe *p, const struct img_task *t,
		      const struct src_range *rg, unsigned nr, uint64_t tag)
{
	uint64_t pages = 0;

	if (p->npf >= p->window)
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
	int rc = pipe_up(s, p);
	if (rc && rc != -EAGAIN)
		return rc;
	struct pf_req *r = &p->pf[p->npf];
	if (!p->npf) /* the wait for data starts now */
		p->rx_at = mono_ms();
	*r = (struct pf_req){.tag = tag, .t = t, .nr = (uint8_t)nr};
	for (unsigned i = 0; i < nr; i++) {
		r->off[i] = rg[i].src;
		r->n[i] = (uint32_t)(rg[i].len / WIRE_PAGE);
	}
	p->npf++;
	/* Reconnecting: queued, sent with the others when the connection is back. */
	if (p->fd >= 0 && (rc = submit(s, p, r)))
		pipe_lost(s, p, rc); /* sent again on the next collect */
	return 0;
}

int imgd_prefetchv(struct page_source *ps, const struct img_task *t, const struct src_range *rg,
		   unsigned nr, uint64_t tag)
{
	struct imgd_src *s = ps->priv;

	return pipe_queue(s, &s->bulk, t, rg, nr, tag);
}

int imgd_prefetch(struct page_source *ps, const struct img_task *t, uint64_t off, size_t len,
		  uint64_t tag)
{
	struct src_range r = {off, len};

	return imgd_prefetchv(ps, t, &r, 1, tag);
}

int imgd_faultv(struct page_source *ps, const struct img_task *t, const struct src_range *rg,
		unsigned nr, uint64_t tag)
{
	struct imgd_src *s = ps->priv;

	return pipe_queue(s, &s->fast, t, rg, nr, tag);
}

/* Bytes TLS has decrypted already make no poll event: the daemon must not sleep (-1). */
static int pipe_fd(const struct imgd_pipe *p)
{
	return wire_sock_pending(p->fd) ? -1 : p->fd;
}

int imgd_poll_fd(struct page_source *ps)
{
	return pipe_fd(&((struct imgd_src *)ps->priv)->bulk);
}

int imgd_fault_fd(struct page_source *ps)
{
	return pipe_fd(&((struct imgd_src *)ps->priv)->fast);
}

bool imgd_loopback(struct page_source *ps)
{
	const struct imgd_src *s = ps->priv;

	return s->bulk.local;
}

unsigned imgd_inflight(struct page_source *ps)
{
	const struct imgd_src *s = ps->priv;

	return s->bulk.npf + s->fast.npf;
}

/* Receive what p's socket has toward one frame: 1 complete, 0 not yet, <0 dead. */
static int pipe_recv(struct imgd_pipe *p)
{
	struct pipe_rx *x = &p->rx;

	for (;;) {
		size_t want, at;
		uint8_t *dst;
		if (!x->hdr_ok) {
			want = WIRE_HDR_SIZE;
			at = x->have;
			dst = p->scratch + at;
		} else if (x->have < WIRE_HDR_SIZE + x->h.msg_len) {
			want = WIRE_HDR_SIZE + x->h.msg_len;
			at = x->have;
			dst = p->scratch + at;
		} else {
			want = WIRE_HDR_SIZE + x->h.msg_len + x->h.payload_len;
			at = x->have;
			dst = p->pay + (at - WIRE_HDR_SIZE - x->h.msg_len);
		}
		if (at == want) {
			if (x->hdr_ok && want == WIRE_HDR_SIZE + x->h.msg_len + x->h.payload_len)
				return 1;
			if (!x->hdr_ok) {
				struct errmsg e;
				if (wire_hdr_get(p->scratch, &x->h, &e)) {
					pr_warn("image server (%s): %s", p->name, e.msg);
					return -EPROTO;
				}
				x->hdr_ok = true;
			}
			continue;
		}
		ssize_t n = wire_sock_recv(p->fd, dst, want - at);
		if (n > 0) {
			x->have += (size_t)n;
			p->rx_at = mono_ms();
			continue;
		}
		if (n == -EAGAIN)
			return 0;
		return n == 0 ? -ECONNRESET : (int)n;
	}
}

static struct pf_req *find_pf(struct imgd_pipe *p, uint32_t req, unsigned *idx)
{
	for (unsigned i = 0; i < p->npf; i++)
		if (p->pf[i].req == req) {
			*idx = i;
			return &p->pf[i];
		}
	return NULL;
}

static void pf_remove(struct imgd_pipe *p, unsigned i)
{
	memmove(&p->pf[i], &p->pf[i + 1], (p->npf - i - 1) * sizeof(p->pf[0]));
	p->npf--;
}

/* Act on a complete frame of p: 1 chunk out, 0 nothing for the caller, <0 error for chunk->tag. */
static int pipe_frame(struct imgd_src *s, struct imgd_pipe *p, struct src_chunk *out, bool *reset)
{
	const struct wire_hdr *h = &p->rx.h;
	struct errmsg why;
	ProtobufCMessage *m = wire_unpack(h->type, p->scratch + WIRE_HDR_SIZE, h->msg_len);
	unsigned idx;
	int rc = 0;

	*reset = true;
	s->bytes_rx += WIRE_HDR_SIZE + (uint64_t)h->msg_len + h->payload_len;
	if (!m || wire_check(h->type, m, h, &why)) {
		pr_warn("image server (%s): bad %s frame: %s", p->name, wire_type_name(h->type),
			m ? why.msg : "malformed message");
		wire_free(m);
		return 0;
	}
	if (h->type == WT_ERROR) {
		LwError *e = (LwError *)m;
		struct pf_req *r = e->has_req ? find_pf(p, e->req, &idx) : NULL;
		pr_err("image server (%s): %s", p->name, e->text);
		rc = wire_err_errno(e->code);
		/* Damaged data on this server: with others in the list, the read goes to the
		 * next one (as a lost connection), a bounded number of times. */
		bool elsewhere = r && rc == -EBADMSG && s->cl.nsrv > 1 &&
				 ++r->fails <= (s->retries + 1) * s->cl.nsrv;
		if (r && imgd_fatal(rc) && !elsewhere) {
			*out = (struct src_chunk){.tag = r->tag, .t = r->t, .last = true};
			pf_remove(p, idx);
			*reset = false;
		} else {
			rc = 0;
		}
	} else if (h->type == WT_PAGES) {
		LwPages *pg = (LwPages *)m;
		struct pf_req *r = find_pf(p, pg->req, &idx);
		if (r && pg->pid == r->t->pid &&
		    pg->off == r->off[r->cur] + (uint64_t)r->got * WIRE_PAGE &&
		    pg->nr_pages <= r->n[r->cur] - r->got &&
		    pg->done == (r->cur + 1 == r->nr && r->got + pg->nr_pages == r->n[r->cur])) {
			const uint8_t *data;
			const uint8_t *raw = imgd_inflate(s, pg, p->pay, h->payload_len, p->codec);
			if (!raw ||
			    imgd_unpack_pages(s, pg, raw, s->chunk, p->path, p->srv, &data)) {
				if (++r->fails > s->retries) {
					*out = (struct src_chunk){
					    .tag = r->tag, .t = r->t, .last = true};
					pf_remove(p, idx);
					rc = -EBADMSG;
				}
			} else {
				r->fails = 0;
				r->got += pg->nr_pages;
				if (r->got == r->n[r->cur]) {
					r->cur++;
					r->got = 0;
				}
				*out = (struct src_chunk){r->tag, r->t,		pg->off,
							  data,	  pg->nr_pages, r->cur == r->nr};
				if (r->cur == r->nr)
					pf_remove(p, idx);
				*reset = false;
				rc = 1;
			}
		} else {
			pr_warn("image server (%s): PAGES for request %u at 0x%llx that we did not "
				"ask for (%s)",
				p->name, pg->req, (unsigned long long)pg->off,
				r ? "out of order" : "unknown");
		}
	} else {
		pr_warn("image server (%s): unexpected %s frame", p->name, wire_type_name(h->type));
	}
	wire_free(m);
	return rc;
}

/* Fail p's oldest read for good with rc (the caller learns it by its tag). */
static int fail_oldest(struct imgd_pipe *p, struct src_chunk *out, int rc)
{
	*out = (struct src_chunk){.tag = p->pf[0].tag, .t = p->pf[0].t, .last = true};
	pf_remove(p, 0);
	if (!p->npf)
		p->dead = 0;
	return rc;
}

/*
 * Nothing came on p's live connection for imgd_stall_limit() while reads are out (checked
 * after a receive found the socket empty: bytes waiting unread are no stall). A hung
 * server, or its host gone without a reset: the reads are asked again on the next server;
 * after --source-retries rounds of that without a frame, they fail.
 */
static int pipe_stalled(struct imgd_src *s, struct imgd_pipe *p, struct src_chunk *out)
{
	unsigned limit = imgd_stall_limit(s);

	if (mono_ms() < p->rx_at + limit)
		return 0;
	if (imgd_spent(s, ++p->stalls)) {
		pr_err("image server (%s): nothing received for %u ms, %u times in a row: its %u "
		       "reads fail",
		       p->name, limit, p->stalls, p->npf);
		p->stalls = 0;
		imgd_drop_pipe(p);
		p->dead = -ETIMEDOUT;
		return fail_oldest(p, out, -ETIMEDOUT);
	}
	pr_warn("image server (%s): nothing received for %u ms with %u reads in flight: "
		"reconnecting",
		p->name, limit, p->npf);
	pipe_lost(s, p, -ETIMEDOUT);
	return 0;
}

static int pipe_collect(struct imgd_src *s, struct imgd_pipe *p, struct src_chunk *out)
{
	if (!p->npf)
		return 0;
	if (p->dead) /* the retries are spent: every read out fails, not one per round */
		return fail_oldest(p, out, p->dead);
	if (p->fd < 0) {
		int rc = pipe_up(s, p);
		if (rc == -EAGAIN)
			return 0; /* backing off: wait_ms() says until when */
		if (rc) {
			/* The server stays away: its reads fail for good. */
			p->dead = rc;
			return fail_oldest(p, out, rc);
		}
	}
	int rc = pipe_recv(p);
	if (rc == 0)
		return pipe_stalled(s, p, out);
	if (rc < 0) {
		pr_warn("image server (%s): connection lost (%s): reconnecting", p->name,
			strerror(-rc));
		pipe_lost(s, p, rc);
		return 0;
	}
	bool reset;
	rc = pipe_frame(s, p, out, &reset);
	p->rx = (struct pipe_rx){0};
	if (rc > 0)
		p->stalls = 0;
	if (reset && rc <= 0)
		pipe_lost(s, p, -EPROTO); /* a frame we cannot place: resend all on a new stream */
	return rc;
}

int imgd_collect(struct page_source *ps, struct src_chunk *out)
{
	struct imgd_src *s = ps->priv;
	int rc = pipe_collect(s, &s->fast, out);

	return rc ? rc : pipe_collect(s, &s->bulk, out);
}

/* ms until p's reads in flight count as stalled (0: none out on a live connection). */
static unsigned pipe_stall_ms(const struct imgd_src *s, const struct imgd_pipe *p)
{
	uint64_t now = mono_ms(), at = p->rx_at + imgd_stall_limit(s);

	if (p->fd < 0 || !p->npf)
		return 0;
	return at > now ? (unsigned)(at - now) : 1;
}

unsigned imgd_stall_ms(struct page_source *ps)
{
	const struct imgd_src *s = ps->priv;
	unsigned a = pipe_stall_ms(s, &s->bulk), b = pipe_stall_ms(s, &s->fast);

	return !a ? b : !b ? a : a < b ? a : b;
}

int imgd_pipe_init(struct imgd_pipe *p, const char *name, LwClass cls, enum src_path path,
		   unsigned window)
{
	*p = (struct imgd_pipe){.name = name, .cls = cls, .path = path, .fd = -1, .window = window};
	p->scratch = malloc(WIRE_SCRATCH);
	p->tx = malloc(WIRE_SCRATCH);
	p->pay = malloc(WIRE_MAX_PAYLOAD);
	return p->scratch && p->tx && p->pay ? 0 : -ENOMEM;
}

void imgd_pipe_free(struct imgd_pipe *p)
{
	imgd_dial_wait(&p->dial);
	imgd_drop_pipe(p);
	free(p->scratch);
	free(p->tx);
	free(p->pay);
	p->scratch = p->tx = p->pay = NULL;
}

/*
 * Page data from criu-imgd over lazy-wire. Two connections per restore:
 *   urgent: read(), the fault path; one request at a time, nothing queued
 *           ahead of it on its socket or in the server;
 *   bulk:   prefetch()/collect(), a pipelined window of background reads.
 * Every page is checked against its checksum before it is handed out; a lost
 * connection is re-established with exponential backoff and the requests in
 * flight on it are sent again (nothing was handed out for them yet, so a page
 * is never delivered twice from one request).
 */
#include "source.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/parse.h"
#include "wire/wire_client.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define MAX_WINDOW 64

struct pf_req {
	uint64_t tag;
	const struct img_task *t;
	uint64_t off;
	uint32_t n, got; /* pages asked, pages collected */
	uint32_t req;
	unsigned fails;
};

struct bulk_rx {
	size_t have; /* bytes of header + message + payload received */
	struct wire_hdr h;
	bool hdr_ok;
};

struct imgd_src {
	struct wire_client cl;
	struct wire_tls_cfg tls;
	struct wire_key key;
	struct wire_open_info info;
	unsigned retries, timeout_ms, window;
	int ufd, bfd;
	uint8_t *uscratch, *bscratch, *btx; /* bulk receives into bscratch, sends from btx */
	uint8_t *upay, *bpay;		    /* compact payloads as received */
	uint8_t *chunk;			    /* a bulk chunk, zero pages expanded */
	uint64_t zero_sum;
	uint32_t next_req;
	struct pf_req pf[MAX_WINDOW];
	unsigned npf;
	struct bulk_rx brx;
	uint64_t reconnects, bad_sums;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static unsigned backoff(unsigned attempt)
{
	unsigned ms = BACKOFF_MIN_MS;
	for (unsigned i = 0; i < attempt && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

static int connect_class(struct imgd_src *s, LwClass cls, uint8_t *scratch)
{
	char err[256];
	struct wire_open_info info;
	int fd = wire_client_open(&s->cl, cls, scratch, &info, err, sizeof(err));

	if (fd < 0) {
		pr_warn("image server %s:%s: %s", s->cl.host, s->cl.port, err);
		return fd;
	}
	if (s->info.nr_tasks &&
	    (info.nr_tasks != s->info.nr_tasks || info.lazy_pages != s->info.lazy_pages)) {
		pr_err("image server %s:%s now serves a different image '%s'", s->cl.host,
		       s->cl.port, s->cl.image ? s->cl.image : "default");
		wire_sock_close(fd);
		return -ENOENT;
	}
	s->info = info;
	return fd;
}

static bool fatal(int rc)
{
	return rc == -EACCES || rc == -ENOENT || rc == -ERANGE || rc == -EBADMSG;
}

/* Check and place one PAGES frame's n pages into out (zero pages written as zeros). */
static int unpack_pages(struct imgd_src *s, const LwPages *p, const uint8_t *pay, uint8_t *out)
{
	size_t at = 0;

	for (uint32_t i = 0; i < p->nr_pages; i++) {
		uint8_t *dst = out + (size_t)i * WIRE_PAGE;
		uint64_t sum;
		if (wire_zero_bit(p->zero.data, i)) {
			memset(dst, 0, WIRE_PAGE);
			sum = s->zero_sum;
		} else {
			memcpy(dst, pay + at, WIRE_PAGE);
			at += WIRE_PAGE;
			sum = wire_page_sum(dst);
		}
		if (sum != p->sums[i]) {
			s->bad_sums++;
			pr_err("pid %d: page at offset 0x%llx fails its checksum (got %016llx, "
			       "want %016llx)",
			       p->pid, (unsigned long long)(p->off + (uint64_t)i * WIRE_PAGE),
			       (unsigned long long)sum, (unsigned long long)p->sums[i]);
			return -EBADMSG;
		}
	}
	return 0;
}

/* ---- the urgent path ---- */

static int send_get(int fd, uint8_t *scratch, uint32_t req, LwClass prio, int32_t pid, uint64_t off,
		    uint32_t n, unsigned timeout_ms)
{
	LwRange r = LW_RANGE__INIT, *rp = &r;
	LwGet g = LW_GET__INIT;

	r.pid = pid;
	r.off = off;
	r.nr_pages = n;
	g.req = req;
	g.prio = prio;
	g.n_ranges = 1;
	g.ranges = &rp;
	return wire_send(fd, scratch, WT_GET, &g.base, NULL, 0, mono_ms() + timeout_ms);
}

/* One GET of n pages on the urgent connection. */
static int get_once(struct imgd_src *s, int32_t pid, uint64_t off, uint32_t n, uint8_t *buf)
{
	uint32_t req = ++s->next_req, got = 0;
	uint64_t deadline = mono_ms() + s->timeout_ms;
	int rc = send_get(s->ufd, s->uscratch, req, LW_CLASS__LW_CLASS_URGENT, pid, off, n,
			  s->timeout_ms);

	while (!rc && got < n) {
		struct wire_hdr h;
		ProtobufCMessage *m;
		const char *why;
		rc = wire_recv(s->ufd, s->uscratch, &h, &m, s->upay, WIRE_MAX_PAYLOAD, deadline,
			       &why);
		if (rc) {
			pr_warn("image server: %s", rc == -EPROTO ? why : strerror(-rc));
			return rc == -EPROTO ? -EPIPE : rc;
		}
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
			else
				rc = unpack_pages(s, p, s->upay, buf + (size_t)got * WIRE_PAGE);
			if (!rc)
				got += p->nr_pages;
		}
		wire_free(m);
	}
	return rc;
}

static void drop_urgent(struct imgd_src *s)
{
	wire_sock_close(s->ufd);
	s->ufd = -1;
}

static int imgd_read(struct page_source *ps, const struct img_task *t, uint64_t off, void *buf,
		     size_t len)
{
	struct imgd_src *s = ps->priv;
	int rc = -EIO;

	if (len % WIRE_PAGE || off % WIRE_PAGE || !len)
		return -EINVAL;
	for (size_t done = 0; done < len;) {
		uint32_t n = (uint32_t)((len - done) / WIRE_PAGE);
		if (n > WIRE_MAX_GET_PAGES)
			n = WIRE_MAX_GET_PAGES;
		for (unsigned attempt = 0; attempt <= s->retries; attempt++) {
			if (attempt)
				sleep_ms(backoff(attempt - 1));
			if (s->ufd < 0) {
				s->ufd = connect_class(s, LW_CLASS__LW_CLASS_URGENT, s->uscratch);
				if (s->ufd < 0) {
					rc = s->ufd;
					if (fatal(rc))
						return rc;
					continue;
				}
				if (attempt)
					s->reconnects++;
			}
			rc = get_once(s, t->pid, off + done, n, (uint8_t *)buf + done);
			if (!rc)
				break;
			/* Anything else leaves the stream in an unknown state: start afresh. */
			drop_urgent(s);
			if (rc == -ERANGE || rc == -ENOENT || rc == -EACCES)
				return rc;
			if (rc == -EBADMSG && attempt == s->retries)
				return rc;
		}
		if (rc)
			return rc == -EBADMSG ? rc : -EIO;
		done += (size_t)n * WIRE_PAGE;
	}
	return 0;
}

/* ---- the bulk path ---- */

static void drop_bulk(struct imgd_src *s)
{
	wire_sock_close(s->bfd);
	s->bfd = -1;
	s->brx = (struct bulk_rx){0};
}

static int submit(struct imgd_src *s, struct pf_req *r)
{
	r->req = ++s->next_req;
	return send_get(s->bfd, s->btx, r->req, LW_CLASS__LW_CLASS_BULK, r->t->pid,
			r->off + (uint64_t)r->got * WIRE_PAGE, r->n - r->got, s->timeout_ms);
}

/* (Re)connect the bulk path and send every request in flight again. */
static int bulk_up(struct imgd_src *s)
{
	for (unsigned attempt = 0; s->bfd < 0; attempt++) {
		if (attempt > s->retries)
			return -EIO;
		if (attempt)
			sleep_ms(backoff(attempt - 1));
		s->bfd = connect_class(s, LW_CLASS__LW_CLASS_BULK, s->bscratch);
		if (s->bfd < 0) {
			int rc = s->bfd;
			s->bfd = -1;
			if (fatal(rc))
				return rc;
			continue;
		}
		for (unsigned i = 0; i < s->npf; i++)
			if (submit(s, &s->pf[i])) {
				drop_bulk(s);
				break;
			}
		if (s->bfd >= 0 && s->npf)
			s->reconnects++;
	}
	return 0;
}

static int imgd_prefetch(struct page_source *ps, const struct img_task *t, uint64_t off, size_t len,
			 uint64_t tag)
{
	struct imgd_src *s = ps->priv;

	if (s->npf >= s->window)
		return -EBUSY;
	if (len % WIRE_PAGE || off % WIRE_PAGE || !len || len / WIRE_PAGE > WIRE_MAX_GET_PAGES)
		return -EINVAL;
	int rc = bulk_up(s);
	if (rc)
		return rc;
	struct pf_req *r = &s->pf[s->npf];
	*r = (struct pf_req){.tag = tag, .t = t, .off = off, .n = (uint32_t)(len / WIRE_PAGE)};
	s->npf++;
	if (submit(s, r))
		drop_bulk(s); /* sent again on the next collect */
	return 0;
}

static int imgd_poll_fd(struct page_source *ps)
{
	struct imgd_src *s = ps->priv;

	/* Bytes TLS has decrypted already make no poll event: the daemon must not sleep. */
	return wire_sock_pending(s->bfd) ? -1 : s->bfd;
}

static unsigned imgd_inflight(struct page_source *ps)
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
				const char *why;
				if (wire_hdr_get(s->bscratch, &x->h, &why)) {
					pr_warn("image server (bulk): %s", why);
					return -EPROTO;
				}
				x->hdr_ok = true;
			}
			continue;
		}
		ssize_t n = wire_sock_recv(s->bfd, dst, want - at);
		if (n > 0) {
			x->have += (size_t)n;
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
	const char *why;
	ProtobufCMessage *m = wire_unpack(h->type, s->bscratch + WIRE_HDR_SIZE, h->msg_len);
	unsigned idx;
	int rc = 0;

	*reset = true;
	if (!m || wire_check(h->type, m, h, &why)) {
		pr_warn("image server (bulk): bad %s frame: %s", wire_type_name(h->type),
			m ? why : "malformed message");
		wire_free(m);
		return 0;
	}
	if (h->type == WT_ERROR) {
		LwError *e = (LwError *)m;
		struct pf_req *r = e->has_req ? find_pf(s, e->req, &idx) : NULL;
		pr_err("image server (bulk): %s", e->text);
		rc = wire_err_errno(e->code);
		if (r && fatal(rc)) {
			*out = (struct src_chunk){.tag = r->tag, .t = r->t, .last = true};
			pf_remove(s, idx);
			*reset = false;
		} else {
			rc = 0;
		}
	} else if (h->type == WT_PAGES) {
		LwPages *p = (LwPages *)m;
		struct pf_req *r = find_pf(s, p->req, &idx);
		if (r && p->pid == r->t->pid && p->off == r->off + (uint64_t)r->got * WIRE_PAGE &&
		    p->nr_pages <= r->n - r->got && p->done == (r->got + p->nr_pages == r->n)) {
			if (unpack_pages(s, p, s->bpay, s->chunk)) {
				if (++r->fails > s->retries) {
					*out = (struct src_chunk){
					    .tag = r->tag, .t = r->t, .last = true};
					pf_remove(s, idx);
					rc = -EBADMSG;
				}
			} else {
				r->fails = 0;
				r->got += p->nr_pages;
				*out = (struct src_chunk){r->tag,   r->t,	 p->off,
							  s->chunk, p->nr_pages, r->got == r->n};
				if (r->got == r->n)
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

static int imgd_collect(struct page_source *ps, struct src_chunk *out)
{
	struct imgd_src *s = ps->priv;

	if (!s->npf)
		return 0;
	if (s->bfd < 0) {
		int rc = bulk_up(s);
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
		drop_bulk(s);
		return 0;
	}
	bool reset;
	rc = bulk_frame(s, out, &reset);
	s->brx = (struct bulk_rx){0};
	if (reset && rc <= 0)
		drop_bulk(s); /* a frame we cannot place: resend everything on a new stream */
	return rc;
}

/* ---- index, setup ---- */

static int imgd_load_index(struct page_source *ps, struct img_set *set, char *err, size_t errlen)
{
	struct imgd_src *s = ps->priv;

	for (unsigned attempt = 0;; attempt++) {
		if (s->ufd < 0)
			s->ufd = connect_class(s, LW_CLASS__LW_CLASS_URGENT, s->uscratch);
		if (s->ufd >= 0 && !wire_client_index(s->ufd, s->uscratch, s->timeout_ms,
						      s->info.nr_tasks, set, err, errlen)) {
			pr_info("image server %s:%s: image '%s': %zu tasks, %lu data pages, %s "
				"checksums",
				s->cl.host, s->cl.port, s->cl.image ? s->cl.image : "default",
				set->nr_tasks, (unsigned long)s->info.lazy_pages,
				s->info.dump_checksums ? "dump-time" : "serve-time");
			return 0;
		}
		int rc = s->ufd;
		drop_urgent(s);
		if (rc >= 0 || fatal(rc) || attempt >= s->retries) {
			if (rc < 0)
				snprintf(err, errlen, "cannot reach image server %s:%s (%s)",
					 s->cl.host, s->cl.port, strerror(-rc));
			return -1;
		}
		sleep_ms(backoff(attempt));
	}
}

static void imgd_close(struct page_source *ps)
{
	struct imgd_src *s = ps->priv;

	if (!s)
		return;
	if (s->reconnects || s->bad_sums)
		pr_info("image server: %lu reconnects, %lu pages failed their checksum",
			(unsigned long)s->reconnects, (unsigned long)s->bad_sums);
	LwClose c = LW_CLOSE__INIT;
	if (s->ufd >= 0)
		wire_send(s->ufd, s->uscratch, WT_CLOSE, &c.base, NULL, 0, mono_ms() + 100);
	drop_urgent(s);
	drop_bulk(s);
	free(s->uscratch);
	free(s->bscratch);
	free(s->btx);
	free(s->upay);
	free(s->bpay);
	free(s->chunk);
	explicit_bzero(&s->key, sizeof(s->key));
	free(s);
	ps->priv = NULL;
}

static const struct page_source_ops imgd_ops = {
    .name = "image-server",
    .read = imgd_read,
    .close = imgd_close,
    .load_index = imgd_load_index,
    .prefetch = imgd_prefetch,
    .poll_fd = imgd_poll_fd,
    .collect = imgd_collect,
    .inflight = imgd_inflight,
};

int page_source_imgd(struct page_source *ps, const struct imgd_source_cfg *cfg, char *err,
		     size_t errlen)
{
	struct imgd_src *s = calloc(1, sizeof(*s));
	static const uint8_t zero_page[WIRE_PAGE];

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->ufd = s->bfd = -1;
	ps->ops = &imgd_ops;
	ps->priv = s;
	if (wire_client_parse(&s->cl, cfg->server)) {
		snprintf(err, errlen, "bad --image-server '%s' (HOST:PORT)", cfg->server);
		return -1;
	}
	if (cfg->image && !image_id_ok(cfg->image)) {
		snprintf(err, errlen, "bad --image '%s' (" IMAGE_ID_RULE ")", cfg->image);
		return -1;
	}
	s->cl.image = cfg->image;
	if (cfg->tls) {
		if (wire_tls_cfg_check(cfg->tls, false, err, errlen))
			return -1;
		s->tls = *cfg->tls;
		s->cl.tls = &s->tls;
	}
	s->cl.timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
	s->timeout_ms = s->cl.timeout_ms;
	s->retries = cfg->retries;
	s->window = cfg->window ? cfg->window : 8;
	if (s->window > MAX_WINDOW)
		s->window = MAX_WINDOW;
	/* Mutual authentication, always: without our key no server can prove anything. */
	if (!cfg->key_file) {
		snprintf(err, errlen,
			 "--image-server needs --auth-key FILE: criu-imgd always asks for a key, "
			 "and without one the server cannot be told from an impostor");
		return -1;
	}
	if (wire_key_load(cfg->key_file, &s->key, err, errlen))
		return -1;
	s->cl.key = &s->key;
	s->uscratch = malloc(WIRE_SCRATCH);
	s->bscratch = malloc(WIRE_SCRATCH);
	s->btx = malloc(WIRE_SCRATCH);
	s->upay = malloc(WIRE_MAX_PAYLOAD);
	s->bpay = malloc(WIRE_MAX_PAYLOAD);
	s->chunk = malloc(WIRE_MAX_PAYLOAD);
	if (!s->uscratch || !s->bscratch || !s->btx || !s->upay || !s->bpay || !s->chunk) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->zero_sum = wire_page_sum(zero_page);
	err[0] = 0;
	return 0;
}

/*
 * GET requests: checked against the image's lazy data when they arrive,
 * queued (urgent ones are served first), answered one PAGES frame at a time so
 * that an urgent request never waits behind more than one frame. Urgent and
 * compressed frames are of IMGD_CHUNK_PAGES pages at most; a bulk frame is as
 * many pages as take about FRAME_BUDGET_NS of the loop to read and hash
 * (frame_pages), within IMGD_FRAME_MIN..IMGD_FRAME_MAX. Zero pages are marked,
 * not sent; every page carries its checksum, verified against the dump-time index when there is one.
 * The first read of a page checks and hashes it; the image's sum cache
 * (sumcache.h) keeps the result, and a later session that sends the page from
 * the file does not read it at all.
 */
#include "handlers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "compress.h"
#include "sums.h"
#include "util/clock.h"
#include "util/log.h"

/* Is [off, off + n pages) lazy data of the task (one merged run)? */
static bool in_data(const struct imgd_image *img, size_t ti, uint64_t off, uint32_t n)
{
	const struct imgd_dext *v = img->dext[ti];
	size_t lo = 0, hi = img->ndext[ti];
	uint64_t end = off + (uint64_t)n * WIRE_PAGE;

	while (lo < hi) { /* first run with off > the request's */
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && v[lo - 1].end >= end;
}

int pages_queue_get(struct imgd_session *s, const LwGet *g)
{
	const struct imgd_image *img = s->img;

	if (s->nq >= WIRE_MAX_INFLIGHT)
		return session_fail(s, LW_ERR__LW_E_LIMIT, g->req, "more than %u GETs in flight",
				    WIRE_MAX_INFLIGHT);
	struct imgd_req *r = &s->q[s->nq];
	for (size_t i = 0; i < g->n_ranges; i++) {
		const LwRange *x = g->ranges[i];
		size_t ti;
		if (!image_task(img, x->pid, &ti) || !img->set.tasks[ti].has_mm)
			return session_fail(s, LW_ERR__LW_E_RANGE, g->req,
					    "GET %u: no task %d in image %s", g->req, x->pid,
					    img->id);
		if (!in_data(img, ti, x->off, x->nr_pages))
			return session_fail(
			    s, LW_ERR__LW_E_RANGE, g->req,
			    "GET %u: pid %d offset 0x%llx +%u pages is not lazy data", g->req,
			    x->pid, (unsigned long long)x->off, x->nr_pages);
		r->r[i] = (struct imgd_range){x->pid, x->off, x->nr_pages};
	}
	r->id = g->req;
	r->urgent = g->prio == LW_CLASS__LW_CLASS_URGENT;
	r->nr = (uint8_t)g->n_ranges;
	r->cur = 0;
	r->done = 0;
	r->t_in = mono_ns();
	s->nq++;
	return 0;
}

static void drop_req(struct imgd_session *s, unsigned i)
{
	memmove(&s->q[i], &s->q[i + 1], (s->nq - i - 1) * sizeof(s->q[0]));
	s->nq--;
}

bool pages_has_urgent(const struct imgd_session *s)
{
	for (unsigned i = 0; i < s->nq; i++)
		if (s->q[i].urgent)
			return true;
	return false;
}

/*
 * Checksums of n pages in buf, checked against the dump-time index when there is one.
 * 0; -EIO: the index cannot be read; -EILSEQ: page *bad does not match it.
 */
static int page_sums(struct imgd_image *img, size_t ti, uint64_t off, uint32_t n,
		     const uint8_t *buf, uint64_t *sums, uint32_t *bad)
{
	uint64_t dump[IMGD_FRAME_MAX];
	int fd = img->sums_fd[ti];

	if (fd >= 0 && sums_read(fd, off / WIRE_PAGE, n, dump))
		return -EIO;
	for (uint32_t i = 0; i < n; i++) {
		sums[i] = wire_page_sum(buf + (size_t)i * WIRE_PAGE);
		if (fd >= 0 && sums[i] != dump[i]) {
			*bad = i;
			return -EILSEQ;
		}
	}
	return 0;
}

/* The zero pages of the n pages in buf, as a zero map (bit i of byte i / 8). */
static void zero_map(const uint8_t *buf, uint32_t n, uint8_t *zmap)
{
	memset(zmap, 0, (n + 7) / 8);
	for (uint32_t i = 0; i < n; i++)
		if (wire_page_is_zero(buf + (size_t)i * WIRE_PAGE))
			zmap[i / 8] |= (uint8_t)(1u << (i % 8));
}

/*
 * Take the zero pages of zmap out of the payload: either move the data pages of buf down
 * over them (pack), or describe the data pages as ranges of the pages file from off on (seg,
 * for a payload the kernel sends from the file; buf is not looked at). The payload length.
 */
static size_t pack_payload(uint8_t *buf, uint32_t n, const uint8_t *zmap, bool pack, uint64_t off,
			   struct conn_io_seg *seg, unsigned *nseg)
{
	size_t out = 0;

	*nseg = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (wire_zero_bit(zmap, i))
			continue;
		if (pack && out != (size_t)i * WIRE_PAGE)
			memmove(buf + out, buf + (size_t)i * WIRE_PAGE, WIRE_PAGE);
		uint64_t at = off + (uint64_t)i * WIRE_PAGE;
		if (!pack && *nseg && seg[*nseg - 1].off + seg[*nseg - 1].len == at)
			seg[*nseg - 1].len += WIRE_PAGE;
		else if (!pack)
			seg[(*nseg)++] = (struct conn_io_seg){at, WIRE_PAGE};
		out += WIRE_PAGE;
	}
	return out;
}

/*
 * A bulk frame's loop time, read and hash (its send comes on top). On this project's host
 * frames grow to 64 pages (fewer frames, fewer jobs for the client: a 1 GB restore on
 * loopback 15% faster than with 32); in the emulated qemu guest they stay at 16, and a
 * fault's GET that arrives while one is made waits less (the fork benchmark's stall p99:
 * 9.5 ms against 14.1 with frames of 32). Smoothed over frames, for the whole server.
 */
#define FRAME_BUDGET_NS 100000u

static uint32_t frame_pages(const struct imgd *d)
{
	if (!d->frame_ns_page)
		return IMGD_CHUNK_PAGES;
	uint64_t n = FRAME_BUDGET_NS / d->frame_ns_page;
	return n < IMGD_FRAME_MIN   ? IMGD_FRAME_MIN
	       : n > IMGD_FRAME_MAX ? IMGD_FRAME_MAX
				    : (uint32_t)n;
}

static void frame_timed(struct imgd *d, uint32_t n, uint64_t ns)
{
	uint64_t per = ns / n;

	d->frame_ns_page = d->frame_ns_page ? (7 * d->frame_ns_page + per) / 8 : per;
	if (!d->frame_ns_page)
		d->frame_ns_page = 1;
}

/* The request to serve next: the first urgent one, else the first; -ENOENT: none. */
static int pick(const struct imgd_session *s, bool urgent_only)
{
	for (unsigned i = 0; i < s->nq; i++)
		if (s->q[i].urgent)
			return (int)i;
	return s->nq && !urgent_only ? 0 : -ENOENT;
}

int pages_next_frame(struct imgd_session *s, bool urgent_only)
{
	int qi = pick(s, urgent_only);
	uint8_t *pay = session_pay(s);
	uint64_t sums[IMGD_FRAME_MAX];
	uint8_t zmap[(IMGD_FRAME_MAX + 7) / 8];
	uint32_t bad = 0;
	size_t ti;

	if (qi < 0)
		return 0;
	struct imgd_req *r = &s->q[qi];
	const struct imgd_range *g = &r->r[r->cur];
	const struct img_task *t = image_task(s->img, g->pid, &ti);
	uint64_t t0 = mono_ns();
	bool zip = compress_active(s);
	uint32_t cap = r->urgent || zip ? IMGD_CHUNK_PAGES : frame_pages(s->d);
	uint32_t n = g->nr_pages - r->done;
	if (n > cap)
		n = cap;
	uint64_t off = g->off + (uint64_t)r->done * WIRE_PAGE;
	/* A plain connection that does not compress now: the data pages go from the page
	 * cache, not from pay. Pages that an earlier read checked and hashed are not read
	 * again, unless they are sent from pay. Not on loopback: there a frame read into pay
	 * and sent in one sendmsg reached the client sooner than one sent by sendfile (a 1 GB
	 * restore: 875-910 ms against 990-1100, docs/benchmarks.md). */
	bool from_file = !zip && !s->img->st && session_sends_files(s) && !s->local;
	struct sumcache *sc = image_sumcache(&s->d->cat, s->img, ti);
	bool known = sc && sumcache_get(sc, off / WIRE_PAGE, n, sums, zmap);
	/* The pages file and the index are told apart: any errno of pread is an I/O error. */
	struct errmsg e;
	int rc = known && from_file
		     ? 0
		     : image_read(&s->d->cat, s->img, ti, off, (size_t)n * WIRE_PAGE, pay, &e);
	bool store_damaged = rc == -EILSEQ;
	bool damaged = false;
	if (!rc && !known) {
		rc = page_sums(s->img, ti, off, n, pay, sums, &bad);
		damaged = rc == -EILSEQ;
	} else if (rc) {
		pr_err("image %s: %s", s->img->id, e.msg);
	}
	if (rc) {
		uint32_t id = r->id;
		drop_req(s, (unsigned)qi); /* r and g now name the next request: t->pid below */
		if (damaged) {
			s->d->checksum_failures++;
			pr_err("image %s: pid %d: page at pages offset 0x%llx does not match its "
			       "dump-time checksum: the image is damaged",
			       s->img->id, t->pid, (unsigned long long)(off + bad * WIRE_PAGE));
			session_fail(s, LW_ERR__LW_E_CHECKSUM, id,
				     "pid %d: page at offset 0x%llx is damaged in the image",
				     t->pid, (unsigned long long)(off + bad * WIRE_PAGE));
		} else if (store_damaged) {
			s->d->checksum_failures++;
			session_fail(s, LW_ERR__LW_E_CHECKSUM, id,
				     "pid %d: offset 0x%llx: the store's copy is damaged", t->pid,
				     (unsigned long long)off);
		} else {
			session_fail(s, LW_ERR__LW_E_IO, id,
				     "pid %d: cannot read offset 0x%llx: %s", t->pid,
				     (unsigned long long)off, strerror(-rc));
		}
		return 1;
	}
	if (!known) {
		zero_map(pay, n, zmap);
		if (sc)
			sumcache_put(sc, off / WIRE_PAGE, n, sums, zmap);
	}
	/* On loopback a page's bytes cost less than what a frame with zero pages taken out
	 * costs the client: it expands the frame into a buffer of its own, where a frame of
	 * data pages only is checked and installed where it was received. */
	if (s->local)
		memset(zmap, 0, sizeof(zmap));
	struct conn_io_seg seg[IMGD_FRAME_MAX];
	unsigned nseg;
	size_t plen = pack_payload(pay, n, zmap, !from_file, off, seg, &nseg);
	LwPages m = LW_PAGES__INIT;
	m.req = r->id;
	m.pid = g->pid;
	m.off = off;
	m.nr_pages = n;
	m.zero.data = zmap;
	m.zero.len = (n + 7) / 8;
	m.n_sums = n;
	m.sums = sums;
	r->done += n;
	if (r->done == g->nr_pages) {
		r->done = 0;
		r->cur++;
	}
	m.done = r->cur == r->nr;
	int len = from_file ? session_reply_file(s, WT_PAGES, &m.base, t->pages_fd, seg, nseg)
			    : session_reply(s, WT_PAGES, &m.base,
					    zip ? compress_pages(s, &m, plen) : plen);
	if (len < 0)
		return session_fail(s, LW_ERR__LW_E_IO, -1, "cannot encode a PAGES frame");
	s->work.pages += n;
	s->work.frames++;
	s->work.zero_pages += n - plen / WIRE_PAGE;
	if (!r->urgent && !zip)
		frame_timed(s->d, n, mono_ns() - t0);
	if (m.done) {
		imgd_hist_add(&s->d->get_time[r->urgent ? 0 : 1],
			      (double)(mono_ns() - r->t_in) / 1e9);
		drop_req(s, (unsigned)qi);
	}
	return 1;
}

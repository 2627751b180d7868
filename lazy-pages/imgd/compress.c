/*
 * PAGES compression (compress.h; the rule: docs/protocol.md, "Compression"). The sender
 * decides, per connection. A client that asked for on gets every chunk that shrinks. In auto
 * mode the connection compresses while that makes it faster: in windows of at least
 * AUTO_WINDOW_NS it measures how long its frames waited for the socket, the rate the socket
 * took bytes at while it was the limit, and (compressing) what compression cost and saved.
 *   off -> on:  the socket was the limit for more than half of the window, and the next probe
 *               is due (at once the first time);
 *   on -> off:  compress time * 3/2 (the receiver's decompression: half of it) is not below
 *               the time the link would take for the bytes it saved; the next probe is due
 *               after a backoff (1 s, doubling to 16 s while probes fail).
 * A chunk that does not shrink is sent raw (it counts as compressed to itself).
 */
#include "compress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "util/clock.h"
#include "util/log.h"

#define AUTO_WINDOW_NS 50000000ull	/* 50 ms */
#define AUTO_BACKOFF_MIN 1000000000ull	/* 1 s */
#define AUTO_BACKOFF_MAX 16000000000ull /* 16 s */

void compress_free(struct imgd *d)
{
	wire_zstd_free(&d->zstd);
	free(d->zbuf);
	d->zbuf = NULL;
}

LwCodec compress_hello(struct imgd_session *s, const LwHello *h)
{
	struct imgd_zs *z = &s->z;

	*z = (struct imgd_zs){.codec = LW_CODEC__LW_CODEC_NONE, .backoff = AUTO_BACKOFF_MIN};
	if (!s->d->o->compress || !h->has_codecs || !(h->codecs & (1u << LW_CODEC__LW_CODEC_ZSTD)))
		return z->codec;
	z->codec = LW_CODEC__LW_CODEC_ZSTD;
	z->always = h->has_compress && h->compress == LW_COMPRESS__LW_COMPRESS_ON;
	return z->codec;
}

static void window_start(struct imgd_session *s, uint64_t now)
{
	s->z.w = (struct imgd_zwin){
	    .t0 = now, .blocked0 = conn_io_blocked_ns(&s->io, now), .bytes0 = s->work.bytes};
}

/* At the end of a window: does compressing pay on this connection now (auto mode)? */
static void auto_decide(struct imgd_session *s, uint64_t now)
{
	struct imgd_zs *z = &s->z;
	const struct imgd_zwin *w = &z->w;
	uint64_t dt = now - w->t0;

	if (!w->t0) {
		window_start(s, now);
		return;
	}
	if (dt < AUTO_WINDOW_NS)
		return;
	uint64_t blocked = conn_io_blocked_ns(&s->io, now) - w->blocked0;
	double rate = (double)(s->work.bytes - w->bytes0) / (double)dt;
	bool link_bound = blocked * 2 > dt;
	if (link_bound) /* what the link takes when it is the limit */
		z->link_rate = z->link_rate ? (z->link_rate + rate) / 2 : rate;
	if (z->on) {
		/* Compressing may have made the CPU the limit: the link takes at least as much
		 * as it did while it was. */
		double link = rate > z->link_rate ? rate : z->link_rate;
		double saved_ns = link > 0 ? (double)(w->raw - w->out) / link : 0;
		bool pays = w->raw && (double)w->cost_ns * 1.5 < saved_ns;
		if (pays) {
			z->backoff = AUTO_BACKOFF_MIN;
		} else {
			z->on = false;
			z->next_probe = now + z->backoff;
			pr_debug("session %lu: compression off for %.1f s (%.1f ms to compress, "
				 "saves %.1f ms of link)",
				 (unsigned long)s->id, (double)z->backoff / 1e9,
				 (double)w->cost_ns / 1e6, saved_ns / 1e6);
			z->backoff =
			    z->backoff * 2 > AUTO_BACKOFF_MAX ? AUTO_BACKOFF_MAX : z->backoff * 2;
		}
	} else if (link_bound && now >= z->next_probe) {
		z->on = true;
		z->probes++;
		pr_debug("session %lu: the link is the limit (%.0f MB/s): compressing",
			 (unsigned long)s->id, rate * 1e3);
	}
	window_start(s, now);
}

size_t compress_pages(struct imgd_session *s, LwPages *m, size_t plen)
{
	struct imgd_zs *z = &s->z;
	struct imgd *d = s->d;
	uint64_t t0 = 0;

	if (z->codec != LW_CODEC__LW_CODEC_ZSTD || !plen)
		return plen;
	if (!z->always) {
		t0 = mono_ns();
		auto_decide(s, t0);
		if (!z->on)
			return plen;
	}
	if (!d->zbuf && !(d->zbuf = malloc(CONN_IO_PAY_CAP)))
		return plen;
	uint8_t *pay = session_pay(s);
	ssize_t n = wire_zstd_pack(&d->zstd, pay, plen, d->zbuf, plen);
	size_t out = n > 0 ? (size_t)n : plen;
	if (!z->always) {
		z->w.raw += plen;
		z->w.out += out;
		z->w.cost_ns += mono_ns() - t0;
	}
	z->raw += plen;
	z->out += out;
	if (n <= 0)
		return plen; /* does not shrink (or no memory): raw */
	memcpy(pay, d->zbuf, out);
	m->has_codec = m->has_raw_len = true;
	m->codec = LW_CODEC__LW_CODEC_ZSTD;
	m->raw_len = (uint32_t)plen;
	z->frames++;
	return out;
}

void compress_describe(const struct imgd_session *s, char *buf, size_t len)
{
	const struct imgd_zs *z = &s->z;

	if (!len)
		return;
	buf[0] = '\0';
	if (z->raw)
		snprintf(buf, len, ", zstd %s: %lu frames, %lu of %lu bytes%s",
			 z->always ? "on" : "auto", (unsigned long)z->frames, (unsigned long)z->out,
			 (unsigned long)z->raw, z->always ? "" : " tried");
}

/*
 * PAGES compression (compress.h; the rule: docs/protocol.md, "Compression"). The sender
 * decides, per connection. A client that asked for on gets every chunk that shrinks. In auto
 * mode the connection compresses while that delivers the pages faster: in windows of at least
 * AUTO_WINDOW_NS it measures how long its frames waited for the socket and the rate the socket
 * took them at, and while compressing the page data it delivered.
 *   off -> on:  the socket was the limit for more than half of two windows in a row (their
 *               rate, raw, is what the link delivers), and the next probe is due (at once the
 *               first time);
 *   on -> off:  in a window that compressed, the data did not shrink by AUTO_GAIN (then
 *               compressing cannot deliver more, whatever the window waited for); in one that
 *               did not wait for the socket and spent more than half of its time compressing
 *               (our CPU the limit), it delivered no more than AUTO_GAIN times that raw rate
 *               of page data. The next probe is due after a backoff (1 s, doubling to 16 s
 *               while probes fail).
 *   blind:      a client that keeps its own queue short (criu-lazyd's delay-based window)
 *               never fills the socket: a busy window (AUTO_BLIND_MIN bytes or more) that
 *               did not wait is followed, when the next probe is due, by two windows of
 *               compressing; it stays on if the second delivered AUTO_GAIN times the raw page
 *               data of the one before the probe (the client, its queue shorter, asked for
 *               more) and the data shrank by AUTO_GAIN, else off with the same backoff.
 *   loopback:   never on (the client is on this host: no link to spare, only CPU).
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
#define AUTO_GAIN 1.1			/* compressing must deliver 10% more page data than raw */
#define AUTO_BLIND_MIN (256u << 10)	/* a window this busy, raw, may start a blind probe */

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

/* A probe did not pay: off, and the next one after the backoff, which doubles. */
static void probe_failed(struct imgd_zs *z, uint64_t now)
{
	z->on = false;
	z->next_probe = now + z->backoff;
	z->backoff = z->backoff * 2 > AUTO_BACKOFF_MAX ? AUTO_BACKOFF_MAX : z->backoff * 2;
}

/* Whether what window w compressed shrank by AUTO_GAIN (false when it compressed nothing). */
static bool shrank(const struct imgd_zwin *w)
{
	return (double)w->out * AUTO_GAIN < (double)w->raw;
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
	pr_debug("session %lu: window %.1f ms, %.1f ms waiting for the socket, %.0f MB/s, "
		 "%u GETs queued%s",
		 (unsigned long)s->id, (double)dt / 1e6, (double)blocked / 1e6, rate * 1e3, s->nq,
		 z->on ? ", compressing" : "");
	if (!z->on) {
		/* What the connection delivers raw while the socket is the limit: the average
		 * of the last two such windows (the first ones fill the socket's buffers). */
		if (link_bound) {
			z->link_rate = z->bound ? (z->last_rate + rate) / 2 : rate;
			z->last_rate = rate;
			z->bound++;
		} else {
			z->bound = 0;
		}
	}
	if (z->on && z->blind) {
		/* The first window lets the client's window adapt; the second decides. */
		double got = (double)w->raw / (double)dt;
		if (++z->blind_windows < 2) {
			window_start(s, now);
			return;
		}
		z->blind = false;
		if (got > z->blind_rate * AUTO_GAIN && shrank(w)) {
			z->link_rate = z->blind_rate;
			z->backoff = AUTO_BACKOFF_MIN;
			pr_debug(
			    "session %lu: compressing delivers %.0f MB/s of pages, raw %.0f: on",
			    (unsigned long)s->id, got * 1e3, z->blind_rate * 1e3);
		} else {
			pr_debug(
			    "session %lu: compressing delivers %.0f MB/s of pages, raw %.0f: off "
			    "for %.1f s",
			    (unsigned long)s->id, got * 1e3, z->blind_rate * 1e3,
			    (double)z->backoff / 1e9);
			probe_failed(z, now);
		}
	} else if (z->on) {
		/* Still waiting for the socket: the link is the limit, compressing helps while
		 * it shrinks the data. Else, when compressing took most of the window (our CPU
		 * is the limit), it must deliver more page data than the link did raw; a window
		 * that neither waited nor compressed much (the client asked for little) says
		 * nothing. */
		double got = (double)w->raw / (double)dt;
		bool cpu_bound = w->cost_ns * 2 > dt;
		bool pays;
		if (w->raw && !shrank(w)) /* data that does not shrink: never worth the CPU */
			pays = false;
		else if (link_bound)
			pays = shrank(w);
		else
			pays = !cpu_bound || got > z->link_rate * AUTO_GAIN;
		if (pays) {
			z->backoff = AUTO_BACKOFF_MIN;
		} else {
			pr_debug("session %lu: compression off for %.1f s (%.0f MB/s of pages "
				 "compressed, %.0f MB/s raw; %.1f ms of %.1f compressing)",
				 (unsigned long)s->id, (double)z->backoff / 1e9, got * 1e3,
				 z->link_rate * 1e3, (double)w->cost_ns / 1e6, (double)dt / 1e6);
			probe_failed(z, now);
		}
	} else if (z->bound >= 2 && now >= z->next_probe) {
		z->on = true;
		z->probes++;
		pr_debug("session %lu: the link is the limit (%.0f MB/s): compressing",
			 (unsigned long)s->id, z->link_rate * 1e3);
	} else if (!z->bound && now >= z->next_probe &&
		   s->work.bytes - w->bytes0 >= AUTO_BLIND_MIN) {
		z->on = z->blind = true;
		z->blind_windows = 0;
		z->blind_rate = rate;
		z->probes++;
		pr_debug("session %lu: %.0f MB/s, the socket never full: trying compression",
			 (unsigned long)s->id, rate * 1e3);
	}
	window_start(s, now);
}

bool compress_active(struct imgd_session *s)
{
	struct imgd_zs *z = &s->z;

	if (z->codec != LW_CODEC__LW_CODEC_ZSTD)
		return false;
	if (z->always)
		return true;
	if (s->local) /* no link to spare: the CPU is the limit on loopback */
		return false;
	auto_decide(s, mono_ns());
	return z->on;
}

size_t compress_pages(struct imgd_session *s, LwPages *m, size_t plen)
{
	struct imgd_zs *z = &s->z;
	struct imgd *d = s->d;
	uint64_t t0 = mono_ns();

	if (z->codec != LW_CODEC__LW_CODEC_ZSTD || !plen)
		return plen;
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

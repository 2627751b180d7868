/* The stream's window in bytes (window.h): rate x round trip, both measured on its reads. */
#include "window.h"

#define NS 1000000000ull
#define RTT_KEEP_NS (10 * NS) /* a minimum round trip older than this is measured again */
#define RATE_KEEP_MIN_NS (NS / 10)
#define RATE_KEEP_ROUNDS 10 /* a maximum rate older than this many round trips: again */
#define STARTUP_ROUNDS 3    /* rounds without 25% more rate that end the startup */

/* The gain in quarters: startup, one round of drain, then the probing cycle. */
#define GAIN_STARTUP 8
#define GAIN_DRAIN 2
static const unsigned probe_gain[] = {5, 3, 4, 4, 4, 4, 4, 4};
#define PROBE_PHASES (sizeof(probe_gain) / sizeof(probe_gain[0]))

void sw_init(struct stream_window *w)
{
	*w = (struct stream_window){.startup = true};
}

static unsigned gain(const struct stream_window *w)
{
	if (w->startup)
		return GAIN_STARTUP;
	if (!w->phase)
		return GAIN_DRAIN;
	return probe_gain[(w->phase - 1) % PROBE_PHASES];
}

/* The path's bandwidth-delay product as measured (rate and rtt capped: no overflow). */
static uint64_t bdp(const struct stream_window *w)
{
	uint64_t rate = w->rate > SW_MAX * 16 ? SW_MAX * 16 : w->rate;
	uint64_t rtt = w->rtt > 16 * NS ? 16 * NS : w->rtt;

	return (uint64_t)((unsigned __int128)rate * rtt / NS);
}

/* A read: a quarter of the path's product, so that four are out at a time. */
static uint64_t read_size(const struct stream_window *w)
{
	uint64_t n = w->rate && w->rtt ? bdp(w) * gain(w) / 16 : 0;

	if (n < SW_MIN_READ)
		n = SW_MIN_READ;
	return n > SW_MAX_READ ? SW_MAX_READ : n & ~4095ull;
}

/*
 * The path's product times the gain: its round trip, measured from a read's ask to its
 * last byte, holds one read's time on the link, so that the bytes of the read being sent
 * are counted (they leave the window chunk by chunk as they come).
 */
uint64_t sw_window(const struct stream_window *w)
{
	if (!w->rate || !w->rtt)
		return SW_INITIAL;
	uint64_t win = bdp(w) * gain(w) / 4;

	if (win < 2 * SW_MIN_READ)
		win = 2 * SW_MIN_READ;

	return win > SW_MAX ? SW_MAX : win;
}

uint64_t sw_read_size(const struct stream_window *w, uint64_t max)
{
	uint64_t n = read_size(w);

	return n > max ? max : n;
}

void sw_sent(struct stream_window *w, struct sw_mark *m, uint64_t now, uint64_t bytes)
{
	*m = (struct sw_mark){.sent_ns = now,
			      .delivered_then = w->delivered,
			      .bytes = bytes,
			      .app_limited = w->app_limited != 0};
	w->inflight += bytes;
}

static void leave(struct stream_window *w, uint64_t bytes)
{
	w->inflight -= bytes < w->inflight ? bytes : w->inflight;
}

void sw_data(struct stream_window *w, struct sw_mark *m, uint64_t bytes)
{
	/* never more than was asked for leaves the window: a source that sends more is not
	 * trusted to shrink what other reads hold */
	uint64_t mine = m->got < m->bytes ? m->bytes - m->got : 0;

	leave(w, bytes < mine ? bytes : mine);
	m->got += bytes;
	w->delivered += bytes;
	if (w->app_limited && w->delivered >= w->app_limited)
		w->app_limited = 0;
}

/* A round trip has passed since the last round: the gain's next phase. */
static void next_round(struct stream_window *w, const struct sw_mark *m, uint64_t now)
{
	w->round_ns = now;
	if (!w->startup) {
		w->phase++;
		if (w->phase > PROBE_PHASES)
			w->phase = 1;
		return;
	}
	if (m->app_limited)
		return; /* the stream did not ask for all it could: says nothing of the path */
	if (w->rate >= w->round_rate + w->round_rate / 4) {
		w->round_rate = w->rate;
		w->flat_rounds = 0;
	} else if (++w->flat_rounds >= STARTUP_ROUNDS) {
		w->startup = false;
		w->phase = 0;
	}
}

void sw_done(struct stream_window *w, struct sw_mark *m, uint64_t now)
{
	if (m->got < m->bytes)
		leave(w, m->bytes - m->got);
	if (!m->got || now <= m->sent_ns)
		return; /* failed, or no time passed: nothing measured */
	uint64_t el = now - m->sent_ns;
	uint64_t rate = (uint64_t)((unsigned __int128)(w->delivered - m->delivered_then) * NS / el);
	uint64_t keep = w->rtt * RATE_KEEP_ROUNDS;

	if (keep < RATE_KEEP_MIN_NS)
		keep = RATE_KEEP_MIN_NS;
	w->samples++;
	if (!w->rtt || el <= w->rtt || now - w->rtt_ns > RTT_KEEP_NS) {
		w->rtt = el;
		w->rtt_ns = now;
	}
	/* An application-limited sample may raise the rate, never lower it. */
	if (rate >= w->rate || (!m->app_limited && now - w->rate_ns > keep)) {
		w->rate = rate;
		w->rate_ns = now;
	}
	if (now - w->round_ns >= w->rtt)
		next_round(w, m, now);
	/* A phase below 1 only drains what the phase before queued: it ends when that is
	 * gone, before the path runs dry. */
	else if (!w->startup && gain(w) < 4 && w->inflight <= bdp(w))
		next_round(w, m, now);
}

void sw_idle(struct stream_window *w)
{
	uint64_t until = w->delivered + w->inflight;

	w->app_limited = until ? until : 1;
}

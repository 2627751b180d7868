/* The stream's window in bytes (window.h): grown and shrunk on the delay of its reads. */
#include "window.h"

#define NS 1000000000ull
#define BASE_BUCKET_NS (5 * NS) /* the least delay is kept over two such buckets */
#define TARGET_MIN_NS 300000ull /* the queue target: 0.3 ms ... */
#define TARGET_RTT_DIV 16	/* ... and this part of the round trip */
#define STEP_DIV 4		/* a round trip of reads moves the window by a quarter at most */
#define PACE_NUM 5		/* paced at the window's rate times 5/4 */
#define PACE_DEN 4
#define RATE_IVAL_NS (NS / 10)

void sw_init(struct stream_window *w)
{
	*w = (struct stream_window){.win = SW_INITIAL, .slow_start = true};
}

void sw_local(struct stream_window *w, bool local)
{
	w->local = local;
}

uint64_t sw_window(const struct stream_window *w)
{
	return w->local ? SW_LOCAL : w->win;
}

uint64_t sw_target(const struct stream_window *w)
{
	return TARGET_MIN_NS + w->base / TARGET_RTT_DIV;
}

uint64_t sw_read_size(const struct stream_window *w, uint64_t max)
{
	uint64_t n = w->local ? SW_MAX_READ : w->win / SW_READS;

	if (n < SW_READ)
		n = SW_READ;
	if (n > SW_MAX_READ)
		n = SW_MAX_READ;
	n &= ~4095ull;
	return n > max ? max : n;
}

uint64_t sw_pace_wait(const struct stream_window *w, uint64_t now)
{
	return !w->local && w->pace_ns > now ? w->pace_ns - now : 0;
}

/* The time bytes take at the pacing rate, the window's (win per base) times 5/4. */
static uint64_t pace_time(const struct stream_window *w, uint64_t bytes)
{
	if (!w->base)
		return 0;
	return (uint64_t)((unsigned __int128)bytes * w->base * PACE_DEN /
			  ((unsigned __int128)w->win * PACE_NUM));
}

void sw_sent(struct stream_window *w, struct sw_mark *m, uint64_t now, uint64_t bytes)
{
	/* A burst of two reads is let through: a pause never banks more. */
	uint64_t slack = 2 * pace_time(w, sw_read_size(w, SW_MAX_READ));
	uint64_t from = now > slack && w->pace_ns < now - slack ? now - slack : w->pace_ns;

	w->pace_ns = from + pace_time(w, bytes);
	*m = (struct sw_mark){.sent_ns = now, .bytes = bytes, .app_limited = w->app_limited != 0};
	w->inflight += bytes;
}

static void leave(struct stream_window *w, uint64_t bytes)
{
	w->inflight -= bytes < w->inflight ? bytes : w->inflight;
}

void sw_data(struct stream_window *w, struct sw_mark *m, uint64_t bytes, uint64_t now)
{
	/* never more than was asked for leaves the window: a source that sends more is not
	 * trusted to shrink what other reads hold */
	uint64_t mine = m->got < m->bytes ? m->bytes - m->got : 0;

	leave(w, bytes < mine ? bytes : mine);
	m->got += bytes;
	w->delivered += bytes;
	if (w->app_limited && w->delivered >= w->app_limited)
		w->app_limited = 0;
	if (!w->rate_ns) {
		w->rate_ns = now;
		w->rate_delivered = w->delivered;
	} else if (now - w->rate_ns >= RATE_IVAL_NS) {
		uint64_t r = (uint64_t)((unsigned __int128)(w->delivered - w->rate_delivered) * NS /
					(now - w->rate_ns));
		w->rate = w->rate ? (3 * w->rate + r) / 4 : r;
		w->rate_ns = now;
		w->rate_delivered = w->delivered;
	}
}

/* The least delay of the last two buckets: a path that got longer is learnt within
 * 2 x BASE_BUCKET_NS, a queue that stands is not taken for the path. */
static void base_sample(struct stream_window *w, uint64_t el, uint64_t now)
{
	if (!w->base || el <= w->base) {
		w->base = el;
		w->base_ns = now;
	} else if (now - w->base_ns > 2 * BASE_BUCKET_NS) {
		w->base = el; /* the old least is gone: start again from this one */
		w->base_ns = now;
	}
}

void sw_done(struct stream_window *w, struct sw_mark *m, uint64_t now)
{
	if (m->got < m->bytes)
		leave(w, m->bytes - m->got);
	/* Failed, no time passed, or a short read (its time on the link is less than a full
	 * read's, which would read as less queue): nothing measured. */
	if (m->got < SW_READ || now <= m->sent_ns)
		return;
	uint64_t el = now - m->sent_ns;

	w->samples++;
	base_sample(w, el, now);
	w->qdelay = el - w->base;
	if (w->local)
		return;
	int64_t target = (int64_t)sw_target(w);
	int64_t off = target - (int64_t)w->qdelay;
	if (off < -target)
		off = -target;
	if (off > 0 && m->app_limited)
		return; /* the stream did not ask for all it could: no reason to grow */
	/* LEDBAT's step, proportional to how far the queue is off target, per byte that came:
	 * a window's worth of reads moves it by a quarter at most. From the start until the
	 * queue reaches half the target, it doubles a round trip instead (slow start). */
	if (w->slow_start && (int64_t)w->qdelay > target / 2)
		w->slow_start = false;
	int64_t step = w->slow_start
			   ? (int64_t)m->got
			   : (int64_t)((__int128)off * (int64_t)m->got / target / STEP_DIV);
	int64_t win = (int64_t)w->win + step;
	if (win < (int64_t)SW_MIN)
		win = (int64_t)SW_MIN;
	if (win > (int64_t)SW_MAX)
		win = (int64_t)SW_MAX;
	w->win = (uint64_t)win;
}

void sw_idle(struct stream_window *w)
{
	uint64_t until = w->delivered + w->inflight;

	w->app_limited = until ? until : 1;
}

/*
 * The stream's window in bytes (--prefetch-window auto): keep about one bandwidth-delay
 * product of background reads in flight, so that the stream fills the path without a queue
 * at its bottleneck, where every fault's answer would wait behind it. Both factors are
 * measured on the stream's own reads, as BBR measures them on packets: the delivery rate
 * (the bytes that came in while a read was out, over the time it was out; the recent
 * maximum) and the round trip (a read's ask to its last byte; the recent minimum). The
 * window is their product times a gain that probes for more rate now and then and drains
 * what the probe queued.
 */
#ifndef LAZYD_WINDOW_H
#define LAZYD_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#define SW_MIN_READ (64u << 10)	   /* the smallest read the window asks for */
#define SW_INITIAL (4 * SW_MIN_READ) /* before the first measurement */
#define SW_MAX_READ (512u << 10)   /* the largest */
#define SW_MAX (256ull << 20)	   /* bytes in flight at most */

struct stream_window {
	uint64_t inflight;    /* bytes asked for, not yet in */
	uint64_t delivered;   /* bytes in, since the start */
	uint64_t app_limited; /* != 0: the stream asked for less than it could until then */
	uint64_t rate;	      /* bytes per second: the recent maximum */
	uint64_t rate_ns;     /* when it was measured */
	uint64_t rtt;	      /* ns: the recent minimum */
	uint64_t rtt_ns;
	/* The gain: startup (x2 a round until the rate stops growing), one round of drain,
	 * then rounds of probing (1.25, 0.75, then 1 for six). */
	bool startup;
	unsigned flat_rounds, phase;
	uint64_t round_ns, round_rate;
	uint64_t samples; /* reads measured */
};

/* What the window notes about one read when it is asked for. */
struct sw_mark {
	uint64_t sent_ns, delivered_then, bytes, got;
	bool app_limited;
};

void sw_init(struct stream_window *w);
/* Bytes the stream may keep in flight now. */
uint64_t sw_window(const struct stream_window *w);
/* The size of the next read: a quarter of the path's product, at least SW_MIN_READ, at
 * most SW_MAX_READ and max. */
uint64_t sw_read_size(const struct stream_window *w, uint64_t max);
/* A read of bytes asked for at now. */
void sw_sent(struct stream_window *w, struct sw_mark *m, uint64_t now, uint64_t bytes);
/* bytes of read m came in. */
void sw_data(struct stream_window *w, struct sw_mark *m, uint64_t bytes);
/* Read m is over at now (complete, or failed: what did not come leaves the window). */
void sw_done(struct stream_window *w, struct sw_mark *m, uint64_t now);
/* The stream stops asking with room in the window (nothing to ask for, or a fault's read
 * is out): the samples of the reads out meanwhile do not lower the rate. */
void sw_idle(struct stream_window *w);

#endif

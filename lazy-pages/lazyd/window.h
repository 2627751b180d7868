/*
 * The stream's window in bytes (--prefetch-window auto): keep the background reads in flight
 * at what fills the path with a short queue at its bottleneck, where every fault's answer
 * waits behind them. The signal is the delay of the stream's own reads, as LEDBAT (RFC 6817)
 * uses it: a read's time from ask to last byte, over the least seen lately (the path's round
 * trip and the read's own time on the link), is the queue it met. The window grows while
 * that queue is under a target (0.3 ms and a sixteenth of the round trip) and shrinks above
 * it, by up to a quarter a round trip (from the start until the first queue, it doubles a
 * round trip). No rate is estimated: at this level (data taken in by a loop that shares the
 * CPU, a relay that releases it in bursts) rate samples ran 2-3x above the link; delays do
 * not. The reads are of one size, so that their own time on the link is the same in
 * every sample, and paced at the window's rate and a quarter, so that a window refilled at
 * once does not reach the bottleneck as one burst. None of this when the server is on this
 * host (sw_local).
 */
#ifndef LAZYD_WINDOW_H
#define LAZYD_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#define SW_READ (64u << 10)	 /* a read, while the window holds at most SW_READS of them */
#define SW_READS 48		 /* reads in flight (of the daemon's 64) */
#define SW_MAX_READ (512u << 10) /* a read at most */
#define SW_INITIAL (4 * SW_READ) /* the window before the first measurement */
#define SW_MIN (2 * SW_READ)	 /* at least */
#define SW_MAX (256ull << 20)	 /* at most */
#define SW_LOCAL (4ull << 20)	 /* the window when the server is on this host */

struct stream_window {
	uint64_t inflight;    /* bytes asked for, not yet in */
	uint64_t win;	      /* bytes the stream may keep in flight */
	uint64_t base;	      /* ns: the least delay of a read lately (its round trip) */
	uint64_t base_ns;     /* when it was seen */
	uint64_t qdelay;      /* ns: the last read's delay over base (its queue) */
	uint64_t delivered;   /* bytes in, since the start */
	uint64_t app_limited; /* != 0: the stream asked for less than it could until then */
	uint64_t pace_ns;     /* the next read may be asked for from then */
	uint64_t rate;	      /* bytes per second delivered, smoothed (for the operator) */
	uint64_t rate_ns, rate_delivered;
	uint64_t samples; /* reads measured */
	bool slow_start;  /* doubling a round trip, until the first queue */
	bool local;	  /* the server is on this host (sw_local) */
};

/* What the window notes about one read when it is asked for. */
struct sw_mark {
	uint64_t sent_ns, bytes, got;
	bool app_limited;
};

void sw_init(struct stream_window *w);
/* Whether the stream's server is on this host (loopback): then no link's queue is shared
 * with the faults' answers (criu-imgd serves those first, each connection has its own
 * socket buffers), and the reads' delay is the CPU's, which a smaller window does not
 * shorten: the window is SW_LOCAL, in reads of the most, unpaced. The delay is still
 * measured, and the delay window takes over again if the server changes. */
void sw_local(struct stream_window *w, bool local);
/* Bytes the stream may keep in flight now. */
uint64_t sw_window(const struct stream_window *w);
/* The size of the next read: SW_READ, more only when the window needs more than SW_READS
 * of them; at most max. */
uint64_t sw_read_size(const struct stream_window *w, uint64_t max);
/* ns until the next read may be asked for (0: now). */
uint64_t sw_pace_wait(const struct stream_window *w, uint64_t now);
/* The queueing delay target, ns: 0.3 ms and a sixteenth of the round trip. */
uint64_t sw_target(const struct stream_window *w);
/* A read of bytes asked for at now. */
void sw_sent(struct stream_window *w, struct sw_mark *m, uint64_t now, uint64_t bytes);
/* bytes of read m came in at now. */
void sw_data(struct stream_window *w, struct sw_mark *m, uint64_t bytes, uint64_t now);
/* Read m is over at now (complete, or failed: what did not come leaves the window). */
void sw_done(struct stream_window *w, struct sw_mark *m, uint64_t now);
/* The stream stops asking with room in the window (nothing to ask for; with a window of N
 * reads, a fault's read out): the window does not grow on the reads out meanwhile. */
void sw_idle(struct stream_window *w);

#endif

/*
 * The stream's window in bytes (lazy-pages/lazyd/window.c), driven by a model path: a
 * request takes RTT/2 to the server, the server sends reads one after another at the link's
 * rate, the data takes RTT/2 back, in chunks of 32 pages as criu-imgd's frames come. The window
 * must find the path's bandwidth-delay product: the link full, and almost nothing queued at the
 * server.
 */
#include <criterion/criterion.h>

#include "lazyd/window.h"

#define MS 1000000ull
#define MAXR 4096

struct path {
	uint64_t rate, rtt;   /* bytes/s, ns */
	uint64_t link_free;   /* ns: the link's last byte queued so far goes out then */
	uint64_t queued_ns;   /* sum over reads of the time they waited for the link */
	uint64_t sent, bytes; /* reads and bytes delivered */
	struct {
		struct sw_mark m;
		uint64_t start_ns; /* its first byte leaves the server */
	} r[MAXR];
	unsigned n;
};

#define CHUNK (128u << 10)

/* A read of bytes asked for at now: when its first byte leaves the server. */
static uint64_t path_read(struct path *p, uint64_t now, uint64_t bytes)
{
	uint64_t at_server = now + p->rtt / 2;
	uint64_t start = p->link_free > at_server ? p->link_free : at_server;

	p->queued_ns += start - at_server;
	p->link_free = start + bytes * 1000000000ull / p->rate;
	return start;
}

/* When chunk k's (from 0) last byte of the read that left the server at start is in. */
static uint64_t chunk_in(const struct path *p, uint64_t start, uint64_t bytes, unsigned k)
{
	uint64_t end = (uint64_t)(k + 1) * CHUNK;

	return start + (end < bytes ? end : bytes) * 1000000000ull / p->rate + p->rtt / 2;
}

/* The next chunk of the oldest read comes in: now moves there. */
static void deliver(struct path *p, struct stream_window *w, unsigned *head, unsigned *k,
		    uint64_t *now)
{
	struct sw_mark *m = &p->r[*head].m;
	uint64_t off = (uint64_t)*k * CHUNK;
	uint64_t n = m->bytes - off < CHUNK ? m->bytes - off : CHUNK;

	*now = chunk_in(p, p->r[*head].start_ns, m->bytes, *k);
	sw_data(w, m, n, *now);
	if (off + n < m->bytes) {
		(*k)++;
		return;
	}
	sw_done(w, m, *now);
	p->sent++;
	p->bytes += m->bytes;
	(*head)++;
	*k = 0;
}

/* Run the stream for dur ns from *now: keep the window full, deliver reads in order. */
static void run(struct path *p, struct stream_window *w, uint64_t *now, uint64_t dur)
{
	uint64_t end = *now + dur;
	unsigned head = 0, k = 0;

	p->n = 0;
	while (*now < end) {
		while (w->inflight < sw_window(w) && p->n < MAXR && !sw_pace_wait(w, *now)) {
			uint64_t b = sw_read_size(w, 512 << 10);
			sw_sent(w, &p->r[p->n].m, *now, b);
			p->r[p->n].start_ns = path_read(p, *now, b);
			p->n++;
		}
		/* paced, with room: the next read is due before the next chunk comes */
		uint64_t due = *now + sw_pace_wait(w, *now);
		if (w->inflight < sw_window(w) && due > *now &&
		    (head == p->n ||
		     due < chunk_in(p, p->r[head].start_ns, p->r[head].m.bytes, k))) {
			*now = due;
			continue;
		}
		cr_assert_lt(head, p->n, "nothing in flight");
		deliver(p, w, &head, &k, now);
		if (p->n == MAXR) { /* compact: what is still out moves to the front */
			memmove(p->r, p->r + head, (p->n - head) * sizeof(p->r[0]));
			p->n -= head;
			head = 0;
		}
	}
	/* what is left in flight arrives, so that the next run starts from a quiet path */
	while (head < p->n)
		deliver(p, w, &head, &k, now);
}

static void converges(uint64_t rate, uint64_t rtt)
{
	static struct path p;
	struct stream_window w;
	uint64_t now = 1000 * MS;
	uint64_t bdp = rate * rtt / 1000000000ull;

	memset(&p, 0, sizeof(p));
	p.rate = rate;
	p.rtt = rtt;
	sw_init(&w);
	run(&p, &w, &now, 500 * MS + 50 * rtt); /* from the initial window to the path's */
	p.queued_ns = p.sent = p.bytes = 0;
	uint64_t t0 = now;
	run(&p, &w, &now, 1000 * MS);
	double used = (double)p.bytes / ((double)(now - t0) / 1e9) / (double)rate;
	double queued_ms = (double)p.queued_ns / (double)p.sent / 1e6;

	cr_log_info("%lu B/s, rtt %.3f ms: link %.1f%% used, reads queue %.3f ms on average, "
		    "window %lu for a BDP of %lu",
		    (unsigned long)rate, rtt / 1e6, used * 100, queued_ms,
		    (unsigned long)sw_window(&w), (unsigned long)bdp);
	cr_assert_gt(used, 0.9, "the link is %.0f%% used (rate %lu B/s, rtt %lu ns)", used * 100,
		     (unsigned long)rate, (unsigned long)rtt);
	cr_assert_gt(w.rate, rate * 9 / 10, "rate shown %lu of %lu", (unsigned long)w.rate,
		     (unsigned long)rate);
	cr_assert_leq(w.rate, rate + rate / 50);
	cr_assert_geq(w.base, rtt, "a round trip shorter than the path's");
	cr_assert_lt(w.base, rtt + SW_READ * 1000000000ull / rate + rtt / 10,
		     "a queue of its own taken for the path");
	/* the window: the path's product and the target's queue, and a few reads */
	uint64_t win = sw_window(&w), queue = rate * sw_target(&w) / 1000000000ull;
	cr_assert_leq(win, bdp + 2 * queue + 4 * SW_READ, "window %lu for a BDP of %lu",
		      (unsigned long)win, (unsigned long)bdp);
	/* a read waits at the server for about the target, on average */
	double target_ms = (double)sw_target(&w) / 1e6;
	cr_assert_leq(queued_ms, 1.5 * target_ms, "reads queue %.3f ms (target %.3f ms)", queued_ms,
		      target_ms);
}

Test(window, finds_1gbit_1ms)
{
	converges(125000000, 1 * MS);
}
Test(window, finds_1gbit_10ms)
{
	converges(125000000, 10 * MS);
}
Test(window, finds_100mbit_50ms)
{
	converges(12500000, 50 * MS);
}
Test(window, finds_10gbit_200us)
{
	converges(1250000000, MS / 5);
}

Test(window, starts_small)
{
	struct stream_window w;

	sw_init(&w);
	cr_assert_eq(sw_window(&w), SW_INITIAL);
	cr_assert_eq(sw_read_size(&w, 512 << 10), SW_READ);
	cr_assert_eq(sw_read_size(&w, 16 << 10), 16 << 10, "never more than the caller's max");
	cr_assert_eq(sw_pace_wait(&w, 1000), 0, "no pacing before a measure");
}

Test(window, failed_read_leaves_the_window)
{
	struct stream_window w;
	struct sw_mark a, b;

	sw_init(&w);
	sw_sent(&w, &a, 100, 1 << 20);
	sw_sent(&w, &b, 100, 1 << 20);
	cr_assert_eq(w.inflight, 2u << 20);
	sw_data(&w, &a, 4096, 150);
	sw_done(&w, &a, 200); /* failed after one page */
	cr_assert_eq(w.inflight, 1u << 20);
	sw_done(&w, &b, 300); /* failed with nothing */
	cr_assert_eq(w.inflight, 0);
	cr_assert_eq(w.samples, 0, "a read that brought less than a full one is no sample");
	sw_sent(&w, &a, 400, 4096);
	sw_data(&w, &a, 1 << 20, 450); /* a source that sends more than asked */
	cr_assert_eq(w.inflight, 0);
	cr_assert_eq(sw_window(&w), SW_INITIAL, "nothing measured: nothing changed");
}

/* One full read, asked for at now, in after el ns. */
static void one_read(struct stream_window *w, uint64_t now, uint64_t el)
{
	struct sw_mark m;

	sw_sent(w, &m, now, SW_READ);
	sw_data(w, &m, SW_READ, now + el);
	sw_done(w, &m, now + el);
}

Test(window, grows_without_queue_shrinks_with_one)
{
	struct stream_window w;
	uint64_t now = 1000 * MS, win;

	sw_init(&w);
	one_read(&w, now, 10 * MS); /* the path: 10 ms */
	win = sw_window(&w);
	cr_assert_eq(win, SW_INITIAL + SW_READ, "slow start: a read's worth a read");
	one_read(&w, now += MS, 10 * MS + sw_target(&w)); /* the first queue: it ends */
	cr_assert_eq(sw_window(&w), win, "on target: it stays");
	for (int i = 0; i < 16; i++)
		one_read(&w, now += MS, 10 * MS);
	cr_assert_gt(sw_window(&w), win, "no queue: it grows");
	cr_assert_leq(sw_window(&w), win + win / 4 + 16 * SW_READ / 4 + SW_READ,
		      "by a quarter of what came at most");
	win = sw_window(&w);
	uint64_t late = 10 * MS + 2 * sw_target(&w);
	for (int i = 0; i < 16; i++)
		one_read(&w, now += MS, late);
	cr_assert_lt(sw_window(&w), win, "a queue of twice the target: it shrinks");
	win = sw_window(&w);
	for (int i = 0; i < 16; i++)
		one_read(&w, now += MS, 10 * MS + sw_target(&w));
	cr_assert_eq(sw_window(&w), win, "on target: it stays");
	for (int i = 0; i < 16; i++) {
		one_read(&w, now += MS, 100 * MS);
		cr_assert_geq(sw_window(&w), SW_MIN, "never below two reads");
	}
}

Test(window, a_delay_that_stays_holds_the_least_window)
{
	struct stream_window w;
	uint64_t now = 1000 * MS;

	sw_init(&w);
	for (int i = 0; i < 8; i++)
		one_read(&w, now += MS, 2 * MS); /* a 2 ms path */
	/* then every read waits 5 ms more (a CPU, others' traffic): no base is made of it */
	for (int i = 0; i < 1000; i++)
		one_read(&w, now += MS, 7 * MS);
	cr_assert_eq(w.base, 2 * MS, "a delay that stays was taken for the path");
	cr_assert_eq(sw_window(&w), SW_MIN, "held at the least window");
}

Test(window, a_local_server_is_not_paced_or_shrunk)
{
	struct stream_window w;
	uint64_t now = 1000 * MS;

	sw_init(&w);
	sw_local(&w, true);
	cr_assert_eq(sw_window(&w), SW_LOCAL);
	cr_assert_eq(sw_read_size(&w, 1u << 30), SW_MAX_READ, "reads of the most");
	cr_assert_eq(sw_read_size(&w, 128 << 10), 128 << 10, "at most what the caller takes");
	for (int i = 0; i < 100; i++) {
		one_read(&w, now, 30 * MS); /* the CPU's delay: no window of its own follows it */
		cr_assert_eq(sw_pace_wait(&w, now), 0, "paced");
		now += MS;
	}
	cr_assert_eq(sw_window(&w), SW_LOCAL);
	cr_assert_gt(w.samples, 0, "the delay is still measured");
	/* Failed over to a server elsewhere: the delay window again, where it was. */
	sw_local(&w, false);
	cr_assert_eq(sw_window(&w), SW_INITIAL);
}

Test(window, idle_stream_does_not_grow)
{
	struct stream_window w;
	uint64_t now = 1000 * MS;

	sw_init(&w);
	one_read(&w, now, 10 * MS);
	uint64_t win = sw_window(&w);
	for (int i = 0; i < 100; i++) {
		sw_idle(&w); /* the stream has nothing more to ask for */
		one_read(&w, now += 20 * MS, 10 * MS);
	}
	cr_assert_eq(sw_window(&w), win, "application-limited reads grew the window");
}

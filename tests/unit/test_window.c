/*
 * The stream's window in bytes (lazy-pages/lazyd/window.c), driven by a model path: a
 * request takes RTT/2 to the server, the server sends reads one after another at the link's
 * rate, the data takes RTT/2 back, in chunks of 32 pages as criu-imgd's frames come. The window must find the path's bandwidth-delay product:
 * the link full, and almost nothing queued at the server.
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
	sw_data(w, m, n);
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
		while (w->inflight < sw_window(w) && p->n < MAXR) {
			uint64_t b = sw_read_size(w, 512 << 10);
			sw_sent(w, &p->r[p->n].m, *now, b);
			p->r[p->n].start_ns = path_read(p, *now, b);
			p->n++;
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
	run(&p, &w, &now, 500 * MS + 50 * rtt); /* startup, then some probing cycles */
	p.queued_ns = p.sent = p.bytes = 0;
	uint64_t t0 = now;
	run(&p, &w, &now, 1000 * MS);
	double used = (double)p.bytes / ((double)(now - t0) / 1e9) / (double)rate;
	double queued_ms = (double)p.queued_ns / (double)p.sent / 1e6;

	cr_log_info("%lu B/s, rtt %.3f ms: link %.1f%% used, reads queue %.3f ms on average, "
		    "window %lu for a BDP of %lu", (unsigned long)rate, rtt / 1e6, used * 100,
		    queued_ms, (unsigned long)sw_window(&w), (unsigned long)bdp);
	cr_assert_gt(used, 0.9, "the link is %.0f%% used (rate %lu B/s, rtt %lu ns)", used * 100,
		     (unsigned long)rate, (unsigned long)rtt);
	cr_assert_gt(w.rate, rate * 9 / 10, "rate measured %lu of %lu", (unsigned long)w.rate,
		     (unsigned long)rate);
	cr_assert_leq(w.rate, rate + rate / 100);
	cr_assert_geq(w.rtt, rtt);
	uint64_t win = sw_window(&w);
	cr_assert_leq(win, 2 * bdp + 4 * SW_MIN_READ, "window %lu for a BDP of %lu",
		      (unsigned long)win, (unsigned long)bdp);
	/* a read waits at the server for a quarter of a round trip at most, on average (the
	 * probing phases queue a little, on purpose), or for one read's time on the link */
	double read_ms = (double)sw_read_size(&w, 512 << 10) / (double)rate * 1e3;
	cr_assert_leq(queued_ms, rtt / 4e6 + read_ms, "reads queue %.3f ms (rtt %.3f ms)",
		      queued_ms, rtt / 1e6);
}

Test(window, finds_1gbit_1ms) { converges(125000000, 1 * MS); }
Test(window, finds_1gbit_10ms) { converges(125000000, 10 * MS); }
Test(window, finds_100mbit_50ms) { converges(12500000, 50 * MS); }
Test(window, finds_10gbit_200us) { converges(1250000000, MS / 5); }

Test(window, starts_small)
{
	struct stream_window w;

	sw_init(&w);
	cr_assert_eq(sw_window(&w), SW_INITIAL);
	cr_assert_eq(sw_read_size(&w, 512 << 10), SW_MIN_READ);
	cr_assert_eq(sw_read_size(&w, 16 << 10), 16 << 10, "never more than the caller's max");
}

Test(window, failed_read_leaves_the_window)
{
	struct stream_window w;
	struct sw_mark a, b;

	sw_init(&w);
	sw_sent(&w, &a, 100, 1 << 20);
	sw_sent(&w, &b, 100, 1 << 20);
	cr_assert_eq(w.inflight, 2u << 20);
	sw_data(&w, &a, 4096);
	sw_done(&w, &a, 200); /* failed after one page */
	cr_assert_eq(w.inflight, 1u << 20);
	sw_done(&w, &b, 300); /* failed with nothing */
	cr_assert_eq(w.inflight, 0);
	cr_assert_eq(w.samples, 1, "only a read that brought data is a sample");
	sw_sent(&w, &a, 400, 4096);
	sw_data(&w, &a, 1 << 20); /* a source that sends more than asked */
	cr_assert_eq(w.inflight, 0);
}

Test(window, idle_stream_does_not_lower_the_rate)
{
	struct stream_window w;
	struct sw_mark m;
	uint64_t now = 1000 * MS;

	sw_init(&w);
	sw_sent(&w, &m, now, 1 << 20);
	sw_data(&w, &m, 1 << 20);
	sw_done(&w, &m, now + 10 * MS); /* 100 MiB/s over 10 ms */
	uint64_t rate = w.rate;
	cr_assert_gt(rate, 0);
	/* then the stream has little to ask for, for long: slow samples, application-limited */
	now += 2000 * MS;
	for (int i = 0; i < 100; i++) {
		sw_idle(&w);
		sw_sent(&w, &m, now, 4096);
		sw_data(&w, &m, 4096);
		now += 10 * MS;
		sw_done(&w, &m, now);
	}
	cr_assert_eq(w.rate, rate, "app-limited samples lowered the rate");
	/* a full sample after the old one expired may lower it */
	now += 2000 * MS;
	sw_sent(&w, &m, now, 1 << 20);
	sw_data(&w, &m, 1 << 20);
	sw_done(&w, &m, now + 20 * MS);
	cr_assert_lt(w.rate, rate);
}

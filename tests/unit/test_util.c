/* util/: the event loop, the parsers of what operators and peers type, the error text. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/ev.h"
#include "util/parse.h"

struct seen {
	int calls;
	unsigned last_events;
	struct ev_loop *l;
	int del_fd; /* a handler that deletes this fd (and closes it) */
};

static void on_fd(struct ev_loop *l, int fd, unsigned events, void *data)
{
	struct seen *s = data;
	char c;

	s->calls++;
	s->last_events = events;
	if (events & EV_READ)
		(void)!read(fd, &c, 1);
	if (s->del_fd >= 0) {
		ev_del(l, s->del_fd);
		close(s->del_fd);
		s->del_fd = -1;
	}
}

Test(ev, fd_handler_gets_its_data)
{
	struct ev_loop *l = ev_loop_new();
	int p[2];
	struct seen s = {.del_fd = -1};

	cr_assert_not_null(l);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(ev_add(l, p[0], EV_READ, on_fd, &s), 0);
	cr_assert_eq(ev_add(l, p[0], EV_READ, on_fd, &s), 0, "again: replaces");
	cr_assert_eq(ev_run_once(l, 0), 0, "nothing ready");
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(ev_run_once(l, 1000), 1);
	cr_assert_eq(s.calls, 1);
	cr_assert(s.last_events & EV_READ);
	ev_del(l, p[0]);
	cr_assert_not(ev_has(l, p[0]));
	cr_assert_eq(ev_mod(l, p[0], EV_READ), -ENOENT);
	close(p[0]);
	close(p[1]);
	ev_loop_free(l);
}

/* Two fds ready in one turn; the first handler deletes the second: no stale call. */
Test(ev, deleted_during_turn_is_not_called)
{
	struct ev_loop *l = ev_loop_new();
	int a[2], b[2];
	struct seen sa = {.del_fd = -1}, sb = {.del_fd = -1};

	cr_assert_eq(pipe(a), 0);
	cr_assert_eq(pipe(b), 0);
	sa.del_fd = b[0];
	sb.del_fd = a[0];
	cr_assert_eq(ev_add(l, a[0], EV_READ, on_fd, &sa), 0);
	cr_assert_eq(ev_add(l, b[0], EV_READ, on_fd, &sb), 0);
	cr_assert_eq(write(a[1], "x", 1), 1);
	cr_assert_eq(write(b[1], "x", 1), 1);
	cr_assert_eq(ev_run_once(l, 1000), 1, "one handler ran, the other fd was deleted by it");
	cr_assert_eq(sa.calls + sb.calls, 1);
	close(a[1]);
	close(b[1]);
	ev_loop_free(l);
}

/* An fd closed behind the loop's back and its number reused: ev_add registers the new file. */
Test(ev, readd_after_close_and_reuse)
{
	struct ev_loop *l = ev_loop_new();
	int a[2], b[2];
	struct seen s = {.del_fd = -1};

	cr_assert_eq(pipe(a), 0);
	cr_assert_eq(ev_add(l, a[0], EV_READ, on_fd, &s), 0);
	int num = a[0];
	close(a[0]); /* epoll forgets it; the loop still has the slot */
	cr_assert_eq(pipe(b), 0);
	cr_assert_eq(b[0], num, "the number is reused");
	cr_assert_eq(ev_add(l, b[0], EV_READ, on_fd, &s), 0);
	cr_assert_eq(write(b[1], "x", 1), 1);
	cr_assert_eq(ev_run_once(l, 1000), 1);
	cr_assert_eq(s.calls, 1);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	ev_loop_free(l);
}

static void on_timer(struct ev_loop *l, uint64_t id, void *data)
{
	(void)l;
	(void)id;
	(*(int *)data)++;
}

Test(ev, timers_fire_once_in_order_and_cancel)
{
	struct ev_loop *l = ev_loop_new();
	int a = 0, b = 0;

	uint64_t ta = ev_timer_add(l, 30, on_timer, &a);
	uint64_t tb = ev_timer_add(l, 10, on_timer, &b);
	cr_assert(ta && tb && ta != tb);
	uint64_t t0 = mono_ms();
	cr_assert_eq(ev_run_once(l, -1), 1, "the 10 ms timer bounds the wait");
	cr_assert_eq(b, 1);
	cr_assert_eq(a, 0);
	cr_assert_geq(mono_ms() - t0, 10);
	ev_timer_del(l, ta);
	cr_assert_eq(ev_run_once(l, 50), 0, "cancelled");
	cr_assert_eq(a, 0);
	ev_loop_free(l);
}

Test(ev, timer_below_a_millisecond)
{
	struct ev_loop *l = ev_loop_new();
	int a = 0;

	cr_assert(ev_timer_add_ns(l, 300000, on_timer, &a));
	uint64_t t0 = mono_ns();
	/* one turn: the wait is bounded by the timer itself, not rounded to 0 or 1 ms */
	cr_assert_eq(ev_run_once(l, -1), 1, "a 300 us timer did not fire in the first turn");
	cr_assert_eq(a, 1);
	cr_assert_geq(mono_ns() - t0, 300000, "fired early");
	ev_loop_free(l);
}

Test(parse, long_strict)
{
	long v;

	cr_assert_eq(parse_long("42", 0, 100, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(parse_long("-3", -5, 5, &v), 0);
	cr_assert_eq(v, -3);
	cr_assert_eq(parse_long("", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_long(" 4", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_long("4x", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_long("101", 0, 100, &v), -ERANGE);
	cr_assert_eq(parse_long("99999999999999999999", 0, 100, &v), -ERANGE);
}

Test(parse, size_suffixes)
{
	uint64_t v;

	cr_assert_eq(parse_size("4K", 1, UINT64_MAX, &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(parse_size("2G", 1, UINT64_MAX, &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(parse_size("1X", 1, UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(parse_size("-1", 1, UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(parse_size("0", 1, UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(parse_size("99999999999T", 1, UINT64_MAX, &v), -ERANGE);
}

Test(parse, hostport)
{
	struct hostport hp;
	struct errmsg e;

	cr_assert_eq(parse_hostport("imgd.example:7070", &hp, &e), 0);
	cr_assert_str_eq(hp.host, "imgd.example");
	cr_assert_str_eq(hp.port, "7070");
	cr_assert_eq(hp.port_num, 7070);
	cr_assert_eq(parse_hostport("[::1]:80", &hp, &e), 0);
	cr_assert_str_eq(hp.host, "::1");
	cr_assert_eq(parse_hostport("::1:80", &hp, &e), -EINVAL);
	cr_assert(strstr(e.msg, "brackets"), "%s", e.msg);
	cr_assert_eq(parse_hostport("host:0", &hp, &e), -EINVAL);
	cr_assert_eq(parse_hostport("host:65536", &hp, &e), -EINVAL);
	cr_assert_eq(parse_hostport(":80", &hp, &e), -EINVAL);
	cr_assert_eq(parse_hostport("a b:80", &hp, &e), -EINVAL);
	cr_assert_eq(parse_hostport("host", &hp, NULL), -EINVAL);
}

Test(parse, image_ids)
{
	char big[IMAGE_ID_MAX + 2];

	cr_assert(image_id_ok("web-1.v2_x"));
	cr_assert_not(image_id_ok(""));
	cr_assert_not(image_id_ok("."));
	cr_assert_not(image_id_ok(".."));
	cr_assert_not(image_id_ok("-rf"));
	cr_assert_not(image_id_ok("a/b"));
	memset(big, 'a', sizeof(big) - 1);
	big[IMAGE_ID_MAX] = 0;
	cr_assert(image_id_ok(big));
	big[IMAGE_ID_MAX] = 'a';
	big[IMAGE_ID_MAX + 1] = 0;
	cr_assert_not(image_id_ok(big));
}

Test(errmsg, set_and_prefix)
{
	struct errmsg e = {""};

	cr_assert_eq(errmsg_set(&e, EINVAL, "bad %s", "thing"), -EINVAL);
	cr_assert_str_eq(e.msg, "bad thing");
	cr_assert_eq(errmsg_prefix(&e, -EIO, "pages-1.img at %d", 4096), -EIO);
	cr_assert_str_eq(e.msg, "pages-1.img at 4096: bad thing");
	cr_assert_eq(errmsg_set(NULL, ENOENT, "x"), -ENOENT);
}

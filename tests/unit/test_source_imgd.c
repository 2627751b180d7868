/*
 * The criu-imgd page source reconnects as state, never as a sleep (source_imgd*.c): with
 * no server, read() and collect() come back at once, say -EAGAIN / nothing, and wait_ms()
 * tells the daemon's event loop when to ask again; after --source-retries the read fails
 * for good (the daemon then kills the task rather than serve it a wrong page). Each
 * failed attempt is counted in the source's state, so a call that tried again can be told
 * from one that did not.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/ports.h"
#include "source/source_imgd.h"

#define RETRIES 2

static struct page_source src;
static struct img_task task = {.pid = 1};
static char key_path[] = "/tmp/test-source-imgd-key-XXXXXX";

static void setup(void)
{
	char server[64];
	struct errmsg err = {""};
	int fd = mkstemp(key_path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "0123456789abcdef0123456789abcdef", 32), 32);
	close(fd);
	/* A port nobody listens on: every connect is refused at once. */
	unsigned port = loopback_free_port();
	cr_assert_gt(port, 0);
	snprintf(server, sizeof(server), "127.0.0.1:%u", port);
	struct imgd_source_cfg cfg = {.server = server,
				      .key_file = key_path,
				      .retries = RETRIES,
				      .timeout_ms = 1000,
				      .window = 4};
	cr_assert_eq(page_source_imgd(&src, &cfg, &err), 0, "%s", err.msg);
	cr_assert_not_null(src.ops->wait_ms);
}

static void teardown(void)
{
	src.ops->close(&src);
	unlink(key_path);
}

TestSuite(source_imgd, .init = setup, .fini = teardown);

static void wait_out(void)
{
	unsigned ms = src.ops->wait_ms(&src);
	usleep((ms + 2) * 1000u);
}

/* A connection attempt runs in a thread (source_imgd_dial.c): wait until it has ended. */
static void dial_settles(struct imgd_dial *dl)
{
	for (int i = 0; dl->running && !atomic_load(&dl->done); i++) {
		cr_assert_lt(i, 5000, "the connection attempt never ends");
		usleep(1000);
	}
}

Test(source_imgd, urgent_read_backs_off_without_sleeping)
{
	struct imgd_src *s = src.priv;
	char buf[4096];

	for (unsigned attempt = 1; attempt <= RETRIES; attempt++) {
		/* The attempt starts and the read comes back; asked again once it failed. */
		cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EAGAIN,
			     "attempt %u: come back later", attempt);
		dial_settles(&s->udial);
		cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EAGAIN);
		cr_assert_eq(s->ufails, attempt);
		unsigned ms = src.ops->wait_ms(&src);
		cr_assert(ms > 0 && ms <= imgd_backoff_ms(attempt - 1), "wait %u ms", ms);
		/* Asked again before its time: no new attempt. */
		cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EAGAIN);
		cr_assert_not(s->udial.running, "no attempt before the backoff passed");
		cr_assert_eq(s->ufails, attempt);
		wait_out();
		cr_assert_eq(src.ops->wait_ms(&src), 0);
	}
	/* The last attempt fails: the read fails for good, and the next one starts afresh. */
	cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EAGAIN);
	dial_settles(&s->udial);
	cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EIO);
	cr_assert_eq(s->ufails, 0);
}

/*
 * A server that takes the connection and never answers (a hung criu-imgd, a black hole):
 * the read comes back at once, while the attempt is still waiting for the server's HELLO,
 * and the event loop is told to look again soon; the attempt fails when the server goes.
 */
Test(source_imgd, reconnect_never_blocks_the_caller)
{
	struct imgd_src *s = src.priv;
	char buf[4096];
	unsigned port;
	int lfd = loopback_listen(&port);

	cr_assert_geq(lfd, 0);
	snprintf(s->cl.srv[0].port, sizeof(s->cl.srv[0].port), "%u", port);
	cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EAGAIN);
	cr_assert(s->udial.running);
	/* The server has said nothing: the attempt cannot have ended, the read did. */
	int cfd = accept(lfd, NULL, NULL);
	cr_assert_geq(cfd, 0, "the attempt connected");
	cr_assert_not(atomic_load(&s->udial.done), "still waiting for the server's HELLO");
	cr_assert_gt(src.ops->wait_ms(&src), 0, "the loop looks again soon");
	cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EAGAIN);
	cr_assert_eq(s->ufails, 0, "an attempt under way is not a failure");
	close(cfd);
	close(lfd);
	dial_settles(&s->udial);
	cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EAGAIN);
	cr_assert_eq(s->ufails, 1, "the attempt failed when the server went");
}

Test(source_imgd, bulk_reads_queue_while_reconnecting)
{
	struct src_chunk ch;
	int idle = 0, rc;

	cr_assert_eq(src.ops->prefetch(&src, &task, 0, 4096, 7), 0, "queued, not refused");
	cr_assert_eq(src.ops->inflight(&src), 1);
	cr_assert_eq(src.ops->poll_fd(&src), -1, "no connection to watch");
	cr_assert_gt(src.ops->wait_ms(&src), 0);
	while ((rc = src.ops->collect(&src, &ch)) == 0) {
		cr_assert_lt(++idle, 100, "collect keeps saying nothing");
		wait_out();
	}
	cr_assert_eq(rc, -EIO, "the oldest read fails once the retries are spent");
	cr_assert_eq(ch.tag, 7);
	cr_assert(ch.last);
	cr_assert_eq(src.ops->inflight(&src), 0);
	cr_assert_geq(idle, 1, "collect came back at once while backing off");
}

/*
 * Several servers (--image-server A,B): a failed attempt moves on to the next server at
 * once; the backoff runs only once every server of the list has failed in a row, and the
 * read fails for good after --source-retries such rounds.
 */
Test(source_imgd, failover_tries_every_server_before_backing_off)
{
	char list[64], buf[4096];
	struct errmsg err = {""};
	unsigned a = loopback_free_port(), b = loopback_free_port();

	src.ops->close(&src);
	snprintf(list, sizeof(list), "127.0.0.1:%u,127.0.0.1:%u", a, b);
	struct imgd_source_cfg cfg = {
	    .server = list, .key_file = key_path, .retries = RETRIES, .timeout_ms = 1000};
	cr_assert_eq(page_source_imgd(&src, &cfg, &err), 0, "%s", err.msg);
	struct imgd_src *s = src.priv;
	cr_assert_eq(s->cl.nsrv, 2);
	for (unsigned fail = 1; fail <= (RETRIES + 1) * 2 - 1; fail++) {
		cr_assert_eq(s->cur, (fail - 1) % 2, "attempt %u goes to server %u", fail,
			     (fail - 1) % 2);
		cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EAGAIN);
		dial_settles(&s->udial);
		cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EAGAIN);
		cr_assert_eq(s->ufails, fail);
		cr_assert_eq(s->cur, fail % 2, "the next attempt goes to the other server");
		unsigned ms = src.ops->wait_ms(&src);
		if (fail % 2)
			cr_assert_eq(ms, 0, "failure %u: the other server is tried at once", fail);
		else
			cr_assert(ms > 0 && ms <= imgd_backoff_ms(fail / 2 - 1),
				  "failure %u: a round failed, wait %u ms", fail, ms);
		wait_out();
	}
	cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EAGAIN);
	dial_settles(&s->udial);
	cr_assert_eq(src.ops->read(&src, &task, 0, buf, sizeof(buf)), -EIO, "retries spent");
	cr_assert_eq(s->failovers, 0, "no connection ever opened");
}

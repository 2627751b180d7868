/*
 * Opening a connection to criu-imgd off the event loop (source_imgd.h). Connect, TLS,
 * HELLO, AUTH and OPEN are blocking calls, bounded by --source-timeout; a reconnect during a
 * restore runs them in a thread of their own, so that the daemon's loop keeps serving the
 * other tasks, the events and the faults that need no page data meanwhile. The thread only
 * reads the source's settings (s->cl) and writes the dial's own fields and the connection's
 * scratch, which nothing else touches while the connection is down; the loop takes its
 * result (imgd_dial_poll) once `done` says so.
 */
#include "source_imgd.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"

static void *dial_thread(void *arg)
{
	struct imgd_dial *dl = arg;

	dl->fd = wire_client_open(&dl->s->cl, dl->cls, dl->scratch, &dl->info, &dl->e);
	atomic_store_explicit(&dl->done, true, memory_order_release);
	return NULL;
}

int imgd_dial_start(struct imgd_src *s, struct imgd_dial *dl, LwClass cls, uint8_t *scratch)
{
	if (dl->running)
		return 0;
	if (s->dial_inline)
		return -EPERM;
	*dl = (struct imgd_dial){.s = s, .cls = cls, .scratch = scratch, .fd = -1};
	atomic_store(&dl->done, false);
	int rc = pthread_create(&dl->th, NULL, dial_thread, dl);
	if (rc)
		return -rc;
	dl->running = true;
	return 0;
}

/*
 * What wire_client_open gave (fd, info, e) for a connection of class cls: logged if it
 * failed; refused (-ENOENT) if the server now serves another image than the one whose index
 * we hold; else its codec noted. The fd or -errno.
 */
static int opened(struct imgd_src *s, LwClass cls, int fd, const struct wire_open_info *info,
		  const struct errmsg *e)
{
	if (fd < 0) {
		pr_warn("image server %s:%s: %s", s->cl.host, s->cl.port, e->msg);
		return fd;
	}
	if (s->info.nr_tasks &&
	    (info->nr_tasks != s->info.nr_tasks || info->lazy_pages != s->info.lazy_pages)) {
		pr_err("image server %s:%s now serves a different image '%s'", s->cl.host,
		       s->cl.port, s->cl.image ? s->cl.image : "default");
		wire_sock_close(fd);
		return -ENOENT;
	}
	s->info = *info;
	*(cls == LW_CLASS__LW_CLASS_URGENT ? &s->ucodec : &s->bcodec) = info->codec;
	return fd;
}

int imgd_dial_poll(struct imgd_src *s, struct imgd_dial *dl)
{
	if (!dl->running)
		return -ECHILD;
	if (!atomic_load_explicit(&dl->done, memory_order_acquire))
		return -EINPROGRESS;
	pthread_join(dl->th, NULL);
	dl->running = false;
	return opened(s, dl->cls, dl->fd, &dl->info, &dl->e);
}

void imgd_dial_wait(struct imgd_dial *dl)
{
	if (!dl->running)
		return;
	pthread_join(dl->th, NULL); /* bounded by --source-timeout */
	dl->running = false;
	if (dl->fd >= 0)
		wire_sock_close(dl->fd);
	dl->fd = -1;
}

int imgd_connect(struct imgd_src *s, LwClass cls, uint8_t *scratch)
{
	struct errmsg e = {""};
	struct wire_open_info info;
	int fd = wire_client_open(&s->cl, cls, scratch, &info, &e);

	return opened(s, cls, fd, &info, &e);
}

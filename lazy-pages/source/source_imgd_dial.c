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

/* The image the server now serves must be the one whose index we hold. */
static int same_image(struct imgd_src *s, const struct wire_open_info *info)
{
	if (s->info.nr_tasks &&
	    (info->nr_tasks != s->info.nr_tasks || info->lazy_pages != s->info.lazy_pages)) {
		pr_err("image server %s:%s now serves a different image '%s'", s->cl.host,
		       s->cl.port, s->cl.image ? s->cl.image : "default");
		return -ENOENT;
	}
	s->info = *info;
	return 0;
}

/* What the connection agreed to compress with. */
static void set_codec(struct imgd_src *s, LwClass cls, const struct wire_open_info *info)
{
	*(cls == LW_CLASS__LW_CLASS_URGENT ? &s->ucodec : &s->bcodec) = info->codec;
}

int imgd_dial_poll(struct imgd_src *s, struct imgd_dial *dl)
{
	if (!dl->running)
		return -ECHILD;
	if (!atomic_load_explicit(&dl->done, memory_order_acquire))
		return -EINPROGRESS;
	pthread_join(dl->th, NULL);
	dl->running = false;
	if (dl->fd < 0) {
		pr_warn("image server %s:%s: %s", s->cl.host, s->cl.port, dl->e.msg);
		return dl->fd;
	}
	int rc = same_image(s, &dl->info);
	if (rc) {
		wire_sock_close(dl->fd);
		return rc;
	}
	set_codec(s, dl->cls, &dl->info);
	return dl->fd;
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

	if (fd < 0) {
		pr_warn("image server %s:%s: %s", s->cl.host, s->cl.port, e.msg);
		return fd;
	}
	int rc = same_image(s, &info);
	if (rc) {
		wire_sock_close(fd);
		return rc;
	}
	set_codec(s, cls, &info);
	return fd;
}

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
#include "wire/wire_qos.h"

static void *dial_thread(void *arg)
{
	struct imgd_dial *dl = arg;

	dl->fd = wire_client_open(&dl->cl, dl->cls, dl->scratch, &dl->info, &dl->e);
	atomic_store_explicit(&dl->done, true, memory_order_release);
	return NULL;
}

int imgd_dial_start(struct imgd_src *s, struct imgd_dial *dl, LwClass cls, uint8_t *scratch)
{
	if (dl->running)
		return 0;
	if (s->dial_inline)
		return -EPERM;
	*dl = (struct imgd_dial){
	    .s = s, .cl = s->cl, .srv = s->cur, .cls = cls, .scratch = scratch, .fd = -1};
	wire_client_use(&dl->cl, s->cur);
	atomic_store(&dl->done, false);
	int rc = pthread_create(&dl->th, NULL, dial_thread, dl);
	if (rc)
		return -rc;
	dl->running = true;
	return 0;
}

/* Server srv's address, for the log. */
static const struct wire_server *at(const struct imgd_src *s, unsigned srv)
{
	return &s->cl.srv[srv];
}

/*
 * Whether server srv, which opened with info, serves this restore's image: the same
 * fingerprint (once one is known: the images dir's, or the first server's) and the same size.
 * 0, or -ENOENT (logged).
 */
static int same_image(struct imgd_src *s, unsigned srv, const struct wire_open_info *info)
{
	const char *id = s->cl.image ? s->cl.image : "default";

	if (s->fp && info->fingerprint && info->fingerprint != s->fp) {
		pr_err("image server %s:%s serves another image as '%s' (fingerprint %016llx, this "
		       "restore's %016llx): not used",
		       at(s, srv)->host, at(s, srv)->port, id,
		       (unsigned long long)info->fingerprint, (unsigned long long)s->fp);
		return -ENOENT;
	}
	if (s->info.nr_tasks &&
	    (info->nr_tasks != s->info.nr_tasks || info->lazy_pages != s->info.lazy_pages)) {
		pr_err("image server %s:%s serves another image as '%s' (%u tasks, %llu data "
		       "pages; this restore's has %u, %llu): not used",
		       at(s, srv)->host, at(s, srv)->port, id, info->nr_tasks,
		       (unsigned long long)info->lazy_pages, s->info.nr_tasks,
		       (unsigned long long)s->info.lazy_pages);
		return -ENOENT;
	}
	/* The page data: a restore that had dump-time checksums never goes on without them
	 * (another copy's pages would be checked only against that copy), nor with another
	 * copy's. */
	if (s->dump_sums_seen && !info->dump_checksums) {
		pr_err("image server %s:%s has no dump-time checksums for '%s', where this "
		       "restore's pages were checked against them: not used",
		       at(s, srv)->host, at(s, srv)->port, id);
		return -ENOENT;
	}
	if (s->sums_fp && info->sums_fp && info->sums_fp != s->sums_fp) {
		pr_err("image server %s:%s holds other page data for '%s' (checksum index "
		       "%016llx, this restore's %016llx): not used",
		       at(s, srv)->host, at(s, srv)->port, id, (unsigned long long)info->sums_fp,
		       (unsigned long long)s->sums_fp);
		return -ENOENT;
	}
	if (info->dump_checksums) {
		s->dump_sums_seen = true;
		if (!s->sums_fp)
			s->sums_fp = info->sums_fp;
	}
	if (!info->fingerprint && s->fp && !s->warned_nofp) {
		s->warned_nofp = true;
		pr_warn("image server %s:%s sends no fingerprint: only the image's size says it is "
			"this restore's",
			at(s, srv)->host, at(s, srv)->port);
	}
	if (!s->fp)
		s->fp = info->fingerprint;
	return 0;
}

/*
 * What wire_client_open gave (fd, info, e) for a connection of class cls to server srv:
 * logged if it failed; refused (-ENOENT) if it serves another image; else its codec noted.
 * The fd or -errno.
 */
static int opened(struct imgd_src *s, unsigned srv, LwClass cls, int fd,
		  const struct wire_open_info *info, const struct errmsg *e)
{
	int rc = fd;

	if (fd < 0)
		pr_warn("image server %s:%s: %s", at(s, srv)->host, at(s, srv)->port, e->msg);
	else if ((rc = same_image(s, srv, info)))
		wire_sock_close(fd);
	if (rc < 0) {
		imgd_server_down(s, srv, rc);
		return rc;
	}
	if (s->served && srv != s->last_srv) {
		s->failovers++;
		pr_warn("image server: failed over from %s:%s to %s:%s (%s connection)",
			at(s, s->last_srv)->host, at(s, s->last_srv)->port, at(s, srv)->host,
			at(s, srv)->port, cls == LW_CLASS__LW_CLASS_URGENT ? "fault" : "stream");
	}
	if (cls == LW_CLASS__LW_CLASS_URGENT && (rc = wire_qos_mark_fault(fd, s->fault_dscp)))
		pr_warn("image server %s:%s: the fault connection goes unmarked (DSCP %d): %s",
			at(s, srv)->host, at(s, srv)->port, s->fault_dscp, strerror(-rc));
	s->served = true;
	s->last_srv = srv;
	s->info = *info;
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
	return opened(s, dl->srv, dl->cls, dl->fd, &dl->info, &dl->e);
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

int imgd_connect(struct imgd_src *s, LwClass cls, uint8_t *scratch, unsigned *srv, LwCodec *codec)
{
	struct errmsg e = {""};
	struct wire_open_info info = {0};
	struct wire_client c = s->cl;

	*srv = s->cur;
	wire_client_use(&c, s->cur);
	int fd = wire_client_open(&c, cls, scratch, &info, &e);
	*codec = info.codec;
	return opened(s, *srv, cls, fd, &info, &e);
}

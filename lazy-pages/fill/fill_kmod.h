/*
 * The lazyfill.ko fill engine: batches through /dev/lazyfill.
 *
 * One session per task: filler_kmod_attach() binds a task's uffd (with its
 * pid or pidfd) to a session. The filler_ops then go through the module for
 * that uffd, and through plain userfaultfd ioctls for any uffd that is not
 * attached (or whose bind failed), so the engine is always correct to use.
 * When the module refuses a destination as not registered with the uffd
 * (EPERM), the plain ioctl is tried: if the uffd takes it, the session was
 * bound to the wrong task (a wrong pid) and is dropped.
 * filler_kmod_batch() is the batch entry point: many extents in one call,
 * validated as a whole, each merged range woken once after the batch.
 * Safe to call from several threads at once.
 */
#ifndef LAZY_FILL_KMOD_H
#define LAZY_FILL_KMOD_H

#include <stdint.h>
#include <sys/types.h>

#include <linux/lazyfill.h>

#include "fill.h"

/*
 * Set f up as the kmod engine. 0, or: -ENOENT (no /dev/lazyfill: module not
 * loaded), -EPROTO (its UAPI version is not ours), other -errno. On failure
 * f is untouched.
 */
int filler_kmod(struct filler *f);
/* Whether f is the kmod engine. */
int filler_is_kmod(const struct filler *f);
/* Close every session and the engine (f becomes unusable). */
void filler_kmod_close(struct filler *f);

/*
 * Bind uffd's task: pidfd >= 0, or pid > 0 (this process's pid namespace).
 * 0 (and *session, if not NULL, the module's id for it), or -errno: the
 * uffd is then served with plain ioctls.
 */
int filler_kmod_attach(struct filler *f, int uffd, pid_t pid, int pidfd, uint32_t *session);
/*
 * The same, only if the task has a VMA registered with uffd now: -EPERM if
 * not. An exact answer to "is this uffd that task's?" (a fork event's uffd
 * and the parent's children, say), and the session is attached if it is.
 */
int filler_kmod_attach_verified(struct filler *f, int uffd, pid_t pid, int pidfd,
				uint32_t *session);
/*
 * Drop uffd's session (before the uffd is closed: the session holds it).
 * Not concurrently with fills of that uffd.
 */
void filler_kmod_detach(struct filler *f, int uffd);

/*
 * Install n extents (n <= LAZYFILL_MAX_EXTENTS) into uffd's task in one
 * batch; flags: LAZYFILL_FILL_*. The module fills in each extent's results
 * and *res (if not NULL) the batch's. Returns 0 when every extent settled,
 * else -errno: refused (nothing installed, res->index the first bad
 * extent), or the first extent that did not settle (res->index; -EAGAIN:
 * read the uffd's events, then replay the extents from there).
 * -ENOTCONN if uffd has no session.
 */
int filler_kmod_batch(struct filler *f, int uffd, struct lazyfill_extent *ext, uint32_t n,
		      uint32_t flags, struct lazyfill_batch *res);

/*
 * The engine's batch op (what filler_batch() calls): fill.h's extents through
 * filler_kmod_batch() in calls of up to 128 extents, stopping at a present page
 * as UFFDIO_COPY does; uffds without a session, and calls the module refuses as
 * a whole, go extent by extent with the engine's copy and zero.
 */
int filler_kmod_batch_extents(struct filler *f, int uffd, struct fill_extent *ext, uint32_t n,
			      uint32_t *first);

struct filler_kmod_stats {
	uint64_t batches;	/* ioctls through the module */
	uint64_t kmod_bytes;	/* bytes installed by the module */
	uint64_t plain_calls;	/* calls served with plain ioctls (no session) */
	uint32_t sessions;	/* attached now */
	uint32_t attach_failed; /* binds the module refused */
	uint32_t dropped;	/* sessions dropped: bound to the wrong task (the uffd disagreed) */
};
void filler_kmod_get_stats(const struct filler *f, struct filler_kmod_stats *st);

#endif

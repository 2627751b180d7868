/*
 * Parallel fill: worker threads that install jobs (extents of one uffd) with a fill engine
 * while the caller's thread goes on. UFFDIO_COPY is safe from several threads on one uffd;
 * what the kernel does not protect is the moment after the caller has read an event (an
 * mremap, a fork, a discard) and before it has applied it to what it plans: the kernel lets
 * installs through again, into addresses the caller's plan no longer describes.
 *
 * So every install of a job runs under a fence: thread i holds lock i around each extent,
 * and goes on only while the fence's event count is still the one the job was planned at.
 * Whoever reads the uffds (the caller's thread, or another process such as criu-lazyd's
 * keeper) takes every lock while it reads and counts the events it read (fill_fence_hold).
 * A job whose count moved stops, its remaining extents not attempted (result -EAGAIN): plan
 * them again once the events are applied.
 */
#ifndef LAZY_FILL_POOL_H
#define LAZY_FILL_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fill.h"

#define FILL_POOL_MAX 16 /* threads */
#define FILL_JOB_MAX 64	 /* extents in a job */

struct fill_fence {
	pthread_mutex_t *locks;	      /* FILL_POOL_MAX of them: lock i is thread i's */
	volatile int *owner;	      /* FILL_POOL_MAX: who took lock i last (FENCE_*) */
	const volatile uint64_t *gen; /* events read so far; read and written under the locks */
	atomic_int *readers;	      /* readers waiting for or holding the locks: threads yield */
};

/* Initialise n robust mutexes for a fence (shared: process-shared, for a keeper). 0 or -errno. */
int fill_fence_init(pthread_mutex_t *locks, unsigned n, bool shared);

#define FENCE_READER 1	  /* reads the uffds, counts the events */
#define FENCE_INSTALLER 2 /* installs while the count is what it planned with */
/*
 * Take robust lock m as role, *owner saying who took it last. 1: taken. A reader takes over
 * the lock of anyone who died holding it; an installer that of a dead installer (it left
 * nothing half done), but not that of a dead reader, which may have read an event and not
 * counted it: then 0, and the lock is left unrecoverable so that no install goes in any
 * more. 0 too when it cannot be taken (unrecoverable).
 */
int fill_fence_take(pthread_mutex_t *m, volatile int *owner, int role);
/*
 * The reader's side: every lock (in order) while it reads the uffds, the threads yielding
 * to it meanwhile (they take their lock again only once no reader waits); then let go.
 */
bool fill_fence_hold(const struct fill_fence *f, unsigned n);
void fill_fence_release(const struct fill_fence *f, unsigned n);

struct fill_job {
	int uffd;
	uint64_t gen; /* the fence's count when planned */
	uint32_t n;
	struct fill_extent ext[FILL_JOB_MAX]; /* in: dst, len, src; out: done, result */
	bool stale;			      /* out: stopped because the count moved */
	struct fill_job *next;		      /* the pool's */
};

struct fill_pool;

/*
 * Start n (1..FILL_POOL_MAX) threads installing with engine f (plain copy/zero ops: not a
 * guarded engine) under fence. The calling thread should block its signals first (the
 * threads inherit the mask). 0 or -errno.
 */
int fill_pool_new(struct fill_pool **out, const struct filler *f, unsigned n,
		  const struct fill_fence *fence);
/* Queue job j (its memory stays the caller's, untouched by it until reaped). */
void fill_pool_submit(struct fill_pool *p, struct fill_job *j);
/* A finished job (each extent's done and result set), or NULL if none is yet. */
struct fill_job *fill_pool_reap(struct fill_pool *p);
/* Readable while finished jobs wait to be reaped (an eventfd). */
int fill_pool_fd(const struct fill_pool *p);
/* Block until some job has finished (one of those submitted), at most ms. */
void fill_pool_wait(struct fill_pool *p, int ms);
/* Make fill_pool_fd() readable again: jobs reaped but not yet handled remain. */
void fill_pool_kick(struct fill_pool *p);
/* Let every queued job finish, stop the threads, free the pool (jobs unreaped are dropped). */
void fill_pool_free(struct fill_pool *p);

#endif

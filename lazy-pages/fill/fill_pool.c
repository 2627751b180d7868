/* Worker threads installing jobs under a fence (fill_pool.h). */
#include "fill_pool.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct fill_worker {
	struct fill_pool *p;
	unsigned idx; /* its lock in the fence */
	pthread_t th;
};

struct fill_pool {
	struct filler f;
	struct fill_fence fence;
	pthread_mutex_t mu; /* the queues and stop */
	pthread_cond_t more;
	struct fill_job *queue, **queue_tail;
	struct fill_job *done;
	bool stop;
	int efd;
	unsigned n;
	struct fill_worker w[FILL_POOL_MAX];
};

int fill_fence_init(pthread_mutex_t *locks, unsigned n, bool shared)
{
	pthread_mutexattr_t ma;
	int rc = pthread_mutexattr_init(&ma);

	if (rc)
		return -rc;
	if (shared)
		pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	for (unsigned i = 0; i < n && !rc; i++)
		rc = pthread_mutex_init(&locks[i], &ma);
	pthread_mutexattr_destroy(&ma);
	return -rc;
}

int fill_fence_take(pthread_mutex_t *m, volatile int *owner, int role)
{
	int rc = pthread_mutex_lock(m);

	if (rc == EOWNERDEAD && role == FENCE_INSTALLER && *owner == FENCE_READER) {
		pthread_mutex_unlock(m); /* not consistent: unrecoverable from now on */
		return 0;
	}
	if (rc == EOWNERDEAD)
		rc = pthread_mutex_consistent(m);
	if (rc)
		return 0;
	*owner = role;
	return 1;
}

static void unlock_all(pthread_mutex_t *locks, unsigned n)
{
	for (unsigned i = n; i-- > 0;)
		pthread_mutex_unlock(&locks[i]);
}

bool fill_fence_hold(const struct fill_fence *f, unsigned n)
{
	atomic_fetch_add(f->readers, 1);
	for (unsigned i = 0; i < n; i++)
		if (!fill_fence_take(&f->locks[i], &f->owner[i], FENCE_READER)) {
			unlock_all(f->locks, i);
			atomic_fetch_sub(f->readers, 1);
			return false;
		}
	return true;
}

void fill_fence_release(const struct fill_fence *f, unsigned n)
{
	unlock_all(f->locks, n);
	atomic_fetch_sub(f->readers, 1);
}

/* One extent under thread idx's lock: -EAGAIN (not attempted) if the events moved on. */
static int install_one(struct fill_pool *p, unsigned idx, struct fill_job *j, struct fill_extent *e)
{
	pthread_mutex_t *m = &p->fence.locks[idx];
	int rc;

	/* A reader waits for the locks: let it have them (a mutex is not fair, and a thread
	 * that takes its lock again at once would keep the reader, and its faults, waiting
	 * behind every job queued). */
	while (atomic_load(p->fence.readers))
		sched_yield();
	if (!fill_fence_take(m, &p->fence.owner[idx], FENCE_INSTALLER)) {
		/* A reader (another process: a keeper) died holding it: nothing can be trusted
		 * any more, every install is refused (fill_fence_take). */
		j->stale = true;
		return -EAGAIN;
	}
	if (*p->fence.gen != j->gen) {
		pthread_mutex_unlock(m);
		j->stale = true;
		return -EAGAIN;
	}
	if (e->src)
		rc = p->f.ops->copy(p->f.ctx, j->uffd, e->dst, e->src, e->len, &e->done);
	else
		rc = p->f.ops->zero(p->f.ctx, j->uffd, e->dst, e->len, &e->done);
	pthread_mutex_unlock(m);
	return rc;
}

/* In order, stopping at the first extent that does not settle (fill.h's batch contract). */
static void run_job(struct fill_pool *p, unsigned idx, struct fill_job *j)
{
	j->stale = false;
	for (uint32_t k = 0; k < j->n; k++) {
		j->ext[k].done = 0;
		j->ext[k].result = -EAGAIN;
	}
	for (uint32_t i = 0; i < j->n; i++) {
		j->ext[i].result = install_one(p, idx, j, &j->ext[i]);
		if (j->ext[i].result)
			break;
	}
}

void fill_pool_kick(struct fill_pool *p)
{
	uint64_t one = 1;
	ssize_t wr = write(p->efd, &one, sizeof(one));

	(void)wr; /* fails only when the count is about to overflow: readable then anyway */
}

static void *worker(void *arg)
{
	struct fill_worker *w = arg;
	struct fill_pool *p = w->p;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (!p->queue && !p->stop)
			pthread_cond_wait(&p->more, &p->mu);
		struct fill_job *j = p->queue;
		if (!j) { /* stopping, and nothing queued */
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		p->queue = j->next;
		if (!p->queue)
			p->queue_tail = &p->queue;
		pthread_mutex_unlock(&p->mu);

		run_job(p, w->idx, j);

		pthread_mutex_lock(&p->mu);
		j->next = p->done;
		p->done = j;
		pthread_mutex_unlock(&p->mu);
		fill_pool_kick(p);
	}
}

int fill_pool_new(struct fill_pool **out, const struct filler *f, unsigned n,
		  const struct fill_fence *fence)
{
	struct fill_pool *p;
	int rc;

	*out = NULL;
	if (!n || n > FILL_POOL_MAX || !f->ops || !fence->locks || !fence->owner || !fence->gen ||
	    !fence->readers)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->f = *f;
	p->fence = *fence;
	p->queue_tail = &p->queue;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		rc = -errno;
		free(p);
		return rc;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->more, NULL);
	for (unsigned i = 0; i < n; i++) {
		p->w[i].p = p;
		p->w[i].idx = i;
		rc = pthread_create(&p->w[i].th, NULL, worker, &p->w[i]);
		if (rc) {
			p->n = i;
			fill_pool_free(p);
			return -rc;
		}
		p->n = i + 1;
	}
	*out = p;
	return 0;
}

void fill_pool_submit(struct fill_pool *p, struct fill_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&p->mu);
	*p->queue_tail = j;
	p->queue_tail = &j->next;
	pthread_cond_signal(&p->more);
	pthread_mutex_unlock(&p->mu);
}

struct fill_job *fill_pool_reap(struct fill_pool *p)
{
	uint64_t cnt;

	pthread_mutex_lock(&p->mu);
	struct fill_job *j = p->done;
	if (j)
		p->done = j->next;
	/* The count is read (cleared) only once nothing is left to reap: never a job missed. */
	if (!p->done) {
		ssize_t rd = read(p->efd, &cnt, sizeof(cnt));
		(void)rd;
	}
	pthread_mutex_unlock(&p->mu);
	return j;
}

int fill_pool_fd(const struct fill_pool *p)
{
	return p->efd;
}

void fill_pool_wait(struct fill_pool *p, int ms)
{
	struct pollfd pf = {.fd = p->efd, .events = POLLIN};

	if (poll(&pf, 1, ms) < 0 && errno != EINTR)
		usleep(1000);
}

void fill_pool_free(struct fill_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->w[i].th, NULL);
	pthread_cond_destroy(&p->more);
	pthread_mutex_destroy(&p->mu);
	close(p->efd);
	free(p);
}

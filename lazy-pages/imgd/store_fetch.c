/*
 * Read-ahead for images of the store: a few threads, each with its own libcurl handle, fetch
 * the chunks after the one a restore reads, verify them and put them in the chunk cache, so
 * that the event loop finds the stream's next chunks in memory instead of waiting for one GET
 * after another. The loop never waits for a fetch it did not need: a chunk it needs that is
 * being fetched is waited for (once fetched it is in the cache), any other is fetched by the
 * loop itself as without read-ahead (and a read-ahead that failed is fetched again there, so
 * that the error, if it stays, is the loop's to report).
 *
 * A chunk the loop needs that is still queued (no thread took it yet) is taken out of the
 * queue and fetched by the loop at once, not after the jobs queued before it.
 *
 * One mutex (st->ra.mu) guards the cache, the queue and the counters the threads add to; a
 * job carries everything it needs (keys, length, checksum), never a pointer to a manifest
 * that may be freed meanwhile. Threads start on the first read (after criu-imgd detached:
 * threads do not survive the fork) and stop in store_free.
 */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util/log.h"

/* Whether a thread is fetching ckey now. */
static bool running(const struct store_fetch *f, const char *ckey)
{
	for (unsigned i = 0; i < STORE_RA_THREADS; i++)
		if (f->busy[i] && !strcmp(f->cur[i], ckey))
			return true;
	return false;
}

/* Where ckey waits in the queue (0 = next), or -1. */
static int queued(const struct store_fetch *f, const char *ckey)
{
	for (unsigned i = 0; i < f->nq; i++)
		if (!strcmp(f->q[(f->qh + i) % STORE_RA_QUEUE].ckey, ckey))
			return (int)i;
	return -1;
}

static bool inflight(const struct store_fetch *f, const char *ckey)
{
	return queued(f, ckey) >= 0 || running(f, ckey);
}

bool store_fetch_unqueue(struct store_fetch *f, const char *ckey)
{
	int at = queued(f, ckey);

	if (at < 0)
		return false;
	for (unsigned i = (unsigned)at; i + 1 < f->nq; i++)
		f->q[(f->qh + i) % STORE_RA_QUEUE] = f->q[(f->qh + i + 1) % STORE_RA_QUEUE];
	f->nq--;
	return true;
}

/* One job, by thread i, the lock not held. */
static void run_job(struct imgd_store *st, unsigned i, const struct store_job *j)
{
	struct store_fetch *f = &st->ra;
	uint8_t *buf = malloc(j->len ? j->len : 1);
	struct errmsg e;
	int rc = buf ? store_be_get(&f->be[i], j->okey, 0, j->len, buf, j->len, NULL, &e) : -ENOMEM;
	bool bad = !rc && XXH64(buf, j->len, 0) != j->csum;

	pthread_mutex_lock(&f->mu);
	st->chunk_reads++;
	f->gets++;
	f->get_bytes += rc ? 0 : j->len;
	if (rc || bad) {
		/* The loop fetches it again if it needs it, and reports what fails then. */
		f->failed++;
		pr_debug("store: read-ahead of %s: %s", j->okey,
			 bad		 ? "checksum mismatch"
			 : rc == -ENOMEM ? "out of memory"
					 : e.msg);
		free(buf);
	} else {
		store_cache_put(&st->cache, j->ckey, buf, j->len);
		f->fetched++;
	}
	f->busy[i] = false;
	pthread_cond_broadcast(&f->done);
	pthread_mutex_unlock(&f->mu);
}

struct thread_arg {
	struct imgd_store *st;
	unsigned i;
};

static void *worker(void *arg)
{
	struct thread_arg *a = arg;
	struct imgd_store *st = a->st;
	struct store_fetch *f = &st->ra;
	unsigned i = a->i;
	struct store_job j;

	free(a);
	pthread_mutex_lock(&f->mu);
	for (;;) {
		while (!f->stop && !f->nq)
			pthread_cond_wait(&f->work, &f->mu);
		if (f->stop)
			break;
		j = f->q[f->qh];
		f->qh = (f->qh + 1) % STORE_RA_QUEUE;
		f->nq--;
		memcpy(f->cur[i], j.ckey, sizeof(j.ckey));
		f->busy[i] = true;
		pthread_mutex_unlock(&f->mu);
		run_job(st, i, &j);
		pthread_mutex_lock(&f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

int store_fetch_init(struct imgd_store *st)
{
	struct store_fetch *f = &st->ra;

	memset(f, 0, sizeof(*f));
	if (pthread_mutex_init(&f->mu, NULL) || pthread_cond_init(&f->work, NULL) ||
	    pthread_cond_init(&f->done, NULL))
		return -ENOMEM;
	f->inited = true;
	return 0;
}

/* The threads, once: 0, or -errno (logged; the store is then read without read-ahead). */
static int start(struct imgd_store *st)
{
	struct store_fetch *f = &st->ra;
	struct errmsg e;

	f->started = true;
	for (unsigned i = 0; i < STORE_RA_THREADS; i++) {
		struct thread_arg *a = malloc(sizeof(*a));
		int rc = a ? store_be_clone(&f->be[i], &st->be, &e) : -ENOMEM;
		if (!rc) {
			*a = (struct thread_arg){st, i};
			rc = -pthread_create(&f->th[i], NULL, worker, a);
			if (rc)
				store_be_close(&f->be[i]);
		}
		if (rc) {
			free(a);
			pr_warn("store: read-ahead thread %u: %s: reading on with %u", i,
				strerror(-rc), f->nth);
			return rc;
		}
		f->nth++;
	}
	pr_info("store: %u read-ahead threads, %u chunks ahead", f->nth, STORE_RA_CHUNKS);
	return 0;
}

void store_fetch_stop(struct imgd_store *st)
{
	struct store_fetch *f = &st->ra;

	if (!f->inited)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_broadcast(&f->work);
	pthread_mutex_unlock(&f->mu);
	for (unsigned i = 0; i < f->nth; i++) {
		pthread_join(f->th[i], NULL);
		store_be_close(&f->be[i]);
	}
	f->nth = 0;
	pthread_cond_destroy(&f->work);
	pthread_cond_destroy(&f->done);
	pthread_mutex_destroy(&f->mu);
	f->inited = false;
}

void store_fetch_ahead(struct imgd_store *st, const struct store_img *si,
		       const struct store_file *file, uint64_t k)
{
	struct store_fetch *f = &st->ra;
	/* What is fetched must live until it is read, for every reader at once: no more ahead
	 * than an eighth of the cache (64M: 2 chunks; 256M: 8). */
	uint64_t ahead = st->cache.cap / si->m.chunk / 8;

	if (!f->inited)
		return;
	if (!f->started)
		start(st);
	if (!f->nth)
		return;
	if (ahead > STORE_RA_CHUNKS)
		ahead = STORE_RA_CHUNKS;
	pthread_mutex_lock(&f->mu);
	for (uint64_t n = k + 1; n <= k + ahead && n < file->nchunks; n++) {
		struct store_job j;
		if (f->nq == STORE_RA_QUEUE)
			break;
		store_chunk_keys(si, file, n, j.ckey, j.okey);
		if (store_cache_has(&st->cache, j.ckey) || inflight(f, j.ckey))
			continue;
		j.len = store_chunk_len(&si->m, file, n);
		j.csum = file->csum[n];
		f->q[(f->qh + f->nq) % STORE_RA_QUEUE] = j;
		f->nq++;
		pthread_cond_signal(&f->work);
	}
	pthread_mutex_unlock(&f->mu);
}

bool store_fetch_wait(struct imgd_store *st, const char *ckey)
{
	struct store_fetch *f = &st->ra;
	bool waited = false;

	/* Queued but not started: ours to fetch now, not after the jobs before it. */
	if (!f->nth || store_fetch_unqueue(f, ckey))
		return false;
	while (running(f, ckey)) {
		pthread_cond_wait(&f->done, &f->mu);
		waited = true;
	}
	return waited;
}

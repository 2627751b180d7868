/*
 * fill/fill_pool.c: worker threads installing jobs under a fence, against a real userfaultfd
 * (an anonymous mapping of this process registered for missing faults).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fill/fill_pool.h"
#include "lib/uffd_area.h"

#define PG 4096ul
#define NPAGES 4096 /* 16 MB */
#define NTHREADS 4

static int uffd = -1;
static uint8_t *area, *src;
static struct filler f;
static pthread_mutex_t locks[FILL_POOL_MAX];
static volatile uint64_t gen;
static volatile int owner[FILL_POOL_MAX];
static atomic_int readers;
static struct fill_fence fence = {locks, owner, &gen, &readers};
static struct fill_pool *pool;

static void setup(void)
{
	uffd = uffd_area_open(NPAGES, &area);
	cr_assert(uffd >= 0, "userfaultfd: %s", strerror(-uffd));
	src = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(src != MAP_FAILED);
	for (size_t i = 0; i < NPAGES; i++)
		memset(src + i * PG, (int)(i * 7 + 1), PG);
	filler_uffd(&f);
	cr_assert_eq(fill_fence_init(locks, FILL_POOL_MAX, false), 0);
	gen = 0;
	atomic_init(&readers, 0);
	cr_assert_eq(fill_pool_new(&pool, &f, NTHREADS, &fence), 0);
}

static void teardown(void)
{
	fill_pool_free(pool);
	munmap(area, NPAGES * PG);
	munmap(src, NPAGES * PG);
	close(uffd);
}

TestSuite(fill_pool, .init = setup, .fini = teardown, .timeout = 30);

static bool present(size_t page)
{
	unsigned char v = 0;

	cr_assert(mincore(area + page * PG, PG, &v) == 0, "mincore: %s", strerror(errno));
	return v & 1;
}

static bool page_is(size_t page, uint8_t c)
{
	cr_assert(present(page), "page %zu read while missing", page);
	for (size_t i = 0; i < PG; i++)
		if (area[page * PG + i] != c)
			return false;
	return true;
}

/* A job of n extents of len pages each from page first on, every other one a zero extent
 * when zeros. */
static void job_of(struct fill_job *j, size_t first, uint32_t n, size_t len, bool zeros)
{
	memset(j, 0, sizeof(*j));
	j->uffd = uffd;
	j->gen = gen;
	j->n = n;
	for (uint32_t i = 0; i < n; i++) {
		size_t p = first + i * len;
		j->ext[i] = (struct fill_extent){.dst = (uintptr_t)(area + p * PG),
						 .len = len * PG,
						 .src = zeros && i % 2 ? NULL : src + p * PG};
	}
}

static struct fill_job *reap_wait(void)
{
	for (int tries = 0; tries < 200; tries++) {
		struct fill_job *j = fill_pool_reap(pool);
		if (j)
			return j;
		fill_pool_wait(pool, 50);
	}
	cr_assert_fail("no job finished within 10 s");
	return NULL;
}

Test(fill_pool, many_jobs_from_many_threads_install_every_page_once)
{
	static struct fill_job jobs[NPAGES / 64];
	size_t njobs = sizeof(jobs) / sizeof(jobs[0]);

	/* 64 jobs of 16 extents of 4 pages, odd extents zero pages, in no order the threads
	 * keep: they install concurrently into one uffd. */
	for (size_t k = 0; k < njobs; k++) {
		job_of(&jobs[k], k * 64, 16, 4, true);
		fill_pool_submit(pool, &jobs[k]);
	}
	for (size_t k = 0; k < njobs; k++) {
		struct fill_job *j = reap_wait();
		cr_assert(!j->stale);
		for (uint32_t i = 0; i < j->n; i++) {
			cr_assert_eq(j->ext[i].result, 0, "extent %u: %d", i, j->ext[i].result);
			cr_assert_eq(j->ext[i].done, 4 * PG);
		}
	}
	cr_assert_null(fill_pool_reap(pool), "no job twice");
	for (size_t p = 0; p < NPAGES; p++) {
		bool zero = (p / 4) % 2;
		cr_assert(page_is(p, zero ? 0 : (uint8_t)(p * 7 + 1)), "page %zu", p);
	}
}

Test(fill_pool, a_present_page_stops_its_extent_and_the_job)
{
	struct fill_job j;
	uint64_t done;

	/* Page 5 is in already (another install won the race). */
	cr_assert_eq(f.ops->copy(f.ctx, uffd, (uintptr_t)(area + 5 * PG), src + 5 * PG, PG, &done),
		     0);
	job_of(&j, 0, 4, 4, false); /* pages 0-3, 4-7, 8-11, 12-15 */
	fill_pool_submit(pool, &j);
	cr_assert_eq(reap_wait(), &j);
	cr_assert_eq(j.ext[0].result, 0);
	cr_assert_eq(j.ext[1].result, -EEXIST);
	cr_assert_eq(j.ext[1].done, PG, "the page before the present one went in");
	cr_assert_eq(j.ext[2].result, -EAGAIN, "not attempted");
	cr_assert_eq(j.ext[2].done, 0);
	cr_assert(!present(8) && !present(15), "nothing after the stop");
	cr_assert(page_is(4, (uint8_t)(4 * 7 + 1)) && page_is(5, (uint8_t)(5 * 7 + 1)));
}

Test(fill_pool, a_job_planned_before_an_event_installs_nothing)
{
	struct fill_job j;

	job_of(&j, 100, 8, 2, false);
	/* The reader takes every lock, reads an event, counts it, lets go. */
	cr_assert(fill_fence_hold(&fence, NTHREADS));
	gen++;
	fill_fence_release(&fence, NTHREADS);
	fill_pool_submit(pool, &j);
	cr_assert_eq(reap_wait(), &j);
	cr_assert(j.stale);
	for (uint32_t i = 0; i < j.n; i++)
		cr_assert(j.ext[i].result == -EAGAIN && !j.ext[i].done, "extent %u", i);
	for (size_t p = 100; p < 116; p++)
		cr_assert(!present(p), "page %zu installed by a stale job", p);
}

Test(fill_pool, the_threads_wait_while_the_reader_holds_the_fence)
{
	struct fill_job j;

	job_of(&j, 200, 4, 1, false);
	cr_assert(fill_fence_hold(&fence, NTHREADS));
	fill_pool_submit(pool, &j);
	usleep(100 * 1000);
	cr_assert(!present(200), "installed while the reader held the fence");
	cr_assert_null(fill_pool_reap(pool));
	/* No event was read: the job goes on as soon as the reader lets go. */
	fill_fence_release(&fence, NTHREADS);
	cr_assert_eq(reap_wait(), &j);
	cr_assert(!j.stale);
	for (size_t p = 200; p < 204; p++)
		cr_assert(page_is(p, (uint8_t)(p * 7 + 1)));
}

static int dead_role;

static void *take_and_exit(void *arg)
{
	fill_fence_take(arg, &owner[(pthread_mutex_t *)arg - locks], dead_role);
	return NULL; /* exits holding it */
}

/* Lock 0 of the fence taken by a thread of this role that exits holding it. */
static void die_holding_lock0(int role)
{
	pthread_t th;

	dead_role = role;
	cr_assert_eq(pthread_create(&th, NULL, take_and_exit, &locks[0]), 0);
	pthread_join(th, NULL);
}

/* A job on a pool of one thread (thread 0, lock 0): its result. */
static struct fill_job *one_job(struct fill_pool *one, struct fill_job *j, size_t first)
{
	struct fill_job *d = NULL;

	job_of(j, first, 2, 4, false);
	fill_pool_submit(one, j);
	for (int tries = 0; tries < 200 && !d; tries++) {
		fill_pool_wait(one, 50);
		d = fill_pool_reap(one);
	}
	cr_assert_eq(d, j, "the job came back");
	return d;
}

Test(fill_pool, a_dead_installers_lock_is_taken_over)
{
	struct fill_pool *one;
	struct fill_job j;

	cr_assert_eq(fill_pool_new(&one, &f, 1, &fence), 0);
	/* A thread of a worker that was killed (its keeper restarts it) held it. */
	die_holding_lock0(FENCE_INSTALLER);
	one_job(one, &j, 400);
	cr_assert(!j.stale && !j.ext[0].result && !j.ext[1].result, "installed");
	cr_assert(page_is(400, (uint8_t)(400 * 7 + 1)) && page_is(407, (uint8_t)(407 * 7 + 1)));
	/* And the reader's side takes it as well. */
	cr_assert(fill_fence_hold(&fence, 1));
	fill_fence_release(&fence, 1);
	fill_pool_free(one);
}

Test(fill_pool, a_reader_that_died_holding_the_fence_stops_every_install)
{
	struct fill_pool *one;
	struct fill_job j;

	/* A reader (the keeper, in criu-lazyd) dies holding lock 0, perhaps between reading an
	 * event and counting it: nothing planned can be trusted any more. */
	cr_assert_eq(fill_pool_new(&one, &f, 1, &fence), 0);
	die_holding_lock0(FENCE_READER);
	for (int k = 0; k < 3; k++) {
		size_t first = 300 + (size_t)k * 8;
		one_job(one, &j, first);
		cr_assert(j.stale, "job %d refused", k);
		for (uint32_t i = 0; i < j.n; i++)
			cr_assert(!j.ext[i].done && j.ext[i].result == -EAGAIN);
		for (size_t p = first; p < first + 8; p++)
			cr_assert(!present(p), "page %zu installed", p);
	}
	cr_assert_eq(pthread_mutex_lock(&locks[0]), ENOTRECOVERABLE,
		     "left unrecoverable, not made consistent");
	fill_pool_free(one);
}

Test(fill_pool, bad_arguments_are_refused)
{
	struct fill_pool *p = (void *)1;
	struct fill_fence none = {NULL, owner, &gen, &readers};

	cr_assert_eq(fill_pool_new(&p, &f, 0, &fence), -EINVAL);
	cr_assert_null(p);
	cr_assert_eq(fill_pool_new(&p, &f, FILL_POOL_MAX + 1, &fence), -EINVAL);
	cr_assert_eq(fill_pool_new(&p, &f, 1, &none), -EINVAL);
}

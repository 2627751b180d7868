/*
 * The worker's guard on installs (keeper.h): nothing goes in while the keeper has read an
 * uffd event the worker has not applied (-EAGAIN, as the kernel says while an event is
 * queued), everything goes in once it has; a keeper that died holding the shared lock does
 * not block the worker. Against a real userfaultfd and the real plain-uffd engine.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lazyd/lazyd.h"
#include "lib/uffd_area.h"

#define PG 4096ul
#define NPAGES 8

static int uffd = -1;
static uint8_t *area, src[PG];
static struct keeper_shm *shm;
static struct keeper_link klink;
static struct lazyd d;

static void setup(void)
{
	pthread_mutexattr_t ma;

	uffd = uffd_area_open(NPAGES, &area);
	cr_assert(uffd >= 0, "userfaultfd: %s", strerror(-uffd));
	memset(src, 0x5a, sizeof(src));
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(shm != MAP_FAILED);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	cr_assert(pthread_mutex_init(&shm->lock, &ma) == 0);
	klink = (struct keeper_link){.fd = -1, .shm = shm};
	memset(&d, 0, sizeof(d));
	d.keeper = &klink;
	filler_uffd(&d.fill);
	keeper_guard_filler(&d);
}

static void teardown(void)
{
	filler_close(&d.fill);
	munmap(shm, sizeof(*shm));
	munmap(area, NPAGES * PG);
	close(uffd);
}

TestSuite(keeper, .init = setup, .fini = teardown, .timeout = 20);

static int copy(int page, uint64_t *done)
{
	return d.fill.ops->copy(d.fill.ctx, uffd, (uintptr_t)area + page * PG, src, PG, done);
}

Test(keeper, stale_install_refused_then_allowed)
{
	uint64_t done = 1;

	shm->events_read = 2; /* the keeper read two events the worker has not applied */
	klink.events_seen = 1;
	cr_expect_eq(copy(0, &done), -EAGAIN);
	cr_expect_eq(done, 0);
	uint64_t zdone = 1;
	cr_expect_eq(d.fill.ops->zero(d.fill.ctx, uffd, (uintptr_t)area + PG, PG, &zdone), -EAGAIN);
	cr_expect_eq(zdone, 0);
	/* Nothing went in: with the events applied the same pages install (no EEXIST). */
	klink.events_seen = 2;
	cr_expect_eq(copy(0, &done), 0);
	cr_expect_eq(done, PG);
	cr_expect_eq(d.fill.ops->zero(d.fill.ctx, uffd, (uintptr_t)area + PG, PG, &zdone), 0);
	cr_expect_eq(area[0], 0x5a);
	cr_expect_eq(area[PG + 7], 0);
}

Test(keeper, stale_batch_attempts_nothing)
{
	struct fill_extent ext[2] = {{.dst = (uintptr_t)area + 2 * PG, .len = PG, .src = src},
				     {.dst = (uintptr_t)area + 3 * PG, .len = PG, .src = NULL}};
	uint32_t first = 9;

	shm->events_read = 1;
	klink.events_seen = 0;
	cr_expect_eq(filler_batch(&d.fill, uffd, ext, 2, &first), -EAGAIN);
	cr_expect_eq(first, 0);
	cr_expect_eq(ext[0].done + ext[1].done, 0);
	klink.events_seen = 1;
	cr_expect_eq(filler_batch(&d.fill, uffd, ext, 2, &first), 0);
	cr_expect_eq(first, 2);
	cr_expect_eq(area[2 * PG], 0x5a);
}

Test(keeper, lock_of_a_dead_worker_is_taken_over)
{
	uint64_t done;
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		fill_fence_take(&shm->lock, &shm->lock_owner, FENCE_INSTALLER);
		_exit(0); /* a worker killed mid-install: the next one goes on */
	}
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	cr_expect_eq(copy(4, &done), 0, "a lock whose installer died must not stop installs");
	cr_expect_eq(area[4 * PG], 0x5a);
	cr_expect_eq(pthread_mutex_trylock(&shm->lock), 0, "and it is left consistent, unlocked");
	pthread_mutex_unlock(&shm->lock);
}

Test(keeper, lock_of_a_dead_keeper_refuses_every_install)
{
	uint64_t done = 1;
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		fill_fence_take(&shm->lock, &shm->lock_owner, FENCE_READER);
		_exit(0); /* dies holding it, perhaps between reading an event and counting it */
	}
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	/* The worker kills the tasks when it hears the keeper is gone; until then nothing
	 * goes in on a count that may be wrong. */
	cr_expect_eq(copy(4, &done), -EAGAIN, "an install under a dead keeper's lock");
	cr_expect_eq(done, 0);
	cr_expect_eq(copy(4, &done), -EAGAIN, "and every one after it");
	cr_expect_eq(pthread_mutex_trylock(&shm->lock), ENOTRECOVERABLE,
		     "the lock is left unrecoverable");
}

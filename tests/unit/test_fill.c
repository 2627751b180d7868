/*
 * fill/: the plain userfaultfd engine and the filler_*() wrappers, against a real
 * userfaultfd (an anonymous mapping of this process registered for missing faults).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fill/fill.h"
#include "lib/uffd_area.h"

#define PG 4096ul
#define NPAGES 16

static int uffd = -1;
static uint8_t *area;  /* NPAGES pages, registered with uffd (missing faults) */
static uint8_t *other; /* NPAGES pages, not registered */
static uint8_t *src;   /* NPAGES pages of data: page i is all 'a' + i */
static struct filler f;

static void setup(void)
{
	uffd = uffd_area_open(NPAGES, &area);
	cr_assert(uffd >= 0, "userfaultfd: %s", strerror(-uffd));
	other = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(other != MAP_FAILED && src != MAP_FAILED);
	for (int i = 0; i < NPAGES; i++)
		memset(src + i * PG, 'a' + i, PG);
	filler_uffd(&f);
}

static void teardown(void)
{
	filler_close(&f);
	munmap(area, NPAGES * PG);
	munmap(other, NPAGES * PG);
	munmap(src, NPAGES * PG);
	close(uffd);
}

TestSuite(fill, .init = setup, .fini = teardown, .timeout = 20);

static uint64_t at(int page)
{
	return (uintptr_t)area + page * PG;
}

static bool present(int page)
{
	int rc = uffd_page_present(area + page * PG);

	cr_assert(rc >= 0, "mincore: %s", strerror(-rc));
	return rc;
}

/* Page i of area holds c throughout (a missing page fails the test: reading it faults). */
static bool page_is(int page, uint8_t c)
{
	int rc = uffd_page_is(area + page * PG, c);

	cr_assert(rc >= 0, "page %d read while missing", page);
	return rc;
}

Test(fill, copy_installs_the_data)
{
	uint64_t done = 1;

	cr_assert_str_eq(f.ops->name, "uffd");
	cr_assert_eq(f.ops->copy(f.ctx, uffd, at(2), src + 2 * PG, 3 * PG, &done), 0);
	cr_assert_eq(done, 3 * PG);
	for (int i = 2; i < 5; i++)
		cr_assert(page_is(i, 'a' + i), "page %d", i);
	cr_assert(!present(1) && !present(5), "only the range is installed");
}

Test(fill, zero_installs_zero_pages)
{
	uint64_t done = 1;

	cr_assert_eq(f.ops->zero(f.ctx, uffd, at(7), 2 * PG, &done), 0);
	cr_assert_eq(done, 2 * PG);
	cr_assert(page_is(7, 0) && page_is(8, 0));
	cr_assert(!present(6) && !present(9));
}

Test(fill, present_page_stops_a_copy_with_eexist_and_the_prefix)
{
	uint64_t done = 0;

	memset(src + 3 * PG, 'X', PG);
	cr_assert_eq(f.ops->copy(f.ctx, uffd, at(3), src + 3 * PG, PG, &done), 0);
	memset(src + 3 * PG, 'a' + 3, PG);
	/* pages 0..5: 0, 1, 2 go in, 3 is there already */
	cr_assert_eq(f.ops->copy(f.ctx, uffd, at(0), src, 6 * PG, &done), -EEXIST);
	cr_assert_eq(done, 3 * PG, "done reports the prefix: %lu", (unsigned long)done);
	for (int i = 0; i < 3; i++)
		cr_assert(page_is(i, 'a' + i));
	cr_assert(page_is(3, 'X'), "a present page is never overwritten");
	cr_assert(!present(4) && !present(5));
	/* zero pages stop the same way */
	cr_assert_eq(f.ops->zero(f.ctx, uffd, at(2), 2 * PG, &done), -EEXIST);
	cr_assert_eq(done, 0);
}

Test(fill, outside_the_registered_range_is_enoent)
{
	uint64_t done = 1;
	void *gone = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert(gone != MAP_FAILED);
	munmap(gone, PG);
	cr_assert_eq(f.ops->copy(f.ctx, uffd, (uintptr_t)other, src, PG, &done), -ENOENT);
	cr_assert_eq(done, 0);
	cr_assert_eq(f.ops->zero(f.ctx, uffd, (uintptr_t)other + PG, PG, &done), -ENOENT);
	cr_assert_eq(f.ops->copy(f.ctx, uffd, (uintptr_t)gone, src, PG, &done), -ENOENT);
	/* and through the batch wrapper */
	struct fill_extent e = {.dst = (uintptr_t)other, .len = PG, .src = src};
	uint32_t first = 99;
	cr_assert_eq(filler_batch(&f, uffd, &e, 1, &first), -ENOENT);
	cr_assert_eq(first, 0);
	cr_assert_eq(e.result, -ENOENT);
	cr_assert_eq(e.done, 0);
}

Test(fill, batch_installs_every_extent)
{
	struct fill_extent e[] = {
	    {.dst = at(0), .len = 2 * PG, .src = src},
	    {.dst = at(4), .len = PG, .src = NULL},
	    {.dst = at(9), .len = 3 * PG, .src = src + 9 * PG},
	};
	uint32_t first = 0;

	for (int i = 0; i < 3; i++)
		e[i].result = 12345;
	cr_assert_eq(filler_batch(&f, uffd, e, 3, &first), 0);
	cr_assert_eq(first, 3, "first = n when all settled");
	cr_assert_eq(e[0].done, 2 * PG);
	cr_assert_eq(e[1].done, PG);
	cr_assert_eq(e[2].done, 3 * PG);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(e[i].result, 0);
	cr_assert(page_is(0, 'a') && page_is(1, 'b') && page_is(4, 0));
	for (int i = 9; i < 12; i++)
		cr_assert(page_is(i, 'a' + i));
	cr_assert(!present(2) && !present(3) && !present(5) && !present(8) && !present(12));
}

Test(fill, batch_stops_at_the_extent_that_hits_a_present_page)
{
	struct fill_extent e[] = {
	    {.dst = at(0), .len = 2 * PG, .src = src},		/* installed */
	    {.dst = at(2), .len = PG, .src = NULL},		/* installed (zero) */
	    {.dst = at(4), .len = 4 * PG, .src = src + 4 * PG}, /* 4, 5 in; 6 present */
	    {.dst = at(9), .len = PG, .src = src + 9 * PG},	/* not touched */
	    {.dst = at(10), .len = PG, .src = NULL},		/* not touched */
	};
	uint64_t done;
	uint32_t first = 99;

	memset(src + 6 * PG, 'X', PG);
	cr_assert_eq(f.ops->copy(f.ctx, uffd, at(6), src + 6 * PG, PG, &done), 0);
	memset(src + 6 * PG, 'a' + 6, PG);
	for (int i = 0; i < 5; i++) {
		e[i].done = 777;
		e[i].result = 12345;
	}

	cr_assert_eq(filler_batch(&f, uffd, e, 5, &first), -EEXIST);
	cr_assert_eq(first, 2);
	cr_assert_eq(e[0].result, 0);
	cr_assert_eq(e[0].done, 2 * PG);
	cr_assert_eq(e[1].result, 0);
	cr_assert_eq(e[1].done, PG);
	cr_assert_eq(e[2].result, -EEXIST);
	cr_assert_eq(e[2].done, 2 * PG, "the prefix before the present page");
	for (int i = 3; i < 5; i++) {
		cr_assert_eq(e[i].done, 0, "extent %d", i);
		cr_assert_eq(e[i].result, -EAGAIN, "extent %d: not attempted", i);
	}
	cr_assert(page_is(0, 'a') && page_is(1, 'b') && page_is(2, 0));
	cr_assert(page_is(4, 'a' + 4) && page_is(5, 'a' + 5));
	cr_assert(page_is(6, 'X'), "a present page is never overwritten");
	cr_assert(!present(7), "the rest of the stopped extent is not installed");
	cr_assert(!present(9) && !present(10), "later extents are not touched");
}

Test(fill, empty_batch)
{
	uint32_t first = 99;

	cr_assert_eq(filler_batch(&f, uffd, NULL, 0, &first), 0);
	cr_assert_eq(first, 0);
}

struct reader {
	const volatile uint8_t *p;
	uint8_t got;
};

static void *read_page(void *arg)
{
	struct reader *r = arg;

	r->got = *r->p; /* faults: blocks until the page is installed and the waiter woken */
	return NULL;
}

Test(fill, batch_wakes_the_waiting_thread)
{
	struct reader r = {.p = area + 5 * PG + 100};
	struct pollfd pfd = {.fd = uffd, .events = POLLIN};
	struct uffd_msg msg;
	struct fill_extent e = {.dst = at(5), .len = PG, .src = src + 5 * PG};
	uint32_t first = 99;
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, read_page, &r), 0);
	cr_assert_eq(poll(&pfd, 1, 10000), 1, "no fault message");
	cr_assert_eq(read(uffd, &msg, sizeof(msg)), (ssize_t)sizeof(msg));
	cr_assert_eq(msg.event, UFFD_EVENT_PAGEFAULT);
	cr_assert_eq(msg.arg.pagefault.address & ~(PG - 1), at(5));
	cr_assert_eq(filler_batch(&f, uffd, &e, 1, &first), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(r.got, 'a' + 5);
}

Test(fill, plain_engine_has_no_binding_and_no_counters)
{
	struct fill_stats st;
	uint64_t done;

	cr_assert_eq(filler_attach(&f, uffd, getpid(), -1, false), 0);
	cr_assert_eq(filler_attach(&f, uffd, getpid(), -1, true), 0);
	cr_assert_eq(f.ops->copy(f.ctx, uffd, at(0), src, PG, &done), 0);
	memset(&st, 0xff, sizeof(st));
	filler_stats(&f, &st);
	cr_assert_eq(st.batches, 0);
	cr_assert_eq(st.batch_bytes, 0);
	cr_assert_eq(st.plain_calls, 0);
	cr_assert_eq(st.sessions, 0);
	cr_assert_eq(st.attach_failed, 0);
	cr_assert_eq(st.dropped, 0);
	filler_detach(&f, uffd);
	/* detach leaves the uffd usable */
	cr_assert_eq(f.ops->copy(f.ctx, uffd, at(1), src + PG, PG, &done), 0);
	filler_close(&f);
	cr_assert_null(f.ops);
	cr_assert_null(f.ctx);
	filler_close(&f); /* twice is harmless */
	memset(&st, 0xff, sizeof(st));
	filler_stats(&f, &st); /* a closed filler reads zeros */
	cr_assert_eq(st.batches, 0);
	cr_assert_eq(st.sessions, 0);
}

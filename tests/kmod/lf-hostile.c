/*
 * lf-hostile: hostile arguments to /dev/lazyfill get an error (the right
 * one, with the right index), and a refused batch installs nothing; then a
 * fuzz loop of random arguments (lf-hostile [CALLS], default 100000).
 *
 * This process is its own "task": it registers a region with a uffd and
 * never touches it, so installs into it block nobody.
 */
#include "kt/kt.h"

/* The BATCH() and BIND() helpers override their defaults on purpose. */
#pragma GCC diagnostic ignored "-Woverride-init"
#pragma GCC diagnostic ignored "-Woverride-init-side-effects"

#include <pthread.h>
#include <signal.h>

#define REG_PAGES 512

static char *reg;   /* registered MISSING */
static char *wreg;  /* registered MISSING | WP */
static char *plain; /* not registered */
static char *src;   /* page data */
static char *ro;    /* a read-only page */
static char *zbuf;  /* zero buffer */
static int uffd, sfd;

struct lazyfill_extent ext[LAZYFILL_MAX_EXTENTS + 8];

static struct lazyfill_extent copy_ext(void *dst, size_t len)
{
	return (struct lazyfill_extent){.dst = (uint64_t)(uintptr_t)dst,
					.len = len,
					.src = (uint64_t)(uintptr_t)src,
					.mode = LAZYFILL_MODE_COPY};
}

/*
 * A batch whose extents 0..bad-1 are good (distinct pages of reg) and whose
 * extent bad is e: refused with err and index bad, nothing installed.
 */
static void expect_refused(const char *what, struct lazyfill_extent e, uint32_t bad, int err,
			   uint32_t n)
{
	struct lazyfill_batch h;

	madvise(reg, REG_PAGES * PG, MADV_DONTNEED);
	for (uint32_t i = 0; i < n; i++)
		ext[i] = copy_ext(reg + (size_t)(i * 2) * PG, PG);
	ext[bad] = e;
	int rc = kt_fill(sfd, ext, n, 0, zbuf, PG, &h);
	CHECK(rc == -err, "%s: rc %d (%s), want %d", what, rc, strerror(-rc), -err);
	CHECK(h.index == bad, "%s: index %u, want %u", what, h.index, bad);
	CHECK(h.bytes == 0 && h.settled == 0, "%s: bytes %llu settled %u", what,
	      (unsigned long long)h.bytes, h.settled);
	CHECK(kt_resident(reg, REG_PAGES * PG) == 0, "%s: %zu pages installed", what,
	      kt_resident(reg, REG_PAGES * PG));
}

static void header_cases(void)
{
	struct lazyfill_batch b, h;
	uint64_t scratch[8];
	int rc;

	ext[0] = copy_ext(reg, PG);
#define BATCH(...)                                                                                 \
	(b = (struct lazyfill_batch){.version = LAZYFILL_UAPI_VERSION,                             \
				     .count = 1,                                                   \
				     .extents = (uint64_t)(uintptr_t)ext,                          \
				     .scratch = (uint64_t)(uintptr_t)scratch,                      \
				     __VA_ARGS__})
#define FILL_RC(bp) (ioctl(sfd, LAZYFILL_IOC_FILL, bp) ? -errno : 0)
	BATCH(.version = 2);
	CHECK(FILL_RC(&b) == -EINVAL, "version 2");
	BATCH(.flags = 1u << 7);
	CHECK(FILL_RC(&b) == -EINVAL, "unknown flag");
	BATCH(.reserved = {0, 0, 1, 0});
	CHECK(FILL_RC(&b) == -EINVAL, "reserved");
	BATCH(.count = 0);
	CHECK(FILL_RC(&b) == -EINVAL, "count 0");
	BATCH(.count = LAZYFILL_MAX_EXTENTS + 1);
	rc = FILL_RC(&b);
	CHECK(rc == -E2BIG && b.index == LAZYFILL_MAX_EXTENTS, "count max+1: %d index %u", rc,
	      b.index);
	BATCH(.count = 0xffffffffu);
	CHECK(FILL_RC(&b) == -E2BIG, "count ~0");
	BATCH(.extents = 0);
	CHECK(FILL_RC(&b) == -EINVAL, "extents NULL");
	BATCH(.extents = 0xffff888000000000ull);
	CHECK(FILL_RC(&b) == -EFAULT, "extents kernel address");
	BATCH(.extents = (uint64_t)(uintptr_t)plain + 3 * PG + 8); /* mapped, zeros: bad mode */
	rc = FILL_RC(&b);
	CHECK(rc == -EINVAL, "extents of zeros: %d", rc);
	BATCH(.scratch = 0);
	CHECK(FILL_RC(&b) == -EINVAL, "scratch NULL");
	BATCH(.scratch = (uint64_t)(uintptr_t)scratch + 1);
	CHECK(FILL_RC(&b) == -EINVAL, "scratch unaligned");
	BATCH(.scratch = 0xffffffffff600000ull);
	CHECK(FILL_RC(&b) == -EFAULT, "scratch kernel");
	BATCH(.zero_buf = (uint64_t)(uintptr_t)zbuf);
	CHECK(FILL_RC(&b) == -EINVAL, "zero_buf without zero_len");
	BATCH(.zero_buf = (uint64_t)(uintptr_t)zbuf + 16, .zero_len = PG);
	CHECK(FILL_RC(&b) == -EINVAL, "zero_buf unaligned");
	CHECK(ioctl(sfd, LAZYFILL_IOC_FILL, NULL) && errno == EFAULT, "batch NULL");
	CHECK(ioctl(sfd, LAZYFILL_IOC_FILL, (void *)0xffff888000000000ull) && errno == EFAULT,
	      "batch kernel");
	CHECK(ioctl(sfd, _IO(LAZYFILL_IOC_MAGIC, 0x55), 0) && errno == ENOTTY, "unknown ioctl");

	/* Unwritable results: refused before anything is installed. */
	madvise(reg, REG_PAGES * PG, MADV_DONTNEED);
	memcpy(ro - PG, &ext[0], sizeof(ext[0])); /* the page before ro is writable */
	mprotect(ro - PG, PG, PROT_READ);
	BATCH(.extents = (uint64_t)(uintptr_t)(ro - PG));
	rc = FILL_RC(&b);
	CHECK(rc == -EFAULT, "read-only extents: %d", rc);
	mprotect(ro - PG, PG, PROT_READ | PROT_WRITE);
	BATCH(.scratch = (uint64_t)(uintptr_t)ro);
	rc = FILL_RC(&b);
	CHECK(rc == -EFAULT, "read-only scratch: %d", rc);
	CHECK(kt_resident(reg, REG_PAGES * PG) == 0, "installed despite EFAULT");
	(void)h;
}

static void extent_cases(void)
{
	struct lazyfill_extent e;

	e = copy_ext(reg + 1, PG);
	expect_refused("unaligned dst", e, 3, EINVAL, 8);
	e = copy_ext(reg + 40 * PG, PG + 1);
	expect_refused("unaligned len", e, 3, EINVAL, 8);
	e = copy_ext(reg + 40 * PG, 0);
	expect_refused("zero len", e, 0, EINVAL, 8);
	e = copy_ext(reg + 40 * PG, PG);
	e.src += 8;
	expect_refused("unaligned src", e, 5, EINVAL, 8);
	e = copy_ext(reg + 40 * PG, PG);
	e.src = 0xffff888000000000ull;
	expect_refused("kernel src", e, 5, EFAULT, 8);
	e = copy_ext(reg + 40 * PG, PG);
	e.mode = 7;
	expect_refused("bad mode", e, 2, EINVAL, 8);
	e = copy_ext(reg + 40 * PG, PG);
	e.flags = 0x10;
	expect_refused("bad flags", e, 2, EINVAL, 8);
	e = copy_ext(reg + 40 * PG, PG);
	e.reserved = 1;
	expect_refused("reserved", e, 7, EINVAL, 8);
	e = (struct lazyfill_extent){
	    .dst = (uint64_t)(uintptr_t)reg + 40 * PG, .len = PG, .src = 1, .mode = 2};
	expect_refused("zero with src", e, 1, EINVAL, 8);
	e = copy_ext((void *)0xfffffffffffff000ull, PG);
	expect_refused("dst beyond TASK_SIZE", e, 1, EINVAL, 8);
	e = copy_ext((void *)0xfffffffffffff000ull, 2 * PG);
	expect_refused("dst wraps", e, 1, EINVAL, 8);
	e = copy_ext(reg + 40 * PG, 1ull << 40);
	expect_refused("huge len", e, 4, E2BIG, 8);
	/* Overlap: extent 6 overlaps extent 2 (page 4). */
	e = copy_ext(reg + 3 * PG, 2 * PG);
	expect_refused("overlap", e, 6, EINVAL, 8);
	e = copy_ext(reg + 14 * PG, PG); /* the same page as extent 7: 7 is the bad one */
	{
		struct lazyfill_batch h;

		for (uint32_t i = 0; i < 8; i++)
			ext[i] = copy_ext(reg + (size_t)(i * 2) * PG, PG);
		ext[3] = e;
		int rc = kt_fill(sfd, ext, 8, 0, NULL, 0, &h);
		CHECK(rc == -EINVAL && h.index == 7, "duplicate: %d index %u", rc, h.index);
		CHECK(kt_resident(reg, REG_PAGES * PG) == 0, "duplicate: installed");
	}
	/* Out of every VMA, across a VMA end, unregistered. */
	e = copy_ext((void *)0x10000, PG);
	expect_refused("unmapped dst", e, 2, ENOENT, 8);
	e = copy_ext(reg + (REG_PAGES - 1) * PG, 2 * PG);
	expect_refused("across the VMA end", e, 2, ENOENT, 8);
	e = copy_ext(plain, PG);
	expect_refused("unregistered VMA", e, 4, EPERM, 8);
	e = copy_ext(reg + 40 * PG, PG);
	e.flags = LAZYFILL_EXT_WP;
	expect_refused("WP on a VMA not registered for WP", e, 4, EPERM, 8);
	e = (struct lazyfill_extent){
	    .dst = (uint64_t)(uintptr_t)wreg, .len = PG, .mode = 2, .flags = LAZYFILL_EXT_WP};
	{
		struct lazyfill_batch h;
		uint64_t scratch[8];
		struct lazyfill_batch b = {.version = LAZYFILL_UAPI_VERSION,
					   .count = 1,
					   .extents = (uint64_t)(uintptr_t)&e,
					   .scratch = (uint64_t)(uintptr_t)scratch};
		CHECK(ioctl(sfd, LAZYFILL_IOC_FILL, &b) && errno == EINVAL,
		      "zero+WP without a zero buffer");
		int rc = kt_fill(sfd, &e, 1, 0, zbuf, PG, &h);
		CHECK(rc == 0 && e.status == LAZYFILL_ST_DONE, "zero+WP: %d status %u", rc,
		      e.status);
		/* Read it only if it is there: a missing page would block here. */
		if (rc == 0 && e.status == LAZYFILL_ST_DONE)
			CHECK(((volatile char *)wreg)[100] == 0, "zero+WP page not zero");
	}
	/* Too many bytes in all. */
	{
		struct lazyfill_batch h;
		uint32_t n = 8;

		for (uint32_t i = 0; i < n; i++)
			ext[i] = copy_ext(reg + (size_t)i * PG, PG);
		ext[5].len = LAZYFILL_MAX_BYTES; /* alone it is fine, with the others too much */
		ext[5].dst = 0x100000000000ull;
		int rc = kt_fill(sfd, ext, n, 0, NULL, 0, &h);
		CHECK(rc == -E2BIG && h.index == 5, "total bytes: %d index %u", rc, h.index);
	}
	/* A good batch after all that. */
	{
		struct lazyfill_batch h;

		madvise(reg, REG_PAGES * PG, MADV_DONTNEED);
		for (uint32_t i = 0; i < 8; i++)
			ext[i] = copy_ext(reg + (size_t)(i * 2) * PG, PG);
		int rc = kt_fill(sfd, ext, 8, 0, NULL, 0, &h);
		CHECK(rc == 0 && h.settled == 8 && h.bytes == 8 * PG, "good batch: %d", rc);
		CHECK(kt_resident(reg, REG_PAGES * PG) == 8, "good batch resident %zu",
		      kt_resident(reg, REG_PAGES * PG));
		/* Adjacent extents wake as one range: 0,2,...,14 are not adjacent. */
		CHECK(h.wakes == 8, "wakes %u", h.wakes);
		for (uint32_t i = 0; i < 4; i++)
			ext[i] = copy_ext(reg + (size_t)(100 + i) * PG, PG);
		rc = kt_fill(sfd, ext, 4, 0, NULL, 0, &h);
		CHECK(rc == 0 && h.wakes == 1, "adjacent extents: %d wakes %u", rc, h.wakes);
	}
}

static int tid_stop;

static void *tid_thread(void *arg)
{
	__atomic_store_n((pid_t *)arg, gettid(), __ATOMIC_RELEASE);
	while (!__atomic_load_n(&tid_stop, __ATOMIC_ACQUIRE))
		usleep(1000);
	return NULL;
}

static void bind_cases(void)
{
	struct lazyfill_bind b;
	int fd = kt_open_dev(), p[2], rc;
	uint64_t scratch[8];
	struct lazyfill_batch fb = {.version = LAZYFILL_UAPI_VERSION,
				    .count = 1,
				    .extents = (uint64_t)(uintptr_t)ext,
				    .scratch = (uint64_t)(uintptr_t)scratch};

	ext[0] = copy_ext(reg, PG);
	CHECK(ioctl(fd, LAZYFILL_IOC_FILL, &fb) && errno == ENOTCONN, "fill before bind");
	if (pipe(p))
		die("pipe");
#define BIND(...)                                                                                  \
	(b = (struct lazyfill_bind){.version = LAZYFILL_UAPI_VERSION,                              \
				    .uffd = uffd,                                                  \
				    .pidfd = -1,                                                   \
				    .pid = getpid(),                                               \
				    __VA_ARGS__},                                                  \
	 ioctl(fd, LAZYFILL_IOC_BIND, &b) ? -errno : 0)
	CHECK(BIND(.version = 0) == -EINVAL, "bind version 0");
	CHECK(BIND(.flags = 2) == -EINVAL, "bind unknown flags");
	CHECK(BIND(.reserved = {1, 0}) == -EINVAL, "bind reserved");
	CHECK(BIND(.pid = 0) == -EINVAL, "bind no pid");
	CHECK(BIND(.pidfd = -5) == -EINVAL, "bind pidfd -5");
	CHECK(BIND(.uffd = p[0]) == -EINVAL, "bind a pipe as uffd");
	CHECK(BIND(.uffd = 999) == -EBADF, "bind closed fd");
	CHECK(BIND(.uffd = -1) == -EBADF, "bind fd -1");
	CHECK(BIND(.pid = 0x3fffffff) == -ESRCH, "bind no such pid");
	CHECK(BIND(.pidfd = p[1], .pid = 0) == -EINVAL, "bind a pipe as pidfd");
	CHECK(BIND(.pidfd = uffd, .pid = 0) == -EINVAL, "bind the uffd as pidfd");
	CHECK(ioctl(fd, LAZYFILL_IOC_BIND, NULL) && errno == EFAULT, "bind NULL");
	/* A thread's id is not a process: sessions are per thread group. */
	{
		pthread_t th;
		pid_t tid = 0;

		pthread_create(&th, NULL, tid_thread, &tid);
		while (!__atomic_load_n(&tid, __ATOMIC_ACQUIRE))
			usleep(1000);
		rc = BIND(.pid = tid);
		CHECK(rc == -ESRCH, "bind a thread id: %d", rc);
		__atomic_store_n(&tid_stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
	}
	/*
	 * Wrong task: a child that has no VMA registered with our uffd. CRIU
	 * hands uffds over before registering, so the bind itself succeeds;
	 * every fill is refused with EPERM, whatever is or is not mapped at
	 * the destination in that task (nothing to learn about it).
	 */
	pid_t c = fork();
	if (!c) {
		pause();
		_exit(0);
	}
	int pidfd = (int)syscall(SYS_pidfd_open, c, 0);
	for (int how = 0; how < 3; how++) {
		int f2 = kt_open_dev();
		struct lazyfill_batch h;
		int u = how == 2 ? kt_uffd(0) : uffd; /* 2: a uffd with nothing registered */

		madvise(reg, REG_PAGES * PG, MADV_DONTNEED);

		b = (struct lazyfill_bind){.version = LAZYFILL_UAPI_VERSION,
					   .uffd = u,
					   .pidfd = how == 1 ? pidfd : -1,
					   .pid = how == 1 ? 0 : (how == 2 ? getpid() : c)};
		b.flags = LAZYFILL_BIND_VERIFY;
		rc = ioctl(f2, LAZYFILL_IOC_BIND, &b) ? -errno : 0;
		CHECK(rc == -EPERM, "verified bind (%d) to a task the uffd is not of: %d", how, rc);
		b.flags = 0;
		rc = ioctl(f2, LAZYFILL_IOC_BIND, &b) ? -errno : 0;
		CHECK(rc == 0, "bind (%d) to a task the uffd is not of: %d", how, rc);
		void *dsts[3] = {reg, (void *)0x10000, plain};
		for (int k = 0; k < 3; k++) {
			ext[0] = copy_ext(dsts[k], PG);
			ext[1] = copy_ext(reg + 8 * PG, PG);
			rc = kt_fill(f2, ext, 2, 0, NULL, 0, &h);
			CHECK(rc == -EPERM && h.index == 0,
			      "fill (%d) a foreign task at %p: %d index %u", how, dsts[k], rc,
			      h.index);
		}
		if (how == 2) /* our own mm, but not that uffd's */
			CHECK(kt_resident(reg, REG_PAGES * PG) == 0,
			      "installed with a foreign uffd");
		if (how == 2)
			close(u);
		close(f2);
	}
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	rc = BIND(.pidfd = pidfd, .pid = 0);
	CHECK(rc == -ESRCH, "bind an exited task by pidfd: %d", rc);
	close(pidfd);
	/* Our own pidfd works, and a second bind is refused. */
	pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	rc = BIND(.pidfd = pidfd, .pid = 0, .flags = LAZYFILL_BIND_VERIFY);
	CHECK(rc == 0 && b.session > 0, "verified bind by pidfd: %d", rc);
	CHECK(BIND() == -EBUSY, "second bind");
	close(pidfd);
	close(p[0]);
	close(p[1]);
	close(fd);
}

/* ---- fuzz ---- */

static uint64_t pick_addr(uint64_t *s, int for_len)
{
	static const uint64_t odd[] = {0,
				       1,
				       PG,
				       0xfff,
				       0x7ffffffff000ull,
				       0x800000000000ull,
				       0xffff888000000000ull,
				       0xffffffffff600000ull,
				       ~0ull,
				       ~0ull - PG + 1,
				       1ull << 63,
				       LAZYFILL_MAX_BYTES,
				       LAZYFILL_MAX_BYTES + PG};
	uint64_t r = rnd(s);

	if (for_len) {
		switch (r % 6) {
		case 0:
			return odd[rnd(s) % (sizeof(odd) / sizeof(odd[0]))];
		case 1:
			return rnd(s);
		default:
			return (1 + rnd(s) % 8) * PG + (rnd(s) % 16 == 0 ? rnd(s) % PG : 0);
		}
	}
	switch (r % 8) {
	case 0:
		return odd[rnd(s) % (sizeof(odd) / sizeof(odd[0]))];
	case 1:
		return rnd(s);
	case 2:
		return (uint64_t)(uintptr_t)plain + (rnd(s) % 8) * PG;
	case 3:
		return (uint64_t)(uintptr_t)wreg + (rnd(s) % 8) * PG;
	case 4:
		return (uint64_t)(uintptr_t)src + (rnd(s) % 8) * PG;
	default:
		return (uint64_t)(uintptr_t)reg + (rnd(s) % REG_PAGES) * PG +
		       (rnd(s) % 32 == 0 ? rnd(s) % PG : 0);
	}
}

/*
 * Source addresses: never inside our own registered regions. The copy would
 * fault there and wait for a uffd reader that does not exist (as a plain
 * UFFDIO_COPY from such a source would): a hang of our own making.
 */
static uint64_t pick_src(uint64_t *s)
{
	uint64_t a = pick_addr(s, 0);
	uint64_t r0 = (uint64_t)(uintptr_t)reg, w0 = (uint64_t)(uintptr_t)wreg;

	if ((a >= r0 && a < r0 + REG_PAGES * PG) || (a >= w0 && a < w0 + 64 * PG))
		a = (uint64_t)(uintptr_t)src + (rnd(s) % 8) * PG;
	return a;
}

static void fuzz(long calls)
{
	static uint64_t scratch_area[1024] __attribute__((aligned(4096)));
	uint64_t s = 0x1234567;
	long ok = 0, errs[150] = {0};

	for (long i = 0; i < calls; i++) {
		struct lazyfill_batch b;
		uint32_t n = (uint32_t)(rnd(&s) % 4 == 0 ? rnd(&s) % 64 : 1 + rnd(&s) % 6);
		int kind = (int)(rnd(&s) % 16);

		if (i % 2000 == 0)
			madvise(reg, REG_PAGES * PG, MADV_DONTNEED);
		if (n > LAZYFILL_MAX_EXTENTS)
			n = LAZYFILL_MAX_EXTENTS;
		if (kind == 0) {
			/* Random bytes everywhere (pointers only to our fuzz buffers). */
			uint64_t *w = (uint64_t *)&b;
			for (size_t k = 0; k < sizeof(b) / 8; k++)
				w[k] = rnd(&s);
			for (size_t k = 0; k < 64 * sizeof(ext[0]) / 8; k++)
				((uint64_t *)ext)[k] = rnd(&s);
			if (rnd(&s) % 2) {
				b.extents = (uint64_t)(uintptr_t)ext;
				b.scratch = (uint64_t)(uintptr_t)scratch_area;
				b.count &= 63;
			}
		} else {
			for (uint32_t k = 0; k < n; k++) {
				struct lazyfill_extent *e = &ext[k];
				uint64_t r = rnd(&s);

				e->dst = pick_addr(&s, 0);
				e->len = pick_addr(&s, 1);
				e->mode = r % 8 < 5 ? 1 : r % 8 < 7 ? 2 : (uint32_t)rnd(&s);
				e->src = e->mode == 2 && r % 3 ? 0 : pick_src(&s);
				e->flags = r % 16 == 0 ? (uint32_t)rnd(&s) : (r >> 8) % 4 == 0;
				e->reserved = r % 64 == 0 ? rnd(&s) : 0;
				e->status = (uint32_t)rnd(&s);
				e->done = rnd(&s);
			}
			b = (struct lazyfill_batch){
			    .version = rnd(&s) % 32 ? LAZYFILL_UAPI_VERSION : (uint32_t)rnd(&s),
			    .flags = (uint32_t)(rnd(&s) % 32 ? rnd(&s) % 4 : rnd(&s)),
			    .count = rnd(&s) % 32 ? n : (uint32_t)rnd(&s),
			    .extents = rnd(&s) % 32 ? (uint64_t)(uintptr_t)ext : pick_addr(&s, 0),
			    .scratch = rnd(&s) % 32 ? (uint64_t)(uintptr_t)scratch_area
						    : (rnd(&s) % 2 ? (uint64_t)(uintptr_t)ro
								   : pick_addr(&s, 1)),
			};
			if (rnd(&s) % 4 == 0) {
				b.zero_buf =
				    rnd(&s) % 8 ? (uint64_t)(uintptr_t)zbuf : pick_addr(&s, 0);
				b.zero_len =
				    rnd(&s) % 8 ? PG * (1 + rnd(&s) % 4) : pick_addr(&s, 1);
			}
			if (rnd(&s) % 64 == 0)
				b.reserved[rnd(&s) % 4] = rnd(&s);
		}
		/* Never let the module write into memory other than our fuzz buffers. */
		if (b.extents != (uint64_t)(uintptr_t)ext)
			b.extents = rnd(&s) % 2 ? (uint64_t)(uintptr_t)ro : rnd(&s) | (1ull << 63);
		if (b.scratch != (uint64_t)(uintptr_t)scratch_area &&
		    b.scratch != (uint64_t)(uintptr_t)ro)
			b.scratch = rnd(&s) | (1ull << 63);
		if (b.zero_buf && b.zero_buf != (uint64_t)(uintptr_t)zbuf)
			b.zero_buf = rnd(&s) | (1ull << 63);
		if (b.zero_buf == (uint64_t)(uintptr_t)zbuf && b.zero_len > 4 * PG)
			b.zero_len = 4 * PG;

		unsigned long cmd = LAZYFILL_IOC_FILL;
		if (kind == 1)
			cmd = rnd(&s) % 2 ? LAZYFILL_IOC_BIND : (unsigned long)(uint32_t)rnd(&s);
		if (kind == 2)
			cmd = LAZYFILL_IOC_INFO;
		int rc = ioctl(sfd, cmd, kind == 2 ? (void *)scratch_area : (void *)&b);
		if (!rc)
			ok++;
		else if (errno < 150)
			errs[errno]++;
		if (cmd == LAZYFILL_IOC_FILL && b.extents == (uint64_t)(uintptr_t)ext && !rc)
			CHECK(b.count <= 64, "accepted a batch of %u", b.count);
	}
	printf("lf-hostile: fuzz: %ld calls: %ld accepted", calls, ok);
	for (int e = 0; e < 150; e++)
		if (errs[e])
			printf(", %s %ld", strerrorname_np(e) ? strerrorname_np(e) : "?", errs[e]);
	printf("\n");
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 100000;

	setvbuf(stdout, NULL, _IOLBF, 0);

	reg = kt_map(NULL, REG_PAGES * PG);
	wreg = kt_map(NULL, 64 * PG);
	plain = kt_map(NULL, 64 * PG);
	src = kt_map(NULL, 64 * PG);
	zbuf = kt_map(NULL, 4 * PG);
	memset(src, 0x5a, 64 * PG);
	memset(plain, 0, 64 * PG);
	char *rop = kt_map(NULL, 2 * PG);
	ro = rop + PG;
	mprotect(ro, PG, PROT_READ);

	uffd = kt_uffd(UFFD_FEATURE_PAGEFAULT_FLAG_WP);
	kt_register(uffd, reg, REG_PAGES * PG, UFFDIO_REGISTER_MODE_MISSING);
	kt_register(uffd, wreg, 64 * PG, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
	sfd = kt_session(uffd, getpid(), NULL);
	if (sfd < 0)
		die("bind: %s", strerror(-sfd));

	header_cases();
	printf("lf-hostile: header cases done (%d failures)\n", kt_failures);
	extent_cases();
	printf("lf-hostile: extent cases done (%d failures)\n", kt_failures);
	bind_cases();
	printf("lf-hostile: targeted cases: %d failures\n", kt_failures);
	fuzz(calls);
	close(sfd);
	close(uffd);
	printf("%s\n", kt_failures ? "lf-hostile: FAIL" : "lf-hostile: ok");
	return kt_failures ? 1 : 0;
}

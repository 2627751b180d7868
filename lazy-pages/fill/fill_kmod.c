/* The lazyfill.ko fill engine (see fill_kmod.h). */
#include "fill_kmod.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define KMOD_ZERO_LEN (64u * 1024) /* source of zero + write-protect extents */

struct kmod_session {
	int uffd;
	int fd; /* the bound /dev/lazyfill file */
	uint32_t id;
};

struct kmod_ctx {
	pthread_mutex_t lock; /* the session table */
	struct kmod_session *s;
	size_t n, cap;
	void *zero_buf;
	struct filler plain; /* for uffds without a session */
	struct lazyfill_info info;
	uint64_t batches, kmod_bytes, plain_calls; /* updated atomically */
	uint32_t attach_failed, dropped;
};

static const struct filler_ops kmod_ops;

int filler_is_kmod(const struct filler *f)
{
	return f->ops == &kmod_ops;
}

/* The session fd for uffd, or -1. */
static int session_fd(struct kmod_ctx *k, int uffd)
{
	int fd = -1;

	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n; i++) {
		if (k->s[i].uffd == uffd) {
			fd = k->s[i].fd;
			break;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return fd;
}

/*
 * The module refused uffd's destination as not registered with that uffd
 * in the bound task, but the uffd itself took it: the session is bound to
 * the wrong task (e.g. a guessed pid). Drop it: plain ioctls from now on.
 */
static void drop_session(struct kmod_ctx *k, int uffd, int fd)
{
	int found = 0;

	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n; i++) {
		if (k->s[i].uffd == uffd && k->s[i].fd == fd) {
			k->s[i] = k->s[--k->n];
			k->dropped++;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&k->lock);
	if (found)
		close(fd);
}

static int batch_ioctl(struct kmod_ctx *k, int fd, struct lazyfill_extent *ext, uint32_t n,
		       uint32_t flags, struct lazyfill_batch *res)
{
	uint64_t scratch[LAZYFILL_SCRATCH_SIZE / sizeof(uint64_t)];
	struct lazyfill_batch b = {
	    .version = LAZYFILL_UAPI_VERSION,
	    .flags = flags,
	    .count = n,
	    .extents = (uint64_t)(uintptr_t)ext,
	    .scratch = (uint64_t)(uintptr_t)scratch,
	    .zero_buf = (uint64_t)(uintptr_t)k->zero_buf,
	    .zero_len = KMOD_ZERO_LEN,
	};
	int rc = ioctl(fd, LAZYFILL_IOC_FILL, &b) ? -errno : 0;

	__atomic_add_fetch(&k->batches, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&k->kmod_bytes, b.bytes, __ATOMIC_RELAXED);
	if (res)
		*res = b;
	return rc;
}

int filler_kmod_batch(struct filler *f, int uffd, struct lazyfill_extent *ext, uint32_t n,
		      uint32_t flags, struct lazyfill_batch *res)
{
	struct kmod_ctx *k = f->ctx;
	int fd = session_fd(k, uffd);

	if (fd < 0)
		return -ENOTCONN;
	return batch_ioctl(k, fd, ext, n, flags, res);
}

/*
 * One extent through the module, with the plain engine's semantics: stop at
 * the first present page (-EEXIST, *done = bytes installed before it).
 */
static int one_extent(struct kmod_ctx *k, int fd, uint64_t dst, const void *src, uint64_t len,
		      uint32_t mode, uint64_t *done)
{
	struct lazyfill_extent e = {
	    .dst = dst,
	    .len = len,
	    .src = (uint64_t)(uintptr_t)src,
	    .mode = mode,
	};
	int rc = batch_ioctl(k, fd, &e, 1, LAZYFILL_FILL_STOP_EXIST, NULL);

	*done = e.done - e.present;
	switch (e.status) {
	case LAZYFILL_ST_DONE:
		return 0;
	case LAZYFILL_ST_EXIST:
		return -EEXIST;
	case LAZYFILL_ST_AGAIN:
	case LAZYFILL_ST_ERROR:
		rc = e.error ? e.error : rc;
		break;
	default: /* refused: nothing installed */
		*done = 0;
		break;
	}
	return rc ? rc : -EIO;
}

/*
 * Through the module if uffd has a session, else (or if the module said
 * "not registered with this uffd here", EPERM, which it also says for a
 * session bound to the wrong task, or "no VMA there", ENOENT) with the plain
 * ioctls: the uffd itself has the last word on where its registrations are.
 * ENOENT must not be taken from the module as is: while the task mremaps or
 * munmaps, its VMA check fails where the kernel's own path says EAGAIN (the
 * address space is changing, read the events), and a page moving with the
 * mapping would be dropped.
 */
static int kmod_fill(struct kmod_ctx *k, int uffd, uint64_t dst, const void *src, uint64_t len,
		     uint32_t mode, uint64_t *done)
{
	int fd = session_fd(k, uffd), rc = -EPERM;

	if (fd >= 0)
		rc = one_extent(k, fd, dst, src, len, mode, done);
	if (rc == -ENOENT && !*done) {
		__atomic_add_fetch(&k->plain_calls, 1, __ATOMIC_RELAXED);
		return mode == LAZYFILL_MODE_ZERO
			   ? k->plain.ops->zero(k->plain.ctx, uffd, dst, len, done)
			   : k->plain.ops->copy(k->plain.ctx, uffd, dst, src, len, done);
	}
	if (rc != -EPERM)
		return rc;
	__atomic_add_fetch(&k->plain_calls, 1, __ATOMIC_RELAXED);
	rc = mode == LAZYFILL_MODE_ZERO
		 ? k->plain.ops->zero(k->plain.ctx, uffd, dst, len, done)
		 : k->plain.ops->copy(k->plain.ctx, uffd, dst, src, len, done);
	if (fd >= 0 && (rc == 0 || rc == -EEXIST || *done))
		drop_session(k, uffd, fd);
	return rc;
}

static int kmod_copy(void *ctx, int uffd, uint64_t dst, const void *src, uint64_t len,
		     uint64_t *done)
{
	return kmod_fill(ctx, uffd, dst, src, len, LAZYFILL_MODE_COPY, done);
}

static int kmod_zero(void *ctx, int uffd, uint64_t dst, uint64_t len, uint64_t *done)
{
	return kmod_fill(ctx, uffd, dst, NULL, len, LAZYFILL_MODE_ZERO, done);
}

static int kmod_wake(void *ctx, int uffd, uint64_t dst, uint64_t len)
{
	struct kmod_ctx *k = ctx;

	return k->plain.ops->wake(k->plain.ctx, uffd, dst, len);
}

int filler_kmod(struct filler *f)
{
	struct kmod_ctx *k;
	int fd, rc;

	fd = open(LAZYFILL_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	k = calloc(1, sizeof(*k));
	if (!k) {
		close(fd);
		return -ENOMEM;
	}
	rc = ioctl(fd, LAZYFILL_IOC_INFO, &k->info) ? -errno : 0;
	close(fd);
	if (!rc && k->info.version != LAZYFILL_UAPI_VERSION)
		rc = -EPROTO;
	if (!rc) {
		k->zero_buf = mmap(NULL, KMOD_ZERO_LEN, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (k->zero_buf == MAP_FAILED)
			rc = -errno;
	}
	if (rc) {
		free(k);
		return rc;
	}
	pthread_mutex_init(&k->lock, NULL);
	filler_uffd(&k->plain);
	f->ops = &kmod_ops;
	f->ctx = k;
	return 0;
}

static int attach(struct kmod_ctx *k, int uffd, pid_t pid, int pidfd, uint32_t flags,
		  uint32_t *session)
{
	struct lazyfill_bind b = {
	    .version = LAZYFILL_UAPI_VERSION,
	    .flags = flags,
	    .uffd = uffd,
	    .pidfd = pidfd >= 0 ? pidfd : -1,
	    .pid = pidfd >= 0 ? 0 : pid,
	};
	int fd, rc = 0;

	if (session_fd(k, uffd) >= 0)
		return -EBUSY;
	fd = open(LAZYFILL_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		rc = -errno;
	else if (ioctl(fd, LAZYFILL_IOC_BIND, &b))
		rc = -errno;
	pthread_mutex_lock(&k->lock);
	if (!rc && k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 16;
		struct kmod_session *s = realloc(k->s, cap * sizeof(*s));

		if (s) {
			k->s = s;
			k->cap = cap;
		} else {
			rc = -ENOMEM;
		}
	}
	if (!rc)
		k->s[k->n++] = (struct kmod_session){.uffd = uffd, .fd = fd, .id = b.session};
	else if (rc != -EPERM || !(flags & LAZYFILL_BIND_VERIFY))
		k->attach_failed++;
	pthread_mutex_unlock(&k->lock);
	if (rc) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (session)
		*session = b.session;
	return 0;
}

int filler_kmod_attach(struct filler *f, int uffd, pid_t pid, int pidfd, uint32_t *session)
{
	return attach(f->ctx, uffd, pid, pidfd, 0, session);
}

int filler_kmod_attach_verified(struct filler *f, int uffd, pid_t pid, int pidfd, uint32_t *session)
{
	return attach(f->ctx, uffd, pid, pidfd, LAZYFILL_BIND_VERIFY, session);
}

static int kmod_attach(void *ctx, int uffd, pid_t pid, int pidfd, bool verify)
{
	return attach(ctx, uffd, pid, pidfd, verify ? LAZYFILL_BIND_VERIFY : 0, NULL);
}

static void kmod_detach(void *ctx, int uffd)
{
	struct kmod_ctx *k = ctx;
	int fd = -1;

	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n; i++) {
		if (k->s[i].uffd == uffd) {
			fd = k->s[i].fd;
			k->s[i] = k->s[--k->n];
			break;
		}
	}
	pthread_mutex_unlock(&k->lock);
	if (fd >= 0)
		close(fd);
}

void filler_kmod_detach(struct filler *f, int uffd)
{
	kmod_detach(f->ctx, uffd);
}

static void get_stats(struct kmod_ctx *k, struct filler_kmod_stats *st)
{
	pthread_mutex_lock(&k->lock);
	st->sessions = (uint32_t)k->n;
	st->attach_failed = k->attach_failed;
	st->dropped = k->dropped;
	pthread_mutex_unlock(&k->lock);
	st->batches = __atomic_load_n(&k->batches, __ATOMIC_RELAXED);
	st->kmod_bytes = __atomic_load_n(&k->kmod_bytes, __ATOMIC_RELAXED);
	st->plain_calls = __atomic_load_n(&k->plain_calls, __ATOMIC_RELAXED);
}

void filler_kmod_get_stats(const struct filler *f, struct filler_kmod_stats *st)
{
	get_stats(f->ctx, st);
}

static void kmod_stats(void *ctx, struct fill_stats *st)
{
	struct filler_kmod_stats ks;

	get_stats(ctx, &ks);
	*st = (struct fill_stats){
	    .batches = ks.batches,
	    .batch_bytes = ks.kmod_bytes,
	    .plain_calls = ks.plain_calls,
	    .sessions = ks.sessions,
	    .attach_failed = ks.attach_failed,
	    .dropped = ks.dropped,
	};
}

/* Close every session and free the engine. */
static void kmod_close(void *ctx)
{
	struct kmod_ctx *k = ctx;

	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++)
		close(k->s[i].fd);
	free(k->s);
	munmap(k->zero_buf, KMOD_ZERO_LEN);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

void filler_kmod_close(struct filler *f)
{
	kmod_close(f->ctx);
	f->ops = NULL;
	f->ctx = NULL;
}

static int kmod_batch(void *ctx, int uffd, struct fill_extent *ext, uint32_t n, uint32_t *first)
{
	struct filler f = {.ops = &kmod_ops, .ctx = ctx};

	return filler_kmod_batch_extents(&f, uffd, ext, n, first);
}

static const struct filler_ops kmod_ops = {
    .name = "kmod",
    .copy = kmod_copy,
    .zero = kmod_zero,
    .wake = kmod_wake,
    .attach = kmod_attach,
    .detach = kmod_detach,
    .batch = kmod_batch,
    .stats = kmod_stats,
    .close = kmod_close,
};

#include "ev.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define EV_BATCH 64

struct ev_fd {
	unsigned mask; /* 0: free */
	uint32_t gen;  /* bumped at every add: a stale event names an old gen */
	ev_fd_fn fn;
	void *data;
};

struct ev_timer {
	struct ev_timer *next; /* sorted by when, then id */
	uint64_t id, when_ns;
	ev_timer_fn fn;
	void *data;
};

struct ev_loop {
	int epfd;
	struct ev_fd *fds;
	int nfds; /* slots allocated */
	struct ev_timer *timers;
	uint64_t next_timer_id;
};

struct ev_loop *ev_loop_new(void)
{
	struct ev_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void ev_loop_free(struct ev_loop *l)
{
	if (!l)
		return;
	while (l->timers) {
		struct ev_timer *t = l->timers;
		l->timers = t->next;
		free(t);
	}
	close(l->epfd);
	free(l->fds);
	free(l);
}

static uint32_t to_epoll(unsigned mask)
{
	return (mask & EV_READ ? EPOLLIN : 0) | (mask & EV_WRITE ? EPOLLOUT : 0);
}

static uint64_t key(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int ev_add(struct ev_loop *l, int fd, unsigned mask, ev_fd_fn fn, void *data)
{
	if (fd < 0 || !fn || !(mask & (EV_READ | EV_WRITE)))
		return -EINVAL;
	if (fd >= EV_MAX_FDS)
		return -EMFILE;
	if (fd >= l->nfds) {
		int n = l->nfds ? l->nfds : 64;
		while (n <= fd)
			n *= 2;
		if (n > EV_MAX_FDS)
			n = EV_MAX_FDS;
		struct ev_fd *f = realloc(l->fds, (size_t)n * sizeof(*f));
		if (!f)
			return -ENOMEM;
		for (int i = l->nfds; i < n; i++)
			f[i] = (struct ev_fd){0};
		l->fds = f;
		l->nfds = n;
	}
	struct ev_fd *f = &l->fds[fd];
	uint32_t gen = f->gen + 1;
	struct epoll_event ev = {.events = to_epoll(mask), .data.u64 = key(fd, gen)};
	/* Registered already: take the new handler. The fd may have been closed (which drops
	 * it from epoll) and its number reused since: then it is added afresh. */
	int rc = f->mask ? epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) : -1;
	if (rc && (!f->mask || errno == ENOENT))
		rc = epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
	if (rc)
		return -errno;
	*f = (struct ev_fd){.mask = mask, .gen = gen, .fn = fn, .data = data};
	return 0;
}

int ev_mod(struct ev_loop *l, int fd, unsigned mask)
{
	if (!ev_has(l, fd))
		return -ENOENT;
	if (!(mask & (EV_READ | EV_WRITE)))
		return -EINVAL;
	struct ev_fd *f = &l->fds[fd];
	struct epoll_event ev = {.events = to_epoll(mask), .data.u64 = key(fd, f->gen)};
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev))
		return -errno;
	f->mask = mask;
	return 0;
}

void ev_del(struct ev_loop *l, int fd)
{
	if (!ev_has(l, fd))
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->fds[fd].mask = 0;
	l->fds[fd].fn = NULL;
	l->fds[fd].data = NULL;
}

bool ev_has(const struct ev_loop *l, int fd)
{
	return l && fd >= 0 && fd < l->nfds && l->fds[fd].mask;
}

uint64_t ev_timer_add_ns(struct ev_loop *l, uint64_t after_ns, ev_timer_fn fn, void *data)
{
	struct ev_timer *t = calloc(1, sizeof(*t)), **p;

	if (!t)
		return 0;
	t->id = ++l->next_timer_id;
	t->when_ns = mono_ns() + after_ns;
	t->fn = fn;
	t->data = data;
	for (p = &l->timers; *p && (*p)->when_ns <= t->when_ns; p = &(*p)->next)
		;
	t->next = *p;
	*p = t;
	return t->id;
}

uint64_t ev_timer_add(struct ev_loop *l, uint64_t after_ms, ev_timer_fn fn, void *data)
{
	return ev_timer_add_ns(l, after_ms * 1000000ull, fn, data);
}

void ev_timer_del(struct ev_loop *l, uint64_t id)
{
	for (struct ev_timer **p = &l->timers; *p; p = &(*p)->next)
		if ((*p)->id == id) {
			struct ev_timer *t = *p;
			*p = t->next;
			free(t);
			return;
		}
}

/* How long the turn may wait, in ns: up to the next timer, at most max_wait_ms (-1: none)
 * and a minute; -1 for no limit at all. */
static int64_t wait_ns(const struct ev_loop *l, int max_wait_ms)
{
	int64_t max = max_wait_ms < 0 ? -1 : (int64_t)max_wait_ms * 1000000;

	if (!l->timers)
		return max;
	uint64_t now = mono_ns(), when = l->timers->when_ns;
	uint64_t left = when > now ? when - now : 0;
	if (max >= 0 && (uint64_t)max < left)
		return max;
	return left > 60000000000ull ? 60000000000ll : (int64_t)left;
}

/* epoll_wait with a timeout in ns (timers finer than a millisecond: the stream's pacing). */
static int wait_events(const struct ev_loop *l, struct epoll_event *evs, int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
	int n = epoll_pwait2(l->epfd, evs, EV_BATCH, ns < 0 ? NULL : &ts, NULL);

	if (n >= 0 || errno != ENOSYS)
		return n;
	/* a kernel before 5.11: milliseconds, rounded up so that a timer is never early */
	return epoll_wait(l->epfd, evs, EV_BATCH, ns < 0 ? -1 : (int)((ns + 999999) / 1000000));
}

/* Timers due now, including ones added by their handlers only if already due. */
static int run_timers(struct ev_loop *l)
{
	uint64_t now = mono_ns(), last = l->next_timer_id;
	int n = 0;

	while (l->timers && l->timers->when_ns <= now && l->timers->id <= last) {
		struct ev_timer *t = l->timers;
		l->timers = t->next;
		ev_timer_fn fn = t->fn;
		void *data = t->data;
		uint64_t id = t->id;
		free(t);
		fn(l, id, data);
		n++;
	}
	return n;
}

int ev_run_once(struct ev_loop *l, int max_wait_ms)
{
	struct epoll_event evs[EV_BATCH];
	int n = wait_events(l, evs, wait_ns(l, max_wait_ms)), done = 0;

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
		if (!ev_has(l, fd) || l->fds[fd].gen != gen)
			continue; /* deleted (or deleted and reused) by an earlier handler */
		struct ev_fd *f = &l->fds[fd];
		unsigned got = (evs[i].events & EPOLLIN ? EV_READ : 0) |
			       (evs[i].events & EPOLLOUT ? EV_WRITE : 0) |
			       (evs[i].events & (EPOLLHUP | EPOLLERR) ? EV_HUP : 0);
		f->fn(l, fd, got, f->data);
		done++;
	}
	return done + run_timers(l);
}

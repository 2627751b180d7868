/*
 * Serving pages: uffd messages, the fault path and the background drain.
 *
 * Every install goes through install_run(), which keeps the pending set in
 * step with what the kernel did: only bytes the kernel reports as installed
 * leave the set, so a page is never installed twice and never forgotten.
 */
#include "fill/fill_kmod.h"
#include "lazyd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define PAGE IMG_PAGE_SIZE
#define MSGS_PER_READ 64
#define MAX_MSGS_PER_CALL 4096
#define SOURCE_RETRIES 3
#define PREFETCH_CHUNKS_PER_STEP 1

enum path { PATH_FAULT, PATH_DRAIN };

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void ep_del(struct lazyd *d, int fd)
{
	if (fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int ep_add(struct lazyd *d, int fd, struct ep_tag *tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

struct lz_task *lazyd_add_task(struct lazyd *d, int pid, pid_t real, int uffd,
			       const struct img_task *img, const struct pending *pend,
			       const char *name)
{
	struct lz_task *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->pid = pid;
	t->real = real;
	t->uffd = uffd;
	t->pagemap_fd = -1;
	t->img = img;
	t->pidfd = task_open_pidfd(real);
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->uffd_tag = (struct ep_tag){EP_UFFD, t};
	t->pidfd_tag = (struct ep_tag){EP_PIDFD, t};
	int rc = pend ? pending_clone(&t->pend, pend) : pending_from_image(&t->pend, img);
	int fl = fcntl(uffd, F_GETFL);
	if (!rc && (fl < 0 || fcntl(uffd, F_SETFL, fl | O_NONBLOCK)))
		rc = -errno;
	if (!rc)
		rc = ep_add(d, uffd, &t->uffd_tag);
	if (!rc && t->pidfd >= 0)
		rc = ep_add(d, t->pidfd, &t->pidfd_tag);
	if (rc) {
		pr_err("%s: cannot track the task: %s", name, strerror(-rc));
		ep_del(d, uffd);
		if (t->pidfd >= 0)
			close(t->pidfd);
		pending_free(&t->pend);
		free(t);
		return NULL;
	}
	t->next = d->tasks;
	d->tasks = t;
	pr_info("%s: serving %lu pages (%lu with data), uffd %d, pidfd %d", t->name,
		(unsigned long)t->pend.pages, (unsigned long)t->pend.data_pages, uffd, t->pidfd);
	if (filler_is_kmod(&d->fill) && real <= 0 && t->pidfd < 0) {
		/* The module binds a uffd to a task by pid: without one, plain ioctls. */
		pr_info("%s: pid unknown: plain userfaultfd for it until it is known", t->name);
	} else if (filler_is_kmod(&d->fill)) {
		uint32_t sid = 0;
		int krc = filler_kmod_attach(&d->fill, uffd, real, t->pidfd, &sid);
		if (krc)
			pr_warn("%s: no lazyfill.ko session (%s): plain userfaultfd for it",
				t->name, strerror(-krc));
		else
			pr_debug("%s: lazyfill.ko session %u", t->name, sid);
	}
	return t;
}

void lazyd_task_gone(struct lazyd *d, struct lz_task *t, const char *why)
{
	if (t->gone)
		return;
	if (t->pend.data_pages)
		pr_info("%s: gone (%s) with %lu data pages not needed any more", t->name, why,
			(unsigned long)t->pend.data_pages);
	else
		pr_info("%s: gone (%s)", t->name, why);
	t->gone = true;
	d->st.tasks_exited++;
	ep_del(d, t->uffd);
	ep_del(d, t->pidfd);
	/* The session holds the uffd too: drop it first, or the registration stays. */
	if (filler_is_kmod(&d->fill))
		filler_kmod_detach(&d->fill, t->uffd);
	close(t->uffd);
	t->uffd = -1;
	if (t->pidfd >= 0)
		close(t->pidfd);
	t->pidfd = -1;
	if (t->pagemap_fd >= 0)
		close(t->pagemap_fd);
	t->pagemap_fd = -2;
	t->nfaults = 0;
	pending_free(&t->pend);
}

/*
 * The task cannot be served correctly: it must not run on with a wrong
 * page, so it is killed. Its uffd stays open until it is gone, so that
 * nothing it touches in the meantime is zero-filled by the kernel.
 */
void lazyd_task_fail(struct lazyd *d, struct lz_task *t, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (t->killed || t->gone)
		return;
	pr_err("%s: killing the task: %s", t->name, why);
	if (task_kill(t))
		d->st.tasks_killed++;
	else
		pr_err("%s: holding its uffd so that it never reads a zero-filled page; "
		       "kill it by hand",
		       t->name);
	/* Served no more either way; gone once its pidfd says it exited. */
	t->killed = true;
	t->nfaults = 0;
}

static void queue_fault(struct lz_task *t, uint64_t addr)
{
	if (t->nfaults == t->faults_cap) {
		size_t cap = t->faults_cap ? t->faults_cap * 2 : 64;
		struct lz_fault *f = realloc(t->faults, cap * sizeof(*f));
		if (!f)
			return; /* the thread stays blocked; its fault is re-read after a wake */
		t->faults = f;
		t->faults_cap = cap;
	}
	t->faults[t->nfaults++] = (struct lz_fault){addr & ~(PAGE - 1), mono_ns()};
}

static void count_dropped(struct lazyd *d, struct lz_task *t, uint64_t start, uint64_t end)
{
	uint64_t before = t->pend.data_pages;
	if (pending_remove(&t->pend, start, end))
		lazyd_task_fail(d, t, "out of memory while tracking pending pages");
	d->st.pages_dropped += before - t->pend.data_pages;
}

/*
 * The kernel sends FORK before the child has a pid, so the child is named
 * after its parent until ident_*() below can tell which process it is.
 */
static void on_fork(struct lazyd *d, struct lz_task *t, int ufd)
{
	char name[48];

	snprintf(name, sizeof(name), "child of pid %d", t->pid);
	d->st.forks++;
	struct lz_task *c = lazyd_add_task(d, -1, -1, ufd, t->img, &t->pend, name);
	if (!c) {
		close(ufd);
		lazyd_task_fail(d, t, "cannot follow its fork");
		return;
	}
	c->parent_real = t->real;
	pr_info("%s: forked a child with %lu pending pages", t->name, (unsigned long)c->pend.pages);
}

#define IDENT_MAX_TRIES 64
#define IDENT_MAX_CAND 64

struct ident {
	pid_t cand[IDENT_MAX_CAND];
	size_t n;
	uint64_t addr;
};

/*
 * Which of the parent's children is this uffd's? The one in which the page
 * we are about to install at addr (missing in all of them before) is
 * present after: /proc/PID/pagemap shows it without touching the page.
 */
static void ident_prepare(struct lazyd *d, struct lz_task *t, uint64_t addr, struct ident *id)
{
	pid_t known[256], c[IDENT_MAX_CAND];
	size_t nk = 0;

	id->n = 0;
	id->addr = addr;
	if (t->real > 0 || t->parent_real <= 0 || t->ident_tries >= IDENT_MAX_TRIES)
		return;
	t->ident_tries++;
	for (struct lz_task *k = d->tasks; k && nk < 256; k = k->next)
		if (k->real > 0)
			known[nk++] = k->real;
	size_t n = task_children(t->parent_real, known, nk, c, IDENT_MAX_CAND);
	for (size_t i = 0; i < n; i++)
		if (task_page_present(c[i], addr) == 0)
			id->cand[id->n++] = c[i];
}

static void ident_finish(struct lazyd *d, struct lz_task *t, const struct ident *id)
{
	pid_t hit = -1;
	int hits = 0;

	for (size_t i = 0; i < id->n; i++)
		if (task_page_present(id->cand[i], id->addr) == 1) {
			hit = id->cand[i];
			hits++;
		}
	if (hits != 1)
		return;
	int pidfd = task_open_pidfd(hit);
	/* Checked again through the pidfd's process, so a reused pid cannot slip in. */
	if (pidfd < 0 || task_page_present(hit, id->addr) != 1 || ep_add(d, pidfd, &t->pidfd_tag)) {
		if (pidfd >= 0)
			close(pidfd);
		return;
	}
	char was[48];
	snprintf(was, sizeof(was), "%s", t->name);
	t->real = hit;
	t->pidfd = pidfd;
	t->pid = task_ns_pid(hit);
	snprintf(t->name, sizeof(t->name), "pid %d", t->pid);
	pr_info("%s: the %s (pid %d here)", t->name, was, (int)hit);
	if (filler_is_kmod(&d->fill)) {
		/* Verified: the module checks that this process's VMAs are this uffd's. */
		int krc = filler_kmod_attach_verified(&d->fill, t->uffd, hit, pidfd, NULL);
		if (krc == -EPERM)
			pr_warn("%s: lazyfill.ko says its uffd is not this process's: plain "
				"userfaultfd for it",
				t->name);
		else if (krc)
			pr_warn("%s: no lazyfill.ko session (%s): plain userfaultfd for it",
				t->name, strerror(-krc));
	}
}

static void handle_msg(struct lazyd *d, struct lz_task *t, const struct uffd_msg *m)
{
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		queue_fault(t, m->arg.pagefault.address);
		break;
	case UFFD_EVENT_FORK:
		on_fork(d, t, (int)m->arg.fork.ufd);
		break;
	case UFFD_EVENT_REMAP:
		d->st.remaps++;
		pr_debug("%s: mremap 0x%llx -> 0x%llx, %llu bytes", t->name,
			 (unsigned long long)m->arg.remap.from, (unsigned long long)m->arg.remap.to,
			 (unsigned long long)m->arg.remap.len);
		if (pending_move(&t->pend, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len))
			lazyd_task_fail(d, t, "out of memory while following mremap");
		break;
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		if (m->event == UFFD_EVENT_REMOVE)
			d->st.removes++;
		else
			d->st.unmaps++;
		pr_debug("%s: %s 0x%llx-0x%llx", t->name,
			 m->event == UFFD_EVENT_REMOVE ? "discard" : "munmap",
			 (unsigned long long)m->arg.remove.start,
			 (unsigned long long)m->arg.remove.end);
		count_dropped(d, t, m->arg.remove.start, m->arg.remove.end);
		break;
	default:
		pr_warn("%s: unknown userfaultfd event %u ignored", t->name, m->event);
	}
}

void lazyd_read_uffd(struct lazyd *d, struct lz_task *t)
{
	struct uffd_msg msgs[MSGS_PER_READ];
	size_t total = 0;

	while (!t->gone && total < MAX_MSGS_PER_CALL) {
		ssize_t n = read(t->uffd, msgs, sizeof(msgs));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* 0: the mm is gone (the kernel says so on read), else a real error. */
			lazyd_task_gone(d, t, n == 0 ? "address space released" : strerror(errno));
			return;
		}
		if (n % sizeof(msgs[0])) {
			lazyd_task_fail(d, t, "short userfaultfd message (%zd bytes)", n);
			return;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++)
			handle_msg(d, t, &msgs[i]);
		total += (size_t)n / sizeof(msgs[0]);
	}
	t->need_events = false;
}

/* Read len bytes of data for a run into d->buf, retrying transient errors. */
static int fetch(struct lazyd *d, struct lz_task *t, const struct pend_extent *r)
{
	uint64_t len = r->end - r->start;
	int rc = -EIO;

	for (int i = 0; i < SOURCE_RETRIES; i++) {
		rc = d->src.ops->read(&d->src, t->img, r->src, d->buf, len);
		if (rc != -EAGAIN && rc != -EINTR)
			break;
	}
	return rc;
}

static void account(struct lazyd *d, const struct pend_extent *r, uint64_t bytes, enum path p)
{
	uint64_t pages = bytes / PAGE;

	if (r->flags & PEND_ZERO) {
		d->st.pages_zero += pages;
		return;
	}
	d->st.bytes_copied += bytes;
	if (p == PATH_FAULT)
		d->st.pages_fault += pages;
	else
		d->st.pages_prefetch += pages;
}

/*
 * Guard regions the task installed itself after restore (MADV_GUARD_INSTALL sends no
 * userfaultfd event) on pages still pending: UFFDIO_COPY would replace them with the data
 * (the kernel refuses only UFFDIO_ZEROPAGE there). The images' own guards are never
 * pending (images.h). So before copying, look at the task's pagemap: a guard run found is
 * dropped from the pending set and the run r is cut before it. true if r's first page is
 * a guard (nothing to copy). Only for tasks whose images have guards (glibc 2.42+ thread
 * stacks, allocators that use them): the look costs a pagemap read per run (about 2 us for
 * a 16-page fault window, 8 us for a 128-page drain chunk). Best effort: a guard installed
 * between the look and the copy is still replaced; only the kernel could refuse it.
 */
static bool skip_guards(struct lazyd *d, struct lz_task *t, struct pend_extent *r)
{
	uint64_t gs, ge;
	int fd;

	if (!t->img || !t->img->nr_guards)
		return false;
	fd = task_pagemap(t);
	if (fd < 0 || task_find_guard(fd, r->start, r->end, &gs, &ge) != 1)
		return false;
	pr_info("%s: 0x%lx-0x%lx became a guard region after restore: not filled", t->name,
		(unsigned long)gs, (unsigned long)ge);
	count_dropped(d, t, gs, ge);
	/* A thread that faulted there before the guard came retries and gets its SIGSEGV. */
	d->fill.ops->wake(d->fill.ctx, t->uffd, gs, ge - gs);
	if (gs == r->start)
		return true;
	r->end = gs;
	return false;
}

/*
 * Install one run (inside one pending extent). Returns 0 when the run's first
 * page is settled (installed, or found present), -EAGAIN when the uffd's
 * events must be read first, or another negative errno when the task was
 * dropped or failed.
 */
static int install_run(struct lazyd *d, struct lz_task *t, struct pend_extent r, enum path p,
		       const void *given)
{
	bool use_read = !d->src.ops->map;

	for (int tries = 0; tries < 3; tries++) {
		if (!(r.flags & PEND_ZERO) && skip_guards(d, t, &r))
			return 0;
		uint64_t len = r.end - r.start, done = 0;
		const void *data = NULL;
		int rc;

		struct ident id;
		ident_prepare(d, t, r.start, &id);
		if (r.flags & PEND_ZERO) {
			rc = d->fill.ops->zero(d->fill.ctx, t->uffd, r.start, len, &done);
		} else if (given) {
			/* Data a background read brought (source prefetch), checked already. */
			rc = d->fill.ops->copy(d->fill.ctx, t->uffd, r.start, given, len, &done);
		} else {
			/* Straight from the mapped image when the source can: one copy less. */
			if (!use_read)
				data = d->src.ops->map(&d->src, t->img, r.src, len);
			if (!data) {
				rc = fetch(d, t, &r);
				if (rc) {
					lazyd_task_fail(
					    d, t, "cannot read page data for 0x%lx (%lu pages): %s",
					    (unsigned long)r.start, (unsigned long)(len / PAGE),
					    strerror(-rc));
					return rc;
				}
				data = d->buf;
			}
			rc = d->fill.ops->copy(d->fill.ctx, t->uffd, r.start, data, len, &done);
			if (rc == -EFAULT && data != d->buf && !done) {
				/* The mapped image could not be read: read() says why. */
				use_read = true;
				continue;
			}
		}
		if (done && id.n)
			ident_finish(d, t, &id);
		if (done) {
			account(d, &r, done, p);
			if (pending_remove(&t->pend, r.start, r.start + done)) {
				lazyd_task_fail(d, t, "out of memory while tracking pending pages");
				return -ENOMEM;
			}
		}
		if (!rc)
			return 0;
		uint64_t at = r.start + done;
		switch (rc) {
		case -EEXIST:
			/* Present already (a racing install): never overwrite it. */
			d->st.eexist++;
			pr_debug("%s: page 0x%lx already present", t->name, (unsigned long)at);
			pending_remove(&t->pend, at, at + PAGE);
			d->fill.ops->wake(d->fill.ctx, t->uffd, at, PAGE);
			return 0;
		case -EAGAIN:
			d->st.eagain++;
			t->need_events = true;
			return done ? 0 : -EAGAIN;
		case -ESRCH:
			lazyd_task_gone(d, t, "exited");
			return rc;
		case -ENOENT:
		case -EINVAL:
			if (done)
				return 0;
			if (len > PAGE) {
				/* The run may span VMAs the task split since: go page by page. */
				r.end = r.start + PAGE;
				continue;
			}
			/*
			 * Before dropping it: an mremap or munmap may be under way whose
			 * event is queued; once read, the page may live elsewhere now.
			 */
			lazyd_read_uffd(d, t);
			if (t->gone)
				return 0;
			if (!pending_lookup(&t->pend, at)) {
				d->fill.ops->wake(d->fill.ctx, t->uffd, at, PAGE);
				return 0;
			}
			/* No registered VMA holds this page any more: nobody can see it. */
			pr_info("%s: no userfaultfd VMA at 0x%lx any more, page dropped", t->name,
				(unsigned long)at);
			count_dropped(d, t, at, at + PAGE);
			d->fill.ops->wake(d->fill.ctx, t->uffd, at, PAGE);
			return 0;
		default:
			lazyd_task_fail(d, t, "installing 0x%lx failed: %s", (unsigned long)at,
					strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* A fault on a page that is not pending: a duplicate message, or a zero page. */
static int serve_unpending(struct lazyd *d, struct lz_task *t, uint64_t page)
{
	uint64_t done;
	int rc = d->fill.ops->zero(d->fill.ctx, t->uffd, page, PAGE, &done);

	switch (rc) {
	case 0:
		d->st.pages_zero++;
		return 0;
	case -EEXIST:
		d->fill.ops->wake(d->fill.ctx, t->uffd, page, PAGE);
		return 0;
	case -EAGAIN:
		d->st.eagain++;
		t->need_events = true;
		return rc;
	case -ESRCH:
		lazyd_task_gone(d, t, "exited");
		return rc;
	default:
		/* Not ours to fill (no VMA): wake it, the kernel decides on the refault. */
		d->fill.ops->wake(d->fill.ctx, t->uffd, page, PAGE);
		return 0;
	}
}

static int serve_fault(struct lazyd *d, struct lz_task *t, const struct lz_fault *f)
{
	struct pend_extent r;

	if (!pending_run_at(&t->pend, f->addr, (uint64_t)d->o->fault_window * PAGE, &r))
		return serve_unpending(d, t, f->addr);
	pr_debug("%s: fault at 0x%lx: %s %lu pages", t->name, (unsigned long)f->addr,
		 (r.flags & PEND_ZERO) ? "zero" : "copy",
		 (unsigned long)((r.end - r.start) / PAGE));
	/* The background stream goes on from where the task touches: it will want that next. */
	t->cursor = r.end;
	return install_run(d, t, r, PATH_FAULT, NULL);
}

void lazyd_serve_faults(struct lazyd *d)
{
	for (struct lz_task *t = d->tasks; t; t = t->next) {
		size_t i = 0;

		if (t->gone || t->killed)
			continue;
		if (t->need_events)
			lazyd_read_uffd(d, t);
		while (i < t->nfaults && !t->gone && !t->killed) {
			if (serve_fault(d, t, &t->faults[i]) == -EAGAIN)
				break;
			d->st.faults++;
			stats_fault_latency(&d->st, mono_ns() - t->faults[i].t_ns);
			i++;
		}
		if (i && t->nfaults >= i) {
			memmove(t->faults, t->faults + i, (t->nfaults - i) * sizeof(*t->faults));
			t->nfaults -= i;
		}
	}
}

static bool drainable(const struct lz_task *t)
{
	return !t->gone && !t->killed && t->pend.data_pages;
}

/* Install what a background read brought, where its pages are still pending. */
static void install_chunk(struct lazyd *d, const struct pf_slot *sl, const struct src_chunk *ch)
{
	struct lz_task *t = sl->t;
	uint64_t base = sl->start + (ch->src - sl->src);

	for (uint32_t i = 0; i < ch->n && !t->gone && !t->killed;) {
		uint64_t addr = base + (uint64_t)i * PAGE, off = ch->src + (uint64_t)i * PAGE;
		struct pend_extent r;
		/* Installed by a fault meanwhile, moved or dropped: not this data's to fill. */
		if (!pending_run_at(&t->pend, addr, (uint64_t)(ch->n - i) * PAGE, &r) ||
		    (r.flags & PEND_ZERO) || r.src != off) {
			i++;
			continue;
		}
		install_run(d, t, r, PATH_DRAIN, (const char *)ch->data + (size_t)i * PAGE);
		i += (uint32_t)((r.end - r.start) / PAGE);
	}
}

static void collect_chunks(struct lazyd *d)
{
	struct src_chunk ch;

	/*
	 * One chunk (at most 32 pages) a step: the event loop serves faults between steps, so
	 * a fault waits for one chunk's install at most, never for a batch of them.
	 */
	for (int i = 0; i < PREFETCH_CHUNKS_PER_STEP && d->pf_used; i++) {
		int rc = d->src.ops->collect(&d->src, &ch);
		if (rc == 0)
			return;
		struct pf_slot *sl = &d->pf[ch.tag];
		if (rc < 0 && !sl->t->gone)
			lazyd_task_fail(d, sl->t,
					"cannot read page data for 0x%lx (%lu pages) from the page "
					"source: %s",
					(unsigned long)sl->start, (unsigned long)(sl->len / PAGE),
					strerror(-rc));
		else if (rc > 0 && !sl->t->gone)
			install_chunk(d, sl, &ch);
		if (ch.last) {
			sl->used = false;
			sl->t->inflight--;
			d->pf_used--;
		}
	}
}

/* Queue one background read for t; false if t has nothing (more) to ask for now. */
static bool submit_one(struct lazyd *d, struct lz_task *t)
{
	struct pend_extent r;
	unsigned slot = 0;

	if (!drainable(t) || t->need_events)
		return false;
	/*
	 * Never ask again for what is in flight. A fault moves the cursor back to where the
	 * task touches, often behind reads already asked for: skip those.
	 */
	uint64_t from = t->cursor;
	for (unsigned guard = 0;; guard++) {
		if (guard > LAZYD_MAX_PREFETCH || !pending_next(&t->pend, from, d->buf_len, true, &r))
			return false;
		/* Wrapped around onto data that may be in flight: wait for it first. */
		if (r.start < from && t->inflight)
			return false;
		const struct pf_slot *hit = NULL;
		for (unsigned k = 0; k < LAZYD_MAX_PREFETCH; k++) {
			const struct pf_slot *sl = &d->pf[k];
			if (sl->used && sl->t == t && r.start < sl->start + sl->len &&
			    sl->start < r.end && (!hit || sl->start < hit->start))
				hit = sl;
		}
		if (!hit)
			break;
		if (hit->start > r.start) {
			r.end = hit->start; /* the part before the read in flight */
			break;
		}
		from = hit->start + hit->len;
	}
	while (d->pf[slot].used)
		slot++;
	int rc = d->src.ops->prefetch(&d->src, t->img, r.src, r.end - r.start, slot);
	if (rc == -EBUSY)
		return false;
	if (rc) {
		lazyd_task_fail(d, t, "cannot ask the page source for 0x%lx: %s",
				(unsigned long)r.start, strerror(-rc));
		return false;
	}
	d->pf[slot] = (struct pf_slot){t, r.start, r.src, r.end - r.start, true};
	d->pf_used++;
	t->inflight++;
	t->cursor = r.end;
	return true;
}

/* The pipelined drain: collect what arrived, then fill the window again, round robin. */
static bool drain_async(struct lazyd *d)
{
	unsigned window = d->o->prefetch_window;
	bool any = false;

	if (window > LAZYD_MAX_PREFETCH)
		window = LAZYD_MAX_PREFETCH;
	collect_chunks(d);
	for (unsigned pass = 0; pass < window && d->pf_used < window; pass++) {
		bool progress = false;
		for (struct lz_task *t = d->tasks; t && d->pf_used < window; t = t->next)
			progress |= submit_one(d, t);
		any |= progress;
		if (!progress)
			break;
	}
	int fd = d->src.ops->poll_fd(&d->src);
	if (d->pf_used && fd >= 0) {
		/* The bulk connection may be new since the last step: (re)register it. */
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &d->src_tag};
		d->src_tag = (struct ep_tag){EP_SRC, NULL};
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) && errno != EEXIST)
			pr_warn("epoll: %s", strerror(errno));
	}
	/* Nothing could be asked for and reads are out: sleep until they arrive. */
	d->drain_blocked = !any && d->pf_used && fd >= 0;
	for (struct lz_task *t = d->tasks; t; t = t->next)
		if (drainable(t))
			return true;
	return d->pf_used > 0;
}

bool lazyd_drain_step(struct lazyd *d)
{
	if (d->src.ops->prefetch)
		return drain_async(d);

	struct lz_task *t = d->drain_at ? d->drain_at : d->tasks;
	struct lz_task *first = t;
	struct pend_extent r;

	if (!t)
		return false;
	/* Round robin over the tasks that still have data pending. */
	while (!drainable(t) || t->need_events) {
		t = t->next ? t->next : d->tasks;
		if (t == first)
			return false;
	}
	d->drain_at = t->next;
	if (!pending_next(&t->pend, t->cursor, d->buf_len, true, &r))
		return true;
	t->cursor = r.end;
	install_run(d, t, r, PATH_DRAIN, NULL);
	return true;
}

bool lazyd_all_done(const struct lazyd *d)
{
	for (const struct lz_task *t = d->tasks; t; t = t->next) {
		if (t->gone)
			continue;
		if (t->killed || t->nfaults || t->pend.data_pages || t->need_events)
			return false;
	}
	return true;
}

void lazyd_free_tasks(struct lazyd *d)
{
	struct lz_task *t = d->tasks;

	while (t) {
		struct lz_task *next = t->next;
		if (t->uffd >= 0)
			close(t->uffd);
		if (t->pidfd >= 0)
			close(t->pidfd);
		if (t->pagemap_fd >= 0)
			close(t->pagemap_fd);
		pending_free(&t->pend);
		free(t->faults);
		free(t);
		t = next;
	}
	d->tasks = NULL;
	d->drain_at = NULL;
}

/*
 * A task's userfaultfd messages. Faults are queued (served by install.c after every
 * message of the turn is read); FORK, REMAP, REMOVE and UNMAP change the pending set at
 * once, so that no page is installed where the task no longer has it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lazyd.h"
#include "util/clock.h"

#define PAGE IMG_PAGE_SIZE
#define MSGS_PER_READ 64
#define MAX_MSGS_PER_CALL 4096
#define IDENT_MAX_TRIES 64
#define IDENT_MAX_KNOWN 256

/* The queue holds about one fault per blocked thread of the task: bounded by its threads. */
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
	/* Latency counts from the read of the fault, the keeper's if it read it. */
	uint64_t at = t->d->msg_read_ns ? t->d->msg_read_ns : mono_ns();
	t->faults[t->nfaults++] = (struct lz_fault){addr & ~(PAGE - 1), at, false};
}

/*
 * The kernel sends FORK before the child has a pid, so the child is named
 * after its parent until lazyd_ident_*() can tell which process it is.
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
	task_info(t, "forked a child with %lu pending pages", (unsigned long)c->pend.pages);
}

/*
 * Which of the parent's children is this uffd's? The one in which the page
 * we are about to install at addr (missing in all of them before) is
 * present after: /proc/PID/pagemap shows it without touching the page.
 */
void lazyd_ident_prepare(struct lazyd *d, struct lz_task *t, uint64_t addr, struct ident *id)
{
	pid_t known[IDENT_MAX_KNOWN], c[IDENT_MAX_CAND];
	size_t nk = 0;

	id->n = 0;
	id->addr = addr;
	if (t->real > 0 || t->parent_real <= 0 || t->ident_tries >= IDENT_MAX_TRIES || d->sharing)
		return;
	t->ident_tries++;
	for (struct lz_task *k = d->tasks; k && nk < IDENT_MAX_KNOWN; k = k->next)
		if (k->real > 0)
			known[nk++] = k->real;
	size_t n = task_children(t->parent_real, known, nk, c, IDENT_MAX_CAND);
	for (size_t i = 0; i < n; i++)
		if (task_page_present(c[i], addr) == 0)
			id->cand[id->n++] = c[i];
}

void lazyd_ident_finish(struct lazyd *d, struct lz_task *t, const struct ident *id)
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
	if (pidfd < 0 || task_page_present(hit, id->addr) != 1) {
		if (pidfd >= 0)
			close(pidfd);
		return;
	}
	t->pidfd = pidfd;
	lazyd_task_is(d, t, hit);
}

void lazyd_task_is(struct lazyd *d, struct lz_task *t, pid_t real)
{
	char was[48];

	snprintf(was, sizeof(was), "%s", t->name);
	t->real = real;
	if (t->pidfd < 0)
		t->pidfd = task_open_pidfd(real);
	t->pid = task_ns_pid(real);
	snprintf(t->name, sizeof(t->name), "pid %d", t->pid);
	task_info(t, "the %s (pid %d here)", was, (int)real);
	keeper_note(d, WK_IDENT, t->slot, t->pid, real);
	lazyd_task_identified(d, t);
}

void lazyd_handle_msg(struct lazyd *d, struct lz_task *t, const struct uffd_msg *m)
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
		t->events++;
		task_debug(
		    t, "mremap 0x%llx -> 0x%llx, %llu bytes", (unsigned long long)m->arg.remap.from,
		    (unsigned long long)m->arg.remap.to, (unsigned long long)m->arg.remap.len);
		{
			/* What was pending at the destination is gone: mremap unmapped it. */
			uint64_t before = t->pend.data_pages;
			if (pending_move(&t->pend, m->arg.remap.from, m->arg.remap.to,
					 m->arg.remap.len))
				lazyd_task_fail(d, t, "out of memory while following mremap");
			t->cnt.dropped += before - t->pend.data_pages;
		}
		break;
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		if (m->event == UFFD_EVENT_REMOVE)
			d->st.removes++;
		else
			d->st.unmaps++;
		t->events++;
		task_debug(
		    t, "%s 0x%llx-0x%llx", m->event == UFFD_EVENT_REMOVE ? "discard" : "munmap",
		    (unsigned long long)m->arg.remove.start, (unsigned long long)m->arg.remove.end);
		lazyd_drop_range(d, t, m->arg.remove.start, m->arg.remove.end);
		break;
	default:
		task_warn(t, "unknown userfaultfd event %u ignored", m->event);
	}
}

void lazyd_read_uffd(struct lazyd *d, struct lz_task *t)
{
	struct uffd_msg msgs[MSGS_PER_READ];
	size_t total = 0;

	if (d->keeper) {
		/* The keeper reads the uffds: have it read them all now, and apply that. */
		keeper_sync(d);
		t->need_events = false;
		return;
	}
	while (!t->gone && total < MAX_MSGS_PER_CALL) {
		unsigned events = 0;
		/* The fill threads stop while we read: an event read must be applied before
		 * any of them installs again (pfill.c). */
		lazyd_fence_hold(d);
		ssize_t n = read(t->uffd, msgs, sizeof(msgs));
		for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(msgs[0]); i++)
			events += msgs[i].event != UFFD_EVENT_PAGEFAULT;
		lazyd_fence_release(d, events);
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
			lazyd_handle_msg(d, t, &msgs[i]);
		total += (size_t)n / sizeof(msgs[0]);
	}
	t->need_events = false;
}

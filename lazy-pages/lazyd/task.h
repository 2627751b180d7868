/* A restored task served by the daemon: its uffd, pending pages and identity. */
#ifndef LAZYD_TASK_H
#define LAZYD_TASK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "img/images.h"
#include "img/workset.h"
#include "pending.h"
#include "util/err.h"
#include "util/log.h"

struct lz_fault {
	uint64_t addr;
	uint64_t t_ns; /* when the fault message was read */
	bool noted;    /* in the working set's notes (workset.c) */
};

/* What happened to a task's data pages (status.c): total == pending + fault + prefetch +
 * dropped at every moment. */
struct lz_task_count {
	uint64_t total;	   /* data pages when we began to serve it (a fork child: at the fork) */
	uint64_t fault;	   /* installed by the fault path */
	uint64_t prefetch; /* installed by the background drain */
	uint64_t dropped;  /* left the set without an install of ours: unmapped, discarded,
			    * found present, or the task was gone */
	uint64_t zero;	   /* zero pages installed */
	uint64_t bytes;	   /* bytes copied */
};

struct lz_task {
	int pid;		    /* as in the images: the pid in the restored tree's namespace */
	pid_t real;		    /* the same task in the daemon's pid namespace; -1 if unknown */
	int pidfd;		    /* -1 if unknown */
	int uffd;		    /* -1 once closed */
	int slot;		    /* the keeper's name for the uffd, -1 without keeper */
	int pagemap_fd;		    /* its /proc/PID/pagemap: -1 not open yet, -2 cannot be */
	const struct img_task *img; /* where its page data lives (a fork child: the parent's) */
	struct pending pend;
	uint64_t cursor;   /* background drain position */
	uint64_t ra_next;  /* where the last fault's window ended */
	uint32_t ra_pages; /* the fault window now: grows while faults are sequential */
	unsigned inflight; /* background reads queued with the page source */
	unsigned jobs;	   /* jobs of the fill threads in flight (pfill.c) */
	uint64_t events;   /* mremap/munmap/madvise events applied (not fork: its parent's
			    * pages stay where they are) */
	struct lz_fault *faults;
	size_t nfaults, faults_cap;
	size_t nwaiting; /* of those, waiting for data the stream is bringing */
	/* workset.c: its recorded first touches, replayed from entry ws_next, at ws_at */
	const struct ws_task *ws;
	uint32_t *ws_by_addr; /* entry indexes by address */
	uint32_t *ws_reach;   /* ws_reach[i]: of ws_by_addr[0..i], the entry that ends last */
	uint32_t ws_next;
	uint32_t ws_noted; /* entries before this one noted as replayed */
	uint64_t ws_at;
	bool gone;	   /* exited or mm gone: nothing more to do */
	bool exit_seen;	   /* exited, gone once the keeper's messages for it are applied */
	bool killed;	   /* failed: SIGKILLed (or unkillable), served no more */
	bool need_events;  /* an install hit EAGAIN: read this uffd's events first */
	pid_t parent_real; /* a fork child whose pid is not known yet: its parent */
	unsigned ident_tries;
	uint64_t enoent_at; /* a page the kernel had no VMA for; dropped if it says so again
			     * after this task's events were read (serve.c) */
	struct lz_task_count cnt;
	char name[48];	 /* for logs: "pid 42" or "pid 42 (child of 41)" */
	struct lazyd *d; /* the daemon serving it (for the event loop's handlers) */
	struct lz_task *next;
};

/* One log line about a task: "pid 42: what happened". */
#define task_err(t, fmt, ...) pr_err("%s: " fmt, (t)->name, ##__VA_ARGS__)
#define task_warn(t, fmt, ...) pr_warn("%s: " fmt, (t)->name, ##__VA_ARGS__)
#define task_info(t, fmt, ...) pr_info("%s: " fmt, (t)->name, ##__VA_ARGS__)
#define task_debug(t, fmt, ...) pr_debug("%s: " fmt, (t)->name, ##__VA_ARGS__)

/*
 * The task restore sent as 'pid', in our pid namespace. CRIU's tasks send
 * their own pid and uffd over criu's connection, so the process the kernel
 * names as the sender (SCM_CREDENTIALS) must be that task, in the restoring
 * criu's tree (peer: criu's pid). 0 with *real = it; 0 with *real = 0 if the
 * sender has exited since (nothing to serve); else -EPERM with e saying why
 * the item is refused, and *real = the sender if it is that task, -1 if not.
 */
int task_resolve_sender(pid_t peer, pid_t sender, int pid, pid_t *real, struct errmsg *e);
/* Children of 'parent' that are not in 'known': up to max into out. */
size_t task_children(pid_t parent, const pid_t *known, size_t nknown, pid_t *out, size_t max);
/* 1 if the page at addr is present in pid's memory, 0 if not, -1 if it cannot be told. */
int task_page_present(pid_t pid, uint64_t addr);
/* t's pagemap, opened once its pid is known; -1 if it cannot be read. */
int task_pagemap(struct lz_task *t);
/*
 * The first run of guard pages (MADV_GUARD_INSTALL; pagemap bit 58, Linux 6.14+) in
 * [start, end) of the process whose pagemap is fd: 1 with [*gstart, *gend) (clipped to the
 * range), 0 if there is none, -1 if the pagemap cannot be read.
 */
int task_find_guard(int fd, uint64_t start, uint64_t end, uint64_t *gstart, uint64_t *gend);
/* The pid of a daemon-namespace process as seen in its own namespace, or -1. */
int task_ns_pid(pid_t real);
int task_open_pidfd(pid_t real);
/* SIGKILL the task; false if we could not (pid unknown). */
bool task_kill(struct lz_task *t);

#endif

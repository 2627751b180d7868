/*
 * Crash safety: a keeper process holds every userfaultfd of the restore for its whole life
 * and runs the worker (the daemon proper: images, network, installs). Only the keeper reads
 * the uffds; it forwards each message to the worker, logs every non-fault message (restore
 * items, fork/mremap/munmap/madvise events, what the worker said of each task) and, when the
 * worker dies, starts a new one and replays that log to it, with the fds. The new worker
 * rebuilds its pending sets from the images and the replay, drops what the tasks' pagemaps
 * show present, wakes every waiting thread (a fault the dead worker had read faults again)
 * and goes on. While no worker runs, faulting threads stay blocked in the kernel.
 *
 * The race the keeper must not open: once it has read an event (say an mremap) the kernel
 * lets installs through again, although the worker has not applied the event yet. So the
 * keeper reads under a lock shared with the worker (a robust mutex in shared memory) and
 * counts the events it read; the worker installs under that lock only when it has applied as
 * many events as the keeper read, and otherwise says -EAGAIN (read the events first), as the
 * kernel itself does while an event is queued (keeper_link.c wraps the fill engine).
 *
 * keeper.c is the keeper, keeper_link.c the worker's end. Messages are plain structs over a
 * SOCK_SEQPACKET socketpair (both ends are the same binary): a datagram holds up to
 * KP_BATCH messages, or exactly one message and its fd (KP_TASK, a fork's KP_UFFD).
 */
#ifndef LAZYD_KEEPER_H
#define LAZYD_KEEPER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/userfaultfd.h>

#include "fill/fill_pool.h"
#include "opts.h"

enum kp_type {
	/* keeper -> worker */
	KP_HELLO = 1,	   /* a: worker restarts so far; b: 1 = a replay follows */
	KP_CONNECTED,	   /* the restore connected: a = criu's pid */
	KP_TASK,	   /* restore sent a task: a = pid as sent, b = its sender; fd (or none:
			    * closed since); flags KPF_* */
	KP_ZOMBIE,	   /* a = pid */
	KP_FINISHED,	   /* the restore-finished marker */
	KP_RESTORE_FAILED, /* a: 0 criu hung up early, 1 protocol error */
	KP_UFFD,	   /* slot's uffd message m; FORK: b = the child's slot, fd (or none) */
	KP_GONE,	   /* slot's uffd says its address space is gone */
	KP_IDENT,	   /* replay: slot (a fork child) is process c here, pid a in its ns */
	KP_LIVE,	   /* the replay is over: serve */
	KP_SYNCED,	   /* after WK_SYNC: every uffd was read, all of it is before this */
	/* worker -> keeper */
	WK_READY = 64, /* set up (images, source): the restore may start */
	WK_ACCEPT,     /* slot is served: c = the process */
	WK_IDENT,      /* slot (a fork child) is process c, pid a in its ns */
	WK_DROP,       /* slot is no longer needed: the keeper closes its uffd; a: 1 refused,
			* 2 its process must be killed first (a fork we cannot serve) */
	WK_SYNC,       /* read every uffd now, then KP_SYNCED */
	WK_DONE,       /* the worker exits on purpose with code a */
	WK_KILLED,     /* the worker killed a task: the restore did not succeed (exit code) */
};

#define KPF_ACCEPTED 1u /* KP_TASK: a worker served it (c = the process): no new checks */
#define KPF_REFUSED 2u	/* KP_TASK: a worker refused it (killed it if it could) */

struct kp_msg {
	uint32_t type, slot;
	int32_t a, b, c;
	uint32_t flags;
	uint64_t t_ns; /* KP_UFFD: when the keeper read it (CLOCK_MONOTONIC: fault latency) */
	struct uffd_msg m;
};

#define KP_BATCH 64

/* Shared by the keeper and its worker (MAP_SHARED, made before the first fork). */
struct keeper_shm {
	pthread_mutex_t lock;	       /* robust, process-shared */
	volatile uint64_t events_read; /* non-fault uffd messages the keeper has read */
	/* The worker's fill threads' fence (fill_pool.h): the keeper holds these too while it
	 * reads, and events_read is the fence's count. */
	pthread_mutex_t fill_lock[FILL_POOL_MAX];
	volatile int fill_owner[FILL_POOL_MAX];
	atomic_int fill_readers;
	volatile int lock_owner; /* FENCE_READER (the keeper) or FENCE_INSTALLER (a worker) */
};

/* The worker's end (keeper_link.c); NULL in a daemon without keeper (--keeper off). */
struct keeper_link {
	int fd;
	struct keeper_shm *shm;
	uint64_t events_seen; /* non-fault uffd messages applied */
	unsigned restarts;    /* restarts before this worker (set at fork, KP_HELLO says again) */
	bool resuming, live, synced, lost;
};

/* What keeper_start() returns in a worker: go and serve through the link. */
#define KEEPER_WORKER 1000

/*
 * Listen on lazy-pages.socket (the cwd is the work dir), start the worker, keep the uffds.
 * Returns in the keeper its exit code (0, 1) once the restore is over, or KEEPER_WORKER in
 * a worker process with *link set (its fd and the shared page): the caller serves.
 */
int keeper_start(const struct lazyd_opts *o, struct keeper_link *link);

#endif

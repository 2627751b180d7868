/* The keeper's parts (keeper.h): keeper.c runs it (workers, crashes, giving up), keeper_relay.c
 * moves what it holds (the restore's items, the uffds' messages, the log, the notes). */
#ifndef LAZYD_KEEPER_INT_H
#define LAZYD_KEEPER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "keeper.h"
#include "lpsock.h"

#define KEEP_MAX_SLOTS 65536 /* uffds in the whole restore: its tasks and every fork */
#define KEEP_LOG_MAX 262144  /* 16 MiB: touched only as it fills */
#define KEEP_READS_PER_WAKE 8

enum tag { T_LISTEN = 1, T_CONN, T_SIG, T_LINK, T_WORKER, T_SLOT = 16 };

struct kslot {
	int fd;		/* the uffd, -1 once closed */
	int pidfd;	/* its process once a worker said which, else -1 */
	pid_t real;	/* that process, 0 if not known */
	int parent;	/* a fork child: its parent's slot, else -1 */
	pid_t sender;	/* a restore item: who sent it */
	uint32_t entry; /* its KP_TASK or fork entry in the log */
};

struct keeper {
	const struct lazyd_opts *o;
	int ep, listen_fd, conn_fd, sig_fd, link_fd, worker_pidfd, ready_fd;
	pid_t worker, peer;
	bool live;	 /* the worker has had its replay: forward to it */
	bool ever_ready; /* the restore may connect: said once */
	bool done_said;	 /* the worker said it exits on purpose */
	bool finished;	 /* the restore-finished marker came */
	bool stopping;	 /* a signal: the worker was asked to stop */
	bool any_killed; /* a worker killed a task: exit 1 whatever a later worker says */
	int done_code;
	size_t nr_tasks, received;
	struct keeper_shm *shm;
	struct fill_fence fence; /* the worker's fill threads' (shm's fill_lock) */
	bool published;		 /* the socket is LPS_NAME (else LPS_STARTING) */
	struct lps_rx rx;
	unsigned restarts;
	double crash_at[64]; /* when the last workers died (a ring) */
	uint32_t nslots;
	bool log_full;
	uint32_t nlog;
};

extern struct kslot keep_slots[KEEP_MAX_SLOTS];
extern struct kp_msg keep_log[KEEP_LOG_MAX];

int keep_watch(struct keeper *k, int fd, uint32_t tag);
void keep_unwatch(struct keeper *k, int fd);
void keep_slot_close(struct keeper *k, uint32_t s);
void keep_drop_conn(struct keeper *k);
bool keep_lock(struct keeper *k);
void keep_unlock(struct keeper *k);
/* SIGKILL slot s's process: by its pidfd or pid, or (a fork child not named yet) every child
 * of its parent that no slot names. */
void keep_kill_slot(const struct keeper *k, uint32_t s);
/* Readable fds: the listening socket, the restore's connection (-ENOSPC: a task it cannot
 * hold), a uffd (-ENOSPC: a fork it cannot hold), the worker's link (its notes). */
void keep_on_accept(struct keeper *k);
int keep_on_conn(struct keeper *k);
int keep_read_slot(struct keeper *k, uint32_t s);
int keep_on_link(struct keeper *k);

#endif

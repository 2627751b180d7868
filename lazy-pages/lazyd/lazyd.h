/*
 * The daemon's state, shared by its files:
 *   main.c     options, set-up, the event loop's turn (faults first, then one background step)
 *   restore.c  the restore's connection on lazy-pages.socket: tasks and their uffds arrive
 *   tasks.c    a served task's life: tracked, gone, failed (killed)
 *   events.c   a task's uffd messages: faults queued, fork/mremap/munmap/madvise applied
 *   install.c  installing runs of pending pages, the fault path
 *   batch.c    several runs at once through the engine's batch entry point
 *   drain.c    the background stream of what no task asked for yet
 *   pfill.c    its jobs for the fill threads (fill_pool.h), and what they did
 * The order is one way: main -> restore -> drain -> pfill -> batch -> install -> events ->
 * tasks.
 */
#ifndef LAZYD_LAZYD_H
#define LAZYD_LAZYD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/userfaultfd.h>

#include "fill/fill.h"
#include "fill/fill_pool.h"
#include "keeper.h"
#include "img/images.h"
#include "lpsock.h"
#include "opts.h"
#include "share_cache.h"
#include "source/source.h"
#include "stats.h"
#include "status.h"
#include "task.h"
#include "util/ev.h"
#include "window.h"

struct metrics_http;

/*
 * A background read queued with the page source (its tag is the slot's index): one range
 * of the pages file, [src, src + len), which holds the data of runs that were pending at
 * these addresses when it was asked for. A task's runs sit one after another in the pages
 * file with the zero pages (never dumped) between them in the address space only, so one
 * read covers many runs.
 */
struct pf_run {
	uint64_t start, src, len;
};

#define PF_RUNS 32	/* runs in one background read */
#define PF_GAP_PAGES 16 /* at most this many pages between two of its runs */

struct pf_slot {
	struct lz_task *t;
	uint64_t start, end; /* from the first run's start to the last one's end */
	uint64_t src, len;
	struct pf_run run[PF_RUNS];
	unsigned nrun;
	bool used;
	bool replay; /* a read of the working-set replay (workset.c) */
	bool fault;  /* a fault's read (source faultv): on the faults' path, not the stream's */
	struct sw_mark sw; /* the stream's: what the window measures on it */
};

/* The run of sl that overlaps [start, end) lowest, or NULL. */
const struct pf_run *pf_slot_run(const struct pf_slot *sl, uint64_t start, uint64_t end);
/* The run in flight for a relative of t (another task reading t's image) whose data overlaps
 * pages-file bytes [src, src + len) lowest, or NULL. */
const struct pf_run *pf_relative_run(const struct lazyd *d, const struct lz_task *t, uint64_t src,
				     uint64_t len);
/* The same, or a relative's fill job that holds such data from a read (its lowest run): in
 * *out. */
bool pf_relative_held(const struct lazyd *d, const struct lz_task *t, uint64_t src, uint64_t len,
		      struct pf_run *out);

#define LAZYD_MAX_PREFETCH 64
#define LAZYD_FAULT_READS 16 /* faults' reads in flight (source faultv) */
#define LAZYD_PF_SLOTS (LAZYD_MAX_PREFETCH + LAZYD_FAULT_READS)

enum fill_path { PATH_FAULT, PATH_DRAIN, PATH_REPLAY /* the drain, from the working set */ };

/*
 * A job of the fill threads (pfill.c): pending runs of one task with their data (mapped
 * image pages), installed by a thread while the loop goes on. Its runs stay in the task's
 * pending set until the job is settled; the drain and the fault path treat them as in
 * flight (a fault there waits: the thread's install wakes it).
 */
struct lz_job {
	struct fill_job j;
	struct lz_task *t;		      /* NULL: the slot is free */
	uint64_t start, end;		      /* from the first run's start to the last one's end */
	uint64_t t_events;		      /* t's events applied when it was planned */
	struct pend_extent run[FILL_JOB_MAX]; /* j.ext[i] installs run[i] */
	enum fill_path path;
	bool done; /* the thread is done with it: to settle */
	int hold;  /* the source's token for the chunk its data lies in (stream.c), or -1 */
};

#define LAZYD_MAX_JOBS (2 * FILL_POOL_MAX)

struct lazyd {
	struct lazyd_opts *o;
	struct img_set img;
	struct page_source src;
	struct filler fill;
	struct lazyd_stats st;
	struct ev_loop *loop;
	int listen_fd, conn_fd, signal_fd;
	pid_t peer; /* the restoring criu */
	bool stop;  /* a signal, or the restore failed: kill what still needs pages, then exit */
	int rc;	    /* the exit code's cause: 0 or -1 */
	struct lps_rx rx;
	size_t received; /* pstree entries received */
	bool restore_finished;
	struct lz_task *tasks;
	struct lz_task *ghosts;	  /* keeper_link.c: exited tasks while a replay rebuilds forks */
	struct lz_task *drain_at; /* round-robin position */
	void *buf;		  /* page data staging, o->drain_chunk pages */
	size_t buf_len;
	uint64_t progress_timer;
	unsigned progress_ticks;
	struct pf_slot pf[LAZYD_PF_SLOTS];
	unsigned pf_used;	 /* slots in use: the stream's reads and the faults' */
	unsigned pf_fault;	 /* of them, the faults' */
	bool drain_blocked;	 /* every background read is queued: wait for the source */
	struct stream_window sw; /* --prefetch-window auto: the stream's bytes in flight */
	bool faults_wait;	 /* the source reconnects its fault path: wait for src_timer */
	uint64_t src_timer, src_timer_at; /* wakes the loop when the source may be tried (ns) */
	unsigned items_refused;		  /* tasks restore sent that we did not serve */
	/* The operator's view (status.h): the status socket, /metrics, the install rate. */
	int ctl_fd;		      /* WORKDIR/criu-lazyd.status, or -1 */
	struct metrics_http *metrics; /* --metrics-address, or NULL */
	struct lazyd_rate rate;
	const char *work_dir;	    /* absolute, for the status */
	struct keeper_link *keeper; /* NULL: no keeper (--keeper off), we read the uffds */
	uint64_t msg_read_ns;	    /* the message being handled was read then (0: now) */
	struct share_cache shared;  /* fetched data kept for fork relatives */
	struct rx_map *rxmap;	    /* per image task: its pages received (rxmap.c) */
	bool sharing;		    /* installing data fetched for another task (no ident) */
	/* Working-set replay (workset.c): on once the images' identity is known. */
	bool ws_on, ws_oom;
	int ws_dirfd;		 /* the images dir, where the record lives */
	struct workset ws_rec;	 /* the record loaded: replayed, and merged into at the end */
	struct workset ws_notes; /* this restore's first touches */
	uint64_t ws_t0;		 /* ns: the first fault (the record's time 0) */
	bool ws_hold;		 /* the stream waits while the tasks fault (workset.c) */
	uint64_t ws_restored_ns, ws_last_fault_ns;
	/* Parallel fill (pfill.c): NULL pool: the loop installs everything itself. */
	struct fill_pool *pool;
	unsigned fill_threads;
	struct fill_fence fence;
	pthread_mutex_t fence_locks[FILL_POOL_MAX]; /* without keeper: we read the uffds */
	volatile int fence_owner[FILL_POOL_MAX];
	uint64_t fence_gen; /* without keeper: events read */
	atomic_int fence_readers;
	bool fence_held;
	struct lz_job job[LAZYD_MAX_JOBS];
	unsigned jobs_max, jobs_used;
};

/* tasks.c */
struct lz_task *lazyd_add_task(struct lazyd *d, int pid, pid_t real, int uffd,
			       const struct img_task *img, const struct pending *pend,
			       const char *name);
/* The uffd's task is known now (a fork child identified): bind it in the fill engine. */
void lazyd_task_identified(struct lazyd *d, struct lz_task *t);
void lazyd_task_gone(struct lazyd *d, struct lz_task *t, const char *why);
/* Its pidfd or the kernel (ESRCH) says t exited: gone, once all its uffd said is applied
 * (with a keeper: t->exit_seen now, gone at lazyd_reap_exited() in the loop's turn). */
void lazyd_task_exited(struct lazyd *d, struct lz_task *t);
void lazyd_reap_exited(struct lazyd *d);
void lazyd_task_fail(struct lazyd *d, struct lz_task *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Pending pages in [start, end) that the task will never see: dropped and counted. */
void lazyd_drop_range(struct lazyd *d, struct lz_task *t, uint64_t start, uint64_t end);
bool lazyd_all_done(const struct lazyd *d);
void lazyd_free_tasks(struct lazyd *d);

/* events.c */
/* Read and handle this task's uffd messages (events now, faults queued). */
void lazyd_read_uffd(struct lazyd *d, struct lz_task *t);
void lazyd_handle_msg(struct lazyd *d, struct lz_task *t, const struct uffd_msg *m);
/*
 * A fork child is named after its parent until we know which process it is: the one of
 * the parent's children in which the page about to be installed at addr appears.
 */
#define IDENT_MAX_CAND 64
struct ident {
	pid_t cand[IDENT_MAX_CAND];
	size_t n;
	uint64_t addr;
};
void lazyd_ident_prepare(struct lazyd *d, struct lz_task *t, uint64_t addr, struct ident *id);
void lazyd_ident_finish(struct lazyd *d, struct lz_task *t, const struct ident *id);
/* A fork child t is process real: named, watched, bound in the fill engine, told the keeper. */
void lazyd_task_is(struct lazyd *d, struct lz_task *t, pid_t real);

/* install.c */
/*
 * Install one run (inside one pending extent) from data (NULL: read or map it from the
 * source). 0 when the run's first page is settled (installed, or found present), -EAGAIN
 * when the uffd's events must be read first (the caller retries after), or another -errno
 * when the task was dropped or failed.
 */
int lazyd_install_run(struct lazyd *d, struct lz_task *t, struct pend_extent r, enum fill_path p,
		      const void *data);
/* The source said -EAGAIN (faults) or has nothing while it reconnects (the drain): that
 * path waits until its wait_ms() has passed (an event loop timer, never a sleep); queued
 * faults stay queued, everything else goes on. */
void lazyd_source_backoff(struct lazyd *d, bool faults);
/* The same with the wait given: that path waits ms (0: not at all). */
void lazyd_source_wake_in(struct lazyd *d, unsigned ms, bool faults);
void lazyd_source_wake_in_ns(struct lazyd *d, uint64_t ns, bool faults);
/* The first bytes of run r went in by path p: counted (stats, t's counts) and out of t's
 * pending set. 0, or -ENOMEM when the set cannot follow (t failed, logged). */
int lazyd_installed(struct lazyd *d, struct lz_task *t, const struct pend_extent *r, uint64_t bytes,
		    enum fill_path p);
/* The page at 'at' was present already (EEXIST): it leaves t's set, counted as dropped. */
void lazyd_found_present(struct lazyd *d, struct lz_task *t, uint64_t at);
/* Keep len bytes of t's data from src (share_cache.h): a relative, or t itself once its
 * address space settles, will want them. */
void lazyd_keep_fetched(struct lazyd *d, const struct lz_task *t, uint64_t src, const void *data,
			uint64_t len);
/* Data for run r that a relative of t fetched (share_cache.h), in d->buf: r is cut to what
 * was there, counted as shared. false if its first page is not there. */
bool lazyd_shared_hit(struct lazyd *d, struct lz_task *t, struct pend_extent *r);
/* r cut before its first page after the first whose data the share cache keeps. */
void lazyd_shared_cut(const struct lazyd *d, const struct lz_task *t, struct pend_extent *r);
/*
 * Data t's run at addr (key src, len bytes) just fetched from the page source: installed
 * also in every other task that has the same data pending at the same address (a fork
 * child and its parent), and, over the network, kept a while for those that have it
 * elsewhere or cannot take it now (share_cache.h), so that no page is fetched twice for them.
 */
void lazyd_share_fetched(struct lazyd *d, struct lz_task *t, uint64_t addr, uint64_t src,
			 const void *data, uint64_t len);
/* Serve queued faults of every task. */
void lazyd_serve_faults(struct lazyd *d);

/* batch.c */
#define LAZYD_BATCH_MAX 32 /* runs per batch */
/*
 * Install runs r[0..n) of t (ascending, each inside one pending extent) from data[i]
 * (NULL only for zero runs) as one batch through the engine's batch entry point
 * (lazyfill.ko's), when it has one; what the batch did not settle, and every run when
 * the engine has none, goes through lazyd_install_run() one by one (data[i] given
 * to it as is: NULL lets it read or map the data itself). lazyd_can_batch(): whether t's
 * runs can go as one batch now (see batch.c).
 */
bool lazyd_can_batch(const struct lazyd *d, const struct lz_task *t);
void lazyd_install_batch(struct lazyd *d, struct lz_task *t, const struct pend_extent *r,
			 const void *const *data, uint32_t n, enum fill_path p);
/* The bytes ext[i].done of runs r[0..n) went in by path p: counted, out of t's pending set
 * (lazyd_installed). 0, or -ENOMEM when t failed. */
int lazyd_installed_ext(struct lazyd *d, struct lz_task *t, const struct pend_extent *r,
			const struct fill_extent *ext, uint32_t n, enum fill_path p);
/* What an install of run r (from data, or NULL) left, e's done and result saying what: the
 * present page found, the rest through lazyd_install_run(). */
void lazyd_settle_rest(struct lazyd *d, struct lz_task *t, const struct pend_extent *r,
		       const void *data, const struct fill_extent *e, enum fill_path p);

/* workset.c: --working-set (img/workset.h) */
/* Load the record beside the images that matches them (after the source is open). */
void lazyd_ws_start(struct lazyd *d);
/* An image task arrived: its recorded first touches, if any, to replay. */
void lazyd_ws_attach(struct lazyd *d, struct lz_task *t);
void lazyd_ws_detach(struct lz_task *t);
/* t touched addr first (a fault; pages: what the fault installs from there): noted, and
 * the replay goes on after it if the task got there first. */
void lazyd_ws_fault(struct lazyd *d, struct lz_task *t, uint64_t addr, uint64_t pages);
/* The next pending run (data or zero, at most max bytes) of t's replay; false when the
 * replay is done. The replay's position moves past it. */
bool lazyd_ws_next(struct lz_task *t, uint64_t max, struct pend_extent *r);
/* The restore finished (the tasks run): whether the stream holds back for the record. */
void lazyd_ws_restored(struct lazyd *d);
/* true while the stream holds back, with *wait_ms until it looks again. */
bool lazyd_ws_holding(const struct lazyd *d, unsigned *wait_ms);
/* The end: this restore's notes merged into the record, written beside the images (the
 * record and the dir are let go in main.c's teardown). */
void lazyd_ws_finish(struct lazyd *d);

/* rxmap.c: the pages received over the network, by image task and key */
struct rx_map {
	uint64_t *bits;
	uint64_t npages;
	bool off; /* none is kept (keys that are addresses, or no memory) */
};
/* pages of img's data at key src came from the network source: a page that came before
 * counts in st.pages_rx_twice. */
void lazyd_rx_note(struct lazyd *d, const struct img_task *img, uint64_t src, uint64_t pages);
void lazyd_rx_free(struct lazyd *d);

/* pfill.c: the fill threads (--fill-threads), for the stream (mapped images, criu-imgd) */
/* Start them (after the keeper's link, before the restore): 0, or -1 (logged). */
int lazyd_pfill_start(struct lazyd *d, const struct filler *engine);
/* Wait for every job, settle them, stop the threads (teardown, before the uffds close). */
void lazyd_pfill_stop(struct lazyd *d);
/* Whether t's stream can go to the threads (there is room when d->jobs_used < jobs_max). */
bool lazyd_pfill_can(const struct lazyd *d, const struct lz_task *t);
/* Hand runs r[0..n) of t (each inside one pending extent, in any order; data[i] NULL only
 * for zero runs) to the threads as one job; hold: the source's token for the buffer the
 * data lies in (released when the job is settled), or -1 (mapped images). */
void lazyd_pfill_submit(struct lazyd *d, struct lz_task *t, const struct pend_extent *r,
			const void *const *data, uint32_t n, enum fill_path p, int hold);
/* The run of a job in flight for t that overlaps [start, end) lowest, or NULL. */
const struct pend_extent *lazyd_job_run(const struct lazyd *d, const struct lz_task *t,
					uint64_t start, uint64_t end);
/* t is going (its uffd closes): wait for its jobs; what they installed is counted. */
void lazyd_pfill_forget(struct lazyd *d, struct lz_task *t);
/* Without keeper, around a read of the uffds: no thread installs meanwhile, and the jobs
 * planned before 'events' events were read are stale. */
void lazyd_fence_hold(struct lazyd *d);
void lazyd_fence_release(struct lazyd *d, unsigned events);

/* drain.c */
/* One background step; false when nothing is left to prefetch. */
bool lazyd_drain_step(struct lazyd *d);
/* One step of the pipelined stream (stream.c): what came installed, the window refilled. */
bool lazyd_stream_step(struct lazyd *d);
/*
 * A fault's run r of t read on the source's fault path (faultv), installed by
 * collect_chunks when it comes: 0 (the fault waits for it, as for the stream's reads),
 * -EBUSY (that path is full: the fault waits for one of its reads to end), or another
 * -errno (t failed, logged).
 */
int lazyd_fault_read(struct lazyd *d, struct lz_task *t, const struct pend_extent *r);
/* The faults' reads: take what came, and watch their connection (main loop, each turn). */
void lazyd_fault_reads(struct lazyd *d);

/* restore.c */
/* Listen for the restore on lazy-pages.socket (in the work dir) through the loop. */
int lazyd_listen(struct lazyd *d);
/* Kill every task that still needs pages from us: used when we cannot go on. */
void lazyd_kill_pending(struct lazyd *d, const char *why);
/*
 * One item of the restore's connection (read by us, or by the keeper and forwarded): a
 * task (m's uffd is ours now; -1: the keeper's replay of a task closed since), a zombie,
 * the finished marker, or the end of the connection. slot: the keeper's name for the uffd
 * (-1 without keeper); flags KPF_*: what an earlier worker decided (accepted: it is
 * process 'real', no new checks).
 */
void lazyd_restore_item(struct lazyd *d, enum lps_item it, const struct lps_msg *m, int slot,
			uint32_t flags, pid_t real);

/* keeper_link.c: the worker's end of the keeper (keeper.h); all no-ops without keeper. */
/* Set up the link and take the keeper's replay (a restarted worker resumes). 0 or -errno. */
int keeper_link_start(struct lazyd *d);
/* Installs only when every event the keeper read has been applied (keeper.h). */
void keeper_guard_filler(struct lazyd *d);
/* A task that exited before it was served: a ghost that only its forks inherit from. */
void keeper_ghost(struct lazyd *d, int slot, const struct img_task *img);
void keeper_drop_ghosts(struct lazyd *d); /* all of them (teardown) */
/* Have the keeper read every uffd now and apply all it read (the uffds' "read events"). */
void keeper_sync(struct lazyd *d);
/* Tell the keeper what a new worker must know: WK_ACCEPT, WK_IDENT, WK_DROP, WK_DONE.
 * Never blocks (queued while the link is full); keeper_flush_notes() before exiting. */
void keeper_note(struct lazyd *d, uint32_t type, int slot, int32_t a, int32_t c);
void keeper_flush_notes(struct lazyd *d, bool wait);

/* --image-server and an images dir without images: fetch the image's metadata (fetch.c);
 * then *fp = the images' fingerprint (img/fingerprint.h) that every server must have.
 * 0 or -errno (logged). */
int lazyd_fetch_meta(const struct lazyd_opts *o, uint64_t *fp);

#endif

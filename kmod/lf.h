/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lazyfill internals: sessions, counters, and the pieces of the batch path.
 */
#ifndef LAZYFILL_LF_H
#define LAZYFILL_LF_H

#include <linux/atomic.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/lazyfill.h>

struct file;
struct mm_struct;
struct pid;

/* Counters kept per session and globally (netlink LAZYFILL_A_*). */
enum lf_counter {
	LF_C_BATCHES,
	LF_C_EXTENTS,
	LF_C_PAGES,
	LF_C_BYTES,
	LF_C_WAKES,
	LF_C_EAGAIN,
	LF_C_EEXIST,
	LF_C_REFUSED,
	LF_C_NR,
};

struct lf_counters {
	atomic64_t v[LF_C_NR];
};

/* Session flags (bits of lf_session.flags). */
#define LF_S_EXITED	0	/* the task has exited: event sent (or being sent) */
#define LF_S_PROVEN	1	/* a VMA of the mm was seen registered with the uffd */

/*
 * One open /dev/lazyfill. Unbound until LAZYFILL_IOC_BIND; once bound the
 * binding never changes, so the batch path reads it without locks after
 * observing ->bound. It lives as long as the file: netlink readers look it
 * up under RCU, hence kfree_rcu().
 */
struct lf_session {
	struct mutex bind_lock;		/* serializes BIND */
	bool bound;			/* smp_store_release() once bound */
	u32 id;
	struct file *uffd;		/* the task's userfaultfd (a reference) */
	const void *uffd_ctx;		/* its private_data: compared, never used */
	struct mm_struct *mm;		/* mmgrab()ed; mmget_not_zero() per batch */
	struct pid *pid;		/* the task (thread-group leader) */
	pid_t pid_nr;			/* its pid in the initial namespace */
	wait_queue_entry_t exit_wait;	/* on pid->wait_pidfd */
	struct work_struct exit_work;	/* sends the exit event */
	unsigned long flags;
	struct lf_counters c;
	struct rcu_head rcu;
};

/* Global state (main.c). */
extern struct lf_counters lf_global;
extern atomic64_t lf_sessions_live;
extern atomic64_t lf_sessions_total;

static inline void lf_count(struct lf_session *s, enum lf_counter which, s64 n)
{
	atomic64_add(n, &s->c.v[which]);
	atomic64_add(n, &lf_global.v[which]);
}

/* session.c */
bool lf_mm_has_ctx_locked(struct mm_struct *mm, const void *ctx);
struct lf_session *lf_session_new(void);
void lf_session_release(struct lf_session *s);
long lf_session_bind(struct lf_session *s, void __user *arg);
struct lf_session *lf_session_lookup_rcu(u32 id);
struct lf_session *lf_session_next_rcu(unsigned long *id);

static inline bool lf_session_bound(struct lf_session *s)
{
	/* Pairs with the release in lf_do_bind(): the binding is complete. */
	return smp_load_acquire(&s->bound);
}

/* validate.c: a batch copied in and checked, before anything is installed. */
struct lf_span {
	u64 start;
	u64 end;
	u32 idx;
};

struct lf_batch {
	struct lazyfill_batch hdr;
	struct lazyfill_extent *ext;	/* hdr.count entries, kernel copy */
	struct lf_span *span;		/* the same extents sorted by start */
	u64 bytes;			/* sum of lengths (of the good ones) */
	u32 limit;			/* extents [0, limit) passed the field checks */
	long err;			/* why extent limit did not (0: all did) */
	bool need_zero_buf;
};

long lf_batch_load(struct lf_batch *b, const void __user *arg);
long lf_batch_check_vmas(struct lf_session *s, struct lf_batch *b);
long lf_batch_prepare_user(struct lf_batch *b);
void lf_batch_free(struct lf_batch *b);

/* install.c */
long lf_fill(struct lf_session *s, void __user *arg);

/* genl.c */
int lf_genl_init(void);
void lf_genl_exit(void);
void lf_genl_exit_event(struct lf_session *s);

#endif /* LAZYFILL_LF_H */

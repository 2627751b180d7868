/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * lazyfill: batched, validated page installs into a task served through
 * userfaultfd (the lazy-pages restore of CRIU).
 *
 * Usage: open /dev/lazyfill (one open file = one session), bind it once with
 * LAZYFILL_IOC_BIND to a task's userfaultfd and the task (pidfd or pid), then
 * issue LAZYFILL_IOC_FILL batches from any number of threads.
 *
 * Every struct starts with its own version; unknown versions, unknown flags
 * and non-zero reserved fields are refused with EINVAL.
 */
#ifndef _UAPI_LINUX_LAZYFILL_H
#define _UAPI_LINUX_LAZYFILL_H

#include <linux/const.h>
#include <linux/types.h>
#include <linux/ioctl.h>

#define LAZYFILL_DEVICE		"/dev/lazyfill"
#define LAZYFILL_UAPI_VERSION	1

/* Limits of one batch. */
#define LAZYFILL_MAX_EXTENTS	4096
#define LAZYFILL_MAX_BYTES	(256ULL << 20)	/* sum of extent lengths */
/* The scratch area the module uses for its userfaultfd argument blocks. */
#define LAZYFILL_SCRATCH_SIZE	64

struct lazyfill_info {
	__u32 version;		/* out: LAZYFILL_UAPI_VERSION */
	__u32 max_extents;	/* out */
	__u64 max_bytes;	/* out */
	__u32 scratch_size;	/* out */
	__u32 page_size;	/* out */
	__u64 reserved[4];	/* out: zero */
};

/*
 * Bind flag: refuse (EPERM) unless some VMA of the task is registered with
 * the uffd now. Without it the binding is proven by the first batch that
 * finds one (CRIU hands a uffd over before registering anything with it).
 * With it, binding is an exact test of "is this uffd that task's?", e.g.
 * to tell which child a fork event's uffd belongs to.
 */
#define LAZYFILL_BIND_VERIFY	_BITUL(0)

/* Bind this open file to one task. Exactly one of pidfd >= 0 or pid > 0. */
struct lazyfill_bind {
	__u32 version;		/* in: LAZYFILL_UAPI_VERSION */
	__u32 flags;		/* in: LAZYFILL_BIND_* */
	__s32 uffd;		/* in: the task's userfaultfd */
	__s32 pidfd;		/* in: a pidfd of the task, or -1 */
	__s32 pid;		/* in: with pidfd == -1: the task's pid (caller's pid ns) */
	__u32 session;		/* out: the session id (netlink counters, events) */
	__u64 reserved[2];	/* in: zero */
};

enum lazyfill_mode {
	LAZYFILL_MODE_COPY = 1,	/* copy len bytes from src */
	LAZYFILL_MODE_ZERO = 2,	/* zero-filled pages; src must be 0 */
};

/* Extent flags. */
/* Install write-protected (the VMA must be registered for WP). */
#define LAZYFILL_EXT_WP		_BITUL(0)

/* Per-extent result status. */
enum lazyfill_status {
	LAZYFILL_ST_NOTRUN = 0,	/* not attempted (batch refused or stopped before it) */
	LAZYFILL_ST_DONE = 1,	/* every page settled: installed now, or (present) already there */
	LAZYFILL_ST_EXIST = 2,	/* LAZYFILL_FILL_STOP_EXIST: stopped after a present page */
	LAZYFILL_ST_AGAIN = 3,	/* address space changing: done bytes settled, rest not */
	LAZYFILL_ST_ERROR = 4,	/* failed with error; done bytes settled before it */
};

struct lazyfill_extent {
	__u64 dst;		/* in: page-aligned address in the task */
	__u64 len;		/* in: page multiple, > 0 */
	__u64 src;		/* in: copy: page-aligned address in the caller; zero: 0 */
	__u32 mode;		/* in: enum lazyfill_mode */
	__u32 flags;		/* in: LAZYFILL_EXT_* */
	__u64 reserved;		/* in: zero */
	/* Results, written back by the module: */
	__u32 status;		/* out: enum lazyfill_status */
	__s32 error;		/* out: negative errno (ST_ERROR, ST_AGAIN) or 0 */
	__u64 done;		/* out: bytes from dst settled (a prefix of the extent) */
	__u64 present;		/* out: of those, bytes that were present already */
};

/* Batch flags. */
/* An extent stops at its first present page (UFFDIO_COPY's behaviour). */
#define LAZYFILL_FILL_STOP_EXIST _BITUL(0)
/* Do not wake anyone: the caller issues UFFDIO_WAKE itself. */
#define LAZYFILL_FILL_NOWAKE	 _BITUL(1)

struct lazyfill_batch {
	__u32 version;		/* in: LAZYFILL_UAPI_VERSION */
	__u32 flags;		/* in: LAZYFILL_FILL_* */
	__u32 count;		/* in: extents, 1..LAZYFILL_MAX_EXTENTS */
	__u32 index;		/* out: refused: the first bad extent; stopped: where */
	__u64 extents;		/* in: struct lazyfill_extent[count], read and written */
	__u64 scratch;		/* in: LAZYFILL_SCRATCH_SIZE writable bytes, 8-aligned */
	__u64 zero_buf;		/* in: zero+WP extents only: page-aligned buffer, else 0 */
	__u64 zero_len;		/* in: its length, a page multiple (the module clears it) */
	/* Results: */
	__u32 settled;		/* out: extents fully settled (ST_DONE) */
	__u32 wakes;		/* out: UFFDIO_WAKE calls made (merged ranges) */
	__u64 bytes;		/* out: bytes installed by this batch */
	__u64 reserved[4];	/* in: zero */
};

#define LAZYFILL_IOC_MAGIC	0xC7	/* unassigned in ioctl-number.rst */
#define LAZYFILL_IOC_INFO	_IOR(LAZYFILL_IOC_MAGIC, 0x00, struct lazyfill_info)
#define LAZYFILL_IOC_BIND	_IOWR(LAZYFILL_IOC_MAGIC, 0x01, struct lazyfill_bind)
#define LAZYFILL_IOC_FILL	_IOWR(LAZYFILL_IOC_MAGIC, 0x02, struct lazyfill_batch)

/*
 * Generic netlink family "lazyfill" (version 1), multicast group "events".
 *   LAZYFILL_CMD_GET_STATS  request: [LAZYFILL_A_SESSION] -> reply: counters of that
 *                           session, or the global ones (with SESSIONS_* attributes)
 *   LAZYFILL_CMD_GET_STATS  dump: one message per live session
 *   LAZYFILL_CMD_EXIT       event: a session's task exited (SESSION, PID, counters)
 */
#define LAZYFILL_GENL_NAME	"lazyfill"
#define LAZYFILL_GENL_VERSION	1
#define LAZYFILL_GENL_MCGRP	"events"

enum lazyfill_cmd {
	LAZYFILL_CMD_UNSPEC,
	LAZYFILL_CMD_GET_STATS,
	LAZYFILL_CMD_EXIT,
	__LAZYFILL_CMD_MAX,
};

#define LAZYFILL_CMD_MAX	(__LAZYFILL_CMD_MAX - 1)

enum lazyfill_attr {
	LAZYFILL_A_UNSPEC,
	LAZYFILL_A_PAD,
	LAZYFILL_A_SESSION,		/* u32 */
	LAZYFILL_A_PID,			/* u32: the task's pid in the initial pid ns */
	LAZYFILL_A_BATCHES,		/* u64 */
	LAZYFILL_A_EXTENTS,		/* u64: extents settled */
	LAZYFILL_A_PAGES,		/* u64: pages installed */
	LAZYFILL_A_BYTES,		/* u64: bytes installed */
	LAZYFILL_A_WAKES,		/* u64 */
	LAZYFILL_A_EAGAIN,		/* u64: batches stopped by EAGAIN */
	LAZYFILL_A_EEXIST,		/* u64: pages found present */
	LAZYFILL_A_REFUSED,		/* u64: batches refused by validation */
	LAZYFILL_A_SESSIONS_LIVE,	/* u64: global only */
	LAZYFILL_A_SESSIONS_TOTAL,	/* u64: global only: ever bound */
	LAZYFILL_A_EXITED,		/* u8: the session's task has exited */
	__LAZYFILL_A_MAX,
};

#define LAZYFILL_A_MAX		(__LAZYFILL_A_MAX - 1)

#endif /* _UAPI_LINUX_LAZYFILL_H */

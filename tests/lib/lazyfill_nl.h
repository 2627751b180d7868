/*
 * Client of lazyfill.ko's generic netlink family "lazyfill" (libnl-genl-3):
 * counters (global, per session, all sessions) and task-exit events.
 */
#ifndef LAZY_LAZYFILL_NL_H
#define LAZY_LAZYFILL_NL_H

#include <stddef.h>
#include <stdint.h>

struct lazyfill_nl;

struct lazyfill_nl_stats {
	uint32_t session; /* 0: the global counters */
	uint32_t pid;	  /* the session's task (initial pid namespace) */
	int exited;	  /* the session's task has exited */
	uint64_t batches, extents, pages, bytes, wakes, eagain, eexist, refused;
	uint64_t sessions_live, sessions_total; /* global only */
};

/* Connect and resolve the family. 0, or -errno (-ENOENT: module not loaded). */
int lazyfill_nl_open(struct lazyfill_nl **out);
void lazyfill_nl_close(struct lazyfill_nl *nl);
/* Counters of one session (session > 0), or the global ones (session 0). */
int lazyfill_nl_get(struct lazyfill_nl *nl, uint32_t session, struct lazyfill_nl_stats *st);
/* Every live session, up to cap of them; *n says how many there are. */
int lazyfill_nl_list(struct lazyfill_nl *nl, struct lazyfill_nl_stats *st, size_t cap, size_t *n);
/* Join the "events" group; then lazyfill_nl_event() reads the exit events. */
int lazyfill_nl_subscribe(struct lazyfill_nl *nl);
/* The event socket's fd, for poll (after subscribe). */
int lazyfill_nl_event_fd(struct lazyfill_nl *nl);
/* Wait up to timeout_ms (-1: forever) for an exit event: 1 got one, 0 timeout, -errno. */
int lazyfill_nl_event(struct lazyfill_nl *nl, struct lazyfill_nl_stats *ev, int timeout_ms);

#endif

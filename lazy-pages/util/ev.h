/*
 * The event loop of the daemons (after Redis's ae): each file descriptor is registered with
 * the events it waits for, a handler and the handler's data; one-shot timers for what must
 * happen later (a reconnect's back-off, a progress line). The owner (each daemon's main.c)
 * turns the loop; handlers never sleep.
 *
 * A handler may add or delete any fd, its own included: an fd deleted (or deleted and reused)
 * during a turn gets no stale event from that turn.
 */
#ifndef LP_UTIL_EV_H
#define LP_UTIL_EV_H

#include <stdbool.h>
#include <stdint.h>

#define EV_READ 0x1u
#define EV_WRITE 0x2u
#define EV_HUP 0x4u /* reported only: hang-up or error on the fd */

#define EV_MAX_FDS 65536 /* fds above this are refused (-EMFILE) */

struct ev_loop;
typedef void (*ev_fd_fn)(struct ev_loop *l, int fd, unsigned events, void *data);
typedef void (*ev_timer_fn)(struct ev_loop *l, uint64_t id, void *data);

/* NULL on -ENOMEM. */
struct ev_loop *ev_loop_new(void);
/* Closes the epoll fd and drops every registration and timer (not the fds themselves). */
void ev_loop_free(struct ev_loop *l);

/* Register fd (EV_READ and/or EV_WRITE) with its handler; 0 or -errno. An fd registered
 * already gets the new mask, handler and data (also when it was closed and its number reused
 * by a new file since: epoll forgets closed fds, ev_add adds it again). */
int ev_add(struct ev_loop *l, int fd, unsigned mask, ev_fd_fn fn, void *data);
/* Change what fd waits for; 0 or -errno (-ENOENT if not registered). */
int ev_mod(struct ev_loop *l, int fd, unsigned mask);
/* Unregister fd (before it is closed); no-op for fds not registered, fd < 0 or l NULL. */
void ev_del(struct ev_loop *l, int fd);
bool ev_has(const struct ev_loop *l, int fd);

/* Run fn(data) once, at least after_ms from now. The id (> 0), or 0 on -ENOMEM. */
uint64_t ev_timer_add(struct ev_loop *l, uint64_t after_ms, ev_timer_fn fn, void *data);
/* The same, after_ns from now. */
uint64_t ev_timer_add_ns(struct ev_loop *l, uint64_t after_ns, ev_timer_fn fn, void *data);
/* Cancel a timer that has not fired; no-op for 0 or unknown ids. */
void ev_timer_del(struct ev_loop *l, uint64_t id);

/*
 * One turn: wait up to max_wait_ms (-1: until something happens; the next timer shortens
 * it), then call the handlers of every ready fd and every due timer. The number of handlers
 * called (0 on timeout), or -errno from epoll (-EINTR is 0).
 */
int ev_run_once(struct ev_loop *l, int max_wait_ms);

#endif

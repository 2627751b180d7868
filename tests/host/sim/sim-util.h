/*
 * restore-sim: small helpers (page patterns, a PRNG, timeouts, I/O).
 */
#ifndef SIM_UTIL_H
#define SIM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_PAGE 4096ULL
#define SIM_WORDS (SIM_PAGE / 8)

/* One line to stderr, "restore-sim[PID]: ...": tasks and the main process share stderr. */
void sim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The content of the image page of task 'pid' at image address 'vaddr'. */
void sim_pattern(void *dst, int32_t pid, uint64_t vaddr, uint64_t seed);

/* A small PRNG for layouts and access orders. */
struct sim_rng {
	uint64_t s;
};

uint64_t rng_below(struct sim_rng *r, uint64_t n); /* [0, n); 0 when n is 0 */

uint64_t now_ms(void);		/* monotonic */
int ms_left(uint64_t deadline); /* 0 once the deadline (now_ms() time) has passed */

int write_all(int fd, const void *buf, size_t len);

/* Wait until fd is readable; 1 ready, 0 timeout, -1 error. */
int wait_readable(int fd, uint64_t deadline);

/* Read one command byte before the deadline: the byte, or -1 on timeout/EOF/error. */
int read_byte(int fd, uint64_t deadline);

int send_byte(int fd, char c);

/* Does the file (its first MiB) hold needle? */
bool file_contains(const char *path, const char *needle);

#endif

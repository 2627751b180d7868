/* The one clock of lazy-pages/: CLOCK_MONOTONIC, for deadlines, rates and latencies. */
#ifndef LP_UTIL_CLOCK_H
#define LP_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t mono_ms(void)
{
	return mono_ns() / 1000000ull;
}

static inline double mono_sec(void)
{
	return (double)mono_ns() / 1e9;
}

#endif

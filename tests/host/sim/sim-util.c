/* restore-sim: small helpers (page patterns, a PRNG, timeouts, I/O). */
#include "sim-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void sim_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n = snprintf(line, sizeof(line), "restore-sim[%d]: ", (int)getpid());

	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	size_t len = strnlen(line, sizeof(line) - 2);
	line[len++] = '\n';
	/* One write per line: tasks and the main process share stderr. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * The content of the image page of task 'pid' at image address 'vaddr'. Random, unless
 * SIM_COMPRESSIBLE=1: then every byte is one of 8 letters (compresses about 2.5x; the net
 * suite's compression cases).
 */
void sim_pattern(void *dst, int32_t pid, uint64_t vaddr, uint64_t seed)
{
	static int text = -1;
	uint64_t st = seed ^ ((uint64_t)(uint32_t)pid << 40) ^ (vaddr * 0x2545f4914f6cdd1dULL);
	uint64_t x = splitmix64(&st) | 1;
	uint64_t *w = dst;

	if (text < 0)
		text = getenv("SIM_COMPRESSIBLE") && !strcmp(getenv("SIM_COMPRESSIBLE"), "1");
	for (unsigned i = 0; i < SIM_WORDS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = text ? (x & 0x0707070707070707ULL) | 0x6161616161616161ULL : x;
	}
}

static uint64_t rng_next(struct sim_rng *r)
{
	return splitmix64(&r->s);
}

uint64_t rng_below(struct sim_rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int ms_left(uint64_t deadline)
{
	uint64_t now = now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Wait until fd is readable; 1 ready, 0 timeout, -1 error. */
int wait_readable(int fd, uint64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	for (;;) {
		int r = poll(&pfd, 1, ms_left(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -1 : r;
	}
}

/* Read one command byte before the deadline: the byte, or -1 on timeout/EOF/error. */
int read_byte(int fd, uint64_t deadline)
{
	unsigned char c;

	if (wait_readable(fd, deadline) != 1)
		return -1;
	for (;;) {
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		return n == 1 ? c : -1;
	}
}

int send_byte(int fd, char c)
{
	return send(fd, &c, 1, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

bool file_contains(const char *path, const char *needle)
{
	static char buf[1 << 20];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

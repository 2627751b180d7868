/* Shared helpers for the VM workloads (header-only: each workload is one .c file).
 *
 * Memory pattern: page p of a region with seed s holds 64-bit words
 *   w[i] = page_hash(s, p) ^ (i * GOLDEN)
 * except "zero" pages (written with zeros) and "hole" pages (never touched), which must read
 * back as all zeros. See page_kind().
 *
 * Control protocol (files in the control dir CTL, all on the guest's tmpfs):
 *   CTL/restored  created by the test after the dump; a workload that sees it (polling every
 *                 millisecond) has been restored: it appends "resumed <ns>" to its result file.
 *   CTL/verify    created by the test when the workload should verify all its memory; it
 *                 appends "verify ok ..." or "verify FAIL ..." to its result file.
 * Result file lines: "ready <ns>", "resumed <ns>", "verify ok|FAIL ...", "tick N <ns>".
 * Timestamps are CLOCK_REALTIME nanoseconds (compare with `date +%s%N`). The result file is
 * opened and closed for every line, so no file of the test stays open across the dump. */
#ifndef WL_H
#define WL_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define GOLDEN 0x9E3779B97F4A7C15ULL

enum { KIND_DATA, KIND_ZERO, KIND_HOLE };

static const char *wl_ctl = "/tmp";
static const char *wl_result = "/tmp/result";

static inline uint64_t mix64(uint64_t x)
{
	x += GOLDEN;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static inline uint64_t page_hash(uint64_t seed, uint64_t page)
{
	return mix64(seed * 0x100000001B3ULL ^ mix64(page));
}

/* Which pages are data, explicit zeros, or never touched: every 16th page (offset 5) is a hole,
 * every 16th (offset 9) is written with zeros, and the last 1/16 of a region of 64 pages or
 * more is one never-touched area. */
static inline int page_kind(uint64_t page, uint64_t npages)
{
	if (npages >= 64 && page >= npages - npages / 16)
		return KIND_HOLE;
	if (page % 16 == 5)
		return KIND_HOLE;
	if (page % 16 == 9)
		return KIND_ZERO;
	return KIND_DATA;
}

static inline long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void wl_report(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	int fd = open(wl_result, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, buf, n) != n) {
		/* nothing better to do */
	}
	close(fd);
}

static inline void die(const char *what)
{
	wl_report("error %s: %s", what, strerror(errno));
	exit(2);
}

static inline int ctl_exists(const char *name)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", wl_ctl, name);
	return stat(p, &st) == 0;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Poll (1 ms) until CTL/name exists. */
static inline void wait_ctl(const char *name)
{
	while (!ctl_exists(name))
		sleep_ms(1);
}

static inline void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static inline void fill_page(uint64_t *w, uint64_t seed, uint64_t page)
{
	uint64_t h = page_hash(seed, page);
	for (uint64_t i = 0; i < PAGE / 8; i++)
		w[i] = h ^ (i * GOLDEN);
}

/* Fill npages pages at base; page numbering starts at first (so a region can be a slice). */
static inline void fill_region(void *base, uint64_t npages, uint64_t seed)
{
	for (uint64_t p = 0; p < npages; p++) {
		uint64_t *w = (uint64_t *)((char *)base + p * PAGE);
		switch (page_kind(p, npages)) {
		case KIND_DATA:
			fill_page(w, seed, p);
			break;
		case KIND_ZERO:
			memset(w, 0, PAGE);
			break;
		default:
			break;
		}
	}
}

/* Check pages [from, to) of a region of npages pages filled by fill_region(base, npages, seed).
 * Returns the number of bad pages; the first one is described in err. */
static inline uint64_t check_region(const void *base, uint64_t npages, uint64_t seed, uint64_t from,
				    uint64_t to, char *err, size_t errlen)
{
	uint64_t bad = 0;
	for (uint64_t p = from; p < to; p++) {
		const uint64_t *w = (const uint64_t *)((const char *)base + p * PAGE);
		int kind = page_kind(p, npages);
		uint64_t h = page_hash(seed, p);
		for (uint64_t i = 0; i < PAGE / 8; i++) {
			uint64_t want = kind == KIND_DATA ? (h ^ (i * GOLDEN)) : 0;
			if (w[i] != want) {
				if (!bad++ && err)
					snprintf(err, errlen,
						 "page %llu (kind %d) word %llu: got %016llx want %016llx",
						 (unsigned long long)p, kind, (unsigned long long)i,
						 (unsigned long long)w[i], (unsigned long long)want);
				break;
			}
		}
	}
	return bad;
}

/* Common options: -c CTLDIR -o RESULTFILE; anything else is left to the caller. */
static inline void wl_common_opt(int opt, const char *arg)
{
	if (opt == 'c')
		wl_ctl = arg;
	else if (opt == 'o')
		wl_result = arg;
}

#endif

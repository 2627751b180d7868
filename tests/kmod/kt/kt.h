/*
 * Helpers shared by the lazyfill.ko guest tests (the programs in tests/kmod; kt.c is built into
 * a library that each of them links). It also includes the headers every one of them uses.
 */
#ifndef KT_H
#define KT_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/lazyfill.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PG 4096ul

/* CHECK failures so far: a test exits non-zero when there were any. */
extern int kt_failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			kt_failures++;                                                             \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)

/* "fatal: ...", errno and its text on stderr; exit 2. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

uint64_t now_ns(void); /* CLOCK_MONOTONIC */

/* xorshift64*: deterministic test randomness. */
uint64_t rnd(uint64_t *s);

/* A new userfaultfd with the given features (UFFDIO_API done). */
int kt_uffd(uint64_t features);

/* UFFDIO_REGISTER [addr, addr + len) with MODE; dies on failure (as do the kt_ below). */
void kt_register(int uffd, void *addr, size_t len, uint64_t mode);

/* Anonymous private read-write memory, at HINT exactly when not NULL. */
void *kt_map(void *hint, size_t len);

/* Pass an fd over a unix socket. */
void kt_send_fd(int sock, int fd);

int kt_recv_fd(int sock); /* the fd kt_send_fd sent */

void kt_write_all(int fd, const void *buf, size_t len);

void kt_read_all(int fd, void *buf, size_t len);

/*
 * A self-describing page: its first word is the address it was made for,
 * the rest a function of that address, so any page can be checked alone.
 */
void kt_pattern(void *page, uint64_t addr);

/* The address a page was made for, or 0 if it is not a pattern page. */
uint64_t kt_pattern_of(const void *page);

/* Resident pages of [p, p + len) (mincore). */
size_t kt_resident(void *p, size_t len);

int kt_open_dev(void); /* LAZYFILL_DEVICE, read-write */

/* Bind a new session to (uffd, pid): the session fd, or -errno. */
int kt_session(int uffd, pid_t pid, uint32_t *id);

/* One FILL ioctl: 0 or -errno; *hdr gets the batch's results. */
int kt_fill(int sfd, struct lazyfill_extent *ext, uint32_t n, uint32_t flags, void *zero_buf,
	    size_t zero_len, struct lazyfill_batch *hdr);

#endif

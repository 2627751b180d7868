/*
 * floorbench: the least a lazy restore over a socket must do per byte, against plain TCP,
 * with nothing else (no CRIU, no framing, no checksums, no daemon): the ceiling of the ratio
 * that docs/benchmarks.md's "many restores" measures with real restores.
 *
 *   floorbench [--clients N] [--mb M] [--rounds R] [--file F]
 *
 * N pairs of processes at once, each a sender that writes M MB over its own loopback TCP
 * connection and a receiver that takes them in 512 KiB reads:
 *   tcp:  the receiver only receives (the yardstick of the "many" benchmark);
 *   uffd: the receiver, as criu-lazyd and the restored task together, installs each read
 *         with UFFDIO_COPY into M MB of its own memory registered with userfaultfd, and
 *         then reads every byte of it back.
 *   local (with --file F, a file of at least M MB, e.g. on tmpfs): no socket; the receiver
 *         preads F in 512 KiB reads instead, as from local images, then as uffd.
 * Rounds rotate the modes. Prints each round's wall times and the medians' ratios: uffd's
 * throughput against tcp's, and uffd's time against local's (what a server on loopback
 * costs a restore against local images, at the least). Root (userfaultfd of anonymous memory with
 * the handler in the same process needs no more). Exit 0 when every round ran.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (512u << 10)
#define MAX_CLIENTS 256
#define MAX_ROUNDS 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	_exit(1);
}

static void sender(int fd, size_t bytes)
{
	uint8_t *buf = malloc(CHUNK);

	if (!buf)
		die("malloc");
	for (size_t i = 0; i < CHUNK; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	for (size_t done = 0; done < bytes;) {
		size_t n = bytes - done < CHUNK ? bytes - done : CHUNK;
		ssize_t w = send(fd, buf, n, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("send");
		done += (size_t)w;
	}
	_exit(0);
}

/* Receive one chunk of n bytes into buf. */
static void recv_all(int fd, uint8_t *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = recv(fd, buf + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("recv");
		got += (size_t)r;
	}
}

enum mode { M_TCP, M_UFFD, M_LOCAL, M_N };
static const char *const mode_name[M_N] = {"tcp", "uffd", "local"};

/* fd: the connection, or with M_LOCAL the file to read. */
static void receiver(int fd, size_t bytes, enum mode mode)
{
	bool uffd_mode = mode != M_TCP;
	uint8_t *buf = malloc(CHUNK);
	uint8_t *mem = NULL;
	int uffd = -1;

	if (!buf)
		die("malloc");
	if (uffd_mode) {
		mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			die("mmap");
		uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
		struct uffdio_api api = {.api = UFFD_API};
		struct uffdio_register reg = {.range = {(uintptr_t)mem, bytes},
					      .mode = UFFDIO_REGISTER_MODE_MISSING};
		if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg))
			die("userfaultfd");
	}
	for (size_t done = 0; done < bytes;) {
		size_t n = bytes - done < CHUNK ? bytes - done : CHUNK;
		if (mode == M_LOCAL) {
			if (pread(fd, buf, n, (off_t)done) != (ssize_t)n)
				die("pread");
		} else {
			recv_all(fd, buf, n);
		}
		if (uffd_mode) {
			struct uffdio_copy c = {
			    .dst = (uintptr_t)(mem + done), .src = (uintptr_t)buf, .len = n};
			if (ioctl(uffd, UFFDIO_COPY, &c) || c.copy != (int64_t)n)
				die("UFFDIO_COPY");
		}
		done += n;
	}
	if (uffd_mode) { /* the task reads its memory back */
		uint64_t sum = 0;
		const uint64_t *w = (const uint64_t *)mem;
		for (size_t i = 0; i < bytes / sizeof(*w); i++)
			sum += w[i];
		if (sum == 0)
			die("read back: all zero");
	}
	_exit(0);
}

/* One round: n pairs at once (M_LOCAL: n receivers of file ffd), each moving bytes; the wall
 * time in seconds, or < 0. */
static double round_run(int n, size_t bytes, enum mode mode, int ffd)
{
	pid_t pids[2 * MAX_CLIENTS];
	int np = 0;
	int fds[MAX_CLIENTS][2];

	for (int i = 0; i < n && mode != M_LOCAL; i++) {
		int l = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t al = sizeof(a);
		if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
		    getsockname(l, (struct sockaddr *)&a, &al))
			die("listen");
		fds[i][0] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fds[i][0], (struct sockaddr *)&a, sizeof(a)))
			die("connect");
		fds[i][1] = accept(l, NULL, NULL);
		if (fds[i][1] < 0)
			die("accept");
		close(l);
	}
	double t0 = now();
	for (int i = 0; i < n; i++) {
		pid_t p;
		if (mode != M_LOCAL) {
			p = fork();
			if (p == 0)
				sender(fds[i][0], bytes);
			pids[np++] = p;
		}
		p = fork();
		if (p == 0)
			receiver(mode == M_LOCAL ? ffd : fds[i][1], bytes, mode);
		pids[np++] = p;
	}
	int bad = 0;
	for (int i = 0; i < np; i++) {
		int st;
		if (pids[i] < 0 || waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) ||
		    WEXITSTATUS(st))
			bad++;
	}
	double dt = now() - t0;
	for (int i = 0; i < n && mode != M_LOCAL; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
	return bad ? -1 : dt;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"clients", required_argument, NULL, 'n'},
					   {"mb", required_argument, NULL, 'm'},
					   {"rounds", required_argument, NULL, 'r'},
					   {"file", required_argument, NULL, 'f'},
					   {0}};
	const char *file = NULL;
	int n = 32, mb = 64, rounds = 3, o;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'm':
			mb = atoi(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'f':
			file = optarg;
			break;
		default:
			fprintf(
			    stderr,
			    "usage: floorbench [--clients N] [--mb M] [--rounds R] [--file F]\n");
			return 2;
		}
	}
	if (n < 1 || n > MAX_CLIENTS || mb < 1 || mb > 4096 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "floorbench: --clients 1-%d, --mb 1-4096, --rounds 1-%d\n",
			MAX_CLIENTS, MAX_ROUNDS);
		return 2;
	}
	size_t bytes = (size_t)mb << 20;
	int ffd = -1, nm = file ? M_N : M_LOCAL;
	if (file) {
		ffd = open(file, O_RDONLY | O_CLOEXEC);
		if (ffd < 0 || lseek(ffd, 0, SEEK_END) < (off_t)bytes) {
			fprintf(stderr, "floorbench: %s: not a file of %d MB or more\n", file, mb);
			return 2;
		}
	}
	static double t[M_N][MAX_ROUNDS];
	for (int r = 0; r < rounds; r++) {
		printf("round %d: %d x %d MB:", r + 1, n, mb);
		for (int k = 0; k < nm; k++) {
			int m = (r + k) % nm; /* the order rotates */
			t[m][r] = round_run(n, bytes, (enum mode)m, ffd);
			if (t[m][r] < 0) {
				fprintf(stderr, "floorbench: a process of round %d failed\n",
					r + 1);
				return 1;
			}
			printf(" %s %.0f ms", mode_name[m], t[m][r] * 1e3);
		}
		printf("\n");
	}
	double med[M_N] = {0};
	for (int m = 0; m < nm; m++) {
		qsort(t[m], (size_t)rounds, sizeof(double), cmp_d);
		med[m] = t[m][rounds / 2];
	}
	printf(
	    "floorbench: %d x %d MB, medians: tcp %.0f ms (%.0f MB/s), uffd %.0f ms (%.0f MB/s): "
	    "uffd / tcp throughput %.2f",
	    n, mb, med[M_TCP] * 1e3, n * mb / med[M_TCP], med[M_UFFD] * 1e3, n * mb / med[M_UFFD],
	    med[M_TCP] / med[M_UFFD]);
	if (file)
		printf("; local %.0f ms: uffd / local time %.2f", med[M_LOCAL] * 1e3,
		       med[M_UFFD] / med[M_LOCAL]);
	printf("\n");
	return 0;
}

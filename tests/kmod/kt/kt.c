/* Helpers shared by the lazyfill.ko guest tests. */
#include "kt.h"

int kt_failures;

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fatal: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (errno %d %s)\n", errno, strerror(errno));
	va_end(ap);
	exit(2);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: deterministic test randomness. */
uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* A new userfaultfd with the given features (UFFDIO_API done). */
int kt_uffd(uint64_t features)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = {.api = UFFD_API, .features = features};

	if (fd < 0)
		die("userfaultfd");
	if (ioctl(fd, UFFDIO_API, &api))
		die("UFFDIO_API features 0x%llx", (unsigned long long)features);
	return fd;
}

void kt_register(int uffd, void *addr, size_t len, uint64_t mode)
{
	struct uffdio_register r = {
	    .range = {.start = (uint64_t)(uintptr_t)addr, .len = len},
	    .mode = mode,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &r))
		die("UFFDIO_REGISTER %p+%zu mode %llu", addr, len, (unsigned long long)mode);
}

void *kt_map(void *hint, size_t len)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | (hint ? MAP_FIXED_NOREPLACE : 0);
	void *p = mmap(hint, len, PROT_READ | PROT_WRITE, flags, -1, 0);

	if (p == MAP_FAILED)
		die("mmap %zu", len);
	return p;
}

/* Pass an fd over a unix socket. */
void kt_send_fd(int sock, int fd)
{
	char c = 'F';
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = u.buf,
			   .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c1 = CMSG_FIRSTHDR(&m);

	c1->cmsg_level = SOL_SOCKET;
	c1->cmsg_type = SCM_RIGHTS;
	c1->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c1), &fd, sizeof(int));
	if (sendmsg(sock, &m, 0) != 1)
		die("sendmsg fd");
}

int kt_recv_fd(int sock)
{
	char c;
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = u.buf,
			   .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c1;
	int fd;

	if (recvmsg(sock, &m, 0) != 1)
		die("recvmsg fd");
	c1 = CMSG_FIRSTHDR(&m);
	if (!c1 || c1->cmsg_type != SCM_RIGHTS)
		die("no fd in message");
	memcpy(&fd, CMSG_DATA(c1), sizeof(int));
	return fd;
}

void kt_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write");
		p += n;
		len -= (size_t)n;
	}
}

void kt_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("read (%zd)", n);
		p += n;
		len -= (size_t)n;
	}
}

/*
 * A self-describing page: its first word is the address it was made for,
 * the rest a function of that address, so any page can be checked alone.
 */
void kt_pattern(void *page, uint64_t addr)
{
	uint64_t *w = page, s = addr ^ 0x9E3779B97F4A7C15ull;

	w[0] = addr;
	for (size_t i = 1; i < PG / 8; i++)
		w[i] = rnd(&s);
}

/* The address a page was made for, or 0 if it is not a pattern page. */
uint64_t kt_pattern_of(const void *page)
{
	static __thread uint64_t buf[PG / 8];
	const uint64_t *w = page;

	kt_pattern(buf, w[0]);
	return memcmp(buf, page, PG) ? 0 : w[0];
}

/* Resident pages of [p, p + len) (mincore). */
size_t kt_resident(void *p, size_t len)
{
	unsigned char v[4096];
	size_t n = len / PG, r = 0;

	if (n > sizeof(v))
		n = sizeof(v);
	if (mincore(p, n * PG, v))
		die("mincore");
	for (size_t i = 0; i < n; i++)
		r += v[i] & 1;
	return r;
}

int kt_open_dev(void)
{
	int fd = open(LAZYFILL_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open %s", LAZYFILL_DEVICE);
	return fd;
}

/* Bind a new session to (uffd, pid): the session fd, or -errno. */
int kt_session(int uffd, pid_t pid, uint32_t *id)
{
	int fd = kt_open_dev();
	struct lazyfill_bind b = {
	    .version = LAZYFILL_UAPI_VERSION, .uffd = uffd, .pidfd = -1, .pid = pid};

	if (ioctl(fd, LAZYFILL_IOC_BIND, &b)) {
		int e = errno;

		close(fd);
		return -e;
	}
	if (id)
		*id = b.session;
	return fd;
}

/* One FILL ioctl: 0 or -errno; *hdr gets the batch's results. */
int kt_fill(int sfd, struct lazyfill_extent *ext, uint32_t n, uint32_t flags, void *zero_buf,
	    size_t zero_len, struct lazyfill_batch *hdr)
{
	uint64_t scratch[LAZYFILL_SCRATCH_SIZE / 8];
	struct lazyfill_batch b = {
	    .version = LAZYFILL_UAPI_VERSION,
	    .flags = flags,
	    .count = n,
	    .extents = (uint64_t)(uintptr_t)ext,
	    .scratch = (uint64_t)(uintptr_t)scratch,
	    .zero_buf = (uint64_t)(uintptr_t)zero_buf,
	    .zero_len = zero_buf ? zero_len : 0,
	};
	int rc = ioctl(sfd, LAZYFILL_IOC_FILL, &b) ? -errno : 0;

	if (hdr)
		*hdr = b;
	return rc;
}

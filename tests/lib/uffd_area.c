#include "uffd_area.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PG 4096ul

int uffd_area_open(size_t npages, uint8_t **area)
{
	struct uffdio_api api = {.api = UFFD_API};
	struct uffdio_register reg = {.mode = UFFDIO_REGISTER_MODE_MISSING};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int rc;

	if (fd < 0 && errno == EPERM) /* vm.unprivileged_userfaultfd = 0, not root */
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -errno;
	void *a =
	    mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED) {
		rc = -errno;
		close(fd);
		return rc;
	}
	reg.range.start = (uintptr_t)a;
	reg.range.len = npages * PG;
	if (ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &reg)) {
		rc = -errno;
		munmap(a, npages * PG);
		close(fd);
		return rc;
	}
	*area = a;
	return fd;
}

int uffd_page_present(const void *addr)
{
	unsigned char v = 0;

	if (mincore((void *)addr, (size_t)sysconf(_SC_PAGESIZE), &v))
		return -errno;
	return v & 1;
}

int uffd_page_is(const uint8_t *addr, uint8_t c)
{
	long pg = sysconf(_SC_PAGESIZE);

	if (uffd_page_present(addr) != 1)
		return -1;
	for (long i = 0; i < pg; i++)
		if (addr[i] != c)
			return 0;
	return 1;
}

/* A userfaultfd of this process with an anonymous mapping registered for missing faults. */
#ifndef TESTS_UFFD_AREA_H
#define TESTS_UFFD_AREA_H

#include <stddef.h>
#include <stdint.h>

/*
 * A new uffd (non-blocking; user-mode only where plain uffds need root) and npages of
 * private anonymous memory at *area registered with it (MISSING). The uffd, or -errno
 * (nothing left behind).
 */
int uffd_area_open(size_t npages, uint8_t **area);

#endif

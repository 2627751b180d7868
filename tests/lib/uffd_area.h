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
/* 1 if the page at addr has a page table entry (mincore: no fault, so no hang), 0 if not,
 * -errno if it cannot be told. */
int uffd_page_present(const void *addr);
/* 1 if the page at addr is present and holds c throughout, 0 if it differs, -1 if it is
 * missing (reading it would fault). */
int uffd_page_is(const uint8_t *addr, uint8_t c);

#endif

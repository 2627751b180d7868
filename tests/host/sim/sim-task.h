/*
 * restore-sim: the restored task's side. A task maps its VMAs at their image
 * addresses, restores its non-lazy pages itself, registers the lazy VMAs with
 * a userfaultfd (as criu restore --lazy-pages does), hands the uffd to the
 * main process and, once told to run, checks its memory byte by byte.
 */
#ifndef SIM_TASK_H
#define SIM_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "sim-model.h"

/* Task -> main: the uffd (SCM_RIGHTS), 'P' (SC_EARLY: changes done), 'D' (ready for the end). */
/* Task -> main: 'r' (its VMAs are registered). */
/* Main -> task: 'S' send your item (the connection and the fd with it, the pid after it:
 * answer 's'), 'R' register, 'G' run, 'X' the daemon has exited, 'Q' quit without running. */

/* One byte c with n fds (SCM_RIGHTS). */
int send_fds(int sock, char c, const int *fds, int n);

int send_fd(int sock, int fd); /* one fd with a 0 byte */

/*
 * As criu restore: the task's memory is mapped and its non-lazy pages restored, its uffd is
 * created and handed over (to the main process, which passes it to the daemon) before any VMA
 * is registered; the restorer registers the lazy VMAs afterwards (task_register). Returns
 * the uffd, kept until then.
 */
int task_setup(const struct sim *s, const struct sim_task *t);

/* The next command from the main process, after sending our item if it says so. */
int task_read_cmd(const struct sim_task *t, uint64_t deadline);

/* Register the lazy VMAs; then the restorer lets go of the uffd: only the daemon holds it. */
int task_register(const struct sim_task *t, int uffd);

/* Killed by SIGALRM if anything hangs (a fault nobody serves, a lost message). */
void task_arm_timeout(int seconds);

/* A bytewise difference from what the page must hold, overlaid by an optional patch. */
struct page_patch {
	unsigned off; /* byte offset of an 8-byte word; ~0u: none */
	uint64_t val;
};

/* The page at address cur must hold the image page at img (zeros: img 0). */
int check_page(const struct sim *s, const struct sim_task *t, uint64_t cur, uint64_t img,
	       const struct page_patch *patch, int *reports);

/* Pages [cur, cur+n) must hold the image pages [img, img+n) (img 0: zeros). Bad pages. */
uint64_t check_range(const struct sim *s, const struct sim_task *t, uint64_t cur, uint64_t img,
		     uint64_t n);

/* The whole VMA v, or every VMA of t, where the images put them. Bad pages. */
uint64_t check_vma(const struct sim *s, const struct sim_task *t, const struct sim_vma *v);

uint64_t check_all(const struct sim *s, const struct sim_task *t);

/* SC_EARLY: the address-space changes are done; restore may send RSTF now. */
int task_phase_done(const struct sim_task *t);

/* SC_DRAIN: tell restore we are ready, then wait until the daemon has exited. */
int task_wait_daemon_exit(const struct sim_task *t, int timeout_s);

/* Is [addr, addr+len) unmapped? */
bool range_unmapped(uint64_t addr, uint64_t len);

/* Fisher-Yates: v[0..n) in an order from r. */
void shuffle(uint64_t *v, uint64_t n, struct sim_rng *r);

/* Created by a task the first time it sees a wrong page (empty: not used). */
extern char sim_mismatch_path[300];

#endif

/*
 * restore-sim: what the files of scenarios (scen-*.c) share. A layout builds the model
 * (tasks, VMAs, page kinds); a run function is what every restored task does once it runs;
 * a corrupt function damages the images (or what restore sends) of a negative test.
 * sim-scenarios.c lists them.
 */
#ifndef SIM_SCEN_H
#define SIM_SCEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sim-model.h"
#include "sim-task.h"

#define RW (PROT_READ | PROT_WRITE)
#define PG(n) ((uint64_t)(n)*SIM_PAGE)

/* ---- helpers of more than one scenario ---- */

#define SIM_THREADS 4

struct thr_arg {
	struct sim *s;
	struct sim_task *t;
	int n;
	atomic_ullong *bad;
};

/* A few threads of a task, all running one function over the task's memory. */
struct thr_group {
	pthread_t th[SIM_THREADS];
	struct thr_arg arg[SIM_THREADS];
	int started;
};

/* Start n (<= SIM_THREADS) threads running fn; false if not all of them started. */
bool thr_start(struct thr_group *g, int n, void *(*fn)(void *), struct sim *s, struct sim_task *t,
	       atomic_ullong *bad);
void thr_join(struct thr_group *g);
/* A thread: every page of VMA 0 in a random order (threads n and n+2 in the same one). */
void *thr_touch(void *p);

/* The word a task writes at addr (salted), never 0. */
uint64_t marker(const struct sim_task *t, uint64_t addr, uint64_t salt);
/* Tell the other side (wfd) and wait for its word (rfd): 0, or -1 after timeout_s. */
int barrier(int wfd, int rfd, int timeout_s);
/* mremap [from, from+len) to exactly 'to', new_len long; 0 or -1 (logged). */
int remap_fixed(uint64_t from, uint64_t len, uint64_t new_len, uint64_t to);
/* Pages [from, from+n) of v (within v) are of this kind. */
void set_kinds(struct sim_vma *v, uint64_t from, uint64_t n, uint8_t kind);

/* ---- scen-basic.c: reads, threads, writes, a tree, 256 MB, exits, exec, 1 GB sparse ---- */

void layout_seq(struct sim *s);
void layout_threads(struct sim *s);
void layout_writes(struct sim *s);
void layout_tree(struct sim *s);
void layout_large(struct sim *s);
void layout_strided(struct sim *s);
void layout_two(struct sim *s);
void layout_sparse(struct sim *s);
int run_seq(struct sim *s, struct sim_task *t);
int run_threads(struct sim *s, struct sim_task *t);
int run_writes(struct sim *s, struct sim_task *t);
int run_tree(struct sim *s, struct sim_task *t);
int run_large(struct sim *s, struct sim_task *t);
int run_strided(struct sim *s, struct sim_task *t);
int run_exit_now(struct sim *s, struct sim_task *t);
int run_drain(struct sim *s, struct sim_task *t);
int run_exit_faulting(struct sim *s, struct sim_task *t);
int run_touch_all(struct sim *s, struct sim_task *t);
int run_exec(struct sim *s, struct sim_task *t);
int run_sparse(struct sim *s, struct sim_task *t);

/* ---- scen-mm.c: address-space changes of pending pages ---- */

void layout_mremap(struct sim *s);
void layout_madvise(struct sim *s);
void layout_munmap(struct sim *s);
void layout_adjacent(struct sim *s);
int run_mremap(struct sim *s, struct sim_task *t);
int run_madvise(struct sim *s, struct sim_task *t);
int run_munmap(struct sim *s, struct sim_task *t);
int run_adjacent(struct sim *s, struct sim_task *t);

/* ---- scen-fork.c: forks with pages pending ---- */

void layout_fork(struct sim *s);
void layout_fork_remap(struct sim *s);
void layout_fork_storm(struct sim *s);
int run_fork(struct sim *s, struct sim_task *t);
int run_fork_remap(struct sim *s, struct sim_task *t);
int run_fork_storm(struct sim *s, struct sim_task *t);
int run_fork_exit(struct sim *s, struct sim_task *t);
/* Where run_fork_exit's orphan writes "ok" or "bad". */
void orphan_result_path(const struct sim *s, char *buf, size_t len);

/* ---- scen-hostile.c: damaged images, hostile clients ---- */

void layout_intruder(struct sim *s);
const char *corrupt_pagemap_magic(struct sim *s);
const char *corrupt_mm_truncated(struct sim *s);
const char *corrupt_pages_short(struct sim *s);
const char *corrupt_pstree_magic(struct sim *s);
const char *swap_uffd_for_pipe(struct sim *s);
const char *forge_pid(struct sim *s);

#endif

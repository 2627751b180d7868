/*
 * restore-sim: the restored tree from the main process. Every task is a child that maps its
 * memory and sends its uffd (sim-task.c); the main process tells it what to do by one byte
 * ('S' send your item, 'R' register, 'G' run, 'X' the daemon has exited, 'Q' quit) and waits
 * for its answers ('r' registered, 'P' SC_EARLY changes done, 'D' ready for the end).
 */
#ifndef SIM_TREE_H
#define SIM_TREE_H

#include <stdint.h>

#include "sim-model.h"

/* Fork every task of the model and receive its uffd. 0, or -1 (logged). */
int spawn_tasks(struct sim *s);

/* Send byte c to every live task. */
void tell_tasks(struct sim *s, char c);

/* Close the uffds the main process holds. */
void close_uffds(struct sim *s);

/* Wait for every task (and the zombie) to finish; the number of failed ones, -1 on timeout. */
int reap_tasks(struct sim *s, uint64_t deadline);

/* SIGKILL the tasks not reaped yet, and reap them. */
void kill_tasks(struct sim *s);

/* Every live task says 'c' ('r' registered, 'P' SC_EARLY changes done, 'D' ready for the end). */
int wait_tasks_say(struct sim *s, char c, uint64_t deadline);

#endif

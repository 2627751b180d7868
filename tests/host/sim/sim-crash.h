/*
 * restore-sim: SC_CRASH, the daemon's worker killed (SIGKILL) while it serves. criu-lazyd
 * runs as a keeper (the pid we started) and a worker (its child). The worker is killed once
 * at a point of the restore protocol the seed picks (crash_now), then a killer process kills
 * it at seeded random moments, up to SIM_CRASH_KILLS more times.
 * The scenario passes only if every byte every task sees is right, the restore completes
 * and the daemon exits 0 saying how many workers it restarted.
 */
#ifndef SIM_CRASH_H
#define SIM_CRASH_H

#include <sys/types.h>

#include "sim-model.h"

#define SIM_CRASH_KILLS 3

/* The points of restore_start() where crash_now() may strike; the seed picks one. */
enum crash_point { CP_CONNECT, CP_ITEMS, CP_REGISTERED, CP_RUNNING, CP_NR };
/* Kill the worker now (and wait until the keeper saw it); 1 if it did. */
int crash_now(struct sim *s);
/* Start the killer (first kill within first_ms, the others spaced up to gap_ms). */
int crash_start(struct sim *s, unsigned first_ms, unsigned gap_ms);
/* Stop it; the number of workers killed (crash_now's too), or -1. */
int crash_stop(struct sim *s);

#endif

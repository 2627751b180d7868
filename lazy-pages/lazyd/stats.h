/* Counters for the operator: summary at exit, JSON for scripts and benchmarks. */
#ifndef LAZYD_STATS_H
#define LAZYD_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Log-linear latency histogram: 8 sub-buckets per power of two of nanoseconds. */
#define LAT_SUB 8
#define LAT_BUCKETS (64 * LAT_SUB)

struct lazyd_stats {
	uint64_t tasks, zombies, forks, remaps, removes, unmaps;
	uint64_t pages_total;	 /* lazy + zero pages of the image tasks */
	uint64_t pages_fault;	 /* data pages installed by the fault path */
	uint64_t pages_prefetch; /* data pages installed by the background drain */
	uint64_t pages_zero;	 /* zero pages installed (either path) */
	uint64_t pages_dropped;	 /* pending pages unmapped or discarded by the tasks */
	uint64_t bytes_copied;
	uint64_t faults, eexist, eagain, tasks_killed, tasks_exited;
	uint64_t worker_restarts; /* by the keeper, during this restore */
	/* From the page source, if it is the network (criu-imgd): frame bytes received, data
	 * pages received by the fault path and by the stream (zero pages are never sent). */
	uint64_t src_bytes_rx, src_data_fault, src_data_stream, src_failovers;
	uint64_t src_pages; /* pages received, those marked zero (not sent) included */
	/* The stream's reads asked for, and the ranges in them (a replay's scattered runs go
	 * many to a read). */
	uint64_t stream_reads, stream_ranges;
	/* --prefetch-window auto (window.h): the stream's window, the rate and round trip
	 * measured, the last seen. */
	uint64_t stream_window, stream_rate, stream_rtt_ns;
	uint64_t pages_rx_twice; /* pages that came over the network a second time (rxmap.c) */
	bool stream_local;	 /* the server on this host: the window of window.h's sw_local */
	uint64_t pages_shared;	 /* installed in a fork relative from data fetched for another */
	int src_network;	 /* 1: those count */
	uint64_t pages_resumed_present; /* found installed by a worker that died */
	/* Working-set replay (workset.c): first touches in the record loaded; data pages the
	 * replay installed; faults on recorded pages the replay had not reached (late) and
	 * on pages the record does not have (missed), while it replayed. */
	uint64_t ws_entries, ws_replayed, ws_late, ws_missed;
	/* Fill threads (pfill.c): jobs settled; of them, settled after an event of their task
	 * (pages left to be found present) and stopped by the fence (an event read meanwhile). */
	uint64_t fill_jobs, fill_jobs_moved, fill_jobs_stale;
	unsigned fill_threads;
	uint64_t lat[LAT_BUCKETS];
	uint64_t lat_max_ns;
	uint64_t lat_sum_ns;
	double t_start, t_restored, t_done; /* CLOCK_MONOTONIC seconds */
	double cpu_user_s, cpu_sys_s;	    /* this process's CPU, its threads' included */
};

double now_s(void);
void stats_fault_latency(struct lazyd_stats *s, uint64_t ns);
uint64_t stats_percentile_ns(const struct lazyd_stats *s, double pct);
/* Bucket b of lat[] holds latencies in [*lo, *hi) ns (the last one: up to UINT64_MAX). */
void stats_bucket_range(unsigned b, uint64_t *lo, uint64_t *hi);
void stats_log_summary(const struct lazyd_stats *s);
int stats_write_json(const struct lazyd_stats *s, const char *path);

#endif

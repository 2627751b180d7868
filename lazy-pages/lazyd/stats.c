#include "stats.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned lat_bucket(uint64_t ns)
{
	if (ns < LAT_SUB)
		return (unsigned)ns;
	unsigned msb = 63 - (unsigned)__builtin_clzll(ns);
	unsigned sub = (unsigned)(ns >> (msb - 3)) & (LAT_SUB - 1);
	return msb * LAT_SUB + sub;
}

/* Lower bound of a bucket, in ns. */
static uint64_t lat_value(unsigned b)
{
	if (b < LAT_SUB)
		return b;
	unsigned msb = b / LAT_SUB, sub = b % LAT_SUB;
	return (1ULL << msb) | ((uint64_t)sub << (msb - 3));
}

void stats_bucket_range(unsigned b, uint64_t *lo, uint64_t *hi)
{
	*lo = lat_value(b);
	*hi = b + 1 < LAT_BUCKETS ? lat_value(b + 1) : UINT64_MAX;
}

void stats_fault_latency(struct lazyd_stats *s, uint64_t ns)
{
	s->lat[lat_bucket(ns)]++;
	s->lat_sum_ns += ns;
	if (ns > s->lat_max_ns)
		s->lat_max_ns = ns;
}

uint64_t stats_percentile_ns(const struct lazyd_stats *s, double pct)
{
	uint64_t total = 0, seen = 0;

	for (unsigned b = 0; b < LAT_BUCKETS; b++)
		total += s->lat[b];
	if (!total)
		return 0;
	uint64_t rank = (uint64_t)((double)total * pct / 100.0);
	if (rank >= total)
		rank = total - 1;
	for (unsigned b = 0; b < LAT_BUCKETS; b++) {
		seen += s->lat[b];
		if (seen > rank)
			return lat_value(b);
	}
	return s->lat_max_ns;
}

static double span(double from, double to)
{
	return (from > 0 && to >= from) ? to - from : 0;
}

void stats_log_summary(const struct lazyd_stats *s)
{
	pr_msg("summary: %lu tasks (%lu zombies, %lu forked), %lu lazy pages: %lu on demand, "
	       "%lu prefetched, %lu zero, %lu dropped by the tasks; %lu MiB copied",
	       (unsigned long)s->tasks, (unsigned long)s->zombies, (unsigned long)s->forks,
	       (unsigned long)s->pages_total, (unsigned long)s->pages_fault,
	       (unsigned long)s->pages_prefetch, (unsigned long)s->pages_zero,
	       (unsigned long)s->pages_dropped, (unsigned long)(s->bytes_copied >> 20));
	pr_msg("summary: %lu faults, latency p50 %.1f us p99 %.1f us max %.1f us; "
	       "drain %.3f s after restore, %.3f s in all; %lu killed, %lu exited; "
	       "worker restarts %lu (%lu pages found installed)",
	       (unsigned long)s->faults, stats_percentile_ns(s, 50) / 1e3,
	       stats_percentile_ns(s, 99) / 1e3, s->lat_max_ns / 1e3,
	       span(s->t_restored, s->t_done), span(s->t_start, s->t_done),
	       (unsigned long)s->tasks_killed, (unsigned long)s->tasks_exited,
	       (unsigned long)s->worker_restarts, (unsigned long)s->pages_resumed_present);
	if (s->src_network)
		pr_msg(
		    "summary: network: %.1f MiB received; %lu pages received for %lu lazy data "
		    "pages (%.3fx), %lu of them sent with data (%lu on the fault connection, %lu "
		    "on the stream's), the others all zeros; %lu pages fetched once for two tasks "
		    "(fork); %lu pages received twice",
		    s->src_bytes_rx / 1048576.0, (unsigned long)s->src_pages,
		    (unsigned long)s->pages_total,
		    s->pages_total ? (double)s->src_pages / (double)s->pages_total : 0.0,
		    (unsigned long)(s->src_data_fault + s->src_data_stream),
		    (unsigned long)s->src_data_fault, (unsigned long)s->src_data_stream,
		    (unsigned long)s->pages_shared, (unsigned long)s->pages_rx_twice);
	if (s->fill_threads)
		pr_msg("summary: %u fill threads installed %lu jobs (%lu stopped by an event, %lu "
		       "settled after one)",
		       s->fill_threads, (unsigned long)s->fill_jobs,
		       (unsigned long)s->fill_jobs_stale, (unsigned long)s->fill_jobs_moved);
	if (s->ws_entries)
		pr_msg("summary: working set: %lu first touches recorded, %lu pages replayed; "
		       "%lu faults came before the replay, %lu on pages the record lacks",
		       (unsigned long)s->ws_entries, (unsigned long)s->ws_replayed,
		       (unsigned long)s->ws_late, (unsigned long)s->ws_missed);
}

int stats_write_json(const struct lazyd_stats *s, const char *path)
{
	/* Written while the restore runs too: readers see the old file or the new, whole. */
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	FILE *f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"{\n  \"done\": %s,\n  \"tasks\": %lu,\n  \"zombies\": %lu,\n  \"forks\": %lu,\n"
		"  \"remaps\": %lu,\n  \"removes\": %lu,\n  \"unmaps\": %lu,\n"
		"  \"pages_total\": %lu,\n  \"pages_fault\": %lu,\n  \"pages_prefetch\": %lu,\n"
		"  \"pages_zero\": %lu,\n  \"pages_dropped\": %lu,\n  \"bytes_copied\": %lu,\n"
		"  \"faults\": %lu,\n  \"eexist\": %lu,\n  \"eagain\": %lu,\n"
		"  \"tasks_killed\": %lu,\n  \"tasks_exited\": %lu,\n"
		"  \"worker_restarts\": %lu,\n  \"pages_resumed_present\": %lu,\n"
		"  \"source_bytes_received\": %lu,\n  \"source_data_pages_fault\": %lu,\n"
		"  \"source_data_pages_stream\": %lu,\n  \"source_pages\": %lu,\n"
		"  \"source_failovers\": %lu,\n  \"source_pages_twice\": %lu,\n"
		"  \"pages_shared\": %lu,\n  \"stream_reads\": %lu,\n  \"stream_ranges\": %lu,\n"
		"  \"stream_window_bytes\": %lu,\n  \"stream_rate_bytes_s\": %lu,\n"
		"  \"stream_rtt_us\": %.1f,\n  \"stream_local\": %s,\n"
		"  \"ws_entries\": %lu,\n  \"ws_replayed\": %lu,\n  \"ws_late\": %lu,\n"
		"  \"ws_missed\": %lu,\n"
		"  \"fill_threads\": %u,\n  \"fill_jobs\": %lu,\n  \"fill_jobs_moved\": %lu,\n"
		"  \"fill_jobs_stale\": %lu,\n"
		"  \"fault_latency_us\": { \"p50\": %.1f, \"p99\": %.1f, \"max\": %.1f },\n"
		"  \"restore_s\": %.6f,\n  \"drain_after_restore_s\": %.6f,\n  \"total_s\": %.6f,\n"
		"  \"cpu_user_s\": %.3f,\n  \"cpu_sys_s\": %.3f\n}\n",
		s->t_done > 0 ? "true" : "false", (unsigned long)s->tasks,
		(unsigned long)s->zombies, (unsigned long)s->forks, (unsigned long)s->remaps,
		(unsigned long)s->removes, (unsigned long)s->unmaps, (unsigned long)s->pages_total,
		(unsigned long)s->pages_fault, (unsigned long)s->pages_prefetch,
		(unsigned long)s->pages_zero, (unsigned long)s->pages_dropped,
		(unsigned long)s->bytes_copied, (unsigned long)s->faults, (unsigned long)s->eexist,
		(unsigned long)s->eagain, (unsigned long)s->tasks_killed,
		(unsigned long)s->tasks_exited, (unsigned long)s->worker_restarts,
		(unsigned long)s->pages_resumed_present, (unsigned long)s->src_bytes_rx,
		(unsigned long)s->src_data_fault, (unsigned long)s->src_data_stream,
		(unsigned long)s->src_pages, (unsigned long)s->src_failovers,
		(unsigned long)s->pages_rx_twice, (unsigned long)s->pages_shared,
		(unsigned long)s->stream_reads, (unsigned long)s->stream_ranges,
		(unsigned long)s->stream_window, (unsigned long)s->stream_rate,
		s->stream_rtt_ns / 1e3, s->stream_local ? "true" : "false",
		(unsigned long)s->ws_entries, (unsigned long)s->ws_replayed,
		(unsigned long)s->ws_late, (unsigned long)s->ws_missed, s->fill_threads,
		(unsigned long)s->fill_jobs, (unsigned long)s->fill_jobs_moved,
		(unsigned long)s->fill_jobs_stale, stats_percentile_ns(s, 50) / 1e3,
		stats_percentile_ns(s, 99) / 1e3, s->lat_max_ns / 1e3,
		span(s->t_start, s->t_restored), span(s->t_restored, s->t_done),
		span(s->t_start, s->t_done), s->cpu_user_s, s->cpu_sys_s);
	int err = ferror(f);
	if (fclose(f) || err) {
		unlink(tmp);
		return -EIO;
	}
	return rename(tmp, path) ? -errno : 0;
}

/* restore-sim: every scenario, with a line on what it checks. */
#include "sim-scenarios.h"

#include <fnmatch.h>
#include <string.h>

#include "scen.h"

/* clang-format off */
const struct scenario sim_scenarios[] = {
	{.name = "seq", .what = "read every page in order, six kinds of VMA",
	 .layout = layout_seq, .run = run_seq, .flags = SC_STATS, .timeout_s = 60},
	{.name = "threads", .what = "random-order touches from 4 threads",
	 .layout = layout_threads, .run = run_threads, .flags = SC_EARLY | SC_STATS, .timeout_s = 60},
	{.name = "writes", .what = "writes into pending pages stick, the rest is the image",
	 .layout = layout_writes, .run = run_writes, .flags = SC_EARLY | SC_DRAIN | SC_STATS, .timeout_s = 60},
	{.name = "fork", .what = "fork with pages pending; parent and child check and diverge",
	 .layout = layout_fork, .run = run_fork, .flags = SC_EARLY | SC_DRAIN, .timeout_s = 60},
	{.name = "mremap", .what = "move, grow, grow-move, shrink+regrow, DONTUNMAP pending pages",
	 .layout = layout_mremap, .run = run_mremap, .flags = SC_EARLY | SC_DRAIN, .timeout_s = 60},
	{.name = "madvise", .what = "MADV_DONTNEED on a partly pending range reads zeros",
	 .layout = layout_madvise, .run = run_madvise, .flags = SC_EARLY | SC_DRAIN, .timeout_s = 60},
	{.name = "munmap", .what = "munmap pending pages while the daemon drains",
	 .layout = layout_munmap, .run = run_munmap, .flags = SC_EARLY | SC_DRAIN | SC_STATS | SC_DROPS, .timeout_s = 90},
	{.name = "tree", .what = "4 tasks (one without memory) and 2 zombies",
	 .layout = layout_tree, .run = run_tree, .flags = SC_STATS, .timeout_s = 60},
	{.name = "large", .what = "256 MB: faults, full drain, daemon exit, stats",
	 .layout = layout_large, .run = run_large, .flags = SC_DRAIN | SC_STATS, .timeout_s = 240},
	{.name = "strided", .what = "128 MB, every second page read before RSTF, then the drain",
	 .layout = layout_strided, .run = run_strided, .flags = SC_EARLY | SC_DRAIN | SC_STATS, .timeout_s = 240},
	{.name = "exit-early", .what = "tasks exit at once; the daemon exits 0",
	 .layout = layout_two, .run = run_exit_now, .flags = 0, .timeout_s = 60},
	{.name = "drain", .what = "untouched tasks: the daemon drains all and exits 0",
	 .layout = layout_two, .run = run_drain, .flags = SC_DRAIN | SC_STATS, .timeout_s = 90},
	{.name = "criu42", .what = "pagemaps as CRIU 4.2 writes them (nr_pages in field 5)",
	 .layout = layout_seq, .run = run_seq, .flags = SC_PM42 | SC_STATS, .timeout_s = 60},
	{.name = "daemonize", .what = "-d --pidfile: detaches, serves, drains, exits 0",
	 .layout = layout_two, .run = run_drain, .flags = SC_DAEMONIZE | SC_DRAIN | SC_STATS, .timeout_s = 60},
	{.name = "exit-faulting", .what = "a task exits while its threads wait in faults",
	 .layout = layout_two, .run = run_exit_faulting, .flags = SC_EARLY, .timeout_s = 60},
	{.name = "adjacent", .what = "adjacent VMAs: entries and fault windows across boundaries",
	 .layout = layout_adjacent, .run = run_adjacent, .flags = SC_EARLY | SC_DRAIN | SC_STATS, .timeout_s = 60},
	{.name = "fork-remap", .what = "after a fork the child moves and discards, the parent unmaps",
	 .layout = layout_fork_remap, .run = run_fork_remap, .flags = SC_EARLY | SC_DRAIN, .timeout_s = 60},
	{.name = "fork-storm", .what = "32 forks while two threads fault; children exit with pages pending",
	 .layout = layout_fork_storm, .run = run_fork_storm, .flags = SC_EARLY | SC_DRAIN, .timeout_s = 60},
	{.name = "pages-vanish", .what = "page data unreadable after start: tasks killed, never zeros",
	 .layout = layout_two, .run = run_touch_all, .flags = SC_EARLY | SC_VANISH, .timeout_s = 60},
	{.name = "relpaths", .what = "relative -D -W -o: -o lands in the work dir, as with criu",
	 .layout = layout_two, .run = run_seq, .flags = SC_RELPATHS | SC_STATS, .timeout_s = 60},
	{.name = "no-workdir", .what = "no -W: the socket and the log are in the images dir",
	 .layout = layout_two, .run = run_seq, .flags = SC_RELPATHS | SC_NO_WORKDIR, .timeout_s = 60},
	{.name = "exec", .what = "a task execs with pages pending: the new program runs on",
	 .layout = layout_two, .run = run_exec, .flags = SC_EARLY, .timeout_s = 60},
	{.name = "sparse", .what = "1 GB VMA of holes with 100 data runs",
	 .layout = layout_sparse, .run = run_sparse, .flags = SC_DRAIN | SC_STATS, .timeout_s = 120},
	{.name = "pidns", .what = "the task is pid 1 of a new pid namespace, restore outside it",
	 .layout = layout_writes, .run = run_writes, .flags = SC_PIDNS | SC_EARLY | SC_DRAIN | SC_STATS, .timeout_s = 60},
	{.name = "pidns-vanish", .what = "page data lost for a task in its own pid namespace: killed",
	 .layout = layout_writes, .run = run_touch_all, .flags = SC_PIDNS | SC_EARLY | SC_VANISH, .timeout_s = 15},
	{.name = "bad-magic", .what = "corrupt pagemap magic: the daemon fails naming the file",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_pagemap_magic},
	{.name = "truncated", .what = "truncated mm image: the daemon fails naming the file",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_mm_truncated},
	{.name = "bad-pstree", .what = "corrupt pstree magic: the daemon fails naming the file",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_pstree_magic},
	{.name = "short-pages", .what = "pages file shorter than its pagemap: the daemon fails naming it",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = corrupt_pages_short},
	{.name = "hangup", .what = "restore hangs up after one task, before RSTF: the daemon fails",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL | SC_HANGUP, .timeout_s = 30, .hangup_after = 1},
	{.name = "hangup-empty", .what = "restore connects and hangs up at once: the daemon fails",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL | SC_HANGUP, .timeout_s = 30},
	{.name = "intruder", .what = "a second client after restore hung up: refused, nothing changes",
	 .layout = layout_intruder, .run = run_drain, .flags = SC_DRAIN | SC_INTRUDER | SC_STATS, .timeout_s = 60},
	{.name = "not-uffd", .what = "a task sends a pipe, not a uffd: refused, the task killed",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = swap_uffd_for_pipe},
	{.name = "forged-pid", .what = "a task sends another task's pid: refused",
	 .layout = layout_two, .run = run_exit_now, .flags = SC_EXPECT_FAIL, .timeout_s = 30,
	 .corrupt = forge_pid},
	{.name = "fork-exit", .what = "a task forks and exits at once; its orphan reads all memory",
	 .layout = layout_fork, .run = run_fork_exit, .flags = SC_ORPHAN, .timeout_s = 60},
	/* SC_CRASH: the worker is SIGKILLed while it serves (first kill within crash_first_ms). */
	{.name = "crash-early", .what = "worker killed before the restore connects, then again",
	 .layout = layout_two, .run = run_seq, .flags = SC_CRASH, .timeout_s = 60,
	 .crash_first_ms = 0, .crash_gap_ms = 40},
	{.name = "crash-large", .what = "256 MB: the worker killed 3 times during faults and drain",
	 .layout = layout_large, .run = run_large, .flags = SC_DRAIN | SC_CRASH, .timeout_s = 240,
	 .crash_first_ms = 20, .crash_gap_ms = 30},
	{.name = "crash-threads", .what = "4 threads fault while the worker is killed",
	 .layout = layout_threads, .run = run_threads, .flags = SC_EARLY | SC_CRASH, .timeout_s = 60,
	 .crash_first_ms = 5, .crash_gap_ms = 20},
	{.name = "crash-mremap", .what = "mremap of pending pages while the worker is killed",
	 .layout = layout_mremap, .run = run_mremap, .flags = SC_EARLY | SC_DRAIN | SC_CRASH, .timeout_s = 60,
	 .crash_first_ms = 5, .crash_gap_ms = 10},
	{.name = "crash-madvise", .what = "MADV_DONTNEED of pending pages while the worker is killed",
	 .layout = layout_madvise, .run = run_madvise, .flags = SC_EARLY | SC_DRAIN | SC_CRASH, .timeout_s = 60,
	 .crash_first_ms = 5, .crash_gap_ms = 10},
	{.name = "crash-fork-remap", .what = "fork, child remaps and discards, while the worker is killed",
	 .layout = layout_fork_remap, .run = run_fork_remap, .flags = SC_EARLY | SC_DRAIN | SC_CRASH, .timeout_s = 60,
	 .crash_first_ms = 5, .crash_gap_ms = 10},
	{.name = "crash-fork-storm", .what = "32 forks while the worker is killed",
	 .layout = layout_fork_storm, .run = run_fork_storm, .flags = SC_EARLY | SC_DRAIN | SC_CRASH, .timeout_s = 60,
	 .crash_first_ms = 5, .crash_gap_ms = 20},
	{.name = "crash-exit", .what = "a task exits while its threads fault and the worker is killed",
	 .layout = layout_two, .run = run_exit_faulting, .flags = SC_EARLY | SC_CRASH, .timeout_s = 60,
	 .crash_first_ms = 2, .crash_gap_ms = 10},
	{.name = "crash-fork-exit", .what = "a task forks and exits, its orphan reads all memory, the worker is killed",
	 .layout = layout_large, .run = run_fork_exit, .flags = SC_ORPHAN | SC_CRASH, .timeout_s = 120,
	 .crash_first_ms = 30, .crash_gap_ms = 30},
	{.name = "crash-tree", .what = "4 tasks and 2 zombies, the worker killed while they arrive",
	 .layout = layout_tree, .run = run_tree, .flags = SC_CRASH, .timeout_s = 60,
	 .crash_first_ms = 2, .crash_gap_ms = 10},
	{.name = "crash-loop", .what = "the worker keeps dying (--worker-restarts 1/60): tasks killed",
	 .layout = layout_large, .run = run_large, .flags = SC_CRASH | SC_KILLED, .timeout_s = 60,
	 .crash_first_ms = 0, .crash_gap_ms = 0, .daemon_arg = "--worker-restarts=1/60",
	 .must_say = "keeps dying"},
	{.name = "crash-keeper", .what = "the keeper killed while tasks run: the worker kills them",
	 .layout = layout_large, .run = run_large, .flags = SC_KILLED | SC_KEEPER_DIES, .timeout_s = 60,
	 .must_say = "keeper is gone"},
};
/* clang-format on */

const size_t sim_nr_scenarios = sizeof(sim_scenarios) / sizeof(sim_scenarios[0]);

const struct scenario *scenario_find(const char *name)
{
	for (size_t i = 0; i < sim_nr_scenarios; i++)
		if (!strcmp(sim_scenarios[i].name, name))
			return &sim_scenarios[i];
	return NULL;
}

bool scenario_matches(const struct scenario *sc, const char *pattern)
{
	return !fnmatch(pattern, sc->name, 0) || strstr(sc->name, pattern);
}

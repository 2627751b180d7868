/*
 * restore-sim: the model of a restored process tree. Every task's VMAs and
 * the kind of every page in them; from this one model the simulator writes
 * the images and the tasks check their memory.
 */
#ifndef SIM_MODEL_H
#define SIM_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "sim-util.h"

/* The kind of one page in the images. */
enum {
	PK_HOLE = 0,  /* lazy VMA, no pagemap entry: reads as zeros */
	PK_LAZY,      /* PE_PRESENT | PE_LAZY, pattern data: the daemon serves it */
	PK_LAZY_ZERO, /* PE_PRESENT | PE_LAZY, all-zero data in pages-N.img */
	PK_PRESENT,   /* PE_PRESENT only: restored by the task itself before it runs */
};

#define SIM_MAX_TASKS 8
#define SIM_MAX_VMAS 8
#define SIM_BASE 0x200000000000ULL
#define SIM_TASK_SPAN 0x4000000000ULL /* 256 GB per task */
#define SIM_VMA_SPAN 0x10000000ULL    /* 256 MB per VMA slot */

struct sim_vma {
	uint64_t start;
	uint64_t npages;
	int prot;
	uint8_t *kind; /* npages entries */
};

struct sim_task {
	int idx;
	pid_t pid;   /* the pid in pstree.img and on the socket: as the task sees it */
	pid_t real;  /* the same in the simulator's pid namespace (waitpid, kill) */
	bool zombie; /* pstree entry only: negative pid on the socket, no fd, no mm */
	int parent;  /* index of the parent in the tree, -1 for the root */
	int nvmas;
	struct sim_vma vma[SIM_MAX_VMAS];
	uint32_t pages_id;
	int ctl;      /* socketpair: the main side in main, the task side in the task */
	int uffd;     /* in main: the task's userfaultfd, received from it */
	int send_pid; /* in main: the pid the task is told to send (0: its own) */
	bool reaped;
	int status;
};

struct sim;

/* Scenario flags. */
#define SC_DRAIN 1u	  /* restore hangs up after RSTF; the daemon must exit before tasks */
#define SC_EXPECT_FAIL 2u /* the daemon must exit non-zero, with 'fail_file' in its output */
#define SC_HANGUP 4u	  /* restore hangs up before RSTF */
#define SC_STATS 8u	  /* check --stats-file against the model */
#define SC_DROPS 16u	  /* with SC_STATS: the tasks unmap or discard pending pages */
/*
 * SC_EARLY: the tasks run as soon as the daemon has their uffds, and restore sends RSTF only
 * when every task says 'P' (its address-space changes are done). The daemon prefetches
 * nothing before RSTF, so those changes hit pages that are surely still pending, and the
 * drain that follows must honour them.
 */
#define SC_EARLY 32u
#define SC_PM42 64u	    /* pagemaps as CRIU 4.2 writes them: nr_pages in field 5 */
#define SC_DAEMONIZE 128u   /* the daemon runs with -d --pidfile */
#define SC_RELPATHS 512u    /* relative -D, -W and -o, run from the test dir */
#define SC_NO_WORKDIR 1024u /* with SC_RELPATHS: no -W */
#define SC_PIDNS 2048u	    /* the task is pid 1 of a new pid namespace (CLONE_NEWPID) */
#define SC_VANISH 256u	    /* pages files truncated once the daemon runs: tasks must be killed */
/*
 * SC_INTRUDER: with the daemon stopped, restore sends RSTF and hangs up, and then another
 * client connects and sends a task's pid with a pipe and then pid 0 ($SIM_INTRUDER: a
 * command that gets the socket and the pid as arguments, else the simulator itself). The
 * daemon must refuse it and serve the restore as if nothing happened.
 */
#define SC_INTRUDER 4096u
#define SC_CRASH 8192u /* the daemon's worker is killed while it serves (sim-crash.h) */
#define SC_KILLED 16384u      /* the daemon must kill every task (saying must_say), not serve */
#define SC_KEEPER_DIES 32768u /* with SC_KILLED: the daemon's keeper is killed once tasks run */
#define SC_ORPHAN 65536u      /* a task's orphaned child reports in orphan-result (scen-fork.c) */

struct scenario {
	const char *name;
	const char *what;
	void (*layout)(struct sim *s);
	int (*run)(struct sim *s, struct sim_task *t); /* in the task; 0 when all was right */
	unsigned flags;
	int timeout_s;
	/* Negative tests: damage the images (or what restore sends); return the file name
	 * (or the words) the daemon must name. */
	const char *(*corrupt)(struct sim *s);
	int hangup_after; /* SC_HANGUP: task entries sent before hanging up */
	unsigned crash_first_ms, crash_gap_ms; /* SC_CRASH: when the killer strikes */
	const char *daemon_arg;		       /* one more argument for the daemon */
	const char *must_say;		       /* SC_KILLED: words the daemon's log must hold */
};

struct sim {
	const struct scenario *sc;
	uint64_t seed;
	int ntasks;
	struct sim_task task[SIM_MAX_TASKS];
	const char *daemon;	    /* the daemon's command: "PATH" or "PATH SUBCOMMAND ..." */
	const char *daemon_argv[8]; /* the same, split at spaces */
	bool no_stats;		    /* the daemon has no --stats-file (criu lazy-pages) */
	const char *crit;
	char dir[80];
	char imgdir[256], workdir[256], jsondir[256];
	char logpath[256], outpath[256], statspath[256], pidpath[256];
	char sockpath[108];
	pid_t dpid;
	bool dreaped;
	int dstatus;
	int sock;
	int timeout_s;
	int intruded; /* SC_INTRUDER: 1 if the built-in intruder connected */
	pid_t killer; /* SC_CRASH: the worker killer, and its count (a byte per kill) */
	int kill_rd;
	int sync_kills;
};

uint64_t vma_end(const struct sim_vma *v); /* the first address after it */

/* A new task in the tree, child of task index PARENT (-1: the root). */
struct sim_task *add_task(struct sim *s, int parent);

/* Percentages of each kind in a random layout; the rest is PK_LAZY. */
struct kind_mix {
	int zero, hole, present;
	int max_run; /* pages per run of one kind */
};

/* 10% lazy zero data, 15% holes, 15% present, the rest lazy data, in runs of 1 to 9 pages. */
extern const struct kind_mix MIX_DEFAULT;

/* Add a VMA in slot 'slot' of the task's address range, kinds from 'mix' (NULL: all 'only'). */
struct sim_vma *add_vma(struct sim *s, struct sim_task *t, int slot, uint64_t npages, int prot,
			const struct kind_mix *mix, uint8_t only);

/* A VMA right after the previous one (a different prot keeps the kernel from merging them). */
struct sim_vma *add_vma_after(struct sim *s, struct sim_task *t, uint64_t npages, int prot,
			      const struct kind_mix *mix, uint8_t only);

/* The kind of the image page at image address addr; PK_HOLE outside every VMA. */
uint8_t page_kind(const struct sim_task *t, uint64_t addr);

/* What the page at image address addr must hold. */
void expected_page(const struct sim *s, const struct sim_task *t, uint64_t addr, void *buf);

struct page_counts {
	uint64_t lazy, lazy_zero, hole, present;
};

/* The pages of every VMA of every task, by kind. */
void count_pages(const struct sim *s, struct page_counts *c);

#endif

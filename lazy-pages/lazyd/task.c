/* Task identity: mapping pids between namespaces, pidfds, and killing. */
#include "task.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define MAX_ANCESTRY 256	     /* ppid links followed at most */
#define PM_GUARD_REGION (1ULL << 58) /* a /proc/PID/pagemap entry's guard bit */
#define PM_BATCH 512		     /* pagemap entries read at once */

struct proc_ids {
	pid_t ppid;
	int ns_pid;   /* last NSpid field: the pid in its own namespace */
	int ns_depth; /* number of NSpid fields */
};

static int read_ids(pid_t p, struct proc_ids *ids)
{
	char path[64], line[256];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)p);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	ids->ppid = -1;
	ids->ns_pid = -1;
	ids->ns_depth = 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "PPid:", 5)) {
			ids->ppid = (pid_t)strtol(line + 5, NULL, 10);
		} else if (!strncmp(line, "NSpid:", 6)) {
			char *s = line + 6, *end;
			for (int i = 0; i < 64; i++) {
				long v = strtol(s, &end, 10);
				if (end == s)
					break;
				ids->ns_pid = (int)v;
				ids->ns_depth++;
				s = end;
			}
		}
	}
	fclose(f);
	return ids->ns_pid > 0 ? 0 : -1;
}

int task_ns_pid(pid_t real)
{
	struct proc_ids ids;
	return read_ids(real, &ids) ? -1 : ids.ns_pid;
}

/* Start time of p in clock ticks since boot (/proc/PID/stat field 22), or 0. */
static unsigned long long start_time(pid_t p)
{
	char path[64], buf[1024];
	unsigned long long t = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)p);
	f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *s = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (s && sscanf(s + 1,
			" %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
			"%*d %*d %*d %llu",
			&t) != 1)
		t = 0;
	return t;
}

/*
 * Is p in the restoring criu's tree? While criu restores, every restored task
 * descends from it, whichever pid namespace it was restored into (criu's
 * own, one it unshared, or one it created with CLONE_NEWPID for the root
 * task). With --restore-sibling (runc, podman) criu forks the root task with
 * CLONE_PARENT: the tree is then under criu's parent, and was started after
 * criu (which tells it from older children of that parent).
 */
static bool in_restore_tree(pid_t p, pid_t peer)
{
	struct proc_ids ids;
	pid_t peer_parent = read_ids(peer, &ids) ? -1 : ids.ppid;
	unsigned long long since = start_time(peer);

	for (int i = 0; i < MAX_ANCESTRY && p > 1; i++) {
		if (read_ids(p, &ids))
			return false;
		if (ids.ppid == peer)
			return true;
		if (peer_parent > 1 && ids.ppid == peer_parent)
			return since && start_time(p) >= since;
		p = ids.ppid;
	}
	return false;
}

/* Has P exited (gone from /proc)? */
static bool exited(pid_t p)
{
	return kill(p, 0) && errno == ESRCH;
}

/* Refused: why, with the pids we looked at. */
static int refuse(struct errmsg *e, const char *why, pid_t sender, pid_t peer)
{
	return errmsg_set(e, EPERM, "%s (sender pid %d, criu pid %d)", why, (int)sender, (int)peer);
}

int task_resolve_sender(pid_t peer, pid_t sender, int pid, pid_t *real, struct errmsg *e)
{
	*real = 0;
	if (sender > 0 && exited(sender))
		return 0; /* it sent its uffd and exited: nothing to serve */
	if (sender <= 0) {
		*real = -1;
		return refuse(e, "sent by a process the kernel did not name", sender, peer);
	}
	if (task_ns_pid(sender) != pid) {
		if (exited(sender))
			return 0; /* it exited (and was reaped) while we looked */
		*real = -1;
		return refuse(e, "sent by another process than that task", sender, peer);
	}
	if (!in_restore_tree(sender, peer)) {
		if (exited(sender))
			return 0; /* its /proc entry went away while we walked its ancestry */
		*real = sender;
		return refuse(e, "sent by a process outside the restoring criu's tree", sender,
			      peer);
	}
	*real = sender;
	return 0;
}

size_t task_children(pid_t parent, const pid_t *known, size_t nknown, pid_t *out, size_t max)
{
	char path[64];
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)parent);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] == '.')
			continue;
		char cpath[96];
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%.16s/children", (int)parent,
			 de->d_name);
		FILE *f = fopen(cpath, "re");
		if (!f)
			continue;
		int c;
		while (n < max && fscanf(f, "%d", &c) == 1) {
			bool seen = false;
			for (size_t i = 0; i < nknown && !seen; i++)
				seen = known[i] == c;
			for (size_t i = 0; i < n && !seen; i++)
				seen = out[i] == c;
			if (!seen)
				out[n++] = c;
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

int task_page_present(pid_t pid, uint64_t addr)
{
	char path[64];
	uint64_t ent;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, &ent, sizeof(ent), (off_t)(addr / 4096 * sizeof(ent)));
	close(fd);
	if (n != sizeof(ent))
		return -1;
	return (ent >> 63) & 1;
}

int task_pagemap(struct lz_task *t)
{
	char path[64];

	if (t->pagemap_fd == -1 && t->real > 0) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)t->real);
		t->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (t->pagemap_fd < 0) {
			pr_warn("%s: cannot open %s (%s): guard regions it installs after restore "
				"are not looked for",
				t->name, path, strerror(errno));
			t->pagemap_fd = -2;
		}
	}
	return t->pagemap_fd >= 0 ? t->pagemap_fd : -1;
}

int task_find_guard(int fd, uint64_t start, uint64_t end, uint64_t *gstart, uint64_t *gend)
{
	uint64_t ent[PM_BATCH], page = start / 4096, last = end / 4096;
	bool in = false;

	while (page < last) {
		size_t n = last - page < PM_BATCH ? last - page : PM_BATCH;
		ssize_t got = pread(fd, ent, n * sizeof(ent[0]), (off_t)(page * sizeof(ent[0])));

		if (got <= 0 || got % sizeof(ent[0])) {
			if (!in)
				return -1;
			*gend = page * 4096; /* the rest cannot be told: the run found so far */
			return 1;
		}
		n = (size_t)got / sizeof(ent[0]);
		for (size_t i = 0; i < n; i++, page++) {
			bool guard = ent[i] & PM_GUARD_REGION;

			if (guard && !in)
				*gstart = page * 4096;
			if (!guard && in) {
				*gend = page * 4096;
				return 1;
			}
			in = guard;
		}
	}
	if (in)
		*gend = end;
	return in;
}

int task_open_pidfd(pid_t real)
{
	if (real <= 0)
		return -1;
	return (int)syscall(SYS_pidfd_open, real, 0);
}

bool task_kill(struct lz_task *t)
{
	if (t->pidfd >= 0 && !syscall(SYS_pidfd_send_signal, t->pidfd, SIGKILL, NULL, 0))
		return true;
	if (t->pidfd >= 0 && errno == ESRCH)
		return true;
	pr_err("%s: cannot kill the task: its pid is not known here", t->name);
	return false;
}

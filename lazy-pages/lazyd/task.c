/* Task identity: mapping pids between namespaces, pidfds, and killing. */
#include "task.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define MAX_CHILDREN 4096

static int ns_ino(pid_t p, const char *ns, ino_t *ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)p, ns);
	if (stat(path, &st))
		return -1;
	*ino = st.st_ino;
	return 0;
}

/* Last field of the NSpid: line: the pid in the process's own namespace. */
int task_ns_pid(pid_t real)
{
	char path[64], line[256];
	int last = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)real);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "NSpid:", 6))
			continue;
		char *s = line + 6, *end;
		for (;;) {
			long v = strtol(s, &end, 10);
			if (end == s)
				break;
			last = (int)v;
			s = end;
		}
		break;
	}
	fclose(f);
	return last;
}

static bool in_ns(pid_t real, int pid, const ino_t *cand, int ncand)
{
	ino_t ino;

	if (task_ns_pid(real) != pid || ns_ino(real, "pid", &ino))
		return false;
	for (int i = 0; i < ncand; i++)
		if (cand[i] == ino)
			return true;
	return false;
}

pid_t task_resolve_pid(pid_t peer, int pid)
{
	ino_t cand[2];
	int ncand = 0;

	if (peer > 0 && !ns_ino(peer, "pid", &cand[ncand]))
		ncand++;
	if (peer > 0 && !ns_ino(peer, "pid_for_children", &cand[ncand]))
		ncand++;
	if (!ncand) {
		/* No peer credentials: assume the restore shares our namespace. */
		if (ns_ino(getpid(), "pid", &cand[0]))
			return -1;
		ncand = 1;
	}
	if (in_ns(pid, pid, cand, ncand))
		return pid;

	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	pid_t found = -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long v = strtol(de->d_name, &end, 10);
		if (*end || v <= 0)
			continue;
		if (in_ns((pid_t)v, pid, cand, ncand)) {
			found = (pid_t)v;
			break;
		}
	}
	closedir(d);
	return found;
}

pid_t task_find_new_child(pid_t parent, const pid_t *known, size_t n)
{
	char path[64];
	pid_t found = -1;
	int nfound = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)parent);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d)) && nfound < MAX_CHILDREN) {
		if (de->d_name[0] == '.')
			continue;
		char cpath[96];
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%.16s/children", (int)parent,
			 de->d_name);
		FILE *f = fopen(cpath, "re");
		if (!f)
			continue;
		int c;
		while (nfound < MAX_CHILDREN && fscanf(f, "%d", &c) == 1) {
			bool seen = false;
			for (size_t i = 0; i < n && !seen; i++)
				seen = known[i] == c;
			if (!seen && c != found) {
				found = c;
				nfound++;
			}
		}
		fclose(f);
	}
	closedir(d);
	/* Several new children at once: we cannot tell which uffd is whose. */
	return nfound == 1 ? found : -1;
}

int task_open_pidfd(pid_t real)
{
	if (real <= 0)
		return -1;
	return (int)syscall(SYS_pidfd_open, real, 0);
}

bool task_kill(struct lz_task *t)
{
	if (t->pidfd >= 0 && !syscall(SYS_pidfd_send_signal, t->pidfd, SIGKILL, NULL, 0)) {
		t->killed = true;
		return true;
	}
	if (t->pidfd >= 0 && errno == ESRCH) {
		t->killed = true;
		return true;
	}
	pr_err("%s: cannot kill the task: no pidfd for it", t->name);
	return false;
}

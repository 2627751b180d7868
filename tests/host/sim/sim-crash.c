#include "sim-crash.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim-util.h"

static bool is_lazyd(pid_t pid)
{
	char path[64], comm[32] = "";

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = fgets(comm, sizeof(comm), f) && !strcmp(comm, "criu-lazyd\n");
	fclose(f);
	return ok;
}

/*
 * The daemon's worker: the last one its keeper logged ("keeper: worker pid N started"), if it
 * is still a live criu-lazyd. (Not "a child of the keeper": under AddressSanitizer the keeper
 * has other children at exit, LeakSanitizer's.)
 */
static pid_t worker_of(const struct sim *s)
{
	char line[512], path[64], st[256];
	int pid = 0;
	FILE *f = fopen(s->logpath, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		const char *at = strstr(line, "keeper: worker pid ");
		if (at && strstr(at, " started"))
			pid = atoi(at + strlen("keeper: worker pid "));
	}
	fclose(f);
	if (pid <= 0 || !is_lazyd(pid))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	/* "pid (comm) S ...": a zombie is not a worker to kill */
	const char *state = fgets(st, sizeof(st), f) ? strrchr(st, ')') : NULL;
	fclose(f);
	return state && state[1] == ' ' && state[2] != 'Z' ? pid : 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Kill the keeper's worker (waiting up to 2 s for one to run); 1 if killed, 0 if not. */
static int kill_worker(const struct sim *s)
{
	for (int i = 0; i < 2000 && !kill(s->dpid, 0); i++) {
		pid_t w = worker_of(s);
		if (w > 0 && !kill(w, SIGKILL)) {
			fprintf(stderr, "restore-sim: killed the daemon's worker pid %d\n", (int)w);
			/* Until the keeper has seen it die (its next worker is another pid). */
			for (int j = 0; j < 2000 && worker_of(s) == w; j++)
				sleep_ms(1);
			return 1;
		}
		sleep_ms(1);
	}
	return 0;
}

int crash_now(struct sim *s)
{
	int k = kill_worker(s);

	s->sync_kills += k;
	return k;
}

/* The killer: a byte on wfd per worker it killed. */
static int killer(const struct sim *s, unsigned first_ms, unsigned gap_ms, int wfd)
{
	struct sim_rng r = {s->seed ^ 0xc4a5};
	int kills = 0;

	sleep_ms((unsigned)rng_below(&r, first_ms + 1));
	while (kills < SIM_CRASH_KILLS && !kill(s->dpid, 0)) {
		if (!kill_worker(s))
			break;
		kills++;
		if (write(wfd, "k", 1) != 1)
			return kills;
		sleep_ms(5 + (unsigned)rng_below(&r, gap_ms + 1));
	}
	return kills;
}

int crash_start(struct sim *s, unsigned first_ms, unsigned gap_ms)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		/* Nothing of ours may hold a task's uffd (the daemon must be its only keeper). */
		for (int fd = 3; fd < 4096; fd++)
			if (fd != p[1])
				close(fd);
		_exit(killer(s, first_ms, gap_ms, p[1]) & 0);
	}
	close(p[1]);
	s->killer = pid;
	s->kill_rd = p[0];
	sim_log("worker killer pid %d: first kill within %u ms, then every 5-%u ms, up to %d",
		(int)pid, first_ms, gap_ms + 5, SIM_CRASH_KILLS);
	return 0;
}

int crash_stop(struct sim *s)
{
	char buf[64];
	int kills = 0;
	ssize_t n;

	if (s->killer <= 0)
		return s->sync_kills;
	kill(s->killer, SIGKILL);
	waitpid(s->killer, NULL, 0);
	s->killer = 0;
	while ((n = read(s->kill_rd, buf, sizeof(buf))) > 0)
		kills += (int)n;
	close(s->kill_rd);
	s->kill_rd = -1;
	return kills + s->sync_kills;
}

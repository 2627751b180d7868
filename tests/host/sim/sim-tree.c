/*
 * restore-sim: the restored tree from the main process: fork the tasks, collect their uffds,
 * tell them what to do, wait for what they say, reap them.
 */
#include "sim-tree.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim-proto.h"
#include "sim-task.h"

#define SETUP_MS 15000

static int task_main(struct sim *s, struct sim_task *t)
{
	uint64_t deadline = now_ms() + (uint64_t)s->timeout_s * 1000;

	task_arm_timeout(s->timeout_s);
	int uffd = task_setup(s, t);
	if (uffd < 0)
		return 20;
	int c = task_read_cmd(t, deadline);
	if (c == 'R') {
		if (task_register(t, uffd) || send_byte(t->ctl, 'r'))
			return 22;
		c = read_byte(t->ctl, deadline);
	} else {
		close(uffd);
	}
	if (c == 'Q')
		return 0;
	if (c != 'G') {
		sim_log("task %d: restore went away before the go (%d)", (int)getpid(), c);
		return 21;
	}
	return s->sc->run(s, t);
}

static void close_main_ends(struct sim *s, int upto)
{
	for (int i = 0; i < upto; i++)
		if (s->task[i].ctl >= 0)
			close(s->task[i].ctl);
}

/* fork(), or with SC_PIDNS a fork into a new pid namespace (as criu restores a pidns). */
static pid_t fork_task(const struct sim *s)
{
	if (s->sc->flags & SC_PIDNS)
		return (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, NULL, NULL, 0);
	return fork();
}

static int spawn_task(struct sim *s, struct sim_task *t)
{
	int sv[2];

	if (t->zombie) {
		t->pid = t->real = fork();
		if (t->pid == 0)
			_exit(0); /* stays a zombie until the end */
		return t->pid < 0 ? -1 : 0;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	t->real = fork_task(s);
	if (t->real < 0)
		return -1;
	if (t->real == 0) {
		close(sv[0]);
		close_main_ends(s, t->idx);
		t->ctl = sv[1];
		t->pid = getpid();
		_exit(task_main(s, t));
	}
	/* The first task of a new pid namespace is its pid 1. */
	t->pid = (s->sc->flags & SC_PIDNS) ? 1 : t->real;
	close(sv[1]);
	t->ctl = sv[0];
	return 0;
}

int spawn_tasks(struct sim *s)
{
	uint64_t deadline = now_ms() + SETUP_MS;

	for (int i = 0; i < s->ntasks; i++)
		if (spawn_task(s, &s->task[i])) {
			sim_log("cannot start task %d: %s", i, strerror(errno));
			return -1;
		}
	for (int i = 0; i < s->ntasks; i++) {
		struct sim_task *t = &s->task[i];
		if (t->zombie)
			continue;
		t->uffd = recv_fd(t->ctl, deadline);
		if (t->uffd < 0) {
			sim_log("task %d (pid %d) did not set up its memory", i, t->pid);
			return -1;
		}
	}
	return 0;
}

void tell_tasks(struct sim *s, char c)
{
	for (int i = 0; i < s->ntasks; i++)
		if (!s->task[i].zombie && !s->task[i].reaped)
			send_byte(s->task[i].ctl, c);
}

void close_uffds(struct sim *s)
{
	for (int i = 0; i < s->ntasks; i++)
		if (s->task[i].uffd >= 0) {
			close(s->task[i].uffd);
			s->task[i].uffd = -1;
		}
}

/* Wait for every task (and the zombie) to finish; the number of failed ones, -1 on timeout. */
int reap_tasks(struct sim *s, uint64_t deadline)
{
	int left = s->ntasks, failed = 0;

	for (int i = 0; i < s->ntasks; i++)
		left -= s->task[i].reaped;
	while (left) {
		for (int i = 0; i < s->ntasks; i++) {
			struct sim_task *t = &s->task[i];
			if (t->reaped || waitpid(t->real, &t->status, WNOHANG) != t->real)
				continue;
			t->reaped = true;
			left--;
			if (!WIFEXITED(t->status) || WEXITSTATUS(t->status)) {
				sim_log("task %d (pid %d) failed: %s %d", i, t->pid,
					WIFEXITED(t->status) ? "exit" : "signal",
					WIFEXITED(t->status) ? WEXITSTATUS(t->status)
							     : WTERMSIG(t->status));
				failed++;
			}
		}
		if (left && !ms_left(deadline))
			return -1;
		if (left)
			usleep(5000);
	}
	return failed;
}

void kill_tasks(struct sim *s)
{
	for (int i = 0; i < s->ntasks; i++)
		if (!s->task[i].reaped && s->task[i].real > 0)
			kill(s->task[i].real, SIGKILL);
	reap_tasks(s, now_ms() + 5000);
}

/* Every live task says 'c' ('r' registered, 'P' SC_EARLY changes done, 'D' ready for the end). */
int wait_tasks_say(struct sim *s, char c, uint64_t deadline)
{
	for (int i = 0; i < s->ntasks; i++) {
		struct sim_task *t = &s->task[i];
		if (t->zombie)
			continue;
		if (read_byte(t->ctl, deadline) != c) {
			sim_log("task %d (pid %d) failed or hung before saying '%c'", i, t->pid, c);
			return -1;
		}
	}
	return 0;
}

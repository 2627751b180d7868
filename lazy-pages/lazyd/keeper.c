/*
 * The keeper (see keeper.h): holds the restore's connection and every uffd, reads them,
 * forwards to the worker, logs what a new worker needs, restarts a worker that dies. It
 * allocates nothing after start: its tables are static and bounded; when one is full it says
 * so, and a worker crash after that kills the tasks instead of resuming.
 */
#include "keeper_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lpsock.h"
#include "task.h"
#include "util/clock.h"
#include "util/daemon.h"
#include "util/log.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define KEEP_GONE_WAIT_MS 10000

/*
 * The restore cannot be served on: every task we hold a uffd of is killed, and the uffds
 * are held until they are gone (so that none of them reads a zero-filled page meanwhile).
 */
/* The stats file, when no worker will write it: what the keeper knows. */
static void gave_up_stats(const struct keeper *k, const char *why, unsigned killed)
{
	if (!k->o->stats_file)
		return;
	FILE *f = fopen(k->o->stats_file, "we");
	if (!f) {
		pr_err("cannot write stats file %s: %s", k->o->stats_file, strerror(errno));
		return;
	}
	fprintf(
	    f, "{\n  \"gave_up\": \"%s\",\n  \"worker_restarts\": %u,\n  \"tasks_killed\": %u\n}\n",
	    why, k->restarts, killed);
	if (fclose(f))
		pr_err("cannot write stats file %s", k->o->stats_file);
}

static int give_up(struct keeper *k, const char *why)
{
	unsigned n = 0;

	for (uint32_t s = 0; s < k->nslots; s++)
		n += keep_slots[s].fd >= 0;
	pr_err("keeper: %s: killing the %u restored tasks it holds, so that none runs on with a "
	       "page nobody serves",
	       why, n);
	for (uint32_t s = 0; s < k->nslots; s++)
		if (keep_slots[s].fd >= 0)
			keep_kill_slot(k, s);
	gave_up_stats(k, why, n);
	if (k->worker > 0)
		kill(k->worker, SIGKILL);
	uint64_t until = mono_ms() + KEEP_GONE_WAIT_MS;
	for (uint32_t s = 0; s < k->nslots; s++) {
		if (keep_slots[s].fd < 0 || keep_slots[s].pidfd < 0)
			continue;
		uint64_t now = mono_ms();
		struct pollfd p = {keep_slots[s].pidfd, POLLIN, 0};
		if (now < until)
			poll(&p, 1, (int)(until - now));
	}
	return 1;
}

/* Close in the worker what is the keeper's: the worker gets its uffds through the link. */
static void worker_close_keeper_fds(struct keeper *k)
{
	close(k->ep);
	if (k->listen_fd >= 0)
		close(k->listen_fd);
	if (k->conn_fd >= 0)
		close(k->conn_fd);
	if (k->ready_fd >= 0)
		close(k->ready_fd);
	close(k->sig_fd);
	for (uint32_t s = 0; s < k->nslots; s++) {
		if (keep_slots[s].fd >= 0)
			close(keep_slots[s].fd);
		if (keep_slots[s].pidfd >= 0)
			close(keep_slots[s].pidfd);
	}
	for (size_t i = 0; i < k->rx.nfds; i++)
		close(k->rx.fds[i]);
	if (k->o->status_fd >= 0 && !k->ever_ready)
		close(k->o->status_fd); /* the keeper says ready, not a worker */
}

/* KEEPER_WORKER in the new worker, 0 in the keeper, -errno. */
static int spawn(struct keeper *k, struct keeper_link *link)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int rc = -errno;
		close(sv[0]);
		close(sv[1]);
		return rc;
	}
	if (pid == 0) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd >= 0 && write(fd, "0", 1) != 1)
			pr_debug("worker: oom_score_adj stays as the keeper's");
		if (fd >= 0)
			close(fd);
		close(sv[0]);
		worker_close_keeper_fds(k);
		*link = (struct keeper_link){.fd = sv[1], .shm = k->shm, .restarts = k->restarts};
		return KEEPER_WORKER;
	}
	close(sv[1]);
	k->link_fd = sv[0];
	k->worker = pid;
	k->live = false;
	k->done_said = false;
	k->worker_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (k->worker_pidfd < 0 || keep_watch(k, k->worker_pidfd, T_WORKER) ||
	    keep_watch(k, k->link_fd, T_LINK)) {
		int rc = -errno;
		kill(pid, SIGKILL);
		return rc ? rc : -EIO;
	}
	pr_info("keeper: worker pid %d started%s", (int)pid, k->restarts ? " (a restart)" : "");
	return 0;
}

/* Too many crashes in the window? */
static bool crash_loop(struct keeper *k, double now)
{
	unsigned max = k->o->worker_restarts, in_window = 0;

	k->crash_at[(k->restarts - 1) % 64] = now;
	for (unsigned i = 0; i < 64 && i < k->restarts; i++)
		in_window += now - k->crash_at[i] <= k->o->restart_window_s;
	return in_window > max;
}

/* Why a read of the uffds (-ENOSPC, -EMFILE) cannot go on, or NULL. */
static const char *fork_lost(int rc)
{
	if (rc == -ENOSPC)
		return "a fork it cannot hold (too many uffds)";
	if (rc == -EMFILE)
		return "out of file descriptors for a fork's uffd";
	return NULL;
}

/*
 * The worker exited. On purpose (it said WK_DONE): the keeper exits with its code. Else it
 * crashed: a new one, unless too many died or the log cannot tell a new one everything.
 * KEEPER_WORKER (in the new worker), the exit code (>= 0) or -1 to go on.
 */
static int on_worker_exit(struct keeper *k, struct keeper_link *link)
{
	siginfo_t si = {0};
	char how[64];

	if (syscall(SYS_waitid, P_PIDFD, k->worker_pidfd, &si, WEXITED | WNOHANG, NULL) ||
	    !si.si_pid)
		return -1;
	keep_unwatch(k, k->worker_pidfd);
	close(k->worker_pidfd);
	k->worker_pidfd = -1;
	/* What it said last (WK_DONE) may still be queued: the pidfd can win the race. */
	const char *why = fork_lost(k->link_fd >= 0 ? keep_on_link(k) : 0);
	if (why)
		return give_up(k, why);
	if (k->link_fd >= 0) {
		keep_unwatch(k, k->link_fd);
		close(k->link_fd);
		k->link_fd = -1;
	}
	k->live = false;
	if (si.si_code == CLD_EXITED)
		snprintf(how, sizeof(how), "exit code %d", si.si_status);
	else
		snprintf(how, sizeof(how), "signal %d (%s)", si.si_status, strsignal(si.si_status));
	if (k->done_said) {
		pr_info("keeper: worker pid %d done (%s)", (int)k->worker, how);
		return k->done_code ? k->done_code : k->any_killed;
	}
	if (!k->ever_ready && !k->restarts) {
		pr_err("keeper: worker pid %d failed to start (%s)", (int)k->worker, how);
		return 1;
	}
	if (k->stopping)
		return give_up(k, "the daemon was stopped and its worker is gone");
	k->restarts++;
	pr_err("keeper: worker pid %d died (%s) with the restore in progress: restart %u",
	       (int)k->worker, how, k->restarts);
	if (k->log_full)
		return give_up(k, "its log was full: a new worker could not be told everything");
	if (crash_loop(k, mono_sec()))
		return give_up(k, "the worker keeps dying");
	int rc = spawn(k, link);
	if (rc == KEEPER_WORKER)
		return rc;
	if (rc)
		return give_up(k, "no new worker can be started");
	return -1;
}

static int on_signal(struct keeper *k)
{
	struct signalfd_siginfo si;

	if (read(k->sig_fd, &si, sizeof(si)) != sizeof(si))
		return -1;
	pr_err("keeper: signal %u: stopping", si.ssi_signo);
	if (k->worker_pidfd < 0)
		return give_up(k, "the daemon was stopped while no worker ran");
	k->stopping = true;
	kill(k->worker, SIGTERM); /* it kills what still needs pages and says WK_DONE */
	return -1;
}

static int loop(struct keeper *k, struct keeper_link *link)
{
	struct epoll_event ev[64];

	for (;;) {
		int n = epoll_wait(k->ep, ev, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return give_up(k, "its event loop failed");
		for (int i = 0; i < n; i++) {
			uint32_t tag = ev[i].data.u32;
			int rc = -1;
			if (tag >= T_SLOT) {
				const char *why = fork_lost(keep_read_slot(k, tag - T_SLOT));
				if (why)
					return give_up(k, why);
				continue;
			}
			switch (tag) {
			case T_LISTEN:
				keep_on_accept(k);
				break;
			case T_CONN:
				if (keep_on_conn(k))
					return give_up(k, "a task it cannot hold (too many uffds)");
				break;
			case T_LINK: {
				const char *why = fork_lost(k->link_fd >= 0 ? keep_on_link(k) : 0);
				if (why)
					return give_up(k, why);
				break;
			}
			case T_WORKER:
				rc = on_worker_exit(k, link);
				break;
			case T_SIG:
				rc = on_signal(k);
				break;
			}
			if (rc >= 0)
				return rc;
		}
	}
}

static int shm_new(struct keeper *k)
{
	pthread_mutexattr_t ma;

	k->shm =
	    mmap(NULL, sizeof(*k->shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (k->shm == MAP_FAILED)
		return -errno;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	int rc = pthread_mutex_init(&k->shm->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	if (rc)
		return -rc;
	atomic_init(&k->shm->fill_readers, 0);
	k->fence = (struct fill_fence){k->shm->fill_lock, k->shm->fill_owner, &k->shm->events_read,
				       &k->shm->fill_readers};
	return fill_fence_init(k->shm->fill_lock, FILL_POOL_MAX, true);
}

static void keeper_close(struct keeper *k)
{
	for (uint32_t s = 0; s < k->nslots; s++) {
		keep_slot_close(k, s);
		if (keep_slots[s].pidfd >= 0)
			close(keep_slots[s].pidfd);
	}
	if (k->conn_fd >= 0)
		keep_drop_conn(k);
	if (k->listen_fd >= 0) {
		close(k->listen_fd);
		unlink(k->published ? LPS_NAME : LPS_STARTING);
	}
}

/* The OOM killer should take the worker (restarted) rather than the keeper (the tasks'
 * uffds): -1000 needs CAP_SYS_RESOURCE, which a restore normally has. */
static void shield_from_oom(void)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, "-1000", 5) != 5)
		pr_debug("keeper: oom_score_adj stays as it is (%s)", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Every uffd of the restore (and every fork's) is held here: as many fds as allowed. */
static void raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) || r.rlim_cur >= r.rlim_max)
		return;
	r.rlim_cur = r.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &r))
		pr_warn("keeper: cannot raise its file limit to %lu: %s", (unsigned long)r.rlim_max,
			strerror(errno));
}

int keeper_start(const struct lazyd_opts *o, struct keeper_link *link)
{
	static struct keeper k;
	int rc;

	k = (struct keeper){.o = o,
			    .listen_fd = -1,
			    .conn_fd = -1,
			    .link_fd = -1,
			    .worker_pidfd = -1,
			    .ready_fd = -1};
	k.ep = epoll_create1(EPOLL_CLOEXEC);
	k.sig_fd = daemon_signalfd();
	if (k.ep < 0 || k.sig_fd < 0 || (rc = shm_new(&k))) {
		pr_err("keeper: cannot set up: %s", strerror(errno));
		return 1;
	}
	/* Under its public name only once the worker is ready (keeper_relay.c, WK_READY): a
	 * restore by id started at once must find the images' metadata fetched, and connect
	 * when the worker can serve it. */
	k.listen_fd = lps_listen_as(LPS_STARTING);
	if (k.listen_fd < 0) {
		pr_err("cannot listen on %s in %s: %s", LPS_STARTING, o->work_dir,
		       strerror(-k.listen_fd));
		return 1;
	}
	/* A socket a dead daemon left: nobody listens there, a restore must not find it. */
	if (unlink(LPS_NAME) && errno != ENOENT)
		pr_warn("cannot remove the old %s in %s: %s", LPS_NAME, o->work_dir,
			strerror(errno));
	if (o->daemon && daemon_detach_ready("criu-lazyd", o->pidfile, false, &k.ready_fd)) {
		pr_err("cannot daemonize: %s", strerror(errno));
		return 1;
	}
	if (!o->daemon && o->pidfile && daemon_write_pidfile(o->pidfile, getpid()))
		pr_warn("cannot write pidfile %s: %s", o->pidfile, strerror(errno));
	if (keep_watch(&k, k.listen_fd, T_LISTEN) || keep_watch(&k, k.sig_fd, T_SIG)) {
		pr_err("keeper: cannot watch its sockets: %s", strerror(errno));
		return 1;
	}
	shield_from_oom();
	raise_nofile();
	rc = spawn(&k, link);
	if (rc == KEEPER_WORKER)
		return rc;
	if (rc) {
		pr_err("keeper: cannot start the worker: %s", strerror(-rc));
		keeper_close(&k);
		return 1;
	}
	rc = loop(&k, link);
	if (rc == KEEPER_WORKER)
		return rc;
	if (k.restarts)
		pr_msg("summary: keeper pid %d: %u worker restarts", (int)getpid(), k.restarts);
	keeper_close(&k);
	return rc;
}

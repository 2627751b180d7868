/*
 * The keeper (see keeper.h): holds the restore's connection and every uffd, reads them,
 * forwards to the worker, logs what a new worker needs, restarts a worker that dies. It
 * allocates nothing after start: its tables are static and bounded; when one is full it says
 * so, and a worker crash after that kills the tasks instead of resuming.
 */
#include "keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
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

#define KEEP_MAX_SLOTS 4096
#define KEEP_LOG_MAX 65536
#define KEEP_READS_PER_WAKE 8
#define KEEP_GONE_WAIT_MS 10000

enum tag { T_LISTEN = 1, T_CONN, T_SIG, T_LINK, T_WORKER, T_SLOT = 16 };

struct kslot {
	int fd;		/* the uffd, -1 once closed */
	int pidfd;	/* its process once a worker said which, else -1 */
	pid_t real;	/* that process, 0 if not known */
	int parent;	/* a fork child: its parent's slot, else -1 */
	pid_t sender;	/* a restore item: who sent it */
	uint32_t entry; /* its KP_TASK or fork entry in the log */
};

struct keeper {
	const struct lazyd_opts *o;
	int ep, listen_fd, conn_fd, sig_fd, link_fd, worker_pidfd, ready_fd;
	pid_t worker, peer;
	bool live;	   /* the worker has had its replay: forward to it */
	bool ever_ready;   /* the restore may connect: said once */
	bool done_said;	   /* the worker said it exits on purpose */
	bool finished;	   /* the restore-finished marker came */
	bool stopping;	   /* a signal: the worker was asked to stop */
	int done_code;
	size_t nr_tasks, received;
	struct keeper_shm *shm;
	struct lps_rx rx;
	unsigned restarts;
	double crash_at[64]; /* when the last workers died (a ring) */
	uint32_t nslots;
	bool log_full;
	uint32_t nlog;
};

static struct kslot slots[KEEP_MAX_SLOTS];
static struct kp_msg klog[KEEP_LOG_MAX];

static int watch(struct keeper *k, int fd, uint32_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};

	return epoll_ctl(k->ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static void unwatch(struct keeper *k, int fd)
{
	if (fd >= 0)
		epoll_ctl(k->ep, EPOLL_CTL_DEL, fd, NULL);
}

/* Append to the log; false (said once) when it is full: resuming is not possible then. */
static bool log_add(struct keeper *k, const struct kp_msg *m)
{
	if (k->nlog == KEEP_LOG_MAX) {
		if (!k->log_full)
			pr_err("keeper: its log is full (%u entries): a worker crash from now on "
			       "kills the restored tasks instead of resuming",
			       KEEP_LOG_MAX);
		k->log_full = true;
		return false;
	}
	klog[k->nlog++] = *m;
	return true;
}

/* One datagram to the worker: msgs[0..n), or one message and its fd. */
static void send_msgs(struct keeper *k, const struct kp_msg *msgs, size_t n, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {(void *)msgs, n * sizeof(*msgs)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (k->link_fd < 0 || !n)
		return;
	if (fd >= 0) {
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	/* A worker that died is seen on its pidfd; what it did not get is in the log. */
	while (sendmsg(k->link_fd, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void forward(struct keeper *k, const struct kp_msg *m, int fd)
{
	if (k->live)
		send_msgs(k, m, 1, fd);
}

static int slot_new(struct keeper *k, int fd, int parent, pid_t sender)
{
	if (k->nslots == KEEP_MAX_SLOTS)
		return -ENOSPC;
	int s = (int)k->nslots;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	int rc = watch(k, fd, T_SLOT + (uint32_t)s);
	if (rc)
		return rc;
	slots[s] = (struct kslot){fd, -1, 0, parent, sender, k->nlog};
	k->nslots++;
	return s;
}

static void slot_close(struct keeper *k, uint32_t s)
{
	if (s >= k->nslots || slots[s].fd < 0)
		return;
	unwatch(k, slots[s].fd);
	close(slots[s].fd);
	slots[s].fd = -1;
}

/* Kill one slot's process, or the children of its parent that nobody named. */
static void kill_slot(uint32_t s)
{
	struct kslot *sl = &slots[s];

	if (sl->pidfd >= 0 && !syscall(SYS_pidfd_send_signal, sl->pidfd, SIGKILL, NULL, 0))
		return;
	if (sl->real > 0) {
		kill(sl->real, SIGKILL);
		return;
	}
	if (sl->parent >= 0 && slots[sl->parent].real > 0) {
		pid_t c[64];
		size_t n = task_children(slots[sl->parent].real, NULL, 0, c, 64);
		for (size_t i = 0; i < n; i++) {
			pr_err("keeper: killing pid %d, a child of pid %d that may hold slot %u",
			       (int)c[i], (int)slots[sl->parent].real, s);
			kill(c[i], SIGKILL);
		}
		return;
	}
	if (sl->sender > 0)
		kill(sl->sender, SIGKILL);
}

/*
 * The restore cannot be served on: every task we hold a uffd of is killed, and the uffds
 * are held until they are gone (so that none of them reads a zero-filled page meanwhile).
 */
static int give_up(struct keeper *k, const char *why)
{
	unsigned n = 0;

	for (uint32_t s = 0; s < k->nslots; s++)
		n += slots[s].fd >= 0;
	pr_err("keeper: %s: killing the %u restored tasks it holds, so that none runs on with a "
	       "page nobody serves",
	       why, n);
	for (uint32_t s = 0; s < k->nslots; s++)
		if (slots[s].fd >= 0)
			kill_slot(s);
	if (k->worker > 0)
		kill(k->worker, SIGKILL);
	uint64_t until = mono_ms() + KEEP_GONE_WAIT_MS;
	for (uint32_t s = 0; s < k->nslots; s++) {
		if (slots[s].fd < 0 || slots[s].pidfd < 0)
			continue;
		uint64_t now = mono_ms();
		struct pollfd p = {slots[s].pidfd, POLLIN, 0};
		if (now < until)
			poll(&p, 1, (int)(until - now));
	}
	return 1;
}

/* A restore item: logged, forwarded (with the uffd), and the uffd read from now on. */
static int on_task(struct keeper *k, const struct lps_msg *m)
{
	struct kp_msg e = {.type = KP_TASK, .a = m->pid, .b = (int32_t)m->sender};

	k->received++;
	if (lps_check_uffd(m->uffd)) {
		/* Not a uffd: the worker refuses it (and says why); nothing here to hold. */
		e.slot = UINT32_MAX;
		e.flags = KPF_REFUSED;
		log_add(k, &e);
		forward(k, &e, m->uffd);
		close(m->uffd);
		return 0;
	}
	int s = slot_new(k, m->uffd, -1, m->sender);
	if (s < 0) {
		close(m->uffd);
		return -ENOSPC;
	}
	e.slot = (uint32_t)s;
	log_add(k, &e);
	forward(k, &e, m->uffd);
	return 0;
}

static void restore_failed(struct keeper *k, int how)
{
	struct kp_msg e = {.type = KP_RESTORE_FAILED, .a = how};

	pr_err("keeper: %s", how ? "protocol error on lazy-pages.socket"
				 : "criu closed lazy-pages.socket before the restore finished");
	log_add(k, &e);
	forward(k, &e, -1);
}

static void drop_conn(struct keeper *k)
{
	unwatch(k, k->conn_fd);
	close(k->conn_fd);
	k->conn_fd = -1;
	lps_rx_free(&k->rx);
}

static int on_conn(struct keeper *k)
{
	while (k->conn_fd >= 0) {
		struct lps_msg m = {.uffd = -1};
		size_t left = k->finished || k->received >= k->nr_tasks ? 0
										 : k->nr_tasks - k->received;
		enum lps_item it = lps_next(k->conn_fd, &k->rx, left, &m);
		struct kp_msg e = {0};

		if (k->finished) {
			if (it == LPS_NONE)
				return 0;
			if (it != LPS_EOF)
				pr_warn("lazy-pages socket: data after the restore-finished marker: "
					"hung up, nothing changed");
			drop_conn(k);
			return 0;
		}
		switch (it) {
		case LPS_NONE:
			return 0;
		case LPS_TASK:
			if (on_task(k, &m))
				return -ENOSPC;
			break;
		case LPS_ZOMBIE:
			k->received++;
			e = (struct kp_msg){.type = KP_ZOMBIE, .a = m.pid};
			log_add(k, &e);
			forward(k, &e, -1);
			break;
		case LPS_FINISHED:
			k->finished = true;
			e = (struct kp_msg){.type = KP_FINISHED};
			log_add(k, &e);
			forward(k, &e, -1);
			break;
		case LPS_EOF:
		case LPS_ERROR:
			drop_conn(k);
			restore_failed(k, it == LPS_ERROR);
			return 0;
		}
	}
	return 0;
}

static void on_accept(struct keeper *k)
{
	struct ucred cr;
	int c = accept4(k->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (c < 0)
		return;
	const char *why = lps_check_peer(c, &cr);
	if (!why && k->peer > 0)
		why = "a restore has connected already";
	if (!why && watch(k, c, T_CONN))
		why = "the keeper cannot watch it";
	if (why) {
		pr_warn("lazy-pages.socket: connection from pid %d (uid %u) refused: %s",
			(int)cr.pid, (unsigned)cr.uid, why);
		close(c);
		return;
	}
	k->conn_fd = c;
	k->peer = cr.pid;
	struct kp_msg e = {.type = KP_CONNECTED, .a = cr.pid};
	log_add(k, &e);
	forward(k, &e, -1);
}

static bool lock_shared(struct keeper *k)
{
	int rc = pthread_mutex_lock(&k->shm->lock);

	if (rc == EOWNERDEAD) /* the worker died holding it: nothing it guards is half done */
		rc = pthread_mutex_consistent(&k->shm->lock);
	return rc == 0;
}

/*
 * Read slot s's uffd (under the shared lock, counting the events: keeper.h), log the events
 * and forward everything in order. -ENOSPC when a fork cannot be held.
 */
static int read_slot(struct keeper *k, uint32_t s)
{
	struct uffd_msg in[KP_BATCH];
	struct kp_msg out[KP_BATCH];
	int fds[KP_BATCH];
	ssize_t n;
	int rc = 0;

	if (slots[s].fd < 0)
		return 0;
	if (!lock_shared(k))
		return -EDEADLK;
	n = read(slots[s].fd, in, sizeof(in));
	size_t cnt = n > 0 ? (size_t)n / sizeof(in[0]) : 0;
	for (size_t i = 0; i < cnt; i++) {
		out[i] = (struct kp_msg){.type = KP_UFFD, .slot = s, .m = in[i]};
		fds[i] = -1;
		if (in[i].event == UFFD_EVENT_PAGEFAULT)
			continue;
		k->shm->events_read++;
		if (in[i].event == UFFD_EVENT_FORK) {
			int cfd = (int)in[i].arg.fork.ufd;
			int cs = slot_new(k, cfd, (int)s, 0);
			if (cs < 0) {
				close(cfd);
				rc = -ENOSPC;
				cnt = i;
				break;
			}
			out[i].b = cs;
			fds[i] = cfd;
		}
		log_add(k, &out[i]);
	}
	pthread_mutex_unlock(&k->shm->lock);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		struct kp_msg e = {.type = KP_GONE, .slot = s};
		slot_close(k, s);
		log_add(k, &e);
		forward(k, &e, -1);
		return 0;
	}
	/* In order: runs without fds as one datagram each, a fork's message alone with its fd. */
	size_t from = 0;
	for (size_t i = 0; i <= cnt && k->live; i++) {
		if (i < cnt && fds[i] < 0)
			continue;
		send_msgs(k, out + from, i - from, -1);
		if (i < cnt)
			send_msgs(k, &out[i], 1, fds[i]);
		from = i + 1;
	}
	return rc;
}

static int read_all(struct keeper *k)
{
	for (uint32_t s = 0; s < k->nslots; s++)
		for (int i = 0; i < KEEP_READS_PER_WAKE && slots[s].fd >= 0; i++) {
			uint32_t before = k->nlog;
			int rc = read_slot(k, s);
			if (rc)
				return rc;
			if (before == k->nlog)
				break; /* faults only or nothing: enough for this one */
		}
	return 0;
}

/* A new worker: the log, with the fds of the slots still open, then KP_LIVE. */
static void replay(struct keeper *k)
{
	struct kp_msg h = {.type = KP_HELLO, .a = (int32_t)k->restarts, .b = k->restarts > 0};

	k->live = true;
	send_msgs(k, &h, 1, -1);
	for (uint32_t i = 0; i < k->nlog; i++) {
		const struct kp_msg *e = &klog[i];
		int fd = -1;
		if (e->type == KP_TASK && e->slot < k->nslots)
			fd = slots[e->slot].fd;
		else if (e->type == KP_UFFD && e->m.event == UFFD_EVENT_FORK &&
			 (uint32_t)e->b < k->nslots)
			fd = slots[e->b].fd;
		send_msgs(k, e, 1, fd);
	}
	struct kp_msg l = {.type = KP_LIVE};
	send_msgs(k, &l, 1, -1);
}

static void said_ready(struct keeper *k)
{
	if (k->ever_ready)
		return;
	k->ever_ready = true;
	if (k->ready_fd >= 0) {
		char c = 0;
		if (write(k->ready_fd, &c, 1) != 1)
			pr_warn("keeper: cannot tell the starting process it is ready");
		close(k->ready_fd);
		k->ready_fd = -1;
	}
	if (k->o->status_fd >= 0) {
		char c = 0;
		if (write(k->o->status_fd, &c, 1) != 1)
			pr_warn("cannot write to status fd %d: %s", k->o->status_fd,
				strerror(errno));
		close(k->o->status_fd);
	}
}

/* A note from the worker: it changes what the next worker is told. */
static int on_note(struct keeper *k, const struct kp_msg *m)
{
	struct kslot *sl = m->slot < k->nslots ? &slots[m->slot] : NULL;
	struct kp_msg e;

	switch (m->type) {
	case WK_READY:
		k->nr_tasks = (size_t)m->a;
		pr_info("keeper: worker pid %d ready%s", (int)k->worker,
			k->restarts ? ": replaying what it missed" : "");
		said_ready(k);
		replay(k);
		return 0;
	case WK_ACCEPT:
	case WK_IDENT:
		if (!sl)
			return 0;
		sl->real = m->c;
		if (sl->pidfd < 0)
			sl->pidfd = (int)syscall(SYS_pidfd_open, m->c, 0);
		if (m->type == WK_ACCEPT && sl->entry < k->nlog && klog[sl->entry].type == KP_TASK) {
			klog[sl->entry].flags |= KPF_ACCEPTED;
			klog[sl->entry].c = m->c;
		} else if (m->type == WK_IDENT) {
			e = (struct kp_msg){.type = KP_IDENT, .slot = m->slot, .a = m->a, .c = m->c};
			log_add(k, &e);
		}
		return 0;
	case WK_DROP:
		if (!sl)
			return 0;
		if (m->a && sl->entry < k->nlog && klog[sl->entry].type == KP_TASK)
			klog[sl->entry].flags |= KPF_REFUSED;
		slot_close(k, m->slot);
		return 0;
	case WK_SYNC: {
		int rc = read_all(k);
		e = (struct kp_msg){.type = KP_SYNCED};
		send_msgs(k, &e, 1, -1);
		return rc;
	}
	case WK_DONE:
		k->done_said = true;
		k->done_code = m->a;
		return 0;
	default:
		pr_warn("keeper: unknown note %u from the worker ignored", m->type);
		return 0;
	}
}

static int on_link(struct keeper *k)
{
	struct kp_msg in[KP_BATCH];

	for (;;) {
		ssize_t n = recv(k->link_fd, in, sizeof(in), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* EOF: the worker is dying; its pidfd says how. */
			if (n == 0) {
				unwatch(k, k->link_fd);
				close(k->link_fd);
				k->link_fd = -1;
				k->live = false;
			}
			return 0;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(in[0]); i++) {
			int rc = on_note(k, &in[i]);
			if (rc)
				return rc;
		}
	}
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
		if (slots[s].fd >= 0)
			close(slots[s].fd);
		if (slots[s].pidfd >= 0)
			close(slots[s].pidfd);
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
		close(sv[0]);
		worker_close_keeper_fds(k);
		*link = (struct keeper_link){.fd = sv[1], .shm = k->shm};
		return KEEPER_WORKER;
	}
	close(sv[1]);
	k->link_fd = sv[0];
	k->worker = pid;
	k->live = false;
	k->done_said = false;
	k->worker_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (k->worker_pidfd < 0 || watch(k, k->worker_pidfd, T_WORKER) ||
	    watch(k, k->link_fd, T_LINK)) {
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
	unwatch(k, k->worker_pidfd);
	close(k->worker_pidfd);
	k->worker_pidfd = -1;
	/* What it said last (WK_DONE) may still be queued: the pidfd can win the race. */
	if (k->link_fd >= 0 && on_link(k) == -ENOSPC)
		return give_up(k, "a fork it cannot hold (too many uffds)");
	if (k->link_fd >= 0) {
		unwatch(k, k->link_fd);
		close(k->link_fd);
		k->link_fd = -1;
	}
	k->live = false;
	if (si.si_code == CLD_EXITED)
		snprintf(how, sizeof(how), "exit code %d", si.si_status);
	else
		snprintf(how, sizeof(how), "signal %d (%s)", si.si_status,
			 strsignal(si.si_status));
	if (k->done_said) {
		pr_info("keeper: worker pid %d done (%s)", (int)k->worker, how);
		return k->done_code;
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
				if (read_slot(k, tag - T_SLOT) == -ENOSPC)
					return give_up(k, "a fork it cannot hold (too many uffds)");
				continue;
			}
			switch (tag) {
			case T_LISTEN:
				on_accept(k);
				break;
			case T_CONN:
				if (on_conn(k))
					return give_up(k, "a task it cannot hold (too many uffds)");
				break;
			case T_LINK:
				if (k->link_fd >= 0 && on_link(k) == -ENOSPC)
					return give_up(k, "a fork it cannot hold (too many uffds)");
				break;
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

	k->shm = mmap(NULL, sizeof(*k->shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (k->shm == MAP_FAILED)
		return -errno;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	int rc = pthread_mutex_init(&k->shm->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	return -rc;
}

static void keeper_close(struct keeper *k)
{
	for (uint32_t s = 0; s < k->nslots; s++) {
		slot_close(k, s);
		if (slots[s].pidfd >= 0)
			close(slots[s].pidfd);
	}
	if (k->conn_fd >= 0)
		drop_conn(k);
	if (k->listen_fd >= 0) {
		close(k->listen_fd);
		unlink(LPS_NAME);
	}
}

int keeper_start(const struct lazyd_opts *o, struct keeper_link *link)
{
	static struct keeper k;
	int rc;

	k = (struct keeper){.o = o, .listen_fd = -1, .conn_fd = -1, .link_fd = -1,
			    .worker_pidfd = -1, .ready_fd = -1};
	k.ep = epoll_create1(EPOLL_CLOEXEC);
	k.sig_fd = daemon_signalfd();
	if (k.ep < 0 || k.sig_fd < 0 || (rc = shm_new(&k))) {
		pr_err("keeper: cannot set up: %s", strerror(errno));
		return 1;
	}
	k.listen_fd = lps_listen();
	if (k.listen_fd < 0) {
		pr_err("cannot listen on %s in %s: %s", LPS_NAME, o->work_dir,
		       strerror(-k.listen_fd));
		return 1;
	}
	pr_info("listening on %s in %s", LPS_NAME, o->work_dir);
	if (o->daemon && daemon_detach_ready("criu-lazyd", o->pidfile, false, &k.ready_fd)) {
		pr_err("cannot daemonize: %s", strerror(errno));
		return 1;
	}
	if (!o->daemon && o->pidfile && daemon_write_pidfile(o->pidfile, getpid()))
		pr_warn("cannot write pidfile %s: %s", o->pidfile, strerror(errno));
	if (watch(&k, k.listen_fd, T_LISTEN) || watch(&k, k.sig_fd, T_SIG)) {
		pr_err("keeper: cannot watch its sockets: %s", strerror(errno));
		return 1;
	}
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

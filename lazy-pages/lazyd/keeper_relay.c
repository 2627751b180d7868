/* The keeper's relay (keeper.h): restore items and uffd messages in, logged and forwarded to
 * the worker; the worker's notes back; the replay for a new worker. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "keeper_int.h"
#include "task.h"
#include "util/clock.h"
#include "util/daemon.h"
#include "util/log.h"

struct kslot keep_slots[KEEP_MAX_SLOTS];
struct kp_msg keep_log[KEEP_LOG_MAX];

int keep_watch(struct keeper *k, int fd, uint32_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};

	return epoll_ctl(k->ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

void keep_unwatch(struct keeper *k, int fd)
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
	keep_log[k->nlog++] = *m;
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
	int rc = keep_watch(k, fd, T_SLOT + (uint32_t)s);
	if (rc)
		return rc;
	keep_slots[s] = (struct kslot){fd, -1, 0, parent, sender, k->nlog};
	k->nslots++;
	return s;
}

void keep_slot_close(struct keeper *k, uint32_t s)
{
	if (s >= k->nslots || keep_slots[s].fd < 0)
		return;
	keep_unwatch(k, keep_slots[s].fd);
	close(keep_slots[s].fd);
	keep_slots[s].fd = -1;
	if (keep_slots[s].pidfd >= 0)
		close(keep_slots[s].pidfd);
	keep_slots[s].pidfd = -1;
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

void keep_drop_conn(struct keeper *k)
{
	keep_unwatch(k, k->conn_fd);
	close(k->conn_fd);
	k->conn_fd = -1;
	lps_rx_free(&k->rx);
}

int keep_on_conn(struct keeper *k)
{
	while (k->conn_fd >= 0) {
		struct lps_msg m = {.uffd = -1};
		size_t left =
		    k->finished || k->received >= k->nr_tasks ? 0 : k->nr_tasks - k->received;
		enum lps_item it = lps_next(k->conn_fd, &k->rx, left, &m);
		struct kp_msg e = {0};

		if (k->finished) {
			if (it == LPS_NONE)
				return 0;
			if (it != LPS_EOF)
				pr_warn(
				    "lazy-pages socket: data after the restore-finished marker: "
				    "hung up, nothing changed");
			keep_drop_conn(k);
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
			keep_drop_conn(k);
			restore_failed(k, it == LPS_ERROR);
			return 0;
		}
	}
	return 0;
}

void keep_on_accept(struct keeper *k)
{
	struct ucred cr;
	int c = lps_accept(k->listen_fd, k->peer > 0, &cr);

	if (c < 0)
		return;
	if (keep_watch(k, c, T_CONN)) {
		pr_err("keeper: cannot watch the restore's connection: %s", strerror(errno));
		close(c);
		return;
	}
	k->conn_fd = c;
	k->peer = cr.pid;
	struct kp_msg e = {.type = KP_CONNECTED, .a = cr.pid};
	log_add(k, &e);
	forward(k, &e, -1);
}

/* The worker's installs stop while we read: its own (the lock), its fill threads' (theirs). */
bool keep_lock(struct keeper *k)
{
	/* A worker that died holding one: nothing it guards is half done. */
	if (!fill_fence_take(&k->shm->lock, &k->shm->lock_owner, FENCE_READER))
		return false;
	if (!fill_fence_hold(&k->fence, FILL_POOL_MAX)) {
		pthread_mutex_unlock(&k->shm->lock);
		return false;
	}
	return true;
}

void keep_unlock(struct keeper *k)
{
	fill_fence_release(&k->fence, FILL_POOL_MAX);
	pthread_mutex_unlock(&k->shm->lock);
}

/*
 * Read slot s's uffd (under the shared lock, counting the events: keeper.h), log the events
 * and forward everything in order. -ENOSPC when a fork cannot be held.
 */
int keep_read_slot(struct keeper *k, uint32_t s)
{
	struct uffd_msg in[KP_BATCH];
	struct kp_msg out[KP_BATCH];
	int fds[KP_BATCH];
	ssize_t n;
	int rc = 0;

	if (keep_slots[s].fd < 0)
		return 0;
	if (!keep_lock(k))
		return -EDEADLK;
	n = read(keep_slots[s].fd, in, sizeof(in));
	int err = n < 0 ? errno : 0; /* the calls below may change errno */
	uint64_t now = mono_ns();
	size_t cnt = n > 0 ? (size_t)n / sizeof(in[0]) : 0;
	for (size_t i = 0; i < cnt; i++) {
		out[i] = (struct kp_msg){.type = KP_UFFD, .slot = s, .t_ns = now, .m = in[i]};
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
	keep_unlock(k);
	/* No fd for a fork's uffd (or no memory): the event stays queued and the uffd is
	 * fine; closing it would zero-fill the task. The caller gives up instead. */
	if (err == EMFILE || err == ENFILE || err == ENOMEM)
		return -EMFILE;
	if (n == 0 || (n < 0 && err != EAGAIN && err != EINTR)) {
		struct kp_msg e = {.type = KP_GONE, .slot = s};
		keep_slot_close(k, s);
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
		for (int i = 0; i < KEEP_READS_PER_WAKE && keep_slots[s].fd >= 0; i++) {
			uint32_t before = k->nlog;
			int rc = keep_read_slot(k, s);
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
		const struct kp_msg *e = &keep_log[i];
		int fd = -1;
		if (e->type == KP_TASK && e->slot < k->nslots)
			fd = keep_slots[e->slot].fd;
		else if (e->type == KP_UFFD && e->m.event == UFFD_EVENT_FORK &&
			 (uint32_t)e->b < k->nslots)
			fd = keep_slots[e->b].fd;
		send_msgs(k, e, 1, fd);
	}
	struct kp_msg l = {.type = KP_LIVE};
	send_msgs(k, &l, 1, -1);
}

/* The socket under its public name: the restore may find it and connect now. */
static void publish(struct keeper *k)
{
	int rc;

	if (k->published)
		return;
	rc = lps_publish(LPS_STARTING);
	if (rc) {
		pr_err("cannot name the socket %s in %s: %s: no restore can connect", LPS_NAME,
		       k->o->work_dir, strerror(-rc));
		return;
	}
	k->published = true;
	pr_info("listening on %s in %s", LPS_NAME, k->o->work_dir);
}

static void said_ready(struct keeper *k)
{
	if (k->ever_ready)
		return;
	k->ever_ready = true;
	if (k->ready_fd >= 0 && daemon_say_ready(k->ready_fd))
		pr_warn("keeper: cannot tell the starting process it is ready");
	k->ready_fd = -1;
	if (k->o->status_fd >= 0 && daemon_say_ready(k->o->status_fd))
		pr_warn("cannot write to status fd %d", k->o->status_fd);
}

/* Kill one slot's process, or the children of its parent that nobody named. */
void keep_kill_slot(const struct keeper *k, uint32_t s)
{
	struct kslot *sl = &keep_slots[s];

	if (sl->pidfd >= 0 && !syscall(SYS_pidfd_send_signal, sl->pidfd, SIGKILL, NULL, 0))
		return;
	if (sl->real > 0) {
		kill(sl->real, SIGKILL);
		return;
	}
	if (sl->parent >= 0 && keep_slots[sl->parent].real > 0) {
		/* the parent's children that no slot names: one of them holds this uffd */
		static pid_t known[KEEP_MAX_SLOTS];
		size_t nk = 0;
		for (uint32_t i = 0; i < k->nslots; i++)
			if (keep_slots[i].real > 0)
				known[nk++] = keep_slots[i].real;
		pid_t c[64];
		size_t n = task_children(keep_slots[sl->parent].real, known, nk, c, 64);
		for (size_t i = 0; i < n; i++) {
			pr_err("keeper: killing pid %d, a child of pid %d that may hold slot %u",
			       (int)c[i], (int)keep_slots[sl->parent].real, s);
			kill(c[i], SIGKILL);
		}
		return;
	}
	if (sl->sender > 0)
		kill(sl->sender, SIGKILL);
}

/* A note from the worker: it changes what the next worker is told. */
static int on_note(struct keeper *k, const struct kp_msg *m)
{
	struct kslot *sl = m->slot < k->nslots ? &keep_slots[m->slot] : NULL;
	struct kp_msg e;

	switch (m->type) {
	case WK_READY:
		k->nr_tasks = (size_t)m->a;
		pr_info("keeper: worker pid %d ready%s", (int)k->worker,
			k->restarts ? ": replaying what it missed" : "");
		/* The worker has it all before the restore may connect (first start). */
		replay(k);
		publish(k);
		said_ready(k);
		return 0;
	case WK_ACCEPT:
	case WK_IDENT:
		if (!sl)
			return 0;
		sl->real = m->c;
		if (sl->pidfd < 0)
			sl->pidfd = (int)syscall(SYS_pidfd_open, m->c, 0);
		if (m->type == WK_ACCEPT && sl->entry < k->nlog &&
		    keep_log[sl->entry].type == KP_TASK) {
			keep_log[sl->entry].flags |= KPF_ACCEPTED;
			keep_log[sl->entry].c = m->c;
		} else if (m->type == WK_IDENT) {
			e = (struct kp_msg){
			    .type = KP_IDENT, .slot = m->slot, .a = m->a, .c = m->c};
			log_add(k, &e);
		}
		return 0;
	case WK_DROP:
		if (!sl)
			return 0;
		if (m->a && sl->entry < k->nlog && keep_log[sl->entry].type == KP_TASK)
			keep_log[sl->entry].flags |= KPF_REFUSED;
		if (m->a == 2) /* a fork nobody can serve: never left to read zeros */
			keep_kill_slot(k, m->slot);
		keep_slot_close(k, m->slot);
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
	case WK_KILLED:
		k->any_killed = true;
		return 0;
	default:
		pr_warn("keeper: unknown note %u from the worker ignored", m->type);
		return 0;
	}
}

int keep_on_link(struct keeper *k)
{
	struct kp_msg in[KP_BATCH];

	for (;;) {
		ssize_t n = recv(k->link_fd, in, sizeof(in), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* EOF: the worker is dying; its pidfd says how. */
			if (n == 0) {
				keep_unwatch(k, k->link_fd);
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

// SPDX-License-Identifier: GPL-2.0
/*
 * lazyfill sessions: binding an open /dev/lazyfill to one task and its
 * userfaultfd, watching for the task's exit, and tearing down.
 *
 * The userfaultfd context is private to fs/userfaultfd.c, so the module
 * never looks inside it. What it uses is its address: the uffd file's
 * private_data is the context, and every VMA registered with that uffd has
 * vma->vm_userfaultfd_ctx.ctx pointing at the same context. A VMA of the
 * task whose context is the given file's private_data proves that the file
 * is the task's userfaultfd (no other kind of file carries a userfaultfd
 * context as its private_data, and a context only ever registers VMAs of
 * its own mm). Every batch checks that for every destination VMA; until
 * some batch has seen such a VMA, all its VMA errors read EPERM, so that a
 * session bound to a foreign task reveals nothing of its address space.
 *
 * Before any of that, the caller must be allowed to ptrace the task
 * (lf_may_ptrace()): holding an open /dev/lazyfill is not enough.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/dcache.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/sched/coredump.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "lf.h"

static DEFINE_XARRAY_ALLOC1(lf_sessions);

/* An anonymous-inode file created by the kernel under this name. */
static bool lf_anon_file_named(struct file *f, const char *name)
{
	return file_inode(f)->i_sb->s_magic == ANON_INODE_FS_MAGIC &&
	       !strcmp(f->f_path.dentry->d_name.name, name);
}

static void lf_exit_work(struct work_struct *work)
{
	struct lf_session *s = container_of(work, struct lf_session, exit_work);

	lf_genl_exit_event(s);
}

/* Whether the thread group behind pid has exited (as pidfd poll sees it). */
static bool lf_task_exited(struct pid *pid)
{
	struct task_struct *t;
	bool gone;

	rcu_read_lock();
	t = pid_task(pid, PIDTYPE_TGID);
	gone = !t || (READ_ONCE(t->exit_state) && thread_group_empty(t));
	rcu_read_unlock();
	return gone;
}

static void lf_note_exit(struct lf_session *s)
{
	if (!test_and_set_bit(LF_S_EXITED, &s->flags))
		queue_work(system_wq, &s->exit_work);
}

/* Runs under the pid's wait queue lock when the kernel notifies pidfds. */
static int lf_exit_wake(struct wait_queue_entry *wq, unsigned int mode,
			int sync, void *key)
{
	struct lf_session *s = container_of(wq, struct lf_session, exit_wait);

	if (lf_task_exited(s->pid))
		lf_note_exit(s);
	return 0;
}

struct lf_session *lf_session_new(void)
{
	struct lf_session *s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);

	if (!s)
		return NULL;
	mutex_init(&s->bind_lock);
	INIT_WORK(&s->exit_work, lf_exit_work);
	init_waitqueue_func_entry(&s->exit_wait, lf_exit_wake);
	return s;
}

void lf_session_release(struct lf_session *s)
{
	if (s->bound) {
		xa_erase(&lf_sessions, s->id);
		remove_wait_queue(&s->pid->wait_pidfd, &s->exit_wait);
		flush_work(&s->exit_work);
		fput(s->uffd);
		mmdrop(s->mm);
		put_pid(s->pid);
		atomic64_dec(&lf_sessions_live);
	}
	mutex_destroy(&s->bind_lock);
	kfree_rcu(s, rcu);
}

/* The struct pid named by bind (a pidfd, or a pid in the caller's namespace). */
static struct pid *lf_bind_pid(const struct lazyfill_bind *b)
{
	struct pid *pid;
	struct file *f;

	if (b->pidfd < 0)
		return b->pid > 0 ? find_get_pid(b->pid) : NULL;
	f = fget(b->pidfd);
	if (!f)
		return ERR_PTR(-EBADF);
	if (!lf_anon_file_named(f, "[pidfd]")) {
		fput(f);
		return ERR_PTR(-EINVAL);
	}
	pid = get_pid(f->private_data);
	fput(f);
	return pid;
}

/*
 * Whether the caller may ptrace task, whose mm is mm: the credential and
 * dumpability rules of the kernel's __ptrace_may_access() for
 * PTRACE_MODE_ATTACH_REALCREDS (what ptrace(2), process_vm_writev() and
 * pidfd_getfd() require). ptrace_may_access() itself is not exported on
 * 6.1, so its rules are repeated here with exported and inline helpers:
 *  - a task of the caller's own thread group is always allowed;
 *  - the caller's real uid and gid must equal the task's real, effective
 *    and saved uids and gids, or the caller must have CAP_SYS_PTRACE in
 *    the task's user namespace;
 *  - then an mm that is not dumpable (setuid programs, PR_SET_DUMPABLE 0,
 *    a credential change) also needs CAP_SYS_PTRACE in the mm's user
 *    namespace.
 * The LSM hook of ptrace_may_access() (security_ptrace_access_check():
 * Yama's ptrace_scope, SELinux, AppArmor) is not exported and is not
 * consulted. Call with task->signal->exec_update_lock held.
 */
static bool lf_may_ptrace(struct task_struct *task, struct mm_struct *mm)
{
	const struct cred *cred = current_cred();
	const struct cred *tcred;
	bool ok;

	if (same_thread_group(task, current))
		return true;
	rcu_read_lock();
	tcred = __task_cred(task);
	ok = (uid_eq(cred->uid, tcred->euid) &&
	      uid_eq(cred->uid, tcred->suid) &&
	      uid_eq(cred->uid, tcred->uid) &&
	      gid_eq(cred->gid, tcred->egid) &&
	      gid_eq(cred->gid, tcred->sgid) &&
	      gid_eq(cred->gid, tcred->gid)) ||
	     ns_capable(tcred->user_ns, CAP_SYS_PTRACE);
	rcu_read_unlock();
	if (!ok)
		return false;
	/*
	 * Read dumpability after the credentials, as the kernel does: pairs
	 * with the write barrier in commit_creds(), so a task that drops its
	 * privileges is seen non-dumpable.
	 */
	smp_rmb();
	return get_dumpable(mm) == SUID_DUMP_USER ||
	       ns_capable(mm->user_ns, CAP_SYS_PTRACE);
}

/*
 * The task's mm, if the caller may ptrace the task (as the kernel's
 * mm_access() does): the check and the mm are taken under the task's
 * exec_update_lock, so an exec (e.g. of a setuid program) cannot come in
 * between. NULL: no mm (a kernel thread, or it has exited).
 */
static struct mm_struct *lf_bind_mm(struct task_struct *task)
{
	struct mm_struct *mm;
	int ret;

	ret = down_read_killable(&task->signal->exec_update_lock);
	if (ret)
		return ERR_PTR(ret);
	mm = get_task_mm(task);
	if (mm && mm != current->mm && !lf_may_ptrace(task, mm)) {
		mmput(mm);
		mm = ERR_PTR(-EPERM);
	}
	up_read(&task->signal->exec_update_lock);
	return mm;
}

/* Whether some VMA of mm is registered with the userfaultfd context ctx. */
bool lf_mm_has_ctx_locked(struct mm_struct *mm, const void *ctx)
{
	struct vm_area_struct *vma;
	unsigned long addr = 0;

	mmap_assert_locked(mm);
	while ((vma = find_vma(mm, addr))) {
		if (vma->vm_userfaultfd_ctx.ctx == ctx)
			return true;
		addr = vma->vm_end;
	}
	return false;
}

static long lf_do_bind(struct lf_session *s, struct lazyfill_bind *b)
{
	struct task_struct *task;
	struct mm_struct *mm;
	struct file *uffd;
	struct pid *pid;
	long ret;
	u32 id;

	uffd = fget(b->uffd);
	if (!uffd)
		return -EBADF;
	ret = -EINVAL;
	if (!lf_anon_file_named(uffd, "[userfaultfd]") || !uffd->private_data)
		goto out_uffd;

	pid = lf_bind_pid(b);
	ret = -ESRCH;
	if (!pid)
		goto out_uffd;
	if (IS_ERR(pid)) {
		ret = PTR_ERR(pid);
		goto out_uffd;
	}
	task = get_pid_task(pid, PIDTYPE_TGID);
	if (!task)
		goto out_pid;
	mm = lf_bind_mm(task);
	put_task_struct(task);
	if (!mm)
		goto out_pid;
	if (IS_ERR(mm)) {
		ret = PTR_ERR(mm);
		goto out_pid;
	}

	/*
	 * Whether the uffd is this task's is proven by the batches (CRIU hands
	 * the uffd over before its restorer registers any VMA with it), or
	 * now, if the caller asks.
	 */
	if (b->flags & LAZYFILL_BIND_VERIFY) {
		bool found;

		ret = -EINTR;
		if (mmap_read_lock_killable(mm)) {
			mmput(mm);
			goto out_pid;
		}
		found = lf_mm_has_ctx_locked(mm, uffd->private_data);
		mmap_read_unlock(mm);
		ret = -EPERM;
		if (!found) {
			mmput(mm);
			goto out_pid;
		}
		set_bit(LF_S_PROVEN, &s->flags);
	}
	mmgrab(mm);
	mmput(mm);

	ret = xa_alloc(&lf_sessions, &id, s, xa_limit_32b, GFP_KERNEL);
	if (ret)
		goto out_mm;
	b->session = id;

	s->id = id;
	s->uffd = uffd;
	s->uffd_ctx = uffd->private_data;
	s->mm = mm;
	s->pid = pid;
	s->pid_nr = pid_nr(pid);
	add_wait_queue(&pid->wait_pidfd, &s->exit_wait);
	atomic64_inc(&lf_sessions_live);
	atomic64_inc(&lf_sessions_total);
	/* Publish the binding: pairs with lf_session_bound(). */
	smp_store_release(&s->bound, true);
	/* It may have exited before the wait entry was queued. */
	if (lf_task_exited(pid))
		lf_note_exit(s);
	return 0;

out_mm:
	mmdrop(mm);
out_pid:
	put_pid(pid);
out_uffd:
	fput(uffd);
	return ret;
}

long lf_session_bind(struct lf_session *s, void __user *arg)
{
	struct lazyfill_bind b;
	long ret;

	if (copy_from_user(&b, arg, sizeof(b)))
		return -EFAULT;
	if (b.version != LAZYFILL_UAPI_VERSION || (b.flags & ~LAZYFILL_BIND_VERIFY) ||
	    b.reserved[0] || b.reserved[1] || b.session)
		return -EINVAL;
	if (b.pidfd < -1 || (b.pidfd == -1 && b.pid <= 0) ||
	    (b.pidfd >= 0 && b.pid))
		return -EINVAL;
	/* Fail early on an unwritable argument: the id is written back. */
	if (put_user(0U, (u32 __user *)((char __user *)arg +
				       offsetof(struct lazyfill_bind, session))))
		return -EFAULT;

	mutex_lock(&s->bind_lock);
	if (s->bound)
		ret = -EBUSY;
	else
		ret = lf_do_bind(s, &b);
	mutex_unlock(&s->bind_lock);
	if (ret)
		return ret;
	if (copy_to_user(arg, &b, sizeof(b)))
		return -EFAULT;	/* bound all the same; the id is in netlink */
	return 0;
}

struct lf_session *lf_session_lookup_rcu(u32 id)
{
	struct lf_session *s = xa_load(&lf_sessions, id);

	return s && lf_session_bound(s) ? s : NULL;
}

/* The bound session with the lowest id >= *id, or NULL; call under RCU. */
struct lf_session *lf_session_next_rcu(unsigned long *id)
{
	struct lf_session *s;

	while ((s = xa_find(&lf_sessions, id, ULONG_MAX, XA_PRESENT))) {
		if (lf_session_bound(s))
			return s;
		(*id)++;
	}
	return NULL;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * lazyfill installs: a validated batch goes into the task through the
 * task's own userfaultfd, then the waiters are woken once per merged range.
 *
 * The kernel's fill path (mcopy_atomic(), mfill_zeropage()) is not exported,
 * and neither are the helpers a module would need to install anonymous
 * pages itself (__pte_alloc, the anon rmap and LRU calls, memcg charging).
 * What is exported is the userfaultfd file's own ioctl, reached through
 * vfs_ioctl(): it validates the VMA again under its locks, installs only
 * into empty entries (EEXIST otherwise), honours write-protect, refuses
 * with EAGAIN while the address space is changing, and with DONTWAKE leaves
 * the waking to us. Its argument must be in user memory (it copies it in),
 * so the module writes each argument block into the caller's scratch area;
 * page data is copied from the caller's own buffers, as with UFFDIO_COPY.
 * This runs in the caller's context, with the caller's rights on that file:
 * nothing it does is beyond what the caller could do with the uffd itself.
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/security.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/userfaultfd.h>

#include "lf.h"

/* Run one userfaultfd ioctl whose argument block is at uarg. */
static long lf_uffd_ioctl(struct lf_session *s, unsigned int cmd, void __user *uarg)
{
	long ret;

	ret = security_file_ioctl(s->uffd, cmd, (unsigned long)uarg);
	if (ret)
		return ret;
	return vfs_ioctl(s->uffd, cmd, (unsigned long)uarg);
}

/*
 * Install [dst + off, dst + len) of one extent with one ioctl. Returns the
 * ioctl's result and sets *copied to the bytes it reports installed (which
 * the caller's threads could have scribbled on: checked by the caller).
 */
static long lf_install_step(struct lf_session *s, const struct lf_batch *b,
			    const struct lazyfill_extent *e, u64 off, s64 *copied)
{
	void __user *scratch = u64_to_user_ptr(b->hdr.scratch);
	bool wp = e->flags & LAZYFILL_EXT_WP;
	long ret;

	*copied = 0;
	if (e->mode == LAZYFILL_MODE_ZERO && !wp) {
		struct uffdio_zeropage z = {
			.range.start = e->dst + off,
			.range.len = e->len - off,
			.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
		};
		struct uffdio_zeropage __user *uz = scratch;

		if (copy_to_user(uz, &z, sizeof(z)))
			return -EFAULT;
		ret = lf_uffd_ioctl(s, UFFDIO_ZEROPAGE, uz);
		if (get_user(*copied, &uz->zeropage))
			return -EFAULT;
	} else {
		struct uffdio_copy c = {
			.dst = e->dst + off,
			.src = e->src + off,
			.len = e->len - off,
			.mode = UFFDIO_COPY_MODE_DONTWAKE | (wp ? UFFDIO_COPY_MODE_WP : 0),
		};
		struct uffdio_copy __user *uc = scratch;

		if (e->mode == LAZYFILL_MODE_ZERO) {
			/* Zero and write-protected: copy from the cleared buffer. */
			c.src = b->hdr.zero_buf;
			c.len = min_t(u64, c.len, b->hdr.zero_len);
		}
		if (copy_to_user(uc, &c, sizeof(c)))
			return -EFAULT;
		ret = lf_uffd_ioctl(s, UFFDIO_COPY, uc);
		if (get_user(*copied, &uc->copy))
			return -EFAULT;
	}
	return ret;
}

/*
 * A run: extents listed one after the other that continue each other (dst,
 * and src for copies, contiguous; same mode and flags). A run goes in as one
 * range, with as few ioctls as the kernel allows, and its bytes are credited
 * to its extents in order. With LAZYFILL_FILL_STOP_EXIST, runs are single
 * extents. Returns the index of the run's last extent.
 */
static u32 lf_run_end(const struct lf_batch *b, u32 i)
{
	if (b->hdr.flags & LAZYFILL_FILL_STOP_EXIST)
		return i;
	for (; i + 1 < b->hdr.count; i++) {
		const struct lazyfill_extent *p = &b->ext[i], *q = &b->ext[i + 1];

		if (q->dst != p->dst + p->len || q->mode != p->mode || q->flags != p->flags)
			break;
		if (p->mode == LAZYFILL_MODE_COPY && q->src != p->src + p->len)
			break;
	}
	return i;
}

/* Credit bytes (installed, or found present) to the run's extents from *k on. */
static void lf_credit(struct lazyfill_extent *ext, u32 n, u32 *k, u64 bytes, bool present)
{
	while (bytes && *k < n) {
		struct lazyfill_extent *e = &ext[*k];
		u64 m = min(bytes, e->len - e->done);

		e->done += m;
		if (present)
			e->present += m;
		bytes -= m;
		if (e->done == e->len) {
			e->status = LAZYFILL_ST_DONE;
			(*k)++;
		}
	}
}

/*
 * Install the run of n extents starting at first. Present pages are
 * skipped (counted in ->present), or end the extent with
 * LAZYFILL_FILL_STOP_EXIST. *next is where the batch goes on: after the
 * run, or after the extent that failed in it. Returns 0 to go on, or the
 * error that stops the batch (EAGAIN, ESRCH, EINTR).
 */
static long lf_install_run(struct lf_session *s, struct lf_batch *b, u32 first, u32 n,
			   u32 *next)
{
	struct lazyfill_extent *ext = &b->ext[first], *e;
	struct lazyfill_extent v = ext[0];
	long ret = 0;
	s64 copied;
	u32 k = 0, i;

	v.done = 0;
	v.len = 0;
	for (i = 0; i < n; i++)
		v.len += ext[i].len;

	while (v.done < v.len) {
		ret = lf_install_step(s, b, &v, v.done, &copied);
		if (copied > 0) {
			if (copied > v.len - v.done || !PAGE_ALIGNED(copied)) {
				ret = -EIO;	/* not what the kernel wrote */
				break;
			}
			v.done += copied;
			lf_credit(ext, n, &k, copied, false);
			b->hdr.bytes += copied;
			lf_count(s, LF_C_BYTES, copied);
			lf_count(s, LF_C_PAGES, copied >> PAGE_SHIFT);
			continue;
		}
		if (!ret) {
			ret = -EIO;	/* success without progress */
			break;
		}
		if (ret != -EEXIST)
			break;
		/* A page is there already: never overwrite it. */
		v.done += PAGE_SIZE;
		lf_credit(ext, n, &k, PAGE_SIZE, true);
		lf_count(s, LF_C_EEXIST, 1);
		ret = 0;
		if (b->hdr.flags & LAZYFILL_FILL_STOP_EXIST) {
			ext[0].status = LAZYFILL_ST_EXIST;	/* n == 1 */
			*next = first + 1;
			return 0;
		}
	}
	if (v.done == v.len) {
		*next = first + n;
		return 0;
	}
	*next = first + k + 1;
	e = &ext[k];
	e->error = ret;
	if (ret == -EAGAIN) {
		e->status = LAZYFILL_ST_AGAIN;
		return ret;
	}
	e->status = LAZYFILL_ST_ERROR;
	/* The task or the caller is going away: stop here. */
	if (ret == -ESRCH || ret == -EINTR || fatal_signal_pending(current))
		return ret;
	return 0;
}

/* Wake [start, end) on the task's uffd. */
static void lf_wake(struct lf_session *s, struct lf_batch *b, u64 start, u64 end)
{
	struct uffdio_range r = { .start = start, .len = end - start };
	void __user *scratch = u64_to_user_ptr(b->hdr.scratch);

	if (copy_to_user(scratch, &r, sizeof(r)))
		return;
	if (!lf_uffd_ioctl(s, UFFDIO_WAKE, scratch)) {
		b->hdr.wakes++;
		lf_count(s, LF_C_WAKES, 1);
	}
}

/* One wake per merged range of settled pages, in address order. */
static void lf_wake_settled(struct lf_session *s, struct lf_batch *b)
{
	u64 start = 0, end = 0;
	u32 i;

	for (i = 0; i < b->hdr.count; i++) {
		const struct lazyfill_extent *e = &b->ext[b->span[i].idx];

		if (!e->done)
			continue;
		if (end && e->dst == end) {
			end += e->done;
			continue;
		}
		if (end)
			lf_wake(s, b, start, end);
		start = e->dst;
		end = e->dst + e->done;
	}
	if (end)
		lf_wake(s, b, start, end);
}

static long lf_install(struct lf_session *s, struct lf_batch *b)
{
	long ret = 0, first_err = 0;
	u32 i, k, next;

	for (i = 0; i < b->hdr.count; i = next) {
		ret = lf_install_run(s, b, i, lf_run_end(b, i) - i + 1, &next);
		for (k = i; k < next; k++) {
			const struct lazyfill_extent *e = &b->ext[k];

			if (e->status == LAZYFILL_ST_DONE || e->status == LAZYFILL_ST_EXIST) {
				b->hdr.settled++;
				lf_count(s, LF_C_EXTENTS, 1);
			} else if (!first_err) {
				first_err = e->error;
				b->hdr.index = k;
			}
		}
		if (ret)
			break;
		cond_resched();
	}
	if (ret == -EAGAIN)
		lf_count(s, LF_C_EAGAIN, 1);
	if (!(b->hdr.flags & LAZYFILL_FILL_NOWAKE))
		lf_wake_settled(s, b);
	return first_err;
}

/* Write back the header's results and the extents' (best effort on error). */
static long lf_write_back(struct lf_batch *b, void __user *arg, bool extents)
{
	struct lazyfill_batch __user *uh = arg;
	long ret = 0;

	if (put_user(b->hdr.index, &uh->index) ||
	    put_user(b->hdr.settled, &uh->settled) ||
	    put_user(b->hdr.wakes, &uh->wakes) ||
	    put_user(b->hdr.bytes, &uh->bytes))
		ret = -EFAULT;
	if (extents && copy_to_user(u64_to_user_ptr(b->hdr.extents), b->ext,
				    array_size(b->hdr.count, sizeof(*b->ext))))
		ret = -EFAULT;
	return ret;
}

long lf_fill(struct lf_session *s, void __user *arg)
{
	struct lf_batch *b;
	long ret, wret;

	if (!lf_session_bound(s))
		return -ENOTCONN;
	b = kmalloc(sizeof(*b), GFP_KERNEL_ACCOUNT);
	if (!b)
		return -ENOMEM;
	lf_count(s, LF_C_BATCHES, 1);

	ret = lf_batch_load(b, arg);
	if (!ret)
		ret = lf_batch_check_vmas(s, b);
	if (!ret)
		ret = lf_batch_prepare_user(b);
	if (ret) {
		/* Refused: nothing was installed. */
		lf_count(s, LF_C_REFUSED, 1);
		b->hdr.settled = 0;
		b->hdr.wakes = 0;
		b->hdr.bytes = 0;
		lf_write_back(b, arg, false);
		goto out;
	}

	ret = lf_install(s, b);
	wret = lf_write_back(b, arg, true);
	if (!ret)
		ret = wret;
out:
	lf_batch_free(b);
	kfree(b);
	return ret;
}

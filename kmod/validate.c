// SPDX-License-Identifier: GPL-2.0
/*
 * lazyfill batch validation: everything about a batch is checked before
 * the first page is installed. A refused batch reports the index of the
 * lowest-numbered extent found bad and installs nothing.
 *
 * Checks, per extent: fields (mode, flags, reserved, alignment, lengths,
 * wrap-around, user address range); then the batch as a whole (count,
 * total size, overlaps); then, under the target mm's mmap lock, that each
 * extent lies inside one VMA that is registered with the session's
 * userfaultfd for missing faults (and for write-protect when asked).
 */
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include <linux/userfaultfd_k.h>

#include "lf.h"

static bool lf_user_range_ok(u64 addr, u64 len)
{
	return addr + len > addr && addr + len <= TASK_SIZE_MAX &&
	       access_ok((void __user *)(unsigned long)addr, len);
}

static long lf_check_extent(const struct lazyfill_extent *e, u64 zero_len)
{
	if (e->reserved)
		return -EINVAL;
	if (e->flags & ~LAZYFILL_EXT_WP)
		return -EINVAL;
	if (!e->len || !PAGE_ALIGNED(e->len) || !PAGE_ALIGNED(e->dst))
		return -EINVAL;
	if (e->len > LAZYFILL_MAX_BYTES)
		return -E2BIG;
	/* The task's addresses: the same bound as validate_range(). */
	if (e->dst + e->len < e->dst || e->dst + e->len > TASK_SIZE)
		return -EINVAL;
	switch (e->mode) {
	case LAZYFILL_MODE_COPY:
		if (!PAGE_ALIGNED(e->src))
			return -EINVAL;
		if (!lf_user_range_ok(e->src, e->len))
			return -EFAULT;
		return 0;
	case LAZYFILL_MODE_ZERO:
		if (e->src)
			return -EINVAL;
		if ((e->flags & LAZYFILL_EXT_WP) && !zero_len)
			return -EINVAL;
		return 0;
	default:
		return -EINVAL;
	}
}

static int lf_span_cmp(const void *a, const void *b)
{
	const struct lf_span *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

static long lf_check_header(const struct lazyfill_batch *h)
{
	int i;

	if (h->version != LAZYFILL_UAPI_VERSION)
		return -EINVAL;
	if (h->flags & ~(LAZYFILL_FILL_STOP_EXIST | LAZYFILL_FILL_NOWAKE))
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(h->reserved); i++)
		if (h->reserved[i])
			return -EINVAL;
	if (!h->count)
		return -EINVAL;
	if (h->count > LAZYFILL_MAX_EXTENTS)
		return -E2BIG;
	if (!h->scratch || !IS_ALIGNED(h->scratch, 8))
		return -EINVAL;
	if (!lf_user_range_ok(h->scratch, LAZYFILL_SCRATCH_SIZE))
		return -EFAULT;
	if (!h->zero_buf != !h->zero_len)
		return -EINVAL;
	if (h->zero_buf) {
		if (!PAGE_ALIGNED(h->zero_buf) || !PAGE_ALIGNED(h->zero_len) ||
		    h->zero_len > LAZYFILL_MAX_BYTES)
			return -EINVAL;
		if (!lf_user_range_ok(h->zero_buf, h->zero_len))
			return -EFAULT;
	}
	if (!h->extents || !IS_ALIGNED(h->extents, 8))
		return -EINVAL;
	return 0;
}

/* The lowest index j < n whose extent overlaps one listed before it, or n. */
static u32 lf_first_overlap(const struct lazyfill_extent *ext, u32 n)
{
	u32 j, k;

	for (j = 1; j < n; j++) {
		for (k = 0; k < j; k++)
			if (ext[k].dst < ext[j].dst + ext[j].len &&
			    ext[j].dst < ext[k].dst + ext[k].len)
				return j;
		cond_resched();
	}
	return n;
}

/*
 * Copy the batch in and check everything that needs no lock. A bad header
 * fails at once (index 0, or LAZYFILL_MAX_EXTENTS for too many extents).
 * Otherwise b->limit is the first extent with bad fields or overlapping an
 * earlier one (b->err says why), or count: the VMA check covers the
 * extents before it, so that the lowest bad index is reported.
 */
long lf_batch_load(struct lf_batch *b, const void __user *arg)
{
	struct lazyfill_batch *h = &b->hdr;
	u64 max_end = 0;
	u32 i, n;
	long ret;

	memset(b, 0, sizeof(*b));
	if (copy_from_user(h, arg, sizeof(*h)))
		return -EFAULT;
	ret = lf_check_header(h);
	if (ret) {
		h->index = ret == -E2BIG ? LAZYFILL_MAX_EXTENTS : 0;
		return ret;
	}

	b->ext = kvmalloc_array(h->count, sizeof(*b->ext), GFP_KERNEL_ACCOUNT);
	b->span = kvmalloc_array(h->count, sizeof(*b->span), GFP_KERNEL_ACCOUNT);
	if (!b->ext || !b->span)
		return -ENOMEM;
	if (copy_from_user(b->ext, u64_to_user_ptr(h->extents),
			   array_size(h->count, sizeof(*b->ext))))
		return -EFAULT;

	b->limit = h->count;
	for (i = 0; i < h->count; i++) {
		const struct lazyfill_extent *e = &b->ext[i];

		ret = lf_check_extent(e, h->zero_len);
		if (!ret && b->bytes + e->len > LAZYFILL_MAX_BYTES)
			ret = -E2BIG;
		if (ret) {
			b->limit = i;
			b->err = ret;
			break;
		}
		b->bytes += e->len;
		if (e->mode == LAZYFILL_MODE_ZERO && (e->flags & LAZYFILL_EXT_WP))
			b->need_zero_buf = true;
		b->span[i].start = e->dst;
		b->span[i].end = e->dst + e->len;
		b->span[i].idx = i;
	}

	/* Any overlap among the good ones? Then find the first, exactly. */
	n = b->limit;
	sort(b->span, n, sizeof(*b->span), lf_span_cmp, NULL);
	for (i = 0; i < n; i++) {
		if (b->span[i].start < max_end)
			break;
		max_end = b->span[i].end;
	}
	if (i < n) {
		b->limit = lf_first_overlap(b->ext, n);
		b->err = -EINVAL;
	}
	return 0;
}

static long lf_check_vma(struct mm_struct *mm, const void *ctx,
			 const struct lazyfill_extent *e)
{
	struct vm_area_struct *vma = find_vma(mm, e->dst);

	if (!vma || e->dst < vma->vm_start || e->dst + e->len > vma->vm_end)
		return -ENOENT;
	if (vma->vm_userfaultfd_ctx.ctx != ctx || !(vma->vm_flags & VM_UFFD_MISSING))
		return -EPERM;
	if ((e->flags & LAZYFILL_EXT_WP) && !(vma->vm_flags & VM_UFFD_WP))
		return -EPERM;
	/* Huge pages come in their own sizes: not supported by this UAPI. */
	if (is_vm_hugetlb_page(vma))
		return -EOPNOTSUPP;
	return 0;
}

/*
 * Every destination (before b->limit) inside one VMA registered with the
 * session's uffd. Returns the batch's verdict: 0, or the error of the
 * lowest bad extent with its index in b->hdr.index. Until the session has
 * seen a VMA of the task registered with its uffd, a VMA error is EPERM
 * whatever it was (nothing to learn about a task that is not the uffd's).
 */
long lf_batch_check_vmas(struct lf_session *s, struct lf_batch *b)
{
	bool proven = test_bit(LF_S_PROVEN, &s->flags);
	long ret = 0;
	u32 i;

	if (!mmget_not_zero(s->mm))
		return -ESRCH;
	if (mmap_read_lock_killable(s->mm)) {
		mmput(s->mm);
		return -EINTR;
	}
	for (i = 0; i < b->limit; i++) {
		ret = lf_check_vma(s->mm, s->uffd_ctx, &b->ext[i]);
		if (ret)
			break;
	}
	if (!proven && (i > 0 || lf_mm_has_ctx_locked(s->mm, s->uffd_ctx))) {
		set_bit(LF_S_PROVEN, &s->flags);
		proven = true;
	}
	mmap_read_unlock(s->mm);
	mmput(s->mm);
	if (i < b->limit) {
		b->hdr.index = i;
		return proven ? ret : -EPERM;
	}
	if (b->err) {
		b->hdr.index = b->limit;
		return b->err;
	}
	return 0;
}

/*
 * Before installing: make sure the results can be written back (the
 * extents array is rewritten with every status "not run"), that the scratch
 * area is writable, and clear the zero source if the batch needs one. A
 * failure here installs nothing.
 */
long lf_batch_prepare_user(struct lf_batch *b)
{
	u32 i;

	for (i = 0; i < b->hdr.count; i++) {
		b->ext[i].status = LAZYFILL_ST_NOTRUN;
		b->ext[i].error = 0;
		b->ext[i].done = 0;
		b->ext[i].present = 0;
	}
	if (copy_to_user(u64_to_user_ptr(b->hdr.extents), b->ext,
			 array_size(b->hdr.count, sizeof(*b->ext))))
		return -EFAULT;
	if (clear_user(u64_to_user_ptr(b->hdr.scratch), LAZYFILL_SCRATCH_SIZE))
		return -EFAULT;
	if (b->need_zero_buf &&
	    clear_user(u64_to_user_ptr(b->hdr.zero_buf), b->hdr.zero_len))
		return -EFAULT;
	return 0;
}

void lf_batch_free(struct lf_batch *b)
{
	kvfree(b->ext);
	kvfree(b->span);
}

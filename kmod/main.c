// SPDX-License-Identifier: GPL-2.0
/*
 * lazyfill: the misc device /dev/lazyfill and the module's life cycle.
 *
 * Each open file is one session (session.c). The file operations hold a
 * reference on this module while a file is open, so the module cannot be
 * unloaded while any session exists.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "lf.h"

struct lf_counters lf_global;
atomic64_t lf_sessions_live = ATOMIC64_INIT(0);
atomic64_t lf_sessions_total = ATOMIC64_INIT(0);

static long lf_info(void __user *arg)
{
	struct lazyfill_info info = {
		.version = LAZYFILL_UAPI_VERSION,
		.max_extents = LAZYFILL_MAX_EXTENTS,
		.max_bytes = LAZYFILL_MAX_BYTES,
		.scratch_size = LAZYFILL_SCRATCH_SIZE,
		.page_size = PAGE_SIZE,
	};

	if (copy_to_user(arg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static int lf_open(struct inode *inode, struct file *file)
{
	struct lf_session *s = lf_session_new();

	if (!s)
		return -ENOMEM;
	file->private_data = s;
	return 0;
}

static int lf_release(struct inode *inode, struct file *file)
{
	lf_session_release(file->private_data);
	return 0;
}

static long lf_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct lf_session *s = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case LAZYFILL_IOC_INFO:
		return lf_info(uarg);
	case LAZYFILL_IOC_BIND:
		return lf_session_bind(s, uarg);
	case LAZYFILL_IOC_FILL:
		return lf_fill(s, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations lf_fops = {
	.owner = THIS_MODULE,
	.open = lf_open,
	.release = lf_release,
	.unlocked_ioctl = lf_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice lf_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "lazyfill",
	.fops = &lf_fops,
	.mode = 0600,
};

static int __init lf_init(void)
{
	int ret;

	ret = lf_genl_init();
	if (ret)
		return ret;
	ret = misc_register(&lf_misc);
	if (ret) {
		lf_genl_exit();
		return ret;
	}
	pr_info("loaded: /dev/lazyfill, uapi version %d\n", LAZYFILL_UAPI_VERSION);
	return 0;
}

static void __exit lf_exit(void)
{
	misc_deregister(&lf_misc);
	lf_genl_exit();
	/* Open files pin the module: nothing can be live here. */
	pr_info("unloaded: %lld sessions bound in all, %lld live\n",
		atomic64_read(&lf_sessions_total), atomic64_read(&lf_sessions_live));
}

module_init(lf_init);
module_exit(lf_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Batched, validated userfaultfd page fills for lazy restore");
MODULE_AUTHOR("criu-lazy project");

/*
 * lazy_restore.so: with it in CRIU's plugin dir, `criu restore --lazy-pages` needs no
 * lazy-pages daemon started by hand. Hooks: init and exit only (CRIU 3.17.1 has them all).
 *
 *   init(RESTORE)  if the restore is lazy: make sure a daemon listens on lazy-pages.socket in
 *                  the work dir (CRIU's cwd now); start criu-lazyd if none does; fail the
 *                  restore with the reason if it cannot start. With `source image-server`
 *                  and an images dir without images, fetch the image's metadata files from
 *                  criu-imgd first (restore by image id).
 *   exit(RESTORE)  on failure, stop the daemon we started; on success leave it to drain
 *                  (unless no restore connected to it: then the restore was not lazy).
 *   init(DUMP)     with `publish`: check its settings (key, id); a bad one fails the dump
 *                  before CRIU touches the tasks.
 *   exit(DUMP)     with `publish`, on success: upload the images dir to criu-imgd.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criu/criu-plugin.h>

#include "lr.h"
#include "util/version.h"

static struct lr_daemon started = {.pid = -1, .pidfd = -1};
static bool forced;	/* started on `lazy always`, not because the restore was seen lazy */
static bool rpc_unseen; /* an RPC restore we did not find lazy, with no daemon listening */
/* `publish`: checked at init(DUMP), done at exit(DUMP, 0) */
static struct {
	bool on;
	struct lr_conf c;
	char imgdir[PATH_MAX];
	char id[NAME_MAX + 1]; /* an images dir's name, checked by lr_publish_check */
} pub;

/*
 * The settings name a program that CRIU runs as root and where images go: only root (or
 * CRIU's uid) may have written them, or any directory above them. A file that is not there
 * is lrconf_load's business. 0, or -errno with E.
 */
static int conf_trusted(const char *path, struct errmsg *e)
{
	int rc = lr_check_trusted(path, "settings file", e);

	return rc == -ENOENT ? 0 : rc;
}

/* Our settings: 0, or -errno (logged). QUIET: a broken file is only a warning (the restore is
 * not ours to fail). */
static int load_conf(struct lr_conf *c, bool quiet)
{
	struct errmsg e;
	bool explicit_path;
	const char *path = lrconf_path(&explicit_path);
	int rc;

	/* The default file may be absent (all defaults); a file named by the env must exist. */
	if ((rc = conf_trusted(path, &e)) || (rc = lrconf_load(c, path, !explicit_path, &e))) {
		if (quiet)
			lr_warn("%s (ignored: not a lazy restore)", e.msg);
		else
			lr_err("%s", e.msg);
		return rc;
	}
	if (quiet)
		return 0;
	if (c->file[0])
		lr_info("settings from %s: source %s, fill %s, verbosity %d", c->file,
			lrconf_source_name(c->source), lrconf_fill_name(c->fill), c->verbosity);
	else
		lr_info("no %s: default settings (local images)", path);
	return 0;
}

static int restore_init(void)
{
	char how[PATH_MAX + 2048], cwd[PATH_MAX], imgdir[PATH_MAX], daemon[PATH_MAX];
	struct lr_conf c;
	struct errmsg e;

	bool rpc = false;
	bool lazy = lr_restore_is_lazy(how, sizeof(how), &rpc);

	if (!lazy) {
		rpc_unseen = rpc && access(LR_SOCKET, F_OK) != 0;
		/* Untouched, unless the settings say `lazy always`; a broken file is not our
		 * business here. */
		if (load_conf(&c, true) || c.lazy != LR_LAZY_ALWAYS) {
			lr_info("not a lazy restore (%s): nothing to do", how);
			return 0;
		}
		snprintf(how, sizeof(how), "`lazy always` in %s:%d", c.file, c.line[LRK_LAZY]);
		forced = true;
		rpc_unseen = false;
	} else if (load_conf(&c, false)) {
		return -1;
	}
	if (c.lazy == LR_LAZY_NEVER) {
		lr_info("`lazy never` in %s:%d: leaving this lazy restore alone", c.file,
			c.line[LRK_LAZY]);
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), ".");
	lr_info("lazy restore (%s); work dir %s", how, cwd);

	int l = lr_socket_listening(&e);
	if (l == 1) {
		lr_info("a daemon already listens on %s/%s: using it", cwd, LR_SOCKET);
		return 0;
	}
	if (l < 0) {
		struct stat st;
		if (lstat(LR_SOCKET, &st) || !S_ISSOCK(st.st_mode)) {
			lr_err("%s", e.msg);
			return -1;
		}
		/* Do not take the name from a daemon that may be serving: let CRIU try it. */
		lr_warn("%s: assuming the daemon there is alive", e.msg);
		return 0;
	}

	/* A failure fails the restore: CRIU's init hook takes -1. */
	if (lr_images_dir(imgdir, sizeof(imgdir), &e) || lr_fetch_if_empty(&c, imgdir, &e) ||
	    lr_daemon_path(&c, daemon, sizeof(daemon), &e) || lr_daemon_supports(&c, daemon, &e)) {
		lr_err("%s", e.msg);
		return -1;
	}
	if (lr_spawn(&c, daemon, imgdir, &started, &e)) {
		lr_err("cannot start the lazy-pages daemon: %s", e.msg);
		return -1;
	}
	return 0;
}

static int dump_init(void)
{
	struct lr_conf c;
	struct errmsg e;
	bool explicit_path;
	const char *path = lrconf_path(&explicit_path);

	/* The dump only needs `publish`: a broken file must not stop checkpoints. */
	if (conf_trusted(path, &e) || lrconf_load(&c, path, !explicit_path, &e)) {
		lr_warn("%s (ignored for the dump: nothing is published)", e.msg);
		return 0;
	}
	if (!c.publish_set)
		return 0;
	if (lr_images_dir(pub.imgdir, sizeof(pub.imgdir), &e) ||
	    lr_publish_check(&c, pub.imgdir, pub.id, sizeof(pub.id), &e)) {
		lr_err("%s", e.msg);
		return -1;
	}
	pub.c = c;
	pub.on = true;
	lr_info("the dump will be published as image %s to criu-imgd %s:%u", pub.id, c.publish.host,
		c.publish.port_num);
	return 0;
}

static int lr_init(int stage)
{
	lr_info("version %s", CRIU_LAZY_VERSION);
	switch (stage) {
	case CR_PLUGIN_STAGE__RESTORE:
		return restore_init();
	case CR_PLUGIN_STAGE__DUMP:
		return dump_init();
	default:
		return 0;
	}
}

static void dump_exit(int ret)
{
	struct errmsg e;

	if (!pub.on)
		return;
	pub.on = false;
	if (ret) {
		lr_warn("the dump failed: nothing published");
		return;
	}
	/* The dump is done and stays done: a failed upload is an error in the log only. */
	if (lr_publish(&pub.c, pub.imgdir, pub.id, &e))
		lr_err("%s (the dump itself succeeded; the images are in %s)", e.msg, pub.imgdir);
}

static void lr_exit(int stage, int ret)
{
	if (stage == CR_PLUGIN_STAGE__DUMP) {
		dump_exit(ret);
		return;
	}
	if (stage == CR_PLUGIN_STAGE__RESTORE && ret && rpc_unseen)
		lr_warn(
		    "the restore failed. If it was meant to be lazy (lazy_pages in the RPC "
		    "request), the plugin could not see that: put lazy-pages into the request's "
		    "config file or set `lazy always` (docs/plugin.md)");
	if (stage != CR_PLUGIN_STAGE__RESTORE || started.pid <= 0)
		return;
	if (ret) {
		lr_stop(&started, "the restore failed");
		return;
	}
	/* A restore that was not lazy after all (`lazy always`, or an RPC request that said
	 * no): nobody will ever connect, so the daemon would wait for ever. */
	int e = lr_daemon_engaged(&started);
	if (e == 0) {
		lr_stop(&started, forced ? "no restore connected to it (`lazy always`, but this "
					   "restore was not lazy)"
					 : "no restore connected to it (the restore was not lazy)");
		return;
	}
	if (e < 0)
		lr_warn("cannot tell whether the restore connected to daemon pid %d: leaving it",
			(int)started.pid);
	lr_info("restore done: daemon pid %d goes on until every page is in, then exits",
		(int)started.pid);
	lr_forget(&started);
}

CR_PLUGIN_REGISTER("lazy_restore", lr_init, lr_exit)

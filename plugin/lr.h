/* lazy_restore.so internals: one small file per job (see docs/plugin.md). */
#ifndef LR_H
#define LR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lrconf.h"
#include "util/err.h"

#define LR_NAME "lazy_restore"
#define LR_SOCKET "lazy-pages.socket" /* CRIU connects to it by this name in its work dir */
#define LR_DAEMON_NAME "criu-lazyd"

/* CRIU's exports. Weak: the plugin links with --no-undefined and is also loaded by tests. */
extern int criu_get_image_dir(void) __attribute__((weak));
extern void print_on_level(unsigned int loglevel, const char *format, ...) __attribute__((weak));
extern char *rpc_cfg_file __attribute__((weak));

/* log.c: into CRIU's log (its level and file), prefixed "lazy_restore: ". */
enum { LR_LOG_MSG = 0, LR_LOG_ERROR = 1, LR_LOG_WARN = 2, LR_LOG_INFO = 3, LR_LOG_DEBUG = 4 };
void lr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define lr_err(...) lr_log(LR_LOG_ERROR, __VA_ARGS__)
#define lr_warn(...) lr_log(LR_LOG_WARN, __VA_ARGS__)
#define lr_info(...) lr_log(LR_LOG_INFO, __VA_ARGS__)
#define lr_debug(...) lr_log(LR_LOG_DEBUG, __VA_ARGS__)

/*
 * The one error convention of lazy-pages/ (util/err.h): 0 (or a count) on success, -errno on
 * failure with the words for CRIU's log in E. The plugin's hooks turn a failure into CRIU's
 * -1.
 */

/* detect.c: is this `criu restore` lazy? HOW says how we know (for the log, not an error);
 * *RPC: CRIU runs as an RPC service (whose request we cannot read). */
bool lr_restore_is_lazy(char *how, size_t n, bool *rpc);

/* sockcheck.c: 1 if a daemon listens on lazy-pages.socket in the cwd, 0 if none does (no
 * file, or a stale one), -errno if we cannot tell (E says so). */
int lr_socket_listening(struct errmsg *e);

struct lr_daemon;
/* Has a restore connected to daemon D (pending or accepted connection, or uffds held)?
 * 1 yes, 0 no, -errno cannot tell. */
int lr_daemon_engaged(const struct lr_daemon *d);

/* daemon.c: the criu-lazyd to run (into OUT) and its command line. 0, or -errno: -ENOENT none
 * found, -EPERM not to be trusted, access()'s errno for a `daemon` that cannot be run. */
int lr_daemon_path(const struct lr_conf *c, char *out, size_t n, struct errmsg *e);
/* Can DAEMON serve this source? 0, or -ENOTSUP with the reason ("not supported yet"). */
int lr_daemon_supports(const struct lr_conf *c, const char *daemon, struct errmsg *e);
/* argv for DAEMON (static storage, NULL-terminated). STATUS_FD: fd number in the child. */
char **lr_daemon_argv(const struct lr_conf *c, const char *daemon, const char *imgdir,
		      const char *log, int status_fd);

/* spawn.c: start it detached and wait until it listens; stop it. */
struct lr_daemon {
	pid_t pid;
	int pidfd;	/* -1 if pidfd_open is not available */
	ino_t sock_ino; /* its lazy-pages.socket */
	dev_t sock_dev;
};
/* 0 once it listens; -errno (-ETIMEDOUT: not in time, -ECHILD: it exited first) with E. */
int lr_spawn(const struct lr_conf *c, const char *daemon, const char *imgdir, struct lr_daemon *d,
	     struct errmsg *e);
void lr_stop(struct lr_daemon *d, const char *reason);
void lr_forget(struct lr_daemon *d);

/* fetch.c: restore by image id. With `source image-server` and no inventory.img or
 * pstree.img in IMGDIR, fetch the image's metadata files from criu-imgd into it. 0 (fetched
 * or nothing to do), or -errno with the reason. */
int lr_fetch_if_empty(const struct lr_conf *c, const char *imgdir, struct errmsg *e);

/* publish.c: `publish`. Check the settings at init(DUMP) (key readable, id valid: into ID);
 * upload the images dir at exit(DUMP, 0). 0, or -errno with the reason. */
int lr_publish_check(const struct lr_conf *c, const char *imgdir, char *id, size_t idlen,
		     struct errmsg *e);
int lr_publish(const struct lr_conf *c, const char *imgdir, const char *id, struct errmsg *e);

/* trust.c: may CRIU (root) read settings from PATH, or run it? It and every directory on
 * the way to it (symlinks followed) must belong to root or to our euid and be writable by
 * their owner only (a sticky directory may be writable by others). 0, or -errno with E
 * ("refusing WHAT PATH: ..."): -ENOENT etc. if it is not there, -EPERM if refused. */
int lr_check_trusted(const char *path, const char *what, struct errmsg *e);

/* paths.c: CRIU's images dir, by a path that leads to it, into OUT. 0, or -errno with E. */
int lr_images_dir(char *out, size_t n, struct errmsg *e);
/* Read a small file into a malloc'ed NUL-terminated buffer; NULL with errno. */
char *lr_read_file(const char *path, size_t max, size_t *len);

#endif

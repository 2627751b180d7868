/*
 * What CRIU (root) reads its settings from or runs must be something only root, or CRIU's
 * own uid, could have written: the file itself, and every directory on the way to it (else
 * whoever may write a directory may put another file in its place). We walk the path one
 * component at a time, following symlinks ourselves, and check every directory we enter and
 * the file we end at:
 *   - owner: root or our effective uid;
 *   - a file: not writable by group or others;
 *   - a directory: not writable by group or others, unless it is sticky (as /tmp: there
 *     others cannot rename or remove what is not theirs).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lr.h"

#define MAX_LINKS 40

struct walk {
	char rest[2 * PATH_MAX]; /* what is left to walk, '/'-separated */
	char at[PATH_MAX];	 /* where we are, for messages */
	int dirfd;
	int links;
};

/* 0 if ST (of NAME) is to be trusted, else -EPERM with why in E. */
static int check_st(const struct stat *st, const char *name, struct errmsg *e)
{
	bool dir = S_ISDIR(st->st_mode);
	uid_t me = geteuid();

	if (st->st_uid != 0 && st->st_uid != me) {
		return errmsg_set(e, EPERM, "%s %s is owned by uid %u, not by root%s",
				  dir ? "directory" : "file", name, (unsigned)st->st_uid,
				  me ? " or by us" : "");
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(dir && (st->st_mode & S_ISVTX))) {
		return errmsg_set(e, EPERM, "%s %s is writable by %s (mode %04o)",
				  dir ? "directory" : "file", name,
				  (st->st_mode & S_IWOTH) ? "others" : "its group",
				  (unsigned)(st->st_mode & 07777));
	}
	return 0;
}

/* Enter directory NAME (relative to w->dirfd, or "/" to start over) after checking it. */
static int enter(struct walk *w, const char *name, struct errmsg *e)
{
	struct stat st;
	int rc;
	int fd = openat(w->dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (!strcmp(name, "/"))
		snprintf(w->at, sizeof(w->at), "/");
	else if (strcmp(w->at, "/"))
		strncat(w->at, "/", sizeof(w->at) - strlen(w->at) - 1);
	if (strcmp(name, "/"))
		strncat(w->at, name, sizeof(w->at) - strlen(w->at) - 1);
	if (fd < 0 || fstat(fd, &st)) {
		rc = errmsg_set(e, errno, "%s: %s", w->at, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if ((rc = check_st(&st, w->at, e))) {
		close(fd);
		return rc;
	}
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = fd;
	return 0;
}

/* NAME in the current directory is a symlink: walk its target instead. */
static int follow(struct walk *w, const char *name, const char *rest, struct errmsg *e)
{
	char target[PATH_MAX];
	ssize_t len = readlinkat(w->dirfd, name, target, sizeof(target) - 1);

	if (len < 0 || ++w->links > MAX_LINKS) {
		int err = len < 0 ? errno : ELOOP;
		return errmsg_set(e, err, "%s/%s: %s", w->at, name,
				  len < 0 ? strerror(err) : "too many links");
	}
	target[len] = '\0';
	char next[sizeof(w->rest)];
	if ((size_t)snprintf(next, sizeof(next), "%s%s%s", target, *rest ? "/" : "", rest) >=
	    sizeof(next)) {
		return errmsg_set(e, ENAMETOOLONG, "%s/%s: path too long", w->at, name);
	}
	snprintf(w->rest, sizeof(w->rest), "%s", next);
	return target[0] == '/' ? enter(w, "/", e) : 0;
}

/* One step: the next component of w->rest. 1 done (the file checks out), 0 go on, -errno
 * no (why in E). */
static int step(struct walk *w, struct errmsg *e)
{
	char *p = w->rest;
	while (*p == '/')
		p++;
	size_t len = strcspn(p, "/");
	char name[NAME_MAX + 1];
	if (len > NAME_MAX) {
		return errmsg_set(e, ENAMETOOLONG, "%s: name too long", w->at);
	}
	memcpy(name, p, len);
	name[len] = '\0';
	char *rest = p + len;
	while (*rest == '/')
		rest++;
	memmove(w->rest, rest, strlen(rest) + 1);
	if (!len || !strcmp(name, "."))
		return *w->rest ? 0 : 1;

	struct stat st;
	if (fstatat(w->dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		return errmsg_set(e, errno, "%s/%s: %s", strcmp(w->at, "/") ? w->at : "", name,
				  strerror(errno));
	}
	if (S_ISLNK(st.st_mode))
		return follow(w, name, w->rest, e);
	if (S_ISDIR(st.st_mode)) {
		int rc = enter(w, name, e);
		return rc ? rc : (*w->rest ? 0 : 1);
	}
	if (*w->rest) {
		return errmsg_set(e, ENOTDIR, "%s/%s: %s", w->at, name, strerror(ENOTDIR));
	}
	char full[PATH_MAX + NAME_MAX + 2];
	snprintf(full, sizeof(full), "%s%s%s", w->at, strcmp(w->at, "/") ? "/" : "", name);
	int rc = check_st(&st, full, e);
	return rc ? rc : 1;
}

int lr_check_trusted(const char *path, const char *what, struct errmsg *e)
{
	struct walk w = {.dirfd = -1, .links = 0};
	struct errmsg detail;
	char cwd[PATH_MAX];
	int rc = 0;

	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		return errmsg_set(e, errno, "%s %s: cannot tell the current directory: %s", what,
				  path, strerror(errno));
	snprintf(w.rest, sizeof(w.rest), "%s%s%s", path[0] == '/' ? "" : cwd,
		 path[0] == '/' ? "" : "/", path);
	w.at[0] = '\0';
	rc = enter(&w, "/", &detail);
	while (!rc)
		rc = step(&w, &detail);
	if (w.dirfd >= 0)
		close(w.dirfd);
	if (rc > 0)
		return 0;
	/* rc: what was not there (-ENOENT etc.), or a refusal (-EPERM) */
	return errmsg_set(e, rc,
			  "refusing %s %s: %s; it and every directory above it must belong to "
			  "root%s and be writable by their owner only",
			  what, path, detail.msg, geteuid() ? " or to CRIU's uid" : "");
}

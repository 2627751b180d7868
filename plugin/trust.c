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
	int err; /* errno of a failed call (ENOENT: nothing there), 0 for a refusal */
};

/* Why ST (of NAME) is not to be trusted, into WHY; 0 if it is. */
static int check_st(const struct stat *st, const char *name, char *why, size_t n)
{
	bool dir = S_ISDIR(st->st_mode);
	uid_t me = geteuid();

	if (st->st_uid != 0 && st->st_uid != me) {
		snprintf(why, n, "%s %s is owned by uid %u, not by root%s",
			 dir ? "directory" : "file", name, (unsigned)st->st_uid,
			 me ? " or by us" : "");
		return -1;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(dir && (st->st_mode & S_ISVTX))) {
		snprintf(why, n, "%s %s is writable by %s (mode %04o)", dir ? "directory" : "file",
			 name, (st->st_mode & S_IWOTH) ? "others" : "its group",
			 (unsigned)(st->st_mode & 07777));
		return -1;
	}
	return 0;
}

/* Enter directory NAME (relative to w->dirfd, or "/" to start over) after checking it. */
static int enter(struct walk *w, const char *name, char *why, size_t n)
{
	struct stat st;
	int fd = openat(w->dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (!strcmp(name, "/"))
		snprintf(w->at, sizeof(w->at), "/");
	else if (strcmp(w->at, "/"))
		strncat(w->at, "/", sizeof(w->at) - strlen(w->at) - 1);
	if (strcmp(name, "/"))
		strncat(w->at, name, sizeof(w->at) - strlen(w->at) - 1);
	if (fd < 0 || fstat(fd, &st)) {
		w->err = errno;
		snprintf(why, n, "%s: %s", w->at, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (check_st(&st, w->at, why, n)) {
		close(fd);
		return -1;
	}
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = fd;
	return 0;
}

/* NAME in the current directory is a symlink: walk its target instead. */
static int follow(struct walk *w, const char *name, const char *rest, char *why, size_t n)
{
	char target[PATH_MAX];
	ssize_t len = readlinkat(w->dirfd, name, target, sizeof(target) - 1);

	if (len < 0 || ++w->links > MAX_LINKS) {
		w->err = len < 0 ? errno : ELOOP;
		snprintf(why, n, "%s/%s: %s", w->at, name,
			 len < 0 ? strerror(errno) : "too many links");
		return -1;
	}
	target[len] = '\0';
	char next[sizeof(w->rest)];
	if ((size_t)snprintf(next, sizeof(next), "%s%s%s", target, *rest ? "/" : "", rest) >=
	    sizeof(next)) {
		snprintf(why, n, "%s/%s: path too long", w->at, name);
		return -1;
	}
	snprintf(w->rest, sizeof(w->rest), "%s", next);
	return target[0] == '/' ? enter(w, "/", why, n) : 0;
}

/* One step: the next component of w->rest. 1 done (the file checks out), 0 go on, -1 no. */
static int step(struct walk *w, char *why, size_t n)
{
	char *p = w->rest;
	while (*p == '/')
		p++;
	size_t len = strcspn(p, "/");
	char name[NAME_MAX + 1];
	if (len > NAME_MAX) {
		snprintf(why, n, "%s: name too long", w->at);
		return -1;
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
		w->err = errno;
		snprintf(why, n, "%s/%s: %s", strcmp(w->at, "/") ? w->at : "", name,
			 strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode))
		return follow(w, name, w->rest, why, n);
	if (S_ISDIR(st.st_mode))
		return enter(w, name, why, n) ? -1 : (*w->rest ? 0 : 1);
	if (*w->rest) {
		w->err = ENOTDIR;
		snprintf(why, n, "%s/%s: %s", w->at, name, strerror(ENOTDIR));
		return -1;
	}
	char full[PATH_MAX + NAME_MAX + 2];
	snprintf(full, sizeof(full), "%s%s%s", w->at, strcmp(w->at, "/") ? "/" : "", name);
	return check_st(&st, full, why, n) ? -1 : 1;
}

int lr_check_trusted(const char *path, const char *what, char *why, size_t n)
{
	struct walk w = {.dirfd = -1, .links = 0, .err = 0};
	char cwd[PATH_MAX], detail[PATH_MAX + 256];
	int rc = 0;

	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd))) {
		snprintf(why, n, "%s %s: cannot tell the current directory: %s", what, path,
			 strerror(errno));
		return -1;
	}
	snprintf(w.rest, sizeof(w.rest), "%s%s%s", path[0] == '/' ? "" : cwd,
		 path[0] == '/' ? "" : "/", path);
	w.at[0] = '\0';
	if (enter(&w, "/", detail, sizeof(detail)))
		rc = -1;
	while (!rc)
		rc = step(&w, detail, sizeof(detail));
	if (w.dirfd >= 0)
		close(w.dirfd);
	if (rc > 0)
		return 0;
	snprintf(why, n,
		 "refusing %s %s: %s; it and every directory above it must belong to root%s and "
		 "be writable by their owner only",
		 what, path, detail, geteuid() ? " or to CRIU's uid" : "");
	errno = w.err ? w.err : EPERM;
	return -1;
}

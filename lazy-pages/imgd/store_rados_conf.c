/*
 * The rados backend's settings, checked before librados sees them: the store's URL, the
 * cephx user's name, and the files that hold its secret (the S3 credentials file's rule:
 * nobody but us or root may read them).
 */
#include "store_rados.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rados_parse_url(const char *url, char *pool, size_t plen, char *prefix, size_t xlen,
		    struct errmsg *e)
{
	if (strncmp(url, "rados://", 8))
		return errmsg_set(e, EINVAL, "--store %s: expected rados://POOL[/PREFIX]", url);
	const char *p = url + 8, *sl = strchr(p, '/');
	size_t n = sl ? (size_t)(sl - p) : strlen(p);
	if (!n || n >= plen || n >= RADOS_POOL_MAX || !store_seg_ok(p, n))
		return errmsg_set(e, EINVAL,
				  "--store %s: a pool name is 1 to %d characters of "
				  "[A-Za-z0-9._-]",
				  url, RADOS_POOL_MAX - 1);
	memcpy(pool, p, n);
	pool[n] = 0;
	return store_parse_prefix(url, sl ? sl + 1 : "", prefix, xlen, e);
}

int rados_id_check(const char *id, struct errmsg *e)
{
	size_t n = strlen(id);

	if (!strncmp(id, "client.", 7))
		return errmsg_set(e, EINVAL, "--ceph-id %s: the name without 'client.' (%s)", id,
				  id + 7);
	if (!n || n >= RADOS_ID_MAX || !store_seg_ok(id, n))
		return errmsg_set(e, EINVAL, "--ceph-id %s: 1 to %d characters of [A-Za-z0-9._-]",
				  id, RADOS_ID_MAX - 1);
	return 0;
}

int rados_secret_file_check(const char *path, const char *what, const char *opt, struct errmsg *e)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return errmsg_set(e, errno, "%s %s (from %s): %s", what, path, opt,
				  strerror(errno));
	int rc = fstat(fd, &st) ? -errno : 0;
	close(fd);
	if (rc)
		return errmsg_set(e, -rc, "%s %s: %s", what, path, strerror(-rc));
	if (!S_ISREG(st.st_mode))
		return errmsg_set(e, EINVAL, "%s %s (from %s): not a regular file", what, path,
				  opt);
	if (st.st_mode & 077)
		return errmsg_set(e, EPERM,
				  "%s %s (from %s) holds a secret and its mode %03o lets group or "
				  "others read it: refused (chmod 600 %s)",
				  what, path, opt, (unsigned)(st.st_mode & 0777), path);
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return errmsg_set(e, EPERM, "%s %s (from %s): owned by uid %u, not by us or root",
				  what, path, opt, (unsigned)st.st_uid);
	return 0;
}

bool rados_first_existing(const char *list, char *out, size_t olen)
{
	const char *p = list;

	for (unsigned i = 0; *p && i < 64; i++) {
		p += strspn(p, ",; \t");
		size_t n = strcspn(p, ",; \t");
		if (n && n < olen) {
			struct stat st;
			memcpy(out, p, n);
			out[n] = 0;
			if (!stat(out, &st))
				return true;
		}
		p += n;
	}
	return false;
}

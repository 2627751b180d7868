/* Restore by image id: see meta_fetch.h. Used by criu-lazyd and lazy_restore.so. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/parse.h"

#include "meta_fetch.h"
#include "wire.h"
#include "wire_auth.h"

static bool has(int dirfd, const char *name)
{
	return faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int meta_fetch_if_empty(const struct meta_fetch_cfg *cfg, const char *dir,
			struct wire_meta_result *res, struct errmsg *e)
{
	struct wire_client wc = {0};
	struct wire_key key;
	int dirfd, rc;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return errmsg_set(e, errno, "cannot open the images dir %s: %s", dir,
				  strerror(errno));
	if (has(dirfd, "inventory.img") || has(dirfd, "pstree.img")) {
		close(dirfd);
		return 0; /* the images are here: CRIU reads them as they are */
	}
	struct errmsg why;
	rc = wire_client_parse(&wc, cfg->server, &why);
	if (rc) {
		errmsg_set(e, rc, "bad image server address '%s' (HOST:PORT[,HOST:PORT...]): %s",
			   cfg->server, why.msg);
		goto out;
	}
	if (cfg->image && !image_id_ok(cfg->image)) {
		rc = errmsg_set(e, EINVAL, "bad image id '%s' (" IMAGE_ID_RULE ")", cfg->image);
		goto out;
	}
	wc.image = cfg->image;
	wc.timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
	wc.tls = cfg->tls;
	rc = wire_tls_cfg_check(cfg->tls, false, e);
	if (rc)
		goto out;
	/* Mutual authentication needs our key: no key, no fetch (wire_client_hello_ok). */
	if (!cfg->key_file) {
		rc = errmsg_set(
		    e, EACCES,
		    "no key: criu-imgd always asks for one, and without one the server cannot "
		    "be told from an impostor (give --auth-key FILE)");
		goto out;
	}
	rc = wire_key_load(cfg->key_file, &key, e);
	if (rc)
		goto out;
	wc.key = &key;
	/* Each server of the list in turn, until one gives every file. */
	for (unsigned i = 0; i < wc.nsrv; i++) {
		struct errmsg why;
		wire_client_use(&wc, i);
		rc = wire_meta_fetch(&wc, dirfd, res, &why);
		if (!rc) {
			snprintf(res->server, sizeof(res->server),
				 strchr(wc.host, ':') ? "[%s]:%s" : "%s:%s", wc.host, wc.port);
			rc = 1;
			break;
		}
		if (wc.nsrv == 1)
			*e = why;
		else
			errmsg_set(e, -rc, "%s%s:%s: %s",
				   i + 1 == wc.nsrv ? "no server of the list gave it; the last, "
						    : "",
				   wc.host, wc.port, why.msg);
		if (rc == -EEXIST) /* the dir's fault, not the server's */
			break;
	}
	explicit_bzero(&key, sizeof(key));
out:
	close(dirfd);
	return rc;
}

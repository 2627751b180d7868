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
			struct wire_meta_result *res, char *err, size_t errlen, char *warn,
			size_t warnlen)
{
	struct wire_client wc = {0};
	struct wire_key key;
	struct errmsg e;
	int dirfd, rc = -1;

	(void)warnlen; /* the key checks are errors now: no warning left */
	warn[0] = 0;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		snprintf(err, errlen, "cannot open the images dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (has(dirfd, "inventory.img") || has(dirfd, "pstree.img")) {
		close(dirfd);
		return 0; /* the images are here: CRIU reads them as they are */
	}
	if (wire_client_parse(&wc, cfg->server)) {
		snprintf(err, errlen, "bad image server address '%s' (HOST:PORT)", cfg->server);
		goto out;
	}
	if (cfg->image && !image_id_ok(cfg->image)) {
		snprintf(err, errlen, "bad image id '%s' (" IMAGE_ID_RULE ")", cfg->image);
		goto out;
	}
	wc.image = cfg->image;
	wc.timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
	wc.tls = cfg->tls;
	if (wire_tls_cfg_check(cfg->tls, false, &e)) {
		snprintf(err, errlen, "%s", e.msg);
		goto out;
	}
	/* Mutual authentication needs our key: no key, no fetch (wire_client_hello_ok). */
	if (!cfg->key_file) {
		snprintf(err, errlen,
			 "no key: criu-imgd always asks for one, and without one the server cannot "
			 "be told from an impostor (give --auth-key FILE)");
		goto out;
	}
	if (wire_key_load(cfg->key_file, &key, &e)) {
		snprintf(err, errlen, "%s", e.msg);
		goto out;
	}
	wc.key = &key;
	rc = wire_meta_fetch(&wc, dirfd, res, err, errlen) ? -1 : 1;
	explicit_bzero(&key, sizeof(key));
out:
	close(dirfd);
	return rc;
}

/*
 * Restore by image id: with `source image-server` and an images dir without the metadata
 * images, fetch them from criu-imgd (wire_meta_fetch) before CRIU reads them. CRIU 3.17
 * calls init(RESTORE) before it reads inventory.img (docs/plugin.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lr.h"
#include "wire_client.h"

static bool has(int dirfd, const char *name)
{
	return faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int lr_fetch_if_empty(const struct lr_conf *c, const char *imgdir, char *why, size_t n)
{
	struct wire_client wc = {0};
	struct wire_key key;
	struct wire_meta_result res;
	char err[1024], hp[300];
	int dirfd, rc;

	if (c->source != LR_SRC_IMAGE_SERVER)
		return 0;
	dirfd = open(imgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		snprintf(why, n, "cannot open the images dir %s: %s", imgdir, strerror(errno));
		return -1;
	}
	if (has(dirfd, "inventory.img") || has(dirfd, "pstree.img")) {
		close(dirfd);
		return 0; /* the images are here: CRIU reads them as they are */
	}
	snprintf(hp, sizeof(hp), strchr(c->server.host, ':') ? "[%s]:%u" : "%s:%u", c->server.host,
		 c->server.port);
	if (wire_client_parse(&wc, hp)) {
		snprintf(why, n, "bad image server address %s", hp);
		close(dirfd);
		return -1;
	}
	wc.image = c->image[0] ? c->image : NULL;
	wc.timeout_ms = (unsigned)c->timeout * 1000u;
	if (c->auth_key[0]) {
		if (wire_key_load(c->auth_key, &key, err, sizeof(err))) {
			snprintf(why, n, "key 'auth-key' (%s:%d): %s", c->file,
				 c->line[LRK_AUTH_KEY], err);
			close(dirfd);
			return -1;
		}
		wc.key = &key;
	}
	lr_info("%s has no images: fetching the metadata of image %s from criu-imgd %s", imgdir,
		wc.image ? wc.image : "default", hp);
	rc = wire_meta_fetch(&wc, dirfd, &res, err, sizeof(err));
	if (c->auth_key[0])
		explicit_bzero(&key, sizeof(key));
	close(dirfd);
	if (rc) {
		snprintf(why, n,
			 "restore by image id: fetching image %s from criu-imgd %s into %s failed: "
			 "%s",
			 wc.image ? wc.image : "default", hp, imgdir, err);
		return -1;
	}
	lr_info("fetched %u metadata files (%llu bytes) of image %s into %s", res.files,
		(unsigned long long)res.bytes, wc.image ? wc.image : "default", imgdir);
	return 0;
}

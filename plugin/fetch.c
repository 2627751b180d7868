/*
 * Restore by image id: with `source image-server` and an images dir without the metadata
 * images, fetch them from criu-imgd (wire_meta_fetch) before CRIU reads them. CRIU 3.17
 * calls init(RESTORE) before it reads inventory.img (docs/plugin.md).
 */
#include <stdio.h>
#include <string.h>

#include "lr.h"
#include "wire/meta_fetch.h"

int lr_fetch_if_empty(const struct lr_conf *c, const char *imgdir, char *why, size_t n)
{
	struct wire_tls_cfg tls;
	struct meta_fetch_cfg cfg = {NULL, c->image[0] ? c->image : NULL,
				     c->auth_key[0] ? c->auth_key : NULL,
				     (unsigned)c->timeout * 1000u, &tls};
	struct wire_meta_result res;
	struct errmsg e;
	char hp[300];
	int rc;

	if (c->source != LR_SRC_IMAGE_SERVER)
		return 0;
	lrconf_tls(c, &tls);
	snprintf(hp, sizeof(hp), strchr(c->server.host, ':') ? "[%s]:%u" : "%s:%u", c->server.host,
		 c->server.port_num);
	cfg.server = hp;
	rc = meta_fetch_if_empty(&cfg, imgdir, &res, &e);
	if (rc < 0) {
		snprintf(why, n,
			 "restore by image id: fetching image %s from criu-imgd %s into %s failed: "
			 "%s",
			 cfg.image ? cfg.image : "default", hp, imgdir, e.msg);
		return -1;
	}
	if (rc > 0)
		lr_info("%s had no images: fetched the %u metadata files (%llu bytes) of image %s "
			"from criu-imgd %s",
			imgdir, res.files, (unsigned long long)res.bytes,
			cfg.image ? cfg.image : "default", hp);
	return 0;
}

/*
 * Restore by image id: with `source image-server` and an images dir without the metadata
 * images, fetch them from criu-imgd (wire_meta_fetch) before CRIU reads them. CRIU 3.17
 * calls init(RESTORE) before it reads inventory.img (docs/plugin.md).
 */
#include <stdio.h>
#include <string.h>

#include "lr.h"
#include "wire/meta_fetch.h"

int lr_fetch_if_empty(const struct lr_conf *c, const char *imgdir, struct errmsg *e)
{
	struct wire_tls_cfg tls;
	struct meta_fetch_cfg cfg = {NULL, c->image[0] ? c->image : NULL,
				     c->auth_key[0] ? c->auth_key : NULL,
				     (unsigned)c->timeout * 1000u, &tls};
	struct wire_meta_result res;
	const char *hp = c->servers;
	int rc;

	if (c->source != LR_SRC_IMAGE_SERVER)
		return 0;
	lrconf_tls(c, &tls);
	cfg.server = hp;
	errmsg_clear(e);
	rc = meta_fetch_if_empty(&cfg, imgdir, &res, e);
	if (rc < 0)
		return errmsg_prefix(
		    e, rc,
		    "restore by image id: fetching image %s from criu-imgd %s into %s failed",
		    cfg.image ? cfg.image : "default", hp, imgdir);
	if (rc > 0)
		lr_info("%s had no images: fetched the %u metadata files (%llu bytes) of image %s "
			"from criu-imgd %s",
			imgdir, res.files, (unsigned long long)res.bytes,
			cfg.image ? cfg.image : "default", res.server);
	return 0;
}

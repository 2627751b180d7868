/*
 * Restore by image id without the plugin: criu-lazyd --image-server with an images dir that
 * holds no images fetches the image's metadata files into it before it listens, so that a
 * `criu restore` (or `runc restore`) started after it finds them. CRIU 4.x reads
 * inventory.img before it loads any plugin, so there the plugin cannot do it
 * (docs/criu-compat.md).
 */
#include "lazyd.h"
#include "util/log.h"
#include "wire/meta_fetch.h"

int lazyd_fetch_meta(const struct lazyd_opts *o)
{
	struct meta_fetch_cfg cfg = {o->image_server, o->image_id, o->auth_key, o->source_timeout,
				     &o->tls};
	struct wire_meta_result res;
	struct errmsg e;
	int rc = meta_fetch_if_empty(&cfg, o->images_dir, &res, &e);

	if (rc < 0)
		pr_err("restore by image id: fetching image %s from %s into %s failed: %s",
		       o->image_id ? o->image_id : "default", o->image_server, o->images_dir,
		       e.msg);
	else if (rc > 0)
		pr_info("%s had no images: fetched the %u metadata files (%lu bytes) of image %s "
			"from %s",
			o->images_dir, res.files, (unsigned long)res.bytes,
			o->image_id ? o->image_id : "default", o->image_server);
	return rc < 0 ? rc : 0;
}

/*
 * Restore by image id without the plugin: criu-lazyd --image-server with an images dir that
 * holds no images fetches the image's metadata files into it before it listens, so that a
 * `criu restore` (or `runc restore`) started after it finds them. CRIU 4.x reads
 * inventory.img before it loads any plugin, so there the plugin cannot do it
 * (docs/criu-compat.md).
 */
#include "lazyd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "img/fingerprint.h"
#include "util/log.h"
#include "wire/meta_fetch.h"

int lazyd_fetch_meta(const struct lazyd_opts *o, uint64_t *fp)
{
	struct meta_fetch_cfg cfg = {o->image_server, o->image_id, o->auth_key, o->source_timeout,
				     &o->tls};
	const char *id = o->image_id ? o->image_id : "default";
	struct wire_meta_result res;
	struct errmsg e;
	int rc = meta_fetch_if_empty(&cfg, o->images_dir, &res, &e);

	if (rc < 0) {
		pr_err("restore by image id: fetching image %s from %s into %s failed: %s", id,
		       o->image_server, o->images_dir, e.msg);
		return rc;
	}
	if (rc > 0)
		pr_info("%s had no images: fetched the %u metadata files (%lu bytes) of image %s "
			"from %s",
			o->images_dir, res.files, (unsigned long)res.bytes, id, res.server);
	/* Every server must serve the dump these files are of. */
	int dirfd = open(o->images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = dirfd < 0 ? -errno : img_fingerprint(dirfd, fp, &e);
	if (dirfd >= 0)
		close(dirfd);
	if (rc == -ENOENT) { /* no images here: the first server's are this restore's */
		*fp = 0;
		return 0;
	}
	if (rc) {
		/* Then the first server that answers sets it (as without an images dir). */
		pr_warn("%s: cannot take the images' fingerprint (%s): the image servers are not "
			"checked against these images",
			o->images_dir, dirfd < 0 ? strerror(-rc) : e.msg);
		*fp = 0;
		return 0;
	}
	pr_debug("%s: image fingerprint %016llx", o->images_dir, (unsigned long long)*fp);
	return 0;
}

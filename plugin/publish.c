/*
 * `publish HOST:PORT`: after a successful dump, upload the images dir to criu-imgd
 * (--root DIR --accept-uploads --upload-key FILE) as image `image ID` (default: the images
 * dir's name), so that a destination can restore it by id. The key is `publish-key`, the
 * publishers' key: `auth-key` (the readers' key) cannot publish, and criu-imgd must prove
 * it holds the publishers' key before anything is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lr.h"
#include "wire/wire_client.h"

int lr_publish_check(const struct lr_conf *c, const char *imgdir, char *id, size_t idlen,
		     struct errmsg *e)
{
	struct wire_key key;
	const char *base = strrchr(imgdir, '/');
	int rc;

	if (!c->publish_key[0])
		return errmsg_set(
		    e, EINVAL,
		    "%s:%d: key 'publish': needs 'publish-key FILE' (the key of "
		    "criu-imgd's --upload-key; auth-key is the readers' key and cannot "
		    "publish)",
		    c->file, c->line[LRK_PUBLISH]);
	errmsg_clear(e);
	if ((rc = wire_key_load(c->publish_key, &key, e)))
		return errmsg_prefix(e, rc, "%s:%d: key 'publish-key'", c->file,
				     c->line[LRK_PUBLISH_KEY]);
	explicit_bzero(&key, sizeof(key));
	snprintf(id, idlen, "%s", c->image[0] ? c->image : base ? base + 1 : imgdir);
	if (!wire_id_ok(id) || id[0] == '.')
		return errmsg_set(e, EINVAL,
				  "%s:%d: key 'publish': the image id '%s' (the images dir's name; "
				  "set `image ID`) is not [A-Za-z0-9._-]{1,128}",
				  c->file, c->line[LRK_PUBLISH], id);
	return 0;
}

int lr_publish(const struct lr_conf *c, const char *imgdir, const char *id, struct errmsg *e)
{
	struct wire_client wc = {0};
	struct wire_key key;
	struct wire_meta_result res;
	char hp[300];
	int rc;

	snprintf(hp, sizeof(hp), strchr(c->publish.host, ':') ? "[%s]:%u" : "%s:%u",
		 c->publish.host, c->publish.port_num);
	if ((rc = wire_client_parse(&wc, hp, NULL)))
		return errmsg_set(e, rc, "bad publish address %s", hp);
	errmsg_clear(e);
	if ((rc = wire_key_load(c->publish_key, &key, e)))
		return errmsg_prefix(e, rc, "key 'publish-key'");
	struct wire_tls_cfg tls;
	lrconf_tls(c, &tls);
	wc.tls = &tls;
	wc.key = &key;
	wc.image = id;
	wc.timeout_ms = (unsigned)c->timeout * 1000u;
	int dirfd = open(imgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		rc = errmsg_set(e, errno, "cannot open the images dir %s: %s", imgdir,
				strerror(errno));
		explicit_bzero(&key, sizeof(key));
		return rc;
	}
	lr_info("publishing %s as image %s to criu-imgd %s", imgdir, id, hp);
	errmsg_clear(e);
	rc = wire_upload(&wc, dirfd, &res, e);
	explicit_bzero(&key, sizeof(key));
	close(dirfd);
	if (rc)
		return errmsg_prefix(e, rc, "publishing %s as image %s to criu-imgd %s failed",
				     imgdir, id, hp);
	lr_info("published image %s to criu-imgd %s: %u files, %llu bytes", id, hp, res.files,
		(unsigned long long)res.bytes);
	return 0;
}

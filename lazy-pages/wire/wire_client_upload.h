/* The lazy-wire client's upload: publish an images dir to criu-imgd --accept-uploads. */
#ifndef LAZY_WIRE_CLIENT_UPLOAD_H
#define LAZY_WIRE_CLIENT_UPLOAD_H

#include <stddef.h>

#include "wire_client_conn.h"
#include "wire_client_meta.h"

/*
 * Publish: upload every regular file of dirfd with an upload name (wire_upload_name_ok: not
 * *.log) as image c->image to criu-imgd --accept-uploads (which requires the key). 0 once the
 * server has renamed the complete image into place, or -errno with the text in e (the server
 * then keeps nothing).
 */
int wire_upload(const struct wire_client *c, int dirfd, struct wire_meta_result *res,
		struct errmsg *e);

#endif

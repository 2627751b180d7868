/*
 * The handlers protocol.c calls, one file per job. Each gets the session and the frame's
 * (checked) message, answers through session_reply or session_fail, and returns 0, or -errno
 * when it refused (the peer was told why: session_fail). protocol.c moves the session's
 * state on their success.
 */
#ifndef IMGD_HANDLERS_H
#define IMGD_HANDLERS_H

#include <stdbool.h>

#include "session.h"

/* handshake.c: HELLO, AUTH (sets s->role), OPEN (sets s->img and s->cls). */
int handshake_hello(struct imgd_session *s, const LwHello *h);
int handshake_auth(struct imgd_session *s, const LwAuth *a);
int handshake_open(struct imgd_session *s, const LwOpen *o);

/* pages.c: a GET is checked and queued; its pages go out a PAGES frame at a time. */
int pages_queue_get(struct imgd_session *s, const LwGet *g);
/* Queue the next PAGES frame (urgent GETs first): 1 queued (or the GET failed: an ERROR
 * queued), 0 nothing to do, -errno the session failed. */
int pages_next_frame(struct imgd_session *s, bool urgent_only);
bool pages_has_urgent(const struct imgd_session *s);

/* index.c: INDEX_GET starts the stream of INDEX_PART frames. */
int index_start(struct imgd_session *s);
/* Queue the next INDEX_PART frame: 1 queued, 0 the index is sent, -errno failed. */
int index_next_frame(struct imgd_session *s);

/* meta.c: the metadata files of META connections. */
int meta_on_list(struct imgd_session *s, const LwMetaList *l);
int meta_on_get(struct imgd_session *s, const LwMetaGet *g);

/* upload.c: UPLOAD (sets s->cls), UPLOAD_FILE, UPLOAD_END (the image is published). */
int upload_begin(struct imgd_session *s, const LwUpload *u);
int upload_file(struct imgd_session *s, const LwUploadFile *f);
int upload_end(struct imgd_session *s, const LwUploadEnd *e);
/* An unfinished upload: its temp dir goes. */
void upload_abort(struct imgd_session *s);
/*
 * At start with --accept-uploads: take the root's upload lock (one criu-imgd takes uploads
 * into a root) and remove the temp dirs that crashed uploads left. 0, or -errno (logged).
 */
int upload_init(struct imgd *d);

#endif

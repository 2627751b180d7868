/*
 * protocol.c: the lazy-wire state machine of one session. Frames in: checked against the
 * session's state, class and role, then given to their handler (handlers.h). Frames out:
 * the pump turns queued work (GETs, the index) into frames as the socket takes them.
 * server.c turns these for every session; nothing here waits.
 */
#ifndef IMGD_PROTOCOL_H
#define IMGD_PROTOCOL_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

/* Read what the socket has and act on complete frames. */
void protocol_on_readable(struct imgd_session *s);
/* Flush; when nothing is being sent, queue the next frame of work (only urgent GETs with
 * urgent_only). true if more work is pending. */
bool protocol_pump(struct imgd_session *s, bool urgent_only);
/* Open, with an urgent GET queued. */
bool protocol_has_urgent(const struct imgd_session *s);
/* A frame, or bytes TLS decrypted already, wait to be taken (no poll event will say so). */
bool protocol_rx_pending(const struct imgd_session *s);
/* The socket must say when it takes more: a frame is being sent, or the TLS handshake
 * waits to write. */
bool protocol_wants_write(const struct imgd_session *s);
/* The TLS handshake waits for the socket to take more (then it goes on when writable). */
bool protocol_tls_wants_write(const struct imgd_session *s);
/* End a session that took too long to open, sits idle, or does not read what we send. */
void protocol_check_timeouts(struct imgd_session *s, uint64_t now_ms);
/* An ending session: send what is left; true once it can be closed. */
bool protocol_closable(struct imgd_session *s);
/* Log the session's end (why; NULL: what ended it), drop its upload, free it. */
void protocol_close(struct imgd_session *s, const char *why);

#endif

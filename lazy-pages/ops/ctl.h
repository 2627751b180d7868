/*
 * The daemons' status socket: a Unix socket that only root and the daemon's own user may
 * use (mode 0600, and each peer's SO_PEERCRED uid checked), in the work dir of the restore
 * it serves. One request a connection: the client writes a word ("status"), the daemon
 * answers one frame (a 4-byte little-endian length, then a packed protobuf message) and
 * closes. The daemon answers from its event loop; a client that does not send its word
 * within CTL_REQUEST_MS is dropped, so no client can hold the daemon up for longer.
 */
#ifndef LP_OPS_CTL_H
#define LP_OPS_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define CTL_REQUEST_MS 200
#define CTL_MAX_REPLY (4u << 20)
#define CTL_MAX_WORD 32

/* Bind and listen at path (a stale socket there is replaced, anything else refused):
 * the listening fd (non-blocking, close-on-exec), or -errno with e. */
int ctl_listen(const char *path, struct errmsg *e);

/*
 * Accept one client on the listening fd and answer it: reply(data, word) gives the bytes to
 * send (malloc'ed, or NULL with *len 0 for an unknown word: the client gets an empty frame).
 * 0 when a client was answered or refused (logged), -EAGAIN when none was waiting.
 */
typedef uint8_t *(*ctl_reply_fn)(void *data, const char *word, size_t *len);
int ctl_serve_one(int listen_fd, ctl_reply_fn reply, void *data);

/* The client: send word to the socket at path, receive the reply (malloc'ed into *out). */
int ctl_query(const char *path, const char *word, uint8_t **out, size_t *len, struct errmsg *e);

#endif

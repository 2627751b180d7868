/*
 * linger.c: a session's connection closed while its client may still be sending (an upload
 * refused in the middle of a file, requests after an error). A close() with unread bytes
 * makes the kernel answer with a reset, and the client's kernel may then drop the ERROR
 * frame it had not read yet: the client would never learn why. So the server shuts its
 * sending side and reads and discards what still comes, until the client closes, for at
 * most LINGER_MS and LINGER_BYTES; at most LINGER_MAX connections at once (more are closed
 * at once).
 */
#ifndef IMGD_LINGER_H
#define IMGD_LINGER_H

#include "util/ev.h"

#define LINGER_MS 2000
#define LINGER_BYTES (16u << 20)
#define LINGER_MAX 64

struct lingering_conn;

struct linger_set {
	struct ev_loop *loop;
	struct lingering_conn *head;
	unsigned n;
};

/* fd (a connected socket, out of the loop) is the set's now: lingered on, then closed. */
void linger_close(struct linger_set *ls, int fd);
/* Close every connection still lingering (the server stops). */
void linger_free(struct linger_set *ls);

#endif

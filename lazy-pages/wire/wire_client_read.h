/*
 * The lazy-wire client's read path: OPEN an image, download its index, ask for pages (GET;
 * the PAGES replies are the caller's: source/source_imgd*.c checks and places them).
 */
#ifndef LAZY_WIRE_CLIENT_READ_H
#define LAZY_WIRE_CLIENT_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "img/images.h"
#include "wire_client_conn.h"

struct wire_open_info {
	uint32_t nr_tasks;
	uint64_t lazy_pages, zero_pages;
	bool dump_checksums;
	LwCodec codec;	      /* PAGES on this connection may be compressed with it (HELLO_REPLY) */
	uint64_t fingerprint; /* the image's (img/fingerprint.h); 0: the server sent none */
	uint64_t sums_fp;     /* its dump-time checksums' digest; 0: none */
};

/*
 * Connect, TLS (c->tls: on, or auto and the server is not on loopback), HELLO, AUTH (when
 * asked; a server asking without our having a key fails), OPEN. Returns the connected fd
 * (close it with wire_sock_close), or a negative errno with the text in e:
 * -EACCES/-ENOENT/-EPROTO are not worth a retry, others are.
 */
int wire_client_open(const struct wire_client *c, LwClass cls, uint8_t *scratch,
		     struct wire_open_info *info, struct errmsg *e);

/* INDEX_GET, then build set from the INDEX_PARTs (pages_fd -1; set freed on failure). 0, or
 * -errno with the text in e (-EPROTO: the server broke the protocol). */
int wire_client_index(int fd, uint8_t *scratch, unsigned timeout_ms, uint32_t nr_tasks,
		      struct img_set *set, struct errmsg *e);

/* Send a GET of n pages of pid at off (the key in the server's pages file), request id req,
 * class prio (URGENT or BULK), before the deadline (ms, mono_ms). 0 or -errno. */
int wire_client_get(int fd, uint8_t *scratch, uint32_t req, LwClass prio, int32_t pid, uint64_t off,
		    uint32_t n, uint64_t deadline);
/* The same for nr (1..WIRE_MAX_RANGES) ranges of pid as one GET: off[i], n[i] pages. */
int wire_client_getv(int fd, uint8_t *scratch, uint32_t req, LwClass prio, int32_t pid,
		     const uint64_t *off, const uint32_t *n, unsigned nr, uint64_t deadline);

#endif

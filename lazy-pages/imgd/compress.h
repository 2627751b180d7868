/*
 * Compression of PAGES payloads (compress.c, docs/protocol.md "Compression"): what HELLO
 * agreed for a session, and in auto mode whether compressing pays on its connection now.
 */
#ifndef IMGD_COMPRESS_H
#define IMGD_COMPRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "imgd.h"

/* One measurement window of auto mode. */
struct imgd_zwin {
	uint64_t t0, blocked0, bytes0; /* mono_ns, conn_io_blocked_ns, work.bytes at its start */
	uint64_t raw, out, cost_ns;    /* payload bytes compressed, what they became, the time */
};

struct imgd_zs {
	LwCodec codec;	     /* agreed in HELLO_REPLY; NONE: never compressed */
	bool always;	     /* the client asked for on: every chunk that shrinks */
	bool on;	     /* auto: compressing now */
	uint64_t next_probe; /* auto, off: mono_ns before which it is not tried again */
	uint64_t backoff;    /* ns until the next probe after a failed one */
	double link_rate;    /* bytes/ns delivered raw while the socket was the limit */
	double last_rate;    /* of the last such window */
	unsigned bound;	     /* windows in a row the socket was the limit (not compressing) */
	/* A probe without that: the client keeps its own queue short (criu-lazyd's window
	 * follows the delay of its reads), so the socket never fills; compressing for two
	 * windows shows whether the client then takes more page data (blind_rate: of the
	 * window before). */
	bool blind;
	unsigned blind_windows;
	double blind_rate;
	struct imgd_zwin w;
	/* what it did (the session log) */
	uint64_t frames, raw, out, probes;
};

struct imgd;
struct imgd_session;

/* HELLO: the codec HELLO_REPLY names, and the session's mode (ZSTD when the client offers it
 * and criu-imgd runs with --compress on, else NONE). */
LwCodec compress_hello(struct imgd_session *s, const LwHello *h);
/* The next PAGES frame is to be compressed: the session agreed to it and its mode (in auto,
 * decided here, once a frame) says so now. */
bool compress_active(struct imgd_session *s);
/*
 * A PAGES frame's payload, plen bytes of session_pay(s), when compress_active(): compressed
 * in place if it shrinks (m->codec and m->raw_len then say so). The payload bytes to send.
 */
size_t compress_pages(struct imgd_session *s, LwPages *m, size_t plen);
/* What the session compressed, for its log line: "" when nothing. */
void compress_describe(const struct imgd_session *s, char *buf, size_t len);
/* The server's context and buffer go. */
void compress_free(struct imgd *d);

#endif

/*
 * One client session of criu-imgd: what it holds, and the small interface its handlers use
 * (session.c). A handler reads the session (its image, its role, its own state below) and the
 * server's shared state (s->d), and answers through one call, session_reply, or fails through
 * session_fail; it never touches the connection (s->io: session.c and protocol.c only).
 */
#ifndef IMGD_SESSION_H
#define IMGD_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "compress.h"
#include "conn_io.h"
#include "imgd.h"
#include "wire/wire_auth.h"
#include "wire/wire_tls.h"
#include "wire/wire_zstd.h"

/* What a connection is for, from its OPEN (its class) or its UPLOAD: what it may ask next. */
enum conn_class {
	CONN_NONE,   /* not open yet */
	CONN_URGENT, /* GET and INDEX_GET, for faults */
	CONN_BULK,   /* GET and INDEX_GET, for prefetch */
	CONN_META,   /* META_LIST and META_GET, one at a time */
	CONN_UPLOAD, /* UPLOAD_FILE and UPLOAD_END (with the publishers' key) */
	CONN_NCLASSES
};

/* How a connection's admission ended, each counted once (criu_imgd_connections_total). */
enum conn_result {
	CR_ACCEPTED,	     /* authenticated */
	CR_REFUSED_BUSY,     /* over --max-clients */
	CR_REFUSED_ERROR,    /* out of resources when it came */
	CR_AUTH_FAILED,	     /* wrong key or role, TLS handshake failed, plain client on TLS */
	CR_HANDSHAKE_FAILED, /* closed before authenticating for another reason */
	CR_NRESULTS
};

/* What a session did; the server keeps the sums of the closed ones, by class. */
struct imgd_work {
	uint64_t requests;   /* request frames after the handshake */
	uint64_t pages;	     /* pages served, zero ones included */
	uint64_t frames;     /* PAGES frames they went in */
	uint64_t zero_pages; /* of them: marked, not sent */
	uint64_t bytes;	     /* frame bytes queued (session_reply) */
};

/* Service times of GETs, arrival to last PAGES frame queued: counts per bucket alone. */
#define IMGD_HIST_N 11
extern const double imgd_hist_le[IMGD_HIST_N]; /* upper bounds, seconds */
struct imgd_hist {
	uint64_t count[IMGD_HIST_N + 1]; /* the last: above the last bound */
	double sum;
};
void imgd_hist_add(struct imgd_hist *h, double seconds);

#define IMGD_NERR 16 /* ERROR codes counted one by one (LW_E_* below it; others at 0) */

/* What every session of the server shares. */
struct imgd {
	const struct imgd_opts *o;
	struct imgd_catalog cat;
	struct wire_key read_key;   /* --auth-key */
	struct wire_key upload_key; /* --upload-key (with --accept-uploads) */
	bool tls_on;		    /* every connection speaks TLS from its first byte */
	struct wire_tls_server tls;
	uint64_t up_inflight; /* bytes reserved by the uploads in progress */
	unsigned nconns;      /* sessions open */
	uint64_t next_id;
	/* The counters (status.c reads them; each is counted in one place). */
	uint64_t connections;	       /* every connection accepted by the kernel (server.c) */
	uint64_t results[CR_NRESULTS]; /* how their admission ended */
	uint64_t auth_failures;	       /* every refusal for authentication (session_auth_failed) */
	uint64_t checksum_failures;    /* pages that did not match their dump-time sum (pages.c) */
	uint64_t errors[IMGD_NERR];    /* ERROR frames sent, by code (session_fail, refuse) */
	struct imgd_work closed[CONN_NCLASSES]; /* of the sessions closed (session_free) */
	struct imgd_hist get_time[2];		/* urgent, bulk GETs (pages.c) */
	uint64_t frame_ns_page; /* loop time a bulk page costs, smoothed (pages.c) */
	struct wire_zstd zstd;	/* compress.c's context and buffer (one thread) */
	uint8_t *zbuf;
};

/* Where a session is in the protocol (before it, the TLS handshake: conn_io). */
enum conn_state { CS_HELLO, CS_AUTH, CS_OPEN, CS_READY, CS_CLOSING };

/* A GET (pages.c): its ranges, checked when it came, served a chunk at a time. */
struct imgd_range {
	int32_t pid;
	uint64_t off;
	uint32_t nr_pages;
};

struct imgd_req {
	uint32_t id;
	bool urgent;
	uint8_t nr, cur; /* ranges, and the one being served */
	uint32_t done;	 /* pages of ranges[cur] already sent */
	uint64_t t_in;	 /* mono_ns: when it came */
	struct imgd_range r[WIRE_MAX_RANGES];
};

/* An upload (upload.c): into tmp below the root, one file at a time. */
struct imgd_upload {
	int dirfd, fd;
	char id[IMAGE_ID_MAX + 1], tmp[IMAGE_ID_MAX + 48];
	char name[WIRE_MAX_META_NAME + 1];
	uint64_t size, off, bytes;
	uint64_t reserved; /* declared sizes of its files so far: counted in the quotas */
	uint32_t files;
};

struct imgd_session {
	struct imgd *d;
	struct conn_io io; /* session.c and protocol.c only */
	uint64_t id;	   /* session number, for logs */
	char peer[64];
	bool local; /* the peer is on loopback: a frame's zero pages go as data (pages.c) */
	enum conn_state state;
	enum conn_class cls;
	LwRole role; /* authenticated for (CS_OPEN and on): what it may send */
	uint8_t challenge[WIRE_NONCE];
	struct imgd_image *img;	  /* opened (a reference) */
	uint64_t t_start, t_last; /* mono_ms: connected, last request */
	/* queued GETs (pages.c), FIFO within a class */
	struct imgd_req *q;
	unsigned nq;
	/* the index being streamed (index.c): next task and extent */
	bool ix_active;
	size_t ix_task, ix_ext;
	struct imgd_upload up;
	struct imgd_zs z; /* PAGES compression (compress.c) */
	/* what it did (the session log, status.c), and whether its admission was counted */
	struct imgd_work work;
	bool counted, auth_failed;
	char close_why[WIRE_MAX_TEXT];
	/* server.c's: its list of sessions, and what the event loop waits for */
	struct imgd_session *next;
	unsigned ev_mask;
};

/* A session on accepted socket fd (then the session's): 0, or -errno (fd stays the
 * caller's). */
int session_new(struct imgd *d, int fd, const char *peer, struct imgd_session **out);
/* The connection, the image reference and the memory go (no log: protocol_close). */
void session_free(struct imgd_session *s);
/* Its socket, for the event loop. */
int session_fd(const struct imgd_session *s);
/* The connection's fd is the caller's now (session_free will not close it); -1 if none. */
int session_take_fd(struct imgd_session *s);

/* What AUTH needs of the connection: the challenge the proofs cover (inside TLS bound to the
 * TLS session: conn_io_bind), 0 or -EPROTO; the role a PSK session authenticated, or -1;
 * "no TLS" or the TLS parameters, for the log. */
int session_auth_challenge(const struct imgd_session *s, uint8_t out[WIRE_NONCE]);
int session_tls_role(const struct imgd_session *s);
void session_describe_tls(const struct imgd_session *s, char *buf, size_t len);

/* A refusal for authentication: counted (and the connection's admission failed). */
void session_auth_failed(struct imgd_session *s);

/* "urgent", "bulk", "meta", "upload" or "none", for logs. */
const char *conn_class_name(enum conn_class cls);

/* The payload of the next reply: CONN_IO_PAY_CAP bytes, free while no reply is queued. */
uint8_t *session_pay(struct imgd_session *s);
/*
 * THE way a session answers: one frame, message m and the first plen bytes of
 * session_pay(s) as its payload. Only when nothing else is being sent (protocol.c sees to
 * it). The frame's bytes, or -errno (nothing queued).
 */
int session_reply(struct imgd_session *s, unsigned type, const ProtobufCMessage *m, size_t plen);
/* The payload may come from a file instead (a plain connection: the kernel sends it from the
 * page cache, no copy here). */
bool session_sends_files(const struct imgd_session *s);
/* session_reply with the payload taken from nseg ranges of file fd, open until it is sent. */
int session_reply_file(struct imgd_session *s, unsigned type, const ProtobufCMessage *m, int fd,
		       const struct conn_io_seg *seg, unsigned nseg);
/*
 * Refuse: an ERROR (code LW_ERR__LW_E_*) after the frame being sent, logged. For request
 * req, or (req < 0) for the session, which then ends. Returns -EPROTO, for handlers to pass
 * on: `return session_fail(s, ...)`.
 */
__attribute__((format(printf, 4, 5))) int session_fail(struct imgd_session *s, int code,
						       int64_t req, const char *fmt, ...);
/* End the session once what is queued is sent: why (printf) goes to the log. */
__attribute__((format(printf, 2, 3))) void session_end(struct imgd_session *s, const char *fmt,
						       ...);

#endif

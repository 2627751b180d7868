/*
 * Inside the criu-imgd page source (source_imgd*.c; the rest of the tree uses source.h's
 * page_source_imgd). Its connections, each opened when first needed:
 *   urgent (source_imgd_urgent.c): read(), a blocking read for callers that need the data
 *           now; one request at a time, nothing queued ahead of it on its socket or in the
 *           server; it also loads the index;
 *   fast   (source_imgd_pipe.c): faultv()/collect(), the faults' reads, pipelined, class
 *           URGENT (criu-imgd serves them before any stream read);
 *   bulk   (source_imgd_pipe.c): prefetch()/collect(), a pipelined window of background reads.
 * source_imgd.c sets the source up, loads the index, connects, checks pages and closes.
 */
#ifndef LAZY_SOURCE_IMGD_H
#define LAZY_SOURCE_IMGD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "source.h"
#include "wire/wire_client.h"
#include "wire/wire_zstd.h"

#define IMGD_MAX_WINDOW 64
#define IMGD_FAST_WINDOW 16 /* fault reads in flight */

/* A prefetch read in flight on the bulk path: ranges r[0..nr), received up to range cur's
 * page got (a reconnect asks again for what is left from there). */
struct pf_req {
	uint64_t tag;
	const struct img_task *t;
	uint64_t off[SRC_MAX_RANGES];
	uint32_t n[SRC_MAX_RANGES];
	uint8_t nr, cur;
	uint32_t got;
	uint32_t req;
	unsigned fails;
};

/* A pipelined connection's frame being received, a piece at a time. */
struct pipe_rx {
	size_t have; /* bytes of header + message + payload received */
	struct wire_hdr h;
	bool hdr_ok;
};

/* A connection being opened in a thread of its own (source_imgd_dial.c). */
struct imgd_src;
struct imgd_dial {
	struct imgd_src *s;
	struct wire_client cl; /* s->cl aimed at server srv: the thread's own copy */
	unsigned srv;
	LwClass cls;
	uint8_t *scratch;
	pthread_t th;
	bool running;	  /* a thread was started and not joined yet */
	atomic_bool done; /* it has finished: fd, info and e are set */
	int fd;		  /* the connection, or -errno */
	struct wire_open_info info;
	struct errmsg e;
};

/* A pipelined connection (source_imgd_pipe.c): a window of reads in flight, answered in
 * order; reconnected as state, its reads asked again from where they stopped. */
struct imgd_pipe {
	const char *name; /* "stream", "fault": for the log */
	LwClass cls;
	enum src_path path;
	int fd;
	uint8_t *scratch, *tx, *pay; /* receives a frame's header and message; sends; payload */
	struct pipe_rx rx;
	struct pf_req pf[IMGD_MAX_WINDOW];
	unsigned npf, window;
	unsigned fails;	   /* failed attempts in a row */
	unsigned stalls;   /* stalls in a row (no frame placed since) */
	int dead;	   /* the retries are spent: its reads fail with this -errno */
	uint64_t retry_at; /* mono_ms: the next attempt, while down */
	uint64_t rx_at;	   /* mono_ms of the last progress while reads are out */
	struct imgd_dial dial;
	unsigned srv; /* the server it is connected to */
	LwCodec codec;
	bool local; /* that server is on this host's loopback (the last connection) */
};

struct imgd_src {
	struct wire_client cl;
	struct wire_tls_cfg tls;
	struct wire_key key;
	struct wire_open_info info;
	unsigned retries, timeout_ms, window;
	int fault_dscp;
	bool dial_inline;
	int ufd;
	uint8_t *uscratch, *upay; /* the urgent connection's frame and payload */
	uint8_t *chunk;		  /* a collected chunk, zero pages expanded */
	uint64_t zero_sum;
	uint32_t next_req;
	struct imgd_pipe bulk, fast;
	/* The urgent connection reconnecting, as state (never a sleep): failures in a row and
	 * when it may be tried again (mono_ms). */
	unsigned ufails;
	uint64_t uretry_at;
	struct imgd_dial udial; /* a reconnect under way */
	/* Failover (several servers in s->cl): the one new connections go to, the one each
	 * connection is on, the one that served last; the image's fingerprint every server
	 * must have (0 until known). */
	unsigned cur, usrv, last_srv;
	bool served, warned_nofp;
	bool dump_sums_seen; /* a server checked pages against dump-time sums: all must */
	uint64_t fp, sums_fp, failovers;
	uint64_t down_ns; /* when a server failed, until pages come from another (mono_ns) */
	uint64_t reconnects, bad_sums;
	uint64_t bytes_rx, pages_rx[SRC_NPATHS], data_pages_rx[SRC_NPATHS];
	/* Compression (source_imgd_zstd.c): what the urgent connection's HELLO_REPLY chose */
	LwCodec ucodec;
	struct wire_zstd zstd;
	uint8_t *zraw;			      /* a compressed payload, decompressed */
	uint64_t zframes, zbytes, zraw_bytes; /* compressed frames, their payload and raw bytes */
	/* Chunk buffers the caller holds (source_imgd_hold.c), and spare ones */
	uint8_t *held[SRC_HOLD_MAX];
	uint8_t *spare[SRC_HOLD_MAX];
	unsigned nspare;
};

/* ---- source_imgd.c ---- */

/* The attempt-th backoff before a reconnect: 50 ms doubled each time, at most 2 s. Only
 * imgd_load_index (before the event loop runs) sleeps; the paths that run in the loop keep
 * it as a time to try again (imgd_wait_ms). */
unsigned imgd_backoff_ms(unsigned attempt);
/* After fails failures in a row of one connection: the wait before the next attempt (none
 * while servers of this round are left to try), and whether the retries are spent
 * (--source-retries rounds over every server). */
unsigned imgd_retry_ms(const struct imgd_src *s, unsigned fails);
bool imgd_spent(const struct imgd_src *s, unsigned fails);
/* How long reads in flight may see no byte before their connection counts as stalled:
 * 3 x --source-timeout (a store-backed criu-imgd may wait 30 s and more for a cold chunk
 * of its store while a healthy stream has nothing to send). */
unsigned imgd_stall_limit(const struct imgd_src *s);
/* A connection to server srv failed or was lost (rc): new connections go to the next one. */
void imgd_server_down(struct imgd_src *s, unsigned srv, int rc);
/* ---- source_imgd_dial.c ---- */

/* Connect and OPEN a connection of class cls to server s->cur (*srv), blocking (before the
 * event loop runs): the fd, or -errno (logged). A server that serves another image (another
 * fingerprint or size) is -ENOENT. */
int imgd_connect(struct imgd_src *s, LwClass cls, uint8_t *scratch, unsigned *srv, LwCodec *codec);
/* The same in a thread (a no-op while one runs): 0, or -errno when no thread can start
 * (-EPERM: the source dials inline, imgd_source_cfg.dial_inline). */
int imgd_dial_start(struct imgd_src *s, struct imgd_dial *dl, LwClass cls, uint8_t *scratch);
/* The dial's outcome, once: the fd (its server dl->srv, its codec dl->info.codec),
 * -EINPROGRESS while it runs, -ECHILD when none was started, or its -errno (logged, as
 * imgd_connect's). */
int imgd_dial_poll(struct imgd_src *s, struct imgd_dial *dl);
/* At close: wait for a dial under way and drop what it opened. */
void imgd_dial_wait(struct imgd_dial *dl);
/* Errors no retry can mend. */
bool imgd_fatal(int rc);
/* The same for opening a connection: with several servers, none (another may serve). */
bool imgd_dial_fatal(const struct imgd_src *s, int rc);
/* Check one PAGES frame's pages against their checksums: 0 or -EBADMSG (logged, counted).
 * The data goes into out (zero pages written as zeros); with data non-NULL, a frame without
 * zero pages is checked in pay and *data points at pay instead (one copy less), else at out. */
int imgd_unpack_pages(struct imgd_src *s, const LwPages *p, const uint8_t *pay, uint8_t *out,
		      enum src_path path, unsigned srv, const uint8_t **data);

/* Milliseconds until the first connection that is down may be tried again (0: now). */
unsigned imgd_wait_ms(struct page_source *ps);

/* ---- source_imgd_zstd.c ---- */

/*
 * The raw data pages of PAGES frame p whose payload is len bytes at pay, on a connection that
 * negotiated codec: pay itself when not compressed, else decompressed into s->zraw. NULL: a
 * compressed frame where none was negotiated, or one that does not decompress to exactly
 * p->raw_len bytes (logged, counted as a bad checksum: the caller fails the frame as one).
 */
const uint8_t *imgd_inflate(struct imgd_src *s, const LwPages *p, const uint8_t *pay, size_t len,
			    LwCodec codec);

/* ---- source_imgd_hold.c ---- */

int imgd_hold(struct page_source *ps, const struct src_chunk *ch);
void imgd_release(struct page_source *ps, int token);
/* At close: every buffer held or spare freed. */
void imgd_hold_free(struct imgd_src *s);

/* ---- source_imgd_urgent.c ---- */

int imgd_read(struct page_source *ps, const struct img_task *t, uint64_t off, void *buf,
	      size_t len);
void imgd_drop_urgent(struct imgd_src *s);

/* ---- source_imgd_pipe.c ---- */

int imgd_pipe_init(struct imgd_pipe *p, const char *name, LwClass cls, enum src_path path,
		   unsigned window);
void imgd_pipe_free(struct imgd_pipe *p);
void imgd_drop_pipe(struct imgd_pipe *p);
int imgd_prefetchv(struct page_source *ps, const struct img_task *t, const struct src_range *r,
		   unsigned nr, uint64_t tag);
int imgd_prefetch(struct page_source *ps, const struct img_task *t, uint64_t off, size_t len,
		  uint64_t tag);
int imgd_faultv(struct page_source *ps, const struct img_task *t, const struct src_range *r,
		unsigned nr, uint64_t tag);
int imgd_poll_fd(struct page_source *ps);
int imgd_fault_fd(struct page_source *ps);
int imgd_collect(struct page_source *ps, struct src_chunk *out);
unsigned imgd_stall_ms(struct page_source *ps);
unsigned imgd_inflight(struct page_source *ps);
void imgd_warm(struct page_source *ps);
bool imgd_loopback(struct page_source *ps);

#endif

/*
 * Where page data comes from: local pages images, criu-imgd, or CRIU's page server.
 *
 * Every source names a task's pages by the same key, the `src` of its lazy extents
 * (img/images.h): a source maps it to its own address space (the offset in pages-N.img for
 * the local images and for criu-imgd, the dump-time address for CRIU's page server, whose
 * protocol names pages by address). The key does not change when the task mremaps.
 */
#ifndef LAZY_SOURCE_H
#define LAZY_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "img/images.h"
#include "util/err.h"

struct page_source;

/* A completed background read: n pages of task t's data from key src. */
struct src_chunk {
	uint64_t tag; /* as given to prefetch() */
	const struct img_task *t;
	uint64_t src;
	const void *data; /* n pages, valid until the next collect() */
	uint32_t n;
	bool last; /* the read with this tag is complete (or failed): no more chunks for it */
};

enum src_path { SRC_FAULTS, SRC_STREAM, SRC_NPATHS };

/* A range of a task's data (prefetchv). */
struct src_range {
	uint64_t src, len;
};
#define SRC_MAX_RANGES 32
#define SRC_HOLD_MAX 32 /* chunks held at once (the hold op) */

/* A connected source's state (the state op). */
struct src_state {
	bool reconnecting;   /* a connection is down and its backoff runs */
	bool lost;	     /* the connection is gone for good (reads fail) */
	unsigned retry_ms;   /* reconnecting: until the next attempt */
	unsigned failures;   /* reconnecting: attempts failed in a row */
	uint64_t reconnects; /* connections re-established */
	uint64_t bad_sums;   /* pages that failed their checksum (and were read again) */
	/* What came over the network (criu-imgd): frame bytes, and pages by path (faults on
	 * their own connection, the background stream), of which with data (zero pages are
	 * marked, never sent). */
	uint64_t bytes_rx;
	uint64_t pages_rx[SRC_NPATHS], data_pages_rx[SRC_NPATHS];
	/* criu-imgd with several servers: connections opened to another server than the one
	 * before, and the one in use (HOST:PORT; "" for other sources) */
	uint64_t failovers;
	char server[272];
};

struct page_source_ops {
	const char *name;
	/*
	 * Read len bytes of task t's page data starting at key src.
	 * 0, or a negative errno: -EAGAIN is worth a retry (with a wait_ms op: not before
	 * wait_ms() has passed), anything else is not.
	 */
	int (*read)(struct page_source *s, const struct img_task *t, uint64_t src, void *buf,
		    size_t len);
	void (*close)(struct page_source *s);

	/* ---- optional (NULL when a source has none) ---- */

	/*
	 * Load the task list and lazy page index from the source into set (no
	 * images dir needed: dirfd and pages_fd are -1). 0, or -errno with the text in e.
	 */
	int (*load_index)(struct page_source *s, struct img_set *set, struct errmsg *e);
	/*
	 * Pipelined background reads on a path of their own, so that read()
	 * (the fault path) never waits behind them. prefetch() queues a read of
	 * len bytes at src (0, or -EBUSY when the window is full: collect first);
	 * poll_fd() is readable when collect() may have chunks (or is -1 when
	 * collect() has more without waiting: bytes already decrypted by TLS, that
	 * no poll on the socket would show); collect() returns
	 * 1 with a chunk, 0 when none is ready, or a negative errno for a read
	 * that failed for good (chunk->tag and ->t say which).
	 */
	int (*prefetch)(struct page_source *s, const struct img_task *t, uint64_t src, size_t len,
			uint64_t tag);
	/* prefetch() of nr (1..SRC_MAX_RANGES) ranges of t's data as one read: its chunks come
	 * range after range, the last chunk of the last one with last set (scattered pages, a
	 * working set: one request instead of nr). NULL: a source without it. */
	int (*prefetchv)(struct page_source *s, const struct img_task *t, const struct src_range *r,
			 unsigned nr, uint64_t tag);
	int (*poll_fd)(struct page_source *s);
	int (*collect)(struct page_source *s, struct src_chunk *chunk);
	/* Prefetch reads queued and not yet collected (tests and tools that drive a source). */
	unsigned (*inflight)(struct page_source *s);
	/*
	 * len bytes of t's data at src, readable in place until close() (local
	 * images: the page cache, mapped, which saves one copy per page), or
	 * NULL when the source cannot. Reading the pointer may fault; the
	 * kernel's UFFDIO_COPY then fails with EFAULT, and read() tells why.
	 */
	const void *(*map)(struct page_source *s, const struct img_task *t, uint64_t src,
			   size_t len);
	/*
	 * A source that reconnects never sleeps: while a connection is down and its backoff
	 * runs, read() returns -EAGAIN and collect() 0 at once. wait_ms() says how long
	 * until the next attempt (0: it may be tried now); the caller's event loop waits.
	 */
	unsigned (*wait_ms)(struct page_source *s);
	/*
	 * Optional: a read for a fault, queued as prefetchv() is but on a path of its own
	 * that overtakes the stream (criu-imgd: a pipelined connection of class URGENT); its
	 * chunks come out of collect() (with its tag), before any of the stream's. The caller
	 * never waits for it: the fault does. -EBUSY when the path's window is full.
	 */
	int (*faultv)(struct page_source *s, const struct img_task *t, const struct src_range *r,
		      unsigned nr, uint64_t tag);
	/* With faultv: the fd to watch for its data, as poll_fd() for the stream's. */
	int (*fault_fd)(struct page_source *s);
	/*
	 * Optional: with background reads in flight on a live connection, ms until they count
	 * as stalled (no byte for the source's timeout: a hung server, or its host gone without
	 * a reset); collect() then drops that connection and asks again elsewhere. 0: nothing
	 * to watch.
	 */
	unsigned (*stall_ms)(struct page_source *s);
	/*
	 * Optional: keep the data of chunk ch (the last collect()'s) valid past the next
	 * collect(), until release(token) (fill threads install it while the loop receives
	 * on). A token >= 0, or -EBUSY when SRC_HOLD_MAX are held, or -ENOMEM. A read that
	 * failed over or was asked again never touches held data.
	 */
	int (*hold)(struct page_source *s, const struct src_chunk *ch);
	void (*release)(struct page_source *s, int token);
	/* Optional: whether the stream's connection is to this host's loopback (no link, no
	 * queue at a bottleneck that the faults' answers share). */
	bool (*loopback)(struct page_source *s);
	/* Optional: open the connections the reads will use now, each in a thread of its own
	 * (called once the index is in and the caller will fork no more: the restore runs
	 * meanwhile), so that the first reads wait for no handshake. Not for a source that
	 * dials inline. */
	void (*warm)(struct page_source *s);
	/* What an operator sees of a source with connections (criu-lazyd status, metrics). */
	void (*state)(struct page_source *s, struct src_state *st);
};

struct page_source {
	const struct page_source_ops *ops;
	void *priv;
};

int page_source_local(struct page_source *s);

/* criu-imgd over lazy-wire (source_imgd.c). */
struct wire_tls_cfg;
struct imgd_source_cfg {
	const char *server; /* HOST:PORT, [V6]:PORT, or several of them, comma separated: servers
			     * of the same image, the first one first (wire_client_parse) */
	const char *image;  /* id; NULL: "default" */
	const char *key_file;
	unsigned retries;		/* reconnects and checksum re-reads before a read fails */
	unsigned timeout_ms;		/* per request */
	unsigned window;		/* prefetch reads in flight */
	const struct wire_tls_cfg *tls; /* NULL: TLS auto, PSK (wire_tls.h) */
	int compress; /* PAGES compression: 0 off, LW_COMPRESS__LW_COMPRESS_AUTO or _ON */
	/* Reconnect in the caller's thread, blocking (a tool without an event loop, the fuzz
	 * harness: one thread, reproducible); otherwise a thread opens the connection. */
	bool dial_inline;
	uint64_t fingerprint; /* the image's (img/fingerprint.h) every server must have; 0: the
			       * first server's */
	int fault_dscp; /* the fault connection's DSCP (wire_qos.h); WIRE_DSCP_OFF: unmarked */
};
/* 0, or -errno with the text in e (-EINVAL: a bad option, -ENOMEM; wire_key_load's errno). It
 * does not connect yet: load_index() or the first read() does. */
int page_source_imgd(struct page_source *s, const struct imgd_source_cfg *cfg, struct errmsg *e);

/* CRIU's page server (source_ps.c): criu dump --lazy-pages, criu page-server --lazy-pages. */
struct ps_source_cfg {
	const char *address;
	int port;
	unsigned retries;
	unsigned timeout_ms;
};
/* Connects (retrying a refused connect): 0, or -errno with the text in e. */
int page_source_ps(struct page_source *s, const struct ps_source_cfg *cfg, struct errmsg *e);

#endif

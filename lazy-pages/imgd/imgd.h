/*
 * criu-imgd: serves CRIU page images over lazy-wire to any number of restores.
 *
 * Inside imgd/, calls go one way, down this list (a file never calls a file above it):
 *
 *   main.c         the command line (opts.c), the keys, --make-sums, daemon; runs the server
 *   server.c       the listener, the signals, the event loop (util/ev.h), the service pass
 *   protocol.c     one session's lazy-wire state machine: each frame to its handler, the pump
 *   handshake.c, pages.c, index.c, meta.c, upload.c
 *                  the handlers: HELLO/AUTH/OPEN, GET, INDEX_GET, META_*, UPLOAD_*; they see
 *                  a session (session.h) and answer through session_reply / session_fail
 *   session.c      a session's life and its one way out (session_reply, session_fail)
 *   conn_io.c      a connection's bytes: socket or TLS, frames in, one frame out, stalls
 *   store_cli.c    `criu-imgd store put/get` (main.c calls it)
 *   catalog.c, sums.c, sumcache.c
 *                  the images served, their dump-time checksums, and the checksums and zero
 *                  pages learnt while serving them (kept per image, shared by its sessions)
 *   store.c, store_xfer.c
 *                  the object store under --store (docs/store.md): an image of the store
 *                  served, a dir into the store and back; below them store_manifest.c (the
 *                  manifest), store_cache.c (the chunk LRU), store_be.c (the backends:
 *                  store_s3.c libcurl and SigV4, store_rados.c librados)
 *   status.c, metrics.c
 *                  for server.c: the status snapshot (proto/imgd-status.proto) that the status
 *                  socket sends, and the Prometheus text made from it (they read the counters
 *                  of session.h, never change them)
 *   status_cli.c   `criu-imgd status`: the client of the status socket (main.c calls it)
 *
 * Headers: imgd.h (this: limits, options) <- catalog.h, sums.h, conn_io.h <- session.h <-
 * handlers.h, protocol.h <- server.h <- status.h, metrics.h.
 */
#ifndef IMGD_IMGD_H
#define IMGD_IMGD_H

#include <stdbool.h>
#include <stdint.h>

#include "wire/wire.h"
#include "wire/wire_tls.h"

#define IMGD_CHUNK_PAGES 32u		    /* pages per urgent or compressed PAGES frame */
#define IMGD_FRAME_MIN 16u		    /* a bulk frame: at least (pages.c) ... */
#define IMGD_FRAME_MAX WIRE_MAX_REPLY_PAGES /* ... at most, so pay buffers hold this */
#define IMGD_HEAD_CAP (WIRE_HDR_SIZE + WIRE_MAX_MSG) /* header and message of one frame */
#define IMGD_HANDSHAKE_S 10			     /* to get from connect to OPEN */
#define IMGD_IDLE_S 600				     /* an open session with no request at all */
#define IMGD_STALL_S 60				     /* a client that does not read what we send */
#define IMGD_UPLOAD_MAX (16ull << 30)		     /* --upload-max default */
#define IMGD_UPLOAD_TOTAL (64ull << 30)		     /* --upload-total default */
#define IMGD_STORE_CACHE (256ull << 20)		     /* --store-cache default */
#define IMGD_SUMCACHE_BUDGET ((size_t)256 << 20)     /* all images' sum caches: 128 GiB of pages */

struct imgd_opts {
	const char *dir;	    /* -D: one image */
	const char *root;	    /* --root: every image dir below */
	const char *store;	    /* --store s3://... or rados://...: every image of the store */
	const char *s3_endpoint;    /* --s3-endpoint URL */
	const char *s3_region;	    /* --s3-region (default us-east-1) */
	const char *s3_credentials; /* --s3-credentials FILE (0600) */
	const char *ceph_conf;	    /* --ceph-conf FILE (rados://) */
	const char *ceph_id;	    /* --ceph-id NAME (rados://; default admin) */
	uint64_t store_cache;	    /* --store-cache: bytes of hot chunks kept in memory */
	const char *address;
	int port;
	const char *log_file;
	const char *pidfile;
	const char *auth_key;	 /* --auth-key: the readers' key (always required) */
	const char *upload_key;	 /* --upload-key: the publishers' key (with --accept-uploads) */
	uint64_t upload_max;	 /* --upload-max: bytes of one upload */
	uint64_t upload_total;	 /* --upload-total: bytes of all uploads in progress at once */
	struct wire_tls_cfg tls; /* --tls/--no-tls, --tls-cert, --tls-key, --tls-ca */
	int verbosity;
	int max_clients;
	int status_fd;
	const char *status_socket;   /* --status-socket: a path, "none", or NULL: the default */
	const char *metrics_address; /* --metrics-address ADDR:PORT, or NULL: none */
	bool daemon;
	bool make_sums;	     /* --make-sums: write the dump-time checksum index and exit */
	bool accept_uploads; /* --accept-uploads: UPLOAD into --root (with --upload-key) */
	bool compress;	     /* --compress on|off: zstd PAGES for clients that ask */
	int fault_dscp;	     /* --fault-dscp: wire_qos.h (WIRE_DSCP_OFF: unmarked) */
};

/* opts.c: 0, 1 (--help or --version printed: exit 0), or -EINVAL (what is wrong printed). */
int imgd_parse_opts(int argc, char **argv, struct imgd_opts *o);

#endif

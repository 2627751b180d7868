/* criu-imgd: serves CRIU page images over lazy-wire to any number of restores. */
#ifndef IMGD_IMGD_H
#define IMGD_IMGD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "img/images.h"
#include "util/err.h"
#include "util/parse.h"
#include "wire/wire.h"
#include "wire/wire_auth.h"
#include "wire/wire_tls.h"

#define IMGD_CHUNK_PAGES 32u			     /* pages per PAGES frame we send */
#define IMGD_HEAD_CAP (WIRE_HDR_SIZE + WIRE_MAX_MSG) /* header and message of one frame */
#define IMGD_HANDSHAKE_S 10			     /* to get from connect to OPEN */
#define IMGD_IDLE_S 600				     /* an open session with no request at all */
#define IMGD_STALL_S 60				     /* a client that does not read what we send */
#define IMGD_UPLOAD_MAX (16ull << 30)		     /* --upload-max default */
#define IMGD_UPLOAD_TOTAL (64ull << 30)		     /* --upload-total default */

struct imgd_opts {
	const char *dir;  /* -D: one image */
	const char *root; /* --root: every image dir below */
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
	bool daemon;
	bool make_sums;	     /* --make-sums: write the dump-time checksum index and exit */
	bool accept_uploads; /* --accept-uploads: UPLOAD into --root (with --upload-key) */
};

/* 0, 1 (--help or --version printed: exit 0), or -EINVAL (what is wrong printed). */
int imgd_parse_opts(int argc, char **argv, struct imgd_opts *o);

/* ---- catalog.c: loaded images, shared by their sessions ---- */

/* A task's data in its pages file, contiguous runs of lazy data by file offset. */
struct imgd_dext {
	uint64_t off, end;
};

struct imgd_image {
	char id[IMAGE_ID_MAX + 1];
	struct imgd_dext **dext; /* per task */
	size_t *ndext;
	int dirfd;
	struct img_set set;
	int *sums_fd; /* per task: pages-N.img.xxh64, or -1 */
	bool dump_sums;
	uint64_t lazy_pages, zero_pages;
	unsigned refs;
	struct imgd_image *next;
};

struct imgd_catalog {
	int rootfd;	    /* --root, or -1 */
	const char *dir;    /* -D */
	const char *dir_id; /* its basename: the id it answers to (also "default") */
	struct imgd_image *loaded;
};

/* -D or --root: 0, or -errno with e. */
int catalog_init(struct imgd_catalog *c, const struct imgd_opts *o, struct errmsg *e);
/* Whether the image in dirfd loads as criu-imgd would serve it: 0, or -errno with e. */
int catalog_check_dir(int dirfd, struct errmsg *e);
/*
 * Take a reference on image id (*out): 0; -ENOENT with e: no such image here (a bad id, or
 * no dir of that name); another -errno with e: it is there but cannot be served.
 */
int catalog_get(struct imgd_catalog *c, const char *id, struct imgd_image **out, struct errmsg *e);
void catalog_put(struct imgd_catalog *c, struct imgd_image *img);
void catalog_free(struct imgd_catalog *c);
/* The task with image pid, and its index in the pstree. */
const struct img_task *image_task(const struct imgd_image *img, int32_t pid, size_t *idx);

/* sums.c: the dump-time checksum index, pages-N.img.xxh64 (one XXH64 LE per page). */
/* Write it for task t (criu-imgd --make-sums): 0 or -errno. */
int sums_write(int dirfd, const struct img_task *t);
/* Open it for task t: an fd, or -errno (-EINVAL: not the size of its pages file). */
int sums_open(int dirfd, const struct img_task *t);
/* The sums of n pages from page: 0 or -EIO. */
int sums_read(int fd, uint64_t page, uint32_t n, uint64_t *out);

/* ---- conn.c: one client connection ---- */

enum conn_state { CS_TLS, CS_HELLO, CS_AUTH, CS_OPEN, CS_READY, CS_CLOSING };

/* What a connection is for, from its OPEN (its class) or its UPLOAD: what it may ask next. */
enum conn_class {
	CONN_NONE,   /* not open yet */
	CONN_URGENT, /* GET and INDEX_GET, for faults */
	CONN_BULK,   /* GET and INDEX_GET, for prefetch */
	CONN_META,   /* META_LIST and META_GET, one at a time */
	CONN_UPLOAD, /* UPLOAD_FILE and UPLOAD_END (with the publishers' key) */
};

/* "urgent", "bulk", "meta", "upload" or "none", for logs. */
const char *conn_class_name(enum conn_class cls);

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
	struct imgd_range r[WIRE_MAX_RANGES];
};

struct imgd_conn {
	int fd;
	gnutls_session_t tls; /* NULL: plain (criu-imgd --no-tls, or on loopback) */
	int tls_role;	      /* the role a PSK session authenticated, or -1 */
	bool tls_started;     /* the handshake has begun (the first byte was not plain HELLO) */
	uint64_t id;	      /* session number, for logs */
	char peer[64];
	enum conn_state state;
	LwRole role; /* authenticated for (CS_OPEN and on): what it may send */
	enum conn_class cls;
	/* an upload (UPLOAD ... UPLOAD_END): into up_tmp below the root, one file at a time */
	int up_dirfd, up_fd;
	char up_id[WIRE_MAX_ID + 1], up_tmp[WIRE_MAX_ID + 48];
	char up_name[WIRE_MAX_META_NAME + 1];
	uint64_t up_size, up_off, up_bytes;
	uint64_t up_reserved; /* declared sizes of its files so far: counted in the quotas */
	uint32_t up_files;
	double t_start, t_last, t_sent; /* connected, last request, last byte sent */
	uint8_t challenge[WIRE_NONCE];
	struct imgd_image *img;
	/* receive: one frame at a time (clients never send payloads) */
	uint8_t *rx;
	size_t rx_len;
	/* send: one frame at a time, its head (header + message) then its page payload */
	uint8_t *tx, *pay;
	size_t tx_head, tx_len, tx_off;			  /* head bytes, frame bytes, bytes sent */
	uint8_t errf[WIRE_HDR_SIZE + WIRE_MAX_TEXT + 32]; /* an ERROR waiting for tx */
	size_t errf_len;
	bool dead; /* the socket failed: close without sending more */
	/* the index being streamed: next task and extent */
	bool index_active;
	size_t ix_task, ix_ext;
	/* queued GETs, FIFO within a class */
	struct imgd_req *q;
	unsigned nq;
	/* counters for the session log */
	uint64_t pages, zero_pages, bytes, gets;
	char close_why[WIRE_MAX_TEXT];
	struct imgd_conn *next;
};

struct imgd {
	struct imgd_opts *o;
	struct imgd_catalog cat;
	struct wire_key read_key;   /* --auth-key */
	struct wire_key upload_key; /* --upload-key (with --accept-uploads) */
	bool tls_on;		    /* every connection speaks TLS from its first byte */
	struct wire_tls_server tls;
	uint64_t up_inflight; /* bytes reserved by the uploads in progress */
	int listen_fd, epfd;
	struct imgd_conn *conns;
	unsigned nconns;
	uint64_t next_id;
	uint64_t sessions, refused;
};

struct imgd_conn *conn_new(struct imgd *d, int fd, const char *peer);
/* Read what the socket has and act on complete frames. */
void conn_on_readable(struct imgd *d, struct imgd_conn *c);
/* Flush tx; when empty, queue the next frame of work. true if more work is pending. */
bool conn_pump(struct imgd *d, struct imgd_conn *c, bool urgent_only);
void conn_close(struct imgd *d, struct imgd_conn *c, const char *why);
/* Queue an ERROR frame and close after it is sent (req < 0: none). */
void conn_fail(struct imgd *d, struct imgd_conn *c, int code, int64_t req, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
bool conn_has_urgent(const struct imgd_conn *c);
/* A frame, or bytes TLS decrypted already, wait to be taken (no poll event will say so). */
bool conn_rx_pending(const struct imgd_conn *c);
/* The TLS handshake waits for the socket to take more. */
bool conn_tls_wants_write(const struct imgd_conn *c);
int conn_queue_frame(struct imgd_conn *c, unsigned type, const ProtobufCMessage *m);

/* ---- pages.c, index.c: producing the next frame into c->tx ---- */
int pages_queue_get(struct imgd *d, struct imgd_conn *c, const LwGet *g);
/* Build the next PAGES frame (urgent GETs first). 1 built, 0 nothing to do, -1 conn failed. */
int pages_next_frame(struct imgd *d, struct imgd_conn *c, bool urgent_only);
/* Build the next INDEX_PART frame. 1 built, 0 done, -1 failed. */
int index_next_frame(struct imgd *d, struct imgd_conn *c);

/* ---- meta.c: metadata files of META connections (reply queued in c->tx) ---- */
void meta_on_list(struct imgd *d, struct imgd_conn *c, const LwMetaList *l);
void meta_on_get(struct imgd *d, struct imgd_conn *c, const LwMetaGet *g);

/* ---- upload.c: UPLOAD / UPLOAD_FILE / UPLOAD_END (reply queued in c->tx) ---- */
void upload_begin(struct imgd *d, struct imgd_conn *c, const LwUpload *u);
void upload_file(struct imgd *d, struct imgd_conn *c, const LwUploadFile *f);
void upload_end(struct imgd *d, struct imgd_conn *c, const LwUploadEnd *e);
/* An unfinished upload: its temp dir goes. */
void upload_abort(struct imgd *d, struct imgd_conn *c);
/*
 * At start with --accept-uploads: take the root's upload lock (one criu-imgd takes uploads
 * into a root) and remove the temp dirs that crashed uploads left. 0, or -1 (logged).
 */
int upload_init(struct imgd *d);

double imgd_now(void);

#endif

/*
 * libFuzzer harness: the client side of lazy-wire, what criu-imgd (or anyone on its port)
 * sends to criu-lazyd and lazy_restore.so: wire_recv and the frame checks (wire_io.c, wire.c),
 * the handshake, OPEN and the index (wire_client_conn.c, wire_client_read.c), PAGES on the
 * fault and background paths (source_imgd_urgent.c, source_imgd_bulk.c), metadata fetches and
 * uploads (wire_client_meta.c, wire_client_upload.c).
 *
 * Input: byte 0 picks the scenario (bits 0-1: mode, bit 2: the client has a key, FUZZ_KEY or
 * for uploads FUZZ_UPLOAD_KEY, bit 3: an image id is given); the rest, split at "#LWFUZZ#", is what
 * the server sends on each connection the client makes, in order (a reconnect takes the next one;
 * none left: the connection is refused). Connections are socketpairs, the server's bytes
 * pre-written and its end shut for writing: socket(), connect() and getaddrinfo() are wrapped (ld
 * --wrap) for the client code only, and what the client sends is dropped (send() wrapped), so
 * nothing blocks. The client's nonce is fixed (wire_random wrapped), so that a captured AUTH_OK
 * stays valid.
 *
 * Modes: 0 source: page_source_imgd, load_index, reads of data extents (urgent path), then
 *        prefetch + collect (bulk path), close;
 *        1 meta: wire_meta_fetch into a scratch dir;
 *        2 upload: wire_upload of a small scratch dir;
 *        3 frames: wire_recv in a loop on one connection.
 * Checked: results against wire_client.h and source.h (a loaded index is sorted and adds up,
 * chunks are within their reads, a failed fetch leaves the dir as it was), no fd leaks.
 *
 * Built with -DFUZZ_CAPTURE instead (tests/fuzz/mkseeds.sh), this file is a seed maker: the
 * same scenarios against a live criu-imgd, recording what it sends into an input file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_util.h"
#include "util/log.h"
#include "source/source.h"
#include "wire/wire_client.h"

#define MAX_STREAMS 8
#define MAX_READS 6
#define MAX_PREFETCH 6
#define READ_PAGES 8
#define VEC_RANGES 4 /* ranges in the last prefetch, a read of several */
#define PREFETCH_PAGES 16

/* ---- the connections the client code makes ---- */

/* (unused in the capture build) */
__attribute__((unused)) static struct fuzz_part streams[MAX_STREAMS];
__attribute__((unused)) static size_t nr_streams, next_stream;
static int client_fd[MAX_STREAMS], peer_fd[MAX_STREAMS];
static size_t nr_fds;
static const char *server_addr = "127.0.0.1:27027";

__attribute__((unused)) static bool ours(int fd)
{
	for (size_t i = 0; i < nr_fds; i++)
		if (client_fd[i] == fd)
			return true;
	return false;
}

int __real_socket(int domain, int type, int protocol);
int __real_connect(int fd, const struct sockaddr *a, socklen_t len);
ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res);
void __real_freeaddrinfo(struct addrinfo *ai);

int __wrap_wire_random(void *buf, size_t len)
{
	memset(buf, FUZZ_NONCE_BYTE, len);
	return 0;
}

#ifndef FUZZ_CAPTURE
int __wrap_socket(int domain, int type, int protocol)
{
	int sv[2];

	(void)domain;
	(void)protocol;
	if (next_stream >= nr_streams || nr_fds >= MAX_STREAMS) {
		errno = ECONNREFUSED;
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | (type & (SOCK_NONBLOCK | SOCK_CLOEXEC)), 0, sv))
		fuzz_die("socketpair");
	const struct fuzz_part *s = &streams[next_stream++];
	for (size_t at = 0; at < s->n;) {
		ssize_t n = __real_send(sv[1], s->p + at, s->n - at, MSG_NOSIGNAL);
		if (n <= 0)
			fuzz_die("cannot pre-write a stream");
		at += (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);
	client_fd[nr_fds] = sv[0];
	peer_fd[nr_fds++] = sv[1];
	return sv[0];
}

int __wrap_connect(int fd, const struct sockaddr *a, socklen_t len)
{
	return ours(fd) ? 0 : __real_connect(fd, a, len);
}

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
	return ours(fd) ? (ssize_t)len : __real_send(fd, buf, len, flags);
}

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res)
{
	(void)node;
	(void)hints;
	struct {
		struct addrinfo ai;
		struct sockaddr_in sin;
	} *r = calloc(1, sizeof(*r));
	if (!r)
		return EAI_MEMORY;
	r->sin.sin_family = AF_INET;
	r->sin.sin_port = htons((uint16_t)atoi(service));
	r->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->ai.ai_family = AF_INET;
	r->ai.ai_socktype = SOCK_STREAM;
	r->ai.ai_addr = (struct sockaddr *)&r->sin;
	r->ai.ai_addrlen = sizeof(r->sin);
	*res = &r->ai;
	return 0;
}

void __wrap_freeaddrinfo(struct addrinfo *ai)
{
	free(ai);
}
#else
/* Capture: real sockets to a live server; what it sends on each of them is recorded. */
static uint8_t *rec[MAX_STREAMS];
static size_t rec_len[MAX_STREAMS];
ssize_t __real_recv(int fd, void *buf, size_t len, int flags);

int __wrap_socket(int domain, int type, int protocol)
{
	int fd = __real_socket(domain, type, protocol);
	if (fd >= 0 && nr_fds < MAX_STREAMS) {
		rec[nr_fds] = NULL;
		rec_len[nr_fds] = 0;
		peer_fd[nr_fds] = -1;
		client_fd[nr_fds++] = fd;
	}
	return fd;
}

ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t n = __real_recv(fd, buf, len, flags);
	/* the newest connection with this fd number: a closed one's number is reused */
	for (size_t i = nr_fds; n > 0 && i-- > 0;)
		if (client_fd[i] == fd) {
			rec[i] = realloc(rec[i], rec_len[i] + (size_t)n);
			memcpy(rec[i] + rec_len[i], buf, (size_t)n);
			rec_len[i] += (size_t)n;
			break;
		}
	return n;
}

int __wrap_connect(int fd, const struct sockaddr *a, socklen_t len)
{
	return __real_connect(fd, a, len);
}

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
	return __real_send(fd, buf, len, flags);
}

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res)
{
	return __real_getaddrinfo(node, service, hints, res);
}

void __wrap_freeaddrinfo(struct addrinfo *ai)
{
	__real_freeaddrinfo(ai);
}
#endif

/* ---- scratch dirs and files ---- */

static char top[4096], key_path[4200], upkey_path[4200], meta_dir[4200], up_dir[4200];
static int meta_fd = -1, up_fd = -1;
__attribute__((unused)) static int base_fd = -1;

static void cleanup(void)
{
	if (top[0])
		fuzz_rm_tree(top);
}

static void setup(void)
{
	/* quiet, unless FUZZ_LOG=LEVEL (0..4) to see what an input does */
	log_level = getenv("FUZZ_LOG") ? atoi(getenv("FUZZ_LOG")) : -1;
	fuzz_mkdtemp(top, sizeof(top), "client");
	atexit(cleanup);
	snprintf(key_path, sizeof(key_path), "%s/key", top);
	snprintf(upkey_path, sizeof(upkey_path), "%s/upkey", top);
	snprintf(meta_dir, sizeof(meta_dir), "%s/meta", top);
	snprintf(up_dir, sizeof(up_dir), "%s/up", top);
	int tfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0 || fuzz_write_file(tfd, "key", FUZZ_KEY, strlen(FUZZ_KEY)) ||
	    fuzz_write_file(tfd, "upkey", FUZZ_UPLOAD_KEY, strlen(FUZZ_UPLOAD_KEY)) ||
	    chmod(key_path, 0600) || chmod(upkey_path, 0600) || mkdir(meta_dir, 0700) ||
	    mkdir(up_dir, 0700))
		fuzz_die("cannot set up the scratch dir");
	close(tfd);
	meta_fd = open(meta_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	up_fd = open(up_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (meta_fd < 0 || up_fd < 0)
		fuzz_die("cannot open the scratch dirs");
	/* What a publish uploads: an image of one task without memory, a file of two chunks;
	 * a log file is not sent. */
	static uint8_t big[WIRE_META_CHUNK + 100];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	static const char pstree[] = "\x19\x43\x56\x54\x30\x30\x27\x50\x08\x00\x00\x00"
				     "\x08\x09\x10\x00\x18\x09\x20\x09"; /* pid 9, no mm */
	if (fuzz_write_file(up_fd, "inventory.img", "\x16\x31\x31\x58\x02\x00\x00\x00\x08\x02",
			    10) ||
	    fuzz_write_file(up_fd, "pstree.img", pstree, sizeof(pstree) - 1) ||
	    fuzz_write_file(up_fd, "pages-1.img", big, sizeof(big)) ||
	    fuzz_write_file(up_fd, "dump.log", "x", 1))
		fuzz_die("cannot write the upload dir");
}

/* ---- checks ---- */

static void check_index(const struct img_set *set, const struct wire_open_info *info)
{
	(void)info;
	if (!set->nr_tasks || !set->tasks)
		fuzz_die("index: no tasks");
	for (size_t i = 0; i < set->nr_tasks; i++) {
		const struct img_task *t = &set->tasks[i];
		uint64_t lazy = 0, zero = 0;
		if (t->pid <= 0 || t->pages_fd != -1)
			fuzz_die("index: bad pid or a pages fd");
		for (size_t j = 0; j < i; j++)
			if (set->tasks[j].pid == t->pid)
				fuzz_die("index: a pid twice");
		for (size_t k = 0; k < t->nr_extents; k++) {
			const struct img_extent *x = &t->extents[k];
			if (x->start % IMG_PAGE_SIZE || x->end % IMG_PAGE_SIZE ||
			    x->start >= x->end)
				fuzz_die("index: extent not aligned or empty");
			if (k && x->start < t->extents[k - 1].end)
				fuzz_die("index: extents unsorted");
			if (!x->zero && (x->pages_off % IMG_PAGE_SIZE ||
					 x->pages_off > UINT64_MAX - (x->end - x->start)))
				fuzz_die("index: bad data offset");
			if (x->zero)
				zero += (x->end - x->start) / IMG_PAGE_SIZE;
			else
				lazy += (x->end - x->start) / IMG_PAGE_SIZE;
		}
		if (lazy != t->lazy_pages || zero != t->zero_pages)
			fuzz_die("index: page counts do not add up");
	}
}

/* ---- scenarios ---- */

static uint8_t pagebuf[READ_PAGES * WIRE_PAGE];

static void run_source(uint8_t flags)
{
	struct imgd_source_cfg cfg = {
	    .server = server_addr,
	    .image = (flags & 8) ? "img" : NULL,
	    .key_file = (flags & 4) ? key_path : NULL,
	    .retries = 0, /* a retry waits out a backoff first */
	    .timeout_ms = 2000,
	    .window = 4,
	    /* offers zstd: a HELLO_REPLY may agree, PAGES may come compressed */
	    .compress = LW_COMPRESS__LW_COMPRESS_AUTO,
	    /* one thread: the wrapped socket() and its streams are not thread-safe, and a
	     * finding must replay */
	    .dial_inline = true};
	struct page_source ps = {0};
	struct img_set set;
	struct errmsg err = {""};
	bool loaded = false;

	if (page_source_imgd(&ps, &cfg, &err)) {
		/* e.g. no key: a source that never connects */
		if (ps.ops && ps.priv)
			ps.ops->close(&ps);
		return;
	}
	if (!ps.ops->load_index(&ps, &set, &err)) {
		loaded = true;
		check_index(&set, NULL);
	} else if (!err.msg[0] || !memchr(err.msg, '\0', sizeof(err.msg))) {
		fuzz_die("load_index: an error without a reason, or not terminated");
	}
	/* The fault path: a few data extents. */
	unsigned reads = 0;
	for (size_t i = 0; loaded && i < set.nr_tasks && reads < MAX_READS; i++) {
		const struct img_task *t = &set.tasks[i];
		for (size_t k = 0; k < t->nr_extents && reads < MAX_READS; k++) {
			const struct img_extent *x = &t->extents[k];
			if (x->zero)
				continue;
			uint64_t n = (x->end - x->start) / WIRE_PAGE;
			if (n > READ_PAGES)
				n = READ_PAGES;
			reads++;
			int rc = ps.ops->read(&ps, t, x->pages_off, pagebuf, (size_t)n * WIRE_PAGE);
			if (log_level >= 4)
				fprintf(stderr, "fuzz: read %lu pages at 0x%lx: %d\n",
					(unsigned long)n, (unsigned long)x->pages_off, rc);
			if (rc > 0)
				fuzz_die("read: positive result");
		}
	}
	/* The background path: prefetch a few (the last one a read of several ranges), collect
	 * until nothing is in flight. */
	struct {
		const struct img_task *t;
		struct src_range r[VEC_RANGES];
		unsigned nr, cur;
		uint64_t got;
		bool done;
	} pf[MAX_PREFETCH];
	unsigned npf = 0;
	for (size_t i = 0; loaded && i < set.nr_tasks && npf < MAX_PREFETCH; i++) {
		const struct img_task *t = &set.tasks[i];
		struct src_range vec[VEC_RANGES];
		unsigned nvec = 0;
		for (size_t k = 0; k < t->nr_extents && npf < MAX_PREFETCH; k++) {
			const struct img_extent *x = &t->extents[k];
			if (x->zero)
				continue;
			uint64_t n = (x->end - x->start) / WIRE_PAGE;
			if (n > PREFETCH_PAGES)
				n = PREFETCH_PAGES;
			struct src_range r = {x->pages_off, n * WIRE_PAGE};
			int rc;
			if (npf + 1 < MAX_PREFETCH) {
				rc = ps.ops->prefetch(&ps, t, r.src, r.len, npf);
			} else { /* the last read: this range and the next ones, at once */
				vec[nvec++] = r;
				if (nvec < VEC_RANGES && k + 1 < t->nr_extents)
					continue;
				rc = ps.ops->prefetchv(&ps, t, vec, nvec, npf);
			}
			unsigned nr = nvec ? nvec : 1;
			nvec = 0;
			if (log_level >= 4)
				fprintf(stderr,
					"fuzz: prefetch %lu pages at 0x%lx (%u ranges): %d\n",
					(unsigned long)(r.len / WIRE_PAGE), (unsigned long)r.src,
					nr, rc);
			if (rc == -EBUSY)
				break;
			if (rc)
				continue;
			pf[npf] = (typeof(pf[0])){.t = t, .nr = nr};
			memcpy(pf[npf].r, nr > 1 ? vec : &r, nr * sizeof(r));
			npf++;
		}
		/* Ranges gathered when the task's data extents ran out: as one read. */
		if (nvec && npf < MAX_PREFETCH && !ps.ops->prefetchv(&ps, t, vec, nvec, npf)) {
			pf[npf] = (typeof(pf[0])){.t = t, .nr = nvec};
			memcpy(pf[npf].r, vec, nvec * sizeof(vec[0]));
			npf++;
		}
	}
	for (int turn = 0; turn < 256 && ps.ops->inflight(&ps); turn++) {
		struct src_chunk ch;
		memset(&ch, 0, sizeof(ch));
		int rc = ps.ops->collect(&ps, &ch);
		if (log_level >= 4 && rc)
			fprintf(stderr, "fuzz: collect %d: tag %lu, %u pages at 0x%lx%s\n", rc,
				(unsigned long)ch.tag, ch.n, (unsigned long)ch.src,
				ch.last ? ", last" : "");
		if (rc == 0) {
#ifdef FUZZ_CAPTURE
			/* a live server: wait for it (here, everything is there at once) */
			struct pollfd p = {.fd = ps.ops->poll_fd(&ps), .events = POLLIN};
			if (p.fd >= 0)
				poll(&p, 1, 2000);
#endif
			continue;
		}
		if (ch.tag >= npf || pf[ch.tag].done || ch.t != pf[ch.tag].t)
			fuzz_die("collect: a chunk for a read we did not make or that ended");
		if (rc == 1) {
			typeof(pf[0]) *f = &pf[ch.tag];
			const struct src_range *cr = &f->r[f->cur];
			if (!ch.n || !ch.data || ch.src != cr->src + f->got ||
			    (uint64_t)ch.n * WIRE_PAGE > cr->len - f->got)
				fuzz_die("collect: a chunk outside its read or out of order");
			f->got += (uint64_t)ch.n * WIRE_PAGE;
			if (f->got == cr->len) {
				f->cur++;
				f->got = 0;
			}
			if (ch.last != (f->cur == f->nr))
				fuzz_die("collect: last set wrongly");
		} else if (!ch.last) {
			fuzz_die("collect: a failed read that is not the last chunk");
		}
		if (ch.last)
			pf[ch.tag].done = true;
	}
	ps.ops->close(&ps);
	if (loaded)
		img_set_free(&set);
}

static void run_meta(uint8_t flags)
{
	struct wire_client wc = {0};
	struct wire_key key;
	struct wire_meta_result res;
	struct errmsg err;

	if (wire_client_parse(&wc, server_addr, NULL))
		fuzz_die("wire_client_parse");
	wc.image = (flags & 8) ? "img" : NULL;
	wc.timeout_ms = 2000;
	if (flags & 4) {
		if (wire_key_load(key_path, &key, NULL))
			fuzz_die("wire_key_load");
		wc.key = &key;
	}
	fuzz_rm_contents(meta_fd, 0);
	int rc = wire_meta_fetch(&wc, meta_fd, &res, &err);
	if (log_level >= 4)
		fprintf(stderr, "fuzz: meta fetch %d: %u files, %lu bytes: %s\n", rc, res.files,
			(unsigned long)res.bytes, rc ? err.msg : "ok");
	if (rc) {
		if (res.files || res.bytes)
			fuzz_die("meta: a failed fetch with a result");
		if (fuzz_count_entries(meta_fd) != 0)
			fuzz_die("meta: a failed fetch left files behind");
	} else {
		if (!res.files || fuzz_count_entries(meta_fd) != (int)res.files)
			fuzz_die("meta: files fetched and files in the dir differ");
	}
	fuzz_rm_contents(meta_fd, 0);
}

static void run_upload(uint8_t flags)
{
	struct wire_client wc = {0};
	struct wire_key key;
	struct wire_meta_result res;
	struct errmsg err;

	if (wire_client_parse(&wc, server_addr, NULL))
		fuzz_die("wire_client_parse");
	wc.image = (flags & 8) ? "img-up" : "up";
	wc.timeout_ms = 2000;
	if (flags & 4) {
		if (wire_key_load(upkey_path, &key, NULL))
			fuzz_die("wire_key_load");
		wc.key = &key;
	}
	int rc = wire_upload(&wc, up_fd, &res, &err);
	if (log_level >= 4)
		fprintf(stderr, "fuzz: upload %d: %u files, %lu bytes: %s\n", rc, res.files,
			(unsigned long)res.bytes, rc ? err.msg : "ok");
	if (!rc && res.files != 3)
		fuzz_die("upload: success with another file count");
}

static void run_frames(void)
{
#ifndef FUZZ_CAPTURE
	static uint8_t scratch[WIRE_SCRATCH], payload[WIRE_MAX_PAYLOAD];
	int fd = __wrap_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	for (int i = 0; i < 256; i++) {
		struct wire_hdr h;
		ProtobufCMessage *m;
		struct errmsg why = {""};
		int rc = wire_recv(fd, scratch, &h, &m, payload, sizeof(payload),
				   wire_now_ms() + 2000, &why);
		if (rc == -EPROTO && !why.msg[0])
			fuzz_die("frames: EPROTO without a reason");
		if (rc)
			break;
		if (!m || h.type < 1 || h.type > WT_MAX || h.msg_len > WIRE_MAX_MSG)
			fuzz_die("frames: a frame accepted against its header");
		if (h.type == WT_PAGES) {
			const LwPages *p = (const LwPages *)m;
			if (p->nr_pages > WIRE_MAX_REPLY_PAGES ||
			    (uint64_t)(p->nr_pages - wire_count_zero(p->zero.data, p->nr_pages)) *
				    WIRE_PAGE !=
				h.payload_len)
				fuzz_die("frames: PAGES accepted with a bad payload");
		} else if (h.payload_len) {
			fuzz_die("frames: a payload on a frame that carries none");
		}
		wire_free(m);
	}
	close(fd);
#endif
}

static void run(const uint8_t *data, size_t size)
{
	uint8_t flags = data[0];

	switch (flags & 3) {
	case 0:
		run_source(flags);
		break;
	case 1:
		run_meta(flags);
		break;
	case 2:
		run_upload(flags);
		break;
	case 3:
		run_frames();
		break;
	}
	(void)size;
}

#ifndef FUZZ_CAPTURE
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setup();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* per iteration: libFuzzer opens fds of its own between them (the symbolizer) */
	base_fd = fuzz_lowest_free_fd();
	nr_streams = fuzz_split(data + 1, size - 1, streams, MAX_STREAMS);
	next_stream = nr_fds = 0;
	run(data, size);
	for (size_t i = 0; i < nr_fds; i++) {
		if (fcntl(client_fd[i], F_GETFD) != -1)
			fuzz_die("the client left a connection open");
		close(peer_fd[i]);
	}
	nr_fds = 0;
	if (fuzz_lowest_free_fd() != base_fd)
		fuzz_die("an fd leaked");
	return 0;
}
#else
/* fuzz_wire_client-capture HOST:PORT FLAGS OUT: run scenario FLAGS against a live server. */
int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s HOST:PORT FLAGS OUT\n", argv[0]);
		return 2;
	}
	server_addr = argv[1];
	uint8_t flags = (uint8_t)strtoul(argv[2], NULL, 0);
	setup();
	run(&flags, 1);
	FILE *f = fopen(argv[3], "w");
	if (!f)
		return 1;
	fputc(flags, f);
	for (size_t i = 0; i < nr_fds; i++) {
		if (i)
			fwrite(FUZZ_SEP, 1, FUZZ_SEP_LEN, f);
		fwrite(rec[i], 1, rec_len[i], f);
	}
	fclose(f);
	fprintf(stderr, "captured %zu connection(s) into %s\n", nr_fds, argv[3]);
	return 0;
}
#endif

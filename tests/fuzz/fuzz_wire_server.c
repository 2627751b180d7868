/*
 * libFuzzer harness: criu-imgd's side of lazy-wire, what a client sends. The real session
 * code (lazy-pages/imgd/protocol.c, session.c, conn_io.c and the handlers in handshake.c,
 * pages.c, index.c, meta.c, upload.c) runs on one end of a socketpair whose other end holds
 * the input, pre-written, and is shut for writing once the server has read it all and has
 * nothing more to send, with the service pass of server.c reduced to its calls
 * (protocol_on_readable, protocol_pump, protocol_closable, protocol_close; no timeouts). No
 * live server, no network.
 *
 * Input: byte 0 picks the server's configuration (cfgs[] below: -D or --root, uploads
 * accepted or not, with quotas of 256 and 384 KiB, or TLS); the rest, split at "#LWFUZZ#", is the
 * byte stream of up to 4 connections served one after the other. The server serves a small
 * synthetic image (fuzz_util.h) as "default" (-D) or "img" (--root). The challenge a server
 * sends is fixed here (wire_random is wrapped for session.c), so that a seed can hold a valid
 * AUTH: the readers' key is FUZZ_KEY, the publishers' FUZZ_UPLOAD_KEY (fuzz_util.h).
 *
 * Checked: every frame the server sends decodes and passes the receiver's checks (wire_recv's
 * wire_hdr_get + wire_unpack + wire_check), every page checksum matches its page, and nothing
 * but HELLO_REPLY and ERROR goes out before AUTH_OK; a connection always ends; an unfinished upload
 * leaves no temp dir; no fd leaks.
 */
#define FUZZ_WITH_IMAGES
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "fuzz_util.h"
#include "imgd/catalog.h"
#include "imgd/handlers.h"
#include "imgd/protocol.h"
#include "util/log.h"
#include "wire/wire_zstd.h"

#define MAX_CONNS 4
#define OUT_CAP (8u << 20) /* server output looked at per connection: then we hang up */
#define MAX_TURNS 100000   /* event loop turns per connection: more is a livelock */

/* session_new's challenge: fixed, so that seeds can carry a valid AUTH. */
int __wrap_wire_random(void *buf, size_t len)
{
	memset(buf, FUZZ_CHALLENGE_BYTE, len);
	return 0;
}

struct cfg {
	const char *name;
	bool root, uploads, tls;
};

static const struct cfg cfgs[] = {
    {"dir", false, false, false},
    {"root-uploads", true, true, false},
    {"root", true, false, false},
    {"dir-tls", false, false, true}, /* TLS from the first byte (PSK): only its failures */
};
#define NR_CFGS (sizeof(cfgs) / sizeof(cfgs[0]))

static struct imgd_opts opts[NR_CFGS];
static struct imgd servers[NR_CFGS];
static char top[4096], imgdir[4200], rootdir[4200];
static int rootfd = -1;
static uint8_t *out;
static int base_fd = -1;

static void cleanup(void)
{
	if (top[0])
		fuzz_rm_tree(top);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* quiet, unless FUZZ_LOG=LEVEL (0..4) to see what an input does */
	log_level = getenv("FUZZ_LOG") ? atoi(getenv("FUZZ_LOG")) : -1;
	fuzz_mkdtemp(top, sizeof(top), "imgd");
	atexit(cleanup);
	snprintf(imgdir, sizeof(imgdir), "%s/default", top);
	snprintf(rootdir, sizeof(rootdir), "%s/root", top);
	char img2[4300];
	snprintf(img2, sizeof(img2), "%s/img", rootdir);
	if (mkdir(imgdir, 0700) || mkdir(rootdir, 0700) || mkdir(img2, 0700))
		fuzz_die("mkdir");
	int fd = open(imgdir, O_RDONLY | O_DIRECTORY), fd2 = open(img2, O_RDONLY | O_DIRECTORY);
	/* -D serves an image with dump-time sums, --root one without */
	if (fd < 0 || fd2 < 0 || fuzz_write_image(fd, true) || fuzz_write_image(fd2, false))
		fuzz_die("cannot write the image");
	close(fd);
	close(fd2);
	rootfd = open(rootdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < NR_CFGS; i++) {
		struct imgd *d = &servers[i];
		opts[i] = (struct imgd_opts){.dir = cfgs[i].root ? NULL : imgdir,
					     .root = cfgs[i].root ? rootdir : NULL,
					     .address = "127.0.0.1",
					     .verbosity = -1,
					     .max_clients = 16,
					     .compress = true,
					     .status_fd = -1,
					     .accept_uploads = cfgs[i].uploads};
		*d = (struct imgd){.o = &opts[i]};
		if (catalog_init(&d->cat, &opts[i], NULL))
			fuzz_die("catalog_init");
		/* small quotas, so that they are reached */
		opts[i].upload_max = 256u << 10;
		opts[i].upload_total = 384u << 10;
		memcpy(d->read_key.k, FUZZ_KEY, strlen(FUZZ_KEY));
		d->read_key.len = strlen(FUZZ_KEY);
		memcpy(d->upload_key.k, FUZZ_UPLOAD_KEY, strlen(FUZZ_UPLOAD_KEY));
		d->upload_key.len = strlen(FUZZ_UPLOAD_KEY);
		if (cfgs[i].uploads && upload_init(d))
			fuzz_die("upload_init");
		if (cfgs[i].tls) {
			struct errmsg err;
			opts[i].tls.mode = WIRE_TLS_ON;
			if (wire_tls_server_init(&d->tls, &opts[i].tls, &d->read_key, NULL, &err)) {
				fprintf(stderr, "%s\n", err.msg);
				fuzz_die("wire_tls_server_init");
			}
			d->tls_on = true;
		}
		/* Keep the image loaded: a reference of our own. */
		struct imgd_image *img;
		struct errmsg e;
		if (catalog_get(&d->cat, cfgs[i].root ? "img" : "default", &img, &e)) {
			fprintf(stderr, "%s\n", e.msg);
			fuzz_die("the harness image does not load");
		}
	}
	out = malloc(OUT_CAP + WIRE_HDR_SIZE + WIRE_MAX_MSG + WIRE_MAX_PAYLOAD);
	if (!out)
		fuzz_die("out of memory");
	return 0;
}

/* Every frame the server sent must be one a client accepts, and nothing of an image goes
 * out before the client has authenticated (AUTH_OK). */
static void check_output(const uint8_t *p, size_t n)
{
	size_t at = 0;
	bool authed = false;

	while (n - at >= WIRE_HDR_SIZE) {
		struct wire_hdr h;
		struct errmsg why;
		if (wire_hdr_get(p + at, &h, &why)) {
			fprintf(stderr, "server sent a bad header: %s\n", why.msg);
			fuzz_die("bad frame from the server");
		}
		size_t total = WIRE_HDR_SIZE + (size_t)h.msg_len + h.payload_len;
		if (n - at < total)
			break; /* cut by the output cap */
		ProtobufCMessage *m = wire_unpack(h.type, p + at + WIRE_HDR_SIZE, h.msg_len);
		if (!m)
			fuzz_die("server sent a malformed message");
		if (wire_check(h.type, m, &h, &why)) {
			fprintf(stderr, "server sent a bad %s: %s\n", wire_type_name(h.type),
				why.msg);
			fuzz_die("bad frame from the server");
		}
		if (h.type == WT_AUTH_OK)
			authed = true;
		else if (!authed && h.type != WT_HELLO_REPLY && h.type != WT_ERROR)
			fuzz_die("server sent something before AUTH_OK");
		if (h.type == WT_PAGES) {
			const LwPages *pg = (const LwPages *)m;
			const uint8_t *pay = p + at + WIRE_HDR_SIZE + h.msg_len;
			static const uint8_t zero[WIRE_PAGE];
			static uint8_t raw[WIRE_MAX_PAYLOAD];
			static struct wire_zstd z;
			if (pg->codec == LW_CODEC__LW_CODEC_ZSTD) { /* a client that offered it */
				if (wire_zstd_unpack(&z, pay, h.payload_len, raw, pg->raw_len,
						     &why))
					fuzz_die(
					    "server sent compressed pages that do not decompress");
				pay = raw;
			}
			for (uint32_t i = 0; i < pg->nr_pages; i++) {
				const uint8_t *page = zero;
				if (!wire_zero_bit(pg->zero.data, i)) {
					page = pay;
					pay += WIRE_PAGE;
				}
				if (wire_page_sum(page) != pg->sums[i])
					fuzz_die("server sent a page with a wrong checksum");
			}
		}
		if (log_level >= 4)
			fprintf(stderr, "fuzz: server sent %s (%u + %u bytes)\n",
				wire_type_name(h.type), h.msg_len, h.payload_len);
		wire_free(m);
		at += total;
	}
}

/* What the server sent since the last call, appended to out. */
static void drain(int peer, size_t *have)
{
	for (;;) {
		size_t room = OUT_CAP + WIRE_HDR_SIZE + WIRE_MAX_MSG + WIRE_MAX_PAYLOAD - *have;
		ssize_t n = recv(peer, out + *have, room, MSG_DONTWAIT);
		if (n <= 0)
			return;
		*have += (size_t)n;
		if (*have >= OUT_CAP)
			return;
	}
}

/* rx holds a frame that protocol.c would act on (a complete one, or a bad header). */
static bool rx_frame(const struct conn_io *io)
{
	struct wire_hdr h;

	if (io->rx_len < WIRE_HDR_SIZE)
		return false;
	return wire_hdr_get(io->rx, &h, NULL) || io->rx_len >= WIRE_HDR_SIZE + h.msg_len;
}

static void one_conn(struct imgd *d, const uint8_t *data, size_t size)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		fuzz_die("socketpair");
	int sz = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	for (size_t at = 0; at < size;) {
		ssize_t n = send(sv[1], data + at, size - at, MSG_NOSIGNAL);
		if (n <= 0)
			fuzz_die("cannot pre-write the input");
		at += (size_t)n;
	}

	struct imgd_session *c;
	if (session_new(d, sv[0], "fuzz", &c))
		fuzz_die("session_new");
	size_t have = 0;
	bool closed = false, eof = false;
	for (int turn = 0; turn < MAX_TURNS; turn++) {
		/* The client hangs up once the server has read everything and has nothing left
		 * to send: a client that waits for its answers. */
		int unread = 0;
		if (!eof && !conn_io_out_pending(&c->io) && !c->nq && !c->ix_active &&
		    !rx_frame(&c->io) && !(c->io.tls && gnutls_record_check_pending(c->io.tls)) &&
		    !ioctl(sv[0], FIONREAD, &unread) && !unread) {
			shutdown(sv[1], SHUT_WR);
			eof = true;
		}
		/* server.c: readable, then service(): urgent pumps, the rest, closing */
		protocol_on_readable(c);
		if (protocol_has_urgent(c))
			protocol_pump(c, true);
		if (protocol_rx_pending(c))
			protocol_on_readable(c);
		protocol_pump(c, false);
		drain(sv[1], &have);
		if (have >= OUT_CAP) {
			/* a client that asked for more than we look at: it hangs up */
			protocol_close(c, "fuzz: output cap");
			closed = true;
			break;
		}
		if (protocol_closable(c)) {
			drain(sv[1], &have);
			protocol_close(c, NULL);
			closed = true;
			break;
		}
	}
	if (!closed)
		fuzz_die("a connection that never ends (livelock)");
	drain(sv[1], &have);
	close(sv[1]);
	check_output(out, have < OUT_CAP ? have : OUT_CAP);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[MAX_CONNS];

	if (size < 1)
		return 0;
	/* per iteration: libFuzzer opens fds of its own between them (the symbolizer) */
	base_fd = fuzz_lowest_free_fd();
	const struct cfg *cf = &cfgs[data[0] % NR_CFGS];
	struct imgd *d = &servers[data[0] % NR_CFGS];
	size_t n = fuzz_split(data + 1, size - 1, parts, MAX_CONNS);
	for (size_t i = 0; i < n; i++)
		one_conn(d, parts[i].p, parts[i].n);
	if (d->nconns)
		fuzz_die("a connection left behind");
	if (cf->root) {
		/* A finished upload is a new image below the root: remove it. An unfinished
		 * one must have removed its temp dir itself. */
		int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
		if (!dir)
			fuzz_die("cannot list the root");
		for (struct dirent *de; (de = readdir(dir));) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
			    !strcmp(de->d_name, "img"))
				continue;
			if (!strncmp(de->d_name, ".upload-", 8)) {
				fprintf(stderr, "left behind: %s\n", de->d_name);
				fuzz_die("an unfinished upload left its temp dir");
			}
			int sub = openat(rootfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (sub >= 0) {
				fuzz_rm_contents(sub, 0);
				close(sub);
			}
			unlinkat(rootfd, de->d_name, AT_REMOVEDIR);
		}
		closedir(dir);
	}
	if (!d->cat.loaded || d->cat.loaded->next || d->cat.loaded->refs != 1)
		fuzz_die("image references unbalanced");
	if (fuzz_lowest_free_fd() != base_fd)
		fuzz_die("an fd leaked");
	return 0;
}

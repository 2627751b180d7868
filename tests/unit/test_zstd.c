/*
 * Compressed PAGES (docs/protocol.md, "Compression"): the codec (wire_zstd.c), the frame
 * checks (wire.c), the negotiation in HELLO / HELLO_REPLY on both sides (wire_client_conn.c,
 * imgd/compress.c) with older peers, criu-imgd's choice per chunk (on, auto), and what the
 * client does with hostile compressed frames (source_imgd_zstd.c): a clear error, nothing
 * written where pages go.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "imgd/compress.h"
#include "lib/ports.h"
#include "imgd/session.h"
#include "source/source_imgd.h"
#include "util/clock.h"
#include "wire/wire_client.h"
#include "wire/wire_zstd.h"

#define RAW (8 * WIRE_PAGE)

/* Text-like pages: they compress. */
static void text_pages(uint8_t *p, size_t len, unsigned seed)
{
	static const char *const words[] = {"lazy", "pages", "restore", "criu",	  "fault",
					    "uffd", "zstd",  "image",	"server", "stream"};
	size_t at = 0;

	srand(seed);
	while (at < len) {
		const char *w = words[rand() % 10];
		for (size_t i = 0; w[i] && at < len; i++)
			p[at++] = (uint8_t)w[i];
		if (at < len)
			p[at++] = ' ';
	}
}

static void random_pages(uint8_t *p, size_t len, unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rand();
}

/* ---- the codec ---- */

Test(zstd, round_trip_and_incompressible)
{
	static uint8_t raw[RAW], z[RAW], back[RAW];
	struct wire_zstd c = {0}, d = {0};
	struct errmsg e = {""};

	text_pages(raw, RAW, 1);
	ssize_t n = wire_zstd_pack(&c, raw, RAW, z, RAW);
	cr_assert(n > 0 && n < RAW / 2, "text shrinks: %zd", n);
	cr_assert_eq(wire_zstd_unpack(&d, z, (size_t)n, back, RAW, &e), 0, "%s", e.msg);
	cr_assert_arr_eq(raw, back, RAW);
	/* The contexts are reused: a second frame. */
	text_pages(raw, RAW, 2);
	n = wire_zstd_pack(&c, raw, RAW, z, RAW);
	cr_assert_gt(n, 0);
	cr_assert_eq(wire_zstd_unpack(&d, z, (size_t)n, back, RAW, &e), 0, "%s", e.msg);
	cr_assert_arr_eq(raw, back, RAW);
	/* Random data does not shrink: 0, send it raw. */
	random_pages(raw, RAW, 3);
	cr_assert_eq(wire_zstd_pack(&c, raw, RAW, z, RAW), 0);
	/* and the context still works after the refusal */
	text_pages(raw, RAW, 4);
	cr_assert_gt(wire_zstd_pack(&c, raw, RAW, z, RAW), 0);
	wire_zstd_free(&c);
	wire_zstd_free(&d);
}

/* Unpack into raw_len bytes followed by a canary: nothing may be written past raw_len. */
static int unpack_guarded(const void *src, size_t len, size_t raw_len, struct errmsg *e)
{
	static uint8_t dst[WIRE_MAX_PAYLOAD + 64];
	struct wire_zstd d = {0};

	memset(dst, 0xa5, sizeof(dst));
	int rc = wire_zstd_unpack(&d, src, len, dst, raw_len, e);
	for (size_t i = raw_len; i < sizeof(dst); i++)
		cr_assert_eq(dst[i], 0xa5, "byte %zu past raw_len %zu written", i, raw_len);
	wire_zstd_free(&d);
	return rc;
}

Test(zstd, hostile_frames_are_errors)
{
	static uint8_t raw[WIRE_MAX_PAYLOAD], z[2 * WIRE_MAX_PAYLOAD];
	struct wire_zstd c = {0};
	struct errmsg e = {""};

	text_pages(raw, RAW, 5);
	ssize_t n = wire_zstd_pack(&c, raw, RAW, z, RAW);
	cr_assert_gt(n, 16);
	/* It says RAW bytes: any other length is refused before decompressing. */
	cr_assert_eq(unpack_guarded(z, (size_t)n, RAW - WIRE_PAGE, &e), -EBADMSG);
	cr_assert(strstr(e.msg, "declares"), "%s", e.msg);
	cr_assert_eq(unpack_guarded(z, (size_t)n, RAW + WIRE_PAGE, &e), -EBADMSG);
	/* Truncated, or with bytes after the frame, or two frames. */
	cr_assert_eq(unpack_guarded(z, (size_t)n - 1, RAW, &e), -EBADMSG);
	memcpy(z + n, z, (size_t)n);
	cr_assert_eq(unpack_guarded(z, 2 * (size_t)n, RAW, &e), -EBADMSG);
	cr_assert(strstr(e.msg, "one zstd frame"), "%s", e.msg);
	/* Not zstd at all. */
	cr_assert_eq(unpack_guarded(raw, 100, RAW, &e), -EBADMSG);
	/* Corrupt inside: an error or, if zstd cannot tell, never more than raw_len (the page
	 * checksums catch the rest). */
	for (ssize_t i = 8; i < n; i += 7) {
		uint8_t keep = z[i];
		z[i] ^= 0x5a;
		int rc = unpack_guarded(z, (size_t)n, RAW, &e);
		cr_assert(rc == 0 || rc == -EBADMSG);
		z[i] = keep;
	}
	/* A bomb: a frame without its size that decompresses to far more than it may. */
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
	memset(raw, 'x', sizeof(raw));
	ZSTD_outBuffer out = {z, sizeof(z), 0};
	ZSTD_inBuffer in = {raw, sizeof(raw), 0};
	cr_assert_eq(ZSTD_compressStream2(cc, &out, &in, ZSTD_e_end), 0);
	ZSTD_freeCCtx(cc);
	cr_assert_eq(unpack_guarded(z, out.pos, RAW, &e), -EBADMSG, "a bomb is an error");
	cr_assert(strstr(e.msg, "corrupt"), "%s", e.msg);
	/* and the same frame with the size it has is fine */
	cr_assert_eq(unpack_guarded(z, out.pos, sizeof(raw), &e), 0, "%s", e.msg);
	wire_zstd_free(&c);
}

/* ---- frame checks ---- */

static int check_pages(LwPages *p, uint32_t payload_len)
{
	static uint8_t buf[WIRE_SCRATCH];
	struct wire_hdr h;
	struct errmsg e = {""};
	int n = wire_pack(WT_PAGES, &p->base, payload_len, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	if (wire_hdr_get(buf, &h, &e))
		return -EPROTO;
	ProtobufCMessage *u = wire_unpack(WT_PAGES, buf + WIRE_HDR_SIZE, h.msg_len);
	cr_assert_not_null(u);
	int rc = wire_check(WT_PAGES, u, &h, &e);
	wire_free(u);
	return rc;
}

Test(zstd, compressed_pages_frame_checks)
{
	uint8_t zmap[1] = {0x01}; /* page 0 zero: 3 data pages */
	uint64_t sums[4] = {0};
	LwPages p = LW_PAGES__INIT;

	p.nr_pages = 4;
	p.zero = (ProtobufCBinaryData){1, zmap};
	p.n_sums = 4;
	p.sums = sums;
	cr_assert_eq(check_pages(&p, 3 * WIRE_PAGE), 0, "raw, as before");
	cr_assert_eq(check_pages(&p, 100), -EPROTO, "raw and not whole pages");
	p.has_codec = p.has_raw_len = true;
	p.codec = LW_CODEC__LW_CODEC_ZSTD;
	p.raw_len = 3 * WIRE_PAGE;
	cr_assert_eq(check_pages(&p, 100), 0, "compressed: any length below raw_len");
	cr_assert_eq(check_pages(&p, 3 * WIRE_PAGE), -EPROTO, "not shorter");
	cr_assert_eq(check_pages(&p, 0), -EPROTO, "empty");
	p.raw_len = 4 * WIRE_PAGE;
	cr_assert_eq(check_pages(&p, 100), -EPROTO, "raw_len beyond the data pages");
	p.raw_len = 64u << 20;
	cr_assert_eq(check_pages(&p, 100), -EPROTO, "raw_len huge");
	p.has_raw_len = false;
	cr_assert_eq(check_pages(&p, 100), -EPROTO, "compressed without raw_len");
	p.codec = LW_CODEC__LW_CODEC_NONE;
	p.has_raw_len = true;
	p.raw_len = 3 * WIRE_PAGE;
	cr_assert_eq(check_pages(&p, 3 * WIRE_PAGE), -EPROTO, "raw_len without a codec");
	p.has_raw_len = false;
	p.codec = (LwCodec)7;
	cr_assert_eq(check_pages(&p, 3 * WIRE_PAGE), -EPROTO, "unknown codec");
}

/* ---- negotiation, criu-imgd's side ---- */

static struct imgd_opts sopts;
static struct imgd sd;
static struct imgd_session ss;

static void server_session(bool compress)
{
	compress_free(&sd);
	free(ss.io.pay);
	memset(&ss, 0, sizeof(ss));
	memset(&sd, 0, sizeof(sd));
	sopts = (struct imgd_opts){.compress = compress};
	sd.o = &sopts;
	ss.d = &sd;
	ss.io.pay = malloc(CONN_IO_PAY_CAP);
	cr_assert_not_null(ss.io.pay);
}

static LwCodec server_hello(bool server_on, bool offers, LwCompress mode)
{
	LwHello h = LW_HELLO__INIT;

	server_session(server_on);
	if (offers) {
		h.has_codecs = h.has_compress = true;
		h.codecs = 1u << LW_CODEC__LW_CODEC_ZSTD;
		h.compress = mode;
	}
	return compress_hello(&ss, &h);
}

Test(zstd, server_negotiation)
{
	/* An older client (no codecs): never compressed. */
	cr_assert_eq(server_hello(true, false, 0), LW_CODEC__LW_CODEC_NONE);
	cr_assert_eq(server_hello(true, true, LW_COMPRESS__LW_COMPRESS_ON),
		     LW_CODEC__LW_CODEC_ZSTD);
	cr_assert(ss.z.always);
	cr_assert_eq(server_hello(true, true, LW_COMPRESS__LW_COMPRESS_AUTO),
		     LW_CODEC__LW_CODEC_ZSTD);
	cr_assert(!ss.z.always);
	/* criu-imgd --compress off */
	cr_assert_eq(server_hello(false, true, LW_COMPRESS__LW_COMPRESS_ON),
		     LW_CODEC__LW_CODEC_NONE);
	/* codecs it does not know only */
	LwHello h = LW_HELLO__INIT;
	h.has_codecs = true;
	h.codecs = 1u << 5;
	server_session(true);
	cr_assert_eq(compress_hello(&ss, &h), LW_CODEC__LW_CODEC_NONE);
	compress_free(&sd);
}

/* compress_pages on the session, then what a client makes of it: the same bytes. */
static size_t server_chunk(LwPages *m, const uint8_t *raw, size_t len)
{
	*m = (LwPages)LW_PAGES__INIT;
	memcpy(ss.io.pay, raw, len);
	/* as pages.c does: decided once a frame, compressed when active */
	return compress_active(&ss) ? compress_pages(&ss, m, len) : len;
}

Test(zstd, server_on_compresses_what_shrinks)
{
	static uint8_t raw[RAW], back[RAW];
	struct wire_zstd d = {0};
	struct errmsg e = {""};
	LwPages m;

	cr_assert_eq(server_hello(true, true, LW_COMPRESS__LW_COMPRESS_ON),
		     LW_CODEC__LW_CODEC_ZSTD);
	text_pages(raw, RAW, 6);
	size_t n = server_chunk(&m, raw, RAW);
	cr_assert(n < RAW && m.has_codec && m.codec == LW_CODEC__LW_CODEC_ZSTD && m.has_raw_len &&
		  m.raw_len == RAW);
	cr_assert_eq(wire_zstd_unpack(&d, ss.io.pay, n, back, RAW, &e), 0, "%s", e.msg);
	cr_assert_arr_eq(raw, back, RAW);
	random_pages(raw, RAW, 7);
	cr_assert_eq(server_chunk(&m, raw, RAW), RAW, "incompressible: raw");
	cr_assert(!m.has_codec && !m.has_raw_len);
	cr_assert_arr_eq(ss.io.pay, raw, RAW);
	cr_assert_eq(server_chunk(&m, raw, 0), 0, "all zero pages: no payload");
	/* An older client, or --compress off: never. */
	server_hello(true, false, 0);
	text_pages(raw, RAW, 8);
	cr_assert_eq(server_chunk(&m, raw, RAW), RAW);
	cr_assert(!m.has_codec);
	wire_zstd_free(&d);
	compress_free(&sd);
}

static void sleep_ms(unsigned ms)
{
	usleep(ms * 1000u);
}

/* Windows in which the socket is full (a send has waited since the first) and takes
 * rate_bps bytes a second, until auto mode switches on (at most n windows). */
static void link_bound_windows(const uint8_t *raw, uint64_t rate_bps, int n)
{
	LwPages m;

	ss.io.t_block = mono_ns();
	for (int i = 0; i < n && !ss.z.on; i++) {
		server_chunk(&m, raw, RAW);
		ss.work.bytes += rate_bps * 60 / 1000;
		sleep_ms(60);
	}
}

Test(zstd, server_auto_follows_the_link, .timeout = 20)
{
	static uint8_t raw[RAW], noise[RAW];
	LwPages m;

	cr_assert_eq(server_hello(true, true, LW_COMPRESS__LW_COMPRESS_AUTO),
		     LW_CODEC__LW_CODEC_ZSTD);
	text_pages(raw, RAW, 9);
	random_pages(noise, RAW, 10);
	/* The socket takes everything at once: never compressed. */
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(server_chunk(&m, raw, RAW), RAW);
		sleep_ms(60);
	}
	cr_assert_eq(ss.z.raw, 0, "not even tried");
	/* The socket is full, at 100 Mbit/s: on after two such windows. */
	link_bound_windows(raw, 12500000, 5);
	cr_assert(ss.z.on && ss.z.probes == 1, "on after windows where the link was the limit");
	cr_assert_lt(server_chunk(&m, raw, RAW), RAW);
	cr_assert(m.has_codec);
	/* Still the link's limit, and what is sent shrinks: stays on. */
	sleep_ms(60);
	server_chunk(&m, raw, RAW);
	cr_assert(ss.z.on, "on while it shrinks what the link carries");
	/* Data that does not shrink: off, and no new probe before the backoff. */
	for (int i = 0; i < 3 && ss.z.on; i++) {
		sleep_ms(60);
		server_chunk(&m, noise, RAW);
	}
	cr_assert(!ss.z.on, "off when nothing shrinks");
	cr_assert_gt(ss.z.next_probe, mono_ns());
	cr_assert_eq(server_chunk(&m, raw, RAW), RAW);
	cr_assert(!m.has_codec);
	compress_free(&sd);
}

Test(zstd, server_auto_off_when_the_cpu_is_the_limit, .timeout = 20)
{
	static uint8_t raw[RAW];
	LwPages m;

	server_hello(true, true, LW_COMPRESS__LW_COMPRESS_AUTO);
	text_pages(raw, RAW, 11);
	/* A link that takes 10 GB/s raw while it is the limit. */
	link_bound_windows(raw, 10000000000ull, 5);
	cr_assert(ss.z.on);
	/* Now the socket takes everything and we spend the window compressing: far less than
	 * 10 GB/s of pages -> off. */
	ss.io.blocked_ns = conn_io_blocked_ns(&ss.io, mono_ns()); /* the wait ends */
	ss.io.t_block = 0;
	uint64_t until = mono_ns() + 120000000ull;
	while (ss.z.on && mono_ns() < until)
		server_chunk(&m, raw, RAW);
	cr_assert(!ss.z.on, "off when compressing delivers less than the link did raw");
	compress_free(&sd);
}

Test(zstd, server_auto_off_when_nothing_shrinks_though_the_socket_takes_all, .timeout = 20)
{
	static uint8_t raw[RAW], noise[RAW];
	LwPages m;

	server_hello(true, true, LW_COMPRESS__LW_COMPRESS_AUTO);
	text_pages(raw, RAW, 12);
	random_pages(noise, RAW, 13);
	link_bound_windows(raw, 12500000, 5);
	cr_assert(ss.z.on);
	/* The socket takes everything now, compressing costs little, and nothing shrinks:
	 * compressing cannot deliver more, so it stops. */
	ss.io.blocked_ns = conn_io_blocked_ns(&ss.io, mono_ns());
	ss.io.t_block = 0;
	for (int i = 0; i < 4 && ss.z.on; i++) {
		sleep_ms(60);
		server_chunk(&m, noise, RAW);
	}
	cr_assert(!ss.z.on, "off: the data does not shrink");
	compress_free(&sd);
}

Test(zstd, server_auto_never_on_loopback, .timeout = 20)
{
	static uint8_t raw[RAW];
	LwPages m;

	server_hello(true, true, LW_COMPRESS__LW_COMPRESS_AUTO);
	ss.local = true;
	text_pages(raw, RAW, 14);
	link_bound_windows(raw, 12500000, 5);
	cr_assert(!ss.z.on && ss.z.raw == 0, "a client on loopback: not even tried");
	/* --compress on is the client's to ask for, on loopback too. */
	server_hello(true, true, LW_COMPRESS__LW_COMPRESS_ON);
	ss.local = true;
	cr_assert_lt(server_chunk(&m, raw, RAW), RAW);
	compress_free(&sd);
}

/* ---- negotiation, the client's side, against a fake server ---- */

static struct wire_key fkey = {.len = 24};

/* One connection: HELLO_REPLY with codec (absent when < 0); exit status 10 + the HELLO's
 * codecs bits, or 2 on a failure. */
static void fake_server(int lfd, int codec)
{
	static uint8_t sc[WIRE_SCRATCH];
	uint8_t ch[WIRE_NONCE] = {9}, proof[WIRE_MAC];
	uint64_t dl = mono_ms() + 5000;
	struct wire_hdr h;
	ProtobufCMessage *m;
	struct errmsg why = {""};
	int fd = accept(lfd, NULL, NULL);

	if (fd < 0 || wire_recv(fd, sc, &h, &m, NULL, 0, dl, &why) || h.type != WT_HELLO)
		_exit(2);
	int offered = ((LwHello *)m)->has_codecs ? (int)((LwHello *)m)->codecs : 0;
	wire_free(m);
	LwHelloReply hr = LW_HELLO_REPLY__INIT;
	hr.version = WIRE_VERSION;
	hr.auth_required = true;
	hr.challenge = (ProtobufCBinaryData){sizeof(ch), ch};
	if (codec >= 0) {
		hr.has_codec = true;
		hr.codec = (LwCodec)codec;
	}
	wire_send(fd, sc, WT_HELLO_REPLY, &hr.base, NULL, 0, dl);
	while (!wire_recv(fd, sc, &h, &m, NULL, 0, dl, &why)) {
		if (h.type == WT_AUTH) {
			LwAuth *a = (LwAuth *)m;
			wire_auth_server_mac(&fkey, a->role, ch, a->nonce.data, proof);
			LwAuthOk ok = LW_AUTH_OK__INIT;
			ok.mac = (ProtobufCBinaryData){sizeof(proof), proof};
			wire_send(fd, sc, WT_AUTH_OK, &ok.base, NULL, 0, dl);
		} else if (h.type == WT_OPEN) {
			LwOpenReply orp = LW_OPEN_REPLY__INIT;
			orp.nr_tasks = 1;
			wire_send(fd, sc, WT_OPEN_REPLY, &orp.base, NULL, 0, dl);
		}
		wire_free(m);
	}
	_exit(10 + offered);
}

/* wire_client_open (class cls, c.compress = mode) against the fake: fd or -errno; what the
 * HELLO offered; the codec agreed. */
static int client_open(int mode, LwClass cls, int codec, int *offered, LwCodec *agreed,
		       struct errmsg *e)
{
	struct wire_client c = {.image = "img", .key = &fkey, .timeout_ms = 3000, .compress = mode};
	struct wire_open_info info = {0};
	static uint8_t buf[WIRE_SCRATCH];
	unsigned port;
	int st, lfd = loopback_listen(&port);

	cr_assert_geq(lfd, 0);
	snprintf(c.host, sizeof(c.host), "127.0.0.1");
	snprintf(c.port, sizeof(c.port), "%u", port);
	pid_t p = fork();
	cr_assert_geq(p, 0);
	if (p == 0)
		fake_server(lfd, codec);
	close(lfd);
	int fd = wire_client_open(&c, cls, buf, &info, e);
	if (fd >= 0)
		close(fd);
	cr_assert_eq(waitpid(p, &st, 0), p);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) >= 10, "the fake server failed");
	*offered = WEXITSTATUS(st) - 10;
	*agreed = info.codec;
	return fd;
}

Test(zstd, client_negotiation, .timeout = 30)
{
	const int zstd = 1 << LW_CODEC__LW_CODEC_ZSTD;
	const LwClass bulk = LW_CLASS__LW_CLASS_BULK;
	struct errmsg e = {""};
	int offered;
	LwCodec agreed;

	memset(fkey.k, 0x33, fkey.len);
	/* An older server (no codec in HELLO_REPLY): nothing compressed. */
	cr_assert_geq(client_open(LW_COMPRESS__LW_COMPRESS_AUTO, bulk, -1, &offered, &agreed, &e),
		      0, "%s", e.msg);
	cr_assert(offered == zstd && agreed == LW_CODEC__LW_CODEC_NONE);
	/* A server that agrees (on, auto). */
	cr_assert_geq(client_open(LW_COMPRESS__LW_COMPRESS_ON, bulk, LW_CODEC__LW_CODEC_ZSTD,
				  &offered, &agreed, &e),
		      0, "%s", e.msg);
	cr_assert(offered == zstd && agreed == LW_CODEC__LW_CODEC_ZSTD);
	/* A server that says none. */
	cr_assert_geq(client_open(LW_COMPRESS__LW_COMPRESS_ON, bulk, LW_CODEC__LW_CODEC_NONE,
				  &offered, &agreed, &e),
		      0, "%s", e.msg);
	cr_assert_eq(agreed, LW_CODEC__LW_CODEC_NONE);
	/* --compress off: nothing offered (an older server sees the HELLO it always saw), and
	 * a server that compresses anyway is refused. */
	cr_assert_geq(client_open(0, bulk, -1, &offered, &agreed, &e), 0, "%s", e.msg);
	cr_assert(offered == 0 && agreed == LW_CODEC__LW_CODEC_NONE);
	cr_assert_eq(client_open(0, bulk, LW_CODEC__LW_CODEC_ZSTD, &offered, &agreed, &e), -EPROTO);
	cr_assert(strstr(e.msg, "did not offer"), "%s", e.msg);
	/* A codec nobody knows. */
	cr_assert_eq(client_open(LW_COMPRESS__LW_COMPRESS_ON, bulk, 7, &offered, &agreed, &e),
		     -EPROTO);
	/* A META connection takes no PAGES: it offers nothing. */
	cr_assert_geq(client_open(LW_COMPRESS__LW_COMPRESS_ON, LW_CLASS__LW_CLASS_META, -1,
				  &offered, &agreed, &e),
		      0, "%s", e.msg);
	cr_assert_eq(offered, 0);
}

/* ---- the client's checks of compressed PAGES (source_imgd_zstd.c) ---- */

static struct page_source src;
static char key_path[] = "/tmp/test-zstd-key-XXXXXX";

static struct imgd_src *client_source(void)
{
	struct errmsg e = {""};
	int fd = mkstemp(key_path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "0123456789abcdef0123456789abcdef", 32), 32);
	close(fd);
	struct imgd_source_cfg cfg = {
	    .server = "127.0.0.1:1", .key_file = key_path, .compress = LW_COMPRESS__LW_COMPRESS_ON};
	cr_assert_eq(page_source_imgd(&src, &cfg, &e), 0, "%s", e.msg);
	unlink(key_path);
	return src.priv;
}

/* A PAGES frame of n text pages (page 1 zero), compressed into z: its payload length. */
static size_t make_frame(LwPages *p, uint8_t *zmap, uint64_t *sums, uint8_t *pages, uint8_t *z,
			 uint32_t n)
{
	struct wire_zstd c = {0};
	static const uint8_t zero[WIRE_PAGE];

	text_pages(pages, (size_t)n * WIRE_PAGE, 10);
	memset(pages + WIRE_PAGE, 0, WIRE_PAGE);
	*p = (LwPages)LW_PAGES__INIT;
	p->pid = 1;
	p->nr_pages = n;
	memset(zmap, 0, (n + 7) / 8);
	zmap[0] = 0x02;
	p->zero = (ProtobufCBinaryData){(n + 7) / 8, zmap};
	p->n_sums = n;
	p->sums = sums;
	for (uint32_t i = 0; i < n; i++)
		sums[i] = wire_page_sum(i == 1 ? zero : pages + (size_t)i * WIRE_PAGE);
	/* the payload: the data pages only */
	memmove(pages + WIRE_PAGE, pages + 2 * WIRE_PAGE, (size_t)(n - 2) * WIRE_PAGE);
	ssize_t len = wire_zstd_pack(&c, pages, (size_t)(n - 1) * WIRE_PAGE, z, RAW);
	cr_assert_gt(len, 0);
	p->has_codec = p->has_raw_len = true;
	p->codec = LW_CODEC__LW_CODEC_ZSTD;
	p->raw_len = (n - 1) * WIRE_PAGE;
	wire_zstd_free(&c);
	return (size_t)len;
}

/* inflate + unpack as the urgent and bulk paths do: 0, or -EBADMSG. */
static int take(struct imgd_src *s, const LwPages *p, const uint8_t *pay, size_t len, LwCodec c,
		uint8_t *out)
{
	const uint8_t *raw = imgd_inflate(s, p, pay, len, c);
	return raw ? imgd_unpack_pages(s, p, raw, out, SRC_STREAM, 0, NULL) : -EBADMSG;
}

Test(zstd, client_hostile_frames_install_nothing)
{
	static uint8_t pages[RAW], z[RAW], out[RAW], want[RAW];
	uint8_t zmap[1];
	uint64_t sums[8];
	LwPages p;
	struct imgd_src *s = client_source();
	const LwCodec ZS = LW_CODEC__LW_CODEC_ZSTD;

	size_t len = make_frame(&p, zmap, sums, pages, z, 8);
	text_pages(want, RAW, 10);
	memset(want + WIRE_PAGE, 0, WIRE_PAGE);
	cr_assert_eq(take(s, &p, z, len, ZS, out), 0, "a good frame");
	cr_assert_arr_eq(out, want, RAW);
	cr_assert_eq(s->zframes, 1);

	memset(out, 0xee, sizeof(out));
	uint64_t bad0 = s->bad_sums;
	/* Compressed on a connection that agreed to none. */
	cr_assert_eq(take(s, &p, z, len, LW_CODEC__LW_CODEC_NONE, out), -EBADMSG);
	/* raw_len beyond any frame (wire_check refuses it first; the buffer is checked too). */
	p.raw_len = 1u << 30;
	cr_assert_eq(take(s, &p, z, len, ZS, out), -EBADMSG);
	/* raw_len other than what the data decompresses to */
	p.raw_len = 6 * WIRE_PAGE;
	cr_assert_eq(take(s, &p, z, len, ZS, out), -EBADMSG);
	p.raw_len = 7 * WIRE_PAGE;
	/* corrupt data */
	z[len / 2] ^= 0xff;
	z[len / 2 + 1] ^= 0xff;
	cr_assert_eq(take(s, &p, z, len, ZS, out), -EBADMSG);
	z[len / 2] ^= 0xff;
	z[len / 2 + 1] ^= 0xff;
	/* truncated */
	cr_assert_eq(take(s, &p, z, len - 3, ZS, out), -EBADMSG);
	/* well-formed zstd of other bytes: the page checksums catch it */
	uint8_t other[RAW];
	struct wire_zstd c = {0};
	text_pages(other, RAW, 11);
	ssize_t olen = wire_zstd_pack(&c, other, 7 * WIRE_PAGE, z, RAW);
	cr_assert_gt(olen, 0);
	wire_zstd_free(&c);
	cr_assert_eq(take(s, &p, z, (size_t)olen, ZS, out), -EBADMSG);
	cr_assert_eq(s->bad_sums, bad0 + 6, "each counted");
	/* Nothing was placed by any of them before its checks: only the last one's pages
	 * before its first bad checksum (imgd_unpack_pages checks as it goes, the caller
	 * hands out nothing on -EBADMSG). */
	for (size_t i = 0; i < sizeof(out); i++)
		if (out[i] != 0xee)
			cr_assert_lt(i, WIRE_PAGE, "byte %zu written", i);
	src.ops->close(&src);
}

/* lazy-wire: framing, encode/decode round trips, receipt checks, HMAC, ids, key files, and
 * the handshake rules (mutual authentication, a key per role). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/ports.h"
#include "wire/wire.h"
#include "wire/wire_auth.h"
#include "wire/wire_client.h"
#include "wire/wire_io.h"

static uint8_t buf[WIRE_SCRATCH];

Test(wire, header_layout_is_big_endian)
{
	struct wire_hdr h = {WIRE_MAGIC, WT_PAGES, 0x01020304, 0x00002000};
	uint8_t out[WIRE_HDR_SIZE];
	const uint8_t want[WIRE_HDR_SIZE] = {0x4c, 0x57, 0x00, 0x0a, 0x01, 0x02,
					     0x03, 0x04, 0x00, 0x00, 0x20, 0x00};

	wire_hdr_put(out, &h);
	cr_assert_arr_eq(out, want, sizeof(want));
}

Test(wire, header_checks)
{
	struct wire_hdr h, got;
	uint8_t b[WIRE_HDR_SIZE];
	struct errmsg why = {""};

	h = (struct wire_hdr){WIRE_MAGIC, WT_HELLO, 10, 0};
	wire_hdr_put(b, &h);
	cr_assert_eq(wire_hdr_get(b, &got, &why), 0);
	cr_assert_eq(got.msg_len, 10);

	struct wire_hdr bad[] = {
	    {0x1234, WT_HELLO, 10, 0},				      /* magic */
	    {WIRE_MAGIC, 0, 10, 0},				      /* type 0 */
	    {WIRE_MAGIC, WT_MAX + 1, 10, 0},			      /* unknown type */
	    {WIRE_MAGIC, WT_HELLO, WIRE_MAX_MSG + 1, 0},	      /* message too long */
	    {WIRE_MAGIC, WT_PAGES, 10, WIRE_MAX_PAYLOAD + WIRE_PAGE}, /* payload too long */
	    {WIRE_MAGIC, WT_GET, 10, WIRE_PAGE}, /* payload where none belongs */
	    {WIRE_MAGIC, WT_GET, 10, 100},	 /* not whole pages, not PAGES */
	    {WIRE_MAGIC, WT_HELLO, 0xffffffffu, 0},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wire_hdr_put(b, &bad[i]);
		cr_assert_eq(wire_hdr_get(b, &got, &why), -EPROTO, "case %zu", i);
		cr_assert(why.msg[0]);
	}
}

/* Pack, parse the header back, unpack, check: the path every frame takes. */
static ProtobufCMessage *round_trip(unsigned type, const ProtobufCMessage *m, uint32_t plen,
				    int *check)
{
	struct wire_hdr h;
	struct errmsg why = {""};
	int n = wire_pack(type, m, plen, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	cr_assert_eq(wire_hdr_get(buf, &h, &why), 0, "%s", why.msg);
	cr_assert_eq(h.type, type);
	cr_assert_eq(h.msg_len + WIRE_HDR_SIZE, (uint32_t)n);
	ProtobufCMessage *u = wire_unpack(type, buf + WIRE_HDR_SIZE, h.msg_len);
	cr_assert_not_null(u);
	*check = wire_check(type, u, &h, &why);
	return u;
}

Test(wire, hello_round_trip)
{
	LwHello h = LW_HELLO__INIT;
	int rc;

	h.version_min = 1;
	h.version_max = 3;
	h.client = "test";
	LwHello *u = (LwHello *)round_trip(WT_HELLO, &h.base, 0, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(u->version_min, 1);
	cr_assert_eq(u->version_max, 3);
	cr_assert_str_eq(u->client, "test");
	wire_free(&u->base);

	h.version_min = 4;
	u = (LwHello *)round_trip(WT_HELLO, &h.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO, "inverted version range");
	wire_free(&u->base);
}

Test(wire, get_bounds)
{
	LwRange r[WIRE_MAX_RANGES + 1], *rp[WIRE_MAX_RANGES + 1];
	LwGet g = LW_GET__INIT;
	int rc;

	for (size_t i = 0; i <= WIRE_MAX_RANGES; i++) {
		r[i] = (LwRange)LW_RANGE__INIT;
		r[i].pid = 1;
		r[i].off = i * WIRE_PAGE;
		r[i].nr_pages = 1;
		rp[i] = &r[i];
	}
	g.req = 9;
	g.prio = LW_CLASS__LW_CLASS_BULK;
	g.ranges = rp;
	g.n_ranges = WIRE_MAX_RANGES;
	ProtobufCMessage *u = round_trip(WT_GET, &g.base, 0, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(((LwGet *)u)->n_ranges, WIRE_MAX_RANGES);
	wire_free(u);

	g.n_ranges = WIRE_MAX_RANGES + 1;
	wire_free(round_trip(WT_GET, &g.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "too many ranges");

	g.n_ranges = 1;
	r[0].off = 100;
	wire_free(round_trip(WT_GET, &g.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "unaligned");

	r[0].off = 0;
	r[0].nr_pages = WIRE_MAX_GET_PAGES + 1;
	wire_free(round_trip(WT_GET, &g.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "too many pages in a range");

	r[0].nr_pages = 0;
	wire_free(round_trip(WT_GET, &g.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "empty range");

	r[0].nr_pages = 16;
	r[0].off = UINT64_MAX & ~(uint64_t)(WIRE_PAGE - 1);
	wire_free(round_trip(WT_GET, &g.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "range wraps");

	r[0].off = 0;
	g.n_ranges = 2;
	r[0].nr_pages = r[1].nr_pages = WIRE_MAX_GET_PAGES / 2 + 1;
	wire_free(round_trip(WT_GET, &g.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "too many pages in all");

	g.n_ranges = 1;
	r[0].nr_pages = 1;
	g.prio = 7;
	wire_free(round_trip(WT_GET, &g.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "bad priority");
}

static LwPages make_pages(uint32_t n, uint8_t *zmap, uint64_t *sums)
{
	LwPages p = LW_PAGES__INIT;

	p.req = 3;
	p.pid = 10;
	p.off = 8 * WIRE_PAGE;
	p.nr_pages = n;
	p.zero.data = zmap;
	p.zero.len = (n + 7) / 8;
	p.sums = sums;
	p.n_sums = n;
	p.done = true;
	return p;
}

Test(wire, pages_payload_matches_zero_map)
{
	uint8_t zmap[8] = {0x05}; /* pages 0 and 2 are zero */
	uint64_t sums[WIRE_MAX_REPLY_PAGES + 1] = {0};
	int rc;

	cr_assert_eq(wire_count_zero(zmap, 10), 2);
	LwPages p = make_pages(10, zmap, sums);
	LwPages *u = (LwPages *)round_trip(WT_PAGES, &p.base, 8 * WIRE_PAGE, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(u->n_sums, 10);
	cr_assert(wire_zero_bit(u->zero.data, 0) && !wire_zero_bit(u->zero.data, 1));
	wire_free(&u->base);

	wire_free(round_trip(WT_PAGES, &p.base, 9 * WIRE_PAGE, &rc));
	cr_assert_eq(rc, -EPROTO, "payload larger than the map says");

	p.n_sums = 9;
	wire_free(round_trip(WT_PAGES, &p.base, 8 * WIRE_PAGE, &rc));
	cr_assert_eq(rc, -EPROTO, "a checksum missing");

	p = make_pages(10, zmap, sums);
	p.zero.len = 1;
	wire_free(round_trip(WT_PAGES, &p.base, 8 * WIRE_PAGE, &rc));
	cr_assert_eq(rc, -EPROTO, "bitmap too short");

	uint8_t big[16] = {0};
	p = make_pages(WIRE_MAX_REPLY_PAGES + 1, big, sums);
	wire_free(round_trip(WT_PAGES, &p.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "too many pages in one frame");
}

Test(wire, index_part_checks)
{
	LwExtent e[3], *ep[3];
	LwIndexPart x = LW_INDEX_PART__INIT;
	int rc;

	for (int i = 0; i < 3; i++) {
		e[i] = (LwExtent)LW_EXTENT__INIT;
		e[i].start = (uint64_t)(i + 1) * 0x10000;
		e[i].end = e[i].start + 4 * WIRE_PAGE;
		e[i].zero = i == 1;
		e[i].has_off = !e[i].zero;
		e[i].off = (uint64_t)i * 4 * WIRE_PAGE;
		ep[i] = &e[i];
	}
	x.pid = 5;
	x.nr_extents = 3;
	x.n_extents = 3;
	x.extents = ep;
	x.last = true;
	wire_free(round_trip(WT_INDEX_PART, &x.base, 0, &rc));
	cr_assert_eq(rc, 0);

	e[2].start = e[0].start;
	e[2].end = e[0].end;
	wire_free(round_trip(WT_INDEX_PART, &x.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "overlap");
	e[2].start = 0x30000;
	e[2].end = 0x30000 + 4 * WIRE_PAGE;

	e[0].has_off = false;
	wire_free(round_trip(WT_INDEX_PART, &x.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "data extent without offset");
	e[0].has_off = true;

	x.pid = 0;
	wire_free(round_trip(WT_INDEX_PART, &x.base, 0, &rc));
	cr_assert_eq(rc, -EPROTO, "pid 0");
}

Test(wire, truncated_and_garbage_messages_never_crash)
{
	LwOpenReply r = LW_OPEN_REPLY__INIT;
	int n = wire_pack(WT_OPEN_REPLY, &r.base, 0, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	for (int len = 0; len < n - (int)WIRE_HDR_SIZE; len++) {
		ProtobufCMessage *m = wire_unpack(WT_OPEN_REPLY, buf + WIRE_HDR_SIZE, (size_t)len);
		wire_free(m); /* NULL for missing required fields */
	}
	srand(1);
	for (int i = 0; i < 2000; i++) {
		uint8_t junk[64];
		for (size_t k = 0; k < sizeof(junk); k++)
			junk[k] = (uint8_t)rand();
		for (unsigned t = 1; t <= WT_MAX; t++)
			wire_free(wire_unpack(t, junk, (size_t)(rand() % 64)));
	}
	cr_assert_null(wire_unpack(0, buf, 1));
	cr_assert_null(wire_unpack(WT_HELLO, buf, WIRE_MAX_MSG + 1));
}

Test(wire, image_ids)
{
	const char *good[] = {"a", "img", "vm-1.2_3", "default"};
	/* The one rule (util/parse.h): the first character is a letter or a digit. */
	const char *bad[] = {"",    ".",   "..", "../x", "a/b", "/abs",
			     "x y", "a\n", "é",	 ".a",	 "-rf", "_x"};
	char longid[WIRE_MAX_ID + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert(wire_id_ok(good[i]), "%s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(!wire_id_ok(bad[i]), "%s", bad[i]);
	memset(longid, 'a', sizeof(longid));
	longid[WIRE_MAX_ID] = 0;
	cr_assert(wire_id_ok(longid));
	longid[WIRE_MAX_ID] = 'a';
	longid[WIRE_MAX_ID + 1] = 0;
	cr_assert(!wire_id_ok(longid));
}

/* wire_client_parse: HOST:PORT and [V6]:PORT (util/parse.h's parse_hostport). */
Test(wire, client_server_address)
{
	struct wire_client c = {0};

	cr_assert_eq(wire_client_parse(&c, "127.0.0.1:27027", NULL), 0);
	cr_assert_str_eq(c.host, "127.0.0.1");
	cr_assert_str_eq(c.port, "27027");
	cr_assert_eq(wire_client_parse(&c, "[::1]:80", NULL), 0);
	cr_assert_str_eq(c.host, "::1");
	cr_assert_str_eq(c.port, "80");
	cr_assert_eq(wire_client_parse(&c, "imgd.example-1:65535", NULL), 0);
	cr_assert_str_eq(c.host, "imgd.example-1");
	cr_assert_str_eq(c.port, "65535");
	const char *bad[] = {"",	   "host",   "host:",	":80",	 "host:x", "host:0",
			     "host:65536", "::1:80", "[::1]80", "[]:80", "a b:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct errmsg e = {""};
		cr_assert_eq(wire_client_parse(&c, bad[i], &e), -EINVAL, "%s", bad[i]);
		cr_assert(e.msg[0], "%s: no reason", bad[i]);
	}
}

/* A list of servers of one image: every one kept, the first in use, wire_client_use. */
Test(wire, client_server_list)
{
	struct wire_client c = {0};

	cr_assert_eq(wire_client_parse(&c, "10.0.0.1:1,[::1]:2,imgd-b:3", NULL), 0);
	cr_assert_eq(c.nsrv, 3);
	cr_assert_str_eq(c.host, "10.0.0.1");
	cr_assert_str_eq(c.port, "1");
	cr_assert_str_eq(c.srv[1].host, "::1");
	cr_assert_str_eq(c.srv[2].port, "3");
	wire_client_use(&c, 2);
	cr_assert_str_eq(c.host, "imgd-b");
	cr_assert_str_eq(c.port, "3");
	cr_assert_eq(wire_client_parse(&c, "a:1", NULL), 0);
	cr_assert_eq(c.nsrv, 1);
	const char *bad[] = {",a:1",
			     "a:1,",
			     "a:1,,b:2",
			     ",",
			     "a:1,b",
			     "a:1,a:1",
			     "a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct errmsg e = {""};
		cr_assert_eq(wire_client_parse(&c, bad[i], &e), -EINVAL, "%s", bad[i]);
		cr_assert(e.msg[0], "%s: no reason", bad[i]);
	}
}

static void hex(const char *s, uint8_t *out)
{
	for (size_t i = 0; s[2 * i]; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
}

/* RFC 4231 test cases 1 and 2: proves the MAC is HMAC-SHA256. */
Test(wire, hmac_sha256_rfc4231)
{
	uint8_t key[20], out[WIRE_MAC], want[WIRE_MAC];

	memset(key, 0x0b, sizeof(key));
	cr_assert_eq(wire_hmac(key, sizeof(key), "Hi There", 8, out), 0);
	hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want);
	cr_assert_arr_eq(out, want, WIRE_MAC);
	cr_assert_eq(wire_hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, out),
		     0);
	hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want);
	cr_assert_arr_eq(out, want, WIRE_MAC);
}

#define READ LW_ROLE__LW_ROLE_READ
#define PUBLISH LW_ROLE__LW_ROLE_PUBLISH

Test(wire, auth_proofs_bind_both_nonces)
{
	struct wire_key k = {.len = 32};
	uint8_t ch[WIRE_NONCE] = {1}, no[WIRE_NONCE] = {2}, a[WIRE_MAC], b[WIRE_MAC];

	memset(k.k, 7, k.len);
	if (wire_auth_client_mac(&k, READ, ch, no, a))
		cr_skip_test("no HMAC");
	wire_auth_server_mac(&k, READ, ch, no, b);
	cr_assert(!wire_mac_equal(a, b), "client and server proofs differ");
	no[5] ^= 1;
	wire_auth_client_mac(&k, READ, ch, no, b);
	cr_assert(!wire_mac_equal(a, b), "the nonce is bound");
	no[5] ^= 1;
	k.k[0] ^= 1;
	wire_auth_client_mac(&k, READ, ch, no, b);
	cr_assert(!wire_mac_equal(a, b), "the key is bound");
}

/* The role is in every proof: one for reading is never one for publishing, either way. */
Test(wire, auth_proofs_bind_the_role)
{
	struct wire_key k = {.len = 32};
	uint8_t ch[WIRE_NONCE] = {3}, no[WIRE_NONCE] = {4}, r[WIRE_MAC], p[WIRE_MAC];

	memset(k.k, 9, k.len);
	if (wire_auth_client_mac(&k, READ, ch, no, r))
		cr_skip_test("no HMAC");
	cr_assert_eq(wire_auth_client_mac(&k, PUBLISH, ch, no, p), 0);
	cr_assert(!wire_mac_equal(r, p), "client proofs of the two roles differ");
	wire_auth_server_mac(&k, READ, ch, no, r);
	wire_auth_server_mac(&k, PUBLISH, ch, no, p);
	cr_assert(!wire_mac_equal(r, p), "server proofs of the two roles differ");
	cr_assert_eq(wire_auth_client_mac(&k, (LwRole)7, ch, no, p), -EINVAL, "no unknown role");
	cr_assert_eq(wire_auth_server_mac(&k, (LwRole)0, ch, no, p), -EINVAL);
}

Test(wire, auth_role_checked_on_receipt)
{
	uint8_t n[WIRE_NONCE] = {0}, m[WIRE_MAC] = {0};
	struct wire_hdr h = {WIRE_MAGIC, WT_AUTH, 0, 0};
	struct errmsg why = {""};
	LwAuth a = LW_AUTH__INIT;

	a.nonce = (ProtobufCBinaryData){sizeof(n), n};
	a.mac = (ProtobufCBinaryData){sizeof(m), m};
	cr_assert_eq(a.role, READ, "a client that names no role reads");
	cr_assert_eq(wire_check(WT_AUTH, &a.base, &h, &why), 0);
	a.has_role = true;
	a.role = PUBLISH;
	cr_assert_eq(wire_check(WT_AUTH, &a.base, &h, &why), 0);
	a.role = (LwRole)3;
	cr_assert_eq(wire_check(WT_AUTH, &a.base, &h, &why), -EPROTO);
	cr_assert_str_eq(why.msg, "AUTH role unknown");
}

/* What an authenticated connection may send: a read key reads, a publish key publishes. */
Test(wire, role_rules)
{
	static const unsigned reads[] = {WT_OPEN, WT_INDEX_GET, WT_GET, WT_META_LIST, WT_META_GET};
	static const unsigned pubs[] = {WT_UPLOAD, WT_UPLOAD_FILE, WT_UPLOAD_END};

	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		cr_assert(wire_role_may(READ, reads[i]), "%s", wire_type_name(reads[i]));
		cr_assert(!wire_role_may(PUBLISH, reads[i]), "publish key: %s",
			  wire_type_name(reads[i]));
	}
	for (size_t i = 0; i < sizeof(pubs) / sizeof(pubs[0]); i++) {
		cr_assert(wire_role_may(PUBLISH, pubs[i]), "%s", wire_type_name(pubs[i]));
		cr_assert(!wire_role_may(READ, pubs[i]), "read key: %s", wire_type_name(pubs[i]));
	}
	cr_assert(wire_role_may(READ, WT_CLOSE) && wire_role_may(PUBLISH, WT_CLOSE));
	cr_assert(!wire_role_may(READ, WT_HELLO) && !wire_role_may(PUBLISH, WT_AUTH));
	cr_assert(!wire_role_may((LwRole)0, WT_OPEN) && !wire_role_may((LwRole)0, WT_UPLOAD));
}

/* The client's rule: a key of its own, and a server that asks for it. */
Test(wire, client_hello_rules)
{
	struct errmsg e = {""};

	cr_assert_eq(wire_client_hello_ok(true, true, &e), 0);
	cr_assert_eq(wire_client_hello_ok(true, false, &e), -EACCES, "a keyless server");
	cr_assert(strstr(e.msg, "does not ask for a key"), "%s", e.msg);
	cr_assert_eq(wire_client_hello_ok(false, true, &e), -EACCES, "no key");
	cr_assert(strstr(e.msg, "no key"), "%s", e.msg);
	cr_assert_eq(wire_client_hello_ok(false, false, &e), -EACCES, "no key, keyless server");
	cr_assert_eq(wire_client_hello_ok(false, false, NULL), -EACCES, "no text wanted");
}

/* ---- key files ---- */

static void key_file(char *path, const char *text, mode_t mode)
{
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

Test(wire, key_file_rules)
{
	char path[] = "/tmp/test_wire_keyXXXXXX";
	struct errmsg err = {""};
	struct wire_key k;

	key_file(path, "short\n", 0600);
	cr_assert_eq(wire_key_load(path, &k, &err), -EINVAL, "too short");
	unlink(path);
	strcpy(path, "/tmp/test_wire_keyXXXXXX");
	key_file(path, "0123456789abcdef0123\n", 0600);
	int rc = wire_key_load(path, &k, &err);
	if (rc && strstr(err.msg, "gnutls"))
		cr_skip_test("no libgnutls");
	cr_assert_eq(rc, 0, "%s", err.msg);
	cr_assert_eq(k.len, 20, "the trailing newline is not part of the key");
	cr_assert_eq(wire_key_load("/nonexistent/key", &k, &err), -ENOENT);
	unlink(path);
}

/* Group or others may not use a key file: refused with the mode and the fix. */
Test(wire, key_file_private_mode)
{
	static const mode_t bad[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601, 0660, 0666, 0777};
	char path[] = "/tmp/test_wire_keyXXXXXX", want[64];
	struct errmsg err = {""};
	struct wire_key k;

	key_file(path, "0123456789abcdef0123\n", 0600);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(chmod(path, bad[i]), 0);
		k.len = 99;
		cr_assert_eq(wire_key_load(path, &k, &err), -EPERM, "mode %04o", bad[i]);
		snprintf(want, sizeof(want), "has mode %04o", (unsigned)bad[i]);
		cr_assert(strstr(err.msg, want) && strstr(err.msg, "chmod 600"), "%s", err.msg);
		cr_assert_eq(k.len, 0, "nothing of a refused key is kept");
	}
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(wire_key_load(path, &k, &err), 0, "0400: %s", err.msg);
	unlink(path);
}

/* A key file owned by someone else (not root, not us) is refused: they could change it. */
Test(wire, key_file_owner)
{
	char path[] = "/tmp/test_wire_keyXXXXXX";
	struct errmsg err = {""};
	struct wire_key k;

	key_file(path, "0123456789abcdef0123\n", 0600);
	if (geteuid() != 0 || chown(path, 65534, 65534)) {
		unlink(path);
		cr_skip_test("needs root to give the file away");
	}
	cr_assert_eq(wire_key_load(path, &k, &err), -EPERM);
	cr_assert(strstr(err.msg, "owned by uid 65534") && strstr(err.msg, "owned by root"), "%s",
		  err.msg);
	cr_assert_eq(chown(path, 0, 0), 0);
	cr_assert_eq(wire_key_load(path, &k, &err), 0, "%s", err.msg);
	unlink(path);
}

/* Not a regular file: refused, and a FIFO does not block the loader. */
Test(wire, key_file_not_regular, .timeout = 5)
{
	char dir[] = "/tmp/test_wire_kdXXXXXX", fifo[64];
	struct errmsg err = {""};
	struct wire_key k;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	cr_assert_eq(wire_key_load(fifo, &k, &err), -EINVAL);
	cr_assert(strstr(err.msg, "not a regular file"), "%s", err.msg);
	cr_assert_eq(chmod(dir, 0700), 0);
	cr_assert_eq(wire_key_load(dir, &k, &err), -EINVAL, "a directory");
	unlink(fifo);
	rmdir(dir);
}

Test(wire, key_same)
{
	struct wire_key a = {.len = 20}, b = {.len = 20};

	memset(a.k, 1, a.len);
	memset(b.k, 1, b.len);
	cr_assert(wire_key_same(&a, &b));
	b.k[19] = 2;
	cr_assert(!wire_key_same(&a, &b));
	b.k[19] = 1;
	b.len = 19;
	cr_assert(!wire_key_same(&a, &b), "a prefix is another key");
}

/* ---- the client's handshake against fake servers ---- */

enum fake_mode {
	FAKE_NOAUTH,	 /* HELLO_REPLY auth_required = false, then serves anything */
	FAKE_BADPROOF,	 /* asks for the key, answers AUTH with a wrong AUTH_OK */
	FAKE_SKIP_PROOF, /* asks for the key, answers AUTH with OPEN_REPLY */
	FAKE_GOOD,	 /* holds the key: checks AUTH, proves it, serves OPEN */
	FAKE_OTHER_ROLE, /* holds the key but proves it for the other role */
};

static struct wire_key fake_key = {.len = 24};

/* One connection in a child: exit status 1 if the client sent OPEN or UPLOAD, else 0. */
static void fake_serve(int lfd, enum fake_mode mode)
{
	static uint8_t sc[WIRE_SCRATCH];
	uint8_t ch[WIRE_NONCE] = {5}, proof[WIRE_MAC];
	uint64_t dl = wire_now_ms() + 5000;
	struct wire_hdr h;
	ProtobufCMessage *m;
	struct errmsg why = {""};
	int fd = accept(lfd, NULL, NULL), opened = 0;

	if (fd < 0 || wire_recv(fd, sc, &h, &m, NULL, 0, dl, &why))
		_exit(2);
	wire_free(m);
	LwHelloReply hr = LW_HELLO_REPLY__INIT;
	hr.version = WIRE_VERSION;
	hr.auth_required = mode != FAKE_NOAUTH;
	hr.challenge = (ProtobufCBinaryData){sizeof(ch), ch};
	wire_send(fd, sc, WT_HELLO_REPLY, &hr.base, NULL, 0, dl);
	while (!wire_recv(fd, sc, &h, &m, NULL, 0, dl, &why)) {
		if (h.type == WT_OPEN || h.type == WT_UPLOAD)
			opened = 1;
		if (h.type == WT_AUTH) {
			LwAuth *a = (LwAuth *)m;
			LwRole r =
			    mode == FAKE_OTHER_ROLE ? (a->role == READ ? PUBLISH : READ) : a->role;
			wire_auth_server_mac(&fake_key, r, ch, a->nonce.data, proof);
			if (mode == FAKE_BADPROOF)
				proof[0] ^= 1;
			LwAuthOk ok = LW_AUTH_OK__INIT;
			ok.mac = (ProtobufCBinaryData){sizeof(proof), proof};
			LwOpenReply orp = LW_OPEN_REPLY__INIT;
			if (mode == FAKE_SKIP_PROOF)
				wire_send(fd, sc, WT_OPEN_REPLY, &orp.base, NULL, 0, dl);
			else
				wire_send(fd, sc, WT_AUTH_OK, &ok.base, NULL, 0, dl);
		} else if (h.type == WT_OPEN) {
			LwOpenReply orp = LW_OPEN_REPLY__INIT;
			orp.nr_tasks = 1;
			wire_send(fd, sc, WT_OPEN_REPLY, &orp.base, NULL, 0, dl);
		}
		wire_free(m);
	}
	_exit(opened);
}

/* wire_client_open against a fake server: its fd or errno, err, whether OPEN went out. */
static int against(enum fake_mode mode, const struct wire_key *key, struct errmsg *err, int *opened)
{
	struct wire_client c = {.image = "img", .key = key, .timeout_ms = 3000};
	struct wire_open_info info;
	unsigned port;
	int st, lfd = loopback_listen(&port);

	cr_assert_geq(lfd, 0);
	snprintf(c.host, sizeof(c.host), "127.0.0.1");
	snprintf(c.port, sizeof(c.port), "%u", port);
	pid_t p = fork();
	cr_assert_geq(p, 0);
	if (p == 0)
		fake_serve(lfd, mode);
	close(lfd);
	int fd = wire_client_open(&c, LW_CLASS__LW_CLASS_META, buf, &info, err);
	if (fd >= 0)
		close(fd);
	if (key == NULL && fd < 0)
		kill(p, SIGKILL); /* the client never connected: nobody to wait for */
	cr_assert_eq(waitpid(p, &st, 0), p);
	*opened = WIFEXITED(st) && WEXITSTATUS(st) == 1;
	return fd;
}

Test(wire, client_refuses_servers_that_do_not_prove_the_key, .timeout = 30)
{
	struct errmsg err = {""};
	int opened;
	static const struct {
		enum fake_mode mode;
		int rc;
		const char *why;
	} bad[] = {
	    {FAKE_NOAUTH, -EACCES, "does not ask for a key"},
	    {FAKE_BADPROOF, -EACCES, "does not hold our key"},
	    {FAKE_SKIP_PROOF, -EPROTO, "expected AUTH_OK"},
	    {FAKE_OTHER_ROLE, -EACCES, "does not hold our key"},
	};

	memset(fake_key.k, 0x42, fake_key.len);
	uint8_t t[WIRE_MAC];
	if (wire_hmac(fake_key.k, fake_key.len, "x", 1, t))
		cr_skip_test("no HMAC");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = against(bad[i].mode, &fake_key, &err, &opened);
		cr_assert_eq(fd, bad[i].rc, "mode %d: %d %s", bad[i].mode, fd, err.msg);
		cr_assert(strstr(err.msg, bad[i].why), "mode %d: %s", bad[i].mode, err.msg);
		cr_assert(!opened, "mode %d: OPEN was sent to a server that proved nothing",
			  bad[i].mode);
	}
	/* No key: refused before connecting, whatever the server. */
	cr_assert_eq(against(FAKE_NOAUTH, NULL, &err, &opened), -EACCES);
	cr_assert(strstr(err.msg, "no key") && !opened, "%s", err.msg);
	/* The server that holds the key is talked to. */
	int fd = against(FAKE_GOOD, &fake_key, &err, &opened);
	cr_assert_geq(fd, 0, "%s", err.msg);
	cr_assert(opened);
}

/* Blocking I/O: a frame over a socketpair, and a peer that closes mid-frame. */
Test(wire, send_recv_socketpair)
{
	int sv[2];
	uint8_t rs[WIRE_SCRATCH], pay[WIRE_MAX_PAYLOAD], data[2 * WIRE_PAGE];
	uint8_t zmap[1] = {0x2};
	uint64_t sums[3] = {0};
	struct wire_hdr h;
	ProtobufCMessage *m;
	struct errmsg why = {""};

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(data, 0x5a, sizeof(data));
	LwPages p = make_pages(3, zmap, sums);
	cr_assert_eq(
	    wire_send(sv[0], buf, WT_PAGES, &p.base, data, sizeof(data), wire_now_ms() + 1000), 0);
	cr_assert_eq(wire_recv(sv[1], rs, &h, &m, pay, sizeof(pay), wire_now_ms() + 1000, &why), 0);
	cr_assert_eq(h.payload_len, sizeof(data));
	cr_assert_arr_eq(pay, data, sizeof(data));
	wire_free(m);

	/* Half a header, then EOF. */
	cr_assert_eq(write(sv[0], buf, 5), 5);
	close(sv[0]);
	cr_assert_eq(wire_recv(sv[1], rs, &h, &m, pay, sizeof(pay), wire_now_ms() + 1000, &why),
		     -ECONNRESET);
	close(sv[1]);
}

Test(wire, recv_times_out)
{
	int sv[2];
	uint8_t rs[WIRE_SCRATCH];
	struct wire_hdr h;
	ProtobufCMessage *m;
	struct errmsg why = {""};

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(wire_recv(sv[1], rs, &h, &m, NULL, 0, wire_now_ms() + 50, &why), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
}

Test(wire, checksums_and_zero_pages)
{
	static uint8_t page[WIRE_PAGE];

	memset(page, 0, sizeof(page));
	cr_assert(wire_page_is_zero(page));
	uint64_t z = wire_page_sum(page);
	page[4095] = 1;
	cr_assert(!wire_page_is_zero(page));
	cr_assert_neq(wire_page_sum(page), z);
}

/* ---- metadata files (restore by image id) ---- */

Test(wire, meta_names)
{
	const char *good[] = {"inventory.img", "core-1.img",  "tmpfs-dev-5.tar.gz.img",
			      "stats-dump",    "a+b_c-d.img", "pages"};
	const char *bad[] = {"",      "..",	      ".",	     ".hidden",	   "a/b",
			     "../x",  "x/../y",	      "a..b",	     "sp ace.img", "nl\n.img",
			     "tab\t", "\xc3\xa9.img", "back\\slash", "colon:x"};
	char longname[WIRE_MAX_META_NAME + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert(wire_meta_name_ok(good[i]), "%s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(!wire_meta_name_ok(bad[i]) && !wire_meta_served(bad[i]), "case %zu", i);
	memset(longname, 'a', sizeof(longname));
	longname[WIRE_MAX_META_NAME] = 0;
	cr_assert(wire_meta_name_ok(longname));
	longname[WIRE_MAX_META_NAME] = 'a';
	longname[WIRE_MAX_META_NAME + 1] = 0;
	cr_assert(!wire_meta_name_ok(longname));
	/* Served: not page data, its checksums, or logs. */
	cr_assert(wire_meta_served("pages-1.img"));
	cr_assert_eq(wire_meta_pages_id("pages-12.img"), 12);
	cr_assert_eq(wire_meta_pages_id("pages-99999999999.img"), -1);
	cr_assert_eq(wire_meta_pages_id("pages-.img"), -1);
	cr_assert_eq(wire_meta_pages_id("pages-1.imgx"), -1);
	cr_assert_eq(wire_meta_pages_id("core-1.img"), -1);
	cr_assert(!wire_meta_served("pages-1.img.xxh64"));
	cr_assert(!wire_meta_served("pages-x.img"));
	cr_assert(!wire_meta_served("dump.log"));
	cr_assert(wire_meta_served("pagemap-1.img"));
	cr_assert(wire_meta_served("inventory.img"));
}

Test(wire, meta_list_reply_bounds)
{
	static LwMetaFile f[WIRE_META_LIST_PART + 1];
	static LwMetaFile *fp[WIRE_META_LIST_PART + 1];
	static char names[WIRE_META_LIST_PART + 1][WIRE_MAX_META_NAME + 1];
	LwMetaListReply r = LW_META_LIST_REPLY__INIT;
	int rc;

	/* The largest reply: every file with a name of the longest size fits one frame. */
	for (size_t i = 0; i <= WIRE_META_LIST_PART; i++) {
		memset(names[i], 'a', WIRE_MAX_META_NAME);
		snprintf(names[i] + WIRE_MAX_META_NAME - 8, 9, "%08zu", i);
		lw_meta_file__init(&f[i]);
		f[i].name = names[i];
		f[i].size = WIRE_MAX_META_FILE;
		fp[i] = &f[i];
	}
	r.files = fp;
	r.n_files = WIRE_META_LIST_PART;
	r.last = true;
	LwMetaListReply *u = (LwMetaListReply *)round_trip(WT_META_LIST_REPLY, &r.base, 0, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(u->n_files, WIRE_META_LIST_PART);
	wire_free(&u->base);

	r.n_files = WIRE_META_LIST_PART + 1;
	u = (LwMetaListReply *)round_trip(WT_META_LIST_REPLY, &r.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO, "too many files");
	wire_free(&u->base);

	r.n_files = 2;
	f[1].size = WIRE_MAX_META_FILE + 1ull;
	u = (LwMetaListReply *)round_trip(WT_META_LIST_REPLY, &r.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO, "file too large");
	wire_free(&u->base);
	f[1].size = 1;

	fp[1] = &f[0];
	u = (LwMetaListReply *)round_trip(WT_META_LIST_REPLY, &r.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO, "repeated name");
	wire_free(&u->base);
	fp[1] = &f[1];

	const char *hostile[] = {"../x.img", "a/b", ".x", "pages-1.img.xxh64", "x.log"};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		f[1].name = (char *)hostile[i];
		fp[0] = &f[1];
		r.n_files = 1;
		u = (LwMetaListReply *)round_trip(WT_META_LIST_REPLY, &r.base, 0, &rc);
		cr_assert_eq(rc, -EPROTO, "%s", hostile[i]);
		wire_free(&u->base);
	}
}

Test(wire, meta_get_and_data_bounds)
{
	LwMetaGet g = LW_META_GET__INIT;
	LwMetaData d = LW_META_DATA__INIT;
	static uint8_t data[WIRE_META_CHUNK + 1];
	int rc;

	g.name = "core-1.img";
	g.off = 0;
	ProtobufCMessage *u = round_trip(WT_META_GET, &g.base, 0, &rc);
	cr_assert_eq(rc, 0);
	wire_free(u);
	g.off = WIRE_MAX_META_SPARSE + 1ull;
	u = round_trip(WT_META_GET, &g.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO, "offset beyond the cap");
	wire_free(u);
	g.off = 0;
	g.name = "../etc/passwd";
	u = round_trip(WT_META_GET, &g.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO, "path");
	wire_free(u);

	d.name = "core-1.img";
	d.size = 100;
	d.off = 40;
	d.data = (ProtobufCBinaryData){60, data};
	u = round_trip(WT_META_DATA, &d.base, 0, &rc);
	cr_assert_eq(rc, 0);
	wire_free(u);
	struct {
		uint64_t size, off;
		size_t len;
	} bad[] = {
	    {100, 40, 61},					  /* beyond the size */
	    {100, 101, 0},					  /* offset beyond */
	    {100, 40, 0},					  /* empty before the end */
	    {WIRE_MAX_META_FILE + 1ull, 0, 1},			  /* file too large */
	    {WIRE_META_CHUNK + 10ull, 0, WIRE_META_CHUNK + 1ull}, /* chunk too large */
	    {UINT64_MAX, UINT64_MAX - 1, 8},			  /* overflow */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d.size = bad[i].size;
		d.off = bad[i].off;
		d.data.len = bad[i].len;
		u = round_trip(WT_META_DATA, &d.base, 0, &rc);
		cr_assert_eq(rc, -EPROTO, "case %zu", i);
		wire_free(u);
	}
	/* Skips: only in pages files, without data, within the size. */
	d.name = "pages-1.img";
	d.size = 1 << 20;
	d.off = 4096;
	d.data.len = 0;
	d.has_skip = true;
	d.skip = d.size - d.off;
	u = round_trip(WT_META_DATA, &d.base, 0, &rc);
	cr_assert_eq(rc, 0);
	wire_free(u);
	d.skip++;
	u = round_trip(WT_META_DATA, &d.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO, "skip beyond the size");
	wire_free(u);
	d.skip = 0;
	u = round_trip(WT_META_DATA, &d.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO, "empty skip");
	wire_free(u);
	d.skip = 4096;
	d.data.len = 1;
	u = round_trip(WT_META_DATA, &d.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO, "skip with data");
	wire_free(u);
	d.data.len = 0;
	d.name = "core-1.img";
	d.size = 100000;
	u = round_trip(WT_META_DATA, &d.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO, "skip in a file that is not a pages file");
	wire_free(u);
	d.has_skip = false;

	/* The end of a file: an empty chunk at off == size is fine. */
	d.size = 100;
	d.off = 100;
	d.data.len = 0;
	u = round_trip(WT_META_DATA, &d.base, 0, &rc);
	cr_assert_eq(rc, 0);
	wire_free(u);

	/* No raw payload on META frames. */
	struct wire_hdr h = {WIRE_MAGIC, WT_META_DATA, 10, WIRE_PAGE}, got;
	uint8_t b[WIRE_HDR_SIZE];
	struct errmsg why = {""};
	wire_hdr_put(b, &h);
	cr_assert_eq(wire_hdr_get(b, &got, &why), -EPROTO);

	/* META class is a valid OPEN class; others are not. */
	LwOpen o = LW_OPEN__INIT;
	o.image = "img";
	o.class_ = LW_CLASS__LW_CLASS_META;
	u = round_trip(WT_OPEN, &o.base, 0, &rc);
	cr_assert_eq(rc, 0);
	wire_free(u);
}

/* ---- uploads (publish) ---- */

Test(wire, upload_bounds)
{
	LwUpload u = LW_UPLOAD__INIT;
	LwUploadFile f = LW_UPLOAD_FILE__INIT;
	LwUploadEnd e = LW_UPLOAD_END__INIT;
	static uint8_t data[WIRE_META_CHUNK + 1];
	int rc;

	const char *ids[] = {"job1", ".upload-job1.3", "..", "a/b", ""};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		u.image = (char *)ids[i];
		ProtobufCMessage *m = round_trip(WT_UPLOAD, &u.base, 0, &rc);
		cr_assert_eq(rc, i == 0 ? 0 : -EPROTO, "id '%s'", ids[i]);
		wire_free(m);
	}

	f.name = "pages-1.img.xxh64"; /* checksum files travel with uploads */
	f.size = 100;
	f.off = 0;
	f.data = (ProtobufCBinaryData){100, data};
	ProtobufCMessage *m = round_trip(WT_UPLOAD_FILE, &f.base, 0, &rc);
	cr_assert_eq(rc, 0);
	wire_free(m);
	f.name = "empty.img";
	f.size = 0;
	f.data.len = 0;
	m = round_trip(WT_UPLOAD_FILE, &f.base, 0, &rc);
	cr_assert_eq(rc, 0, "an empty file is one empty chunk");
	wire_free(m);
	struct {
		const char *name;
		uint64_t size, off;
		size_t len;
	} bad[] = {
	    {"../x.img", 4, 0, 4},
	    {"a/b", 4, 0, 4},
	    {".hidden", 4, 0, 4},
	    {"dump.log", 4, 0, 4},
	    {"core-1.img", 4, 0, 5},			     /* beyond the size */
	    {"core-1.img", 4, 5, 0},			     /* offset beyond */
	    {"core-1.img", 4, 0, 0},			     /* empty chunk of a file with data */
	    {"core-1.img", WIRE_MAX_META_SPARSE + 1, 0, 1},  /* too large */
	    {"core-1.img", 1 << 20, 0, WIRE_META_CHUNK + 1}, /* chunk too large */
	    {"core-1.img", UINT64_MAX, UINT64_MAX - 1, 8},   /* overflow */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f.name = (char *)bad[i].name;
		f.size = bad[i].size;
		f.off = bad[i].off;
		f.data.len = bad[i].len;
		m = round_trip(WT_UPLOAD_FILE, &f.base, 0, &rc);
		cr_assert_eq(rc, -EPROTO, "case %zu", i);
		wire_free(m);
	}

	e.nr_files = WIRE_MAX_META_FILES;
	m = round_trip(WT_UPLOAD_END, &e.base, 0, &rc);
	cr_assert_eq(rc, 0);
	wire_free(m);
	e.nr_files = WIRE_MAX_META_FILES + 1;
	m = round_trip(WT_UPLOAD_END, &e.base, 0, &rc);
	cr_assert_eq(rc, -EPROTO);
	wire_free(m);

	/* The largest UPLOAD_FILE fits a frame. */
	f.name = "core-1.img";
	f.size = WIRE_META_CHUNK;
	f.off = 0;
	f.data.len = WIRE_META_CHUNK;
	m = round_trip(WT_UPLOAD_FILE, &f.base, 0, &rc);
	cr_assert_eq(rc, 0);
	wire_free(m);
}

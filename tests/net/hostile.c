/*
 * hostile: clients that break the rules against criu-imgd, each checked to
 * be refused (an ERROR of the right code and/or a closed connection), and a
 * well-behaved client that must still be served after all of them.
 *
 *   hostile --server IPV4:PORT --key F [--upload-key F] [--image ID]
 *
 * --key is the readers' key (criu-imgd --auth-key); with --upload-key (the server runs
 * --accept-uploads with it) the role cases use the publishers' key too. Exit 0 when every
 * case behaved.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"
#include "lib/src_wait.h"
#include "source/source.h"
#include "wire/wire_auth.h"
#include "wire/wire_client.h"
#include "wire/wire_io.h"

#define T_MS 5000

static struct wire_client cl;
static struct wire_key key, upkey;
static bool have_upkey;
static int32_t good_pid;
static uint64_t good_off;
static uint8_t scratch[WIRE_SCRATCH];
static uint8_t payload[WIRE_MAX_PAYLOAD];
static int failures;

static int dial(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(cl.port))};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, cl.host, &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("hostile: connect");
		exit(2);
	}
	return fd;
}

/* The next frame: its type (WT_ERROR: *code set), 0 on a closed connection, -1 timeout. */
static int next(int fd, int *code, uint32_t *req)
{
	struct wire_hdr h;
	ProtobufCMessage *m;
	struct errmsg why;
	int rc =
	    wire_recv(fd, scratch, &h, &m, payload, sizeof(payload), wire_now_ms() + T_MS, &why);

	if (rc == -ETIMEDOUT)
		return -1;
	if (rc)
		return 0;
	if (h.type == WT_ERROR) {
		*code = ((LwError *)m)->code;
		if (req)
			*req = ((LwError *)m)->has_req ? ((LwError *)m)->req : UINT32_MAX;
	}
	wire_free(m);
	return h.type;
}

/* Read frames until an ERROR (its code) or the end; then the connection must close. */
static void expect_refused(const char *name, int fd, int want_code)
{
	int code = 0, t;

	for (int i = 0; i < 64; i++) {
		t = next(fd, &code, NULL);
		if (t <= 0 || t == WT_ERROR)
			break;
	}
	bool closed = next(fd, &code, NULL) == 0;
	bool ok = closed && (!want_code || code == want_code);
	printf("%s %s: %s (error code %d)\n", ok ? "PASS" : "FAIL", name,
	       closed ? "connection closed" : "connection left open", code);
	failures += !ok;
	close(fd);
}

static void send_raw(int fd, const void *buf, size_t len)
{
	if (wire_write_all(fd, buf, len, wire_now_ms() + T_MS))
		perror("hostile: send");
}

static void send_msg(int fd, unsigned type, const ProtobufCMessage *m)
{
	if (wire_send(fd, scratch, type, m, NULL, 0, wire_now_ms() + T_MS))
		perror("hostile: send");
}

static void hello(int fd, uint8_t challenge[WIRE_NONCE])
{
	LwHello h = LW_HELLO__INIT;
	int code;

	h.version_min = h.version_max = WIRE_VERSION;
	send_msg(fd, WT_HELLO, &h.base);
	struct wire_hdr hd;
	ProtobufCMessage *m;
	struct errmsg why;
	if (wire_recv(fd, scratch, &hd, &m, NULL, 0, wire_now_ms() + T_MS, &why) ||
	    hd.type != WT_HELLO_REPLY) {
		fprintf(stderr, "hostile: no HELLO_REPLY\n");
		exit(2);
	}
	memcpy(challenge, ((LwHelloReply *)m)->challenge.data, WIRE_NONCE);
	wire_free(m);
	(void)code;
}

/* AUTH for role with k; the proof damaged unless good; role sent as is (even unknown). */
static void auth_as(int fd, const uint8_t challenge[WIRE_NONCE], const struct wire_key *k,
		    LwRole role, bool good)
{
	uint8_t nonce[WIRE_NONCE] = {1}, mac[WIRE_MAC] = {0};
	LwAuth a = LW_AUTH__INIT;

	wire_auth_client_mac(k, role, challenge, nonce, mac);
	if (!good)
		mac[0] ^= 1;
	a.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
	a.mac = (ProtobufCBinaryData){sizeof(mac), mac};
	a.has_role = true;
	a.role = role;
	send_msg(fd, WT_AUTH, &a.base);
}

static void authenticate(int fd, const uint8_t challenge[WIRE_NONCE], bool good)
{
	auth_as(fd, challenge, &key, LW_ROLE__LW_ROLE_READ, good);
}

static int open_image(const char *id)
{
	uint8_t ch[WIRE_NONCE];
	int fd = dial(), code = 0;

	hello(fd, ch);
	authenticate(fd, ch, true);
	if (next(fd, &code, NULL) != WT_AUTH_OK) {
		fprintf(stderr, "hostile: authentication failed\n");
		exit(2);
	}
	LwOpen o = LW_OPEN__INIT;
	o.image = (char *)id;
	o.class_ = LW_CLASS__LW_CLASS_URGENT;
	send_msg(fd, WT_OPEN, &o.base);
	return fd;
}

static void bad_get(const char *name, int fd, int32_t pid, uint64_t off, uint32_t n, size_t nranges,
		    int want)
{
	static LwRange r[WIRE_MAX_RANGES + 2];
	static LwRange *rp[WIRE_MAX_RANGES + 2];
	LwGet g = LW_GET__INIT;
	int code = 0;
	uint32_t req = 0;

	for (size_t i = 0; i < nranges; i++) {
		r[i] = (LwRange)LW_RANGE__INIT;
		r[i].pid = pid;
		r[i].off = off;
		r[i].nr_pages = n;
		rp[i] = &r[i];
	}
	g.req = 77;
	g.prio = LW_CLASS__LW_CLASS_URGENT;
	g.n_ranges = nranges;
	g.ranges = rp;
	send_msg(fd, WT_GET, &g.base);
	int t = next(fd, &code, &req);
	bool ok = t == WT_ERROR && code == want && req == 77;
	printf("%s %s: %s code %d for request %u\n", ok ? "PASS" : "FAIL", name,
	       wire_type_name(t > 0 ? (unsigned)t : 0), code, req);
	failures += !ok;
}

/* A GET of the good page on fd must come back as one PAGES frame. */
static bool good_get(int fd)
{
	int code = 0;
	LwRange r = LW_RANGE__INIT, *rp = &r;
	LwGet g = LW_GET__INIT;

	r.pid = good_pid;
	r.off = good_off;
	r.nr_pages = 1;
	g.req = 5;
	g.prio = LW_CLASS__LW_CLASS_URGENT;
	g.n_ranges = 1;
	g.ranges = &rp;
	send_msg(fd, WT_GET, &g.base);
	return next(fd, &code, NULL) == WT_PAGES;
}

static void cases_framing(void)
{
	uint8_t junk[256];
	int fd;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	fd = dial();
	send_raw(fd, junk, sizeof(junk));
	expect_refused("garbage bytes", fd, LW_ERR__LW_E_PROTO);

	/* A header announcing 4 GiB. */
	uint8_t hdr[WIRE_HDR_SIZE];
	struct wire_hdr h = {WIRE_MAGIC, WT_HELLO, 0xffffffffu, 0};
	wire_hdr_put(hdr, &h);
	fd = dial();
	send_raw(fd, hdr, sizeof(hdr));
	expect_refused("oversized message length", fd, LW_ERR__LW_E_PROTO);

	h = (struct wire_hdr){WIRE_MAGIC, WT_HELLO, 0, WIRE_PAGE};
	wire_hdr_put(hdr, &h);
	fd = dial();
	send_raw(fd, hdr, sizeof(hdr));
	expect_refused("payload from a client", fd, LW_ERR__LW_E_PROTO);

	h = (struct wire_hdr){WIRE_MAGIC, 999, 0, 0};
	wire_hdr_put(hdr, &h);
	fd = dial();
	send_raw(fd, hdr, sizeof(hdr));
	expect_refused("unknown frame type", fd, LW_ERR__LW_E_PROTO);

	/* A HELLO whose protobuf body is garbage. */
	h = (struct wire_hdr){WIRE_MAGIC, WT_HELLO, 16, 0};
	wire_hdr_put(hdr, &h);
	fd = dial();
	send_raw(fd, hdr, sizeof(hdr));
	send_raw(fd, junk, 16);
	expect_refused("malformed protobuf", fd, LW_ERR__LW_E_PROTO);

	LwHello v = LW_HELLO__INIT;
	v.version_min = v.version_max = 99;
	fd = dial();
	send_msg(fd, WT_HELLO, &v.base);
	expect_refused("unknown protocol version", fd, LW_ERR__LW_E_VERSION);

	/* Half a frame, then the client vanishes: the server must carry on. */
	fd = dial();
	send_raw(fd, hdr, 5);
	close(fd);
}

static void cases_handshake(const char *image)
{
	uint8_t ch[WIRE_NONCE];
	int fd;

	fd = dial();
	hello(fd, ch);
	LwOpen o = LW_OPEN__INIT;
	o.image = (char *)image;
	o.class_ = LW_CLASS__LW_CLASS_URGENT;
	send_msg(fd, WT_OPEN, &o.base);
	expect_refused("OPEN without the key", fd, LW_ERR__LW_E_PROTO);
	fd = dial();
	hello(fd, ch);
	LwRange r = LW_RANGE__INIT, *rp = &r;
	LwGet g = LW_GET__INIT;
	r.pid = good_pid;
	r.nr_pages = 1;
	g.prio = LW_CLASS__LW_CLASS_URGENT;
	g.n_ranges = 1;
	g.ranges = &rp;
	send_msg(fd, WT_GET, &g.base);
	expect_refused("GET without the key", fd, LW_ERR__LW_E_PROTO);
	fd = dial();
	hello(fd, ch);
	authenticate(fd, ch, false);
	expect_refused("wrong key (bad MAC)", fd, LW_ERR__LW_E_AUTH);
	static const char *const bad_ids[] = {"..",   ".",   "../img", "img/../..",
					      "/etc", "a/b", "x\ny",   "nonexistent-image"};
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		char name[96];
		snprintf(name, sizeof(name), "image id '%s'", bad_ids[i]);
		for (char *p = name; *p; p++)
			if (*p == '\n')
				*p = '~';
		fd = open_image(bad_ids[i]);
		bool known_bad = i + 1 < sizeof(bad_ids) / sizeof(bad_ids[0]);
		expect_refused(name, fd, known_bad ? LW_ERR__LW_E_PROTO : LW_ERR__LW_E_NOIMAGE);
	}
}

/*
 * AUTH for role with k, then one frame of type (OPEN or UPLOAD), which must be refused with
 * want; type 0: the AUTH itself must be.
 */
static void role_case(const char *name, const struct wire_key *k, LwRole role, unsigned type,
		      const char *image, int want)
{
	uint8_t ch[WIRE_NONCE];
	int code = 0, fd = dial();

	hello(fd, ch);
	auth_as(fd, ch, k, role, true);
	if (!type) {
		expect_refused(name, fd, want);
		return;
	}
	if (next(fd, &code, NULL) != WT_AUTH_OK) {
		printf("FAIL %s: not authenticated (code %d)\n", name, code);
		failures++;
		close(fd);
		return;
	}
	LwOpen o = LW_OPEN__INIT;
	LwUpload u = LW_UPLOAD__INIT;
	o.image = (char *)image;
	o.class_ = LW_CLASS__LW_CLASS_META;
	u.image = "hostile-upload";
	if (type == WT_OPEN)
		send_msg(fd, WT_OPEN, &o.base);
	else
		send_msg(fd, WT_UPLOAD, &u.base);
	expect_refused(name, fd, want);
}

/* A key per role: each may do its own part only (docs/protocol.md "Authentication"). */
static void cases_roles(const char *image)
{
	role_case("read key tries to publish (UPLOAD after AUTH as reader)", &key,
		  LW_ROLE__LW_ROLE_READ, WT_UPLOAD, image, LW_ERR__LW_E_AUTH);
	role_case("read key claims the publish role", &key, LW_ROLE__LW_ROLE_PUBLISH, 0, image,
		  LW_ERR__LW_E_AUTH);
	role_case("unknown role", &key, (LwRole)3, 0, image, LW_ERR__LW_E_PROTO);
	if (!have_upkey)
		return;
	role_case("publish key tries to read (OPEN after AUTH as publisher)", &upkey,
		  LW_ROLE__LW_ROLE_PUBLISH, WT_OPEN, image, LW_ERR__LW_E_AUTH);
	role_case("publish key claims the read role", &upkey, LW_ROLE__LW_ROLE_READ, 0, image,
		  LW_ERR__LW_E_AUTH);
}

static void cases_requests(const char *image)
{
	int code = 0;
	int fd = open_image(image);

	if (next(fd, &code, NULL) != WT_OPEN_REPLY) {
		printf("FAIL open %s: no OPEN_REPLY (code %d)\n", image, code);
		failures++;
		close(fd);
		return;
	}
	bad_get("GET of a pid not in the image", fd, 999999, 0, 1, 1, LW_ERR__LW_E_RANGE);
	bad_get("GET past the lazy data", fd, good_pid, 1ull << 40, 1, 1, LW_ERR__LW_E_RANGE);
	bad_get("GET of an unaligned offset", fd, good_pid, good_off + 1, 1, 1, LW_ERR__LW_E_LIMIT);
	bad_get("GET of too many pages", fd, good_pid, good_off, WIRE_MAX_GET_PAGES + 1, 1,
		LW_ERR__LW_E_LIMIT);
	bad_get("GET of too many ranges", fd, good_pid, good_off, 1, WIRE_MAX_RANGES + 1,
		LW_ERR__LW_E_LIMIT);
	bad_get("GET whose range wraps", fd, good_pid, UINT64_MAX & ~4095ull, 16, 1,
		LW_ERR__LW_E_LIMIT);
	bool ok = good_get(fd);
	printf("%s a good GET on the same connection after the bad ones\n", ok ? "PASS" : "FAIL");
	failures += !ok;
	close(fd);
}

/* Find one data page of the image (for the well-behaved requests), through the index. */
static int pick_good_page(const char *server, const char *image, const char *keyfile)
{
	struct imgd_source_cfg c = {server, image, keyfile, 2, 5000, 4, NULL, 0, false, 0, 0};
	struct page_source s;
	struct img_set set;
	struct errmsg err = {""};

	if (page_source_imgd(&s, &c, &err) || s.ops->load_index(&s, &set, &err)) {
		fprintf(stderr, "hostile: %s\n", err.msg);
		s.ops->close(&s);
		return -1;
	}
	for (size_t i = 0; i < set.nr_tasks && !good_pid; i++)
		for (size_t k = 0; k < set.tasks[i].nr_extents && !good_pid; k++)
			if (!set.tasks[i].extents[k].zero) {
				good_pid = set.tasks[i].pid;
				good_off = set.tasks[i].extents[k].pages_off;
			}
	img_set_free(&set);
	s.ops->close(&s);
	return good_pid ? 0 : -1;
}

/* After all of that, a normal client through the real page source. */
static void case_normal(const char *server, const char *image, const char *keyfile)
{
	struct imgd_source_cfg c = {server, image, keyfile, 2, 5000, 4, NULL, 0, false, 0, 0};
	struct page_source s;
	struct img_set set;
	struct errmsg err = {""};
	uint8_t buf[4096];

	bool ok = !page_source_imgd(&s, &c, &err) && !s.ops->load_index(&s, &set, &err);
	if (ok) {
		const struct img_task *t = img_set_find(&set, good_pid);
		ok = t && !src_read_waiting(&s, t, good_off, buf, sizeof(buf));
		img_set_free(&set);
	}
	s.ops->close(&s);
	printf("%s a well-behaved client is served after the hostile ones %s\n",
	       ok ? "PASS" : "FAIL", err.msg);
	failures += !ok;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"server", required_argument, NULL, 's'},
					   {"image", required_argument, NULL, 'i'},
					   {"key", required_argument, NULL, 'k'},
					   {"upload-key", required_argument, NULL, 'u'},
					   {0}};
	const char *server = NULL, *image = "default", *keyfile = NULL, *upfile = NULL;
	struct errmsg err;
	int o;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 's':
			server = optarg;
			break;
		case 'i':
			image = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'u':
			upfile = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!server || !keyfile || wire_client_parse(&cl, server, NULL)) {
		fprintf(stderr, "usage: hostile --server IPV4:PORT --key FILE [--upload-key FILE] "
				"[--image ID]\n");
		return 2;
	}
	if (wire_key_load(keyfile, &key, &err) || (upfile && wire_key_load(upfile, &upkey, &err))) {
		fprintf(stderr, "hostile: %s\n", err.msg);
		return 2;
	}
	have_upkey = upfile != NULL;
	log_level = LOG_ERROR;
	if (pick_good_page(server, image, keyfile))
		return 2;
	cases_framing();
	cases_handshake(image);
	cases_roles(image);
	cases_requests(image);
	case_normal(server, image, keyfile);
	printf("hostile: %d failures\n", failures);
	return failures ? 1 : 0;
}

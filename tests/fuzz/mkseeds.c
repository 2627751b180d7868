/*
 * Seed maker for fuzz_wire_server (run by tests/fuzz/mkseeds.sh): what real clients send,
 * made with the project's own encoder (wire_pack) and, for AUTH, the proof a client holding
 * FUZZ_KEY (readers) or FUZZ_UPLOAD_KEY (publishers) computes for the challenge the harness's
 * server sends (FUZZ_CHALLENGE_BYTE): valid in the harness, so the fuzzer starts past the
 * handshake. The GETs ask for lazy data of the harness's image (fuzz_write_image).
 *
 *   mkseeds OUTDIR        writes OUTDIR/NAME, one input per scenario
 *   mkseeds --image DIR   writes the harness's image into DIR (for the client captures)
 */
#define FUZZ_WITH_IMAGES
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "wire/wire.h"
#include "wire/wire_auth.h"

static uint8_t buf[1 << 20];
static size_t len;
static const char *outdir;

static void put(unsigned type, const ProtobufCMessage *m)
{
	int n = wire_pack(type, m, 0, buf + len, sizeof(buf) - len);
	if (n < 0)
		fuzz_die("wire_pack");
	len += (size_t)n;
}

static void begin(uint8_t cfg)
{
	len = 0;
	buf[len++] = cfg;
}

static void next_conn(void)
{
	memcpy(buf + len, FUZZ_SEP, FUZZ_SEP_LEN);
	len += FUZZ_SEP_LEN;
}

static void save(const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	FILE *f = fopen(path, "w");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		fuzz_die("cannot write a seed");
}

static void hello(void)
{
	LwHello h = LW_HELLO__INIT;
	h.version_min = h.version_max = 1;
	h.client = "criu-lazyd";
	put(WT_HELLO, &h.base);
}

/* HELLO offering zstd, mode on (auto: 1): PAGES may come compressed. */
static void hello_zstd(int mode)
{
	LwHello h = LW_HELLO__INIT;
	h.version_min = h.version_max = 1;
	h.client = "criu-lazyd";
	h.has_codecs = h.has_compress = true;
	h.codecs = 1u << LW_CODEC__LW_CODEC_ZSTD;
	h.compress = (LwCompress)mode;
	put(WT_HELLO, &h.base);
}

/* AUTH for role (1 read, 2 publish) with that role's key over the harness's challenge. */
static void auth(int role)
{
	const char *key = role == 1 ? FUZZ_KEY : FUZZ_UPLOAD_KEY;
	uint8_t msg[12 + 2 * WIRE_NONCE], mac[WIRE_MAC], nonce[WIRE_NONCE];

	memset(nonce, 0x11, sizeof(nonce));
	memcpy(msg, role == 1 ? "lazy-wire-c1" : "lazy-wire-cp", 12);
	memset(msg + 12, FUZZ_CHALLENGE_BYTE, WIRE_NONCE);
	memcpy(msg + 12 + WIRE_NONCE, nonce, WIRE_NONCE);
	if (wire_hmac((const uint8_t *)key, strlen(key), msg, sizeof(msg), mac))
		fuzz_die("wire_hmac");
	LwAuth a = LW_AUTH__INIT;
	a.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
	a.mac = (ProtobufCBinaryData){sizeof(mac), mac};
	a.has_role = true;
	a.role = role;
	put(WT_AUTH, &a.base);
}

static void open_img(const char *id, LwClass cls)
{
	LwOpen o = LW_OPEN__INIT;
	o.image = (char *)id;
	o.class_ = cls;
	put(WT_OPEN, &o.base);
}

static void get(uint32_t req, LwClass prio, size_t n, const uint64_t *off, const uint32_t *pages)
{
	LwRange r[8], *rp[8];
	LwGet g = LW_GET__INIT;

	for (size_t i = 0; i < n; i++) {
		lw_range__init(&r[i]);
		r[i].pid = FUZZ_IMG_PID;
		r[i].off = off[i];
		r[i].nr_pages = pages[i];
		rp[i] = &r[i];
	}
	g.req = req;
	g.prio = prio;
	g.n_ranges = n;
	g.ranges = rp;
	put(WT_GET, &g.base);
}

static void simple(unsigned type)
{
	const ProtobufCMessageDescriptor *d = wire_descriptor(type);
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	protobuf_c_message_init(d, m);
	put(type, m);
	free(m);
}

static void meta_list(const char *after)
{
	LwMetaList l = LW_META_LIST__INIT;
	l.after = (char *)after;
	put(WT_META_LIST, &l.base);
}

static void meta_get(const char *name, uint64_t off)
{
	LwMetaGet g = LW_META_GET__INIT;
	g.name = (char *)name;
	g.off = off;
	put(WT_META_GET, &g.base);
}

static void upload_file(const char *name, const void *data, size_t n)
{
	LwUploadFile f = LW_UPLOAD_FILE__INIT;
	f.name = (char *)name;
	f.off = 0;
	f.size = n;
	f.data = (ProtobufCBinaryData){n, (uint8_t *)data};
	put(WT_UPLOAD_FILE, &f.base);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--image")) {
		/* the harness's image, for a live criu-imgd to serve to the capture */
		int fd = open(argv[2], O_RDONLY | O_DIRECTORY);
		return fd < 0 || fuzz_write_image(fd, true) ? 1 : 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR | --image DIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	/* The harness image's lazy data in pages-7.img: pages 1..11 and 12..20. */
	const uint64_t P = WIRE_PAGE;
	enum { DIR = 0, ROOT_UP = 1, ROOT = 2 };

	/* urgent: index, then GETs */
	begin(DIR);
	hello();
	auth(1);
	open_img("default", LW_CLASS__LW_CLASS_URGENT);
	simple(WT_INDEX_GET);
	get(1, LW_CLASS__LW_CLASS_URGENT, 1, (uint64_t[]){1 * P}, (uint32_t[]){6});
	get(2, LW_CLASS__LW_CLASS_URGENT, 2, (uint64_t[]){12 * P, 7 * P}, (uint32_t[]){8, 4});
	save("urgent-index-get");

	/* bulk: pipelined GETs, one out of range */
	begin(DIR);
	hello();
	auth(1);
	open_img("default", LW_CLASS__LW_CLASS_BULK);
	get(7, LW_CLASS__LW_CLASS_BULK, 3, (uint64_t[]){1 * P, 8 * P, 16 * P},
	    (uint32_t[]){3, 3, 4});
	get(8, LW_CLASS__LW_CLASS_URGENT, 1, (uint64_t[]){3 * P}, (uint32_t[]){1});
	get(9, LW_CLASS__LW_CLASS_BULK, 1, (uint64_t[]){0}, (uint32_t[]){2});
	save("bulk-gets");

	/* the same with zstd agreed (on) */
	begin(DIR);
	hello_zstd(LW_COMPRESS__LW_COMPRESS_ON);
	auth(1);
	open_img("default", LW_CLASS__LW_CLASS_BULK);
	get(7, LW_CLASS__LW_CLASS_BULK, 3, (uint64_t[]){1 * P, 8 * P, 16 * P},
	    (uint32_t[]){3, 3, 4});
	get(8, LW_CLASS__LW_CLASS_URGENT, 1, (uint64_t[]){12 * P}, (uint32_t[]){8});
	save("bulk-gets-zstd");

	/* meta: list in two parts, files, a sparse pages file (data, then a skip) */
	begin(DIR);
	hello();
	auth(1);
	open_img("default", LW_CLASS__LW_CLASS_META);
	meta_list(NULL);
	meta_list("mm-100.img");
	meta_get("inventory.img", 0);
	meta_get("pages-7.img", 0);
	meta_get("pages-7.img", 1 * P);
	meta_get("stats-dump", 3);
	simple(WT_CLOSE);
	save("meta");

	/* root: an image by id on one connection, a publish refused on the next */
	begin(ROOT);
	hello();
	auth(1);
	open_img("img", LW_CLASS__LW_CLASS_URGENT);
	get(1, LW_CLASS__LW_CLASS_URGENT, 1, (uint64_t[]){12 * P}, (uint32_t[]){8});
	next_conn();
	hello();
	auth(2);
	save("root-read");

	/* publish a tiny image (one task without memory), then read it by id */
	static uint8_t inv[16], ps[64];
	size_t ninv = 0, nps = 0;
	{
		ImgInventoryEntry ie = IMG_INVENTORY_ENTRY__INIT;
		ie.img_version = 2;
		ninv = fuzz_put_magic(inv, 0x58313116u, 0);
		fuzz_put_entry(inv, &ninv, &ie.base);
		ImgPstreeEntry pe = IMG_PSTREE_ENTRY__INIT;
		pe.pid = 9;
		pe.pgid = pe.sid = 9;
		nps = fuzz_put_magic(ps, 0x54564319u, 0x50273030u);
		fuzz_put_entry(ps, &nps, &pe.base);
	}
	begin(ROOT_UP);
	hello();
	auth(2);
	LwUpload u = LW_UPLOAD__INIT;
	u.image = "new";
	put(WT_UPLOAD, &u.base);
	upload_file("inventory.img", inv, ninv);
	upload_file("pstree.img", ps, nps);
	upload_file("stats-dump", "", 0);
	LwUploadEnd e = LW_UPLOAD_END__INIT;
	e.nr_files = 3;
	put(WT_UPLOAD_END, &e.base);
	next_conn();
	hello();
	auth(1);
	open_img("new", LW_CLASS__LW_CLASS_URGENT);
	simple(WT_INDEX_GET);
	save("upload-then-read");

	/* an upload cut short: its temp dir must go */
	begin(ROOT_UP);
	hello();
	auth(2);
	u.image = "cut";
	put(WT_UPLOAD, &u.base);
	upload_file("inventory.img", inv, ninv);
	save("upload-cut");

	/* protocol errors: a GET before OPEN, a bad version range */
	begin(DIR);
	hello();
	get(1, LW_CLASS__LW_CLASS_URGENT, 1, (uint64_t[]){1 * P}, (uint32_t[]){1});
	next_conn();
	LwHello h = LW_HELLO__INIT;
	h.version_min = 2;
	h.version_max = 3;
	put(WT_HELLO, &h.base);
	save("errors");
	return 0;
}

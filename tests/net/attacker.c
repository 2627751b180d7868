/*
 * attacker: the other side of the security tests (tests/net/security.sh), speaking lazy-wire
 * by hand so that it works against any criu-imgd or client, old or new, and never refuses
 * anything itself.
 *
 *   attacker impostor DIR PORTFILE SECONDS
 *       A keyless criu-imgd impostor on 127.0.0.1 (any free port, written to PORTFILE): every
 *       HELLO gets auth_required = false, every OPEN an OPEN_REPLY, a META_LIST the regular
 *       files of DIR, a META_GET their bytes. One line per frame it gets on stdout
 *       ("got OPEN image=ID", ...). Exits after SECONDS.
 *   attacker read HOST:PORT ID DSTDIR [KEY]
 *       Read image ID's metadata files (pages files with their non-lazy memory) into DSTDIR,
 *       authenticating with KEY as a reader only when the server asks. Exit 0 if it read
 *       any byte ("read N files, B bytes"), 1 if refused.
 *   attacker publish HOST:PORT ID SRCDIR KEY ROLE [HOLD]
 *       Upload SRCDIR's regular files as image ID, authenticating with KEY for ROLE (read,
 *       publish, or none: no role field, as clients before roles); with HOLD, wait HOLD
 *       seconds before UPLOAD_END. Exit 0 if published, 1 if refused (the reason printed).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire/wire_auth.h"
#include "wire/wire_io.h"

#define T_MS 10000u
#define MAX_FILES 256u

static uint8_t scratch[WIRE_SCRATCH], frame[WIRE_SCRATCH], chunk[WIRE_META_CHUNK];

/* ---- the impostor ---- */

struct srcfile {
	char name[WIRE_MAX_META_NAME + 1];
	uint64_t size;
};

static size_t list_dir(const char *dir, struct srcfile *f)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct stat st;
	char path[4096];

	for (struct dirent *e; d && n < MAX_FILES && (e = readdir(d));) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!wire_meta_served(e->d_name) || lstat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		memcpy(f[n].name, e->d_name, strlen(e->d_name) + 1); /* served: <= 128 bytes */
		f[n++].size = (uint64_t)st.st_size;
	}
	if (d)
		closedir(d);
	return n;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct srcfile *)a)->name, ((const struct srcfile *)b)->name);
}

static void imp_list(int fd, const char *dir, uint64_t dl)
{
	static struct srcfile f[MAX_FILES];
	static LwMetaFile mf[MAX_FILES], *mp[MAX_FILES];
	size_t n = list_dir(dir, f);

	qsort(f, n, sizeof(f[0]), name_cmp);
	for (size_t i = 0; i < n; i++) {
		mf[i] = (LwMetaFile)LW_META_FILE__INIT;
		mf[i].name = f[i].name;
		mf[i].size = f[i].size;
		mp[i] = &mf[i];
	}
	LwMetaListReply r = LW_META_LIST_REPLY__INIT;
	r.n_files = n;
	r.files = mp;
	r.last = true;
	wire_send(fd, scratch, WT_META_LIST_REPLY, &r.base, NULL, 0, dl);
}

static void imp_get(int fd, const char *dir, const LwMetaGet *g, uint64_t dl)
{
	char path[4096];
	struct stat st;
	int in;

	snprintf(path, sizeof(path), "%s/%s", dir, g->name);
	in = open(path, O_RDONLY | O_NOFOLLOW);
	if (in < 0 || fstat(in, &st)) {
		if (in >= 0)
			close(in);
		return;
	}
	ssize_t got = pread(in, chunk, sizeof(chunk), (off_t)g->off);
	close(in);
	LwMetaData d = LW_META_DATA__INIT;
	d.name = g->name;
	d.off = g->off;
	d.size = (uint64_t)st.st_size;
	d.data = (ProtobufCBinaryData){got > 0 ? (size_t)got : 0, chunk};
	int n = wire_pack(WT_META_DATA, &d.base, 0, frame, sizeof(frame));
	if (n > 0)
		wire_write_all(fd, frame, (size_t)n, dl);
}

/* One connection, until it ends or stalls: frames logged and answered. */
static void imp_conn(int fd, const char *dir)
{
	struct wire_hdr h;
	ProtobufCMessage *m;
	struct errmsg why;
	uint8_t ch[WIRE_NONCE] = {7};
	uint64_t dl = wire_now_ms() + T_MS;

	for (unsigned frames = 0; frames < 100000; frames++) {
		if (wire_recv(fd, scratch, &h, &m, NULL, 0, dl, &why))
			break;
		printf("got %s", wire_type_name(h.type));
		if (h.type == WT_OPEN)
			printf(" image=%s", ((LwOpen *)m)->image);
		printf("\n");
		fflush(stdout);
		if (h.type == WT_HELLO) {
			LwHelloReply r = LW_HELLO_REPLY__INIT;
			r.version = WIRE_VERSION;
			r.challenge = (ProtobufCBinaryData){sizeof(ch), ch};
			r.server = "criu-imgd";
			wire_send(fd, scratch, WT_HELLO_REPLY, &r.base, NULL, 0, dl);
		} else if (h.type == WT_OPEN) {
			LwOpenReply r = LW_OPEN_REPLY__INIT;
			r.nr_tasks = 1;
			wire_send(fd, scratch, WT_OPEN_REPLY, &r.base, NULL, 0, dl);
		} else if (h.type == WT_META_LIST) {
			imp_list(fd, dir, dl);
		} else if (h.type == WT_META_GET) {
			imp_get(fd, dir, (LwMetaGet *)m, dl);
		}
		wire_free(m);
	}
	close(fd);
}

static int impostor(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (argc < 5 || lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 8) ||
	    getsockname(lfd, (struct sockaddr *)&a, &al))
		return 2;
	FILE *pf = fopen(argv[3], "w");
	if (!pf)
		return 2;
	fprintf(pf, "%u\n", ntohs(a.sin_port));
	fclose(pf);
	uint64_t end = wire_now_ms() + (uint64_t)atoi(argv[4]) * 1000;
	for (uint64_t now; (now = wire_now_ms()) < end;) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		int fd = accept(lfd, NULL, NULL);
		if (fd >= 0)
			imp_conn(fd, argv[2]);
	}
	return 0;
}

/* ---- the clients ---- */

static int dial(const char *server)
{
	char host[256];
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(host, sizeof(host), "%s", server);
	char *colon = strrchr(host, ':');
	if (!colon || fd < 0)
		return -1;
	*colon = 0;
	a.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The next frame, which must be of type (an ERROR's text is printed). 0 or -1. */
static int expect(int fd, unsigned type, ProtobufCMessage **m)
{
	struct wire_hdr h;
	struct errmsg why;
	int rc = wire_recv(fd, scratch, &h, m, NULL, 0, wire_now_ms() + T_MS, &why);

	if (rc) {
		printf("refused: %s\n", why.msg);
		return -1;
	}
	if (h.type == type)
		return 0;
	printf("refused: %s%s\n", wire_type_name(h.type),
	       h.type == WT_ERROR ? ((LwError *)*m)->text : "");
	wire_free(*m);
	return -1;
}

/* HELLO, and AUTH when the server asks and we have a key (role 0: no role field). */
static int handshake(int fd, const char *keyfile, LwRole role)
{
	struct wire_key key;
	ProtobufCMessage *m;
	struct errmsg err;
	uint8_t ch[WIRE_NONCE], nonce[WIRE_NONCE] = {9}, mac[WIRE_MAC];
	uint64_t dl = wire_now_ms() + T_MS;
	LwHello h = LW_HELLO__INIT;

	h.version_min = h.version_max = WIRE_VERSION;
	if (wire_send(fd, scratch, WT_HELLO, &h.base, NULL, 0, dl) ||
	    expect(fd, WT_HELLO_REPLY, &m))
		return -1;
	bool ask = ((LwHelloReply *)m)->auth_required;
	memcpy(ch, ((LwHelloReply *)m)->challenge.data, sizeof(ch));
	wire_free(m);
	if (!ask)
		return 0; /* the server reads to anyone: so be it */
	if (!keyfile || wire_key_load(keyfile, &key, &err)) {
		printf("refused: the server asks for a key (%s)\n",
		       keyfile ? err.msg : "we have none");
		return -1;
	}
	wire_auth_client_mac(&key, role ? role : LW_ROLE__LW_ROLE_READ, ch, nonce, mac);
	LwAuth a = LW_AUTH__INIT;
	a.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
	a.mac = (ProtobufCBinaryData){sizeof(mac), mac};
	a.has_role = role != 0;
	a.role = role ? role : LW_ROLE__LW_ROLE_READ;
	if (wire_send(fd, scratch, WT_AUTH, &a.base, NULL, 0, dl) || expect(fd, WT_AUTH_OK, &m))
		return -1;
	wire_free(m); /* the proof is not checked: we want in, not to know who is there */
	return 0;
}

/* One file's bytes at off into out; the next offset, or -1. */
static int64_t read_chunk(int fd, int out, const char *name, uint64_t off, uint64_t *bytes)
{
	ProtobufCMessage *m;
	LwMetaGet g = LW_META_GET__INIT;

	g.name = (char *)name;
	g.off = off;
	if (wire_send(fd, scratch, WT_META_GET, &g.base, NULL, 0, wire_now_ms() + T_MS) ||
	    expect(fd, WT_META_DATA, &m))
		return -1;
	LwMetaData *d = (LwMetaData *)m;
	int64_t next = -1;
	if (d->has_skip)
		next = (int64_t)(off + d->skip);
	else if (d->data.len && pwrite(out, d->data.data, d->data.len, (off_t)off) >= 0)
		next = (int64_t)(off + d->data.len);
	*bytes += d->has_skip ? 0 : d->data.len;
	wire_free(m);
	return next;
}

static int read_image(int argc, char **argv)
{
	ProtobufCMessage *m;
	uint64_t bytes = 0;
	unsigned files = 0;
	int fd = argc >= 5 ? dial(argv[2]) : -1;

	if (fd < 0)
		return 2;
	if (handshake(fd, argc > 5 ? argv[5] : NULL, 0))
		return 1;
	LwOpen o = LW_OPEN__INIT;
	o.image = argv[3];
	o.class_ = LW_CLASS__LW_CLASS_META;
	LwMetaList l = LW_META_LIST__INIT;
	if (wire_send(fd, scratch, WT_OPEN, &o.base, NULL, 0, wire_now_ms() + T_MS) ||
	    expect(fd, WT_OPEN_REPLY, &m))
		return 1;
	wire_free(m);
	if (wire_send(fd, scratch, WT_META_LIST, &l.base, NULL, 0, wire_now_ms() + T_MS) ||
	    expect(fd, WT_META_LIST_REPLY, &m))
		return 1;
	LwMetaListReply *r = (LwMetaListReply *)m;
	for (size_t i = 0; i < r->n_files; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", argv[4], r->files[i]->name);
		int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		int64_t off = 0;
		for (unsigned k = 0;
		     out >= 0 && off >= 0 && (uint64_t)off < r->files[i]->size && k < 1u << 20; k++)
			off = read_chunk(fd, out, r->files[i]->name, (uint64_t)off, &bytes);
		files += out >= 0 && off >= 0;
		if (out >= 0)
			close(out);
	}
	wire_free(m);
	close(fd);
	printf("read %u files, %llu bytes\n", files, (unsigned long long)bytes);
	return bytes ? 0 : 1;
}

/* UPLOAD_FILE frames of one file; 0 or -1. */
static int send_file(int fd, const char *dir, const char *name)
{
	char path[4096];
	struct stat st;
	uint64_t off = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int in = open(path, O_RDONLY | O_NOFOLLOW);
	if (in < 0 || fstat(in, &st))
		return -1;
	do {
		ssize_t got = pread(in, chunk, sizeof(chunk), (off_t)off);
		if (got < 0)
			break;
		LwUploadFile f = LW_UPLOAD_FILE__INIT;
		f.name = (char *)name;
		f.off = off;
		f.size = (uint64_t)st.st_size;
		f.data = (ProtobufCBinaryData){(size_t)got, chunk};
		int n = wire_pack(WT_UPLOAD_FILE, &f.base, 0, frame, sizeof(frame));
		if (n < 0 || wire_write_all(fd, frame, (size_t)n, wire_now_ms() + T_MS))
			break;
		off += (uint64_t)got;
	} while (off < (uint64_t)st.st_size);
	close(in);
	return off == (uint64_t)st.st_size ? 0 : -1;
}

static LwRole role_arg(const char *s)
{
	if (!strcmp(s, "read"))
		return LW_ROLE__LW_ROLE_READ;
	if (!strcmp(s, "publish"))
		return LW_ROLE__LW_ROLE_PUBLISH;
	return 0;
}

static int publish(int argc, char **argv)
{
	static struct srcfile f[MAX_FILES];
	ProtobufCMessage *m;
	int fd = argc >= 7 ? dial(argv[2]) : -1;

	if (fd < 0)
		return 2;
	if (handshake(fd, argv[5], role_arg(argv[6])))
		return 1;
	size_t n = list_dir(argv[4], f);
	LwUpload u = LW_UPLOAD__INIT;
	u.image = argv[3];
	if (wire_send(fd, scratch, WT_UPLOAD, &u.base, NULL, 0, wire_now_ms() + T_MS) ||
	    expect(fd, WT_UPLOAD_REPLY, &m))
		return 1;
	wire_free(m);
	for (size_t i = 0; i < n; i++)
		if (send_file(fd, argv[4], f[i].name))
			return expect(fd, WT_UPLOAD_REPLY, &m) ? 1 : 3;
	if (argc > 7)
		sleep((unsigned)atoi(argv[7]));
	LwUploadEnd e = LW_UPLOAD_END__INIT;
	e.nr_files = (uint32_t)n;
	if (wire_send(fd, scratch, WT_UPLOAD_END, &e.base, NULL, 0, wire_now_ms() + T_MS) ||
	    expect(fd, WT_UPLOAD_REPLY, &m))
		return 1;
	printf("published %zu files, %llu bytes\n", n,
	       (unsigned long long)((LwUploadReply *)m)->bytes);
	wire_free(m);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "impostor"))
		return impostor(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "read"))
		return read_image(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "publish"))
		return publish(argc, argv);
	fprintf(stderr, "usage: attacker impostor|read|publish ... (see the source)\n");
	return 2;
}

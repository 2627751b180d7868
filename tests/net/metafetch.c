/*
 * Restore by image id, host side: metafetch fetches an image's metadata files from criu-imgd
 * into a dir (wire_meta_fetch, the plugin's code) and checks hostile requests and replies.
 *   metafetch fetch HOST:PORT ID DIR [KEY]     fetch; exit 0, or 1 with the error
 *   metafetch raw-get HOST:PORT ID NAME [KEY]  a META_GET of NAME, unchecked; exit 0 if the
 *                                              server refused it with an ERROR, 1 if it served
 *   metafetch upload HOST:PORT ID DIR [KEY]    publish DIR as image ID (wire_upload)
 *   metafetch raw-upload HOST:PORT ID NAME KEY an upload with a file NAME, unchecked; exit 0
 *                                              if the server refused it (KEY: the upload key)
 *   metafetch fake-server NAME DIR KEY         a server that holds KEY and whose list has
 *                                              NAME: fetch from it into DIR; exit 0 if the
 *                                              fetch was refused and DIR stayed empty
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>

#include "wire/wire_client.h"

#define T_MS 10000u

static int client(const char *server, const char *id, const char *keyfile, struct wire_client *c,
		  struct wire_key *key)
{
	struct errmsg err;

	memset(c, 0, sizeof(*c));
	if (wire_client_parse(c, server, &err)) {
		fprintf(stderr, "bad server %s\n", server);
		return -1;
	}
	c->image = id;
	c->timeout_ms = T_MS;
	if (keyfile) {
		if (wire_key_load(keyfile, key, &err)) {
			fprintf(stderr, "%s\n", err.msg);
			return -1;
		}
		c->key = key;
	}
	return 0;
}

static int do_fetch(int argc, char **argv)
{
	struct wire_client c;
	struct wire_key key;
	struct wire_meta_result r;
	struct errmsg err;

	if (argc < 5 || client(argv[2], argv[3], argc > 5 ? argv[5] : NULL, &c, &key))
		return 2;
	int dirfd = open(argv[4], O_RDONLY | O_DIRECTORY);
	if (dirfd < 0) {
		perror(argv[4]);
		return 2;
	}
	if (wire_meta_fetch(&c, dirfd, &r, &err)) {
		printf("fetch failed: %s\n", err.msg);
		return 1;
	}
	printf("fetched %u files, %llu bytes\n", r.files, (unsigned long long)r.bytes);
	return 0;
}

static int do_raw_get(int argc, char **argv)
{
	struct wire_client c;
	struct wire_key key;
	struct wire_open_info info;
	struct wire_hdr h;
	ProtobufCMessage *m;
	struct errmsg why;
	uint8_t *scratch = malloc(WIRE_SCRATCH);

	if (!scratch || argc < 5 || client(argv[2], argv[3], argc > 5 ? argv[5] : NULL, &c, &key))
		return 2;
	int fd = wire_client_open(&c, LW_CLASS__LW_CLASS_META, scratch, &info, &why);
	if (fd < 0) {
		printf("open: %s\n", why.msg);
		return 2;
	}
	LwMetaGet g = LW_META_GET__INIT;
	g.name = argv[4];
	if (wire_send(fd, scratch, WT_META_GET, &g.base, NULL, 0, wire_now_ms() + T_MS))
		return 2;
	int rc = wire_recv(fd, scratch, &h, &m, NULL, 0, wire_now_ms() + T_MS, &why);
	if (rc) {
		printf("no answer: %s\n", why.msg);
		return 1;
	}
	if (h.type == WT_ERROR) {
		printf("refused: %s\n", ((LwError *)m)->text);
		rc = 0;
	} else {
		printf("served: %s\n", wire_type_name(h.type));
		rc = 1;
	}
	wire_free(m);
	free(scratch);
	close(fd);
	return rc;
}

/* The fake server: a handshake with the key, OPEN, then a list with a hostile name. */
static void fake_serve(int lfd, const char *name, const struct wire_key *key)
{
	uint8_t *scratch = malloc(WIRE_SCRATCH), ch[WIRE_NONCE] = {0};
	struct wire_hdr h;
	ProtobufCMessage *m;
	struct errmsg why;
	uint64_t dl = wire_now_ms() + T_MS;
	int fd = accept(lfd, NULL, NULL);

	if (fd < 0 || !scratch)
		_exit(2);
	/* HELLO */
	if (wire_recv(fd, scratch, &h, &m, NULL, 0, dl, &why))
		_exit(2);
	wire_free(m);
	LwHelloReply hr = LW_HELLO_REPLY__INIT;
	hr.version = WIRE_VERSION;
	hr.auth_required = true;
	hr.challenge = (ProtobufCBinaryData){sizeof(ch), ch};
	wire_send(fd, scratch, WT_HELLO_REPLY, &hr.base, NULL, 0, dl);
	/* AUTH: it holds the key, so the client goes on to the list */
	if (wire_recv(fd, scratch, &h, &m, NULL, 0, dl, &why) || h.type != WT_AUTH)
		_exit(2);
	uint8_t proof[WIRE_MAC];
	wire_auth_server_mac(key, LW_ROLE__LW_ROLE_READ, ch, ((LwAuth *)m)->nonce.data, proof);
	wire_free(m);
	LwAuthOk ok = LW_AUTH_OK__INIT;
	ok.mac = (ProtobufCBinaryData){sizeof(proof), proof};
	wire_send(fd, scratch, WT_AUTH_OK, &ok.base, NULL, 0, dl);
	/* OPEN */
	if (wire_recv(fd, scratch, &h, &m, NULL, 0, dl, &why))
		_exit(2);
	wire_free(m);
	LwOpenReply orp = LW_OPEN_REPLY__INIT;
	orp.nr_tasks = 1;
	wire_send(fd, scratch, WT_OPEN_REPLY, &orp.base, NULL, 0, dl);
	/* META_LIST: answered by hand (the name is not checked on the way out). */
	if (wire_recv(fd, scratch, &h, &m, NULL, 0, dl, &why))
		_exit(2);
	wire_free(m);
	LwMetaFile f0 = LW_META_FILE__INIT, f1 = LW_META_FILE__INIT, *fp[2] = {&f0, &f1};
	f0.name = "core-1.img";
	f0.size = 4;
	f1.name = (char *)name;
	f1.size = 4;
	LwMetaListReply r = LW_META_LIST_REPLY__INIT;
	r.n_files = 2;
	r.files = fp;
	r.last = true;
	int n = wire_pack(WT_META_LIST_REPLY, &r.base, 0, scratch, WIRE_SCRATCH);
	if (n > 0)
		wire_write_all(fd, scratch, (size_t)n, dl);
	/* Serve anything asked for: the client must not get that far. */
	while (!wire_recv(fd, scratch, &h, &m, NULL, 0, dl, &why)) {
		if (h.type == WT_META_GET) {
			LwMetaData d = LW_META_DATA__INIT;
			d.name = ((LwMetaGet *)m)->name;
			d.size = 4;
			d.data = (ProtobufCBinaryData){4, (uint8_t *)"evil"};
			n = wire_pack(WT_META_DATA, &d.base, 0, scratch + WIRE_HDR_SIZE + 4096,
				      WIRE_SCRATCH - WIRE_HDR_SIZE - 4096);
			if (n > 0)
				wire_write_all(fd, scratch + WIRE_HDR_SIZE + 4096, (size_t)n, dl);
		}
		wire_free(m);
	}
	_exit(0);
}

static int do_fake(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	char server[64];
	struct errmsg err;
	struct wire_client c;
	struct wire_key key;
	struct wire_meta_result r;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	if (argc < 5 || lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&a, &al))
		return 2;
	snprintf(server, sizeof(server), "127.0.0.1:%u", ntohs(a.sin_port));
	if (client(server, "img", argv[4], &c, &key))
		return 2;
	pid_t p = fork();
	if (p == 0)
		fake_serve(lfd, argv[2], &key);
	close(lfd);
	int dirfd = open(argv[3], O_RDONLY | O_DIRECTORY);
	if (dirfd < 0)
		return 2;
	int rc = wire_meta_fetch(&c, dirfd, &r, &err);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	if (!rc) {
		printf("fetched from a hostile list (%u files)\n", r.files);
		close(dirfd);
		return 1;
	}
	printf("refused: %s\n", err.msg);
	DIR *d = fdopendir(dirfd);
	rc = d ? 0 : 2;
	for (struct dirent *e; d && (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			printf("but %s was left in the dir\n", e->d_name);
			rc = 1;
			break;
		}
	if (d)
		closedir(d);
	return rc;
}

static int do_upload(int argc, char **argv)
{
	struct wire_client c;
	struct wire_key key;
	struct wire_meta_result r;
	struct errmsg err;

	if (argc < 5 || client(argv[2], argv[3], argc > 5 ? argv[5] : NULL, &c, &key))
		return 2;
	int dirfd = open(argv[4], O_RDONLY | O_DIRECTORY);
	if (dirfd < 0) {
		perror(argv[4]);
		return 2;
	}
	int rc = wire_upload(&c, dirfd, &r, &err);
	close(dirfd);
	if (rc) {
		printf("upload failed: %s\n", err.msg);
		return 1;
	}
	printf("uploaded %u files, %llu bytes\n", r.files, (unsigned long long)r.bytes);
	return 0;
}

/* UPLOAD, then one UPLOAD_FILE named argv[4] (not checked here), then UPLOAD_END. */
static int do_raw_upload(int argc, char **argv)
{
	struct wire_client c;
	struct wire_key key;
	struct wire_open_info info;
	struct wire_hdr h;
	ProtobufCMessage *m = NULL;
	struct errmsg why;
	/* By hand (wire_upload checks names): TCP, HELLO, AUTH with the key, UPLOAD, one
	 * UPLOAD_FILE, UPLOAD_END. */
	static uint8_t scratch[WIRE_SCRATCH], frame[WIRE_SCRATCH];

	if (argc < 6 || client(argv[2], argv[3], argv[5], &c, &key))
		return 2;
	(void)info;
	int fd = -1;
	{
		/* Raw: a plain TCP connection, HELLO, AUTH with the key, UPLOAD, UPLOAD_FILE. */
		char host[256];
		snprintf(host, sizeof(host), "%s", argv[2]);
		char *colon = strrchr(host, ':');
		if (!colon)
			return 2;
		*colon = 0;
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
			return 2;
	}
	uint64_t dl = wire_now_ms() + T_MS;
	LwHello hl = LW_HELLO__INIT;
	hl.version_min = hl.version_max = WIRE_VERSION;
	if (wire_send(fd, scratch, WT_HELLO, &hl.base, NULL, 0, dl) ||
	    wire_recv(fd, scratch, &h, &m, NULL, 0, dl, &why) || h.type != WT_HELLO_REPLY)
		return 2;
	uint8_t ch[WIRE_NONCE], nonce[WIRE_NONCE] = {1}, mac[WIRE_MAC];
	memcpy(ch, ((LwHelloReply *)m)->challenge.data, sizeof(ch));
	wire_free(m);
	wire_auth_client_mac(&key, LW_ROLE__LW_ROLE_PUBLISH, ch, nonce, mac);
	LwAuth au = LW_AUTH__INIT;
	au.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
	au.mac = (ProtobufCBinaryData){sizeof(mac), mac};
	au.has_role = true;
	au.role = LW_ROLE__LW_ROLE_PUBLISH;
	if (wire_send(fd, scratch, WT_AUTH, &au.base, NULL, 0, dl) ||
	    wire_recv(fd, scratch, &h, &m, NULL, 0, dl, &why) || h.type != WT_AUTH_OK)
		return 2;
	wire_free(m);
	LwUpload u = LW_UPLOAD__INIT;
	u.image = argv[3];
	if (wire_send(fd, scratch, WT_UPLOAD, &u.base, NULL, 0, dl) ||
	    wire_recv(fd, scratch, &h, &m, NULL, 0, dl, &why))
		return 2;
	if (h.type == WT_ERROR) {
		printf("refused at UPLOAD: %s\n", ((LwError *)m)->text);
		wire_free(m);
		return 0;
	}
	wire_free(m);
	LwUploadFile f = LW_UPLOAD_FILE__INIT;
	f.name = argv[4];
	f.size = 4;
	f.data = (ProtobufCBinaryData){4, (uint8_t *)"evil"};
	int n = wire_pack(WT_UPLOAD_FILE, &f.base, 0, frame, sizeof(frame));
	if (n < 0 || wire_write_all(fd, frame, (size_t)n, dl))
		return 2;
	LwUploadEnd e = LW_UPLOAD_END__INIT;
	e.nr_files = 1;
	wire_send(fd, scratch, WT_UPLOAD_END, &e.base, NULL, 0, dl);
	int rc = wire_recv(fd, scratch, &h, &m, NULL, 0, dl, &why);
	close(fd);
	if (rc) {
		printf("no answer: %s\n", why.msg);
		return 1;
	}
	rc = h.type == WT_ERROR ? 0 : 1;
	printf("%s: %s\n", rc ? "accepted" : "refused",
	       h.type == WT_ERROR ? ((LwError *)m)->text : wire_type_name(h.type));
	wire_free(m);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "upload"))
		return do_upload(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "raw-upload"))
		return do_raw_upload(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "fetch"))
		return do_fetch(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "raw-get"))
		return do_raw_get(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "fake-server"))
		return do_fake(argc, argv);
	fprintf(stderr, "usage: metafetch fetch|raw-get|fake-server ...\n");
	return 2;
}

/* lazy-wire client: connect, handshake, index (see wire_client.h). */
#include "wire_client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/parse.h"

int wire_client_parse(struct wire_client *c, const char *server)
{
	struct hostport hp;
	int rc = parse_hostport(server, &hp, NULL);

	if (rc)
		return rc;
	_Static_assert(sizeof(c->host) >= sizeof(hp.host), "host fits");
	_Static_assert(sizeof(c->port) >= sizeof(hp.port), "port fits");
	memcpy(c->host, hp.host, sizeof(hp.host));
	memcpy(c->port, hp.port, sizeof(hp.port));
	return 0;
}

int wire_err_errno(int code)
{
	switch (code) {
	case LW_ERR__LW_E_AUTH:
		return -EACCES;
	case LW_ERR__LW_E_NOIMAGE:
		return -ENOENT;
	case LW_ERR__LW_E_RANGE:
		return -ERANGE;
	case LW_ERR__LW_E_CHECKSUM:
		return -EBADMSG;
	case LW_ERR__LW_E_BUSY:
	case LW_ERR__LW_E_IO:
		return -EAGAIN;
	default:
		return -EPROTO;
	}
}

/* connect() on a non-blocking socket, bounded by the deadline. 0, or -1 with errno. */
static int connect_by(int fd, const struct addrinfo *a, uint64_t deadline)
{
	if (!connect(fd, a->ai_addr, a->ai_addrlen))
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	for (;;) {
		uint64_t now = mono_ms();
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		int n = poll(&p, 1, (int)(deadline - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			continue;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
			return -1;
		errno = soerr;
		return soerr ? -1 : 0;
	}
}

static int dial(const struct wire_client *c, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai, *a;
	int rc = getaddrinfo(c->host, c->port, &hints, &ai), fd = -1, e = 0;

	if (rc) {
		snprintf(err, errlen, "cannot resolve %s: %s", c->host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			e = errno;
		else if (connect_by(fd, a, mono_ms() + c->timeout_ms)) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to %s:%s: %s", c->host, c->port, strerror(e));
		return -(e ? e : ECONNREFUSED);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* TLS when the config says on, or auto and the server is not on loopback: 0 or -errno. */
static int maybe_tls(int fd, const struct wire_client *c, LwRole role, uint64_t deadline, char *err,
		     size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		snprintf(err, errlen, "getpeername: %s", strerror(errno));
		return -errno;
	}
	if (!wire_tls_wanted(c->tls, (struct sockaddr *)&ss))
		return 0;
	return wire_tls_client(fd, c->tls, c->host, c->key, role, deadline, err, errlen);
}

/* Receive the expected frame type; an ERROR becomes its errno. */
static int expect(int fd, uint8_t *scratch, unsigned type, ProtobufCMessage **m, uint64_t deadline,
		  char *err, size_t errlen)
{
	struct wire_hdr h;
	const char *why;
	int rc = wire_recv(fd, scratch, &h, m, NULL, 0, deadline, &why);

	if (rc) {
		snprintf(err, errlen, "waiting for %s: %s", wire_type_name(type),
			 rc == -EPROTO ? why : strerror(-rc));
		return rc == -EPROTO ? rc : -EAGAIN;
	}
	if (h.type == WT_ERROR) {
		LwError *e = (LwError *)*m;
		snprintf(err, errlen, "server: %s", e->text);
		rc = wire_err_errno(e->code);
	} else if (h.type != type) {
		snprintf(err, errlen, "expected %s, got %s", wire_type_name(type),
			 wire_type_name(h.type));
		rc = -EPROTO;
	}
	if (rc) {
		wire_free(*m);
		*m = NULL;
	}
	return rc;
}

/* AUTH with our key for role, then AUTH_OK must prove the server holds it too. */
static int authenticate(int fd, const struct wire_client *c, LwRole role, uint8_t *scratch,
			const uint8_t *challenge, uint64_t deadline, char *err, size_t errlen)
{
	uint8_t nonce[WIRE_NONCE], mac[WIRE_MAC], want[WIRE_MAC], bound[WIRE_NONCE];
	gnutls_session_t tls = wire_tls_of(fd);
	ProtobufCMessage *m;

	/* Inside TLS the proofs cover the TLS session too (wire_tls_bind). */
	if (tls && wire_tls_bind(tls, challenge, bound)) {
		snprintf(err, errlen, "cannot bind the authentication to the TLS session");
		return -EACCES;
	}
	if (tls)
		challenge = bound;
	if (wire_random(nonce, sizeof(nonce)) ||
	    wire_auth_client_mac(c->key, role, challenge, nonce, mac)) {
		snprintf(err, errlen, "cannot compute the authentication reply");
		return -EACCES;
	}
	LwAuth a = LW_AUTH__INIT;
	a.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
	a.mac = (ProtobufCBinaryData){sizeof(mac), mac};
	a.has_role = true;
	a.role = role;
	int rc = wire_send(fd, scratch, WT_AUTH, &a.base, NULL, 0, deadline);
	if (!rc)
		rc = expect(fd, scratch, WT_AUTH_OK, &m, deadline, err, errlen);
	if (rc)
		return rc;
	bool ok = !wire_auth_server_mac(c->key, role, challenge, nonce, want) &&
		  wire_mac_equal(want, ((LwAuthOk *)m)->mac.data);
	wire_free(m);
	explicit_bzero(want, sizeof(want));
	if (!ok) {
		snprintf(err, errlen, "the server does not hold our key (bad AUTH_OK)");
		return -EACCES;
	}
	return 0;
}

/*
 * Connect, TLS (maybe_tls), HELLO, AUTH for role: the fd, or a negative errno with err.
 * Mutual, always: we need a key, the server must ask for it and then prove that it holds it
 * (wire_auth.h).
 */
static int handshake(const struct wire_client *c, LwRole role, uint8_t *scratch, uint64_t deadline,
		     char *err, size_t errlen)
{
	uint8_t challenge[WIRE_NONCE];
	ProtobufCMessage *m;
	const char *why;
	int rc = wire_client_hello_ok(c->key != NULL, true, &why);

	if (rc) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	int fd = dial(c, err, errlen);
	if (fd < 0)
		return fd;
	rc = maybe_tls(fd, c, role, deadline, err, errlen);
	if (rc)
		goto fail;
	LwHello h = LW_HELLO__INIT;
	h.version_min = h.version_max = WIRE_VERSION;
	h.client = "criu-lazyd";
	rc = wire_send(fd, scratch, WT_HELLO, &h.base, NULL, 0, deadline);
	if (!rc)
		rc = expect(fd, scratch, WT_HELLO_REPLY, &m, deadline, err, errlen);
	if (rc)
		goto fail;
	LwHelloReply *hr = (LwHelloReply *)m;
	bool auth = hr->auth_required;
	memcpy(challenge, hr->challenge.data, sizeof(challenge));
	rc = hr->version == WIRE_VERSION ? 0 : -EPROTO;
	wire_free(m);
	if (rc) {
		snprintf(err, errlen, "the server chose a protocol version we did not offer");
		goto fail;
	}
	rc = wire_client_hello_ok(true, auth, &why);
	if (rc) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	rc = authenticate(fd, c, role, scratch, challenge, deadline, err, errlen);
	if (rc)
		goto fail;
	return fd;
fail:
	wire_sock_close(fd);
	return rc < 0 ? rc : -EPROTO;
}

int wire_client_open(const struct wire_client *c, LwClass cls, uint8_t *scratch,
		     struct wire_open_info *info, char *err, size_t errlen)
{
	uint64_t deadline = mono_ms() + c->timeout_ms;
	ProtobufCMessage *m;
	int rc, fd = handshake(c, LW_ROLE__LW_ROLE_READ, scratch, deadline, err, errlen);

	if (fd < 0)
		return fd;
	LwOpen o = LW_OPEN__INIT;
	o.image = (char *)(c->image ? c->image : "default");
	o.class_ = cls;
	rc = wire_send(fd, scratch, WT_OPEN, &o.base, NULL, 0, deadline);
	if (!rc)
		rc = expect(fd, scratch, WT_OPEN_REPLY, &m, deadline, err, errlen);
	if (rc)
		goto fail;
	LwOpenReply *r = (LwOpenReply *)m;
	*info =
	    (struct wire_open_info){r->nr_tasks, r->lazy_pages, r->zero_pages, r->dump_checksums};
	wire_free(m);
	return fd;
fail:
	wire_sock_close(fd);
	return rc < 0 ? rc : -EPROTO;
}

/* ---- index ---- */

struct ix_state {
	size_t begun;  /* tasks started */
	size_t cap;    /* extents allocated for the current one */
	uint32_t want; /* extents announced for the current one */
};

static int add_extents(struct img_task *t, struct ix_state *st, const LwIndexPart *p, char *err,
		       size_t errlen)
{
	if (t->nr_extents + p->n_extents > st->want) {
		snprintf(err, errlen, "pid %d: more extents than announced", t->pid);
		return -1;
	}
	if (t->nr_extents + p->n_extents > st->cap) {
		/* Grown with what arrives, never to the announced size up front. */
		size_t nc = st->cap ? st->cap * 2 : 64;
		while (nc < t->nr_extents + p->n_extents)
			nc *= 2;
		if (nc > st->want)
			nc = st->want;
		struct img_extent *e = realloc(t->extents, nc * sizeof(*e));
		if (!e) {
			snprintf(err, errlen, "out of memory for the index");
			return -1;
		}
		t->extents = e;
		st->cap = nc;
	}
	for (size_t i = 0; i < p->n_extents; i++) {
		const LwExtent *x = p->extents[i];
		if (t->nr_extents && x->start < t->extents[t->nr_extents - 1].end) {
			snprintf(err, errlen, "pid %d: extents unsorted", t->pid);
			return -1;
		}
		struct img_extent *e = &t->extents[t->nr_extents++];
		*e = (struct img_extent){.start = x->start, .end = x->end, .zero = x->zero};
		e->pages_off = x->zero ? 0 : x->off;
		if (x->zero)
			t->zero_pages += (x->end - x->start) / IMG_PAGE_SIZE;
		else
			t->lazy_pages += (x->end - x->start) / IMG_PAGE_SIZE;
	}
	return 0;
}

static int take_part(struct img_set *set, struct ix_state *st, const LwIndexPart *p, char *err,
		     size_t errlen)
{
	struct img_task *t = st->begun ? &set->tasks[st->begun - 1] : NULL;
	bool cont = t && t->pid == p->pid && t->nr_extents < st->want;

	if (cont && (p->nr_extents != st->want || p->n_extents == 0)) {
		snprintf(err, errlen, "pid %d: inconsistent index part", p->pid);
		return -1;
	}
	if (!cont) {
		if (t && t->nr_extents != st->want) {
			snprintf(err, errlen, "pid %d: index parts missing", t->pid);
			return -1;
		}
		if (st->begun >= set->nr_tasks) {
			snprintf(err, errlen, "more tasks in the index than announced");
			return -1;
		}
		for (size_t i = 0; i < st->begun; i++)
			if (set->tasks[i].pid == p->pid) {
				snprintf(err, errlen, "pid %d twice in the index", p->pid);
				return -1;
			}
		t = &set->tasks[st->begun++];
		t->pid = p->pid;
		t->ppid = p->ppid;
		t->nr_threads = p->nr_threads;
		t->has_mm = p->has_mm;
		st->want = p->nr_extents;
		st->cap = 0;
	}
	return add_extents(t, st, p, err, errlen);
}

int wire_client_index(int fd, uint8_t *scratch, unsigned timeout_ms, uint32_t nr_tasks,
		      struct img_set *set, char *err, size_t errlen)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	struct ix_state st = {0};
	bool last = false;
	int rc;

	memset(set, 0, sizeof(*set));
	set->dirfd = -1;
	if (nr_tasks == 0 || nr_tasks > WIRE_MAX_TASKS) {
		snprintf(err, errlen, "the server announced %u tasks", nr_tasks);
		return -1;
	}
	set->tasks = calloc(nr_tasks, sizeof(*set->tasks));
	if (!set->tasks) {
		snprintf(err, errlen, "out of memory for %u tasks", nr_tasks);
		return -1;
	}
	set->nr_tasks = nr_tasks;
	for (size_t i = 0; i < nr_tasks; i++)
		set->tasks[i].pages_fd = -1;
	LwIndexGet g = LW_INDEX_GET__INIT;
	rc = wire_send(fd, scratch, WT_INDEX_GET, &g.base, NULL, 0, deadline);
	if (rc) {
		snprintf(err, errlen, "sending INDEX_GET: %s", strerror(-rc));
		goto fail;
	}
	/* Every part starts a task or brings extents (take_part refuses others); a deadline. */
	while (!last) {
		ProtobufCMessage *m;
		if (expect(fd, scratch, WT_INDEX_PART, &m, deadline, err, errlen))
			goto fail;
		rc = take_part(set, &st, (LwIndexPart *)m, err, errlen);
		last = ((LwIndexPart *)m)->last;
		wire_free(m);
		if (rc)
			goto fail;
	}
	if (st.begun != set->nr_tasks || set->tasks[st.begun - 1].nr_extents != st.want) {
		snprintf(err, errlen, "the index ended after %zu of %zu tasks", st.begun,
			 set->nr_tasks);
		goto fail;
	}
	return 0;
fail:
	img_set_free(set);
	return -1;
}

/* ---- metadata files (META connections) ---- */

struct meta_want {
	char name[WIRE_MAX_META_NAME + 1];
	uint64_t size;
	bool sparse;
	bool created;
};

/* Every metadata file of the image, sorted, checked. n files into *w (malloc'ed). */
static int meta_list(int fd, uint8_t *scratch, unsigned timeout_ms, struct meta_want **w, size_t *n,
		     char *err, size_t errlen)
{
	struct meta_want *v = calloc(WIRE_MAX_META_FILES, sizeof(*v));
	uint64_t total = 0;
	bool last = false;

	*n = 0;
	if (!v) {
		snprintf(err, errlen, "out of memory for the file list");
		return -1;
	}
	/* Each reply brings at least one file unless it is the last: bounded by the file cap. */
	for (unsigned round = 0; !last; round++) {
		uint64_t deadline = mono_ms() + timeout_ms;
		ProtobufCMessage *m;
		LwMetaList l = LW_META_LIST__INIT;
		l.after = *n ? v[*n - 1].name : NULL;
		if (round > WIRE_MAX_META_FILES) {
			snprintf(err, errlen, "the file list does not end");
			goto fail;
		}
		int rc = wire_send(fd, scratch, WT_META_LIST, &l.base, NULL, 0, deadline);
		if (rc) {
			snprintf(err, errlen, "sending META_LIST: %s", strerror(-rc));
			goto fail;
		}
		if (expect(fd, scratch, WT_META_LIST_REPLY, &m, deadline, err, errlen))
			goto fail;
		LwMetaListReply *r = (LwMetaListReply *)m;
		last = r->last;
		const char *bad = NULL;
		if (!r->n_files && !last)
			bad = "an empty part that is not the last";
		for (size_t i = 0; !bad && i < r->n_files; i++) {
			if (*n && strcmp(r->files[i]->name, v[*n - 1].name) <= 0)
				bad = "names unsorted or repeated";
			else if (*n == WIRE_MAX_META_FILES)
				bad = "too many files";
			else if (!r->files[i]->sparse &&
				 (total += r->files[i]->size) > WIRE_MAX_META_TOTAL)
				bad = "too many bytes in all";
			else {
				/* wire_check: a served name of <= WIRE_MAX_META_NAME bytes */
				memcpy(v[*n].name, r->files[i]->name,
				       strlen(r->files[i]->name) + 1);
				v[*n].sparse = r->files[i]->sparse;
				v[(*n)++].size = r->files[i]->size;
			}
		}
		wire_free(m);
		if (bad) {
			snprintf(err, errlen, "the server's file list: %s", bad);
			goto fail;
		}
	}
	if (!*n) {
		snprintf(err, errlen, "the image has no metadata files");
		goto fail;
	}
	*w = v;
	return 0;
fail:
	free(v);
	return -1;
}

/* One file into tmp (created, O_EXCL), chunk by chunk. */
static int meta_get(int fd, uint8_t *scratch, unsigned timeout_ms, int dirfd,
		    const struct meta_want *w, const char *tmp, uint64_t *sent, char *err,
		    size_t errlen)
{
	int out = wire_create_private(dirfd, tmp); /* images are secrets: 0600 */
	uint64_t off = 0;

	if (out < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	/* Every reply advances off by at least one byte (checked), off <= size <= the cap. */
	while (off < w->size) {
		uint64_t deadline = mono_ms() + timeout_ms;
		ProtobufCMessage *m;
		LwMetaGet g = LW_META_GET__INIT;
		g.name = (char *)w->name;
		g.off = off;
		int rc = wire_send(fd, scratch, WT_META_GET, &g.base, NULL, 0, deadline);
		if (rc) {
			snprintf(err, errlen, "sending META_GET: %s", strerror(-rc));
			goto fail;
		}
		if (expect(fd, scratch, WT_META_DATA, &m, deadline, err, errlen))
			goto fail;
		LwMetaData *d = (LwMetaData *)m;
		const char *bad = NULL;
		if (strcmp(d->name, w->name) || d->off != off)
			bad = "a reply for another file or offset";
		else if (d->size != w->size)
			bad = "the file changed size since it was listed";
		else if (d->has_skip && !w->sparse)
			bad = "a skip in a file that is not sparse";
		else if (d->has_skip)
			off += d->skip; /* wire_check: skip <= size - off */
		else if (!d->data.len)
			bad = "no data before the end";
		else if ((*sent += d->data.len) > WIRE_MAX_META_TOTAL)
			bad = "more data than the limit for all files";
		else {
			ssize_t wr = pwrite(out, d->data.data, d->data.len, (off_t)off);
			if (wr < 0)
				bad = strerror(errno);
			else if ((size_t)wr != d->data.len)
				bad = "short write";
			else
				off += d->data.len;
		}
		wire_free(m);
		if (bad) {
			snprintf(err, errlen, "%s: %s", w->name, bad);
			goto fail;
		}
	}
	/* A sparse file ends with holes where its last lazy data was. */
	if (ftruncate(out, (off_t)w->size) || close(out)) {
		snprintf(err, errlen, "writing %s: %s", tmp, strerror(errno));
		return -1;
	}
	return 0;
fail:
	close(out);
	return -1;
}

int wire_meta_fetch(const struct wire_client *c, int dirfd, struct wire_meta_result *res, char *err,
		    size_t errlen)
{
	uint8_t *scratch = malloc(WIRE_SCRATCH);
	struct meta_want *w = NULL;
	struct wire_open_info info;
	char tmp[WIRE_MAX_META_NAME + 16];
	size_t n = 0, i;
	uint64_t sent = 0;
	int fd = -1, rc = -1;
	struct stat st;

	memset(res, 0, sizeof(*res));
	if (!scratch) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fd = wire_client_open(c, LW_CLASS__LW_CLASS_META, scratch, &info, err, errlen);
	if (fd < 0)
		goto out;
	if (meta_list(fd, scratch, c->timeout_ms, &w, &n, err, errlen))
		goto out;
	/* Nothing is overwritten: every name must be free before anything is written. */
	for (i = 0; i < n; i++)
		if (!fstatat(dirfd, w[i].name, &st, AT_SYMLINK_NOFOLLOW) || errno != ENOENT) {
			snprintf(err, errlen, "%s exists in the images dir: not overwritten",
				 w[i].name);
			goto out;
		}
	for (i = 0; i < n; i++) {
		/* A leading '.' never starts a served name: no clash with the image's files. */
		snprintf(tmp, sizeof(tmp), ".%s.lw-part", w[i].name);
		unlinkat(dirfd, tmp, 0);
		if (meta_get(fd, scratch, c->timeout_ms, dirfd, &w[i], tmp, &sent, err, errlen)) {
			unlinkat(dirfd, tmp, 0);
			goto out;
		}
		if (renameat2(dirfd, tmp, dirfd, w[i].name, RENAME_NOREPLACE)) {
			snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, w[i].name,
				 strerror(errno));
			unlinkat(dirfd, tmp, 0);
			goto out;
		}
		w[i].created = true;
		res->files++;
		res->bytes = sent;
	}
	LwClose cl = LW_CLOSE__INIT;
	wire_send(fd, scratch, WT_CLOSE, &cl.base, NULL, 0, mono_ms() + c->timeout_ms);
	rc = 0;
out:
	/* A failed fetch leaves the dir as it was. */
	for (i = 0; rc && w && i < n; i++)
		if (w[i].created)
			unlinkat(dirfd, w[i].name, 0);
	if (rc)
		memset(res, 0, sizeof(*res));
	wire_sock_close(fd);
	free(w);
	free(scratch);
	return rc;
}

/* ---- uploads (publish) ---- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The upload's file names: regular files with upload names, sorted. */
static int up_list(int dirfd, char ***names, size_t *n, char *err, size_t errlen)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	char **v = calloc(WIRE_MAX_META_FILES, sizeof(*v));
	unsigned seen = 0;
	struct stat st;
	int rc = -1;

	*n = 0;
	if (!dir || !v) {
		snprintf(err, errlen, "cannot list the images dir: %s", strerror(errno));
		goto out;
	}
	for (struct dirent *de; (de = readdir(dir));) {
		if (++seen > 65536) {
			snprintf(err, errlen, "more than 65536 entries in the images dir");
			goto out;
		}
		if (!wire_upload_name_ok(de->d_name) ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (*n == WIRE_MAX_META_FILES) {
			snprintf(err, errlen, "more than %u files", WIRE_MAX_META_FILES);
			goto out;
		}
		if (!(v[*n] = strdup(de->d_name))) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		(*n)++;
	}
	qsort(v, *n, sizeof(*v), name_cmp);
	rc = 0;
out:
	if (dir)
		closedir(dir);
	else if (fd >= 0)
		close(fd);
	if (rc && v) {
		for (size_t i = 0; i < *n; i++)
			free(v[i]);
		free(v);
		v = NULL;
		*n = 0;
	}
	*names = v;
	return rc;
}

/* After a failed send: the server's ERROR if it sent one (it closes after it). */
static void server_reason(int fd, uint8_t *scratch, char *err, size_t errlen)
{
	ProtobufCMessage *m;
	char e2[256];

	if (!expect(fd, scratch, WT_UPLOAD_REPLY, &m, mono_ms() + 2000, e2, sizeof(e2)))
		wire_free(m);
	else if (!strncmp(e2, "server: ", 8))
		snprintf(err, errlen, "%s", e2);
}

static int up_file(int fd, uint8_t *scratch, uint8_t *buf, unsigned timeout_ms, int dirfd,
		   const char *name, char *err, size_t errlen)
{
	int in = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	uint64_t off = 0;
	int rc = -1;

	if (in < 0 || fstat(in, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: %s", name, in < 0 ? strerror(errno) : "not a file");
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size;
	if (size > WIRE_MAX_META_SPARSE) {
		snprintf(err, errlen, "%s: too large", name);
		goto out;
	}
	/* One chunk a pass, off grows by it; an empty file is one empty chunk. */
	do {
		size_t want = size - off < WIRE_META_CHUNK ? (size_t)(size - off) : WIRE_META_CHUNK;
		ssize_t got = want ? pread(in, buf, want, (off_t)off) : 0;
		if (got < 0 || (size_t)got != want) {
			snprintf(err, errlen, "reading %s: %s", name,
				 got < 0 ? strerror(errno) : "it shrank");
			goto out;
		}
		LwUploadFile f = LW_UPLOAD_FILE__INIT;
		f.name = (char *)name;
		f.off = off;
		f.size = size;
		f.data = (ProtobufCBinaryData){want, buf};
		int r = wire_send(fd, scratch, WT_UPLOAD_FILE, &f.base, NULL, 0,
				  mono_ms() + timeout_ms);
		if (r) {
			snprintf(err, errlen, "sending %s: %s", name, strerror(-r));
			goto out;
		}
		off += want;
	} while (off < size);
	rc = 0;
out:
	if (in >= 0)
		close(in);
	return rc;
}

int wire_upload(const struct wire_client *c, int dirfd, struct wire_meta_result *res, char *err,
		size_t errlen)
{
	uint8_t *scratch = malloc(WIRE_SCRATCH), *buf = malloc(WIRE_META_CHUNK);
	char **names = NULL;
	size_t n = 0;
	int fd = -1, rc = -1;
	ProtobufCMessage *m;

	memset(res, 0, sizeof(*res));
	if (!scratch || !buf) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!c->image || !wire_id_ok(c->image)) {
		snprintf(err, errlen, "bad image id '%s'", c->image ? c->image : "");
		goto out;
	}
	if (up_list(dirfd, &names, &n, err, errlen))
		goto out;
	fd =
	    handshake(c, LW_ROLE__LW_ROLE_PUBLISH, scratch, mono_ms() + c->timeout_ms, err, errlen);
	if (fd < 0)
		goto out;
	LwUpload u = LW_UPLOAD__INIT;
	u.image = (char *)c->image;
	uint64_t deadline = mono_ms() + c->timeout_ms;
	if (wire_send(fd, scratch, WT_UPLOAD, &u.base, NULL, 0, deadline) ||
	    expect(fd, scratch, WT_UPLOAD_REPLY, &m, deadline, err, errlen))
		goto out;
	wire_free(m);
	for (size_t i = 0; i < n; i++)
		if (up_file(fd, scratch, buf, c->timeout_ms, dirfd, names[i], err, errlen)) {
			server_reason(fd, scratch, err, errlen);
			goto out;
		}
	LwUploadEnd e = LW_UPLOAD_END__INIT;
	e.nr_files = (uint32_t)n;
	deadline = mono_ms() + c->timeout_ms;
	if (wire_send(fd, scratch, WT_UPLOAD_END, &e.base, NULL, 0, deadline)) {
		server_reason(fd, scratch, err, errlen);
		goto out;
	}
	if (expect(fd, scratch, WT_UPLOAD_REPLY, &m, deadline, err, errlen))
		goto out;
	LwUploadReply *r = (LwUploadReply *)m;
	res->files = r->nr_files;
	res->bytes = r->bytes;
	wire_free(m);
	if (res->files != n) {
		snprintf(err, errlen, "the server took %u of %zu files", res->files, n);
		goto out;
	}
	rc = 0;
out:
	wire_sock_close(fd);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(buf);
	free(scratch);
	return rc;
}

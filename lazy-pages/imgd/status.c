/* The status snapshot of criu-imgd (status.h). */
#include "status.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/version.h"

int status_socket_path(const char *opt, bool server, char *buf, size_t len)
{
	const char *rt = getenv("RUNTIME_DIRECTORY");
	int n;

	if (opt && !strcmp(opt, "none"))
		return 0;
	if (opt)
		n = snprintf(buf, len, "%s", opt);
	else if (rt && *rt) /* systemd: one dir per RuntimeDirectory= entry, ':' between */
		n = snprintf(buf, len, "%.*s/%s", (int)strcspn(rt, ":"), rt, STATUS_SOCK_NAME);
	else if (!server || geteuid() == 0)
		n = snprintf(buf, len, "%s/%s", STATUS_SOCK_RUN_DIR, STATUS_SOCK_NAME);
	else
		return 0;
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 1;
}

/* The snapshot and every block it owns, freed together. */
struct snap {
	ImgdStatus st;
	ImgdStatusTotals tot;
	void **mem;
	size_t nmem, cap;
	bool failed;
};

static void *get(struct snap *sn, size_t n, size_t size)
{
	void *p;

	if (sn->failed)
		return NULL;
	if (sn->nmem == sn->cap) {
		size_t cap = sn->cap ? sn->cap * 2 : 32;
		void **m = realloc(sn->mem, cap * sizeof(*m));
		if (!m)
			goto fail;
		sn->mem = m;
		sn->cap = cap;
	}
	p = calloc(n ? n : 1, size);
	if (!p)
		goto fail;
	sn->mem[sn->nmem++] = p;
	return p;
fail:
	sn->failed = true;
	return NULL;
}

static char *str(struct snap *sn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *str(struct snap *sn, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	char *s = get(sn, strlen(tmp) + 1, 1);
	if (s)
		strcpy(s, tmp);
	return s;
}

static const char *state_name(const struct imgd_session *s)
{
	static const char *const names[] = {"hello", "auth", "open", "ready", "closing"};

	if (s->io.handshaking && s->state != CS_CLOSING)
		return "tls";
	return (unsigned)s->state < 5 ? names[s->state] : "?";
}

static const char *tls_mode(const struct imgd_server *srv)
{
	const struct imgd_opts *o = srv->d.o;

	if (!srv->d.tls_on)
		return "off";
	if (!o->tls.cert)
		return "psk";
	return o->tls.ca ? "x509-client-certs" : "x509";
}

static const char *const result_names[CR_NRESULTS] = {"accepted", "refused_busy", "refused_error",
						      "auth_failed", "handshake_failed"};

static void add_work(struct imgd_work *a, const struct imgd_work *b)
{
	a->requests += b->requests;
	a->pages += b->pages;
	a->zero_pages += b->zero_pages;
	a->bytes += b->bytes;
}

/* The images loaded, by pointer for the sessions to find theirs. */
struct img_ref {
	const struct imgd_image *img;
	ImgdStatusImage *msg;
};

static int by_ptr(const void *a, const void *b)
{
	const struct img_ref *x = a, *y = b;

	return x->img < y->img ? -1 : x->img > y->img;
}

static void images(struct snap *sn, const struct imgd_server *srv, struct img_ref **refs, size_t *n)
{
	size_t count = 0, i = 0;

	for (const struct imgd_image *g = srv->d.cat.loaded; g; g = g->next)
		count++;
	ImgdStatusImage *im = get(sn, count, sizeof(*im));
	ImgdStatusImage **pp = get(sn, count, sizeof(*pp));
	*refs = get(sn, count, sizeof(**refs));
	if (!im || !pp || !*refs)
		return;
	for (const struct imgd_image *g = srv->d.cat.loaded; g; g = g->next, i++) {
		imgd_status_image__init(&im[i]);
		im[i].id = (char *)g->id;
		im[i].tasks = (uint32_t)g->set.nr_tasks;
		im[i].lazy_pages = g->lazy_pages;
		im[i].zero_pages = g->zero_pages;
		im[i].sessions = g->refs;
		im[i].dump_checksums = g->dump_sums;
		im[i].pages_sent = g->pages_closed; /* the live sessions add theirs below */
		pp[i] = &im[i];
		(*refs)[i] = (struct img_ref){g, &im[i]};
	}
	qsort(*refs, count, sizeof(**refs), by_ptr);
	sn->st.n_images = count;
	sn->st.images = pp;
	*n = count;
}

static ImgdStatusImage *find_image(struct img_ref *refs, size_t n, const struct imgd_image *g)
{
	struct img_ref key = {g, NULL};
	struct img_ref *r = g && refs ? bsearch(&key, refs, n, sizeof(*refs), by_ptr) : NULL;

	return r ? r->msg : NULL;
}

static void sessions(struct snap *sn, const struct imgd_server *srv, struct imgd_work *live,
		     uint32_t *per_class, struct img_ref *refs, size_t nref)
{
	uint64_t now = mono_ms();
	size_t count = 0, i = 0;

	for (const struct imgd_session *s = srv->sessions; s; s = s->next)
		count++;
	ImgdStatusSession *ss = get(sn, count, sizeof(*ss));
	ImgdStatusSession **pp = get(sn, count, sizeof(*pp));
	if (!ss || !pp)
		return;
	for (const struct imgd_session *s = srv->sessions; s; s = s->next, i++) {
		ImgdStatusSession *m = &ss[i];
		imgd_status_session__init(m);
		m->id = s->id;
		m->peer = (char *)s->peer;
		m->class_ = (char *)conn_class_name(s->cls);
		m->state = (char *)state_name(s);
		if (s->img)
			m->image = (char *)s->img->id;
		else if (s->cls == CONN_UPLOAD && s->up.id[0])
			m->image = (char *)s->up.id;
		if (s->counted) /* authenticated (AUTH_OK sent) */
			m->role = (char *)wire_role_name(s->role);
		m->requests = s->work.requests;
		m->pages_sent = s->work.pages;
		m->zero_pages = s->work.zero_pages;
		m->bytes_sent = s->work.bytes;
		m->queued = s->nq;
		m->age_seconds = (double)(now - s->t_start) / 1e3;
		m->idle_seconds = (double)(now > s->t_last ? now - s->t_last : 0) / 1e3;
		pp[i] = m;
		add_work(&live[s->cls], &s->work);
		per_class[s->cls]++;
		ImgdStatusImage *im = find_image(refs, nref, s->img);
		if (im)
			im->pages_sent += s->work.pages;
	}
	sn->st.n_sessions = count;
	sn->st.sessions = pp;
}

/* The LW_E_* names without their prefix, lower case ("proto", "auth", ...); NULL: none. */
static char *error_name(struct snap *sn, int code)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&lw_err__descriptor, code);
	if (!v)
		return NULL;
	const char *n = strncmp(v->name, "LW_E_", 5) ? v->name : v->name + 5;
	char *s = str(sn, "%s", n);
	for (char *p = s; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

static void totals(struct snap *sn, const struct imgd_server *srv, const struct imgd_work *live,
		   const uint32_t *per_class)
{
	const struct imgd *d = &srv->d;
	ImgdStatusTotals *t = &sn->tot;
	struct imgd_work all = {0};

	t->connections = d->connections;
	t->auth_failures = d->auth_failures;
	t->checksum_failures = d->checksum_failures;
	ImgdStatusCount *c = get(sn, CR_NRESULTS + IMGD_NERR, sizeof(*c));
	ImgdStatusCount **cr = get(sn, CR_NRESULTS, sizeof(*cr));
	ImgdStatusCount **ce = get(sn, IMGD_NERR, sizeof(*ce));
	ImgdStatusClass *k = get(sn, CONN_NCLASSES, sizeof(*k));
	ImgdStatusClass **kp = get(sn, CONN_NCLASSES, sizeof(*kp));
	ImgdStatusHistogram *h = get(sn, 2, sizeof(*h));
	ImgdStatusHistogram **hp = get(sn, 2, sizeof(*hp));
	if (sn->failed)
		return;
	for (int i = 0; i < CR_NRESULTS; i++) {
		imgd_status_count__init(&c[i]);
		c[i].name = (char *)result_names[i];
		c[i].value = d->results[i];
		cr[i] = &c[i];
	}
	t->n_connections_by_result = CR_NRESULTS;
	t->connections_by_result = cr;
	/* every named code (so that a series exists from the start), others as "other" */
	for (int code = 1; code <= IMGD_NERR; code++) {
		int at = code % IMGD_NERR; /* 0 (other) last */
		char *name = at ? error_name(sn, at) : (char *)"other";
		if (!name || (!at && !d->errors[0]))
			continue;
		ImgdStatusCount *x = &c[CR_NRESULTS + t->n_errors_sent];
		imgd_status_count__init(x);
		x->name = name;
		x->value = d->errors[at];
		ce[t->n_errors_sent++] = x;
	}
	t->errors_sent = ce;
	for (int i = 0; i < CONN_NCLASSES; i++) {
		struct imgd_work w = d->closed[i];
		add_work(&w, &live[i]);
		add_work(&all, &w);
		imgd_status_class__init(&k[i]);
		k[i].class_ = (char *)conn_class_name((enum conn_class)i);
		k[i].sessions = per_class[i];
		k[i].requests = w.requests;
		k[i].pages_sent = w.pages;
		k[i].zero_pages = w.zero_pages;
		k[i].bytes_sent = w.bytes;
		kp[i] = &k[i];
	}
	t->n_classes = CONN_NCLASSES;
	t->classes = kp;
	t->requests = all.requests;
	t->pages_sent = all.pages;
	t->zero_pages = all.zero_pages;
	t->bytes_sent = all.bytes;
	for (int i = 0; i < 2; i++) {
		imgd_status_histogram__init(&h[i]);
		h[i].class_ = (char *)(i ? "bulk" : "urgent");
		h[i].n_le = IMGD_HIST_N;
		h[i].le = (double *)imgd_hist_le;
		h[i].n_count = IMGD_HIST_N + 1;
		h[i].count = (uint64_t *)d->get_time[i].count;
		h[i].sum = d->get_time[i].sum;
		hp[i] = &h[i];
	}
	t->n_request_seconds = 2;
	t->request_seconds = hp;
}

/* --store: its counters and the chunk cache's. */
static void store(struct snap *sn, const struct imgd_server *srv)
{
	const struct imgd_store *st = srv->d.cat.store;
	ImgdStatusStore *s = st ? get(sn, 1, sizeof(*s)) : NULL;

	if (!s)
		return;
	imgd_status_store__init(s);
	s->url = (char *)srv->d.o->store;
	store_lock((struct imgd_store *)st); /* the read-ahead threads count too */
	s->gets = st->be.gets + st->ra.gets;
	s->get_bytes = st->be.get_bytes + st->ra.get_bytes;
	s->chunk_reads = st->chunk_reads;
	s->puts = st->be.puts;
	s->put_bytes = st->be.put_bytes;
	s->errors = st->be.errors + st->ra.failed;
	s->bad_objects = st->bad_chunks;
	s->cache_hits = st->cache.hits;
	s->cache_misses = st->cache.misses;
	s->cache_bytes = st->cache.bytes;
	s->cache_capacity = st->cache.cap;
	store_unlock((struct imgd_store *)st);
	sn->st.store = s;
}

ImgdStatus *status_build(const struct imgd_server *srv)
{
	const struct imgd_opts *o = srv->d.o;
	struct snap *sn = calloc(1, sizeof(*sn));
	struct imgd_work live[CONN_NCLASSES] = {0};
	uint32_t per_class[CONN_NCLASSES] = {0};
	struct img_ref *refs = NULL;
	size_t nref = 0;

	if (!sn)
		return NULL;
	imgd_status__init(&sn->st);
	imgd_status_totals__init(&sn->tot);
	sn->st.totals = &sn->tot;
	sn->st.version = (char *)CRIU_LAZY_VERSION;
	sn->st.pid = (uint32_t)getpid();
	sn->st.uptime_seconds = (double)(mono_ms() - srv->t_start) / 1e3;
	bool v6 = strchr(o->address, ':') != NULL;
	sn->st.listen = str(sn, "%s%s%s:%d", v6 ? "[" : "", o->address, v6 ? "]" : "", srv->port);
	sn->st.tls = (char *)tls_mode(srv);
	sn->st.serving = (char *)(o->store ? o->store : o->root ? o->root : o->dir);
	sn->st.root = o->root != NULL;
	sn->st.accept_uploads = o->accept_uploads;
	sn->st.max_clients = (uint32_t)o->max_clients;
	store(sn, srv);
	images(sn, srv, &refs, &nref);
	sessions(sn, srv, live, per_class, refs, nref);
	totals(sn, srv, live, per_class);
	if (sn->failed) {
		status_free(&sn->st);
		return NULL;
	}
	return &sn->st;
}

void status_free(ImgdStatus *st)
{
	struct snap *sn = (struct snap *)st; /* st is its first member */

	if (!sn)
		return;
	for (size_t i = 0; i < sn->nmem; i++)
		free(sn->mem[i]);
	free(sn->mem);
	free(sn);
}

uint8_t *status_reply(void *srv, const char *word, size_t *len)
{
	*len = 0;
	if (strcmp(word, "status"))
		return NULL;
	ImgdStatus *st = status_build(srv);
	if (!st)
		return NULL;
	size_t n = imgd_status__get_packed_size(st);
	uint8_t *b = malloc(n ? n : 1);
	if (b)
		*len = imgd_status__pack(st, b);
	status_free(st);
	return b;
}

/* criu-imgd's Prometheus families, from the status snapshot (metrics.h). */
#include "metrics.h"

#include <stddef.h>
#include <string.h>

#include "status.h"

#define P "criu_imgd_"

static void one(struct prom_buf *b, const char *name, const char *type, const char *help, double v)
{
	prom_head(b, name, type, help);
	prom_sample(b, name, NULL, 0, v);
}

/* A family with one sample per class that serves (urgent, bulk, meta, upload). */
static void by_class(struct prom_buf *b, const ImgdStatusTotals *t, const char *name,
		     const char *help, size_t field)
{
	prom_head(b, name, "counter", help);
	for (size_t i = 0; i < t->n_classes; i++) {
		const ImgdStatusClass *k = t->classes[i];
		if (!strcmp(k->class_, "none"))
			continue; /* not open yet: never served anything */
		struct prom_label l = {"class", k->class_};
		prom_sample(b, name, &l, 1, (double)*(const uint64_t *)((const char *)k + field));
	}
}

static void counts(struct prom_buf *b, const char *name, const char *help, const char *label,
		   ImgdStatusCount *const *c, size_t n)
{
	prom_head(b, name, "counter", help);
	for (size_t i = 0; i < n; i++) {
		struct prom_label l = {label, c[i]->name};
		prom_sample(b, name, &l, 1, (double)c[i]->value);
	}
}

static void images(struct prom_buf *b, const ImgdStatus *st)
{
	static const struct {
		const char *name, *type, *help;
	} f[] = {
	    {P "image_sessions", "gauge", "Sessions that have the image open."},
	    {P "image_tasks", "gauge", "Tasks of the image."},
	    {P "image_lazy_pages", "gauge",
	     "Lazy data pages of the image (what restores ask for)."},
	    {P "image_pages_sent_total", "counter",
	     "Pages of the image sent since it was loaded (from 0 again when it is unloaded and "
	     "loaded again)."},
	};

	one(b, P "images_loaded", "gauge",
	    "Images loaded (they load on their first OPEN, unload with their last session).",
	    (double)st->n_images);
	if (st->n_images > METRICS_MAX_IMAGES)
		return; /* bounded labels: past 64 images, the totals only */
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		prom_head(b, f[k].name, f[k].type, f[k].help);
		for (size_t i = 0; i < st->n_images; i++) {
			const ImgdStatusImage *im = st->images[i];
			double v[] = {im->sessions, im->tasks, (double)im->lazy_pages,
				      (double)im->pages_sent};
			struct prom_label l = {"image", im->id};
			prom_sample(b, f[k].name, &l, 1, v[k]);
		}
	}
}

/* --store: the object store's requests and the chunk cache. */
static void store(struct prom_buf *b, const ImgdStatusStore *s)
{
	if (!s)
		return;
	const struct {
		const char *name, *type, *help;
		uint64_t v;
	} f[] = {
	    {P "store_gets_total", "counter", "GET requests to the object store.", s->gets},
	    {P "store_get_bytes_total", "counter", "Bytes the object store's GETs brought.",
	     s->get_bytes},
	    {P "store_chunk_reads_total", "counter",
	     "Chunk objects read from the object store (chunk cache misses).", s->chunk_reads},
	    {P "store_puts_total", "counter", "PUT requests to the object store (publish).",
	     s->puts},
	    {P "store_put_bytes_total", "counter", "Bytes written to the object store.",
	     s->put_bytes},
	    {P "store_errors_total", "counter",
	     "Object store requests that failed (refused, unreachable, bad answer).", s->errors},
	    {P "store_bad_objects_total", "counter",
	     "Objects that did not match the manifest's checksum (never served).", s->bad_objects},
	    {P "store_cache_hits_total", "counter", "Chunk reads served from the chunk cache.",
	     s->cache_hits},
	    {P "store_cache_bytes", "gauge", "Bytes of chunks held by the chunk cache.",
	     s->cache_bytes},
	    {P "store_cache_capacity_bytes", "gauge", "The chunk cache's size (--store-cache).",
	     s->cache_capacity},
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		one(b, f[i].name, f[i].type, f[i].help, (double)f[i].v);
}

void metrics_render(const ImgdStatus *st, struct prom_buf *b)
{
	const ImgdStatusTotals *t = st->totals;
	struct prom_label info[] = {{"version", st->version}, {"tls", st->tls}};
	uint64_t queued = 0;

	prom_head(b, P "info", "gauge",
		  "criu-imgd's version and TLS mode (off, psk, x509, "
		  "x509-client-certs); always 1.");
	prom_sample(b, P "info", info, 2, 1);
	one(b, P "uptime_seconds", "gauge", "Seconds since the server started.",
	    st->uptime_seconds);
	one(b, P "max_clients", "gauge", "Connections at once (--max-clients).", st->max_clients);
	prom_head(
	    b, P "connections_total", "counter",
	    "Connections by how their admission ended: accepted (authenticated), "
	    "refused_busy (over --max-clients), refused_error (out of resources), "
	    "auth_failed (key, role or TLS), handshake_failed (closed before authenticating).");
	for (size_t i = 0; i < t->n_connections_by_result; i++) {
		struct prom_label l = {"result", t->connections_by_result[i]->name};
		prom_sample(b, P "connections_total", &l, 1,
			    (double)t->connections_by_result[i]->value);
	}
	one(b, P "auth_failures_total", "counter",
	    "Refusals for authentication (wrong key, wrong role, TLS handshake failed).",
	    (double)t->auth_failures);
	prom_head(b, P "sessions", "gauge",
		  "Sessions open by class (none: not past OPEN or UPLOAD yet).");
	for (size_t i = 0; i < t->n_classes; i++) {
		struct prom_label l = {"class", t->classes[i]->class_};
		prom_sample(b, P "sessions", &l, 1, t->classes[i]->sessions);
	}
	by_class(b, t, P "requests_total",
		 "Request frames after the handshake (GET, INDEX_GET, META_*, UPLOAD_*).",
		 offsetof(ImgdStatusClass, requests));
	by_class(b, t, P "pages_sent_total", "Pages served (zero pages included).",
		 offsetof(ImgdStatusClass, pages_sent));
	by_class(b, t, P "zero_pages_sent_total",
		 "Zero pages served: marked in their PAGES frame, no data sent.",
		 offsetof(ImgdStatusClass, zero_pages));
	one(b, P "bytes_sent_total", "counter",
	    "Bytes of the frames queued to clients (before TLS).", (double)t->bytes_sent);
	for (size_t i = 0; i < st->n_sessions; i++)
		queued += st->sessions[i]->queued;
	one(b, P "queued_requests", "gauge", "GETs waiting or being served.", (double)queued);
	one(b, P "checksum_failures_total", "counter",
	    "Pages that did not match their dump-time checksum (never sent).",
	    (double)t->checksum_failures);
	counts(b, P "errors_total", "ERROR frames sent to clients by code.", "code", t->errors_sent,
	       t->n_errors_sent);
	images(b, st);
	store(b, st->store);
	prom_head(b, P "request_seconds", "histogram",
		  "Service time of GETs by priority: arrival to the last PAGES frame queued.");
	for (size_t i = 0; i < t->n_request_seconds; i++) {
		const ImgdStatusHistogram *h = t->request_seconds[i];
		struct prom_label l = {"class", h->class_};
		if (h->n_count == h->n_le + 1)
			prom_histogram(b, P "request_seconds", &l, 1, h->le, h->count, h->n_le,
				       h->sum);
	}
}

void metrics_fill(void *srv, struct prom_buf *b)
{
	ImgdStatus *st = status_build(srv);

	if (!st) {
		b->failed = true;
		return;
	}
	metrics_render(st, b);
	status_free(st);
}

/*
 * Page data from criu-imgd over lazy-wire (source_imgd.h: an urgent connection for faults, a
 * bulk one for prefetch). Every page is checked against its checksum before it is handed
 * out; a lost connection is re-established with exponential backoff (a state the daemon's
 * event loop waits on, never a sleep: source.h's wait_ms) and the requests in flight on it
 * are sent again (nothing was handed out for them yet, so a page is never
 * delivered twice from one request). This file: setup, the index, connecting, the checksums,
 * close.
 */
#include "source_imgd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/parse.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define DIAL_POLL_MS 2

unsigned imgd_backoff_ms(unsigned attempt)
{
	unsigned ms = BACKOFF_MIN_MS;

	for (unsigned i = 0; i < attempt && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

unsigned imgd_retry_ms(const struct imgd_src *s, unsigned fails)
{
	unsigned n = s->cl.nsrv ? s->cl.nsrv : 1;

	if (!fails || fails % n) /* a server of this round is left: try it now */
		return 0;
	return imgd_backoff_ms(fails / n - 1);
}

unsigned imgd_stall_limit(const struct imgd_src *s)
{
	return 3 * s->timeout_ms;
}

bool imgd_spent(const struct imgd_src *s, unsigned fails)
{
	unsigned n = s->cl.nsrv ? s->cl.nsrv : 1;

	return fails > (s->retries + 1) * n - 1;
}

void imgd_server_down(struct imgd_src *s, unsigned srv, int rc)
{
	if (s->cl.nsrv < 2 || srv != s->cur)
		return; /* one server, or the other connection moved on already */
	s->cur = (srv + 1) % s->cl.nsrv;
	if (!s->down_ns)
		s->down_ns = mono_ns();
	pr_info("image server %s:%s: %s; next connection to %s:%s", s->cl.srv[srv].host,
		s->cl.srv[srv].port, strerror(-rc), s->cl.srv[s->cur].host, s->cl.srv[s->cur].port);
}

unsigned imgd_wait_ms(struct page_source *ps)
{
	const struct imgd_src *s = ps->priv;
	uint64_t now = mono_ms(), at = 0;

	/* A connection being opened: look again soon (its thread does not wake the loop). */
	if (s->udial.running || (s->bulk.dial.running && s->bulk.npf) ||
	    (s->fast.dial.running && s->fast.npf))
		return DIAL_POLL_MS;
	if (s->ufd < 0 && s->uretry_at > now)
		at = s->uretry_at;
	const struct imgd_pipe *pp[] = {&s->bulk, &s->fast};
	for (int i = 0; i < 2; i++) {
		const struct imgd_pipe *p = pp[i];
		if (p->fd < 0 && p->npf && p->retry_at > now && (!at || p->retry_at < at))
			at = p->retry_at;
	}
	return at ? (unsigned)(at - now) : 0;
}

static void imgd_state(struct page_source *ps, struct src_state *st)
{
	const struct imgd_src *s = ps->priv;

	*st = (struct src_state){.reconnects = s->reconnects,
				 .bad_sums = s->bad_sums,
				 .bytes_rx = s->bytes_rx,
				 .failovers = s->failovers};
	unsigned on = s->bulk.fd >= 0	? s->bulk.srv
		      : s->fast.fd >= 0 ? s->fast.srv
		      : s->ufd >= 0	? s->usrv
					: s->cur;
	snprintf(st->server, sizeof(st->server),
		 strchr(s->cl.srv[on].host, ':') ? "[%s]:%s" : "%s:%s", s->cl.srv[on].host,
		 s->cl.srv[on].port);
	for (int i = 0; i < SRC_NPATHS; i++) {
		st->pages_rx[i] = s->pages_rx[i];
		st->data_pages_rx[i] = s->data_pages_rx[i];
	}
	st->failures = s->ufails;
	if (s->bulk.fails > st->failures)
		st->failures = s->bulk.fails;
	if (s->fast.fails > st->failures)
		st->failures = s->fast.fails;
	st->reconnecting = st->failures > 0;
	if (st->reconnecting)
		st->retry_ms = imgd_wait_ms(ps);
}

bool imgd_fatal(int rc)
{
	return rc == -EACCES || rc == -ENOENT || rc == -ERANGE || rc == -EBADMSG;
}

bool imgd_dial_fatal(const struct imgd_src *s, int rc)
{
	return s->cl.nsrv < 2 && imgd_fatal(rc);
}

int imgd_unpack_pages(struct imgd_src *s, const LwPages *p, const uint8_t *pay, uint8_t *out,
		      enum src_path path, unsigned from, const uint8_t **data)
{
	/* No zero page to expand: the payload is the data, checked where it lies. */
	bool in_place = data && !wire_count_zero(p->zero.data, p->nr_pages);
	size_t at = 0;

	if (s->down_ns && from == s->cur) { /* the failover's first pages */
		const struct wire_server *w = &s->cl.srv[from];
		pr_warn("image server %s:%s: first pages %.1f ms after a server of the list "
			"failed",
			w->host, w->port, (double)(mono_ns() - s->down_ns) / 1e6);
		s->down_ns = 0;
	}
	s->pages_rx[path] += p->nr_pages;
	for (uint32_t i = 0; i < p->nr_pages; i++) {
		uint8_t *dst = out + (size_t)i * WIRE_PAGE;
		uint64_t sum;
		if (wire_zero_bit(p->zero.data, i)) {
			memset(dst, 0, WIRE_PAGE);
			sum = s->zero_sum;
		} else {
			if (in_place) {
				sum = wire_page_sum(pay + at);
			} else {
				memcpy(dst, pay + at, WIRE_PAGE);
				sum = wire_page_sum(dst);
			}
			at += WIRE_PAGE;
			s->data_pages_rx[path]++;
		}
		if (sum != p->sums[i]) {
			s->bad_sums++;
			pr_err("pid %d: page at offset 0x%llx fails its checksum (got %016llx, "
			       "want %016llx)",
			       p->pid, (unsigned long long)(p->off + (uint64_t)i * WIRE_PAGE),
			       (unsigned long long)sum, (unsigned long long)p->sums[i]);
			return -EBADMSG;
		}
	}
	if (data)
		*data = in_place ? pay : out;
	return 0;
}

static int imgd_load_index(struct page_source *ps, struct img_set *set, struct errmsg *e)
{
	struct imgd_src *s = ps->priv;
	unsigned refused = 0; /* servers in a row whose answer no retry can mend */

	for (unsigned attempt = 1;; attempt++) {
		unsigned srv = s->cur;
		if (s->ufd < 0)
			s->ufd = imgd_connect(s, LW_CLASS__LW_CLASS_URGENT, s->uscratch, &srv,
					      &s->ucodec);
		s->usrv = srv;
		int rc = s->ufd;
		if (rc >= 0)
			rc = wire_client_index(s->ufd, s->uscratch, s->timeout_ms, s->info.nr_tasks,
					       set, e);
		if (!rc) {
			s->down_ns = 0; /* a server down at start: not a failover mid-restore */
			pr_info("image server %s:%s: image '%s': %zu tasks, %lu data pages, %s "
				"checksums, fingerprint %016llx",
				s->cl.srv[srv].host, s->cl.srv[srv].port,
				s->cl.image ? s->cl.image : "default", set->nr_tasks,
				(unsigned long)s->info.lazy_pages,
				s->info.dump_checksums ? "dump-time" : "serve-time",
				(unsigned long long)s->fp);
			return 0;
		}
		bool connected = s->ufd >= 0;
		imgd_drop_urgent(s);
		if (connected) { /* it answered, and the index failed: e says why */
			pr_warn("image server %s:%s: %s", s->cl.srv[srv].host, s->cl.srv[srv].port,
				e->msg);
			if (s->cl.nsrv < 2)
				return rc;
			imgd_server_down(s, srv, rc);
		}
		refused = imgd_fatal(rc) ? refused + 1 : 0;
		if (refused >= s->cl.nsrv || imgd_spent(s, attempt))
			return errmsg_set(e, rc, "cannot reach image server %s:%s (%s)%s",
					  s->cl.srv[srv].host, s->cl.srv[srv].port, strerror(-rc),
					  s->cl.nsrv > 1 ? ", nor any other of the list" : "");
		sleep_ms(imgd_retry_ms(s, attempt));
	}
}

static void imgd_close(struct page_source *ps)
{
	struct imgd_src *s = ps->priv;

	if (!s)
		return;
	if (s->reconnects || s->bad_sums || s->failovers)
		pr_info("image server: %lu reconnects (%lu to another server), %lu pages failed "
			"their checksum",
			(unsigned long)s->reconnects, (unsigned long)s->failovers,
			(unsigned long)s->bad_sums);
	imgd_dial_wait(&s->udial);
	imgd_pipe_free(&s->bulk);
	imgd_pipe_free(&s->fast);
	if (s->zframes)
		pr_info("image server: %lu compressed frames, %lu bytes for %lu bytes of pages",
			(unsigned long)s->zframes, (unsigned long)s->zbytes,
			(unsigned long)s->zraw_bytes);
	wire_zstd_free(&s->zstd);
	free(s->zraw);
	LwClose c = LW_CLOSE__INIT;
	if (s->ufd >= 0)
		wire_send(s->ufd, s->uscratch, WT_CLOSE, &c.base, NULL, 0, mono_ms() + 100);
	imgd_drop_urgent(s);
	free(s->uscratch);
	free(s->upay);
	free(s->chunk);
	imgd_hold_free(s);
	explicit_bzero(&s->key, sizeof(s->key));
	free(s);
	ps->priv = NULL;
}

static const struct page_source_ops imgd_ops = {
    .name = "image-server",
    .read = imgd_read,
    .close = imgd_close,
    .load_index = imgd_load_index,
    .prefetch = imgd_prefetch,
    .prefetchv = imgd_prefetchv,
    .faultv = imgd_faultv,
    .poll_fd = imgd_poll_fd,
    .fault_fd = imgd_fault_fd,
    .collect = imgd_collect,
    .inflight = imgd_inflight,
    .wait_ms = imgd_wait_ms,
    .stall_ms = imgd_stall_ms,
    .state = imgd_state,
    .hold = imgd_hold,
    .loopback = imgd_loopback,
    .warm = imgd_warm,
    .release = imgd_release,
};

int page_source_imgd(struct page_source *ps, const struct imgd_source_cfg *cfg, struct errmsg *e)
{
	struct imgd_src *s = calloc(1, sizeof(*s));
	static const uint8_t zero_page[WIRE_PAGE];
	int rc;

	if (!s)
		return errmsg_set(e, ENOMEM, "out of memory");
	s->ufd = -1;
	s->bulk.fd = s->fast.fd = -1;
	ps->ops = &imgd_ops;
	ps->priv = s;
	struct errmsg why;
	rc = wire_client_parse(&s->cl, cfg->server, &why);
	if (rc)
		return errmsg_set(e, rc, "bad --image-server '%s' (HOST:PORT[,HOST:PORT...]): %s",
				  cfg->server, why.msg);
	s->fp = cfg->fingerprint;
	if (cfg->image && !image_id_ok(cfg->image))
		return errmsg_set(e, EINVAL, "bad --image '%s' (" IMAGE_ID_RULE ")", cfg->image);
	s->cl.image = cfg->image;
	s->cl.compress = cfg->compress;
	s->fault_dscp = cfg->fault_dscp;
	if (cfg->tls) {
		rc = wire_tls_cfg_check(cfg->tls, false, e);
		if (rc)
			return rc;
		s->tls = *cfg->tls;
		s->cl.tls = &s->tls;
	}
	s->cl.timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
	s->timeout_ms = s->cl.timeout_ms;
	s->retries = cfg->retries;
	s->dial_inline = cfg->dial_inline;
	unsigned window = cfg->window ? cfg->window : 8;
	if (window > IMGD_MAX_WINDOW)
		window = IMGD_MAX_WINDOW;
	/* Mutual authentication, always: without our key no server can prove anything. */
	if (!cfg->key_file)
		return errmsg_set(
		    e, EACCES,
		    "--image-server needs --auth-key FILE: criu-imgd always asks for a "
		    "key, and without one the server cannot be told from an impostor");
	rc = wire_key_load(cfg->key_file, &s->key, e);
	if (rc)
		return rc;
	s->cl.key = &s->key;
	s->uscratch = malloc(WIRE_SCRATCH);

	s->upay = malloc(WIRE_MAX_PAYLOAD);

	s->chunk = malloc(WIRE_MAX_PAYLOAD);
	if (!s->uscratch || !s->upay || !s->chunk ||
	    imgd_pipe_init(&s->bulk, "stream", LW_CLASS__LW_CLASS_BULK, SRC_STREAM, window) ||
	    imgd_pipe_init(&s->fast, "fault", LW_CLASS__LW_CLASS_URGENT, SRC_FAULTS,
			   IMGD_FAST_WINDOW))
		return errmsg_set(e, ENOMEM, "out of memory");
	s->zero_sum = wire_page_sum(zero_page);
	return 0;
}

/*
 * netload: many concurrent clients of one image on criu-imgd, through the
 * same page source criu-lazyd uses (source_imgd.c), checked byte for byte
 * against the image's pages files; and a fault-latency benchmark under a
 * background stream.
 *
 *   netload --server H:P --dir IMGDIR [--image ID] [--key F] [--clients N]   verify
 *   netload --server H:P --dir IMGDIR --bench [--image ID] [--key F]       benchmark
 *   netload --server H:P --dir IMGDIR --throughput [--key F]   one client's MiB/s (bulk path)
 *   TLS: --tls, --no-tls (default: auto), --tls-ca F [--tls-name N] (X.509)
 *   --compress off|on|auto: zstd PAGES, as criu-lazyd's option (default off)
 *   --linger-ms N: --bench keeps its connections open N ms after its figures (for ss)
 *   The fault connection is marked as criu-lazyd marks it by default (wire_qos.h).
 *
 * Exit 0 when every client saw exactly the image's data.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "img/images.h"
#include "util/log.h"
#include "lib/src_wait.h"
#include "source/source.h"
#include "wire/wire_qos.h"
#include "wire/wire_tls.h"

#define PAGE IMG_PAGE_SIZE
#define PIECE 64 /* pages per read */
#define MAX_CLIENTS 256

struct cfg {
	const char *server, *image, *key, *dir;
	int clients;
	bool bench, throughput;
	int compress; /* --compress off|on|auto (default off) */
	unsigned linger_ms;
	const struct wire_tls_cfg *tls;
	struct wire_tls_cfg tls_opt; /* --tls, --no-tls, --tls-ca, --tls-name */
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_source(const struct cfg *c, struct page_source *s, struct img_set *remote)
{
	struct imgd_source_cfg sc = {.server = c->server,
				     .image = c->image,
				     .key_file = c->key,
				     .retries = 5,
				     .timeout_ms = 10000,
				     .window = 8,
				     .tls = c->tls,
				     .compress = c->compress,
				     .fault_dscp = WIRE_FAULT_DSCP};
	struct errmsg err = {""};

	if (page_source_imgd(s, &sc, &err) || s->ops->load_index(s, remote, &err)) {
		fprintf(stderr, "netload: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* The remote index must be the local one, extent by extent. */
static int same_index(const struct img_set *a, const struct img_set *b)
{
	if (a->nr_tasks != b->nr_tasks)
		return -1;
	for (size_t i = 0; i < a->nr_tasks; i++) {
		const struct img_task *x = &a->tasks[i], *y = &b->tasks[i];
		if (x->pid != y->pid || x->nr_extents != y->nr_extents || x->has_mm != y->has_mm)
			return -1;
		for (size_t k = 0; k < x->nr_extents; k++)
			if (x->extents[k].start != y->extents[k].start ||
			    x->extents[k].end != y->extents[k].end ||
			    x->extents[k].zero != y->extents[k].zero ||
			    (!x->extents[k].zero &&
			     x->extents[k].pages_off != y->extents[k].pages_off))
				return -1;
	}
	return 0;
}

static int check(const struct img_task *lt, uint64_t off, const void *got, size_t len, void *tmp)
{
	if (pread(lt->pages_fd, tmp, len, (off_t)off) != (ssize_t)len)
		return -1;
	return memcmp(tmp, got, len) ? -1 : 0;
}

/* One client: every data page, alternately on the urgent and the bulk path. */
static int client(const struct cfg *c, const struct img_set *local, int idx)
{
	struct page_source s;
	struct img_set rs;
	static uint8_t buf[PIECE * PAGE], tmp[PIECE * PAGE];
	uint64_t pages = 0, bad = 0;

	if (open_source(c, &s, &rs))
		return 1;
	if (same_index(local, &rs)) {
		fprintf(stderr, "netload %d: the remote index differs from the images\n", idx);
		return 1;
	}
	for (size_t i = 0; i < rs.nr_tasks; i++) {
		const struct img_task *t = &rs.tasks[i], *lt = &local->tasks[i];
		for (size_t k = 0; k < t->nr_extents; k++) {
			const struct img_extent *x = &t->extents[k];
			if (x->zero)
				continue;
			for (uint64_t a = x->start; a < x->end; a += PIECE * PAGE) {
				uint64_t len =
				    x->end - a < PIECE * PAGE ? x->end - a : PIECE * PAGE;
				uint64_t off = x->pages_off + (a - x->start);
				bool urgent = ((a / (PIECE * PAGE)) + (uint64_t)idx) % 2;
				if (urgent) {
					if (src_read_waiting(&s, t, off, buf, len) ||
					    check(lt, off, buf, len, tmp))
						bad++;
					pages += len / PAGE;
					continue;
				}
				while (s.ops->prefetch(&s, t, off, len, 0) == -EBUSY) {
					struct src_chunk ch;
					int rc = s.ops->collect(&s, &ch);
					if (rc < 0)
						bad++;
					if (rc > 0) {
						bad += check(lt, ch.src, ch.data, ch.n * PAGE,
							     tmp) != 0;
						pages += ch.n;
					}
					if (rc == 0)
						usleep(100);
				}
			}
		}
		/* Drain this task's bulk reads before the next task (chunks name the task). */
		while (s.ops->inflight(&s)) {
			struct src_chunk ch;
			int rc = s.ops->collect(&s, &ch);
			if (rc < 0)
				bad++;
			if (rc > 0) {
				bad += check(lt, ch.src, ch.data, ch.n * PAGE, tmp) != 0;
				pages += ch.n;
			}
			if (rc == 0)
				usleep(100);
		}
	}
	uint64_t want = 0;
	for (size_t i = 0; i < rs.nr_tasks; i++)
		want += rs.tasks[i].lazy_pages;
	s.ops->close(&s);
	img_set_free(&rs);
	if (bad || pages != want) {
		fprintf(stderr, "netload %d: %lu of %lu pages, %lu bad\n", idx,
			(unsigned long)pages, (unsigned long)want, (unsigned long)bad);
		return 1;
	}
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Queue the next bulk read of t (256 pages at most): false when t has no more, or -EBUSY. */
static bool queue_next(struct page_source *s, const struct img_task *t, size_t *k, uint64_t *a,
		       uint64_t *total)
{
	while (*k < t->nr_extents && t->extents[*k].zero)
		(*k)++;
	if (*k >= t->nr_extents)
		return false;
	const struct img_extent *x = &t->extents[*k];
	uint64_t at = x->start + *a, len = x->end - at < 256 * PAGE ? x->end - at : 256 * PAGE;
	if (s->ops->prefetch(s, t, x->pages_off + *a, len, 0) == -EBUSY)
		return false;
	*total += len / PAGE;
	*a += len;
	if (x->start + *a >= x->end) {
		(*k)++;
		*a = 0;
	}
	return true;
}

/*
 * Throughput of one client: the largest task's data through the bulk path only (as
 * criu-lazyd drains, a window of 256-page reads), waiting in poll() on the source's fd as the
 * daemon does (no wait when it is -1: bytes decrypted by TLS already). Prints MiB/s.
 */
static int throughput(const struct cfg *c)
{
	struct page_source s;
	struct img_set rs;
	uint64_t streamed = 0, total = 0, a = 0;
	size_t k = 0;
	char how[96] = "no TLS";

	if (open_source(c, &s, &rs))
		return 1;
	const struct img_task *t = NULL;
	for (size_t i = 0; i < rs.nr_tasks; i++)
		if (!t || rs.tasks[i].lazy_pages > t->lazy_pages)
			t = &rs.tasks[i];
	double t0 = now();
	for (unsigned idle = 0; idle < 1000;) {
		while (queue_next(&s, t, &k, &a, &total))
			;
		struct src_chunk ch;
		int rc = s.ops->collect(&s, &ch);
		if (rc < 0)
			return 1;
		streamed += rc > 0 ? ch.n : 0;
		if (!s.ops->inflight(&s) && k >= t->nr_extents)
			break;
		int fd = s.ops->poll_fd(&s);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (rc == 0 && fd >= 0 && poll(&p, 1, 10) == 0)
			idle++;
	}
	double dt = now() - t0;
	int fd = s.ops->poll_fd(&s);
	gnutls_session_t ts = fd >= 0 ? wire_tls_of(fd) : NULL;
	if (ts)
		wire_tls_describe(ts, how, sizeof(how));
	printf("throughput: %.1f MiB/s (%lu pages in %.3f s, %s)\n",
	       (double)streamed * PAGE / dt / 1048576, (unsigned long)streamed, dt, how);
	s.ops->close(&s);
	img_set_free(&rs);
	return streamed == total ? 0 : 1;
}

/*
 * As criu-lazyd drains: a window of bulk reads of 256 pages streams the whole
 * image while a 16-page "fault" read goes out every millisecond; report fault
 * latency percentiles and the drain time.
 */
static int bench(const struct cfg *c, const struct img_set *local)
{
	struct page_source s;
	struct img_set rs;
	static uint8_t buf[16 * PAGE];
	static double lat[100000];
	size_t nlat = 0;
	uint64_t streamed = 0, total = 0;
	unsigned seed = 1;

	(void)local;
	if (open_source(c, &s, &rs))
		return 1;
	const struct img_task *t = NULL;
	for (size_t i = 0; i < rs.nr_tasks; i++)
		if (!t || rs.tasks[i].lazy_pages > t->lazy_pages)
			t = &rs.tasks[i];
	size_t k = 0;
	uint64_t a = 0;
	double t0 = now(), next_fault = t0;
	for (;;) {
		/* Fill the window, in address order, 256 pages a read. */
		while (k < t->nr_extents) {
			const struct img_extent *x = &t->extents[k];
			if (x->zero) {
				k++;
				a = 0;
				continue;
			}
			uint64_t at = x->start + a,
				 len = x->end - at < 256 * PAGE ? x->end - at : 256 * PAGE;
			if (s.ops->prefetch(&s, t, x->pages_off + a, len, 0) == -EBUSY)
				break;
			total += len / PAGE;
			a += len;
			if (x->start + a >= x->end) {
				k++;
				a = 0;
			}
		}
		struct src_chunk ch;
		int rc = s.ops->collect(&s, &ch);
		if (rc < 0)
			return 1;
		if (rc > 0)
			streamed += ch.n;
		if (now() >= next_fault && nlat < sizeof(lat) / sizeof(lat[0])) {
			/* A random data page, as a fault would ask for it. */
			size_t tries = 0;
			const struct img_extent *x;
			do
				x = &t->extents[rand_r(&seed) % t->nr_extents];
			while (x->zero && ++tries < 64);
			if (!x->zero) {
				uint64_t np = (x->end - x->start) / PAGE;
				uint64_t p = (uint64_t)rand_r(&seed) % np;
				uint64_t n = np - p < 16 ? np - p : 16;
				double f0 = now();
				if (src_read_waiting(&s, t, x->pages_off + p * PAGE, buf, n * PAGE))
					return 1;
				lat[nlat++] = now() - f0;
			}
			next_fault = now() + 0.001;
		}
		if (k >= t->nr_extents && !s.ops->inflight(&s))
			break;
		if (rc == 0)
			usleep(20);
	}
	double dt = now() - t0;
	qsort(lat, nlat, sizeof(lat[0]), cmp_d);
	printf("bench: %lu pages (%.1f MiB) streamed in %.3f s (%.1f MiB/s); %zu fault reads "
	       "during the stream: p50 %.1f us, p99 %.1f us, max %.1f us\n",
	       (unsigned long)streamed, streamed * 4096.0 / 1048576, dt,
	       streamed * 4096.0 / 1048576 / dt, nlat, nlat ? lat[nlat / 2] * 1e6 : 0,
	       nlat ? lat[nlat * 99 / 100] * 1e6 : 0, nlat ? lat[nlat - 1] * 1e6 : 0);
	fflush(stdout);
	usleep(c->linger_ms * 1000);
	s.ops->close(&s);
	img_set_free(&rs);
	return streamed == total ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"server", required_argument, NULL, 's'},	 {"image", required_argument, NULL, 'i'},
	    {"key", required_argument, NULL, 'k'},	 {"dir", required_argument, NULL, 'D'},
	    {"clients", required_argument, NULL, 'n'},	 {"bench", no_argument, NULL, 'b'},
	    {"throughput", no_argument, NULL, 'P'},	 {"tls", no_argument, NULL, 'T'},
	    {"no-tls", no_argument, NULL, 'N'},		 {"tls-ca", required_argument, NULL, 'C'},
	    {"tls-name", required_argument, NULL, 'H'},	 {"compress", required_argument, NULL, 'Z'},
	    {"linger-ms", required_argument, NULL, 'L'}, {0}};
	struct cfg c = {.clients = 1};
	struct img_set local;
	struct errmsg err;
	int o;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 's':
			c.server = optarg;
			break;
		case 'i':
			c.image = optarg;
			break;
		case 'k':
			c.key = optarg;
			break;
		case 'D':
			c.dir = optarg;
			break;
		case 'n':
			c.clients = atoi(optarg);
			break;
		case 'b':
			c.bench = true;
			break;
		case 'L':
			c.linger_ms = (unsigned)atoi(optarg);
			break;
		case 'P':
			c.throughput = true;
			break;
		case 'T':
		case 'N':
			c.tls_opt.mode = o == 'T' ? WIRE_TLS_ON : WIRE_TLS_OFF;
			break;
		case 'C':
			c.tls_opt.ca = optarg;
			break;
		case 'H':
			c.tls_opt.name = optarg;
			break;
		case 'Z':
			c.compress = !strcmp(optarg, "on")     ? LW_COMPRESS__LW_COMPRESS_ON
				     : !strcmp(optarg, "auto") ? LW_COMPRESS__LW_COMPRESS_AUTO
							       : 0;
			break;
		default:
			return 2;
		}
	}
	if (!c.server || !c.dir || c.clients < 1 || c.clients > MAX_CLIENTS) {
		fprintf(stderr, "usage: netload --server H:P --dir IMGDIR [--image ID] [--key F] "
				"[--clients N | --bench | --throughput] [--tls|--no-tls] [--tls-ca "
				"F [--tls-name N]]\n");
		return 2;
	}
	c.tls = &c.tls_opt;
	log_level = LOG_ERROR;
	int dfd = open(c.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || img_set_load(dfd, &local, &err)) {
		fprintf(stderr, "netload: images %s: %s\n", c.dir,
			dfd < 0 ? strerror(errno) : err.msg);
		return 2;
	}
	if (c.throughput) {
		img_set_free(&local);
		close(dfd);
		return throughput(&c);
	}
	if (c.bench) {
		int rc = bench(&c, &local);
		img_set_free(&local);
		close(dfd);
		return rc;
	}
	double t0 = now();
	pid_t pids[MAX_CLIENTS];
	for (int i = 0; i < c.clients; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(client(&c, &local, i));
	}
	int failed = 0;
	for (int i = 0; i < c.clients; i++) {
		int st;
		if (pids[i] < 0 || waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) ||
		    WEXITSTATUS(st))
			failed++;
	}
	uint64_t pages = 0;
	for (size_t i = 0; i < local.nr_tasks; i++)
		pages += local.tasks[i].lazy_pages;
	printf("netload: %d clients, %d failed; each read %lu data pages; %.3f s\n", c.clients,
	       failed, (unsigned long)pages, now() - t0);
	img_set_free(&local);
	close(dfd);
	return failed ? 1 : 0;
}

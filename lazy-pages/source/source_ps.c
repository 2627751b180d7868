/*
 * Page data from CRIU's own page server (`criu dump --lazy-pages --port P`,
 * `criu page-server --lazy-pages`): the PS_IOV_GET exchange of CRIU's
 * page-server protocol, as documented in docs/protocol.md.
 *
 * Pages are named by the address they had at dump time (the daemon keys
 * page-server extents by that address, so mremap does not change the name)
 * and by the task's pid in the images. The page server answers a GET with at
 * most the pages of one of its buffers, so a read may take several rounds.
 * CRIU's page server serves one connection and ends with it: a lost
 * connection cannot be re-established, and a request for pages it does not
 * have makes it hang up; both fail the read for good.
 */
#include "source.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "wire/wire_io.h"

#define PS_IOV_ADD_F 6u
#define PS_IOV_GET 7u
#define PS_IOV_FLUSH_N_CLOSE 0x1024u
#define PS_CMD_BITS 16
#define PS_PE_PRESENT 4u
#define PS_MAX_PAGES (1u << 20) /* per GET: 4 GiB */

/* The wire header, native byte order, 24 bytes. */
struct ps_iov {
	uint32_t cmd;
	uint32_t nr_pages;
	uint64_t vaddr;
	uint64_t dst_id;
};
_Static_assert(sizeof(struct ps_iov) == 24, "page server header is 24 bytes");

struct ps_src {
	char where[128];
	int fd;
	unsigned timeout_ms;
	bool broken;
	uint64_t gets, pages, bytes_rx;
};

/* A TCP connection to the page server, retried while it does not listen yet: fd or -errno. */
static int ps_connect(const struct ps_source_cfg *cfg, struct errmsg *e)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai, *a;
	char port[16];
	int fd = -1, err = ECONNREFUSED;

	snprintf(port, sizeof(port), "%d", cfg->port);
	int rc = getaddrinfo(cfg->address, port, &hints, &ai);
	if (rc)
		return errmsg_set(e, EHOSTUNREACH, "page server %s: %s", cfg->address,
				  gai_strerror(rc));
	/* The dump side may not listen yet: retry a refused connect for a while. */
	for (unsigned attempt = 0; fd < 0 && attempt <= cfg->retries; attempt++) {
		if (attempt)
			usleep(100000u << (attempt < 4 ? attempt : 4));
		for (a = ai; a && fd < 0; a = a->ai_next) {
			fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen)) {
				err = errno;
				close(fd);
				fd = -1;
			}
		}
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return errmsg_set(e, err, "cannot connect to the page server at %s:%d: %s",
				  cfg->address, cfg->port, strerror(err));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int ps_fail(struct ps_src *s, const char *what, int rc)
{
	pr_err("page server %s: %s: %s; it cannot be reconnected, every later read fails", s->where,
	       what, strerror(-rc));
	s->broken = true;
	return -EIO;
}

static int ps_read(struct page_source *ps, const struct img_task *t, uint64_t off, void *buf,
		   size_t len)
{
	struct ps_src *s = ps->priv;
	uint64_t deadline = mono_ms() + s->timeout_ms;
	size_t done = 0;

	/* off: the key is the dump-time address (stable across mremap) */
	if (s->broken)
		return -EIO;
	if (!len || len % IMG_PAGE_SIZE || off % IMG_PAGE_SIZE ||
	    len / IMG_PAGE_SIZE > PS_MAX_PAGES)
		return -EINVAL;
	/* Every round brings at least one page, or fails. */
	while (done < len) {
		struct ps_iov q = {.cmd = PS_IOV_GET,
				   .nr_pages = (uint32_t)((len - done) / IMG_PAGE_SIZE),
				   .vaddr = off + done,
				   .dst_id = (uint64_t)t->pid};
		struct ps_iov r;
		int rc = wire_write_all(s->fd, &q, sizeof(q), deadline);
		if (rc)
			return ps_fail(s, "sending PS_IOV_GET", rc);
		rc = wire_read_all(s->fd, &r, sizeof(r), deadline);
		if (rc)
			return ps_fail(s, "waiting for the pages", rc);
		if (r.cmd != (PS_IOV_ADD_F | (PS_PE_PRESENT << PS_CMD_BITS)) ||
		    r.vaddr != q.vaddr || r.dst_id != q.dst_id || r.nr_pages == 0 ||
		    r.nr_pages > q.nr_pages) {
			pr_err("page server %s: pid %d: asked for %u pages at 0x%llx, got cmd 0x%x "
			       "with %u pages at 0x%llx for id %llu",
			       s->where, t->pid, q.nr_pages, (unsigned long long)q.vaddr, r.cmd,
			       r.nr_pages, (unsigned long long)r.vaddr,
			       (unsigned long long)r.dst_id);
			s->broken = true;
			return -EIO;
		}
		size_t n = (size_t)r.nr_pages * IMG_PAGE_SIZE;
		rc = wire_read_all(s->fd, (char *)buf + done, n, deadline);
		if (rc)
			return ps_fail(s, "reading page data", rc);
		done += n;
		s->gets++;
		s->pages += r.nr_pages;
		s->bytes_rx += sizeof(r) + n;
	}
	return 0;
}

static void ps_close(struct page_source *ps)
{
	struct ps_src *s = ps->priv;

	if (!s)
		return;
	if (s->fd >= 0 && !s->broken) {
		/* As criu lazy-pages does: flush-and-close, then the server's int32 status. */
		struct ps_iov q = {.cmd = PS_IOV_FLUSH_N_CLOSE};
		int32_t status = -1;
		uint64_t deadline = mono_ms() + 2000;
		if (wire_write_all(s->fd, &q, sizeof(q), deadline) ||
		    wire_read_all(s->fd, &status, sizeof(status), deadline) || status)
			pr_warn("page server %s: no clean close (status %d)", s->where,
				(int)status);
	}
	pr_info("page server %s: %lu requests, %lu pages", s->where, (unsigned long)s->gets,
		(unsigned long)s->pages);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	ps->priv = NULL;
}

static void ps_state(struct page_source *ps, struct src_state *st)
{
	const struct ps_src *s = ps->priv;

	/* One connection for every read: its pages count as the fault path's. */
	*st = (struct src_state){.lost = s->broken || s->fd < 0, .bytes_rx = s->bytes_rx};
	st->pages_rx[SRC_FAULTS] = st->data_pages_rx[SRC_FAULTS] = s->pages;
}

static const struct page_source_ops ps_ops = {
    .name = "page-server",
    .read = ps_read,
    .close = ps_close,
    .state = ps_state,
};

int page_source_ps(struct page_source *ps, const struct ps_source_cfg *cfg, struct errmsg *e)
{
	struct ps_src *s = calloc(1, sizeof(*s));

	if (!s)
		return errmsg_set(e, ENOMEM, "out of memory");
	ps->ops = &ps_ops;
	ps->priv = s;
	s->fd = -1;
	s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 30000;
	snprintf(s->where, sizeof(s->where), "%s:%d", cfg->address, cfg->port);
	int fd = ps_connect(cfg, e);
	if (fd < 0)
		return fd;
	s->fd = fd;
	pr_info("connected to the page server at %s", s->where);
	return 0;
}

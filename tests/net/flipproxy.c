/*
 * flipproxy: a loopback TCP relay that corrupts page data on the wire. It
 * follows lazy-wire frames from the server to the client and flips one bit
 * in the payload of the N-th PAGES frame (counted over all connections),
 * FLIPS times in all; everything else passes unchanged. With --cut it
 * instead cuts the connection (both ways) in the middle of that payload.
 *
 *   flipproxy --to 127.0.0.1:PORT [--nth N] [--flips K] [--cut] --status-fd FD
 *   flipproxy --to 127.0.0.1:PORT --raw-at OFF [--flips K] --status-fd FD
 *
 * --raw-at: no parsing (for TLS, where frames cannot be seen): flip one bit of the byte at
 * offset OFF of a connection's server->client stream, in connections while flips are left.
 *
 * Writes its listening port to FD. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wire/wire.h"

struct shared {
	atomic_int frames; /* PAGES frames with a payload seen */
	atomic_int flips;  /* left to do */
	int nth;
	long raw_at; /* >= 0: flip at this stream offset instead */
	bool cut;    /* cut the connection there instead of flipping a bit */
};

/* Server->client stream parser: where the next header starts, what this byte is. */
struct parser {
	uint8_t hdr[WIRE_HDR_SIZE];
	size_t hdr_have;
	uint64_t body_left, payload_left;
	bool flip_this;
};

/* Follow the frames of buf (flipping a bit where asked); with --cut, the offset in buf
 * where the connection is to be cut, else -1. */
static long parse(struct shared *sh, struct parser *p, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len;) {
		if (p->hdr_have < WIRE_HDR_SIZE) {
			p->hdr[p->hdr_have++] = buf[i++];
			if (p->hdr_have == WIRE_HDR_SIZE) {
				struct wire_hdr h;
				struct errmsg why;
				if (wire_hdr_get(p->hdr, &h, &why))
					h.msg_len = h.payload_len = 0;
				p->body_left = h.msg_len;
				p->payload_left = h.payload_len;
				p->flip_this = false;
				if (h.payload_len &&
				    atomic_fetch_add(&sh->frames, 1) + 1 >= sh->nth &&
				    atomic_fetch_sub(&sh->flips, 1) > 0)
					p->flip_this = true;
				if (!p->body_left && !p->payload_left)
					p->hdr_have = 0;
			}
			continue;
		}
		if (p->body_left) {
			size_t n = len - i < p->body_left ? len - i : p->body_left;
			p->body_left -= n;
			i += n;
		} else {
			size_t n = len - i < p->payload_left ? len - i : p->payload_left;
			if (p->flip_this && n && sh->cut) {
				fprintf(stderr, "flipproxy: cut a connection in a page payload\n");
				return (long)i + (long)(n / 2);
			}
			if (p->flip_this && n) {
				buf[i] ^= 0x10;
				p->flip_this = false;
				fprintf(stderr, "flipproxy: flipped a payload bit\n");
			}
			p->payload_left -= n;
			i += n;
		}
		if (!p->body_left && !p->payload_left)
			p->hdr_have = 0;
	}
	return -1;
}

/* Raw mode: flip the byte at sh->raw_at of this stream, once, if flips are left. */
static void raw_flip(struct shared *sh, uint64_t *seen, uint8_t *buf, size_t len)
{
	uint64_t at = (uint64_t)sh->raw_at;

	if (at >= *seen && at < *seen + len && atomic_fetch_sub(&sh->flips, 1) > 0) {
		buf[at - *seen] ^= 0x10;
		fprintf(stderr, "flipproxy: flipped a bit at stream offset %lu\n",
			(unsigned long)at);
	}
	*seen += len;
}

static int relay(int a, int b, struct shared *sh)
{
	struct parser p = {0};
	static uint8_t buf[1 << 16];
	uint64_t seen = 0;

	for (;;) {
		struct pollfd f[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
		if (poll(f, 2, -1) < 0 && errno != EINTR)
			return 1;
		for (int k = 0; k < 2; k++) {
			if (!(f[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = recv(f[k].fd, buf, sizeof(buf), 0);
			if (n <= 0)
				return 0;
			long cut = -1;
			if (k == 1 && sh->raw_at >= 0)
				raw_flip(sh, &seen, buf, (size_t)n);
			else if (k == 1)
				cut = parse(sh, &p, buf, (size_t)n);
			if (cut >= 0)
				n = cut; /* what comes before the cut goes through, then both close
					  */
			int to = k ? a : b;
			for (ssize_t off = 0; off < n;) {
				ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
				if (w <= 0)
					return 0;
				off += w;
			}
			if (cut >= 0)
				return 0;
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"to", required_argument, NULL, 't'},
					   {"nth", required_argument, NULL, 'n'},
					   {"flips", required_argument, NULL, 'f'},
					   {"raw-at", required_argument, NULL, 'r'},
					   {"status-fd", required_argument, NULL, 's'},
					   {"cut", no_argument, NULL, 'c'},
					   {0}};
	struct sockaddr_in to = {.sin_family = AF_INET};
	int nth = 3, flips = 1, stfd = -1, o;
	long raw_at = -1;
	bool cut = false;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 't': {
			char host[64];
			const char *c = strrchr(optarg, ':');
			if (!c || (size_t)(c - optarg) >= sizeof(host))
				return 2;
			memcpy(host, optarg, (size_t)(c - optarg));
			host[c - optarg] = 0;
			if (inet_pton(AF_INET, host, &to.sin_addr) != 1)
				return 2;
			to.sin_port = htons((uint16_t)atoi(c + 1));
			break;
		}
		case 'n':
			nth = atoi(optarg);
			break;
		case 'f':
			flips = atoi(optarg);
			break;
		case 's':
			stfd = atoi(optarg);
			break;
		case 'r':
			raw_at = atol(optarg);
			break;
		case 'c':
			cut = true;
			break;
		default:
			return 2;
		}
	}
	if (!to.sin_port)
		return 2;
	struct shared *sh =
	    mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	atomic_init(&sh->frames, 0);
	atomic_init(&sh->flips, flips);
	sh->nth = nth;
	sh->raw_at = raw_at;
	sh->cut = cut;
	signal(SIGCHLD, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(la);
	if (ls < 0 || bind(ls, (struct sockaddr *)&la, sizeof(la)) || listen(ls, 64) ||
	    getsockname(ls, (struct sockaddr *)&la, &sl))
		return 2;
	if (stfd >= 0) {
		dprintf(stfd, "%d\n", ntohs(la.sin_port));
		close(stfd);
	}
	for (;;) {
		int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (fork() == 0) {
			int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof(to)))
				_exit(1);
			_exit(relay(c, s, sh));
		}
		close(c);
	}
}

/* Lingering close of a session's connection (linger.h). */
#include "linger.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct lingering_conn {
	struct linger_set *ls;
	int fd;
	uint64_t timer;
	uint64_t bytes;
	struct lingering_conn *next;
};

static void done(struct lingering_conn *lg)
{
	struct linger_set *ls = lg->ls;

	for (struct lingering_conn **p = &ls->head; *p; p = &(*p)->next)
		if (*p == lg) {
			*p = lg->next;
			break;
		}
	ev_del(ls->loop, lg->fd);
	if (lg->timer)
		ev_timer_del(ls->loop, lg->timer);
	close(lg->fd);
	ls->n--;
	free(lg);
}

static void on_timeout(struct ev_loop *l, uint64_t id, void *data)
{
	struct lingering_conn *lg = data;

	(void)l;
	(void)id;
	lg->timer = 0; /* fired: gone from the loop */
	done(lg);
}

static void on_readable(struct ev_loop *l, int fd, unsigned events, void *data)
{
	static char sink[65536];
	struct lingering_conn *lg = data;

	(void)l;
	(void)events;
	for (;;) {
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 || (lg->bytes += (uint64_t)n) >= LINGER_BYTES) {
			done(lg); /* the client closed (or failed), or sent too much */
			return;
		}
	}
}

void linger_close(struct linger_set *ls, int fd)
{
	if (fd < 0)
		return;
	struct lingering_conn *lg = ls->n < LINGER_MAX ? calloc(1, sizeof(*lg)) : NULL;
	if (!lg || shutdown(fd, SHUT_WR) || ev_add(ls->loop, fd, EV_READ, on_readable, lg)) {
		free(lg);
		close(fd);
		return;
	}
	*lg = (struct lingering_conn){.ls = ls, .fd = fd, .next = ls->head};
	lg->timer = ev_timer_add(ls->loop, LINGER_MS, on_timeout, lg);
	if (!lg->timer) {
		ev_del(ls->loop, fd);
		close(fd);
		free(lg);
		return;
	}
	ls->head = lg;
	ls->n++;
}

void linger_free(struct linger_set *ls)
{
	while (ls->head)
		done(ls->head);
}

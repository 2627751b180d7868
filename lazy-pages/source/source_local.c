/* Page data from the local pages-N.img files: read, or mapped in place. */
#include "source.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_MAPS IMG_MAX_TASKS

struct local_map {
	int fd;
	void *addr;
	size_t len;
};

struct local {
	struct local_map *m;
	size_t n, cap;
};

static int local_read(struct page_source *s, const struct img_task *t, uint64_t off, void *buf,
		      size_t len)
{
	(void)s;
	size_t got = 0;

	if (t->pages_fd < 0 || off > t->pages_size || len > t->pages_size - off)
		return -ERANGE;
	while (got < len) {
		ssize_t n = pread(t->pages_fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file shrank under us */
		got += (size_t)n;
	}
	return 0;
}

/* The whole pages file of t, mapped once (tasks often share one). */
static const struct local_map *map_of(struct local *l, const struct img_task *t)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->m[i].fd == t->pages_fd)
			return &l->m[i];
	if (l->n == MAX_MAPS || !t->pages_size || t->pages_size > SIZE_MAX)
		return NULL;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct local_map *m = realloc(l->m, cap * sizeof(*m));
		if (!m)
			return NULL;
		l->m = m;
		l->cap = cap;
	}
	void *a = mmap(NULL, t->pages_size, PROT_READ, MAP_SHARED, t->pages_fd, 0);
	if (a == MAP_FAILED)
		return NULL;
	madvise(a, t->pages_size, MADV_SEQUENTIAL);
	l->m[l->n] = (struct local_map){t->pages_fd, a, t->pages_size};
	return &l->m[l->n++];
}

static const void *local_map(struct page_source *s, const struct img_task *t, uint64_t off,
			     size_t len)
{
	if (t->pages_fd < 0 || off > t->pages_size || len > t->pages_size - off)
		return NULL;
	const struct local_map *m = map_of(s->priv, t);
	return m ? (const char *)m->addr + off : NULL;
}

static void local_close(struct page_source *s)
{
	struct local *l = s->priv;

	for (size_t i = 0; l && i < l->n; i++)
		munmap(l->m[i].addr, l->m[i].len);
	if (l)
		free(l->m);
	free(l);
	s->priv = NULL;
}

static const struct page_source_ops local_ops = {
    .name = "local",
    .read = local_read,
    .close = local_close,
    .map = local_map,
};

int page_source_local(struct page_source *s)
{
	struct local *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	s->ops = &local_ops;
	s->priv = l;
	return 0;
}

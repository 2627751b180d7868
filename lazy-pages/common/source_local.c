/* Page data from the local pages-N.img files. */
#include "source.h"

#include <errno.h>
#include <unistd.h>

static int local_read(struct page_source *s, const struct img_task *t, uint64_t vaddr, uint64_t off,
		      void *buf, size_t len)
{
	(void)s;
	(void)vaddr;
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

static void local_close(struct page_source *s)
{
	(void)s;
}

static const struct page_source_ops local_ops = {
    .name = "local",
    .read = local_read,
    .close = local_close,
};

int page_source_local(struct page_source *s)
{
	s->ops = &local_ops;
	s->priv = NULL;
	return 0;
}

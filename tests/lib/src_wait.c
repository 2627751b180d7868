#include "src_wait.h"

#include <errno.h>
#include <unistd.h>

#define MAX_WAITS 1000 /* far more than any --source-retries of the tests */

int src_read_waiting(struct page_source *s, const struct img_task *t, uint64_t src, void *buf,
		     size_t len)
{
	int rc = -EIO;

	for (int i = 0; i < MAX_WAITS; i++) {
		rc = s->ops->read(s, t, src, buf, len);
		if (rc != -EAGAIN || !s->ops->wait_ms)
			return rc;
		usleep((s->ops->wait_ms(s) + 1) * 1000u);
	}
	return rc;
}

/* The working-set record's file: its bytes checked and decoded, written atomically, and the
 * identity of the images it belongs to (workset.h). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "lazy-workset.pb-c.h"
#include "workset.h"

#define WS_MAGIC "LZWSET01"
#define WS_HEAD 16 /* magic, xxh64 of the rest */
#define WS_IDENT_FILE_MAX (256u << 20)

static int decode_task(const LwsTask *m, struct ws_task *t, struct errmsg *e)
{
	size_t n = m->n_addr;

	if (m->n_pages != n || m->n_t_ms != n || m->n_seen != n)
		return errmsg_set(e, EINVAL, "task %d: its arrays differ in length", m->pid);
	if (n > WS_MAX_TASK_ENTRIES)
		return errmsg_set(e, EINVAL, "task %d: %zu entries (at most %u)", m->pid, n,
				  WS_MAX_TASK_ENTRIES);
	*t = (struct ws_task){.pid = m->pid};
	t->e = malloc(n * sizeof(*t->e) + 1);
	if (!t->e)
		return errmsg_set(e, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		uint64_t a = m->addr[i], p = m->pages[i];
		if (a % IMG_PAGE_SIZE || !p || p > WS_MAX_ENTRY_PAGES ||
		    a > UINT64_MAX - p * IMG_PAGE_SIZE || !m->seen[i]) {
			free(t->e);
			t->e = NULL;
			return errmsg_set(e, EINVAL,
					  "task %d: entry %zu (0x%llx, %llu pages) is invalid",
					  m->pid, i, (unsigned long long)a, (unsigned long long)p);
		}
		t->e[i] = (struct ws_entry){a, (uint32_t)p, m->t_ms[i], m->seen[i]};
	}
	t->n = t->cap = (uint32_t)n;
	return 0;
}

int ws_decode(const uint8_t *buf, size_t len, struct workset *ws, struct errmsg *e)
{
	uint64_t sum;
	int rc = 0;

	ws_init(ws, 0);
	if (len < WS_HEAD || memcmp(buf, WS_MAGIC, 8))
		return errmsg_set(e, EINVAL, "not a working-set record (no LZWSET01 header)");
	if (len > WS_MAX_FILE)
		return errmsg_set(e, EINVAL, "%zu bytes (at most %u)", len, WS_MAX_FILE);
	memcpy(&sum, buf + 8, 8);
	if (le64toh(sum) != XXH64(buf + WS_HEAD, len - WS_HEAD, 0))
		return errmsg_set(e, EINVAL, "checksum mismatch (truncated or corrupt)");
	LwsRecord *m = lws_record__unpack(NULL, len - WS_HEAD, buf + WS_HEAD);
	if (!m)
		return errmsg_set(e, EINVAL, "cannot decode the record");
	if (m->version != WS_VERSION)
		rc = errmsg_set(e, EINVAL, "version %u (this criu-lazyd reads %u)", m->version,
				WS_VERSION);
	else if (m->n_tasks > IMG_MAX_TASKS)
		rc = errmsg_set(e, EINVAL, "%zu tasks", m->n_tasks);
	if (!rc && m->n_tasks) {
		ws->tasks = calloc(m->n_tasks, sizeof(*ws->tasks));
		if (!ws->tasks)
			rc = errmsg_set(e, ENOMEM, "out of memory");
	}
	for (size_t i = 0; !rc && i < m->n_tasks; i++) {
		if (ws_find(ws, m->tasks[i]->pid))
			rc = errmsg_set(e, EINVAL, "task %d twice", m->tasks[i]->pid);
		else if (!(rc = decode_task(m->tasks[i], &ws->tasks[i], e)))
			ws->ntasks++;
	}
	if (!rc) {
		ws->image = m->image;
		ws->restores = m->restores;
	}
	lws_record__free_unpacked(m, NULL);
	if (rc)
		ws_free(ws);
	return rc;
}

int ws_encode(const struct workset *ws, uint8_t **buf, size_t *len)
{
	LwsRecord m = LWS_RECORD__INIT;
	LwsTask *tasks = calloc(ws->ntasks + 1, sizeof(*tasks));
	LwsTask **tp = calloc(ws->ntasks + 1, sizeof(*tp));
	int rc = tasks && tp ? 0 : -ENOMEM;

	m.version = WS_VERSION;
	m.image = ws->image;
	m.restores = ws->restores;
	for (uint32_t i = 0; !rc && i < ws->ntasks; i++) {
		const struct ws_task *t = &ws->tasks[i];
		LwsTask *p = &tasks[i];
		lws_task__init(p);
		p->pid = t->pid;
		p->n_addr = p->n_pages = p->n_t_ms = p->n_seen = t->n;
		p->addr = malloc(t->n * sizeof(uint64_t) + 1);
		p->pages = malloc(t->n * sizeof(uint32_t) + 1);
		p->t_ms = malloc(t->n * sizeof(uint32_t) + 1);
		p->seen = malloc(t->n * sizeof(uint32_t) + 1);
		tp[m.n_tasks++] = p;
		if (!p->addr || !p->pages || !p->t_ms || !p->seen) {
			rc = -ENOMEM;
			break;
		}
		for (uint32_t k = 0; k < t->n; k++) {
			p->addr[k] = t->e[k].addr;
			p->pages[k] = t->e[k].pages;
			p->t_ms[k] = t->e[k].t_ms;
			p->seen[k] = t->e[k].seen;
		}
	}
	m.tasks = tp;
	size_t body = rc ? 0 : lws_record__get_packed_size(&m);
	if (!rc && body > WS_MAX_FILE - WS_HEAD)
		rc = -E2BIG;
	uint8_t *out = rc ? NULL : malloc(WS_HEAD + body);
	if (!rc && !out)
		rc = -ENOMEM;
	if (!rc) {
		lws_record__pack(&m, out + WS_HEAD);
		uint64_t sum = htole64(XXH64(out + WS_HEAD, body, 0));
		memcpy(out, WS_MAGIC, 8);
		memcpy(out + 8, &sum, 8);
		*buf = out;
		*len = WS_HEAD + body;
	}
	for (size_t i = 0; i < m.n_tasks; i++) {
		free(tp[i]->addr);
		free(tp[i]->pages);
		free(tp[i]->t_ms);
		free(tp[i]->seen);
	}
	free(tasks);
	free(tp);
	return rc;
}

/* All of dirfd/name (a regular file of at most max bytes) in *buf. 0 or -errno. */
static int read_file(int dirfd, const char *name, size_t max, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = -EINVAL;
	else if ((uint64_t)st.st_size > max)
		rc = -EFBIG;
	uint8_t *b = rc ? NULL : malloc((size_t)st.st_size + 1);
	if (!rc && !b)
		rc = -ENOMEM;
	size_t got = 0;
	while (!rc && got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = n ? -errno : -EIO; /* shorter than it was a moment ago */
		else
			got += (size_t)n;
	}
	close(fd);
	if (rc) {
		free(b);
		return rc;
	}
	*buf = b;
	*len = got;
	return 0;
}

int ws_load(int dirfd, const char *name, uint64_t image, struct workset *ws, struct errmsg *e)
{
	uint8_t *buf;
	size_t len;
	int rc = read_file(dirfd, name, WS_MAX_FILE, &buf, &len);

	ws_init(ws, image);
	if (rc == -EFBIG)
		return errmsg_set(e, EINVAL, "%s: larger than %u bytes", name, WS_MAX_FILE);
	if (rc)
		return errmsg_set(e, -rc, "%s: %s", name, strerror(-rc));
	rc = ws_decode(buf, len, ws, e);
	free(buf);
	if (rc)
		return errmsg_prefix(e, rc, "%s", name);
	if (ws->image != image) {
		ws_free(ws);
		ws->image = image;
		return errmsg_set(e, ESTALE, "%s: recorded for other images (another dump)", name);
	}
	return 0;
}

int ws_save(int dirfd, const char *name, const struct workset *ws, struct errmsg *e)
{
	char tmp[256];
	uint8_t *buf;
	size_t len, off = 0;
	int rc = ws_encode(ws, &buf, &len);

	if (rc)
		return errmsg_set(e, -rc, "%s: cannot encode: %s", name, strerror(-rc));
	snprintf(tmp, sizeof(tmp), ".%s.%d.tmp", name, (int)getpid());
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = errmsg_set(e, errno, "%s: cannot create %s: %m", name, tmp);
		free(buf);
		return rc;
	}
	while (!rc && off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = errmsg_set(e, n ? errno : EIO, "%s: cannot write: %m", name);
		else
			off += (size_t)n;
	}
	if (!rc && fsync(fd))
		rc = errmsg_set(e, errno, "%s: cannot sync: %m", name);
	if (close(fd) && !rc)
		rc = errmsg_set(e, errno, "%s: cannot write: %m", name);
	if (!rc && renameat(dirfd, tmp, dirfd, name))
		rc = errmsg_set(e, errno, "%s: cannot rename it into place: %m", name);
	if (rc)
		unlinkat(dirfd, tmp, 0);
	free(buf);
	return rc;
}

static int hash_file(XXH64_state_t *h, int dirfd, const char *name, struct errmsg *e)
{
	uint8_t *buf;
	size_t len;
	int rc = read_file(dirfd, name, WS_IDENT_FILE_MAX, &buf, &len);

	if (rc)
		return errmsg_set(e, -rc, "%s: %s", name, strerror(-rc));
	XXH64_update(h, name, strlen(name) + 1);
	XXH64_update(h, buf, len);
	free(buf);
	return 0;
}

int img_workset_identity(int dirfd, const struct img_set *set, uint64_t *id, struct errmsg *e)
{
	XXH64_state_t *h = XXH64_createState();
	char name[64];
	int rc;

	if (!h)
		return errmsg_set(e, ENOMEM, "out of memory");
	XXH64_reset(h, 0);
	rc = hash_file(h, dirfd, "inventory.img", e);
	if (!rc)
		rc = hash_file(h, dirfd, "pstree.img", e);
	for (size_t i = 0; !rc && i < set->nr_tasks; i++) {
		const struct img_task *t = &set->tasks[i];
		if (!t->has_mm)
			continue;
		snprintf(name, sizeof(name), "mm-%d.img", t->pid);
		rc = hash_file(h, dirfd, name, e);
		snprintf(name, sizeof(name), "pagemap-%d.img", t->pid);
		if (!rc)
			rc = hash_file(h, dirfd, name, e);
		/* Its lazy data pages (from the pagemap: the same whether the pages come from
		 * the local images or criu-imgd, which loaded none of the pages file). */
		uint64_t n = htole64(t->lazy_pages);
		XXH64_update(h, &n, sizeof(n));
	}
	*id = XXH64_digest(h);
	XXH64_freeState(h);
	return rc;
}

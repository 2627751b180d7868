/*
 * Images of the object store, served: the manifest, the small files in a private local dir,
 * page data by chunks through the cache. Every byte from the store is checked against the
 * manifest (sizes, XXH64) before it is used; the manifest itself is parsed as hostile input.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/log.h"
#include "wire/wire_io.h"

#define STORE_META_TOTAL (1ull << 30) /* bytes of all small files of one image */

int store_init(struct imgd_store *st, const struct store_cfg *cfg, size_t cache_bytes,
	       struct errmsg *e)
{
	memset(st, 0, sizeof(*st));
	int rc = store_be_open(&st->be, cfg, e);
	if (rc)
		return rc;
	if (store_cache_init(&st->cache, cache_bytes)) {
		store_be_close(&st->be);
		return errmsg_set(e, ENOMEM, "out of memory for the chunk cache");
	}
	/* Reach the store and have it check the credentials now, not at the first restore: a
	 * HEAD of a key no image can have (ids start with a letter or a digit). */
	rc = store_be_head(&st->be, ".criu-imgd-probe", e);
	if (rc && rc != -ENOENT) {
		errmsg_prefix(e, rc, "the store %s does not answer as it should", cfg->store);
		store_free(st);
		return rc;
	}
	/* Connections are made again at the first request: criu-imgd may fork to detach, and
	 * librados' threads would not follow. */
	store_be_idle(&st->be);
	return 0;
}

void store_free(struct imgd_store *st)
{
	store_fetch_stop(st);
	store_cache_free(&st->cache);
	store_be_close(&st->be);
}

int store_manifest_get(struct imgd_store *st, const char *id, struct store_manifest *m,
		       struct errmsg *e)
{
	char key[STORE_KEY_MAX];
	size_t got;
	int rc;

	if (!image_id_ok(id))
		return errmsg_set(e, ENOENT, "bad image id (%s)", IMAGE_ID_RULE);
	char *buf = malloc(STORE_MANIFEST_MAX);
	if (!buf)
		return errmsg_set(e, ENOMEM, "out of memory");
	snprintf(key, sizeof(key), "%s/manifest", id);
	rc = store_be_get(&st->be, key, 0, 0, buf, STORE_MANIFEST_MAX, &got, e);
	if (rc == -ENOENT)
		rc = errmsg_set(e, ENOENT,
				"no image '%s' in %s (no manifest: absent, or its "
				"upload did not finish)",
				id, st->be.url);
	if (!rc && (rc = store_manifest_parse(buf, got, m, e)))
		errmsg_prefix(e, rc, "image %s in %s", id, st->be.url);
	free(buf);
	return rc;
}

int store_small_fetch(struct imgd_store *st, const char *id, const struct store_manifest *m,
		      const struct store_file *f, int dirfd, struct errmsg *e)
{
	char key[STORE_KEY_MAX];
	size_t got = 0;
	uint8_t *buf = malloc(f->size ? f->size : 1);
	int rc;

	if (!buf)
		return errmsg_set(e, ENOMEM, "out of memory");
	snprintf(key, sizeof(key), "%s/%s/meta/%s", id, m->gen, f->name);
	rc = store_be_get(&st->be, key, 0, 0, buf, f->size, &got, e);
	if (!rc && (got != f->size || XXH64(buf, got, 0) != f->sum)) {
		st->bad_chunks++;
		rc = errmsg_set(e, EILSEQ,
				"image %s: %s: %zu bytes that do not match the manifest's size "
				"and checksum: the store's copy is damaged",
				id, f->name, got);
	}
	int fd = rc ? -1 : wire_create_private(dirfd, f->name);
	if (!rc && fd < 0)
		rc = errmsg_set(e, errno, "cannot create %s: %s", f->name, strerror(errno));
	if (fd >= 0) {
		ssize_t w = f->size ? write(fd, buf, f->size) : 0;
		if ((w < 0 || (size_t)w != f->size) | close(fd))
			rc = errmsg_set(e, EIO, "cannot write %s locally", f->name);
	}
	free(buf);
	return rc;
}

/* Remove the local dir of an image (files only, as we made it). */
static void remove_local(int spoolfd, const char *name, const struct store_manifest *m)
{
	int dfd = openat(spoolfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd >= 0) {
		for (size_t i = 0; i < m->n; i++)
			unlinkat(dfd, m->f[i].name, 0);
		close(dfd);
	}
	if (unlinkat(spoolfd, name, AT_REMOVEDIR) && errno != ENOENT)
		pr_warn("cannot remove the spool dir %s: %s", name, strerror(errno));
}

int store_image_open(struct imgd_store *st, int spoolfd, const char *id, struct store_img **out,
		     int *dirfd, struct errmsg *e)
{
	static unsigned long seq;
	struct store_img *si = calloc(1, sizeof(*si));
	uint64_t total = 0;
	int rc, fd = -1;

	if (!si)
		return errmsg_set(e, ENOMEM, "out of memory");
	si->spoolfd = spoolfd;
	snprintf(si->id, sizeof(si->id), "%s", id);
	rc = store_manifest_get(st, id, &si->m, e);
	if (rc) {
		free(si);
		return rc;
	}
	snprintf(si->local, sizeof(si->local), ".store-%s.%lu", id, ++seq);
	if (mkdirat(spoolfd, si->local, 0700) ||
	    (fd = openat(spoolfd, si->local, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
		0) {
		rc = errmsg_set(e, errno, "cannot make the spool dir %s: %s", si->local,
				strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < si->m.n && !rc; i++) {
		const struct store_file *f = &si->m.f[i];
		if (!f->pages && (total += f->size) > STORE_META_TOTAL) {
			rc = errmsg_set(e, EFBIG, "image %s: more than 1 GiB of small files", id);
			break;
		}
		if (!f->pages) {
			rc = store_small_fetch(st, id, &si->m, f, fd, e);
			continue;
		}
		/* A hole of the file's size: img/ reads its size only; the data is ours. */
		int pfd = wire_create_private(fd, f->name);
		if (pfd < 0 || ftruncate(pfd, (off_t)f->size))
			rc = errmsg_set(e, errno, "cannot create %s locally: %s", f->name,
					strerror(errno));
		if (pfd >= 0)
			close(pfd);
	}
	if (rc)
		goto fail;
	*out = si;
	*dirfd = fd;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (si->local[0])
		remove_local(spoolfd, si->local, &si->m);
	store_manifest_free(&si->m);
	free(si);
	return rc;
}

void store_image_close(struct store_img *si)
{
	if (!si)
		return;
	remove_local(si->spoolfd, si->local, &si->m);
	store_manifest_free(&si->m);
	free(si);
}

void store_lock(struct imgd_store *st)
{
	if (st->ra.inited)
		pthread_mutex_lock(&st->ra.mu);
}

void store_unlock(struct imgd_store *st)
{
	if (st->ra.inited)
		pthread_mutex_unlock(&st->ra.mu);
}

void store_chunk_keys(const struct store_img *si, const struct store_file *f, uint64_t k,
		      char ckey[STORE_CACHE_KEY], char okey[STORE_KEY_MAX])
{
	/* The chunk's checksum too: a chunk checked against one manifest is never served for
	 * another that says otherwise (a manifest rewritten under the same gen). */
	snprintf(ckey, STORE_CACHE_KEY, "%s/%s/%s/%llx/%016llx", si->id, si->m.gen, f->name,
		 (unsigned long long)k, (unsigned long long)f->csum[k]);
	snprintf(okey, STORE_KEY_MAX, "%s/%s/pages/%s/%08llx", si->id, si->m.gen, f->name,
		 (unsigned long long)k);
}

uint32_t store_chunk_len(const struct store_manifest *m, const struct store_file *f, uint64_t k)
{
	uint64_t off = k * m->chunk;

	return (uint32_t)(f->size - off < m->chunk ? f->size - off : m->chunk);
}

int store_chunk_fetch(struct imgd_store *st, const char *id, const struct store_manifest *m,
		      const struct store_file *f, uint64_t k, uint8_t **out, uint32_t *len,
		      struct errmsg *e)
{
	char key[STORE_KEY_MAX];
	uint32_t n = store_chunk_len(m, f, k);
	uint8_t *buf = malloc(n ? n : 1);
	int rc;

	if (!buf)
		return errmsg_set(e, ENOMEM, "out of memory for a chunk");
	snprintf(key, sizeof(key), "%s/%s/pages/%s/%08llx", id, m->gen, f->name,
		 (unsigned long long)k);
	rc = store_be_get(&st->be, key, 0, n, buf, n, NULL, e);
	if (!rc && XXH64(buf, n, 0) != f->csum[k])
		rc = errmsg_set(e, EILSEQ,
				"image %s: chunk %llu of %s does not match its checksum: the "
				"store's copy is damaged",
				id, (unsigned long long)k, f->name);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* in bytes of chunk k from at into buf: from the cache, from a read-ahead in flight, or
 * fetched here. 0 or -errno with e. */
static int read_chunk(struct imgd_store *st, const struct store_img *si, const struct store_file *f,
		      uint64_t k, uint32_t at, size_t n, uint8_t *buf, struct errmsg *e)
{
	char ckey[STORE_CACHE_KEY], okey[STORE_KEY_MAX];
	uint32_t clen;
	uint8_t *data;

	store_chunk_keys(si, f, k, ckey, okey);
	store_lock(st);
	const uint8_t *c = store_cache_get(&st->cache, ckey, &clen);
	if (!c && st->ra.inited && store_fetch_wait(st, ckey))
		c = store_cache_get(&st->cache, ckey, &clen);
	bool hit = c && clen == store_chunk_len(&si->m, f, k) && clen >= at + n;
	if (hit)
		memcpy(buf, c + at, n);
	store_unlock(st);
	if (hit)
		return 0;
	int rc = store_chunk_fetch(st, si->id, &si->m, f, k, &data, &clen, e);
	store_lock(st);
	st->chunk_reads++;
	st->bad_chunks += rc == -EILSEQ;
	if (!rc) {
		memcpy(buf, data + at, n); /* clen: the manifest's, so at + n fits */
		store_cache_put(&st->cache, ckey, data, clen);
	}
	store_unlock(st);
	return rc;
}

int store_image_read(struct imgd_store *st, const struct store_img *si, const char *name,
		     uint64_t off, size_t len, void *buf, struct errmsg *e)
{
	const struct store_file *f = store_manifest_find(&si->m, name);
	int rc;

	if (!f || !f->pages || off > f->size || len > f->size - off)
		return errmsg_set(e, EINVAL, "image %s: %s: bytes %llu+%zu are not in it", si->id,
				  name, (unsigned long long)off, len);
	for (size_t done = 0; done < len;) {
		uint64_t at = off + done, k = at / si->m.chunk;
		uint32_t in = (uint32_t)(at - k * si->m.chunk);
		size_t n = store_chunk_len(&si->m, f, k) - in;
		if (n > len - done)
			n = len - done;
		if ((rc = read_chunk(st, si, f, k, in, n, (uint8_t *)buf + done, e)))
			return rc;
		store_fetch_ahead(st, si, f, k);
		done += n;
	}
	return 0;
}

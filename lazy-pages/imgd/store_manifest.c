/* The manifest of an image in the object store: format and hostile-input parser. */
#include "store_manifest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MF_CHUNK_LINE_MIN 19 /* "c " + 16 hex digits + newline */

uint64_t store_chunks(uint64_t size, uint32_t chunk)
{
	return chunk ? (size + chunk - 1) / chunk : 0;
}

void store_manifest_free(struct store_manifest *m)
{
	if (m->f)
		for (size_t i = 0; i < m->n; i++)
			free(m->f[i].csum);
	free(m->f);
	memset(m, 0, sizeof(*m));
}

const struct store_file *store_manifest_find(const struct store_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->f[i].name, name))
			return &m->f[i];
	return NULL;
}

/* A cursor over the text: one line at a time, each at most LINE_MAX bytes. */
#define MF_LINE_MAX 256

struct cur {
	const char *p, *end;
	unsigned line;
	char buf[MF_LINE_MAX + 1];
};

/* The next line into c->buf (without '\n'): 0, -ENODATA at the end, -EINVAL when too long,
 * holding a NUL, or not ended by '\n'. */
static int next_line(struct cur *c)
{
	if (c->p >= c->end)
		return -ENODATA;
	const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
	if (!nl || nl - c->p > MF_LINE_MAX || memchr(c->p, 0, (size_t)(nl - c->p)))
		return -EINVAL;
	memcpy(c->buf, c->p, (size_t)(nl - c->p));
	c->buf[nl - c->p] = 0;
	c->p = nl + 1;
	c->line++;
	return 0;
}

/* Exactly 16 lower-case hex digits. */
static int hex64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (strlen(s) != 16)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		char ch = s[i];
		unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
			     : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
						      : 16u;
		if (d > 15)
			return -EINVAL;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

/* A decimal without sign, leading zeros or overflow, at most max. */
static int dec64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 20)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* Split c->buf at single spaces into at most 4 words; the count, or -EINVAL. */
static int words(char *buf, char **w)
{
	int n = 0;

	for (char *s = buf; *s;) {
		if (n == 4 || *s == ' ')
			return -EINVAL;
		w[n++] = s;
		char *sp = strchr(s, ' ');
		if (!sp)
			break;
		*sp = 0;
		s = sp + 1;
		if (!*s)
			return -EINVAL;
	}
	return n;
}

#define BAD(fmt, ...) errmsg_set(e, EINVAL, "manifest line %u: " fmt, c->line, ##__VA_ARGS__)

/* A file or pages line (w[0..2]) and, for pages, its chunk lines. 0 or -errno with e. */
static int parse_file(struct cur *c, char **w, int nw, struct store_manifest *m, struct errmsg *e)
{
	bool pages = !strcmp(w[0], "pages");
	struct store_file *f = &m->f[m->n];

	if (nw != (pages ? 3 : 4))
		return BAD("'%s' takes %d values", w[0], pages ? 2 : 3);
	if (m->n == WIRE_MAX_META_FILES)
		return BAD("more than %u files", WIRE_MAX_META_FILES);
	if (!wire_upload_name_ok(w[1]) || (pages != (wire_meta_pages_id(w[1]) >= 0)))
		return BAD("bad file name for '%s'", w[0]);
	if (store_manifest_find(m, w[1]))
		return BAD("%s listed twice", w[1]);
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", w[1]);
	f->pages = pages;
	if (dec64(w[2], pages ? STORE_PAGES_MAX : WIRE_MAX_META_FILE, &f->size))
		return BAD("bad size for %s", f->name);
	if (!pages) {
		if (hex64(w[3], &f->sum))
			return BAD("bad checksum for %s", f->name);
		m->n++;
		return 0;
	}
	f->nchunks = store_chunks(f->size, m->chunk);
	/* Each takes a line of at least 19 bytes ("c " 16 hex digits, newline): a size the
	 * rest of the manifest cannot list is refused before anything is allocated for it. */
	if (f->nchunks > (uint64_t)(c->end - c->p) / MF_CHUNK_LINE_MIN)
		return BAD("%s: %llu chunks, more than the rest of the manifest lists", f->name,
			   (unsigned long long)f->nchunks);
	f->csum = calloc(f->nchunks ? f->nchunks : 1, sizeof(*f->csum));
	if (!f->csum)
		return errmsg_set(e, ENOMEM, "manifest: out of memory for %llu chunks",
				  (unsigned long long)f->nchunks);
	m->n++; /* freed with m from here */
	for (uint64_t k = 0; k < f->nchunks; k++) {
		char *cw[4];
		if (next_line(c))
			return BAD("%s: chunk %llu of %llu missing", f->name, (unsigned long long)k,
				   (unsigned long long)f->nchunks);
		if (words(c->buf, cw) != 2 || strcmp(cw[0], "c") || hex64(cw[1], &f->csum[k]))
			return BAD("%s: bad chunk line", f->name);
	}
	return 0;
}

int store_manifest_parse(const char *text, size_t len, struct store_manifest *m, struct errmsg *e)
{
	struct cur cur = {.p = text, .end = text + len}, *c = &cur;
	char *w[4];
	uint64_t v;
	int rc, nw;

	memset(m, 0, sizeof(*m));
	if (len > STORE_MANIFEST_MAX)
		return errmsg_set(e, EINVAL, "manifest: %zu bytes, more than %u", len,
				  STORE_MANIFEST_MAX);
	if (next_line(c) || strcmp(c->buf, STORE_MANIFEST_MAGIC))
		return errmsg_set(e, EINVAL,
				  "manifest: not a criu-imgd store manifest (version 1)");
	if (next_line(c) || words(c->buf, w) != 2 || strcmp(w[0], "chunk") ||
	    dec64(w[1], STORE_CHUNK_MAX, &v) || v < 4096 || v % 4096)
		return BAD("expected 'chunk BYTES' (a multiple of 4096 up to 16 MiB)");
	m->chunk = (uint32_t)v;
	if (next_line(c) || words(c->buf, w) != 2 || strcmp(w[0], "gen") || hex64(w[1], &v))
		return BAD("expected 'gen' and 16 hex digits");
	memcpy(m->gen, w[1], 17);
	m->f = calloc(WIRE_MAX_META_FILES, sizeof(*m->f));
	if (!m->f)
		return errmsg_set(e, ENOMEM, "manifest: out of memory");
	for (;;) {
		const char *line_start = c->p;
		if ((rc = next_line(c))) {
			rc = BAD("%s", rc == -ENODATA ? "no 'end' line (truncated)" : "bad line");
			break;
		}
		if ((nw = words(c->buf, w)) < 1) {
			rc = BAD("empty or badly spaced");
			break;
		}
		if (!strcmp(w[0], "end")) {
			if (nw != 2 || hex64(w[1], &m->sum))
				rc = BAD("expected 'end XXH64'");
			else if (XXH64(text, (size_t)(line_start - text), 0) != m->sum)
				rc = errmsg_set(e, EINVAL, "manifest: checksum mismatch (damaged)");
			else if (c->p != c->end)
				rc = BAD("bytes after 'end'");
			break;
		}
		if (strcmp(w[0], "file") && strcmp(w[0], "pages")) {
			rc = BAD("unknown keyword");
			break;
		}
		if ((rc = parse_file(c, w, nw, m, e)))
			break;
	}
	if (rc)
		store_manifest_free(m);
	return rc;
}

/* Append to a growing buffer: 0 or -ENOMEM. */
struct sbuf {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static int put(struct sbuf *b, const char *fmt, ...)
{
	char line[MF_LINE_MAX + 2];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, line, (size_t)n + 1);
	b->len += (size_t)n;
	return 0;
}

int store_manifest_format(const struct store_manifest *m, char **text, size_t *len)
{
	struct sbuf b = {0};
	uint64_t g;
	int rc = hex64(m->gen, &g)
		     ? -EINVAL
		     : put(&b, "%s\nchunk %u\ngen %s\n", STORE_MANIFEST_MAGIC, m->chunk, m->gen);

	for (size_t i = 0; !rc && i < m->n; i++) {
		const struct store_file *f = &m->f[i];
		if (!wire_upload_name_ok(f->name)) {
			rc = -EINVAL;
			break;
		}
		if (!f->pages) {
			rc = put(&b, "file %s %llu %016llx\n", f->name, (unsigned long long)f->size,
				 (unsigned long long)f->sum);
			continue;
		}
		rc = put(&b, "pages %s %llu\n", f->name, (unsigned long long)f->size);
		for (uint64_t k = 0; !rc && k < f->nchunks; k++)
			rc = put(&b, "c %016llx\n", (unsigned long long)f->csum[k]);
	}
	if (!rc)
		rc = put(&b, "end %016llx\n", (unsigned long long)XXH64(b.p, b.len, 0));
	if (!rc && b.len > STORE_MANIFEST_MAX)
		rc = -EINVAL;
	if (rc) {
		free(b.p);
		return rc;
	}
	*text = b.p;
	*len = b.len;
	return 0;
}

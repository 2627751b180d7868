/*
 * The S3 client of criu-imgd's object store: libcurl does HTTP and SigV4 (CURLOPT_AWS_SIGV4;
 * radosgw wants the header x-amz-content-sha256: UNSIGNED-PAYLOAD); nothing here speaks HTTP
 * or signs by hand. Answers are bounded by the caller's buffer.
 */
#include "store_s3.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S3_CONNECT_S 5 /* to connect to the endpoint */
#define S3_STALL_S 10  /* a request that moves less than S3_STALL_BPS for this long fails */
#define S3_STALL_BPS 16384
/* The whole request: this long, plus a second per MiB it moves (a store that dribbles a
 * byte a second would otherwise hold the server for days). */
#define S3_BASE_MS 30000
#define S3_MS_PER_MIB 1000
#define S3_ERRBODY 512	 /* bytes of an error answer kept to name the error */
#define S3_CRED_MAX 4096 /* bytes of the credentials file */

int s3_parse_url(const char *url, char *bucket, size_t blen, char *prefix, size_t plen,
		 struct errmsg *e)
{
	if (strncmp(url, "s3://", 5))
		return errmsg_set(e, EINVAL, "--store %s: expected s3://BUCKET[/PREFIX]", url);
	const char *b = url + 5, *sl = strchr(b, '/');
	size_t n = sl ? (size_t)(sl - b) : strlen(b);
	if (n < 3 || n > 63 || n >= blen)
		return errmsg_set(e, EINVAL, "--store %s: a bucket name has 3 to 63 characters",
				  url);
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)b[i]) && !isdigit((unsigned char)b[i]) &&
		    !strchr(".-", b[i]))
			return errmsg_set(e, EINVAL, "--store %s: a bucket name is [a-z0-9.-] only",
					  url);
	memcpy(bucket, b, n);
	bucket[n] = 0;
	return store_parse_prefix(url, sl ? sl + 1 : "", prefix, plen, e);
}

/* One "key = value" line: 0 when it names key (value copied), 1 when another key. */
static int cred_line(const char *line, const char *key, char *out, size_t olen)
{
	size_t k = strlen(key);

	if (strncmp(line, key, k))
		return 1;
	const char *p = line + k;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '=')
		return 1;
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t n = strcspn(p, " \t\r");
	if (!n || n >= olen)
		return -EINVAL;
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

int s3_read_credentials(const char *path, char *access, size_t alen, char *secret, size_t slen,
			struct errmsg *e)
{
	char buf[S3_CRED_MAX + 1];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return errmsg_set(e, errno, "--s3-credentials %s: %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return errmsg_set(e, EINVAL, "--s3-credentials %s: not a regular file", path);
	}
	if (st.st_mode & 077) {
		close(fd);
		return errmsg_set(e, EPERM,
				  "--s3-credentials %s: mode %03o lets group or others read it: "
				  "refused (chmod 600 %s)",
				  path, (unsigned)(st.st_mode & 0777), path);
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		close(fd);
		return errmsg_set(e, EPERM,
				  "--s3-credentials %s: owned by uid %u, not by us or root", path,
				  (unsigned)st.st_uid);
	}
	ssize_t n = read(fd, buf, S3_CRED_MAX + 1);
	close(fd);
	if (n < 0 || n > S3_CRED_MAX)
		return errmsg_set(e, n < 0 ? errno : EFBIG, "--s3-credentials %s: %s", path,
				  n < 0 ? strerror(errno) : "larger than 4 KiB");
	buf[n] = 0;
	access[0] = secret[0] = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#')
			continue;
		if (cred_line(line, "access_key", access, alen) < 0 ||
		    cred_line(line, "secret_key", secret, slen) < 0) {
			explicit_bzero(buf, sizeof(buf));
			return errmsg_set(e, EINVAL, "--s3-credentials %s: a value is too long",
					  path);
		}
	}
	explicit_bzero(buf, sizeof(buf));
	if (!access[0] || !secret[0])
		return errmsg_set(e, EINVAL,
				  "--s3-credentials %s: needs the lines 'access_key = ...' and "
				  "'secret_key = ...'",
				  path);
	return 0;
}

/* s's libcurl handle and header lists: 0, or -ENOMEM with e. */
static int handles(struct store_s3 *s, struct errmsg *e)
{
	struct curl_slist *h = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	struct curl_slist *ph = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");

	/* No "Expect:" override: libcurl signs it and radosgw then refuses the signature. */
	s->hdr = h;
	s->phdr = ph;
	s->h = curl_easy_init();
	if (!h || !ph || !s->h) {
		s3_close(s);
		return errmsg_set(e, ENOMEM, "cannot initialize libcurl");
	}
	return 0;
}

int s3_open(struct store_s3 *s, const struct store_cfg *c, struct errmsg *e)
{
	char bucket[64], access[128], secret[256];
	const char *ep = c->s3_endpoint;
	int rc;

	memset(s, 0, sizeof(*s));
	if ((rc = s3_parse_url(c->store, bucket, sizeof(bucket), s->prefix, sizeof(s->prefix), e)))
		return rc;
	/* No user@ part: the endpoint is logged, credentials come from their file only. */
	if (!ep || (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)) || strlen(ep) > 512 ||
	    strpbrk(ep, " ?#@\r\n"))
		return errmsg_set(e, EINVAL, "--s3-endpoint: expected http(s)://HOST[:PORT] (%s)",
				  ep ? ep : "none given");
	size_t el = strlen(ep);
	snprintf(s->base, sizeof(s->base), "%.*s/%s/", (int)(ep[el - 1] == '/' ? el - 1 : el), ep,
		 bucket);
	const char *region = c->s3_region ? c->s3_region : "us-east-1";
	for (const char *p = region; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			return errmsg_set(e, EINVAL, "--s3-region %s: [A-Za-z0-9-] only", region);
	if (strlen(region) > 40)
		return errmsg_set(e, EINVAL, "--s3-region: too long");
	snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", region);
	if (!c->s3_credentials)
		return errmsg_set(e, EINVAL, "--store needs --s3-credentials FILE");
	if ((rc = s3_read_credentials(c->s3_credentials, access, sizeof(access), secret,
				      sizeof(secret), e)))
		return rc;
	snprintf(s->userpwd, sizeof(s->userpwd), "%s:%s", access, secret);
	explicit_bzero(secret, sizeof(secret));
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		explicit_bzero(s->userpwd, sizeof(s->userpwd));
		return errmsg_set(e, ENOMEM, "cannot initialize libcurl");
	}
	return handles(s, e);
}

int s3_clone(struct store_s3 *dst, const struct store_s3 *src, struct errmsg *e)
{
	memcpy(dst, src, sizeof(*dst));
	dst->h = dst->hdr = dst->phdr = NULL;
	return handles(dst, e);
}

void s3_close(struct store_s3 *s)
{
	if (s->h)
		curl_easy_cleanup(s->h);
	curl_slist_free_all(s->hdr);
	curl_slist_free_all(s->phdr);
	explicit_bzero(s->userpwd, sizeof(s->userpwd));
	s->h = s->hdr = s->phdr = NULL;
}

/* Where an answer's body goes: buf up to cap, the rest refused (overflow). */
struct sink {
	char *buf;
	size_t cap, len;
	bool overflow;
	char err[S3_ERRBODY + 1]; /* the start of the body too, to name an error */
	size_t elen;
};

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
	struct sink *k = arg;
	size_t len = sz * n;

	if (k->elen < S3_ERRBODY) {
		size_t m = len < S3_ERRBODY - k->elen ? len : S3_ERRBODY - k->elen;
		memcpy(k->err + k->elen, p, m);
		k->elen += m;
		k->err[k->elen] = 0;
	}
	if (len > k->cap - k->len) {
		k->overflow = true;
		return 0;
	}
	if (k->buf)
		memcpy(k->buf + k->len, p, len);
	k->len += len;
	return len;
}

struct source {
	const char *p;
	size_t len, off;
};

static size_t on_read(char *p, size_t sz, size_t n, void *arg)
{
	struct source *r = arg;
	size_t m = sz * n < r->len - r->off ? sz * n : r->len - r->off;

	memcpy(p, r->p + r->off, m);
	r->off += m;
	return m;
}

/* The <Code> of an S3 error body, or "". */
static void err_code(const char *body, char *out, size_t olen)
{
	const char *a = strstr(body, "<Code>"), *b = a ? strstr(a, "</Code>") : NULL;

	out[0] = 0;
	if (a && b && (size_t)(b - a - 6) < olen) {
		memcpy(out, a + 6, (size_t)(b - a - 6));
		out[b - a - 6] = 0;
		for (char *p = out; *p; p++)
			if (!isalnum((unsigned char)*p))
				*p = '?';
	}
}

enum s3_op { S3_GET, S3_HEAD, S3_PUT };

/* One request; the answer's body into k. 0 or -errno with e. */
static int request(struct store_s3 *s, enum s3_op op, const char *key, const char *range,
		   struct source *src, struct sink *k, struct errmsg *e)
{
	static const char *names[] = {"GET", "HEAD", "PUT"};
	char url[sizeof(s->base) + sizeof(s->prefix) + STORE_KEY_MAX], cerr[CURL_ERROR_SIZE] = "";
	CURL *h = s->h;
	long code = 0;

	if (strlen(key) >= STORE_KEY_MAX)
		return errmsg_set(e, ENAMETOOLONG, "object key too long");
	snprintf(url, sizeof(url), "%s%s%s", s->base, s->prefix, key);
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
	curl_easy_setopt(h, CURLOPT_USERPWD, s->userpwd);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, op == S3_PUT ? s->phdr : s->hdr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* A connection per request: on a reused one radosgw's answers come 40 ms late (Nagle
	 * against delayed ACKs; measured on loopback: 2 ms fresh, 42 ms reused). */
	curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)S3_CONNECT_S);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)S3_STALL_BPS);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)S3_STALL_S);
	uint64_t bytes = op == S3_PUT ? src->len : op == S3_GET ? k->cap : 0;
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(S3_BASE_MS + (bytes >> 20) * S3_MS_PER_MIB));
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
	if (range)
		curl_easy_setopt(h, CURLOPT_RANGE, range);
	if (op == S3_HEAD)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (op == S3_PUT) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, src);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)src->len);
	}
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && k->overflow && code >= 300)) {
		if (rc == CURLE_WRITE_ERROR && k->overflow)
			return errmsg_set(e, EFBIG, "%s %s%s: larger than the %zu bytes expected",
					  names[op], s->prefix, key, k->cap);
		return errmsg_set(e, EIO, "%s %s%s%s: %s", names[op], s->base, s->prefix, key,
				  cerr[0] ? cerr : curl_easy_strerror(rc));
	}
	if (code >= 200 && code < 300)
		return 0;
	char ec[64];
	err_code(k->err, ec, sizeof(ec));
	if (code == 404 && strcmp(ec, "NoSuchBucket"))
		return -ENOENT;
	int err = code == 403 || code == 401 ? EACCES : EIO;
	return errmsg_set(e, err, "%s %s%s%s: HTTP %ld%s%s%s", names[op], s->base, s->prefix, key,
			  code, ec[0] ? " " : "", ec,
			  err == EACCES ? " (the store refused these credentials: check "
					  "--s3-credentials and --s3-region)"
					: "");
}

int s3_get(struct store_s3 *s, const char *key, uint64_t off, size_t len, void *buf, size_t cap,
	   size_t *got, struct errmsg *e)
{
	struct sink k = {.buf = buf, .cap = len ? len : cap};
	char range[64];
	int rc;

	if (len)
		snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)off,
			 (unsigned long long)(off + len - 1));
	rc = request(s, S3_GET, key, len ? range : NULL, NULL, &k, e);
	if (rc == -ENOENT)
		return errmsg_set(e, ENOENT, "no object %s%s", s->prefix, key);
	if (rc)
		return rc;
	if (len && k.len != len)
		return errmsg_set(e, EIO, "GET %s%s: %zu bytes of the %zu asked for", s->prefix,
				  key, k.len, len);
	if (got)
		*got = k.len;
	return 0;
}

int s3_put(struct store_s3 *s, const char *key, const void *buf, size_t len, struct errmsg *e)
{
	struct sink k = {.cap = S3_ERRBODY};
	struct source src = {.p = buf, .len = len};
	int rc = request(s, S3_PUT, key, NULL, &src, &k, e);

	return rc == -ENOENT ? errmsg_set(e, EIO, "PUT %s%s: HTTP 404", s->prefix, key) : rc;
}

int s3_head(struct store_s3 *s, const char *key, struct errmsg *e)
{
	struct sink k = {.cap = S3_ERRBODY};

	return request(s, S3_HEAD, key, NULL, NULL, &k, e);
}

/* The backend (store_be.h). S3 here has no put-if-absent: excl is a HEAD, then the PUT. */
static int be_get(void *impl, const char *key, uint64_t off, size_t len, void *buf, size_t cap,
		  size_t *got, struct errmsg *e)
{
	return s3_get(impl, key, off, len, buf, cap, got, e);
}

static int be_head(void *impl, const char *key, struct errmsg *e)
{
	return s3_head(impl, key, e);
}

static int be_put(void *impl, const char *key, const void *buf, size_t len, bool excl,
		  struct errmsg *e)
{
	if (excl) {
		int rc = s3_head(impl, key, e);
		if (!rc)
			return errmsg_set(e, EEXIST, "%s exists", key);
		if (rc != -ENOENT)
			return rc;
	}
	return s3_put(impl, key, buf, len, e);
}

static int be_clone(void **dst, void *src, struct errmsg *e)
{
	struct store_s3 *s = malloc(sizeof(*s));
	int rc = s ? s3_clone(s, src, e) : errmsg_set(e, ENOMEM, "out of memory");

	if (rc)
		free(s);
	else
		*dst = s;
	return rc;
}

static void be_idle(void *impl)
{
	(void)impl; /* a fresh connection per request already */
}

static void be_close(void *impl)
{
	s3_close(impl);
	free(impl);
}

int s3_be_open(void **impl, const struct store_cfg *c, struct errmsg *e)
{
	struct store_s3 *s = malloc(sizeof(*s));
	int rc = s ? s3_open(s, c, e) : errmsg_set(e, ENOMEM, "out of memory");

	if (rc)
		free(s);
	else
		*impl = s;
	return rc;
}

const struct store_be_ops store_s3_ops = {
    .get = be_get,
    .put = be_put,
    .head = be_head,
    .clone = be_clone,
    .idle = be_idle,
    .close = be_close,
    .atomic_excl = false,
};

/* lazy_restore.so settings (criu.conf syntax) and the scan of CRIU's own options. */
#include "lrconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire/wire_tls.h"

#define MAX_WORDS 8

static const char *const key_names[LRK_NR] = {
    [LRK_SOURCE] = "source",	       [LRK_IMAGE] = "image",	  [LRK_AUTH_KEY] = "auth-key",
    [LRK_DAEMON] = "daemon",	       [LRK_FILL] = "fill",	  [LRK_LOG] = "log",
    [LRK_VERBOSITY] = "verbosity",     [LRK_TIMEOUT] = "timeout", [LRK_PUBLISH] = "publish",
    [LRK_PUBLISH_KEY] = "publish-key", [LRK_LAZY] = "lazy",	  [LRK_TLS] = "tls",
    [LRK_TLS_CA] = "tls-ca",	       [LRK_TLS_CERT] = "tls-cert", [LRK_TLS_KEY] = "tls-key",
};

const char *lrconf_key_name(enum lr_key k)
{
	return (unsigned)k < LRK_NR ? key_names[k] : "?";
}

void lrconf_tls(const struct lr_conf *c, struct wire_tls_cfg *t)
{
	*t = (struct wire_tls_cfg){
	    .mode = c->tls == LR_TLS_ON	   ? WIRE_TLS_ON
		    : c->tls == LR_TLS_OFF ? WIRE_TLS_OFF
					   : WIRE_TLS_AUTO,
	    .ca = c->tls_ca[0] ? c->tls_ca : NULL,
	    .cert = c->tls_cert[0] ? c->tls_cert : NULL,
	    .key = c->tls_key[0] ? c->tls_key : NULL,
	};
}

const char *lrconf_source_name(enum lr_source s)
{
	switch (s) {
	case LR_SRC_LOCAL:
		return "local";
	case LR_SRC_IMAGE_SERVER:
		return "image-server";
	case LR_SRC_PAGE_SERVER:
		return "page-server";
	}
	return "?";
}

const char *lrconf_fill_name(enum lr_fill f)
{
	switch (f) {
	case LR_FILL_AUTO:
		return "auto";
	case LR_FILL_KMOD:
		return "kmod";
	case LR_FILL_UFFD:
		return "uffd";
	}
	return "?";
}

const char *lrconf_lazy_name(enum lr_lazy l)
{
	switch (l) {
	case LR_LAZY_AUTO:
		return "auto";
	case LR_LAZY_ALWAYS:
		return "always";
	case LR_LAZY_NEVER:
		return "never";
	}
	return "?";
}

void lrconf_defaults(struct lr_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->source = LR_SRC_LOCAL;
	c->fill = LR_FILL_AUTO;
	c->lazy = LR_LAZY_AUTO;
	c->verbosity = LRCONF_DEFAULT_VERBOSITY;
	c->timeout = LRCONF_DEFAULT_TIMEOUT;
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

int lrconf_split(char *line, char **words, int max, const char **why)
{
	char *p = line;
	int n = 0;

	for (;;) {
		while (is_blank(*p))
			p++;
		if (!*p || *p == '#')
			break;
		if (n == max) {
			*why = "too many words";
			return -1;
		}
		if (*p != '"') {
			/* A plain word; a '"' or '#' inside it is an ordinary character. */
			words[n++] = p;
			while (*p && !is_blank(*p))
				p++;
			if (*p)
				*p++ = '\0';
			continue;
		}
		/* A quoted word, unescaped in place: out never overtakes in. */
		char *out = p, *in = p + 1;
		words[n++] = out;
		for (;;) {
			if (!*in) {
				*why = "unterminated quote";
				return -1;
			}
			if (*in == '\\' && (in[1] == '"' || in[1] == '\\')) {
				*out++ = in[1];
				in += 2;
				continue;
			}
			if (*in == '"') {
				in++;
				break;
			}
			*out++ = *in++;
		}
		if (*in && !is_blank(*in)) {
			*why = "text right after a closing quote";
			return -1;
		}
		*out = '\0';
		p = in;
	}
	return n;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* A strict decimal in [min, max]. */
static int parse_int(const char *s, long min, long max, long *out)
{
	if (!all_digits(s) || strlen(s) > 9)
		return -1;
	long v = strtol(s, NULL, 10);
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static bool host_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '-' || ch == '_';
}

static bool v6_char(char ch)
{
	return (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || (ch >= '0' && ch <= '9') ||
	       ch == ':' || ch == '.';
}

int lrconf_parse_hostport(const char *s, struct lr_hostport *hp, const char **why)
{
	const char *host = s, *colon;
	size_t hlen;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':') {
			*why = "expected [IPV6]:PORT";
			return -1;
		}
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
		for (size_t i = 0; i < hlen; i++)
			if (!v6_char(host[i])) {
				*why = "bad character in the IPv6 address";
				return -1;
			}
		if (hlen < 2 || !memchr(host, ':', hlen)) {
			*why = "bad IPv6 address";
			return -1;
		}
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			*why = "expected HOST:PORT";
			return -1;
		}
		if (memchr(s, ':', (size_t)(colon - s))) {
			*why = "an IPv6 address needs brackets: [ADDR]:PORT";
			return -1;
		}
		hlen = (size_t)(colon - s);
		for (size_t i = 0; i < hlen; i++)
			if (!host_char(s[i])) {
				*why = "bad character in the host name";
				return -1;
			}
	}
	if (hlen == 0) {
		*why = "empty host";
		return -1;
	}
	if (hlen >= sizeof(hp->host)) {
		*why = "host name too long";
		return -1;
	}
	long port;
	if (parse_int(colon + 1, 1, 65535, &port)) {
		*why = "the port must be a number from 1 to 65535";
		return -1;
	}
	memcpy(hp->host, host, hlen);
	hp->host[hlen] = '\0';
	hp->port = (unsigned)port;
	return 0;
}

static bool image_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > LRCONF_IMAGE_MAX)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	      (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!host_char(s[i]))
			return false;
	return true;
}

struct pctx {
	const char *name;
	int line;
	struct errmsg *e;
};

__attribute__((format(printf, 3, 4))) static int fail(struct pctx *p, const char *key,
						      const char *fmt, ...)
{
	char why[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (key)
		errmsg_set(p->e, 0, "%s:%d: key '%s': %s", p->name, p->line, key, why);
	else
		errmsg_set(p->e, 0, "%s:%d: %s", p->name, p->line, why);
	return -1;
}

static int copy_path(struct pctx *p, const char *key, char *dst, const char *v, bool absolute)
{
	if (strlen(v) >= PATH_MAX)
		return fail(p, key, "path too long");
	if (absolute && v[0] != '/')
		return fail(p, key, "'%s' is not an absolute path", v);
	strcpy(dst, v);
	return 0;
}

static int set_key(struct lr_conf *c, struct pctx *p, enum lr_key k, char **v, int nv)
{
	const char *key = key_names[k];
	const char *why = NULL;
	long n;

	if (nv == 0) {
		static const char *const need[LRK_NR] = {
		    [LRK_SOURCE] = "local, image-server HOST:PORT or page-server HOST:PORT",
		    [LRK_IMAGE] = "an image id",
		    [LRK_AUTH_KEY] = "a key file",
		    [LRK_DAEMON] = "the path of criu-lazyd",
		    [LRK_FILL] = "auto, kmod or uffd",
		    [LRK_LOG] = "a log file",
		    [LRK_VERBOSITY] = "a level from 0 to 4",
		    [LRK_TIMEOUT] = "a number of seconds",
		    [LRK_PUBLISH] = "HOST:PORT",
		    [LRK_PUBLISH_KEY] = "a key file",
		    [LRK_LAZY] = "auto, always or never",
		    [LRK_TLS] = "auto, on or off",
		    [LRK_TLS_CA] = "a CA certificate file",
		    [LRK_TLS_CERT] = "a certificate file",
		    [LRK_TLS_KEY] = "a private key file",
		};
		return fail(p, key, "needs a value (%s)", need[k]);
	}
	if (k != LRK_SOURCE && nv > 1)
		return fail(p, key, "takes one value, got %d", nv);
	for (int i = 0; i < nv; i++)
		if (!v[i][0])
			return fail(p, key, "empty value");

	switch (k) {
	case LRK_SOURCE:
		if (!strcmp(v[0], "local")) {
			if (nv != 1)
				return fail(p, key, "'local' takes no address, got '%s'", v[1]);
			c->source = LR_SRC_LOCAL;
			return 0;
		}
		if (!strcmp(v[0], "image-server"))
			c->source = LR_SRC_IMAGE_SERVER;
		else if (!strcmp(v[0], "page-server"))
			c->source = LR_SRC_PAGE_SERVER;
		else
			return fail(p, key,
				    "bad value '%s' (expected local, image-server HOST:PORT or "
				    "page-server HOST:PORT)",
				    v[0]);
		if (nv != 2)
			return fail(p, key, "'%s' takes one HOST:PORT, got %d values", v[0],
				    nv - 1);
		if (lrconf_parse_hostport(v[1], &c->server, &why))
			return fail(p, key, "bad address '%s': %s", v[1], why);
		return 0;
	case LRK_IMAGE:
		if (!image_id_ok(v[0]))
			return fail(p, key,
				    "bad image id '%s' (1 to %d characters: letters, digits, '.', "
				    "'_', '-'; starting with a letter or digit)",
				    v[0], LRCONF_IMAGE_MAX);
		strcpy(c->image, v[0]);
		return 0;
	case LRK_AUTH_KEY:
		return copy_path(p, key, c->auth_key, v[0], true);
	case LRK_DAEMON:
		return copy_path(p, key, c->daemon, v[0], true);
	case LRK_FILL:
		if (!strcmp(v[0], "auto"))
			c->fill = LR_FILL_AUTO;
		else if (!strcmp(v[0], "kmod"))
			c->fill = LR_FILL_KMOD;
		else if (!strcmp(v[0], "uffd"))
			c->fill = LR_FILL_UFFD;
		else
			return fail(p, key, "bad value '%s' (expected auto, kmod or uffd)", v[0]);
		return 0;
	case LRK_LOG:
		return copy_path(p, key, c->log, v[0], false);
	case LRK_VERBOSITY:
		if (parse_int(v[0], 0, 4, &n))
			return fail(p, key, "bad value '%s' (expected a level from 0 to 4)", v[0]);
		c->verbosity = (int)n;
		return 0;
	case LRK_TIMEOUT:
		if (parse_int(v[0], 1, LRCONF_MAX_TIMEOUT, &n))
			return fail(p, key, "bad value '%s' (expected seconds, 1 to %d)", v[0],
				    LRCONF_MAX_TIMEOUT);
		c->timeout = (int)n;
		return 0;
	case LRK_PUBLISH:
		if (lrconf_parse_hostport(v[0], &c->publish, &why))
			return fail(p, key, "bad address '%s': %s", v[0], why);
		c->publish_set = true;
		return 0;
	case LRK_PUBLISH_KEY:
		return copy_path(p, key, c->publish_key, v[0], true);
	case LRK_LAZY:
		if (!strcmp(v[0], "auto"))
			c->lazy = LR_LAZY_AUTO;
		else if (!strcmp(v[0], "always"))
			c->lazy = LR_LAZY_ALWAYS;
		else if (!strcmp(v[0], "never"))
			c->lazy = LR_LAZY_NEVER;
		else
			return fail(p, key, "bad value '%s' (expected auto, always or never)",
				    v[0]);
		return 0;
	case LRK_TLS:
		if (!strcmp(v[0], "auto"))
			c->tls = LR_TLS_AUTO;
		else if (!strcmp(v[0], "on"))
			c->tls = LR_TLS_ON;
		else if (!strcmp(v[0], "off"))
			c->tls = LR_TLS_OFF;
		else
			return fail(p, key, "bad value '%s' (expected auto, on or off)", v[0]);
		return 0;
	case LRK_TLS_CA:
		return copy_path(p, key, c->tls_ca, v[0], true);
	case LRK_TLS_CERT:
		return copy_path(p, key, c->tls_cert, v[0], true);
	case LRK_TLS_KEY:
		return copy_path(p, key, c->tls_key, v[0], true);
	case LRK_NR:
		break;
	}
	return fail(p, key, "internal error");
}

/* The TLS keys: with criu-imgd only; a certificate with its key and a CA; none with tls off. */
static int cross_check_tls(struct lr_conf *c, struct pctx *p)
{
	for (int k = LRK_TLS; k <= LRK_TLS_KEY; k++)
		if (c->line[k] && c->source != LR_SRC_IMAGE_SERVER && !c->publish_set) {
			p->line = c->line[k];
			return fail(p, key_names[k],
				    "is only used with `source image-server` or `publish` (neither "
				    "is set)");
		}
	if (!c->tls_cert[0] != !c->tls_key[0]) {
		p->line = c->line[c->tls_cert[0] ? LRK_TLS_CERT : LRK_TLS_KEY];
		return fail(p, c->tls_cert[0] ? "tls-cert" : "tls-key",
			    "tls-cert and tls-key go together");
	}
	if (c->tls_cert[0] && !c->tls_ca[0]) {
		p->line = c->line[LRK_TLS_CERT];
		return fail(p, "tls-cert", "needs tls-ca (X.509 mode: criu-imgd's CA)");
	}
	if (c->tls == LR_TLS_OFF && c->tls_ca[0]) {
		p->line = c->line[LRK_TLS_CA];
		return fail(p, "tls-ca", "is not used with `tls off`");
	}
	return 0;
}

/* Settings that only make sense together. */
static int cross_check(struct lr_conf *c, struct pctx *p)
{
	if (c->line[LRK_IMAGE] && c->source != LR_SRC_IMAGE_SERVER && !c->publish_set) {
		p->line = c->line[LRK_IMAGE];
		return fail(p, "image",
			    "needs `source image-server HOST:PORT` or `publish HOST:PORT` (the "
			    "source is %s%s)",
			    lrconf_source_name(c->source),
			    c->line[LRK_SOURCE] ? "" : " by default");
	}
	if (c->line[LRK_AUTH_KEY] && c->source != LR_SRC_IMAGE_SERVER && !c->publish_set) {
		p->line = c->line[LRK_AUTH_KEY];
		return fail(
		    p, "auth-key",
		    "is only used with `source image-server` or `publish` (neither is set)");
	}
	if (c->line[LRK_PUBLISH_KEY] && !c->publish_set) {
		p->line = c->line[LRK_PUBLISH_KEY];
		return fail(p, "publish-key", "is only used with `publish HOST:PORT`");
	}
	return cross_check_tls(c, p);
}

/* The first word of LINE, for a message about a line that does not split. */
static void first_word(const char *line, char *out, size_t n)
{
	size_t i = 0;

	while (is_blank(*line))
		line++;
	while (line[i] && !is_blank(line[i]) && i + 1 < n) {
		out[i] = line[i];
		i++;
	}
	out[i] = '\0';
}

int lrconf_parse(struct lr_conf *c, const char *name, const char *text, size_t len,
		 struct errmsg *e)
{
	struct pctx p = {.name = name, .line = 0, .e = e};
	char *buf;
	int rc = 0;

	lrconf_defaults(c);
	e->msg[0] = '\0';
	if (strlen(name) < sizeof(c->file))
		strcpy(c->file, name);
	if (memchr(text, '\0', len)) {
		snprintf(e->msg, sizeof(e->msg), "%s: contains a NUL byte (not a text file)", name);
		return -1;
	}
	buf = malloc(len + 1);
	if (!buf) {
		snprintf(e->msg, sizeof(e->msg), "%s: out of memory", name);
		return -1;
	}
	for (size_t pos = 0; pos < len && !rc;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *words[MAX_WORDS];
		const char *why = NULL;

		memcpy(buf, text + pos, ll);
		buf[ll] = '\0';
		pos += ll + 1;
		p.line++;

		char key0[64];
		first_word(buf, key0, sizeof(key0));
		int nw = lrconf_split(buf, words, MAX_WORDS, &why);
		if (nw < 0) {
			rc = key0[0] && key0[0] != '"' ? fail(&p, key0, "%s", why)
						       : fail(&p, NULL, "%s", why);
			break;
		}
		if (nw == 0)
			continue;
		int k;
		for (k = 0; k < LRK_NR; k++)
			if (!strcmp(words[0], key_names[k]))
				break;
		if (k == LRK_NR) {
			if (!strncmp(words[0], "--", 2))
				rc = fail(&p, NULL,
					  "unknown key '%s' (write keys without the leading '--')",
					  words[0]);
			else
				rc = fail(
				    &p, NULL,
				    "unknown key '%s' (keys: source, image, auth-key, daemon, "
				    "fill, log, verbosity, timeout, publish, publish-key, lazy, tls, tls-ca, "
				    "tls-cert, tls-key)",
				    words[0]);
			break;
		}
		if (c->line[k]) {
			rc = fail(&p, key_names[k], "given twice (first on line %d)", c->line[k]);
			break;
		}
		rc = set_key(c, &p, (enum lr_key)k, words + 1, nw - 1);
		c->line[k] = p.line;
	}
	free(buf);
	if (!rc)
		rc = cross_check(c, &p);
	return rc;
}

const char *lrconf_path(bool *explicit_path)
{
	const char *env = getenv(LRCONF_ENV);

	if (env && *env) {
		*explicit_path = true;
		return env;
	}
	*explicit_path = false;
	return LRCONF_DEFAULT_PATH;
}

/* Read a whole small file. NULL with errno set (EFBIG: too big, EISDIR/EINVAL: not a file). */
static char *slurp(const char *path, size_t max, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		int err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		return NULL;
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	/* It names a program that CRIU (root) will run: anyone who can write it could pick it. */
	if (st.st_mode & S_IWOTH) {
		close(fd);
		errno = EPERM;
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	if (!buf) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	for (;;) {
		if (got == (size_t)st.st_size + 1)
			break; /* grew while reading: read what fits */
		ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;
			free(buf);
			close(fd);
			errno = err;
			return NULL;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got > (size_t)st.st_size)
		got = (size_t)st.st_size;
	*len = got;
	return buf;
}

int lrconf_load(struct lr_conf *c, const char *path, bool missing_ok, struct errmsg *e)
{
	size_t len = 0;
	char *text = slurp(path, LRCONF_MAX_SIZE, &len);

	if (!text) {
		int err = errno;
		lrconf_defaults(c);
		if (err == ENOENT && missing_ok) {
			e->msg[0] = '\0';
			return 0;
		}
		snprintf(e->msg, sizeof(e->msg), "%s: cannot read: %s", path,
			 err == EFBIG	 ? "larger than 1 MiB"
			 : err == EINVAL ? "not a regular file"
			 : err == EPERM	 ? "writable by anyone (chmod o-w): refused"
					 : strerror(err));
		return -1;
	}
	int rc = lrconf_parse(c, path, text, len, e);
	free(text);
	return rc;
}

/* --- CRIU's own options ----------------------------------------------------------------- */

/* getopt_long accepts any unambiguous prefix: "la" is already only lazy-pages in CRIU. */
static bool is_lazy_name(const char *name, size_t n)
{
	return n >= 2 && n <= strlen("lazy-pages") && !strncmp(name, "lazy-pages", n);
}

/* CRIU's long options that take a required argument (a separate word when no '=' is used). */
static const char *const arg_opts[] = {
    "tree",
    "images-dir",
    "work-dir",
    "log-file",
    "join-ns",
    "root",
    "close",
    "pidfile",
    "veth-pair",
    "action-script",
    "address",
    "port",
    "prev-images-dir",
    "libdir",
    "ext-mount-map",
    "cgroup-root",
    "inherit-fd",
    "feature",
    "skip-mnt",
    "enable-fs",
    "freeze-cgroup",
    "ghost-limit",
    "irmap-scan-path",
    "lsm-profile",
    "lsm-mount-context",
    "timeout",
    "external",
    "empty-ns",
    "cgroup-props",
    "cgroup-props-file",
    "cgroup-dump-controller",
    "cgroup-yard",
    "status-fd",
    "ps-socket",
    "config",
    "tls-cacert",
    "tls-cacrl",
    "tls-cert",
    "tls-key",
    "pre-dump-mode",
    "file-validation",
    "network-lock",
};

static bool takes_arg(const char *name, size_t n)
{
	if (is_lazy_name(name, n))
		return false;
	for (size_t i = 0; i < sizeof(arg_opts) / sizeof(arg_opts[0]); i++)
		if (n <= strlen(arg_opts[i]) && !strncmp(name, arg_opts[i], n))
			return true;
	return false;
}

void lrconf_scan_argv(struct lr_criu_scan *s, int argc, char **argv)
{
	s->argv_lazy = -1;
	for (int i = 0; i < argc; i++)
		if (argv[i] && strstr(argv[i], "--rpc"))
			s->rpc = true; /* RPC mode retitles the process: "restore --rpc" */
	if (argc > 1 && (!strcmp(argv[1], "swrk") || !strcmp(argv[1], "service")))
		s->rpc = true;
	if (s->rpc)
		return; /* the command line is only a title (or "criu swrk FD") */

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			break;
		if (a[0] != '-' || !a[1])
			continue; /* the command (restore) or a stray word */
		if (a[1] == '-') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t n = eq ? (size_t)(eq - name) : strlen(name);

			if (!strcmp(a, "--no-default-config")) {
				s->no_default_config = true;
			} else if (n == strlen("config") && !strncmp(name, "config", n)) {
				/* As CRIU: --config FILE also turns the default files off. */
				s->config_file = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
				s->no_default_config = true;
			} else if (!eq && is_lazy_name(name, n)) {
				s->argv_lazy = 1;
				snprintf(s->lazy_from, sizeof(s->lazy_from), "on the command line");
			} else if (!eq && !strcmp(name, "no-lazy-pages")) {
				s->argv_lazy = 0;
			}
			if (!eq && takes_arg(name, n))
				i++;
			continue;
		}
		/* A cluster of short options: -dv4, -D DIR, -DDIR. */
		for (const char *c = a + 1; *c; c++) {
			if (strchr("tDorJWLM", *c)) {
				if (!c[1])
					i++; /* the argument is the next word */
				break;
			}
			if (*c == 'v' || *c == 'x')
				break; /* optional argument: only attached */
		}
	}
}

void lrconf_scan_apply_argv(struct lr_criu_scan *s)
{
	if (s->argv_lazy >= 0)
		s->lazy = s->argv_lazy == 1;
	if (s->argv_lazy == 1)
		snprintf(s->lazy_from, sizeof(s->lazy_from), "on the command line");
}

void lrconf_scan_client_argv(struct lr_criu_scan *s, int argc, char **argv, int pid)
{
	bool restore = false, lazy = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "restore"))
			restore = true;
		/* Go's flag packages take -flag, --flag, --flag=true. */
		const char *f = a[0] == '-' ? (a[1] == '-' ? a + 2 : a + 1) : NULL;
		if (f && (!strcmp(f, "lazy-pages") || !strcmp(f, "lazy-pages=true") ||
			  !strcmp(f, "lazy-pages=1")))
			lazy = true;
	}
	if (restore && lazy) {
		s->lazy = true;
		snprintf(s->lazy_from, sizeof(s->lazy_from),
			 "on the command line of the RPC client (pid %d, %.64s)", pid,
			 argc > 0 ? argv[0] : "?");
	}
}

void lrconf_scan_criu_conf(struct lr_criu_scan *s, const char *name, const char *text, size_t len)
{
	char *buf = malloc(len + 1);
	int line = 0;

	if (!buf)
		return;
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *words[2];
		const char *why;

		memcpy(buf, text + pos, ll);
		buf[ll] = '\0';
		pos += ll + 1;
		line++;
		/* Only the first word names an option; a line CRIU cannot split is CRIU's error. */
		char *w = buf;
		while (is_blank(*w))
			w++;
		if (!*w || *w == '#' || *w == '"')
			continue;
		if (lrconf_split(w, words, 1, &why) < 1) {
			/* More words than asked for: the first is split off all the same. */
			char *end = w;
			while (*end && !is_blank(*end))
				end++;
			*end = '\0';
			words[0] = w;
		}
		const char *opt = words[0];
		size_t n = strlen(opt);
		if (memchr(opt, '=', n))
			continue;
		if (is_lazy_name(opt, n)) {
			s->lazy = true;
			snprintf(s->lazy_from, sizeof(s->lazy_from), "in %s:%d", name, line);
		} else if (!strcmp(opt, "no-lazy-pages")) {
			s->lazy = false;
		}
	}
	free(buf);
}

/* The keys of lazy_restore.so's file: their names, what each takes, and setting them. */
#include "lrconf_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/parse.h"
#include "wire/wire_tls.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *const key_names[LRK_NR] = {
    [LRK_SOURCE] = "source",	       [LRK_IMAGE] = "image",	    [LRK_AUTH_KEY] = "auth-key",
    [LRK_DAEMON] = "daemon",	       [LRK_FILL] = "fill",	    [LRK_LOG] = "log",
    [LRK_VERBOSITY] = "verbosity",     [LRK_TIMEOUT] = "timeout",   [LRK_PUBLISH] = "publish",
    [LRK_PUBLISH_KEY] = "publish-key", [LRK_LAZY] = "lazy",	    [LRK_TLS] = "tls",
    [LRK_TLS_CA] = "tls-ca",	       [LRK_TLS_CERT] = "tls-cert", [LRK_TLS_KEY] = "tls-key",
};

/* What each key takes, for "needs a value (...)" and "bad value '...' (expected ...)". */
static const char *const key_takes[LRK_NR] = {
    [LRK_SOURCE] = "local, image-server HOST:PORT[,HOST:PORT...] or page-server HOST:PORT",
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

static const char *const source_names[] = {
    [LR_SRC_LOCAL] = "local",
    [LR_SRC_IMAGE_SERVER] = "image-server",
    [LR_SRC_PAGE_SERVER] = "page-server",
};
static const char *const fill_names[] = {
    [LR_FILL_AUTO] = "auto", [LR_FILL_KMOD] = "kmod", [LR_FILL_UFFD] = "uffd"};
static const char *const lazy_names[] = {
    [LR_LAZY_AUTO] = "auto", [LR_LAZY_ALWAYS] = "always", [LR_LAZY_NEVER] = "never"};
static const char *const tls_names[] = {
    [LR_TLS_AUTO] = "auto", [LR_TLS_ON] = "on", [LR_TLS_OFF] = "off"};

const char *lrconf_key_name(enum lr_key k)
{
	return (unsigned)k < LRK_NR ? key_names[k] : "?";
}

const char *lrconf_source_name(enum lr_source s)
{
	return (unsigned)s < ARRAY_SIZE(source_names) ? source_names[s] : "?";
}

const char *lrconf_fill_name(enum lr_fill f)
{
	return (unsigned)f < ARRAY_SIZE(fill_names) ? fill_names[f] : "?";
}

const char *lrconf_lazy_name(enum lr_lazy l)
{
	return (unsigned)l < ARRAY_SIZE(lazy_names) ? lazy_names[l] : "?";
}

enum lr_key lrconf_find_key(const char *word)
{
	int k;

	for (k = 0; k < LRK_NR; k++)
		if (!strcmp(word, key_names[k]))
			break;
	return (enum lr_key)k;
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

/* The index of V in NAMES, or -1. */
static int pick(const char *v, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v, names[i]))
			return (int)i;
	return -1;
}

static int copy_path(const struct lrconf_pos *pos, const char *key, char *dst, const char *v,
		     bool absolute)
{
	if (strlen(v) >= PATH_MAX)
		return lrconf_fail(pos, key, "path too long");
	if (absolute && v[0] != '/')
		return lrconf_fail(pos, key, "'%s' is not an absolute path", v);
	strcpy(dst, v);
	return 0;
}

/* HOST:PORT for KEY; the reason is parse_hostport's. */
static int set_hostport(const struct lrconf_pos *pos, const char *key, const char *v,
			struct hostport *hp)
{
	if (parse_hostport(v, hp, pos->e))
		return errmsg_prefix(pos->e, EINVAL, "%s:%d: key '%s': bad address '%s'", pos->name,
				     pos->line, key, v);
	return 0;
}

/* A count in [min, max]: no sign, not even "-0". */
static int parse_count(const char *v, long min, long max, int *out)
{
	long n;

	if (v[0] == '-' || parse_long(v, min, max, &n))
		return -EINVAL;
	*out = (int)n;
	return 0;
}

/* source local | image-server HOST:PORT | page-server HOST:PORT */
static int set_source(struct lr_conf *c, const struct lrconf_pos *pos, char **v, int nv)
{
	const char *key = key_names[LRK_SOURCE];
	int s = pick(v[0], source_names, ARRAY_SIZE(source_names));

	if (s < 0)
		return lrconf_fail(pos, key,
				   "bad value '%s' (expected local, image-server HOST:PORT or "
				   "page-server HOST:PORT)",
				   v[0]);
	if (s == LR_SRC_LOCAL) {
		if (nv != 1)
			return lrconf_fail(pos, key, "'local' takes no address, got '%s'", v[1]);
		c->source = LR_SRC_LOCAL;
		return 0;
	}
	c->source = (enum lr_source)s;
	if (nv != 2)
		return lrconf_fail(
		    pos, key, "'%s' takes one %s, got %d values", v[0],
		    s == LR_SRC_IMAGE_SERVER ? "HOST:PORT[,HOST:PORT...]" : "HOST:PORT", nv - 1);
	if (s == LR_SRC_IMAGE_SERVER) {
		/* Several instances of one store: criu-lazyd fails over between them. */
		struct hostport hp[LRCONF_MAX_SERVERS];
		struct errmsg why;
		unsigned n;
		bool long_ = strlen(v[1]) >= sizeof(c->servers);
		if (long_ || parse_hostport_list(v[1], hp, LRCONF_MAX_SERVERS, &n, &why))
			return lrconf_fail(pos, key, "bad address list '%s': %s", v[1],
					   long_ ? "too long" : why.msg);
		snprintf(c->servers, sizeof(c->servers), "%s", v[1]);
		c->server = hp[0];
		return 0;
	}
	return set_hostport(pos, key, v[1], &c->server);
}

/* One of NAMES for key K into *out; the message lists what K takes. */
static int set_choice(const struct lrconf_pos *pos, enum lr_key k, const char *v,
		      const char *const *names, size_t n, int *out)
{
	int i = pick(v, names, n);

	if (i < 0)
		return lrconf_fail(pos, key_names[k], "bad value '%s' (expected %s)", v,
				   key_takes[k]);
	*out = i;
	return 0;
}

/* The keys with one value. */
static int set_value(struct lr_conf *c, const struct lrconf_pos *pos, enum lr_key k, const char *v)
{
	const char *key = key_names[k];
	int i = 0, rc;

	switch (k) {
	case LRK_IMAGE:
		if (!image_id_ok(v))
			return lrconf_fail(pos, key, "bad image id '%s' (" IMAGE_ID_RULE ")", v);
		strcpy(c->image, v);
		return 0;
	case LRK_AUTH_KEY:
		return copy_path(pos, key, c->auth_key, v, true);
	case LRK_DAEMON:
		return copy_path(pos, key, c->daemon, v, true);
	case LRK_FILL:
		rc = set_choice(pos, k, v, fill_names, ARRAY_SIZE(fill_names), &i);
		c->fill = rc ? c->fill : (enum lr_fill)i;
		return rc;
	case LRK_LOG:
		return copy_path(pos, key, c->log, v, false);
	case LRK_VERBOSITY:
		if (parse_count(v, 0, 4, &c->verbosity))
			return lrconf_fail(pos, key, "bad value '%s' (expected %s)", v,
					   key_takes[k]);
		return 0;
	case LRK_TIMEOUT:
		if (parse_count(v, 1, LRCONF_MAX_TIMEOUT, &c->timeout))
			return lrconf_fail(pos, key, "bad value '%s' (expected seconds, 1 to %d)",
					   v, LRCONF_MAX_TIMEOUT);
		return 0;
	case LRK_PUBLISH:
		rc = set_hostport(pos, key, v, &c->publish);
		c->publish_set = !rc;
		return rc;
	case LRK_PUBLISH_KEY:
		return copy_path(pos, key, c->publish_key, v, true);
	case LRK_LAZY:
		rc = set_choice(pos, k, v, lazy_names, ARRAY_SIZE(lazy_names), &i);
		c->lazy = rc ? c->lazy : (enum lr_lazy)i;
		return rc;
	case LRK_TLS:
		rc = set_choice(pos, k, v, tls_names, ARRAY_SIZE(tls_names), &i);
		c->tls = rc ? c->tls : (enum lr_tls)i;
		return rc;
	case LRK_TLS_CA:
		return copy_path(pos, key, c->tls_ca, v, true);
	case LRK_TLS_CERT:
		return copy_path(pos, key, c->tls_cert, v, true);
	case LRK_TLS_KEY:
		return copy_path(pos, key, c->tls_key, v, true);
	case LRK_SOURCE:
	case LRK_NR:
		break;
	}
	return lrconf_fail(pos, key, "internal error");
}

int lrconf_set_key(struct lr_conf *c, const struct lrconf_pos *pos, enum lr_key k, char **v, int nv)
{
	if ((unsigned)k >= LRK_NR)
		return lrconf_fail(pos, NULL, "internal error: key %d", (int)k);
	const char *key = key_names[k];

	if (nv == 0)
		return lrconf_fail(pos, key, "needs a value (%s)", key_takes[k]);
	if (k != LRK_SOURCE && nv > 1)
		return lrconf_fail(pos, key, "takes one value, got %d", nv);
	for (int i = 0; i < nv; i++)
		if (!v[i][0])
			return lrconf_fail(pos, key, "empty value");
	return k == LRK_SOURCE ? set_source(c, pos, v, nv) : set_value(c, pos, k, v[0]);
}

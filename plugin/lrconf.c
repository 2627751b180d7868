/*
 * lazy_restore.so settings (criu.conf syntax): the text of a file, line by line, into
 * struct lr_conf. The other jobs live beside it: lrconf_lex.c (words), lrconf_keys.c (keys
 * and values), lrconf_check.c (the whole file), lrconf_file.c (which file, reading it),
 * lrconf_scan.c (CRIU's own options).
 */
#include "lrconf_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lrconf_fail(const struct lrconf_pos *pos, const char *key, const char *fmt, ...)
{
	char why[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (key)
		return errmsg_set(pos->e, EINVAL, "%s:%d: key '%s': %s", pos->name, pos->line, key,
				  why);
	return errmsg_set(pos->e, EINVAL, "%s:%d: %s", pos->name, pos->line, why);
}

/* A word that is no key. */
static int unknown_key(const struct lrconf_pos *pos, const char *word)
{
	if (!strncmp(word, "--", 2))
		return lrconf_fail(pos, NULL,
				   "unknown key '%s' (write keys without the leading '--')", word);
	return lrconf_fail(pos, NULL,
			   "unknown key '%s' (keys: source, image, auth-key, daemon, fill, log, "
			   "verbosity, timeout, publish, publish-key, lazy, tls, tls-ca, tls-cert, "
			   "tls-key)",
			   word);
}

/* One line (modified in place), the pos->line-th. */
static int parse_line(struct lr_conf *c, const struct lrconf_pos *pos, char *line)
{
	char *words[LRCONF_MAX_WORDS];
	char key0[64];

	lrconf_first_word(line, key0, sizeof(key0));
	int nw = lrconf_split(line, words, LRCONF_MAX_WORDS, pos->e);
	if (nw < 0) {
		/* A key we could read is named; a quoted one is not (it did not split). */
		if (key0[0] && key0[0] != '"')
			return errmsg_prefix(pos->e, EINVAL, "%s:%d: key '%s'", pos->name,
					     pos->line, key0);
		return errmsg_prefix(pos->e, EINVAL, "%s:%d", pos->name, pos->line);
	}
	if (nw == 0)
		return 0;
	enum lr_key k = lrconf_find_key(words[0]);
	if (k == LRK_NR)
		return unknown_key(pos, words[0]);
	if (c->line[k])
		return lrconf_fail(pos, lrconf_key_name(k), "given twice (first on line %d)",
				   c->line[k]);
	int rc = lrconf_set_key(c, pos, k, words + 1, nw - 1);
	c->line[k] = pos->line;
	return rc;
}

int lrconf_parse(struct lr_conf *c, const char *name, const char *text, size_t len,
		 struct errmsg *e)
{
	struct lrconf_pos pos = {.name = name, .line = 0, .e = e};
	char *buf;
	int rc = 0;

	lrconf_defaults(c);
	errmsg_clear(e);
	if (strlen(name) < sizeof(c->file))
		strcpy(c->file, name);
	if (memchr(text, '\0', len))
		return errmsg_set(e, EINVAL, "%s: contains a NUL byte (not a text file)", name);
	buf = malloc(len + 1);
	if (!buf)
		return errmsg_set(e, ENOMEM, "%s: out of memory", name);
	for (size_t at = 0; at < len && !rc;) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t ll = nl ? (size_t)(nl - (text + at)) : len - at;

		memcpy(buf, text + at, ll);
		buf[ll] = '\0';
		at += ll + 1;
		pos.line++;
		rc = parse_line(c, &pos, buf);
	}
	free(buf);
	if (!rc)
		rc = lrconf_cross_check(c, &pos);
	return rc;
}

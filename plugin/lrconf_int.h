/*
 * Shared by the files of lrconf (lrconf*.c) only: the position a problem is reported at,
 * and the steps lrconf_parse() runs on every line and then on the whole file.
 */
#ifndef LRCONF_INT_H
#define LRCONF_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "lrconf.h"

#define LRCONF_MAX_WORDS 8 /* a key and its values on one line */

/* Where we are: the file's name and the line (1-based) a message names. */
struct lrconf_pos {
	const char *name;
	int line;
	struct errmsg *e;
};

/* "NAME:LINE: key 'KEY': WHY" (without the key part when KEY is NULL) into pos->e.
 * Returns -EINVAL. */
__attribute__((format(printf, 3, 4))) int lrconf_fail(const struct lrconf_pos *pos, const char *key,
						      const char *fmt, ...);

/* lrconf_lex.c: criu.conf's blanks; the first word of LINE (for a line that does not split). */
bool lrconf_is_blank(char ch);
void lrconf_first_word(const char *line, char *out, size_t n);

/* lrconf_keys.c: the key named WORD, or LRK_NR; set key K from its NV values V. */
enum lr_key lrconf_find_key(const char *word);
int lrconf_set_key(struct lr_conf *c, const struct lrconf_pos *pos, enum lr_key k, char **v,
		   int nv);

/* lrconf_check.c: settings that only make sense together; pos->line is set to the line the
 * message names. */
int lrconf_cross_check(const struct lr_conf *c, struct lrconf_pos *pos);

#endif

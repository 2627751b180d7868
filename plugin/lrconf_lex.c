/* criu.conf's syntax: a line into words (blanks, "quotes" with \" and \\, # comments). */
#include "lrconf_int.h"

#include <errno.h>

bool lrconf_is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

/* A quoted word at *pp (on its opening quote), unescaped in place: out never overtakes in.
 * Leaves *pp after it. */
static int split_quoted(char **pp, struct errmsg *e)
{
	char *out = *pp, *in = *pp + 1;

	for (;;) {
		if (!*in)
			return errmsg_set(e, EINVAL, "unterminated quote");
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
	if (*in && !lrconf_is_blank(*in))
		return errmsg_set(e, EINVAL, "text right after a closing quote");
	*out = '\0';
	*pp = in;
	return 0;
}

int lrconf_split(char *line, char **words, int max, struct errmsg *e)
{
	char *p = line;
	int n = 0;

	for (;;) {
		while (lrconf_is_blank(*p))
			p++;
		if (!*p || *p == '#')
			break;
		if (n == max)
			return errmsg_set(e, EINVAL, "too many words");
		words[n++] = p;
		if (*p == '"') {
			int rc = split_quoted(&p, e);
			if (rc)
				return rc;
			continue;
		}
		/* A plain word; a '"' or '#' inside it is an ordinary character. */
		while (*p && !lrconf_is_blank(*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

void lrconf_first_word(const char *line, char *out, size_t n)
{
	size_t i = 0;

	while (lrconf_is_blank(*line))
		line++;
	while (line[i] && !lrconf_is_blank(line[i]) && i + 1 < n) {
		out[i] = line[i];
		i++;
	}
	out[i] = '\0';
}

#include "parse.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool name_char(char c)
{
	return is_alnum(c) || c == '.' || c == '-' || c == '_';
}

static bool v6_char(char c)
{
	return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') ||
	       c == ':' || c == '.';
}

int parse_long(const char *s, long min, long max, long *out)
{
	char *end;

	if (!s || !*s || (*s != '-' && !(*s >= '0' && *s <= '9')))
		return -EINVAL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const char units[] = "KMGT";
	char *end;

	if (!s || !(*s >= '0' && *s <= '9'))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	const char *u = *end ? strchr(units, *end) : NULL;
	if (*end && (!u || end[1]))
		return -EINVAL;
	unsigned shift = u ? 10u * (unsigned)(u - units + 1) : 0;
	if (errno || v > (UINT64_MAX >> shift))
		return -ERANGE;
	uint64_t bytes = (uint64_t)v << shift;
	if (bytes < min || bytes > max)
		return -ERANGE;
	*out = bytes;
	return 0;
}

int parse_hostport(const char *s, struct hostport *hp, struct errmsg *e)
{
	const char *host = s, *colon;
	size_t hlen;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return errmsg_set(e, EINVAL, "expected [IPV6]:PORT");
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
		for (size_t i = 0; i < hlen; i++)
			if (!v6_char(host[i]))
				return errmsg_set(e, EINVAL, "bad character in the IPv6 address");
		if (hlen < 2 || !memchr(host, ':', hlen))
			return errmsg_set(e, EINVAL, "bad IPv6 address");
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return errmsg_set(e, EINVAL, "expected HOST:PORT");
		if (memchr(s, ':', (size_t)(colon - s)))
			return errmsg_set(e, EINVAL, "an IPv6 address needs brackets: [ADDR]:PORT");
		hlen = (size_t)(colon - s);
		for (size_t i = 0; i < hlen; i++)
			if (!name_char(s[i]))
				return errmsg_set(e, EINVAL, "bad character in the host name");
	}
	if (hlen == 0)
		return errmsg_set(e, EINVAL, "empty host");
	if (hlen > HOSTPORT_HOST_MAX)
		return errmsg_set(e, EINVAL, "host name too long");
	long port;
	if (parse_long(colon + 1, 1, 65535, &port))
		return errmsg_set(e, EINVAL, "the port must be a number from 1 to 65535");
	memcpy(hp->host, host, hlen);
	hp->host[hlen] = '\0';
	hp->port_num = (unsigned)port;
	snprintf(hp->port, sizeof(hp->port), "%u", hp->port_num);
	return 0;
}

int parse_hostport_list(const char *s, struct hostport *hp, unsigned max, unsigned *n,
			struct errmsg *e)
{
	*n = 0;
	for (const char *p = s;; p++) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char one[HOSTPORT_HOST_MAX + 16];
		if (!len)
			return errmsg_set(e, EINVAL, "an empty address in the list");
		if (len >= sizeof(one))
			return errmsg_set(e, EINVAL, "an address too long in the list");
		if (*n == max)
			return errmsg_set(e, EINVAL, "more than %u addresses", max);
		memcpy(one, p, len);
		one[len] = 0;
		int rc = parse_hostport(one, &hp[*n], e);
		if (rc)
			return rc;
		for (unsigned i = 0; i < *n; i++)
			if (!strcmp(hp[i].host, hp[*n].host) && hp[i].port_num == hp[*n].port_num)
				return errmsg_set(e, EINVAL, "%s given twice", one);
		(*n)++;
		if (!end)
			return 0;
		p = end;
	}
}

bool image_id_ok(const char *id)
{
	size_t n = id ? strnlen(id, IMAGE_ID_MAX + 1) : 0;

	if (n == 0 || n > IMAGE_ID_MAX || !is_alnum(id[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char(id[i]))
			return false;
	return true;
}

bool file_name_ok(const char *name, size_t max)
{
	size_t n = strnlen(name, max + 1);

	if (n == 0 || n > max || name[0] == '.' || strstr(name, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!is_alnum(c) && c != '.' && c != '_' && c != '-' && c != '+')
			return false;
	}
	return true;
}

/*
 * libFuzzer harness: lrconf (plugin/lrconf*.c), the lazy_restore.so config parser and the
 * scanner of CRIU's own options, on arbitrary text.
 *
 * The whole input is parsed as a config file (lrconf_parse) and as a CRIU config file
 * (lrconf_scan_criu_conf); each line goes through lrconf_split and parse_hostport; and
 * the input split at NUL bytes and newlines is a command line for lrconf_scan_argv and
 * lrconf_scan_client_argv. What a successful parse leaves is checked against lrconf.h.
 * (parse_hostport is util/parse.h's: the plugin's file takes addresses by that rule.)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "plugin/lrconf.h"
#include "wire/wire_tls.h"

#define MAX_ARGS 64

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static bool id_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '-' || ch == '_';
}

static void check_hostport(const struct hostport *hp)
{
	if (!terminated(hp->host, sizeof(hp->host)) || !hp->host[0])
		fuzz_die("hostport: host empty or not terminated");
	if (hp->port_num < 1 || hp->port_num > 65535)
		fuzz_die("hostport: port out of range");
	if (!terminated(hp->port, sizeof(hp->port)) || strtoul(hp->port, NULL, 10) != hp->port_num)
		fuzz_die("hostport: the port string and number differ");
}

static void check_conf(const struct lr_conf *c)
{
	if (!terminated(c->file, sizeof(c->file)) || !terminated(c->image, sizeof(c->image)) ||
	    !terminated(c->auth_key, sizeof(c->auth_key)) ||
	    !terminated(c->daemon, sizeof(c->daemon)) || !terminated(c->log, sizeof(c->log)))
		fuzz_die("conf: a string not terminated");
	if (c->verbosity < 0 || c->verbosity > 4)
		fuzz_die("conf: verbosity out of range");
	if (c->timeout < 1 || c->timeout > LRCONF_MAX_TIMEOUT)
		fuzz_die("conf: timeout out of range");
	if ((unsigned)c->source > LR_SRC_PAGE_SERVER || (unsigned)c->fill > LR_FILL_UFFD ||
	    (unsigned)c->lazy > LR_LAZY_NEVER)
		fuzz_die("conf: enum out of range");
	if (c->source != LR_SRC_LOCAL)
		check_hostport(&c->server);
	if (c->publish_set)
		check_hostport(&c->publish);
	if (c->image[0]) {
		size_t n = strlen(c->image);
		if (n > IMAGE_ID_MAX || !id_char(c->image[0]) || c->image[0] == '.' ||
		    c->image[0] == '-' || c->image[0] == '_')
			fuzz_die("conf: bad image id accepted");
		for (size_t i = 0; i < n; i++)
			if (!id_char(c->image[i]))
				fuzz_die("conf: bad image id character accepted");
		if (c->source != LR_SRC_IMAGE_SERVER && !c->publish_set)
			fuzz_die("conf: image without image-server or publish");
	}
	if (c->auth_key[0] && c->auth_key[0] != '/')
		fuzz_die("conf: relative auth-key accepted");
	if (c->daemon[0] && c->daemon[0] != '/')
		fuzz_die("conf: relative daemon accepted");
	if (!terminated(c->publish_key, sizeof(c->publish_key)) ||
	    (c->publish_key[0] && (c->publish_key[0] != '/' || !c->publish_set)))
		fuzz_die("conf: publish-key relative or without publish");
	if (c->auth_key[0] && c->source != LR_SRC_IMAGE_SERVER && !c->publish_set)
		fuzz_die("conf: auth-key without image-server or publish");
	/* TLS: with criu-imgd only, paths absolute, a certificate with its key and a CA, no CA
	 * with tls off; lrconf_tls hands over exactly that */
	if ((unsigned)c->tls > LR_TLS_OFF)
		fuzz_die("conf: tls out of range");
	const char *tp[] = {c->tls_ca, c->tls_cert, c->tls_key};
	for (int i = 0; i < 3; i++) {
		if (!terminated(tp[i], PATH_MAX) || (tp[i][0] && tp[i][0] != '/'))
			fuzz_die("conf: a tls path relative or not terminated");
		if (tp[i][0] && c->source != LR_SRC_IMAGE_SERVER && !c->publish_set)
			fuzz_die("conf: a tls path without image-server or publish");
	}
	if (!c->tls_cert[0] != !c->tls_key[0] || (c->tls_cert[0] && !c->tls_ca[0]) ||
	    (c->tls == LR_TLS_OFF && c->tls_ca[0]))
		fuzz_die("conf: tls settings that do not go together accepted");
	struct wire_tls_cfg t;
	lrconf_tls(c, &t);
	if ((t.mode == WIRE_TLS_ON) != (c->tls == LR_TLS_ON) ||
	    (t.mode == WIRE_TLS_OFF) != (c->tls == LR_TLS_OFF) || !t.ca != !c->tls_ca[0] ||
	    !t.cert != !c->tls_cert[0] || !t.key != !c->tls_key[0] || t.name)
		fuzz_die("conf: lrconf_tls differs from the settings");
	for (int k = 0; k < LRK_NR; k++)
		if (c->line[k] < 0)
			fuzz_die("conf: negative line");
	/* the names of what was parsed */
	if (!strcmp(lrconf_source_name(c->source), "?") ||
	    !strcmp(lrconf_fill_name(c->fill), "?") || !strcmp(lrconf_lazy_name(c->lazy), "?"))
		fuzz_die("conf: a value without a name");
}

static void check_scan(const struct lr_criu_scan *s)
{
	if (!terminated(s->lazy_from, sizeof(s->lazy_from)))
		fuzz_die("scan: lazy_from not terminated");
	if (s->argv_lazy < -1 || s->argv_lazy > 1)
		fuzz_die("scan: argv_lazy out of range");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lr_conf c;
	static struct errmsg e;
	const char *text = (const char *)data;

	/* 1. the plugin's config file */
	int rc = lrconf_parse(&c, "fuzz.conf", text, size, &e);
	if (!terminated(e.msg, sizeof(e.msg)))
		fuzz_die("error message not terminated");
	if (rc == 0)
		check_conf(&c);
	else if (rc >= 0 || !e.msg[0])
		fuzz_die("a failed parse without a message");

	/* 2. the same text as one of CRIU's config files */
	struct lr_criu_scan s;
	memset(&s, 0, sizeof(s));
	s.argv_lazy = -1;
	lrconf_scan_criu_conf(&s, "fuzz.criu.conf", text, size);
	check_scan(&s);

	/* 3. every line split on its own, and as HOST:PORT */
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	for (size_t pos = 0; pos < size;) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t ll = nl ? (size_t)(nl - (data + pos)) : size - pos;
		char *words[8];
		struct errmsg why;
		struct hostport hp;

		memcpy(buf, data + pos, ll);
		buf[ll] = '\0';
		pos += ll + 1;
		memset(&hp, 0, sizeof(hp));
		why.msg[0] = '\0';
		if (!parse_hostport(buf, &hp, &why))
			check_hostport(&hp);
		else if (!why.msg[0])
			fuzz_die("hostport: failed without a reason");
		why.msg[0] = '\0';
		int n = lrconf_split(buf, words, 8, &why);
		if ((n < 0 && n != -EINVAL) || n > 8 || (n < 0 && !why.msg[0]))
			fuzz_die("split: bad result");
		for (int i = 0; i < n; i++)
			if (words[i] < buf || words[i] > buf + ll)
				fuzz_die("split: a word outside the line");
	}

	/* 4. a command line: words separated by NUL bytes or newlines */
	memcpy(buf, data, size);
	buf[size] = '\0';
	char *argv[MAX_ARGS + 1];
	int argc = 0;
	for (size_t i = 0, start = 0; i <= size && argc < MAX_ARGS; i++) {
		if (i == size || buf[i] == '\0' || buf[i] == '\n') {
			buf[i] = '\0';
			argv[argc++] = buf + start;
			start = i + 1;
		}
	}
	argv[argc] = NULL;
	memset(&s, 0, sizeof(s));
	lrconf_scan_argv(&s, argc, argv);
	check_scan(&s);
	if (s.config_file && !(s.config_file >= buf && s.config_file <= buf + size))
		fuzz_die("scan: config file outside argv");
	lrconf_scan_apply_argv(&s);
	lrconf_scan_client_argv(&s, argc, argv, 1234);
	check_scan(&s);
	free(buf);
	return 0;
}

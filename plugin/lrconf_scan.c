/*
 * The scan of CRIU's own options: is this restore lazy? From CRIU's command line, its config
 * files and, in RPC mode, the RPC client's command line (docs/plugin.md).
 */
#include "lrconf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

		memcpy(buf, text + pos, ll);
		buf[ll] = '\0';
		pos += ll + 1;
		line++;
		/* Only the first word names an option; a line CRIU cannot split is CRIU's error. */
		char *w = buf;
		while (lrconf_is_blank(*w))
			w++;
		if (!*w || *w == '#' || *w == '"')
			continue;
		if (lrconf_split(w, words, 1, NULL) < 1) {
			/* More words than asked for: the first is split off all the same. */
			char *end = w;
			while (*end && !lrconf_is_blank(*end))
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

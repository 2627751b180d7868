/*
 * Is this restore lazy? CRIU 3.17 does not tell plugins its options, so we read what CRIU
 * read: its command line (/proc/self/cmdline) and its config files, in CRIU's order. In RPC
 * mode (runc, podman) the request's own lazy_pages field is invisible to us; the request's
 * config file (runc: /etc/criu/runc.conf) and the default files are not. See docs/plugin.md.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lr.h"

#define MAX_ARGS 4096
#define MAX_FILE (1 << 20)

static void scan_file(struct lr_criu_scan *s, const char *path)
{
	size_t len;
	char *text = lr_read_file(path, MAX_FILE, &len);

	if (!text)
		return;
	lr_debug("scanning CRIU config %s", path);
	lrconf_scan_criu_conf(s, path, text, len);
	free(text);
}

/*
 * criu run through the dynamic loader (`ld-linux-x86-64.so.2 [--library-path DIR ...] criu
 * restore ...`, as from a root of another distribution): the kernel's cmdline starts with the
 * loader and its options. Returns how many words to skip so that argv[0] is criu.
 */
static int loader_words(int argc, char **argv)
{
	static const char *const with_arg[] = {
	    "--library-path",	      "--preload",	    "--argv0", "--inhibit-rpath", "--audit",
	    "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask"};
	const char *base;
	int i = 1;

	if (argc < 2)
		return 0;
	base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (strncmp(base, "ld-linux", 8) && strncmp(base, "ld.so", 5) &&
	    strncmp(base, "ld64.so", 7))
		return 0;
	while (i < argc && !strncmp(argv[i], "--", 2)) {
		bool arg = false;
		for (size_t k = 0; k < sizeof(with_arg) / sizeof(with_arg[0]); k++)
			arg |= !strcmp(argv[i], with_arg[k]);
		i += arg ? 2 : 1;
	}
	return i < argc ? i : 0;
}

/*
 * Our whole argument area, read from our own memory (/proc/self/stat fields 48-49,
 * /proc/self/mem). CRIU retitles itself in RPC mode ("criu: restore --rpc ..."): normally
 * /proc/self/cmdline shows that title, but when criu was started through the dynamic loader
 * the title lands after the loader's words and cmdline shows only the loader's path.
 * Falls back to /proc/self/cmdline. Caller frees; *len bytes, NUL-terminated.
 */
static char *read_arg_area(size_t *len)
{
	char buf[4096], *p, *tok, *save = NULL;
	unsigned long long start = 0, end = 0;
	size_t n;
	int field = 2, fd;
	FILE *f = fopen("/proc/self/stat", "re");

	if (!f)
		return lr_read_file("/proc/self/cmdline", 1 << 20, len);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* comm may hold spaces */
	for (tok = p ? strtok_r(p + 1, " ", &save) : NULL; tok; tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 48)
			start = strtoull(tok, NULL, 10);
		else if (field == 49) {
			end = strtoull(tok, NULL, 10);
			break;
		}
	}
	if (!start || end <= start || end - start > (1u << 20))
		return lr_read_file("/proc/self/cmdline", 1 << 20, len);
	p = malloc(end - start + 1);
	fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	if (!p || fd < 0 || pread(fd, p, end - start, (off_t)start) != (ssize_t)(end - start)) {
		free(p);
		if (fd >= 0)
			close(fd);
		return lr_read_file("/proc/self/cmdline", 1 << 20, len);
	}
	close(fd);
	p[end - start] = 0;
	*len = end - start;
	return p;
}

bool lr_restore_is_lazy(char *how, size_t n, bool *rpc)
{
	struct lr_criu_scan s;
	size_t len = 0;
	char *cmd = lr_read_file("/proc/self/cmdline", 1 << 20, &len);

	if (!cmd || !memmem(cmd, len, "--rpc", 5)) {
		/* Retitled through the loader: the title is in the area, not in cmdline. */
		size_t alen = 0;
		char *area = read_arg_area(&alen);

		if (area && memmem(area, alen, "--rpc", 5)) {
			free(cmd);
			cmd = area;
			len = alen;
		} else {
			free(area);
		}
	}
	char **argv = calloc(MAX_ARGS + 1, sizeof(*argv));
	int argc = 0;

	memset(&s, 0, sizeof(s));
	if (cmd && argv) {
		for (size_t i = 0; i < len && argc < MAX_ARGS; i += strlen(cmd + i) + 1)
			argv[argc++] = cmd + i;
	}
	int skip = loader_words(argc, argv);
	lrconf_scan_argv(&s, argc - skip, argv + skip);

	if (!s.no_default_config) {
		const char *home = getenv("HOME");
		scan_file(&s, "/etc/criu/default.conf");
		if (home && *home) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/.criu/default.conf", home);
			scan_file(&s, p);
		}
	}
	const char *env = getenv("CRIU_CONFIG_FILE");
	if (env && *env)
		scan_file(&s, env);
	if (s.config_file)
		scan_file(&s, s.config_file);
	lrconf_scan_apply_argv(&s);
	if (s.rpc) {
		/* The request's options come next: runc's own --lazy-pages flag is our best view
		 * of them. Then the request's config file, which CRIU applies last. */
		char path[64];
		pid_t pp = getppid();
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pp);
		size_t clen = 0;
		char *ccmd = lr_read_file(path, 1 << 20, &clen);
		char **cargv = calloc(MAX_ARGS + 1, sizeof(*cargv));
		int cargc = 0;
		if (ccmd && cargv) {
			for (size_t i = 0; i < clen && cargc < MAX_ARGS; i += strlen(ccmd + i) + 1)
				cargv[cargc++] = ccmd + i;
			lrconf_scan_client_argv(&s, cargc, cargv, (int)pp);
		}
		free(cargv);
		free(ccmd);
		if (&rpc_cfg_file && rpc_cfg_file)
			scan_file(&s, rpc_cfg_file);
	}

	if (s.lazy)
		snprintf(how, n, "lazy-pages %s", s.lazy_from);
	else if (s.rpc)
		snprintf(how, n,
			 "RPC mode and lazy-pages is in none of CRIU's config files (a request's "
			 "own lazy_pages flag is not visible to plugins)");
	else
		snprintf(how, n, "no --lazy-pages on the command line or in CRIU's config files");
	free(argv);
	free(cmd);
	*rpc = s.rpc;
	return s.lazy;
}

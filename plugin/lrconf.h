/*
 * Settings of the CRIU plugin lazy_restore.so, and a scanner for CRIU's own options.
 *
 * The plugin's file ($CRIU_LAZY_RESTORE_CONF, else /etc/criu/lazy-restore.conf) is in
 * criu.conf syntax: one `key value...` statement a line, words separated by blanks, a word
 * starting with '#' starts a comment, "double quotes" keep blanks in a value (\" and \\ inside
 * them). Every problem is an error naming the file, the line and the key.
 *
 * The scanner answers "is this restore lazy?" from CRIU's command line and config files (see
 * docs/plugin.md): it is part of lrconf (lrconf_scan.c), apart from the code that runs inside
 * CRIU, so that the unit tests and the fuzzer link it.
 */
#ifndef LRCONF_H
#define LRCONF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"
#include "util/parse.h"

#define LRCONF_ENV "CRIU_LAZY_RESTORE_CONF"
#define LRCONF_DEFAULT_PATH "/etc/criu/lazy-restore.conf"
#define LRCONF_MAX_SIZE (1 << 20) /* bytes: a config file is small */

enum lr_source { LR_SRC_LOCAL, LR_SRC_IMAGE_SERVER, LR_SRC_PAGE_SERVER };
enum lr_fill { LR_FILL_AUTO, LR_FILL_KMOD, LR_FILL_UFFD };
/* When to act: auto = when the restore is found to be lazy (docs/plugin.md); always = every
 * restore (for RPC clients whose lazy_pages flag we cannot see; a daemon no restore
 * connected to is stopped at the end); never = not at all. */
enum lr_lazy { LR_LAZY_AUTO, LR_LAZY_ALWAYS, LR_LAZY_NEVER };

/* Every key, in the order the docs list them. */
enum lr_key {
	LRK_SOURCE,
	LRK_IMAGE,
	LRK_AUTH_KEY,
	LRK_DAEMON,
	LRK_FILL,
	LRK_LOG,
	LRK_VERBOSITY,
	LRK_TIMEOUT,
	LRK_PUBLISH,
	LRK_PUBLISH_KEY,
	LRK_LAZY,
	LRK_TLS,
	LRK_TLS_CA,
	LRK_TLS_CERT,
	LRK_TLS_KEY,
	LRK_NR
};

/* TLS to criu-imgd (fetch, publish, the daemon): auto = when the server is not on loopback. */
enum lr_tls { LR_TLS_AUTO, LR_TLS_ON, LR_TLS_OFF };

struct lr_conf {
	char file[PATH_MAX]; /* the file read; "" when none was (all defaults) */
	enum lr_source source;
	struct hostport server;	      /* source image-server|page-server (the first of a list) */
	char servers[2400];	      /* source image-server: HOST:PORT[,HOST:PORT...] as given */
	char image[IMAGE_ID_MAX + 1]; /* "" = not given */
	char auth_key[PATH_MAX];      /* the readers' key (criu-imgd --auth-key); "" = none */
	char daemon[PATH_MAX];	      /* "" = the installed criu-lazyd */
	enum lr_fill fill;
	char log[PATH_MAX]; /* "" = criu-lazyd.log; relative paths are relative to the work dir */
	int verbosity;	    /* 0..4 */
	int timeout;	    /* seconds to wait for the daemon to listen */
	bool publish_set;
	struct hostport publish;
	char publish_key[PATH_MAX]; /* the publishers' key (criu-imgd --upload-key); "" = none */
	enum lr_lazy lazy;
	enum lr_tls tls;
	char tls_ca[PATH_MAX];	 /* X.509 mode: criu-imgd's CA; "" = PSK mode */
	char tls_cert[PATH_MAX]; /* X.509 mode: our client certificate; "" = none */
	char tls_key[PATH_MAX];	 /* its private key */
	int line[LRK_NR];	 /* where each key was set; 0 = default */
};

#define LRCONF_DEFAULT_VERBOSITY 2
#define LRCONF_DEFAULT_TIMEOUT 30
#define LRCONF_MAX_TIMEOUT 3600
#define LRCONF_MAX_SERVERS 8 /* source image-server A,B,...: as criu-lazyd's WIRE_MAX_SERVERS */
#define LRCONF_DEFAULT_LOG "criu-lazyd.log"

const char *lrconf_key_name(enum lr_key k);
struct wire_tls_cfg;
/* The TLS settings as the lazy-wire client takes them (pointers into c). */
void lrconf_tls(const struct lr_conf *c, struct wire_tls_cfg *t);
const char *lrconf_source_name(enum lr_source s);
const char *lrconf_fill_name(enum lr_fill f);
const char *lrconf_lazy_name(enum lr_lazy l);

void lrconf_defaults(struct lr_conf *c);

/* Parse TEXT (LEN bytes; NUL bytes are an error) as the contents of file NAME into C (which
 * starts from the defaults). 0, or -EINVAL (-ENOMEM) with the reason in E. */
int lrconf_parse(struct lr_conf *c, const char *name, const char *text, size_t len,
		 struct errmsg *e);

/* The file to read: $CRIU_LAZY_RESTORE_CONF if set (then *explicit = true), else the default. */
const char *lrconf_path(bool *explicit_path);

/* Read and parse PATH. A missing file is fine (all defaults, c->file = "") only when
 * MISSING_OK. 0, or -errno with the reason in E. */
int lrconf_load(struct lr_conf *c, const char *path, bool missing_ok, struct errmsg *e);

/* Split LINE (modified in place) into at most MAX words, criu.conf style. Returns the number
 * of words, or -EINVAL with the reason in E (unterminated quote, too many words). */
int lrconf_split(char *line, char **words, int max, struct errmsg *e);

/*
 * Scan of CRIU's own options, applied in CRIU's order (later sources override earlier ones):
 * /etc/criu/default.conf, $HOME/.criu/default.conf (both skipped with --no-default-config or
 * --config), $CRIU_CONFIG_FILE, --config FILE, the command line, and in RPC mode the
 * request's config file (runc: /etc/criu/runc.conf).
 */
struct lr_criu_scan {
	bool lazy;		       /* lazy-pages was given */
	char lazy_from[PATH_MAX + 16]; /* where it was given (last time), for the log */
	bool no_default_config;	       /* from the command line */
	const char *config_file;       /* --config FILE on the command line (points into argv) */
	bool rpc;		       /* criu runs as an RPC service (swrk/service) */
	int argv_lazy; /* the command line: 1 --lazy-pages, 0 --no-lazy-pages, -1 neither */
};

/* The command line (argv[0] is criu): sets rpc, no_default_config, config_file, argv_lazy.
 * Apply argv_lazy with lrconf_scan_apply_argv() at its place in the order above. */
void lrconf_scan_argv(struct lr_criu_scan *s, int argc, char **argv);
void lrconf_scan_apply_argv(struct lr_criu_scan *s);

/* RPC mode: the command line of the RPC client (CRIU's parent: runc, ...). A `restore`
 * command with a lazy-pages flag (--lazy-pages, -lazy-pages, =true) sets lazy: that is what
 * the client put into the request, which plugins cannot read. */
void lrconf_scan_client_argv(struct lr_criu_scan *s, int argc, char **argv, int pid);

/* One CRIU config file's text, named NAME: a `lazy-pages` statement sets lazy. */
void lrconf_scan_criu_conf(struct lr_criu_scan *s, const char *name, const char *text, size_t len);

#endif

/* lazy_restore.so's settings file (every key, every bad line) and the scan of CRIU options. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/lrconf.h"

static struct lr_conf c;
static struct errmsg e;

static int parse(const char *text)
{
	memset(&e, 0, sizeof(e));
	return lrconf_parse(&c, "t.conf", text, strlen(text), &e);
}

/* TEXT must fail with exactly MSG. */
static void bad(const char *text, const char *msg)
{
	cr_assert_eq(parse(text), -EINVAL, "accepted: %s", text);
	cr_assert_str_eq(e.msg, msg, "for %s", text);
}

static void good(const char *text)
{
	cr_assert_eq(parse(text), 0, "rejected: %s: %s", text, e.msg);
}

Test(lrconf, defaults_for_empty_and_comments)
{
	good("");
	cr_assert_eq(c.source, LR_SRC_LOCAL);
	cr_assert_eq(c.fill, LR_FILL_AUTO);
	cr_assert_eq(c.verbosity, LRCONF_DEFAULT_VERBOSITY);
	cr_assert_eq(c.timeout, LRCONF_DEFAULT_TIMEOUT);
	cr_assert_str_empty(c.daemon);
	cr_assert_str_empty(c.log);
	cr_assert_str_empty(c.image);
	cr_assert_str_empty(c.auth_key);
	cr_assert_not(c.publish_set);
	cr_assert_eq(c.lazy, LR_LAZY_AUTO);
	for (int k = 0; k < LRK_NR; k++)
		cr_assert_eq(c.line[k], 0);
	good("# only a comment\n\n   \t\n#source nowhere\n");
	cr_assert_eq(c.source, LR_SRC_LOCAL);
	cr_assert_str_eq(c.file, "t.conf");
}

Test(lrconf, every_key)
{
	good("source image-server imgd.example:7070\n"
	     "image web-1.2_a\n"
	     "auth-key /etc/criu/lazy.key\n"
	     "daemon /opt/bin/criu-lazyd\n"
	     "fill uffd\n"
	     "log /var/log/criu-lazyd.log\n"
	     "verbosity 4\n"
	     "timeout 120\n"
	     "publish 10.0.0.1:7071\n"
	     "publish-key /etc/criu/lazy-publish.key\n"
	     "lazy always\n"
	     "tls on\n"
	     "tls-ca /etc/criu/lazy-ca.pem\n"
	     "tls-cert /etc/criu/lazy-client.pem\n"
	     "tls-key /etc/criu/lazy-client.key\n");
	cr_assert_eq(c.source, LR_SRC_IMAGE_SERVER);
	cr_assert_str_eq(c.server.host, "imgd.example");
	cr_assert_eq(c.server.port_num, 7070);
	cr_assert_str_eq(c.image, "web-1.2_a");
	cr_assert_str_eq(c.auth_key, "/etc/criu/lazy.key");
	cr_assert_str_eq(c.daemon, "/opt/bin/criu-lazyd");
	cr_assert_eq(c.fill, LR_FILL_UFFD);
	cr_assert_str_eq(c.log, "/var/log/criu-lazyd.log");
	cr_assert_eq(c.verbosity, 4);
	cr_assert_eq(c.timeout, 120);
	cr_assert(c.publish_set);
	cr_assert_str_eq(c.publish.host, "10.0.0.1");
	cr_assert_eq(c.publish.port_num, 7071);
	cr_assert_str_eq(c.publish_key, "/etc/criu/lazy-publish.key");
	cr_assert_eq(c.lazy, LR_LAZY_ALWAYS);
	cr_assert_eq(c.tls, LR_TLS_ON);
	cr_assert_str_eq(c.tls_ca, "/etc/criu/lazy-ca.pem");
	cr_assert_str_eq(c.tls_cert, "/etc/criu/lazy-client.pem");
	cr_assert_str_eq(c.tls_key, "/etc/criu/lazy-client.key");
	for (int k = 0; k < LRK_NR; k++)
		cr_assert_eq(c.line[k], k + 1, "line of %s", lrconf_key_name(k));
}

Test(lrconf, source_values)
{
	good("source local");
	cr_assert_eq(c.source, LR_SRC_LOCAL);
	good("source page-server 192.168.1.5:27");
	cr_assert_eq(c.source, LR_SRC_PAGE_SERVER);
	cr_assert_str_eq(c.server.host, "192.168.1.5");
	cr_assert_eq(c.server.port_num, 27);
	good("source image-server [fe80::1]:65535");
	cr_assert_eq(c.source, LR_SRC_IMAGE_SERVER);
	cr_assert_str_eq(c.server.host, "fe80::1");
	cr_assert_eq(c.server.port_num, 65535);
	good("source image-server a:1,[::1]:2");
	cr_assert_str_eq(c.server.host, "a");
	cr_assert_str_eq(c.servers, "a:1,[::1]:2");
	good("  source\timage-server   host_1.lan:1   # trailing comment");
	cr_assert_str_eq(c.server.host, "host_1.lan");
	cr_assert_eq(c.server.port_num, 1);
}

Test(lrconf, fill_and_verbosity_values)
{
	good("fill auto");
	cr_assert_eq(c.fill, LR_FILL_AUTO);
	good("fill kmod");
	cr_assert_eq(c.fill, LR_FILL_KMOD);
	good("fill uffd");
	cr_assert_eq(c.fill, LR_FILL_UFFD);
	for (int v = 0; v <= 4; v++) {
		char t[32];
		snprintf(t, sizeof(t), "verbosity %d\n", v);
		good(t);
		cr_assert_eq(c.verbosity, v);
	}
	good("lazy auto");
	cr_assert_eq(c.lazy, LR_LAZY_AUTO);
	good("lazy never");
	cr_assert_eq(c.lazy, LR_LAZY_NEVER);
	good("timeout 1");
	cr_assert_eq(c.timeout, 1);
	good("timeout 3600");
	cr_assert_eq(c.timeout, 3600);
}

Test(lrconf, quoting_and_relative_log)
{
	good("log \"my logs/lazy d.log\"\n");
	cr_assert_str_eq(c.log, "my logs/lazy d.log");
	good("log relative.log");
	cr_assert_str_eq(c.log, "relative.log");
	good("daemon \"/opt/with \\\"quote\\\" and \\\\ slash\"");
	cr_assert_str_eq(c.daemon, "/opt/with \"quote\" and \\ slash");
	good("log /tmp/a#b");
	cr_assert_str_eq(c.log, "/tmp/a#b", "a '#' inside a word is not a comment");
	good("log /tmp/x.log\r\n");
	cr_assert_str_eq(c.log, "/tmp/x.log", "CRLF line ends");
	good("verbosity 3"); /* no final newline */
	cr_assert_eq(c.verbosity, 3);
}

Test(lrconf, unknown_keys)
{
	bad("sauce local\n", "t.conf:1: unknown key 'sauce' (keys: source, image, auth-key, "
			     "daemon, fill, log, verbosity, timeout, publish, publish-key, lazy, "
			     "tls, tls-ca, tls-cert, tls-key)");
	bad("\n# x\n--source local\n",
	    "t.conf:3: unknown key '--source' (write keys without the leading '--')");
	bad("lazy-pages\n", "t.conf:1: unknown key 'lazy-pages' (keys: source, image, auth-key, "
			    "daemon, fill, log, verbosity, timeout, publish, publish-key, lazy, "
			    "tls, tls-ca, tls-cert, tls-key)");
	bad("Source local\n", "t.conf:1: unknown key 'Source' (keys: source, image, auth-key, "
			      "daemon, fill, log, verbosity, timeout, publish, publish-key, lazy, "
			      "tls, tls-ca, tls-cert, tls-key)");
}

Test(lrconf, missing_values)
{
	bad("source", "t.conf:1: key 'source': needs a value (local, image-server "
		      "HOST:PORT[,HOST:PORT...] or page-server HOST:PORT)");
	bad("source image-server 1.2.3.4:5\nimage\n", "t.conf:2: key 'image': needs a value (an "
						      "image id)");
	bad("auth-key  # none", "t.conf:1: key 'auth-key': needs a value (a key file)");
	bad("daemon", "t.conf:1: key 'daemon': needs a value (the path of criu-lazyd)");
	bad("fill", "t.conf:1: key 'fill': needs a value (auto, kmod or uffd)");
	bad("log", "t.conf:1: key 'log': needs a value (a log file)");
	bad("verbosity", "t.conf:1: key 'verbosity': needs a value (a level from 0 to 4)");
	bad("timeout", "t.conf:1: key 'timeout': needs a value (a number of seconds)");
	bad("publish", "t.conf:1: key 'publish': needs a value (HOST:PORT)");
	bad("lazy", "t.conf:1: key 'lazy': needs a value (auto, always or never)");
	bad("log \"\"", "t.conf:1: key 'log': empty value");
}

Test(lrconf, too_many_values)
{
	bad("fill uffd kmod", "t.conf:1: key 'fill': takes one value, got 2");
	bad("log a b c", "t.conf:1: key 'log': takes one value, got 3");
	bad("verbosity 1 2", "t.conf:1: key 'verbosity': takes one value, got 2");
	bad("publish h:1 h:2", "t.conf:1: key 'publish': takes one value, got 2");
	bad("source local h:1", "t.conf:1: key 'source': 'local' takes no address, got 'h:1'");
	bad("source image-server", "t.conf:1: key 'source': 'image-server' takes one "
				   "HOST:PORT[,HOST:PORT...], got 0 values");
	bad("source image-server a:1 b:2", "t.conf:1: key 'source': 'image-server' takes one "
					   "HOST:PORT[,HOST:PORT...], got 2 values");
	bad("source image-server a:1,a:1",
	    "t.conf:1: key 'source': bad address list 'a:1,a:1': a:1 given twice");
	bad("source page-server a:1 b:2",
	    "t.conf:1: key 'source': 'page-server' takes one HOST:PORT, got 2 values");
	bad("log 1 2 3 4 5 6 7 8 9", "t.conf:1: key 'log': too many words");
}

Test(lrconf, bad_values)
{
	bad("source remote", "t.conf:1: key 'source': bad value 'remote' (expected local, "
			     "image-server HOST:PORT or page-server HOST:PORT)");
	bad("fill fast", "t.conf:1: key 'fill': bad value 'fast' (expected auto, kmod or uffd)");
	bad("lazy yes", "t.conf:1: key 'lazy': bad value 'yes' (expected auto, always or never)");
	bad("fill UFFD", "t.conf:1: key 'fill': bad value 'UFFD' (expected auto, kmod or uffd)");
	bad("verbosity 5", "t.conf:1: key 'verbosity': bad value '5' (expected a level from 0 to "
			   "4)");
	bad("verbosity -1", "t.conf:1: key 'verbosity': bad value '-1' (expected a level from 0 "
			    "to 4)");
	bad("verbosity 2x", "t.conf:1: key 'verbosity': bad value '2x' (expected a level from 0 "
			    "to 4)");
	bad("verbosity +2", "t.conf:1: key 'verbosity': bad value '+2' (expected a level from 0 "
			    "to 4)");
	bad("timeout 0", "t.conf:1: key 'timeout': bad value '0' (expected seconds, 1 to 3600)");
	bad("timeout 3601", "t.conf:1: key 'timeout': bad value '3601' (expected seconds, 1 to "
			    "3600)");
	bad("timeout 99999999999999999999",
	    "t.conf:1: key 'timeout': bad value '99999999999999999999' (expected seconds, 1 to "
	    "3600)");
	bad("daemon criu-lazyd", "t.conf:1: key 'daemon': 'criu-lazyd' is not an absolute path");
	bad("source image-server h:1\nauth-key key.txt",
	    "t.conf:2: key 'auth-key': 'key.txt' is not an absolute path");
	bad("source image-server h:1\nimage ../etc",
	    "t.conf:2: key 'image': bad image id '../etc' (1 to 128 characters: letters, digits, "
	    "'.', '_', '-'; starting with a letter or digit)");
	bad("source image-server h:1\nimage a/b",
	    "t.conf:2: key 'image': bad image id 'a/b' (1 to 128 characters: letters, digits, "
	    "'.', '_', '-'; starting with a letter or digit)");
	char longid[200];
	memset(longid, 'a', 129);
	longid[129] = '\0';
	char text[300];
	snprintf(text, sizeof(text), "source image-server h:1\nimage %s", longid);
	cr_assert_eq(parse(text), -EINVAL);
	cr_assert(strstr(e.msg, "t.conf:2: key 'image': bad image id"), "%s", e.msg);
	longid[128] = '\0';
	snprintf(text, sizeof(text), "source image-server h:1\nimage %s", longid);
	good(text);
}

Test(lrconf, bad_addresses)
{
	bad("publish host", "t.conf:1: key 'publish': bad address 'host': expected HOST:PORT");
	bad("publish :80", "t.conf:1: key 'publish': bad address ':80': empty host");
	bad("publish h:", "t.conf:1: key 'publish': bad address 'h:': the port must be a number "
			  "from 1 to 65535");
	bad("publish h:0", "t.conf:1: key 'publish': bad address 'h:0': the port must be a number "
			   "from 1 to 65535");
	bad("publish h:65536", "t.conf:1: key 'publish': bad address 'h:65536': the port must be "
			       "a number from 1 to 65535");
	bad("publish h:http", "t.conf:1: key 'publish': bad address 'h:http': the port must be a "
			      "number from 1 to 65535");
	bad("source page-server fe80::1:80", "t.conf:1: key 'source': bad address 'fe80::1:80': "
					     "an IPv6 address needs brackets: [ADDR]:PORT");
	bad("source page-server [fe80::1]80", "t.conf:1: key 'source': bad address "
					      "'[fe80::1]80': expected [IPV6]:PORT");
	bad("source page-server [zz::1]:80", "t.conf:1: key 'source': bad address '[zz::1]:80': "
					     "bad character in the IPv6 address");
	bad("source page-server []:80", "t.conf:1: key 'source': bad address '[]:80': bad IPv6 "
					"address");
	bad("source page-server ho$t:80", "t.conf:1: key 'source': bad address 'ho$t:80': bad "
					  "character in the host name");
}

Test(lrconf, duplicates_and_cross_checks)
{
	bad("fill uffd\n\nfill kmod\n", "t.conf:3: key 'fill': given twice (first on line 1)");
	bad("image abc\n", "t.conf:1: key 'image': needs `source image-server HOST:PORT` or "
			   "`publish HOST:PORT` (the source is local by default)");
	bad("source page-server h:1\nimage abc\n",
	    "t.conf:2: key 'image': needs `source image-server HOST:PORT` or `publish HOST:PORT` "
	    "(the source is page-server)");
	/* The id a dump publishes under. */
	struct lr_conf pc;
	struct errmsg pe;
	const char *pub = "publish 127.0.0.1:1\nimage abc\nauth-key /k\n";
	cr_assert_eq(lrconf_parse(&pc, "t.conf", pub, strlen(pub), &pe), 0, "%s", pe.msg);
	cr_assert_str_eq(pc.image, "abc");
	bad("auth-key /k\n", "t.conf:1: key 'auth-key': is only used with `source image-server` "
			     "or `publish` (neither is set)");
	good("auth-key /k\npublish h:1\n");
	good("publish h:1\n");
	good("publish h:1\npublish-key /p\n");
	bad("publish-key /p\n",
	    "t.conf:1: key 'publish-key': is only used with `publish HOST:PORT`");
	/* TLS: with criu-imgd only; a certificate with its key and a CA; nothing with tls off. */
	good("source image-server h:1\ntls off\n");
	cr_assert_eq(c.tls, LR_TLS_OFF);
	good("publish h:1\ntls auto\ntls-ca /ca\n");
	cr_assert_eq(c.tls, LR_TLS_AUTO);
	cr_assert_str_eq(c.tls_ca, "/ca");
	bad("tls on\n", "t.conf:1: key 'tls': is only used with `source image-server` or "
			"`publish` (neither is set)");
	bad("source image-server h:1\ntls maybe\n",
	    "t.conf:2: key 'tls': bad value 'maybe' (expected auto, on or off)");
	bad("source image-server h:1\ntls-ca ca.pem\n",
	    "t.conf:2: key 'tls-ca': 'ca.pem' is not an absolute path");
	bad("source image-server h:1\ntls-ca /ca\ntls-cert /c\n",
	    "t.conf:3: key 'tls-cert': tls-cert and tls-key go together");
	bad("source image-server h:1\ntls-key /k\ntls-cert /c\n",
	    "t.conf:3: key 'tls-cert': needs tls-ca (X.509 mode: criu-imgd's CA)");
	bad("source image-server h:1\ntls off\ntls-ca /ca\n",
	    "t.conf:3: key 'tls-ca': is not used with `tls off`");
	/* The first error wins: an unknown key before a cross-check problem. */
	bad("image abc\nnope 1\n", "t.conf:2: unknown key 'nope' (keys: source, image, auth-key, "
				   "daemon, fill, log, verbosity, timeout, publish, publish-key, "
				   "lazy, tls, tls-ca, tls-cert, tls-key)");
}

Test(lrconf, bad_syntax)
{
	bad("log \"unterminated", "t.conf:1: key 'log': unterminated quote");
	bad("log \"a\"b", "t.conf:1: key 'log': text right after a closing quote");
	good("\"source\" local"); /* a quoted key is still the key */
	bad("\"unterminated", "t.conf:1: unterminated quote");
	const char nul[] = "fill auto\n\0fill uffd\n";
	cr_assert_eq(lrconf_parse(&c, "t.conf", nul, sizeof(nul) - 1, &e), -EINVAL);
	cr_assert_str_eq(e.msg, "t.conf: contains a NUL byte (not a text file)");
}

Test(lrconf, split)
{
	char line[] = "  a  \"b c\" d#e \"\" #f g";
	char *w[8];
	struct errmsg why = {""};
	int n = lrconf_split(line, w, 8, &why);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(w[0], "a");
	cr_assert_str_eq(w[1], "b c");
	cr_assert_str_eq(w[2], "d#e");
	cr_assert_str_eq(w[3], "");
	char two[] = "x y";
	cr_assert_eq(lrconf_split(two, w, 1, &why), -EINVAL);
	cr_assert_str_eq(why.msg, "too many words");
}

static char tmpdir[] = "/tmp/lrconf-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char p[512];
	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

Test(lrconf, load_files)
{
	cr_assert_not_null(mkdtemp(tmpdir));
	const char *p = write_file("ok.conf", "fill uffd\nverbosity 1\n");
	cr_assert_eq(lrconf_load(&c, p, false, &e), 0, "%s", e.msg);
	cr_assert_eq(c.fill, LR_FILL_UFFD);
	cr_assert_str_eq(c.file, p);

	p = write_file("bad.conf", "fill uffd\nverbosity loud\n");
	cr_assert_eq(lrconf_load(&c, p, false, &e), -EINVAL);
	char want[700];
	snprintf(want, sizeof(want),
		 "%s:2: key 'verbosity': bad value 'loud' (expected a level from 0 to 4)", p);
	cr_assert_str_eq(e.msg, want);

	char missing[512];
	snprintf(missing, sizeof(missing), "%s/none.conf", tmpdir);
	cr_assert_eq(lrconf_load(&c, missing, true, &e), 0);
	cr_assert_str_empty(c.file);
	cr_assert_eq(c.source, LR_SRC_LOCAL);
	cr_assert_eq(lrconf_load(&c, missing, false, &e), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", missing);
	cr_assert_str_eq(e.msg, want);

	cr_assert_eq(lrconf_load(&c, tmpdir, true, &e), -EISDIR);
	snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmpdir);
	cr_assert_str_eq(e.msg, want);

	p = write_file("open.conf", "fill uffd\n");
	chmod(p, 0666);
	cr_assert_eq(lrconf_load(&c, p, true, &e), -EPERM);
	snprintf(want, sizeof(want), "%s: cannot read: writable by anyone (chmod o-w): refused", p);
	cr_assert_str_eq(e.msg, want);
	unlink(p);

	unlink(write_file("ok.conf", ""));
	unlink(write_file("bad.conf", ""));
	rmdir(tmpdir);
}

Test(lrconf, path_from_env)
{
	bool ex = true;
	unsetenv(LRCONF_ENV);
	cr_assert_str_eq(lrconf_path(&ex), LRCONF_DEFAULT_PATH);
	cr_assert_not(ex);
	setenv(LRCONF_ENV, "/x/y.conf", 1);
	cr_assert_str_eq(lrconf_path(&ex), "/x/y.conf");
	cr_assert(ex);
	setenv(LRCONF_ENV, "", 1);
	cr_assert_str_eq(lrconf_path(&ex), LRCONF_DEFAULT_PATH);
	unsetenv(LRCONF_ENV);
}

/* --- the scan of CRIU's options --- */

static struct lr_criu_scan scan(int argc, const char **argv)
{
	struct lr_criu_scan s;
	memset(&s, 0, sizeof(s));
	lrconf_scan_argv(&s, argc, (char **)argv);
	lrconf_scan_apply_argv(&s);
	return s;
}

#define SCAN(...)                                                                                  \
	({                                                                                         \
		const char *a_[] = {__VA_ARGS__};                                                  \
		scan((int)(sizeof(a_) / sizeof(a_[0])), a_);                                       \
	})

Test(scan, command_line)
{
	cr_assert(SCAN("criu", "restore", "--lazy-pages", "-D", "img").lazy);
	cr_assert(SCAN("criu", "restore", "-D", "img", "--lazy-pages").lazy);
	cr_assert(SCAN("criu", "restore", "--lazy").lazy, "getopt prefixes");
	cr_assert(SCAN("criu", "restore", "--la").lazy);
	cr_assert_not(SCAN("criu", "restore", "--l").lazy, "ambiguous for CRIU too");
	cr_assert_not(SCAN("criu", "restore", "-D", "img", "-d").lazy);
	cr_assert_not(SCAN("criu", "restore", "-o", "--lazy-pages").lazy, "an argument of -o");
	cr_assert_not(SCAN("criu", "restore", "--log-file", "--lazy-pages").lazy);
	cr_assert_not(SCAN("criu", "restore", "--lib", "--lazy-pages").lazy, "--lib = --libdir");
	cr_assert(SCAN("criu", "restore", "--log-file=x", "--lazy-pages").lazy);
	cr_assert(SCAN("criu", "restore", "-dD", "img", "--lazy-pages").lazy);
	cr_assert(SCAN("criu", "restore", "-Dimg", "--lazy-pages").lazy);
	cr_assert(SCAN("criu", "restore", "-v4", "--lazy-pages").lazy);
	cr_assert_not(SCAN("criu", "restore", "--", "--lazy-pages").lazy);
	cr_assert_not(SCAN("criu", "restore", "--lazy-pages=1").lazy);
	cr_assert_not(SCAN("criu", "restore", "--lazy-pages", "--no-lazy-pages").lazy);
	struct lr_criu_scan s = SCAN("criu", "restore", "--lazy-pages");
	cr_assert_str_eq(s.lazy_from, "on the command line");
	cr_assert_not(s.rpc);
	cr_assert_not(s.no_default_config);
	cr_assert_null(s.config_file);
}

Test(scan, config_options_and_rpc)
{
	struct lr_criu_scan s = SCAN("criu", "restore", "--config", "/c.conf");
	cr_assert_str_eq(s.config_file, "/c.conf");
	cr_assert(s.no_default_config, "as CRIU, --config skips the default files");
	s = SCAN("criu", "restore", "--config=/d.conf");
	cr_assert_str_eq(s.config_file, "/d.conf");
	s = SCAN("criu", "restore", "--no-default-config");
	cr_assert(s.no_default_config);
	cr_assert_null(s.config_file);
	s = SCAN("criu", "swrk", "3");
	cr_assert(s.rpc);
	cr_assert_not(s.lazy);
	s = SCAN("restore --rpc");
	cr_assert(s.rpc, "setproctitle'd RPC restore");
	s = SCAN("criu: restore --rpc --lazy-pages");
	cr_assert(s.rpc);
	cr_assert_not(s.lazy, "an RPC title is not a command line");
}

static struct lr_criu_scan scan_client(int argc, const char **argv)
{
	struct lr_criu_scan s;
	memset(&s, 0, sizeof(s));
	lrconf_scan_client_argv(&s, argc, (char **)argv, 42);
	return s;
}

#define CLIENT(...)                                                                                \
	({                                                                                         \
		const char *a_[] = {__VA_ARGS__};                                                  \
		scan_client((int)(sizeof(a_) / sizeof(a_[0])), a_);                                \
	})

Test(scan, rpc_client_command_line)
{
	struct lr_criu_scan s =
	    CLIENT("runc", "--root", "/run/runc", "restore", "--lazy-pages", "-d", "ctr");
	cr_assert(s.lazy);
	cr_assert_str_eq(s.lazy_from, "on the command line of the RPC client (pid 42, runc)");
	cr_assert(CLIENT("runc", "restore", "-lazy-pages", "ctr").lazy);
	cr_assert(CLIENT("runc", "restore", "--lazy-pages=true", "ctr").lazy);
	cr_assert_not(CLIENT("runc", "restore", "--lazy-pages=false", "ctr").lazy);
	cr_assert_not(CLIENT("runc", "checkpoint", "--lazy-pages", "ctr").lazy);
	cr_assert_not(CLIENT("runc", "restore", "ctr").lazy);
	cr_assert_not(CLIENT("runc").lazy);
}

static struct lr_criu_scan scan_conf(const char *text)
{
	struct lr_criu_scan s;
	memset(&s, 0, sizeof(s));
	lrconf_scan_criu_conf(&s, "/etc/criu/runc.conf", text, strlen(text));
	return s;
}

Test(scan, criu_config_files)
{
	struct lr_criu_scan s = scan_conf("tcp-established\nlazy-pages\nlib /usr/lib/criu\n");
	cr_assert(s.lazy);
	cr_assert_str_eq(s.lazy_from, "in /etc/criu/runc.conf:2");
	cr_assert(scan_conf("  lazy-pages   # comment").lazy);
	cr_assert(scan_conf("lazy").lazy);
	cr_assert_not(scan_conf("# lazy-pages").lazy);
	cr_assert_not(scan_conf("log-file lazy-pages").lazy, "a value, not an option");
	cr_assert_not(scan_conf("--lazy-pages").lazy, "CRIU itself rejects it");
	cr_assert_not(scan_conf("lazy-pages-x").lazy);
	cr_assert_not(scan_conf("lazy-pages\nno-lazy-pages\n").lazy);
	cr_assert_not(scan_conf("").lazy);
	cr_assert_not(scan_conf("\"lazy-pages").lazy);
}

/* criu.conf.example documents every key, with a value that parses (run from the repo root). */
Test(lrconf, example_file_documents_every_key)
{
	FILE *f = fopen("criu.conf.example", "r");
	if (!f)
		f = fopen("../../../criu.conf.example", "r");
	cr_assert_not_null(f, "criu.conf.example (run from the repo root)");
	char line[512], text[4096] = "";
	bool part2 = false;
	int seen[LRK_NR] = {0};
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "---- 2."))
			part2 = true;
		if (!part2 || line[0] != '#' || line[1] == ' ' || line[1] == '\n' || line[1] == '-')
			continue;
		char *stmt = line + 1; /* an example statement, commented out */
		for (int k = 0; k < LRK_NR; k++) {
			size_t n = strlen(lrconf_key_name(k));
			if (!strncmp(stmt, lrconf_key_name(k), n) && stmt[n] == ' ')
				seen[k]++;
		}
		if (!strncmp(stmt, "source local", 12))
			stmt = "source image-server imgd.example:27027\n";
		cr_assert_lt(strlen(text) + strlen(stmt), sizeof(text));
		strcat(text, stmt);
	}
	fclose(f);
	for (int k = 0; k < LRK_NR; k++)
		cr_assert_eq(seen[k], 1, "criu.conf.example shows key %s %d times",
			     lrconf_key_name(k), seen[k]);
	good(text);
}

/* img/fingerprint.c: which files make an image's identity, and that it changes with them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/fingerprint.h"

static char dir[64];
static int dfd = -1;

static void put(const char *name, const char *text)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert(fd >= 0, "%s: %s", name, strerror(errno));
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static uint64_t fp(void)
{
	struct errmsg e = {""};
	uint64_t v = 0;

	cr_assert_eq(img_fingerprint(dfd, &v, &e), 0, "%s", e.msg);
	cr_assert_neq(v, 0);
	return v;
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fp-test-XXXXXX");
	cr_assert(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	put("inventory.img", "inv");
	put("core-1.img", "regs");
	put("pagemap-1.img", "map");
	put("pages-1.img", "data");
}

static void teardown(void)
{
	char cmd[96];

	close(dfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(fingerprint, .init = setup, .fini = teardown);

Test(fingerprint, names)
{
	cr_assert(img_fingerprint_file("core-1.img"));
	cr_assert(img_fingerprint_file("inventory.img"));
	cr_assert(!img_fingerprint_file("pages-1.img"));
	cr_assert(!img_fingerprint_file("lazy-workset.img"));
	cr_assert(!img_fingerprint_file("restore.log"));
	cr_assert(!img_fingerprint_file("stats-dump"));
	cr_assert(!img_fingerprint_file(".img"));
	cr_assert(!img_fingerprint_file("pages-1.img.xxh64"));
	/* What criu-imgd never sends as metadata (the lazy-wire name rule) takes no part. */
	cr_assert(!img_fingerprint_file(".note.img"));
	cr_assert(!img_fingerprint_file("a b.img"));
	cr_assert(!img_fingerprint_file("a..b.img"));
	cr_assert(img_fingerprint_file("tty-info+1.img"));
}

/* A fetch's files only: whatever else lies in the dir does not count. */
Test(fingerprint, of_the_files_given)
{
	struct errmsg e = {""};
	const char *names[] = {"inventory.img", "core-1.img", "pagemap-1.img", "pages-1.img",
			       "restore.log"};
	uint64_t a = fp(), b = 0;

	put("leftover.img", "old");
	cr_assert_neq(fp(), a);
	cr_assert_eq(img_fingerprint_of(dfd, names, 5, &b, &e), 0, "%s", e.msg);
	cr_assert_eq(b, a);
}

/* Page data, our working-set record, logs: not part of it; any metadata byte or name is. */
Test(fingerprint, follows_the_metadata)
{
	uint64_t a = fp();

	cr_assert_eq(fp(), a);
	put("pages-1.img", "other data");
	put("lazy-workset.img", "record");
	put("restore.log", "log");
	cr_assert_eq(fp(), a);
	put("core-1.img", "regZ");
	uint64_t b = fp();
	cr_assert_neq(b, a);
	put("core-1.img", "regs");
	cr_assert_eq(fp(), a);
	put("mm-1.img", "");
	cr_assert_neq(fp(), a);
	cr_assert_eq(unlinkat(dfd, "mm-1.img", 0), 0);
	cr_assert_eq(renameat(dfd, "core-1.img", dfd, "core-2.img"), 0);
	cr_assert_neq(fp(), a);
}

/* What a server does not send (a symlink, a dir) is not part of it; no inventory, none. */
Test(fingerprint, skips_and_refuses)
{
	struct errmsg e = {""};
	uint64_t a = fp(), v;

	cr_assert_eq(symlinkat("/etc/passwd", dfd, "fs-1.img"), 0);
	cr_assert_eq(mkdirat(dfd, "evil-dir.img", 0700), 0);
	cr_assert_eq(fp(), a);
	cr_assert_eq(unlinkat(dfd, "inventory.img", 0), 0);
	cr_assert_eq(img_fingerprint(dfd, &v, &e), -ENOENT);
	cr_assert(strstr(e.msg, "inventory"), "%s", e.msg);
}

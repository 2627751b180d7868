/*
 * The object store's parts that need no cluster: the rados backend's settings (store URL,
 * cephx user, the secret-file rule, the keyring search list; store_rados_conf.c), the backend
 * dispatch (store_be.c) and the read-ahead queue's hand-over of a chunk the loop needs
 * (store_fetch.c). The backend itself runs against a real Ceph in make storetest.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgd/store.h"
#include "imgd/store_rados.h"

Test(store_rados, url)
{
	char pool[RADOS_POOL_MAX], p[256];
	struct errmsg e;

	cr_assert_eq(rados_parse_url("rados://imgd", pool, sizeof(pool), p, sizeof(p), &e), 0);
	cr_assert_str_eq(pool, "imgd");
	cr_assert_str_eq(p, "");
	cr_assert_eq(
	    rados_parse_url("rados://Img_d.1/a/b-c/", pool, sizeof(pool), p, sizeof(p), &e), 0,
	    "%s", e.msg);
	cr_assert_str_eq(pool, "Img_d.1");
	cr_assert_str_eq(p, "a/b-c/");
	static const char *bad[] = {"s3://imgd",	 "rados://",	    "rados:///x",
				    "rados://..",	 "rados://im gd",   "rados://imgd/../x",
				    "rados://imgd/a//b", "rados://imgd/a?b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(rados_parse_url(bad[i], pool, sizeof(pool), p, sizeof(p), &e), -EINVAL,
			     "%s", bad[i]);
	char longpool[300] = "rados://";
	memset(longpool + 8, 'a', 200);
	cr_assert_eq(rados_parse_url(longpool, pool, sizeof(pool), p, sizeof(p), &e), -EINVAL);
}

Test(store_rados, id)
{
	struct errmsg e;

	cr_assert_eq(rados_id_check("admin", &e), 0);
	cr_assert_eq(rados_id_check("imgd.reader-1", &e), 0);
	cr_assert_eq(rados_id_check("client.admin", &e), -EINVAL);
	cr_assert(strstr(e.msg, "without 'client.'"), "%s", e.msg);
	cr_assert_eq(rados_id_check("", &e), -EINVAL);
	cr_assert_eq(rados_id_check("a b", &e), -EINVAL);
	cr_assert_eq(rados_id_check("a/b", &e), -EINVAL);
}

Test(store_rados, secret_file)
{
	char path[] = "/tmp/test-rados-keyring-XXXXXX";
	struct errmsg e;
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	dprintf(fd, "[client.imgd]\n\tkey = AQ==\n");
	close(fd);
	chmod(path, 0600);
	cr_assert_eq(rados_secret_file_check(path, "keyring", "keyring in --ceph-conf", &e), 0,
		     "%s", e.msg);
	chmod(path, 0640);
	cr_assert_eq(rados_secret_file_check(path, "keyring", "keyring in --ceph-conf", &e),
		     -EPERM);
	cr_assert(strstr(e.msg, "mode 640 lets group or others read it"), "%s", e.msg);
	chmod(path, 0602);
	cr_assert_eq(rados_secret_file_check(path, "keyring", "x", &e), -EPERM);
	unlink(path);
	cr_assert_eq(rados_secret_file_check(path, "keyring", "x", &e), -ENOENT);
	cr_assert_eq(rados_secret_file_check("/tmp", "keyring", "x", &e), -EINVAL);
	cr_assert(strstr(e.msg, "not a regular file"), "%s", e.msg);
}

Test(store_rados, keyring_list)
{
	char path[] = "/tmp/test-rados-kr-XXXXXX", list[256], out[256];
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	close(fd);
	snprintf(list, sizeof(list), "/nonexistent/a.keyring, /nonexistent/b;%s,/tmp", path);
	cr_assert(rados_first_existing(list, out, sizeof(out)));
	cr_assert_str_eq(out, path);
	cr_assert(!rados_first_existing("/nonexistent/a,,; /nonexistent/b", out, sizeof(out)));
	cr_assert(!rados_first_existing("", out, sizeof(out)));
	/* A name longer than out is skipped, never cut into another name. */
	cr_assert(!rados_first_existing(path, out, 8));
	unlink(path);
}

Test(store_be, scheme)
{
	struct store_be b;
	struct store_cfg c = {.store = "ftp://x"};
	struct errmsg e;

	cr_assert_eq(store_be_open(&b, &c, &e), -EINVAL);
	cr_assert(strstr(e.msg, "rados://POOL"), "%s", e.msg);
	c.store = "rados://imgd";
	c.ceph_id = "client.x";
	cr_assert_eq(store_be_open(&b, &c, &e), -EINVAL);
	c.store = "s3://images";
	c.ceph_id = NULL;
	cr_assert_eq(store_be_open(&b, &c, &e), -EINVAL); /* no endpoint */
	cr_assert(strstr(e.msg, "--s3-endpoint"), "%s", e.msg);
}

/* A queue of n jobs named k0.. as store_fetch_ahead fills it, starting at slot head. */
static void fill(struct store_fetch *f, unsigned head, unsigned n)
{
	memset(f, 0, sizeof(*f));
	f->qh = head;
	for (unsigned i = 0; i < n; i++)
		snprintf(f->q[(head + i) % STORE_RA_QUEUE].ckey, STORE_CACHE_KEY, "k%u", i);
	f->nq = n;
}

static const char *at(const struct store_fetch *f, unsigned i)
{
	return f->q[(f->qh + i) % STORE_RA_QUEUE].ckey;
}

Test(store_fetch, unqueue)
{
	static struct store_fetch f;

	/* Wrapped around the ring's end: the middle one out, the order of the others kept. */
	fill(&f, STORE_RA_QUEUE - 2, 5);
	cr_assert(store_fetch_unqueue(&f, "k2"));
	cr_assert_eq(f.nq, 4);
	cr_assert_str_eq(at(&f, 0), "k0");
	cr_assert_str_eq(at(&f, 1), "k1");
	cr_assert_str_eq(at(&f, 2), "k3");
	cr_assert_str_eq(at(&f, 3), "k4");
	cr_assert(!store_fetch_unqueue(&f, "k2"));
	cr_assert_eq(f.nq, 4);
	cr_assert(store_fetch_unqueue(&f, "k0"));
	cr_assert_str_eq(at(&f, 0), "k1");
	cr_assert(store_fetch_unqueue(&f, "k4"));
	cr_assert_eq(f.nq, 2);
	cr_assert_str_eq(at(&f, 1), "k3");
	/* A full queue. */
	fill(&f, 7, STORE_RA_QUEUE);
	cr_assert(store_fetch_unqueue(&f, "k0"));
	cr_assert(store_fetch_unqueue(&f, "k31"));
	cr_assert_eq(f.nq, STORE_RA_QUEUE - 2);
	cr_assert_str_eq(at(&f, 0), "k1");
	cr_assert_str_eq(at(&f, STORE_RA_QUEUE - 3), "k30");
}

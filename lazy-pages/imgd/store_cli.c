/*
 * `criu-imgd store put DIR ID` and `criu-imgd store get ID DIR`: the operator's copy of an
 * image between a directory and the object store (docs/store.md). A put checks that the dir
 * holds an image criu-imgd can serve first; a get fills a new dir (DIR.partial, renamed
 * when complete) and verifies every byte against the manifest.
 */
#include "store_cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "store.h"
#include "util/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: criu-imgd store put DIR ID [store options]\n"
		"       criu-imgd store get ID DIR [store options]\n"
		"Copy an image between a directory and the object store: put writes the image\n"
		"in DIR (which must load as criu-imgd serves it) as ID, manifest last, and never\n"
		"replaces an ID that exists; get fetches ID into DIR (created, mode 0700; it must\n"
		"not exist), every byte verified.\n"
		"\n"
		"      --store s3://BUCKET[/PREFIX] | rados://POOL[/PREFIX]\n"
		"      --s3-endpoint URL    (s3://)\n"
		"      --s3-region R        (s3://; default us-east-1)\n"
		"      --s3-credentials FILE (s3://; mode 0600)\n"
		"      --ceph-conf FILE     (rados://; default /etc/ceph/ceph.conf)\n"
		"      --ceph-id NAME       (rados://; default admin)\n"
		"  -v[N]                    log level 0..4 (default 2)\n"
		"  -h, --help\n");
}

static int put(struct imgd_store *st, const char *dir, const char *id)
{
	struct errmsg e;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0) {
		fprintf(stderr, "criu-imgd store put: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	rc = catalog_check_dir(fd, &e);
	if (rc)
		fprintf(stderr, "criu-imgd store put: %s is not an image criu-imgd can serve: %s\n",
			dir, e.msg);
	else if ((rc = store_put_dir(st, fd, id, &e)))
		fprintf(stderr, "criu-imgd store put: %s\n", e.msg);
	close(fd);
	return rc ? 1 : 0;
}

/* Every file in dir fd (flat: what a get writes) and the dir itself, removed. */
static void remove_dir(int fd, const char *path)
{
	DIR *d = fdopendir(dup(fd));
	struct dirent *de;

	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	if (d)
		closedir(d);
	rmdir(path);
}

/*
 * Fetched into DIR.partial, renamed to DIR once every byte is in and verified: a get that
 * fails leaves no image behind that could be served or put back damaged.
 */
static int get(struct imgd_store *st, const char *id, const char *dir)
{
	char part[4096];
	struct errmsg e;
	struct stat sb;
	int fd = -1, rc;

	errno = 0;
	if (snprintf(part, sizeof(part), "%s.partial", dir) >= (int)sizeof(part)) {
		fprintf(stderr, "criu-imgd store get: %s: name too long\n", dir);
		return 1;
	}
	if (!lstat(dir, &sb) || errno != ENOENT) {
		fprintf(stderr, "criu-imgd store get: %s: %s (it must not exist)\n", dir,
			errno == ENOENT || !errno ? "exists" : strerror(errno));
		return 1;
	}
	if (mkdir(part, 0700) ||
	    (fd = open(part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		fprintf(stderr, "criu-imgd store get: %s: %s (it must not exist)\n", part,
			strerror(errno));
		return 1;
	}
	rc = store_get_dir(st, id, fd, &e);
	if (!rc && (syncfs(fd) || rename(part, dir)))
		rc = errmsg_set(&e, errno, "cannot make %s %s: %s", part, dir, strerror(errno));
	if (rc) {
		fprintf(stderr, "criu-imgd store get: %s (nothing left behind)\n", e.msg);
		remove_dir(fd, part);
	}
	close(fd);
	return rc ? 1 : 0;
}

int store_cli(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"store", required_argument, NULL, 's'},
	    {"s3-endpoint", required_argument, NULL, 'e'},
	    {"s3-region", required_argument, NULL, 'r'},
	    {"s3-credentials", required_argument, NULL, 'c'},
	    {"ceph-conf", required_argument, NULL, 'C'},
	    {"ceph-id", required_argument, NULL, 'I'},
	    {"verbosity", optional_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct store_cfg cfg = {0};
	struct imgd_store st;
	struct errmsg e;
	int c;

	log_level = 2;
	log_set_prefix("criu-imgd store: ");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":v::h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg.store = optarg;
			break;
		case 'e':
			cfg.s3_endpoint = optarg;
			break;
		case 'r':
			cfg.s3_region = optarg;
			break;
		case 'c':
			cfg.s3_credentials = optarg;
			break;
		case 'C':
			cfg.ceph_conf = optarg;
			break;
		case 'I':
			cfg.ceph_id = optarg;
			break;
		case 'v':
			log_level = optarg ? (optarg[0] >= '0' && optarg[0] <= '4' && !optarg[1]
						  ? optarg[0] - '0'
						  : 4)
					   : 3;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "criu-imgd store: bad option '%s' (see --help)\n",
				argv[optind - 1]);
			return 1;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 3 || (strcmp(argv[0], "put") && strcmp(argv[0], "get"))) {
		usage(stderr);
		return 1;
	}
	if (!cfg.store) {
		fprintf(stderr, "criu-imgd store: needs --store s3://BUCKET[/PREFIX] or "
				"rados://POOL[/PREFIX]\n");
		return 1;
	}
	if (store_init(&st, &cfg, 8u << 20, &e)) {
		fprintf(stderr, "criu-imgd store: %s\n", e.msg);
		return 1;
	}
	int rc = !strcmp(argv[0], "put") ? put(&st, argv[1], argv[2]) : get(&st, argv[1], argv[2]);
	store_free(&st);
	return rc;
}

/* criu-imgd command line. */
#include "imgd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"
#include "util/version.h"
#include "wire/wire_qos.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: criu-imgd (-D DIR | --root DIR | --store URL) --auth-key FILE [options]\n"
		"       criu-imgd status [--status-socket PATH] [--json] [--watch [SECONDS]]\n"
		"       criu-imgd store put DIR ID | get ID DIR  --store URL [store options]\n"
		"Serve CRIU page images to criu-lazyd --image-server over TCP. 'status' shows a\n"
		"running server's sessions and totals (criu-imgd status --help).\n"
		"\n"
		"  -D, --images-dir DIR   serve the one image in DIR (id: its name, or 'default')\n"
		"      --root DIR         serve every image directory below DIR, by name\n"
		"      --store s3://BUCKET[/PREFIX] | rados://POOL[/PREFIX]\n"
		"                         serve every image of an S3 bucket or a Ceph pool\n"
		"                         (docs/store.md); uploads are written there\n"
		"      --s3-endpoint URL  the S3 endpoint, http(s)://HOST[:PORT] (with --store)\n"
		"      --s3-region R      the SigV4 region (default us-east-1)\n"
		"      --s3-credentials FILE\n"
		"                         access_key = ... and secret_key = ... lines; mode\n"
		"                         0600 (refused if group or others may read it)\n"
		"      --ceph-conf FILE   rados://: the cluster's conf, which names the keyring\n"
		"                         (default /etc/ceph/ceph.conf); keyrings and key\n"
		"                         files are refused if group or others may read them\n"
		"      --ceph-id NAME     rados://: the cephx user, without 'client.' (default\n"
		"                         admin)\n"
		"      --store-cache SIZE bytes of hot page chunks kept in memory (default 256M,\n"
		"                         at least 8M)\n"
		"      --auth-key FILE    the readers' key (required, on loopback too): clients\n"
		"                         prove they hold it to read, and we prove it back\n"
		"      --accept-uploads   take new images (UPLOAD) into --root\n"
		"      --upload-key FILE  the publishers' key (needed by --accept-uploads): it\n"
		"                         uploads only; the readers' key may not (they differ)\n"
		"      --upload-max SIZE  bytes of one upload (default 16G; K, M, G, T)\n"
		"      --upload-total SIZE\n"
		"                         bytes of all uploads in progress at once (default 64G)\n"
		"      --address ADDR     listen address (default 127.0.0.1)\n"
		"      --port PORT        listen port (default 27027; 0: any, see the log)\n"
		"      --max-clients N    connections at once (default 256)\n"
		"      --tls, --no-tls    TLS 1.3 on every connection, or none (default: TLS\n"
		"                         when --address is not loopback); without\n"
		"                         certificates: PSK from the keys, with (EC)DHE\n"
		"      --tls-cert FILE    X.509 mode: our certificate chain (PEM), with\n"
		"      --tls-key FILE     its private key\n"
		"      --tls-ca FILE      X.509 mode: clients must show a certificate of this CA\n"
		"      --compress on|off  zstd page data for the clients that ask (default on)\n"
		"      --fault-dscp N|off fault connections: DSCP N (0-63) and the host's\n"
		"                         interactive priority, so a queue that honours them lets\n"
		"                         faults' pages pass the streams' (default 18, AF21)\n"
		"      --make-sums        write the dump-time checksum index (pages-N.img.xxh64)\n"
		"                         of the image(s) and exit\n"
		"  -o, --log-file FILE    log file (default: stderr; with -d: criu-imgd.log)\n"
		"  -v[N], --verbosity[=N] log level 0..4 (default 2)\n"
		"  -d, --daemon           detach once listening\n"
		"      --pidfile FILE     write the server's pid to FILE\n"
		"      --status-fd FD     write the port and a newline to FD once listening\n"
		"      --status-socket PATH\n"
		"                         the status socket (root and our user only); default\n"
		"                         $RUNTIME_DIRECTORY/status.sock under systemd, else\n"
		"                         /run/criu-imgd/status.sock as root; 'none': off\n"
		"      --metrics-address ADDR:PORT\n"
		"                         serve Prometheus metrics on http://ADDR:PORT/metrics\n"
		"  -h, --help             this text\n"
		"      --version          print the version and exit\n");
}

/* An integer option in [min, max]; says what is wrong and what is allowed. */
static int num(const char *name, const char *s, long min, long max, long *out)
{
	int rc = parse_long(s, min, max, out);

	if (rc)
		fprintf(stderr, "criu-imgd: bad value '%s' for %s: %s (expected %ld..%ld)\n", s,
			name, rc == -ERANGE ? "out of range" : "not a decimal number", min, max);
	return rc;
}

#define SIZE_ARG_MAX (1ull << 50) /* 1P: sizes the quotas can hold without overflow */

/* A byte count with an optional K, M, G or T (powers of 1024) suffix, 1 .. 1P. */
static int size_arg(const char *name, const char *s, uint64_t *out)
{
	int rc = parse_size(s, 1, SIZE_ARG_MAX, out);

	if (rc)
		fprintf(stderr,
			"criu-imgd: bad value '%s' for %s: %s (bytes, optionally with K, M, G or "
			"T; 1 to 1P)\n",
			s, name, rc == -ERANGE ? "out of range" : "not a size");
	return rc;
}

/* --metrics-address: a numeric HOST:PORT or [V6]:PORT. */
static int metrics_arg(const char *s)
{
	struct hostport hp;
	struct errmsg e;
	int rc = parse_hostport(s, &hp, &e);

	if (rc)
		fprintf(stderr, "criu-imgd: bad value '%s' for --metrics-address: %s\n", s, e.msg);
	return rc;
}

/* Options that only make sense together; the keys the server needs. */
static int check_opts(const struct imgd_opts *o)
{
	const char *bad = NULL;

	if (!!o->dir + !!o->root + !!o->store != 1)
		bad = "give exactly one of -D DIR, --root DIR and --store URL";
	else if ((!o->store || strncmp(o->store, "s3://", 5)) &&
		 (o->s3_endpoint || o->s3_credentials || o->s3_region))
		bad = "--s3-endpoint, --s3-region and --s3-credentials go with --store s3://";
	else if ((!o->store || strncmp(o->store, "rados://", 8)) && (o->ceph_conf || o->ceph_id))
		bad = "--ceph-conf and --ceph-id go with --store rados://";
	else if (o->store && strncmp(o->store, "s3://", 5) && strncmp(o->store, "rados://", 8))
		bad = "--store: expected s3://BUCKET[/PREFIX] or rados://POOL[/PREFIX]";
	else if (o->store && !strncmp(o->store, "s3://", 5) &&
		 (!o->s3_endpoint || !o->s3_credentials))
		bad = "--store s3:// needs --s3-endpoint URL and --s3-credentials FILE";
	else if (o->store && o->make_sums)
		bad = "--make-sums works on a dir (-D), not on --store";
	else if (o->store_cache < (8u << 20))
		bad = "--store-cache: 8M at least (two chunks)";
	else if (o->make_sums)
		return 0; /* serves nothing: no key needed */
	else if (!o->auth_key)
		bad = "needs --auth-key FILE: every client must prove it holds the key, on "
		      "loopback too (docs/protocol.md)";
	else if (o->accept_uploads && ((!o->root && !o->store) || !o->upload_key))
		bad =
		    "--accept-uploads needs --root DIR and --upload-key FILE (the publishers' key, "
		    "not the readers'), or --store URL and --upload-key FILE";
	else if (o->upload_key && !o->accept_uploads)
		bad = "--upload-key is only used with --accept-uploads";
	if (bad) {
		fprintf(stderr, "criu-imgd: %s\n", bad);
		return -EINVAL;
	}
	struct errmsg e;
	int rc = wire_tls_cfg_check(&o->tls, true, &e);
	if (rc)
		fprintf(stderr, "criu-imgd: %s\n", e.msg);
	return rc;
	return 0;
}

enum {
	O_ROOT = 256,
	O_ADDR,
	O_PORT,
	O_KEY,
	O_MAXC,
	O_SUMS,
	O_PIDFILE,
	O_STATUS,
	O_UPLOADS,
	O_UPKEY,
	O_UPMAX,
	O_UPTOTAL,
	O_TLS,
	O_NOTLS,
	O_TLSCERT,
	O_TLSKEY,
	O_TLSCA,
	O_STATUS_SOCKET,
	O_METRICS,
	O_VERSION,
	O_COMPRESS,
	O_DSCP,
	O_STORE,
	O_S3EP,
	O_S3REGION,
	O_S3CRED,
	O_STORECACHE,
	O_CEPHCONF,
	O_CEPHID
};

int imgd_parse_opts(int argc, char **argv, struct imgd_opts *o)
{
	static const struct option lo[] = {
	    {"images-dir", required_argument, NULL, 'D'},
	    {"root", required_argument, NULL, O_ROOT},
	    {"accept-uploads", no_argument, NULL, O_UPLOADS},
	    {"address", required_argument, NULL, O_ADDR},
	    {"port", required_argument, NULL, O_PORT},
	    {"auth-key", required_argument, NULL, O_KEY},
	    {"upload-key", required_argument, NULL, O_UPKEY},
	    {"upload-max", required_argument, NULL, O_UPMAX},
	    {"upload-total", required_argument, NULL, O_UPTOTAL},
	    {"max-clients", required_argument, NULL, O_MAXC},
	    {"tls", no_argument, NULL, O_TLS},
	    {"no-tls", no_argument, NULL, O_NOTLS},
	    {"tls-cert", required_argument, NULL, O_TLSCERT},
	    {"tls-key", required_argument, NULL, O_TLSKEY},
	    {"tls-ca", required_argument, NULL, O_TLSCA},
	    {"make-sums", no_argument, NULL, O_SUMS},
	    {"log-file", required_argument, NULL, 'o'},
	    {"verbosity", optional_argument, NULL, 'v'},
	    {"daemon", no_argument, NULL, 'd'},
	    {"pidfile", required_argument, NULL, O_PIDFILE},
	    {"status-fd", required_argument, NULL, O_STATUS},
	    {"status-socket", required_argument, NULL, O_STATUS_SOCKET},
	    {"metrics-address", required_argument, NULL, O_METRICS},
	    {"compress", required_argument, NULL, O_COMPRESS},
	    {"fault-dscp", required_argument, NULL, O_DSCP},
	    {"store", required_argument, NULL, O_STORE},
	    {"s3-endpoint", required_argument, NULL, O_S3EP},
	    {"s3-region", required_argument, NULL, O_S3REGION},
	    {"s3-credentials", required_argument, NULL, O_S3CRED},
	    {"ceph-conf", required_argument, NULL, O_CEPHCONF},
	    {"ceph-id", required_argument, NULL, O_CEPHID},
	    {"store-cache", required_argument, NULL, O_STORECACHE},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, O_VERSION},
	    {0},
	};
	long v;
	int c;

	memset(o, 0, sizeof(*o));
	o->address = "127.0.0.1";
	o->port = 27027;
	o->verbosity = 2;
	o->max_clients = 256;
	o->compress = true;
	o->fault_dscp = WIRE_FAULT_DSCP;
	o->status_fd = -1;
	o->upload_max = IMGD_UPLOAD_MAX;
	o->upload_total = IMGD_UPLOAD_TOTAL;
	o->store_cache = IMGD_STORE_CACHE;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":D:o:v::dh", lo, NULL)) != -1) {
		switch (c) {
		case 'D':
			o->dir = optarg;
			break;
		case O_ROOT:
			o->root = optarg;
			break;
		case O_UPLOADS:
			o->accept_uploads = true;
			break;
		case O_ADDR:
			o->address = optarg;
			break;
		case O_PORT:
			if (num("--port", optarg, 0, 65535, &v))
				return -EINVAL;
			o->port = (int)v;
			break;
		case O_KEY:
			o->auth_key = optarg;
			break;
		case O_UPKEY:
			o->upload_key = optarg;
			break;
		case O_UPMAX:
			if (size_arg("--upload-max", optarg, &o->upload_max))
				return -EINVAL;
			break;
		case O_UPTOTAL:
			if (size_arg("--upload-total", optarg, &o->upload_total))
				return -EINVAL;
			break;
		case O_MAXC:
			if (num("--max-clients", optarg, 1, 65536, &v))
				return -EINVAL;
			o->max_clients = (int)v;
			break;
		case O_SUMS:
			o->make_sums = true;
			break;
		case O_TLS:
		case O_NOTLS:
			o->tls.mode = c == O_TLS ? WIRE_TLS_ON : WIRE_TLS_OFF;
			break;
		case O_TLSCERT:
			o->tls.cert = optarg;
			break;
		case O_TLSKEY:
			o->tls.key = optarg;
			break;
		case O_TLSCA:
			o->tls.ca = optarg;
			break;
		case 'o':
			o->log_file = optarg;
			break;
		case 'v':
			if (!optarg)
				o->verbosity++;
			else if (strspn(optarg, "v") == strlen(optarg))
				o->verbosity += 1 + (int)strlen(optarg);
			else if (num("--verbosity", optarg, 0, 4, &v))
				return -EINVAL;
			else
				o->verbosity = (int)v;
			break;
		case 'd':
			o->daemon = true;
			break;
		case O_PIDFILE:
			o->pidfile = optarg;
			break;
		case O_STATUS:
			if (num("--status-fd", optarg, 0, 1 << 20, &v))
				return -EINVAL;
			o->status_fd = (int)v;
			break;
		case O_STATUS_SOCKET:
			if (!*optarg) {
				fprintf(stderr,
					"criu-imgd: --status-socket needs a path, or 'none'\n");
				return -EINVAL;
			}
			o->status_socket = optarg;
			break;
		case O_COMPRESS:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr,
					"criu-imgd: bad value '%s' for --compress (on|off)\n",
					optarg);
				return -EINVAL;
			}
			o->compress = !strcmp(optarg, "on");
			break;
		case O_DSCP:
			if (wire_qos_parse(optarg, &o->fault_dscp)) {
				fprintf(stderr,
					"criu-imgd: bad value '%s' for --fault-dscp (off|0-63)\n",
					optarg);
				return -EINVAL;
			}
			break;
		case O_STORE:
			o->store = optarg;
			break;
		case O_S3EP:
			o->s3_endpoint = optarg;
			break;
		case O_S3REGION:
			o->s3_region = optarg;
			break;
		case O_S3CRED:
			o->s3_credentials = optarg;
			break;
		case O_CEPHCONF:
			o->ceph_conf = optarg;
			break;
		case O_CEPHID:
			o->ceph_id = optarg;
			break;
		case O_STORECACHE:
			if (size_arg("--store-cache", optarg, &o->store_cache))
				return -EINVAL;
			break;
		case O_METRICS:
			if (metrics_arg(optarg))
				return -EINVAL;
			o->metrics_address = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case O_VERSION:
			printf("criu-imgd %s\n", CRIU_LAZY_VERSION);
			return 1;
		case ':':
			fprintf(stderr, "criu-imgd: option '%s' needs a value\n", argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr, "criu-imgd: unknown option '%s' (see --help)\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "criu-imgd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (check_opts(o))
		return -EINVAL;
	if (o->verbosity > 4)
		o->verbosity = 4;
	if (o->daemon && !o->log_file)
		o->log_file = "criu-imgd.log"; /* detached: stderr goes nowhere */
	return 0;
}

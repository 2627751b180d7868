#include "opts.h"
#include "fill/fill_pool.h"
#include "util/version.h"
#include "wire/wire_qos.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WINDOW 512 /* pages: 2 MiB */
#define MAX_CHUNK 4096 /* pages: 16 MiB */

static void usage(FILE *f)
{
	fprintf(
	    f, "Usage: criu-lazyd [lazy-pages] [options]\n"
	       "Serve the memory of tasks restored by `criu restore --lazy-pages`.\n"
	       "A drop-in for `criu lazy-pages`: same options, same socket protocol.\n"
	       "\n"
	       "  -D, --images-dir DIR   images to serve pages from (default: .)\n"
	       "  -W, --work-dir DIR     where lazy-pages.socket is created (default: images dir)\n"
	       "  -o, --log-file FILE    log file (default: stderr; with -d: criu-lazyd.log in "
	       "work dir)\n"
	       "  -v[N], --verbosity[=N] log level 0..4 (-v alone or -vv.. adds one per v; default "
	       "2)\n"
	       "  -d, --daemon           detach once the socket listens\n"
	       "      --pidfile FILE     write the daemon's pid to FILE\n"
	       "      --status-fd FD     write one byte to FD once the socket listens\n"
	       "      --stats-file FILE  write the summary as JSON at exit\n"
	       "      --fill MODE        auto|uffd|kmod: page install engine (default auto)\n"
	       "      --fault-window N   pages installed per fault, from the faulting one on "
	       "(default 16; doubled per fault in order)\n"
	       "      --drain-chunk N    pages per background prefetch step (default 128)\n"
	       "      --fill-threads N   threads that install the background stream from local\n"
	       "                         images (default 0: one per CPU, at most 8; 1: none)\n"
	       "      --image-server HOST:PORT[,HOST:PORT...]  fetch the index and pages from\n"
	       "                         criu-imgd; several: instances of one store, failed\n"
	       "                         over to mid-restore (the same image, checked)\n"
	       "      --image ID         image id on the image server (default: 'default')\n"
	       "      --auth-key FILE    shared key for the image server\n"
	       "      --tls, --no-tls    TLS 1.3 to the image server, or none (default: TLS\n"
	       "                         unless it is on loopback); PSK from --auth-key\n"
	       "      --tls-ca FILE      X.509 mode: the server's certificate must chain to\n"
	       "                         this CA and name the server (or --tls-name NAME)\n"
	       "      --tls-cert FILE, --tls-key FILE  X.509 mode: our client certificate\n"
	       "      --fetch-only       fetch the image's metadata into an empty -D dir, "
	       "then exit\n"
	       "      --page-server      fetch pages from CRIU's page server (criu dump "
	       "--lazy-pages)\n"
	       "      --address ADDR     the page server's address (with --page-server)\n"
	       "      --port PORT        the page server's port (with --page-server)\n"
	       "      --source-retries N reconnects / re-reads before a page is lost (default "
	       "10)\n"
	       "      --source-timeout MS  per network request (default 10000)\n"
	       "      --prefetch-window auto|N  background reads in flight: auto keeps about\n"
	       "                         the path's bandwidth-delay product of bytes; N reads\n"
	       "                         (1-64) of up to --drain-chunk pages (default auto)\n"
	       "      --share-cache MB   fetched pages kept for fork relatives, network sources\n"
	       "                         only (default 64; 0: none)\n"
	       "      --compress MODE    off|on|auto: zstd page data from the image server; auto:\n"
	       "                         while the link, not the CPU, is the limit (default auto)\n"
	       "      --fault-dscp N|off the image server's fault connection: DSCP N (0-63) and\n"
	       "                         the host's interactive priority, so a queue that honours\n"
	       "                         them lets faults pass the stream (default 18, AF21)\n"
	       "      --metrics-address ADDR:PORT  serve Prometheus metrics at /metrics (numeric\n"
	       "                         address; [V6]:PORT)\n"
	       "      --working-set MODE off|record|replay|auto: note the tasks' first touches\n"
	       "                         in lazy-workset.img beside the images (record), prefetch\n"
	       "                         a record of the same images first (replay); auto: both\n"
	       "                         (default auto)\n"
	       "      --working-set-hold MS  recording with no record yet: the background stream\n"
	       "                         waits up to MS after the restore while the tasks fault,\n"
	       "                         so that the record sees their first touches (default\n"
	       "                         0: never waits; for images restored again and again)\n"
	       "      --keeper on|off    a keeper process holds the tasks' uffds and restarts a\n"
	       "                         worker that dies, which resumes (default on)\n"
	       "      --worker-restarts N[/SECONDS]  more worker crashes than N within SECONDS\n"
	       "                         kill the tasks instead (default 5/60)\n"
	       "  -h, --help             this text\n"
	       "      --version          print the version and exit\n"
	       "\n"
	       "Usage: criu-lazyd status [-W DIR] [--json] [--watch [SECONDS]]\n"
	       "  the progress of the restore the daemon in work dir DIR serves (see\n"
	       "  `criu-lazyd status --help`)\n");
}

static int parse_uint(const char *name, const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "criu-lazyd: bad value '%s' for %s (expected %ld..%ld)\n", s, name,
			min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* -v, -vvv, -v4: as criu. */
static int parse_verbosity(const char *arg, int *level)
{
	long v;

	if (!arg) {
		(*level)++;
		return 0;
	}
	if (strspn(arg, "v") == strlen(arg)) {
		*level += 1 + (int)strlen(arg);
		return 0;
	}
	if (parse_uint("--verbosity", arg, 0, 4, &v))
		return -1;
	*level = (int)v;
	return 0;
}

enum {
	OPT_PIDFILE = 256,
	OPT_STATUS_FD,
	OPT_STATS,
	OPT_FILL,
	OPT_WINDOW,
	OPT_CHUNK,
	OPT_IMGSRV,
	OPT_IMAGE,
	OPT_KEY,
	OPT_PS,
	OPT_ADDR,
	OPT_PORT,
	OPT_RETRIES,
	OPT_TIMEOUT,
	OPT_PFWIN,
	OPT_SHARE,
	OPT_FETCH,
	OPT_TLS,
	OPT_NOTLS,
	OPT_TLSCA,
	OPT_TLSCERT,
	OPT_TLSKEY,
	OPT_TLSNAME,
	OPT_METRICS,
	OPT_VERSION,
	OPT_KEEPER,
	OPT_RESTARTS,
	OPT_COMPRESS,
	OPT_DSCP,
	OPT_WORKSET,
	OPT_WSHOLD,
	OPT_FILLTHREADS,
};

/* Remote source options go together: --image/--auth-key with --image-server, etc. */
static int check_sources(const struct lazyd_opts *o)
{
	const char *bad = NULL;

	if (o->image_server && o->page_server)
		bad = "--image-server and --page-server exclude each other";
	else if ((o->image_id || o->auth_key) && !o->image_server)
		bad = "--image and --auth-key need --image-server";
	else if ((o->tls.mode != WIRE_TLS_AUTO || o->tls.ca || o->tls.cert || o->tls.name) &&
		 !o->image_server)
		bad = "the --tls options need --image-server";
	else if (o->fetch_only && !o->image_server)
		bad = "--fetch-only needs --image-server";
	else if ((o->ps_address || o->ps_port) && !o->page_server)
		bad = "--address and --port need --page-server";
	else if (o->page_server && !o->ps_port)
		bad = "--page-server needs --port";
	struct errmsg e;
	if (!bad && !wire_tls_cfg_check(&o->tls, false, &e))
		return 0;
	fprintf(stderr, "criu-lazyd: %s\n", bad ? bad : e.msg);
	return -1;
}

/* --worker-restarts N[/SECONDS] */
static int parse_restarts(const char *arg, struct lazyd_opts *o)
{
	char n[32];
	const char *slash = strchr(arg, '/');
	size_t len = slash ? (size_t)(slash - arg) : strlen(arg);
	long v;

	if (len >= sizeof(n)) {
		fprintf(stderr, "criu-lazyd: bad --worker-restarts '%s' (N or N/SECONDS)\n", arg);
		return -1;
	}
	memcpy(n, arg, len);
	n[len] = '\0';
	if (parse_uint("--worker-restarts", n, 0, 1000, &v))
		return -1;
	o->worker_restarts = (unsigned)v;
	if (slash) {
		if (parse_uint("--worker-restarts", slash + 1, 1, 86400, &v))
			return -1;
		o->restart_window_s = (unsigned)v;
	}
	return 0;
}

static int parse_workset(const char *arg, struct lazyd_opts *o)
{
	static const char *const names[] = {"off", "record", "replay", "auto"};

	for (unsigned m = 0; m < sizeof(names) / sizeof(names[0]); m++)
		if (!strcmp(arg, names[m])) {
			o->working_set = (enum ws_mode)m;
			return 0;
		}
	fprintf(stderr, "criu-lazyd: bad --working-set '%s' (off|record|replay|auto)\n", arg);
	return -1;
}

int lazyd_parse_opts(int argc, char **argv, struct lazyd_opts *o)
{
	static const struct option longopts[] = {
	    {"images-dir", required_argument, NULL, 'D'},
	    {"work-dir", required_argument, NULL, 'W'},
	    {"log-file", required_argument, NULL, 'o'},
	    {"verbosity", optional_argument, NULL, 'v'},
	    {"daemon", no_argument, NULL, 'd'},
	    {"pidfile", required_argument, NULL, OPT_PIDFILE},
	    {"status-fd", required_argument, NULL, OPT_STATUS_FD},
	    {"stats-file", required_argument, NULL, OPT_STATS},
	    {"fill", required_argument, NULL, OPT_FILL},
	    {"fault-window", required_argument, NULL, OPT_WINDOW},
	    {"drain-chunk", required_argument, NULL, OPT_CHUNK},
	    {"fill-threads", required_argument, NULL, OPT_FILLTHREADS},
	    {"image-server", required_argument, NULL, OPT_IMGSRV},
	    {"image", required_argument, NULL, OPT_IMAGE},
	    {"auth-key", required_argument, NULL, OPT_KEY},
	    {"page-server", no_argument, NULL, OPT_PS},
	    {"address", required_argument, NULL, OPT_ADDR},
	    {"port", required_argument, NULL, OPT_PORT},
	    {"source-retries", required_argument, NULL, OPT_RETRIES},
	    {"source-timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"prefetch-window", required_argument, NULL, OPT_PFWIN},
	    {"share-cache", required_argument, NULL, OPT_SHARE},
	    {"fetch-only", no_argument, NULL, OPT_FETCH},
	    {"tls", no_argument, NULL, OPT_TLS},
	    {"no-tls", no_argument, NULL, OPT_NOTLS},
	    {"tls-ca", required_argument, NULL, OPT_TLSCA},
	    {"tls-cert", required_argument, NULL, OPT_TLSCERT},
	    {"tls-key", required_argument, NULL, OPT_TLSKEY},
	    {"tls-name", required_argument, NULL, OPT_TLSNAME},
	    {"metrics-address", required_argument, NULL, OPT_METRICS},
	    {"keeper", required_argument, NULL, OPT_KEEPER},
	    {"worker-restarts", required_argument, NULL, OPT_RESTARTS},
	    {"compress", required_argument, NULL, OPT_COMPRESS},
	    {"fault-dscp", required_argument, NULL, OPT_DSCP},
	    {"working-set", required_argument, NULL, OPT_WORKSET},
	    {"working-set-hold", required_argument, NULL, OPT_WSHOLD},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {0},
	};
	long v;
	int c;

	memset(o, 0, sizeof(*o));
	o->images_dir = ".";
	o->verbosity = 2;
	o->status_fd = -1;
	o->fill = FILL_AUTO;
	o->fault_window = 16;
	o->drain_chunk = 128;
	o->source_retries = 10;
	o->source_timeout = 10000;
	o->prefetch_window = 0; /* auto */
	o->share_cache_mb = 64;
	o->compress = LW_COMPRESS__LW_COMPRESS_AUTO;
	o->fault_dscp = WIRE_FAULT_DSCP;
	o->keeper = true;
	o->working_set = WS_AUTO;
	o->ws_hold_ms = 0;
	o->worker_restarts = 5;
	o->restart_window_s = 60;

	/* `criu-lazyd lazy-pages ...` reads like `criu lazy-pages ...`. */
	if (argc > 1 && !strcmp(argv[1], "lazy-pages")) {
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":D:W:o:v::dh", longopts, NULL)) != -1) {
		switch (c) {
		case 'D':
			o->images_dir = optarg;
			break;
		case 'W':
			o->work_dir = optarg;
			break;
		case 'o':
			o->log_file = optarg;
			break;
		case 'v':
			if (parse_verbosity(optarg, &o->verbosity))
				return -1;
			break;
		case 'd':
			o->daemon = true;
			break;
		case OPT_PIDFILE:
			o->pidfile = optarg;
			break;
		case OPT_STATUS_FD:
			if (parse_uint("--status-fd", optarg, 0, 1 << 20, &v))
				return -1;
			o->status_fd = (int)v;
			break;
		case OPT_STATS:
			o->stats_file = optarg;
			break;
		case OPT_FILL:
			if (!strcmp(optarg, "auto"))
				o->fill = FILL_AUTO;
			else if (!strcmp(optarg, "uffd"))
				o->fill = FILL_UFFD;
			else if (!strcmp(optarg, "kmod"))
				o->fill = FILL_KMOD;
			else {
				fprintf(stderr, "criu-lazyd: bad --fill '%s' (auto|uffd|kmod)\n",
					optarg);
				return -1;
			}
			break;
		case OPT_WINDOW:
			if (parse_uint("--fault-window", optarg, 1, MAX_WINDOW, &v))
				return -1;
			o->fault_window = (uint32_t)v;
			break;
		case OPT_CHUNK:
			if (parse_uint("--drain-chunk", optarg, 1, MAX_CHUNK, &v))
				return -1;
			o->drain_chunk = (uint32_t)v;
			break;
		case OPT_FILLTHREADS:
			if (parse_uint("--fill-threads", optarg, 0, FILL_POOL_MAX, &v))
				return -1;
			o->fill_threads = (uint32_t)v;
			break;
		case OPT_IMGSRV:
			o->image_server = optarg;
			break;
		case OPT_IMAGE:
			o->image_id = optarg;
			break;
		case OPT_KEY:
			o->auth_key = optarg;
			break;
		case OPT_PS:
			o->page_server = true;
			break;
		case OPT_ADDR:
			o->ps_address = optarg;
			break;
		case OPT_PORT:
			if (parse_uint("--port", optarg, 1, 65535, &v))
				return -1;
			o->ps_port = (int)v;
			break;
		case OPT_RETRIES:
			if (parse_uint("--source-retries", optarg, 0, 100, &v))
				return -1;
			o->source_retries = (uint32_t)v;
			break;
		case OPT_TIMEOUT:
			if (parse_uint("--source-timeout", optarg, 100, 600000, &v))
				return -1;
			o->source_timeout = (uint32_t)v;
			break;
		case OPT_FETCH:
			o->fetch_only = true;
			break;
		case OPT_TLS:
		case OPT_NOTLS:
			o->tls.mode = c == OPT_TLS ? WIRE_TLS_ON : WIRE_TLS_OFF;
			break;
		case OPT_TLSCA:
			o->tls.ca = optarg;
			break;
		case OPT_TLSCERT:
			o->tls.cert = optarg;
			break;
		case OPT_TLSKEY:
			o->tls.key = optarg;
			break;
		case OPT_TLSNAME:
			o->tls.name = optarg;
			break;
		case OPT_METRICS:
			o->metrics_address = optarg;
			break;
		case OPT_PFWIN:
			if (!strcmp(optarg, "auto")) {
				o->prefetch_window = 0;
				break;
			}
			if (parse_uint("--prefetch-window", optarg, 1, 64, &v))
				return -1;
			o->prefetch_window = (uint32_t)v;
			break;
		case OPT_SHARE:
			if (parse_uint("--share-cache", optarg, 0, 4096, &v))
				return -1;
			o->share_cache_mb = (uint32_t)v;
			break;
		case OPT_KEEPER:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "criu-lazyd: bad --keeper '%s' (on|off)\n", optarg);
				return -1;
			}
			o->keeper = !strcmp(optarg, "on");
			break;
		case OPT_COMPRESS:
			if (!strcmp(optarg, "off"))
				o->compress = 0;
			else if (!strcmp(optarg, "on"))
				o->compress = LW_COMPRESS__LW_COMPRESS_ON;
			else if (!strcmp(optarg, "auto"))
				o->compress = LW_COMPRESS__LW_COMPRESS_AUTO;
			else {
				fprintf(stderr, "criu-lazyd: bad --compress '%s' (off|on|auto)\n",
					optarg);
				return -1;
			}
			break;
		case OPT_DSCP:
			if (wire_qos_parse(optarg, &o->fault_dscp)) {
				fprintf(stderr, "criu-lazyd: bad --fault-dscp '%s' (off|0-63)\n",
					optarg);
				return -1;
			}
			break;
		case OPT_WORKSET:
			if (parse_workset(optarg, o))
				return -1;
			break;
		case OPT_WSHOLD:
			if (parse_uint("--working-set-hold", optarg, 0, 60000, &v))
				return -1;
			o->ws_hold_ms = (uint32_t)v;
			break;
		case OPT_RESTARTS:
			if (parse_restarts(optarg, o))
				return -1;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("criu-lazyd %s\n", CRIU_LAZY_VERSION);
			return 1;
		case ':':
			fprintf(stderr, "criu-lazyd: option '%s' needs a value\n",
				argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "criu-lazyd: unknown option '%s' (see --help)\n",
				argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "criu-lazyd: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return -1;
	}
	if (check_sources(o))
		return -1;
	if (o->page_server && !o->ps_address)
		o->ps_address = "127.0.0.1";
	if (o->verbosity > 4)
		o->verbosity = 4;
	if (!o->work_dir)
		o->work_dir = o->images_dir;
	return 0;
}

/*
 * criu-imgd: the command line, the keys, --make-sums, the daemon; then the server (server.c)
 * until a signal.
 */
#include "imgd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "handlers.h"
#include "server.h"
#include "status.h"
#include "store_cli.h"
#include "sums.h"
#include "util/daemon.h"
#include "util/log.h"

/* --make-sums: the dump-time checksum index of the -D image. 0, or -errno (logged). */
static int make_sums(struct imgd *d)
{
	struct imgd_image *img;
	struct errmsg e;
	int rc;

	if (d->cat.rootfd >= 0) {
		pr_err("--make-sums works on one image: use -D DIR");
		return -EINVAL;
	}
	rc = catalog_get(&d->cat, "default", &img, &e);
	if (rc) {
		pr_err("%s", e.msg);
		return rc;
	}
	for (size_t i = 0; i < img->set.nr_tasks && !rc; i++) {
		const struct img_task *t = &img->set.tasks[i];
		if (!t->has_mm)
			continue;
		rc = sums_write(img->dirfd, t);
		if (rc)
			pr_err("pid %d: cannot write pages-%u.img.xxh64: %s", t->pid, t->pages_id,
			       strerror(-rc));
		else
			pr_info("pid %d: pages-%u.img.xxh64 written (%lu pages)", t->pid,
				t->pages_id, (unsigned long)(t->pages_size / WIRE_PAGE));
	}
	catalog_put(&d->cat, img);
	return rc;
}

/* The keys: the readers' one always, the publishers' one with --accept-uploads, never equal.
 * 0 or -errno (logged). */
static int load_keys(struct imgd *d, const struct imgd_opts *o)
{
	struct errmsg e;
	int rc = wire_key_load(o->auth_key, &d->read_key, &e);

	if (rc) {
		pr_err("--auth-key: %s", e.msg);
		return rc;
	}
	if (!o->upload_key)
		return 0;
	rc = wire_key_load(o->upload_key, &d->upload_key, &e);
	if (rc) {
		pr_err("--upload-key: %s", e.msg);
		return rc;
	}
	if (wire_key_same(&d->read_key, &d->upload_key)) {
		pr_err("--upload-key and --auth-key hold the same key: a publisher could read and "
		       "a reader publish (make a key of its own for each)");
		return -EINVAL;
	}
	return 0;
}

static int start(struct imgd_server *srv, const struct imgd_opts *o)
{
	int rc = load_keys(&srv->d, o);

	if (!rc && o->accept_uploads)
		rc = upload_init(&srv->d);
	if (!rc)
		rc = server_start(srv);
	return rc;
}

/* Listening: say so, detach if asked, then the signals and the status fd. 0 or -errno. */
static int announce(struct imgd_server *srv, const struct imgd_opts *o)
{
	pr_msg("listening on %s port %d, key required (%s), %s, serving %s %s", o->address,
	       srv->port,
	       o->accept_uploads ? "readers --auth-key, publishers --upload-key" : "--auth-key",
	       !srv->d.tls_on ? "no TLS (loopback; --tls to force)"
	       : o->tls.cert
		   ? (o->tls.ca ? "TLS 1.3, X.509, client certificates required" : "TLS 1.3, X.509")
		   : "TLS 1.3, PSK from the keys",
	       o->store	 ? "--store"
	       : o->root ? "--root"
			 : "-D",
	       o->store	 ? o->store
	       : o->root ? o->root
			 : o->dir);
	if (o->daemon && daemon_detach("criu-imgd", o->pidfile, !o->log_file)) {
		int rc = -errno;
		pr_err("cannot daemonize: %s", strerror(-rc));
		return rc;
	}
	if (!o->daemon && o->pidfile && daemon_write_pidfile(o->pidfile, getpid()))
		pr_warn("cannot write pidfile %s: %s", o->pidfile, strerror(errno));
	int rc = server_watch_signals(srv);
	if (rc)
		return rc;
	if (o->status_fd >= 0) {
		dprintf(o->status_fd, "%d\n", srv->port);
		close(o->status_fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct imgd_opts o;
	struct imgd_server srv;
	struct errmsg e;
	int rc;

	/* A peer (or the store, for `store put|get`) that closes on us is an error, not a
	 * signal. */
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && !strcmp(argv[1], "status"))
		return status_cli(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "store"))
		return store_cli(argc - 1, argv + 1);
	rc = imgd_parse_opts(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : 1;
	server_init(&srv, &o);
	log_level = o.verbosity;
	log_set_prefix("imgd: ");
	if (log_open(o.log_file)) {
		fprintf(stderr, "criu-imgd: cannot open log file %s: %s\n", o.log_file,
			strerror(errno));
		return 1;
	}
	if (catalog_init(&srv.d.cat, &o, &e)) {
		pr_err("%s", e.msg);
		return 1;
	}
	if (o.make_sums) {
		rc = make_sums(&srv.d);
		catalog_free(&srv.d.cat);
		return rc ? 1 : 0;
	}
	rc = start(&srv, &o);
	if (!rc)
		rc = announce(&srv, &o);
	if (!rc) {
		rc = server_run(&srv);
		server_close_sessions(&srv);
		pr_msg("stopped: %lu connections, %lu refused for authentication",
		       (unsigned long)srv.d.connections, (unsigned long)srv.d.auth_failures);
	}
	catalog_free(&srv.d.cat);
	explicit_bzero(&srv.d.read_key, sizeof(srv.d.read_key));
	explicit_bzero(&srv.d.upload_key, sizeof(srv.d.upload_key));
	server_free(&srv);
	return rc ? 1 : 0;
}

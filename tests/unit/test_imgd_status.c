/*
 * criu-imgd's status snapshot (imgd/status.c) and its Prometheus text (imgd/metrics.c): a
 * server struct with real sessions (on socketpairs) and an image, counters set as the
 * server sets them; the snapshot's sums, its packed round trip, the families rendered from
 * it, the bound on per-image labels, and a session's counters folded in as it closes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imgd/metrics.h"
#include "imgd/session.h"
#include "imgd/status.h"

static struct imgd_opts opts;
static struct imgd_server srv;
static struct imgd_image img;

static struct imgd_session *add_session(enum conn_class cls, uint64_t pages, uint64_t bytes)
{
	int sv[2];
	struct imgd_session *s;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(session_new(&srv.d, sv[0], "127.0.0.1:4242", &s), 0);
	close(sv[1]);
	s->cls = cls;
	if (cls != CONN_NONE) {
		s->state = CS_READY;
		s->role = LW_ROLE__LW_ROLE_READ;
		s->counted = true;
		s->img = &img;
		img.refs++;
	}
	s->work =
	    (struct imgd_work){.requests = 3, .pages = pages, .zero_pages = 1, .bytes = bytes};
	s->next = srv.sessions;
	srv.sessions = s;
	return s;
}

static void setup(void)
{
	opts = (struct imgd_opts){.address = "127.0.0.1", .dir = "/srv/img", .max_clients = 8};
	server_init(&srv, &opts);
	srv.port = 27027;
	memset(&img, 0, sizeof(img));
	strcpy(img.id, "myjob");
	img.set.nr_tasks = 3;
	img.lazy_pages = 1000;
	img.pages_closed = 10;
	srv.d.cat.loaded = &img;
	srv.d.connections = 5;
	srv.d.results[CR_ACCEPTED] = 3;
	srv.d.results[CR_AUTH_FAILED] = 1;
	srv.d.results[CR_REFUSED_BUSY] = 1;
	srv.d.auth_failures = 2;
	srv.d.errors[LW_ERR__LW_E_AUTH] = 2;
	srv.d.checksum_failures = 1;
	srv.d.closed[CONN_BULK] = (struct imgd_work){.requests = 4, .pages = 10, .bytes = 100};
	imgd_hist_add(&srv.d.get_time[0], 0.0002);
	imgd_hist_add(&srv.d.get_time[0], 5);
	add_session(CONN_URGENT, 7, 70);
	add_session(CONN_BULK, 20, 200);
	add_session(CONN_NONE, 0, 50);
}

static void teardown(void)
{
	while (srv.sessions) {
		struct imgd_session *s = srv.sessions;
		srv.sessions = s->next;
		s->img = NULL; /* the image is the test's */
		session_free(s);
	}
}

TestSuite(imgd_status, .init = setup, .fini = teardown);

static const ImgdStatusClass *klass(const ImgdStatus *st, const char *name)
{
	for (size_t i = 0; i < st->totals->n_classes; i++)
		if (!strcmp(st->totals->classes[i]->class_, name))
			return st->totals->classes[i];
	cr_assert_fail("no class %s", name);
	return NULL;
}

Test(imgd_status, snapshot_sums_live_and_closed)
{
	ImgdStatus *st = status_build(&srv);

	cr_assert_not_null(st);
	cr_assert_str_eq(st->listen, "127.0.0.1:27027");
	cr_assert_str_eq(st->tls, "off");
	cr_assert_str_eq(st->serving, "/srv/img");
	cr_assert_eq(st->n_images, 1);
	cr_assert_str_eq(st->images[0]->id, "myjob");
	cr_assert_eq(st->images[0]->tasks, 3);
	cr_assert_eq(st->images[0]->sessions, 2);
	cr_assert_eq(st->images[0]->pages_sent, 10 + 7 + 20, "closed + live sessions on it");
	cr_assert_eq(st->n_sessions, 3);
	/* the list is newest first: the one not open yet */
	cr_assert_str_eq(st->sessions[0]->class_, "none");
	cr_assert_str_eq(st->sessions[0]->state, "hello");
	cr_assert_null(st->sessions[0]->role);
	cr_assert_null(st->sessions[0]->image);
	cr_assert_str_eq(st->sessions[2]->class_, "urgent");
	cr_assert_str_eq(st->sessions[2]->role, "read");
	cr_assert_str_eq(st->sessions[2]->image, "myjob");
	cr_assert_eq(st->sessions[2]->pages_sent, 7);
	const ImgdStatusTotals *t = st->totals;
	cr_assert_eq(t->connections, 5);
	cr_assert_eq(t->pages_sent, 7 + 20 + 10);
	cr_assert_eq(t->bytes_sent, 70 + 200 + 50 + 100);
	cr_assert_eq(t->requests, 3 * 3 + 4);
	cr_assert_eq(klass(st, "bulk")->pages_sent, 30);
	cr_assert_eq(klass(st, "bulk")->sessions, 1);
	cr_assert_eq(klass(st, "none")->sessions, 1);
	cr_assert_eq(t->auth_failures, 2);
	cr_assert_eq(t->checksum_failures, 1);
	cr_assert_str_eq(t->connections_by_result[CR_AUTH_FAILED]->name, "auth_failed");
	cr_assert_eq(t->connections_by_result[CR_AUTH_FAILED]->value, 1);
	cr_assert_eq(t->n_errors_sent, 9, "every named code, no 'other' while it is 0");
	cr_assert_str_eq(t->errors_sent[LW_ERR__LW_E_AUTH - 1]->name, "auth");
	cr_assert_eq(t->errors_sent[LW_ERR__LW_E_AUTH - 1]->value, 2);
	cr_assert_eq(t->request_seconds[0]->n_count, IMGD_HIST_N + 1);
	cr_assert_eq(t->request_seconds[0]->count[1], 1, "0.0002 s: in the 0.00025 bucket");
	cr_assert_eq(t->request_seconds[0]->count[IMGD_HIST_N], 1, "5 s: above the last");
	status_free(st);
}

Test(imgd_status, packed_reply_round_trip)
{
	size_t len;
	uint8_t *b = status_reply(&srv, "status", &len);

	cr_assert_not_null(b);
	ImgdStatus *st = imgd_status__unpack(NULL, len, b);
	cr_assert_not_null(st);
	cr_assert_eq(st->n_sessions, 3);
	cr_assert_eq(st->totals->pages_sent, 37);
	imgd_status__free_unpacked(st, NULL);
	free(b);
	cr_assert_null(status_reply(&srv, "other", &len));
	cr_assert_eq(len, 0);
}

Test(imgd_status, metrics_from_the_snapshot)
{
	struct prom_buf b;

	prom_init(&b);
	metrics_fill(&srv, &b);
	cr_assert_not(b.failed);
	const char *want[] = {
	    "criu_imgd_info{version=\"",
	    "criu_imgd_connections_total{result=\"accepted\"} 3\n",
	    "criu_imgd_connections_total{result=\"refused_busy\"} 1\n",
	    "criu_imgd_sessions{class=\"none\"} 1\n",
	    "criu_imgd_pages_sent_total{class=\"bulk\"} 30\n",
	    "criu_imgd_pages_sent_total{class=\"urgent\"} 7\n",
	    "criu_imgd_bytes_sent_total 420\n",
	    "criu_imgd_errors_total{code=\"auth\"} 2\n",
	    "criu_imgd_checksum_failures_total 1\n",
	    "criu_imgd_images_loaded 1\n",
	    "criu_imgd_image_pages_sent_total{image=\"myjob\"} 37\n",
	    "criu_imgd_request_seconds_bucket{class=\"urgent\",le=\"+Inf\"} 2\n",
	    "# TYPE criu_imgd_request_seconds histogram\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_not_null(strstr(b.s, want[i]), "no '%s' in:\n%s", want[i], b.s);
	cr_assert_null(strstr(b.s, "class=\"none\"} 0\ncriu_imgd_pages"), "none serves nothing");
	prom_free(&b);
}

Test(imgd_status, per_image_labels_are_bounded)
{
	static struct imgd_image many[METRICS_MAX_IMAGES + 1];
	struct prom_buf b;

	for (int i = 0; i <= METRICS_MAX_IMAGES; i++) {
		snprintf(many[i].id, sizeof(many[i].id), "img%d", i);
		many[i].next = i < METRICS_MAX_IMAGES ? &many[i + 1] : &img;
	}
	srv.d.cat.loaded = &many[0];
	prom_init(&b);
	metrics_fill(&srv, &b);
	cr_assert_not(b.failed);
	cr_assert_not_null(strstr(b.s, "criu_imgd_images_loaded 66\n"));
	cr_assert_null(strstr(b.s, "{image="), "no per-image series past 64 images");
	cr_assert_not_null(strstr(b.s, "criu_imgd_pages_sent_total{class=\"bulk\"} 30\n"));
	prom_free(&b);
	srv.d.cat.loaded = &img;
}

Test(imgd_status, a_closing_session_folds_into_the_sums)
{
	struct imgd_session *s = srv.sessions; /* the one not open yet */
	ImgdStatus *st;

	srv.sessions = s->next;
	session_free(s); /* never authenticated: a handshake that failed */
	cr_assert_eq(srv.d.results[CR_HANDSHAKE_FAILED], 1);
	cr_assert_eq(srv.d.closed[CONN_NONE].bytes, 50);
	s = srv.sessions; /* bulk, on the image (2 references: it stays loaded) */
	srv.sessions = s->next;
	session_free(s);
	cr_assert_eq(img.refs, 1);
	cr_assert_eq(img.pages_closed, 10 + 20);
	cr_assert_eq(srv.d.results[CR_HANDSHAKE_FAILED], 1, "an accepted one is counted once");
	st = status_build(&srv);
	cr_assert_not_null(st);
	cr_assert_eq(st->n_sessions, 1);
	cr_assert_eq(st->totals->pages_sent, 37, "nothing lost as sessions close");
	cr_assert_eq(st->totals->bytes_sent, 420);
	cr_assert_eq(st->images[0]->pages_sent, 37);
	status_free(st);
}

Test(imgd_status, socket_paths)
{
	char p[108];

	cr_assert_eq(status_socket_path("none", true, p, sizeof(p)), 0);
	cr_assert_eq(status_socket_path("/x/s.sock", true, p, sizeof(p)), 1);
	cr_assert_str_eq(p, "/x/s.sock");
	setenv("RUNTIME_DIRECTORY", "/run/criu-imgd:/run/other", 1);
	cr_assert_eq(status_socket_path(NULL, true, p, sizeof(p)), 1);
	cr_assert_str_eq(p, "/run/criu-imgd/status.sock");
	unsetenv("RUNTIME_DIRECTORY");
	cr_assert_eq(status_socket_path(NULL, false, p, sizeof(p)), 1, "the client always tries");
	cr_assert_str_eq(p, "/run/criu-imgd/status.sock");
	cr_assert_eq(status_socket_path(NULL, true, p, sizeof(p)), geteuid() == 0,
		     "the server: as root only");
	cr_assert_eq(status_socket_path("/a/very/long/path/that/does/not/fit", true, p, 8),
		     -ENAMETOOLONG);
}

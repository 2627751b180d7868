/*
 * The operators' interfaces (lazy-pages/ops/): Prometheus text, the /metrics endpoint driven
 * like the daemons drive it (its fd polled, metrics_http_run), the root-only status socket,
 * and protobuf messages as JSON. Real sockets, real libmicrohttpd; `promtool check metrics`
 * on the daemons' real output is in the integration tests.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lazy-wire.pb-c.h"
#include "ops/ctl.h"
#include "ops/metrics_http.h"
#include "ops/pb_json.h"
#include "ops/prom.h"
#include "lib/ports.h"

/* ---- prom ---- */

Test(prom, counter_gauge_histogram_text)
{
	struct prom_buf b;
	struct prom_label l[] = {{"image", "a\"b\\c\nd"}, {"task", "42"}};
	double bounds[] = {0.001, 0.01};
	uint64_t counts[] = {3, 2, 1};

	prom_init(&b);
	prom_head(&b, "lazyd_pages_total", "counter", "Pages installed.\nAll of them.");
	prom_sample(&b, "lazyd_pages_total", l, 2, 123);
	prom_head(&b, "lazyd_rate", "gauge", "A rate.");
	prom_sample(&b, "lazyd_rate", NULL, 0, 0.5);
	prom_head(&b, "lazyd_fault_seconds", "histogram", "Fault latency.");
	prom_histogram(&b, "lazyd_fault_seconds", l + 1, 1, bounds, counts, 2, 0.0125);
	cr_assert_not(b.failed);
	cr_assert_str_eq(b.s, "# HELP lazyd_pages_total Pages installed.\\nAll of them.\n"
			      "# TYPE lazyd_pages_total counter\n"
			      "lazyd_pages_total{image=\"a\\\"b\\\\c\\nd\",task=\"42\"} 123\n"
			      "# HELP lazyd_rate A rate.\n"
			      "# TYPE lazyd_rate gauge\n"
			      "lazyd_rate 0.5\n"
			      "# HELP lazyd_fault_seconds Fault latency.\n"
			      "# TYPE lazyd_fault_seconds histogram\n"
			      "lazyd_fault_seconds_bucket{task=\"42\",le=\"0.001\"} 3\n"
			      "lazyd_fault_seconds_bucket{task=\"42\",le=\"0.01\"} 5\n"
			      "lazyd_fault_seconds_bucket{task=\"42\",le=\"+Inf\"} 6\n"
			      "lazyd_fault_seconds_sum{task=\"42\"} 0.0125\n"
			      "lazyd_fault_seconds_count{task=\"42\"} 6\n");
	prom_free(&b);
}

Test(prom, bad_names_fail_the_text)
{
	struct prom_buf b;
	struct prom_label bad[] = {{"le:x", "1"}};

	cr_assert(prom_name_ok("a_b:c1", false));
	cr_assert_not(prom_name_ok("1abc", false));
	cr_assert_not(prom_name_ok("a-b", false));
	cr_assert_not(prom_name_ok("a:b", true), "no colon in label names");
	prom_init(&b);
	prom_head(&b, "bad-name", "counter", "x");
	cr_assert(b.failed);
	prom_free(&b);
	prom_init(&b);
	prom_sample(&b, "ok", bad, 1, 1);
	cr_assert(b.failed);
	prom_free(&b);
}

/* ---- metrics_http ---- */

static int fills;

static void fill(void *data, struct prom_buf *b)
{
	(void)data;
	fills++;
	prom_head(b, "test_up", "gauge", "Up.");
	prom_sample(b, "test_up", NULL, 0, 1);
}

struct http_req {
	unsigned port;
	const char *request;
	char reply[4096];
	volatile int done;
};

static void *http_client(void *p)
{
	struct http_req *r = p;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)r->port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t have = 0;

	if (fd >= 0 && !connect(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    send(fd, r->request, strlen(r->request), 0) > 0)
		for (ssize_t n;
		     (n = recv(fd, r->reply + have, sizeof(r->reply) - 1 - have, 0)) > 0;)
			have += (size_t)n;
	r->reply[have] = '\0';
	if (fd >= 0)
		close(fd);
	r->done = 1;
	return NULL;
}

/* The server turns in this thread, as in a daemon's loop, while a client asks. */
static void ask(struct metrics_http *m, struct http_req *r)
{
	pthread_t th;

	r->port = metrics_http_port(m);
	r->done = 0;
	cr_assert_eq(pthread_create(&th, NULL, http_client, r), 0);
	for (int i = 0; i < 500 && !r->done; i++) {
		struct pollfd p = {.fd = metrics_http_fd(m), .events = POLLIN};
		poll(&p, 1, 10);
		metrics_http_run(m);
	}
	pthread_join(th, NULL);
}

Test(metrics_http, get_metrics_404_405)
{
	struct metrics_http *m;
	struct errmsg e = {""};
	struct http_req r = {0};
	char addr[32];
	unsigned port = loopback_free_port();

	cr_assert_gt(port, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	cr_assert_eq(metrics_http_start(&m, NULL, addr, fill, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(metrics_http_port(m), port);
	r.request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	ask(m, &r);
	cr_assert(strstr(r.reply, " 200 "), "%s", r.reply);
	cr_assert(strstr(r.reply, "text/plain; version=0.0.4"), "%s", r.reply);
	cr_assert(strstr(r.reply, "\r\n\r\n# HELP test_up Up.\n# TYPE test_up gauge\ntest_up 1\n"),
		  "%s", r.reply);
	cr_assert_eq(fills, 1);
	cr_assert_eq(metrics_http_scrapes(m), 1);
	r.request = "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	ask(m, &r);
	cr_assert(strstr(r.reply, " 404 "), "%s", r.reply);
	r.request = "DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	ask(m, &r);
	cr_assert(strstr(r.reply, " 405 "), "%s", r.reply);
	cr_assert_eq(fills, 1, "only a GET of /metrics builds the text");
	metrics_http_stop(m);
}

Test(metrics_http, bad_addresses)
{
	struct metrics_http *m;
	struct errmsg e = {""};

	cr_assert_eq(metrics_http_start(&m, NULL, "localhost:9100", fill, NULL, &e), -EINVAL);
	cr_assert(strstr(e.msg, "numeric"), "%s", e.msg);
	cr_assert_lt(metrics_http_start(&m, NULL, "127.0.0.1:99999", fill, NULL, &e), 0);
	cr_assert_lt(metrics_http_start(&m, NULL, "nonsense", fill, NULL, &e), 0);
}

/* ---- ctl ---- */

static uint8_t *reply(void *data, const char *word, size_t *len)
{
	(void)data;
	if (strcmp(word, "status")) {
		*len = 0;
		return NULL;
	}
	*len = 5;
	return (uint8_t *)strdup("hello");
}

struct ctl_req {
	const char *path, *word;
	uint8_t *out;
	size_t len;
	int rc;
	volatile int done;
};

static void *ctl_client(void *p)
{
	struct ctl_req *r = p;
	struct errmsg e;

	r->rc = ctl_query(r->path, r->word, &r->out, &r->len, &e);
	r->done = 1;
	return NULL;
}

static void ctl_ask(int lfd, struct ctl_req *r)
{
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, ctl_client, r), 0);
	for (int i = 0; i < 500 && !r->done; i++) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		if (poll(&p, 1, 10) > 0)
			ctl_serve_one(lfd, reply, NULL);
	}
	pthread_join(th, NULL);
}

Test(ctl, status_round_trip_and_mode)
{
	char dir[] = "/tmp/test-ctl-XXXXXX", path[64];
	struct errmsg e = {""};
	struct stat st;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/status.sock", dir);
	int lfd = ctl_listen(path, &e);
	cr_assert_geq(lfd, 0, "%s", e.msg);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	cr_assert_eq(ctl_serve_one(lfd, reply, NULL), -EAGAIN, "nobody waiting");

	struct ctl_req r = {.path = path, .word = "status"};
	ctl_ask(lfd, &r);
	cr_assert_eq(r.rc, 0);
	cr_assert_eq(r.len, 5);
	cr_assert_eq(memcmp(r.out, "hello", 5), 0);
	free(r.out);
	struct ctl_req u = {.path = path, .word = "nonsense"};
	ctl_ask(lfd, &u);
	cr_assert_eq(u.rc, 0);
	cr_assert_eq(u.len, 0, "an unknown word gets an empty frame");
	free(u.out);

	/* Another user cannot even connect. */
	pid_t pid = fork();
	if (pid == 0) {
		uint8_t *out;
		size_t len;
		struct errmsg ce;
		if (setgid(65534) || setuid(65534))
			_exit(2);
		_exit(ctl_query(path, "status", &out, &len, &ce) == -EACCES ? 0 : 1);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nobody refused");

	/* A stale socket is replaced; a file that is not a socket is not. */
	close(lfd);
	lfd = ctl_listen(path, &e);
	cr_assert_geq(lfd, 0, "%s", e.msg);
	close(lfd);
	unlink(path);
	FILE *f = fopen(path, "w");
	fclose(f);
	cr_assert_eq(ctl_listen(path, &e), -EEXIST);
	unlink(path);
	rmdir(dir);
}

Test(ctl, no_daemon)
{
	uint8_t *out;
	size_t len;
	struct errmsg e = {""};

	cr_assert_eq(ctl_query("/tmp/no-such-dir-here/status.sock", "status", &out, &len, &e),
		     -ENOENT);
	cr_assert(strstr(e.msg, "no daemon"), "%s", e.msg);
}

/* ---- pb_json ---- */

Test(pb_json, fields_enums_repeated_optional)
{
	LwGet g = LW_GET__INIT;
	LwRange r1 = LW_RANGE__INIT, r2 = LW_RANGE__INIT;
	LwRange *rs[] = {&r1, &r2};
	LwError err = LW_ERROR__INIT;

	r1.pid = -1;
	r1.off = 1ull << 40;
	r1.nr_pages = 3;
	r2.pid = 7;
	g.req = 9;
	g.prio = LW_CLASS__LW_CLASS_URGENT;
	g.n_ranges = 2;
	g.ranges = rs;
	struct json_object *o = pb_to_json(&g.base);
	cr_assert_not_null(o);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	cr_assert_str_eq(s, "{\"req\":9,\"prio\":\"LW_CLASS_URGENT\",\"ranges\":[{\"pid\":-1,"
			    "\"off\":1099511627776,\"nr_pages\":3},{\"pid\":7,\"off\":0,"
			    "\"nr_pages\":0}]}");
	json_object_put(o);

	err.code = LW_ERR__LW_E_IO;
	err.text = "x";
	o = pb_to_json(&err.base);
	cr_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			 "{\"code\":\"LW_E_IO\",\"text\":\"x\"}",
			 "an optional field not set is left out");
	json_object_put(o);
	err.has_req = 1;
	err.req = 5;
	o = pb_to_json(&err.base);
	cr_assert(strstr(json_object_to_json_string(o), "\"req\""));
	json_object_put(o);
}

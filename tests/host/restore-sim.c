/*
 * restore-sim: plays criu restore's side of the lazy-pages protocol so that a
 * lazy-pages daemon (criu-lazyd, or criu lazy-pages) can be tested without
 * CRIU. For one scenario it forks the restored tasks, writes their images
 * (with crit), starts the daemon, hands it the tasks' userfaultfds over
 * lazy-pages.socket, lets the tasks run and checks every byte they see.
 *
 *   restore-sim --list
 *   restore-sim --scenario NAME --daemon PATH --dir EMPTYDIR [--seed N] [--timeout S]
 *   restore-sim --scenario NAME --daemon "criu lazy-pages" --no-stats --dir EMPTYDIR
 *   restore-sim --scenario NAME --dir EMPTYDIR --images-only   (write and decode images only)
 *
 * Every image page holds a pattern of (pid in the images, address in the images, seed), so
 * a task knows what each byte must be wherever its pages moved. Files (sim-*.h):
 *   sim-util.h      patterns, PRNG, timeouts, I/O
 *   sim-model.h     tasks, VMAs and the kind of every page; the scenario flags
 *   sim-images.h    the images: JSON for crit encode, pages-N.img, CRIU 4.2 pagemaps
 *   sim-task.h      a restored task: map, restore non-lazy pages, uffd, check memory
 *   sim-proto.h     the daemon process and the lazy-pages socket protocol
 *   sim-scenarios.h the scenarios
 * Whether the daemon drained everything is checked after it exited: from then on a page it
 * did not install reads as zeros (the registration is gone with its uffd).
 *
 * Exit status: 0 pass, 1 fail, 2 usage or setup error.
 */
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "sim-proto.h"
#include "sim-scenarios.h"

#define SETUP_MS 15000

static const struct scenario *find_scenario(const char *name)
{
	for (size_t i = 0; i < NR_SCENARIOS; i++)
		if (!strcmp(scenarios[i].name, name))
			return &scenarios[i];
	return NULL;
}

/* ---- the restored tasks ---- */

static int task_main(struct sim *s, struct sim_task *t)
{
	uint64_t deadline = now_ms() + (uint64_t)s->timeout_s * 1000;

	task_arm_timeout(s->timeout_s);
	int uffd = task_setup(s, t);
	if (uffd < 0)
		return 20;
	int c = task_read_cmd(t, deadline);
	if (c == 'R') {
		if (task_register(t, uffd) || send_byte(t->ctl, 'r'))
			return 22;
		c = read_byte(t->ctl, deadline);
	} else {
		close(uffd);
	}
	if (c == 'Q')
		return 0;
	if (c != 'G') {
		sim_log("task %d: restore went away before the go (%d)", (int)getpid(), c);
		return 21;
	}
	return s->sc->run(s, t);
}

static void close_main_ends(struct sim *s, int upto)
{
	for (int i = 0; i < upto; i++)
		if (s->task[i].ctl >= 0)
			close(s->task[i].ctl);
}

/* fork(), or with SC_PIDNS a fork into a new pid namespace (as criu restores a pidns). */
static pid_t fork_task(const struct sim *s)
{
	if (s->sc->flags & SC_PIDNS)
		return (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, NULL, NULL, 0);
	return fork();
}

static int spawn_task(struct sim *s, struct sim_task *t)
{
	int sv[2];

	if (t->zombie) {
		t->pid = t->real = fork();
		if (t->pid == 0)
			_exit(0); /* stays a zombie until the end */
		return t->pid < 0 ? -1 : 0;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	t->real = fork_task(s);
	if (t->real < 0)
		return -1;
	if (t->real == 0) {
		close(sv[0]);
		close_main_ends(s, t->idx);
		t->ctl = sv[1];
		t->pid = getpid();
		_exit(task_main(s, t));
	}
	/* The first task of a new pid namespace is its pid 1. */
	t->pid = (s->sc->flags & SC_PIDNS) ? 1 : t->real;
	close(sv[1]);
	t->ctl = sv[0];
	return 0;
}

static int spawn_tasks(struct sim *s)
{
	uint64_t deadline = now_ms() + SETUP_MS;

	for (int i = 0; i < s->ntasks; i++)
		if (spawn_task(s, &s->task[i])) {
			sim_log("cannot start task %d: %s", i, strerror(errno));
			return -1;
		}
	for (int i = 0; i < s->ntasks; i++) {
		struct sim_task *t = &s->task[i];
		if (t->zombie)
			continue;
		t->uffd = recv_fd(t->ctl, deadline);
		if (t->uffd < 0) {
			sim_log("task %d (pid %d) did not set up its memory", i, t->pid);
			return -1;
		}
	}
	return 0;
}

static void tell_tasks(struct sim *s, char c)
{
	for (int i = 0; i < s->ntasks; i++)
		if (!s->task[i].zombie && !s->task[i].reaped)
			send_byte(s->task[i].ctl, c);
}

static void close_uffds(struct sim *s)
{
	for (int i = 0; i < s->ntasks; i++)
		if (s->task[i].uffd >= 0) {
			close(s->task[i].uffd);
			s->task[i].uffd = -1;
		}
}

/* Wait for every task (and the zombie) to finish; the number of failed ones, -1 on timeout. */
static int reap_tasks(struct sim *s, uint64_t deadline)
{
	int left = s->ntasks, failed = 0;

	for (int i = 0; i < s->ntasks; i++)
		left -= s->task[i].reaped;
	while (left) {
		for (int i = 0; i < s->ntasks; i++) {
			struct sim_task *t = &s->task[i];
			if (t->reaped || waitpid(t->real, &t->status, WNOHANG) != t->real)
				continue;
			t->reaped = true;
			left--;
			if (!WIFEXITED(t->status) || WEXITSTATUS(t->status)) {
				sim_log("task %d (pid %d) failed: %s %d", i, t->pid,
					WIFEXITED(t->status) ? "exit" : "signal",
					WIFEXITED(t->status) ? WEXITSTATUS(t->status)
							     : WTERMSIG(t->status));
				failed++;
			}
		}
		if (left && !ms_left(deadline))
			return -1;
		if (left)
			usleep(5000);
	}
	return failed;
}

static void kill_tasks(struct sim *s)
{
	for (int i = 0; i < s->ntasks; i++)
		if (!s->task[i].reaped && s->task[i].real > 0)
			kill(s->task[i].real, SIGKILL);
	reap_tasks(s, now_ms() + 5000);
}

/* Every live task says 'c' ('r' registered, 'P' SC_EARLY changes done, 'D' ready for the end). */
static int wait_tasks_say(struct sim *s, char c, uint64_t deadline)
{
	for (int i = 0; i < s->ntasks; i++) {
		struct sim_task *t = &s->task[i];
		if (t->zombie)
			continue;
		if (read_byte(t->ctl, deadline) != c) {
			sim_log("task %d (pid %d) failed or hung before saying '%c'", i, t->pid, c);
			return -1;
		}
	}
	return 0;
}

/* ---- checks on the daemon's output ---- */

static bool file_contains(const char *path, const char *needle)
{
	static char buf[1 << 20];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

static int write_expect(const struct sim *s, const char *path)
{
	struct page_counts c;
	int tasks = 0, zombies = 0;

	count_pages(s, &c);
	for (int i = 0; i < s->ntasks; i++) {
		zombies += s->task[i].zombie;
		tasks += !s->task[i].zombie;
	}
	FILE *f = fopen(path, "we");
	if (!f)
		return -1;
	fprintf(f,
		"{\"tasks\": %d, \"zombies\": %d, \"lazy_pages\": %llu, \"lazy_data_pages\": %llu, "
		"\"lazy_zero_data_pages\": %llu, \"zero_pages\": %llu, \"present_pages\": %llu, "
		"\"drops_allowed\": %s}\n",
		tasks, zombies, (unsigned long long)(c.lazy + c.lazy_zero),
		(unsigned long long)c.lazy, (unsigned long long)c.lazy_zero,
		(unsigned long long)c.hole, (unsigned long long)c.present,
		(s->sc->flags & SC_DROPS) ? "true" : "false");
	return fclose(f) ? -1 : 0;
}

/*
 * The --stats-file JSON must agree with the model ($e[0], expect.json): lazy_pages are the
 * PE_LAZY pages (data, some of it all-zero), zero_pages the holes of lazy VMAs. Every lazy
 * page is installed once (on demand or prefetched, or as a zero page if its data is zero) or
 * dropped (unmapped or discarded by the task: counted with the holes dropped); at most holes
 * and zero-data pages are installed as zero pages. SIM_STATS_JQ replaces the filter.
 */
static const char *stats_filter(void)
{
	const char *f = getenv("SIM_STATS_JQ");

	if (f && *f)
		return f;
	return "$e[0] as $x | (.pages_total == $x.lazy_pages or .pages_total == $x.lazy_pages + "
	       "$x.zero_pages) and .tasks == $x.tasks and .zombies == $x.zombies and .pages_fault "
	       "+ "
	       ".pages_prefetch <= $x.lazy_pages and .pages_fault + .pages_prefetch + .pages_zero "
	       "+ "
	       ".pages_dropped >= $x.lazy_pages and .pages_zero <= $x.zero_pages + "
	       "$x.lazy_zero_data_pages and .pages_dropped <= $x.lazy_pages + $x.zero_pages and "
	       "($x.drops_allowed or .pages_dropped == 0)";
}

static int check_stats(const struct sim *s)
{
	char expect[300];

	snprintf(expect, sizeof(expect), "%s/expect.json", s->dir);
	if (write_expect(s, expect))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0)
			dup2(null, 1);
		execlp("jq", "jq", "-e", "--slurpfile", "e", expect, stats_filter(), s->statspath,
		       (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		sim_log("stats %s do not match %s (jq filter: %s)", s->statspath, expect,
			stats_filter());
		return -1;
	}
	sim_log("stats match the images");
	return 0;
}

/* ---- one scenario ---- */

static int expect_failure(struct sim *s, bool ready, const char *fail_file)
{
	const struct scenario *sc = s->sc;
	int rc = 0;

	if (ready) {
		s->sock = lazy_connect(s);
		if (s->sock >= 0 && (sc->flags & SC_HANGUP)) {
			restore_handshake(s, sc->hangup_after, false);
			close(s->sock);
			s->sock = -1;
		} else if (s->sock >= 0) {
			/* Then hang up as criu does; also when a task the daemon killed at once
			 * could not tell us it had sent its uffd (the rest is not sent then). */
			restore_handshake(s, s->ntasks, true);
			close(s->sock);
			s->sock = -1;
		}
	}
	if (!daemon_reap(s, now_ms() + (uint64_t)s->timeout_s * 1000)) {
		sim_log("FAIL: the daemon did not exit on bad input (hung)");
		rc = 1;
	} else if (daemon_exited_ok(s)) {
		sim_log("FAIL: the daemon exited 0 on bad input");
		rc = 1;
	}
	if (fail_file && !file_contains(s->logpath, fail_file) &&
	    !file_contains(s->outpath, fail_file)) {
		sim_log("FAIL: the daemon's log and output do not name %s", fail_file);
		rc = 1;
	}
	return rc;
}

/* SC_VANISH: the page data goes away under the running daemon. */
static int vanish_pages(struct sim *s)
{
	char path[400];

	for (int i = 0; i < s->ntasks; i++) {
		if (s->task[i].zombie)
			continue;
		snprintf(path, sizeof(path), "%s/pages-%u.img", s->imgdir, s->task[i].pages_id);
		if (truncate(path, 0)) {
			sim_log("truncate %s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* SC_VANISH: every task touching lost pages must have been killed, none may see zeros. */
static int vanish_verdict(struct sim *s, int failed)
{
	int rc = 0;

	if (failed < 0) {
		sim_log("FAIL: tasks hung on pages the daemon cannot read");
		return 1;
	}
	for (int i = 0; i < s->ntasks; i++) {
		const struct sim_task *t = &s->task[i];
		if (t->zombie)
			continue;
		if (!WIFSIGNALED(t->status) || WTERMSIG(t->status) != SIGKILL) {
			sim_log("FAIL: task %d (pid %d) was not killed (status 0x%x)", i, t->pid,
				t->status);
			rc = 1;
		}
	}
	if (!daemon_reap(s, now_ms() + 30000)) {
		sim_log("FAIL: the daemon did not exit after killing the tasks");
		return 1;
	}
	if (!rc && !file_contains(s->logpath, "kill"))
		sim_log("note: the daemon's log does not say 'kill'");
	return rc;
}

/* Wait until the daemon closes its end of the restore connection (we sent all). */
static int wait_daemon_hangup(struct sim *s, uint64_t deadline)
{
	char c;

	if (shutdown(s->sock, SHUT_WR))
		return -1;
	while (wait_readable(s->sock, deadline) == 1)
		if (recv(s->sock, &c, 1, 0) <= 0)
			return 0;
	sim_log("the daemon did not close the restore connection after RSTF");
	return -1;
}

/*
 * SC_INTRUDER: RSTF and hang up; once the daemon has closed the connection it is stopped,
 * the intruder connects, and the daemon goes on with its drain far from done. 1 if the
 * intruder was ours.
 */
static int restore_intruder(struct sim *s, uint64_t deadline)
{
	if (restore_handshake(s, 0, true) || wait_daemon_hangup(s, deadline) ||
	    daemon_stop(s, deadline))
		return -1;
	close(s->sock);
	s->sock = -1;
	int rc = run_intruder(s);
	kill(s->dpid, SIGCONT);
	return rc;
}

/* Hand the tasks to the daemon and let them run (SC_EARLY: RSTF once they said 'P'). */
static int restore_start(struct sim *s, uint64_t deadline)
{
	bool early = s->sc->flags & SC_EARLY;

	s->sock = lazy_connect(s);
	if (s->sock < 0 || restore_handshake(s, s->ntasks, false))
		return -1;
	/* The uffds are with the daemon: now the restorers register the lazy VMAs. */
	tell_tasks(s, 'R');
	if (wait_tasks_say(s, 'r', deadline))
		return -1;
	if (s->sc->flags & SC_INTRUDER) {
		s->intruded = restore_intruder(s, deadline);
		if (s->intruded < 0)
			return -1;
	} else if (!early && restore_handshake(s, 0, true)) {
		return -1;
	}
	close_uffds(s);
	if ((s->sc->flags & SC_VANISH) && vanish_pages(s))
		return -1;
	tell_tasks(s, 'G');
	if (early && (wait_tasks_say(s, 'P', deadline) || restore_handshake(s, 0, true)))
		return -1;
	return 0;
}

/* SC_DRAIN: as criu restore does when it is done, hang up; the daemon drains and exits. */
static int restore_drain(struct sim *s, uint64_t deadline)
{
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	if (wait_tasks_say(s, 'D', deadline))
		return -1;
	if (!daemon_reap(s, deadline)) {
		sim_log("FAIL: the daemon did not exit after the drain");
		return -1;
	}
	tell_tasks(s, 'X');
	return 0;
}

/* Normal restore: hand over, run, wait for the tasks, then for the daemon. */
static int restore_and_run(struct sim *s)
{
	uint64_t deadline = now_ms() + (uint64_t)s->timeout_s * 1000;

	if (restore_start(s, deadline))
		return 1;
	if ((s->sc->flags & SC_DRAIN) && restore_drain(s, deadline))
		return 1;
	int failed = reap_tasks(s, deadline);
	if (s->sc->flags & SC_VANISH)
		return vanish_verdict(s, failed);
	if (failed) {
		sim_log("FAIL: %s",
			failed < 0 ? "tasks hung (timeout)" : "a task saw wrong memory");
		return 1;
	}
	if (s->sock >= 0) {
		close(s->sock);
		s->sock = -1;
	}
	if (!daemon_reap(s, now_ms() + 30000)) {
		sim_log("FAIL: the daemon did not exit after the tasks");
		return 1;
	}
	return 0;
}

static int make_dirs(struct sim *s)
{
	snprintf(s->imgdir, sizeof(s->imgdir), "%s/img", s->dir);
	snprintf(s->workdir, sizeof(s->workdir), "%s/work", s->dir);
	snprintf(s->jsondir, sizeof(s->jsondir), "%s/json", s->dir);
	snprintf(s->logpath, sizeof(s->logpath), "%s/lazyd.log", s->dir);
	snprintf(s->outpath, sizeof(s->outpath), "%s/lazyd.out", s->dir);
	snprintf(s->statspath, sizeof(s->statspath), "%s/stats.json", s->dir);
	snprintf(s->pidpath, sizeof(s->pidpath), "%s/lazyd.pid", s->dir);
	snprintf(s->sockpath, sizeof(s->sockpath), "%s/work/%s", s->dir, LAZY_SOCK_NAME);
	if (s->sc->flags & SC_NO_WORKDIR) {
		/* Without -W the work dir is the images dir, as in criu. */
		snprintf(s->workdir, sizeof(s->workdir), "%s", s->imgdir);
		snprintf(s->sockpath, sizeof(s->sockpath), "%s/img/%s", s->dir, LAZY_SOCK_NAME);
	}
	if (s->sc->flags & SC_RELPATHS)
		snprintf(s->logpath, sizeof(s->logpath), "%s/%s/lazyd.log", s->dir,
			 (s->sc->flags & SC_NO_WORKDIR) ? "img" : "work");
	if (mkdir(s->imgdir, 0755) || mkdir(s->jsondir, 0755) ||
	    (strcmp(s->workdir, s->imgdir) && mkdir(s->workdir, 0755))) {
		sim_log("cannot create dirs under %s: %s", s->dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Every image we wrote must decode with crit (a check of the simulator itself). */
static int decode_images(struct sim *s)
{
	char cmd[700];

	snprintf(
	    cmd, sizeof(cmd),
	    "cd '%s' && for f in *.img; do case $f in pages-*) continue;; esac; "
	    "'%s' decode -i \"$f\" -o /dev/null || { echo \"bad image $f\" >&2; exit 1; }; done",
	    s->imgdir, s->crit);
	return system(cmd) == 0 ? 0 : -1;
}

static int run_daemon(struct sim *s, const char *fail_file)
{
	int stfd = daemon_start(s);

	if (stfd < 0) {
		sim_log("cannot start the daemon: %s", strerror(errno));
		return 2;
	}
	bool ready = daemon_wait_ready(s, stfd) == 0;
	close(stfd);
	if (s->sc->flags & SC_EXPECT_FAIL)
		return expect_failure(s, ready, fail_file);
	if (!ready) {
		sim_log("FAIL: the daemon did not get ready");
		return 1;
	}
	if ((s->sc->flags & SC_DAEMONIZE) && daemon_adopt(s))
		return 1;
	int rc = restore_and_run(s);
	if (s->sc->flags & SC_VANISH)
		return rc;
	if (!rc && !daemon_exited_ok(s)) {
		sim_log("FAIL: the daemon's exit status is not 0");
		rc = 1;
	}
	if (!rc && (s->sc->flags & SC_STATS) && !s->no_stats && check_stats(s))
		rc = 1;
	if (!rc && s->intruded > 0 && !file_contains(s->logpath, "refused")) {
		sim_log("FAIL: the daemon's log does not say it refused the intruder");
		rc = 1;
	}
	struct stat st;
	if (!rc && (s->sc->flags & SC_RELPATHS) && (stat(s->logpath, &st) || !st.st_size)) {
		sim_log("FAIL: no log at %s: criu takes a relative -o in the work dir", s->logpath);
		rc = 1;
	}
	return rc;
}

static int run_scenario(struct sim *s, bool images_only)
{
	const char *fail_file = NULL;
	int rc = 2;

	s->sc->layout(s);
	if (make_dirs(s) || spawn_tasks(s))
		goto out;
	if (write_images(s))
		goto out;
	if (images_only) {
		rc = decode_images(s) ? 1 : 0;
		goto out;
	}
	if (s->sc->corrupt && !(fail_file = s->sc->corrupt(s))) {
		sim_log("cannot damage the images");
		goto out;
	}
	rc = run_daemon(s, fail_file);
out:
	tell_tasks(s, 'Q');
	if (s->sock >= 0)
		close(s->sock);
	close_uffds(s);
	if (reap_tasks(s, now_ms() + 5000) < 0)
		kill_tasks(s);
	daemon_kill(s);
	return rc;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: restore-sim --list\n"
		"       restore-sim --scenario NAME --dir EMPTYDIR (--daemon PATH | "
		"--images-only)\n"
		"                   [--seed N] [--timeout SECONDS] [--crit PATH] [--no-stats]\n"
		"  --daemon may be a command with words, e.g. \"criu lazy-pages\"\n");
	exit(2);
}

static void list_scenarios(void)
{
	for (size_t i = 0; i < NR_SCENARIOS; i++)
		printf("%-14s %s\n", scenarios[i].name, scenarios[i].what);
	exit(0);
}

/* "PATH [WORDS...]" into daemon_argv; PATH made absolute (SC_RELPATHS starts it elsewhere). */
static void split_daemon(struct sim *s, char path[PATH_MAX])
{
	static char words[1024];
	int n = 0;

	snprintf(words, sizeof(words), "%s", s->daemon);
	for (char *save = NULL, *w = strtok_r(words, " ", &save); w && n < 7;
	     w = strtok_r(NULL, " ", &save))
		s->daemon_argv[n++] = w;
	s->daemon_argv[n] = NULL;
	if (n && strchr(s->daemon_argv[0], '/') && realpath(s->daemon_argv[0], path))
		s->daemon_argv[0] = path;
}

struct args {
	const char *name, *dir;
	bool images_only;
};

static void parse_args(int argc, char **argv, struct sim *s, struct args *a)
{
	static const struct option opts[] = {
	    {"list", no_argument, NULL, 'l'},	      {"scenario", required_argument, NULL, 's'},
	    {"daemon", required_argument, NULL, 'd'}, {"dir", required_argument, NULL, 'D'},
	    {"seed", required_argument, NULL, 'S'},   {"timeout", required_argument, NULL, 't'},
	    {"crit", required_argument, NULL, 'c'},   {"images-only", no_argument, NULL, 'i'},
	    {"no-stats", no_argument, NULL, 'n'},     {NULL, 0, NULL, 0}};
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			list_scenarios();
			break;
		case 's':
			a->name = optarg;
			break;
		case 'd':
			s->daemon = optarg;
			break;
		case 'D':
			a->dir = optarg;
			break;
		case 'S':
			s->seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			s->timeout_s = atoi(optarg);
			break;
		case 'c':
			s->crit = optarg;
			break;
		case 'i':
			a->images_only = true;
			break;
		case 'n':
			s->no_stats = true;
			break;
		default:
			usage();
		}
	}
	if (!a->name || !a->dir || (!s->daemon && !a->images_only) ||
	    strlen(a->dir) >= sizeof(s->dir))
		usage();
}

int main(int argc, char **argv)
{
	static struct sim s = {.crit = "/usr/bin/crit", .sock = -1, .dpid = -1};
	static char daemon_path[PATH_MAX];
	struct args a = {NULL, NULL, false};

	s.seed = (uint64_t)time(NULL);
	parse_args(argc, argv, &s, &a);
	s.sc = find_scenario(a.name);
	if (!s.sc) {
		fprintf(stderr, "restore-sim: no scenario '%s' (see --list)\n", a.name);
		return 2;
	}
	snprintf(s.dir, sizeof(s.dir), "%s", a.dir);
	if (s.daemon)
		split_daemon(&s, daemon_path);
	if (s.timeout_s <= 0)
		s.timeout_s = s.sc->timeout_s;
	signal(SIGPIPE, SIG_IGN);
	/* A daemon started with -d becomes our child again when its parent exits. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sim_log("scenario %s (%s), seed %llu", s.sc->name, s.sc->what, (unsigned long long)s.seed);
	return run_scenario(&s, a.images_only);
}

/*
 * restore-sim: plays criu restore's side of the lazy-pages protocol so that a
 * lazy-pages daemon (criu-lazyd, or criu lazy-pages) can be tested without
 * CRIU. For one scenario it forks the restored tasks, writes their images
 * (with crit), starts the daemon, hands it the tasks' userfaultfds over
 * lazy-pages.socket, lets the tasks run and checks every byte they see.
 *
 *   restore-sim -l|--list [-f PATTERN]
 *   restore-sim --scenario NAME --daemon PATH --dir EMPTYDIR [--seed N] [--timeout S]
 *   restore-sim --scenario NAME --daemon "criu lazy-pages" --no-stats --dir EMPTYDIR
 *   restore-sim --scenario NAME --dir EMPTYDIR --images-only   (write and decode images only)
 *   restore-sim -f PATTERN --daemon PATH --dir DIR     (every match, each in DIR/NAME)
 *
 * Every image page holds a pattern of (pid in the images, address in the images, seed), so
 * a task knows what each byte must be wherever its pages moved. The parts (sim/, a library):
 *   sim-util        patterns, PRNG, timeouts, I/O
 *   sim-model       tasks, VMAs and the kind of every page; the scenario flags
 *   sim-images      the images: JSON for crit encode, pages-N.img, CRIU 4.2 pagemaps
 *   sim-task        a restored task: map, restore non-lazy pages, uffd, check memory
 *   sim-tree        the tasks from the main process: fork, command, reap
 *   sim-proto       the daemon process and the lazy-pages socket protocol
 *   sim-stats       the daemon's --stats-file against the model
 *   sim-scenarios   the list of scenarios; their code in scen-*.c (scen.h)
 * Whether the daemon drained everything is checked after it exited: from then on a page it
 * did not install reads as zeros (the registration is gone with its uffd).
 *
 * Exit status: 0 pass, 1 fail, 2 usage or setup error.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim/scen.h"
#include "sim/sim-crash.h"
#include "sim/sim-images.h"
#include "sim/sim-proto.h"
#include "sim/sim-scenarios.h"
#include "sim/sim-stats.h"
#include "sim/sim-task.h"
#include "sim/sim-tree.h"

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

/* SC_VANISH, SC_KILLED: every task touching lost pages must have been killed, none may see
 * zeros. */
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
	struct stat st;
	if ((s->sc->flags & SC_KEEPER_DIES) && !stat(sim_mismatch_path, &st)) {
		sim_log("FAIL: a task read a wrong page before it was killed (the worker held its "
			"uffd)");
		rc = 1;
	}
	if (!rc && s->sc->must_say && !file_contains(s->logpath, s->sc->must_say)) {
		sim_log("FAIL: the daemon's log does not say why ('%s')", s->sc->must_say);
		rc = 1;
	}
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
	/* SC_CRASH: the worker dies at one point of the protocol the seed picks. */
	int cp = (s->sc->flags & SC_CRASH) ? (int)(s->seed % CP_NR) : -1;

	if (cp == CP_CONNECT)
		crash_now(s);
	s->sock = lazy_connect(s);
	if (s->sock < 0 || restore_handshake(s, s->ntasks, false))
		return -1;
	if (cp == CP_ITEMS)
		crash_now(s);
	/* The uffds are with the daemon: now the restorers register the lazy VMAs. */
	tell_tasks(s, 'R');
	if (wait_tasks_say(s, 'r', deadline))
		return -1;
	if (cp == CP_REGISTERED)
		crash_now(s);
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
	if (s->sc->flags & SC_KEEPER_DIES) {
		/*
		 * The keeper itself, once the worker has every task (its log says the restore
		 * finished): the worker holds the uffds, so no task may read a zero page; it must
		 * take them down (docs/reliability.md says what happens before that point).
		 */
		while (!file_contains(s->logpath, "restore finished") && ms_left(deadline))
			usleep(1000);
		kill(s->dpid, SIGKILL);
		sim_log("killed the daemon's keeper pid %d", (int)s->dpid);
		return 0;
	}
	if (cp == CP_RUNNING)
		crash_now(s);
	if ((s->sc->flags & SC_CRASH) && crash_start(s, s->sc->crash_first_ms, s->sc->crash_gap_ms))
		return -1;
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

/* SC_ORPHAN: the orphaned child said "ok" (every byte it read was right). */
static int orphan_verdict(struct sim *s, uint64_t deadline)
{
	char path[300], buf[8] = "";

	orphan_result_path(s, path, sizeof(path));
	while (ms_left(deadline)) {
		FILE *f = fopen(path, "re");
		if (f) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = 0;
			if (n >= 2)
				break;
		}
		usleep(2000);
	}
	if (strcmp(buf, "ok")) {
		sim_log("FAIL: the orphaned child %s",
			buf[0] ? "saw wrong memory" : "never reported");
		return 1;
	}
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
	if (s->sc->flags & (SC_VANISH | SC_KILLED))
		return vanish_verdict(s, failed);
	if (failed) {
		sim_log("FAIL: %s",
			failed < 0 ? "tasks hung (timeout)" : "a task saw wrong memory");
		return 1;
	}
	if ((s->sc->flags & SC_ORPHAN) && orphan_verdict(s, deadline))
		return 1;
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

/* SC_CRASH: the killer struck, and the daemon says it restarted a worker for it. */
static int crash_verdict(struct sim *s)
{
	int kills = crash_stop(s);
	char line[512];
	int restarts = -1;

	FILE *f = fopen(s->logpath, "re");
	while (f && fgets(line, sizeof(line), f)) {
		const char *at = strstr(line, "worker restarts ");
		if (at && strstr(line, "summary:"))
			restarts = atoi(at + strlen("worker restarts "));
	}
	if (f)
		fclose(f);
	sim_log("workers killed: %d, restarts the daemon reports: %d", kills, restarts);
	if (kills < 1 || restarts < 1) {
		sim_log("FAIL: %s", kills < 1
					? "the killer never struck (the scenario proves nothing)"
					: "no worker restart in the daemon's summary");
		return 1;
	}
	if (restarts > kills) {
		sim_log("FAIL: more restarts than kills: a worker died by itself");
		return 1;
	}
	return 0;
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
	if ((s->sc->flags & SC_CRASH) && (s->sc->flags & SC_KILLED)) {
		sim_log("workers killed: %d, the daemon had to give up", crash_stop(s));
	} else if (s->sc->flags & SC_CRASH) {
		if (s->killer > 0 && !s->dreaped)
			daemon_reap(s, now_ms() + 30000);
		int crc = crash_verdict(s);
		rc = rc ? rc : crc;
	}
	if (s->sc->flags & (SC_VANISH | SC_KILLED))
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
	snprintf(sim_mismatch_path, sizeof(sim_mismatch_path), "%s/mismatch", s->dir);
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
		"usage: restore-sim -l|--list [-f PATTERN]\n"
		"       restore-sim --scenario NAME --dir EMPTYDIR (--daemon PATH | "
		"--images-only)\n"
		"                   [--seed N] [--timeout SECONDS] [--crit PATH] [--no-stats]\n"
		"       restore-sim -f PATTERN --dir DIR (--daemon PATH | --images-only) [...]\n"
		"  -l, --list            the scenarios, a line each: the name and what it checks\n"
		"  -f, --filter PATTERN  only the scenarios whose name matches PATTERN (a shell\n"
		"                        pattern, or a part of the name): with -l, list them;\n"
		"                        else run each in DIR/NAME, one after the other, and say\n"
		"                        PASS or FAIL for each\n"
		"  --daemon may be a command with words, e.g. \"criu lazy-pages\"\n");
	exit(2);
}

/* Every scenario (those that match PATTERN, unless NULL). 0, or 2 when none matched. */
static int list_scenarios(const char *pattern)
{
	int n = 0;

	for (size_t i = 0; i < sim_nr_scenarios; i++) {
		const struct scenario *sc = &sim_scenarios[i];
		if (pattern && !scenario_matches(sc, pattern))
			continue;
		printf("%-14s %s\n", sc->name, sc->what);
		n++;
	}
	if (!n)
		fprintf(stderr, "restore-sim: no scenario matches '%s'\n", pattern);
	return n ? 0 : 2;
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
	const char *name, *dir, *filter;
	bool images_only, list;
};

static void parse_args(int argc, char **argv, struct sim *s, struct args *a)
{
	static const struct option opts[] = {{"list", no_argument, NULL, 'l'},
					     {"filter", required_argument, NULL, 'f'},
					     {"scenario", required_argument, NULL, 's'},
					     {"daemon", required_argument, NULL, 'd'},
					     {"dir", required_argument, NULL, 'D'},
					     {"seed", required_argument, NULL, 'S'},
					     {"timeout", required_argument, NULL, 't'},
					     {"crit", required_argument, NULL, 'c'},
					     {"images-only", no_argument, NULL, 'i'},
					     {"no-stats", no_argument, NULL, 'n'},
					     {NULL, 0, NULL, 0}};
	int o;

	while ((o = getopt_long(argc, argv, "lf:", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			a->list = true;
			break;
		case 'f':
			a->filter = optarg;
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
	if (optind < argc)
		usage();
	if (a->list)
		return;
	if (!a->name == !a->filter || !a->dir || (!s->daemon && !a->images_only) ||
	    strlen(a->dir) >= sizeof(s->dir))
		usage();
}

/* Scenario sc in DIR (made before). The exit status of restore-sim. */
static int run_one(struct sim *s, const struct scenario *sc, const char *dir, bool images_only)
{
	s->sc = sc;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	if (s->timeout_s <= 0)
		s->timeout_s = sc->timeout_s;
	/* A daemon started with -d becomes our child again when its parent exits. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sim_log("scenario %s (%s), seed %llu", sc->name, sc->what, (unsigned long long)s->seed);
	return run_scenario(s, images_only);
}

/* -f: scenario sc in DIR/NAME, in a child of its own (a fresh model, its own subreaper). */
static int run_in_child(struct sim *s, const struct scenario *sc, const struct args *a)
{
	char dir[sizeof(s->dir)];
	int st = 0;

	if (snprintf(dir, sizeof(dir), "%s/%s", a->dir, sc->name) >= (int)sizeof(dir) ||
	    mkdir(dir, 0755)) {
		sim_log("cannot make %s/%s: %s", a->dir, sc->name,
			errno ? strerror(errno) : "path too long");
		return 2;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(run_one(s, sc, dir, a->images_only));
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 2;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* -f: every matching scenario, one after the other; PASS or FAIL a line, then the count. */
static int run_matching(struct sim *s, const struct args *a)
{
	int pass = 0, fail = 0;

	for (size_t i = 0; i < sim_nr_scenarios; i++) {
		const struct scenario *sc = &sim_scenarios[i];
		if (!scenario_matches(sc, a->filter))
			continue;
		errno = 0;
		int rc = run_in_child(s, sc, a);
		if (rc)
			printf("FAIL %s (exit %d; seed %llu)\n", sc->name, rc,
			       (unsigned long long)s->seed);
		else
			printf("PASS %s\n", sc->name);
		fflush(stdout);
		pass += !rc;
		fail += !!rc;
	}
	if (!pass && !fail) {
		fprintf(stderr, "restore-sim: no scenario matches '%s' (see --list)\n", a->filter);
		return 2;
	}
	printf("%d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct sim s = {.crit = "/usr/bin/crit", .sock = -1, .dpid = -1};
	static char daemon_path[PATH_MAX];
	struct args a = {0};

	s.seed = (uint64_t)time(NULL);
	parse_args(argc, argv, &s, &a);
	if (a.list)
		return list_scenarios(a.filter);
	if (s.daemon)
		split_daemon(&s, daemon_path);
	signal(SIGPIPE, SIG_IGN);
	if (a.filter)
		return run_matching(&s, &a);
	const struct scenario *sc = scenario_find(a.name);
	if (!sc) {
		fprintf(stderr, "restore-sim: no scenario '%s' (see --list)\n", a.name);
		return 2;
	}
	return run_one(&s, sc, a.dir, a.images_only);
}

/* tree [-n CHILDREN] [-m MB] [-t THREADS] [-z ZOMBIES] -c CTLDIR -o RESULT
 *
 * A process tree to dump as a whole: the parent and CHILDREN children (default 3) each own MB
 * megabytes (default 2) with a distinct seed; the last child is multi-threaded: THREADS
 * (default 4) threads, each with its own region, polling and verifying on their own (and all
 * of them reading one shared region at the same time, from different offsets). After
 * restore each process reports "resumed <ns> who=..."; on CTL/verify each one checks its
 * memory (children report "check ..." and exit with the result), the parent waits for all of
 * them and reports "verify ok|FAIL". Children die with the parent (PR_SET_PDEATHSIG).
 * ZOMBIES (default 0) more children exit at once with status 40+i and are left unreaped
 * until verification, so the dump has zombies (restore sends the daemon a negative pid). */
#include "wl.h"
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static uint64_t mb = 2;
static uint64_t npages;

struct task {
	char name[32];
	uint64_t seed;
	char *mem;
	int bad;
	struct task *shared; /* threads: a region all of them check at once */
	uint64_t start;      /* page where this thread starts checking it */
};

static int check_task(struct task *t)
{
	char err[256] = "";
	uint64_t bad = check_region(t->mem, npages, t->seed, 0, npages, err, sizeof(err));
	if (bad)
		wl_report("check %s FAIL bad_pages=%llu first: %s", t->name, (unsigned long long)bad,
			  err);
	else
		wl_report("check %s ok", t->name);
	return bad != 0;
}

static void *thread_main(void *arg)
{
	struct task *t = arg;
	wait_ctl("verify");
	/* All threads read the shared region at the same time, each from its own offset, so
	 * faults on the same pages race; then each checks its own region. */
	char err[256] = "";
	struct task *sh = t->shared;
	uint64_t bad = check_region(sh->mem, npages, sh->seed, t->start, npages, err, sizeof(err));
	bad += check_region(sh->mem, npages, sh->seed, 0, t->start, err, sizeof(err));
	if (bad)
		wl_report("check %s-shared FAIL bad_pages=%llu first: %s", t->name,
			  (unsigned long long)bad, err);
	t->bad = check_task(t) || bad;
	return NULL;
}

static struct task *new_task(const char *name, uint64_t seed)
{
	struct task *t = calloc(1, sizeof(*t));
	if (!t)
		die("calloc");
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->seed = seed;
	t->mem = map_anon(npages * PAGE);
	fill_region(t->mem, npages, seed);
	return t;
}

static int child_main(int idx, int nthreads)
{
	char name[32];
	snprintf(name, sizeof(name), "child%d", idx);
	struct task *t = new_task(name, 1000 + (uint64_t)idx);
	struct task *th[64];
	pthread_t tid[64];
	struct task *shared = nthreads ? new_task("shared", 7777) : NULL;
	for (int i = 0; i < nthreads; i++) {
		snprintf(name, sizeof(name), "child%d-thread%d", idx, i);
		th[i] = new_task(name, 5000 + (uint64_t)idx * 100 + (uint64_t)i);
		th[i]->shared = shared;
		th[i]->start = npages * (uint64_t)i / (uint64_t)nthreads;
		if (pthread_create(&tid[i], NULL, thread_main, th[i]))
			die("pthread_create");
	}
	wl_report("ready-child %d", idx);
	wait_ctl("restored");
	wl_report("resumed %lld who=child%d", now_ns(), idx);
	wait_ctl("verify");
	int bad = check_task(t);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(tid[i], NULL);
		bad |= th[i]->bad;
	}
	return bad;
}

int main(int argc, char **argv)
{
	int nchild = 3, nthreads = 4, nzombie = 0, opt;
	while ((opt = getopt(argc, argv, "n:m:t:z:c:o:")) != -1) {
		switch (opt) {
		case 'n':
			nchild = atoi(optarg);
			break;
		case 'm':
			mb = strtoull(optarg, NULL, 0);
			break;
		case 't':
			nthreads = atoi(optarg);
			break;
		case 'z':
			nzombie = atoi(optarg);
			break;
		case 'c':
		case 'o':
			wl_common_opt(opt, optarg);
			break;
		default:
			fprintf(stderr, "usage: tree [-n CHILDREN] [-m MB] [-t THREADS] -c CTL -o RES\n");
			return 2;
		}
	}
	if (nchild < 1 || nchild > 32)
		nchild = 3;
	if (nthreads < 1 || nthreads > 64)
		nthreads = 4;
	if (nzombie < 0 || nzombie > 16)
		nzombie = 0;
	npages = mb * 1024 * 1024 / PAGE;

	struct task *self = new_task("parent", 999);
	pid_t kids[32];
	pid_t ppid = getpid();
	for (int i = 0; i < nchild; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != ppid)
				_exit(3);
			_exit(child_main(i, i == nchild - 1 ? nthreads : 0));
		}
	}
	pid_t zombies[16];
	for (int i = 0; i < nzombie; i++) {
		zombies[i] = fork();
		if (zombies[i] < 0)
			die("fork");
		if (zombies[i] == 0)
			_exit(40 + i);
		siginfo_t si;
		if (waitid(P_PID, (id_t)zombies[i], &si, WEXITED | WNOWAIT)) /* dead, not reaped */
			die("waitid");
	}
	/* Wait until every child (and thread) has filled its memory. */
	for (;;) {
		FILE *f = fopen(wl_result, "r");
		int n = 0;
		char line[512];
		if (f) {
			while (fgets(line, sizeof(line), f))
				n += strncmp(line, "ready-child ", 12) == 0;
			fclose(f);
		}
		if (n >= nchild)
			break;
		sleep_ms(5);
	}
	wl_report("ready %lld pages=%llu", now_ns(),
		  (unsigned long long)(npages * (uint64_t)(2 + nchild + nthreads)));

	wait_ctl("restored");
	wl_report("resumed %lld who=parent", now_ns());
	wait_ctl("verify");
	int bad = check_task(self);
	for (int i = 0; i < nchild; i++) {
		int st = 0;
		if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st)) {
			wl_report("check child%d FAIL exit status 0x%x", i, st);
			bad = 1;
		}
	}
	for (int i = 0; i < nzombie; i++) {
		int st = 0;
		if (waitpid(zombies[i], &st, 0) != zombies[i] || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 40 + i) {
			wl_report("check zombie%d FAIL status 0x%x", i, st);
			bad = 1;
		} else {
			wl_report("check zombie%d ok", i);
		}
	}
	wl_report("verify %s", bad ? "FAIL" : "ok");
	for (;;)
		sleep_ms(1000);
}

/* restore-sim: the daemon's --stats-file against the model (jq). */
#include "sim-stats.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

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

int check_stats(const struct sim *s)
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

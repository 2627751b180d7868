/*
 * img-dump DIR: print what img_set_load() makes of a CRIU images dir, as one JSON object.
 * Used by test-img-vs-crit.sh to compare our reader with `crit decode`; handy for looking
 * at a dump too. Exit 1 (message on stderr) if the images do not load.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "img/images.h"

static void dump_vmas(const struct img_task *t)
{
	size_t i;

	printf("\"vmas\":[");
	for (i = 0; i < t->nr_vmas; i++) {
		const struct img_vma *v = &t->vmas[i];

		printf("%s{\"start\":%llu,\"end\":%llu,\"prot\":%u,\"flags\":%u,\"status\":%u,"
		       "\"lazy\":%s}",
		       i ? "," : "", (unsigned long long)v->start, (unsigned long long)v->end,
		       v->prot, v->flags, v->status, v->lazy ? "true" : "false");
	}
	printf("]");
}

static void dump_extents(const struct img_task *t)
{
	size_t i;

	printf("\"extents\":[");
	for (i = 0; i < t->nr_extents; i++) {
		const struct img_extent *e = &t->extents[i];

		printf(
		    "%s{\"start\":%llu,\"end\":%llu,\"zero\":%s,\"remote\":%s,\"pages_off\":%llu}",
		    i ? "," : "", (unsigned long long)e->start, (unsigned long long)e->end,
		    e->zero ? "true" : "false", e->remote ? "true" : "false",
		    (unsigned long long)e->pages_off);
	}
	printf("]");
}

static void dump_task(const struct img_task *t)
{
	printf("{\"pid\":%d,\"ppid\":%d,\"threads\":%u,\"has_mm\":%s", t->pid, t->ppid,
	       t->nr_threads, t->has_mm ? "true" : "false");
	if (t->has_mm) {
		printf(",\"pages_id\":%u,\"pages_size\":%llu,\"lazy_pages\":%llu,"
		       "\"zero_pages\":%llu,",
		       t->pages_id, (unsigned long long)t->pages_size,
		       (unsigned long long)t->lazy_pages, (unsigned long long)t->zero_pages);
		dump_vmas(t);
		printf(",");
		dump_extents(t);
	}
	printf("}");
}

int main(int argc, char **argv)
{
	struct errmsg err;
	struct img_set set;
	size_t i;
	int dirfd;

	if (argc != 2) {
		fprintf(stderr, "usage: %s IMAGES_DIR\n", argv[0]);
		return 2;
	}
	dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		perror(argv[1]);
		return 1;
	}
	if (img_set_load(dirfd, &set, &err)) {
		fprintf(stderr, "%s: %s\n", argv[1], err.msg);
		close(dirfd);
		return 1;
	}
	printf("{\"img_version\":%u,\"tasks\":[", set.img_version);
	for (i = 0; i < set.nr_tasks; i++) {
		fputs(i ? "," : "", stdout);
		dump_task(&set.tasks[i]);
	}
	printf("]}\n");
	img_set_free(&set);
	close(dirfd);
	return 0;
}

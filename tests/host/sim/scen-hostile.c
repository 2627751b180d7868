/*
 * restore-sim scenarios, negative: damaged images, and what restore sends forged (only the
 * task itself may send its pid and a uffd).
 */
#include "scen.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "sim-images.h"

/* ---- negative tests ---- */

/* The image file name (fmt with the task's pid) and its path in the images dir. */
static const char *image_file(struct sim *s, const char *fmt, int pid, char *path, size_t len)
{
	static char name[64];

	snprintf(name, sizeof(name), fmt, pid);
	snprintf(path, len, "%s/%s", s->imgdir, name);
	return name;
}

const char *corrupt_pagemap_magic(struct sim *s)
{
	char path[400];
	const char *name = image_file(s, "pagemap-%d.img", s->task[0].pid, path, sizeof(path));

	return corrupt_magic(path) ? NULL : name;
}

const char *corrupt_mm_truncated(struct sim *s)
{
	char path[400];
	const char *name = image_file(s, "mm-%d.img", s->task[1].pid, path, sizeof(path));

	return truncate_by(path, 5) ? NULL : name;
}

const char *corrupt_pages_short(struct sim *s)
{
	char path[400];
	const char *name =
	    image_file(s, "pages-%d.img", (int)s->task[1].pages_id, path, sizeof(path));

	return truncate_by(path, 2 * (off_t)SIM_PAGE + 100) ? NULL : name;
}

const char *corrupt_pstree_magic(struct sim *s)
{
	char path[400];
	const char *name = image_file(s, "pstree.img", 0, path, sizeof(path));

	return corrupt_magic(path) ? NULL : name;
}

/* ---- what restore sends: only the task itself may send its pid and a uffd ---- */

/* SC_INTRUDER: enough memory that the drain is far from done when the intruder comes. */
void layout_intruder(struct sim *s)
{
	for (int i = 0; i < 2; i++)
		add_vma(s, add_task(s, i - 1), 0, 4096, RW, &MIX_DEFAULT, 0);
}

/* Task 0 hands over a pipe instead of its uffd. */
const char *swap_uffd_for_pipe(struct sim *s)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return NULL;
	close(p[1]);
	close(s->task[0].uffd);
	s->task[0].uffd = p[0];
	return "not a userfaultfd";
}

/* Task 0 sends task 1's pid with its own uffd. */
const char *forge_pid(struct sim *s)
{
	s->task[0].send_pid = s->task[1].pid;
	return "another process than that task";
}

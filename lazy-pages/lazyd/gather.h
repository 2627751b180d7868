/* Gathering runs into a batch or a fill job (gather.c), for the drain and the stream. */
#ifndef LAZYD_GATHER_H
#define LAZYD_GATHER_H

#include "lazyd.h"

/* A batch being gathered for one task: installed when full, and at the end; or a job for
 * the fill threads (pfill.c), gathered whole and handed over at the end. */
struct gather {
	struct pend_extent runs[FILL_JOB_MAX];
	const void *data[FILL_JOB_MAX];
	uint32_t n;
	enum fill_path path;
	bool job;
	int hold; /* a job's data: the source's token for its buffer (stream.c), or -1 */
};

/* Whether t has data pending that the background may bring. */
bool lazyd_drainable(const struct lz_task *t);
/* What a batch or a job may gather: a job is larger, so that the loop's work per job (plan,
 * settle, wake a thread) is small against the thread's (2 MB: 1.8x with two threads,
 * 512 kB: 1.6x). */
uint64_t gather_budget(const struct lazyd *d, bool job);
/* What g gathered: to the fill threads (a job), or installed here. */
void gather_flush(struct lazyd *d, struct lz_task *t, struct gather *g);
/* Add run r (its data, or NULL for a zero run); false: a job is full (r not taken). */
bool gather_add(struct lazyd *d, struct lz_task *t, struct gather *g, const struct pend_extent *r,
		const void *data);
/* The zero runs pending right after a run of data, from from (at most PF_GAP_PAGES). */
void gather_zero_after(struct lazyd *d, struct lz_task *t, struct gather *g, uint64_t from);

#endif

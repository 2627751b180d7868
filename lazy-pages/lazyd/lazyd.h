/* The daemon's state, shared by its event loop (main.c) and page server (serve.c). */
#ifndef LAZYD_LAZYD_H
#define LAZYD_LAZYD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fill/fill.h"
#include "img/images.h"
#include "lpsock.h"
#include "opts.h"
#include "source/source.h"
#include "stats.h"
#include "task.h"

/* A background read queued with the page source (its tag is the slot's index). */
struct pf_slot {
	struct lz_task *t;
	uint64_t start, src, len; /* the run as it was pending when asked for */
	bool used;
};

#define LAZYD_MAX_PREFETCH 64

struct lazyd {
	struct lazyd_opts *o;
	struct img_set img;
	struct page_source src;
	struct filler fill;
	struct lazyd_stats st;
	int epfd, listen_fd, conn_fd;
	struct ep_tag listen_tag, conn_tag;
	pid_t peer; /* the restoring criu */
	struct lps_rx rx;
	size_t received; /* pstree entries received */
	bool restore_finished;
	struct lz_task *tasks;
	struct lz_task *drain_at; /* round-robin position */
	void *buf;		  /* page data staging, o->drain_chunk pages */
	size_t buf_len;
	double next_progress;
	struct pf_slot pf[LAZYD_MAX_PREFETCH];
	unsigned pf_used;
	bool drain_blocked; /* every background read is queued: wait for the source */
	struct ep_tag src_tag;
};

/* serve.c */
struct lz_task *lazyd_add_task(struct lazyd *d, int pid, pid_t real, int uffd,
			       const struct img_task *img, const struct pending *pend,
			       const char *name);
void lazyd_task_gone(struct lazyd *d, struct lz_task *t, const char *why);
void lazyd_task_fail(struct lazyd *d, struct lz_task *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Read and handle this task's uffd messages (events now, faults queued). */
void lazyd_read_uffd(struct lazyd *d, struct lz_task *t);
/* Serve queued faults of every task. */
void lazyd_serve_faults(struct lazyd *d);
/* One background step; false when nothing is left to prefetch. */
bool lazyd_drain_step(struct lazyd *d);
bool lazyd_all_done(const struct lazyd *d);
void lazyd_free_tasks(struct lazyd *d);

/* --image-server and an images dir without images: fetch the image's metadata (fetch.c). */
int lazyd_fetch_meta(const struct lazyd_opts *o);

#endif

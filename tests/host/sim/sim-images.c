/*
 * restore-sim: writing the images of a scenario. The protobuf images are made
 * by CRIU's own encoder (crit encode) from JSON written here, so that they do
 * not depend on our image reader; pages-N.img is raw data written here.
 */
#include "sim-images.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIM_MAX_IMAGES (2 + 3 * SIM_MAX_TASKS)

static FILE *json_open(const struct sim *s, const char *name)
{
	char path[320];

	snprintf(path, sizeof(path), "%s/%s.json", s->jsondir, name);
	FILE *f = fopen(path, "we");
	if (!f)
		sim_log("cannot create %s: %s", path, strerror(errno));
	return f;
}

static int json_close(FILE *f)
{
	int bad = ferror(f);

	return (fclose(f) || bad) ? -1 : 0;
}

static int write_inventory_json(const struct sim *s)
{
	FILE *f = json_open(s, "inventory");

	if (!f)
		return -1;
	fprintf(f, "{\"magic\": \"INVENTORY\", \"entries\": [{\"img_version\": 2, "
		   "\"fdinfo_per_id\": true}]}\n");
	return json_close(f);
}

static int write_pstree_json(const struct sim *s)
{
	FILE *f = json_open(s, "pstree");

	if (!f)
		return -1;
	fprintf(f, "{\"magic\": \"PSTREE\", \"entries\": [");
	for (int i = 0; i < s->ntasks; i++) {
		const struct sim_task *t = &s->task[i];
		int ppid = t->parent < 0 ? 0 : s->task[t->parent].pid;
		fprintf(f,
			"%s\n {\"pid\": %d, \"ppid\": %d, \"pgid\": %d, \"sid\": %d, \"threads\": "
			"[%d]}",
			i ? "," : "", t->pid, ppid, s->task[0].pid, s->task[0].pid, t->pid);
	}
	fprintf(f, "]}\n");
	return json_close(f);
}

static int write_core_json(const struct sim *s, const struct sim_task *t)
{
	char name[64];

	snprintf(name, sizeof(name), "core-%d", t->pid);
	FILE *f = json_open(s, name);
	if (!f)
		return -1;
	/* task_state: TASK_ALIVE 1, TASK_DEAD 2 */
	fprintf(
	    f,
	    "{\"magic\": \"CORE\", \"entries\": [{\"mtype\": \"X86_64\", \"tc\": {\"task_state\": "
	    "%d, \"exit_code\": 0, \"personality\": 0, \"flags\": 0, \"blk_sigset\": 0, \"comm\": "
	    "\"sim-task-%d\"}}]}\n",
	    t->zombie ? 2 : 1, t->idx);
	return json_close(f);
}

static const char *prot_str(int prot)
{
	switch (prot) {
	case PROT_READ:
		return "PROT_READ";
	case PROT_READ | PROT_WRITE:
		return "PROT_READ | PROT_WRITE";
	default:
		return "PROT_READ | PROT_WRITE | PROT_EXEC";
	}
}

static int write_mm_json(const struct sim *s, const struct sim_task *t)
{
	char name[64];

	snprintf(name, sizeof(name), "mm-%d", t->pid);
	FILE *f = json_open(s, name);
	if (!f)
		return -1;
	fprintf(f, "{\"magic\": \"MM\", \"entries\": [{");
	static const char *const zero_fields[] = {
	    "mm_start_code",  "mm_end_code",  "mm_start_data", "mm_end_data",
	    "mm_start_stack", "mm_start_brk", "mm_brk",	       "mm_arg_start",
	    "mm_arg_end",     "mm_env_start", "mm_env_end",    "exe_file_id"};
	for (size_t i = 0; i < sizeof(zero_fields) / sizeof(zero_fields[0]); i++)
		fprintf(f, "%s\"%s\": 0", i ? ", " : "", zero_fields[i]);
	/* crit cannot encode an empty list: no VMA, no "vmas" at all. */
	fprintf(f, t->nvmas ? ", \"vmas\": [" : "");
	for (int i = 0; i < t->nvmas; i++) {
		const struct sim_vma *v = &t->vma[i];
		fprintf(
		    f,
		    "%s\n {\"start\": \"0x%llx\", \"end\": \"0x%llx\", \"pgoff\": 0, \"shmid\": 0, "
		    "\"prot\": \"%s\", \"flags\": \"MAP_PRIVATE | MAP_ANON\", "
		    "\"status\": \"VMA_AREA_REGULAR | VMA_ANON_PRIVATE\", \"fd\": -1}",
		    i ? "," : "", (unsigned long long)v->start, (unsigned long long)vma_end(v),
		    prot_str(v->prot));
	}
	fprintf(f, t->nvmas ? "]}]}\n" : "}]}\n");
	return json_close(f);
}

/* Pages are grouped into entries by flags; runs are also cut at pseudo-random lengths. */
static const char *entry_flags(uint8_t kind)
{
	if (kind == PK_PRESENT)
		return "PE_PRESENT";
	if (kind == PK_LAZY || kind == PK_LAZY_ZERO)
		return "PE_PRESENT | PE_LAZY";
	return NULL;
}

/*
 * The pages of a task in address order (its VMAs are sorted). Entries run on across the
 * boundary of adjacent VMAs, as CRIU's do when the pages are contiguous.
 */
struct page_cur {
	const struct sim_task *t;
	int v;
	uint64_t p;
};

static bool cur_valid(const struct page_cur *c)
{
	return c->v < c->t->nvmas;
}

static uint64_t cur_addr(const struct page_cur *c)
{
	return c->t->vma[c->v].start + c->p * SIM_PAGE;
}

static uint8_t cur_kind(const struct page_cur *c)
{
	return c->t->vma[c->v].kind[c->p];
}

static void cur_next(struct page_cur *c)
{
	if (++c->p == c->t->vma[c->v].npages) {
		c->v++;
		c->p = 0;
	}
}

/* Take one entry's worth of pages (one kind of flags, contiguous, cut at random lengths). */
static uint64_t entry_run(struct page_cur *c, struct sim_rng *r)
{
	const char *fl = entry_flags(cur_kind(c));
	uint64_t cut = 1 + rng_below(r, 300);
	uint64_t n = 1, prev = cur_addr(c);

	cur_next(c);
	while (cur_valid(c) && n < cut && cur_addr(c) == prev + SIM_PAGE &&
	       entry_flags(cur_kind(c)) == fl) {
		prev = cur_addr(c);
		cur_next(c);
		n++;
	}
	return n;
}

static int write_pagemap_json(const struct sim *s, const struct sim_task *t)
{
	struct sim_rng r = {.s = s->seed ^ 0x5eed0000ULL ^ (uint64_t)t->idx};
	char name[64];

	snprintf(name, sizeof(name), "pagemap-%d", t->pid);
	FILE *f = json_open(s, name);
	if (!f)
		return -1;
	fprintf(f, "{\"magic\": \"PAGEMAP\", \"entries\": [{\"pages_id\": %u}", t->pages_id);
	for (struct page_cur c = {.t = t}; cur_valid(&c);) {
		uint64_t addr = cur_addr(&c);
		const char *fl = entry_flags(cur_kind(&c));
		uint64_t n = entry_run(&c, &r);
		if (fl)
			fprintf(
			    f, ",\n {\"vaddr\": \"0x%llx\", \"nr_pages\": %llu, \"flags\": \"%s\"}",
			    (unsigned long long)addr, (unsigned long long)n, fl);
	}
	fprintf(f, "]}\n");
	return json_close(f);
}

/* pages-N.img: the data of every PE_PRESENT page, in address (= entry) order. */
static int write_pages_img(const struct sim *s, const struct sim_task *t)
{
	static uint64_t buf[SIM_WORDS * 256];
	char path[320];
	size_t used = 0;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/pages-%u.img", s->imgdir, t->pages_id);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		sim_log("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < t->nvmas && !rc; i++) {
		const struct sim_vma *v = &t->vma[i];
		for (uint64_t p = 0; p < v->npages && !rc; p++) {
			if (v->kind[p] == PK_HOLE)
				continue;
			expected_page(s, t, v->start + p * SIM_PAGE, (char *)buf + used);
			used += SIM_PAGE;
			if (used == sizeof(buf)) {
				rc = write_all(fd, buf, used);
				used = 0;
			}
		}
	}
	if (!rc && used)
		rc = write_all(fd, buf, used);
	if (close(fd) || rc) {
		sim_log("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static pid_t crit_start(const struct sim *s, const char *name)
{
	char in[320], out[320];

	if (snprintf(in, sizeof(in), "%s/%s.json", s->jsondir, name) >= (int)sizeof(in) ||
	    snprintf(out, sizeof(out), "%s/%s.img", s->imgdir, name) >= (int)sizeof(out)) {
		sim_log("%s/%s: path too long", s->imgdir, name);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		execl(s->crit, s->crit, "encode", "-i", in, "-o", out, (char *)NULL);
		sim_log("cannot run %s: %s", s->crit, strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		sim_log("fork: %s", strerror(errno));
	return pid;
}

/* Run 'crit encode' for every image at once and wait for all of them. */
static int crit_encode_all(const struct sim *s, char names[][64], int n)
{
	pid_t pids[SIM_MAX_IMAGES];
	int bad = 0;

	for (int i = 0; i < n; i++)
		pids[i] = crit_start(s, names[i]);
	for (int i = 0; i < n; i++) {
		int st = 0;
		if (pids[i] < 0 || waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st)) {
			sim_log("crit encode %s failed (status 0x%x)", names[i], st);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

/*
 * CRIU 4.2 and later write the page count of a pagemap entry as field 5 (uint64) and leave
 * the old field 2 at 0; crit 3.17 cannot write that, so these pagemaps are encoded here.
 */
struct pb_buf {
	uint8_t b[64];
	size_t n;
};

static void pb_varint(struct pb_buf *pb, uint64_t v)
{
	while (v >= 0x80 && pb->n < sizeof(pb->b)) {
		pb->b[pb->n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	if (pb->n < sizeof(pb->b))
		pb->b[pb->n++] = (uint8_t)v;
}

static void pb_field(struct pb_buf *pb, unsigned field, uint64_t v)
{
	pb_varint(pb, (uint64_t)field << 3); /* wire type 0: varint */
	pb_varint(pb, v);
}

static int pb_entry(FILE *f, const struct pb_buf *pb)
{
	uint32_t len = (uint32_t)pb->n;

	return fwrite(&len, sizeof(len), 1, f) == 1 && fwrite(pb->b, 1, pb->n, f) == pb->n ? 0 : -1;
}

static int write_pagemap_42(const struct sim *s, const struct sim_task *t)
{
	struct sim_rng r = {.s = s->seed ^ 0x5eed0000ULL ^ (uint64_t)t->idx};
	const uint32_t magic[2] = {0x54564319u, 0x56084025u}; /* IMG_COMMON, PAGEMAP */
	struct pb_buf pb = {.n = 0};
	char path[320];
	int rc = 0;

	snprintf(path, sizeof(path), "%s/pagemap-%d.img", s->imgdir, t->pid);
	FILE *f = fopen(path, "we");
	if (!f)
		return -1;
	pb_field(&pb, 1, t->pages_id);
	if (fwrite(magic, sizeof(magic), 1, f) != 1 || pb_entry(f, &pb))
		rc = -1;
	for (struct page_cur c = {.t = t}; cur_valid(&c) && !rc;) {
		uint64_t addr = cur_addr(&c);
		uint8_t k = cur_kind(&c);
		uint64_t n = entry_run(&c, &r);
		if (k == PK_HOLE)
			continue;
		pb.n = 0;
		pb_field(&pb, 1, addr);
		pb_field(&pb, 2, 0);			   /* compat_nr_pages */
		pb_field(&pb, 4, k == PK_PRESENT ? 4 : 6); /* PE_PRESENT [| PE_LAZY] */
		pb_field(&pb, 5, n);
		rc = pb_entry(f, &pb);
	}
	if (fclose(f) || rc) {
		sim_log("cannot write %s", path);
		return -1;
	}
	return 0;
}

static int write_task_json(const struct sim *s, const struct sim_task *t, char names[][64], int *n)
{
	bool pm42 = s->sc->flags & SC_PM42;

	snprintf(names[(*n)++], 64, "core-%d", t->pid);
	if (write_core_json(s, t))
		return -1;
	if (t->zombie)
		return 0;
	snprintf(names[(*n)++], 64, "mm-%d", t->pid);
	if (!pm42)
		snprintf(names[(*n)++], 64, "pagemap-%d", t->pid);
	if (write_mm_json(s, t) || write_pages_img(s, t))
		return -1;
	return pm42 ? write_pagemap_42(s, t) : write_pagemap_json(s, t);
}

int write_images(const struct sim *s)
{
	char names[SIM_MAX_IMAGES][64];
	int n = 0;

	snprintf(names[n++], 64, "inventory");
	snprintf(names[n++], 64, "pstree");
	if (write_inventory_json(s) || write_pstree_json(s))
		return -1;
	for (int i = 0; i < s->ntasks; i++)
		if (write_task_json(s, &s->task[i], names, &n))
			return -1;
	return crit_encode_all(s, names, n);
}

/* Negative tests: damage an image file in place. */
int corrupt_magic(const char *path)
{
	uint32_t bad = 0xdeadbeef;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	/* The second word: the image's own magic after IMG_COMMON_MAGIC. */
	int rc = pwrite(fd, &bad, sizeof(bad), 4) == sizeof(bad) ? 0 : -1;
	close(fd);
	return rc;
}

int truncate_by(const char *path, off_t cut)
{
	struct stat st;

	if (stat(path, &st) || st.st_size <= cut)
		return -1;
	return truncate(path, st.st_size - cut);
}

/*
 * Unit tests for the CRIU image reader. Fixtures are JSON files in tests/fixtures/images/,
 * encoded by `crit encode` (the host's) into a temp dir per test, and images made by native
 * CRIU suites in tests/fixtures/images/native/ (see its README.md): their crit's encoding
 * of JSON sources and real dumps, with that crit's decode of each. pages-N.img files are
 * written here with a known pattern. Run from the repo root.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "criu-images.pb-c.h"
#include "img/images.h"

#define FIXTURES "tests/fixtures/images"
#define PG IMG_PAGE_SIZE

static char dir[128];
static int dirfd_ = -1;
static struct img_set set;
static struct errmsg err;
static char decdir[PATH_MAX]; /* native fixtures: crit decodes made by their suite's crit */

/* ---- helpers ---- */

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	cr_assert_eq(rc, 0, "command failed (%d): %s", rc, cmd);
}

static const char *path(const char *name)
{
	static char p[4][512]; /* a few may be live in one call */
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-images-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dirfd_, 0);
	memset(&set, 0, sizeof(set));
	memset(&err, 0, sizeof(err));
	decdir[0] = 0;
}

static void teardown(void)
{
	img_set_free(&set);
	if (dirfd_ >= 0)
		close(dirfd_);
	if (dir[0])
		run("rm -rf '%s'", dir);
}

/* Encode every JSON file of a fixture dir into the temp dir. */
static void fixture(const char *name)
{
	char pat[PATH_MAX], base[256];
	glob_t g;
	size_t i;

	snprintf(pat, sizeof(pat), FIXTURES "/%s/*.json", name);
	cr_assert_eq(glob(pat, 0, NULL, &g), 0, "no fixture %s", pat);
	for (i = 0; i < g.gl_pathc; i++) {
		const char *b = strrchr(g.gl_pathv[i], '/') + 1;

		snprintf(base, sizeof(base), "%.*s.img", (int)(strlen(b) - 5), b);
		run("crit encode -i '%s' -o '%s'", g.gl_pathv[i], path(base));
	}
	globfree(&g);
}

/* Replace IMAGE.img by err/CASE--IMAGE.json. */
static void override(const char *kase, const char *image)
{
	char img[128];

	snprintf(img, sizeof(img), "%s.img", image);
	run("crit encode -i " FIXTURES "/err/%s--%s.json -o '%s'", kase, image, path(img));
}

static uint64_t pattern(uint32_t id, uint64_t page)
{
	return 0x5041474500000000ull | (uint64_t)id << 20 | page;
}

/* pages-ID.img: nr pages, each filled with pattern(id, index). */
static void write_pages(uint32_t id, uint64_t nr)
{
	uint64_t page[PG / 8];
	char name[64];
	FILE *f;
	uint64_t i;
	size_t j;

	snprintf(name, sizeof(name), "pages-%u.img", id);
	f = fopen(path(name), "w");
	cr_assert_not_null(f);
	for (i = 0; i < nr; i++) {
		for (j = 0; j < PG / 8; j++)
			page[j] = pattern(id, i);
		cr_assert_eq(fwrite(page, PG, 1, f), 1);
	}
	fclose(f);
}

static void pages_for(const char *name)
{
	if (!strcmp(name, "tree")) {
		write_pages(1, 4);
		write_pages(2, 4);
		write_pages(7, 1);
	} else if (!strcmp(name, "multi")) {
		write_pages(1, 15);
	} else if (!strcmp(name, "guard")) {
		write_pages(1, 11);
	}
}

static void images(const char *name)
{
	fixture(name);
	pages_for(name);
}

/*
 * A native fixture (native/VERSION/NAME): its images as that suite made them, the pages
 * files its "pages" list asks for, and its crit's decodes for crosscheck().
 */
static void native(const char *name)
{
	char list[PATH_MAX];
	unsigned int id;
	unsigned long long nr;
	FILE *f;

	run("cp " FIXTURES "/native/%s/*.img '%s'", name, dir);
	snprintf(list, sizeof(list), FIXTURES "/native/%s/pages", name);
	f = fopen(list, "r");
	cr_assert_not_null(f, "no %s", list);
	while (fscanf(f, "%u %llu", &id, &nr) == 2)
		write_pages(id, nr);
	fclose(f);
	snprintf(decdir, sizeof(decdir), FIXTURES "/native/%s/dec", name);
}

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void load_ok(void)
{
	int ret = img_set_load(dirfd_, &set, &err);

	cr_assert_eq(ret, 0, "img_set_load: %s", err.msg);
}

/* The load must fail with "FILE: offset OFF: ..." mentioning problem, leaving nothing behind. */
static void load_fails_at(const char *file, long long off, const char *problem)
{
	char want[256];
	int fds = fd_count();

	int rc = img_set_load(dirfd_, &set, &err);
	cr_assert_lt(rc, 0, "load unexpectedly succeeded");
	cr_log_info("%s", err.msg); /* shown with --verbose */
	if (off >= 0)
		snprintf(want, sizeof(want), "%s: offset %lld: ", file, off);
	else
		snprintf(want, sizeof(want), "%s: offset ", file);
	cr_assert(!strncmp(err.msg, want, strlen(want)), "message '%s' does not start with '%s'",
		  err.msg, want);
	cr_assert_not_null(strstr(err.msg, problem), "message '%s' lacks '%s'", err.msg, problem);
	cr_assert_null(set.tasks);
	cr_assert_eq(set.nr_tasks, 0);
	cr_assert_eq(fd_count(), fds, "fds leaked by a failed load");
}

static uint64_t file_size(const char *name)
{
	struct stat st;

	cr_assert_eq(stat(path(name), &st), 0);
	return st.st_size;
}

static void append(const char *name, const void *buf, size_t len)
{
	FILE *f = fopen(path(name), "a");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
}

/* Offset of entry idx (0 = first after the magic) of an image, read independently. */
static uint64_t entry_off(const char *name, uint64_t magic_len, unsigned int idx)
{
	FILE *f = fopen(path(name), "r");
	uint64_t off = magic_len;
	uint8_t b[4];

	cr_assert_not_null(f);
	while (idx--) {
		cr_assert_eq(fseek(f, off, SEEK_SET), 0);
		cr_assert_eq(fread(b, 1, 4, f), 4);
		off += 4 + (b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24);
	}
	fclose(f);
	return off;
}

/* Write an image from magics and protobuf messages (crit 3.17 cannot write every field). */
static FILE *img_create(const char *name, uint32_t magic)
{
	uint32_t m[2] = {IMG_COMMON_MAGIC, magic};
	FILE *f = fopen(path(name), "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(m, sizeof(m), 1, f), 1);
	return f;
}

static void img_put(FILE *f, const ProtobufCMessage *msg)
{
	uint32_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len + 1);

	cr_assert_not_null(buf);
	protobuf_c_message_pack(msg, buf);
	cr_assert_eq(fwrite(&len, 4, 1, f), 1);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	free(buf);
}

/* ---- the view compared with crit's: same line format as view.jq ---- */

static void view_task(const struct img_task *t, FILE *out)
{
	size_t i;

	for (i = 0; i < t->nr_vmas; i++) {
		const struct img_vma *v = &t->vmas[i];

		fprintf(out, "vma %llu %llu %u %u %u %d\n", (unsigned long long)v->start,
			(unsigned long long)v->end, v->prot, v->flags, v->status, v->lazy);
	}
	for (i = 0; i < t->nr_guards; i++)
		fprintf(out, "guard %llu %llu\n", (unsigned long long)t->guards[i].start,
			(unsigned long long)t->guards[i].end);
	fprintf(out, "pages_id %u\n", t->pages_id);
	for (i = 0; i < t->nr_extents; i++) {
		const struct img_extent *e = &t->extents[i];

		if (e->zero)
			fprintf(out, "zero %llu %llu\n", (unsigned long long)e->start,
				(unsigned long long)e->end);
		else if (e->remote)
			fprintf(out, "data %llu %llu remote\n", (unsigned long long)e->start,
				(unsigned long long)e->end);
		else
			fprintf(out, "data %llu %llu %llu\n", (unsigned long long)e->start,
				(unsigned long long)e->end, (unsigned long long)e->pages_off);
	}
	fprintf(out, "totals %llu %llu\n", (unsigned long long)t->lazy_pages,
		(unsigned long long)t->zero_pages);
}

static char *slurp(const char *name)
{
	FILE *f = fopen(path(name), "r");
	char *buf;
	long n;

	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, n, f), (size_t)n);
	fclose(f);
	return buf;
}

static void crit_decode(const char *img, const char *json)
{
	run("crit decode -i '%s' -o '%s'", path(img), path(json));
}

/* json: img decoded, by the host's crit, or by a native fixture's own crit beforehand. */
static void decoded(const char *img, const char *json)
{
	if (!decdir[0]) {
		crit_decode(img, json);
		return;
	}
	run("cp '%s/%.*s.json' '%s'", decdir, (int)(strlen(img) - 4), img, path(json));
}

/* Our view of every task against crit decode + view.jq, and pstree/inventory too. */
static void crosscheck(void)
{
	char mm[64], pm[64], *ours, *theirs;
	FILE *out;
	size_t i;

	decoded("pstree.img", "pstree.dec");
	decoded("inventory.img", "inventory.dec");
	run("jq -r '.entries[] | \"task \\(.pid) \\(.ppid) \\(.threads | length)\"' '%s' > '%s'",
	    path("pstree.dec"), path("theirs.txt"));
	run("jq -r '.entries[0] | \"version \\(.img_version)\"' '%s' >> '%s'",
	    path("inventory.dec"), path("theirs.txt"));
	for (i = 0; i < set.nr_tasks; i++) {
		int pid = set.tasks[i].pid;

		if (!set.tasks[i].has_mm)
			continue;
		snprintf(mm, sizeof(mm), "mm-%d.img", pid);
		snprintf(pm, sizeof(pm), "pagemap-%d.img", pid);
		decoded(mm, "mm.dec");
		decoded(pm, "pm.dec");
		run("echo 'mm %d' >> '%s'", pid, path("theirs.txt"));
		run("jq -n -r --slurpfile mm '%s' --slurpfile pm '%s' -f " FIXTURES
		    "/view.jq >> '%s'",
		    path("mm.dec"), path("pm.dec"), path("theirs.txt"));
	}

	out = fopen(path("ours.txt"), "w");
	cr_assert_not_null(out);
	for (i = 0; i < set.nr_tasks; i++)
		fprintf(out, "task %d %d %u\n", set.tasks[i].pid, set.tasks[i].ppid,
			set.tasks[i].nr_threads);
	fprintf(out, "version %u\n", set.img_version);
	for (i = 0; i < set.nr_tasks; i++) {
		if (!set.tasks[i].has_mm)
			continue;
		fprintf(out, "mm %d\n", set.tasks[i].pid);
		view_task(&set.tasks[i], out);
	}
	fclose(out);
	/* Numbers through jq as on crit's side: jq 1.6 rounds those above 2^53 (vsyscall). */
	run("jq -R -r 'split(\" \") | map(if test(\"^[0-9]+$\") then tonumber | tostring "
	    "else . end) | join(\" \")' '%s' > '%s'",
	    path("ours.txt"), path("ours.jq.txt"));

	ours = slurp("ours.jq.txt");
	theirs = slurp("theirs.txt");
	cr_assert(strlen(theirs) > 0);
	cr_assert_str_eq(ours, theirs, "our view differs from crit's:\n--- ours\n%s--- crit\n%s",
			 ours, theirs);
	free(ours);
	free(theirs);
}

struct ext {
	uint64_t start, end, off;
	int zero;
};

#define DATA(s, e, o)                                                                              \
	{                                                                                          \
		s, e, o, 0                                                                         \
	}
#define ZERO(s, e)                                                                                 \
	{                                                                                          \
		s, e, 0, 1                                                                         \
	}

static void check_extents(const struct img_task *t, const struct ext *want, size_t n)
{
	size_t i;

	cr_assert_eq(t->nr_extents, n, "pid %d: %zu extents, want %zu", t->pid, t->nr_extents, n);
	for (i = 0; i < n; i++) {
		const struct img_extent *e = &t->extents[i];

		cr_expect_eq(e->start, want[i].start, "extent %zu start 0x%llx", i,
			     (unsigned long long)e->start);
		cr_expect_eq(e->end, want[i].end, "extent %zu end 0x%llx", i,
			     (unsigned long long)e->end);
		cr_expect_eq(e->zero, want[i].zero, "extent %zu zero", i);
		if (!want[i].zero && !e->remote)
			cr_expect_eq(e->pages_off, want[i].off, "extent %zu pages_off 0x%llx", i,
				     (unsigned long long)e->pages_off);
	}
}

/* Every byte of each local data extent must be the page pattern at its pages_off. */
static void check_page_data(const struct img_task *t)
{
	uint64_t buf[PG / 8];
	size_t i, j;

	for (i = 0; i < t->nr_extents; i++) {
		const struct img_extent *e = &t->extents[i];
		uint64_t a;

		if (e->zero || e->remote)
			continue;
		for (a = e->start; a < e->end; a += PG) {
			uint64_t off = e->pages_off + (a - e->start);

			cr_assert_eq(pread(t->pages_fd, buf, PG, off), (ssize_t)PG);
			for (j = 0; j < PG / 8; j++)
				cr_assert_eq(buf[j], pattern(t->pages_id, off / PG));
		}
	}
}

TestSuite(images, .init = setup, .fini = teardown);

/* ---- good images ---- */

Test(images, tree)
{
	const struct img_task *t;
	int fds = fd_count(), fl;

	images("tree");
	load_ok();
	cr_assert_eq(set.img_version, 2);
	cr_assert_eq(set.dirfd, dirfd_);
	cr_assert_eq(set.nr_tasks, 4);
	cr_assert_eq(set.tasks[0].pid, 1);
	cr_assert_eq(set.tasks[1].pid, 2);
	cr_assert_eq(set.tasks[2].pid, 3);
	cr_assert_eq(set.tasks[3].pid, 4);
	cr_assert_eq(set.tasks[0].ppid, 0);
	cr_assert_eq(set.tasks[3].ppid, 1);
	cr_assert_eq(set.tasks[0].nr_threads, 2);
	cr_assert_eq(set.tasks[1].nr_threads, 1);
	cr_assert_eq(set.tasks[3].nr_threads, 3);

	/* pid 1: text (not lazy), heap (lazy, half data), stack (lazy, eager top page). */
	t = img_set_find(&set, 1);
	cr_assert_eq(t, &set.tasks[0]);
	cr_assert(t->has_mm);
	cr_assert_eq(t->nr_vmas, 3);
	cr_assert(!t->vmas[0].lazy && t->vmas[1].lazy && t->vmas[2].lazy);
	{
		const struct ext want[] = {
		    DATA(0x600000, 0x602000, PG),
		    ZERO(0x602000, 0x604000),
		    ZERO(0x7ffd0000, 0x7ffd1000),
		};
		check_extents(t, want, 3);
	}
	cr_assert_eq(t->lazy_pages, 2);
	cr_assert_eq(t->zero_pages, 3);
	cr_assert_eq(t->pages_id, 1);
	cr_assert_eq(t->pages_size, 4 * PG);
	check_page_data(t);

	t = img_set_find(&set, 2);
	{
		const struct ext want[] = {
		    ZERO(0x10000000, 0x10004000),
		    DATA(0x10004000, 0x10008000, 0),
		    ZERO(0x10008000, 0x10010000),
		};
		check_extents(t, want, 3);
	}
	cr_assert_eq(t->lazy_pages, 4);
	cr_assert_eq(t->zero_pages, 12);
	check_page_data(t);

	/* The zombie: no memory at all. */
	t = img_set_find(&set, 3);
	cr_assert_not_null(t);
	cr_assert(!t->has_mm);
	cr_assert_eq(t->nr_vmas, 0);
	cr_assert_null(t->vmas);
	cr_assert_eq(t->nr_extents, 0);
	cr_assert_null(t->extents);
	cr_assert_eq(t->pages_fd, -1);

	/* pid 4: pages_id 7; a remote PE_LAZY entry takes no room in pages-7.img. */
	t = img_set_find(&set, 4);
	cr_assert_eq(t->pages_id, 7);
	cr_assert_eq(t->nr_extents, 3);
	cr_assert(t->extents[0].remote && !t->extents[0].zero);
	cr_assert(!t->extents[1].remote);
	cr_assert_eq(t->extents[1].start, 0x20002000);
	cr_assert_eq(t->extents[1].pages_off, 0);
	cr_assert(t->extents[2].zero);
	cr_assert_eq(t->lazy_pages, 3);
	cr_assert_eq(t->zero_pages, 1);
	check_page_data(t);

	fl = fcntl(t->pages_fd, F_GETFD);
	cr_assert(fl & FD_CLOEXEC);
	cr_assert_eq(fcntl(t->pages_fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	cr_assert_null(img_set_find(&set, 99));
	cr_assert_null(img_set_find(&set, 0));

	cr_assert_eq(fd_count(), fds + 3, "one pages fd per task with mm");
	img_set_free(&set);
	cr_assert_eq(fd_count(), fds);
	cr_assert_null(set.tasks);
	cr_assert_eq(set.nr_tasks, 0);
	img_set_free(&set); /* twice is harmless */
}

static const struct ext multi_want[] = {
    ZERO(0x12000, 0x14000),
    DATA(0x14000, 0x17000, 2 * PG),
    ZERO(0x17000, 0x1e000),
    /* one entry across the A|B boundary: split */
    DATA(0x1e000, 0x20000, 5 * PG),
    DATA(0x20000, 0x22000, 7 * PG),
    ZERO(0x22000, 0x24000),
    /* two adjacent empty lazy VMAs: one zero extent each */
    ZERO(0x60000, 0x64000),
    ZERO(0x64000, 0x66000),
};

Test(images, multi_vma)
{
	static const bool lazy[] = {1, 1, 0, 0, 0, 1, 1, 0, 0, 0};
	const struct img_task *t;
	size_t i;

	images("multi");
	load_ok();
	cr_assert_eq(set.nr_tasks, 1);
	t = img_set_find(&set, 10);
	cr_assert_not_null(t);
	cr_assert_eq(t->nr_vmas, 10);
	for (i = 0; i < 10; i++)
		cr_expect_eq(t->vmas[i].lazy, lazy[i], "vma %zu [0x%llx) lazy=%d", i,
			     (unsigned long long)t->vmas[i].start, t->vmas[i].lazy);
	cr_assert_eq(t->vmas[3].flags, 0x2022); /* MAP_LOCKED kept */
	check_extents(t, multi_want, sizeof(multi_want) / sizeof(multi_want[0]));
	cr_assert_eq(t->lazy_pages, 7);
	cr_assert_eq(t->zero_pages, 17);
	cr_assert_eq(t->pages_size, 15 * PG);
	check_page_data(t);
}

Test(images, extents_sorted_aligned)
{
	size_t i, j;

	images("tree");
	load_ok();
	for (i = 0; i < set.nr_tasks; i++) {
		const struct img_task *t = &set.tasks[i];

		for (j = 0; j < t->nr_extents; j++) {
			const struct img_extent *e = &t->extents[j];

			cr_assert_eq(e->start % PG, 0);
			cr_assert_eq(e->end % PG, 0);
			cr_assert_lt(e->start, e->end);
			if (j)
				cr_assert_geq(e->start, t->extents[j - 1].end);
			if (!e->zero && !e->remote)
				cr_assert_leq(e->pages_off + (e->end - e->start), t->pages_size);
		}
	}
}

Test(images, crit_agrees_tree)
{
	images("tree");
	load_ok();
	crosscheck();
}

Test(images, crit_agrees_multi)
{
	images("multi");
	load_ok();
	crosscheck();
}

/* The crosscheck must be able to fail: a wrong view of ours is caught. */
Test(images, crit_crosscheck_detects_mismatch)
{
	char *ours, *theirs;
	FILE *out;

	images("multi");
	load_ok();
	set.tasks[0].extents[1].pages_off += PG; /* simulate an off-by-one-page bug */
	crit_decode("mm-10.img", "mm.dec");
	crit_decode("pagemap-10.img", "pm.dec");
	run("jq -n -r --slurpfile mm '%s' --slurpfile pm '%s' -f " FIXTURES "/view.jq > '%s'",
	    path("mm.dec"), path("pm.dec"), path("theirs.txt"));
	out = fopen(path("ours.txt"), "w");
	cr_assert_not_null(out);
	view_task(&set.tasks[0], out);
	fclose(out);
	ours = slurp("ours.txt");
	theirs = slurp("theirs.txt");
	cr_assert_str_neq(ours, theirs);
	free(ours);
	free(theirs);
}

/* CRIU 4.2 writes the page count in field 5 and leaves field 2 at 0. */
Test(images, nr_pages_field5)
{
	ImgPagemapHead head = IMG_PAGEMAP_HEAD__INIT;
	ImgPagemapEntry e[3] = {IMG_PAGEMAP_ENTRY__INIT, IMG_PAGEMAP_ENTRY__INIT,
				IMG_PAGEMAP_ENTRY__INIT};
	const struct img_task *t;
	FILE *f;
	int i;

	fixture("nr5");
	head.pages_id = 3;
	e[0].vaddr = 0x100000; /* 4.2 style: compat 0, nr_pages 2 */
	e[0].compat_nr_pages = 0;
	e[0].has_nr_pages = true;
	e[0].nr_pages = 2;
	e[1].vaddr = 0x104000; /* both: field 5 wins */
	e[1].compat_nr_pages = 1;
	e[1].has_nr_pages = true;
	e[1].nr_pages = 3;
	e[2].vaddr = 0x108000; /* old style, not lazy */
	e[2].compat_nr_pages = 1;
	for (i = 0; i < 3; i++) {
		e[i].has_flags = true;
		e[i].flags = IMG_PE_PRESENT | (i < 2 ? IMG_PE_LAZY : 0);
	}
	f = img_create("pagemap-20.img", IMG_PAGEMAP_MAGIC);
	img_put(f, &head.base);
	for (i = 0; i < 3; i++)
		img_put(f, &e[i].base);
	fclose(f);
	write_pages(3, 6);

	load_ok();
	t = img_set_find(&set, 20);
	{
		const struct ext want[] = {
		    DATA(0x100000, 0x102000, 0),      ZERO(0x102000, 0x104000),
		    DATA(0x104000, 0x107000, 2 * PG), ZERO(0x107000, 0x108000),
		    ZERO(0x109000, 0x110000),
		};
		check_extents(t, want, 5);
	}
	cr_assert_eq(t->lazy_pages, 5);
	cr_assert_eq(t->zero_pages, 10);
	check_page_data(t);

	/* pages-3.img must hold 6 pages (2 + 3 + 1). */
	img_set_free(&set);
	write_pages(3, 5);
	load_fails_at("pages-3.img", 5 * PG, "file too short");
}

Test(images, free_zeroed_set)
{
	img_set_free(&set);
	cr_assert_eq(set.nr_tasks, 0);
	cr_assert_null(img_set_find(&set, 1));
}

/* ---- missing files ---- */

Test(images, missing_inventory)
{
	images("multi");
	unlink(path("inventory.img"));
	load_fails_at("inventory.img", 0, "cannot open: No such file");
}

Test(images, missing_pstree)
{
	images("multi");
	unlink(path("pstree.img"));
	load_fails_at("pstree.img", 0, "cannot open: No such file");
}

Test(images, missing_mm_only)
{
	images("multi");
	unlink(path("mm-10.img"));
	load_fails_at("mm-10.img", 0, "missing, but pagemap-10.img exists");
}

Test(images, missing_pagemap_only)
{
	images("multi");
	unlink(path("pagemap-10.img"));
	load_fails_at("pagemap-10.img", 0, "missing, but mm-10.img exists");
}

Test(images, missing_pages)
{
	fixture("multi");
	load_fails_at("pages-1.img", 0, "cannot open");
}

Test(images, pages_id_without_file)
{
	images("multi");
	override("pages-id-missing", "pagemap-10");
	load_fails_at("pages-9.img", 0, "cannot open pages_id 9 of pagemap-10.img");
}

Test(images, pages_short)
{
	fixture("multi");
	write_pages(1, 14);
	load_fails_at("pages-1.img", 14 * PG, "file too short: 15 present pages");
}

/* ---- framing ---- */

static void poke32(const char *name, long off, uint32_t v)
{
	int fd = open(path(name), O_WRONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, &v, 4, off), 4);
	close(fd);
}

Test(images, bad_common_magic)
{
	images("multi");
	poke32("pstree.img", 0, 0x12345678);
	load_fails_at("pstree.img", 0, "bad magic 0x12345678, expected 0x54564319 (COMMON)");
}

Test(images, bad_image_magic)
{
	images("multi");
	poke32("mm-10.img", 4, IMG_PSTREE_MAGIC);
	load_fails_at("mm-10.img", 4, "bad magic 0x50273030, expected 0x57492820 (MM)");
}

Test(images, inventory_has_one_magic)
{
	uint32_t m = IMG_COMMON_MAGIC;

	images("multi");
	/* What crit writes: the inventory magic alone, then entries. */
	cr_assert_eq(entry_off("inventory.img", 4, 0), 4);
	poke32("inventory.img", 0, m);
	load_fails_at("inventory.img", 0, "bad magic 0x54564319, expected 0x58313116");
}

Test(images, empty_file)
{
	images("multi");
	cr_assert_eq(truncate(path("pstree.img"), 0), 0);
	load_fails_at("pstree.img", 0, "truncated magic");
}

Test(images, truncated_length)
{
	uint64_t end;

	images("multi");
	end = file_size("pagemap-10.img");
	append("pagemap-10.img", "\x01\x00", 2);
	load_fails_at("pagemap-10.img", end, "truncated entry length");
}

Test(images, truncated_message)
{
	uint64_t last;

	images("multi");
	last = entry_off("pagemap-10.img", 8, 8);
	cr_assert_eq(truncate(path("pagemap-10.img"), file_size("pagemap-10.img") - 1), 0);
	load_fails_at("pagemap-10.img", last, "truncated entry: length");
}

Test(images, entry_too_large)
{
	uint32_t len = IMG_MAX_ENTRY_SIZE + 1;
	uint64_t end;

	images("multi");
	end = file_size("pstree.img");
	append("pstree.img", &len, 4);
	load_fails_at("pstree.img", end, "exceeds the limit");
}

Test(images, bad_protobuf_pstree)
{
	uint64_t end;

	images("multi");
	end = file_size("pstree.img");
	append("pstree.img", "\x03\x00\x00\x00\xff\xff\xff", 7);
	load_fails_at("pstree.img", end, "cannot decode pstree entry");
}

Test(images, bad_protobuf_pagemap_required_field)
{
	uint64_t end;

	images("multi");
	end = file_size("pagemap-10.img");
	/* vaddr only: the required page count is missing. */
	append("pagemap-10.img", "\x02\x00\x00\x00\x08\x01", 6);
	load_fails_at("pagemap-10.img", end, "cannot decode pagemap entry");
}

Test(images, bad_protobuf_mm)
{
	images("multi");
	cr_assert_eq(truncate(path("mm-10.img"), 8), 0);
	append("mm-10.img", "\x02\x00\x00\x00\x72\x05", 6); /* vmas: length past the end */
	load_fails_at("mm-10.img", 8, "cannot decode mm entry");
}

Test(images, no_entries)
{
	images("multi");
	override("no-mm", "mm-10");
	load_fails_at("mm-10.img", 8, "no mm entry");
}

Test(images, no_pagemap_head)
{
	images("multi");
	override("no-head", "pagemap-10");
	load_fails_at("pagemap-10.img", 8, "no pagemap head");
}

Test(images, no_tasks)
{
	images("multi");
	override("no-tasks", "pstree");
	load_fails_at("pstree.img", 8, "no tasks");
}

/* ---- limits ---- */

Test(images, too_many_tasks)
{
	size_t n = (IMG_MAX_TASKS + 1) * 4;
	char *zeros = calloc(1, n);
	FILE *f;

	images("multi");
	/* 65537 empty entries: rejected before any is decoded or allocated for. */
	f = img_create("pstree.img", IMG_PSTREE_MAGIC);
	cr_assert_eq(fwrite(zeros, 1, n, f), n);
	fclose(f);
	free(zeros);
	load_fails_at("pstree.img", 8 + IMG_MAX_TASKS * 4, "too many tasks (limit 65536)");
}

Test(images, too_many_vmas)
{
	uint32_t len = (IMG_MAX_VMAS + 1) * 2;
	uint8_t *msg = malloc(len);
	uint32_t i;
	FILE *f;

	images("multi");
	for (i = 0; i < len; i += 2) {
		msg[i] = 14 << 3 | 2; /* vmas, length-delimited */
		msg[i + 1] = 0;
	}
	f = img_create("mm-10.img", IMG_MM_MAGIC);
	cr_assert_eq(fwrite(&len, 4, 1, f), 1);
	cr_assert_eq(fwrite(msg, 1, len, f), len);
	fclose(f);
	free(msg);
	load_fails_at("mm-10.img", 8, "too many vmas: 1048577");
}

Test(images, too_many_pagemap_entries)
{
	ImgPagemapHead head = IMG_PAGEMAP_HEAD__INIT;
	uint64_t start;
	FILE *f;

	images("multi");
	head.pages_id = 1;
	f = img_create("pagemap-10.img", IMG_PAGEMAP_MAGIC);
	img_put(f, &head.base);
	fclose(f);
	/* A sparse tail of 2^24 + 1 empty entries. */
	start = file_size("pagemap-10.img");
	cr_assert_eq(truncate(path("pagemap-10.img"), start + 4ull * (IMG_MAX_PAGEMAP_ENTRIES + 1)),
		     0);
	load_fails_at("pagemap-10.img", start + 4ull * IMG_MAX_PAGEMAP_ENTRIES,
		      "too many pagemap entries");
}

/* ---- bad contents ---- */

Test(images, vma_unaligned)
{
	images("multi");
	override("vma-unaligned", "mm-10");
	load_fails_at("mm-10.img", 8, "vma 1 [0x20000-0x24010): not page aligned");
}

Test(images, vma_empty)
{
	images("multi");
	override("vma-empty", "mm-10");
	load_fails_at("mm-10.img", 8, "vma 2 [0x34000-0x30000): empty or inverted");
}

Test(images, vma_overlap)
{
	images("multi");
	override("vma-overlap", "mm-10");
	load_fails_at("mm-10.img", 8, "vma 1 [0x1f000-0x24000) overlaps vma 0 [0x10000-0x20000)");
}

/* Found after sorting, whatever the order of the entries. */
Test(images, vma_overlap_unsorted)
{
	images("multi");
	override("vma-overlap-unsorted", "mm-10");
	load_fails_at("mm-10.img", 8, "vma 9 [0x1f000-0x24000) overlaps vma 0 [0x10000-0x20000)");
}

/* Pagemap cases: the message points at the offending entry (head = entry 0). */
static void pagemap_fails(const char *kase, unsigned int idx, const char *problem)
{
	images("multi");
	override(kase, "pagemap-10");
	load_fails_at("pagemap-10.img", entry_off("pagemap-10.img", 8, idx), problem);
}

Test(images, pe_unaligned)
{
	pagemap_fails("pe-unaligned", 2, "entry vaddr 0x14800 not page aligned");
}

Test(images, pe_zero_pages)
{
	pagemap_fails("pe-zero", 2, "entry 0x14000 has zero pages");
}

Test(images, pe_overflow)
{
	pagemap_fails("pe-overflow", 9, "overflows the address space");
}

Test(images, pe_unsorted)
{
	pagemap_fails("pe-unsorted", 2, "entry 0x10000 is unsorted");
}

Test(images, pe_overlap)
{
	pagemap_fails("pe-overlap", 2, "entry 0x11000 overlaps the previous entry");
}

Test(images, lazy_outside_vmas)
{
	pagemap_fails("lazy-outside", 4, "page 0x26000 is outside every VMA");
}

Test(images, lazy_runs_past_vma)
{
	pagemap_fails("lazy-gap", 4, "PE_LAZY entry 0x23000+2 pages: page 0x24000 is outside");
}

Test(images, lazy_in_nonlazy_vma)
{
	pagemap_fails("lazy-nonlazy", 5, "page 0x40000 is in a non-lazy VMA");
}

Test(images, lazy_parent)
{
	pagemap_fails("lazy-parent", 2, "parent (pre-dump) image are not supported");
}

Test(images, lazy_in_parent_old_style)
{
	pagemap_fails("lazy-inparent", 2, "not supported");
}

Test(images, duplicate_pid)
{
	images("multi");
	override("dup-pid", "pstree");
	load_fails_at("pstree.img", 0, "duplicate pid 10");
}

Test(images, pid_zero)
{
	images("multi");
	override("pid-zero", "pstree");
	load_fails_at("pstree.img", entry_off("pstree.img", 8, 1), "bad pid 0");
}

/* ---- hostile input: never crash, never leak, always a "FILE: offset N: ..." message ---- */

struct blob {
	char name[32];
	uint8_t *data;
	size_t len;
};

static void blob_read(struct blob *b, const char *name)
{
	FILE *f = fopen(path(name), "r");

	cr_assert_not_null(f);
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->len = file_size(name);
	b->data = malloc(b->len);
	cr_assert_not_null(b->data);
	cr_assert_eq(fread(b->data, 1, b->len, f), b->len);
	fclose(f);
}

static void blob_write(const struct blob *b, size_t len)
{
	FILE *f = fopen(path(b->name), "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b->data, 1, len, f), len);
	fclose(f);
}

/* Either loads, or fails with a message naming one of the images. */
static void load_any(void)
{
	int fds = fd_count();

	if (img_set_load(dirfd_, &set, &err) == 0) {
		img_set_free(&set);
	} else {
		cr_assert_not_null(strstr(err.msg, ".img: offset "), "bad message '%s'", err.msg);
		cr_assert_null(set.tasks);
	}
	cr_assert_eq(fd_count(), fds);
}

static const char *const victims[] = {"inventory.img", "pstree.img", "mm-10.img", "pagemap-10.img"};

Test(images, truncated_everywhere)
{
	size_t v, len;

	images("multi");
	for (v = 0; v < sizeof(victims) / sizeof(victims[0]); v++) {
		struct blob b;

		blob_read(&b, victims[v]);
		for (len = 0; len < b.len; len++) {
			blob_write(&b, len);
			load_any();
		}
		blob_write(&b, b.len);
		free(b.data);
	}
	load_ok();
}

Test(images, random_corruption)
{
	unsigned int seed = 12345, i, k;
	struct blob b[4];

	images("multi");
	for (k = 0; k < 4; k++)
		blob_read(&b[k], victims[k]);
	for (i = 0; i < 2000; i++) {
		struct blob *x = &b[rand_r(&seed) % 4];
		uint8_t *save = malloc(x->len);
		int flips = 1 + rand_r(&seed) % 3, j;

		cr_assert_not_null(save);
		memcpy(save, x->data, x->len);
		for (j = 0; j < flips; j++)
			x->data[rand_r(&seed) % x->len] = rand_r(&seed);
		blob_write(x, x->len);
		load_any();
		memcpy(x->data, save, x->len);
		blob_write(x, x->len);
		free(save);
	}
	for (k = 0; k < 4; k++)
		free(b[k].data);
	load_ok();
}

/* ---- any VMA order; CRIU 4.2 guard regions ---- */

/* What a sane index looks like, whatever the images: checked on every good fixture below. */
static void check_invariants(const struct img_task *t)
{
	size_t i, j, v = 0;

	for (i = 0; i < t->nr_vmas; i++) {
		cr_assert_lt(t->vmas[i].start, t->vmas[i].end);
		if (i)
			cr_assert_geq(t->vmas[i].start, t->vmas[i - 1].end, "pid %d: vma %zu",
				      t->pid, i);
	}
	for (i = 0; i < t->nr_guards; i++) {
		const struct img_guard *g = &t->guards[i];

		cr_assert_eq(g->start % PG, 0);
		cr_assert_eq(g->end % PG, 0);
		cr_assert_lt(g->start, g->end);
		if (i)
			cr_assert_geq(g->start, t->guards[i - 1].end);
		cr_assert_eq(img_task_guard(t, g->start, g->end), g);
		cr_assert_eq(img_task_guard(t, g->end - PG, g->end + PG), g);
	}
	for (i = 0; i < t->nr_extents; i++) {
		const struct img_extent *e = &t->extents[i];

		cr_assert_eq(e->start % PG, 0);
		cr_assert_eq(e->end % PG, 0);
		cr_assert_lt(e->start, e->end);
		if (i)
			cr_assert_geq(e->start, t->extents[i - 1].end);
		/* Inside one lazy VMA. */
		while (v < t->nr_vmas && t->vmas[v].end <= e->start)
			v++;
		cr_assert_lt(v, t->nr_vmas);
		cr_assert(t->vmas[v].lazy && t->vmas[v].start <= e->start &&
			      e->end <= t->vmas[v].end,
			  "pid %d: extent [0x%llx-0x%llx) not inside one lazy VMA", t->pid,
			  (unsigned long long)e->start, (unsigned long long)e->end);
		/* No guard page, by the lookup and by brute force. */
		cr_assert_null(img_task_guard(t, e->start, e->end),
			       "pid %d: extent [0x%llx-0x%llx) holds a guard page", t->pid,
			       (unsigned long long)e->start, (unsigned long long)e->end);
		for (j = 0; j < t->nr_guards; j++)
			cr_assert(e->end <= t->guards[j].start || e->start >= t->guards[j].end);
		if (!e->zero && !e->remote)
			cr_assert_leq(e->pages_off + (e->end - e->start), t->pages_size);
	}
}

static void check_all_invariants(void)
{
	size_t i;

	for (i = 0; i < set.nr_tasks; i++)
		check_invariants(&set.tasks[i]);
}

/* The guard fixture: guards after the real VMAs, as CRIU 4.2 writes them (one out of order). */
static const struct ext guard_want[] = {
    /* A: guard on its first page, data, guard, data, zero, eager page, zero, guard, zero */
    DATA(0x101000, 0x104000, 0),
    DATA(0x106000, 0x108000, 3 * PG),
    ZERO(0x108000, 0x10a000),
    ZERO(0x10b000, 0x10c000),
    ZERO(0x10d000, 0x10f000),
    /* B: the guard across A|B covers its first page */
    DATA(0x111000, 0x112000, 6 * PG),
    ZERO(0x112000, 0x114000),
    /* C is not lazy; D: a 2-page guard at its bottom, eager top; E: all guard */
    ZERO(0x132000, 0x13e000),
};

static const struct img_guard guard_guards[] = {
    {0x100000, 0x101000}, {0x104000, 0x106000}, {0x10c000, 0x10d000}, {0x10f000, 0x111000},
    {0x124000, 0x125000}, {0x130000, 0x132000}, {0x150000, 0x152000},
};

static void check_guard_fixture(void)
{
	const struct img_task *t = img_set_find(&set, 30);
	size_t i;

	cr_assert_not_null(t);
	cr_assert_eq(t->nr_vmas, 5, "guards are not VMAs");
	cr_assert(t->vmas[0].lazy && t->vmas[1].lazy && !t->vmas[2].lazy && t->vmas[3].lazy &&
		  t->vmas[4].lazy);
	cr_assert_eq(t->nr_guards, 7);
	for (i = 0; i < 7; i++) {
		cr_expect_eq(t->guards[i].start, guard_guards[i].start, "guard %zu", i);
		cr_expect_eq(t->guards[i].end, guard_guards[i].end, "guard %zu", i);
	}
	check_extents(t, guard_want, sizeof(guard_want) / sizeof(guard_want[0]));
	cr_assert_eq(t->lazy_pages, 6);
	cr_assert_eq(t->zero_pages, 19);
	check_page_data(t);
	check_all_invariants();
}

Test(images, guard_after_vmas)
{
	images("guard");
	load_ok();
	check_guard_fixture();
	crosscheck();
}

/* The same images with every vma entry in reverse order: the same index. */
Test(images, guard_vmas_reversed)
{
	ImgMmEntry *mm;
	char *buf;
	size_t i, n;
	FILE *f;
	uint32_t len;

	images("guard");
	buf = slurp("mm-30.img");
	n = file_size("mm-30.img");
	memcpy(&len, buf + 8, 4);
	cr_assert_eq(len + 12, n);
	mm = img_mm_entry__unpack(NULL, len, (uint8_t *)buf + 12);
	cr_assert_not_null(mm);
	for (i = 0; i < mm->n_vmas / 2; i++) {
		ImgVmaEntry *x = mm->vmas[i];

		mm->vmas[i] = mm->vmas[mm->n_vmas - 1 - i];
		mm->vmas[mm->n_vmas - 1 - i] = x;
	}
	f = img_create("mm-30.img", IMG_MM_MAGIC);
	img_put(f, &mm->base);
	fclose(f);
	img_mm_entry__free_unpacked(mm, NULL);
	free(buf);
	load_ok();
	check_guard_fixture();
}

/* Sorting them is all it takes: the former "unsorted" case is the multi fixture again. */
Test(images, vma_any_order)
{
	const struct img_task *t;
	size_t i;

	images("multi");
	override("vma-unsorted", "mm-10");
	load_ok();
	t = img_set_find(&set, 10);
	cr_assert_eq(t->nr_vmas, 10);
	cr_assert_eq(t->nr_guards, 0);
	cr_assert_null(t->guards);
	for (i = 1; i < t->nr_vmas; i++)
		cr_assert_lt(t->vmas[i - 1].start, t->vmas[i].start);
	check_extents(t, multi_want, sizeof(multi_want) / sizeof(multi_want[0]));
	check_page_data(t);
	check_all_invariants();
	crosscheck();
}

Test(images, guard_lookup)
{
	const struct img_task *t;

	images("guard");
	load_ok();
	t = img_set_find(&set, 30);
	cr_assert_eq(img_task_guard(t, 0, 0x100000), NULL);
	cr_assert_eq(img_task_guard(t, 0, 0x100001), &t->guards[0]);
	cr_assert_eq(img_task_guard(t, 0x101000, 0x104000), NULL);
	cr_assert_eq(img_task_guard(t, 0x103000, 0x105000), &t->guards[1]);
	cr_assert_eq(img_task_guard(t, 0x105000, 0x200000), &t->guards[1]);
	cr_assert_eq(img_task_guard(t, 0x106000, 0x200000), &t->guards[2]);
	cr_assert_eq(img_task_guard(t, 0x151000, UINT64_MAX), &t->guards[6]);
	cr_assert_eq(img_task_guard(t, 0x152000, UINT64_MAX), NULL);
}

static void guard_fails(const char *kase, const char *image, long long off, const char *problem)
{
	char img[64];

	images("guard");
	override(kase, image);
	snprintf(img, sizeof(img), "%s.img", image);
	load_fails_at(img, off, problem);
}

Test(images, guard_lazy_entry)
{
	images("guard");
	override("guard-lazy", "pagemap-30");
	load_fails_at("pagemap-30.img", entry_off("pagemap-30.img", 8, 1),
		      "PE_LAZY entry 0x101000+4 pages: page 0x104000 is in the guard region "
		      "[0x104000-0x106000)");
}

Test(images, guard_remote_lazy_entry)
{
	images("guard");
	override("guard-remote", "pagemap-30");
	load_fails_at("pagemap-30.img", entry_off("pagemap-30.img", 8, 4),
		      "PE_LAZY entry 0x10c000+1 pages: page 0x10c000 is in the guard region "
		      "[0x10c000-0x10d000)");
}

Test(images, guard_outside_vmas)
{
	guard_fails("guard-outside", "mm-30", 8,
		    "vma 12 (guard) [0x113000-0x115000): page 0x114000 is outside every VMA");
}

Test(images, guard_overlap)
{
	guard_fails("guard-overlap", "mm-30", 8,
		    "vma 12 (guard) [0x105000-0x107000) overlaps guard vma 6 [0x104000-0x106000)");
}

Test(images, guard_unaligned)
{
	guard_fails("guard-unaligned", "mm-30", 8,
		    "vma 7 (guard) [0x10c000-0x10c800): not page aligned");
}

Test(images, guard_random_corruption)
{
	static const char *const names[] = {"mm-30.img", "pagemap-30.img"};
	unsigned int seed = 4242, i, k;
	struct blob b[2];

	images("guard");
	for (k = 0; k < 2; k++)
		blob_read(&b[k], names[k]);
	for (i = 0; i < 1000; i++) {
		struct blob *x = &b[rand_r(&seed) % 2];
		uint8_t *save = malloc(x->len);

		cr_assert_not_null(save);
		memcpy(save, x->data, x->len);
		x->data[rand_r(&seed) % x->len] = rand_r(&seed);
		blob_write(x, x->len);
		if (img_set_load(dirfd_, &set, &err) == 0) {
			check_all_invariants();
			img_set_free(&set);
		} else {
			cr_assert_not_null(strstr(err.msg, ".img: offset "), "bad message '%s'",
					   err.msg);
		}
		memcpy(x->data, save, x->len);
		blob_write(x, x->len);
		free(save);
	}
	for (k = 0; k < 2; k++)
		free(b[k].data);
	load_ok();
}

/* ---- images made by native CRIU suites (tests/fixtures/images/native) ---- */

/* The guard fixture's JSON encoded by CRIU 4.2.1's crit: page counts in field 5. */
Test(images, native_421_guard)
{
	native("4.2.1/guard");
	load_ok();
	check_guard_fixture();
	crosscheck();
}

Test(images, native_411_guard)
{
	native("4.1.1/guard");
	load_ok();
	check_guard_fixture();
	crosscheck();
}

static void native_real(const char *name, size_t min_guards)
{
	size_t i, guards = 0, lazy = 0;

	native(name);
	load_ok();
	check_all_invariants();
	for (i = 0; i < set.nr_tasks; i++) {
		guards += set.tasks[i].nr_guards;
		lazy += set.tasks[i].lazy_pages;
		check_page_data(&set.tasks[i]);
	}
	cr_assert_gt(lazy, 200, "%s: %zu lazy pages", name, lazy);
	cr_assert_geq(guards, min_guards, "%s: %zu guards", name, guards);
	if (!min_guards)
		cr_assert_eq(guards, 0);
	crosscheck();
}

/* CRIU 4.2.1's dump of the guard workload: 3 threads' areas and the main region. */
Test(images, native_421_guard_real)
{
	native_real("4.2.1/guard-real", 10);
}

Test(images, native_421_memhog_real)
{
	native_real("4.2.1/memhog-real", 0);
}

Test(images, native_421_tree_real)
{
	native_real("4.2.1/tree-real", 0);
	cr_assert_eq(set.nr_tasks, 4);
}

Test(images, native_411_memhog_real)
{
	native_real("4.1.1/memhog-real", 0);
}

Test(images, native_411_tree_real)
{
	native_real("4.1.1/tree-real", 0);
	cr_assert_eq(set.nr_tasks, 4);
}

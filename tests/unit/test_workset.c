/* The working-set record (lazy-pages/img/workset.h): notes, merge, file, refusals. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/workset.h"

#define P IMG_PAGE_SIZE

static int tmpdir(char *path)
{
	strcpy(path, "/tmp/ws-test-XXXXXX");
	cr_assert_not_null(mkdtemp(path));
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	return fd;
}

static void rmdir_all(int fd, const char *path)
{
	unlinkat(fd, WS_FILE_NAME, 0);
	close(fd);
	rmdir(path);
}

Test(workset, merge_orders_by_first_touch_and_counts_restores)
{
	struct workset rec, notes;

	ws_init(&rec, 42);
	ws_init(&notes, 42);
	cr_assert_eq(ws_note(&notes, 1, 0x10000, 16, 30), 0);
	cr_assert_eq(ws_note(&notes, 1, 0x50000, 1, 10), 0);
	cr_assert_eq(ws_note(&notes, 1, 0x10000, 4, 50), 0,
		     "a second fault there: the first counts");
	cr_assert_eq(ws_note(&notes, 2, 0x9000, 2, 5), 0);
	cr_assert_eq(ws_merge(&rec, &notes), 0);
	cr_assert_eq(rec.restores, 1);
	const struct ws_task *t = ws_find(&rec, 1);
	cr_assert_not_null(t);
	cr_assert_eq(t->n, 2);
	cr_assert_eq(t->e[0].addr, 0x50000, "the earlier touch first");
	cr_assert_eq(t->e[1].addr, 0x10000);
	cr_assert_eq(t->e[1].pages, 16);
	cr_assert_eq(t->e[1].seen, 1);
	cr_assert_eq(ws_find(&rec, 2)->n, 1);

	/* A second restore: touched 0x10000 again at 70 ms, and a new page. */
	ws_free(&notes);
	ws_init(&notes, 42);
	cr_assert_eq(ws_note(&notes, 1, 0x10000, 32, 70), 0);
	cr_assert_eq(ws_note(&notes, 1, 0x800000, 1, 0), 0);
	cr_assert_eq(ws_merge(&rec, &notes), 0);
	t = ws_find(&rec, 1);
	cr_assert_eq(rec.restores, 2);
	cr_assert_eq(t->n, 3);
	cr_assert_eq(t->e[0].addr, 0x10000, "touched by both restores: first");
	cr_assert_eq(t->e[0].seen, 2);
	cr_assert_eq(t->e[0].t_ms, 30, "the record's time, not the later restore's");
	cr_assert_eq(t->e[0].pages, 32, "the larger window");
	cr_assert_eq(t->e[1].addr, 0x800000, "then by time: the new page at 0 ms");
	cr_assert_eq(t->e[2].addr, 0x50000, "kept though not touched, after those that were");
	cr_assert_eq(t->e[2].seen, 1);
	ws_free(&rec);
	ws_free(&notes);
}

/* A task that reads a region in order, overtaking the stream here and there. */
static void trail(struct workset *w, int32_t pid, uint64_t from, uint32_t n, uint32_t step,
		  uint32_t t0)
{
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(ws_note(w, pid, from + (uint64_t)i * step * P, 16, t0 + 2 * i), 0);
}

Test(workset, merge_joins_regions_read_in_order_and_drops_what_they_cover)
{
	struct workset rec, notes;
	const uint32_t wide = 16 + WS_JOIN_PAGES + 1; /* a gap one page too wide */

	ws_init(&rec, 7);
	ws_init(&notes, 7);
	/* Two readers at once (times interleave), a far touch among them, a trail one entry
	 * too short, and one whose gaps are one page too wide. */
	trail(&notes, 1, 0x10000000, 100, 100, 0);
	trail(&notes, 1, 0x20000000, 50, 100, 1);
	cr_assert_eq(ws_note(&notes, 1, 0x7f000000, 1, 21), 0);
	trail(&notes, 1, 0x30000000, WS_JOIN_MIN - 1, 100, 500);
	trail(&notes, 1, 0x40000000, 5, wide, 600);
	cr_assert_eq(ws_merge(&rec, &notes), 0);
	const struct ws_task *t = ws_find(&rec, 1);
	cr_assert_eq(t->n, 3 + WS_JOIN_MIN - 1 + 5);
	cr_assert_eq(t->e[0].addr, 0x10000000);
	cr_assert_eq(t->e[0].pages, 99 * 100 + 16, "the trail and its gaps, one entry");
	cr_assert_eq(t->e[1].addr, 0x20000000);
	cr_assert_eq(t->e[1].pages, 49 * 100 + 16);
	cr_assert_eq(t->e[2].addr, 0x7f000000, "the far touch on its own, in time order");
	cr_assert_eq(t->e[3].addr, 0x30000000, "too short: not joined");
	cr_assert_eq(t->e[3].pages, 16);
	cr_assert_eq(t->e[3 + WS_JOIN_MIN - 1].addr, 0x40000000, "gaps too wide: not joined");
	cr_assert_eq(t->e[3 + WS_JOIN_MIN - 1].pages, 16);

	/* The next restore replays the first trail (seen again) and overtakes it twice:
	 * those faults lie inside it and add nothing; so does one inside the second trail,
	 * later than it. A fault between the short trail's first two entries makes it long
	 * enough. */
	ws_free(&notes);
	ws_init(&notes, 7);
	cr_assert_eq(ws_note(&notes, 1, 0x10000000, t->e[0].pages, 0), 0);
	cr_assert_eq(ws_note(&notes, 1, 0x10000000 + 5000 * P, 16, 40), 0);
	cr_assert_eq(ws_note(&notes, 1, 0x10000000 + 9000 * P, 16, 80), 0);
	cr_assert_eq(ws_note(&notes, 1, 0x20000000 + 100 * P, 16, 3), 0);
	cr_assert_eq(ws_note(&notes, 1, 0x30000000 + 50 * P, 16, 501), 0);
	cr_assert_eq(ws_merge(&rec, &notes), 0);
	t = ws_find(&rec, 1);
	cr_assert_eq(t->n, 4 + 5);
	cr_assert_eq(t->e[0].addr, 0x10000000);
	cr_assert_eq(t->e[0].seen, 2);
	cr_assert_eq(t->e[0].pages, 99 * 100 + 16);
	cr_assert_eq(t->e[1].addr, 0x20000000);
	cr_assert_eq(t->e[1].seen, 1);
	cr_assert_eq(t->e[1].pages, 49 * 100 + 16);
	cr_assert_eq(t->e[3].addr, 0x30000000);
	cr_assert_eq(t->e[3].pages, (WS_JOIN_MIN - 2) * 100 + 16, "joined now");
	cr_assert_eq(t->e[3].t_ms, 500);
	ws_free(&rec);
	ws_free(&notes);
}

Test(workset, file_round_trip_and_the_images_identity)
{
	char path[64];
	int dfd = tmpdir(path);
	struct workset w, back;
	struct errmsg e;

	ws_init(&w, 0xabcdef);
	for (uint32_t i = 0; i < 1000; i++)
		cr_assert_eq(ws_note(&w, 7, (uint64_t)(i * 37 % 1000) * 1024 * P, 1 + i % 16, i),
			     0);
	cr_assert_eq(ws_merge(&w, &(struct workset){.image = 0xabcdef}), 0);
	cr_assert_eq(ws_save(dfd, WS_FILE_NAME, &w, &e), 0, "%s", e.msg);
	struct stat st;
	cr_assert_eq(fstatat(dfd, WS_FILE_NAME, &st, 0), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "private to its owner");
	cr_assert_eq(ws_load(dfd, WS_FILE_NAME, 0xabcdef, &back, &e), 0, "%s", e.msg);
	cr_assert_eq(back.ntasks, 1);
	cr_assert_eq(back.tasks[0].n, 1000);
	for (uint32_t i = 0; i < 1000; i++) {
		const struct ws_entry *x = &back.tasks[0].e[i], *y = &w.tasks[0].e[i];
		cr_assert(x->addr == y->addr && x->pages == y->pages && x->t_ms == y->t_ms &&
			      x->seen == y->seen,
			  "entry %u", i);
	}
	ws_free(&back);
	cr_assert_eq(ws_load(dfd, WS_FILE_NAME, 0x1234, &back, &e), -ESTALE,
		     "another dump's record is refused");
	cr_assert_eq(back.ntasks, 0);
	cr_assert_eq(ws_load(dfd, "nothing.img", 0xabcdef, &back, &e), -ENOENT);
	ws_free(&w);
	rmdir_all(dfd, path);
}

Test(workset, truncated_corrupt_or_hostile_records_are_refused_whole)
{
	struct workset w, back;
	struct errmsg e;
	uint8_t *buf;
	size_t len;

	ws_init(&w, 5);
	for (uint32_t i = 0; i < 100; i++)
		cr_assert_eq(ws_note(&w, 1, (uint64_t)i * P, 1, i), 0);
	cr_assert_eq(ws_encode(&w, &buf, &len), 0);
	cr_assert_eq(ws_decode(buf, len, &back, &e), 0, "%s", e.msg);
	ws_free(&back);
	for (size_t cut = 0; cut < len; cut += 7)
		cr_assert_eq(ws_decode(buf, cut, &back, &e), -EINVAL, "cut at %zu", cut);
	buf[len / 2] ^= 0x10;
	cr_assert_eq(ws_decode(buf, len, &back, &e), -EINVAL);
	cr_assert(strstr(e.msg, "checksum"), "%s", e.msg);
	free(buf);
	ws_free(&w);

	/* Well framed but wrong inside: an unaligned address, zero pages, a pid twice. */
	static const struct ws_entry bad[] = {{0x1001, 1, 0, 1},
					      {0x1000, 0, 0, 1},
					      {0x1000, WS_MAX_ENTRY_PAGES + 1, 0, 1},
					      {UINT64_MAX & ~(P - 1), 2, 0, 1},
					      {0x1000, 1, 0, 0}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ws_entry one = bad[i];
		struct ws_task t = {.pid = 3, .e = &one, .n = 1, .cap = 1};
		struct workset h = {.image = 5, .restores = 1, .tasks = &t, .ntasks = 1};
		cr_assert_eq(ws_encode(&h, &buf, &len), 0);
		cr_assert_eq(ws_decode(buf, len, &back, &e), -EINVAL, "entry %zu", i);
		cr_assert_eq(back.ntasks, 0);
		free(buf);
	}
	struct ws_entry one = {0x1000, 1, 0, 1};
	struct ws_task two[2] = {{.pid = 3, .e = &one, .n = 1}, {.pid = 3, .e = &one, .n = 1}};
	struct workset h = {.image = 5, .tasks = two, .ntasks = 2};
	cr_assert_eq(ws_encode(&h, &buf, &len), 0);
	cr_assert_eq(ws_decode(buf, len, &back, &e), -EINVAL);
	cr_assert(strstr(e.msg, "twice"), "%s", e.msg);
	free(buf);
}

Test(workset, a_task_keeps_at_most_its_limit)
{
	struct workset w;

	ws_init(&w, 1);
	for (uint32_t i = 0; i < WS_MAX_TASK_ENTRIES; i++)
		cr_assert_eq(ws_note(&w, 1, (uint64_t)i * P, 1, 0), 0);
	cr_assert_eq(ws_note(&w, 1, 0, 1, 0), -E2BIG);
	ws_free(&w);
}

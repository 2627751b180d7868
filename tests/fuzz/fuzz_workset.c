/*
 * libFuzzer harness: the working-set record beside the images (img/workset.h), which
 * criu-lazyd reads at start: anything in the file must be refused with a message or
 * decoded into bounded, valid entries.
 *
 * Input: the file's bytes. Byte 0 bit 0 set: the harness puts a valid header (magic and the
 * xxh64 of the rest) in front of bytes 1.., so that the protobuf and the checks behind the
 * checksum are reached; clear: the bytes as they are.
 * Checked: a record that decodes has every entry page aligned, 1..WS_MAX_ENTRY_PAGES pages,
 * not past the end of the address space, seen at least once, each pid once; it encodes and
 * decodes again to the same entries, and merges with itself.
 */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "img/workset.h"

static void check(const struct workset *w)
{
	for (uint32_t i = 0; i < w->ntasks; i++) {
		const struct ws_task *t = &w->tasks[i];
		if (t->n > WS_MAX_TASK_ENTRIES || ws_find(w, t->pid) != t)
			abort();
		for (uint32_t k = 0; k < t->n; k++) {
			const struct ws_entry *e = &t->e[k];
			if (e->addr % IMG_PAGE_SIZE || !e->pages || e->pages > WS_MAX_ENTRY_PAGES ||
			    e->addr > UINT64_MAX - (uint64_t)e->pages * IMG_PAGE_SIZE || !e->seen)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct workset w, again;
	struct errmsg e;
	uint8_t *buf;
	size_t len;

	if (!size)
		return 0;
	if (data[0] & 1) {
		len = 16 + size - 1;
		buf = malloc(len);
		if (!buf)
			return 0;
		memcpy(buf, "LZWSET01", 8);
		uint64_t sum = htole64(XXH64(data + 1, size - 1, 0));
		memcpy(buf + 8, &sum, 8);
		memcpy(buf + 16, data + 1, size - 1);
	} else {
		len = size;
		buf = malloc(len);
		if (!buf)
			return 0;
		memcpy(buf, data, size);
	}
	int rc = ws_decode(buf, len, &w, &e);
	free(buf);
	if (rc) {
		if (w.ntasks || !e.msg[0])
			abort(); /* refused: nothing kept, and said why */
		return 0;
	}
	check(&w);
	if (ws_encode(&w, &buf, &len) == 0) {
		if (ws_decode(buf, len, &again, &e))
			abort(); /* what we write, we read */
		if (again.ntasks != w.ntasks)
			abort();
		for (uint32_t i = 0; i < w.ntasks; i++) {
			if (again.tasks[i].n != w.tasks[i].n)
				abort();
			for (uint32_t k = 0; k < w.tasks[i].n; k++) {
				const struct ws_entry *x = &again.tasks[i].e[k],
						      *y = &w.tasks[i].e[k];
				if (x->addr != y->addr || x->pages != y->pages ||
				    x->t_ms != y->t_ms || x->seen != y->seen)
					abort();
			}
		}
		ws_free(&again);
		free(buf);
	}
	struct workset copy;
	ws_init(&copy, w.image);
	if (ws_merge(&copy, &w) == 0)
		check(&copy);
	ws_free(&copy);
	ws_free(&w);
	return 0;
}

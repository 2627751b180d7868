/*
 * libFuzzer harness: the object store's manifest (lazy-pages/imgd/store_manifest.c), the one
 * parser of bytes that come from the store (everything else from there is checked against
 * it: sizes, XXH64). Any input is parsed; what a successful parse leaves is checked against
 * store_manifest.h's limits and formatted again, and that text must parse to the same thing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "imgd/store_manifest.h"

static void check(const struct store_manifest *m)
{
	if (m->chunk < 4096 || m->chunk % 4096 || m->n > WIRE_MAX_META_FILES ||
	    strlen(m->gen) != 16)
		fuzz_die("manifest: chunk, count or gen out of bounds");
	for (size_t i = 0; i < m->n; i++) {
		const struct store_file *f = &m->f[i];
		if (!wire_upload_name_ok(f->name) || f->pages != (wire_meta_pages_id(f->name) >= 0))
			fuzz_die("manifest: a bad name was accepted");
		if (f->size > (f->pages ? STORE_PAGES_MAX : WIRE_MAX_META_FILE))
			fuzz_die("manifest: a size over the limit was accepted");
		if (f->pages && (f->nchunks != store_chunks(f->size, m->chunk) || !f->csum))
			fuzz_die("manifest: chunk count does not match the size");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(m->f[j].name, f->name))
				fuzz_die("manifest: a name twice");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_manifest m, again;
	struct errmsg e;
	char *text;
	size_t len;

	if (store_manifest_parse((const char *)data, size, &m, &e)) {
		if (!e.msg[0])
			fuzz_die("manifest refused without a message");
		return 0;
	}
	check(&m);
	if (store_manifest_format(&m, &text, &len))
		fuzz_die("an accepted manifest cannot be formatted again");
	if (store_manifest_parse(text, len, &again, &e))
		fuzz_die("a formatted manifest does not parse");
	if (again.n != m.n || again.chunk != m.chunk || strcmp(again.gen, m.gen))
		fuzz_die("a formatted manifest parses to something else");
	for (size_t i = 0; i < m.n; i++)
		if (strcmp(again.f[i].name, m.f[i].name) || again.f[i].size != m.f[i].size ||
		    again.f[i].sum != m.f[i].sum ||
		    (m.f[i].pages &&
		     memcmp(again.f[i].csum, m.f[i].csum, m.f[i].nchunks * sizeof(uint64_t))))
			fuzz_die("a formatted manifest parses to another file list");
	store_manifest_free(&again);
	store_manifest_free(&m);
	free(text);
	return 0;
}

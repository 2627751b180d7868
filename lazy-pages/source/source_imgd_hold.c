/*
 * Chunks the caller keeps past the next collect() (source.h's hold op): the buffer a
 * chunk's data lies in (a connection's payload buffer, the buffer zero pages are expanded
 * into, or the one a compressed frame is decompressed into) becomes the caller's, and a
 * spare one takes its place for the next frame. Released buffers are the spares.
 */
#include <errno.h>
#include <stdlib.h>

#include "source_imgd.h"

/* The buffer of s that data lies in, or NULL. */
static uint8_t **buffer_of(struct imgd_src *s, const void *data)
{
	uint8_t **cand[] = {&s->bulk.pay, &s->fast.pay, &s->chunk, &s->zraw};
	const uint8_t *p = data;

	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++)
		if (*cand[i] && p >= *cand[i] && p < *cand[i] + WIRE_MAX_PAYLOAD)
			return cand[i];
	return NULL;
}

int imgd_hold(struct page_source *ps, const struct src_chunk *ch)
{
	struct imgd_src *s = ps->priv;
	uint8_t **buf = buffer_of(s, ch->data);
	int token = -1;

	if (!buf)
		return -EINVAL;
	for (int i = 0; i < SRC_HOLD_MAX && token < 0; i++)
		if (!s->held[i])
			token = i;
	if (token < 0)
		return -EBUSY;
	uint8_t *fresh = s->nspare ? s->spare[--s->nspare] : malloc(WIRE_MAX_PAYLOAD);
	if (!fresh)
		return -ENOMEM;
	s->held[token] = *buf;
	*buf = fresh;
	return token;
}

void imgd_release(struct page_source *ps, int token)
{
	struct imgd_src *s = ps->priv;

	if (token < 0 || token >= SRC_HOLD_MAX || !s->held[token])
		return;
	if (s->nspare < SRC_HOLD_MAX)
		s->spare[s->nspare++] = s->held[token];
	else
		free(s->held[token]);
	s->held[token] = NULL;
}

void imgd_hold_free(struct imgd_src *s)
{
	for (int i = 0; i < SRC_HOLD_MAX; i++) {
		free(s->held[i]);
		s->held[i] = NULL;
	}
	while (s->nspare)
		free(s->spare[--s->nspare]);
}

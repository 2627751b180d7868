/* restore-sim: the model of a restored process tree (tasks, VMAs, the kind of every page). */
#include "sim-model.h"

#include <stdlib.h>
#include <string.h>

const struct kind_mix MIX_DEFAULT = {.zero = 10, .hole = 15, .present = 15, .max_run = 9};

uint64_t vma_end(const struct sim_vma *v)
{
	return v->start + v->npages * SIM_PAGE;
}

static uint64_t task_base(int idx)
{
	return SIM_BASE + (uint64_t)idx * SIM_TASK_SPAN;
}

struct sim_task *add_task(struct sim *s, int parent)
{
	struct sim_task *t = &s->task[s->ntasks];

	memset(t, 0, sizeof(*t));
	t->idx = s->ntasks++;
	t->parent = parent;
	t->ctl = -1;
	t->uffd = -1;
	t->pages_id = (uint32_t)t->idx + 1;
	return t;
}

static uint8_t pick_kind(struct sim_rng *r, const struct kind_mix *m)
{
	int p = (int)rng_below(r, 100);

	if (p < m->zero)
		return PK_LAZY_ZERO;
	if (p < m->zero + m->hole)
		return PK_HOLE;
	if (p < m->zero + m->hole + m->present)
		return PK_PRESENT;
	return PK_LAZY;
}

static void fill_kinds(uint8_t *k, uint64_t n, struct sim_rng *r, const struct kind_mix *m)
{
	uint64_t i = 0;

	while (i < n) {
		uint8_t kind = pick_kind(r, m);
		uint64_t run = 1 + rng_below(r, (uint64_t)m->max_run);
		for (uint64_t j = 0; j < run && i < n; j++)
			k[i++] = kind;
	}
}

/* Add a VMA in slot 'slot' of the task's address range, kinds from 'mix' (NULL: all 'only'). */
struct sim_vma *add_vma(struct sim *s, struct sim_task *t, int slot, uint64_t npages, int prot,
			const struct kind_mix *mix, uint8_t only)
{
	struct sim_vma *v = &t->vma[t->nvmas++];
	struct sim_rng r = {.s = s->seed ^ ((uint64_t)t->idx << 32) ^ (uint64_t)slot};

	v->start = task_base(t->idx) + (uint64_t)slot * SIM_VMA_SPAN;
	v->npages = npages;
	v->prot = prot;
	v->kind = malloc(npages);
	if (!v->kind) {
		sim_log("out of memory for %llu pages", (unsigned long long)npages);
		exit(2);
	}
	if (mix)
		fill_kinds(v->kind, npages, &r, mix);
	else
		memset(v->kind, only, npages);
	return v;
}

/* A VMA right after the previous one (a different prot keeps the kernel from merging them). */
struct sim_vma *add_vma_after(struct sim *s, struct sim_task *t, uint64_t npages, int prot,
			      const struct kind_mix *mix, uint8_t only)
{
	uint64_t start = vma_end(&t->vma[t->nvmas - 1]);
	/* A slot number of its own only for the layout's random numbers. */
	struct sim_vma *v = add_vma(s, t, 64 + t->nvmas, npages, prot, mix, only);

	v->start = start;
	return v;
}

static const struct sim_vma *find_vma(const struct sim_task *t, uint64_t addr)
{
	for (int i = 0; i < t->nvmas; i++)
		if (addr >= t->vma[i].start && addr < vma_end(&t->vma[i]))
			return &t->vma[i];
	return NULL;
}

/* The kind of the image page at image address addr; PK_HOLE outside every VMA. */
uint8_t page_kind(const struct sim_task *t, uint64_t addr)
{
	const struct sim_vma *v = find_vma(t, addr);

	return v ? v->kind[(addr - v->start) / SIM_PAGE] : PK_HOLE;
}

/* What the page at image address addr must hold. */
void expected_page(const struct sim *s, const struct sim_task *t, uint64_t addr, void *buf)
{
	uint8_t k = page_kind(t, addr);

	if (k == PK_LAZY || k == PK_PRESENT)
		sim_pattern(buf, t->pid, addr, s->seed);
	else
		memset(buf, 0, SIM_PAGE);
}

void count_pages(const struct sim *s, struct page_counts *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < s->ntasks; i++) {
		const struct sim_task *t = &s->task[i];
		for (int j = 0; j < t->nvmas; j++)
			for (uint64_t p = 0; p < t->vma[j].npages; p++) {
				uint8_t k = t->vma[j].kind[p];
				c->lazy += k == PK_LAZY;
				c->lazy_zero += k == PK_LAZY_ZERO;
				c->hole += k == PK_HOLE;
				c->present += k == PK_PRESENT;
			}
	}
}

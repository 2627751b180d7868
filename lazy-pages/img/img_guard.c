/* Guard regions: lookups in a task's sorted, disjoint guard array (see images.h). */
#include "img_load.h"

size_t img_guard_above(const struct img_guard *g, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct img_guard *img_guard_in(const struct img_guard *g, size_t n, uint64_t start,
				     uint64_t end)
{
	size_t i = img_guard_above(g, n, start);

	return i < n && g[i].start < end ? &g[i] : NULL;
}

const struct img_guard *img_task_guard(const struct img_task *t, uint64_t start, uint64_t end)
{
	return img_guard_in(t->guards, t->nr_guards, start, end);
}

/* librados, loaded on demand (store_rados_lib.h). */
#include "store_rados_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>

static struct rados_lib lib;
static bool loaded;

const struct rados_lib *rados_lib(struct errmsg *e)
{
	if (loaded)
		return &lib;
	/* Never closed: librados keeps threads and static state for the process's life. */
	void *h = dlopen("librados.so.2", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *why = dlerror();
		errmsg_set(e, ENOENT,
			   "--store rados:// needs librados (Debian: apt install librados2): %s",
			   why ? why : "cannot load librados.so.2");
		return NULL;
	}
	const char *missing = NULL;
#define RADOS_LOAD(f)                                                                              \
	if (!(lib.f = (__typeof__(f) *)dlsym(h, #f)) && !missing)                                  \
		missing = #f;
	RADOS_FUNCS(RADOS_LOAD)
#undef RADOS_LOAD
	if (missing) {
		dlclose(h);
		errmsg_set(e, ENOSYS, "librados.so.2 has no %s: too old a librados", missing);
		return NULL;
	}
	loaded = true;
	return &lib;
}

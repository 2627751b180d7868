/*
 * Helpers shared by the libFuzzer harnesses (tests/fuzz/README.md): splitting an input into
 * parts, a private scratch directory per process, fd leak checks, and a small synthetic CRIU
 * image (fuzz_write_image) for the harnesses and seed tools that need a real image to serve.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The keys of the harnesses and their seeds: readers (--auth-key), publishers (--upload-key). */
#define FUZZ_KEY "lazy-wire-fuzzing-key-0123456789"
#define FUZZ_UPLOAD_KEY "lazy-wire-fuzzing-upload-key-987"
/* The challenge fuzz_wire_server's server sends, the nonce fuzz_wire_client's client sends. */
#define FUZZ_CHALLENGE_BYTE 0x5a
#define FUZZ_NONCE_BYTE 0xc3

/* Parts of one input are separated by this marker (found with memmem: libFuzzer learns it). */
#define FUZZ_SEP "#LWFUZZ#"
#define FUZZ_SEP_LEN 8

struct fuzz_part {
	const uint8_t *p;
	size_t n;
};

/* Split data at FUZZ_SEP into at most max parts (the last one takes the rest). */
static inline size_t fuzz_split(const uint8_t *data, size_t size, struct fuzz_part *parts,
				size_t max)
{
	size_t n = 0;

	while (n < max) {
		const uint8_t *s =
		    n + 1 < max ? memmem(data, size, FUZZ_SEP, FUZZ_SEP_LEN) : NULL;
		if (!s) {
			parts[n++] = (struct fuzz_part){data, size};
			break;
		}
		parts[n++] = (struct fuzz_part){data, (size_t)(s - data)};
		size -= (size_t)(s - data) + FUZZ_SEP_LEN;
		data = s + FUZZ_SEP_LEN;
	}
	return n;
}

static inline void fuzz_die(const char *what)
{
	fprintf(stderr, "fuzz harness: %s\n", what);
	abort();
}

/* A fresh directory of our own: $FUZZ_TMPDIR, else /dev/shm, else $TMPDIR, else /tmp. */
static inline void fuzz_mkdtemp(char *out, size_t len, const char *tag)
{
	const char *bases[] = {getenv("FUZZ_TMPDIR"), "/dev/shm", getenv("TMPDIR"), "/tmp"};

	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		if (!bases[i] || !*bases[i])
			continue;
		snprintf(out, len, "%s/lazy-fuzz-%s-%d-XXXXXX", bases[i], tag, (int)getpid());
		if (mkdtemp(out))
			return;
	}
	fuzz_die("cannot create a scratch directory");
}

/* Remove every entry of dirfd (one level of subdirectories too). */
static inline void fuzz_rm_contents(int dirfd, int depth)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	for (struct dirent *de; (de = readdir(d));) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd, de->d_name, 0) && (errno == EISDIR || errno == EPERM) &&
		    depth > 0) {
			int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (sub >= 0) {
				fuzz_rm_contents(sub, depth - 1);
				close(sub);
			}
			unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
		}
	}
	closedir(d);
}

static inline void fuzz_rm_tree(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fuzz_rm_contents(fd, 2);
		close(fd);
	}
	rmdir(path);
}

/* Number of entries in dirfd ("." and ".." not counted), or -1. */
static inline int fuzz_count_entries(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* The lowest free fd: a call that leaks an fd usually moves it. */
static inline int fuzz_lowest_free_fd(void)
{
	int fd = dup(0);

	if (fd < 0)
		return -1;
	close(fd);
	return fd;
}

static inline int fuzz_write_file(int dirfd, const char *name, const void *p, size_t n)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	const uint8_t *b = p;

	if (fd < 0)
		return -1;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return close(fd);
}

#ifdef FUZZ_WITH_IMAGES
/*
 * A small image with the lazy-pages layout CRIU writes: inventory.img, pstree.img with
 * tasks 100 (2 lazy VMAs, a guard, lazy and non-lazy pagemap entries) and 101 (a zombie: no
 * mm), mm-100.img, pagemap-100.img, pages-7.img (lazy data with zero pages among it), and
 * its dump-time checksums pages-7.img.xxh64 when sums. Needs criu-images.pb-c.h and
 * wire_page_sum (wire.c). 0 or -1.
 */
#include "criu-images.pb-c.h"
#include "wire/wire.h"

#define FUZZ_IMG_PID 100
#define FUZZ_IMG_ZOMBIE 101
#define FUZZ_IMG_PAGES_ID 7
#define FUZZ_IMG_PAGES 20 /* pages in pages-7.img */

static inline int fuzz_put_entry(uint8_t *buf, size_t *at, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	if (*at + 4 + n > 65536)
		return -1;
	buf[*at] = (uint8_t)n;
	buf[*at + 1] = (uint8_t)(n >> 8);
	buf[*at + 2] = (uint8_t)(n >> 16);
	buf[*at + 3] = (uint8_t)(n >> 24);
	protobuf_c_message_pack(m, buf + *at + 4);
	*at += 4 + n;
	return 0;
}

static inline size_t fuzz_put_magic(uint8_t *buf, uint32_t m1, uint32_t m2)
{
	size_t at = 0;
	uint32_t m[2] = {m1, m2};

	for (int i = 0; i < (m2 ? 2 : 1); i++)
		for (int b = 0; b < 4; b++)
			buf[at++] = (uint8_t)(m[i] >> (8 * b));
	return at;
}

static inline int fuzz_write_image(int dirfd, bool sums)
{
	static uint8_t buf[65536];
	size_t at;
	int rc = 0;

	/* inventory.img: its own magic only, as crit and CRIU write it */
	ImgInventoryEntry inv = IMG_INVENTORY_ENTRY__INIT;
	inv.img_version = 2;
	at = fuzz_put_magic(buf, 0x58313116u, 0);
	rc |= fuzz_put_entry(buf, &at, &inv.base);
	rc |= fuzz_write_file(dirfd, "inventory.img", buf, at);

	ImgPstreeEntry pe = IMG_PSTREE_ENTRY__INIT;
	uint32_t thr[1] = {FUZZ_IMG_PID};
	at = fuzz_put_magic(buf, 0x54564319u, 0x50273030u);
	pe.pid = FUZZ_IMG_PID;
	pe.ppid = 0;
	pe.pgid = pe.sid = FUZZ_IMG_PID;
	pe.n_threads = 1;
	pe.threads = thr;
	rc |= fuzz_put_entry(buf, &at, &pe.base);
	pe.pid = FUZZ_IMG_ZOMBIE;
	pe.ppid = FUZZ_IMG_PID;
	pe.n_threads = 0;
	pe.threads = NULL;
	rc |= fuzz_put_entry(buf, &at, &pe.base);
	rc |= fuzz_write_file(dirfd, "pstree.img", buf, at);

	/* VMAs: a lazy one of 16 pages with a guard page at its page 12, a non-lazy file
	 * mapping, a lazy one of 8 pages. */
	enum { ANON_PRIV = 0x22, FILE_SHARED = 0x01, REGULAR = 1, GUARD = 1 << 16 };
	struct {
		uint64_t start, end;
		uint32_t flags, status;
	} v[] = {
	    {0x400000, 0x410000, ANON_PRIV, REGULAR},
	    {0x500000, 0x504000, FILE_SHARED, REGULAR | (1 << 6)},
	    {0x600000, 0x608000, ANON_PRIV, REGULAR},
	    {0x40c000, 0x40d000, 0, GUARD},
	};
	ImgVmaEntry ve[4], *vp[4];
	for (int i = 0; i < 4; i++) {
		img_vma_entry__init(&ve[i]);
		ve[i].start = v[i].start;
		ve[i].end = v[i].end;
		ve[i].prot = v[i].status == GUARD ? 0 : 3;
		ve[i].flags = v[i].flags;
		ve[i].status = v[i].status;
		ve[i].has_fd = true;
		ve[i].fd = -1;
		vp[i] = &ve[i];
	}
	ImgMmEntry mm = IMG_MM_ENTRY__INIT;
	mm.n_vmas = 4;
	mm.vmas = vp;
	at = fuzz_put_magic(buf, 0x54564319u, 0x57492820u);
	rc |= fuzz_put_entry(buf, &at, &mm.base);
	rc |= fuzz_write_file(dirfd, "mm-100.img", buf, at);

	/* pagemap: 0x400000 +1 present (not lazy), 0x402000 +6 lazy, 0x408000 +4 lazy,
	 * 0x500000 +1 present, 0x600000 +8 lazy: 20 pages in pages-7.img, the lazy data at
	 * pages 1..11 and 12..20. */
	struct {
		uint64_t vaddr;
		uint32_t nr, flags;
	} pm[] = {
	    {0x400000, 1, 4}, {0x402000, 6, 6}, {0x408000, 4, 6}, {0x500000, 1, 4}, {0x600000, 8, 6},
	};
	ImgPagemapHead ph = IMG_PAGEMAP_HEAD__INIT;
	ph.pages_id = FUZZ_IMG_PAGES_ID;
	at = fuzz_put_magic(buf, 0x54564319u, 0x56084025u);
	rc |= fuzz_put_entry(buf, &at, &ph.base);
	for (size_t i = 0; i < sizeof(pm) / sizeof(pm[0]); i++) {
		ImgPagemapEntry e = IMG_PAGEMAP_ENTRY__INIT;
		e.vaddr = pm[i].vaddr;
		e.compat_nr_pages = pm[i].nr;
		e.has_nr_pages = true;
		e.nr_pages = pm[i].nr;
		e.has_flags = true;
		e.flags = pm[i].flags;
		rc |= fuzz_put_entry(buf, &at, &e.base);
	}
	rc |= fuzz_write_file(dirfd, "pagemap-100.img", buf, at);

	/* pages-7.img: zero pages (not sent) but for 1, 8, 13 and 19, which hold their number:
	 * seeds stay small. */
	uint8_t *pages = calloc(FUZZ_IMG_PAGES, WIRE_PAGE);
	uint8_t sumb[FUZZ_IMG_PAGES * 8];
	if (!pages)
		return -1;
	for (unsigned i = 0; i < FUZZ_IMG_PAGES; i++) {
		if (i == 1 || i == 8 || i == 13 || i == 19)
			memset(pages + (size_t)i * WIRE_PAGE, (int)(i + 1), WIRE_PAGE);
		uint64_t s = wire_page_sum(pages + (size_t)i * WIRE_PAGE);
		for (int b = 0; b < 8; b++)
			sumb[i * 8 + b] = (uint8_t)(s >> (8 * b));
	}
	rc |= fuzz_write_file(dirfd, "pages-7.img", pages, (size_t)FUZZ_IMG_PAGES * WIRE_PAGE);
	free(pages);
	if (sums)
		rc |= fuzz_write_file(dirfd, "pages-7.img.xxh64", sumb, sizeof(sumb));
	/* A metadata file that is neither an image nor served (*.log), and one that is. */
	rc |= fuzz_write_file(dirfd, "dump.log", "log\n", 4);
	rc |= fuzz_write_file(dirfd, "stats-dump", "stats", 5);
	return rc ? -1 : 0;
}
#endif /* FUZZ_WITH_IMAGES */

#endif

/* Entry-level reader for CRIU image files. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images.h"
#include "img_file.h"

int img_fail(struct errmsg *err, int errnum, const char *file, uint64_t off, const char *fmt, ...)
{
	char what[ERRMSG_MAX];
	va_list ap;

	if (!err)
		return -errnum;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return errmsg_set(err, errnum, "%s: offset %llu: %s", file, (unsigned long long)off, what);
}

int img_decode_fail(struct errmsg *err, const char *file, uint64_t off, const char *what)
{
	return img_fail(err, EINVAL, file, off, "cannot decode %s (bad protobuf message)", what);
}

/* Copy n bytes at file offset off into dst, through the read-ahead window. */
static int img_read_at(struct img_file *f, uint64_t off, void *dst, size_t n, struct errmsg *err)
{
	uint8_t *out = dst;

	while (n) {
		ssize_t r;

		if (off >= f->buf_off && off < f->buf_off + f->buf_len) {
			size_t avail = f->buf_off + f->buf_len - off;
			size_t chunk = avail < n ? avail : n;

			memcpy(out, f->buf + (off - f->buf_off), chunk);
			out += chunk;
			off += chunk;
			n -= chunk;
			continue;
		}
		/* Big reads bypass the window. */
		if (n >= IMG_FILE_BUF_SIZE)
			r = pread(f->fd, out, n, off);
		else
			r = pread(f->fd, f->buf, IMG_FILE_BUF_SIZE, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			return img_fail(err, e, f->name, off, "read: %s", strerror(e));
		}
		if (r == 0)
			return img_fail(err, EINVAL, f->name, off,
					"unexpected end of file (file shrank?)");
		if (n >= IMG_FILE_BUF_SIZE) {
			out += r;
			off += r;
			n -= r;
		} else {
			f->buf_off = off;
			f->buf_len = r;
		}
	}
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int img_read_u32(struct img_file *f, uint64_t off, uint32_t *v, struct errmsg *err)
{
	uint8_t b[4];
	int rc = img_read_at(f, off, b, sizeof(b), err);

	if (rc)
		return rc;
	*v = le32(b);
	return 0;
}

static const char *magic_name(uint32_t magic)
{
	switch (magic) {
	case IMG_COMMON_MAGIC:
		return "COMMON";
	case IMG_INVENTORY_MAGIC:
		return "INVENTORY";
	case IMG_PSTREE_MAGIC:
		return "PSTREE";
	case IMG_PAGEMAP_MAGIC:
		return "PAGEMAP";
	case IMG_MM_MAGIC:
		return "MM";
	default:
		return "?";
	}
}

static int img_check_one_magic(struct img_file *f, uint64_t off, uint32_t want, struct errmsg *err)
{
	uint32_t got;
	int rc;

	if (f->size < off + 4)
		return img_fail(err, EINVAL, f->name, off, "truncated magic (file has %llu bytes)",
				(unsigned long long)f->size);
	rc = img_read_u32(f, off, &got, err);
	if (rc)
		return rc;
	if (got != want)
		return img_fail(err, EINVAL, f->name, off, "bad magic 0x%08x, expected 0x%08x (%s)",
				got, want, magic_name(want));
	return 0;
}

static int img_check_magic(struct img_file *f, uint32_t magic, struct errmsg *err)
{
	/* crit and CRIU write inventory.img with its own magic only. */
	if (magic == IMG_INVENTORY_MAGIC) {
		f->off = 4;
		return img_check_one_magic(f, 0, magic, err);
	}
	f->off = 8;
	int rc = img_check_one_magic(f, 0, IMG_COMMON_MAGIC, err);

	return rc ? rc : img_check_one_magic(f, 4, magic, err);
}

static void img_file_init(struct img_file *f, const char *name)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	snprintf(f->name, sizeof(f->name), "%s", name);
}

int img_file_open(struct img_file *f, int dirfd, const char *name, uint32_t magic, bool optional,
		  struct errmsg *err)
{
	struct stat st;
	int rc, e;

	img_file_init(f, name);
	f->fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		e = errno;
		if (e == ENOENT && optional)
			return 1;
		return img_fail(err, e, name, 0, "cannot open: %s", strerror(e));
	}
	if (fstat(f->fd, &st) < 0) {
		e = errno;
		rc = img_fail(err, e, name, 0, "fstat: %s", strerror(e));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = img_fail(err, EINVAL, name, 0, "not a regular file");
		goto fail;
	}
	f->size = st.st_size;
	f->buf = malloc(IMG_FILE_BUF_SIZE);
	if (!f->buf) {
		rc = img_fail(err, ENOMEM, name, 0, "out of memory");
		goto fail;
	}
	rc = img_check_magic(f, magic, err);
	if (rc)
		goto fail;
	return 0;
fail:
	img_file_close(f);
	return rc;
}

/* Validate the frame at f->off: sets *len to the message length. 0 = EOF, 1 = frame. */
static int img_frame(struct img_file *f, uint32_t *len, struct errmsg *err)
{
	uint64_t left = f->size - f->off;
	int rc;

	if (left == 0)
		return 0;
	if (left < 4)
		return img_fail(err, EINVAL, f->name, f->off,
				"truncated entry length (%llu bytes left)",
				(unsigned long long)left);
	rc = img_read_u32(f, f->off, len, err);
	if (rc)
		return rc;
	if (*len > IMG_MAX_ENTRY_SIZE)
		return img_fail(err, E2BIG, f->name, f->off, "entry length %u exceeds the limit %u",
				*len, IMG_MAX_ENTRY_SIZE);
	if (*len > left - 4)
		return img_fail(err, EINVAL, f->name, f->off,
				"truncated entry: length %u, %llu bytes left", *len,
				(unsigned long long)(left - 4));
	return 1;
}

int img_file_next(struct img_file *f, const uint8_t **data, size_t *len, uint64_t *entry_off,
		  struct errmsg *err)
{
	uint32_t n;
	int ret = img_frame(f, &n, err);

	if (ret <= 0)
		return ret;
	/* Bounded: n <= IMG_MAX_ENTRY_SIZE and n fits in the file. */
	if (n > f->msg_cap) {
		uint8_t *p = realloc(f->msg, n);

		if (!p)
			return img_fail(err, ENOMEM, f->name, f->off,
					"out of memory for a %u byte entry", n);
		f->msg = p;
		f->msg_cap = n;
	}
	ret = img_read_at(f, f->off + 4, f->msg, n, err);
	if (ret)
		return ret;
	*data = f->msg;
	*len = n;
	*entry_off = f->off;
	f->off += 4 + (uint64_t)n;
	return 1;
}

int img_file_count(struct img_file *f, size_t max, const char *what, size_t *count,
		   struct errmsg *err)
{
	uint64_t start = f->off;
	size_t nr = 0;
	uint32_t n;
	int ret;

	while ((ret = img_frame(f, &n, err)) > 0) {
		if (nr == max) {
			ret = img_fail(err, E2BIG, f->name, f->off, "too many %s (limit %zu)", what,
				       max);
			break;
		}
		nr++;
		f->off += 4 + (uint64_t)n;
	}
	f->off = start;
	if (ret < 0)
		return ret;
	*count = nr;
	return 0;
}

void img_file_close(struct img_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->buf);
	free(f->msg);
	f->fd = -1;
	f->buf = NULL;
	f->msg = NULL;
	f->msg_cap = 0;
	f->buf_len = 0;
}

static int pb_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	unsigned int shift = 0;

	*v = 0;
	while (*pos < len && shift < 64) {
		uint8_t b = p[(*pos)++];

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
		shift += 7;
	}
	return -EINVAL;
}

/* Advance *pos past the value of a field with the given wire type. */
static int pb_skip(const uint8_t *p, size_t len, size_t *pos, unsigned int wire)
{
	uint64_t v;

	switch (wire) {
	case 0:
		return pb_varint(p, len, pos, &v);
	case 1:
		v = 8;
		break;
	case 2:
		if (pb_varint(p, len, pos, &v))
			return -EINVAL;
		break;
	case 5:
		v = 4;
		break;
	default: /* groups are not used by CRIU images */
		return -EINVAL;
	}
	if (v > len - *pos)
		return -EINVAL;
	*pos += v;
	return 0;
}

long img_pb_count_field(const uint8_t *msg, size_t len, uint32_t field)
{
	size_t pos = 0;
	long nr = 0;

	while (pos < len) {
		uint64_t key;

		if (pb_varint(msg, len, &pos, &key))
			return -EINVAL;
		if ((key >> 3) == field)
			nr++;
		if (pb_skip(msg, len, &pos, key & 7))
			return -EINVAL;
	}
	return nr;
}

/* The status socket (ctl.h). */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

#define CTL_CLIENT_MS 5000 /* how long the client waits for the daemon's answer */

static int sockaddr_of(const char *path, struct sockaddr_un *sa, struct errmsg *e)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return errmsg_set(e, ENAMETOOLONG, "%s: path too long for a Unix socket", path);
	strcpy(sa->sun_path, path);
	return 0;
}

int ctl_listen(const char *path, struct errmsg *e)
{
	struct sockaddr_un sa;
	struct stat st;
	int rc = sockaddr_of(path, &sa, e);

	if (rc)
		return rc;
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode))
			return errmsg_set(e, EEXIST, "%s exists and is not a socket", path);
		unlink(path); /* left by a daemon that died */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg_set(e, errno, "socket: %s", strerror(errno));
	/* Created 0600: no moment at which another user could connect. */
	mode_t old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	umask(old);
	if (rc || listen(fd, 8)) {
		err = rc ? err : errno;
		close(fd);
		return errmsg_set(e, err, "cannot listen on %s: %s", path, strerror(err));
	}
	return fd;
}

static int send_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read one word (up to a newline or the peer's shutdown) within ms. */
static int read_word(int fd, char *w, size_t max, int ms)
{
	size_t have = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int rc = poll(&p, 1, ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return rc ? -errno : -ETIMEDOUT;
		ssize_t n = recv(fd, w + have, max - 1 - have, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		have += (size_t)n;
		w[have] = '\0';
		char *nl = strchr(w, '\n');
		if (nl) {
			*nl = '\0';
			return 0;
		}
		if (n == 0)
			return have ? 0 : -ECONNRESET;
		if (have >= max - 1)
			return -EMSGSIZE;
	}
}

int ctl_serve_one(int listen_fd, ctl_reply_fn reply, void *data)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	char word[CTL_MAX_WORD];

	if (fd < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		pr_warn("status socket: a client of uid %d refused (root or uid %d only)",
			crlen ? (int)cr.uid : -1, (int)geteuid());
		close(fd);
		return 0;
	}
	int rc = read_word(fd, word, sizeof(word), CTL_REQUEST_MS);
	if (rc) {
		pr_warn("status socket: pid %d sent no request: %s", (int)cr.pid, strerror(-rc));
		close(fd);
		return 0;
	}
	size_t len = 0;
	uint8_t *body = reply(data, word, &len);
	if (len > CTL_MAX_REPLY) {
		pr_err("status socket: a %zu byte reply is over the limit", len);
		len = 0;
	}
	uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
			  (uint8_t)(len >> 24)};
	struct timeval tv = {1, 0}; /* a client that does not read cannot hold us */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	rc = send_all(fd, hdr, sizeof(hdr));
	if (!rc && len)
		rc = send_all(fd, body, len);
	if (rc)
		pr_warn("status socket: cannot answer pid %d: %s", (int)cr.pid, strerror(-rc));
	free(body);
	close(fd);
	return 0;
}

static int recv_all(int fd, void *p, size_t len)
{
	uint8_t *b = p;

	while (len) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int rc = poll(&pf, 1, CTL_CLIENT_MS);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return rc ? -errno : -ETIMEDOUT;
		ssize_t n = recv(fd, b, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_query(const char *path, const char *word, uint8_t **out, size_t *len, struct errmsg *e)
{
	struct sockaddr_un sa;
	int rc = sockaddr_of(path, &sa, e);

	*out = NULL;
	*len = 0;
	if (rc)
		return rc;
	if (strlen(word) >= CTL_MAX_WORD)
		return errmsg_set(e, EINVAL, "request '%s' too long", word);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg_set(e, errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = errno;
		close(fd);
		return errmsg_set(e, err, "%s: %s%s", path, strerror(err),
				  err == ENOENT || err == ECONNREFUSED
				      ? " (no daemon serves this work dir?)"
				  : err == EACCES ? " (root or the daemon's user only)"
						  : "");
	}
	char line[CTL_MAX_WORD + 1];
	size_t n = (size_t)snprintf(line, sizeof(line), "%s\n", word);
	uint8_t hdr[4];
	rc = send_all(fd, line, n);
	if (!rc)
		rc = recv_all(fd, hdr, sizeof(hdr));
	if (rc) {
		close(fd);
		return errmsg_set(e, -rc, "%s: no answer: %s", path, strerror(-rc));
	}
	size_t want =
	    (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
	if (want > CTL_MAX_REPLY) {
		close(fd);
		return errmsg_set(e, EMSGSIZE, "%s: a %zu byte answer is over the limit", path,
				  want);
	}
	uint8_t *b = malloc(want ? want : 1);
	if (!b) {
		close(fd);
		return errmsg_set(e, ENOMEM, "out of memory");
	}
	rc = recv_all(fd, b, want);
	close(fd);
	if (rc) {
		free(b);
		return errmsg_set(e, -rc, "%s: answer cut short: %s", path, strerror(-rc));
	}
	*out = b;
	*len = want;
	return 0;
}

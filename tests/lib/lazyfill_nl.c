/* The lazyfill generic netlink client (see lazyfill_nl.h). */
#include "lib/lazyfill_nl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <linux/lazyfill.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

struct lazyfill_nl {
	struct nl_sock *req; /* requests */
	struct nl_sock *ev;  /* events, once subscribed */
	int family;
	/* Where the message callback puts what it parsed. */
	struct lazyfill_nl_stats *out;
	size_t cap, n;
	int got;
};

static struct nla_policy attr_policy[LAZYFILL_A_MAX + 1] = {
    [LAZYFILL_A_SESSION] = {.type = NLA_U32},	    [LAZYFILL_A_PID] = {.type = NLA_U32},
    [LAZYFILL_A_BATCHES] = {.type = NLA_U64},	    [LAZYFILL_A_EXTENTS] = {.type = NLA_U64},
    [LAZYFILL_A_PAGES] = {.type = NLA_U64},	    [LAZYFILL_A_BYTES] = {.type = NLA_U64},
    [LAZYFILL_A_WAKES] = {.type = NLA_U64},	    [LAZYFILL_A_EAGAIN] = {.type = NLA_U64},
    [LAZYFILL_A_EEXIST] = {.type = NLA_U64},	    [LAZYFILL_A_REFUSED] = {.type = NLA_U64},
    [LAZYFILL_A_SESSIONS_LIVE] = {.type = NLA_U64}, [LAZYFILL_A_SESSIONS_TOTAL] = {.type = NLA_U64},
    [LAZYFILL_A_EXITED] = {.type = NLA_U8},
};

static uint64_t get64(struct nlattr **tb, int a)
{
	return tb[a] ? nla_get_u64(tb[a]) : 0;
}

static int parse(struct nl_msg *msg, struct lazyfill_nl_stats *st)
{
	struct nlattr *tb[LAZYFILL_A_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, LAZYFILL_A_MAX, attr_policy))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->session = tb[LAZYFILL_A_SESSION] ? nla_get_u32(tb[LAZYFILL_A_SESSION]) : 0;
	st->pid = tb[LAZYFILL_A_PID] ? nla_get_u32(tb[LAZYFILL_A_PID]) : 0;
	st->exited = tb[LAZYFILL_A_EXITED] ? nla_get_u8(tb[LAZYFILL_A_EXITED]) : 0;
	st->batches = get64(tb, LAZYFILL_A_BATCHES);
	st->extents = get64(tb, LAZYFILL_A_EXTENTS);
	st->pages = get64(tb, LAZYFILL_A_PAGES);
	st->bytes = get64(tb, LAZYFILL_A_BYTES);
	st->wakes = get64(tb, LAZYFILL_A_WAKES);
	st->eagain = get64(tb, LAZYFILL_A_EAGAIN);
	st->eexist = get64(tb, LAZYFILL_A_EEXIST);
	st->refused = get64(tb, LAZYFILL_A_REFUSED);
	st->sessions_live = get64(tb, LAZYFILL_A_SESSIONS_LIVE);
	st->sessions_total = get64(tb, LAZYFILL_A_SESSIONS_TOTAL);
	return 0;
}

static int on_msg(struct nl_msg *msg, void *arg)
{
	struct lazyfill_nl *nl = arg;
	struct lazyfill_nl_stats st;

	if (parse(msg, &st))
		return NL_SKIP;
	if (nl->n < nl->cap)
		nl->out[nl->n] = st;
	nl->n++;
	nl->got = 1;
	return NL_OK;
}

/* libnl's negative NLE_* codes, as errno values. */
static int nl_errno(int err)
{
	switch (-err) {
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_PERM:
		return -EPERM;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_AGAIN:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

int lazyfill_nl_open(struct lazyfill_nl **out)
{
	struct lazyfill_nl *nl = calloc(1, sizeof(*nl));
	int rc;

	if (!nl)
		return -ENOMEM;
	nl->req = nl_socket_alloc();
	if (!nl->req) {
		free(nl);
		return -ENOMEM;
	}
	rc = genl_connect(nl->req);
	if (!rc) {
		nl->family = genl_ctrl_resolve(nl->req, LAZYFILL_GENL_NAME);
		rc = nl->family < 0 ? nl->family : 0;
	}
	if (rc) {
		nl_socket_free(nl->req);
		free(nl);
		return nl_errno(rc);
	}
	nl_socket_modify_cb(nl->req, NL_CB_VALID, NL_CB_CUSTOM, on_msg, nl);
	*out = nl;
	return 0;
}

void lazyfill_nl_close(struct lazyfill_nl *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->req);
	if (nl->ev)
		nl_socket_free(nl->ev);
	free(nl);
}

static int request(struct lazyfill_nl *nl, int flags, uint32_t session)
{
	struct nl_msg *msg = nlmsg_alloc();
	int rc;

	if (!msg)
		return -ENOMEM;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0, flags,
			 LAZYFILL_CMD_GET_STATS, LAZYFILL_GENL_VERSION) ||
	    (session && nla_put_u32(msg, LAZYFILL_A_SESSION, session))) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	rc = nl_send_auto(nl->req, msg);
	nlmsg_free(msg);
	if (rc < 0)
		return nl_errno(rc);
	rc = nl_recvmsgs_default(nl->req);
	if (rc < 0)
		return nl_errno(rc);
	if (!(flags & NLM_F_DUMP))
		nl_wait_for_ack(nl->req);
	return 0;
}

int lazyfill_nl_get(struct lazyfill_nl *nl, uint32_t session, struct lazyfill_nl_stats *st)
{
	nl->out = st;
	nl->cap = 1;
	nl->n = 0;
	nl->got = 0;
	int rc = request(nl, 0, session);
	if (!rc && !nl->got)
		rc = -ENOENT;
	return rc;
}

int lazyfill_nl_list(struct lazyfill_nl *nl, struct lazyfill_nl_stats *st, size_t cap, size_t *n)
{
	nl->out = st;
	nl->cap = cap;
	nl->n = 0;
	int rc = request(nl, NLM_F_DUMP, 0);
	*n = nl->n;
	return rc;
}

int lazyfill_nl_subscribe(struct lazyfill_nl *nl)
{
	int grp, rc;

	if (nl->ev)
		return 0;
	grp = genl_ctrl_resolve_grp(nl->req, LAZYFILL_GENL_NAME, LAZYFILL_GENL_MCGRP);
	if (grp < 0)
		return nl_errno(grp);
	nl->ev = nl_socket_alloc();
	if (!nl->ev)
		return -ENOMEM;
	nl_socket_disable_seq_check(nl->ev);
	rc = genl_connect(nl->ev);
	if (!rc)
		rc = nl_socket_add_membership(nl->ev, grp);
	if (!rc)
		rc = nl_socket_set_nonblocking(nl->ev);
	if (rc) {
		nl_socket_free(nl->ev);
		nl->ev = NULL;
		return nl_errno(rc);
	}
	nl_socket_modify_cb(nl->ev, NL_CB_VALID, NL_CB_CUSTOM, on_msg, nl);
	return 0;
}

int lazyfill_nl_event_fd(struct lazyfill_nl *nl)
{
	return nl->ev ? nl_socket_get_fd(nl->ev) : -1;
}

int lazyfill_nl_event(struct lazyfill_nl *nl, struct lazyfill_nl_stats *ev, int timeout_ms)
{
	if (!nl->ev)
		return -ENOTCONN;
	for (;;) {
		struct pollfd p = {.fd = nl_socket_get_fd(nl->ev), .events = POLLIN};
		int rc = poll(&p, 1, timeout_ms);

		if (rc < 0)
			return errno == EINTR ? 0 : -errno;
		if (!rc)
			return 0;
		nl->out = ev;
		nl->cap = 1;
		nl->n = 0;
		nl->got = 0;
		rc = nl_recvmsgs_default(nl->ev);
		if (rc < 0 && rc != -NLE_AGAIN)
			return nl_errno(rc);
		if (nl->got)
			return 1;
	}
}

// SPDX-License-Identifier: GPL-2.0
/*
 * lazyfill generic netlink family: counters on request (global, one
 * session, or a dump of all sessions) and an event on the "events"
 * multicast group when a session's task exits.
 */
#include <net/genetlink.h>
#include <linux/module.h>

#include "lf.h"

static const struct nla_policy lf_policy[LAZYFILL_A_MAX + 1] = {
	[LAZYFILL_A_SESSION] = { .type = NLA_U32 },
};

/*
 * The exit events name restored tasks (pids in the initial namespace) and
 * their counters: joining the group needs CAP_NET_ADMIN in the user
 * namespace of the network namespace (the family is not netnsok, so that is
 * the initial one), checked by genl_bind() when the socket joins
 * (NETLINK_ADD_MEMBERSHIP or bind()): EPERM otherwise. The flag is in 6.1
 * since the stable backport of "genetlink: add CAP_NET_ADMIN test for
 * multicast bind"; 6.1 has no per-family bind callback to do it ourselves,
 * so a kernel without the flag is refused at build time rather than
 * silently leaking the events.
 */
#ifndef GENL_MCAST_CAP_NET_ADMIN
#error "this kernel's generic netlink cannot restrict multicast groups (GENL_MCAST_CAP_NET_ADMIN)"
#endif

static const struct genl_multicast_group lf_mcgrps[] = {
	{ .name = LAZYFILL_GENL_MCGRP, .flags = GENL_MCAST_CAP_NET_ADMIN },
};

static const int lf_attr_of[LF_C_NR] = {
	[LF_C_BATCHES] = LAZYFILL_A_BATCHES,
	[LF_C_EXTENTS] = LAZYFILL_A_EXTENTS,
	[LF_C_PAGES] = LAZYFILL_A_PAGES,
	[LF_C_BYTES] = LAZYFILL_A_BYTES,
	[LF_C_WAKES] = LAZYFILL_A_WAKES,
	[LF_C_EAGAIN] = LAZYFILL_A_EAGAIN,
	[LF_C_EEXIST] = LAZYFILL_A_EEXIST,
	[LF_C_REFUSED] = LAZYFILL_A_REFUSED,
};

static struct genl_family lf_family;

static int lf_put_counters(struct sk_buff *skb, struct lf_counters *c)
{
	int i;

	for (i = 0; i < LF_C_NR; i++)
		if (nla_put_u64_64bit(skb, lf_attr_of[i], atomic64_read(&c->v[i]),
				      LAZYFILL_A_PAD))
			return -EMSGSIZE;
	return 0;
}

static int lf_put_session(struct sk_buff *skb, struct lf_session *s)
{
	if (nla_put_u32(skb, LAZYFILL_A_SESSION, s->id) ||
	    nla_put_u32(skb, LAZYFILL_A_PID, s->pid_nr) ||
	    nla_put_u8(skb, LAZYFILL_A_EXITED, test_bit(LF_S_EXITED, &s->flags)))
		return -EMSGSIZE;
	return lf_put_counters(skb, &s->c);
}

static int lf_put_global(struct sk_buff *skb)
{
	if (nla_put_u64_64bit(skb, LAZYFILL_A_SESSIONS_LIVE,
			      atomic64_read(&lf_sessions_live), LAZYFILL_A_PAD) ||
	    nla_put_u64_64bit(skb, LAZYFILL_A_SESSIONS_TOTAL,
			      atomic64_read(&lf_sessions_total), LAZYFILL_A_PAD))
		return -EMSGSIZE;
	return lf_put_counters(skb, &lf_global);
}

static int lf_get_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct lf_session *s;
	struct sk_buff *msg;
	void *hdr;
	int ret;

	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &lf_family, 0, LAZYFILL_CMD_GET_STATS);
	if (!hdr) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	if (info->attrs[LAZYFILL_A_SESSION]) {
		u32 id = nla_get_u32(info->attrs[LAZYFILL_A_SESSION]);

		rcu_read_lock();
		s = lf_session_lookup_rcu(id);
		ret = s ? lf_put_session(msg, s) : -ENOENT;
		rcu_read_unlock();
	} else {
		ret = lf_put_global(msg);
	}
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

static int lf_dump_stats(struct sk_buff *skb, struct netlink_callback *cb)
{
	unsigned long id = cb->args[0];
	struct lf_session *s;
	void *hdr;

	rcu_read_lock();
	while ((s = lf_session_next_rcu(&id))) {
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
				  &lf_family, NLM_F_MULTI, LAZYFILL_CMD_GET_STATS);
		if (!hdr)
			break;
		if (lf_put_session(skb, s)) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		id++;
	}
	rcu_read_unlock();
	cb->args[0] = id;
	return skb->len;
}

/*
 * Counters name sessions' tasks too: GENL_ADMIN_PERM, i.e. CAP_NET_ADMIN in
 * the initial user namespace, of both the socket's opener and the sender
 * (netlink_capable()), for the request and the dump alike. There is no other
 * command: LAZYFILL_CMD_EXIT is only ever sent, a request gets EOPNOTSUPP.
 */
static const struct genl_ops lf_ops[] = {
	{
		.cmd = LAZYFILL_CMD_GET_STATS,
		.doit = lf_get_stats,
		.dumpit = lf_dump_stats,
		.flags = GENL_ADMIN_PERM,
	},
};

static struct genl_family lf_family __ro_after_init = {
	.name = LAZYFILL_GENL_NAME,
	.version = LAZYFILL_GENL_VERSION,
	.maxattr = LAZYFILL_A_MAX,
	.policy = lf_policy,
	.module = THIS_MODULE,
	.ops = lf_ops,
	.n_ops = ARRAY_SIZE(lf_ops),
	.mcgrps = lf_mcgrps,
	.n_mcgrps = ARRAY_SIZE(lf_mcgrps),
};

/* Tell the "events" group that s's task exited (process context). */
void lf_genl_exit_event(struct lf_session *s)
{
	struct sk_buff *msg;
	void *hdr;

	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &lf_family, 0, LAZYFILL_CMD_EXIT);
	if (!hdr || lf_put_session(msg, s)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast(&lf_family, msg, 0, 0, GFP_KERNEL);
}

int lf_genl_init(void)
{
	return genl_register_family(&lf_family);
}

void lf_genl_exit(void)
{
	genl_unregister_family(&lf_family);
}

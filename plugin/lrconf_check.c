/* The whole file: settings that only make sense together. */
#include "lrconf_int.h"

/* Report at the line key K was set on. */
static int fail_at(struct lrconf_pos *pos, const struct lr_conf *c, enum lr_key k, const char *why)
{
	pos->line = c->line[k];
	return lrconf_fail(pos, lrconf_key_name(k), "%s", why);
}

/* The TLS keys: with criu-imgd only; a certificate with its key and a CA; none with tls off. */
static int cross_check_tls(const struct lr_conf *c, struct lrconf_pos *pos)
{
	for (int k = LRK_TLS; k <= LRK_TLS_KEY; k++)
		if (c->line[k] && c->source != LR_SRC_IMAGE_SERVER && !c->publish_set)
			return fail_at(pos, c, (enum lr_key)k,
				       "is only used with `source image-server` or `publish` "
				       "(neither is set)");
	if (!c->tls_cert[0] != !c->tls_key[0])
		return fail_at(pos, c, c->tls_cert[0] ? LRK_TLS_CERT : LRK_TLS_KEY,
			       "tls-cert and tls-key go together");
	if (c->tls_cert[0] && !c->tls_ca[0])
		return fail_at(pos, c, LRK_TLS_CERT, "needs tls-ca (X.509 mode: criu-imgd's CA)");
	if (c->tls == LR_TLS_OFF && c->tls_ca[0])
		return fail_at(pos, c, LRK_TLS_CA, "is not used with `tls off`");
	return 0;
}

int lrconf_cross_check(const struct lr_conf *c, struct lrconf_pos *pos)
{
	if (c->line[LRK_IMAGE] && c->source != LR_SRC_IMAGE_SERVER && !c->publish_set) {
		pos->line = c->line[LRK_IMAGE];
		return lrconf_fail(pos, "image",
				   "needs `source image-server HOST:PORT` or `publish HOST:PORT` "
				   "(the source is %s%s)",
				   lrconf_source_name(c->source),
				   c->line[LRK_SOURCE] ? "" : " by default");
	}
	if (c->line[LRK_AUTH_KEY] && c->source != LR_SRC_IMAGE_SERVER && !c->publish_set)
		return fail_at(
		    pos, c, LRK_AUTH_KEY,
		    "is only used with `source image-server` or `publish` (neither is set)");
	if (c->line[LRK_PUBLISH_KEY] && !c->publish_set)
		return fail_at(pos, c, LRK_PUBLISH_KEY, "is only used with `publish HOST:PORT`");
	return cross_check_tls(c, pos);
}

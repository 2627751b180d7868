/*
 * The handshake of a session: HELLO (the version, our challenge), AUTH (the client proves
 * it holds the key of its role, and we prove it back), OPEN (an image by a valid id, for a
 * class of work). Nothing is read from an image before the client has authenticated and
 * opened one.
 */
#include "handlers.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"
#include "wire/wire_qos.h"

int handshake_hello(struct imgd_session *s, const LwHello *h)
{
	if (h->version_min > WIRE_VERSION || h->version_max < WIRE_VERSION)
		return session_fail(s, LW_ERR__LW_E_VERSION, -1,
				    "no common protocol version (client %u..%u, server %u)",
				    h->version_min, h->version_max, WIRE_VERSION);
	LwHelloReply r = LW_HELLO_REPLY__INIT;
	r.version = WIRE_VERSION;
	r.auth_required = true; /* always: no connection reads or publishes without a key */
	r.challenge.data = s->challenge;
	r.challenge.len = sizeof(s->challenge);
	r.server = "criu-imgd";
	r.codec = compress_hello(s, h);
	r.has_codec = r.codec != LW_CODEC__LW_CODEC_NONE; /* an older client's reply unchanged */
	session_reply(s, WT_HELLO_REPLY, &r.base, 0);
	pr_debug("session %lu: hello from '%s'", (unsigned long)s->id, h->client ? h->client : "");
	return 0;
}

/* The key of a role, or NULL when this server takes no such connections. */
static const struct wire_key *role_key(const struct imgd *d, LwRole role)
{
	if (role == LW_ROLE__LW_ROLE_READ)
		return &d->read_key;
	if (role == LW_ROLE__LW_ROLE_PUBLISH && d->o->accept_uploads)
		return &d->upload_key;
	return NULL;
}

int handshake_auth(struct imgd_session *s, const LwAuth *a)
{
	uint8_t want[WIRE_MAC], proof[WIRE_MAC], challenge[WIRE_NONCE];
	const struct wire_key *key = role_key(s->d, a->role);
	int tls_role = session_tls_role(s);

	/* Inside TLS the proofs cover the TLS session (wire_tls_bind): no relaying them. */
	if (session_auth_challenge(s, challenge))
		return session_fail(s, LW_ERR__LW_E_AUTH, -1, "cannot bind to the TLS session");
	if (tls_role >= 0 && (int)a->role != tls_role) {
		session_auth_failed(s);
		return session_fail(s, LW_ERR__LW_E_AUTH, -1,
				    "AUTH as %s on a TLS session of the %s key",
				    wire_role_name(a->role), wire_role_name((LwRole)tls_role));
	}
	if (!key) {
		session_auth_failed(s);
		return session_fail(s, LW_ERR__LW_E_AUTH, -1,
				    "uploads are not accepted here (criu-imgd --root DIR "
				    "--accept-uploads --upload-key FILE)");
	}
	if (wire_auth_client_mac(key, a->role, challenge, a->nonce.data, want) ||
	    !wire_mac_equal(want, a->mac.data)) {
		session_auth_failed(s);
		return session_fail(s, LW_ERR__LW_E_AUTH, -1, "authentication failed (%s)",
				    a->role == LW_ROLE__LW_ROLE_READ
					? "not the readers' key, --auth-key"
					: "not the publishers' key, --upload-key");
	}
	if (wire_auth_server_mac(key, a->role, challenge, a->nonce.data, proof))
		return session_fail(s, LW_ERR__LW_E_AUTH, -1, "cannot compute the server proof");
	LwAuthOk ok = LW_AUTH_OK__INIT;
	ok.mac.data = proof;
	ok.mac.len = sizeof(proof);
	session_reply(s, WT_AUTH_OK, &ok.base, 0);
	s->role = a->role;
	s->counted = true;
	s->d->results[CR_ACCEPTED]++;
	char how[96];
	session_describe_tls(s, how, sizeof(how));
	pr_info("session %lu: authenticated to %s (%s)", (unsigned long)s->id,
		wire_role_name(s->role), how);
	return 0;
}

int handshake_open(struct imgd_session *s, const LwOpen *o)
{
	struct errmsg e;

	if (o->image[0] == '.') /* uploads in progress live below the root as .upload-* */
		return session_fail(s, LW_ERR__LW_E_NOIMAGE, -1, "open '%s': no such image",
				    o->image);
	int rc = catalog_get(&s->d->cat, o->image, &s->img, &e);
	if (rc)
		return session_fail(s, rc == -ENOENT ? LW_ERR__LW_E_NOIMAGE : LW_ERR__LW_E_IO, -1,
				    "open '%s': %s", o->image, e.msg);
	s->cls = o->class_ == LW_CLASS__LW_CLASS_URGENT ? CONN_URGENT
		 : o->class_ == LW_CLASS__LW_CLASS_META ? CONN_META
							: CONN_BULK;
	if (s->cls == CONN_URGENT && (rc = wire_qos_mark_fault(session_fd(s), s->d->o->fault_dscp)))
		pr_warn("session %lu: the fault connection goes unmarked (DSCP %d): %s",
			(unsigned long)s->id, s->d->o->fault_dscp, strerror(-rc));
	LwOpenReply r = LW_OPEN_REPLY__INIT;
	r.nr_tasks = (uint32_t)s->img->set.nr_tasks;
	r.lazy_pages = s->img->lazy_pages;
	r.zero_pages = s->img->zero_pages;
	r.dump_checksums = s->img->dump_sums;
	r.has_fingerprint = s->img->fingerprint != 0;
	r.fingerprint = s->img->fingerprint;
	r.has_sums_fingerprint = s->img->sums_fp != 0;
	r.sums_fingerprint = s->img->sums_fp;
	session_reply(s, WT_OPEN_REPLY, &r.base, 0);
	pr_info("session %lu: %s opened image %s (%s connection)", (unsigned long)s->id, s->peer,
		s->img->id, conn_class_name(s->cls));
	return 0;
}

/* ops/probe.c: one side's connection check, `probe` itself and each side of `preflight` (see
 * probe.h). */
#include "ops/probe.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

/* ---- one side ------------------------------------------------------------------------------------ */

static void copy_caps(const struct imap_conn *c, struct imap_strlist *out)
{
	const struct imap_strlist *caps = imap_conn_caps(c);

	for (size_t i = 0; caps && i < caps->n; i++)
		imap_strlist_add(out, caps->v[i], strlen(caps->v[i]));
}

/* The certificate failed verification: connect once more without verification, only to show it.
 * No credentials go on this connection. */
static void look_at_certificate(const struct imap_options *opts, struct preflight_login *out)
{
	struct imap_options o = *opts;
	struct imap_conn *c = NULL;
	struct fleet_err e;
	enum fleet_log_level lvl = fleet_log_get_level();

	o.ep.insecure = 1;
	o.password = NULL;
	o.oauth_token = NULL;
	o.authuser = NULL;
	/* The transport warns about every unverified connection; this one is ours, not the user's. */
	if (lvl < FLEET_LOG_DEBUG)
		fleet_log_set_level(FLEET_LOG_ERROR);
	if (imap_conn_open(&o, &c, &e) == 0) {
		struct io_stream *s = imap_conn_stream(c);

		if (io_stream_is_tls(s) && io_stream_tls_info(s, &out->tls_info) == 0) {
			out->have_tls_info = 1;
			out->cert_from_look = 1;
		}
		if (!out->greeting[0])
			snprintf(out->greeting, sizeof(out->greeting), "%s", imap_conn_greeting(c));
		imap_conn_close(&c);
	}
	fleet_log_set_level(lvl);
}

int preflight_login(const struct imap_options *opts, int login, int look_on_verify_failure,
		    struct imap_conn **conn, struct preflight_login *out)
{
	struct imap_conn *c = NULL;
	struct io_stream *s;
	struct fleet_err e;

	memset(out, 0, sizeof(*out));
	fleet_err_clear(&out->err);
	out->stage = PREFLIGHT_STAGE_CONNECT;
	if (conn)
		*conn = NULL;
	if (imap_conn_open(opts, &c, &out->err) < 0) {
		if (look_on_verify_failure && strcmp(out->err.code, IO_ERR_TLS_VERIFY) == 0 &&
		    opts->ep.mode != IO_TLS_PLAIN)
			look_at_certificate(opts, out);
		return -1;
	}
	s = imap_conn_stream(c);
	out->tls = io_stream_is_tls(s);
	if (out->tls && io_stream_tls_info(s, &out->tls_info) == 0)
		out->have_tls_info = 1;
	snprintf(out->greeting, sizeof(out->greeting), "%s", imap_conn_greeting(c));
	copy_caps(c, &out->caps_before);
	if (login) {
		out->stage = PREFLIGHT_STAGE_LOGIN;
		if (imap_conn_login(c, &out->err) < 0) {
			if (!imap_conn_is_broken(c))
				(void)imap_logout(c, &e);
			imap_conn_close(&c);
			return -1;
		}
		copy_caps(c, &out->caps_after);
	}
	out->stage = PREFLIGHT_STAGE_DONE;
	if (conn) {
		*conn = c;
	} else {
		(void)imap_logout(c, &e);
		imap_conn_close(&c);
	}
	return 0;
}

void preflight_login_release(struct preflight_login *l)
{
	imap_strlist_release(&l->caps_before);
	imap_strlist_release(&l->caps_after);
}

void preflight_tls_text(const struct preflight_login *l, const struct io_endpoint *ep, char *out, size_t cap)
{
	if (l->stage == PREFLIGHT_STAGE_CONNECT && strncmp(l->err.code, IO_ERR_TLS, strlen(IO_ERR_TLS)) == 0) {
		snprintf(out, cap, "failed: %s", l->err.message);
		return;
	}
	if (ep->mode == IO_TLS_PLAIN) {
		snprintf(out, cap, "cleartext (plain chosen explicitly)");
		return;
	}
	if (!l->have_tls_info) {
		snprintf(out, cap, "%s",
			 l->stage == PREFLIGHT_STAGE_CONNECT ? "unknown (no connection)" : "TLS");
		return;
	}
	if (l->tls_info.verified)
		snprintf(out, cap, "%s verified", l->tls_info.version);
	else if (strcmp(l->tls_info.verify_result, "ok") == 0)
		snprintf(out, cap, "%s NOT verified (insecure; verification would pass)",
			 l->tls_info.version);
	else
		snprintf(out, cap, "%s NOT verified (insecure; verification would fail: %s)",
			 l->tls_info.version, l->tls_info.verify_result);
}

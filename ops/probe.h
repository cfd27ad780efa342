/* ops/probe.h: one side's connection check (design section 7): connect, TLS and certificate,
 * greeting, capabilities before and after login, login. `imapfleet probe` is that and nothing
 * else; `preflight` runs it for both sides of every account. */
#ifndef IMAPFLEET_OPS_PROBE_H
#define IMAPFLEET_OPS_PROBE_H

/* probe's connect and command timeout when --timeout is not given: a server that has not answered
 * in 30 s is reported as not answering (preflight waits as long: PREFLIGHT_TIMEOUT_MS). */
#define PROBE_TIMEOUT_MS 30000u

#include <stddef.h>

#include "common/err.h"
#include "io/imap.h"

/* ---- one side: connect, TLS, login --------------------------------------------------------------- */

enum preflight_stage {
	PREFLIGHT_STAGE_CONNECT = 0, /* TCP, TLS handshake and verification, greeting, STARTTLS */
	PREFLIGHT_STAGE_LOGIN,	     /* the login itself (refused, LOGINDISABLED, cleartext refused ...) */
	PREFLIGHT_STAGE_DONE	     /* logged in (or connected, when no login was asked for) */
};

struct preflight_login {
	enum preflight_stage stage; /* where it stopped: DONE on success */
	int tls;		    /* the session was TLS (implicit or after STARTTLS) */
	int have_tls_info;	    /* tls_info is filled */
	int cert_from_look;	    /* tls_info comes from a second, unverified look after the
				       certificate failed verification (no login was tried there) */
	struct io_tls_info tls_info;
	char greeting[IMAP_GREETING_MAX];
	struct imap_strlist caps_before; /* after STARTTLS when there was one, before login */
	struct imap_strlist caps_after;	 /* after login */
	struct fleet_err err;		 /* why it stopped, when stage != DONE */
};

/* Connects with opts and, when login is non-zero, logs in. Returns 0 with out->stage DONE, or -1
 * with out->stage and out->err saying where and why. With look_on_verify_failure, a certificate
 * that fails verification (code TLS_VERIFY) is looked at once more without verification, only to
 * fill tls_info for the report: no credentials are sent on that connection (only what opening
 * takes: STARTTLS, CAPABILITY) and it is closed at once; while it is open the log level is lowered
 * to error so that the transport's "verification is disabled" warning, which is not the user's
 * doing, is not printed, which makes that option for single-threaded callers (probe). When conn
 * is not NULL and the call succeeds, *conn is the open connection (the caller closes it);
 * otherwise the connection is logged out and closed here. Without look_on_verify_failure any
 * number of threads may call this at once. Release out with preflight_login_release. */
int preflight_login(const struct imap_options *opts, int login, int look_on_verify_failure,
		    struct imap_conn **conn, struct preflight_login *out);
void preflight_login_release(struct preflight_login *l);

/* "TLSv1.3 verified", "TLSv1.2 NOT verified (insecure): self-signed certificate", "cleartext",
 * "failed: certificate verify failed ...": the TLS column of the report. */
void preflight_tls_text(const struct preflight_login *l, const struct io_endpoint *ep, char *out, size_t cap);

#endif

/* scheduler/token_share.h: the state database as the OAuth token store of every worker host.
 *
 * Glue between io/oauth.h (struct oauth_shared) and state/secret.h (state_token_*): a process asks
 * the state before it asks a token endpoint, so that every host and every worker thread of a run
 * share one application token (Microsoft 365) or one token per user (Google), sealed with the
 * key file's key, and a refusal of the credentials stops the other hosts too.
 *
 * One token_share per worker thread (it uses that thread's state connection, which must not be in
 * a transaction when a login asks for a token). Strings and the key are borrowed.
 */
#ifndef IMAPFLEET_SCHEDULER_TOKEN_SHARE_H
#define IMAPFLEET_SCHEDULER_TOKEN_SHARE_H

#include "io/oauth.h"
#include "state/secret.h"
#include "state/state.h"

struct token_share {
	struct oauth_shared ops; /* hand &ops to oauth_cred_ctx.shared */
	struct state_conn *sc;
	const unsigned char *key; /* STATE_SECRET_KEY_LEN bytes */
};

/* How long a host waits for the token lock another host holds while it asks the token endpoint:
 * longer than that endpoint's timeout (30 s), so a host waits for another host's fetch. */
#define TOKEN_SHARE_LOCK_WAIT_MS 45000u

/* Fills ts for sc and key. */
void token_share_init(struct token_share *ts, struct state_conn *sc, const unsigned char *key);

#endif

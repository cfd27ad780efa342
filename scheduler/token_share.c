/* scheduler/token_share.c: OAuth tokens shared through the state database (see token_share.h). */
#include "scheduler/token_share.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

static int share_begin(void *ctx, const char *key, const char *ckey, struct oauth_stored *out, struct fleet_err *err)
{
	struct token_share *ts = ctx;
	struct state_token t;

	memset(out, 0, sizeof(*out));
	if (state_token_begin(ts->sc, ts->key, key, ckey, TOKEN_SHARE_LOCK_WAIT_MS, &t, err) < 0)
		return -1;
	out->token = t.token; /* the same heap string, wiped by oauth_stored_release */
	t.token = NULL;
	if (out->token)
		fleet_log_add_secret(out->token);
	out->expires_at = t.expires_at;
	out->fetched_at = t.fetched_at;
	if (t.refused) {
		out->refused = 1;
		fleet_err_set(&out->refusal, FLEET_ERR_AUTH, FLEET_SCOPE_RUN, t.refused_code, "%s", t.refused_message);
		if (t.refused_detail[0])
			fleet_err_detail(&out->refusal, "%s", t.refused_detail);
	}
	state_token_release(&t);
	return 0;
}

static void share_end(void *ctx, const char *key, const char *ckey, const char *token, int64_t expires_at,
		      int64_t fetched_at, const struct fleet_err *refusal)
{
	struct token_share *ts = ctx;
	struct fleet_err err;

	if (state_token_end(ts->sc, ts->key, key, ckey, token, expires_at, fetched_at, refusal ? refusal->code : NULL,
			    refusal ? refusal->message : NULL, refusal ? refusal->detail : NULL, &err) < 0)
		log_warn("could not share an OAuth token with the other hosts: %s (this host keeps it)", err.message);
}

void token_share_init(struct token_share *ts, struct state_conn *sc, const unsigned char *key)
{
	memset(ts, 0, sizeof(*ts));
	ts->sc = sc;
	ts->key = key;
	ts->ops.begin = share_begin;
	ts->ops.end = share_end;
	ts->ops.ctx = ts;
}

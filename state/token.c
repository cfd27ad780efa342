/* state/token.c: OAuth tokens shared by every worker host (see secret.h). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/util.h"
#include "common/log.h"
#include "state/secret.h"
#include "state/state_private.h"

#define TOKEN_AAD_PREFIX "imapfleet token v1 "
#define KEY_HASH_LEN	 64 /* hex of HMAC-SHA256 */

/* The row of a cache key: HMAC-SHA256 under the key file's key, in hex. */
static void key_hash(const unsigned char key[STATE_SECRET_KEY_LEN], const char *cache_key, char out[KEY_HASH_LEN + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	HMAC(EVP_sha256(), key, STATE_SECRET_KEY_LEN, (const unsigned char *)cache_key, strlen(cache_key), mac, &len);
	fleet_hex(mac, KEY_HASH_LEN / 2, out);
	out[KEY_HASH_LEN] = '\0';
}

/* What the row is for, shown to operators: the cache key without its fingerprint. */
static char *key_name(const char *cache_key)
{
	const char *p = strstr(cache_key, " #");

	return xstrndup(cache_key, p ? (size_t)(p - cache_key) : strlen(cache_key));
}

static size_t make_aad(unsigned char *aad, const char hash[KEY_HASH_LEN + 1])
{
	size_t n = sizeof(TOKEN_AAD_PREFIX) - 1;

	memcpy(aad, TOKEN_AAD_PREFIX, n);
	memcpy(aad + n, hash, KEY_HASH_LEN);
	return n + KEY_HASH_LEN;
}

void state_token_release(struct state_token *t)
{
	if (t->token)
		state_secret_free(&t->token);
	memset(t, 0, sizeof(*t));
}

/* The bytes of a hex column (heap, *len of them), or NULL when it is empty or not hex. */
static unsigned char *unhex(const char *s, long *len)
{
	size_t n = strlen(s) / 2;
	unsigned char *out;

	*len = 0;
	if (!n)
		return NULL;
	out = xmalloc(n);
	if (fleet_unhex(s, out, n) < 0) {
		xfree(&out);
		return NULL;
	}
	*len = (long)n;
	return out;
}

/* Decrypts the token columns of row 0 (key_id, nonce, ciphertext, tag in hex). A token sealed under
 * another key is simply not there (its row cannot be found by this key anyway). */
static void read_token(const PGresult *res, const unsigned char key[STATE_SECRET_KEY_LEN], const char *hash,
		       struct state_token *out)
{
	char key_id[STATE_SECRET_KEY_ID_LEN + 1];
	unsigned char aad[sizeof(TOKEN_AAD_PREFIX) + KEY_HASH_LEN];
	long nlen, clen, tlen;
	unsigned char *nonce, *ct, *tag;
	struct fleet_err derr;

	state_secret_key_id(key, key_id);
	if (strcmp(state_get_str(res, 0, 0), key_id) != 0)
		return;
	nonce = unhex(state_get_str(res, 0, 1), &nlen);
	ct = unhex(state_get_str(res, 0, 2), &clen);
	tag = unhex(state_get_str(res, 0, 3), &tlen);
	if (nonce && ct && tag && nlen == STATE_SECRET_NONCE_LEN && tlen == STATE_SECRET_TAG_LEN &&
	    state_open_aad(key, aad, make_aad(aad, hash), nonce, ct, (size_t)clen, tag, &out->token, &derr) == 0) {
		out->expires_at = state_get_i64(res, 0, 4);
		out->fetched_at = state_get_i64(res, 0, 5);
	} else {
		log_warn("state: a stored OAuth token could not be decrypted: %s; fetching a new one",
			 nonce && ct && tag ? derr.message : "malformed");
	}
	if (ct)
		OPENSSL_cleanse(ct, (size_t)clen);
	xfree(&nonce);
	xfree(&ct);
	xfree(&tag);
}

int state_token_begin(struct state_conn *sc, const unsigned char key[STATE_SECRET_KEY_LEN], const char *cache_key,
		      const char *cred_key, unsigned lock_wait_ms, struct state_token *out, struct fleet_err *err)
{
	char hash[KEY_HASH_LEN + 1], chash[KEY_HASH_LEN + 1], wait[STATE_NUM_MAX + 4], hold[STATE_NUM_MAX];
	char *name = key_name(cache_key);
	const char *p[3];
	PGresult *res;

	memset(out, 0, sizeof(*out));
	key_hash(key, cache_key, hash);
	key_hash(key, cred_key, chash);
	snprintf(wait, sizeof(wait), "%ums", lock_wait_ms ? lock_wait_ms : 60000u);
	if (state_begin(sc, err) < 0) {
		xfree(&name);
		return -1;
	}
	p[0] = wait;
	p[1] = hash;
	p[2] = name;
	if (state_exec_cmd(sc, "limit the wait for a token lock", "SELECT set_config('lock_timeout', $1, true)", 1, p, 0,
			   err) < 0 ||
	    state_exec_cmd(sc, "register a token key",
			   "INSERT INTO oauth_token (key_hash, name) VALUES ($1, $2) ON CONFLICT (key_hash) DO NOTHING", 2,
			   p + 1, 0, err) < 0)
		goto fail;
	xfree(&name);
	/* Waits here while another host fetches this token. */
	res = state_exec(sc, "lock a token",
			 "SELECT coalesce(key_id, ''), coalesce(encode(nonce, 'hex'), ''),"
			 " coalesce(encode(ciphertext, 'hex'), ''), coalesce(encode(tag, 'hex'), ''),"
			 " coalesce(extract(epoch FROM expires_at)::bigint, 0),"
			 " coalesce(extract(epoch FROM fetched_at)::bigint, 0)"
			 " FROM oauth_token WHERE key_hash = $1 FOR UPDATE",
			 1, p + 1, NULL, NULL, 0, err);
	if (!res)
		goto fail;
	if (PQntuples(res) == 1 && state_get_str(res, 0, 0)[0])
		read_token(res, key, hash, out);
	PQclear(res);
	p[0] = chash;
	p[1] = state_fmt_i64(hold, STATE_TOKEN_REFUSAL_HOLD_S);
	res = state_exec(sc, "read a refusal of the credentials",
			 "SELECT refused_code, refused_message, coalesce(refused_detail, '') FROM oauth_token"
			 " WHERE key_hash = $1 AND refused_at > now() - make_interval(secs => $2::int)",
			 2, p, NULL, NULL, 0, err);
	if (!res)
		goto fail;
	if (PQntuples(res) == 1) {
		out->refused = 1;
		snprintf(out->refused_code, sizeof(out->refused_code), "%s", state_get_str(res, 0, 0));
		snprintf(out->refused_message, sizeof(out->refused_message), "%s", state_get_str(res, 0, 1));
		snprintf(out->refused_detail, sizeof(out->refused_detail), "%s", state_get_str(res, 0, 2));
	}
	PQclear(res);
	return 0;
fail:
	xfree(&name);
	state_rollback(sc);
	state_token_release(out);
	return -1;
}

static int store_token(struct state_conn *sc, const unsigned char key[STATE_SECRET_KEY_LEN], const char *hash,
		       const char *token, int64_t expires_at, int64_t fetched_at, struct fleet_err *err)
{
	unsigned char aad[sizeof(TOKEN_AAD_PREFIX) + KEY_HASH_LEN], nonce[STATE_SECRET_NONCE_LEN],
	    tag[STATE_SECRET_TAG_LEN];
	size_t len = strlen(token);
	unsigned char *ct = xmalloc(len + 1);
	char key_id[STATE_SECRET_KEY_ID_LEN + 1], e[STATE_NUM_MAX], f[STATE_NUM_MAX];
	char *hn, *hc, *ht;
	const char *p[7];
	int rc = -1;

	state_secret_key_id(key, key_id);
	if (state_seal_aad(key, aad, make_aad(aad, hash), token, len, nonce, ct, tag, err) < 0)
		goto out;
	hn = OPENSSL_buf2hexstr(nonce, sizeof(nonce));
	hc = OPENSSL_buf2hexstr(ct, (long)len);
	ht = OPENSSL_buf2hexstr(tag, sizeof(tag));
	/* OPENSSL_buf2hexstr separates bytes with ':': decode() wants them gone. */
	p[0] = hash;
	p[1] = key_id;
	p[2] = hn;
	p[3] = hc;
	p[4] = ht;
	p[5] = state_fmt_i64(e, expires_at);
	p[6] = state_fmt_i64(f, fetched_at);
	rc = state_exec_cmd(sc, "store a token",
			    "UPDATE oauth_token SET key_id = $2, nonce = decode(replace($3, ':', ''), 'hex'),"
			    " ciphertext = decode(replace($4, ':', ''), 'hex'), tag = decode(replace($5, ':', ''), 'hex'),"
			    " expires_at = to_timestamp($6::bigint), fetched_at = to_timestamp($7::bigint),"
			    " fetches = fetches + 1, updated_at = now() WHERE key_hash = $1",
			    7, p, 0, err);
	if (hc)
		OPENSSL_cleanse(hc, strlen(hc));
	OPENSSL_free(hn);
	OPENSSL_free(hc);
	OPENSSL_free(ht);
out:
	OPENSSL_cleanse(ct, len + 1);
	xfree(&ct);
	return rc;
}

int state_token_end(struct state_conn *sc, const unsigned char key[STATE_SECRET_KEY_LEN], const char *cache_key,
		    const char *cred_key, const char *token, int64_t expires_at, int64_t fetched_at,
		    const char *refusal_code, const char *refusal_message, const char *refusal_detail,
		    struct fleet_err *err)
{
	char hash[KEY_HASH_LEN + 1];

	if (token) {
		key_hash(key, cache_key, hash);
		if (store_token(sc, key, hash, token, expires_at, fetched_at, err) < 0)
			goto fail;
	}
	if (refusal_code) {
		char *name = key_name(cred_key);
		const char *p[5];
		int rc;

		key_hash(key, cred_key, hash);
		p[0] = hash;
		p[1] = name;
		p[2] = refusal_code;
		p[3] = refusal_message ? refusal_message : "";
		p[4] = refusal_detail ? refusal_detail : "";
		rc = state_exec_cmd(sc, "store a refusal of the credentials",
				    "INSERT INTO oauth_token (key_hash, name, refused_at, refused_code, refused_message,"
				    " refused_detail) VALUES ($1, $2, now(), $3, $4, $5) ON CONFLICT (key_hash) DO UPDATE"
				    " SET refused_at = now(), refused_code = $3, refused_message = $4, refused_detail = $5,"
				    " updated_at = now()",
				    5, p, 0, err);
		xfree(&name);
		if (rc < 0)
			goto fail;
	}
	return state_commit(sc, err);
fail:
	state_rollback(sc);
	return -1;
}

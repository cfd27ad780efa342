/* state/secret.h: credentials for `worker` hosts, stored encrypted in the state database.
 *
 * Passwords are never stored in clear (design section 5). Each value is sealed with AES-256-GCM
 * under a 32-byte key that lives in a key file the database never sees (`.imapfleet/key` by
 * default, mode 0600, created on first use; `--key-file`). Every value has its own random 96-bit
 * nonce, and the associated data binds it to its job and side, so a ciphertext moved to another
 * row does not decrypt. The key id (a digest prefix of the key) is stored beside each value so a
 * wrong key is reported as such. Not storing credentials at all is the caller's choice: it simply
 * never calls state_credential_put.
 *
 * Plaintexts handed out are heap strings the caller must wipe and free with state_secret_free.
 * Functions taking a state_conn follow the rules of state.h (one connection per thread).
 */
#ifndef IMAPFLEET_STATE_SECRET_H
#define IMAPFLEET_STATE_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "state/state.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* the key file could not be read, made or used */
#define STATE_ERR_KEY_FILE "KEY_FILE"
/* a key file readable by others */
#define STATE_ERR_KEY_FILE_MODE "KEY_FILE_MODE"
/* the key file is not the one the run's credentials were sealed with */
#define STATE_ERR_KEY_MISMATCH "KEY_MISMATCH"
/* a credential too large to store */
#define STATE_ERR_CREDENTIAL_SIZE "CREDENTIAL_SIZE"
/* a credential could not be sealed */
#define STATE_ERR_CREDENTIAL_ENCRYPT "CREDENTIAL_ENCRYPT"
/* a stored credential could not be opened */
#define STATE_ERR_CREDENTIAL_DECRYPT "CREDENTIAL_DECRYPT"
/* a side other than 1 or 2 */
#define STATE_ERR_BAD_SIDE "BAD_SIDE"
/* an unknown credential kind */
#define STATE_ERR_BAD_KIND "BAD_KIND"
/* the random generator failed */
#define STATE_ERR_RAND "RAND"

#define STATE_SECRET_KEY_LEN	      32
#define STATE_SECRET_NONCE_LEN	      12
#define STATE_SECRET_TAG_LEN	      16
#define STATE_SECRET_KEY_ID_LEN	      16 /* hex characters */
#define STATE_SECRET_DEFAULT_KEY_FILE ".imapfleet/key"

/* Loads the key from path (NULL = STATE_SECRET_DEFAULT_KEY_FILE), or creates it with RAND_bytes when
 * it does not exist (its directory too, mode 0700; the file mode 0600, written as 64 hex digits).
 * Refuses a key file that group or others may read or write (FLEET_ERR_PERMANENT, code
 * "KEY_FILE_MODE", with the chmod to run), and one that is not 32 bytes or 64 hex digits. */
int state_secret_key_load_or_create(const char *path, unsigned char key[STATE_SECRET_KEY_LEN],
				    struct fleet_err *err);
/* Hex digest prefix identifying a key (NUL-terminated, STATE_SECRET_KEY_ID_LEN characters). */
void state_secret_key_id(const unsigned char key[STATE_SECRET_KEY_LEN],
			 char out[STATE_SECRET_KEY_ID_LEN + 1]);

/* A keyed hash of a credential (HMAC-SHA256 under the key, with a label and the credential's kind,
 * "password" say, in front): the same credential gives the same bytes under the same key, and the
 * bytes tell nothing about the credential without the key. For "has this credential changed?"
 * (a refused login is not tried again with the same one). */
#define STATE_SECRET_FP_LEN 32
void state_secret_fingerprint(const unsigned char key[STATE_SECRET_KEY_LEN], const char *kind, const void *material,
			      size_t len, unsigned char out[STATE_SECRET_FP_LEN]);

/* Low level: seal / open one value bound to (job_id, side). ct has room for len bytes.
 * state_secret_open returns a NUL-terminated heap copy (free with state_secret_free); a wrong key
 * or altered bytes fail with FLEET_ERR_PERMANENT, code "CREDENTIAL_DECRYPT". */
int state_secret_seal(const unsigned char key[STATE_SECRET_KEY_LEN], int64_t job_id, int side, const void *pt,
		      size_t len, unsigned char nonce[STATE_SECRET_NONCE_LEN], unsigned char *ct,
		      unsigned char tag[STATE_SECRET_TAG_LEN], struct fleet_err *err);
int state_secret_open(const unsigned char key[STATE_SECRET_KEY_LEN], int64_t job_id, int side,
		      const unsigned char nonce[STATE_SECRET_NONCE_LEN], const unsigned char *ct, size_t len,
		      const unsigned char tag[STATE_SECRET_TAG_LEN], char **plaintext, struct fleet_err *err);
/* Wipes (OPENSSL_cleanse) and frees a plaintext; sets *p to NULL. */
void state_secret_free(char **p);

/* Stores (replaces) the credential of a job's side (1 = source, 2 = destination), encrypted. */
int state_credential_put(struct state_conn *sc, int64_t job_id, int side, const char *plaintext,
			 const unsigned char key[STATE_SECRET_KEY_LEN], struct fleet_err *err);
/* The same for n values in one statement (import of 10,000 rows). */
int state_credential_put_many(struct state_conn *sc, const int64_t *job_ids, const int *sides,
			      const char *const *plaintexts, size_t n,
			      const unsigned char key[STATE_SECRET_KEY_LEN], struct fleet_err *err);
/* Decrypts a job's credential into *plaintext (state_secret_free it). Returns 1, or 0 when none is
 * stored. A value sealed under another key fails with FLEET_ERR_PERMANENT, code "KEY_MISMATCH". */
int state_credential_get(struct state_conn *sc, int64_t job_id, int side,
			 const unsigned char key[STATE_SECRET_KEY_LEN], char **plaintext,
			 struct fleet_err *err);
/* What a stored credential is (the kind column, bound into the sealing): a password, or where a
 * worker host gets the secret at each login (the accounts file's passcmd, token, tokenfile and
 * tokencmd columns; a path or a command line is sealed like a secret). */
#define STATE_CRED_PASSWORD  "password"
#define STATE_CRED_PASSCMD   "passcmd"
#define STATE_CRED_TOKEN     "token"
#define STATE_CRED_TOKENFILE "tokenfile"
#define STATE_CRED_TOKENCMD  "tokencmd"
#define STATE_CRED_KIND_MAX  16
/* state_credential_put_many with a kind per value (NULL array or element: password). */
int state_credential_put_kinds(struct state_conn *sc, const int64_t *job_ids, const int *sides,
			       const char *const *kinds, const char *const *plaintexts, size_t n,
			       const unsigned char key[STATE_SECRET_KEY_LEN], struct fleet_err *err);
/* state_credential_get that also says the kind; state_credential_get returns 0 for a credential
 * that is not a password. */
int state_credential_get_kind(struct state_conn *sc, int64_t job_id, int side,
			      const unsigned char key[STATE_SECRET_KEY_LEN], char **plaintext,
			      char kind[STATE_CRED_KIND_MAX + 1], struct fleet_err *err);
/* Removes the stored credentials of a job (both sides). */
int state_credential_delete(struct state_conn *sc, int64_t job_id, struct fleet_err *err);

/* ---- OAuth tokens shared by every worker host (state/token.c) ----------------------------------
 *
 * One row per cache key (io/oauth.h: "NAME #FINGERPRINT"), found by HMAC-SHA256(key, cache key):
 * the table shows NAME only. The token is sealed with AES-256-GCM bound to that row. A fetch is
 * serialised across hosts: state_token_begin opens a transaction and locks the row (another host
 * that fetches meanwhile holds it: this one waits, at most lock_wait_ms, then fails), and
 * state_token_end stores the outcome and commits. Between the two the connection is in a
 * transaction: nothing else may use it.
 */
struct state_token {
	char *token;		    /* heap (state_secret_free), or NULL when none is stored */
	int64_t expires_at, fetched_at; /* wall-clock seconds */
	int refused;		    /* a refusal of the credentials (ckey) younger than the hold */
	char refused_code[FLEET_ERR_CODE_MAX]; /* the refusal as its fleet_err had it */
	char refused_message[FLEET_ERR_TEXT_MAX];
	char refused_detail[FLEET_ERR_TEXT_MAX];
};

/* How long a stored refusal of credentials holds before a host may ask the endpoint again. */
#define STATE_TOKEN_REFUSAL_HOLD_S 120

int state_token_begin(struct state_conn *sc, const unsigned char key[STATE_SECRET_KEY_LEN], const char *cache_key,
		      const char *cred_key, unsigned lock_wait_ms, struct state_token *out, struct fleet_err *err);
/* Stores token (may be NULL) for cache_key, or a refusal (refusal_code non-NULL) for cred_key,
 * then commits. On error the transaction is rolled back. */
int state_token_end(struct state_conn *sc, const unsigned char key[STATE_SECRET_KEY_LEN], const char *cache_key,
		    const char *cred_key, const char *token, int64_t expires_at, int64_t fetched_at,
		    const char *refusal_code, const char *refusal_message, const char *refusal_detail,
		    struct fleet_err *err);
/* Wipes a state_token. */
void state_token_release(struct state_token *t);

#endif

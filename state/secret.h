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
/* Removes the stored credentials of a job (both sides). */
int state_credential_delete(struct state_conn *sc, int64_t job_id, struct fleet_err *err);

#endif

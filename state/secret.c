/* state/secret.c: the key file and AES-256-GCM sealing of stored credentials. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/alloc.h"
#include "common/util.h"
#include "state/secret.h"
#include "state/state_private.h"

#define AAD_PREFIX "imapfleet credential v1"

/* ---- the key file --------------------------------------------------------------------------- */

static int key_load(const char *path, int fd, unsigned char key[STATE_SECRET_KEY_LEN], struct fleet_err *err)
{
	unsigned char buf[2 * STATE_SECRET_KEY_LEN + 4];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int rc = -1;

	if (fstat(fd, &st) < 0)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE,
				     "could not read key file %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE,
				     "cannot use key file %s: not a regular file", path);
	if (st.st_mode & 077) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE_MODE,
			      "cannot use key file %s: it is accessible by group or others (mode %04o)", path,
			      (unsigned)(st.st_mode & 07777));
		fleet_err_detail(err, "run: chmod 600 %s", path);
		return -1;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE,
				      "could not read key file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 2 * STATE_SECRET_KEY_LEN) {
		buf[len] = '\0';
		if (fleet_unhex((const char *)buf, key, STATE_SECRET_KEY_LEN) < 0)
			goto bad;
		rc = 0;
		goto out;
	}
	if (len == STATE_SECRET_KEY_LEN && (size_t)st.st_size == STATE_SECRET_KEY_LEN) {
		memcpy(key, buf, STATE_SECRET_KEY_LEN);
		rc = 0;
		goto out;
	}
bad:
	fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE,
		      "cannot use key file %s: it must hold 64 hexadecimal digits (a 32-byte key)", path);
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int key_create(const char *path, unsigned char key[STATE_SECRET_KEY_LEN], struct fleet_err *err)
{
	char text[2 * STATE_SECRET_KEY_LEN + 1];
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash && slash != path) {
		char *dir = xstrndup(path, (size_t)(slash - path));

		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE,
				      "could not create the directory of key file %s: %s", path,
				      strerror(errno));
			xfree(&dir);
			return -1;
		}
		xfree(&dir);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno == EEXIST
			   ? 1
			   : fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE,
					   "could not create key file %s: %s", path, strerror(errno));
	if (RAND_bytes(key, STATE_SECRET_KEY_LEN) != 1) {
		close(fd);
		unlink(path);
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_RAND,
				     "could not create key file %s: no random bytes", path);
	}
	fleet_hex(key, STATE_SECRET_KEY_LEN, text);
	text[2 * STATE_SECRET_KEY_LEN] = '\n';
	if (write(fd, text, sizeof(text)) != (ssize_t)sizeof(text) || fsync(fd) < 0) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE,
			      "could not write key file %s: %s", path, strerror(errno));
		OPENSSL_cleanse(text, sizeof(text));
		close(fd);
		unlink(path);
		return -1;
	}
	OPENSSL_cleanse(text, sizeof(text));
	close(fd);
	return 0;
}

int state_secret_key_load_or_create(const char *path, unsigned char key[STATE_SECRET_KEY_LEN],
				    struct fleet_err *err)
{
	if (!path)
		path = STATE_SECRET_DEFAULT_KEY_FILE;
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		int rc;

		if (fd >= 0) {
			rc = key_load(path, fd, key, err);
			close(fd);
			fleet_passfile_forbid(path); /* never sent as a password, whatever a row names */
			return rc;
		}
		if (errno != ENOENT)
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE,
					     "could not open key file %s: %s", path, strerror(errno));
		rc = key_create(path, key, err);
		if (rc <= 0)
			return rc;
		/* Another process created it first: load theirs. */
	}
	return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE,
			     "could not open key file %s", path);
}

void state_secret_key_id(const unsigned char key[STATE_SECRET_KEY_LEN], char out[STATE_SECRET_KEY_ID_LEN + 1])
{
	static const char label[] = "imapfleet key id v1";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, label, sizeof(label) - 1) != 1 ||
	    EVP_DigestUpdate(ctx, key, STATE_SECRET_KEY_LEN) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		memset(md, 0, sizeof(md));
	EVP_MD_CTX_free(ctx);
	fleet_hex(md, STATE_SECRET_KEY_ID_LEN / 2, out);
	out[STATE_SECRET_KEY_ID_LEN] = '\0';
}

void state_secret_fingerprint(const unsigned char key[STATE_SECRET_KEY_LEN], const char *kind, const void *material,
			      size_t len, unsigned char out[STATE_SECRET_FP_LEN])
{
	static const char label[] = "imapfleet credential fingerprint v1";
	unsigned char buf[512], *m = buf;
	size_t kl = strlen(kind), n = sizeof(label) + kl + 1 + len;
	unsigned int outlen = 0;

	if (n > sizeof(buf))
		m = xmalloc(n);
	memcpy(m, label, sizeof(label)); /* with its NUL: label, kind and material cannot run together */
	memcpy(m + sizeof(label), kind, kl + 1);
	memcpy(m + sizeof(label) + kl + 1, material, len);
	if (!HMAC(EVP_sha256(), key, STATE_SECRET_KEY_LEN, m, n, out, &outlen))
		memset(out, 0, STATE_SECRET_FP_LEN);
	OPENSSL_cleanse(m, n);
	if (m != buf)
		xfree(&m);
}

/* ---- sealing ---------------------------------------------------------------------------------- */

static size_t make_aad(unsigned char *aad, int64_t job_id, int side)
{
	size_t n = sizeof(AAD_PREFIX) - 1;
	uint64_t j = (uint64_t)job_id;

	memcpy(aad, AAD_PREFIX, n);
	for (int i = 7; i >= 0; i--)
		aad[n++] = (unsigned char)(j >> (8 * i));
	aad[n++] = (unsigned char)side;
	return n;
}

/* A credential that is not a password is bound to its kind too: a row whose kind was changed in the
 * database (a password turned into a command to run) does not decrypt. Passwords keep the AAD they
 * always had. */
static size_t make_kind_aad(unsigned char *aad, int64_t job_id, int side, const char *kind)
{
	size_t n = make_aad(aad, job_id, side);

	if (kind && strcmp(kind, STATE_CRED_PASSWORD) != 0) {
		size_t k = strnlen(kind, STATE_CRED_KIND_MAX);

		aad[n++] = ':';
		memcpy(aad + n, kind, k);
		n += k;
	}
	return n;
}

int state_secret_seal(const unsigned char key[STATE_SECRET_KEY_LEN], int64_t job_id, int side, const void *pt,
		      size_t len, unsigned char nonce[STATE_SECRET_NONCE_LEN], unsigned char *ct,
		      unsigned char tag[STATE_SECRET_TAG_LEN], struct fleet_err *err)
{
	unsigned char aad[sizeof(AAD_PREFIX) + 16];
	size_t aadlen = make_aad(aad, job_id, side);

	return state_seal_aad(key, aad, aadlen, pt, len, nonce, ct, tag, err);
}

/* A context for AES-256-GCM with our nonce length, keyed per message by seal_with. */
static EVP_CIPHER_CTX *seal_ctx_new(void)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx && (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, STATE_SECRET_NONCE_LEN, NULL) != 1))
		EVP_CIPHER_CTX_free(ctx), ctx = NULL;
	return ctx;
}

/* Seals one message with ctx (from seal_ctx_new; reused across messages, a fresh nonce each). */
static int seal_with(EVP_CIPHER_CTX *ctx, const unsigned char key[STATE_SECRET_KEY_LEN], const unsigned char *aad,
		     size_t aadlen, const void *pt, size_t len, const unsigned char nonce[STATE_SECRET_NONCE_LEN],
		     unsigned char *ct, unsigned char tag[STATE_SECRET_TAG_LEN], struct fleet_err *err)
{
	int outl = 0, finl = 0, ok;

	if (len > (size_t)INT32_MAX)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, STATE_ERR_CREDENTIAL_SIZE,
				     "cannot store the credential: too long");
	ok = ctx && EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
	     EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aadlen) == 1 &&
	     (len == 0 || EVP_EncryptUpdate(ctx, ct, &outl, pt, (int)len) == 1) &&
	     EVP_EncryptFinal_ex(ctx, ct + (len ? outl : 0), &finl) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, STATE_SECRET_TAG_LEN, tag) == 1;
	if (!ok)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_CREDENTIAL_ENCRYPT,
				     "could not encrypt the credential");
	return 0;
}

static int no_random(struct fleet_err *err)
{
	return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_RAND,
			     "could not encrypt the credential: no random bytes");
}

int state_seal_aad(const unsigned char key[STATE_SECRET_KEY_LEN], const unsigned char *aad, size_t aadlen,
		   const void *pt, size_t len, unsigned char nonce[STATE_SECRET_NONCE_LEN], unsigned char *ct,
		   unsigned char tag[STATE_SECRET_TAG_LEN], struct fleet_err *err)
{
	EVP_CIPHER_CTX *ctx;
	int rc;

	if (RAND_bytes(nonce, STATE_SECRET_NONCE_LEN) != 1)
		return no_random(err);
	ctx = seal_ctx_new();
	rc = seal_with(ctx, key, aad, aadlen, pt, len, nonce, ct, tag, err);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int state_secret_open(const unsigned char key[STATE_SECRET_KEY_LEN], int64_t job_id, int side,
		      const unsigned char nonce[STATE_SECRET_NONCE_LEN], const unsigned char *ct, size_t len,
		      const unsigned char tag[STATE_SECRET_TAG_LEN], char **plaintext, struct fleet_err *err)
{
	unsigned char aad[sizeof(AAD_PREFIX) + 16];
	size_t aadlen = make_aad(aad, job_id, side);

	if (state_open_aad(key, aad, aadlen, nonce, ct, len, tag, plaintext, err) < 0) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, STATE_ERR_CREDENTIAL_DECRYPT,
			      "could not decrypt the stored credential of job %" PRId64 " side %d: wrong key or altered data",
			      job_id, side);
		return -1;
	}
	return 0;
}

int state_open_aad(const unsigned char key[STATE_SECRET_KEY_LEN], const unsigned char *aad, size_t aadlen,
		   const unsigned char nonce[STATE_SECRET_NONCE_LEN], const unsigned char *ct, size_t len,
		   const unsigned char tag[STATE_SECRET_TAG_LEN], char **plaintext, struct fleet_err *err)
{
	unsigned char tagcopy[STATE_SECRET_TAG_LEN];
	EVP_CIPHER_CTX *ctx;
	char *out;
	int outl = 0, finl = 0, ok;

	*plaintext = NULL;
	if (len > (size_t)INT32_MAX)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, STATE_ERR_CREDENTIAL_DECRYPT,
				     "could not decrypt a stored secret: too long");
	memcpy(tagcopy, tag, sizeof(tagcopy));
	out = xmalloc(len + 1);
	ctx = EVP_CIPHER_CTX_new();
	ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, STATE_SECRET_NONCE_LEN, NULL) == 1 &&
	     EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
	     EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aadlen) == 1 &&
	     (len == 0 || EVP_DecryptUpdate(ctx, (unsigned char *)out, &outl, ct, (int)len) == 1) &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, STATE_SECRET_TAG_LEN, tagcopy) == 1 &&
	     EVP_DecryptFinal_ex(ctx, (unsigned char *)out + (len ? outl : 0), &finl) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		OPENSSL_cleanse(out, len + 1);
		xfree(&out);
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, STATE_ERR_CREDENTIAL_DECRYPT,
				     "could not decrypt a stored secret: wrong key or altered data");
	}
	out[len] = '\0';
	*plaintext = out;
	return 0;
}

void state_secret_free(char **p)
{
	if (!*p)
		return;
	OPENSSL_cleanse(*p, strlen(*p));
	xfree(p);
}

/* ---- stored credentials ----------------------------------------------------------------------- */

static int check_side(int side, struct fleet_err *err)
{
	if (side != 1 && side != 2)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_BAD_SIDE,
				     "credential side must be 1 or 2");
	return 0;
}

int state_credential_put(struct state_conn *sc, int64_t job_id, int side, const char *plaintext,
			 const unsigned char key[STATE_SECRET_KEY_LEN], struct fleet_err *err)
{
	const int64_t ids[1] = {job_id};
	const int sides[1] = {side};
	const char *const pts[1] = {plaintext};

	return state_credential_put_many(sc, ids, sides, pts, 1, key, err);
}

int state_credential_put_many(struct state_conn *sc, const int64_t *job_ids, const int *sides,
			      const char *const *plaintexts, size_t n,
			      const unsigned char key[STATE_SECRET_KEY_LEN], struct fleet_err *err)
{
	return state_credential_put_kinds(sc, job_ids, sides, NULL, plaintexts, n, key, err);
}

static int check_kind(const char *kind, struct fleet_err *err)
{
	static const char *const kinds[] = {STATE_CRED_PASSWORD, STATE_CRED_PASSCMD, STATE_CRED_TOKEN,
					    STATE_CRED_TOKENFILE, STATE_CRED_TOKENCMD};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return 0;
	return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_BAD_KIND, "unknown credential kind");
}

int state_credential_put_kinds(struct state_conn *sc, const int64_t *job_ids, const int *sides,
			       const char *const *kinds, const char *const *plaintexts, size_t n,
			       const unsigned char key[STATE_SECRET_KEY_LEN], struct fleet_err *err)
{
	struct fleet_buf a[6];
	char key_id[STATE_SECRET_KEY_ID_LEN + 1];
	const char *p[7];
	unsigned char *ct = NULL, *nonces = NULL;
	size_t ctcap = 0;
	EVP_CIPHER_CTX *ctx = NULL;
	int rc = -1;

	if (n == 0)
		return 0;
	state_secret_key_id(key, key_id);
	/* One cipher context and one draw of random bytes for every nonce: per credential, both cost
	 * more than the encryption (a third of a 50,000-row import's client time). */
	if (n > SIZE_MAX / STATE_SECRET_NONCE_LEN)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_CREDENTIAL_SIZE, "too many credentials");
	nonces = xmalloc(n * STATE_SECRET_NONCE_LEN);
	if (n * STATE_SECRET_NONCE_LEN > (size_t)INT_MAX || RAND_bytes(nonces, (int)(n * STATE_SECRET_NONCE_LEN)) != 1) {
		xfree(&nonces);
		return no_random(err);
	}
	ctx = seal_ctx_new();
	for (int i = 0; i < 6; i++) {
		fleet_buf_init(&a[i], STATE_ARRAY_MAX);
		state_array_begin(&a[i]);
	}
	for (size_t i = 0; i < n; i++) {
		const unsigned char *nonce = nonces + i * STATE_SECRET_NONCE_LEN;
		unsigned char tag[STATE_SECRET_TAG_LEN];
		unsigned char aad[sizeof(AAD_PREFIX) + 16 + STATE_CRED_KIND_MAX];
		const char *kind = kinds && kinds[i] ? kinds[i] : STATE_CRED_PASSWORD;
		size_t len = strlen(plaintexts[i]);

		if (check_side(sides[i], err) < 0 || check_kind(kind, err) < 0)
			goto out;
		ct = xgrow(ct, 1, len + 1, &ctcap);
		if (seal_with(ctx, key, aad, make_kind_aad(aad, job_ids[i], sides[i], kind), plaintexts[i], len, nonce,
			      ct, tag, err) < 0)
			goto out;
		state_array_i64(&a[0], job_ids[i]);
		state_array_i64(&a[1], sides[i]);
		state_array_hex(&a[2], nonce, STATE_SECRET_NONCE_LEN);
		if (len)
			state_array_hex(&a[3], ct, len);
		else
			state_array_str(&a[3], "");
		state_array_hex(&a[4], tag, sizeof(tag));
		state_array_str(&a[5], kind);
	}
	for (int i = 0; i < 6; i++) {
		state_array_end(&a[i]);
		p[i] = fleet_buf_cstr(&a[i]);
	}
	p[6] = key_id;
	if (state_bufs_fit(a, 6, "store the credentials", err) < 0)
		goto out;
	/* credential.job_id has no foreign key (migration 12: its check and row lock per credential were
	 * 40 % of this INSERT): a credential whose job does not exist is not stored, and the trigger
	 * job_deleted_credentials deletes a job's credentials with it. */
	rc = state_exec_cmd(
	    sc, "store the credentials",
	    "INSERT INTO credential (job_id, side, key_id, nonce, ciphertext, tag, kind)"
	    " SELECT j, s, $7, decode(nn, 'hex'), decode(c, 'hex'), decode(t, 'hex'), k"
	    " FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::text[], $5::text[], $6::text[])"
	    "  AS u(j, s, nn, c, t, k) WHERE EXISTS (SELECT 1 FROM job WHERE job.id = u.j)"
	    " ON CONFLICT (job_id, side) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce,"
	    "  ciphertext = excluded.ciphertext, tag = excluded.tag, kind = excluded.kind, updated_at = now()",
	    7, p, STATE_EXEC_IDEMPOTENT, err);
out:
	EVP_CIPHER_CTX_free(ctx);
	xfree(&nonces);
	if (ct) {
		OPENSSL_cleanse(ct, ctcap);
		xfree(&ct);
	}
	for (int i = 0; i < 6; i++) {
		if (a[i].data)
			OPENSSL_cleanse(a[i].data, a[i].len);
		fleet_buf_release(&a[i]);
	}
	return rc;
}

int state_credential_get(struct state_conn *sc, int64_t job_id, int side,
			 const unsigned char key[STATE_SECRET_KEY_LEN], char **plaintext,
			 struct fleet_err *err)
{
	char kind[STATE_CRED_KIND_MAX + 1];
	int rc = state_credential_get_kind(sc, job_id, side, key, plaintext, kind, err);

	if (rc > 0 && strcmp(kind, STATE_CRED_PASSWORD) != 0) {
		state_secret_free(plaintext);
		return 0; /* not a password: a caller that knows only passwords has none */
	}
	return rc;
}

int state_credential_get_kind(struct state_conn *sc, int64_t job_id, int side,
			      const unsigned char key[STATE_SECRET_KEY_LEN], char **plaintext,
			      char kind[STATE_CRED_KIND_MAX + 1], struct fleet_err *err)
{
	char key_id[STATE_SECRET_KEY_ID_LEN + 1];
	unsigned char aad[sizeof(AAD_PREFIX) + 16 + STATE_CRED_KIND_MAX];
	PGresult *res;
	int rc;

	*plaintext = NULL;
	snprintf(kind, STATE_CRED_KIND_MAX + 1, "%s", STATE_CRED_PASSWORD);
	if (check_side(side, err) < 0)
		return -1;
	/* Binary result: the bytea columns arrive as raw bytes. */
	res = state_exec_id2(
	    sc, "read the credential",
	    "SELECT key_id, nonce, ciphertext, tag, kind FROM credential WHERE job_id = $1 AND side = $2", job_id,
	    side, STATE_EXEC_IDEMPOTENT | STATE_EXEC_BINARY, err);
	if (!res)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return 0;
	}
	state_secret_key_id(key, key_id);
	if (PQgetlength(res, 0, 0) != STATE_SECRET_KEY_ID_LEN ||
	    memcmp(PQgetvalue(res, 0, 0), key_id, STATE_SECRET_KEY_ID_LEN) != 0) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, STATE_ERR_KEY_MISMATCH,
			      "cannot decrypt the stored credential of job %" PRId64
			      ": it was encrypted with key %.*s, the key file holds key %s",
			      job_id, PQgetlength(res, 0, 0) < 64 ? PQgetlength(res, 0, 0) : 64,
			      PQgetvalue(res, 0, 0), key_id);
		fleet_err_detail(err,
				 "copy the key file of the host that imported the accounts (--key-file)");
		PQclear(res);
		return -1;
	}
	if (PQgetlength(res, 0, 1) != STATE_SECRET_NONCE_LEN ||
	    PQgetlength(res, 0, 3) != STATE_SECRET_TAG_LEN || PQgetlength(res, 0, 4) > STATE_CRED_KIND_MAX) {
		PQclear(res);
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, STATE_ERR_CREDENTIAL_DECRYPT,
				     "could not decrypt the stored credential of job %" PRId64 ": malformed",
				     job_id);
	}
	snprintf(kind, STATE_CRED_KIND_MAX + 1, "%.*s", PQgetlength(res, 0, 4), PQgetvalue(res, 0, 4));
	rc = state_open_aad(key, aad, make_kind_aad(aad, job_id, side, kind), (const unsigned char *)PQgetvalue(res, 0, 1),
			    (const unsigned char *)PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2),
			    (const unsigned char *)PQgetvalue(res, 0, 3), plaintext, err);
	PQclear(res);
	if (rc < 0)
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, STATE_ERR_CREDENTIAL_DECRYPT,
			      "could not decrypt the stored credential of job %" PRId64 " side %d: wrong key or altered data",
			      job_id, side);
	return rc < 0 ? -1 : 1;
}

int state_credential_delete(struct state_conn *sc, int64_t job_id, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, job_id)};

	return state_exec_cmd(sc, "delete the credentials", "DELETE FROM credential WHERE job_id = $1", 1, p,
			      STATE_EXEC_IDEMPOTENT, err);
}

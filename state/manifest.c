/* state/manifest.c: the signed manifest of a run's ledger (see manifest.h). */
#include "state/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/util.h"
#include "state/secret.h"
#include "state/state_private.h"

#define MANIFEST_MAGIC	   "imapfleet-manifest\tv1\n"
#define SIG_PREFIX	   "signature\ted25519\t"
#define ED25519_KEY_LEN	   32
#define ED25519_SIG_LEN	   64

static int bad(struct fleet_err *err, const char *code, const char *fmt, const char *a, const char *b)
{
	return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, code, fmt, a, b);
}

static void b64(const unsigned char *p, size_t n, char *out, size_t cap)
{
	unsigned char tmp[128];

	if (4 * ((n + 2) / 3) + 1 > cap || 4 * ((n + 2) / 3) + 1 > sizeof(tmp)) {
		out[0] = '\0';
		return;
	}
	EVP_EncodeBlock(tmp, p, (int)n);
	memcpy(out, tmp, strlen((char *)tmp) + 1);
}

/* Base64 of exactly n bytes into out; -1 when it is not. */
static int unb64(const char *s, unsigned char *out, size_t n)
{
	unsigned char tmp[128];
	size_t len = strlen(s);
	int got;

	if (len != 4 * ((n + 2) / 3) || len > sizeof(tmp))
		return -1;
	got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
	if (got < (int)n)
		return -1;
	memcpy(out, tmp, n);
	return 0;
}

static int pub_b64(EVP_PKEY *k, char out[STATE_MANIFEST_PUBKEY_B64_MAX])
{
	unsigned char raw[ED25519_KEY_LEN];
	size_t len = sizeof(raw);

	if (EVP_PKEY_get_raw_public_key(k, raw, &len) != 1 || len != sizeof(raw))
		return -1;
	b64(raw, len, out, STATE_MANIFEST_PUBKEY_B64_MAX);
	return 0;
}

/* ---- the signing key ---------------------------------------------------------------------------- */

static int write_pem(const char *path, EVP_PKEY *k, int private, struct fleet_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, private ? 0600 : 0644);
	FILE *f;
	int ok;

	if (fd < 0)
		return errno == EEXIST ? 1 : fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_MANIFEST_KEY,
							   "cannot create %s: %s", path, strerror(errno));
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_MANIFEST_KEY, "cannot write %s", path);
	}
	ok = private ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, k);
	if (fclose(f) != 0 || ok != 1)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_MANIFEST_KEY, "could not write %s", path);
	return 0;
}

/* The key in dir/manifest.key, made (with manifest.pub) when missing. */
static EVP_PKEY *load_or_create_key(const char *dir, struct fleet_err *err)
{
	char *path = xasprintf("%s/%s", dir, STATE_MANIFEST_KEY_FILE);
	char *pub = xasprintf("%s/%s", dir, STATE_MANIFEST_PUB_FILE);
	EVP_PKEY *k = NULL;
	struct stat st;
	FILE *f;

	if (stat(path, &st) != 0) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
		int r;

		mkdir(dir, 0700);
		if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &k) != 1) {
			EVP_PKEY_CTX_free(ctx);
			fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_MANIFEST_KEY, "could not make an Ed25519 key");
			goto out;
		}
		EVP_PKEY_CTX_free(ctx);
		r = write_pem(path, k, 1, err);
		if (r < 0) {
			EVP_PKEY_free(k);
			k = NULL;
			goto out;
		}
		if (r == 0) {
			unlink(pub);
			if (write_pem(pub, k, 0, err) < 0) {
				EVP_PKEY_free(k);
				k = NULL;
			}
			goto out;
		}
		EVP_PKEY_free(k); /* another process made it first: use theirs */
		k = NULL;
		if (stat(path, &st) != 0) {
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_MANIFEST_KEY, "cannot read %s", path);
			goto out;
		}
	}
	if (st.st_mode & 077) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE_MODE,
			      "the manifest key %s may be read or written by others: chmod 600 %s", path, path);
		goto out;
	}
	f = fopen(path, "r");
	if (f) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		k = NULL;
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_MANIFEST_KEY,
			      "cannot read the manifest key %s (an Ed25519 private key in PEM)", path);
	}
out:
	xfree(&path);
	xfree(&pub);
	return k;
}

/* ---- writing ------------------------------------------------------------------------------------ */

struct mw {
	FILE *f;
	EVP_MD_CTX *md;
	struct fleet_buf line;
	int failed;
};

static void mw_flush_line(struct mw *w)
{
	fleet_buf_add(&w->line, "\n", 1);
	if (fleet_buf_truncated(&w->line)) /* a line cut short must not be signed */
		w->failed = 1;
	else if (fwrite(w->line.data, 1, w->line.len, w->f) != w->line.len ||
	    EVP_DigestUpdate(w->md, w->line.data, w->line.len) != 1)
		w->failed = 1;
	fleet_buf_reset(&w->line);
}

/* One field, escaped, with a tab before it unless it is the first of its line. */
static void mw_field(struct mw *w, const char *s)
{
	if (w->line.len)
		fleet_buf_add(&w->line, "\t", 1);
	for (const char *p = s ? s : ""; *p; p++) {
		const char *e = *p == '\t' ? "\\t" : *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : *p == '\\' ? "\\\\" : NULL;

		if (e)
			fleet_buf_add_str(&w->line, e);
		else
			fleet_buf_add(&w->line, p, 1);
	}
}

static void mw_num(struct mw *w, int64_t v)
{
	char b[STATE_NUM_MAX];

	mw_field(w, state_fmt_i64(b, v));
}

/* One account of the manifest: its line, then one line per ledger row. */
struct mw_account {
	struct mw *w;
	int64_t job_id;
	long *messages;
	int found;
};

static int account_row(const PGresult *res, int i, void *arg)
{
	struct mw_account *a = arg;
	struct mw *w = a->w;

	mw_field(w, "account");
	mw_num(w, a->job_id);
	for (int c = 0; c < 6; c++)
		mw_field(w, state_get_str(res, i, c));
	mw_field(w, state_get_str(res, i, 6));
	mw_field(w, state_get_str(res, i, 7)[0] ? state_get_str(res, i, 7) : "-");
	mw_field(w, state_get_str(res, i, 8)[0] ? state_get_str(res, i, 8) : "-");
	mw_num(w, state_get_i64(res, i, 9));
	mw_num(w, state_get_i64(res, i, 10));
	mw_flush_line(w);
	a->found = 1;
	return 0;
}

static int message_row(const PGresult *res, int i, void *arg)
{
	struct mw_account *a = arg;
	struct mw *w = a->w;

	if (w->failed)
		return 1;
	mw_field(w, "message");
	mw_num(w, a->job_id);
	for (int c = 0; c < 10; c++)
		mw_field(w, state_get_str(res, i, c));
	mw_flush_line(w);
	(*a->messages)++;
	return 0;
}

static int write_account(struct state_conn *sc, struct mw *w, int64_t job_id, long *messages, struct fleet_err *err)
{
	PGresult *res = state_exec_id(
	    sc, "read the account for the manifest",
	    "SELECT host1, port1, user1, host2, port2, user2, state, coalesce(verify_verdict, ''),"
	    " coalesce(to_char(verified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"
	    " coalesce(verify_on_source, -1), coalesce(verify_on_destination, -1) FROM job WHERE id = $1",
	    job_id, STATE_EXEC_IDEMPOTENT, err);
	struct mw_account a = {w, job_id, messages, 0};

	if (state_each_row(res, account_row, &a) < 0)
		return -1;
	if (!a.found)
		return 0;

	/* Every ledger row under its folder's current source UIDVALIDITY: one query per account. */
	res = state_exec_id(sc, "read the ledger for the manifest",
			    "SELECT f.src_name, m.src_uidvalidity, m.src_uid, f.dst_name, coalesce(m.dst_uidvalidity, 0),"
			    " coalesce(m.dst_uid, 0), m.size, coalesce(m.internaldate, ''),"
			    " coalesce(encode(m.sha256, 'hex'), ''), m.state"
			    " FROM folder f JOIN message m ON m.folder_id = f.id AND m.src_uidvalidity = f.src_uidvalidity"
			    " WHERE f.job_id = $1 ORDER BY f.src_name, m.src_uid",
			    job_id, STATE_EXEC_IDEMPOTENT, err);
	return state_each_row(res, message_row, &a) < 0 ? -1 : 0;
}

int state_manifest_write(struct state_conn *sc, int64_t run_id, const int64_t *jobs, size_t n, const char *key_dir,
			 const char *path, struct state_manifest_info *info, struct fleet_err *err)
{
	struct mw w;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *sctx = NULL;
	unsigned char digest[32], sig[ED25519_SIG_LEN];
	unsigned int dlen = 0;
	size_t slen = sizeof(sig);
	char dhex[65], sb64[100];
	char *tmp = xasprintf("%s.tmp", path);
	int fd, rc = -1;

	memset(info, 0, sizeof(*info));
	memset(&w, 0, sizeof(w));
	fleet_buf_init(&w.line, STATE_MANIFEST_LINE_MAX);
	key = load_or_create_key(key_dir, err);
	if (!key)
		goto out;
	pub_b64(key, info->pubkey_b64);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	w.f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!w.f) {
		if (fd >= 0)
			close(fd);
		bad(err, STATE_ERR_MANIFEST_WRITE, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	w.md = EVP_MD_CTX_new();
	if (!w.md || EVP_DigestInit_ex(w.md, EVP_sha256(), NULL) != 1)
		goto crypto;
	fleet_buf_add_str(&w.line, MANIFEST_MAGIC);
	w.line.len--; /* mw_flush_line adds the newline */
	mw_flush_line(&w);
	{
		PGresult *res = state_exec_id(sc, "read the run for the manifest",
					      "SELECT name, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
					      " FROM run WHERE id = $1",
					      run_id, STATE_EXEC_IDEMPOTENT, err);

		if (!res)
			goto out;
		mw_field(&w, "run");
		mw_num(&w, run_id);
		mw_field(&w, PQntuples(res) ? state_get_str(res, 0, 0) : "");
		mw_field(&w, PQntuples(res) ? state_get_str(res, 0, 1) : "");
		mw_flush_line(&w);
		PQclear(res);
	}
	fleet_buf_add_str(&w.line, "# account\tid\thost1\tport1\tuser1\thost2\tport2\tuser2\tstate\tverdict\tverified_at"
				      "\ton_source\ton_destination");
	mw_flush_line(&w);
	fleet_buf_add_str(&w.line, "# message\taccount id\tsource folder\tsource uidvalidity\tsource uid\t"
				      "destination folder\tdestination uidvalidity\tdestination uid\tsize\t"
				      "internaldate\tsha256\tstate");
	mw_flush_line(&w);
	for (size_t i = 0; i < n && !w.failed; i++) {
		if (write_account(sc, &w, jobs[i], &info->messages, err) < 0)
			goto out;
		info->accounts++;
	}
	if (EVP_DigestFinal_ex(w.md, digest, &dlen) != 1 || dlen != sizeof(digest))
		goto crypto;
	sctx = EVP_MD_CTX_new();
	if (!sctx || EVP_DigestSignInit(sctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(sctx, sig, &slen, digest, sizeof(digest)) != 1 || slen != sizeof(sig))
		goto crypto;
	fleet_hex(digest, sizeof(digest), dhex);
	dhex[2 * sizeof(digest)] = '\0';
	b64(sig, slen, sb64, sizeof(sb64));
	fprintf(w.f, SIG_PREFIX "%s\t%s\t%s\n", dhex, sb64, info->pubkey_b64);
	if (w.failed || fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) {
		bad(err, STATE_ERR_MANIFEST_WRITE, "could not write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) != 0) {
		bad(err, STATE_ERR_MANIFEST_WRITE, "could not rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = 0;
	goto out;
crypto:
	fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_MANIFEST_SIGN, "could not sign the manifest (OpenSSL)");
out:
	if (w.f)
		fclose(w.f);
	if (rc < 0)
		unlink(tmp);
	EVP_MD_CTX_free(w.md);
	EVP_MD_CTX_free(sctx);
	EVP_PKEY_free(key);
	fleet_buf_release(&w.line);
	xfree(&tmp);
	return rc;
}

/* ---- checking ----------------------------------------------------------------------------------- */

static EVP_PKEY *read_pubkey(const char *arg, struct fleet_err *err)
{
	unsigned char raw[ED25519_KEY_LEN];
	EVP_PKEY *k = NULL;
	FILE *f = fopen(arg, "r");

	if (f) {
		k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
		if (!k) { /* a file holding the base64 key */
			char line[128];

			rewind(f);
			if (fgets(line, sizeof(line), f)) {
				line[strcspn(line, "\r\n")] = '\0';
				if (unb64(line, raw, sizeof(raw)) == 0)
					k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, sizeof(raw));
			}
		}
		fclose(f);
	} else if (unb64(arg, raw, sizeof(raw)) == 0) {
		k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, sizeof(raw));
	}
	if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		bad(err, STATE_ERR_MANIFEST_KEY,
		    "cannot read the public key '%s'%s: give manifest.pub (PEM) or the base64 key that verify printed",
		    arg, "");
		return NULL;
	}
	return k;
}

int state_manifest_verify(const char *path, const char *pubkey, struct state_manifest_info *info,
			  struct fleet_err *err)
{
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL, *vctx = NULL;
	FILE *f = NULL;
	struct fleet_buf line = FLEET_BUF_INIT(STATE_MANIFEST_LINE_MAX + 2);
	unsigned char digest[32], want[32], sig[ED25519_SIG_LEN];
	unsigned int dlen = 0;
	int c, rc = -1, signed_seen = 0, first = 1;

	memset(info, 0, sizeof(*info));
	key = read_pubkey(pubkey, err);
	if (!key)
		goto out;
	pub_b64(key, info->pubkey_b64);
	f = fopen(path, "r");
	if (!f) {
		bad(err, STATE_ERR_MANIFEST_READ, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto crypto;
	for (;;) {
		fleet_buf_reset(&line);
		while ((c = getc(f)) != EOF) {
			char ch = (char)c;

			if (fleet_buf_append(&line, &ch, 1) < 0) {
				bad(err, STATE_ERR_MANIFEST_BAD, "%s: a line is longer than %s bytes: not a manifest", path, "1048576");
				goto out;
			}
			if (ch == '\n')
				break;
		}
		if (line.len == 0)
			break;
		if (signed_seen) {
			bad(err, STATE_ERR_MANIFEST_BAD, "%s: text after the signature line%s: the manifest was altered", path, "");
			goto out;
		}
		if (first && (line.len != strlen(MANIFEST_MAGIC) || memcmp(line.data, MANIFEST_MAGIC, line.len) != 0)) {
			bad(err, STATE_ERR_MANIFEST_BAD, "%s is not an imapfleet manifest (v1)%s", path, "");
			goto out;
		}
		first = 0;
		if (line.len > strlen(SIG_PREFIX) && memcmp(line.data, SIG_PREFIX, strlen(SIG_PREFIX)) == 0) {
			char *fields = xstrndup((const char *)line.data + strlen(SIG_PREFIX), line.len - strlen(SIG_PREFIX));
			char *dh = fields, *sg = strchr(dh, '\t'), *pk;
			int okf = 0;

			if (sg) {
				*sg++ = '\0';
				pk = strchr(sg, '\t');
				if (pk) {
					*pk++ = '\0';
					pk[strcspn(pk, "\r\n")] = '\0';
					okf = fleet_unhex(dh, want, sizeof(want)) == 0 && unb64(sg, sig, sizeof(sig)) == 0;
				}
			}
			xfree(&fields);
			if (!okf) {
				bad(err, STATE_ERR_MANIFEST_BAD, "%s: the signature line is malformed%s", path, "");
				goto out;
			}
			signed_seen = 1;
			continue;
		}
		if (line.len > 8 && memcmp(line.data, "account\t", 8) == 0)
			info->accounts++;
		else if (line.len > 8 && memcmp(line.data, "message\t", 8) == 0)
			info->messages++;
		if (EVP_DigestUpdate(md, line.data, line.len) != 1)
			goto crypto;
	}
	if (!signed_seen) {
		bad(err, STATE_ERR_MANIFEST_BAD, "%s has no signature line: incomplete or altered%s", path, "");
		goto out;
	}
	if (EVP_DigestFinal_ex(md, digest, &dlen) != 1)
		goto crypto;
	if (CRYPTO_memcmp(digest, want, sizeof(digest)) != 0) {
		bad(err, STATE_ERR_MANIFEST_BAD, "%s: its content does not match the signed SHA-256%s: the manifest was altered",
		    path, "");
		goto out;
	}
	vctx = EVP_MD_CTX_new();
	if (!vctx || EVP_DigestVerifyInit(vctx, NULL, NULL, NULL, key) != 1)
		goto crypto;
	if (EVP_DigestVerify(vctx, sig, sizeof(sig), digest, sizeof(digest)) != 1) {
		bad(err, STATE_ERR_MANIFEST_BAD, "%s: the signature does not verify with the key %s: altered, or signed with "
				      "another key",
		    path, info->pubkey_b64);
		goto out;
	}
	rc = 0;
	goto out;
crypto:
	fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_MANIFEST_SIGN, "could not check the signature (OpenSSL)");
out:
	if (f)
		fclose(f);
	EVP_MD_CTX_free(md);
	EVP_MD_CTX_free(vctx);
	EVP_PKEY_free(key);
	fleet_buf_release(&line);
	return rc;
}

/* io/oauth.c: tokens from Microsoft 365 and Google token endpoints (see oauth.h). */
#include "io/oauth.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "io/cred.h"

#define MS_TOKEN_URL_FMT "https://login.microsoftonline.com/%s/oauth2/v2.0/token"
#define GOOGLE_TOKEN_URL "https://oauth2.googleapis.com/token"

int oauth_provider_from_name(const char *name, enum oauth_provider *out)
{
	if (fleet_strcaseeq(name, "ms365"))
		*out = OAUTH_MS365;
	else if (fleet_strcaseeq(name, "google"))
		*out = OAUTH_GOOGLE;
	else
		return -1;
	return 0;
}

const char *oauth_provider_name(enum oauth_provider p)
{
	return p == OAUTH_MS365 ? "ms365" : p == OAUTH_GOOGLE ? "google" : "none";
}

static int config_err(struct fleet_err *err, const char *fmt, const char *a, const char *b)
{
	return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, OAUTH_ERR_CONFIG, fmt, a, b);
}

/* ---- credentials read from files ---------------------------------------------------------------- */

/* The private key, certificate thumbprint (x5t) and, for Google, the service account's identity. */
struct oauth_creds {
	EVP_PKEY *key;
	char *x5t;	    /* ms365 certificate: base64url SHA-1 of the DER certificate */
	char *secret;	    /* ms365 client secret */
	char *client_email; /* google */
	char *token_url;    /* resolved */
};

static void creds_release(struct oauth_creds *cr)
{
	EVP_PKEY_free(cr->key);
	cred_free(&cr->secret);
	xfree(&cr->x5t);
	xfree(&cr->client_email);
	xfree(&cr->token_url);
	memset(cr, 0, sizeof(*cr));
}

static char *b64url(const unsigned char *in, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);

	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (int i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return out;
}

static EVP_PKEY *key_from_pem(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

static int load_ms365(const struct oauth_config *cfg, struct oauth_creds *cr, struct fleet_err *err)
{
	char why[256];

	if (!cfg->tenant || !*cfg->tenant || !cfg->client_id || !*cfg->client_id)
		return config_err(err, "ms365 needs --tenant%s and --client-id%s", "", "");
	if (!!cfg->client_secret_file == !!cfg->client_cert)
		return config_err(err, "ms365 needs one of --client-secret-file%s or --client-cert%s", "", "");
	cr->token_url = cfg->token_url ? xstrdup(cfg->token_url) : xasprintf(MS_TOKEN_URL_FMT, cfg->tenant);
	if (cfg->client_secret_file) {
		cr->secret = fleet_read_small_file(cfg->client_secret_file, OAUTH_SECRET_FILE_MAX, why, sizeof(why));
		if (!cr->secret)
			return config_err(err, "client secret file %s: %s", cfg->client_secret_file, why);
		cr->secret[strcspn(cr->secret, "\r\n")] = '\0';
		if (!*cr->secret)
			return config_err(err, "client secret file %s: %s", cfg->client_secret_file, "it is empty");
		fleet_log_add_secret(cr->secret);
	} else {
		char *pem = fleet_read_small_file(cfg->client_cert, OAUTH_KEYFILE_MAX, why, sizeof(why));
		BIO *b;
		X509 *x = NULL;
		unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		int derlen;

		if (!pem)
			return config_err(err, "client certificate %s: %s", cfg->client_cert, why);
		fleet_log_add_secret(pem);
		b = BIO_new_mem_buf(pem, (int)strlen(pem));
		if (b)
			x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
		cr->key = key_from_pem(pem, strlen(pem));
		OPENSSL_cleanse(pem, strlen(pem));
		xfree(&pem);
		derlen = x ? i2d_X509(x, &der) : -1;
		X509_free(x);
		if (derlen <= 0 || !cr->key) {
			OPENSSL_free(der);
			return config_err(err, "client certificate %s: %s", cfg->client_cert,
					  "needs the certificate and its private key (unencrypted PEM) in one file");
		}
		EVP_Digest(der, (size_t)derlen, md, &mdlen, EVP_sha1(), NULL);
		OPENSSL_free(der);
		cr->x5t = b64url(md, mdlen);
	}
	return 0;
}

static int load_google(const struct oauth_config *cfg, struct oauth_creds *cr, struct fleet_err *err)
{
	char why[256];
	char *text;
	json_t *j;
	json_error_t je;
	const char *pk, *email, *uri;
	int rc = -1;

	if (!cfg->service_account)
		return config_err(err, "google needs --service-account%s KEY.json%s", "", "");
	text = fleet_read_small_file(cfg->service_account, OAUTH_KEYFILE_MAX, why, sizeof(why));
	if (!text)
		return config_err(err, "service account key %s: %s", cfg->service_account, why);
	fleet_log_add_secret(text);
	j = json_loads(text, 0, &je);
	OPENSSL_cleanse(text, strlen(text));
	xfree(&text);
	pk = json_string_value(json_object_get(j, "private_key"));
	email = json_string_value(json_object_get(j, "client_email"));
	uri = json_string_value(json_object_get(j, "token_uri"));
	if (!j || !pk || !email) {
		config_err(err, "service account key %s: %s", cfg->service_account,
			   "not a service account key (JSON with private_key and client_email)");
		goto out;
	}
	cr->key = key_from_pem(pk, strlen(pk));
	if (!cr->key) {
		config_err(err, "service account key %s: %s", cfg->service_account, "its private_key is not a PEM key");
		goto out;
	}
	cr->client_email = xstrdup(email);
	cr->token_url = xstrdup(cfg->token_url ? cfg->token_url : uri ? uri : GOOGLE_TOKEN_URL);
	rc = 0;
out:
	if (pk)
		OPENSSL_cleanse((void *)pk, strlen(pk));
	json_decref(j);
	return rc;
}

static int creds_load(const struct oauth_config *cfg, struct oauth_creds *cr, struct fleet_err *err)
{
	int rc;

	memset(cr, 0, sizeof(*cr));
	switch (cfg->provider) {
	case OAUTH_MS365: rc = load_ms365(cfg, cr, err); break;
	case OAUTH_GOOGLE: rc = load_google(cfg, cr, err); break;
	default: rc = config_err(err, "no OAuth provider given%s%s", "", ""); break;
	}
	if (rc == 0 && strncmp(cr->token_url, "https://", 8) != 0)
		rc = config_err(err, "token URL %s: %s", cr->token_url, "only https:// is allowed");
	if (rc < 0)
		creds_release(cr);
	return rc;
}

int oauth_config_check(const struct oauth_config *cfg, struct fleet_err *err)
{
	struct oauth_creds cr;

	if (creds_load(cfg, &cr, err) < 0)
		return -1;
	creds_release(&cr);
	return 0;
}

/* Adds a file's contents to the fingerprint (its name when it cannot be read: the fetch will say why). */
static void digest_file(EVP_MD_CTX *md, const char *path)
{
	char why[64];
	char *text;

	if (!path)
		return;
	text = fleet_read_small_file(path, OAUTH_KEYFILE_MAX, why, sizeof(why));
	if (text) {
		EVP_DigestUpdate(md, text, strlen(text) + 1);
		OPENSSL_cleanse(text, strlen(text));
		xfree(&text);
	} else {
		EVP_DigestUpdate(md, path, strlen(path) + 1);
	}
}

char *oauth_cache_key(const struct oauth_config *cfg, const char *user)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char fp[17];
	const char *ids[3] = {cfg->tenant, cfg->client_id, cfg->token_url};

	if (!md)
		abort(); /* allocation failures abort (common/alloc.h) */
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, "imapfleet oauth key v1", 23);
	for (int i = 0; i < 3; i++)
		EVP_DigestUpdate(md, ids[i] ? ids[i] : "", ids[i] ? strlen(ids[i]) + 1 : 1);
	digest_file(md, cfg->client_secret_file);
	digest_file(md, cfg->client_cert);
	digest_file(md, cfg->service_account);
	EVP_DigestFinal_ex(md, d, &dlen);
	EVP_MD_CTX_free(md);
	fleet_hex(d, 8, fp);
	fp[16] = '\0';
	if (cfg->provider == OAUTH_MS365)
		return xasprintf("ms365:%s/%s #%s", cfg->tenant ? cfg->tenant : "", cfg->client_id ? cfg->client_id : "", fp);
	return xasprintf("google:%s #%s", user ? user : "", fp);
}

/* ---- JWT ----------------------------------------------------------------------------------------- */

/* header.claims.signature, RS256 with key. Heap, registered as a secret. */
static char *jwt_sign(EVP_PKEY *key, json_t *header, json_t *claims, struct fleet_err *err)
{
	char *h = json_dumps(header, JSON_COMPACT), *c = json_dumps(claims, JSON_COMPACT);
	char *hb = b64url((const unsigned char *)h, strlen(h)), *cb = b64url((const unsigned char *)c, strlen(c));
	char *input = xasprintf("%s.%s", hb, cb), *out = NULL, *sb;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t siglen = 0;

	free(h);
	free(c);
	xfree(&hb);
	xfree(&cb);
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, OAUTH_ERR_CONFIG,
			      "could not sign the token request (the key is not an RSA key?)");
		goto out;
	}
	sig = xmalloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, OAUTH_ERR_CONFIG, "could not sign the token request");
		goto out;
	}
	sb = b64url(sig, siglen);
	out = xasprintf("%s.%s", input, sb);
	xfree(&sb);
	fleet_log_add_secret(out);
out:
	EVP_MD_CTX_free(md);
	xfree(&sig);
	xfree(&input);
	return out;
}

static char *random_jti(void)
{
	unsigned char r[16];

	RAND_bytes(r, sizeof(r));
	return b64url(r, sizeof(r));
}

/* ---- HTTP ---------------------------------------------------------------------------------------- */

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http_reply {
	struct fleet_buf body;
	long status;
	unsigned retry_after_s;
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct http_reply *r = ctx;

	if (fleet_buf_append(&r->body, p, size * n) < 0)
		return 0; /* over the cap: curl fails the transfer */
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct http_reply *r = ctx;
	size_t len = size * n;
	uint64_t v;

	if (len > 12 && fleet_strncaseeq(p, "Retry-After:", 12)) {
		const char *s = p + 12;
		size_t l = len - 12;

		while (l && (*s == ' ' || *s == '\t'))
			s++, l--;
		while (l && (s[l - 1] == '\r' || s[l - 1] == '\n' || s[l - 1] == ' '))
			l--;
		if (fleet_parse_u64n(s, l, 0, OAUTH_RETRY_AFTER_MAX_S, &v) == 0)
			r->retry_after_s = (unsigned)v;
	}
	return len;
}

/* Appends "&name=value" (URL-encoded) to form. */
static void form_add(CURL *h, struct fleet_buf *form, const char *name, const char *value)
{
	char *e = curl_easy_escape(h, value, 0);

	fleet_buf_addf(form, "%s%s=%s", form->len ? "&" : "", name, e ? e : "");
	if (e) {
		OPENSSL_cleanse(e, strlen(e));
		curl_free(e);
	}
}

static int http_post(const struct oauth_config *cfg, const char *url, const char *form, struct http_reply *r,
		     struct fleet_err *err)
{
	CURL *h;
	CURLcode cc;
	char errbuf[CURL_ERROR_SIZE] = "";
	int rc = 0;

	pthread_once(&g_curl_once, curl_init_once);
	h = curl_easy_init();
	if (!h)
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, OAUTH_ERR_UNAVAILABLE,
				     "could not start an HTTPS request");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(cfg->timeout_ms ? cfg->timeout_ms : OAUTH_TIMEOUT_MS));
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (cfg->cafile)
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->cafile); /* the system's directory stays */
	if (cfg->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "imapfleet");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(h);
	if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE) {
		rc = fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, OAUTH_ERR_CONFIG,
				   "token endpoint %s: certificate verification failed: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		fleet_err_detail(err, "give the CA that signed it with --cafile (the same option as for IMAP)");
	} else if (cc != CURLE_OK) {
		rc = fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, OAUTH_ERR_UNAVAILABLE,
				   "could not reach the token endpoint %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	}
	curl_easy_cleanup(h);
	return rc;
}

/* Reads the endpoint's answer: a token, or a refusal classified (see oauth.h). */
static int parse_reply(const struct oauth_config *cfg, const char *who, struct http_reply *r, char **token,
		       int64_t *expires_at, struct fleet_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &je);
	const char *tok = json_string_value(json_object_get(j, "access_token"));
	const char *e = json_string_value(json_object_get(j, "error"));
	const char *desc = json_string_value(json_object_get(j, "error_description"));
	json_int_t expires_in = json_integer_value(json_object_get(j, "expires_in"));
	char text[300];
	int rc = -1;

	if (r->status == 200 && tok && *tok) {
		*token = xstrdup(tok);
		fleet_log_add_secret(*token);
		*expires_at = (int64_t)time(NULL) + (expires_in > 0 ? expires_in : OAUTH_DEFAULT_LIFETIME_S);
		rc = 0;
		goto out;
	}
	/* The description is the endpoint's text: keep it short, on one line. */
	snprintf(text, sizeof(text), "%s%s%s", e ? e : "no error code", desc ? ": " : "", desc ? desc : "");
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	if (r->status == 429) {
		fleet_err_set(err, FLEET_ERR_THROTTLED, FLEET_SCOPE_ACCOUNT, OAUTH_ERR_UNAVAILABLE,
			      "the token endpoint asks to slow down (HTTP 429)");
		err->retry_after_ms = r->retry_after_s ? r->retry_after_s * 1000u : OAUTH_THROTTLE_WAIT_MS;
	} else if (r->status >= 500 || (!j && r->status != 400 && r->status != 401)) {
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, OAUTH_ERR_UNAVAILABLE,
			      "the token endpoint answered HTTP %ld", r->status);
	} else if (e && strcmp(e, "invalid_grant") == 0 && cfg->provider == OAUTH_GOOGLE && desc &&
		   !strstr(desc, "Signature") && !strstr(desc, "JWT")) {
		/* Google: "Invalid email or User ID", or delegation missing for this user. */
		fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, OAUTH_ERR_USER, "no token for %s: %s", who, text);
		fleet_err_detail(err, "check that the user exists and that domain-wide delegation covers "
				      "https://mail.google.com/");
	} else {
		/* invalid_client, unauthorized_client, invalid_scope, a bad signature: the credentials
		 * themselves are refused, for every user. */
		fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_RUN, OAUTH_ERR_CLIENT, "the token endpoint refused %s: %s",
			      who, text);
		fleet_err_detail(err, cfg->provider == OAUTH_MS365
					  ? "check --tenant, --client-id and the client secret or certificate; the "
					    "application needs the IMAP.AccessAsApp permission with admin consent"
					  : "check the service account key and its domain-wide delegation");
	}
out:
	json_decref(j);
	return rc;
}

int oauth_fetch_token(const struct oauth_config *cfg, const char *user, char **token, int64_t *expires_at,
		      struct fleet_err *err)
{
	struct oauth_creds cr;
	struct http_reply r;
	struct fleet_buf form = FLEET_BUF_INIT(OAUTH_FORM_MAX);
	CURL *esc;
	char *who = NULL, *assertion = NULL;
	int rc = -1;

	*token = NULL;
	memset(&r, 0, sizeof(r));
	r.body = (struct fleet_buf)FLEET_BUF_INIT(OAUTH_RESPONSE_MAX);
	if (creds_load(cfg, &cr, err) < 0)
		return -1;
	pthread_once(&g_curl_once, curl_init_once);
	esc = curl_easy_init();
	if (!esc) {
		creds_release(&cr);
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, OAUTH_ERR_UNAVAILABLE,
				     "could not start an HTTPS request");
	}
	if (cfg->provider == OAUTH_MS365) {
		who = xasprintf("application %s of tenant %s", cfg->client_id, cfg->tenant);
		form_add(esc, &form, "grant_type", "client_credentials");
		form_add(esc, &form, "client_id", cfg->client_id);
		form_add(esc, &form, "scope", OAUTH_MS365_SCOPE);
		if (cr.secret) {
			form_add(esc, &form, "client_secret", cr.secret);
		} else {
			json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "x5t", cr.x5t);
			char *jti = random_jti();
			time_t now = time(NULL);
			json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", cr.token_url, "iss",
					      cfg->client_id, "sub", cfg->client_id, "jti", jti, "nbf", (json_int_t)now,
					      "iat", (json_int_t)now, "exp", (json_int_t)now + 600);

			assertion = jwt_sign(cr.key, h, c, err);
			json_decref(h);
			json_decref(c);
			xfree(&jti);
			if (!assertion)
				goto out;
			form_add(esc, &form, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
			form_add(esc, &form, "client_assertion", assertion);
		}
	} else {
		json_t *h = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
		time_t now = time(NULL);
		json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", cr.client_email, "sub", user ? user : "",
				      "scope", OAUTH_GOOGLE_SCOPE, "aud", cr.token_url, "iat", (json_int_t)now, "exp",
				      (json_int_t)now + OAUTH_JWT_LIFETIME_S);

		who = xasprintf("user %s (service account %s)", user ? user : "", cr.client_email);
		assertion = jwt_sign(cr.key, h, c, err);
		json_decref(h);
		json_decref(c);
		if (!assertion)
			goto out;
		form_add(esc, &form, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
		form_add(esc, &form, "assertion", assertion);
	}
	if (fleet_buf_truncated(&form)) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, OAUTH_ERR_CONFIG,
			      "the token request for %s is longer than %d bytes", who,
			      OAUTH_FORM_MAX);
		goto out;
	}
	if (http_post(cfg, cr.token_url, fleet_buf_cstr(&form), &r, err) < 0)
		goto out;
	rc = parse_reply(cfg, who, &r, token, expires_at, err);
	if (rc == 0)
		log_debug("token obtained for %s, valid %lld s", who, (long long)(*expires_at - (int64_t)time(NULL)));
out:
	if (form.data)
		OPENSSL_cleanse(form.data, form.cap);
	fleet_buf_release(&form);
	if (r.body.data)
		OPENSSL_cleanse(r.body.data, r.body.cap);
	fleet_buf_release(&r.body);
	cred_free(&assertion);
	xfree(&who);
	curl_easy_cleanup(esc);
	creds_release(&cr);
	return rc;
}

/* ---- cache ----------------------------------------------------------------------------------------- */

struct cache_entry {
	char *key;
	char *token;
	int64_t expires_at, fetched_at;
	int64_t fetched_ms; /* when this process obtained it (wall clock, ms) */
	int fetching;
	struct fleet_err refused; /* OAUTH_CLIENT refusal remembered for the credentials */
	struct cache_entry *next;
};

struct oauth_cache {
	pthread_mutex_t lock;
	pthread_cond_t done;
	struct cache_entry *entries;
	uint64_t fetches, shared_hits;
	oauth_fetch_fn fetch;
	void *fetch_ctx;
};

static int default_fetch(void *ctx, const struct oauth_config *cfg, const char *user, char **token,
			 int64_t *expires_at, struct fleet_err *err)
{
	(void)ctx;
	return oauth_fetch_token(cfg, user, token, expires_at, err);
}

struct oauth_cache *oauth_cache_new(void)
{
	struct oauth_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->done, NULL);
	c->fetch = default_fetch;
	return c;
}

void oauth_cache_set_fetch(struct oauth_cache *c, oauth_fetch_fn fn, void *ctx)
{
	c->fetch = fn ? fn : default_fetch;
	c->fetch_ctx = ctx;
}

void oauth_cache_free(struct oauth_cache **c)
{
	if (!c || !*c)
		return;
	while ((*c)->entries) {
		struct cache_entry *e = (*c)->entries;

		(*c)->entries = e->next;
		cred_free(&e->token);
		xfree(&e->key);
		xfree(&e);
	}
	pthread_mutex_destroy(&(*c)->lock);
	pthread_cond_destroy(&(*c)->done);
	xfree(c);
}

void oauth_stored_release(struct oauth_stored *st)
{
	cred_free(&st->token);
	memset(st, 0, sizeof(*st));
}

static uint64_t read_counter(struct oauth_cache *c, const uint64_t *n)
{
	uint64_t v;

	pthread_mutex_lock(&c->lock);
	v = *n;
	pthread_mutex_unlock(&c->lock);
	return v;
}

uint64_t oauth_cache_fetches(struct oauth_cache *c)
{
	return read_counter(c, &c->fetches);
}

uint64_t oauth_cache_shared_hits(struct oauth_cache *c)
{
	return read_counter(c, &c->shared_hits);
}

/* A token is handed out until a fifth of its lifetime (at most OAUTH_FRESH_MARGIN_MAX_S) is left. */
static int fresh_times(int64_t expires_at, int64_t fetched_at, int64_t now)
{
	int64_t margin = (expires_at - fetched_at) / 5;

	if (margin > OAUTH_FRESH_MARGIN_MAX_S)
		margin = OAUTH_FRESH_MARGIN_MAX_S;
	return now < expires_at - margin;
}

/* A refused application token younger than a quarter of its lifetime (at least 1 s, at most
 * OAUTH_REFRESH_MIN_S) is not fetched again (see oauth.h). fetched_ms: when it was obtained (wall
 * clock, ms). */
static int too_young_to_refresh(const struct oauth_config *cfg, int64_t expires_at, int64_t fetched_at,
				int64_t fetched_ms)
{
	int64_t min = (expires_at - fetched_at) * 1000 / 4, now = (int64_t)fleet_wall_ms();

	if (min > OAUTH_REFRESH_MIN_S * 1000)
		min = OAUTH_REFRESH_MIN_S * 1000;
	if (min < 1000)
		min = 1000;
	return cfg->provider == OAUTH_MS365 && now < expires_at * 1000 && now - fetched_ms < min;
}

static struct cache_entry *find_entry(struct oauth_cache *c, char **key)
{
	struct cache_entry *e;

	for (e = c->entries; e && strcmp(e->key, *key) != 0; e = e->next)
		;
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		e->key = *key;
		*key = NULL;
		e->next = c->entries;
		c->entries = e;
	}
	xfree(key);
	return e;
}

/* Outside the cache's lock: the shared store, then the endpoint. old is the token this process
 * last handed out for the key (the refused one when refresh is set). Returns 0 with *tok, *exp,
 * *fat and *fetched set, or -1 with err. */
static int obtain(struct oauth_cache *c, const struct oauth_config *cfg, const char *user, const char *key,
		  const char *ckey, int refresh, const char *old, const struct oauth_shared *shared, char **tok,
		  int64_t *exp, int64_t *fat, int *fetched, struct fleet_err *err)
{
	struct oauth_stored st;
	struct fleet_err serr;
	int locked = 0, rc;

	memset(&st, 0, sizeof(st));
	*fetched = 0;
	if (shared && shared->begin(shared->ctx, key, ckey, &st, &serr) == 0) {
		int64_t now = (int64_t)time(NULL);

		locked = 1;
		if (st.refused) {
			*err = st.refusal;
			shared->end(shared->ctx, key, ckey, NULL, 0, 0, NULL);
			oauth_stored_release(&st);
			return -1;
		}
		if (st.token && fresh_times(st.expires_at, st.fetched_at, now) &&
		    (!refresh || !old || strcmp(old, st.token) != 0 ||
		     too_young_to_refresh(cfg, st.expires_at, st.fetched_at, st.fetched_at * 1000))) {
			/* Another host (or an earlier run) has it: no request. */
			shared->end(shared->ctx, key, ckey, NULL, 0, 0, NULL);
			*tok = st.token;
			st.token = NULL;
			*exp = st.expires_at;
			*fat = st.fetched_at;
			oauth_stored_release(&st);
			pthread_mutex_lock(&c->lock);
			c->shared_hits++;
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		oauth_stored_release(&st);
	} else if (shared) {
		log_debug("token store not available (%s): asking the token endpoint directly", serr.message);
	}
	pthread_mutex_lock(&c->lock);
	c->fetches++;
	pthread_mutex_unlock(&c->lock);
	rc = c->fetch(c->fetch_ctx, cfg, user, tok, exp, err);
	*fat = (int64_t)time(NULL);
	*fetched = rc == 0;
	if (locked)
		shared->end(shared->ctx, key, ckey, rc == 0 ? *tok : NULL, *exp, *fat,
			    rc < 0 && strcmp(err->code, OAUTH_ERR_CLIENT) == 0 ? err : NULL);
	return rc;
}

int oauth_cache_get(struct oauth_cache *c, const struct oauth_config *cfg, const char *user, int refresh,
		    const struct oauth_shared *shared, char **token, int *fetched, struct fleet_err *err)
{
	char *key = oauth_cache_key(cfg, user);
	/* A refusal of the credentials themselves holds for every user of them. */
	char *ckey = oauth_cache_key(cfg, NULL);
	struct cache_entry *e, *ce;
	char *tok = NULL, *old = NULL;
	int64_t exp = 0, fat = 0;
	int rc, got = 0;

	*token = NULL;
	if (fetched)
		*fetched = 0;
	pthread_mutex_lock(&c->lock);
	e = find_entry(c, &key);
	ce = find_entry(c, &ckey);
	for (;;) {
		int64_t now = (int64_t)time(NULL);

		if (fleet_err_is_set(&ce->refused)) {
			*err = ce->refused;
			pthread_mutex_unlock(&c->lock);
			return -1;
		}
		if (!e->fetching && e->token && fresh_times(e->expires_at, e->fetched_at, now) &&
		    (!refresh || too_young_to_refresh(cfg, e->expires_at, e->fetched_at, e->fetched_ms))) {
			*token = xstrdup(e->token);
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		if (!e->fetching)
			break;
		/* Another thread fetches this key: share its token (a refresh it is doing is ours too). */
		pthread_cond_wait(&c->done, &c->lock);
		refresh = 0;
	}
	e->fetching = 1;
	if (e->token)
		old = xstrdup(e->token);
	pthread_mutex_unlock(&c->lock);

	rc = obtain(c, cfg, user, e->key, ce->key, refresh, old, shared, &tok, &exp, &fat, &got, err);
	cred_free(&old);

	pthread_mutex_lock(&c->lock);
	e->fetching = 0;
	if (rc == 0) {
		fleet_log_add_secret(tok);
		cred_free(&e->token);
		e->token = tok;
		e->expires_at = exp;
		e->fetched_at = fat;
		e->fetched_ms = (int64_t)fleet_wall_ms();
		*token = xstrdup(tok);
		if (fetched)
			*fetched = got;
	} else if (err->scope == FLEET_SCOPE_RUN) {
		ce->refused = *err; /* no second request with credentials the endpoint refused */
	}
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int oauth_cred_hook(void *ctx, int refresh, char **out, struct fleet_err *err)
{
	const struct oauth_cred_ctx *oc = ctx;

	return oauth_cache_get(oc->cache, oc->cfg, oc->user, refresh, oc->shared, out, NULL, err);
}

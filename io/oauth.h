/* io/oauth.h: OAuth 2.0 access tokens from a token endpoint, for tenant-level credentials.
 *
 * Two ways an organisation lets a migration tool into every mailbox without the users' passwords:
 *
 *   ms365   Microsoft 365 app-only access: the client credentials grant of an application that
 *           holds the IMAP.AccessAsApp permission. The application proves itself with a client
 *           secret or with a certificate: then a client assertion (a JWT signed RS256 with the
 *           certificate's key, x5t = the certificate's SHA-1 thumbprint, aud = the token URL).
 *           Scope https://outlook.office365.com/.default. One token serves every mailbox of the
 *           tenant: the IMAP login is XOAUTH2 with the mailbox address and that token.
 *   google  Google Workspace service account with domain-wide delegation: per user, a JWT (RS256,
 *           signed with the service account's key, iss = its client_email, sub = the user, scope
 *           https://mail.google.com/) exchanged at the token endpoint (JWT bearer grant) for a
 *           token of that user.
 *
 * HTTPS with libcurl: the endpoint's certificate and host name are verified like the IMAP servers'
 * (the system CAs plus cafile; insecure only when asked, and the caller warns), https only, no
 * redirects, a 30 s timeout, responses capped at 64 KB. JSON with jansson.
 *
 * Secrets: the client secret, the private key, every assertion and every access token are
 * registered with fleet_log_add_secret() as soon as they exist and wiped when freed.
 *
 * Errors (the classification the scheduler acts on):
 *   FLEET_ERR_AUTH, FLEET_SCOPE_RUN, code "OAUTH_CLIENT": the endpoint refused the application or
 *       service account itself (wrong client secret or certificate, unknown client or tenant,
 *       bad signature, wrong scope): every account using these credentials will fail the same way.
 *   FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, code "OAUTH_USER": this user cannot have a token
 *       (unknown user, delegation not granted for it).
 *   FLEET_ERR_THROTTLED (HTTP 429, honouring Retry-After) or FLEET_ERR_TRANSIENT (network, TLS
 *       handshake, HTTP 5xx), code "OAUTH_UNAVAILABLE".
 *   FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, code "OAUTH_CONFIG": unreadable key/secret file, bad
 *       service account JSON, a certificate that does not verify.
 *
 * oauth_cache: tokens kept per (provider, tenant/client or service account, user) and handed out
 * until shortly before they expire (a fifth of their lifetime, at most 5 minutes), so 2,000
 * accounts of one tenant share one application token. When the endpoint refused the credentials
 * themselves (OAUTH_CLIENT), the cache remembers it and fails every later request for them at once
 * with the same error and no network call: no retry storm, no lockout. Thread-safe.
 *
 * Behind the cache, a store shared by several processes (struct oauth_shared: the state database,
 * so that every worker host shares the tokens): before a process goes to the endpoint it locks the
 * key in the store, takes a fresh token another host stored, or fetches one and stores it; a
 * refusal of the credentials is stored too, so the other hosts do not ask again either.
 *
 * Cache keys are "NAME #FINGERPRINT": NAME ("ms365:contoso/app1", "google:user@example.org") says
 * what the token is for and holds nothing secret; FINGERPRINT is a digest of the credentials'
 * files (client secret, certificate, service account key), so that fixed credentials are a new
 * key (an old refusal does not stick to them) and every host with the same files shares the key.
 */
#ifndef IMAPFLEET_IO_OAUTH_H
#define IMAPFLEET_IO_OAUTH_H

#include <stdint.h>

#include "common/err.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* every code below starts with it */
#define OAUTH_ERR_PREFIX "OAUTH_"
/* the token service refused the client */
#define OAUTH_ERR_CLIENT "OAUTH_CLIENT"
/* the OAuth settings are incomplete or wrong */
#define OAUTH_ERR_CONFIG "OAUTH_CONFIG"
/* the token service could not be reached or failed */
#define OAUTH_ERR_UNAVAILABLE "OAUTH_UNAVAILABLE"
/* the token service refused the user (consent, grant revoked) */
#define OAUTH_ERR_USER "OAUTH_USER"

enum oauth_provider {
	OAUTH_NONE = 0,
	OAUTH_MS365,
	OAUTH_GOOGLE,
};

#define OAUTH_MS365_SCOPE  "https://outlook.office365.com/.default"
#define OAUTH_GOOGLE_SCOPE "https://mail.google.com/"

/* ---- caps and times --------------------------------------------------------------------------- */
/* The token endpoint's answer: a JSON object with one access token (a few KB). */
#define OAUTH_RESPONSE_MAX (64 * 1024)
/* A certificate with its key, or a service account's key JSON (about 2.5 KB). */
#define OAUTH_KEYFILE_MAX (64 * 1024)
/* A client secret file: the secret is one line of about 40 characters. */
#define OAUTH_SECRET_FILE_MAX 4096
/* The request's form: a signed JWT assertion (an RS256 signature of up to 4096-bit keys) and the
 * client's names, URL-encoded. */
#define OAUTH_FORM_MAX (256 * 1024)
/* The whole HTTPS request, when oauth_config.timeout_ms is 0. */
#define OAUTH_TIMEOUT_MS 30000
/* Retry-After of a 429 answer is taken up to an hour; without one, the wait is
 * OAUTH_THROTTLE_WAIT_MS. */
#define OAUTH_RETRY_AFTER_MAX_S 3600
#define OAUTH_THROTTLE_WAIT_MS	10000u
/* A token whose answer gives no expires_in is taken to last an hour (both providers' default). */
#define OAUTH_DEFAULT_LIFETIME_S 3600
/* Google's JWT assertion: its exp is at most an hour after iat. */
#define OAUTH_JWT_LIFETIME_S 3600
/* A cached token is handed out until a fifth of its lifetime, at most this, is left. */
#define OAUTH_FRESH_MARGIN_MAX_S 300

/* Tenant-level credentials of one side (strings borrowed). */
struct oauth_config {
	enum oauth_provider provider;
	const char *tenant;		/* ms365: directory (tenant) id or domain */
	const char *client_id;		/* ms365: application (client) id */
	const char *client_secret_file; /* ms365: file holding the client secret, or NULL */
	const char *client_cert;	/* ms365: PEM with the certificate and its private key, or NULL */
	const char *service_account;	/* google: the service account's key JSON file */
	const char *token_url;		/* NULL: login.microsoftonline.com/<tenant>/... or the key's token_uri */
	const char *cafile;		/* extra CA for the endpoint (the side's --cafile) */
	int insecure;			/* do not verify the endpoint's certificate (explicit) */
	unsigned timeout_ms;		/* 0 = OAUTH_TIMEOUT_MS */
};

/* "ms365" / "google" -> provider; -1 when unknown. */
int oauth_provider_from_name(const char *name, enum oauth_provider *out);
const char *oauth_provider_name(enum oauth_provider p);

/* Checks that the configuration is complete and its files readable and well formed (secret file,
 * certificate and key, service account JSON) without any network call. 0 or -1 (OAUTH_CONFIG). */
int oauth_config_check(const struct oauth_config *cfg, struct fleet_err *err);

/* What the tokens of cfg are cached under for user (see above): one key per application for ms365
 * (one token for all users), one per user for google. user NULL: the key of the credentials
 * themselves (where a refusal is remembered). Heap string. */
char *oauth_cache_key(const struct oauth_config *cfg, const char *user);

/* Fetches a new token from the endpoint (no cache). user: the mailbox (google: the JWT's sub; ms365:
 * unused). *token (heap, registered as a secret; free with cred_free) and *expires_at (wall-clock
 * seconds). */
int oauth_fetch_token(const struct oauth_config *cfg, const char *user, char **token, int64_t *expires_at,
		      struct fleet_err *err);

/* What a shared store holds for a key (oauth_shared.begin). */
struct oauth_stored {
	char *token;		    /* heap, registered as a secret, or NULL */
	int64_t expires_at, fetched_at; /* wall-clock seconds */
	int refused;		    /* the credentials' key holds a recent refusal (in err) */
	struct fleet_err refusal;
};

/* A store shared with other processes. Both calls are made by the thread asking for the token,
 * one begin() then one end() for the same key. */
struct oauth_shared {
	/* Locks key against the other processes until end() (they wait: one fetches, all share) and
	 * reads what is stored for key and any refusal stored for ckey (the credentials' key).
	 * Returns 0, or -1 when the store cannot be used now: the cache then works alone, and end()
	 * is not called. */
	int (*begin)(void *ctx, const char *key, const char *ckey, struct oauth_stored *out,
		     struct fleet_err *err);
	/* Stores a new token for key (token non-NULL) or a refusal of the credentials under ckey
	 * (refusal non-NULL), or nothing, and unlocks. */
	void (*end)(void *ctx, const char *key, const char *ckey, const char *token, int64_t expires_at,
		    int64_t fetched_at, const struct fleet_err *refusal);
	void *ctx;
};

/* Frees what oauth_shared.begin read (wipes the token). */
void oauth_stored_release(struct oauth_stored *st);

/* How a cache gets a new token: oauth_fetch_token, or a test's stand-in. */
typedef int (*oauth_fetch_fn)(void *ctx, const struct oauth_config *cfg, const char *user, char **token,
			      int64_t *expires_at, struct fleet_err *err);

struct oauth_cache;
struct oauth_cache *oauth_cache_new(void);
void oauth_cache_free(struct oauth_cache **c);
/* Replaces oauth_fetch_token (tests). */
void oauth_cache_set_fetch(struct oauth_cache *c, oauth_fetch_fn fn, void *ctx);

/* A token for (cfg, user): the cached one while it is fresh and refresh is 0, else a fresh one from
 * the shared store (when given: may be NULL) or from the endpoint (one fetch at a time per key:
 * other threads wait for it and share it, other processes too through the store). refresh = 1
 * (the last token was refused at login) skips a token equal to the refused one; an application
 * token (ms365) fetched less than OAUTH_REFRESH_MIN_S ago is handed out again instead, so mailboxes
 * the application may not open do not each fetch a new one. *fetched is set to 1 when this call
 * went to the endpoint (may be NULL). */
#define OAUTH_REFRESH_MIN_S 30
int oauth_cache_get(struct oauth_cache *c, const struct oauth_config *cfg, const char *user, int refresh,
		    const struct oauth_shared *shared, char **token, int *fetched, struct fleet_err *err);
/* Tokens fetched from the endpoint so far (all keys), and tokens taken from the shared store. */
uint64_t oauth_cache_fetches(struct oauth_cache *c);
uint64_t oauth_cache_shared_hits(struct oauth_cache *c);

/* The glue to io/cred.h: a cred_source of kind CRED_HOOK with hook = oauth_cred_hook and hook_ctx
 * pointing to this (all borrowed) gives the engine a token for user at every login. */
struct oauth_cred_ctx {
	struct oauth_cache *cache;
	const struct oauth_config *cfg;
	const char *user;
	const struct oauth_shared *shared; /* may be NULL */
};
int oauth_cred_hook(void *ctx, int refresh, char **out, struct fleet_err *err);

#endif

/* cli/args.h: the imapsync-style per-side options shared by sync and probe
 * (--host1 --port1 --user1 --passfile1 --password1 --authuser1 --ssl1 --tls1 --plain1 --nossl1
 * --notls1 --cafile1 --insecure1 --oauthtokenfile1 --tokenfile1 --tokencmd1 --passcmd1 --authmech1, and
 * the same with 2). */
#ifndef IMAPFLEET_CLI_ARGS_H
#define IMAPFLEET_CLI_ARGS_H

#include <stdint.h>

#include "io/cred.h"
#include "io/imap.h"
#include "io/oauth.h"
#include "io/stream.h"

struct cli_side {
	const char *host;
	uint64_t port;
	const char *user;
	const char *passfile;
	const char *password_arg;   /* --password1: accepted but warned about (visible in ps) */
	const char *authuser;
	const char *cafile;
	const char *tokenfile;      /* --tokenfile / --oauthtokenfile: re-read on every login */
	const char *tokencmd;       /* --tokencmd "CMD ARGS": prints a token (no shell) */
	const char *passcmd;        /* --passcmd "CMD ARGS": prints the password (no shell) */
	enum imap_auth_mech auth;   /* --authmech (imapsync's spelling), IMAP_AUTH_AUTO by default */
	struct cred_source cred;    /* set by cli_side_finish for tokenfile/tokencmd/passcmd */
	char **cmd_argv;            /* the split command of cred (heap) */
	struct oauth_config oauth;  /* --oauth ms365|google --tenant --client-id --client-secret-file
	                             * --client-cert --service-account --token-url */
	struct oauth_cred_ctx oauth_ctx;
	int insecure;
	int mode_set;
	enum io_tls_mode mode;
	char *password;             /* loaded secret (heap, wiped on release) */
	char *token;
};

/* If argv[*i] is a side option ("--host1", "--ssl2", ...) consumes it (and its value) and returns 1;
 * 0 when it is not one; -1 on a bad value (message printed). side_count: 1 for probe's unnumbered
 * form (--host, --port ...), 2 for sync's numbered form. */
int cli_side_option(struct cli_side *sides, int side_count, int argc, char **argv, int *i);

/* Checks required fields, resolves defaults (mode by port: 993 -> ssl, 143 -> tls), reads the
 * passfile (or --password) and registers secrets; a tokenfile, tokencmd or passcmd becomes s->cred,
 * fetched on every login (cli_side_fetch for a single login). which: "1"/"2" or "" for messages.
 * 0 or -1 (message printed). */
int cli_side_finish(struct cli_side *s, const char *which, int need_login);
/* The process-wide token cache of the tenant-level credentials (--oauth1/2). */
struct oauth_cache *cli_oauth_cache(void);
/* For a single login (probe): fetches s->cred now into s->token or s->password. 0 or -1 (printed). */
int cli_side_fetch(struct cli_side *s);
/* "XOAUTH2" -> IMAP_AUTH_XOAUTH2 (also OAUTHBEARER, PLAIN, LOGIN; any case). -1 when unknown. */
int cli_parse_authmech(const char *name, enum imap_auth_mech *out);
/* Fills an endpoint from the side (strings borrowed from s). */
void cli_side_endpoint(const struct cli_side *s, const char *label, struct io_endpoint *ep);
void cli_side_release(struct cli_side *s);

#endif

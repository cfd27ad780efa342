/* cli/args.c: per-side options (see args.h). */
#include "cli/args.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "accounts/accounts.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/util.h"

static int side_index(const char *name, int side_count, char *base, size_t cap)
{
	size_t len = strlen(name);

	if (side_count == 1) {
		snprintf(base, cap, "%s", name);
		return 0;
	}
	if (len < 4 || (name[len - 1] != '1' && name[len - 1] != '2'))
		return -1;
	snprintf(base, cap, "%.*s", (int)(len - 1), name);
	return name[len - 1] - '1';
}

int cli_side_option(struct cli_side *sides, int side_count, int argc, char **argv, int *i)
{
	const char *arg = argv[*i];
	char base[64];
	const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	struct cli_side *s;
	int idx;
	static const char *const valued[] = {"--host", "--port", "--user", "--passfile", "--password",
					     "--authuser", "--cafile", "--oauthtokenfile", "--tokenfile",
					     "--tokencmd", "--passcmd", "--authmech", "--oauth", "--tenant",
					     "--client-id", "--client-secret-file", "--client-cert",
					     "--service-account", "--token-url"};
	static const char *const flags[] = {"--ssl", "--tls", "--plain", "--nossl", "--notls", "--insecure"};
	int is_valued = 0, is_flag = 0;

	if (strncmp(arg, "--", 2) != 0)
		return 0;
	idx = side_index(arg, side_count, base, sizeof(base));
	if (idx < 0)
		return 0;
	for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
		is_valued |= strcmp(base, valued[k]) == 0;
	for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
		is_flag |= strcmp(base, flags[k]) == 0;
	if (!is_valued && !is_flag)
		return 0;
	s = &sides[idx];
	if (is_valued) {
		if (!val) {
			fprintf(stderr, "imapfleet: option %s needs a value\n", arg);
			return -1;
		}
		(*i)++;
		if (strcmp(base, "--host") == 0)
			s->host = val;
		else if (strcmp(base, "--port") == 0) {
			if (fleet_parse_u64(val, 1, 65535, &s->port) < 0) {
				fprintf(stderr, "imapfleet: option %s: '%s' is not a port (1-65535)\n", arg, val);
				return -1;
			}
		} else if (strcmp(base, "--user") == 0)
			s->user = val;
		else if (strcmp(base, "--passfile") == 0)
			s->passfile = val;
		else if (strcmp(base, "--password") == 0) {
			s->password_arg = val;
			fleet_log_add_secret(val);
		} else if (strcmp(base, "--authuser") == 0)
			s->authuser = val;
		else if (strcmp(base, "--cafile") == 0)
			s->cafile = val;
		else if (strcmp(base, "--oauthtokenfile") == 0 || strcmp(base, "--tokenfile") == 0)
			s->tokenfile = val;
		else if (strcmp(base, "--tokencmd") == 0)
			s->tokencmd = val;
		else if (strcmp(base, "--passcmd") == 0)
			s->passcmd = val;
		else if (strcmp(base, "--oauth") == 0 && oauth_provider_from_name(val, &s->oauth.provider) < 0) {
			fprintf(stderr, "imapfleet: option %s: '%s' is not ms365 or google\n", arg, val);
			return -1;
		} else if (strcmp(base, "--tenant") == 0)
			s->oauth.tenant = val;
		else if (strcmp(base, "--client-id") == 0)
			s->oauth.client_id = val;
		else if (strcmp(base, "--client-secret-file") == 0)
			s->oauth.client_secret_file = val;
		else if (strcmp(base, "--client-cert") == 0)
			s->oauth.client_cert = val;
		else if (strcmp(base, "--service-account") == 0)
			s->oauth.service_account = val;
		else if (strcmp(base, "--token-url") == 0)
			s->oauth.token_url = val;
		else if (strcmp(base, "--authmech") == 0 && cli_parse_authmech(val, &s->auth) < 0) {
			fprintf(stderr, "imapfleet: option %s: '%s' is not XOAUTH2, OAUTHBEARER, PLAIN or LOGIN\n", arg, val);
			return -1;
		}
		return 1;
	}
	if (strcmp(base, "--ssl") == 0) {
		s->mode = IO_TLS_IMPLICIT;
		s->mode_set = 1;
	} else if (strcmp(base, "--tls") == 0) {
		s->mode = IO_TLS_STARTTLS;
		s->mode_set = 1;
	} else if (strcmp(base, "--plain") == 0 || strcmp(base, "--nossl") == 0 || strcmp(base, "--notls") == 0) {
		/* imapsync's --nossl/--notls mean "no TLS": here that is the explicit cleartext choice. */
		s->mode = IO_TLS_PLAIN;
		s->mode_set = 1;
	} else if (strcmp(base, "--insecure") == 0) {
		s->insecure = 1;
	}
	return 1;
}

int cli_parse_authmech(const char *name, enum imap_auth_mech *out)
{
	static const struct {
		const char *name;
		enum imap_auth_mech mech;
	} mechs[] = {{"XOAUTH2", IMAP_AUTH_XOAUTH2},
		     {"OAUTHBEARER", IMAP_AUTH_OAUTHBEARER},
		     {"PLAIN", IMAP_AUTH_PLAIN},
		     {"LOGIN", IMAP_AUTH_LOGIN}};

	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (fleet_strcaseeq(name, mechs[i].name)) {
			*out = mechs[i].mech;
			return 0;
		}
	return -1;
}

/* Sets s->cred from the tokenfile / tokencmd / passcmd option. */
static int side_cred(struct cli_side *s, const char *which)
{
	const char *cmd = s->tokencmd ? s->tokencmd : s->passcmd;
	char why[256];
	int argc;

	memset(&s->cred, 0, sizeof(s->cred));
	s->cred.is_token = s->tokenfile || s->tokencmd;
	if (s->tokenfile) {
		s->cred.kind = CRED_FILE;
		s->cred.value = s->tokenfile;
		s->cred.name = "--tokenfile";
		return 0;
	}
	if (!cmd)
		return 0;
	if (accounts_split_args(cmd, &argc, &s->cmd_argv, why, sizeof(why)) < 0 || argc == 0) {
		fprintf(stderr, "imapfleet: --%s%s: %s\n", s->tokencmd ? "tokencmd" : "passcmd", which,
			argc == 0 ? "the command is empty" : why);
		return -1;
	}
	s->cred.kind = CRED_CMD;
	s->cred.argv = s->cmd_argv;
	s->cred.name = s->tokencmd ? "--tokencmd" : "--passcmd";
	return 0;
}

struct oauth_cache *cli_oauth_cache(void)
{
	static struct oauth_cache *cache; /* lives as long as the process */

	if (!cache)
		cache = oauth_cache_new();
	return cache;
}

/* Tenant-level credentials: a token for the user from the provider, at every login. */
static int side_oauth(struct cli_side *s, const char *which)
{
	struct fleet_err err;

	s->oauth.cafile = s->cafile;
	s->oauth.insecure = s->insecure;
	if (oauth_config_check(&s->oauth, &err) < 0) {
		fprintf(stderr, "imapfleet: side %s (--oauth%s %s): %s\n", which[0] ? which : "", which,
			oauth_provider_name(s->oauth.provider), err.message);
		return -1;
	}
	if (s->insecure)
		fprintf(stderr, "imapfleet: warning: the token endpoint's certificate is not verified either "
				"(--insecure%s)\n", which);
	if (s->auth == IMAP_AUTH_AUTO)
		s->auth = IMAP_AUTH_XOAUTH2; /* what both providers document for IMAP */
	s->oauth_ctx.cache = cli_oauth_cache();
	s->oauth_ctx.cfg = &s->oauth;
	s->oauth_ctx.user = s->user;
	memset(&s->cred, 0, sizeof(s->cred));
	s->cred.kind = CRED_HOOK;
	s->cred.is_token = 1;
	s->cred.name = "--oauth";
	s->cred.hook = oauth_cred_hook;
	s->cred.hook_ctx = &s->oauth_ctx;
	return 0;
}

int cli_side_finish(struct cli_side *s, const char *which, int need_login)
{
	char why[256];
	int nsources;

	if (!s->host) {
		fprintf(stderr, "imapfleet: --host%s is required\n", which);
		return -1;
	}
	if (!s->mode_set)
		s->mode = (s->port == 143) ? IO_TLS_STARTTLS : IO_TLS_IMPLICIT;
	if (s->mode == IO_TLS_PLAIN)
		fprintf(stderr, "imapfleet: warning: %s%s uses cleartext IMAP (--plain%s): passwords cross the "
				"network unencrypted\n", which[0] ? "side " : "the connection", which, which);
	if (s->insecure)
		fprintf(stderr, "imapfleet: warning: certificate verification is off for %s%s (--insecure%s)\n",
			which[0] ? "side " : "the connection", which, which);
	if (!need_login)
		return 0;
	if (!s->user) {
		fprintf(stderr, "imapfleet: --user%s is required\n", which);
		return -1;
	}
	nsources = !!s->passfile + !!s->password_arg + !!s->tokenfile + !!s->tokencmd + !!s->passcmd +
		   (s->oauth.provider != OAUTH_NONE);
	if (s->oauth.provider != OAUTH_NONE && nsources == 1)
		return side_oauth(s, which);
	if (nsources > 1) {
		fprintf(stderr, "imapfleet: side %s: give one of --passfile%s, --password%s, --passcmd%s, --tokenfile%s, "
				"--tokencmd%s, --oauth%s\n", which[0] ? which : "", which, which, which, which, which, which);
		return -1;
	}
	if ((s->auth == IMAP_AUTH_XOAUTH2 || s->auth == IMAP_AUTH_OAUTHBEARER) && !s->tokenfile && !s->tokencmd &&
	    s->oauth.provider == OAUTH_NONE) {
		fprintf(stderr, "imapfleet: --authmech%s %s needs a token: --tokenfile%s F or --tokencmd%s CMD\n", which,
			s->auth == IMAP_AUTH_XOAUTH2 ? "XOAUTH2" : "OAUTHBEARER", which, which);
		return -1;
	}
	if ((s->auth == IMAP_AUTH_PLAIN || s->auth == IMAP_AUTH_LOGIN) && (s->tokenfile || s->tokencmd)) {
		fprintf(stderr, "imapfleet: --authmech%s %s needs a password, not a token\n", which,
			s->auth == IMAP_AUTH_PLAIN ? "PLAIN" : "LOGIN");
		return -1;
	}
	if (s->tokenfile || s->tokencmd || s->passcmd)
		return side_cred(s, which);
	if (s->passfile) {
		s->password = fleet_read_passfile(s->passfile, FLEET_PASSFILE_MAX, why, sizeof(why));
		if (!s->password) {
			fprintf(stderr, "imapfleet: --passfile%s: %s\n", which, why);
			return -1;
		}
	} else if (s->password_arg) {
		fprintf(stderr, "imapfleet: warning: --password%s puts the password in the process list; "
				"prefer --passfile%s\n", which, which);
		s->password = xstrdup(s->password_arg);
	} else {
		fprintf(stderr, "imapfleet: --passfile%s (or --passcmd%s, --tokenfile%s, --tokencmd%s) is required\n", which,
			which, which, which);
		return -1;
	}
	fleet_log_add_secret(s->password);
	return 0;
}

int cli_side_fetch(struct cli_side *s)
{
	struct fleet_err err;
	char *secret;

	if (s->cred.kind == CRED_NONE)
		return 0;
	if (cred_fetch(&s->cred, 0, &secret, &err) < 0) {
		fprintf(stderr, "imapfleet: %s\n", err.message);
		if (err.detail[0])
			fprintf(stderr, "  %s\n", err.detail);
		return -1;
	}
	if (s->cred.is_token)
		s->token = secret;
	else
		s->password = secret;
	return 0;
}

void cli_side_endpoint(const struct cli_side *s, const char *label, struct io_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->host = s->host;
	ep->port = (uint16_t)s->port;
	ep->mode = s->mode;
	ep->cafile = s->cafile;
	ep->insecure = s->insecure;
	ep->label = label;
}

void cli_side_release(struct cli_side *s)
{
	if (s->password) {
		OPENSSL_cleanse(s->password, strlen(s->password));
		xfree(&s->password);
	}
	if (s->token) {
		OPENSSL_cleanse(s->token, strlen(s->token));
		xfree(&s->token);
	}
	accounts_free_args(&s->cmd_argv);
}

/* cli/args.c: per-side options (see args.h). */
#include "cli/args.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "accounts/accounts.h"
#include "cli/cli.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/util.h"
#include "ops/report.h"
#include "scheduler/scheduler.h"

int cli_parse(const char *cmd, const struct fleet_optset *sets, size_t nsets, unsigned flags, int argc, char **argv,
	      fleet_opt_fn fn, void *ctx)
{
	struct fleet_err err;

	if (fleet_opt_parse(sets, nsets, flags, "option", argc, argv, fn, ctx, &err) == 0)
		return 0;
	fprintf(stderr, "imapfleet %s: %s\n", cmd, err.message);
	fprintf(stderr, "run 'imapfleet %s --help' for the options\n", cmd);
	return -1;
}

void cli_usage(FILE *out, const char *text, const struct fleet_optset *sets, size_t nsets, unsigned flags)
{
	fputs(text, out);
	fleet_opt_help(out, sets, nsets, flags);
}

/* The spec's tables in parse order; returns how many. */
static size_t spec_sets(const struct cli_spec *spec, struct fleet_optset sets[CLI_SPEC_SETS])
{
	size_t n = 0;

	while (n < CLI_SPEC_SETS && spec->sets[n]) {
		sets[n] = *spec->sets[n];
		n++;
	}
	return n;
}

int cli_spec_parse(const struct cli_spec *spec, int argc, char **argv, fleet_opt_fn fn, void *ctx)
{
	struct fleet_optset sets[CLI_SPEC_SETS];
	size_t n = spec_sets(spec, sets);

	return cli_parse(spec->cmd, sets, n, spec->flags, argc, argv, fn, ctx);
}

int cli_spec_args(const struct cli_spec *spec, int argc, char **argv, fleet_opt_fn fn, void *ctx, const int *help)
{
	if (cli_spec_parse(spec, argc - 1, argv + 1, fn, ctx) < 0)
		return CLI_EXIT_USAGE;
	if (!*help)
		return -1;
	cli_spec_usage(stdout, spec);
	return CLI_EXIT_OK;
}

void cli_spec_usage(FILE *out, const struct cli_spec *spec)
{
	struct fleet_optset sets[CLI_SPEC_SETS];
	size_t n = spec_sets(spec, sets);

	cli_usage(out, spec->usage, sets, n, spec->flags);
}

int cli_no_operand(const struct fleet_opt_hit *hit, char *why, size_t cap)
{
	if (hit->opt)
		return 0;
	snprintf(why, cap, "unexpected argument '%s'", hit->words[0]);
	return -1;
}

int cli_opt_uint(const struct fleet_opt_hit *hit, uint64_t min, uint64_t max, unsigned *out, char *why, size_t cap)
{
	uint64_t n;

	if (fleet_parse_u64(hit->value, min, max, &n) < 0) {
		snprintf(why, cap, "option %s needs a number from %llu to %llu, not '%s'", hit->opt->name,
			 (unsigned long long)min, (unsigned long long)max, hit->value);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

int cli_opt_text(const struct fleet_opt_hit *hit, const char *what, const char **out, char *why, size_t cap)
{
	if (!hit->value[0]) {
		snprintf(why, cap, "option %s needs %s", hit->opt->name, what);
		return -1;
	}
	*out = hit->value;
	return 0;
}

int cli_opt_accounts_file(const struct fleet_opt_hit *hit, const char **path, const char *also, char *why,
			  size_t cap)
{
	if (*path) {
		snprintf(why, cap, "unexpected argument '%s'%s", hit->words[0], also);
		return -1;
	}
	*path = hit->words[0];
	return 0;
}

void cli_opt_keep_words(const struct fleet_opt_hit *hit, char **words, int *n)
{
	for (int k = 0; k < hit->nwords; k++)
		words[(*n)++] = hit->words[k];
}

void cli_rows_init(struct cli_rows *rows, int argc, const char **accounts_path, const char *also, size_t first_kept,
		   struct scheduler_config *sched)
{
	rows->accounts_path = accounts_path;
	rows->also = also;
	rows->first_kept = first_kept;
	rows->sched = sched;
	rows->words = xcalloc((size_t)argc + 1, sizeof(*rows->words)); /* every word may be kept */
	rows->n = 0;
}

void cli_rows_release(struct cli_rows *rows)
{
	xfree(&rows->words);
	rows->n = 0;
}

int cli_rows_option(struct cli_rows *rows, const struct fleet_opt_hit *hit, char *why, size_t cap)
{
	if (!hit->opt && !hit->dashdash)
		return cli_opt_accounts_file(hit, rows->accounts_path, rows->also, why, cap);
	if (!hit->opt || hit->set >= rows->first_kept) {
		cli_opt_keep_words(hit, rows->words, &rows->n);
		return 0;
	}
	if (rows->sched && hit->set == 1)
		return cli_sched_option(rows->sched, hit, why, cap);
	return 1;
}

int cli_opt_log_level(const struct fleet_opt_hit *hit, char *why, size_t cap)
{
	enum fleet_log_level lvl;

	if (fleet_log_level_from_name(hit->value, &lvl) < 0) {
		snprintf(why, cap, "unknown log level '%s' (error, warn, info, debug or trace)", hit->value);
		return -1;
	}
	fleet_log_set_level(lvl);
	return 0;
}

enum { STORE_HELP = 1, STORE_STATE, STORE_RUN };

static const struct fleet_opt store_table[] = {
	{"--help", 0, STORE_HELP, NULL, "this help"},
	{"--state", FLEET_OPT_VALUE, STORE_STATE, "URL", "PostgreSQL state (default: IMAPFLEET_STATE, PG* variables,\n"
							  "or ./.imapfleet/pg)"},
	{"--run", FLEET_OPT_VALUE, STORE_RUN, "ID", "this run (default: the active run, else the newest)"},
};
const struct fleet_optset cli_store_optset = FLEET_OPTSET(NULL, store_table);

int cli_store_option(struct cli_store_args *a, const struct fleet_opt_hit *hit, char *why, size_t cap)
{
	uint64_t id;

	switch (hit->opt->id) {
	case STORE_HELP: a->help = 1; return 0;
	case STORE_STATE: a->state_arg = hit->value; return 0;
	case STORE_RUN:
		if (fleet_parse_u64(hit->value, 1, INT64_MAX, &id) < 0) {
			snprintf(why, cap, "--run needs a run id (a number; see 'imapfleet status'), not '%s'", hit->value);
			return -1;
		}
		a->run_id = id;
		return 0;
	}
	return 0;
}

struct store_fwd {
	struct cli_store_args *store;
	fleet_opt_fn fn; /* the command's own options */
	void *ctx;
};

static int store_fwd_option(void *ctx, const struct fleet_opt_hit *hit, char *why, size_t cap)
{
	struct store_fwd *f = ctx;

	if (cli_no_operand(hit, why, cap) < 0)
		return -1;
	if (hit->set == 0)
		return cli_store_option(f->store, hit, why, cap);
	return f->fn(f->ctx, hit, why, cap);
}

int cli_store_spec_args(const struct cli_spec *spec, int argc, char **argv, struct cli_store_args *store,
			fleet_opt_fn fn, void *ctx)
{
	struct store_fwd f = {store, fn, ctx};

	return cli_spec_args(spec, argc, argv, store_fwd_option, &f, &store->help);
}

int cli_store_pick_run(const char *cmd, struct state_conn *sc, uint64_t run_arg, int64_t *run_id)
{
	struct fleet_err err;
	int r = report_pick_run(sc, (int64_t)run_arg, run_id, &err);

	if (r > 0)
		return -1;
	if (r < 0) {
		fprintf(stderr, "imapfleet %s: %s\n", cmd, err.message);
		return cli_exit_for_error(&err);
	}
	if (run_arg)
		fprintf(stderr, "imapfleet %s: no run %llu in the state store (see 'imapfleet status')\n", cmd,
			(unsigned long long)run_arg);
	else
		fprintf(stderr, "imapfleet %s: no run in the state store yet: nothing to %s\n", cmd, cmd);
	return CLI_EXIT_PARTIAL;
}

enum { SCHED_STATE = 1, SCHED_KEY_FILE, SCHED_WORKERS, SCHED_MAX_CONNS, SCHED_MAX_ATTEMPTS, SCHED_RETRY_BASE,
       SCHED_RETRY_CAP, SCHED_LOG_LEVEL };

static const struct fleet_opt sched_table[] = {
	{"--state", FLEET_OPT_VALUE, SCHED_STATE, "URL", "PostgreSQL state (default: IMAPFLEET_STATE, PG* variables,\n"
							  "or ./.imapfleet/pg)"},
	{"--workers", FLEET_OPT_VALUE, SCHED_WORKERS, "N", "accounts handled at once by this host (default {} per\n"
							   "core, at most {})"},
	{"--max-conns-per-host", FLEET_OPT_VALUE, SCHED_MAX_CONNS, "N", "connections per server (host:port) and\n"
									"side, across all hosts (default {})"},
	{"--max-attempts", FLEET_OPT_VALUE, SCHED_MAX_ATTEMPTS, "N", "failed attempts per account before it fails\n"
								     "(default {}; an attempt that copied messages\n"
								     "before it broke does not count)"},
	{"--retry-base", FLEET_OPT_VALUE, SCHED_RETRY_BASE, "MS", "backoff: full jitter, doubling from base ..."},
	{"--retry-cap", FLEET_OPT_VALUE, SCHED_RETRY_CAP, "MS", "... up to cap"},
	{"--key-file", FLEET_OPT_VALUE, SCHED_KEY_FILE, "F", "key that encrypts stored credentials (default\n"
							     "./.imapfleet/key)"},
	{"--log-level", FLEET_OPT_VALUE, SCHED_LOG_LEVEL, "L", "error|warn|info|debug|trace (trace: IMAP dialogues,\n"
							       "secrets redacted)"},
};
static const struct fleet_opt_default sched_defaults[] = {
	{SCHED_WORKERS, {SCHEDULER_WORKERS_PER_CORE, SCHEDULER_WORKERS_MAX}},
	{SCHED_MAX_CONNS, {SCHEDULER_CONNS_PER_HOST}},
	{SCHED_MAX_ATTEMPTS, {RETRY_MAX_ATTEMPTS}},
};
const struct fleet_optset cli_sched_optset = FLEET_OPTSET_DEFAULTS(NULL, sched_table, sched_defaults);

int cli_sched_option(struct scheduler_config *cfg, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	switch (h->opt->id) {
	case SCHED_STATE: cfg->state_arg = h->value; return 0;
	case SCHED_KEY_FILE: cfg->key_file = h->value; return 0;
	case SCHED_WORKERS: return cli_opt_uint(h, 1, 1024, &cfg->workers, why, cap);
	case SCHED_MAX_CONNS: return cli_opt_uint(h, 1, 10000, &cfg->max_conns_per_host, why, cap);
	case SCHED_MAX_ATTEMPTS: return cli_opt_uint(h, 1, 1000, &cfg->retry.max_attempts, why, cap);
	case SCHED_RETRY_BASE: return cli_opt_uint(h, 1, 86400000, &cfg->retry.base_ms, why, cap);
	case SCHED_RETRY_CAP: return cli_opt_uint(h, 1, 86400000, &cfg->retry.cap_ms, why, cap);
	case SCHED_LOG_LEVEL: return cli_opt_log_level(h, why, cap);
	}
	return 0;
}

int cli_side_set(struct cli_side *sides, const struct fleet_opt_hit *hit, char *why, size_t cap)
{
	return accounts_side_set(&sides[hit->side < 0 ? 0 : hit->side].set, hit, why, cap);
}

/* Sets s->cred from the tokenfile / tokencmd / passcmd option. */
static int side_cred(struct cli_side *s, const char *which)
{
	const char *cmd = s->set.tokencmd ? s->set.tokencmd : s->set.passcmd;
	char why[256];
	int argc;

	memset(&s->cred, 0, sizeof(s->cred));
	s->cred.is_token = s->set.tokenfile || s->set.tokencmd;
	if (s->set.tokenfile) {
		s->cred.kind = CRED_FILE;
		s->cred.value = s->set.tokenfile;
		s->cred.name = "--tokenfile";
		return 0;
	}
	if (!cmd)
		return 0;
	if (accounts_split_args(cmd, &argc, &s->cmd_argv, why, sizeof(why)) < 0 || argc == 0) {
		fprintf(stderr, "imapfleet: --%s%s: %s\n", s->set.tokencmd ? "tokencmd" : "passcmd", which,
			argc == 0 ? "the command is empty" : why);
		return -1;
	}
	s->cred.kind = CRED_CMD;
	s->cred.argv = s->cmd_argv;
	s->cred.name = s->set.tokencmd ? "--tokencmd" : "--passcmd";
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

	s->set.oauth.cafile = s->set.cafile;
	s->set.oauth.insecure = s->set.insecure;
	if (oauth_config_check(&s->set.oauth, &err) < 0) {
		fprintf(stderr, "imapfleet: side %s (--oauth%s %s): %s\n", which[0] ? which : "", which,
			oauth_provider_name(s->set.oauth.provider), err.message);
		return -1;
	}
	if (s->set.insecure)
		fprintf(stderr, "imapfleet: warning: the token endpoint's certificate is not verified either "
				"(--insecure%s)\n", which);
	if (s->set.auth == IMAP_AUTH_AUTO)
		s->set.auth = IMAP_AUTH_XOAUTH2; /* what both providers document for IMAP */
	s->oauth_ctx.cache = cli_oauth_cache();
	s->oauth_ctx.cfg = &s->set.oauth;
	s->oauth_ctx.user = s->set.user;
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

	if (!s->set.host) {
		fprintf(stderr, "imapfleet: --host%s is required\n", which);
		return -1;
	}
	if (!s->set.mode_set)
		s->set.mode = io_mode_for_port(s->set.port);
	if (s->set.mode == IO_TLS_PLAIN)
		fprintf(stderr, "imapfleet: warning: %s%s uses cleartext IMAP (--plain%s): passwords cross the "
				"network unencrypted\n", which[0] ? "side " : "the connection", which, which);
	if (s->set.insecure)
		fprintf(stderr, "imapfleet: warning: certificate verification is off for %s%s (--insecure%s)\n",
			which[0] ? "side " : "the connection", which, which);
	if (!need_login)
		return 0;
	if (!s->set.user) {
		fprintf(stderr, "imapfleet: --user%s is required\n", which);
		return -1;
	}
	nsources = !!s->set.passfile + !!s->set.password + !!s->set.tokenfile + !!s->set.tokencmd + !!s->set.passcmd +
		   (s->set.oauth.provider != OAUTH_NONE);
	if (s->set.oauth.provider != OAUTH_NONE && nsources == 1)
		return side_oauth(s, which);
	if (nsources > 1) {
		fprintf(stderr, "imapfleet: side %s: give one of --passfile%s, --password%s, --passcmd%s, --tokenfile%s, "
				"--tokencmd%s, --oauth%s\n", which[0] ? which : "", which, which, which, which, which, which);
		return -1;
	}
	if ((s->set.auth == IMAP_AUTH_XOAUTH2 || s->set.auth == IMAP_AUTH_OAUTHBEARER) && !s->set.tokenfile && !s->set.tokencmd &&
	    s->set.oauth.provider == OAUTH_NONE) {
		fprintf(stderr, "imapfleet: --authmech%s %s needs a token: --tokenfile%s F or --tokencmd%s CMD\n", which,
			s->set.auth == IMAP_AUTH_XOAUTH2 ? "XOAUTH2" : "OAUTHBEARER", which, which);
		return -1;
	}
	if ((s->set.auth == IMAP_AUTH_PLAIN || s->set.auth == IMAP_AUTH_LOGIN) && (s->set.tokenfile || s->set.tokencmd)) {
		fprintf(stderr, "imapfleet: --authmech%s %s needs a password, not a token\n", which,
			s->set.auth == IMAP_AUTH_PLAIN ? "PLAIN" : "LOGIN");
		return -1;
	}
	if (s->set.tokenfile || s->set.tokencmd || s->set.passcmd)
		return side_cred(s, which);
	if (s->set.passfile) {
		s->password = fleet_read_passfile(s->set.passfile, FLEET_PASSFILE_MAX, why, sizeof(why));
		if (!s->password) {
			fprintf(stderr, "imapfleet: --passfile%s: %s\n", which, why);
			return -1;
		}
	} else if (s->set.password) {
		fprintf(stderr, "imapfleet: warning: --password%s puts the password in the process list; "
				"prefer --passfile%s\n", which, which);
		s->password = xstrdup(s->set.password);
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
	ep->host = s->set.host;
	ep->port = (uint16_t)s->set.port;
	ep->mode = s->set.mode;
	ep->cafile = s->set.cafile;
	ep->insecure = s->set.insecure;
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

/* cli/args.h: the commands' option parsing (over common/opt.h tables) and the per-side login of
 * sync and probe (the side settings themselves are parsed by accounts_side_set). */
#ifndef IMAPFLEET_CLI_ARGS_H
#define IMAPFLEET_CLI_ARGS_H

#include <stdint.h>
#include <stdio.h>

#include "accounts/accounts.h"
#include "common/opt.h"

#include "io/cred.h"
#include "io/imap.h"
#include "io/oauth.h"
#include "io/stream.h"

struct cli_side {
	struct account_side_settings set; /* what the command line said (accounts_side_set) */
	struct cred_source cred;    /* set by cli_side_finish for tokenfile/tokencmd/passcmd */
	char **cmd_argv;            /* the split command of cred (heap) */
	struct oauth_cred_ctx oauth_ctx;
	char *password;             /* loaded secret (heap, wiped on release) */
	char *token;
};

/* Parses a command's words against its option tables (common/opt.h); every problem is printed at
 * once, each unknown option with a "did you mean", then where the help is. Returns 0, or -1
 * (printed). cmd: "run", "sync" ... for the messages. */
int cli_parse(const char *cmd, const struct fleet_optset *sets, size_t nsets, unsigned flags, int argc, char **argv,
	      fleet_opt_fn fn, void *ctx);
/* Prints "usage: ..." lines (text), then the tables' options. */
void cli_usage(FILE *out, const char *text, const struct fleet_optset *sets, size_t nsets, unsigned flags);

/* A command's command line in one place: the parser and --help read the same tables. A hit's set
 * is the index of its table in sets. */
#define CLI_SPEC_SETS 4
struct cli_spec {
	const char *cmd;				  /* "run", "sync" ... for the messages */
	const char *usage;				  /* the "usage: ..." lines --help prints first */
	const struct fleet_optset *sets[CLI_SPEC_SETS]; /* NULL after the last */
	unsigned flags;					  /* FLEET_OPT_* */
};
/* cli_parse over the spec's tables. */
int cli_spec_parse(const struct cli_spec *spec, int argc, char **argv, fleet_opt_fn fn, void *ctx);
/* Parses the command line (argv[0] is the command's name) against the spec. Returns -1 when the
 * command goes on, else its exit code: CLI_EXIT_USAGE after a bad command line (printed),
 * CLI_EXIT_OK after printing the help, which it does when the callbacks set *help. */
int cli_spec_args(const struct cli_spec *spec, int argc, char **argv, fleet_opt_fn fn, void *ctx, const int *help);
/* cli_usage of the spec: its usage text, then every table's options. */
void cli_spec_usage(FILE *out, const struct cli_spec *spec);
/* For option callbacks of commands that take no operand: -1 with why ("unexpected argument") when
 * the hit is an operand, else 0. */
int cli_no_operand(const struct fleet_opt_hit *hit, char *why, size_t cap);
/* For option callbacks: the hit's value as a number in min..max into *out; -1 with why. */
int cli_opt_uint(const struct fleet_opt_hit *hit, uint64_t min, uint64_t max, unsigned *out, char *why, size_t cap);
/* For option callbacks: the hit's value, which must not be empty ("option --x needs WHAT"
 * otherwise), into *out (borrowed from argv); -1 with why. */
int cli_opt_text(const struct fleet_opt_hit *hit, const char *what, const char **out, char *why, size_t cap);
/* For option callbacks: the operand ACCOUNTS.csv into *path; -1 with why when *path is set already
 * (a second file): "unexpected argument 'X'" and then the words of also. */
int cli_opt_accounts_file(const struct fleet_opt_hit *hit, const char **path, const char *also, char *why,
			  size_t cap);
/* For option callbacks: keeps the hit's words (an option and its value, or an operand) at
 * words[*n], for a parser after this one; words has room for every word of the command line. */
void cli_opt_keep_words(const struct fleet_opt_hit *hit, char **words, int *n);
/* The words of a command that runs over one accounts file and hands side settings and account
 * options on to every row (run, worker, preflight, verify): the operand is the accounts file, and
 * the hits of the tables from first_kept on, with the words after "--", are kept for the accounts
 * parser. */
struct cli_rows {
	const char **accounts_path; /* where the operand goes */
	const char *also;	    /* what "unexpected argument 'X'" adds for a second one */
	size_t first_kept;	    /* the first table whose hits are kept */
	struct scheduler_config *sched; /* not NULL: table 1 is cli_sched_optset, for this configuration */
	char **words;		    /* the kept words (heap: room for every word of the command line) */
	int n;
};
struct scheduler_config;
void cli_rows_init(struct cli_rows *rows, int argc, const char **accounts_path, const char *also, size_t first_kept,
		   struct scheduler_config *sched);
void cli_rows_release(struct cli_rows *rows);
/* For option callbacks: takes the hit when it is the accounts file, a word to keep or one of
 * cli_sched_optset (0, or -1 with why); 1 when it is one of the command's own options. */
int cli_rows_option(struct cli_rows *rows, const struct fleet_opt_hit *hit, char *why, size_t cap);
/* --log-level L: sets the level; -1 with why when L is unknown. */
int cli_opt_log_level(const struct fleet_opt_hit *hit, char *why, size_t cap);
/* --help, --state URL and --run ID of the commands that read the state store (status, report,
 * retry): the table and its handler (0 when the hit was not one of these). */
extern const struct fleet_optset cli_store_optset;
struct cli_store_args {
	const char *state_arg;
	unsigned long long run_id; /* 0: not given */
	int help;
};
int cli_store_option(struct cli_store_args *a, const struct fleet_opt_hit *hit, char *why, size_t cap);
/* cli_spec_args for the store commands whose table 0 is cli_store_optset and that take no operand
 * (report, retry, cancel): refuses an operand, takes the hits of cli_store_optset into *store and
 * hands the command's own options to fn(ctx). --help is store->help. */
int cli_store_spec_args(const struct cli_spec *spec, int argc, char **argv, struct cli_store_args *store,
			fleet_opt_fn fn, void *ctx);
/* The run a store command works on (report, retry, cancel): --run (run_arg), else the active run,
 * else the newest (report_pick_run). Returns -1 with *run_id set when there is one, else the exit
 * code after saying why on stderr: no such run, no run yet (CLI_EXIT_PARTIAL), or the error. */
struct state_conn;
int cli_store_pick_run(const char *cmd, struct state_conn *sc, uint64_t run_arg, int64_t *run_id);
/* --state --key-file --workers --max-conns-per-host --max-attempts --retry-base --retry-cap
 * --log-level of the commands that drive the scheduler (run, worker, verify), and their handler. */
extern const struct fleet_optset cli_sched_optset;
struct scheduler_config;
int cli_sched_option(struct scheduler_config *cfg, const struct fleet_opt_hit *hit, char *why, size_t cap);
/* A side setting (accounts_login_optset, accounts_side_optset) applied to sides[hit->side]. */
int cli_side_set(struct cli_side *sides, const struct fleet_opt_hit *hit, char *why, size_t cap);

/* Checks required fields, resolves defaults (mode by port: 993 -> ssl, 143 -> tls), reads the
 * passfile (or --password) and registers secrets; a tokenfile, tokencmd or passcmd becomes s->cred,
 * fetched on every login (cli_side_fetch for a single login). which: "1"/"2" or "" for messages.
 * 0 or -1 (message printed). */
int cli_side_finish(struct cli_side *s, const char *which, int need_login);
/* The process-wide token cache of the tenant-level credentials (--oauth1/2). */
struct oauth_cache *cli_oauth_cache(void);
/* For a single login (probe): fetches s->cred now into s->token or s->password. 0 or -1 (printed). */
int cli_side_fetch(struct cli_side *s);
/* Fills an endpoint from the side (strings borrowed from s). */
void cli_side_endpoint(const struct cli_side *s, const char *label, struct io_endpoint *ep);
void cli_side_release(struct cli_side *s);

#endif

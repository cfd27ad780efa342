/* cli/cli.h: subcommands and the documented exit codes (see docs/imapfleet.1). */
#ifndef IMAPFLEET_CLI_CLI_H
#define IMAPFLEET_CLI_CLI_H

#include <stdio.h>

enum cli_exit {
	CLI_EXIT_OK = 0,            /* everything asked for is done */
	CLI_EXIT_PARTIAL = 1,       /* some accounts (or messages) failed; the rest is done */
	CLI_EXIT_USAGE = 2,         /* bad command line or accounts file (nothing was changed) */
	CLI_EXIT_STATE = 3,         /* the state store (PostgreSQL) is unreachable or unusable */
	CLI_EXIT_INTERRUPTED = 4,   /* stopped by SIGINT/SIGTERM; run the same command to resume */
	CLI_EXIT_CONNECT = 5,       /* could not connect / TLS failed (probe, sync) */
	CLI_EXIT_AUTH = 6,          /* login refused (probe, sync) */
	CLI_EXIT_NOT_READY = 7,     /* preflight: at least one account is not ready */
	CLI_EXIT_INTERNAL = 70      /* a bug in imapfleet: please report it */
};

/* report --watch SECONDS: at most a day between two writes of the report; a longer wait is a
 * typo more likely than a wish (a cron job serves a daily report better). */
#define CLI_REPORT_WATCH_MAX 86400

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

const struct cli_command *cli_find_command(const char *name);

int cli_cmd_run(int argc, char **argv);
int cli_cmd_worker(int argc, char **argv);
int cli_cmd_sync(int argc, char **argv);
int cli_cmd_preflight(int argc, char **argv);
int cli_cmd_probe(int argc, char **argv);
int cli_cmd_status(int argc, char **argv);
int cli_cmd_report(int argc, char **argv);
int cli_cmd_retry(int argc, char **argv);
int cli_cmd_cancel(int argc, char **argv);
int cli_cmd_verify(int argc, char **argv);
int cli_cmd_verify_manifest(int argc, char **argv);

/* Shared by the commands that print an account's outcome. */
struct engine_stats;
struct fleet_err;
void cli_print_summary(FILE *out, const char *label, const struct engine_stats *st, int dry);
/* The one map from an error to the exit code above (cli/exit.c), for every command: first the
 * named codes (cancelled 4; usage, accounts file, no run, ambiguous name 2; the state store's 3;
 * TLS and STARTTLS 5), then class and scope: a bug 70; the whole run's error 3 when the store
 * failed or it may work later, else 2 (what the operator gave cannot work); an account's error
 * 6 when its login was refused, 5 when it may work later, else 1. */
int cli_exit_for_error(const struct fleet_err *err);
/* Prints "imapfleet CMD: message" and the error's detail (when it has one) on stderr; returns
 * cli_exit_for_error(err). */
int cli_fail(const char *cmd, const struct fleet_err *err);

#endif

/* cli/cli.h: subcommands and the documented exit codes (see docs/imapfleet.1). */
#ifndef IMAPFLEET_CLI_CLI_H
#define IMAPFLEET_CLI_CLI_H

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

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

const struct cli_command *cli_find_command(const char *name);

#endif

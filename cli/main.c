/* cli/main.c: the imapfleet command. Thin: parses the subcommand and hands over. */
#include <stdio.h>
#include <string.h>

#include "config.h"

#include "cli/cli.h"
#include "common/util.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: imapfleet COMMAND [OPTIONS]\n"
		"\n"
		"commands:\n"
		"  run ACCOUNTS.csv      migrate every account pair in the file (resumable)\n"
		"  worker                join the active run from another host\n"
		"  preflight ACCOUNTS    check logins, TLS, sizes and quota before a run\n"
		"  sync                  migrate one account pair (imapsync-style options)\n"
		"  probe                 test a server: TLS, certificate, capabilities, login\n"
		"  status                show runs and accounts\n"
		"  report                write per-account reports (csv, json, html)\n"
		"  retry                 requeue failed accounts (or cancelled ones)\n"
		"  cancel                take accounts out of the run until retry names them\n"
		"  verify [ACCOUNTS]     compare both servers and the ledger: PASS/FAIL per account\n"
		"  verify-manifest FILE  check a signed manifest (verify --manifest) offline\n"
		"\n"
		"'imapfleet COMMAND --help' describes each command. See imapfleet(1).\n");
}

int main(int argc, char **argv)
{
	const struct cli_command *cmd;

	fleet_harden_process(); /* before any secret is read: no core file can hold one */
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("imapfleet %s\n", PACKAGE_VERSION);
		return CLI_EXIT_OK;
	}
	cmd = cli_find_command(argv[1]);
	if (!cmd) {
		fprintf(stderr, "imapfleet: unknown command '%s'\n\n", argv[1]);
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	return cmd->run(argc - 1, argv + 1);
}

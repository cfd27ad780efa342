/* cli/commands.c: the table of subcommands. Each lives in its own cli/cmd_*.c file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static int not_yet(int argc, char **argv)
{
	fprintf(stderr, "imapfleet %s: this command is not implemented yet in this build\n", argv[0]);
	return CLI_EXIT_INTERNAL;
}

static const struct cli_command commands[] = {
	{"run", cli_cmd_run}, {"worker", cli_cmd_worker}, {"preflight", not_yet}, {"sync", cli_cmd_sync},
	{"probe", not_yet},   {"status", not_yet}, {"report", not_yet},    {"retry", not_yet},
};

const struct cli_command *cli_find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

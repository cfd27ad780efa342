/* cli/commands.c: the table of subcommands. Each lives in its own cli/cmd_*.c file. */
#include <string.h>

#include "cli/cli.h"

static const struct cli_command commands[] = {
	{"run", cli_cmd_run},	      {"worker", cli_cmd_worker}, {"preflight", cli_cmd_preflight},
	{"sync", cli_cmd_sync},	      {"probe", cli_cmd_probe},	  {"status", cli_cmd_status},
	{"report", cli_cmd_report}, {"retry", cli_cmd_retry},	  {"verify", cli_cmd_verify},
	{"cancel", cli_cmd_cancel},	      {"verify-manifest", cli_cmd_verify_manifest},
};

const struct cli_command *cli_find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

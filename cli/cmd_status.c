/* cli/cmd_status.c: `imapfleet status`. */
#include <stdio.h>

#include "cli/cli.h"

int cli_cmd_status(int argc, char **argv)
{
	fprintf(stderr, "imapfleet status: not implemented yet in this build\n");
	return CLI_EXIT_INTERNAL;
}

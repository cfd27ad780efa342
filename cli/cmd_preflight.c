/* cli/cmd_preflight.c: `imapfleet preflight`. */
#include <stdio.h>

#include "cli/cli.h"

int cli_cmd_preflight(int argc, char **argv)
{
	fprintf(stderr, "imapfleet preflight: not implemented yet in this build\n");
	return CLI_EXIT_INTERNAL;
}

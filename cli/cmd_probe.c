/* cli/cmd_probe.c: `imapfleet probe`. */
#include <stdio.h>

#include "cli/cli.h"

int cli_cmd_probe(int argc, char **argv)
{
	fprintf(stderr, "imapfleet probe: not implemented yet in this build\n");
	return CLI_EXIT_INTERNAL;
}

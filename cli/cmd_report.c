/* cli/cmd_report.c: `imapfleet report`. */
#include <stdio.h>

#include "cli/cli.h"

int cli_cmd_report(int argc, char **argv)
{
	fprintf(stderr, "imapfleet report: not implemented yet in this build\n");
	return CLI_EXIT_INTERNAL;
}

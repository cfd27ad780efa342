/* cli/cmd_retry.c: `imapfleet retry`. */
#include <stdio.h>

#include "cli/cli.h"

int cli_cmd_retry(int argc, char **argv)
{
	fprintf(stderr, "imapfleet retry: not implemented yet in this build\n");
	return CLI_EXIT_INTERNAL;
}

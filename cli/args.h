/* cli/args.h: the imapsync-style per-side options shared by sync and probe
 * (--host1 --port1 --user1 --passfile1 --password1 --authuser1 --ssl1 --tls1 --plain1 --nossl1
 * --notls1 --cafile1 --insecure1 --oauthtokenfile1, and the same with 2). */
#ifndef IMAPFLEET_CLI_ARGS_H
#define IMAPFLEET_CLI_ARGS_H

#include <stdint.h>

#include "io/stream.h"

struct cli_side {
	const char *host;
	uint64_t port;
	const char *user;
	const char *passfile;
	const char *password_arg;   /* --password1: accepted but warned about (visible in ps) */
	const char *authuser;
	const char *cafile;
	const char *tokenfile;
	int insecure;
	int mode_set;
	enum io_tls_mode mode;
	char *password;             /* loaded secret (heap, wiped on release) */
	char *token;
};

/* If argv[*i] is a side option ("--host1", "--ssl2", ...) consumes it (and its value) and returns 1;
 * 0 when it is not one; -1 on a bad value (message printed). side_count: 1 for probe's unnumbered
 * form (--host, --port ...), 2 for sync's numbered form. */
int cli_side_option(struct cli_side *sides, int side_count, int argc, char **argv, int *i);

/* Checks required fields, resolves defaults (mode by port: 993 -> ssl, 143 -> tls), reads the
 * passfile / token file and registers secrets. which: "1"/"2" or "" for messages. 0 or -1. */
int cli_side_finish(struct cli_side *s, const char *which, int need_login);
/* Fills an endpoint from the side (strings borrowed from s). */
void cli_side_endpoint(const struct cli_side *s, const char *label, struct io_endpoint *ep);
void cli_side_release(struct cli_side *s);

#endif

/* cli/exit.c: the one map from an error to the documented exit code (cli.h, README, imapfleet(1)).
 * Every command that ends on an error asks here; nothing else looks at error codes to choose one. */
#include <string.h>

#include "accounts/accounts.h"
#include "cli/cli.h"
#include "common/err.h"
#include "io/oauth.h"
#include "io/stream.h"
#include "ops/report.h"
#include "scheduler/health.h"
#include "state/cluster.h"
#include "state/manifest.h"
#include "state/state.h"
#include "state/store.h"
#include "scheduler/scheduler.h"

/* The scheduler exits with its own copy of the code on a second Ctrl-C (it cannot include cli.h). */
_Static_assert(SCHEDULER_EXIT_INTERRUPTED == CLI_EXIT_INTERRUPTED, "the second Ctrl-C exits as interrupted");

/* Codes whose exit code does not follow from class and scope alone. */
static const struct {
	const char *code;
	enum cli_exit exit;
} by_code[] = {
	{FLEET_ERR_CODE_CANCELLED, CLI_EXIT_INTERRUPTED},
	{FLEET_ERR_CODE_USAGE, CLI_EXIT_USAGE},
	{ACCOUNTS_ERR_FILE, CLI_EXIT_USAGE},
	{SCHEDULER_ERR_NO_ACCOUNTS, CLI_EXIT_USAGE},
	{STATE_ERR_NO_RUN, CLI_EXIT_USAGE},
	{STATE_ERR_AMBIGUOUS, CLI_EXIT_USAGE},
	{STATE_ERR_CONNECTION, CLI_EXIT_STATE},
	{STATE_ERR_CLUSTER, CLI_EXIT_STATE},
	{STATE_ERR_PG_MISSING, CLI_EXIT_STATE},
	{STATE_ERR_SCHEMA_TOO_NEW, CLI_EXIT_STATE},
	{STATE_ERR_NO_STORE, CLI_EXIT_STATE},
	{STATE_ERR_MANIFEST_BAD, CLI_EXIT_PARTIAL}, /* verify-manifest: altered or not signed by the key */
	{OAUTH_ERR_CLIENT, CLI_EXIT_AUTH},	    /* the token service refused the application: a login refused */
	{HEALTH_ERR_SERVER_DOWN, CLI_EXIT_CONNECT}, /* the server stopped answering */
	{REPORT_ERR_IO, CLI_EXIT_USAGE}, /* an output that cannot be written: --out, a closed stdout */
	{IO_ERR_TLS, CLI_EXIT_CONNECT},
	{IO_ERR_TLS_VERIFY, CLI_EXIT_CONNECT},
	{IO_ERR_TLS_PROTOCOL, CLI_EXIT_CONNECT},
	{IO_ERR_TLS_STATE, CLI_EXIT_CONNECT},
	{IO_ERR_TLS_IMPLICIT_PORT, CLI_EXIT_CONNECT},
	{IO_ERR_STARTTLS_UNAVAILABLE, CLI_EXIT_CONNECT},
	{IO_ERR_STARTTLS_FAILED, CLI_EXIT_CONNECT},
	{IO_ERR_STARTTLS_INJECTION, CLI_EXIT_CONNECT},
};

/* A PostgreSQL SQLSTATE (five digits or capitals, "08006"): the state store's own answer. */
static int is_sqlstate(const char *code)
{
	if (strlen(code) != 5)
		return 0;
	for (const char *c = code; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'A' && *c <= 'Z')))
			return 0;
	return code[0] >= '0' && code[0] <= '9';
}

int cli_exit_for_error(const struct fleet_err *err)
{
	for (size_t i = 0; i < sizeof(by_code) / sizeof(by_code[0]); i++)
		if (strcmp(err->code, by_code[i].code) == 0)
			return by_code[i].exit;
	if (err->cls == FLEET_ERR_BUG)
		return CLI_EXIT_INTERNAL;
	if (err->scope == FLEET_SCOPE_RUN) {
		/* The run as a whole: the state store failed, or what the operator gave cannot work. */
		if (is_sqlstate(err->code) || err->cls != FLEET_ERR_PERMANENT)
			return CLI_EXIT_STATE;
		return CLI_EXIT_USAGE;
	}
	switch (err->cls) {
	case FLEET_ERR_AUTH: return CLI_EXIT_AUTH;
	case FLEET_ERR_TRANSIENT:
	case FLEET_ERR_THROTTLED: return CLI_EXIT_CONNECT;
	default: return CLI_EXIT_PARTIAL; /* one account's permanent failure: the rest is done */
	}
}

int cli_fail(const char *cmd, const struct fleet_err *err)
{
	fprintf(stderr, "imapfleet %s: %s\n", cmd, err->message);
	if (err->detail[0])
		fprintf(stderr, "  %s\n", err->detail);
	return cli_exit_for_error(err);
}

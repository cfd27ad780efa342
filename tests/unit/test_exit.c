/* Unit tests for cli/exit.c: the one map from an error to the documented exit code (README:
 * 0 done, 1 some failed, 2 usage or accounts file, 3 state store, 4 interrupted, 5 connection or
 * TLS, 6 login refused, 7 preflight not ready; 70 a bug). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "accounts/accounts.h"
#include "cli/cli.h"
#include "common/err.h"
#include "engine/ledger.h"
#include "io/imap_parser.h"
#include "io/net.h"
#include "io/oauth.h"
#include "io/stream.h"
#include "ops/report.h"
#include "scheduler/health.h"
#include "scheduler/scheduler.h"
#include "state/cluster.h"
#include "state/manifest.h"
#include "state/secret.h"
#include "state/state.h"
#include "state/store.h"

static void every_error_maps_to_its_documented_exit_code(void **state)
{
	static const struct {
		enum fleet_err_class cls;
		enum fleet_err_scope scope;
		const char *code;
		int want;
	} cases[] = {
		/* named codes win over class and scope */
		{FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_CANCELLED, CLI_EXIT_INTERRUPTED},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, FLEET_ERR_CODE_CANCELLED, CLI_EXIT_INTERRUPTED},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, FLEET_ERR_CODE_USAGE, CLI_EXIT_USAGE},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, ACCOUNTS_ERR_FILE, CLI_EXIT_USAGE},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, SCHEDULER_ERR_NO_ACCOUNTS, CLI_EXIT_USAGE},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_NO_RUN, CLI_EXIT_USAGE},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_AMBIGUOUS, CLI_EXIT_USAGE},
		{FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, STATE_ERR_CONNECTION, CLI_EXIT_STATE},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_CLUSTER, CLI_EXIT_STATE},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_PG_MISSING, CLI_EXIT_STATE},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_SCHEMA_TOO_NEW, CLI_EXIT_STATE},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_NO_STORE, CLI_EXIT_STATE},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_IO, CLI_EXIT_USAGE},
		/* verify-manifest: 1 when the manifest does not verify, 2 when it cannot be read */
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_MANIFEST_BAD, CLI_EXIT_PARTIAL},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_MANIFEST_READ, CLI_EXIT_USAGE},
		/* the token service refusing the application is a refused login, not the state store */
		{FLEET_ERR_AUTH, FLEET_SCOPE_RUN, OAUTH_ERR_CLIENT, CLI_EXIT_AUTH},
		{FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, HEALTH_ERR_SERVER_DOWN, CLI_EXIT_CONNECT},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS_VERIFY, CLI_EXIT_CONNECT},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS, CLI_EXIT_CONNECT},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS_PROTOCOL, CLI_EXIT_CONNECT},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_STARTTLS_UNAVAILABLE, CLI_EXIT_CONNECT},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_STARTTLS_FAILED, CLI_EXIT_CONNECT},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_STARTTLS_INJECTION, CLI_EXIT_CONNECT},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS_IMPLICIT_PORT, CLI_EXIT_CONNECT},
		/* the state store's SQLSTATE, whatever its class */
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, "42P01", CLI_EXIT_STATE},
		{FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, "08006", CLI_EXIT_STATE},
		/* then class and scope */
		{FLEET_ERR_BUG, FLEET_SCOPE_RUN, "ANYTHING", CLI_EXIT_INTERNAL},
		{FLEET_ERR_BUG, FLEET_SCOPE_MESSAGE, IMAP_CODE_CLIENTBUG, CLI_EXIT_INTERNAL},
		{FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, "SOMETHING", CLI_EXIT_STATE},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_KEY_FILE, CLI_EXIT_USAGE},
		{FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, "AUTHENTICATIONFAILED", CLI_EXIT_AUTH},
		{FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NET_ERR_ECONNREFUSED, CLI_EXIT_CONNECT},
		{FLEET_ERR_THROTTLED, FLEET_SCOPE_ACCOUNT, IMAP_CODE_THROTTLED, CLI_EXIT_CONNECT},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER, LEDGER_ERR_NO_FOLDER, CLI_EXIT_PARTIAL},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_CODE_OVERQUOTA, CLI_EXIT_PARTIAL},
		{FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "", CLI_EXIT_PARTIAL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fleet_err err;
		int got;

		fleet_err_set(&err, cases[i].cls, cases[i].scope, cases[i].code, "case %zu", i);
		got = cli_exit_for_error(&err);
		if (got != cases[i].want)
			fail_msg("%s (%s, %s): exit %d, want %d", cases[i].code, fleet_err_class_name(cases[i].cls),
				 fleet_err_scope_name(cases[i].scope), got, cases[i].want);
	}
}

static void the_exit_codes_are_the_documented_numbers(void **state)
{
	assert_int_equal(CLI_EXIT_OK, 0);
	assert_int_equal(CLI_EXIT_PARTIAL, 1);
	assert_int_equal(CLI_EXIT_USAGE, 2);
	assert_int_equal(CLI_EXIT_STATE, 3);
	assert_int_equal(CLI_EXIT_INTERRUPTED, 4);
	assert_int_equal(CLI_EXIT_CONNECT, 5);
	assert_int_equal(CLI_EXIT_AUTH, 6);
	assert_int_equal(CLI_EXIT_NOT_READY, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_error_maps_to_its_documented_exit_code),
		cmocka_unit_test(the_exit_codes_are_the_documented_numbers),
	};

	return unit_run("exit", tests, NULL, NULL);
}

/* cli/cmd_probe.c: `imapfleet probe`: one server's greeting, TLS, certificate, capabilities and login
 * (the answer to imapsync's FAQ "how can I test a login via SSL", without openssl s_client). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/usage.h"
#include "cli/cli.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/util.h"
#include "ops/probe.h"

enum { PROBE_HELP = 1, PROBE_TRACE, PROBE_TIMEOUT };

static const struct fleet_opt probe_table[] = {
	{"--help", 0, PROBE_HELP, NULL, "this help"},
	{"--timeout", FLEET_OPT_VALUE, PROBE_TIMEOUT, "S", "connect and command timeout in seconds (default {})"},
	{"--trace", 0, PROBE_TRACE, NULL, "show the IMAP dialogue (credentials redacted)"},
};

static const struct fleet_opt_default probe_defaults[] = {{PROBE_TIMEOUT, {PROBE_TIMEOUT_MS / 1000}}};
static const struct fleet_optset probe_opts = FLEET_OPTSET_DEFAULTS(NULL, probe_table, probe_defaults);
static const struct cli_spec probe_spec = {
    "probe",
    cli_usage_probe,
    {&probe_opts, &accounts_login_optset, &accounts_side_optset},
    0,
};

struct probe_args {
	struct cli_side *side;
	unsigned timeout_s;
	int trace, help;
};

static int probe_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct probe_args *a = ctx;

	if (cli_no_operand(h, why, cap) < 0)
		return -1;
	if (h->set > 0)
		return cli_side_set(a->side, h, why, cap);
	switch (h->opt->id) {
	case PROBE_HELP: a->help = 1; return 0;
	case PROBE_TRACE: a->trace = 1; return 0;
	case PROBE_TIMEOUT: return cli_opt_uint(h, 1, 3600, &a->timeout_s, why, cap);
	}
	return 0;
}

static const char *mode_name(enum io_tls_mode m)
{
	switch (m) {
	case IO_TLS_IMPLICIT: return "implicit TLS (--ssl)";
	case IO_TLS_STARTTLS: return "STARTTLS (--tls)";
	default: return "cleartext (--plain)";
	}
}

static void print_caps(const char *what, const struct imap_strlist *caps)
{
	printf("%-27s", what);
	for (size_t i = 0; i < caps->n; i++)
		printf("%s%s", i ? " " : "", caps->v[i]);
	printf("%s\n", caps->n ? "" : "(none)");
}

static void print_tls(const struct preflight_login *lg, const struct cli_side *side)
{
	const struct io_tls_info *t = &lg->tls_info;

	if (side->set.mode == IO_TLS_PLAIN) {
		printf("%-27s%s\n", "tls:", "none (cleartext, --plain)");
		return;
	}
	if (!lg->have_tls_info)
		return;
	printf("%-27s%s, cipher %s%s\n", "tls:", t->version, t->cipher,
	       lg->cert_from_look ? " (seen on a second connection without verification)" : "");
	printf("%-27ssubject %s\n", "certificate:", t->subject[0] ? t->subject : "-");
	printf("%-27sissuer  %s\n", "", t->issuer[0] ? t->issuer : "-");
	printf("%-27sexpires %s\n", "", t->not_after[0] ? t->not_after : "-");
	printf("%-27snames   %s\n", "", t->san[0] ? t->san : "(no subjectAltName)");
	if (t->verified)
		printf("%-27sok: chain and host name verified (%s)\n", "verification:",
		       side->set.cafile ? "CA from --cafile or the system store" : "system CA store");
	else if (side->set.insecure)
		printf("%-27sskipped (--insecure); it would %s%s\n",
		       "verification:", strcmp(t->verify_result, "ok") == 0 ? "pass" : "fail: ",
		       strcmp(t->verify_result, "ok") == 0 ? "" : t->verify_result);
	else
		printf("%-27sFAILED: %s\n", "verification:", t->verify_result);
}

static int probe_exit(const struct preflight_login *lg)
{
	if (lg->stage == PREFLIGHT_STAGE_CONNECT)
		return CLI_EXIT_CONNECT;
	switch (lg->err.cls) {
	case FLEET_ERR_TRANSIENT:
	case FLEET_ERR_THROTTLED:
	case FLEET_ERR_BUG: return CLI_EXIT_CONNECT;
	default: return CLI_EXIT_AUTH;
	}
}

int cli_cmd_probe(int argc, char **argv)
{
	struct cli_side side;
	struct imap_options o;
	struct preflight_login lg;
	unsigned timeout_ms = PROBE_TIMEOUT_MS;
	int trace = 0, login, rc;

	memset(&side, 0, sizeof(side));
	{
		struct probe_args a = {&side, PROBE_TIMEOUT_MS / 1000, 0, 0};

		rc = cli_spec_args(&probe_spec, argc, argv, probe_option, &a, &a.help);
		if (rc >= 0)
			return rc;
		timeout_ms = a.timeout_s * 1000u;
		trace = a.trace;
	}
	login = side.set.user != NULL || side.set.tokenfile != NULL || side.set.tokencmd != NULL || side.set.passcmd != NULL ||
		side.set.oauth.provider != OAUTH_NONE;
	if (cli_side_finish(&side, "", login) < 0)
		goto usage;
	if (login && cli_side_fetch(&side) < 0) {
		cli_side_release(&side);
		return CLI_EXIT_AUTH;
	}
	if (trace)
		fleet_log_set_level(FLEET_LOG_TRACE);
	signal(SIGPIPE, SIG_IGN);

	memset(&o, 0, sizeof(o));
	cli_side_endpoint(&side, "probe", &o.ep);
	o.ep.connect_timeout_ms = timeout_ms;
	o.ep.io_timeout_ms = timeout_ms;
	o.label = "probe";
	o.user = side.set.user;
	o.password = side.password;
	o.oauth_token = side.token;
	o.auth = side.set.auth;
	o.authuser = side.set.authuser;
	o.trace = trace;

	printf("%-27s%s port %u, %s\n", "probe:", side.set.host,
	       io_port_or_default(side.set.port, side.set.mode),
	       mode_name(side.set.mode));
	fflush(stdout);
	preflight_login(&o, login, 1, NULL, &lg);
	if (lg.greeting[0])
		printf("%-27s%s\n", "greeting:", lg.greeting);
	print_tls(&lg, &side);
	if (lg.stage != PREFLIGHT_STAGE_CONNECT)
		print_caps(login ? "capabilities before login:" : "capabilities:", &lg.caps_before);

	if (lg.stage == PREFLIGHT_STAGE_CONNECT) {
		printf("probe: FAILED: %s\n", lg.err.message);
		if (lg.err.detail[0])
			printf("  %s\n", lg.err.detail);
		rc = probe_exit(&lg);
		goto done;
	}
	if (lg.stage == PREFLIGHT_STAGE_LOGIN) {
		printf("%-27s%s for %s%s%s\n", "login:", lg.err.cls == FLEET_ERR_AUTH ? "REFUSED" : "FAILED",
		       side.set.user, side.set.authuser ? " via admin " : "", side.set.authuser ? side.set.authuser : "");
		printf("probe: FAILED: login %s: %s\n", lg.err.cls == FLEET_ERR_AUTH ? "refused" : "failed",
		       lg.err.message);
		if (lg.err.detail[0])
			printf("  %s\n", lg.err.detail);
		rc = probe_exit(&lg);
		goto done;
	}
	if (login) {
		printf("%-27sok as %s%s%s\n", "login:", side.set.user, side.set.authuser ? " via admin " : "",
		       side.set.authuser ? side.set.authuser : "");
		print_caps("capabilities after login:", &lg.caps_after);
	}
	printf("probe: OK: ");
	if (side.set.mode == IO_TLS_PLAIN)
		printf("cleartext (no TLS)");
	else if (lg.tls_info.verified)
		printf("%s, certificate verified", lg.tls_info.version);
	else
		printf("%s, certificate NOT verified (--insecure; verification would %s%s)",
		       lg.tls_info.version, strcmp(lg.tls_info.verify_result, "ok") == 0 ? "pass" : "fail: ",
		       strcmp(lg.tls_info.verify_result, "ok") == 0 ? "" : lg.tls_info.verify_result);
	printf(", %s\n", login ? "login ok" : "no login tried (no --user)");
	rc = CLI_EXIT_OK;
done:
	preflight_login_release(&lg);
	cli_side_release(&side);
	return rc;
usage:
	fprintf(stderr, "run 'imapfleet probe --help' for the options\n");
	cli_side_release(&side);
	return CLI_EXIT_USAGE;
}

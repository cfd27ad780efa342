/* cli/cmd_probe.c: `imapfleet probe`: one server's greeting, TLS, certificate, capabilities and login
 * (the answer to imapsync's FAQ "how can I test a login via SSL", without openssl s_client). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "common/log.h"
#include "common/util.h"
#include "ops/probe.h"

static void probe_usage(FILE *out)
{
	fprintf(out,
		"usage: imapfleet probe --host H [--port P] [--ssl|--tls|--plain] [--cafile F] [--insecure]\n"
		"                       [--user U --passfile F | --tokenfile F | --tokencmd C] [--authuser A]\n"
		"connects, shows the greeting, the TLS version and cipher, the certificate and whether it\n"
		"verifies, the capabilities before and after login, and the login result\n"
		"\n"
		"  --ssl | --tls | --plain   implicit TLS (default; 993), STARTTLS (143), cleartext\n"
		"  --cafile F                trust this CA as well as the system's\n"
		"  --insecure                do not verify the certificate (what verification would say is "
		"shown)\n"
		"  --user U --passfile F     log in (without --user: connect and TLS only)\n"
		"  --password P              works, but shows in the process list\n"
		"  --passcmd CMD             a command printing the password (run without a shell)\n"
		"  --tokenfile F             OAuth 2.0 token instead of a password (alias --oauthtokenfile)\n"
		"  --tokencmd CMD            a command printing a token (run without a shell)\n"
		"  --authmech M              XOAUTH2, OAUTHBEARER, PLAIN or LOGIN (default: chosen)\n"
		"  --oauth ms365|google      get the token from the provider (with --tenant --client-id\n"
		"                            --client-secret-file|--client-cert, or --service-account;\n"
		"                            --token-url URL for another endpoint)\n"
		"  --authuser A              admin/master user (AUTHENTICATE PLAIN)\n"
		"  --timeout S               connect and command timeout in seconds (default 30)\n"
		"  --trace                   show the IMAP dialogue (credentials redacted)\n"
		"exit status: 0 ok, 5 connection or TLS failed, 6 login refused, 2 bad command line\n");
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

	if (side->mode == IO_TLS_PLAIN) {
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
		       side->cafile ? "CA from --cafile or the system store" : "system CA store");
	else if (side->insecure)
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
	unsigned timeout_ms = 30000;
	int trace = 0, login, rc;
	uint64_t secs;

	memset(&side, 0, sizeof(side));
	for (int i = 1; i < argc; i++) {
		int r = cli_side_option(&side, 1, argc, argv, &i);

		if (r < 0)
			goto usage;
		if (r > 0)
			continue;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			probe_usage(stdout);
			return CLI_EXIT_OK;
		} else if (strcmp(argv[i], "--trace") == 0) {
			trace = 1;
		} else if (strcmp(argv[i], "--timeout") == 0) {
			if (i + 1 >= argc || fleet_parse_u64(argv[i + 1], 1, 3600, &secs) < 0) {
				fprintf(stderr, "imapfleet probe: --timeout needs seconds from 1 to 3600\n");
				goto usage;
			}
			timeout_ms = (unsigned)secs * 1000u;
			i++;
		} else {
			fprintf(stderr, "imapfleet probe: unknown option '%s'\n", argv[i]);
			goto usage;
		}
	}
	login = side.user != NULL || side.tokenfile != NULL || side.tokencmd != NULL || side.passcmd != NULL ||
		side.oauth.provider != OAUTH_NONE;
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
	o.user = side.user;
	o.password = side.password;
	o.oauth_token = side.token;
	o.auth = side.auth;
	o.authuser = side.authuser;
	o.trace = trace;

	printf("%-27s%s port %u, %s\n", "probe:", side.host,
	       side.port		      ? (unsigned)side.port
	       : side.mode == IO_TLS_IMPLICIT ? 993u
					      : 143u,
	       mode_name(side.mode));
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
		       side.user, side.authuser ? " via admin " : "", side.authuser ? side.authuser : "");
		printf("probe: FAILED: login %s: %s\n", lg.err.cls == FLEET_ERR_AUTH ? "refused" : "failed",
		       lg.err.message);
		if (lg.err.detail[0])
			printf("  %s\n", lg.err.detail);
		rc = probe_exit(&lg);
		goto done;
	}
	if (login) {
		printf("%-27sok as %s%s%s\n", "login:", side.user, side.authuser ? " via admin " : "",
		       side.authuser ? side.authuser : "");
		print_caps("capabilities after login:", &lg.caps_after);
	}
	printf("probe: OK: ");
	if (side.mode == IO_TLS_PLAIN)
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

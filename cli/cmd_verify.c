/* cli/cmd_verify.c: `imapfleet verify [ACCOUNTS]`: is everyone's mail there? */
#include <stdio.h>
#include <string.h>

#include "accounts/accounts.h"
#include "cli/args.h"
#include "cli/usage.h"
#include "cli/cli.h"
#include "common/alloc.h"
#include "common/opt.h"
#include "common/log.h"
#include "common/util.h"
#include "scheduler/scheduler.h"
#include "state/manifest.h"

enum {
	VF_HELP = 1, VF_ACCOUNT, VF_FAILED, VF_DEEP, VF_MANIFEST,
};

#define V FLEET_OPT_VALUE
static const struct fleet_opt verify_table[] = {
	{"--help", 0, VF_HELP, NULL, "this help"},
	{"--account", V, VF_ACCOUNT, "A", "one account: its id, or its source user or user@host"},
	{"--failed", 0, VF_FAILED, NULL, "only accounts failed or partial, or whose last verify did not pass"},
	{"--deep", 0, VF_DEEP, NULL, "also read every destination body and check it against the ledger's\n"
				     "SHA-256"},
	{"--manifest", V, VF_MANIFEST, "FILE", "also write the ledger of the accounts verified (folder, UIDs,\n"
					       "size, INTERNALDATE, SHA-256, verdict) to FILE, signed with\n"
					       "Ed25519 (key made on first use beside the credentials key);\n"
					       "imapfleet verify-manifest FILE --pubkey K checks it"},
};
#undef V

static const struct fleet_optset verify_opts = FLEET_OPTSET(NULL, verify_table);
static const struct cli_spec verify_spec = {
    "verify",
    cli_usage_verify,
    /* the side settings: TLS and login settings that override the stored ones */
    {&verify_opts, &cli_sched_optset, &accounts_side_optset},
    FLEET_OPT_TWO_SIDES,
};

struct verify_args {
	struct scheduler_config *cfg;
	struct cli_rows rows; /* the side settings */
	int help;
};

static int verify_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct verify_args *a = ctx;
	struct scheduler_config *cfg = a->cfg;
	int r;

	if ((r = cli_rows_option(&a->rows, h, why, cap)) <= 0)
		return r;
	switch (h->opt->id) {
	case VF_HELP: a->help = 1; return 0;
	case VF_ACCOUNT: return cli_opt_text(h, "an account id or user", &cfg->only_account, why, cap);
	case VF_FAILED: cfg->only_failed = 1; return 0;
	case VF_DEEP: cfg->deep = 1; return 0;
	case VF_MANIFEST: return cli_opt_text(h, "a file name", &cfg->manifest_path, why, cap);
	}
	return 0;
}

int cli_cmd_verify(int argc, char **argv)
{
	struct scheduler_config cfg;
	struct fleet_err err;
	struct verify_args a;
	int r;

	scheduler_config_init(&cfg);
	memset(&a, 0, sizeof(a));
	a.cfg = &cfg;
	cli_rows_init(&a.rows, argc, &cfg.accounts_path, " (one accounts file)", 2, &cfg);
	r = cli_spec_args(&verify_spec, argc, argv, verify_option, &a, &a.help);
	if (r >= 0) {
		cli_rows_release(&a.rows);
		return r;
	}
	cfg.argc = a.rows.n;
	cfg.argv = a.rows.words;
	r = scheduler_verify(&cfg, stdout, &err);
	cli_rows_release(&a.rows);
	if (r < 0) {
		return cli_fail("verify", &err);
	}
	return r == 0 ? CLI_EXIT_OK : CLI_EXIT_PARTIAL;
}

/* ---- verify-manifest ---------------------------------------------------------------------------- */

enum { VM_HELP = 1, VM_PUBKEY };

static const struct fleet_opt verify_manifest_table[] = {
	{"--help", 0, VM_HELP, NULL, "this help"},
	{"--pubkey", FLEET_OPT_VALUE, VM_PUBKEY, "K", "the public key: manifest.pub (PEM), or the base64 key\n"
						      "that verify printed"},
};

struct verify_manifest_args {
	const char *path, *pubkey;
	int help;
};

static int verify_manifest_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct verify_manifest_args *a = ctx;

	if (!h->opt) {
		if (a->path) {
			snprintf(why, cap, "unexpected argument '%s' (one manifest)", h->words[0]);
			return -1;
		}
		a->path = h->words[0];
	} else if (h->opt->id == VM_HELP) {
		a->help = 1;
	} else {
		a->pubkey = h->value;
	}
	return 0;
}

int cli_cmd_verify_manifest(int argc, char **argv)
{
	const struct fleet_optset sets[] = {FLEET_OPTSET(NULL, verify_manifest_table)};
	struct verify_manifest_args a;
	struct state_manifest_info info;
	struct fleet_err err;

	memset(&a, 0, sizeof(a));
	if (cli_parse("verify-manifest", sets, 1, 0, argc - 1, argv + 1, verify_manifest_option, &a) < 0)
		return CLI_EXIT_USAGE;
	if (a.help) {
		cli_usage(stdout, cli_usage_verify_manifest, sets, 1, 0);
		return CLI_EXIT_OK;
	}
	if (!a.path || !a.pubkey || !a.pubkey[0]) {
		fprintf(stderr, "imapfleet verify-manifest: give the manifest and --pubkey K "
				"(imapfleet verify-manifest FILE --pubkey K)\n");
		return CLI_EXIT_USAGE;
	}
	if (state_manifest_verify(a.path, a.pubkey, &info, &err) < 0) {
		printf("FAIL %s: %s\n", a.path, err.message);
		return cli_exit_for_error(&err);
	}
	printf("OK %s: %ld accounts, %ld messages, signature valid (Ed25519 key %s)\n", a.path, info.accounts,
	       info.messages, info.pubkey_b64);
	return CLI_EXIT_OK;
}

/* cli/cmd_sync.c: `imapfleet sync`: one account pair with imapsync-style options. */
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/usage.h"
#include "cli/cli.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/opt.h"
#include "engine/engine.h"
#include "scheduler/scheduler.h"

enum { SYNC_HELP = 1, SYNC_NO_STATE, SYNC_STATE, SYNC_LOG_LEVEL, SYNC_DEBUG };

static const struct fleet_opt sync_table[] = {
	{"--help", 0, SYNC_HELP, NULL, "this help"},
	{"--state", FLEET_OPT_VALUE, SYNC_STATE, "URL", "PostgreSQL state (default: IMAPFLEET_STATE, PG* variables,\n"
							 "or ./.imapfleet/pg)"},
	{"--no-state", 0, SYNC_NO_STATE, NULL, "keep nothing: find what is already copied by message identity"},
	{"--log-level", FLEET_OPT_VALUE, SYNC_LOG_LEVEL, "L", "error|warn|info|debug|trace (trace: the protocol, secrets\n"
							      "redacted)"},
	{"--debug", FLEET_OPT_HIDDEN, SYNC_DEBUG, NULL, NULL},
};

static const struct fleet_optset sync_opts = FLEET_OPTSET("state:", sync_table);
static const struct cli_spec sync_spec = {
    "sync",
    cli_usage_sync,
    {&sync_opts, &accounts_login_optset, &accounts_side_optset, &engine_opts_optset},
    FLEET_OPT_TWO_SIDES,
};

struct sync_args {
	struct cli_side *sides;
	char **rest;
	int nrest;
	int no_state, help;
	const char *state_url;
};

static int sync_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct sync_args *a = ctx;

	if (cli_no_operand(h, why, cap) < 0)
		return -1;
	if (h->set == 1 || h->set == 2)
		return cli_side_set(a->sides, h, why, cap);
	if (h->set == 3) { /* account options keep their value with them */
		cli_opt_keep_words(h, a->rest, &a->nrest);
		return 0;
	}
	switch (h->opt->id) {
	case SYNC_HELP: a->help = 1; return 0;
	case SYNC_NO_STATE: a->no_state = 1; return 0;
	case SYNC_STATE: a->state_url = h->value; return 0;
	case SYNC_LOG_LEVEL: return cli_opt_log_level(h, why, cap);
	case SYNC_DEBUG: fleet_log_set_level(FLEET_LOG_DEBUG); return 0;
	}
	return 0;
}

static atomic_int g_cancel; /* lock-free: set from the signal handler */

static void on_signal(int sig)
{
	if (atomic_load(&g_cancel))
		_exit(CLI_EXIT_INTERRUPTED); /* a second Ctrl-C stops at once; resuming is still safe */
	atomic_store(&g_cancel, 1);
}

static double mb(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

void cli_print_summary(FILE *out, const char *label, const struct engine_stats *st, int dry)
{
	double secs = (double)(st->finished_ms - st->started_ms) / 1000.0;

	if (secs <= 0)
		secs = 0.001;
	fprintf(out, "%s\n", label);
	fprintf(out, "  folders:  %u (%u %s, %u unchanged, %u left out, %u failed)\n", st->folders_total,
		st->folders_created, dry ? "would be created" : "created", st->folders_unchanged, st->folders_skipped,
		st->folders_failed);
	fprintf(out, "  messages: %llu on source, %llu %s (%.1f MB), %llu already there, %llu skipped, %llu failed\n",
		(unsigned long long)st->msgs_source, (unsigned long long)st->msgs_copied, dry ? "would be copied" : "copied",
		mb(st->bytes_copied), (unsigned long long)(st->msgs_already + st->msgs_matched),
		(unsigned long long)st->msgs_skipped, (unsigned long long)st->msgs_failed);
	if (st->msgs_ambiguous)
		fprintf(out, "  identity not certain: %llu copied although the destination may hold them (see the log)\n",
			(unsigned long long)st->msgs_ambiguous);
	if (st->flags_updated || st->msgs_deleted || st->flags_dropped)
		fprintf(out, "  flags updated: %llu, deleted on destination: %llu, flags the destination cannot keep: %llu\n",
			(unsigned long long)st->flags_updated, (unsigned long long)st->msgs_deleted,
			(unsigned long long)st->flags_dropped);
	fprintf(out, "  time:     %.1f s, %.0f messages/s, %.1f MB/s\n", secs, (double)st->msgs_copied / secs,
		mb(st->bytes_copied) / secs);
	for (size_t i = 0; i < st->nfailures; i++) {
		const struct engine_failure *f = &st->failures[i];

		if (f->src_uid)
			fprintf(out, "  failed:   folder '%s' uid %u: %s\n", f->folder, f->src_uid, f->reason);
		else
			fprintf(out, "  failed:   folder '%s': %s\n", f->folder, f->reason);
	}
}

int cli_cmd_sync(int argc, char **argv)
{
	struct cli_side sides[2];
	struct engine_opts opts;
	struct engine_job job;
	struct engine_stats st;
	struct fleet_err err;
	char **rest = xcalloc((size_t)argc + 1, sizeof(*rest));
	int nrest = 0, no_state = 0, rc;
	const char *state_url = NULL;
	char *label = NULL;

	memset(sides, 0, sizeof(sides));
	engine_opts_init(&opts);
	{
		struct sync_args a = {sides, rest, 0, 0, 0, NULL};

		rc = cli_spec_args(&sync_spec, argc, argv, sync_option, &a, &a.help);
		if (rc >= 0)
			goto done;
		nrest = a.nrest;
		no_state = a.no_state;
		state_url = a.state_url;
	}
	if (engine_opts_parse(&opts, nrest, rest, &err) < 0) {
		fprintf(stderr, "imapfleet sync: %s\n", err.message);
		goto usage;
	}
	for (size_t k = 0; k < opts.nnotes; k++)
		fprintf(stderr, "imapfleet sync: note: %s\n", opts.notes[k]);
	if (opts.trace)
		fleet_log_set_level(FLEET_LOG_TRACE);
	if (cli_side_finish(&sides[0], "1", 1) < 0 || cli_side_finish(&sides[1], "2", 1) < 0)
		goto usage;

	memset(&job, 0, sizeof(job));
	label = xasprintf("%s@%s -> %s@%s", sides[0].set.user, sides[0].set.host, sides[1].set.user, sides[1].set.host);
	job.label = label;
	for (int s = 0; s < 2; s++) {
		cli_side_endpoint(&sides[s], s == 0 ? "src" : "dst", &job.side[s].ep);
		job.side[s].user = sides[s].set.user;
		job.side[s].password = sides[s].password;
		job.side[s].authuser = sides[s].set.authuser;
		job.side[s].oauth_token = sides[s].token;
		job.side[s].auth = sides[s].set.auth;
		if (sides[s].cred.kind != CRED_NONE)
			job.side[s].cred = &sides[s].cred;
	}
	job.opts = &opts;
	job.cancel = &g_cancel;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	fleet_log_set_context(label, NULL);

	if (opts.dry || no_state || opts.justlogin) {
		struct ledger_mem *lm = ledger_mem_new();

		/* Nothing remembered between runs: what is already there is found by identity. */
		if (!opts.justlogin)
			opts.dedupe_existing = 1;
		job.ledger = ledger_mem_bind(lm);
		rc = engine_run(&job, &st, &err);
		ledger_mem_free(&lm);
	} else {
		rc = scheduler_sync_one(state_url, NULL, &job, &st, &err);
	}
	fleet_log_set_context(NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "imapfleet sync: %s: %s\n", label, err.message);
		if (err.detail[0])
			fprintf(stderr, "  %s\n", err.detail);
		/* A run-scope error is the state store's or the operator's, not the account's. */
		if (err.scope != FLEET_SCOPE_RUN && !opts.justlogin && st.started_ms)
			cli_print_summary(stderr, label, &st, opts.dry);
		rc = cli_exit_for_error(&err);
	} else {
		if (opts.justlogin)
			printf("%s: login ok on both sides\n", label);
		else
			cli_print_summary(stdout, label, &st, opts.dry);
		printf("  result:   %s\n", rc == 0 ? "complete" : "finished with failures (see above)");
		rc = rc == 0 ? CLI_EXIT_OK : CLI_EXIT_PARTIAL;
	}
	engine_stats_release(&st);
	goto done;
usage:
	fprintf(stderr, "run 'imapfleet sync --help' for the options\n");
	rc = CLI_EXIT_USAGE;
done:
	cli_side_release(&sides[0]);
	cli_side_release(&sides[1]);
	engine_opts_release(&opts);
	xfree(&rest);
	xfree(&label);
	return rc;
}

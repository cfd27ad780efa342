/* cli/cmd_status.c: `imapfleet status`: runs and accounts, read from the state store. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/usage.h"
#include "cli/cli.h"
#include "common/opt.h"
#include "common/util.h"
#include "ops/report.h"
#include "ops/status.h"
#include "state/store.h"

enum { ST_SERVER = 1, ST_LIMIT, ST_OFFSET, ST_PAGE, ST_JSON };

static const struct fleet_opt status_table[] = {
	{"--server", FLEET_OPT_VALUE, ST_SERVER, "H[:P]", "only accounts with this server on either side (host,\n"
							  "or host:port)"},
	{"--limit", FLEET_OPT_VALUE, ST_LIMIT, "N", "accounts per page (0 = all of them)"},
	{"--offset", FLEET_OPT_VALUE, ST_OFFSET, "N", "skip the first N matching accounts"},
	{"--page", FLEET_OPT_VALUE, ST_PAGE, "N", "page N (from 1) of --limit"},
	{"--json", 0, ST_JSON, NULL, "one JSON document instead of text (see docs/reports.md)"},
};

static const struct fleet_optset status_opts = FLEET_OPTSET(NULL, status_table);
static const struct cli_spec status_spec = {"status", cli_usage_status, {&cli_store_optset, &status_opts}, 0};

struct status_args {
	struct cli_store_args store;
	struct status_opts o;
	uint64_t limit, offset, page;
	int have_offset;
};

/* A --state value that names account states rather than a state store: a conninfo always holds
 * '=' and a URL ':' or '/', a state name never does. */
static int is_state_list(const char *v)
{
	return strpbrk(v, "=:/ ") == NULL && *v != '\0';
}

static int status_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct status_args *a = ctx;

	if (cli_no_operand(h, why, cap) < 0)
		return -1;
	if (h->set == 0) {
		if (strcmp(h->opt->name, "--state") == 0 && is_state_list(h->value)) {
			if (status_parse_states(h->value, &a->o.state_mask) < 0) {
				snprintf(why, cap,
					 "--state '%s' is neither account states (queued, running, done, failed, "
					 "cancelled, partial, comma-separated) nor a state store URL (postgresql://...)",
					 h->value);
				return -1;
			}
			return 0;
		}
		return cli_store_option(&a->store, h, why, cap);
	}
	switch (h->opt->id) {
	case ST_SERVER: a->o.server = h->value; return 0;
	case ST_JSON: a->o.json = 1; return 0;
	case ST_LIMIT:
		if (fleet_parse_u64(h->value, 0, 100000000, &a->limit) < 0) {
			snprintf(why, cap, "--limit needs a number of accounts (0 = all)");
			return -1;
		}
		return 0;
	case ST_OFFSET:
	case ST_PAGE: {
		int is_page = h->opt->id == ST_PAGE;

		if (a->have_offset ||
		    fleet_parse_u64(h->value, is_page ? 1 : 0, 100000000, is_page ? &a->page : &a->offset) < 0) {
			snprintf(why, cap, "%s",
				 a->have_offset ? "give --offset or --page, once"
				 : is_page      ? "--page needs a page number (1 is the first)"
						: "--offset needs a number of accounts to skip");
			return -1;
		}
		a->have_offset = 1;
		return 0;
	}
	}
	return 0;
}

int cli_cmd_status(int argc, char **argv)
{
	struct status_args a;
	struct state_store *rs;
	struct fleet_err err;
	int r;

	memset(&a, 0, sizeof(a));
	a.limit = STATUS_DEFAULT_LIMIT;
	if (cli_spec_parse(&status_spec, argc - 1, argv + 1, status_option, &a) < 0)
		return CLI_EXIT_USAGE;
	if (a.store.help) {
		cli_spec_usage(stdout, &status_spec);
		printf("(--limit defaults to %d)\n", STATUS_DEFAULT_LIMIT);
		return CLI_EXIT_OK;
	}
	if (a.page > 0) {
		if (a.limit == 0) {
			fprintf(stderr, "imapfleet status: --page needs a page size (--limit N, not 0)\n");
			return CLI_EXIT_USAGE;
		}
		a.offset = (a.page - 1) * a.limit;
	}
	a.o.run_id = (int64_t)a.store.run_id;
	a.o.limit = (long)a.limit;
	a.o.offset = (long)a.offset;
	if (state_store_open(a.store.state_arg, NULL, STATE_STORE_EXISTING, &rs, &err) < 0) {
		return cli_fail("status", &err);
	}
	r = report_status(state_store_conn(rs), &a.o, stdout, &err);
	state_store_close(&rs);
	if (r < 0) {
		fprintf(stderr, "imapfleet status: %s\n", err.message);
		return cli_exit_for_error(&err);
	}
	if (r > 0 && a.store.run_id) {
		fprintf(stderr, "imapfleet status: no run %llu in the state store\n", a.store.run_id);
		return CLI_EXIT_PARTIAL;
	}
	return CLI_EXIT_OK;
}

/* ops/retry.c: `retry`, requeueing failed accounts, and `cancel` (see retry.h). */
#include "ops/retry.h"

#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/util.h"
#include "ops/render.h"
#include "ops/report.h"

/* ---- retry -------------------------------------------------------------------------------------- */

struct retry_item {
	int64_t id;
	enum state_job_state state;
	char *line; /* "user1@host1 -> user2@host2" (terminal-safe) */
	char *why;  /* last error, terminal-safe, or NULL */
};

struct retry_ctx {
	int64_t only;  /* one job id, or 0 for every job whose state is in mask */
	unsigned mask; /* STATE_JOB_MASK bits */
	struct retry_item *v;
	size_t n, alloc;
};

static char *term_string(const char *s)
{
	struct rw w;
	char *out;

	fleet_buf_init(&w.b, RW_MAX);
	w.f = NULL;
	w.failed = 0;
	rw_term(&w, s);
	out = fleet_buf_detach(&w.b, NULL);
	return out ? out : xstrdup("");
}

static int retry_cb(const struct state_job_report *j, void *vctx)
{
	struct retry_ctx *ctx = vctx;
	struct retry_item *it;
	char *u1, *h1, *u2, *h2;

	if (ctx->only ? j->job_id != ctx->only : !(ctx->mask & STATE_JOB_MASK(j->state)))
		return 0;
	ctx->v = xgrow(ctx->v, sizeof(*ctx->v), ctx->n + 1, &ctx->alloc);
	it = &ctx->v[ctx->n++];
	it->id = j->job_id;
	it->state = j->state;
	u1 = term_string(j->user1);
	h1 = term_string(j->host1);
	u2 = term_string(j->user2);
	h2 = term_string(j->host2);
	it->line = xasprintf("%s@%s -> %s@%s", u1, h1, u2, h2);
	xfree(&u1);
	xfree(&h1);
	xfree(&u2);
	xfree(&h2);
	it->why = NULL;
	if (j->last_error_class[0] || j->last_error_text[0]) {
		char *c = term_string(j->last_error_class), *t = term_string(j->last_error_text);

		it->why = xasprintf("%s: %s", c, t);
		xfree(&c);
		xfree(&t);
	}
	return 0;
}

static void retry_release(struct retry_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n; i++) {
		xfree(&ctx->v[i].line);
		xfree(&ctx->v[i].why);
	}
	xfree(&ctx->v);
}

static void item_print(FILE *out, const char *verb, int64_t run_id, const struct retry_item *it)
{
	fprintf(out, "%s account %lld of run %lld: %s (was %s%s%s)\n", verb, (long long)it->id, (long long)run_id,
		it->line, state_job_state_name(it->state), it->why ? ": " : "", it->why ? it->why : "");
}

/* The one account `account` names, into ctx (its run into *run_id): 1, or 0 when none (said on
 * out, with what was not done: verb). */
static int find_one(struct state_conn *sc, int64_t *run_id, const char *account, const char *verb, FILE *out,
		    struct retry_ctx *ctx, struct fleet_err *err)
{
	int64_t job_id = 0;
	uint64_t num;
	int found;

	if (*run_id == 0 && fleet_parse_u64(account, 1, INT64_MAX, &num) < 0)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_NO_RUN,
				     "cannot find '%s' without a run: give --run ID", account);
	found = state_job_find(sc, *run_id, account, &job_id, err);
	if (found < 0)
		return -1;
	if (found == 0) {
		fprintf(out, "no account matches '%s'", account);
		if (*run_id)
			fprintf(out, " in run %lld", (long long)*run_id);
		fprintf(out, ": nothing %s\n", verb);
		return 0;
	}
	if (*run_id == 0 && state_report_job_run(sc, job_id, run_id, err) < 0)
		return -1;
	ctx->only = job_id;
	if (state_report_jobs(sc, *run_id, retry_cb, ctx, err) < 0)
		return -1;
	if (ctx->n != 1) {
		fprintf(out, "account %lld is gone: nothing %s\n", (long long)job_id, verb);
		return 0;
	}
	return 1;
}

/* What `retry` and `cancel` do, to one account or to a run's accounts. */
struct retry_action {
	const char *verb; /* "requeued", "cancelled" */
	int (*one)(struct state_conn *sc, int64_t job_id, struct fleet_err *err);
	const char *one_unchanged; /* said when `one` changes nothing */
	int (*all)(struct state_conn *sc, int64_t run_id, unsigned state_mask, long *count, struct fleet_err *err);
};

/* Applies act to `account`, or to every account of the run whose state is in mask, and says on
 * out what was done: 0 done (or nothing to do, said), 1 no account of the run matched (not said),
 * -1 error. ctx holds the accounts found (release it either way); *count, how many were changed. */
static int retry_apply(struct state_conn *sc, int64_t run_id, const char *account, const struct retry_action *act,
		       unsigned mask, struct retry_ctx *ctx, FILE *out, long *count, struct fleet_err *err)
{
	int found;

	*count = 0;
	memset(ctx, 0, sizeof(*ctx));
	ctx->mask = mask;
	if (account) {
		found = find_one(sc, &run_id, account, act->verb, out, ctx, err);
		if (found <= 0)
			return found;
		found = act->one(sc, ctx->only, err);
		if (found < 0)
			return -1;
		if (found == 0) {
			fprintf(out, "account %lld of run %lld (%s) %s\n", (long long)ctx->only, (long long)run_id,
				ctx->v[0].line, act->one_unchanged);
		} else {
			item_print(out, act->verb, run_id, &ctx->v[0]);
			*count = 1;
		}
		return 0;
	}
	if (state_report_jobs(sc, run_id, retry_cb, ctx, err) < 0)
		return -1;
	if (ctx->n == 0)
		return 1;
	if (act->all(sc, run_id, ctx->mask, count, err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n; i++)
		item_print(out, act->verb, run_id, &ctx->v[i]);
	return 0;
}

int report_retry(struct state_conn *sc, int64_t run_id, const char *account, FILE *out, long *count,
		 struct fleet_err *err)
{
	static const struct retry_action requeue = {"requeued", state_job_requeue, "is running right now: not requeued",
						    state_run_requeue};
	struct retry_ctx ctx;
	int rc;

	rc = retry_apply(sc, run_id, account, &requeue, STATE_JOB_MASK(STATE_JOB_FAILED) | STATE_JOB_MASK(STATE_JOB_PARTIAL),
			 &ctx, out, count, err);
	if (rc == 1) {
		fprintf(out, "no failed account in run %lld: nothing requeued\n", (long long)run_id);
		rc = 0;
	} else if (rc == 0 && (size_t)*count > ctx.n) {
		fprintf(out, "%lld more account(s) failed meanwhile and were requeued too\n",
			(long long)((size_t)*count - ctx.n));
	}
	retry_release(&ctx);
	return rc;
}

/* ---- cancel ------------------------------------------------------------------------------------- */

int report_cancel(struct state_conn *sc, int64_t run_id, const char *account, int all, FILE *out, long *count,
		  struct fleet_err *err)
{
	static const struct retry_action cancel = {"cancelled", state_job_cancel, "is cancelled already",
						   state_run_cancel};
	unsigned mask = all ? ~STATE_JOB_MASK(STATE_JOB_CANCELLED) & (STATE_JOB_MASK(STATE_JOB_NSTATES) - 1)
			    : STATE_JOB_MASK(STATE_JOB_FAILED) | STATE_JOB_MASK(STATE_JOB_PARTIAL);
	struct retry_ctx ctx;
	int rc;

	rc = retry_apply(sc, run_id, account, &cancel, mask, &ctx, out, count, err);
	if (rc == 1) {
		fprintf(out, "no %saccount to cancel in run %lld\n", all ? "" : "failed ", (long long)run_id);
		rc = 0;
	}
	retry_release(&ctx);
	return rc;
}

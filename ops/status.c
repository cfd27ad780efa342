/* ops/status.c: `status`, text or JSON (see status.h). */
#include "ops/status.h"

#include <string.h>

#include "common/alloc.h"
#include "ops/render.h"
#include "ops/report.h"
#include "ops/report_private.h"

/* ---- status ------------------------------------------------------------------------------------- */

struct status_ctx {
	struct rw *w;
	int json;
	size_t n;
	size_t width; /* account column */
};

/* "user1@host1 -> user2@host2" as terminal text; returns its width. */
static size_t term_account(struct rw *w, const struct state_job_report *j)
{
	size_t c = rw_term(w, j->user1);

	rw_put(w, "@", 1);
	c += 1 + rw_term(w, j->host1);
	rw_puts(w, " -> ");
	c += 4 + rw_term(w, j->user2);
	rw_put(w, "@", 1);
	c += 1 + rw_term(w, j->host2);
	return c;
}

static int status_width_cb(const struct state_job_report *j, void *vctx)
{
	struct status_ctx *ctx = vctx;
	struct rw scratch;
	size_t c;

	/* Width in code points, measured the way it will be printed (into a buffer never written). */
	fleet_buf_init(&scratch.b, RW_MAX);
	scratch.f = NULL;
	scratch.failed = 0;
	c = term_account(&scratch, j);
	fleet_buf_release(&scratch.b);
	if (c > ctx->width)
		ctx->width = c;
	return 0;
}

static int status_job_cb(const struct state_job_report *j, void *vctx)
{
	struct status_ctx *ctx = vctx;
	struct rw *w = ctx->w;
	char t[TBUF];

	if (ctx->json) {
		rw_printf(w, "%s\n    {\"id\": %lld, \"source\": {\"host\": ", ctx->n ? "," : "",
			  (long long)j->job_id);
		rw_json(w, j->host1);
		rw_printf(w, ", \"port\": %u, \"user\": ", j->port1);
		rw_json(w, j->user1);
		rw_puts(w, "}, \"destination\": {\"host\": ");
		rw_json(w, j->host2);
		rw_printf(w, ", \"port\": %u, \"user\": ", j->port2);
		rw_json(w, j->user2);
		rw_printf(w,
			  "}, \"state\": \"%s\", \"attempts\": %d, \"max_attempts\": %d, \"folders\": %lld, "
			  "\"msgs_copied\": %lld, \"bytes_copied\": %lld, \"msgs_skipped\": %lld, "
			  "\"msgs_failed\": %lld, "
			  "\"error\": ",
			  state_job_state_name(j->state), j->attempts, j->max_attempts, (long long)j->folders,
			  (long long)j->msgs_copied, (long long)j->bytes_copied, (long long)j->msgs_skipped,
			  (long long)j->msgs_failed);
		if (j->last_error_class[0] || j->last_error_text[0]) {
			rw_puts(w, "{\"class\": ");
			rw_json_opt(w, j->last_error_class);
			rw_puts(w, ", \"code\": ");
			rw_json_opt(w, j->last_error_code);
			rw_puts(w, ", \"text\": ");
			rw_json(w, j->last_error_text);
			rw_puts(w, "}");
		} else {
			rw_puts(w, "null");
		}
		rw_puts(w, ", \"updated_at\": ");
		json_time(w, j->updated_at_ms);
		rw_puts(w, "}");
	} else {
		size_t c;

		rw_printf(w, "%6lld  ", (long long)j->job_id);
		c = term_account(w, j);
		rw_pad(w, c, ctx->width);
		rw_printf(w, "  %-9s %2d/%-2d %8lld %6lld  %-19s", state_job_state_name(j->state),
			  j->attempts, j->max_attempts, (long long)j->msgs_copied, (long long)j->msgs_failed,
			  fmt_time(t, j->updated_at_ms, 0));
		if (j->last_error_class[0] || j->last_error_text[0]) {
			rw_puts(w, "  ");
			rw_term(w, j->last_error_class);
			if (j->last_error_code[0]) {
				rw_puts(w, " ");
				rw_term(w, j->last_error_code);
			}
			rw_puts(w, ": ");
			rw_term(w, j->last_error_text);
		}
		rw_puts(w, "\n");
	}
	ctx->n++;
	return 0;
}

static void status_run(struct rw *w, const struct run_info *ri, int json, int first)
{
	char t[TBUF], b[TBUF];
	const struct state_run_counts *c = &ri->counts;

	if (json) {
		rw_printf(w, "%s\n    {\"id\": %lld, \"name\": ", first ? "" : ",", (long long)ri->id);
		rw_json(w, ri->name);
		rw_puts(w, ", \"state\": ");
		rw_json(w, ri->state);
		rw_printf(w, ", \"progress\": \"%s\", \"created_at\": ", run_progress(ri->state, c));
		json_time(w, ri->created_ms);
		rw_printf(w, ", \"accounts\": {\"total\": %ld", counts_total(c));
		for (int s = 0; s < STATE_JOB_NSTATES; s++)
			rw_printf(w, ", \"%s\": %ld", state_job_state_name((enum state_job_state)s),
				  c->jobs[s]);
		rw_printf(w,
			  "}, \"msgs_copied\": %lld, \"bytes_copied\": %lld, \"msgs_skipped\": %lld, "
			  "\"msgs_failed\": %lld}",
			  (long long)c->msgs_copied, (long long)c->bytes_copied, (long long)c->msgs_skipped,
			  (long long)c->msgs_failed);
		return;
	}
	rw_printf(w, "run %lld  %s  created %s UTC  ", (long long)ri->id, run_progress(ri->state, c),
		  fmt_time(t, ri->created_ms, 0));
	rw_term(w, ri->name);
	rw_printf(w,
		  "\n  accounts: %ld total, %ld done, %ld failed, %ld running, %ld queued, %ld cancelled, %ld partial\n"
		  "  messages: %lld copied (%s), %lld skipped, %lld failed\n",
		  counts_total(c), c->jobs[STATE_JOB_DONE], c->jobs[STATE_JOB_FAILED],
		  c->jobs[STATE_JOB_RUNNING], c->jobs[STATE_JOB_QUEUED], c->jobs[STATE_JOB_CANCELLED],
		  c->jobs[STATE_JOB_PARTIAL], (long long)c->msgs_copied, fmt_bytes(b, c->bytes_copied), (long long)c->msgs_skipped,
		  (long long)c->msgs_failed);
}

int report_status(struct state_conn *sc, int64_t run_id, int json, FILE *out, struct fleet_err *err)
{
	struct run_list l;
	struct status_ctx ctx;
	struct rw w;
	int64_t shown = 0;
	int r;

	if (run_list_load(sc, run_id, &l, err) < 0) {
		run_list_release(&l);
		return -1;
	}
	r = report_pick_run(sc, run_id, &shown, err);
	if (r < 0) {
		run_list_release(&l);
		return -1;
	}
	rw_init(&w, out);
	if (json) {
		rw_puts(&w, "{\n  \"runs\": [");
		for (size_t i = 0; i < l.n; i++)
			status_run(&w, &l.v[i], 1, i == 0);
		rw_puts(&w, l.n ? "\n  ],\n" : "],\n");
		if (r == 1)
			rw_printf(&w, "  \"run_id\": %lld,\n  \"accounts\": [", (long long)shown);
		else
			rw_puts(&w, "  \"run_id\": null,\n  \"accounts\": [");
	} else if (l.n == 0) {
		rw_puts(&w,
			run_id
			    ? "imapfleet status: no such run in the state store\n"
			    : "imapfleet status: no run in the state store yet ('imapfleet run ACCOUNTS.csv' "
			      "starts one)\n");
	} else {
		for (size_t i = 0; i < l.n; i++)
			status_run(&w, &l.v[i], 0, i == 0);
	}
	run_list_release(&l);
	memset(&ctx, 0, sizeof(ctx));
	ctx.w = &w;
	ctx.json = json;
	ctx.width = 7;
	if (r == 1) {
		if (!json) {
			if (state_report_jobs(sc, shown, status_width_cb, &ctx, err) < 0)
				goto fail;
			if (ctx.width > 72)
				ctx.width = 72;
			rw_printf(&w, "\naccounts of run %lld:\n%6s  ", (long long)shown, "ID");
			rw_puts(&w, "ACCOUNT");
			rw_pad(&w, 7, ctx.width);
			rw_printf(&w, "  %-9s %5s %8s %6s  %-19s  %s\n", "STATE", "TRIES", "COPIED", "FAILED",
				  "UPDATED (UTC)", "LAST ERROR");
		}
		if (state_report_jobs(sc, shown, status_job_cb, &ctx, err) < 0)
			goto fail;
		if (!json && ctx.n == 0)
			rw_puts(&w, "  (no accounts)\n");
	}
	if (json)
		rw_puts(&w, ctx.n ? "\n  ]\n}\n" : "]\n}\n");
	if (rw_finish(&w, "the status", err) < 0)
		return -1;
	return r == 1 ? 0 : 1;
fail:
	rw_flush(&w);
	fleet_buf_release(&w.b);
	return -1;
}

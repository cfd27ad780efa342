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
	json_t *accounts; /* --json: the page's accounts, else NULL */
	size_t n;
	size_t rows;  /* rows seen by the width pass */
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
	ctx->rows++;
	if (c > ctx->width)
		ctx->width = c;
	return 0;
}

static int status_job_cb(const struct state_job_report *j, void *vctx)
{
	struct status_ctx *ctx = vctx;
	struct rw *w = ctx->w;
	char t[TBUF];

	if (ctx->accounts) {
		json_t *o = json_pack(
		    "{s:I, s:{s:o, s:I, s:o}, s:{s:o, s:I, s:o}, s:s, s:i, s:i, s:I, s:I, s:I, s:I, "
		    "s:I, s:o, s:o, s:o, s:o}",
		    "id", (json_int_t)j->job_id, "source", "host", jv_str(j->host1), "port",
		    (json_int_t)j->port1, "user", jv_str(j->user1), "destination", "host", jv_str(j->host2),
		    "port", (json_int_t)j->port2, "user", jv_str(j->user2), "state",
		    state_job_state_name(j->state), "attempts", j->attempts, "max_attempts", j->max_attempts,
		    "folders", (json_int_t)j->folders, "msgs_copied", (json_int_t)j->msgs_copied,
		    "bytes_copied", (json_int_t)j->bytes_copied, "msgs_skipped", (json_int_t)j->msgs_skipped,
		    "msgs_failed", (json_int_t)j->msgs_failed, "error", jv_job_error(j), "left_out",
		    jv_opt(j->left_out), "updated_at", jv_time(j->updated_at_ms), "parked",
		    jv_parked(j->parked_until_ms, j->park_reason, j->eta_ms));
		json_object_set_new(o, "pass", jv_job_pass(j));
		json_object_set_new(o, "msgs_uncertain", json_integer(j->msgs_uncertain));
		json_object_set_new(o, "last_synced_at", jv_time(j->last_synced_at_ms));
		json_object_set_new(o, "verify", jv_job_verify(j));
		json_array_append_new(ctx->accounts, o);
	} else {
		size_t c;

		rw_printf(w, "%6lld  ", (long long)j->job_id);
		c = term_account(w, j);
		rw_pad(w, c, ctx->width);
		rw_printf(w, "  %-9s %2d/%-2d %4d %7lld %7lld %7lld %6lld  %-7s  %-19s",
			  j->parked_until_ms > 0 ? "parked" : state_job_state_name(j->state), j->attempts,
			  j->max_attempts, j->pass_number, (long long)j->pass_copied, (long long)j->pass_matched,
			  (long long)j->pass_skipped, (long long)j->pass_failed, j->verdict[0] ? j->verdict : "-",
			  fmt_time(t, j->updated_at_ms, 0));
		if (j->parked_until_ms > 0) {
			char pk[PBUF];

			rw_printf(w, "  %s;", fmt_parked(pk, j->parked_until_ms, j->park_reason, j->eta_ms));
		}
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
		if (j->left_out[0])
			rw_printf(w, " (left out of later passes: %s)", left_out_text(j->left_out));
		if (j->msgs_uncertain)
			rw_printf(w, "  identity not certain: %lld", (long long)j->msgs_uncertain);
		rw_puts(w, "\n");
	}
	ctx->n++;
	return 0;
}

static json_t *status_run_jv(const struct run_info *ri)
{
	const struct state_run_counts *c = &ri->counts;
	json_t *counts = json_pack("{s:I}", "total", (json_int_t)counts_total(c));

	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		json_object_set_new(counts, state_job_state_name((enum state_job_state)s), json_integer(c->jobs[s]));
	json_t *o;

	json_object_set_new(counts, "parked", json_integer(c->parked));
	o = json_pack("{s:I, s:o, s:o, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "id", (json_int_t)ri->id,
				   "name", jv_str(ri->name), "state", jv_str(ri->state), "progress",
				   run_progress(ri->state, c), "created_at", jv_time(ri->created_ms), "accounts",
				   counts, "msgs_copied", (json_int_t)c->msgs_copied, "bytes_copied",
				   (json_int_t)c->bytes_copied, "msgs_skipped", (json_int_t)c->msgs_skipped,
				   "msgs_failed", (json_int_t)c->msgs_failed, "passes", jv_passes(ri->passes, ri->npasses),
				   "parked_until", jv_time(c->parked_until_ms), "eta", jv_time(c->parked_eta_ms));
	json_object_set_new(o, "msgs_uncertain", json_integer(c->msgs_uncertain));
	return o;
}

static void status_run(struct rw *w, const struct run_info *ri)
{
	char t[TBUF], b[TBUF];
	const struct state_run_counts *c = &ri->counts;

	rw_printf(w, "run %lld  %s  created %s UTC  ", (long long)ri->id, run_progress(ri->state, c),
		  fmt_time(t, ri->created_ms, 0));
	rw_term(w, ri->name);
	rw_printf(w,
		  "\n  accounts: %ld total, %ld done, %ld failed, %ld running, %ld queued, %ld cancelled, %ld partial\n"
		  "  ledger (all passes): %lld messages copied or found already there (%s), %lld skipped, %lld failed\n",
		  counts_total(c), c->jobs[STATE_JOB_DONE], c->jobs[STATE_JOB_FAILED],
		  c->jobs[STATE_JOB_RUNNING], c->jobs[STATE_JOB_QUEUED], c->jobs[STATE_JOB_CANCELLED],
		  c->jobs[STATE_JOB_PARTIAL], (long long)c->msgs_copied, fmt_bytes(b, c->bytes_copied), (long long)c->msgs_skipped,
		  (long long)c->msgs_failed);
	if (c->msgs_uncertain)
		rw_printf(w, "  identity not certain: %lld of the copied messages may be on the destination twice "
			     "(look-alikes there, or no Message-ID)\n",
			  (long long)c->msgs_uncertain);
	if (ri->npasses) {
		const struct state_pass_report *p = &ri->passes[ri->npasses - 1];

		rw_printf(w, "  pass %d of %zu (%s), started %s UTC, ", p->number, ri->npasses, p->kind,
			  fmt_time(t, p->started_at_ms, 0));
		if (p->ended_at_ms)
			rw_printf(w, "ended %s UTC", fmt_time(b, p->ended_at_ms, 0));
		else
			rw_puts(w, "goes on");
		rw_printf(w, ": %lld copied, %lld already there, %lld skipped, %lld failed\n", (long long)p->copied,
			  (long long)p->matched, (long long)p->skipped, (long long)p->msgs_failed);
	}
	if (c->parked) {
		char t2[TBUF];

		rw_printf(w, "  parked:   %ld of the queued accounts, the last resuming %s UTC; ETA of the parked %s UTC\n",
			  c->parked, fmt_time(t, c->parked_until_ms, 0), fmt_time(t2, c->parked_eta_ms, 0));
	}
}

/* ---- the page of accounts ---------------------------------------------------------------------- */

int status_parse_states(const char *list, unsigned *mask)
{
	const char *p = list;

	*mask = 0;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		int found = 0;

		for (int s = 0; s < STATE_JOB_NSTATES; s++) {
			const char *name = state_job_state_name((enum state_job_state)s);

			if (n == strlen(name) && strncmp(p, name, n) == 0) {
				*mask |= STATE_JOB_MASK(s);
				found = 1;
			}
		}
		if (!found)
			return -1;
		p += n;
		if (*p == ',')
			p++;
	}
	return *mask ? 0 : -1;
}

/* The filter in words, for the text heading ("state failed, server mx.example.org"). */
static void term_filter(struct rw *w, const struct status_opts *o)
{
	const char *sep = "";

	if (o->state_mask) {
		rw_puts(w, "state ");
		for (int s = 0; s < STATE_JOB_NSTATES; s++)
			if (o->state_mask & STATE_JOB_MASK(s)) {
				rw_printf(w, "%s%s", sep, state_job_state_name((enum state_job_state)s));
				sep = ",";
			}
		sep = ", ";
	}
	if (o->server && *o->server) {
		rw_printf(w, "%sserver ", sep);
		rw_term(w, o->server);
	}
}

static json_t *json_filter(const struct status_opts *o)
{
	json_t *states = json_null();

	if (o->state_mask) {
		states = json_array();
		for (int s = 0; s < STATE_JOB_NSTATES; s++)
			if (o->state_mask & STATE_JOB_MASK(s))
				json_array_append_new(states, json_string(state_job_state_name((enum state_job_state)s)));
	}
	return json_pack("{s:o, s:o}", "states", states, "server", jv_opt(o->server));
}

/* How many accounts of the run match: from its counts by state when no server is asked for (no
 * second pass over the table), else -1 (the page query counts). */
static long matched_from_counts(const struct run_list *l, int64_t run_id, const struct status_opts *o)
{
	long n = 0;

	if (o->server && *o->server)
		return -1;
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].id != run_id)
			continue;
		for (int s = 0; s < STATE_JOB_NSTATES; s++)
			if (!o->state_mask || (o->state_mask & STATE_JOB_MASK(s)))
				n += l->v[i].counts.jobs[s];
		return n;
	}
	return -1;
}

int report_status(struct state_conn *sc, const struct status_opts *o, FILE *out, struct fleet_err *err)
{
	struct run_list l;
	struct status_ctx ctx;
	struct state_job_filter filt;
	struct rw w;
	json_t *doc = NULL, *runs = NULL;
	int64_t shown = 0;
	long matched = 0, offset = o->offset > 0 ? o->offset : 0;
	int r;

	if (run_list_load(sc, o->run_id, &l, err) < 0) {
		run_list_release(&l);
		return -1;
	}
	r = report_pick_run(sc, o->run_id, &shown, err);
	if (r < 0) {
		run_list_release(&l);
		return -1;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.width = 7;
	if (r == 1) {
		/* First pass: how many match and, for text, the width of the account column; the rows are
		 * printed by a second pass over the same page (cheap: it stops at the limit). */
		memset(&filt, 0, sizeof(filt));
		filt.state_mask = o->state_mask;
		filt.server = o->server;
		filt.limit = o->limit;
		filt.offset = offset;
		matched = matched_from_counts(&l, shown, o);
		if ((!o->json || matched < 0) &&
		    state_report_jobs_page(sc, shown, &filt, status_width_cb, &ctx,
					   matched < 0 ? &matched : NULL, err) < 0) {
			run_list_release(&l);
			return -1;
		}
	}
	rw_init(&w, out);
	if (o->json) {
		/* One document: {"runs", "run_id", "accounts", then "filter" and "page" for a run}. */
		runs = json_array();
		for (size_t i = 0; i < l.n; i++)
			json_array_append_new(runs, status_run_jv(&l.v[i]));
		ctx.accounts = json_array();
		doc = json_pack("{s:o, s:o, s:o}", "runs", runs, "run_id",
				r == 1 ? json_integer(shown) : json_null(), "accounts", ctx.accounts);
	} else if (l.n == 0) {
		rw_puts(&w,
			o->run_id
			    ? "imapfleet status: no such run in the state store\n"
			    : "imapfleet status: no run in the state store yet ('imapfleet run ACCOUNTS.csv' "
			      "starts one)\n");
	} else {
		for (size_t i = 0; i < l.n; i++)
			status_run(&w, &l.v[i]);
	}
	run_list_release(&l);
	ctx.w = &w;
	if (r == 1) {
		if (!o->json) {
			long rows = (long)ctx.rows;

			if (ctx.width > 72)
				ctx.width = 72;
			rw_printf(&w, "\naccounts of run %lld", (long long)shown);
			if (o->state_mask || (o->server && *o->server)) {
				rw_puts(&w, " (");
				term_filter(&w, o);
				rw_puts(&w, ")");
			}
			if (rows)
				rw_printf(&w, ": %ld-%ld of %ld", offset + 1, offset + rows, matched);
			else
				rw_printf(&w, ": none of %ld shown", matched);
			rw_printf(&w, "\n%6s  ", "ID");
			rw_puts(&w, "ACCOUNT");
			rw_pad(&w, 7, ctx.width);
			rw_printf(&w, "  %-9s %5s %4s %7s %7s %7s %6s  %-7s  %-19s  %s\n", "STATE", "TRIES", "PASS",
				  "COPIED", "THERE", "SKIPPED", "FAILED", "VERDICT", "UPDATED (UTC)", "LAST ERROR");
		}
		if (state_report_jobs_page(sc, shown, &filt, status_job_cb, &ctx, NULL, err) < 0) {
			json_decref(doc);
			rw_flush(&w);
			fleet_buf_release(&w.b);
			return -1;
		}
		if (!o->json && ctx.n == 0)
			rw_puts(&w, "  (no accounts)\n");
		if (!o->json && ctx.n > 0)
			rw_puts(&w, "  each account's log: .imapfleet/logs/USER1@HOST1-ID.log in the directory of the "
				    "host that ran it\n");
		if (!o->json && offset + (long)ctx.n < matched && ctx.n > 0) {
			long next = offset + (long)ctx.n;

			rw_printf(&w, "  %ld more: ", matched - next);
			if (o->limit > 0 && next % o->limit == 0)
				rw_printf(&w, "--page %ld", next / o->limit + 1);
			else
				rw_printf(&w, "--offset %ld", next);
			rw_puts(&w, " shows the next page, --limit 0 all of them\n");
		}
	}
	if (doc) {
		if (r == 1) {
			/* After the accounts: "shown" is what the page query returned. */
			long next = offset + (long)ctx.n;

			json_object_set_new(doc, "filter", json_filter(o));
			json_object_set_new(doc, "page",
					    json_pack("{s:I, s:o, s:I, s:I, s:o}", "offset", (json_int_t)offset, "limit",
						      o->limit > 0 ? json_integer(o->limit) : json_null(), "shown",
						      (json_int_t)ctx.n, "matched", (json_int_t)matched, "next_offset",
						      next < matched && ctx.n > 0 ? json_integer(next) : json_null()));
		}
		fleet_buf_release(&w.b);
		if (jv_write(doc, out, "the status", err) < 0) /* releases doc */
			return -1;
	} else if (rw_finish(&w, "the status", err) < 0)
		return -1;
	return r == 1 ? 0 : 1;
}

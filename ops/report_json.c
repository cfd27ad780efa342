/* ops/report_json.c: accounts.json (shape in docs/reports.md), built with jansson. */
#include <string.h>

#include "config.h"

#include "ops/render.h"
#include "ops/report.h"
#include "ops/report_private.h"

static json_t *acct_ids(const struct report *r, const struct report_cause *c)
{
	json_t *ids = json_array();

	for (size_t k = 0; k < c->naccts; k++)
		json_array_append_new(ids, json_integer(r->accts[c->accts[k]].j.job_id));
	return ids;
}

/* While the run goes on: what is left and when it should be done (null once it has ended). */
static json_t *remaining_object(const struct report *r)
{
	const struct report_remaining *m = &r->remaining;

	if (!report_run_goes_on(r))
		return json_null();
	return json_pack(
	    "{s:o, s:o, s:b, s:o, s:o, s:I, s:o, s:o}", "bytes_copied",
	    m->b.known ? json_integer((json_int_t)m->b.copied) : json_null(), "bytes_total",
	    m->b.known ? json_integer((json_int_t)m->b.total) : json_null(), "estimated", m->b.estimated,
	    "bytes_per_second", m->rate > 0 ? json_integer((json_int_t)m->rate) : json_null(), "eta",
	    m->eta_s >= 0 ? jv_time(r->generated_ms + (int64_t)(m->eta_s * 1000.0)) : json_null(), "parked",
	    (json_int_t)r->run.counts.parked, "parked_until", jv_time(r->run.counts.parked_until_ms),
	    "parked_eta", jv_time(r->run.counts.parked_eta_ms));
}

static json_t *run_object(const struct report *r)
{
	json_t *counts = json_pack("{s:I}", "total", (json_int_t)r->total), *o;

	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		json_object_set_new(counts, state_job_state_name((enum state_job_state)s),
				    json_integer(r->run.counts.jobs[s]));
	o = json_pack("{s:I, s:o, s:o, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o}",
		      "id", (json_int_t)r->run.id, "name", jv_str(r->run.name), "state", jv_str(r->run.state),
		      "progress", progress_label(r), "created_at", jv_time(r->run.created_ms), "accounts",
		      counts, "msgs_copied", (json_int_t)r->run.counts.msgs_copied, "bytes_copied",
		      (json_int_t)r->run.counts.bytes_copied, "msgs_skipped",
		      (json_int_t)r->run.counts.msgs_skipped, "bytes_skipped", (json_int_t)r->bytes_skipped,
		      "msgs_failed", (json_int_t)r->run.counts.msgs_failed, "bytes_failed",
		      (json_int_t)r->bytes_failed, "started_at", jv_time(r->first_start_ms), "finished_at",
		      jv_time(r->last_finish_ms), "elapsed_seconds", jv_seconds(run_elapsed_ms(r)),
		      "busy_seconds", jv_seconds(r->busy_ms));
	json_object_set_new(o, "msgs_uncertain", json_integer(r->run.counts.msgs_uncertain));
	json_object_set_new(o, "remaining", remaining_object(r));
	return o;
}

static json_t *cause_object(const struct report *r, const struct report_cause *k)
{
	if (k->account_level)
		return json_pack("{s:s, s:o, s:o, s:o, s:I, s:o}", "scope", "account", "class", jv_opt(k->cls), "code",
				 jv_opt(k->code), "example", jv_str(k->text), "accounts", (json_int_t)k->count,
				 "account_ids", acct_ids(r, k));
	return json_pack("{s:s, s:s, s:o, s:I, s:I, s:o}", "scope", "message", "state", msg_state_name(k->mstate),
			 "reason", jv_str(k->text), "messages", (json_int_t)k->count, "bytes", (json_int_t)k->bytes,
			 "account_ids", acct_ids(r, k));
}

/* The account's failed and skipped messages, grouped by state and reason. */
static json_t *failures(const struct report *r, const struct report_acct *a)
{
	json_t *groups = json_array();

	for (size_t k = a->msg_first; k < a->msg_first + a->msg_count;) {
		size_t e = k;
		int64_t bytes = 0;
		json_t *msgs = json_array();

		while (e < a->msg_first + a->msg_count && r->msgs[e].m.state == r->msgs[k].m.state &&
		       !strcmp(r->msgs[e].group, r->msgs[k].group))
			bytes += (int64_t)r->msgs[e++].m.size;
		for (size_t m = k; m < e; m++)
			json_array_append_new(msgs, json_pack("{s:o, s:I, s:I, s:I, s:o}", "folder",
							      jv_str(r->msgs[m].m.src_folder), "uidvalidity",
							      (json_int_t)r->msgs[m].m.src_uidvalidity, "uid",
							      (json_int_t)r->msgs[m].m.src_uid, "size",
							      (json_int_t)r->msgs[m].m.size, "error",
							      jv_str(r->msgs[m].m.error)));
		json_array_append_new(groups,
				      json_pack("{s:s, s:o, s:I, s:I, s:o}", "state",
						msg_state_name(r->msgs[k].m.state), "reason",
						jv_str(r->msgs[k].group), "count", (json_int_t)(e - k),
						"bytes", (json_int_t)bytes, "messages", msgs));
		k = e;
	}
	return groups;
}

static json_t *acct_object(const struct report *r, const struct report_acct *a)
{
	json_t *o = json_pack(
	    "{s:I, s:{s:o, s:I, s:o}, s:{s:o, s:I, s:o}, s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
	    "id", (json_int_t)a->j.job_id, "source", "host", jv_str(a->j.host1), "port",
	    (json_int_t)a->j.port1, "user", jv_str(a->j.user1), "destination", "host", jv_str(a->j.host2),
	    "port", (json_int_t)a->j.port2, "user", jv_str(a->j.user2), "state",
	    state_job_state_name(a->j.state), "attempts", a->j.attempts, "max_attempts", a->j.max_attempts,
	    "attempts_total", (json_int_t)a->attempts_total, "folders", (json_int_t)a->j.folders,
	    "msgs_copied", (json_int_t)a->j.msgs_copied, "bytes_copied", (json_int_t)a->j.bytes_copied,
	    "msgs_skipped", (json_int_t)a->j.msgs_skipped, "bytes_skipped", (json_int_t)a->bytes_skipped,
	    "msgs_failed", (json_int_t)a->j.msgs_failed, "bytes_failed", (json_int_t)a->bytes_failed,
	    "started_at", jv_time(a->j.started_at_ms), "finished_at", jv_time(a->j.finished_at_ms),
	    "updated_at", jv_time(a->j.updated_at_ms), "parked",
	    jv_parked(a->j.parked_until_ms, a->j.park_reason, a->j.eta_ms), "duration_seconds",
	    jv_seconds(acct_duration_ms(a)), "error", jv_job_error(&a->j), "left_out", jv_opt(a->j.left_out),
	    "failures", failures(r, a));

	json_object_set_new(o, "msgs_uncertain", json_integer(a->j.msgs_uncertain));
	/* this pass, last synced and the latest verify, in the words of docs/reports.md */
	json_object_set_new(o, "pass", jv_job_pass(&a->j));
	json_object_set_new(o, "last_synced_at", jv_time(a->j.last_synced_at_ms));
	json_object_set_new(o, "verify", jv_job_verify(&a->j));
	return o;
}

int report_write_json(const struct report *r, FILE *out, struct fleet_err *err)
{
	json_t *tp = json_array(), *causes = json_array(), *accts = json_array();

	for (size_t i = 0; i < r->ntp; i++)
		json_array_append_new(tp, json_pack("{s:o, s:I, s:I}", "minute", jv_time(r->tp[i].minute_ms), "msgs",
						    (json_int_t)r->tp[i].msgs, "bytes", (json_int_t)r->tp[i].bytes));
	for (size_t c = 0; c < r->ncauses; c++)
		json_array_append_new(causes, cause_object(r, &r->causes[c]));
	for (size_t i = 0; i < r->naccts; i++)
		json_array_append_new(accts, acct_object(r, &r->accts[i]));
	return jv_write(json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "generator",
				  "imapfleet " PACKAGE_VERSION, "generated_at", jv_time(r->generated_ms),
				  "run", run_object(r), "passes", jv_passes(r->run.passes, r->run.npasses),
				  "throughput", tp, "failure_causes", causes, "accounts", accts),
			out, "accounts.json", err);
}

/* ops/report_json.c: accounts.json (shape in docs/reports.md). */
#include <string.h>

#include "config.h"

#include "ops/render.h"
#include "ops/report.h"
#include "ops/report_private.h"
/* ---- JSON --------------------------------------------------------------------------------------- */

static void json_acct_ids(struct rw *w, const struct report *r, const struct report_cause *c)
{
	rw_puts(w, "[");
	for (size_t k = 0; k < c->naccts; k++)
		rw_printf(w, "%s%lld", k ? ", " : "", (long long)r->accts[c->accts[k]].id);
	rw_puts(w, "]");
}

int report_write_json(const struct report *r, FILE *out, struct fleet_err *err)
{
	struct rw w;

	rw_init(&w, out);
	rw_puts(&w, "{\n  \"generator\": \"imapfleet " PACKAGE_VERSION "\",\n  \"generated_at\": ");
	json_time(&w, r->generated_ms);
	rw_printf(&w, ",\n  \"run\": {\n    \"id\": %lld,\n    \"name\": ", (long long)r->run_id);
	rw_json(&w, r->run_name);
	rw_puts(&w, ",\n    \"state\": ");
	rw_json(&w, r->run_state);
	rw_printf(&w, ",\n    \"progress\": \"%s\",\n    \"created_at\": ", progress_label(r));
	json_time(&w, r->run_created_ms);
	rw_printf(&w, ",\n    \"accounts\": {\"total\": %ld", r->total);
	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		rw_printf(&w, ", \"%s\": %ld", state_job_state_name((enum state_job_state)s),
			  r->counts.jobs[s]);
	rw_printf(&w,
		  "},\n    \"msgs_copied\": %lld,\n    \"bytes_copied\": %lld,\n    \"msgs_skipped\": %lld,\n"
		  "    \"bytes_skipped\": %lld,\n    \"msgs_failed\": %lld,\n    \"bytes_failed\": %lld,\n"
		  "    \"started_at\": ",
		  (long long)r->counts.msgs_copied, (long long)r->counts.bytes_copied,
		  (long long)r->counts.msgs_skipped, (long long)r->bytes_skipped,
		  (long long)r->counts.msgs_failed, (long long)r->bytes_failed);
	json_time(&w, r->first_start_ms);
	rw_puts(&w, ",\n    \"finished_at\": ");
	json_time(&w, r->last_finish_ms);
	rw_printf(&w,
		  ",\n    \"elapsed_seconds\": %.1f,\n    \"busy_seconds\": %.1f\n  },\n  \"throughput\": [",
		  (double)run_elapsed_ms(r) / 1000.0, (double)r->busy_ms / 1000.0);
	for (size_t i = 0; i < r->ntp; i++) {
		rw_puts(&w, i ? ",\n    {\"minute\": " : "\n    {\"minute\": ");
		json_time(&w, r->tp[i].minute_ms);
		rw_printf(&w, ", \"msgs\": %lld, \"bytes\": %lld}", (long long)r->tp[i].msgs,
			  (long long)r->tp[i].bytes);
	}
	rw_puts(&w, r->ntp ? "\n  ],\n  \"failure_causes\": [" : "],\n  \"failure_causes\": [");
	for (size_t c = 0; c < r->ncauses; c++) {
		const struct report_cause *k = &r->causes[c];

		rw_puts(&w, c ? ",\n    {" : "\n    {");
		if (k->account_level) {
			rw_puts(&w, "\"scope\": \"account\", \"class\": ");
			rw_json_opt(&w, k->cls);
			rw_puts(&w, ", \"code\": ");
			rw_json_opt(&w, k->code);
			rw_puts(&w, ", \"example\": ");
			rw_json(&w, k->text);
			rw_printf(&w, ", \"accounts\": %ld, \"account_ids\": ", k->count);
		} else {
			rw_printf(&w, "\"scope\": \"message\", \"state\": \"%s\", \"reason\": ",
				  msg_state_name(k->mstate));
			rw_json(&w, k->text);
			rw_printf(&w, ", \"messages\": %ld, \"bytes\": %lld, \"account_ids\": ", k->count,
				  (long long)k->bytes);
		}
		json_acct_ids(&w, r, k);
		rw_puts(&w, "}");
	}
	rw_puts(&w, r->ncauses ? "\n  ],\n  \"accounts\": [" : "],\n  \"accounts\": [");
	for (size_t i = 0; i < r->naccts; i++) {
		const struct report_acct *a = &r->accts[i];

		rw_printf(&w, "%s\n    {\n      \"id\": %lld,\n      \"source\": {\"host\": ", i ? "," : "",
			  (long long)a->id);
		rw_json(&w, a->host1);
		rw_printf(&w, ", \"port\": %u, \"user\": ", a->port1);
		rw_json(&w, a->user1);
		rw_puts(&w, "},\n      \"destination\": {\"host\": ");
		rw_json(&w, a->host2);
		rw_printf(&w, ", \"port\": %u, \"user\": ", a->port2);
		rw_json(&w, a->user2);
		rw_printf(
		    &w,
		    "},\n      \"state\": \"%s\",\n      \"attempts\": %d,\n      \"max_attempts\": %d,\n"
		    "      \"attempts_total\": %ld,\n      \"folders\": %lld,\n      \"msgs_copied\": %lld,\n"
		    "      \"bytes_copied\": %lld,\n      \"msgs_skipped\": %lld,\n      \"bytes_skipped\": "
		    "%lld,\n"
		    "      \"msgs_failed\": %lld,\n      \"bytes_failed\": %lld,\n      \"started_at\": ",
		    state_job_state_name(a->state), a->attempts, a->max_attempts, a->attempts_total,
		    (long long)a->folders, (long long)a->msgs_copied, (long long)a->bytes_copied,
		    (long long)a->msgs_skipped, (long long)a->bytes_skipped, (long long)a->msgs_failed,
		    (long long)a->bytes_failed);
		json_time(&w, a->started_ms);
		rw_puts(&w, ",\n      \"finished_at\": ");
		json_time(&w, a->finished_ms);
		rw_puts(&w, ",\n      \"updated_at\": ");
		json_time(&w, a->updated_ms);
		rw_puts(&w, ",\n      \"parked\": ");
		json_parked(&w, a->parked_until_ms, a->park_reason, a->eta_ms);
		rw_printf(&w, ",\n      \"duration_seconds\": %.1f,\n      \"error\": ",
			  (double)acct_duration_ms(a) / 1000.0);
		if (a->err_class[0] || a->err_text[0]) {
			rw_puts(&w, "{\"class\": ");
			rw_json_opt(&w, a->err_class);
			rw_puts(&w, ", \"code\": ");
			rw_json_opt(&w, a->err_code);
			rw_puts(&w, ", \"text\": ");
			rw_json(&w, a->err_text);
			rw_puts(&w, "}");
		} else {
			rw_puts(&w, "null");
		}
		rw_puts(&w, ",\n      \"left_out\": ");
		rw_json_opt(&w, a->left_out);
		rw_puts(&w, ",\n      \"failures\": [");
		for (size_t k = a->msg_first; k < a->msg_first + a->msg_count;) {
			size_t e = k;
			int64_t bytes = 0;

			while (e < a->msg_first + a->msg_count && r->msgs[e].state == r->msgs[k].state &&
			       !strcmp(r->msgs[e].group, r->msgs[k].group))
				bytes += (int64_t)r->msgs[e++].size;
			rw_printf(&w,
				  "%s\n        {\"state\": \"%s\", \"reason\": ", k > a->msg_first ? "," : "",
				  msg_state_name(r->msgs[k].state));
			rw_json(&w, r->msgs[k].group);
			rw_printf(&w, ", \"count\": %zu, \"bytes\": %lld, \"messages\": [", e - k,
				  (long long)bytes);
			for (size_t m = k; m < e; m++) {
				rw_puts(&w,
					m > k ? ",\n          {\"folder\": " : "\n          {\"folder\": ");
				rw_json(&w, r->msgs[m].folder);
				rw_printf(&w,
					  ", \"uidvalidity\": %u, \"uid\": %u, \"size\": %llu, \"error\": ",
					  r->msgs[m].uidvalidity, r->msgs[m].uid,
					  (unsigned long long)r->msgs[m].size);
				rw_json(&w, r->msgs[m].reason);
				rw_puts(&w, "}");
			}
			rw_puts(&w, "]}");
			k = e;
		}
		rw_puts(&w, a->msg_count ? "\n      ]\n    }" : "]\n    }");
	}
	rw_puts(&w, r->naccts ? "\n  ]\n}\n" : "]\n}\n");
	return rw_finish(&w, "accounts.json", err);
}

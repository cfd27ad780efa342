/* ops/report_csv.c: accounts.csv and failures.csv (columns in docs/reports.md). */
#include <stdio.h>
#include <string.h>

#include "ops/render.h"
#include "ops/report.h"
#include "ops/report_private.h"

/* ---- CSV ---------------------------------------------------------------------------------------- */

/* Cells, each escaped, separated by commas (none before the first or after the last). */
static void csv_cells(struct rw *w, const char *const *cells, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			rw_put(w, ",", 1);
		rw_csv(w, cells[i]);
	}
}

static void csv_error_cells(struct rw *w, const struct report_acct *a)
{
	csv_cells(w, (const char *const[]){a->j.last_error_class, a->j.last_error_code, a->j.last_error_text},
		  3);
}

int report_write_accounts_csv(const struct report *r, FILE *out, struct fleet_err *err)
{
	struct rw w;

	rw_init(&w, out);
	rw_puts(&w,
		"run_id,account_id,host1,port1,user1,host2,port2,user2,state,attempts,max_attempts,"
		"attempts_total,folders,msgs_copied,bytes_copied,msgs_skipped,bytes_skipped,msgs_failed,"
		"bytes_failed,started_at,finished_at,updated_at,duration_s,error_class,error_code,error_text,"
		"failure_reasons,parked_until,park_reason,eta,left_out,pass,copied,already_there,skipped,failed,"
		"last_synced_at,verdict,on_source,on_destination,verified_at,msgs_uncertain\r\n");
	for (size_t i = 0; i < r->naccts; i++) {
		const struct report_acct *a = &r->accts[i];
		char t1[TBUF], t2[TBUF], t3[TBUF];

		rw_printf(&w, "%lld,%lld,", (long long)r->run.id, (long long)a->j.job_id);
		rw_csv(&w, a->j.host1);
		rw_printf(&w, ",%u,", a->j.port1);
		rw_csv(&w, a->j.user1);
		rw_put(&w, ",", 1);
		rw_csv(&w, a->j.host2);
		rw_printf(&w, ",%u,", a->j.port2);
		rw_csv(&w, a->j.user2);
		rw_printf(&w, ",%s,%d,%d,%ld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%s,%s,%s,%.1f,",
			  state_job_state_name(a->j.state), a->j.attempts, a->j.max_attempts,
			  a->attempts_total, (long long)a->j.folders, (long long)a->j.msgs_copied,
			  (long long)a->j.bytes_copied, (long long)a->j.msgs_skipped,
			  (long long)a->bytes_skipped, (long long)a->j.msgs_failed,
			  (long long)a->bytes_failed, fmt_time(t1, a->j.started_at_ms, 1),
			  fmt_time(t2, a->j.finished_at_ms, 1), fmt_time(t3, a->j.updated_at_ms, 1),
			  (double)acct_duration_ms(a) / 1000.0);
		csv_error_cells(&w, a);
		rw_put(&w, ",", 1);
		{
			/* "skipped: reason (3); failed: reason (1)" */
			struct fleet_buf sum = FLEET_BUF_INIT(OPS_SUMMARY_MAX);

			for (size_t k = a->msg_first; k < a->msg_first + a->msg_count;) {
				size_t e = k;

				while (e < a->msg_first + a->msg_count &&
				       r->msgs[e].m.state == r->msgs[k].m.state &&
				       !strcmp(r->msgs[e].group, r->msgs[k].group))
					e++;
				fleet_buf_addf(&sum, "%s%s: %s (%zu)", sum.len ? "; " : "",
					       msg_state_name(r->msgs[k].m.state), r->msgs[k].group, e - k);
				k = e;
			}
			rw_csv(&w, fleet_buf_truncated(&sum) ? "(longer than it may be here: see failures.csv)"
							     : fleet_buf_cstr(&sum));
			fleet_buf_release(&sum);
		}
		rw_printf(&w, ",%s,", fmt_time(t1, a->j.parked_until_ms, 1));
		rw_csv(&w, a->j.parked_until_ms > 0 ? a->j.park_reason : "");
		rw_printf(&w, ",%s", a->j.parked_until_ms > 0 ? fmt_time(t2, a->j.eta_ms, 1) : "");
		rw_put(&w, ",", 1);
		rw_csv(&w, a->j.left_out);
		{
			char s1[TBUF], s2[TBUF], n1[TBUF] = "", n2[TBUF] = "";

			if (a->j.verdict[0]) {
				snprintf(n1, sizeof(n1), "%lld", (long long)a->j.on_source);
				snprintf(n2, sizeof(n2), "%lld", (long long)a->j.on_destination);
			}
			/* this pass in the shared vocabulary, then the latest verify (empty when never) */
			rw_printf(&w, ",%d,%lld,%lld,%lld,%lld,%s,%s,%s,%s,%s,%lld\r\n", a->j.pass_number,
				  (long long)a->j.pass_copied, (long long)a->j.pass_matched,
				  (long long)a->j.pass_skipped, (long long)a->j.pass_failed,
				  fmt_time(s1, a->j.last_synced_at_ms, 1), a->j.verdict, n1, n2,
				  fmt_time(s2, a->j.verified_at_ms, 1), (long long)a->j.msgs_uncertain);
		}
	}
	return rw_finish(&w, "accounts.csv", err);
}

int report_write_passes_csv(const struct report *r, FILE *out, struct fleet_err *err)
{
	struct rw w;

	rw_init(&w, out);
	rw_puts(&w, "run_id,pass,kind,started_at,ended_at,accounts,done,partial,failed_accounts,copied,already_there,"
		    "skipped,failed,bytes_copied,uncertain\r\n");
	for (size_t i = 0; i < r->run.npasses; i++) {
		const struct state_pass_report *p = &r->run.passes[i];
		char t1[TBUF], t2[TBUF];

		rw_printf(&w, "%lld,%d,%s,%s,%s,%ld,%ld,%ld,%ld,%lld,%lld,%lld,%lld,%lld,%lld\r\n",
			  (long long)r->run.id, p->number, p->kind, fmt_time(t1, p->started_at_ms, 1),
			  fmt_time(t2, p->ended_at_ms, 1), p->accounts, p->done, p->partial, p->failed,
			  (long long)p->copied, (long long)p->matched, (long long)p->skipped,
			  (long long)p->msgs_failed, (long long)p->bytes_copied, (long long)p->uncertain);
	}
	return rw_finish(&w, "passes.csv", err);
}

/* A failures.csv row's first cells: run_id,account_id,user1,host1,user2,host2 */
static void failure_row_start(struct rw *w, const struct report *r, const struct report_acct *a)
{
	rw_printf(w, "%lld,%lld,", (long long)r->run.id, (long long)a->j.job_id);
	csv_cells(w, (const char *const[]){a->j.user1, a->j.host1, a->j.user2, a->j.host2}, 4);
}

int report_write_failures_csv(const struct report *r, FILE *out, struct fleet_err *err)
{
	struct rw w;

	rw_init(&w, out);
	rw_puts(&w,
		"run_id,account_id,user1,host1,user2,host2,scope,state,error_class,error_code,reason,folder,"
		"uidvalidity,uid,size\r\n");
	for (size_t i = 0; i < r->naccts; i++) {
		const struct report_acct *a = &r->accts[i];

		if (!a->j.last_error_class[0] && !a->j.last_error_text[0] && a->msg_count == 0)
			continue;
		if (a->j.last_error_class[0] || a->j.last_error_text[0]) {
			failure_row_start(&w, r, a);
			rw_printf(&w, ",account,%s,", state_job_state_name(a->j.state));
			csv_error_cells(&w, a);
			rw_puts(&w, ",,,,\r\n");
		}
		for (size_t k = a->msg_first; k < a->msg_first + a->msg_count; k++) {
			const struct report_msg *m = &r->msgs[k];

			failure_row_start(&w, r, a);
			rw_printf(&w, ",message,%s,,,", msg_state_name(m->m.state));
			rw_csv(&w, m->m.error);
			rw_put(&w, ",", 1);
			rw_csv(&w, m->m.src_folder);
			rw_printf(&w, ",%u,%u,%llu\r\n", m->m.src_uidvalidity, m->m.src_uid,
				  (unsigned long long)m->m.size);
		}
	}
	return rw_finish(&w, "failures.csv", err);
}

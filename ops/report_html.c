/* ops/report_html.c: report.html, one self-contained page. Its style sheet and script are
 * ops/report.css and ops/report.js, embedded at build time (scripts/embed.sh). */
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "common/alloc.h"
#include "io/imap_parser.h"
#include "io/stream.h"
#include "ops/render.h"
#include "ops/report.h"
#include "ops/report_private.h"

/* ---- HTML --------------------------------------------------------------------------------------- */

static const char *const state_css[STATE_JOB_NSTATES] = {"s-queued", "s-running", "s-done", "s-failed",
							 "s-cancelled", "s-partial"};
/* Display order: what is finished first, then what is still to do. */
static const enum state_job_state state_order[STATE_JOB_NSTATES] = {
    STATE_JOB_DONE, STATE_JOB_PARTIAL, STATE_JOB_FAILED, STATE_JOB_RUNNING, STATE_JOB_QUEUED, STATE_JOB_CANCELLED};

static double pct(long n, long total)
{
	return total > 0 ? 100.0 * (double)n / (double)total : 0.0;
}

static void html_pill(struct rw *w, enum state_job_state s)
{
	rw_printf(w, "<span class=\"pill %s\">%s</span>", state_css[s], state_job_state_name(s));
}

/* "user@host", escaped. */
static void html_user_at(struct rw *w, const char *user, const char *host)
{
	rw_html(w, user);
	rw_puts(w, "@");
	rw_html(w, host);
}

/* Source on the first line, destination under it. */
static void html_account(struct rw *w, const struct report_acct *a)
{
	rw_puts(w, "<div class=\"src\">");
	html_user_at(w, a->j.user1, a->j.host1);
	rw_puts(w, "</div><div class=\"dst\"><span class=\"arrow\">&rarr;</span>");
	html_user_at(w, a->j.user2, a->j.host2);
	rw_puts(w, "</div>");
}

/* The number a card's value holds for the page's script (data-v). */
static const char *num(char buf[TBUF], long long n)
{
	snprintf(buf, TBUF, "%lld", n);
	return buf;
}

/* "<span id="ID" data-v="N">shown</span>" into buf: a number the page's script updates. */
static const char *num_span(char buf[REPORT_HTML_CARD_TEXT_MAX], const char *id, long long n,
			    const char *shown)
{
	snprintf(buf, REPORT_HTML_CARD_TEXT_MAX, "<span id=\"%s\" data-v=\"%lld\">%s</span>", id, n, shown);
	return buf;
}

/* One card: its class ("" or ok, bad, run), its key, its value and the line under it. value and sub
 * are HTML (fixed text, numbers, spans); id names the value for the page's script, which reads its
 * number from data-v (no id: neither attribute). */
static void html_card(struct rw *w, const char *cls, const char *key, const char *id, const char *data,
		      const char *value, const char *sub)
{
	rw_printf(w, "<div class=\"card%s%s\"><div class=\"k\">%s</div><div class=\"v\"", cls[0] ? " " : "",
		  cls, key);
	if (id)
		rw_printf(w, " id=\"%s\" data-v=\"%s\"", id, data);
	rw_printf(w, ">%s</div><div class=\"sub\">%s</div></div>\n", value, sub);
}

static void html_cards(struct rw *w, const struct report *r)
{
	const struct state_run_counts *c = &r->run.counts;
	const long *j = c->jobs;
	char b1[TBUF], b2[TBUF], n[TBUF], s1[REPORT_HTML_CARD_TEXT_MAX], s2[REPORT_HTML_CARD_TEXT_MAX],
	    v[2 * REPORT_HTML_CARD_TEXT_MAX];

	rw_puts(w, "<section class=\"cards\">\n");
	html_card(w, "", "Accounts", "n-total", num(n, r->total), fmt_count(b1, r->total), "in this run");
	snprintf(v, sizeof(v), "%.0f%% of accounts", pct(j[STATE_JOB_DONE], r->total));
	html_card(w, "ok", "Done", "n-done", num(n, j[STATE_JOB_DONE]), fmt_count(b1, j[STATE_JOB_DONE]), v);
	html_card(w, "bad", "Failed", "n-failed", num(n, j[STATE_JOB_FAILED]),
		  fmt_count(b1, j[STATE_JOB_FAILED]), j[STATE_JOB_FAILED] ? "see failures below" : "none");
	snprintf(v, sizeof(v), "%s / %s",
		 num_span(s1, "n-running", j[STATE_JOB_RUNNING], fmt_count(b1, j[STATE_JOB_RUNNING])),
		 num_span(s2, "n-queued", j[STATE_JOB_QUEUED], fmt_count(b2, j[STATE_JOB_QUEUED])));
	snprintf(n, sizeof(n), "%ld cancelled", j[STATE_JOB_CANCELLED]);
	html_card(w, "run", "Running / queued", NULL, NULL, v, n);
	snprintf(
	    v, sizeof(v),
	    "%s; <span id=\"msgs-uncertain\" data-v=\"%lld\" title=\"copied although the destination may "
	    "hold them (identity not certain)\">%s not certain</span>",
	    num_span(s1, "bytes-copied", c->bytes_copied, fmt_bytes(b1, c->bytes_copied)),
	    (long long)c->msgs_uncertain, fmt_count(b2, c->msgs_uncertain));
	html_card(w, "", "Messages copied", "msgs-copied", num(n, c->msgs_copied),
		  fmt_count(b1, c->msgs_copied), v);
	snprintf(v, sizeof(v), "%s / %s",
		 num_span(s1, "msgs-skipped", c->msgs_skipped, fmt_count(b1, c->msgs_skipped)),
		 num_span(s2, "msgs-failed", c->msgs_failed, fmt_count(b2, c->msgs_failed)));
	snprintf(s1, sizeof(s1), "messages, %s", fmt_bytes(b1, r->bytes_skipped + r->bytes_failed));
	html_card(w, "", "Skipped / failed", NULL, NULL, v, s1);
	html_card(w, "", "Elapsed", NULL, NULL, fmt_duration(b1, run_elapsed_ms(r)),
		  r->last_finish_ms ? "start to finish"
				    : (r->first_start_ms ? "still going" : "not started"));
	rw_puts(w, "</section>\n");
}

/* While the run goes on: what is left to copy (the whole run's, every host's) and when it should be
 * done, the live display's computation over the state store (struct report_remaining). */
static void html_remaining(struct rw *w, const struct report *r)
{
	const struct report_remaining *m = &r->remaining;
	const struct progress_bytes *b = &m->b;
	char b1[TBUF], b2[TBUF], n[TBUF], v[REPORT_HTML_CARD_TEXT_MAX], sub[REPORT_HTML_CARD_TEXT_MAX];
	const char *approx = b->estimated ? "~" : "";
	int64_t left = b->known && b->total > b->copied ? (int64_t)(b->total - b->copied) : 0;
	int64_t eta_ms = r->generated_ms + (int64_t)(m->eta_s * 1000.0);

	if (!report_run_goes_on(r))
		return;
	rw_puts(w, "<section class=\"panel\" id=\"remaining\"><h2>Remaining <span class=\"muted\">the whole run, "
		   "every host, while it goes on</span></h2>\n<div class=\"cards rem\">");
	if (b->known) {
		snprintf(v, sizeof(v), "%s%s", approx, fmt_bytes(b1, left));
		snprintf(sub, sizeof(sub), "of %s%s, %.0f%% copied", approx, fmt_bytes(b2, (int64_t)b->total),
			 b->total ? 100.0 * (double)b->copied / (double)b->total : 100.0);
		html_card(w, "run", "Left to copy", "bytes-left", num(n, left), v, sub);
	} else {
		html_card(w, "run", "Left to copy", "bytes-left", "-1", "unknown",
			  "no account has started yet");
	}
	if (m->eta_s >= 0) {
		snprintf(sub, sizeof(sub), "in %s", fmt_duration(b2, (int64_t)(m->eta_s * 1000.0)));
		html_card(w, "", "ETA (UTC)", "eta", num(n, eta_ms), fmt_clock(b1, eta_ms, m->eta_s >= 43200),
			  sub);
	} else {
		html_card(w, "", "ETA (UTC)", "eta", "-1", "--:--",
			  m->busy == 0 ? "only parked accounts are left" : "not measured yet");
	}
	if (m->rate > 0) {
		snprintf(n, sizeof(n), "%.0f", m->rate);
		snprintf(v, sizeof(v), "%s/s", fmt_bytes(b1, (int64_t)m->rate));
		snprintf(sub, sizeof(sub), "over the last %s", fmt_duration(b2, m->rate_window_ms));
		html_card(w, "", "Rate", "rate", n, v, sub);
	} else {
		html_card(w, "", "Rate", "rate", "0", "&ndash;", "nothing copied in the last minutes");
	}
	snprintf(v, sizeof(v), "%ld", r->run.counts.parked);
	if (r->run.counts.parked)
		snprintf(sub, sizeof(sub), "apart from the ETA; the last resumes %s UTC, done by %s UTC",
			 fmt_time(b1, r->run.counts.parked_until_ms, 0),
			 fmt_time(b2, r->run.counts.parked_eta_ms, 0));
	else
		snprintf(sub, sizeof(sub), "none waits for a budget or a throttle");
	html_card(w, "", "Parked", "n-parked", v, v, sub);
	rw_puts(w, "</div></section>\n");
}

/* The accounts later passes leave out, by why (state_job_report.left_out): removed from the accounts
 * file, cancelled, or a refused credential that has not changed. */
static void html_left_out(struct rw *w, const struct report *r)
{
	static const char *const why[] = {"removed", "cancelled", "credential"};
	long n = 0;

	for (size_t i = 0; i < r->naccts; i++)
		n += r->accts[i].j.left_out[0] != '\0';
	rw_printf(w,
		  "<section class=\"panel\" id=\"left-out\"><h2>Left out of later passes <span class=\"muted\" "
		  "id=\"n-left-out\" data-v=\"%ld\">%ld account%s</span></h2>\n",
		  n, n, n == 1 ? "" : "s");
	if (n == 0) {
		rw_puts(w, "<p class=\"empty\">Every account of the run is in the accounts file and taken by each "
			   "pass.</p></section>\n");
		return;
	}
	rw_puts(w, "<table class=\"causes\"><thead><tr><th>Why</th><th class=\"num\">Accounts</th><th>Which"
		   "</th></tr></thead><tbody>\n");
	for (size_t k = 0; k < sizeof(why) / sizeof(why[0]); k++) {
		long c = 0, shown = 0;

		for (size_t i = 0; i < r->naccts; i++)
			c += strcmp(r->accts[i].j.left_out, why[k]) == 0;
		if (!c)
			continue;
		rw_printf(w, "<tr class=\"left-out\" data-why=\"%s\"><td>", why[k]);
		rw_html(w, left_out_text(why[k]));
		rw_printf(w, "</td><td class=\"num\">%ld</td><td>", c);
		for (size_t i = 0; i < r->naccts && shown < REPORT_HTML_LEFT_OUT_ACCOUNTS; i++) {
			const struct report_acct *a = &r->accts[i];

			if (strcmp(a->j.left_out, why[k]) != 0)
				continue;
			rw_printf(w, "<span class=\"chip\" title=\"account %lld\">", (long long)a->j.job_id);
			html_user_at(w, a->j.user1, a->j.host1);
			rw_puts(w, "</span>");
			shown++;
		}
		if (c > shown)
			rw_printf(w, "<span class=\"muted\">and %ld more</span>", c - shown);
		rw_puts(w, "</td></tr>\n");
	}
	rw_puts(w, "</tbody></table></section>\n");
}

static void html_progress(struct rw *w, const struct report *r)
{
	rw_printf(
	    w,
	    "<section class=\"panel\"><h2>Overall progress <span class=\"muted\">%.0f%% of %ld accounts "
	    "finished</span></h2>\n<div class=\"bar\" role=\"img\" aria-label=\"accounts by state\">",
	    pct(r->run.counts.jobs[STATE_JOB_DONE] + r->run.counts.jobs[STATE_JOB_FAILED] +
		    r->run.counts.jobs[STATE_JOB_CANCELLED] + r->run.counts.jobs[STATE_JOB_PARTIAL],
		r->total),
	    r->total);
	for (int k = 0; k < STATE_JOB_NSTATES; k++) {
		enum state_job_state s = state_order[k];

		if (r->run.counts.jobs[s])
			rw_printf(w, "<span class=\"%s\" style=\"width:%.3f%%\" title=\"%s: %ld\"></span>",
				  state_css[s], pct(r->run.counts.jobs[s], r->total), state_job_state_name(s),
				  r->run.counts.jobs[s]);
	}
	rw_puts(w, "</div>\n<ul class=\"legend\">");
	for (int k = 0; k < STATE_JOB_NSTATES; k++) {
		enum state_job_state s = state_order[k];

		rw_printf(
		    w, "<li><i class=\"dot %s\"></i>%s <b>%ld</b> <span class=\"muted\">%.0f%%</span></li>",
		    state_css[s], state_job_state_name(s), r->run.counts.jobs[s],
		    pct(r->run.counts.jobs[s], r->total));
	}
	rw_puts(w, "</ul></section>\n");
}

/* A "nice" axis step (1, 2, 2.5, 5 times a power of ten) so that 4 steps cover max. */
static int64_t nice_step(int64_t max)
{
	int64_t mag = 1;

	for (;;) {
		if (mag * 4 >= max)
			return mag;
		if (mag * 2 * 4 >= max)
			return mag * 2;
		if (mag >= 10 && mag / 2 * 5 * 4 >= max)
			return mag / 2 * 5;
		if (mag * 5 * 4 >= max)
			return mag * 5;
		mag *= 10;
	}
}

static void html_throughput(struct rw *w, const struct report *r)
{
	int64_t first, last, span, bucket, nb, max = 0, peak = 0, msgs = 0, bytes = 0;
	int64_t *b = NULL, *bb = NULL;
	double pw = REPORT_CHART_W - REPORT_CHART_L - REPORT_CHART_R,
	       ph = REPORT_CHART_H - REPORT_CHART_T - REPORT_CHART_B, slot, x0;
	int64_t step;
	char t1[TBUF], t2[TBUF], t3[TBUF], t4[TBUF];

	rw_puts(w, "<section class=\"panel\"><h2>Throughput <span class=\"muted\">messages copied per ");
	if (r->ntp == 0) {
		rw_puts(w, "minute</span></h2><p class=\"empty\">No message copied yet.</p></section>\n");
		return;
	}
	first = r->tp[0].minute_ms;
	last = r->tp[r->ntp - 1].minute_ms;
	span = (last - first) / 60000 + 1;
	bucket = (span + REPORT_CHART_BARS - 1) / REPORT_CHART_BARS;
	nb = (span + bucket - 1) / bucket;
	b = xcalloc((size_t)nb, sizeof(*b));
	bb = xcalloc((size_t)nb, sizeof(*bb));
	for (size_t i = 0; i < r->ntp; i++) {
		int64_t k = (r->tp[i].minute_ms - first) / 60000 / bucket;

		if (k < 0 || k >= nb)
			continue;
		b[k] += r->tp[i].msgs;
		bb[k] += r->tp[i].bytes;
		msgs += r->tp[i].msgs;
		bytes += r->tp[i].bytes;
	}
	for (int64_t k = 0; k < nb; k++)
		if (b[k] > max)
			max = b[k];
	peak = max;
	step = nice_step(max > 0 ? max : 1);
	if (bucket == 1)
		rw_puts(w, "minute");
	else
		rw_printf(w, "%lld minutes", (long long)bucket);
	rw_printf(w,
		  " (UTC)</span></h2>\n<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
		  "aria-label=\"messages copied over time\">\n",
		  REPORT_CHART_W, REPORT_CHART_H);
	for (int g = 0; g <= 4; g++) {
		double y = REPORT_CHART_T + ph - ph * g / 4.0;

		rw_printf(w,
			  "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
			  "<text class=\"axis\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%lld</text>\n",
			  REPORT_CHART_L, REPORT_CHART_W - REPORT_CHART_R, y, y, REPORT_CHART_L - 6, y + 4,
			  (long long)(step * g));
	}
	slot = pw / (double)(nb > REPORT_CHART_MINBAR ? nb : REPORT_CHART_MINBAR);
	x0 = REPORT_CHART_L + (nb < REPORT_CHART_MINBAR ? (pw - slot * (double)nb) / 2.0 : 0.0);
	for (int64_t k = 0; k < nb; k++) {
		double h = ph * (double)b[k] / (double)(step * 4), bw = slot * 0.78;
		double x = x0 + slot * (double)k + (slot - bw) / 2.0;
		char t[TBUF], s[TBUF];

		if (b[k] == 0)
			continue;
		if (h < 1.5)
			h = 1.5;
		rw_printf(w,
			  "<rect class=\"b\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"2\">"
			  "<title>%s UTC: %lld messages, %s</title></rect>\n",
			  x, REPORT_CHART_T + ph - h, bw, h, fmt_clock(t, first + k * bucket * 60000, 1),
			  (long long)b[k], fmt_bytes(s, bb[k]));
	}
	{
		/* Up to 6 time labels, evenly spread over the buckets. */
		int64_t every = (nb + 5) / 6;
		int with_date = (last - first) >= 86400000LL;

		if (every < 1)
			every = 1;
		for (int64_t k = 0; k < nb; k += every) {
			char t[TBUF];

			rw_printf(
			    w, "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
			    x0 + slot * (double)k + slot / 2.0, REPORT_CHART_H - 10,
			    fmt_clock(t, first + k * bucket * 60000, with_date));
		}
	}
	rw_printf(w,
		  "</svg>\n<p class=\"muted\" style=\"margin:6px 0 0\">peak <b>%s</b> messages per %s; "
		  "<b>%s</b> messages (%s) over %lld minute%s, from %s to %s UTC</p></section>\n",
		  fmt_count(t3, peak), bucket == 1 ? "minute" : "bucket", fmt_count(t4, msgs),
		  fmt_bytes(t1, bytes), (long long)span, span == 1 ? "" : "s", fmt_clock(t2, first, 0),
		  fmt_clock((char[TBUF]){0}, last + 60000, 0));
	xfree(&b);
	xfree(&bb);
}

static void html_states(struct rw *w, const struct report *r)
{
	double off = 25.0; /* start at 12 o'clock */

	rw_puts(
	    w,
	    "<section class=\"panel\"><h2>Accounts by state</h2>\n<div class=\"donut\">"
	    "<svg viewBox=\"0 0 42 42\" role=\"img\" aria-label=\"accounts by state\">"
	    "<circle cx=\"21\" cy=\"21\" r=\"15.915\" fill=\"none\" stroke=\"#edf0f4\" stroke-width=\"6\"/>");
	for (int k = 0; k < STATE_JOB_NSTATES; k++) {
		enum state_job_state s = state_order[k];
		double p = pct(r->run.counts.jobs[s], r->total);
		static const char *const color[STATE_JOB_NSTATES] = {"#a3abb9", "#2f6fde", "#1f9d55",
								     "#d64545", "#7a5bc4", "#e08a1e"};

		if (p <= 0)
			continue;
		rw_printf(
		    w,
		    "<circle cx=\"21\" cy=\"21\" r=\"15.915\" fill=\"none\" stroke=\"%s\" stroke-width=\"6\" "
		    "stroke-dasharray=\"%.3f %.3f\" stroke-dashoffset=\"%.3f\"><title>%s: "
		    "%ld</title></circle>",
		    color[s], p, 100.0 - p, off, state_job_state_name(s), r->run.counts.jobs[s]);
		off -= p;
	}
	rw_printf(
	    w,
	    "<text x=\"21\" y=\"21\" text-anchor=\"middle\" font-size=\"8\" font-weight=\"650\" "
	    "fill=\"#1d2433\">%ld</text><text x=\"21\" y=\"27\" text-anchor=\"middle\" font-size=\"3.4\" "
	    "fill=\"#667085\">ACCOUNTS</text></svg>\n<ul>",
	    r->total);
	for (int k = 0; k < STATE_JOB_NSTATES; k++) {
		enum state_job_state s = state_order[k];

		rw_printf(w, "<li><i class=\"dot %s\"></i>%s<b id=\"state-%s\">%ld</b></li>", state_css[s],
			  state_job_state_name(s), state_job_state_name(s), r->run.counts.jobs[s]);
	}
	rw_puts(w, "</ul></div></section>\n");
}

/* The pass history (first pass, then each delta pass) and the verify verdicts. */
static void html_passes(struct rw *w, const struct report *r)
{
	long verdicts[3] = {0, 0, 0}, unverified = 0;
	int64_t last_synced = 0;
	char t1[TBUF], t2[TBUF];

	for (size_t i = 0; i < r->naccts; i++) {
		const char *v = r->accts[i].j.verdict;

		if (!strcmp(v, "PASS"))
			verdicts[0]++;
		else if (!strcmp(v, "FAIL"))
			verdicts[1]++;
		else if (!strcmp(v, "ERROR"))
			verdicts[2]++;
		else
			unverified++;
		if (r->accts[i].j.last_synced_at_ms > last_synced)
			last_synced = r->accts[i].j.last_synced_at_ms;
	}
	rw_printf(w,
		  "<section class=\"panel\" id=\"passes\"><h2>Passes <span class=\"muted\">%zu pass%s; last "
		  "synced %s "
		  "UTC; verify: %ld PASS, %ld FAIL, %ld ERROR, %ld not verified</span></h2>\n",
		  r->run.npasses, r->run.npasses == 1 ? "" : "es",
		  last_synced ? fmt_time(t1, last_synced, 0) : "never", verdicts[0], verdicts[1], verdicts[2],
		  unverified);
	if (r->run.npasses == 0) {
		rw_puts(w, "<p class=\"empty\">No pass recorded.</p></section>\n");
		return;
	}
	rw_puts(w, "<div class=\"scroll\"><table class=\"passes\"><thead><tr><th class=\"num\">Pass</th><th>Kind</th>"
		   "<th>Started (UTC)</th><th>Ended (UTC)</th><th class=\"num\">Accounts</th>"
		   "<th class=\"num\">Copied</th><th class=\"num\">Already there</th><th class=\"num\">Skipped</th>"
		   "<th class=\"num\">Failed</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < r->run.npasses; i++) {
		const struct state_pass_report *p = &r->run.passes[i];

		rw_printf(w,
			  "<tr><td class=\"num\">%d</td><td>%s</td><td>%s</td><td>%s</td><td class=\"num\">%ld</td>"
			  "<td class=\"num\">%lld</td><td class=\"num\">%lld</td><td class=\"num\">%lld</td>"
			  "<td class=\"num\">%lld</td></tr>\n",
			  p->number, p->kind, fmt_time(t1, p->started_at_ms, 0),
			  p->ended_at_ms ? fmt_time(t2, p->ended_at_ms, 0) : "goes on", p->accounts, (long long)p->copied,
			  (long long)p->matched, (long long)p->skipped, (long long)p->msgs_failed);
	}
	rw_puts(w, "</tbody></table></div></section>\n");
}

/* What to do about an account-level cause (docs/operations.md has the same table; each failed
 * account's log line says it with its accounts-file line and secret source). */
static const char *cause_next_step(const struct report_cause *k)
{
	if (strcmp(k->code, IMAP_CODE_OVERQUOTA) == 0)
		return "raise the destination's quota (by the shortfall the message gives), then imapfleet retry "
		       "--account ID for each account below and run again";
	if (strcmp(k->code, IO_ERR_TLS_VERIFY) == 0)
		return "add cafile1/cafile2 to the rows (or --cafile1/--cafile2 to the run), then imapfleet retry "
		       "--failed and run again";
	if (strcmp(k->cls, "auth") == 0)
		return "check each account's password or token (its log line names the accounts-file line and the "
		       "file it is read from), then imapfleet retry --account ID and run again";
	if (strcmp(k->cls, "transient") == 0 || strcmp(k->cls, "throttled") == 0)
		return "when the server is back, imapfleet retry --failed and run again (lower --max-conns-per-host "
		       "if it throttles)";
	if (strcmp(k->cls, "bug") == 0)
		return "report it with the account's log (.imapfleet/logs/USER1@HOST1-ID.log)";
	return "fix the cause above, then imapfleet retry --account ID and run again";
}

static void html_causes(struct rw *w, const struct report *r)
{
	rw_printf(w,
		  "<section class=\"panel\" id=\"failures\"><h2>Failures and skipped messages by cause <span "
		  "class=\"muted\">%zu cause%s"
		  "</span></h2>\n",
		  r->ncauses, r->ncauses == 1 ? "" : "s");
	if (r->ncauses == 0) {
		rw_puts(w, "<p class=\"empty\">No account failed and no message was skipped or "
			   "failed.</p></section>\n");
		return;
	}
	rw_puts(w, "<div class=\"scroll\"><table class=\"causes\"><thead><tr><th>Cause</th><th>Scope</th><th "
		   "class=\"num\">Count</th>"
		   "<th>Accounts</th></tr></thead><tbody>\n");
	for (size_t c = 0; c < r->ncauses; c++) {
		const struct report_cause *k = &r->causes[c];
		char b1[TBUF];

		rw_printf(w, "<tr class=\"cause\" data-scope=\"%s\"><td>",
			  k->account_level ? "account" : "message");
		if (k->account_level) {
			rw_puts(w, "<span class=\"pill s-failed\">");
			rw_html(w, k->cls[0] ? k->cls : "error");
			rw_puts(w, "</span> <b>");
			rw_html(w, k->code[0] ? k->code : "");
			rw_puts(w, "</b><div class=\"cause-text\">");
			rw_html(w, k->text);
			rw_puts(w, "</div><div class=\"next-step\"><b>Next step:</b> ");
			rw_html(w, cause_next_step(k));
			rw_puts(w, "</div>");
		} else {
			rw_printf(w, "<span class=\"pill %s\">%s</span> ",
				  k->mstate == STATE_MSG_SKIPPED ? "s-queued" : "s-failed",
				  msg_state_name(k->mstate));
			rw_html(w, k->text);
		}
		if (k->account_level)
			rw_printf(w, "</td><td>account</td><td class=\"num\">%ld account%s</td><td>",
				  k->count, k->count == 1 ? "" : "s");
		else
			rw_printf(w,
				  "</td><td>message</td><td class=\"num\">%ld message%s<div "
				  "class=\"muted\">%s</div></td><td>",
				  k->count, k->count == 1 ? "" : "s", fmt_bytes(b1, k->bytes));
		for (size_t i = 0; i < k->naccts && i < REPORT_HTML_CAUSE_ACCOUNTS; i++) {
			const struct report_acct *a = &r->accts[k->accts[i]];

			rw_printf(w, "<span class=\"chip\" title=\"account %lld\">", (long long)a->j.job_id);
			html_user_at(w, a->j.user1, a->j.host1);
			rw_puts(w, "</span>");
		}
		if (k->naccts > REPORT_HTML_CAUSE_ACCOUNTS)
			rw_printf(w, "<span class=\"muted\">and %zu more</span>",
				  k->naccts - REPORT_HTML_CAUSE_ACCOUNTS);
		if (!k->account_level) {
			long shown = 0;

			rw_printf(
			    w,
			    "<details><summary>%s</summary><table><thead><tr><th>Account</th><th>Folder</th>"
			    "<th class=\"num\">UID</th><th class=\"num\">Size</th></tr></thead><tbody>",
			    k->count > REPORT_HTML_CAUSE_MESSAGES ? "first messages" : "the messages");
			for (size_t i = 0; i < k->nmsgs && shown < REPORT_HTML_CAUSE_MESSAGES; i++) {
				const struct report_msg *m = &r->msgs[k->msgs[i]];
				const struct report_acct *a = find_acct(r, m->m.job_id);

				if (!a)
					continue;
				rw_puts(w, "<tr><td>");
				html_user_at(w, a->j.user1, a->j.host1);
				rw_puts(w, "</td><td>");
				rw_html(w, m->m.src_folder);
				rw_printf(w, "</td><td class=\"num\">%u</td><td class=\"num\">%s</td></tr>",
					  m->m.src_uid, fmt_bytes(b1, (int64_t)m->m.size));
				shown++;
			}
			rw_puts(w, "</tbody></table></details>");
		}
		rw_puts(w, "</td></tr>\n");
	}
	rw_puts(w, "</tbody></table></div></section>\n");
}

/* ---- the accounts table ------------------------------------------------------------------------ */

/* The page holds at most REPORT_HTML_ACCOUNTS_MAX accounts; beyond that, the accounts that need
 * attention come first. The server renders the first REPORT_HTML_PAGE_ROWS rows (a reader without
 * scripts sees them); the page's script renders every page from the data, sorts and filters all of it. */

/* What needs attention first: failed, partial, running, queued after an error, cancelled, queued,
 * done. */
static int acct_rank(const struct report_acct *a)
{
	switch (a->j.state) {
	case STATE_JOB_FAILED: return 0;
	case STATE_JOB_PARTIAL: return 1;
	case STATE_JOB_RUNNING: return 2;
	case STATE_JOB_QUEUED: return a->j.last_error_class[0] || a->j.last_error_text[0] ? 3 : 5;
	case STATE_JOB_CANCELLED: return 4;
	default: return 6;
	}
}

static int cmp_rank(const void *x, const void *y)
{
	const struct report_acct *a = *(const struct report_acct *const *)x,
				 *b = *(const struct report_acct *const *)y;
	int ra = acct_rank(a), rb = acct_rank(b);

	if (ra != rb)
		return ra < rb ? -1 : 1;
	return a->j.job_id < b->j.job_id ? -1 : a->j.job_id > b->j.job_id;
}

static int cmp_id(const void *x, const void *y)
{
	const struct report_acct *a = *(const struct report_acct *const *)x,
				 *b = *(const struct report_acct *const *)y;

	return a->j.job_id < b->j.job_id ? -1 : a->j.job_id > b->j.job_id;
}

/* The accounts the page holds, in id order (*n of them; xfree the array). */
static const struct report_acct **html_pick_accounts(const struct report *r, size_t *n)
{
	const struct report_acct **v = xcalloc(r->naccts ? r->naccts : 1, sizeof(*v));

	for (size_t i = 0; i < r->naccts; i++)
		v[i] = &r->accts[i];
	*n = r->naccts;
	if (*n > REPORT_HTML_ACCOUNTS_MAX) {
		qsort(v, *n, sizeof(*v), cmp_rank);
		*n = REPORT_HTML_ACCOUNTS_MAX;
		qsort(v, *n, sizeof(*v), cmp_id);
	}
	return v;
}

/* The bold head of the last-error cell: "parked (daily) until ..., ETA ..." for a parked account,
 * else the error's class. */
static const char *err_head(char pk[PBUF], const struct report_acct *a)
{
	return a->j.parked_until_ms > 0 ? fmt_parked(pk, a->j.parked_until_ms, a->j.park_reason, a->j.eta_ms)
					: a->j.last_error_class;
}

static const char *verdict_css(const char *v)
{
	return !strcmp(v, "PASS") ? "s-done" : !strcmp(v, "FAIL") ? "s-failed" : "s-partial";
}

/* Completeness: the messages on the source and the destination at the latest verify, its verdict,
 * and when the account last finished a pass (last synced). */
static void html_completeness(struct rw *w, const struct report_acct *a, int64_t now_ms)
{
	char b1[TBUF], b2[TBUF];

	if (a->j.verdict[0] && a->j.on_source >= 0 && a->j.on_destination >= 0)
		rw_printf(w, "<td class=\"num c-complete\" data-v=\"%lld\">%lld / %lld</td>",
			  (long long)(a->j.on_source - a->j.on_destination), (long long)a->j.on_source,
			  (long long)a->j.on_destination);
	else
		rw_puts(w, "<td class=\"num c-complete\" data-v=\"\">&ndash;</td>");
	if (a->j.verdict[0])
		rw_printf(w,
			  "<td class=\"c-verify\" data-v=\"%s\" title=\"verified %s UTC\"><span class=\"pill "
			  "%s\">%s</span></td>",
			  a->j.verdict, fmt_time(b1, a->j.verified_at_ms, 0), verdict_css(a->j.verdict),
			  a->j.verdict);
	else
		rw_puts(w, "<td class=\"c-verify\" data-v=\"\"><span class=\"muted\">not verified</span></td>");
	rw_printf(w, "<td class=\"num c-synced\" data-v=\"%lld\">%s</td>", (long long)a->j.last_synced_at_ms,
		  a->j.last_synced_at_ms ? fmt_updated(b2, a->j.last_synced_at_ms, now_ms) : "never");
}

static void html_account_row(struct rw *w, const struct report_acct *a, int64_t now_ms)
{
	char b1[TBUF], b2[TBUF], b3[TBUF], b4[TBUF];

	rw_printf(w,
		  "<tr data-job=\"%lld\" data-state=\"%s\"><td class=\"num\" data-v=\"%lld\">%lld</td>"
		  "<td class=\"acct\">",
		  (long long)a->j.job_id, state_job_state_name(a->j.state), (long long)a->j.job_id,
		  (long long)a->j.job_id);
	html_account(w, a);
	rw_printf(w, "</td><td data-v=\"%d\">", (int)a->j.state);
	html_pill(w, a->j.state);
	rw_printf(w,
		  "</td><td class=\"num\" data-v=\"%d\">%d/%d</td><td class=\"num c-folders\">%lld</td>"
		  "<td class=\"num c-copied\" data-v=\"%lld\">%s</td>"
		  "<td class=\"num c-bytes\" data-v=\"%lld\">%s</td>"
		  "<td class=\"num c-skipped\">%lld</td><td class=\"num c-failed\">%lld</td>"
		  "<td class=\"num c-uncertain\">%lld</td>"
		  "<td class=\"num\" data-v=\"%lld\">%s</td><td class=\"num\" data-v=\"%lld\">%s</td>",
		  a->j.attempts, a->j.attempts, a->j.max_attempts, (long long)a->j.folders,
		  (long long)a->j.msgs_copied, fmt_count(b4, a->j.msgs_copied), (long long)a->j.bytes_copied,
		  fmt_bytes(b1, a->j.bytes_copied), (long long)a->j.msgs_skipped, (long long)a->j.msgs_failed,
		  (long long)a->j.msgs_uncertain, (long long)acct_duration_ms(a),
		  fmt_duration(b2, acct_duration_ms(a)), (long long)a->j.updated_at_ms,
		  fmt_updated(b3, a->j.updated_at_ms, now_ms));
	html_completeness(w, a, now_ms);
	if (a->j.last_error_class[0] || a->j.last_error_text[0]) {
		char pk[PBUF];

		rw_puts(w, "<td class=\"err\" title=\"");
		rw_html(w, a->j.last_error_class);
		rw_puts(w, " ");
		rw_html(w, a->j.last_error_code);
		rw_puts(w, ": ");
		rw_html(w, a->j.last_error_text);
		rw_puts(w, "\"><span><b>");
		rw_html(w, err_head(pk, a));
		rw_puts(w, "</b> ");
		rw_html(w, a->j.last_error_text);
		rw_puts(w, "</span></td></tr>\n");
	} else {
		rw_puts(w, "<td class=\"err\"></td></tr>\n");
	}
}

static void html_accounts(struct rw *w, const struct report *r, const struct report_acct *const *v, size_t n)
{
	char b1[TBUF], b2[TBUF];

	rw_printf(
	    w,
	    "<section class=\"panel\"><div class=\"tools\"><h2>Accounts <span class=\"muted\"><span "
	    "id=\"shown\">"
	    "%zu</span> shown; those that need attention first (failed, partial, running); click a column "
	    "to sort; times in UTC</span></h2>"
	    "<input type=\"search\" id=\"filter\" placeholder=\"Filter: user, host, state, error\" "
	    "aria-label=\"filter accounts\"></div>\n",
	    n < REPORT_HTML_PAGE_ROWS ? n : REPORT_HTML_PAGE_ROWS);
	if (n < r->naccts)
		rw_printf(w,
			  "<p class=\"note\" id=\"capped\">This page holds <b>%s</b> of the run's <b>%s</b> "
			  "accounts: those that failed, are partial, running, or queued after an error come "
			  "first, then the others by id. Every account is in accounts.csv and accounts.json; "
			  "<code>imapfleet status --state failed</code> (or <code>--server HOST</code>, "
			  "<code>--page N</code>) pages through them.</p>\n",
			  fmt_count(b1, (int64_t)n), fmt_count(b2, (int64_t)r->naccts));
	rw_printf(w,
		  "<div class=\"scroll\"><table id=\"accounts\"><thead><tr>"
		  "<th class=\"num\" data-key=\"id\">ID</th><th data-key=\"account\">Account (source &rarr; "
		  "destination)</th><th data-key=\"state\">State</th><th class=\"num\" "
		  "data-key=\"attempts\">Tries</th>"
		  "<th class=\"num\" data-key=\"folders\">Folders</th><th class=\"num\" "
		  "data-key=\"copied\">Copied</th>"
		  "<th class=\"num\" data-key=\"bytes\">Data</th><th class=\"num\" "
		  "data-key=\"skipped\">Skipped</th>"
		  "<th class=\"num\" data-key=\"failed\">Failed</th>"
		  "<th class=\"num\" data-key=\"uncertain\" title=\"copied although the destination may hold them "
		  "(identity not certain: look-alikes there, or no Message-ID); check for duplicates\">Not "
		  "certain</th><th class=\"num\" data-key=\"duration\">Time</th>"
		  "<th class=\"num\" data-key=\"updated\">Updated</th>"
		  "<th class=\"num\" data-key=\"complete\" title=\"messages on the source and the destination at "
		  "the latest imapfleet verify\">Source / dest.</th><th data-key=\"verify\">Verify</th>"
		  "<th class=\"num\" data-key=\"synced\" title=\"when the account last finished a pass\">Last "
		  "synced</th><th data-key=\"error\">Last error</th>"
		  "</tr></thead>\n<tbody>\n");
	{
		/* Those that need attention first (failed, partial, running ...), as the script orders them. */
		const struct report_acct **first = xcalloc(n ? n : 1, sizeof(*first));

		memcpy(first, v, n * sizeof(*first));
		qsort(first, n, sizeof(*first), cmp_rank);
		for (size_t i = 0; i < n && i < REPORT_HTML_PAGE_ROWS; i++)
			html_account_row(w, first[i], r->generated_ms);
		xfree(&first);
	}
	rw_puts(w, "</tbody></table></div>\n");
	rw_printf(w,
		  "<div class=\"pager\" id=\"pager\" hidden><button type=\"button\" id=\"prev\">&lsaquo; "
		  "Previous</button> <span id=\"pageinfo\"></span> <button type=\"button\" id=\"next\">Next "
		  "&rsaquo;</button> <label>rows per page <select id=\"pagesize\"><option>%d</option>"
		  "<option>500</option><option>2000</option><option value=\"0\">all</option></select></label>"
		  "</div>\n",
		  REPORT_HTML_PAGE_ROWS);
	if (n > REPORT_HTML_PAGE_ROWS)
		rw_printf(
		    w,
		    "<p class=\"muted\" id=\"nojs\">The first %d of these %s accounts are shown; the page's "
		    "script shows the others (or see accounts.csv).</p>\n",
		    REPORT_HTML_PAGE_ROWS, fmt_count(b1, (int64_t)n));
	rw_puts(w, "</section>\n");
}

/* The page's data for its script: var imfReport = {"states": [...], "rows": [[...], ...]}; one
 * row per account the page holds (the columns are listed in report.js). Strings are JSON-escaped,
 * '<' included, so nothing in them can close the script element. */
static void html_accounts_data(struct rw *w, const struct report *r, const struct report_acct *const *v,
			       size_t n)
{
	json_t *states = json_array(), *rows = json_array();

	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		json_array_append_new(states, json_string(state_job_state_name((enum state_job_state)s)));
	for (size_t i = 0; i < n; i++) {
		const struct report_acct *a = v[i];
		char b1[TBUF], b2[TBUF], b3[TBUF], b4[TBUF], b5[TBUF], b6[TBUF], pk[PBUF];

		/* why later passes leave it out goes after its error (shown in the error column) */
		char *text =
		    a->j.left_out[0]
			? xasprintf("%s%sleft out of later passes: %s", a->j.last_error_text,
				    a->j.last_error_text[0] ? "; " : "", left_out_text(a->j.left_out))
			: xstrdup(a->j.last_error_text);

		json_t *row = json_pack(
		    "[I, i, o, o, o, o, i, i, I, I, s, I, s, I, I, I, s, I, s, o, o, o]",
		    (json_int_t)a->j.job_id, (int)a->j.state, jv_str(a->j.user1), jv_str(a->j.host1),
		    jv_str(a->j.user2), jv_str(a->j.host2), a->j.attempts, a->j.max_attempts,
		    (json_int_t)a->j.folders, (json_int_t)a->j.msgs_copied, fmt_count(b1, a->j.msgs_copied),
		    (json_int_t)a->j.bytes_copied, fmt_bytes(b2, a->j.bytes_copied),
		    (json_int_t)a->j.msgs_skipped, (json_int_t)a->j.msgs_failed,
		    (json_int_t)acct_duration_ms(a), fmt_duration(b3, acct_duration_ms(a)),
		    (json_int_t)a->j.updated_at_ms, fmt_updated(b4, a->j.updated_at_ms, r->generated_ms),
		    jv_str(err_head(pk, a)), jv_str(a->j.last_error_code), jv_str(text));
		/* 22 verdict, 23 on source, 24 on destination, 25 verified at, 26 last synced, 27 its text,
		 * 28 the attention rank */
		json_array_append_new(row, jv_str(a->j.verdict));
		json_array_append_new(row, json_integer(a->j.verdict[0] ? a->j.on_source : -1));
		json_array_append_new(row, json_integer(a->j.verdict[0] ? a->j.on_destination : -1));
		json_array_append_new(row,
				      jv_str(a->j.verdict[0] ? fmt_time(b5, a->j.verified_at_ms, 0) : ""));
		json_array_append_new(row, json_integer(a->j.last_synced_at_ms));
		json_array_append_new(row,
				      jv_str(a->j.last_synced_at_ms
						 ? fmt_updated(b6, a->j.last_synced_at_ms, r->generated_ms)
						 : "never"));
		json_array_append_new(row, json_integer(acct_rank(a)));
		json_array_append_new(row, json_integer(a->j.msgs_uncertain)); /* 29 */
		json_array_append_new(rows, row);
		xfree(&text);
	}
	rw_puts(w, "var imfReport = ");
	rw_jv(w, json_pack("{s:o, s:o}", "states", states, "rows", rows));
	rw_puts(w, ";\n");
}

/* The report's title with its run number (pre NUMBER post), or untitled NUMBER, escaped. */
static void html_title(struct rw *w, const struct report *r, const char *pre, const char *post, const char *untitled)
{
	if (r->title) {
		rw_html(w, r->title);
		rw_printf(w, "%s%lld%s", pre, (long long)r->run.id, post);
	} else {
		rw_printf(w, "%s%lld", untitled, (long long)r->run.id);
	}
}

int report_write_html(const struct report *r, FILE *out, struct fleet_err *err)
{
	struct rw w;
	char t1[TBUF], t2[TBUF];
	const struct report_acct **v;
	size_t n;

	rw_init(&w, out);
	rw_printf(
	    &w,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
	    "'unsafe-inline'; "
	    "script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n"
	    "<meta name=\"referrer\" content=\"no-referrer\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	    "<meta name=\"generator\" content=\"imapfleet %s\">\n",
	    PACKAGE_VERSION);
	if (r->refresh_s && report_run_goes_on(r))
		rw_printf(&w, "<meta http-equiv=\"refresh\" content=\"%u\">\n", r->refresh_s);
	rw_puts(&w, "<title>");
	html_title(&w, r, " (run ", ")", "imapfleet report: run ");
	rw_printf(&w,
		  "</title>\n<style>\n%s</style></head>\n<body>\n<header><div class=\"wrap\">"
		  "<div class=\"brand\">imapfleet &middot; migration report</div>\n<h1 id=\"title\">",
		  report_css);
	html_title(&w, r, " <span class=\"muted\">run ", "</span>", "Run ");
	rw_printf(&w, " <span class=\"pill %s\" id=\"run-progress\">%s</span></h1>\n<div class=\"meta\"><code "
		      "id=\"run-name\">",
		  progress_css(r), progress_label(r));
	rw_html(&w, r->run.name);
	rw_printf(&w, "</code><span>created %s UTC</span><span>report generated %s UTC</span>",
		  fmt_time(t1, r->run.created_ms, 0), fmt_time(t2, r->generated_ms, 0));
	if (r->refresh_s && report_run_goes_on(r))
		rw_printf(&w, "<span id=\"live-note\">rewritten and reloaded every %u s while the run goes on</span>",
			  r->refresh_s);
	rw_puts(&w, "</div></div></header>\n<main class=\"wrap\">\n");
	html_cards(&w, r);
	html_remaining(&w, r);
	html_progress(&w, r);
	html_causes(&w, r); /* what needs the operator first */
	rw_puts(&w, "<div class=\"grid2\">\n");
	html_throughput(&w, r);
	html_states(&w, r);
	rw_puts(&w, "</div>\n");
	html_passes(&w, r);
	html_left_out(&w, r);
	v = html_pick_accounts(r, &n);
	html_accounts(&w, r, v, n);
	rw_printf(
	    &w,
	    "</main>\n<footer>imapfleet %s &middot; a self-contained page: no network access, no external "
	    "files &middot; the same data is in accounts.csv and "
	    "accounts.json</footer>\n<script>\n",
	    PACKAGE_VERSION);
	html_accounts_data(&w, r, v, n);
	xfree(&v);
	rw_printf(&w, "%s</script>\n</body></html>\n", report_js);
	return rw_finish(&w, "report.html", err);
}

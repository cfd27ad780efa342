/* state/pass.c: which accounts a new pass runs: accounts whose refused credential did not change
 * are held back, accounts whose rows left the accounts file are cancelled, `cancel` (see state.h). */
#include <string.h>

#include "common/alloc.h"
#include "state/state_private.h"

int state_job_hold_auth(struct state_conn *sc, int64_t job_id, int side,
			const unsigned char hmac[STATE_HOLD_HMAC_LEN], struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b1[STATE_NUM_MAX];
	const char *p[3] = {state_fmt_i64(b0, job_id), state_fmt_i64(b1, side), (const char *)hmac};
	const int len[3] = {0, 0, STATE_HOLD_HMAC_LEN}, fmt[3] = {0, 0, 1};

	return state_done(state_exec(sc, "record the refused credential",
				     "UPDATE job SET auth_block_side = $2, auth_block_hmac = $3 WHERE id = $1"
				     " AND state = 'failed'",
				     3, p, len, fmt, STATE_EXEC_IDEMPOTENT, err));
}

int state_run_auth_holds(struct state_conn *sc, int64_t run_id, struct state_auth_hold **out, size_t *n,
			 struct fleet_err *err)
{
	PGresult *res = state_exec_id(sc, "list the accounts held for a refused credential",
				      "SELECT id, auth_block_side, auth_block_hmac FROM job WHERE run_id = $1"
				      " AND state = 'failed' AND auth_block_hmac IS NOT NULL ORDER BY id",
				      run_id, STATE_EXEC_IDEMPOTENT | STATE_EXEC_BINARY, err);
	size_t m = 0;

	*out = NULL;
	*n = 0;
	if (!res)
		return -1;
	*out = xcalloc((size_t)PQntuples(res) + 1, sizeof(**out));
	for (int i = 0; i < PQntuples(res); i++) {
		struct state_auth_hold *h = &(*out)[m];
		const unsigned char *v;

		if (PQgetlength(res, i, 0) != 8 || PQgetlength(res, i, 1) != 2 ||
		    PQgetlength(res, i, 2) != STATE_HOLD_HMAC_LEN)
			continue; /* not a hash this build wrote: ignored, the account runs */
		v = (const unsigned char *)PQgetvalue(res, i, 0);
		h->job_id = 0;
		for (int k = 0; k < 8; k++)
			h->job_id = (int64_t)((uint64_t)h->job_id << 8 | v[k]);
		v = (const unsigned char *)PQgetvalue(res, i, 1);
		h->side = v[0] << 8 | v[1];
		memcpy(h->hmac, PQgetvalue(res, i, 2), STATE_HOLD_HMAC_LEN);
		m++;
	}
	*n = m;
	PQclear(res);
	return 0;
}

static void id_array(struct fleet_buf *b, const int64_t *ids, size_t n)
{
	state_array_begin(b);
	for (size_t i = 0; i < n; i++)
		state_array_i64(b, ids[i]);
	state_array_end(b);
}

/* One UPDATE of the pass; returns its row count or -1. */
static long pass_step(struct state_conn *sc, const char *what, const char *sql, int nparams, const char **p,
		      struct fleet_err *err)
{
	long n = 0;

	return state_count(state_exec(sc, what, sql, nparams, p, NULL, NULL, 0, err), &n) < 0 ? -1 : n;
}

/* The pass an import belongs to: the run's last one while it has not ended (an interrupted pass
 * goes on), else a new one (first when no account of the run ever started). Inside the caller's
 * transaction; state_job_upsert_many calls it so that the rows it creates are in the pass from the
 * start (a second UPDATE of every new row cost more than their INSERT at 50,000 rows). */
int state_pass_open(struct state_conn *sc, int64_t run_id, struct state_pass_counts *out, struct fleet_err *err)
{
	PGresult *res = state_exec_id(sc, "find the run's pass",
				      "SELECT id, number, kind FROM pass WHERE run_id = $1 AND ended_at IS NULL"
				      " ORDER BY number DESC LIMIT 1",
				      run_id, 0, err);

	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		res = state_exec_id(sc, "start a pass",
				    "INSERT INTO pass (run_id, number, kind) SELECT $1,"
				    " coalesce((SELECT max(number) FROM pass WHERE run_id = $1), 0) + 1,"
				    " CASE WHEN EXISTS (SELECT 1 FROM pass WHERE run_id = $1) OR EXISTS (SELECT 1 FROM job"
				    "  WHERE run_id = $1 AND started_at IS NOT NULL) THEN 'delta' ELSE 'first' END"
				    " RETURNING id, number, kind",
				    run_id, 0, err);
		if (!res)
			return -1;
	}
	out->pass_id = state_get_i64(res, 0, 0);
	out->pass_number = (int)state_get_i64(res, 0, 1);
	out->pass_first = strcmp(state_get_str(res, 0, 2), "first") == 0;
	PQclear(res);
	return 0;
}

/* Every job queued or running is in the import's pass. Inside start_pass's transaction. */
static int join_pass(struct state_conn *sc, int64_t run_id, struct state_pass_counts *out, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b1[STATE_NUM_MAX];
	const char *p[2];

	if (state_pass_open(sc, run_id, out, err) < 0)
		return -1;
	p[0] = state_fmt_i64(b0, run_id);
	p[1] = state_fmt_i64(b1, out->pass_id);
	return state_exec_cmd(sc, "put the accounts in the pass",
			      "UPDATE job SET pass_id = $2 WHERE run_id = $1 AND state IN ('queued', 'running')"
			      " AND pass_id IS DISTINCT FROM $2",
			      2, p, 0, err);
}

int state_pass_record(struct state_conn *sc, int64_t job_id, const char *outcome, const struct state_pass_tally *t,
		      struct fleet_err *err)
{
	char b[7][STATE_NUM_MAX];
	const char *p[8] = {state_fmt_i64(b[0], job_id),       outcome,
			    state_fmt_i64(b[1], t->copied),    state_fmt_i64(b[2], t->matched),
			    state_fmt_i64(b[3], t->skipped),   state_fmt_i64(b[4], t->failed),
			    state_fmt_i64(b[5], t->bytes_copied), state_fmt_i64(b[6], t->uncertain)};

	/* The account's uncertain count (all passes) is kept also for a job in no pass (`sync`). One
	 * UPDATE of the job row: two in one statement would see the same row and one would be lost. */
	return state_exec_cmd(
	    sc, "record the attempt in its pass",
	    "WITH j AS (SELECT id, pass_id, pass_id IS NOT NULL AND $2 IN ('done', 'partial') AS synced FROM job"
	    "  WHERE id = $1),"
	    " s AS (UPDATE job SET msgs_uncertain = job.msgs_uncertain + $8,"
	    "  last_synced_at = CASE WHEN j.synced THEN now() ELSE job.last_synced_at END"
	    "  FROM j WHERE job.id = j.id AND (j.synced OR $8 > 0))"
	    " INSERT INTO pass_account (pass_id, job_id, outcome, copied, matched, skipped, failed, bytes_copied,"
	    "  uncertain, ended_at)"
	    " SELECT pass_id, id, $2, $3, $4, $5, $6, $7, $8, now() FROM j WHERE pass_id IS NOT NULL"
	    " ON CONFLICT (pass_id, job_id) DO UPDATE SET outcome = excluded.outcome,"
	    "  copied = pass_account.copied + excluded.copied, matched = pass_account.matched + excluded.matched,"
	    "  skipped = pass_account.skipped + excluded.skipped, failed = pass_account.failed + excluded.failed,"
	    "  bytes_copied = pass_account.bytes_copied + excluded.bytes_copied,"
	    "  uncertain = pass_account.uncertain + excluded.uncertain, ended_at = now()",
	    8, p, 0, err);
}

int state_pass_end_if_idle(struct state_conn *sc, int64_t run_id, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, run_id)};
	long n = pass_step(sc, "end the pass",
			   "WITH u AS (UPDATE pass SET ended_at = now() WHERE run_id = $1 AND ended_at IS NULL"
			   "  AND NOT EXISTS (SELECT 1 FROM job WHERE run_id = $1 AND state IN ('queued', 'running'))"
			   "  RETURNING id) SELECT count(*) FROM u",
			   1, p, err);

	return n < 0 ? -1 : n > 0;
}

static void pass_read(const PGresult *res, int i, struct state_pass_report *r)
{
	r->pass_id = state_get_i64(res, i, 0);
	r->number = (int)state_get_i64(res, i, 1);
	r->kind = state_get_str(res, i, 2);
	r->started_at_ms = state_get_i64(res, i, 3);
	r->ended_at_ms = state_get_i64(res, i, 4);
	r->accounts = (long)state_get_i64(res, i, 5);
	r->done = (long)state_get_i64(res, i, 6);
	r->partial = (long)state_get_i64(res, i, 7);
	r->failed = (long)state_get_i64(res, i, 8);
	r->copied = state_get_i64(res, i, 9);
	r->matched = state_get_i64(res, i, 10);
	r->skipped = state_get_i64(res, i, 11);
	r->msgs_failed = state_get_i64(res, i, 12);
	r->bytes_copied = state_get_i64(res, i, 13);
	r->uncertain = state_get_i64(res, i, 14);
}

STATE_ROW_WALK(pass, struct state_pass_report, state_pass_report_cb, pass_read)

int state_report_passes(struct state_conn *sc, int64_t run_id, state_pass_report_cb cb, void *ctx,
			struct fleet_err *err)
{
	PGresult *res = state_exec_id(
	    sc, "list the run's passes",
	    "SELECT ps.id, ps.number, ps.kind, " MS("ps.started_at") ", " MS("ps.ended_at") ","
	    " count(pa.job_id), count(*) FILTER (WHERE pa.outcome = 'done'),"
	    " count(*) FILTER (WHERE pa.outcome = 'partial'), count(*) FILTER (WHERE pa.outcome = 'failed'),"
	    " coalesce(sum(pa.copied), 0), coalesce(sum(pa.matched), 0), coalesce(sum(pa.skipped), 0),"
	    " coalesce(sum(pa.failed), 0), coalesce(sum(pa.bytes_copied), 0), coalesce(sum(pa.uncertain), 0)"
	    " FROM pass ps LEFT JOIN pass_account pa ON pa.pass_id = ps.id WHERE ps.run_id = $1"
	    " GROUP BY ps.id ORDER BY ps.number",
	    run_id, STATE_EXEC_IDEMPOTENT, err);

	return pass_each(res, cb, ctx);
}

#define REMOVED_TEXT                                                                                         \
	"'not in the accounts file any more: not run (put its row back, run with --keep-removed, or"          \
	" imapfleet retry --account ' || id || ')'"

/* "Is this job in the accounts file": a semi- or anti-join on the unnested ids ($2), which the
 * planner hashes. `id = ANY ($2)` compared every row with the whole array (the connection's plans
 * are generic, so the array is a parameter and never hashed): at 50,000 rows the removed-row
 * UPDATE took 19 s of PostgreSQL CPU on a re-import and on every first import. */
#define IN_FILE(ID) "SELECT 1 FROM unnest($2::bigint[]) AS f(id) WHERE f.id = " ID

int state_run_start_pass(struct state_conn *sc, int64_t run_id, const struct state_pass_plan *plan,
			 struct state_pass_counts *out, struct fleet_err *err)
{
	struct fleet_buf in = FLEET_BUF_INIT(STATE_ARRAY_MAX), rel = FLEET_BUF_INIT(STATE_ARRAY_MAX);
	char b0[STATE_NUM_MAX];
	const char *p[3];
	long n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (plan->run_new) /* nothing to release, cancel, queue again or add to the pass */
		return state_pass_open(sc, run_id, out, err);
	id_array(&in, plan->in_file, plan->nin_file);
	id_array(&rel, plan->released, plan->nreleased);
	p[0] = state_fmt_i64(b0, run_id);
	p[1] = fleet_buf_cstr(&in);
	p[2] = fleet_buf_cstr(&rel);
	if (state_bufs_fit(&in, 1, "start the pass", err) < 0 || state_bufs_fit(&rel, 1, "start the pass", err) < 0 ||
	    state_begin(sc, err) < 0)
		goto out;
	if (plan->nreleased &&
	    pass_step(sc, "release the accounts whose credential changed",
		      "WITH u AS (UPDATE job SET auth_block_side = NULL, auth_block_hmac = NULL"
		      "  WHERE run_id = $1 AND id = ANY ($2::bigint[]) RETURNING id) SELECT count(*) FROM u",
		      2, (const char *[]){p[0], p[2]}, err) < 0)
		goto rollback;
	if (!plan->keep_removed) {
		n = pass_step(sc, "cancel the accounts no longer in the accounts file",
			      "WITH u AS (UPDATE job SET " CANCEL_SET("'" STATE_CODE_REMOVED "'", REMOVED_TEXT)
			      "  WHERE run_id = $1 AND state <> 'cancelled' AND NOT EXISTS (" IN_FILE("job.id") ")"
			      "  RETURNING id), " CANCEL_ATTEMPTS " SELECT count(*) FROM u",
			      2, p, err);
		if (n < 0)
			goto rollback;
		out->removed = n;
	}
	n = pass_step(sc, "queue the accounts whose rows are back",
		      "WITH u AS (UPDATE job SET " REQUEUE_SET " WHERE run_id = $1 AND state = 'cancelled'"
		      "  AND last_error_code = '" STATE_CODE_REMOVED "' AND ($3::boolean OR EXISTS (" IN_FILE("job.id") "))"
		      "  RETURNING id) SELECT count(*) FROM u",
		      3, (const char *[]){p[0], p[1], plan->keep_removed ? "t" : "f"}, err);
	if (n < 0)
		goto rollback;
	out->restored = n;
	n = pass_step(sc, "queue the accounts for a new pass",
		      "WITH u AS (UPDATE job SET " REQUEUE_SET " WHERE run_id = $1"
		      "  AND state IN ('done', 'failed', 'partial') AND auth_block_hmac IS NULL RETURNING id),"
		      " r AS (UPDATE run SET state = 'active', updated_at = now() WHERE id = $1"
		      "  AND EXISTS (SELECT 1 FROM u)) SELECT count(*) FROM u",
		      1, p, err);
	if (n < 0)
		goto rollback;
	out->requeued = n;
	n = pass_step(sc, "count the accounts held for a refused credential",
		      "SELECT count(*) FROM job WHERE run_id = $1 AND state = 'failed' AND auth_block_hmac IS NOT NULL",
		      1, p, err);
	if (n < 0)
		goto rollback;
	out->held = n;
	if (join_pass(sc, run_id, out, err) < 0)
		goto rollback;
	rc = state_commit(sc, err);
	goto out;
rollback:
	state_rollback(sc);
out:
	fleet_buf_release(&in);
	fleet_buf_release(&rel);
	return rc;
}

int state_run_cancel(struct state_conn *sc, int64_t run_id, unsigned state_mask, long *count,
		     struct fleet_err *err)
{
	struct fleet_buf states = FLEET_BUF_INIT(STATE_NAMES_MAX);
	char b0[STATE_NUM_MAX];
	const char *p[2];
	long n;

	state_array_begin(&states);
	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		if (s != STATE_JOB_CANCELLED && (state_mask & STATE_JOB_MASK(s)))
			state_array_str(&states, state_job_state_name((enum state_job_state)s));
	state_array_end(&states);
	p[0] = state_fmt_i64(b0, run_id);
	p[1] = fleet_buf_cstr(&states);
	n = -1;
	if (state_bufs_fit(&states, 1, "cancel the jobs", err) == 0)
		n = pass_step(sc, "cancel the jobs",
			      "WITH u AS (UPDATE job SET " CANCEL_SET("'" STATE_CODE_CANCELLED "'", CANCEL_TEXT)
			      "  WHERE run_id = $1 AND state = ANY ($2::text[]) RETURNING id), " CANCEL_ATTEMPTS
			      " SELECT count(*) FROM u",
			      2, p, err);
	fleet_buf_release(&states);
	if (n < 0)
		return -1;
	if (count)
		*count = n;
	return 0;
}

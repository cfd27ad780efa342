/* state/report_extra.c: the run list, the default run and time spent per job, for `status` and
 * `report` (the other report queries are in report.c). */
#include <string.h>

#include "state/state_private.h"

#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

int state_report_runs(struct state_conn *sc, int64_t run_id, state_run_report_cb cb, void *ctx,
		      struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, run_id)};
	PGresult *res = state_exec(sc, "list the runs",
				   "SELECT id, name, state, " MS("created_at") ", " MS(
				       "updated_at") " FROM run WHERE $1::bigint = 0 OR id = $1 ORDER BY id",
				   1, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	int rc = 0;

	if (!res)
		return -1;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		struct state_run_report r;

		memset(&r, 0, sizeof(r));
		r.run_id = state_get_i64(res, i, 0);
		r.name = state_get_str(res, i, 1);
		r.state = state_get_str(res, i, 2);
		r.created_at_ms = state_get_i64(res, i, 3);
		r.updated_at_ms = state_get_i64(res, i, 4);
		rc = cb(&r, ctx);
	}
	PQclear(res);
	return rc;
}

int state_report_default_run(struct state_conn *sc, int64_t *run_id, struct fleet_err *err)
{
	PGresult *res;
	int found = state_run_find_active(sc, run_id, err);

	if (found != 0)
		return found;
	res = state_exec(sc, "find the newest run",
			 "SELECT id FROM run ORDER BY created_at DESC, id DESC LIMIT 1", 0, NULL, NULL, NULL,
			 STATE_EXEC_IDEMPOTENT, err);
	if (!res)
		return -1;
	found = PQntuples(res) == 1;
	if (found)
		*run_id = state_get_i64(res, 0, 0);
	PQclear(res);
	return found;
}

int state_report_job_times(struct state_conn *sc, int64_t run_id, state_job_time_cb cb, void *ctx,
			   struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, run_id)};
	PGresult *res = state_exec(
	    sc, "sum the time spent per job",
	    "SELECT a.job_id,"
	    " coalesce(sum(" MS(
		"greatest(coalesce(a.ended_at, CASE WHEN j.state = 'running' THEN now()"
		" ELSE j.updated_at END) - a.started_at, interval '0')") "), 0),"
									 " count(*) FILTER (WHERE a.outcome "
									 "IS DISTINCT FROM 'interrupted')"
									 " FROM job_attempt a JOIN job j ON "
									 "j.id = a.job_id WHERE j.run_id = $1"
									 " GROUP BY a.job_id ORDER BY "
									 "a.job_id",
	    1, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	int rc = 0;

	if (!res)
		return -1;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		struct state_job_time t;

		t.job_id = state_get_i64(res, i, 0);
		t.busy_ms = state_get_i64(res, i, 1);
		t.attempts_total = (long)state_get_i64(res, i, 2);
		rc = cb(&t, ctx);
	}
	PQclear(res);
	return rc;
}

int state_report_job_run(struct state_conn *sc, int64_t job_id, int64_t *run_id, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, job_id)};
	PGresult *res = state_exec(sc, "find the run of the job", "SELECT run_id FROM job WHERE id = $1", 1,
				   p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	int found;

	if (!res)
		return -1;
	found = PQntuples(res) == 1;
	if (found)
		*run_id = state_get_i64(res, 0, 0);
	PQclear(res);
	return found;
}

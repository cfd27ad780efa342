/* state/park.c: daily budgets per account and parked accounts (see state.h). */
#include <stdio.h>
#include <string.h>

#include "state/state_private.h"

/* The day is over (or never started): its counters start afresh. */
#define DAY_OVER "coalesce(day_started_at + $4::float8 * interval '1 millisecond' <= now(), true)"

int state_job_day_load(struct state_conn *sc, const struct state_lease *lease, uint64_t day_ms,
		       struct state_day *day, struct fleet_err *err)
{
	char b[4][STATE_NUM_MAX];
	const char *p[4];
	PGresult *res = NULL;

	memset(day, 0, sizeof(*day));
	state_lease_params(b, lease, p);
	p[3] = state_fmt_u64(b[3], day_ms);
	if (state_fenced(sc, lease, "read the account's daily budget",
			 "WITH u AS (UPDATE job SET"
			 "  day_started_at = CASE WHEN " DAY_OVER " THEN NULL ELSE day_started_at END,"
			 "  day_down1 = CASE WHEN " DAY_OVER " THEN 0 ELSE day_down1 END,"
			 "  day_up1 = CASE WHEN " DAY_OVER " THEN 0 ELSE day_up1 END,"
			 "  day_down2 = CASE WHEN " DAY_OVER " THEN 0 ELSE day_down2 END,"
			 "  day_up2 = CASE WHEN " DAY_OVER " THEN 0 ELSE day_up2 END"
			 "  WHERE " LEASE_WHERE " RETURNING day_down1, day_up1, day_down2, day_up2)"
			 " SELECT count(*), max(day_down1), max(day_up1), max(day_down2), max(day_up2) FROM u",
			 4, p, STATE_EXEC_IDEMPOTENT, &res, err) < 0)
		return -1;
	for (int k = 0; k < 4; k++) {
		int64_t v = state_get_i64(res, 0, 1 + k);

		day->used[k / 2][k % 2] = v > 0 ? (uint64_t)v : 0;
	}
	PQclear(res);
	return 0;
}

int state_job_day_add(struct state_conn *sc, const struct state_lease *lease, const uint64_t add[2][2],
		      uint64_t started_ms_ago, struct fleet_err *err)
{
	char b[8][STATE_NUM_MAX];
	const char *p[8];

	if (!(add[0][0] | add[0][1] | add[1][0] | add[1][1]))
		return 0;
	state_lease_params(b, lease, p);
	for (int k = 0; k < 4; k++)
		p[3 + k] = state_fmt_u64(b[3 + k], add[k / 2][k % 2]);
	p[7] = state_fmt_u64(b[7], started_ms_ago);
	/* Sent again after a reconnect: counted twice at worst, which only makes the budget stricter. */
	return state_fenced(sc, lease, "record the account's daily usage",
			    "WITH u AS (UPDATE job SET"
			    "  day_started_at = coalesce(day_started_at, now() - $8::float8 * interval '1 millisecond'),"
			    "  day_down1 = day_down1 + $4::bigint, day_up1 = day_up1 + $5::bigint,"
			    "  day_down2 = day_down2 + $6::bigint, day_up2 = day_up2 + $7::bigint"
			    "  WHERE " LEASE_WHERE " RETURNING id) SELECT count(*) FROM u",
			    8, p, STATE_EXEC_IDEMPOTENT, NULL, err);
}

int state_job_park(struct state_conn *sc, const struct state_lease *lease, const struct state_park_req *req,
		   int *failed, int64_t *resume_ms, struct fleet_err *err)
{
	char b[15][STATE_NUM_MAX];
	const char *p[15];
	PGresult *res = NULL;
	int daily = req->kind == STATE_PARK_DAILY;

	state_lease_params(b, lease, p);
	p[3] = daily ? "daily" : "throttled";
	p[4] = state_fmt_u64(b[4], req->delay_ms);
	p[5] = state_fmt_u64(b[5], req->day_ms ? req->day_ms : 86400000);
	p[6] = state_fmt_u64(b[6], req->pending);
	p[7] = state_fmt_u64(b[7], req->per_day);
	p[8] = state_fmt_u64(b[8], daily ? 0 : req->max_throttle_parks);
	p[9] = req->progressed ? "t" : "f";
	state_err_params(req->why, FLEET_ERR_THROTTLED, "parked", &p[10]);
	p[13] = state_fmt_u64(b[13], req->base_ms ? req->base_ms : 2000);
	p[14] = state_fmt_u64(b[14], req->cap_ms ? req->cap_ms : 600000);
	if (state_fenced(
		sc, lease, "park the account",
		"WITH r AS (SELECT id, CASE WHEN $4 = 'daily' THEN greatest(now() + $5::float8 * interval '1 millisecond',"
		"   coalesce(day_started_at, now()) + $6::float8 * interval '1 millisecond')"
		"  ELSE now() + greatest($5::float8, least($15::float8, $14::float8 * power(2, least(throttle_parks, 40)))"
		"   * (0.5 + random() / 2)) * interval '1 millisecond' END AS t,"
		"  ($9::int > 0 AND NOT $10::boolean AND throttle_parks + 1 > $9::int) AS give_up"
		"  FROM job WHERE " LEASE_WHERE "),"
		" u AS (UPDATE job j SET"
		"  state = CASE WHEN r.give_up THEN 'failed' ELSE 'queued' END,"
		"  scheduled_at = CASE WHEN r.give_up THEN j.scheduled_at ELSE r.t END,"
		"  parked_until = CASE WHEN r.give_up THEN NULL ELSE r.t END,"
		"  park_reason = CASE WHEN r.give_up THEN NULL ELSE $4 END,"
		"  eta_at = CASE WHEN r.give_up OR $7::bigint = 0 OR $8::bigint = 0 THEN NULL"
		"   ELSE r.t + (ceil($7::float8 / $8::float8) - 1) * $6::float8 * interval '1 millisecond' END,"
		"  throttle_parks = CASE WHEN $4 = 'daily' OR $10::boolean THEN 0 ELSE j.throttle_parks + 1 END,"
		"  attempts = CASE WHEN r.give_up THEN j.attempts ELSE greatest(j.attempts - 1, 0) END,"
		"  finished_at = CASE WHEN r.give_up THEN now() END,"
		"  lease_owner = NULL, lease_expires = NULL, last_error_class = $11, last_error_code = $12,"
		"  last_error_text = $13, updated_at = now() FROM r WHERE j.id = r.id"
		"  RETURNING j.id, j.state, (extract(epoch FROM r.t - now()) * 1000)::bigint AS wait),"
		LEASE_ATTEMPT_END("outcome = CASE WHEN u.state = 'queued' THEN 'parked' ELSE 'failed' END,"
				  " error_class = $11, error_code = $12, error_text = $13")
		" SELECT count(*), max(state), max(wait) FROM u",
		15, p, 0, &res, err) < 0)
		return -1;
	if (failed)
		*failed = strcmp(state_get_str(res, 0, 1), "failed") == 0;
	if (resume_ms)
		*resume_ms = state_get_i64(res, 0, 2);
	PQclear(res);
	return 0;
}

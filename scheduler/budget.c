/* scheduler/budget.c: daily budgets per account and parked accounts (see budget.h). */
#include "scheduler/budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"

uint64_t budget_day_ms(void)
{
	const char *v = getenv("IMAPFLEET_TEST_DAY_SECONDS");
	uint64_t sec;

	if (v && *v && fleet_parse_u64(v, 1, BUDGET_DAY_S, &sec) == 0)
		return sec * 1000;
	return BUDGET_DAY_S * 1000ull;
}

int budget_err_is_daily(const struct fleet_err *err)
{
	return strcmp(err->code, ENGINE_CODE_DAILY_BUDGET) == 0 || strcmp(err->code, IMAP_CODE_DAILY_LIMIT) == 0;
}

int budget_begin(struct state_conn *sc, const struct state_lease *lease, const struct engine_opts *o,
		 struct budget_attempt *ba, struct fleet_err *err)
{
	struct state_day day;

	memset(ba, 0, sizeof(*ba));
	ba->started_ms = fleet_now_ms();
	if (!(o->daily[0][0] | o->daily[0][1] | o->daily[1][0] | o->daily[1][1]))
		return 0;
	if (state_job_day_load(sc, lease, budget_day_ms(), &day, err) < 0)
		return -1;
	memcpy(ba->b.limit, o->daily, sizeof(ba->b.limit));
	memcpy(ba->b.used, day.used, sizeof(ba->b.used));
	memcpy(ba->used0, day.used, sizeof(ba->used0));
	ba->active = 1;
	return 0;
}

void budget_end(struct state_conn *sc, const struct state_lease *lease, struct budget_attempt *ba)
{
	uint64_t add[2][2];
	struct fleet_err err;

	if (!ba->active)
		return;
	for (int k = 0; k < 2; k++)
		for (int d = 0; d < 2; d++)
			add[k][d] = ba->b.used[k][d] - ba->used0[k][d];
	if (state_job_day_add(sc, lease, add, fleet_now_ms() - ba->started_ms, &err) < 0)
		log_warn("could not record the account's daily usage: %s", err.message);
}

/* The smallest daily budget of the account (what bounds its pace), 0 when none. */
static uint64_t per_day(const struct engine_opts *o)
{
	uint64_t m = 0;

	for (int k = 0; k < 2; k++)
		for (int d = 0; d < 2; d++)
			if (o->daily[k][d] && (!m || o->daily[k][d] < m))
				m = o->daily[k][d];
	return m;
}

int budget_park(struct state_conn *sc, const struct state_lease *lease, const struct retry_policy *rp,
		const struct engine_opts *o, const struct budget_attempt *ba, const struct fleet_err *err,
		int progressed, struct fleet_err *perr)
{
	struct state_park_req req;
	int failed = 0;
	int64_t wait = 0;
	time_t at;
	struct tm tm;
	char when[32] = "?";

	fleet_err_clear(perr);
	if (err->cls != FLEET_ERR_THROTTLED)
		return 0;
	memset(&req, 0, sizeof(req));
	req.kind = budget_err_is_daily(err) ? STATE_PARK_DAILY : STATE_PARK_THROTTLED;
	req.why = err;
	req.delay_ms = err->retry_after_ms;
	req.base_ms = rp->base_ms;
	req.cap_ms = rp->cap_ms;
	req.day_ms = budget_day_ms();
	req.pending = ba->b.pending;
	req.per_day = per_day(o);
	req.max_throttle_parks = 2 * rp->max_attempts;
	req.progressed = progressed;
	if (state_job_park(sc, lease, &req, &failed, &wait, perr) < 0)
		return 0;
	if (failed) {
		log_error("account failed (%s, %s): %s; throttled %u times in a row without progress",
			  fleet_err_class_name(err->cls), err->code[0] ? err->code : "-", err->message,
			  req.max_throttle_parks);
		return 2;
	}
	at = (time_t)((fleet_wall_ms() + (uint64_t)(wait > 0 ? wait : 0)) / 1000);
	if (gmtime_r(&at, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	if (req.kind == STATE_PARK_DAILY && req.pending && req.per_day)
		log_warn("parked until %s UTC, when its day is over (not counted as an attempt): %s; %.1f MB known "
			 "left at %.1f MB a day: about %llu more day%s",
			 when, err->message, (double)req.pending / 1048576.0, (double)req.per_day / 1048576.0,
			 (unsigned long long)((req.pending + req.per_day - 1) / req.per_day),
			 req.pending > req.per_day ? "s" : "");
	else if (req.kind == STATE_PARK_DAILY)
		log_warn("parked until %s UTC, when its day is over (not counted as an attempt): %s", when, err->message);
	else
		log_warn("parked until %s UTC, the server throttles (not counted as an attempt): %s", when, err->message);
	return 1;
}

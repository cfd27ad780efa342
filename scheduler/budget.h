/* scheduler/budget.h: daily budgets per account and parked accounts (design section 12).
 *
 * Providers limit what one user may move per day (Gmail: 2,500 MB downloaded and 500 MB uploaded
 * over IMAP) and throttle busy mailboxes (Microsoft 365). An account's budgets come from its
 * options (--daily-download1/2, --daily-upload1/2, the presets); what its current day used is kept
 * in the state store, so that every attempt on any host counts against the same day. An attempt
 * stops before the message that would pass a budget (engine: DAILY_BUDGET), or the provider says
 * the day's limit is used up (DAILY_LIMIT), or it throttles (class throttled): the account is then
 * parked, an ordinary queued job due at its resume time that any host claims then. Throttle parks
 * do not count against --max-attempts; the wait doubles with each park in a row, and an account
 * throttled twice --max-attempts times in a row without progress fails with the server's answer.
 *
 * A day lasts 24 h from the account's first byte; IMAPFLEET_TEST_DAY_SECONDS (tests only) shortens
 * it. Thread-safety: none needed (per-attempt data, the caller's state connection).
 */
#ifndef IMAPFLEET_SCHEDULER_BUDGET_H
#define IMAPFLEET_SCHEDULER_BUDGET_H

#include <stdint.h>

#include "common/err.h"
#include "engine/engine.h"
#include "scheduler/policy.h"
#include "state/state.h"

struct budget_attempt {
	struct engine_budget b;    /* handed to the engine (job.budget) when active */
	uint64_t used0[2][2];      /* the day's usage when the attempt started */
	uint64_t started_ms;
	int active;                /* the account has a budget */
};

/* The providers' budgets are per day. */
#define BUDGET_DAY_S 86400u

/* The length of a day in ms (BUDGET_DAY_S unless IMAPFLEET_TEST_DAY_SECONDS, at most that, says
 * otherwise). */
uint64_t budget_day_ms(void);

/* Before engine_run: when the options set a budget, reads the account's day (ended first if over)
 * into ba and sets ba->active. Fenced (LEASE_LOST). */
int budget_begin(struct state_conn *sc, const struct state_lease *lease, const struct engine_opts *o,
		 struct budget_attempt *ba, struct fleet_err *err);
/* After engine_run, whatever its outcome: records what the attempt used. Logs a failure. */
void budget_end(struct state_conn *sc, const struct state_lease *lease, struct budget_attempt *ba);

/* The attempt failed with err. A daily answer or budget (DAILY_LIMIT, DAILY_BUDGET) or a throttle
 * (class throttled) parks the account: returns 1 (logged: until when and why), 2 when it failed
 * instead (throttled too often in a row; logged), 0 when err is not a parking matter or the park
 * could not be recorded (*perr says why; the caller records the failure its usual way). The wait
 * of a throttle park follows rp (--retry-base, --retry-cap, --max-attempts). */
int budget_park(struct state_conn *sc, const struct state_lease *lease, const struct retry_policy *rp,
		const struct engine_opts *o, const struct budget_attempt *ba, const struct fleet_err *err,
		int progressed, struct fleet_err *perr);

/* 1 when err is a provider's daily limit or an account's daily budget. */
int budget_err_is_daily(const struct fleet_err *err);

#endif

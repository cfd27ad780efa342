/* ops/retry.h: `imapfleet retry`, requeueing failed accounts so that the next `run` or `worker`
 * takes them again; nothing already copied is copied twice (the ledger is kept); and `imapfleet
 * cancel`, which takes accounts out of the run until `retry` names them. */
#ifndef IMAPFLEET_OPS_RETRY_H
#define IMAPFLEET_OPS_RETRY_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "state/state.h"

/* ---- retry ----------------------------------------------------------------------------------- */

/* `retry`: requeues (queued now, attempts reset to 0, last error cleared, folders, ledger and
 * counters kept so nothing is copied twice) either every failed account of run_id (account NULL),
 * or the one account named by `account`: a job id ("42"; any run when run_id is 0) or "user1" /
 * "user1@host1" (in run_id, which must then be set). A running account is never requeued. Prints one
 * line per account requeued, and for an account that could not be, why. *count: accounts requeued.
 * An account name that matches several jobs is an error (FLEET_ERR_PERMANENT, code "AMBIGUOUS"). */
int report_retry(struct state_conn *sc, int64_t run_id, const char *account, FILE *out, long *count,
		 struct fleet_err *err);

/* `cancel`: the account named (as for report_retry), or every failed or partial account of run_id,
 * or (all) every account of run_id that is not cancelled, is cancelled: not run by this pass or
 * later ones (a running one stops at its next write), its progress kept; `retry --account` undoes
 * it. Prints one line per account cancelled. *count: accounts cancelled. */
int report_cancel(struct state_conn *sc, int64_t run_id, const char *account, int all, FILE *out, long *count,
		  struct fleet_err *err);

#endif

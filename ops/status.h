/* ops/status.h: `imapfleet status`, the progress of the runs in the state store, as text or JSON.
 * Reads the database only; every string from it is escaped for the terminal or for JSON. */
#ifndef IMAPFLEET_OPS_STATUS_H
#define IMAPFLEET_OPS_STATUS_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "state/state.h"

/* ---- status ---------------------------------------------------------------------------------- */

/* `status`: a summary of every run (run_id 0) or of run_id, then one line per account of the run
 * chosen by report_pick_run(run_id). json: one JSON document instead of text. Terminal text has
 * control characters replaced. Returns 1 when the store holds no (such) run, else 0. */
int report_status(struct state_conn *sc, int64_t run_id, int json, FILE *out, struct fleet_err *err);

#endif

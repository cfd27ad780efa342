/* ops/status.h: `imapfleet status`, the progress of the runs in the state store, as text or JSON.
 * Reads the database only; every string from it is escaped for the terminal or for JSON. */
#ifndef IMAPFLEET_OPS_STATUS_H
#define IMAPFLEET_OPS_STATUS_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "state/state.h"

/* ---- status ---------------------------------------------------------------------------------- */

/* What `status` shows. The account list is one page of the chosen run's accounts in id order:
 * those whose state is in state_mask (0 = any) and that use server on either side ("host" or
 * "host:port"; NULL = any), skipping offset, at most limit (0 = all). */
struct status_opts {
	int64_t run_id; /* 0 = report_pick_run's default */
	int json;	/* one JSON document instead of text */
	unsigned state_mask;
	const char *server;
	long limit;
	long offset;
};
#define STATUS_DEFAULT_LIMIT 100

/* `status`: a summary of every run (run_id 0) or of run_id, then the page of accounts of the run
 * chosen by report_pick_run(run_id), with how many match and where the next page starts. Terminal
 * text has control characters replaced. Returns 1 when the store holds no (such) run, else 0. */
int report_status(struct state_conn *sc, const struct status_opts *o, FILE *out, struct fleet_err *err);

/* "failed" or "failed,partial" (job state names) -> STATE_JOB_MASK bits. -1 when a name is not a
 * job state (or the list is empty). */
int status_parse_states(const char *list, unsigned *mask);

#endif

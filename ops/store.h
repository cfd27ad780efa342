/* ops/store.h: the state store opened for reading by the operator tools (status, report, retry).
 * Errors: an unreachable store keeps the state layer's class and code (FLEET_ERR_TRANSIENT,
 * STATE_ERR_CONNECTION); no store in this directory is REPORT_ERR_NO_STORE (ops/report.h). */
#ifndef IMAPFLEET_OPS_STORE_H
#define IMAPFLEET_OPS_STORE_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "ops/report.h"
#include "state/state.h"

/* ---- the state store, opened for reading ---------------------------------------------------- */

struct report_store;

/* Opens the state store as `run` finds it (--state URL, IMAPFLEET_STATE, PG* variables, or the
 * embedded cluster under ./.imapfleet). Unlike `run`, it never creates an embedded cluster: when
 * ./.imapfleet/pg does not exist the call fails with REPORT_ERR_NO_STORE. Applies pending schema
 * migrations like every imapfleet process. */
int report_store_open(const char *state_arg, struct report_store **out, struct fleet_err *err);
/* Borrowed; valid until report_store_close. */
struct state_conn *report_store_conn(struct report_store *rs);
/* Closes the connection and stops the embedded cluster when this was its last user. NULL is fine. */
void report_store_close(struct report_store **rs);

#endif

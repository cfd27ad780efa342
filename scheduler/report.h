/* scheduler/report.h: the operator's views of the state store: `status` (text or JSON on a stream),
 * `report` (accounts.csv, failures.csv, accounts.json and one self-contained report.html) and the
 * requeueing behind `retry`. The cli commands only parse arguments and call these.
 *
 * Everything here reads the database (except report_retry, which requeues jobs) and may run while a
 * run is going, from any host. Every string that comes from the database (user names, host names,
 * folder names, server error texts) is untrusted: it is escaped for its output (HTML, JSON, CSV,
 * terminal), invalid UTF-8 is replaced by U+FFFD, and nothing is ever evaluated. Passwords are not
 * in the database, so they cannot appear in any output.
 *
 * Errors: functions return < 0 and fill err. Database errors keep the class and code of the state
 * layer (an unreachable store: FLEET_ERR_TRANSIENT, code STATE_ERR_CONNECTION); output errors are
 * FLEET_ERR_PERMANENT with code REPORT_ERR_IO. Not thread-safe (one thread per store and report).
 */
#ifndef IMAPFLEET_SCHEDULER_REPORT_H
#define IMAPFLEET_SCHEDULER_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "state/state.h"

/* err->code when a file or stream could not be written. */
#define REPORT_ERR_IO "REPORT_IO"
/* err->code when the embedded state store was asked for but this directory has none. */
#define REPORT_ERR_NO_STORE "NO_STATE_STORE"

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

/* Chooses the run to show: run_id > 0 must exist; 0 picks the default (the active run, else the
 * newest one: state_report_default_run). Returns 1 and sets *out, 0 when there is no such run. */
int report_pick_run(struct state_conn *sc, int64_t run_id, int64_t *out, struct fleet_err *err);

/* ---- status ---------------------------------------------------------------------------------- */

/* `status`: a summary of every run (run_id 0) or of run_id, then one line per account of the run
 * chosen by report_pick_run(run_id). json: one JSON document instead of text. Terminal text has
 * control characters replaced. Returns 1 when the store holds no (such) run, else 0. */
int report_status(struct state_conn *sc, int64_t run_id, int json, FILE *out, struct fleet_err *err);

/* ---- report files ---------------------------------------------------------------------------- */

#define REPORT_CSV  (1u << 0) /* accounts.csv and failures.csv */
#define REPORT_JSON (1u << 1) /* accounts.json */
#define REPORT_HTML (1u << 2) /* report.html */
#define REPORT_ALL  (REPORT_CSV | REPORT_JSON | REPORT_HTML)

/* Parses "csv", "json", "html", "all" or a comma list ("csv,html"). Returns 0, or -1 when a word is
 * unknown. */
int report_formats_parse(const char *s, unsigned *formats);

/* Everything known about one run, read in a handful of queries (opaque). */
struct report;

/* Loads run run_id (which must exist): the run, its counts, every account, every failed or skipped
 * message, the time spent per account and the throughput per minute. */
int report_load(struct state_conn *sc, int64_t run_id, struct report **out, struct fleet_err *err);
void report_free(struct report **r);

/* The files' content on a stream (see docs/reports.md for the columns and the JSON shape). */
int report_write_accounts_csv(const struct report *r, FILE *out, struct fleet_err *err);
int report_write_failures_csv(const struct report *r, FILE *out, struct fleet_err *err);
int report_write_json(const struct report *r, FILE *out, struct fleet_err *err);
/* One page, inline CSS and JS, no network fetch (a Content-Security-Policy forbids them). */
int report_write_html(const struct report *r, FILE *out, struct fleet_err *err);

/* Writes the files of `formats` into dir (created when missing, parents included), each through a
 * temporary file renamed into place, so a reader never sees half a file. Calls written(path, ctx)
 * for each file written (may be NULL). */
int report_write_dir(const struct report *r, const char *dir, unsigned formats,
		     void (*written)(const char *path, void *ctx), void *ctx, struct fleet_err *err);

/* A one-line summary ("run 1: 3 accounts: 2 done, 1 failed ...") for the terminal. */
void report_print_summary(const struct report *r, FILE *out);

/* ---- retry ----------------------------------------------------------------------------------- */

/* `retry`: requeues (queued now, attempts reset to 0, last error cleared, folders, ledger and
 * counters kept so nothing is copied twice) either every failed account of run_id (account NULL),
 * or the one account named by `account`: a job id ("42"; any run when run_id is 0) or "user1" /
 * "user1@host1" (in run_id, which must then be set). A running account is never requeued. Prints one
 * line per account requeued, and for an account that could not be, why. *count: accounts requeued.
 * An account name that matches several jobs is an error (FLEET_ERR_PERMANENT, code "AMBIGUOUS"). */
int report_retry(struct state_conn *sc, int64_t run_id, const char *account, FILE *out, long *count,
		 struct fleet_err *err);

#endif

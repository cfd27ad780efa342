/* ops/report.h: `imapfleet report`: a run loaded from the state store and written as
 * accounts.csv, failures.csv, accounts.json and one self-contained report.html. The cli command only
 * parses arguments and calls these; status and retry are in status.h and retry.h; the store handle is state/store.h.
 *
 * Everything here reads the database and may run while a run is going, from any host. Every string
 * that comes from the database (user names, host names, folder names, server error texts) is
 * untrusted: it is escaped for its output (HTML, JSON, CSV, terminal), invalid UTF-8 is replaced
 * by U+FFFD, and nothing is ever evaluated. Passwords are not in the database, so they cannot
 * appear in any output.
 *
 * Errors: functions return < 0 and fill err. Database errors keep the class and code of the state
 * layer (an unreachable store: FLEET_ERR_TRANSIENT, code STATE_ERR_CONNECTION); output errors are
 * FLEET_ERR_PERMANENT with code REPORT_ERR_IO. Not thread-safe (one thread per store and report).
 */
#ifndef IMAPFLEET_OPS_REPORT_H
#define IMAPFLEET_OPS_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "state/state.h"

/* err->code when a file or stream could not be written. */
#define REPORT_ERR_IO "REPORT_IO"

/* Chooses the run to show: run_id > 0 must exist; 0 picks the default (the active run, else the
 * newest one: state_report_default_run). Returns 1 and sets *out, 0 when there is no such run. */
int report_pick_run(struct state_conn *sc, int64_t run_id, int64_t *out, struct fleet_err *err);

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
/* A title of the operator's choosing for report.html ("Cutover ACME, batch 7"); copied; NULL or ""
 * keeps the default ("Run N"). */
void report_set_title(struct report *r, const char *title);

/* report.html reloads itself every `seconds` while the run goes on (`report --watch`, which rewrites
 * it that often); 0 (the default) never. A report of a run that has ended never reloads. */
void report_set_refresh(struct report *r, unsigned seconds);
/* 1 while the run goes on (accounts queued, parked included, or running), else 0. */
int report_run_goes_on(const struct report *r);

/* The files' content on a stream (see docs/reports.md for the columns and the JSON shape). */
int report_write_accounts_csv(const struct report *r, FILE *out, struct fleet_err *err);
int report_write_failures_csv(const struct report *r, FILE *out, struct fleet_err *err);
/* passes.csv: the run's pass history (docs/reports.md). */
int report_write_passes_csv(const struct report *r, FILE *out, struct fleet_err *err);
int report_write_json(const struct report *r, FILE *out, struct fleet_err *err);
/* One page, inline CSS and JS, no network fetch (a Content-Security-Policy forbids them). Its caps
 * keep the page's size bounded at any run size: */
/* accounts on the page (about 200 bytes each as data: some 2 MB at the cap); beyond it, those that need
 * attention first */
#define REPORT_HTML_ACCOUNTS_MAX 10000
/* table rows rendered by the server, what a reader without scripts sees (report.js pages by as many) */
#define REPORT_HTML_PAGE_ROWS 100
/* account chips per failure cause and per reason to leave out: the rest is counted, in the tables */
#define REPORT_HTML_CAUSE_ACCOUNTS    40
#define REPORT_HTML_LEFT_OUT_ACCOUNTS 40
/* message rows per failure cause (failures.csv and accounts.json list them all) */
#define REPORT_HTML_CAUSE_MESSAGES 200
/* a summary card's value or line, built before it is written: fixed text and a few fmt_* numbers
 * (ops/render.h), the longest ("Messages copied") under 300 bytes */
#define REPORT_HTML_CARD_TEXT_MAX 512
/* The throughput chart: an SVG viewBox of W x H units (the browser scales it to the panel) with
 * margins L, R, T, B for the axis labels; at most BARS bars (minutes are grouped beyond, so the bars
 * stay wide enough to point at), and fewer than MINBAR buckets are drawn centred at MINBAR's width. */
#define REPORT_CHART_W	    680
#define REPORT_CHART_H	    230
#define REPORT_CHART_L	    52
#define REPORT_CHART_R	    12
#define REPORT_CHART_T	    12
#define REPORT_CHART_B	    30
#define REPORT_CHART_BARS   120
#define REPORT_CHART_MINBAR 14
int report_write_html(const struct report *r, FILE *out, struct fleet_err *err);

/* Writes the files of `formats` into dir (created when missing, parents included), each through a
 * temporary file renamed into place, so a reader never sees half a file. Calls written(path, ctx)
 * for each file written (may be NULL). */
int report_write_dir(const struct report *r, const char *dir, unsigned formats,
		     void (*written)(const char *path, void *ctx), void *ctx, struct fleet_err *err);

/* A one-line summary ("run 1: 3 accounts: 2 done, 1 failed ...") for the terminal. */
void report_print_summary(const struct report *r, FILE *out);

#endif

/* ops/report_private.h: a run loaded in memory (struct report), shared by the loader (report.c),
 * the format writers (report_csv.c, report_json.c, report_html.c) and status.c. Private to ops/. */
#ifndef IMAPFLEET_OPS_REPORT_PRIVATE_H
#define IMAPFLEET_OPS_REPORT_PRIVATE_H

#include <stdint.h>

#include "ops/render.h"
#include "scheduler/progress.h"
#include "state/state.h"

/* ---- runs ------------------------------------------------------------------------------------- */

struct run_info {
	int64_t id;
	char *name, *state;
	int64_t created_ms, updated_ms;
	struct state_run_counts counts;
	/* in order, the last the current pass; kind points at a string literal, not into a result */
	struct state_pass_report *passes;
	size_t npasses, passes_alloc;
};

struct run_list {
	struct run_info *v;
	size_t n, alloc;
};

/* ---- a run loaded ----------------------------------------------------------------------------- */

struct report_msg {
	/* The state's row as it was read (m.error: "no reason recorded" when none was); its strings
	 * point into `strings` (one allocation, owned). */
	struct state_failed_msg m;
	char *strings;
	char *group;  /* the reason with its numbers replaced by N: what messages are grouped by */
	size_t cause; /* index into report.causes */
};

struct report_acct {
	/* The state's row as it was read; its strings point into `strings` (one allocation, owned). */
	struct state_job_report j;
	char *strings;
	long attempts_total;
	int64_t bytes_skipped, bytes_failed; /* of this run's failed and skipped messages (report.msgs) */
	int64_t busy_ms;
	size_t msg_first, msg_count; /* this account's rows in report.msgs (sorted by account) */
};

/* A group of failures: the accounts whose last error has the same class and code (account level), or
 * the messages failed or skipped for the same reason (message level). */
struct report_cause {
	int account_level;
	enum state_msg_state mstate; /* message level */
	char *cls, *code;	     /* account level */
	char *text;		     /* message level: the reason; account level: the first account's text */
	long count;		     /* accounts or messages */
	int64_t bytes;		     /* message level */
	size_t *accts;		     /* indices into report.accts, each once */
	size_t naccts, accts_alloc;
	size_t *msgs; /* message level: indices into report.msgs */
	size_t nmsgs, msgs_alloc;
};

/* What is left of a run that goes on, the whole run's on every host (state_report_run_bytes through
 * the live display's computation, progress_bytes_of and progress_eta_of); the rate is the ledger's
 * over the last few minutes of the current pass. */
#define REPORT_RATE_WINDOW_MS 300000
/* A rate over less than this (a pass that began a moment ago) is not shown: too noisy. */
#define REPORT_RATE_MIN_WINDOW_MS 10000
struct report_remaining {
	int live;		 /* the run goes on: accounts queued (not parked) or running */
	struct progress_bytes b; /* b.known = 0: nothing measured yet */
	double rate;		 /* bytes per second, 0 unknown */
	int64_t rate_window_ms;	 /* measured over this long */
	double eta_s;		 /* < 0 unknown */
	long busy;		 /* accounts running or queued, not parked */
};

struct report {
	struct run_info run; /* the run, its counts and its pass history (run_list_load) */
	char *title;	     /* --title, or NULL */
	int64_t generated_ms;
	long total;
	int64_t bytes_skipped, bytes_failed, first_start_ms, last_finish_ms, last_update_ms, busy_ms;
	struct report_acct *accts;
	size_t naccts, accts_alloc;
	struct report_msg *msgs;
	size_t nmsgs, msgs_alloc;
	struct report_cause *causes;
	size_t ncauses, causes_alloc;
	struct state_throughput_point *tp;
	size_t ntp;
	struct report_remaining remaining;
	unsigned refresh_s; /* report.html reloads itself this often while the run goes on (0: never) */
};

void run_info_release(struct run_info *ri);
void run_list_release(struct run_list *l);
int run_list_load(struct state_conn *sc, int64_t run_id, struct run_list *l, struct fleet_err *err);
const char *run_progress(const char *run_state, const struct state_run_counts *c);
long counts_total(const struct state_run_counts *c);
struct report_acct *find_acct(const struct report *r, int64_t id);
int64_t run_elapsed_ms(const struct report *r);
int64_t acct_duration_ms(const struct report_acct *a);
const char *progress_label(const struct report *r);
const char *progress_css(const struct report *r);
/* JSON shared by status and the reports, of an account's row: its last error ({class, code, text},
 * null when none), its pass ({number, copied, already_there, skipped, failed}, null for pass 0),
 * its latest verify ({verdict, verified_at, on_source, on_destination}, null when never verified);
 * and the array of a run's passes. */
json_t *jv_job_error(const struct state_job_report *j);
json_t *jv_job_pass(const struct state_job_report *j);
json_t *jv_job_verify(const struct state_job_report *j);
json_t *jv_passes(const struct state_pass_report *p, size_t n);

/* ops/report.css and ops/report.js, embedded at build time (scripts/embed.sh -> ops/report_assets.c). */
extern const char report_css[];
extern const char report_js[];

#endif

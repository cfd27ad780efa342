/* ops/render.h: the output writer and the escapers that status, report and retry print through,
 * and their formatting helpers. Private to ops/.
 *
 * struct rw buffers output and remembers the first write error, checked once by rw_finish. Every
 * string that comes from the database goes through one of the escapers of common/escape.h: HTML
 * text, a CSV cell (with the spreadsheet-formula guard) or terminal text, or into a jansson value
 * (jv_*); invalid UTF-8 becomes U+FFFD (on a terminal \xHH). The fmt_* helpers write into a caller's char[TBUF] and return it.
 */
#ifndef IMAPFLEET_OPS_RENDER_H
#define IMAPFLEET_OPS_RENDER_H

#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/err.h"
#include "state/state.h"

/* Caps of the texts ops/ builds (fleet_buf caps; one place for them). A text built with
 * fleet_buf_add* that passes its cap is never used cut: a notice that says so stands instead. */
#define RW_FLUSH_AT (64 * 1024)
#define RW_MAX	    (4 * RW_FLUSH_AT)		/* what the output writer holds */
#define OPS_LINE_MAX ((size_t)16 * 1024)	/* one preflight reason, warning or detail */
#define OPS_LABEL_MAX ((size_t)4096)		/* an account's label, a capability list */
#define OPS_REASONS_MAX ((size_t)1 << 20)	/* the reasons cell of preflight.csv */
#define OPS_SUMMARY_MAX ((size_t)64 * 1024) /* the message summary cell of accounts.csv */
/* Room for n bytes through an escaper, so that an escape never meets its cap (common/escape.h: at
 * most 6 bytes out per byte in for HTML, JSON and CSV; the terminal's, 8 with room to spare). */
#define OPS_ESCAPED_MAX(n) (6 * (size_t)(n) + 16)
#define OPS_TERM_ESCAPED_MAX(n) (8 * (size_t)(n) + 16)

/* Buffers output and remembers the first write error (checked once at the end). */
struct rw {
	FILE *f;
	struct fleet_buf b;
	int failed;
};

#define TBUF 40

void rw_init(struct rw *w, FILE *f);
void rw_flush(struct rw *w);
void rw_put(struct rw *w, const char *s, size_t n);
void rw_puts(struct rw *w, const char *s);
void rw_printf(struct rw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rw_finish(struct rw *w, const char *what, struct fleet_err *err);
void rw_html(struct rw *w, const char *s);
void rw_csv(struct rw *w, const char *s);
size_t rw_term(struct rw *w, const char *s);
void rw_pad(struct rw *w, size_t used, size_t width);
const char *fmt_time(char buf[TBUF], int64_t ms, int iso);
const char *fmt_updated(char buf[TBUF], int64_t ms, int64_t now_ms);
const char *fmt_clock(char buf[TBUF], int64_t ms, int with_date);
const char *fmt_bytes(char buf[TBUF], int64_t n);
const char *fmt_duration(char buf[TBUF], int64_t ms);
const char *fmt_count(char buf[TBUF], int64_t n);
const char *msg_state_name(enum state_msg_state s);
/* Why later passes leave an account out, in words, from state_job_report.left_out ("credential",
 * "removed", "cancelled"); "" for "". */
const char *left_out_text(const char *left_out);
/* A parked account (state_job_report.parked_until_ms, park_reason, eta_ms): "parked (daily) until
 * 2026-12-04 07:10:00 UTC, ETA 2026-12-06 07:10:00 UTC" ("" when not parked); jv_parked gives
 * it as a JSON object {"until", "reason", "eta"} (null when not parked). */
#define PBUF 128
const char *fmt_parked(char buf[PBUF], int64_t until_ms, const char *reason, int64_t eta_ms);

/* JSON documents are built with jansson (no JSON assembled by hand). Values from the database
 * pass through these: jv_str gives a string whatever the bytes (invalid UTF-8 as U+FFFD; NULL as
 * ""), jv_opt null for NULL or "", jv_time the ISO time or null for 0, jv_parked the parked
 * object or null. jv_write dumps root (2-space indent, then a newline) to f and releases it. */
#include <jansson.h>
json_t *jv_str(const char *s);
json_t *jv_opt(const char *s);
json_t *jv_time(int64_t ms);
json_t *jv_parked(int64_t until_ms, const char *reason, int64_t eta_ms);
json_t *jv_seconds(int64_t ms);
int jv_write(json_t *root, FILE *f, const char *what, struct fleet_err *err);
/* Appends v on one line to w (for documents streamed a part at a time) and releases v. */
void rw_jv(struct rw *w, json_t *v);

#endif

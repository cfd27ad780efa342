/* ops/render.c: the operator tools' output writer and escapers (see render.h). */
#include "ops/render.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/escape.h"
#include "common/util.h"
#include "ops/report.h"

/* ---- the output writer ---------------------------------------------------------------------- */

void rw_init(struct rw *w, FILE *f)
{
	w->f = f;
	fleet_buf_init(&w->b, RW_MAX);
	w->failed = 0;
}

void rw_flush(struct rw *w)
{
	if (w->b.len && !w->failed && fwrite(w->b.data, 1, w->b.len, w->f) != w->b.len)
		w->failed = 1;
	fleet_buf_reset(&w->b);
}

void rw_put(struct rw *w, const char *s, size_t n)
{
	if (w->b.len + n > RW_FLUSH_AT)
		rw_flush(w);
	if (n > RW_FLUSH_AT) {
		if (!w->failed && fwrite(s, 1, n, w->f) != n)
			w->failed = 1;
		return;
	}
	if (fleet_buf_append(&w->b, s, n) < 0)
		w->failed = 1;
}

void rw_puts(struct rw *w, const char *s)
{
	rw_put(w, s, strlen(s));
}

void rw_printf(struct rw *w, const char *fmt, ...)
{
	va_list ap;

	if (w->b.len > RW_FLUSH_AT)
		rw_flush(w);
	va_start(ap, fmt);
	if (fleet_buf_vappendf(&w->b, fmt, ap) < 0)
		w->failed = 1;
	va_end(ap);
}

int rw_finish(struct rw *w, const char *what, struct fleet_err *err)
{
	int failed;

	rw_flush(w);
	fleet_buf_release(&w->b);
	failed = w->failed || fflush(w->f) != 0 || ferror(w->f);
	if (failed)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_IO,
				     "could not write %s: %s", what, strerror(errno ? errno : EIO));
	return 0;
}

/* Writes s through one of common/escape.h's escapers (into a buffer of its own: a text from the
 * database may be longer than what the writer keeps). */
static void rw_escaped(struct rw *w, int (*esc)(struct fleet_buf *, const char *), const char *s)
{
	struct fleet_buf tmp = FLEET_BUF_INIT(OPS_ESCAPED_MAX(s ? strlen(s) : 0));

	if (esc(&tmp, s) < 0)
		w->failed = 1;
	else
		rw_put(w, tmp.data ? tmp.data : "", tmp.len);
	fleet_buf_release(&tmp);
}

void rw_html(struct rw *w, const char *s)
{
	rw_escaped(w, fleet_escape_html, s);
}



void rw_csv(struct rw *w, const char *s)
{
	rw_escaped(w, fleet_escape_csv, s);
}

/* Terminal text through the one terminal escaper (common/escape.h). Returns the number of code
 * points written (the width used for padding). */
size_t rw_term(struct rw *w, const char *s)
{
	size_t len = s ? strlen(s) : 0, cols = 0;
	struct fleet_buf tmp = FLEET_BUF_INIT(OPS_TERM_ESCAPED_MAX(len));

	if (fleet_escape_term(&tmp, s ? s : "", len) < 0)
		w->failed = 1;
	for (size_t i = 0; i < tmp.len; i++)
		cols += ((unsigned char)tmp.data[i] & 0xc0) != 0x80;
	rw_put(w, tmp.data ? tmp.data : "", tmp.len);
	fleet_buf_release(&tmp);
	return cols;
}

void rw_pad(struct rw *w, size_t used, size_t width)
{
	while (used++ < width)
		rw_put(w, " ", 1);
}

/* ---- formatting helpers --------------------------------------------------------------------- */

/* ms since the epoch in UTC: "2024-05-01T12:00:00Z" (iso 1), "2024-05-01 12:00:00" (0) or
 * "05-01 12:00:00" (2); "" for 0. */
const char *fmt_time(char buf[TBUF], int64_t ms, int iso)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	buf[0] = '\0';
	if (ms <= 0 || !gmtime_r(&t, &tm))
		return buf;
	strftime(buf, TBUF,
		 iso == 1   ? "%Y-%m-%dT%H:%M:%SZ"
		 : iso == 2 ? "%m-%d %H:%M:%S"
			    : "%Y-%m-%d %H:%M:%S",
		 &tm);
	return buf;
}

/* For a table cell: "20:54:53" on the day of the report, "11-23 20:54" before (UTC). */
const char *fmt_updated(char buf[TBUF], int64_t ms, int64_t now_ms)
{
	time_t t = (time_t)(ms / 1000), n = (time_t)(now_ms / 1000);
	struct tm tm, tn;

	buf[0] = '\0';
	if (ms <= 0 || !gmtime_r(&t, &tm) || !gmtime_r(&n, &tn))
		return buf;
	if (tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday)
		strftime(buf, TBUF, "%H:%M:%S", &tm);
	else
		strftime(buf, TBUF, tm.tm_year == tn.tm_year ? "%m-%d %H:%M" : "%Y-%m-%d", &tm);
	return buf;
}

const char *fmt_clock(char buf[TBUF], int64_t ms, int with_date)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	buf[0] = '\0';
	if (gmtime_r(&t, &tm))
		strftime(buf, TBUF, with_date ? "%m-%d %H:%M" : "%H:%M", &tm);
	return buf;
}

/* Sizes in binary units, as everything prints them (common/util.h fleet_human_size). */
const char *fmt_bytes(char buf[TBUF], int64_t n)
{
	fleet_human_size(n > 0 ? (uint64_t)n : 0, buf, TBUF);
	return buf;
}

const char *fmt_duration(char buf[TBUF], int64_t ms)
{
	int64_t s = ms / 1000;

	if (ms <= 0)
		snprintf(buf, TBUF, "-");
	else if (ms < 60000)
		snprintf(buf, TBUF, "%.1f s", (double)ms / 1000.0);
	else if (s < 3600)
		snprintf(buf, TBUF, "%lldm %02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(buf, TBUF, "%lldh %02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	return buf;
}

/* 1234567 -> "1,234,567" (display only: data-v attributes and files keep plain numbers). */
const char *fmt_count(char buf[TBUF], int64_t n)
{
	char digits[TBUF];
	int len = snprintf(digits, sizeof(digits), "%lld", (long long)(n < 0 ? -n : n));
	size_t o = 0;

	if (n < 0)
		buf[o++] = '-';
	for (int i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

const char *msg_state_name(enum state_msg_state s)
{
	return s == STATE_MSG_SKIPPED ? "skipped" : s == STATE_MSG_COPIED ? "copied" : "failed";
}


/* A parked account's reason as stored ("daily", "throttled"); anything else is shown as "?". */
static const char *park_reason_word(const char *reason)
{
	return reason && (strcmp(reason, "daily") == 0 || strcmp(reason, "throttled") == 0) ? reason : "?";
}

const char *fmt_parked(char buf[PBUF], int64_t until_ms, const char *reason, int64_t eta_ms)
{
	char t1[TBUF], t2[TBUF];

	buf[0] = '\0';
	if (until_ms <= 0)
		return buf;
	if (eta_ms > 0)
		snprintf(buf, PBUF, "parked (%s) until %s UTC, ETA %s UTC", park_reason_word(reason),
			 fmt_time(t1, until_ms, 0), fmt_time(t2, eta_ms, 0));
	else
		snprintf(buf, PBUF, "parked (%s) until %s UTC", park_reason_word(reason), fmt_time(t1, until_ms, 0));
	return buf;
}


const char *left_out_text(const char *left_out)
{
	if (!left_out || !left_out[0])
		return "";
	if (strcmp(left_out, "credential") == 0)
		return "credential refused and not changed since (imapfleet retry --account ID tries it once more)";
	if (strcmp(left_out, "removed") == 0)
		return "removed from the accounts file";
	if (strcmp(left_out, "cancelled") == 0)
		return "cancelled (imapfleet retry --account ID undoes it)";
	return left_out;
}

/* ---- JSON through jansson -------------------------------------------------------------------- */

json_t *jv_str(const char *s)
{
	char *clean = fleet_utf8_sanitize(s ? s : "");
	json_t *v = json_string(clean);

	xfree(&clean);
	return v ? v : json_string("");
}

json_t *jv_opt(const char *s)
{
	return s && s[0] ? jv_str(s) : json_null();
}

json_t *jv_time(int64_t ms)
{
	char t[TBUF];

	return ms > 0 ? json_string(fmt_time(t, ms, 1)) : json_null();
}

json_t *jv_parked(int64_t until_ms, const char *reason, int64_t eta_ms)
{
	if (until_ms <= 0)
		return json_null();
	return json_pack("{s:o, s:s, s:o}", "until", jv_time(until_ms), "reason", park_reason_word(reason), "eta",
			 jv_time(eta_ms));
}

/* Milliseconds as seconds with one decimal. */
json_t *jv_seconds(int64_t ms)
{
	return json_real((double)(ms / 100) / 10.0);
}

/* Appends jansson's text of v (flags: json_dumps') to w with < > & U+2028 U+2029 written as
 * \uXXXX (outside strings JSON has none of them), so that it is also safe inside HTML; releases v. */
static void put_jv(struct rw *w, json_t *v, size_t flags)
{
	char *text = v ? json_dumps(v, flags) : NULL;

	if (!text)
		w->failed = 1;
	for (const char *s = text ? text : ""; *s; s++) {
		const char *rep = *s == '<' ? "\\u003c" : *s == '>' ? "\\u003e" : *s == '&' ? "\\u0026" : NULL;

		if (!rep && (unsigned char)s[0] == 0xe2 && (unsigned char)s[1] == 0x80 &&
		    ((unsigned char)s[2] == 0xa8 || (unsigned char)s[2] == 0xa9)) {
			rep = (unsigned char)s[2] == 0xa8 ? "\\u2028" : "\\u2029";
			s += 2;
		}
		if (rep)
			rw_puts(w, rep);
		else
			rw_put(w, s, 1);
	}
	free(text);
	json_decref(v);
}

void rw_jv(struct rw *w, json_t *v)
{
	put_jv(w, v, JSON_REAL_PRECISION(15));
}

int jv_write(json_t *root, FILE *f, const char *what, struct fleet_err *err)
{
	struct rw w;

	rw_init(&w, f);
	put_jv(&w, root, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	rw_put(&w, "\n", 1);
	return rw_finish(&w, what, err);
}

/* scheduler/report.c: `status`, `report` (CSV, JSON, one HTML page) and `retry` over the state store.
 *
 * Layout of this file: an output writer with the escapers (HTML, JSON, CSV, terminal), the store,
 * loading a run into memory, then one renderer per output. Every string that comes from the
 * database goes through an escaper; the renderers print numbers and fixed text only otherwise.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "scheduler/report.h"
#include "state/cluster.h"

/* ---- the output writer ---------------------------------------------------------------------- */

#define RW_FLUSH_AT (64 * 1024)
#define RW_MAX	    (4 * RW_FLUSH_AT)

/* Buffers output and remembers the first write error (checked once at the end). */
struct rw {
	FILE *f;
	struct fleet_buf b;
	int failed;
};

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

static void rw_init(struct rw *w, FILE *f)
{
	w->f = f;
	fleet_buf_init(&w->b, RW_MAX);
	w->failed = 0;
}

static void rw_flush(struct rw *w)
{
	if (w->b.len && !w->failed && fwrite(w->b.data, 1, w->b.len, w->f) != w->b.len)
		w->failed = 1;
	fleet_buf_reset(&w->b);
}

static void rw_put(struct rw *w, const char *s, size_t n)
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

static void rw_puts(struct rw *w, const char *s)
{
	rw_put(w, s, strlen(s));
}

static void rw_printf(struct rw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rw_printf(struct rw *w, const char *fmt, ...)
{
	va_list ap;

	if (w->b.len > RW_FLUSH_AT)
		rw_flush(w);
	va_start(ap, fmt);
	if (fleet_buf_vappendf(&w->b, fmt, ap) < 0)
		w->failed = 1;
	va_end(ap);
}

static int rw_finish(struct rw *w, const char *what, struct fleet_err *err)
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

/* Length (1..4) of the well-formed UTF-8 sequence at s and its code point, 0 when ill-formed
 * (overlong forms, surrogates and values above U+10FFFF included). s is NUL-terminated, so looking
 * at continuation bytes stops at the terminator. */
static size_t utf8_seq(const unsigned char *s, uint32_t *cp)
{
	unsigned char c = s[0];
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		if ((s[1] & 0xc0) != 0x80)
			return 0;
		*cp = ((uint32_t)(c & 0x1f) << 6) | (s[1] & 0x3f);
		return 2;
	}
	if (c >= 0xe0 && c <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		v = ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
		if (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))
			return 0;
		*cp = v;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		v = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
		    ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
		if (v < 0x10000 || v > 0x10ffff)
			return 0;
		*cp = v;
		return 4;
	}
	return 0;
}

/* C0 and C1 controls and DEL (tab and line feed are the caller's choice). */
static int is_control(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0);
}

/* Text for an HTML element or a quoted attribute. */
static void rw_html(struct rw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	while (*p) {
		uint32_t cp;
		size_t n = utf8_seq(p, &cp);

		if (n == 0) {
			rw_puts(w, REPLACEMENT);
			p++;
			continue;
		}
		switch (cp) {
		case '&': rw_puts(w, "&amp;"); break;
		case '<': rw_puts(w, "&lt;"); break;
		case '>': rw_puts(w, "&gt;"); break;
		case '"': rw_puts(w, "&quot;"); break;
		case '\'': rw_puts(w, "&#39;"); break;
		default:
			if (is_control(cp) && cp != '\t' && cp != '\n')
				rw_puts(w, REPLACEMENT);
			else
				rw_put(w, (const char *)p, n);
		}
		p += n;
	}
}

/* A JSON string, quotes included. Also safe inside HTML: < > & are escaped, and U+2028/2029 too. */
static void rw_json(struct rw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	rw_put(w, "\"", 1);
	while (*p) {
		uint32_t cp;
		size_t n = utf8_seq(p, &cp);

		if (n == 0) {
			rw_puts(w, "\\ufffd");
			p++;
			continue;
		}
		switch (cp) {
		case '"': rw_puts(w, "\\\""); break;
		case '\\': rw_puts(w, "\\\\"); break;
		case '\n': rw_puts(w, "\\n"); break;
		case '\r': rw_puts(w, "\\r"); break;
		case '\t': rw_puts(w, "\\t"); break;
		case '<': rw_puts(w, "\\u003c"); break;
		case '>': rw_puts(w, "\\u003e"); break;
		case '&': rw_puts(w, "\\u0026"); break;
		default:
			if (is_control(cp) || cp == 0x2028 || cp == 0x2029)
				rw_printf(w, "\\u%04x", (unsigned)cp);
			else
				rw_put(w, (const char *)p, n);
		}
		p += n;
	}
	rw_put(w, "\"", 1);
}

/* null for an empty string, else the JSON string. */
static void rw_json_opt(struct rw *w, const char *s)
{
	if (s && s[0])
		rw_json(w, s);
	else
		rw_puts(w, "null");
}

/* A CSV text field, always quoted (RFC 4180). A field that a spreadsheet would read as a formula
 * (= + - @ or a tab or CR first) gets a leading apostrophe (OWASP's advice on CSV injection). */
static void rw_csv(struct rw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	rw_put(w, "\"", 1);
	if (strchr("=+-@\t\r", *p) && *p)
		rw_put(w, "'", 1);
	while (*p) {
		uint32_t cp;
		size_t n = utf8_seq(p, &cp);

		if (n == 0) {
			rw_puts(w, REPLACEMENT);
			p++;
			continue;
		}
		if (cp == '"')
			rw_puts(w, "\"\"");
		else if (is_control(cp) && cp != '\t' && cp != '\n' && cp != '\r')
			rw_puts(w, REPLACEMENT);
		else
			rw_put(w, (const char *)p, n);
		p += n;
	}
	rw_put(w, "\"", 1);
}

/* Terminal text: controls (escape sequences) and ill-formed bytes become '?'. Returns the number of
 * code points written (the width used for padding). */
static size_t rw_term(struct rw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t cols = 0;

	while (*p) {
		uint32_t cp;
		size_t n = utf8_seq(p, &cp);

		if (n == 0 || is_control(cp)) {
			rw_put(w, "?", 1);
			p += n ? n : 1;
		} else {
			rw_put(w, (const char *)p, n);
			p += n;
		}
		cols++;
	}
	return cols;
}

static void rw_pad(struct rw *w, size_t used, size_t width)
{
	while (used++ < width)
		rw_put(w, " ", 1);
}

/* ---- formatting helpers --------------------------------------------------------------------- */

#define TBUF 40

/* ms since the epoch in UTC: "2024-05-01T12:00:00Z" (iso 1), "2024-05-01 12:00:00" (0) or
 * "05-01 12:00:00" (2); "" for 0. */
static const char *fmt_time(char buf[TBUF], int64_t ms, int iso)
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
static const char *fmt_updated(char buf[TBUF], int64_t ms, int64_t now_ms)
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

static const char *fmt_clock(char buf[TBUF], int64_t ms, int with_date)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	buf[0] = '\0';
	if (gmtime_r(&t, &tm))
		strftime(buf, TBUF, with_date ? "%m-%d %H:%M" : "%H:%M", &tm);
	return buf;
}

/* Sizes in binary units, as `run` prints them ("30.0 MB" = 30 * 1048576 bytes). */
static const char *fmt_bytes(char buf[TBUF], int64_t n)
{
	double v = (double)n;

	if (n < 1024)
		snprintf(buf, TBUF, "%lld B", (long long)n);
	else if (n < 1024 * 1024)
		snprintf(buf, TBUF, "%.1f KB", v / 1024.0);
	else if (n < 1024LL * 1024 * 1024)
		snprintf(buf, TBUF, "%.1f MB", v / 1048576.0);
	else
		snprintf(buf, TBUF, "%.2f GB", v / 1073741824.0);
	return buf;
}

static const char *fmt_duration(char buf[TBUF], int64_t ms)
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
static const char *fmt_count(char buf[TBUF], int64_t n)
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

static const char *msg_state_name(enum state_msg_state s)
{
	return s == STATE_MSG_SKIPPED ? "skipped" : s == STATE_MSG_COPIED ? "copied" : "failed";
}

/* ---- the store -------------------------------------------------------------------------------- */

struct report_store {
	struct state_conn *sc;
	struct state_cluster *cluster;
	char *conninfo;
};

int report_store_open(const char *state_arg, struct report_store **out, struct fleet_err *err)
{
	struct report_store *rs = xcalloc(1, sizeof(*rs));
	char *probe = NULL;

	*out = NULL;
	if (state_location_resolve(state_arg, &probe) == STATE_LOC_EMBEDDED) {
		struct stat st;

		/* Reading must not create a cluster: a wrong directory would look like an empty store. */
		if (stat(".imapfleet/pg/PG_VERSION", &st) < 0) {
			xfree(&rs);
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_NO_STORE,
				      "no state store here: ./.imapfleet/pg does not exist");
			fleet_err_detail(
			    err, "run this from the directory where 'imapfleet run' ran, or pass --state "
				 "URL (or set IMAPFLEET_STATE)");
			return -1;
		}
	}
	if (probe) {
		OPENSSL_cleanse(probe, strlen(probe));
		xfree(&probe);
	}
	if (state_location_open(state_arg, NULL, &rs->conninfo, &rs->cluster, err) < 0 ||
	    state_conn_open(rs->conninfo, &rs->sc, err) < 0) {
		report_store_close(&rs);
		return -1;
	}
	*out = rs;
	return 0;
}

struct state_conn *report_store_conn(struct report_store *rs)
{
	return rs->sc;
}

void report_store_close(struct report_store **rsp)
{
	struct report_store *rs = *rsp;
	struct fleet_err err;

	if (!rs)
		return;
	state_conn_close(&rs->sc);
	if (rs->cluster && state_cluster_release(&rs->cluster, &err) < 0)
		log_warn("%s", err.message);
	if (rs->conninfo) {
		OPENSSL_cleanse(rs->conninfo, strlen(rs->conninfo));
		xfree(&rs->conninfo);
	}
	xfree(rsp);
}

/* ---- runs ------------------------------------------------------------------------------------- */

struct run_info {
	int64_t id;
	char *name, *state;
	int64_t created_ms, updated_ms;
	struct state_run_counts counts;
};

struct run_list {
	struct run_info *v;
	size_t n, alloc;
};

static int run_list_cb(const struct state_run_report *row, void *ctx)
{
	struct run_list *l = ctx;
	struct run_info *ri;

	l->v = xgrow(l->v, sizeof(*l->v), l->n + 1, &l->alloc);
	ri = &l->v[l->n++];
	memset(ri, 0, sizeof(*ri));
	ri->id = row->run_id;
	ri->name = xstrdup(row->name);
	ri->state = xstrdup(row->state);
	ri->created_ms = row->created_at_ms;
	ri->updated_ms = row->updated_at_ms;
	return 0;
}

static void run_list_release(struct run_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		xfree(&l->v[i].name);
		xfree(&l->v[i].state);
	}
	xfree(&l->v);
	l->n = l->alloc = 0;
}

/* Runs (all or one) with their counts. */
static int run_list_load(struct state_conn *sc, int64_t run_id, struct run_list *l, struct fleet_err *err)
{
	memset(l, 0, sizeof(*l));
	if (state_report_runs(sc, run_id, run_list_cb, l, err) < 0)
		return -1;
	for (size_t i = 0; i < l->n; i++)
		if (state_report_run_counts(sc, l->v[i].id, &l->v[i].counts, err) < 0)
			return -1;
	return 0;
}

/* Where a run stands, from its accounts (the run row stays "active" until it is cancelled). */
static const char *run_progress(const char *run_state, const struct state_run_counts *c)
{
	long total = 0;

	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		total += c->jobs[s];
	if (strcmp(run_state, "cancelled") == 0)
		return "cancelled";
	if (total == 0)
		return "no accounts";
	if (c->jobs[STATE_JOB_QUEUED] + c->jobs[STATE_JOB_RUNNING] > 0)
		return "in progress";
	return c->jobs[STATE_JOB_FAILED] || c->jobs[STATE_JOB_PARTIAL] ? "finished with failures" : "finished";
}

static long counts_total(const struct state_run_counts *c)
{
	long t = 0;

	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		t += c->jobs[s];
	return t;
}

int report_pick_run(struct state_conn *sc, int64_t run_id, int64_t *out, struct fleet_err *err)
{
	struct run_list l;
	int found;

	if (run_id <= 0)
		return state_report_default_run(sc, out, err);
	memset(&l, 0, sizeof(l));
	if (state_report_runs(sc, run_id, run_list_cb, &l, err) < 0) {
		run_list_release(&l);
		return -1;
	}
	found = l.n == 1;
	if (found)
		*out = run_id;
	run_list_release(&l);
	return found;
}

/* ---- loading a run ---------------------------------------------------------------------------- */

struct report_msg {
	int64_t job_id;
	char *reason; /* as recorded */
	char *group;  /* the reason with its numbers replaced by N: what messages are grouped by */
	char *folder;
	uint32_t uidvalidity, uid;
	uint64_t size;
	enum state_msg_state state;
	size_t cause; /* index into report.causes */
};

struct report_acct {
	int64_t id;
	char *host1, *user1, *host2, *user2;
	unsigned port1, port2;
	enum state_job_state state;
	int attempts, max_attempts;
	long attempts_total;
	int64_t folders, msgs_copied, bytes_copied, msgs_skipped, msgs_failed, bytes_skipped, bytes_failed;
	char *err_class, *err_code, *err_text;
	int64_t started_ms, finished_ms, updated_ms, busy_ms;
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

struct report {
	int64_t run_id;
	char *run_name, *run_state;
	int64_t run_created_ms, generated_ms;
	struct state_run_counts counts;
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
};

static int load_job_cb(const struct state_job_report *j, void *ctx)
{
	struct report *r = ctx;
	struct report_acct *a;

	r->accts = xgrow(r->accts, sizeof(*r->accts), r->naccts + 1, &r->accts_alloc);
	a = &r->accts[r->naccts++];
	memset(a, 0, sizeof(*a));
	a->id = j->job_id;
	a->host1 = xstrdup(j->host1);
	a->user1 = xstrdup(j->user1);
	a->host2 = xstrdup(j->host2);
	a->user2 = xstrdup(j->user2);
	a->port1 = j->port1;
	a->port2 = j->port2;
	a->state = j->state;
	a->attempts = j->attempts;
	a->max_attempts = j->max_attempts;
	a->folders = j->folders;
	a->msgs_copied = j->msgs_copied;
	a->bytes_copied = j->bytes_copied;
	a->msgs_skipped = j->msgs_skipped;
	a->msgs_failed = j->msgs_failed;
	a->err_class = xstrdup(j->last_error_class);
	a->err_code = xstrdup(j->last_error_code);
	a->err_text = xstrdup(j->last_error_text);
	a->started_ms = j->started_at_ms;
	a->finished_ms = j->finished_at_ms;
	a->updated_ms = j->updated_at_ms;
	return 0;
}

static int cmp_acct_id(const void *key, const void *elem)
{
	int64_t k = *(const int64_t *)key, id = ((const struct report_acct *)elem)->id;

	return k < id ? -1 : k > id;
}

static struct report_acct *find_acct(const struct report *r, int64_t id)
{
	return bsearch(&id, r->accts, r->naccts, sizeof(*r->accts), cmp_acct_id);
}

static int load_time_cb(const struct state_job_time *t, void *ctx)
{
	struct report *r = ctx;
	struct report_acct *a = find_acct(r, t->job_id);

	if (a) {
		a->busy_ms = t->busy_ms;
		a->attempts_total = t->attempts_total;
	}
	return 0;
}

/* "message of 107745 bytes is larger than --maxsize 102400" -> "message of N bytes is larger than
 * --maxsize N": a number standing alone (not inside a word like IMAP4rev1) is replaced, so that
 * reasons that differ only by a size, a UID or a count fall into one group. */
static char *reason_group(const char *reason)
{
	struct fleet_buf b = FLEET_BUF_INIT(SIZE_MAX / 2);
	const char *p = reason;
	char *out;

	while (*p) {
		size_t n = strspn(p, "0123456789");
		int alone =
		    n > 0 && (p == reason || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[n]);

		if (alone) {
			fleet_buf_append(&b, "N", 1);
			p += n;
		} else {
			size_t k = n ? n : 1;

			fleet_buf_append(&b, p, k);
			p += k;
		}
	}
	out = fleet_buf_detach(&b, NULL);
	return out ? out : xstrdup("");
}

static int load_msg_cb(const struct state_failed_msg *m, void *ctx)
{
	struct report *r = ctx;
	struct report_msg *x;

	r->msgs = xgrow(r->msgs, sizeof(*r->msgs), r->nmsgs + 1, &r->msgs_alloc);
	x = &r->msgs[r->nmsgs++];
	memset(x, 0, sizeof(*x));
	x->job_id = m->job_id;
	x->reason = xstrdup(m->error[0] ? m->error : "no reason recorded");
	x->group = reason_group(x->reason);
	x->folder = xstrdup(m->src_folder);
	x->uidvalidity = m->src_uidvalidity;
	x->uid = m->src_uid;
	x->size = m->size;
	x->state = m->state;
	return 0;
}

static int cmp_msg(const void *a, const void *b)
{
	const struct report_msg *x = a, *y = b;
	int c;

	if (x->job_id != y->job_id)
		return x->job_id < y->job_id ? -1 : 1;
	if (x->state != y->state)
		return x->state < y->state ? -1 : 1;
	if ((c = strcmp(x->group, y->group)) != 0)
		return c;
	if ((c = strcmp(x->folder, y->folder)) != 0)
		return c;
	if (x->uidvalidity != y->uidvalidity)
		return x->uidvalidity < y->uidvalidity ? -1 : 1;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static size_t cause_new(struct report *r)
{
	r->causes = xgrow(r->causes, sizeof(*r->causes), r->ncauses + 1, &r->causes_alloc);
	memset(&r->causes[r->ncauses], 0, sizeof(r->causes[0]));
	return r->ncauses++;
}

static void cause_add_acct(struct report_cause *c, size_t ai)
{
	/* Callers add an account's entries together, so checking the last one is enough. */
	if (c->naccts && c->accts[c->naccts - 1] == ai)
		return;
	c->accts = xgrow(c->accts, sizeof(*c->accts), c->naccts + 1, &c->accts_alloc);
	c->accts[c->naccts++] = ai;
}

/* qsort has no context argument: the comparators below read the report being grouped from here
 * (single-threaded use; see report.h). */
static const struct report *group_r;

/* Accounts by (class, code, and the text when there is no code). */
static int cmp_acct_error(const void *pa, const void *pb)
{
	const struct report_acct *x = &group_r->accts[*(const size_t *)pa],
				 *y = &group_r->accts[*(const size_t *)pb];
	int c;

	if ((c = strcmp(x->err_class, y->err_class)) != 0 || (c = strcmp(x->err_code, y->err_code)) != 0)
		return c;
	if (!x->err_code[0] && (c = strcmp(x->err_text, y->err_text)) != 0)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Messages by (state, reason), then in account order. */
static int cmp_msg_reason(const void *pa, const void *pb)
{
	size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;
	const struct report_msg *x = &group_r->msgs[ia], *y = &group_r->msgs[ib];
	int c;

	if (x->state != y->state)
		return x->state < y->state ? -1 : 1;
	if ((c = strcmp(x->group, y->group)) != 0)
		return c;
	return ia < ib ? -1 : ia > ib;
}

struct cause_rank {
	size_t old;
	const struct report_cause *c;
};

static int cmp_cause_rank(const void *pa, const void *pb)
{
	const struct report_cause *x = ((const struct cause_rank *)pa)->c,
				  *y = ((const struct cause_rank *)pb)->c;

	if (x->account_level != y->account_level)
		return x->account_level ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->text, y->text);
}

/* Groups the accounts' last errors and the messages' reasons (see struct report_cause), by sorting:
 * O(n log n) whatever the number of distinct reasons. Causes end most frequent first. */
static void build_causes(struct report *r)
{
	size_t n = 0, *idx = xcalloc(r->naccts + r->nmsgs + 1, sizeof(*idx));
	struct cause_rank *rank;
	struct report_cause *sorted;
	size_t *remap;

	group_r = r;
	for (size_t i = 0; i < r->naccts; i++)
		if (r->accts[i].err_class[0] || r->accts[i].err_text[0])
			idx[n++] = i;
	qsort(idx, n, sizeof(*idx), cmp_acct_error);
	for (size_t i = 0; i < n; i++) {
		const struct report_acct *a = &r->accts[idx[i]];
		const struct report_acct *p = i ? &r->accts[idx[i - 1]] : NULL;
		size_t c;

		if (!p || strcmp(p->err_class, a->err_class) || strcmp(p->err_code, a->err_code) ||
		    (!a->err_code[0] && strcmp(p->err_text, a->err_text))) {
			c = cause_new(r);
			r->causes[c].account_level = 1;
			r->causes[c].cls = xstrdup(a->err_class);
			r->causes[c].code = xstrdup(a->err_code);
			r->causes[c].text = xstrdup(a->err_text);
		}
		c = r->ncauses - 1;
		r->causes[c].count++;
		cause_add_acct(&r->causes[c], idx[i]);
	}
	for (size_t i = 0; i < r->nmsgs; i++)
		idx[i] = i;
	qsort(idx, r->nmsgs, sizeof(*idx), cmp_msg_reason);
	for (size_t i = 0; i < r->nmsgs; i++) {
		struct report_msg *m = &r->msgs[idx[i]];
		const struct report_msg *p = i ? &r->msgs[idx[i - 1]] : NULL;
		struct report_acct *a = find_acct(r, m->job_id);
		size_t c;

		if (!p || p->state != m->state || strcmp(p->group, m->group)) {
			c = cause_new(r);
			r->causes[c].mstate = m->state;
			r->causes[c].cls = xstrdup("");
			r->causes[c].code = xstrdup("");
			r->causes[c].text = xstrdup(m->group);
		}
		c = r->ncauses - 1;
		r->causes[c].count++;
		r->causes[c].bytes += (int64_t)m->size;
		r->causes[c].msgs = xgrow(r->causes[c].msgs, sizeof(size_t), r->causes[c].nmsgs + 1,
					  &r->causes[c].msgs_alloc);
		r->causes[c].msgs[r->causes[c].nmsgs++] = idx[i];
		if (a)
			cause_add_acct(&r->causes[c], (size_t)(a - r->accts));
		m->cause = c;
	}
	xfree(&idx);
	group_r = NULL;

	rank = xcalloc(r->ncauses + 1, sizeof(*rank));
	for (size_t c = 0; c < r->ncauses; c++) {
		rank[c].old = c;
		rank[c].c = &r->causes[c];
	}
	qsort(rank, r->ncauses, sizeof(*rank), cmp_cause_rank);
	sorted = xcalloc(r->ncauses + 1, sizeof(*sorted));
	remap = xcalloc(r->ncauses + 1, sizeof(*remap));
	for (size_t k = 0; k < r->ncauses; k++) {
		sorted[k] = r->causes[rank[k].old];
		remap[rank[k].old] = k;
	}
	for (size_t i = 0; i < r->nmsgs; i++)
		r->msgs[i].cause = remap[r->msgs[i].cause];
	xfree(&r->causes);
	r->causes = sorted;
	r->causes_alloc = r->ncauses + 1;
	xfree(&rank);
	xfree(&remap);
}

int report_load(struct state_conn *sc, int64_t run_id, struct report **out, struct fleet_err *err)
{
	struct report *r = xcalloc(1, sizeof(*r));
	struct run_list l;
	int busy = 0;

	*out = NULL;
	r->run_id = run_id;
	r->generated_ms = (int64_t)fleet_wall_ms();
	if (run_list_load(sc, run_id, &l, err) < 0)
		goto fail_list;
	if (l.n != 1) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, "NO_RUN",
			      "no run %lld in the state store", (long long)run_id);
		goto fail_list;
	}
	r->run_name = l.v[0].name;
	r->run_state = l.v[0].state;
	l.v[0].name = l.v[0].state = NULL;
	r->run_created_ms = l.v[0].created_ms;
	r->counts = l.v[0].counts;
	r->total = counts_total(&r->counts);
	run_list_release(&l);

	if (state_report_jobs(sc, run_id, load_job_cb, r, err) < 0 ||
	    state_report_job_times(sc, run_id, load_time_cb, r, err) < 0 ||
	    state_report_failed_messages(sc, run_id, STATE_MSG_MASK_FAILED | STATE_MSG_MASK_SKIPPED, 0,
					 load_msg_cb, r, err) < 0 ||
	    state_report_throughput(sc, run_id, &r->tp, &r->ntp, err) < 0)
		goto fail;
	if (r->nmsgs)
		qsort(r->msgs, r->nmsgs, sizeof(*r->msgs), cmp_msg);
	for (size_t i = 0; i < r->nmsgs; i++) {
		struct report_acct *a = find_acct(r, r->msgs[i].job_id);

		if (!a)
			continue;
		if (a->msg_count == 0)
			a->msg_first = i;
		a->msg_count++;
		if (r->msgs[i].state == STATE_MSG_SKIPPED)
			a->bytes_skipped += (int64_t)r->msgs[i].size;
		else
			a->bytes_failed += (int64_t)r->msgs[i].size;
	}
	for (size_t i = 0; i < r->naccts; i++) {
		const struct report_acct *a = &r->accts[i];

		r->bytes_skipped += a->bytes_skipped;
		r->bytes_failed += a->bytes_failed;
		r->busy_ms += a->busy_ms;
		if (a->started_ms > 0 && (r->first_start_ms == 0 || a->started_ms < r->first_start_ms))
			r->first_start_ms = a->started_ms;
		if (a->finished_ms > r->last_finish_ms)
			r->last_finish_ms = a->finished_ms;
		if (a->updated_ms > r->last_update_ms)
			r->last_update_ms = a->updated_ms;
		if (a->state == STATE_JOB_QUEUED || a->state == STATE_JOB_RUNNING)
			busy = 1;
	}
	if (busy)
		r->last_finish_ms = 0; /* not finished: elapsed time runs until now */
	build_causes(r);
	*out = r;
	return 0;
fail_list:
	run_list_release(&l);
fail:
	report_free(&r);
	return -1;
}

void report_free(struct report **rp)
{
	struct report *r = *rp;

	if (!r)
		return;
	for (size_t i = 0; i < r->naccts; i++) {
		struct report_acct *a = &r->accts[i];

		xfree(&a->host1);
		xfree(&a->user1);
		xfree(&a->host2);
		xfree(&a->user2);
		xfree(&a->err_class);
		xfree(&a->err_code);
		xfree(&a->err_text);
	}
	for (size_t i = 0; i < r->nmsgs; i++) {
		xfree(&r->msgs[i].reason);
		xfree(&r->msgs[i].group);
		xfree(&r->msgs[i].folder);
	}
	for (size_t i = 0; i < r->ncauses; i++) {
		xfree(&r->causes[i].cls);
		xfree(&r->causes[i].code);
		xfree(&r->causes[i].text);
		xfree(&r->causes[i].accts);
		xfree(&r->causes[i].msgs);
	}
	xfree(&r->accts);
	xfree(&r->msgs);
	xfree(&r->causes);
	xfree(&r->tp);
	xfree(&r->run_name);
	xfree(&r->run_state);
	xfree(rp);
}

/* Elapsed wall time of the run: first start to last finish, or to now while it goes on. */
static int64_t run_elapsed_ms(const struct report *r)
{
	int64_t end = r->last_finish_ms ? r->last_finish_ms : r->generated_ms;

	return r->first_start_ms > 0 && end > r->first_start_ms ? end - r->first_start_ms : 0;
}

static int64_t acct_duration_ms(const struct report_acct *a)
{
	return a->busy_ms;
}

void report_print_summary(const struct report *r, FILE *out)
{
	char b1[TBUF], b2[TBUF];

	fprintf(out,
		"run %lld: %ld accounts: %ld done, %ld partial, %ld failed, %ld running, %ld queued, %ld cancelled; "
		"%lld messages copied (%s), %lld skipped, %lld failed; elapsed %s\n",
		(long long)r->run_id, r->total, r->counts.jobs[STATE_JOB_DONE], r->counts.jobs[STATE_JOB_PARTIAL],
		r->counts.jobs[STATE_JOB_FAILED], r->counts.jobs[STATE_JOB_RUNNING],
		r->counts.jobs[STATE_JOB_QUEUED], r->counts.jobs[STATE_JOB_CANCELLED],
		(long long)r->counts.msgs_copied, fmt_bytes(b1, r->counts.bytes_copied),
		(long long)r->counts.msgs_skipped, (long long)r->counts.msgs_failed,
		fmt_duration(b2, run_elapsed_ms(r)));
}

static const char *progress_label(const struct report *r)
{
	return run_progress(r->run_state, &r->counts);
}

static const char *progress_css(const struct report *r)
{
	const char *l = progress_label(r);

	return !strcmp(l, "in progress")	      ? "s-running"
	       : !strcmp(l, "finished")		      ? "s-done"
	       : !strcmp(l, "finished with failures") ? "s-failed"
						      : "s-queued";
}

/* ---- CSV ---------------------------------------------------------------------------------------- */

int report_write_accounts_csv(const struct report *r, FILE *out, struct fleet_err *err)
{
	struct rw w;

	rw_init(&w, out);
	rw_puts(&w,
		"run_id,account_id,host1,port1,user1,host2,port2,user2,state,attempts,max_attempts,"
		"attempts_total,folders,msgs_copied,bytes_copied,msgs_skipped,bytes_skipped,msgs_failed,"
		"bytes_failed,started_at,finished_at,updated_at,duration_s,error_class,error_code,error_text,"
		"failure_reasons\r\n");
	for (size_t i = 0; i < r->naccts; i++) {
		const struct report_acct *a = &r->accts[i];
		char t1[TBUF], t2[TBUF], t3[TBUF];

		rw_printf(&w, "%lld,%lld,", (long long)r->run_id, (long long)a->id);
		rw_csv(&w, a->host1);
		rw_printf(&w, ",%u,", a->port1);
		rw_csv(&w, a->user1);
		rw_put(&w, ",", 1);
		rw_csv(&w, a->host2);
		rw_printf(&w, ",%u,", a->port2);
		rw_csv(&w, a->user2);
		rw_printf(&w, ",%s,%d,%d,%ld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%s,%s,%s,%.1f,",
			  state_job_state_name(a->state), a->attempts, a->max_attempts, a->attempts_total,
			  (long long)a->folders, (long long)a->msgs_copied, (long long)a->bytes_copied,
			  (long long)a->msgs_skipped, (long long)a->bytes_skipped, (long long)a->msgs_failed,
			  (long long)a->bytes_failed, fmt_time(t1, a->started_ms, 1),
			  fmt_time(t2, a->finished_ms, 1), fmt_time(t3, a->updated_ms, 1),
			  (double)acct_duration_ms(a) / 1000.0);
		rw_csv(&w, a->err_class);
		rw_put(&w, ",", 1);
		rw_csv(&w, a->err_code);
		rw_put(&w, ",", 1);
		rw_csv(&w, a->err_text);
		rw_put(&w, ",", 1);
		{
			/* "skipped: reason (3); failed: reason (1)" */
			struct fleet_buf sum = FLEET_BUF_INIT(64 * 1024);

			for (size_t k = a->msg_first; k < a->msg_first + a->msg_count;) {
				size_t e = k;

				while (e < a->msg_first + a->msg_count &&
				       r->msgs[e].state == r->msgs[k].state &&
				       !strcmp(r->msgs[e].group, r->msgs[k].group))
					e++;
				fleet_buf_appendf(&sum, "%s%s: %s (%zu)", sum.len ? "; " : "",
						  msg_state_name(r->msgs[k].state), r->msgs[k].group, e - k);
				k = e;
			}
			rw_csv(&w, fleet_buf_cstr(&sum));
			fleet_buf_release(&sum);
		}
		rw_puts(&w, "\r\n");
	}
	return rw_finish(&w, "accounts.csv", err);
}

int report_write_failures_csv(const struct report *r, FILE *out, struct fleet_err *err)
{
	struct rw w;

	rw_init(&w, out);
	rw_puts(&w,
		"run_id,account_id,user1,host1,user2,host2,scope,state,error_class,error_code,reason,folder,"
		"uidvalidity,uid,size\r\n");
	for (size_t i = 0; i < r->naccts; i++) {
		const struct report_acct *a = &r->accts[i];

		if (!a->err_class[0] && !a->err_text[0] && a->msg_count == 0)
			continue;
		if (a->err_class[0] || a->err_text[0]) {
			rw_printf(&w, "%lld,%lld,", (long long)r->run_id, (long long)a->id);
			rw_csv(&w, a->user1);
			rw_put(&w, ",", 1);
			rw_csv(&w, a->host1);
			rw_put(&w, ",", 1);
			rw_csv(&w, a->user2);
			rw_put(&w, ",", 1);
			rw_csv(&w, a->host2);
			rw_printf(&w, ",account,%s,", state_job_state_name(a->state));
			rw_csv(&w, a->err_class);
			rw_put(&w, ",", 1);
			rw_csv(&w, a->err_code);
			rw_put(&w, ",", 1);
			rw_csv(&w, a->err_text);
			rw_puts(&w, ",,,,\r\n");
		}
		for (size_t k = a->msg_first; k < a->msg_first + a->msg_count; k++) {
			const struct report_msg *m = &r->msgs[k];

			rw_printf(&w, "%lld,%lld,", (long long)r->run_id, (long long)a->id);
			rw_csv(&w, a->user1);
			rw_put(&w, ",", 1);
			rw_csv(&w, a->host1);
			rw_put(&w, ",", 1);
			rw_csv(&w, a->user2);
			rw_put(&w, ",", 1);
			rw_csv(&w, a->host2);
			rw_printf(&w, ",message,%s,,,", msg_state_name(m->state));
			rw_csv(&w, m->reason);
			rw_put(&w, ",", 1);
			rw_csv(&w, m->folder);
			rw_printf(&w, ",%u,%u,%llu\r\n", m->uidvalidity, m->uid, (unsigned long long)m->size);
		}
	}
	return rw_finish(&w, "failures.csv", err);
}

/* ---- JSON --------------------------------------------------------------------------------------- */

static void json_time(struct rw *w, int64_t ms)
{
	char t[TBUF];

	if (ms > 0)
		rw_printf(w, "\"%s\"", fmt_time(t, ms, 1));
	else
		rw_puts(w, "null");
}

static void json_acct_ids(struct rw *w, const struct report *r, const struct report_cause *c)
{
	rw_puts(w, "[");
	for (size_t k = 0; k < c->naccts; k++)
		rw_printf(w, "%s%lld", k ? ", " : "", (long long)r->accts[c->accts[k]].id);
	rw_puts(w, "]");
}

int report_write_json(const struct report *r, FILE *out, struct fleet_err *err)
{
	struct rw w;

	rw_init(&w, out);
	rw_puts(&w, "{\n  \"generator\": \"imapfleet " PACKAGE_VERSION "\",\n  \"generated_at\": ");
	json_time(&w, r->generated_ms);
	rw_printf(&w, ",\n  \"run\": {\n    \"id\": %lld,\n    \"name\": ", (long long)r->run_id);
	rw_json(&w, r->run_name);
	rw_puts(&w, ",\n    \"state\": ");
	rw_json(&w, r->run_state);
	rw_printf(&w, ",\n    \"progress\": \"%s\",\n    \"created_at\": ", progress_label(r));
	json_time(&w, r->run_created_ms);
	rw_printf(&w, ",\n    \"accounts\": {\"total\": %ld", r->total);
	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		rw_printf(&w, ", \"%s\": %ld", state_job_state_name((enum state_job_state)s),
			  r->counts.jobs[s]);
	rw_printf(&w,
		  "},\n    \"msgs_copied\": %lld,\n    \"bytes_copied\": %lld,\n    \"msgs_skipped\": %lld,\n"
		  "    \"bytes_skipped\": %lld,\n    \"msgs_failed\": %lld,\n    \"bytes_failed\": %lld,\n"
		  "    \"started_at\": ",
		  (long long)r->counts.msgs_copied, (long long)r->counts.bytes_copied,
		  (long long)r->counts.msgs_skipped, (long long)r->bytes_skipped,
		  (long long)r->counts.msgs_failed, (long long)r->bytes_failed);
	json_time(&w, r->first_start_ms);
	rw_puts(&w, ",\n    \"finished_at\": ");
	json_time(&w, r->last_finish_ms);
	rw_printf(&w,
		  ",\n    \"elapsed_seconds\": %.1f,\n    \"busy_seconds\": %.1f\n  },\n  \"throughput\": [",
		  (double)run_elapsed_ms(r) / 1000.0, (double)r->busy_ms / 1000.0);
	for (size_t i = 0; i < r->ntp; i++) {
		rw_puts(&w, i ? ",\n    {\"minute\": " : "\n    {\"minute\": ");
		json_time(&w, r->tp[i].minute_ms);
		rw_printf(&w, ", \"msgs\": %lld, \"bytes\": %lld}", (long long)r->tp[i].msgs,
			  (long long)r->tp[i].bytes);
	}
	rw_puts(&w, r->ntp ? "\n  ],\n  \"failure_causes\": [" : "],\n  \"failure_causes\": [");
	for (size_t c = 0; c < r->ncauses; c++) {
		const struct report_cause *k = &r->causes[c];

		rw_puts(&w, c ? ",\n    {" : "\n    {");
		if (k->account_level) {
			rw_puts(&w, "\"scope\": \"account\", \"class\": ");
			rw_json_opt(&w, k->cls);
			rw_puts(&w, ", \"code\": ");
			rw_json_opt(&w, k->code);
			rw_puts(&w, ", \"example\": ");
			rw_json(&w, k->text);
			rw_printf(&w, ", \"accounts\": %ld, \"account_ids\": ", k->count);
		} else {
			rw_printf(&w, "\"scope\": \"message\", \"state\": \"%s\", \"reason\": ",
				  msg_state_name(k->mstate));
			rw_json(&w, k->text);
			rw_printf(&w, ", \"messages\": %ld, \"bytes\": %lld, \"account_ids\": ", k->count,
				  (long long)k->bytes);
		}
		json_acct_ids(&w, r, k);
		rw_puts(&w, "}");
	}
	rw_puts(&w, r->ncauses ? "\n  ],\n  \"accounts\": [" : "],\n  \"accounts\": [");
	for (size_t i = 0; i < r->naccts; i++) {
		const struct report_acct *a = &r->accts[i];

		rw_printf(&w, "%s\n    {\n      \"id\": %lld,\n      \"source\": {\"host\": ", i ? "," : "",
			  (long long)a->id);
		rw_json(&w, a->host1);
		rw_printf(&w, ", \"port\": %u, \"user\": ", a->port1);
		rw_json(&w, a->user1);
		rw_puts(&w, "},\n      \"destination\": {\"host\": ");
		rw_json(&w, a->host2);
		rw_printf(&w, ", \"port\": %u, \"user\": ", a->port2);
		rw_json(&w, a->user2);
		rw_printf(
		    &w,
		    "},\n      \"state\": \"%s\",\n      \"attempts\": %d,\n      \"max_attempts\": %d,\n"
		    "      \"attempts_total\": %ld,\n      \"folders\": %lld,\n      \"msgs_copied\": %lld,\n"
		    "      \"bytes_copied\": %lld,\n      \"msgs_skipped\": %lld,\n      \"bytes_skipped\": "
		    "%lld,\n"
		    "      \"msgs_failed\": %lld,\n      \"bytes_failed\": %lld,\n      \"started_at\": ",
		    state_job_state_name(a->state), a->attempts, a->max_attempts, a->attempts_total,
		    (long long)a->folders, (long long)a->msgs_copied, (long long)a->bytes_copied,
		    (long long)a->msgs_skipped, (long long)a->bytes_skipped, (long long)a->msgs_failed,
		    (long long)a->bytes_failed);
		json_time(&w, a->started_ms);
		rw_puts(&w, ",\n      \"finished_at\": ");
		json_time(&w, a->finished_ms);
		rw_puts(&w, ",\n      \"updated_at\": ");
		json_time(&w, a->updated_ms);
		rw_printf(&w, ",\n      \"duration_seconds\": %.1f,\n      \"error\": ",
			  (double)acct_duration_ms(a) / 1000.0);
		if (a->err_class[0] || a->err_text[0]) {
			rw_puts(&w, "{\"class\": ");
			rw_json_opt(&w, a->err_class);
			rw_puts(&w, ", \"code\": ");
			rw_json_opt(&w, a->err_code);
			rw_puts(&w, ", \"text\": ");
			rw_json(&w, a->err_text);
			rw_puts(&w, "}");
		} else {
			rw_puts(&w, "null");
		}
		rw_puts(&w, ",\n      \"failures\": [");
		for (size_t k = a->msg_first; k < a->msg_first + a->msg_count;) {
			size_t e = k;
			int64_t bytes = 0;

			while (e < a->msg_first + a->msg_count && r->msgs[e].state == r->msgs[k].state &&
			       !strcmp(r->msgs[e].group, r->msgs[k].group))
				bytes += (int64_t)r->msgs[e++].size;
			rw_printf(&w,
				  "%s\n        {\"state\": \"%s\", \"reason\": ", k > a->msg_first ? "," : "",
				  msg_state_name(r->msgs[k].state));
			rw_json(&w, r->msgs[k].group);
			rw_printf(&w, ", \"count\": %zu, \"bytes\": %lld, \"messages\": [", e - k,
				  (long long)bytes);
			for (size_t m = k; m < e; m++) {
				rw_puts(&w,
					m > k ? ",\n          {\"folder\": " : "\n          {\"folder\": ");
				rw_json(&w, r->msgs[m].folder);
				rw_printf(&w,
					  ", \"uidvalidity\": %u, \"uid\": %u, \"size\": %llu, \"error\": ",
					  r->msgs[m].uidvalidity, r->msgs[m].uid,
					  (unsigned long long)r->msgs[m].size);
				rw_json(&w, r->msgs[m].reason);
				rw_puts(&w, "}");
			}
			rw_puts(&w, "]}");
			k = e;
		}
		rw_puts(&w, a->msg_count ? "\n      ]\n    }" : "]\n    }");
	}
	rw_puts(&w, r->naccts ? "\n  ]\n}\n" : "]\n}\n");
	return rw_finish(&w, "accounts.json", err);
}

/* ---- HTML --------------------------------------------------------------------------------------- */

static const char HTML_STYLE[] =
    ":root{--done:#1f9d55;--failed:#d64545;--running:#2f6fde;--queued:#a3abb9;--cancelled:#7a5bc4;"
    "--ink:#1d2433;--muted:#667085;--line:#e4e7ec;--bg:#f4f6f9;--card:#fff}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,"
    "sans-serif;color:var(--ink);background:var(--bg)}\n"
    "header{background:#1d2433;color:#fff;padding:22px 0 20px}\n"
    ".wrap{max-width:1240px;margin:0 auto;padding:0 28px}\n"
    ".brand{font-size:12px;letter-spacing:.14em;text-transform:uppercase;opacity:.65}\n"
    "h1{margin:4px 0 8px;font-size:24px;font-weight:650}\n"
    "h1 .pill{font-size:13px;vertical-align:4px;margin-left:8px;padding:2px 11px}\n"
    ".meta{font-size:13px;color:#c8cfdc;display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center}\n"
    ".meta code{background:rgba(255,255,255,.09);padding:1px 7px;border-radius:4px;word-break:break-all;"
    "font-size:12px}\n"
    "main.wrap{padding-top:22px}\n"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:12px;margin-bottom:"
    "16px}\n"
    ".card{background:var(--card);border:1px solid var(--line);border-top:3px solid "
    "#cfd5df;border-radius:10px;"
    "padding:11px 14px}\n"
    ".card.ok{border-top-color:var(--done)}.card.bad{border-top-color:var(--failed)}"
    ".card.run{border-top-color:var(--running)}\n"
    ".card .k{font-size:11.5px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}\n"
    ".card .v{font-size:26px;font-weight:650;font-variant-numeric:tabular-nums;line-height:1.25}\n"
    ".card .sub{font-size:12px;color:var(--muted)}\n"
    ".panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;"
    "margin-bottom:16px}\n"
    ".panel h2{font-size:15px;margin:0 0 12px;font-weight:650}\n"
    ".panel h2 .muted{font-weight:400;font-size:13px}\n"
    ".bar{display:flex;height:24px;border-radius:6px;overflow:hidden;background:#edf0f4}\n"
    ".bar span{display:block;height:100%}\n"
    ".s-done{background:var(--done)}.s-failed{background:var(--failed)}.s-partial{background:#e08a1e}.s-running,.s-active{background:var(--"
    "running)}"
    ".s-queued{background:var(--queued)}.s-cancelled{background:var(--cancelled)}\n"
    ".legend{list-style:none;padding:0;margin:12px 0 0;display:flex;flex-wrap:wrap;gap:8px "
    "22px;font-size:13px}\n"
    ".legend b{font-variant-numeric:tabular-nums}\n"
    ".dot{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:6px;vertical-align:-1px}"
    "\n"
    ".grid2{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,1fr);gap:16px}\n"
    "@media (max-width:900px){.grid2{grid-template-columns:1fr}}\n"
    ".chart{width:100%;height:auto;display:block}\n"
    ".chart .grid{stroke:#e9ecf1}.chart .axis{fill:#8a93a5;font-size:11px}\n"
    ".chart rect.b{fill:#2f6fde}.chart rect.b:hover{fill:#1f4fb0}\n"
    ".donut{display:flex;align-items:center;gap:18px}\n"
    ".donut svg{width:150px;height:150px;flex:none}\n"
    ".donut ul{list-style:none;margin:0;padding:0;font-size:13px;flex:1}\n"
    ".donut li{display:flex;align-items:center;padding:3px 0;border-bottom:1px dashed var(--line)}\n"
    ".donut li b{margin-left:auto;font-variant-numeric:tabular-nums}\n"
    "table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}\n"
    "th,td{padding:7px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}\n"
    "th{font-size:11px;color:var(--muted);text-transform:uppercase;letter-spacing:.02em;background:#fafbfc;"
    "font-weight:600}\n"
    "td.num,th.num{text-align:right}td.num{white-space:nowrap}\n"
    "#accounts th{cursor:pointer;user-select:none;white-space:nowrap;position:sticky;top:0}\n"
    "#accounts th:hover,#accounts th:focus{color:var(--ink);outline:none;background:#eef2f7}\n"
    "#accounts th[aria-sort=ascending]::after{content:\" \\25B2\";font-size:9px}\n"
    "#accounts th[aria-sort=descending]::after{content:\" \\25BC\";font-size:9px}\n"
    "#accounts tbody tr:hover td{background:#f7f9fc}\n"
    ".pill{display:inline-block;padding:1px "
    "9px;border-radius:999px;font-size:12px;font-weight:600;color:#fff;"
    "white-space:nowrap}\n"
    "td.acct{overflow-wrap:anywhere;min-width:300px}.acct .src{font-weight:550}"
    ".acct .dst{color:var(--muted);font-size:12.5px}.acct .arrow{padding-right:4px}\n"
    "table.causes td:first-child{width:45%}\n"
    ".err{color:#9b2c2c;max-width:420px;font-size:12.5px}\n"
    ".err "
    "span{display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:3;line-clamp:3;overflow:hidden;"
    "min-width:190px;"
    "word-break:break-word}\n"
    ".muted{color:var(--muted)}\n"
    ".empty{color:var(--muted);font-style:italic;margin:4px 0}\n"
    ".chip{display:inline-block;background:#eef1f5;border-radius:4px;padding:0 7px;margin:1px 3px 1px 0;"
    "font-size:12px;white-space:nowrap}\n"
    ".cause-text{color:var(--muted);font-size:12.5px;margin-top:3px;word-break:break-word}\n"
    "details{margin-top:6px}details summary{cursor:pointer;color:var(--running);font-size:12.5px}\n"
    "details table{margin-top:6px;font-size:12.5px}\n"
    ".tools{display:flex;justify-content:space-between;align-items:center;gap:12px;margin-bottom:10px}\n"
    ".tools h2{margin:0}\n"
    "#filter{font:inherit;padding:6px 10px;border:1px solid #cfd5df;border-radius:6px;width:260px}\n"
    ".scroll{overflow-x:auto}\n"
    "footer{color:var(--muted);font-size:12px;text-align:center;padding:6px 0 26px}\n";

/* Sorting (click or Enter on a header; numbers first descending), filtering, and #sort=[-]KEY in the
 * address to open the page sorted. Reads the table only; no network, no eval. */
static const char HTML_SCRIPT[] =
    "(function(){\"use strict\";\n"
    "var t=document.getElementById(\"accounts\");if(!t)return;\n"
    "var body=t.tBodies[0],heads=t.tHead.rows[0].cells;\n"
    "function val(row,i,num){var c=row.cells[i],v=c.getAttribute(\"data-v\");if(v===null)v=c.textContent;"
    "return num?Number(v):v.toLowerCase();}\n"
    "function sortBy(i,dir){var num=heads[i].classList.contains(\"num\");"
    "var rows=Array.prototype.slice.call(body.rows);\n"
    "rows.sort(function(a,b){var x=val(a,i,num),y=val(b,i,num);"
    "return "
    "(x<y?-1:x>y?1:0)*dir||Number(a.getAttribute(\"data-job\"))-Number(b.getAttribute(\"data-job\"));});\n"
    "rows.forEach(function(r){body.appendChild(r);});\n"
    "for(var k=0;k<heads.length;k++)heads[k].removeAttribute(\"aria-sort\");\n"
    "heads[i].setAttribute(\"aria-sort\",dir>0?\"ascending\":\"descending\");}\n"
    "Array.prototype.forEach.call(heads,function(th,i){th.tabIndex=0;\n"
    "function go(){var s=th.getAttribute(\"aria-sort\");"
    "sortBy(i,s?(s===\"ascending\"?-1:1):(th.classList.contains(\"num\")?-1:1));}\n"
    "th.addEventListener(\"click\",go);\n"
    "th.addEventListener(\"keydown\",function(e){if(e.key===\"Enter\"||e.key===\" "
    "\"){e.preventDefault();go();}});});\n"
    "var f=document.getElementById(\"filter\"),shown=document.getElementById(\"shown\");\n"
    "if(f)f.addEventListener(\"input\",function(){var q=f.value.toLowerCase(),n=0;"
    "Array.prototype.forEach.call(body.rows,function(r){r.hidden=q!==\"\"&&r.textContent.toLowerCase()."
    "indexOf(q)<0;"
    "if(!r.hidden)n++;});if(shown)shown.textContent=String(n);});\n"
    "var m=/^#sort=(-?)([a-z_]+)$/.exec(location.hash);\n"
    "if(m)for(var k=0;k<heads.length;k++)if(heads[k].getAttribute(\"data-key\")===m[2])sortBy(k,m[1]?-1:1);\n"
    "})();\n";

static const char *const state_css[STATE_JOB_NSTATES] = {"s-queued", "s-running", "s-done", "s-failed",
							 "s-cancelled", "s-partial"};
/* Display order: what is finished first, then what is still to do. */
static const enum state_job_state state_order[STATE_JOB_NSTATES] = {
    STATE_JOB_DONE, STATE_JOB_PARTIAL, STATE_JOB_FAILED, STATE_JOB_RUNNING, STATE_JOB_QUEUED, STATE_JOB_CANCELLED};

static double pct(long n, long total)
{
	return total > 0 ? 100.0 * (double)n / (double)total : 0.0;
}

static void html_pill(struct rw *w, enum state_job_state s)
{
	rw_printf(w, "<span class=\"pill %s\">%s</span>", state_css[s], state_job_state_name(s));
}

/* Source on the first line, destination under it. */
static void html_account(struct rw *w, const struct report_acct *a)
{
	rw_puts(w, "<div class=\"src\">");
	rw_html(w, a->user1);
	rw_puts(w, "@");
	rw_html(w, a->host1);
	rw_puts(w, "</div><div class=\"dst\"><span class=\"arrow\">&rarr;</span>");
	rw_html(w, a->user2);
	rw_puts(w, "@");
	rw_html(w, a->host2);
	rw_puts(w, "</div>");
}

static void html_cards(struct rw *w, const struct report *r)
{
	char b1[TBUF], b2[TBUF], b3[TBUF], b4[TBUF], b5[TBUF], b6[TBUF];
	const long *j = r->counts.jobs;

	rw_printf(w,
		  "<section class=\"cards\">\n"
		  "<div class=\"card\"><div class=\"k\">Accounts</div><div class=\"v\" id=\"n-total\" "
		  "data-v=\"%ld\">%s</div><div class=\"sub\">in this run</div></div>\n",
		  r->total, fmt_count(b1, r->total));
	rw_printf(
	    w,
	    "<div class=\"card ok\"><div class=\"k\">Done</div><div class=\"v\" id=\"n-done\" "
	    "data-v=\"%ld\">%s"
	    "</div><div class=\"sub\">%.0f%% of accounts</div></div>\n"
	    "<div class=\"card bad\"><div class=\"k\">Failed</div><div class=\"v\" id=\"n-failed\" "
	    "data-v=\"%ld\">%s</div><div class=\"sub\">%s</div></div>\n"
	    "<div class=\"card run\"><div class=\"k\">Running / queued</div><div class=\"v\">"
	    "<span id=\"n-running\" data-v=\"%ld\">%s</span> / <span id=\"n-queued\" data-v=\"%ld\">%s</span>"
	    "</div><div class=\"sub\">%ld cancelled</div></div>\n",
	    j[STATE_JOB_DONE], fmt_count(b1, j[STATE_JOB_DONE]), pct(j[STATE_JOB_DONE], r->total),
	    j[STATE_JOB_FAILED], fmt_count(b2, j[STATE_JOB_FAILED]),
	    j[STATE_JOB_FAILED] ? "see failures below" : "none", j[STATE_JOB_RUNNING],
	    fmt_count(b3, j[STATE_JOB_RUNNING]), j[STATE_JOB_QUEUED], fmt_count(b4, j[STATE_JOB_QUEUED]),
	    j[STATE_JOB_CANCELLED]);
	rw_printf(
	    w,
	    "<div class=\"card\"><div class=\"k\">Messages copied</div><div class=\"v\" id=\"msgs-copied\" "
	    "data-v=\"%lld\">%s</div><div class=\"sub\" id=\"bytes-copied\" data-v=\"%lld\">%s</div></div>\n",
	    (long long)r->counts.msgs_copied, fmt_count(b1, r->counts.msgs_copied),
	    (long long)r->counts.bytes_copied, fmt_bytes(b2, r->counts.bytes_copied));
	rw_printf(w,
		  "<div class=\"card\"><div class=\"k\">Skipped / failed</div><div class=\"v\">"
		  "<span id=\"msgs-skipped\" data-v=\"%lld\">%s</span> / <span id=\"msgs-failed\" "
		  "data-v=\"%lld\">%s"
		  "</span></div><div class=\"sub\">messages, %s</div></div>\n"
		  "<div class=\"card\"><div class=\"k\">Elapsed</div><div class=\"v\">%s</div>"
		  "<div class=\"sub\">%s</div></div>\n</section>\n",
		  (long long)r->counts.msgs_skipped, fmt_count(b3, r->counts.msgs_skipped),
		  (long long)r->counts.msgs_failed, fmt_count(b4, r->counts.msgs_failed),
		  fmt_bytes(b5, r->bytes_skipped + r->bytes_failed), fmt_duration(b6, run_elapsed_ms(r)),
		  r->last_finish_ms ? "start to finish"
				    : (r->first_start_ms ? "still going" : "not started"));
}

static void html_progress(struct rw *w, const struct report *r)
{
	rw_printf(
	    w,
	    "<section class=\"panel\"><h2>Overall progress <span class=\"muted\">%.0f%% of %ld accounts "
	    "finished</span></h2>\n<div class=\"bar\" role=\"img\" aria-label=\"accounts by state\">",
	    pct(r->counts.jobs[STATE_JOB_DONE] + r->counts.jobs[STATE_JOB_FAILED] +
		    r->counts.jobs[STATE_JOB_CANCELLED] + r->counts.jobs[STATE_JOB_PARTIAL],
		r->total),
	    r->total);
	for (int k = 0; k < STATE_JOB_NSTATES; k++) {
		enum state_job_state s = state_order[k];

		if (r->counts.jobs[s])
			rw_printf(w, "<span class=\"%s\" style=\"width:%.3f%%\" title=\"%s: %ld\"></span>",
				  state_css[s], pct(r->counts.jobs[s], r->total), state_job_state_name(s),
				  r->counts.jobs[s]);
	}
	rw_puts(w, "</div>\n<ul class=\"legend\">");
	for (int k = 0; k < STATE_JOB_NSTATES; k++) {
		enum state_job_state s = state_order[k];

		rw_printf(
		    w, "<li><i class=\"dot %s\"></i>%s <b>%ld</b> <span class=\"muted\">%.0f%%</span></li>",
		    state_css[s], state_job_state_name(s), r->counts.jobs[s],
		    pct(r->counts.jobs[s], r->total));
	}
	rw_puts(w, "</ul></section>\n");
}

/* A "nice" axis step (1, 2, 2.5, 5 times a power of ten) so that 4 steps cover max. */
static int64_t nice_step(int64_t max)
{
	int64_t mag = 1;

	for (;;) {
		if (mag * 4 >= max)
			return mag;
		if (mag * 2 * 4 >= max)
			return mag * 2;
		if (mag >= 10 && mag / 2 * 5 * 4 >= max)
			return mag / 2 * 5;
		if (mag * 5 * 4 >= max)
			return mag * 5;
		mag *= 10;
	}
}

#define CHART_W	     680
#define CHART_H	     230
#define CHART_L	     52
#define CHART_R	     12
#define CHART_T	     12
#define CHART_B	     30
#define CHART_BARS   120 /* at most this many bars: minutes are grouped beyond */
#define CHART_MINBAR 14	 /* a run shorter than this many buckets is drawn centred */

static void html_throughput(struct rw *w, const struct report *r)
{
	int64_t first, last, span, bucket, nb, max = 0, peak = 0, msgs = 0, bytes = 0;
	int64_t *b = NULL, *bb = NULL;
	double pw = CHART_W - CHART_L - CHART_R, ph = CHART_H - CHART_T - CHART_B, slot, x0;
	int64_t step;
	char t1[TBUF], t2[TBUF], t3[TBUF], t4[TBUF];

	rw_puts(w, "<section class=\"panel\"><h2>Throughput <span class=\"muted\">messages copied per ");
	if (r->ntp == 0) {
		rw_puts(w, "minute</span></h2><p class=\"empty\">No message copied yet.</p></section>\n");
		return;
	}
	first = r->tp[0].minute_ms;
	last = r->tp[r->ntp - 1].minute_ms;
	span = (last - first) / 60000 + 1;
	bucket = (span + CHART_BARS - 1) / CHART_BARS;
	nb = (span + bucket - 1) / bucket;
	b = xcalloc((size_t)nb, sizeof(*b));
	bb = xcalloc((size_t)nb, sizeof(*bb));
	for (size_t i = 0; i < r->ntp; i++) {
		int64_t k = (r->tp[i].minute_ms - first) / 60000 / bucket;

		if (k < 0 || k >= nb)
			continue;
		b[k] += r->tp[i].msgs;
		bb[k] += r->tp[i].bytes;
		msgs += r->tp[i].msgs;
		bytes += r->tp[i].bytes;
	}
	for (int64_t k = 0; k < nb; k++)
		if (b[k] > max)
			max = b[k];
	peak = max;
	step = nice_step(max > 0 ? max : 1);
	if (bucket == 1)
		rw_puts(w, "minute");
	else
		rw_printf(w, "%lld minutes", (long long)bucket);
	rw_printf(w,
		  " (UTC)</span></h2>\n<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
		  "aria-label=\"messages copied over time\">\n",
		  CHART_W, CHART_H);
	for (int g = 0; g <= 4; g++) {
		double y = CHART_T + ph - ph * g / 4.0;

		rw_printf(w,
			  "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
			  "<text class=\"axis\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%lld</text>\n",
			  CHART_L, CHART_W - CHART_R, y, y, CHART_L - 6, y + 4, (long long)(step * g));
	}
	slot = pw / (double)(nb > CHART_MINBAR ? nb : CHART_MINBAR);
	x0 = CHART_L + (nb < CHART_MINBAR ? (pw - slot * (double)nb) / 2.0 : 0.0);
	for (int64_t k = 0; k < nb; k++) {
		double h = ph * (double)b[k] / (double)(step * 4), bw = slot * 0.78;
		double x = x0 + slot * (double)k + (slot - bw) / 2.0;
		char t[TBUF], s[TBUF];

		if (b[k] == 0)
			continue;
		if (h < 1.5)
			h = 1.5;
		rw_printf(w,
			  "<rect class=\"b\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"2\">"
			  "<title>%s UTC: %lld messages, %s</title></rect>\n",
			  x, CHART_T + ph - h, bw, h, fmt_clock(t, first + k * bucket * 60000, 1),
			  (long long)b[k], fmt_bytes(s, bb[k]));
	}
	{
		/* Up to 6 time labels, evenly spread over the buckets. */
		int64_t every = (nb + 5) / 6;
		int with_date = (last - first) >= 86400000LL;

		if (every < 1)
			every = 1;
		for (int64_t k = 0; k < nb; k += every) {
			char t[TBUF];

			rw_printf(
			    w, "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
			    x0 + slot * (double)k + slot / 2.0, CHART_H - 10,
			    fmt_clock(t, first + k * bucket * 60000, with_date));
		}
	}
	rw_printf(w,
		  "</svg>\n<p class=\"muted\" style=\"margin:6px 0 0\">peak <b>%s</b> messages per %s; "
		  "<b>%s</b> messages (%s) over %lld minute%s, from %s to %s UTC</p></section>\n",
		  fmt_count(t3, peak), bucket == 1 ? "minute" : "bucket", fmt_count(t4, msgs),
		  fmt_bytes(t1, bytes), (long long)span, span == 1 ? "" : "s", fmt_clock(t2, first, 0),
		  fmt_clock((char[TBUF]){0}, last + 60000, 0));
	xfree(&b);
	xfree(&bb);
}

static void html_states(struct rw *w, const struct report *r)
{
	double off = 25.0; /* start at 12 o'clock */

	rw_puts(
	    w,
	    "<section class=\"panel\"><h2>Accounts by state</h2>\n<div class=\"donut\">"
	    "<svg viewBox=\"0 0 42 42\" role=\"img\" aria-label=\"accounts by state\">"
	    "<circle cx=\"21\" cy=\"21\" r=\"15.915\" fill=\"none\" stroke=\"#edf0f4\" stroke-width=\"6\"/>");
	for (int k = 0; k < STATE_JOB_NSTATES; k++) {
		enum state_job_state s = state_order[k];
		double p = pct(r->counts.jobs[s], r->total);
		static const char *const color[STATE_JOB_NSTATES] = {"#a3abb9", "#2f6fde", "#1f9d55",
								     "#d64545", "#7a5bc4", "#e08a1e"};

		if (p <= 0)
			continue;
		rw_printf(
		    w,
		    "<circle cx=\"21\" cy=\"21\" r=\"15.915\" fill=\"none\" stroke=\"%s\" stroke-width=\"6\" "
		    "stroke-dasharray=\"%.3f %.3f\" stroke-dashoffset=\"%.3f\"><title>%s: "
		    "%ld</title></circle>",
		    color[s], p, 100.0 - p, off, state_job_state_name(s), r->counts.jobs[s]);
		off -= p;
	}
	rw_printf(
	    w,
	    "<text x=\"21\" y=\"21\" text-anchor=\"middle\" font-size=\"8\" font-weight=\"650\" "
	    "fill=\"#1d2433\">%ld</text><text x=\"21\" y=\"27\" text-anchor=\"middle\" font-size=\"3.4\" "
	    "fill=\"#667085\">ACCOUNTS</text></svg>\n<ul>",
	    r->total);
	for (int k = 0; k < STATE_JOB_NSTATES; k++) {
		enum state_job_state s = state_order[k];

		rw_printf(w, "<li><i class=\"dot %s\"></i>%s<b id=\"state-%s\">%ld</b></li>", state_css[s],
			  state_job_state_name(s), state_job_state_name(s), r->counts.jobs[s]);
	}
	rw_puts(w, "</ul></div></section>\n");
}

#define HTML_CAUSE_ACCOUNTS 40	/* account chips per cause */
#define HTML_CAUSE_MESSAGES 200 /* message rows per cause */

static void html_causes(struct rw *w, const struct report *r)
{
	rw_printf(w,
		  "<section class=\"panel\" id=\"failures\"><h2>Failures and skipped messages by cause <span "
		  "class=\"muted\">%zu cause%s"
		  "</span></h2>\n",
		  r->ncauses, r->ncauses == 1 ? "" : "s");
	if (r->ncauses == 0) {
		rw_puts(w, "<p class=\"empty\">No account failed and no message was skipped or "
			   "failed.</p></section>\n");
		return;
	}
	rw_puts(w, "<div class=\"scroll\"><table class=\"causes\"><thead><tr><th>Cause</th><th>Scope</th><th "
		   "class=\"num\">Count</th>"
		   "<th>Accounts</th></tr></thead><tbody>\n");
	for (size_t c = 0; c < r->ncauses; c++) {
		const struct report_cause *k = &r->causes[c];
		char b1[TBUF];

		rw_printf(w, "<tr class=\"cause\" data-scope=\"%s\"><td>",
			  k->account_level ? "account" : "message");
		if (k->account_level) {
			rw_puts(w, "<span class=\"pill s-failed\">");
			rw_html(w, k->cls[0] ? k->cls : "error");
			rw_puts(w, "</span> <b>");
			rw_html(w, k->code[0] ? k->code : "");
			rw_puts(w, "</b><div class=\"cause-text\">");
			rw_html(w, k->text);
			rw_puts(w, "</div>");
		} else {
			rw_printf(w, "<span class=\"pill %s\">%s</span> ",
				  k->mstate == STATE_MSG_SKIPPED ? "s-queued" : "s-failed",
				  msg_state_name(k->mstate));
			rw_html(w, k->text);
		}
		if (k->account_level)
			rw_printf(w, "</td><td>account</td><td class=\"num\">%ld account%s</td><td>",
				  k->count, k->count == 1 ? "" : "s");
		else
			rw_printf(w,
				  "</td><td>message</td><td class=\"num\">%ld message%s<div "
				  "class=\"muted\">%s</div></td><td>",
				  k->count, k->count == 1 ? "" : "s", fmt_bytes(b1, k->bytes));
		for (size_t i = 0; i < k->naccts && i < HTML_CAUSE_ACCOUNTS; i++) {
			const struct report_acct *a = &r->accts[k->accts[i]];

			rw_printf(w, "<span class=\"chip\" title=\"account %lld\">", (long long)a->id);
			rw_html(w, a->user1);
			rw_puts(w, "@");
			rw_html(w, a->host1);
			rw_puts(w, "</span>");
		}
		if (k->naccts > HTML_CAUSE_ACCOUNTS)
			rw_printf(w, "<span class=\"muted\">and %zu more</span>",
				  k->naccts - HTML_CAUSE_ACCOUNTS);
		if (!k->account_level) {
			long shown = 0;

			rw_printf(
			    w,
			    "<details><summary>%s</summary><table><thead><tr><th>Account</th><th>Folder</th>"
			    "<th class=\"num\">UID</th><th class=\"num\">Size</th></tr></thead><tbody>",
			    k->count > HTML_CAUSE_MESSAGES ? "first messages" : "the messages");
			for (size_t i = 0; i < k->nmsgs && shown < HTML_CAUSE_MESSAGES; i++) {
				const struct report_msg *m = &r->msgs[k->msgs[i]];
				const struct report_acct *a = find_acct(r, m->job_id);

				if (!a)
					continue;
				rw_puts(w, "<tr><td>");
				rw_html(w, a->user1);
				rw_puts(w, "@");
				rw_html(w, a->host1);
				rw_puts(w, "</td><td>");
				rw_html(w, m->folder);
				rw_printf(w, "</td><td class=\"num\">%u</td><td class=\"num\">%s</td></tr>",
					  m->uid, fmt_bytes(b1, (int64_t)m->size));
				shown++;
			}
			rw_puts(w, "</tbody></table></details>");
		}
		rw_puts(w, "</td></tr>\n");
	}
	rw_puts(w, "</tbody></table></div></section>\n");
}

static void html_accounts(struct rw *w, const struct report *r)
{
	rw_printf(w,
		  "<section class=\"panel\"><div class=\"tools\"><h2>Accounts <span class=\"muted\"><span "
		  "id=\"shown\">"
		  "%zu</span> shown; click a column to sort; times in UTC</span></h2>"
		  "<input type=\"search\" id=\"filter\" placeholder=\"Filter: user, host, state, error\" "
		  "aria-label=\"filter accounts\"></div>\n"
		  "<div class=\"scroll\"><table id=\"accounts\"><thead><tr>"
		  "<th class=\"num\" data-key=\"id\">ID</th><th data-key=\"account\">Account (source &rarr; "
		  "destination)</th><th data-key=\"state\">State</th><th class=\"num\" "
		  "data-key=\"attempts\">Tries</th>"
		  "<th class=\"num\" data-key=\"folders\">Folders</th><th class=\"num\" "
		  "data-key=\"copied\">Copied</th>"
		  "<th class=\"num\" data-key=\"bytes\">Data</th><th class=\"num\" "
		  "data-key=\"skipped\">Skipped</th>"
		  "<th class=\"num\" data-key=\"failed\">Failed</th><th class=\"num\" "
		  "data-key=\"duration\">Time</th>"
		  "<th class=\"num\" data-key=\"updated\">Updated</th><th data-key=\"error\">Last error</th>"
		  "</tr></thead>\n<tbody>\n",
		  r->naccts);
	for (size_t i = 0; i < r->naccts; i++) {
		const struct report_acct *a = &r->accts[i];
		char b1[TBUF], b2[TBUF], b3[TBUF], b4[TBUF];

		rw_printf(
		    w,
		    "<tr data-job=\"%lld\" data-state=\"%s\"><td class=\"num\" data-v=\"%lld\">%lld</td>"
		    "<td class=\"acct\">",
		    (long long)a->id, state_job_state_name(a->state), (long long)a->id, (long long)a->id);
		html_account(w, a);
		rw_printf(w, "</td><td data-v=\"%d\">", (int)a->state);
		html_pill(w, a->state);
		rw_printf(
		    w,
		    "</td><td class=\"num\" data-v=\"%d\">%d/%d</td><td class=\"num c-folders\">%lld</td>"
		    "<td class=\"num c-copied\" data-v=\"%lld\">%s</td>"
		    "<td class=\"num c-bytes\" data-v=\"%lld\">%s</td>"
		    "<td class=\"num c-skipped\">%lld</td><td class=\"num c-failed\">%lld</td>"
		    "<td class=\"num\" data-v=\"%lld\">%s</td><td class=\"num\" data-v=\"%lld\">%s</td>",
		    a->attempts, a->attempts, a->max_attempts, (long long)a->folders,
		    (long long)a->msgs_copied, fmt_count(b4, a->msgs_copied), (long long)a->bytes_copied,
		    fmt_bytes(b1, a->bytes_copied), (long long)a->msgs_skipped, (long long)a->msgs_failed,
		    (long long)acct_duration_ms(a), fmt_duration(b2, acct_duration_ms(a)),
		    (long long)a->updated_ms, fmt_updated(b3, a->updated_ms, r->generated_ms));
		if (a->err_class[0] || a->err_text[0]) {
			rw_puts(w, "<td class=\"err\" title=\"");
			rw_html(w, a->err_class);
			rw_puts(w, " ");
			rw_html(w, a->err_code);
			rw_puts(w, ": ");
			rw_html(w, a->err_text);
			rw_puts(w, "\"><span><b>");
			rw_html(w, a->err_class);
			rw_puts(w, "</b> ");
			rw_html(w, a->err_text);
			rw_puts(w, "</span></td></tr>\n");
		} else {
			rw_puts(w, "<td class=\"err\"></td></tr>\n");
		}
	}
	rw_puts(w, "</tbody></table></div></section>\n");
}

int report_write_html(const struct report *r, FILE *out, struct fleet_err *err)
{
	struct rw w;
	char t1[TBUF], t2[TBUF];

	rw_init(&w, out);
	rw_printf(
	    &w,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
	    "'unsafe-inline'; "
	    "script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n"
	    "<meta name=\"referrer\" content=\"no-referrer\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	    "<meta name=\"generator\" content=\"imapfleet %s\">\n<title>imapfleet report: run %lld</title>\n"
	    "<style>\n%s</style></head>\n<body>\n<header><div class=\"wrap\">"
	    "<div class=\"brand\">imapfleet &middot; migration report</div>\n"
	    "<h1>Run %lld <span class=\"pill %s\" id=\"run-progress\">%s</span></h1>\n"
	    "<div class=\"meta\"><code id=\"run-name\">",
	    PACKAGE_VERSION, (long long)r->run_id, HTML_STYLE, (long long)r->run_id, progress_css(r),
	    progress_label(r));
	rw_html(&w, r->run_name);
	rw_printf(
	    &w,
	    "</code><span>created %s UTC</span><span>report generated %s UTC</span></div></div></header>\n"
	    "<main class=\"wrap\">\n",
	    fmt_time(t1, r->run_created_ms, 0), fmt_time(t2, r->generated_ms, 0));
	html_cards(&w, r);
	html_progress(&w, r);
	rw_puts(&w, "<div class=\"grid2\">\n");
	html_throughput(&w, r);
	html_states(&w, r);
	rw_puts(&w, "</div>\n");
	html_causes(&w, r);
	html_accounts(&w, r);
	rw_printf(
	    &w,
	    "</main>\n<footer>imapfleet %s &middot; a self-contained page: no network access, no external "
	    "files &middot; the same data is in accounts.csv and "
	    "accounts.json</footer>\n<script>\n%s</script>\n"
	    "</body></html>\n",
	    PACKAGE_VERSION, HTML_SCRIPT);
	return rw_finish(&w, "report.html", err);
}

/* ---- files -------------------------------------------------------------------------------------- */

static int mkdirs(const char *dir, struct fleet_err *err)
{
	char tmp[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(tmp))
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_IO,
				     "cannot use '%s' as the report directory", dir);
	memcpy(tmp, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0777) < 0 && errno != EEXIST)
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_IO,
					     "could not create directory %s: %s", tmp, strerror(errno));
		if (i < n)
			tmp[i] = '/';
	}
	return 0;
}

typedef int (*report_writer)(const struct report *r, FILE *out, struct fleet_err *err);

static int write_one(const struct report *r, const char *dir, const char *name, report_writer fn,
		     void (*written)(const char *path, void *ctx), void *ctx, struct fleet_err *err)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *tmp = xasprintf("%s/.%s.tmp.%ld", dir, name, (long)getpid());
	int fd, rc = -1;
	FILE *f;

	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
	if (fd < 0) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_IO,
			      "could not create %s: %s", tmp, strerror(errno));
		goto out;
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_IO,
			      "could not write %s: %s", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	errno = 0;
	if (fn(r, f, err) < 0) {
		fclose(f);
		unlink(tmp);
		fleet_err_prefix(err, "%s", path);
		goto out;
	}
	if (fclose(f) != 0) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_IO,
			      "could not write %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_IO,
			      "could not rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (written)
		written(path, ctx);
	rc = 0;
out:
	xfree(&path);
	xfree(&tmp);
	return rc;
}

int report_write_dir(const struct report *r, const char *dir, unsigned formats,
		     void (*written)(const char *path, void *ctx), void *ctx, struct fleet_err *err)
{
	if (mkdirs(dir, err) < 0)
		return -1;
	if ((formats & REPORT_CSV) &&
	    (write_one(r, dir, "accounts.csv", report_write_accounts_csv, written, ctx, err) < 0 ||
	     write_one(r, dir, "failures.csv", report_write_failures_csv, written, ctx, err) < 0))
		return -1;
	if ((formats & REPORT_JSON) &&
	    write_one(r, dir, "accounts.json", report_write_json, written, ctx, err) < 0)
		return -1;
	if ((formats & REPORT_HTML) &&
	    write_one(r, dir, "report.html", report_write_html, written, ctx, err) < 0)
		return -1;
	return 0;
}

int report_formats_parse(const char *s, unsigned *formats)
{
	const char *p = s;

	*formats = 0;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 3 && !strncmp(p, "csv", 3))
			*formats |= REPORT_CSV;
		else if (n == 4 && !strncmp(p, "json", 4))
			*formats |= REPORT_JSON;
		else if (n == 4 && !strncmp(p, "html", 4))
			*formats |= REPORT_HTML;
		else if (n == 3 && !strncmp(p, "all", 3))
			*formats |= REPORT_ALL;
		else
			return -1;
		p += n;
		if (*p == ',')
			p++;
	}
	return *formats ? 0 : -1;
}

/* ---- status ------------------------------------------------------------------------------------- */

struct status_ctx {
	struct rw *w;
	int json;
	size_t n;
	size_t width; /* account column */
};

/* "user1@host1 -> user2@host2" as terminal text; returns its width. */
static size_t term_account(struct rw *w, const struct state_job_report *j)
{
	size_t c = rw_term(w, j->user1);

	rw_put(w, "@", 1);
	c += 1 + rw_term(w, j->host1);
	rw_puts(w, " -> ");
	c += 4 + rw_term(w, j->user2);
	rw_put(w, "@", 1);
	c += 1 + rw_term(w, j->host2);
	return c;
}

static int status_width_cb(const struct state_job_report *j, void *vctx)
{
	struct status_ctx *ctx = vctx;
	struct rw scratch;
	size_t c;

	/* Width in code points, measured the way it will be printed (into a buffer never written). */
	fleet_buf_init(&scratch.b, RW_MAX);
	scratch.f = NULL;
	scratch.failed = 0;
	c = term_account(&scratch, j);
	fleet_buf_release(&scratch.b);
	if (c > ctx->width)
		ctx->width = c;
	return 0;
}

static int status_job_cb(const struct state_job_report *j, void *vctx)
{
	struct status_ctx *ctx = vctx;
	struct rw *w = ctx->w;
	char t[TBUF];

	if (ctx->json) {
		rw_printf(w, "%s\n    {\"id\": %lld, \"source\": {\"host\": ", ctx->n ? "," : "",
			  (long long)j->job_id);
		rw_json(w, j->host1);
		rw_printf(w, ", \"port\": %u, \"user\": ", j->port1);
		rw_json(w, j->user1);
		rw_puts(w, "}, \"destination\": {\"host\": ");
		rw_json(w, j->host2);
		rw_printf(w, ", \"port\": %u, \"user\": ", j->port2);
		rw_json(w, j->user2);
		rw_printf(w,
			  "}, \"state\": \"%s\", \"attempts\": %d, \"max_attempts\": %d, \"folders\": %lld, "
			  "\"msgs_copied\": %lld, \"bytes_copied\": %lld, \"msgs_skipped\": %lld, "
			  "\"msgs_failed\": %lld, "
			  "\"error\": ",
			  state_job_state_name(j->state), j->attempts, j->max_attempts, (long long)j->folders,
			  (long long)j->msgs_copied, (long long)j->bytes_copied, (long long)j->msgs_skipped,
			  (long long)j->msgs_failed);
		if (j->last_error_class[0] || j->last_error_text[0]) {
			rw_puts(w, "{\"class\": ");
			rw_json_opt(w, j->last_error_class);
			rw_puts(w, ", \"code\": ");
			rw_json_opt(w, j->last_error_code);
			rw_puts(w, ", \"text\": ");
			rw_json(w, j->last_error_text);
			rw_puts(w, "}");
		} else {
			rw_puts(w, "null");
		}
		rw_puts(w, ", \"updated_at\": ");
		json_time(w, j->updated_at_ms);
		rw_puts(w, "}");
	} else {
		size_t c;

		rw_printf(w, "%6lld  ", (long long)j->job_id);
		c = term_account(w, j);
		rw_pad(w, c, ctx->width);
		rw_printf(w, "  %-9s %2d/%-2d %8lld %6lld  %-19s", state_job_state_name(j->state),
			  j->attempts, j->max_attempts, (long long)j->msgs_copied, (long long)j->msgs_failed,
			  fmt_time(t, j->updated_at_ms, 0));
		if (j->last_error_class[0] || j->last_error_text[0]) {
			rw_puts(w, "  ");
			rw_term(w, j->last_error_class);
			if (j->last_error_code[0]) {
				rw_puts(w, " ");
				rw_term(w, j->last_error_code);
			}
			rw_puts(w, ": ");
			rw_term(w, j->last_error_text);
		}
		rw_puts(w, "\n");
	}
	ctx->n++;
	return 0;
}

static void status_run(struct rw *w, const struct run_info *ri, int json, int first)
{
	char t[TBUF], b[TBUF];
	const struct state_run_counts *c = &ri->counts;

	if (json) {
		rw_printf(w, "%s\n    {\"id\": %lld, \"name\": ", first ? "" : ",", (long long)ri->id);
		rw_json(w, ri->name);
		rw_puts(w, ", \"state\": ");
		rw_json(w, ri->state);
		rw_printf(w, ", \"progress\": \"%s\", \"created_at\": ", run_progress(ri->state, c));
		json_time(w, ri->created_ms);
		rw_printf(w, ", \"accounts\": {\"total\": %ld", counts_total(c));
		for (int s = 0; s < STATE_JOB_NSTATES; s++)
			rw_printf(w, ", \"%s\": %ld", state_job_state_name((enum state_job_state)s),
				  c->jobs[s]);
		rw_printf(w,
			  "}, \"msgs_copied\": %lld, \"bytes_copied\": %lld, \"msgs_skipped\": %lld, "
			  "\"msgs_failed\": %lld}",
			  (long long)c->msgs_copied, (long long)c->bytes_copied, (long long)c->msgs_skipped,
			  (long long)c->msgs_failed);
		return;
	}
	rw_printf(w, "run %lld  %s  created %s UTC  ", (long long)ri->id, run_progress(ri->state, c),
		  fmt_time(t, ri->created_ms, 0));
	rw_term(w, ri->name);
	rw_printf(w,
		  "\n  accounts: %ld total, %ld done, %ld failed, %ld running, %ld queued, %ld cancelled, %ld partial\n"
		  "  messages: %lld copied (%s), %lld skipped, %lld failed\n",
		  counts_total(c), c->jobs[STATE_JOB_DONE], c->jobs[STATE_JOB_FAILED],
		  c->jobs[STATE_JOB_RUNNING], c->jobs[STATE_JOB_QUEUED], c->jobs[STATE_JOB_CANCELLED],
		  c->jobs[STATE_JOB_PARTIAL], (long long)c->msgs_copied, fmt_bytes(b, c->bytes_copied), (long long)c->msgs_skipped,
		  (long long)c->msgs_failed);
}

int report_status(struct state_conn *sc, int64_t run_id, int json, FILE *out, struct fleet_err *err)
{
	struct run_list l;
	struct status_ctx ctx;
	struct rw w;
	int64_t shown = 0;
	int r;

	if (run_list_load(sc, run_id, &l, err) < 0) {
		run_list_release(&l);
		return -1;
	}
	r = report_pick_run(sc, run_id, &shown, err);
	if (r < 0) {
		run_list_release(&l);
		return -1;
	}
	rw_init(&w, out);
	if (json) {
		rw_puts(&w, "{\n  \"runs\": [");
		for (size_t i = 0; i < l.n; i++)
			status_run(&w, &l.v[i], 1, i == 0);
		rw_puts(&w, l.n ? "\n  ],\n" : "],\n");
		if (r == 1)
			rw_printf(&w, "  \"run_id\": %lld,\n  \"accounts\": [", (long long)shown);
		else
			rw_puts(&w, "  \"run_id\": null,\n  \"accounts\": [");
	} else if (l.n == 0) {
		rw_puts(&w,
			run_id
			    ? "imapfleet status: no such run in the state store\n"
			    : "imapfleet status: no run in the state store yet ('imapfleet run ACCOUNTS.csv' "
			      "starts one)\n");
	} else {
		for (size_t i = 0; i < l.n; i++)
			status_run(&w, &l.v[i], 0, i == 0);
	}
	run_list_release(&l);
	memset(&ctx, 0, sizeof(ctx));
	ctx.w = &w;
	ctx.json = json;
	ctx.width = 7;
	if (r == 1) {
		if (!json) {
			if (state_report_jobs(sc, shown, status_width_cb, &ctx, err) < 0)
				goto fail;
			if (ctx.width > 72)
				ctx.width = 72;
			rw_printf(&w, "\naccounts of run %lld:\n%6s  ", (long long)shown, "ID");
			rw_puts(&w, "ACCOUNT");
			rw_pad(&w, 7, ctx.width);
			rw_printf(&w, "  %-9s %5s %8s %6s  %-19s  %s\n", "STATE", "TRIES", "COPIED", "FAILED",
				  "UPDATED (UTC)", "LAST ERROR");
		}
		if (state_report_jobs(sc, shown, status_job_cb, &ctx, err) < 0)
			goto fail;
		if (!json && ctx.n == 0)
			rw_puts(&w, "  (no accounts)\n");
	}
	if (json)
		rw_puts(&w, ctx.n ? "\n  ]\n}\n" : "]\n}\n");
	if (rw_finish(&w, "the status", err) < 0)
		return -1;
	return r == 1 ? 0 : 1;
fail:
	rw_flush(&w);
	fleet_buf_release(&w.b);
	return -1;
}

/* ---- retry -------------------------------------------------------------------------------------- */

struct retry_item {
	int64_t id;
	enum state_job_state state;
	char *line; /* "user1@host1 -> user2@host2" (terminal-safe) */
	char *why;  /* last error, terminal-safe, or NULL */
};

struct retry_ctx {
	int64_t only; /* one job id, or 0 for every failed job */
	struct retry_item *v;
	size_t n, alloc;
};

static char *term_string(const char *s)
{
	struct rw w;
	char *out;

	fleet_buf_init(&w.b, RW_MAX);
	w.f = NULL;
	w.failed = 0;
	rw_term(&w, s);
	out = fleet_buf_detach(&w.b, NULL);
	return out ? out : xstrdup("");
}

static int retry_cb(const struct state_job_report *j, void *vctx)
{
	struct retry_ctx *ctx = vctx;
	struct retry_item *it;
	char *u1, *h1, *u2, *h2;

	if (ctx->only ? j->job_id != ctx->only : (j->state != STATE_JOB_FAILED && j->state != STATE_JOB_PARTIAL))
		return 0;
	ctx->v = xgrow(ctx->v, sizeof(*ctx->v), ctx->n + 1, &ctx->alloc);
	it = &ctx->v[ctx->n++];
	it->id = j->job_id;
	it->state = j->state;
	u1 = term_string(j->user1);
	h1 = term_string(j->host1);
	u2 = term_string(j->user2);
	h2 = term_string(j->host2);
	it->line = xasprintf("%s@%s -> %s@%s", u1, h1, u2, h2);
	xfree(&u1);
	xfree(&h1);
	xfree(&u2);
	xfree(&h2);
	it->why = NULL;
	if (j->last_error_class[0] || j->last_error_text[0]) {
		char *c = term_string(j->last_error_class), *t = term_string(j->last_error_text);

		it->why = xasprintf("%s: %s", c, t);
		xfree(&c);
		xfree(&t);
	}
	return 0;
}

static void retry_release(struct retry_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n; i++) {
		xfree(&ctx->v[i].line);
		xfree(&ctx->v[i].why);
	}
	xfree(&ctx->v);
}

static void retry_print(FILE *out, int64_t run_id, const struct retry_item *it)
{
	fprintf(out, "requeued account %lld of run %lld: %s (was %s%s%s)\n", (long long)it->id,
		(long long)run_id, it->line, state_job_state_name(it->state), it->why ? ": " : "",
		it->why ? it->why : "");
}

int report_retry(struct state_conn *sc, int64_t run_id, const char *account, FILE *out, long *count,
		 struct fleet_err *err)
{
	struct retry_ctx ctx;
	int rc = -1;

	*count = 0;
	memset(&ctx, 0, sizeof(ctx));
	if (account) {
		int64_t job_id = 0;
		uint64_t num;
		int found;

		if (run_id == 0 && fleet_parse_u64(account, 1, INT64_MAX, &num) < 0)
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, "NO_RUN",
					     "cannot find '%s' without a run: give --run ID", account);
		found = state_job_find(sc, run_id, account, &job_id, err);
		if (found < 0)
			return -1;
		if (found == 0) {
			fprintf(out, "no account matches '%s'", account);
			if (run_id)
				fprintf(out, " in run %lld", (long long)run_id);
			fprintf(out, ": nothing requeued\n");
			return 0;
		}
		if (run_id == 0 && state_report_job_run(sc, job_id, &run_id, err) < 0)
			return -1;
		ctx.only = job_id;
		if (state_report_jobs(sc, run_id, retry_cb, &ctx, err) < 0)
			goto out;
		if (ctx.n != 1) {
			fprintf(out, "account %lld is gone: nothing requeued\n", (long long)job_id);
			rc = 0;
			goto out;
		}
		found = state_job_requeue(sc, job_id, err);
		if (found < 0)
			goto out;
		if (found == 0) {
			fprintf(out, "account %lld of run %lld (%s) is running right now: not requeued\n",
				(long long)job_id, (long long)run_id, ctx.v[0].line);
		} else {
			retry_print(out, run_id, &ctx.v[0]);
			*count = 1;
		}
		rc = 0;
		goto out;
	}
	if (state_report_jobs(sc, run_id, retry_cb, &ctx, err) < 0)
		goto out;
	if (ctx.n == 0) {
		fprintf(out, "no failed account in run %lld: nothing requeued\n", (long long)run_id);
		rc = 0;
		goto out;
	}
	if (state_run_requeue(sc, run_id, STATE_JOB_MASK(STATE_JOB_FAILED) | STATE_JOB_MASK(STATE_JOB_PARTIAL), count,
			      err) < 0)
		goto out;
	for (size_t i = 0; i < ctx.n; i++)
		retry_print(out, run_id, &ctx.v[i]);
	if ((size_t)*count > ctx.n)
		fprintf(out, "%lld more account(s) failed meanwhile and were requeued too\n",
			(long long)((size_t)*count - ctx.n));
	rc = 0;
out:
	retry_release(&ctx);
	return rc;
}

/* state/conn.c: the connection, statement execution with one transparent reconnect, SQLSTATE
 * classes, and small helpers shared by the other state files. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>

#include "common/alloc.h"
#include "common/escape.h"
#include "common/log.h"
#include "common/util.h"
#include "state/state_private.h"

/* ---- SQLSTATE classes (design section 8) ---------------------------------------------------- */

enum fleet_err_class state_sqlstate_class(const char *sqlstate)
{
	static const char *const transient_exact[] = {
	    SQLSTATE_ADMIN_SHUTDOWN,	    SQLSTATE_CRASH_SHUTDOWN,	SQLSTATE_CANNOT_CONNECT_NOW,
	    SQLSTATE_SERIALIZATION_FAILURE, SQLSTATE_DEADLOCK_DETECTED, SQLSTATE_LOCK_NOT_AVAILABLE,
	    SQLSTATE_QUERY_CANCELED,
	};

	if (!sqlstate || strlen(sqlstate) != 5)
		return FLEET_ERR_TRANSIENT; /* no SQLSTATE: the connection itself failed */
	for (size_t i = 0; i < sizeof(transient_exact) / sizeof(transient_exact[0]); i++)
		if (strcmp(sqlstate, transient_exact[i]) == 0)
			return FLEET_ERR_TRANSIENT;
	if (strncmp(sqlstate, SQLSTATE_CLASS_CONNECTION, 2) == 0 || strncmp(sqlstate, SQLSTATE_CLASS_RESOURCES, 2) == 0)
		return FLEET_ERR_TRANSIENT;
	if (strncmp(sqlstate, SQLSTATE_CLASS_SYSTEM, 2) == 0 && strcmp(sqlstate, SQLSTATE_UNDEFINED_FILE) != 0)
		return FLEET_ERR_TRANSIENT;
	return FLEET_ERR_BUG; /* 23* constraints and everything else: a broken invariant */
}

/* First line of a libpq message, without the "ERROR:  " decoration. */
static void first_line(const char *in, char *out, size_t cap)
{
	size_t n;

	if (!in)
		in = "";
	if (strncmp(in, "ERROR:  ", 8) == 0)
		in += 8;
	else if (strncmp(in, "FATAL:  ", 8) == 0)
		in += 8;
	n = strcspn(in, "\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

static int conn_broken(const struct state_conn *sc)
{
	return !sc->pg || PQstatus(sc->pg) != CONNECTION_OK;
}

int state_err_from_result(struct state_conn *sc, const PGresult *res, const char *what, struct fleet_err *err)
{
	const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[FLEET_ERR_TEXT_MAX];

	if (!sqlstate || conn_broken(sc)) {
		first_line(sc->pg ? PQerrorMessage(sc->pg) : "no connection", line, sizeof(line));
		if (sqlstate && !conn_broken(sc))
			return fleet_err_set(err, state_sqlstate_class(sqlstate), FLEET_SCOPE_RUN, sqlstate,
					     "could not %s: %s", what, primary ? primary : line);
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, STATE_ERR_CONNECTION,
				     "could not %s: lost the connection to the state database: %s", what,
				     line[0] ? line : "connection broken");
	}
	first_line(primary, line, sizeof(line));
	return fleet_err_set(err, state_sqlstate_class(sqlstate), FLEET_SCOPE_RUN, sqlstate,
			     "could not %s: %s", what, line);
}

/* ---- connecting ----------------------------------------------------------------------------- */

/* libpq prints notices (and the server's "terminating connection" on a shutdown) on stderr by
 * default: into the log instead, at debug level. */
static void quiet_notice(void *arg, const char *message)
{
	char line[FLEET_ERR_TEXT_MAX];

	(void)arg;
	first_line(message, line, sizeof(line));
	log_debug("state database: %s", line);
}

static int conn_connect(struct state_conn *sc, struct fleet_err *err)
{
	char line[FLEET_ERR_TEXT_MAX];

	if (sc->pg)
		PQfinish(sc->pg);
	sc->pg = PQconnectdb(sc->conninfo);
	PQsetNoticeProcessor(sc->pg, quiet_notice, NULL);
	sc->in_tx = 0;
	sc->prepared = 0;
	if (PQstatus(sc->pg) != CONNECTION_OK) {
		first_line(PQerrorMessage(sc->pg), line, sizeof(line));
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, STATE_ERR_CONNECTION,
			      "could not connect to the state database: %s", line);
		fleet_err_detail(err, "check --state, IMAPFLEET_STATE or the PG* environment variables");
		PQfinish(sc->pg);
		sc->pg = NULL;
		return -1;
	}
	return 0;
}

/* One statement per new connection: NOTICEs quiet ("relation already exists, skipping"), and
 * prepared statements planned once per connection. Left to itself PostgreSQL plans the first five
 * executions of a prepared statement for their values and keeps doing so whenever the generic
 * plan's estimate is higher, which it is for the folder upsert and the slot acquire: planning cost
 * more CPU than executing them (0.6 ms against 0.4 ms per folder upsert). Every prepared statement
 * here reaches its rows through keys or the partial claim indexes whatever the values, so the
 * generic plan is the custom plan. */
static int session_setup(struct state_conn *sc, int flags, struct fleet_err *err)
{
	return state_exec_cmd(sc, "configure the session",
			      "SELECT set_config('client_min_messages', 'warning', false),"
			      " set_config('plan_cache_mode', 'force_generic_plan', false)",
			      0, NULL, flags, err);
}

static int conn_open(const char *conninfo, int migrate, struct state_conn **out, struct fleet_err *err)
{
	struct state_conn *sc = xcalloc(1, sizeof(*sc));

	*out = NULL;
	sc->conninfo = xstrdup(conninfo ? conninfo : "");
	if (conn_connect(sc, err) < 0) {
		state_conn_close(&sc);
		return -1;
	}
	if (session_setup(sc, STATE_EXEC_IDEMPOTENT, err) < 0 ||
	    (migrate && state_schema_migrate(sc, err) < 0)) {
		state_conn_close(&sc);
		return -1;
	}
	*out = sc;
	return 0;
}

int state_conn_open(const char *conninfo, struct state_conn **out, struct fleet_err *err)
{
	return conn_open(conninfo, 1, out, err);
}

int state_conn_open_nomigrate(const char *conninfo, struct state_conn **out, struct fleet_err *err)
{
	return conn_open(conninfo, 0, out, err);
}

void state_conn_close(struct state_conn **psc)
{
	struct state_conn *sc = *psc;

	if (!sc)
		return;
	if (sc->pg)
		PQfinish(sc->pg);
	xfree(&sc->conninfo);
	xfree(psc);
}

int state_conn_reusable(const struct state_conn *sc)
{
	return sc->pg && !sc->in_tx && PQstatus(sc->pg) == CONNECTION_OK &&
	       PQtransactionStatus(sc->pg) == PQTRANS_IDLE;
}

int state_conn_reconnect(struct state_conn *sc, struct fleet_err *err)
{
	if (conn_connect(sc, err) < 0)
		return -1;
	return session_setup(sc, 0, err); /* not again from inside a reconnect */
}

/* ---- waiting out an outage of the state store ------------------------------------------------ */

/* Process-wide: how long a statement waits for the store to answer again (0 = not at all), and
 * whether an outage is going on (so that it is reported once, not by every thread). */
static atomic_uint g_outage_wait_ms;
static atomic_int g_outage;
static atomic_uint_fast64_t g_outage_since_ms;

void state_set_outage_wait(unsigned ms)
{
	atomic_store(&g_outage_wait_ms, ms);
}

static void outage_begins(const struct fleet_err *err)
{
	int expected = 0;

	if (atomic_compare_exchange_strong(&g_outage, &expected, 1)) {
		atomic_store(&g_outage_since_ms, fleet_now_ms());
		log_warn("the state database does not answer (%s): work pauses until it does (at most %u s)",
			 err ? err->message : "connection lost", atomic_load(&g_outage_wait_ms) / 1000);
	}
}

static void outage_ends(void)
{
	int expected = 1;

	if (atomic_compare_exchange_strong(&g_outage, &expected, 0))
		log_info("the state database answers again after %.1f s: work resumes",
			 (double)(fleet_now_ms() - atomic_load(&g_outage_since_ms)) / 1000.0);
}

/* Reconnects; while the server does not answer, tries again every second at most, for up to the
 * outage wait, so that the caller resumes within about a second of the server's return. */
static int reconnect_waiting(struct state_conn *sc, struct fleet_err *err)
{
	uint64_t t0 = fleet_now_ms();
	unsigned delay = 100;

	for (;;) {
		unsigned wait;

		if (state_conn_reconnect(sc, err) == 0) {
			outage_ends();
			return 0;
		}
		wait = atomic_load(&g_outage_wait_ms);
		if (wait == 0 || fleet_now_ms() - t0 >= wait)
			return -1;
		outage_begins(err);
		fleet_sleep_ms(delay);
		delay = delay * 2 > 1000 ? 1000 : delay * 2;
	}
}

/* ---- executing -------------------------------------------------------------------------------- */

static PGresult *exec_any(struct state_conn *sc, int stmt, const char *what, const char *sql, int nparams,
			  const char *const *values, const int *lengths, const int *formats, int flags,
			  struct fleet_err *err)
{
	for (int attempt = 0;; attempt++) {
		PGresult *res;
		ExecStatusType st;

		if (conn_broken(sc)) {
			if (sc->in_tx) {
				fleet_err_set(
				    err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, STATE_ERR_CONNECTION,
				    "could not %s: lost the connection to the state database inside a "
				    "transaction",
				    what);
				return NULL;
			}
			if (reconnect_waiting(sc, err) < 0) {
				fleet_err_prefix(err, "could not %s", what);
				return NULL;
			}
		}
		if (stmt >= 0 && !(sc->prepared & (1u << stmt))) {
			char name[32];

			snprintf(name, sizeof(name), "imapfleet_%d", stmt);
			res = PQprepare(sc->pg, name, sql, nparams, NULL);
			st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
			if (st != PGRES_COMMAND_OK) {
				state_err_from_result(sc, res, what, err);
				PQclear(res);
				if (attempt == 0 && !sc->in_tx && conn_broken(sc))
					continue;
				return NULL;
			}
			PQclear(res);
			sc->prepared |= 1u << stmt;
		}
		if (stmt >= 0) {
			char name[32];

			snprintf(name, sizeof(name), "imapfleet_%d", stmt);
			res = PQexecPrepared(sc->pg, name, nparams, values, lengths, formats,
					     (flags & STATE_EXEC_BINARY) ? 1 : 0);
		} else {
			res = PQexecParams(sc->pg, sql, nparams, NULL, values, lengths, formats,
					   (flags & STATE_EXEC_BINARY) ? 1 : 0);
		}
		st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			return res;
		state_err_from_result(sc, res, what, err);
		PQclear(res);
		/* Idempotent: again on a new connection (a restart may break it more than once). */
		if (attempt < 4 && !sc->in_tx && conn_broken(sc) && (flags & STATE_EXEC_IDEMPOTENT)) {
			log_warn("state database connection lost; reconnecting (%s)", what);
			continue;
		}
		return NULL;
	}
}

/* The state boundary for text: PostgreSQL refuses a text parameter that is not valid UTF-8
 * (SQLSTATE 22021), and a failure whose text cannot be recorded would leave its job running, to be
 * claimed again (and its LOGIN refused again) every lease period. So every text parameter is made
 * valid here, whatever layer built it: bytes that are not UTF-8 become U+FFFD. Texts where the
 * original bytes matter arrive already escaped (error texts keep them as \xHH, see common/err.h).
 * Returns values itself when all are valid (the common case), else a copy to free_params(). */
static const char *const *valid_params(int nparams, const char *const *values, const int *formats, char ***owned)
{
	const char **copy = NULL;

	*owned = NULL;
	for (int i = 0; i < nparams; i++) {
		if (!values[i] || (formats && formats[i]) || fleet_utf8_valid(values[i], strlen(values[i])))
			continue;
		if (!copy) {
			copy = xcalloc((size_t)nparams, sizeof(*copy));
			*owned = xcalloc((size_t)nparams, sizeof(**owned));
			memcpy(copy, values, (size_t)nparams * sizeof(*copy));
		}
		(*owned)[i] = fleet_utf8_sanitize(values[i]);
		copy[i] = (*owned)[i];
	}
	return copy ? (const char *const *)copy : values;
}

static void free_params(int nparams, const char *const *values, const char *const *orig, char **owned)
{
	if (!owned)
		return;
	for (int i = 0; i < nparams; i++)
		xfree(&owned[i]);
	xfree(&owned);
	if (values != orig) {
		void *p = (void *)(uintptr_t)values;

		xfree(&p);
	}
}

PGresult *state_exec(struct state_conn *sc, const char *what, const char *sql, int nparams,
		     const char *const *values, const int *lengths, const int *formats, int flags,
		     struct fleet_err *err)
{
	char **owned;
	const char *const *v = valid_params(nparams, values, formats, &owned);
	PGresult *res = exec_any(sc, -1, what, sql, nparams, v, lengths, formats, flags, err);

	free_params(nparams, v, values, owned);
	return res;
}

PGresult *state_exec_prepared(struct state_conn *sc, enum state_stmt id, const char *what, const char *sql,
			      int nparams, const char *const *values, int flags, struct fleet_err *err)
{
	char **owned;
	const char *const *v = valid_params(nparams, values, NULL, &owned);
	PGresult *res = exec_any(sc, (int)id, what, sql, nparams, v, NULL, NULL, flags, err);

	free_params(nparams, v, values, owned);
	return res;
}

PGresult *state_exec_id(struct state_conn *sc, const char *what, const char *sql, int64_t id, int flags,
			struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, id)};

	return state_exec(sc, what, sql, 1, p, NULL, NULL, flags, err);
}

PGresult *state_exec_id2(struct state_conn *sc, const char *what, const char *sql, int64_t id1, int64_t id2,
			 int flags, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b1[STATE_NUM_MAX];
	const char *p[2] = {state_fmt_i64(b0, id1), state_fmt_i64(b1, id2)};

	return state_exec(sc, what, sql, 2, p, NULL, NULL, flags, err);
}

int state_exec_cmd(struct state_conn *sc, const char *what, const char *sql, int nparams,
		   const char *const *values, int flags, struct fleet_err *err)
{
	return state_done(state_exec(sc, what, sql, nparams, values, NULL, NULL, flags, err));
}

int state_begin(struct state_conn *sc, struct fleet_err *err)
{
	if (state_exec_cmd(sc, "begin a transaction", "BEGIN", 0, NULL, 0, err) < 0)
		return -1;
	sc->in_tx = 1;
	return 0;
}

int state_commit(struct state_conn *sc, struct fleet_err *err)
{
	int rc = state_exec_cmd(sc, "commit", "COMMIT", 0, NULL, 0, err);

	sc->in_tx = 0;
	return rc;
}

void state_rollback(struct state_conn *sc)
{
	if (!conn_broken(sc)) {
		PGresult *res = PQexecParams(sc->pg, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);

		PQclear(res);
	}
	sc->in_tx = 0;
}

int state_lease_lost(struct state_conn *sc, const struct state_lease *lease, struct fleet_err *err)
{
	PGresult *res = state_exec_id(sc, "look up the job",
				      "SELECT state, coalesce(lease_owner, 0), lease_epoch FROM job WHERE id = $1",
				      lease->job_id, STATE_EXEC_IDEMPOTENT, err);

	if (res && PQntuples(res) == 1) {
		const char *state = state_get_str(res, 0, 0);
		int64_t owner = state_get_i64(res, 0, 1), epoch = state_get_i64(res, 0, 2);

		if (strcmp(state, "running") == 0)
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, STATE_ERR_LEASE_LOST,
				      "job %" PRId64 " lease lost: now held by engine %" PRId64
				      " (epoch %" PRId64 ", ours was %" PRId64 ")",
				      lease->job_id, owner, epoch, lease->epoch);
		else
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, STATE_ERR_LEASE_LOST,
				      "job %" PRId64 " lease lost: the job is now %s", lease->job_id, state);
	} else {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, STATE_ERR_LEASE_LOST,
			      "job %" PRId64 " lease lost: the job no longer exists", lease->job_id);
	}
	PQclear(res);
	return -1;
}

/* ---- helpers ------------------------------------------------------------------------------- */

const char *state_fmt_i64(char buf[STATE_NUM_MAX], int64_t v)
{
	snprintf(buf, STATE_NUM_MAX, "%" PRId64, v);
	return buf;
}

const char *state_fmt_u64(char buf[STATE_NUM_MAX], uint64_t v)
{
	snprintf(buf, STATE_NUM_MAX, "%" PRIu64, v);
	return buf;
}

void state_lease_params(char b[][STATE_NUM_MAX], const struct state_lease *lease, const char **p)
{
	p[0] = state_fmt_i64(b[0], lease->job_id);
	p[1] = state_fmt_i64(b[1], lease->owner);
	p[2] = state_fmt_i64(b[2], lease->epoch);
}

void state_err_params(const struct fleet_err *why, enum fleet_err_class cls, const char *message, const char **p)
{
	p[0] = fleet_err_class_name(why ? why->cls : cls);
	p[1] = why && why->code[0] ? why->code : NULL;
	p[2] = why ? why->message : message;
}

int64_t state_get_i64(const PGresult *res, int row, int col)
{
	const char *s;
	char *end;
	long long v;

	if (PQgetisnull(res, row, col))
		return 0;
	s = PQgetvalue(res, row, col);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s)
		return 0;
	return (int64_t)v;
}

const char *state_get_str(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

int state_get_bool(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

int state_each_row(PGresult *res, state_row_fn fn, void *ctx)
{
	int rc = 0;

	if (!res)
		return -1;
	for (int i = 0, n = PQntuples(res); i < n && rc == 0; i++)
		rc = fn(res, i, ctx);
	PQclear(res);
	return rc;
}

int state_done(PGresult *res)
{
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

int state_one_i64(PGresult *res, int64_t *out)
{
	int found;

	if (!res)
		return -1;
	found = PQntuples(res) == 1;
	if (found)
		*out = state_get_i64(res, 0, 0);
	PQclear(res);
	return found;
}

int state_count(PGresult *res, long *count)
{
	if (!res)
		return -1;
	if (count)
		*count = PQntuples(res) > 0 ? (long)state_get_i64(res, 0, 0) : 0;
	PQclear(res);
	return 0;
}

int state_cmd_count(PGresult *res, int64_t *n)
{
	if (!res)
		return -1;
	*n = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

void state_array_begin(struct fleet_buf *b)
{
	fleet_buf_reset(b);
	fleet_buf_add(b, "{", 1);
}

static void array_sep(struct fleet_buf *b)
{
	if (b->len > 1)
		fleet_buf_add(b, ",", 1);
}

void state_array_i64(struct fleet_buf *b, int64_t v)
{
	char num[STATE_NUM_MAX];

	array_sep(b);
	fleet_buf_add_str(b, state_fmt_i64(num, v));
}

void state_array_null(struct fleet_buf *b)
{
	array_sep(b);
	fleet_buf_add(b, "NULL", 4);
}

void state_array_str(struct fleet_buf *b, const char *s)
{
	if (!s) {
		state_array_null(b);
		return;
	}
	array_sep(b);
	fleet_buf_add(b, "\"", 1);
	for (const char *p = s; *p;) {
		size_t n = strcspn(p, "\"\\");

		fleet_buf_add(b, p, n);
		p += n;
		if (*p) {
			char esc[2] = {'\\', *p};

			fleet_buf_add(b, esc, 2);
			p++;
		}
	}
	fleet_buf_add(b, "\"", 1);
}

void state_array_hex(struct fleet_buf *b, const unsigned char *p, size_t n)
{
	char *out;

	if (!p) {
		state_array_null(b);
		return;
	}
	array_sep(b);
	out = fleet_buf_reserve(b, n * 2);
	if (!out)
		return;
	fleet_hex(p, n, out);
	fleet_buf_commit(b, n * 2);
}

void state_array_end(struct fleet_buf *b)
{
	fleet_buf_add(b, "}", 1);
}

int state_bufs_fit(const struct fleet_buf *b, size_t n, const char *what, struct fleet_err *err)
{
	for (size_t i = 0; i < n; i++)
		if (fleet_buf_truncated(&b[i]))
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_TOO_LARGE,
					     "cannot %s: a list passes its cap of %zu bytes", what, b[i].max);
	return 0;
}

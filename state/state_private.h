/* state/state_private.h: shared by the .c files of state/ only; not part of the module contract. */
#ifndef IMAPFLEET_STATE_STATE_PRIVATE_H
#define IMAPFLEET_STATE_STATE_PRIVATE_H

#include <libpq-fe.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "state/state.h"

struct state_conn {
	PGconn *pg;
	char *conninfo;
	int in_tx;	   /* inside an explicit BEGIN: no transparent retry */
	unsigned prepared; /* bit per enum state_stmt prepared on this connection */
};

/* Hot statements prepared once per connection (planning a large CTE costs more than running it:
 * 30 ms to plan the claim, 0.3 ms to run it). Every statement of an account attempt and of each
 * of its folders is here. At most 32 (a bit each in state_conn.prepared). */
enum state_stmt {
	STATE_STMT_LEDGER_FLUSH = 0,
	STATE_STMT_CLAIM_RUN,
	STATE_STMT_CLAIM_ANY,
	STATE_STMT_CLAIM_STORED_RUN,
	STATE_STMT_CLAIM_STORED_ANY,
	STATE_STMT_NEXT_DUE,
	STATE_STMT_RENEW,
	STATE_STMT_FINISH,
	STATE_STMT_FAIL,
	STATE_STMT_RELEASE,
	STATE_STMT_DEFER,
	STATE_STMT_SLOT_ACQUIRE,
	STATE_STMT_SLOT_RELEASE,
	STATE_STMT_FOLDER_UPSERT,
	STATE_STMT_FOLDER_GET,
	STATE_STMT_FOLDER_STATUS,
	STATE_STMT_WINDOW_BEGIN,
	STATE_STMT_WINDOW_END,
	STATE_STMT_WINDOW_GET,
	STATE_STMT_LEDGER_UIDS,
	STATE_STMT_LEDGER_HIGHEST,
	STATE_STMT_LEDGER_FOREACH,
	STATE_STMT_BEGIN,
	STATE_STMT_FOLDER_UPSERT_MANY,
	STATE_STMT_FINISH_DONE,
	STATE_STMT_LEDGER_FLUSH_LANE0,
	STATE_STMT_LEDGER_BEGIN_LANE0,
	STATE_STMT_SLOTS_BEGIN,
	STATE_STMT_COUNT
};

enum {
	STATE_EXEC_IDEMPOTENT = 1 << 0, /* safe to send again after a reconnect */
	STATE_EXEC_BINARY = 1 << 1	/* binary result format */
};

/* Runs one parameterised statement (PQexecParams; values are text unless lengths/formats say
 * otherwise). Returns the result (PGRES_COMMAND_OK or PGRES_TUPLES_OK, caller PQclears) or NULL with
 * err filled ("could not <what>: ..."). Reconnects first when the connection is bad, and sends an
 * idempotent statement once more after a reset when the connection broke under it. */
PGresult *state_exec(struct state_conn *sc, const char *what, const char *sql, int nparams,
		     const char *const *values, const int *lengths, const int *formats, int flags,
		     struct fleet_err *err);
/* The same with a named prepared statement (prepared on first use on each connection). */
PGresult *state_exec_prepared(struct state_conn *sc, enum state_stmt id, const char *what, const char *sql,
			      int nparams, const char *const *values, int flags, struct fleet_err *err);
/* state_exec of a statement whose one parameter, $1, is an id (a run's, a job's, a folder's). */
PGresult *state_exec_id(struct state_conn *sc, const char *what, const char *sql, int64_t id, int flags,
			struct fleet_err *err);
/* The same for a statement whose two parameters, $1 and $2, are numbers (ids, milliseconds). */
PGresult *state_exec_id2(struct state_conn *sc, const char *what, const char *sql, int64_t id1, int64_t id2,
			 int flags, struct fleet_err *err);
/* state_exec for statements whose result the caller does not need. Returns 0 or -1. */
int state_exec_cmd(struct state_conn *sc, const char *what, const char *sql, int nparams,
		   const char *const *values, int flags, struct fleet_err *err);
/* Explicit transactions (no transparent retry inside). */
int state_begin(struct state_conn *sc, struct fleet_err *err);
int state_commit(struct state_conn *sc, struct fleet_err *err);
void state_rollback(struct state_conn *sc);

/* Fills err from a failed result (SQLSTATE class) and returns -1. */
int state_err_from_result(struct state_conn *sc, const PGresult *res, const char *what,
			  struct fleet_err *err);
/* A fenced write touched no row: looks at the job to say why, fills err with LEASE_LOST. */
int state_lease_lost(struct state_conn *sc, const struct state_lease *lease, struct fleet_err *err);

/* The job row a fenced statement may touch: $1..$3 = job, owner, epoch of the lease. */
#define LEASE_WHERE "id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND state = 'running'"

/* A write fenced by the lease: $1..$3 are the lease's job, owner and epoch (the caller fills p[3..]
 * itself), the first result column a row count; 0 rows -> LEASE_LOST; a statement that is not
 * idempotent and lost its connection is resolved by looking at the job. keep (may be NULL) gets the
 * result. */
int state_fenced(struct state_conn *sc, const struct state_lease *lease, const char *what, const char *sql,
		 int nparams, const char **p, int flags, PGresult **keep, struct fleet_err *err);

/* SQLSTATEs this module reacts to (err->code of a database error; state.h). */
#define SQLSTATE_CARDINALITY_VIOLATION "21000" /* ON CONFLICT touched one row twice */
#define SQLSTATE_UNIQUE_VIOLATION "23505"
/* transient: may work on a new connection or a little later (state_sqlstate_class) */
#define SQLSTATE_ADMIN_SHUTDOWN "57P01"
#define SQLSTATE_CRASH_SHUTDOWN "57P02"
#define SQLSTATE_CANNOT_CONNECT_NOW "57P03"
#define SQLSTATE_SERIALIZATION_FAILURE "40001"
#define SQLSTATE_DEADLOCK_DETECTED "40P01"
#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"
#define SQLSTATE_QUERY_CANCELED "57014" /* statement_timeout */
/* classes (the first two characters) */
#define SQLSTATE_CLASS_CONNECTION "08"	   /* connection exception */
#define SQLSTATE_CLASS_RESOURCES "53"	   /* insufficient resources: disk full, out of memory, too many connections */
#define SQLSTATE_CLASS_SYSTEM "58"	   /* system error (I/O) */
#define SQLSTATE_UNDEFINED_FILE "58P01" /* of class 58, but a file that is not there stays so */

/* Caps of the text this module builds (fleet_buf caps; one place for them). */
#define STATE_ARRAY_MAX ((size_t)1 << 30)   /* one unnest() column of a bulk statement (import, flush) */
#define STATE_UIDS_MAX ((size_t)1 << 28)    /* a window's UID list */
#define STATE_IDS_MAX ((size_t)1 << 20)     /* a list of job ids an engine holds */
#define STATE_NAMES_MAX ((size_t)1024)      /* a list of state names ({"queued","failed",...}) */
#define STATE_HOST_MAX ((size_t)1024)       /* a host name from --server */
#define STATE_FOREACH_CHUNK 10000           /* ledger rows read per statement */
#define STATE_IMPORT_WORK_MEM "64MB"        /* the import's sorts of every row, in memory (SET LOCAL) */
#define STATE_IMPORT_ANALYZE_ROWS 1000      /* new jobs from one import that refresh job's statistics */
#define STATE_IMPORT_ANALYZE_TARGET "10"    /* their sample: 300 x 10 rows (the default target is 100) */
#define STATE_STR_(x) #x
#define STATE_STR(x) STATE_STR_(x) /* a cap as SQL text */
/* Queued jobs a server statement (park, resume, fail, the orphans) changes per statement, each
 * batch its own transaction: a worker's own statement on those rows waits for one batch at most,
 * never for the whole park (one UPDATE of 50,000 jobs took 3-5 s under load). A bare number: it
 * goes into the SQL text through STATE_STR. */
#define STATE_SERVER_BATCH 1000
/* Tries of one slot acquisition when another host took the slot number chosen (a race, not a full
 * server, which answers at once): a handful of hosts racing for the last slots settle in a few. */
#define STATE_SLOT_ACQUIRE_TRIES 8

/* Text parameter formatting: numbers into caller buffers. */
#define STATE_NUM_MAX 24
const char *state_fmt_i64(char buf[STATE_NUM_MAX], int64_t v);
const char *state_fmt_u64(char buf[STATE_NUM_MAX], uint64_t v);
/* Parameters $1..$3 of a fenced statement: the lease's job, owner and epoch, formatted into b[0..2]. */
void state_lease_params(char b[][STATE_NUM_MAX], const struct state_lease *lease, const char **p);
/* Three parameters recording an error (last_error_class/code/text, an attempt's error_*) into p[0..2]:
 * why's class name, code (NULL when it has none) and message; when why is NULL, cls's name, NULL and
 * message. The strings are borrowed from why. */
void state_err_params(const struct fleet_err *why, enum fleet_err_class cls, const char *message, const char **p);

/* Result cell readers (text results). NULL cells read as 0 / "". */
int64_t state_get_i64(const PGresult *res, int row, int col);
const char *state_get_str(const PGresult *res, int row, int col);
int state_get_bool(const PGresult *res, int row, int col);

/* Result walkers: each takes the result of state_exec / state_exec_prepared as it comes (NULL when
 * the statement failed; err is already filled), reads it, PQclears it on every path and returns
 * -1 for NULL. */
/* A row reader: called for row `row` of res; a nonzero return stops the walk. */
typedef int (*state_row_fn)(const PGresult *res, int row, void *ctx);
/* Hands the rows to fn in order until fn returns nonzero. Returns fn's first nonzero value, else
 * 0; -1 when res is NULL. */
int state_each_row(PGresult *res, state_row_fn fn, void *ctx);
/* A typed walk: STATE_ROW_WALK(name, T, cb_type, read) defines
 *   static int name##_each(PGresult *res, cb_type cb, void *ctx)
 * which reads each row of res into a zeroed T with read(res, row, &t) and hands it to cb(&t, ctx),
 * as state_each_row does (cb's first nonzero value stops the walk and is returned; -1 for NULL). For
 * the report callbacks (state.h) whose argument is one row read into a struct. */
#define STATE_ROW_WALK(name, T, cb_type, read)                                                            \
	struct name##_walk {                                                                                 \
		cb_type cb;                                                                                  \
		void *ctx;                                                                                   \
	};                                                                                                   \
	static int name##_row(const PGresult *res, int row, void *arg)                                       \
	{                                                                                                    \
		const struct name##_walk *w = arg;                                                           \
		T t;                                                                                         \
                                                                                                             \
		memset(&t, 0, sizeof(t));                                                                    \
		read(res, row, &t);                                                                          \
		return w->cb(&t, w->ctx);                                                                    \
	}                                                                                                    \
	static int name##_each(PGresult *res, cb_type cb, void *ctx)                                         \
	{                                                                                                    \
		struct name##_walk w = {cb, ctx};                                                            \
                                                                                                             \
		return state_each_row(res, name##_row, &w);                                                  \
	}
/* The first column of a one-row result: 1 and *out set when there is exactly one row, 0 (*out
 * untouched) when there is none or several; -1 when res is NULL. */
int state_one_i64(PGresult *res, int64_t *out);
/* A result the caller does not need: PQclears it; 0, or -1 when res is NULL. */
int state_done(PGresult *res);
/* A one-row result's first column as a count (SELECT count(*) ...) into *count when count is not
 * NULL; 0, or -1 when res is NULL. */
int state_count(PGresult *res, long *count);
/* The number of rows a command touched (PQcmdTuples) into *n; 0, or -1 when res is NULL. */
int state_cmd_count(PGresult *res, int64_t *n);

/* Array literals for unnest() parameters: "{1,2,NULL}" and {"quoted","strings"}.
 * A literal that passes its buffer's cap stays a prefix without its closing brace (fleet_buf_add*);
 * the caller checks the buffers with state_bufs_fit before it sends them. */
void state_array_begin(struct fleet_buf *b);
void state_array_i64(struct fleet_buf *b, int64_t v);
void state_array_null(struct fleet_buf *b);
void state_array_str(struct fleet_buf *b, const char *s);		     /* NULL -> NULL element */
void state_array_hex(struct fleet_buf *b, const unsigned char *p, size_t n); /* as text "\\x.." */
void state_array_end(struct fleet_buf *b);
/* Before a statement uses the n buffers b[0..n-1] (array literals, text built with fleet_buf_add*):
 * 0, or -1 with err (STATE_ERR_TOO_LARGE: "cannot <what>: ...") when one passed its cap. */
int state_bufs_fit(const struct fleet_buf *b, size_t n, const char *what, struct fleet_err *err);

/* AES-256-GCM with caller-given associated data (secret.c; state_secret_seal/open bind it to a job's
 * side, token.c to a token's key). */
int state_seal_aad(const unsigned char key[32], const unsigned char *aad, size_t aadlen, const void *pt, size_t len,
		   unsigned char nonce[12], unsigned char *ct, unsigned char tag[16], struct fleet_err *err);
int state_open_aad(const unsigned char key[32], const unsigned char *aad, size_t aadlen, const unsigned char nonce[12],
		   const unsigned char *ct, size_t len, const unsigned char tag[16], char **plaintext,
		   struct fleet_err *err);

/* The run's open pass, created when there is none (pass.c; only pass_id, pass_number, pass_first of
 * out are set). Inside the caller's transaction. */
int state_pass_open(struct state_conn *sc, int64_t run_id, struct state_pass_counts *out, struct fleet_err *err);

/* The SET list that queues a job again for a new pass or `retry`: attempts reset, last error and a
 * credential hold cleared; folders, ledger and counters kept (nothing is copied twice). */
#define REQUEUE_SET                                                                                          \
	"state = 'queued', attempts = 0, scheduled_at = now(), finished_at = NULL, last_error_class = NULL," \
	" last_error_code = NULL, last_error_text = NULL, lease_owner = NULL, lease_expires = NULL,"         \
	" auth_block_side = NULL, auth_block_hmac = NULL, updated_at = now()"

/* The SET list that cancels a job (code and text are SQL expressions), and the CTE that closes its
 * open attempt (the UPDATE must be a CTE named u returning id). */
#define CANCEL_SET(code, text)                                                                              \
	"state = 'cancelled', lease_owner = NULL, lease_expires = NULL, finished_at = now(),"                \
	" last_error_class = 'permanent', last_error_code = " code ", last_error_text = " text ","            \
	" updated_at = now()"
#define CANCEL_TEXT                                                                                          \
	"'cancelled by imapfleet cancel: not run by later passes (imapfleet retry --account ' || id || ' undoes it)'"
#define CANCEL_ATTEMPTS                                                                                      \
	"a AS (UPDATE job_attempt SET ended_at = now(), outcome = 'cancelled' FROM u"                        \
	"  WHERE job_attempt.job_id = u.id AND job_attempt.ended_at IS NULL)"

/* The CTE that closes the open attempt of the lease ($3 = its epoch) whose job the CTE u updated (u
 * returns id): ended now, with set (SQL: the outcome, and the error columns where there are). */
#define LEASE_ATTEMPT_END(set)                                                                               \
	" a AS (UPDATE job_attempt SET ended_at = now(), " set " FROM u"                                      \
	"  WHERE job_attempt.job_id = u.id AND job_attempt.lease_epoch = $3 AND job_attempt.ended_at IS NULL)"

/* A timestamptz column as milliseconds since the epoch (bigint), for the report queries. */
#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

/* Schema (schema.c). */
int state_schema_apply(struct state_conn *sc, struct fleet_err *err);

#endif

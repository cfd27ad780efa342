/* state/ledger.c: folders, UIDVALIDITY resets, the append window, the batched message ledger and
 * the resume queries. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/util.h"
#include "state/state_private.h"

#define LEASE_CTE                                                                                            \
	"lease AS (SELECT id FROM job WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3"               \
	" AND state = 'running' FOR UPDATE)"

static const char *const msg_state_names[] = {
    [STATE_MSG_COPIED] = "copied", [STATE_MSG_FAILED] = "failed", [STATE_MSG_SKIPPED] = "skipped"};
static const char *const folder_state_names[] = {
    [STATE_FOLDER_PENDING] = "pending", [STATE_FOLDER_COPYING] = "copying", [STATE_FOLDER_DONE] = "done",
    [STATE_FOLDER_FAILED] = "failed"};

/* The end of a fenced folder statement: the lease count and the rows the CTE u touched. */
#define FOLDER_COUNTS " SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM u)"
/* The end of its UPDATE when it writes the folder $4 of the leased job $1, then FOLDER_COUNTS. */
#define FOLDER_OF_LEASE                                                                                      \
	"  WHERE id = $4 AND job_id = $1 AND EXISTS (SELECT 1 FROM lease) RETURNING id)" FOLDER_COUNTS

/* A fenced statement that ends with FOLDER_COUNTS. Its parameters $1..$4, the lease's job, owner and
 * epoch and the folder, are filled in here; the caller fills p[4..]. */
static int fenced_folder(struct state_conn *sc, int stmt, const struct state_lease *lease, int64_t folder_id,
			 const char *what, const char *sql, int nparams, const char **p, int flags,
			 struct fleet_err *err)
{
	char b[4][STATE_NUM_MAX];
	PGresult *res;
	int64_t leased, affected;

	state_lease_params(b, lease, p);
	p[3] = state_fmt_i64(b[3], folder_id);
	res = stmt >= 0 ? state_exec_prepared(sc, (enum state_stmt)stmt, what, sql, nparams, p, flags, err)
			: state_exec(sc, what, sql, nparams, p, NULL, NULL, flags, err);
	if (!res)
		return -1;
	leased = state_get_i64(res, 0, 0);
	affected = state_get_i64(res, 0, 1);
	PQclear(res);
	if (leased == 0)
		return state_lease_lost(sc, lease, err);
	if (affected == 0)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, STATE_ERR_FOLDER_NOT_IN_JOB,
				     "could not %s: folder %" PRId64 " does not belong to job %" PRId64, what,
				     folder_id, lease->job_id);
	return 0;
}

/* ---- folders ---------------------------------------------------------------------------------- */

#define FOLDER_COLS                                                                                          \
	"id, state, src_uidvalidity, dst_uidvalidity, src_uidnext, src_messages, src_highestmodseq,"         \
	" dst_uidnext, highest_uid_copied, msgs_copied, bytes_copied, msgs_skipped, msgs_failed,"            \
	" (window_dst_uidnext IS NOT NULL OR EXISTS (SELECT 1 FROM folder_window fw"                          \
	"  WHERE fw.folder_id = id))"

static void folder_from_row(const PGresult *res, int row, int col0, struct state_folder *f)
{
	const char *st = state_get_str(res, row, col0 + 1);

	memset(f, 0, sizeof(*f));
	f->id = state_get_i64(res, row, col0);
	f->state = strcmp(st, "done") == 0	? STATE_FOLDER_DONE
		   : strcmp(st, "copying") == 0 ? STATE_FOLDER_COPYING
		   : strcmp(st, "failed") == 0	? STATE_FOLDER_FAILED
						: STATE_FOLDER_PENDING;
	f->src_uidvalidity = (uint32_t)state_get_i64(res, row, col0 + 2);
	f->dst_uidvalidity = (uint32_t)state_get_i64(res, row, col0 + 3);
	f->src_uidnext = (uint32_t)state_get_i64(res, row, col0 + 4);
	f->src_messages = (uint32_t)state_get_i64(res, row, col0 + 5);
	f->src_highestmodseq = (uint64_t)state_get_i64(res, row, col0 + 6);
	f->dst_uidnext = (uint32_t)state_get_i64(res, row, col0 + 7);
	f->highest_uid_copied = (uint32_t)state_get_i64(res, row, col0 + 8);
	f->msgs_copied = state_get_i64(res, row, col0 + 9);
	f->bytes_copied = state_get_i64(res, row, col0 + 10);
	f->msgs_skipped = state_get_i64(res, row, col0 + 11);
	f->msgs_failed = state_get_i64(res, row, col0 + 12);
	f->window_open = state_get_bool(res, row, col0 + 13);
}

/* A row of the folder upserts from column c on: created, src_name, dst_name, the UIDVALIDITY the
 * copied rows were looked for under, whether there are any, then FOLDER_COLS. */
static void upserted_row(const PGresult *res, int i, int c, struct state_folder *f)
{
	folder_from_row(res, i, c + 5, f);
	f->created = state_get_bool(res, i, c);
	f->copied_rows_uidvalidity = (uint32_t)state_get_i64(res, i, c + 3);
	f->has_copied_rows = state_get_bool(res, i, c + 4);
}

/* The upsert; with others (cb != NULL), the job's other folders in the same statement. Each row:
 * self, created, src_name, dst_name, whether copied rows exist (for the given UIDVALIDITY, for the
 * others their recorded one), then FOLDER_COLS. */
static int folder_upsert(struct state_conn *sc, const struct state_lease *lease, const char *src_name,
			 const char *dst_name, uint32_t src_uidvalidity, struct state_folder *out, state_folder_cb cb,
			 void *ctx, struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX], b5[STATE_NUM_MAX];
	const char *p[7];
	PGresult *res;
	int rows, self = 0, rc = 0;

	state_lease_params(lb, lease, p);
	p[3] = src_name;
	p[4] = dst_name ? dst_name : src_name;
	p[5] = state_fmt_u64(b5, src_uidvalidity);
	p[6] = cb ? "t" : "f";
	res = state_exec_prepared(
	    sc, STATE_STMT_FOLDER_UPSERT, "record the folder",
	    "WITH " LEASE_CTE ","
	    " ins AS (INSERT INTO folder AS f (job_id, src_name, dst_name, src_uidvalidity)"
	    "  SELECT $1, $4, $5, $6 FROM lease"
	    "  ON CONFLICT (job_id, src_name) DO UPDATE SET dst_name = excluded.dst_name,"
	    "   src_uidvalidity = CASE WHEN f.src_uidvalidity = 0 THEN excluded.src_uidvalidity"
	    "    ELSE f.src_uidvalidity END, updated_at = now()"
	    "  WHERE f.dst_name <> excluded.dst_name OR (f.src_uidvalidity = 0 AND excluded.src_uidvalidity <> 0)"
	    "  RETURNING (xmax = 0) AS created, f.*),"
	    " j AS (UPDATE job SET folders = folders + 1 FROM ins WHERE job.id = $1 AND ins.created)"
	    " SELECT true, created, src_name, dst_name, $6::bigint,"
	    "  NOT created AND EXISTS (SELECT 1 FROM message m WHERE m.folder_id = ins.id"
	    "   AND m.src_uidvalidity = $6 AND m.state = 'copied'), " FOLDER_COLS " FROM ins"
	    /* the folder itself when it needed no write, and with $7 the job's other folders */
	    " UNION ALL"
	    " SELECT x.self, false, src_name, dst_name, x.uidv,"
	    "  EXISTS (SELECT 1 FROM message m WHERE m.folder_id = f.id"
	    "   AND m.src_uidvalidity = x.uidv AND m.state = 'copied'), " FOLDER_COLS
	    " FROM folder f, LATERAL (SELECT f.src_name = $4 AS self,"
	    "  CASE WHEN f.src_name = $4 THEN $6::bigint ELSE f.src_uidvalidity END AS uidv) x"
	    " WHERE f.job_id = $1 AND EXISTS (SELECT 1 FROM lease)"
	    "  AND (($7::boolean AND NOT x.self) OR (x.self AND NOT EXISTS (SELECT 1 FROM ins)))",
	    7, p, STATE_EXEC_IDEMPOTENT, err);
	if (!res)
		return -1;
	rows = PQntuples(res);
	for (int i = 0; i < rows && rc == 0; i++) {
		struct state_folder f;

		upserted_row(res, i, 1, &f);
		if (state_get_bool(res, i, 0)) {
			*out = f;
			self = 1;
		} else if (cb) {
			rc = cb(state_get_str(res, i, 2), state_get_str(res, i, 3), &f, ctx);
		}
	}
	PQclear(res);
	if (rc != 0)
		return rc;
	return self ? 0 : state_lease_lost(sc, lease, err);
}

int state_folder_upsert(struct state_conn *sc, const struct state_lease *lease, const char *src_name,
			const char *dst_name, uint32_t src_uidvalidity, struct state_folder *out,
			struct fleet_err *err)
{
	return folder_upsert(sc, lease, src_name, dst_name, src_uidvalidity, out, NULL, NULL, err);
}

int state_folder_upsert_all(struct state_conn *sc, const struct state_lease *lease, const char *src_name,
			    const char *dst_name, uint32_t src_uidvalidity, struct state_folder *out,
			    state_folder_cb cb, void *ctx, struct fleet_err *err)
{
	return folder_upsert(sc, lease, src_name, dst_name, src_uidvalidity, out, cb, ctx, err);
}

/* Every folder of names[] in one statement (insert, or update as state_folder_upsert would), and
 * the job's other folders read in the same statement; cb gets each (for a named one, the copied-rows
 * check is for the UIDVALIDITY given; for the others, their recorded one). */
int state_folder_upsert_many(struct state_conn *sc, const struct state_lease *lease, size_t n,
			     const char *const *src_names, const char *const *dst_names,
			     const uint32_t *src_uidvalidities, state_folder_cb cb, void *ctx, struct fleet_err *err)
{
	struct fleet_buf a[3] = {FLEET_BUF_INIT(STATE_ARRAY_MAX), FLEET_BUF_INIT(STATE_ARRAY_MAX),
				 FLEET_BUF_INIT(STATE_ARRAY_MAX)};
	char lb[3][STATE_NUM_MAX];
	const char *p[6];
	PGresult *res;
	int rows, rc = 0;

	if (n == 0)
		return 0;
	for (int k = 0; k < 3; k++)
		state_array_begin(&a[k]);
	for (size_t i = 0; i < n; i++) {
		state_array_str(&a[0], src_names[i]);
		state_array_str(&a[1], dst_names[i] ? dst_names[i] : src_names[i]);
		state_array_i64(&a[2], src_uidvalidities[i]);
	}
	state_lease_params(lb, lease, p);
	for (int k = 0; k < 3; k++) {
		state_array_end(&a[k]);
		p[3 + k] = fleet_buf_cstr(&a[k]);
	}
	res = state_exec_prepared(
	    sc, STATE_STMT_FOLDER_UPSERT_MANY, "record the folders",
	    "WITH " LEASE_CTE ","
	    " v AS (SELECT DISTINCT ON (src_name) * FROM unnest($4::text[], $5::text[], $6::bigint[])"
	    "  AS v(src_name, dst_name, uidv) ORDER BY src_name),"
	    " ins AS (INSERT INTO folder AS f (job_id, src_name, dst_name, src_uidvalidity)"
	    "  SELECT $1, v.src_name, v.dst_name, v.uidv FROM v WHERE EXISTS (SELECT 1 FROM lease)"
	    "  ON CONFLICT (job_id, src_name) DO UPDATE SET dst_name = excluded.dst_name,"
	    "   src_uidvalidity = CASE WHEN f.src_uidvalidity = 0 THEN excluded.src_uidvalidity"
	    "    ELSE f.src_uidvalidity END, updated_at = now()"
	    "  WHERE f.dst_name <> excluded.dst_name OR (f.src_uidvalidity = 0 AND excluded.src_uidvalidity <> 0)"
	    "  RETURNING (xmax = 0) AS created, f.*),"
	    " j AS (UPDATE job SET folders = folders + c.n FROM (SELECT count(*) AS n FROM ins WHERE created) c"
	    "  WHERE job.id = $1 AND c.n > 0)"
	    " SELECT ins.created, ins.src_name, ins.dst_name, v.uidv,"
	    "  NOT ins.created AND EXISTS (SELECT 1 FROM message m WHERE m.folder_id = ins.id"
	    "   AND m.src_uidvalidity = v.uidv AND m.state = 'copied'), " FOLDER_COLS
	    " FROM ins JOIN v ON v.src_name = ins.src_name"
	    /* the named folders that needed no write, and the job's others (the snapshot before ins) */
	    " UNION ALL"
	    " SELECT false, f.src_name, f.dst_name, x.uidv,"
	    "  EXISTS (SELECT 1 FROM message m WHERE m.folder_id = f.id"
	    "   AND m.src_uidvalidity = x.uidv AND m.state = 'copied'), " FOLDER_COLS
	    " FROM folder f LEFT JOIN v ON v.src_name = f.src_name,"
	    "  LATERAL (SELECT coalesce(v.uidv, f.src_uidvalidity) AS uidv) x"
	    " WHERE f.job_id = $1 AND EXISTS (SELECT 1 FROM lease) AND f.id NOT IN (SELECT id FROM ins)",
	    6, p, STATE_EXEC_IDEMPOTENT, err);
	for (int k = 0; k < 3; k++)
		fleet_buf_release(&a[k]);
	if (!res)
		return -1;
	rows = PQntuples(res);
	for (int i = 0; i < rows && rc == 0; i++) {
		struct state_folder f;

		upserted_row(res, i, 0, &f);
		rc = cb(state_get_str(res, i, 1), state_get_str(res, i, 2), &f, ctx);
	}
	PQclear(res);
	if (rc != 0)
		return rc;
	/* with the lease, every named folder is a row */
	return rows > 0 ? 0 : state_lease_lost(sc, lease, err);
}

int state_folder_mark_failed(struct state_conn *sc, const struct state_lease *lease, const char *src_name,
			     const char *dst_name, const char *why, struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX];
	const char *p[6];
	PGresult *res;
	long leased = 0;

	state_lease_params(lb, lease, p);
	p[3] = src_name;
	p[4] = dst_name ? dst_name : src_name;
	p[5] = why ? why : "";
	res = state_exec(sc, "record the failed folder",
			 "WITH " LEASE_CTE ","
			 " ins AS (INSERT INTO folder AS f (job_id, src_name, dst_name, state, last_error)"
			 "  SELECT $1, $4, $5, 'failed', $6 FROM lease"
			 "  ON CONFLICT (job_id, src_name) DO UPDATE SET dst_name = excluded.dst_name,"
			 "   state = 'failed', last_error = excluded.last_error, updated_at = now()"
			 "  RETURNING (xmax = 0) AS created),"
			 " j AS (UPDATE job SET folders = folders + 1 FROM ins WHERE job.id = $1 AND ins.created)"
			 " SELECT count(*) FROM lease",
			 6, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	if (state_count(res, &leased) < 0)
		return -1;
	return leased ? 0 : state_lease_lost(sc, lease, err);
}

static int folder_row(const PGresult *res, int i, void *out)
{
	folder_from_row(res, i, 0, out);
	return 1;
}

int state_folder_get(struct state_conn *sc, int64_t job_id, const char *src_name, struct state_folder *out,
		     struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[2] = {state_fmt_i64(b0, job_id), src_name};
	PGresult *res = state_exec_prepared(sc, STATE_STMT_FOLDER_GET, "read the folder",
					    "SELECT " FOLDER_COLS " FROM folder WHERE job_id = $1 AND src_name = $2",
					    2, p, STATE_EXEC_IDEMPOTENT, err);

	return state_each_row(res, folder_row, out); /* (job, name) is unique: 1 found, 0 none */
}

int state_folder_record_status(struct state_conn *sc, const struct state_lease *lease, int64_t folder_id,
			       const struct state_folder_status *st, struct fleet_err *err)
{
	char b[5][STATE_NUM_MAX];
	const char *p[10];

	p[4] = folder_state_names[st->state <= STATE_FOLDER_FAILED ? st->state : STATE_FOLDER_PENDING];
	p[5] = state_fmt_u64(b[0], st->dst_uidvalidity);
	p[6] = state_fmt_u64(b[1], st->src_uidnext);
	p[7] = state_fmt_u64(b[2], st->src_messages);
	p[8] = state_fmt_u64(b[3], st->src_highestmodseq);
	p[9] = state_fmt_u64(b[4], st->dst_uidnext);
	return fenced_folder(
	    sc, STATE_STMT_FOLDER_STATUS, lease, folder_id, "record the folder status",
	    "WITH " LEASE_CTE ","
	    " u AS (UPDATE folder SET state = $5,"
	    "  last_error = CASE WHEN $5 = 'failed' THEN last_error END,"
	    "  dst_uidvalidity = CASE WHEN $6::bigint = 0 THEN dst_uidvalidity ELSE $6::bigint END,"
	    "  src_uidnext = $7, src_messages = $8, src_highestmodseq = $9, dst_uidnext = $10,"
	    "  updated_at = now()"
	    FOLDER_OF_LEASE,
	    10, p, STATE_EXEC_IDEMPOTENT, err);
}

int state_folder_reset_uidvalidity(struct state_conn *sc, const struct state_lease *lease, int64_t folder_id,
				   uint32_t new_src_uidvalidity, enum state_uidv_reset_mode mode,
				   struct fleet_err *err)
{
	char b4[STATE_NUM_MAX];
	const char *p[6];

	p[4] = state_fmt_u64(b4, new_src_uidvalidity);
	p[5] = mode == STATE_UIDV_DELETE_OLD ? "t" : "f";
	/* Counters restart from what the ledger already holds for the new UIDVALIDITY (usually nothing;
	 * something when a UIDVALIDITY comes back), and the job's counters follow. */
	return fenced_folder(
	    sc, -1, lease, folder_id, "reset the folder after a UIDVALIDITY change",
	    "WITH " LEASE_CTE ","
	    " f0 AS (SELECT id, msgs_copied, bytes_copied, msgs_skipped, msgs_failed FROM folder"
	    "  WHERE id = $4 AND job_id = $1 AND EXISTS (SELECT 1 FROM lease) FOR UPDATE),"
	    " agg AS (SELECT count(*) FILTER (WHERE m.state = 'copied') AS copied,"
	    "  coalesce(sum(m.size) FILTER (WHERE m.state = 'copied'), 0) AS bytes,"
	    "  count(*) FILTER (WHERE m.state = 'skipped') AS skipped,"
	    "  count(*) FILTER (WHERE m.state = 'failed') AS failed,"
	    "  coalesce(max(m.src_uid) FILTER (WHERE m.state = 'copied'), 0) AS max_uid"
	    "  FROM message m WHERE m.folder_id IN (SELECT id FROM f0) AND m.src_uidvalidity = $5),"
	    " del AS (DELETE FROM message WHERE $6::boolean AND folder_id IN (SELECT id FROM f0)"
	    "  AND src_uidvalidity <> $5),"
	    " j AS (UPDATE job SET msgs_copied = job.msgs_copied - f0.msgs_copied + agg.copied,"
	    "  bytes_copied = job.bytes_copied - f0.bytes_copied + agg.bytes,"
	    "  msgs_skipped = job.msgs_skipped - f0.msgs_skipped + agg.skipped,"
	    "  msgs_failed = job.msgs_failed - f0.msgs_failed + agg.failed, updated_at = now()"
	    "  FROM f0, agg WHERE job.id = $1),"
	    " u AS (UPDATE folder f SET src_uidvalidity = $5, highest_uid_copied = agg.max_uid,"
	    "  msgs_copied = agg.copied, bytes_copied = agg.bytes, msgs_skipped = agg.skipped,"
	    "  msgs_failed = agg.failed, state = 'pending', src_uidnext = 0, src_messages = 0,"
	    "  src_highestmodseq = 0, window_dst_uidnext = NULL, window_first_uid = NULL,"
	    "  window_last_uid = NULL, window_uids = NULL, window_started_at = NULL, updated_at = now()"
	    "  FROM f0, agg WHERE f.id = f0.id RETURNING f.id),"
	    " fw AS (DELETE FROM folder_window WHERE folder_id IN (SELECT id FROM f0))"
	    FOLDER_COUNTS,
	    6, p, STATE_EXEC_IDEMPOTENT, err);
}

/* ---- the append window ------------------------------------------------------------------------ */

int state_folder_window_begin(struct state_conn *sc, const struct state_lease *lease, int64_t folder_id,
			      uint32_t dst_uidnext, uint32_t first_src_uid, uint32_t last_src_uid,
			      const uint32_t *uids, size_t nuids, struct fleet_err *err)
{
	char b[3][STATE_NUM_MAX];
	struct fleet_buf arr = FLEET_BUF_INIT(STATE_UIDS_MAX);
	const char *p[8];
	int rc;

	p[4] = state_fmt_u64(b[0], dst_uidnext);
	p[5] = state_fmt_u64(b[1], first_src_uid);
	p[6] = state_fmt_u64(b[2], last_src_uid);
	p[7] = NULL;
	if (uids) {
		state_array_begin(&arr);
		for (size_t i = 0; i < nuids; i++)
			state_array_i64(&arr, uids[i]);
		state_array_end(&arr);
		p[7] = fleet_buf_cstr(&arr);
	}
	rc = state_bufs_fit(&arr, 1, "record the append window", err) < 0 ? -1 :
	     fenced_folder(sc, STATE_STMT_WINDOW_BEGIN, lease, folder_id, "record the append window",
			   "WITH " LEASE_CTE ","
			   " u AS (UPDATE folder SET window_dst_uidnext = $5, window_first_uid = $6,"
			   "  window_last_uid = $7, window_uids = $8::bigint[], window_started_at = now(),"
			   "  state = 'copying', updated_at = now()"
			   FOLDER_OF_LEASE,
			   8, p, STATE_EXEC_IDEMPOTENT, err);
	fleet_buf_release(&arr);
	return rc;
}

int state_folder_window_end(struct state_conn *sc, const struct state_lease *lease, int64_t folder_id,
			    struct fleet_err *err)
{
	const char *p[4];

	return fenced_folder(
	    sc, STATE_STMT_WINDOW_END, lease, folder_id, "close the append window",
	    "WITH " LEASE_CTE ","
	    " u AS (UPDATE folder SET window_dst_uidnext = NULL, window_first_uid = NULL,"
	    "  window_last_uid = NULL, window_uids = NULL, window_started_at = NULL, updated_at = now()"
	    FOLDER_OF_LEASE,
	    4, p, STATE_EXEC_IDEMPOTENT, err);
}

void state_window_release(struct state_window *w)
{
	xfree(&w->uids);
	w->nuids = 0;
}

/* "1,2,3" -> array. */
static void parse_uid_list(const char *s, uint32_t **out, size_t *n)
{
	size_t alloc = 0;

	*out = NULL;
	*n = 0;
	while (*s) {
		size_t len = strcspn(s, ",");
		uint64_t v;

		if (fleet_parse_u64n(s, len, 0, UINT32_MAX, &v) == 0) {
			*out = xgrow(*out, sizeof(**out), *n + 1, &alloc);
			(*out)[(*n)++] = (uint32_t)v;
		}
		s += len;
		if (*s == ',')
			s++;
	}
}

static int window_row(const PGresult *res, int i, void *arg)
{
	struct state_window *w = arg;

	(void)i; /* one row at most: the open window with the lowest UIDNEXT */
	w->dst_uidnext = (uint32_t)state_get_i64(res, 0, 0);
	w->first_src_uid = (uint32_t)state_get_i64(res, 0, 1);
	w->last_src_uid = (uint32_t)state_get_i64(res, 0, 2);
	w->started_at_ms = state_get_i64(res, 0, 3);
	if (state_get_bool(res, 0, 4)) {
		parse_uid_list(state_get_str(res, 0, 5), &w->uids, &w->nuids);
		if (!w->uids)
			w->uids = xcalloc(1, sizeof(*w->uids)); /* recorded, but empty */
	}
	return 1;
}

int state_folder_get_window(struct state_conn *sc, int64_t folder_id, struct state_window *w,
			    struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, folder_id)};

	memset(w, 0, sizeof(*w));
	return state_each_row(state_exec_prepared(sc, STATE_STMT_WINDOW_GET, "read the append window",
						  "SELECT dst_uidnext, first_uid, last_uid,"
						  " (extract(epoch FROM started_at) * 1000)::bigint, has_uids, uids FROM ("
						  " SELECT window_dst_uidnext AS dst_uidnext, window_first_uid AS first_uid,"
						  "  window_last_uid AS last_uid, window_started_at AS started_at,"
						  "  window_uids IS NOT NULL AS has_uids,"
						  "  array_to_string(window_uids, ',') AS uids"
						  "  FROM folder WHERE id = $1 AND window_dst_uidnext IS NOT NULL"
						  " UNION ALL SELECT dst_uidnext, first_uid, last_uid, started_at, false, NULL"
						  "  FROM folder_window WHERE folder_id = $1) w ORDER BY dst_uidnext LIMIT 1",
						  1, p, STATE_EXEC_IDEMPOTENT, err),
			      window_row, w); /* 1 found, 0 none */
}

/* ---- the batch -------------------------------------------------------------------------------- */

struct pending_row {
	struct state_ledger_row r; /* strings owned */
};

#define LEDGER_NCOLS 12 /* the row columns, $4..$15 */
#define STATUS_NCOLS 7	/* a folder's status, $17..$23 */
#define BATCH_NARRAYS (LEDGER_NCOLS + 1 + STATUS_NCOLS)
#define BATCH_NPARAMS (3 + BATCH_NARRAYS + 4 + 2) /* ..., $24..$27 the windows that begin, $28 the pair,
						    * $29 windows closed for all */

struct pending_status {
	int64_t folder_id;
	struct state_folder_status st;
};

struct pending_begin {
	int64_t folder_id;
	uint32_t dst_uidnext, first_uid, last_uid;
};

struct state_ledger_batch {
	struct state_conn *sc;
	struct state_lease lease;
	size_t max;
	struct pending_row *rows;
	size_t n, alloc;
	int64_t *end_windows;
	size_t nend, alloc_end;
	struct pending_status *status;
	size_t nstatus, alloc_status;
	struct pending_begin *begins; /* the windows to open: $24..$27, one folder each */
	size_t nbegin, alloc_begin;
	unsigned pair; /* $28: whose windows (0: the folder row's; else folder_window rows) */
	int64_t *end_all; /* $29: folders whose windows of every pair close (after a crash) */
	size_t nend_all, alloc_end_all;
	struct fleet_buf cols[BATCH_NARRAYS];
};

struct state_ledger_batch *state_ledger_batch_new(struct state_conn *sc, const struct state_lease *lease,
						  size_t max_rows)
{
	struct state_ledger_batch *b = xcalloc(1, sizeof(*b));

	b->sc = sc;
	b->lease = *lease;
	b->max = max_rows ? max_rows : STATE_LEDGER_BATCH_DEFAULT;
	for (int i = 0; i < BATCH_NARRAYS; i++)
		fleet_buf_init(&b->cols[i], STATE_ARRAY_MAX);
	return b;
}

static void row_release(struct state_ledger_row *r)
{
	char *s;

	s = (char *)r->internaldate;
	xfree(&s);
	s = (char *)r->flags;
	xfree(&s);
	s = (char *)r->error;
	xfree(&s);
	memset(r, 0, sizeof(*r));
}

static void batch_clear(struct state_ledger_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		row_release(&b->rows[i].r);
	b->n = 0;
	b->nend = 0;
	b->nend_all = 0;
	b->nstatus = 0;
	b->nbegin = 0;
}

void state_ledger_batch_free(struct state_ledger_batch **pb)
{
	struct state_ledger_batch *b = *pb;

	if (!b)
		return;
	batch_clear(b);
	xfree(&b->rows);
	xfree(&b->end_windows);
	xfree(&b->end_all);
	xfree(&b->status);
	xfree(&b->begins);
	for (int i = 0; i < BATCH_NARRAYS; i++)
		fleet_buf_release(&b->cols[i]);
	xfree(pb);
}

size_t state_ledger_batch_pending(const struct state_ledger_batch *b)
{
	return b->n;
}

/* Adds id to the set v (n ids, alloc allocated) unless it is there. */
static void id_set_add(int64_t **v, size_t *n, size_t *alloc, int64_t id)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i] == id)
			return;
	*v = xgrow(*v, sizeof(**v), *n + 1, alloc);
	(*v)[(*n)++] = id;
}

void state_ledger_batch_end_window(struct state_ledger_batch *b, int64_t folder_id)
{
	id_set_add(&b->end_windows, &b->nend, &b->alloc_end, folder_id);
}

void state_ledger_batch_set_pair(struct state_ledger_batch *b, unsigned pair)
{
	b->pair = pair;
}

void state_ledger_batch_end_all_windows(struct state_ledger_batch *b, int64_t folder_id)
{
	id_set_add(&b->end_all, &b->nend_all, &b->alloc_end_all, folder_id);
}

void state_ledger_batch_folder_status(struct state_ledger_batch *b, int64_t folder_id,
				      const struct state_folder_status *st)
{
	for (size_t i = 0; i < b->nstatus; i++)
		if (b->status[i].folder_id == folder_id) {
			b->status[i].st = *st;
			return;
		}
	b->status = xgrow(b->status, sizeof(*b->status), b->nstatus + 1, &b->alloc_status);
	b->status[b->nstatus].folder_id = folder_id;
	b->status[b->nstatus++].st = *st;
}

void state_ledger_batch_window_begin(struct state_ledger_batch *b, int64_t folder_id, uint32_t dst_uidnext,
				     uint32_t first_src_uid, uint32_t last_src_uid)
{
	struct pending_begin *pb = NULL;

	for (size_t i = 0; i < b->nbegin && !pb; i++)
		if (b->begins[i].folder_id == folder_id)
			pb = &b->begins[i];
	if (!pb) {
		b->begins = xgrow(b->begins, sizeof(*b->begins), b->nbegin + 1, &b->alloc_begin);
		pb = &b->begins[b->nbegin++];
	}
	pb->folder_id = folder_id;
	pb->dst_uidnext = dst_uidnext;
	pb->first_uid = first_src_uid;
	pb->last_uid = last_src_uid;
}

size_t state_ledger_batch_begins(const struct state_ledger_batch *b)
{
	return b->nbegin;
}

int state_ledger_batch_add(struct state_ledger_batch *b, const struct state_ledger_row *row,
			   struct fleet_err *err)
{
	struct state_ledger_row *r;

	if (b->n >= b->max && state_ledger_batch_flush(b, err) < 0)
		return -1;
	b->rows = xgrow(b->rows, sizeof(*b->rows), b->n + 1, &b->alloc);
	r = &b->rows[b->n++].r;
	*r = *row;
	r->internaldate = row->internaldate ? xstrdup(row->internaldate) : NULL;
	r->flags = row->flags ? xstrdup(row->flags) : NULL;
	r->error = row->error ? xstrdup(row->error) : NULL;
	if (b->n >= b->max)
		return state_ledger_batch_flush(b, err);
	return 0;
}

/* One statement: lease check (row lock on the job), the upsert, the counters from each row's previous
 * state (so a replay after a lost connection counts nothing twice), highest copied UID, the windows
 * that end, the folders' status, and the window that begins. Every folder the batch touches is
 * updated once (fu holds one row per folder: a row may be updated only once per statement).
 * Windows are the batch's pair's ($28): pair 0 keeps its window in the folder row, other pairs in
 * folder_window (fwb, fwe; the row a window begins in is replaced, not deleted, so that no row is
 * touched twice); $29 closes every pair's window of those folders. Several windows may begin ($24..$27:
 * arrays, one folder each), so that the first windows of several folders are durable in one commit. */
#define FLUSH_HEAD                                                                                           \
	"WITH " LEASE_CTE ","                                                                                \
	" i AS (SELECT t.* FROM unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[],"  \
	"  $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::text[], $14::text[], $15::text[])"    \
	"  AS t(folder_id, src_uidvalidity, src_uid, size, internaldate, sha256, msgid_hash, dst_uidvalidity," \
	"   dst_uid, flags, state, error)"                                                                   \
	"  WHERE EXISTS (SELECT 1 FROM lease) AND t.folder_id IN (SELECT id FROM folder WHERE job_id = $1))," \
	/* the rows: inserted, or updated when there (a replay, or a failed row that copies now); an updated \
	 * row returns its previous version (the statement's snapshot does not see its own writes), looked   \
	 * up only when there was one (xmax is set on the update path) */                                    \
	" ins AS (INSERT INTO message AS m (folder_id, src_uidvalidity, src_uid, size, internaldate, sha256," \
	"   msgid_hash, dst_uidvalidity, dst_uid, flags, state, error, updated_at)"                          \
	"  SELECT folder_id, src_uidvalidity, src_uid, size, internaldate, decode(sha256, 'hex'),"           \
	"   decode(msgid_hash, 'hex'), dst_uidvalidity, dst_uid, flags, state, error, now() FROM i"          \
	"  ON CONFLICT (folder_id, src_uidvalidity, src_uid) DO UPDATE SET size = excluded.size,"            \
	"   internaldate = coalesce(excluded.internaldate, m.internaldate),"                                 \
	"   sha256 = coalesce(excluded.sha256, m.sha256), msgid_hash = coalesce(excluded.msgid_hash, "       \
	"m.msgid_hash),"                                                                                     \
	"   dst_uidvalidity = coalesce(excluded.dst_uidvalidity, m.dst_uidvalidity),"                        \
	"   dst_uid = coalesce(excluded.dst_uid, m.dst_uid), flags = excluded.flags, state = excluded.state," \
	"   error = excluded.error, updated_at = now()"                                                      \
	"  RETURNING m.folder_id, m.src_uidvalidity, m.src_uid, m.state, m.size,"                            \
	"   CASE WHEN m.xmax <> 0 THEN (SELECT o FROM message o WHERE o.folder_id = m.folder_id"             \
	"    AND o.src_uidvalidity = m.src_uidvalidity AND o.src_uid = m.src_uid) END AS old),"              \
	/* the counters' deltas per folder and UIDVALIDITY, then per folder (one folder lookup per group) */ \
	" up AS (SELECT folder_id, src_uidvalidity,"                                                         \
	"  sum((state = 'copied')::int - coalesce(((old).state = 'copied')::int, 0)) AS copied,"             \
	"  sum(CASE WHEN state = 'copied' THEN size ELSE 0 END"                                              \
	"   - CASE WHEN (old).state = 'copied' THEN (old).size ELSE 0 END) AS bytes,"                        \
	"  sum((state = 'skipped')::int - coalesce(((old).state = 'skipped')::int, 0)) AS skipped,"          \
	"  sum((state = 'failed')::int - coalesce(((old).state = 'failed')::int, 0)) AS failed,"             \
	"  max(src_uid) FILTER (WHERE state = 'copied') AS max_uid"                                          \
	"  FROM ins GROUP BY folder_id, src_uidvalidity),"                                                   \
	" d AS (SELECT up.folder_id, sum(up.copied) AS copied, sum(up.bytes) AS bytes, sum(up.skipped) AS skipped," \
	"  sum(up.failed) AS failed, max(up.max_uid) AS max_uid"                                             \
	"  FROM up JOIN folder f ON f.id = up.folder_id"                                                     \
	"  WHERE f.src_uidvalidity = 0 OR up.src_uidvalidity = f.src_uidvalidity"                            \
	"  GROUP BY up.folder_id),"                                                                          \
	" bg AS (SELECT * FROM unnest($24::bigint[], $25::bigint[], $26::bigint[], $27::bigint[])"           \
	"  AS b(id, dst_uidnext, first_uid, last_uid)),"                                                     \
	" w AS (SELECT DISTINCT x.id FROM (SELECT unnest($16::bigint[]) AS id WHERE $28::int = 0"            \
	"  UNION ALL SELECT unnest($29::bigint[])) x),"
/* A pair's own windows (folder_window): only when the batch's pair is not 0 or it closes every pair's. */
#define FLUSH_PAIRS                                                                                          \
	" fwe AS (DELETE FROM folder_window fw WHERE EXISTS (SELECT 1 FROM lease)"                           \
	"  AND fw.folder_id IN (SELECT id FROM folder WHERE job_id = $1)"                                    \
	"  AND ((fw.pair = $28::int AND fw.folder_id = ANY ($16::bigint[])) OR fw.folder_id = ANY ($29::bigint[]))" \
	"  AND NOT (fw.pair = $28::int AND fw.folder_id IN (SELECT id FROM bg))),"                           \
	" fwb AS (INSERT INTO folder_window AS fw (folder_id, pair, dst_uidnext, first_uid, last_uid)"       \
	"  SELECT bg.id, $28::int, bg.dst_uidnext, bg.first_uid, bg.last_uid FROM bg JOIN folder f ON f.id = bg.id" \
	"  WHERE $28::int > 0 AND f.job_id = $1 AND EXISTS (SELECT 1 FROM lease)"                            \
	"  ON CONFLICT (folder_id, pair) DO UPDATE SET dst_uidnext = excluded.dst_uidnext,"                  \
	"   first_uid = excluded.first_uid, last_uid = excluded.last_uid, started_at = now()),"
#define FLUSH_TAIL                                                                                           \
	" s AS (SELECT * FROM unnest($17::bigint[], $18::text[], $19::bigint[], $20::bigint[], $21::bigint[]," \
	"  $22::bigint[], $23::bigint[]) AS s(id, state, dst_uidvalidity, src_uidnext, src_messages,"        \
	"  src_highestmodseq, dst_uidnext)),"                                                                \
	" ids AS (SELECT folder_id AS id FROM d UNION SELECT id FROM w UNION SELECT id FROM s"               \
	"  UNION SELECT id FROM bg),"                                                                        \
	" fu AS (SELECT ids.id AS folder_id, coalesce(d.copied, 0) AS copied, coalesce(d.bytes, 0) AS bytes," \
	"  coalesce(d.skipped, 0) AS skipped, coalesce(d.failed, 0) AS failed, coalesce(d.max_uid, 0) AS max_uid," \
	"  w.id IS NOT NULL AS end_window, bg.id IS NOT NULL AS begin_window,"                               \
	"  bg.id IS NOT NULL AND $28::int = 0 AS begin_row, bg.dst_uidnext AS bg_dst_uidnext,"               \
	"  bg.first_uid AS bg_first_uid, bg.last_uid AS bg_last_uid,"                                        \
	"  s.id IS NOT NULL AS has_status, s.state AS st_state, s.dst_uidvalidity AS st_dst_uidvalidity,"    \
	"  s.src_uidnext AS st_src_uidnext, s.src_messages AS st_src_messages,"                              \
	"  s.src_highestmodseq AS st_src_highestmodseq, s.dst_uidnext AS st_dst_uidnext"                     \
	"  FROM ids LEFT JOIN d ON d.folder_id = ids.id LEFT JOIN w ON w.id = ids.id LEFT JOIN s ON s.id = ids.id" \
	"  LEFT JOIN bg ON bg.id = ids.id),"                                                                 \
	" fupd AS (UPDATE folder f SET msgs_copied = f.msgs_copied + fu.copied,"                             \
	"  bytes_copied = f.bytes_copied + fu.bytes, msgs_skipped = f.msgs_skipped + fu.skipped,"            \
	"  msgs_failed = f.msgs_failed + fu.failed,"                                                         \
	"  highest_uid_copied = greatest(f.highest_uid_copied, fu.max_uid),"                                 \
	"  window_dst_uidnext = CASE WHEN fu.begin_row THEN fu.bg_dst_uidnext WHEN fu.end_window THEN NULL"  \
	"   ELSE f.window_dst_uidnext END,"                                                                  \
	"  window_first_uid = CASE WHEN fu.begin_row THEN fu.bg_first_uid WHEN fu.end_window THEN NULL"      \
	"   ELSE f.window_first_uid END,"                                                                    \
	"  window_last_uid = CASE WHEN fu.begin_row THEN fu.bg_last_uid WHEN fu.end_window THEN NULL"        \
	"   ELSE f.window_last_uid END,"                                                                     \
	"  window_uids = CASE WHEN fu.begin_row OR fu.end_window THEN NULL ELSE f.window_uids END,"          \
	"  window_started_at = CASE WHEN fu.begin_row THEN now() WHEN fu.end_window THEN NULL"               \
	"   ELSE f.window_started_at END,"                                                                   \
	"  state = CASE WHEN fu.begin_window THEN 'copying' WHEN fu.has_status THEN fu.st_state ELSE f.state END," \
	"  last_error = CASE WHEN fu.has_status AND fu.st_state <> 'failed' THEN NULL ELSE f.last_error END," \
	"  dst_uidvalidity = CASE WHEN fu.has_status AND fu.st_dst_uidvalidity <> 0 THEN fu.st_dst_uidvalidity" \
	"   ELSE f.dst_uidvalidity END,"                                                                     \
	"  src_uidnext = CASE WHEN fu.has_status THEN fu.st_src_uidnext ELSE f.src_uidnext END,"             \
	"  src_messages = CASE WHEN fu.has_status THEN fu.st_src_messages ELSE f.src_messages END,"          \
	"  src_highestmodseq = CASE WHEN fu.has_status THEN fu.st_src_highestmodseq ELSE f.src_highestmodseq END," \
	"  dst_uidnext = CASE WHEN fu.has_status THEN fu.st_dst_uidnext ELSE f.dst_uidnext END,"             \
	"  updated_at = now()"                                                                               \
	"  FROM fu WHERE f.id = fu.folder_id AND f.job_id = $1 AND EXISTS (SELECT 1 FROM lease)"             \
	"  RETURNING f.id, fu.begin_window, fu.has_status),"                                                 \
	" jupd AS (UPDATE job SET msgs_copied = job.msgs_copied + s.copied, bytes_copied = job.bytes_copied + " \
	"s.bytes,"                                                                                           \
	"  msgs_skipped = job.msgs_skipped + s.skipped, msgs_failed = job.msgs_failed + s.failed, updated_at = " \
	"now()"                                                                                              \
	"  FROM (SELECT coalesce(sum(copied), 0) AS copied, coalesce(sum(bytes), 0) AS bytes,"               \
	"   coalesce(sum(skipped), 0) AS skipped, coalesce(sum(failed), 0) AS failed FROM d) s"              \
	"  WHERE job.id = $1 AND EXISTS (SELECT 1 FROM lease))"                                              \
	" SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM ins),"                                  \
	"  (SELECT count(*) FROM fupd WHERE begin_window), (SELECT count(*) FROM fupd WHERE has_status)"
static const char ledger_flush_sql[] = FLUSH_HEAD FLUSH_PAIRS FLUSH_TAIL;
/* The same for pair 0 when no window of all pairs closes, the common case: without fwe and fwb, a
 * tenth cheaper to plan and a fifth to run. */
static const char ledger_flush_lane0_sql[] = FLUSH_HEAD FLUSH_TAIL;

/* Pair 0's flush when it holds only windows that begin (an account's first window and those begun
 * ahead with it, nothing held before them): the folder rows' windows, as the full statement writes
 * them when nothing else is in the batch, without its rows, counters, statuses and job update. The
 * same lease check (the job row locked), the same four result columns. */
static const char ledger_begin_lane0_sql[] =
    "WITH " LEASE_CTE ","
    " bg AS (SELECT * FROM unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])"
    "  AS b(id, dst_uidnext, first_uid, last_uid)),"
    " fupd AS (UPDATE folder f SET window_dst_uidnext = bg.dst_uidnext, window_first_uid = bg.first_uid,"
    "  window_last_uid = bg.last_uid, window_uids = NULL, window_started_at = now(), state = 'copying',"
    "  updated_at = now()"
    "  FROM bg WHERE f.id = bg.id AND f.job_id = $1 AND EXISTS (SELECT 1 FROM lease) RETURNING f.id)"
    " SELECT (SELECT count(*) FROM lease), 0, (SELECT count(*) FROM fupd), 0";

int state_ledger_batch_flush(struct state_ledger_batch *b, struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX], bb[STATE_NUM_MAX];
	struct fleet_buf all = FLEET_BUF_INIT(STATE_ARRAY_MAX), bgs[4];
	const char *p[BATCH_NPARAMS];
	struct fleet_buf *c = b->cols, *sc = b->cols + LEDGER_NCOLS + 1;
	PGresult *res;
	int64_t leased, written, begun, statused;

	if (b->n == 0 && b->nend == 0 && b->nend_all == 0 && b->nstatus == 0 && b->nbegin == 0)
		return 0;
	for (int i = 0; i < 4; i++) {
		fleet_buf_init(&bgs[i], STATE_ARRAY_MAX);
		state_array_begin(&bgs[i]);
	}
	for (size_t i = 0; i < b->nbegin; i++) {
		state_array_i64(&bgs[0], b->begins[i].folder_id);
		state_array_i64(&bgs[1], b->begins[i].dst_uidnext);
		state_array_i64(&bgs[2], b->begins[i].first_uid);
		state_array_i64(&bgs[3], b->begins[i].last_uid);
	}
	for (int i = 0; i < BATCH_NARRAYS; i++)
		state_array_begin(&c[i]);
	for (size_t i = 0; i < b->n; i++) {
		const struct state_ledger_row *r = &b->rows[i].r;

		state_array_i64(&c[0], r->folder_id);
		state_array_i64(&c[1], r->src_uidvalidity);
		state_array_i64(&c[2], r->src_uid);
		state_array_i64(&c[3], (int64_t)r->size);
		state_array_str(&c[4], r->internaldate);
		state_array_hex(&c[5], r->has_sha256 ? r->sha256 : NULL, STATE_LEDGER_HASH_LEN);
		state_array_hex(&c[6], r->has_msgid_hash ? r->msgid_hash : NULL, STATE_LEDGER_HASH_LEN);
		if (r->dst_uidvalidity)
			state_array_i64(&c[7], r->dst_uidvalidity);
		else
			state_array_null(&c[7]);
		if (r->dst_uid)
			state_array_i64(&c[8], r->dst_uid);
		else
			state_array_null(&c[8]);
		state_array_str(&c[9], r->flags);
		state_array_str(&c[10],
				msg_state_names[r->state <= STATE_MSG_SKIPPED ? r->state : STATE_MSG_FAILED]);
		state_array_str(&c[11], r->error);
	}
	for (size_t i = 0; i < b->nend; i++)
		state_array_i64(&c[12], b->end_windows[i]);
	for (size_t i = 0; i < b->nstatus; i++) {
		const struct state_folder_status *st = &b->status[i].st;

		state_array_i64(&sc[0], b->status[i].folder_id);
		state_array_str(&sc[1], folder_state_names[st->state <= STATE_FOLDER_FAILED ? st->state
											 : STATE_FOLDER_PENDING]);
		state_array_i64(&sc[2], st->dst_uidvalidity);
		state_array_i64(&sc[3], st->src_uidnext);
		state_array_i64(&sc[4], st->src_messages);
		state_array_i64(&sc[5], (int64_t)st->src_highestmodseq);
		state_array_i64(&sc[6], st->dst_uidnext);
	}
	state_lease_params(lb, &b->lease, p);
	for (int i = 0; i < BATCH_NARRAYS; i++) {
		state_array_end(&c[i]);
		p[3 + i] = fleet_buf_cstr(&c[i]);
	}
	for (int i = 0; i < 4; i++) {
		state_array_end(&bgs[i]);
		p[3 + BATCH_NARRAYS + i] = fleet_buf_cstr(&bgs[i]);
	}
	p[7 + BATCH_NARRAYS] = state_fmt_u64(bb, b->pair);
	state_array_begin(&all);
	for (size_t i = 0; i < b->nend_all; i++)
		state_array_i64(&all, b->end_all[i]);
	state_array_end(&all);
	p[8 + BATCH_NARRAYS] = fleet_buf_cstr(&all);
	if (state_bufs_fit(c, BATCH_NARRAYS, "write the message ledger", err) < 0 ||
	    state_bufs_fit(&all, 1, "write the message ledger", err) < 0 ||
	    state_bufs_fit(bgs, 4, "write the message ledger", err) < 0) {
		res = NULL;
	} else if (b->pair == 0 && b->n == 0 && b->nend == 0 && b->nend_all == 0 && b->nstatus == 0) {
		const char *bp[7] = {p[0], p[1], p[2], p[3 + BATCH_NARRAYS], p[4 + BATCH_NARRAYS],
				     p[5 + BATCH_NARRAYS], p[6 + BATCH_NARRAYS]};

		res = state_exec_prepared(b->sc, STATE_STMT_LEDGER_BEGIN_LANE0, "begin the append windows",
					  ledger_begin_lane0_sql, 7, bp, STATE_EXEC_IDEMPOTENT, err);
	} else if (b->pair == 0 && b->nend_all == 0) {
		res = state_exec_prepared(b->sc, STATE_STMT_LEDGER_FLUSH_LANE0, "write the message ledger",
					  ledger_flush_lane0_sql, BATCH_NPARAMS, p, STATE_EXEC_IDEMPOTENT, err);
	} else {
		res = state_exec_prepared(b->sc, STATE_STMT_LEDGER_FLUSH, "write the message ledger", ledger_flush_sql,
					  BATCH_NPARAMS, p, STATE_EXEC_IDEMPOTENT, err);
	}
	fleet_buf_release(&all);
	for (int i = 0; i < 4; i++)
		fleet_buf_release(&bgs[i]);
	if (!res) {
		b->nbegin = 0; /* a window not recorded was never opened: the caller appends nothing */
		return -1;
	}
	leased = state_get_i64(res, 0, 0);
	written = state_get_i64(res, 0, 1);
	begun = state_get_i64(res, 0, 2);
	statused = state_get_i64(res, 0, 3);
	PQclear(res);
	if (leased == 0) {
		b->nbegin = 0;
		return state_lease_lost(b->sc, &b->lease, err);
	}
	if ((size_t)written != b->n || (size_t)begun != b->nbegin || (size_t)statused != b->nstatus) {
		fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, STATE_ERR_FOLDER_NOT_IN_JOB,
			      "could not write the message ledger: %zu of %zu rows, %zu of %zu windows opened and "
			      "%zu of %zu folder states name a folder that does not belong to job %" PRId64
			      " (or repeat a UID)",
			      (size_t)written, b->n, (size_t)begun, b->nbegin, (size_t)statused, b->nstatus,
			      b->lease.job_id);
		b->nbegin = 0;
		return -1;
	}
	batch_clear(b);
	return 0;
}

/* ---- resume queries --------------------------------------------------------------------------- */

static void states_array(struct fleet_buf *arr, unsigned mask)
{
	state_array_begin(arr);
	for (int s = STATE_MSG_COPIED; s <= STATE_MSG_SKIPPED; s++)
		if (mask & (1u << s))
			state_array_str(arr, msg_state_names[s]);
	state_array_end(arr);
}

int state_ledger_uids(struct state_conn *sc, int64_t folder_id, uint32_t src_uidvalidity, unsigned state_mask,
		      uint32_t **uids, size_t *n, struct fleet_err *err)
{
	struct fleet_buf states = FLEET_BUF_INIT(STATE_NAMES_MAX);
	char b0[STATE_NUM_MAX], b1[STATE_NUM_MAX];
	const char *p[3];
	PGresult *res;
	int rows;

	*uids = NULL;
	*n = 0;
	states_array(&states, state_mask);
	p[0] = state_fmt_i64(b0, folder_id);
	p[1] = state_fmt_u64(b1, src_uidvalidity);
	p[2] = fleet_buf_cstr(&states);
	/* Binary result: 8 bytes per UID in network order, one row each, in primary-key order. */
	res = state_bufs_fit(&states, 1, "read the copied UIDs", err) < 0 ? NULL :
	      state_exec_prepared(sc, STATE_STMT_LEDGER_UIDS, "read the copied UIDs",
				  "SELECT src_uid FROM message WHERE folder_id = $1 AND src_uidvalidity = $2"
				  " AND state = ANY ($3::text[]) ORDER BY src_uid",
				  3, p, STATE_EXEC_IDEMPOTENT | STATE_EXEC_BINARY, err);
	fleet_buf_release(&states);
	if (!res)
		return -1;
	rows = PQntuples(res);
	if (rows > 0) {
		*uids = xmalloc((size_t)rows * sizeof(**uids));
		for (int i = 0; i < rows; i++) {
			const unsigned char *v = (const unsigned char *)PQgetvalue(res, i, 0);
			uint64_t x = 0;

			for (int k = 0; k < 8; k++)
				x = (x << 8) | v[k];
			(*uids)[i] = (uint32_t)x;
		}
		*n = (size_t)rows;
	}
	PQclear(res);
	return 0;
}

int state_ledger_highest_uid(struct state_conn *sc, int64_t folder_id, uint32_t src_uidvalidity,
			     uint32_t *uid, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b1[STATE_NUM_MAX];
	const char *p[2] = {state_fmt_i64(b0, folder_id), state_fmt_u64(b1, src_uidvalidity)};
	int64_t v = 0;

	if (state_one_i64(state_exec_prepared(sc, STATE_STMT_LEDGER_HIGHEST, "read the highest copied UID",
					      "SELECT coalesce(max(src_uid), 0) FROM message WHERE folder_id = $1"
					      " AND src_uidvalidity = $2 AND state = 'copied'",
					      2, p, STATE_EXEC_IDEMPOTENT, err),
			  &v) < 0)
		return -1;
	*uid = (uint32_t)v;
	return 0;
}

struct ledger_walk {
	state_ledger_cb cb;
	void *ctx;
	int64_t folder_id;
	uint32_t src_uidvalidity;
	int64_t from; /* the next chunk starts here */
	int rows;     /* rows of this chunk */
};

static int ledger_row(const PGresult *res, int i, void *arg)
{
	struct ledger_walk *w = arg;
	struct state_ledger_row r;
	const char *st = state_get_str(res, i, 8);

	memset(&r, 0, sizeof(r));
	r.folder_id = w->folder_id;
	r.src_uidvalidity = w->src_uidvalidity;
	r.src_uid = (uint32_t)state_get_i64(res, i, 0);
	r.size = (uint64_t)state_get_i64(res, i, 1);
	r.internaldate = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
	r.has_sha256 = !PQgetisnull(res, i, 3) && fleet_unhex(PQgetvalue(res, i, 3), r.sha256, STATE_LEDGER_HASH_LEN) == 0;
	r.has_msgid_hash = !PQgetisnull(res, i, 4) && fleet_unhex(PQgetvalue(res, i, 4), r.msgid_hash, STATE_LEDGER_HASH_LEN) == 0;
	r.dst_uidvalidity = (uint32_t)state_get_i64(res, i, 5);
	r.dst_uid = (uint32_t)state_get_i64(res, i, 6);
	r.flags = PQgetisnull(res, i, 7) ? NULL : PQgetvalue(res, i, 7);
	r.state = strcmp(st, "copied") == 0    ? STATE_MSG_COPIED
		  : strcmp(st, "skipped") == 0 ? STATE_MSG_SKIPPED
					       : STATE_MSG_FAILED;
	r.error = PQgetisnull(res, i, 9) ? NULL : PQgetvalue(res, i, 9);
	w->rows++;
	w->from = (int64_t)r.src_uid + 1;
	return w->cb(&r, w->ctx);
}

int state_ledger_foreach(struct state_conn *sc, int64_t folder_id, uint32_t src_uidvalidity, uint32_t min_uid,
			 state_ledger_cb cb, void *ctx, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b1[STATE_NUM_MAX], b2[STATE_NUM_MAX];
	struct ledger_walk w = {cb, ctx, folder_id, src_uidvalidity, min_uid, 0};

	/* In chunks, so a 100k-message folder never sits in memory whole. */
	for (;;) {
		const char *p[3] = {state_fmt_i64(b0, folder_id), state_fmt_u64(b1, src_uidvalidity),
				    state_fmt_i64(b2, w.from)};
		int rc;

		w.rows = 0;
		/* Prepared: every folder of every attempt reads it (planning cost more than running it). */
		rc = state_each_row(state_exec_prepared(
					sc, STATE_STMT_LEDGER_FOREACH, "read the message ledger",
					"SELECT src_uid, size, internaldate, encode(sha256, 'hex'),"
					" encode(msgid_hash, 'hex'), dst_uidvalidity, dst_uid, flags, state, error"
					" FROM message WHERE folder_id = $1 AND src_uidvalidity = $2 AND src_uid >= $3"
					" ORDER BY src_uid LIMIT " STATE_STR(STATE_FOREACH_CHUNK),
					3, p, STATE_EXEC_IDEMPOTENT, err),
				    ledger_row, &w);
		if (rc != 0)
			return rc;
		if (w.rows < STATE_FOREACH_CHUNK)
			return 0;
	}
}

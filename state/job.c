/* state/job.c: engines, runs, job import, claiming with leases, completion, retry and cancel. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/util.h"
#include "state/state_private.h"


static const char *const job_state_names[STATE_JOB_NSTATES] = {
    [STATE_JOB_QUEUED] = "queued", [STATE_JOB_RUNNING] = "running",	[STATE_JOB_DONE] = "done",
    [STATE_JOB_FAILED] = "failed", [STATE_JOB_CANCELLED] = "cancelled", [STATE_JOB_PARTIAL] = "partial",
};

const char *state_job_state_name(enum state_job_state s)
{
	return FLEET_ENUM_NAME(job_state_names, s, "unknown");
}

int state_job_state_from_name(const char *name, enum state_job_state *out)
{
	for (int i = 0; i < STATE_JOB_NSTATES; i++)
		if (name && strcmp(name, job_state_names[i]) == 0) {
			*out = (enum state_job_state)i;
			return 0;
		}
	return -1;
}

/* ---- engines ---------------------------------------------------------------------------------- */

int state_engine_register(struct state_conn *sc, const char *host, long pid, const char *version,
			  unsigned ttl_ms, int64_t *engine_id, struct fleet_err *err)
{
	char b1[STATE_NUM_MAX], b3[STATE_NUM_MAX];
	const char *p[4] = {host ? host : "", state_fmt_i64(b1, pid), version, state_fmt_u64(b3, ttl_ms)};
	PGresult *res =
	    state_exec(sc, "register the engine",
		       "INSERT INTO engine (host, pid, version, expires_at)"
		       " VALUES ($1, $2, $3, now() + $4::float8 * interval '1 millisecond') RETURNING id",
		       4, p, NULL, NULL, 0, err);

	if (!res)
		return -1;
	*engine_id = state_get_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

int state_engine_heartbeat(struct state_conn *sc, int64_t engine_id, unsigned ttl_ms, struct fleet_err *err)
{
	PGresult *res = state_exec_id2(
	    sc, "record the engine heartbeat",
	    "WITH e AS (UPDATE engine SET heartbeat_at = now(),"
	    "  expires_at = now() + $2::float8 * interval '1 millisecond'"
	    "  WHERE id = $1 AND stopped_at IS NULL RETURNING expires_at),"
	    " s AS (UPDATE conn_slot SET expires_at = e.expires_at FROM e WHERE conn_slot.engine_id = $1)"
	    " SELECT count(*) FROM e",
	    engine_id, ttl_ms, STATE_EXEC_IDEMPOTENT, err);
	long n = 0;

	if (state_count(res, &n) < 0)
		return -1;
	if (n != 1)
		return fleet_err_set(
		    err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_ENGINE_UNKNOWN,
		    "cannot record the heartbeat of engine %" PRId64 ": it is not registered", engine_id);
	return 0;
}

int state_engine_deregister(struct state_conn *sc, int64_t engine_id, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, engine_id)};

	return state_exec_cmd(
	    sc, "deregister the engine",
	    "WITH e AS (UPDATE engine SET stopped_at = now(), expires_at = now() WHERE id = $1),"
	    " s AS (DELETE FROM conn_slot WHERE engine_id = $1)"
	    /* Accounts parked for a server this engine watched stay parked: the next engine's health
	     * thread makes them due (state_job_unpark_orphans, in batches, at its start). Doing it
	     * here held Ctrl-C 2-5 s with 50,000 parked accounts. */
	    " UPDATE job SET lease_expires = now() WHERE lease_owner = $1 AND state = 'running'",
	    1, p, STATE_EXEC_IDEMPOTENT, err);
}

/* ---- runs ------------------------------------------------------------------------------------- */

struct engine_walk {
	state_run_engine_cb cb;
	void *ctx;
	int n;
};

static int engine_row(const PGresult *res, int i, void *arg)
{
	struct engine_walk *w = arg;

	w->cb(w->ctx, PQgetvalue(res, i, 0), (long)state_get_i64(res, i, 1), (long)state_get_i64(res, i, 2));
	w->n++;
	return 0;
}

int state_run_engines(struct state_conn *sc, int64_t run_id, int64_t except_engine, state_run_engine_cb cb,
		      void *ctx, struct fleet_err *err)
{
	PGresult *res = state_exec_id2(sc, "list the hosts working on the run",
				       "SELECT e.host, e.pid, count(*) FROM job j JOIN engine e ON e.id = j.lease_owner"
				       " WHERE j.run_id = $1 AND j.state = 'running' AND e.id <> $2"
				       "  AND e.stopped_at IS NULL AND e.expires_at > now()"
				       " GROUP BY e.host, e.pid ORDER BY e.host, e.pid",
				       run_id, except_engine, STATE_EXEC_IDEMPOTENT, err);
	struct engine_walk w = {cb, ctx, 0};

	return state_each_row(res, engine_row, &w) < 0 ? -1 : w.n;
}

/* An upsert's RETURNING id, (xmax = 0): *id, and *created (may be NULL) 1 when the row is new. */
static int id_created(PGresult *res, int64_t *id, int *created)
{
	if (!res)
		return -1;
	*id = state_get_i64(res, 0, 0);
	if (created)
		*created = state_get_bool(res, 0, 1);
	PQclear(res);
	return 0;
}

int state_run_get_or_create(struct state_conn *sc, const char *name, const char *options_json,
			    int64_t *run_id, int *created, struct fleet_err *err)
{
	const char *p[2] = {name, options_json};
	PGresult *res =
	    state_exec(sc, "record the run",
		       "INSERT INTO run (name, options) VALUES ($1, $2::jsonb)"
		       " ON CONFLICT (name) DO UPDATE SET options = coalesce(excluded.options, run.options),"
		       "  state = 'active', updated_at = now()"
		       " RETURNING id, (xmax = 0)",
		       2, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);

	return id_created(res, run_id, created);
}

int state_run_find_active(struct state_conn *sc, int64_t *run_id, struct fleet_err *err)
{
	PGresult *res =
	    state_exec(sc, "find the active run",
		       /* `sync` runs hold one pair whose credentials never leave that command. */
		       "SELECT r.id FROM run r WHERE r.state = 'active' AND r.name NOT LIKE 'sync:%' AND EXISTS (SELECT 1 FROM job j"
		       " WHERE j.run_id = r.id AND j.state IN ('queued', 'running'))"
		       " ORDER BY r.created_at DESC, r.id DESC LIMIT 1",
		       0, NULL, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);

	return state_one_i64(res, run_id);
}

int state_run_hold_credentials(struct state_conn *sc, int64_t run_id, unsigned hold_ms, struct fleet_err *err)
{
	return state_done(state_exec_id2(sc, "mark the run's credentials pending",
					 "UPDATE run SET credentials_pending_until = CASE WHEN $2::bigint > 0"
					 " THEN now() + $2::float8 * interval '1 millisecond' END WHERE id = $1",
					 run_id, hold_ms, STATE_EXEC_IDEMPOTENT, err));
}

int state_run_credentials_pending(struct state_conn *sc, int64_t run_id, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, run_id)};
	PGresult *res = state_exec(sc, "read whether the run's credentials are pending",
				   "SELECT EXISTS (SELECT 1 FROM run WHERE id = $1 AND credentials_pending_until > now())",
				   1, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	int pending;

	if (!res)
		return -1;
	pending = state_get_bool(res, 0, 0);
	PQclear(res);
	return pending;
}

/* ---- import ----------------------------------------------------------------------------------- */

static int max_attempts_of(const struct state_job_spec *s)
{
	return s->max_attempts > 0 ? s->max_attempts : 5;
}

/* job.run_id has no foreign key (migration 12): a foreign key checked and locked the run once per
 * inserted row, a quarter of a 50,000-row import. Each INSERT into job locks the run once instead,
 * as the key did (FOR KEY SHARE: the run cannot be deleted before the insert commits), and inserts
 * nothing when it does not exist; deleting a run deletes its jobs (trigger run_deleted_jobs). */
#define JOB_RUN_LOCK "r AS (SELECT id FROM run WHERE id = $1 FOR KEY SHARE)"

int state_job_upsert(struct state_conn *sc, int64_t run_id, const struct state_job_spec *spec,
		     int64_t *job_id, int *created, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b2[STATE_NUM_MAX], b5[STATE_NUM_MAX], b8[STATE_NUM_MAX];
	const char *p[9] = {state_fmt_i64(b0, run_id),
			    spec->host1,
			    state_fmt_u64(b2, spec->port1),
			    spec->user1,
			    spec->host2,
			    state_fmt_u64(b5, spec->port2),
			    spec->user2,
			    spec->options,
			    state_fmt_i64(b8, max_attempts_of(spec))};
	/* The run is locked (FOR KEY SHARE) once and must exist: the check a foreign key made per row
	 * (see JOB_RUN_LOCK). */
	PGresult *res = state_exec(
	    sc, "record the job",
	    "WITH " JOB_RUN_LOCK
	    " INSERT INTO job (run_id, host1, port1, user1, host2, port2, user2, options, max_attempts)"
	    " SELECT r.id, $2, $3, $4, $5, $6, $7, $8, $9 FROM r"
	    " ON CONFLICT (run_id, host1, port1, user1, host2, port2, user2) DO UPDATE"
	    " SET options = excluded.options, max_attempts = excluded.max_attempts, updated_at = now()"
	    " RETURNING id, (xmax = 0)",
	    9, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);

	if (res && PQntuples(res) == 0) {
		PQclear(res);
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_NO_RUN,
				     "cannot record the job: run %" PRId64 " does not exist", run_id);
	}
	return id_created(res, job_id, created);
}

#define JOB_UNNEST                                                                                           \
	"unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], "          \
	"$9::int[])"                                                                                         \
	" WITH ORDINALITY AS t(host1, port1, user1, host2, port2, user2, options, max_attempts, ord)"

static void refresh_job_statistics(struct state_conn *sc)
{
	struct fleet_err ignored;

	if (state_begin(sc, &ignored) < 0)
		return;
	if (state_exec_cmd(sc, "size the statistics' sample",
			   "SET LOCAL default_statistics_target = " STATE_IMPORT_ANALYZE_TARGET, 0, NULL, 0, &ignored) < 0 ||
	    state_exec_cmd(sc, "refresh the job statistics", "ANALYZE job (run_id, state, scheduled_at, lease_expires)",
			   0, NULL, 0, &ignored) < 0) {
		state_rollback(sc);
		return;
	}
	state_commit(sc, &ignored);
}

/* The INSERT of a run's first rows (state_job_insert_new): no ON CONFLICT (its speculative insert
 * and the join that matched the returned rows to the specs by key were 40 % of the backend's CPU at
 * 50,000 rows). Each row's id is drawn from the sequence in row order before the insert, so the ids
 * come back in the order of the specs (t.ord) without matching anything. A row of the run that
 * exists already fails it with a unique violation. */
#define JOB_INSERT_FRESH                                                                                     \
	" t AS MATERIALIZED (SELECT nextval('job_id_seq') AS id, * FROM " JOB_UNNEST "),"                   \
	" ins AS (INSERT INTO job (id, run_id, host1, port1, user1, host2, port2, user2, options, max_attempts," \
	"  pass_id) SELECT t.id, r.id, host1, port1, user1, host2, port2, user2, options, max_attempts, $10"  \
	"  FROM r, t)"                                                                                       \
	" SELECT t.id, true FROM r, t ORDER BY t.ord"

/* One statement: the INSERT returns the key and id of each row it created or updated, and a join on
 * the key (a hash join in memory) puts the ids in the order of the specs. Reading them back with a
 * second unnest and an index probe per row cost a quarter of the INSERT. */
#define JOB_UPSERT                                                                                           \
	" t AS MATERIALIZED (SELECT * FROM " JOB_UNNEST "),"                                                 \
	" ins AS (INSERT INTO job (run_id, host1, port1, user1, host2, port2, user2, options, max_attempts, pass_id)" \
	"  SELECT r.id, host1, port1, user1, host2, port2, user2, options, max_attempts, $10 FROM r, t"      \
	"  ORDER BY ord"                                                                                     \
	"  ON CONFLICT (run_id, host1, port1, user1, host2, port2, user2) DO UPDATE"                         \
	"  SET options = excluded.options, max_attempts = excluded.max_attempts, updated_at = now()"        \
	"  RETURNING id, xmax = 0 AS created, host1, port1, user1, host2, port2, user2)"                     \
	" SELECT ins.id, ins.created FROM t JOIN ins USING (host1, port1, user1, host2, port2, user2)"       \
	" ORDER BY t.ord"

static int import_jobs(struct state_conn *sc, int64_t run_id, const struct state_job_spec *specs, size_t n,
		       int64_t *job_ids, int *created, int fresh, struct fleet_err *err)
{
	struct fleet_buf a[8];
	struct state_pass_counts pass;
	char b0[STATE_NUM_MAX], b1[STATE_NUM_MAX];
	const char *p[10];
	PGresult *res = NULL;
	size_t ncreated = 0;
	int rc = -1;

	if (n == 0)
		return 0;
	for (int i = 0; i < 8; i++) {
		fleet_buf_init(&a[i], STATE_ARRAY_MAX);
		state_array_begin(&a[i]);
	}
	for (size_t i = 0; i < n; i++) {
		state_array_str(&a[0], specs[i].host1);
		state_array_i64(&a[1], specs[i].port1);
		state_array_str(&a[2], specs[i].user1);
		state_array_str(&a[3], specs[i].host2);
		state_array_i64(&a[4], specs[i].port2);
		state_array_str(&a[5], specs[i].user2);
		state_array_str(&a[6], specs[i].options);
		state_array_i64(&a[7], max_attempts_of(&specs[i]));
	}
	p[0] = state_fmt_i64(b0, run_id);
	for (int i = 0; i < 8; i++) {
		state_array_end(&a[i]);
		p[i + 1] = fleet_buf_cstr(&a[i]);
	}
	if (state_bufs_fit(a, 8, "import the jobs", err) < 0 || state_begin(sc, err) < 0)
		goto out;
	/* New rows are put in the run's pass as they are created (state_run_start_pass puts the others). */
	if (state_pass_open(sc, run_id, &pass, err) < 0)
		goto rollback;
	p[9] = state_fmt_i64(b1, pass.pass_id);
	/* The sorts of 50,000 rows fit in memory with a larger work_mem (else they spill to disk). */
	if (state_exec_cmd(sc, "size the import's sort", "SET LOCAL work_mem = '" STATE_IMPORT_WORK_MEM "'", 0, NULL, 0,
			   err) < 0)
		goto rollback;
	res = state_exec(sc, "import the jobs",
			 fresh ? "WITH " JOB_RUN_LOCK "," JOB_INSERT_FRESH : "WITH " JOB_RUN_LOCK "," JOB_UPSERT, 10, p,
			 NULL, NULL, 0, err);
	if (!res) {
		if (fresh && err && strcmp(err->code, SQLSTATE_UNIQUE_VIOLATION) == 0) {
			/* Rows of the run are there already (another process imported the file at
			 * the same time): the upsert keeps them. */
			state_rollback(sc);
			rc = import_jobs(sc, run_id, specs, n, job_ids, created, 0, err);
			goto out;
		}
		if (err && strcmp(err->code, SQLSTATE_CARDINALITY_VIOLATION) == 0)
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_DUPLICATE_ROW,
				      "cannot import the jobs: the same account pair appears twice");
		goto rollback;
	}
	if ((size_t)PQntuples(res) != n) {
		fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, STATE_ERR_IMPORT_MISMATCH,
			      "could not import the jobs: %d rows written for %zu imported (is run %" PRId64
			      " still there?)",
			      PQntuples(res), n, run_id);
		goto rollback;
	}
	for (size_t i = 0; i < n; i++) {
		job_ids[i] = state_get_i64(res, (int)i, 0);
		if (state_get_bool(res, (int)i, 1))
			ncreated++;
		if (created)
			created[i] = state_get_bool(res, (int)i, 1);
	}
	PQclear(res);
	res = NULL;
	rc = state_commit(sc, err);
	/* The planner's statistics of a table that just grew by thousands of rows say it is (nearly)
	 * empty until autovacuum comes round (a minute or more): the claim then sorted the whole queue
	 * (job_claim_idx and an external sort, 0.1-0.4 s per claim at 50,000 jobs) instead of walking
	 * job_due_idx. The columns the claim and next-due statements filter on are sampled at once,
	 * from a small sample (STATE_IMPORT_ANALYZE_TARGET: 3,000 rows, 10 ms of backend CPU at 50,000
	 * jobs where the default 30,000 took 60-70 ms); autovacuum's next ANALYZE takes a full sample.
	 * A failure costs only speed. */
	if (rc == 0 && ncreated >= STATE_IMPORT_ANALYZE_ROWS)
		refresh_job_statistics(sc);
	goto out;
rollback:
	PQclear(res);
	res = NULL;
	state_rollback(sc);
out:
	for (int i = 0; i < 8; i++)
		fleet_buf_release(&a[i]);
	return rc;
}

int state_job_upsert_many(struct state_conn *sc, int64_t run_id, const struct state_job_spec *specs, size_t n,
			  int64_t *job_ids, int *created, struct fleet_err *err)
{
	return import_jobs(sc, run_id, specs, n, job_ids, created, 0, err);
}

int state_job_insert_new(struct state_conn *sc, int64_t run_id, const struct state_job_spec *specs, size_t n,
			 int64_t *job_ids, struct fleet_err *err)
{
	return import_jobs(sc, run_id, specs, n, job_ids, NULL, 1, err);
}

/* ---- claiming --------------------------------------------------------------------------------- */

void state_claim_release(struct state_claim *c)
{
	xfree(&c->host1);
	xfree(&c->user1);
	xfree(&c->host2);
	xfree(&c->user2);
	xfree(&c->options);
}

/* The account pair of a job row, columns col.. col + 6: host1, port1, user1, host2, port2, user2, options. */
static void claim_pair_from_row(const PGresult *res, int col, struct state_claim *out)
{
	out->host1 = xstrdup(state_get_str(res, 0, col));
	out->port1 = (unsigned)state_get_i64(res, 0, col + 1);
	out->user1 = xstrdup(state_get_str(res, 0, col + 2));
	out->host2 = xstrdup(state_get_str(res, 0, col + 3));
	out->port2 = (unsigned)state_get_i64(res, 0, col + 4);
	out->user2 = xstrdup(state_get_str(res, 0, col + 5));
	out->options = PQgetisnull(res, 0, col + 6) ? NULL : xstrdup(PQgetvalue(res, 0, col + 6));
}

/* The claim takes a job whose lease expired first (its host died: the oldest work), else the
 * queued job due first. Each half walks a partial index (job_lease_run_idx, job_due_idx: migration
 * 2) from its start and stops at the first row it can lock, so a claim costs the same with 1,000
 * or 50,000 jobs queued: no row that is done, failed or not yet due is read, nothing is sorted.
 * (One SELECT with an OR of both conditions could use neither index and sorted the whole run.)
 * Jobs parked for a server that is down carry scheduled_at = 'infinity' and are never due. */
/* A job taken back while it was waiting for connection slots (lease_waiting) never started: the
 * attempt it was claimed for carries over (attempts not incremented, its open attempt row dropped
 * instead of closed as lease_expired). */
#define CLAIM_SQL(RUN_FILTER)                                                                                \
	"WITH x AS (SELECT id, state AS old_state, lease_waiting AS was_waiting FROM job"                    \
	"  WHERE " RUN_FILTER " state = 'running' AND lease_expires < now() AND lease_owner <> $2"           \
	"  ORDER BY lease_expires LIMIT 1 FOR UPDATE SKIP LOCKED),"                                          \
	" q AS (SELECT id, state AS old_state, false AS was_waiting FROM job"                                \
	"  WHERE " RUN_FILTER " state = 'queued' AND scheduled_at <= now() AND NOT EXISTS (SELECT 1 FROM x)" \
	"  ORDER BY scheduled_at, id LIMIT 1 FOR UPDATE SKIP LOCKED),"                                       \
	" c AS (SELECT * FROM x UNION ALL SELECT * FROM q),"                                                 \
	" u AS (UPDATE job j SET state = 'running', lease_owner = $2, lease_waiting = true,"                 \
	"  lease_expires = now() + $3::float8 * interval '1 millisecond', lease_epoch = j.lease_epoch + 1,"  \
	"  attempts = j.attempts + CASE WHEN c.was_waiting THEN 0 ELSE 1 END,"                               \
	"  started_at = coalesce(j.started_at, now()), finished_at = NULL,"                                  \
	"  updated_at = now() FROM c WHERE j.id = c.id"                                                      \
	"  RETURNING j.id, j.run_id, j.lease_epoch, j.attempts, j.max_attempts, c.old_state,"                \
	"   j.host1, j.port1, j.user1, j.host2, j.port2, j.user2, j.options, c.was_waiting),"                \
	" closed AS (UPDATE job_attempt a SET ended_at = now(), outcome = 'lease_expired' FROM u"            \
	"  WHERE a.job_id = u.id AND a.ended_at IS NULL AND NOT u.was_waiting),"                             \
	" dropped AS (DELETE FROM job_attempt a USING u"                                                     \
	"  WHERE a.job_id = u.id AND a.ended_at IS NULL AND u.was_waiting),"                                 \
	" ins AS (INSERT INTO job_attempt (job_id, attempt, engine_id, host, lease_epoch)"                   \
	"  SELECT id, attempts, $2, $4, lease_epoch FROM u)"                                                 \
	" SELECT * FROM u"

/* A worker host (STATE_CLAIM_STORED_CREDENTIALS) takes no job of a run whose credentials are
 * pending: with run_id given, a one-time filter (one probe of run's key per claim, whatever the
 * queue holds); for any run, a probe per candidate. The same snapshot shows the jobs and the mark,
 * which is set before the jobs are imported and cleared after their credentials are stored: a job
 * this claim can see without the mark has its credentials. */
#define CREDENTIALS_STORED(RUN) " NOT EXISTS (SELECT 1 FROM run WHERE run.id = " RUN " AND run.credentials_pending_until > now()) AND"

int state_job_claim(struct state_conn *sc, int64_t run_id, int64_t engine_id, const char *host,
		    unsigned lease_ms, struct state_claim *out, struct fleet_err *err)
{
	return state_job_claim_ex(sc, run_id, engine_id, host, lease_ms, 0, out, err);
}

int state_job_claim_ex(struct state_conn *sc, int64_t run_id, int64_t engine_id, const char *host,
		       unsigned lease_ms, unsigned flags, struct state_claim *out, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b1[STATE_NUM_MAX], b2[STATE_NUM_MAX];
	const char *p[4] = {state_fmt_i64(b0, run_id), state_fmt_i64(b1, engine_id),
			    state_fmt_u64(b2, lease_ms), host ? host : ""};
	int stored = (flags & STATE_CLAIM_STORED_CREDENTIALS) != 0;
	PGresult *res;

	memset(out, 0, sizeof(*out));
	if (run_id > 0 && stored)
		res = state_exec_prepared(sc, STATE_STMT_CLAIM_STORED_RUN, "claim a job",
					  CLAIM_SQL("run_id = $1 AND" CREDENTIALS_STORED("$1")), 4, p, 0, err);
	else if (stored)
		res = state_exec_prepared(sc, STATE_STMT_CLAIM_STORED_ANY, "claim a job",
					  CLAIM_SQL("$1::bigint = 0 AND" CREDENTIALS_STORED("job.run_id")), 4, p, 0, err);
	else if (run_id > 0)
		res = state_exec_prepared(sc, STATE_STMT_CLAIM_RUN, "claim a job", CLAIM_SQL("run_id = $1 AND"), 4,
					  p, 0, err);
	else
		res = state_exec_prepared(sc, STATE_STMT_CLAIM_ANY, "claim a job", CLAIM_SQL("$1::bigint = 0 AND"),
					  4, p, 0, err);
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	out->lease.job_id = state_get_i64(res, 0, 0);
	out->lease.owner = engine_id;
	out->run_id = state_get_i64(res, 0, 1);
	out->lease.epoch = state_get_i64(res, 0, 2);
	out->attempt = (int)state_get_i64(res, 0, 3);
	out->max_attempts = (int)state_get_i64(res, 0, 4);
	out->reclaimed = strcmp(state_get_str(res, 0, 5), "running") == 0;
	claim_pair_from_row(res, 6, out);
	PQclear(res);
	return 1;
}

int state_job_next_due(struct state_conn *sc, int64_t run_id, int64_t *wait_ms, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, run_id)};
	/* Three index probes (first row of job_due_idx, of job_lease_run_idx, and whether a parked
	 * job exists), never a count: the idle workers of a large run ask this several times a
	 * second. */
	PGresult *res = state_exec_prepared(
	    sc, STATE_STMT_NEXT_DUE, "look for the next due job",
	    "SELECT (SELECT (extract(epoch FROM min(t) - now()) * 1000)::bigint FROM ("
	    "  (SELECT scheduled_at AS t FROM job WHERE run_id = $1 AND state = 'queued'"
	    "    AND scheduled_at < 'infinity' ORDER BY scheduled_at LIMIT 1)"
	    "  UNION ALL (SELECT lease_expires FROM job WHERE run_id = $1 AND state = 'running'"
	    "    ORDER BY lease_expires LIMIT 1)) d),"
	    " EXISTS (SELECT 1 FROM job WHERE run_id = $1 AND state = 'queued')"
	    "  OR EXISTS (SELECT 1 FROM job WHERE run_id = $1 AND state = 'running')",
	    1, p, STATE_EXEC_IDEMPOTENT, err);
	int pending;

	if (!res)
		return -1;
	pending = state_get_bool(res, 0, 1);
	if (wait_ms) {
		if (PQgetisnull(res, 0, 0))
			*wait_ms = -1;
		else {
			int64_t w = state_get_i64(res, 0, 0);

			*wait_ms = w < 0 ? 0 : w;
		}
	}
	PQclear(res);
	return pending;
}

int state_job_leases_elsewhere(struct state_conn *sc, int64_t run_id, int64_t engine_id,
			       struct state_lease_wait *out, struct fleet_err *err)
{
	/* Asked once when an engine first finds nothing to claim, never in a loop. */
	PGresult *res = state_exec_id2(
	    sc, "look for accounts leased by another engine",
	    "SELECT count(*), coalesce((extract(epoch FROM max(j.lease_expires) - now()) * 1000)::bigint, 0),"
	    " (array_agg(e.host ORDER BY e.id))[1], (array_agg(e.pid ORDER BY e.id))[1],"
	    " coalesce(bool_or(e.stopped_at IS NULL AND e.expires_at > now()), false)"
	    " FROM job j LEFT JOIN engine e ON e.id = j.lease_owner"
	    " WHERE j.run_id = $1 AND j.state = 'running' AND j.lease_owner IS DISTINCT FROM $2"
	    " AND j.lease_expires > now()",
	    run_id, engine_id, STATE_EXEC_IDEMPOTENT, err);

	memset(out, 0, sizeof(*out));
	if (!res)
		return -1;
	out->count = (long)state_get_i64(res, 0, 0);
	out->wait_ms = state_get_i64(res, 0, 1);
	if (!PQgetisnull(res, 0, 2))
		snprintf(out->host, sizeof(out->host), "%s", PQgetvalue(res, 0, 2));
	out->pid = PQgetisnull(res, 0, 3) ? 0 : (long)state_get_i64(res, 0, 3);
	out->alive = state_get_bool(res, 0, 4);
	PQclear(res);
	return 0;
}

/* After the connection broke under a fenced write that is not idempotent (finish, fail, release,
 * defer): did it commit? The job row says: our epoch with the job no longer running means it did
 * (no other engine can end a lease of our epoch: a takeover increments it); still running under our
 * lease means it did not. Returns 1 (committed: *keep, when asked, gets a row shaped like the
 * statement's "count, state"), 0 (not committed: send it again) or -1. */
static int fenced_outcome(struct state_conn *sc, const struct state_lease *lease, PGresult **keep,
			  struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX];
	const char *p[3];
	PGresult *res;
	int rc;

	state_lease_params(lb, lease, p);
	res = state_exec(sc, "look up the job after a lost connection",
			 "SELECT 1, state, (state = 'running' AND lease_owner = $2 AND lease_epoch = $3),"
			 " (state <> 'running' AND lease_epoch = $3) FROM job WHERE id = $1",
			 3, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	if (!res)
		return -1;
	if (PQntuples(res) == 1 && state_get_bool(res, 0, 3)) {
		if (keep)
			*keep = res;
		else
			PQclear(res);
		return 1;
	}
	rc = PQntuples(res) == 1 && state_get_bool(res, 0, 2) ? 0 : -1;
	PQclear(res);
	if (rc < 0)
		return state_lease_lost(sc, lease, err);
	return 0;
}

/* Runs a fenced statement whose first result column is a row count; 0 rows -> LEASE_LOST. A
 * statement that is not idempotent and lost its connection is resolved by fenced_outcome (the
 * reconnect waits out a short outage of the store): the caller never sees a write that may or may
 * not have happened. */
static int fenced(struct state_conn *sc, int stmt, const struct state_lease *lease, const char *what,
		  const char *sql, int nparams, const char **p, int flags, PGresult **keep, struct fleet_err *err)
{
	PGresult *res = NULL;
	int64_t n;

	for (int attempt = 0; attempt < 2 && !res; attempt++) {
		res = stmt >= 0 ? state_exec_prepared(sc, (enum state_stmt)stmt, what, sql, nparams, p, flags, err)
				: state_exec(sc, what, sql, nparams, p, NULL, NULL, flags, err);
		if (!res) {
			int r;

			if ((flags & STATE_EXEC_IDEMPOTENT) || !err || strcmp(err->code, STATE_ERR_CONNECTION) != 0)
				return -1;
			r = fenced_outcome(sc, lease, keep, err);
			if (r != 0)
				return r > 0 ? 0 : -1;
		}
	}
	if (!res)
		return -1;
	n = PQntuples(res) > 0 ? state_get_i64(res, 0, 0) : 0;
	if (n == 0) {
		PQclear(res);
		return state_lease_lost(sc, lease, err);
	}
	if (keep)
		*keep = res;
	else
		PQclear(res);
	return 0;
}

int state_fenced(struct state_conn *sc, const struct state_lease *lease, const char *what, const char *sql,
		 int nparams, const char **p, int flags, PGresult **keep, struct fleet_err *err)
{
	return fenced(sc, -1, lease, what, sql, nparams, p, flags, keep, err);
}

/* A fenced UPDATE of the job whose $4 is a lease length in ms (renew, begin). */
static int lease_update(struct state_conn *sc, int stmt, const struct state_lease *lease, unsigned lease_ms,
			const char *what, const char *sql, struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX];
	char b3[STATE_NUM_MAX];
	const char *p[4];

	state_lease_params(lb, lease, p);
	p[3] = state_fmt_u64(b3, lease_ms);
	return fenced(sc, stmt, lease, what, sql, 4, p, STATE_EXEC_IDEMPOTENT, NULL, err);
}

int state_job_renew(struct state_conn *sc, const struct state_lease *lease, unsigned lease_ms,
		    struct fleet_err *err)
{
	return lease_update(
	    sc, STATE_STMT_RENEW, lease, lease_ms, "renew the job lease",
	    "WITH u AS (UPDATE job SET lease_expires = now() + $4::float8 * interval '1 millisecond',"
	    " updated_at = now() WHERE " LEASE_WHERE " RETURNING id) SELECT count(*) FROM u",
	    err);
}

int state_job_begin(struct state_conn *sc, const struct state_lease *lease, unsigned lease_ms,
		    struct fleet_err *err)
{
	return lease_update(
	    sc, STATE_STMT_BEGIN, lease, lease_ms, "start the claimed job",
	    "WITH u AS (UPDATE job SET lease_waiting = false,"
	    " lease_expires = now() + $4::float8 * interval '1 millisecond', updated_at = now()"
	    " WHERE " LEASE_WHERE " RETURNING id) SELECT count(*) FROM u",
	    err);
}

int state_job_check_lease(struct state_conn *sc, const struct state_lease *lease, struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX];
	const char *p[3];

	state_lease_params(lb, lease, p);
	return fenced(sc, -1, lease, "check the job lease", "SELECT count(*) FROM job WHERE " LEASE_WHERE, 3, p,
		      STATE_EXEC_IDEMPOTENT, NULL, err);
}

int state_job_finish(struct state_conn *sc, const struct state_lease *lease, struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX];
	const char *p[3];

	state_lease_params(lb, lease, p);
	return fenced(
	    sc, STATE_STMT_FINISH, lease, "record the job as done",
	    "WITH u AS (UPDATE job SET state = 'done', lease_owner = NULL, lease_expires = NULL,"
	    "  finished_at = now(), updated_at = now(), last_error_class = NULL, last_error_code = NULL,"
	    "  last_error_text = NULL WHERE " LEASE_WHERE " RETURNING id),"
	    LEASE_ATTEMPT_END("outcome = 'done'") " SELECT count(*) FROM u",
	    3, p, 0, NULL, err);
}

int state_job_finish_done(struct state_conn *sc, const struct state_lease *lease, const struct state_pass_tally *t,
			  int64_t engine_id, const char *const server[2], const int slot_no[2], struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX], b[9][STATE_NUM_MAX];
	const char *p[14];

	state_lease_params(lb, lease, p);
	p[3] = state_fmt_i64(b[0], t->copied);
	p[4] = state_fmt_i64(b[1], t->matched);
	p[5] = state_fmt_i64(b[2], t->skipped);
	p[6] = state_fmt_i64(b[3], t->failed);
	p[7] = state_fmt_i64(b[4], t->bytes_copied);
	p[8] = state_fmt_i64(b[5], engine_id);
	for (int k = 0; k < 2; k++) {
		int held = server && server[k] && slot_no[k] >= 0;

		p[9 + 2 * k] = held ? server[k] : NULL;
		p[10 + 2 * k] = held ? state_fmt_i64(b[6 + k], slot_no[k]) : NULL;
	}
	p[13] = state_fmt_i64(b[8], t->uncertain);
	return fenced(
	    sc, STATE_STMT_FINISH_DONE, lease, "record the job as done",
	    "WITH u AS (UPDATE job SET state = 'done', lease_owner = NULL, lease_expires = NULL,"
	    "  finished_at = now(), updated_at = now(), last_error_class = NULL, last_error_code = NULL,"
	    "  last_error_text = NULL, last_synced_at = CASE WHEN pass_id IS NOT NULL THEN now()"
	    "   ELSE last_synced_at END, msgs_uncertain = msgs_uncertain + $14"
	    "  WHERE " LEASE_WHERE " RETURNING id, pass_id),"
	    LEASE_ATTEMPT_END("outcome = 'done'") ","
	    /* the same statement as state_pass_record's, for the attempt that ends here */
	    " pa AS (INSERT INTO pass_account (pass_id, job_id, outcome, copied, matched, skipped, failed,"
	    "  bytes_copied, uncertain, ended_at)"
	    "  SELECT pass_id, id, 'done', $4, $5, $6, $7, $8, $14, now() FROM u WHERE pass_id IS NOT NULL"
	    "  ON CONFLICT (pass_id, job_id) DO UPDATE SET outcome = excluded.outcome,"
	    "   copied = pass_account.copied + excluded.copied, matched = pass_account.matched + excluded.matched,"
	    "   skipped = pass_account.skipped + excluded.skipped, failed = pass_account.failed + excluded.failed,"
	    "   bytes_copied = pass_account.bytes_copied + excluded.bytes_copied,"
	    "   uncertain = pass_account.uncertain + excluded.uncertain, ended_at = now()),"
	    /* the slots go whether the lease holds or not, as state_slot_release */
	    " sl AS (DELETE FROM conn_slot WHERE engine_id = $9 AND ((server = $10 AND slot_no = $11::int)"
	    "  OR (server = $12 AND slot_no = $13::int)))"
	    " SELECT count(*) FROM u",
	    14, p, 0, NULL, err);
}

int state_job_finish_partial(struct state_conn *sc, const struct state_lease *lease, const struct fleet_err *why,
			     struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX];
	const char *p[6];

	state_lease_params(lb, lease, p);
	state_err_params(why, FLEET_ERR_PERMANENT, "some folders were not migrated", &p[3]);
	return fenced(
	    sc, -1, lease, "record the job as partial",
	    "WITH u AS (UPDATE job SET state = 'partial', lease_owner = NULL, lease_expires = NULL,"
	    "  finished_at = now(), updated_at = now(), last_error_class = $4, last_error_code = $5,"
	    "  last_error_text = $6 WHERE " LEASE_WHERE " RETURNING id),"
	    LEASE_ATTEMPT_END("outcome = 'partial', error_class = $4, error_code = $5, error_text = $6")
	    " SELECT count(*) FROM u",
	    6, p, 0, NULL, err);
}

int state_job_fail(struct state_conn *sc, const struct state_lease *lease, const struct fleet_err *job_err,
		   unsigned retry_delay_ms, int progressed, int *requeued, struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX];
	char b4[STATE_NUM_MAX];
	const char *p[9];
	PGresult *res = NULL;
	int retryable =
	    job_err && (job_err->cls == FLEET_ERR_TRANSIENT || job_err->cls == FLEET_ERR_THROTTLED);

	state_lease_params(lb, lease, p);
	p[3] = retryable ? "t" : "f";
	p[4] = state_fmt_u64(b4, retry_delay_ms);
	state_err_params(job_err, FLEET_ERR_BUG, "unknown error", &p[5]);
	p[8] = progressed ? "t" : "f";
	if (fenced(
		sc, STATE_STMT_FAIL, lease, "record the job failure",
		"WITH u AS (UPDATE job SET"
		"  state = CASE WHEN $4::boolean AND (attempts < max_attempts OR $9::boolean)"
		"   THEN 'queued' ELSE 'failed' END,"
		"  scheduled_at = CASE WHEN $4::boolean AND (attempts < max_attempts OR $9::boolean)"
		"   THEN now() + $5::float8 * interval '1 millisecond' ELSE scheduled_at END,"
		"  finished_at = CASE WHEN $4::boolean AND (attempts < max_attempts OR $9::boolean)"
		"   THEN NULL ELSE now() END,"
		"  attempts = CASE WHEN $4::boolean AND $9::boolean THEN greatest(attempts - 1, 0)"
		"   ELSE attempts END,"
		"  lease_owner = NULL, lease_expires = NULL, last_error_class = $6, last_error_code = $7,"
		"  last_error_text = $8, updated_at = now() WHERE " LEASE_WHERE " RETURNING id, state),"
		LEASE_ATTEMPT_END("outcome = CASE WHEN u.state = 'queued' THEN 'retry' ELSE 'failed' END,"
				  " error_class = $6, error_code = $7, error_text = $8")
		" SELECT count(*), max(state) FROM u",
		9, p, 0, &res, err) < 0)
		return -1;
	if (requeued)
		*requeued = strcmp(state_get_str(res, 0, 1), "queued") == 0;
	PQclear(res);
	return 0;
}

int state_job_release(struct state_conn *sc, const struct state_lease *lease, struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX];
	const char *p[3];

	state_lease_params(lb, lease, p);
	return fenced(sc, STATE_STMT_RELEASE, lease, "release the job",
		      "WITH u AS (UPDATE job SET state = 'queued', scheduled_at = now(), lease_owner = NULL,"
		      "  lease_expires = NULL, attempts = greatest(attempts - 1, 0), updated_at = now()"
		      "  WHERE " LEASE_WHERE " RETURNING id),"
		      LEASE_ATTEMPT_END("outcome = 'interrupted'") " SELECT count(*) FROM u",
		      3, p, 0, NULL, err);
}

int state_job_release_orphans(struct state_conn *sc, int64_t run_id, int64_t engine_id, const int64_t *held,
			      size_t nheld, long *count, struct fleet_err *err)
{
	struct fleet_buf ids = FLEET_BUF_INIT(STATE_IDS_MAX);
	char b0[STATE_NUM_MAX], b1[STATE_NUM_MAX];
	const char *p[3];
	PGresult *res;

	state_array_begin(&ids);
	for (size_t i = 0; i < nheld; i++)
		state_array_i64(&ids, held[i]);
	state_array_end(&ids);
	p[0] = state_fmt_i64(b0, run_id);
	p[1] = state_fmt_i64(b1, engine_id);
	p[2] = fleet_buf_cstr(&ids);
	res = state_bufs_fit(&ids, 1, "release the jobs no worker of this engine holds", err) < 0 ? NULL :
	      state_exec(sc, "release the jobs no worker of this engine holds",
			 "WITH u AS (UPDATE job SET state = 'queued', scheduled_at = now(), lease_owner = NULL,"
			 "  lease_expires = NULL, attempts = greatest(attempts - 1, 0), updated_at = now()"
			 "  WHERE run_id = $1 AND state = 'running' AND lease_owner = $2 AND lease_expires < now()"
			 "  AND id <> ALL ($3::bigint[]) RETURNING id, lease_epoch),"
			 " a AS (UPDATE job_attempt SET ended_at = now(), outcome = 'interrupted' FROM u"
			 "  WHERE job_attempt.job_id = u.id AND job_attempt.ended_at IS NULL)"
			 " SELECT count(*) FROM u",
			 3, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	fleet_buf_release(&ids);
	return state_count(res, count);
}

/* ---- servers that are down -------------------------------------------------------------------- */

/* A job of the run that uses the server (host $2, port $3) on either side. */
#define SERVER_MATCH "((host1 = $2 AND port1 = $3::int) OR (host2 = $2 AND port2 = $3::int))"
/* Parked: queued, never due until the server answers again; lease_owner names the engine that
 * watches the server (so that others can take the jobs back if it dies). */
#define PARKED "scheduled_at = 'infinity'"

int state_job_defer(struct state_conn *sc, const struct state_lease *lease, const struct fleet_err *why,
		    unsigned delay_ms, int park, struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX];
	char b3[STATE_NUM_MAX];
	const char *p[8];

	state_lease_params(lb, lease, p);
	p[3] = state_fmt_u64(b3, delay_ms);
	p[4] = park ? "t" : "f";
	state_err_params(why, FLEET_ERR_TRANSIENT, "server down", &p[5]);
	return fenced(sc, STATE_STMT_DEFER, lease, "put the job back until its server answers",
		      "WITH u AS (UPDATE job SET state = 'queued', attempts = greatest(attempts - 1, 0),"
		      "  scheduled_at = CASE WHEN $5::boolean THEN 'infinity'"
		      "   ELSE now() + $4::float8 * interval '1 millisecond' END,"
		      "  lease_owner = CASE WHEN $5::boolean THEN lease_owner END, lease_expires = NULL,"
		      "  last_error_class = $6, last_error_code = $7, last_error_text = $8, updated_at = now()"
		      "  WHERE " LEASE_WHERE " RETURNING id),"
		      LEASE_ATTEMPT_END("outcome = 'server_down', error_class = $6, error_code = $7, error_text = $8")
		      " SELECT count(*) FROM u",
		      8, p, 0, NULL, err);
}

/* The server statements change every queued job of a server, up to 50,000 of them. One UPDATE of
 * them all took 3-5 s under load, and the workers' own statements on those rows (a claim's defer,
 * 59 s of waiting over 65 calls) waited for it to commit. They run in batches of
 * STATE_SERVER_BATCH rows instead, each its own statement (and transaction): a worker waits at most
 * for one batch, never for the whole park. Each batch walks the run's
 * claim index from its start (job_due_idx: the rows it changes leave that part of it), or the parked
 * end of it, not the whole table. *count = rows changed in all. */
static int server_update(struct state_conn *sc, const char *what, const char *sql, int nparams, const char **p,
			 long *count, struct fleet_err *err)
{
	long total = 0;

	for (;;) {
		long n = 0;

		if (state_count(state_exec(sc, what, sql, nparams, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err), &n) < 0)
			return -1;
		total += n;
		if (n == 0) /* (a batch may come short of the limit when rows left it while it waited) */
			break;
	}
	if (count)
		*count = total;
	return 0;
}

/* The batch of a server statement: queued jobs of the run matching COND, at most STATE_SERVER_BATCH.
 * LOCK is "SKIP LOCKED" (the park and the orphans: a job skipped is one a worker holds, and it
 * parks the job itself when it sees the server down) or "" (resume and fail, which must reach
 * every job: they wait for the one row, not the other way round). */
#define SERVER_BATCH(COND, LOCK)                                                                             \
	"WITH b AS (SELECT id FROM job WHERE run_id = $1 AND state = 'queued' AND " COND                     \
	"  LIMIT " STATE_STR(STATE_SERVER_BATCH) " FOR UPDATE " LOCK "),"

int state_server_park(struct state_conn *sc, int64_t run_id, int64_t engine_id, const char *host,
		      unsigned port, long *count, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b2[STATE_NUM_MAX], b3[STATE_NUM_MAX];
	const char *p[4] = {state_fmt_i64(b0, run_id), host, state_fmt_u64(b2, port), state_fmt_i64(b3, engine_id)};

	return server_update(sc, "park the accounts of a server that is down",
			     SERVER_BATCH("scheduled_at < 'infinity' AND " SERVER_MATCH, "SKIP LOCKED")
			     " u AS (UPDATE job SET " PARKED ", lease_owner = $4, updated_at = now()"
			     "  FROM b WHERE job.id = b.id RETURNING job.id)"
			     " SELECT count(*) FROM u",
			     4, p, count, err);
}

int state_server_resume(struct state_conn *sc, int64_t run_id, const char *host, unsigned port, long *count,
			struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b2[STATE_NUM_MAX];
	const char *p[3] = {state_fmt_i64(b0, run_id), host, state_fmt_u64(b2, port)};

	/* Due at once, but after the accounts of healthy servers that are already due. */
	return server_update(sc, "resume the accounts of a server",
			     SERVER_BATCH(PARKED " AND " SERVER_MATCH, "")
			     " u AS (UPDATE job SET scheduled_at = now(), lease_owner = NULL, updated_at = now()"
			     "  FROM b WHERE job.id = b.id RETURNING job.id) SELECT count(*) FROM u",
			     3, p, count, err);
}

int state_server_fail(struct state_conn *sc, int64_t run_id, const char *host, unsigned port,
		      const struct fleet_err *why, long *count, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b2[STATE_NUM_MAX];
	const char *p[6] = {state_fmt_i64(b0, run_id), host, state_fmt_u64(b2, port),
			    fleet_err_class_name(why->cls), why->code[0] ? why->code : NULL, why->message};

	return server_update(sc, "fail the accounts of a server that stays down",
			     SERVER_BATCH(SERVER_MATCH, "")
			     " u AS (UPDATE job SET state = 'failed', lease_owner = NULL, lease_expires = NULL,"
			     "  finished_at = now(), last_error_class = $4, last_error_code = $5, last_error_text = $6,"
			     "  updated_at = now() FROM b WHERE job.id = b.id RETURNING job.id) SELECT count(*) FROM u",
			     6, p, count, err);
}

int state_job_unpark_orphans(struct state_conn *sc, int64_t run_id, long *count, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[1] = {state_fmt_i64(b0, run_id)};

	return server_update(sc, "take back accounts parked by an engine that is gone",
			     SERVER_BATCH(PARKED " AND NOT EXISTS (SELECT 1 FROM engine e WHERE e.id = job.lease_owner"
					  "  AND e.stopped_at IS NULL AND e.expires_at > now())", "SKIP LOCKED")
			     " u AS (UPDATE job SET scheduled_at = now(), lease_owner = NULL, updated_at = now()"
			     "  FROM b WHERE job.id = b.id RETURNING job.id) SELECT count(*) FROM u",
			     1, p, count, err);
}

/* ---- retry and cancel ------------------------------------------------------------------------- */

int state_job_requeue(struct state_conn *sc, int64_t job_id, struct fleet_err *err)
{
	long n = 0;

	if (state_count(state_exec_id(sc, "requeue the job",
				      "WITH u AS (UPDATE job SET " REQUEUE_SET " WHERE id = $1 AND state <> 'running'"
				      " RETURNING id) SELECT count(*) FROM u",
				      job_id, STATE_EXEC_IDEMPOTENT, err),
			&n) < 0)
		return -1;
	return n > 0;
}

int state_run_requeue(struct state_conn *sc, int64_t run_id, unsigned state_mask, long *count,
		      struct fleet_err *err)
{
	struct fleet_buf states = FLEET_BUF_INIT(STATE_NAMES_MAX);
	char b0[STATE_NUM_MAX];
	const char *p[2];
	PGresult *res;

	state_array_begin(&states);
	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		if (s != STATE_JOB_RUNNING && (state_mask & STATE_JOB_MASK(s)))
			state_array_str(&states, job_state_names[s]);
	state_array_end(&states);
	p[0] = state_fmt_i64(b0, run_id);
	p[1] = fleet_buf_cstr(&states);
	res = state_bufs_fit(&states, 1, "requeue the jobs", err) < 0 ? NULL :
	      state_exec(sc, "requeue the jobs",
			 "WITH u AS (UPDATE job SET " REQUEUE_SET " WHERE ($1::bigint = 0 OR run_id = $1)"
			 " AND state = ANY ($2::text[]) RETURNING id),"
			 " r AS (UPDATE run SET state = 'active', updated_at = now()"
			 "  WHERE id IN (SELECT DISTINCT j.run_id FROM job j JOIN u ON u.id = j.id))"
			 " SELECT count(*) FROM u",
			 2, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	fleet_buf_release(&states);
	return state_count(res, count);
}

int state_job_cancel(struct state_conn *sc, int64_t job_id, struct fleet_err *err)
{
	long n = 0;

	if (state_count(state_exec_id(sc, "cancel the job",
				      "WITH u AS (UPDATE job SET " CANCEL_SET("'" STATE_CODE_CANCELLED "'", CANCEL_TEXT)
				      "  WHERE id = $1 AND state <> 'cancelled' RETURNING id),"
				      " " CANCEL_ATTEMPTS " SELECT count(*) FROM u",
				      job_id, STATE_EXEC_IDEMPOTENT, err),
			&n) < 0)
		return -1;
	return n > 0;
}

int state_job_find(struct state_conn *sc, int64_t run_id, const char *account, int64_t *job_id,
		   struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[2] = {state_fmt_i64(b0, run_id), account};
	uint64_t id;
	PGresult *res;
	int n;

	if (fleet_parse_u64(account, 1, INT64_MAX, &id) == 0)
		res =
		    state_exec(sc, "find the job",
			       "SELECT id FROM job WHERE ($1::bigint = 0 OR run_id = $1) AND id = $2::bigint",
			       2, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	else
		res = state_exec(sc, "find the job",
				 "SELECT id FROM job WHERE ($1::bigint = 0 OR run_id = $1)"
				 " AND (user1 = $2 OR user1 || '@' || host1 = $2) ORDER BY id LIMIT 2",
				 2, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	if (!res)
		return -1;
	n = PQntuples(res);
	if (n == 1)
		*job_id = state_get_i64(res, 0, 0);
	PQclear(res);
	if (n > 1)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_AMBIGUOUS,
				     "cannot choose the account: several jobs match");
	return n == 1;
}

/* ---- verify --------------------------------------------------------------------------------- */

static int job_load_row(const PGresult *res, int i, void *arg)
{
	struct state_claim *out = arg;

	(void)i; /* the id is the key: one row at most */
	out->lease.job_id = state_get_i64(res, 0, 0);
	out->run_id = state_get_i64(res, 0, 1);
	claim_pair_from_row(res, 2, out);
	out->attempt = 1;
	out->max_attempts = (int)state_get_i64(res, 0, 10);
	return 1;
}

int state_job_load(struct state_conn *sc, int64_t job_id, struct state_claim *out, struct fleet_err *err)
{
	memset(out, 0, sizeof(*out));
	return state_each_row(state_exec_id(sc, "read the job",
					    "SELECT id, run_id, host1, port1, user1, host2, port2, user2, options, attempts,"
					    " max_attempts FROM job WHERE id = $1",
					    job_id, STATE_EXEC_IDEMPOTENT, err),
			      job_load_row, out); /* 1 found, 0 none */
}

int state_job_record_verify(struct state_conn *sc, int64_t job_id, const struct state_verify *v,
			    struct fleet_err *err)
{
	char b[8][STATE_NUM_MAX];
	const char *p[10] = {state_fmt_i64(b[0], job_id),	 v->verdict,
			     state_fmt_i64(b[1], v->on_source), state_fmt_i64(b[2], v->on_destination),
			     state_fmt_i64(b[3], v->missing),	 state_fmt_i64(b[4], v->extra),
			     state_fmt_i64(b[5], v->altered),	 state_fmt_i64(b[6], v->flags),
			     state_fmt_i64(b[7], v->dates),	 v->detail};

	return state_exec_cmd(sc, "record the verify result",
			      "UPDATE job SET verify_verdict = $2, verified_at = now(), verify_on_source = $3,"
			      " verify_on_destination = $4, verify_missing = $5, verify_extra = $6,"
			      " verify_altered = $7, verify_flags = $8, verify_dates = $9, verify_detail = $10"
			      " WHERE id = $1",
			      10, p, STATE_EXEC_IDEMPOTENT, err);
}

int state_run_find(struct state_conn *sc, const char *name, int64_t *run_id, struct fleet_err *err)
{
	const char *p[1] = {name};

	return state_one_i64(state_exec(sc, "find the run", "SELECT id FROM run WHERE name = $1", 1, p, NULL, NULL,
					STATE_EXEC_IDEMPOTENT, err),
			     run_id);
}

int state_verify_jobs(struct state_conn *sc, int64_t run_id, int only_failed, int64_t **ids, size_t *n,
		      struct fleet_err *err)
{
	char b0[STATE_NUM_MAX];
	const char *p[2] = {state_fmt_i64(b0, run_id), only_failed ? "t" : "f"};
	PGresult *res = state_exec(sc, "list the accounts to verify",
				   "SELECT id FROM job WHERE run_id = $1 AND state <> 'cancelled' AND (NOT $2::boolean"
				   " OR state IN ('failed', 'partial') OR coalesce(verify_verdict, '') <> 'PASS')"
				   " ORDER BY id",
				   2, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);

	*ids = NULL;
	*n = 0;
	if (!res)
		return -1;
	*n = (size_t)PQntuples(res);
	*ids = xcalloc(*n ? *n : 1, sizeof(**ids));
	for (size_t i = 0; i < *n; i++)
		(*ids)[i] = state_get_i64(res, (int)i, 0);
	PQclear(res);
	return 0;
}

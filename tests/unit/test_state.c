/* Tests for state/ against a real PostgreSQL: migrations, claiming, leases and fencing, the ledger
 * and resume queries, the append window, UIDVALIDITY resets, retry transitions, slots, credentials,
 * import and reports. Each test gets a fresh database (test_state_<pid>_<n>), dropped after it.
 *
 * The server: IMAPFLEET_TEST_PG, else LAB_PG_URL from $LAB_DIR/lab.env (default
 * $top_srcdir/.lab/lab.env); without either the whole program is skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/unit.h"
#include <libpq-fe.h>
#include <pthread.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "state/cluster.h"
#include "state/secret.h"
#include "state/state.h"
#include "state/state_private.h" /* state_begin: a transaction left open */
#include "state/store.h"
#include "tests/unit/labpg.h"
#include "tests/unit/unit_jobs.h"

static char *admin_ci;
static int db_counter;

struct fx {
	char dbname[64];
	char *ci;	       /* conninfo of the fresh database */
	struct state_conn *sc; /* opened (migrated) on it */
	PGconn *raw;	       /* for checks in plain SQL */
	int64_t run_id, engine_id;
};

/* ---- helpers ---------------------------------------------------------------------------------- */

static void admin_exec(const char *sql)
{
	PGconn *pg = PQconnectdb(admin_ci);
	PGresult *res;

	if (PQstatus(pg) != CONNECTION_OK)
		fail_msg("cannot connect to the test server: %s", PQerrorMessage(pg));
	res = PQexecParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(pg));
	PQclear(res);
	PQfinish(pg);
}

static int64_t q_i64(PGconn *pg, const char *sql)
{
	PGresult *res = PQexecParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0);
	int64_t v = -1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1)
		fail_msg("%s: %s", sql, PQerrorMessage(pg));
	if (!PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static void q_exec(PGconn *pg, const char *sql)
{
	PGresult *res = PQexecParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(pg));
	PQclear(res);
}

#define CHECK(call)                                                                                          \
	do {                                                                                                 \
		struct fleet_err e_;                                                                         \
		fleet_err_clear(&e_);                                                                        \
		if ((call) < 0)                                                                              \
			fail_msg("%s: [%s %s] %s", #call, fleet_err_class_name(e_.cls), e_.code,             \
				 e_.message);                                                                \
	} while (0)
#define E (&e_)

static char *fresh_db(char name[64])
{
	char *sql;

	snprintf(name, 64, "test_state_%ld_%d", (long)getpid(), ++db_counter);
	sql = xasprintf("CREATE DATABASE %s", name);
	admin_exec(sql);
	xfree(&sql);
	return state_conninfo_with_dbname(admin_ci, name);
}

/* Like admin_exec, but reports failure instead of failing the test. */
static int admin_try(const char *sql)
{
	PGconn *pg = PQconnectdb(admin_ci);
	PGresult *res;
	int ok;

	if (PQstatus(pg) != CONNECTION_OK) {
		PQfinish(pg);
		return 0;
	}
	res = PQexecParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	PQfinish(pg);
	return ok;
}

static void drop_db(const char *name)
{
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);

	/* A backend of the test that is still closing (slow under sanitizers) can make one DROP fail. */
	for (int i = 0; i < 4 && !admin_try(sql); i++)
		usleep(250000);
	admin_exec(sql);
	xfree(&sql);
}

static int fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	f->ci = fresh_db(f->dbname);
	CHECK(state_conn_open(f->ci, &f->sc, E));
	f->raw = PQconnectdb(f->ci);
	assert_int_equal(PQstatus(f->raw), CONNECTION_OK);
	CHECK(state_run_get_or_create(f->sc, "/data/accounts.csv", "{\"workers\": 4}", &f->run_id, NULL, E));
	CHECK(state_engine_register(f->sc, "host-a", 1234, "test", 60000, &f->engine_id, E));
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	state_conn_close(&f->sc);
	PQfinish(f->raw);
	drop_db(f->dbname);
	xfree(&f->ci);
	xfree(&f);
	return 0;
}

static void add_jobs(struct fx *f, int n, int max_attempts, int64_t *ids)
{
	const struct state_job_spec row = {"src.example.org", 993, NULL, "dst.example.org", 993, NULL, NULL, max_attempts};
	struct unit_jobs j;

	unit_jobs_make(&j, (size_t)n, &row, "user", 0, "@example.org");
	CHECK(state_job_upsert_many(f->sc, f->run_id, j.specs, j.n, ids, NULL, E));
	unit_jobs_release(&j);
}

static int64_t claim_one(struct fx *f, int64_t engine, unsigned lease_ms, struct state_claim *c);
static void fill_row(struct state_ledger_row *r, int64_t folder, uint32_t uidv, uint32_t uid);

/* Adds to the batch B the ledger row fill_row makes for FOLDER, UIDV and UID. */
static void add_row(struct state_ledger_batch *b, int64_t folder, uint32_t uidv, uint32_t uid)
{
	struct state_ledger_row row;

	fill_row(&row, folder, uidv, uid);
	CHECK(state_ledger_batch_add(b, &row, E));
}

/* N jobs (MAX_ATTEMPTS each) added, their ids in IDS, and the first claimed into C by the fixture's
 * engine; its id. */
static int64_t jobs_one_claimed(struct fx *f, int n, int max_attempts, int64_t *ids, struct state_claim *c)
{
	add_jobs(f, n, max_attempts, ids);
	assert_int_equal(claim_one(f, f->engine_id, 60000, c), ids[0]);
	return ids[0];
}

/* One job (MAX_ATTEMPTS) added and claimed into C by the fixture's engine; its id. */
static int64_t claimed_job(struct fx *f, int max_attempts, struct state_claim *c)
{
	int64_t id;

	return jobs_one_claimed(f, 1, max_attempts, &id, c);
}

/* What a ledger test starts from: N jobs (MAX_ATTEMPTS each, ids in IDS), the first claimed, with the folder
 * NAME (DST, UIDVALIDITY) and an empty ledger batch of BATCH_ROWS (0: the default) on its lease. */
struct ledger_job {
	int64_t ids[3];
	int64_t id;
	struct state_claim c;
	struct state_folder fold;
	struct state_ledger_batch *b;
};

static void ledger_jobs_start(struct fx *f, int n, int max_attempts, size_t batch_rows, const char *name,
			      const char *dst, uint32_t uidvalidity, struct ledger_job *L)
{
	assert_true(n >= 1 && (size_t)n <= sizeof(L->ids) / sizeof(L->ids[0]));
	L->id = jobs_one_claimed(f, n, max_attempts, L->ids, &L->c);
	CHECK(state_folder_upsert(f->sc, &L->c.lease, name, dst, uidvalidity, &L->fold, E));
	L->b = state_ledger_batch_new(f->sc, &L->c.lease, batch_rows);
}

/* Frees the batch and releases the claim of ledger_jobs_start. */
static void ledger_job_end(struct ledger_job *L)
{
	state_ledger_batch_free(&L->b);
	state_claim_release(&L->c);
}

static int64_t claim_one(struct fx *f, int64_t engine, unsigned lease_ms, struct state_claim *c)
{
	struct fleet_err err;
	int rc = state_job_claim(f->sc, f->run_id, engine, "host", lease_ms, c, &err);

	if (rc < 0)
		fail_msg("claim: %s", err.message);
	return rc == 1 ? c->lease.job_id : 0;
}

static double now_s(void)
{
	return (double)fleet_now_ms() / 1000.0;
}

/* ---- migrations ------------------------------------------------------------------------------- */

struct mig_arg {
	const char *ci;
	int rc;
	char msg[FLEET_ERR_TEXT_MAX];
};

static void *migrate_thread(void *p)
{
	struct mig_arg *a = p;
	struct state_conn *sc = NULL;
	struct fleet_err err;

	a->rc = state_conn_open(a->ci, &sc, &err);
	if (a->rc < 0)
		snprintf(a->msg, sizeof(a->msg), "%s", err.message);
	state_conn_close(&sc);
	return NULL;
}

static void concurrent_migrations_apply_each_version_exactly_once(void **state)
{
	char name[64];
	char *ci = fresh_db(name);
	struct mig_arg args[4];
	pthread_t t[4];
	struct state_conn *sc;
	PGconn *raw;
	int version;
	int64_t versions;

	for (int i = 0; i < 4; i++) {
		args[i] = (struct mig_arg){.ci = ci};
		pthread_create(&t[i], NULL, migrate_thread, &args[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		if (args[i].rc < 0)
			fail_msg("thread %d: %s", i, args[i].msg);
	}
	raw = PQconnectdb(ci);
	/* Each version once (the primary key), the known ones only; numbers may have gaps (a number
	 * given to a branch that has not landed). */
	versions = q_i64(raw, "SELECT count(*) FROM schema_version");
	assert_true(versions >= 10 && versions <= STATE_SCHEMA_VERSION);
	assert_int_equal(q_i64(raw, "SELECT max(version) FROM schema_version"), STATE_SCHEMA_VERSION);
	/* and again: nothing to do */
	CHECK(state_conn_open(ci, &sc, E));
	CHECK(state_schema_version(sc, &version, E));
	assert_int_equal(version, STATE_SCHEMA_VERSION);
	assert_int_equal(state_schema_migrate(sc, NULL), STATE_SCHEMA_VERSION);
	assert_int_equal(q_i64(raw, "SELECT count(*) FROM schema_version"), versions);
	state_conn_close(&sc);
	PQfinish(raw);
	drop_db(name);
	xfree(&ci);
}

/* A connection given back to the store serves the next thread without a new login; one left
 * inside a transaction is closed, never handed on with the transaction open. */
static void the_store_hands_an_idle_connection_on(void **state)
{
	char name[64];
	char *ci = fresh_db(name);
	struct state_store *st = NULL;
	struct state_conn *a = NULL, *b = NULL, *c = NULL;
	int pid;

	(void)state;
	CHECK(state_store_open(ci, NULL, 0, &st, E));
	CHECK(state_store_connect(st, &a, E));
	CHECK(state_store_connect(st, &b, E));
	assert_int_not_equal(PQbackendPID(a->pg), PQbackendPID(b->pg));
	pid = PQbackendPID(a->pg);
	state_store_disconnect(st, &a);
	assert_null(a);
	CHECK(state_store_connect(st, &c, E));
	assert_int_equal(PQbackendPID(c->pg), pid); /* the same session: no new login */
	CHECK(state_begin(c, E));
	state_store_disconnect(st, &c);
	assert_null(c);
	CHECK(state_store_connect(st, &c, E));
	assert_int_not_equal(PQbackendPID(c->pg), pid);
	assert_int_equal(PQtransactionStatus(c->pg), PQTRANS_IDLE);
	state_store_disconnect(st, &b);
	state_store_disconnect(st, &c);
	state_store_close(&st);
	drop_db(name);
	xfree(&ci);
}

/* Migrations are numbered by branch and land in any order: a database may record version 12 before
 * version 11 exists in the code. Every version not recorded is applied, not only those above the
 * highest recorded. Here version 9 (the lease_waiting column) is taken away below the highest: the
 * next connection applies it again, and only it. */
static void a_version_not_recorded_below_the_highest_is_applied(void **state)
{
	char name[64];
	char *ci = fresh_db(name);
	struct state_conn *sc;
	PGconn *raw;
	int64_t versions;

	CHECK(state_conn_open(ci, &sc, E));
	state_conn_close(&sc);
	raw = PQconnectdb(ci);
	versions = q_i64(raw, "SELECT count(*) FROM schema_version");
	q_exec(raw, "ALTER TABLE job DROP COLUMN lease_waiting");
	q_exec(raw, "DELETE FROM schema_version WHERE version = 9");
	q_exec(raw, "UPDATE schema_version SET applied_at = '2000-01-01'");
	assert_int_equal(q_i64(raw, "SELECT max(version) FROM schema_version"), STATE_SCHEMA_VERSION);
	CHECK(state_conn_open(ci, &sc, E));
	assert_int_equal(q_i64(raw, "SELECT count(*) FROM schema_version"), versions);
	assert_int_equal(q_i64(raw, "SELECT count(*) FROM schema_version WHERE version = 9"), 1);
	assert_int_equal(q_i64(raw, "SELECT count(*) FROM schema_version WHERE applied_at > '2000-01-01'"), 1);
	assert_int_equal(q_i64(raw, "SELECT count(*) FROM information_schema.columns"
				    " WHERE table_name = 'job' AND column_name = 'lease_waiting'"),
			 1);
	/* and once more: nothing left to apply */
	assert_int_equal(state_schema_migrate(sc, NULL), STATE_SCHEMA_VERSION);
	assert_int_equal(q_i64(raw, "SELECT count(*) FROM schema_version WHERE applied_at > '2000-01-01'"), 1);
	state_conn_close(&sc);
	PQfinish(raw);
	drop_db(name);
	xfree(&ci);
}

/* ---- claiming ----------------------------------------------------------------------------------- */

#define NJOBS	 500
#define NTHREADS 8

struct claimer {
	const char *ci;
	int64_t run_id, engine_id;
	int64_t *got;
	int n;
	int failed;
};

/* A thread's own connection to CI; NULL, with *failed set, when it cannot be opened. */
static struct state_conn *thread_conn(const char *ci, int *failed)
{
	struct state_conn *sc = NULL;
	struct fleet_err err;

	if (state_conn_open(ci, &sc, &err) < 0)
		*failed = 1;
	return sc;
}

static void *claim_thread(void *p)
{
	struct claimer *c = p;
	struct state_conn *sc = thread_conn(c->ci, &c->failed);
	struct fleet_err err;

	if (!sc)
		return NULL;
	for (;;) {
		struct state_claim cl;
		int rc = state_job_claim(sc, c->run_id, c->engine_id, "h", 60000, &cl, &err);

		if (rc < 0) {
			c->failed = 1;
			break;
		}
		if (rc == 0)
			break;
		c->got[c->n++] = cl.lease.job_id;
		state_claim_release(&cl);
	}
	state_conn_close(&sc);
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void every_job_is_claimed_exactly_once_by_threads_and_another_process(void **state)
{
	struct fx *f = *state;
	int64_t *ids = xcalloc(NJOBS, sizeof(*ids)), *all = xcalloc(NJOBS * 2, sizeof(*all));
	struct claimer c[NTHREADS];
	pthread_t t[NTHREADS];
	int fds[2], nall = 0;
	pid_t child;
	int64_t v;
	int status;

	add_jobs(f, NJOBS, 5, ids);
	assert_int_equal(pipe(fds), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct claimer cc = {f->ci, f->run_id, f->engine_id + 1000, xcalloc(NJOBS, sizeof(int64_t)),
				     0,	    0};

		close(fds[0]);
		claim_thread(&cc);
		for (int i = 0; i < cc.n; i++)
			if (write(fds[1], &cc.got[i], sizeof(int64_t)) != sizeof(int64_t))
				_exit(2);
		_exit(cc.failed ? 1 : 0);
	}
	close(fds[1]);
	for (int i = 0; i < NTHREADS; i++) {
		c[i] =
		    (struct claimer){f->ci, f->run_id, f->engine_id, xcalloc(NJOBS, sizeof(int64_t)), 0, 0};
		pthread_create(&t[i], NULL, claim_thread, &c[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		assert_false(c[i].failed);
		for (int k = 0; k < c[i].n; k++)
			all[nall++] = c[i].got[k];
		xfree(&c[i].got);
	}
	while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
		assert_true(nall < NJOBS * 2);
		all[nall++] = v;
	}
	close(fds[0]);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(nall, NJOBS);
	qsort(all, (size_t)nall, sizeof(*all), cmp_i64);
	qsort(ids, NJOBS, sizeof(*ids), cmp_i64);
	assert_memory_equal(all, ids, NJOBS * sizeof(*ids)); /* each once, none missing */
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'running' AND attempts = 1"
				       " AND lease_epoch = 1"),
			 NJOBS);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt"), NJOBS);
	xfree(&ids);
	xfree(&all);
}

/* The claim takes an expired lease before queued work, then queued jobs by due time; a job parked
 * at 'infinity' is never due; next_due says how long until something is due and when the run is
 * over, from the claim indexes alone. */
static void claims_follow_due_time_and_next_due_reports_the_wait(void **state)
{
	struct fx *f = *state;
	int64_t ids[4], wait = 0, engine_b;
	struct state_claim c;
	char sql[256];
	struct fleet_err err;

	add_jobs(f, 4, 5, ids);
	snprintf(sql, sizeof(sql),
		 "UPDATE job SET scheduled_at = CASE id WHEN %lld THEN now() + interval '1 hour'"
		 " WHEN %lld THEN now() - interval '1 minute' WHEN %lld THEN 'infinity'"
		 " ELSE now() - interval '2 minutes' END",
		 (long long)ids[0], (long long)ids[1], (long long)ids[2]);
	q_exec(f->raw, sql);
	assert_int_equal(state_job_next_due(f->sc, f->run_id, &wait, &err), 1);
	assert_int_equal(wait, 0);
	/* due first: ids[3] (2 minutes ago), then ids[1]; ids[0] is due in an hour, ids[2] never */
	assert_int_equal(claim_one(f, f->engine_id, 300, &c), ids[3]);
	state_claim_release(&c);
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), ids[1]);
	state_claim_release(&c);
	CHECK(state_job_finish(f->sc, &c.lease, E));
	/* left: ids[0] in an hour, ids[2] parked, ids[3] running with a 300 ms lease */
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), 0);
	assert_int_equal(state_job_next_due(f->sc, f->run_id, &wait, &err), 1);
	assert_true(wait <= 300);
	fleet_sleep_ms(400);
	/* the expired lease is taken before anything queued */
	CHECK(state_engine_register(f->sc, "host-b", 99, "test", 60000, &engine_b, E));
	assert_int_equal(claim_one(f, engine_b, 60000, &c), ids[3]);
	assert_true(c.reclaimed);
	state_claim_release(&c);
	CHECK(state_job_finish(f->sc, &c.lease, E));
	assert_int_equal(state_job_next_due(f->sc, f->run_id, &wait, &err), 1);
	assert_true(wait > 3500 * 1000 && wait <= 3600 * 1000);
	snprintf(sql, sizeof(sql), "UPDATE job SET state = 'done' WHERE id = %lld", (long long)ids[0]);
	q_exec(f->raw, sql);
	/* only the parked job: work is pending, but nothing will become due by itself */
	assert_int_equal(state_job_next_due(f->sc, f->run_id, &wait, &err), 1);
	assert_int_equal(wait, -1);
	snprintf(sql, sizeof(sql), "UPDATE job SET state = 'failed' WHERE id = %lld", (long long)ids[2]);
	q_exec(f->raw, sql);
	assert_int_equal(state_job_next_due(f->sc, f->run_id, &wait, &err), 0);
}

/* A server that is down: its queued jobs are parked, resumed, failed and taken back from a stopped
 * engine in batches (STATE_SERVER_BATCH = 1,000 per statement) that together reach every job of
 * the server and no other; the park skips a job another transaction holds instead of waiting for
 * it; deregistering the engine that parked them leaves them parked until unpark_orphans. */
#define PARK_JOBS 2500
#define PARK_OTHER 300 /* of them on another source server */
static void a_down_servers_jobs_are_parked_and_resumed_in_batches(void **state)
{
	struct fx *f = *state;
	int64_t *ids = xcalloc(PARK_JOBS, sizeof(*ids)), engine_p;
	const long mine = PARK_JOBS - PARK_OTHER;
	struct fleet_err why;
	char sql[256];
	long n = 0;

	add_jobs(f, PARK_JOBS, 5, ids);
	snprintf(sql, sizeof(sql), "UPDATE job SET host1 = 'other.example.org' WHERE id <= %lld",
		 (long long)ids[PARK_OTHER - 1]);
	q_exec(f->raw, sql);
	CHECK(state_engine_register(f->sc, "host-p", 96, "test", 60000, &engine_p, E));
	/* one job of the server is held by another transaction: the park goes round it */
	q_exec(f->raw, "BEGIN");
	snprintf(sql, sizeof(sql), "SELECT id FROM job WHERE id = %lld FOR UPDATE", (long long)ids[PARK_JOBS - 1]);
	q_exec(f->raw, sql);
	CHECK(state_server_park(f->sc, f->run_id, engine_p, "src.example.org", 993, &n, E));
	q_exec(f->raw, "COMMIT");
	assert_int_equal(n, mine - 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE scheduled_at = 'infinity'"), mine - 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE scheduled_at = 'infinity'"
				       " AND host1 = 'other.example.org'"), 0);
	CHECK(state_server_park(f->sc, f->run_id, engine_p, "src.example.org", 993, &n, E));
	assert_int_equal(n, 1); /* the one left */
	CHECK(state_server_resume(f->sc, f->run_id, "src.example.org", 993, &n, E));
	assert_int_equal(n, mine);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE scheduled_at = 'infinity'"), 0);
	/* parked by an engine that stops: still parked, then taken back */
	CHECK(state_server_park(f->sc, f->run_id, engine_p, "dst.example.org", 993, &n, E));
	assert_int_equal(n, PARK_JOBS);
	CHECK(state_engine_deregister(f->sc, engine_p, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE scheduled_at = 'infinity'"), PARK_JOBS);
	CHECK(state_job_unpark_orphans(f->sc, f->run_id, &n, E));
	assert_int_equal(n, PARK_JOBS);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE scheduled_at = 'infinity'"), 0);
	/* given up: every queued job of the server fails, parked or not, and no other */
	CHECK(state_server_park(f->sc, f->run_id, f->engine_id, "src.example.org", 993, &n, E));
	q_exec(f->raw, "UPDATE job SET scheduled_at = now() WHERE id IN (SELECT id FROM job"
		       " WHERE host1 = 'src.example.org' LIMIT 10)");
	fleet_err_set(&why, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, "SERVER_DOWN", "server src.example.org:993 stayed down");
	CHECK(state_server_fail(f->sc, f->run_id, "src.example.org", 993, &why, &n, E));
	assert_int_equal(n, mine);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'failed'"), mine);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'queued'"), PARK_OTHER);
	xfree(&ids);
}

/* ---- leases ------------------------------------------------------------------------------------ */

/* A claim that never started (its worker waited for connection slots, then its host died) is taken
 * back as soon as its short lease expires, without counting a second attempt and without a
 * lease_expired attempt in the history; once started (state_job_begin) a takeover counts. */
static void a_waiting_claim_is_taken_back_without_counting_an_attempt(void **state)
{
	struct fx *f = *state;
	int64_t id, engine_b, engine_c;
	struct state_claim a, b, c;
	struct fleet_err err;

	add_jobs(f, 1, 5, &id);
	CHECK(state_engine_register(f->sc, "host-b", 98, "test", 60000, &engine_b, E));
	CHECK(state_engine_register(f->sc, "host-c", 97, "test", 60000, &engine_c, E));
	assert_int_equal(claim_one(f, f->engine_id, 300, &a), id);
	assert_int_equal(a.attempt, 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE lease_waiting"), 1);
	fleet_sleep_ms(400);
	assert_int_equal(claim_one(f, engine_b, 300, &b), id);
	assert_true(b.reclaimed);
	assert_int_equal(b.attempt, 1);
	assert_int_equal(q_i64(f->raw, "SELECT attempts FROM job"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE outcome = 'lease_expired'"),
			 0);
	/* the first holder cannot start it any more */
	assert_int_equal(state_job_begin(f->sc, &a.lease, 60000, &err), -1);
	assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	/* the second starts it with a short lease and dies: now the takeover counts */
	CHECK(state_job_begin(f->sc, &b.lease, 300, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE lease_waiting"), 0);
	fleet_sleep_ms(400);
	assert_int_equal(claim_one(f, engine_c, 60000, &c), id);
	assert_int_equal(c.attempt, 2);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE outcome = 'lease_expired'"),
			 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE ended_at IS NULL"), 1);
	CHECK(state_job_begin(f->sc, &c.lease, 60000, E));
	CHECK(state_job_finish(f->sc, &c.lease, E));
	assert_int_equal(
	    q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE outcome = 'done' AND attempt = 2"), 1);
	state_claim_release(&a);
	state_claim_release(&b);
	state_claim_release(&c);
}

static void expired_lease_is_taken_back_and_the_late_writer_gets_lease_lost(void **state)
{
	struct fx *f = *state;
	int64_t id, engine_b;
	struct state_claim a, b;
	struct state_folder fold;
	struct state_ledger_batch *batch;
	struct state_ledger_row row = {
	    .src_uidvalidity = 9, .src_uid = 1, .size = 10, .state = STATE_MSG_COPIED};
	struct fleet_err err;

	add_jobs(f, 1, 5, &id);
	CHECK(state_engine_register(f->sc, "host-b", 99, "test", 60000, &engine_b, E));
	assert_int_equal(claim_one(f, f->engine_id, 60000, &a), id);
	CHECK(state_job_begin(f->sc, &a.lease, 300, E)); /* it started (slots taken): a short lease */
	CHECK(state_folder_upsert(f->sc, &a.lease, "INBOX", "INBOX", 9, &fold, E));
	CHECK(state_job_renew(f->sc, &a.lease, 300, E));
	/* nobody else may take it while the lease runs */
	assert_int_equal(claim_one(f, engine_b, 60000, &b), 0);
	fleet_sleep_ms(600);
	assert_int_equal(claim_one(f, engine_b, 60000, &b), id);
	assert_true(b.reclaimed);
	assert_int_equal(b.lease.epoch, a.lease.epoch + 1);
	assert_int_equal(b.attempt, 2);
	/* the first engine wakes up: every fenced write fails */
	assert_int_equal(state_job_renew(f->sc, &a.lease, 300, &err), -1);
	assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	assert_int_equal(err.cls, FLEET_ERR_PERMANENT);
	assert_int_equal(err.scope, FLEET_SCOPE_ACCOUNT);
	batch = state_ledger_batch_new(f->sc, &a.lease, 0);
	row.folder_id = fold.id;
	CHECK(state_ledger_batch_add(batch, &row, E));
	assert_int_equal(state_ledger_batch_flush(batch, &err), -1);
	assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	assert_int_equal(state_ledger_batch_pending(batch), 1);
	state_ledger_batch_free(&batch);
	assert_int_equal(state_folder_upsert(f->sc, &a.lease, "Sent", "Sent", 1, &fold, &err), -1);
	assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	assert_int_equal(state_job_finish(f->sc, &a.lease, &err), -1);
	assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message"), 0);
	/* the new holder writes fine; the old attempt is closed as expired */
	batch = state_ledger_batch_new(f->sc, &b.lease, 0);
	CHECK(state_ledger_batch_add(batch, &row, E));
	CHECK(state_ledger_batch_flush(batch, E));
	state_ledger_batch_free(&batch);
	CHECK(state_job_finish(f->sc, &b.lease, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE outcome = 'lease_expired'"),
			 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE outcome = 'done'"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job"), 1);
	state_claim_release(&a);
	state_claim_release(&b);
}

/* ---- ledger ------------------------------------------------------------------------------------- */

#define NMSG 100000

static void fill_row(struct state_ledger_row *r, int64_t folder, uint32_t uidv, uint32_t uid)
{
	memset(r, 0, sizeof(*r));
	r->folder_id = folder;
	r->src_uidvalidity = uidv;
	r->src_uid = uid;
	r->size = 1000 + uid % 7;
	r->internaldate = "17-Jul-1996 02:44:25 -0700";
	r->has_sha256 = 1;
	memset(r->sha256, (int)(uid & 0xff), 32);
	r->dst_uidvalidity = 55;
	r->dst_uid = uid + 10;
	r->flags = "\\Seen \"odd\\flag";
	r->state = uid % 1000 == 0 ? STATE_MSG_FAILED : STATE_MSG_COPIED;
	r->error = r->state == STATE_MSG_FAILED ? "rejected: too big" : NULL;
}

struct count_ctx {
	long rows;
	uint32_t first;
	int flags_ok;
};

static int count_cb(const struct state_ledger_row *r, void *p)
{
	struct count_ctx *c = p;

	if (c->rows++ == 0)
		c->first = r->src_uid;
	c->flags_ok = r->flags && strcmp(r->flags, "\\Seen \"odd\\flag") == 0 && r->has_sha256 &&
		      r->sha256[0] == (r->src_uid & 0xff);
	return 0;
}

static void ledger_batch_writes_100k_rows_and_resume_returns_the_copied_uids(void **state)
{
	struct fx *f = *state;
	struct ledger_job L;
	struct state_folder again;
	struct state_ledger_row row;
	uint32_t *uids, hi;
	size_t n;
	double t0, dt;
	struct count_ctx cc = {0};
	long expect_copied = NMSG - NMSG / 1000;

	ledger_jobs_start(f, 1, 5,
			  getenv("LEDGER_BATCH") ? (size_t)strtoul(getenv("LEDGER_BATCH"), NULL, 10) : 0,
			  "INBOX", "INBOX", 777, &L);
	assert_true(L.fold.created);
	t0 = now_s();
	for (uint32_t uid = 1; uid <= NMSG; uid++) {
		add_row(L.b, L.fold.id, 777, uid);
	}
	CHECK(state_ledger_batch_flush(L.b, E));
	dt = now_s() - t0;
	printf("# ledger: %.0f rows/s (%d rows in %.2f s, batches of %s)\n", NMSG / (dt > 0 ? dt : 1e-9),
	       NMSG, dt, getenv("LEDGER_BATCH") ? getenv("LEDGER_BATCH") : "500");
	assert_int_equal(state_ledger_batch_pending(L.b), 0);

	t0 = now_s();
	CHECK(state_ledger_uids(f->sc, L.fold.id, 777, STATE_MSG_MASK_COPIED, &uids, &n, E));
	printf("# resume query: %zu UIDs in %.3f s\n", n, now_s() - t0);
	assert_int_equal(n, expect_copied);
	for (size_t i = 1; i < n; i++)
		assert_true(uids[i - 1] < uids[i]);
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[n - 1], NMSG - 1); /* NMSG itself failed */
	xfree(&uids);
	CHECK(state_ledger_uids(f->sc, L.fold.id, 777, STATE_MSG_MASK_COPIED | STATE_MSG_MASK_FAILED, &uids,
				&n, E));
	assert_int_equal(n, NMSG);
	xfree(&uids);
	CHECK(state_ledger_uids(f->sc, L.fold.id, 778, STATE_MSG_MASK_COPIED, &uids, &n, E));
	assert_int_equal(n, 0);
	assert_null(uids);
	CHECK(state_ledger_highest_uid(f->sc, L.fold.id, 777, &hi, E));
	assert_int_equal(hi, NMSG - 1);

	/* counters: folder and job, and a replay of the same rows counts nothing twice */
	assert_int_equal(state_folder_get(f->sc, L.id, "INBOX", &again, NULL), 1);
	assert_int_equal(again.msgs_copied, expect_copied);
	assert_int_equal(again.msgs_failed, NMSG / 1000);
	assert_int_equal(again.highest_uid_copied, NMSG - 1);
	for (uint32_t uid = 1; uid <= 1000; uid++) {
		add_row(L.b, L.fold.id, 777, uid);
	}
	/* ... and a failed message that now copies moves from failed to copied */
	fill_row(&row, L.fold.id, 777, 2000);
	row.state = STATE_MSG_COPIED;
	row.error = NULL;
	CHECK(state_ledger_batch_add(L.b, &row, E));
	CHECK(state_ledger_batch_flush(L.b, E));
	assert_int_equal(state_folder_get(f->sc, L.id, "INBOX", &again, NULL), 1);
	assert_int_equal(again.msgs_copied, expect_copied + 1);
	assert_int_equal(again.msgs_failed, NMSG / 1000 - 1);
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job"), expect_copied + 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message"), NMSG);

	CHECK(state_ledger_foreach(f->sc, L.fold.id, 777, NMSG - 25000 + 1, count_cb, &cc, E));
	assert_int_equal(cc.rows, 25000);
	assert_int_equal(cc.first, NMSG - 25000 + 1);
	assert_true(cc.flags_ok);
	ledger_job_end(&L);
}

static void rows_for_a_folder_of_another_job_are_refused(void **state)
{
	struct fx *f = *state;
	struct ledger_job L; /* the first job, its INBOX and its batch */
	struct state_claim c2;
	struct state_folder f2;
	struct fleet_err err;

	ledger_jobs_start(f, 2, 5, 0, "INBOX", NULL, 1, &L);
	claim_one(f, f->engine_id, 60000, &c2);
	CHECK(state_folder_upsert(f->sc, &c2.lease, "INBOX", NULL, 1, &f2, E));
	add_row(L.b, f2.id, 1, 5);
	assert_int_equal(state_ledger_batch_flush(L.b, &err), -1);
	assert_string_equal(err.code, "FOLDER_NOT_IN_JOB");
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message"), 0);
	ledger_job_end(&L);
	state_claim_release(&c2);
}

/* message.folder_id has no foreign key since migration 14 (its per-row check was a tenth of the
 * ledger flush): the flush writes only rows of the leased job's folders (above), and a trigger keeps
 * the cascade: deleting a job, or its run, deletes its folders' rows and no other's. */
static void ledger_rows_go_with_their_folders_without_a_foreign_key(void **state)
{
	struct fx *f = *state;
	struct ledger_job L; /* the first job, its INBOX and its batch */
	struct state_claim c2;
	struct state_folder f2;
	struct state_ledger_batch *b2;

	ledger_jobs_start(f, 2, 5, 0, "INBOX", NULL, 1, &L);
	claim_one(f, f->engine_id, 60000, &c2);
	CHECK(state_folder_upsert(f->sc, &c2.lease, "INBOX", NULL, 1, &f2, E));
	add_row(L.b, L.fold.id, 1, 5);
	add_row(L.b, L.fold.id, 1, 6);
	CHECK(state_ledger_batch_flush(L.b, E));
	b2 = state_ledger_batch_new(f->sc, &c2.lease, 0);
	add_row(b2, f2.id, 1, 5);
	CHECK(state_ledger_batch_flush(b2, E));
	state_ledger_batch_free(&b2);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message"), 3);
	/* the first job: its folder and rows go, the other job's stay */
	q_exec(f->raw, "DELETE FROM job WHERE id = (SELECT f.job_id FROM folder f JOIN message m ON m.folder_id = f.id"
		       " GROUP BY f.job_id HAVING count(*) = 2)");
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message m JOIN folder f ON f.id = m.folder_id"), 1);
	/* the run: the rest */
	q_exec(f->raw, "DELETE FROM run");
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder"), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message"), 0);
	ledger_job_end(&L);
	state_claim_release(&c2);
}

/* Migration 14 on a database made before it, with a ledger: the foreign key goes, the rows stay and are
 * written on, and the trigger deletes them with their folders. */
static void migration_14_keeps_the_ledger_of_an_older_database(void **state)
{
	struct fx *f = *state;
	struct ledger_job L;

	ledger_jobs_start(f, 1, 5, 0, "INBOX", NULL, 1, &L);
	add_row(L.b, L.fold.id, 1, 5);
	CHECK(state_ledger_batch_flush(L.b, E));
	/* the database as migration 13 left it */
	q_exec(f->raw, "DROP TRIGGER folder_deleted_messages ON folder");
	q_exec(f->raw, "DROP FUNCTION imapfleet_folder_deleted()");
	q_exec(f->raw, "ALTER TABLE message ADD CONSTRAINT message_folder_id_fkey FOREIGN KEY (folder_id)"
		       " REFERENCES folder (id) ON DELETE CASCADE");
	q_exec(f->raw, "DELETE FROM schema_version WHERE version = 14");
	assert_int_equal(state_schema_migrate(f->sc, NULL), STATE_SCHEMA_VERSION);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM pg_constraint WHERE conname = 'message_folder_id_fkey'"), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message"), 1);
	add_row(L.b, L.fold.id, 1, 6);
	CHECK(state_ledger_batch_flush(L.b, E));
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM folder"), 2);
	q_exec(f->raw, "DELETE FROM run");
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message"), 0);
	ledger_job_end(&L);
}

static void append_window_is_recorded_read_back_and_closed(void **state)
{
	struct fx *f = *state;
	struct ledger_job L;
	struct state_window w;
	const uint32_t list[] = {10, 12, 15};

	ledger_jobs_start(f, 1, 5, 0, "Sent", "Sent Items", 5, &L);
	assert_int_equal(state_folder_get_window(f->sc, L.fold.id, &w, NULL), 0);
	CHECK(state_folder_window_begin(f->sc, &L.c.lease, L.fold.id, 300, 10, 15, list, 3, E));
	assert_int_equal(state_folder_get_window(f->sc, L.fold.id, &w, NULL), 1);
	assert_int_equal(w.dst_uidnext, 300);
	assert_int_equal(w.first_src_uid, 10);
	assert_int_equal(w.last_src_uid, 15);
	assert_int_equal(w.nuids, 3);
	assert_int_equal(w.uids[2], 15);
	assert_true(w.started_at_ms > 0);
	state_window_release(&w);
	assert_int_equal(state_folder_get(f->sc, L.id, "Sent", &L.fold, NULL), 1);
	assert_true(L.fold.window_open);
	CHECK(state_folder_window_end(f->sc, &L.c.lease, L.fold.id, E));
	assert_int_equal(state_folder_get_window(f->sc, L.fold.id, &w, NULL), 0);

	/* the batch can close the window in the same transaction as the rows */
	CHECK(state_folder_window_begin(f->sc, &L.c.lease, L.fold.id, 303, 16, 16, NULL, 0, E));
	assert_int_equal(state_folder_get_window(f->sc, L.fold.id, &w, NULL), 1);
	assert_null(w.uids);
	add_row(L.b, L.fold.id, 5, 16);
	state_ledger_batch_end_window(L.b, L.fold.id);
	CHECK(state_ledger_batch_flush(L.b, E));
	assert_int_equal(state_folder_get_window(f->sc, L.fold.id, &w, NULL), 0);
	ledger_job_end(&L);
}

struct listed {
	int n;
	int inbox_has_copied;
	int64_t inbox_copied;
};

static int list_cb(const char *src_name, const char *dst_name, const struct state_folder *fo, void *ctx)
{
	struct listed *l = ctx;

	l->n++;
	if (strcmp(src_name, "INBOX") == 0) {
		assert_string_equal(dst_name, "Posteingang");
		l->inbox_has_copied = fo->has_copied_rows;
		l->inbox_copied = fo->msgs_copied;
		assert_int_equal(fo->copied_rows_uidvalidity, 5);
	}
	return 0;
}

/* A folder split by UID range: each connection pair keeps its own window; one pair's end never
 * closes another's; the folder's window is open while any is, the lowest UIDNEXT is the one to
 * match from; after a crash all of them close together, and a UIDVALIDITY reset drops them. */
static void each_pair_keeps_its_own_window_of_one_folder(void **state)
{
	struct fx *f = *state;
	struct ledger_job L; /* L.b is pair 0's batch */
	struct state_folder again;
	struct state_window w;
	struct state_ledger_batch *b2, *b3;
	struct state_ledger_row row;

	ledger_jobs_start(f, 1, 5, 0, "INBOX", "INBOX", 5, &L);
	b2 = state_ledger_batch_new(f->sc, &L.c.lease, 0);
	b3 = state_ledger_batch_new(f->sc, &L.c.lease, 0);
	state_ledger_batch_set_pair(b2, 2);
	state_ledger_batch_set_pair(b3, 3);

	/* three pairs open a window each (pair 0 in the folder row) */
	state_ledger_batch_window_begin(L.b, L.fold.id, 200, 1, 10);
	CHECK(state_ledger_batch_flush(L.b, E));
	state_ledger_batch_window_begin(b2, L.fold.id, 150, 11, 20);
	CHECK(state_ledger_batch_flush(b2, E));
	state_ledger_batch_window_begin(b3, L.fold.id, 180, 21, 30);
	CHECK(state_ledger_batch_flush(b3, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder_window"), 2);
	assert_int_equal(state_folder_get_window(f->sc, L.fold.id, &w, NULL), 1);
	assert_int_equal(w.dst_uidnext, 150);
	assert_int_equal(w.first_src_uid, 11);
	state_window_release(&w);

	/* pair 2: rows and end with its next window's begin: pair 0's and 3's stay open */
	fill_row(&row, L.fold.id, 5, 11);
	CHECK(state_ledger_batch_add(b2, &row, E));
	state_ledger_batch_end_window(b2, L.fold.id);
	state_ledger_batch_window_begin(b2, L.fold.id, 190, 31, 40);
	CHECK(state_ledger_batch_flush(b2, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder_window"), 2);
	assert_int_equal(state_folder_get_window(f->sc, L.fold.id, &w, NULL), 1);
	assert_int_equal(w.dst_uidnext, 180);
	state_window_release(&w);
	/* pair 0's end leaves the others open */
	state_ledger_batch_end_window(L.b, L.fold.id);
	CHECK(state_ledger_batch_flush(L.b, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder WHERE window_dst_uidnext IS NOT NULL"), 0);
	assert_int_equal(state_folder_get(f->sc, L.id, "INBOX", &again, NULL), 1);
	assert_true(again.window_open);
	/* pair 3 ends its window: only pair 2's is left */
	state_ledger_batch_end_window(b3, L.fold.id);
	CHECK(state_ledger_batch_flush(b3, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder_window"), 1);
	assert_int_equal(state_folder_get_window(f->sc, L.fold.id, &w, NULL), 1);
	assert_int_equal(w.dst_uidnext, 190);
	state_window_release(&w);

	/* a crash: the next attempt (pair 3 here) closes every window, and opens its own at once */
	state_ledger_batch_window_begin(L.b, L.fold.id, 195, 41, 50);
	CHECK(state_ledger_batch_flush(L.b, E));
	state_ledger_batch_end_all_windows(b3, L.fold.id);
	state_ledger_batch_window_begin(b3, L.fold.id, 199, 51, 60);
	CHECK(state_ledger_batch_flush(b3, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder WHERE window_dst_uidnext IS NOT NULL"), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder_window WHERE pair = 3 AND dst_uidnext = 199"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder_window"), 1);
	state_ledger_batch_end_all_windows(L.b, L.fold.id);
	CHECK(state_ledger_batch_flush(L.b, E));
	assert_int_equal(state_folder_get_window(f->sc, L.fold.id, &w, NULL), 0);
	assert_int_equal(state_folder_get(f->sc, L.id, "INBOX", &again, NULL), 1);
	assert_false(again.window_open);
	assert_int_equal(again.msgs_copied, 1);

	/* a UIDVALIDITY reset drops the pairs' windows too */
	state_ledger_batch_window_begin(b2, L.fold.id, 300, 1, 5);
	CHECK(state_ledger_batch_flush(b2, E));
	CHECK(state_folder_reset_uidvalidity(f->sc, &L.c.lease, L.fold.id, 6, STATE_UIDV_KEEP_OLD, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder_window"), 0);
	state_ledger_batch_free(&b2);
	state_ledger_batch_free(&b3);
	ledger_job_end(&L);
}

struct many {
	int n, created, inbox_has_copied;
	int64_t inbox_id;
	uint32_t inbox_uidv;
};

static int many_cb(const char *src_name, const char *dst_name, const struct state_folder *fo, void *ctx)
{
	struct many *m = ctx;

	m->n++;
	m->created += fo->created;
	if (strcmp(src_name, "INBOX") == 0) {
		assert_string_equal(dst_name, "Posteingang");
		m->inbox_id = fo->id;
		m->inbox_uidv = fo->src_uidvalidity;
		m->inbox_has_copied = fo->has_copied_rows;
	}
	return 0;
}

/* An account's folders in one statement: new ones inserted with their UIDVALIDITY and counted on
 * the job, known ones read without a write (and the job's others along), a lost lease refused. */
static void folders_of_an_account_are_recorded_in_one_statement(void **state)
{
	struct fx *f = *state;
	struct state_claim c;
	struct state_ledger_batch *b;
	struct state_ledger_row row;
	struct fleet_err err;
	struct many m;
	const char *src[3] = {"INBOX", "Sent", "Archive/2020"};
	const char *dst[3] = {"Posteingang", NULL, "Archive.2020"};
	uint32_t uidv[3] = {5, 6, 0};
	int64_t x0;

	claimed_job(f, 5, &c);
	memset(&m, 0, sizeof(m));
	CHECK(state_folder_upsert_many(f->sc, &c.lease, 3, src, dst, uidv, many_cb, &m, E));
	assert_int_equal(m.n, 3);
	assert_int_equal(m.created, 3);
	assert_int_equal(m.inbox_uidv, 5);
	assert_false(m.inbox_has_copied);
	assert_int_equal(q_i64(f->raw, "SELECT folders FROM job"), 3);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder WHERE src_name = 'Sent' AND dst_name = 'Sent'"), 1);

	/* a copied row in INBOX; a second attempt names two folders: INBOX is not written, Archive/2020
	 * gets the UIDVALIDITY it lacked, Sent comes along unnamed */
	b = state_ledger_batch_new(f->sc, &c.lease, 0);
	fill_row(&row, m.inbox_id, 5, 1);
	CHECK(state_ledger_batch_add(b, &row, E));
	CHECK(state_ledger_batch_flush(b, E));
	state_ledger_batch_free(&b);
	x0 = q_i64(f->raw, "SELECT xmin::text::bigint FROM folder WHERE src_name = 'INBOX'");
	{
		const char *src2[2] = {"INBOX", "Archive/2020"};
		const char *dst2[2] = {"Posteingang", "Archive.2020"};
		uint32_t uidv2[2] = {5, 9};

		memset(&m, 0, sizeof(m));
		CHECK(state_folder_upsert_many(f->sc, &c.lease, 2, src2, dst2, uidv2, many_cb, &m, E));
		assert_int_equal(m.n, 3);
		assert_int_equal(m.created, 0);
		assert_true(m.inbox_has_copied);
		assert_int_equal(q_i64(f->raw, "SELECT xmin::text::bigint FROM folder WHERE src_name = 'INBOX'"), x0);
		assert_int_equal(q_i64(f->raw, "SELECT src_uidvalidity FROM folder WHERE src_name = 'Archive/2020'"), 9);
		assert_int_equal(q_i64(f->raw, "SELECT folders FROM job"), 3);

		/* a lost lease: nothing written */
		q_exec(f->raw, "UPDATE job SET lease_epoch = lease_epoch + 1");
		assert_int_equal(state_folder_upsert_many(f->sc, &c.lease, 2, src2, dst2, uidv2, many_cb, &m, &err), -1);
		assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	}
	state_claim_release(&c);
}

/* The end of a successful attempt is one statement: the job done, its attempt closed, its pass row
 * written and its two connection slots released; with the lease lost, the slots go all the same. */
static void a_done_attempt_ends_with_its_pass_row_and_slots_in_one_statement(void **state)
{
	struct fx *f = *state;
	int64_t ids[2];
	struct state_claim c;
	struct state_pass_tally t = {7, 2, 1, 0, 7000, 0};
	struct fleet_err err;
	const char *servers[2] = {"src.example.org:993", "dst.example.org:993"};
	int slot[2];
	int64_t pass;

	jobs_one_claimed(f, 2, 5, ids, &c);
	for (int k = 0; k < 2; k++)
		assert_int_equal(state_slot_acquire(f->sc, servers[k], 4, f->engine_id, c.lease.job_id, &slot[k], NULL, NULL), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM conn_slot"), 2);
	pass = q_i64(f->raw, "SELECT count(*) FROM job WHERE pass_id IS NOT NULL");
	CHECK(state_job_finish_done(f->sc, &c.lease, &t, f->engine_id, servers, slot, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM conn_slot"), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'done' AND lease_owner IS NULL"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE outcome = 'done' AND ended_at IS NOT NULL"), 1);
	if (pass) {
		assert_int_equal(q_i64(f->raw, "SELECT copied + matched + skipped FROM pass_account WHERE outcome = 'done'"), 10);
		assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE last_synced_at IS NOT NULL"), 1);
	}
	state_claim_release(&c);

	/* a lost lease: LEASE_LOST, the job untouched, the slots released */
	claim_one(f, f->engine_id, 60000, &c);
	for (int k = 0; k < 2; k++)
		assert_int_equal(state_slot_acquire(f->sc, servers[k], 4, f->engine_id, c.lease.job_id, &slot[k], NULL, NULL), 0);
	q_exec(f->raw, "UPDATE job SET lease_epoch = lease_epoch + 1 WHERE state = 'running'");
	assert_int_equal(state_job_finish_done(f->sc, &c.lease, &t, f->engine_id, servers, slot, &err), -1);
	assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM conn_slot"), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'running'"), 1);
	state_claim_release(&c);
}

/* A claimed job's two slots and its start in one statement: taken together or not at all (a server
 * without a free slot number leaves the other's free and the job waiting), never with a lost lease. */
static void slots_of_both_servers_and_the_start_go_in_one_statement(void **state)
{
	struct fx *f = *state;
	int64_t ids[2];
	struct state_claim c, c2;
	struct fleet_err err;
	const char *servers[2] = {"src.example.org:993", "dst.example.org:993"};
	const int limit[2] = {2, 1};
	int slot[2], slot2[2];

	jobs_one_claimed(f, 2, 5, ids, &c);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE lease_waiting"), 1);
	assert_int_equal(state_slots_acquire_begin(f->sc, &c.lease, servers, limit, 120000, slot, &err), 1);
	assert_int_equal(slot[0], 0);
	assert_int_equal(slot[1], 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM conn_slot WHERE job_id IS NOT NULL"), 2);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'running' AND NOT lease_waiting"
				       " AND lease_expires > now() + interval '100 seconds'"), 1);

	/* the second job: the source has a free number, the destination none: nothing held, still waiting */
	assert_true(claim_one(f, f->engine_id, 60000, &c2) > 0);
	assert_int_equal(state_slots_acquire_begin(f->sc, &c2.lease, servers, limit, 60000, slot2, &err), 0);
	assert_int_equal(slot2[0], -1);
	assert_int_equal(slot2[1], -1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM conn_slot"), 2);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE lease_waiting"), 1);

	/* the first ends (its slots go with it); with its lease lost, the second takes nothing */
	{
		struct state_pass_tally t = {0, 0, 0, 0, 0, 0};

		CHECK(state_job_finish_done(f->sc, &c.lease, &t, f->engine_id, servers, slot, E));
	}
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM conn_slot"), 0);
	q_exec(f->raw, "UPDATE job SET lease_epoch = lease_epoch + 1 WHERE state = 'running'");
	assert_int_equal(state_slots_acquire_begin(f->sc, &c2.lease, servers, limit, 60000, slot2, &err), -1);
	assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM conn_slot"), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE lease_waiting"), 1);
	state_claim_release(&c);
	state_claim_release(&c2);
}

/* The write path of an account: one statement per window (what is pending and the window's begin)
 * and one per folder's end (rows, window end and status); an unchanged folder writes nothing. */
static void one_flush_records_rows_window_end_status_and_next_window(void **state)
{
	struct fx *f = *state;
	int64_t ids[2], id;
	struct state_claim c, c2;
	struct state_folder fold, sent, again;
	struct state_window w;
	struct state_ledger_batch *b;
	struct state_folder_status st;
	struct listed l = {0};
	struct fleet_err err;

	id = jobs_one_claimed(f, 2, 5, ids, &c);
	assert_true(claim_one(f, f->engine_id, 60000, &c2) > 0);
	CHECK(state_folder_upsert(f->sc, &c.lease, "INBOX", "Posteingang", 5, &fold, E));
	assert_true(fold.created);
	assert_false(fold.has_copied_rows);
	b = state_ledger_batch_new(f->sc, &c.lease, 0);

	/* window 1 opens in the flush, nothing else pending */
	state_ledger_batch_window_begin(b, fold.id, 100, 1, 2);
	CHECK(state_ledger_batch_flush(b, E));
	assert_int_equal(state_folder_get_window(f->sc, fold.id, &w, NULL), 1);
	assert_int_equal(w.dst_uidnext, 100);
	assert_int_equal(w.first_src_uid, 1);
	assert_int_equal(w.last_src_uid, 2);
	state_window_release(&w);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder WHERE state = 'copying'"), 1);

	/* window 1's rows and end, and window 2's begin: one statement */
	add_row(b, fold.id, 5, 1);
	add_row(b, fold.id, 5, 2);
	state_ledger_batch_end_window(b, fold.id);
	state_ledger_batch_window_begin(b, fold.id, 102, 3, 3);
	CHECK(state_ledger_batch_flush(b, E));
	assert_int_equal(state_folder_get_window(f->sc, fold.id, &w, NULL), 1);
	assert_int_equal(w.dst_uidnext, 102);
	assert_int_equal(w.first_src_uid, 3);
	state_window_release(&w);
	assert_int_equal(state_folder_get(f->sc, id, "INBOX", &again, NULL), 1);
	assert_int_equal(again.msgs_copied, 2);
	assert_int_equal(again.highest_uid_copied, 2);

	/* window 2's row and end, and the folder's status: one statement */
	add_row(b, fold.id, 5, 3);
	state_ledger_batch_end_window(b, fold.id);
	memset(&st, 0, sizeof(st));
	st.state = STATE_FOLDER_DONE;
	st.dst_uidvalidity = 55;
	st.src_uidnext = 4;
	st.src_messages = 3;
	st.src_highestmodseq = 9;
	st.dst_uidnext = 103;
	state_ledger_batch_folder_status(b, fold.id, &st);
	CHECK(state_ledger_batch_flush(b, E));
	assert_int_equal(state_ledger_batch_pending(b), 0);
	assert_int_equal(state_folder_get_window(f->sc, fold.id, &w, NULL), 0);
	assert_int_equal(state_folder_get(f->sc, id, "INBOX", &again, NULL), 1);
	assert_int_equal(again.state, STATE_FOLDER_DONE);
	assert_int_equal(again.msgs_copied, 3);
	assert_int_equal(again.dst_uidvalidity, 55);
	assert_int_equal(again.src_uidnext, 4);
	assert_int_equal(again.src_messages, 3);
	assert_int_equal(again.src_highestmodseq, 9);
	assert_int_equal(again.dst_uidnext, 103);
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job WHERE id = "
				       "(SELECT job_id FROM folder WHERE dst_name = 'Posteingang')"), 3);

	/* a replay of the same flush (a lost connection) counts nothing twice */
	add_row(b, fold.id, 5, 3);
	state_ledger_batch_end_window(b, fold.id);
	state_ledger_batch_folder_status(b, fold.id, &st);
	CHECK(state_ledger_batch_flush(b, E));
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job WHERE id = "
				       "(SELECT job_id FROM folder WHERE dst_name = 'Posteingang')"), 3);
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM folder WHERE src_name = 'INBOX'"), 3);

	/* the next attempt's first open lists the others, and an unchanged folder writes nothing */
	CHECK(state_folder_upsert(f->sc, &c.lease, "Sent", "Sent", 6, &sent, E));
	{
		/* no write: the row version (xmin) of an unchanged folder stays */
		int64_t x0 = q_i64(f->raw, "SELECT xmin::text::bigint FROM folder WHERE src_name = 'INBOX'");

		CHECK(state_folder_upsert_all(f->sc, &c.lease, "Sent", "Sent", 6, &again, list_cb, &l, E));
		assert_false(again.created);
		assert_int_equal(again.id, sent.id);
		assert_false(again.has_copied_rows);
		assert_int_equal(l.n, 1);
		assert_true(l.inbox_has_copied);
		assert_int_equal(l.inbox_copied, 3);
		CHECK(state_folder_upsert(f->sc, &c.lease, "INBOX", "Posteingang", 5, &again, E));
		assert_true(again.has_copied_rows);
		assert_int_equal(again.copied_rows_uidvalidity, 5);
		assert_int_equal(again.msgs_copied, 3);
		CHECK(state_folder_upsert(f->sc, &c.lease, "INBOX", "Posteingang", 4, &again, E));
		assert_false(again.has_copied_rows); /* none under another UIDVALIDITY */
		assert_int_equal(again.src_uidvalidity, 5);
		assert_int_equal(q_i64(f->raw, "SELECT xmin::text::bigint FROM folder WHERE src_name = 'INBOX'"), x0);
	}
	/* a new destination name is written */
	CHECK(state_folder_upsert(f->sc, &c.lease, "INBOX", "INBOX", 5, &again, E));
	assert_int_equal(again.id, fold.id);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder WHERE dst_name = 'INBOX'"), 1);

	/* a window of a folder of another job is refused, and not left open */
	state_ledger_batch_window_begin(b, fold.id + 1000, 1, 1, 1);
	assert_int_equal(state_ledger_batch_flush(b, &err), -1);
	assert_string_equal(err.code, "FOLDER_NOT_IN_JOB");
	state_ledger_batch_free(&b);
	b = state_ledger_batch_new(f->sc, &c2.lease, 0);
	state_ledger_batch_window_begin(b, fold.id, 1, 1, 1);
	assert_int_equal(state_ledger_batch_flush(b, &err), -1);
	assert_string_equal(err.code, "FOLDER_NOT_IN_JOB");
	assert_int_equal(state_folder_get_window(f->sc, fold.id, &w, NULL), 0);
	state_ledger_batch_free(&b);

	/* a lost lease: nothing opened */
	q_exec(f->raw, "UPDATE job SET lease_epoch = lease_epoch + 1");
	b = state_ledger_batch_new(f->sc, &c.lease, 0);
	state_ledger_batch_window_begin(b, fold.id, 1, 1, 1);
	assert_int_equal(state_ledger_batch_flush(b, &err), -1);
	assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	assert_int_equal(state_folder_get_window(f->sc, fold.id, &w, NULL), 0);
	/* ... and the dropped window is not opened by a later flush either */
	q_exec(f->raw, "UPDATE job SET lease_epoch = lease_epoch - 1");
	add_row(b, fold.id, 5, 4);
	CHECK(state_ledger_batch_flush(b, E));
	assert_int_equal(state_folder_get_window(f->sc, fold.id, &w, NULL), 0);
	state_ledger_batch_free(&b);
	state_claim_release(&c);
	state_claim_release(&c2);
}

/* The first windows of several folders begin in one flush (scheduler/ledger_state.c windows_ahead):
 * each is open and durable with its own UIDNEXT; later their rows and ends commit together, and a
 * window begun but never used closes with its folder's status. A helper pair's begins likewise. */
static void several_folders_windows_begin_in_one_flush(void **state)
{
	struct fx *f = *state;
	int64_t ids[1];
	struct state_claim c;
	struct state_folder a, s, t;
	struct state_window w;
	struct state_ledger_batch *b;
	struct state_folder_status st;
	struct fleet_err err;

	add_jobs(f, 1, 5, ids);
	assert_true(claim_one(f, f->engine_id, 60000, &c) > 0);
	CHECK(state_folder_upsert(f->sc, &c.lease, "INBOX", "INBOX", 5, &a, E));
	CHECK(state_folder_upsert(f->sc, &c.lease, "Sent", "Sent", 6, &s, E));
	CHECK(state_folder_upsert(f->sc, &c.lease, "Trash", "Trash", 7, &t, E));
	b = state_ledger_batch_new(f->sc, &c.lease, 0);

	/* INBOX's window, and Sent's and Trash's ahead: one statement, all three open */
	state_ledger_batch_window_begin(b, a.id, 100, 1, 2);
	state_ledger_batch_window_begin(b, s.id, 40, 1, 9);
	state_ledger_batch_window_begin(b, t.id, 7, 1, 3);
	state_ledger_batch_window_begin(b, s.id, 41, 1, 9); /* a second begin replaces the first */
	assert_int_equal(state_ledger_batch_begins(b), 3);
	CHECK(state_ledger_batch_flush(b, E));
	assert_int_equal(state_ledger_batch_begins(b), 0);
	assert_int_equal(state_folder_get_window(f->sc, a.id, &w, NULL), 1);
	assert_int_equal(w.dst_uidnext, 100);
	state_window_release(&w);
	assert_int_equal(state_folder_get_window(f->sc, s.id, &w, NULL), 1);
	assert_int_equal(w.dst_uidnext, 41);
	assert_int_equal(w.last_src_uid, 9);
	state_window_release(&w);
	assert_int_equal(state_folder_get_window(f->sc, t.id, &w, NULL), 1);
	assert_int_equal(w.dst_uidnext, 7);
	state_window_release(&w);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder WHERE state = 'copying'"), 3);

	/* INBOX's and Sent's rows and ends, Trash unused (nothing to copy): closed with its status;
	 * one statement */
	add_row(b, a.id, 5, 1);
	add_row(b, a.id, 5, 2);
	state_ledger_batch_end_window(b, a.id);
	add_row(b, s.id, 6, 4);
	state_ledger_batch_end_window(b, s.id);
	state_ledger_batch_end_window(b, t.id);
	memset(&st, 0, sizeof(st));
	st.state = STATE_FOLDER_DONE;
	st.dst_uidvalidity = 70;
	st.src_uidnext = 4;
	state_ledger_batch_folder_status(b, t.id, &st);
	CHECK(state_ledger_batch_flush(b, E));
	assert_int_equal(state_folder_get_window(f->sc, a.id, &w, NULL), 0);
	assert_int_equal(state_folder_get_window(f->sc, s.id, &w, NULL), 0);
	assert_int_equal(state_folder_get_window(f->sc, t.id, &w, NULL), 0);
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job WHERE id = "
				       "(SELECT job_id FROM folder WHERE src_name = 'Sent')"), 3);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder WHERE state = 'done'"), 1);

	/* a begin naming a folder of another job fails the flush, and the caller appends nothing (the
	 * job's own folder's window may be open: an open window without APPENDs is matched, finding
	 * nothing, by the next attempt) */
	state_ledger_batch_window_begin(b, a.id, 200, 3, 3);
	state_ledger_batch_window_begin(b, s.id + 1000, 1, 1, 1);
	assert_int_equal(state_ledger_batch_flush(b, &err), -1);
	assert_string_equal(err.code, "FOLDER_NOT_IN_JOB");
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder WHERE window_dst_uidnext = 1"), 0);
	assert_int_equal(state_ledger_batch_begins(b), 0);
	state_ledger_batch_end_window(b, a.id);
	CHECK(state_ledger_batch_flush(b, E));

	/* windows that begin with nothing else held (the short statement): none with the lease lost */
	q_exec(f->raw, "UPDATE job SET lease_epoch = lease_epoch + 1");
	state_ledger_batch_window_begin(b, t.id, 9, 4, 5);
	assert_int_equal(state_ledger_batch_flush(b, &err), -1);
	assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	assert_int_equal(state_folder_get_window(f->sc, t.id, &w, NULL), 0);
	q_exec(f->raw, "UPDATE job SET lease_epoch = lease_epoch - 1");
	state_ledger_batch_window_begin(b, t.id, 9, 4, 5);
	CHECK(state_ledger_batch_flush(b, E));
	assert_int_equal(state_folder_get_window(f->sc, t.id, &w, NULL), 1);
	state_window_release(&w);
	state_ledger_batch_end_window(b, t.id);
	CHECK(state_ledger_batch_flush(b, E));
	state_ledger_batch_free(&b);

	/* a helper pair's windows of two folders, in folder_window, in one statement */
	b = state_ledger_batch_new(f->sc, &c.lease, 0);
	state_ledger_batch_set_pair(b, 2);
	state_ledger_batch_window_begin(b, a.id, 300, 5, 6);
	state_ledger_batch_window_begin(b, s.id, 50, 10, 12);
	CHECK(state_ledger_batch_flush(b, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder_window WHERE pair = 2"), 2);
	assert_int_equal(state_folder_get_window(f->sc, s.id, &w, NULL), 1);
	assert_int_equal(w.dst_uidnext, 50);
	state_window_release(&w);
	state_ledger_batch_end_window(b, a.id);
	state_ledger_batch_end_window(b, s.id);
	CHECK(state_ledger_batch_flush(b, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder_window"), 0);
	state_ledger_batch_free(&b);
	state_claim_release(&c);
}

static void uidvalidity_change_resets_the_folder_without_counting_old_rows(void **state)
{
	struct fx *f = *state;
	struct ledger_job L;
	uint32_t *uids;
	size_t n;

	ledger_jobs_start(f, 1, 5, 0, "INBOX", NULL, 100, &L);
	for (uint32_t uid = 1; uid <= 50; uid++) {
		add_row(L.b, L.fold.id, 100, uid);
	}
	CHECK(state_ledger_batch_flush(L.b, E));
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job"), 50);
	/* upsert keeps the stored UIDVALIDITY: the engine sees the difference */
	CHECK(state_folder_upsert(f->sc, &L.c.lease, "INBOX", NULL, 200, &L.fold, E));
	assert_int_equal(L.fold.src_uidvalidity, 100);
	CHECK(state_folder_reset_uidvalidity(f->sc, &L.c.lease, L.fold.id, 200, STATE_UIDV_KEEP_OLD, E));
	assert_int_equal(state_folder_get(f->sc, L.id, "INBOX", &L.fold, NULL), 1);
	assert_int_equal(L.fold.src_uidvalidity, 200);
	assert_int_equal(L.fold.msgs_copied, 0);
	assert_int_equal(L.fold.highest_uid_copied, 0);
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job"), 0);
	CHECK(state_ledger_uids(f->sc, L.fold.id, 200, STATE_MSG_MASK_COPIED, &uids, &n, E));
	assert_int_equal(n, 0);
	CHECK(state_ledger_uids(f->sc, L.fold.id, 100, STATE_MSG_MASK_COPIED, &uids, &n, E));
	assert_int_equal(n, 50); /* old fingerprints kept for matching */
	xfree(&uids);
	add_row(L.b, L.fold.id, 200, 1);
	CHECK(state_ledger_batch_flush(L.b, E));
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job"), 1);
	CHECK(state_folder_reset_uidvalidity(f->sc, &L.c.lease, L.fold.id, 200, STATE_UIDV_DELETE_OLD, E));
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message WHERE src_uidvalidity = 100"), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM folder"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job"), 1);
	ledger_job_end(&L);
}

/* ---- retry, requeue, cancel --------------------------------------------------------------------- */

/* Ends the attempt C holds with the error JERR (BACKOFF_MS, PROGRESSED as state_job_fail takes them)
 * and releases C; 1 when the job was queued again, 0 when it failed. */
static int fail_attempt(struct fx *f, struct state_claim *c, const struct fleet_err *jerr, unsigned backoff_ms,
			int progressed)
{
	int requeued = -1;

	CHECK(state_job_fail(f->sc, &c->lease, jerr, backoff_ms, progressed, &requeued, E));
	state_claim_release(c);
	return requeued;
}

static void transient_failure_requeues_with_backoff_until_attempts_run_out(void **state)
{
	struct fx *f = *state;
	int64_t id;
	struct state_claim c;
	struct fleet_err jerr;

	id = claimed_job(f, 2, &c);
	fleet_err_set(&jerr, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, "ECONNRESET", "connection reset");
	assert_int_equal(fail_attempt(f, &c, &jerr, 60000, 0), 1);
	assert_int_equal(q_i64(f->raw,
			       "SELECT count(*) FROM job WHERE state = 'queued'"
			       " AND scheduled_at > now() + interval '50 seconds' AND lease_owner IS NULL"
			       " AND last_error_code = 'ECONNRESET'"),
			 1);
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), 0); /* not due yet */
	q_exec(f->raw, "UPDATE job SET scheduled_at = now()");
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), id);
	assert_int_equal(c.attempt, 2);
	fleet_err_set(&jerr, FLEET_ERR_THROTTLED, FLEET_SCOPE_ACCOUNT, "THROTTLED", "slow down");
	assert_int_equal(fail_attempt(f, &c, &jerr, 1000, 0), 0);
	assert_int_equal(
	    q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'failed' AND finished_at IS NOT NULL"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE outcome = 'retry'"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE outcome = 'failed'"
				       " AND error_class = 'throttled'"),
			 1);
}

/* An attempt that copied messages before it broke does not use up the retry budget; one that did
 * not does; a permanent error fails the job whatever it copied. */
static void attempts_that_made_progress_do_not_count(void **state)
{
	struct fx *f = *state;
	int64_t id;
	struct state_claim c;
	struct fleet_err jerr;

	add_jobs(f, 1, 2, &id);
	fleet_err_set(&jerr, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, "ECONNRESET", "connection reset");
	for (int i = 0; i < 5; i++) {
		assert_int_equal(claim_one(f, f->engine_id, 60000, &c), id);
		assert_int_equal(c.attempt, 1);
		assert_int_equal(fail_attempt(f, &c, &jerr, 0, 1), 1);
	}
	assert_int_equal(q_i64(f->raw, "SELECT attempts FROM job"), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE outcome = 'retry'"), 5);
	/* two attempts without progress: max_attempts 2 is reached */
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), id);
	assert_int_equal(fail_attempt(f, &c, &jerr, 0, 0), 1);
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), id);
	assert_int_equal(c.attempt, 2);
	assert_int_equal(fail_attempt(f, &c, &jerr, 0, 0), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'failed'"), 1);
	/* permanent: failed at once, progress or not */
	assert_int_equal(state_job_requeue(f->sc, id, NULL), 1);
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), id);
	fleet_err_set(&jerr, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "OVERQUOTA", "mailbox full");
	assert_int_equal(fail_attempt(f, &c, &jerr, 0, 1), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'failed' AND attempts = 1"), 1);
}

static void auth_and_permanent_failures_fail_at_once(void **state)
{
	struct fx *f = *state;
	int64_t ids[2];
	struct state_claim c;
	struct fleet_err jerr;

	jobs_one_claimed(f, 2, 5, ids, &c);
	fleet_err_set(&jerr, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, "AUTHENTICATIONFAILED", "login refused");
	assert_int_equal(fail_attempt(f, &c, &jerr, 1000, 0), 0);
	claim_one(f, f->engine_id, 60000, &c);
	fleet_err_set(&jerr, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, NULL, "broken invariant");
	assert_int_equal(fail_attempt(f, &c, &jerr, 1000, 0), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'failed' AND attempts = 1"),
			 2);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE last_error_class = 'auth'"), 1);
}

static void requeue_resets_attempts_and_keeps_progress(void **state)
{
	struct fx *f = *state;
	struct ledger_job L;
	struct state_claim c;
	int64_t found;
	struct fleet_err jerr;
	long count = -1;

	ledger_jobs_start(f, 3, 1, 0, "INBOX", NULL, 1, &L);
	add_row(L.b, L.fold.id, 1, 7);
	CHECK(state_ledger_batch_flush(L.b, E));
	fleet_err_set(&jerr, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, NULL, "timeout");
	CHECK(state_job_fail(f->sc, &L.c.lease, &jerr, 0, 0, NULL, E)); /* max_attempts 1: failed */
	assert_int_equal(state_job_requeue(f->sc, L.id, NULL), 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'queued' AND attempts = 0"
				       " AND last_error_text IS NULL"),
			 3);
	assert_int_equal(q_i64(f->raw, "SELECT sum(msgs_copied) FROM job"), 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message"), 1);
	ledger_job_end(&L);
	/* running jobs are not requeued; failed ones of the run are, by mask */
	claim_one(f, f->engine_id, 60000, &c);
	assert_int_equal(state_job_requeue(f->sc, c.lease.job_id, NULL), 0);
	CHECK(state_job_fail(f->sc, &c.lease, &jerr, 0, 0, NULL, E));
	state_claim_release(&c);
	CHECK(state_run_requeue(f->sc, f->run_id, STATE_JOB_MASK(STATE_JOB_FAILED), &count, E));
	assert_int_equal(count, 1);
	/* `retry --account` finds a job by id or user */
	assert_int_equal(state_job_find(f->sc, f->run_id, "user2@example.org", &found, NULL), 1);
	assert_int_equal(found, L.ids[2]);
	assert_int_equal(state_job_find(f->sc, 0, "nobody@example.org", &found, NULL), 0);
}

static void cancelling_a_running_job_fences_its_worker(void **state)
{
	struct fx *f = *state;
	int64_t id;
	struct state_claim c;
	struct fleet_err err;

	id = claimed_job(f, 5, &c);
	assert_int_equal(state_job_cancel(f->sc, id, NULL), 1);
	assert_int_equal(state_job_renew(f->sc, &c.lease, 1000, &err), -1);
	assert_string_equal(err.code, STATE_ERR_LEASE_LOST);
	assert_non_null(strstr(err.message, "cancelled"));
	assert_int_equal(state_job_cancel(f->sc, id, NULL), 0);
	state_claim_release(&c);
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), 0);
}

static void release_on_interrupt_does_not_count_an_attempt(void **state)
{
	struct fx *f = *state;
	int64_t id;
	struct state_claim c;

	id = claimed_job(f, 5, &c);
	CHECK(state_job_release(f->sc, &c.lease, E));
	state_claim_release(&c);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'queued' AND attempts = 0"),
			 1);
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), id);
	assert_int_equal(c.attempt, 1);
	state_claim_release(&c);
}

/* ---- daily budgets and parked accounts ------------------------------------------------------------- */

static void daily_usage_adds_up_across_attempts_and_starts_afresh_after_a_day(void **state)
{
	struct fx *f = *state;
	struct state_claim c;
	struct state_day day;
	const uint64_t add[2][2] = {{300, 0}, {0, 200}};

	claimed_job(f, 5, &c);
	CHECK(state_job_day_load(f->sc, &c.lease, 86400000, &day, E));
	assert_true(day.used[0][0] == 0 && day.used[1][1] == 0);
	CHECK(state_job_day_add(f->sc, &c.lease, add, 5000, E));
	CHECK(state_job_day_add(f->sc, &c.lease, add, 0, E));
	CHECK(state_job_day_load(f->sc, &c.lease, 86400000, &day, E));
	assert_true(day.used[0][0] == 600 && day.used[0][1] == 0 && day.used[1][0] == 0 && day.used[1][1] == 400);
	/* the day started when the first attempt did (5 s before its usage was recorded) */
	assert_true(q_i64(f->raw, "SELECT (extract(epoch FROM now() - day_started_at))::bigint FROM job") >= 5);
	/* a day of 1 ms is over: the next load starts afresh */
	CHECK(state_job_day_load(f->sc, &c.lease, 1, &day, E));
	assert_true(day.used[0][0] == 0 && day.used[1][1] == 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE day_started_at IS NULL AND day_down1 = 0"), 1);
	state_claim_release(&c);
}

static void a_daily_park_waits_for_the_end_of_the_day_and_is_not_counted(void **state)
{
	struct fx *f = *state;
	int64_t id, wait = 0;
	struct state_claim c;
	struct state_park_req req;
	struct fleet_err why;
	const uint64_t add[2][2] = {{400, 0}, {0, 0}};
	int failed = -1;

	id = claimed_job(f, 5, &c);
	CHECK(state_job_day_add(f->sc, &c.lease, add, 0, E));
	fleet_err_set(&why, FLEET_ERR_THROTTLED, FLEET_SCOPE_ACCOUNT, "DAILY_BUDGET", "daily budget reached");
	memset(&req, 0, sizeof(req));
	req.kind = STATE_PARK_DAILY;
	req.why = &why;
	req.day_ms = 3600000;
	req.pending = 1000;
	req.per_day = 400;
	CHECK(state_job_park(f->sc, &c.lease, &req, &failed, &wait, E));
	state_claim_release(&c);
	assert_int_equal(failed, 0);
	assert_true(wait > 3590000 && wait <= 3600000);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'queued' AND attempts = 0"
				       " AND park_reason = 'daily' AND parked_until = scheduled_at"
				       " AND last_error_code = 'DAILY_BUDGET'"),
			 1);
	/* 1000 bytes at 400 a day: this day's resume plus two more days */
	assert_int_equal(q_i64(f->raw, "SELECT (extract(epoch FROM eta_at - parked_until))::bigint FROM job"), 7200);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt WHERE outcome = 'parked'"), 1);
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), 0); /* not due before its day is over */
	q_exec(f->raw, "UPDATE job SET scheduled_at = now()");
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), id);
	assert_int_equal(c.attempt, 1);
	state_claim_release(&c);
}

static void throttle_parks_back_off_and_fail_after_the_limit_without_progress(void **state)
{
	struct fx *f = *state;
	int64_t id, wait = 0, prev = 0;
	struct state_claim c;
	struct state_park_req req;
	struct fleet_err why;
	int failed = -1;

	add_jobs(f, 1, 5, &id);
	fleet_err_set(&why, FLEET_ERR_THROTTLED, FLEET_SCOPE_ACCOUNT, "THROTTLED", "server answered BAD User is "
		      "authenticated but not connected.");
	memset(&req, 0, sizeof(req));
	req.kind = STATE_PARK_THROTTLED;
	req.why = &why;
	req.base_ms = 1000;
	req.cap_ms = 600000;
	req.max_throttle_parks = 3;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(claim_one(f, f->engine_id, 60000, &c), id);
		CHECK(state_job_park(f->sc, &c.lease, &req, &failed, &wait, E));
		state_claim_release(&c);
		assert_int_equal(failed, 0);
		/* 1 s, 2 s, 4 s, each jittered to 50-100 % */
		assert_true(wait >= (500LL << i) - 50 && wait <= (1000LL << i));
		assert_true(wait > prev / 2);
		prev = wait;
		q_exec(f->raw, "UPDATE job SET scheduled_at = now()");
	}
	assert_int_equal(q_i64(f->raw, "SELECT attempts FROM job"), 0);
	assert_int_equal(claim_one(f, f->engine_id, 60000, &c), id);
	CHECK(state_job_park(f->sc, &c.lease, &req, &failed, &wait, E));
	state_claim_release(&c);
	assert_int_equal(failed, 1); /* the fourth park in a row without progress */
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'failed' AND parked_until IS NULL"
				       " AND last_error_class = 'throttled'"),
			 1);
}

/* ---- slots ----------------------------------------------------------------------------------------- */

#define SLOT_LIMIT 3

struct slotter {
	const char *ci;
	int64_t engine;
	int *held, *max_held;
	pthread_mutex_t *mu;
	int acquired, failed;
};

static void *slot_thread(void *p)
{
	struct slotter *s = p;
	struct state_conn *sc = thread_conn(s->ci, &s->failed);
	struct fleet_err err;

	if (!sc)
		return NULL;
	for (int i = 0; i < 15; i++) {
		int slot, rc = state_slot_acquire(sc, "imap.example.org:993", SLOT_LIMIT, s->engine, 0, &slot, NULL,
						  &err);

		if (rc < 0) {
			s->failed = 1;
			break;
		}
		if (rc == 1) {
			fleet_sleep_ms(2);
			continue;
		}
		pthread_mutex_lock(s->mu);
		if (++*s->held > *s->max_held)
			*s->max_held = *s->held;
		pthread_mutex_unlock(s->mu);
		s->acquired++;
		fleet_sleep_ms(5);
		pthread_mutex_lock(s->mu);
		--*s->held;
		pthread_mutex_unlock(s->mu);
		if (state_slot_release(sc, "imap.example.org:993", slot, s->engine, &err) < 0) {
			s->failed = 1;
			break;
		}
	}
	state_conn_close(&sc);
	return NULL;
}

static void connection_slots_never_exceed_the_limit_across_connections(void **state)
{
	struct fx *f = *state;
	struct slotter s[10];
	pthread_t t[10];
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	int held = 0, max_held = 0, total = 0, slot, count;
	int64_t dead;

	for (int i = 0; i < 10; i++) {
		s[i] = (struct slotter){f->ci, f->engine_id, &held, &max_held, &mu, 0, 0};
		pthread_create(&t[i], NULL, slot_thread, &s[i]);
	}
	for (int i = 0; i < 10; i++) {
		pthread_join(t[i], NULL);
		assert_false(s[i].failed);
		total += s[i].acquired;
	}
	printf("# slots: %d acquisitions, at most %d held at once\n", total, max_held);
	assert_true(max_held <= SLOT_LIMIT);
	assert_true(total > 0);
	CHECK(state_slot_count(f->sc, "imap.example.org:993", &count, E));
	assert_int_equal(count, 0);

	/* a dead engine's slots come back once its registration expires */
	CHECK(state_engine_register(f->sc, "dead-host", 1, "test", 200, &dead, E));
	for (int i = 0; i < SLOT_LIMIT; i++)
		assert_int_equal(state_slot_acquire(f->sc, "x:993", SLOT_LIMIT, dead, 0, &slot, NULL, NULL), 0);
	assert_int_equal(state_slot_acquire(f->sc, "x:993", SLOT_LIMIT, f->engine_id, 0, &slot, NULL, NULL), 1);
	fleet_sleep_ms(400);
	assert_int_equal(state_slot_acquire(f->sc, "x:993", SLOT_LIMIT, f->engine_id, 0, &slot, NULL, NULL), 0);
	/* heartbeat keeps a live engine's slots */
	CHECK(state_engine_heartbeat(f->sc, f->engine_id, 60000, E));
	CHECK(state_engine_deregister(f->sc, f->engine_id, E));
	CHECK(state_slot_count(f->sc, "x:993", &count, E));
	assert_int_equal(count, 0);
}

/* ---- credentials ------------------------------------------------------------------------------------ */

static void credentials_are_stored_encrypted_and_round_trip(void **state)
{
	struct fx *f = *state;
	unsigned char key[STATE_SECRET_KEY_LEN], other[STATE_SECRET_KEY_LEN];
	const char *pw = "Tr0ub4dor&3;\"quoted\"";
	int64_t ids[2];
	char *out = NULL;
	struct fleet_err err;
	PGresult *res;

	memset(key, 0x5a, sizeof(key));
	memset(other, 0x5b, sizeof(other));
	add_jobs(f, 2, 5, ids);
	CHECK(state_credential_put(f->sc, ids[0], 1, pw, key, E));
	CHECK(state_credential_put(f->sc, ids[0], 2, "", key, E));
	assert_int_equal(state_credential_get(f->sc, ids[0], 1, key, &out, &err), 1);
	assert_string_equal(out, pw);
	state_secret_free(&out);
	assert_int_equal(state_credential_get(f->sc, ids[0], 2, key, &out, &err), 1);
	assert_string_equal(out, "");
	state_secret_free(&out);
	assert_int_equal(state_credential_get(f->sc, ids[1], 1, key, &out, &err), 0);
	/* a dump of the table shows no clear text, in any rendering */
	res = PQexecParams(
	    f->raw,
	    "SELECT c::text, encode(ciphertext, 'escape'), encode(ciphertext, 'hex') FROM credential c", 0,
	    NULL, NULL, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	for (int i = 0; i < PQntuples(res); i++)
		for (int k = 0; k < 3; k++)
			assert_null(strstr(PQgetvalue(res, i, k), "Tr0ub4dor"));
	PQclear(res);
	/* wrong key, altered bytes */
	assert_int_equal(state_credential_get(f->sc, ids[0], 1, other, &out, &err), -1);
	assert_string_equal(err.code, "KEY_MISMATCH");
	q_exec(f->raw,
	       "UPDATE credential SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1)"
	       " WHERE side = 1");
	assert_int_equal(state_credential_get(f->sc, ids[0], 1, key, &out, &err), -1);
	assert_string_equal(err.code, "CREDENTIAL_DECRYPT");
	assert_null(strstr(err.message, pw));
	/* moved to another job's row: refused too */
	q_exec(f->raw, "UPDATE credential SET job_id = job_id + 1 WHERE side = 2");
	assert_int_equal(state_credential_get(f->sc, ids[1], 2, key, &out, &err), -1);
	assert_null(out);
}

/* ---- import and reports ----------------------------------------------------------------------------- */

static void bulk_import_of_10000_rows_is_fast_and_reimport_keeps_progress(void **state)
{
	struct fx *f = *state;
	enum { N = 10000 };
	static const struct state_job_spec row = {"src", 993, NULL, "dst", 143, NULL, "--folder INBOX", 0};
	struct unit_jobs j;
	struct state_job_spec *specs;
	int64_t *ids, *ids2 = xcalloc(N + 1, sizeof(*ids2));
	int *created = xcalloc(N + 1, sizeof(*created));
	const char **pws = xcalloc(N, sizeof(*pws));
	int *sides = xcalloc(N, sizeof(*sides));
	unsigned char key[STATE_SECRET_KEY_LEN];
	double t0, dt;
	int64_t single;
	int single_created = -1;

	memset(key, 3, sizeof(key));
	unit_jobs_make(&j, N, &row, "u", 5, "");
	specs = j.specs;
	ids = j.ids;
	for (int i = 0; i < N; i++) {
		pws[i] = "pw";
		sides[i] = 1;
	}
	t0 = now_s();
	CHECK(state_job_upsert_many(f->sc, f->run_id, specs, N, ids, created, E));
	dt = now_s() - t0;
	t0 = now_s();
	CHECK(state_credential_put_many(f->sc, ids, sides, pws, N, key, E));
	printf("# import: %d jobs in %.3f s, their credentials in %.3f s\n", N, dt, now_s() - t0);
	for (int i = 0; i < N; i++)
		assert_true(created[i]);
	q_exec(f->raw, "UPDATE job SET msgs_copied = 42, state = 'done' WHERE user1 = 'u00007'");
	specs[7].options = "--folder Sent";
	CHECK(state_job_upsert_many(f->sc, f->run_id, specs, N, ids2, created, E));
	assert_memory_equal(ids, ids2, N * sizeof(*ids));
	for (int i = 0; i < N; i++)
		assert_false(created[i]);
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job WHERE user1 = 'u00007' AND state = 'done'"
				       " AND options = '--folder Sent'"),
			 42);
	CHECK(state_job_upsert(f->sc, f->run_id, &specs[7], &single, &single_created, E));
	assert_int_equal(single, ids[7]);
	assert_int_equal(single_created, 0);
	/* the same pair twice in one import is refused as a whole */
	specs[1] = specs[0];
	{
		struct fleet_err err;

		assert_int_equal(state_job_upsert_many(f->sc, f->run_id, specs, N, ids2, NULL, &err), -1);
		assert_string_equal(err.code, "DUPLICATE_ROW");
	}
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job"), N);
	unit_jobs_release(&j);
	xfree(&ids2);
	xfree(&created);
	xfree(&pws);
	xfree(&sides);
}

/* The first import of a run is a plain INSERT: its ids come back in the order of the rows (and
 * ascending, so the claim takes the rows in file order); rows of the run that exist already make it
 * an upsert that keeps them; a pair twice is refused as a whole. */
static void first_import_returns_ids_in_row_order_and_falls_back_to_the_upsert(void **state)
{
	struct fx *f = *state;
	enum { N = 3000 };
	static const struct state_job_spec row = {"src", 993, NULL, "dst", 143, NULL, NULL, 0};
	struct unit_jobs j, k;
	int64_t *ids2 = xcalloc(N + 1, sizeof(*ids2));
	struct fleet_err err;

	unit_jobs_make(&j, N, &row, "n", 5, "");
	CHECK(state_job_insert_new(f->sc, f->run_id, j.specs, N, j.ids, E));
	for (int i = 0; i < N; i++) {
		char sql[128];

		snprintf(sql, sizeof(sql), "SELECT id FROM job WHERE user1 = '%s' AND pass_id IS NOT NULL",
			 j.specs[i].user1);
		if (i % 97 == 0 || i == N - 1)
			assert_int_equal(q_i64(f->raw, sql), j.ids[i]);
		if (i)
			assert_true(j.ids[i] > j.ids[i - 1]);
	}
	/* the same rows again, and more: the existing rows keep their ids and progress */
	q_exec(f->raw, "UPDATE job SET msgs_copied = 7, state = 'done' WHERE user1 = 'n00005'");
	unit_jobs_make(&k, N + 2, &row, "n", 5, "");
	CHECK(state_job_insert_new(f->sc, f->run_id, k.specs, N + 2, k.ids, E));
	assert_memory_equal(j.ids, k.ids, N * sizeof(*j.ids));
	assert_true(k.ids[N] > 0 && k.ids[N + 1] > k.ids[N]);
	assert_int_equal(q_i64(f->raw, "SELECT msgs_copied FROM job WHERE user1 = 'n00005' AND state = 'done'"), 7);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job"), N + 2);
	/* a pair twice in a run's first rows */
	q_exec(f->raw, "DELETE FROM job");
	j.specs[1] = j.specs[0];
	assert_int_equal(state_job_insert_new(f->sc, f->run_id, j.specs, N, ids2, &err), -1);
	assert_string_equal(err.code, "DUPLICATE_ROW");
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job"), 0);
	unit_jobs_release(&j);
	unit_jobs_release(&k);
	xfree(&ids2);
}

/* The scheduler's "work for all my threads?": queued and running jobs, counted up to the cap. */
static void active_jobs_are_counted_up_to_the_cap(void **state)
{
	struct fx *f = *state;
	static const struct state_job_spec row = {"src", 993, NULL, "dst", 143, NULL, NULL, 0};
	struct unit_jobs j;
	long n = -1;

	unit_jobs_make(&j, 20, &row, "c", 3, "");
	CHECK(state_job_insert_new(f->sc, f->run_id, j.specs, 20, j.ids, E));
	q_exec(f->raw, "UPDATE job SET state = 'done' WHERE user1 < 'c010'");
	q_exec(f->raw, "UPDATE job SET state = 'running' WHERE user1 = 'c015'");
	CHECK(state_run_active_upto(f->sc, f->run_id, 16, &n, E));
	assert_int_equal(n, 10);
	CHECK(state_run_active_upto(f->sc, f->run_id, 4, &n, E));
	assert_int_equal(n, 4);
	CHECK(state_run_active_upto(f->sc, f->run_id + 1000, 4, &n, E));
	assert_int_equal(n, 0);
	unit_jobs_release(&j);
}

struct rep_ctx {
	int jobs, failed_msgs;
	char first_error[64];
};

static int rep_job_cb(const struct state_job_report *r, void *p)
{
	struct rep_ctx *c = p;

	c->jobs++;
	return 0;
}

static int rep_msg_cb(const struct state_failed_msg *r, void *p)
{
	struct rep_ctx *c = p;

	if (c->failed_msgs++ == 0)
		snprintf(c->first_error, sizeof(c->first_error), "%s", r->error);
	return 0;
}

static void reports_count_jobs_failures_and_throughput(void **state)
{
	struct fx *f = *state;
	struct ledger_job L;
	struct state_run_counts rc;
	struct rep_ctx ctx = {0};
	struct state_throughput_point *pts;
	size_t n;
	int64_t active;

	ledger_jobs_start(f, 3, 5, 10, "INBOX", NULL, 1, &L);
	for (uint32_t uid = 995; uid <= 1005; uid++) { /* 1000 fails */
		add_row(L.b, L.fold.id, 1, uid);
	}
	CHECK(state_ledger_batch_flush(L.b, E));
	CHECK(state_job_finish(f->sc, &L.c.lease, E));
	ledger_job_end(&L);
	CHECK(state_report_run_counts(f->sc, f->run_id, &rc, E));
	assert_int_equal(rc.jobs[STATE_JOB_DONE], 1);
	assert_int_equal(rc.jobs[STATE_JOB_QUEUED], 2);
	assert_int_equal(rc.msgs_copied, 10);
	assert_int_equal(rc.msgs_failed, 1);
	CHECK(state_report_jobs(f->sc, f->run_id, rep_job_cb, &ctx, E));
	assert_int_equal(ctx.jobs, 3);
	CHECK(state_report_failed_messages(f->sc, f->run_id, STATE_MSG_MASK_FAILED, 0, rep_msg_cb, &ctx, E));
	assert_int_equal(ctx.failed_msgs, 1);
	assert_string_equal(ctx.first_error, "rejected: too big");
	CHECK(state_report_throughput(f->sc, f->run_id, &pts, &n, E));
	assert_true(n >= 1);
	assert_int_equal(pts[0].msgs, 10);
	xfree(&pts);
	assert_int_equal(state_run_find_active(f->sc, &active, NULL), 1);
	assert_int_equal(active, f->run_id);
}

struct page_ctx {
	int64_t ids[16];
	int n;
};

static int page_cb(const struct state_job_report *r, void *p)
{
	struct page_ctx *c = p;

	if (c->n < 16)
		c->ids[c->n++] = r->job_id;
	return 0;
}

/* status --state failed --server H --limit N: a page of the matching jobs in id order, and how many
 * match in all. */
static void job_pages_filter_by_state_and_server_in_id_order(void **state)
{
	struct fx *f = *state;
	int64_t ids[6];
	struct state_job_filter filt;
	struct page_ctx pc;
	long matched = 0;
	char sql[256];

	add_jobs(f, 6, 5, ids); /* src.example.org:993 -> dst.example.org:993 */
	snprintf(sql, sizeof(sql), "UPDATE job SET state = 'failed' WHERE id IN (%lld, %lld, %lld)", (long long)ids[1],
		 (long long)ids[3], (long long)ids[4]);
	q_exec(f->raw, sql);
	snprintf(sql, sizeof(sql), "UPDATE job SET host2 = 'other.example.org' WHERE id = %lld", (long long)ids[3]);
	q_exec(f->raw, sql);

	memset(&filt, 0, sizeof(filt));
	filt.state_mask = STATE_JOB_MASK(STATE_JOB_FAILED);
	filt.limit = 2;
	memset(&pc, 0, sizeof(pc));
	CHECK(state_report_jobs_page(f->sc, f->run_id, &filt, page_cb, &pc, &matched, E));
	assert_int_equal(matched, 3);
	assert_int_equal(pc.n, 2);
	assert_int_equal(pc.ids[0], ids[1]);
	assert_int_equal(pc.ids[1], ids[3]);
	/* the next page starts after the last id shown */
	filt.after_id = ids[3];
	memset(&pc, 0, sizeof(pc));
	CHECK(state_report_jobs_page(f->sc, f->run_id, &filt, page_cb, &pc, &matched, E));
	assert_int_equal(pc.n, 1);
	assert_int_equal(pc.ids[0], ids[4]);
	assert_int_equal(matched, 3);
	/* or by offset (status --page 2 --limit 2 skips two), the count not asked for */
	filt.after_id = 0;
	filt.offset = 1;
	memset(&pc, 0, sizeof(pc));
	CHECK(state_report_jobs_page(f->sc, f->run_id, &filt, page_cb, &pc, NULL, E));
	assert_int_equal(pc.n, 2);
	assert_int_equal(pc.ids[0], ids[3]);
	assert_int_equal(pc.ids[1], ids[4]);
	/* by server, host or host:port, either side */
	memset(&filt, 0, sizeof(filt));
	filt.server = "other.example.org";
	memset(&pc, 0, sizeof(pc));
	CHECK(state_report_jobs_page(f->sc, f->run_id, &filt, page_cb, &pc, &matched, E));
	assert_int_equal(matched, 1);
	assert_int_equal(pc.ids[0], ids[3]);
	filt.server = "dst.example.org:993";
	filt.state_mask = STATE_JOB_MASK(STATE_JOB_FAILED);
	memset(&pc, 0, sizeof(pc));
	CHECK(state_report_jobs_page(f->sc, f->run_id, &filt, page_cb, &pc, &matched, E));
	assert_int_equal(matched, 2);
	/* a page past the end: no row, the count all the same */
	filt.after_id = ids[5];
	memset(&pc, 0, sizeof(pc));
	CHECK(state_report_jobs_page(f->sc, f->run_id, &filt, page_cb, &pc, &matched, E));
	assert_int_equal(pc.n, 0);
	assert_int_equal(matched, 2);
}

/* ---- connection loss ---------------------------------------------------------------------------------- */

static void idempotent_calls_survive_a_terminated_backend(void **state)
{
	struct fx *f = *state;
	struct state_claim c;

	claimed_job(f, 5, &c);
	/* client backends only: an autovacuum worker on this database (after the ledger tests' 100,000
	 * rows) is a superuser's process, which this role may not terminate */
	q_exec(f->raw, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
		       " AND pid <> pg_backend_pid() AND backend_type = 'client backend'");
	fleet_sleep_ms(100);
	CHECK(state_job_renew(f->sc, &c.lease, 60000, E)); /* reconnects and sends it again */
	q_exec(f->raw, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
		       " AND pid <> pg_backend_pid() AND backend_type = 'client backend'");
	fleet_sleep_ms(100);
	{
		struct fleet_err err;
		int rc = state_job_finish(f->sc, &c.lease, &err); /* not idempotent: transient error */

		if (rc < 0) {
			assert_int_equal(err.cls, FLEET_ERR_TRANSIENT);
			CHECK(state_job_finish(f->sc, &c.lease, E));
		}
	}
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'done'"), 1);
	state_claim_release(&c);
}

static void sql_errors_carry_their_sqlstate_and_class(void **state)
{
	struct fx *f = *state;
	struct state_job_spec spec = {"h", 1, "u", "h2", 1, "u", NULL, 0};
	int64_t id;
	struct fleet_err err;

	/* a port out of the column's range: a bug, SQLSTATE 22003 (numeric_value_out_of_range) */
	spec.port1 = 4000000000u;
	assert_int_equal(state_job_upsert(f->sc, f->run_id, &spec, &id, NULL, &err), -1);
	assert_int_equal(err.cls, FLEET_ERR_BUG);
	assert_string_equal(err.code, "22003");
	assert_int_equal(err.scope, FLEET_SCOPE_RUN);
}

/* job.run_id and credential.job_id have no foreign keys since migration 12 (their per-row checks
 * were 25 % and 40 % of a 50,000-row import): the inserts check once per statement, and triggers
 * keep the cascade. */
static void jobs_need_their_run_and_credentials_their_job_without_foreign_keys(void **state)
{
	struct fx *f = *state;
	struct state_job_spec spec = {"h", 1, "u", "h2", 1, "u", NULL, 0};
	unsigned char key[STATE_SECRET_KEY_LEN];
	int64_t ids[2], id;
	int created[2];
	struct fleet_err err;

	memset(key, 7, sizeof(key));
	/* a run that does not exist gets no job, one at a time or in bulk */
	assert_int_equal(state_job_upsert(f->sc, f->run_id + 1000, &spec, &id, NULL, &err), -1);
	assert_int_equal(err.cls, FLEET_ERR_BUG);
	assert_string_equal(err.code, STATE_ERR_NO_RUN);
	assert_int_equal(state_job_upsert_many(f->sc, f->run_id + 1000, &spec, 1, ids, NULL, &err), -1);
	assert_int_equal(err.cls, FLEET_ERR_BUG);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job"), 0);
	/* a credential of a job that does not exist is not stored */
	CHECK(state_job_upsert_many(f->sc, f->run_id, &spec, 1, ids, created, E));
	assert_int_equal(created[0], 1);
	{
		const int64_t jobs[2] = {ids[0], ids[0] + 1000};
		const int sides[2] = {1, 1};
		const char *const pts[2] = {"secret-a", "secret-b"};

		CHECK(state_credential_put_many(f->sc, jobs, sides, pts, 2, key, E));
	}
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM credential"), 1);
	/* the same row again: the same id, not created */
	CHECK(state_job_upsert_many(f->sc, f->run_id, &spec, 1, ids + 1, created, E));
	assert_int_equal(ids[1], ids[0]);
	assert_int_equal(created[0], 0);
	/* deleting the run deletes its jobs and their credentials (and what referred to the jobs) */
	q_exec(f->raw, "DELETE FROM run");
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job"), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM credential"), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM pass"), 0);
}

/* Worker hosts log in with the stored credentials: while the run that imported the jobs has not
 * stored them (its mark is set before the import and cleared after), a worker host's claim takes
 * none of its jobs; the run's own workers (they have the rows) claim as ever; a mark left by a run
 * that died expires. */
static void worker_hosts_claim_nothing_while_the_credentials_are_pending(void **state)
{
	struct fx *f = *state;
	int64_t ids[3];
	struct state_claim c;
	struct fleet_err err;

	add_jobs(f, 3, 5, ids);
	assert_int_equal(state_run_credentials_pending(f->sc, f->run_id, &err), 0);
	CHECK(state_run_hold_credentials(f->sc, f->run_id, 60000, E));
	assert_int_equal(state_run_credentials_pending(f->sc, f->run_id, &err), 1);
	assert_int_equal(state_job_claim_ex(f->sc, f->run_id, f->engine_id, "h", 60000, STATE_CLAIM_STORED_CREDENTIALS,
					    &c, &err),
			 0);
	assert_int_equal(
	    state_job_claim_ex(f->sc, 0, f->engine_id, "h", 60000, STATE_CLAIM_STORED_CREDENTIALS, &c, &err), 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job_attempt"), 0);
	/* the run's own worker */
	assert_int_equal(state_job_claim(f->sc, f->run_id, f->engine_id, "h", 60000, &c, &err), 1);
	state_claim_release(&c);
	/* stored: worker hosts claim */
	CHECK(state_run_hold_credentials(f->sc, f->run_id, 0, E));
	assert_int_equal(state_run_credentials_pending(f->sc, f->run_id, &err), 0);
	assert_int_equal(state_job_claim_ex(f->sc, f->run_id, f->engine_id, "h", 60000, STATE_CLAIM_STORED_CREDENTIALS,
					    &c, &err),
			 1);
	state_claim_release(&c);
	/* a mark whose run died before clearing it expires */
	CHECK(state_run_hold_credentials(f->sc, f->run_id, 60000, E));
	q_exec(f->raw, "UPDATE run SET credentials_pending_until = now() - interval '1 second'");
	assert_int_equal(state_run_credentials_pending(f->sc, f->run_id, &err), 0);
	assert_int_equal(
	    state_job_claim_ex(f->sc, 0, f->engine_id, "h", 60000, STATE_CLAIM_STORED_CREDENTIALS, &c, &err), 1);
	state_claim_release(&c);
}

/* A server's text is bytes: a Latin-1 refusal must still be recorded (issue 13, 2a/2b). Before the
 * state boundary made every text parameter valid UTF-8, PostgreSQL refused it (22021), the failure
 * was never recorded and the job stayed running, to be claimed (and its LOGIN refused) again forever;
 * one such APPEND refusal in the ledger failed the whole account. */
static void texts_that_are_not_utf8_are_recorded_all_the_same(void **state)
{
	struct fx *f = *state;
	struct state_claim c;
	struct state_folder fold;
	struct state_ledger_batch *b;
	struct state_ledger_row row;
	struct fleet_err jerr;
	int requeued = -1;

	claimed_job(f, 1, &c);
	/* raw bytes, as a layer that forgot to escape them would pass them */
	CHECK(state_folder_upsert(f->sc, &c.lease, "Entw\xFCrfe", "Entw\xFCrfe", 7, &fold, E));
	b = state_ledger_batch_new(f->sc, &c.lease, 0);
	fill_row(&row, fold.id, 7, 1);
	row.state = STATE_MSG_FAILED;
	row.error = "NO [TOOBIG] Nachricht zu gro\xDF";
	row.flags = "\\Seen $Geb\xFChr";
	CHECK(state_ledger_batch_add(b, &row, E));
	CHECK(state_ledger_batch_flush(b, E));
	state_ledger_batch_free(&b);
	memset(&jerr, 0, sizeof(jerr));
	jerr.cls = FLEET_ERR_AUTH;
	jerr.scope = FLEET_SCOPE_ACCOUNT;
	snprintf(jerr.code, sizeof(jerr.code), "AUTHENTICATIONFAILED");
	snprintf(jerr.message, sizeof(jerr.message), "src: login refused: Passwort ung\xFCltig");
	CHECK(state_job_fail(f->sc, &c.lease, &jerr, 0, 0, &requeued, E));
	assert_int_equal(requeued, 0);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM job WHERE state = 'failed' AND last_error_class = 'auth'"
				       " AND last_error_text = 'src: login refused: Passwort ung\xEF\xBF\xBDltig'"),
			 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM message WHERE state = 'failed'"
				       " AND error = 'NO [TOOBIG] Nachricht zu gro\xEF\xBF\xBD'"),
			 1);
	assert_int_equal(q_i64(f->raw, "SELECT count(*) FROM folder WHERE src_name = 'Entw\xEF\xBF\xBDrfe'"), 1);
	state_claim_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(concurrent_migrations_apply_each_version_exactly_once),
	    cmocka_unit_test(a_version_not_recorded_below_the_highest_is_applied),
	    cmocka_unit_test(the_store_hands_an_idle_connection_on),
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
	    T(every_job_is_claimed_exactly_once_by_threads_and_another_process),
	    T(claims_follow_due_time_and_next_due_reports_the_wait),
	    T(a_down_servers_jobs_are_parked_and_resumed_in_batches),
	    T(expired_lease_is_taken_back_and_the_late_writer_gets_lease_lost),
	    T(a_waiting_claim_is_taken_back_without_counting_an_attempt),
	    T(ledger_batch_writes_100k_rows_and_resume_returns_the_copied_uids),
	    T(rows_for_a_folder_of_another_job_are_refused),
	    T(ledger_rows_go_with_their_folders_without_a_foreign_key),
	    T(migration_14_keeps_the_ledger_of_an_older_database),
	    T(append_window_is_recorded_read_back_and_closed),
	    T(one_flush_records_rows_window_end_status_and_next_window),
	    T(each_pair_keeps_its_own_window_of_one_folder),
	    T(several_folders_windows_begin_in_one_flush),
	    T(folders_of_an_account_are_recorded_in_one_statement),
	    T(a_done_attempt_ends_with_its_pass_row_and_slots_in_one_statement),
	    T(slots_of_both_servers_and_the_start_go_in_one_statement),
	    T(uidvalidity_change_resets_the_folder_without_counting_old_rows),
	    T(transient_failure_requeues_with_backoff_until_attempts_run_out),
	    T(attempts_that_made_progress_do_not_count),
	    T(auth_and_permanent_failures_fail_at_once),
	    T(requeue_resets_attempts_and_keeps_progress),
	    T(cancelling_a_running_job_fences_its_worker),
	    T(release_on_interrupt_does_not_count_an_attempt),
	    T(daily_usage_adds_up_across_attempts_and_starts_afresh_after_a_day),
	    T(a_daily_park_waits_for_the_end_of_the_day_and_is_not_counted),
	    T(throttle_parks_back_off_and_fail_after_the_limit_without_progress),
	    T(connection_slots_never_exceed_the_limit_across_connections),
	    T(credentials_are_stored_encrypted_and_round_trip),
	    T(bulk_import_of_10000_rows_is_fast_and_reimport_keeps_progress),
	    T(first_import_returns_ids_in_row_order_and_falls_back_to_the_upsert),
	    T(active_jobs_are_counted_up_to_the_cap),
	    T(reports_count_jobs_failures_and_throughput),
	    T(job_pages_filter_by_state_and_server_in_id_order),
	    T(idempotent_calls_survive_a_terminated_backend),
	    T(sql_errors_carry_their_sqlstate_and_class),
	    T(jobs_need_their_run_and_credentials_their_job_without_foreign_keys),
	    T(worker_hosts_claim_nothing_while_the_credentials_are_pending),
	    T(texts_that_are_not_utf8_are_recorded_all_the_same),
#undef T
	};

	return labpg_run(&admin_ci, "state", tests, NULL, NULL);
}

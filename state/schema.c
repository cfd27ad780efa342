/* state/schema.c: versioned schema migrations, applied at connect under an advisory lock.
 *
 * Each migration is a list of single statements (PQexecParams runs one statement at a time) and is
 * applied in a transaction of its own with its schema_version row, after pg_advisory_xact_lock: two
 * engines starting at once serialise, the second finds the version already there and does nothing.
 * Every version that schema_version does not record is applied, not only those above the highest
 * recorded (migrations written in parallel land in any order), so a migration must not depend on
 * one with a higher number. Never edit a released migration: add the next one.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "state/state_private.h"

/* Advisory lock key: "imapflee" in ASCII, any constant that other applications are unlikely to use. */
#define STATE_MIGRATION_LOCK "7596277054358563173"

static const char *const migration_1[] = {
    "CREATE TABLE run ("
    " id bigserial PRIMARY KEY,"
    " name text NOT NULL UNIQUE,"
    " options jsonb,"
    " state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'done', 'cancelled')),"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamptz NOT NULL DEFAULT now())",

    "CREATE TABLE engine ("
    " id bigserial PRIMARY KEY,"
    " host text NOT NULL,"
    " pid bigint NOT NULL,"
    " version text,"
    " started_at timestamptz NOT NULL DEFAULT now(),"
    " heartbeat_at timestamptz NOT NULL DEFAULT now(),"
    " expires_at timestamptz NOT NULL,"
    " stopped_at timestamptz)",

    "CREATE TABLE job ("
    " id bigserial PRIMARY KEY,"
    " run_id bigint NOT NULL REFERENCES run (id) ON DELETE CASCADE,"
    " host1 text NOT NULL, port1 integer NOT NULL, user1 text NOT NULL,"
    " host2 text NOT NULL, port2 integer NOT NULL, user2 text NOT NULL,"
    " options text,"
    " state text NOT NULL DEFAULT 'queued'"
    "  CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),"
    " attempts integer NOT NULL DEFAULT 0,"
    " max_attempts integer NOT NULL DEFAULT 5,"
    " scheduled_at timestamptz NOT NULL DEFAULT now(),"
    " lease_owner bigint,"
    " lease_expires timestamptz,"
    " lease_epoch bigint NOT NULL DEFAULT 0,"
    " last_error_class text, last_error_code text, last_error_text text,"
    " folders bigint NOT NULL DEFAULT 0,"
    " msgs_copied bigint NOT NULL DEFAULT 0,"
    " bytes_copied bigint NOT NULL DEFAULT 0,"
    " msgs_skipped bigint NOT NULL DEFAULT 0,"
    " msgs_failed bigint NOT NULL DEFAULT 0,"
    " started_at timestamptz, finished_at timestamptz,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamptz NOT NULL DEFAULT now(),"
    " UNIQUE (run_id, host1, port1, user1, host2, port2, user2))",
    /* The claim query: queued jobs of a run in scheduled order, and expired leases. */
    "CREATE INDEX job_claim_idx ON job (run_id, state, scheduled_at)",
    "CREATE INDEX job_queued_idx ON job (scheduled_at) WHERE state = 'queued'",
    "CREATE INDEX job_lease_idx ON job (lease_expires) WHERE state = 'running'",

    "CREATE TABLE job_attempt ("
    " id bigserial PRIMARY KEY,"
    " job_id bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,"
    " attempt integer NOT NULL,"
    " engine_id bigint,"
    " host text,"
    " lease_epoch bigint NOT NULL,"
    " started_at timestamptz NOT NULL DEFAULT now(),"
    " ended_at timestamptz,"
    " outcome text,"
    " error_class text, error_code text, error_text text)",
    "CREATE INDEX job_attempt_job_idx ON job_attempt (job_id, attempt)",

    "CREATE TABLE folder ("
    " id bigserial PRIMARY KEY,"
    " job_id bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,"
    " src_name text NOT NULL,"
    " dst_name text NOT NULL,"
    " state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'copying', 'done')),"
    " src_uidvalidity bigint NOT NULL DEFAULT 0,"
    " dst_uidvalidity bigint NOT NULL DEFAULT 0,"
    " src_uidnext bigint NOT NULL DEFAULT 0,"
    " src_messages bigint NOT NULL DEFAULT 0,"
    " src_highestmodseq bigint NOT NULL DEFAULT 0,"
    " dst_uidnext bigint NOT NULL DEFAULT 0,"
    " highest_uid_copied bigint NOT NULL DEFAULT 0,"
    " msgs_copied bigint NOT NULL DEFAULT 0,"
    " bytes_copied bigint NOT NULL DEFAULT 0,"
    " msgs_skipped bigint NOT NULL DEFAULT 0,"
    " msgs_failed bigint NOT NULL DEFAULT 0,"
    " window_dst_uidnext bigint,"
    " window_first_uid bigint,"
    " window_last_uid bigint,"
    " window_uids bigint[],"
    " window_started_at timestamptz,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamptz NOT NULL DEFAULT now(),"
    " UNIQUE (job_id, src_name))",

    /* The ledger: tens of millions of rows. The primary key serves every resume lookup. */
    "CREATE TABLE message ("
    " folder_id bigint NOT NULL REFERENCES folder (id) ON DELETE CASCADE,"
    " src_uidvalidity bigint NOT NULL,"
    " src_uid bigint NOT NULL,"
    " size bigint NOT NULL DEFAULT 0,"
    " internaldate text,"
    " sha256 bytea,"
    " msgid_hash bytea,"
    " dst_uidvalidity bigint,"
    " dst_uid bigint,"
    " flags text,"
    " state text NOT NULL CHECK (state IN ('copied', 'failed', 'skipped')),"
    " error text,"
    " updated_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (folder_id, src_uidvalidity, src_uid))",
    /* Reports list failures; they are few, so a partial index stays small. */
    "CREATE INDEX message_problem_idx ON message (folder_id) WHERE state <> 'copied'",

    "CREATE TABLE credential ("
    " job_id bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,"
    " side smallint NOT NULL CHECK (side IN (1, 2)),"
    " key_id text NOT NULL,"
    " nonce bytea NOT NULL,"
    " ciphertext bytea NOT NULL,"
    " tag bytea NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (job_id, side))",

    /* Cross-host connection budgets: a row per held slot, slot_no < the limit. */
    "CREATE TABLE conn_slot ("
    " server text NOT NULL,"
    " slot_no integer NOT NULL,"
    " engine_id bigint NOT NULL,"
    " job_id bigint,"
    " acquired_at timestamptz NOT NULL DEFAULT now(),"
    " expires_at timestamptz NOT NULL,"
    " PRIMARY KEY (server, slot_no))",
    "CREATE INDEX conn_slot_engine_idx ON conn_slot (engine_id)",
};

/* Claims and "when is the next job due" read partial indexes that hold only what is claimable:
 * queued jobs by run and due time, running jobs by run and lease expiry. Their cost does not grow
 * with the jobs that are done or failed, nor with other runs (docs/internals-state.md has the
 * plans at 1,000 and 50,000 jobs). The indexes of migration 1 they replace had no run_id. */
static const char *const migration_2[] = {
    "CREATE INDEX job_due_idx ON job (run_id, scheduled_at, id) WHERE state = 'queued'",
    "CREATE INDEX job_lease_run_idx ON job (run_id, lease_expires) WHERE state = 'running'",
    /* A claim, a finish or a failure closes the job's open attempt: found here, not by a scan of
     * the attempt history (tens of thousands of rows when a server refused for hours). */
    "CREATE INDEX job_attempt_open_idx ON job_attempt (job_id) WHERE ended_at IS NULL",
    "DROP INDEX job_queued_idx",
    "DROP INDEX job_lease_idx",
};

/* Truthful outcomes (issue 12): an account whose folders were not all migrated ends "partial", a
 * folder that failed says why. */
static const char *const migration_3[] = {
    "ALTER TABLE job DROP CONSTRAINT IF EXISTS job_state_check",
    "ALTER TABLE job ADD CONSTRAINT job_state_check"
    " CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'partial'))",
    "ALTER TABLE folder DROP CONSTRAINT IF EXISTS folder_state_check",
    "ALTER TABLE folder ADD CONSTRAINT folder_state_check"
    " CHECK (state IN ('pending', 'copying', 'done', 'failed'))",
    "ALTER TABLE folder ADD COLUMN IF NOT EXISTS last_error text",
};

/* `imapfleet verify`: the latest verdict of each account, with its counts and the folders at fault. */
static const char *const migration_4[] = {
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS verify_verdict text"
    " CHECK (verify_verdict IN ('PASS', 'FAIL', 'ERROR'))",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS verified_at timestamptz",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS verify_on_source bigint",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS verify_on_destination bigint",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS verify_missing bigint",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS verify_extra bigint",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS verify_altered bigint",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS verify_flags bigint",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS verify_dates bigint",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS verify_detail text",
};

/* OAuth tokens shared by every worker host (issue 16): one row per application (Microsoft 365) or
 * user (Google), the token sealed like the credentials, and a refusal of the credentials. Rows are
 * found by an HMAC of the cache key under the key file's key, so the database holds no name of a
 * credential file and a host with another key never sees them. */
static const char *const migration_5[] = {
    "CREATE TABLE IF NOT EXISTS oauth_token ("
    " key_hash text PRIMARY KEY,"
    " name text NOT NULL,"
    " key_id text,"
    " nonce bytea,"
    " ciphertext bytea,"
    " tag bytea,"
    " expires_at timestamptz,"
    " fetched_at timestamptz,"
    " fetches bigint NOT NULL DEFAULT 0,"
    " refused_at timestamptz,"
    " refused_code text,"
    " refused_message text,"
    " refused_detail text,"
    " updated_at timestamptz NOT NULL DEFAULT now())",
};

/* Daily budgets and parked accounts (issue 17): what the account's current day used per side and
 * direction (from its first byte), and an account waiting for its next day or for a provider's
 * throttle: when it resumes (it is an ordinary queued job due then, claimed by any host), why, the
 * throttle parks in a row, and when it should be done (an ETA over days). */
static const char *const migration_6[] = {
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS day_started_at timestamptz",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS day_down1 bigint NOT NULL DEFAULT 0",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS day_up1 bigint NOT NULL DEFAULT 0",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS day_down2 bigint NOT NULL DEFAULT 0",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS day_up2 bigint NOT NULL DEFAULT 0",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS parked_until timestamptz",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS park_reason text",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS throttle_parks integer NOT NULL DEFAULT 0",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS eta_at timestamptz",
};

/* Worker hosts log in with per-row token sources too (issue 16): what a stored credential is. */
static const char *const migration_7[] = {
    "ALTER TABLE credential ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'password'",
};

/* Passes that leave accounts out (issue 12): an account whose login was refused keeps a keyed hash
 * (HMAC-SHA256 under the credentials key, never the password) of the credential that was refused,
 * and which side; later passes leave it out until that hash changes or `retry` names it. */
static const char *const migration_8[] = {
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS auth_block_side smallint CHECK (auth_block_side IN (1, 2))",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS auth_block_hmac bytea",
};

/* A claimed job waiting for connection slots (issue 19): until it starts, its lease is short and a
 * takeover does not count an attempt. Existing rows are not waiting. */
static const char *const migration_9[] = {
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS lease_waiting boolean NOT NULL DEFAULT false",
};

/* Passes (issue 12): each `run` over a finished run is a pass, recorded with its start, end and kind;
 * per account and pass what it copied, found already there, skipped and failed; the pass an account
 * is in, and when it last finished a pass (last synced). */
static const char *const migration_10[] = {
    "CREATE TABLE IF NOT EXISTS pass ("
    " id bigserial PRIMARY KEY,"
    " run_id bigint NOT NULL REFERENCES run (id) ON DELETE CASCADE,"
    " number integer NOT NULL,"
    " kind text NOT NULL CHECK (kind IN ('first', 'delta')),"
    " started_at timestamptz NOT NULL DEFAULT now(),"
    " ended_at timestamptz,"
    " UNIQUE (run_id, number))",
    "CREATE TABLE IF NOT EXISTS pass_account ("
    " pass_id bigint NOT NULL REFERENCES pass (id) ON DELETE CASCADE,"
    " job_id bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,"
    " outcome text,"
    " copied bigint NOT NULL DEFAULT 0,"
    " matched bigint NOT NULL DEFAULT 0,"
    " skipped bigint NOT NULL DEFAULT 0,"
    " failed bigint NOT NULL DEFAULT 0,"
    " bytes_copied bigint NOT NULL DEFAULT 0,"
    " started_at timestamptz NOT NULL DEFAULT now(),"
    " ended_at timestamptz,"
    " PRIMARY KEY (pass_id, job_id))",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS pass_id bigint",
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS last_synced_at timestamptz",
};

/* Identity not certain (issue 18): messages copied although the destination may already hold them
 * (more look-alikes there than on the source, or no Message-ID and a body longer than the identity
 * prefix: engine/identity.h), per account over all passes and per account and pass. */
static const char *const migration_11[] = {
    "ALTER TABLE job ADD COLUMN IF NOT EXISTS msgs_uncertain bigint NOT NULL DEFAULT 0",
    "ALTER TABLE pass_account ADD COLUMN IF NOT EXISTS uncertain bigint NOT NULL DEFAULT 0",
};

/* Organisation-scale import (issue 19): the foreign keys credential.job_id -> job and job.run_id ->
 * run checked (and locked) the referenced row once per inserted row: 40 % of the INSERT of 100,000
 * credentials, 25 % of that of 50,000 jobs. They are replaced by what each INSERT does once per
 * statement (state/job.c, state/secret.c) and by triggers that keep ON DELETE CASCADE: deleting a
 * run deletes its jobs, deleting a job deletes its credentials. And the run's credentials for worker
 * hosts: until credentials_pending_until, a run is importing and has not stored them yet, so worker
 * hosts do not claim its jobs (state_job_claim_ex). */
static const char *const migration_12[] = {
    "ALTER TABLE credential DROP CONSTRAINT IF EXISTS credential_job_id_fkey",
    "ALTER TABLE job DROP CONSTRAINT IF EXISTS job_run_id_fkey",
    "CREATE OR REPLACE FUNCTION imapfleet_job_deleted() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN DELETE FROM credential c USING gone g WHERE c.job_id = g.id; RETURN NULL; END $f$",
    "DROP TRIGGER IF EXISTS job_deleted_credentials ON job",
    "CREATE TRIGGER job_deleted_credentials AFTER DELETE ON job REFERENCING OLD TABLE AS gone"
    " FOR EACH STATEMENT EXECUTE FUNCTION imapfleet_job_deleted()",
    "CREATE OR REPLACE FUNCTION imapfleet_run_deleted() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN DELETE FROM job j USING gone g WHERE j.run_id = g.id; RETURN NULL; END $f$",
    "DROP TRIGGER IF EXISTS run_deleted_jobs ON run",
    "CREATE TRIGGER run_deleted_jobs AFTER DELETE ON run REFERENCING OLD TABLE AS gone"
    " FOR EACH STATEMENT EXECUTE FUNCTION imapfleet_run_deleted()",
    "ALTER TABLE run ADD COLUMN IF NOT EXISTS credentials_pending_until timestamptz",
};

/* Windows of the connection pairs that split one folder (issue 15): the lane that copies a folder
 * whole keeps its window in the folder row (window_* columns); every other pair copying windows of
 * the same folder at once records its own here, one row per (folder, pair) while the window is open.
 * A folder's window is open when either holds one; after a crash every open window of the folder is
 * matched from the lowest recorded destination UIDNEXT, and all of them close together. */
static const char *const migration_13[] = {
    "CREATE TABLE IF NOT EXISTS folder_window ("
    " folder_id bigint NOT NULL REFERENCES folder (id) ON DELETE CASCADE,"
    " pair integer NOT NULL CHECK (pair > 0),"
    " dst_uidnext bigint NOT NULL,"
    " first_uid bigint,"
    " last_uid bigint,"
    " started_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (folder_id, pair))",
};

/* The ledger's rows without a per-row foreign-key check (issue 15): message.folder_id -> folder checked
 * and locked the folder row once per inserted row, an SPI query each, a tenth of the ledger flush. The
 * flush writes rows only for folders of the job whose lease it holds, under that job's row lock
 * (state/ledger.c), and a folder is deleted only with its job (which takes the same lock), so no row
 * can name a folder that is gone. A statement trigger keeps ON DELETE CASCADE: deleting folders
 * (with their job or run) deletes their messages. */
static const char *const migration_14[] = {
    "ALTER TABLE message DROP CONSTRAINT IF EXISTS message_folder_id_fkey",
    "CREATE OR REPLACE FUNCTION imapfleet_folder_deleted() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN DELETE FROM message m USING gone g WHERE m.folder_id = g.id; RETURN NULL; END $f$",
    "DROP TRIGGER IF EXISTS folder_deleted_messages ON folder",
    "CREATE TRIGGER folder_deleted_messages AFTER DELETE ON folder REFERENCING OLD TABLE AS gone"
    " FOR EACH STATEMENT EXECUTE FUNCTION imapfleet_folder_deleted()",
};

struct migration {
	int version;
	const char *description;
	const char *const *stmts;
	size_t nstmts;
};

/* One migration: its statements' count from the array itself. */
#define MIGRATION(version, description, stmts) {version, description, stmts, sizeof(stmts) / sizeof(stmts[0])}

static const struct migration migrations[] = {
    MIGRATION(1, "runs, jobs, attempts, folders, ledger, credentials, engines, connection slots", migration_1),
    MIGRATION(2, "partial indexes for claims and the next due job, by run", migration_2),
    MIGRATION(3, "partial accounts, failed folders", migration_3),
    MIGRATION(4, "verify verdicts per account", migration_4),
    MIGRATION(5, "OAuth tokens shared by worker hosts", migration_5),
    MIGRATION(6, "daily budgets and parked accounts", migration_6),
    MIGRATION(7, "kinds of stored credentials (password, passcmd, token, tokenfile, tokencmd)", migration_7),
    MIGRATION(8, "refused credentials held back from later passes", migration_8),
    MIGRATION(9, "claims waiting for connection slots", migration_9),
    MIGRATION(10, "passes, and each account's counts per pass", migration_10),
    MIGRATION(11, "messages copied although identity was not certain", migration_11),
    MIGRATION(12, "import without per-row foreign-key checks; credentials pending for worker hosts", migration_12),
    MIGRATION(13, "append windows per connection pair (a folder split by UID range)", migration_13),
    MIGRATION(14, "ledger rows without a per-row foreign-key check", migration_14),
};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

int state_schema_version(struct state_conn *sc, int *version, struct fleet_err *err)
{
	PGresult *res =
	    state_exec(sc, "read the schema version",
		       "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN -1 ELSE 0 END", 0, NULL,
		       NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	int64_t exists;

	if (!res)
		return -1;
	exists = state_get_i64(res, 0, 0);
	PQclear(res);
	*version = 0;
	if (exists < 0)
		return 0;
	res =
	    state_exec(sc, "read the schema version", "SELECT coalesce(max(version), 0) FROM schema_version",
		       0, NULL, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	if (!res)
		return -1;
	*version = (int)state_get_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

/* One transaction under the migration lock: creates schema_version when missing and reads which
 * versions it records (known[m] = 1 for migrations[m]) and the highest. */
static int schema_recorded(struct state_conn *sc, int known[], int *highest, struct fleet_err *err)
{
	PGresult *res;

	if (state_begin(sc, err) < 0)
		return -1;
	if (state_exec_cmd(sc, "lock the schema for migration",
			   "SELECT pg_advisory_xact_lock(" STATE_MIGRATION_LOCK ")", 0, NULL, 0, err) < 0 ||
	    state_exec_cmd(sc, "create the schema_version table",
			   "CREATE TABLE IF NOT EXISTS schema_version ("
			   " version integer PRIMARY KEY,"
			   " description text NOT NULL,"
			   " applied_at timestamptz NOT NULL DEFAULT now())",
			   0, NULL, 0, err) < 0)
		goto fail;
	res = state_exec(sc, "read the schema versions", "SELECT version FROM schema_version ORDER BY version", 0,
			 NULL, NULL, NULL, 0, err);
	if (!res)
		goto fail;
	*highest = 0;
	for (size_t m = 0; m < NMIGRATIONS; m++)
		known[m] = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		int v = (int)state_get_i64(res, i, 0);

		if (v > *highest)
			*highest = v;
		for (size_t m = 0; m < NMIGRATIONS; m++)
			if (migrations[m].version == v)
				known[m] = 1;
	}
	PQclear(res);
	if (state_commit(sc, err) < 0)
		return -1;
	return 0;
fail:
	state_rollback(sc);
	return -1;
}

/* Applies migrations[m] in a transaction of its own, under the migration lock, unless another
 * process recorded it meanwhile. Returns 1 when applied, 0 when it was there, -1 on error. */
static int schema_apply_one(struct state_conn *sc, const struct migration *mg, struct fleet_err *err)
{
	char vbuf[STATE_NUM_MAX];
	const char *p[2] = {state_fmt_i64(vbuf, mg->version), mg->description};
	PGresult *res;
	int there;

	if (state_begin(sc, err) < 0)
		return -1;
	if (state_exec_cmd(sc, "lock the schema for migration",
			   "SELECT pg_advisory_xact_lock(" STATE_MIGRATION_LOCK ")", 0, NULL, 0, err) < 0)
		goto fail;
	res = state_exec(sc, "read the schema version", "SELECT count(*) FROM schema_version WHERE version = $1", 1,
			 p, NULL, NULL, 0, err);
	if (!res)
		goto fail;
	there = state_get_i64(res, 0, 0) > 0;
	PQclear(res);
	if (there) {
		state_rollback(sc);
		return 0;
	}
	for (size_t i = 0; i < mg->nstmts; i++)
		if (state_exec_cmd(sc, "apply a schema migration", mg->stmts[i], 0, NULL, 0, err) < 0)
			goto fail;
	if (state_exec_cmd(sc, "record the schema version",
			   "INSERT INTO schema_version (version, description) VALUES ($1, $2)", 2, p, 0, err) < 0)
		goto fail;
	if (state_commit(sc, err) < 0)
		return -1;
	log_info("state: applied schema migration %d (%s)", mg->version, mg->description);
	return 1;
fail:
	state_rollback(sc);
	return -1;
}

/* Every migration that schema_version does not record is applied, in order of version, each in its
 * own transaction: a database that recorded a later version first (branches that each added one)
 * still gets the earlier one. Returns the highest version recorded. */
int state_schema_apply(struct state_conn *sc, struct fleet_err *err)
{
	int known[NMIGRATIONS], highest;

	if (schema_recorded(sc, known, &highest, err) < 0)
		return -1;
	if (highest > STATE_SCHEMA_VERSION) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_SCHEMA_TOO_NEW,
			      "cannot use the state database: its schema version %d is newer than this "
			      "imapfleet's (%d)",
			      highest, STATE_SCHEMA_VERSION);
		fleet_err_detail(err, "upgrade imapfleet on this host");
		return -1;
	}
	for (size_t m = 0; m < NMIGRATIONS; m++) {
		if (known[m])
			continue;
		if (schema_apply_one(sc, &migrations[m], err) < 0)
			return -1;
		if (migrations[m].version > highest)
			highest = migrations[m].version;
	}
	return highest;
}

int state_schema_migrate(struct state_conn *sc, struct fleet_err *err)
{
	int rc = state_schema_apply(sc, err);

	/* A lost connection before anything committed: one more try on a fresh connection. */
	if (rc < 0 && strcmp(err ? err->code : "", STATE_ERR_CONNECTION) == 0)
		rc = state_schema_apply(sc, err);
	return rc;
}

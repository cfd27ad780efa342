/* state/state.h: the PostgreSQL state store: schema, runs and jobs, leases, the message ledger,
 * per-server connection slots, engines, and report queries.
 *
 * Every step of a migration is recorded here so that an interruption resumes where it stopped, on
 * this host or another (design section 5). This module knows nothing of IMAP: it stores folder
 * names, UIDs and flags as text and integers.
 *
 * Threads: a `struct state_conn` is one libpq connection and is NOT thread-safe. Each thread that
 * talks to the database opens its own (state_conn_open). A `struct state_ledger_batch` belongs to
 * one connection and one thread.
 *
 * Errors: every function returns < 0 and fills `err` on failure. Database errors are classed by
 * SQLSTATE (state_sqlstate_class): lost connection, shutdown, serialization and deadlock failures
 * and resource exhaustion are FLEET_ERR_TRANSIENT; constraint violations and everything else are
 * FLEET_ERR_BUG with the SQLSTATE as err->code. Their scope is FLEET_SCOPE_RUN (the state store
 * serves the whole run). Error texts never carry parameter values (secrets never reach SQL anyway:
 * credentials are encrypted before they are stored).
 *
 * Reconnection: when the connection is found broken, the next call resets it first. A statement
 * that fails because the connection broke is sent again once after a reset when it is idempotent
 * (all reads, lease renewals, ledger flushes, upserts); otherwise (claiming, completing a job) the
 * caller gets a transient error and decides.
 *
 * Leases and fencing: a claimed job carries a `struct state_lease` (job id, engine id, epoch). Every
 * write that records progress for the job is conditional on the lease still being held (same owner
 * and same epoch, job still running). When it is not, the call fails with class
 * FLEET_ERR_PERMANENT, scope FLEET_SCOPE_ACCOUNT, code STATE_ERR_LEASE_LOST: the worker must stop
 * before its next APPEND. A job cancelled while running loses its lease the same way.
 *
 * UIDs and UIDVALIDITY values are uint32 (RFC 3501), stored as bigint.
 */
#ifndef IMAPFLEET_STATE_STATE_H
#define IMAPFLEET_STATE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* two rows of one import with the same row key */
#define STATE_ERR_DUPLICATE_ROW "DUPLICATE_ROW"
/* an engine id the store does not know */
#define STATE_ERR_ENGINE_UNKNOWN "ENGINE_UNKNOWN"
/* an import read back a different number of rows */
#define STATE_ERR_IMPORT_MISMATCH "IMPORT_MISMATCH"
/* a folder id that belongs to another job */
#define STATE_ERR_FOLDER_NOT_IN_JOB "FOLDER_NOT_IN_JOB"

/* err->code when a fenced write finds the lease gone (expired and taken, job cancelled). */
#define STATE_ERR_LEASE_LOST "LEASE_LOST"
/* err->code when the connection broke and could not be re-established. */
#define STATE_ERR_CONNECTION "PG_CONNECTION"
/* the database was migrated by a newer imapfleet */
#define STATE_ERR_SCHEMA_TOO_NEW "SCHEMA_TOO_NEW"
/* no run in the state store matches what was asked for (raised by the scheduler and ops) */
#define STATE_ERR_NO_RUN "NO_RUN"
/* an account name that matches several jobs */
#define STATE_ERR_AMBIGUOUS "AMBIGUOUS"
/* a statement's list (an array parameter, a host name) passes its cap: refused, never sent cut */
#define STATE_ERR_TOO_LARGE "TOO_LARGE"

/* The highest schema version this build knows (state_conn_open applies every known version the
 * database does not record, not only those above its highest; a database that records a higher
 * one is refused). */
#define STATE_SCHEMA_VERSION 14

/* ---- connection ---------------------------------------------------------------------------- */

struct state_conn;

/* Connects with a libpq conninfo string or URL ("" = libpq's environment: PGHOST, PGDATABASE ...),
 * then applies the schema migrations (idempotent; concurrent engines serialise on an advisory
 * lock, so exactly one applies each version). The conninfo is copied (it is needed to reconnect).
 * Errors: unreachable server -> FLEET_ERR_TRANSIENT, code STATE_ERR_CONNECTION. */
int state_conn_open(const char *conninfo, struct state_conn **out, struct fleet_err *err);
/* Same without migrating (tools, tests of the migration itself). */
int state_conn_open_nomigrate(const char *conninfo, struct state_conn **out, struct fleet_err *err);
void state_conn_close(struct state_conn **sc);
/* 1 when the connection can serve another thread as it is: connected, idle, no transaction open. */
int state_conn_reusable(const struct state_conn *sc);
/* How long any call waits for the state database when it does not answer (a restart, a short
 * network loss): the connection is re-established every second at most for up to ms, then the
 * call goes on as if nothing happened (0 = no wait: the call fails at once; the default). The
 * outage is logged once per process, and its end. Process-wide; thread-safe. */
void state_set_outage_wait(unsigned ms);
/* Drops and re-establishes the connection (the calls below already do this once on their own). */
int state_conn_reconnect(struct state_conn *sc, struct fleet_err *err);
/* Applies pending migrations. Returns the schema version now in place (>= 1) or < 0. */
int state_schema_migrate(struct state_conn *sc, struct fleet_err *err);
/* Current version in the database (0 when the schema was never applied). */
int state_schema_version(struct state_conn *sc, int *version, struct fleet_err *err);

/* SQLSTATE -> error class (design section 8). Never FLEET_ERR_NONE. */
enum fleet_err_class state_sqlstate_class(const char *sqlstate);

/* ---- engines (one row per running imapfleet process) ------------------------------------- */

/* Registers this process. ttl_ms: how long the registration (and its connection slots) stays
 * valid without a heartbeat. *engine_id is the id used as lease owner and slot holder. */
int state_engine_register(struct state_conn *sc, const char *host, long pid, const char *version,
			  unsigned ttl_ms, int64_t *engine_id, struct fleet_err *err);
/* Extends the registration and the expiry of every connection slot this engine holds. */
int state_engine_heartbeat(struct state_conn *sc, int64_t engine_id, unsigned ttl_ms, struct fleet_err *err);
/* Marks the engine stopped, frees its connection slots and lets its remaining leases expire now
 * (so other engines take those jobs back at once). The jobs it parked for a server that was down
 * stay parked until an engine calls state_job_unpark_orphans (a scheduler's health thread does at
 * its start): one statement whatever was parked. Release jobs first (state_job_release). */
int state_engine_deregister(struct state_conn *sc, int64_t engine_id, struct fleet_err *err);

/* ---- runs and jobs (import) ----------------------------------------------------------------- */

enum state_job_state {
	STATE_JOB_QUEUED = 0,
	STATE_JOB_RUNNING,
	STATE_JOB_DONE,
	STATE_JOB_FAILED,
	STATE_JOB_CANCELLED,
	STATE_JOB_PARTIAL, /* finished, but folders could not be migrated (created, selected, listed) */
	STATE_JOB_NSTATES
};
const char *state_job_state_name(enum state_job_state s);
/* Returns -1 when unknown. */
int state_job_state_from_name(const char *name, enum state_job_state *out);

/* A run is identified by its name (the scheduler chooses it: e.g. the absolute path of the
 * accounts file plus a digest of the options). options_json: a JSON document (may be NULL), stored
 * and replaced on every call. *created: 1 when the run was new (may be NULL). */
int state_run_get_or_create(struct state_conn *sc, const char *name, const char *options_json,
			    int64_t *run_id, int *created, struct fleet_err *err);
/* The other processes working on the run now (live engines holding leases on its jobs), each with
 * the number of accounts it runs; the engine except_engine is left out. Returns how many. */
typedef void (*state_run_engine_cb)(void *ctx, const char *host, long pid, long running);
int state_run_engines(struct state_conn *sc, int64_t run_id, int64_t except_engine, state_run_engine_cb cb,
		      void *ctx, struct fleet_err *err);
/* The most recently created run that still has queued or running jobs (for `worker`);
 * returns 1 and sets *run_id when there is one, 0 when none. */
int state_run_find_active(struct state_conn *sc, int64_t *run_id, struct fleet_err *err);
/* The run's credentials for worker hosts (migration 12). A run that stores them marks them pending
 * for hold_ms before it imports its rows, and clears the mark (hold_ms 0) once they are stored; in
 * between, worker hosts claim none of its jobs (state_job_claim_ex). A run that dies in between
 * leaves the mark to expire. */
int state_run_hold_credentials(struct state_conn *sc, int64_t run_id, unsigned hold_ms, struct fleet_err *err);
/* 1 when the run's credentials are pending, 0 when not, -1 on error. */
int state_run_credentials_pending(struct state_conn *sc, int64_t run_id, struct fleet_err *err);

/* One account pair. The row key (host1, port1, user1, host2, port2, user2) is unique in a run. */
struct state_job_spec {
	const char *host1;
	unsigned port1;
	const char *user1;
	const char *host2;
	unsigned port2;
	const char *user2;
	const char *options; /* per-row options text (NULL = none); replaced on re-import */
	int max_attempts;    /* 0 = default (5); replaced on re-import */
};

/* Inserts the job or, when the row key exists in the run, updates its options and max_attempts
 * without touching its state or progress. *created: 1 when new. */
int state_job_upsert(struct state_conn *sc, int64_t run_id, const struct state_job_spec *spec,
		     int64_t *job_id, int *created, struct fleet_err *err);
/* The same for n rows in one statement and one transaction (10,000 rows in well under a second).
 * job_ids[i] (and created[i] when created is not NULL) correspond to specs[i]. Duplicate row keys
 * within specs are an error (FLEET_ERR_PERMANENT, code "DUPLICATE_ROW"): the CSV reader reports
 * them by line before this call. New rows join the run's open pass, which it creates when there is
 * none (the pass state_run_start_pass then goes on with). */
int state_job_upsert_many(struct state_conn *sc, int64_t run_id, const struct state_job_spec *specs, size_t n,
			  int64_t *job_ids, int *created, struct fleet_err *err);
/* The same for the rows of a run that has none yet (it was just created): a plain INSERT, about
 * 40 % less PostgreSQL CPU. When rows of the run exist after all, it upserts as above. The ids are
 * drawn in the order of specs. */
int state_job_insert_new(struct state_conn *sc, int64_t run_id, const struct state_job_spec *specs, size_t n,
			 int64_t *job_ids, struct fleet_err *err);

/* ---- claiming and leases -------------------------------------------------------------------- */

struct state_lease {
	int64_t job_id;
	int64_t owner; /* engine id */
	int64_t epoch; /* fencing token: incremented at each claim */
};

/* What a claim hands to the worker. Strings are owned by the struct: state_claim_release(). */
struct state_claim {
	struct state_lease lease;
	int64_t run_id;
	int attempt; /* 1 for the first attempt */
	int max_attempts;
	int reclaimed; /* 1 when taken back from an engine whose lease expired */
	char *host1, *user1, *host2, *user2, *options;
	unsigned port1, port2;
};
void state_claim_release(struct state_claim *c);

/* Claims one job of the run (run_id 0 = any run) that is queued with scheduled_at <= now(), or
 * running with an expired lease of ANOTHER engine (taken back first; its open attempt is closed as
 * "lease_expired"; an engine's own expired leases are its to renew, or to release with
 * state_job_release_orphans). Two walks of partial indexes: the cost does not grow with the run.
 * One transaction: FOR UPDATE SKIP LOCKED, state running, lease to engine_id for lease_ms,
 * epoch + 1, attempts + 1, a job_attempt row. Returns 1 and fills *out when a job was claimed,
 * 0 when none is ready. Not retried transparently (a lost connection is a transient error).
 *
 * A claim is not yet a started attempt: until state_job_begin the job is "waiting" (for connection
 * slots), and the claimer keeps it with a short lease (renewed often with state_job_renew). A job
 * taken back while it was waiting never started: its attempt is not counted again and its open
 * attempt row is dropped rather than closed (the attempt number carries over to the new holder). */
int state_job_claim(struct state_conn *sc, int64_t run_id, int64_t engine_id, const char *host,
		    unsigned lease_ms, struct state_claim *out, struct fleet_err *err);
/* The same; flags STATE_CLAIM_STORED_CREDENTIALS: a worker host, which logs in with the stored
 * credentials, claims no job of a run whose credentials are pending (state_run_hold_credentials):
 * 0 then, as when none is ready. */
#define STATE_CLAIM_STORED_CREDENTIALS (1u << 0)
int state_job_claim_ex(struct state_conn *sc, int64_t run_id, int64_t engine_id, const char *host,
		       unsigned lease_ms, unsigned flags, struct state_claim *out, struct fleet_err *err);
/* What is left of the run, from the claim indexes (cost independent of the run's size): returns
 * 1 when a job is queued (due or not, parked included) or running, 0 when none is (the run is
 * over). *wait_ms (may be NULL): milliseconds until the earliest queued job is due or the earliest
 * lease expires (0 = now), -1 when neither will happen by itself (only parked jobs, or none). */
int state_job_next_due(struct state_conn *sc, int64_t run_id, int64_t *wait_ms, struct fleet_err *err);
/* Accounts of the run that another engine holds under a lease not yet expired: what an idle
 * engine waits for (after a kill -9, the dead engine's leases). *count = 0 when none; else
 * *wait_ms until the last of them expires, and the holder (the first by id when several):
 * host, pid, and whether its heartbeat is still fresh (alive = 1) or it stopped without
 * releasing them (0). */
/* An engine's host name as it registered (the scheduler's gethostname; HOST_NAME_MAX is 64 on
 * Linux): as long as SCHEDULER_HOST_MAX, so that a lease holder's name compares whole with ours. */
#define STATE_ENGINE_HOST_MAX 256
struct state_lease_wait {
	long count;
	int64_t wait_ms;
	char host[STATE_ENGINE_HOST_MAX];
	long pid;
	int alive;
};
int state_job_leases_elsewhere(struct state_conn *sc, int64_t run_id, int64_t engine_id,
			       struct state_lease_wait *out, struct fleet_err *err);
/* Jobs of the run that engine_id holds with an expired lease and that are not in held[] (a claim
 * whose answer was lost with the connection: no worker knows it) go back to queued, the attempt not
 * counted. Expired only: a job claimed a moment ago by a worker that has not told anyone yet has
 * a fresh lease. *count (may be NULL) = jobs released. */
int state_job_release_orphans(struct state_conn *sc, int64_t run_id, int64_t engine_id, const int64_t *held,
			      size_t nheld, long *count, struct fleet_err *err);
/* The claimed job starts now (its connection slots are taken): no longer waiting, the lease
 * extended to lease_ms from now. A takeover after this counts a new attempt. Fenced. */
int state_job_begin(struct state_conn *sc, const struct state_lease *lease, unsigned lease_ms,
		    struct fleet_err *err);
/* Extends the lease by lease_ms from now. LEASE_LOST when it is no longer held. */
int state_job_renew(struct state_conn *sc, const struct state_lease *lease, unsigned lease_ms,
		    struct fleet_err *err);
/* Checks the lease without changing anything. LEASE_LOST when it is no longer held. */
int state_job_check_lease(struct state_conn *sc, const struct state_lease *lease, struct fleet_err *err);

/* The job finished: state done, lease dropped, attempt closed as "done". Fenced. */
int state_job_finish(struct state_conn *sc, const struct state_lease *lease, struct fleet_err *err);
/* The job finished but not completely: some folders could not be migrated (why: the first such
 * failure, with a count in its text). State partial, lease dropped, why recorded as the last error,
 * attempt closed as "partial". A new pass or `retry --failed` queues it again. Fenced. */
int state_job_finish_partial(struct state_conn *sc, const struct state_lease *lease, const struct fleet_err *why,
			     struct fleet_err *err);
/* The job failed with job_err (class, code, message are recorded). transient/throttled: back to
 * queued with scheduled_at = now() + retry_delay_ms (the caller computes backoff and jitter), unless
 * attempts >= max_attempts: failed. auth/permanent/bug: failed. progressed != 0 says the attempt
 * copied messages before it broke: then a retryable failure does not count toward max_attempts
 * (an account over a flaky link gets there as long as each attempt moves it on; that is bounded,
 * since each such attempt commits new ledger rows). The attempt row keeps the history either way.
 * *requeued (may be NULL) = 1 when queued again. Fenced. */
int state_job_fail(struct state_conn *sc, const struct state_lease *lease, const struct fleet_err *job_err,
		   unsigned retry_delay_ms, int progressed, int *requeued, struct fleet_err *err);
/* Interrupted cleanly (SIGINT): back to queued at once, the attempt does not count. Fenced. */
int state_job_release(struct state_conn *sc, const struct state_lease *lease, struct fleet_err *err);

/* ---- servers that are down (the scheduler's server health) ------------------------------------ */

/* The attempt failed because a server refused or dropped the connection (not the account's
 * fault): back to queued without counting the attempt, the attempt closed as "server_down" with
 * why. park = 0: due after delay_ms; park = 1: parked (never due until state_server_resume or
 * state_server_fail; the engine in the lease watches it). Fenced. */
int state_job_defer(struct state_conn *sc, const struct state_lease *lease, const struct fleet_err *why,
		    unsigned delay_ms, int park, struct fleet_err *err);
/* Parks every queued job of the run that uses host:port on either side, watched by engine_id.
 * *count (may be NULL) = jobs parked. This, state_server_resume, state_server_fail and
 * state_job_unpark_orphans change at most STATE_SERVER_BATCH (1,000) jobs per statement and skip
 * jobs another transaction holds (their worker sees the server's state itself), so a worker's
 * own statement on one of them never waits for the whole change. */
int state_server_park(struct state_conn *sc, int64_t run_id, int64_t engine_id, const char *host,
		      unsigned port, long *count, struct fleet_err *err);
/* The server answers again: its parked jobs are due now. */
int state_server_resume(struct state_conn *sc, int64_t run_id, const char *host, unsigned port, long *count,
			struct fleet_err *err);
/* The server stayed down past the limit: every queued job of the run on it (parked or not) fails
 * with why (one server-level reason), without an attempt. */
int state_server_fail(struct state_conn *sc, int64_t run_id, const char *host, unsigned port,
		      const struct fleet_err *why, long *count, struct fleet_err *err);
/* Jobs parked by an engine that stopped or whose registration expired are due again (another
 * engine then finds out for itself whether the server answers). */
int state_job_unpark_orphans(struct state_conn *sc, int64_t run_id, long *count, struct fleet_err *err);

/* ---- daily budgets and parked accounts ------------------------------------------------------------ */

/* The account's current day: bytes read from (down) and written to (up) each side since its first
 * byte ([side 0/1][0 down, 1 up]). A day lasts day_ms from its first byte; one that is over starts
 * afresh (all zero). */
struct state_day {
	uint64_t used[2][2];
};
/* Reads the account's day, ending it first when it is over. Fenced. */
int state_job_day_load(struct state_conn *sc, const struct state_lease *lease, uint64_t day_ms,
		       struct state_day *day, struct fleet_err *err);
/* Adds what an attempt used; a day that had not started starts at started_ms_ago before now. */
int state_job_day_add(struct state_conn *sc, const struct state_lease *lease, const uint64_t add[2][2],
		      uint64_t started_ms_ago, struct fleet_err *err);

/* Why an account is parked. */
enum state_park {
	STATE_PARK_DAILY = 0,   /* a daily budget or the provider's daily limit: until its day is over */
	STATE_PARK_THROTTLED    /* the provider throttles: for a while (delay_ms) */
};
struct state_park_req {
	enum state_park kind;
	const struct fleet_err *why;  /* recorded as the last error and the attempt's */
	uint64_t delay_ms;            /* at least this long (a server's hint) */
	uint64_t base_ms, cap_ms;     /* THROTTLED: the wait doubles with each park in a row, from
	                               * base_ms up to cap_ms (jittered to 50-100 %) */
	uint64_t day_ms;              /* DAILY: until the day (from its first byte) is over, or day_ms
	                               * from now when none started */
	uint64_t pending, per_day;    /* bytes left and the smallest daily budget (0: unknown), for the
	                               * ETA: the resume time plus a day per further budget's worth */
	unsigned max_throttle_parks;  /* THROTTLED: the account fails instead after this many parks in a
	                               * row without progress (0: no limit) */
	int progressed;               /* the attempt copied messages: the throttle parks start over */
};
/* The attempt ends parked: back to queued, due at the resume time (any engine claims it then), the
 * attempt not counted against max_attempts and closed as "parked"; parked_until, park_reason and
 * eta_at are kept for status and report. *failed = 1 when it failed instead (max_throttle_parks).
 * *resume_ms = ms from now until it resumes. Fenced. */
int state_job_park(struct state_conn *sc, const struct state_lease *lease, const struct state_park_req *req,
		   int *failed, int64_t *resume_ms, struct fleet_err *err);

/* `retry --account ID`: a job that is not running goes back to queued now, attempts reset to 0,
 * last error cleared, progress (folders, ledger, counters) kept. Returns 1 when requeued, 0 when
 * the job is running or does not exist. */
int state_job_requeue(struct state_conn *sc, int64_t job_id, struct fleet_err *err);
/* Job state masks for state_run_requeue. */
#define STATE_JOB_MASK(s) (1u << (s))
/* `retry --failed` (mask STATE_JOB_MASK(STATE_JOB_FAILED)), or a new pass over a finished run
 * (done | failed): every job of the run (run_id 0 = all runs) whose state is in state_mask and
 * that is not running goes back to queued as state_job_requeue does. *count = jobs requeued. */
int state_run_requeue(struct state_conn *sc, int64_t run_id, unsigned state_mask, long *count,
		      struct fleet_err *err);
/* `cancel --account`: the job is cancelled (any state but cancelled: a done account is left out of
 * later passes too), recorded with code STATE_CODE_CANCELLED; a running one loses its lease (the
 * worker gets LEASE_LOST at its next fenced write and stops). Folders, ledger and counters are kept;
 * `retry` undoes it. Returns 1 when cancelled, 0 when already cancelled or missing. */
int state_job_cancel(struct state_conn *sc, int64_t job_id, struct fleet_err *err);
/* Finds a job by id in text ("42") or by "user1" / "user1@host1" in the run (run_id 0 = any);
 * returns 1 and sets *job_id when exactly one matches, 0 when none, FLEET_ERR_PERMANENT code
 * "AMBIGUOUS" when several do. For `retry --account`. */
int state_job_find(struct state_conn *sc, int64_t run_id, const char *account, int64_t *job_id,
		   struct fleet_err *err);

/* ---- passes: which accounts a new pass runs (state/pass.c) ---------------------------------- */

#define STATE_HOLD_HMAC_LEN 32
/* err->code recorded on an account left out because its row is no longer in the accounts file. */
#define STATE_CODE_REMOVED "REMOVED"
/* err->code recorded on an account cancelled by `imapfleet cancel`. */
#define STATE_CODE_CANCELLED "CANCELLED"

/* The account's login was refused: hmac is a keyed hash of the credential of that side (1 source,
 * 2 destination) that was refused (the caller computes it; never the credential itself). Later
 * passes leave the account out until that hash changes (state_run_start_pass) or `retry` names
 * it (a requeue clears the hold). Only a failed job is held. Not fenced: the lease is gone. */
int state_job_hold_auth(struct state_conn *sc, int64_t job_id, int side,
			const unsigned char hmac[STATE_HOLD_HMAC_LEN], struct fleet_err *err);
struct state_auth_hold {
	int64_t job_id;
	int side;
	unsigned char hmac[STATE_HOLD_HMAC_LEN];
};
/* The run's failed jobs held that way, in id order. *out owned by the caller (xfree). */
int state_run_auth_holds(struct state_conn *sc, int64_t run_id, struct state_auth_hold **out, size_t *n,
			 struct fleet_err *err);

/* What a new pass over an accounts file runs. */
struct state_pass_plan {
	const int64_t *in_file; /* the jobs of the rows in the accounts file */
	size_t nin_file;
	const int64_t *released; /* held jobs whose credential changed since it was refused */
	size_t nreleased;
	int keep_removed; /* run the jobs whose rows left the file too (the old behaviour) */
	int run_new;	  /* the run was created by this import: its only jobs are in_file, all queued
			   * and in the pass already (state_job_upsert_many), so nothing is looked for */
};
struct state_pass_counts {
	long requeued; /* done, failed or partial jobs queued for this pass */
	long removed;  /* jobs cancelled now because their rows left the file */
	long restored; /* jobs removed earlier whose rows are back (or --keep-removed) */
	long held;     /* failed jobs left out: their refused credential did not change */
	int64_t pass_id; /* the pass the queued jobs are in: a new one, or the current one when the
			  * last pass did not end (an interrupted pass continues) */
	int pass_number; /* 1, 2 ... within the run */
	int pass_first;	 /* 1 when it is the run's first pass, 0 for a delta pass */
};
/* Starts a new pass, in one transaction: the holds of `released` are cleared; unless keep_removed,
 * every job of the run not in in_file and not cancelled is cancelled with code STATE_CODE_REMOVED
 * (a running one loses its lease); jobs cancelled that way whose rows are back (all of them with
 * keep_removed) are queued again; every done, failed or partial job is queued again except those
 * still held. Cancelled jobs stay cancelled. With run_new, only the pass is found (every count 0).
 * Each statement reads the run's rows once (in_file is joined by hash, never searched per row). */
int state_run_start_pass(struct state_conn *sc, int64_t run_id, const struct state_pass_plan *plan,
			 struct state_pass_counts *out, struct fleet_err *err);
/* One attempt's counts in its pass (vocabulary of docs/reports.md): copied now, already there
 * (found on the destination: matched), skipped, failed; uncertain: of the copied, those copied
 * although the destination may hold them (identity not certain, engine/identity.h). */
struct state_pass_tally {
	int64_t copied, matched, skipped, failed, bytes_copied, uncertain;
};
/* Adds an attempt's counts to the account's row of the pass it is in (nothing when it is in none:
 * a job of a run from before passes were recorded, or of `sync`). outcome ("done", "partial",
 * "failed", "retry", "interrupted", "waiting") replaces the row's; done and partial also stamp the
 * account's last_synced_at. t->uncertain is also added to the job's msgs_uncertain (all passes), in a
 * pass or not. Not fenced: called after the attempt ended. */
int state_pass_record(struct state_conn *sc, int64_t job_id, const char *outcome, const struct state_pass_tally *t,
		      struct fleet_err *err);
/* state_job_finish, state_pass_record(..., "done", t) (t->uncertain added to the job as well) and
 * state_slot_release of the attempt's slots (engine_id; server[k] NULL or slot_no[k] < 0: none) in
 * one statement, the end of a successful attempt. The slots are released whether the lease still holds or not. Fenced. */
int state_job_finish_done(struct state_conn *sc, const struct state_lease *lease, const struct state_pass_tally *t,
			  int64_t engine_id, const char *const server[2], const int slot_no[2], struct fleet_err *err);
/* Ends the run's current pass when none of its jobs is queued or running. Returns 1 when it ended
 * now, 0 when it goes on (or there is none). */
int state_pass_end_if_idle(struct state_conn *sc, int64_t run_id, struct fleet_err *err);
/* One pass of a run, with its accounts' counts summed. Strings valid during the callback only. */
struct state_pass_report {
	int64_t pass_id;
	int number;
	const char *kind; /* "first" or "delta" */
	int64_t started_at_ms, ended_at_ms; /* ended 0 while it goes on */
	long accounts, done, partial, failed;
	int64_t copied, matched, skipped, msgs_failed, bytes_copied;
	int64_t uncertain; /* of the copied: identity not certain */
};
typedef int (*state_pass_report_cb)(const struct state_pass_report *row, void *ctx);
/* The run's passes in order. */
int state_report_passes(struct state_conn *sc, int64_t run_id, state_pass_report_cb cb, void *ctx,
			struct fleet_err *err);

/* `cancel --failed` / `--all`: every job of the run whose state is in state_mask is cancelled as
 * state_job_cancel does. *count = jobs cancelled. */
int state_run_cancel(struct state_conn *sc, int64_t run_id, unsigned state_mask, long *count,
		     struct fleet_err *err);

/* A job's sides and options as a claim would hand them (lease zero: nothing is claimed or changed),
 * for `verify`. Returns 1 and fills *out, 0 when there is no such job. */
int state_job_load(struct state_conn *sc, int64_t job_id, struct state_claim *out, struct fleet_err *err);

/* `verify`: the account's latest verdict ("PASS", "FAIL" or "ERROR"), its counts and detail text
 * (the folders at fault with their UIDs), stamped now. Not fenced: verify holds no lease. */
struct state_verify {
	const char *verdict;
	int64_t on_source, on_destination, missing, extra, altered, flags, dates;
	const char *detail;
};
/* The run of that name: returns 1 and sets *run_id, 0 when there is none. */
int state_run_find(struct state_conn *sc, const char *name, int64_t *run_id, struct fleet_err *err);
/* The jobs `verify` looks at, in id order: every job of the run that ever ran, or only_failed:
 * those failed or partial, or whose last verify did not pass. *ids owned by the caller (xfree). */
int state_verify_jobs(struct state_conn *sc, int64_t run_id, int only_failed, int64_t **ids, size_t *n,
		      struct fleet_err *err);
int state_job_record_verify(struct state_conn *sc, int64_t job_id, const struct state_verify *v,
			    struct fleet_err *err);

/* ---- folders, UIDVALIDITY and the append window ------------------------------------------ */

enum state_folder_state { STATE_FOLDER_PENDING = 0, STATE_FOLDER_COPYING, STATE_FOLDER_DONE, STATE_FOLDER_FAILED };

struct state_folder {
	int64_t id;
	int created; /* 1 when state_folder_upsert inserted it */
	enum state_folder_state state;
	uint32_t src_uidvalidity; /* 0 = not yet recorded */
	uint32_t dst_uidvalidity;
	uint32_t src_uidnext; /* STATUS values seen at the last state_folder_record_status */
	uint32_t src_messages;
	uint64_t src_highestmodseq;
	uint32_t dst_uidnext;
	uint32_t highest_uid_copied; /* highest source UID copied under src_uidvalidity */
	int64_t msgs_copied, bytes_copied, msgs_skipped, msgs_failed;
	int window_open; /* 1 when an append window is open (see state_folder_get_window) */
	/* state_folder_upsert[_all] only: whether the ledger holds copied rows of the folder for
	 * copied_rows_uidvalidity (the UIDVALIDITY passed, or for the other folders their recorded one) */
	int has_copied_rows;
	uint32_t copied_rows_uidvalidity;
};

/* Inserts the folder (job, src_name) or updates its destination name; fills *out with what is
 * stored. Fenced. On first sight, pass the source UIDVALIDITY in src_uidvalidity (0 = unknown);
 * it is stored only when none is recorded yet: a change is handled by state_folder_reset. */
int state_folder_upsert(struct state_conn *sc, const struct state_lease *lease, const char *src_name,
			const char *dst_name, uint32_t src_uidvalidity, struct state_folder *out,
			struct fleet_err *err);
/* state_folder_upsert, and in the same statement every other folder of the job: cb is called once
 * per other folder (names and *f borrowed for the call; a non-zero return stops and is returned), so
 * that the caller can open them later without a statement. */
typedef int (*state_folder_cb)(const char *src_name, const char *dst_name, const struct state_folder *f,
			       void *ctx);
int state_folder_upsert_all(struct state_conn *sc, const struct state_lease *lease, const char *src_name,
			    const char *dst_name, uint32_t src_uidvalidity, struct state_folder *out,
			    state_folder_cb cb, void *ctx, struct fleet_err *err);
/* state_folder_upsert of n folders at once (src_uidvalidities[i] as there; dst_names[i] NULL = the
 * source name), and every other folder of the job: cb is called for every folder of the job, the
 * named ones included (names and *f borrowed for the call; a non-zero return stops and is
 * returned). One statement for an account's folders instead of one per folder. Fenced. */
int state_folder_upsert_many(struct state_conn *sc, const struct state_lease *lease, size_t n,
			     const char *const *src_names, const char *const *dst_names,
			     const uint32_t *src_uidvalidities, state_folder_cb cb, void *ctx, struct fleet_err *err);
/* The folder could not be migrated (refused CREATE, failed SELECT or STATUS ...): inserted if new,
 * state failed, why kept in last_error until a later pass completes it. Fenced. */
int state_folder_mark_failed(struct state_conn *sc, const struct state_lease *lease, const char *src_name,
			     const char *dst_name, const char *why, struct fleet_err *err);
/* Reads one folder by (job, src_name): returns 1 and fills *out, 0 when unknown. Not fenced. */
int state_folder_get(struct state_conn *sc, int64_t job_id, const char *src_name, struct state_folder *out,
		     struct fleet_err *err);

/* STATUS values seen (for delta passes) and the folder state. Fenced. */
struct state_folder_status {
	enum state_folder_state state;
	uint32_t dst_uidvalidity; /* 0 = leave as stored */
	uint32_t src_uidnext, src_messages, dst_uidnext;
	uint64_t src_highestmodseq;
};
int state_folder_record_status(struct state_conn *sc, const struct state_lease *lease, int64_t folder_id,
			       const struct state_folder_status *st, struct fleet_err *err);

enum state_uidv_reset_mode {
	STATE_UIDV_KEEP_OLD = 0, /* keep the old rows (fingerprints to match the destination against) */
	STATE_UIDV_DELETE_OLD	 /* delete every ledger row of other UIDVALIDITYs */
};
/* The source UIDVALIDITY changed: records new_src_uidvalidity, resets highest_uid_copied, the
 * folder counters (subtracting them from the job's), the window and the folder state; old ledger
 * rows are kept (keyed by their old UIDVALIDITY, so they never count as copied for the new one) or
 * deleted. Fenced. */
int state_folder_reset_uidvalidity(struct state_conn *sc, const struct state_lease *lease, int64_t folder_id,
				   uint32_t new_src_uidvalidity, enum state_uidv_reset_mode mode,
				   struct fleet_err *err);

/* The append window (design section 6). Recorded BEFORE a batch of APPENDs: the destination's
 * UIDNEXT and the source UIDs about to be appended (range first..last, plus optionally the exact
 * list, uids may be NULL). Fenced. */
int state_folder_window_begin(struct state_conn *sc, const struct state_lease *lease, int64_t folder_id,
			      uint32_t dst_uidnext, uint32_t first_src_uid, uint32_t last_src_uid,
			      const uint32_t *uids, size_t nuids, struct fleet_err *err);
/* Closes the window after the ledger rows are written (or see state_ledger_batch_end_window to do
 * both in one transaction). Fenced. */
int state_folder_window_end(struct state_conn *sc, const struct state_lease *lease, int64_t folder_id,
			    struct fleet_err *err);
struct state_window {
	uint32_t dst_uidnext;
	uint32_t first_src_uid, last_src_uid;
	int64_t started_at_ms; /* wall clock, ms since the epoch */
	uint32_t *uids;	       /* the exact list when one was recorded, else NULL; owned */
	size_t nuids;
};
void state_window_release(struct state_window *w);
/* Returns 1 and fills *w when a previous attempt left the window open (it crashed between the
 * APPENDs and the ledger write: match destination messages at or above dst_uidnext before
 * appending again), 0 when closed. With several pairs' windows open (state_ledger_batch_set_pair),
 * the one with the lowest dst_uidnext (uids: only the folder row's window has a list). */
int state_folder_get_window(struct state_conn *sc, int64_t folder_id, struct state_window *w,
			    struct fleet_err *err);

/* ---- the message ledger ------------------------------------------------------------------ */

enum state_msg_state { STATE_MSG_COPIED = 0, STATE_MSG_FAILED, STATE_MSG_SKIPPED };
/* Masks for resume queries. */
#define STATE_MSG_MASK_COPIED  (1u << STATE_MSG_COPIED)
#define STATE_MSG_MASK_FAILED  (1u << STATE_MSG_FAILED)
#define STATE_MSG_MASK_SKIPPED (1u << STATE_MSG_SKIPPED)

/* A ledger row's hashes (sha256, msgid_hash): SHA-256, 32 bytes, stored as bytea. */
#define STATE_LEDGER_HASH_LEN 32

struct state_ledger_row {
	int64_t folder_id;
	uint32_t src_uidvalidity;
	uint32_t src_uid;
	uint64_t size;
	const char *internaldate; /* text as the server sent it; may be NULL */
	int has_sha256;
	unsigned char sha256[STATE_LEDGER_HASH_LEN]; /* of the bytes copied */
	int has_msgid_hash;
	unsigned char msgid_hash[STATE_LEDGER_HASH_LEN]; /* of the Message-ID header (the engine chooses the hash) */
	uint32_t dst_uidvalidity;     /* 0 = unknown */
	uint32_t dst_uid;	      /* 0 = unknown (no UIDPLUS) */
	const char *flags;	      /* "\\Seen $Label1"; may be NULL */
	enum state_msg_state state;
	const char *error; /* why it failed or was skipped; may be NULL */
};

/* An in-memory batch of ledger rows for one job (one lease), flushed with ONE statement: the lease
 * check, the upsert of every row (unnest arrays, ON CONFLICT (folder, src UIDVALIDITY, src UID) DO
 * UPDATE), the folder and job counters (computed from the state each row had before, so a replay
 * never counts twice) and the highest copied UID, in one transaction. Not thread-safe. */
struct state_ledger_batch;

#define STATE_LEDGER_BATCH_DEFAULT 500

/* max_rows: flush automatically when that many rows are pending (0 = default). The lease is copied;
 * sc is borrowed and must outlive the batch. */
struct state_ledger_batch *state_ledger_batch_new(struct state_conn *sc, const struct state_lease *lease,
						  size_t max_rows);
/* Discards unflushed rows (flush first). */
void state_ledger_batch_free(struct state_ledger_batch **b);
/* Copies the row (strings included). Flushes when the batch is full: an error then is the flush's
 * (LEASE_LOST included), and the row is kept pending. */
int state_ledger_batch_add(struct state_ledger_batch *b, const struct state_ledger_row *row,
			   struct fleet_err *err);
/* Also close this folder's append window in the next flush (same transaction as the rows). */
void state_ledger_batch_end_window(struct state_ledger_batch *b, int64_t folder_id);
/* Whose windows the batch opens and closes: pair 0 (the default) uses the folder row's window, pair
 * N > 0 a window of its own (table folder_window), so that several connection pairs can copy windows
 * of one folder at once, each with its window recorded before its APPENDs. A folder's window is open
 * (state_folder.window_open) while any pair's is; state_folder_get_window gives the one with the
 * lowest destination UIDNEXT. */
void state_ledger_batch_set_pair(struct state_ledger_batch *b, unsigned pair);
/* Also close every pair's window of this folder in the next flush: after a crash, once what they
 * covered is matched or recorded. */
void state_ledger_batch_end_all_windows(struct state_ledger_batch *b, int64_t folder_id);
/* Also record this folder's status in the next flush, as state_folder_record_status does (same
 * transaction; replaces a status of the folder still pending). */
void state_ledger_batch_folder_status(struct state_ledger_batch *b, int64_t folder_id,
				      const struct state_folder_status *st);
/* Also open an append window in the next flush, after the rows and window ends pending, as
 * state_folder_window_begin does without a UID list: flush at once, and append nothing before that
 * flush returned 0. A failed flush drops the window (it was never opened). Several folders' windows
 * may begin in one flush (one each: a second begin for a folder replaces the first); a folder's
 * window that ends in the same flush is replaced by the one that begins. */
void state_ledger_batch_window_begin(struct state_ledger_batch *b, int64_t folder_id, uint32_t dst_uidnext,
				     uint32_t first_src_uid, uint32_t last_src_uid);
/* How many windows the next flush begins. */
size_t state_ledger_batch_begins(const struct state_ledger_batch *b);
/* Writes pending rows (no-op when none and no window to close). On error the rows stay pending so
 * the caller may retry after a transient error. */
int state_ledger_batch_flush(struct state_ledger_batch *b, struct fleet_err *err);
size_t state_ledger_batch_pending(const struct state_ledger_batch *b);

/* Resume: the source UIDs recorded for (folder, src_uidvalidity) whose state is in state_mask,
 * sorted ascending, in one query (binary result). *uids is owned by the caller (xfree); NULL when
 * *n == 0. */
int state_ledger_uids(struct state_conn *sc, int64_t folder_id, uint32_t src_uidvalidity, unsigned state_mask,
		      uint32_t **uids, size_t *n, struct fleet_err *err);
/* Highest source UID with state copied for (folder, src_uidvalidity); 0 when none. */
int state_ledger_highest_uid(struct state_conn *sc, int64_t folder_id, uint32_t src_uidvalidity,
			     uint32_t *uid, struct fleet_err *err);
/* Calls cb for each row of (folder, src_uidvalidity) with src_uid >= min_uid, in UID order
 * (strings in the row are valid during the call only). cb returns 0 to go on, non-zero to stop
 * (returned as is). Used to match destination messages after a crash or a UIDVALIDITY change, and
 * for flag deltas (dst_uid per src_uid). */
typedef int (*state_ledger_cb)(const struct state_ledger_row *row, void *ctx);
int state_ledger_foreach(struct state_conn *sc, int64_t folder_id, uint32_t src_uidvalidity, uint32_t min_uid,
			 state_ledger_cb cb, void *ctx, struct fleet_err *err);

/* ---- connection slots across hosts --------------------------------------------------------- */

/* Takes one of `limit` slots for server_key ("imap.example.com:993"), held by engine_id for job_id
 * (0 = none). A slot whose engine registration expired or whose job lost its lease is taken over
 * when it is in the way (no free slot number). One statement per try, full or not.
 * Returns 0 with *slot set (0..limit-1) when acquired, 1 when all slots are busy (*held, when
 * held is not NULL: the slots below the limit held then, by every host). */
int state_slot_acquire(struct state_conn *sc, const char *server_key, int limit, int64_t engine_id,
		       int64_t job_id, int *slot, int *held, struct fleet_err *err);
int state_slot_release(struct state_conn *sc, const char *server_key, int slot, int64_t engine_id,
		       struct fleet_err *err);
/* A claimed job's two slots (two different servers, limits > 0) and its start (state_job_begin) in
 * one statement, when each server has a free slot number: returns 1 with slot[] set, the job begun
 * for lease_ms. Returns 0 when either server has none (or another host took the number chosen):
 * nothing is held then (a slot taken alone is released) and nothing begun; the caller goes on with
 * state_slot_acquire per server, which also takes over stale slots and counts, then
 * state_job_begin. -1 on errors, LEASE_LOST when the lease is gone (no slot kept). */
int state_slots_acquire_begin(struct state_conn *sc, const struct state_lease *lease, const char *const server[2],
			      const int limit[2], unsigned lease_ms, int slot[2], struct fleet_err *err);
/* Slots currently held for server_key (expired ones not counted). */
int state_slot_count(struct state_conn *sc, const char *server_key, int *count, struct fleet_err *err);

/* ---- reports and status -------------------------------------------------------------------- */

struct state_run_counts {
	int64_t run_id;
	long jobs[STATE_JOB_NSTATES]; /* indexed by enum state_job_state */
	int64_t msgs_copied, bytes_copied, msgs_skipped, msgs_failed;
	int64_t msgs_uncertain;       /* of the copied: identity not certain (all passes) */
	long parked;                  /* of the queued: parked (a daily budget or limit, a throttle) */
	int64_t parked_until_ms;      /* the last of them to resume, 0 when none */
	int64_t parked_eta_ms;        /* the latest ETA of them (or resume time where no ETA), 0 when none */
};
int state_report_run_counts(struct state_conn *sc, int64_t run_id, struct state_run_counts *out,
			    struct fleet_err *err);
/* How many of the run's jobs are queued or running, counted up to cap at most (cap index entries
 * read, whatever the run's size: the scheduler asks whether it has work for all its threads). */
int state_run_active_upto(struct state_conn *sc, int64_t run_id, long cap, long *n, struct fleet_err *err);

/* The whole run's bytes, every host's accounts, for the live display and the report's remaining
 * bytes and ETA (read from the job and folder rows only, never the ledger's message rows: cheap
 * enough to ask every few seconds). Parked accounts are left out (they wait for their day or a
 * throttle; status and report show them apart).
 * - copied: the ledger's bytes of the run's accounts (every pass, every host).
 * - left: what the started, unfinished accounts not in exclude[] still have to copy, estimated per
 *   folder as the messages STATUS counted there that the ledger does not hold yet, at the account's
 *   mean message size (the run's mean for an account with none copied yet); estimated = 1 when any
 *   such account had to be estimated at all.
 * - seen: accounts not in exclude[] that have started at some time; unseen: queued accounts never
 *   started, not parked (their size is unknown: the caller takes them to be like those seen).
 * exclude[]: the accounts whose live counters the caller has (those running on this host). */
struct state_run_bytes {
	int64_t copied, left;
	long seen, unseen;
	int estimated;
};
int state_report_run_bytes(struct state_conn *sc, int64_t run_id, const int64_t *exclude, size_t nexclude,
			   struct state_run_bytes *out, struct fleet_err *err);

/* One job's row for reports. Strings valid during the callback only. */
struct state_job_report {
	int64_t job_id;
	const char *host1, *user1, *host2, *user2;
	unsigned port1, port2;
	enum state_job_state state;
	int attempts, max_attempts;
	int64_t folders, msgs_copied, bytes_copied, msgs_skipped, msgs_failed;
	int64_t msgs_uncertain; /* of the copied: identity not certain (all passes) */
	const char *last_error_class, *last_error_code, *last_error_text; /* "" when none */
	/* Why later passes leave it out: "" (they do not), "credential" (its login was refused and the
	 * credential has not changed since), "removed" (not in the accounts file), "cancelled". */
	const char *left_out;
	int64_t started_at_ms, finished_at_ms, updated_at_ms;		  /* 0 when unset */
	int64_t parked_until_ms;  /* queued and parked until then; 0 when not parked */
	const char *park_reason;  /* "daily" or "throttled" while parked, else "" */
	int64_t eta_ms;           /* a parked account's expected end; 0 when unknown */
	/* The pass the account is in (0 = none recorded) and its counts there; when it last finished a
	 * pass; its latest verify verdict ("" when never verified) with its counts (-1 unknown). */
	int pass_number;
	int64_t pass_copied, pass_matched, pass_skipped, pass_failed;
	int64_t last_synced_at_ms;
	const char *verdict;
	int64_t verified_at_ms, on_source, on_destination;
};
typedef int (*state_job_report_cb)(const struct state_job_report *row, void *ctx);
/* Every job of the run in id order. */
int state_report_jobs(struct state_conn *sc, int64_t run_id, state_job_report_cb cb, void *ctx,
		      struct fleet_err *err);
/* A page of the run's jobs for `status`: those whose state is in state_mask (0 = any) and that use
 * server on either side ("host" or "host:port"; NULL = any), with id > after_id, in id order,
 * skipping the first offset of them, at most limit (0 = no limit). *matched (may be NULL) = how
 * many jobs match in all (after_id and offset aside); a separate count, so pass NULL when the
 * caller knows it already (the run's counts by state, when there is no server filter). */
struct state_job_filter {
	unsigned state_mask; /* STATE_JOB_MASK bits */
	const char *server;
	int64_t after_id;
	long limit;
	long offset;
};
int state_report_jobs_page(struct state_conn *sc, int64_t run_id, const struct state_job_filter *f,
			   state_job_report_cb cb, void *ctx, long *matched, struct fleet_err *err);

/* Failed (and skipped) messages grouped by error text, with folder and source UID. */
struct state_failed_msg {
	int64_t job_id;
	const char *error; /* group key */
	const char *src_folder;
	uint32_t src_uidvalidity, src_uid;
	uint64_t size;
	enum state_msg_state state;
};
typedef int (*state_failed_msg_cb)(const struct state_failed_msg *row, void *ctx);
/* Rows ordered by error, then job, folder, UID. limit 0 = no limit. */
int state_report_failed_messages(struct state_conn *sc, int64_t run_id, unsigned state_mask, long limit,
				 state_failed_msg_cb cb, void *ctx, struct fleet_err *err);

/* Ledger rows (copied) per minute, from updated_at: throughput over time. */
struct state_throughput_point {
	int64_t minute_ms; /* start of the minute, ms since the epoch */
	int64_t msgs;
	int64_t bytes;
};
/* *points owned by the caller (xfree). */
int state_report_throughput(struct state_conn *sc, int64_t run_id, struct state_throughput_point **points,
			    size_t *n, struct fleet_err *err);

/* ---- reports: runs and time spent (state/report.c) ----------------------------------- */

/* One run for `status` and `report`. Strings valid during the callback only. */
struct state_run_report {
	int64_t run_id;
	const char *name;
	const char *state; /* "active", "done", "cancelled" */
	int64_t created_at_ms, updated_at_ms;
};
typedef int (*state_run_report_cb)(const struct state_run_report *row, void *ctx);
/* Runs in id order: every run (run_id 0) or that one. A non-zero cb result stops and is returned. */
int state_report_runs(struct state_conn *sc, int64_t run_id, state_run_report_cb cb, void *ctx,
		      struct fleet_err *err);
/* The newest run: the active run (state_run_find_active) when there is one, else the run created
 * last. Returns 1 and sets *run_id, 0 when the store holds no run. */
int state_report_default_run(struct state_conn *sc, int64_t *run_id, struct fleet_err *err);

/* The run a job belongs to: returns 1 and sets *run_id, 0 when there is no such job. */
int state_report_job_run(struct state_conn *sc, int64_t job_id, int64_t *run_id, struct fleet_err *err);

/* Time spent per job, from its attempt history (job_attempt). */
struct state_job_time {
	int64_t job_id;
	int64_t busy_ms;     /* sum over attempts of (end or now) - start */
	long attempts_total; /* attempts ever made, cleanly interrupted ones not counted (a requeue
			      * resets the job's attempts counter, not this) */
};
typedef int (*state_job_time_cb)(const struct state_job_time *row, void *ctx);
/* Every job of the run that has at least one attempt, in id order. */
int state_report_job_times(struct state_conn *sc, int64_t run_id, state_job_time_cb cb, void *ctx,
			   struct fleet_err *err);

#endif

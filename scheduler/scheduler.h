/* scheduler/scheduler.h: bulk runs: the accounts file into the state store, a pool of worker
 * threads fed by job claims, per-server connection limits, retry with backoff, signals, progress.
 *
 * Threads: scheduler_run() starts cfg->workers threads; each has its own PostgreSQL connection and
 * runs one account pair at a time through the engine. The calling thread renews leases, sends the
 * engine heartbeat and prints progress. SIGINT/SIGTERM: no new APPEND starts, in-flight windows
 * are flushed, jobs go back to the queue, and the call returns with summary->interrupted set; a
 * second signal exits at once (still safe to resume: the open append windows cover it).
 */
#ifndef IMAPFLEET_SCHEDULER_SCHEDULER_H
#define IMAPFLEET_SCHEDULER_SCHEDULER_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "engine/engine.h"
#include "scheduler/policy.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* another process holds what this command needs */
#define SCHEDULER_ERR_BUSY "BUSY"
/* no account in the store matches */
#define SCHEDULER_ERR_NO_JOB "NO_JOB"
/* the run's key file is missing */
#define SCHEDULER_ERR_NO_KEY "NO_KEY"
/* a thread could not be started */
#define SCHEDULER_ERR_THREAD "THREAD"
/* a folder failed without a code of its own */
#define SCHEDULER_ERR_FOLDER "FOLDER"
/* no stored credential for the account (the login's code) */
#define SCHEDULER_ERR_NO_CREDENTIALS IMAP_ERR_NO_CREDENTIALS

/* The run has no account to work on (an empty accounts file, no stored account for a worker). */
#define SCHEDULER_ERR_NO_ACCOUNTS "NO_ACCOUNTS"

/* ---- defaults and caps --------------------------------------------------------------------------- */
/* Workers: eight accounts per core (migration waits on the network), at most this many. */
#define SCHEDULER_WORKERS_PER_CORE 8
#define SCHEDULER_WORKERS_MAX	   64
/* Connections per server and side when --max-conns-per-host is not given: below the per-IP limits
 * of hosted servers (Dovecot's mail_max_userip_connections is 10 per user, Gmail 15). */
#define SCHEDULER_CONNS_PER_HOST 16
/* A server down this long fails its accounts (--server-down-limit). */
#define SCHEDULER_SERVER_DOWN_LIMIT_MS 600000u
/* A waiting worker looks for slots again after 100 ms and up to 200 ms more (spread, so that
 * workers do not ask all at once); an idle one polls for due work after 250 ms and up to 250 more. */
#define SCHEDULER_SLOT_POLL_MS	  100
#define SCHEDULER_SLOT_JITTER_MS  200
#define SCHEDULER_IDLE_POLL_MS	  250
#define SCHEDULER_IDLE_JITTER_MS  250
/* Progress: the live display on a terminal is redrawn this often (smooth enough to watch); without
 * a terminal one log line says it this often (a log stays short), and the rate is measured
 * meanwhile this often, so that the first line already has one. */
#define SCHEDULER_DRAW_MS	   500u
#define SCHEDULER_PROGRESS_LINE_MS 10000u
#define SCHEDULER_RATE_SAMPLE_MS   2000u
/* The main thread's loop (leases renewed, the display redrawn) turns this often. */
#define SCHEDULER_MAIN_TICK_MS 200
/* The health thread probes the servers that are down this often, retries the state database
 * after this long, and makes the accounts parked by a host that stopped due again this often. */
#define SCHEDULER_HEALTH_TICK_MS	  250
#define SCHEDULER_HEALTH_STORE_RETRY_MS	  1000
#define SCHEDULER_ORPHANS_EVERY_MS	  30000
/* The heartbeat: every SCHEDULER_HEARTBEAT_MS the main thread renews the leases of its workers and
 * its engine registration. A lease is SCHEDULER_LEASE_BEATS heartbeats long (--lease overrides it,
 * the heartbeat is then a quarter of it): a host that dies loses its accounts to the others after
 * 20 s, not a fixed minute, and a late heartbeat or two costs nothing. The registration (and with
 * it the connection slots) lives half a lease longer than the leases it renews. */
#define SCHEDULER_HEARTBEAT_MS 5000u
#define SCHEDULER_LEASE_BEATS  4u
#define SCHEDULER_ENGINE_TTL_MS(lease_ms) ((lease_ms) + (lease_ms) / 2)
/* A claim is not a lease on a connection slot: while its worker waits for slots the job has not
 * started, and holds only a lease this short, renewed by the waiting worker itself every
 * SCHEDULER_WAIT_RENEW_MS. A host that dies with accounts waiting loses them to the others within
 * seconds (the takeover counts no attempt); the full lease starts with the attempt
 * (state_job_begin). */
#define SCHEDULER_WAIT_LEASE_MS 4000u
#define SCHEDULER_WAIT_RENEW_MS 1000u
/* verify sends no heartbeat: its registration (and connection slots) simply last this long. */
#define SCHEDULER_VERIFY_TTL_MS 90000u
/* How long work waits for the state database when it does not answer (then it fails as before). */
#define SCHEDULER_STORE_WAIT_MS 300000u
/* A run that stores its rows' credentials for worker hosts marks them pending for this long before
 * it imports the rows, and clears the mark once they are stored (a second at 50,000 rows); worker
 * hosts claim none of its jobs meanwhile. A run killed in between leaves the mark to expire: then
 * the worker hosts fail those accounts (NO_CREDENTIALS) unless the run is started again. */
#define SCHEDULER_CRED_HOLD_MS 300000u
/* A worker host that found the run's credentials pending looks again this often: a quarter second
 * is nothing against the import it waits for, and one cheap query each time. */
#define SCHEDULER_CRED_POLL_MS 250u
/* An idle engine asks at most this often whether another engine (a dead one's leases after kill -9)
 * holds accounts of the run, to say why it waits: once a heartbeat is enough for a message. */
#define SCHEDULER_LEASE_CHECK_MS 5000u
/* A second SIGINT/SIGTERM exits at once with this code: the cli's CLI_EXIT_INTERRUPTED, which the
 * scheduler cannot include (cli/exit.c asserts the two are equal). */
#define SCHEDULER_EXIT_INTERRUPTED 4
/* The options text stored with a job (side settings, the run's options, the row's): the row's
 * options column (ACCOUNTS_FIELD_MAX) and a command line fit; a job whose text does not is refused. */
#define SCHEDULER_JOB_OPTIONS_MAX (1 << 20)
/* A worker's account label "user1@host1 -> user2@host2" for its log lines: two user names and two
 * host names of common length; cut past it. */
#define SCHEDULER_LABEL_MAX 512
/* This host's name (gethostname) as registered with the engine: HOST_NAME_MAX is 64 on Linux.
 * No longer than STATE_ENGINE_HOST_MAX (asserted in scheduler.c), which a lease holder's name
 * read back from the state has. */
#define SCHEDULER_HOST_MAX 256
/* The hint that follows a failed account's error line. */
#define SCHEDULER_HINT_MAX 4096
/* The progress block or line drawn on the terminal (a screenful of lines). */
#define SCHEDULER_DISPLAY_MAX (1 << 20)
/* The other hosts named when a second run joins (their host names and ids). */
#define SCHEDULER_OTHERS_MAX 8192
/* verify's detail of one account (per folder: the counts and VERIFY_UIDS_SHOWN UIDs of each kind). */
#define SCHEDULER_VERIFY_DETAIL_MAX (1 << 20)

struct scheduler_config {
	const char *accounts_path;   /* `run`: the file to import; NULL for `worker` */
	const char *state_arg;       /* --state URL or NULL (IMAPFLEET_STATE, PG*, embedded) */
	const char *key_file;        /* --key-file or NULL (.imapfleet/key) */
	const char *base_dir;        /* where .imapfleet/ lives (NULL = current directory) */
	int store_credentials;       /* store encrypted credentials for worker hosts (default 1) */
	int strict;                  /* --strict: any bad row stops the run before anything is copied */
	int keep_removed;            /* --keep-removed: accounts whose rows left the file still run */
	unsigned workers;            /* 0 = default from cores */
	unsigned max_conns_per_host; /* per server (host:port), each side, across all hosts; 0 =
	                              * SCHEDULER_CONNS_PER_HOST */
	unsigned lease_ms;           /* 0 = 60 s */
	uint64_t server_down_limit_ms; /* a server down this long fails its accounts (0 = never;
	                                * SCHEDULER_SERVER_DOWN_LIMIT_MS) */
	struct retry_policy retry;
	int argc;                    /* account options for every row (the row's own come after) */
	char **argv;
	int progress;                /* 1 = live progress on a terminal, 0 = plain lines, -1 = auto */
	int quiet;
	unsigned max_jobs;           /* stop claiming after this many jobs (tests, 0 = no limit) */
	/* `verify` only */
	const char *only_account;    /* --account ID|USER|USER@HOST */
	int only_failed;             /* --failed: accounts failed or partial, or whose last verify did not pass */
	int deep;                    /* --deep: destination bodies checked against the ledger's SHA-256 */
	const char *manifest_path;   /* --manifest FILE: the signed manifest of the accounts verified */
};

void scheduler_config_init(struct scheduler_config *cfg);

struct scheduler_summary {
	int64_t run_id;
	unsigned rows_imported, rows_bad;
	long jobs_done, jobs_failed, jobs_queued, jobs_running, jobs_cancelled, jobs_partial;
	long jobs_held;    /* left out of this pass: login refused, credential unchanged (counted failed) */
	long jobs_removed; /* left out of this pass: not in the accounts file (counted cancelled) */
	/* The pass (all hosts): its number, kind, whether it ended, and what its accounts did in it. */
	int pass_number, pass_first, pass_ended;
	int64_t pass_copied, pass_matched, pass_skipped, pass_failed;
	int64_t pass_uncertain; /* of pass_copied: copied although identity was not certain */
	uint64_t msgs_copied, bytes_copied, msgs_failed, msgs_skipped;
	uint64_t started_ms, finished_ms;
	int interrupted;
};

/* `run` (accounts_path set) or `worker`. Returns 0 when every job of the run is done, 1 when some
 * failed or ended partial, < 0 when the run could not happen (err: the state store, the accounts file ...). */
int scheduler_run(const struct scheduler_config *cfg, struct scheduler_summary *sum, struct fleet_err *err);

/* `verify [ACCOUNTS]`: every account of the run (the file's, else the newest run) compared on both
 * servers and with the ledger (engine_verify), through the same per-server connection slots and
 * retry policy as `run`; each verdict is recorded in the state and printed to out. Changes nothing
 * on either server. Returns 0 when every account passed, 1 when one did not, < 0 when nothing
 * could be verified (err). */
int scheduler_verify(const struct scheduler_config *cfg, FILE *out, struct fleet_err *err);

/* `sync` with state: the pair becomes a one-job run named after it, so a second sync resumes or
 * makes a delta pass. The job's sides and options are used as given. */
int scheduler_sync_one(const char *state_arg, const char *key_file, const struct engine_job *job,
		       struct engine_stats *stats, struct fleet_err *err);

#endif

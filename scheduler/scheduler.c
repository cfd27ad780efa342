/* scheduler/scheduler.c: the run loop (see scheduler.h). */
#include "scheduler/scheduler.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accounts/accounts.h"
#include "common/alloc.h"
#include "common/file.h"
#include "common/buf.h"
#include "common/escape.h"
#include "common/log.h"
#include "common/util.h"
#include "io/net.h"
#include "scheduler/budget.h"
#include "scheduler/health.h"
#include "scheduler/lanes.h"
#include "scheduler/ledger_state.h"
#include "scheduler/progress.h"
#include "scheduler/token_share.h"
#include "state/manifest.h"
#include "state/secret.h"
#include "state/state.h"
#include "state/store.h"

static atomic_int g_stop; /* lock-free: set by the signal handler, read by every thread */

static void on_stop_signal(int sig)
{
	static const char erase[] = "\r\033[J";
	static const char msg[] = "\nimapfleet: stopping: no new APPEND starts, progress is saved "
				  "(Ctrl-C again to stop at once; run the same command to resume)\n";

	if (atomic_load(&g_stop))
		_exit(SCHEDULER_EXIT_INTERRUPTED); /* open append windows make this safe to resume */
	atomic_store(&g_stop, 1);
	/* The progress display goes first: the message is not written into it. */
	if (fleet_log_overlay_shown() && write(STDERR_FILENO, erase, sizeof(erase) - 1) < 0) {
		/* nothing useful to do in a signal handler */
	}
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing useful to do in a signal handler */
	}
}

void scheduler_config_init(struct scheduler_config *cfg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	memset(cfg, 0, sizeof(*cfg));
	cfg->store_credentials = 1;
	/* Migration is network-bound: several accounts per core keep both servers busy. */
	cfg->workers = (unsigned)(cores > 0 ? cores * SCHEDULER_WORKERS_PER_CORE : SCHEDULER_WORKERS_PER_CORE);
	if (cfg->workers > SCHEDULER_WORKERS_MAX)
		cfg->workers = SCHEDULER_WORKERS_MAX;
	cfg->max_conns_per_host = SCHEDULER_CONNS_PER_HOST;
	cfg->lease_ms = SCHEDULER_HEARTBEAT_MS * SCHEDULER_LEASE_BEATS;
	cfg->server_down_limit_ms = SCHEDULER_SERVER_DOWN_LIMIT_MS;
	cfg->progress = -1;
	retry_policy_init(&cfg->retry);
}

/* ---- shared run state ------------------------------------------------------------------------------ */

struct worker {
	struct sched *s;
	pthread_t tid;
	unsigned index;
	pthread_mutex_t lock;       /* lease, busy, label */
	atomic_int busy;
	atomic_int waiting; /* claimed, waiting for connection slots: renews its own short lease */
	struct state_lease lease;
	uint64_t extended_ms; /* when the full lease was last given (begin, renew): under lock */
	char label[SCHEDULER_LABEL_MAX];
	char server[2][NET_WHERE_MAX]; /* "host:port" of each side while busy, for the progress line */
	atomic_int cancel;
	uint64_t seen_msgs, seen_bytes; /* of the current job, for progress deltas */
	struct progress_account pa;     /* the current job's counters for the display (under lock) */
	atomic_int finished;            /* the thread left its loop (joined at the end) */
};

struct row_ref {
	int64_t job_id;
	size_t row;
};

_Static_assert(SCHEDULER_HOST_MAX <= STATE_ENGINE_HOST_MAX,
	       "a lease holder's host name read back from the state compares whole with this host's");

struct sched {
	const struct scheduler_config *cfg;
	struct state_store *store;
	int64_t run_id, engine_id;
	char host[SCHEDULER_HOST_MAX];
	struct accounts_file *af;
	struct row_ref *rows; /* sorted by job id */
	size_t nrows;
	unsigned char key[STATE_SECRET_KEY_LEN];
	int have_key;
	struct host_limiter *hl;
	struct server_health *health;
	struct worker *w;
	unsigned nworkers;
	atomic_uint_fast64_t msgs, bytes, jobs_started;
	atomic_uint_fast64_t jobs_done, jobs_failed, jobs_retried, jobs_ended;
	char log_dir[PATH_MAX];
	/* Idle waits (no account to claim, no free connection slot, the main loop) end early when
	 * something here changes: a job ends, slots are freed, a worker leaves. Without it the last
	 * idle workers slept out their poll interval after the run was over (half a second of a
	 * 2-second delta pass). */
	pthread_mutex_t idle_lock;
	pthread_cond_t idle_cond;
	unsigned idle_gen;
	/* One idle worker per process looks for work (the poller: claim, next due, wait); the other
	 * idle workers wait on idle_cond without a statement until the poller finds work (then one of
	 * them takes its place and claims at once), the run is over or the process stops. Under
	 * idle_lock. */
	int poller, run_over;
	/* A server this process found down is being parked (state_server_park, in batches): its workers
	 * claim nothing meanwhile, or they would claim the server's jobs the batches have not reached
	 * yet, each a claim and a defer (876 of 19,980 in the refusing case). */
	atomic_int parking;
	/* An idle engine says why it waits when another engine holds accounts of the run (after a
	 * kill -9 the dead engine's leases): asked at most every SCHEDULER_LEASE_CHECK_MS, said once. */
	atomic_uint_fast64_t lease_checked_ms;
	atomic_int lease_told;
	/* A worker host waiting for the run to store its credentials says so once. */
	atomic_int creds_told;
	/* Tenant-level OAuth: tokens shared by all workers of this process; a tenant whose
	 * credentials the token endpoint refused is reported once (oauth_refused lists them). */
	struct oauth_cache *oauth;
	pthread_mutex_t oauth_lock;
	char **oauth_refused;
	size_t noauth_refused;
};

static void sched_wake(struct sched *s)
{
	pthread_mutex_lock(&s->idle_lock);
	s->idle_gen++;
	pthread_cond_broadcast(&s->idle_cond);
	pthread_mutex_unlock(&s->idle_lock);
}

/* Sleeps up to ms, less when sched_wake is called meanwhile. */
static void sched_wait(struct sched *s, unsigned ms)
{
	struct timespec ts;
	unsigned gen;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->idle_lock);
	gen = s->idle_gen;
	/* Not a g_stop check here: the main loop would spin on it while the workers wind down. It
	 * wakes everyone once when it sees the stop (a signal handler cannot). */
	while (gen == s->idle_gen)
		if (pthread_cond_timedwait(&s->idle_cond, &s->idle_lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&s->idle_lock);
}

/* The poller's place (see struct sched): returns -1 when the run is over or the process stops, 0
 * when the place was free at once (this worker just found nothing to claim: it waits first), 1
 * when it was taken after waiting for it (the poller found work: claim at once). */
static int poller_take(struct sched *s)
{
	int waited = 0, rc;

	pthread_mutex_lock(&s->idle_lock);
	while (s->poller && !s->run_over && !atomic_load(&g_stop)) {
		struct timespec ts;

		/* Woken by poller_leave or sched_wake (job ends, the main loop's stop); the timeout is
		 * only a safety net. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&s->idle_cond, &s->idle_lock, &ts);
		waited = 1;
	}
	if (s->run_over || atomic_load(&g_stop))
		rc = -1;
	else {
		s->poller = 1;
		rc = waited;
	}
	pthread_mutex_unlock(&s->idle_lock);
	return rc;
}

/* The poller leaves its place: it found work (another idle worker takes the place), or the run is
 * over (run_over: every idle worker leaves). */
static void poller_leave(struct sched *s, int run_over)
{
	pthread_mutex_lock(&s->idle_lock);
	s->poller = 0;
	if (run_over)
		s->run_over = 1;
	s->idle_gen++;
	pthread_cond_broadcast(&s->idle_cond);
	pthread_mutex_unlock(&s->idle_lock);
}

static int poller_busy(struct sched *s)
{
	int busy;

	pthread_mutex_lock(&s->idle_lock);
	busy = s->poller;
	pthread_mutex_unlock(&s->idle_lock);
	return busy;
}

/* ---- options stored with each job: side settings first, then the row's account options -------------- */

static const char *tls_flag(enum accounts_tls t, int side)
{
	static const char *const f[3][2] = {{"--ssl1", "--ssl2"}, {"--tls1", "--tls2"}, {"--plain1", "--plain2"}};

	return f[t][side];
}

/* Quotes a word for accounts_split_args (single quotes, ' as '\''). */
static void put_word(struct fleet_buf *b, const char *w)
{
	if (b->len)
		fleet_buf_add(b, " ", 1);
	fleet_buf_add(b, "'", 1);
	for (const char *p = w; *p; p++) {
		if (*p == '\'')
			fleet_buf_add_str(b, "'\\''");
		else
			fleet_buf_add(b, p, 1);
	}
	fleet_buf_add(b, "'", 1);
}

/* The options a job runs with, stored with it so `worker` hosts run it the same way: the row's
 * side settings, the run's options (command line), then the row's own options. */
static char *job_options_text(const struct scheduler_config *cfg, const struct account_row *r)
{
	struct fleet_buf b = FLEET_BUF_INIT(SCHEDULER_JOB_OPTIONS_MAX);

	for (int s = 0; s < 2; s++) {
		const struct account_side *sd = &r->side[s];

		put_word(&b, tls_flag(sd->tls, s));
		if (sd->cafile) {
			put_word(&b, s ? "--cafile2" : "--cafile1");
			put_word(&b, sd->cafile);
		}
		if (sd->insecure)
			put_word(&b, s ? "--insecure2" : "--insecure1");
		if (sd->authuser) {
			put_word(&b, s ? "--authuser2" : "--authuser1");
			put_word(&b, sd->authuser);
		}
		if (sd->auth == ACCOUNTS_AUTH_XOAUTH2 || sd->auth == ACCOUNTS_AUTH_OAUTHBEARER) {
			/* A worker host has no accounts file: the auth1/2 column travels as --authmech. */
			put_word(&b, s ? "--authmech2" : "--authmech1");
			put_word(&b, sd->auth == ACCOUNTS_AUTH_XOAUTH2 ? "XOAUTH2" : "OAUTHBEARER");
		}
	}
	/* The command line's options come after the row's side settings, so that `run --tls2`
	 * (say) applies to every row, as asked; the row's own options come last. */
	for (int i = 0; i < cfg->argc; i++)
		put_word(&b, cfg->argv[i]);
	for (int i = 0; i < r->argc; i++)
		put_word(&b, r->argv[i]);
	if (fleet_buf_truncated(&b)) { /* a cut text would run the job with other options */
		fleet_buf_release(&b);
		return NULL;
	}
	return fleet_buf_detach(&b, NULL);
}

/* ---- import ------------------------------------------------------------------------------------------ */

static int cmp_row_ref(const void *a, const void *b)
{
	return FLEET_CMP(((const struct row_ref *)a)->job_id, ((const struct row_ref *)b)->job_id);
}

static const struct account_row *row_for_job(struct sched *s, int64_t job_id)
{
	struct row_ref key = {job_id, 0}, *r;

	if (!s->af || !s->nrows)
		return NULL;
	r = bsearch(&key, s->rows, s->nrows, sizeof(*s->rows), cmp_row_ref);
	return r ? accounts_row(s->af, r->row) : NULL;
}

/* A side's per-login secret source (token, tokenfile, tokencmd or passcmd column) and its kind for
 * the state, or NULL. */
static const char *token_source(const struct account_side *sd, const char **kind)
{
	if (sd->token)
		return *kind = STATE_CRED_TOKEN, sd->token;
	if (sd->tokenfile)
		return *kind = STATE_CRED_TOKENFILE, sd->tokenfile;
	if (sd->tokencmd)
		return *kind = STATE_CRED_TOKENCMD, sd->tokencmd;
	if (sd->passcmd)
		return *kind = STATE_CRED_PASSCMD, sd->passcmd;
	return NULL;
}

/* The keyed hash of the credential side k logs in with: its password (inline or passfile), else the
 * row's token, token file (path and version: a rewritten file is a new token) or command. Returns 1,
 * or 0 when this host cannot name it (no key, tenant credentials, a worker without the row). */
static int side_fingerprint(struct sched *s, const struct account_row *row, int k, const char *pw,
			    unsigned char out[STATE_SECRET_FP_LEN])
{
	const struct account_side *sd = row ? &row->side[k] : NULL;

	if (!s->have_key)
		return 0;
	if (pw) {
		state_secret_fingerprint(s->key, "password", pw, strlen(pw), out);
	} else if (sd && sd->token) {
		state_secret_fingerprint(s->key, "token", sd->token, strlen(sd->token), out);
	} else if (sd && sd->tokenfile) {
		struct stat st;
		char *m;

		memset(&st, 0, sizeof(st));
		stat(sd->tokenfile, &st);
		m = xasprintf("%s\n%lld.%09ld\n%lld\n%llu", sd->tokenfile, (long long)st.st_mtim.tv_sec,
			      st.st_mtim.tv_nsec, (long long)st.st_size, (unsigned long long)st.st_ino);
		state_secret_fingerprint(s->key, "tokenfile", m, strlen(m), out);
		xfree(&m);
	} else if (sd && (sd->tokencmd || sd->passcmd)) {
		const char *cmd = sd->tokencmd ? sd->tokencmd : sd->passcmd;

		state_secret_fingerprint(s->key, "command", cmd, strlen(cmd), out);
	} else {
		return 0;
	}
	return 1;
}

/* Held accounts (their login was refused) whose credential is not the one refused any more. */
static int changed_credentials(struct sched *s, struct state_conn *sc, int64_t **released, size_t *nreleased,
			       struct fleet_err *err)
{
	struct state_auth_hold *h;
	size_t n;

	*released = NULL;
	*nreleased = 0;
	if (state_run_auth_holds(sc, s->run_id, &h, &n, err) < 0)
		return -1;
	*released = xcalloc(n + 1, sizeof(**released));
	for (size_t i = 0; i < n; i++) {
		const struct account_row *row = row_for_job(s, h[i].job_id);
		struct account_secrets sec;
		struct fleet_err perr;
		unsigned char fp[STATE_SECRET_FP_LEN];
		int k = h[i].side - 1, same = 0;

		if (!row || k < 0 || k > 1)
			continue; /* not in the file: removed, not run either way */
		if (accounts_row_load_passwords(row, &sec, &perr) < 0)
			continue; /* unreadable now: it stays held, its attempt would fail anyway */
		same = side_fingerprint(s, row, k, sec.password[k], fp) && CRYPTO_memcmp(fp, h[i].hmac, sizeof(fp)) == 0;
		accounts_secrets_release(&sec);
		if (!same)
			(*released)[(*nreleased)++] = h[i].job_id;
	}
	xfree(&h);
	return 0;
}

struct left_out_ctx {
	const char *kind;
	long shown, total;
};

static int name_left_out(const struct state_job_report *j, void *vctx)
{
	struct left_out_ctx *ctx = vctx;

	if (strcmp(j->left_out, ctx->kind) != 0)
		return 0;
	if (ctx->shown++ < 20)
		log_warn("left out of this pass: account %lld %s@%s -> %s@%s: %s", (long long)j->job_id, j->user1,
			 j->host1, j->user2, j->host2,
			 strcmp(ctx->kind, "credential") == 0
			     ? "its login was refused and the credential has not changed since (fix it, or imapfleet "
			       "retry --account ID)"
			     : "not in the accounts file any more (put the row back, --keep-removed, or imapfleet "
			       "retry --account ID)");
	ctx->total++;
	return 0;
}

/* The next pass over a file that was run before: done, failed and partial accounts are queued
 * again, except those whose refused credential did not change and those no longer in the file
 * (cancelled; their rows put back bring them back). Each account left out is named. */
static int start_pass(struct sched *s, struct state_conn *sc, const int64_t *ids, size_t n, int run_new,
		      struct scheduler_summary *sum, struct fleet_err *err)
{
	struct state_pass_plan plan;
	struct state_pass_counts cnt;
	int64_t *released = NULL;
	int rc;

	memset(&plan, 0, sizeof(plan));
	/* A run this import created holds only the rows just imported: none held, none removed. */
	plan.run_new = run_new;
	if (!run_new && changed_credentials(s, sc, &released, &plan.nreleased, err) < 0)
		return -1;
	plan.in_file = ids;
	plan.nin_file = n;
	plan.released = released;
	plan.keep_removed = s->cfg->keep_removed;
	rc = state_run_start_pass(sc, s->run_id, &plan, &cnt, err);
	xfree(&released);
	if (rc < 0)
		return -1;
	log_info("pass %d (%s) of run %lld", cnt.pass_number, cnt.pass_first ? "first" : "delta", (long long)s->run_id);
	if (cnt.requeued)
		log_info("%ld accounts finished earlier are queued for a new pass", cnt.requeued);
	if (cnt.restored)
		log_info("%ld accounts removed from the accounts file earlier are back and queued", cnt.restored);
	if (plan.nreleased)
		log_info("%zu accounts whose login was refused have a new credential: tried again", plan.nreleased);
	for (int kind = 0; kind < 2; kind++) {
		struct left_out_ctx ctx = {kind ? "removed" : "credential", 0, 0};
		/* Only the failed (held) or cancelled (removed) jobs: not a read of the whole run. */
		struct state_job_filter only = {
		    .state_mask = STATE_JOB_MASK(kind ? STATE_JOB_CANCELLED : STATE_JOB_FAILED)};

		if ((kind == 0 && cnt.held == 0) || run_new)
			continue;
		if (state_report_jobs_page(sc, s->run_id, &only, name_left_out, &ctx, NULL, err) < 0)
			return -1;
		if (ctx.total > ctx.shown)
			log_warn("left out of this pass: %ld more accounts (imapfleet status --state %s)",
				 ctx.total - ctx.shown, kind ? "cancelled" : "failed");
		if (kind)
			sum->jobs_removed = ctx.total;
		else
			sum->jobs_held = ctx.total;
	}
	return 0;
}

/* ".imapfleet/accounts-files" in a state directory: the accounts files that ran with that state,
 * one absolute path a line, so that a new, empty state elsewhere can tell it is not the first. */
#define STATE_FILES_LIST ".imapfleet/accounts-files"

static int listed_in(const char *dir, const char *accounts_real)
{
	char path[PATH_MAX + 64], line[PATH_MAX + 2];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILES_LIST);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		found = strcmp(line, accounts_real) == 0;
	}
	fclose(f);
	return found;
}

static void record_accounts_file(const char *base, const char *accounts_real)
{
	char path[PATH_MAX + 64];
	FILE *f;

	if (listed_in(base, accounts_real))
		return;
	snprintf(path, sizeof(path), "%s/%s", base, STATE_FILES_LIST);
	f = fopen(path, "a");
	if (!f)
		return;
	fprintf(f, "%s\n", accounts_real);
	fclose(f);
}

/* Checks dir for a state (dir/.imapfleet/pg) other than ours; 2 when it ran this accounts file, 1
 * when it is another state, 0 when none. */
static int other_state(const char *dir, const char *ours, const char *accounts_real)
{
	char pg[PATH_MAX + 32], real[PATH_MAX];

	snprintf(pg, sizeof(pg), "%s/.imapfleet/pg", dir);
	if (access(pg, F_OK) != 0 || !realpath(dir, real) || strcmp(real, ours) == 0)
		return 0;
	return listed_in(real, accounts_real) ? 2 : 1;
}

/* A run new to this state, in the embedded default: is there another state where this file ran
 * before (the same command started from another directory)? Said loudly: this pass would re-list
 * and match everything instead of resuming. */
static void warn_new_state(struct sched *s, const char *accounts_real)
{
	char ours[PATH_MAX], dir[PATH_MAX], found[PATH_MAX] = "";
	const char *starts[2];
	int best = 0;

	if (!realpath(s->cfg->base_dir ? s->cfg->base_dir : ".", ours))
		return;
	snprintf(dir, sizeof(dir), "%s", accounts_real); /* the accounts file's directory */
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	starts[0] = ours;
	starts[1] = dir;
	for (int k = 0; k < 2 && best < 2; k++) {
		char d[PATH_MAX];

		snprintf(d, sizeof(d), "%s", starts[k]);
		for (;;) {
			int r = other_state(d[0] ? d : "/", ours, accounts_real);
			char *slash;

			/* Any state next to the accounts file; further up only one that ran this file (a
			 * home directory may hold states of other migrations). */
			if (r == 1 && strcmp(d, dir) != 0)
				r = 0;
			if (r > best) {
				best = r;
				snprintf(found, sizeof(found), "%s", d[0] ? d : "/");
			}
			if (best == 2 || !(slash = strrchr(d, '/')) || !d[0])
				break;
			*slash = '\0';
		}
	}
	if (best == 2)
		log_warn("NEW STATE: %s ran before with the state in %s/.imapfleet, but this run starts a new, empty "
			 "state in %s/.imapfleet: nothing it copied is known here, so every message is listed and matched "
			 "again. To resume the earlier migration, stop now (Ctrl-C) and run from %s (or pass --state)",
			 accounts_real, found, ours, found);
	else if (best == 1)
		log_warn("NEW STATE: first run of %s in %s/.imapfleet, and another state exists in %s/.imapfleet: if "
			 "earlier passes of this migration ran there, stop now (Ctrl-C) and run from %s (or pass --state)",
			 accounts_real, ours, found, found);
}

/* For `worker` hosts: every row's credentials, encrypted with a key the database never sees. The
 * run stores them once its own workers have started (they read the accounts file, not these), so
 * that 50,000 rows' encryption and INSERT do not hold back the first accounts. */
static int store_credentials(struct sched *s, struct state_conn *sc, struct fleet_err *err)
{
	size_t n = s->nrows, m = 0;
	int64_t *cid = xcalloc(2 * n + 1, sizeof(*cid));
	int *side = xcalloc(2 * n + 1, sizeof(*side));
	const char **pt = xcalloc(2 * n + 1, sizeof(*pt));
	const char **kind = xcalloc(2 * n + 1, sizeof(*kind));
	struct account_secrets *secrets = xcalloc(n + 1, sizeof(*secrets));
	int ok;

	for (size_t i = 0; i < n; i++) {
		const struct account_row *row = accounts_row(s->af, s->rows[i].row);
		struct fleet_err perr;

		if (accounts_row_load_passwords(row, &secrets[i], &perr) < 0) {
			log_warn("%s", perr.message); /* the worker that takes the job reports it again */
			continue;
		}
		for (int k = 0; k < 2; k++) {
			const char *kd = STATE_CRED_PASSWORD, *v = secrets[i].password[k];

			if (!v) /* asked for at each login: a worker host gets the source itself */
				v = token_source(&row->side[k], &kd);
			if (!v)
				continue; /* tenant credentials: the run's --oauth options */
			cid[m] = s->rows[i].job_id;
			side[m] = k + 1; /* the state layer numbers sides 1 and 2, like the CSV */
			kind[m] = kd;
			pt[m++] = v;
		}
	}
	ok = state_credential_put_kinds(sc, cid, side, kind, pt, m, s->key, err);
	if (ok == 0) /* stored: worker hosts may take the run's jobs */
		ok = state_run_hold_credentials(sc, s->run_id, 0, err);
	for (size_t i = 0; i < n; i++)
		accounts_secrets_release(&secrets[i]);
	xfree(&secrets);
	xfree(&cid);
	xfree(&side);
	xfree(&pt);
	xfree(&kind);
	return ok;
}

static int import_accounts(struct sched *s, struct state_conn *sc, struct scheduler_summary *sum,
			   struct fleet_err *err)
{
	const struct scheduler_config *cfg = s->cfg;
	struct state_job_spec *specs;
	char **opts;
	int64_t *ids;
	size_t n;
	char real[PATH_MAX];
	char *name;
	int rc = -1, created = 0;

	s->af = accounts_load(cfg->accounts_path,
			      (cfg->strict ? ACCOUNTS_STRICT : 0) | accounts_tenant_flags(cfg->argc, cfg->argv), err);
	if (!s->af)
		return -1;
	for (size_t i = 0; i < accounts_error_count(s->af); i++)
		fprintf(stderr, "imapfleet: %s\n", accounts_error_at(s->af, i)->message);
	n = accounts_count(s->af);
	sum->rows_imported = (unsigned)n;
	sum->rows_bad = (unsigned)accounts_error_count(s->af);
	if (n == 0)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, SCHEDULER_ERR_NO_ACCOUNTS,
				     "%s has no usable account rows", cfg->accounts_path);

	if (!realpath(cfg->accounts_path, real))
		snprintf(real, sizeof(real), "%s", cfg->accounts_path);
	name = xasprintf("run:%s", real);
	if (state_run_get_or_create(sc, name, NULL, &s->run_id, &created, err) < 0) {
		xfree(&name);
		return -1;
	}
	xfree(&name);
	if (state_store_embedded(s->store)) { /* the embedded state: a directory of its own */
		if (created)
			warn_new_state(s, real);
		record_accounts_file(s->cfg->base_dir ? s->cfg->base_dir : ".", real);
	}
	specs = xcalloc(n, sizeof(*specs));
	opts = xcalloc(n, sizeof(*opts));
	ids = xcalloc(n, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		const struct account_row *r = accounts_row(s->af, i);

		opts[i] = job_options_text(cfg, r);
		if (!opts[i]) {
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_USAGE,
				      "%s: the options of %s are longer than %d bytes", cfg->accounts_path,
				      r->side[0].user, SCHEDULER_JOB_OPTIONS_MAX);
			goto out;
		}
		specs[i].host1 = r->side[0].host;
		specs[i].port1 = r->side[0].port;
		specs[i].user1 = r->side[0].user;
		specs[i].host2 = r->side[1].host;
		specs[i].port2 = r->side[1].port;
		specs[i].user2 = r->side[1].user;
		specs[i].options = opts[i];
		specs[i].max_attempts = (int)cfg->retry.max_attempts;
	}
	/* Worker hosts must not claim these rows before their credentials are stored (after our own
	 * workers start): the mark is committed before the rows are. */
	if (cfg->store_credentials &&
	    state_run_hold_credentials(sc, s->run_id, SCHEDULER_CRED_HOLD_MS, err) < 0)
		goto out;
	if ((created ? state_job_insert_new(sc, s->run_id, specs, n, ids, err)
		     : state_job_upsert_many(sc, s->run_id, specs, n, ids, NULL, err)) < 0)
		goto out;
	s->rows = xcalloc(n, sizeof(*s->rows));
	s->nrows = n;
	for (size_t i = 0; i < n; i++) {
		s->rows[i].job_id = ids[i];
		s->rows[i].row = i;
	}
	qsort(s->rows, n, sizeof(*s->rows), cmp_row_ref);
	/* A run over a file that was run before is the next pass (the delta). */
	if (start_pass(s, sc, ids, n, created, sum, err) < 0)
		goto out;

	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		xfree(&opts[i]);
	xfree(&opts);
	xfree(&specs);
	xfree(&ids);
	return rc;
}

/* ---- one job --------------------------------------------------------------------------------------- */

static void on_engine_progress(void *ctx, const struct engine_stats *st)
{
	struct worker *w = ctx;

	atomic_fetch_add(&w->s->msgs, st->msgs_copied - w->seen_msgs);
	atomic_fetch_add(&w->s->bytes, st->bytes_copied - w->seen_bytes);
	w->seen_msgs = st->msgs_copied;
	w->seen_bytes = st->bytes_copied;
	pthread_mutex_lock(&w->lock);
	w->pa.folders_done = st->folders_done;
	w->pa.folders_total = st->folders_total;
	w->pa.msgs_copied = st->msgs_copied;
	w->pa.msgs_todo = st->msgs_todo;
	w->pa.bytes_copied = st->bytes_copied;
	w->pa.bytes_todo = st->bytes_todo;
	w->pa.bytes_unlisted = st->bytes_unlisted;
	w->pa.listing = st->folders_done < st->folders_total || st->folders_total == 0;
	pthread_mutex_unlock(&w->lock);
}

static char *server_key(const char *host, unsigned port)
{
	return xasprintf("%s:%u", host, port);
}

/* The account finished, but did it finish everything? Folders that could not be migrated make it
 * "partial" with the first such failure (and how many there were) as its reason; failed messages
 * are recorded one by one in the ledger and leave it "done". Returns 1 when partial. */
/* The engine returned: what its ledger still holds back is written before the job ends. When that
 * fails after a good run, the attempt fails with it (the open window is matched next time); after a
 * failed run the engine's error stays the one reported. */
static void end_ledger(struct ledger_state *ls, int *rc, struct fleet_err *err)
{
	struct fleet_err ferr;

	fleet_err_clear(&ferr);
	if (ledger_state_flush(ls, &ferr) == 0)
		return;
	if (*rc >= 0) {
		*err = ferr;
		*rc = -1;
	} else {
		log_warn("could not record the last window: %s", ferr.message);
	}
}

static void release_slots(struct sched *s, struct state_conn *sc, const char *key[2], int slot[2]);

static void pass_tally(const struct engine_stats *st, struct state_pass_tally *t)
{
	t->copied = (int64_t)st->msgs_copied;
	t->matched = (int64_t)(st->msgs_already + st->msgs_matched);
	t->skipped = (int64_t)st->msgs_skipped;
	t->failed = (int64_t)st->msgs_failed;
	t->bytes_copied = (int64_t)st->bytes_copied;
	t->uncertain = (int64_t)st->msgs_ambiguous;
}

/* The end of an attempt that returned: done (the account's pass row and its connection slots go
 * in the same statement: one instead of four) or partial (its slots released first, and the pass
 * recorded by the caller). Returns 1 when partial. */
static int finish_job(struct sched *s, struct state_conn *sc, const struct state_lease *lease,
		      const struct engine_stats *st, const char *key[2], int slot[2], int record_pass)
{
	struct fleet_err why, ferr;
	const struct engine_failure *f = NULL;
	int r;

	for (size_t i = 0; i < st->nfailures && !f; i++)
		if (st->failures[i].src_uid == 0)
			f = &st->failures[i];
	if (st->folders_failed == 0 && !record_pass) { /* `sync`: its pass row is its own */
		if (state_job_finish(sc, lease, &ferr) < 0)
			log_error("could not record the account as done: %s", ferr.message);
		release_slots(s, sc, key, slot);
		return 0;
	}
	if (st->folders_failed == 0) {
		struct state_pass_tally t;

		pass_tally(st, &t);
		if (state_job_finish_done(sc, lease, &t, s->engine_id, key, slot, &ferr) == 0) {
			if (slot[0] >= 0 || slot[1] >= 0) {
				for (int k = 0; k < 2; k++)
					if (slot[k] >= 0)
						host_limiter_slot_held(s->hl, key[k], -1);
				slot[0] = slot[1] = -1; /* they went with the statement */
				sched_wake(s);
			}
			return 0;
		}
		log_error("could not record the account as done: %s", ferr.message);
		release_slots(s, sc, key, slot); /* perhaps gone already: released again, on their own */
		return 0;
	}
	release_slots(s, sc, key, slot);
	fleet_err_set(&why, f ? f->cls : FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER, f && f->code[0] ? f->code : SCHEDULER_ERR_FOLDER,
		      "%u folder%s not migrated; folder '%s': %s", st->folders_failed, st->folders_failed == 1 ? "" : "s",
		      f ? f->folder : "?", f ? f->reason : "see the account's log");
	r = state_job_finish_partial(sc, lease, &why, &ferr);
	if (r < 0)
		log_error("could not record the account as partial: %s", ferr.message);
	return 1;
}

/* The secret sources of a job on a host without the accounts file: its stored credentials. A
 * password goes to pw[k]; a token, tokenfile, tokencmd or passcmd goes into wrow->side[k] (the
 * decrypted value owned by pw[k] all the same), for side_cred as if the row were here. */
static void stored_source(struct account_side *sd, const char *kind, char *value, char **pw)
{
	if (strcmp(kind, STATE_CRED_TOKEN) == 0)
		sd->token = value;
	else if (strcmp(kind, STATE_CRED_TOKENFILE) == 0)
		sd->tokenfile = value;
	else if (strcmp(kind, STATE_CRED_TOKENCMD) == 0)
		sd->tokencmd = value;
	else if (strcmp(kind, STATE_CRED_PASSCMD) == 0)
		sd->passcmd = value;
	else
		return; /* a password */
	*pw = NULL; /* not a password: the engine gets it from side_cred */
}

static int load_credentials(struct sched *s, struct state_conn *sc, const struct state_claim *c,
			    const struct account_side_settings side[2], char *pw[2], char *held[2],
			    struct account_row *wrow, struct fleet_err *err)
{
	const struct account_row *row = row_for_job(s, c->lease.job_id);

	pw[0] = pw[1] = NULL;
	if (row) {
		struct account_secrets sec;

		if (accounts_row_load_passwords(row, &sec, err) < 0)
			return -1;
		pw[0] = sec.password[0];
		pw[1] = sec.password[1];
		return 0;
	}
	if (!s->have_key)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, SCHEDULER_ERR_NO_CREDENTIALS,
				     "no credentials for this account on this host: give this worker the key file "
				     "(--key-file) or the accounts file");
	for (int k = 0; k < 2; k++) {
		int r;

		if (side[k].oauth.provider != OAUTH_NONE)
			continue; /* this host's --oauth options give the tokens */
		char kind[STATE_CRED_KIND_MAX + 1];

		r = state_credential_get_kind(sc, c->lease.job_id, k + 1, s->key, &pw[k], kind, err);
		if (r <= 0) {
			if (pw[0])
				state_secret_free(&pw[0]);
			if (held[0])
				state_secret_free(&held[0]);
			if (r == 0)
				fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, SCHEDULER_ERR_NO_CREDENTIALS,
					      "no stored credentials for side %d of this account", k + 1);
			else
				fleet_err_prefix(err, "credentials of side %d", k + 1);
			fleet_err_detail(err, "the run was imported with --no-store-credentials or another key: "
					      "run this worker with the same --key-file, or run the accounts file here");
			return -1;
		}
		if (strcmp(kind, STATE_CRED_TOKENFILE) != 0) /* a path is no secret; a command line may hold one */
			fleet_log_add_secret(pw[k]);
		held[k] = pw[k];
		stored_source(&wrow->side[k], kind, held[k], &pw[k]);
		if (pw[k])
			held[k] = NULL; /* a password: pw[k] owns it */
	}
	return 0;
}

/* Takes a connection slot on both servers (this process's AIMD limit, enforced across hosts through
 * the database). Returns 1 when both were taken, 0 when a server is full. A server this process
 * knows to be full (its own slots fill the limit, or it was seen full a moment ago and nothing was
 * released here since) costs no statement; any other try costs one per server. */
static int take_slots(struct sched *s, struct state_conn *sc, const char *key[2], int64_t job, int slot[2],
		      struct fleet_err *err)
{
	slot[0] = slot[1] = -1;
	for (int k = 0; k < 2; k++)
		if (host_limiter_cooldown_ms(s->hl, key[k]) > 0 || host_limiter_known_full(s->hl, key[k]))
			return 0;
	for (int k = 0; k < 2; k++) {
		int limit = (int)host_limiter_limit(s->hl, key[k]), held = 0;
		int r = state_slot_acquire(sc, key[k], limit, s->engine_id, job, &slot[k], &held, err);

		if (r == 0) {
			host_limiter_slot_held(s->hl, key[k], 1);
			continue;
		}
		if (r > 0)
			host_limiter_slots_full(s->hl, key[k], (unsigned)held);
		if (k == 1 && slot[0] >= 0) {
			state_slot_release(sc, key[0], slot[0], s->engine_id, NULL);
			host_limiter_slot_held(s->hl, key[0], -1);
		}
		slot[0] = slot[1] = -1;
		return r < 0 ? -1 : 0;
	}
	return 1;
}

/* The common case of take_slots and state_job_begin in one statement: two different servers, both
 * with a limit and neither known to be full. Returns 1 when both slots are taken and the job begun,
 * 0 when not tried or a server had no free slot number (nothing held: take_slots goes on), -1. */
static int take_slots_begin(struct sched *s, struct state_conn *sc, const char *key[2],
			    const struct state_lease *lease, int slot[2], struct fleet_err *err)
{
	int limit[2], r;

	slot[0] = slot[1] = -1;
	if (strcmp(key[0], key[1]) == 0)
		return 0;
	for (int k = 0; k < 2; k++) {
		if (host_limiter_cooldown_ms(s->hl, key[k]) > 0 || host_limiter_known_full(s->hl, key[k]))
			return 0;
		limit[k] = (int)host_limiter_limit(s->hl, key[k]);
		if (limit[k] <= 0)
			return 0;
	}
	r = state_slots_acquire_begin(sc, lease, key, limit, s->cfg->lease_ms, slot, err);
	if (r <= 0)
		return r;
	for (int k = 0; k < 2; k++)
		host_limiter_slot_held(s->hl, key[k], 1);
	return 1;
}

static void release_slots(struct sched *s, struct state_conn *sc, const char *key[2], int slot[2])
{
	int freed = 0;

	for (int k = 0; k < 2; k++)
		if (slot[k] >= 0) {
			state_slot_release(sc, key[k], slot[k], s->engine_id, NULL);
			host_limiter_slot_held(s->hl, key[k], -1);
			slot[k] = -1;
			freed = 1;
		}
	if (freed)
		sched_wake(s);
}

/* ---- several connection pairs for one account (scheduler/lanes.h) ------------------------------- */

struct lane_ctx {
	struct sched *s;
	struct worker *w;
	const char **keys;
	int64_t job_id;
};

static int lane_take(void *ctx, struct state_conn *sc, int slot[2])
{
	struct lane_ctx *lc = ctx;
	struct fleet_err err;

	return take_slots(lc->s, sc, lc->keys, lc->job_id, slot, &err) > 0;
}

static void lane_release(void *ctx, struct state_conn *sc, int slot[2])
{
	struct lane_ctx *lc = ctx;

	release_slots(lc->s, sc, lc->keys, slot);
}

static void lane_progress_fwd(void *ctx, const struct engine_stats *st)
{
	struct lane_ctx *lc = ctx;

	on_engine_progress(lc->w, st);
}

/* Connection pairs the account may use: --conns-per-account within the providers' per-user limits;
 * one where lanes do not apply (daily budgets count per attempt, a token hook uses this thread's
 * state connection, and modes that copy nothing). */
static unsigned account_lanes(const struct engine_opts *o, const struct engine_job *job, int budget)
{
	unsigned n = o->conns_per_account ? o->conns_per_account : 1;

	for (int k = 0; k < 2; k++) {
		if (o->user_conns[k] && o->user_conns[k] < n)
			n = o->user_conns[k];
		if (job->side[k].cred && job->side[k].cred->kind == CRED_HOOK)
			n = 1;
	}
	if (budget || o->dry || o->justlogin || o->justfolders)
		n = 1;
	return n;
}

/* The account's own log, named after it so that `ls .imapfleet/logs/alice*` finds it:
 * USER1@HOST1-ID.log, with every byte but letters, digits and "._@+-" as '_' (a user name is
 * never a path), the ID that status and retry use keeping two pairs of one user apart. */
static FILE *open_job_log(struct sched *s, int64_t job_id, const char *user1, const char *host1)
{
	char path[PATH_MAX + 64], name[200];
	size_t n = 0;
	FILE *f;

	for (const char *p = user1; *p && n < 80; p++)
		name[n++] = (isalnum((unsigned char)*p) && (unsigned char)*p < 0x80) || strchr("._@+-", *p) ? *p : '_';
	name[n++] = '@';
	for (const char *p = host1; *p && n < 160; p++)
		name[n++] = (isalnum((unsigned char)*p) && (unsigned char)*p < 0x80) || strchr(".-", *p) ? *p : '_';
	name[n] = '\0';
	if (name[0] == '.')
		name[0] = '_';
	snprintf(path, sizeof(path), "%s/%s-%lld.log", s->log_dir, name, (long long)job_id);
	f = fopen(path, "a");
	if (f)
		fchmod(fileno(f), 0600);
	return f;
}

/* How one side logs in (accounts_side_cred), with the run's token cache and the state's store. */
static int side_cred(struct sched *s, const struct account_row *row, int k, const struct account_side_settings *set,
		     const char *user, const struct token_share *share, struct accounts_cred *out)
{
	return accounts_side_cred(row ? &row->side[k] : NULL, k, set, user, s->oauth, share ? &share->ops : NULL, out);
}

/* Everything one attempt logs in with: the passwords (pw), a worker host's stored token sources
 * (held, shown to side_cred as the row wrow), each side's secret source and the token store. */
struct logins {
	char *pw[2], *held[2];
	struct account_row wrow;
	struct accounts_cred creds[2];
	struct token_share share;
};

static void logins_init(struct logins *lg, struct sched *s, struct state_conn *sc)
{
	memset(lg, 0, sizeof(*lg));
	token_share_init(&lg->share, sc, s->key);
}

static int logins_load(struct logins *lg, struct sched *s, struct state_conn *sc, const struct state_claim *c,
		       const struct account_side_settings side[2], struct fleet_err *err)
{
	return load_credentials(s, sc, c, side, lg->pw, lg->held, &lg->wrow, err);
}

/* Gives the engine's sides their password or secret source and mechanism. */
static int logins_apply(struct logins *lg, struct sched *s, int64_t job_id, const struct account_side_settings side[2],
			struct engine_job *job, struct fleet_err *err)
{
	const struct account_row *row = row_for_job(s, job_id);

	for (int k = 0; k < 2; k++) {
		job->side[k].password = lg->pw[k];
		if (side_cred(s, row ? row : &lg->wrow, k, &side[k], job->side[k].user, s->have_key ? &lg->share : NULL,
			      &lg->creds[k]) < 0)
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, FLEET_ERR_CODE_USAGE,
					     "side %d: the tokencmd%d/passcmd%d command cannot be split into words", k + 1,
					     k + 1, k + 1);
		job->side[k].cred = lg->creds[k].src.kind != CRED_NONE ? &lg->creds[k].src : NULL;
		job->side[k].auth = lg->creds[k].auth;
	}
	return 0;
}

/* The account ended: the redaction table forgets its secrets and they are wiped. */
static void logins_release(struct logins *lg)
{
	for (int k = 0; k < 2; k++) {
		if (lg->pw[k]) {
			fleet_log_remove_secret(lg->pw[k]);
			OPENSSL_cleanse(lg->pw[k], strlen(lg->pw[k]));
			xfree(&lg->pw[k]);
		}
		if (lg->held[k]) {
			fleet_log_remove_secret(lg->held[k]);
			state_secret_free(&lg->held[k]);
		}
		accounts_cred_release(&lg->creds[k]);
	}
}

/* A token endpoint that refused the tenant's credentials: one run-level message per tenant; the
 * accounts that fail after it (from the cache, without asking again) are logged at debug level. */
/* The refusal without the account the engine put in front of it ("destination u@h: "). */
static const char *tenant_text(const struct fleet_err *err)
{
	const char *p = strstr(err->message, ": ");

	return p ? p + 2 : err->message;
}

static int tenant_refusal_is_new(struct sched *s, const struct fleet_err *err)
{
	int fresh = 1;
	const char *text = tenant_text(err);

	pthread_mutex_lock(&s->oauth_lock);
	for (size_t i = 0; i < s->noauth_refused && fresh; i++)
		fresh = strcmp(s->oauth_refused[i], text) != 0;
	if (fresh) {
		s->oauth_refused = xrealloc(s->oauth_refused, (s->noauth_refused + 1) * sizeof(*s->oauth_refused));
		s->oauth_refused[s->noauth_refused++] = xstrdup(text);
	}
	pthread_mutex_unlock(&s->oauth_lock);
	return fresh;
}

/* The attempt failed at the connection level on server key (refused, reset, closed, timed out). Is
 * the server down, or was it this account? A probe (a fresh connection, no login) says. Down: the
 * server is marked down (one line, once), its queued accounts are parked, and this one waits too
 * without the attempt counting against it; returns 1. The server answers: returns 0 (the account's
 * own failure, retried as usual). A server given up: err becomes its reason; returns 0. */
static int server_fault(struct sched *s, struct state_conn *sc, const struct state_claim *c, const char *label,
			const char *key, const struct io_endpoint *ep, struct fleet_err *err)
{
	enum health_state hs = server_health_state(s->health, key);
	struct fleet_err perr, ferr;

	if (hs == HEALTH_UP) {
		if (server_health_probe(ep, &perr) == 0)
			return 0;
		if (server_health_mark_down(s->health, key, ep, err)) {
			long parked = 0;
			int r;

			atomic_fetch_add(&s->parking, 1);
			r = state_server_park(sc, s->run_id, s->engine_id, ep->host, ep->port, &parked, &ferr);
			atomic_fetch_sub(&s->parking, 1);
			sched_wake(s);
			if (r < 0)
				log_warn("could not park the accounts of %s: %s", key, ferr.message);
			fleet_log_set_context(NULL, NULL); /* a server's line, not this account's */
			log_warn("server %s is down (%s): its %ld queued accounts wait, probed every %u s at most; "
				 "attempts meanwhile do not count; they fail if it stays down %u s",
				 key, perr.message, parked, HEALTH_PROBE_CAP_MS / 1000,
				 (unsigned)(s->cfg->server_down_limit_ms / 1000));
			fleet_log_set_context(label, NULL);
		}
		hs = server_health_state(s->health, key);
	}
	if (hs == HEALTH_GAVE_UP) {
		server_health_reason(s->health, key, err);
		return 0;
	}
	log_debug("attempt %d not counted: server %s is down (%s); the account waits for it", c->attempt, key,
		  err->message);
	if (state_job_defer(sc, &c->lease, err, 0, 1, &ferr) < 0)
		log_warn("could not put the account back to wait for %s: %s", key, ferr.message);
	return 1;
}

/* The server refused side k's login: later passes leave the account out until that credential
 * changes (a server with lockout or fail2ban locks the user out after a few refusals). Not for a
 * credential that never reached the server (a command that failed, a token endpoint that refused). */
static void hold_refused_credential(struct sched *s, struct state_conn *sc, const struct state_claim *c,
				    const struct logins *lg, int k, const struct fleet_err *why)
{
	const struct account_row *row = row_for_job(s, c->lease.job_id);
	unsigned char fp[STATE_SECRET_FP_LEN];
	struct fleet_err herr;

	if (strcmp(why->code, CRED_ERR_CREDENTIAL) == 0 || strncmp(why->code, OAUTH_ERR_PREFIX, strlen(OAUTH_ERR_PREFIX)) == 0 ||
	    lg->creds[k].src.kind == CRED_HOOK || !side_fingerprint(s, row ? row : &lg->wrow, k, lg->pw[k], fp))
		return;
	if (state_job_hold_auth(sc, c->lease.job_id, k + 1, fp, &herr) < 0)
		log_warn("could not record the refused credential: %s (the next pass tries it again)", herr.message);
	else
		log_warn("later passes leave this account out until the %s credential changes (or imapfleet retry "
			 "--account %lld)",
			 k ? "destination" : "source", (long long)c->lease.job_id);
}

/* The attempt's counts, added to the account's row of its pass (docs/reports.md: copied, already
 * there, skipped, failed). */
static void record_in_pass(struct state_conn *sc, int64_t job_id, const char *outcome, const struct engine_stats *st)
{
	struct state_pass_tally t;
	struct fleet_err perr;

	pass_tally(st, &t);
	if (state_pass_record(sc, job_id, outcome, &t, &perr) < 0)
		log_warn("could not record the attempt in its pass: %s", perr.message);
}

static unsigned wait_lease_ms(const struct scheduler_config *cfg)
{
	return cfg->lease_ms < SCHEDULER_WAIT_LEASE_MS ? cfg->lease_ms : SCHEDULER_WAIT_LEASE_MS;
}

/* Where side k's secret comes from, for a message ("password from /etc/pw/u1"). */
static void secret_origin(const struct account_row *row, int k, struct fleet_buf *out)
{
	const struct account_side *sd = &row->side[k];

	if (sd->passfile)
		fleet_buf_addf(out, "password from %s", sd->passfile);
	else if (sd->password)
		fleet_buf_addf(out, "password inline (column password%d)", k + 1);
	else if (sd->passcmd)
		fleet_buf_addf(out, "password from the passcmd%d command", k + 1);
	else if (sd->tokenfile)
		fleet_buf_addf(out, "token from %s", sd->tokenfile);
	else if (sd->tokencmd)
		fleet_buf_addf(out, "token from the tokencmd%d command", k + 1);
	else if (sd->token)
		fleet_buf_addf(out, "token inline (column token%d)", k + 1);
	else
		fleet_buf_addf(out, "token from the tenant credentials (--oauth%d)", k + 1);
}

/* An account that failed for good: where it came from (the accounts file's line, where its secret
 * is read) and what to do next, by cause (docs/operations.md has the same table). */
static void failure_hint(struct sched *s, int64_t job_id, const struct fleet_err *err, int side, struct fleet_buf *out)
{
	const struct account_row *row = row_for_job(s, job_id);
	char retry[96];

	snprintf(retry, sizeof(retry), "`imapfleet retry --account %lld`", (long long)job_id);
	if (row)
		fleet_buf_addf(out, "line %u of %s", row->line, s->cfg->accounts_path);
	else
		fleet_buf_addf(out, "account %lld (credentials stored by the host that ran the accounts file)",
				  (long long)job_id);
	if (err->cls == FLEET_ERR_AUTH) {
		for (int k = 0; k < 2 && row; k++) {
			if (side >= 0 && side != k)
				continue;
			fleet_buf_addf(out, ", %s %s@%s: ", k ? "destination" : "source", row->side[k].user,
					  row->side[k].host);
			secret_origin(row, k, out);
		}
		fleet_buf_addf(out, ": check it (and that the account may log in over IMAP), then %s and run "
				       "again",
				  retry);
	} else if (strcmp(err->code, IMAP_CODE_OVERQUOTA) == 0) {
		fleet_buf_addf(out, ": once the destination's quota is raised (by the shortfall above when it is "
				       "given), %s and run again",
				  retry);
	} else if (strcmp(err->code, IO_ERR_TLS_VERIFY) == 0) {
		fleet_buf_addf(out, ": add cafile%d to the row (or --cafile%d to the run), then %s and run again",
				  side >= 0 ? side + 1 : 1, side >= 0 ? side + 1 : 1, retry);
	} else if (err->cls == FLEET_ERR_TRANSIENT || err->cls == FLEET_ERR_THROTTLED) {
		fleet_buf_addf(out, ": the server kept failing; when it is back, %s and run again (lower "
				       "--max-conns-per-host if it throttles)",
				  retry);
	} else if (err->cls == FLEET_ERR_BUG) {
		fleet_buf_addf(out, ": an imapfleet bug; report it with the account's log (%s)", s->log_dir);
	} else {
		fleet_buf_addf(out, ": fix the cause above, then %s and run again", retry);
	}
}

/* The job the engine runs for claim c: both sides' servers, users and side settings (the caller
 * adds credentials, options and the rest). */
static void job_init(struct engine_job *job, const char *label, const struct state_claim *c,
		     const struct account_side_settings side[2])
{
	memset(job, 0, sizeof(*job));
	job->label = label;
	for (int k = 0; k < 2; k++) {
		job->side[k].ep.host = k ? c->host2 : c->host1;
		job->side[k].ep.port = (uint16_t)(k ? c->port2 : c->port1);
		job->side[k].ep.mode = side[k].mode;
		job->side[k].ep.cafile = side[k].cafile;
		job->side[k].ep.insecure = side[k].insecure;
		job->side[k].ep.label = k ? "dst" : "src";
		job->side[k].user = k ? c->user2 : c->user1;
		job->side[k].authuser = side[k].authuser;
	}
}

/* What an attempt (run_job, verify_one) built from its claim's row, released. */
static void job_inputs_release(struct engine_opts *opts, struct logins *lg, char *keys[2], char ***argv, char ***rest,
			       char ***row_argv)
{
	engine_opts_release(opts);
	logins_release(lg);
	for (int k = 0; k < 2; k++)
		xfree(&keys[k]);
	xfree(argv);
	xfree(rest);
	if (*row_argv)
		accounts_free_args(row_argv);
}

/* claimed_ms: when the claim was made (its short lease runs from then). */
static void run_job(struct worker *w, struct state_conn *sc, struct state_claim *c, uint64_t claimed_ms)
{
	struct sched *s = w->s;
	const struct scheduler_config *cfg = s->cfg;
	struct account_side_settings side[2];
	char **rest = NULL;
	int nrest = 0;
	struct engine_opts opts;
	struct engine_job job;
	struct engine_stats st;
	struct fleet_err err, ferr;
	struct ledger_state *ls = NULL;
	struct budget_attempt ba;
	char **row_argv = NULL, **argv = NULL;
	int row_argc = 0, argc = 0, rc, slot[2] = {-1, -1}, ran = 0, begun = 0;
	struct logins lg;
	char *keys[2];
	const char *ckeys[2];
	char why[256];
	const char *outcome = NULL; /* how the attempt ended, for its pass */
	FILE *logf;
	struct lane_ctx lc;
	struct lanes *lanes = NULL;

	memset(&st, 0, sizeof(st));
	logins_init(&lg, s, sc);
	memset(&ba, 0, sizeof(ba));
	st.error_side = -1;
	engine_opts_init(&opts);
	memset(side, 0, sizeof(side));
	fleet_err_clear(&err);
	keys[0] = server_key(c->host1, c->port1);
	keys[1] = server_key(c->host2, c->port2);
	ckeys[0] = keys[0];
	ckeys[1] = keys[1];

	pthread_mutex_lock(&w->lock);
	snprintf(w->label, sizeof(w->label), "%s@%s -> %s@%s", c->user1, c->host1, c->user2, c->host2);
	snprintf(w->server[0], sizeof(w->server[0]), "%s:%u", c->host1, c->port1);
	snprintf(w->server[1], sizeof(w->server[1]), "%s:%u", c->host2, c->port2);
	w->lease = c->lease;
	atomic_store(&w->waiting, 1);
	atomic_store(&w->busy, 1);
	atomic_store(&w->cancel, atomic_load(&g_stop));
	w->seen_msgs = w->seen_bytes = 0;
	memset(&w->pa, 0, sizeof(w->pa));
	fleet_escape_term_into(w->pa.label, sizeof(w->pa.label), w->label, strcspn(w->label, " "));
	w->pa.listing = 1;
	w->pa.job_id = c->lease.job_id;
	pthread_mutex_unlock(&w->lock);

	logf = open_job_log(s, c->lease.job_id, c->user1, c->host1);
	fleet_log_set_thread_sink(logf);
	fleet_log_set_context(w->label, NULL);
	atomic_fetch_add(&s->jobs_started, 1);

	/* Options: the run's, then the row's (side settings first). */
	if (c->options && *c->options && accounts_split_args(c->options, &row_argc, &row_argv, why, sizeof(why)) < 0) {
		fleet_err_set(&err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, FLEET_ERR_CODE_USAGE, "account options: %s", why);
		goto failed;
	}
	argv = xcalloc((size_t)(cfg->argc + row_argc) + 1, sizeof(*argv));
	if (!s->af) /* a worker: its own account options come on top of the stored ones */
		for (int i = 0; i < cfg->argc; i++)
			argv[argc++] = cfg->argv[i];
	for (int i = 0; i < row_argc; i++)
		argv[argc++] = row_argv[i];
	rest = xcalloc((size_t)argc + 1, sizeof(*rest));
	if (accounts_take_side_settings(argc, argv, side, rest, &nrest, &err) < 0 ||
	    engine_opts_parse(&opts, nrest, rest, &err) < 0)
		goto failed;
	for (int k = 0; k < 2; k++)
		if (!side[k].mode_set) /* the accounts file always sets it; a default for old rows */
			side[k].mode = io_mode_for_port(k ? c->port2 : c->port1);
	for (int k = 0; k < 2; k++)
		if (side[k].mode == IO_TLS_PLAIN)
			log_warn("side %d uses cleartext IMAP (plain): its password crosses the network unencrypted",
				 k + 1);
	if (logins_load(&lg, s, sc, c, side, &err) < 0) {
		if (strcmp(err.code, STATE_ERR_KEY_MISMATCH) == 0) {
			/* This host has another key: leave the account to a host that can read it. */
			log_error("%s: this host's key file is not the one the run was imported with; stopping "
				  "this host (copy .imapfleet/key from the importing host)",
				  err.message);
			atomic_store(&g_stop, 1);
			fleet_err_set(&err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_CANCELLED, "wrong key file");
		}
		goto failed;
	}

	job_init(&job, w->label, c, side);
	/* A server known to be down gets no attempt: the account waits for it (or fails with the
	 * server's reason once it was given up). */
	for (int k = 0; k < 2; k++) {
		enum health_state hs = server_health_state(s->health, keys[k]);

		if (hs == HEALTH_GAVE_UP) {
			server_health_reason(s->health, keys[k], &err);
			goto failed;
		}
		if (hs == HEALTH_DOWN) {
			fleet_err_set(&err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, HEALTH_ERR_SERVER_DOWN,
				      "server %s is down: the account waits until it answers", keys[k]);
			if (state_job_defer(sc, &c->lease, &err, 0, 1, &ferr) < 0)
				log_warn("could not put the account back to wait for %s: %s", keys[k], ferr.message);
			goto out;
		}
	}

	begun = take_slots_begin(s, sc, ckeys, &c->lease, slot, &err);
	if (begun < 0)
		goto failed;
	for (uint64_t renewed = claimed_ms; !begun;) {
		int r = take_slots(s, sc, ckeys, c->lease.job_id, slot, &err);

		if (r < 0)
			goto failed;
		if (r > 0)
			break;
		if (atomic_load(&g_stop) || atomic_load(&w->cancel)) {
			fleet_err_set(&err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_CANCELLED, "stopped on request");
			goto failed;
		}
		/* Full: wait here, keeping the claim with its short lease (a lost one is another host's
		 * now: nothing started here, nothing to undo). */
		if (fleet_now_ms() - renewed >= SCHEDULER_WAIT_RENEW_MS) {
			if (state_job_renew(sc, &c->lease, wait_lease_ms(cfg), &err) < 0 &&
			    strcmp(err.code, STATE_ERR_LEASE_LOST) == 0)
				goto failed;
			renewed = fleet_now_ms();
		}
		sched_wait(s, SCHEDULER_SLOT_POLL_MS + (unsigned)(rand() % SCHEDULER_SLOT_JITTER_MS));
	}
	/* The slots are ours: the attempt starts, under the full lease the main thread renews. */
	if (!begun && state_job_begin(sc, &c->lease, cfg->lease_ms, &err) < 0)
		goto failed;
	pthread_mutex_lock(&w->lock);
	w->extended_ms = fleet_now_ms();
	pthread_mutex_unlock(&w->lock);
	atomic_store(&w->waiting, 0);

	if (logins_apply(&lg, s, c->lease.job_id, side, &job, &err) < 0)
		goto failed;
	job.opts = &opts;
	job.cancel = &w->cancel;
	job.progress = on_engine_progress;
	job.progress_ctx = w;
	if (budget_begin(sc, &c->lease, &opts, &ba, &err) < 0)
		goto failed;
	if (ba.active)
		job.budget = &ba.b;
	ls = ledger_state_new(sc, &c->lease);
	job.ledger = ledger_state_bind(ls);
	lc.s = s;
	lc.w = w;
	lc.keys = ckeys;
	lc.job_id = c->lease.job_id;
	if (account_lanes(&opts, &job, ba.active) > 1) {
		struct lanes_env env;

		memset(&env, 0, sizeof(env));
		env.store = s->store;
		env.lease = c->lease;
		env.sc = sc;
		env.job = &job;
		env.max = account_lanes(&opts, &job, ba.active);
		env.take = lane_take;
		env.release = lane_release;
		env.progress = lane_progress_fwd;
		env.ctx = &lc;
		lanes = lanes_new(&env);
		lanes_bind(lanes, &job);
	}
	log_info("attempt %d of %d started", c->attempt, c->max_attempts);
	rc = engine_run(&job, &st, &err);
	if (lanes) {
		lanes_finish(lanes, &rc, &st, &err);
		lanes_free(&lanes);
	}
	ran = 1;
	end_ledger(ls, &rc, &err);
	budget_end(sc, &c->lease, &ba);
	on_engine_progress(w, &st);
	if (rc >= 0) {
		int partial = finish_job(s, sc, &c->lease, &st, ckeys, slot, 1);

		outcome = partial ? "partial" : NULL; /* done: its pass row is written by the finish */
		host_limiter_success(s->hl, keys[0]);
		host_limiter_success(s->hl, keys[1]);
		atomic_fetch_add(&s->jobs_done, 1);
		if (partial)
			log_warn("partial: %u of %u folders not migrated (see above); the next pass tries them again",
				 st.folders_failed, st.folders_total);
		if (st.msgs_ambiguous)
			log_warn("identity not certain: %llu messages copied although the destination may hold them "
				 "(look-alikes or no Message-ID; check for duplicates)",
				 (unsigned long long)st.msgs_ambiguous);
		log_info("%s: %llu messages copied (%.1f MB), %llu already there, %llu flag changes, "
			 "%llu deleted, %llu failed, %llu skipped",
			 partial ? "partial" : "done",
			 (unsigned long long)st.msgs_copied, (double)st.bytes_copied / 1048576.0,
			 (unsigned long long)(st.msgs_already + st.msgs_matched), (unsigned long long)st.flags_updated,
			 (unsigned long long)st.msgs_deleted, (unsigned long long)st.msgs_failed,
			 (unsigned long long)st.msgs_skipped);
		goto out;
	}

failed:
	release_slots(s, sc, ckeys, slot);
	if (strcmp(err.code, STATE_ERR_LEASE_LOST) == 0) {
		log_warn("another engine took this account over (its lease expired): stopped here");
		goto out;
	}
	if (strcmp(err.code, FLEET_ERR_CODE_CANCELLED) == 0 || strcmp(err.code, STATE_ERR_CONNECTION) == 0) {
		/* Stopped on request, or the state database went away under the attempt (it was waited
		 * for, and is back or given up): not the account's failure, not counted. */
		if (strcmp(err.code, STATE_ERR_CONNECTION) == 0)
			log_warn("attempt %d stopped: %s; the account goes back to the queue (not counted)",
				 c->attempt, err.message);
		outcome = "interrupted";
		if (state_job_release(sc, &c->lease, &ferr) < 0)
			log_warn("could not put the account back in the queue: %s (it returns when its lease expires)",
				 ferr.message);
		goto out;
	}
	if (ran && err.cls == FLEET_ERR_TRANSIENT && st.error_side >= 0 &&
	    server_fault(s, sc, c, w->label, keys[st.error_side], &job.side[st.error_side].ep, &err)) {
		outcome = "waiting";
		goto out;
	}
	if (err.cls == FLEET_ERR_THROTTLED && st.error_side >= 0 && !budget_err_is_daily(&err)) {
		host_limiter_throttled(s->hl, keys[st.error_side], err.retry_after_ms);
		log_warn("%s throttles: its connection limit here is now %u", keys[st.error_side],
			 host_limiter_limit(s->hl, keys[st.error_side]));
	}
	/* A provider's daily limit, a daily budget or a throttle: the account is parked. */
	if (err.cls == FLEET_ERR_THROTTLED) {
		int parked = budget_park(sc, &c->lease, &cfg->retry, &opts, &ba, &err, !opts.dry && st.msgs_copied > 0, &ferr);

		if (parked == 1) {
			atomic_fetch_add(&s->jobs_retried, 1);
			goto out;
		}
		if (parked == 2) {
			atomic_fetch_add(&s->jobs_failed, 1);
			goto out;
		}
		if (strcmp(ferr.code, STATE_ERR_LEASE_LOST) == 0) {
			log_warn("another engine took this account over (its lease expired): stopped here");
			goto out;
		}
		if (ferr.message[0])
			log_warn("could not park the account: %s; recording the failure instead", ferr.message);
	}
	{
		unsigned delay = 0;
		int requeued = 0;
		double rnd;
		/* Copied messages are committed progress: such an attempt is not held against the
		 * account's retry budget, and it retries after the first, short backoff step. */
		int progressed = !opts.dry && st.msgs_copied > 0;

		unsigned char b[4];
		RAND_bytes(b, sizeof(b));
		rnd = (double)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]) / 4294967296.0;
		retry_policy_decide(&cfg->retry, &err, progressed ? 1u : (unsigned)c->attempt, rnd, &delay);
		if (state_job_fail(sc, &c->lease, &err, delay, progressed, &requeued, &ferr) < 0 &&
		    strcmp(ferr.code, STATE_ERR_LEASE_LOST) != 0) {
			/* A failure must be recorded whatever its text: a job left running is claimed
			 * again every lease period (a new refused LOGIN each time: a lockout risk). Once
			 * more with a plain text and the same class. */
			struct fleet_err plain = err;

			log_error("could not record the failure: %s; recording it without its text", ferr.message);
			snprintf(plain.message, sizeof(plain.message), "%s error (its text could not be stored)",
				 fleet_err_class_name(err.cls));
			plain.detail[0] = '\0';
			if (state_job_fail(sc, &c->lease, &plain, delay, progressed, &requeued, &ferr) < 0)
				log_error("could not record the failure: %s", ferr.message);
		}
		outcome = requeued ? "retry" : "failed";
		if (requeued) {
			atomic_fetch_add(&s->jobs_retried, 1);
			log_warn("attempt %d failed (%s, %s): %s; retry in %.1f s%s", c->attempt,
				 fleet_err_class_name(err.cls), err.code[0] ? err.code : "-", err.message, delay / 1000.0,
				 progressed ? " (it copied messages: not counted against --max-attempts)" : "");
		} else if (err.scope == FLEET_SCOPE_RUN && strncmp(err.code, OAUTH_ERR_PREFIX, strlen(OAUTH_ERR_PREFIX)) == 0) {
			atomic_fetch_add(&s->jobs_failed, 1);
			if (tenant_refusal_is_new(s, &err))
				log_error("%s%s%s; every account with these credentials fails without another request "
					  "to the token endpoint: fix them and run again", tenant_text(&err),
					  err.detail[0] ? "; " : "", err.detail);
			else
				log_debug("account failed (%s, %s): %s", fleet_err_class_name(err.cls), err.code,
					  err.message);
		} else {
			struct fleet_buf hint = FLEET_BUF_INIT(SCHEDULER_HINT_MAX);

			atomic_fetch_add(&s->jobs_failed, 1);
			failure_hint(s, c->lease.job_id, &err, st.error_side, &hint);
			(void)fleet_buf_mark_cut(&hint);
			log_error("account failed (%s, %s): %s%s%s; %s", fleet_err_class_name(err.cls),
				  err.code[0] ? err.code : "-", err.message, err.detail[0] ? "; " : "", err.detail,
				  fleet_buf_cstr(&hint));
			fleet_buf_release(&hint);
			if (ran && err.cls == FLEET_ERR_AUTH && st.error_side >= 0)
				hold_refused_credential(s, sc, c, &lg, st.error_side, &err);
		}
	}
out:
	if (outcome)
		record_in_pass(sc, c->lease.job_id, outcome, &st);
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->busy, 0);
	atomic_store(&w->waiting, 0);
	pthread_mutex_unlock(&w->lock);
	atomic_fetch_add(&s->jobs_ended, 1);
	fleet_log_set_context(NULL, NULL);
	fleet_log_set_thread_sink(NULL);
	if (logf)
		fclose(logf);
	ledger_state_free(&ls);
	engine_stats_release(&st);
	job_inputs_release(&opts, &lg, keys, &argv, &rest, &row_argv);
}

/* How long an idle worker waits before claiming again: until the next job is due or lease
 * expires, at most a short poll (jobs requeued by other hosts are due at once), and -1 when the
 * run is over. Read from the claim indexes, never a count over the run. */
static long idle_wait_ms(struct sched *s, struct state_conn *sc)
{
	struct fleet_err err;
	int64_t wait = -1;
	long poll = SCHEDULER_IDLE_POLL_MS + rand() % SCHEDULER_IDLE_JITTER_MS;
	int r = state_job_next_due(sc, s->run_id, &wait, &err);

	if (r < 0)
		return poll;
	if (r == 0)
		return -1;
	return wait >= 0 && wait < poll ? (long)wait + 1 : poll;
}

static void tell_lease_wait(struct sched *s, struct state_conn *sc)
{
	struct state_lease_wait lw;
	struct fleet_err err;
	uint64_t now = fleet_now_ms(), last = atomic_load(&s->lease_checked_ms);
	int alive;

	if (atomic_load(&s->lease_told) || (last && now - last < SCHEDULER_LEASE_CHECK_MS) ||
	    !atomic_compare_exchange_strong(&s->lease_checked_ms, &last, now))
		return;
	if (state_job_leases_elsewhere(sc, s->run_id, s->engine_id, &lw, &err) < 0 || lw.count == 0)
		return;
	/* A holder on this host whose process is gone is dead, whatever its last heartbeat says. */
	alive = lw.alive && !(strcmp(lw.host, s->host) == 0 && lw.pid > 0 && kill((pid_t)lw.pid, 0) < 0 && errno == ESRCH);
	if (atomic_exchange(&s->lease_told, 1))
		return;
	if (alive)
		log_info("%ld account%s being migrated by another imapfleet (pid %ld on %s): waiting for %s "
			 "(its lease ends in %lld s unless it renews it)",
			 lw.count, lw.count == 1 ? " is" : "s are", lw.pid, lw.host, lw.count == 1 ? "it" : "them",
			 (long long)((lw.wait_ms + 999) / 1000));
	else
		log_warn("%ld account%s still leased by an imapfleet that stopped without releasing %s (pid %ld on "
			 "%s, killed?): waiting %lld s for the lease to expire, then %s taken over",
			 lw.count, lw.count == 1 ? " is" : "s are", lw.count == 1 ? "it" : "them", lw.pid, lw.host,
			 (long long)((lw.wait_ms + 999) / 1000), lw.count == 1 ? "it is" : "they are");
}

/* A worker host (no accounts file) that claimed nothing: is the run still storing the credentials
 * of rows it imported? Then the jobs are there but not yet for this host: it waits (said once) and
 * looks again (SCHEDULER_CRED_POLL_MS), rather than failing them for want of credentials. */
static int credentials_pending(struct sched *s, struct state_conn *sc)
{
	struct fleet_err err;
	int r = state_run_credentials_pending(sc, s->run_id, &err);

	if (r > 0 && !atomic_exchange(&s->creds_told, 1))
		log_info("the run is storing its accounts' credentials (imapfleet run is importing): waiting for them");
	return r > 0;
}

/* A worker claims for itself while it has work; once a claim finds nothing it is idle, and only
 * the process's poller (poller_take) claims and asks for the next due time: the other idle workers
 * cost no statement. A claim by the poller that finds work hands its place to an idle worker, which
 * claims at once (there may be more); a job that ends, freed slots or the next due time (a retry,
 * an expired lease of a dead host) wake the poller. Before, every idle worker claimed and asked
 * for the next due time on every wake-up: 10 claims and 10 next-due looks per account in a run of
 * 20 accounts. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct sched *s = w->s;
	struct state_conn *sc = NULL;
	struct fleet_err err;
	unsigned errors = 0;
	int polling = 0, claim_now = 1;

	/* The main thread has applied the schema: workers only connect. */
	if (state_store_connect(s->store, &sc, &err) < 0) {
		log_error("worker %u: %s", w->index, err.message);
		atomic_store(&w->finished, 1);
		return NULL;
	}
	while (!atomic_load(&g_stop)) {
		struct state_claim c;
		uint64_t claimed_ms;
		int r;

		if (s->cfg->max_jobs && atomic_load(&s->jobs_started) >= s->cfg->max_jobs)
			break;
		if (!claim_now && !polling) {
			/* Idle: wait for the poller's place (no statement meanwhile). */
			r = poller_take(s);
			if (r < 0)
				break;
			polling = 1;
			claim_now = r > 0;
		}
		if (claim_now && atomic_load(&s->parking)) {
			sched_wait(s, SCHEDULER_SLOT_POLL_MS); /* woken when the park is over */
			continue;
		}
		if (claim_now) {
			memset(&c, 0, sizeof(c));
			claimed_ms = fleet_now_ms();
			r = state_job_claim_ex(sc, s->run_id, s->engine_id, s->host, wait_lease_ms(s->cfg),
					       s->af ? 0 : STATE_CLAIM_STORED_CREDENTIALS, &c, &err);
			if (r < 0) {
				if (strcmp(err.code, STATE_ERR_CONNECTION) != 0) /* an outage is reported once */
					log_warn("could not claim an account: %s", err.message);
				if (++errors > 30)
					break;
				fleet_sleep_ms(1000);
				continue;
			}
			errors = 0;
			if (r > 0) {
				if (polling) { /* another idle worker takes the place and claims at once */
					poller_leave(s, 0);
					polling = 0;
				}
				run_job(w, sc, &c, claimed_ms);
				state_claim_release(&c);
				/* With a poller at work this worker idles (the wake-up below sends the poller to
				 * claim); else it claims for itself at once. */
				claim_now = !poller_busy(s);
				sched_wake(s);
				continue;
			}
		}
		if (!polling) {
			claim_now = 0; /* found nothing: idle from now on */
			continue;
		}
		claim_now = 1; /* the poller claims again after its wait */
		if (!s->af && credentials_pending(s, sc)) {
			sched_wait(s, SCHEDULER_CRED_POLL_MS);
			continue;
		}
		{
			long wait = idle_wait_ms(s, sc);

			if (wait < 0) {
				poller_leave(s, 1); /* the run is over: every idle worker leaves */
				polling = 0;
				break;
			}
			tell_lease_wait(s, sc);
			/* Jobs of other hosts, or retries not due yet: wait until the next is due (at most
			 * a poll), and look again at once when a job of this host ends or slots are freed. */
			sched_wait(s, (unsigned)wait);
		}
	}
	if (polling)
		poller_leave(s, 0);
	state_store_disconnect(s->store, &sc); /* an extra pair of a running account may use it */
	atomic_store(&w->finished, 1);
	sched_wake(s);
	return NULL;
}

/* ---- the health thread: probes servers that are down ------------------------------------------- */

struct health_thread {
	struct sched *s;
	struct state_conn *sc;
	pthread_t tid;
	atomic_int stop;
};

static void on_health_event(void *ctx, enum health_event ev, const struct health_report *r)
{
	struct health_thread *ht = ctx;
	struct sched *s = ht->s;
	struct fleet_err why, err;
	long n = 0;

	if (ev == HEALTH_EVENT_UP) {
		if (state_server_resume(ht->sc, s->run_id, r->host, r->port, &n, &err) < 0) {
			/* Its accounts are still parked: down again, so that the next probe resumes them. */
			log_warn("could not resume the accounts of %s: %s (trying again)", r->key, err.message);
			server_health_mark_down(s->health, r->key, NULL, NULL);
			return;
		}
		log_info("server %s answers again after %llu s: its %ld waiting accounts resume", r->key,
			 (unsigned long long)(r->down_ms / 1000), n);
		sched_wake(s);
		return;
	}
	server_health_reason(s->health, r->key, &why);
	if (state_server_fail(ht->sc, s->run_id, r->host, r->port, &why, &n, &err) < 0)
		log_warn("could not record the failure of the accounts of %s: %s", r->key, err.message);
	log_error("%s: its %ld queued accounts failed (%s)", why.message, n, why.detail);
	sched_wake(s);
}

static void *health_main(void *arg)
{
	struct health_thread *ht = arg;
	struct sched *s = ht->s;
	struct fleet_err err;
	uint64_t last_orphans = 0; /* at once: accounts a stopped engine left parked (Ctrl-C) */

	while (!atomic_load(&ht->stop)) {
		if (!ht->sc && state_store_connect(s->store, &ht->sc, &err) < 0) {
			sched_wait(s, SCHEDULER_HEALTH_STORE_RETRY_MS);
			continue;
		}
		server_health_run_probes(s->health, on_health_event, ht);
		/* Accounts parked by an engine that died wait for nobody: due again. */
		if (fleet_now_ms() - last_orphans >= SCHEDULER_ORPHANS_EVERY_MS) {
			long n = 0;

			if (state_job_unpark_orphans(ht->sc, s->run_id, &n, &err) == 0 && n > 0)
				log_info("%ld accounts parked by a host that stopped are due again", n);
			last_orphans = fleet_now_ms();
		}
		sched_wait(s, SCHEDULER_HEALTH_TICK_MS);
	}
	state_conn_close(&ht->sc);
	return NULL;
}

/* ---- the main thread: leases, heartbeat, progress ------------------------------------------------- */

static void renew_leases(struct sched *s, struct state_conn *sc)
{
	struct fleet_err err;
	int64_t *held = xcalloc(s->nworkers + 1, sizeof(*held));
	size_t nheld = 0;
	long orphans = 0;

	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->w[i];
		struct state_lease lease;
		int busy;
		uint64_t extended, now = fleet_now_ms();

		pthread_mutex_lock(&w->lock);
		busy = atomic_load(&w->busy);
		lease = w->lease;
		extended = w->extended_ms;
		pthread_mutex_unlock(&w->lock);
		if (!busy)
			continue;
		held[nheld++] = lease.job_id;
		if (atomic_load(&w->waiting)) /* its short lease is its own to renew */
			continue;
		/* Given less than half a beat ago (the attempt began just before this round): renewed at
		 * the next round, with 5/8 of the lease or more still to run then. A small account that
		 * ends within half a beat of its start is never renewed. */
		if (now - extended < s->cfg->lease_ms / SCHEDULER_LEASE_BEATS / 2)
			continue;
		if (state_job_renew(sc, &lease, s->cfg->lease_ms, &err) < 0) {
			if (strcmp(err.code, STATE_ERR_LEASE_LOST) == 0)
				atomic_store(&w->cancel, 1); /* stop before the next APPEND: another engine owns it now */
			continue;
		}
		pthread_mutex_lock(&w->lock);
		if (w->lease.job_id == lease.job_id && w->lease.epoch == lease.epoch)
			w->extended_ms = now;
		pthread_mutex_unlock(&w->lock);
	}
	if (state_engine_heartbeat(sc, s->engine_id, SCHEDULER_ENGINE_TTL_MS(s->cfg->lease_ms), &err) < 0)
		log_warn("engine heartbeat: %s", err.message);
	/* A claim whose answer was lost with the state connection holds a job no worker knows: no other
	 * engine takes it (it is ours) and we never renew it. Back to the queue once it expired. */
	if (state_job_release_orphans(sc, s->run_id, s->engine_id, held, nheld, &orphans, &err) == 0 && orphans > 0)
		log_info("%ld accounts claimed while the state database was lost are back in the queue", orphans);
	xfree(&held);
}

/* "src mail.a.example:993 12/16, dst imap.b.example:993 12/16": the server of each side that this
 * host has the most accounts on, against its current (AIMD) limit. */
static void busiest_servers(struct sched *s, char *out, size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (int side = 0; side < 2; side++) {
		char best[300] = "";
		unsigned best_n = 0;

		for (unsigned i = 0; i < s->nworkers; i++) {
			char key[300];
			unsigned n = 0;

			pthread_mutex_lock(&s->w[i].lock);
			snprintf(key, sizeof(key), "%s", atomic_load(&s->w[i].busy) ? s->w[i].server[side] : "");
			pthread_mutex_unlock(&s->w[i].lock);
			if (!key[0])
				continue;
			for (unsigned j = 0; j < s->nworkers; j++) {
				pthread_mutex_lock(&s->w[j].lock);
				n += atomic_load(&s->w[j].busy) && strcmp(s->w[j].server[side], key) == 0;
				pthread_mutex_unlock(&s->w[j].lock);
			}
			if (n > best_n) {
				best_n = n;
				snprintf(best, sizeof(best), "%s", key);
			}
		}
		if (best_n && len < cap)
			len += (size_t)snprintf(out + len, cap - len, "%s%s %s %u/%u", len ? ", " : "", side ? "dst" : "src",
						best, best_n, host_limiter_limit(s->hl, best));
	}
}

/* The display: the run's counts (at most once a second) and bytes (every two seconds: the whole
 * run's, every host's) from the state store, this host's accounts from its workers. */
struct display {
	struct progress *p;
	int tty;
	struct state_run_counts rc;
	struct progress_rest rest;
	int have_counts;
	uint64_t t0, last_counts, last_bytes, last_show, last_sample;
	struct progress_account *acct;
	int64_t *here; /* job ids of acct[] */
};

static void display_snapshot(struct sched *s, struct state_conn *sc, struct display *d, uint64_t now,
			     struct progress_snapshot *snap)
{
	struct fleet_err err;

	if (!d->have_counts || now - d->last_counts >= 1000) {
		if (state_report_run_counts(sc, s->run_id, &d->rc, &err) == 0)
			d->have_counts = 1;
		d->last_counts = now;
	}
	memset(snap, 0, sizeof(*snap));
	snap->run_id = s->run_id;
	snap->done = d->rc.jobs[STATE_JOB_DONE];
	snap->partial = d->rc.jobs[STATE_JOB_PARTIAL];
	snap->failed = d->rc.jobs[STATE_JOB_FAILED];
	snap->cancelled = d->rc.jobs[STATE_JOB_CANCELLED];
	snap->running = d->rc.jobs[STATE_JOB_RUNNING];
	snap->queued = d->rc.jobs[STATE_JOB_QUEUED];
	snap->bytes_copied = atomic_load(&s->bytes);
	snap->msgs_copied = atomic_load(&s->msgs);
	snap->finished_here = (unsigned)atomic_load(&s->jobs_ended);
	snap->elapsed_ms = now - d->t0;
	for (unsigned i = 0; i < s->nworkers; i++) {
		pthread_mutex_lock(&s->w[i].lock);
		if (atomic_load(&s->w[i].busy))
			d->acct[snap->nacct++] = s->w[i].pa;
		pthread_mutex_unlock(&s->w[i].lock);
	}
	snap->acct = d->acct;
	snap->running_here = (unsigned)snap->nacct;
	if (snap->running < (long)snap->nacct)
		snap->running = (long)snap->nacct; /* the counts are up to a second old */
	snap->parked = d->rc.parked;
	snap->parked_until_ms = d->rc.parked_until_ms;
	if (!d->rest.known || now - d->last_bytes >= 2000) {
		struct state_run_bytes rb;

		for (size_t i = 0; i < snap->nacct; i++)
			d->here[i] = d->acct[i].job_id;
		if (state_report_run_bytes(sc, s->run_id, d->here, snap->nacct, &rb, &err) == 0) {
			d->rest.known = 1;
			d->rest.copied = rb.copied > 0 ? (uint64_t)rb.copied : 0;
			d->rest.left = rb.left > 0 ? (uint64_t)rb.left : 0;
			d->rest.seen = rb.seen;
			d->rest.unseen = rb.unseen;
			d->rest.estimated = rb.estimated;
		}
		d->last_bytes = now;
	}
	snap->rest = d->rest;
}

/* On a terminal: the block below the log lines, redrawn every SCHEDULER_DRAW_MS and at once when the
 * terminal is resized. Otherwise: one log line every SCHEDULER_PROGRESS_LINE_MS (none under --quiet:
 * it is INFO), the rate measured every SCHEDULER_RATE_SAMPLE_MS. */
static void display_tick(struct sched *s, struct state_conn *sc, struct display *d, int force)
{
	struct progress_snapshot snap;
	struct fleet_buf out = FLEET_BUF_INIT(SCHEDULER_DISPLAY_MAX);
	uint64_t now = fleet_now_ms();
	int resized = d->tty && progress_resized();

	if (!force && !resized &&
	    now - d->last_show < (d->tty ? SCHEDULER_DRAW_MS : SCHEDULER_PROGRESS_LINE_MS)) {
		/* Not shown yet, but measured meanwhile: the rate is ready by the first line. */
		if (!d->tty && now - d->last_sample >= SCHEDULER_RATE_SAMPLE_MS) {
			display_snapshot(s, sc, d, now, &snap);
			progress_update(d->p, &snap, now);
			d->last_sample = now;
		}
		return;
	}
	d->last_show = d->last_sample = now;
	display_snapshot(s, sc, d, now, &snap);
	progress_update(d->p, &snap, now);
	if (d->tty) {
		unsigned cols, rows;

		progress_term_size(STDERR_FILENO, &cols, &rows);
		progress_render_block(d->p, &snap, cols, rows, &out);
		fleet_log_overlay(fleet_buf_cstr(&out));
	} else {
		char busiest[700];

		progress_render_line(d->p, &snap, &out);
		busiest_servers(s, busiest, sizeof(busiest));
		fleet_log_set_context(NULL, NULL);
		log_info("%s%s%s", fleet_buf_cstr(&out), busiest[0] ? "; busiest: " : "", busiest);
	}
	fleet_buf_release(&out);
}

/* The end: the block's first two lines stay on the screen (the final counters), or a last line. */
static void display_end(struct sched *s, struct state_conn *sc, struct display *d)
{
	struct progress_snapshot snap;
	struct fleet_buf out = FLEET_BUF_INIT(SCHEDULER_DISPLAY_MAX);
	uint64_t now = fleet_now_ms();

	d->have_counts = 0; /* the final counts and bytes, not a second old */
	d->rest.known = 0;
	display_snapshot(s, sc, d, now, &snap);
	progress_update(d->p, &snap, now);
	if (d->tty) {
		unsigned cols, rows;

		progress_term_size(STDERR_FILENO, &cols, &rows);
		snap.nacct = 0;
		progress_render_block(d->p, &snap, cols, 3, &out);
		fleet_log_overlay_end(fleet_buf_cstr(&out));
	} else {
		progress_render_line(d->p, &snap, &out);
		log_info("%s", fleet_buf_cstr(&out));
	}
	fleet_buf_release(&out);
}

static int open_state(struct sched *s, struct state_conn **sc, struct fleet_err *err)
{
	if (state_store_open(s->cfg->state_arg, s->cfg->base_dir, 0, &s->store, err) < 0)
		return -1;
	*sc = state_store_conn(s->store);
	return 0;
}

/* The main connection belongs to the store: closing the store closes it. */
static void close_state(struct sched *s, struct state_conn **sc)
{
	*sc = NULL;
	state_store_close(&s->store);
}

static int load_key(struct sched *s, struct fleet_err *err)
{
	char path[PATH_MAX];

	if (s->cfg->key_file)
		snprintf(path, sizeof(path), "%s", s->cfg->key_file);
	else
		snprintf(path, sizeof(path), "%s/%s", s->cfg->base_dir ? s->cfg->base_dir : ".",
			 STATE_SECRET_DEFAULT_KEY_FILE);
	/* Only the importing host makes a key: a worker with a key of its own could read nothing. */
	if (!s->cfg->accounts_path && access(path, F_OK) != 0)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, SCHEDULER_ERR_NO_KEY,
				     "no key file at %s: copy .imapfleet/key from the host that ran `imapfleet run` "
				     "(mode 0600) or pass --key-file",
				     path);
	if (state_secret_key_load_or_create(path, s->key, err) < 0)
		return -1;
	s->have_key = 1;
	return 0;
}

static void add_engine(void *ctx, const char *host, long pid, long running)
{
	struct fleet_buf *b = ctx;

	fleet_buf_addf(b, "%s%s (pid %ld, %ld account%s running)", b->len ? ", " : "", host, pid, running,
			  running == 1 ? "" : "s");
}

/* A second `run` of the same file, or a `worker`, joins the run that is going on: say so, and who
 * else works on it, instead of silently sharing it. */
static void say_who_else(struct sched *s, struct state_conn *sc)
{
	struct fleet_buf others = FLEET_BUF_INIT(SCHEDULER_OTHERS_MAX);
	struct fleet_err err;
	int n = state_run_engines(sc, s->run_id, s->engine_id, add_engine, &others, &err);

	(void)fleet_buf_mark_cut(&others);
	if (n > 0)
		log_warn("run %lld is already going on: this process joins it; also working on it: %s. The "
			 "accounts are shared out (none is migrated twice); `imapfleet status` shows them",
			 (long long)s->run_id, fleet_buf_cstr(&others));
	else if (n == 0 && !s->cfg->accounts_path)
		log_info("joining run %lld (no other host works on it now)", (long long)s->run_id);
	fleet_buf_release(&others);
}

/* state_report_passes callback: the run's last pass into the summary. */
static int last_pass(const struct state_pass_report *p, void *ctx)
{
	struct scheduler_summary *sum = ctx;

	sum->pass_number = p->number;
	sum->pass_first = strcmp(p->kind, "first") == 0;
	sum->pass_ended = p->ended_at_ms != 0;
	sum->pass_copied = p->copied;
	sum->pass_matched = p->matched;
	sum->pass_skipped = p->skipped;
	sum->pass_failed = p->msgs_failed;
	sum->pass_uncertain = p->uncertain;
	return 0;
}

/* What scheduler_run and scheduler_verify both set up, released: the state connection, the
 * limiter, the accounts file, the key, the idle signal. */
static void sched_release(struct sched *s, struct state_conn **sc)
{
	close_state(s, sc);
	host_limiter_free(&s->hl);
	accounts_free(&s->af);
	xfree(&s->rows);
	OPENSSL_cleanse(s->key, sizeof(s->key));
	pthread_cond_destroy(&s->idle_cond);
	pthread_mutex_destroy(&s->idle_lock);
}

int scheduler_run(const struct scheduler_config *cfg, struct scheduler_summary *sum, struct fleet_err *err)
{
	struct sched s;
	struct state_conn *sc = NULL;
	struct sigaction sa;
	struct state_run_counts counts;
	uint64_t last_renew = 0;
	int rc = -1, stop_seen = 0, health_started = 0, cred_failed = 0;
	struct fleet_err cred_err;
	struct display disp;
	struct health_thread ht;
	char base[PATH_MAX];

	memset(&s, 0, sizeof(s));
	memset(sum, 0, sizeof(*sum));
	memset(&disp, 0, sizeof(disp));
	s.cfg = cfg;
	/* --quiet: the terminal gets warnings and errors only (the accounts' logs keep every line). */
	if (cfg->quiet)
		fleet_log_set_console_level(FLEET_LOG_WARN);
	pthread_mutex_init(&s.idle_lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s.idle_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	s.nworkers = cfg->workers ? cfg->workers : 8;
	s.hl = host_limiter_new(cfg->max_conns_per_host ? cfg->max_conns_per_host : 16);
	s.oauth = oauth_cache_new();
	pthread_mutex_init(&s.oauth_lock, NULL);
	s.health = server_health_new(cfg->server_down_limit_ms);
	gethostname(s.host, sizeof(s.host) - 1);
	snprintf(base, sizeof(base), "%s", cfg->base_dir ? cfg->base_dir : ".");
	snprintf(s.log_dir, sizeof(s.log_dir), "%s/.imapfleet/logs", base);
	if (fleet_file_mkdirs(s.log_dir, FLEET_DIR_MODE_PRIVATE) < 0)
		log_warn("cannot create %s: %s (per-account logs are not written)", s.log_dir, strerror(errno));
	sum->started_ms = fleet_wall_ms();
	srand((unsigned)(getpid() ^ fleet_now_ms()));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	atomic_store(&g_stop, 0);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* A restart or a short loss of the state database pauses the work instead of failing it. */
	state_set_outage_wait(SCHEDULER_STORE_WAIT_MS);
	if (open_state(&s, &sc, err) < 0)
		goto out;
	/* The key seals stored credentials and keys the hash of a refused credential; a worker
	 * without the run's key could only fail accounts. */
	if (load_key(&s, err) < 0)
		goto out;
	if (cfg->accounts_path) {
		if (import_accounts(&s, sc, sum, err) < 0)
			goto out;
		/* tests/integration/worker_credentials.sh: the rows are in, their credentials not yet. */
		if (cfg->store_credentials)
			fleet_failpoint("credentials-pending");
	} else {
		int r = state_run_find_active(sc, &s.run_id, err);

		if (r < 0)
			goto out;
		if (r == 0) {
			fprintf(stderr, "imapfleet worker: no active run in the state store: nothing to do\n");
			rc = 0;
			goto out;
		}
	}
	sum->run_id = s.run_id;
	if (state_engine_register(sc, s.host, (long)getpid(), "imapfleet", SCHEDULER_ENGINE_TTL_MS(cfg->lease_ms), &s.engine_id,
				  err) < 0)
		goto out;
	say_who_else(&s, sc);

	{
		/* No more threads (and state connections) than there are accounts to run; counted up
		 * to the number of threads only (a count of the whole run took 30-150 ms at 50,000). */
		long active;

		if (state_run_active_upto(sc, s.run_id, (long)s.nworkers, &active, err) < 0)
			goto out;
		if (active < (long)s.nworkers)
			s.nworkers = (unsigned)active;
		if (s.nworkers == 0)
			s.nworkers = 1;
	}
	s.w = xcalloc(s.nworkers, sizeof(*s.w));
	for (unsigned i = 0; i < s.nworkers; i++) {
		s.w[i].s = &s;
		s.w[i].index = i;
		pthread_mutex_init(&s.w[i].lock, NULL);
		if (pthread_create(&s.w[i].tid, NULL, worker_main, &s.w[i]) != 0) {
			fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_RUN, SCHEDULER_ERR_THREAD, "could not start worker thread %u", i);
			s.nworkers = i;
			break;
		}
	}

	if (cfg->accounts_path && cfg->store_credentials && store_credentials(&s, sc, &cred_err) < 0) {
		/* Worker hosts could not run these accounts: stop here rather than let them fail them. */
		log_error("could not store the credentials for worker hosts: %s; stopping", cred_err.message);
		cred_failed = 1;
		atomic_store(&g_stop, 1); /* the workers stop as on Ctrl-C: progress is kept */
	}
	memset(&ht, 0, sizeof(ht));
	ht.s = &s;
	health_started = pthread_create(&ht.tid, NULL, health_main, &ht) == 0;
	disp.tty = !cfg->quiet && (cfg->progress >= 0 ? cfg->progress : isatty(STDERR_FILENO));
	disp.p = progress_new();
	disp.acct = xcalloc(s.nworkers + 1, sizeof(*disp.acct));
	disp.here = xcalloc(s.nworkers + 1, sizeof(*disp.here));
	disp.t0 = disp.last_show = fleet_now_ms();
	if (disp.tty)
		progress_watch_resize();
	for (;;) {
		unsigned alive = 0;
		uint64_t now = fleet_now_ms();

		for (unsigned i = 0; i < s.nworkers; i++)
			alive += atomic_load(&s.w[i].finished) ? 0 : 1;
		if (alive == 0)
			break;
		if (atomic_load(&g_stop)) {
			for (unsigned i = 0; i < s.nworkers; i++)
				atomic_store(&s.w[i].cancel, 1);
			if (!stop_seen) {
				stop_seen = 1;
				sched_wake(&s); /* the signal handler cannot */
			}
		}
		if (now - last_renew >= cfg->lease_ms / SCHEDULER_LEASE_BEATS) {
			renew_leases(&s, sc);
			last_renew = now;
		}
		display_tick(&s, sc, &disp, 0);
		sched_wait(&s, SCHEDULER_MAIN_TICK_MS);
	}
	for (unsigned i = 0; i < s.nworkers; i++)
		pthread_join(s.w[i].tid, NULL);
	if (health_started) {
		atomic_store(&ht.stop, 1);
		sched_wake(&s);
		pthread_join(ht.tid, NULL);
	}
	display_end(&s, sc, &disp);

	state_engine_deregister(sc, s.engine_id, NULL);
	if (cred_failed) {
		if (err)
			*err = cred_err;
		goto out;
	}
	if (state_report_run_counts(sc, s.run_id, &counts, err) < 0)
		goto out;
	{
		struct fleet_err perr;
		int ended = state_pass_end_if_idle(sc, s.run_id, &perr);

		if (ended < 0 || state_report_passes(sc, s.run_id, last_pass, sum, &perr) < 0)
			log_warn("could not read this pass: %s", perr.message);
	}
	sum->jobs_done = counts.jobs[STATE_JOB_DONE];
	sum->jobs_failed = counts.jobs[STATE_JOB_FAILED];
	sum->jobs_queued = counts.jobs[STATE_JOB_QUEUED];
	sum->jobs_running = counts.jobs[STATE_JOB_RUNNING];
	sum->jobs_cancelled = counts.jobs[STATE_JOB_CANCELLED];
	sum->jobs_partial = counts.jobs[STATE_JOB_PARTIAL];
	sum->msgs_copied = atomic_load(&s.msgs);
	sum->bytes_copied = atomic_load(&s.bytes);
	sum->msgs_failed = (uint64_t)counts.msgs_failed;
	sum->msgs_skipped = (uint64_t)counts.msgs_skipped;
	sum->interrupted = atomic_load(&g_stop) != 0;
	rc = sum->jobs_failed > 0 || sum->jobs_partial > 0 ? 1 : 0;
out:
	sum->finished_ms = fleet_wall_ms();
	progress_free(&disp.p);
	xfree(&disp.acct);
	xfree(&disp.here);
	if (s.w) {
		for (unsigned i = 0; i < s.nworkers; i++)
			pthread_mutex_destroy(&s.w[i].lock);
		xfree(&s.w);
	}
	oauth_cache_free(&s.oauth);
	pthread_mutex_destroy(&s.oauth_lock);
	for (size_t i = 0; i < s.noauth_refused; i++)
		xfree(&s.oauth_refused[i]);
	xfree(&s.oauth_refused);
	server_health_free(&s.health);
	sched_release(&s, &sc);
	return rc;
}

/* ---- sync: one pair through the state store ------------------------------------------------------ */

int scheduler_sync_one(const char *state_arg, const char *key_file, const struct engine_job *job,
		       struct engine_stats *stats, struct fleet_err *err)
{
	struct sched s;
	struct scheduler_config cfg;
	struct state_conn *sc = NULL;
	struct state_job_spec spec;
	struct state_claim c;
	struct ledger_state *ls = NULL;
	struct engine_job j = *job;
	char *name = NULL;
	int64_t job_id;
	long requeued;
	int rc = -1, r;

	memset(&s, 0, sizeof(s));
	memset(stats, 0, sizeof(*stats));
	memset(&c, 0, sizeof(c));
	scheduler_config_init(&cfg);
	cfg.state_arg = state_arg;
	cfg.key_file = key_file;
	s.cfg = &cfg;
	gethostname(s.host, sizeof(s.host) - 1);
	if (open_state(&s, &sc, err) < 0)
		goto out;
	name = xasprintf("sync:%s:%u/%s -> %s:%u/%s", job->side[0].ep.host, job->side[0].ep.port, job->side[0].user,
			 job->side[1].ep.host, job->side[1].ep.port, job->side[1].user);
	if (state_run_get_or_create(sc, name, NULL, &s.run_id, NULL, err) < 0)
		goto out;
	memset(&spec, 0, sizeof(spec));
	spec.host1 = job->side[0].ep.host;
	spec.port1 = job->side[0].ep.port;
	spec.user1 = job->side[0].user;
	spec.host2 = job->side[1].ep.host;
	spec.port2 = job->side[1].ep.port;
	spec.user2 = job->side[1].user;
	if (state_job_upsert(sc, s.run_id, &spec, &job_id, NULL, err) < 0 ||
	    state_run_requeue(sc, s.run_id,
			      STATE_JOB_MASK(STATE_JOB_DONE) | STATE_JOB_MASK(STATE_JOB_FAILED) |
				  STATE_JOB_MASK(STATE_JOB_PARTIAL),
			      &requeued, err) < 0 ||
	    state_engine_register(sc, s.host, (long)getpid(), "imapfleet", SCHEDULER_ENGINE_TTL_MS(cfg.lease_ms), &s.engine_id,
				  err) < 0)
		goto out;
	r = state_job_claim(sc, s.run_id, s.engine_id, s.host, 24u * 3600 * 1000, &c, err);
	if (r < 0)
		goto out;
	if (r == 0) {
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, SCHEDULER_ERR_BUSY,
			      "this account pair is being migrated by another imapfleet process right now");
		goto out;
	}
	if (state_job_begin(sc, &c.lease, 24u * 3600 * 1000, err) < 0)
		goto out;
	ls = ledger_state_new(sc, &c.lease);
	j.ledger = ledger_state_bind(ls);
	rc = engine_run(&j, stats, err);
	end_ledger(ls, &rc, err);
	if (stats->msgs_ambiguous)
		record_in_pass(sc, c.lease.job_id, rc >= 0 ? "done" : "failed", stats);
	if (rc >= 0) {
		int none[2] = {-1, -1};

		finish_job(&s, sc, &c.lease, stats, NULL, none, 0);
	} else if (strcmp(err->code, FLEET_ERR_CODE_CANCELLED) == 0) {
		state_job_release(sc, &c.lease, NULL);
	} else {
		state_job_fail(sc, &c.lease, err, 0, 0, NULL, NULL);
	}
out:
	if (s.engine_id)
		state_engine_deregister(sc, s.engine_id, NULL);
	state_claim_release(&c);
	ledger_state_free(&ls);
	xfree(&name);
	close_state(&s, &sc);
	return rc;
}

/* ---- verify ---------------------------------------------------------------------------------------- */

struct verify_run {
	struct sched *s;
	int64_t *jobs;
	size_t njobs;
	atomic_size_t next;
	atomic_uint_fast64_t passed, failed;
	pthread_mutex_t out_lock;
	FILE *out;
};

struct vreader_ctx {
	struct state_conn *sc;
	int64_t job_id;
	verify_row_cb cb;
	void *cbctx;
};

static int vr_folder(void *ctx, const char *src_name, int64_t *folder_id, uint32_t *dst_uidvalidity,
		     struct fleet_err *err)
{
	struct vreader_ctx *v = ctx;
	struct state_folder f;
	int r = state_folder_get(v->sc, v->job_id, src_name, &f, err);

	if (r > 0) {
		*folder_id = f.id;
		*dst_uidvalidity = f.dst_uidvalidity;
	}
	return r;
}

static int vr_row(const struct state_ledger_row *row, void *ctx)
{
	struct vreader_ctx *v = ctx;
	struct verify_ledger_row r;

	memset(&r, 0, sizeof(r));
	r.src_uid = row->src_uid;
	r.dst_uid = row->dst_uid;
	r.size = row->size;
	r.internaldate = row->internaldate;
	r.sha256 = row->has_sha256 ? row->sha256 : NULL;
	r.state = row->state == STATE_MSG_COPIED ? LEDGER_COPIED : row->state == STATE_MSG_FAILED ? LEDGER_FAILED
												  : LEDGER_SKIPPED;
	return v->cb(v->cbctx, &r);
}

static int vr_rows(void *ctx, int64_t folder_id, uint32_t src_uidvalidity, verify_row_cb cb, void *cbctx,
		   struct fleet_err *err)
{
	struct vreader_ctx *v = ctx;

	v->cb = cb;
	v->cbctx = cbctx;
	return state_ledger_foreach(v->sc, folder_id, src_uidvalidity, 0, vr_row, v, err);
}

/* "INBOX: 3 missing (source UIDs 4,5,6); Sent: 1 extra (destination UIDs 9)" */
static char *verify_detail(const struct verify_result *r)
{
	struct fleet_buf b = FLEET_BUF_INIT(SCHEDULER_VERIFY_DETAIL_MAX);

	for (size_t i = 0; i < r->nfolders; i++) {
		const struct verify_folder *f = &r->folders[i];

		if (!f->missing && !f->extra && !f->altered && !f->dates && !f->flags && !f->error[0])
			continue;
		fleet_buf_addf(&b, "%s%s:", b.len ? "\n" : "", f->name);
		if (f->error[0])
			fleet_buf_addf(&b, " could not be read: %s", f->error);
		if (f->missing)
			fleet_buf_addf(&b, " %u missing (source UIDs %s)", f->missing, f->missing_uids ? f->missing_uids : "");
		if (f->extra)
			fleet_buf_addf(&b, " %u extra (destination UIDs %s)", f->extra, f->extra_uids ? f->extra_uids : "");
		if (f->altered)
			fleet_buf_addf(&b, " %u altered (source UIDs %s)", f->altered, f->altered_uids ? f->altered_uids : "");
		if (f->dates)
			fleet_buf_addf(&b, " %u with another date", f->dates);
		if (f->flags)
			fleet_buf_addf(&b, " %u with other flags", f->flags);
	}
	(void)fleet_buf_mark_cut(&b);
	return fleet_buf_detach(&b, NULL);
}

/* One account: 1 PASS, 0 FAIL, -1 could not be verified (err). */
static int verify_one(struct verify_run *vr, struct state_conn *sc, int64_t job_id, struct verify_result *res,
		      char *label, size_t label_cap, struct fleet_err *err)
{
	struct sched *s = vr->s;
	struct state_claim c;
	struct account_side_settings side[2];
	struct engine_opts opts;
	struct engine_job job;
	struct vreader_ctx vctx;
	struct verify_reader rd;
	char **row_argv = NULL, **argv = NULL, **rest = NULL;
	int row_argc = 0, argc = 0, nrest = 0, slot[2] = {-1, -1}, rc = -1, r;
	char *keys[2] = {NULL, NULL};
	struct logins lg;
	const char *ckeys[2];
	char why[256];
	atomic_int cancel;

	logins_init(&lg, s, sc);
	engine_opts_init(&opts);
	memset(side, 0, sizeof(side));
	atomic_init(&cancel, 0);
	r = state_job_load(sc, job_id, &c, err);
	if (r <= 0) {
		if (r == 0)
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, SCHEDULER_ERR_NO_JOB, "account %lld is gone",
				      (long long)job_id);
		return -1;
	}
	snprintf(label, label_cap, "%s@%s -> %s@%s", c.user1, c.host1, c.user2, c.host2);
	fleet_log_set_context(label, NULL);
	if (c.options && *c.options && accounts_split_args(c.options, &row_argc, &row_argv, why, sizeof(why)) < 0) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, FLEET_ERR_CODE_USAGE, "account options: %s", why);
		goto out;
	}
	argv = xcalloc((size_t)(s->cfg->argc + row_argc) + 1, sizeof(*argv));
	for (int i = 0; i < row_argc; i++)
		argv[argc++] = row_argv[i];
	for (int i = 0; i < s->cfg->argc; i++) /* verify's own side options (--cafile2 ...) last: they win */
		argv[argc++] = s->cfg->argv[i];
	rest = xcalloc((size_t)argc + 1, sizeof(*rest));
	if (accounts_take_side_settings(argc, argv, side, rest, &nrest, err) < 0 ||
	    engine_opts_parse(&opts, nrest, rest, err) < 0)
		goto out;
	for (int k = 0; k < 2; k++)
		if (!side[k].mode_set)
			side[k].mode = io_mode_for_port(k ? c.port2 : c.port1);
	if (logins_load(&lg, s, sc, &c, side, err) < 0)
		goto out;
	keys[0] = server_key(c.host1, c.port1);
	keys[1] = server_key(c.host2, c.port2);
	ckeys[0] = keys[0];
	ckeys[1] = keys[1];
	for (;;) {
		r = take_slots(s, sc, ckeys, job_id, slot, err);
		if (r < 0)
			goto out;
		if (r > 0)
			break;
		if (atomic_load(&g_stop)) {
			fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_CANCELLED, "stopped on request");
			goto out;
		}
		sched_wait(s, SCHEDULER_SLOT_POLL_MS + (unsigned)(rand() % SCHEDULER_SLOT_JITTER_MS));
	}
	job_init(&job, label, &c, side);
	if (logins_apply(&lg, s, job_id, side, &job, err) < 0)
		goto out;
	job.opts = &opts;
	job.cancel = &cancel;
	vctx.sc = sc;
	vctx.job_id = job_id;
	rd.folder = vr_folder;
	rd.rows = vr_rows;
	rd.ctx = &vctx;
	r = engine_verify(&job, &rd, s->cfg->deep, res, err);
	release_slots(s, sc, ckeys, slot);
	if (r < 0) {
		if (err->cls == FLEET_ERR_THROTTLED && err->scope >= FLEET_SCOPE_ACCOUNT)
			host_limiter_throttled(s->hl, keys[0], err->retry_after_ms);
		goto out;
	}
	rc = res->pass ? 1 : 0;
out:
	fleet_log_set_context(NULL, NULL);
	job_inputs_release(&opts, &lg, keys, &argv, &rest, &row_argv);
	state_claim_release(&c);
	return rc;
}

static void *verify_worker(void *arg)
{
	struct verify_run *vr = arg;
	struct state_conn *sc = NULL;
	struct fleet_err err;

	if (state_store_connect(vr->s->store, &sc, &err) < 0) {
		log_error("verify: %s", err.message);
		return NULL;
	}
	for (;;) {
		size_t i = atomic_fetch_add(&vr->next, 1);
		struct verify_result res;
		struct state_verify sv;
		char label[600] = "", *detail = NULL;
		int r = -1;

		if (i >= vr->njobs || atomic_load(&g_stop))
			break;
		/* Transient failures (a connection reset, a throttled server) are retried with the run's
		 * backoff; anything else is the verdict ERROR with its reason. */
		for (unsigned attempt = 1;; attempt++) {
			unsigned delay = 0;
			unsigned char rb[4];

			memset(&res, 0, sizeof(res));
			fleet_err_clear(&err);
			r = verify_one(vr, sc, vr->jobs[i], &res, label, sizeof(label), &err);
			if (r >= 0 || atomic_load(&g_stop))
				break;
			RAND_bytes(rb, sizeof(rb));
			if (retry_policy_decide(&vr->s->cfg->retry, &err, attempt,
						(double)((uint32_t)rb[0] << 24 | (uint32_t)rb[1] << 16 | (uint32_t)rb[2] << 8 | rb[3]) /
						    4294967296.0,
						&delay) != RETRY_LATER)
				break;
			verify_result_release(&res);
			log_warn("verify %s: %s; again in %.1f s", label, err.message, delay / 1000.0);
			fleet_sleep_ms(delay);
		}
		memset(&sv, 0, sizeof(sv));
		if (r >= 0) {
			detail = verify_detail(&res);
			sv.verdict = r ? "PASS" : "FAIL";
			sv.on_source = (int64_t)res.on_source;
			sv.on_destination = (int64_t)res.on_destination;
			sv.missing = (int64_t)res.missing;
			sv.extra = (int64_t)res.extra;
			sv.altered = (int64_t)res.altered;
			sv.flags = (int64_t)res.flags;
			sv.dates = (int64_t)res.dates;
			sv.detail = detail;
		} else {
			sv.verdict = "ERROR";
			detail = xasprintf("%s", err.message);
			sv.detail = detail;
		}
		{
			struct fleet_err serr;

			if (state_job_record_verify(sc, vr->jobs[i], &sv, &serr) < 0)
				log_warn("could not record the verify result of %s: %s", label, serr.message);
		}
		atomic_fetch_add(r > 0 ? &vr->passed : &vr->failed, 1);
		pthread_mutex_lock(&vr->out_lock);
		if (r >= 0)
			fprintf(vr->out,
				"%s  %s: %llu on source, %llu on destination; %llu missing, %llu extra, %llu altered, "
				"%llu dates, %llu flags differ, %llu skipped\n",
				r ? "PASS" : "FAIL", label, (unsigned long long)res.on_source,
				(unsigned long long)res.on_destination, (unsigned long long)res.missing,
				(unsigned long long)res.extra, (unsigned long long)res.altered, (unsigned long long)res.dates,
				(unsigned long long)res.flags, (unsigned long long)res.skipped);
		else
			fprintf(vr->out, "ERROR %s: could not verify: %s\n", label[0] ? label : "?", err.message);
		if (r >= 0 && detail && *detail) {
			for (char *p = detail, *nl; p && *p; p = nl ? nl + 1 : NULL) {
				nl = strchr(p, '\n');
				fprintf(vr->out, "      %.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
			}
		}
		fflush(vr->out);
		pthread_mutex_unlock(&vr->out_lock);
		xfree(&detail);
		verify_result_release(&res);
	}
	state_store_disconnect(vr->s->store, &sc);
	return NULL;
}

/* Maps the accounts file's rows to the run's jobs (by the pair's identity), for their passwords. */
static void verify_map_rows(struct sched *s, struct state_conn *sc, const int64_t *jobs, size_t n)
{
	s->rows = xcalloc(n ? n : 1, sizeof(*s->rows));
	for (size_t i = 0; i < n; i++) {
		struct state_claim c;
		struct fleet_err err;

		if (state_job_load(sc, jobs[i], &c, &err) <= 0)
			continue;
		for (size_t k = 0; k < accounts_count(s->af); k++) {
			const struct account_row *r = accounts_row(s->af, k);

			if (r->side[0].port == c.port1 && r->side[1].port == c.port2 && !strcmp(r->side[0].host, c.host1) &&
			    !strcmp(r->side[0].user, c.user1) && !strcmp(r->side[1].host, c.host2) &&
			    !strcmp(r->side[1].user, c.user2)) {
				s->rows[s->nrows].job_id = jobs[i];
				s->rows[s->nrows++].row = k;
				break;
			}
		}
		state_claim_release(&c);
	}
	qsort(s->rows, s->nrows, sizeof(*s->rows), cmp_row_ref);
}

/* verify --manifest: the ledger of the accounts just verified, signed with the key beside the
 * credentials key (made on first use). */
static int write_manifest(struct sched *s, struct state_conn *sc, const int64_t *jobs, size_t n, FILE *out,
			  struct fleet_err *err)
{
	struct state_manifest_info info;
	char dir[PATH_MAX], *slash;

	if (s->cfg->key_file)
		snprintf(dir, sizeof(dir), "%s", s->cfg->key_file);
	else
		snprintf(dir, sizeof(dir), "%s/%s", s->cfg->base_dir ? s->cfg->base_dir : ".", STATE_SECRET_DEFAULT_KEY_FILE);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (state_manifest_write(sc, s->run_id, jobs, n, dir, s->cfg->manifest_path, &info, err) < 0)
		return -1;
	fprintf(out,
		"manifest %s: %ld accounts, %ld messages, signed with Ed25519 public key %s (also in %s/%s); "
		"check it with: imapfleet verify-manifest %s --pubkey %s/%s\n",
		s->cfg->manifest_path, info.accounts, info.messages, info.pubkey_b64, dir, STATE_MANIFEST_PUB_FILE,
		s->cfg->manifest_path, dir, STATE_MANIFEST_PUB_FILE);
	return 0;
}

int scheduler_verify(const struct scheduler_config *cfg, FILE *out, struct fleet_err *err)
{
	struct sched s;
	struct verify_run vr;
	struct state_conn *sc = NULL;
	pthread_t *tids = NULL;
	unsigned nthreads;
	int rc = -1, found;
	char base[PATH_MAX];

	memset(&s, 0, sizeof(s));
	memset(&vr, 0, sizeof(vr));
	s.cfg = cfg;
	vr.s = &s;
	vr.out = out;
	pthread_mutex_init(&vr.out_lock, NULL);
	pthread_mutex_init(&s.idle_lock, NULL);
	pthread_cond_init(&s.idle_cond, NULL);
	s.hl = host_limiter_new(cfg->max_conns_per_host ? cfg->max_conns_per_host : 16);
	gethostname(s.host, sizeof(s.host) - 1);
	snprintf(base, sizeof(base), "%s", cfg->base_dir ? cfg->base_dir : ".");
	signal(SIGPIPE, SIG_IGN);
	if (open_state(&s, &sc, err) < 0)
		goto out;
	{
		/* Stored credentials need the key; with the accounts file its passwords are used. */
		struct fleet_err kerr;
		char path[PATH_MAX];

		if (cfg->key_file)
			snprintf(path, sizeof(path), "%s", cfg->key_file);
		else
			snprintf(path, sizeof(path), "%s/%s", base, STATE_SECRET_DEFAULT_KEY_FILE);
		if (access(path, F_OK) == 0 && state_secret_key_load_or_create(path, s.key, &kerr) == 0)
			s.have_key = 1;
	}
	if (cfg->accounts_path) {
		char real[PATH_MAX], *name;

		s.af = accounts_load(cfg->accounts_path, 0, err);
		if (!s.af)
			goto out;
		if (!realpath(cfg->accounts_path, real))
			snprintf(real, sizeof(real), "%s", cfg->accounts_path);
		name = xasprintf("run:%s", real);
		found = state_run_find(sc, name, &s.run_id, err);
		xfree(&name);
		if (found < 0)
			goto out;
		if (found == 0) {
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_NO_RUN,
				      "%s was never run with this state store: nothing to verify", cfg->accounts_path);
			goto out;
		}
	} else {
		found = state_report_default_run(sc, &s.run_id, err);
		if (found <= 0) {
			if (found == 0)
				fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_NO_RUN,
					      "no run in the state store: nothing to verify");
			goto out;
		}
	}
	if (state_verify_jobs(sc, s.run_id, cfg->only_failed, &vr.jobs, &vr.njobs, err) < 0)
		goto out;
	if (cfg->only_account) {
		int64_t id = 0;
		int r = state_job_find(sc, s.run_id, cfg->only_account, &id, err);

		if (r < 0)
			goto out;
		vr.njobs = 0;
		if (r > 0) {
			vr.jobs = xgrow(vr.jobs, sizeof(*vr.jobs), 1, &(size_t){0});
			vr.jobs[0] = id;
			vr.njobs = 1;
		}
	}
	if (vr.njobs == 0) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, SCHEDULER_ERR_NO_ACCOUNTS,
			      "no account of run %lld matches: nothing to verify", (long long)s.run_id);
		goto out;
	}
	if (s.af)
		verify_map_rows(&s, sc, vr.jobs, vr.njobs);
	if (state_engine_register(sc, s.host, (long)getpid(), "imapfleet verify", SCHEDULER_VERIFY_TTL_MS, &s.engine_id, err) < 0)
		goto out;
	nthreads = cfg->workers ? cfg->workers : 8;
	if (nthreads > vr.njobs)
		nthreads = (unsigned)vr.njobs;
	tids = xcalloc(nthreads, sizeof(*tids));
	for (unsigned i = 0; i < nthreads; i++)
		if (pthread_create(&tids[i], NULL, verify_worker, &vr) != 0) {
			nthreads = i;
			break;
		}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	state_engine_deregister(sc, s.engine_id, NULL);
	fprintf(out, "verify run %lld: %llu accounts, %llu PASS, %llu FAIL\n", (long long)s.run_id,
		(unsigned long long)(atomic_load(&vr.passed) + atomic_load(&vr.failed)),
		(unsigned long long)atomic_load(&vr.passed), (unsigned long long)atomic_load(&vr.failed));
	rc = atomic_load(&vr.failed) || atomic_load(&vr.passed) < vr.njobs ? 1 : 0;
	if (cfg->manifest_path && write_manifest(&s, sc, vr.jobs, vr.njobs, out, err) < 0)
		rc = -1;
out:
	xfree(&tids);
	xfree(&vr.jobs);
	pthread_mutex_destroy(&vr.out_lock);
	sched_release(&s, &sc);
	return rc;
}

/* scheduler/lanes.c: several connection pairs for one account (lanes.h). */
#include "scheduler/lanes.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "scheduler/ledger_state.h"

struct lane {
	struct lanes *l;
	unsigned index;
	pthread_t tid;
	int started;
	int slot[2];
	unsigned claims;
	struct engine_lanes api;
	struct engine_job job;
	struct engine_stats st;
	struct fleet_err err;
	int rc;
	int error_side;
};

struct claim {
	char *name;
	unsigned lane;
};

struct lanes {
	struct lanes_env env;
	pthread_mutex_t lock;
	atomic_int stop;
	struct fleet_log_thread log;
	struct lane lane[ENGINE_CONNS_PER_ACCOUNT_MAX]; /* [0] is the worker's own engine_run */
	unsigned n;		     /* lanes started, lane 0 included */
	struct claim *claims;
	size_t nclaims, alloc;
};

static int lanes_claim(void *ctx, unsigned lane, const char *src_name)
{
	struct lanes *l = ctx;
	int mine = 1;
	size_t i;

	pthread_mutex_lock(&l->lock);
	for (i = 0; i < l->nclaims; i++)
		if (strcmp(l->claims[i].name, src_name) == 0)
			break;
	if (i < l->nclaims) {
		mine = l->claims[i].lane == lane;
	} else {
		l->claims = xgrow(l->claims, sizeof(*l->claims), l->nclaims + 1, &l->alloc);
		l->claims[l->nclaims].name = xstrdup(src_name);
		l->claims[l->nclaims++].lane = lane;
		if (lane < ENGINE_CONNS_PER_ACCOUNT_MAX)
			l->lane[lane].claims++;
	}
	pthread_mutex_unlock(&l->lock);
	return mine;
}

/* Under l->lock: the totals of every lane to the scheduler. */
static void progress_all(struct lanes *l)
{
	struct engine_stats sum = l->lane[0].st;

	sum.failures = NULL;
	sum.nfailures = sum.nfailures_alloc = 0;
	for (unsigned i = 1; i < l->n; i++) {
		struct engine_stats h = l->lane[i].st;

		h.nfailures = 0; /* progress needs no failures */
		engine_stats_add_lane(&sum, &h);
	}
	l->env.progress(l->env.ctx, &sum);
	engine_stats_release(&sum);
}

static void lane_progress(void *ctx, const struct engine_stats *st)
{
	struct lane *ln = ctx;
	struct lanes *l = ln->l;

	pthread_mutex_lock(&l->lock);
	/* counters only: the failures stay the lane's own (its engine_run owns them) */
	ln->st = *st;
	ln->st.failures = NULL;
	ln->st.nfailures = ln->st.nfailures_alloc = 0;
	progress_all(l);
	pthread_mutex_unlock(&l->lock);
}

static void *helper_main(void *arg)
{
	struct lane *ln = arg;
	struct lanes *l = ln->l;
	struct state_conn *sc = NULL;
	struct ledger_state *ls = NULL;
	struct engine_stats st;
	struct fleet_err ferr;

	fleet_log_thread_restore(&l->log);
	memset(&st, 0, sizeof(st));
	ln->rc = -1;
	if (state_store_connect(l->env.store, &sc, &ln->err) == 0) {
		ls = ledger_state_new(sc, &l->env.lease);
		ln->job.ledger = ledger_state_bind(ls);
		ln->rc = engine_run(&ln->job, &st, &ln->err);
		/* what the ledger holds back (the last window's end, the folder's status) is written
		 * before the lane ends; when it cannot be, the window stays open and the account is
		 * not done (the next attempt matches it) */
		fleet_err_clear(&ferr);
		if (ledger_state_flush(ls, &ferr) < 0 && ln->rc >= 0) {
			ln->rc = -1;
			ln->err = ferr;
		}
	}
	pthread_mutex_lock(&l->lock);
	ln->st = st; /* the lane's final stats, failures included (freed by lanes_finish) */
	ln->error_side = st.error_side;
	if (ln->rc < 0 && ln->claims && strcmp(ln->err.code, FLEET_ERR_CODE_CANCELLED) != 0)
		atomic_store(&l->stop, 1);
	pthread_mutex_unlock(&l->lock);
	if (ln->rc < 0 && !ln->claims)
		log_warn("connection pair %u of the account could not start (%s): the others copy its share",
			 ln->index + 1, ln->err.message);
	ledger_state_free(&ls);
	if (sc) {
		l->env.release(l->env.ctx, sc, ln->slot);
		ln->slot[0] = ln->slot[1] = -1;
	}
	state_conn_close(&sc);
	return NULL;
}

static unsigned lanes_start(void *ctx, unsigned want)
{
	struct lanes *l = ctx;
	unsigned got = 0;

	fleet_log_thread_save(&l->log);
	while (got < want && l->n < l->env.max && l->n < ENGINE_CONNS_PER_ACCOUNT_MAX && !atomic_load(&l->stop)) {
		struct lane *ln = &l->lane[l->n];

		memset(ln, 0, sizeof(*ln));
		ln->l = l;
		ln->index = l->n;
		ln->slot[0] = ln->slot[1] = -1;
		if (l->env.take(l->env.ctx, l->env.sc, ln->slot) <= 0)
			break; /* a server is full: fewer lanes, never a wait */
		ln->api = l->lane[0].api;
		ln->api.lane = ln->index;
		ln->job = *l->env.job;
		ln->job.lanes = &ln->api;
		ln->job.budget = NULL;
		ln->job.progress = lane_progress;
		ln->job.progress_ctx = ln;
		pthread_mutex_lock(&l->lock);
		l->n++;
		pthread_mutex_unlock(&l->lock);
		if (pthread_create(&ln->tid, NULL, helper_main, ln) != 0) {
			l->env.release(l->env.ctx, l->env.sc, ln->slot);
			pthread_mutex_lock(&l->lock);
			l->n--;
			pthread_mutex_unlock(&l->lock);
			break;
		}
		ln->started = 1;
		got++;
	}
	if (got)
		log_info("%u more connection pair%s for this account (--conns-per-account %u)", got,
			 got == 1 ? "" : "s", l->env.max);
	return got;
}

struct lanes *lanes_new(const struct lanes_env *env)
{
	struct lanes *l = xcalloc(1, sizeof(*l));

	l->env = *env;
	pthread_mutex_init(&l->lock, NULL);
	atomic_init(&l->stop, 0);
	l->n = 1;
	l->lane[0].l = l;
	l->lane[0].slot[0] = l->lane[0].slot[1] = -1;
	l->lane[0].api.lane = 0;
	l->lane[0].api.max = env->max < ENGINE_CONNS_PER_ACCOUNT_MAX ? env->max : ENGINE_CONNS_PER_ACCOUNT_MAX;
	l->lane[0].api.start = lanes_start;
	l->lane[0].api.claim = lanes_claim;
	l->lane[0].api.stop = &l->stop;
	l->lane[0].api.ctx = l;
	return l;
}

void lanes_bind(struct lanes *l, struct engine_job *job)
{
	job->lanes = &l->lane[0].api;
	job->progress = lane_progress;
	job->progress_ctx = &l->lane[0];
}

static int real_failure(const struct lane *ln)
{
	return ln->rc < 0 && strcmp(ln->err.code, FLEET_ERR_CODE_CANCELLED) != 0;
}

void lanes_finish(struct lanes *l, int *rc, struct engine_stats *st, struct fleet_err *err)
{
	const struct lane *failed = NULL;

	if (*rc < 0 && strcmp(err->code, FLEET_ERR_CODE_CANCELLED) != 0)
		atomic_store(&l->stop, 1); /* lane 0 failed: the helpers stop too */
	for (unsigned i = 1; i < l->n; i++)
		if (l->lane[i].started)
			pthread_join(l->lane[i].tid, NULL);
	l->lane[0].rc = *rc;
	l->lane[0].err = *err;
	/* The account's error: the first real one (lane 0 first); a stop that another lane's failure
	 * caused is not the account's reason. A helper that never claimed a folder does not count. */
	for (unsigned i = 0; i < l->n && !failed; i++)
		if (real_failure(&l->lane[i]) && (i == 0 || l->lane[i].claims))
			failed = &l->lane[i];
	for (unsigned i = 1; i < l->n; i++) {
		struct lane *ln = &l->lane[i];

		engine_stats_add_lane(st, &ln->st);
		if (ln->rc > 0 && *rc == 0)
			*rc = 1;
		if (ln->rc < 0 && ln->claims && *rc >= 0 && !failed) {
			*rc = -1; /* cancelled with folders left: the account stopped on request */
			*err = ln->err;
		}
		engine_stats_release(&ln->st);
	}
	if (failed && failed != &l->lane[0]) {
		*rc = -1;
		*err = failed->err;
		st->error_side = failed->error_side;
	}
}

void lanes_free(struct lanes **pl)
{
	struct lanes *l = *pl;

	if (!l)
		return;
	for (size_t i = 0; i < l->nclaims; i++)
		xfree(&l->claims[i].name);
	xfree(&l->claims);
	pthread_mutex_destroy(&l->lock);
	xfree(pl);
}

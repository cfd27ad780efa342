/* scheduler/lanes.c: several connection pairs for one account (lanes.h). */
#include "scheduler/lanes.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/util.h"
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
	int split_failed; /* it failed inside a split, where the offering lane copies what it left */
	/* lane 0's log context when this lane was started: its own copy, since lane 0 starts more
	 * lanes (and saves again) while the earlier ones restore theirs */
	struct fleet_log_thread log;
};

struct claim {
	char *name;
	unsigned lane;
};

/* A folder split by UID range (engine_lanes.split_*): its windows are given out in order. */
struct split {
	void *p; /* the engine's description */
	size_t nwin, next;
	unsigned users; /* lanes that joined and have not left */
	int closed;
};

struct lanes {
	struct lanes_env env;
	pthread_mutex_t lock;
	atomic_int stop;
	struct lane lane[ENGINE_CONNS_PER_ACCOUNT_MAX]; /* [0] is the worker's own engine_run */
	unsigned n;		     /* lanes started, lane 0 included */
	struct claim *claims;
	size_t nclaims, alloc;
	pthread_cond_t left; /* a lane left a split */
	struct split split[ENGINE_CONNS_PER_ACCOUNT_MAX];
	unsigned nsplit;
	int expect;		/* lane 0 announced a split (split_expect): helpers wait for it */
	pthread_cond_t offered; /* a split was offered, or the announcement withdrawn */
};

static struct split *split_find(struct lanes *l, const void *p)
{
	for (unsigned i = 0; i < l->nsplit; i++)
		if (l->split[i].p == p)
			return &l->split[i];
	return NULL;
}

static int lanes_split_offer(void *ctx, void *p, size_t nwin)
{
	struct lanes *l = ctx;
	int rc = -1;

	pthread_mutex_lock(&l->lock);
	/* one split per lane at most (a lane copies one folder at a time) */
	if (l->nsplit < ENGINE_CONNS_PER_ACCOUNT_MAX) {
		struct split *sp = &l->split[l->nsplit++];

		memset(sp, 0, sizeof(*sp));
		sp->p = p;
		sp->nwin = nwin;
		rc = 0;
		pthread_cond_broadcast(&l->offered);
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

static void lanes_split_expect(void *ctx, int on)
{
	struct lanes *l = ctx;

	pthread_mutex_lock(&l->lock);
	l->expect = on;
	pthread_cond_broadcast(&l->offered);
	pthread_mutex_unlock(&l->lock);
}

/* Under l->lock: the account stops (a lane failed) or was cancelled. */
static int lanes_stopping(struct lanes *l)
{
	const atomic_int *cancel = l->env.job ? l->env.job->cancel : NULL;

	return atomic_load(&l->stop) || (cancel && atomic_load(cancel));
}

static void *lanes_split_join(void *ctx, unsigned lane)
{
	struct lanes *l = ctx;
	void *p = NULL;
	uint64_t until = fleet_now_ms() + LANES_SPLIT_WAIT_MS;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		for (unsigned i = 0; i < l->nsplit && !p; i++) {
			struct split *sp = &l->split[i];

			if (!sp->closed && sp->next < sp->nwin) {
				sp->users++;
				p = sp->p;
				if (lane < ENGINE_CONNS_PER_ACCOUNT_MAX)
					l->lane[lane].claims++; /* its failure is the account's */
			}
		}
		/* a split announced and not offered yet: wait for it (bounded, in slices) */
		if (p || !l->expect || lanes_stopping(l) || fleet_now_ms() >= until)
			break;
		{
			struct timespec ts;
			uint64_t ns;

			clock_gettime(CLOCK_REALTIME, &ts);
			ns = (uint64_t)ts.tv_nsec + (uint64_t)LANES_SPLIT_WAIT_SLICE_MS * 1000000u;
			ts.tv_sec += (time_t)(ns / 1000000000u);
			ts.tv_nsec = (long)(ns % 1000000000u);
			pthread_cond_timedwait(&l->offered, &l->lock, &ts);
		}
	}
	pthread_mutex_unlock(&l->lock);
	return p;
}

static long lanes_split_take(void *ctx, void *p)
{
	struct lanes *l = ctx;
	struct split *sp;
	long k = -1;

	pthread_mutex_lock(&l->lock);
	sp = split_find(l, p);
	/* not after a stop: a lane failed, the rest of the folder waits for the next attempt */
	if (sp && !sp->closed && sp->next < sp->nwin && !atomic_load(&l->stop))
		k = (long)sp->next++;
	pthread_mutex_unlock(&l->lock);
	return k;
}

static void lanes_split_leave(void *ctx, void *p, unsigned lane, int failed)
{
	struct lanes *l = ctx;
	struct split *sp;

	pthread_mutex_lock(&l->lock);
	sp = split_find(l, p);
	if (sp && sp->users)
		sp->users--;
	if (failed && lane < ENGINE_CONNS_PER_ACCOUNT_MAX)
		l->lane[lane].split_failed = 1;
	pthread_cond_broadcast(&l->left);
	pthread_mutex_unlock(&l->lock);
}

static size_t lanes_split_close(void *ctx, void *p)
{
	struct lanes *l = ctx;
	struct split *sp;
	size_t given = 0;

	pthread_mutex_lock(&l->lock);
	sp = split_find(l, p);
	if (sp) {
		sp->closed = 1;
		/* found again after each wait: another lane's close may move the entry */
		while ((sp = split_find(l, p)) != NULL && sp->users)
			pthread_cond_wait(&l->left, &l->lock);
		if (sp) {
			given = sp->next;
			*sp = l->split[--l->nsplit];
		}
	}
	pthread_mutex_unlock(&l->lock);
	return given;
}

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

	fleet_log_thread_restore(&ln->log);
	memset(&st, 0, sizeof(st));
	ln->rc = -1;
	if (state_store_connect(l->env.store, &sc, &ln->err) == 0) {
		ls = ledger_state_new(sc, &l->env.lease);
		ledger_state_set_pair(ls, ln->index);
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
	if (ln->rc < 0 && ln->claims && !ln->split_failed && strcmp(ln->err.code, FLEET_ERR_CODE_CANCELLED) != 0)
		atomic_store(&l->stop, 1);
	pthread_mutex_unlock(&l->lock);
	if (ln->rc < 0 && !ln->claims)
		log_warn("connection pair %u of the account could not start (%s): the others copy its share",
			 ln->index + 1, ln->err.message);
	else if (ln->rc < 0 && ln->split_failed)
		log_warn("connection pair %u stopped inside a shared folder (%s): the others copy what it left",
			 ln->index + 1, ln->err.message);
	ledger_state_free(&ls);
	if (sc) {
		l->env.release(l->env.ctx, sc, ln->slot);
		ln->slot[0] = ln->slot[1] = -1;
	}
	state_store_disconnect(l->env.store, &sc);
	return NULL;
}

static unsigned lanes_start(void *ctx, unsigned want)
{
	struct lanes *l = ctx;
	unsigned got = 0;

	while (got < want && l->n < l->env.max && l->n < ENGINE_CONNS_PER_ACCOUNT_MAX && !atomic_load(&l->stop)) {
		struct lane *ln = &l->lane[l->n];

		memset(ln, 0, sizeof(*ln));
		ln->l = l;
		ln->index = l->n;
		ln->slot[0] = ln->slot[1] = -1;
		fleet_log_thread_save(&ln->log);
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
	pthread_cond_init(&l->left, NULL);
	pthread_cond_init(&l->offered, NULL);
	atomic_init(&l->stop, 0);
	l->n = 1;
	l->lane[0].l = l;
	l->lane[0].slot[0] = l->lane[0].slot[1] = -1;
	l->lane[0].api.lane = 0;
	l->lane[0].api.max = env->max < ENGINE_CONNS_PER_ACCOUNT_MAX ? env->max : ENGINE_CONNS_PER_ACCOUNT_MAX;
	l->lane[0].api.start = lanes_start;
	l->lane[0].api.claim = lanes_claim;
	l->lane[0].api.stop = &l->stop;
	l->lane[0].api.split_offer = lanes_split_offer;
	l->lane[0].api.split_join = lanes_split_join;
	l->lane[0].api.split_take = lanes_split_take;
	l->lane[0].api.split_leave = lanes_split_leave;
	l->lane[0].api.split_close = lanes_split_close;
	l->lane[0].api.split_expect = lanes_split_expect;
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
	lanes_split_expect(l, 0); /* lane 0 is done: no helper waits for a split of it */
	for (unsigned i = 1; i < l->n; i++)
		if (l->lane[i].started)
			pthread_join(l->lane[i].tid, NULL);
	l->lane[0].rc = *rc;
	l->lane[0].err = *err;
	/* The account's error: the first real one (lane 0 first); a stop that another lane's failure
	 * caused is not the account's reason. A helper that never claimed a folder does not count, nor
	 * one that failed inside a split (the offering lane copied what it left, or failed itself). */
	for (unsigned i = 0; i < l->n && !failed; i++)
		if (real_failure(&l->lane[i]) && (i == 0 || (l->lane[i].claims && !l->lane[i].split_failed)))
			failed = &l->lane[i];
	for (unsigned i = 1; i < l->n; i++) {
		struct lane *ln = &l->lane[i];

		engine_stats_add_lane(st, &ln->st);
		if (ln->rc > 0 && *rc == 0)
			*rc = 1;
		if (ln->rc < 0 && ln->claims && !ln->split_failed && *rc >= 0 && !failed) {
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
	pthread_cond_destroy(&l->left);
	pthread_cond_destroy(&l->offered);
	pthread_mutex_destroy(&l->lock);
	xfree(pl);
}

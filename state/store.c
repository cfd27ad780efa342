/* state/store.c: the state store opened once per process (see store.h). */
#include "state/store.h"

#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/log.h"
#include "state/cluster.h"

struct state_store {
	struct state_conn *sc;
	struct state_cluster *cluster;
	char *conninfo;
	pthread_mutex_t idle_lock; /* guards idle[] and nidle */
	struct state_conn *idle[STATE_STORE_IDLE_MAX];
	unsigned nidle;
};

static void wipe(char **s)
{
	if (*s) {
		OPENSSL_cleanse(*s, strlen(*s));
		xfree(s);
	}
}

/* STATE_STORE_EXISTING: the embedded cluster must be there already. */
static int require_existing(const char *state_arg, const char *base_dir, struct fleet_err *err)
{
	char *probe = NULL;
	enum state_location_kind kind = state_location_resolve(state_arg, &probe);
	struct stat st;
	char *path;
	int found;

	wipe(&probe);
	if (kind != STATE_LOC_EMBEDDED)
		return 0;
	path = xasprintf("%s/.imapfleet/pg/PG_VERSION", base_dir ? base_dir : ".");
	found = stat(path, &st) == 0;
	xfree(&path);
	if (found)
		return 0;
	fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_NO_STORE,
		      "no state store here: %s/.imapfleet/pg does not exist", base_dir ? base_dir : ".");
	fleet_err_detail(err, "run this from the directory where 'imapfleet run' ran, or pass --state "
			      "URL (or set IMAPFLEET_STATE)");
	return -1;
}

int state_store_open(const char *state_arg, const char *base_dir, unsigned flags, struct state_store **out,
		     struct fleet_err *err)
{
	struct state_store *st;

	*out = NULL;
	if ((flags & STATE_STORE_EXISTING) && require_existing(state_arg, base_dir, err) < 0)
		return -1;
	st = xcalloc(1, sizeof(*st));
	pthread_mutex_init(&st->idle_lock, NULL);
	if (state_location_open(state_arg, base_dir, &st->conninfo, &st->cluster, err) < 0 ||
	    state_conn_open(st->conninfo, &st->sc, err) < 0) {
		state_store_close(&st);
		return -1;
	}
	*out = st;
	return 0;
}

struct state_conn *state_store_conn(struct state_store *st)
{
	return st->sc;
}

int state_store_embedded(const struct state_store *st)
{
	return st->cluster != NULL;
}

int state_store_connect(struct state_store *st, struct state_conn **out, struct fleet_err *err)
{
	pthread_mutex_lock(&st->idle_lock);
	*out = st->nidle ? st->idle[--st->nidle] : NULL;
	pthread_mutex_unlock(&st->idle_lock);
	if (*out)
		return 0;
	return state_conn_open_nomigrate(st->conninfo, out, err);
}

void state_store_disconnect(struct state_store *st, struct state_conn **sc)
{
	if (!*sc)
		return;
	if (state_conn_reusable(*sc)) {
		pthread_mutex_lock(&st->idle_lock);
		if (st->nidle < STATE_STORE_IDLE_MAX) {
			st->idle[st->nidle++] = *sc;
			*sc = NULL;
		}
		pthread_mutex_unlock(&st->idle_lock);
	}
	state_conn_close(sc);
}

void state_store_close(struct state_store **stp)
{
	struct state_store *st = stp ? *stp : NULL;
	struct fleet_err err;

	if (!st)
		return;
	while (st->nidle)
		state_conn_close(&st->idle[--st->nidle]);
	pthread_mutex_destroy(&st->idle_lock);
	state_conn_close(&st->sc);
	if (st->cluster && state_cluster_release(&st->cluster, &err) < 0)
		log_warn("%s", err.message);
	wipe(&st->conninfo);
	xfree(stp);
}

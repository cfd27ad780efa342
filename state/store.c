/* state/store.c: the state store opened once per process (see store.h). */
#include "state/store.h"

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
	return state_conn_open_nomigrate(st->conninfo, out, err);
}

void state_store_close(struct state_store **stp)
{
	struct state_store *st = stp ? *stp : NULL;
	struct fleet_err err;

	if (!st)
		return;
	state_conn_close(&st->sc);
	if (st->cluster && state_cluster_release(&st->cluster, &err) < 0)
		log_warn("%s", err.message);
	wipe(&st->conninfo);
	xfree(stp);
}

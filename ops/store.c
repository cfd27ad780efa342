/* ops/store.c: the state store opened for reading by status, report and retry (see store.h). */
#include "ops/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/log.h"
#include "ops/report.h"
#include "state/cluster.h"

/* ---- the store -------------------------------------------------------------------------------- */

struct report_store {
	struct state_conn *sc;
	struct state_cluster *cluster;
	char *conninfo;
};

int report_store_open(const char *state_arg, struct report_store **out, struct fleet_err *err)
{
	struct report_store *rs = xcalloc(1, sizeof(*rs));
	char *probe = NULL;

	*out = NULL;
	if (state_location_resolve(state_arg, &probe) == STATE_LOC_EMBEDDED) {
		struct stat st;

		/* Reading must not create a cluster: a wrong directory would look like an empty store. */
		if (stat(".imapfleet/pg/PG_VERSION", &st) < 0) {
			xfree(&rs);
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_NO_STORE,
				      "no state store here: ./.imapfleet/pg does not exist");
			fleet_err_detail(
			    err, "run this from the directory where 'imapfleet run' ran, or pass --state "
				 "URL (or set IMAPFLEET_STATE)");
			return -1;
		}
	}
	if (probe) {
		OPENSSL_cleanse(probe, strlen(probe));
		xfree(&probe);
	}
	if (state_location_open(state_arg, NULL, &rs->conninfo, &rs->cluster, err) < 0 ||
	    state_conn_open(rs->conninfo, &rs->sc, err) < 0) {
		report_store_close(&rs);
		return -1;
	}
	*out = rs;
	return 0;
}

struct state_conn *report_store_conn(struct report_store *rs)
{
	return rs->sc;
}

void report_store_close(struct report_store **rsp)
{
	struct report_store *rs = *rsp;
	struct fleet_err err;

	if (!rs)
		return;
	state_conn_close(&rs->sc);
	if (rs->cluster && state_cluster_release(&rs->cluster, &err) < 0)
		log_warn("%s", err.message);
	if (rs->conninfo) {
		OPENSSL_cleanse(rs->conninfo, strlen(rs->conninfo));
		xfree(&rs->conninfo);
	}
	xfree(rsp);
}

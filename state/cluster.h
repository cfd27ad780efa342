/* state/cluster.h: where the state lives, and the embedded PostgreSQL cluster.
 *
 * Resolution order (design section 3): `--state URL`, else IMAPFLEET_STATE, else libpq's own
 * environment when PGHOST or PGDATABASE is set (conninfo ""), else the embedded cluster that
 * imapfleet creates and manages under ./.imapfleet/pg: initdb on first use, started on demand by
 * pg_ctl on a private unix socket in that directory (listen_addresses = '', socket mode 0700), and
 * stopped when the last imapfleet process using it exits.
 *
 * Users are counted with flock: each process holding a `struct state_cluster` keeps a shared lock
 * on .imapfleet/pg.users; state_cluster_release takes .imapfleet/pg.lock (which also serialises
 * starting) and tries an exclusive non-blocking lock on pg.users: when it gets it, no other process
 * uses the cluster and it runs `pg_ctl stop -m fast`. A process killed with -9 drops its lock with
 * it, so the next process to release stops the server. Lock files are close-on-exec so the server
 * never inherits them.
 *
 * As root, initdb and pg_ctl refuse to run, so they run as the `postgres` user (else `nobody`)
 * with the data directory given to that user; its parent directories must be traversable by it.
 * Server binaries are looked for in /usr/lib/postgresql/<version>/bin (highest version first), then
 * `pg_config --bindir`, then PATH; when missing the error names the Debian package `postgresql`.
 */
#ifndef IMAPFLEET_STATE_CLUSTER_H
#define IMAPFLEET_STATE_CLUSTER_H

#include "common/err.h"

/* the embedded cluster could not be made or started */
#define STATE_ERR_CLUSTER "PG_CLUSTER"
/* PostgreSQL's programs (initdb, pg_ctl) are not installed */
#define STATE_ERR_PG_MISSING "PG_MISSING"

/* Cap of a conninfo string this module builds, and of the lines it adds to the cluster's config. */
#define STATE_CONNINFO_MAX ((size_t)1 << 16)
/* File descriptors closed before running initdb or pg_ctl, at most. */
#define STATE_CLUSTER_FD_MAX 65536

enum state_location_kind {
	STATE_LOC_ARG = 0,   /* --state URL */
	STATE_LOC_ENV,	     /* IMAPFLEET_STATE */
	STATE_LOC_LIBPQ_ENV, /* PGHOST / PGDATABASE: conninfo "" */
	STATE_LOC_EMBEDDED   /* ./.imapfleet/pg */
};

/* Decides where the state lives. *conninfo: a heap copy of the URL ("" for libpq's environment),
 * NULL for the embedded cluster (then call state_cluster_start). */
enum state_location_kind state_location_resolve(const char *state_arg, char **conninfo);
const char *state_location_name(enum state_location_kind kind);

struct state_cluster;

/* Makes sure the embedded cluster under base_dir/.imapfleet (base_dir NULL = the current directory)
 * exists and runs, and counts this process as a user until state_cluster_release. Creating takes a
 * few seconds the first time; later calls only check. Errors: server binaries missing
 * (FLEET_ERR_PERMANENT, code "PG_MISSING"), initdb or start failing (code "PG_CLUSTER", the
 * server log's path in the detail). */
int state_cluster_start(const char *base_dir, struct state_cluster **out, struct fleet_err *err);
/* conninfo for state_conn_open (borrowed; valid until release). */
const char *state_cluster_conninfo(const struct state_cluster *c);
/* Stops counting this process; stops the server when it was the last user. *c becomes NULL. */
int state_cluster_release(struct state_cluster **c, struct fleet_err *err);
/* Directory with initdb and pg_ctl, heap string; NULL with err (PG_MISSING) when none is found. */
char *state_cluster_find_bindir(struct fleet_err *err);

/* The whole resolution in one call: *conninfo (heap) to pass to state_conn_open; *cluster is set
 * (release it at exit) when the embedded cluster is used, else NULL. */
int state_location_open(const char *state_arg, const char *base_dir, char **conninfo,
			struct state_cluster **cluster, struct fleet_err *err);

/* A copy of conninfo (URL or key=value) with the database name replaced (heap string, or NULL when
 * conninfo does not parse or the copy would pass its 64 KiB cap). */
char *state_conninfo_with_dbname(const char *conninfo, const char *dbname);

#endif

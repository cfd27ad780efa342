/* state/store.h: the state store as a whole, opened and closed once per process.
 *
 * A handle holds where the state lives (--state URL, IMAPFLEET_STATE, libpq's environment or the
 * embedded cluster under ./.imapfleet; see cluster.h), the embedded cluster's user count when it
 * is used, and the first connection, migrated to STATE_SCHEMA_VERSION. `run`, `worker` and
 * `verify` (the scheduler) and `status`, `report` and `retry` (the operator tools) all open the
 * store through it; threads that need their own connection ask it for one (state_store_connect).
 *
 * Threads: state_store_open and state_store_close belong to one thread (the main one);
 * state_store_connect may be called from any thread while the handle is open. The connection
 * returned by state_store_conn is not thread-safe (state.h).
 *
 * Errors: an unreachable store keeps the state layer's class and code (FLEET_ERR_TRANSIENT,
 * STATE_ERR_CONNECTION); the embedded cluster failing is STATE_ERR_CLUSTER or STATE_ERR_PG_MISSING
 * (cluster.h); STATE_STORE_EXISTING and no cluster in this directory is STATE_ERR_NO_STORE.
 */
#ifndef IMAPFLEET_STATE_STORE_H
#define IMAPFLEET_STATE_STORE_H

#include "common/err.h"
#include "state/state.h"

/* err->code when STATE_STORE_EXISTING finds no embedded cluster in the directory */
#define STATE_ERR_NO_STORE "NO_STATE_STORE"

enum {
	/* Never create an embedded cluster (the operator tools read; a wrong directory would look
	 * like an empty store): fail with STATE_ERR_NO_STORE when ./.imapfleet/pg does not exist. */
	STATE_STORE_EXISTING = 1 << 0
};

struct state_store;

/* Resolves where the state lives, starts the embedded cluster when it is the one (base_dir NULL =
 * the current directory), connects and applies pending migrations. flags: STATE_STORE_*. */
int state_store_open(const char *state_arg, const char *base_dir, unsigned flags, struct state_store **out,
		     struct fleet_err *err);
/* The connection opened with the store (borrowed; valid until state_store_close). */
struct state_conn *state_store_conn(struct state_store *st);
/* 1 when the state lives in the embedded cluster under base_dir/.imapfleet, else 0. */
int state_store_embedded(const struct state_store *st);
/* Idle connections kept for reuse: a login to PostgreSQL costs the client a SCRAM key derivation
 * (4,096 HMAC rounds, about 3 ms of CPU); the extra connection pairs that start near the end of a
 * run take the connections of the workers that have nothing left to claim. */
#define STATE_STORE_IDLE_MAX 16

/* Another connection to the same store, for a thread of its own (the schema is already in place:
 * no migration): an idle one given back by state_store_disconnect when there is one. The caller
 * gives it back with state_store_disconnect (or closes it with state_conn_close) before
 * state_store_close. */
int state_store_connect(struct state_store *st, struct state_conn **out, struct fleet_err *err);
/* Gives a connection from state_store_connect back: kept for the next caller when it is healthy
 * and outside a transaction and fewer than STATE_STORE_IDLE_MAX are idle, else closed. *sc
 * becomes NULL; NULL is fine. */
void state_store_disconnect(struct state_store *st, struct state_conn **sc);
/* Closes the connection, stops the embedded cluster when this process was its last user and wipes
 * the conninfo (it may hold a password). NULL and *st NULL are fine; *st becomes NULL. */
void state_store_close(struct state_store **st);

#endif

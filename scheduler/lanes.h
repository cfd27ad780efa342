/* scheduler/lanes.h: several connection pairs for one account (run --conns-per-account).
 *
 * The account's own engine_run (lane 0, in the worker's thread) asks for helpers through
 * engine_lanes.start once it finds mail to copy; each helper is a thread with its own state
 * connection, ledger binding and connection slot on both servers (taken without waiting: a helper
 * is only started where a slot is free), running engine_run as lane N. Folders are claimed by name,
 * one lane per folder (engine/engine.h). After lane 0's engine_run, lanes_finish waits for the
 * helpers and folds their outcome into lane 0's.
 *
 * A helper that fails before it claimed any folder (its login refused: a server's per-user limit)
 * costs nothing: the others copy its share. A helper that fails inside a folder another lane split
 * (engine_lanes.split_leave with failed = 1) stops no one either: the lane that split the folder
 * reads it again and copies what the helper left. A helper that fails in a folder of its own stops
 * the others before their next APPEND and its error becomes the account's.
 *
 * Thread-safety: lanes_new, lanes_finish and lanes_free in the worker's thread; the engine_lanes
 * table is called from every lane.
 */
#ifndef IMAPFLEET_SCHEDULER_LANES_H
#define IMAPFLEET_SCHEDULER_LANES_H

#include "engine/engine.h"
#include "state/state.h"
#include "state/store.h"

/* What the lanes need from the scheduler. */
struct lanes_env {
	struct state_store *store;    /* the state store, for each helper's own connection */
	struct state_lease lease;     /* the account's lease, under which every lane records */
	struct state_conn *sc;	      /* the worker's connection: used by take() in lane 0's thread */
	const struct engine_job *job; /* lane 0's job (sides, options, cancel); outlives the lanes */
	unsigned max;		      /* lanes at most, lane 0 included */
	/* A connection slot on both servers for one more lane, without waiting: 1 taken, 0 full. */
	int (*take)(void *ctx, struct state_conn *sc, int slot[2]);
	/* Gives a lane's slots back (called in the lane's thread with its own connection). */
	void (*release)(void *ctx, struct state_conn *sc, int slot[2]);
	/* The account's running totals, all lanes together (called under the lanes' lock). */
	void (*progress)(void *ctx, const struct engine_stats *st);
	void *ctx;
};

/* How long a helper started early (engine_lanes.split_expect) waits in split_join for the split
 * lane 0 announced: lane 0 is reading the folder's metadata meanwhile (700,000 messages take about
 * a minute on a far server); a helper that waited this long ends and the others copy its share. */
#define LANES_SPLIT_WAIT_MS (120 * 1000)
/* The wait is cut in slices of this length to look at the account's stop and cancel flags. */
#define LANES_SPLIT_WAIT_SLICE_MS 200

struct lanes;
struct lanes *lanes_new(const struct lanes_env *env);
/* Makes job (lane 0's, env->job) use the lanes: its lanes table and its progress callback, which
 * reports every lane's totals through env->progress. */
void lanes_bind(struct lanes *l, struct engine_job *job);
/* Waits for the helpers and folds their stats and outcome into lane 0's: *rc < 0 with *err when a
 * lane failed (a real failure before a stop another lane's failure caused), else the worst of 0/1. */
void lanes_finish(struct lanes *l, int *rc, struct engine_stats *st, struct fleet_err *err);
void lanes_free(struct lanes **l);

#endif

/* state/slot.c: per-server connection slots shared by every worker host.
 *
 * A slot is a row (server, slot_no) with slot_no < the limit; the primary key makes it impossible
 * for two holders to have the same slot, so at most `limit` rows exist below the limit whatever
 * the races. A slot expires with its engine's registration (the heartbeat extends both), so the
 * slots of a host that died are taken back by the next acquire.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state_private.h"

#define SLOT_ACQUIRE_TRIES 8

/* Deletes the server's slots whose engine registration expired or whose job's lease is gone (its
 * host died, or the job moved on): they are free at once, instead of stalling a restarted run for
 * the whole registration TTL. *n = slots freed. */
static int slot_reclaim(struct state_conn *sc, const char **p, int64_t *n, struct fleet_err *err)
{
	return state_cmd_count(state_exec_prepared(
	    sc, STATE_STMT_SLOT_RECLAIM, "reclaim expired connection slots",
	    "DELETE FROM conn_slot c WHERE c.server = $1 AND (c.expires_at < now()"
	    " OR (c.job_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM job j WHERE j.id = c.job_id"
	    "  AND j.state = 'running' AND j.lease_owner = c.engine_id AND j.lease_expires >= now())))",
	    1, p, STATE_EXEC_IDEMPOTENT, err), n);
}

int state_slot_acquire(struct state_conn *sc, const char *server_key, int limit, int64_t engine_id,
		       int64_t job_id, int *slot, struct fleet_err *err)
{
	char b1[STATE_NUM_MAX], b2[STATE_NUM_MAX], b3[STATE_NUM_MAX];
	const char *p[4] = {server_key, state_fmt_i64(b1, limit), state_fmt_i64(b2, engine_id),
			    state_fmt_i64(b3, job_id)};
	int reclaimed = 0;

	if (limit <= 0)
		return 1;
	for (int attempt = 0; attempt < SLOT_ACQUIRE_TRIES; attempt++) {
		PGresult *res = state_exec_prepared(
		    sc, STATE_STMT_SLOT_ACQUIRE, "acquire a connection slot",
		    "INSERT INTO conn_slot (server, slot_no, engine_id, job_id, expires_at)"
		    " SELECT $1, s, $3, nullif($4::bigint, 0),"
		    "  coalesce((SELECT expires_at FROM engine WHERE id = $3 AND stopped_at IS NULL"
		    "   AND expires_at > now()), now() + interval '60 seconds')"
		    " FROM generate_series(0, $2::int - 1) AS s"
		    " WHERE NOT EXISTS (SELECT 1 FROM conn_slot c WHERE c.server = $1 AND c.slot_no = s)"
		    " ORDER BY s LIMIT 1"
		    " ON CONFLICT (server, slot_no) DO NOTHING RETURNING slot_no",
		    4, p, 0, err);
		int64_t held;

		if (!res)
			return -1;
		if (PQntuples(res) == 1) {
			*slot = (int)state_get_i64(res, 0, 0);
			PQclear(res);
			return 0;
		}
		PQclear(res);
		/* Nothing inserted. Slots whose holder is gone are taken back only now, when they are in
		 * the way (one statement fewer per acquire while the server has room). */
		if (!reclaimed) {
			int64_t n = 0;

			reclaimed = 1;
			if (slot_reclaim(sc, p, &n, err) < 0)
				return -1;
			if (n > 0)
				continue;
		}
		/* Every slot is held, or another host took the one we chose. */
		res = state_exec(sc, "count connection slots",
				 "SELECT count(*) FROM conn_slot WHERE server = $1 AND slot_no < $2::int", 2,
				 p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
		if (!res)
			return -1;
		held = state_get_i64(res, 0, 0);
		PQclear(res);
		if (held >= limit)
			return 1;
	}
	return 1;
}

int state_slot_release(struct state_conn *sc, const char *server_key, int slot, int64_t engine_id,
		       struct fleet_err *err)
{
	char b1[STATE_NUM_MAX], b2[STATE_NUM_MAX];
	const char *p[3] = {server_key, state_fmt_i64(b1, slot), state_fmt_i64(b2, engine_id)};

	return state_done(state_exec_prepared(sc, STATE_STMT_SLOT_RELEASE, "release a connection slot",
					      "DELETE FROM conn_slot WHERE server = $1 AND slot_no = $2 AND engine_id = $3",
					      3, p, STATE_EXEC_IDEMPOTENT, err));
}

int state_slot_count(struct state_conn *sc, const char *server_key, int *count, struct fleet_err *err)
{
	const char *p[1] = {server_key};
	long n = 0;

	if (state_count(state_exec(sc, "count connection slots",
				   "SELECT count(*) FROM conn_slot WHERE server = $1 AND expires_at >= now()", 1, p,
				   NULL, NULL, STATE_EXEC_IDEMPOTENT, err),
			&n) < 0)
		return -1;
	*count = (int)n;
	return 0;
}

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

/* A slot whose holder is gone: its engine registration expired, or its job is no longer running
 * under that engine's lease (its host died, or the job moved on). Taken over when it is in the way
 * (the server has no free slot number), instead of stalling a restarted run for the whole
 * registration TTL. */
#define SLOT_STALE                                                                                          \
	"(c.expires_at < now() OR (c.job_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM job j"              \
	"  WHERE j.id = c.job_id AND j.state = 'running' AND j.lease_owner = c.engine_id"                 \
	"  AND j.lease_expires >= now())))"

int state_slot_acquire(struct state_conn *sc, const char *server_key, int limit, int64_t engine_id,
		       int64_t job_id, int *slot, int *held, struct fleet_err *err)
{
	char b1[STATE_NUM_MAX], b2[STATE_NUM_MAX], b3[STATE_NUM_MAX];
	const char *p[4] = {server_key, state_fmt_i64(b1, limit), state_fmt_i64(b2, engine_id),
			    state_fmt_i64(b3, job_id)};

	if (held)
		*held = 0;
	if (limit <= 0)
		return 1;
	/* One statement, whether the server has room or not: a free slot number is inserted; failing
	 * that, one slot whose holder is gone is taken over (updated in place, never deleted and
	 * inserted again); failing that, the count of slots held below the limit says whether the
	 * server is full (the answer) or another host took the number we chose (tried again). A full
	 * server costs one statement per try (it was three: insert, reclaim, count). */
	for (int attempt = 0; attempt < STATE_SLOT_ACQUIRE_TRIES; attempt++) {
		PGresult *res = state_exec_prepared(
		    sc, STATE_STMT_SLOT_ACQUIRE, "acquire a connection slot",
		    "WITH e AS (SELECT coalesce((SELECT expires_at FROM engine WHERE id = $3 AND stopped_at IS NULL"
		    "   AND expires_at > now()), now() + interval '60 seconds') AS t),"
		    " ins AS (INSERT INTO conn_slot (server, slot_no, engine_id, job_id, expires_at)"
		    "  SELECT $1, s, $3, nullif($4::bigint, 0), e.t FROM generate_series(0, $2::int - 1) AS s, e"
		    "  WHERE NOT EXISTS (SELECT 1 FROM conn_slot c WHERE c.server = $1 AND c.slot_no = s)"
		    "  ORDER BY s LIMIT 1"
		    "  ON CONFLICT (server, slot_no) DO NOTHING RETURNING slot_no),"
		    " old AS (SELECT c.server, c.slot_no FROM conn_slot c WHERE c.server = $1 AND c.slot_no < $2::int"
		    "  AND NOT EXISTS (SELECT 1 FROM ins) AND " SLOT_STALE
		    "  ORDER BY c.slot_no LIMIT 1 FOR UPDATE SKIP LOCKED),"
		    " took AS (UPDATE conn_slot c SET engine_id = $3, job_id = nullif($4::bigint, 0), expires_at = e.t"
		    "  FROM old, e WHERE c.server = old.server AND c.slot_no = old.slot_no RETURNING c.slot_no)"
		    " SELECT (SELECT slot_no FROM ins UNION ALL SELECT slot_no FROM took LIMIT 1),"
		    "  (SELECT count(*) FROM conn_slot WHERE server = $1 AND slot_no < $2::int)",
		    4, p, 0, err);
		int64_t n;

		if (!res)
			return -1;
		if (!PQgetisnull(res, 0, 0)) {
			*slot = (int)state_get_i64(res, 0, 0);
			PQclear(res);
			return 0;
		}
		n = state_get_i64(res, 0, 1);
		PQclear(res);
		if (held)
			*held = (int)n;
		if (n >= limit)
			return 1; /* every slot is held (by a live holder: a stale one would have been taken) */
		/* another host took the number we chose: look again */
	}
	return 1;
}

/* The free slot number of server $S below limit $L, when the lease ($1..$3, l) holds. */
#define SLOT_FREE(S, L)                                                                                     \
	"(SELECT s FROM generate_series(0, " L "::int - 1) AS s WHERE EXISTS (SELECT 1 FROM l)"               \
	"  AND NOT EXISTS (SELECT 1 FROM conn_slot c WHERE c.server = " S " AND c.slot_no = s) ORDER BY s LIMIT 1)"
#define SLOT_INSERT(S, N)                                                                                   \
	"(INSERT INTO conn_slot (server, slot_no, engine_id, job_id, expires_at)"                             \
	"  SELECT " S ", " N ".s, $2, $1, e.t FROM na, nb, e"                                                \
	"  ON CONFLICT (server, slot_no) DO NOTHING RETURNING slot_no)"

int state_slots_acquire_begin(struct state_conn *sc, const struct state_lease *lease, const char *const server[2],
			      const int limit[2], unsigned lease_ms, int slot[2], struct fleet_err *err)
{
	char lb[3][STATE_NUM_MAX], b[3][STATE_NUM_MAX];
	const char *p[8];
	PGresult *res;
	int64_t leased, begun;
	int both;

	slot[0] = slot[1] = -1;
	state_lease_params(lb, lease, p);
	p[3] = server[0];
	p[4] = state_fmt_i64(b[0], limit[0]);
	p[5] = server[1];
	p[6] = state_fmt_i64(b[1], limit[1]);
	p[7] = state_fmt_u64(b[2], lease_ms);
	/* Both numbers are chosen before either is inserted, so a server without one leaves nothing
	 * held; only a race with another host (ON CONFLICT) can insert one alone, released below. */
	res = state_exec_prepared(
	    sc, STATE_STMT_SLOTS_BEGIN, "take the connection slots and start the job",
	    "WITH e AS (SELECT coalesce((SELECT expires_at FROM engine WHERE id = $2 AND stopped_at IS NULL"
	    "   AND expires_at > now()), now() + interval '60 seconds') AS t),"
	    " l AS (SELECT id FROM job WHERE " LEASE_WHERE "),"
	    " na AS " SLOT_FREE("$4", "$5") ", nb AS " SLOT_FREE("$6", "$7") ","
	    " a AS " SLOT_INSERT("$4", "na") ", b AS " SLOT_INSERT("$6", "nb") ","
	    " u AS (UPDATE job SET lease_waiting = false, lease_expires = now() + $8::float8 * interval '1 millisecond',"
	    "  updated_at = now() WHERE " LEASE_WHERE " AND EXISTS (SELECT 1 FROM a) AND EXISTS (SELECT 1 FROM b)"
	    "  RETURNING id)"
	    " SELECT (SELECT count(*) FROM l), (SELECT slot_no FROM a), (SELECT slot_no FROM b),"
	    "  (SELECT count(*) FROM u)",
	    8, p, 0, err);
	if (!res)
		return -1;
	leased = state_get_i64(res, 0, 0);
	for (int k = 0; k < 2; k++)
		if (!PQgetisnull(res, 0, 1 + k))
			slot[k] = (int)state_get_i64(res, 0, 1 + k);
	begun = state_get_i64(res, 0, 3);
	PQclear(res);
	if (begun == 1)
		return 1;
	both = slot[0] >= 0 && slot[1] >= 0; /* both taken, the job not begun: its lease went meanwhile */
	for (int k = 0; k < 2; k++)
		if (slot[k] >= 0) {
			state_slot_release(sc, server[k], slot[k], lease->owner, NULL);
			slot[k] = -1;
		}
	if (leased == 0 || both)
		return state_lease_lost(sc, lease, err);
	return 0;
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

/* state/report.c: the queries behind `status`, `report` and `retry`: counts, jobs, failed messages,
 * throughput, the run list, the default run and the time spent per job. */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/util.h"
#include "state/state_private.h"

static int count_row(const PGresult *res, int i, void *arg)
{
	struct state_run_counts *out = arg;
	enum state_job_state s;

	if (state_job_state_from_name(state_get_str(res, i, 0), &s) == 0)
		out->jobs[s] = (long)state_get_i64(res, i, 1);
	out->msgs_copied += state_get_i64(res, i, 2);
	out->bytes_copied += state_get_i64(res, i, 3);
	out->msgs_skipped += state_get_i64(res, i, 4);
	out->msgs_failed += state_get_i64(res, i, 5);
	out->msgs_uncertain += state_get_i64(res, i, 9);
	if (strcmp(state_get_str(res, i, 0), "queued") == 0) {
		out->parked = (long)state_get_i64(res, i, 6);
		out->parked_until_ms = state_get_i64(res, i, 7);
		out->parked_eta_ms = state_get_i64(res, i, 8);
	}
	return 0;
}

int state_run_active_upto(struct state_conn *sc, int64_t run_id, long cap, long *n, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b1[STATE_NUM_MAX];
	const char *p[2] = {state_fmt_i64(b0, run_id), state_fmt_i64(b1, cap)};

	*n = 0;
	return state_count(state_exec(sc, "count the run's jobs to run",
				      "SELECT count(*) FROM (SELECT 1 FROM job WHERE run_id = $1"
				      " AND state IN ('queued', 'running') LIMIT $2) AS x",
				      2, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err),
			   n);
}

int state_report_run_counts(struct state_conn *sc, int64_t run_id, struct state_run_counts *out,
			    struct fleet_err *err)
{
	PGresult *res =
	    state_exec_id(sc, "count the jobs of the run",
		          "SELECT state, count(*), sum(msgs_copied), sum(bytes_copied), sum(msgs_skipped),"
		          " sum(msgs_failed), count(*) FILTER (WHERE parked_until > now()),"
		          " (extract(epoch FROM max(parked_until) FILTER (WHERE parked_until > now())) * 1000)::bigint,"
		          " (extract(epoch FROM max(coalesce(eta_at, parked_until)) FILTER (WHERE parked_until > now()))"
		          "  * 1000)::bigint, sum(msgs_uncertain)"
		          " FROM job WHERE run_id = $1 GROUP BY state",
		          run_id, STATE_EXEC_IDEMPOTENT, err);

	memset(out, 0, sizeof(*out));
	out->run_id = run_id;
	return state_each_row(res, count_row, out);
}


int state_report_run_bytes(struct state_conn *sc, int64_t run_id, const int64_t *exclude, size_t nexclude,
			   struct state_run_bytes *out, struct fleet_err *err)
{
	struct fleet_buf ids = FLEET_BUF_INIT(STATE_IDS_MAX);
	char b0[STATE_NUM_MAX];
	const char *p[2];
	PGresult *res;

	memset(out, 0, sizeof(*out));
	state_array_begin(&ids);
	for (size_t i = 0; i < nexclude; i++)
		state_array_i64(&ids, exclude[i]);
	state_array_end(&ids);
	p[0] = state_fmt_i64(b0, run_id);
	p[1] = fleet_buf_cstr(&ids);
	res = state_bufs_fit(&ids, 1, "measure the run's bytes", err) < 0 ? NULL :
	      state_exec(
	    sc, "measure the run's bytes",
	    "WITH j AS (SELECT id, state, bytes_copied, msgs_copied, started_at IS NOT NULL AS started"
	    "  FROM job WHERE run_id = $1 AND NOT (state = 'queued' AND coalesce(parked_until > now(), false))),"
	    " mean AS (SELECT sum(bytes_copied)::float8 / nullif(sum(msgs_copied), 0) AS size FROM j),"
	    " todo AS (SELECT j.id, j.bytes_copied::float8 / nullif(j.msgs_copied, 0) AS size,"
	    "   sum(greatest(f.src_messages - f.msgs_copied - f.msgs_skipped - f.msgs_failed, 0)) AS msgs"
	    "  FROM j JOIN folder f ON f.job_id = j.id"
	    "  WHERE j.state IN ('queued', 'running') AND j.started AND j.id <> ALL ($2::bigint[])"
	    "  GROUP BY j.id, j.bytes_copied, j.msgs_copied)"
	    " SELECT (SELECT coalesce(sum(bytes_copied), 0) FROM j),"
	    "  (SELECT coalesce(sum(todo.msgs * coalesce(todo.size, mean.size, 0)), 0)::bigint FROM todo, mean),"
	    "  (SELECT count(*) FROM j WHERE started AND id <> ALL ($2::bigint[])),"
	    "  (SELECT count(*) FROM j WHERE state = 'queued' AND NOT started),"
	    "  (SELECT count(*) FROM todo WHERE msgs > 0)",
	    2, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	fleet_buf_release(&ids);
	if (!res)
		return -1;
	out->copied = state_get_i64(res, 0, 0);
	out->left = state_get_i64(res, 0, 1);
	out->seen = (long)state_get_i64(res, 0, 2);
	out->unseen = (long)state_get_i64(res, 0, 3);
	out->estimated = state_get_i64(res, 0, 4) > 0;
	PQclear(res);
	return 0;
}

/* Parked: queued and due later because of a daily budget or a throttle (state/park.c). */
#define PARKED_NOW "(state = 'queued' AND parked_until > now())"
#define PARKED_MS "CASE WHEN " PARKED_NOW " THEN " MS("parked_until") " END"

#define JOB_REPORT_COLS                                                                                      \
	"id, host1, port1, user1, host2, port2, user2, state, attempts, max_attempts,"                       \
	" folders, msgs_copied, bytes_copied, msgs_skipped, msgs_failed, last_error_class,"                  \
	" last_error_code, last_error_text, " MS("started_at") ", " MS("finished_at") ", " MS("updated_at") "," \
	" " PARKED_MS ", CASE WHEN " PARKED_NOW " THEN park_reason END, CASE WHEN " PARKED_NOW " THEN " MS("eta_at") " END," \
	" CASE WHEN state = 'failed' AND auth_block_hmac IS NOT NULL THEN 'credential'"                     \
	"  WHEN state = 'cancelled' AND last_error_code = '" STATE_CODE_REMOVED "' THEN 'removed'"          \
	"  WHEN state = 'cancelled' THEN 'cancelled' ELSE '' END,"                                          \
	" coalesce((SELECT number FROM pass WHERE pass.id = job.pass_id), 0),"                               \
	" coalesce((SELECT array_to_string(ARRAY[copied, matched, skipped, failed], ',') FROM pass_account pa"  \
	"  WHERE pa.pass_id = job.pass_id AND pa.job_id = job.id), ''),"                                     \
	" " MS("last_synced_at") ", coalesce(verify_verdict, ''), " MS("verified_at") ","                   \
	" coalesce(verify_on_source, -1), coalesce(verify_on_destination, -1), msgs_uncertain"

static void job_read(const PGresult *res, int i, struct state_job_report *r)
{
	enum state_job_state s = STATE_JOB_QUEUED;

	r->job_id = state_get_i64(res, i, 0);
	r->host1 = state_get_str(res, i, 1);
	r->port1 = (unsigned)state_get_i64(res, i, 2);
	r->user1 = state_get_str(res, i, 3);
	r->host2 = state_get_str(res, i, 4);
	r->port2 = (unsigned)state_get_i64(res, i, 5);
	r->user2 = state_get_str(res, i, 6);
	state_job_state_from_name(state_get_str(res, i, 7), &s);
	r->state = s;
	r->attempts = (int)state_get_i64(res, i, 8);
	r->max_attempts = (int)state_get_i64(res, i, 9);
	r->folders = state_get_i64(res, i, 10);
	r->msgs_copied = state_get_i64(res, i, 11);
	r->bytes_copied = state_get_i64(res, i, 12);
	r->msgs_skipped = state_get_i64(res, i, 13);
	r->msgs_failed = state_get_i64(res, i, 14);
	r->last_error_class = state_get_str(res, i, 15);
	r->last_error_code = state_get_str(res, i, 16);
	r->last_error_text = state_get_str(res, i, 17);
	r->started_at_ms = state_get_i64(res, i, 18);
	r->finished_at_ms = state_get_i64(res, i, 19);
	r->updated_at_ms = state_get_i64(res, i, 20);
	r->parked_until_ms = state_get_i64(res, i, 21);
	r->park_reason = state_get_str(res, i, 22);
	r->eta_ms = state_get_i64(res, i, 23);
	r->left_out = state_get_str(res, i, 24);
	r->pass_number = (int)state_get_i64(res, i, 25);
	{
		long long v[4] = {0, 0, 0, 0};

		sscanf(state_get_str(res, i, 26), "%lld,%lld,%lld,%lld", &v[0], &v[1], &v[2], &v[3]);
		r->pass_copied = v[0];
		r->pass_matched = v[1];
		r->pass_skipped = v[2];
		r->pass_failed = v[3];
	}
	r->last_synced_at_ms = state_get_i64(res, i, 27);
	r->verdict = state_get_str(res, i, 28);
	r->verified_at_ms = state_get_i64(res, i, 29);
	r->on_source = state_get_i64(res, i, 30);
	r->on_destination = state_get_i64(res, i, 31);
	r->msgs_uncertain = state_get_i64(res, i, 32);
}

STATE_ROW_WALK(job, struct state_job_report, state_job_report_cb, job_read)

int state_report_jobs(struct state_conn *sc, int64_t run_id, state_job_report_cb cb, void *ctx,
		      struct fleet_err *err)
{
	PGresult *res = state_exec_id(sc, "list the jobs of the run",
				      "SELECT " JOB_REPORT_COLS " FROM job WHERE run_id = $1 ORDER BY id", run_id,
				      STATE_EXEC_IDEMPOTENT, err);

	return job_each(res, cb, ctx);
}

/* The filter of state_report_jobs_page: $1 run, $2 states (NULL = any), $3 host (NULL = any), $4
 * its port (NULL = any), on either side. */
#define JOB_PAGE_WHERE                                                                                       \
	"run_id = $1 AND ($2::text[] IS NULL OR state = ANY ($2::text[]))"                                   \
	" AND ($3::text IS NULL OR (host1 = $3 AND ($4::int IS NULL OR port1 = $4::int))"                    \
	"  OR (host2 = $3 AND ($4::int IS NULL OR port2 = $4::int)))"

/* "host:port" -> host and port when what follows the last ':' is a port number and the host has
 * no other ':' (or is bracketed: "[::1]:993"); else the whole text is the host. */
static void split_server(const char *server, struct fleet_buf *host, char port[STATE_NUM_MAX], int *has_port)
{
	const char *c = strrchr(server, ':');
	uint64_t n = 0;

	*has_port = 0;
	if (c && c > server && fleet_parse_u64(c + 1, 1, 65535, &n) == 0 &&
	    (memchr(server, ':', (size_t)(c - server)) == NULL || (server[0] == '[' && c[-1] == ']'))) {
		if (server[0] == '[' && c[-1] == ']')
			fleet_buf_add(host, server + 1, (size_t)(c - server) - 2);
		else
			fleet_buf_add(host, server, (size_t)(c - server));
		state_fmt_i64(port, (int64_t)n);
		*has_port = 1;
		return;
	}
	fleet_buf_add(host, server, strlen(server));
}

int state_report_jobs_page(struct state_conn *sc, int64_t run_id, const struct state_job_filter *f,
			   state_job_report_cb cb, void *ctx, long *matched, struct fleet_err *err)
{
	struct fleet_buf states = FLEET_BUF_INIT(STATE_NAMES_MAX), host = FLEET_BUF_INIT(STATE_HOST_MAX);
	char b0[STATE_NUM_MAX], b3[STATE_NUM_MAX], b4[STATE_NUM_MAX], b5[STATE_NUM_MAX], b6[STATE_NUM_MAX];
	const char *p[7];
	PGresult *res;
	int has_port = 0;

	state_array_begin(&states);
	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		if (f->state_mask & STATE_JOB_MASK(s))
			state_array_str(&states, state_job_state_name((enum state_job_state)s));
	state_array_end(&states);
	if (f->server && *f->server)
		split_server(f->server, &host, b3, &has_port);
	p[0] = state_fmt_i64(b0, run_id);
	p[1] = f->state_mask ? fleet_buf_cstr(&states) : NULL;
	p[2] = f->server && *f->server ? fleet_buf_cstr(&host) : NULL;
	p[3] = has_port ? b3 : NULL;
	p[4] = state_fmt_i64(b4, f->after_id);
	p[5] = f->limit > 0 ? state_fmt_i64(b5, f->limit) : NULL;
	p[6] = state_fmt_i64(b6, f->offset > 0 ? f->offset : 0);
	if (state_bufs_fit(&states, 1, "list the jobs of the run", err) < 0 ||
	    state_bufs_fit(&host, 1, "list the jobs of the run", err) < 0) {
		fleet_buf_release(&states);
		fleet_buf_release(&host);
		return -1;
	}
	/* The page walks the primary key (or the (run_id, state) index for a rare state) and stops at
	 * the limit; the count is a statement of its own, so that neither materialises the matching
	 * rows (a CTE read twice did: 90 ms and temporary files at 50,000 jobs). */
	if (matched) {
		res = state_exec(sc, "count the jobs of the run",
				 "SELECT count(*) FROM job WHERE " JOB_PAGE_WHERE, 4, p, NULL, NULL,
				 STATE_EXEC_IDEMPOTENT, err);
		if (!res) {
			fleet_buf_release(&states);
			fleet_buf_release(&host);
			return -1;
		}
		*matched = (long)state_get_i64(res, 0, 0);
		PQclear(res);
	}
	res = state_exec(sc, "list the jobs of the run",
			 "SELECT " JOB_REPORT_COLS " FROM job WHERE " JOB_PAGE_WHERE " AND id > $5::bigint"
			 " ORDER BY id LIMIT $6::bigint OFFSET $7::bigint",
			 7, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	fleet_buf_release(&states);
	fleet_buf_release(&host);
	return job_each(res, cb, ctx);
}

static void failed_read(const PGresult *res, int i, struct state_failed_msg *r)
{
	r->job_id = state_get_i64(res, i, 0);
	r->error = state_get_str(res, i, 1);
	r->src_folder = state_get_str(res, i, 2);
	r->src_uidvalidity = (uint32_t)state_get_i64(res, i, 3);
	r->src_uid = (uint32_t)state_get_i64(res, i, 4);
	r->size = (uint64_t)state_get_i64(res, i, 5);
	r->state = strcmp(state_get_str(res, i, 6), "skipped") == 0 ? STATE_MSG_SKIPPED : STATE_MSG_FAILED;
}

STATE_ROW_WALK(failed, struct state_failed_msg, state_failed_msg_cb, failed_read)

int state_report_failed_messages(struct state_conn *sc, int64_t run_id, unsigned state_mask, long limit,
				 state_failed_msg_cb cb, void *ctx, struct fleet_err *err)
{
	char b0[STATE_NUM_MAX], b2[STATE_NUM_MAX];
	struct fleet_buf states = FLEET_BUF_INIT(STATE_NAMES_MAX);
	const char *p[3];
	PGresult *res;

	state_array_begin(&states);
	if (state_mask & STATE_MSG_MASK_FAILED)
		state_array_str(&states, "failed");
	if (state_mask & STATE_MSG_MASK_SKIPPED)
		state_array_str(&states, "skipped");
	state_array_end(&states);
	p[0] = state_fmt_i64(b0, run_id);
	p[1] = fleet_buf_cstr(&states);
	p[2] = limit > 0 ? state_fmt_i64(b2, limit) : NULL;
	res = state_bufs_fit(&states, 1, "list the failed messages", err) < 0 ? NULL :
	      state_exec(
	    sc, "list the failed messages",
	    "SELECT f.job_id, coalesce(m.error, ''), f.src_name, m.src_uidvalidity, m.src_uid, m.size,"
	    " m.state FROM message m JOIN folder f ON f.id = m.folder_id JOIN job j ON j.id = f.job_id"
	    " WHERE j.run_id = $1 AND m.state <> 'copied' AND m.state = ANY ($2::text[])"
	    " ORDER BY 2, f.job_id, f.src_name, m.src_uid LIMIT $3::bigint",
	    3, p, NULL, NULL, STATE_EXEC_IDEMPOTENT, err);
	fleet_buf_release(&states);
	return failed_each(res, cb, ctx);
}

struct throughput_fill {
	struct state_throughput_point *points;
	size_t n;
};

static int throughput_row(const PGresult *res, int i, void *arg)
{
	struct throughput_fill *f = arg;

	if (i == 0)
		f->points = xcalloc((size_t)PQntuples(res), sizeof(*f->points));
	f->points[i].minute_ms = state_get_i64(res, i, 0);
	f->points[i].msgs = state_get_i64(res, i, 1);
	f->points[i].bytes = state_get_i64(res, i, 2);
	f->n = (size_t)i + 1;
	return 0;
}

int state_report_throughput(struct state_conn *sc, int64_t run_id, struct state_throughput_point **points,
			    size_t *n, struct fleet_err *err)
{
	PGresult *res = state_exec_id(sc, "compute the throughput",
				      "SELECT " MS("date_trunc('minute', m.updated_at)") ", count(*), sum(m.size)"
				      " FROM message m JOIN folder f ON f.id = m.folder_id JOIN job j ON j.id = f.job_id"
				      " WHERE j.run_id = $1 AND m.state = 'copied' GROUP BY 1 ORDER BY 1",
				      run_id, STATE_EXEC_IDEMPOTENT, err);
	struct throughput_fill f = {NULL, 0};
	int rc = state_each_row(res, throughput_row, &f);

	*points = f.points;
	*n = f.n;
	return rc;
}

/* ---- the run list, the default run and time spent per job ------------------------------------ */
static void run_read(const PGresult *res, int i, struct state_run_report *r)
{
	r->run_id = state_get_i64(res, i, 0);
	r->name = state_get_str(res, i, 1);
	r->state = state_get_str(res, i, 2);
	r->created_at_ms = state_get_i64(res, i, 3);
	r->updated_at_ms = state_get_i64(res, i, 4);
}

STATE_ROW_WALK(run, struct state_run_report, state_run_report_cb, run_read)

int state_report_runs(struct state_conn *sc, int64_t run_id, state_run_report_cb cb, void *ctx,
		      struct fleet_err *err)
{
	PGresult *res = state_exec_id(sc, "list the runs",
				      "SELECT id, name, state, " MS("created_at") ", " MS("updated_at")
				      " FROM run WHERE $1::bigint = 0 OR id = $1 ORDER BY id",
				      run_id, STATE_EXEC_IDEMPOTENT, err);

	return run_each(res, cb, ctx);
}

int state_report_default_run(struct state_conn *sc, int64_t *run_id, struct fleet_err *err)
{
	int found = state_run_find_active(sc, run_id, err);

	if (found != 0)
		return found;
	return state_one_i64(state_exec(sc, "find the newest run",
					"SELECT id FROM run ORDER BY created_at DESC, id DESC LIMIT 1", 0, NULL, NULL,
					NULL, STATE_EXEC_IDEMPOTENT, err),
			     run_id);
}

static void time_read(const PGresult *res, int i, struct state_job_time *r)
{
	r->job_id = state_get_i64(res, i, 0);
	r->busy_ms = state_get_i64(res, i, 1);
	r->attempts_total = (long)state_get_i64(res, i, 2);
}

STATE_ROW_WALK(time, struct state_job_time, state_job_time_cb, time_read)

int state_report_job_times(struct state_conn *sc, int64_t run_id, state_job_time_cb cb, void *ctx,
			   struct fleet_err *err)
{
	PGresult *res = state_exec_id(
	    sc, "sum the time spent per job",
	    "SELECT a.job_id, coalesce(sum(" MS("greatest(coalesce(a.ended_at, CASE WHEN j.state = 'running' THEN now()"
						" ELSE j.updated_at END) - a.started_at, interval '0')") "), 0),"
	    " count(*) FILTER (WHERE a.outcome IS DISTINCT FROM 'interrupted')"
	    " FROM job_attempt a JOIN job j ON j.id = a.job_id WHERE j.run_id = $1"
	    " GROUP BY a.job_id ORDER BY a.job_id",
	    run_id, STATE_EXEC_IDEMPOTENT, err);

	return time_each(res, cb, ctx);
}

int state_report_job_run(struct state_conn *sc, int64_t job_id, int64_t *run_id, struct fleet_err *err)
{
	return state_one_i64(state_exec_id(sc, "find the run of the job", "SELECT run_id FROM job WHERE id = $1",
					   job_id, STATE_EXEC_IDEMPOTENT, err),
			     run_id);
}

/* tests/tools/claimbench.c: PostgreSQL CPU per account attempt at a given queue size, through the
 * state module's own statements (a benchmark tool for scripts/bench/scale.sh, not a test).
 *
 *   claimbench CONNINFO NJOBS ATTEMPTS
 *
 * Imports NJOBS jobs into a fresh run of CONNINFO's database (state_job_upsert_many, timed), then
 * makes ATTEMPTS attempts the way a worker facing a refusing server does: claim, record a
 * transient failure (requeued, due at once), ask for the next due job. The CPU of the
 * PostgreSQL backend serving the connection is read from /proc/PID/stat before and after, so the
 * machine's other load does not count. Prints one line of figures ("key=value ...").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/util.h"
#include "state/state_private.h"
#include "tests/unit/unit_jobs.h"

static double backend_cpu_s(int pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(buf, ')');
	/* after ") ": state(3) ... utime(14) stime(15) */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void die(const char *what, const struct fleet_err *err)
{
	fprintf(stderr, "claimbench: %s: %s\n", what, err->message);
	exit(1);
}

int main(int argc, char **argv)
{
	struct state_conn *sc = NULL;
	struct fleet_err err;
	static const struct state_job_spec row = {"src.example", 993, NULL, "refusing.example", 993, NULL, NULL, 1000000};
	struct unit_jobs j;
	int64_t run_id, engine_id;
	long njobs, attempts;
	uint64_t t0, t_import;
	double cpu0, cpu1;
	PGresult *res;
	int pid;

	if (argc != 4) {
		fprintf(stderr, "usage: claimbench CONNINFO NJOBS ATTEMPTS\n");
		return 2;
	}
	njobs = strtol(argv[2], NULL, 10);
	attempts = strtol(argv[3], NULL, 10);
	if (njobs <= 0 || attempts <= 0)
		return 2;
	if (state_conn_open(argv[1], &sc, &err) < 0)
		die("connect", &err);
	if (state_run_get_or_create(sc, "claimbench", NULL, &run_id, NULL, &err) < 0 ||
	    state_engine_register(sc, "bench", (long)getpid(), "claimbench", 3600000, &engine_id, &err) < 0)
		die("set up", &err);
	unit_jobs_make(&j, (size_t)njobs, &row, "user", 6, "");
	t0 = fleet_now_ms();
	if (state_job_upsert_many(sc, run_id, j.specs, j.n, j.ids, NULL, &err) < 0)
		die("import", &err);
	t_import = fleet_now_ms() - t0;
	res = PQexec(sc->pg, "VACUUM ANALYZE job");
	PQclear(res);
	res = PQexec(sc->pg, "SELECT pg_backend_pid()");
	pid = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);

	cpu0 = backend_cpu_s(pid);
	t0 = fleet_now_ms();
	/* The first 20 attempts warm up (each statement prepared once): not measured. */
	for (long i = -20; i < attempts; i++) {
		struct state_claim c;
		struct fleet_err jerr;
		int64_t wait;
		int r = state_job_claim(sc, run_id, engine_id, "bench", 60000, &c, &err);

		if (r < 0)
			die("claim", &err);
		if (r == 0) {
			fprintf(stderr, "claimbench: nothing to claim after %ld attempts\n", i);
			return 1;
		}
		fleet_err_set(&jerr, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, "CONNECT",
			      "could not connect to refusing.example:993: connection refused");
		if (state_job_fail(sc, &c.lease, &jerr, 0, 0, NULL, &err) < 0)
			die("fail", &err);
		if (state_job_next_due(sc, run_id, &wait, &err) < 0)
			die("next due", &err);
		state_claim_release(&c);
		if (i == -1) {
			cpu0 = backend_cpu_s(pid);
			t0 = fleet_now_ms();
		}
	}
	cpu1 = backend_cpu_s(pid);
	printf("jobs=%ld import_ms=%llu attempts=%ld pg_cpu_ms_per_attempt=%.3f wall_ms_per_attempt=%.3f\n", njobs,
	       (unsigned long long)t_import, attempts, (cpu1 - cpu0) * 1000.0 / (double)attempts,
	       (double)(fleet_now_ms() - t0) / (double)attempts);
	unit_jobs_release(&j);
	state_conn_close(&sc);
	return 0;
}

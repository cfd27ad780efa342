/* The embedded state database: created in a temporary directory on first use, reused by a second
 * process, kept running while any user remains, stopped when the last user releases it (or died).
 * Skipped when the PostgreSQL server programs are not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/unit.h"
#include <libpq-fe.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "state/cluster.h"
#include "state/state.h"

static char dir[64];

static int answers(const char *ci)
{
	PGconn *pg = PQconnectdb(ci);
	int ok = PQstatus(pg) == CONNECTION_OK;

	PQfinish(pg);
	return ok;
}

/* A second process: starts (reuses) the cluster, checks what the first one wrote, then either
 * releases it or dies without releasing. */
static pid_t second_user(int release, int pipefd)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct state_cluster *c = NULL;
		struct state_conn *sc = NULL;
		struct fleet_err err;
		int64_t run_id;
		int created = -1;
		char ok = 0;

		if (state_cluster_start(dir, &c, &err) == 0 &&
		    state_conn_open(state_cluster_conninfo(c), &sc, &err) == 0 &&
		    state_run_get_or_create(sc, "first", NULL, &run_id, &created, &err) == 0 && created == 0)
			ok = 1;
		state_conn_close(&sc);
		if (write(pipefd, &ok, 1) != 1)
			_exit(3);
		if (!release)
			_exit(0); /* dies holding its lock: the kernel drops it */
		if (state_cluster_release(&c, &err) < 0)
			_exit(2);
		_exit(ok ? 0 : 1);
	}
	return pid;
}

static void embedded_cluster_is_created_shared_and_stopped_by_its_last_user(void **state)
{
	struct state_cluster *c = NULL;
	struct state_conn *sc = NULL;
	struct fleet_err err;
	char *ci, *pidfile;
	int64_t run_id;
	int fds[2], status;
	char ok = 0;
	pid_t pid;

	if (state_cluster_start(dir, &c, &err) < 0)
		fail_msg("start: %s (%s)", err.message, err.detail);
	ci = xstrdup(state_cluster_conninfo(c));
	pidfile = xasprintf("%s/.imapfleet/pg/postmaster.pid", dir);
	if (state_conn_open(ci, &sc, &err) < 0)
		fail_msg("connect: %s", err.message);
	assert_int_equal(state_run_get_or_create(sc, "first", NULL, &run_id, NULL, &err), 0);
	state_conn_close(&sc);

	/* a second process reuses it and releases: the server stays up for us */
	assert_int_equal(pipe(fds), 0);
	pid = second_user(1, fds[1]);
	assert_int_equal(read(fds[0], &ok, 1), 1);
	assert_int_equal(ok, 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(answers(ci));

	/* another one dies without releasing; then we are the last user and stop it */
	pid = second_user(0, fds[1]);
	assert_int_equal(read(fds[0], &ok, 1), 1);
	assert_int_equal(ok, 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(answers(ci));
	assert_int_equal(state_cluster_release(&c, &err), 0);
	assert_null(c);
	assert_false(answers(ci));
	assert_int_not_equal(access(pidfile, F_OK), 0);

	/* started on demand again, data kept */
	if (state_cluster_start(dir, &c, &err) < 0)
		fail_msg("restart: %s (%s)", err.message, err.detail);
	assert_int_equal(state_conn_open(ci, &sc, &err), 0);
	{
		int created = -1;

		assert_int_equal(state_run_get_or_create(sc, "first", NULL, &run_id, &created, &err), 0);
		assert_int_equal(created, 0);
	}
	state_conn_close(&sc);
	assert_int_equal(state_cluster_release(&c, &err), 0);
	assert_false(answers(ci));
	close(fds[0]);
	close(fds[1]);
	xfree(&ci);
	xfree(&pidfile);
}

static void socket_is_private_and_no_tcp_port_is_opened(void **state)
{
	char *conf = xasprintf("%s/.imapfleet/pg/postgresql.conf", dir);
	char *text;
	char why[128];

	text = fleet_read_small_file(conf, 1 << 20, why, sizeof(why));
	assert_non_null(text);
	assert_non_null(strstr(text, "listen_addresses = ''"));
	assert_non_null(strstr(text, "unix_socket_permissions = 0700"));
	xfree(&text);
	xfree(&conf);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/imapfleet-cluster.XXXXXX");
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0711); /* as root the server runs as postgres, which must pass through */
	return 0;
}

static int teardown(void **state)
{
	if (unit_rm_rf(dir) != 0)
		fprintf(stderr, "# could not remove %s\n", dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(embedded_cluster_is_created_shared_and_stopped_by_its_last_user),
	    cmocka_unit_test(socket_is_private_and_no_tcp_port_is_opened),
	};
	struct fleet_err err;
	char *bindir = state_cluster_find_bindir(&err);

	if (!bindir)
		return unit_skip(err.message);
	xfree(&bindir);
	fleet_log_set_level(FLEET_LOG_WARN);
	return unit_run("state_cluster", tests, setup, teardown);
}

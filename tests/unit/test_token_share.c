/* Tests for OAuth tokens shared by worker hosts through the state database (scheduler/token_share.c
 * over io/oauth.c's cache and state/token.c), against a real PostgreSQL. A "host" here is an
 * oauth_cache of its own with its own state connections, as a separate `imapfleet worker` process
 * has; the token endpoint is a stand-in that counts its requests.
 *
 * The server: see tests/unit/labpg.h; without one the program is skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/unit.h"
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "io/cred.h"
#include "io/oauth.h"
#include "scheduler/token_share.h"
#include "state/cluster.h"
#include "state/secret.h"
#include "state/state.h"
#include "tests/unit/labpg.h"

static char *admin_ci;
static char *db_ci;
static char dbname[64];
static char dir[] = "/tmp/token_share.XXXXXX";
static char secret_path[300], wrong_path[300], sa_path[300];

/* ---- the stand-in token endpoint ------------------------------------------------------------------ */

static atomic_int g_requests;
static atomic_int g_lifetime = 3600;

static int fake_fetch(void *ctx, const struct oauth_config *cfg, const char *user, char **token, int64_t *expires_at,
		      struct fleet_err *err)
{
	int n = atomic_fetch_add(&g_requests, 1) + 1;

	(void)ctx;
	usleep(20000); /* an HTTPS round trip: long enough for the others to pile up behind it */
	if (cfg->client_secret_file && strcmp(cfg->client_secret_file, wrong_path) == 0) {
		fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_RUN, "OAUTH_CLIENT",
			      "the token endpoint refused application app1 of tenant contoso: invalid_client");
		return -1;
	}
	*token = xasprintf("tok-%d-%s", n, user && cfg->provider == OAUTH_GOOGLE ? user : "app");
	*expires_at = (int64_t)time(NULL) + atomic_load(&g_lifetime);
	return 0;
}

/* ---- hosts ----------------------------------------------------------------------------------------- */

struct host {
	struct oauth_cache *cache;
	unsigned char key[STATE_SECRET_KEY_LEN];
};

static void host_init(struct host *h, unsigned char keybyte)
{
	h->cache = oauth_cache_new();
	oauth_cache_set_fetch(h->cache, fake_fetch, NULL);
	memset(h->key, keybyte, sizeof(h->key));
}

static void ms365(struct oauth_config *cfg, const char *secret_file)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->provider = OAUTH_MS365;
	cfg->tenant = "contoso";
	cfg->client_id = "app1";
	cfg->client_secret_file = secret_file;
}

static void google(struct oauth_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->provider = OAUTH_GOOGLE;
	cfg->service_account = sa_path;
}

/* One login's token on host h through a connection of its own. */
struct getter {
	struct host *h;
	const struct oauth_config *cfg;
	unsigned first, count; /* users user<first> .. */
	int refresh;
	const char *user;      /* one user instead */
	char *token;	       /* the last one got */
	int failures;
	struct fleet_err err;
	pthread_t tid;
};

static void *getter_main(void *arg)
{
	struct getter *g = arg;
	struct state_conn *sc = NULL;
	struct token_share ts;

	if (state_conn_open_nomigrate(db_ci, &sc, &g->err) < 0) {
		g->failures = -1;
		return NULL;
	}
	token_share_init(&ts, sc, g->h->key);
	for (unsigned i = 0; i < (g->user ? 1u : g->count); i++) {
		char user[64];
		char *tok = NULL;

		snprintf(user, sizeof(user), "user%u@example.org", g->first + i);
		if (oauth_cache_get(g->h->cache, g->cfg, g->user ? g->user : user, g->refresh, &ts.ops, &tok, NULL,
				    &g->err) < 0) {
			g->failures++;
			continue;
		}
		cred_free(&g->token);
		g->token = tok;
	}
	state_conn_close(&sc);
	return NULL;
}

/* hosts x threads getters over nusers users in all; returns the requests made meanwhile. */
static int get_all(struct host *hosts, int nhosts, int threads, const struct oauth_config *cfg, unsigned nusers,
		   char **one_token)
{
	int before = atomic_load(&g_requests);
	int n = nhosts * threads;
	struct getter *g = xcalloc((size_t)n, sizeof(*g));

	for (int i = 0; i < n; i++) {
		g[i].h = &hosts[i % nhosts];
		g[i].cfg = cfg;
		g[i].count = nusers / (unsigned)n;
		g[i].first = (unsigned)i * g[i].count;
		assert_int_equal(pthread_create(&g[i].tid, NULL, getter_main, &g[i]), 0);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(g[i].tid, NULL);
		if (g[i].failures)
			fail_msg("getter %d: %d failures: %s", i, g[i].failures, g[i].err.message);
		if (one_token && i > 0)
			assert_string_equal(g[i].token, g[0].token);
	}
	if (one_token)
		*one_token = xstrdup(g[0].token);
	for (int i = 0; i < n; i++)
		cred_free(&g[i].token);
	xfree(&g);
	return atomic_load(&g_requests) - before;
}

static PGconn *raw(void)
{
	PGconn *pg = PQconnectdb(db_ci);

	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	return pg;
}

static long long q(PGconn *pg, const char *sql, const char *param)
{
	const char *p[1] = {param};
	PGresult *res = PQexecParams(pg, sql, param ? 1 : 0, NULL, p, NULL, NULL, 0);
	long long v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(pg));
	v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

/* ---- tests ------------------------------------------------------------------------------------------ */

static void two_thousand_accounts_on_four_hosts_fetch_one_application_token(void **state)
{
	struct host hosts[4];
	struct oauth_config cfg;
	char *tok = NULL;
	PGconn *pg;
	int n;

	(void)state;
	for (int i = 0; i < 4; i++)
		host_init(&hosts[i], 0x11);
	ms365(&cfg, secret_path);
	n = get_all(hosts, 4, 4, &cfg, 2000, &tok);
	assert_int_equal(n, 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(oauth_cache_fetches(hosts[i].cache) + oauth_cache_shared_hits(hosts[i].cache) > 0, 1);
	pg = raw();
	assert_int_equal(q(pg, "SELECT count(*) FROM oauth_token WHERE name = 'ms365:contoso/app1' AND fetches = 1", NULL), 1);
	/* Sealed: the token is in no column, not even as bytes of the ciphertext. */
	assert_int_equal(q(pg, "SELECT count(*) FROM oauth_token t WHERE position(convert_to($1, 'UTF8') IN"
			       " coalesce(t.ciphertext, '')) > 0 OR t::text LIKE '%' || $1 || '%'",
			   tok),
			 0);
	PQfinish(pg);
	cred_free(&tok);

	/* Expired: one new token for all of them. */
	atomic_store(&g_lifetime, 2);
	for (int i = 0; i < 4; i++) {
		oauth_cache_free(&hosts[i].cache);
		host_init(&hosts[i], 0x11);
	}
	ms365(&cfg, secret_path);
	pg = raw();
	PQclear(PQexec(pg, "UPDATE oauth_token SET expires_at = now() - interval '1 s'"));
	PQfinish(pg);
	assert_int_equal(get_all(hosts, 4, 4, &cfg, 2000, NULL), 1);
	sleep(2);
	assert_int_equal(get_all(hosts, 4, 4, &cfg, 2000, NULL), 1);
	atomic_store(&g_lifetime, 3600);
	for (int i = 0; i < 4; i++)
		oauth_cache_free(&hosts[i].cache);
}

static void google_tokens_are_one_per_user_whatever_the_hosts(void **state)
{
	struct host hosts[3];
	struct oauth_config cfg;

	(void)state;
	for (int i = 0; i < 3; i++)
		host_init(&hosts[i], 0x11);
	google(&cfg);
	/* 3 hosts x 2 threads over 60 users: each thread its own users; then all again from others. */
	assert_int_equal(get_all(hosts, 3, 2, &cfg, 60, NULL), 60);
	for (int i = 0; i < 3; i++) {
		oauth_cache_free(&hosts[i].cache);
		host_init(&hosts[i], 0x11);
	}
	assert_int_equal(get_all(hosts, 3, 2, &cfg, 60, NULL), 0);
	for (int i = 0; i < 3; i++)
		oauth_cache_free(&hosts[i].cache);
}

static char *get_one(struct host *h, const struct oauth_config *cfg, const char *user, int refresh, int *rc,
		     struct fleet_err *err)
{
	struct getter g;

	memset(&g, 0, sizeof(g));
	g.h = h;
	g.cfg = cfg;
	g.user = user;
	g.refresh = refresh;
	getter_main(&g);
	*rc = g.failures ? -1 : 0;
	*err = g.err;
	return g.token;
}

/* Two hosts with the given key files and the Google configuration; the token requests so far. */
static int two_hosts(struct host *a, int akey, struct host *b, int bkey, struct oauth_config *cfg)
{
	host_init(a, akey);
	host_init(b, bkey);
	google(cfg);
	return atomic_load(&g_requests);
}

static void a_refused_login_refreshes_once_and_the_other_hosts_take_the_new_token(void **state)
{
	struct host a, b;
	struct oauth_config cfg;
	struct fleet_err err;
	char *t1a, *t1b, *t2a, *t2b;
	int rc, before;

	(void)state;
	before = two_hosts(&a, 0x11, &b, 0x11, &cfg);
	t1a = get_one(&a, &cfg, "refresh@example.org", 0, &rc, &err);
	t1b = get_one(&b, &cfg, "refresh@example.org", 0, &rc, &err);
	assert_string_equal(t1a, t1b);
	assert_int_equal(atomic_load(&g_requests) - before, 1);
	t2a = get_one(&a, &cfg, "refresh@example.org", 1, &rc, &err); /* a's login refused t1 */
	assert_string_not_equal(t2a, t1a);
	assert_int_equal(atomic_load(&g_requests) - before, 2);
	t2b = get_one(&b, &cfg, "refresh@example.org", 1, &rc, &err); /* b's too: a fetched already */
	assert_string_equal(t2b, t2a);
	assert_int_equal(atomic_load(&g_requests) - before, 2);
	cred_free(&t1a);
	cred_free(&t1b);
	cred_free(&t2a);
	cred_free(&t2b);
	oauth_cache_free(&a.cache);
	oauth_cache_free(&b.cache);
}

static void a_young_application_token_is_not_fetched_again_for_each_refused_mailbox(void **state)
{
	struct host a;
	struct oauth_config cfg;
	struct fleet_err err;
	char *t;
	int rc, before;

	(void)state;
	host_init(&a, 0x22); /* a key of its own: nothing shared with the earlier tests */
	ms365(&cfg, secret_path);
	before = atomic_load(&g_requests);
	t = get_one(&a, &cfg, "u1@example.org", 0, &rc, &err);
	cred_free(&t);
	for (int i = 0; i < 5; i++) {
		t = get_one(&a, &cfg, "notgranted@example.org", 1, &rc, &err);
		assert_int_equal(rc, 0);
		cred_free(&t);
	}
	assert_int_equal(atomic_load(&g_requests) - before, 1);
	oauth_cache_free(&a.cache);
}

static void refused_credentials_stop_every_host_without_another_request(void **state)
{
	struct host a, b, c;
	struct oauth_config cfg;
	struct fleet_err err;
	char *t;
	int rc, before;
	PGconn *pg;

	(void)state;
	host_init(&a, 0x11);
	host_init(&b, 0x11);
	host_init(&c, 0x11);
	ms365(&cfg, wrong_path);
	before = atomic_load(&g_requests);
	t = get_one(&a, &cfg, "u1@example.org", 0, &rc, &err);
	assert_int_equal(rc, -1);
	assert_string_equal(err.code, "OAUTH_CLIENT");
	assert_int_equal(err.scope, FLEET_SCOPE_RUN);
	/* Another host, all its threads: the stored refusal, no request. */
	for (int i = 0; i < 3; i++) {
		t = get_one(&b, &cfg, "u2@example.org", 0, &rc, &err);
		assert_int_equal(rc, -1);
		assert_int_equal(err.cls, FLEET_ERR_AUTH);
		assert_string_equal(err.code, "OAUTH_CLIENT");
		assert_non_null(strstr(err.message, "tenant contoso"));
	}
	assert_int_equal(atomic_load(&g_requests) - before, 1);
	pg = raw();
	assert_int_equal(q(pg, "SELECT count(*) FROM oauth_token WHERE refused_code = 'OAUTH_CLIENT'", NULL), 1);
	PQfinish(pg);
	/* Fixed credentials (another secret file) are another key: they work at once. */
	ms365(&cfg, secret_path);
	t = get_one(&c, &cfg, "u1@example.org", 0, &rc, &err);
	assert_int_equal(rc, 0);
	cred_free(&t);
	oauth_cache_free(&a.cache);
	oauth_cache_free(&b.cache);
	oauth_cache_free(&c.cache);
}

static void a_host_with_another_key_file_sees_nothing_and_fetches_its_own(void **state)
{
	struct host a, other;
	struct oauth_config cfg;
	struct fleet_err err;
	char *t1, *t2;
	int rc, before;

	(void)state;
	before = two_hosts(&a, 0x33, &other, 0x44, &cfg);
	t1 = get_one(&a, &cfg, "keyed@example.org", 0, &rc, &err);
	t2 = get_one(&other, &cfg, "keyed@example.org", 0, &rc, &err);
	assert_int_equal(rc, 0);
	assert_string_not_equal(t1, t2);
	assert_int_equal(atomic_load(&g_requests) - before, 2);
	cred_free(&t1);
	cred_free(&t2);
	oauth_cache_free(&a.cache);
	oauth_cache_free(&other.cache);
}

/* ---- setup ------------------------------------------------------------------------------------------ */

static void admin(const char *sql)
{
	PGconn *pg = PQconnectdb(admin_ci);

	PQclear(PQexec(pg, sql));
	PQfinish(pg);
}

static void write_file(char *path, size_t len, const char *name, const char *text)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		fail_msg("cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

static int group_setup(void **state)
{
	struct state_conn *sc = NULL;
	struct fleet_err err;
	char *sql;

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	write_file(secret_path, sizeof(secret_path), "app.secret", "Sec~right\n");
	write_file(wrong_path, sizeof(wrong_path), "wrong.secret", "Sec~wrong\n");
	write_file(sa_path, sizeof(sa_path), "sa.json", "{\"client_email\": \"svc@lab.iam\"}\n");
	snprintf(dbname, sizeof(dbname), "test_token_share_%ld", (long)getpid());
	sql = xasprintf("CREATE DATABASE %s", dbname);
	admin(sql);
	xfree(&sql);
	db_ci = state_conninfo_with_dbname(admin_ci, dbname);
	if (state_conn_open(db_ci, &sc, &err) < 0) {
		fprintf(stderr, "# %s\n", err.message);
		return -1;
	}
	state_conn_close(&sc);
	return 0;
}

static int group_teardown(void **state)
{
	char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);

	(void)state;
	admin(sql);
	xfree(&sql);
	xfree(&db_ci);
	unit_rm_rf(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(two_thousand_accounts_on_four_hosts_fetch_one_application_token),
	    cmocka_unit_test(google_tokens_are_one_per_user_whatever_the_hosts),
	    cmocka_unit_test(a_refused_login_refreshes_once_and_the_other_hosts_take_the_new_token),
	    cmocka_unit_test(a_young_application_token_is_not_fetched_again_for_each_refused_mailbox),
	    cmocka_unit_test(refused_credentials_stop_every_host_without_another_request),
	    cmocka_unit_test(a_host_with_another_key_file_sees_nothing_and_fetches_its_own),
	};

	return labpg_run(&admin_ci, "token_share", tests, group_setup, group_teardown);
}

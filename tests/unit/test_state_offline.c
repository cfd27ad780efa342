/* Unit tests for state/ that need no database: SQLSTATE classes, the key file, credential sealing,
 * state location resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/alloc.h"
#include "common/err.h"
#include "state/cluster.h"
#include "state/secret.h"
#include "state/state.h"
#include "state/state_private.h"

static void sqlstates_map_to_the_documented_classes(void **state)
{
	static const struct {
		const char *sqlstate;
		enum fleet_err_class cls;
	} table[] = {
	    {"08000", FLEET_ERR_TRANSIENT}, /* connection_exception */
	    {"08006", FLEET_ERR_TRANSIENT}, /* connection_failure */
	    {"08001", FLEET_ERR_TRANSIENT}, /* sqlclient_unable_to_establish_sqlconnection */
	    {"57P01", FLEET_ERR_TRANSIENT}, /* admin_shutdown */
	    {"57P02", FLEET_ERR_TRANSIENT}, /* crash_shutdown */
	    {"57P03", FLEET_ERR_TRANSIENT}, /* cannot_connect_now */
	    {"40001", FLEET_ERR_TRANSIENT}, /* serialization_failure */
	    {"40P01", FLEET_ERR_TRANSIENT}, /* deadlock_detected */
	    {"53100", FLEET_ERR_TRANSIENT}, /* disk_full */
	    {"53200", FLEET_ERR_TRANSIENT}, /* out_of_memory */
	    {"53300", FLEET_ERR_TRANSIENT}, /* too_many_connections */
	    {"23505", FLEET_ERR_BUG},	    /* unique_violation */
	    {"23503", FLEET_ERR_BUG},	    /* foreign_key_violation */
	    {"23514", FLEET_ERR_BUG},	    /* check_violation */
	    {"42P01", FLEET_ERR_BUG},	    /* undefined_table */
	    {"22P02", FLEET_ERR_BUG},	    /* invalid_text_representation */
	    {"42501", FLEET_ERR_BUG},	    /* insufficient_privilege */
	    {NULL, FLEET_ERR_TRANSIENT},    /* no SQLSTATE at all: the connection broke */
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		enum fleet_err_class got = state_sqlstate_class(table[i].sqlstate);

		if (got != table[i].cls)
			fail_msg("SQLSTATE %s: class %s, want %s",
				 table[i].sqlstate ? table[i].sqlstate : "(none)", fleet_err_class_name(got),
				 fleet_err_class_name(table[i].cls));
	}
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_state_offline.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int remove_tmpdir(void **state)
{
	assert_int_equal(unit_rm_rf(tmpdir), 0);
	return 0;
}

static void key_file_is_created_0600_and_loads_back_the_same_key(void **state)
{
	unsigned char k1[STATE_SECRET_KEY_LEN], k2[STATE_SECRET_KEY_LEN];
	char *path = xasprintf("%s/.imapfleet/key", tmpdir);
	struct fleet_err err;
	struct stat st;

	assert_int_equal(state_secret_key_load_or_create(path, k1, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(state_secret_key_load_or_create(path, k2, &err), 0);
	assert_memory_equal(k1, k2, sizeof(k1));
	xfree(&path);
}

static void key_file_readable_by_others_is_refused(void **state)
{
	unsigned char k[STATE_SECRET_KEY_LEN];
	char *path = xasprintf("%s/loose-key", tmpdir);
	struct fleet_err err;

	assert_int_equal(state_secret_key_load_or_create(path, k, &err), 0);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(state_secret_key_load_or_create(path, k, &err), -1);
	assert_string_equal(err.code, "KEY_FILE_MODE");
	assert_non_null(strstr(err.detail, "chmod 600"));
	xfree(&path);
}

static void key_file_with_garbage_is_refused(void **state)
{
	unsigned char k[STATE_SECRET_KEY_LEN];
	char *path = xasprintf("%s/bad-key", tmpdir);
	struct fleet_err err;
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs("not a key\n", f);
	fclose(f);
	chmod(path, 0600);
	assert_int_equal(state_secret_key_load_or_create(path, k, &err), -1);
	assert_string_equal(err.code, "KEY_FILE");
	xfree(&path);
}

static void sealed_credential_opens_only_with_same_key_job_and_side(void **state)
{
	unsigned char key[STATE_SECRET_KEY_LEN], other[STATE_SECRET_KEY_LEN];
	unsigned char nonce[STATE_SECRET_NONCE_LEN], tag[STATE_SECRET_TAG_LEN], ct[64];
	const char *pw = "p@ss;wo\"rd";
	struct fleet_err err;
	char *out = NULL;

	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	assert_int_equal(state_secret_seal(key, 42, 1, pw, strlen(pw), nonce, ct, tag, &err), 0);
	assert_null(memmem(ct, strlen(pw), pw, strlen(pw)));
	assert_int_equal(state_secret_open(key, 42, 1, nonce, ct, strlen(pw), tag, &out, &err), 0);
	assert_string_equal(out, pw);
	state_secret_free(&out);
	assert_null(out);
	/* wrong key, other job, other side, altered byte: all refused */
	assert_int_equal(state_secret_open(other, 42, 1, nonce, ct, strlen(pw), tag, &out, &err), -1);
	assert_string_equal(err.code, "CREDENTIAL_DECRYPT");
	assert_int_equal(state_secret_open(key, 43, 1, nonce, ct, strlen(pw), tag, &out, &err), -1);
	assert_int_equal(state_secret_open(key, 42, 2, nonce, ct, strlen(pw), tag, &out, &err), -1);
	ct[3] ^= 1;
	assert_int_equal(state_secret_open(key, 42, 1, nonce, ct, strlen(pw), tag, &out, &err), -1);
	assert_null(out);
}

static void two_seals_of_the_same_value_differ(void **state)
{
	unsigned char key[STATE_SECRET_KEY_LEN], n1[12], n2[12], t1[16], t2[16], c1[8], c2[8];
	struct fleet_err err;

	memset(key, 1, sizeof(key));
	assert_int_equal(state_secret_seal(key, 1, 1, "secret", 6, n1, c1, t1, &err), 0);
	assert_int_equal(state_secret_seal(key, 1, 1, "secret", 6, n2, c2, t2, &err), 0);
	assert_memory_not_equal(n1, n2, sizeof(n1));
	assert_memory_not_equal(c1, c2, 6);
}

static void state_location_follows_arg_then_env_then_libpq_then_embedded(void **state)
{
	char *ci = NULL;

	unsetenv("IMAPFLEET_STATE");
	unsetenv("PGHOST");
	unsetenv("PGDATABASE");
	assert_int_equal(state_location_resolve("postgresql://a/b", &ci), STATE_LOC_ARG);
	assert_string_equal(ci, "postgresql://a/b");
	xfree(&ci);
	setenv("IMAPFLEET_STATE", "postgresql://env/db", 1);
	assert_int_equal(state_location_resolve(NULL, &ci), STATE_LOC_ENV);
	assert_string_equal(ci, "postgresql://env/db");
	xfree(&ci);
	unsetenv("IMAPFLEET_STATE");
	setenv("PGDATABASE", "x", 1);
	assert_int_equal(state_location_resolve("", &ci), STATE_LOC_LIBPQ_ENV);
	assert_string_equal(ci, "");
	xfree(&ci);
	unsetenv("PGDATABASE");
	assert_int_equal(state_location_resolve(NULL, &ci), STATE_LOC_EMBEDDED);
	assert_null(ci);
}

static void conninfo_dbname_is_replaced_in_urls_and_keywords(void **state)
{
	char *a = state_conninfo_with_dbname("postgresql://u@h:5433/old?sslmode=disable", "new_db");
	char *b = state_conninfo_with_dbname("host=/tmp/x port=1 dbname=old", "n'x");

	assert_non_null(a);
	assert_non_null(strstr(a, "dbname='new_db'"));
	assert_non_null(strstr(a, "port='5433'"));
	assert_null(strstr(a, "old"));
	assert_non_null(strstr(b, "dbname='n\\'x'"));
	xfree(&a);
	xfree(&b);
}

static void an_array_past_its_cap_is_refused_before_it_is_sent(void **state)
{
	struct fleet_buf a[2] = {FLEET_BUF_INIT(64), FLEET_BUF_INIT(16)};
	struct fleet_err err;

	(void)state;
	for (int k = 0; k < 2; k++) {
		state_array_begin(&a[k]);
		for (int64_t v = 1000; v < 1005; v++)
			state_array_i64(&a[k], v);
		state_array_end(&a[k]);
	}
	assert_int_equal(state_bufs_fit(a, 1, "import the jobs", &err), 0);
	assert_int_equal(state_bufs_fit(a, 2, "import the jobs", &err), -1);
	assert_string_equal(err.code, STATE_ERR_TOO_LARGE);
	assert_contains(err.message, "cannot import the jobs");
	assert_int_equal(err.cls, FLEET_ERR_PERMANENT);
	fleet_buf_release(&a[0]);
	fleet_buf_release(&a[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sqlstates_map_to_the_documented_classes),
	    cmocka_unit_test(key_file_is_created_0600_and_loads_back_the_same_key),
	    cmocka_unit_test(key_file_readable_by_others_is_refused),
	    cmocka_unit_test(key_file_with_garbage_is_refused),
	    cmocka_unit_test(sealed_credential_opens_only_with_same_key_job_and_side),
	    cmocka_unit_test(two_seals_of_the_same_value_differ),
	    cmocka_unit_test(state_location_follows_arg_then_env_then_libpq_then_embedded),
	    cmocka_unit_test(conninfo_dbname_is_replaced_in_urls_and_keywords),
	    cmocka_unit_test(an_array_past_its_cap_is_refused_before_it_is_sent),
	};

	return unit_run("state_offline", tests, make_tmpdir, remove_tmpdir);
}

/* Tests for io/imap (the IMAP client) against tests/tools/fakeimap.py, and, built with
 * -DIMAP_TEST_LAB as test_imap_lab, over TLS against the fake with the lab's certificate and
 * against the lab's real Dovecot.
 *
 * Each program checks its precondition in main (python3 for the fake; the lab's lab.env for the
 * TLS program) and prints "1..0 # SKIP reason" when it is missing. Timeouts are small, so a client
 * that hangs fails instead of blocking `make check`.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/engine.h"
#include "io/imap.h"

#define FAKE_PASSWORD "s3cr3t-Fake-pw"

/* ---- the fake server ------------------------------------------------------------------------- */

struct fake {
	pid_t pid;
	int port;
	char log[256];
};

static char g_tmpdir[256];
/* Every fake started, so that a failed assertion (which skips fake_stop) cannot leave one behind
 * holding the test's output open. */
static pid_t g_pids[64];
static size_t g_npids;

/* Starts fakeimap.py with the scenario and the extra arguments in AP (NULL-terminated). */
static int fake_startv(struct fake *f, const char *scenario, va_list ap)
{
	static int seq;
	const char *argv[32];
	char script[512];
	int n = 0, pfd[2];
	char line[32];
	FILE *in;

	memset(f, 0, sizeof(*f));
	/* "hostile:NAME" runs tests/tools/hostileimap.py (fakeimap turned malicious) */
	if (strncmp(scenario, "hostile:", 8) == 0) {
		scenario += 8;
		snprintf(script, sizeof(script), "%s/tests/tools/hostileimap.py", IMAPFLEET_SRCDIR);
	} else {
		snprintf(script, sizeof(script), "%s/tests/tools/fakeimap.py", IMAPFLEET_SRCDIR);
	}
	snprintf(f->log, sizeof(f->log), "%s/fake-%d-%s.log", g_tmpdir, ++seq, scenario);
	argv[n++] = "python3";
	argv[n++] = script;
	argv[n++] = "--scenario";
	argv[n++] = scenario;
	argv[n++] = "--log";
	argv[n++] = f->log;
	while (n < 30 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	argv[n] = NULL;
	if (pipe(pfd) < 0)
		return -1;
	f->pid = fork();
	if (f->pid < 0)
		return -1;
	if (f->pid == 0) {
		char errlog[300];
		FILE *e;

		snprintf(errlog, sizeof(errlog), "%s.stderr", f->log);
		e = fopen(errlog, "w");
		if (e)
			dup2(fileno(e), 2);
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	if (g_npids < sizeof(g_pids) / sizeof(g_pids[0]))
		g_pids[g_npids++] = f->pid;
	close(pfd[1]);
	in = fdopen(pfd[0], "r");
	if (!in || !fgets(line, sizeof(line), in)) {
		if (in)
			fclose(in);
		return -1;
	}
	fclose(in);
	{
		uint64_t port;

		line[strcspn(line, "\r\n")] = '\0';
		if (fleet_parse_u64(line, 1, 65535, &port) < 0)
			return -1;
		f->port = (int)port;
	}
	return 0;
}

static void reap(pid_t pid)
{
	for (size_t i = 0; i < g_npids; i++) {
		if (g_pids[i] == pid) {
			kill(pid, SIGTERM);
			waitpid(pid, NULL, 0);
			g_pids[i] = g_pids[--g_npids];
			return;
		}
	}
}

static void fake_stop(struct fake *f)
{
	if (f->pid > 0)
		reap(f->pid);
	f->pid = 0;
}

static int teardown_test(void **state)
{
	while (g_npids > 0)
		reap(g_pids[0]);
	return 0;
}

/* The fake's command log (heap string, "" when empty). */
static char *fake_log(const struct fake *f)
{
	char why[128];
	char *s = fleet_read_small_file(f->log, 1 << 20, why, sizeof(why));

	return s ? s : xstrdup("");
}

static void opts_for(struct imap_options *o, const struct fake *f, enum io_tls_mode mode)
{
	memset(o, 0, sizeof(*o));
	o->ep.host = "127.0.0.1";
	o->ep.port = (uint16_t)f->port;
	o->ep.mode = mode;
	o->ep.connect_timeout_ms = 3000;
	o->ep.io_timeout_ms = 3000;
	o->user = "user";
	o->password = FAKE_PASSWORD;
	o->label = "src";
	o->trace = 1;
}

/* ---- fetch/append helpers ---------------------------------------------------------------------- */

struct collect {
	int messages, starts, ends;
	uint32_t last_uid, start_uid;
	uint64_t announced, bytes, max_chunk;
	struct fleet_buf body;
	char section[256];
	char date[40];
	int fail_on_start;
};

static int on_message(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err)
{
	struct collect *c = ctx;

	c->messages++;
	c->last_uid = m->uid;
	if (m->section)
		snprintf(c->section, sizeof(c->section), "%.*s", (int)m->section_len, m->section);
	if (m->internaldate)
		snprintf(c->date, sizeof(c->date), "%s", m->internaldate);
	return 0;
}

static int on_body_start(void *ctx, uint32_t seq, uint32_t uid, uint64_t size, struct fleet_err *err)
{
	struct collect *c = ctx;

	c->starts++;
	c->start_uid = uid;
	c->announced = size;
	fleet_buf_reset(&c->body);
	if (c->fail_on_start)
		return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_MESSAGE, "TEST",
				     "consumer refused");
	return 0;
}

static int on_body_data(void *ctx, const char *data, size_t len, struct fleet_err *err)
{
	struct collect *c = ctx;

	c->bytes += len;
	if (len > c->max_chunk)
		c->max_chunk = len;
	if (c->body.len + len <= c->body.max)
		fleet_buf_add(&c->body, data, len);
	return 0;
}

static int on_body_end(void *ctx, struct fleet_err *err)
{
	struct collect *c = ctx;

	c->ends++;
	return 0;
}

static const struct imap_fetch_cb stream_cb = {on_message, on_body_start, on_body_data, on_body_end};

static void collect_init(struct collect *c)
{
	memset(c, 0, sizeof(*c));
	fleet_buf_init(&c->body, 8 << 20);
}

static void collect_release(struct collect *c)
{
	fleet_buf_release(&c->body);
}

/* ---- one client session against one fake ------------------------------------------------------ */

struct sess {
	struct fake f;
	struct imap_options o; /* opts_for the fake */
	struct imap_conn *c;
	struct imap_mailbox mb; /* for the test's SELECT; released by sess_done */
	struct collect col;	/* for the test's FETCH; released by sess_done */
	struct fleet_err err;
};

static void sess_startv(struct sess *s, enum io_tls_mode mode, const char *scenario, va_list ap)
{
	memset(s, 0, sizeof(*s));
	collect_init(&s->col);
	assert_int_equal(fake_startv(&s->f, scenario, ap), 0);
	opts_for(&s->o, &s->f, mode);
}

/* sess_start(S, MODE, SCENARIO, FAKE ARGS..., NULL): starts the fake and sets the options to reach
 * it in MODE; connects nothing. */
static void sess_start(struct sess *s, enum io_tls_mode mode, const char *scenario, ...)
{
	va_list ap;

	va_start(ap, scenario);
	sess_startv(s, mode, scenario, ap);
	va_end(ap);
}

/* sess_connect(S): connects and logs in with s->o; a failure fails the test with the client's error. */
static void sess_connect(struct sess *s)
{
	if (imap_conn_connect(&s->o, &s->c, &s->err) < 0)
		fail_msg("%s (%s)", s->err.message, s->err.detail);
}

#ifndef IMAP_TEST_LAB
/* sess_login(S, MODE, SCENARIO, FAKE ARGS..., NULL): sess_start, then sess_connect. */
static void sess_login(struct sess *s, enum io_tls_mode mode, const char *scenario, ...)
{
	va_list ap;

	va_start(ap, scenario);
	sess_startv(s, mode, scenario, ap);
	va_end(ap);
	sess_connect(s);
}
#endif

/* Closes the connection, releases s->mb and s->col and stops the fake. */
static void sess_done(struct sess *s)
{
	imap_mailbox_release(&s->mb);
	collect_release(&s->col);
	imap_conn_close(&s->c);
	fake_stop(&s->f);
}

/* sess_done, then the fake's command log (heap string, "" when empty). */
static char *sess_end(struct sess *s)
{
	sess_done(s);
	return fake_log(&s->f);
}

/* The error E has class CLS and code CODE (a macro: a failure names the caller's line). */
#define assert_err(e, cls_, code_)                                                                             \
	do {                                                                                                   \
		assert_int_equal((e).cls, (cls_));                                                             \
		assert_string_equal((e).code, (code_));                                                        \
	} while (0)

#ifndef IMAP_TEST_LAB

/* ---- servers that refuse: one table, one check ----------------------------------------------------- */

/* A scripted fake and how the client must give up on it: connecting (or, with greeting_only, just
 * reading the greeting) fails with this class and code; the substrings must stand in the error and
 * the fake's command log, or must not. NULL and 0 fields are not checked. */
struct refusal {
	const char *name;		    /* the test's name in the TAP output */
	const char *scenario, *args[3];	    /* the fake's script and extra arguments */
	enum io_tls_mode mode;
	int greeting_only;
	enum fleet_err_class cls;
	const char *code;
	int account_scope;		    /* the error is the account's, not a folder's or a message's */
	const char *in_message, *in_detail, *not_in_message;
	const char *log_has, *log_lacks[2];
	unsigned within_ms;		    /* the refusal comes this quickly */
};

/* The fake's script SCEN refuses the login: the class and code are the server's answer, the error
 * is the account's. */
#define LOGIN_REFUSED(scen, cls_, code_)                                                                       \
	{.name = "login_refusals_keep_their_class: " scen, .scenario = scen, .args = {"--password", FAKE_PASSWORD}, \
	 .mode = IO_TLS_PLAIN, .cls = cls_, .code = code_, .account_scope = 1,                                   \
	 .in_message = "could not log in as user"}

static const struct refusal refusals[] = {
    {.name = "starttls_not_offered_is_refused_before_any_login",
     .scenario = "no-starttls", .mode = IO_TLS_STARTTLS, .cls = FLEET_ERR_PERMANENT,
     .code = "STARTTLS_UNAVAILABLE", .in_message = "does not offer STARTTLS", .in_detail = "--ssl",
     .log_lacks = {"LOGIN", "AUTHENTICATE"}},
    {.name = "bytes_after_the_starttls_ok_are_rejected",
     .scenario = "starttls-injection", .mode = IO_TLS_STARTTLS, .cls = FLEET_ERR_PERMANENT,
     .code = "STARTTLS_INJECTION", .log_has = "STARTTLS", .log_lacks = {"LOGIN"}},
    {.name = "malformed_responses_are_a_protocol_bug",
     .scenario = "malformed", .mode = IO_TLS_PLAIN, .cls = FLEET_ERR_BUG, .code = "PARSE",
     .account_scope = 1, .in_detail = "FETCH (UID 1))", .within_ms = 5000},
    {.name = "bye_greeting_is_transient",
     .scenario = "bye", .mode = IO_TLS_PLAIN, .greeting_only = 1, .cls = FLEET_ERR_TRANSIENT,
     .code = "UNAVAILABLE", .in_message = "maintenance"},
    LOGIN_REFUSED("authfail", FLEET_ERR_AUTH, "AUTHENTICATIONFAILED"),
    LOGIN_REFUSED("throttle", FLEET_ERR_THROTTLED, "THROTTLED"),
    LOGIN_REFUSED("limit", FLEET_ERR_THROTTLED, "LIMIT"),
    LOGIN_REFUSED("unavailable", FLEET_ERR_TRANSIENT, "UNAVAILABLE"),
    {.name = "wrong_password_is_auth_class_with_server_text",
     .scenario = "normal", .args = {"--password", "other"}, .mode = IO_TLS_PLAIN, .cls = FLEET_ERR_AUTH,
     .in_message = "Authentication failed", .not_in_message = FAKE_PASSWORD},
};

/* Runs one row of refusals (the test's state). */
static void the_client_gives_up_as_the_row_says(void **state)
{
	const struct refusal *r = *state;
	struct sess s;
	uint64_t t0 = fleet_now_ms();
	char *log;
	int rc;

	sess_start(&s, r->mode, r->scenario, r->args[0], r->args[1], r->args[2], NULL);
	rc = r->greeting_only ? imap_conn_open(&s.o, &s.c, &s.err) : imap_conn_connect(&s.o, &s.c, &s.err);
	assert_int_equal(rc, -1);
	assert_null(s.c);
	if (s.err.cls != r->cls || (r->code && strcmp(s.err.code, r->code) != 0))
		fail_msg("%s: got %s %s: %s", r->scenario, fleet_err_class_name(s.err.cls), s.err.code,
			 s.err.message);
	if (r->account_scope)
		assert_int_equal(s.err.scope, FLEET_SCOPE_ACCOUNT);
	if (r->in_message)
		assert_contains(s.err.message, r->in_message);
	if (r->in_detail)
		assert_contains(s.err.detail, r->in_detail);
	if (r->not_in_message)
		assert_null(strstr(s.err.message, r->not_in_message));
	if (r->within_ms)
		assert_true(fleet_now_ms() - t0 < r->within_ms);
	log = sess_end(&s);
	if (r->log_has)
		assert_contains(log, r->log_has);
	for (size_t i = 0; i < 2; i++)
		if (r->log_lacks[i])
			assert_null(strstr(log, r->log_lacks[i]));
	xfree(&log);
}

static void cleartext_login_needs_plain_mode_chosen_explicitly(void **state)
{
	struct sess s;

	sess_login(&s, IO_TLS_PLAIN, "no-starttls", "--password", FAKE_PASSWORD, NULL);
	assert_false(io_stream_is_tls(imap_conn_stream(s.c)));
	sess_done(&s);
}

/* ---- hostile and broken servers ---------------------------------------------------------------- */

/* Both sides of an account log in to the fake of S at once (imap_conn_connect_many) with its
 * options, the second labelled "dst" and with DST_PASSWORD unless NULL; what connect_many returns. */
static int two_sides_connect(const struct sess *s, const char *dst_password, struct imap_conn *c[2],
			     struct fleet_err errs[2])
{
	struct imap_options o[2] = {s->o, s->o};
	const struct imap_options *op[2] = {&o[0], &o[1]};

	o[1].label = "dst";
	if (dst_password)
		o[1].password = dst_password;
	return imap_conn_connect_many(op, 2, c, errs);
}

/* The two sides of an account log in at the same time: the fake greets no one before both
 * connections are in (a client that connected one after the other would time out waiting for the
 * first greeting), and both logins succeed. */
static void connect_many_logs_in_both_connections_at_once(void **state)
{
	struct sess s;
	struct imap_conn *c[2] = {NULL, NULL};
	struct fleet_err errs[2];
	char *log;

	sess_start(&s, IO_TLS_PLAIN, "no-starttls", "--user", "user", "--password", FAKE_PASSWORD,
		   "--greet-after-conns", "2", NULL);
	assert_int_equal(two_sides_connect(&s, NULL, c, errs), 0);
	assert_non_null(c[0]);
	assert_non_null(c[1]);
	assert_string_equal(imap_conn_label(c[0]), "src");
	assert_string_equal(imap_conn_label(c[1]), "dst");
	imap_conn_close(&c[0]);
	imap_conn_close(&c[1]);
	log = sess_end(&s);
	assert_contains(log, "1 plain C: (greeting with 2 connections accepted)");
	assert_contains(log, "2 plain C: (greeting with 2 connections accepted)");
	assert_null(strstr(log, "(greeting with 1 connections accepted)"));
	free(log);
}

/* A refused login fails that connection alone, with its own error; the other one is open. */
static void connect_many_fails_only_the_refused_connection(void **state)
{
	struct sess s;
	struct imap_conn *c[2] = {NULL, NULL};
	struct fleet_err errs[2];

	sess_start(&s, IO_TLS_PLAIN, "no-starttls", "--user", "user", "--password", FAKE_PASSWORD, NULL);
	assert_int_equal(two_sides_connect(&s, "wrong-password", c, errs), 1);
	assert_non_null(c[0]);
	assert_null(c[1]);
	assert_int_equal(errs[1].cls, FLEET_ERR_AUTH);
	assert_false(fleet_err_is_set(&errs[0]));
	imap_conn_close(&c[0]);
	sess_done(&s);
}

/* Logs in to SCENARIO, selects INBOX into s->mb (EXAMINE when read_only) and fetches every body
 * into s->col (whose consumer refuses the first body when consumer_refuses), which must fail; the
 * error is in s->err. */
static void fetch_bodies_fails(struct sess *s, const char *scenario, int read_only, int consumer_refuses)
{
	sess_login(s, IO_TLS_PLAIN, scenario, "--password", FAKE_PASSWORD, NULL);
	s->col.fail_on_start = consumer_refuses;
	assert_int_equal(imap_select(s->c, "INBOX", read_only, &s->mb, &s->err), 0);
	assert_int_equal(imap_fetch(s->c, "1:*", "(UID BODY.PEEK[])", &stream_cb, &s->col, &s->err), -1);
}

static void connection_closed_mid_literal_is_transient(void **state)
{
	struct sess s;

	fetch_bodies_fails(&s, "truncated", 0, 0);
	assert_err(s.err, FLEET_ERR_TRANSIENT, "EOF");
	assert_contains(s.err.message, "middle of a response");
	assert_int_equal(s.col.starts, 1);
	assert_int_equal(s.col.ends, 0);
	assert_true(imap_conn_is_broken(s.c));
	/* Every later command fails the same way instead of hanging. */
	assert_int_equal(imap_noop(s.c, &s.err), -1);
	assert_string_equal(s.err.code, "EOF");
	sess_done(&s);
}

static void literal_above_the_limit_is_refused(void **state)
{
	struct sess s;

	fetch_bodies_fails(&s, "huge-literal", 1, 0);
	assert_err(s.err, FLEET_ERR_BUG, "PARSE_LIMIT");
	assert_int_equal(s.col.starts, 0);
	sess_done(&s);
}

static void a_failing_body_consumer_fails_the_fetch_but_not_the_connection(void **state)
{
	struct sess s;

	fetch_bodies_fails(&s, "normal", 1, 1);
	assert_true(s.mb.read_only);
	assert_string_equal(s.err.code, "TEST");
	assert_int_equal(s.col.bytes, 0);
	assert_int_equal(imap_noop(s.c, &s.err), 0);
	sess_done(&s);
}

/* ---- refusals after the login ------------------------------------------------------------------------ */

static void throttled_select_then_recovery(void **state)
{
	struct sess s;

	sess_login(&s, IO_TLS_PLAIN, "throttle", "--password", FAKE_PASSWORD, "--throttle-on", "select",
		   "--throttle-count", "1", NULL);
	assert_int_equal(imap_select(s.c, "INBOX", 0, &s.mb, &s.err), -1);
	assert_err(s.err, FLEET_ERR_THROTTLED, "THROTTLED");
	assert_true(fleet_err_retryable(&s.err));
	/* A refusal is not a broken connection. */
	assert_int_equal(imap_noop(s.c, &s.err), 0);
	imap_conn_close(&s.c);
	sess_connect(&s);
	assert_int_equal(imap_select(s.c, "INBOX", 0, &s.mb, &s.err), 0);
	assert_int_equal(s.mb.exists, 3);
	sess_done(&s);
}

/* ---- a whole session ------------------------------------------------------------------------------ */

static void full_session_lists_selects_fetches_and_appends_pipelined(void **state)
{
	struct sess s;
	struct imap_conn *c;
	struct imap_list list = {0};
	struct imap_status_info st;
	struct imap_uids uids = {0};
	struct imap_append_result ar;
	struct fleet_err err;
	int ids[3];
	char *log;

	sess_login(&s, IO_TLS_PLAIN, "normal", "--password", FAKE_PASSWORD, NULL);
	c = s.c;
	assert_true(imap_conn_has_cap(c, "uidplus"));
	assert_true(imap_conn_has_cap(c, "LITERAL+"));
	assert_int_equal(imap_create(c,
				     "Entw\xc3\xbc"
				     "rfe",
				     &err),
			 0);
	assert_int_equal(imap_create(c,
				     "Entw\xc3\xbc"
				     "rfe",
				     &err),
			 -1);
	assert_string_equal(err.code, "ALREADYEXISTS");
	assert_int_equal(err.scope, FLEET_SCOPE_FOLDER);
	assert_int_equal(imap_subscribe(c,
					"Entw\xc3\xbc"
					"rfe",
					&err),
			 0);
	assert_int_equal(imap_list(c, &list, &err), 0);
	assert_int_equal(list.n, 2);
	assert_string_equal(list.v[0].name, "Entw\xc3\xbc"
					    "rfe");
	assert_string_equal(list.v[0].wire, "Entw&APw-rfe");
	assert_int_equal(list.v[0].delim, '/');
	assert_true(list.v[0].flags & IMAP_MBX_SUBSCRIBED);
	assert_string_equal(list.v[1].name, "INBOX");
	assert_false(list.v[1].flags & IMAP_MBX_SUBSCRIBED);
	assert_int_equal(imap_status(c, "INBOX", &st, &err), 0);
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.uidnext, 4);
	assert_true(st.have & IMAP_HAVE_UIDVALIDITY);
	assert_int_equal(imap_status(c, "Nope", &st, &err), -1);
	assert_string_equal(err.code, "NONEXISTENT");

	assert_int_equal(imap_select(c, "INBOX", 0, &s.mb, &err), 0);
	assert_int_equal(s.mb.exists, 3);
	assert_int_equal(s.mb.uidnext, 4);
	assert_true(s.mb.uidvalidity > 0);
	assert_false(s.mb.read_only);
	assert_true(imap_strlist_find(&s.mb.permanentflags, "\\*") >= 0);

	/* Metadata: headers buffered and delivered with the message. */
	assert_int_equal(
	    imap_fetch(c, "2", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
		       &stream_cb, &s.col, &err),
	    0);
	assert_int_equal(s.col.messages, 1);
	assert_int_equal(s.col.last_uid, 2);
	assert_int_equal(s.col.starts, 0);
	assert_string_equal(s.col.section, "Message-ID: <fake-2@example.com>\r\n\r\n");
	assert_string_equal(s.col.date, "17-Jul-1996 02:44:25 -0700");

	/* Bodies: streamed, UID known at body start. */
	s.col.messages = 0;
	assert_int_equal(imap_fetch(c, "1:*", "(UID BODY.PEEK[])", &stream_cb, &s.col, &err), 0);
	assert_int_equal(s.col.messages, 3);
	assert_int_equal(s.col.starts, 3);
	assert_int_equal(s.col.ends, 3);
	assert_int_equal(s.col.start_uid, 3);
	assert_non_null(strstr(fleet_buf_cstr(&s.col.body), "Subject: test 3"));

	/* "10:*" beyond the last UID: the server answers with the last message, which is not ours. */
	s.col.messages = s.col.starts = 0;
	assert_int_equal(imap_fetch(c, "10:*", "(UID BODY.PEEK[])", &stream_cb, &s.col, &err), 0);
	assert_int_equal(s.col.messages, 0);
	assert_int_equal(s.col.starts, 0);

	/* Three APPENDs in flight at once with LITERAL+. */
	for (int i = 0; i < 3; i++) {
		char msg[128];
		int n = snprintf(msg, sizeof(msg), "Subject: appended %d\r\n\r\nhello %d\r\n", i, i);

		assert_int_equal(imap_append_begin(c, "INBOX", "\\Seen", "01-Jan-2020 10:00:00 +0100",
						   (uint64_t)n, &ids[i], &err),
				 0);
		assert_int_equal(imap_append_data(c, msg, 5, &err), 0);
		assert_int_equal(imap_append_data(c, msg + 5, (size_t)n - 5, &err), 0);
		assert_int_equal(imap_append_end(c, &err), 0);
	}
	assert_int_equal(imap_conn_in_flight(c), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(imap_append_wait(c, ids[i], &ar, &err), 0);
		assert_true(ar.has_uid);
		assert_int_equal(ar.uid, 4 + i);
		assert_int_equal(ar.uidvalidity, s.mb.uidvalidity);
	}
	assert_int_equal(imap_uid_search(c, "ALL", &uids, &err), 0);
	assert_int_equal(uids.n, 6);
	assert_int_equal(uids.v[5], 6);
	assert_int_equal(imap_uid_store(c, "1", IMAP_STORE_ADD, "\\Deleted", 1, &err), 0);
	assert_int_equal(imap_uid_expunge(c, "1", &err), 0);
	imap_uids_release(&uids);
	assert_int_equal(imap_uid_search(c, "UID 1:3", &uids, &err), 0);
	assert_int_equal(uids.n, 2);
	assert_int_equal(imap_logout(c, &err), 0);
	log = sess_end(&s);

	assert_contains(log, "plain C: a1 AUTHENTICATE PLAIN ");
	assert_contains(log, "CREATE \"Entw&APw-rfe\"");
	if (!strstr(log, "UID FETCH 1:* (UID BODY.PEEK[])"))
		fail_msg("log:\n%s", log);
	assert_contains(log, "APPEND \"INBOX\" (\\Seen) \"01-Jan-2020 10:00:00 +0100\" {32 bytes}");
	xfree(&log);
	imap_uids_release(&uids);
	imap_list_release(&list);
}

static void without_uidplus_and_literal_plus_append_waits_for_continuation(void **state)
{
	struct sess s;
	struct imap_append_result ar;
	/* A password that cannot be a quoted string: it goes as a synchronising literal. */
	const char *pw = "p\xc3\xa4ss\"w\\rd";
	char *log;

	sess_start(&s, IO_TLS_PLAIN, "no-uidplus", "--password", pw, NULL);
	s.o.password = pw;
	s.o.auth = IMAP_AUTH_LOGIN;
	sess_connect(&s);
	assert_false(imap_conn_has_cap(s.c, "LITERAL+"));
	assert_int_equal(imap_append_buf(s.c, "INBOX", NULL, NULL, "Subject: x\r\n\r\ny\r\n", 17, &ar, &s.err), 0);
	assert_false(ar.has_uid);
	assert_int_equal(imap_uid_expunge(s.c, "1", &s.err), -1);
	assert_string_equal(s.err.code, "UIDPLUS_MISSING");
	log = sess_end(&s);
	assert_contains(log, "LOGIN \"user\" {");
	assert_contains(log, "APPEND \"INBOX\" {17 bytes}");
	xfree(&log);
}

static void one_refused_append_does_not_stop_the_others(void **state)
{
	struct sess s;
	struct imap_append_result ar;
	int ids[3];

	sess_login(&s, IO_TLS_PLAIN, "append-no", "--password", FAKE_PASSWORD, "--reject-append", "2", NULL);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(imap_append_begin(s.c, "INBOX", NULL, NULL, 9, &ids[i], &s.err), 0);
		assert_int_equal(imap_append_data(s.c, "Subject:x", 9, &s.err), 0);
		assert_int_equal(imap_append_end(s.c, &s.err), 0);
	}
	assert_int_equal(imap_append_wait(s.c, ids[0], &ar, &s.err), 0);
	assert_int_equal(imap_append_wait(s.c, ids[1], &ar, &s.err), -1);
	assert_err(s.err, FLEET_ERR_PERMANENT, "TOOBIG");
	assert_int_equal(s.err.scope, FLEET_SCOPE_MESSAGE);
	assert_int_equal(imap_append_wait(s.c, ids[2], &ar, &s.err), 0);
	assert_true(ar.has_uid);
	sess_done(&s);
}

static void traces_show_commands_but_never_the_password(void **state)
{
	struct sess s;
	char path[300], why[128], *trace;
	FILE *sink;
	const char *pw = "p\xc3\xa4ss-Trace-Secret";

	snprintf(path, sizeof(path), "%s/trace.log", g_tmpdir);
	sink = fopen(path, "w");
	assert_non_null(sink);
	fleet_log_set_sink(sink);
	fleet_log_set_level(FLEET_LOG_TRACE);
	for (int mech = 0; mech < 2; mech++) {
		sess_start(&s, IO_TLS_PLAIN, mech ? "no-uidplus" : "normal", "--password", pw, NULL);
		s.o.password = pw;
		s.o.auth = mech ? IMAP_AUTH_LOGIN : IMAP_AUTH_PLAIN;
		sess_connect(&s);
		assert_int_equal(imap_noop(s.c, &s.err), 0);
		sess_done(&s);
	}
	fleet_log_set_level(FLEET_LOG_INFO);
	fleet_log_set_sink(NULL);
	fclose(sink);
	trace = fleet_read_small_file(path, 1 << 20, why, sizeof(why));
	assert_non_null(trace);
	assert_contains(trace, "src C: a1 AUTHENTICATE PLAIN <redacted>");
	assert_contains(trace, "src C: a1 LOGIN \"user\" <redacted>");
	assert_contains(trace, "src S: * OK [CAPABILITY");
	assert_contains(trace, " NOOP");
	assert_null(strstr(trace, pw));
	assert_null(strstr(trace, "Trace-Secret"));
	xfree(&trace);
}

static void internaldate_parses_and_formats_with_zone(void **state)
{
	static const struct {
		const char *in;
		int64_t utc;
		int tz;
		const char *out;
	} cases[] = {
	    {"17-Jul-1996 02:44:25 -0700", 837596665, -420, "17-Jul-1996 02:44:25 -0700"},
	    {" 1-Jan-2020 00:00:00 +0000", 1577836800, 0, "01-Jan-2020 00:00:00 +0000"},
	    {"1-Jan-2020 01:30:00 +0130", 1577836800, 90, "01-Jan-2020 01:30:00 +0130"},
	    {"29-Feb-2024 23:59:59 +1400", 1709200799, 840, "29-Feb-2024 23:59:59 +1400"},
	    {"31-dec-1969 23:59:59 +0000", -1, 0, "31-Dec-1969 23:59:59 +0000"},
	};
	static const char *const bad[] = {
	    "",
	    "17-Jul-1996",
	    "17-Jux-1996 02:44:25 -0700",
	    "32-Jul-1996 02:44:25 -0700",
	    "17-Jul-1996 24:00:00 -0700",
	    "17-Jul-1996 02:44:25 0700",
	    "17-Jul-1996 02:44:25 -07000",
	    "17-Jul-96 02:44:25 -0700",
	    "x7-Jul-1996 02:44:25 -0700",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t t;
		int tz;
		char out[IMAP_INTERNALDATE_LEN];

		if (imap_internaldate_parse(cases[i].in, &t, &tz) != 0)
			fail_msg("refused %s", cases[i].in);
		assert_int_equal(t, cases[i].utc);
		assert_int_equal(tz, cases[i].tz);
		assert_int_equal(imap_internaldate_format(t, tz, out, sizeof(out)), 0);
		assert_string_equal(out, cases[i].out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t t;
		int tz;

		if (imap_internaldate_parse(bad[i], &t, &tz) == 0)
			fail_msg("accepted %s", bad[i]);
	}
}

static void pipelined_status_commands_complete_out_of_a_poll_loop(void **state)
{
	struct sess s;
	struct imap_status_info st[3];
	const char *boxes[3] = {"INBOX", "A", "B"};
	int ids[3], done = 0;
	uint64_t t0;

	sess_login(&s, IO_TLS_PLAIN, "normal", "--password", FAKE_PASSWORD, NULL);
	assert_int_equal(imap_create(s.c, "A", &s.err), 0);
	assert_int_equal(imap_create(s.c, "B", &s.err), 0);
	for (int i = 0; i < 3; i++)
		assert_true((ids[i] = imap_status_send(s.c, boxes[i], &st[i], &s.err)) > 0);
	assert_int_equal(imap_conn_in_flight(s.c), 3);
	t0 = fleet_now_ms();
	while (done < 3 && fleet_now_ms() - t0 < 3000) {
		int r = imap_conn_poll(s.c, 100, &s.err);

		assert_true(r >= 0);
		done += r;
	}
	assert_int_equal(done, 3);
	for (int i = 0; i < 3; i++) {
		assert_true(imap_cmd_done(s.c, ids[i]));
		assert_int_equal(imap_cmd_wait(s.c, ids[i], NULL, FLEET_SCOPE_FOLDER, &s.err), 0);
		assert_int_equal(st[i].messages, i == 0 ? 3 : 0);
	}
	assert_int_equal(imap_conn_in_flight(s.c), 0);
	sess_done(&s);
}

#else /* IMAP_TEST_LAB */

struct lab {
	char ca[512], host[128], secrets[512];
	int src_imaps, dst_imaps, dst_imap;
	char cert[512], key[512];
};

static struct lab g_lab;

/* Reads KEY='value' lines of lab.env. */
static int lab_load(const char *path)
{
	FILE *fp = fopen(path, "r");
	char line[1024];

	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp)) {
		char *eq = strchr(line, '='), *v;
		size_t n;
		uint64_t port;

		if (!eq)
			continue;
		*eq = '\0';
		v = eq + 1;
		v[strcspn(v, "\r\n")] = '\0';
		n = strlen(v);
		if (n >= 2 && v[0] == '\'' && v[n - 1] == '\'') {
			v[n - 1] = '\0';
			v++;
		}
		if (!strcmp(line, "export LAB_CA"))
			snprintf(g_lab.ca, sizeof(g_lab.ca), "%s", v);
		else if (!strcmp(line, "export LAB_HOST"))
			snprintf(g_lab.host, sizeof(g_lab.host), "%s", v);
		else if (!strcmp(line, "export LAB_SECRETS"))
			snprintf(g_lab.secrets, sizeof(g_lab.secrets), "%s", v);
		else if (!strcmp(line, "export LAB_DIR")) {
			snprintf(g_lab.cert, sizeof(g_lab.cert), "%s/tls/server.pem", v);
			snprintf(g_lab.key, sizeof(g_lab.key), "%s/tls/server.key", v);
		} else if (fleet_parse_u64(v, 1, 65535, &port) == 0) {
			if (!strcmp(line, "export LAB_SRC_IMAPS"))
				g_lab.src_imaps = (int)port;
			else if (!strcmp(line, "export LAB_DST_IMAPS"))
				g_lab.dst_imaps = (int)port;
			else if (!strcmp(line, "export LAB_DST_IMAP"))
				g_lab.dst_imap = (int)port;
		}
	}
	fclose(fp);
	return g_lab.ca[0] && g_lab.secrets[0] && g_lab.dst_imaps ? 0 : -1;
}

static char *lab_password(const char *side, const char *user)
{
	char path[700], why[128];

	snprintf(path, sizeof(path), "%s/%s/%s", g_lab.secrets, side, user);
	return fleet_read_small_file(path, 4096, why, sizeof(why));
}

static void lab_opts(struct imap_options *o, int port, enum io_tls_mode mode, const char *pw)
{
	memset(o, 0, sizeof(*o));
	o->ep.host = g_lab.host[0] ? g_lab.host : "localhost";
	o->ep.port = (uint16_t)port;
	o->ep.mode = mode;
	o->ep.cafile = g_lab.ca;
	o->ep.connect_timeout_ms = 5000;
	o->ep.io_timeout_ms = 10000;
	o->user = "user01";
	o->password = pw;
	o->label = "dst";
}

/* The fake with the lab's certificate (EXTRA: one more argument or NULL), reached in MODE as
 * "localhost" with the lab's CA. */
static void lab_fake_start(struct sess *s, enum io_tls_mode mode, const char *extra)
{
	sess_start(s, mode, "normal", "--password", FAKE_PASSWORD, "--cert", g_lab.cert, "--key", g_lab.key, extra,
		   NULL);
	s->o.ep.host = "localhost";
	s->o.ep.cafile = g_lab.ca;
}

static void starttls_to_the_fake_with_the_lab_certificate_logs_in_only_after_tls(void **state)
{
	struct sess s;
	char *log;

	lab_fake_start(&s, IO_TLS_STARTTLS, NULL);
	sess_connect(&s);
	assert_true(io_stream_is_tls(imap_conn_stream(s.c)));
	assert_false(imap_conn_has_cap(s.c, "STARTTLS"));
	log = sess_end(&s);
	assert_contains(log, "1 plain C: a1 STARTTLS");
	assert_contains(log, "1 tls C: a2 CAPABILITY");
	assert_contains(log, "1 tls C: a3 AUTHENTICATE PLAIN");
	assert_null(strstr(log, "plain C: a3"));
	xfree(&log);
}

static void implicit_tls_to_the_fake_verifies_the_certificate(void **state)
{
	struct sess s;

	lab_fake_start(&s, IO_TLS_IMPLICIT, "--implicit-tls");
	sess_connect(&s);
	imap_conn_close(&s.c);
	/* Without the lab CA the certificate is not trusted: no fallback, no login. */
	s.o.ep.cafile = NULL;
	assert_int_equal(imap_conn_connect(&s.o, &s.c, &s.err), -1);
	assert_int_equal(s.err.cls, FLEET_ERR_PERMANENT);
	sess_done(&s);
}

/* The second implicit-TLS connection to a server sends its login right behind the TLS handshake,
 * before the greeting (one round trip less); the first waits for the greeting, whose capabilities
 * choose the mechanism. Both log in. */
static void a_later_implicit_tls_connection_logs_in_before_the_greeting(void **state)
{
	struct sess s;
	struct imap_conn *c2 = NULL;
	char *log;

	sess_start(&s, IO_TLS_IMPLICIT, "normal", "--password", FAKE_PASSWORD, "--cert", g_lab.cert, "--key",
		   g_lab.key, "--implicit-tls", "--greet-delay-ms", "300", NULL);
	s.o.ep.host = "localhost";
	s.o.ep.cafile = g_lab.ca;
	sess_connect(&s);
	if (imap_conn_connect(&s.o, &c2, &s.err) < 0)
		fail_msg("%s (%s)", s.err.message, s.err.detail);
	assert_true(imap_conn_has_cap(c2, "UIDPLUS")); /* the capabilities after login */
	imap_conn_close(&c2);
	log = sess_end(&s);
	assert_contains(log, "1 tls C: (client silent before the greeting)");
	assert_contains(log, "1 tls C: a1 AUTHENTICATE PLAIN");
	assert_contains(log, "2 tls C: (client spoke before the greeting)");
	assert_contains(log, "2 tls C: a1 AUTHENTICATE PLAIN");
	xfree(&log);
}

/* A server that answers a login sent before its greeting BAD (MODE "bad"), or throws it away
 * unanswered (MODE "drop"): that connection logs in after the greeting or fails, and every later
 * connection to the server waits for the greeting and logs in. */
static void early_login_refused_by(const char *mode, int second_logs_in)
{
	struct sess s;
	struct imap_conn *c2 = NULL, *c3 = NULL;
	char *log;

	sess_start(&s, IO_TLS_IMPLICIT, "normal", "--password", FAKE_PASSWORD, "--cert", g_lab.cert, "--key",
		   g_lab.key, "--implicit-tls", "--greet-delay-ms", "300", "--pregreet", mode, NULL);
	s.o.ep.host = "localhost";
	s.o.ep.cafile = g_lab.ca;
	sess_connect(&s);
	if (second_logs_in) {
		if (imap_conn_connect(&s.o, &c2, &s.err) < 0)
			fail_msg("%s (%s)", s.err.message, s.err.detail);
	} else {
		assert_int_equal(imap_conn_connect(&s.o, &c2, &s.err), -1);
	}
	imap_conn_close(&c2);
	if (imap_conn_connect(&s.o, &c3, &s.err) < 0)
		fail_msg("%s (%s)", s.err.message, s.err.detail);
	assert_true(imap_conn_has_cap(c3, "UIDPLUS"));
	imap_conn_close(&c3);
	log = sess_end(&s);
	assert_contains(log, "2 tls C: (client spoke before the greeting)");
	assert_contains(log, "3 tls C: (client silent before the greeting)");
	assert_contains(log, "3 tls C: a1 AUTHENTICATE PLAIN");
	xfree(&log);
}

static void an_early_login_answered_bad_is_sent_again_after_the_greeting_and_never_early_again(void **state)
{
	early_login_refused_by("bad", 1);
}

static void an_early_login_thrown_away_fails_that_connection_only_and_never_goes_early_again(void **state)
{
	early_login_refused_by("drop", 0);
}

static void dovecot_login_select_append_and_streamed_fetch_round_trip(void **state)
{
	struct imap_options o;
	struct imap_conn *c = NULL;
	struct imap_mailbox mb = {0};
	struct imap_append_result ar;
	struct collect col;
	struct fleet_err err;
	struct fleet_buf msg = FLEET_BUF_INIT(8 << 20);
	char *pw = lab_password("dst", "user01");
	char uidset[32];
	int id;

	assert_non_null(pw);
	collect_init(&col);
	lab_opts(&o, g_lab.dst_imaps, IO_TLS_IMPLICIT, pw);
	if (imap_conn_connect(&o, &c, &err) < 0)
		fail_msg("%s (%s)", err.message, err.detail);
	assert_true(imap_conn_has_cap(c, "IMAP4rev1"));
	assert_int_equal(imap_select(c, "INBOX", 0, &mb, &err), 0);
	assert_true(mb.uidvalidity > 0);

	/* A 3 MB message, appended in chunks and fetched back in chunks. */
	fleet_buf_addf(&msg,
			  "From: lab@example.com\r\nSubject: imapfleet client test %llu\r\n"
			  "Message-ID: <client-%llu@imapfleet.test>\r\n\r\n",
			  (unsigned long long)fleet_wall_ms(), (unsigned long long)fleet_wall_ms());
	while (msg.len < 3 * 1024 * 1024)
		fleet_buf_add_str(
		    &msg, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n");
	assert_int_equal(
	    imap_append_begin(c, "INBOX", "\\Seen $Test", "17-Jul-1996 02:44:25 -0700", msg.len, &id, &err),
	    0);
	for (size_t off = 0; off < msg.len; off += 100000) {
		size_t n = msg.len - off < 100000 ? msg.len - off : 100000;

		assert_int_equal(imap_append_data(c, msg.data + off, n, &err), 0);
	}
	assert_int_equal(imap_append_end(c, &err), 0);
	if (imap_append_wait(c, id, &ar, &err) < 0)
		fail_msg("%s", err.message);
	assert_true(ar.has_uid);
	assert_int_equal(ar.uidvalidity, mb.uidvalidity);
	snprintf(uidset, sizeof(uidset), "%u", ar.uid);
	assert_int_equal(imap_fetch(c, uidset, "(UID INTERNALDATE BODY.PEEK[])", &stream_cb, &col, &err), 0);
	assert_int_equal(col.starts, 1);
	assert_int_equal(col.start_uid, ar.uid);
	assert_int_equal(col.announced, msg.len);
	assert_int_equal(col.body.len, msg.len);
	assert_memory_equal(col.body.data, msg.data, msg.len);
	assert_true(col.max_chunk <= 64 * 1024);
	/* The server may keep the date in another zone: the instant must be the same. */
	{
		int64_t t1, t2;
		int z1, z2;

		assert_int_equal(imap_internaldate_parse(col.date, &t1, &z1), 0);
		assert_int_equal(imap_internaldate_parse("17-Jul-1996 02:44:25 -0700", &t2, &z2), 0);
		assert_int_equal(t1, t2);
	}
	assert_int_equal(imap_uid_store(c, uidset, IMAP_STORE_ADD, "\\Deleted", 1, &err), 0);
	if (imap_conn_has_cap(c, "UIDPLUS"))
		assert_int_equal(imap_uid_expunge(c, uidset, &err), 0);
	assert_int_equal(imap_logout(c, &err), 0);
	imap_conn_close(&c);
	imap_mailbox_release(&mb);
	fleet_buf_release(&msg);
	collect_release(&col);
	xfree(&pw);
}

static void dovecot_starttls_login_and_namespace(void **state)
{
	struct imap_options o;
	struct imap_conn *c = NULL;
	struct imap_namespace ns;
	struct imap_list list = {0};
	struct fleet_err err;
	char *pw = lab_password("dst", "user01");

	if (!g_lab.dst_imap)
		skip();
	assert_non_null(pw);
	lab_opts(&o, g_lab.dst_imap, IO_TLS_STARTTLS, pw);
	if (imap_conn_connect(&o, &c, &err) < 0)
		fail_msg("%s (%s)", err.message, err.detail);
	assert_true(io_stream_is_tls(imap_conn_stream(c)));
	assert_int_equal(imap_namespace(c, &ns, &err), 0);
	assert_true(ns.delim != 0);
	assert_int_equal(imap_list(c, &list, &err), 0);
	assert_true(list.n >= 1);
	imap_list_release(&list);
	imap_conn_close(&c);
	xfree(&pw);
}

#endif /* IMAP_TEST_LAB */

static int setup_group(void **state)
{
	const char *t = getenv("TMPDIR");

	snprintf(g_tmpdir, sizeof(g_tmpdir), "%s/imapfleet-client-XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(g_tmpdir))
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int teardown_group(void **state)
{
	/* IMAPFLEET_TEST_KEEP=1 keeps the fakes' command logs and traces for a look after a failure. */
	if (getenv("IMAPFLEET_TEST_KEEP")) {
		fprintf(stderr, "# logs kept in %s\n", g_tmpdir);
		return 0;
	}
	unit_rm_rf(g_tmpdir);
	return 0;
}

#ifndef IMAP_TEST_LAB
/* ---- caps on what a server controls (issue 13) ------------------------------------------------------ */

static int count_entries(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err)
{
	(*(unsigned long *)ctx)++;
	return 0;
}

/* sess_start of a hostile fake (HOSTILE: "hostile:" and tests/tools/hostileimap.py's scenario, then
 * one argument ARG with its VALUE), without a protocol trace; connects nothing. */
static void hostile_start(struct sess *s, const char *hostile, const char *arg, const char *value)
{
	sess_start(s, IO_TLS_PLAIN, hostile, "--password", FAKE_PASSWORD, arg, value, NULL);
	s->o.trace = 0;
}

/* A valid UID set of exactly LEN bytes (heap): ten-digit UIDs, the last one as long as what is left. */
static char *uidset_of_length(size_t len)
{
	struct fleet_buf b = FLEET_BUF_INIT(len + 1);

	while (len - b.len > 11)
		fleet_buf_add_str(&b, "4000000000,");
	if (len - b.len == 11)
		fleet_buf_add_str(&b, "1,");
	fleet_buf_add_str(&b, "1");
	while (b.len < len)
		fleet_buf_add_str(&b, "0");
	assert_false(fleet_buf_truncated(&b));
	assert_int_equal(b.len, len);
	return fleet_buf_detach(&b, NULL);
}

/* The engine builds a folder's UID set (--delete2, verify --deep) up to ENGINE_FOLDER_SET_MAX: a set
 * that long goes out in UID STORE +FLAGS.SILENT (\Deleted) and UID EXPUNGE, the commands with the
 * most text around it, and is never refused as "command too long"; a set of IMAP_CMD_MAX is. */
static void a_folder_uid_set_at_the_engine_cap_fits_one_command(void **state)
{
	struct sess s;
	char *at_cap = uidset_of_length(ENGINE_FOLDER_SET_MAX), *over = uidset_of_length(IMAP_CMD_MAX);
	char max_line[32];

	snprintf(max_line, sizeof(max_line), "%d", 2 * IMAP_CMD_MAX);
	sess_start(&s, IO_TLS_PLAIN, "normal", "--password", FAKE_PASSWORD, "--max-line", max_line, NULL);
	s.o.trace = 0;
	s.o.ep.io_timeout_ms = 60000; /* the fake (Python) reads and parses megabytes of set */
	sess_connect(&s);
	assert_int_equal(imap_select(s.c, "INBOX", 0, &s.mb, &s.err), 0);
	if (imap_uid_store(s.c, at_cap, IMAP_STORE_ADD, "\\Deleted", 1, &s.err) < 0 ||
	    imap_uid_expunge(s.c, at_cap, &s.err) < 0)
		fail_msg("a set of ENGINE_FOLDER_SET_MAX bytes: %s (%s)", s.err.message, s.err.code);
	assert_int_equal(imap_uid_expunge(s.c, over, &s.err), -1);
	assert_err(s.err, FLEET_ERR_BUG, IMAP_CODE_CLIENTBUG);
	assert_contains(s.err.message, "command too long");
	assert_false(imap_conn_is_broken(s.c));
	xfree(&at_cap);
	xfree(&over);
	sess_done(&s);
}

static void a_list_longer_than_any_real_account_fails_with_a_named_cap(void **state)
{
	struct sess s;
	struct imap_list l = {0};
	char n[16];

	snprintf(n, sizeof(n), "%d", IMAP_LIST_MAX_ENTRIES + 5000);
	hostile_start(&s, "hostile:huge-list", "--list-entries", n);
	sess_connect(&s);
	assert_int_equal(imap_list(s.c, &l, &s.err), -1);
	assert_err(s.err, FLEET_ERR_PERMANENT, IMAP_ERR_LIMIT);
	assert_contains(s.err.message, "IMAP_LIST_MAX_ENTRIES");
	assert_true(l.n <= IMAP_LIST_MAX_ENTRIES);
	assert_true(imap_conn_is_broken(s.c)); /* the rest of the answer is never read */
	imap_list_release(&l);
	sess_done(&s);
}

static void a_metadata_fetch_that_never_ends_fails_with_a_named_cap(void **state)
{
	struct sess s;
	struct imap_fetch_cb cb = {.on_message = count_entries};
	unsigned long got = 0;

	/* 3 messages in INBOX; the server answers 20,000 FETCH responses (then OK) */
	hostile_start(&s, "hostile:endless-fetch", "--fetch-responses", "20000");
	sess_connect(&s);
	assert_int_equal(imap_select(s.c, "INBOX", 1, &s.mb, &s.err), 0);
	assert_int_equal(imap_fetch(s.c, "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE)", &cb, &got, &s.err), -1);
	assert_string_equal(s.err.code, IMAP_ERR_LIMIT);
	assert_contains(s.err.message, "IMAP_FETCH_MAX_PER_EXISTS");
	assert_true(got <= 3 * IMAP_FETCH_MAX_PER_EXISTS + IMAP_FETCH_SLACK);
	sess_done(&s);
}

static void a_drip_fed_answer_cannot_extend_its_deadline(void **state)
{
	struct sess s;
	struct imap_list l = {0};
	uint64_t t0;

	/* after login every byte comes 120 ms apart: the LIST answer would take about 7 s, each byte
	 * well within the 3 s inactivity timeout */
	hostile_start(&s, "hostile:drip", "--drip-ms", "120");
	s.o.no_id = 1;
	sess_connect(&s);
	t0 = fleet_now_ms();
	assert_int_equal(imap_list(s.c, &l, &s.err), -1);
	assert_err(s.err, FLEET_ERR_TRANSIENT, "TIMEOUT");
	assert_contains(s.err.message, "too slow");
	assert_true(fleet_now_ms() - t0 < 6000);
	imap_list_release(&l);
	sess_done(&s);
}

static void a_stop_request_ends_a_drip_fed_read_within_seconds(void **state)
{
	struct sess s;
	struct imap_list l = {0};
	atomic_int stop = 0;
	uint64_t t0;

	hostile_start(&s, "hostile:drip", "--drip-ms", "300");
	s.o.no_id = 1;
	s.o.ep.io_timeout_ms = 60000; /* neither timeout would fire for a minute */
	s.o.ep.cancel = &stop;
	sess_connect(&s);
	atomic_store(&stop, 1);
	t0 = fleet_now_ms();
	assert_int_equal(imap_list(s.c, &l, &s.err), -1);
	assert_string_equal(s.err.code, "CANCELLED");
	assert_true(fleet_now_ms() - t0 < IO_CANCEL_GRACE_MS + 2000);
	imap_list_release(&l);
	sess_done(&s);
}
#endif /* IMAP_TEST_LAB */

int main(void)
{
#ifndef IMAP_TEST_LAB
	static const struct CMUnitTest others[] = {
	    cmocka_unit_test_teardown(cleartext_login_needs_plain_mode_chosen_explicitly, teardown_test),
	    cmocka_unit_test_teardown(connect_many_logs_in_both_connections_at_once, teardown_test),
	    cmocka_unit_test_teardown(connect_many_fails_only_the_refused_connection, teardown_test),
	    cmocka_unit_test_teardown(connection_closed_mid_literal_is_transient, teardown_test),
	    cmocka_unit_test_teardown(literal_above_the_limit_is_refused, teardown_test),
	    cmocka_unit_test_teardown(a_list_longer_than_any_real_account_fails_with_a_named_cap, teardown_test),
	    cmocka_unit_test_teardown(a_folder_uid_set_at_the_engine_cap_fits_one_command, teardown_test),
	    cmocka_unit_test_teardown(a_metadata_fetch_that_never_ends_fails_with_a_named_cap, teardown_test),
	    cmocka_unit_test_teardown(a_drip_fed_answer_cannot_extend_its_deadline, teardown_test),
	    cmocka_unit_test_teardown(a_stop_request_ends_a_drip_fed_read_within_seconds, teardown_test),
	    cmocka_unit_test_teardown(throttled_select_then_recovery, teardown_test),
	    cmocka_unit_test_teardown(full_session_lists_selects_fetches_and_appends_pipelined,
				      teardown_test),
	    cmocka_unit_test_teardown(without_uidplus_and_literal_plus_append_waits_for_continuation,
				      teardown_test),
	    cmocka_unit_test_teardown(one_refused_append_does_not_stop_the_others, teardown_test),
	    cmocka_unit_test_teardown(a_failing_body_consumer_fails_the_fetch_but_not_the_connection,
				      teardown_test),
	    cmocka_unit_test_teardown(traces_show_commands_but_never_the_password, teardown_test),
	    cmocka_unit_test_teardown(internaldate_parses_and_formats_with_zone, teardown_test),
	    cmocka_unit_test_teardown(pipelined_status_commands_complete_out_of_a_poll_loop, teardown_test),
	};

	if (system("python3 -c 'import ssl' >/dev/null 2>&1") != 0)
		return unit_skip("python3 is needed for tests/tools/fakeimap.py");
	/* each row of refusals is a test of its own, by its name */
	return unit_run_rows("imap_client", others, refusals, the_client_gives_up_as_the_row_says, teardown_test,
			     setup_group, teardown_group);
#else
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(starttls_to_the_fake_with_the_lab_certificate_logs_in_only_after_tls,
				      teardown_test),
	    cmocka_unit_test_teardown(implicit_tls_to_the_fake_verifies_the_certificate, teardown_test),
	    cmocka_unit_test_teardown(a_later_implicit_tls_connection_logs_in_before_the_greeting, teardown_test),
	    cmocka_unit_test_teardown(an_early_login_answered_bad_is_sent_again_after_the_greeting_and_never_early_again,
				      teardown_test),
	    cmocka_unit_test_teardown(an_early_login_thrown_away_fails_that_connection_only_and_never_goes_early_again,
				      teardown_test),
	    cmocka_unit_test_teardown(dovecot_login_select_append_and_streamed_fetch_round_trip,
				      teardown_test),
	    cmocka_unit_test_teardown(dovecot_starttls_login_and_namespace, teardown_test),
	};
	const char *dir = getenv("LAB_DIR");
	char env[600];

	snprintf(env, sizeof(env), "%s/lab.env", dir && *dir ? dir : IMAPFLEET_SRCDIR "/.lab");
	if (lab_load(env) < 0)
		return unit_skip("the lab is not running (scripts/lab.sh up)");
	if (system("python3 -c 'import ssl' >/dev/null 2>&1") != 0)
		return unit_skip("python3 is needed for tests/tools/fakeimap.py");
	return unit_run("imap_lab", tests, setup_group, teardown_group);
#endif
}

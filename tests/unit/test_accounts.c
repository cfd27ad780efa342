/* Unit tests for accounts/accounts: both file forms, every kind of bad row, defaults, quoting,
 * passfiles, secrets and the 10,000-row import. */
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

#include "accounts/accounts.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#ifndef TEST_DATA_DIR
#error "TEST_DATA_DIR must name tests/data"
#endif
#define ACCOUNTS_DIR TEST_DATA_DIR "/accounts"

#define HDR    "host1,user1,password1,host2,user2,password2\n"
#define ROW_A  "imap.a.example,alice,pwa,imap.b.example,alice,pwa2"
#define ROW_B  "imap.a.example,bob,pwb,imap.b.example,bob,pwb2"
#define GOOD_A ROW_A "\n"
#define GOOD_B ROW_B "\n"

static struct accounts_file *parse(const char *text, unsigned flags, struct fleet_err *err)
{
	return accounts_parse_buffer(text, strlen(text), "accounts.csv", NULL, flags | ACCOUNTS_NO_FS_CHECKS,
				     err);
}

/* Runs the importer with the log going to a temporary file; returns what was logged. */
static char *logged_while(struct accounts_file **out, const char *path, const char *text, unsigned flags,
			  struct fleet_err *err)
{
	FILE *sink = tmpfile();
	char *log;
	long n;

	assert_non_null(sink);
	fleet_log_set_sink(sink);
	if (path)
		*out = accounts_load(path, flags, err);
	else
		*out = parse(text, flags, err);
	fleet_log_set_sink(NULL);
	fflush(sink);
	n = ftell(sink);
	rewind(sink);
	log = xcalloc(1, (size_t)n + 1);
	assert_int_equal(fread(log, 1, (size_t)n, sink), (size_t)n);
	fclose(sink);
	return log;
}

/* ---- CSV header --------------------------------------------------------------------------------- */

static void csv_columns_match_by_name_in_any_order_and_case(void **state)
{
	static const char *const inputs[] = {
	    HDR GOOD_A,
	    "PASSWORD2 , user2,host2,password1,USER1, "
	    "Host1\npwa2,alice,imap.b.example,pwa,alice,imap.a.example\n",
	    "\"user2\",\"host1\",password2,password1,user1,host2\nalice,imap.a.example,pwa2,pwa,alice,imap.b."
	    "example\n",
	};

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct fleet_err err;
		struct accounts_file *af = parse(inputs[i], 0, &err);
		const struct account_row *r;

		assert_non_null(af);
		assert_int_equal(accounts_format(af), ACCOUNTS_FORMAT_CSV);
		assert_int_equal(accounts_count(af), 1);
		assert_int_equal(accounts_error_count(af), 0);
		r = accounts_row(af, 0);
		assert_int_equal(r->line, 2);
		assert_string_equal(r->side[0].host, "imap.a.example");
		assert_string_equal(r->side[0].user, "alice");
		assert_string_equal(r->side[0].password, "pwa");
		assert_string_equal(r->side[1].host, "imap.b.example");
		assert_string_equal(r->side[1].user, "alice");
		assert_string_equal(r->side[1].password, "pwa2");
		assert_null(r->side[0].passfile);
		assert_int_equal(r->argc, 0);
		assert_non_null(r->argv);
		assert_null(r->argv[0]);
		accounts_free(&af);
		assert_null(af);
	}
}

struct fatal_case {
	const char *what;
	const char *text;
	const char *message_has;
	const char *detail_has;
};

static void unusable_header_fails_the_whole_file_and_says_why(void **state)
{
	static const struct fatal_case cases[] = {
	    {"unknown column", "host1,user1,password1,host2,user2,password2,hots1\n" GOOD_A,
	     "unknown column \"hots1\"", "known columns: host1, port1, user1, password1, passfile1"},
	    {"duplicate column", "host1,user1,password1,host2,user2,password2,user1\n",
	     "column user1 appears twice", NULL},
	    {"missing host2", "host1,user1,password1,user2,password2\n", "no column host2", NULL},
	    {"no password column", "host1,user1,password1,host2,user2\n", "no password2, passfile2, passcmd2",
	     NULL},
	    {"empty column name", "host1,user1,password1,,host2,user2,password2\n",
	     "column 4 of the header has no name", NULL},
	    {"every unknown column at once, with suggestions",
	     "host1,user1,Pasword1,host2,user2,password2,pass_file2,department\n" GOOD_A,
	     "unknown columns \"Pasword1\" (did you mean password1?), \"pass_file2\" (did you mean passfile2?), "
	     "\"department\"; rename each to a known column or remove them",
	     "known columns: host1"},
	    {"empty file", "\n\n# only a comment\n", "the file is empty", NULL},
	    {"unclosed quote in header", "host1,\"user1,password1,host2,user2,password2\n", "never closed",
	     NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fleet_err err;
		struct accounts_file *af = parse(cases[i].text, 0, &err);

		if (af)
			fail_msg("%s: expected a fatal error", cases[i].what);
		assert_true(fleet_err_is_set(&err));
		assert_int_equal(err.cls, FLEET_ERR_PERMANENT);
		if (!strstr(err.message, cases[i].message_has))
			fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].what, err.message,
				 cases[i].message_has);
		if (cases[i].detail_has && !strstr(err.detail, cases[i].detail_has))
			fail_msg("%s: detail \"%s\" lacks \"%s\"", cases[i].what, err.detail,
				 cases[i].detail_has);
	}
}

static void header_only_file_imports_no_rows_without_errors(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = parse(HDR "\n\n", 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_count(af), 0);
	assert_int_equal(accounts_error_count(af), 0);
	accounts_free(&af);
}

/* ---- bad rows ----------------------------------------------------------------------------------- */

struct bad_row_case {
	const char *what;
	const char *header;
	const char *bad; /* the row between GOOD_A (line 2) and GOOD_B */
	unsigned line;
	const char *field; /* NULL: the row as a whole */
	const char *message_has;
	size_t rows; /* good rows that survive */
};

static void each_bad_row_gives_one_error_with_its_line_and_field(void **state)
{
	static const struct bad_row_case cases[] = {
	    {"missing host1", HDR, ",carol,pw,imap.b.example,carol,pw2\n", 3, "host1",
	     "accounts.csv:3: field host1: no value; fill it in or remove the row", 2},
	    {"missing user2", HDR, "imap.a.example,carol,pw,imap.b.example,,pw2\n", 3, "user2", "no value",
	     2},
	    {"port out of range", "host1,user1,password1,host2,user2,password2,port2\n",
	     "imap.a.example,carol,pw,imap.b.example,carol,pw2,99999\n", 3, "port2",
	     "accounts.csv:3: field port2: \"99999\" is not a port (1-65535); fix the row or remove it", 2},
	    {"port not a number", "host1,user1,password1,host2,user2,password2,port1\n",
	     "imap.a.example,carol,pw,imap.b.example,carol,pw2,imap\n", 3, "port1", "\"imap\" is not a port",
	     2},
	    {"port zero", "host1,user1,password1,host2,user2,password2,port1\n",
	     "imap.a.example,carol,pw,imap.b.example,carol,pw2,0\n", 3, "port1", "\"0\" is not a port", 2},
	    {"unknown tls mode", "host1,user1,password1,host2,user2,password2,tls1\n",
	     "imap.a.example,carol,pw,imap.b.example,carol,pw2,ssl3\n", 3, "tls1",
	     "\"ssl3\" is not a TLS mode (ssl, tls or plain)", 2},
	    {"password and passfile", "host1,user1,password1,host2,user2,password2,passfile1\n",
	     "imap.a.example,carol,pw,imap.b.example,carol,pw2,/etc/pw\n", 3, "passfile1",
	     "both password1 and passfile1 are set; keep only one", 2},
	    {"neither password nor passfile", "host1,user1,password1,host2,user2,password2,passfile1\n",
	     "imap.a.example,carol,,imap.b.example,carol,pw2,\n", 3, "password1",
	     "no password1, passfile1, passcmd1, token1", 2},
	    {"duplicate pair", HDR, "IMAP.A.example, alice ,other,imap.b.example,alice,other2\n", 3, NULL,
	     "accounts.csv:3: duplicate pair, same as line 2 (imap.a.example:993/alice -> "
	     "imap.b.example:993/alice); remove one of the rows",
	     2},
	    {"unterminated quote", HDR, "imap.a.example,carol,\"pw,imap.b.example,carol,pw2\n", 3,
	     "password1", "never closed", 2},
	    {"stray quote inside a field", HDR, "imap.a.example,carol,p\"w,imap.b.example,carol,pw2\n", 3,
	     "password1", "stray quote", 2},
	    {"text after a closing quote", HDR, "imap.a.example,\"carol\"x,pw,imap.b.example,carol,pw2\n", 3,
	     "user1", "stray quote", 2},
	    {"too many fields", HDR, "imap.a.example,carol,p,w,imap.b.example,carol,pw2\n", 3, NULL,
	     "the row has 7 fields but the header has 6 columns", 2},
	    {"host with a port", HDR, "imap.a.example:993,carol,pw,imap.b.example,carol,pw2\n", 3, "host1",
	     "holds a port; put the port in the port1 column", 2},
	    {"user in the host column", HDR, "carol@a.example,carol,pw,imap.b.example,carol,pw2\n", 3,
	     "host1", "looks like a user name", 2},
	    {"control character in user", HDR, "imap.a.example,\"car\nol\",pw,imap.b.example,carol,pw2\n", 3,
	     "user1", "control character", 2},
	    {"Latin-1 in user", HDR, "imap.a.example,m\xFCller,pw,imap.b.example,carol,pw2\n", 3, "user1",
	     "accounts.csv:3: field user1: \"m\\xFCller\" is not valid UTF-8 (byte 0xFC at offset 1); save the file "
	     "as UTF-8",
	     2},
	    {"Latin-1 in host", HDR, "imap.a.example,carol,pw,imap.b.exampl\xE9,carol,pw2\n", 3, "host2",
	     "is not valid UTF-8", 2},
	    {"bad insecure flag", "host1,user1,password1,host2,user2,password2,insecure2\n",
	     "imap.a.example,carol,pw,imap.b.example,carol,pw2,maybe\n", 3, "insecure2", "is not yes or no",
	     2},
	    {"unterminated quote in options", "host1,user1,password1,host2,user2,password2,options\n",
	     "imap.a.example,carol,pw,imap.b.example,carol,pw2,--folder 'Sent\n", 3, "options",
	     "unterminated ' quote", 2},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_row_case *c = &cases[i];
		struct fleet_buf text = FLEET_BUF_INIT(4096);
		const char *tail_a = strchr(GOOD_A, '\n') + 1, *tail_b = strchr(GOOD_B, '\n') + 1;
		size_t hdr_cols = 1;
		struct fleet_err err;
		struct accounts_file *af;
		const struct accounts_error *e;

		/* Good rows padded with empty fields up to the header's width. */
		for (const char *q = c->header; *q; q++)
			hdr_cols += *q == ',';
		fleet_buf_add_str(&text, c->header);
		fleet_buf_add(&text, GOOD_A, (size_t)(tail_a - GOOD_A - 1));
		for (size_t k = 6; k < hdr_cols; k++)
			fleet_buf_add_str(&text, ",");
		fleet_buf_add_str(&text, "\n");
		fleet_buf_add_str(&text, c->bad);
		fleet_buf_add(&text, GOOD_B, (size_t)(tail_b - GOOD_B - 1));
		for (size_t k = 6; k < hdr_cols; k++)
			fleet_buf_add_str(&text, ",");
		fleet_buf_add_str(&text, "\n");

		af = parse(fleet_buf_cstr(&text), 0, &err);
		if (!af)
			fail_msg("%s: fatal: %s", c->what, err.message);
		if (accounts_error_count(af) != 1)
			fail_msg("%s: %zu errors, first: %s", c->what, accounts_error_count(af),
				 accounts_error_count(af) ? accounts_error_at(af, 0)->message : "-");
		e = accounts_error_at(af, 0);
		if (e->line != c->line)
			fail_msg("%s: line %u, expected %u (%s)", c->what, e->line, c->line, e->message);
		if (c->field)
			assert_non_null(e->field);
		if (c->field && strcmp(e->field, c->field) != 0)
			fail_msg("%s: field %s, expected %s", c->what, e->field, c->field);
		if (!c->field && e->field)
			fail_msg("%s: field %s, expected none", c->what, e->field);
		if (!strstr(e->message, c->message_has))
			fail_msg("%s: message \"%s\" lacks \"%s\"", c->what, e->message, c->message_has);
		if (accounts_count(af) != c->rows)
			fail_msg("%s: %zu rows survive, expected %zu", c->what, accounts_count(af), c->rows);
		assert_string_equal(accounts_row(af, 0)->side[0].user, "alice");
		assert_string_equal(accounts_row(af, accounts_count(af) - 1)->side[0].user, "bob");
		/* The good row after it starts right after the bad row's last line. */
		{
			unsigned after = c->line;

			for (const char *q = c->bad; *q; q++)
				after += *q == '\n';
			assert_int_equal(accounts_row(af, accounts_count(af) - 1)->line, after);
		}
		accounts_free(&af);
		fleet_buf_release(&text);
		fleet_log_clear_secrets(); /* "p" above would redact every p in later messages */
	}
}

/* The one row of a parsed file. */
static const struct account_row *the_only_row(const struct accounts_file *af)
{
	assert_non_null(af);
	assert_int_equal(accounts_count(af), 1);
	return accounts_row(af, 0);
}

/* The one error of a parsed file that kept `rows` rows: on line `line`. */
static const struct accounts_error *the_only_error(const struct accounts_file *af, size_t rows, unsigned line)
{
	const struct accounts_error *e;

	assert_non_null(af);
	assert_int_equal(accounts_count(af), rows);
	assert_int_equal(accounts_error_count(af), 1);
	e = accounts_error_at(af, 0);
	assert_int_equal(e->line, line);
	return e;
}

static void duplicate_pair_names_both_lines(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = parse(HDR GOOD_A GOOD_B "\n" GOOD_A, 0, &err);
	const struct accounts_error *e;

	e = the_only_error(af, 2, 5);
	assert_int_equal(e->other_line, 2);
	assert_non_null(strstr(e->message, "accounts.csv:5: duplicate pair, same as line 2"));
	accounts_free(&af);
}

static void a_row_with_two_problems_reports_both(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = parse("host1,user1,password1,port1,host2,user2,password2,tls2\n"
					 "imap.a.example,carol,pw,70000,imap.b.example,carol,pw2,starttls\n",
					 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_count(af), 0);
	assert_int_equal(accounts_error_count(af), 2);
	assert_string_equal(accounts_error_at(af, 0)->field, "port1");
	assert_string_equal(accounts_error_at(af, 1)->field, "tls2");
	accounts_free(&af);
}

static void unterminated_quote_reports_the_line_where_the_quote_opened(void **state)
{
	/* The row starts on line 3; its password field closes on line 4, then the options field opens
	 * a quote on line 4 that never closes. Parsing resumes on line 5. */
	struct fleet_err err;
	struct accounts_file *af = parse("host1,user1,password1,host2,user2,password2,options\n" ROW_A ",\n"
					 "imap.a.example,carol,\"two\n"
					 "lines\",imap.b.example,carol,pw2,\"--folder x\n" ROW_B ",\n",
					 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_error_count(af), 1);
	assert_int_equal(accounts_error_at(af, 0)->line, 4);
	assert_string_equal(accounts_error_at(af, 0)->field, "options");
	assert_int_equal(accounts_count(af), 2);
	assert_int_equal(accounts_row(af, 1)->line, 5);
	accounts_free(&af);
}

static void blank_and_empty_rows_are_skipped_silently(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = parse(HDR "\n" GOOD_A "  \t\n,,,,,\n\n" GOOD_B "\n\n\n", 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_error_count(af), 0);
	assert_int_equal(accounts_count(af), 2);
	assert_int_equal(accounts_row(af, 0)->line, 3);
	assert_int_equal(accounts_row(af, 1)->line, 7);
	accounts_free(&af);
}

/* ---- strict mode -------------------------------------------------------------------------------- */

static void strict_mode_fails_on_any_bad_row_and_logs_every_error(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = NULL;
	char *log = logged_while(&af, NULL,
				 "host1,user1,password1,host2,user2,password2,port1\n" ROW_A ",\n"
				 "imap.a.example,carol,pw,imap.b.example,carol,pw2,99999\n" ROW_B ",\n"
				 ",dave,pw,imap.b.example,dave,pw2,\n",
				 ACCOUNTS_STRICT, &err);

	assert_null(af);
	assert_non_null(strstr(err.message, "2 bad rows, nothing imported (strict mode)"));
	assert_non_null(strstr(err.detail, "accounts.csv:3: field port1"));
	assert_non_null(strstr(log, "accounts.csv:3: field port1: \"99999\" is not a port"));
	assert_non_null(strstr(log, "accounts.csv:5: field host1: no value"));
	xfree(&log);

	/* Without bad rows strict mode imports normally. */
	af = parse(HDR GOOD_A GOOD_B, ACCOUNTS_STRICT, &err);
	assert_non_null(af);
	assert_int_equal(accounts_count(af), 2);
	accounts_free(&af);
}

/* ---- encodings, line ends, quoting -------------------------------------------------------------- */

static void utf8_bom_is_skipped(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = parse("\xEF\xBB\xBF" HDR GOOD_A, 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_count(af), 1);
	assert_int_equal(accounts_row(af, 0)->line, 2);
	assert_string_equal(accounts_row(af, 0)->side[0].host, "imap.a.example");
	accounts_free(&af);

	af = parse("\xEF\xBB\xBF"
		   "imap.a.example;alice;pw;imap.b.example;alice;pw2\n",
		   0, &err);
	assert_non_null(af);
	assert_int_equal(accounts_format(af), ACCOUNTS_FORMAT_FILETXT);
	assert_string_equal(accounts_row(af, 0)->side[0].host, "imap.a.example");
	accounts_free(&af);
}

static void crlf_lf_and_cr_line_ends_give_the_same_rows_and_lines(void **state)
{
	static const char *const ends[] = {"\n", "\r\n", "\r"};

	for (size_t i = 0; i < 3; i++) {
		const char *nl = ends[i];
		char *text = xasprintf("host1,user1,password1,host2,user2,password2%s%s"
				       "imap.a.example,alice,\"multi%sline\",imap.b.example,alice,pw2%s"
				       "imap.a.example,bob,pwb,imap.b.example,bob,pwb2%s%s",
				       nl, nl, nl, nl, nl, nl);
		struct fleet_err err;
		struct accounts_file *af = parse(text, 0, &err);
		char *expect = xasprintf("multi%sline", nl);

		assert_non_null(af);
		assert_int_equal(accounts_error_count(af), 0);
		assert_int_equal(accounts_count(af), 2);
		assert_int_equal(accounts_row(af, 0)->line, 3);
		assert_string_equal(accounts_row(af, 0)->side[0].password, expect);
		assert_string_equal(accounts_row(af, 1)->side[1].password, "pwb2");
		assert_int_equal(accounts_row(af, 1)->line, 5);
		accounts_free(&af);
		xfree(&text);
		xfree(&expect);
	}
}

static void quoted_passwords_keep_commas_semicolons_quotes_spaces_and_newlines(void **state)
{
	struct fleet_err err;
	struct accounts_file *af =
	    parse(HDR "imap.a.example,alice,\"a,b;c\"\"d\ne \",imap.b.example,alice,\" x \"\n"
		      "\"imap.a.example\" , \"bob\" ,\"\"\"\",imap.b.example,bob,;\n",
		  0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_error_count(af), 0);
	assert_int_equal(accounts_count(af), 2);
	assert_string_equal(accounts_row(af, 0)->side[0].password, "a,b;c\"d\ne ");
	assert_string_equal(accounts_row(af, 0)->side[1].password, " x ");
	assert_int_equal(accounts_row(af, 1)->line, 4);
	assert_string_equal(accounts_row(af, 1)->side[0].host, "imap.a.example");
	assert_string_equal(accounts_row(af, 1)->side[0].user, "bob");
	assert_string_equal(accounts_row(af, 1)->side[0].password, "\"");
	assert_string_equal(accounts_row(af, 1)->side[1].password, ";");
	accounts_free(&af);
}

/* ---- file.txt ----------------------------------------------------------------------------------- */

static void side_options_in_the_extra_fields_set_port_tls_and_key(void **state)
{
	const char *text = "a.example;alice;pw1;b.example;alice;pw2;--port1 143 --tls1 --port2 10993 --folder INBOX\n";
	struct fleet_err err;
	struct accounts_file *af = parse(text, 0, &err);
	const struct account_row *r;

	r = the_only_row(af);
	assert_int_equal(r->side[0].port, 143);
	assert_int_equal(r->side[0].tls, ACCOUNTS_TLS_STARTTLS);
	assert_int_equal(r->side[1].port, 10993);
	assert_int_equal(r->side[1].tls, ACCOUNTS_TLS_SSL);
	assert_int_equal(r->argc, 2); /* only the account options stay */
	assert_string_equal(r->argv[0], "--folder");
	assert_string_equal(r->argv[1], "INBOX");
	assert_non_null(strstr(accounts_row_key(r), "143"));
	assert_non_null(strstr(accounts_row_key(r), "10993"));
	accounts_free(&af);
}

static void a_side_port_option_without_a_number_is_a_bad_row(void **state)
{
	const char *text = "a.example;alice;pw1;b.example;alice;pw2;--port1 imap\n";
	struct fleet_err err;
	struct accounts_file *af = parse(text, 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_count(af), 0);
	assert_int_equal(accounts_error_count(af), 1);
	assert_non_null(strstr(accounts_error_at(af, 0)->message, "--port1"));
	accounts_free(&af);
}

static void filetxt_skips_comments_and_blank_lines_and_tolerates_crlf(void **state)
{
	struct fleet_err err;
	const char *text =
	    "# imapsync file.txt\r\n"
	    "\r\n"
	    "imap.a.example;alice;pa,ss;imap.b.example;alice@b;pw2;\r\n"
	    "  # indented comment\r\n"
	    "imap.a.example;bob;pwb;imap.b.example;bob@b;pwb2\r\n"
	    "imap.a.example;carol;pwc;imap.b.example;carol@b;pwc2;--folder 'Sent Items';--dry;\r\n"
	    "imap.a.example;dave;pwd;imap.b.example\r\n"
	    "\r\n";
	struct accounts_file *af = parse(text, 0, &err);
	const struct account_row *r;

	assert_non_null(af);
	assert_int_equal(accounts_format(af), ACCOUNTS_FORMAT_FILETXT);
	assert_int_equal(accounts_count(af), 3);
	r = accounts_row(af, 0);
	assert_int_equal(r->line, 3);
	assert_string_equal(r->side[0].password, "pa,ss");
	assert_string_equal(r->side[1].user, "alice@b");
	assert_int_equal(r->side[0].port, 993);
	assert_int_equal(r->side[0].tls, ACCOUNTS_TLS_SSL);
	assert_int_equal(r->argc, 0);
	r = accounts_row(af, 1);
	assert_int_equal(r->line, 5);
	assert_string_equal(r->side[1].password, "pwb2");
	r = accounts_row(af, 2);
	assert_int_equal(r->line, 6);
	assert_int_equal(r->argc, 3);
	assert_string_equal(r->argv[0], "--folder");
	assert_string_equal(r->argv[1], "Sent Items");
	assert_string_equal(r->argv[2], "--dry");
	assert_int_equal(accounts_error_count(af), 1);
	assert_int_equal(accounts_error_at(af, 0)->line, 7);
	assert_null(accounts_error_at(af, 0)->field);
	assert_non_null(strstr(accounts_error_at(af, 0)->message, "the line has 4 fields"));
	accounts_free(&af);
}

static void filetxt_detection_is_not_fooled_by_commas_or_column_names_in_passwords(void **state)
{
	static const char *const texts[] = {
	    "imap.a.example;alice;x,host1,y;imap.b.example;alice;pw2;\n",
	    "imap.a.example;alice;host1,user1;imap.b.example;alice;pw2\n",
	    "# host1,user1,password1\nimap.a.example;alice;a,b,c;imap.b.example;alice;pw2\n",
	};

	for (size_t i = 0; i < 3; i++) {
		struct fleet_err err;
		struct accounts_file *af = parse(texts[i], 0, &err);

		assert_non_null(af);
		assert_int_equal(accounts_format(af), ACCOUNTS_FORMAT_FILETXT);
		assert_int_equal(accounts_count(af), 1);
		assert_int_equal(accounts_error_count(af), 0);
		assert_string_equal(accounts_row(af, 0)->side[0].user, "alice");
		accounts_free(&af);
	}
}

static void csv_whose_values_hold_semicolons_is_still_csv(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = parse("# exported 2024-05-01; 3 accounts\n" HDR
					 "imap.a.example,alice,pw;1,imap.b.example,alice,pw;2\n",
					 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_format(af), ACCOUNTS_FORMAT_CSV);
	assert_int_equal(accounts_count(af), 1);
	assert_int_equal(accounts_row(af, 0)->line, 3);
	assert_string_equal(accounts_row(af, 0)->side[0].password, "pw;1");
	accounts_free(&af);
}

static void semicolon_separated_csv_is_accepted_like_comma_separated(void **state)
{
	struct fleet_err err;
	struct accounts_file *af =
	    parse("host1;user1;password1;host2;user2;password2\n"
		  "imap.a.example;alice;\"pw;1,x\";imap.b.example;alice;pw2\n"
		  "imap.a.example;;pwb;imap.b.example;bob;pwb2\n",
		  0, &err);

	(void)state;
	assert_non_null(af);
	assert_int_equal(accounts_format(af), ACCOUNTS_FORMAT_CSV);
	assert_int_equal(accounts_count(af), 1);
	assert_string_equal(accounts_row(af, 0)->side[0].user, "alice");
	assert_string_equal(accounts_row(af, 0)->side[0].password, "pw;1,x");
	assert_string_equal(accounts_row(af, 0)->side[1].host, "imap.b.example");
	/* A bad row is reported with its line and field as in any CSV. */
	assert_int_equal(accounts_error_count(af), 1);
	assert_int_equal(accounts_error_at(af, 0)->line, 3);
	assert_string_equal(accounts_error_at(af, 0)->field, "user1");
	accounts_free(&af);
}

/* ---- defaults and options ----------------------------------------------------------------------- */

struct tls_case {
	const char *port, *tls;
	unsigned want_port;
	enum accounts_tls want_tls;
};

static void tls_mode_and_port_default_from_each_other(void **state)
{
	static const struct tls_case cases[] = {
	    {"", "", 993, ACCOUNTS_TLS_SSL},
	    {"993", "", 993, ACCOUNTS_TLS_SSL},
	    {"143", "", 143, ACCOUNTS_TLS_STARTTLS},
	    {"10993", "", 10993, ACCOUNTS_TLS_SSL},
	    {"", "ssl", 993, ACCOUNTS_TLS_SSL},
	    {"", "TLS", 143, ACCOUNTS_TLS_STARTTLS},
	    {"", "plain", 143, ACCOUNTS_TLS_PLAIN},
	    {"143", "ssl", 143, ACCOUNTS_TLS_SSL},
	    {"1143", "tls", 1143, ACCOUNTS_TLS_STARTTLS},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = xasprintf("host1,user1,password1,host2,user2,password2,port2,tls2\n"
				       "imap.a.example,alice,pw,imap.b.example,alice,pw2,%s,%s\n",
				       cases[i].port, cases[i].tls);
		struct fleet_err err;
		struct accounts_file *af = parse(text, 0, &err);
		const struct account_row *r;

		r = the_only_row(af);
		if (r->side[1].port != cases[i].want_port || r->side[1].tls != cases[i].want_tls)
			fail_msg("port \"%s\" tls \"%s\": got %u/%s", cases[i].port, cases[i].tls,
				 r->side[1].port, accounts_tls_name(r->side[1].tls));
		assert_int_equal(r->side[0].port, 993);
		assert_int_equal(r->side[0].tls, ACCOUNTS_TLS_SSL);
		accounts_free(&af);
		xfree(&text);
	}
}

struct args_case {
	const char *in;
	const char *out[5]; /* NULL-terminated; out[0] == "!" means an error is expected */
};

static void options_split_into_words_like_a_shell(void **state)
{
	static const struct args_case cases[] = {
	    {"", {NULL}},
	    {"   ", {NULL}},
	    {"--folder INBOX --exclude ^Junk", {"--folder", "INBOX", "--exclude", "^Junk", NULL}},
	    {"--folder 'Sent Items'", {"--folder", "Sent Items", NULL}},
	    {"--folder \"Sent \\\"old\\\" \\$x\"", {"--folder", "Sent \"old\" $x", NULL}},
	    {"--folder Sent\\ Items", {"--folder", "Sent Items", NULL}},
	    {"a''b \"\" 'c\"d'", {"ab", "", "c\"d", NULL}},
	    {"\t--dry\n--justlogin ", {"--dry", "--justlogin", NULL}},
	    {"\"a\\nb\"", {"a\\nb", NULL}},
	    {"--folder 'Sent", {"!"}},
	    {"--folder \"Sent", {"!"}},
	    {"--folder Sent\\", {"!"}},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct args_case *c = &cases[i];
		char why[128] = "";
		char **argv = NULL;
		int argc = -1, rc = accounts_split_args(c->in, &argc, &argv, why, sizeof(why));
		int n = 0;

		if (c->out[0] && strcmp(c->out[0], "!") == 0) {
			if (rc != -1)
				fail_msg("\"%s\": expected an error", c->in);
			assert_null(argv);
			assert_true(strlen(why) > 0);
			continue;
		}
		if (rc != 0)
			fail_msg("\"%s\": %s", c->in, why);
		while (c->out[n])
			n++;
		assert_int_equal(argc, n);
		for (int k = 0; k < n; k++)
			assert_string_equal(argv[k], c->out[k]);
		assert_null(argv[argc]);
		accounts_free_args(&argv);
		assert_null(argv);
	}
}

static void row_keys_identify_pairs_and_escape_separators(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = parse("host1,port1,user1,password1,host2,user2,password2,tls2\n"
					 "IMAP.A.Example,143,Alice,pw,imap.b.example,alice,pw2,tls\n"
					 "imap.a.example,,a/b:c -> d%,pw,imap.b.example,x,pw2,\n",
					 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_count(af), 2);
	assert_string_equal(accounts_row_key(accounts_row(af, 0)),
			    "imap.a.example:143/Alice -> imap.b.example:143/alice");
	assert_string_equal(accounts_row_key(accounts_row(af, 1)),
			    "imap.a.example:993/a%2Fb%3Ac%20-%3E%20d%25 -> imap.b.example:993/x");
	accounts_free(&af);
}

/* ---- passfiles, secrets, permissions ----------------------------------------------------------- */

static void good_sample_imports_with_passfiles_resolved_next_to_it(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = accounts_load(ACCOUNTS_DIR "/good.csv", 0, &err);
	struct account_secrets sec;
	const struct account_row *r;
	char *want;

	if (!af)
		fail_msg("%s", err.message);
	if (accounts_error_count(af))
		fail_msg("%s", accounts_error_at(af, 0)->message);
	assert_int_equal(accounts_count(af), 3);

	r = accounts_row(af, 0);
	assert_null(r->side[0].password);
	want = realpath(ACCOUNTS_DIR "/secrets/alice.pass", NULL);
	assert_non_null(want);
	assert_string_equal(r->side[0].passfile, want);
	free(want);
	assert_string_equal(r->side[1].password, "pa,ss;w\"rd");
	assert_int_equal(r->argc, 4);
	assert_string_equal(r->argv[3], "^Junk");
	assert_int_equal(accounts_row_load_passwords(r, &sec, &err), 0);
	assert_string_equal(sec.password[0], "alice-old-secret");
	assert_string_equal(sec.password[1], "pa,ss;w\"rd");
	accounts_secrets_release(&sec);
	assert_null(sec.password[0]);

	r = accounts_row(af, 1);
	assert_int_equal(r->line, 3);
	assert_int_equal(r->side[0].port, 143);
	assert_int_equal(r->side[0].tls, ACCOUNTS_TLS_STARTTLS);
	assert_string_equal(r->side[1].password, "two\nlines");
	assert_int_equal(r->argc, 4);
	assert_string_equal(r->argv[3], "Sent Items");

	r = accounts_row(af, 2);
	assert_int_equal(r->line, 5);
	assert_int_equal(r->side[0].tls, ACCOUNTS_TLS_PLAIN);
	assert_int_equal(r->side[0].port, 143);
	assert_string_equal(
	    accounts_row_key(r),
	    "imap.old.example:143/carol@old.example -> imap.new.example:993/carol@new.example");
	assert_int_equal(accounts_row_load_passwords(r, &sec, &err), 0);
	assert_string_equal(sec.password[0], "carol-new-secret"); /* CRLF stripped */
	assert_string_equal(sec.password[1], "bob-old-secret");
	accounts_secrets_release(&sec);
	accounts_free(&af);
	fleet_log_clear_secrets();
}

static void bad_sample_reports_each_bad_row_and_keeps_the_good_ones(void **state)
{
	static const struct {
		unsigned line, other;
		const char *field;
	} want[] = {{3, 0, "user1"}, {4, 0, "port2"}, {5, 0, "tls1"}, {6, 2, NULL}, {8, 0, "password1"}};
	struct fleet_err err;
	struct accounts_file *af = accounts_load(ACCOUNTS_DIR "/bad.csv", 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_count(af), 3);
	assert_int_equal(accounts_row(af, 0)->line, 2);
	assert_int_equal(accounts_row(af, 1)->line, 7);
	assert_int_equal(accounts_row(af, 2)->line, 9);
	assert_int_equal(accounts_row(af, 2)->side[0].tls, ACCOUNTS_TLS_STARTTLS);
	assert_int_equal(accounts_error_count(af), 5);
	for (size_t i = 0; i < 5; i++) {
		const struct accounts_error *e = accounts_error_at(af, i);

		assert_int_equal(e->line, want[i].line);
		assert_int_equal(e->other_line, want[i].other);
		if (want[i].field)
			assert_string_equal(e->field, want[i].field);
		else
			assert_null(e->field);
		assert_non_null(strstr(e->message, ACCOUNTS_DIR "/bad.csv:"));
	}
	accounts_free(&af);
	fleet_log_clear_secrets();
}

static void a_filetxt_host_with_a_port_gets_advice_in_filetxt_terms(void **state)
{
	static const char text[] = "# imapsync file.txt\n"
				   "imap.a.example:143;carol;pw;imap.b.example;carol;pw2;\n"
				   "imap.a.example;dave;pw;imap.b.example:10993;dave;pw2;--tls1\n"
				   "imap.a.example;erin;pw;imap.b.example;erin;pw2;--port1 143\n";
	struct fleet_err err;
	struct accounts_file *af = accounts_parse_buffer(text, sizeof(text) - 1, "file.txt", NULL, ACCOUNTS_NO_FS_CHECKS, &err);

	assert_non_null(af);
	assert_int_equal(accounts_format(af), ACCOUNTS_FORMAT_FILETXT);
	assert_int_equal(accounts_count(af), 1); /* the good row still imports */
	assert_int_equal(accounts_error_count(af), 2);
	assert_non_null(strstr(accounts_error_at(af, 0)->message, "file.txt:2:"));
	assert_non_null(strstr(accounts_error_at(af, 0)->message, "put --port1 143 in the row's extra fields"));
	assert_null(strstr(accounts_error_at(af, 0)->message, "column"));
	assert_non_null(strstr(accounts_error_at(af, 1)->message, "put --port2 10993 in the row's extra fields"));
	accounts_free(&af);
}

static void filetxt_sample_imports(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = accounts_load(ACCOUNTS_DIR "/file.txt", 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_format(af), ACCOUNTS_FORMAT_FILETXT);
	assert_int_equal(accounts_error_count(af), 0);
	assert_int_equal(accounts_count(af), 3);
	assert_int_equal(accounts_row(af, 0)->line, 4);
	assert_string_equal(accounts_row(af, 0)->side[0].password, "pa,ss");
	assert_int_equal(accounts_row(af, 1)->argc, 4);
	assert_string_equal(accounts_row(af, 1)->argv[3], "1000");
	assert_int_equal(accounts_row(af, 2)->line, 7);
	assert_string_equal(accounts_row(af, 2)->side[1].password, "carolpw2");
	accounts_free(&af);
	fleet_log_clear_secrets();
}

static void unreadable_passfile_is_a_bad_row(void **state)
{
	const char *text = "host1,user1,passfile1,host2,user2,password2\n"
			   "imap.a.example,alice,secrets/alice.pass,imap.b.example,alice,pw2\n"
			   "imap.a.example,bob,secrets/missing.pass,imap.b.example,bob,pw2\n"
			   "imap.a.example,carol,secrets,imap.b.example,carol,pw2\n";
	struct fleet_err err;
	struct accounts_file *af =
	    accounts_parse_buffer(text, strlen(text), "accounts.csv", ACCOUNTS_DIR, 0, &err);

	assert_non_null(af);
	assert_int_equal(accounts_count(af), 1);
	assert_string_equal(accounts_row(af, 0)->side[0].passfile, ACCOUNTS_DIR "/secrets/alice.pass");
	assert_int_equal(accounts_error_count(af), 2);
	assert_int_equal(accounts_error_at(af, 0)->line, 3);
	assert_string_equal(accounts_error_at(af, 0)->field, "passfile1");
	assert_non_null(
	    strstr(accounts_error_at(af, 0)->message, "missing.pass\": No such file or directory"));
	assert_non_null(strstr(accounts_error_at(af, 1)->message, "is not a regular file"));
	accounts_free(&af);
	fleet_log_clear_secrets();
}

static void loading_passwords_reports_a_passfile_that_vanished(void **state)
{
	const char *text = "host1,user1,passfile1,host2,user2,passfile2\n"
			   "imap.a.example,alice,secrets/alice.pass,imap.b.example,alice,gone.pass\n";
	struct fleet_err err;
	struct account_secrets sec;
	struct accounts_file *af = accounts_parse_buffer(text, strlen(text), "accounts.csv", ACCOUNTS_DIR,
							 ACCOUNTS_NO_FS_CHECKS, &err);

	assert_non_null(af);
	assert_int_equal(accounts_count(af), 1);
	assert_int_equal(accounts_row_load_passwords(accounts_row(af, 0), &sec, &err), -1);
	assert_null(sec.password[0]);
	assert_null(sec.password[1]);
	assert_int_equal(err.cls, FLEET_ERR_PERMANENT);
	assert_int_equal(err.scope, FLEET_SCOPE_ACCOUNT);
	assert_non_null(strstr(err.message, "passfile2 of alice (line 2)"));
	assert_non_null(strstr(err.message, "gone.pass"));
	accounts_free(&af);
	fleet_log_clear_secrets();
}

static void inline_passwords_are_redacted_from_logs_and_errors(void **state)
{
	struct fleet_err err;
	char line[128];
	struct accounts_file *af =
	    parse(HDR "imap.a.example,alice,Tr0ub4dor&3,imap.b.example,alice,\"c,h;x\"\n", 0, &err);

	assert_non_null(af);
	snprintf(line, sizeof(line), "login alice Tr0ub4dor&3 then c,h;x");
	fleet_log_scrub(line, sizeof(line));
	assert_string_equal(line, "login alice <redacted> then <redacted>");
	accounts_free(&af);
	fleet_log_clear_secrets();
}

static void inline_passwords_in_a_group_readable_file_are_warned_about(void **state)
{
	char path[] = "/tmp/test_accounts_XXXXXX";
	int fd = mkstemp(path);
	struct fleet_err err;
	struct accounts_file *af = NULL;
	char *log;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, HDR GOOD_A, strlen(HDR GOOD_A)), (ssize_t)strlen(HDR GOOD_A));
	close(fd);

	chmod(path, 0644);
	log = logged_while(&af, path, NULL, 0, &err);
	assert_non_null(af);
	assert_non_null(strstr(log, "holds inline passwords and is readable by group or others (mode 0644)"));
	assert_null(strstr(log, "pwa"));
	accounts_free(&af);
	xfree(&log);

	chmod(path, 0600);
	log = logged_while(&af, path, NULL, 0, &err);
	assert_non_null(af);
	assert_null(strstr(log, "readable by group"));
	accounts_free(&af);
	xfree(&log);
	unlink(path);
	fleet_log_clear_secrets();
}

static void missing_file_is_an_error_that_names_it(void **state)
{
	struct fleet_err err;
	struct accounts_file *af = accounts_load(ACCOUNTS_DIR "/no-such.csv", 0, &err);

	assert_null(af);
	assert_non_null(strstr(err.message, "could not open"));
	assert_non_null(strstr(err.message, "no-such.csv"));
	af = accounts_load(ACCOUNTS_DIR, 0, &err);
	assert_null(af);
	assert_non_null(strstr(err.message, "is not a regular file"));
}

/* ---- scale -------------------------------------------------------------------------------------- */

static uint64_t import_rows(int n, int inline_passwords)
{
	struct fleet_buf text = FLEET_BUF_INIT(16 << 20);
	struct fleet_err err;
	struct accounts_file *af;
	uint64_t t0, t1;

	fleet_buf_add_str(
	    &text, inline_passwords ? "host1,port1,user1,password1,tls1,host2,user2,password2,options\r\n"
				    : "host1,port1,user1,passfile1,tls1,host2,user2,passfile2,options\r\n");
	for (int i = 0; i < n; i++)
		fleet_buf_addf(
		    &text,
		    "imap%d.old.example,993,user%05d@old.example,\"p,w%d\"\"x\",ssl,imap.new.example,"
		    "user%05d@new.example,Pw-%d-new,--folder 'INBOX' --maxsize 25000000\r\n",
		    i % 7, i, i, i, i);
	t0 = fleet_now_ms();
	af = parse(fleet_buf_cstr(&text), ACCOUNTS_STRICT, &err);
	t1 = fleet_now_ms();
	if (!af)
		fail_msg("%s / %s", err.message, err.detail);
	assert_int_equal(accounts_count(af), (size_t)n);
	assert_int_equal(accounts_error_count(af), 0);
	assert_int_equal(accounts_row(af, (size_t)n - 1)->line, (unsigned)n + 1);
	if (inline_passwords)
		assert_string_equal(accounts_row(af, 9999)->side[0].password, "p,w9999\"x");
	else
		assert_string_equal(accounts_row(af, 9999)->side[0].passfile, "p,w9999\"x");
	assert_int_equal(accounts_row(af, (size_t)n - 1)->argc, 4);
	accounts_free(&af);
	fleet_buf_release(&text);
	return t1 - t0;
}

static void ten_thousand_rows_import_correctly(void **state)
{
	uint64_t ms = import_rows(10000, 1);

	printf("# 10000 rows in %llu ms\n", (unsigned long long)ms);
	fleet_log_clear_secrets();
	ms = import_rows(10000, 0);
	printf("# 10000 rows with passfiles instead of inline passwords in %llu ms\n",
	       (unsigned long long)ms);
}

static int forget_secrets(void **state)
{
	fleet_log_clear_secrets();
	return 0;
}

/* accounts_load of PATH; a hang (10 s) is a failure, not a stuck test. */
static struct accounts_file *load_or_fail_in_10s(const char *path, struct fleet_err *err)
{
	struct accounts_file *af;

	alarm(10);
	af = accounts_load(path, 0, err);
	alarm(0);
	return af;
}

/* Makes the FIFO DIR/NAME; its path in path. */
static void fifo_in(const char *dir, const char *name, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s", dir, name);
	assert_int_equal(mkfifo(path, 0600), 0);
}

/* A FIFO named as the accounts file used to block run forever in open(), waiting for a writer. */
static void a_fifo_as_accounts_file_is_refused_at_once(void **state)
{
	char dir[] = "/tmp/imapfleet-fifo-XXXXXX", path[64];
	struct fleet_err err;
	struct accounts_file *af;

	assert_non_null(mkdtemp(dir));
	fifo_in(dir, "accounts.csv", path, sizeof(path));
	af = load_or_fail_in_10s(path, &err);
	assert_null(af);
	assert_string_equal(err.code, "ACCOUNTS_FILE");
	assert_non_null(strstr(err.message, "is not a regular file"));
	unlink(path);
	rmdir(dir);
}

/* file.txt has no quoting: "pa;ss" as password1 used to become password1 "pa", host2 "ss", and the
 * rest shifted, with half of the password printed in an error and stored. */
static void a_semicolon_inside_a_filetxt_password_is_named_by_line_and_never_shown(void **state)
{
	static const char *const texts[] = {
	    "imap.a.example;alice;pwa;imap.b.example;alice;pwa2\n"
	    "imap.a.example;bob;Se;cr3tHalf;imap.b.example;bob;pwb2\n"
	    "imap.a.example;carol;pwc;imap.b.example;carol;pwc2;--folder INBOX\n",
	    "imap.a.example;alice;pwa;imap.b.example;alice;pwa2\n"
	    "imap.a.example;bob;pwb;imap.b.example;bob;Se;cr3tHalf\n"
	    "imap.a.example;carol;pwc;imap.b.example;carol;pwc2;--folder INBOX\n",
	};

	for (size_t i = 0; i < 2; i++) {
		struct fleet_err err;
		struct accounts_file *af;
		char *log = logged_while(&af, NULL, texts[i], 0, &err);
		const struct accounts_error *e;

		e = the_only_error(af, 2, 2);
		assert_non_null(strstr(e->message, "a password probably contains ';'"));
		assert_null(strstr(e->message, "cr3t"));
		assert_null(strstr(e->message, "Se"));
		assert_null(strstr(log, "cr3t"));
		assert_string_equal(accounts_row(af, 1)->side[0].user, "carol");
		xfree(&log);
		accounts_free(&af);
	}
}

/* Writes TEXT to the file DIR/NAME. */
static void write_in(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* An accounts file from someone else must not send the state key (or any odd file) to a server. */
static void a_passfile_naming_the_key_file_or_a_fifo_is_a_bad_row(void **state)
{
	char dir[] = "/tmp/imapfleet-kf-XXXXXX", path[128];
	struct fleet_err err;
	struct accounts_file *af;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/.imapfleet", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	write_in(dir, ".imapfleet/key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
	fifo_in(dir, "fifo", path, sizeof(path));
	write_in(dir, "good", "pw\n");
	write_in(dir, "accounts.csv",
		 "host1,user1,passfile1,host2,user2,passfile2\n"
		 "a.example,alice,.imapfleet/key,b.example,alice,good\n"
		 "a.example,bob,good,b.example,bob,fifo\n"
		 "a.example,carol,good,b.example,carol,good\n");
	snprintf(path, sizeof(path), "%s/accounts.csv", dir);
	chmod(path, 0600);
	af = load_or_fail_in_10s(path, &err);
	assert_non_null(af);
	assert_int_equal(accounts_count(af), 1);
	assert_string_equal(accounts_row(af, 0)->side[0].user, "carol");
	assert_int_equal(accounts_error_count(af), 2);
	assert_int_equal(accounts_error_at(af, 0)->line, 2);
	assert_string_equal(accounts_error_at(af, 0)->field, "passfile1");
	assert_non_null(strstr(accounts_error_at(af, 0)->message, "state key file"));
	assert_int_equal(accounts_error_at(af, 1)->line, 3);
	assert_string_equal(accounts_error_at(af, 1)->field, "passfile2");
	assert_non_null(strstr(accounts_error_at(af, 1)->message, "not a regular file"));
	accounts_free(&af);
	unlink(path);
	assert_int_equal(unit_rm_rf(dir), 0);
}

/* The redaction table keeps a password only while someone holds it: released with the accounts
 * file and with the copies a running account took, it is wiped and forgotten (issue 13, item 8). */
static void passwords_leave_the_redaction_table_when_released(void **state)
{
	struct fleet_err err;
	struct accounts_file *af;
	struct account_secrets sec;

	fleet_log_clear_secrets();
	af = parse(HDR GOOD_A GOOD_B, 0, &err);
	assert_non_null(af);
	assert_int_equal(fleet_log_secret_count(), 4);
	assert_int_equal(accounts_row_load_passwords(accounts_row(af, 0), &sec, &err), 0);
	accounts_free(&af);
	assert_int_equal(fleet_log_secret_count(), 2); /* alice's, still held by the running account */
	accounts_secrets_release(&sec);
	assert_int_equal(fleet_log_secret_count(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(csv_columns_match_by_name_in_any_order_and_case, forget_secrets),
	    cmocka_unit_test_teardown(unusable_header_fails_the_whole_file_and_says_why, forget_secrets),
	    cmocka_unit_test_teardown(header_only_file_imports_no_rows_without_errors, forget_secrets),
	    cmocka_unit_test_teardown(each_bad_row_gives_one_error_with_its_line_and_field, forget_secrets),
	    cmocka_unit_test_teardown(duplicate_pair_names_both_lines, forget_secrets),
	    cmocka_unit_test_teardown(a_row_with_two_problems_reports_both, forget_secrets),
	    cmocka_unit_test_teardown(unterminated_quote_reports_the_line_where_the_quote_opened,
				      forget_secrets),
	    cmocka_unit_test_teardown(blank_and_empty_rows_are_skipped_silently, forget_secrets),
	    cmocka_unit_test_teardown(strict_mode_fails_on_any_bad_row_and_logs_every_error, forget_secrets),
	    cmocka_unit_test_teardown(utf8_bom_is_skipped, forget_secrets),
	    cmocka_unit_test_teardown(a_fifo_as_accounts_file_is_refused_at_once, forget_secrets),
	    cmocka_unit_test_teardown(a_passfile_naming_the_key_file_or_a_fifo_is_a_bad_row, forget_secrets),
	    cmocka_unit_test_teardown(passwords_leave_the_redaction_table_when_released, forget_secrets),
	    cmocka_unit_test_teardown(crlf_lf_and_cr_line_ends_give_the_same_rows_and_lines, forget_secrets),
	    cmocka_unit_test_teardown(quoted_passwords_keep_commas_semicolons_quotes_spaces_and_newlines,
				      forget_secrets),
	    cmocka_unit_test(a_filetxt_host_with_a_port_gets_advice_in_filetxt_terms),
	    cmocka_unit_test_teardown(filetxt_skips_comments_and_blank_lines_and_tolerates_crlf,
				      forget_secrets),
	    cmocka_unit_test_teardown(filetxt_detection_is_not_fooled_by_commas_or_column_names_in_passwords,
				      forget_secrets),
	    cmocka_unit_test_teardown(csv_whose_values_hold_semicolons_is_still_csv, forget_secrets),
	    cmocka_unit_test_teardown(semicolon_separated_csv_is_accepted_like_comma_separated, forget_secrets),
	    cmocka_unit_test_teardown(tls_mode_and_port_default_from_each_other, forget_secrets),
	    cmocka_unit_test_teardown(options_split_into_words_like_a_shell, forget_secrets),
	    cmocka_unit_test_teardown(side_options_in_the_extra_fields_set_port_tls_and_key, forget_secrets),
	    cmocka_unit_test_teardown(a_side_port_option_without_a_number_is_a_bad_row, forget_secrets),
	    cmocka_unit_test_teardown(row_keys_identify_pairs_and_escape_separators, forget_secrets),
	    cmocka_unit_test_teardown(good_sample_imports_with_passfiles_resolved_next_to_it, forget_secrets),
	    cmocka_unit_test_teardown(bad_sample_reports_each_bad_row_and_keeps_the_good_ones,
				      forget_secrets),
	    cmocka_unit_test_teardown(filetxt_sample_imports, forget_secrets),
	    cmocka_unit_test_teardown(a_semicolon_inside_a_filetxt_password_is_named_by_line_and_never_shown,
				      forget_secrets),
	    cmocka_unit_test_teardown(unreadable_passfile_is_a_bad_row, forget_secrets),
	    cmocka_unit_test_teardown(loading_passwords_reports_a_passfile_that_vanished, forget_secrets),
	    cmocka_unit_test_teardown(inline_passwords_are_redacted_from_logs_and_errors, forget_secrets),
	    cmocka_unit_test_teardown(inline_passwords_in_a_group_readable_file_are_warned_about,
				      forget_secrets),
	    cmocka_unit_test_teardown(missing_file_is_an_error_that_names_it, forget_secrets),
	    cmocka_unit_test_teardown(ten_thousand_rows_import_correctly, forget_secrets),
	};

	return cmocka_run_group_tests_name("accounts", tests, NULL, NULL);
}

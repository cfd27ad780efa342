/* io_stream against the lab's Dovecots (scripts/lab.sh up): implicit TLS and STARTTLS verified
 * with the lab CA, and the failures an operator meets first (unknown CA, wrong name, insecure).
 * Skips the whole program when $LAB_DIR/lab.env (default <srcdir>/.lab/lab.env) does not exist.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/unit/unit.h"
#include "tests/unit/unit_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "io/stream.h"
#include "io/tls.h"

static char g_ca[512];
static char g_host_nonlocal[64];
static uint16_t g_src_imaps, g_src_imap, g_dst_imaps, g_dst_imap;

static void env_value(const char *text, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	out[0] = '\0';
	snprintf(pat, sizeof(pat), "export %s='", key);
	p = strstr(text, pat);
	if (!p)
		return;
	p += strlen(pat);
	while (p[n] && p[n] != '\'' && n + 1 < cap)
		n++;
	memcpy(out, p, n);
	out[n] = '\0';
}

static uint16_t env_port(const char *text, const char *key)
{
	char v[16];
	uint64_t port = 0;

	env_value(text, key, v, sizeof(v));
	if (fleet_parse_u64(v, 1, 65535, &port) < 0)
		return 0;
	return (uint16_t)port;
}

/* Returns 0 when the lab's env file was read. */
static int load_lab_env(void)
{
	const char *dir = getenv("LAB_DIR");
	char path[512], why[128];
	char *text;

	if (dir && *dir)
		snprintf(path, sizeof(path), "%s/lab.env", dir);
	else
		snprintf(path, sizeof(path), "%s/.lab/lab.env", IMAPFLEET_SRCDIR);
	text = fleet_read_small_file(path, 1 << 16, why, sizeof(why));
	if (!text)
		return -1;
	env_value(text, "LAB_CA", g_ca, sizeof(g_ca));
	env_value(text, "LAB_HOST_NONLOCAL", g_host_nonlocal, sizeof(g_host_nonlocal));
	g_src_imaps = env_port(text, "LAB_SRC_IMAPS");
	g_src_imap = env_port(text, "LAB_SRC_IMAP");
	g_dst_imaps = env_port(text, "LAB_DST_IMAPS");
	g_dst_imap = env_port(text, "LAB_DST_IMAP");
	xfree(&text);
	return g_ca[0] && g_src_imaps && g_src_imap && g_dst_imaps && g_dst_imap ? 0 : -1;
}

static struct io_endpoint endpoint(const char *host, uint16_t port, enum io_tls_mode mode, const char *cafile)
{
	return unit_endpoint(host, port, mode, cafile, 10000);
}

/* Reads one CRLF-terminated line byte by byte (never past it, as STARTTLS requires). */
static void read_line(struct io_stream *s, char *line, size_t cap)
{
	size_t n = 0;
	struct fleet_err err;

	while (n + 1 < cap) {
		ssize_t r = io_stream_read(s, line + n, 1, &err);

		if (r != 1)
			fail_msg("read failed: %s", r == 0 ? "end of stream" : err.message);
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
}

static void assert_greets_and_logs_out(struct io_stream *s)
{
	char line[512];
	struct fleet_err err;

	read_line(s, line, sizeof(line));
	assert_contains(line, "* OK");
	assert_int_equal(io_stream_write(s, "a LOGOUT\r\n", 10, &err), 0);
	do
		read_line(s, line, sizeof(line));
	while (strncmp(line, "a ", 2) != 0);
	assert_contains(line, "a OK");
}

/* A stream connected to localhost:PORT in MODE, trusting the lab's CA; a failure fails the test. */
static struct io_stream *connected(uint16_t port, enum io_tls_mode mode)
{
	struct io_endpoint ep = endpoint("localhost", port, mode, g_ca);
	struct io_stream *s;
	struct fleet_err err;

	if (io_stream_connect(&ep, &s, &err) != 0)
		fail_msg("%s", err.message);
	return s;
}

static void implicit_tls_to_localhost_verifies_with_the_lab_ca(void **state)
{
	const uint16_t ports[] = {g_src_imaps, g_dst_imaps};

	for (size_t i = 0; i < 2; i++) {
		struct io_stream *s = connected(ports[i], IO_TLS_IMPLICIT);
		struct io_tls_info info;

		unit_assert_verified(s, &info);
		assert_string_equal(info.verify_result, "ok");
		assert_true(strcmp(info.version, "TLSv1.2") == 0 || strcmp(info.version, "TLSv1.3") == 0);
		assert_contains(info.issuer, "imapfleet lab CA");
		assert_contains(info.san, "DNS:localhost");
		assert_greets_and_logs_out(s);
		io_stream_close(&s);
	}
}

/* Connecting to EP fails for good with CODE; the error in *ERR. */
static void refused(const struct io_endpoint *ep, const char *code, struct fleet_err *err)
{
	struct io_stream *s;

	assert_int_equal(io_stream_connect(ep, &s, err), -1);
	assert_null(s);
	assert_int_equal(err->cls, FLEET_ERR_PERMANENT);
	assert_string_equal(err->code, code);
}

static void implicit_tls_without_the_lab_ca_fails_as_unknown_ca(void **state)
{
	struct io_endpoint ep = endpoint("localhost", g_src_imaps, IO_TLS_IMPLICIT, NULL);
	struct fleet_err err;

	refused(&ep, "TLS_VERIFY", &err);
	assert_contains(err.message, "certificate verify failed for localhost:");
	assert_contains(err.message, "unknown CA");
	assert_contains(err.detail, "--cafile1");
}

static void a_name_the_certificate_does_not_carry_is_a_mismatch(void **state)
{
	struct io_endpoint ep = endpoint("127.0.0.1", g_src_imaps, IO_TLS_IMPLICIT, g_ca);
	struct fleet_err err;

	ep.verify_host = "imap.example.org";
	refused(&ep, "TLS_VERIFY", &err);
	assert_contains(err.message, "host name mismatch: certificate is for localhost, 127.0.0.1");
	assert_contains(err.message, "not imap.example.org");
}

static void ip_literals_verify_against_the_ip_sans(void **state)
{
	/* The lab certificate names 127.0.0.1, ::1 and 127.0.0.2 (the lab's "other host"). */
	const char *hosts[] = {"127.0.0.1", "::1", g_host_nonlocal};

	for (size_t i = 0; i < 3; i++) {
		struct io_endpoint ep = endpoint(hosts[i], g_dst_imaps, IO_TLS_IMPLICIT, g_ca);
		struct io_stream *s;
		struct fleet_err err;
		struct io_tls_info info;

		if (!hosts[i][0])
			continue; /* the lab does not listen on 127.0.0.2 here */
		if (io_stream_connect(&ep, &s, &err) != 0) {
			if (strcmp(err.code, "ECONNREFUSED") == 0 || strcmp(err.code, "EADDRNOTAVAIL") == 0)
				continue; /* this address is not one the lab listens on */
			fail_msg("%s: %s", hosts[i], err.message);
		}
		unit_assert_verified(s, &info);
		io_stream_close(&s);
	}
}

static void insecure_connects_unverified_and_warns(void **state)
{
	struct io_endpoint ep = endpoint("localhost", g_src_imaps, IO_TLS_IMPLICIT, NULL);
	struct io_stream *s;
	struct fleet_err err;
	struct io_tls_info info;
	struct unit_log log;
	int rc;

	ep.insecure = 1;
	unit_log_capture(&log);
	rc = io_stream_connect(&ep, &s, &err);
	unit_log_end(&log);
	if (rc != 0)
		fail_msg("%s", err.message);
	unit_assert_insecure_warned(&log, g_src_imaps, "verification would fail", s, &info);
	assert_contains(info.verify_result, "unable to get local issuer certificate");
	assert_greets_and_logs_out(s);
	io_stream_close(&s);
}

static void starttls_upgrades_and_verifies(void **state)
{
	const uint16_t ports[] = {g_src_imap, g_dst_imap};

	for (size_t i = 0; i < 2; i++) {
		struct io_stream *s = connected(ports[i], IO_TLS_STARTTLS);
		struct fleet_err err;
		struct io_tls_info info;
		char line[512];

		read_line(s, line, sizeof(line));
		assert_contains(line, "* OK");
		assert_int_equal(io_stream_write(s, "a STARTTLS\r\n", 12, &err), 0);
		read_line(s, line, sizeof(line));
		assert_contains(line, "a OK");
		if (io_stream_start_tls(s, &err) != 0)
			fail_msg("%s", err.message);
		unit_assert_verified(s, &info);
		assert_int_equal(io_stream_write(s, "b CAPABILITY\r\n", 14, &err), 0);
		do
			read_line(s, line, sizeof(line));
		while (strncmp(line, "b ", 2) != 0);
		assert_contains(line, "b OK");
		io_stream_close(&s);
	}
}

static void implicit_tls_to_the_cleartext_port_is_a_protocol_error(void **state)
{
	struct io_endpoint ep = endpoint("localhost", g_src_imap, IO_TLS_IMPLICIT, g_ca);
	struct fleet_err err;

	refused(&ep, "TLS_PROTOCOL", &err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(implicit_tls_to_localhost_verifies_with_the_lab_ca),
	    cmocka_unit_test(implicit_tls_without_the_lab_ca_fails_as_unknown_ca),
	    cmocka_unit_test(a_name_the_certificate_does_not_carry_is_a_mismatch),
	    cmocka_unit_test(ip_literals_verify_against_the_ip_sans),
	    cmocka_unit_test(insecure_connects_unverified_and_warns),
	    cmocka_unit_test(starttls_upgrades_and_verifies),
	    cmocka_unit_test(implicit_tls_to_the_cleartext_port_is_a_protocol_error),
	};

	if (load_lab_env() != 0)
		return unit_skip("lab not running (scripts/lab.sh up)");
	return unit_run("io_stream_lab", tests, NULL, unit_tls_group_teardown);
}

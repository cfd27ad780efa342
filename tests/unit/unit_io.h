/* tests/unit/unit_io.h: what the stream tests share (test_stream, test_tls_lab; included by them only,
 * after cmocka.h): the io_stream endpoint and the log captured in memory. */
#ifndef IMAPFLEET_TESTS_UNIT_IO_H
#define IMAPFLEET_TESTS_UNIT_IO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "io/stream.h"
#include "io/tls.h"

/* An endpoint labelled "src" with a 5 s connect timeout; cafile may be NULL. */
static inline struct io_endpoint unit_endpoint(const char *host, uint16_t port, enum io_tls_mode mode,
					       const char *cafile, unsigned io_timeout_ms)
{
	return (struct io_endpoint){.host = host,
				    .port = port,
				    .mode = mode,
				    .cafile = cafile,
				    .connect_timeout_ms = 5000,
				    .io_timeout_ms = io_timeout_ms,
				    .label = "src"};
}

/* S is a TLS stream whose certificate was verified; its TLS info in *INFO. */
static inline void unit_assert_verified(struct io_stream *s, struct io_tls_info *info)
{
	assert_true(io_stream_is_tls(s));
	assert_int_equal(io_stream_tls_info(s, info), 0);
	assert_int_equal(info->verified, 1);
}

/* The stream tests' group teardown: the TLS contexts io/tls cached are freed, so that a leak check
 * finds none left. */
static inline int unit_tls_group_teardown(void **state)
{
	(void)state;
	tls_ctx_cache_clear();
	return 0;
}

/* The log, captured: unit_log_capture(&L) sends what is logged into memory, unit_log_end(&L) stops
 * that and returns the text, also in L.text (free() it). */
struct unit_log {
	char *text;
	size_t len;
	FILE *sink;
};

static inline void unit_log_capture(struct unit_log *l)
{
	l->text = NULL;
	l->len = 0;
	l->sink = open_memstream(&l->text, &l->len);
	assert_non_null(l->sink);
	fleet_log_set_sink(l->sink);
}

static inline char *unit_log_end(struct unit_log *l)
{
	fleet_log_set_sink(NULL);
	fclose(l->sink);
	return l->text;
}

/* S, an insecure connection to localhost:PORT: the log LOG (ended; its text freed here) warned about
 * it with WARNING, naming the address, and S's certificate is not verified; S's TLS info in *INFO. */
static inline void unit_assert_insecure_warned(struct unit_log *log, uint16_t port, const char *warning, struct io_stream *s,
					       struct io_tls_info *info)
{
	char where[40];

	snprintf(where, sizeof(where), "localhost:%u", (unsigned)port);
	assert_contains(log->text, "WARN");
	assert_contains(log->text, where);
	assert_contains(log->text, warning);
	free(log->text);
	assert_int_equal(io_stream_tls_info(s, info), 0);
	assert_int_equal(info->verified, 0);
}

#endif

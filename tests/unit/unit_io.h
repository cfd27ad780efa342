/* tests/unit/unit_io.h: the io_stream endpoint of the stream tests (test_stream, test_tls_lab; included
 * by them only). */
#ifndef IMAPFLEET_TESTS_UNIT_IO_H
#define IMAPFLEET_TESTS_UNIT_IO_H

#include <stdint.h>

#include "io/stream.h"

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

#endif

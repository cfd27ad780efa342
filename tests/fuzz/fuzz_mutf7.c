/* libFuzzer target for io/mutf7: whatever decodes must re-encode to the very same bytes, and
 * whatever valid UTF-8 encodes must decode back to itself. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "io/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever `there` accepts must come back as the very same bytes through `back`. */
static void round_trip(int (*there)(const char *, size_t, struct fleet_buf *, struct fleet_err *),
		       int (*back)(const char *, size_t, struct fleet_buf *, struct fleet_err *), const char *in,
		       size_t size)
{
	struct fleet_buf a = FLEET_BUF_INIT(1 << 20), b = FLEET_BUF_INIT(1 << 20);
	struct fleet_err err;

	if (there(in, size, &a, &err) == 0) {
		if (back(a.data ? a.data : "", a.len, &b, &err) != 0 || b.len != size ||
		    (size && memcmp(b.data, in, size) != 0))
			abort();
	}
	fleet_buf_release(&a);
	fleet_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	round_trip(mutf7_decode, mutf7_encode, (const char *)data, size);
	round_trip(mutf7_encode, mutf7_decode, (const char *)data, size);
	return 0;
}

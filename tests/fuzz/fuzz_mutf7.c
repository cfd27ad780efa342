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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fleet_buf a = FLEET_BUF_INIT(1 << 20), b = FLEET_BUF_INIT(1 << 20);
	struct fleet_err err;
	const char *in = (const char *)data;

	if (mutf7_decode(in, size, &a, &err) == 0) {
		if (mutf7_encode(a.data ? a.data : "", a.len, &b, &err) != 0 || b.len != size ||
		    (size && memcmp(b.data, in, size) != 0))
			abort();
	}
	fleet_buf_release(&a);
	fleet_buf_release(&b);
	if (mutf7_encode(in, size, &a, &err) == 0) {
		if (mutf7_decode(a.data ? a.data : "", a.len, &b, &err) != 0 || b.len != size ||
		    (size && memcmp(b.data, in, size) != 0))
			abort();
	}
	fleet_buf_release(&a);
	fleet_buf_release(&b);
	return 0;
}

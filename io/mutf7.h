/* io/mutf7.h: modified UTF-7 (RFC 3501 section 5.1.3) <-> UTF-8 for mailbox names.
 *
 * Strict both ways, so that decode followed by encode gives back the very same bytes (a name that
 * round-trips differently would make a folder appear twice on the destination):
 *  - decoding refuses bytes outside printable ASCII, a shift that is never closed ("&AOk"), base64
 *    that is not modified base64 or leaves non-zero padding bits, an encoded run that holds a
 *    printable ASCII character or follows another run directly ("&AOk-&AOk-"), a lone or reversed
 *    surrogate, and U+0000;
 *  - encoding refuses input that is not well-formed UTF-8 (overlong forms, surrogates, above
 *    U+10FFFF, truncated sequences) and U+0000.
 * Errors are FLEET_ERR_PERMANENT, scope folder, code "MUTF7" (encode: "UTF8"), with the byte
 * offset in the message. Output is appended to `out` (NUL-terminated, capped by out->max; a full
 * buffer is the same error class with code "MUTF7_LIMIT"). On error `out` is left as it was.
 * Reentrant and thread-safe.
 */
#ifndef IMAPFLEET_IO_MUTF7_H
#define IMAPFLEET_IO_MUTF7_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* a mailbox name that is not valid modified UTF-7 or UTF-8 */
#define MUTF7_ERR "MUTF7"


/* Modified UTF-7 (as on the wire) -> UTF-8. */
int mutf7_decode(const char *in, size_t len, struct fleet_buf *out, struct fleet_err *err);
/* UTF-8 -> modified UTF-7. */
int mutf7_encode(const char *in, size_t len, struct fleet_buf *out, struct fleet_err *err);

/* 1 when s is valid modified UTF-7 (what mutf7_decode accepts). */
int mutf7_is_valid(const char *in, size_t len);

#endif

/* common/escape.h: UTF-8 validation and the escapers for untrusted text.
 *
 * Servers and accounts files send bytes, not text: Latin-1 refusals, raw 8-bit folder names, ESC
 * sequences that retitle a terminal, CR/LF that forge log lines. Everything that is shown, logged
 * or stored passes through here first (design section 12: "every text stored or shown is valid
 * UTF-8 with control characters escaped").
 *
 * - fleet_utf8_*: strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
 * - fleet_escape_term*: the one terminal/log escaper. Valid printable UTF-8 is kept as is; every
 *   byte that is not valid UTF-8, every C0 control (CR, LF, TAB, ESC ...), DEL and every C1 control
 *   (U+0080..U+009F, CSI among them) becomes "\xHH" (the original byte in hex, so nothing is
 *   lost), and the bidi overrides (U+202A..U+202E, U+2066..U+2069) become "\u{HHHH}". The backslash
 *   itself is kept, so escaping twice changes nothing (an escaped text can be escaped again by the
 *   log on its way out).
 *
 * All functions are pure and thread-safe.
 */
#ifndef IMAPFLEET_COMMON_ESCAPE_H
#define IMAPFLEET_COMMON_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

struct fleet_buf;

/* Length (1..4) of the valid UTF-8 sequence at s (left bytes available), 0 when none starts there. */
size_t fleet_utf8_seq(const char *s, size_t left);
/* Writes code point cp (below 0x110000, not a surrogate) as UTF-8 to u; returns its length (1..4). */
size_t fleet_utf8_put(uint32_t cp, char u[4]);
/* 1 when s[0..len) is valid UTF-8 (NUL bytes count as valid: callers with C strings never see them). */
int fleet_utf8_valid(const char *s, size_t len);
/* A heap copy of the C string s in which every byte that is not part of valid UTF-8 is replaced by
 * U+FFFD; NULL for NULL. For the state boundary, where a text must be storable whatever it is. */
char *fleet_utf8_sanitize(const char *s);
/* Largest n <= len such that s[0..n) does not end inside a UTF-8 sequence (for cutting texts). */
size_t fleet_utf8_cut(const char *s, size_t len);

/* The escapers of the report formats. Each appends the C string s (NULL as "") to out and returns
 * 0, or -1 when out's cap was reached (out may then hold part of it: give out room, 6 bytes per
 * input byte plus 4, or use a fresh buffer). Invalid UTF-8 becomes U+FFFD in all three.
 * - html: text for an element or a quoted attribute: & < > " ' as entities, controls other than
 *   TAB and LF as U+FFFD.
 * - json: a JSON string with its quotes; " \ and controls escaped, and < > & U+2028 U+2029 as
 *   \uXXXX so that the string is also safe inside an HTML <script>.
 * - csv: one RFC 4180 cell, always quoted, quotes doubled; a cell a spreadsheet would read as a
 *   formula (first character = + - @ TAB or CR) gets a leading apostrophe (OWASP's CSV-injection
 *   advice); controls other than TAB, CR and LF become U+FFFD. */
int fleet_escape_html(struct fleet_buf *out, const char *s);
int fleet_escape_json(struct fleet_buf *out, const char *s);
int fleet_escape_csv(struct fleet_buf *out, const char *s);

/* 1 when s[0..len) needs no escaping (the common case: callers can skip a copy). */
int fleet_escape_term_clean(const char *s, size_t len);
/* Appends s[0..len) escaped (see above) to out. Returns 0, or -1 when out's cap was reached (what
 * fit is kept, never half an escape or half a character). */
int fleet_escape_term(struct fleet_buf *out, const char *s, size_t len);
/* The same into dst (size cap, always NUL-terminated when cap > 0); cut at a character boundary.
 * Returns the length written. dst and s must not overlap. */
size_t fleet_escape_term_into(char *dst, size_t cap, const char *s, size_t len);

#endif

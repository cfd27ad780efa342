/* engine/identity.h: recognising a message that is already on the destination.
 *
 * Used where the ledger cannot say: after a crash inside an append window (design section 6),
 * for --dedupe-existing (a destination pre-seeded by another tool), and by --dry. A message's
 * identity is its INTERNALDATE (as an instant, whatever zone the server prints), a hash of its
 * Message-ID and Date header fields, unfolded, and a hash of its body (see identity_from_prefix).
 * Matching is by multiset: two identical messages in one source folder need two on the
 * destination.
 */
#ifndef IMAPFLEET_ENGINE_IDENTITY_H
#define IMAPFLEET_ENGINE_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* What is fetched for identity: the first IDENTITY_FETCH bytes of the message (issue 18.5).
 * Servers rewrite what they store: Cyrus (munge8bit) replaces 8-bit bytes in header fields, and
 * Courier rewrites line ends, as measured on Courier IMAP 5.0 with raw APPENDs
 * (tests/integration/servers_padding.sh): a bare LF becomes CRLF, a bare CR is dropped ("a\rb" is
 * stored "ab", "a\r\r\n" "a\r\n"), CRLF stays, and a message that does not end in a line end gets
 * a CRLF added (+2 bytes; +1 for a final bare LF or CR), whatever its size. So the identity is built
 * from what servers do not rewrite: the Message-ID and Date fields (ASCII), and the body after the
 * header block with every line end (CRLF, LF) taken as one and bare CRs left out. A message whose
 * content is at most IDENTITY_PREFIX bytes, counted as Courier stores it (every line end 2 bytes, a
 * bare CR none, the trailing line ends left out), is compared whole, its trailing line ends and its size left out;
 * one longer by its first IDENTITY_PREFIX bytes so counted (cut at a line end) and its exact size.
 * The same content is whole or a prefix on every server alike: a 16,383-byte message without a
 * final CRLF, 16,385 bytes on Courier, is whole on both (IDENTITY_SLACK bytes are fetched beyond
 * the prefix to see the line ends a server may add). Two messages whose bodies differ are never
 * one, with or without a Message-ID. */
#define IDENTITY_PREFIX 16384
#define IDENTITY_SLACK 64
#define IDENTITY_FETCH (IDENTITY_PREFIX + IDENTITY_SLACK)
#define IDENTITY_FETCH_ITEM "BODY.PEEK[]<0.16448>"
/* The largest destination copy compared whole with its source to confirm a match after line ends
 * were rewritten inside the message (identity_pad_fn); a longer one is copied again. */
#define IDENTITY_REWRITE_MAX (4u << 20)
/* The header and body hashes: SHA-256 cut to 16 bytes. 128 bits put a collision among one
 * mailbox's messages out of reach, and every message of a huge folder keeps both in memory. */
#define IDENTITY_HASH_LEN 16

struct msg_ident {
	uint32_t uid;
	uint64_t size;       /* RFC822.SIZE, or 0 when the whole body is in the hash */
	int64_t date;        /* INTERNALDATE as seconds since the epoch */
	uint8_t hdr[IDENTITY_HASH_LEN];  /* truncated SHA-256 of the normalised header fields */
	uint8_t body[IDENTITY_HASH_LEN]; /* truncated SHA-256 of the normalised body (or its prefix) */
	uint8_t msgid;       /* 1 when the message has a Message-ID field */
};

/* Weak evidence: no Message-ID, and the body known by its first IDENTITY_PREFIX bytes only (a
 * longer message): two different messages could agree on all of it. */
static inline int identity_is_weak(const struct msg_ident *id)
{
	return !id->msgid && id->size != 0;
}

/* What identity_match found besides the matches. */
struct identity_tally {
	size_t ambiguous; /* source messages left to copy: more look-alikes on the destination than
			   * on the source (which one is the copy would be a guess) */
	size_t weak;      /* the same, for identities without a Message-ID known by their prefix */
	size_t padded;    /* matched to a longer destination copy, the line ends a server rewrote
			   * or added (Courier), as the caller's check confirmed */
};

/* Asks the caller whether the destination message d is the source message s with its line ends
 * written as a server writes them (d->size != s->size, d->size <= 2 * s->size + 2, everything else equal;
 * see identity_tail_as_stored): 1 yes, 0 no. The engine compares the two messages' last bytes
 * when d is 1 or 2 bytes longer (the last line end), and the two whole messages when it is longer
 * still or shorter (bare LFs inside written CRLF, bare CRs dropped), or when s is weak (identity_is_weak: nothing but
 * the bytes tells it from a look-alike), and at most IDENTITY_REWRITE_MAX bytes. */
typedef int (*identity_pad_fn)(void *ctx, const struct msg_ident *s, const struct msg_ident *d);

/* Fills id->size, id->hdr and id->body from the first len bytes of a message of `size` bytes (as
 * fetched with IDENTITY_FETCH_ITEM); uid and date are the caller's. */
void identity_from_prefix(const char *msg, size_t len, uint64_t size, struct msg_ident *id);

/* The last n bytes of a message as Courier stores them: every line end (CRLF, bare LF) written
 * CRLF, a bare CR dropped, and a CRLF added when the message does not end in a line end. A leading LF is
 * left out (it may end a CRLF cut in two): *skip is 1 then, else 0. Appends to out (capped). */
void identity_tail_as_stored(const char *tail, size_t n, struct fleet_buf *out, size_t *skip);

/* Parses "17-Jul-1996 02:44:25 -0700" (leading space in the day allowed). 0 or -1. */
int identity_parse_internaldate(const char *s, int64_t *epoch);
/* Hash of the header block: field names lower-cased, continuation lines unfolded, runs of
 * whitespace collapsed, fields sorted so the order a server returns them in does not matter. */
void identity_header_hash(const char *hdr, size_t len, uint8_t out[IDENTITY_HASH_LEN]);

/* For every src entry, finds an unused dst entry with the same identity. matched[i] receives the
 * destination UID, or 0 when src[i] is not on the destination (to be copied). Returns the number
 * matched. Sorts both arrays (by identity). Never guesses (issue 18): the source and destination
 * messages of one identity are paired in UID order when the destination holds at most as many as
 * the source; when it holds more, none of them is matched (tally->ambiguous, or tally->weak for an
 * identity without a Message-ID known by its prefix only). A message longer than the prefix whose
 * destination copy is of another size (its line ends rewritten, at most 2 * size + 2 bytes) is matched
 * only when pad (may be NULL) confirms it, and only when it is the one candidate. tally may be NULL. */
size_t identity_match(struct msg_ident *src, size_t nsrc, struct msg_ident *dst, size_t ndst, uint32_t *matched,
		      identity_pad_fn pad, void *pad_ctx, struct identity_tally *tally);

#endif

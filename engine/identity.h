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

/* What is fetched for identity: the first IDENTITY_PREFIX bytes of the message (issue 18.5).
 * Servers rewrite what they store: Courier adds a final CRLF to a message without one, Cyrus
 * (munge8bit) replaces 8-bit bytes in header fields. So the identity is built from what they do
 * not rewrite: the Message-ID and Date fields (ASCII), and the body after the header block with
 * line ends normalised; a body that fits in the prefix whole is compared whole, its trailing
 * line ends and the message size left out (they are what Courier changes); a longer one by the
 * prefix (cut at its last line end) and the exact size. Two messages whose bodies differ are
 * never one, with or without a Message-ID. */
#define IDENTITY_PREFIX 16384
#define IDENTITY_FETCH_ITEM "BODY.PEEK[]<0.16384>"

struct msg_ident {
	uint32_t uid;
	uint64_t size;       /* RFC822.SIZE, or 0 when the whole body is in the hash */
	int64_t date;        /* INTERNALDATE as seconds since the epoch */
	uint8_t hdr[16];     /* truncated SHA-256 of the normalised header fields */
	uint8_t body[16];    /* truncated SHA-256 of the normalised body (or its prefix) */
};

/* Fills id->size, id->hdr and id->body from the first len bytes of a message of `size` bytes (as
 * fetched with IDENTITY_FETCH_ITEM); uid and date are the caller's. */
void identity_from_prefix(const char *msg, size_t len, uint64_t size, struct msg_ident *id);

/* Parses "17-Jul-1996 02:44:25 -0700" (leading space in the day allowed). 0 or -1. */
int identity_parse_internaldate(const char *s, int64_t *epoch);
/* Hash of the header block: field names lower-cased, continuation lines unfolded, runs of
 * whitespace collapsed, fields sorted so the order a server returns them in does not matter. */
void identity_header_hash(const char *hdr, size_t len, uint8_t out[16]);

/* For every src entry, finds an unused dst entry with the same identity. matched[i] receives the
 * destination UID, or 0 when src[i] is not on the destination. Returns the number matched.
 * Sorts both arrays (by identity). */
size_t identity_match(struct msg_ident *src, size_t nsrc, struct msg_ident *dst, size_t ndst,
		      uint32_t *matched);

#endif

/* engine/identity.h: recognising a message that is already on the destination.
 *
 * Used where the ledger cannot say: after a crash inside an append window (design section 6),
 * for --dedupe-existing (a destination pre-seeded by another tool), and by --dry. A message's
 * identity is its size, its INTERNALDATE (as an instant, whatever zone the server prints) and a
 * hash of its Message-ID, Date, From and Subject header fields, unfolded. Matching is by
 * multiset: two identical messages in one source folder need two on the destination.
 */
#ifndef IMAPFLEET_ENGINE_IDENTITY_H
#define IMAPFLEET_ENGINE_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

/* The header fields fetched for identity, as an IMAP fetch item. */
#define IDENTITY_FETCH_ITEM "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM SUBJECT)]"

struct msg_ident {
	uint32_t uid;
	uint64_t size;
	int64_t date;        /* INTERNALDATE as seconds since the epoch */
	uint8_t hdr[16];     /* truncated SHA-256 of the normalised header fields */
};

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

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
	size_t padded;    /* matched to a destination copy 2 bytes longer, the final CRLF a server
			   * added (Courier), as the caller's check confirmed */
};

/* Asks the caller whether the destination message d is the source message s with a final CRLF
 * added by the server (d->size == s->size + 2, everything else equal): 1 yes, 0 no. The engine
 * compares the two messages' last bytes. */
typedef int (*identity_pad_fn)(void *ctx, const struct msg_ident *s, const struct msg_ident *d);

/* Fills id->size, id->hdr and id->body from the first len bytes of a message of `size` bytes (as
 * fetched with IDENTITY_FETCH_ITEM); uid and date are the caller's. */
void identity_from_prefix(const char *msg, size_t len, uint64_t size, struct msg_ident *id);

/* Parses "17-Jul-1996 02:44:25 -0700" (leading space in the day allowed). 0 or -1. */
int identity_parse_internaldate(const char *s, int64_t *epoch);
/* Hash of the header block: field names lower-cased, continuation lines unfolded, runs of
 * whitespace collapsed, fields sorted so the order a server returns them in does not matter. */
void identity_header_hash(const char *hdr, size_t len, uint8_t out[16]);

/* For every src entry, finds an unused dst entry with the same identity. matched[i] receives the
 * destination UID, or 0 when src[i] is not on the destination (to be copied). Returns the number
 * matched. Sorts both arrays (by identity). Never guesses (issue 18): the source and destination
 * messages of one identity are paired in UID order when the destination holds at most as many as
 * the source; when it holds more, none of them is matched (tally->ambiguous, or tally->weak for an
 * identity without a Message-ID known by its prefix only). A message longer than the prefix whose destination copy is 2 bytes
 * longer is matched only when pad (may be NULL) confirms the padding, and only when it is the one
 * candidate. tally may be NULL. */
size_t identity_match(struct msg_ident *src, size_t nsrc, struct msg_ident *dst, size_t ndst, uint32_t *matched,
		      identity_pad_fn pad, void *pad_ctx, struct identity_tally *tally);

#endif

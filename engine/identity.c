#include "engine/identity.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/util.h"
#include "io/imap.h"

int identity_parse_internaldate(const char *s, int64_t *epoch)
{
	int tz;

	/* The IMAP client's parser: one definition of the format in the project. */
	return s ? imap_internaldate_parse(s, epoch, &tz) : -1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void identity_header_hash(const char *hdr, size_t len, uint8_t out[IDENTITY_HASH_LEN])
{
	struct fleet_buf field = FLEET_BUF_INIT(len + 1); /* a field is never longer than the header */
	char **fields = NULL;
	size_t nfields = 0, alloc = 0;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx;
	size_t i = 0;

	/* Split into unfolded fields: a line starting with space/tab continues the previous one. */
	while (i < len) {
		size_t start = i, end;
		int in_name = 1, last_space = 0;

		while (i < len && hdr[i] != '\n')
			i++;
		end = i;
		if (i < len)
			i++;
		if (end > start && hdr[end - 1] == '\r')
			end--;
		if (end == start)
			continue;
		if ((hdr[start] == ' ' || hdr[start] == '\t') && field.len) {
			in_name = 0;
			last_space = 1;
			fleet_buf_add(&field, " ", 1);
		} else if (field.len) {
			fields = xgrow(fields, sizeof(*fields), nfields + 1, &alloc);
			fields[nfields++] = fleet_buf_detach(&field, NULL);
			fleet_buf_init(&field, len + 1);
		}
		for (size_t k = start; k < end; k++) {
			char c = hdr[k];

			if (in_name && c == ':')
				in_name = 0;
			else if (in_name && c >= 'A' && c <= 'Z')
				c = (char)(c + 32);
			if (c == '\t')
				c = ' ';
			if (c == ' ' && last_space)
				continue;
			last_space = c == ' ';
			fleet_buf_add(&field, &c, 1);
		}
	}
	if (field.len) {
		fields = xgrow(fields, sizeof(*fields), nfields + 1, &alloc);
		fields[nfields++] = fleet_buf_detach(&field, NULL);
	}
	fleet_buf_release(&field);
	if (nfields)
		qsort(fields, nfields, sizeof(*fields), cmp_str);

	ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t k = 0; k < nfields; k++) {
		size_t flen = strlen(fields[k]);

		while (flen && fields[k][flen - 1] == ' ')
			flen--;
		EVP_DigestUpdate(ctx, fields[k], flen);
		EVP_DigestUpdate(ctx, "\n", 1);
		xfree(&fields[k]);
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	xfree(&fields);
	memcpy(out, md, IDENTITY_HASH_LEN);
}

/* The header fields that servers leave alone: Message-ID and Date (ASCII by RFC 5322), each line
 * with its continuation lines. From and Subject are not taken: Cyrus's munge8bit rewrites their
 * 8-bit bytes. */
static int keep_fields(const char *h, size_t len, struct fleet_buf *out)
{
	size_t i = 0;
	int keep = 0, msgid = 0;

	while (i < len) {
		size_t start = i;

		while (i < len && h[i] != '\n')
			i++;
		if (i < len)
			i++;
		if (h[start] != ' ' && h[start] != '\t') {
			int id = i - start >= 11 && fleet_strncaseeq(h + start, "Message-ID:", 11);

			msgid |= id;
			keep = id || (i - start >= 5 && fleet_strncaseeq(h + start, "Date:", 5));
		}
		if (keep)
			fleet_buf_add(out, h + start, i - start);
	}
	return msgid;
}

_Static_assert(IDENTITY_FETCH == 16448, "IDENTITY_FETCH_ITEM must fetch IDENTITY_FETCH bytes");

/* The line end at msg[i], 0 when there is none: CRLF (2 bytes) and a bare LF (1 byte) are each
 * one line end (Courier writes each as CRLF). A bare CR is none: see bare_cr. */
static size_t eol_at(const char *msg, size_t i, size_t len)
{
	if (msg[i] == '\n')
		return 1;
	return msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n' ? 2 : 0;
}

/* 1 when msg[i] is a CR not followed by LF: Courier drops it (raw APPENDs to Courier IMAP 5.0:
 * "a\rb" is stored "ab", "a\r\r\nb" "a\r\nb", a final "end\r" "end\r\n"); the identity leaves
 * it out. Dovecot and Cyrus keep it. */
static int bare_cr(const char *msg, size_t i, size_t len)
{
	return msg[i] == '\r' && !(i + 1 < len && msg[i + 1] == '\n');
}

/* Where the identity's view of a message ends, as a byte offset into msg[0..len): for a message
 * held whole (*whole = 1), the end of its content before its trailing line ends; else the end of
 * its last line end within the first IDENTITY_PREFIX bytes counted as a server that writes every
 * line end as CRLF stores them. The count is the same for the source and for such a server's copy,
 * so both are whole or both are prefixes. */
static size_t identity_extent(const char *msg, size_t len, uint64_t size, int *whole)
{
	size_t i = 0, stored = 0, content_end = 0, cut = 0;
	uint64_t stored_content = 0;

	while (i < len) {
		size_t e = eol_at(msg, i, len);

		if (bare_cr(msg, i, len)) {
			i++; /* not stored */
		} else if (e) {
			i += e;
			stored += 2;
			if (stored <= IDENTITY_PREFIX)
				cut = i;
		} else {
			i++;
			stored++;
			content_end = i;
			stored_content = stored;
		}
		if (stored > IDENTITY_PREFIX && size > len)
			break; /* a prefix: nothing after the cut counts */
	}
	*whole = size <= len && stored_content <= IDENTITY_PREFIX;
	return *whole ? content_end : cut;
}

void identity_from_prefix(const char *msg, size_t len, uint64_t size, struct msg_ident *id)
{
	struct fleet_buf hdr = FLEET_BUF_INIT(len + 1); /* the fields kept are part of msg */
	const char *body = NULL;
	size_t hlen = len, blen = 0, end;
	int whole;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx;

	end = identity_extent(msg, len, size, &whole);
	/* The header block ends at the first empty line (CRLF CRLF, or LF LF from a server that
	 * stores bare LF). */
	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] == '\n' && (msg[i + 1] == '\n' || (msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n'))) {
			hlen = i + 1;
			body = msg + i + (msg[i + 1] == '\n' ? 2 : 3);
			blen = end > (size_t)(body - msg) ? end - (size_t)(body - msg) : 0;
			break;
		}
	}
	id->msgid = (uint8_t)keep_fields(msg, hlen, &hdr);
	identity_header_hash(fleet_buf_cstr(&hdr), hdr.len, id->hdr);
	fleet_buf_release(&hdr);

	ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, whole ? "w" : "p", 1);
	for (size_t i = 0; body && i < blen;) {
		size_t run = i, e;

		/* every line end hashes as one LF, CRLF and a bare LF alike; a bare CR not at all */
		while (run < blen && body[run] != '\r' && body[run] != '\n')
			run++;
		EVP_DigestUpdate(ctx, body + i, run - i);
		if (run >= blen)
			break;
		e = eol_at(body, run, blen);
		if (e)
			EVP_DigestUpdate(ctx, "\n", 1);
		i = run + (e ? e : 1);
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	memcpy(id->body, md, sizeof(id->body));
	id->size = whole && body ? 0 : size;
}

void identity_tail_as_stored(const char *tail, size_t n, struct fleet_buf *out, size_t *skip)
{
	size_t i = n && tail[0] == '\n' ? 1 : 0;
	int at_eol = 0;

	*skip = i;
	while (i < n) {
		size_t e = eol_at(tail, i, n);

		if (bare_cr(tail, i, n)) {
			i++; /* dropped */
		} else if (e) {
			fleet_buf_add(out, "\r\n", 2);
			i += e;
			at_eol = 1;
		} else {
			fleet_buf_add(out, tail + i, 1);
			i++;
			at_eol = 0;
		}
	}
	if (n > *skip && !at_eol)
		fleet_buf_add(out, "\r\n", 2);
}

static int ident_key_cmp(const struct msg_ident *x, const struct msg_ident *y)
{
	if (x->size != y->size)
		return FLEET_CMP(x->size, y->size);
	if (x->date != y->date)
		return FLEET_CMP(x->date, y->date);
	if (memcmp(x->hdr, y->hdr, sizeof(x->hdr)) != 0)
		return memcmp(x->hdr, y->hdr, sizeof(x->hdr));
	return memcmp(x->body, y->body, sizeof(x->body));
}

/* The identity, then the UID. */
static int ident_cmp(const void *a, const void *b)
{
	const struct msg_ident *x = a, *y = b;
	int c = ident_key_cmp(x, y);

	return c ? c : FLEET_CMP(x->uid, y->uid);
}

/* End of the run of entries with v[from]'s identity. */
static size_t group_end(const struct msg_ident *v, size_t n, size_t from)
{
	size_t k = from + 1;

	while (k < n && ident_key_cmp(&v[from], &v[k]) == 0)
		k++;
	return k;
}

/* The identity without its size: a destination copy with every line end rewritten has the
 * source's date, header fields and body (prefix) but more bytes. */
static int ident_nosize_cmp(const struct msg_ident *x, const struct msg_ident *y)
{
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	if (memcmp(x->hdr, y->hdr, sizeof(x->hdr)) != 0)
		return memcmp(x->hdr, y->hdr, sizeof(x->hdr));
	return memcmp(x->body, y->body, sizeof(x->body));
}

/* Destination entries by identity without the size, then by size (an index into dst). */
static int by_nosize_cmp(const void *a, const void *b)
{
	const struct msg_ident *x = *(const struct msg_ident *const *)a, *y = *(const struct msg_ident *const *)b;
	int c = ident_nosize_cmp(x, y);

	if (c)
		return c;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* First index entry with s's identity, whatever its size, or n. */
static size_t nosize_group(const struct msg_ident *s, const struct msg_ident *const *idx, size_t n)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ident_nosize_cmp(idx[mid], s) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && ident_nosize_cmp(idx[lo], s) == 0 ? lo : n;
}

size_t identity_match(struct msg_ident *src, size_t nsrc, struct msg_ident *dst, size_t ndst, uint32_t *matched,
		      identity_pad_fn pad, void *pad_ctx, struct identity_tally *tally)
{
	struct identity_tally t = {0};
	uint8_t *used = xcalloc(ndst ? ndst : 1, 1);
	size_t i = 0, j = 0, n = 0;

	if (nsrc)
		qsort(src, nsrc, sizeof(*src), ident_cmp);
	if (ndst)
		qsort(dst, ndst, sizeof(*dst), ident_cmp);
	for (size_t k = 0; k < nsrc; k++)
		matched[k] = 0;
	/* Groups of one identity on both sides, each sorted by UID. */
	while (i < nsrc) {
		size_t ie = group_end(src, nsrc, i), je;
		int c = 1;

		while (j < ndst && (c = ident_key_cmp(&src[i], &dst[j])) > 0)
			j++;
		if (j >= ndst || c < 0) {
			i = ie;
			continue;
		}
		je = group_end(dst, ndst, j);
		/* A weak identity (no Message-ID, body known by its prefix) with exactly as many
		 * candidates as look-alikes is matched: copying it again would duplicate it on every
		 * pass without state. More candidates than look-alikes is a guess either way. */
		if (je - j > ie - i) {
			if (identity_is_weak(&src[i]))
				t.weak += ie - i;
			else
				t.ambiguous += ie - i;
		} else {
			for (size_t k = 0; k < je - j; k++) {
				matched[i + k] = dst[j + k].uid;
				used[j + k] = 1;
				n++;
			}
		}
		i = ie;
		j = je;
	}
	/* A destination copy of another size than a long source message: the line ends a server
	 * rewrote (Courier: every bare LF written CRLF, +1 byte each, every bare CR dropped, -1 each,
	 * and a CRLF added at the end, +2), at most 2 * size + 2 bytes. Matched only between one source message and one candidate, and
	 * only when the caller's comparison of the bytes says so (for a weak identity, of the whole
	 * messages: identity_pad_fn). */
	if (pad && ndst) {
		const struct msg_ident **idx = xcalloc(ndst, sizeof(*idx));

		for (size_t k = 0; k < ndst; k++)
			idx[k] = &dst[k];
		qsort(idx, ndst, sizeof(*idx), by_nosize_cmp);
		for (i = 0; i < nsrc; i = group_end(src, nsrc, i)) {
			size_t ie = group_end(src, nsrc, i), nfree = 0, g;
			const struct msg_ident *pick = NULL;

			if (src[i].size == 0 || matched[i])
				continue;
			g = nosize_group(&src[i], idx, ndst);
			for (size_t k = g; k < ndst && ident_nosize_cmp(idx[k], &src[i]) == 0 &&
					   idx[k]->size <= 2 * src[i].size + 2;
			     k++)
				if (idx[k]->size && idx[k]->size != src[i].size && !used[idx[k] - dst]) {
					nfree++;
					pick = idx[k];
				}
			if (!nfree)
				continue;
			if (ie - i != 1 || nfree != 1) {
				if (identity_is_weak(&src[i]))
					t.weak += ie - i;
				else
					t.ambiguous += ie - i;
				continue;
			}
			if (pad(pad_ctx, &src[i], pick) == 1) {
				matched[i] = pick->uid;
				used[pick - dst] = 1;
				t.padded++;
				n++;
			}
		}
		xfree(&idx);
	}
	xfree(&used);
	if (tally)
		*tally = t;
	return n;
}

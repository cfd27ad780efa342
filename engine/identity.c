#include "engine/identity.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/util.h"

static int month_index(const char *m)
{
	static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
					     "jul", "aug", "sep", "oct", "nov", "dec"};

	for (int i = 0; i < 12; i++)
		if (fleet_strncaseeq(m, months[i], 3))
			return i;
	return -1;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), after Howard Hinnant's algorithm. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	return fleet_parse_u64n(s, n, 0, max, out);
}

int identity_parse_internaldate(const char *s, int64_t *epoch)
{
	/* dd-Mon-yyyy hh:mm:ss +zzzz, day may be " d" */
	uint64_t day, year, hh, mm, ss, zh, zm;
	const char *p = s;
	size_t dlen;
	int mon, sign;

	if (!s)
		return -1;
	if (*p == ' ')
		p++;
	if (!p[0] || !p[1])
		return -1;
	dlen = (p[1] == '-') ? 1 : 2;
	if (digits(p, dlen, 31, &day) < 0 || p[dlen] != '-')
		return -1;
	p += dlen + 1;
	if (strlen(p) < 3 || (mon = month_index(p)) < 0 || p[3] != '-')
		return -1;
	p += 4;
	if (strlen(p) < 19 || digits(p, 4, 9999, &year) < 0 || p[4] != ' ' || digits(p + 5, 2, 23, &hh) < 0 ||
	    p[7] != ':' || digits(p + 8, 2, 59, &mm) < 0 || p[10] != ':' || digits(p + 11, 2, 60, &ss) < 0 ||
	    p[13] != ' ' || (p[14] != '+' && p[14] != '-') || digits(p + 15, 2, 99, &zh) < 0 ||
	    digits(p + 17, 2, 59, &zm) < 0)
		return -1;
	sign = p[14] == '-' ? -1 : 1;
	*epoch = days_from_civil((int64_t)year, (unsigned)mon + 1, (unsigned)day) * 86400 + (int64_t)(hh * 3600 + mm * 60 + ss) -
		 sign * (int64_t)(zh * 3600 + zm * 60);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void identity_header_hash(const char *hdr, size_t len, uint8_t out[16])
{
	struct fleet_buf field = FLEET_BUF_INIT(1 << 20);
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
			fleet_buf_append(&field, " ", 1);
		} else if (field.len) {
			fields = xgrow(fields, sizeof(*fields), nfields + 1, &alloc);
			fields[nfields++] = fleet_buf_detach(&field, NULL);
			fleet_buf_init(&field, 1 << 20);
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
			fleet_buf_append(&field, &c, 1);
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
	memcpy(out, md, 16);
}

static int ident_cmp(const void *a, const void *b)
{
	const struct msg_ident *x = a, *y = b;
	int c;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	c = memcmp(x->hdr, y->hdr, sizeof(x->hdr));
	if (c)
		return c;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int ident_key_cmp(const struct msg_ident *x, const struct msg_ident *y)
{
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return memcmp(x->hdr, y->hdr, sizeof(x->hdr));
}

size_t identity_match(struct msg_ident *src, size_t nsrc, struct msg_ident *dst, size_t ndst, uint32_t *matched)
{
	size_t i = 0, j = 0, n = 0;

	if (nsrc)
		qsort(src, nsrc, sizeof(*src), ident_cmp);
	if (ndst)
		qsort(dst, ndst, sizeof(*dst), ident_cmp);
	for (size_t k = 0; k < nsrc; k++)
		matched[k] = 0;
	while (i < nsrc && j < ndst) {
		int c = ident_key_cmp(&src[i], &dst[j]);

		if (c == 0) {
			matched[i++] = dst[j++].uid;
			n++;
		} else if (c < 0) {
			i++;
		} else {
			j++;
		}
	}
	return n;
}

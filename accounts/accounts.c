/* accounts/accounts.c: the accounts-file importer (see accounts.h and docs/accounts-file.md).
 *
 * CSV goes through libcsv in strict mode, fed one physical line at a time: rows can only end at
 * the end of a chunk, so the line a row starts on and the line a quoted field opens on are known
 * without looking inside the parser beyond its public `quoted` member. A quoting error drops the
 * row it happens in and parsing starts again on the next line; an unterminated quote starts again
 * on the line after the one the quote opened on, so one stray quote does not swallow the rows
 * after it. file.txt is split by hand: it has no quoting at all.
 */
#include "accounts/accounts.h"

#include <ctype.h>
#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/escape.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/util.h"
#include "engine/engine.h"

/* Columns: nine per side, then options. COL(side, kind) with side 0 or 1. */
enum col_kind {
	K_HOST,
	K_PORT,
	K_USER,
	K_PASSWORD,
	K_PASSFILE,
	K_AUTHUSER,
	K_TLS,
	K_CAFILE,
	K_INSECURE,
	K_AUTH,	     /* password (default), xoauth2, oauthbearer */
	K_TOKEN,     /* inline OAuth token (discouraged, like inline passwords) */
	K_TOKENFILE, /* re-read on every login */
	K_TOKENCMD,  /* a command printing a fresh token */
	K_PASSCMD,   /* a command printing the password */
	K_N
};
#define COL(side, kind) ((side)*K_N + (kind))
#define COL_OPTIONS	(2 * K_N)
#define COL_COUNT	(COL_OPTIONS + 1)

static const char *const col_names[COL_COUNT] = {
    "host1",	 "port1",     "user1",	 "password1", "passfile1", "authuser1", "tls1",
    "cafile1",	 "insecure1", "auth1",	 "token1",    "tokenfile1", "tokencmd1", "passcmd1",
    "host2",	 "port2",     "user2",	 "password2", "passfile2", "authuser2", "tls2",
    "cafile2",	 "insecure2", "auth2",	 "token2",    "tokenfile2", "tokencmd2", "passcmd2",
    "options",
};

/* file.txt fields in order. */
static const int filetxt_cols[6] = {
    COL(0, K_HOST), COL(0, K_USER), COL(0, K_PASSWORD), COL(1, K_HOST), COL(1, K_USER), COL(1, K_PASSWORD),
};

struct accounts_file {
	enum accounts_format format;
	struct account_row *rows;
	size_t nrows, rows_alloc;
	struct accounts_error *errors;
	size_t nerrors, errors_alloc;
};

struct dup_slot {
	char *key; /* borrowed from the row or owned (see dup_owned) */
	unsigned line;
	int owned;
};

struct parse {
	struct accounts_file *af;
	const char *name;
	const char *base_dir;
	unsigned flags;
	struct fleet_err *err;
	int fatal;
	int inline_passwords; /* some row carried a password column value */
	size_t bad_rows;

	/* CSV header */
	char delim; /* ',' or ';' (what spreadsheets write in locales with a decimal comma) */
	int have_header;
	unsigned header_line;
	char *hnames[ACCOUNTS_HEADER_MAX];
	size_t nhnames;
	int too_many_columns;
	int hcol[ACCOUNTS_HEADER_MAX]; /* header index -> column */
	size_t nhcol;

	/* current row */
	unsigned row_line; /* 0: no row in progress */
	size_t nfields;	   /* fields submitted in this row */
	size_t nonempty;
	size_t fields_total; /* fields submitted since the start (CSV quote tracking) */
	int row_bad;
	char *vals[COL_COUNT];

	/* duplicate detection: open addressing over keys */
	struct dup_slot *dups;
	size_t ndups, dups_cap;
};

/* ---- small helpers ----------------------------------------------------------------------------- */

static int is_blank_byte(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_blank_byte((unsigned char)s[i]))
			return 0;
	return 1;
}

/* The physical line at pos: [pos, *content_end) without its terminator; returns where the next
 * line starts. CRLF, LF and lone CR each end a line. */
static size_t line_bounds(const char *data, size_t len, size_t pos, size_t *content_end)
{
	size_t i = pos;

	while (i < len && data[i] != '\n' && data[i] != '\r')
		i++;
	*content_end = i;
	if (i < len && data[i] == '\r')
		i++;
	if (i < len && data[i] == '\n' && (i == *content_end || data[i - 1] == '\r'))
		i++;
	return i;
}

static void trim_span(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

static void wipe_free(char **p)
{
	if (*p) {
		OPENSSL_cleanse(*p, strlen(*p));
		xfree(p);
	}
}

/* A secret this module registered for redaction: its reference goes, then the copy is wiped (the
 * redaction table wipes its own copy when the last reference goes). */
static void secret_free(char **p)
{
	if (*p)
		fleet_log_remove_secret(*p);
	wipe_free(p);
}

static int col_is_secret(int col)
{
	return col == COL(0, K_PASSWORD) || col == COL(1, K_PASSWORD) || col == COL(0, K_TOKEN) ||
	       col == COL(1, K_TOKEN);
}

/* Copies a value for a message: at most max bytes, control bytes as '?', "..." when cut. */
static void show_value(char *out, size_t cap, const char *v, size_t max)
{
	size_t o = 0, i;

	for (i = 0; v[i] && i < max && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)v[i];

		out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (v[i] && o + 4 < cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static int col_from_name(const char *s, size_t n)
{
	for (int c = 0; c < COL_COUNT; c++)
		if (strlen(col_names[c]) == n && fleet_strncaseeq(s, col_names[c], n))
			return c;
	return -1;
}

static void known_columns(char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (int c = 0; c < COL_COUNT && o < cap; c++) {
		int n = snprintf(out + o, cap - o, "%s%s", c ? ", " : "", col_names[c]);

		if (n < 0)
			break;
		o += (size_t)n;
	}
}

/* ---- errors ------------------------------------------------------------------------------------ */

static void add_error(struct parse *p, unsigned line, unsigned other_line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void add_error(struct parse *p, unsigned line, unsigned other_line, int col, const char *fmt, ...)
{
	struct accounts_file *af = p->af;
	char text[ACCOUNTS_MESSAGE_MAX];
	struct accounts_error *e;
	va_list ap;
	int n;

	if (col >= 0)
		n = snprintf(text, sizeof(text), "%s:%u: field %s: ", p->name, line, col_names[col]);
	else
		n = snprintf(text, sizeof(text), "%s:%u: ", p->name, line);
	if (n < 0 || (size_t)n >= sizeof(text))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
	va_end(ap);
	fleet_log_scrub(text, sizeof(text));

	af->errors = xgrow(af->errors, sizeof(*af->errors), af->nerrors + 1, &af->errors_alloc);
	e = &af->errors[af->nerrors++];
	e->line = line;
	e->other_line = other_line;
	e->field = col >= 0 ? col_names[col] : NULL;
	e->message = xstrdup(text);
	p->row_bad = 1;
}

static int set_fatal(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int set_fatal(struct parse *p, const char *fmt, ...)
{
	char text[FLEET_ERR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fleet_err_set(p->err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, ACCOUNTS_ERR_FILE, "%s", text);
	p->fatal = 1;
	return -1;
}

/* ---- rows -------------------------------------------------------------------------------------- */

#define NNAMES(names) (sizeof(names) / sizeof((names)[0]))
static const char *const auth_names[] = {
	[ACCOUNTS_AUTH_PASSWORD] = "password", [ACCOUNTS_AUTH_XOAUTH2] = "xoauth2",
	[ACCOUNTS_AUTH_OAUTHBEARER] = "oauthbearer"};
static const char *const tls_names[] = {
	[ACCOUNTS_TLS_SSL] = "ssl", [ACCOUNTS_TLS_STARTTLS] = "tls", [ACCOUNTS_TLS_PLAIN] = "plain"};

/* Whether the row's options name tenant credentials for side s (--oauth1 / --oauth2). */
static int row_has_tenant_auth(char **v_options, int s)
{
	const char *o = *v_options;
	const char *want = s ? "--oauth2" : "--oauth1";
	const char *hit = o ? strstr(o, want) : NULL;

	return hit && (hit == o || hit[-1] == ' ' || hit[-1] == '\t') &&
	       (hit[8] == ' ' || hit[8] == '\t' || hit[8] == '=' || hit[8] == '\0');
}


static void side_release(struct account_side *s)
{
	xfree(&s->host);
	xfree(&s->user);
	secret_free(&s->password);
	xfree(&s->passfile);
	xfree(&s->authuser);
	xfree(&s->cafile);
	wipe_free(&s->token);
	xfree(&s->tokenfile);
	xfree(&s->tokencmd);
	xfree(&s->passcmd);
}

static void row_release(struct account_row *row)
{
	side_release(&row->side[0]);
	side_release(&row->side[1]);
	accounts_free_args(&row->argv);
	row->argc = 0;
	xfree(&row->key);
}

static void reset_row(struct parse *p)
{
	for (int c = 0; c < COL_COUNT; c++) {
		if (col_is_secret(c))
			secret_free(&p->vals[c]);
		else
			xfree(&p->vals[c]);
	}
	p->row_line = 0;
	p->nfields = 0;
	p->nonempty = 0;
	p->row_bad = 0;
}

/* Stores one field of the current row (trimmed, except passwords). */
static void store_value(struct parse *p, int col, const char *s, size_t n)
{
	if (memchr(s, '\0', n)) {
		add_error(p, p->row_line, 0, col, "contains a NUL byte; remove it");
		return;
	}
	if (!col_is_secret(col))
		trim_span(&s, &n);
	if (n == 0)
		return;
	p->nonempty++;
	/* Host and user names, paths and options are stored and shown as text: bytes that are not
	 * UTF-8 (a Latin-1 export) would reach the server and the state as something else. A password
	 * is sent as the bytes it is. */
	if (!col_is_secret(col) && !fleet_utf8_valid(s, n)) {
		char shown[160];
		size_t at = 0;

		while (at < n && fleet_utf8_seq(s + at, n - at))
			at += fleet_utf8_seq(s + at, n - at);
		fleet_escape_term_into(shown, sizeof(shown), s, n < 100 ? n : 100);
		add_error(p, p->row_line, 0, col,
			  "\"%s\" is not valid UTF-8 (byte 0x%02X at offset %zu); save the file as UTF-8", shown,
			  (unsigned char)s[at], at);
		return;
	}
	if (n > ACCOUNTS_FIELD_MAX) {
		add_error(p, p->row_line, 0, col, "is longer than %d bytes; shorten it", ACCOUNTS_FIELD_MAX);
		return;
	}
	if (col_is_secret(col))
		secret_free(&p->vals[col]);
	else
		xfree(&p->vals[col]);
	p->vals[col] = xstrndup(s, n);
	if (col_is_secret(col)) {
		/* Registered before anything else can format it into a line. */
		fleet_log_add_secret(p->vals[col]);
		p->inline_passwords = 1;
	}
}

static char *resolve_path(const struct parse *p, const char *v)
{
	if (v[0] == '/' || !p->base_dir || !p->base_dir[0] || strcmp(p->base_dir, ".") == 0)
		return xstrdup(v);
	return xasprintf("%s/%s", p->base_dir, v);
}

/* Checks that a passfile/cafile exists as a readable regular file. */
static void check_readable(struct parse *p, int col, const char *path)
{
	char shown[256], why[512];
	struct stat st;

	if (p->flags & ACCOUNTS_NO_FS_CHECKS)
		return;
	show_value(shown, sizeof(shown), path, 200);
	if (access(path, R_OK) != 0)
		add_error(p, p->row_line, 0, col, "cannot read \"%s\": %s; create it or fix the path", shown,
			  strerror(errno));
	else if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		add_error(p, p->row_line, 0, col, "\"%s\" is not a regular file; fix the path", shown);
	else if ((col == COL(0, K_PASSFILE) || col == COL(1, K_PASSFILE)) &&
		 fleet_passfile_check(path, ACCOUNTS_PASSFILE_MAX, why, sizeof(why)) < 0)
		add_error(p, p->row_line, 0, col, "%s", why);
}

static int host_ok(struct parse *p, int col, const char *h)
{
	char shown[64];
	size_t colons = 0;

	show_value(shown, sizeof(shown), h, 40);
	if (strlen(h) > ACCOUNTS_HOST_MAX)
		add_error(p, p->row_line, 0, col, "is longer than %d bytes; a host name cannot be",
			  ACCOUNTS_HOST_MAX);
	else if (strchr(h, '@'))
		add_error(p, p->row_line, 0, col,
			  "\"%s\" looks like a user name, not a host; check the column order", shown);
	else {
		for (const char *q = h; *q; q++) {
			unsigned char c = (unsigned char)*q;

			if (c <= 0x20 || c == 0x7f || c == '/' || c == '\\') {
				add_error(p, p->row_line, 0, col,
					  "\"%s\" is not a host name; fix the row or remove it", shown);
				return 0;
			}
			colons += c == ':';
		}
		if (colons != 1)
			return 1;
		if (p->af->format == ACCOUNTS_FORMAT_FILETXT) {
			/* file.txt has no port field: say it in file.txt's terms (imapsync users write
			 * host:port there, which imapsync never accepted either). */
			const char *port = strchr(h, ':') + 1;
			int ndigits = (int)strspn(port, "0123456789");

			add_error(p, p->row_line, 0, col,
				  "\"%s\" holds a port, and file.txt has no port field: write the host alone and "
				  "put --port%d %.*s in the row's extra fields (after the sixth field)",
				  shown, col < K_N ? 1 : 2, ndigits ? ndigits : 1, ndigits ? port : "N");
		} else {
			add_error(p, p->row_line, 0, col, "\"%s\" holds a port; put the port in the port%d column",
				  shown, col < K_N ? 1 : 2);
		}
	}
	return 0;
}

static int user_ok(struct parse *p, int col, const char *u)
{
	if (strlen(u) > ACCOUNTS_USER_MAX) {
		add_error(p, p->row_line, 0, col, "is longer than %d bytes; fix the row or remove it",
			  ACCOUNTS_USER_MAX);
		return 0;
	}
	for (const char *q = u; *q; q++) {
		if ((unsigned char)*q < 0x20 || *q == 0x7f) {
			add_error(p, p->row_line, 0, col,
				  "contains a control character; fix the row or remove it");
			return 0;
		}
	}
	return 1;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = {"1", "yes", "true", "on"};
	static const char *const no[] = {"0", "no", "false", "off"};

	for (size_t i = 0; i < 4; i++) {
		if (fleet_strcaseeq(v, yes[i])) {
			*out = 1;
			return 0;
		}
		if (fleet_strcaseeq(v, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static void key_append(struct fleet_buf *b, const char *s, int lower)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c == 0x7f || c == '%' || c == ':' || c == '/' || c == '>') {
			fleet_buf_addf(b, "%%%02X", c);
		} else {
			if (lower && c >= 'A' && c <= 'Z')
				c = (unsigned char)(c - 'A' + 'a');
			fleet_buf_add(b, &c, 1);
		}
	}
}

_Static_assert(2 * (3 * (ACCOUNTS_HOST_MAX + ACCOUNTS_USER_MAX) + 8) + 4 < ACCOUNTS_KEY_MAX,
	       "an account's key always fits ACCOUNTS_KEY_MAX");
/* The host and user names were checked against ACCOUNTS_HOST_MAX and ACCOUNTS_USER_MAX: the key
 * always fits (the assertion above). */
static char *make_key(const char *h1, unsigned p1, const char *u1, const char *h2, unsigned p2,
		      const char *u2)
{
	struct fleet_buf b = FLEET_BUF_INIT(ACCOUNTS_KEY_MAX);

	key_append(&b, h1, 1);
	fleet_buf_addf(&b, ":%u/", p1);
	key_append(&b, u1, 0);
	fleet_buf_add_str(&b, " -> ");
	key_append(&b, h2, 1);
	fleet_buf_addf(&b, ":%u/", p2);
	key_append(&b, u2, 0);
	return fleet_buf_detach(&b, NULL);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* Returns the line of an earlier row with this key, or records it and returns 0. Takes
 * ownership of key when owned is set. */
static unsigned dup_check(struct parse *p, char *key, int owned, unsigned line)
{
	size_t mask, i;

	if ((p->ndups + 1) * 2 > p->dups_cap) {
		size_t ncap = p->dups_cap ? p->dups_cap * 2 : 1024;
		struct dup_slot *n = xcalloc(ncap, sizeof(*n));

		for (size_t j = 0; j < p->dups_cap; j++) {
			if (!p->dups[j].key)
				continue;
			for (i = hash_str(p->dups[j].key) & (ncap - 1); n[i].key; i = (i + 1) & (ncap - 1))
				;
			n[i] = p->dups[j];
		}
		xfree(&p->dups);
		p->dups = n;
		p->dups_cap = ncap;
	}
	mask = p->dups_cap - 1;
	for (i = hash_str(key) & mask; p->dups[i].key; i = (i + 1) & mask) {
		if (strcmp(p->dups[i].key, key) == 0) {
			if (owned)
				xfree(&key);
			return p->dups[i].line;
		}
	}
	p->dups[i].key = key;
	p->dups[i].line = line;
	p->dups[i].owned = owned;
	p->ndups++;
	return 0;
}

static void dups_release(struct parse *p)
{
	for (size_t i = 0; i < p->dups_cap; i++)
		if (p->dups[i].owned)
			xfree(&p->dups[i].key);
	xfree(&p->dups);
	p->dups_cap = p->ndups = 0;
}

/* Validates p->vals as one row and keeps it when good. Values move into the row. */
/* The ids of the side settings (the tables are at the end of this file). */
static const struct fleet_optset *side_sets(size_t *n);
enum {
	AS_HOST = 1, AS_PORT, AS_USER, AS_PASSFILE, AS_PASSWORD, AS_TOKENFILE, AS_TOKENCMD, AS_PASSCMD,
	AS_SSL, AS_TLS, AS_PLAIN, AS_INSECURE, AS_CAFILE, AS_AUTHUSER, AS_AUTHMECH, AS_OAUTH, AS_TENANT,
	AS_CLIENT_ID, AS_CLIENT_SECRET_FILE, AS_CLIENT_CERT, AS_SERVICE_ACCOUNT, AS_TOKEN_URL,
};

/* imapsync's per-side options in the options column (file.txt's extra fields): --port1 993,
 * --ssl2, --tls1, --notls2, --authuser1 admin ... They say where the account is, so they belong to
 * the row (and its key), not to the engine: taken out of argv here. */
static void take_side_options(struct parse *p, struct account_row *row)
{
	size_t nsets;
	const struct fleet_optset *sets = side_sets(&nsets);
	int out = 0;

	if (!row->argv)
		return; /* the options did not split: already reported */

	for (int i = 0; i < row->argc; i++) {
		char *a = row->argv[i];
		int s, has_value = i + 1 < row->argc;
		const struct fleet_opt *o = strchr(a, '=') ? NULL : fleet_opt_find(sets, nsets, FLEET_OPT_TWO_SIDES, a, &s, NULL);
		struct account_side *sd;
		uint64_t port;

		if (!o || s < 0) {
			row->argv[out++] = a;
			continue;
		}
		sd = &row->side[s];
		if (o->id == AS_PORT) {
			if (!has_value || fleet_parse_u64(row->argv[i + 1], 1, 65535, &port) != 0) {
				add_error(p, p->row_line, 0, COL_OPTIONS, "%s needs a port (1-65535); fix the row", a);
				row->argv[out++] = a;
				continue;
			}
			sd->port = (unsigned)port;
			if (sd->port == IO_PORT_IMAP && sd->tls == ACCOUNTS_TLS_SSL)
				sd->tls = ACCOUNTS_TLS_STARTTLS;
			xfree(&row->argv[++i]);
		} else if (o->id == AS_AUTHUSER && has_value && !sd->authuser) {
			sd->authuser = row->argv[++i]; /* ownership moves to the side */
			row->argv[i] = NULL;
		} else if (o->id == AS_SSL) {
			sd->tls = ACCOUNTS_TLS_SSL;
		} else if (o->id == AS_TLS) {
			sd->tls = ACCOUNTS_TLS_STARTTLS;
		} else if (o->id == AS_PLAIN) {
			sd->tls = ACCOUNTS_TLS_PLAIN;
		} else {
			row->argv[out++] = a;
			continue;
		}
		xfree(&a);
	}
	row->argc = out;
	row->argv[out] = NULL;
}

/* One way to get each side's secret: password, passfile, passcmd (a password), token, tokenfile,
 * tokencmd (an OAuth token), or none when tenant credentials (--oauth1/2) give the tokens. The auth
 * column must agree with it. */
static void check_secret_source(struct parse *p, int s, char **v, struct account_side *sd)
{
	static const int kinds[] = {K_PASSWORD, K_PASSFILE, K_PASSCMD, K_TOKEN, K_TOKENFILE, K_TOKENCMD};
	int n = 0, first = -1, second = -1, auth;
	int tenant = (p->flags & (s ? ACCOUNTS_TENANT_AUTH2 : ACCOUNTS_TENANT_AUTH1)) ||
		     row_has_tenant_auth(&p->vals[COL_OPTIONS], s);
	int token = v[K_TOKEN] || v[K_TOKENFILE] || v[K_TOKENCMD];
	char shown[64];

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (v[kinds[k]]) {
			if (n == 0)
				first = kinds[k];
			else if (n == 1)
				second = kinds[k];
			n++;
		}
	auth = v[K_AUTH] ? fleet_name_index(v[K_AUTH], auth_names, NNAMES(auth_names)) : (int)sd->auth;
	if (auth < 0) {
		show_value(shown, sizeof(shown), v[K_AUTH], 40);
		add_error(p, p->row_line, 0, COL(s, K_AUTH),
			  "\"%s\" is not password, xoauth2 or oauthbearer; fix the row or remove it", shown);
		return;
	}
	sd->auth = (enum accounts_auth)auth;
	if (n > 1) {
		add_error(p, p->row_line, 0, COL(s, second), "both %s and %s are set; keep only one",
			  col_names[COL(s, first)], col_names[COL(s, second)]);
		return;
	}
	if (n == 0 && !tenant) {
		add_error(p, p->row_line, 0, COL(s, K_PASSWORD),
			  "no password%d, passfile%d, passcmd%d, token%d, tokenfile%d or tokencmd%d; give one of "
			  "them (or tenant credentials with --oauth%d)",
			  s + 1, s + 1, s + 1, s + 1, s + 1, s + 1, s + 1);
		return;
	}
	if (sd->auth == ACCOUNTS_AUTH_PASSWORD && token)
		add_error(p, p->row_line, 0, COL(s, K_AUTH),
			  "auth%d is password but the row gives %s; set auth%d to xoauth2 or oauthbearer", s + 1,
			  col_names[COL(s, first)], s + 1);
	else if ((sd->auth == ACCOUNTS_AUTH_XOAUTH2 || sd->auth == ACCOUNTS_AUTH_OAUTHBEARER) && n == 1 && !token)
		add_error(p, p->row_line, 0, COL(s, K_AUTH),
			  "auth%d is %s but the row gives %s; give token%d, tokenfile%d or tokencmd%d", s + 1,
			  v[K_AUTH], col_names[COL(s, first)], s + 1, s + 1, s + 1);
	if (v[K_TOKENCMD] || v[K_PASSCMD]) {
		int kind = v[K_TOKENCMD] ? K_TOKENCMD : K_PASSCMD;
		char why[160];
		int argc = 0;
		char **argv = NULL;

		if (accounts_split_args(v[kind], &argc, &argv, why, sizeof(why)) != 0)
			add_error(p, p->row_line, 0, COL(s, kind), "%s; fix the quoting", why);
		else if (argc == 0)
			add_error(p, p->row_line, 0, COL(s, kind), "the command is empty");
		accounts_free_args(&argv);
	}
}

/* A field the row must have, checked by ok when it is there: 1 good, 0 missing or bad (said). */
static int required_ok(struct parse *p, int col, const char *v, int (*ok)(struct parse *, int, const char *))
{
	if (!v) {
		add_error(p, p->row_line, 0, col, "no value; fill it in or remove the row");
		return 0;
	}
	return ok(p, col, v);
}

/* *v, which the caller now owns; *v is NULL. */
static char *take(char **v)
{
	char *t = *v;

	*v = NULL;
	return t;
}

/* Ends the current row: validates it unless it is empty or already known to be bad. */
static void build_row(struct parse *p)
{
	struct account_row row;
	int key_ok = 1;
	char shown[64];

	memset(&row, 0, sizeof(row));
	row.line = p->row_line;
	for (int s = 0; s < 2; s++) {
		struct account_side *sd = &row.side[s];
		char **v = &p->vals[COL(s, 0)];
		uint64_t port = 0;
		int tls_given = 0;

		if (!required_ok(p, COL(s, K_HOST), v[K_HOST], host_ok))
			key_ok = 0;
		if (!required_ok(p, COL(s, K_USER), v[K_USER], user_ok))
			key_ok = 0;
		if (v[K_PORT] && fleet_parse_u64(v[K_PORT], 1, 65535, &port) != 0) {
			show_value(shown, sizeof(shown), v[K_PORT], 40);
			add_error(p, p->row_line, 0, COL(s, K_PORT),
				  "\"%s\" is not a port (1-65535); fix the row or remove it", shown);
			key_ok = 0;
		}
		if (v[K_TLS]) {
			int tls = fleet_name_index(v[K_TLS], tls_names, NNAMES(tls_names));

			if (tls >= 0) {
				sd->tls = (enum accounts_tls)tls;
				tls_given = 1;
			} else {
				show_value(shown, sizeof(shown), v[K_TLS], 40);
				add_error(
				    p, p->row_line, 0, COL(s, K_TLS),
				    "\"%s\" is not a TLS mode (ssl, tls or plain); fix the row or remove it",
				    shown);
			}
		}
		check_secret_source(p, s, v, sd);
		if (v[K_AUTHUSER])
			user_ok(p, COL(s, K_AUTHUSER), v[K_AUTHUSER]);
		if (v[K_INSECURE] && parse_bool(v[K_INSECURE], &sd->insecure) != 0) {
			show_value(shown, sizeof(shown), v[K_INSECURE], 40);
			add_error(p, p->row_line, 0, COL(s, K_INSECURE),
				  "\"%s\" is not yes or no; fix the row or remove it", shown);
		}
		if (v[K_PASSFILE]) {
			sd->passfile = resolve_path(p, v[K_PASSFILE]);
			if (!v[K_PASSWORD])
				check_readable(p, COL(s, K_PASSFILE), sd->passfile);
		}
		if (v[K_TOKENFILE]) {
			/* Not checked now: an outside process may write it just before the login. */
			sd->tokenfile = resolve_path(p, v[K_TOKENFILE]);
		}
		if (v[K_CAFILE]) {
			sd->cafile = resolve_path(p, v[K_CAFILE]);
			check_readable(p, COL(s, K_CAFILE), sd->cafile);
		}

		/* Defaults: the port from the TLS mode, else the TLS mode from the port. */
		if (v[K_PORT] && port)
			sd->port = (unsigned)port;
		else if (tls_given)
			sd->port = sd->tls == ACCOUNTS_TLS_SSL ? IO_PORT_IMAPS : IO_PORT_IMAP;
		else
			sd->port = IO_PORT_IMAPS;
		if (!tls_given)
			sd->tls = sd->port == IO_PORT_IMAP ? ACCOUNTS_TLS_STARTTLS : ACCOUNTS_TLS_SSL;

		sd->host = take(&v[K_HOST]);
		sd->user = take(&v[K_USER]);
		sd->password = take(&v[K_PASSWORD]);
		sd->authuser = take(&v[K_AUTHUSER]);
		sd->token = take(&v[K_TOKEN]);
		sd->tokencmd = take(&v[K_TOKENCMD]);
		sd->passcmd = take(&v[K_PASSCMD]);
	}
	if (p->vals[COL_OPTIONS]) {
		char why[160];

		if (accounts_split_args(p->vals[COL_OPTIONS], &row.argc, &row.argv, why, sizeof(why)) != 0)
			add_error(p, p->row_line, 0, COL_OPTIONS, "%s; fix the quoting", why);
	} else {
		accounts_split_args("", &row.argc, &row.argv, NULL, 0);
	}
	take_side_options(p, &row);

	if (key_ok) {
		unsigned first;

		row.key = make_key(row.side[0].host, row.side[0].port, row.side[0].user, row.side[1].host,
				   row.side[1].port, row.side[1].user);
		/* A bad row still claims its pair (with its own copy of the key), so a later copy of
		 * it is reported too. A good row lends its key to the table. */
		if (p->row_bad)
			first = dup_check(p, xstrdup(row.key), 1, p->row_line);
		else
			first = dup_check(p, row.key, 0, p->row_line);
		if (first)
			add_error(p, p->row_line, first, -1,
				  "duplicate pair, same as line %u (%s); remove one of the rows", first,
				  row.key);
	}
	if (p->row_bad) {
		row_release(&row);
		return;
	}
	p->af->rows = xgrow(p->af->rows, sizeof(*p->af->rows), p->af->nrows + 1, &p->af->rows_alloc);
	p->af->rows[p->af->nrows++] = row;
}

static void end_row(struct parse *p)
{
	if (p->nonempty == 0 && !p->row_bad) {
		/* ",,,," or an all-blank row from a spreadsheet: nothing to import, nothing wrong. */
		reset_row(p);
		return;
	}
	if (!p->row_bad)
		build_row(p);
	if (p->row_bad)
		p->bad_rows++;
	reset_row(p);
}

/* ---- CSV --------------------------------------------------------------------------------------- */

static void csv_header_field(struct parse *p, const char *s, size_t n)
{
	if (p->nhnames >= ACCOUNTS_HEADER_MAX) {
		p->too_many_columns = 1;
		return;
	}
	trim_span(&s, &n);
	p->hnames[p->nhnames++] = xstrndup(s, n);
}

/* The known column nearest to an unknown name (case, '_', '-' and spaces ignored, then at most two
 * edits: "Password1", "pass_file1", "hots1"), or NULL. */
static const char *nearest_column(const char *h, size_t hl)
{
	char norm[64];
	size_t n = 0;
	const char *best = NULL;
	unsigned best_d = 3;

	for (size_t i = 0; i < hl && n < sizeof(norm) - 1; i++)
		if (h[i] != '_' && h[i] != '-' && h[i] != ' ')
			norm[n++] = (char)tolower((unsigned char)h[i]);
	norm[n] = '\0';
	for (int c = 0; c < COL_COUNT; c++) {
		const char *k = col_names[c];
		size_t kl = strlen(k);
		unsigned row[64], d;

		if (kl >= 63 || n >= 63)
			continue;
		/* Levenshtein distance, one row at a time. */
		for (size_t j = 0; j <= kl; j++)
			row[j] = (unsigned)j;
		for (size_t i = 1; i <= n; i++) {
			unsigned diag = row[0];

			row[0] = (unsigned)i;
			for (size_t j = 1; j <= kl; j++) {
				unsigned up = row[j], v = diag + (norm[i - 1] != k[j - 1]);

				if (up + 1 < v)
					v = up + 1;
				if (row[j - 1] + 1 < v)
					v = row[j - 1] + 1;
				diag = up;
				row[j] = v;
			}
		}
		d = row[kl];
		if (d < best_d) {
			best_d = d;
			best = k;
		}
	}
	return best;
}

static void csv_header_end(struct parse *p)
{
	char known[512];
	struct fleet_buf unknown = FLEET_BUF_INIT(ACCOUNTS_UNKNOWN_MAX);
	unsigned nunknown = 0;
	int seen[COL_COUNT];

	p->have_header = 1;
	p->header_line = p->row_line;
	if (p->too_many_columns) {
		set_fatal(
		    p,
		    "%s:%u: the header has more than %d columns; remove the columns imapfleet does not use",
		    p->name, p->header_line, ACCOUNTS_HEADER_MAX);
		return;
	}
	for (int c = 0; c < COL_COUNT; c++)
		seen[c] = -1;
	known_columns(known, sizeof(known));
	for (size_t i = 0; i < p->nhnames; i++) {
		const char *h = p->hnames[i];
		size_t hl = strlen(h);
		int c = col_from_name(h, hl);
		char shown[64];

		show_value(shown, sizeof(shown), h, 40);
		if (hl == 0) {
			set_fatal(p,
				  "%s:%u: column %zu of the header has no name; name it or remove the column",
				  p->name, p->header_line, i + 1);
			fleet_err_detail(p->err, "known columns: %s", known);
			fleet_buf_release(&unknown);
			return;
		}
		if (c < 0) {
			const char *near = nearest_column(h, hl);

			fleet_buf_addf(&unknown, "%s\"%s\"", nunknown++ ? ", " : "", shown);
			if (near)
				fleet_buf_addf(&unknown, " (did you mean %s?)", near);
			continue;
		}
		if (seen[c] >= 0) {
			set_fatal(p, "%s:%u: column %s appears twice (columns %d and %zu); remove one",
				  p->name, p->header_line, col_names[c], seen[c] + 1, i + 1);
			fleet_buf_release(&unknown);
			return;
		}
		seen[c] = (int)i;
		p->hcol[i] = c;
	}
	if (nunknown) {
		(void)fleet_buf_mark_cut(&unknown);
		set_fatal(p, "%s:%u: unknown column%s %s; rename %s to a known column or remove %s", p->name,
			  p->header_line, nunknown == 1 ? "" : "s", fleet_buf_cstr(&unknown), nunknown == 1 ? "it" : "each",
			  nunknown == 1 ? "it" : "them");
		fleet_err_detail(p->err, "known columns: %s", known);
		fleet_buf_release(&unknown);
		return;
	}
	fleet_buf_release(&unknown);
	p->nhcol = p->nhnames;
	for (int s = 0; s < 2; s++) {
		static const int required[] = {K_HOST, K_USER};

		for (size_t r = 0; r < 2; r++) {
			if (seen[COL(s, required[r])] < 0) {
				set_fatal(p, "%s:%u: the header has no column %s; add it", p->name,
					  p->header_line, col_names[COL(s, required[r])]);
				return;
			}
		}
		if (seen[COL(s, K_PASSWORD)] < 0 && seen[COL(s, K_PASSFILE)] < 0 && seen[COL(s, K_PASSCMD)] < 0 &&
		    seen[COL(s, K_TOKEN)] < 0 && seen[COL(s, K_TOKENFILE)] < 0 && seen[COL(s, K_TOKENCMD)] < 0 &&
		    !(p->flags & (s ? ACCOUNTS_TENANT_AUTH2 : ACCOUNTS_TENANT_AUTH1))) {
			set_fatal(p,
				  "%s:%u: the header has no password%d, passfile%d, passcmd%d, token%d, tokenfile%d or "
				  "tokencmd%d column; add one (or give --oauth%d for tenant credentials)",
				  p->name, p->header_line, s + 1, s + 1, s + 1, s + 1, s + 1, s + 1, s + 1);
			return;
		}
	}
}

static void csv_on_field(void *s, size_t n, void *data)
{
	struct parse *p = data;
	size_t idx = p->nfields++;

	p->fields_total++;
	if (p->fatal)
		return;
	if (!p->have_header) {
		csv_header_field(p, s, n);
		return;
	}
	if (idx < p->nhcol)
		store_value(p, p->hcol[idx], s, n);
	else if (n)
		p->nonempty++;
}

static void csv_on_row(int c, void *data)
{
	struct parse *p = data;

	(void)c;
	if (p->fatal)
		return;
	if (!p->have_header) {
		csv_header_end(p);
		reset_row(p);
		return;
	}
	if (p->nfields > p->nhcol && !p->row_bad) {
		add_error(
		    p, p->row_line, 0, -1,
		    "the row has %zu fields but the header has %zu columns; quote values that contain commas",
		    p->nfields, p->nhcol);
	}
	end_row(p);
}

static void csv_wipe_free(struct csv_parser *cp)
{
	if (cp->entry_buf)
		OPENSSL_cleanse(cp->entry_buf, cp->entry_size);
	csv_free(cp);
}

static int csv_field_col(const struct parse *p, size_t idx)
{
	return p->have_header && idx < p->nhcol ? p->hcol[idx] : -1;
}

/* Parses CSV from data[pos] (the header line, numbered line) to the end. */
static void parse_csv(struct parse *p, const char *data, size_t len, size_t pos, unsigned line)
{
	const unsigned char opts = CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL;
	unsigned resyncs = 0;
	struct csv_parser cp;

	for (;;) {
		int quote_open = 0;	 /* a quoted field is open at the end of the last chunk */
		unsigned quote_line = 0; /* the line it opened on */
		size_t quote_idx = 0;	 /* its index in the row */
		size_t quote_next = len; /* where the line after quote_line starts */

		csv_init(&cp, opts);
		csv_set_delim(&cp, p->delim);
		while (pos < len && !p->fatal) {
			size_t content_end, next = line_bounds(data, len, pos, &content_end);
			size_t chunk = next - pos, before = p->fields_total, n;

			if (p->row_line == 0 && !is_blank(data + pos, chunk))
				p->row_line = line;
			n = csv_parse(&cp, data + pos, chunk, csv_on_field, csv_on_row, p);
			if (n < chunk) {
				if (csv_error(&cp) != CSV_EPARSE) {
					set_fatal(p, "%s:%u: could not parse: %s", p->name, line,
						  csv_strerror(csv_error(&cp)));
					break;
				}
				if (!p->have_header) {
					set_fatal(
					    p, "%s:%u: the header has a stray quote (\"); fix the header row",
					    p->name, line);
					break;
				}
				if (line == p->row_line)
					add_error(
					    p, line, 0, csv_field_col(p, p->nfields),
					    "stray quote (\"); quote the whole field and double the quotes "
					    "inside (\"pa\"\"ss\"), then try again");
				else
					add_error(p, p->row_line, 0, csv_field_col(p, p->nfields),
						  "stray quote (\") on line %u; quote the whole field and "
						  "double the "
						  "quotes inside (\"pa\"\"ss\"), then try again",
						  line);
				p->bad_rows++;
				reset_row(p);
				csv_wipe_free(&cp);
				csv_init(&cp, opts);
				csv_set_delim(&cp, p->delim);
				quote_open = 0;
				pos = next;
				line++;
				continue;
			}
			if (cp.quoted) {
				if (!quote_open || p->fields_total != before) {
					quote_line = line;
					quote_idx = p->nfields;
					quote_next = next;
				}
				quote_open = 1;
			} else {
				quote_open = 0;
			}
			pos = next;
			line++;
		}
		if (p->fatal) {
			csv_wipe_free(&cp);
			return;
		}
		if (csv_fini(&cp, csv_on_field, csv_on_row, p) == 0 || p->fatal) {
			csv_wipe_free(&cp);
			return;
		}
		/* Unterminated quote: drop the row, start again on the line after the quote opened. */
		csv_wipe_free(&cp);
		if (!p->have_header) {
			set_fatal(p, "%s:%u: the header has a quote that is never closed; fix the header row",
				  p->name, quote_line);
			return;
		}
		add_error(p, quote_line ? quote_line : p->row_line, 0, csv_field_col(p, quote_idx),
			  "the quoted value that starts here is never closed; add the closing quote (\") or "
			  "double the quote inside the value");
		p->bad_rows++;
		reset_row(p);
		if (++resyncs > ACCOUNTS_RESYNC_MAX || !quote_line) {
			add_error(p, quote_line, 0, -1,
				  "too many unclosed quotes; fix the quoting and try again");
			return;
		}
		pos = quote_next;
		line = quote_line + 1;
	}
}

/* ---- file.txt ---------------------------------------------------------------------------------- */

static int is_comment(const char *s, size_t n)
{
	trim_span(&s, &n);
	return n > 0 && s[0] == '#';
}

static void parse_filetxt(struct parse *p, const char *data, size_t len, size_t pos, unsigned line)
{
	while (pos < len) {
		size_t content_end, next = line_bounds(data, len, pos, &content_end);
		const char *s = data + pos;
		size_t n = content_end - pos;

		if (!is_blank(s, n) && !is_comment(s, n)) {
			const char *f[6];
			size_t fl[6], nf = 0, i = 0;
			struct fleet_buf extra = FLEET_BUF_INIT(ACCOUNTS_FIELD_MAX + 1);
			int extra_long = 0;
			size_t not_option = 0; /* first field after the sixth that is no option (1-based) */

			p->row_line = line;
			/* A trailing ';' ends the last field, it does not open an empty one. */
			if (n && s[n - 1] == ';')
				n--;
			while (i <= n) {
				size_t j = i;

				while (j < n && s[j] != ';')
					j++;
				if (nf < 6) {
					f[nf] = s + i;
					fl[nf] = j - i;
				} else {
					const char *e = s + i;
					size_t el = j - i;

					trim_span(&e, &el);
					if (el && e[0] != '-' && !not_option)
						not_option = nf + 1;
					if (el && ((extra.len && fleet_buf_append(&extra, " ", 1) != 0) ||
						   fleet_buf_append(&extra, e, el) != 0))
						extra_long = 1;
				}
				nf++;
				i = j + 1;
			}
			if (nf < 6) {
				add_error(p, line, 0, -1,
					  "the line has %zu fields; file.txt lines need "
					  "host1;user1;password1;host2;user2;password2",
					  nf);
			} else if (not_option) {
				/* file.txt has no quoting: a ';' inside a password splits it, and its halves
				 * would become host2 and so on. Nothing of the line is echoed: it holds secrets. */
				add_error(p, line, 0, -1,
					  "the line has %zu fields and field %zu is not an option: a password probably "
					  "contains ';', which file.txt cannot carry; put this account in a CSV accounts "
					  "file (quote the password) or use a passfile",
					  nf, not_option);
			} else {
				for (size_t k = 0; k < 6; k++)
					store_value(p, filetxt_cols[k], f[k], fl[k]);
				if (extra_long)
					add_error(p, line, 0, COL_OPTIONS,
						  "is longer than %d bytes; shorten it", ACCOUNTS_FIELD_MAX);
				else if (extra.len)
					store_value(p, COL_OPTIONS, extra.data, extra.len);
			}
			fleet_buf_release(&extra);
			end_row(p);
		}
		pos = next;
		line++;
	}
}

/* ---- detection and entry points ---------------------------------------------------------------- */

/* Whether the first field of the line (up to sep) names a known column. */
static int first_field_is_column(const char *s, size_t n, char sep)
{
	const char *e = memchr(s, sep, n);

	if (e)
		n = (size_t)(e - s);
	trim_span(&s, &n);
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
		trim_span(&s, &n);
	}
	return col_from_name(s, n) >= 0;
}

static void af_release(struct accounts_file *af)
{
	for (size_t i = 0; i < af->nrows; i++)
		row_release(&af->rows[i]);
	xfree(&af->rows);
	for (size_t i = 0; i < af->nerrors; i++)
		xfree(&af->errors[i].message);
	xfree(&af->errors);
	xfree(&af);
}

static struct accounts_file *parse_all(const char *data, size_t len, const char *name, const char *base_dir,
				       unsigned flags, struct fleet_err *err, int *inline_passwords)
{
	struct parse p;
	size_t pos = 0;
	unsigned line = 1;

	memset(&p, 0, sizeof(p));
	p.af = xcalloc(1, sizeof(*p.af));
	p.name = name ? name : "accounts";
	p.base_dir = base_dir;
	p.flags = flags;
	p.err = err;
	fleet_err_clear(err);

	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	/* The first line that is neither blank nor a '#' comment decides the form. */
	while (pos < len) {
		size_t content_end, next = line_bounds(data, len, pos, &content_end);

		if (!is_blank(data + pos, content_end - pos) && !is_comment(data + pos, content_end - pos)) {
			const char *s = data + pos;
			size_t n = content_end - pos;

			int comma = !memchr(s, ';', n) || first_field_is_column(s, n, ',');

			if (comma || first_field_is_column(s, n, ';')) {
				/* A header of known columns separated by ';' is a CSV file too (spreadsheets
				 * in locales with a decimal comma write it so): the same rules, ';' between
				 * the fields. */
				p.af->format = ACCOUNTS_FORMAT_CSV;
				p.delim = comma ? ',' : ';';
				parse_csv(&p, data, len, pos, line);
				if (!p.fatal && !p.have_header)
					set_fatal(&p,
						  "%s: no header row; the first line must name the columns",
						  p.name);
			} else {
				p.af->format = ACCOUNTS_FORMAT_FILETXT;
				parse_filetxt(&p, data, len, pos, line);
			}
			break;
		}
		pos = next;
		line++;
	}
	if (pos >= len && !p.fatal)
		set_fatal(&p,
			  "%s: no accounts: the file is empty; add a header row and one row per account pair",
			  p.name);

	reset_row(&p);
	for (size_t i = 0; i < p.nhnames; i++)
		xfree(&p.hnames[i]);
	dups_release(&p);
	if (inline_passwords)
		*inline_passwords = p.inline_passwords;
	if (p.fatal) {
		af_release(p.af);
		return NULL;
	}
	if ((flags & ACCOUNTS_STRICT) && p.af->nerrors) {
		for (size_t i = 0; i < p.af->nerrors; i++)
			log_error("%s", p.af->errors[i].message);
		fleet_err_set(
		    err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, ACCOUNTS_ERR_STRICT,
		    "%s: %zu bad row%s, nothing imported (strict mode); fix them or run without --strict",
		    p.name, p.bad_rows, p.bad_rows == 1 ? "" : "s");
		fleet_err_detail(err, "%s", p.af->errors[0].message);
		af_release(p.af);
		return NULL;
	}
	return p.af;
}

struct accounts_file *accounts_parse_buffer(const char *data, size_t len, const char *name,
					    const char *base_dir, unsigned flags, struct fleet_err *err)
{
	return parse_all(data, len, name, base_dir, flags, err, NULL);
}

struct accounts_file *accounts_load(const char *path, unsigned flags, struct fleet_err *err)
{
	struct accounts_file *af;
	struct stat st;
	char *data, *dir, *base, *slash;
	size_t got = 0;
	int fd, inline_passwords = 0;

	/* O_NONBLOCK: a FIFO (or a device) named as the accounts file must be refused below, not
	 * wait forever for a writer; regular files ignore the flag. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, ACCOUNTS_ERR_FILE,
			      "could not open %s: %s", path, strerror(errno));
		fleet_err_detail(err, "check the path given on the command line");
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, ACCOUNTS_ERR_FILE,
			      "%s is not a regular file; give the path of the accounts file", path);
		return NULL;
	}
	if ((uint64_t)st.st_size > ACCOUNTS_FILE_MAX) {
		close(fd);
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, ACCOUNTS_ERR_FILE,
			      "%s is larger than %u MiB; split it into several files", path,
			      ACCOUNTS_FILE_MAX >> 20);
		return NULL;
	}
	data = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, ACCOUNTS_ERR_FILE,
				      "could not read %s: %s", path, strerror(errno));
			close(fd);
			OPENSSL_cleanse(data, got);
			xfree(&data);
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);

	/* Relative passfile and cafile paths resolve against the file's own directory. */
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, strlen(dir) + 1, ".");
	base = realpath(dir, NULL);

	af = parse_all(data, got, path, base ? base : dir, flags, err, &inline_passwords);
	if (inline_passwords && (st.st_mode & (S_IRGRP | S_IROTH)))
		log_warn("%s holds inline passwords and is readable by group or others (mode %04o); "
			 "run chmod 600 %s or move the passwords to passfile columns",
			 path, (unsigned)(st.st_mode & 07777), path);
	OPENSSL_cleanse(data, got);
	xfree(&data);
	free(base);
	xfree(&dir);
	return af;
}

void accounts_free(struct accounts_file **af)
{
	if (!af || !*af)
		return;
	af_release(*af);
	*af = NULL;
}

enum accounts_format accounts_format(const struct accounts_file *af)
{
	return af->format;
}

size_t accounts_count(const struct accounts_file *af)
{
	return af ? af->nrows : 0;
}

const struct account_row *accounts_row(const struct accounts_file *af, size_t i)
{
	return af && i < af->nrows ? &af->rows[i] : NULL;
}

size_t accounts_error_count(const struct accounts_file *af)
{
	return af ? af->nerrors : 0;
}

const struct accounts_error *accounts_error_at(const struct accounts_file *af, size_t i)
{
	return af && i < af->nerrors ? &af->errors[i] : NULL;
}

const char *accounts_row_key(const struct account_row *row)
{
	return row->key;
}

const char *accounts_tls_name(enum accounts_tls tls)
{
	static const char *const names[] = {
	    [ACCOUNTS_TLS_SSL] = "ssl", [ACCOUNTS_TLS_STARTTLS] = "tls", [ACCOUNTS_TLS_PLAIN] = "plain"};

	return FLEET_ENUM_NAME(names, tls, "?");
}

const char *accounts_format_name(enum accounts_format format)
{
	return format == ACCOUNTS_FORMAT_FILETXT ? "file.txt" : "csv";
}

/* ---- passwords --------------------------------------------------------------------------------- */

int accounts_row_load_passwords(const struct account_row *row, struct account_secrets *out,
				struct fleet_err *err)
{
	memset(out, 0, sizeof(*out));
	for (int s = 0; s < 2; s++) {
		const struct account_side *sd = &row->side[s];
		char why[512];
		struct stat st;
		char *pw;

		if (sd->password) {
			out->password[s] = xstrdup(sd->password);
			fleet_log_add_secret(out->password[s]); /* this copy's own reference */
			continue;
		}
		if (!sd->passfile)
			continue; /* a passcmd, a token or tenant credentials: asked for at each login */
		pw = fleet_read_passfile(sd->passfile, ACCOUNTS_PASSFILE_MAX, why, sizeof(why));
		if (!pw) {
			accounts_secrets_release(out);
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, ACCOUNTS_ERR_PASSFILE,
				      "passfile%d of %s (line %u): %s", s + 1, sd->user, row->line, why);
			fleet_err_detail(err,
					 "create the file (mode 0600) with the password on one line, or fix "
					 "the passfile%d column",
					 s + 1);
			return -1;
		}
		if (!pw[0]) {
			xfree(&pw);
			accounts_secrets_release(out);
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, ACCOUNTS_ERR_PASSFILE,
				      "passfile%d of %s (line %u): %s is empty", s + 1, sd->user, row->line,
				      sd->passfile);
			fleet_err_detail(err, "write the password into the file");
			return -1;
		}
		fleet_log_add_secret(pw);
		if (stat(sd->passfile, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
			log_warn("passfile %s is readable by group or others (mode %04o); run chmod 600 %s",
				 sd->passfile, (unsigned)(st.st_mode & 07777), sd->passfile);
		out->password[s] = pw;
	}
	return 0;
}

void accounts_secrets_release(struct account_secrets *s)
{
	if (!s)
		return;
	secret_free(&s->password[0]);
	secret_free(&s->password[1]);
}

/* ---- options ----------------------------------------------------------------------------------- */

static void push_arg(char ***argv, size_t *n, size_t *alloc, struct fleet_buf *w)
{
	*argv = xgrow(*argv, sizeof(**argv), *n + 2, alloc);
	(*argv)[(*n)++] = xstrndup(fleet_buf_cstr(w), w->len);
	fleet_buf_reset(w);
}

int accounts_split_args(const char *s, int *argc_out, char ***argv_out, char *why, size_t whylen)
{
	size_t slen = strlen(s), n = 0, alloc = 0;
	struct fleet_buf w = FLEET_BUF_INIT(slen + 1);
	char **argv = NULL;
	const char *q = s;
	int in_word = 0;
	const char *fail = NULL;

	*argc_out = 0;
	*argv_out = NULL;
	while (*q && !fail) {
		char c = *q;

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (in_word)
				push_arg(&argv, &n, &alloc, &w);
			in_word = 0;
			q++;
			continue;
		}
		in_word = 1;
		if (c == '\'') {
			const char *e = strchr(q + 1, '\'');

			if (!e) {
				fail = "unterminated ' quote";
				break;
			}
			fleet_buf_add(&w, q + 1, (size_t)(e - q - 1));
			q = e + 1;
		} else if (c == '"') {
			for (q++;; q++) {
				if (!*q) {
					fail = "unterminated \" quote";
					break;
				}
				if (*q == '"') {
					q++;
					break;
				}
				if (*q == '\\' && (q[1] == '"' || q[1] == '\\' || q[1] == '$' || q[1] == '`'))
					q++;
				fleet_buf_add(&w, q, 1);
			}
		} else if (c == '\\') {
			if (!q[1]) {
				fail = "a lone backslash at the end";
				break;
			}
			fleet_buf_add(&w, q + 1, 1);
			q += 2;
		} else {
			fleet_buf_add(&w, q, 1);
			q++;
		}
	}
	if (fail) {
		if (why && whylen)
			snprintf(why, whylen, "%s", fail);
		fleet_buf_release(&w);
		for (size_t i = 0; i < n; i++)
			xfree(&argv[i]);
		xfree(&argv);
		return -1;
	}
	if (in_word)
		push_arg(&argv, &n, &alloc, &w);
	fleet_buf_release(&w);
	argv = xgrow(argv, sizeof(*argv), n + 1, &alloc);
	argv[n] = NULL;
	*argc_out = (int)n;
	*argv_out = argv;
	return 0;
}

void accounts_free_args(char ***argv)
{
	if (!argv || !*argv)
		return;
	for (char **a = *argv; *a; a++)
		xfree(a);
	xfree(argv);
}

/* ---- side settings: one table, one parser ------------------------------------------------------------ */


#define S FLEET_OPT_SIDE
#define SV (FLEET_OPT_SIDE | FLEET_OPT_VALUE)
static const struct fleet_opt login_table[] = {
	{"--host", SV, AS_HOST, "H", "server host name"},
	{"--port", SV, AS_PORT, "P", "port (default {}; {} means STARTTLS)"},
	{"--user", SV, AS_USER, "U", "user to log in as"},
	{"--passfile", SV, AS_PASSFILE, "F", "file holding the password"},
	{"--password", SV, AS_PASSWORD, "P", "the password itself (shows in the process list: prefer --passfile)"},
	{"--passcmd", SV, AS_PASSCMD, "CMD", "a command printing the password (run without a shell)"},
	{"--tokenfile", SV, AS_TOKENFILE, "F", "OAuth 2.0 token, re-read on every login"},
	{"--oauthtokenfile", SV | FLEET_OPT_HIDDEN, AS_TOKENFILE, "F", NULL},
	{"--tokencmd", SV, AS_TOKENCMD, "CMD", "a command printing a fresh token (run without a shell)"},
};
static const struct fleet_opt side_table[] = {
	{"--ssl", S, AS_SSL, NULL, "implicit TLS (the default; port {})"},
	{"--tls", S, AS_TLS, NULL, "STARTTLS (port {})"},
	{"--plain", S, AS_PLAIN, NULL, "cleartext (warned about)"},
	{"--nossl", S | FLEET_OPT_HIDDEN, AS_PLAIN, NULL, NULL},
	{"--notls", S | FLEET_OPT_HIDDEN, AS_PLAIN, NULL, NULL},
	{"--cafile", SV, AS_CAFILE, "F", "trust this CA as well as the system's"},
	{"--insecure", S, AS_INSECURE, NULL, "do not verify the certificate (warned about)"},
	{"--authuser", SV, AS_AUTHUSER, "A", "admin/master user (AUTHENTICATE PLAIN)"},
	{"--authmech", SV, AS_AUTHMECH, "M", "XOAUTH2, OAUTHBEARER, PLAIN or LOGIN (default: chosen)"},
	{"--oauth", SV, AS_OAUTH, "ms365|google", "tenant-level OAuth 2.0: imapfleet obtains every user's token"},
	{"--tenant", SV, AS_TENANT, "ID", "Microsoft 365 tenant (with --oauth ms365)"},
	{"--client-id", SV, AS_CLIENT_ID, "ID", "Microsoft 365 app id"},
	{"--client-secret-file", SV, AS_CLIENT_SECRET_FILE, "F", "Microsoft 365 app secret"},
	{"--client-cert", SV, AS_CLIENT_CERT, "PEM", "Microsoft 365 app certificate and key"},
	{"--service-account", SV, AS_SERVICE_ACCOUNT, "KEY.json", "Google service account (domain-wide delegation)"},
	{"--token-url", SV, AS_TOKEN_URL, "URL", "another token endpoint (national clouds, tests)"},
};
#undef S
#undef SV

static const struct fleet_opt_default login_defaults[] = {{AS_PORT, {IO_PORT_IMAPS, IO_PORT_IMAP}}};
const struct fleet_optset accounts_login_optset =
	FLEET_OPTSET_DEFAULTS("per side (1 = source, 2 = destination):", login_table, login_defaults);
static const struct fleet_opt_default side_defaults[] = {{AS_SSL, {IO_PORT_IMAPS}}, {AS_TLS, {IO_PORT_IMAP}}};
const struct fleet_optset accounts_side_optset =
	FLEET_OPTSET_DEFAULTS("side settings (1 = source, 2 = destination):", side_table, side_defaults);

static const struct fleet_optset *side_sets(size_t *n)
{
	static const struct fleet_optset sets[] = {FLEET_OPTSET(NULL, login_table), FLEET_OPTSET(NULL, side_table)};

	*n = 2;
	return sets;
}

int accounts_parse_authmech(const char *name, enum imap_auth_mech *out)
{
	static const char *const mechs[] = {[IMAP_AUTH_LOGIN] = "LOGIN", [IMAP_AUTH_PLAIN] = "PLAIN",
					    [IMAP_AUTH_XOAUTH2] = "XOAUTH2", [IMAP_AUTH_OAUTHBEARER] = "OAUTHBEARER"};
	int i = fleet_name_index(name, mechs, NNAMES(mechs));

	if (i < 0)
		return -1;
	*out = (enum imap_auth_mech)i;
	return 0;
}

unsigned accounts_tenant_flags(int argc, char **argv)
{
	unsigned f = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--oauth1") == 0)
			f |= ACCOUNTS_TENANT_AUTH1;
		else if (strcmp(argv[i], "--oauth2") == 0)
			f |= ACCOUNTS_TENANT_AUTH2;
	}
	return f;
}

static void set_mode(struct account_side_settings *sd, enum io_tls_mode mode)
{
	sd->mode = mode;
	sd->mode_set = 1;
}

int accounts_side_set(struct account_side_settings *sd, const struct fleet_opt_hit *hit, char *why, size_t cap)
{
	const char *v = hit->value, *a = hit->words[0];
	uint64_t port;

	switch (hit->opt->id) {
	case AS_HOST: sd->host = v; break;
	case AS_PORT:
		if (fleet_parse_u64(v, 1, 65535, &port) < 0) {
			snprintf(why, cap, "option %.*s: '%s' is not a port (1-65535)", (int)strcspn(a, "="), a, v);
			return -1;
		}
		sd->port = (unsigned)port;
		break;
	case AS_USER: sd->user = v; break;
	case AS_PASSFILE: sd->passfile = v; break;
	case AS_PASSWORD:
		sd->password = v;
		fleet_log_add_secret(v);
		break;
	case AS_TOKENFILE: sd->tokenfile = v; break;
	case AS_TOKENCMD: sd->tokencmd = v; break;
	case AS_PASSCMD: sd->passcmd = v; break;
	case AS_SSL: set_mode(sd, IO_TLS_IMPLICIT); break;
	case AS_TLS: set_mode(sd, IO_TLS_STARTTLS); break;
	case AS_PLAIN: set_mode(sd, IO_TLS_PLAIN); break; /* imapsync's --nossl/--notls: no TLS */
	case AS_INSECURE: sd->insecure = 1; break;
	case AS_CAFILE: sd->cafile = v; break;
	case AS_AUTHUSER: sd->authuser = v; break;
	case AS_AUTHMECH:
		if (accounts_parse_authmech(v, &sd->auth) < 0) {
			snprintf(why, cap, "option %.*s: '%s' is not XOAUTH2, OAUTHBEARER, PLAIN or LOGIN",
				 (int)strcspn(a, "="), a, v);
			return -1;
		}
		break;
	case AS_OAUTH:
		if (oauth_provider_from_name(v, &sd->oauth.provider) < 0) {
			snprintf(why, cap, "option %.*s: '%s' is not ms365 or google", (int)strcspn(a, "="), a, v);
			return -1;
		}
		break;
	case AS_TENANT: sd->oauth.tenant = v; break;
	case AS_CLIENT_ID: sd->oauth.client_id = v; break;
	case AS_CLIENT_SECRET_FILE: sd->oauth.client_secret_file = v; break;
	case AS_CLIENT_CERT: sd->oauth.client_cert = v; break;
	case AS_SERVICE_ACCOUNT: sd->oauth.service_account = v; break;
	case AS_TOKEN_URL: sd->oauth.token_url = v; break;
	default: snprintf(why, cap, "option %s is not a side setting", hit->opt->name); return -1;
	}
	return 0;
}

struct take_ctx {
	struct account_side_settings *side;
	char **rest;
	int *nrest;
};

static int take_one(void *ctx, const struct fleet_opt_hit *hit, char *why, size_t cap)
{
	struct take_ctx *t = ctx;

	if (hit->opt && hit->set == 0)
		return accounts_side_set(&t->side[hit->side < 0 ? 0 : hit->side], hit, why, cap);
	if (!hit->opt) {
		snprintf(why, cap, "unexpected argument '%s' in account options", hit->words[0]);
		return -1;
	}
	for (int k = 0; k < hit->nwords; k++)
		t->rest[(*t->nrest)++] = hit->words[k];
	return 0;
}

int accounts_take_side_settings(int argc, char **argv, struct account_side_settings side[2], char **rest, int *nrest,
			      struct fleet_err *err)
{
	const struct fleet_optset sets[] = {accounts_side_optset, engine_opts_optset};
	struct take_ctx t = {side, rest, nrest};

	return fleet_opt_parse(sets, 2, FLEET_OPT_TWO_SIDES | FLEET_OPT_NO_OPERANDS, "account option", argc, argv,
			       take_one, &t, err);
}

/* ---- how a side logs in --------------------------------------------------------------------------- */

int accounts_side_cred(const struct account_side *sd, int k, const struct account_side_settings *set,
		       const char *user, struct oauth_cache *cache, const struct oauth_shared *shared,
		       struct accounts_cred *out)
{
	static const char *const names[2][4] = {{"token1", "tokenfile1", "tokencmd1", "passcmd1"},
						 {"token2", "tokenfile2", "tokencmd2", "passcmd2"}};
	char why[160];
	int argc;

	memset(out, 0, sizeof(*out));
	out->auth = set->auth;
	if (set->oauth.provider != OAUTH_NONE) {
		out->oauth = set->oauth;
		out->oauth.cafile = set->cafile; /* the endpoint is verified like the IMAP server */
		out->oauth.insecure = set->insecure;
		out->octx.cache = cache;
		out->octx.cfg = &out->oauth;
		out->octx.user = user;
		out->octx.shared = shared;
		out->src.kind = CRED_HOOK;
		out->src.is_token = 1;
		out->src.name = k ? "--oauth2" : "--oauth1";
		out->src.hook = oauth_cred_hook;
		out->src.hook_ctx = &out->octx;
		if (out->auth == IMAP_AUTH_AUTO)
			out->auth = IMAP_AUTH_XOAUTH2; /* what both providers document for IMAP */
		return 0;
	}
	if (!sd)
		return 0;
	if (out->auth == IMAP_AUTH_AUTO && sd->auth == ACCOUNTS_AUTH_XOAUTH2)
		out->auth = IMAP_AUTH_XOAUTH2;
	else if (out->auth == IMAP_AUTH_AUTO && sd->auth == ACCOUNTS_AUTH_OAUTHBEARER)
		out->auth = IMAP_AUTH_OAUTHBEARER;
	out->src.is_token = sd->token || sd->tokenfile || sd->tokencmd;
	if (sd->token) {
		out->src.kind = CRED_INLINE;
		out->src.value = sd->token;
		out->src.name = names[k][0];
	} else if (sd->tokenfile) {
		out->src.kind = CRED_FILE;
		out->src.value = sd->tokenfile;
		out->src.name = names[k][1];
	} else if (sd->tokencmd || sd->passcmd) {
		if (accounts_split_args(sd->tokencmd ? sd->tokencmd : sd->passcmd, &argc, &out->argv, why, sizeof(why)) < 0 ||
		    argc == 0)
			return -1;
		out->src.kind = CRED_CMD;
		out->src.argv = out->argv;
		out->src.name = names[k][sd->tokencmd ? 2 : 3];
	}
	return 0;
}

void accounts_cred_release(struct accounts_cred *c)
{
	accounts_free_args(&c->argv);
	memset(c, 0, sizeof(*c));
}

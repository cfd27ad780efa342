#include "common/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/escape.h"
#include "common/util.h"

#define REDACTED "<redacted>"

static enum fleet_log_level g_level = FLEET_LOG_INFO;
static enum fleet_log_level g_console_level = FLEET_LOG_TRACE; /* no cap of its own */
static FILE *g_sink;
static pthread_mutex_t g_write_lock = PTHREAD_MUTEX_INITIALIZER;
/* The live display below the log lines (fleet_log_overlay), under g_write_lock. */
static char *g_overlay;
static atomic_int g_overlay_shown;

/* Secrets live in a hash table keyed by a polynomial hash of their whole text, with a count per
 * distinct length. Scrubbing a text rolls that hash over it once per distinct length (Rabin-Karp), so
 * it costs O(text length x distinct lengths) whatever the number of secrets, and registering one is
 * O(1): 40,000 passwords that share a prefix ("Welcome-0001"...) are as cheap as any others. Each
 * secret is reference-counted (fleet_log_remove_secret) and wiped when the last user lets go. */
#define HASH_BASE 1099511628211ull

struct secret {
	char *text;
	size_t len;
	uint64_t hash;
	unsigned refs;
	struct secret *next;
};

struct secret_len {
	size_t len;
	size_t count;
};

static pthread_rwlock_t g_secrets_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct secret **g_buckets;
static size_t g_nbuckets;
static size_t g_nsecrets;
static struct secret_len *g_lens; /* distinct lengths, longest first */
static size_t g_nlens, g_lens_alloc;

static uint64_t poly_hash(const char *p, size_t n)
{
	uint64_t h = 0;

	for (size_t i = 0; i < n; i++)
		h = h * HASH_BASE + (unsigned char)p[i];
	return h;
}

static size_t bucket_of(uint64_t h, size_t nbuckets)
{
	return (size_t)((h ^ (h >> 29)) & (nbuckets - 1));
}

static void rehash(size_t nbuckets)
{
	struct secret **nb = xcalloc(nbuckets, sizeof(*nb));

	for (size_t i = 0; i < g_nbuckets; i++) {
		while (g_buckets[i]) {
			struct secret *e = g_buckets[i];

			g_buckets[i] = e->next;
			e->next = nb[bucket_of(e->hash, nbuckets)];
			nb[bucket_of(e->hash, nbuckets)] = e;
		}
	}
	xfree(&g_buckets);
	g_buckets = nb;
	g_nbuckets = nbuckets;
}

static void lens_adjust(size_t len, int delta)
{
	size_t i;

	for (i = 0; i < g_nlens && g_lens[i].len > len; i++)
		;
	if (i < g_nlens && g_lens[i].len == len) {
		g_lens[i].count += (size_t)delta;
		if (g_lens[i].count == 0) {
			memmove(&g_lens[i], &g_lens[i + 1], (g_nlens - i - 1) * sizeof(*g_lens));
			g_nlens--;
		}
		return;
	}
	if (delta < 0)
		return;
	g_lens = xgrow(g_lens, sizeof(*g_lens), g_nlens + 1, &g_lens_alloc);
	memmove(&g_lens[i + 1], &g_lens[i], (g_nlens - i) * sizeof(*g_lens));
	g_lens[i].len = len;
	g_lens[i].count = 1;
	g_nlens++;
}

static struct secret **find_secret(const char *text, size_t len, uint64_t h)
{
	struct secret **pp;

	if (g_nbuckets == 0)
		return NULL;
	for (pp = &g_buckets[bucket_of(h, g_nbuckets)]; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->text, text, len) == 0)
			return pp;
	return NULL;
}

static void wipe_secret(struct secret *e)
{
	explicit_bzero(e->text, e->len);
	xfree(&e->text);
	xfree(&e);
}

static __thread char t_account[FLEET_LOG_ACCOUNT_MAX];
static __thread char t_folder[FLEET_LOG_FOLDER_MAX];
static __thread FILE *t_sink;

void fleet_log_set_level(enum fleet_log_level level)
{
	g_level = level;
}

enum fleet_log_level fleet_log_get_level(void)
{
	return g_level;
}

int fleet_log_enabled(enum fleet_log_level level)
{
	return level <= g_level;
}

int fleet_log_level_from_name(const char *name, enum fleet_log_level *out)
{
	static const char *const names[] = {"error", "warn", "info", "debug", "trace"};

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum fleet_log_level)i;
			return 0;
		}
	}
	return -1;
}

void fleet_log_set_sink(FILE *sink)
{
	g_sink = sink;
}

void fleet_log_set_console_level(enum fleet_log_level level)
{
	g_console_level = level;
}

/* ---- the live display below the log lines ------------------------------------------------------- */

#define ERASE_BLOCK "\r\033[J"

/* Appends the block to out and moves the cursor back to the start of its first line. */
static void overlay_draw_into(struct fleet_buf *out)
{
	unsigned up = 0;

	if (!g_overlay || !*g_overlay) {
		atomic_store(&g_overlay_shown, 0);
		return;
	}
	fleet_buf_add(out, g_overlay, strlen(g_overlay));
	for (const char *p = g_overlay; *p; p++)
		up += *p == '\n';
	if (up)
		fleet_buf_addf(out, "\r\033[%uA", up);
	else
		fleet_buf_add(out, "\r", 1);
	atomic_store(&g_overlay_shown, 1);
}

static void sink_write(struct fleet_buf *out)
{
	FILE *f = g_sink ? g_sink : stderr;

	(void)fleet_buf_mark_cut(out);
	fwrite(fleet_buf_cstr(out), 1, out->len, f);
	fflush(f);
}

void fleet_log_overlay(const char *text)
{
	struct fleet_buf out = FLEET_BUF_INIT(FLEET_LOG_WRITE_MAX);

	pthread_mutex_lock(&g_write_lock);
	if (atomic_load(&g_overlay_shown))
		fleet_buf_add(&out, ERASE_BLOCK, strlen(ERASE_BLOCK));
	xfree(&g_overlay);
	if (text && *text)
		g_overlay = xstrdup(text);
	overlay_draw_into(&out);
	sink_write(&out);
	pthread_mutex_unlock(&g_write_lock);
	fleet_buf_release(&out);
}

void fleet_log_overlay_end(const char *final)
{
	struct fleet_buf out = FLEET_BUF_INIT(FLEET_LOG_WRITE_MAX);

	pthread_mutex_lock(&g_write_lock);
	if (atomic_load(&g_overlay_shown))
		fleet_buf_add(&out, ERASE_BLOCK, strlen(ERASE_BLOCK));
	atomic_store(&g_overlay_shown, 0);
	xfree(&g_overlay);
	if (final && *final)
		fleet_buf_addf(&out, "%s\n", final);
	sink_write(&out);
	pthread_mutex_unlock(&g_write_lock);
	fleet_buf_release(&out);
}

int fleet_log_overlay_shown(void)
{
	return atomic_load(&g_overlay_shown);
}

void fleet_log_set_thread_sink(FILE *sink)
{
	t_sink = sink;
}

void fleet_log_set_context(const char *account, const char *folder)
{
	snprintf(t_account, sizeof(t_account), "%s", account ? account : "");
	snprintf(t_folder, sizeof(t_folder), "%s", folder ? folder : "");
}

void fleet_log_set_folder(const char *folder)
{
	snprintf(t_folder, sizeof(t_folder), "%s", folder ? folder : "");
}

void fleet_log_thread_save(struct fleet_log_thread *t)
{
	snprintf(t->account, sizeof(t->account), "%s", t_account);
	snprintf(t->folder, sizeof(t->folder), "%s", t_folder);
	t->sink = t_sink;
}

void fleet_log_thread_restore(const struct fleet_log_thread *t)
{
	fleet_log_set_context(t->account, t->folder);
	t_sink = t->sink;
}

void fleet_log_add_secret(const char *secret)
{
	size_t len = secret ? strlen(secret) : 0;
	uint64_t h;
	struct secret **found, *e;

	if (len == 0)
		return;
	h = poly_hash(secret, len);
	pthread_rwlock_wrlock(&g_secrets_lock);
	found = find_secret(secret, len, h);
	if (found) {
		(*found)->refs++;
		pthread_rwlock_unlock(&g_secrets_lock);
		return;
	}
	if (g_nsecrets + 1 > g_nbuckets)
		rehash(g_nbuckets ? g_nbuckets * 2 : 1024);
	e = xmalloc(sizeof(*e));
	e->text = xstrdup(secret);
	e->len = len;
	e->hash = h;
	e->refs = 1;
	e->next = g_buckets[bucket_of(h, g_nbuckets)];
	g_buckets[bucket_of(h, g_nbuckets)] = e;
	g_nsecrets++;
	lens_adjust(len, +1);
	pthread_rwlock_unlock(&g_secrets_lock);
}

void fleet_log_remove_secret(const char *secret)
{
	size_t len = secret ? strlen(secret) : 0;
	struct secret **found, *e;

	if (len == 0)
		return;
	pthread_rwlock_wrlock(&g_secrets_lock);
	found = find_secret(secret, len, poly_hash(secret, len));
	if (found && --(*found)->refs == 0) {
		e = *found;
		*found = e->next;
		g_nsecrets--;
		lens_adjust(len, -1);
		wipe_secret(e);
	}
	pthread_rwlock_unlock(&g_secrets_lock);
}

size_t fleet_log_secret_count(void)
{
	size_t n;

	pthread_rwlock_rdlock(&g_secrets_lock);
	n = g_nsecrets;
	pthread_rwlock_unlock(&g_secrets_lock);
	return n;
}

void fleet_log_clear_secrets(void)
{
	pthread_rwlock_wrlock(&g_secrets_lock);
	for (size_t i = 0; i < g_nbuckets; i++) {
		while (g_buckets[i]) {
			struct secret *e = g_buckets[i];

			g_buckets[i] = e->next;
			wipe_secret(e);
		}
	}
	xfree(&g_buckets);
	g_nbuckets = 0;
	g_nsecrets = 0;
	xfree(&g_lens);
	g_nlens = g_lens_alloc = 0;
	pthread_rwlock_unlock(&g_secrets_lock);
}

/* A byte that continues a word: a secret that starts or ends with one must not be glued to
 * another there to count as a whole token. */
static int word_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c >= 0x80;
}

/* Whether the secret e found at s[i..i+len) may be redacted there: a secret of FLEET_LOG_SHORT_SECRET bytes
 * or more always; a shorter one only as a whole token, so the password "x" leaves "--maxsize"
 * alone. */
static int redact_here(const struct secret *e, const char *s, size_t n, size_t i)
{
	const unsigned char *u = (const unsigned char *)s;

	if (e->len >= FLEET_LOG_SHORT_SECRET)
		return 1;
	if (i > 0 && word_byte(u[i - 1]) && word_byte((unsigned char)e->text[0]))
		return 0;
	if (i + e->len < n && word_byte(u[i + e->len]) && word_byte((unsigned char)e->text[e->len - 1]))
		return 0;
	return 1;
}

/* Fills match[i] with the length of the longest secret to redact at s + i (0 for none). Called with
 * the lock held. */
static void find_matches(const char *s, size_t n, size_t *match)
{
	memset(match, 0, n * sizeof(*match));
	for (size_t k = 0; k < g_nlens; k++) {
		size_t L = g_lens[k].len;
		uint64_t h = 0, top = 1;

		if (L > n)
			continue;
		for (size_t i = 1; i < L; i++)
			top *= HASH_BASE;
		for (size_t i = 0; i < L; i++)
			h = h * HASH_BASE + (unsigned char)s[i];
		for (size_t i = 0;; i++) {
			if (!match[i]) {
				struct secret **e = find_secret(s + i, L, h);

				if (e && redact_here(*e, s, n, i))
					match[i] = L; /* lengths go longest first: the first match wins */
			}
			if (i + L >= n)
				break;
			h = (h - top * (unsigned char)s[i]) * HASH_BASE + (unsigned char)s[i + L];
		}
	}
}

/* Appends s with registered secrets replaced to out (uncapped but for out's own max). */
static void scrub_into(struct fleet_buf *out, const char *s, size_t n)
{
	size_t *match, i = 0, from = 0;

	if (g_nsecrets == 0 || n == 0) {
		fleet_buf_add(out, s, n);
		return;
	}
	match = xmalloc(n * sizeof(*match));
	find_matches(s, n, match);
	while (i < n) {
		if (match[i]) {
			fleet_buf_add(out, s + from, i - from);
			fleet_buf_add(out, REDACTED, strlen(REDACTED));
			i += match[i];
			from = i;
		} else {
			i++;
		}
	}
	fleet_buf_add(out, s + from, n - from);
	xfree(&match);
}

void fleet_log_scrub(char *s, size_t cap)
{
	struct fleet_buf out = FLEET_BUF_INIT(FLEET_LOG_RAW_MAX);
	size_t len;

	if (!s || cap == 0)
		return;
	len = strlen(s);
	pthread_rwlock_rdlock(&g_secrets_lock);
	if (g_nsecrets == 0) {
		pthread_rwlock_unlock(&g_secrets_lock);
		return;
	}
	scrub_into(&out, s, len);
	pthread_rwlock_unlock(&g_secrets_lock);
	len = fleet_utf8_cut(fleet_buf_cstr(&out), out.len < cap - 1 ? out.len : cap - 1);
	memcpy(s, fleet_buf_cstr(&out), len);
	s[len] = '\0';
	fleet_buf_release(&out);
}

size_t fleet_log_clean(char *dst, size_t cap, const char *src, size_t len)
{
	struct fleet_buf out = FLEET_BUF_INIT(FLEET_LOG_RAW_MAX);
	size_t n;

	if (cap == 0)
		return 0;
	if (len > FLEET_LOG_RAW_MAX / 2)
		len = FLEET_LOG_RAW_MAX / 2; /* far past any cut below: a secret cut here is never shown */
	pthread_rwlock_rdlock(&g_secrets_lock);
	scrub_into(&out, src, len);
	pthread_rwlock_unlock(&g_secrets_lock);
	n = fleet_escape_term_into(dst, cap, fleet_buf_cstr(&out), out.len);
	fleet_buf_release(&out);
	return n;
}

static const char *level_name(enum fleet_log_level level)
{
	static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

	return FLEET_ENUM_NAME(names, level, "?");
}

void fleet_vlog(enum fleet_log_level level, const char *fmt, va_list ap)
{
	char line[FLEET_LOG_LINE_MAX];
	char stamp[32];
	struct fleet_buf raw = FLEET_BUF_INIT(FLEET_LOG_RAW_MAX / 2);
	struct timespec ts;
	struct tm tm;
	int n;

	if (!fleet_log_enabled(level) || (level > g_console_level && !t_sink))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %-5s ", stamp, ts.tv_nsec / 1000000, level_name(level));
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	/* The whole line is formatted first, then scrubbed, then escaped (the context and every %s
	 * may hold what a server or an accounts file sent), and only then cut: a secret that straddles
	 * the cut is redacted like any other. */
	if (t_account[0])
		fleet_buf_addf(&raw, "[%s%s%s] ", t_account, t_folder[0] ? " folder=" : "", t_folder);
	if (fleet_buf_vappendf(&raw, fmt, ap) < 0) {
		char *big = xmalloc(FLEET_LOG_RAW_MAX / 2);
		va_list cp;

		va_copy(cp, ap);
		vsnprintf(big, FLEET_LOG_RAW_MAX / 2, fmt, cp);
		va_end(cp);
		fleet_buf_add(&raw, big, FLEET_LOG_RAW_MAX / 2 - raw.len - 1);
		xfree(&big);
	}
	fleet_log_clean(line + n, sizeof(line) - (size_t)n, fleet_buf_cstr(&raw), raw.len);
	fleet_buf_release(&raw);

	pthread_mutex_lock(&g_write_lock);
	if (level <= g_console_level) {
		if (g_overlay) {
			/* Erase the display, the line, the display again: one write, nothing glued. */
			struct fleet_buf out = FLEET_BUF_INIT(FLEET_LOG_WRITE_MAX);

			if (atomic_load(&g_overlay_shown))
				fleet_buf_add(&out, ERASE_BLOCK, strlen(ERASE_BLOCK));
			fleet_buf_addf(&out, "%s\n", line);
			overlay_draw_into(&out);
			sink_write(&out);
			fleet_buf_release(&out);
		} else {
			fprintf(g_sink ? g_sink : stderr, "%s\n", line);
		}
	}
	if (t_sink) {
		fprintf(t_sink, "%s\n", line);
		fflush(t_sink);
	}
	pthread_mutex_unlock(&g_write_lock);
}

void fleet_log(enum fleet_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fleet_vlog(level, fmt, ap);
	va_end(ap);
}

#include "common/log.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"

#define LOG_LINE_MAX 4096
#define REDACTED "<redacted>"

static enum fleet_log_level g_level = FLEET_LOG_INFO;
static FILE *g_sink;
static pthread_mutex_t g_write_lock = PTHREAD_MUTEX_INITIALIZER;

/* Secrets live in a hash table keyed by their first four bytes, so scrubbing a line costs one
 * lookup per byte position whatever the number of secrets (a run registers two per account:
 * 20,000 for a 10,000-account file). Secrets shorter than four bytes are kept in a short list
 * and searched with strstr. */
#define SECRET_BUCKETS 4096
#define SECRET_PREFIX 4

struct secret {
	char *text;
	size_t len;
	struct secret *next;
};

static pthread_rwlock_t g_secrets_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct secret *g_buckets[SECRET_BUCKETS];
static struct secret *g_short;
static size_t g_nsecrets;

static unsigned prefix_hash(const char *p)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < SECRET_PREFIX; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h % SECRET_BUCKETS;
}

static __thread char t_account[160];
static __thread char t_folder[256];
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

void fleet_log_add_secret(const char *secret)
{
	size_t len = secret ? strlen(secret) : 0;
	struct secret **head, *e;

	if (len == 0)
		return;
	pthread_rwlock_wrlock(&g_secrets_lock);
	head = len >= SECRET_PREFIX ? &g_buckets[prefix_hash(secret)] : &g_short;
	for (e = *head; e; e = e->next) {
		if (e->len == len && memcmp(e->text, secret, len) == 0) {
			pthread_rwlock_unlock(&g_secrets_lock);
			return;
		}
	}
	e = xmalloc(sizeof(*e));
	e->text = xstrdup(secret);
	e->len = len;
	e->next = *head;
	*head = e;
	g_nsecrets++;
	pthread_rwlock_unlock(&g_secrets_lock);
}

static void free_chain(struct secret **head)
{
	while (*head) {
		struct secret *e = *head;

		*head = e->next;
		xfree(&e->text);
		xfree(&e);
	}
}

void fleet_log_clear_secrets(void)
{
	pthread_rwlock_wrlock(&g_secrets_lock);
	for (size_t i = 0; i < SECRET_BUCKETS; i++)
		free_chain(&g_buckets[i]);
	free_chain(&g_short);
	g_nsecrets = 0;
	pthread_rwlock_unlock(&g_secrets_lock);
}

/* Appends src[0..n) to dst at *pos, never past cap - 1. */
static void put(char *dst, size_t cap, size_t *pos, const char *src, size_t n)
{
	if (*pos + n > cap - 1)
		n = cap - 1 - *pos;
	memcpy(dst + *pos, src, n);
	*pos += n;
}

/* Longest secret starting at p (len bytes left), or 0. */
static size_t match_at(const char *p, size_t left)
{
	size_t best = 0;

	if (left >= SECRET_PREFIX) {
		for (const struct secret *e = g_buckets[prefix_hash(p)]; e; e = e->next)
			if (e->len <= left && e->len > best && memcmp(e->text, p, e->len) == 0)
				best = e->len;
	}
	for (const struct secret *e = g_short; e; e = e->next)
		if (e->len <= left && e->len > best && memcmp(e->text, p, e->len) == 0)
			best = e->len;
	return best;
}

void fleet_log_scrub(char *s, size_t cap)
{
	char *out;
	size_t len, pos = 0, i = 0;
	int changed = 0;

	if (!s || cap == 0)
		return;
	pthread_rwlock_rdlock(&g_secrets_lock);
	if (g_nsecrets == 0) {
		pthread_rwlock_unlock(&g_secrets_lock);
		return;
	}
	len = strlen(s);
	out = xmalloc(cap);
	while (i < len && pos < cap - 1) {
		size_t m = match_at(s + i, len - i);

		if (m) {
			put(out, cap, &pos, REDACTED, strlen(REDACTED));
			i += m;
			changed = 1;
		} else {
			out[pos++] = s[i++];
		}
	}
	pthread_rwlock_unlock(&g_secrets_lock);
	if (changed) {
		out[pos] = '\0';
		memcpy(s, out, pos + 1);
	}
	xfree(&out);
}

static const char *level_name(enum fleet_log_level level)
{
	static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

	return (unsigned)level < 5 ? names[level] : "?";
}

void fleet_vlog(enum fleet_log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	int n;

	if (!fleet_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %-5s ", stamp, ts.tv_nsec / 1000000, level_name(level));
	if (t_account[0] && n >= 0 && (size_t)n < sizeof(line))
		n += snprintf(line + n, sizeof(line) - (size_t)n, "[%s%s%s] ", t_account,
			      t_folder[0] ? " folder=" : "", t_folder);
	if (n >= 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	fleet_log_scrub(line, sizeof(line));

	pthread_mutex_lock(&g_write_lock);
	fprintf(g_sink ? g_sink : stderr, "%s\n", line);
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

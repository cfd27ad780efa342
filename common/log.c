#include "common/log.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"

#define LOG_LINE_MAX 4096
#define REDACTED "<redacted>"

static enum fleet_log_level g_level = FLEET_LOG_INFO;
static FILE *g_sink;
static pthread_mutex_t g_write_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_rwlock_t g_secrets_lock = PTHREAD_RWLOCK_INITIALIZER;
static char **g_secrets;
static size_t g_nsecrets, g_secrets_alloc;

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
	if (!secret || !*secret)
		return;
	pthread_rwlock_wrlock(&g_secrets_lock);
	for (size_t i = 0; i < g_nsecrets; i++) {
		if (strcmp(g_secrets[i], secret) == 0) {
			pthread_rwlock_unlock(&g_secrets_lock);
			return;
		}
	}
	g_secrets = xgrow(g_secrets, sizeof(*g_secrets), g_nsecrets + 1, &g_secrets_alloc);
	g_secrets[g_nsecrets++] = xstrdup(secret);
	pthread_rwlock_unlock(&g_secrets_lock);
}

void fleet_log_clear_secrets(void)
{
	pthread_rwlock_wrlock(&g_secrets_lock);
	for (size_t i = 0; i < g_nsecrets; i++)
		xfree(&g_secrets[i]);
	g_nsecrets = 0;
	pthread_rwlock_unlock(&g_secrets_lock);
}

static void scrub_one(char *s, size_t cap, const char *secret)
{
	size_t slen = strlen(secret), rlen = strlen(REDACTED);
	char *p = s;

	while ((p = strstr(p, secret)) != NULL) {
		size_t tail = strlen(p + slen);

		/* Shift the tail, truncating at cap when the replacement is longer. */
		if ((size_t)(p - s) + rlen + tail + 1 > cap)
			tail = cap - 1 - (size_t)(p - s) - rlen < tail ? cap - 1 - (size_t)(p - s) - rlen : tail;
		if ((size_t)(p - s) + rlen >= cap) {
			*p = '\0';
			return;
		}
		memmove(p + rlen, p + slen, tail);
		p[rlen + tail] = '\0';
		memcpy(p, REDACTED, rlen);
		p += rlen;
	}
}

void fleet_log_scrub(char *s, size_t cap)
{
	if (!s || cap == 0)
		return;
	pthread_rwlock_rdlock(&g_secrets_lock);
	for (size_t i = 0; i < g_nsecrets; i++)
		scrub_one(s, cap, g_secrets[i]);
	pthread_rwlock_unlock(&g_secrets_lock);
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

#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"

uint64_t fleet_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t fleet_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void fleet_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int fleet_parse_u64n(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int fleet_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	return s ? fleet_parse_u64n(s, strlen(s), min, max, out) : -1;
}

int fleet_parse_size(const char *s, uint64_t *out)
{
	size_t len = s ? strlen(s) : 0;
	uint64_t mult = 1, v;

	if (len == 0)
		return -1;
	switch (s[len - 1]) {
	case 'k': case 'K': mult = 1024; len--; break;
	case 'm': case 'M': mult = 1024 * 1024; len--; break;
	case 'g': case 'G': mult = 1024ull * 1024 * 1024; len--; break;
	default: break;
	}
	if (fleet_parse_u64n(s, len, 0, UINT64_MAX / mult, &v) < 0)
		return -1;
	*out = v * mult;
	return 0;
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

void fleet_human_size(uint64_t bytes, char *out, size_t cap)
{
	if (bytes < 1024)
		snprintf(out, cap, "%llu bytes", (unsigned long long)bytes);
	else if (bytes < 1024ull * 1024)
		snprintf(out, cap, "%.1f KB", (double)bytes / 1024.0);
	else if (bytes < 1024ull * 1024 * 1024)
		snprintf(out, cap, "%.1f MB", (double)bytes / (1024.0 * 1024.0));
	else
		snprintf(out, cap, "%.2f GB", (double)bytes / (1024.0 * 1024.0 * 1024.0));
}

int fleet_strncaseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
		if (!a[i])
			return 1;
	}
	return 1;
}

int fleet_strcaseeq(const char *a, const char *b)
{
	size_t la = strlen(a);

	return la == strlen(b) && fleet_strncaseeq(a, b, la);
}

int fleet_name_index(const char *name, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && fleet_strcaseeq(name, names[i]))
			return (int)i;
	return -1;
}

int fleet_cmp_u32(const void *a, const void *b)
{
	return FLEET_CMP(*(const uint32_t *)a, *(const uint32_t *)b);
}

const char *fleet_enum_name(const char *const *names, size_t n, int v, const char *dflt)
{
	return v >= 0 && (size_t)v < n && names[v] ? names[v] : dflt;
}

char *fleet_read_small_file(const char *path, size_t max, char *why, size_t whylen)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f) {
		snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = xmalloc(max + 2);
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		snprintf(why, whylen, "could not read %s: %s", path, strerror(errno));
		fclose(f);
		xfree(&buf);
		return NULL;
	}
	fclose(f);
	if (n > max) {
		snprintf(why, whylen, "%s is larger than %zu bytes", path, max);
		xfree(&buf);
		return NULL;
	}
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return buf;
}

static pthread_mutex_t g_forbid_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	dev_t dev;
	ino_t ino;
} g_forbidden[FLEET_PASSFILE_FORBIDDEN_MAX];
static unsigned g_nforbidden;

void fleet_passfile_forbid(const char *path)
{
	struct stat st;

	if (!path || stat(path, &st) != 0)
		return;
	pthread_mutex_lock(&g_forbid_lock);
	for (unsigned i = 0; i < g_nforbidden; i++)
		if (g_forbidden[i].dev == st.st_dev && g_forbidden[i].ino == st.st_ino)
			goto out;
	if (g_nforbidden < FLEET_PASSFILE_FORBIDDEN_MAX) {
		g_forbidden[g_nforbidden].dev = st.st_dev;
		g_forbidden[g_nforbidden].ino = st.st_ino;
		g_nforbidden++;
	}
out:
	pthread_mutex_unlock(&g_forbid_lock);
}

/* A state key file by name: .../.imapfleet/key. */
static int named_like_a_key_file(const char *path)
{
	size_t n = strlen(path);
	static const char tail[] = ".imapfleet/key";

	return n >= sizeof(tail) - 1 && strcmp(path + n - (sizeof(tail) - 1), tail) == 0 &&
	       (n == sizeof(tail) - 1 || path[n - sizeof(tail)] == '/');
}

static int passfile_stat_ok(const char *path, const struct stat *st, size_t max, char *why, size_t whylen)
{
	int forbidden = named_like_a_key_file(path);

	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "%s is not a regular file (a FIFO, a device or a directory); a passfile is a "
				      "plain file with the password on its first line",
			 path);
		return -1;
	}
	pthread_mutex_lock(&g_forbid_lock);
	for (unsigned i = 0; i < g_nforbidden && !forbidden; i++)
		forbidden = g_forbidden[i].dev == st->st_dev && g_forbidden[i].ino == st->st_ino;
	pthread_mutex_unlock(&g_forbid_lock);
	if (forbidden) {
		snprintf(why, whylen, "%s is imapfleet's state key file; it is never sent as a password: fix the "
				      "passfile path",
			 path);
		return -1;
	}
	if ((uint64_t)st->st_size > max) {
		snprintf(why, whylen, "%s is larger than %zu bytes: a passfile holds one password on its first line",
			 path, max);
		return -1;
	}
	return 0;
}

int fleet_passfile_check(const char *path, size_t max, char *why, size_t whylen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	return passfile_stat_ok(path, &st, max, why, whylen);
}

char *fleet_read_passfile(const char *path, size_t max, char *why, size_t whylen)
{
	/* O_NONBLOCK: a FIFO must be refused, not waited on for a writer */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	char *buf;
	size_t got = 0, line;

	if (fd < 0) {
		snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (passfile_stat_ok(path, &st, max, why, whylen) < 0) {
		close(fd);
		return NULL;
	}
	buf = xmalloc(max + 2);
	for (;;) {
		ssize_t n = read(fd, buf + got, max + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, whylen, "could not read %s: %s", path, strerror(errno));
			close(fd);
			explicit_bzero(buf, max + 2);
			xfree(&buf);
			return NULL;
		}
		if (n == 0 || (got += (size_t)n) > max)
			break;
	}
	close(fd);
	if (got > max) { /* it grew since fstat */
		snprintf(why, whylen, "%s is larger than %zu bytes: a passfile holds one password on its first line",
			 path, max);
		explicit_bzero(buf, max + 2);
		xfree(&buf);
		return NULL;
	}
	for (line = 0; line < got && buf[line] != '\n' && buf[line] != '\r'; line++)
		;
	explicit_bzero(buf + line, max + 2 - line);
	if (strncmp(buf, "-----BEGIN ", 11) == 0) {
		snprintf(why, whylen, "%s holds a PEM key or certificate, not a password: fix the passfile path", path);
		explicit_bzero(buf, line);
		xfree(&buf);
		return NULL;
	}
	return buf;
}

#if defined(__SANITIZE_ADDRESS__)
#define FLEET_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FLEET_ASAN 1
#endif
#endif

int fleet_harden_process(void)
{
	struct rlimit none = {0, 0};
	int rc = 0;

	if (setrlimit(RLIMIT_CORE, &none) != 0)
		rc = -1;
#ifndef FLEET_ASAN
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		rc = -1;
#endif
	return rc;
}

int fleet_process_dumpable(void)
{
	return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

/* The environment is read once: imapfleet never changes it, and the engine asks for every window
 * and every large message (getenv walks the whole environment each time). */
static const char *g_failpoint;
static pthread_once_t g_failpoint_once = PTHREAD_ONCE_INIT;

static void failpoint_read(void)
{
	g_failpoint = getenv("IMAPFLEET_FAILPOINT");
}

int fleet_failpoint_armed(const char *name)
{
	pthread_once(&g_failpoint_once, failpoint_read);
	return g_failpoint && strcmp(g_failpoint, name) == 0;
}

void fleet_failpoint(const char *name)
{
	if (fleet_failpoint_armed(name)) {
		static const char msg[] = "imapfleet: IMAPFLEET_FAILPOINT: killed here on request\n";

		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			/* nothing to do: the process ends either way */
		}
		raise(SIGKILL);
	}
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int fleet_unhex(const char *hex, unsigned char *out, size_t n)
{
	if (strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

void fleet_hex(const void *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
}

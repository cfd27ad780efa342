#include "common/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int fleet_failpoint_armed(const char *name)
{
	const char *want = getenv("IMAPFLEET_FAILPOINT");

	return want && strcmp(want, name) == 0;
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

/* common/util.h: time and strict number parsing (no atoi: it cannot report garbage). */
#ifndef IMAPFLEET_COMMON_UTIL_H
#define IMAPFLEET_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds, for timeouts and rates. */
uint64_t fleet_now_ms(void);
/* Wall-clock milliseconds since the epoch, for records. */
uint64_t fleet_wall_ms(void);
void fleet_sleep_ms(unsigned ms);

/* Parses a whole decimal string into [min, max]. Returns 0, or -1 on garbage/overflow/range. */
int fleet_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Same over a length-delimited span (no NUL needed). */
int fleet_parse_u64n(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out);
/* Parses sizes with an optional K/M/G suffix (powers of 1024): "20M". */
int fleet_parse_size(const char *s, uint64_t *out);

/* Case-insensitive ASCII comparison of n bytes / whole strings. */
int fleet_strncaseeq(const char *a, const char *b, size_t n);
int fleet_strcaseeq(const char *a, const char *b);

/* Reads a whole small file (a passfile, a token) into a heap string, stripping one trailing
 * newline. Refuses files larger than max. Returns NULL and sets errno-style text in why. */
char *fleet_read_small_file(const char *path, size_t max, char *why, size_t whylen);

/* Crash injection for the tests: when the environment variable IMAPFLEET_FAILPOINT names this
 * point, the process kills itself (SIGKILL, as a power cut would) right here. Points are named in
 * docs/testing.md; unset, this is one getenv. */
void fleet_failpoint(const char *name);
/* 1 when IMAPFLEET_FAILPOINT names this point: to prepare the scene before fleet_failpoint. */
int fleet_failpoint_armed(const char *name);

#endif

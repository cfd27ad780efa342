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

/* Writes the n bytes at in as 2n lower-case hex digits into out (no terminator: the caller's
 * buffer may continue). */
void fleet_hex(const void *in, size_t n, char *out);
/* Reads the string hex, exactly 2n hex digits (either case), into the n bytes at out: 0, or -1
 * (out partly written) when hex has another length or a character that is not a hex digit. */
int fleet_unhex(const char *hex, unsigned char *out, size_t n);
/* Parses a whole decimal string into [min, max]. Returns 0, or -1 on garbage/overflow/range. */
int fleet_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Same over a length-delimited span (no NUL needed). */
int fleet_parse_u64n(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out);
/* Parses sizes with an optional K/M/G suffix (powers of 1024): "20M". */
int fleet_parse_size(const char *s, uint64_t *out);

/* A size for people: "512 bytes", "1.5 KB", "2.0 MB", "3.25 GB" (powers of 1024), into out. */
void fleet_human_size(uint64_t bytes, char *out, size_t cap);

/* Case-insensitive ASCII comparison of n bytes / whole strings. */
int fleet_strncaseeq(const char *a, const char *b, size_t n);
int fleet_strcaseeq(const char *a, const char *b);
/* The index of name (ASCII case ignored) in names[0..n), or -1; NULL entries match nothing. For
 * tables indexed by an enum value: {[MODE_X] = "x", [MODE_Y] = "y"}. */
int fleet_name_index(const char *name, const char *const *names, size_t n);

/* Three-way comparison of two numbers of one type: -1, 0 or 1 (for qsort and bsearch comparators;
 * never a subtraction, which overflows). */
#define FLEET_CMP(a, b) (((a) > (b)) - ((a) < (b)))
/* qsort/bsearch comparator of uint32_t elements (UID lists). */
int fleet_cmp_u32(const void *a, const void *b);
/* An enum's name from a table indexed by the enum ({[E_X] = "x", ...}): names[v], or dflt when v is
 * outside the table or has no name there. FLEET_ENUM_NAME takes the table's size from its type. */
const char *fleet_enum_name(const char *const *names, size_t n, int v, const char *dflt);
#define FLEET_ENUM_NAME(names, v, dflt) fleet_enum_name((names), sizeof(names) / sizeof((names)[0]), (int)(v), (dflt))

/* Reads a whole small file (a passfile, a token) into a heap string, stripping one trailing
 * newline. Refuses files larger than max. Returns NULL and sets errno-style text in why. */
char *fleet_read_small_file(const char *path, size_t max, char *why, size_t whylen);

/* Passfiles (issue 13: an accounts file from someone else could name any file, and its whole
 * content went to the server of that row). Rules, checked in this order:
 *   - a regular file (not a FIFO, a device, a directory): opened without blocking;
 *   - not a state key file: one registered with fleet_passfile_forbid(), or any file named "key" in
 *     a directory named ".imapfleet";
 *   - at most FLEET_PASSFILE_MAX bytes in all (a password file, not a document);
 *   - the first line only is the password (up to LF or CR); the rest of the file is ignored;
 *   - a first line that starts a PEM block ("-----BEGIN ...") is refused: a key, not a password.
 * Returns the password (heap; wipe and free it), or NULL with the reason in why; the reason names
 * the path but never the content. */
#define FLEET_PASSFILE_MAX 1024
char *fleet_read_passfile(const char *path, size_t max, char *why, size_t whylen);
/* The checks of fleet_read_passfile that need no reading (for an import): 0 or -1 with why. */
int fleet_passfile_check(const char *path, size_t max, char *why, size_t whylen);
/* Registers a file (by device and inode, so every path to it counts) that must never be read as
 * a passfile: the state key file. Thread-safe. At most FLEET_PASSFILE_FORBIDDEN_MAX files: a
 * process opens one state (one key file), a test a few; more are not registered (the ".imapfleet/key"
 * name rule still holds for them). */
#define FLEET_PASSFILE_FORBIDDEN_MAX 8
void fleet_passfile_forbid(const char *path);

/* Called first thing by main: no core dumps (RLIMIT_CORE 0) and not dumpable (PR_SET_DUMPABLE 0:
 * no core, no ptrace attach by other processes of the same user, /proc/PID/mem closed), since a
 * crash would otherwise write every password of the run into a core file. Under AddressSanitizer
 * the process stays dumpable (its leak checker needs ptrace). Returns 0, or -1 when a call failed
 * (the process goes on: this is hardening, not a precondition). */
int fleet_harden_process(void);
/* 1 when the process is not dumpable (tests). */
int fleet_process_dumpable(void);

/* Crash injection for the tests: when the environment variable IMAPFLEET_FAILPOINT names this
 * point, the process kills itself (SIGKILL, as a power cut would) right here. Points are named in
 * docs/testing.md. The variable is read once, at the first call. */
void fleet_failpoint(const char *name);
/* 1 when IMAPFLEET_FAILPOINT names this point: to prepare the scene before fleet_failpoint. */
int fleet_failpoint_armed(const char *name);

#endif

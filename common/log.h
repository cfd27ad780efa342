/* common/log.h: levelled logging with per-thread account/folder context and secret redaction.
 *
 * Every line carries the context of the thread that writes it ("account=u1@src folder=Sent"),
 * so the log of a run with 64 workers can still be read account by account.
 *
 * Redaction: every secret registered with fleet_log_add_secret() (passwords, tokens) is replaced
 * by "<redacted>" in every log line and every error text before it is written, whatever code path
 * produced it. Layers register a credential the moment they read it. Thread-safe.
 */
#ifndef IMAPFLEET_COMMON_LOG_H
#define IMAPFLEET_COMMON_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

enum fleet_log_level {
	FLEET_LOG_ERROR = 0,
	FLEET_LOG_WARN,
	FLEET_LOG_INFO,
	FLEET_LOG_DEBUG,
	FLEET_LOG_TRACE /* protocol traces: commands and responses, literal bodies elided */
};

void fleet_log_set_level(enum fleet_log_level level);
enum fleet_log_level fleet_log_get_level(void);
int fleet_log_enabled(enum fleet_log_level level);
/* Parses "error|warn|info|debug|trace"; returns -1 when unknown. */
int fleet_log_level_from_name(const char *name, enum fleet_log_level *out);
/* Where lines go (default stderr). Not owned. */
void fleet_log_set_sink(FILE *sink);
/* The level of the lines written to the sink (the terminal): `run --quiet` sets FLEET_LOG_WARN so
 * that the terminal gets warnings and errors only while per-account log files (the thread sink)
 * still get every line fleet_log_set_level lets through. Default: no cap of its own. */
void fleet_log_set_console_level(enum fleet_log_level level);

/* One log line as written (prefix, context, text): longer texts are cut, and say so. */
#define FLEET_LOG_LINE_MAX 4096
/* A text is scrubbed of secrets whole up to half of this, then cut: far past the line's cut, so a
 * secret cut in two is never shown. */
#define FLEET_LOG_RAW_MAX (128 * 1024)
/* One write to the terminal: a log line with the live display erased and drawn again (a block of
 * a screenful of lines); a longer write is cut, and says so. */
#define FLEET_LOG_WRITE_MAX (1 << 20)
/* A thread's context shown on each of its lines: the account ("user07@src.example", as the
 * accounts file names it) and the folder, each cut here so that the line keeps room for its text. */
#define FLEET_LOG_ACCOUNT_MAX 160
#define FLEET_LOG_FOLDER_MAX  256
/* A secret shorter than this is redacted only where it stands as a whole token: a short password
 * ("abc1") would otherwise blank every word that contains it. */
#define FLEET_LOG_SHORT_SECRET 8

/* A live display kept below the log lines on a terminal (scheduler/progress.h draws it). text is
 * the whole block, lines separated by '\n' without a final one, each already fitted to the
 * terminal's width (fewer columns than it has, so that no line wraps); it is copied and drawn at
 * once. NULL or "" erases it. While a block is shown, every line written to the sink first erases
 * the block, is printed, and the block is drawn again below it, in one write under the lock that
 * orders all writes: a log line is never written into the block, nor the block into a log line.
 * Between writes the cursor waits at the start of the block's first line, so erasing it is
 * "\r ESC[J" whatever the terminal did to the rows below (a resize that re-wrapped them). */
void fleet_log_overlay(const char *text);
/* Erases the block and prints final (when not NULL) in its place as ordinary lines; the display
 * is over. */
void fleet_log_overlay_end(const char *final);
/* Whether a block is on the screen now (lock-free: a signal handler erases it before writing). */
int fleet_log_overlay_shown(void);
/* Additional per-thread sink (a per-account log file), NULL to clear. Not owned. */
void fleet_log_set_thread_sink(FILE *sink);

/* Per-thread context printed on every line. Strings are copied; NULL clears. */
void fleet_log_set_context(const char *account, const char *folder);
void fleet_log_set_folder(const char *folder);

/* A thread's context and sink, to hand to a thread it starts for the same account (a second
 * connection, a login in parallel): save in the parent, restore first thing in the child. */
struct fleet_log_thread {
	char account[FLEET_LOG_ACCOUNT_MAX];
	char folder[FLEET_LOG_FOLDER_MAX];
	FILE *sink;
};
void fleet_log_thread_save(struct fleet_log_thread *t);
void fleet_log_thread_restore(const struct fleet_log_thread *t);

void fleet_log(enum fleet_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fleet_vlog(enum fleet_log_level level, const char *fmt, va_list ap);

#define log_error(...) fleet_log(FLEET_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) fleet_log(FLEET_LOG_WARN, __VA_ARGS__)
#define log_info(...) fleet_log(FLEET_LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (fleet_log_enabled(FLEET_LOG_DEBUG)) fleet_log(FLEET_LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_trace(...) do { if (fleet_log_enabled(FLEET_LOG_TRACE)) fleet_log(FLEET_LOG_TRACE, __VA_ARGS__); } while (0)

/* Registers a secret to be redacted from every line (copied; empty strings ignored). Registering
 * the same text again counts one more user of it (O(1) either way). */
void fleet_log_add_secret(const char *secret);
/* One user of the secret is done with it (its account ended): when none is left, it leaves the
 * table and its copy is wiped (explicit_bzero) before it is freed. Unknown texts are ignored. */
void fleet_log_remove_secret(const char *secret);
/* Distinct secrets registered (tests). */
size_t fleet_log_secret_count(void);
/* Forgets all registered secrets, wiping them (tests, exit). */
void fleet_log_clear_secrets(void);
/* Replaces registered secrets in s (NUL-terminated, buffer of size cap) in place; the result is cut
 * to cap at a character boundary after redaction. A secret of 8 bytes or more is redacted wherever
 * it appears; a shorter one only as a whole token (not glued to letters or digits on a side where
 * it has one), so the password "x" does not turn "--maxsize" into "--ma<redacted>size". */
void fleet_log_scrub(char *s, size_t cap);
/* What every line and error text goes through: src[0..len) scrubbed whole, then escaped for a
 * terminal (common/escape.h: no ESC, no CR/LF, valid UTF-8), then cut to fit dst at a character
 * boundary. Redaction happens before the cut, so a secret straddling it is never shown in part.
 * Returns the length written to dst (always NUL-terminated when cap > 0). */
size_t fleet_log_clean(char *dst, size_t cap, const char *src, size_t len);

#endif

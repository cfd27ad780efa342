/* io/cred.h: where a login's secret comes from, asked again before every login.
 *
 * A side of an account logs in with a password or an OAuth 2.0 bearer token. Either may be given
 * inline (password1, token1), in a file (passfile1, tokenfile1: re-read on every login, so an
 * outside process can keep a token fresh), by a command that prints it (passcmd1, tokencmd1, like
 * mbsync's PassCmd), or by a hook the caller supplies (a token fetched from an OAuth token
 * endpoint and cached: io/oauth.h).
 *
 * Commands run without a shell: the caller splits the command line into argv (no expansion) and
 * cred_fetch() forks and execvp()s it with stdin from /dev/null, its stdout read through a pipe
 * (at most CRED_MAX bytes, then it is killed) and its stderr discarded (it may echo the secret).
 * The first line of its output is the secret; a command that runs longer than its timeout is
 * killed. Nothing the command prints is ever logged or put in an error text: errors say only how it
 * ended (exit status, signal, timeout, too much output, empty output).
 *
 * Every secret is registered with fleet_log_add_secret() before cred_fetch() returns it, so no log
 * line or error text can show it. Returned secrets are heap strings the caller wipes and frees with
 * cred_free().
 *
 * Errors: a secret that cannot be had (no such file, command failed) is FLEET_ERR_AUTH with scope
 * account and code "CREDENTIAL" (never retried blindly, like a refused login), except a command
 * timeout, which is FLEET_ERR_TRANSIENT (code "CREDENTIAL_TIMEOUT"); a hook reports its own class.
 *
 * Thread-safety: cred_fetch may run in many threads at once (fork in a threaded program is safe
 * here: the child only calls async-signal-safe functions before execvp).
 */
#ifndef IMAPFLEET_IO_CRED_H
#define IMAPFLEET_IO_CRED_H

#include <stddef.h>

#include "common/err.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* a password source that gave nothing usable */
#define CRED_ERR_CREDENTIAL "CREDENTIAL"
/* a password command that did not finish in time */
#define CRED_ERR_TIMEOUT "CREDENTIAL_TIMEOUT"

/* Largest secret accepted from a file or a command (bytes of output; JWT access tokens of the big
 * providers are 1-3 KB). */
#define CRED_MAX 16384
/* Default time a command gets to print its secret. */
#define CRED_CMD_TIMEOUT_MS 30000

enum cred_kind {
	CRED_NONE = 0,
	CRED_INLINE, /* value is the secret itself */
	CRED_FILE,   /* value is a path: first line of the file, re-read on every fetch */
	CRED_CMD,    /* argv: a command printing the secret on its first line */
	CRED_HOOK    /* hook() produces it (OAuth token endpoints) */
};

/* refresh = 1 asks for a new secret because the last one was refused (an expired token): a hook
 * must not hand out its cached value again. */
typedef int (*cred_hook_fn)(void *ctx, int refresh, char **out, struct fleet_err *err);

struct cred_source {
	enum cred_kind kind;
	int is_token;		/* 1: an OAuth bearer token (XOAUTH2/OAUTHBEARER), 0: a password */
	const char *name;	/* what to call it in errors: "tokencmd2", "passfile1" (never the value) */
	const char *value;	/* CRED_INLINE secret, CRED_FILE path (borrowed) */
	char *const *argv;	/* CRED_CMD: argv[0] is looked up in PATH; NULL-terminated (borrowed) */
	unsigned timeout_ms;	/* CRED_CMD: 0 = CRED_CMD_TIMEOUT_MS */
	cred_hook_fn hook;	/* CRED_HOOK */
	void *hook_ctx;
};

/* Produces the current secret into *out (heap, registered as a secret). Returns 0, or -1 with err
 * naming the source (src->name) and what went wrong, never the secret or the command's output. */
int cred_fetch(const struct cred_source *src, int refresh, char **out, struct fleet_err *err);

/* Runs argv as described above and returns its first output line in *out (heap, registered as a
 * secret). name is used in error texts. */
int cred_run_command(char *const *argv, unsigned timeout_ms, const char *name, char **out, struct fleet_err *err);

/* The first line of a small file (a tokenfile re-read on every login), registered as a secret. */
int cred_read_file(const char *path, const char *name, char **out, struct fleet_err *err);

/* Wipes (OPENSSL_cleanse) and frees a secret; sets *s to NULL. NULL-safe. */
void cred_free(char **s);

#endif

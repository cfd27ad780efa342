/* common/err.h: the error type every layer reports through.
 *
 * An error has two axes (after isync): a class that says how to react (retry, back off, give up)
 * and a scope that says what failed (one message, a folder, the account, the whole run). The retry
 * policy reads class and scope only, never the message text.
 *
 * Functions that can fail take a `struct fleet_err *err` last, return < 0 on failure and fill it.
 * The struct is plain (callers keep it on the stack); it owns no heap memory.
 */
#ifndef IMAPFLEET_COMMON_ERR_H
#define IMAPFLEET_COMMON_ERR_H

#include <stdarg.h>

enum fleet_err_class {
	FLEET_ERR_NONE = 0,
	FLEET_ERR_TRANSIENT, /* may work later: network, server restart, lost DB connection */
	FLEET_ERR_THROTTLED, /* the server asked us to slow down; honour retry_after_ms */
	FLEET_ERR_PERMANENT, /* will not work by retrying: bad input, rejected message, no such folder */
	FLEET_ERR_AUTH,      /* credentials refused: never retried blindly */
	FLEET_ERR_BUG        /* a broken invariant in imapfleet or the server (SERVERBUG, constraint) */
};

enum fleet_err_scope {
	FLEET_SCOPE_MESSAGE = 0,
	FLEET_SCOPE_FOLDER,
	FLEET_SCOPE_ACCOUNT,
	FLEET_SCOPE_RUN
};

/* An error code is one short word; message and detail are one line each (a terminal line or
 * two), cut to fit. */
#define FLEET_ERR_CODE_MAX 40
#define FLEET_ERR_TEXT_MAX 512
/* A message is formatted up to this before it is cleaned and cut to FLEET_ERR_TEXT_MAX. */
#define FLEET_ERR_RAW_MAX (16 * 1024)

struct fleet_err {
	enum fleet_err_class cls;
	enum fleet_err_scope scope;
	char code[FLEET_ERR_CODE_MAX];     /* short machine word: "ECONNREFUSED", "AUTHENTICATIONFAILED" */
	char message[FLEET_ERR_TEXT_MAX];  /* primary line: "could not connect to mail.example.com:993" */
	char detail[FLEET_ERR_TEXT_MAX];   /* optional: server text, hint for the operator */
	unsigned retry_after_ms;           /* a server's backoff hint, 0 when none */
};

/* Codes every layer may raise (the others are named in the header of the module that raises them;
 * cli/exit.c maps them to the documented exit codes). */
#define FLEET_ERR_CODE_CANCELLED "CANCELLED" /* stopped on request (SIGINT/SIGTERM, a cancel flag) */
#define FLEET_ERR_CODE_USAGE "USAGE"         /* a bad option or value from the operator */

void fleet_err_clear(struct fleet_err *err);

/* Fills err (if not NULL) and returns -1 so callers can `return fleet_err_set(...)`.
 * code may be NULL. The message is scrubbed of registered secrets (see log.h). */
int fleet_err_set(struct fleet_err *err, enum fleet_err_class cls, enum fleet_err_scope scope,
		  const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Sets the detail line; keeps class, scope and message. */
void fleet_err_detail(struct fleet_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prepends context to the message: "folder Sent: <old message>". */
void fleet_err_prefix(struct fleet_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int fleet_err_is_set(const struct fleet_err *err);
const char *fleet_err_class_name(enum fleet_err_class cls);
const char *fleet_err_scope_name(enum fleet_err_scope scope);
/* Parses a class name back ("transient" ...); returns -1 when unknown. */
int fleet_err_class_from_name(const char *name, enum fleet_err_class *out);

/* Whether the retry policy may try this error again later (transient, throttled). */
int fleet_err_retryable(const struct fleet_err *err);

#endif

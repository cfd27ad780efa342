/* io/imap_parser.h: incremental, resumable parser for IMAP server responses (RFC 3501/9051).
 *
 * After Dovecot's lib-imap and mbsync: the parser is fed whatever bytes arrived, in any split
 * (one byte at a time works), and returns "need more" instead of blocking. It never recurses
 * (nested lists use an explicit stack) and enforces hard limits on line length, nesting depth,
 * literal size and total buffered response size, because every byte comes from the network.
 *
 * Events (pull model): imap_parser_next() consumes input and reports one event at a time.
 *   IMAP_PARSER_RESPONSE       a whole response is parsed: ev->resp
 *   IMAP_PARSER_LITERAL_START  a literal {n} / ~{n} begins: ev->resp is the response parsed so far
 *                              (e.g. "* 12 FETCH (UID 345 BODY[]"), ev->item the atom just before
 *                              the literal ("BODY[]"), ev->literal_size its size. Before the next
 *                              call the consumer may call imap_parser_stream_literal(); otherwise
 *                              the literal is buffered (refused above limits.max_buffered_literal).
 *   IMAP_PARSER_LITERAL_DATA   a chunk of a streamed literal: ev->data/ev->len point into the
 *                              caller's input (zero-copy)
 *   IMAP_PARSER_LITERAL_END    the streamed literal is complete; the finished response holds an
 *                              IMAP_NODE_STREAMED node with its size in its place
 * Everything an event points to is borrowed and valid until the next call on the parser.
 *
 * Errors: malformed input is FLEET_ERR_BUG, scope account, code "PARSE" with an excerpt of the
 * offending line in detail; a limit violation is the same class with code "PARSE_LIMIT". After an
 * error the parser refuses further input until imap_parser_reset().
 *
 * Thread-safety: a parser belongs to one thread at a time; the free functions are reentrant.
 */
#ifndef IMAPFLEET_IO_IMAP_PARSER_H
#define IMAPFLEET_IO_IMAP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* an answer that does not parse */
#define IMAP_PARSER_ERR_PARSE "PARSE"
/* an answer beyond the parser's limits */
#define IMAP_PARSER_ERR_PARSE_LIMIT "PARSE_LIMIT"
/* RFC 5530: the mailbox is full (also set from a server's words) */
#define IMAP_CODE_OVERQUOTA "OVERQUOTA"
/* the server asked to slow down (in words, no code) */
#define IMAP_CODE_THROTTLED "THROTTLED"
/* RFC 5530: the server cannot serve now */
#define IMAP_CODE_UNAVAILABLE "UNAVAILABLE"
/* RFC 5530: the client (imapfleet) sent something wrong */
#define IMAP_CODE_CLIENTBUG "CLIENTBUG"
/* RFC 5530: the mailbox exists already */
#define IMAP_CODE_ALREADYEXISTS "ALREADYEXISTS"

/* The parser's default limits: what a server may send before the response is refused. */
/* one response line outside literals: FETCH and LIST lines are far shorter; Dovecot's own cap is
 * 64 KiB too (the IMAP client raises it, see IMAP_CLIENT_LINE_MAX in imap.h) */
#define IMAP_PARSER_LINE_MAX (64 * 1024)
/* list nesting: a BODYSTRUCTURE of a deeply nested MIME message stays well below */
#define IMAP_PARSER_DEPTH_MAX 32
/* one literal, streamed or not: above any message a server accepts (Gmail 35 MB, Exchange 150 MB) */
#define IMAP_PARSER_LITERAL_MAX ((uint64_t)1 << 30)
/* a literal kept in memory rather than streamed: headers, names, small bodies */
#define IMAP_PARSER_BUFFERED_LITERAL_MAX (16 * 1024 * 1024)
/* memory for one parsed response (nodes included): a buffered literal and its line, twice over */
#define IMAP_PARSER_RESPONSE_MAX (32 * 1024 * 1024)
/* bytes of an offending line quoted in a parse error */
#define IMAP_PARSER_EXCERPT_MAX 160

struct imap_parser_limits {
	size_t max_line;	     /* bytes of one response outside literals (IMAP_PARSER_LINE_MAX) */
	unsigned max_depth;	     /* list nesting (IMAP_PARSER_DEPTH_MAX) */
	uint64_t max_literal;	     /* any literal, streamed or not (IMAP_PARSER_LITERAL_MAX) */
	size_t max_buffered_literal; /* a literal kept in memory (IMAP_PARSER_BUFFERED_LITERAL_MAX) */
	size_t max_response;	     /* memory for one parsed response, nodes included (IMAP_PARSER_RESPONSE_MAX) */
};

/* Fills the defaults above. */
void imap_parser_limits_default(struct imap_parser_limits *l);

enum imap_node_type {
	IMAP_NODE_ATOM = 0, /* also numbers and BODY[...]<n> section items, which are one atom */
	IMAP_NODE_QUOTED,   /* "..." with escapes removed */
	IMAP_NODE_LITERAL,  /* {n} kept in memory (may contain NUL; use len) */
	IMAP_NODE_STREAMED, /* {n} that was streamed to the consumer: only its size is kept */
	IMAP_NODE_NIL,
	IMAP_NODE_LIST
};

struct imap_node {
	enum imap_node_type type;
	const char *str; /* ATOM, QUOTED, LITERAL: bytes, NUL-terminated; "" otherwise */
	size_t len;
	uint64_t size;			/* STREAMED: literal size; LITERAL: same as len */
	int literal8;			/* the literal was ~{n} */
	size_t count;			/* LIST: number of children */
	const struct imap_node *child;	/* LIST: first child or NULL */
	const struct imap_node *next;	/* next sibling or NULL */
	const struct imap_node *parent; /* enclosing list or NULL at top level */
};

enum imap_resp_kind {
	IMAP_RESP_UNTAGGED = 0, /* "* ..." */
	IMAP_RESP_TAGGED,	/* "a1 OK ..." */
	IMAP_RESP_CONTINUATION	/* "+ ..." */
};

enum imap_status {
	IMAP_STATUS_NONE = 0, /* a data response (FETCH, LIST, ...) */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_PREAUTH,
	IMAP_STATUS_BYE
};

struct imap_response {
	enum imap_resp_kind kind;
	const char *tag; /* TAGGED: the tag; "" otherwise */
	int has_number;	 /* "* 23 EXISTS", "* 5 FETCH (...)" */
	uint32_t number;
	const char *name;	      /* upper-cased: "OK", "FETCH", "LIST", "CAPABILITY"; "" for "+" */
	enum imap_status status;      /* status responses only */
	const char *code;	      /* response code name, upper-cased ("UIDVALIDITY"), NULL if none */
	const char *code_args;	      /* raw text after the code name up to "]", "" if none */
	const char *text;	      /* status and continuation text, "" if none */
	const struct imap_node *args; /* data responses: first argument (siblings via next), or NULL */
	size_t nargs;		      /* top-level arguments */
	int complete;		      /* 0 in a LITERAL_START view */
};

enum imap_parser_event_type {
	IMAP_PARSER_NEED_MORE = 0,
	IMAP_PARSER_RESPONSE,
	IMAP_PARSER_LITERAL_START,
	IMAP_PARSER_LITERAL_DATA,
	IMAP_PARSER_LITERAL_END
};

struct imap_parser_event {
	enum imap_parser_event_type type;
	const struct imap_response *resp; /* RESPONSE, LITERAL_START */
	const char *item;		  /* LITERAL_*: atom before the literal ("BODY[]"), or "" */
	uint64_t literal_size;		  /* LITERAL_* */
	int literal8;
	const char *data; /* LITERAL_DATA */
	size_t len;
};

struct imap_parser;

/* limits NULL = defaults. Never fails (allocation aborts). */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits);
void imap_parser_free(struct imap_parser **p);
/* Forgets any partial response and a previous error. */
void imap_parser_reset(struct imap_parser *p);
/* Applies new limits from the next response on. */
void imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *limits);

/* Consumes bytes from data[0..len) and reports the next event. *consumed says how many bytes were
 * used; call again with the rest. Returns the event type (> 0), 0 when all input was consumed and
 * more is needed (ev->type NEED_MORE), < 0 on malformed input or a limit (err filled). */
int imap_parser_next(struct imap_parser *p, const char *data, size_t len, size_t *consumed,
		     struct imap_parser_event *ev, struct fleet_err *err);

/* Only right after a LITERAL_START event: deliver this literal as LITERAL_DATA/END events. */
void imap_parser_stream_literal(struct imap_parser *p);

/* Bytes of the current literal not consumed yet: input that must still come (0 outside literals). */
uint64_t imap_parser_literal_left(const struct imap_parser *p);

/* 1 when the parser is between responses (nothing partial buffered). */
int imap_parser_at_boundary(const struct imap_parser *p);

/* At end of input: 0 when at a response boundary, else -1 with a PARSE error ("truncated"). */
int imap_parser_finish(struct imap_parser *p, struct fleet_err *err);

/* ---- reading parsed responses --------------------------------------------------------------- */

/* 1 when n is an ATOM equal to name, case-insensitively. */
int imap_node_is_atom(const struct imap_node *n, const char *name);
/* 1 for ATOM, QUOTED and LITERAL (string-like) nodes. */
int imap_node_is_string(const struct imap_node *n);
/* Parses an ATOM number in [0, max]; returns 0 or -1. */
int imap_node_u64(const struct imap_node *n, uint64_t max, uint64_t *out);
/* The i-th (0-based) top-level argument or child of a list; NULL when out of range. */
const struct imap_node *imap_node_nth(const struct imap_node *first, size_t i);
/* In a list of name/value pairs ("UID 5 FLAGS (...)"), the value after the atom `name`. */
const struct imap_node *imap_list_get(const struct imap_node *list, const char *name);

/* Renders a response for traces: literals shown as {N bytes}, at most max bytes (then "...").
 * Returns 0 or -1 when b is full. */
int imap_response_render(const struct imap_response *r, struct fleet_buf *b, size_t max);

/* ---- response codes ------------------------------------------------------------------------- */

/* 1 when the response carries code `name` (case-insensitive). */
int imap_resp_has_code(const struct imap_response *r, const char *name);
/* For numeric codes (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, UNSEEN, APPENDLIMIT): the number. */
int imap_resp_code_u64(const struct imap_response *r, const char *name, uint64_t *out);

/* A growable list of heap strings (flags, capabilities, attributes). */
struct imap_strlist {
	char **v;
	size_t n, alloc;
};
void imap_strlist_add(struct imap_strlist *l, const char *s, size_t len);
void imap_strlist_release(struct imap_strlist *l);
/* Index of s (case-insensitive) or -1. */
long imap_strlist_find(const struct imap_strlist *l, const char *s);

/* Splits code args into words, dropping one level of parentheses:
 * "(\Seen \Draft \*)" -> \Seen, \Draft, \*; "IMAP4rev1 IDLE" -> IMAP4rev1, IDLE. Appends to out. */
void imap_code_words(const char *args, struct imap_strlist *out);

/* UID sets: "5", "5:7", "1,3:4,9". Kept as ranges so "1:4294967295" costs nothing. */
struct imap_uid_range {
	uint32_t lo, hi;
};
struct imap_uidset {
	struct imap_uid_range *r;
	size_t n, alloc;
};
/* Parses a set; "*" stands for UINT32_MAX. Appends to set. Returns 0 or -1 on garbage. */
int imap_uidset_parse(struct imap_uidset *set, const char *s, size_t len);
void imap_uidset_release(struct imap_uidset *set);
/* Appends uids[0..n) to b as an IMAP sequence set, runs of consecutive UIDs as ranges ("1:3,7");
 * stops before b would hold more than max bytes (0: b's own cap). Returns 1 when every UID went
 * in, 0 when the set was cut. */
struct fleet_buf;
int imap_uidset_format(struct fleet_buf *b, const uint32_t *uids, size_t n, size_t max);
uint64_t imap_uidset_count(const struct imap_uidset *set);
int imap_uidset_contains(const struct imap_uidset *set, uint32_t uid);
/* The i-th UID in set order (0-based); -1 when out of range. */
int imap_uidset_nth(const struct imap_uidset *set, uint64_t i, uint32_t *uid);

/* APPENDUID args: "uidvalidity uid-set" (uid-set is one UID, or several for MULTIAPPEND). */
int imap_code_appenduid(const char *args, uint32_t *uidvalidity, struct imap_uidset *uids);
/* COPYUID args: "uidvalidity source-set dest-set". */
int imap_code_copyuid(const char *args, uint32_t *uidvalidity, struct imap_uidset *src,
		      struct imap_uidset *dst);

/* ---- errors from refusals ------------------------------------------------------------------- */

/* The error code of a provider's "used up for today" answer (Gmail's "[OVERQUOTA] Account exceeded
 * command or bandwidth limits"): class throttled, scope account; the account waits for its next day. */
#define IMAP_CODE_DAILY_LIMIT "DAILY_LIMIT"

/* Maps a NO/BAD/BYE (status + response code + text) to an error class and scope through one table
 * (RFC 5530 codes, TOOBIG, Gmail THROTTLED and its daily bandwidth limit, Office 365 "Request is
 * throttled. Suggested Backoff Time: N milliseconds", "Server Unavailable. 21", "User is
 * authenticated but not connected").
 * default_scope is used where the code does not imply one (a bare NO to SELECT is about the
 * folder, to APPEND about the message). Fills err (code = response code, or "NO"/"BAD"/"BYE")
 * and returns -1. */
int imap_status_to_err(enum imap_status status, const char *code, const char *text,
		       enum fleet_err_scope default_scope, struct fleet_err *err);
/* Same for a parsed response. */
int imap_response_to_err(const struct imap_response *r, enum fleet_err_scope default_scope,
			 struct fleet_err *err);

const char *imap_status_name(enum imap_status st);

#endif

/* io/imap.h: the IMAP client: one connection to one server, on top of io/stream.h and the response
 * parser (io/imap_parser.h).
 *
 * Shape: imap_conn_open() connects, reads the greeting, does STARTTLS when the endpoint asks for it
 * and learns the capabilities; imap_conn_login() authenticates. Commands are tagged and may be
 * pipelined: imap_cmd_send() writes a command (buffered) and returns its id, imap_cmd_wait() reads
 * until that command completes; untagged responses go to the handler of the oldest command in flight
 * that claims them, else to the connection's bookkeeping (EXISTS, EXPUNGE, VANISHED, CAPABILITY,
 * BYE) and an optional unsolicited handler. Typed helpers (SELECT, LIST, STATUS, UID FETCH, APPEND
 * ...) are built on that.
 *
 * Message bodies are never held whole in memory: UID FETCH hands body literals to callbacks in
 * chunks that point into the read buffer, and APPEND takes the body in chunks, so a source FETCH
 * can be streamed straight into a destination APPEND.
 *
 * Mailbox names are UTF-8 in this API; the client encodes them to modified UTF-7 on the wire and
 * decodes LIST results.
 *
 * Security (design section 7): with IO_TLS_STARTTLS the connection fails when STARTTLS is not
 * offered (code STARTTLS_UNAVAILABLE) or when the server sends anything after its OK to STARTTLS
 * (STARTTLS_INJECTION); capabilities are asked again after TLS. LOGIN/AUTHENTICATE are refused on a
 * cleartext stream unless the endpoint mode is IO_TLS_PLAIN (code CLEARTEXT_REFUSED). The password
 * and the token are registered with fleet_log_add_secret() when the options are first seen, and
 * traces (FLEET_LOG_TRACE, opts.trace) show "LOGIN user <redacted>", AUTHENTICATE payloads as
 * <redacted> and literal bodies as {N bytes}.
 *
 * Errors: network errors are FLEET_ERR_TRANSIENT, scope account; protocol violations (unparsable
 * response, unknown tag, unexpected continuation) are FLEET_ERR_BUG, scope account, with a scrubbed
 * excerpt of the line in detail; a NO/BAD is classified by imap_status_to_err() with a scope that
 * fits the command (SELECT: folder, APPEND: message ...). After a network or protocol error the
 * connection is broken: every pending and later command fails with the same error; close it.
 *
 * Thread-safety: a connection belongs to one thread at a time. Different connections are
 * independent. Strings in result structs are owned by the struct (release functions below).
 */
#ifndef IMAPFLEET_IO_IMAP_H
#define IMAPFLEET_IO_IMAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "io/imap_parser.h"
#include "io/stream.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* no authentication mechanism both sides support */
#define IMAP_ERR_AUTH_UNSUPPORTED "AUTH_UNSUPPORTED"
/* a password would go over a connection without TLS */
#define IMAP_ERR_CLEARTEXT_REFUSED "CLEARTEXT_REFUSED"
/* no password or token for the login */
#define IMAP_ERR_NO_CREDENTIALS "NO_CREDENTIALS"
/* the server disables LOGIN (and no other mechanism fits) */
#define IMAP_ERR_LOGINDISABLED "LOGINDISABLED"
/* the server refused the login with a bare NO or BAD */
#define IMAP_ERR_LOGIN_FAILED "LOGIN_FAILED"
/* the server broke the protocol (unexpected or malformed answer) */
#define IMAP_ERR_PROTOCOL "PROTOCOL"
/* a value in an answer is out of range */
#define IMAP_ERR_PROTOCOL_VALUE "PROTOCOL_VALUE"
/* the server closed the connection */
#define IMAP_ERR_EOF "EOF"
/* a command did not fit the output buffer */
#define IMAP_ERR_WBUF "WBUF"
/* the server lacks UIDPLUS where it is needed */
#define IMAP_ERR_UIDPLUS_MISSING "UIDPLUS_MISSING"
/* MULTIAPPEND asked for, not offered */
#define IMAP_ERR_MULTIAPPEND_UNAVAILABLE "MULTIAPPEND_UNAVAILABLE"
/* the server has no QUOTA extension */
#define IMAP_ERR_QUOTA_MISSING "QUOTA_MISSING"
/* a SEARCH answer larger than the cap */
#define IMAP_ERR_SEARCH_LIMIT "SEARCH_LIMIT"
/* an INTERNALDATE that cannot be sent */
#define IMAP_ERR_INTERNALDATE "INTERNALDATE"
/* a Gmail label that cannot be set */
#define IMAP_ERR_LABEL "LABEL"

enum imap_auth_mech {
	IMAP_AUTH_AUTO = 0, /* token: OAUTHBEARER or XOAUTH2; authuser: PLAIN; else PLAIN with SASL-IR
			       when offered, otherwise LOGIN */
	IMAP_AUTH_LOGIN,
	IMAP_AUTH_PLAIN,
	IMAP_AUTH_XOAUTH2,
	IMAP_AUTH_OAUTHBEARER
};

/* COMPRESS=DEFLATE (RFC 4978), only ever where the server offers it. */
enum imap_compress {
	IMAP_COMPRESS_OFF = 0,
	IMAP_COMPRESS_ON,
	IMAP_COMPRESS_AUTO /* when the login's round trip took IMAP_COMPRESS_AUTO_RTT_MS or more */
};
#define IMAP_COMPRESS_AUTO_RTT_MS 20

struct imap_options {
	struct io_endpoint ep; /* strings borrowed for the call to imap_conn_open (the stream copies) */
	const char *user;
	const char *password;
	const char *authuser;	 /* admin/master login: AUTHENTICATE PLAIN authzid=user authcid=authuser */
	const char *oauth_token; /* XOAUTH2/OAUTHBEARER bearer token (the caller reads it from a file) */
	enum imap_auth_mech auth;
	int trace;	   /* 1 = protocol trace at FLEET_LOG_TRACE */
	const char *label; /* "src"/"dst" for traces and messages; NULL = ep.label or "imap" */
	int no_id;	   /* 1 = do not send ID even when offered */
	enum imap_compress compress; /* after login (io/deflate.h); 0 = off */
	const struct imap_parser_limits *limits; /* NULL = defaults, with max_line IMAP_CLIENT_LINE_MAX so
						    that SEARCH results of large folders fit */
};

struct imap_conn;

/* Connects, reads the greeting (BYE -> error classified from its code, transient by default),
 * STARTTLS when ep.mode says so, and learns the capabilities. Copies what it needs from opts. */
int imap_conn_open(const struct imap_options *opts, struct imap_conn **out, struct fleet_err *err);
/* Authenticates (nothing to do after PREAUTH), refreshes capabilities and sends ID when offered.
 * A refusal is FLEET_ERR_AUTH with the server's text, unless its code says transient/throttled
 * (UNAVAILABLE, LIMIT, THROTTLED ...). */
int imap_conn_login(struct imap_conn *c, struct fleet_err *err);
/* open + login. */
int imap_conn_connect(const struct imap_options *opts, struct imap_conn **out, struct fleet_err *err);
/* imap_conn_connect for n connections at once (the two sides of an account: their logins' round
 * trips overlap instead of adding up), each in a thread of its own that carries the caller's log
 * context. out[i] is the connection or NULL with errs[i] filled. Returns how many failed. */
int imap_conn_connect_many(const struct imap_options *const *opts, size_t n, struct imap_conn **out,
			   struct fleet_err *errs);
/* LOGOUT and wait for the BYE/OK (errors are reported but the connection is done either way). */
int imap_logout(struct imap_conn *c, struct fleet_err *err);
/* The same in two halves, to log out of several connections in one round trip: send (and flush)
 * returns the id, wait reads the answer and the server's close. */
int imap_logout_send(struct imap_conn *c, struct fleet_err *err);
int imap_logout_wait(struct imap_conn *c, int id, struct fleet_err *err);
/* Closes and frees (no LOGOUT); sets *c to NULL. */
void imap_conn_close(struct imap_conn **c);

int imap_conn_is_broken(const struct imap_conn *c);
int imap_conn_is_preauth(const struct imap_conn *c);
/* 1 when COMPRESS=DEFLATE is on; counts (may be NULL) receives the bytes read compressed and
 * inflated, and written before and after compression. */
int imap_conn_compressed(const struct imap_conn *c, uint64_t counts[4]);
/* The round trips of one connection, summed up as the answers come: every command's time from when
 * it was queued to its tagged answer (a round trip at the least: waiting, queueing and a stalled
 * thread only add to it). Commands in flight together share a stall of either end, so "rounds"
 * counts only the answers to commands sent after the previous counted answer came: no one stall
 * can stretch two of them. */
struct imap_rtt {
	uint64_t n;	   /* answers timed */
	uint64_t min_ms;   /* the quickest of them (0 when n is 0): a round trip to the server at the
			      least, so near 0 on a LAN, tens of ms over a WAN */
	uint64_t rounds;   /* answers in rounds of their own, as above */
	uint64_t first_ms; /* when the first round's command was queued */
	uint64_t last_ms;  /* when the last round's answer came */
};
/* Adds one answer: queued at sent_ms, answered at done_ms. Answers are added in the order they
 * came (done_ms never decreasing), which makes the rounds counted the most there can be. Pure. */
void imap_rtt_add(struct imap_rtt *r, uint64_t sent_ms, uint64_t done_ms);
/* The connection's round trips so far (a copy). */
void imap_conn_rtt(const struct imap_conn *c, struct imap_rtt *out);
const char *imap_conn_label(const struct imap_conn *c);
/* The greeting text (borrowed). */
const char *imap_conn_greeting(const struct imap_conn *c);
/* The transport, for io_stream_tls_info() and byte counters (borrowed). */
struct io_stream *imap_conn_stream(struct imap_conn *c);

/* ---- capabilities ---------------------------------------------------------------------------- */

/* 1 when the server advertised `name` exactly ("IDLE", "AUTH=PLAIN"), case-insensitive. */
int imap_conn_has_cap(const struct imap_conn *c, const char *name);
/* For "NAME=value" capabilities: the value of the first one ("APPENDLIMIT" -> "35651584"); NULL
 * when absent; "" for a bare "APPENDLIMIT". Borrowed until capabilities change. */
const char *imap_conn_cap_value(const struct imap_conn *c, const char *name);
/* Numeric capability value; -1 when absent or not a number. */
int imap_conn_cap_u64(const struct imap_conn *c, const char *name, uint64_t *out);
const struct imap_strlist *imap_conn_caps(const struct imap_conn *c);

/* ---- caps on what a server controls --------------------------------------------------------------
 * A hostile or broken server can answer one command forever (an endless LIST, an endless metadata
 * FETCH) or with more than any real mailbox holds. Every cap on what the client accumulates for a
 * command is named here. Past one, the command fails with code IMAP_ERR_LIMIT, class permanent
 * (the same server would do it again), scope account, a message naming the cap; the connection is
 * dropped, since the rest of the answer cannot be skipped. Only that account fails. */
#define IMAP_ERR_LIMIT "RESPONSE_LIMIT"
/* LIST/LSUB entries of one answer (real accounts hold a few thousand folders at most). */
#define IMAP_LIST_MAX_ENTRIES 50000
/* FETCH responses delivered for one UID FETCH: each message once, flag updates from other sessions
 * on top; more than twice the mailbox's EXISTS (plus this slack) is not a real mailbox. */
#define IMAP_FETCH_MAX_PER_EXISTS 2
#define IMAP_FETCH_SLACK 1024
/* Bytes of the answer to any one command, on the wire, streamed message bodies excepted (a metadata
 * FETCH of a 1,000,000-message folder is about 250 MB). */
#define IMAP_CMD_MAX_BYTES (512ull << 20)
/* Untagged responses claimed by any one command (a SEARCH is one response; a FETCH of a folder of
 * 10,000,000 messages is 10,000,000). */
#define IMAP_CMD_MAX_RESPONSES 20000000ull

/* Minimum progress while a command is awaited: over every period of the endpoint's io_timeout_ms
 * (120 s by default) the server must complete a command or send at least this many bytes. The
 * stream's own timeout is for inactivity and restarts on every byte; this one a server that
 * drip-feeds its answer (one byte a second) cannot extend. Past it: transient, code "TIMEOUT". */
#define IMAP_MIN_PROGRESS_BYTES 4096

/* ---- the client's own buffers ----------------------------------------------------------------------
 * What one connection holds or builds; a command that would pass its cap is refused (CLIENTBUG,
 * "command too long") instead of being sent cut. */
/* One response line outside literals: SEARCH answers of large folders (50,000,000 UIDs at the most,
 * IMAP_SEARCH_MAX_UIDS) come on one line; the parser's default (IMAP_PARSER_LINE_MAX) is too small. */
#define IMAP_CLIENT_LINE_MAX (4 * 1024 * 1024)
/* One read from the stream: four full TLS records. */
#define IMAP_READ_CHUNK (64 * 1024)
/* Buffered commands are written out beyond this: four full TLS records. */
#define IMAP_WBUF_FLUSH (64 * 1024)
/* One command text, literals included (a MULTIAPPEND batch, a UID set of a large folder). */
#define IMAP_CMD_MAX (8 * 1024 * 1024)
/* The longest UID set one command carries: IMAP_CMD_MAX less room for the rest of the command (the
 * verb, UID STORE's flag list, UID FETCH's items: callers keep those short), so that a set built to
 * this cap is never refused as "command too long" when it is sent. */
#define IMAP_CMD_WORDS_MAX 1024
#define IMAP_UIDSET_MAX	   (IMAP_CMD_MAX - IMAP_CMD_WORDS_MAX)
/* A traced line: enough to read the command, short enough for a terminal; the prefix (tag, label)
 * takes at most IMAP_TRACE_SLACK more. */
#define IMAP_TRACE_MAX	 2000
#define IMAP_TRACE_SLACK 256
/* UIDs one SEARCH may return: ten times the largest real folder. */
#define IMAP_SEARCH_MAX_UIDS (50u * 1000 * 1000)
/* A mailbox name as sent (modified UTF-7): folder paths on real servers stay far below (Dovecot
 * refuses names past 4 KiB). */
#define IMAP_MAILBOX_WIRE_MAX 4096
/* A mailbox name or Gmail label as listed, decoded to UTF-8: a name of one response line. */
#define IMAP_NAME_MAX (64 * 1024)
/* LOGIN and AUTHENTICATE: the command, the SASL message and its base64 form. OAuth access tokens
 * are a few KB (Microsoft's up to about 4 KB); the cap leaves room for much larger ones. */
#define IMAP_AUTH_MAX (64 * 1024)
/* AUTHENTICATE PLAIN's message: authzid, authcid and password (RFC 4616 allows 255 bytes each;
 * real servers take longer passwords, so more). */
#define IMAP_AUTH_PLAIN_MAX 8192
/* The trace line of LOGIN: "LOGIN", the quoted user, "<redacted>". */
#define IMAP_LOGIN_TRACE_MAX 1024
/* ENABLE and its extension names (the client asks for three or four). */
#define IMAP_ENABLE_CMD_MAX 1024
/* UID STORE X-GM-LABELS of one message: Gmail allows a few hundred labels per message. */
#define IMAP_LABELS_CMD_MAX (1 << 20)
/* A server's alert or refusal as shown once in the log ("server says NO [CODE] text"). */
#define IMAP_NOTICE_MAX 1024
/* Distinct alert (and untagged NO/BAD) texts of each kind shown once per connection: a server
 * repeats a handful; one that sends more different ones gets the rest counted, not shown. */
#define IMAP_ALERTS_KEPT 8
/* What is kept of the server's greeting and of a BYE's text (shown to people, cut to fit). */
#define IMAP_GREETING_MAX 256
/* Greetings remembered per implicit-TLS server (host:port), so that a later connection there can
 * send its login before the greeting arrives: servers a process talks to (one entry each; the
 * oldest makes room), the key's length (a host name and a port), and the capability words kept
 * (a longer greeting is not remembered: that server's connections wait for their greeting). */
#define IMAP_GREET_CACHE_MAX 256
#define IMAP_GREET_KEY_MAX (256 + 8)
#define IMAP_GREET_CAPS_MAX 2048
/* LITERAL- (RFC 7888): a non-synchronising literal is allowed up to this size. */
#define IMAP_LITERAL_MINUS_MAX 4096

/* ---- timeouts ------------------------------------------------------------------------------------ */
/* How long imap_logout waits for the server to close. */
#define IMAP_LOGOUT_CLOSE_WAIT_MS 1000
/* How long a cleartext greeting may keep us waiting before we check for an implicit-TLS port. */
#define IMAP_GREETING_PROBE_MS 3000
/* The TLS handshake tried on that port: connect and handshake, on loopback or a LAN a few ms. */
#define IMAP_TLS_PROBE_TIMEOUT_MS 5000

/* ---- text fields of the client's structs ------------------------------------------------------------
 * Filled with snprintf: a longer text is cut, never overflows. */
/* A command's tag: "a" and the command id (an int), 12 bytes at the most. */
#define IMAP_TAG_MAX 16
/* A command's name in messages ("UID FETCH", "APPEND"): its first words, cut here. */
#define IMAP_CMD_NAME_MAX 32
/* A connection's label in log lines and errors ("src", "dst", a caller's): cut here. */
#define IMAP_LABEL_MAX 64
/* A response code word: RFC 5530's longest (AUTHENTICATIONFAILED) is 20 bytes; a longer, cut word
 * matches no code the client acts on. */
#define IMAP_CODE_MAX 48
/* The arguments of a tagged response's code, kept with the result: a [CAPABILITY ...] list, or the
 * APPENDUID of a MULTIAPPEND batch, whose UIDs are one or a few ranges (a cut APPENDUID is
 * malformed, and ignored with a warning). */
#define IMAP_CODE_ARGS_MAX 1024
/* The text of a tagged response, kept for the error it becomes. */
#define IMAP_RESULT_TEXT_MAX 512
/* The personal namespace prefix, UTF-8: real ones are a word and a separator ("INBOX."). */
#define IMAP_NS_PREFIX_MAX 512
/* A SPECIAL-USE attribute: RFC 6154's longest ("\Archive", "\Flagged") is 9 bytes. */
#define IMAP_SPECIAL_USE_MAX 16
/* A quota root's name (GETQUOTAROOT): "" or a user's or folder's name, for messages. */
#define IMAP_QUOTA_ROOT_MAX 256

/* ---- commands and pipelining ---------------------------------------------------------------------- */

/* Untagged handler: return 1 when the response was for this command, 0 to pass it on, < 0 to fail
 * the command (err filled; the connection goes on). */
typedef int (*imap_untagged_fn)(struct imap_conn *c, void *ctx, const struct imap_response *r,
				struct fleet_err *err);

struct imap_result {
	enum imap_status status; /* OK, NO or BAD */
	char code[IMAP_CODE_MAX]; /* response code of the tagged response, "" if none */
	char code_args[IMAP_CODE_ARGS_MAX];
	char text[IMAP_RESULT_TEXT_MAX];
};

/* Sends "<tag> <fmt...>" (buffered until a wait, a poll or the buffer fills). The command may hold
 * literals built by imap_quote_string() ("{n}\r\n..."): synchronising ones wait for the server's
 * continuation here. Returns the command id (> 0) or -1. Every id must be waited for. */
int imap_cmd_send(struct imap_conn *c, imap_untagged_fn fn, void *ctx, struct fleet_err *err, const char *fmt,
		  ...) __attribute__((format(printf, 5, 6)));
/* Same with a ready command text (no tag, no CRLF). */
int imap_cmd_send_text(struct imap_conn *c, imap_untagged_fn fn, void *ctx, const char *text, size_t len,
		       struct fleet_err *err);
/* Reads until command `id` completes. 0 on OK; -1 on NO/BAD (err classified, where the code does
 * not say, with `scope`), on a handler's error, or on a connection error. res may be NULL. */
int imap_cmd_wait(struct imap_conn *c, int id, struct imap_result *res, enum fleet_err_scope scope,
		  struct fleet_err *err);
/* 1 when command id has completed (its result is waiting for imap_cmd_wait). */
int imap_cmd_done(const struct imap_conn *c, int id);
/* Commands sent and not yet completed. */
size_t imap_conn_in_flight(const struct imap_conn *c);
/* Writes buffered commands. */
int imap_conn_flush(struct imap_conn *c, struct fleet_err *err);
/* Flushes, then processes whatever arrives within timeout_ms (0 = only what is there already)
 * without blocking longer. Returns how many commands completed (>= 0) or -1. */
int imap_conn_poll(struct imap_conn *c, int timeout_ms, struct fleet_err *err);
/* Receives untagged responses no command claimed (after the connection's own bookkeeping). */
void imap_conn_set_unsolicited(struct imap_conn *c, imap_untagged_fn fn, void *ctx);

/* Mailbox state tracked from untagged responses since the last SELECT. */
struct imap_conn_counters {
	uint32_t exists;
	uint32_t recent;
	uint64_t expunged; /* EXPUNGE responses */
	uint64_t vanished; /* UIDs reported by VANISHED */
};
void imap_conn_counters(const struct imap_conn *c, struct imap_conn_counters *out);

/* ---- quoting ------------------------------------------------------------------------------------ */

/* Appends s as an IMAP string: quoted when it is 7-bit without CR/LF, else a literal ({n+} with
 * LITERAL+, or LITERAL- for n <= 4096; {n} otherwise). */
int imap_quote_string(const struct imap_conn *c, struct fleet_buf *b, const char *s, size_t len);
/* Appends a UTF-8 mailbox name encoded to modified UTF-7 and quoted. Errors: invalid UTF-8. */
int imap_quote_mailbox(const struct imap_conn *c, struct fleet_buf *b, const char *utf8,
		       struct fleet_err *err);

/* ---- simple commands ------------------------------------------------------------------------------ */

int imap_capability(struct imap_conn *c, struct fleet_err *err);
int imap_noop(struct imap_conn *c, struct fleet_err *err);
/* ENABLE with a space-separated list ("CONDSTORE QRESYNC"); only what the server advertises. */
int imap_enable(struct imap_conn *c, const char *exts, struct fleet_err *err);
/* Pipelined form: the command id (wait with scope account), 0 when none of exts is offered, -1. */
int imap_enable_send(struct imap_conn *c, const char *exts, struct fleet_err *err);
/* 1 when the server confirmed ENABLED for ext. */
int imap_conn_enabled(const struct imap_conn *c, const char *ext);
int imap_create(struct imap_conn *c, const char *mailbox, struct fleet_err *err);
int imap_delete(struct imap_conn *c, const char *mailbox, struct fleet_err *err);
int imap_subscribe(struct imap_conn *c, const char *mailbox, struct fleet_err *err);
/* Pipelined CREATE and SUBSCRIBE: send only and return an id for imap_cmd_wait (scope folder), or
 * -1. Unlike the waiting forms, errors from the wait do not name the folder. */
int imap_create_send(struct imap_conn *c, const char *mailbox, struct fleet_err *err);
int imap_subscribe_send(struct imap_conn *c, const char *mailbox, struct fleet_err *err);
int imap_expunge(struct imap_conn *c, struct fleet_err *err);
/* UID EXPUNGE (needs UIDPLUS; -1 with code UIDPLUS_MISSING otherwise). */
int imap_uid_expunge(struct imap_conn *c, const char *uidset, struct fleet_err *err);

enum imap_store_mode {
	IMAP_STORE_ADD = 0, /* +FLAGS */
	IMAP_STORE_REMOVE,  /* -FLAGS */
	IMAP_STORE_REPLACE  /* FLAGS */
};
/* UID STORE uidset [+-]FLAGS[.SILENT] (flags): flags is a space-separated list without parens. */
int imap_uid_store(struct imap_conn *c, const char *uidset, enum imap_store_mode mode, const char *flags,
		   int silent, struct fleet_err *err);

/* Gmail (X-GM-EXT-1): UID STORE uid +X-GM-LABELS (labels) (add) or -X-GM-LABELS (not add; no .SILENT,
 * which not every server takes there).
 * labels are UTF-8: system labels ("\\Inbox") go as atoms, user labels modified UTF-7 encoded and
 * quoted. n == 0 sends nothing. */
int imap_uid_store_labels(struct imap_conn *c, uint32_t uid, int add, const char *const *labels, size_t n,
			  struct fleet_err *err);

/* ---- NAMESPACE ------------------------------------------------------------------------------------ */

struct imap_namespace {
	/* personal namespace prefix, UTF-8 ("INBOX." on Courier, "" on Dovecot) */
	char prefix[IMAP_NS_PREFIX_MAX];
	char delim;	  /* hierarchy delimiter, 0 when the server has none */
};
/* NAMESPACE when offered, else the delimiter from LIST "" "" and an empty prefix. */
int imap_namespace(struct imap_conn *c, struct imap_namespace *ns, struct fleet_err *err);
/* Pipelined form: the command id for imap_cmd_wait (scope account); ns must stay valid until then. */
int imap_namespace_send(struct imap_conn *c, struct imap_namespace *ns, struct fleet_err *err);

/* ---- LIST ----------------------------------------------------------------------------------------- */

enum imap_mbx_flag {
	IMAP_MBX_NOSELECT = 1 << 0, /* \Noselect or \NonExistent */
	IMAP_MBX_NOINFERIORS = 1 << 1,
	IMAP_MBX_HASCHILDREN = 1 << 2,
	IMAP_MBX_HASNOCHILDREN = 1 << 3,
	IMAP_MBX_SUBSCRIBED = 1 << 4,
	IMAP_MBX_NONEXISTENT = 1 << 5,
	IMAP_MBX_BAD_NAME = 1 << 6, /* the wire name is not valid mUTF-7; name holds it raw, and
				     * commands on this connection send it exactly as listed */
	IMAP_MBX_UNUSABLE = 1 << 7  /* the name holds a NUL byte, which no command can send: name holds
				     * it escaped ("Nul\x00Name") for messages; never select it */
};

struct imap_list_entry {
	char *name;		   /* UTF-8 */
	char *wire;		   /* as sent by the server (modified UTF-7) */
	char delim;		   /* 0 for NIL */
	unsigned flags;		   /* enum imap_mbx_flag */
	char special[IMAP_SPECIAL_USE_MAX]; /* SPECIAL-USE ("\Sent", "\Trash" ...) or "" */
	struct imap_strlist attrs; /* every attribute as sent */
};

struct imap_list {
	struct imap_list_entry *v;
	size_t n, alloc;
};

/* Every mailbox (LIST "" "*"), with SPECIAL-USE attributes (RETURN (SPECIAL-USE) when
 * LIST-EXTENDED and SPECIAL-USE are offered) and the subscribed flag (RETURN (SUBSCRIBED) with
 * LIST-EXTENDED, else a second LSUB "" "*"). Appends to out. */
int imap_list(struct imap_conn *c, struct imap_list *out, struct fleet_err *err);
/* Pipelined form: sends the LIST (and the LSUB that follows it without LIST-EXTENDED), puts the
 * command ids in ids[] and returns how many (1 or 2), or -1 (ids[0] > 0 then still needs waiting
 * for). out must stay valid until imap_list_wait() has waited for all of them. */
int imap_list_send(struct imap_conn *c, struct imap_list *out, int ids[2], struct fleet_err *err);
int imap_list_wait(struct imap_conn *c, const int *ids, int n, struct fleet_err *err);
/* LSUB "" "*": the subscribed names only (flags has IMAP_MBX_SUBSCRIBED). Names LSUB flags
 * \Noselect are left out, here and in imap_list: listed only for a subscribed child (RFC 3501
 * 6.3.9, Courier), they are not subscribed. */
int imap_lsub(struct imap_conn *c, struct imap_list *out, struct fleet_err *err);
void imap_list_release(struct imap_list *l);

/* ---- STATUS --------------------------------------------------------------------------------------- */

enum imap_status_have {
	IMAP_HAVE_MESSAGES = 1 << 0,
	IMAP_HAVE_UIDNEXT = 1 << 1,
	IMAP_HAVE_UIDVALIDITY = 1 << 2,
	IMAP_HAVE_HIGHESTMODSEQ = 1 << 3,
	IMAP_HAVE_SIZE = 1 << 4,
	IMAP_HAVE_UNSEEN = 1 << 5
};

struct imap_status_info {
	unsigned have; /* enum imap_status_have */
	uint32_t messages, uidnext, uidvalidity, unseen;
	uint64_t highestmodseq, size;
};

/* STATUS mailbox (MESSAGES UIDNEXT UIDVALIDITY [HIGHESTMODSEQ with CONDSTORE] [SIZE with STATUS=SIZE]). */
int imap_status(struct imap_conn *c, const char *mailbox, struct imap_status_info *out,
		struct fleet_err *err);
/* Pipelined form: returns an id for imap_cmd_wait (scope folder); out (memset here) and mailbox must
 * stay valid until then. */
int imap_status_send(struct imap_conn *c, const char *mailbox, struct imap_status_info *out,
		     struct fleet_err *err);

/* ---- SELECT / EXAMINE ---------------------------------------------------------------------------------- */

struct imap_mailbox {
	uint32_t exists, recent, uidvalidity, uidnext, unseen;
	uint64_t highestmodseq; /* 0 when unknown */
	int nomodseq;		/* [NOMODSEQ] */
	int read_only;		/* EXAMINE or [READ-ONLY] */
	struct imap_strlist flags;
	struct imap_strlist permanentflags; /* "\*" means new keywords allowed */
};

/* SELECT (read_only = 0) or EXAMINE; adds (CONDSTORE) when offered and not enabled. Errors scope
 * folder. out is released and refilled. */
int imap_select(struct imap_conn *c, const char *mailbox, int read_only, struct imap_mailbox *out,
		struct fleet_err *err);
/* Pipelined form: sends SELECT/EXAMINE and returns its id (or -1); out (released and zeroed here) and
 * mailbox must stay valid until imap_select_wait(). Commands may follow it at once (a UID FETCH of
 * the new mailbox, say): they run after it. Every id must be waited for. */
int imap_select_send(struct imap_conn *c, const char *mailbox, int read_only, struct imap_mailbox *out,
		     struct fleet_err *err);
int imap_select_wait(struct imap_conn *c, int id, const char *mailbox, int read_only, struct imap_mailbox *out,
		     struct fleet_err *err);
void imap_mailbox_release(struct imap_mailbox *m);

/* ---- SEARCH ------------------------------------------------------------------------------------------- */

struct imap_uids {
	uint32_t *v;
	size_t n, alloc;
};
/* UID SEARCH <criteria> (raw IMAP criteria: "ALL", "UID 100:*", "SINCE 1-Jan-2024"); uses
 * ESEARCH (RETURN (ALL)) when offered. Appends to out. At most 50M UIDs. */
int imap_uid_search(struct imap_conn *c, const char *criteria, struct imap_uids *out, struct fleet_err *err);
void imap_uids_release(struct imap_uids *u);

/* ---- QUOTA ------------------------------------------------------------------------------------------ */

struct imap_quota {
	int has_storage, has_messages;
	uint64_t storage_used_kb, storage_limit_kb;
	uint64_t messages_used, messages_limit;
	char root[IMAP_QUOTA_ROOT_MAX];
};
/* GETQUOTAROOT mailbox (needs QUOTA; -1 with code QUOTA_MISSING otherwise). The first root's limits. */
int imap_getquotaroot(struct imap_conn *c, const char *mailbox, struct imap_quota *q, struct fleet_err *err);

/* ---- UID FETCH with streamed bodies -------------------------------------------------------------------- */

struct imap_fetch_msg {
	uint32_t seq;
	uint32_t uid;		       /* always set: responses without a UID are not delivered */
	const struct imap_node *flags; /* LIST of flag atoms, or NULL when not fetched */
	const char *internaldate;      /* "17-Jul-1996 02:44:25 -0700" or NULL */
	int has_size;
	uint64_t rfc822_size;
	int has_modseq;
	uint64_t modseq;
	const char *
	    section_name; /* first buffered BODY[...]/BINARY[...] item ("BODY[HEADER.FIELDS (MESSAGE-ID)]") */
	const char *section; /* its bytes (NULL when NIL or none), not NUL-safe: use section_len */
	size_t section_len;
	int body_streamed; /* a body literal went through on_body_* callbacks */
	uint64_t body_size;
	const struct imap_response *resp; /* the whole response for anything else (borrowed) */
};

/* All callbacks return 0 or < 0 with err filled (then the FETCH fails with that error after its
 * responses were read; the connection stays usable). Pointers are valid during the call only. */
struct imap_fetch_cb {
	/* One complete FETCH response for a requested UID. */
	int (*on_message)(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err);
	/* Body literals (BODY[...], BINARY[...], RFC822, RFC822.TEXT; header sections excepted) are
	 * streamed when on_body_start is set, else buffered (at most 16 MiB, for tests and small
	 * messages). uid is 0 when the server sends UID after the body. */
	int (*on_body_start)(void *ctx, uint32_t seq, uint32_t uid, uint64_t size, struct fleet_err *err);
	int (*on_body_data)(void *ctx, const char *data, size_t len, struct fleet_err *err);
	int (*on_body_end)(void *ctx, struct fleet_err *err);
};

/* UID FETCH uidset items, e.g. items = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS
 * (MESSAGE-ID DATE)])" or "(UID BODY.PEEK[])". Unsolicited FETCH responses (flag changes by other
 * sessions, UIDs outside the set) are not delivered. cb and ctx must stay valid until the wait. */
int imap_fetch_send(struct imap_conn *c, const char *uidset, const char *items,
		    const struct imap_fetch_cb *cb, void *ctx, struct fleet_err *err);
/* Send and wait (scope folder). */
int imap_fetch(struct imap_conn *c, const char *uidset, const char *items, const struct imap_fetch_cb *cb,
	       void *ctx, struct fleet_err *err);

/* ---- APPEND, streamed ------------------------------------------------------------------------------- */

/* Starts APPEND mailbox [(flags)] ["internaldate"] {size}: with LITERAL+ (or LITERAL- and size <= 4096)
 * as a non-synchronising literal, so several APPENDs can be in flight; otherwise waits for the
 * server's "+" (a NO here, e.g. [TOOBIG] against APPENDLIMIT, is returned at once, classified,
 * scope message). flags: space-separated, may be NULL/""; internaldate: as from FETCH, may be NULL.
 * *id is the command id for imap_append_wait. Until imap_append_end no other command can be sent. */
int imap_append_begin(struct imap_conn *c, const char *mailbox, const char *flags, const char *internaldate,
		      uint64_t size, int *id, struct fleet_err *err);
/* MULTIAPPEND (RFC 3502): after the whole body of the previous message, announces the next message
 * of the same APPEND command. Needs MULTIAPPEND and LITERAL+ (-1 with code MULTIAPPEND_UNAVAILABLE
 * otherwise). The command is atomic on the server: one refusal and none of its messages is stored. */
int imap_append_next(struct imap_conn *c, const char *flags, const char *internaldate, uint64_t size,
		     struct fleet_err *err);
/* Body bytes, any number of calls; exactly `size` bytes in total. */
int imap_append_data(struct imap_conn *c, const void *data, size_t len, struct fleet_err *err);
/* Ends the command (fails if fewer than `size` bytes were given: the connection is then broken). */
int imap_append_end(struct imap_conn *c, struct fleet_err *err);

struct imap_append_result {
	int has_uid; /* APPENDUID (UIDPLUS) was reported */
	uint32_t uidvalidity, uid;
};
/* Waits for the APPEND; 0 with res filled, or -1 with the classified refusal (TOOBIG: permanent
 * message; OVERQUOTA: permanent account; TRYCREATE/NONEXISTENT: permanent folder ...). */
int imap_append_wait(struct imap_conn *c, int id, struct imap_append_result *res, struct fleet_err *err);
/* Waits for a MULTIAPPEND; 0 with the destination UIDs in append order in *uids (appended to;
 * empty without UIDPLUS) and *uidvalidity, or -1 with the classified refusal. */
int imap_append_wait_multi(struct imap_conn *c, int id, uint32_t *uidvalidity, struct imap_uidset *uids,
			   struct fleet_err *err);
/* begin + data + end + wait for a message in memory (tests, small messages). */
int imap_append_buf(struct imap_conn *c, const char *mailbox, const char *flags, const char *internaldate,
		    const void *data, size_t len, struct imap_append_result *res, struct fleet_err *err);

/* ---- INTERNALDATE ---------------------------------------------------------------------------------- */

#define IMAP_INTERNALDATE_LEN 27 /* "17-Jul-1996 02:44:25 -0700" + NUL */

/* Parses "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be space-padded). *utc = seconds since the epoch,
 * *tz_minutes = the zone offset. Returns 0 or -1. */
int imap_internaldate_parse(const char *s, int64_t *utc, int *tz_minutes);
/* Formats utc in the given zone offset into out (at least IMAP_INTERNALDATE_LEN bytes). */
int imap_internaldate_format(int64_t utc, int tz_minutes, char *out, size_t cap);

#endif

/* io/imap.c: see imap.h.
 *
 * One read buffer feeds the parser one event at a time, so that after any single response (the
 * STARTTLS OK above all) the client can stop and look at what is left unread. Commands sit in a
 * FIFO until their tagged response arrives and the caller collects the result with imap_cmd_wait.
 */
#include "config.h" /* first: _GNU_SOURCE for memmem */

#include "io/deflate.h"
#include "io/imap.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/escape.h"
#include "common/log.h"
#include "common/util.h"
#include "io/mutf7.h"
#include "io/net.h"

struct cmd;

/* How a command takes part in a literal: 1 stream it to me, 0 buffer it, -1 not mine. */
struct lit_ops {
	int (*start)(struct imap_conn *c, struct cmd *cmd, const struct imap_parser_event *ev);
	void (*data)(struct imap_conn *c, struct cmd *cmd, const char *d, size_t n);
	void (*end)(struct imap_conn *c, struct cmd *cmd);
};

struct cmd {
	int id;
	char tag[IMAP_TAG_MAX];
	char name[IMAP_CMD_NAME_MAX];
	imap_untagged_fn fn;
	void *ctx;
	void (*free_ctx)(void *ctx); /* ctx owned by the command (typed helpers) */
	const struct lit_ops *lit;
	int (*on_cont)(struct imap_conn *c, struct cmd *cmd, const struct imap_response *r,
		       struct fleet_err *err);
	int got_cont;
	uint64_t sent_ms; /* when it was queued: its answer came one round trip later at the least */
	int done;
	int courtesy; /* nobody waits for it (ID): freed once done, when the next command is sent */
	uint64_t resp_count, resp_bytes; /* the answer so far: against IMAP_CMD_MAX_* */
	int failed; /* err holds a handler's or the connection's error */
	struct imap_result res;
	struct fleet_err err;
	struct cmd *next;
};

struct imap_conn {
	char label[IMAP_LABEL_MAX];
	struct imap_rtt rtt; /* the answers' round trips so far (imap_conn_rtt) */
	struct io_endpoint ep;
	char *host, *cafile, *verify_host;
	char *user, *password, *authuser, *token;
	enum imap_auth_mech auth;
	int trace, no_id;

	struct io_stream *s;
	enum imap_compress compress; /* asked for (imap_options) */
	struct io_deflate *z;	     /* COMPRESS=DEFLATE active: every byte both ways through it */
	struct fleet_buf zbuf;	     /* compressed output */
	uint64_t login_ms;	     /* the login command's round trip (for IMAP_COMPRESS_AUTO) */
	struct imap_parser *p;
	char *rbuf;
	size_t rpos, rlen;
	struct fleet_buf wbuf;

	struct cmd *cmds, *cmds_tail;
	int next_id;
	unsigned completed;
	struct cmd *lit_cmd;	/* the command a streamed literal goes to */
	struct cmd *cont_cmd;	/* the command that expects "+" */
	struct cmd *append_cmd; /* an APPEND whose literal is being written */
	uint64_t append_left;
	int append_multi_ok;	/* the server takes more messages in this APPEND (MULTIAPPEND, LITERAL+) */

	int broken;
	struct fleet_err err;
	int greeted, preauth, caps_known, logged_in;
	int login_defer; /* the login command is sent and not waited for (early_login): its id */
	int login_id;
	unsigned caps_gen; /* bumped whenever capabilities are (re)read: tells whether login sent them */
	int bye;
	char bye_code[IMAP_CODE_MAX];
	char bye_text[IMAP_GREETING_MAX];
	char greeting[IMAP_GREETING_MAX];
	struct imap_strlist caps;
	struct imap_strlist enabled;
	struct imap_strlist alerts; /* [ALERT] texts already shown: each once per connection */
	struct imap_strlist said;   /* untagged NO/BAD texts already shown: each once per connection */
	/* Names LIST sent that are not valid modified UTF-7 (raw UTF-8, a malformed "&..."): each is
	 * sent back exactly as listed (raw_wires[i] for raw_names[i]), never re-encoded into another
	 * mailbox's name (issue 13.5). */
	struct imap_strlist raw_names, raw_wires;
	struct imap_conn_counters counters;
	imap_untagged_fn unsol;
	void *unsol_ctx;
	struct fleet_buf tbuf; /* trace rendering */
	uint64_t resp_bytes;   /* wire bytes of the response being parsed (streamed bodies excepted) */
	uint64_t win_start_ms, win_bytes; /* the minimum-progress period (IMAP_MIN_PROGRESS_BYTES) */
};

/* ---- small helpers ----------------------------------------------------------------------------- */

static int is_trace(const struct imap_conn *c)
{
	return c->trace && fleet_log_enabled(FLEET_LOG_TRACE);
}

static struct cmd *cmd_find(const struct imap_conn *c, int id)
{
	for (struct cmd *k = c->cmds; k; k = k->next)
		if (k->id == id)
			return k;
	return NULL;
}

static void cmd_unlink_free(struct imap_conn *c, struct cmd *cmd)
{
	struct cmd **pp = &c->cmds, *prev = NULL;

	while (*pp && *pp != cmd) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp)
		*pp = cmd->next;
	if (c->cmds_tail == cmd)
		c->cmds_tail = prev;
	if (c->lit_cmd == cmd)
		c->lit_cmd = NULL;
	if (c->cont_cmd == cmd)
		c->cont_cmd = NULL;
	if (c->append_cmd == cmd)
		c->append_cmd = NULL;
	if (cmd->free_ctx)
		cmd->free_ctx(cmd->ctx);
	xfree(&cmd);
}

static void cmd_fail(struct cmd *cmd, const struct fleet_err *e)
{
	if (cmd->failed)
		return;
	cmd->failed = 1;
	cmd->err = *e;
}

/* Marks the connection broken: every pending command fails with the same error. */
static int conn_fail(struct imap_conn *c, const struct fleet_err *e, struct fleet_err *err)
{
	if (!c->broken) {
		c->broken = 1;
		c->err = *e;
		for (struct cmd *k = c->cmds; k; k = k->next) {
			if (!k->done) {
				cmd_fail(k, e);
				k->done = 1;
				c->completed++;
			}
		}
		c->append_cmd = NULL;
		c->cont_cmd = NULL;
		c->lit_cmd = NULL;
	}
	if (err && err != &c->err)
		*err = c->err;
	return -1;
}

__attribute__((format(printf, 5, 6))) static int conn_fail_new(struct imap_conn *c, enum fleet_err_class cls,
							       const char *code, struct fleet_err *err,
							       const char *fmt, ...)
{
	struct fleet_err e;
	char msg[FLEET_ERR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fleet_err_set(&e, cls, FLEET_SCOPE_ACCOUNT, code, "%s: %s", c->label, msg);
	return conn_fail(c, &e, err);
}

static int broken_err(const struct imap_conn *c, struct fleet_err *err)
{
	if (err)
		*err = c->err;
	return -1;
}

static void set_caps_from_words(struct imap_conn *c, const char *words)
{
	imap_strlist_release(&c->caps);
	imap_code_words(words, &c->caps);
	c->caps_known = 1;
	c->caps_gen++;
}

static void set_caps_from_args(struct imap_conn *c, const struct imap_node *n)
{
	imap_strlist_release(&c->caps);
	for (; n; n = n->next)
		if (n->type == IMAP_NODE_ATOM)
			imap_strlist_add(&c->caps, n->str, n->len);
	c->caps_known = 1;
	c->caps_gen++;
}

/* ---- output ------------------------------------------------------------------------------------ */

int imap_conn_flush(struct imap_conn *c, struct fleet_err *err)
{
	if (c->broken)
		return broken_err(c, err);
	if (c->wbuf.len == 0)
		return 0;
	{
		struct fleet_err e;
		const void *out = c->wbuf.data;
		size_t len = c->wbuf.len;

		if (c->z) {
			fleet_buf_reset(&c->zbuf);
			if (io_deflate_compress(c->z, c->wbuf.data, c->wbuf.len, &c->zbuf, &e) < 0)
				return conn_fail(c, &e, err);
			out = c->zbuf.data;
			len = c->zbuf.len;
		}
		if (io_stream_write(c->s, out, len, &e) < 0) {
			fleet_err_prefix(&e, "%s", c->label);
			return conn_fail(c, &e, err);
		}
	}
	fleet_buf_reset(&c->wbuf);
	return 0;
}

static int conn_write(struct imap_conn *c, const void *data, size_t len, struct fleet_err *err)
{
	const char *p = data;

	if (c->broken)
		return broken_err(c, err);
	/* Top the buffer up to exactly IMAP_WBUF_FLUSH before writing it: every write is then whole 16 KB
	 * TLS records and one TCP push, whatever the sizes of the pieces (literal data comes in
	 * pieces of any size). The copy costs far less than a record or a packet more. */
	while (c->wbuf.len + len > IMAP_WBUF_FLUSH) {
		size_t room = c->wbuf.len < IMAP_WBUF_FLUSH ? IMAP_WBUF_FLUSH - c->wbuf.len : 0;

		if (fleet_buf_append(&c->wbuf, p, room) < 0)
			return conn_fail_new(c, FLEET_ERR_BUG, IMAP_ERR_WBUF, err, "output buffer overflow");
		p += room;
		len -= room;
		if (imap_conn_flush(c, err) < 0)
			return -1;
	}
	if (fleet_buf_append(&c->wbuf, p, len) < 0)
		return conn_fail_new(c, FLEET_ERR_BUG, IMAP_ERR_WBUF, err, "output buffer overflow");
	return 0;
}

/* ---- input and dispatch ----------------------------------------------------------------------- */

static void trace_response(struct imap_conn *c, const struct imap_response *r)
{
	if (!is_trace(c))
		return;
	fleet_buf_reset(&c->tbuf);
	imap_response_render(r, &c->tbuf, IMAP_TRACE_MAX);
	log_trace("%s S: %s", c->label, fleet_buf_cstr(&c->tbuf));
}

/* An [ALERT] must reach the user (RFC 3501 7.1), but once: Courier repeats its alert on every
 * SELECT, which made it 42 lines for one account. The same for an untagged NO or BAD: Courier
 * answers every APPEND refused for its quota with "* NO Error in IMAP command received by server.".
 * At most IMAP_ALERTS_KEPT distinct texts of each kind are remembered; a server that sends more
 * different ones gets the rest counted, not shown. */
static void show_once(struct imap_conn *c, struct imap_strlist *seen, const char *what, const char *text)
{
	if (imap_strlist_find(seen, text) >= 0)
		return;
	if (seen->n >= IMAP_ALERTS_KEPT) {
		if (seen->n == IMAP_ALERTS_KEPT) {
			log_warn("%s: the server sends more %s than imapfleet shows; further ones are not shown",
				 c->label, what);
			imap_strlist_add(seen, "", 0);
		}
		return;
	}
	imap_strlist_add(seen, text, strlen(text));
	log_warn("%s: %s", c->label, text);
}

static void show_alert(struct imap_conn *c, const char *text)
{
	struct fleet_buf line = FLEET_BUF_INIT(IMAP_NOTICE_MAX);

	fleet_buf_addf(&line, "server alert: %s", text);
	(void)fleet_buf_mark_cut(&line);
	show_once(c, &c->alerts, "alerts", fleet_buf_cstr(&line));
	fleet_buf_release(&line);
}

static void bookkeeping(struct imap_conn *c, const struct imap_response *r)
{
	if (r->has_number) {
		if (strcmp(r->name, "EXISTS") == 0) {
			c->counters.exists = r->number;
		} else if (strcmp(r->name, "RECENT") == 0) {
			c->counters.recent = r->number;
		} else if (strcmp(r->name, "EXPUNGE") == 0) {
			c->counters.expunged++;
			if (c->counters.exists > 0)
				c->counters.exists--;
		}
		return;
	}
	if (strcmp(r->name, "CAPABILITY") == 0) {
		set_caps_from_args(c, r->args);
	} else if (strcmp(r->name, "ENABLED") == 0) {
		for (const struct imap_node *n = r->args; n; n = n->next)
			if (n->type == IMAP_NODE_ATOM && imap_strlist_find(&c->enabled, n->str) < 0)
				imap_strlist_add(&c->enabled, n->str, n->len);
	} else if (strcmp(r->name, "VANISHED") == 0) {
		const struct imap_node *n = r->args;
		struct imap_uidset set = {0};

		if (n && n->type == IMAP_NODE_LIST)
			n = n->next;
		if (n && n->type == IMAP_NODE_ATOM && imap_uidset_parse(&set, n->str, n->len) == 0)
			c->counters.vanished += imap_uidset_count(&set);
		imap_uidset_release(&set);
	} else if (r->status == IMAP_STATUS_OK) {
		if (imap_resp_has_code(r, "CAPABILITY"))
			set_caps_from_words(c, r->code_args);
		else if (imap_resp_has_code(r, "ALERT"))
			show_alert(c, r->text);
	} else if (r->status == IMAP_STATUS_BYE) {
		c->bye = 1;
		snprintf(c->bye_code, sizeof(c->bye_code), "%s", r->code ? r->code : "");
		snprintf(c->bye_text, sizeof(c->bye_text), "%s", r->text);
	} else if (r->status == IMAP_STATUS_NO || r->status == IMAP_STATUS_BAD) {
		struct fleet_buf line = FLEET_BUF_INIT(IMAP_NOTICE_MAX);

		fleet_buf_addf(&line, "server says %s%s%s%s %s", imap_status_name(r->status), r->code ? " [" : "",
			       r->code ? r->code : "", r->code ? "]" : "", r->text);
		(void)fleet_buf_mark_cut(&line);
		show_once(c, &c->said, "refusals", fleet_buf_cstr(&line));
		fleet_buf_release(&line);
	}
}

/* ---- greetings seen, per server (early_login) ---------------------------------------------------- */

/* The capabilities of the last OK greeting from each implicit-TLS server (host:port) this process
 * connected to: a later connection there sends its login right behind the TLS handshake, before the
 * greeting arrives, with the mechanism those capabilities choose. A server that answered such a
 * login BAD, or lost the connection before answering it (it may throw away what comes before its
 * greeting), is marked and gets its logins after the greeting from then on. */
struct greet_entry {
	char key[IMAP_GREET_KEY_MAX];
	char words[IMAP_GREET_CAPS_MAX];
	int early_refused;
};

static struct greet_entry g_greet[IMAP_GREET_CACHE_MAX];
static size_t g_ngreet, g_greet_next;
static pthread_mutex_t g_greet_lock = PTHREAD_MUTEX_INITIALIZER;

static int greet_key(const struct imap_conn *c, char *key, size_t cap)
{
	int n;

	if (c->ep.mode != IO_TLS_IMPLICIT || !c->host)
		return -1;
	n = snprintf(key, cap, "%s:%u", c->host, io_port_or_default(c->ep.port, c->ep.mode));
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The entry of KEY, made (the oldest making room when full) when CREATE; NULL if none. Under the lock. */
static struct greet_entry *greet_entry_locked(const char *key, int create)
{
	struct greet_entry *e;

	for (size_t i = 0; i < g_ngreet; i++)
		if (strcmp(g_greet[i].key, key) == 0)
			return &g_greet[i];
	if (!create)
		return NULL;
	e = &g_greet[g_ngreet < IMAP_GREET_CACHE_MAX ? g_ngreet++ : g_greet_next++ % IMAP_GREET_CACHE_MAX];
	memset(e, 0, sizeof(*e));
	snprintf(e->key, sizeof(e->key), "%s", key);
	return e;
}

static void greet_cache_put(const struct imap_conn *c, const char *words)
{
	char key[IMAP_GREET_KEY_MAX];

	if (greet_key(c, key, sizeof(key)) < 0 || strlen(words) >= IMAP_GREET_CAPS_MAX)
		return;
	pthread_mutex_lock(&g_greet_lock);
	snprintf(greet_entry_locked(key, 1)->words, IMAP_GREET_CAPS_MAX, "%s", words);
	pthread_mutex_unlock(&g_greet_lock);
}

/* The capabilities to send an early login with: 1 when this server takes one, else 0. */
static int greet_cache_get(const struct imap_conn *c, char *words, size_t cap)
{
	char key[IMAP_GREET_KEY_MAX];
	const struct greet_entry *e;
	int found = 0;

	if (greet_key(c, key, sizeof(key)) < 0)
		return 0;
	pthread_mutex_lock(&g_greet_lock);
	e = greet_entry_locked(key, 0);
	if (e && e->words[0] && !e->early_refused) {
		snprintf(words, cap, "%s", e->words);
		found = 1;
	}
	pthread_mutex_unlock(&g_greet_lock);
	return found;
}

/* No more early logins to this server. */
static void greet_cache_refuse(const struct imap_conn *c)
{
	char key[IMAP_GREET_KEY_MAX];
	struct greet_entry *e;
	int was;

	if (greet_key(c, key, sizeof(key)) < 0)
		return;
	pthread_mutex_lock(&g_greet_lock);
	e = greet_entry_locked(key, 1);
	was = e->early_refused;
	e->early_refused = 1;
	pthread_mutex_unlock(&g_greet_lock);
	if (!was) /* one line per server, however many of its connections find out at once */
		log_info("%s: the login sent before the greeting went unanswered or was refused as BAD: "
			 "logging in after the greeting on every later connection to this server",
			 c->label);
}

static void on_greeting(struct imap_conn *c, const struct imap_response *r)
{
	struct fleet_err e;

	if (r->kind != IMAP_RESP_UNTAGGED ||
	    (r->status != IMAP_STATUS_OK && r->status != IMAP_STATUS_PREAUTH &&
	     r->status != IMAP_STATUS_BYE)) {
		conn_fail_new(c, FLEET_ERR_BUG, IMAP_ERR_PROTOCOL, NULL,
			      "server greeting is not OK, PREAUTH or BYE");
		fleet_err_detail(&c->err, "greeting: %.200s %.200s", r->name, r->text);
		return;
	}
	snprintf(c->greeting, sizeof(c->greeting), "%s", r->text);
	if (r->status == IMAP_STATUS_BYE) {
		imap_response_to_err(r, FLEET_SCOPE_ACCOUNT, &e);
		fleet_err_prefix(&e, "%s: server refused the connection", c->label);
		conn_fail(c, &e, NULL);
		return;
	}
	c->greeted = 1;
	c->preauth = r->status == IMAP_STATUS_PREAUTH;
	if (imap_resp_has_code(r, "CAPABILITY")) {
		set_caps_from_words(c, r->code_args);
		if (!c->preauth)
			greet_cache_put(c, r->code_args);
	}
}

static void on_tagged(struct imap_conn *c, const struct imap_response *r)
{
	struct cmd *cmd = NULL;

	for (struct cmd *k = c->cmds; k; k = k->next)
		if (!k->done && strcmp(k->tag, r->tag) == 0)
			cmd = k;
	if (!cmd) {
		conn_fail_new(c, FLEET_ERR_BUG, IMAP_ERR_PROTOCOL, NULL, "response with unknown tag %.20s", r->tag);
		fleet_err_detail(&c->err, "line: %.20s %s %.200s", r->tag, r->name, r->text);
		return;
	}
	cmd->res.status = r->status;
	snprintf(cmd->res.code, sizeof(cmd->res.code), "%s", r->code ? r->code : "");
	snprintf(cmd->res.code_args, sizeof(cmd->res.code_args), "%s", r->code_args);
	snprintf(cmd->res.text, sizeof(cmd->res.text), "%s", r->text);
	if (r->status == IMAP_STATUS_OK && imap_resp_has_code(r, "CAPABILITY"))
		set_caps_from_words(c, r->code_args);
	cmd->done = 1;
	imap_rtt_add(&c->rtt, cmd->sent_ms, fleet_now_ms());
	c->completed++;
	c->win_start_ms = 0; /* a completed command is progress: a new period starts */
	if (c->cont_cmd == cmd)
		c->cont_cmd = NULL;
}

/* Charges a response to the command that claimed it: past IMAP_CMD_MAX_BYTES or
 * IMAP_CMD_MAX_RESPONSES, the connection is dropped with IMAP_ERR_LIMIT. */
static void cmd_count_response(struct imap_conn *c, struct cmd *k, uint64_t bytes)
{
	k->resp_count++;
	k->resp_bytes += bytes;
	if (k->resp_bytes > IMAP_CMD_MAX_BYTES)
		conn_fail_new(c, FLEET_ERR_PERMANENT, IMAP_ERR_LIMIT, NULL,
			      "the answer to %s exceeds %llu MB (IMAP_CMD_MAX_BYTES): more than any real "
			      "mailbox holds; stopped reading it",
			      k->name, (unsigned long long)(IMAP_CMD_MAX_BYTES >> 20));
	else if (k->resp_count > IMAP_CMD_MAX_RESPONSES)
		conn_fail_new(c, FLEET_ERR_PERMANENT, IMAP_ERR_LIMIT, NULL,
			      "the answer to %s exceeds %llu responses (IMAP_CMD_MAX_RESPONSES): more than any "
			      "real mailbox holds; stopped reading it",
			      k->name, (unsigned long long)IMAP_CMD_MAX_RESPONSES);
}

static void dispatch_response(struct imap_conn *c, const struct imap_response *r)
{
	struct fleet_err e;
	uint64_t bytes = c->resp_bytes;

	c->resp_bytes = 0;

	trace_response(c, r);
	if (r->kind == IMAP_RESP_TAGGED) {
		on_tagged(c, r);
		return;
	}
	if (r->kind == IMAP_RESP_CONTINUATION) {
		struct cmd *cmd = c->cont_cmd;

		if (!cmd) {
			conn_fail_new(c, FLEET_ERR_BUG, IMAP_ERR_PROTOCOL, NULL, "unexpected continuation request");
			fleet_err_detail(&c->err, "line: + %.200s", r->text);
			return;
		}
		if (cmd->on_cont) {
			fleet_err_clear(&e);
			if (cmd->on_cont(c, cmd, r, &e) < 0 && !c->broken)
				cmd_fail(cmd, &e);
		} else {
			cmd->got_cont = 1;
		}
		return;
	}
	if (!c->greeted) {
		on_greeting(c, r);
		return;
	}
	bookkeeping(c, r);
	for (struct cmd *k = c->cmds; k; k = k->next) {
		int rc;

		if (k->done || !k->fn)
			continue;
		fleet_err_clear(&e);
		rc = k->fn(c, k->ctx, r, &e);
		if (rc < 0 && strcmp(e.code, IMAP_ERR_LIMIT) == 0) {
			conn_fail(c, &e, NULL); /* the rest of the answer cannot be skipped */
			return;
		}
		if (rc < 0)
			cmd_fail(k, &e);
		if (rc != 0) {
			cmd_count_response(c, k, bytes);
			return;
		}
	}
	if (c->unsol) {
		fleet_err_clear(&e);
		if (c->unsol(c, c->unsol_ctx, r, &e) < 0)
			log_warn("%s: unsolicited response handler: %s", c->label, e.message);
	}
}

static void dispatch_literal_start(struct imap_conn *c, const struct imap_parser_event *ev)
{
	c->lit_cmd = NULL;
	for (struct cmd *k = c->cmds; k; k = k->next) {
		int rc;

		if (k->done || !k->lit)
			continue;
		rc = k->lit->start(c, k, ev);
		if (rc < 0)
			continue;
		if (rc > 0) {
			c->lit_cmd = k;
			imap_parser_stream_literal(c->p);
		}
		return;
	}
}

static int eof_error(struct imap_conn *c, struct fleet_err *err)
{
	struct fleet_err e;

	if (c->bye) {
		imap_status_to_err(IMAP_STATUS_BYE, *c->bye_code ? c->bye_code : NULL, c->bye_text,
				   FLEET_SCOPE_ACCOUNT, &e);
		fleet_err_prefix(&e, "%s: connection closed by the server", c->label);
		return conn_fail(c, &e, err);
	}
	if (!imap_parser_at_boundary(c->p))
		return conn_fail_new(c, FLEET_ERR_TRANSIENT, IMAP_ERR_EOF, err,
				     "connection closed by the server in the middle of a response");
	return conn_fail_new(c, FLEET_ERR_TRANSIENT, IMAP_ERR_EOF, err, "connection closed by the server");
}

/* IMAP_MIN_PROGRESS_BYTES: n bytes just arrived. */
static int check_progress(struct imap_conn *c, size_t n, struct fleet_err *err)
{
	uint64_t now = fleet_now_ms();
	unsigned period = c->ep.io_timeout_ms ? c->ep.io_timeout_ms : IO_DEFAULT_IO_TIMEOUT_MS;

	if (!c->win_start_ms) {
		c->win_start_ms = now;
		c->win_bytes = 0;
	}
	c->win_bytes += n;
	if (now - c->win_start_ms < period)
		return 0;
	if (c->win_bytes < IMAP_MIN_PROGRESS_BYTES)
		return conn_fail_new(c, FLEET_ERR_TRANSIENT, NET_ERR_TIMEOUT, err,
				     "the server sent %llu bytes in %u s and completed nothing: too slow to be "
				     "working (at least %d bytes per period are needed); gave up",
				     (unsigned long long)c->win_bytes, period / 1000, IMAP_MIN_PROGRESS_BYTES);
	c->win_start_ms = now;
	c->win_bytes = 0;
	return 0;
}

/* conn_fill under COMPRESS=DEFLATE: inflate what is buffered into rbuf, reading compressed bytes
 * when it has nothing. No length hint to the stream: the compressed size of a literal's rest is
 * not known. The progress check counts inflated bytes; io/deflate.h bounds input that inflates to
 * nothing. */
static int conn_fill_inflate(struct imap_conn *c, struct fleet_err *err)
{
	struct fleet_err e;

	for (;;) {
		ssize_t n = io_deflate_inflate(c->z, c->rbuf, IMAP_READ_CHUNK, &e);
		size_t cap;
		void *in;

		if (n < 0) {
			fleet_err_prefix(&e, "%s", c->label);
			return conn_fail(c, &e, err);
		}
		if (n > 0) {
			c->rpos = 0;
			c->rlen = (size_t)n;
			return check_progress(c, (size_t)n, err);
		}
		in = io_deflate_inbuf(c->z, &cap);
		n = io_stream_read(c->s, in, cap, &e);
		if (n < 0) {
			fleet_err_prefix(&e, "%s", c->label);
			return conn_fail(c, &e, err);
		}
		if (n == 0)
			return eof_error(c, err);
		io_deflate_fed(c->z, (size_t)n);
	}
}

static int conn_fill(struct imap_conn *c, struct fleet_err *err)
{
	struct fleet_err e;
	ssize_t n;

	if (imap_conn_flush(c, err) < 0)
		return -1;
	if (c->z)
		return conn_fill_inflate(c, err);
	/* The rest of a literal is sure to come: let the stream wait for bigger pieces of it. */
	io_stream_expect(c->s, imap_parser_literal_left(c->p));
	n = io_stream_read(c->s, c->rbuf, IMAP_READ_CHUNK, &e);
	if (n < 0) {
		fleet_err_prefix(&e, "%s", c->label);
		return conn_fail(c, &e, err);
	}
	if (n == 0)
		return eof_error(c, err);
	c->rpos = 0;
	c->rlen = (size_t)n;
	return check_progress(c, (size_t)n, err);
}

/* Processes one parser event, reading first when the buffer is empty and may_read. Returns 1 on
 * progress, 0 when the buffer is empty and reading is not allowed, -1 on error (connection broken). */
static int conn_step(struct imap_conn *c, int may_read, struct fleet_err *err)
{
	struct imap_parser_event ev;
	struct fleet_err e;
	size_t used;
	int r;

	if (c->broken)
		return broken_err(c, err);
	if (c->rpos == c->rlen) {
		if (!may_read)
			return 0;
		if (conn_fill(c, err) < 0)
			return -1;
	}
	r = imap_parser_next(c->p, c->rbuf + c->rpos, c->rlen - c->rpos, &used, &ev, &e);
	c->rpos += used;
	if (r >= 0 && ev.type != IMAP_PARSER_LITERAL_DATA)
		c->resp_bytes += used; /* streamed bodies are not held: they do not count */
	if (r < 0) {
		fleet_err_prefix(&e, "%s", c->label);
		return conn_fail(c, &e, err);
	}
	switch (ev.type) {
	case IMAP_PARSER_RESPONSE: dispatch_response(c, ev.resp); break;
	case IMAP_PARSER_LITERAL_START: dispatch_literal_start(c, &ev); break;
	case IMAP_PARSER_LITERAL_DATA:
		if (c->lit_cmd)
			c->lit_cmd->lit->data(c, c->lit_cmd, ev.data, ev.len);
		break;
	case IMAP_PARSER_LITERAL_END:
		if (c->lit_cmd)
			c->lit_cmd->lit->end(c, c->lit_cmd);
		c->lit_cmd = NULL;
		break;
	case IMAP_PARSER_NEED_MORE: break;
	}
	if (c->broken)
		return broken_err(c, err);
	return 1;
}

int imap_conn_poll(struct imap_conn *c, int timeout_ms, struct fleet_err *err)
{
	unsigned before = c->completed;

	if (c->broken)
		return broken_err(c, err);
	if (imap_conn_flush(c, err) < 0)
		return -1;
	if (c->rpos == c->rlen) {
		struct fleet_err e;
		int r = c->z && io_deflate_has_input(c->z) ? 1 : io_stream_wait_readable(c->s, timeout_ms, &e);

		if (r < 0)
			return conn_fail(c, &e, err);
		if (r == 0)
			return 0;
		if (conn_fill(c, err) < 0)
			return -1;
	}
	while (c->rpos < c->rlen)
		if (conn_step(c, 0, err) < 0)
			return -1;
	return (int)(c->completed - before);
}

/* ---- sending commands ------------------------------------------------------------------------- */

static struct cmd *cmd_new(struct imap_conn *c, imap_untagged_fn fn, void *ctx, const char *text)
{
	struct cmd *cmd = xcalloc(1, sizeof(*cmd));
	size_t n = 0;

	if (imap_conn_in_flight(c) == 0)
		c->win_start_ms = 0; /* idle time before a command is not the server's slowness */
	cmd->id = ++c->next_id;
	cmd->sent_ms = fleet_now_ms();
	snprintf(cmd->tag, sizeof(cmd->tag), "a%d", cmd->id);
	cmd->fn = fn;
	cmd->ctx = ctx;
	/* "UID FETCH", "SELECT": a name for messages. */
	while (text[n] && text[n] != ' ')
		n++;
	if (n == 3 && fleet_strncaseeq(text, "UID", 3) && text[3] == ' ') {
		n = 4;
		while (text[n] && text[n] != ' ')
			n++;
	}
	snprintf(cmd->name, sizeof(cmd->name), "%.*s", (int)n, text);
	if (c->cmds_tail)
		c->cmds_tail->next = cmd;
	else
		c->cmds = cmd;
	c->cmds_tail = cmd;
	return cmd;
}

/* Finds "{n}" or "{n+}" ending at text[end) (just before a CRLF). */
static int literal_before(const char *text, size_t end, uint64_t *n, int *plus)
{
	size_t i = end, d1;

	if (i == 0 || text[i - 1] != '}')
		return -1;
	i--;
	*plus = i > 0 && text[i - 1] == '+';
	if (*plus)
		i--;
	d1 = i;
	while (i > 0 && text[i - 1] >= '0' && text[i - 1] <= '9')
		i--;
	if (i == 0 || text[i - 1] != '{' || d1 == i)
		return -1;
	return fleet_parse_u64n(text + i, d1 - i, 0, UINT64_MAX, n);
}

static void trace_command(struct imap_conn *c, const struct cmd *cmd, const char *text, size_t len)
{
	size_t pos = 0;

	if (!is_trace(c))
		return;
	fleet_buf_reset(&c->tbuf);
	fleet_buf_addf(&c->tbuf, "%s ", cmd->tag);
	while (pos < len) {
		const char *crlf = memmem(text + pos, len - pos, "\r\n", 2);
		uint64_t n;
		int plus;

		if (!crlf) {
			fleet_buf_add(&c->tbuf, text + pos, len - pos);
			break;
		}
		fleet_buf_add(&c->tbuf, text + pos, (size_t)(crlf - (text + pos)));
		if (literal_before(text, (size_t)(crlf - text), &n, &plus) < 0)
			break;
		fleet_buf_addf(&c->tbuf, " <%llu bytes> ", (unsigned long long)n);
		pos = (size_t)(crlf - text) + 2 + n;
	}
	log_trace("%s C: %s%s", c->label, fleet_buf_cstr(&c->tbuf), fleet_buf_truncated(&c->tbuf) ? " ..." : "");
}

/* Waits until cmd got a "+" (1) or completed (0: refused). */
static int wait_continuation(struct imap_conn *c, struct cmd *cmd, struct fleet_err *err)
{
	if (imap_conn_flush(c, err) < 0)
		return -1;
	c->cont_cmd = cmd;
	cmd->got_cont = 0;
	while (!cmd->got_cont && !cmd->done)
		if (conn_step(c, 1, err) < 0)
			return -1;
	if (c->cont_cmd == cmd)
		c->cont_cmd = NULL;
	return cmd->got_cont ? 1 : 0;
}

/* Writes "<tag> text\r\n", splitting at literals: "{n}\r\n" waits for "+", "{n+}\r\n" does not.
 * trace_text replaces the traced form (credentials). Returns 0, or -1 on a connection error; a
 * command the server refused before its literal is just done (its result tells). */
static int send_cmd(struct imap_conn *c, struct cmd *cmd, const char *text, size_t len,
		    const char *trace_text, struct fleet_err *err)
{
	size_t pos = 0;

	if (trace_text) {
		if (is_trace(c))
			log_trace("%s C: %s %s", c->label, cmd->tag, trace_text);
	} else {
		trace_command(c, cmd, text, len);
	}
	if (conn_write(c, cmd->tag, strlen(cmd->tag), err) < 0 || conn_write(c, " ", 1, err) < 0)
		return -1;
	while (pos <= len) {
		const char *crlf = memmem(text + pos, len - pos, "\r\n", 2);
		size_t end;
		uint64_t n;
		int plus, r;

		if (!crlf)
			return conn_write(c, text + pos, len - pos, err) < 0 ||
				       conn_write(c, "\r\n", 2, err) < 0
				   ? -1
				   : 0;
		end = (size_t)(crlf - text);
		if (literal_before(text, end, &n, &plus) < 0 || n > len - end - 2)
			return conn_fail_new(c, FLEET_ERR_BUG, IMAP_CODE_CLIENTBUG, err,
					     "command with a bare CRLF or a bad literal");
		if (conn_write(c, text + pos, end + 2 - pos, err) < 0)
			return -1;
		if (!plus) {
			r = wait_continuation(c, cmd, err);
			if (r < 0)
				return -1;
			if (r == 0)
				return 0;
		}
		if (conn_write(c, text + end + 2, (size_t)n, err) < 0)
			return -1;
		pos = end + 2 + (size_t)n;
	}
	return 0;
}

static int can_send(struct imap_conn *c, struct fleet_err *err)
{
	if (c->broken)
		return broken_err(c, err);
	if (c->append_cmd)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
				     "%s: command sent while an APPEND literal is unfinished", c->label);
	return 0;
}

static int cmd_submit(struct imap_conn *c, imap_untagged_fn fn, void *ctx, void (*free_ctx)(void *),
		      const struct lit_ops *lit, const char *text, size_t len, const char *trace_text,
		      struct fleet_err *err)
{
	struct cmd *cmd, *k, *next;

	for (k = c->cmds; k; k = next) {
		next = k->next;
		if (k->courtesy && k->done) {
			if (k->res.status != IMAP_STATUS_OK)
				log_debug("%s: %s refused: %s", c->label, k->name, k->res.text);
			cmd_unlink_free(c, k);
		}
	}
	if (can_send(c, err) < 0) {
		if (free_ctx)
			free_ctx(ctx);
		return -1;
	}
	cmd = cmd_new(c, fn, ctx, text);
	cmd->free_ctx = free_ctx;
	cmd->lit = lit;
	if (send_cmd(c, cmd, text, len, trace_text, err) < 0) {
		cmd_unlink_free(c, cmd);
		return -1;
	}
	return cmd->id;
}

int imap_cmd_send_text(struct imap_conn *c, imap_untagged_fn fn, void *ctx, const char *text, size_t len,
		       struct fleet_err *err)
{
	return cmd_submit(c, fn, ctx, NULL, NULL, text, len, NULL, err);
}

int imap_cmd_send(struct imap_conn *c, imap_untagged_fn fn, void *ctx, struct fleet_err *err, const char *fmt,
		  ...)
{
	struct fleet_buf b = FLEET_BUF_INIT(IMAP_CMD_MAX);
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = fleet_buf_vappendf(&b, fmt, ap);
	va_end(ap);
	if (r < 0) {
		fleet_buf_release(&b);
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
				     "command too long");
	}
	r = imap_cmd_send_text(c, fn, ctx, fleet_buf_cstr(&b), b.len, err);
	fleet_buf_release(&b);
	return r;
}

/* Collects a completed command: 0 on OK, else -1 with err (handler error, connection error, or the
 * classified refusal). Frees the command. */
static int cmd_collect(struct imap_conn *c, struct cmd *cmd, struct imap_result *res,
		       enum fleet_err_scope scope, struct fleet_err *err)
{
	int rc = 0;

	if (res)
		*res = cmd->res;
	if (cmd->failed) {
		if (err)
			*err = cmd->err;
		rc = -1;
	} else if (cmd->res.status != IMAP_STATUS_OK) {
		imap_status_to_err(cmd->res.status, *cmd->res.code ? cmd->res.code : NULL, cmd->res.text,
				   scope, err);
		fleet_err_prefix(err, "%s %s", c->label, cmd->name);
		rc = -1;
	}
	cmd_unlink_free(c, cmd);
	return rc;
}

int imap_cmd_wait(struct imap_conn *c, int id, struct imap_result *res, enum fleet_err_scope scope,
		  struct fleet_err *err)
{
	struct cmd *cmd = cmd_find(c, id);

	if (!cmd)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
				     "%s: no command with id %d", c->label, id);
	if (cmd == c->append_cmd)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
				     "%s: waiting for an APPEND before imap_append_end", c->label);
	while (!cmd->done)
		if (conn_step(c, 1, NULL) < 0)
			break;
	return cmd_collect(c, cmd, res, scope, err);
}

int imap_cmd_done(const struct imap_conn *c, int id)
{
	const struct cmd *cmd = cmd_find(c, id);

	return cmd && cmd->done;
}

size_t imap_conn_in_flight(const struct imap_conn *c)
{
	size_t n = 0;

	for (const struct cmd *k = c->cmds; k; k = k->next)
		n += !k->done;
	return n;
}

void imap_conn_set_unsolicited(struct imap_conn *c, imap_untagged_fn fn, void *ctx)
{
	c->unsol = fn;
	c->unsol_ctx = ctx;
}

void imap_conn_counters(const struct imap_conn *c, struct imap_conn_counters *out)
{
	*out = c->counters;
}

/* Sends and waits; the typed helpers' common path. */
static int run_cmd(struct imap_conn *c, imap_untagged_fn fn, void *ctx, enum fleet_err_scope scope,
		   struct imap_result *res, struct fleet_err *err, const char *text)
{
	int id = imap_cmd_send_text(c, fn, ctx, text, strlen(text), err);

	if (id < 0)
		return -1;
	return imap_cmd_wait(c, id, res, scope, err);
}

/* ---- quoting ---------------------------------------------------------------------------------- */

int imap_quote_string(const struct imap_conn *c, struct fleet_buf *b, const char *s, size_t len)
{
	int quotable = 1;

	for (size_t i = 0; i < len && quotable; i++) {
		unsigned char ch = (unsigned char)s[i];

		quotable = ch != 0 && ch < 0x80 && ch != '\r' && ch != '\n';
	}
	if (quotable) {
		int r = fleet_buf_append(b, "\"", 1);

		for (size_t i = 0; i < len && r == 0; i++) {
			if (s[i] == '"' || s[i] == '\\')
				r = fleet_buf_append(b, "\\", 1);
			if (r == 0)
				r = fleet_buf_append(b, s + i, 1);
		}
		return r ? r : fleet_buf_append(b, "\"", 1);
	}
	{
		int plus =
		    imap_conn_has_cap(c, "LITERAL+") || (imap_conn_has_cap(c, "LITERAL-") && len <= IMAP_LITERAL_MINUS_MAX);

		if (fleet_buf_appendf(b, "{%zu%s}\r\n", len, plus ? "+" : "") < 0)
			return -1;
		return fleet_buf_append(b, s, len);
	}
}

/* The name of a mailbox on the wire: as LIST sent it when that was not valid modified UTF-7,
 * else encoded. */
static int mailbox_wire(const struct imap_conn *c, const char *utf8, struct fleet_buf *m, struct fleet_err *err)
{
	long k = imap_strlist_find(&c->raw_names, utf8);

	if (k >= 0)
		return fleet_buf_append_str(m, c->raw_wires.v[k]) < 0
			       ? fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, IMAP_CODE_CLIENTBUG, "mailbox name too long")
			       : 0;
	if (mutf7_encode(utf8, strlen(utf8), m, err) < 0) {
		fleet_err_prefix(err, "mailbox name");
		return -1;
	}
	return 0;
}

int imap_quote_mailbox(const struct imap_conn *c, struct fleet_buf *b, const char *utf8,
		       struct fleet_err *err)
{
	struct fleet_buf m = FLEET_BUF_INIT(IMAP_MAILBOX_WIRE_MAX);
	int r;

	if (mailbox_wire(c, utf8, &m, err) < 0) {
		fleet_buf_release(&m);
		return -1;
	}
	r = imap_quote_string(c, b, fleet_buf_cstr(&m), m.len);
	fleet_buf_release(&m);
	if (r < 0)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, IMAP_CODE_CLIENTBUG, "command too long");
	return 0;
}

/* ---- capabilities ----------------------------------------------------------------------------- */

int imap_conn_has_cap(const struct imap_conn *c, const char *name)
{
	return imap_strlist_find(&c->caps, name) >= 0;
}

const char *imap_conn_cap_value(const struct imap_conn *c, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < c->caps.n; i++) {
		const char *cap = c->caps.v[i];

		if (fleet_strncaseeq(cap, name, nl)) {
			if (cap[nl] == '=')
				return cap + nl + 1;
			if (cap[nl] == '\0')
				return "";
		}
	}
	return NULL;
}

int imap_conn_cap_u64(const struct imap_conn *c, const char *name, uint64_t *out)
{
	const char *v = imap_conn_cap_value(c, name);

	if (!v)
		return -1;
	return fleet_parse_u64(v, 0, UINT64_MAX, out);
}

const struct imap_strlist *imap_conn_caps(const struct imap_conn *c)
{
	return &c->caps;
}

int imap_conn_is_broken(const struct imap_conn *c)
{
	return c->broken;
}

void imap_rtt_add(struct imap_rtt *r, uint64_t sent_ms, uint64_t done_ms)
{
	uint64_t took = done_ms > sent_ms ? done_ms - sent_ms : 0;

	if (!r->n || took < r->min_ms)
		r->min_ms = took;
	r->n++;
	/* earliest answer first: a command sent after the last counted answer starts a round */
	if (!r->rounds || sent_ms >= r->last_ms) {
		if (!r->rounds)
			r->first_ms = sent_ms;
		r->rounds++;
		r->last_ms = done_ms;
	}
}

void imap_conn_rtt(const struct imap_conn *c, struct imap_rtt *out)
{
	*out = c->rtt;
}

int imap_conn_is_preauth(const struct imap_conn *c)
{
	return c->preauth;
}

const char *imap_conn_label(const struct imap_conn *c)
{
	return c->label;
}

const char *imap_conn_greeting(const struct imap_conn *c)
{
	return c->greeting;
}

struct io_stream *imap_conn_stream(struct imap_conn *c)
{
	return c->s;
}

int imap_capability(struct imap_conn *c, struct fleet_err *err)
{
	return run_cmd(c, NULL, NULL, FLEET_SCOPE_ACCOUNT, NULL, err, "CAPABILITY");
}

int imap_noop(struct imap_conn *c, struct fleet_err *err)
{
	return run_cmd(c, NULL, NULL, FLEET_SCOPE_ACCOUNT, NULL, err, "NOOP");
}

/* ---- open, STARTTLS, login --------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int starttls(struct imap_conn *c, struct fleet_err *err)
{
	struct imap_result res;
	struct fleet_err e;
	int id, pending;

	if (c->preauth)
		return fleet_err_set(
		    err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_STARTTLS_UNAVAILABLE,
		    "%s: server %s logged us in before STARTTLS (PREAUTH); refusing to go on in cleartext",
		    c->label, c->host);
	if (!c->caps_known && imap_capability(c, err) < 0)
		return -1;
	if (!imap_conn_has_cap(c, "STARTTLS")) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_STARTTLS_UNAVAILABLE,
			      "%s: server %s does not offer STARTTLS; refusing to log in over cleartext",
			      c->label, c->host);
		fleet_err_detail(err, "use --ssl for implicit TLS (usually port 993), or --plain only for a "
				      "trusted local link");
		return -1;
	}
	id = imap_cmd_send(c, NULL, NULL, err, "STARTTLS");
	if (id < 0)
		return -1;
	/* Read exactly up to the tagged OK; anything after it is checked below, never parsed. */
	if (imap_cmd_wait(c, id, &res, FLEET_SCOPE_ACCOUNT, err) < 0) {
		if (!c->broken) {
			err->cls = FLEET_ERR_PERMANENT;
			snprintf(err->code, sizeof(err->code), IO_ERR_STARTTLS_FAILED);
		}
		return -1;
	}
	pending = c->rpos < c->rlen || !imap_parser_at_boundary(c->p);
	if (!pending) {
		int r = io_stream_wait_readable(c->s, 0, &e);

		if (r < 0)
			return conn_fail(c, &e, err);
		pending = r > 0;
	}
	if (pending) {
		conn_fail_new(c, FLEET_ERR_PERMANENT, IO_ERR_STARTTLS_INJECTION, err,
			      "server %s sent data after its OK to STARTTLS (possible command injection); "
			      "connection refused",
			      c->host);
		return -1;
	}
	if (io_stream_start_tls(c->s, err) < 0) {
		struct fleet_err e2 = *err;

		fleet_err_prefix(&e2, "%s", c->label);
		return conn_fail(c, &e2, err);
	}
	/* Capabilities seen in cleartext may have been forged: forget them. */
	imap_strlist_release(&c->caps);
	c->caps_known = 0;
	return imap_capability(c, err);
}

/* A server on an implicit-TLS (IMAPS) port says nothing until it gets a TLS ClientHello, so a
 * cleartext or STARTTLS connection to it would wait out the whole I/O timeout for a greeting.
 * After IMAP_GREETING_PROBE_MS of silence a second connection tries a TLS handshake on the same port:
 * when the port answers in TLS (verified or not), we stop with the hint; when it does not (a
 * slow cleartext server), we go on waiting as before. Returns -1 (err filled) for a TLS port. */
static int check_implicit_tls_port(struct imap_conn *c, struct fleet_err *err)
{
	struct io_endpoint pe = c->ep;
	struct io_stream *ps = NULL;
	struct fleet_err e = {0};
	int r, tls;

	if (c->ep.mode == IO_TLS_IMPLICIT || c->rpos < c->rlen)
		return 0;
	r = io_stream_wait_readable(c->s, IMAP_GREETING_PROBE_MS, &e);
	if (r != 0)
		return 0; /* something came (or the read fails by itself): the usual path handles it */
	pe.mode = IO_TLS_IMPLICIT;
	pe.connect_timeout_ms = pe.io_timeout_ms = IMAP_TLS_PROBE_TIMEOUT_MS;
	r = io_stream_connect(&pe, &ps, &e);
	tls = r == 0 || strcmp(e.code, IO_ERR_TLS_VERIFY) == 0;
	io_stream_close(&ps);
	if (!tls)
		return 0;
	fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IO_ERR_TLS_IMPLICIT_PORT,
		      "%s: %s port %u sends no IMAP greeting but answers in TLS: it is an implicit-TLS "
		      "(IMAPS) port, not one for %s",
		      c->label, c->host, io_port_or_default(c->ep.port, IO_TLS_STARTTLS),
		      c->ep.mode == IO_TLS_STARTTLS ? "STARTTLS" : "cleartext");
	fleet_err_detail(err, "use --ssl (tls=ssl in the accounts file) for this port, or STARTTLS "
			      "(--tls) on the server's cleartext IMAP port (usually 143)");
	return -1;
}

/* imap_conn_open's first half: the connection made (TLS handshake and certificate check included
 * for implicit TLS), nothing read yet. */
static int conn_start(const struct imap_options *o, struct imap_conn **out, struct fleet_err *err)
{
	struct imap_conn *c = xcalloc(1, sizeof(*c));
	struct imap_parser_limits lim;

	*out = NULL;
	fleet_log_add_secret(o->password);
	fleet_log_add_secret(o->oauth_token);
	snprintf(c->label, sizeof(c->label), "%s", o->label ? o->label : o->ep.label ? o->ep.label : "imap");
	c->ep = o->ep;
	c->host = dup_or_null(o->ep.host ? o->ep.host : "");
	c->cafile = dup_or_null(o->ep.cafile);
	c->verify_host = dup_or_null(o->ep.verify_host);
	c->ep.host = c->host;
	c->ep.cafile = c->cafile;
	c->ep.verify_host = c->verify_host;
	c->ep.label = c->label;
	c->user = dup_or_null(o->user);
	c->password = dup_or_null(o->password);
	c->authuser = dup_or_null(o->authuser);
	c->token = dup_or_null(o->oauth_token);
	c->auth = o->auth;
	c->trace = o->trace;
	c->no_id = o->no_id;
	c->compress = o->compress;
	if (o->limits) {
		lim = *o->limits;
	} else {
		imap_parser_limits_default(&lim);
		lim.max_line = IMAP_CLIENT_LINE_MAX;
	}
	c->p = imap_parser_new(&lim);
	c->rbuf = xmalloc(IMAP_READ_CHUNK);
	fleet_buf_init(&c->wbuf, IMAP_CMD_MAX + IMAP_WBUF_FLUSH);
	fleet_buf_init(&c->zbuf, 2 * (IMAP_CMD_MAX + IMAP_WBUF_FLUSH));
	fleet_buf_init(&c->tbuf, IMAP_TRACE_MAX + IMAP_TRACE_SLACK);

	if (io_stream_connect(&c->ep, &c->s, err) < 0 || check_implicit_tls_port(c, err) < 0) {
		imap_conn_close(&c);
		return -1;
	}
	*out = c;
	return 0;
}

/* The second half: the greeting, STARTTLS, the capabilities. */
static int conn_greet(struct imap_conn *c, struct fleet_err *err)
{
	while (!c->greeted)
		if (conn_step(c, 1, err) < 0)
			return -1;
	if (c->ep.mode == IO_TLS_STARTTLS)
		return starttls(c, err);
	if (!c->caps_known && imap_capability(c, err) < 0)
		return -1;
	return 0;
}

int imap_conn_open(const struct imap_options *o, struct imap_conn **out, struct fleet_err *err)
{
	if (conn_start(o, out, err) < 0)
		return -1;
	if (conn_greet(*out, err) < 0) {
		imap_conn_close(out);
		return -1;
	}
	return 0;
}

/* Base64 (RFC 4648) through OpenSSL's encoder. */
static void b64_encode(const unsigned char *in, size_t len, struct fleet_buf *out)
{
	char *dst = fleet_buf_reserve(out, 4 * ((len + 2) / 3) + 1);

	if (dst) /* reserve is bounded by the payload's cap: nothing is written when it does not fit */
		fleet_buf_commit(out, (size_t)EVP_EncodeBlock((unsigned char *)dst, in, (int)len));
}

struct auth_state {
	struct fleet_buf payload; /* base64 */
	int sent, oauth;
};

static int auth_cont(struct imap_conn *c, struct cmd *cmd, const struct imap_response *r,
		     struct fleet_err *err)
{
	struct auth_state *a = cmd->ctx;

	if (!a->sent) {
		a->sent = 1;
		if (is_trace(c))
			log_trace("%s C: <redacted>", c->label);
		if (conn_write(c, a->payload.data, a->payload.len, err) < 0 ||
		    conn_write(c, "\r\n", 2, err) < 0)
			return -1;
	} else {
		/* A second challenge is an error report (OAuth) or nonsense (PLAIN): answer so that the
		 * server sends its tagged NO. */
		if (is_trace(c))
			log_trace("%s C: %s", c->label, a->oauth ? "" : "*");
		if (conn_write(c, a->oauth ? "\r\n" : "*\r\n", a->oauth ? 2 : 3, err) < 0)
			return -1;
	}
	return imap_conn_flush(c, err);
}

static void auth_state_free(void *p)
{
	struct auth_state *a = p;

	if (a->payload.data) {
		fleet_log_remove_secret(fleet_buf_cstr(&a->payload));
		explicit_bzero(a->payload.data, a->payload.cap);
	}
	fleet_buf_release(&a->payload);
	xfree(&a);
}

static int login_refused(struct imap_conn *c, struct fleet_err *err)
{
	/* The refusal went through the table; a bare NO (or NO [ALERT] ...) to a login is about the
	 * credentials, but LIMIT/UNAVAILABLE/THROTTLED mean "later". */
	if (c->broken)
		return -1;
	if (err->cls != FLEET_ERR_TRANSIENT && err->cls != FLEET_ERR_THROTTLED) {
		err->cls = FLEET_ERR_AUTH;
		err->scope = FLEET_SCOPE_ACCOUNT;
		if (!strcmp(err->code, imap_status_name(IMAP_STATUS_NO)) || !strcmp(err->code, imap_status_name(IMAP_STATUS_BAD)))
			snprintf(err->code, sizeof(err->code), IMAP_ERR_LOGIN_FAILED);
	}
	fleet_err_prefix(err, "could not log in as %s", c->user ? c->user : "?");
	return -1;
}

/* The login command (LOGIN or AUTHENTICATE, command id) is sent: wait for its answer, or, when the login is
 * deferred (early_login), keep its id for later. */
static int login_sent(struct imap_conn *c, int id, struct fleet_err *err)
{
	if (c->login_defer) {
		c->login_id = id;
		return 0;
	}
	if (imap_cmd_wait(c, id, NULL, FLEET_SCOPE_ACCOUNT, err) < 0)
		return login_refused(c, err);
	return 0;
}

/* A command built with fleet_buf_add* that passed its cap is not sent: -1 with err, and ctx is
 * released with free_ctx (as cmd_submit would have). */
static int cmd_whole(const struct fleet_buf *cmd, void (*free_ctx)(void *), void *ctx, struct fleet_err *err)
{
	if (!fleet_buf_truncated(cmd))
		return 0;
	if (free_ctx)
		free_ctx(ctx);
	return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, IMAP_CODE_CLIENTBUG, "command too long");
}

static int do_authenticate(struct imap_conn *c, const char *mech, const char *raw, size_t rawlen, int oauth,
			   struct fleet_err *err)
{
	struct auth_state *a = xcalloc(1, sizeof(*a));
	struct fleet_buf cmd = FLEET_BUF_INIT(IMAP_AUTH_MAX);
	char trace[64];
	int ir = imap_conn_has_cap(c, "SASL-IR"), id;

	fleet_buf_init(&a->payload, IMAP_AUTH_MAX);
	b64_encode((const unsigned char *)raw, rawlen, &a->payload);
	/* The encoded form carries the password too. */
	fleet_log_add_secret(fleet_buf_cstr(&a->payload));
	a->oauth = oauth;
	if (fleet_buf_truncated(&a->payload)) {
		auth_state_free(a);
		fleet_buf_release(&cmd);
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
				     "%s: the %s credentials are longer than %d bytes", c->label, mech, IMAP_AUTH_MAX);
	}
	fleet_buf_addf(&cmd, "AUTHENTICATE %s", mech);
	if (ir) {
		fleet_buf_addf(&cmd, " %s", a->payload.len ? fleet_buf_cstr(&a->payload) : "=");
		a->sent = 1;
	}
	snprintf(trace, sizeof(trace), "AUTHENTICATE %s%s", mech, ir ? " <redacted>" : "");
	id = cmd_whole(&cmd, auth_state_free, a, err) < 0 ? -1
						 : cmd_submit(c, NULL, a, auth_state_free, NULL, fleet_buf_cstr(&cmd), cmd.len, trace, err);
	fleet_buf_release(&cmd);
	if (id < 0)
		return -1;
	{
		struct cmd *k = cmd_find(c, id);

		k->on_cont = auth_cont;
		c->cont_cmd = k;
	}
	return login_sent(c, id, err);
}

static int do_login(struct imap_conn *c, struct fleet_err *err)
{
	struct fleet_buf cmd = FLEET_BUF_INIT(IMAP_AUTH_MAX);
	struct fleet_buf trace = FLEET_BUF_INIT(IMAP_LOGIN_TRACE_MAX);
	int id;

	fleet_buf_add_str(&cmd, "LOGIN ");
	imap_quote_string(c, &cmd, c->user, strlen(c->user));
	fleet_buf_add_str(&trace, "LOGIN ");
	imap_quote_string(c, &trace, c->user, strlen(c->user));
	fleet_buf_add_str(&trace, " <redacted>");
	fleet_buf_add_str(&cmd, " ");
	imap_quote_string(c, &cmd, c->password, strlen(c->password));
	id = cmd_whole(&cmd, NULL, NULL, err) < 0 ? -1
				      : cmd_submit(c, NULL, NULL, NULL, NULL, fleet_buf_cstr(&cmd), cmd.len,
						   fleet_buf_truncated(&trace) ? "LOGIN <long user> <redacted>"
									       : fleet_buf_cstr(&trace),
						   err);
	/* The command text held the password: wipe it. */
	if (cmd.data)
		memset(cmd.data, 0, cmd.cap);
	fleet_buf_release(&cmd);
	fleet_buf_release(&trace);
	return id < 0 ? -1 : login_sent(c, id, err);
}

/* ID is a courtesy: a refusal is not a reason to fail, and nothing waits for its answer (a round
 * trip saved per connection): the command is marked so and goes out with the next one. */
static int send_id(struct imap_conn *c, struct fleet_err *err)
{
	int id = imap_cmd_send(c, NULL, NULL, err, "ID (\"name\" \"imapfleet\" \"version\" \"%s\")",
			       PACKAGE_VERSION);

	if (id < 0)
		return -1;
	for (struct cmd *k = c->cmds; k; k = k->next)
		if (k->id == id)
			k->courtesy = 1;
	return 0;
}

/* COMPRESS=DEFLATE (RFC 4978) after login: when asked for (on), or, for auto, when the login's
 * round trip says the link is slow (IMAP_COMPRESS_AUTO_RTT_MS); always only where offered. */
static int want_compress(const struct imap_conn *c)
{
	if (c->z || c->compress == IMAP_COMPRESS_OFF || !imap_conn_has_cap(c, "COMPRESS=DEFLATE"))
		return 0;
	return c->compress == IMAP_COMPRESS_ON || (c->logged_in && c->login_ms >= IMAP_COMPRESS_AUTO_RTT_MS);
}

/* Sends COMPRESS DEFLATE alone (nothing else in flight) and, on OK, puts the layer in: the bytes
 * after the tagged OK are already compressed. A NO or BAD leaves the connection as it was. */
static int start_compress(struct imap_conn *c, struct fleet_err *err)
{
	struct imap_result res;
	struct fleet_err e;
	int id;

	if (imap_conn_in_flight(c) != 0)
		return 0;
	id = imap_cmd_send(c, NULL, NULL, err, "COMPRESS DEFLATE");
	if (id < 0)
		return -1;
	if (imap_cmd_wait(c, id, &res, FLEET_SCOPE_ACCOUNT, &e) < 0) {
		if (c->broken) {
			*err = e;
			return -1;
		}
		log_warn("%s: the server refused COMPRESS DEFLATE (%s); going on uncompressed", c->label, e.message);
		return 0;
	}
	if (!imap_parser_at_boundary(c->p))
		return conn_fail_new(c, FLEET_ERR_PERMANENT, IO_ERR_COMPRESS, err,
				     "server %s sent a partial response around its OK to COMPRESS", c->host);
	c->z = io_deflate_new();
	io_deflate_feed(c->z, c->rbuf + c->rpos, c->rlen - c->rpos);
	c->rpos = c->rlen = 0;
	if (is_trace(c))
		log_trace("%s: COMPRESS=DEFLATE on (login round trip %llu ms)", c->label,
			  (unsigned long long)c->login_ms);
	return 0;
}

int imap_conn_compressed(const struct imap_conn *c, uint64_t counts[4])
{
	if (!c->z)
		return 0;
	if (counts)
		io_deflate_counts(c->z, &counts[0], &counts[1], &counts[2], &counts[3]);
	return 1;
}

/* What follows a login (or a PREAUTH greeting): the capabilities when the login's OK did not carry
 * them, COMPRESS where wanted, ID. */
static int login_extras(struct imap_conn *c, struct fleet_err *err)
{
	if (!c->caps_known && imap_capability(c, err) < 0)
		return -1;
	if (want_compress(c) && start_compress(c, err) < 0)
		return -1;
	if (!c->no_id && imap_conn_has_cap(c, "ID") && send_id(c, err) < 0)
		return -1;
	return 0;
}

/* The login succeeded; caps_sent: its OK carried the new capabilities. */
static int login_after(struct imap_conn *c, int caps_sent, struct fleet_err *err)
{
	c->login_ms = fleet_now_ms() - c->login_ms;
	c->logged_in = 1;
	/* Capabilities change after login. The login's response usually carries the new ones (its
	 * OK's [CAPABILITY] code, read in on_tagged): ask again only when it did not. */
	if (!caps_sent) {
		imap_strlist_release(&c->caps);
		c->caps_known = 0;
	}
	return login_extras(c, err);
}

/* The mechanism imap_conn_login uses with the capabilities known now, with whether the first
 * response goes with the command (SASL-IR): what an early login guessed must still hold. */
static enum imap_auth_mech pick_mech(const struct imap_conn *c)
{
	if (c->auth != IMAP_AUTH_AUTO)
		return c->auth;
	if (c->token)
		return imap_conn_has_cap(c, "AUTH=OAUTHBEARER") ? IMAP_AUTH_OAUTHBEARER : IMAP_AUTH_XOAUTH2;
	if (c->authuser ||
	    (imap_conn_has_cap(c, "AUTH=PLAIN") && (imap_conn_has_cap(c, "SASL-IR") || imap_conn_has_cap(c, "LOGINDISABLED"))))
		return IMAP_AUTH_PLAIN;
	return IMAP_AUTH_LOGIN;
}

static int login_choice(const struct imap_conn *c)
{
	return (int)pick_mech(c) * 2 + (imap_conn_has_cap(c, "SASL-IR") ? 1 : 0);
}

int imap_conn_login(struct imap_conn *c, struct fleet_err *err)
{
	enum imap_auth_mech mech;
	unsigned caps_gen = c->caps_gen;
	int r;

	if (c->broken)
		return broken_err(c, err);
	if (c->logged_in || c->preauth)
		return login_extras(c, err);
	if (!io_stream_is_tls(c->s) && c->ep.mode != IO_TLS_PLAIN) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_ERR_CLEARTEXT_REFUSED,
			      "%s: refusing to send credentials to %s over a cleartext connection", c->label,
			      c->host);
		fleet_err_detail(err, "use --ssl or --tls; --plain allows cleartext explicitly");
		return -1;
	}
	if (!c->user || (!c->password && !c->token))
		return fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, IMAP_ERR_NO_CREDENTIALS,
				     "%s: no user or password given", c->label);
	mech = pick_mech(c);
	c->login_ms = fleet_now_ms();
	switch (mech) {
	case IMAP_AUTH_AUTO:
	case IMAP_AUTH_LOGIN:
		if (imap_conn_has_cap(c, "LOGINDISABLED")) {
			fleet_err_set(
			    err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_ERR_LOGINDISABLED,
			    "%s: server %s advertises LOGINDISABLED and no usable AUTHENTICATE mechanism",
			    c->label, c->host);
			fleet_err_detail(
			    err, "the server refuses LOGIN on this connection; use TLS (--ssl or --tls)");
			return -1;
		}
		if (!c->password)
			return fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, IMAP_ERR_NO_CREDENTIALS,
					     "%s: LOGIN needs a password", c->label);
		r = do_login(c, err);
		break;
	case IMAP_AUTH_PLAIN: {
		struct fleet_buf raw = FLEET_BUF_INIT(IMAP_AUTH_PLAIN_MAX);
		const char *authz = c->authuser ? c->user : "";
		const char *authc = c->authuser ? c->authuser : c->user;

		if (!c->password)
			return fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, IMAP_ERR_NO_CREDENTIALS,
					     "%s: AUTHENTICATE PLAIN needs a password", c->label);
		if (!imap_conn_has_cap(c, "AUTH=PLAIN") && (c->authuser || c->auth == IMAP_AUTH_PLAIN)) {
			fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_ERR_AUTH_UNSUPPORTED,
				      "%s: server %s does not offer AUTHENTICATE PLAIN%s", c->label, c->host,
				      c->authuser ? ", needed for --authuser" : "");
			return -1;
		}
		fleet_buf_add(&raw, authz, strlen(authz) + 1);
		fleet_buf_add(&raw, authc, strlen(authc) + 1);
		fleet_buf_add(&raw, c->password, strlen(c->password));
		r = fleet_buf_truncated(&raw)
			? fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
					"%s: user, admin user and password are longer than %d bytes together",
					c->label, IMAP_AUTH_PLAIN_MAX)
			: do_authenticate(c, "PLAIN", raw.data, raw.len, 0, err);
		memset(raw.data, 0, raw.cap);
		fleet_buf_release(&raw);
		break;
	}
	case IMAP_AUTH_XOAUTH2:
	case IMAP_AUTH_OAUTHBEARER: {
		struct fleet_buf raw = FLEET_BUF_INIT(IMAP_AUTH_MAX);
		const char *m = mech == IMAP_AUTH_XOAUTH2 ? "XOAUTH2" : "OAUTHBEARER";
		char capname[32];

		snprintf(capname, sizeof(capname), "AUTH=%s", m);
		if (!c->token)
			return fleet_err_set(err, FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT, IMAP_ERR_NO_CREDENTIALS,
					     "%s: %s needs an OAuth token", c->label, m);
		if (!imap_conn_has_cap(c, capname))
			return fleet_err_set(
			    err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_ERR_AUTH_UNSUPPORTED,
			    "%s: server %s does not offer AUTHENTICATE %s", c->label, c->host, m);
		if (mech == IMAP_AUTH_XOAUTH2)
			fleet_buf_addf(&raw, "user=%s\001auth=Bearer %s\001\001", c->user, c->token);
		else
			fleet_buf_addf(&raw, "n,a=%s,\001host=%s\001port=%u\001auth=Bearer %s\001\001",
					  c->user, c->host, io_port_or_default(c->ep.port, c->ep.mode), c->token);
		r = fleet_buf_truncated(&raw) ? fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT,
							      IMAP_CODE_CLIENTBUG,
							      "%s: the OAuth token is longer than %d bytes",
							      c->label, IMAP_AUTH_MAX)
					      : do_authenticate(c, m, raw.data, raw.len, 1, err);
		if (raw.data)
			memset(raw.data, 0, raw.cap);
		fleet_buf_release(&raw);
		break;
	}
	default:
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
				     "unknown auth mechanism");
	}
	if (r < 0)
		return -1;
	if (c->login_defer)
		return 0; /* sent; early_login_end reads the answer */
	return login_after(c, c->caps_gen != caps_gen, err);
}

/* Implicit TLS to a server whose greeting this process has seen (greet_cache_*): the login goes out
 * right behind the TLS handshake (the certificate is checked by then), with the mechanism that
 * greeting's capabilities choose, and the server answers it together with its greeting: one round
 * trip less per connection. Returns the login's choice (login_choice) when sent, else -1. */
static int early_login(struct imap_conn *c)
{
	char words[IMAP_GREET_CAPS_MAX];
	struct fleet_err e;
	int choice, r;

	if (c->ep.mode != IO_TLS_IMPLICIT || !io_stream_is_tls(c->s) || !c->user || (!c->password && !c->token) ||
	    !greet_cache_get(c, words, sizeof(words)))
		return -1;
	set_caps_from_words(c, words);
	choice = login_choice(c);
	fleet_err_clear(&e);
	c->login_defer = 1;
	r = imap_conn_login(c, &e);
	c->login_defer = 0;
	if (r == 0 && c->login_id > 0 && imap_conn_flush(c, &e) == 0)
		return choice;
	/* refused before anything was sent (a mechanism those capabilities do not offer, say): the
	 * usual way after the greeting says so */
	imap_strlist_release(&c->caps);
	c->caps_known = 0;
	return -1;
}

/* The answer to an early login, once the greeting is in: 0 logged in (or PREAUTH), 1 when the
 * greeting's capabilities choose another mechanism and the early one was refused (log in again the
 * usual way), -1 on failure (err). */
static int early_login_end(struct imap_conn *c, int choice, struct fleet_err *err)
{
	struct imap_result res;
	int id = c->login_id, r;

	c->login_id = 0;
	memset(&res, 0, sizeof(res));
	r = imap_cmd_wait(c, id, &res, FLEET_SCOPE_ACCOUNT, err);
	if (c->broken) {
		greet_cache_refuse(c);
		return -1;
	}
	if (c->preauth) /* logged in by the greeting: the refused login does not matter */
		return login_extras(c, err);
	if (r == 0)
		return login_after(c, strcasecmp(res.code, "CAPABILITY") == 0, err);
	if (res.status == IMAP_STATUS_BAD) { /* a server that wants its greeting waited for */
		greet_cache_refuse(c);
		fleet_err_clear(err);
		return 1;
	}
	if (login_choice(c) != choice) {
		log_debug("%s: the greeting's capabilities differ from the last one's: logging in again", c->label);
		return 1;
	}
	return login_refused(c, err);
}

int imap_conn_connect(const struct imap_options *o, struct imap_conn **out, struct fleet_err *err)
{
	int choice, r = 1;

	if (conn_start(o, out, err) < 0)
		return -1;
	choice = early_login(*out);
	if (conn_greet(*out, err) < 0) {
		if (choice >= 0) /* perhaps closed for what came before the greeting */
			greet_cache_refuse(*out);
		imap_conn_close(out);
		return -1;
	}
	if (choice >= 0)
		r = early_login_end(*out, choice, err);
	if (r > 0)
		r = imap_conn_login(*out, err);
	if (r < 0) {
		imap_conn_close(out);
		return -1;
	}
	return 0;
}

struct connect_task {
	const struct imap_options *o;
	struct imap_conn *c;
	struct fleet_err *err;
	struct fleet_log_thread log;
	int rc;
};

static void *connect_thread(void *arg)
{
	struct connect_task *t = arg;

	fleet_log_thread_restore(&t->log);
	t->rc = imap_conn_connect(t->o, &t->c, t->err);
	return NULL;
}

int imap_conn_connect_many(const struct imap_options *const *opts, size_t n, struct imap_conn **out,
			   struct fleet_err *errs)
{
	struct connect_task *t = xcalloc(n ? n : 1, sizeof(*t));
	pthread_t *tid = xcalloc(n ? n : 1, sizeof(*tid));
	char *started = xcalloc(n ? n : 1, 1);
	int failed = 0;

	for (size_t i = 0; i < n; i++) {
		t[i].o = opts[i];
		t[i].err = &errs[i];
		fleet_err_clear(&errs[i]);
		fleet_log_thread_save(&t[i].log);
	}
	/* The first in this thread, the others each in a thread of its own; a thread that cannot be
	 * started connects here afterwards (slower, never wrong). */
	for (size_t i = 1; i < n; i++)
		started[i] = pthread_create(&tid[i], NULL, connect_thread, &t[i]) == 0;
	if (n)
		connect_thread(&t[0]);
	for (size_t i = 1; i < n; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			connect_thread(&t[i]);
	}
	for (size_t i = 0; i < n; i++) {
		out[i] = t[i].c;
		if (t[i].rc < 0)
			failed++;
	}
	xfree(&started);
	xfree(&tid);
	xfree(&t);
	return failed;
}

int imap_logout_send(struct imap_conn *c, struct fleet_err *err)
{
	int id;

	if (c->broken)
		return broken_err(c, err);
	id = imap_cmd_send(c, NULL, NULL, err, "LOGOUT");
	if (id > 0 && imap_conn_flush(c, err) < 0)
		return -1;
	return id;
}

int imap_logout(struct imap_conn *c, struct fleet_err *err)
{
	int id = imap_logout_send(c, err);

	return id < 0 ? -1 : imap_logout_wait(c, id, err);
}

int imap_logout_wait(struct imap_conn *c, int id, struct fleet_err *err)
{
	if (imap_cmd_wait(c, id, NULL, FLEET_SCOPE_ACCOUNT, err) < 0)
		return -1;
	c->broken = 1;
	fleet_err_set(&c->err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
		      "%s: connection used after LOGOUT", c->label);
	/* The server closes after LOGOUT's OK. Wait (briefly) until it has: only then is its session
	 * gone, so the connection slot this frees cannot let a new login in while the server still
	 * counts the old one against its per-user limit. */
	{
		uint64_t until = fleet_now_ms() + IMAP_LOGOUT_CLOSE_WAIT_MS;
		char sink[256];
		struct fleet_err e;

		for (;;) {
			uint64_t now = fleet_now_ms();

			if (now >= until || io_stream_wait_readable(c->s, (int)(until - now), &e) <= 0 ||
			    io_stream_read(c->s, sink, sizeof(sink), &e) <= 0)
				break;
		}
	}
	return 0;
}

void imap_conn_close(struct imap_conn **cp)
{
	struct imap_conn *c = *cp;

	if (!c)
		return;
	while (c->cmds)
		cmd_unlink_free(c, c->cmds);
	if (c->s)
		io_stream_close(&c->s);
	imap_parser_free(&c->p);
	xfree(&c->rbuf);
	if (c->wbuf.data)
		memset(c->wbuf.data, 0, c->wbuf.cap);
	fleet_buf_release(&c->wbuf);
	fleet_buf_release(&c->zbuf);
	io_deflate_free(&c->z);
	fleet_buf_release(&c->tbuf);
	imap_strlist_release(&c->caps);
	imap_strlist_release(&c->enabled);
	imap_strlist_release(&c->alerts);
	imap_strlist_release(&c->said);
	imap_strlist_release(&c->raw_names);
	imap_strlist_release(&c->raw_wires);
	xfree(&c->host);
	xfree(&c->cafile);
	xfree(&c->verify_host);
	xfree(&c->user);
	if (c->password) {
		fleet_log_remove_secret(c->password); /* the reference imap_conn_open took */
		explicit_bzero(c->password, strlen(c->password));
	}
	xfree(&c->password);
	xfree(&c->authuser);
	if (c->token) {
		fleet_log_remove_secret(c->token);
		explicit_bzero(c->token, strlen(c->token));
	}
	xfree(&c->token);
	xfree(cp);
}

/* ---- ENABLE, CREATE, DELETE, SUBSCRIBE, EXPUNGE, STORE -------------------------------------------- */

int imap_enable_send(struct imap_conn *c, const char *exts, struct fleet_err *err)
{
	struct fleet_buf cmd = FLEET_BUF_INIT(IMAP_ENABLE_CMD_MAX);
	struct imap_strlist want = {0};
	int r = 0;

	imap_code_words(exts, &want);
	fleet_buf_add_str(&cmd, "ENABLE");
	for (size_t i = 0; i < want.n; i++)
		if (imap_conn_has_cap(c, want.v[i]))
			fleet_buf_addf(&cmd, " %s", want.v[i]);
	if (cmd.len > 6)
		r = cmd_whole(&cmd, NULL, NULL, err) < 0 ? -1 : imap_cmd_send_text(c, NULL, NULL, cmd.data, cmd.len, err);
	imap_strlist_release(&want);
	fleet_buf_release(&cmd);
	return r;
}

int imap_enable(struct imap_conn *c, const char *exts, struct fleet_err *err)
{
	int id = imap_enable_send(c, exts, err);

	return id <= 0 ? id : imap_cmd_wait(c, id, NULL, FLEET_SCOPE_ACCOUNT, err);
}

int imap_conn_enabled(const struct imap_conn *c, const char *ext)
{
	return imap_strlist_find(&c->enabled, ext) >= 0;
}

static int mailbox_cmd(struct imap_conn *c, const char *verb, const char *mailbox, const char *tail,
		       imap_untagged_fn fn, void *ctx, void (*free_ctx)(void *), int wait,
		       struct imap_result *res, struct fleet_err *err)
{
	struct fleet_buf cmd = FLEET_BUF_INIT(IMAP_CMD_MAX);
	int id;

	fleet_buf_addf(&cmd, "%s ", verb);
	if (imap_quote_mailbox(c, &cmd, mailbox, err) < 0) {
		fleet_buf_release(&cmd);
		if (free_ctx)
			free_ctx(ctx);
		return -1;
	}
	if (tail)
		fleet_buf_add_str(&cmd, tail);
	id = cmd_whole(&cmd, free_ctx, ctx, err) < 0 ? -1 : cmd_submit(c, fn, ctx, free_ctx, NULL, cmd.data, cmd.len, NULL, err);
	fleet_buf_release(&cmd);
	if (id < 0 || !wait)
		return id;
	if (imap_cmd_wait(c, id, res, FLEET_SCOPE_FOLDER, err) < 0) {
		fleet_err_prefix(err, "folder %s", mailbox);
		return -1;
	}
	return 0;
}

int imap_create(struct imap_conn *c, const char *mailbox, struct fleet_err *err)
{
	return mailbox_cmd(c, "CREATE", mailbox, NULL, NULL, NULL, NULL, 1, NULL, err);
}

int imap_delete(struct imap_conn *c, const char *mailbox, struct fleet_err *err)
{
	return mailbox_cmd(c, "DELETE", mailbox, NULL, NULL, NULL, NULL, 1, NULL, err);
}

int imap_subscribe(struct imap_conn *c, const char *mailbox, struct fleet_err *err)
{
	return mailbox_cmd(c, "SUBSCRIBE", mailbox, NULL, NULL, NULL, NULL, 1, NULL, err);
}

int imap_create_send(struct imap_conn *c, const char *mailbox, struct fleet_err *err)
{
	return mailbox_cmd(c, "CREATE", mailbox, NULL, NULL, NULL, NULL, 0, NULL, err);
}

int imap_subscribe_send(struct imap_conn *c, const char *mailbox, struct fleet_err *err)
{
	return mailbox_cmd(c, "SUBSCRIBE", mailbox, NULL, NULL, NULL, NULL, 0, NULL, err);
}

int imap_expunge(struct imap_conn *c, struct fleet_err *err)
{
	return run_cmd(c, NULL, NULL, FLEET_SCOPE_FOLDER, NULL, err, "EXPUNGE");
}

/* A UID set from the caller goes on the wire verbatim: check it is one. */
static int check_uidset(const char *uidset, struct fleet_err *err)
{
	struct imap_uidset set = {0};
	int r = imap_uidset_parse(&set, uidset, strlen(uidset));

	imap_uidset_release(&set);
	if (r < 0)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, IMAP_CODE_CLIENTBUG,
				     "invalid UID set \"%.100s\"", uidset);
	return 0;
}

int imap_uid_expunge(struct imap_conn *c, const char *uidset, struct fleet_err *err)
{
	int id;

	if (!imap_conn_has_cap(c, "UIDPLUS"))
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER, IMAP_ERR_UIDPLUS_MISSING,
				     "%s: server does not offer UIDPLUS, needed for UID EXPUNGE", c->label);
	if (check_uidset(uidset, err) < 0)
		return -1;
	id = imap_cmd_send(c, NULL, NULL, err, "UID EXPUNGE %s", uidset);
	return id < 0 ? -1 : imap_cmd_wait(c, id, NULL, FLEET_SCOPE_FOLDER, err);
}

int imap_uid_store(struct imap_conn *c, const char *uidset, enum imap_store_mode mode, const char *flags,
		   int silent, struct fleet_err *err)
{
	static const char *const ops[] = {"+FLAGS", "-FLAGS", "FLAGS"};
	int id;

	if (check_uidset(uidset, err) < 0)
		return -1;
	if (strpbrk(flags, "\r\n()\"{"))
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_MESSAGE, IMAP_CODE_CLIENTBUG,
				     "invalid flag list \"%.100s\"", flags);
	id = imap_cmd_send(c, NULL, NULL, err, "UID STORE %s %s%s (%s)", uidset, ops[mode],
			   silent ? ".SILENT" : "", flags);
	return id < 0 ? -1 : imap_cmd_wait(c, id, NULL, FLEET_SCOPE_MESSAGE, err);
}

int imap_uid_store_labels(struct imap_conn *c, uint32_t uid, int add, const char *const *labels, size_t n,
			  struct fleet_err *err)
{
	struct fleet_buf cmd = FLEET_BUF_INIT(IMAP_LABELS_CMD_MAX);
	int id, rc = -1;

	if (n == 0)
		return 0;
	fleet_buf_addf(&cmd, "UID STORE %u %cX-GM-LABELS (", uid, add ? '+' : '-');
	for (size_t i = 0; i < n; i++) {
		const char *l = labels[i];

		if (i)
			fleet_buf_add(&cmd, " ", 1);
		if (l[0] == '\\' && !strpbrk(l + 1, " ()\"{%*]\\\r\n")) {
			fleet_buf_add_str(&cmd, l); /* a system label: an atom */
		} else {
			struct fleet_buf enc = FLEET_BUF_INIT(IMAP_NAME_MAX);

			if (mutf7_encode(l, strlen(l), &enc, err) < 0 ||
			    imap_quote_string(c, &cmd, fleet_buf_cstr(&enc), enc.len) < 0) {
				fleet_buf_release(&enc);
				if (!fleet_err_is_set(err))
					fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_MESSAGE, IMAP_ERR_LABEL,
						      "cannot send the label \"%.100s\"", l);
				goto out;
			}
			fleet_buf_release(&enc);
		}
	}
	fleet_buf_add(&cmd, ")", 1);
	id = cmd_whole(&cmd, NULL, NULL, err) < 0 ? -1 : imap_cmd_send_text(c, NULL, NULL, fleet_buf_cstr(&cmd), cmd.len, err);
	rc = id < 0 ? -1 : imap_cmd_wait(c, id, NULL, FLEET_SCOPE_MESSAGE, err);
out:
	fleet_buf_release(&cmd);
	return rc;
}

/* ---- NAMESPACE --------------------------------------------------------------------------------- */

static int node_delim(const struct imap_node *n, char *delim)
{
	if (n && n->type == IMAP_NODE_NIL) {
		*delim = 0;
		return 0;
	}
	if (n && n->type == IMAP_NODE_QUOTED && n->len == 1) {
		*delim = n->str[0];
		return 0;
	}
	return -1;
}

static int namespace_untagged(struct imap_conn *c, void *ctx, const struct imap_response *r,
			      struct fleet_err *err)
{
	struct imap_namespace *ns = ctx;
	const struct imap_node *n = r->args;

	if (strcmp(r->name, "NAMESPACE") == 0) {
		if (n && n->type == IMAP_NODE_LIST && n->child && n->child->type == IMAP_NODE_LIST) {
			const struct imap_node *pfx = n->child->child;
			struct fleet_buf b = FLEET_BUF_INIT(sizeof(ns->prefix) - 1);

			if (!imap_node_is_string(pfx) || node_delim(pfx->next, &ns->delim) < 0)
				return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_ERR_PROTOCOL,
						     "malformed NAMESPACE response");
			if (mutf7_decode(pfx->str, pfx->len, &b, NULL) == 0)
				snprintf(ns->prefix, sizeof(ns->prefix), "%s", fleet_buf_cstr(&b));
			else
				snprintf(ns->prefix, sizeof(ns->prefix), "%s", pfx->str);
			fleet_buf_release(&b);
		}
		return 1;
	}
	if (strcmp(r->name, "LIST") == 0 && n) {
		if (node_delim(n->next, &ns->delim) < 0)
			return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_ERR_PROTOCOL,
					     "malformed LIST response");
		return 1;
	}
	return 0;
}

int imap_namespace_send(struct imap_conn *c, struct imap_namespace *ns, struct fleet_err *err)
{
	const char *cmd = imap_conn_has_cap(c, "NAMESPACE") ? "NAMESPACE" : "LIST \"\" \"\"";

	memset(ns, 0, sizeof(*ns));
	return imap_cmd_send_text(c, namespace_untagged, ns, cmd, strlen(cmd), err);
}

int imap_namespace(struct imap_conn *c, struct imap_namespace *ns, struct fleet_err *err)
{
	int id = imap_namespace_send(c, ns, err);

	return id < 0 ? -1 : imap_cmd_wait(c, id, NULL, FLEET_SCOPE_ACCOUNT, err);
}

/* ---- LIST / LSUB ----------------------------------------------------------------------------------- */

struct list_state {
	struct imap_list *out;
	int lsub; /* merging LSUB into a LIST result */
	const char *verb;
};

static const char *const special_uses[] = {"\\All",  "\\Archive", "\\Drafts", "\\Flagged",
					   "\\Junk", "\\Sent",	  "\\Trash"};

static struct imap_list_entry *list_find(struct imap_list *l, const char *wire)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].wire, wire) == 0)
			return &l->v[i];
	return NULL;
}

static int list_untagged(struct imap_conn *c, void *ctx, const struct imap_response *r, struct fleet_err *err)
{
	struct list_state *st = ctx;
	const struct imap_node *attrs = r->args, *dn, *nn;
	struct imap_list_entry *e, tmp;
	struct fleet_buf b = FLEET_BUF_INIT(IMAP_NAME_MAX);
	char delim;

	if (strcmp(r->name, st->verb) != 0)
		return 0;
	if (st->out->n >= IMAP_LIST_MAX_ENTRIES)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_ERR_LIMIT,
				     "%s: the %s answer exceeds %d folders (IMAP_LIST_MAX_ENTRIES): more than any "
				     "real account holds; stopped reading it",
				     c->label, r->name, IMAP_LIST_MAX_ENTRIES);
	dn = attrs ? attrs->next : NULL;
	nn = dn ? dn->next : NULL;
	if (!attrs || attrs->type != IMAP_NODE_LIST || node_delim(dn, &delim) < 0 || !imap_node_is_string(nn))
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_ERR_PROTOCOL,
				     "malformed %s response", r->name);
	if (memchr(nn->str, '\0', nn->len)) {
		/* No command can name it: listed (escaped) so that the engine fails this folder alone. */
		struct fleet_buf esc = FLEET_BUF_INIT(IMAP_NAME_MAX);

		if (strcmp(r->name, "LSUB") == 0 || st->lsub)
			return 1;
		memset(&tmp, 0, sizeof(tmp));
		fleet_escape_term(&esc, nn->str, nn->len);
		if (fleet_buf_truncated(&esc)) { /* shown cut, and said so */
			fleet_buf_reset(&esc);
			fleet_escape_term(&esc, nn->str, IMAP_NAME_MAX / 8);
			fleet_buf_add_str(&esc, "...");
		}
		tmp.name = fleet_buf_detach(&esc, NULL);
		tmp.wire = xstrdup(tmp.name ? tmp.name : "");
		if (!tmp.name)
			tmp.name = xstrdup("");
		tmp.delim = delim;
		tmp.flags = IMAP_MBX_UNUSABLE | IMAP_MBX_NOSELECT;
		st->out->v = xgrow(st->out->v, sizeof(*st->out->v), st->out->n + 1, &st->out->alloc);
		st->out->v[st->out->n++] = tmp;
		return 1;
	}
	/* RFC 3501 6.3.9: LSUB flags \Noselect a name it lists only because a child is subscribed
	 * (Courier does this for every parent of a subscription). Such a name is not subscribed. */
	if (strcmp(r->name, "LSUB") == 0)
		for (const struct imap_node *a = attrs->child; a; a = a->next)
			if (a->type == IMAP_NODE_ATOM && fleet_strcaseeq(a->str, "\\Noselect"))
				return 1;
	if (st->lsub) {
		e = list_find(st->out, nn->str);
		if (e) {
			e->flags |= IMAP_MBX_SUBSCRIBED;
			return 1;
		}
	}
	memset(&tmp, 0, sizeof(tmp));
	tmp.wire = xstrndup(nn->str, nn->len);
	tmp.delim = delim;
	if (mutf7_decode(nn->str, nn->len, &b, NULL) == 0) {
		tmp.name = fleet_buf_detach(&b, NULL);
		if (!tmp.name)
			tmp.name = xstrdup("");
	} else {
		tmp.name = xstrndup(nn->str, nn->len);
		tmp.flags |= IMAP_MBX_BAD_NAME;
		if (imap_strlist_find(&c->raw_names, tmp.name) < 0) {
			imap_strlist_add(&c->raw_names, tmp.name, strlen(tmp.name));
			imap_strlist_add(&c->raw_wires, tmp.wire, strlen(tmp.wire));
		}
	}
	fleet_buf_release(&b);
	for (const struct imap_node *a = attrs->child; a; a = a->next) {
		if (a->type != IMAP_NODE_ATOM)
			continue;
		imap_strlist_add(&tmp.attrs, a->str, a->len);
		if (fleet_strcaseeq(a->str, "\\Noselect"))
			tmp.flags |= IMAP_MBX_NOSELECT;
		else if (fleet_strcaseeq(a->str, "\\NonExistent"))
			tmp.flags |= IMAP_MBX_NONEXISTENT | IMAP_MBX_NOSELECT;
		else if (fleet_strcaseeq(a->str, "\\Noinferiors"))
			tmp.flags |= IMAP_MBX_NOINFERIORS;
		else if (fleet_strcaseeq(a->str, "\\HasChildren"))
			tmp.flags |= IMAP_MBX_HASCHILDREN;
		else if (fleet_strcaseeq(a->str, "\\HasNoChildren"))
			tmp.flags |= IMAP_MBX_HASNOCHILDREN;
		else if (fleet_strcaseeq(a->str, "\\Subscribed"))
			tmp.flags |= IMAP_MBX_SUBSCRIBED;
		for (size_t i = 0; i < sizeof(special_uses) / sizeof(special_uses[0]); i++)
			if (fleet_strcaseeq(a->str, special_uses[i]) && !tmp.special[0])
				snprintf(tmp.special, sizeof(tmp.special), "%s", special_uses[i]);
	}
	if (st->lsub || strcmp(r->name, "LSUB") == 0)
		tmp.flags |= IMAP_MBX_SUBSCRIBED;
	if (st->lsub) /* subscribed, yet not listed: it does not exist */
		tmp.flags |= IMAP_MBX_NONEXISTENT | IMAP_MBX_NOSELECT;
	st->out->v = xgrow(st->out->v, sizeof(*st->out->v), st->out->n + 1, &st->out->alloc);
	st->out->v[st->out->n++] = tmp;
	return 1;
}

static void list_state_free(void *p)
{
	xfree(&p);
}

int imap_list_send(struct imap_conn *c, struct imap_list *out, int ids[2], struct fleet_err *err)
{
	struct list_state *st = xcalloc(1, sizeof(*st));
	int ext = imap_conn_has_cap(c, "LIST-EXTENDED");
	char cmd[128];
	int n;

	st->out = out;
	st->verb = "LIST";
	if (ext)
		n = snprintf(cmd, sizeof(cmd), "LIST \"\" \"*\" RETURN (SUBSCRIBED%s)",
			     imap_conn_has_cap(c, "SPECIAL-USE") ? " SPECIAL-USE" : "");
	else
		n = snprintf(cmd, sizeof(cmd), "LIST \"\" \"*\"");
	ids[0] = cmd_submit(c, list_untagged, st, list_state_free, NULL, cmd, (size_t)n, NULL, err);
	if (ids[0] < 0 || ext)
		return ids[0] < 0 ? -1 : 1;
	/* Without LIST-EXTENDED the subscriptions come from LSUB, merged into the LIST result: it runs
	 * after the LIST, so the names are there when its answer is read. */
	st = xcalloc(1, sizeof(*st));
	st->out = out;
	st->lsub = 1;
	st->verb = "LSUB";
	ids[1] = cmd_submit(c, list_untagged, st, list_state_free, NULL, "LSUB \"\" \"*\"",
			    strlen("LSUB \"\" \"*\""), NULL, err);
	return ids[1] < 0 ? -1 : 2;
}

int imap_list_wait(struct imap_conn *c, const int *ids, int n, struct fleet_err *err)
{
	int rc = 0;

	for (int i = 0; i < n; i++) {
		struct fleet_err e2;

		if (imap_cmd_wait(c, ids[i], NULL, FLEET_SCOPE_ACCOUNT, rc < 0 ? &e2 : err) < 0)
			rc = -1;
	}
	return rc;
}

int imap_list(struct imap_conn *c, struct imap_list *out, struct fleet_err *err)
{
	int ids[2];
	int n = imap_list_send(c, out, ids, err);

	if (n < 0) {
		if (ids[0] > 0)
			imap_list_wait(c, ids, 1, &(struct fleet_err){0});
		return -1;
	}
	return imap_list_wait(c, ids, n, err);
}

int imap_lsub(struct imap_conn *c, struct imap_list *out, struct fleet_err *err)
{
	struct list_state st = {out, 0, "LSUB"};

	return run_cmd(c, list_untagged, &st, FLEET_SCOPE_ACCOUNT, NULL, err, "LSUB \"\" \"*\"");
}

void imap_list_release(struct imap_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		xfree(&l->v[i].name);
		xfree(&l->v[i].wire);
		imap_strlist_release(&l->v[i].attrs);
	}
	xfree(&l->v);
	l->n = l->alloc = 0;
}

/* ---- STATUS -------------------------------------------------------------------------------------- */

struct status_state {
	struct imap_status_info *out;
	char *wire;
};

static void status_state_free(void *p)
{
	struct status_state *st = p;

	xfree(&st->wire);
	xfree(&st);
}

/* A counter that no correct server sends (issue 13.12): a 32-bit item (UIDNEXT, UIDVALIDITY,
 * MESSAGES, UNSEEN) above 2^32 - 1, or UIDVALIDITY 0 (RFC 3501: nz-number). Taken as they came,
 * they were truncated silently, and a UIDVALIDITY of 0 reads as "not known yet" everywhere. The
 * folder fails with what the server sent; the account goes on. 1 (err filled) when bad. */
static int bad_counter(const char *name, uint64_t v, int is32, struct fleet_err *err)
{
	if (is32 && v > UINT32_MAX)
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER, IMAP_ERR_PROTOCOL_VALUE,
			      "the server sent %s %llu, above the 32-bit limit 4294967295 of IMAP: its "
			      "counters cannot be trusted",
			      name, (unsigned long long)v);
	else if (v == 0 && strcmp(name, "UIDVALIDITY") == 0)
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER, IMAP_ERR_PROTOCOL_VALUE,
			      "the server sent UIDVALIDITY 0, which IMAP forbids (RFC 3501: a non-zero "
			      "number): without it copies cannot be tracked");
	else
		return 0;
	return 1;
}

static int status_untagged(struct imap_conn *c, void *ctx, const struct imap_response *r,
			   struct fleet_err *err)
{
	static const struct {
		const char *name;
		unsigned bit;
	} items[] = {
	    {"MESSAGES", IMAP_HAVE_MESSAGES},
	    {"UIDNEXT", IMAP_HAVE_UIDNEXT},
	    {"UIDVALIDITY", IMAP_HAVE_UIDVALIDITY},
	    {"HIGHESTMODSEQ", IMAP_HAVE_HIGHESTMODSEQ},
	    {"SIZE", IMAP_HAVE_SIZE},
	    {"UNSEEN", IMAP_HAVE_UNSEEN},
	};
	struct status_state *st = ctx;
	const struct imap_node *n = r->args, *l;

	if (strcmp(r->name, "STATUS") != 0 || !imap_node_is_string(n) || !fleet_strcaseeq(n->str, st->wire))
		return 0;
	l = n->next;
	if (!l || l->type != IMAP_NODE_LIST)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_ERR_PROTOCOL,
				     "malformed STATUS response");
	for (const struct imap_node *k = l->child; k && k->next; k = k->next->next) {
		for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
			uint64_t v;

			if (!imap_node_is_atom(k, items[i].name))
				continue;
			if (imap_node_u64(k->next, UINT64_MAX, &v) < 0)
				return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_ERR_PROTOCOL,
						     "malformed STATUS %s value", items[i].name);
			if (bad_counter(items[i].name, v, items[i].bit != IMAP_HAVE_HIGHESTMODSEQ &&
							      items[i].bit != IMAP_HAVE_SIZE, err))
				return -1;
			st->out->have |= items[i].bit;
			switch (items[i].bit) {
			case IMAP_HAVE_MESSAGES: st->out->messages = (uint32_t)v; break;
			case IMAP_HAVE_UIDNEXT: st->out->uidnext = (uint32_t)v; break;
			case IMAP_HAVE_UIDVALIDITY: st->out->uidvalidity = (uint32_t)v; break;
			case IMAP_HAVE_UNSEEN: st->out->unseen = (uint32_t)v; break;
			case IMAP_HAVE_HIGHESTMODSEQ: st->out->highestmodseq = v; break;
			case IMAP_HAVE_SIZE: st->out->size = v; break;
			}
		}
	}
	return 1;
}

int imap_status_send(struct imap_conn *c, const char *mailbox, struct imap_status_info *out,
		     struct fleet_err *err)
{
	struct status_state *st = xcalloc(1, sizeof(*st));
	struct fleet_buf wire = FLEET_BUF_INIT(IMAP_MAILBOX_WIRE_MAX);
	char tail[128];

	memset(out, 0, sizeof(*out));
	if (mailbox_wire(c, mailbox, &wire, err) < 0) {
		fleet_buf_release(&wire);
		xfree(&st);
		return -1;
	}
	st->out = out;
	st->wire = fleet_buf_detach(&wire, NULL);
	if (!st->wire)
		st->wire = xstrdup("");
	snprintf(tail, sizeof(tail), " (MESSAGES UIDNEXT UIDVALIDITY%s%s)",
		 imap_conn_has_cap(c, "CONDSTORE") ? " HIGHESTMODSEQ" : "",
		 imap_conn_has_cap(c, "STATUS=SIZE") ? " SIZE" : "");
	return mailbox_cmd(c, "STATUS", mailbox, tail, status_untagged, st, status_state_free, 0, NULL, err);
}

int imap_status(struct imap_conn *c, const char *mailbox, struct imap_status_info *out, struct fleet_err *err)
{
	int id = imap_status_send(c, mailbox, out, err);

	if (id < 0)
		return -1;
	if (imap_cmd_wait(c, id, NULL, FLEET_SCOPE_FOLDER, err) < 0) {
		fleet_err_prefix(err, "folder %s", mailbox);
		return -1;
	}
	return 0;
}

/* ---- SELECT -------------------------------------------------------------------------------------- */

static int select_untagged(struct imap_conn *c, void *ctx, const struct imap_response *r,
			   struct fleet_err *err)
{
	struct imap_mailbox *m = ctx;
	uint64_t v;

	if (r->has_number) {
		if (strcmp(r->name, "EXISTS") == 0)
			m->exists = r->number;
		else if (strcmp(r->name, "RECENT") == 0)
			m->recent = r->number;
		else
			return 0;
		return 1;
	}
	if (strcmp(r->name, "FLAGS") == 0 && r->args && r->args->type == IMAP_NODE_LIST) {
		imap_strlist_release(&m->flags);
		for (const struct imap_node *n = r->args->child; n; n = n->next)
			if (n->type == IMAP_NODE_ATOM)
				imap_strlist_add(&m->flags, n->str, n->len);
		return 1;
	}
	if (r->status != IMAP_STATUS_OK || !r->code)
		return 0;
	if (imap_resp_code_u64(r, "UIDVALIDITY", &v) == 0) {
		if (bad_counter("UIDVALIDITY", v, 1, err))
			return -1;
		m->uidvalidity = (uint32_t)v;
	} else if (imap_resp_code_u64(r, "UIDNEXT", &v) == 0) {
		if (bad_counter("UIDNEXT", v, 1, err))
			return -1;
		m->uidnext = (uint32_t)v;
	} else if (imap_resp_code_u64(r, "UNSEEN", &v) == 0 && v <= UINT32_MAX)
		m->unseen = (uint32_t)v;
	else if (imap_resp_code_u64(r, "HIGHESTMODSEQ", &v) == 0)
		m->highestmodseq = v;
	else if (imap_resp_has_code(r, "NOMODSEQ"))
		m->nomodseq = 1;
	else if (imap_resp_has_code(r, "PERMANENTFLAGS")) {
		imap_strlist_release(&m->permanentflags);
		imap_code_words(r->code_args, &m->permanentflags);
	} else
		return 0;
	return 1;
}

int imap_select(struct imap_conn *c, const char *mailbox, int read_only, struct imap_mailbox *out,
		struct fleet_err *err)
{
	struct imap_result res;
	const char *tail = NULL;

	imap_mailbox_release(out);
	memset(out, 0, sizeof(*out));
	memset(&c->counters, 0, sizeof(c->counters));
	if (imap_conn_has_cap(c, "CONDSTORE") && !imap_conn_enabled(c, "CONDSTORE") &&
	    !imap_conn_enabled(c, "QRESYNC"))
		tail = " (CONDSTORE)";
	if (mailbox_cmd(c, read_only ? "EXAMINE" : "SELECT", mailbox, tail, select_untagged, out, NULL, 1,
			&res, err) < 0)
		return -1;
	out->read_only = read_only || fleet_strcaseeq(res.code, "READ-ONLY");
	c->counters.exists = out->exists;
	c->counters.recent = out->recent;
	return 0;
}

int imap_select_send(struct imap_conn *c, const char *mailbox, int read_only, struct imap_mailbox *out,
		     struct fleet_err *err)
{
	imap_mailbox_release(out);
	memset(out, 0, sizeof(*out));
	/* The counters are left alone: a command still in flight before this one may be a FETCH of the
	 * mailbox selected now, bounded by its EXISTS. The EXISTS of this SELECT updates them in turn. */
	return mailbox_cmd(c, read_only ? "EXAMINE" : "SELECT", mailbox,
			   imap_conn_has_cap(c, "CONDSTORE") && !imap_conn_enabled(c, "CONDSTORE") &&
				   !imap_conn_enabled(c, "QRESYNC")
			       ? " (CONDSTORE)"
			       : NULL,
			   select_untagged, out, NULL, 0, NULL, err);
}

int imap_select_wait(struct imap_conn *c, int id, const char *mailbox, int read_only, struct imap_mailbox *out,
		     struct fleet_err *err)
{
	struct imap_result res;

	if (imap_cmd_wait(c, id, &res, FLEET_SCOPE_FOLDER, err) < 0) {
		fleet_err_prefix(err, "folder %s", mailbox);
		return -1;
	}
	out->read_only = read_only || fleet_strcaseeq(res.code, "READ-ONLY");
	return 0;
}

void imap_mailbox_release(struct imap_mailbox *m)
{
	imap_strlist_release(&m->flags);
	imap_strlist_release(&m->permanentflags);
}

/* ---- SEARCH ------------------------------------------------------------------------------------ */

static int uids_add(struct imap_uids *u, uint32_t uid, struct fleet_err *err)
{
	if (u->n >= IMAP_SEARCH_MAX_UIDS)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER, IMAP_ERR_SEARCH_LIMIT,
				     "search result larger than %u UIDs", IMAP_SEARCH_MAX_UIDS);
	u->v = xgrow(u->v, sizeof(*u->v), u->n + 1, &u->alloc);
	u->v[u->n++] = uid;
	return 0;
}

static int search_untagged(struct imap_conn *c, void *ctx, const struct imap_response *r,
			   struct fleet_err *err)
{
	struct imap_uids *u = ctx;
	uint64_t v;

	if (strcmp(r->name, "SEARCH") == 0) {
		for (const struct imap_node *n = r->args; n; n = n->next) {
			if (n->type == IMAP_NODE_LIST) /* (MODSEQ n) with CONDSTORE */
				continue;
			if (imap_node_u64(n, UINT32_MAX, &v) < 0 || v == 0)
				return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_ERR_PROTOCOL,
						     "malformed SEARCH response");
			if (uids_add(u, (uint32_t)v, err) < 0)
				return -1;
		}
		return 1;
	}
	if (strcmp(r->name, "ESEARCH") == 0) {
		for (const struct imap_node *n = r->args; n; n = n->next) {
			struct imap_uidset set = {0};
			uint64_t count;

			if (!imap_node_is_atom(n, "ALL") || !n->next || n->next->type != IMAP_NODE_ATOM)
				continue;
			if (imap_uidset_parse(&set, n->next->str, n->next->len) < 0)
				return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_ERR_PROTOCOL,
						     "malformed ESEARCH response");
			count = imap_uidset_count(&set);
			if (count + u->n > IMAP_SEARCH_MAX_UIDS) {
				imap_uidset_release(&set);
				return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER,
						     IMAP_ERR_SEARCH_LIMIT, "search result larger than %u UIDs",
						     IMAP_SEARCH_MAX_UIDS);
			}
			for (uint64_t i = 0; i < count; i++) {
				uint32_t uid;

				imap_uidset_nth(&set, i, &uid);
				uids_add(u, uid, err);
			}
			imap_uidset_release(&set);
		}
		return 1;
	}
	return 0;
}

int imap_uid_search(struct imap_conn *c, const char *criteria, struct imap_uids *out, struct fleet_err *err)
{
	int id;

	if (strpbrk(criteria, "\r\n"))
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, IMAP_CODE_CLIENTBUG,
				     "search criteria with CR/LF");
	if (imap_conn_has_cap(c, "ESEARCH"))
		id = imap_cmd_send(c, search_untagged, out, err, "UID SEARCH RETURN (ALL) %s", criteria);
	else
		id = imap_cmd_send(c, search_untagged, out, err, "UID SEARCH %s", criteria);
	return id < 0 ? -1 : imap_cmd_wait(c, id, NULL, FLEET_SCOPE_FOLDER, err);
}

void imap_uids_release(struct imap_uids *u)
{
	xfree(&u->v);
	u->n = u->alloc = 0;
}

/* ---- QUOTA ---------------------------------------------------------------------------------------- */

static int quota_untagged(struct imap_conn *c, void *ctx, const struct imap_response *r,
			  struct fleet_err *err)
{
	struct imap_quota *q = ctx;
	const struct imap_node *n = r->args;

	if (strcmp(r->name, "QUOTAROOT") == 0)
		return 1;
	if (strcmp(r->name, "QUOTA") != 0)
		return 0;
	if (!imap_node_is_string(n) || !n->next || n->next->type != IMAP_NODE_LIST)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_ERR_PROTOCOL,
				     "malformed QUOTA response");
	if (q->has_storage || q->has_messages) /* the first root counts */
		return 1;
	snprintf(q->root, sizeof(q->root), "%s", n->str);
	for (const struct imap_node *k = n->next->child; k && k->next && k->next->next;
	     k = k->next->next->next) {
		uint64_t used, limit;

		if (imap_node_u64(k->next, UINT64_MAX, &used) < 0 ||
		    imap_node_u64(k->next->next, UINT64_MAX, &limit) < 0)
			return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_ERR_PROTOCOL,
					     "malformed QUOTA response");
		if (imap_node_is_atom(k, "STORAGE")) {
			q->has_storage = 1;
			q->storage_used_kb = used;
			q->storage_limit_kb = limit;
		} else if (imap_node_is_atom(k, "MESSAGE")) {
			q->has_messages = 1;
			q->messages_used = used;
			q->messages_limit = limit;
		}
	}
	return 1;
}

int imap_getquotaroot(struct imap_conn *c, const char *mailbox, struct imap_quota *q, struct fleet_err *err)
{
	memset(q, 0, sizeof(*q));
	if (!imap_conn_has_cap(c, "QUOTA"))
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_ERR_QUOTA_MISSING,
				     "%s: server does not offer QUOTA", c->label);
	return mailbox_cmd(c, "GETQUOTAROOT", mailbox, NULL, quota_untagged, q, NULL, 1, NULL, err);
}

/* ---- UID FETCH ----------------------------------------------------------------------------------- */

struct fetch_state {
	const struct imap_fetch_cb *cb;
	void *ctx;
	struct imap_uidset set;
	int want_main; /* items other than UID, FLAGS, MODSEQ were asked for */
	int discard;   /* the body being streamed is for a UID outside the set */
	int failed;
	uint64_t delivered; /* against IMAP_FETCH_MAX_PER_EXISTS */
};

static void fetch_state_free(void *p)
{
	struct fetch_state *fs = p;

	imap_uidset_release(&fs->set);
	xfree(&fs);
}

static void fetch_fail(struct cmd *cmd, struct fetch_state *fs, struct fleet_err *e)
{
	fs->failed = 1;
	cmd_fail(cmd, e);
}

/* BODY[...], BINARY[...], RFC822, RFC822.TEXT, but not header or MIME sections. */
static int is_body_item(const char *item)
{
	const char *br;

	if (fleet_strcaseeq(item, "RFC822") || fleet_strcaseeq(item, "RFC822.TEXT"))
		return 1;
	if (!fleet_strncaseeq(item, "BODY[", 5) && !fleet_strncaseeq(item, "BINARY[", 7))
		return 0;
	br = strchr(item, '[');
	for (const char *p = br; *p && *p != ']'; p++)
		if (fleet_strncaseeq(p, "HEADER", 6) || fleet_strncaseeq(p, "MIME", 4))
			return 0;
	return 1;
}

static int is_section_item(const char *item)
{
	return fleet_strncaseeq(item, "BODY[", 5) || fleet_strncaseeq(item, "BINARY[", 7) ||
	       fleet_strncaseeq(item, "RFC822", 6);
}

static int fetch_lit_start(struct imap_conn *c, struct cmd *cmd, const struct imap_parser_event *ev)
{
	struct fetch_state *fs = cmd->ctx;
	const struct imap_node *uidn;
	uint64_t uid = 0;
	struct fleet_err e;

	if (strcmp(ev->resp->name, "FETCH") != 0 || !ev->resp->has_number)
		return -1;
	if (!fs->cb->on_body_start || !is_body_item(ev->item))
		return 0;
	uidn = imap_list_get(ev->resp->args, "UID");
	if (uidn && imap_node_u64(uidn, UINT32_MAX, &uid) < 0)
		uid = 0;
	/* "N:*" beyond the highest UID returns the last message: read its body into the void. */
	fs->discard = uid != 0 && !imap_uidset_contains(&fs->set, (uint32_t)uid);
	if (!fs->failed && !fs->discard) {
		fleet_err_clear(&e);
		if (fs->cb->on_body_start(fs->ctx, ev->resp->number, (uint32_t)uid, ev->literal_size, &e) < 0)
			fetch_fail(cmd, fs, &e);
	}
	return 1;
}

static void fetch_lit_data(struct imap_conn *c, struct cmd *cmd, const char *d, size_t n)
{
	struct fetch_state *fs = cmd->ctx;
	struct fleet_err e;

	if (fs->failed || fs->discard || !fs->cb->on_body_data)
		return;
	fleet_err_clear(&e);
	if (fs->cb->on_body_data(fs->ctx, d, n, &e) < 0)
		fetch_fail(cmd, fs, &e);
}

static void fetch_lit_end(struct imap_conn *c, struct cmd *cmd)
{
	struct fetch_state *fs = cmd->ctx;
	struct fleet_err e;

	if (fs->failed || fs->discard || !fs->cb->on_body_end)
		return;
	fleet_err_clear(&e);
	if (fs->cb->on_body_end(fs->ctx, &e) < 0)
		fetch_fail(cmd, fs, &e);
}

static const struct lit_ops fetch_lit_ops = {fetch_lit_start, fetch_lit_data, fetch_lit_end};

static int fetch_untagged(struct imap_conn *c, void *ctx, const struct imap_response *r,
			  struct fleet_err *err)
{
	struct fetch_state *fs = ctx;
	struct imap_fetch_msg m;
	int has_uid = 0, has_main = 0;
	uint64_t v;

	if (!r->has_number || strcmp(r->name, "FETCH") != 0 || !r->args || r->args->type != IMAP_NODE_LIST)
		return 0;
	memset(&m, 0, sizeof(m));
	m.seq = r->number;
	m.resp = r;
	for (const struct imap_node *k = r->args->child; k; k = k->next ? k->next->next : NULL) {
		const struct imap_node *val = k->next;

		if (k->type != IMAP_NODE_ATOM || !val)
			return 0; /* not name/value pairs: not a FETCH we understand */
		if (fleet_strcaseeq(k->str, "UID")) {
			if (imap_node_u64(val, UINT32_MAX, &v) < 0 || v == 0)
				return 0;
			m.uid = (uint32_t)v;
			has_uid = 1;
			continue;
		}
		if (fleet_strcaseeq(k->str, "FLAGS")) {
			if (val->type == IMAP_NODE_LIST)
				m.flags = val;
			continue;
		}
		if (fleet_strcaseeq(k->str, "MODSEQ")) {
			if (val->type == IMAP_NODE_LIST && imap_node_u64(val->child, UINT64_MAX, &v) == 0) {
				m.has_modseq = 1;
				m.modseq = v;
			}
			continue;
		}
		has_main = 1;
		if (fleet_strcaseeq(k->str, "INTERNALDATE")) {
			if (val->type == IMAP_NODE_QUOTED)
				m.internaldate = val->str;
		} else if (fleet_strcaseeq(k->str, "RFC822.SIZE")) {
			if (imap_node_u64(val, UINT64_MAX, &v) == 0) {
				m.has_size = 1;
				m.rfc822_size = v;
			}
		} else if (is_section_item(k->str)) {
			if (val->type == IMAP_NODE_STREAMED) {
				m.body_streamed = 1;
				m.body_size = val->size;
			} else if (!m.section_name) {
				m.section_name = k->str;
				if (imap_node_is_string(val)) {
					m.section = val->str;
					m.section_len = val->len;
				}
			}
		}
	}
	/* Flag updates from other sessions and UIDs outside the request are not ours. */
	if (!has_uid || !imap_uidset_contains(&fs->set, m.uid) || (fs->want_main && !has_main))
		return 0;
	if (++fs->delivered > (uint64_t)c->counters.exists * IMAP_FETCH_MAX_PER_EXISTS + IMAP_FETCH_SLACK)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_ERR_LIMIT,
				     "%s: the UID FETCH answer exceeds %llu messages in a folder of %u "
				     "(IMAP_FETCH_MAX_PER_EXISTS): stopped reading it",
				     c->label,
				     (unsigned long long)c->counters.exists * IMAP_FETCH_MAX_PER_EXISTS + IMAP_FETCH_SLACK,
				     c->counters.exists);
	if (!fs->failed && fs->cb->on_message) {
		fleet_err_clear(err);
		if (fs->cb->on_message(fs->ctx, &m, err) < 0) {
			fs->failed = 1;
			return -1;
		}
	}
	return 1;
}

int imap_fetch_send(struct imap_conn *c, const char *uidset, const char *items,
		    const struct imap_fetch_cb *cb, void *ctx, struct fleet_err *err)
{
	struct fetch_state *fs;
	struct fleet_buf cmd = FLEET_BUF_INIT(IMAP_CMD_MAX);
	int id;

	if (strpbrk(items, "\r\n"))
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, IMAP_CODE_CLIENTBUG,
				     "FETCH items with CR/LF");
	fs = xcalloc(1, sizeof(*fs));
	fs->cb = cb;
	fs->ctx = ctx;
	if (imap_uidset_parse(&fs->set, uidset, strlen(uidset)) < 0) {
		fetch_state_free(fs);
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, IMAP_CODE_CLIENTBUG,
				     "invalid UID set \"%.100s\"", uidset);
	}
	{
		struct imap_strlist w = {0};

		imap_code_words(items, &w);
		for (size_t i = 0; i < w.n; i++)
			if (!fleet_strcaseeq(w.v[i], "UID") && !fleet_strcaseeq(w.v[i], "FLAGS") &&
			    !fleet_strcaseeq(w.v[i], "MODSEQ"))
				fs->want_main = 1;
		imap_strlist_release(&w);
	}
	fleet_buf_addf(&cmd, "UID FETCH %s %s", uidset, items);
	id =
	    cmd_whole(&cmd, fetch_state_free, fs, err) < 0
		? -1
		: cmd_submit(c, fetch_untagged, fs, fetch_state_free, &fetch_lit_ops, cmd.data, cmd.len, NULL, err);
	fleet_buf_release(&cmd);
	return id;
}

int imap_fetch(struct imap_conn *c, const char *uidset, const char *items, const struct imap_fetch_cb *cb,
	       void *ctx, struct fleet_err *err)
{
	int id = imap_fetch_send(c, uidset, items, cb, ctx, err);

	if (id < 0)
		return -1;
	return imap_cmd_wait(c, id, NULL, FLEET_SCOPE_FOLDER, err);
}

/* ---- APPEND ------------------------------------------------------------------------------------- */

/* An APPEND's flag list and INTERNALDATE (either NULL): 0, or -1 with err filled. */
static int append_args_check(const char *flags, const char *internaldate, struct fleet_err *err)
{
	int64_t t;
	int tz;

	if (internaldate && imap_internaldate_parse(internaldate, &t, &tz) < 0)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_MESSAGE, IMAP_ERR_INTERNALDATE,
				     "invalid INTERNALDATE \"%.40s\"", internaldate);
	if (flags && strpbrk(flags, "\r\n()\"{"))
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_MESSAGE, IMAP_CODE_CLIENTBUG,
				     "invalid flag list \"%.100s\"", flags);
	return 0;
}

int imap_append_begin(struct imap_conn *c, const char *mailbox, const char *flags, const char *internaldate,
		      uint64_t size, int *id, struct fleet_err *err)
{
	struct fleet_buf cmd = FLEET_BUF_INIT(IMAP_CMD_MAX);
	struct cmd *k;
	int plus, r;

	*id = -1;
	if (can_send(c, err) < 0)
		return -1;
	if (append_args_check(flags, internaldate, err) < 0)
		return -1;
	fleet_buf_add_str(&cmd, "APPEND ");
	if (imap_quote_mailbox(c, &cmd, mailbox, err) < 0) {
		fleet_buf_release(&cmd);
		return -1;
	}
	if (flags && *flags)
		fleet_buf_addf(&cmd, " (%s)", flags);
	if (internaldate)
		fleet_buf_addf(&cmd, " \"%s\"", internaldate);
	plus = imap_conn_has_cap(c, "LITERAL+") || (imap_conn_has_cap(c, "LITERAL-") && size <= IMAP_LITERAL_MINUS_MAX);
	/* Asked once per command, not for every message imap_append_next adds to it. */
	c->append_multi_ok = imap_conn_has_cap(c, "MULTIAPPEND") && imap_conn_has_cap(c, "LITERAL+");
	fleet_buf_addf(&cmd, " {%llu%s}", (unsigned long long)size, plus ? "+" : "");
	if (cmd_whole(&cmd, NULL, NULL, err) < 0) {
		fleet_buf_release(&cmd);
		return -1;
	}
	k = cmd_new(c, NULL, NULL, cmd.data);
	if (is_trace(c))
		log_trace("%s C: %s %s", c->label, k->tag, cmd.data);
	r = conn_write(c, k->tag, strlen(k->tag), err);
	r = r < 0 ? r : conn_write(c, " ", 1, err);
	r = r < 0 ? r : conn_write(c, cmd.data, cmd.len, err);
	r = r < 0 ? r : conn_write(c, "\r\n", 2, err);
	fleet_buf_release(&cmd);
	if (r < 0) {
		cmd_unlink_free(c, k);
		return -1;
	}
	if (!plus) {
		r = wait_continuation(c, k, err);
		if (r < 0) {
			cmd_unlink_free(c, k);
			return -1;
		}
		if (r == 0) { /* refused before the body: APPENDLIMIT, quota, no such folder */
			cmd_collect(c, k, NULL, FLEET_SCOPE_MESSAGE, err);
			return -1;
		}
	}
	c->append_cmd = k;
	c->append_left = size;
	*id = k->id;
	return 0;
}

int imap_append_next(struct imap_conn *c, const char *flags, const char *internaldate, uint64_t size,
		     struct fleet_err *err)
{
	char lit[32];
	int n, r;

	if (c->broken)
		return broken_err(c, err);
	if (!c->append_cmd || c->append_left > 0)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
				     "%s: no complete APPEND message to continue", c->label);
	if (!c->append_multi_ok)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_ERR_MULTIAPPEND_UNAVAILABLE,
				     "%s: the server does not offer MULTIAPPEND with LITERAL+", c->label);
	if (append_args_check(flags, internaldate, err) < 0)
		return -1;
	if (flags && !*flags)
		flags = NULL;
	n = snprintf(lit, sizeof(lit), " {%llu+}\r\n", (unsigned long long)size);
	if (is_trace(c))
		log_trace("%s C: <%s next message>%s%s%s%s%s%s%.*s", c->label, c->append_cmd->tag,
			  flags ? " (" : "", flags ? flags : "", flags ? ")" : "", internaldate ? " \"" : "",
			  internaldate ? internaldate : "", internaldate ? "\"" : "", n - 2, lit);
	/* Once per message: written piece by piece into the output buffer, no formatting buffer. */
	r = 0;
	if (flags) {
		r = conn_write(c, " (", 2, err);
		r = r < 0 ? r : conn_write(c, flags, strlen(flags), err);
		r = r < 0 ? r : conn_write(c, ")", 1, err);
	}
	if (internaldate && r == 0) {
		r = conn_write(c, " \"", 2, err);
		r = r < 0 ? r : conn_write(c, internaldate, strlen(internaldate), err);
		r = r < 0 ? r : conn_write(c, "\"", 1, err);
	}
	r = r < 0 ? r : conn_write(c, lit, (size_t)n, err);
	if (r < 0)
		return -1;
	c->append_left = size;
	return 0;
}

int imap_append_data(struct imap_conn *c, const void *data, size_t len, struct fleet_err *err)
{
	if (c->broken)
		return broken_err(c, err);
	if (!c->append_cmd)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
				     "%s: no APPEND in progress", c->label);
	if (len > c->append_left)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_MESSAGE, IMAP_CODE_CLIENTBUG,
				     "%s: APPEND body longer than the announced size", c->label);
	if (conn_write(c, data, len, err) < 0)
		return -1;
	c->append_left -= len;
	return 0;
}

int imap_append_end(struct imap_conn *c, struct fleet_err *err)
{
	if (c->broken)
		return broken_err(c, err);
	if (!c->append_cmd)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_CODE_CLIENTBUG,
				     "%s: no APPEND in progress", c->label);
	if (c->append_left > 0)
		/* The server still expects bytes: the stream is out of step for good. */
		return conn_fail_new(c, FLEET_ERR_BUG, IMAP_CODE_CLIENTBUG, err,
				     "APPEND body %llu bytes shorter than announced",
				     (unsigned long long)c->append_left);
	if (is_trace(c))
		log_trace("%s C: <%s body sent>", c->label, c->append_cmd->tag);
	c->append_cmd = NULL;
	return conn_write(c, "\r\n", 2, err);
}

int imap_append_wait(struct imap_conn *c, int id, struct imap_append_result *res, struct fleet_err *err)
{
	struct imap_result r;

	memset(res, 0, sizeof(*res));
	if (imap_cmd_wait(c, id, &r, FLEET_SCOPE_MESSAGE, err) < 0)
		return -1;
	if (fleet_strcaseeq(r.code, "APPENDUID")) {
		struct imap_uidset set = {0};
		uint32_t v, uid;

		if (imap_code_appenduid(r.code_args, &v, &set) == 0 && imap_uidset_count(&set) == 1 &&
		    imap_uidset_nth(&set, 0, &uid) == 0) {
			res->has_uid = 1;
			res->uidvalidity = v;
			res->uid = uid;
		} else {
			log_warn("%s: malformed APPENDUID \"%s\" ignored", c->label, r.code_args);
		}
		imap_uidset_release(&set);
	}
	return 0;
}

int imap_append_wait_multi(struct imap_conn *c, int id, uint32_t *uidvalidity, struct imap_uidset *uids,
			   struct fleet_err *err)
{
	struct imap_result r;

	*uidvalidity = 0;
	if (imap_cmd_wait(c, id, &r, FLEET_SCOPE_MESSAGE, err) < 0)
		return -1;
	if (fleet_strcaseeq(r.code, "APPENDUID") && imap_code_appenduid(r.code_args, uidvalidity, uids) < 0) {
		log_warn("%s: malformed APPENDUID \"%s\" ignored", c->label, r.code_args);
		imap_uidset_release(uids);
		*uidvalidity = 0;
	}
	return 0;
}

int imap_append_buf(struct imap_conn *c, const char *mailbox, const char *flags, const char *internaldate,
		    const void *data, size_t len, struct imap_append_result *res, struct fleet_err *err)
{
	int id;

	if (imap_append_begin(c, mailbox, flags, internaldate, len, &id, err) < 0)
		return -1;
	if (imap_append_data(c, data, len, err) < 0 || imap_append_end(c, err) < 0)
		return -1;
	return imap_append_wait(c, id, res, err);
}

/* ---- INTERNALDATE ------------------------------------------------------------------------------ */

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, size_t n, unsigned *out)
{
	uint64_t v;

	if (fleet_parse_u64n(s, n, 0, 99999, &v) < 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int imap_internaldate_parse(const char *s, int64_t *utc, int *tz_minutes)
{
	unsigned day, mon = 12, year, hh, mm, ss, tzh, tzm;
	static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int sign;

	/* "dd-Mon-yyyy hh:mm:ss +zzzz", day as "dd", " d" or "d" */
	if (s[0] == ' ')
		s++;
	if (s[0] == '\0')
		return -1;
	if (s[1] == '-') {
		if (digits(s, 1, &day) < 0)
			return -1;
		s += 2;
	} else {
		if (s[1] == '\0' || s[2] != '-' || digits(s, 2, &day) < 0)
			return -1;
		s += 3;
	}
	if (strlen(s) != 23 || s[3] != '-' || s[8] != ' ' || s[11] != ':' || s[14] != ':' || s[17] != ' ' ||
	    (s[18] != '+' && s[18] != '-'))
		return -1;
	for (unsigned i = 0; i < 12; i++)
		if (fleet_strncaseeq(s, months[i], 3))
			mon = i;
	if (mon == 12 || digits(s + 4, 4, &year) < 0 || digits(s + 9, 2, &hh) < 0 ||
	    digits(s + 12, 2, &mm) < 0 || digits(s + 15, 2, &ss) < 0 || digits(s + 19, 2, &tzh) < 0 ||
	    digits(s + 21, 2, &tzm) < 0)
		return -1;
	if (day < 1 || day > mdays[mon] || hh > 23 || mm > 59 || ss > 60 || tzh > 23 || tzm > 59)
		return -1;
	sign = s[18] == '-' ? -1 : 1;
	*tz_minutes = sign * (int)(tzh * 60 + tzm);
	*utc = days_from_civil(year, mon + 1, day) * 86400 + hh * 3600 + mm * 60 + ss -
	       (int64_t)*tz_minutes * 60;
	return 0;
}

int imap_internaldate_format(int64_t utc, int tz_minutes, char *out, size_t cap)
{
	int64_t t = utc + (int64_t)tz_minutes * 60, days, sec;
	int64_t z, era, y;
	unsigned doe, yoe, doy, mp, d, m;
	int atz = tz_minutes < 0 ? -tz_minutes : tz_minutes;
	int n;

	days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	sec = t - days * 86400;
	/* civil_from_days (Hinnant) */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	if (y < 0 || y > 9999)
		return -1;
	n = snprintf(out, cap, "%02u-%s-%04d %02d:%02d:%02d %c%02d%02d", d, months[m - 1], (int)y,
		     (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60), tz_minutes < 0 ? '-' : '+',
		     atz / 60, atz % 60);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

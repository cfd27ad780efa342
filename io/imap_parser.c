/* io/imap_parser.c: see imap_parser.h.
 *
 * Shape: bytes are collected up to the next LF (a "segment"); a complete segment is tokenised in
 * one pass. Only a literal can make a response span several segments, and a literal announcement
 * must end its segment, so every token lies inside one segment and the only state carried across
 * segments is the stack of open lists. That keeps the parser resumable at any byte without a
 * per-byte state machine. When a whole segment is already in the caller's input it is tokenised
 * in place (no copy).
 *
 * Nodes are kept in an array linked by index while parsing (the array moves when it grows) and
 * turned into the pointer-linked public view when an event is reported.
 */
#include "io/imap_parser.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/util.h"

#define NONE ((size_t)-1)

enum pstate {
	ST_LINE = 0,	/* collecting a segment */
	ST_LIT_PENDING, /* LITERAL_START reported; the consumer may ask for streaming */
	ST_LIT_BUFFER,	/* copying a literal into the arena */
	ST_LIT_STREAM,	/* handing a literal out in chunks */
	ST_DONE,	/* RESPONSE reported; reset on the next call */
	ST_ERROR
};

struct pnode {
	enum imap_node_type type;
	int lit8;
	size_t off, len;
	uint64_t size;
	size_t count, first, last, next, parent;
};

struct imap_parser {
	struct imap_parser_limits lim;
	enum pstate st;
	struct fleet_buf seg;	/* a partial segment waiting for its LF */
	struct fleet_buf arena; /* NUL-terminated strings of the current response */
	struct pnode *nodes;
	size_t nnodes, nalloc;
	size_t *stack; /* open lists, innermost last */
	unsigned depth;
	size_t stack_alloc;
	size_t top_first, top_last, ntop;
	size_t line_bytes; /* bytes outside literals in this response */
	int started;	   /* the first segment of this response was parsed */
	int need_sep;	   /* 1: the last token must be followed by SP, ")" or end of line; 2: "(" too */

	enum imap_resp_kind kind;
	size_t tag_off, name_off, code_off, code_args_off, text_off;
	int has_number;
	uint32_t number;
	enum imap_status status;

	uint64_t lit_size, lit_left;
	int lit8, stream_req;
	size_t lit_off;	 /* arena offset of a buffered literal */
	size_t item_off; /* arena offset of the atom before the literal, NONE if none */

	struct imap_node *pub;
	size_t pub_alloc;
	struct imap_response resp;
};

enum seg_result { SEG_COMPLETE = 1, SEG_LITERAL = 2 };

void imap_parser_limits_default(struct imap_parser_limits *l)
{
	l->max_line = IMAP_PARSER_LINE_MAX;
	l->max_depth = IMAP_PARSER_DEPTH_MAX;
	l->max_literal = IMAP_PARSER_LITERAL_MAX;
	l->max_buffered_literal = IMAP_PARSER_BUFFERED_LITERAL_MAX;
	l->max_response = IMAP_PARSER_RESPONSE_MAX;
}

static void response_reset(struct imap_parser *p)
{
	fleet_buf_reset(&p->seg);
	fleet_buf_reset(&p->arena);
	/* Offset 0 holds "" so that every string offset is valid. */
	fleet_buf_add(&p->arena, "", 1);
	p->nnodes = 0;
	p->depth = 0;
	p->top_first = p->top_last = NONE;
	p->ntop = 0;
	p->line_bytes = 0;
	p->started = 0;
	p->need_sep = 0;
	p->kind = IMAP_RESP_UNTAGGED;
	p->tag_off = p->name_off = p->code_args_off = p->text_off = 0;
	p->code_off = NONE;
	p->has_number = 0;
	p->number = 0;
	p->status = IMAP_STATUS_NONE;
	p->lit_size = p->lit_left = 0;
	p->lit8 = p->stream_req = 0;
	p->item_off = NONE;
	p->st = ST_LINE;
}

struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	if (limits)
		p->lim = *limits;
	else
		imap_parser_limits_default(&p->lim);
	fleet_buf_init(&p->seg, p->lim.max_line);
	fleet_buf_init(&p->arena, p->lim.max_response);
	response_reset(p);
	return p;
}

void imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (!p)
		return;
	fleet_buf_release(&p->seg);
	fleet_buf_release(&p->arena);
	xfree(&p->nodes);
	xfree(&p->stack);
	xfree(&p->pub);
	xfree(pp);
}

void imap_parser_reset(struct imap_parser *p)
{
	response_reset(p);
}

void imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *limits)
{
	p->lim = *limits;
	p->seg.max = limits->max_line;
	p->arena.max = limits->max_response;
}

void imap_parser_stream_literal(struct imap_parser *p)
{
	if (p->st == ST_LIT_PENDING)
		p->stream_req = 1;
}

uint64_t imap_parser_literal_left(const struct imap_parser *p)
{
	if (p->st == ST_LIT_PENDING || p->st == ST_LIT_BUFFER || p->st == ST_LIT_STREAM)
		return p->lit_left;
	return 0;
}

int imap_parser_at_boundary(const struct imap_parser *p)
{
	return p->st == ST_DONE || (p->st == ST_LINE && !p->started && p->seg.len == 0);
}

/* ---- errors ----------------------------------------------------------------------------------- */

/* Printable excerpt of a line for error details: control and 8-bit bytes as \xNN. */
static void excerpt(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0, i;

	for (i = 0; i < n && o + 8 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
	}
	if (i < n)
		o += (size_t)snprintf(out + o, cap - o, "...");
	out[o] = '\0';
}

__attribute__((format(printf, 6, 7))) static int perr(struct imap_parser *p, struct fleet_err *err,
						      const char *code, const char *s, size_t n,
						      const char *fmt, ...)
{
	char msg[FLEET_ERR_TEXT_MAX];
	char ex[IMAP_PARSER_EXCERPT_MAX + 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->st = ST_ERROR;
	fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, code, "malformed IMAP response: %s", msg);
	if (s && n) {
		excerpt(s, n, ex, sizeof(ex));
		fleet_err_detail(err, "line: %s", ex);
	}
	return -1;
}

#define PARSE_ERR(...) perr(p, err, IMAP_PARSER_ERR_PARSE, s, n, __VA_ARGS__)
#define LIMIT_ERR(...) perr(p, err, IMAP_PARSER_ERR_PARSE_LIMIT, s, n, __VA_ARGS__)

/* ---- building the response ---------------------------------------------------------------------- */

static int node_room(struct imap_parser *p)
{
	size_t per = sizeof(struct pnode) + sizeof(struct imap_node);

	return p->arena.len + (p->nnodes + 1) * per <= p->lim.max_response;
}

/* Appends bytes plus a NUL to the arena; returns the offset or NONE when over the cap. */
static size_t arena_add(struct imap_parser *p, const char *s, size_t len)
{
	size_t off = p->arena.len;

	if (p->arena.len + len + 1 + p->nnodes * (sizeof(struct pnode) + sizeof(struct imap_node)) >
		p->lim.max_response ||
	    fleet_buf_append(&p->arena, s, len) < 0 || fleet_buf_append(&p->arena, "", 1) < 0) {
		p->arena.len = off;
		return NONE;
	}
	return off;
}

/* Adds a node to the innermost open list (or the top level); returns its index or NONE. */
static size_t node_add(struct imap_parser *p, enum imap_node_type type, size_t off, size_t len)
{
	struct pnode *n;
	size_t idx, parent = p->depth ? p->stack[p->depth - 1] : NONE;
	size_t *first, *last, *count;

	if (!node_room(p))
		return NONE;
	p->nodes = xgrow(p->nodes, sizeof(*p->nodes), p->nnodes + 1, &p->nalloc);
	idx = p->nnodes++;
	n = &p->nodes[idx];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->off = off;
	n->len = len;
	n->size = len;
	n->first = n->last = n->next = NONE;
	n->parent = parent;
	/* Appended to its parent's children, or to the top level. */
	if (parent != NONE) {
		first = &p->nodes[parent].first;
		last = &p->nodes[parent].last;
		count = &p->nodes[parent].count;
	} else {
		first = &p->top_first;
		last = &p->top_last;
		count = &p->ntop;
	}
	if (*last != NONE)
		p->nodes[*last].next = idx;
	else
		*first = idx;
	*last = idx;
	(*count)++;
	return idx;
}

static void build_view(struct imap_parser *p, int complete)
{
	const char *a = p->arena.data;

	p->pub = xgrow(p->pub, sizeof(*p->pub), p->nnodes ? p->nnodes : 1, &p->pub_alloc);
	for (size_t i = 0; i < p->nnodes; i++) {
		const struct pnode *n = &p->nodes[i];
		struct imap_node *o = &p->pub[i];

		o->type = n->type;
		o->str = a + n->off;
		o->len = n->len;
		o->size = n->size;
		o->literal8 = n->lit8;
		o->count = n->count;
		o->child = n->first != NONE ? &p->pub[n->first] : NULL;
		o->next = n->next != NONE ? &p->pub[n->next] : NULL;
		o->parent = n->parent != NONE ? &p->pub[n->parent] : NULL;
	}
	memset(&p->resp, 0, sizeof(p->resp));
	p->resp.kind = p->kind;
	p->resp.tag = a + p->tag_off;
	p->resp.has_number = p->has_number;
	p->resp.number = p->number;
	p->resp.name = a + p->name_off;
	p->resp.status = p->status;
	p->resp.code = p->code_off != NONE ? a + p->code_off : NULL;
	p->resp.code_args = a + p->code_args_off;
	p->resp.text = a + p->text_off;
	p->resp.args = p->top_first != NONE ? &p->pub[p->top_first] : NULL;
	p->resp.nargs = p->ntop;
	p->resp.complete = complete;
}

/* ---- tokenising one segment ------------------------------------------------------------------ */

static int is_atom_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != '(' && c != ')' && c != '"' && c != '{';
}

static void upcase(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

static const struct {
	const char *name;
	enum imap_status st;
} status_names[] = {
    {"OK", IMAP_STATUS_OK},   {"NO", IMAP_STATUS_NO},		{"BAD", IMAP_STATUS_BAD},
    {"BYE", IMAP_STATUS_BYE}, {"PREAUTH", IMAP_STATUS_PREAUTH},
};

/* Status response tail: [SP ["[" code [SP args] "]"] [SP] text]. s[pos..e) is the rest. */
static int parse_status_tail(struct imap_parser *p, const char *s, size_t n, size_t pos, size_t e,
			     struct fleet_err *err)
{
	if (pos < e && s[pos] == ' ')
		pos++;
	if (pos < e && s[pos] == '[') {
		size_t c0 = ++pos, c1, a0, a1;

		while (pos < e && s[pos] != ']' && s[pos] != ' ')
			pos++;
		c1 = pos;
		if (c1 == c0)
			return PARSE_ERR("empty response code");
		if (pos < e && s[pos] == ' ')
			pos++;
		a0 = pos;
		while (pos < e && s[pos] != ']')
			pos++;
		if (pos >= e)
			return PARSE_ERR("response code without \"]\"");
		a1 = pos++;
		for (size_t i = c0; i < a1; i++)
			if (s[i] == '\0')
				return PARSE_ERR("NUL byte in response code");
		if ((p->code_off = arena_add(p, s + c0, c1 - c0)) == NONE ||
		    (p->code_args_off = arena_add(p, s + a0, a1 - a0)) == NONE)
			return LIMIT_ERR("response larger than %zu bytes", p->lim.max_response);
		upcase(p->arena.data + p->code_off);
		if (pos < e && s[pos] == ' ')
			pos++;
	}
	for (size_t i = pos; i < e; i++)
		if (s[i] == '\0' || s[i] == '\r')
			return PARSE_ERR("control character in response text");
	if ((p->text_off = arena_add(p, s + pos, e - pos)) == NONE)
		return LIMIT_ERR("response larger than %zu bytes", p->lim.max_response);
	return SEG_COMPLETE;
}

/* The first segment: tag, optional number, name; status responses end here. *posp is set to where
 * data arguments start. */
static int parse_header(struct imap_parser *p, const char *s, size_t n, size_t e, size_t *posp,
			struct fleet_err *err)
{
	size_t pos = 0, t0;

	if (e == 0)
		return PARSE_ERR("empty line");
	if (s[0] == '+') {
		p->kind = IMAP_RESP_CONTINUATION;
		p->started = 1;
		return parse_status_tail(p, s, n, 1, e, err);
	}
	if (s[0] == '*') {
		p->kind = IMAP_RESP_UNTAGGED;
		pos = 1;
	} else {
		p->kind = IMAP_RESP_TAGGED;
		while (pos < e && is_atom_char((unsigned char)s[pos]) && s[pos] != '+' && s[pos] != '[' &&
		       s[pos] != ']')
			pos++;
		if (pos == 0 || (pos < e && s[pos] != ' '))
			return PARSE_ERR("invalid tag");
		if ((p->tag_off = arena_add(p, s, pos)) == NONE)
			return LIMIT_ERR("response larger than %zu bytes", p->lim.max_response);
	}
	if (pos >= e || s[pos] != ' ')
		return PARSE_ERR("missing space after tag");
	pos++;
	if (p->kind == IMAP_RESP_UNTAGGED && pos < e && s[pos] >= '0' && s[pos] <= '9') {
		uint64_t v;

		t0 = pos;
		while (pos < e && s[pos] >= '0' && s[pos] <= '9')
			pos++;
		if (fleet_parse_u64n(s + t0, pos - t0, 0, UINT32_MAX, &v) < 0)
			return PARSE_ERR("number out of range");
		if (pos >= e || s[pos] != ' ')
			return PARSE_ERR("missing response name after number");
		pos++;
		p->has_number = 1;
		p->number = (uint32_t)v;
	}
	t0 = pos;
	while (pos < e && is_atom_char((unsigned char)s[pos]) && s[pos] != '[' && s[pos] != ']')
		pos++;
	if (pos == t0)
		return PARSE_ERR("missing response name");
	if (pos < e && s[pos] != ' ')
		return PARSE_ERR("invalid response name");
	if ((p->name_off = arena_add(p, s + t0, pos - t0)) == NONE)
		return LIMIT_ERR("response larger than %zu bytes", p->lim.max_response);
	upcase(p->arena.data + p->name_off);
	p->started = 1;
	for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (strcmp(p->arena.data + p->name_off, status_names[i].name) == 0) {
			p->status = status_names[i].st;
			break;
		}
	}
	if (p->kind == IMAP_RESP_TAGGED && p->status != IMAP_STATUS_OK && p->status != IMAP_STATUS_NO &&
	    p->status != IMAP_STATUS_BAD)
		return PARSE_ERR("tagged response is not OK, NO or BAD");
	if (p->status != IMAP_STATUS_NONE) {
		if (p->has_number)
			return PARSE_ERR("status response with a number");
		return parse_status_tail(p, s, n, pos, e, err);
	}
	*posp = pos;
	return 0;
}

/* Data arguments from s[pos..e): atoms, quoted strings, NIL, lists, and a literal header that must
 * end the segment. */
static int parse_args(struct imap_parser *p, const char *s, size_t n, size_t pos, size_t e,
		      struct fleet_err *err)
{
	while (pos < e) {
		unsigned char c = (unsigned char)s[pos];
		size_t idx, off;

		if (c == ' ') {
			p->need_sep = 0;
			pos++;
			continue;
		}
		if (c == ')') {
			if (p->depth == 0)
				return PARSE_ERR("unbalanced \")\"");
			p->depth--;
			p->need_sep = 2;
			pos++;
			continue;
		}
		/* "((...)(...) "mixed")": body parts of a multipart BODYSTRUCTURE touch (RFC 3501). */
		if (p->need_sep && !(p->need_sep == 2 && c == '('))
			return PARSE_ERR("missing space between items");
		if (c == '(') {
			if (p->depth >= p->lim.max_depth)
				return LIMIT_ERR("lists nested deeper than %u", p->lim.max_depth);
			if ((idx = node_add(p, IMAP_NODE_LIST, 0, 0)) == NONE)
				return LIMIT_ERR("response larger than %zu bytes", p->lim.max_response);
			p->stack = xgrow(p->stack, sizeof(*p->stack), p->depth + 1, &p->stack_alloc);
			p->stack[p->depth++] = idx;
			p->need_sep = 0;
			pos++;
			continue;
		}
		if (c == '"') {
			size_t start = p->arena.len;

			pos++;
			for (;;) {
				size_t run = pos;

				/* A NUL is invalid IMAP, but kept (nodes carry their length, as for literals,
				 * which may hold one): the consumer decides, so that one bad LIST name fails
				 * that folder alone instead of the whole response (issue 13.5). */
				while (run < e && s[run] != '"' && s[run] != '\\' && s[run] != '\r')
					run++;
				if (run > pos && fleet_buf_append(&p->arena, s + pos, run - pos) < 0)
					return LIMIT_ERR("response larger than %zu bytes",
							 p->lim.max_response);
				pos = run;
				if (pos >= e)
					return PARSE_ERR("unterminated quoted string");
				if (s[pos] == '"')
					break;
				if (s[pos] != '\\' || pos + 1 >= e || s[pos + 1] == '\0' ||
				    s[pos + 1] == '\r')
					return PARSE_ERR("invalid character in quoted string");
				if (fleet_buf_append(&p->arena, s + pos + 1, 1) < 0)
					return LIMIT_ERR("response larger than %zu bytes",
							 p->lim.max_response);
				pos += 2;
			}
			pos++;
			if (fleet_buf_append(&p->arena, "", 1) < 0 ||
			    node_add(p, IMAP_NODE_QUOTED, start, p->arena.len - 1 - start) == NONE)
				return LIMIT_ERR("response larger than %zu bytes", p->lim.max_response);
			p->need_sep = 1;
			continue;
		}
		if (c == '{' || (c == '~' && pos + 1 < e && s[pos + 1] == '{')) {
			size_t d0, d1;
			uint64_t size;

			p->lit8 = c == '~';
			pos += p->lit8 ? 2 : 1;
			d0 = pos;
			while (pos < e && s[pos] >= '0' && s[pos] <= '9')
				pos++;
			d1 = pos;
			if (pos < e && s[pos] == '+')
				pos++;
			if (d1 == d0 || d1 - d0 > 20 || pos >= e || s[pos] != '}' || pos + 1 != e)
				return PARSE_ERR("invalid literal");
			if (fleet_parse_u64n(s + d0, d1 - d0, 0, UINT64_MAX, &size) < 0)
				return PARSE_ERR("invalid literal size");
			if (size > p->lim.max_literal)
				return LIMIT_ERR("literal of %llu bytes exceeds the limit of %llu",
						 (unsigned long long)size,
						 (unsigned long long)p->lim.max_literal);
			p->lit_size = p->lit_left = size;
			p->stream_req = 0;
			p->item_off = NONE;
			{
				size_t last = p->depth ? p->nodes[p->stack[p->depth - 1]].last : p->top_last;

				if (last != NONE && p->nodes[last].type == IMAP_NODE_ATOM)
					p->item_off = p->nodes[last].off;
			}
			return SEG_LITERAL;
		}
		/* An atom; "[...]" inside it may hold spaces and parentheses: BODY[HEADER.FIELDS (X)]<0>. */
		{
			size_t a0 = pos;
			int bracket = 0;

			while (pos < e) {
				c = (unsigned char)s[pos];
				if (c < 0x20 || c == 0x7f)
					return PARSE_ERR("control character in atom");
				if (bracket) {
					if (c == ']')
						bracket = 0;
				} else if (c == '[') {
					bracket = 1;
				} else if (!is_atom_char(c)) {
					break;
				}
				pos++;
			}
			if (bracket)
				return PARSE_ERR("unterminated \"[\" in atom");
			if (pos == a0)
				return PARSE_ERR("unexpected character");
			if (pos - a0 == 3 && fleet_strncaseeq(s + a0, "NIL", 3)) {
				if (node_add(p, IMAP_NODE_NIL, 0, 0) == NONE)
					return LIMIT_ERR("response larger than %zu bytes",
							 p->lim.max_response);
			} else if ((off = arena_add(p, s + a0, pos - a0)) == NONE ||
				   node_add(p, IMAP_NODE_ATOM, off, pos - a0) == NONE) {
				return LIMIT_ERR("response larger than %zu bytes", p->lim.max_response);
			}
			p->need_sep = 1;
		}
	}
	if (p->depth > 0)
		return PARSE_ERR("unterminated list");
	return SEG_COMPLETE;
}

static int parse_segment(struct imap_parser *p, const char *s, size_t n, struct fleet_err *err)
{
	size_t e = n - 1, pos = 0; /* s[n-1] is the LF */
	int r;

	if (e > 0 && s[e - 1] == '\r')
		e--;
	if (!p->started) {
		r = parse_header(p, s, n, e, &pos, err);
		if (r != 0)
			return r;
	}
	return parse_args(p, s, n, pos, e, err);
}

/* ---- the event loop --------------------------------------------------------------------------- */

static int literal_decide(struct imap_parser *p, struct fleet_err *err)
{
	const char *s = NULL;
	size_t n = 0;

	if (p->stream_req) {
		p->st = ST_LIT_STREAM;
		return 0;
	}
	if (p->lit_size > p->lim.max_buffered_literal)
		return LIMIT_ERR("literal of %llu bytes exceeds the buffered limit of %zu",
				 (unsigned long long)p->lit_size, p->lim.max_buffered_literal);
	if (p->arena.len + p->lit_size + 1 + p->nnodes * (sizeof(struct pnode) + sizeof(struct imap_node)) >
	    p->lim.max_response)
		return LIMIT_ERR("response larger than %zu bytes", p->lim.max_response);
	p->lit_off = p->arena.len;
	p->st = ST_LIT_BUFFER;
	return 0;
}

int imap_parser_next(struct imap_parser *p, const char *data, size_t len, size_t *consumed,
		     struct imap_parser_event *ev, struct fleet_err *err)
{
	size_t used = 0;

	memset(ev, 0, sizeof(*ev));
	*consumed = 0;
	if (p->st == ST_ERROR)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_PARSER_ERR_PARSE,
				     "IMAP parser used after an error");
	if (p->st == ST_DONE)
		response_reset(p);
	if (p->st == ST_LIT_PENDING && literal_decide(p, err) < 0)
		return -1;
	for (;;) {
		switch (p->st) {
		case ST_LINE: {
			const char *lf = memchr(data + used, '\n', len - used);
			const char *s;
			size_t n, chunk;
			int r;

			chunk = lf ? (size_t)(lf - (data + used)) + 1 : len - used;
			if (chunk == 0) {
				*consumed = used;
				return 0;
			}
			if (p->line_bytes + p->seg.len + chunk > p->lim.max_line) {
				s = data + used;
				n = chunk;
				*consumed = used;
				return LIMIT_ERR("line longer than %zu bytes", p->lim.max_line);
			}
			if (!lf || p->seg.len) {
				if (fleet_buf_append(&p->seg, data + used, chunk) < 0) {
					s = data + used;
					n = chunk;
					*consumed = used;
					return LIMIT_ERR("line longer than %zu bytes", p->lim.max_line);
				}
			}
			used += chunk;
			if (!lf) {
				*consumed = used;
				return 0;
			}
			if (p->seg.len) {
				s = p->seg.data;
				n = p->seg.len;
			} else {
				s = data + used - chunk;
				n = chunk;
			}
			p->line_bytes += n;
			r = parse_segment(p, s, n, err);
			fleet_buf_reset(&p->seg);
			*consumed = used;
			if (r < 0)
				return -1;
			if (r == SEG_COMPLETE) {
				build_view(p, 1);
				p->st = ST_DONE;
				ev->type = IMAP_PARSER_RESPONSE;
				ev->resp = &p->resp;
				return ev->type;
			}
			build_view(p, 0);
			p->st = ST_LIT_PENDING;
			p->need_sep = 0;
			ev->type = IMAP_PARSER_LITERAL_START;
			ev->resp = &p->resp;
			ev->item = p->item_off != NONE ? p->arena.data + p->item_off : "";
			ev->literal_size = p->lit_size;
			ev->literal8 = p->lit8;
			return ev->type;
		}
		case ST_LIT_BUFFER: {
			size_t chunk = len - used;
			const char *s = NULL;
			size_t n = 0;

			if (chunk > p->lit_left)
				chunk = (size_t)p->lit_left;
			if (chunk && fleet_buf_append(&p->arena, data + used, chunk) < 0) {
				*consumed = used;
				return LIMIT_ERR("response larger than %zu bytes", p->lim.max_response);
			}
			used += chunk;
			p->lit_left -= chunk;
			if (p->lit_left > 0) {
				*consumed = used;
				return 0;
			}
			if (fleet_buf_append(&p->arena, "", 1) < 0) {
				*consumed = used;
				return LIMIT_ERR("response larger than %zu bytes", p->lim.max_response);
			}
			{
				size_t idx = node_add(p, IMAP_NODE_LITERAL, p->lit_off, (size_t)p->lit_size);

				if (idx == NONE) {
					*consumed = used;
					return LIMIT_ERR("response larger than %zu bytes",
							 p->lim.max_response);
				}
				p->nodes[idx].lit8 = p->lit8;
			}
			p->need_sep = 1;
			p->st = ST_LINE;
			continue;
		}
		case ST_LIT_STREAM: {
			size_t chunk = len - used;

			ev->item = p->item_off != NONE ? p->arena.data + p->item_off : "";
			ev->literal_size = p->lit_size;
			ev->literal8 = p->lit8;
			if (p->lit_left == 0) {
				const char *s = NULL;
				size_t n = 0, idx = node_add(p, IMAP_NODE_STREAMED, 0, 0);

				*consumed = used;
				if (idx == NONE)
					return LIMIT_ERR("response larger than %zu bytes",
							 p->lim.max_response);
				p->nodes[idx].size = p->lit_size;
				p->nodes[idx].lit8 = p->lit8;
				p->need_sep = 1;
				p->st = ST_LINE;
				ev->type = IMAP_PARSER_LITERAL_END;
				return ev->type;
			}
			if (chunk == 0) {
				*consumed = used;
				return 0;
			}
			if (chunk > p->lit_left)
				chunk = (size_t)p->lit_left;
			ev->type = IMAP_PARSER_LITERAL_DATA;
			ev->data = data + used;
			ev->len = chunk;
			p->lit_left -= chunk;
			*consumed = used + chunk;
			return ev->type;
		}
		case ST_LIT_PENDING:
		case ST_DONE:
		case ST_ERROR: break;
		}
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_PARSER_ERR_PARSE,
				     "IMAP parser in a bad state");
	}
}

int imap_parser_finish(struct imap_parser *p, struct fleet_err *err)
{
	const char *s = p->seg.data;
	size_t n = p->seg.len;

	if (imap_parser_at_boundary(p))
		return 0;
	if (p->st == ST_ERROR)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, IMAP_PARSER_ERR_PARSE,
				     "IMAP parser used after an error");
	if (p->st == ST_LIT_BUFFER || p->st == ST_LIT_STREAM || p->st == ST_LIT_PENDING)
		return perr(p, err, IMAP_PARSER_ERR_PARSE, NULL, 0,
			    "input ended inside a literal (%llu of %llu bytes missing)",
			    (unsigned long long)p->lit_left, (unsigned long long)p->lit_size);
	return PARSE_ERR("input ended inside a response");
}

/* ---- reading nodes -------------------------------------------------------------------------- */

int imap_node_is_atom(const struct imap_node *n, const char *name)
{
	return n && n->type == IMAP_NODE_ATOM && fleet_strcaseeq(n->str, name);
}

int imap_node_is_string(const struct imap_node *n)
{
	return n &&
	       (n->type == IMAP_NODE_ATOM || n->type == IMAP_NODE_QUOTED || n->type == IMAP_NODE_LITERAL);
}

int imap_node_u64(const struct imap_node *n, uint64_t max, uint64_t *out)
{
	if (!n || n->type != IMAP_NODE_ATOM)
		return -1;
	return fleet_parse_u64n(n->str, n->len, 0, max, out);
}

const struct imap_node *imap_node_nth(const struct imap_node *first, size_t i)
{
	while (first && i-- > 0)
		first = first->next;
	return first;
}

const struct imap_node *imap_list_get(const struct imap_node *list, const char *name)
{
	if (!list || list->type != IMAP_NODE_LIST)
		return NULL;
	for (const struct imap_node *n = list->child; n && n->next; n = n->next->next)
		if (imap_node_is_atom(n, name))
			return n->next;
	return NULL;
}

static int render_string(struct fleet_buf *b, const struct imap_node *n)
{
	int r = fleet_buf_append(b, "\"", 1);

	for (size_t i = 0; i < n->len && r == 0; i++) {
		char c = n->str[i];

		if (c == '"' || c == '\\')
			r = fleet_buf_append(b, "\\", 1);
		if (r == 0)
			r = fleet_buf_append(b, &c, 1);
	}
	return r ? r : fleet_buf_append(b, "\"", 1);
}

int imap_response_render(const struct imap_response *r, struct fleet_buf *b, size_t max)
{
	size_t start = b->len;
	const struct imap_node *n = r->args;
	int rc = 0;

	if (r->kind == IMAP_RESP_CONTINUATION)
		rc = fleet_buf_append_str(b, "+");
	else if (r->kind == IMAP_RESP_TAGGED)
		rc = fleet_buf_appendf(b, "%s %s", r->tag, r->name);
	else if (r->has_number)
		rc = fleet_buf_appendf(b, "* %u %s", r->number, r->name);
	else
		rc = fleet_buf_appendf(b, "* %s", r->name);
	if (rc == 0 && r->code)
		rc = fleet_buf_appendf(b, " [%s%s%s]", r->code, *r->code_args ? " " : "", r->code_args);
	if (rc == 0 && *r->text)
		rc = fleet_buf_appendf(b, " %s", r->text);
	if (n && rc == 0)
		rc = fleet_buf_append(b, " ", 1);
	while (n && rc == 0 && b->len - start < max) {
		switch (n->type) {
		case IMAP_NODE_LIST:
			rc = fleet_buf_append(b, "(", 1);
			if (n->child) {
				n = n->child;
				continue;
			}
			rc = rc ? rc : fleet_buf_append(b, ")", 1);
			break;
		case IMAP_NODE_ATOM: rc = fleet_buf_append(b, n->str, n->len); break;
		case IMAP_NODE_QUOTED: rc = render_string(b, n); break;
		case IMAP_NODE_NIL: rc = fleet_buf_append_str(b, "NIL"); break;
		case IMAP_NODE_LITERAL:
		case IMAP_NODE_STREAMED:
			rc = fleet_buf_appendf(b, "%s{%llu bytes}", n->literal8 ? "~" : "",
					       (unsigned long long)n->size);
			break;
		}
		while (rc == 0 && n && !n->next) {
			n = n->parent;
			if (n)
				rc = fleet_buf_append(b, ")", 1);
		}
		if (n && rc == 0) {
			n = n->next;
			rc = fleet_buf_append(b, " ", 1);
		}
	}
	if (rc == 0 && !r->complete)
		rc = fleet_buf_append_str(b, " ...");
	if (b->len - start > max) {
		b->len = start + max;
		b->data[b->len] = '\0';
		rc = fleet_buf_append_str(b, "...");
	}
	return rc;
}

/* ---- response codes ----------------------------------------------------------------------------- */

int imap_resp_has_code(const struct imap_response *r, const char *name)
{
	return r->code && fleet_strcaseeq(r->code, name);
}

int imap_resp_code_u64(const struct imap_response *r, const char *name, uint64_t *out)
{
	if (!imap_resp_has_code(r, name))
		return -1;
	return fleet_parse_u64(r->code_args, 0, UINT64_MAX, out);
}

void imap_strlist_add(struct imap_strlist *l, const char *s, size_t len)
{
	l->v = xgrow(l->v, sizeof(*l->v), l->n + 1, &l->alloc);
	l->v[l->n++] = xstrndup(s, len);
}

void imap_strlist_release(struct imap_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		xfree(&l->v[i]);
	xfree(&l->v);
	l->n = l->alloc = 0;
}

long imap_strlist_find(const struct imap_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (fleet_strcaseeq(l->v[i], s))
			return (long)i;
	return -1;
}

void imap_code_words(const char *args, struct imap_strlist *out)
{
	const char *p = args;

	while (*p) {
		const char *w;

		while (*p == ' ' || *p == '(' || *p == ')')
			p++;
		w = p;
		while (*p && *p != ' ' && *p != '(' && *p != ')')
			p++;
		if (p > w)
			imap_strlist_add(out, w, (size_t)(p - w));
	}
}

static int parse_seqnum(const char *s, size_t len, uint32_t *out)
{
	uint64_t v;

	if (len == 1 && s[0] == '*') {
		*out = UINT32_MAX;
		return 0;
	}
	if (fleet_parse_u64n(s, len, 1, UINT32_MAX, &v) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int imap_uidset_parse(struct imap_uidset *set, const char *s, size_t len)
{
	size_t pos = 0, n0 = set->n;

	if (len == 0)
		return -1;
	while (pos <= len) {
		size_t end = pos, colon = NONE;
		uint32_t lo, hi;

		while (end < len && s[end] != ',') {
			if (s[end] == ':' && colon == NONE)
				colon = end;
			end++;
		}
		if (colon == NONE) {
			if (parse_seqnum(s + pos, end - pos, &lo) < 0)
				goto bad;
			hi = lo;
		} else if (parse_seqnum(s + pos, colon - pos, &lo) < 0 ||
			   parse_seqnum(s + colon + 1, end - colon - 1, &hi) < 0) {
			goto bad;
		}
		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		set->r = xgrow(set->r, sizeof(*set->r), set->n + 1, &set->alloc);
		set->r[set->n].lo = lo;
		set->r[set->n].hi = hi;
		set->n++;
		if (end == len)
			return 0;
		pos = end + 1;
	}
bad:
	set->n = n0;
	return -1;
}

void imap_uidset_release(struct imap_uidset *set)
{
	xfree(&set->r);
	set->n = set->alloc = 0;
}

uint64_t imap_uidset_count(const struct imap_uidset *set)
{
	uint64_t c = 0;

	for (size_t i = 0; i < set->n; i++)
		c += (uint64_t)set->r[i].hi - set->r[i].lo + 1;
	return c;
}

int imap_uidset_contains(const struct imap_uidset *set, uint32_t uid)
{
	for (size_t i = 0; i < set->n; i++)
		if (uid >= set->r[i].lo && uid <= set->r[i].hi)
			return 1;
	return 0;
}

int imap_uidset_nth(const struct imap_uidset *set, uint64_t i, uint32_t *uid)
{
	for (size_t k = 0; k < set->n; k++) {
		uint64_t span = (uint64_t)set->r[k].hi - set->r[k].lo + 1;

		if (i < span) {
			*uid = (uint32_t)(set->r[k].lo + i);
			return 0;
		}
		i -= span;
	}
	return -1;
}

/* Splits "a b c" into exactly n words; returns 0 or -1. */
static int split_words(const char *args, const char **w, size_t *wl, size_t n)
{
	const char *p = args;

	for (size_t i = 0; i < n; i++) {
		if (i > 0) {
			if (*p != ' ')
				return -1;
			p++;
		}
		w[i] = p;
		while (*p && *p != ' ')
			p++;
		wl[i] = (size_t)(p - w[i]);
		if (wl[i] == 0)
			return -1;
	}
	return *p == '\0' ? 0 : -1;
}

int imap_code_appenduid(const char *args, uint32_t *uidvalidity, struct imap_uidset *uids)
{
	const char *w[2];
	size_t wl[2];
	uint64_t v;

	if (split_words(args, w, wl, 2) < 0 || fleet_parse_u64n(w[0], wl[0], 1, UINT32_MAX, &v) < 0 ||
	    memchr(w[1], '*', wl[1]) || imap_uidset_parse(uids, w[1], wl[1]) < 0)
		return -1;
	*uidvalidity = (uint32_t)v;
	return 0;
}

int imap_code_copyuid(const char *args, uint32_t *uidvalidity, struct imap_uidset *src,
		      struct imap_uidset *dst)
{
	const char *w[3];
	size_t wl[3];
	uint64_t v;

	if (split_words(args, w, wl, 3) < 0 || fleet_parse_u64n(w[0], wl[0], 1, UINT32_MAX, &v) < 0 ||
	    imap_uidset_parse(src, w[1], wl[1]) < 0 || imap_uidset_parse(dst, w[2], wl[2]) < 0)
		return -1;
	*uidvalidity = (uint32_t)v;
	return 0;
}

/* ---- refusal -> error class ----------------------------------------------------------------- */

#define SCOPE_DEFAULT (-1)

/* RFC 5530 (all codes), RFC 4469 TOOBIG, RFC 3501 TRYCREATE, Gmail THROTTLED. */
static const struct code_rule {
	const char *code;
	enum fleet_err_class cls;
	int scope;
} code_rules[] = {
    {IMAP_CODE_UNAVAILABLE, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT},
    {"LIMIT", FLEET_ERR_THROTTLED, FLEET_SCOPE_ACCOUNT},
    {"INUSE", FLEET_ERR_TRANSIENT, SCOPE_DEFAULT},
    {IMAP_CODE_THROTTLED, FLEET_ERR_THROTTLED, FLEET_SCOPE_ACCOUNT},
    {"AUTHENTICATIONFAILED", FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT},
    {"AUTHORIZATIONFAILED", FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT},
    {"EXPIRED", FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT},
    {"CONTACTADMIN", FLEET_ERR_AUTH, FLEET_SCOPE_ACCOUNT},
    {"PRIVACYREQUIRED", FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT},
    {"NOPERM", FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER},
    {"EXPUNGEISSUED", FLEET_ERR_TRANSIENT, FLEET_SCOPE_FOLDER},
    {"CORRUPTION", FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER},
    {"SERVERBUG", FLEET_ERR_BUG, FLEET_SCOPE_MESSAGE},
    {IMAP_CODE_CLIENTBUG, FLEET_ERR_BUG, SCOPE_DEFAULT},
    {"CANNOT", FLEET_ERR_PERMANENT, SCOPE_DEFAULT},
    {IMAP_CODE_OVERQUOTA, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT},
    {IMAP_CODE_ALREADYEXISTS, FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER},
    {"NONEXISTENT", FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER},
    {"TRYCREATE", FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER},
    {"TOOBIG", FLEET_ERR_PERMANENT, FLEET_SCOPE_MESSAGE},
    {"BADCHARSET", FLEET_ERR_PERMANENT, SCOPE_DEFAULT},
};

/* Servers that say "slow down" in words only. backoff: the text is followed by a number of ms.
 * daily: the account used up what the provider allows it per day (code DAILY_LIMIT, whatever
 * response code came with it: Gmail sends it as [OVERQUOTA], which otherwise means a full mailbox);
 * the scheduler parks such an account until its day is over. */
static const struct text_rule {
	const char *text;
	enum fleet_err_class cls;
	int backoff, daily, overquota;
} text_rules[] = {
    {"Suggested Backoff Time:", FLEET_ERR_THROTTLED, 1, 0, 0},		 /* Office 365 */
    {"Request is throttled", FLEET_ERR_THROTTLED, 0, 0, 0},		 /* Office 365 */
    {"Too many simultaneous connections", FLEET_ERR_THROTTLED, 0, 0, 0},	 /* Gmail */
    {"exceeded command or bandwidth limits", FLEET_ERR_THROTTLED, 0, 1, 0}, /* Gmail, per day */
    {"bandwidth limit", FLEET_ERR_THROTTLED, 0, 1, 0},			 /* Gmail, per day */
    {"User is authenticated but not connected", FLEET_ERR_THROTTLED, 0, 0, 0}, /* Office 365 */
    {"Server Unavailable", FLEET_ERR_THROTTLED, 0, 0, 0},			 /* Exchange, "... 15", "... 21" */
    /* A full destination that says so in words only, without [OVERQUOTA] (after the daily limits
     * above: Gmail's per-day answer also says "exceeded"). Code OVERQUOTA, permanent, account. */
    {"Over quota", FLEET_ERR_PERMANENT, 0, 0, 1},		      /* Cyrus: "NO Over quota" */
    {"Quota exceeded", FLEET_ERR_PERMANENT, 0, 0, 1},		      /* Dovecot (older), "Mailbox quota exceeded" */
    {"exceeded your mail quota", FLEET_ERR_PERMANENT, 0, 0, 1},      /* Courier: "NO [ALERT] You ..." */
    {"mailbox is full", FLEET_ERR_PERMANENT, 0, 0, 1},		      /* Exchange, Dovecot's default text */
    {"mailbox full", FLEET_ERR_PERMANENT, 0, 0, 1},		      /* Exchange, hMailServer */
    {"exceeds quota", FLEET_ERR_PERMANENT, 0, 0, 1},		      /* "Message exceeds quota" */
};

static const char *strcasestr_ascii(const char *hay, const char *needle)
{
	size_t nl = strlen(needle);

	for (; *hay; hay++)
		if (fleet_strncaseeq(hay, needle, nl))
			return hay;
	return NULL;
}

const char *imap_status_name(enum imap_status st)
{
	static const char *const names[] = {
	    [IMAP_STATUS_OK] = "OK",	       [IMAP_STATUS_NO] = "NO",	  [IMAP_STATUS_BAD] = "BAD",
	    [IMAP_STATUS_PREAUTH] = "PREAUTH", [IMAP_STATUS_BYE] = "BYE",
	};

	return FLEET_ENUM_NAME(names, st, "?");
}

int imap_status_to_err(enum imap_status status, const char *code, const char *text,
		       enum fleet_err_scope default_scope, struct fleet_err *err)
{
	enum fleet_err_class cls;
	enum fleet_err_scope scope = default_scope;
	const struct code_rule *rule = NULL;
	unsigned retry_ms = 0;
	const char *ecode;

	text = text ? text : "";
	if (code)
		for (size_t i = 0; i < sizeof(code_rules) / sizeof(code_rules[0]); i++)
			if (fleet_strcaseeq(code, code_rules[i].code))
				rule = &code_rules[i];
	if (rule) {
		cls = rule->cls;
		if (rule->scope != SCOPE_DEFAULT)
			scope = (enum fleet_err_scope)rule->scope;
	} else if (status == IMAP_STATUS_BYE) {
		cls = FLEET_ERR_TRANSIENT;
		scope = FLEET_SCOPE_ACCOUNT;
	} else if (status == IMAP_STATUS_BAD) {
		cls = FLEET_ERR_BUG;
	} else {
		cls = FLEET_ERR_PERMANENT;
	}
	ecode = code ? code : imap_status_name(status);
	for (size_t i = 0; i < sizeof(text_rules) / sizeof(text_rules[0]); i++) {
		const char *hit;
		uint64_t v;

		if (rule && cls != FLEET_ERR_TRANSIENT && cls != FLEET_ERR_THROTTLED && !text_rules[i].daily)
			continue;
		if (!(hit = strcasestr_ascii(text, text_rules[i].text)))
			continue;
		cls = text_rules[i].cls;
		scope = FLEET_SCOPE_ACCOUNT;
		if (text_rules[i].daily)
			ecode = IMAP_CODE_DAILY_LIMIT;
		else if (text_rules[i].overquota)
			ecode = IMAP_CODE_OVERQUOTA;
		else if (!rule)
			ecode = cls == FLEET_ERR_THROTTLED ? IMAP_CODE_THROTTLED : IMAP_CODE_UNAVAILABLE;
		if (text_rules[i].backoff) {
			const char *d = hit + strlen(text_rules[i].text), *d1;

			while (*d == ' ')
				d++;
			for (d1 = d; *d1 >= '0' && *d1 <= '9'; d1++)
				;
			if (d1 > d && fleet_parse_u64n(d, (size_t)(d1 - d), 0, UINT32_MAX, &v) == 0)
				retry_ms = (unsigned)v;
		}
		break;
	}
	fleet_err_set(err, cls, scope, ecode, "server answered %s%s%s%s%s%s", imap_status_name(status),
		      code ? " [" : "", code ? code : "", code ? "]" : "", *text ? " " : "", text);
	if (err)
		err->retry_after_ms = retry_ms;
	return -1;
}

int imap_response_to_err(const struct imap_response *r, enum fleet_err_scope default_scope,
			 struct fleet_err *err)
{
	return imap_status_to_err(r->status, r->code, r->text, default_scope, err);
}

int imap_uidset_format(struct fleet_buf *b, const uint32_t *uids, size_t n, size_t max)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i, before = b->len;
		char item[24];

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (j == i)
			snprintf(item, sizeof(item), "%s%u", b->len ? "," : "", uids[i]);
		else
			snprintf(item, sizeof(item), "%s%u:%u", b->len ? "," : "", uids[i], uids[j]);
		if ((max && before + strlen(item) > max) || fleet_buf_append_str(b, item) < 0)
			return 0;
		i = j;
	}
	return 1;
}

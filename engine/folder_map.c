#include "engine/folder_map.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"

/* A word that means a role: a SPECIAL-USE attribute, or a folder name. */
struct role_word {
	const char *word;
	enum folder_role role;
};

static const struct role_word role_attrs[] = {
	{"\\Sent", ROLE_SENT},	     {"\\Drafts", ROLE_DRAFTS},   {"\\Trash", ROLE_TRASH},
	{"\\Junk", ROLE_JUNK},	     {"\\Archive", ROLE_ARCHIVE}, {"\\All", ROLE_ALL},
	{"\\Flagged", ROLE_FLAGGED}, {"\\Important", ROLE_IMPORTANT},
};

/* Names that mean a role on servers without SPECIAL-USE (last path component, any case). */
static const struct role_word role_names[] = {
	{"Sent", ROLE_SENT},		   {"Sent Items", ROLE_SENT},	      {"Sent Messages", ROLE_SENT},
	{"Sent Mail", ROLE_SENT},	   {"Gesendet", ROLE_SENT},	      {"Gesendete Objekte", ROLE_SENT},
	{"Envoy\xc3\xa9s", ROLE_SENT},	   {"Drafts", ROLE_DRAFTS},	      {"Entw\xc3\xbcrfe", ROLE_DRAFTS},
	{"Brouillons", ROLE_DRAFTS},	   {"Trash", ROLE_TRASH},	      {"Deleted Items", ROLE_TRASH},
	{"Deleted Messages", ROLE_TRASH}, {"Papierkorb", ROLE_TRASH},      {"Corbeille", ROLE_TRASH},
	{"Junk", ROLE_JUNK},		   {"Spam", ROLE_JUNK},		      {"Junk E-mail", ROLE_JUNK},
	{"Junk Email", ROLE_JUNK},	   {"Archive", ROLE_ARCHIVE},	      {"Archives", ROLE_ARCHIVE},
};

#define NWORDS(t) (sizeof(t) / sizeof((t)[0]))

/* The index of word (any case) in t[0..n), or n. */
static size_t role_index(const struct role_word *t, size_t n, const char *word)
{
	size_t i = 0;

	while (i < n && !fleet_strcaseeq(word, t[i].word))
		i++;
	return i;
}

enum folder_role folder_role_from_attr(const char *attr)
{
	size_t i = role_index(role_attrs, NWORDS(role_attrs), attr);

	return i < NWORDS(role_attrs) ? role_attrs[i].role : ROLE_NONE;
}

enum folder_role folder_role_from_name(const char *name)
{
	size_t i = role_index(role_names, NWORDS(role_names), name);

	return i < NWORDS(role_names) ? role_names[i].role : ROLE_NONE;
}

const char *folder_role_name(enum folder_role role)
{
	static const char *const names[] = {"",	 "inbox", "sent", "drafts", "trash",
					    "junk", "archive", "all", "flagged", "important"};

	return FLEET_ENUM_NAME(names, role, "");
}

static int is_inbox(const char *name)
{
	return fleet_strcaseeq(name, "INBOX");
}

char *folder_map_translate(const char *src_name, const struct fm_namespace *src, const struct fm_namespace *dst,
			   char **note)
{
	struct fleet_buf out = FLEET_BUF_INIT(FM_NAME_MAX);
	const char *rest = src_name;
	size_t plen = src->prefix ? strlen(src->prefix) : 0;
	int renamed = 0;

	if (note)
		*note = NULL;
	if (is_inbox(src_name))
		return xstrdup("INBOX");
	/* Strip the source's personal prefix ("INBOX." on Courier), unless that leaves nothing. */
	if (plen && strncmp(src_name, src->prefix, plen) == 0 && src_name[plen])
		rest = src_name + plen;
	else if (plen && src->delim && fleet_strncaseeq(src_name, src->prefix, plen) && src_name[plen])
		rest = src_name + plen; /* "inbox.Sent" on a case-insensitive INBOX */

	if (dst->prefix && *dst->prefix)
		fleet_buf_add_str(&out, dst->prefix);
	for (const char *p = rest; *p; p++) {
		char c = *p;

		if (src->delim && c == src->delim) {
			c = dst->delim ? dst->delim : src->delim;
		} else if (dst->delim && c == dst->delim && dst->delim != src->delim) {
			c = '_'; /* would otherwise create a hierarchy level that does not exist */
			renamed = 1;
		}
		fleet_buf_add(&out, &c, 1);
	}
	if (renamed && note)
		*note = xasprintf("'%c' in the name is the destination's separator, replaced by '_'", dst->delim);
	if (fleet_buf_truncated(&out))
		log_warn("folder %.100s...: the destination name is longer than %d bytes, cut", src_name, FM_NAME_MAX);
	return fleet_buf_detach(&out, NULL);
}

/* ---- rename rules ---------------------------------------------------------------------------------- */

struct folder_map_rule {
	regex_t re;
	char *repl;  /* as written, escapes resolved at apply time */
	int global;
};

static int rule_error(struct fleet_err *err, const char *text, const char *why)
{
	return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, FLEET_ERR_CODE_USAGE,
			     "--regextrans2 '%s': %s (the form is 's/REGEX/REPLACEMENT/[gi]', POSIX extended "
			     "regular expressions)",
			     text, why);
}

/* Copies one part of s/../../ up to the unescaped delimiter; "\<delim>" becomes the delimiter.
 * Returns the position after the delimiter, or NULL when it is missing. */
static const char *rule_part(const char *p, char delim, struct fleet_buf *out)
{
	for (; *p; p++) {
		if (*p == '\\' && p[1] == delim) {
			fleet_buf_add(out, &delim, 1);
			p++;
			continue;
		}
		if (*p == '\\' && p[1]) {
			fleet_buf_add(out, p, 2);
			p++;
			continue;
		}
		if (*p == delim)
			return p + 1;
		fleet_buf_add(out, p, 1);
	}
	return NULL;
}

int folder_map_rule_compile(const char *text, struct folder_map_rule **out, struct fleet_err *err)
{
	struct fleet_buf pat = FLEET_BUF_INIT(FM_NAME_MAX), repl = FLEET_BUF_INIT(FM_NAME_MAX);
	struct folder_map_rule *r;
	const char *p;
	char delim;
	int cflags = REG_EXTENDED, global = 0, maxref = 0;

	*out = NULL;
	if (!text || text[0] != 's' || !text[1] || isalnum((unsigned char)text[1]) || text[1] == '\\' ||
	    isspace((unsigned char)text[1]))
		return rule_error(err, text ? text : "", "it does not begin with s and a delimiter");
	delim = text[1];
	p = rule_part(text + 2, delim, &pat);
	if (p)
		p = rule_part(p, delim, &repl);
	if (!p || fleet_buf_truncated(&pat) || fleet_buf_truncated(&repl)) {
		fleet_buf_release(&pat);
		fleet_buf_release(&repl);
		return rule_error(err, text, p ? "it is too long" : "the closing delimiter is missing");
	}
	for (; *p; p++) {
		const char *why = NULL;

		if (*p == 'g')
			global = 1;
		else if (*p == 'i')
			cflags |= REG_ICASE;
		else if (*p == 'e')
			why = "the e flag (code evaluation) is not supported";
		else
			why = "unknown flag after the last delimiter (only g and i)";
		if (why) {
			fleet_buf_release(&pat);
			fleet_buf_release(&repl);
			return rule_error(err, text, why);
		}
	}
	/* Perl's \d is not POSIX; glibc would read it as a plain 'd' and the rule would quietly never match. */
	for (const char *q = fleet_buf_cstr(&pat); *q; q++) {
		if (*q == '\\' && (q[1] == 'd' || q[1] == 'D')) {
			fleet_buf_release(&pat);
			fleet_buf_release(&repl);
			return rule_error(err, text, "\\d is Perl, not POSIX: write [0-9]");
		}
		if (*q == '\\' && q[1])
			q++;
	}
	for (const char *q = fleet_buf_cstr(&repl); *q; q++) {
		if ((*q == '\\' || *q == '$') && q[1] >= '0' && q[1] <= '9' && q[1] - '0' > maxref)
			maxref = q[1] - '0';
		if (*q == '\\' && q[1])
			q++;
	}
	r = xcalloc(1, sizeof(*r));
	if (regcomp(&r->re, fleet_buf_cstr(&pat), cflags) != 0) {
		xfree(&r);
		fleet_buf_release(&pat);
		fleet_buf_release(&repl);
		return rule_error(err, text, "the regular expression does not compile");
	}
	fleet_buf_release(&pat);
	if ((size_t)maxref > r->re.re_nsub) {
		regfree(&r->re);
		xfree(&r);
		fleet_buf_release(&repl);
		return rule_error(err, text, "the replacement refers to a group the expression does not have");
	}
	r->repl = fleet_buf_detach(&repl, NULL);
	if (!r->repl)
		r->repl = xstrdup("");
	r->global = global;
	*out = r;
	return 0;
}

/* Appends the replacement with \N / $N / ${N} expanded from the match m of subject s. */
static void rule_expand(const struct folder_map_rule *r, const char *s, const regmatch_t *m, struct fleet_buf *out)
{
	for (const char *q = r->repl; *q; q++) {
		int n = -1;

		if (*q == '\\' && q[1] >= '0' && q[1] <= '9') {
			n = *++q - '0';
		} else if (*q == '$' && q[1] >= '1' && q[1] <= '9') {
			n = *++q - '0';
		} else if (*q == '$' && q[1] == '{' && q[2] >= '1' && q[2] <= '9' && q[3] == '}') {
			n = q[2] - '0';
			q += 3;
		} else if (*q == '\\' && q[1]) {
			fleet_buf_add(out, ++q, 1); /* \\ \$ and any other escaped character: itself */
			continue;
		} else {
			fleet_buf_add(out, q, 1);
			continue;
		}
		if (m[n].rm_so >= 0)
			fleet_buf_add(out, s + m[n].rm_so, (size_t)(m[n].rm_eo - m[n].rm_so));
	}
}

char *folder_map_rule_apply(const struct folder_map_rule *r, const char *name)
{
	struct fleet_buf out = FLEET_BUF_INIT(FM_NAME_MAX);
	size_t len = strlen(name), pos = 0;

	while (pos <= len) {
		regmatch_t m[10];

		if (regexec(&r->re, name + pos, 10, m, pos ? REG_NOTBOL : 0) != 0)
			break;
		/* offsets relative to name + pos */
		fleet_buf_add(&out, name + pos, (size_t)m[0].rm_so);
		rule_expand(r, name + pos, m, &out);
		if (m[0].rm_eo == m[0].rm_so) { /* an empty match: step over one character */
			if (pos + (size_t)m[0].rm_eo < len)
				fleet_buf_add(&out, name + pos + m[0].rm_eo, 1);
			pos += (size_t)m[0].rm_eo + 1;
		} else {
			pos += (size_t)m[0].rm_eo;
		}
		if (!r->global)
			break;
	}
	if (pos < len)
		fleet_buf_add_str(&out, name + pos);
	if (fleet_buf_truncated(&out))
		log_warn("folder %.100s...: a --regextrans2 rule makes the name longer than %d bytes, cut", name,
			 FM_NAME_MAX);
	{
		char *res = fleet_buf_detach(&out, NULL);

		return res ? res : xstrdup("");
	}
}

void folder_map_rule_free(struct folder_map_rule **r)
{
	if (!*r)
		return;
	regfree(&(*r)->re);
	xfree(&(*r)->repl);
	xfree(r);
}

int folder_map_f1f2_check(const char *text, struct fleet_err *err)
{
	const char *eq = text ? strchr(text, '=') : NULL;

	if (!eq || eq == text || !eq[1])
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, FLEET_ERR_CODE_USAGE,
				     "--f1f2 '%s': the form is SRC=DST (source folder as the source lists it, "
				     "destination folder as the destination will name it)",
				     text ? text : "");
	return 0;
}

static int compile_all(const char *const *pats, size_t n, regex_t **out, struct fleet_err *err)
{
	*out = n ? xcalloc(n, sizeof(regex_t)) : NULL;
	for (size_t i = 0; i < n; i++) {
		if (regcomp(&(*out)[i], pats[i], REG_EXTENDED | REG_NOSUB) != 0) {
			for (size_t j = 0; j < i; j++)
				regfree(&(*out)[j]);
			xfree(out);
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, FOLDER_MAP_ERR_BAD_REGEX,
					     "invalid regular expression '%s' in --include/--exclude", pats[i]);
		}
	}
	return 0;
}

static int matches_any(regex_t *res, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (regexec(&res[i], s, 0, NULL, 0) == 0)
			return 1;
	return 0;
}

static void add_skip(struct fm_plan *plan, size_t *alloc, const char *name, const char *why)
{
	plan->skipped = xgrow(plan->skipped, sizeof(*plan->skipped), plan->nskipped + 1, alloc);
	plan->skipped[plan->nskipped++] = xasprintf("%s: %s", name, why);
}


static const struct fm_folder *dst_with_role(const struct fm_folder *dst, size_t ndst, enum folder_role role)
{
	for (size_t i = 0; i < ndst; i++)
		if (dst[i].role == role && !dst[i].noselect)
			return &dst[i];
	return NULL;
}

/* Names equal on the destination: exactly, or without case (ASCII letters) on a destination
 * that ignores case. INBOX is INBOX in any case everywhere. */
static int same_name(const char *a, const char *b, int casefold)
{
	if (is_inbox(a) || is_inbox(b))
		return is_inbox(a) && is_inbox(b);
	return casefold ? fleet_strcaseeq(a, b) : strcmp(a, b) == 0;
}

/* The destination folder of that name; on a case-insensitive destination the exact spelling is
 * preferred, another spelling taken when it is the only one. */
static const struct fm_folder *dst_find(const struct fm_folder *dst, size_t ndst, const char *name, int casefold)
{
	const struct fm_folder *loose = NULL;

	for (size_t i = 0; i < ndst; i++) {
		if (strcmp(dst[i].name, name) == 0 || (is_inbox(name) && is_inbox(dst[i].name)))
			return &dst[i];
		if (!loose && casefold && same_name(dst[i].name, name, 1))
			loose = &dst[i];
	}
	return loose;
}

/* Parents before children: a name sorts after every proper prefix of it. Depth first, then name.
 * qsort_r, not a global, because many engine threads plan at once. */
static int depth_of(const char *s, char delim)
{
	int d = 0;

	for (; *s; s++)
		d += (*s == delim);
	return d;
}

static int entry_cmp(const void *a, const void *b, void *arg)
{
	const struct fm_entry *x = a, *y = b;
	char delim = *(const char *)arg;
	int dx = depth_of(x->dst_name, delim), dy = depth_of(y->dst_name, delim);

	if (is_inbox(x->dst_name) != is_inbox(y->dst_name))
		return is_inbox(x->dst_name) ? -1 : 1;
	if (dx != dy)
		return dx - dy;
	return strcmp(x->dst_name, y->dst_name);
}

struct plan_ctx {
	const struct fm_filter *filter;
	const struct fm_namespace *src_ns, *dst_ns;
	struct folder_map_rule **rules; /* filter->regextrans2, compiled */
};

static void note_add(char **note, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_add(char **note, const char *fmt, ...)
{
	struct fleet_buf b = FLEET_BUF_INIT(FM_NOTE_MAX);
	va_list ap;

	if (*note) {
		fleet_buf_add_str(&b, *note);
		fleet_buf_add_str(&b, "; ");
	}
	va_start(ap, fmt);
	fleet_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	(void)fleet_buf_mark_cut(&b);
	xfree(note);
	*note = fleet_buf_detach(&b, NULL);
}

/* The --f1f2 destination of a source folder, or NULL. */
static const char *f1f2_target(const struct fm_filter *filter, const char *src_name)
{
	for (size_t i = 0; i < filter->nf1f2; i++) {
		const char *eq = strchr(filter->f1f2[i], '=');
		size_t n = eq ? (size_t)(eq - filter->f1f2[i]) : 0;

		if (!eq)
			continue;
		if ((strlen(src_name) == n && strncmp(filter->f1f2[i], src_name, n) == 0) ||
		    (is_inbox(src_name) && n == 5 && fleet_strncaseeq(filter->f1f2[i], "INBOX", 5)))
			return eq + 1;
	}
	return NULL;
}

/* Plain translation, then --regextrans2 in order, then --subfolder2. *changed: a rule renamed it. */
static char *ruled_name(const struct plan_ctx *c, const char *src_name, char **note, int *changed)
{
	const struct fm_filter *filter = c->filter;
	char *name = folder_map_translate(src_name, c->src_ns, c->dst_ns, note);

	*changed = 0;
	for (size_t i = 0; i < filter->nregextrans2; i++) {
		char *t = folder_map_rule_apply(c->rules[i], name);

		if (strcmp(t, name) != 0) {
			*changed = 1;
			note_add(note, "renamed by --regextrans2 '%s'", filter->regextrans2[i]);
		}
		xfree(&name);
		name = t;
	}
	if (filter->subfolder2 && *filter->subfolder2) {
		const char *pfx = c->dst_ns->prefix ? c->dst_ns->prefix : "";
		size_t plen = strlen(pfx);
		const char *rest = (plen && strncmp(name, pfx, plen) == 0 && name[plen]) ? name + plen : name;
		char d = c->dst_ns->delim ? c->dst_ns->delim : '/';
		char *t = is_inbox(name) ? xasprintf("%s%s", pfx, filter->subfolder2)
					 : xasprintf("%s%s%c%s", pfx, filter->subfolder2, d, rest);

		xfree(&name);
		name = t;
		*changed = 1;
		note_add(note, "under --subfolder2 '%s'", filter->subfolder2);
	}
	return name;
}

/* 1 when a source folder other than src[self] lands on `name` by its plain (ruled) name: such a
 * folder has the better claim to that destination folder than a role guessed from a name. */
static int natural_target_of_another(const struct plan_ctx *c, const struct fm_folder *src, size_t nsrc, size_t self,
				     const char *name)
{
	for (size_t i = 0; i < nsrc; i++) {
		char *t, *note = NULL;
		int same, changed;

		if (i == self || src[i].noselect)
			continue;
		t = ruled_name(c, src[i].name, &note, &changed);
		same = same_name(t, name, c->filter->casefold);
		xfree(&t);
		xfree(&note);
		if (same)
			return 1;
	}
	return 0;
}

/* How src[i] claims a SPECIAL-USE role, and sets *role: 0 no claim; 1 it has the attribute; 2 + k a
 * top-level folder whose last name part is role_names[k] ("Sent Items" is the sent folder,
 * "Projects/Sent Items" is not), when no source folder has that role by attribute. */
static unsigned role_claim(const struct plan_ctx *c, const struct fm_folder *src, size_t nsrc, size_t i,
			   enum folder_role *role)
{
	const struct fm_folder *f = &src[i];
	const char *last, *base;
	const char *pfx = c->dst_ns->prefix ? c->dst_ns->prefix : "";
	char *plain, *note = NULL;
	int changed, top;
	size_t k;

	if (f->noselect)
		return 0;
	if (f->role != ROLE_NONE) {
		*role = f->role;
		return *role > ROLE_INBOX ? 1 : 0;
	}
	*role = ROLE_NONE;
	last = f->delim ? strrchr(f->name, f->delim) : NULL;
	base = last ? last + 1 : f->name;
	k = role_index(role_names, NWORDS(role_names), base);
	if (k == NWORDS(role_names))
		return 0;
	plain = ruled_name(c, f->name, &note, &changed);
	top = strchr(plain + (strncmp(plain, pfx, strlen(pfx)) == 0 ? strlen(pfx) : 0),
		     c->dst_ns->delim ? c->dst_ns->delim : '\x01') == NULL;
	xfree(&plain);
	xfree(&note);
	if (!top)
		return 0;
	for (size_t j = 0; j < nsrc; j++)
		if (src[j].role == role_names[k].role)
			return 0;
	*role = role_names[k].role;
	return 2 + (unsigned)k;
}

/* 1 when src[self], claiming `role` with `rank`, is the one source folder that gets it: no other
 * folder claims it with a lower rank, or with the same rank and a name first in byte order. */
static int role_owner(const struct plan_ctx *c, const struct fm_folder *src, size_t nsrc, size_t self,
		      enum folder_role role, unsigned rank)
{
	for (size_t j = 0; j < nsrc; j++) {
		enum folder_role r;
		unsigned rk;

		if (j == self)
			continue;
		rk = role_claim(c, src, nsrc, j, &r);
		if (rk && r == role && (rk < rank || (rk == rank && strcmp(src[j].name, src[self].name) < 0)))
			return 0;
	}
	return 1;
}

static int src_order_cmp(const void *a, const void *b, void *arg)
{
	const struct fm_entry *v = arg;
	const struct fm_entry *x = &v[*(const size_t *)a], *y = &v[*(const size_t *)b];

	if (is_inbox(x->src_name) != is_inbox(y->src_name))
		return is_inbox(x->src_name) ? -1 : 1;
	if (x->by_rule != y->by_rule)
		return x->by_rule - y->by_rule;
	return strcmp(x->src_name, y->src_name);
}

/* Replaces the leading `old` of every destination name below it (old + delim) by `new_name`. */
static void move_children(struct fm_plan *plan, const char *old, const char *new_name, char delim)
{
	size_t ol = strlen(old);

	for (size_t i = 0; i < plan->n; i++) {
		char *dn = plan->entries[i].dst_name;

		if (strncmp(dn, old, ol) == 0 && dn[ol] == delim) {
			plan->entries[i].dst_name = xasprintf("%s%s", new_name, dn + ol);
			xfree(&dn);
		}
	}
}

/* Never two source folders in one destination folder: the first in source order keeps the name,
 * the later ones get " (2)", " (3)" ... (their subfolders move with them). */
static void resolve_collisions(struct fm_plan *plan, int casefold, char delim)
{
	size_t *ord;

	if (plan->n < 2)
		return;
	ord = xcalloc(plan->n, sizeof(*ord));
	for (size_t i = 0; i < plan->n; i++)
		ord[i] = i;
	qsort_r(ord, plan->n, sizeof(*ord), src_order_cmp, plan->entries);
	for (size_t k = 0; k < plan->n; k++) {
		struct fm_entry *e = &plan->entries[ord[k]];
		const struct fm_entry *other = NULL;
		char *cand = NULL;

		if (e->noselect)
			continue;
		for (size_t m = 0; m < k && !other; m++) {
			const struct fm_entry *o = &plan->entries[ord[m]];

			if (!o->noselect && same_name(o->dst_name, e->dst_name, casefold))
				other = o;
		}
		if (!other)
			continue;
		for (int sfx = 2;; sfx++) {
			int taken = 0;

			xfree(&cand);
			cand = xasprintf("%s (%d)", e->dst_name, sfx);
			for (size_t m = 0; m < plan->n && !taken; m++)
				taken = same_name(plan->entries[m].dst_name, cand, casefold);
			if (!taken)
				break;
		}
		if (is_inbox(other->dst_name))
			note_add(&e->note,
				 "'%s' would be the destination's INBOX (INBOX is one folder in any case), and folders "
				 "are never merged: renamed to '%s'",
				 e->dst_name, cand);
		else if (strcmp(other->dst_name, e->dst_name) == 0)
			note_add(&e->note, "'%s' goes to '%s' as well, and folders are never merged: renamed to '%s'",
				 other->src_name, e->dst_name, cand);
		else
			note_add(&e->note,
				 "'%s' differs only in case from '%s', which the destination does not tell apart "
				 "(--casefold2): renamed to '%s'",
				 e->dst_name, other->dst_name, cand);
		move_children(plan, e->dst_name, cand, delim);
		xfree(&e->dst_name);
		e->dst_name = cand;
		e->collision = 1;
	}
	xfree(&ord);
}

static struct fm_entry *plan_find(struct fm_plan *plan, const char *name, int casefold)
{
	for (size_t i = 0; i < plan->n; i++)
		if (same_name(plan->entries[i].dst_name, name, casefold))
			return &plan->entries[i];
	return NULL;
}

static struct fm_entry *plan_add(struct fm_plan *plan, size_t *alloc)
{
	struct fm_entry *e;

	e = xpush(&plan->entries, &plan->n, alloc);
	return e;
}

/* Every parent level of a destination name exists or is created first (Exchange does not create
 * parents by itself). The personal prefix ("INBOX.") is not a level of its own here. */
static void add_parents(struct fm_plan *plan, size_t *alloc, const struct fm_namespace *dst_ns, const struct fm_folder *dst,
			size_t ndst, int casefold)
{
	const char *pfx = dst_ns->prefix ? dst_ns->prefix : "";
	size_t plen = strlen(pfx), n = plan->n;

	if (!dst_ns->delim)
		return;
	for (size_t i = 0; i < n; i++) {
		char *name = xstrdup(plan->entries[i].dst_name);
		size_t start = (plen && strncmp(name, pfx, plen) == 0) ? plen : 0;

		for (char *p = name + start; *p; p++) {
			struct fm_entry *pe;

			if (*p != dst_ns->delim || p == name + start)
				continue;
			*p = '\0';
			if (!is_inbox(name) && !dst_find(dst, ndst, name, casefold)) {
				pe = plan_find(plan, name, casefold);
				if (!pe) {
					pe = plan_add(plan, alloc);
					pe->src_name = xstrdup("");
					pe->dst_name = xstrdup(name);
					pe->noselect = 1;
					pe->note = xasprintf("parent level of '%s', created first", plan->entries[i].dst_name);
				}
				if (pe->noselect)
					pe->create_parent = 1;
			}
			*p = dst_ns->delim;
		}
		xfree(&name);
	}
}

int folder_map_plan(const struct fm_folder *src, size_t nsrc, const struct fm_namespace *src_ns,
		    const struct fm_folder *dst, size_t ndst, const struct fm_namespace *dst_ns,
		    const struct fm_filter *filter, struct fm_plan *plan, struct fleet_err *err)
{
	regex_t *inc = NULL, *exc = NULL;
	size_t alloc = 0, skip_alloc = 0;
	struct plan_ctx c;
	char delim = dst_ns->delim ? dst_ns->delim : '/';
	int cf = filter->casefold, rc = -1;

	memset(plan, 0, sizeof(*plan));
	c.filter = filter;
	c.src_ns = src_ns;
	c.dst_ns = dst_ns;
	c.rules = xcalloc(filter->nregextrans2 ? filter->nregextrans2 : 1, sizeof(*c.rules));
	for (size_t i = 0; i < filter->nregextrans2; i++)
		if (folder_map_rule_compile(filter->regextrans2[i], &c.rules[i], err) < 0)
			goto out;
	for (size_t i = 0; i < filter->nf1f2; i++)
		if (folder_map_f1f2_check(filter->f1f2[i], err) < 0)
			goto out;
	if (compile_all(filter->include, filter->ninclude, &inc, err) < 0)
		goto out;
	if (compile_all(filter->exclude, filter->nexclude, &exc, err) < 0) {
		for (size_t i = 0; i < filter->ninclude; i++)
			regfree(&inc[i]);
		xfree(&inc);
		goto out;
	}

	for (size_t i = 0; i < nsrc; i++) {
		const struct fm_folder *f = &src[i];
		enum folder_role role = f->role;
		struct fm_entry *e;
		char *note = NULL;
		char *dname = NULL;
		const char *f1;
		int by_rule = 0;

		if (filter->nfolders) {
			int wanted = 0;

			for (size_t j = 0; j < filter->nfolders; j++)
				wanted |= strcmp(filter->folders[j], f->name) == 0 ||
					  (is_inbox(f->name) && is_inbox(filter->folders[j]));
			if (!wanted)
				continue; /* not asked for: not a skip worth reporting */
		}
		if (filter->ninclude && !matches_any(inc, filter->ninclude, f->name)) {
			add_skip(plan, &skip_alloc, f->name, "not matched by --include");
			continue;
		}
		if (matches_any(exc, filter->nexclude, f->name)) {
			add_skip(plan, &skip_alloc, f->name, "matched by --exclude");
			continue;
		}
		if (is_inbox(f->name))
			role = ROLE_INBOX;
		if (filter->skip_virtual && (role == ROLE_ALL || role == ROLE_FLAGGED || role == ROLE_IMPORTANT)) {
			add_skip(plan, &skip_alloc, f->name, "virtual folder (a view of mail kept in other folders)");
			continue;
		}

		f1 = f1f2_target(filter, f->name);
		if (f1) {
			dname = xstrdup(f1);
			note = xasprintf("renamed by --f1f2");
			by_rule = 1;
		} else {
			int changed;
			char *pnote = NULL;
			char *plain = ruled_name(&c, f->name, &pnote, &changed);
			/* An explicit rule wins over a role guessed or announced. */
			int automap = filter->automap && !changed && !(filter->subfolder2 && *filter->subfolder2);

			if (automap && role != ROLE_INBOX) {
				unsigned rank = role_claim(&c, src, nsrc, i, &role);

				/* One source folder per role, chosen by what the folders are, never by LIST order:
				 * SPECIAL-USE before a known name, then the name's place in the table, then byte
				 * order. A guess that loses is no role at all. */
				if (rank && !role_owner(&c, src, nsrc, i, role, rank)) {
					if (rank > 1)
						role = ROLE_NONE;
					rank = 0;
				}
				/* A folder that lands on the destination's role folder by its own name has the
				 * better claim: "Gesendet" (\Sent) must not take the destination's "Sent" when the
				 * source also has a plain "Sent", which lands there by its name, or the two merge;
				 * and the answer must not change once a later pass finds "Sent" created. */
				if (rank) {
					const struct fm_folder *d = dst_with_role(dst, ndst, role);

					if (!d || natural_target_of_another(&c, src, nsrc, i, d->name)) {
						if (rank > 1)
							role = ROLE_NONE;
					} else {
						dname = xstrdup(d->name);
						note = xasprintf("%s folder mapped by role (%s)", folder_role_name(role),
								 rank == 1 ? "SPECIAL-USE" : "known name");
					}
				}
			}
			/* A role target already taken by another source folder: this one keeps its name. */
			for (size_t j = 0; dname && j < plan->n; j++) {
				if (same_name(plan->entries[j].dst_name, dname, cf)) {
					xfree(&dname);
					xfree(&note);
				}
			}
			if (!dname) {
				dname = plain;
				note = pnote;
				by_rule = changed;
				plain = NULL;
				pnote = NULL;
			}
			xfree(&plain);
			xfree(&pnote);
		}

		e = plan_add(plan, &alloc);
		e->src_name = xstrdup(f->name);
		e->dst_name = dname;
		e->role = role;
		e->noselect = f->noselect;
		e->subscribed = f->subscribed;
		e->note = note;
		e->by_rule = by_rule;
	}

	resolve_collisions(plan, cf, delim);
	for (size_t i = 0; i < plan->n; i++) {
		struct fm_entry *e = &plan->entries[i];
		const struct fm_folder *d = dst_find(dst, ndst, e->dst_name, cf);

		if (d && strcmp(d->name, e->dst_name) != 0 && !is_inbox(d->name)) {
			note_add(&e->note, "the destination has it as '%s' and does not tell case apart", d->name);
			xfree(&e->dst_name);
			e->dst_name = xstrdup(d->name);
		}
		e->exists_on_dst = d != NULL;
		e->dst_subscribed = d && d->subscribed;
	}
	add_parents(plan, &alloc, dst_ns, dst, ndst, cf);
	if (plan->n)
		qsort_r(plan->entries, plan->n, sizeof(*plan->entries), entry_cmp, &delim);
	rc = 0;

	for (size_t i = 0; i < filter->ninclude; i++)
		regfree(&inc[i]);
	for (size_t i = 0; i < filter->nexclude; i++)
		regfree(&exc[i]);
	xfree(&inc);
	xfree(&exc);
out:
	for (size_t i = 0; i < filter->nregextrans2; i++)
		folder_map_rule_free(&c.rules[i]);
	xfree(&c.rules);
	if (rc < 0)
		folder_map_plan_release(plan);
	return rc;
}

void folder_map_entry_release(struct fm_entry *e)
{
	xfree(&e->src_name);
	xfree(&e->dst_name);
	xfree(&e->note);
	xfree(&e->src_mailbox);
	xfree(&e->gm_label);
}

void folder_map_plan_release(struct fm_plan *plan)
{
	for (size_t i = 0; i < plan->n; i++)
		folder_map_entry_release(&plan->entries[i]);
	for (size_t i = 0; i < plan->nskipped; i++)
		xfree(&plan->skipped[i]);
	xfree(&plan->entries);
	xfree(&plan->skipped);
	plan->n = plan->nskipped = 0;
}

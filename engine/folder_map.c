#include "engine/folder_map.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/util.h"

static const struct {
	const char *attr;
	enum folder_role role;
} role_attrs[] = {
	{"\\Sent", ROLE_SENT},	     {"\\Drafts", ROLE_DRAFTS},   {"\\Trash", ROLE_TRASH},
	{"\\Junk", ROLE_JUNK},	     {"\\Archive", ROLE_ARCHIVE}, {"\\All", ROLE_ALL},
	{"\\Flagged", ROLE_FLAGGED}, {"\\Important", ROLE_IMPORTANT},
};

/* Names that mean a role on servers without SPECIAL-USE (last path component, any case). */
static const struct {
	const char *name;
	enum folder_role role;
} role_names[] = {
	{"Sent", ROLE_SENT},		   {"Sent Items", ROLE_SENT},	      {"Sent Messages", ROLE_SENT},
	{"Sent Mail", ROLE_SENT},	   {"Gesendet", ROLE_SENT},	      {"Gesendete Objekte", ROLE_SENT},
	{"Envoy\xc3\xa9s", ROLE_SENT},	   {"Drafts", ROLE_DRAFTS},	      {"Entw\xc3\xbcrfe", ROLE_DRAFTS},
	{"Brouillons", ROLE_DRAFTS},	   {"Trash", ROLE_TRASH},	      {"Deleted Items", ROLE_TRASH},
	{"Deleted Messages", ROLE_TRASH}, {"Papierkorb", ROLE_TRASH},      {"Corbeille", ROLE_TRASH},
	{"Junk", ROLE_JUNK},		   {"Spam", ROLE_JUNK},		      {"Junk E-mail", ROLE_JUNK},
	{"Junk Email", ROLE_JUNK},	   {"Archive", ROLE_ARCHIVE},	      {"Archives", ROLE_ARCHIVE},
};

enum folder_role folder_role_from_attr(const char *attr)
{
	for (size_t i = 0; i < sizeof(role_attrs) / sizeof(role_attrs[0]); i++)
		if (fleet_strcaseeq(attr, role_attrs[i].attr))
			return role_attrs[i].role;
	return ROLE_NONE;
}

enum folder_role folder_role_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (fleet_strcaseeq(name, role_names[i].name))
			return role_names[i].role;
	return ROLE_NONE;
}

const char *folder_role_name(enum folder_role role)
{
	static const char *const names[] = {"",	 "inbox", "sent", "drafts", "trash",
					    "junk", "archive", "all", "flagged", "important"};

	return (unsigned)role < sizeof(names) / sizeof(names[0]) ? names[role] : "";
}

static int is_inbox(const char *name)
{
	return fleet_strcaseeq(name, "INBOX");
}

char *folder_map_translate(const char *src_name, const struct fm_namespace *src, const struct fm_namespace *dst,
			   char **note)
{
	struct fleet_buf out = FLEET_BUF_INIT(64 * 1024);
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
		fleet_buf_append_str(&out, dst->prefix);
	for (const char *p = rest; *p; p++) {
		char c = *p;

		if (src->delim && c == src->delim) {
			c = dst->delim ? dst->delim : src->delim;
		} else if (dst->delim && c == dst->delim && dst->delim != src->delim) {
			c = '_'; /* would otherwise create a hierarchy level that does not exist */
			renamed = 1;
		}
		fleet_buf_append(&out, &c, 1);
	}
	if (renamed && note)
		*note = xasprintf("'%c' in the name is the destination's separator, replaced by '_'", dst->delim);
	return fleet_buf_detach(&out, NULL);
}

static int compile_all(const char *const *pats, size_t n, regex_t **out, struct fleet_err *err)
{
	*out = n ? xcalloc(n, sizeof(regex_t)) : NULL;
	for (size_t i = 0; i < n; i++) {
		if (regcomp(&(*out)[i], pats[i], REG_EXTENDED | REG_NOSUB) != 0) {
			for (size_t j = 0; j < i; j++)
				regfree(&(*out)[j]);
			xfree(out);
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "BAD_REGEX",
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

static int role_claimed(const struct fm_folder *src, size_t nsrc, const struct fm_plan *plan, enum folder_role role)
{
	for (size_t i = 0; i < nsrc; i++)
		if (src[i].role == role)
			return 1;
	for (size_t i = 0; i < plan->n; i++)
		if (plan->entries[i].role == role)
			return 1;
	return 0;
}

static const struct fm_folder *dst_with_role(const struct fm_folder *dst, size_t ndst, enum folder_role role)
{
	for (size_t i = 0; i < ndst; i++)
		if (dst[i].role == role && !dst[i].noselect)
			return &dst[i];
	return NULL;
}

/* 1 when a source folder other than src[self] lands on `name` by plain translation: such a
 * folder has the better claim to that destination folder than a role guessed from a name. */
static int natural_target_of_another(const struct fm_folder *src, size_t nsrc, size_t self,
				     const struct fm_namespace *src_ns, const struct fm_namespace *dst_ns,
				     const char *name)
{
	for (size_t i = 0; i < nsrc; i++) {
		char *t;
		int same;

		if (i == self || src[i].noselect)
			continue;
		t = folder_map_translate(src[i].name, src_ns, dst_ns, NULL);
		same = strcmp(t, name) == 0;
		xfree(&t);
		if (same)
			return 1;
	}
	return 0;
}

static const struct fm_folder *dst_find(const struct fm_folder *dst, size_t ndst, const char *name)
{
	for (size_t i = 0; i < ndst; i++)
		if (strcmp(dst[i].name, name) == 0 || (is_inbox(name) && is_inbox(dst[i].name)))
			return &dst[i];
	return NULL;
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

int folder_map_plan(const struct fm_folder *src, size_t nsrc, const struct fm_namespace *src_ns,
		    const struct fm_folder *dst, size_t ndst, const struct fm_namespace *dst_ns,
		    const struct fm_filter *filter, struct fm_plan *plan, struct fleet_err *err)
{
	regex_t *inc = NULL, *exc = NULL;
	size_t alloc = 0, skip_alloc = 0;

	memset(plan, 0, sizeof(*plan));
	if (compile_all(filter->include, filter->ninclude, &inc, err) < 0)
		return -1;
	if (compile_all(filter->exclude, filter->nexclude, &exc, err) < 0) {
		for (size_t i = 0; i < filter->ninclude; i++)
			regfree(&inc[i]);
		xfree(&inc);
		return -1;
	}

	for (size_t i = 0; i < nsrc; i++) {
		const struct fm_folder *f = &src[i];
		enum folder_role role = f->role;
		struct fm_entry *e;
		char *note = NULL;
		char *dname;

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
		if (role == ROLE_NONE && filter->automap) {
			const char *last = f->delim ? strrchr(f->name, f->delim) : NULL;
			const char *base = last ? last + 1 : f->name;
			char *translated = folder_map_translate(f->name, src_ns, dst_ns, NULL);
			int top = strchr(translated + (dst_ns->prefix ? strlen(dst_ns->prefix) : 0),
					 dst_ns->delim ? dst_ns->delim : '\x01') == NULL;

			/* Only a top-level folder named "Sent Items" is the sent folder; "Projects/Sent" is not;
			 * and a name never takes a role that a source folder holds by SPECIAL-USE, or that
			 * an earlier name took: one folder per role, so the plan is stable between runs. */
			if (top)
				role = folder_role_from_name(base);
			if (role != ROLE_NONE && role_claimed(src, nsrc, plan, role))
				role = ROLE_NONE;
			/* "INBOX.Entwuerfe" must not take the destination's "Drafts" when the source also has
			 * "INBOX.Drafts", which lands there by its name: both would end in one folder. */
			if (role != ROLE_NONE) {
				const struct fm_folder *d = dst_with_role(dst, ndst, role);

				if (d && natural_target_of_another(src, nsrc, i, src_ns, dst_ns, d->name))
					role = ROLE_NONE;
			}
			xfree(&translated);
		}

		dname = NULL;
		if (filter->automap && role > ROLE_INBOX) {
			const struct fm_folder *d = dst_with_role(dst, ndst, role);

			if (d) {
				dname = xstrdup(d->name);
				note = xasprintf("%s folder mapped by role (SPECIAL-USE)", folder_role_name(role));
			}
		}
		if (!dname)
			dname = folder_map_translate(f->name, src_ns, dst_ns, &note);

		/* Two source folders must not land in one destination folder: the second keeps its name. */
		for (size_t j = 0; j < plan->n; j++) {
			if (strcmp(plan->entries[j].dst_name, dname) == 0) {
				xfree(&dname);
				xfree(&note);
				dname = folder_map_translate(f->name, src_ns, dst_ns, &note);
				break;
			}
		}

		plan->entries = xgrow(plan->entries, sizeof(*plan->entries), plan->n + 1, &alloc);
		e = &plan->entries[plan->n++];
		memset(e, 0, sizeof(*e));
		e->src_name = xstrdup(f->name);
		e->dst_name = dname;
		e->role = role;
		e->noselect = f->noselect;
		e->subscribed = f->subscribed;
		{
			const struct fm_folder *d = dst_find(dst, ndst, dname);

			e->exists_on_dst = d != NULL;
			e->dst_subscribed = d && d->subscribed;
		}
		e->note = note;
	}
	{
		char delim = dst_ns->delim ? dst_ns->delim : '/';

		if (plan->n)
			qsort_r(plan->entries, plan->n, sizeof(*plan->entries), entry_cmp, &delim);
	}

	for (size_t i = 0; i < filter->ninclude; i++)
		regfree(&inc[i]);
	for (size_t i = 0; i < filter->nexclude; i++)
		regfree(&exc[i]);
	xfree(&inc);
	xfree(&exc);
	return 0;
}

void folder_map_plan_release(struct fm_plan *plan)
{
	for (size_t i = 0; i < plan->n; i++) {
		xfree(&plan->entries[i].src_name);
		xfree(&plan->entries[i].dst_name);
		xfree(&plan->entries[i].note);
	}
	for (size_t i = 0; i < plan->nskipped; i++)
		xfree(&plan->skipped[i]);
	xfree(&plan->entries);
	xfree(&plan->skipped);
	plan->n = plan->nskipped = 0;
}

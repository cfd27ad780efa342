#include "engine/gmail.h"

#include <string.h>

#include "common/alloc.h"
#include "common/util.h"

int gmail_policy_from_name(const char *name)
{
	if (strcmp(name, "folders") == 0)
		return GMAIL_FOLDERS;
	if (strcmp(name, "primary") == 0)
		return GMAIL_PRIMARY;
	if (strcmp(name, "keywords") == 0)
		return GMAIL_KEYWORDS;
	return -1;
}

/* Labels that never make a copy: flags (\Starred, \Important) or views (\All, \Muted ...). */
static int label_is_flag_or_view(const char *l)
{
	static const char *const v[] = {"\\Starred", "\\Important", "\\All", "\\AllMail", "\\Muted", "\\Chats"};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (fleet_strcaseeq(l, v[i]))
			return 1;
	return 0;
}

static int same_label(const char *a, const char *b)
{
	/* System labels are case-insensitive atoms; user labels are compared exactly. */
	return (a[0] == '\\' && b[0] == '\\') ? fleet_strcaseeq(a, b) : strcmp(a, b) == 0;
}

static const char *label_of(const struct fm_folder *f)
{
	if (fleet_strcaseeq(f->name, "INBOX"))
		return "\\Inbox";
	if (f->role == ROLE_SENT)
		return "\\Sent";
	if (f->role == ROLE_DRAFTS)
		return "\\Draft";
	return f->name;
}

static const struct fm_folder *src_find(const struct fm_folder *src, size_t nsrc, const char *name)
{
	for (size_t i = 0; i < nsrc; i++)
		if (strcmp(src[i].name, name) == 0)
			return &src[i];
	return NULL;
}

int gmail_plan(struct fm_plan *plan, const struct fm_folder *src, size_t nsrc, const struct fm_namespace *dst_ns,
	       const struct fm_folder *dst, size_t ndst, const char *archive)
{
	const char *all = NULL;
	size_t alloc;
	struct fm_entry *e;
	struct fm_namespace slash = {"", '/'};

	for (size_t i = 0; i < nsrc && !all; i++)
		if (src[i].role == ROLE_ALL && !src[i].noselect)
			all = src[i].name;
	if (!all)
		return -1;
	for (size_t i = 0; i < plan->n; i++) {
		struct fm_entry *pe = &plan->entries[i];
		const struct fm_folder *f = src_find(src, nsrc, pe->src_name);
		const char *label;

		/* Trash and Spam are not in All Mail: copied as folders, like parents. */
		if (!f || pe->noselect || pe->role == ROLE_TRASH || pe->role == ROLE_JUNK)
			continue;
		label = label_of(f);
		pe->gm_label = xstrdup(label);
		pe->src_mailbox = xstrdup(all);
		xfree(&pe->src_name);
		pe->src_name = xasprintf("%s (label %s)", all, label);
	}
	/* Unlabelled mail: only in All Mail, and never lost. */
	alloc = plan->n;
	e = xpush(&plan->entries, &plan->n, &alloc);
	e->src_name = xasprintf("%s (no label)", all);
	e->src_mailbox = xstrdup(all);
	e->dst_name = folder_map_translate(archive && *archive ? archive : "Archive", &slash, dst_ns, NULL);
	e->gm_archive = 1;
	e->subscribed = 1;
	e->note = xasprintf("mail archived in Gmail without a label");
	for (size_t i = 0; i < ndst; i++)
		if (strcmp(dst[i].name, e->dst_name) == 0) {
			e->exists_on_dst = 1;
			e->dst_subscribed = dst[i].subscribed;
		}
	return 0;
}

static const char *all_of(const struct fm_folder *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].role == ROLE_ALL && !f[i].noselect)
			return f[i].name;
	return NULL;
}

int gmail_plan_to_gmail(struct fm_plan *plan, const struct fm_folder *src, size_t nsrc, const struct fm_folder *dst,
			size_t ndst)
{
	const char *sall = all_of(src, nsrc), *dall = all_of(dst, ndst);
	size_t k = 0, alloc;
	struct fm_entry *e;

	if (!sall || !dall)
		return -1;
	for (size_t i = 0; i < plan->n; i++) {
		struct fm_entry *pe = &plan->entries[i];
		const struct fm_folder *f = src_find(src, nsrc, pe->src_name);

		if (!f || pe->noselect || pe->role == ROLE_TRASH || pe->role == ROLE_JUNK) {
			plan->entries[k++] = *pe; /* kept: Trash, Spam and parents */
			continue;
		}
		/* a label folder: its messages come with All Mail, its label with STORE */
		folder_map_entry_release(pe);
	}
	plan->n = k;
	alloc = plan->n;
	e = xpush(&plan->entries, &plan->n, &alloc);
	e->src_name = xstrdup(sall);
	e->dst_name = xstrdup(dall);
	e->role = ROLE_ALL;
	e->gm_to_gmail = 1;
	e->exists_on_dst = 1;
	e->note = xasprintf("Gmail to Gmail: each message once, its labels set with X-GM-LABELS");
	for (size_t i = 0; i < ndst; i++)
		if (strcmp(dst[i].name, dall) == 0)
			e->dst_subscribed = e->subscribed = dst[i].subscribed;
	return 0;
}

int gmail_label_is_settable(const char *label)
{
	static const char *const views[] = {"\\All", "\\AllMail", "\\Muted", "\\Chats"};

	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
		if (fleet_strcaseeq(label, views[i]))
			return 0;
	return *label != '\0';
}

size_t gmail_labels_to_set(const char *const *labels, size_t nlabels, const char **out)
{
	size_t n = 0;

	for (size_t i = 0; i < nlabels; i++)
		if (gmail_label_is_settable(labels[i]))
			out[n++] = labels[i];
	return n;
}

int gmail_same_label(const char *a, const char *b)
{
	return same_label(a, b);
}

/* 1 when the plan has an entry for this label (so it can hold a copy). */
static int label_planned(const struct fm_plan *plan, const char *label)
{
	for (size_t i = 0; i < plan->n; i++)
		if (plan->entries[i].gm_label && same_label(plan->entries[i].gm_label, label))
			return 1;
	return 0;
}

/* The one label that holds the message under primary/keywords, or NULL. */
static const char *primary_label(const struct fm_plan *plan, const char *const *labels, size_t n)
{
	static const char *const sys[] = {"\\Inbox", "\\Sent", "\\Draft"};
	const char *best = NULL;

	for (size_t s = 0; s < sizeof(sys) / sizeof(sys[0]); s++)
		for (size_t i = 0; i < n; i++)
			if (fleet_strcaseeq(labels[i], sys[s]) && label_planned(plan, sys[s]))
				return sys[s];
	for (size_t i = 0; i < n; i++)
		if (labels[i][0] != '\\' && label_planned(plan, labels[i]) && (!best || strcmp(labels[i], best) < 0))
			best = labels[i];
	return best;
}

int gmail_wants(const struct fm_plan *plan, const struct fm_entry *fe, enum gmail_policy policy,
		const char *const *labels, size_t nlabels)
{
	if (fe->gm_archive) {
		for (size_t i = 0; i < nlabels; i++)
			if (!label_is_flag_or_view(labels[i]))
				return 0;
		return 1;
	}
	if (!fe->gm_label)
		return 1;
	if (policy == GMAIL_FOLDERS) {
		for (size_t i = 0; i < nlabels; i++)
			if (same_label(labels[i], fe->gm_label))
				return 1;
		return 0;
	}
	{
		const char *p = primary_label(plan, labels, nlabels);

		return p && same_label(p, fe->gm_label);
	}
}

static int has_flag(const struct fleet_buf *flags, const char *flag)
{
	const char *p = fleet_buf_cstr(flags);
	size_t fl = strlen(flag);

	while (*p) {
		const char *end = strchr(p, ' ');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == fl && fleet_strncaseeq(p, flag, fl))
			return 1;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

static void add_flag(struct fleet_buf *flags, const char *flag)
{
	if (has_flag(flags, flag))
		return;
	if (flags->len)
		fleet_buf_add(flags, " ", 1);
	fleet_buf_add_str(flags, flag);
}

void gmail_label_flags(enum gmail_policy policy, const char *const *labels, size_t nlabels, struct fleet_buf *flags)
{
	for (size_t i = 0; i < nlabels; i++) {
		const char *l = labels[i];

		if (fleet_strcaseeq(l, "\\Starred")) {
			add_flag(flags, "\\Flagged");
		} else if (fleet_strcaseeq(l, "\\Important")) {
			add_flag(flags, "$Important");
		} else if (policy == GMAIL_KEYWORDS && l[0] != '\\' && *l) {
			/* An atom: no space, no ( ) { % * " \ ], no control or 8-bit byte. */
			char kw[256];
			size_t k = 0;

			for (const unsigned char *p = (const unsigned char *)l; *p && k + 1 < sizeof(kw); p++)
				kw[k++] = (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p)) ? '_' : (char)*p;
			kw[k] = '\0';
			add_flag(flags, kw);
		}
	}
}

/* engine/folder_map.h: which source folder goes to which destination folder.
 *
 * Pure logic, no I/O, so every rule is unit-tested: personal-namespace prefix and hierarchy
 * separator translation (Courier's "INBOX.Sent" with '.' to "Sent" with '/' and back), INBOX
 * special-cased, SPECIAL-USE roles mapped (the source's \Sent lands in the destination's \Sent
 * folder whatever its name), --folder / --include / --exclude filters, and parents ordered before
 * children. Names are UTF-8 here; io/ converts modified UTF-7 at the wire.
 */
#ifndef IMAPFLEET_ENGINE_FOLDER_MAP_H
#define IMAPFLEET_ENGINE_FOLDER_MAP_H

#include <stddef.h>

#include "common/err.h"

enum folder_role {
	ROLE_NONE = 0,
	ROLE_INBOX,
	ROLE_SENT,
	ROLE_DRAFTS,
	ROLE_TRASH,
	ROLE_JUNK,
	ROLE_ARCHIVE,
	ROLE_ALL,       /* Gmail's All Mail: a view of every message, skipped to avoid duplicates */
	ROLE_FLAGGED,   /* virtual views, skipped likewise */
	ROLE_IMPORTANT
};

/* One folder as LIST reported it. */
struct fm_folder {
	const char *name;       /* full name on its server, UTF-8 */
	char delim;             /* hierarchy separator, '\0' when flat */
	int noselect;           /* \Noselect or \NonExistent: exists only as a parent */
	int subscribed;
	enum folder_role role;  /* from SPECIAL-USE attributes, ROLE_NONE when absent */
};

struct fm_namespace {
	const char *prefix;     /* personal namespace prefix: "" or "INBOX." */
	char delim;
};

struct fm_filter {
	const char *const *folders;  /* --folder: only these source names (exact), NULL = all */
	size_t nfolders;
	const char *const *include;  /* --include: POSIX extended regexes on the source name */
	size_t ninclude;
	const char *const *exclude;  /* --exclude */
	size_t nexclude;
	int automap;                 /* map SPECIAL-USE roles (default on) */
	int skip_virtual;            /* skip \All, \Flagged, \Important views (default on) */
};

struct fm_entry {
	char *src_name;
	char *dst_name;
	enum folder_role role;
	int noselect;            /* create on the destination only as a parent, copy nothing */
	int subscribed;
	int exists_on_dst;
	int dst_subscribed;      /* already subscribed there: a delta pass need not SUBSCRIBE again */
	char *note;              /* why the name differs from a plain translation, or NULL */
};

struct fm_plan {
	struct fm_entry *entries; /* parents before children */
	size_t n;
	char **skipped;           /* source folders left out, each with the reason: "name: reason" */
	size_t nskipped;
};

/* Role from SPECIAL-USE attribute text ("\\Sent") or, when attr is NULL, from common names
 * ("Sent Items", "Gesendete Objekte", "Deleted Items", "Spam" ...). */
enum folder_role folder_role_from_attr(const char *attr);
enum folder_role folder_role_from_name(const char *name);
const char *folder_role_name(enum folder_role role);

/* Translates one source name to the destination's namespace. A path component that contains the
 * destination separator is rewritten (separator -> '_') and *note says so. Returns heap string. */
char *folder_map_translate(const char *src_name, const struct fm_namespace *src, const struct fm_namespace *dst,
			   char **note);

/* Builds the plan. Invalid regexes are an error naming the pattern. */
int folder_map_plan(const struct fm_folder *src, size_t nsrc, const struct fm_namespace *src_ns,
		    const struct fm_folder *dst, size_t ndst, const struct fm_namespace *dst_ns,
		    const struct fm_filter *filter, struct fm_plan *plan, struct fleet_err *err);
void folder_map_plan_release(struct fm_plan *plan);

#endif

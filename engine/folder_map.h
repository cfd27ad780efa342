/* engine/folder_map.h: which source folder goes to which destination folder.
 *
 * Pure logic, no I/O, so every rule is unit-tested: personal-namespace prefix and hierarchy
 * separator translation (Courier's "INBOX.Sent" with '.' to "Sent" with '/' and back), INBOX
 * special-cased, SPECIAL-USE roles mapped (the source's \Sent lands in the destination's \Sent
 * folder whatever its name), --folder / --include / --exclude filters, and parents ordered before
 * children. Names are UTF-8 here; io/ converts modified UTF-7 at the wire.
 *
 * Rename rules, in this order (imapsync's names and semantics where they agree):
 *   1. --f1f2 SRC=DST: the source folder named exactly SRC (as the source lists it) goes to DST
 *      (as the destination will name it). Nothing else applies to it.
 *   2. SPECIAL-USE role mapping (automap), unless a rule below changes the name or --subfolder2
 *      is given: an explicit rule wins over a guess.
 *   3. the plain translation (prefix and separator), then every --regextrans2 rule in order, on
 *      the destination-side name (with the destination's prefix and separator, as imapsync does),
 *      then --subfolder2 NAME (INBOX becomes NAME, every other folder goes under NAME).
 * Then, never two source folders in one destination folder: when names collide (by case on a
 * destination that ignores case, --casefold2, or because rules send two folders to one name) one
 * folder keeps the name (INBOX first, then a folder no rule renamed, then the first source name in
 * byte order) and each other one gets " (2)", " (3)" ... appended, its subfolders moving with it;
 * the entry's `collision` says so.
 * On such a destination a folder that already exists in another case is used in its spelling.
 * Finally every missing parent level of a destination name becomes an entry of its own
 * (`create_parent`), so servers that do not create parents (Exchange) get them in order.
 */
#ifndef IMAPFLEET_ENGINE_FOLDER_MAP_H
#define IMAPFLEET_ENGINE_FOLDER_MAP_H

#include <stddef.h>

#include "common/err.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* a --regextrans2 or folder filter that does not compile */
#define FOLDER_MAP_ERR_BAD_REGEX "BAD_REGEX"

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
	const char *const *f1f2;     /* --f1f2 "SRC=DST" (split at the first '=') */
	size_t nf1f2;
	const char *const *regextrans2; /* --regextrans2 's/REGEX/REPLACEMENT/[gi]', applied in order */
	size_t nregextrans2;
	const char *subfolder2;      /* --subfolder2 NAME, or NULL */
	int casefold;                /* the destination ignores case in folder names (--casefold2) */
};

struct fm_entry {
	char *src_name;
	char *dst_name;
	enum folder_role role;
	int noselect;            /* copy nothing: a parent only (created when create_parent is set) */
	int create_parent;       /* a destination name below needs this level: CREATE it when missing */
	int collision;           /* renamed with a " (N)" suffix: its name collided with another's */
	int by_rule;             /* the name comes from --f1f2, --regextrans2 or --subfolder2 */
	char *src_mailbox;       /* the source mailbox to read when it is not src_name (Gmail mode: All
	                          * Mail; src_name then names the entry in the ledger), or NULL */
	char *gm_label;          /* Gmail mode: the label whose messages this entry takes, or NULL */
	int gm_archive;          /* Gmail mode: takes the messages without any label */
	int gm_to_gmail;         /* Gmail to Gmail: All Mail into the destination's All Mail, each
	                          * message once, its labels set with STORE X-GM-LABELS */
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

/* A destination folder name as built here (translated, renamed by rules): a name of one LIST line
 * (IMAP_NAME_MAX) and its new prefix fit; one longer is cut, said so, and refused when the folder
 * is created (no server takes names near this long). */
#define FM_NAME_MAX (64 * 1024)
/* The notes of one folder (why it was renamed, merged, left out), shown in the plan. */
#define FM_NOTE_MAX (16 * 1024)

/* Translates one source name to the destination's namespace. A path component that contains the
 * destination separator is rewritten (separator -> '_') and *note says so. Returns heap string. */
char *folder_map_translate(const char *src_name, const struct fm_namespace *src, const struct fm_namespace *dst,
			   char **note);

/* One --regextrans2 rule: s/REGEX/REPLACEMENT/FLAGS with any punctuation as the delimiter
 * (s,a,b, works), POSIX extended REGEX (regcomp, never code evaluation), back-references \0..\9
 * (or $1..$9) in REPLACEMENT, FLAGS g (every match) and i (ignore case). */
struct folder_map_rule;
/* Returns < 0 with err naming the rule and what is wrong with it (a usage error). */
int folder_map_rule_compile(const char *text, struct folder_map_rule **out, struct fleet_err *err);
/* The name with the rule applied (heap string; a copy when nothing matched). */
char *folder_map_rule_apply(const struct folder_map_rule *r, const char *name);
void folder_map_rule_free(struct folder_map_rule **r);
/* Checks one --f1f2 value ("SRC=DST", both non-empty). */
int folder_map_f1f2_check(const char *text, struct fleet_err *err);

/* Builds the plan. Invalid regexes are an error naming the pattern. */
int folder_map_plan(const struct fm_folder *src, size_t nsrc, const struct fm_namespace *src_ns,
		    const struct fm_folder *dst, size_t ndst, const struct fm_namespace *dst_ns,
		    const struct fm_filter *filter, struct fm_plan *plan, struct fleet_err *err);
void folder_map_plan_release(struct fm_plan *plan);
/* Frees what one plan entry owns (for a caller that drops entries from a plan). */
void folder_map_entry_release(struct fm_entry *e);

#endif

/* engine/gmail.h: Gmail labels, read from [Gmail]/All Mail (X-GM-EXT-1).
 *
 * On Gmail a message lives once, in All Mail, with labels (X-GM-LABELS); each label is also
 * listed as a folder. Copying the label folders one by one copies a message with three labels
 * three times without knowing, and loses mail archived without a label (it is only in All Mail,
 * a virtual folder). In Gmail mode the engine reads All Mail instead, and every plan entry of a
 * label folder selects, from All Mail, the messages that the policy puts there:
 *   folders   a copy in the folder of each label the message has (what imapsync users expect);
 *   primary   one copy, in the folder of its first label by this rule: \Inbox, \Sent, \Draft,
 *             then its user labels in byte order;
 *   keywords  one copy where primary puts it, every user label also set as a keyword.
 * A message with no label (archived) goes to the archive folder (--archive-folder, default
 * Archive) under every policy. \Starred becomes \Flagged and \Important the keyword $Important;
 * neither is a folder. Trash and Spam are not in All Mail and are copied as folders.
 * Pure logic: no I/O, so every rule is unit-tested.
 */
#ifndef IMAPFLEET_ENGINE_GMAIL_H
#define IMAPFLEET_ENGINE_GMAIL_H

#include <stddef.h>

#include "common/buf.h"
#include "engine/folder_map.h"

enum gmail_policy { GMAIL_FOLDERS = 0, GMAIL_PRIMARY, GMAIL_KEYWORDS };

/* "folders", "primary", "keywords" -> policy; -1 when unknown. */
int gmail_policy_from_name(const char *name);

/* Turns a plan made from a Gmail source's folders into one that reads All Mail: every label
 * folder (INBOX, the \Sent and \Drafts folders, user labels) keeps its destination but takes its
 * messages from All Mail by label; one entry for unlabelled mail goes to `archive` (a
 * '/'-separated name, put into the destination's namespace). Returns 0, or -1 when the source
 * has no \All folder (then the plan is left as it was). */
int gmail_plan(struct fm_plan *plan, const struct fm_folder *src, size_t nsrc, const struct fm_namespace *dst_ns,
	       const struct fm_folder *dst, size_t ndst, const char *archive);

/* The same for a Gmail destination: the label folders' entries (and the archive entry) give way to
 * one entry that copies the source's All Mail into the destination's (found by SPECIAL-USE \All),
 * each message once; the engine then sets its labels (gmail_labels_to_set). Trash and Spam stay
 * folders. Returns 0, or -1 when either side has no \All folder (the plan is left as it was). */
int gmail_plan_to_gmail(struct fm_plan *plan, const struct fm_folder *src, size_t nsrc, const struct fm_folder *dst,
			size_t ndst);

/* The labels of a message that a Gmail destination should have: all but the views (\All ...).
 * Fills out with borrowed pointers into labels; returns how many. */
size_t gmail_labels_to_set(const char *const *labels, size_t nlabels, const char **out);
/* Whether a label is one gmail_labels_to_set keeps (labels a destination shows that are views,
 * such as \All, are left alone). */
int gmail_label_is_settable(const char *label);
/* 1 when the two labels are the same (system labels without regard to case). */
int gmail_same_label(const char *a, const char *b);

/* Labels of one message (UTF-8, system labels with their backslash). 1 when the entry fe (made
 * by gmail_plan) takes the message under the policy. */
int gmail_wants(const struct fm_plan *plan, const struct fm_entry *fe, enum gmail_policy policy,
		const char *const *labels, size_t nlabels);

/* Appends to a space-separated flag list what the labels mean as flags: \Flagged for \Starred,
 * $Important for \Important, and with GMAIL_KEYWORDS each user label as a keyword (characters an
 * IMAP atom cannot hold become '_'). Flags already present are not repeated. */
void gmail_label_flags(enum gmail_policy policy, const char *const *labels, size_t nlabels, struct fleet_buf *flags);

#endif

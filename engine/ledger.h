/* engine/ledger.h: where the engine records what it copied (the journal of design section 6).
 *
 * The engine knows nothing of PostgreSQL. It reports progress through this table of operations;
 * scheduler/ binds it to the state layer (resumable, shared by worker hosts), engine/ledger_mem.c
 * implements it in memory (for `sync --dry` and unit tests).
 *
 * Once per attempt, optional: folders_open (every folder about to be opened, one write).
 * Order of calls per folder:
 *   folder_open                       -> folder id, what an earlier attempt recorded
 *   [folder_reset]                    when the source UIDVALIDITY changed
 *   copied_uids                       source UIDs already copied (sorted)
 *   [windows_ahead]                   the folders copied after this one, before its first window
 *   window_begin(dst_uidnext, uids)   BEFORE a batch of APPENDs
 *   record(...) x N, flush            after the APPENDs completed (batched writes)
 *   window_end                        once the batch is durable
 *   [windows_close]                   after a crash: once what every open window held is matched
 *   folder_close(stats)
 *   [folder_failed]                   the folder could not be (completely) migrated, and why
 * window_begin is durable when it returns 0. window_end and folder_close may be held back until the
 * ledger's next write (the state ledger writes them with the next window_begin, a failure, or when
 * the engine returns): the rows of a window and its end always commit together, so a crash before
 * that write leaves the window open and the next attempt matches it like any crash in a window.
 * Every operation returns < 0 with err filled on failure. An error with code "LEASE_LOST" means
 * another engine owns the account now: the engine stops before its next APPEND.
 */
#ifndef IMAPFLEET_ENGINE_LEDGER_H
#define IMAPFLEET_ENGINE_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* a ledger call for a folder never recorded */
#define LEDGER_ERR_NO_FOLDER "NO_FOLDER"
/* the job is no longer ours (STATE_ERR_LEASE_LOST in the state store) */
#define LEDGER_ERR_LEASE_LOST "LEASE_LOST"

enum ledger_msg_state { LEDGER_COPIED = 0, LEDGER_FAILED, LEDGER_SKIPPED };

struct ledger_folder_info {
	int64_t id;
	uint32_t src_uidvalidity;   /* as recorded by an earlier attempt, 0 = never seen */
	uint32_t dst_uidvalidity;
	uint32_t src_uidnext;       /* STATUS values seen at the end of the last complete pass */
	uint64_t src_highestmodseq;
	uint32_t src_messages;
	int window_open;            /* an earlier attempt crashed inside an append window */
	uint32_t window_dst_uidnext;/* destination UIDNEXT recorded before that window */
	uint64_t copied;            /* messages the ledger records as copied (current UIDVALIDITY) */
};

struct ledger_record {
	uint32_t src_uidvalidity;
	uint32_t src_uid;
	uint64_t size;
	const char *internaldate;   /* as the server sent it */
	const uint8_t *sha256;      /* 32 bytes, NULL when not hashed (skipped/failed) */
	uint32_t dst_uidvalidity;
	uint32_t dst_uid;           /* 0 when unknown (no UIDPLUS) */
	const char *flags;          /* space separated, as appended */
	enum ledger_msg_state state;
	const char *error;          /* for failed/skipped: the reason */
};

struct ledger_uid_pair {
	uint32_t src_uid;
	uint32_t dst_uid; /* 0 when unknown (no UIDPLUS) */
};

struct ledger_folder_stats {
	uint32_t src_uidvalidity, dst_uidvalidity, src_uidnext, src_messages;
	uint64_t src_highestmodseq;
	uint64_t copied, bytes, skipped, failed;
	int complete;               /* every source message is copied, skipped or failed for good */
};

/* A folder the engine copies after the current one, with what the STATUS at the start of the
 * attempt said of it on both sides (windows_ahead). */
struct ledger_ahead {
	const char *src_name;
	uint32_t src_uidvalidity, src_uidnext, src_messages;
	uint32_t dst_uidvalidity, dst_uidnext; /* both known (not 0) */
};

struct ledger_ops {
	/* src_uidvalidity: the source's current value, recorded at first sight only; a different
	 * value in out->src_uidvalidity tells the engine it changed. */
	int (*folder_open)(void *ctx, const char *src_name, const char *dst_name, uint32_t src_uidvalidity,
			   struct ledger_folder_info *out, struct fleet_err *err);
	int (*folder_reset)(void *ctx, int64_t folder, uint32_t new_src_uidvalidity, struct fleet_err *err);
	/* Optional (NULL: not offered). The folders the engine is about to open, with the source
	 * UIDVALIDITY each will be opened with (dst_names[i] NULL = the source name), named once
	 * before the first folder_open so that one write records them all; folder_open still follows
	 * for each, as always. */
	int (*folders_open)(void *ctx, size_t n, const char *const *src_names, const char *const *dst_names,
			    const uint32_t *src_uidvalidities, struct fleet_err *err);
	/* Messages already copied, sorted by source UID; *pairs is heap memory the caller frees. */
	int (*copied_uids)(void *ctx, int64_t folder, uint32_t src_uidvalidity, struct ledger_uid_pair **pairs,
			   size_t *n, struct fleet_err *err);
	/* Optional (NULL: not offered). The folders this engine copies after the current one, in their
	 * order, named before the current folder's first window_begin. The ledger may begin the first
	 * window of some of them in the same durable write as that window_begin, with the destination
	 * UIDNEXT given here (no greater than any UID an APPEND there gets: UIDs only grow); such a
	 * folder's own window_begin is then durable at once when its UIDVALIDITY is the same and its
	 * UIDNEXT no lower. A window begun so and not used (the folder had nothing to copy, failed or
	 * was not reached) is closed with the folder's folder_close or folder_failed, or by the
	 * ledger's last write: nothing was appended in it. */
	int (*windows_ahead)(void *ctx, size_t n, const struct ledger_ahead *next, struct fleet_err *err);
	int (*window_begin)(void *ctx, int64_t folder, uint32_t dst_uidvalidity, uint32_t dst_uidnext,
			    uint32_t first_src_uid, uint32_t last_src_uid, struct fleet_err *err);
	int (*record)(void *ctx, int64_t folder, const struct ledger_record *rec, struct fleet_err *err);
	int (*flush)(void *ctx, struct fleet_err *err);
	int (*window_end)(void *ctx, int64_t folder, struct fleet_err *err);
	/* Closes every open window of the folder, this ledger's and those other connection pairs left
	 * (a folder split by UID range, engine_lanes): the previous attempt's windows, once the
	 * destination at or above the lowest window's UIDNEXT is matched. May be held back like
	 * window_end. */
	int (*windows_close)(void *ctx, int64_t folder, struct fleet_err *err);
	int (*folder_close)(void *ctx, int64_t folder, const struct ledger_folder_stats *stats,
			    struct fleet_err *err);
	/* The folder could not be migrated, or only in part (CREATE refused, SELECT or STATUS failed,
	 * messages without a UID): why is kept with it and the account does not end "done". May be
	 * called for a folder never opened. */
	int (*folder_failed)(void *ctx, const char *src_name, const char *dst_name, const struct fleet_err *why,
			     struct fleet_err *err);
};

struct ledger {
	const struct ledger_ops *ops;
	void *ctx;
};

/* The in-memory ledger (engine/ledger_mem.c): forgets everything when freed. */
struct ledger_mem;
struct ledger_mem *ledger_mem_new(void);
void ledger_mem_free(struct ledger_mem **lm);
struct ledger ledger_mem_bind(struct ledger_mem *lm);
/* Test hooks: how many records were written, and whether a window is open. */
size_t ledger_mem_record_count(const struct ledger_mem *lm);
int ledger_mem_window_open(const struct ledger_mem *lm, int64_t folder);

#endif

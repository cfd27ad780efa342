/* scheduler/progress.h: the live progress display of `run` and `worker`.
 *
 * On a terminal: a block of a few lines kept below the log lines (common/log.h draws it and
 * prints every log line above it), fitted to the terminal's width and redrawn when it changes:
 *
 *   run 3  41% [=========>              ] 212.4/518.0 MB  12.4 MB/s  ETA 0:25
 *   accounts 14/40 finished: 12 done, 1 partial, 1 failed; 8 running (8 here), 18 queued
 *     user07@src.example     folder 3/15  120/400 msgs   12.3/45.6 MB
 *     ... 3 more running
 *
 * The percentage, bar and ETA are about bytes, the whole run's on every host when the snapshot
 * carries the state store's view (snap.rest): what the run's accounts copied (the ledger) against
 * what they must copy: for the accounts running here, their folders as listed and STATUS SIZE for
 * the folders not listed yet; for those running or interrupted elsewhere, the messages STATUS
 * counted that the ledger does not hold yet at their mean size; for those still queued, the mean of
 * the accounts seen ("~" marks a total that is still an estimate). Parked accounts (a daily budget,
 * a throttle) are counted apart, with when the last resumes, and left out of the percentage and the
 * ETA. Without snap.rest: this host's accounts only. The rate is smoothed (exponentially weighted,
 * over about 20 s), so the ETA does not swing with every account that ends. Not on a terminal: the
 * same words as one timestamped log line.
 *
 * The report (ops/) builds a snapshot from the state store alone and uses progress_bytes_of and
 * progress_eta_of for its remaining bytes and ETA: one computation for both.
 *
 * Thread-safety: one thread (the scheduler's main thread) owns a struct progress. The rendering
 * functions are pure and also used by the unit tests.
 */
#ifndef IMAPFLEET_SCHEDULER_PROGRESS_H
#define IMAPFLEET_SCHEDULER_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"

/* One account running on this host. */
struct progress_account {
	int64_t job_id;
	char label[FLEET_LOG_ACCOUNT_MAX]; /* "user07@src.example", as the log lines name it */
	unsigned folders_done, folders_total;
	uint64_t msgs_copied, msgs_todo;
	uint64_t bytes_copied, bytes_todo; /* bytes_todo: found to copy in the folders listed so far */
	uint64_t bytes_unlisted;	   /* STATUS SIZE of the folders not listed yet (0: unknown) */
	int listing;			   /* folders still to look at: the totals may grow */
};

struct progress_snapshot {
	int64_t run_id;
	/* The run's accounts on every host (from the state store). */
	long done, partial, failed, cancelled, running, queued;
	/* This host. */
	unsigned running_here;
	unsigned finished_here; /* accounts that ended on this host in this process */
	uint64_t bytes_copied;	/* by this host in this process, every account */
	uint64_t msgs_copied;
	uint64_t elapsed_ms;
	const struct progress_account *acct;
	size_t nacct;
	/* Of the queued: parked (counted apart, left out of the bytes), the last resuming then (ms since
	 * the epoch, 0: unknown). */
	long parked;
	int64_t parked_until_ms;
	/* The rest of the run from the state store (state_report_run_bytes with acct[]'s jobs
	 * excluded): known = 0 leaves the bytes this host's view (bytes_copied, finished_here). */
	struct progress_rest {
		int known;
		uint64_t copied; /* every account's, these here included */
		uint64_t left;	 /* the accounts not in acct[] */
		long seen, unseen;
		int estimated;
	} rest;
};

/* What the snapshot says about bytes: total (copied + known to copy + an estimate for the queued
 * accounts), whether it is an estimate, and whether it is known at all. */
struct progress_bytes {
	uint64_t copied, total;
	int estimated, known;
};
void progress_bytes_of(const struct progress_snapshot *snap, struct progress_bytes *out);

struct progress;

struct progress *progress_new(void);
void progress_free(struct progress **p);
/* Feeds a snapshot taken at now_ms (monotonic): the byte rate is smoothed over time. */
void progress_update(struct progress *p, const struct progress_snapshot *snap, uint64_t now_ms);
/* Smoothed bytes per second (0 until measured), and the ETA in seconds (< 0: not known yet). */
double progress_rate(const struct progress *p);
double progress_eta(const struct progress *p, const struct progress_snapshot *snap);
/* The ETA in seconds of b at rate bytes per second (< 0: not known); busy: accounts running or
 * queued (not parked): a total reached with accounts still to go is no end yet. */
double progress_eta_of(const struct progress_bytes *b, double rate, long busy);

/* One line of the block before it is cut to the terminal's width: wider than any terminal. */
#define PROGRESS_LINE_MAX 4096
/* The byte rate is averaged over about this long (seconds): long enough that one big message does
 * not swing the ETA, short enough that a server slowing down shows within a minute. */
#define PROGRESS_RATE_TAU_S 20.0
/* Running accounts shown in the block at most, one line each: the rest are counted on one line,
 * so the block stays within a small terminal. */
#define PROGRESS_ACCOUNT_LINES 8
/* The progress bar's width in columns: a bar narrower than PROGRESS_BAR_MIN says nothing and is
 * left out; one wider than PROGRESS_BAR_MAX is no more precise and takes room from the numbers. */
#define PROGRESS_BAR_MIN 12
#define PROGRESS_BAR_MAX 50

/* The block for a terminal of cols x rows: lines separated by '\n' (no final one), each at most
 * cols - 1 columns wide, at most rows - 1 lines. Replaces out's content. */
void progress_render_block(const struct progress *p, const struct progress_snapshot *snap, unsigned cols,
			   unsigned rows, struct fleet_buf *out);
/* The same as one line, for logs ("progress: run 3: 41% ..."). Replaces out's content. */
void progress_render_line(const struct progress *p, const struct progress_snapshot *snap,
			  struct fleet_buf *out);

/* Columns a UTF-8 text takes on a terminal (wide East Asian characters count 2, combining marks 0). */
size_t progress_text_width(const char *s, size_t len);
/* The terminal's size (TIOCGWINSZ on fd); 80 x 24 when it does not say. */
void progress_term_size(int fd, unsigned *cols, unsigned *rows);
/* SIGWINCH: progress_resized() returns 1 once after each resize (lock-free). */
void progress_watch_resize(void);
int progress_resized(void);

#endif

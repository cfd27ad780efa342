/* engine/engine.h: migrate one account pair, completely and exactly.
 *
 * The engine knows nothing of threads, CSV or PostgreSQL: it is handed one job (two endpoints
 * with credentials, options), a ledger to record progress in (engine/ledger.h), and a cancel flag
 * it polls between messages. It opens one connection per side, maps folders, diffs messages
 * against the ledger, and streams FETCH BODY.PEEK[] into pipelined APPENDs (LITERAL+), so memory
 * per account is bounded whatever the message size. Messages are copied byte for byte with their
 * flags and INTERNALDATE; nothing is added to them.
 *
 * Thread-safety: engine_run() may run in many threads at once, each with its own job and ledger.
 */
#ifndef IMAPFLEET_ENGINE_ENGINE_H
#define IMAPFLEET_ENGINE_ENGINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "engine/ledger.h"
#include "io/cred.h"
#include "io/imap.h"
#include "io/stream.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* a message larger than the destination's APPENDLIMIT */
#define ENGINE_ERR_APPENDLIMIT "APPENDLIMIT"
/* a message larger than --maxsize */
#define ENGINE_ERR_MAXSIZE "MAXSIZE"
/* a connection was lost while the account ran */
#define ENGINE_ERR_CONNECTION "CONNECTION"
/* the source sent no body for a message */
#define ENGINE_ERR_NO_BODY "NO_BODY"
/* the destination gave no UID for an appended message */
#define ENGINE_ERR_NO_UID "NO_UID"
/* a folder name the server answered that cannot be used */
#define ENGINE_ERR_PROTOCOL_NAME "PROTOCOL_NAME"
/* a folder's UIDVALIDITY changed under the copy */
#define ENGINE_ERR_UIDVALIDITY "UIDVALIDITY"
/* the account failed without a reason (a bug) */
#define ENGINE_ERR_UNKNOWN "UNKNOWN"

/* The notes printed for one command line (imapsync options that change nothing here): room for
 * every note row of engine/options.c's table (29), so none goes unsaid; test_folder_map checks it. */
#define ENGINE_NOTES_MAX 32

struct engine_side {
	struct io_endpoint ep;
	const char *user;
	const char *password;   /* borrowed; registered as a secret by the caller */
	const char *authuser;   /* admin/master user for AUTHENTICATE PLAIN, or NULL */
	const char *oauth_token;/* XOAUTH2/OAUTHBEARER token, or NULL */
	/* When set, the secret is asked for here before every login (a tokenfile re-read, a tokencmd
	 * run, a token from the OAuth cache) instead of password/oauth_token; a token refused at login
	 * is asked for again with refresh = 1 and the login tried once more. Borrowed. */
	const struct cred_source *cred;
	enum imap_auth_mech auth; /* IMAP_AUTH_AUTO unless auth1/auth2 or --authmech chose */
};

/* Per-account options, imapsync's names where the idea is the same. */
struct engine_opts {
	const char **folders;   /* --folder (repeatable) */
	size_t nfolders;
	const char **include;   /* --include REGEX */
	size_t ninclude;
	const char **exclude;   /* --exclude REGEX */
	size_t nexclude;
	const char **f1f2;      /* --f1f2 SRC=DST (repeatable): exact folder renames */
	size_t nf1f2;
	const char **regextrans2; /* --regextrans2 's/REGEX/REPLACEMENT/[gi]' (repeatable, in order) */
	size_t nregextrans2;
	const char *subfolder2; /* --subfolder2 NAME: the whole tree under one destination folder */
	int casefold2;          /* --casefold2: the destination ignores case in folder names */
	int gmail;              /* Gmail mode even without X-GM-EXT-1 (--gmail1); -1 never (--nogmail) */
	int gmail_labels;       /* --gmail-labels folders|primary|keywords (enum gmail_policy) */
	const char *archive_folder; /* --archive-folder NAME: unlabelled Gmail mail (default Archive) */
	const char *preset[2];  /* --gmail1, --office2 ...: the provider preset of each side, or NULL */
	const char *notes[ENGINE_NOTES_MAX]; /* imapsync options accepted that change nothing here, one line each
	                         * ("--syncinternaldates: INTERNALDATE is always kept"); static strings */
	size_t nnotes;
	uint64_t daily[2][2];   /* --daily-download1/2, --daily-upload1/2 SIZE: bytes per day that may be
	                         * read from ([k][ENGINE_DOWN]) or written to ([k][ENGINE_UP]) side k
	                         * (0 = no budget); presets set the provider's figures */
	uint64_t maxsize;       /* --maxsize BYTES: larger messages are skipped and reported (0 = none) */
	unsigned maxage_days;   /* --maxage D: only messages younger than D days (0 = none) */
	unsigned minage_days;   /* --minage D: only messages older than D days */
	int dry;                /* --dry: report what would be done, change nothing */
	int justlogin;          /* --justlogin: log in on both sides and stop */
	int justfolders;        /* --justfolders: create folders, copy no message */
	int delete2;            /* --delete2: expunge destination messages no longer on the source */
	int dedupe_existing;    /* --dedupe-existing: skip messages already on the destination */
	int automap;            /* --automap (default on) / --noautomap */
	int subscribe;          /* carry subscriptions (default on) */
	int sync_flags;         /* carry flag changes on delta passes (default on) */
	unsigned batch;         /* messages per FETCH/APPEND window (default 64) */
	int batch_set;          /* --batch given: exactly that; else windows of 64 messages grow up to
	                         * 1024 while under 8 MB (folders of many small messages) */
	int multiappend;        /* one MULTIAPPEND per window where offered (default on; --nomultiappend) */
	unsigned conns_per_account; /* --conns-per-account N: connection pairs one account may use
	                         * (run: the folders shared out; default ENGINE_CONNS_PER_ACCOUNT) */
	unsigned user_conns[2]; /* the provider's per-user connection limit of side k from its preset
	                         * (0 = none known): conns_per_account never goes above it */
	int newest_first;       /* --newest-first: INBOX, then Sent, then the other folders; in each
	                         * folder the windows of the highest UIDs (the newest mail) first */
	int trace;              /* protocol traces at TRACE level */
	enum imap_compress compress[2]; /* --compress MODE, --compress1/--compress2: COMPRESS=DEFLATE
	                         * per side where offered (default ENGINE_COMPRESS_DEFAULT) */
};

/* The default of --compress (docs/performance.md, "COMPRESS=DEFLATE", has the figures). */
#define ENGINE_COMPRESS_DEFAULT IMAP_COMPRESS_OFF

enum { ENGINE_DOWN = 0, ENGINE_UP = 1 };

/* Connection pairs per account by default: more are only taken while the servers' slots are free
 * (scheduler/lanes.h), so a queue of accounts keeps one pair each. */
#define ENGINE_CONNS_PER_ACCOUNT 4
/* ... and only when a round trip to one of the servers takes at least this long: near the servers
 * a folder costs little more than its transfer, and more pairs would only add logins. A command's
 * answer time is a round trip at the least (queueing, the server's work and a busy machine only
 * add to it), so one answer under this, to any command, proves a server near (engine_lanes_judge).
 * Proof of a far one takes NOOPs: */
#define ENGINE_LANES_MIN_RTT_MS 10
/* Lane 0 times NOOPs right after its login, one at a time on one connection with nothing else in
 * flight (the server has nothing to do, the engine waits for nothing else), and judges a server far
 * only when none of them came within ENGINE_LANES_MIN_RTT_MS and at least this many took at most
 * half again as long as the quickest: a network's round trip repeats, while a busy machine
 * stretches answers by different amounts each time ... */
#define ENGINE_LANES_FAR_PROBES 3
/* ... and when they spread over at least this long, so that one burst of load (a stalled thread,
 * a server process waiting for a core: tens of ms) cannot stretch them all. 30 ms away, 3 NOOPs
 * take that long; 10 ms away, 8. */
#define ENGINE_LANES_FAR_SPREAD_MS 80
/* NOOPs per server at most (the cost of a jittery link or a machine so loaded that its answers
 * never repeat: 16 round trips once per account); past them the quickest answer alone decides
 * (far, as none came within ENGINE_LANES_MIN_RTT_MS). */
#define ENGINE_LANES_PROBES_MAX 16
/* The folders named to the ledger before a folder's first window (ledger.h windows_ahead): each
 * name costs a scan of the ledger's folders, done once per folder with mail. */
#define ENGINE_AHEAD_MAX 256

/* ---- caps on what the engine builds -------------------------------------------------------------- */
/* One message's flags (and the flags Gmail's labels add): real messages carry a handful of flags
 * and keywords; a flag that would pass the cap is left out whole, never cut. */
#define ENGINE_FLAGS_MAX (64 * 1024)
/* The UID set of one copy window: at most ENGINE_BATCH_MAX UIDs of 10 digits and a comma. */
#define ENGINE_WINDOW_SET_MAX (1 << 20)
/* The UID set of a whole folder (--delete2, verify --deep), as one command: the client's cap on a
 * command's UID set, some 760,000 UIDs of ten digits. What does not fit waits for the next pass
 * (--delete2) or is reported (--deep), never refused late as "command too long". */
#define ENGINE_FOLDER_SET_MAX IMAP_UIDSET_MAX
_Static_assert(ENGINE_WINDOW_SET_MAX <= IMAP_UIDSET_MAX, "a copy window's UID set fits one command");
/* The UIDs verify lists per folder and kind (VERIFY_UIDS_SHOWN of them, then ",..."). */
#define ENGINE_VERIFY_LIST_MAX (1 << 16)
/* The folder names of a UIDVALIDITY-change warning (five at the most, then ", ..."). */
#define ENGINE_UV_NAMES_MAX 4096
/* Copy windows (see plan_windows): 64 messages (--batch), grown up to ENGINE_WINDOW_MAX_MSGS while
 * the window holds less than ENGINE_WINDOW_AUTO_BYTES. */
#define ENGINE_BATCH_DEFAULT	 64
#define ENGINE_WINDOW_MAX_MSGS	 1024
#define ENGINE_WINDOW_AUTO_BYTES (8u << 20)
/* Folder commands pipelined at once on one connection: CREATE/SUBSCRIBE of the folders to make,
 * and STATUS on both sides of a delta pass. 64 short commands and their answers stay within the
 * socket buffers while the commands are still being written, and cost a round trip per 64 folders. */
#define ENGINE_FOLDER_BATCH 64
#define ENGINE_STATUS_BATCH 64
/* Failures (a message or a folder) kept per account for the report: a broken mailbox would fill
 * memory with one per message; past it they are counted, and the log has every one. */
#define ENGINE_FAILURES_KEPT_MAX 1000
/* Bytes of a message's end compared for the padding rule (a destination copy that differs from its
 * source only by line ends or padding at the end): a few lines, enough to see what a server added. */
#define ENGINE_PAD_TAIL 64u

/* ---- the account options' ranges ------------------------------------------------------------- */
/* --batch: a window of 4096 messages is already one large transaction on the destination. */
#define ENGINE_BATCH_MAX 4096
/* --conns-per-account: no provider allows more connections per user (Gmail 15, Microsoft 365 20);
 * also the scheduler's lanes per account. */
#define ENGINE_CONNS_PER_ACCOUNT_MAX 16
/* --maxage/--minage: days; 100,000 (some 270 years) is older than any mail. */
#define ENGINE_AGE_DAYS_MAX 100000

/* The error code of an attempt stopped because the next message would go over a daily budget
 * (class throttled, scope account): the scheduler parks the account until its day is over. */
#define ENGINE_CODE_DAILY_BUDGET "DAILY_BUDGET"

/* Daily budgets of one attempt. limit from the options; used = what the account's current day has
 * used so far, counted on by the engine as it reads bodies from side 0 and appends to side 1 (message
 * sizes). A window of messages is cut where the next message would pass a limit; when not one more
 * message fits, engine_run fails with ENGINE_CODE_DAILY_BUDGET. A message larger than a whole budget
 * is let through at the start of a day (used == 0), or it could never be copied. pending: bytes the
 * engine knows it left to copy when it stopped (the rest of the folder, and the later folders by
 * STATUS SIZE where the source has STATUS=SIZE), for an ETA. */
struct engine_budget {
	uint64_t limit[2][2], used[2][2];
	uint64_t pending;
};

/* Allocates nothing: arrays point into argv. Returns < 0 with err naming the bad option. */
void engine_opts_init(struct engine_opts *o);
int engine_opts_parse(struct engine_opts *o, int argc, char **argv, struct fleet_err *err);
void engine_opts_release(struct engine_opts *o);

/* 1 when the account option `name` (no "=value") takes the next argument as its value. */
int engine_opts_takes_value(const char *name);
/* The table of account options (common/opt.h): what every command that takes account options
 * accepts and lists in --help, with imapsync's no-op aliases (hidden) and refused names. */
struct fleet_optset;
extern const struct fleet_optset engine_opts_optset;

/* The folder filter and rename rules of these options, for folder_map_plan(): preflight, run,
 * sync and verify plan folders through this one function so that they agree. Borrows from o. */
struct fm_filter;
void engine_opts_folder_filter(const struct engine_opts *o, struct fm_filter *filter);

/* The folder name and the reason of a failure kept for the report, and a folder's name in verify's
 * lines: escaped for a terminal and cut (the log has them whole). */
#define ENGINE_REPORT_TEXT_MAX 256

/* One failure worth reporting (a message or a folder). */
struct engine_failure {
	char folder[ENGINE_REPORT_TEXT_MAX];
	uint32_t src_uid;       /* 0 for folder-level failures */
	enum fleet_err_class cls;
	char code[FLEET_ERR_CODE_MAX];
	char reason[ENGINE_REPORT_TEXT_MAX];
};

struct engine_stats {
	unsigned folders_total, folders_created, folders_skipped, folders_unchanged, folders_failed;
	uint64_t msgs_source, msgs_copied, msgs_skipped, msgs_failed, msgs_already, msgs_matched;
	uint64_t bytes_copied, flags_updated, msgs_deleted, flags_dropped;
	/* copied although identity matching could not rule out that the destination holds them
	 * (ambiguous or weak evidence, engine/identity.h): never silently taken as already there */
	uint64_t msgs_ambiguous;
	/* For progress displays: folders looked at so far (of folders_total), and what this attempt
	 * found to copy in them (exact, after the ledger, filters and identity matches); bytes_unlisted
	 * is the STATUS SIZE (RFC 8438) of the folders still to look at, when the source tells it: the
	 * account's bytes to copy are at most bytes_todo + bytes_unlisted. */
	unsigned folders_done;
	uint64_t msgs_todo, bytes_todo, bytes_unlisted;
	uint64_t started_ms, finished_ms;
	int error_side;                  /* when engine_run fails: 0 source, 1 destination, -1 neither */
	unsigned sides_open;             /* bit k: side k's connection opened and logged in (so a failure
	                                  * on side k came after the server answered) */
	struct engine_failure *failures; /* heap, nfailures entries (capped) */
	size_t nfailures;
	size_t nfailures_alloc;
};

/* Several connection pairs for one account (run --conns-per-account): the scheduler runs the
 * account as lanes, each an engine_run in a thread of its own with its own connections and ledger
 * binding, sharing one engine_lanes table. Lane 0 plans the folders and creates them; when it
 * finds the first folder with something to copy it asks for helpers (start). Every lane then goes
 * through the folders in the same order and copies those it claims: a folder is copied by exactly
 * one lane, so its ledger rows and its append window are written exactly as with one connection
 * (the crash rules of design.md section 6 do not change). Helpers create no folders and take none
 * that lane 0 could not create. Helpers are asked for only when the servers are far (a round trip
 * of ENGINE_LANES_MIN_RTT_MS or more, engine_lanes_judge). Not used in Gmail mode, --dry, or with daily
 * budgets. */
/* How far the servers are, for lanes (ENGINE_LANES_MIN_RTT_MS and the rules under it). */
enum engine_distance {
	ENGINE_NEAR = 0, /* an answer came within ENGINE_LANES_MIN_RTT_MS */
	ENGINE_FAR,	 /* no answer did, and ENGINE_LANES_FAR_PROBES NOOPs agree on a round trip of
			    ENGINE_LANES_MIN_RTT_MS or more, over ENGINE_LANES_FAR_SPREAD_MS */
	ENGINE_UNSURE	 /* no answer did, but the NOOPs timed so far do not agree: time more */
};
/* The NOOPs lane 0 timed on one connection, each sent (queued) and answered at, in ms. */
struct engine_probes {
	struct {
		uint64_t sent_ms, done_ms;
	} v[ENGINE_LANES_PROBES_MAX];
	size_t n;
};
/* The rule, per side (index 0 the source, 1 the destination) from all answers on its connection
 * (all, imap_conn_rtt) and from the NOOPs (probes); for both: near when both sides are, far when
 * one is, unsure otherwise. unsure (may be NULL) receives 1 for each side that is unsure. why (cap
 * bytes, may be NULL) receives the figures, for the debug log. Pure. */
enum engine_distance engine_lanes_judge(const struct imap_rtt all[2], const struct engine_probes probes[2],
					int unsure[2], char *why, size_t cap);

struct engine_lanes {
	unsigned lane;  /* 0: the account's first connection pair; 1..: helpers */
	unsigned max;   /* lanes the account may have at most, lane 0 included */
	/* Lane 0 only: up to want more lanes are wanted; returns how many were started (within max,
	 * counting those started before). */
	unsigned (*start)(void *ctx, unsigned want);
	/* 1: this lane copies the source folder (also when it claimed it before), 0: another lane has
	 * it. Thread-safe. */
	int (*claim)(void *ctx, unsigned lane, const char *src_name);
	atomic_int *stop; /* set when a lane failed: the others stop before their next APPEND */
	/* A large folder split by UID range (ENGINE_SPLIT_MIN_WINDOWS windows or more, far servers,
	 * a destination with UIDPLUS): the lane that copies the folder offers its windows (split_offer:
	 * the engine's own description of them and how many there are) and takes them one at a time
	 * like everyone else. A lane with no folder of its own left joins a split offered by another
	 * (split_join: the description, NULL when none has windows left), takes windows (split_take:
	 * the next window's number, -1 when none is left) and leaves it (split_leave). Each window is
	 * copied by exactly one lane, its append window recorded in that lane's own ledger pair (the
	 * crash rules of design.md section 6 hold per window). split_close: the offering lane gives out
	 * no more windows and waits until every lane that joined has left, before it closes the folder
	 * and frees the description. A lane that joined counts as having claimed a folder. A joined
	 * lane that fails leaves with failed = 1 when the account can go on without it (not a stop,
	 * not a lost lease): its failure stops no other lane and is not the account's; the offering
	 * lane reads the folder again once all have left (the failed lane's open window matched) and
	 * copies what is left. May be NULL (no splitting). Thread-safe. */
	int (*split_offer)(void *ctx, void *split, size_t nwin); /* 0, or -1: not split */
	void *(*split_join)(void *ctx, unsigned lane);
	long (*split_take)(void *ctx, void *split);
	void (*split_leave)(void *ctx, void *split, unsigned lane, int failed);
	/* Lane 0, optional (NULL: not offered): on = 1 before a folder's metadata is read when its
	 * STATUS says it will be split, so that the helpers it starts then log in meanwhile and wait
	 * in split_join for the split instead of ending; on = 0 once that folder is done (always
	 * called after on = 1, whatever happened). */
	void (*split_expect)(void *ctx, int on);
	size_t (*split_close)(void *ctx, void *split); /* the windows given out */
	void *ctx;
};

/* A folder is split between connection pairs when it has at least this many copy windows. */
#define ENGINE_SPLIT_MIN_WINDOWS 2

struct engine_job {
	const char *label;              /* "user01@src -> user01@dst", for logs */
	struct engine_side side[2];     /* [0] source, [1] destination */
	const struct engine_opts *opts;
	struct ledger ledger;
	atomic_int *cancel;             /* set to non-zero (any thread, or a signal handler: lock-free):
	                                 * stop before the next APPEND */
	struct engine_budget *budget;   /* daily budgets (NULL: none); the engine adds to used */
	/* Progress callback (may be NULL): called with the running totals after each batch, and when
	 * a folder has been listed and when it is finished. */
	void (*progress)(void *ctx, const struct engine_stats *st);
	void *progress_ctx;
	const struct engine_lanes *lanes; /* NULL: one connection per side */
};

/* Runs the job. Returns 0 when the account is complete (every source message copied or
 * accounted for), > 0 when it finished with message or folder failures (see stats), < 0 when the
 * account could not be migrated now (err says why and whether to retry). */
int engine_run(const struct engine_job *job, struct engine_stats *stats, struct fleet_err *err);
void engine_stats_release(struct engine_stats *st);
/* Adds a helper lane's stats to the account's (lane 0's): counters summed, failures appended, the
 * folder totals and the STATUS estimate (bytes_unlisted) kept from lane 0, the later end time. */
void engine_stats_add_lane(struct engine_stats *acc, const struct engine_stats *lane);

/* ---- verify: both servers compared with each other and with the ledger (read only) ---------- */

/* One ledger row as verify reads it (strings valid during the callback only). */
struct verify_ledger_row {
	uint32_t src_uid, dst_uid; /* dst_uid 0: unknown */
	uint64_t size;
	const char *internaldate;
	const uint8_t *sha256;     /* NULL when not recorded */
	enum ledger_msg_state state;
};
typedef int (*verify_row_cb)(void *cbctx, const struct verify_ledger_row *row);

/* What verify reads from the ledger of the account's migration (scheduler/ binds the state). */
struct verify_reader {
	/* Returns 1 and fills the ids when the folder is known, 0 when not. */
	int (*folder)(void *ctx, const char *src_name, int64_t *folder_id, uint32_t *dst_uidvalidity,
		      struct fleet_err *err);
	/* Every row of (folder, src_uidvalidity) in source UID order. */
	int (*rows)(void *ctx, int64_t folder_id, uint32_t src_uidvalidity, verify_row_cb cb, void *cbctx,
		    struct fleet_err *err);
	void *ctx;
};

#define VERIFY_UIDS_SHOWN 50 /* UIDs listed per folder and kind; the counts are always complete */

struct verify_folder {
	char name[ENGINE_REPORT_TEXT_MAX];
	uint32_t on_source, on_destination;
	uint32_t missing, extra, altered, flags, dates, skipped;
	char *missing_uids, *extra_uids, *altered_uids; /* "1,2,5" (source UIDs; extra: destination
							 * UIDs), at most VERIFY_UIDS_SHOWN each; heap */
	char error[ENGINE_REPORT_TEXT_MAX];              /* the folder could not be read: why */
};

struct verify_result {
	int pass;                        /* 1 PASS, 0 FAIL */
	uint64_t on_source, on_destination, missing, extra, altered, flags, dates, skipped;
	unsigned folders_failed;
	struct verify_folder *folders;   /* heap, nfolders */
	size_t nfolders, alloc;
	uint64_t started_ms, finished_ms;
};
void verify_result_release(struct verify_result *r);

/* Compares the account: per folder STATUS, EXAMINE and UID FETCH (RFC822.SIZE INTERNALDATE FLAGS) on
 * both servers, paired through the ledger's destination UIDs (else size and INTERNALDATE), and with
 * the ledger. deep: also fetches every paired destination body and checks it against the ledger's
 * SHA-256. Changes nothing on either server (EXAMINE only, BODY.PEEK). PASS when nothing is missing,
 * extra, altered or of another date (flag differences are reported, users change flags). Returns 0
 * with *r filled, < 0 when the account could not be read (err: login, connection ...). job->ledger
 * is not used. */
int engine_verify(const struct engine_job *job, const struct verify_reader *rd, int deep, struct verify_result *r,
		  struct fleet_err *err);

#endif

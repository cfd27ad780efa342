/* ops/preflight.h: `imapfleet preflight`, the read-only check of a whole accounts file an
 * administrator runs before a migration (design section 1; docs/preflight.md). One side's login
 * check, which is all `probe` does, is ops/probe.h.
 *
 * preflight_run() checks every row of an accounts file in parallel (a small thread pool, each
 * thread one account, both sides' servers bounded by a host_limiter): both logins, the
 * capabilities that matter, the source's folders, message count and total size, the
 * destination's quota and whether the source mail fits, messages larger than the destination's
 * APPENDLIMIT or --maxsize, and folder names the destination cannot take. It prints one go/no-go
 * line per account in file order and writes a CSV of the same.
 *
 * Read-only, on both sides: the commands sent are CAPABILITY, ID, NAMESPACE, LIST, LSUB, STATUS,
 * EXAMINE, UID SEARCH, UID FETCH (RFC822.SIZE), GETQUOTAROOT and LOGOUT. Nothing is selected
 * read-write, created, appended, stored or expunged, so no flag (\Seen, \Recent) changes either.
 *
 * Secrets: passwords are read through accounts_row_load_passwords() (registered for redaction)
 * and never printed; they go nowhere but the login command.
 */
#ifndef IMAPFLEET_OPS_PREFLIGHT_H
#define IMAPFLEET_OPS_PREFLIGHT_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "engine/folder_map.h"
#include "io/imap.h"
#include "ops/probe.h"

/* ---- folder names -------------------------------------------------------------------------------- */

/* Whether the destination can take dst_name (the translation of src_name, see
 * folder_map_translate) as it is. Returns 1 and a reason in why when not: a source component
 * holds the destination's separator (renamed to '_'), a component holds '/' (Office 365 and
 * Exchange refuse it), a component begins or ends with a space or is empty, a control character,
 * or a name that is not valid modified UTF-7 on the source (bad_wire). 0 when fine. Pure. */
int preflight_name_problem(const char *src_name, const struct fm_namespace *src_ns, const char *dst_name,
			   char dst_delim, int bad_wire, char *why, size_t cap);

/* ---- defaults and caps --------------------------------------------------------------------------- */
/* Accounts checked at once, and connections per server (host:port) and side, when not given: a
 * check is a login and a few commands per account; eight at once keep it short and stay below the
 * per-IP limits of hosted servers (see SCHEDULER_CONNS_PER_HOST). */
#define PREFLIGHT_WORKERS	 8u
#define PREFLIGHT_CONNS_PER_HOST 8u
/* Connect and I/O timeout per command when not given: an account whose server has not answered a
 * command in 30 s is reported NO-GO for it, and the check goes on with the others. */
#define PREFLIGHT_TIMEOUT_MS 30000u
/* STATUS commands in flight at once on one connection (pipelined): 32 short answers stay within
 * the socket buffers while the commands are being written. */
#define PREFLIGHT_STATUS_WINDOW 32
/* Folder-name problems listed per account in the output; the rest are counted (the log has all). */
#define PREFLIGHT_NAMES_SHOWN 5
/* The UID set of one UID FETCH RFC822.SIZE of the messages over the destination's size limit:
 * some 6,000 UIDs, far below IMAP_CMD_MAX; past it the count is kept and the biggest message is
 * the biggest of those fetched (the account is marked partial). */
#define PREFLIGHT_UIDSET_MAX (64 * 1024)
/* A side's TLS column ("TLSv1.3 NOT verified (insecure; verification would fail: ...)", or the
 * connection's error) and the quota line ("fits (quota 2.0 GB, 1.1 GB used, 0.9 GB free after)"):
 * the fixed words and a verify result or error message of common length; cut past it. */
#define PREFLIGHT_TLS_TEXT_MAX 300
#define PREFLIGHT_FIT_TEXT_MAX 300

/* ---- the whole accounts file --------------------------------------------------------------------- */

struct preflight_config {
	const char *accounts_path;
	unsigned accounts_flags;     /* accounts_load() flags (ACCOUNTS_STRICT) */
	unsigned workers;	     /* accounts checked at once; 0 = PREFLIGHT_WORKERS */
	unsigned max_conns_per_host; /* per server (host:port); 0 = PREFLIGHT_CONNS_PER_HOST */
	int argc;		     /* side settings (--cafile1 --insecure2 --tls1 --authuser2 ...) and
					account options (--maxsize --folder --exclude ...) for every row;
					the row's own columns and options come after and win */
	char **argv;
	unsigned timeout_ms;  /* connect and I/O timeout per command; 0 = PREFLIGHT_TIMEOUT_MS */
	int fetch_sizes;      /* count sizes with UID FETCH RFC822.SIZE even when STATUS=SIZE is offered */
	int verbose;	      /* also print each side's TLS and capabilities line */
	FILE *out;	      /* where the lines go (NULL = stdout) */
	const char *csv_path; /* NULL = "preflight.csv" */
};

void preflight_config_init(struct preflight_config *cfg);

struct preflight_summary {
	unsigned accounts; /* rows checked plus bad rows */
	unsigned go, nogo; /* nogo includes bad rows */
	unsigned warned;   /* GO accounts with warnings */
	unsigned bad_rows;
	uint64_t messages, bytes; /* over the accounts whose source could be counted */
	uint64_t started_ms, finished_ms;
};

/* Checks every row and writes the lines and the CSV. Returns 0 when every account is GO, 1 when
 * at least one is NO-GO (a bad row counts as one), -1 when the check could not run: the accounts
 * file is unusable (err code ACCOUNTS_FILE), an option for every row is wrong (code USAGE), or the
 * CSV cannot be written (code CSV_WRITE). Lines are printed in file order as accounts finish. */
int preflight_run(const struct preflight_config *cfg, struct preflight_summary *sum, struct fleet_err *err);

#endif

/* cli/usage.c: the first lines of every command's --help, in one place beside docs/imapfleet.1
 * (the options that follow come from the commands' tables). */
#include "cli/usage.h"

const char cli_usage_preflight[] =
    "usage: imapfleet preflight ACCOUNTS.csv [options] [-- account options for every row]\n"
    "checks every account pair without changing anything: both logins, TLS and certificates,\n"
    "capabilities, folders, messages and size, destination quota, oversize messages, folder names\n"
    "(side settings: the row's columns win; account options such as --maxsize, --folder,\n"
    "--include, --exclude, --noautomap narrow what is counted)\n"
    "exit status: 0 every account GO, 7 at least one NO-GO, 2 bad command line or accounts file\n";

const char cli_usage_probe[] =
    "usage: imapfleet probe --host H [--port P] [--ssl|--tls|--plain] [--cafile F] [--insecure]\n"
    "                       [--user U --passfile F | --tokenfile F | --tokencmd C] [--authuser A]\n"
    "connects, shows the greeting, the TLS version and cipher, the certificate and whether it\n"
    "verifies (with --insecure: what verification would say), the capabilities before and after\n"
    "login, and the login result; without --user: connect and TLS only\n"
    "exit status: 0 ok, 5 connection or TLS failed, 6 login refused, 2 bad command line\n";

const char cli_usage_sync[] =
    "usage: imapfleet sync --host1 H --user1 U --passfile1 F --host2 H --user2 U --passfile2 F [options]\n"
    "migrates one account pair (imapsync's option names); with --oauth1/2 and no secret, the\n"
    "tenant credentials give the tokens (see imapfleet(1), OAuth 2.0)\n";

const char cli_usage_verify[] =
    "usage: imapfleet verify [ACCOUNTS.csv] [--state URL] [--account ID] [--failed] [--deep] [--manifest F]\n"
    "  compares every account of the run (the file's, else the newest run) on both servers, folder\n"
    "  by folder (EXAMINE, UID FETCH of RFC822.SIZE INTERNALDATE FLAGS), and with the ledger; prints\n"
    "  PASS or FAIL per account with the folders and UIDs at fault, and records it in the state.\n"
    "  Changes nothing on either server.\n"
    "exit status: 0 every account PASS, 1 some FAIL (or could not be verified), 2 usage, 3 state store\n";

const char cli_usage_report[] =
    "usage: imapfleet report [--state URL] [--run ID] [--format csv|json|html|all] [--out DIR]\n"
    "       [--title TEXT] [--watch SECONDS]\n"
    "  writes the report of a run (default: the active run, else the newest) into DIR\n"
    "  (default ./" REPORT_DEFAULT_DIR "): accounts.csv and failures.csv (csv), accounts.json\n"
    "  (json), report.html (html: one self-contained page); see docs/reports.md\n"
    "  --watch N rewrites them every N seconds while the run goes on and stops when it ends\n";

const char cli_usage_run[] =
    "usage: imapfleet run ACCOUNTS.csv [options] [-- account options for every row]\n"
    "migrates every account pair of the file; run it again to resume or for a delta pass\n";

const char cli_usage_worker[] =
    "usage: imapfleet worker [options] [-- account options for every row]\n"
    "joins the active run in the state store from this host\n";

const char cli_usage_status[] =
    "usage: imapfleet status [--state URL] [--run ID] [--state STATE[,STATE]] [--server HOST[:PORT]]\n"
    "                        [--limit N] [--offset N | --page N] [--json]\n"
    "  every run of the state store, then a page of the accounts of the run (default: the active\n"
    "  run, else the newest); read-only, works while a run is going and from any host\n"
    "  --state STATES also filters: only accounts in these states (queued, running, done, failed,\n"
    "  cancelled, partial; a comma-separated list; a value that is not a URL is a state)\n";

const char cli_usage_retry[] =
    "usage: imapfleet retry [--state URL] [--run ID] (--failed | --account ID|USER|USER@HOST)\n"
    "  requeues accounts with their attempts reset; what was copied stays copied. Then run\n"
    "  'imapfleet run ACCOUNTS.csv' again (or 'imapfleet worker') to migrate them\n"
    "exit status: 0 when something was requeued, 1 when nothing matched\n";

const char cli_usage_cancel[] =
    "usage: imapfleet cancel [--state URL] [--run ID] (--account ID|USER|USER@HOST | --failed | --all)\n"
    "  cancels accounts: not run by this pass (a running one stops at its next write) nor by later\n"
    "  ones; what was copied stays copied and counted. 'imapfleet retry --account ID' undoes it\n"
    "exit status: 0 when something was cancelled, 1 when nothing matched\n";

const char cli_usage_verify_manifest[] =
    "usage: imapfleet verify-manifest FILE --pubkey K\n"
    "  checks a manifest written by 'imapfleet verify --manifest FILE' offline: its Ed25519\n"
    "  signature over every byte of it, with the public key K\n"
    "exit status: 0 when it verifies, 1 when it does not, 2 usage or unreadable key or file\n";

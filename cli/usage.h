/* cli/usage.h: the "usage: ..." lines of each command's --help (cli/usage.c). */
#ifndef IMAPFLEET_CLI_USAGE_H
#define IMAPFLEET_CLI_USAGE_H

/* where `imapfleet report` writes when --out is not given */
#define REPORT_DEFAULT_DIR "imapfleet-report"

extern const char cli_usage_preflight[];
extern const char cli_usage_probe[];
extern const char cli_usage_sync[];
extern const char cli_usage_verify[];
extern const char cli_usage_report[];
extern const char cli_usage_run[];
extern const char cli_usage_worker[];
extern const char cli_usage_status[];
extern const char cli_usage_retry[];
extern const char cli_usage_cancel[];
extern const char cli_usage_verify_manifest[];

#endif

/* Fuzz target: the accounts-file importer on arbitrary bytes (CSV, file.txt, or neither).
 * It must not crash, hang or leak; the result is checked for basic consistency. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts/accounts.h"
#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fleet_err err;
	struct accounts_file *af;
	static FILE *devnull;

	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		fleet_log_set_sink(devnull);
	}
	af = accounts_parse_buffer((const char *)data, size, "fuzz.csv", "/nonexistent",
				   ACCOUNTS_NO_FS_CHECKS, &err);
	if (af) {
		for (size_t i = 0; i < accounts_count(af); i++) {
			const struct account_row *row = accounts_row(af, i);

			if (!row->key || !row->argv || row->argv[row->argc] || !row->side[0].host ||
			    !row->side[1].user || row->side[0].port == 0 || row->side[1].port > 65535)
				abort();
		}
		for (size_t i = 0; i < accounts_error_count(af); i++)
			if (!accounts_error_at(af, i)->message || accounts_error_at(af, i)->line == 0)
				abort();
		accounts_free(&af);
	}
	/* Strict mode logs every error; keep it quiet but exercised. */
	af = accounts_parse_buffer((const char *)data, size, "fuzz.csv", NULL,
				   ACCOUNTS_NO_FS_CHECKS | ACCOUNTS_STRICT, &err);
	accounts_free(&af);
	fleet_log_clear_secrets();
	return 0;
}

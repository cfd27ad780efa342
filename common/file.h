/* common/file.h: the one way imapfleet writes a file that holds personal data (reports,
 * preflight.csv, logs' folders).
 *
 * fleet_file_mkdirs makes every missing folder of a path with the given mode (0700 for anything
 * with personal data). fleet_file_atomic_open creates a temporary file beside the target with
 * O_CREAT|O_EXCL|O_NOFOLLOW (so a planted link or file is never written through), mode 0600;
 * fleet_file_atomic_commit flushes, closes and renames it over the target, so a reader sees the
 * old file or the whole new one, never half; fleet_file_atomic_abort removes it. Errors are
 * FLEET_ERR_PERMANENT, scope run, code FLEET_FILE_ERR_WRITE, naming the path and the reason.
 * Thread-safe for distinct targets.
 */
#ifndef IMAPFLEET_COMMON_FILE_H
#define IMAPFLEET_COMMON_FILE_H

#include <stdio.h>
#include <sys/types.h>

#include "common/err.h"

#define FLEET_FILE_ERR_WRITE "FILE_WRITE"
#define FLEET_FILE_MODE_PRIVATE 0600 /* files with personal data */
#define FLEET_DIR_MODE_PRIVATE 0700  /* folders that hold them */

struct fleet_file_atomic {
	FILE *f;    /* write here between open and commit */
	char *path; /* the target (heap) */
	char *tmp;  /* the temporary file beside it (heap) */
};

/* Makes path and its missing parents with mode; 0, or -1 with errno set. */
int fleet_file_mkdirs(const char *path, mode_t mode);
/* 0 with a->f open on a new temporary file, or -1 with err set (a is then empty). */
int fleet_file_atomic_open(struct fleet_file_atomic *a, const char *path, struct fleet_err *err);
/* Flushes, closes, renames over the target. 0, or -1 with err set (the temporary file removed). */
int fleet_file_atomic_commit(struct fleet_file_atomic *a, struct fleet_err *err);
/* Closes and removes the temporary file. Safe after a failed open or a commit. */
void fleet_file_atomic_abort(struct fleet_file_atomic *a);

#endif

/* tests/unit/labpg.h: the PostgreSQL server of the unit tests that need one (included by them only).
 *
 * IMAPFLEET_TEST_PG, else LAB_PG_URL from $LAB_DIR/lab.env (default $top_srcdir/.lab/lab.env);
 * NULL without either (the test program then skips whole). Heap string. */
#ifndef IMAPFLEET_TESTS_LABPG_H
#define IMAPFLEET_TESTS_LABPG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "tests/unit/unit.h"

static char *labpg_url(void)
{
	const char *env = getenv("IMAPFLEET_TEST_PG");
	const char *labdir = getenv("LAB_DIR");
	const char *top = getenv("top_srcdir");
	char path[1024], line[2048];
	char *url = NULL;
	FILE *f;

	if (env && *env)
		return xstrdup(env);
	if (labdir && *labdir)
		snprintf(path, sizeof(path), "%s/lab.env", labdir);
	else
		snprintf(path, sizeof(path), "%s/.lab/lab.env", top && *top ? top : IMAPFLEET_SRCDIR);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "LAB_PG_URL=");

		if (!p)
			continue;
		p += strlen("LAB_PG_URL=");
		p[strcspn(p, "\r\n")] = '\0';
		if (*p == '"' || *p == '\'') {
			size_t n = strlen(p);

			if (n >= 2 && p[n - 1] == p[0])
				p[n - 1] = '\0';
			p++;
		}
		url = xstrdup(p);
		break;
	}
	fclose(f);
	return url;
}

/* labpg_run(&URL, NAME, TESTS, SETUP, TEARDOWN): main of a program that needs the server: *URL
 * set from labpg_url, then the group run (log level warn) with TAP output; the whole program
 * skipped without a server. What main returns. */
#define labpg_run(url, name, tests, setup, teardown)                                                           \
	((*(url) = labpg_url()) == NULL ? unit_skip("no PostgreSQL (set IMAPFLEET_TEST_PG or start the lab)")  \
					: (fleet_log_set_level(FLEET_LOG_WARN), unit_run(name, tests, setup, teardown)))

#endif

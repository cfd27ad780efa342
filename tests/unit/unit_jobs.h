/* tests/unit/unit_jobs.h: N job rows for state_job_upsert_many, each with its own user (test_state and
 * tests/tools/claimbench; included by them only). */
#ifndef IMAPFLEET_TESTS_UNIT_JOBS_H
#define IMAPFLEET_TESTS_UNIT_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "state/state.h"

struct unit_jobs {
	size_t n;
	struct state_job_spec *specs; /* n rows */
	char **users;		      /* the rows' user1 = user2, owned here */
	int64_t *ids;		      /* n, for state_job_upsert_many to fill */
};

/* N rows like ROW (its user1 and user2 are not read), row i's user PREFIX, i zero-padded to WIDTH
 * digits (0: as it is), SUFFIX: ("user", 0, "@example.org") makes user0@example.org, user1@... */
static inline void unit_jobs_make(struct unit_jobs *j, size_t n, const struct state_job_spec *row,
				  const char *prefix, int width, const char *suffix)
{
	j->n = n;
	j->specs = xcalloc(n, sizeof(*j->specs));
	j->users = xcalloc(n, sizeof(*j->users));
	j->ids = xcalloc(n, sizeof(*j->ids));
	for (size_t i = 0; i < n; i++) {
		j->users[i] = xasprintf("%s%0*zu%s", prefix, width, i, suffix);
		j->specs[i] = *row;
		j->specs[i].user1 = j->specs[i].user2 = j->users[i];
	}
}

static inline void unit_jobs_release(struct unit_jobs *j)
{
	for (size_t i = 0; i < j->n; i++)
		xfree(&j->users[i]);
	xfree(&j->users);
	xfree(&j->specs);
	xfree(&j->ids);
}

#endif

/* tests/unit/unit.h: what the unit test programs share (included by them only, after cmocka.h):
 * running the group with TAP output, skipping a whole program, and a substring assert. */
#ifndef IMAPFLEET_TESTS_UNIT_H
#define IMAPFLEET_TESTS_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ARRAY_LEN(A): the number of elements of the array A (a table of cases). */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* unit_run(NAME, TESTS, SETUP, TEARDOWN): runs the group TESTS (an array of CMUnitTest) with TAP
 * output; what main returns. */
#define unit_run(name, tests, setup, teardown)                                                                 \
	(cmocka_set_message_output(CM_OUTPUT_TAP), cmocka_run_group_tests_name((name), (tests), (setup), (teardown)))

/* unit_skip(WHY): prints the TAP plan of a program that skips whole ("1..0 # SKIP WHY"); returns 0,
 * what main returns then. */
static inline int unit_skip(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	return 0;
}

/* unit_rm_rf(DIR): removes the test's temporary folder DIR with all in it; 0, or -1 when that failed. */
static inline int unit_rm_rf(const char *dir)
{
	char cmd[1100];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* assert_contains(HAY, NEEDLE): fails at the caller's line, showing both, unless NEEDLE is a
 * substring of HAY (a NULL HAY fails too). */
#define assert_contains(hay, needle) unit_assert_contains((hay), (needle), __FILE__, __LINE__)
static inline void unit_assert_contains(const char *hay, const char *needle, const char *file, int line)
{
	if (hay && strstr(hay, needle))
		return;
	print_error("ERROR: \"%s\" does not contain \"%s\"\n", hay ? hay : "(null)", needle);
	_fail(file, line);
}

/* unit_run_rows(PROG, TESTS, ROWS, FN, TEARDOWN, SETUP, GROUP_TEARDOWN): unit_run of the tests TESTS
 * followed by one test per row of the table ROWS (rows that start with `const char *name`): each is
 * named by its row and runs FN, then TEARDOWN (or NULL), with the row as its state; PROG, SETUP and
 * GROUP_TEARDOWN as unit_run takes them. */
#define unit_run_rows(prog, tests, rows, fn, teardown, setup, group_teardown)                                 \
	__extension__({                                                                                        \
		struct CMUnitTest unit_all_[ARRAY_LEN(tests) + ARRAY_LEN(rows)];                               \
		size_t unit_n_ = 0;                                                                            \
                                                                                                               \
		for (size_t unit_i_ = 0; unit_i_ < ARRAY_LEN(tests); unit_i_++)                                \
			unit_all_[unit_n_++] = (tests)[unit_i_];                                               \
		for (size_t unit_i_ = 0; unit_i_ < ARRAY_LEN(rows); unit_i_++)                                 \
			unit_all_[unit_n_++] = (struct CMUnitTest){(rows)[unit_i_].name, (fn), NULL, (teardown),  \
								   (void *)&(rows)[unit_i_]};                  \
		unit_run((prog), unit_all_, (setup), (group_teardown));                                        \
	})

#endif

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

/* One row of a data file under tests/data: up to UNIT_ROW_FIELDS fields, each with its length (a field
 * may hold NUL bytes) and always NUL-terminated; LINE is the row's line in the file. */
#define UNIT_ROW_FIELDS 8
struct unit_row {
	char *f[UNIT_ROW_FIELDS];
	size_t len[UNIT_ROW_FIELDS];
	int nf, line;
};

/* unit_unescape(S, N, OUT): writes the field S (N bytes) into OUT with its escapes read as in C (\\ \" \t
 * \r \n \0 \xHH); the number of bytes written (OUT holds N + 1 bytes at least, and is NUL-terminated). */
static inline size_t unit_unescape(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\' || i + 1 >= n) {
			out[o++] = s[i];
			continue;
		}
		switch (s[++i]) {
		case 't': out[o++] = '\t'; break;
		case 'r': out[o++] = '\r'; break;
		case 'n': out[o++] = '\n'; break;
		case '0': out[o++] = '\0'; break;
		case 'x': {
			char hex[3] = {i + 1 < n ? s[i + 1] : 0, i + 2 < n ? s[i + 2] : 0, 0};

			out[o++] = (char)strtoul(hex, NULL, 16);
			i += 2;
			break;
		}
		default: out[o++] = s[i]; break;
		}
	}
	out[o] = '\0';
	return o;
}

/* unit_read_rows(NAME, ROWS): reads tests/data/NAME below the source tree: one row a line, its fields
 * separated by TABs and written with C escapes (unit_unescape); empty lines and lines starting with '#'
 * are skipped. Sets *ROWS (free with unit_free_rows) and returns the number of rows; fails the test when
 * the file cannot be read or has no row. */
static inline size_t unit_read_rows(const char *name, struct unit_row **rows)
{
	char path[1024], *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t got;
	int lineno = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/tests/data/%s", IMAPFLEET_SRCDIR, name);
	fp = fopen(path, "r");
	if (!fp)
		fail_msg("cannot read %s", path);
	*rows = NULL;
	while ((got = getline(&line, &cap, fp)) != -1) {
		struct unit_row *r;
		const char *p = line;

		lineno++;
		if (got > 0 && line[got - 1] == '\n')
			line[--got] = '\0';
		if (got == 0 || line[0] == '#')
			continue;
		*rows = realloc(*rows, (n + 1) * sizeof(**rows));
		assert_non_null(*rows);
		r = &(*rows)[n++];
		memset(r, 0, sizeof(*r));
		r->line = lineno;
		while (r->nf < UNIT_ROW_FIELDS) {
			const char *tab = memchr(p, '\t', (size_t)(line + got - p));
			size_t len = tab ? (size_t)(tab - p) : (size_t)(line + got - p);

			r->f[r->nf] = malloc(len + 1);
			assert_non_null(r->f[r->nf]);
			r->len[r->nf] = unit_unescape(p, len, r->f[r->nf]);
			r->nf++;
			if (!tab)
				break;
			p = tab + 1;
		}
	}
	free(line);
	fclose(fp);
	if (n == 0)
		fail_msg("%s has no rows", path);
	return n;
}

/* unit_free_rows(ROWS, N): frees what unit_read_rows returned. */
static inline void unit_free_rows(struct unit_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < rows[i].nf; k++)
			free(rows[i].f[k]);
	free(rows);
}

#endif

/* common/opt.h: the one option model of every command line and of the accounts file's options.
 *
 * Each module that owns options describes them in a table of struct fleet_opt (name, whether it
 * takes a value, whether it is per side, help text): the commands in cli/, the side settings in
 * accounts/ (accounts_side_optsets), the account options in engine/ (engine_opts_optset). A parser
 * is handed the tables it accepts; fleet_opt_parse() walks the words once, hands every recognised
 * option (and every operand) to a callback, and reports every problem at once: unknown options
 * each with a "did you mean" (`--cafile` -> `--cafile1/--cafile2`, `--dry-run` -> `--dry`), options
 * without their value, values given to flags, refused imapsync options with what to use instead,
 * and bad values the callback names. fleet_opt_help() prints `--help` from the same tables.
 *
 * Written forms: `--name VALUE` or `--name=VALUE` for an option that takes a value (a VALUE may
 * start with "-", but the next word is never taken when it is itself a known option); per-side
 * options are written `--name1`/`--name2` (both sides) or `--name` (one side: probe). After a
 * word "--" (when FLEET_OPT_DASHDASH) every word is an operand.
 *
 * Thread-safety: tables are constant; the functions keep no state.
 */
#ifndef IMAPFLEET_COMMON_OPT_H
#define IMAPFLEET_COMMON_OPT_H

#include <stddef.h>
#include <stdio.h>

#include "common/err.h"

/* The defaults one help text shows (struct fleet_opt_default): "default N, growing to M while
 * under K MB" is the most any row needs. */
#define FLEET_OPT_DEFAULTS_MAX 3

enum fleet_opt_flag {
	FLEET_OPT_VALUE = 1 << 0,   /* takes a value: the next word, or --name=VALUE */
	FLEET_OPT_SIDE = 1 << 1,    /* per side: --name1 / --name2 (--name where there is one side) */
	FLEET_OPT_HIDDEN = 1 << 2,  /* accepted, not listed by --help (aliases, imapsync's no-ops); help
				     * is then the owner's own text (the engine's note) */
	FLEET_OPT_REFUSED = 1 << 3, /* imapsync's, means something else here: always an error; help says
				     * what to use instead */
};

struct fleet_opt {
	const char *name; /* "--workers"; per side the base: "--cafile" */
	unsigned flags;	  /* enum fleet_opt_flag */
	int id;		  /* the owner's switch value */
	const char *arg;  /* the value's name in --help ("N", "URL"); NULL for a flag */
	const char *help; /* --help text; '\n' continues on an indented line; "{}" shows a default (below) */
};

/* The numbers the help text of the row with this id shows for its "{}" marks, in order. Each is
 * the named constant that sets the default (or a value computed from it), never a copy of its
 * number: a changed default cannot leave --help wrong. */
struct fleet_opt_default {
	int id;
	long long v[FLEET_OPT_DEFAULTS_MAX];
};

struct fleet_optset {
	const char *title; /* heading in --help ("per side (1 = source, 2 = destination):"), or NULL */
	const struct fleet_opt *opts;
	size_t n;
	const struct fleet_opt_default *defaults; /* the rows' defaults by id, or NULL */
	size_t ndefaults;
};

#define FLEET_OPTSET(title_, table_)                                                                         \
	{                                                                                                    \
		.title = (title_), .opts = (table_), .n = sizeof(table_) / sizeof((table_)[0])               \
	}
/* An optset whose help texts show defaults: DEFAULTS_ is an array of struct fleet_opt_default. */
#define FLEET_OPTSET_DEFAULTS(title_, table_, defaults_)                                                     \
	{                                                                                                    \
		.title = (title_), .opts = (table_), .n = sizeof(table_) / sizeof((table_)[0]),              \
		.defaults = (defaults_), .ndefaults = sizeof(defaults_) / sizeof((defaults_)[0])             \
	}

/* One option or operand found by fleet_opt_parse. */
struct fleet_opt_hit {
	const struct fleet_opt *opt; /* NULL for an operand */
	size_t set;		     /* index of opt's table in sets */
	int side;		     /* 0 or 1 for a per-side option, else -1 */
	const char *value;	     /* the value (borrowed from argv), or NULL */
	int dashdash;		     /* an operand that came after "--" */
	char **words;		     /* the words the hit took (the option and, unless =VALUE, its value) */
	int nwords;		     /* 1 or 2 */
};

/* Called for each hit in order. Returns 0, or -1 with a one-line reason in why ("'x' is not a
 * number from 1 to 1024"); parsing goes on and the reason is reported with the others. */
typedef int (*fleet_opt_fn)(void *ctx, const struct fleet_opt_hit *hit, char *why, size_t whycap);

enum fleet_opt_parse_flag {
	FLEET_OPT_TWO_SIDES = 1 << 0, /* per-side options carry 1 or 2 (else unnumbered: one side) */
	FLEET_OPT_DASHDASH = 1 << 1,  /* "--" ends the options: the rest are operands */
	FLEET_OPT_NO_OPERANDS = 1 << 2, /* a word without "--" after an unknown option is its value */
};

/* Parses argv[0..argc). A word "-h" or "--help" is a hit of the option "--help" when a table
 * has it. Returns 0, or -1 with err (permanent, account scope, code FLEET_OPT_ERR_USAGE) listing
 * every problem: "unknown options '--cafile' (did you mean --cafile1/--cafile2?), '--dry-run'
 * (did you mean --dry?); option --state needs a value". what names the options in the message
 * ("option", "account option"). */
int fleet_opt_parse(const struct fleet_optset *sets, size_t nsets, unsigned flags, const char *what, int argc,
		    char **argv, fleet_opt_fn fn, void *ctx, struct fleet_err *err);

/* The option that word names (without any "=VALUE"), or NULL; *side_out gets 0/1 for a per-side
 * option, else -1; *set_out (may be NULL) its table. */
const struct fleet_opt *fleet_opt_find(const struct fleet_optset *sets, size_t nsets, unsigned flags,
				       const char *word, int *side_out, size_t *set_out);

/* "did you mean" for an unknown word: writes the nearest known name(s) into out ("--cafile1/--cafile2",
 * "--dry") and returns the option, or NULL when nothing is near. */
const struct fleet_opt *fleet_opt_suggest(const struct fleet_optset *sets, size_t nsets, unsigned flags,
					  const char *word, char *out, size_t cap);

/* Prints every listed option of the tables: the title of each, then "  --name ARG   help", each "{}"
 * of the help as the next of its row's defaults (a "{}" without one stays as it is). */
void fleet_opt_help(FILE *out, const struct fleet_optset *sets, size_t nsets, unsigned flags);

#define FLEET_OPT_ERR_USAGE FLEET_ERR_CODE_USAGE

/* The longest option name looked up: longer words are simply unknown. */
#define FLEET_OPT_NAME_MAX 64
/* The problems of one command line, reported at once (unknown options, then the others); a list
 * longer than this is cut, and says so. */
#define FLEET_OPT_PROBLEMS_MAX 4096

#endif

/* common/opt.c: the table-driven option parser, "did you mean" and --help (see opt.h). */
#include "common/opt.h"

#include <stdarg.h>
#include <string.h>

#include "common/buf.h"

/* The name part of word ("--x=1" -> "--x") into name; 0, or -1 when too long. */
static int name_of(const char *word, char *name, size_t cap)
{
	size_t len = strcspn(word, "=");

	if (len >= cap)
		return -1;
	memcpy(name, word, len);
	name[len] = '\0';
	return 0;
}

static const struct fleet_opt *lookup(const struct fleet_optset *sets, size_t nsets, unsigned flags,
				      const char *name, int *side_out, size_t *set_out)
{
	size_t len = strlen(name);
	int two = (flags & FLEET_OPT_TWO_SIDES) != 0;

	for (size_t s = 0; s < nsets; s++) {
		for (size_t i = 0; i < sets[s].n; i++) {
			const struct fleet_opt *o = &sets[s].opts[i];
			size_t olen = strlen(o->name);

			if (!(o->flags & FLEET_OPT_SIDE) || !two) {
				if (strcmp(o->name, name) != 0)
					continue;
				*side_out = (o->flags & FLEET_OPT_SIDE) ? 0 : -1;
			} else {
				if (len != olen + 1 || strncmp(o->name, name, olen) != 0 ||
				    (name[olen] != '1' && name[olen] != '2'))
					continue;
				*side_out = name[olen] - '1';
			}
			if (set_out)
				*set_out = s;
			return o;
		}
	}
	return NULL;
}

const struct fleet_opt *fleet_opt_find(const struct fleet_optset *sets, size_t nsets, unsigned flags,
				       const char *word, int *side_out, size_t *set_out)
{
	char name[FLEET_OPT_NAME_MAX];
	int side = -1;
	const struct fleet_opt *o;

	if (strncmp(word, "--", 2) != 0 && strcmp(word, "-h") != 0)
		return NULL;
	if (strcmp(word, "-h") == 0)
		word = "--help";
	if (name_of(word, name, sizeof(name)) < 0)
		return NULL;
	o = lookup(sets, nsets, flags, name, &side, set_out);
	if (side_out)
		*side_out = side;
	return o;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[FLEET_OPT_NAME_MAX + 1], cur[FLEET_OPT_NAME_MAX + 1];

	if (la >= FLEET_OPT_NAME_MAX || lb >= FLEET_OPT_NAME_MAX)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

/* How an option is written: "--cafile1/--cafile2" (two sides), "--cafile" (one), "--dry". */
static void spelled(const struct fleet_opt *o, unsigned flags, char *out, size_t cap)
{
	if ((o->flags & FLEET_OPT_SIDE) && (flags & FLEET_OPT_TWO_SIDES))
		snprintf(out, cap, "%s1/%s2", o->name, o->name);
	else
		snprintf(out, cap, "%s", o->name);
}

/* Score of o as a suggestion for name (lower is nearer), or (size_t)-1 when not near. */
static size_t nearness(const struct fleet_opt *o, unsigned flags, const char *name)
{
	size_t olen = strlen(o->name), len = strlen(name), d;
	int two = (o->flags & FLEET_OPT_SIDE) && (flags & FLEET_OPT_TWO_SIDES);

	if (strcmp(o->name, name) == 0)
		return 0; /* a per-side base written without its side */
	/* the other form of a per-side option: "--cafile1" where there is one side */
	if ((o->flags & FLEET_OPT_SIDE) && !two && len == olen + 1 && strncmp(o->name, name, olen) == 0 &&
	    (name[olen] == '1' || name[olen] == '2'))
		return 0;
	/* "--dry-run" -> "--dry", "--exclude-folder" -> "--exclude", "--dryrun" -> "--dry" */
	if (len > olen && strncmp(o->name, name, olen) == 0 && (name[olen] == '-' || olen >= 5))
		return 1;
	/* an abbreviation: "--max-conn" -> "--max-conns-per-host" */
	if (len >= 6 && len < olen && strncmp(o->name, name, len) == 0)
		return 2;
	d = edit_distance(name, o->name);
	if (two && d > 0) {
		char numbered[FLEET_OPT_NAME_MAX + 2];
		size_t d1;

		snprintf(numbered, sizeof(numbered), "%s1", o->name);
		d1 = edit_distance(name, numbered);
		if (d1 < d)
			d = d1;
	}
	return d <= 2 ? d + 1 : (size_t)-1;
}

const struct fleet_opt *fleet_opt_suggest(const struct fleet_optset *sets, size_t nsets, unsigned flags,
					  const char *word, char *out, size_t cap)
{
	char name[FLEET_OPT_NAME_MAX];
	const struct fleet_opt *best = NULL;
	size_t bestd = (size_t)-1;

	if (cap)
		out[0] = '\0';
	if (name_of(word, name, sizeof(name)) < 0)
		return NULL;
	for (size_t s = 0; s < nsets; s++)
		for (size_t i = 0; i < sets[s].n; i++) {
			const struct fleet_opt *o = &sets[s].opts[i];
			size_t d;

			if (o->flags & FLEET_OPT_REFUSED)
				continue;
			d = nearness(o, flags, name);
			if (d < bestd) {
				bestd = d;
				best = o;
			}
		}
	if (best)
		spelled(best, flags, out, cap);
	return best;
}

/* Collects the problems: unknown options together, the others each on their own. */
struct problems {
	struct fleet_buf unknown, other;
	size_t nunknown, nother;
};

static void add(struct fleet_buf *b, size_t *n, const char *sep, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add(struct fleet_buf *b, size_t *n, const char *sep, const char *fmt, ...)
{
	va_list ap;

	if (*n && fleet_buf_append_str(b, sep) < 0)
		return; /* full: the message says what fitted */
	va_start(ap, fmt);
	fleet_buf_vaddf(b, fmt, ap);
	va_end(ap);
	(*n)++;
}

static int next_is_value(const struct fleet_optset *sets, size_t nsets, unsigned flags, const char *next)
{
	int side;

	if (!next || strcmp(next, "--") == 0)
		return 0;
	return fleet_opt_find(sets, nsets, flags, next, &side, NULL) == NULL;
}

int fleet_opt_parse(const struct fleet_optset *sets, size_t nsets, unsigned flags, const char *what, int argc,
		    char **argv, fleet_opt_fn fn, void *ctx, struct fleet_err *err)
{
	struct problems p;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	fleet_buf_init(&p.unknown, FLEET_OPT_PROBLEMS_MAX);
	fleet_buf_init(&p.other, FLEET_OPT_PROBLEMS_MAX);
	for (int i = 0; i < argc; i++) {
		const char *word = argv[i];
		const char *eq = strchr(word, '=');
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		struct fleet_opt_hit hit;
		char why[512] = "";

		memset(&hit, 0, sizeof(hit));
		hit.side = -1;
		hit.words = &argv[i];
		hit.nwords = 1;
		if ((flags & FLEET_OPT_DASHDASH) && strcmp(word, "--") == 0) {
			for (i++; i < argc; i++) {
				hit.words = &argv[i];
				hit.dashdash = 1;
				if (fn(ctx, &hit, why, sizeof(why)) < 0)
					add(&p.other, &p.nother, "; ", "%s", why);
			}
			break;
		}
		if (strncmp(word, "--", 2) != 0 && strcmp(word, "-h") != 0) {
			if (fn(ctx, &hit, why, sizeof(why)) < 0)
				add(&p.other, &p.nother, "; ", "%s", why);
			continue;
		}
		hit.opt = fleet_opt_find(sets, nsets, flags, word, &hit.side, &hit.set);
		if (!hit.opt) {
			char near[2 * FLEET_OPT_NAME_MAX + 4];
			const struct fleet_opt *o = fleet_opt_suggest(sets, nsets, flags, word, near, sizeof(near));
			char name[FLEET_OPT_NAME_MAX];

			if (name_of(word, name, sizeof(name)) < 0)
				snprintf(name, sizeof(name), "%.40s...", word);
			if (o)
				add(&p.unknown, &p.nunknown, ", ", "'%s' (did you mean %s?)", name, near);
			else
				add(&p.unknown, &p.nunknown, ", ", "'%s'", name);
			/* its value, if it has one, is not an operand nor an option of its own */
			if (!eq && next_is_value(sets, nsets, flags, next) &&
			    (o ? (o->flags & FLEET_OPT_VALUE) != 0 : (flags & FLEET_OPT_NO_OPERANDS) != 0))
				i++;
			continue;
		}
		if (hit.opt->flags & FLEET_OPT_REFUSED) {
			add(&p.unknown, &p.nunknown, ", ", "'%.*s' (imapsync's; here use %s)", (int)strcspn(word, "="), word,
			    hit.opt->help);
			if (!eq && (hit.opt->flags & FLEET_OPT_VALUE) && next_is_value(sets, nsets, flags, next))
				i++;
			continue;
		}
		if (hit.opt->flags & FLEET_OPT_VALUE) {
			if (eq) {
				hit.value = eq + 1;
			} else if (next_is_value(sets, nsets, flags, next)) {
				hit.value = next;
				hit.nwords = 2;
				i++;
			} else {
				add(&p.other, &p.nother, "; ", "option %s needs a value (%s %s)", word, word,
				    hit.opt->arg ? hit.opt->arg : "VALUE");
				continue;
			}
		} else if (eq) {
			add(&p.other, &p.nother, "; ", "option %.*s takes no value", (int)(eq - word), word);
			continue;
		}
		if (fn(ctx, &hit, why, sizeof(why)) < 0)
			add(&p.other, &p.nother, "; ", "%s", why[0] ? why : "bad option");
	}
	if (p.nunknown || p.nother) {
		(void)fleet_buf_mark_cut(&p.unknown);
		(void)fleet_buf_mark_cut(&p.other);
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, FLEET_OPT_ERR_USAGE, "%s%s%s%s%s%s",
			      p.nunknown ? "unknown " : "", p.nunknown ? what : "",
			      p.nunknown > 1 ? "s " : p.nunknown ? " " : "", fleet_buf_cstr(&p.unknown),
			      p.nunknown && p.nother ? "; " : "", fleet_buf_cstr(&p.other));
		rc = -1;
	}
	fleet_buf_release(&p.unknown);
	fleet_buf_release(&p.other);
	return rc;
}

/* The defaults of the row with this id in set, or NULL. */
static const long long *row_defaults(const struct fleet_optset *set, int id)
{
	for (size_t i = 0; i < set->ndefaults; i++)
		if (set->defaults[i].id == id)
			return set->defaults[i].v;
	return NULL;
}

/* Prints the len bytes of help text h, each "{}" as the next of dflt (*k counts them). */
static void help_text(FILE *out, const char *h, size_t len, const long long *dflt, size_t *k)
{
	const char *end = h + len, *m;

	while ((m = memmem(h, (size_t)(end - h), "{}", 2)) != NULL) {
		fprintf(out, "%.*s", (int)(m - h), h);
		if (dflt && *k < FLEET_OPT_DEFAULTS_MAX)
			fprintf(out, "%lld", dflt[(*k)++]);
		else
			fputs("{}", out);
		h = m + 2;
	}
	fprintf(out, "%.*s", (int)(end - h), h);
}

void fleet_opt_help(FILE *out, const struct fleet_optset *sets, size_t nsets, unsigned flags)
{
	enum { COL = 28 };

	for (size_t s = 0; s < nsets; s++) {
		if (sets[s].title)
			fprintf(out, "%s\n", sets[s].title);
		for (size_t i = 0; i < sets[s].n; i++) {
			const struct fleet_opt *o = &sets[s].opts[i];
			const char *h = o->help ? o->help : "";
			const long long *dflt = row_defaults(&sets[s], o->id);
			size_t k = 0;
			char left[160];
			int n;

			if (o->flags & (FLEET_OPT_HIDDEN | FLEET_OPT_REFUSED))
				continue;
			if ((o->flags & FLEET_OPT_SIDE) && (flags & FLEET_OPT_TWO_SIDES))
				n = snprintf(left, sizeof(left), "  %s1/2%s%s", o->name, o->arg ? " " : "",
					     o->arg ? o->arg : "");
			else
				n = snprintf(left, sizeof(left), "  %s%s%s", o->name, o->arg ? " " : "",
					     o->arg ? o->arg : "");
			if (n >= COL - 1)
				fprintf(out, "%s\n%*s", left, COL, "");
			else
				fprintf(out, "%-*s", COL, left);
			for (const char *nl; (nl = strchr(h, '\n')) != NULL; h = nl + 1) {
				help_text(out, h, (size_t)(nl - h), dflt, &k);
				fprintf(out, "\n%*s", COL, "");
			}
			help_text(out, h, strlen(h), dflt, &k);
			fputc('\n', out);
		}
	}
}

/* engine/options.c: per-account options (from the CSV `options` column or `sync`'s command line). */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/util.h"
#include "engine/engine.h"
#include "engine/folder_map.h"

void engine_opts_init(struct engine_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->automap = 1;
	o->subscribe = 1;
	o->sync_flags = 1;
	o->batch = 64;
	o->multiappend = 1;
}

void engine_opts_release(struct engine_opts *o)
{
	xfree(&o->folders);
	xfree(&o->include);
	xfree(&o->exclude);
	xfree(&o->f1f2);
	xfree(&o->regextrans2);
	o->nfolders = o->ninclude = o->nexclude = o->nf1f2 = o->nregextrans2 = 0;
}

void engine_opts_folder_filter(const struct engine_opts *o, struct fm_filter *filt)
{
	memset(filt, 0, sizeof(*filt));
	filt->folders = o->folders;
	filt->nfolders = o->nfolders;
	filt->include = o->include;
	filt->ninclude = o->ninclude;
	filt->exclude = o->exclude;
	filt->nexclude = o->nexclude;
	filt->automap = o->automap;
	filt->skip_virtual = 1;
	filt->f1f2 = o->f1f2;
	filt->nf1f2 = o->nf1f2;
	filt->regextrans2 = o->regextrans2;
	filt->nregextrans2 = o->nregextrans2;
	filt->subfolder2 = o->subfolder2;
	filt->casefold = o->casefold2;
}

int engine_opts_takes_value(const char *name)
{
	static const char *const valued[] = {"--folder", "--include",	  "--exclude",	 "--maxsize",
					     "--maxage", "--minage",	  "--batch",	 "--f1f2",
					     "--regextrans2", "--subfolder2"};

	for (size_t i = 0; i < sizeof(valued) / sizeof(valued[0]); i++)
		if (strcmp(name, valued[i]) == 0)
			return 1;
	return 0;
}

static void push(const char ***arr, size_t *n, const char *v)
{
	*arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
	(*arr)[(*n)++] = v;
}

static int need_value(const char *name, const char *val, struct fleet_err *err)
{
	if (val)
		return 0;
	return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE", "option %s needs a value", name);
}

static int number(const char *name, const char *val, uint64_t max, uint64_t *out, struct fleet_err *err)
{
	if (need_value(name, val, err) < 0)
		return -1;
	if (fleet_parse_u64(val, 0, max, out) < 0)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
				     "option %s: '%s' is not a number (0-%llu)", name, val, (unsigned long long)max);
	return 0;
}

int engine_opts_parse(struct engine_opts *o, int argc, char **argv, struct fleet_err *err)
{
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const char *eq = strchr(arg, '=');
		char name[64];
		const char *val;
		uint64_t v;

		if (strncmp(arg, "--", 2) != 0)
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
					     "unexpected argument '%s' in account options", arg);
		if (eq) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
			val = eq + 1;
		} else {
			snprintf(name, sizeof(name), "%s", arg);
			val = (i + 1 < argc) ? argv[i + 1] : NULL;
		}
#define TAKES_VALUE() do { if (!eq) i++; } while (0)
		if (strcmp(name, "--folder") == 0) {
			if (need_value(name, val, err) < 0)
				return -1;
			push(&o->folders, &o->nfolders, val);
			TAKES_VALUE();
		} else if (strcmp(name, "--include") == 0) {
			if (need_value(name, val, err) < 0)
				return -1;
			push(&o->include, &o->ninclude, val);
			TAKES_VALUE();
		} else if (strcmp(name, "--exclude") == 0) {
			if (need_value(name, val, err) < 0)
				return -1;
			push(&o->exclude, &o->nexclude, val);
			TAKES_VALUE();
		} else if (strcmp(name, "--f1f2") == 0) {
			if (need_value(name, val, err) < 0 || folder_map_f1f2_check(val, err) < 0)
				return -1;
			push(&o->f1f2, &o->nf1f2, val);
			TAKES_VALUE();
		} else if (strcmp(name, "--regextrans2") == 0) {
			struct folder_map_rule *r;

			if (need_value(name, val, err) < 0 || folder_map_rule_compile(val, &r, err) < 0)
				return -1;
			folder_map_rule_free(&r);
			push(&o->regextrans2, &o->nregextrans2, val);
			TAKES_VALUE();
		} else if (strcmp(name, "--subfolder2") == 0) {
			if (need_value(name, val, err) < 0)
				return -1;
			if (!*val)
				return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
						     "option --subfolder2 needs a folder name");
			o->subfolder2 = val;
			TAKES_VALUE();
		} else if (strcmp(name, "--maxsize") == 0) {
			if (need_value(name, val, err) < 0)
				return -1;
			if (fleet_parse_size(val, &o->maxsize) < 0)
				return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
						     "option --maxsize: '%s' is not a size (bytes, or with K/M/G)", val);
			TAKES_VALUE();
		} else if (strcmp(name, "--maxage") == 0 || strcmp(name, "--minage") == 0) {
			if (number(name, val, 100000, &v, err) < 0)
				return -1;
			if (name[2] == 'm' && name[3] == 'a')
				o->maxage_days = (unsigned)v;
			else
				o->minage_days = (unsigned)v;
			TAKES_VALUE();
		} else if (strcmp(name, "--batch") == 0) {
			if (number(name, val, 4096, &v, err) < 0)
				return -1;
			o->batch = v ? (unsigned)v : 1;
			TAKES_VALUE();
		} else if (eq) {
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
					     "option %s takes no value", name);
		} else if (strcmp(name, "--dry") == 0) {
			o->dry = 1;
		} else if (strcmp(name, "--justlogin") == 0) {
			o->justlogin = 1;
		} else if (strcmp(name, "--justfolders") == 0) {
			o->justfolders = 1;
		} else if (strcmp(name, "--delete2") == 0) {
			o->delete2 = 1;
		} else if (strcmp(name, "--dedupe-existing") == 0) {
			o->dedupe_existing = 1;
		} else if (strcmp(name, "--casefold2") == 0) {
			o->casefold2 = 1;
		} else if (strcmp(name, "--automap") == 0) {
			o->automap = 1;
		} else if (strcmp(name, "--noautomap") == 0) {
			o->automap = 0;
		} else if (strcmp(name, "--nosubscribe") == 0) {
			o->subscribe = 0;
		} else if (strcmp(name, "--noflagsync") == 0) {
			o->sync_flags = 0;
		} else if (strcmp(name, "--nomultiappend") == 0) {
			o->multiappend = 0;
		} else if (strcmp(name, "--trace") == 0) {
			o->trace = 1;
		} else {
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
					     "unknown account option '%s' (see imapfleet(1), ACCOUNT OPTIONS)", name);
		}
#undef TAKES_VALUE
	}
	if (o->maxage_days && o->minage_days && o->minage_days >= o->maxage_days)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
				     "--minage %u and --maxage %u select no message", o->minage_days, o->maxage_days);
	return 0;
}

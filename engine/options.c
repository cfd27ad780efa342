/* engine/options.c: per-account options (from the CSV `options` column or `sync`'s command line). */
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/util.h"
#include "engine/engine.h"
#include "engine/folder_map.h"
#include "engine/gmail.h"

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

static void push(const char ***arr, size_t *n, const char *v)
{
	*arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
	(*arr)[(*n)++] = v;
}

/* imapsync options that are the default here, or make no sense here but do no harm: accepted
 * with a one-line note (docs/migrating-from-imapsync.md lists them). */
static const struct {
	const char *name;
	int value;
	const char *note;
} harmless[] = {
	{"--syncinternaldates", 0, "--syncinternaldates: always so, INTERNALDATE is kept"},
	{"--useuid", 0, "--useuid: always so, messages are tracked by source UIDVALIDITY and UID in the ledger"},
	{"--usecache", 0, "--usecache: always so, the ledger in PostgreSQL is the cache"},
	{"--nousecache", 0, "--nousecache: ignored, the ledger is what makes passes resumable"},
	{"--skipsize", 0, "--skipsize: ignored, messages are matched by the ledger, not by size"},
	{"--noskipsize", 0, "--noskipsize: ignored, messages are matched by the ledger, not by size"},
	{"--useheader", 1, "--useheader: ignored, messages are matched by the ledger and content hashes"},
	{"--nofoldersizes", 0, "--nofoldersizes: always so, run and sync do not count folder sizes (preflight does)"},
	{"--nofoldersizesatend", 0, "--nofoldersizesatend: always so"},
	{"--addheader", 0, "--addheader: not needed, messages without a Message-ID are copied unchanged"},
	{"--subscribe", 0, "--subscribe: the default, subscriptions are carried over"},
	{"--subscribeall", 0, "--subscribeall: subscriptions are carried as the source has them"},
	{"--nolog", 0, "--nolog: ignored, logs go to standard error and .imapfleet/logs/"},
	{"--logfile", 1, "--logfile: ignored, logs go to standard error and .imapfleet/logs/"},
	{"--timeout", 1, "--timeout: ignored, connections have their own deadlines"},
	{"--timeout1", 1, "--timeout1: ignored, connections have their own deadlines"},
	{"--timeout2", 1, "--timeout2: ignored, connections have their own deadlines"},
	{"--noreleasecheck", 0, "--noreleasecheck: always so, imapfleet never calls home"},
	{"--releasecheck", 0, "--releasecheck: ignored, imapfleet never calls home"},
	{"--noid", 0, "--noid: ignored"},
	{"--nomodulesversion", 0, "--nomodulesversion: ignored"},
	{"--tmpdir", 1, "--tmpdir: ignored, nothing is written to a temporary directory"},
	{"--pidfile", 1, "--pidfile: ignored"},
	{"--pidfilelocking", 0, "--pidfilelocking: ignored, runs over the same state coordinate in PostgreSQL"},
	{"--buffersize", 1, "--buffersize: ignored, bodies stream with bounded buffers"},
	{"--fastio1", 0, "--fastio1: ignored"},
	{"--fastio2", 0, "--fastio2: ignored"},
	{"--resyncflags", 0, "--resyncflags: the default on later passes"},
	{"--nocheckmessageexists", 0, "--nocheckmessageexists: ignored"},
};

/* imapsync options with another name or meaning here: an error that says what to use instead. */
static const struct {
	const char *name;
	const char *instead;
} replaced[] = {
	{"--noresyncflags", "--noflagsync"},
	{"--debugimap", "--trace (sync) or --log-level trace"},
	{"--delete1", "nothing: imapfleet never changes the source"},
	{"--expunge1", "nothing: imapfleet never changes the source"},
	{"--folderrec", "--include '^NAME(/|$)' with the source's separator"},
	{"--justconnect", "imapfleet probe --host H"},
	{"--exitwhenover", "the providers' over-quota answers, which are retried with backoff"},
	{"--maxbytespersecond", "--max-conns-per-host on run"},
	{"--maxmessagespersecond", "--max-conns-per-host on run"},
	{"--sslargs1", "--cafile1 F or --insecure1"},
	{"--sslargs2", "--cafile2 F or --insecure2"},
	{"--regextrans1", "--regextrans2 (rules apply to destination names)"},
	{"--prefix1", "nothing: the prefix is read from NAMESPACE"},
	{"--prefix2", "nothing: the prefix is read from NAMESPACE"},
	{"--sep1", "nothing: the separator is read from NAMESPACE"},
	{"--sep2", "nothing: the separator is read from NAMESPACE"},
};

/* Provider presets (imapsync's names): what each provider needs, as defaults that explicit
 * options override whatever their order. Documented in imapfleet(1), Provider presets. */
static const char *const trim_levels[] = {
	"s, +(/|$),\\1,g", /* no space at the end of a level ... */
	"s,(^|/) +,\\1,g", /* ... nor at its start: Gmail and Exchange refuse or trim those */
};
static const char *const ms_not_mail[] = {
	/* Exchange lists folders of calendar, contact, task, journal and note items over IMAP on
	 * some versions, and Outlook's sync-conflict folders: none holds mail. */
	"^(Calendar|Contacts|Tasks|Journal|Notes|Sync Issues|Conversation History)($|/)",
};
static const struct {
	const char *name;
	int side;                        /* 0 source, 1 destination */
	uint64_t maxsize;                /* destination: the largest message it takes */
	int casefold;                    /* destination: folder names without case */
	const char *const *rules;        /* destination: --regextrans2 rules */
	size_t nrules;
	const char *const *exclude;      /* source: folders that hold no mail */
	size_t nexclude;
} presets[] = {
	{"--gmail1", 0, 0, 0, NULL, 0, NULL, 0},
	{"--gmail2", 1, 35651584, 1, trim_levels, 2, NULL, 0}, /* Gmail's APPENDLIMIT */
	{"--office1", 0, 0, 0, NULL, 0, ms_not_mail, 1},
	{"--office2", 1, 35000000, 1, trim_levels, 2, NULL, 0},
	{"--exchange1", 0, 0, 0, NULL, 0, ms_not_mail, 1},
	{"--exchange2", 1, 35000000, 1, trim_levels, 2, NULL, 0},
};

static int is_preset(const char *name)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (strcmp(name, presets[i].name) == 0)
			return 1;
	return 0;
}

static int apply_preset(struct engine_opts *o, const char *name)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
		if (strcmp(name, presets[i].name) != 0)
			continue;
		o->preset[presets[i].side] = presets[i].name;
		if (strcmp(presets[i].name, "--gmail1") == 0 && o->gmail == 0)
			o->gmail = 1;
		if (presets[i].maxsize)
			o->maxsize = presets[i].maxsize;
		if (presets[i].casefold)
			o->casefold2 = 1;
		for (size_t k = 0; k < presets[i].nrules; k++)
			push(&o->regextrans2, &o->nregextrans2, presets[i].rules[k]);
		for (size_t k = 0; k < presets[i].nexclude; k++)
			push(&o->exclude, &o->nexclude, presets[i].exclude[k]);
		return 1;
	}
	return 0;
}

static void add_note(struct engine_opts *o, const char *note)
{
	for (size_t i = 0; i < o->nnotes; i++)
		if (o->notes[i] == note)
			return;
	if (o->nnotes < sizeof(o->notes) / sizeof(o->notes[0]))
		o->notes[o->nnotes++] = note;
}

/* Every name an account option or side setting may have, for "did you mean". */
static const char *const known_names[] = {
	"--folder", "--include", "--exclude", "--maxsize", "--maxage", "--minage", "--batch", "--f1f2",
	"--regextrans2", "--subfolder2", "--casefold2", "--dry", "--justlogin", "--justfolders", "--delete2",
	"--dedupe-existing", "--automap", "--noautomap", "--nosubscribe", "--noflagsync", "--nomultiappend",
	"--trace", "--gmail-labels", "--archive-folder", "--nogmail", "--gmail1", "--gmail2", "--office1", "--office2", "--exchange1", "--exchange2",
	"--port1", "--port2", "--ssl1", "--ssl2", "--tls1", "--tls2", "--plain1", "--plain2", "--nossl1",
	"--nossl2", "--notls1", "--notls2", "--cafile1", "--cafile2", "--insecure1", "--insecure2",
	"--authuser1", "--authuser2",
};

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
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

static const char *suggest(const char *name)
{
	const char *best = NULL;
	size_t bestd = 3;

	for (size_t i = 0; i < sizeof(known_names) / sizeof(known_names[0]); i++) {
		size_t d = edit_distance(name, known_names[i]);

		if (d < bestd) {
			bestd = d;
			best = known_names[i];
		}
	}
	return best;
}

int engine_opts_takes_value(const char *name)
{
	for (size_t i = 0; i < sizeof(harmless) / sizeof(harmless[0]); i++)
		if (harmless[i].value && strcmp(name, harmless[i].name) == 0)
			return 1;
	static const char *const valued[] = {"--folder", "--include",	  "--exclude",	 "--maxsize",
					     "--maxage", "--minage",	  "--batch",	 "--f1f2",
					     "--regextrans2", "--subfolder2", "--gmail-labels", "--archive-folder"};

	for (size_t i = 0; i < sizeof(valued) / sizeof(valued[0]); i++)
		if (strcmp(name, valued[i]) == 0)
			return 1;
	return 0;
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

/* Appends ", item" (or the first item) to the list of unknown options, truncated if need be. */
static void unknown_add(char *list, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void unknown_add(char *list, size_t cap, const char *fmt, ...)
{
	size_t len = strlen(list);
	va_list ap;

	if (len && len + 2 < cap) {
		memcpy(list + len, ", ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	(void)vsnprintf(list + len, cap - len, fmt, ap);
	va_end(ap);
}

int engine_opts_parse(struct engine_opts *o, int argc, char **argv, struct fleet_err *err)
{
	char unknown[1024] = "";
	size_t nunknown = 0;

	/* Presets first: they are defaults that the other options override, whatever the order. */
	for (int i = 0; i < argc; i++)
		(void)apply_preset(o, argv[i]);
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const char *eq = strchr(arg, '=');
		char name[64];
		const char *val;
		uint64_t v;

		if (strncmp(arg, "--", 2) != 0) {
			return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
					     "unexpected argument '%s' in account options", arg);
		}
		if (eq) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
			val = eq + 1;
		} else {
			snprintf(name, sizeof(name), "%s", arg);
			val = (i + 1 < argc) ? argv[i + 1] : NULL;
		}
#define TAKES_VALUE() do { if (!eq) i++; } while (0)
		{
			size_t h, r;

			for (h = 0; h < sizeof(harmless) / sizeof(harmless[0]); h++)
				if (strcmp(name, harmless[h].name) == 0)
					break;
			if (h < sizeof(harmless) / sizeof(harmless[0])) {
				if (harmless[h].value && need_value(name, val, err) < 0)
					return -1;
				if (harmless[h].value)
					TAKES_VALUE();
				add_note(o, harmless[h].note);
				continue;
			}
			for (r = 0; r < sizeof(replaced) / sizeof(replaced[0]); r++)
				if (strcmp(name, replaced[r].name) == 0)
					break;
			if (r < sizeof(replaced) / sizeof(replaced[0])) {
				unknown_add(unknown, sizeof(unknown), "'%s' (imapsync's; here use %s)", name,
					    replaced[r].instead);
				nunknown++;
				if (!eq && val && strncmp(val, "--", 2) != 0)
					i++;
				continue;
			}
		}
		if (is_preset(name) && !eq) {
			continue; /* applied before the loop */
		} else if (strcmp(name, "--folder") == 0) {
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
		} else if (strcmp(name, "--gmail-labels") == 0) {
			int p;

			if (need_value(name, val, err) < 0)
				return -1;
			if ((p = gmail_policy_from_name(val)) < 0)
				return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
						     "option --gmail-labels: '%s' is not folders, primary or keywords", val);
			o->gmail_labels = p;
			TAKES_VALUE();
		} else if (strcmp(name, "--archive-folder") == 0) {
			if (need_value(name, val, err) < 0)
				return -1;
			if (!*val)
				return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
						     "option --archive-folder needs a folder name");
			o->archive_folder = val;
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
		} else if (strcmp(name, "--nogmail") == 0) {
			o->gmail = -1;
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
			const char *near = suggest(name);

			if (near)
				unknown_add(unknown, sizeof(unknown), "'%s' (did you mean %s?)", name, near);
			else
				unknown_add(unknown, sizeof(unknown), "'%s'", name);
			nunknown++;
			/* its value, if it has one, is not an option of its own */
			if (!eq && val && strncmp(val, "--", 2) != 0)
				i++;
		}
#undef TAKES_VALUE
	}
	if (nunknown) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
			      "unknown account option%s %s (see imapfleet(1), ACCOUNT OPTIONS)", nunknown > 1 ? "s" : "",
			      unknown);
		return -1;
	}
	if (o->maxage_days && o->minage_days && o->minage_days >= o->maxage_days)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, "USAGE",
				     "--minage %u and --maxage %u select no message", o->minage_days, o->maxage_days);
	return 0;
}

/* engine/options.c: per-account options (from the CSV `options` column or `sync`'s command line). */
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/opt.h"
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
	o->batch = ENGINE_BATCH_DEFAULT;
	o->multiappend = 1;
	o->conns_per_account = ENGINE_CONNS_PER_ACCOUNT;
	o->compress[0] = o->compress[1] = ENGINE_COMPRESS_DEFAULT;
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
	uint64_t daily;                  /* the side's daily budget: download (source), upload
	                                  * (destination); 0 = none published */
	unsigned user_conns;             /* the provider's limit of IMAP connections per user (0 =
	                                  * none published); an account uses at most half of it */
} presets[] = {
	/* Google Workspace: 2,500 MB a day downloaded and 500 MB uploaded over IMAP per user
	 * (support.google.com/a/answer/1071518); the presets take about 94 % of each, 2250 and 450
	 * MiB, and leave the rest to the user's own mail clients. */
	/* Connections: Gmail allows 15 IMAP connections per user, Microsoft 365 about 20 (issue 15);
	 * half is left to the user's own mail clients. */
	{"--gmail1", 0, 0, 0, NULL, 0, NULL, 0, 2250ull << 20, 15},
	{"--gmail2", 1, 35651584, 1, trim_levels, 2, NULL, 0, 450ull << 20, 15}, /* Gmail's APPENDLIMIT */
	{"--office1", 0, 0, 0, NULL, 0, ms_not_mail, 1, 0, 20},
	{"--office2", 1, 35000000, 1, trim_levels, 2, NULL, 0, 0, 20},
	{"--exchange1", 0, 0, 0, NULL, 0, ms_not_mail, 1, 0, 0},
	{"--exchange2", 1, 35000000, 1, trim_levels, 2, NULL, 0, 0, 0},
};

enum {
	EO_NOTE = 1, EO_REFUSED, EO_PRESET, EO_FOLDER, EO_INCLUDE, EO_EXCLUDE, EO_F1F2, EO_REGEXTRANS2,
	EO_SUBFOLDER2, EO_GMAIL_LABELS, EO_ARCHIVE_FOLDER, EO_MAXSIZE, EO_MAXAGE, EO_MINAGE, EO_BATCH,
	EO_DRY, EO_JUSTLOGIN, EO_JUSTFOLDERS, EO_DELETE2, EO_DEDUPE, EO_NOGMAIL, EO_CASEFOLD2, EO_AUTOMAP,
	EO_NOAUTOMAP, EO_NOSUBSCRIBE, EO_NOFLAGSYNC, EO_NOMULTIAPPEND, EO_TRACE, EO_DAILY_DOWN1, EO_DAILY_UP1,
	EO_DAILY_DOWN2, EO_DAILY_UP2, EO_NEWEST_FIRST, EO_COMPRESS, EO_COMPRESS1, EO_COMPRESS2, EO_CONNS_PER_ACCOUNT,
};

#define V FLEET_OPT_VALUE
#define H FLEET_OPT_HIDDEN
#define R FLEET_OPT_REFUSED
/* An imapsync option that changes nothing here: hidden, the note "NAME: what" printed once when given
 * (_ARG: it takes a value, which is ignored too). */
#define NOTE(name, what) {name, H, EO_NOTE, NULL, name ": " what}
#define NOTE_ARG(name, what) {name, H | V, EO_NOTE, NULL, name ": " what}
/* An imapsync option that means something else here: refused, the help says what to use instead. */
#define REFUSED(name, instead) {name, R, EO_REFUSED, NULL, instead}
#define REFUSED_ARG(name, instead) {name, R | V, EO_REFUSED, NULL, instead}
/* The account options, their imapsync aliases that change nothing here (hidden; help is the note
 * printed once when given) and imapsync's options that mean something else here (refused; help
 * says what to use instead; docs/migrating-from-imapsync.md lists both). */
static const struct fleet_opt table[] = {
	{"--folder", V, EO_FOLDER, "F", "only this folder (repeatable)"},
	{"--include", V, EO_INCLUDE, "RE", "only folders matching the regex (repeatable)"},
	{"--exclude", V, EO_EXCLUDE, "RE", "leave out folders matching the regex (repeatable)"},
	{"--maxsize", V, EO_MAXSIZE, "N[K|M|G]", "skip and report larger messages"},
	{"--maxage", V, EO_MAXAGE, "D", "only messages younger than D days"},
	{"--minage", V, EO_MINAGE, "D", "only messages older than D days"},
	{"--dry", 0, EO_DRY, NULL, "change nothing, say what would be done"},
	{"--justlogin", 0, EO_JUSTLOGIN, NULL, "log in on both sides and stop"},
	{"--justfolders", 0, EO_JUSTFOLDERS, NULL, "create the folders, copy no message"},
	{"--delete2", 0, EO_DELETE2, NULL, "expunge destination messages no longer on the source"},
	{"--dedupe-existing", 0, EO_DEDUPE, NULL, "skip messages the destination already holds"},
	{"--noautomap", 0, EO_NOAUTOMAP, NULL, "do not map Sent, Drafts, Trash, Junk, Archive by role"},
	{"--automap", H, EO_AUTOMAP, NULL, NULL},
	{"--nosubscribe", 0, EO_NOSUBSCRIBE, NULL, "do not carry subscriptions"},
	{"--noflagsync", 0, EO_NOFLAGSYNC, NULL, "do not carry flag changes on later passes"},
	{"--nomultiappend", 0, EO_NOMULTIAPPEND, NULL, "one APPEND per message even where MULTIAPPEND is offered"},
	{"--batch", V, EO_BATCH, "N", "messages per FETCH/APPEND window (default {}, growing to {} small\n"
				      "messages while under {} MB)"},
	{"--newest-first", 0, EO_NEWEST_FIRST, NULL, "recent mail first: INBOX, Sent, then the rest; newest\n"
						    "messages first"},
	{"--conns-per-account", V, EO_CONNS_PER_ACCOUNT, "N", "connection pairs one account may use when a server is\n"
							      "far, folders shared out (run; default {}, only where slots\n"
							      "are free; 1 = one)"},
	{"--compress", V, EO_COMPRESS, "auto|on|off", "COMPRESS=DEFLATE where the server offers it: auto\n"
	 "when the login took {} ms or more (a slow link), on, off (default);\n"
	 "--compress1/--compress2: on for one side"},
	{"--compress1", H, EO_COMPRESS1, NULL, NULL},
	{"--compress2", H, EO_COMPRESS2, NULL, NULL},
	{"--trace", 0, EO_TRACE, NULL, "show the IMAP dialogue (secrets redacted)"},
	{"--f1f2", V, EO_F1F2, "SRC=DST", "rename one folder (repeatable; see imapfleet(1), Folder rules)"},
	{"--regextrans2", V, EO_REGEXTRANS2, "'s/RE/REPL/[gi]'", "rewrite destination folder names (repeatable)"},
	{"--subfolder2", V, EO_SUBFOLDER2, "NAME", "the whole tree under one destination folder"},
	{"--casefold2", 0, EO_CASEFOLD2, NULL, "the destination ignores case in folder names"},
	{"--gmail-labels", V, EO_GMAIL_LABELS, "P", "Gmail labels as folders, primary or keywords"},
	{"--archive-folder", V, EO_ARCHIVE_FOLDER, "NAME", "where unlabelled Gmail mail goes (default Archive)"},
	{"--nogmail", 0, EO_NOGMAIL, NULL, "never Gmail mode, even with X-GM-EXT-1"},
	{"--daily-download1", V, EO_DAILY_DOWN1, "SIZE", "at most SIZE read from the source per account and day;\n"
	 "then the account is parked until its next day (also --daily-upload2,\n--daily-download2, --daily-upload1)"},
	{"--daily-upload2", H | V, EO_DAILY_UP2, "SIZE", NULL},
	{"--daily-download2", H | V, EO_DAILY_DOWN2, "SIZE", NULL},
	{"--daily-upload1", H | V, EO_DAILY_UP1, "SIZE", NULL},
	{"--gmail1", 0, EO_PRESET, NULL, "provider preset: Gmail source (also --gmail2, --office1/2, --exchange1/2)"},
	{"--gmail2", H, EO_PRESET, NULL, NULL},
	{"--office1", H, EO_PRESET, NULL, NULL},
	{"--office2", H, EO_PRESET, NULL, NULL},
	{"--exchange1", H, EO_PRESET, NULL, NULL},
	{"--exchange2", H, EO_PRESET, NULL, NULL},
	NOTE("--syncinternaldates", "always so, INTERNALDATE is kept"),
	NOTE("--useuid", "always so, messages are tracked by source UIDVALIDITY and UID in the ledger"),
	NOTE("--usecache", "always so, the ledger in PostgreSQL is the cache"),
	NOTE("--nousecache", "ignored, the ledger is what makes passes resumable"),
	NOTE("--skipsize", "ignored, messages are matched by the ledger, not by size"),
	NOTE("--noskipsize", "ignored, messages are matched by the ledger, not by size"),
	NOTE_ARG("--useheader", "ignored, messages are matched by the ledger and content hashes"),
	NOTE("--nofoldersizes", "always so, run and sync do not count folder sizes (preflight does)"),
	NOTE("--nofoldersizesatend", "always so"),
	NOTE("--addheader", "not needed, messages without a Message-ID are copied unchanged"),
	NOTE("--subscribe", "the default, subscriptions are carried over"),
	NOTE("--subscribeall", "subscriptions are carried as the source has them"),
	NOTE("--nolog", "ignored, logs go to standard error and .imapfleet/logs/"),
	NOTE_ARG("--logfile", "ignored, logs go to standard error and .imapfleet/logs/"),
	NOTE_ARG("--timeout", "ignored, connections have their own deadlines"),
	NOTE_ARG("--timeout1", "ignored, connections have their own deadlines"),
	NOTE_ARG("--timeout2", "ignored, connections have their own deadlines"),
	NOTE("--noreleasecheck", "always so, imapfleet never calls home"),
	NOTE("--releasecheck", "ignored, imapfleet never calls home"),
	NOTE("--noid", "ignored"),
	NOTE("--nomodulesversion", "ignored"),
	NOTE_ARG("--tmpdir", "ignored, nothing is written to a temporary directory"),
	NOTE_ARG("--pidfile", "ignored"),
	NOTE("--pidfilelocking", "ignored, runs over the same state coordinate in PostgreSQL"),
	NOTE_ARG("--buffersize", "ignored, bodies stream with bounded buffers"),
	NOTE("--fastio1", "ignored"),
	NOTE("--fastio2", "ignored"),
	NOTE("--resyncflags", "the default on later passes"),
	NOTE("--nocheckmessageexists", "ignored"),
	REFUSED("--noresyncflags", "--noflagsync"),
	REFUSED("--debugimap", "--trace (sync) or --log-level trace"),
	REFUSED("--delete1", "nothing: imapfleet never changes the source"),
	REFUSED("--expunge1", "nothing: imapfleet never changes the source"),
	REFUSED_ARG("--folderrec", "--include '^NAME(/|$)' with the source's separator"),
	REFUSED("--justconnect", "imapfleet probe --host H"),
	REFUSED_ARG("--exitwhenover", "--daily-download1 SIZE or --daily-upload2 SIZE (the account is parked, then resumes the next day)"),
	REFUSED_ARG("--maxbytespersecond", "--max-conns-per-host on run"),
	REFUSED_ARG("--maxmessagespersecond", "--max-conns-per-host on run"),
	REFUSED_ARG("--sslargs1", "--cafile1 F or --insecure1"),
	REFUSED_ARG("--sslargs2", "--cafile2 F or --insecure2"),
	REFUSED_ARG("--regextrans1", "--regextrans2 (rules apply to destination names)"),
	REFUSED_ARG("--prefix1", "nothing: the prefix is read from NAMESPACE"),
	REFUSED_ARG("--prefix2", "nothing: the prefix is read from NAMESPACE"),
	REFUSED_ARG("--sep1", "nothing: the separator is read from NAMESPACE"),
	REFUSED_ARG("--sep2", "nothing: the separator is read from NAMESPACE"),
};
#undef V
#undef H
#undef R
#undef NOTE
#undef NOTE_ARG
#undef REFUSED
#undef REFUSED_ARG

static const struct fleet_opt_default defaults[] = {
	{EO_BATCH, {ENGINE_BATCH_DEFAULT, ENGINE_WINDOW_MAX_MSGS, ENGINE_WINDOW_AUTO_BYTES >> 20}},
	{EO_CONNS_PER_ACCOUNT, {ENGINE_CONNS_PER_ACCOUNT}},
	{EO_COMPRESS, {IMAP_COMPRESS_AUTO_RTT_MS}},
};
const struct fleet_optset engine_opts_optset =
    FLEET_OPTSET_DEFAULTS("account options (every row; see imapfleet(1)):", table, defaults);

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
		if (presets[i].daily)
			o->daily[presets[i].side][presets[i].side ? ENGINE_UP : ENGINE_DOWN] = presets[i].daily;
		if (presets[i].user_conns)
			o->user_conns[presets[i].side] = presets[i].user_conns / 2;
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

int engine_opts_takes_value(const char *name)
{
	int side;
	const struct fleet_opt *opt = fleet_opt_find(&engine_opts_optset, 1, 0, name, &side, NULL);

	return opt && (opt->flags & FLEET_OPT_VALUE);
}

static int bad(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return -1;
}

static int number(const struct fleet_opt_hit *h, uint64_t max, uint64_t *out, char *why, size_t cap)
{
	if (fleet_parse_u64(h->value, 0, max, out) < 0)
		return bad(why, cap, "option %s: '%s' is not a number (0-%llu)", h->opt->name, h->value,
			   (unsigned long long)max);
	return 0;
}

static int nonempty(const struct fleet_opt_hit *h, const char **out, char *why, size_t cap)
{
	if (!*h->value)
		return bad(why, cap, "option %s needs a folder name", h->opt->name);
	*out = h->value;
	return 0;
}

static int set_option(void *ctx, const struct fleet_opt_hit *h, char *why, size_t cap)
{
	struct engine_opts *o = ctx;
	struct fleet_err err;
	uint64_t v;
	int p;

	if (!h->opt)
		return bad(why, cap, "unexpected argument '%s' in account options", h->words[0]);
	switch (h->opt->id) {
	case EO_NOTE: add_note(o, h->opt->help); return 0;
	case EO_PRESET: return 0; /* applied before the others */
	case EO_FOLDER: push(&o->folders, &o->nfolders, h->value); return 0;
	case EO_INCLUDE: push(&o->include, &o->ninclude, h->value); return 0;
	case EO_EXCLUDE: push(&o->exclude, &o->nexclude, h->value); return 0;
	case EO_F1F2:
		if (folder_map_f1f2_check(h->value, &err) < 0)
			return bad(why, cap, "%s", err.message);
		push(&o->f1f2, &o->nf1f2, h->value);
		return 0;
	case EO_REGEXTRANS2: {
		struct folder_map_rule *r;

		if (folder_map_rule_compile(h->value, &r, &err) < 0)
			return bad(why, cap, "%s", err.message);
		folder_map_rule_free(&r);
		push(&o->regextrans2, &o->nregextrans2, h->value);
		return 0;
	}
	case EO_SUBFOLDER2: return nonempty(h, &o->subfolder2, why, cap);
	case EO_ARCHIVE_FOLDER: return nonempty(h, &o->archive_folder, why, cap);
	case EO_GMAIL_LABELS:
		if ((p = gmail_policy_from_name(h->value)) < 0)
			return bad(why, cap, "option --gmail-labels: '%s' is not folders, primary or keywords", h->value);
		o->gmail_labels = p;
		return 0;
	case EO_MAXSIZE:
		if (fleet_parse_size(h->value, &o->maxsize) < 0)
			return bad(why, cap, "option --maxsize: '%s' is not a size (bytes, or with K/M/G)", h->value);
		return 0;
	case EO_DAILY_DOWN1:
	case EO_DAILY_UP1:
	case EO_DAILY_DOWN2:
	case EO_DAILY_UP2: {
		int k = h->opt->id == EO_DAILY_DOWN2 || h->opt->id == EO_DAILY_UP2;
		int d = h->opt->id == EO_DAILY_UP1 || h->opt->id == EO_DAILY_UP2 ? ENGINE_UP : ENGINE_DOWN;

		if (fleet_parse_size(h->value, &o->daily[k][d]) < 0)
			return bad(why, cap, "option %s: '%s' is not a size (bytes, or with K/M/G; 0 = no budget)",
				   h->opt->name, h->value);
		return 0;
	}
	case EO_MAXAGE:
	case EO_MINAGE:
		if (number(h, ENGINE_AGE_DAYS_MAX, &v, why, cap) < 0)
			return -1;
		*(h->opt->id == EO_MAXAGE ? &o->maxage_days : &o->minage_days) = (unsigned)v;
		return 0;
	case EO_BATCH:
		if (number(h, ENGINE_BATCH_MAX, &v, why, cap) < 0)
			return -1;
		o->batch = v ? (unsigned)v : 1;
		o->batch_set = 1;
		return 0;
	case EO_CONNS_PER_ACCOUNT:
		if (number(h, ENGINE_CONNS_PER_ACCOUNT_MAX, &v, why, cap) < 0)
			return -1;
		o->conns_per_account = v ? (unsigned)v : 1;
		return 0;
	case EO_DRY: o->dry = 1; return 0;
	case EO_JUSTLOGIN: o->justlogin = 1; return 0;
	case EO_JUSTFOLDERS: o->justfolders = 1; return 0;
	case EO_DELETE2: o->delete2 = 1; return 0;
	case EO_DEDUPE: o->dedupe_existing = 1; return 0;
	case EO_NOGMAIL: o->gmail = -1; return 0;
	case EO_CASEFOLD2: o->casefold2 = 1; return 0;
	case EO_AUTOMAP: o->automap = 1; return 0;
	case EO_NOAUTOMAP: o->automap = 0; return 0;
	case EO_NOSUBSCRIBE: o->subscribe = 0; return 0;
	case EO_NOFLAGSYNC: o->sync_flags = 0; return 0;
	case EO_NOMULTIAPPEND: o->multiappend = 0; return 0;
	case EO_NEWEST_FIRST: o->newest_first = 1; return 0;
	case EO_TRACE: o->trace = 1; return 0;
	case EO_COMPRESS1: o->compress[0] = IMAP_COMPRESS_ON; return 0;
	case EO_COMPRESS2: o->compress[1] = IMAP_COMPRESS_ON; return 0;
	case EO_COMPRESS:
		if (strcmp(h->value, "auto") == 0)
			o->compress[0] = o->compress[1] = IMAP_COMPRESS_AUTO;
		else if (strcmp(h->value, "on") == 0)
			o->compress[0] = o->compress[1] = IMAP_COMPRESS_ON;
		else if (strcmp(h->value, "off") == 0)
			o->compress[0] = o->compress[1] = IMAP_COMPRESS_OFF;
		else
			return bad(why, cap, "option --compress: '%s' is not auto, on or off", h->value);
		return 0;
	default: return bad(why, cap, "option %s is not handled", h->opt->name);
	}
}

int engine_opts_parse(struct engine_opts *o, int argc, char **argv, struct fleet_err *err)
{
	/* Presets first: they are defaults that the other options override, whatever the order. */
	for (int i = 0; i < argc; i++)
		(void)apply_preset(o, argv[i]);
	if (fleet_opt_parse(&engine_opts_optset, 1, FLEET_OPT_NO_OPERANDS, "account option", argc, argv, set_option,
			    o, err) < 0) {
		fleet_err_detail(err, "see imapfleet(1), ACCOUNT OPTIONS");
		return -1;
	}
	if (o->maxage_days && o->minage_days && o->minage_days >= o->maxage_days)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, FLEET_ERR_CODE_USAGE,
				     "--minage %u and --maxage %u select no message", o->minage_days, o->maxage_days);
	return 0;
}

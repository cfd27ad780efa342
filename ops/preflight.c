/* ops/preflight.c: read-only checks before a run: preflight's whole accounts file (see preflight.h
 * and docs/preflight.md; one side's login is ops/probe.c). */
#include "ops/preflight.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accounts/accounts.h"
#include "common/alloc.h"
#include "common/escape.h"
#include "common/file.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/engine.h"
#include "ops/probe.h"
#include "ops/render.h"
#include "scheduler/policy.h"

/* ---- folder names -------------------------------------------------------------------------------- */

static int component_problem(const char *comp, size_t len, char delim, char *why, size_t cap)
{
	if (len == 0) {
		snprintf(why, cap, "an empty level (two separators in a row, or one at an end)");
		return 1;
	}
	if (comp[0] == ' ' || comp[len - 1] == ' ') {
		snprintf(why, cap,
			 "the level '%.*s' begins or ends with a space, which many servers refuse or trim",
			 (int)len, comp);
		return 1;
	}
	if (delim != '/' && memchr(comp, '/', len)) {
		snprintf(why, cap, "'/' inside the level '%.*s': Office 365 and Exchange refuse it", (int)len,
			 comp);
		return 1;
	}
	return 0;
}

int preflight_name_problem(const char *src_name, const struct fm_namespace *src_ns, const char *dst_name,
			   char dst_delim, int bad_wire, char *why, size_t cap)
{
	const char *rest = src_name;
	size_t plen = src_ns && src_ns->prefix ? strlen(src_ns->prefix) : 0;
	char sd = src_ns ? src_ns->delim : 0;

	if (bad_wire) {
		snprintf(why, cap, "the source sends a name that is not valid modified UTF-7");
		return 1;
	}
	if (fleet_strcaseeq(src_name, "INBOX"))
		return 0;
	for (const unsigned char *p = (const unsigned char *)dst_name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(why, cap, "the name holds a control character");
			return 1;
		}
	}
	/* A source level holding the destination's separator: folder_map_translate renames it. */
	if (plen && strncmp(src_name, src_ns->prefix, plen) == 0 && src_name[plen])
		rest = src_name + plen;
	if (dst_delim && dst_delim != sd) {
		const char *p = rest;

		while (*p) {
			const char *end = sd ? strchr(p, sd) : NULL;
			size_t len = end ? (size_t)(end - p) : strlen(p);

			if (memchr(p, dst_delim, len)) {
				snprintf(
				    why, cap,
				    "'%c' in the level '%.*s' is the destination's separator: it becomes '_'",
				    dst_delim, (int)len, p);
				return 1;
			}
			if (!end)
				break;
			p = end + 1;
		}
	}
	/* The destination levels as they will be created. */
	{
		const char *p = dst_name;

		for (;;) {
			const char *end = dst_delim ? strchr(p, dst_delim) : NULL;
			size_t len = end ? (size_t)(end - p) : strlen(p);

			if (component_problem(p, len, dst_delim, why, cap))
				return 1;
			if (!end)
				break;
			p = end + 1;
		}
	}
	return 0;
}

/* ---- helpers --------------------------------------------------------------------------------------- */

static void list_addf(struct imap_strlist *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void list_addf(struct imap_strlist *l, const char *fmt, ...)
{
	struct fleet_buf b = FLEET_BUF_INIT(OPS_LINE_MAX);
	va_list ap;

	va_start(ap, fmt);
	fleet_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	if (fleet_buf_truncated(&b)) {
		fleet_buf_reset(&b);
		fleet_buf_addf(&b, "(a message longer than %zu bytes, left out)", OPS_LINE_MAX);
	}
	imap_strlist_add(l, fleet_buf_cstr(&b), b.len);
	fleet_buf_release(&b);
}

static unsigned default_port(enum io_tls_mode mode)
{
	return io_port_or_default(0, mode);
}

/* "user@host" with ":port" when the port is not the mode's default. */
static void side_label(struct fleet_buf *b, const char *user, const char *host, unsigned port,
		       enum io_tls_mode mode)
{
	if (strchr(host, ':'))
		fleet_buf_addf(b, "%s@[%s]", user, host);
	else
		fleet_buf_addf(b, "%s@%s", user, host);
	if (port && port != default_port(mode))
		fleet_buf_addf(b, ":%u", port);
}

/* Compresses sorted UIDs into "1:3,7" (stops before max bytes; *all says whether all fit). */
static char *uidset_text(struct imap_uids *u, size_t max, int *all)
{
	struct fleet_buf b = FLEET_BUF_INIT(max + 32);

	*all = imap_uidset_format(&b, u->v, u->n, max);
	return fleet_buf_detach(&b, NULL);
}


/* ---- one account ----------------------------------------------------------------------------------- */

struct pf_account {
	const struct account_row *row; /* NULL for a bad row */
	unsigned line;
	char *label;
	int done;
	int nogo;
	struct imap_strlist reasons; /* why NO-GO */
	struct imap_strlist warnings;
	struct imap_strlist details; /* per-side lines (--verbose) */
	int counted;		     /* folders/messages/bytes are known */
	unsigned folders;
	uint64_t messages, bytes;
	int quota; /* 0 unknown, 1 unlimited, 2 limited */
	uint64_t quota_kb, used_kb;
	int oversize_known;
	uint64_t oversize;
	unsigned bad_names;
	int names_known; /* bad_names was checked (both sides listed) */
	char src_tls[PREFLIGHT_TLS_TEXT_MAX], dst_tls[PREFLIGHT_TLS_TEXT_MAX];
	char fit[PREFLIGHT_FIT_TEXT_MAX]; /* "fits (quota unlimited)", "does not fit" ... */
};

struct pf_ctx {
	const struct preflight_config *cfg;
	struct host_limiter *hl;
	struct oauth_cache *oauth; /* tenant tokens: one per application (ms365) or user (google) */
	struct pf_account *acc;
	size_t nacc;
	size_t next; /* next account to check */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

struct oversize_scan {
	uint64_t limit;
	uint64_t count, total, biggest;
	uint32_t biggest_uid;
	uint64_t seen;
};

static int on_size(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err)
{
	struct oversize_scan *o = ctx;

	(void)err;
	if (!m->has_size)
		return 0;
	o->seen++;
	o->total += m->rfc822_size;
	if (o->limit && m->rfc822_size > o->limit)
		o->count++;
	if (m->rfc822_size > o->biggest) {
		o->biggest = m->rfc822_size;
		o->biggest_uid = m->uid;
	}
	return 0;
}

struct pf_folder {
	const char *src_name;
	struct imap_status_info st;
	int status_ok;
	struct fleet_err err;
};

struct pf_big {
	uint64_t count, biggest;
	uint32_t uid;
	char folder[256];
	int partial;
};

/* Counts one folder's bytes with EXAMINE + UID FETCH 1:* (RFC822.SIZE) and its oversize messages. */
static int fetch_sizes(struct imap_conn *c, struct pf_folder *f, uint64_t limit, struct pf_big *big,
		       struct fleet_err *err)
{
	static const struct imap_fetch_cb cb = {on_size, NULL, NULL, NULL};
	struct imap_mailbox mbx;
	struct oversize_scan o;
	int rc;

	memset(&mbx, 0, sizeof(mbx));
	memset(&o, 0, sizeof(o));
	o.limit = limit;
	rc = imap_select(c, f->src_name, 1, &mbx, err);
	if (rc == 0 && mbx.exists > 0)
		rc = imap_fetch(c, "1:*", "(UID RFC822.SIZE)", &cb, &o, err);
	imap_mailbox_release(&mbx);
	if (rc < 0)
		return -1;
	f->st.size = o.total;
	f->st.have |= IMAP_HAVE_SIZE;
	big->count += o.count;
	if (o.count && o.biggest > big->biggest) {
		big->biggest = o.biggest;
		big->uid = o.biggest_uid;
		snprintf(big->folder, sizeof(big->folder), "%s", f->src_name);
	}
	return 0;
}

/* Finds the messages above limit with UID SEARCH LARGER and the biggest of them. */
static int search_oversize(struct imap_conn *c, struct pf_folder *f, uint64_t limit, struct pf_big *big,
			   struct fleet_err *err)
{
	static const struct imap_fetch_cb cb = {on_size, NULL, NULL, NULL};
	struct imap_mailbox mbx;
	struct imap_uids uids = {0};
	struct oversize_scan o;
	char crit[48];
	char *set = NULL;
	int rc, all = 1;

	memset(&mbx, 0, sizeof(mbx));
	memset(&o, 0, sizeof(o));
	snprintf(crit, sizeof(crit), "LARGER %llu", (unsigned long long)limit);
	rc = imap_select(c, f->src_name, 1, &mbx, err);
	if (rc == 0)
		rc = imap_uid_search(c, crit, &uids, err);
	if (rc == 0 && uids.n) {
		qsort(uids.v, uids.n, sizeof(uids.v[0]), fleet_cmp_u32);
		set = uidset_text(&uids, PREFLIGHT_UIDSET_MAX, &all);
		rc = imap_fetch(c, set, "(UID RFC822.SIZE)", &cb, &o, err);
	}
	if (rc == 0 && uids.n) {
		big->count += uids.n;
		if (!all)
			big->partial = 1;
		if (o.biggest > big->biggest) {
			big->biggest = o.biggest;
			big->uid = o.biggest_uid;
			snprintf(big->folder, sizeof(big->folder), "%s", f->src_name);
		}
	}
	xfree(&set);
	imap_uids_release(&uids);
	imap_mailbox_release(&mbx);
	return rc;
}

static void caps_line(struct imap_strlist *details, const char *side, const char *tls,
		      const struct imap_conn *c)
{
	static const char *const wanted[] = {"UIDPLUS",	    "LITERAL+", "MULTIAPPEND", "CONDSTORE",
					     "SPECIAL-USE", "QUOTA",	"STATUS=SIZE"};
	struct fleet_buf has = FLEET_BUF_INIT(OPS_LABEL_MAX), lacks = FLEET_BUF_INIT(OPS_LABEL_MAX);
	uint64_t al;

	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		struct fleet_buf *b = imap_conn_has_cap(c, wanted[i]) ? &has : &lacks;

		fleet_buf_addf(b, "%s%s", b->len ? " " : "", wanted[i]);
	}
	if (imap_conn_cap_u64(c, "APPENDLIMIT", &al) == 0)
		fleet_buf_addf(&has, "%sAPPENDLIMIT=%llu", has.len ? " " : "", (unsigned long long)al);
	else
		fleet_buf_addf(&lacks, "%sAPPENDLIMIT", lacks.len ? " " : "");
	if (fleet_buf_truncated(&has) || fleet_buf_truncated(&lacks)) /* cannot happen: a few names */
		list_addf(details, "%s: %s; capabilities too long to list", side, tls);
	else
		list_addf(details, "%s: %s; has %s; lacks %s", side, tls, has.len ? fleet_buf_cstr(&has) : "none",
			  lacks.len ? fleet_buf_cstr(&lacks) : "nothing");
	fleet_buf_release(&has);
	fleet_buf_release(&lacks);
}

static const char *side_word(int s)
{
	return s ? "destination" : "source";
}

static void login_reason(struct pf_account *a, int s, const struct preflight_login *lg)
{
	const struct fleet_err *e = &lg->err;

	if (lg->stage == PREFLIGHT_STAGE_LOGIN && e->cls == FLEET_ERR_AUTH)
		list_addf(&a->reasons, "%s login refused: %s", side_word(s), e->message);
	else if (lg->stage == PREFLIGHT_STAGE_LOGIN)
		list_addf(&a->reasons, "%s login failed: %s", side_word(s), e->message);
	else
		list_addf(&a->reasons, "%s: %s", side_word(s), e->message);
}

static void to_fm(const struct imap_list *l, struct fm_folder *out)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct imap_list_entry *le = &l->v[i];

		out[i].name = le->name;
		out[i].delim = le->delim;
		out[i].noselect = (le->flags & (IMAP_MBX_NOSELECT | IMAP_MBX_NONEXISTENT)) != 0;
		out[i].subscribed = (le->flags & IMAP_MBX_SUBSCRIBED) != 0;
		out[i].role = le->special[0] ? folder_role_from_attr(le->special) : ROLE_NONE;
	}
}

static const struct imap_list_entry *list_entry(const struct imap_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

/* Takes a connection slot on both servers (waits while either is full). */
static void take_slots(struct host_limiter *hl, const char *key[2], int took[2])
{
	int same = strcmp(key[0], key[1]) == 0;

	for (;;) {
		took[0] = took[1] = 0;
		took[0] = host_limiter_try_acquire(hl, key[0]);
		if (took[0]) {
			if (same && host_limiter_limit(hl, key[1]) < 2)
				return; /* one slot is all this server allows: the account uses it for both */
			took[1] = host_limiter_try_acquire(hl, key[1]);
			if (took[1])
				return;
			host_limiter_release(hl, key[0]);
		}
		fleet_sleep_ms(20 + (unsigned)(fleet_now_ms() % 30));
	}
}

static void release_slots(struct host_limiter *hl, const char *key[2], const int took[2])
{
	for (int k = 0; k < 2; k++)
		if (took[k])
			host_limiter_release(hl, key[k]);
}

/* Inventory of the source (folders in the plan, messages, bytes, oversize) and the names. */
static int count_source(struct pf_ctx *ctx, struct pf_account *a, struct imap_conn *src,
			const struct fm_plan *plan, uint64_t limit, const char *limit_name,
			struct fleet_err *err)
{
	struct pf_folder *f = xcalloc(plan->n ? plan->n : 1, sizeof(*f));
	size_t nf = 0;
	struct pf_big big;
	int use_fetch = ctx->cfg->fetch_sizes || !imap_conn_has_cap(src, "STATUS=SIZE");
	int rc = -1;

	memset(&big, 0, sizeof(big));
	for (size_t i = 0; i < plan->n; i++)
		if (!plan->entries[i].noselect)
			f[nf++].src_name = plan->entries[i].src_name;
	/* STATUS, pipelined in windows. */
	for (size_t i = 0; i < nf; i += PREFLIGHT_STATUS_WINDOW) {
		int ids[PREFLIGHT_STATUS_WINDOW];
		size_t n = nf - i < PREFLIGHT_STATUS_WINDOW ? nf - i : PREFLIGHT_STATUS_WINDOW;

		for (size_t k = 0; k < n; k++) {
			ids[k] = imap_status_send(src, f[i + k].src_name, &f[i + k].st, &f[i + k].err);
			if (ids[k] < 0 && imap_conn_is_broken(src)) {
				*err = f[i + k].err;
				for (size_t j = 0; j < k; j++)
					if (ids[j] > 0)
						(void)imap_cmd_wait(src, ids[j], NULL, FLEET_SCOPE_FOLDER,
								    &f[i + j].err);
				goto out;
			}
		}
		for (size_t k = 0; k < n; k++) {
			if (ids[k] < 0)
				continue;
			if (imap_cmd_wait(src, ids[k], NULL, FLEET_SCOPE_FOLDER, &f[i + k].err) == 0)
				f[i + k].status_ok = 1;
		}
		if (imap_conn_is_broken(src)) {
			for (size_t k = 0; k < n; k++)
				if (!f[i + k].status_ok) {
					*err = f[i + k].err;
					break;
				}
			goto out;
		}
	}
	a->folders = 0;
	for (size_t i = 0; i < nf; i++) {
		struct fleet_err ferr;
		int fetch, r;

		if (!f[i].status_ok) {
			list_addf(&a->warnings, "source folder '%s' could not be counted: %s", f[i].src_name,
				  f[i].err.message);
			continue;
		}
		a->folders++;
		a->messages += f[i].st.messages;
		if (f[i].st.messages == 0)
			continue;
		fetch = use_fetch || !(f[i].st.have & IMAP_HAVE_SIZE);
		fleet_err_clear(&ferr);
		if (fetch)
			r = fetch_sizes(src, &f[i], limit, &big, &ferr);
		else if (limit && f[i].st.size > limit) /* only such a folder can hold a larger message */
			r = search_oversize(src, &f[i], limit, &big, &ferr);
		else
			r = 0;
		if (r < 0) {
			if (imap_conn_is_broken(src)) {
				*err = ferr;
				goto out;
			}
			list_addf(&a->warnings, "source folder '%s': could not %s: %s", f[i].src_name,
				  fetch ? "read message sizes" : "search for large messages", ferr.message);
			if (fetch)
				continue; /* its size is not known */
		}
		a->bytes += f[i].st.size;
	}
	a->counted = 1;
	a->oversize_known = limit != 0;
	a->oversize = big.count;
	if (big.count) {
		char lim[32], bg[32];

		fleet_human_size(limit, lim, sizeof(lim));
		fleet_human_size(big.biggest, bg, sizeof(bg));
		list_addf(&a->warnings,
			  "%llu message%s larger than %s (%s) will be skipped and reported; largest %s%s "
			  "in '%s' (UID %u)",
			  (unsigned long long)big.count, big.count == 1 ? "" : "s", lim, limit_name,
			  big.partial ? "at least " : "", bg, big.folder, big.uid);
	}
	rc = 0;
out:
	xfree(&f);
	return rc;
}

static void check_names(struct pf_account *a, const struct fm_plan *plan, const struct imap_list *sl,
			const struct fm_namespace *sns, const struct fm_namespace *dns)
{
	unsigned shown = 0;

	a->names_known = 1;
	for (size_t i = 0; i < plan->n; i++) {
		const struct fm_entry *e = &plan->entries[i];
		const struct imap_list_entry *le = list_entry(sl, e->src_name);
		char why[400];
		int bad = preflight_name_problem(e->src_name, sns, e->dst_name, dns->delim,
						 le && (le->flags & IMAP_MBX_BAD_NAME), why, sizeof(why));

		if (!bad && e->collision) {
			snprintf(why, sizeof(why), "%s", e->note ? e->note : "renamed: its name collided");
			bad = 1;
		}
		if (!bad) {
			/* Two source folders that land in one destination folder. */
			for (size_t j = 0; j < i; j++) {
				if (strcmp(plan->entries[j].dst_name, e->dst_name) == 0 && !e->noselect &&
				    !plan->entries[j].noselect) {
					snprintf(why, sizeof(why), "'%s' goes to the same destination folder",
						 plan->entries[j].src_name);
					bad = 1;
					break;
				}
			}
		}
		if (!bad)
			continue;
		a->bad_names++;
		if (shown++ < PREFLIGHT_NAMES_SHOWN)
			list_addf(&a->warnings, "folder '%s' -> '%s': %s", e->src_name, e->dst_name, why);
	}
	if (shown > PREFLIGHT_NAMES_SHOWN)
		list_addf(&a->warnings, "%u more folder names with problems (see the log at debug level)",
			  shown - PREFLIGHT_NAMES_SHOWN);
}

static void check_quota(struct pf_account *a, struct imap_conn *dst)
{
	struct imap_quota q;
	struct fleet_err e;
	char need[32], lim[32], used[32], diff[32];

	if (!imap_conn_has_cap(dst, "QUOTA")) {
		snprintf(a->fit, sizeof(a->fit), "quota unknown (the destination does not offer QUOTA)");
		return;
	}
	fleet_err_clear(&e);
	if (imap_getquotaroot(dst, "INBOX", &q, &e) < 0) {
		list_addf(&a->warnings, "could not read the destination quota: %s", e.message);
		snprintf(a->fit, sizeof(a->fit), "quota unknown");
		return;
	}
	a->quota = q.has_storage ? 2 : 1;
	if (!q.has_storage) {
		snprintf(a->fit, sizeof(a->fit), "fits (quota unlimited)");
	} else {
		uint64_t need_kb = (a->bytes + 1023) / 1024;
		uint64_t free_kb =
		    q.storage_limit_kb > q.storage_used_kb ? q.storage_limit_kb - q.storage_used_kb : 0;

		a->quota_kb = q.storage_limit_kb;
		a->used_kb = q.storage_used_kb;
		fleet_human_size(a->bytes, need, sizeof(need));
		fleet_human_size(q.storage_limit_kb * 1024, lim, sizeof(lim));
		fleet_human_size(q.storage_used_kb * 1024, used, sizeof(used));
		if (!a->counted) {
			snprintf(a->fit, sizeof(a->fit), "quota %s, %s used", lim, used);
		} else if (need_kb > free_kb) {
			fleet_human_size((need_kb - free_kb) * 1024, diff, sizeof(diff));
			list_addf(&a->reasons,
				  "does not fit: source %s, destination quota %s with %s used (%s short)%s",
				  need, lim, used, diff,
				  q.storage_used_kb
				      ? "; if what is there came from an earlier pass, the rest may fit"
				      : "");
			snprintf(a->fit, sizeof(a->fit), "does not fit (quota %s, %s used)", lim, used);
		} else {
			fleet_human_size((free_kb - need_kb) * 1024, diff, sizeof(diff));
			snprintf(a->fit, sizeof(a->fit), "fits (quota %s, %s used, %s free after)", lim, used,
				 diff);
			if (q.storage_limit_kb && (q.storage_used_kb + need_kb) * 10 > q.storage_limit_kb * 9)
				list_addf(&a->warnings,
					  "the destination will be %llu%% full after the migration",
					  (unsigned long long)((q.storage_used_kb + need_kb) * 100 /
							       q.storage_limit_kb));
		}
	}
	if (q.has_messages && a->counted) {
		uint64_t room = q.messages_limit > q.messages_used ? q.messages_limit - q.messages_used : 0;

		if (a->messages > room)
			list_addf(
			    &a->reasons,
			    "does not fit: %llu messages, the destination quota allows %llu with %llu there",
			    (unsigned long long)a->messages, (unsigned long long)q.messages_limit,
			    (unsigned long long)q.messages_used);
	}
}

static void set_options(struct imap_options *o, const struct account_side *sd, const struct account_side_settings *set,
			const char *password, unsigned timeout_ms, const char *label)
{
	memset(o, 0, sizeof(*o));
	o->ep.host = sd->host;
	o->ep.port = (uint16_t)sd->port;
	o->ep.mode = set->mode;
	o->ep.cafile = set->cafile;
	o->ep.insecure = set->insecure;
	o->ep.connect_timeout_ms = timeout_ms;
	o->ep.io_timeout_ms = timeout_ms;
	o->ep.label = label;
	o->label = label;
	o->user = sd->user;
	o->password = password;
	o->authuser = set->authuser;
	o->trace = fleet_log_enabled(FLEET_LOG_TRACE);
}

/* The side's token (tenant credentials, token columns) or command-made password, obtained now as a
 * run would at its login: a token endpoint's refusal, an unknown user, a failing tokencmd is this
 * account's reason before any server is asked. Fills o's secret and mechanism. Returns -1 when
 * there is none to log in with (the reason recorded). */
static int get_secret(struct pf_ctx *ctx, struct pf_account *a, const struct account_row *row, int s,
		      const struct account_side_settings *set, struct accounts_cred *cr, char **secret,
		      struct imap_options *o)
{
	struct fleet_err err;

	if (accounts_side_cred(&row->side[s], s, set, row->side[s].user, ctx->oauth, NULL, cr) < 0) {
		list_addf(&a->reasons, "%s: the tokencmd%d/passcmd%d command cannot be split into words", side_word(s),
			  s + 1, s + 1);
		return -1;
	}
	o->auth = cr->auth;
	if (cr->src.kind == CRED_NONE)
		return 0; /* a password or passfile, loaded already */
	fleet_err_clear(&err);
	if (cred_fetch(&cr->src, 0, secret, &err) < 0) {
		list_addf(&a->reasons, "%s %s (%s): %s%s%s", side_word(s), cr->src.is_token ? "token" : "password",
			  cr->src.name, err.message, err.detail[0] ? "; " : "", err.detail);
		return -1;
	}
	if (cr->src.is_token) {
		o->oauth_token = *secret;
		o->password = NULL;
	} else {
		o->password = *secret;
	}
	return 0;
}

static void check_account(struct pf_ctx *ctx, struct pf_account *a)
{
	const struct preflight_config *cfg = ctx->cfg;
	const struct account_row *row = a->row;
	struct account_side_settings set[2];
	struct engine_opts eo;
	char **rest = NULL;
	int nrest = 0;
	struct account_secrets sec = {{NULL, NULL}};
	struct accounts_cred cr[2];
	char *secret[2] = {NULL, NULL};
	int no_secret[2] = {0, 0};
	struct imap_options o[2];
	struct preflight_login lg[2];
	struct imap_conn *c[2] = {NULL, NULL};
	struct imap_namespace ns[2];
	struct imap_list l[2];
	struct fm_folder *ff[2] = {NULL, NULL};
	struct fm_namespace fns[2];
	struct fm_filter filt;
	struct fm_plan plan;
	struct fleet_err err;
	char key[2][ACCOUNTS_HOST_MAX + 16];
	const char *keys[2] = {key[0], key[1]};
	int took[2] = {0, 0}, listed[2] = {0, 0}, planned = 0;
	uint64_t limit = 0, al;
	const char *limit_name = NULL;
	unsigned timeout = cfg->timeout_ms ? cfg->timeout_ms : PREFLIGHT_TIMEOUT_MS;

	memset(set, 0, sizeof(set));
	memset(cr, 0, sizeof(cr));
	memset(lg, 0, sizeof(lg));
	memset(l, 0, sizeof(l));
	memset(&plan, 0, sizeof(plan));
	engine_opts_init(&eo);
	fleet_err_clear(&err);

	/* Settings: the command line's, then the row's columns, then the row's options. */
	rest = xcalloc((size_t)(cfg->argc + row->argc) + 1, sizeof(*rest));
	if (accounts_take_side_settings(cfg->argc, cfg->argv, set, rest, &nrest, &err) < 0)
		goto bad_options;
	for (int s = 0; s < 2; s++) {
		const struct account_side *sd = &row->side[s];

		set[s].mode = sd->tls == ACCOUNTS_TLS_SSL	 ? IO_TLS_IMPLICIT
			      : sd->tls == ACCOUNTS_TLS_STARTTLS ? IO_TLS_STARTTLS
								 : IO_TLS_PLAIN;
		if (sd->cafile)
			set[s].cafile = sd->cafile;
		if (sd->insecure)
			set[s].insecure = 1;
		if (sd->authuser)
			set[s].authuser = sd->authuser;
	}
	if (accounts_take_side_settings(row->argc, row->argv, set, rest, &nrest, &err) < 0 ||
	    engine_opts_parse(&eo, nrest, rest, &err) < 0)
		goto bad_options;

	if (fleet_strcaseeq(row->side[0].host, row->side[1].host) && row->side[0].port == row->side[1].port &&
	    strcmp(row->side[0].user, row->side[1].user) == 0)
		list_addf(
		    &a->reasons,
		    "source and destination are the same account: every message would be copied onto itself");
	if (accounts_row_load_passwords(row, &sec, &err) < 0) {
		list_addf(&a->reasons, "%s", err.message);
		goto out;
	}
	for (int s = 0; s < 2; s++) {
		const struct account_side *sd = &row->side[s];

		set_options(&o[s], sd, &set[s], sec.password[s], timeout, s ? "dst" : "src");
		snprintf(key[s], sizeof(key[s]), "%s:%u", sd->host, sd->port);
		no_secret[s] = get_secret(ctx, a, row, s, &set[s], &cr[s], &secret[s], &o[s]) < 0;
	}
	take_slots(ctx->hl, keys, took);

	for (int s = 0; s < 2; s++) {
		if (no_secret[s])
			continue; /* no token or password to log in with: said why already */
		preflight_login(&o[s], 1, 0, &c[s], &lg[s]);
		preflight_tls_text(&lg[s], &o[s].ep, s ? a->dst_tls : a->src_tls, sizeof(a->src_tls));
		if (lg[s].stage != PREFLIGHT_STAGE_DONE) {
			login_reason(a, s, &lg[s]);
			continue;
		}
		if (lg[s].have_tls_info && !lg[s].tls_info.verified)
			list_addf(
			    &a->warnings, "%s certificate not verified (insecure): verification would %s%s",
			    side_word(s), strcmp(lg[s].tls_info.verify_result, "ok") == 0 ? "pass" : "fail: ",
			    strcmp(lg[s].tls_info.verify_result, "ok") == 0 ? ""
									    : lg[s].tls_info.verify_result);
		if (o[s].ep.mode == IO_TLS_PLAIN)
			list_addf(&a->warnings, "%s connection is cleartext (plain)", side_word(s));
		caps_line(&a->details, s ? "dst" : "src", s ? a->dst_tls : a->src_tls, c[s]);
		fleet_err_clear(&err);
		if (imap_namespace(c[s], &ns[s], &err) < 0 || imap_list(c[s], &l[s], &err) < 0) {
			list_addf(&a->reasons, "%s: could not list folders: %s", side_word(s), err.message);
			continue;
		}
		listed[s] = 1;
	}

	if (listed[1]) {
		if (eo.maxsize) {
			limit = eo.maxsize;
			limit_name = "--maxsize";
		}
		if (imap_conn_cap_u64(c[1], "APPENDLIMIT", &al) == 0 && al > 0 && (!limit || al < limit)) {
			limit = al;
			limit_name = "the destination's APPENDLIMIT";
		}
	} else if (eo.maxsize) {
		limit = eo.maxsize;
		limit_name = "--maxsize";
	}

	if (listed[0]) {
		for (int s = 0; s < 2; s++) {
			ff[s] = xcalloc(l[s].n ? l[s].n : 1, sizeof(*ff[s]));
			to_fm(&l[s], ff[s]);
		}
		fns[0].prefix = ns[0].prefix;
		fns[0].delim = ns[0].delim;
		/* Without the destination's namespace, plan as if it were the source's (counts only). */
		fns[1].prefix = listed[1] ? ns[1].prefix : ns[0].prefix;
		fns[1].delim = listed[1] ? ns[1].delim : ns[0].delim;
		engine_opts_folder_filter(&eo, &filt);
		fleet_err_clear(&err);
		if (folder_map_plan(ff[0], l[0].n, &fns[0], ff[1], listed[1] ? l[1].n : 0, &fns[1], &filt,
				    &plan, &err) < 0) {
			list_addf(&a->reasons, "folder plan: %s", err.message);
		} else {
			planned = 1;
			fleet_err_clear(&err);
			if (count_source(ctx, a, c[0], &plan, limit, limit_name, &err) < 0)
				list_addf(&a->reasons, "source: could not count the mail: %s", err.message);
			if (listed[1])
				check_names(a, &plan, &l[0], &fns[0], &fns[1]);
			if (plan.nskipped)
				list_addf(&a->details,
					  "left out: %zu source folder%s (filters, virtual views)",
					  plan.nskipped, plan.nskipped == 1 ? "" : "s");
		}
	}
	if (listed[1])
		check_quota(a, c[1]);

	for (int s = 0; s < 2; s++) {
		if (c[s]) {
			struct fleet_err e;

			(void)imap_logout(c[s], &e);
			imap_conn_close(&c[s]);
		}
	}
	release_slots(ctx->hl, keys, took);
	goto out;

bad_options:
	list_addf(&a->reasons, "account options: %s", err.message);
out:
	a->nogo = a->reasons.n > 0;
	if (planned)
		folder_map_plan_release(&plan);
	for (int s = 0; s < 2; s++) {
		preflight_login_release(&lg[s]);
		imap_list_release(&l[s]);
		xfree(&ff[s]);
	}
	accounts_secrets_release(&sec);
	for (int s = 0; s < 2; s++) {
		cred_free(&secret[s]);
		accounts_cred_release(&cr[s]);
	}
	engine_opts_release(&eo);
	xfree(&rest);
}

/* ---- the pool ---------------------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct pf_ctx *ctx = arg;

	for (;;) {
		struct pf_account *a = NULL;

		pthread_mutex_lock(&ctx->lock);
		while (ctx->next < ctx->nacc && !ctx->acc[ctx->next].row)
			ctx->next++; /* bad rows are reported as they are */
		if (ctx->next < ctx->nacc)
			a = &ctx->acc[ctx->next++];
		pthread_mutex_unlock(&ctx->lock);
		if (!a)
			break;
		fleet_log_set_context(a->label, NULL);
		check_account(ctx, a);
		fleet_log_set_context(NULL, NULL);
		pthread_mutex_lock(&ctx->lock);
		a->done = 1;
		pthread_cond_broadcast(&ctx->cond);
		pthread_mutex_unlock(&ctx->lock);
	}
	return NULL;
}

static void print_account(FILE *f, const struct pf_account *a, int verbose)
{
	char sz[32];

	if (a->nogo) {
		fprintf(f, "NO-GO %s: ", a->label);
		for (size_t i = 0; i < a->reasons.n; i++)
			fprintf(f, "%s%s", i ? "; " : "", a->reasons.v[i]);
		fputc('\n', f);
	} else {
		fleet_human_size(a->bytes, sz, sizeof(sz));
		fprintf(f, "GO    %s: %u folder%s, %llu message%s, %s; %s\n", a->label, a->folders,
			a->folders == 1 ? "" : "s", (unsigned long long)a->messages,
			a->messages == 1 ? "" : "s", sz, a->fit[0] ? a->fit : "quota unknown");
	}
	if (verbose) {
		if (a->nogo && a->counted) {
			fleet_human_size(a->bytes, sz, sizeof(sz));
			fprintf(f, "      source: %u folder%s, %llu message%s, %s\n", a->folders,
				a->folders == 1 ? "" : "s", (unsigned long long)a->messages,
				a->messages == 1 ? "" : "s", sz);
		}
		for (size_t i = 0; i < a->details.n; i++)
			fprintf(f, "      %s\n", a->details.v[i]);
	}
	for (size_t i = 0; i < a->warnings.n; i++)
		fprintf(f, "      warning: %s\n", a->warnings.v[i]);
	fflush(f);
}

/* ---- CSV --------------------------------------------------------------------------------------------- */

/* One cell through the one CSV escaper (quoted, formula guard, controls cleaned). */
static void csv_field(FILE *f, const char *s, int last)
{
	struct fleet_buf cell = FLEET_BUF_INIT(OPS_ESCAPED_MAX(strlen(s)));

	if (fleet_escape_csv(&cell, s) == 0)
		fputs(fleet_buf_cstr(&cell), f);
	else
		fputs("\"\"", f); /* cannot happen: the cap is the escaper's worst case */
	fleet_buf_release(&cell);
	fputs(last ? "\r\n" : ",", f);
}

static void csv_num(FILE *f, int known, uint64_t v)
{
	if (known)
		fprintf(f, "%llu,", (unsigned long long)v);
	else
		fputc(',', f);
}

static int write_csv(const char *path, const struct pf_account *acc, size_t n, struct fleet_err *err)
{
	struct fleet_file_atomic out;
	FILE *f;

	if (fleet_file_atomic_open(&out, path, err) < 0)
		return -1;
	f = out.f;
	fputs("account,verdict,reasons,folders,messages,bytes,dst_quota_kb,dst_used_kb,oversize,bad_names,"
	      "src_tls,"
	      "dst_tls\r\n",
	      f);
	for (size_t i = 0; i < n; i++) {
		const struct pf_account *a = &acc[i];
		struct fleet_buf r = FLEET_BUF_INIT(OPS_REASONS_MAX);

		for (size_t k = 0; k < a->reasons.n; k++)
			fleet_buf_addf(&r, "%s%s", r.len ? "; " : "", a->reasons.v[k]);
		for (size_t k = 0; k < a->warnings.n; k++)
			fleet_buf_addf(&r, "%swarning: %s", r.len ? "; " : "", a->warnings.v[k]);
		if (fleet_buf_truncated(&r)) {
			fleet_buf_reset(&r);
			fleet_buf_addf(&r, "(%zu reasons and %zu warnings, longer than %zu bytes together: not listed)",
				       a->reasons.n, a->warnings.n, OPS_REASONS_MAX);
		}
		csv_field(f, a->label, 0);
		csv_field(f, a->nogo ? "NO-GO" : "GO", 0);
		csv_field(f, fleet_buf_cstr(&r), 0);
		csv_num(f, a->counted, a->folders);
		csv_num(f, a->counted, a->messages);
		csv_num(f, a->counted, a->bytes);
		if (a->quota == 1)
			fputs("unlimited,unlimited,", f);
		else {
			csv_num(f, a->quota == 2, a->quota_kb);
			csv_num(f, a->quota == 2, a->used_kb);
		}
		csv_num(f, a->counted && a->oversize_known, a->oversize);
		csv_num(f, a->names_known, a->bad_names);
		csv_field(f, a->src_tls, 0);
		csv_field(f, a->dst_tls, 1);
		fleet_buf_release(&r);
	}
	return fleet_file_atomic_commit(&out, err);
}

/* ---- the run ------------------------------------------------------------------------------------------ */

void preflight_config_init(struct preflight_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
}

static int cmp_acc_line(const void *x, const void *y)
{
	const struct pf_account *a = x, *b = y;

	return a->line < b->line ? -1 : a->line > b->line;
}

static char *row_label(const struct account_row *r)
{
	struct fleet_buf b = FLEET_BUF_INIT(OPS_LABEL_MAX);

	for (int s = 0; s < 2; s++) {
		const struct account_side *sd = &r->side[s];
		enum io_tls_mode m = sd->tls == ACCOUNTS_TLS_SSL ? IO_TLS_IMPLICIT : IO_TLS_STARTTLS;

		if (s)
			fleet_buf_add_str(&b, " -> ");
		side_label(&b, sd->user, sd->host, sd->port, m);
	}
	if (fleet_buf_truncated(&b)) {
		fleet_buf_release(&b);
		return xasprintf("line %u (its label is longer than %zu bytes)", r->line, OPS_LABEL_MAX);
	}
	return fleet_buf_detach(&b, NULL);
}

/* The options given for every row must parse on their own (a typo fails before any connection). */
static int check_global_options(const struct preflight_config *cfg, struct fleet_err *err)
{
	struct account_side_settings set[2];
	struct engine_opts eo;
	char **rest = xcalloc((size_t)cfg->argc + 1, sizeof(*rest));
	int nrest = 0, rc;

	memset(set, 0, sizeof(set));
	engine_opts_init(&eo);
	rc = accounts_take_side_settings(cfg->argc, cfg->argv, set, rest, &nrest, err);
	if (rc == 0)
		rc = engine_opts_parse(&eo, nrest, rest, err);
	engine_opts_release(&eo);
	xfree(&rest);
	return rc;
}

int preflight_run(const struct preflight_config *cfg, struct preflight_summary *sum, struct fleet_err *err)
{
	struct accounts_file *af;
	struct pf_ctx ctx;
	FILE *out = cfg->out ? cfg->out : stdout;
	const char *csv = cfg->csv_path ? cfg->csv_path : "preflight.csv";
	size_t nrows, nerr, nacc = 0, printed = 0;
	unsigned nworkers, started = 0;
	pthread_t *th;
	char sz[32];
	int rc;

	memset(sum, 0, sizeof(*sum));
	sum->started_ms = fleet_now_ms();
	if (check_global_options(cfg, err) < 0) {
		snprintf(err->code, sizeof(err->code), "%s", FLEET_ERR_CODE_USAGE);
		return -1;
	}
	af = accounts_load(cfg->accounts_path, cfg->accounts_flags | accounts_tenant_flags(cfg->argc, cfg->argv), err);
	if (!af)
		return -1;
	nrows = accounts_count(af);
	nerr = accounts_error_count(af);
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = cfg;
	ctx.acc = xcalloc(nrows + nerr + 1, sizeof(*ctx.acc));
	for (size_t i = 0; i < nrows; i++) {
		struct pf_account *a = &ctx.acc[nacc++];

		a->row = accounts_row(af, i);
		a->line = a->row->line;
		a->label = row_label(a->row);
	}
	/* Bad rows: one NO-GO entry per line, with every problem of it. */
	for (size_t i = 0; i < nerr; i++) {
		const struct accounts_error *e = accounts_error_at(af, i);
		struct pf_account *a = NULL;

		for (size_t k = nrows; k < nacc; k++)
			if (ctx.acc[k].line == e->line)
				a = &ctx.acc[k];
		if (!a) {
			a = &ctx.acc[nacc++];
			a->line = e->line;
			a->label = xasprintf("line %u", e->line);
			a->done = 1;
			a->nogo = 1;
			sum->bad_rows++;
			snprintf(a->src_tls, sizeof(a->src_tls), "not checked");
			snprintf(a->dst_tls, sizeof(a->dst_tls), "not checked");
		}
		list_addf(&a->reasons, "bad row: %s", e->message);
	}
	qsort(ctx.acc, nacc, sizeof(*ctx.acc), cmp_acc_line);
	ctx.nacc = nacc;
	ctx.hl =
	    host_limiter_new(cfg->max_conns_per_host ? cfg->max_conns_per_host : PREFLIGHT_CONNS_PER_HOST);
	ctx.oauth = oauth_cache_new();
	pthread_mutex_init(&ctx.lock, NULL);
	pthread_cond_init(&ctx.cond, NULL);

	nworkers = cfg->workers ? cfg->workers : PREFLIGHT_WORKERS;
	if (nworkers > nrows)
		nworkers = (unsigned)nrows;
	th = xcalloc(nworkers ? nworkers : 1, sizeof(*th));
	for (unsigned i = 0; i < nworkers; i++) {
		if (pthread_create(&th[i], NULL, worker_main, &ctx) != 0)
			break;
		started++;
	}
	if (started == 0 && nrows)
		worker_main(&ctx); /* no thread could start: check them here, one by one */

	/* Print in file order as results come in. */
	pthread_mutex_lock(&ctx.lock);
	while (printed < nacc) {
		while (printed < nacc && ctx.acc[printed].done) {
			pthread_mutex_unlock(&ctx.lock);
			print_account(out, &ctx.acc[printed], cfg->verbose);
			pthread_mutex_lock(&ctx.lock);
			printed++;
		}
		if (printed < nacc)
			pthread_cond_wait(&ctx.cond, &ctx.lock);
	}
	pthread_mutex_unlock(&ctx.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	xfree(&th);

	for (size_t i = 0; i < nacc; i++) {
		const struct pf_account *a = &ctx.acc[i];

		sum->accounts++;
		if (a->nogo)
			sum->nogo++;
		else {
			sum->go++;
			if (a->warnings.n)
				sum->warned++;
		}
		if (a->counted) {
			sum->messages += a->messages;
			sum->bytes += a->bytes;
		}
	}
	rc = write_csv(csv, ctx.acc, nacc, err);
	sum->finished_ms = fleet_now_ms();
	fleet_human_size(sum->bytes, sz, sizeof(sz));
	fprintf(
	    out,
	    "preflight: %u account%s: %u GO (%u with warnings), %u NO-GO; source %llu messages, %s; %.1f s",
	    sum->accounts, sum->accounts == 1 ? "" : "s", sum->go, sum->warned, sum->nogo,
	    (unsigned long long)sum->messages, sz, (double)(sum->finished_ms - sum->started_ms) / 1000.0);
	if (rc == 0)
		fprintf(out, "; details in %s\n", csv);
	else
		fputc('\n', out);
	fflush(out);

	for (size_t i = 0; i < nacc; i++) {
		struct pf_account *a = &ctx.acc[i];

		xfree(&a->label);
		imap_strlist_release(&a->reasons);
		imap_strlist_release(&a->warnings);
		imap_strlist_release(&a->details);
	}
	xfree(&ctx.acc);
	pthread_mutex_destroy(&ctx.lock);
	pthread_cond_destroy(&ctx.cond);
	host_limiter_free(&ctx.hl);
	oauth_cache_free(&ctx.oauth);
	accounts_free(&af);
	if (rc < 0)
		return -1;
	return sum->nogo ? 1 : 0;
}

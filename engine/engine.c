/* engine/engine.c: one account pair, from login to the last folder.
 *
 * Per folder: STATUS tells whether anything changed since the last complete pass (then the folder
 * is skipped without SELECT); otherwise the source metadata is fetched in one UID FETCH, diffed
 * against the ledger, and the missing messages are copied in windows: the window is recorded in
 * the ledger before its APPENDs, each body is streamed from the source FETCH into a pipelined
 * APPEND (LITERAL+) while being hashed, and the ledger rows are flushed before the window is
 * closed. A crash inside a window leaves it open; the next attempt matches destination messages
 * at or above the recorded UIDNEXT by identity (engine/identity.h) before appending anything.
 */
#include "engine/engine.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/escape.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/folder_map.h"
#include "engine/gmail.h"
#include "engine/identity.h"
#include "io/imap.h"
#include "io/mutf7.h"

/* ---- per-message state ------------------------------------------------------------------------ */

struct src_msg {
	uint32_t uid;
	uint32_t seq;
	uint64_t size;
	char internaldate[IMAP_INTERNALDATE_LEN + 4];
	char *flags;           /* space separated, as on the source */
	int has_ident;
	struct msg_ident ident;
	int copied;            /* in the ledger already */
	uint32_t dst_uid;      /* for copied messages, 0 when unknown */
	char **labels;         /* Gmail mode: X-GM-LABELS, UTF-8 (system labels with their '\\') */
	size_t nlabels;
};

struct src_list {
	struct src_msg *v;
	size_t n, alloc;
};

static void src_msg_release(struct src_msg *m)
{
	xfree(&m->flags);
	for (size_t k = 0; k < m->nlabels; k++)
		xfree(&m->labels[k]);
	xfree(&m->labels);
	m->nlabels = 0;
}

static void src_list_release(struct src_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		src_msg_release(&l->v[i]);
	xfree(&l->v);
	l->n = l->alloc = 0;
}

struct meta_ctx {
	struct src_list *list;
	int want_ident;
	struct fleet_buf flags;
	int want_labels;
};

/* What a folder needs from the source before its copy: its STATUS and ledger row, and EXAMINE plus
 * the metadata FETCH sent (not yet read). Filled by folder_begin, either when the folder's turn comes
 * or ahead of it (prefetch_next): then the source answers while the previous folder's last APPENDs
 * are still on their way. */
struct fstart {
	const struct fm_entry *fe; /* the folder these commands are for; NULL: none */
	struct imap_status_info si;
	struct ledger_folder_info info;
	int rematch, want_ident, ssel_id, meta_id;
	struct meta_ctx mc;
	struct imap_mailbox smbx;
	struct src_list sl;
	/* The destination's SELECT, sent ahead too once the previous folder needs the destination
	 * for nothing but its last APPEND results (prefetch_next_dst), else by migrate_folder. */
	int dsel_id;
	struct imap_mailbox dmbx;
	/* The destination's STATUS from the start of the account (NULL: unknown), kept for
	 * presend_next_folder's guess of what this folder will copy. */
	const struct imap_status_info *pre_dst;
	/* EXAMINE and the metadata FETCH were already collected (presend_next_folder): their
	 * results, which migrate_folder takes instead of waiting. */
	int src_ready, ssel_r, meta_r;
	struct fleet_err src_err;
	/* EXAMINE, metadata FETCH and SELECT went out with the STATUS at the start of the account
	 * (first_folder_early), before the ledger was asked: folder_check follows in migrate_folder. */
	int early;
};

/* ---- engine context ----------------------------------------------------------------------------- */

struct engine {
	const struct engine_job *job;
	const struct engine_opts *o;
	struct engine_stats *st;
	struct imap_conn *src, *dst;
	struct imap_namespace src_ns, dst_ns;
	int src_condstore;
	int multiappend;   /* append each window as one MULTIAPPEND command (cleared after a refusal) */
	uint64_t appendlimit; /* the destination's APPENDLIMIT, 0 when it announces none */
	time_t now;
	int gmail;         /* Gmail mode: label folders read from All Mail (engine/gmail.h) */
	int gmail_dst;     /* ... and the destination is Gmail too: labels set with X-GM-LABELS */
	const struct fm_plan *plan;
	/* The folder being copied (fs[cur]) and the next one, begun ahead on the source
	 * (fs[!cur], prefetch_next); next_*: the folder after the current one, set by engine_run. */
	struct fstart fs[3];
	int cur;
	/* The folder the source has selected (its last EXAMINE sent): the current one, or, once the
	 * source has been asked ahead, the next or the one after (prefetch_next, prefetch_next2). */
	const struct fm_entry *src_sel;
	int last_window; /* copy_window: the folder's last window */
	int next_last;   /* ... and the window after it (presend's) is the last one */
	struct copy_ctx *pend; /* the next window's body FETCH, sent ahead (presend), not read yet */
	/* The next folder's first body FETCH, sent while this folder's last APPENDs are answered
	 * (presend_next_folder), held: nothing of it is appended until copy_window adopts it after
	 * that folder's window_begin; read away (pend_next_drop) when the guess was wrong. */
	struct copy_ctx *pend_next;
	const struct fm_entry *pend_next_fe;
	int dst_free;    /* the current folder needs the destination for nothing after its APPENDs */
	int dst_moved;   /* the next folder's SELECT went out on the destination (prefetch_next_dst) */
	const struct fm_entry *next_fe;
	const struct imap_status_info *next_pre, *next_pre_dst;
	/* The folder after next_fe (not claimed yet), which prefetch_next2 may ask about ahead. */
	const struct fm_entry *next2_fe;
	const struct imap_status_info *next2_pre, *next2_pre_dst;
	uint64_t unlisted_here; /* the current folder's share of st->bytes_unlisted (STATUS SIZE) */
	/* Folders whose UIDVALIDITY changed since the last pass, [0] source, [1] destination: after a
	 * restore it is every folder, so they are said in one line per account (uidvalidity_say). */
	unsigned uv_changed[2];
	struct fleet_buf uv_names[2];
	/* Lanes (engine_job.lanes): the plan's order, where the loop is, folders refused at CREATE. */
	const size_t *order;
	size_t oi;
	const int *refused;
	const int *pre_have;                  /* the STATUS asked of every folder ahead, when answered */
	const struct imap_status_info *pre_si;
	const int *dst_have;                  /* ... and of the destination's folders */
	const struct imap_status_info *dst_si;
	int *dst_shared; /* name_ahead: folders whose destination folder another one shares */
	int lanes_asked;
	struct engine_probes probes[2]; /* lanes_probe's NOOPs on the source and the destination */
	int distance_known, far;	/* lanes_far has judged the servers (once per attempt) */
	int lanes_started; /* lane 0 started other connection pairs (they claim folders from then on) */
	/* A folder split by another lane that this one joined (split_help): both sides selected. */
	struct imap_mailbox split_smbx, split_dmbx;
	int in_split; /* copying windows of a folder another lane split (split_help) */
	int split_expected; /* lane 0 announced this folder's split (split_early) */
	int again;    /* reading a split folder again after a joined lane failed (migrate_folder) */
};

/* migrate_folder: a lane that joined this folder's split failed; read the folder again. */
#define FOLDER_AGAIN 2

/* The fstart ring: fs[cur] is the folder being copied, then the next one and the one after it. */
#define FS_NEXT(e) (&(e)->fs[((e)->cur + 1) % 3])
#define FS_NEXT2(e) (&(e)->fs[((e)->cur + 2) % 3])

/* Notes a UIDVALIDITY change of folder on side k (logged per folder at debug level only). */
static void uidvalidity_changed(struct engine *e, int k, const char *folder, uint32_t was, uint32_t now)
{
	log_debug("%s UIDVALIDITY changed (%u -> %u): matching by identity instead of UIDs",
		  k ? "destination" : "source", was, now);
	if (e->uv_changed[k]++ < 5)
		fleet_buf_addf(&e->uv_names[k], "%s%s", e->uv_names[k].len ? ", " : "", folder);
}

/* One line per account and side for the folders whose UIDVALIDITY changed. */
static void uidvalidity_say(struct engine *e)
{
	for (int k = 0; k < 2; k++) {
		(void)fleet_buf_mark_cut(&e->uv_names[k]);
		if (e->uv_changed[k])
			log_warn("%s UIDVALIDITY changed in %u folder%s (%s%s) since the last pass (a restore or a "
				 "rebuilt mailbox): %s matched by identity instead of UIDs, nothing copied twice",
				 k ? "destination" : "source", e->uv_changed[k], e->uv_changed[k] == 1 ? "" : "s",
				 fleet_buf_cstr(&e->uv_names[k]), e->uv_changed[k] > 5 ? ", ..." : "",
				 e->uv_changed[k] == 1 ? "its messages were" : "their messages were");
		fleet_buf_release(&e->uv_names[k]);
	}
}

static void report_progress(struct engine *e)
{
	if (e->job->progress)
		e->job->progress(e->job->progress_ctx, e->st);
}

/* The current folder has been listed (or given up): its STATUS SIZE estimate leaves the total. */
static void folder_listed(struct engine *e)
{
	e->st->bytes_unlisted -= e->unlisted_here < e->st->bytes_unlisted ? e->unlisted_here : e->st->bytes_unlisted;
	e->unlisted_here = 0;
}

static int cancelled(const struct engine *e)
{
	const struct engine_lanes *l = e->job->lanes;

	return (e->job->cancel && atomic_load(e->job->cancel)) || (l && l->stop && atomic_load(l->stop));
}

/* ---- lanes: several connection pairs for one account (engine.h) ----------------------------------- */

static int is_helper(const struct engine *e)
{
	return e->job->lanes && e->job->lanes->lane > 0;
}

/* 1 when this lane copies the folder. */
static int lane_claim(const struct engine *e, const struct fm_entry *fe)
{
	const struct engine_lanes *l = e->job->lanes;

	return !l || l->claim(l->ctx, l->lane, fe->src_name);
}

static int copyable(const struct engine *e, size_t i)
{
	return !e->plan->entries[i].noselect && !e->refused[i];
}

/* One side's NOOPs: the quickest, how many took at most half again as long, and their spread. */
static void probes_sum(const struct engine_probes *p, uint64_t *min, size_t *agree, uint64_t *spread)
{
	*min = UINT64_MAX;
	*agree = 0;
	*spread = p->n ? p->v[p->n - 1].done_ms - p->v[0].sent_ms : 0;
	for (size_t k = 0; k < p->n; k++)
		if (p->v[k].done_ms - p->v[k].sent_ms < *min)
			*min = p->v[k].done_ms - p->v[k].sent_ms;
	for (size_t k = 0; k < p->n; k++)
		*agree += p->v[k].done_ms - p->v[k].sent_ms <= *min + *min / 2;
}

enum engine_distance engine_lanes_judge(const struct imap_rtt all[2], const struct engine_probes probes[2],
					int unsure[2], char *why, size_t cap)
{
	static const char *const side[2] = {"source", "destination"};
	enum engine_distance d[2], both;
	uint64_t min[2], spread[2];
	size_t agree[2], at = 0;

	for (int i = 0; i < 2; i++) {
		const struct imap_rtt *a = &all[i];

		probes_sum(&probes[i], &min[i], &agree[i], &spread[i]);
		if ((a->n && a->min_ms < ENGINE_LANES_MIN_RTT_MS) || min[i] < ENGINE_LANES_MIN_RTT_MS)
			d[i] = ENGINE_NEAR;
		else if (agree[i] >= ENGINE_LANES_FAR_PROBES && spread[i] >= ENGINE_LANES_FAR_SPREAD_MS)
			d[i] = ENGINE_FAR;
		else
			d[i] = ENGINE_UNSURE;
		if (unsure)
			unsure[i] = d[i] == ENGINE_UNSURE;
	}
	both = d[0] == ENGINE_FAR || d[1] == ENGINE_FAR	    ? ENGINE_FAR
	       : d[0] == ENGINE_NEAR && d[1] == ENGINE_NEAR ? ENGINE_NEAR
							    : ENGINE_UNSURE;
	if (!why || !cap)
		return both;
	why[0] = 0;
	for (int i = 0; i < 2 && at < cap; i++) {
		int k = snprintf(why + at, cap - at, "%s%s %s: quickest of %llu answers %llu ms, ",
				 i ? "; " : "", side[i],
				 d[i] == ENGINE_NEAR  ? "near"
				 : d[i] == ENGINE_FAR ? "far"
						      : "not known",
				 (unsigned long long)all[i].n, (unsigned long long)all[i].min_ms);

		at = k < 0 ? cap : at + (size_t)k;
		if (at >= cap)
			break;
		k = probes[i].n
			? snprintf(why + at, cap - at,
				   "of %zu NOOPs %llu ms (%zu within half again) over %llu ms", probes[i].n,
				   (unsigned long long)min[i], agree[i], (unsigned long long)spread[i])
			: snprintf(why + at, cap - at, "no NOOP");
		at = k < 0 ? cap : at + (size_t)k;
	}
	if (at >= cap && cap > 3) /* cut: said so (the text is ASCII) */
		memcpy(why + cap - 4, "...", 4);
	return both;
}

/* Lane 0, right after its login, when it may start more connection pairs: NOOPs to the servers it
 * cannot tell near or far from the login's answers, each alone on its connection (the courtesy ID
 * still in flight, answered at once, is the one exception), until engine_lanes_judge can tell. On a
 * near server the first one, a millisecond, usually settles it; a far one takes
 * ENGINE_LANES_FAR_PROBES round trips or more. */
static void lanes_probe(struct engine *e)
{
	const struct engine_lanes *l = e->job->lanes;
	struct imap_conn *c[2] = {e->src, e->dst};
	struct imap_rtt all[2];
	int unsure[2];

	if (!l || l->lane || l->max < 2 || e->gmail || e->o->dry || e->job->budget)
		return;
	for (int k = 0; k < ENGINE_LANES_PROBES_MAX; k++) {
		for (int i = 0; i < 2; i++)
			imap_conn_rtt(c[i], &all[i]);
		if (engine_lanes_judge(all, e->probes, unsure, NULL, 0) != ENGINE_UNSURE)
			return;
		for (int i = 0; i < 2; i++) {
			struct engine_probes *p = &e->probes[i];
			struct imap_result res;
			struct fleet_err err;
			int id;

			if (!unsure[i])
				continue;
			p->v[p->n].sent_ms = fleet_now_ms();
			if ((id = imap_cmd_send_text(c[i], NULL, NULL, "NOOP", 4, &err)) < 0 ||
			    imap_cmd_wait(c[i], id, &res, FLEET_SCOPE_ACCOUNT, &err) < 0) {
				/* what went wrong shows again in the next command */
				log_debug("a NOOP to time the round trip failed: %s", err.message);
				return;
			}
			p->v[p->n++].done_ms = fleet_now_ms();
		}
	}
}

/* Near the servers (a LAN, loopback) a folder costs little more than its transfer: more pairs
 * would only add logins and TLS handshakes. Judged once per attempt by lane 0 from its answers so
 * far and lanes_probe's NOOPs (engine_lanes_judge; unsure after them: far, as the quickest answer
 * says); a helper exists only because lane 0 judged the servers far. */
static int lanes_far(struct engine *e)
{
	struct imap_rtt all[2];
	enum engine_distance d;
	char why[512];

	if (e->distance_known)
		return e->far;
	e->distance_known = 1;
	if (is_helper(e))
		return e->far = 1;
	imap_conn_rtt(e->src, &all[0]);
	imap_conn_rtt(e->dst, &all[1]);
	d = engine_lanes_judge(all, e->probes, NULL, why, sizeof(why));
	e->far = d != ENGINE_NEAR;
	log_debug(
	    "%s (near: an answer within %d ms; far: none, and %d NOOPs or more within half again of the "
	    "quickest, over %d ms or more): %s",
	    e->far ? "the servers are far" : "no more connection pairs: the servers are near",
	    ENGINE_LANES_MIN_RTT_MS, ENGINE_LANES_FAR_PROBES, ENGINE_LANES_FAR_SPREAD_MS, why);
	return e->far;
}

/* Lane 0 found the first folder with something to copy: helpers for the folders after it (the next
 * one is already begun here), as many as there are such folders, within engine_lanes.max. */
static void lanes_kick(struct engine *e)
{
	const struct engine_lanes *l = e->job->lanes;
	unsigned want = 0;

	if (!l || l->lane || e->lanes_asked || l->max < 2 || e->gmail || e->o->dry || !e->order)
		return;
	e->lanes_asked = 1;
	if (!lanes_far(e))
		return;
	for (size_t oj = e->oi + 1; oj < e->plan->n && want < l->max - 1; oj++) {
		size_t j = e->order[oj];

		/* a folder the source's STATUS says is empty gives a pair nothing to do */
		if (copyable(e, j) && &e->plan->entries[j] != e->next_fe &&
		    !(e->pre_have && e->pre_have[j] && (e->pre_si[j].have & IMAP_HAVE_MESSAGES) &&
		      e->pre_si[j].messages == 0))
			want++;
	}
	if (want) {
		unsigned got = l->start(l->ctx, want);

		if (got)
			e->lanes_started = 1;
		log_debug("%u of %u more connection pairs wanted started for the folders left", got, want);
	}
}

static void add_failure(struct engine *e, const char *folder, uint32_t uid, const struct fleet_err *err)
{
	struct engine_stats *st = e->st;
	struct engine_failure *f;

	if (st->nfailures >= ENGINE_FAILURES_KEPT_MAX)
		return;
	f = xpush(&st->failures, &st->nfailures, &st->nfailures_alloc);
	/* Shown as they are by every caller's summary: a server's folder name or text may hold ESC
	 * sequences or CR/LF (issue 13.6), escaped here once. */
	fleet_escape_term_into(f->folder, sizeof(f->folder), folder ? folder : "", folder ? strlen(folder) : 0);
	f->src_uid = uid;
	f->cls = err->cls;
	snprintf(f->code, sizeof(f->code), "%s", err->code);
	fleet_escape_term_into(f->reason, sizeof(f->reason), err->message, strlen(err->message));
}

/* A folder that could not be migrated, or only in part: reported, recorded with its reason, and the
 * account does not end "done". */
static void folder_failed(struct engine *e, const char *src_name, const char *dst_name, const struct fleet_err *why)
{
	const struct ledger *lg = &e->job->ledger;
	struct fleet_err lerr;

	add_failure(e, src_name, 0, why);
	e->st->folders_failed++;
	if (e->o->dry || !lg->ops->folder_failed)
		return;
	fleet_err_clear(&lerr);
	if (lg->ops->folder_failed(lg->ctx, src_name, dst_name, why, &lerr) < 0)
		log_warn("could not record that folder %s failed: %s", src_name, lerr.message);
}

static void flags_from_node(const struct imap_node *list, struct fleet_buf *out)
{
	fleet_buf_reset(out);
	if (!list || list->type != IMAP_NODE_LIST)
		return;
	for (const struct imap_node *n = list->child; n; n = n->next) {
		if (!imap_node_is_string(n) || fleet_strcaseeq(n->str, "\\Recent"))
			continue;
		if (fleet_buf_appendf(out, "%s%.*s", out->len ? " " : "", (int)n->len, n->str) < 0)
			continue; /* past ENGINE_FLAGS_MAX: left out whole, and the caller says so */
	}
}

/* Keeps the flags the destination stores permanently; counts what it drops. */
static char *filter_flags(const char *flags, const struct imap_mailbox *dst, uint64_t *dropped)
{
	struct fleet_buf out = FLEET_BUF_INIT(ENGINE_FLAGS_MAX);
	int keywords_ok = imap_strlist_find(&dst->permanentflags, "\\*") >= 0;
	int have_pf = dst->permanentflags.n > 0;
	const char *p = flags;

	while (p && *p) {
		const char *end = strchr(p, ' ');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char word[256];
		size_t wlen = len < sizeof(word) - 1 ? len : sizeof(word) - 1;
		int keep;

		memcpy(word, p, wlen);
		word[wlen] = '\0';
		if (word[0] == '\\')
			keep = !have_pf || imap_strlist_find(&dst->permanentflags, word) >= 0;
		else
			keep = !have_pf || keywords_ok || imap_strlist_find(&dst->permanentflags, word) >= 0;
		if (!keep || fleet_buf_appendf(&out, "%s%.*s", out.len ? " " : "", (int)len, p) < 0)
			(*dropped)++; /* refused, or past ENGINE_FLAGS_MAX: left out whole */
		p = end ? end + 1 : NULL;
	}
	return fleet_buf_detach(&out, NULL);
}

/* Flag sets compared as sets, case-insensitively. */
static int flags_equal(const char *a, const char *b)
{
	struct imap_strlist la = {0}, lb = {0};
	int eq;

	imap_code_words(a ? a : "", &la);
	imap_code_words(b ? b : "", &lb);
	eq = la.n == lb.n;
	for (size_t i = 0; eq && i < la.n; i++)
		eq = imap_strlist_find(&lb, la.v[i]) >= 0;
	imap_strlist_release(&la);
	imap_strlist_release(&lb);
	return eq;
}

/* ---- metadata fetch --------------------------------------------------------------------------------- */


/* X-GM-LABELS: system labels as they are, user labels decoded from modified UTF-7. */
static void labels_from_node(const struct imap_node *list, struct src_msg *s)
{
	size_t alloc = 0;

	if (!list || list->type != IMAP_NODE_LIST)
		return;
	for (const struct imap_node *n = list->child; n; n = n->next) {
		struct fleet_buf b = FLEET_BUF_INIT(IMAP_NAME_MAX);
		struct fleet_err e;
		char *l;

		if (!imap_node_is_string(n) || !n->len)
			continue;
		if (n->str[0] == '\\' || mutf7_decode(n->str, n->len, &b, &e) < 0) {
			fleet_buf_reset(&b);
			fleet_buf_add(&b, n->str, n->len);
		}
		if (fleet_buf_truncated(&b)) { /* longer than any label Gmail takes: not carried */
			log_warn("a label of %zu bytes is longer than %d: left out", n->len, IMAP_NAME_MAX);
			fleet_buf_release(&b);
			continue;
		}
		l = fleet_buf_detach(&b, NULL);
		s->labels = xgrow(s->labels, sizeof(*s->labels), s->nlabels + 1, &alloc);
		s->labels[s->nlabels++] = l ? l : xstrdup("");
	}
}

static int on_meta(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err)
{
	struct meta_ctx *mc = ctx;
	struct src_msg *s;

	s = xpush(&mc->list->v, &mc->list->n, &mc->list->alloc);
	s->uid = m->uid;
	s->seq = m->seq;
	s->size = m->has_size ? m->rfc822_size : 0;
	if (m->internaldate)
		snprintf(s->internaldate, sizeof(s->internaldate), "%s", m->internaldate);
	flags_from_node(m->flags, &mc->flags);
	if (fleet_buf_truncated(&mc->flags))
		log_warn("source message UID %u: flags past %d bytes left out", m->uid, ENGINE_FLAGS_MAX);
	s->flags = xstrdup(fleet_buf_cstr(&mc->flags));
	if (mc->want_labels)
		labels_from_node(imap_list_get(m->resp ? m->resp->args : NULL, "X-GM-LABELS"), s);
	if (mc->want_ident) {
		s->ident.uid = m->uid;
		if (identity_parse_internaldate(s->internaldate, &s->ident.date) < 0)
			s->ident.date = 0;
		identity_from_prefix(m->section ? m->section : "", m->section ? m->section_len : 0, s->size, &s->ident);
		s->has_ident = 1;
	}
	return 0;
}

static int cmp_src_uid(const void *a, const void *b)
{
	return FLEET_CMP(((const struct src_msg *)a)->uid, ((const struct src_msg *)b)->uid);
}

static const char *meta_items(int want_ident, int want_labels)
{
	return want_ident ? (want_labels ? "(UID FLAGS INTERNALDATE RFC822.SIZE X-GM-LABELS " IDENTITY_FETCH_ITEM ")"
					 : "(UID FLAGS INTERNALDATE RFC822.SIZE " IDENTITY_FETCH_ITEM ")")
	       : want_labels ? "(UID FLAGS INTERNALDATE RFC822.SIZE X-GM-LABELS)"
			     : "(UID FLAGS INTERNALDATE RFC822.SIZE)";
}

/* The metadata FETCH of a folder in two halves, so that it can go out right behind its EXAMINE:
 * meta_send() returns the command id (mc must stay put until meta_wait()), meta_wait() collects it,
 * sorts the list by UID and releases mc. */
static int meta_send(struct imap_conn *c, struct meta_ctx *mc, const struct imap_fetch_cb *cb, const char *uidset,
		     int want_ident, int want_labels, struct src_list *out, struct fleet_err *err)
{
	mc->list = out;
	mc->want_ident = want_ident;
	mc->want_labels = want_labels;
	mc->flags = (struct fleet_buf)FLEET_BUF_INIT(ENGINE_FLAGS_MAX);
	return imap_fetch_send(c, uidset, meta_items(want_ident, want_labels), cb, mc, err);
}

static int meta_wait(struct imap_conn *c, int id, struct meta_ctx *mc, struct fleet_err *err)
{
	int r = imap_cmd_wait(c, id, NULL, FLEET_SCOPE_FOLDER, err);

	fleet_buf_release(&mc->flags);
	if (r == 0 && mc->list->n)
		qsort(mc->list->v, mc->list->n, sizeof(*mc->list->v), cmp_src_uid);
	return r;
}

static const struct imap_fetch_cb meta_cb = {.on_message = on_meta};

static int fetch_meta(struct imap_conn *c, const char *uidset, int want_ident, int want_labels,
		      struct src_list *out, struct fleet_err *err)
{
	struct meta_ctx mc;
	int id = meta_send(c, &mc, &meta_cb, uidset, want_ident, want_labels, out, err);

	if (id < 0) {
		fleet_buf_release(&mc.flags);
		return -1;
	}
	return meta_wait(c, id, &mc, err);
}

/* ---- the copy window ---------------------------------------------------------------------------------- */

struct copy_slot {
	struct src_msg *msg;
	int started;        /* APPEND begun */
	int append_id;
	int skipped;        /* not started: cancelled, or refused before the body */
	struct fleet_err err;
	int failed;
	int append_done;    /* its result is known (MULTIAPPEND) */
	uint8_t sha[32];
	uint64_t bytes;
	uint64_t streamed;  /* body bytes passed on so far */
	char *flags;        /* filtered flags as appended */
};

struct copy_ctx {
	struct engine *e;
	const char *src_name, *dst_name;
	const struct imap_mailbox *dst_mbx;
	struct copy_slot *slots;
	size_t nslots;
	struct copy_slot *cur; /* body in flight */
	EVP_MD_CTX *md;
	EVP_MD *sha256;        /* fetched once, not looked up again for every message */
	int fatal;             /* the destination connection failed: stop the account */
	struct fleet_err fatal_err;
	int multi;             /* this window is one MULTIAPPEND command */
	int multi_id;          /* its command id, -1 until the first message starts it */
	struct copy_slot **order; /* slots in the order their messages went into the command */
	size_t norder;
	int fetch_id;          /* its body FETCH, sent ahead (presend), or -1 */
	int held;              /* sent for the next folder, not adopted yet: bodies are read and dropped */
	int touched;           /* a body came while held: the answer is (being) consumed, not usable */
};

static struct copy_slot *slot_for(struct copy_ctx *cc, uint32_t seq, uint32_t uid)
{
	for (size_t i = 0; i < cc->nslots; i++) {
		struct src_msg *m = cc->slots[i].msg;

		if ((uid && m->uid == uid) || (!uid && m->seq == seq))
			return &cc->slots[i];
	}
	return NULL;
}

static int on_body_start(void *ctx, uint32_t seq, uint32_t uid, uint64_t size, struct fleet_err *err)
{
	struct copy_ctx *cc = ctx;
	struct copy_slot *s = slot_for(cc, seq, uid);
	struct fleet_err aerr;

	if (cc->held) {
		cc->touched = 1;
		cc->cur = NULL;
		return 0;
	}
	cc->cur = s;
	if (!s || s->started || s->failed || cc->fatal)
		return 0; /* a body we did not ask for, or a repeat: read and drop it */
	if (cancelled(cc->e)) {
		s->skipped = 1; /* no new APPEND after a stop request; copied on the next run */
		cc->cur = NULL;
		return 0;
	}
	s->flags = filter_flags(s->msg->flags, cc->dst_mbx, &cc->e->st->flags_dropped);
	fleet_err_clear(&aerr);
	if (cc->multi && cc->multi_id >= 0) {
		/* The next message of the window's one APPEND command. */
		if (imap_append_next(cc->e->dst, s->flags, s->msg->internaldate[0] ? s->msg->internaldate : NULL,
				     size, &aerr) < 0) {
			cc->fatal = 1;
			cc->fatal_err = aerr;
			cc->cur = NULL;
			return 0;
		}
		s->append_id = cc->multi_id;
	} else if (imap_append_begin(cc->e->dst, cc->dst_name, s->flags,
				     s->msg->internaldate[0] ? s->msg->internaldate : NULL, size, &s->append_id,
				     &aerr) < 0) {
		if (imap_conn_is_broken(cc->e->dst) || aerr.scope >= FLEET_SCOPE_FOLDER) {
			cc->fatal = 1;
			cc->fatal_err = aerr;
		} else {
			s->failed = 1;
			s->err = aerr;
		}
		cc->cur = NULL;
		return 0;
	}
	s->started = 1;
	s->bytes = size;
	if (cc->multi) {
		if (cc->multi_id < 0)
			cc->multi_id = s->append_id;
		cc->order[cc->norder++] = s;
	}
	EVP_DigestInit_ex(cc->md, cc->sha256 ? cc->sha256 : EVP_sha256(), NULL);
	return 0;
}

static int on_body_data(void *ctx, const char *data, size_t len, struct fleet_err *err)
{
	struct copy_ctx *cc = ctx;
	struct copy_slot *s = cc->cur;

	if (!s || !s->started || cc->fatal)
		return 0;
	EVP_DigestUpdate(cc->md, data, len);
	if (imap_append_data(cc->e->dst, data, len, &cc->fatal_err) < 0)
		cc->fatal = 1;
	s->streamed += len;
	/* Crash test: half of a large body is on its way to the destination when the process dies. */
	if (s->bytes >= 65536 && s->streamed >= s->bytes / 2 && s->streamed - len < s->bytes / 2 &&
	    fleet_failpoint_armed("mid-append")) {
		struct fleet_err ferr;

		imap_conn_flush(cc->e->dst, &ferr);
		fleet_failpoint("mid-append");
	}
	return 0;
}

static int on_body_end(void *ctx, struct fleet_err *err)
{
	struct copy_ctx *cc = ctx;
	struct copy_slot *s = cc->cur;
	unsigned mdlen = 0;

	cc->cur = NULL;
	if (!s || !s->started || cc->fatal)
		return 0;
	EVP_DigestFinal_ex(cc->md, s->sha, &mdlen);
	if (!cc->multi && imap_append_end(cc->e->dst, &cc->fatal_err) < 0)
		cc->fatal = 1;
	return 0;
}

static int on_body_msg(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err)
{
	return 0;
}

static void uidset_of(struct fleet_buf *b, struct copy_slot *slots, size_t n)
{
	uint32_t *uids = xcalloc(n ? n : 1, sizeof(*uids));

	for (size_t i = 0; i < n; i++)
		uids[i] = slots[i].msg->uid;
	fleet_buf_reset(b);
	(void)imap_uidset_format(b, uids, n, 0); /* a window's set always fits ENGINE_WINDOW_SET_MAX */
	xfree(&uids);
}

static void fstart_release(struct engine *e, struct fstart *fs);
static void prefetch_next(struct engine *e, size_t busy);
static void pend_next_drop(struct engine *e);
static void prefetch_next_dst(struct engine *e);

/* The next folder's EXAMINE went out ahead (prefetch_next), but this folder's bodies are needed
 * again: drop the prefetch and select this folder again, the same one (UIDVALIDITY). */
static int reselect_after_prefetch(struct engine *e, const char *src_name, const struct imap_mailbox *src_mbx,
				   const struct imap_mailbox *dst_mbx, struct fleet_err *err)
{
	const struct fm_entry *fe = e->fs[e->cur].fe;
	struct imap_mailbox m;
	int r;

	if (!FS_NEXT(e)->fe && !FS_NEXT2(e)->fe && e->src_sel == fe)
		return 0;
	pend_next_drop(e); /* its first body FETCH too, if it went out */
	fstart_release(e, FS_NEXT2(e));
	fstart_release(e, FS_NEXT(e));
	memset(&m, 0, sizeof(m));
	r = imap_select(e->src, fe && fe->src_mailbox ? fe->src_mailbox : src_name, 1, &m, err);
	e->src_sel = fe;
	if (r == 0 && m.uidvalidity != src_mbx->uidvalidity)
		r = fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_FOLDER, ENGINE_ERR_UIDVALIDITY,
				  "the source folder %s changed its UIDVALIDITY during the copy (%u -> %u): "
				  "it is copied again on the next pass",
				  src_name, src_mbx->uidvalidity, m.uidvalidity);
	imap_mailbox_release(&m);
	if (r == 0 && e->dst_moved && fe) {
		/* the destination had moved on to the next folder as well */
		r = imap_select(e->dst, fe->dst_name, 0, &m, err);
		if (r == 0 && m.uidvalidity != dst_mbx->uidvalidity)
			r = fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_FOLDER, ENGINE_ERR_UIDVALIDITY,
					  "the destination folder %s changed its UIDVALIDITY during the copy: it is "
					  "copied again on the next pass",
					  fe->dst_name);
		imap_mailbox_release(&m);
		e->dst_moved = 0;
	}
	return r;
}

/* Copies one window of messages (retry: the same window again after a refused MULTIAPPEND, its
 * ledger window already open). Returns 0, or -1 when the account cannot go on (err). */
static const struct imap_fetch_cb body_cb = {on_body_msg, on_body_start, on_body_data, on_body_end};
static void pend_drop(struct engine *e);

static struct copy_ctx *copy_ctx_new(struct engine *e, const char *src_name, const char *dst_name,
				     const struct imap_mailbox *dst_mbx, struct src_msg **msgs, size_t n)
{
	struct copy_ctx *cc = xcalloc(1, sizeof(*cc));

	cc->e = e;
	cc->src_name = src_name;
	cc->dst_name = dst_name;
	cc->dst_mbx = dst_mbx;
	cc->slots = xcalloc(n ? n : 1, sizeof(*cc->slots));
	cc->nslots = n;
	cc->md = EVP_MD_CTX_new();
	cc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	cc->multi = e->multiappend && n > 1;
	cc->multi_id = -1;
	cc->fetch_id = -1;
	cc->order = xcalloc(n ? n : 1, sizeof(*cc->order));
	for (size_t i = 0; i < n; i++)
		cc->slots[i].msg = msgs[i];
	return cc;
}

static void copy_ctx_free(struct copy_ctx **pcc)
{
	struct copy_ctx *cc = *pcc;

	if (!cc)
		return;
	for (size_t i = 0; i < cc->nslots; i++)
		xfree(&cc->slots[i].flags);
	xfree(&cc->slots);
	xfree(&cc->order);
	EVP_MD_CTX_free(cc->md);
	EVP_MD_free(cc->sha256);
	xfree(pcc);
}

/* Window N+1's body FETCH goes out once window N's bodies are all in and its APPENDs are on the
 * wire: the source answers while the destination does and the ledger records window N. Its answer
 * is read by copy_window(N+1) after window_begin(N+1), so nothing is appended before that. */
static void presend(struct engine *e, const char *src_name, const char *dst_name, const struct imap_mailbox *dst_mbx,
		    struct src_msg **next, size_t nnext)
{
	struct fleet_buf set = FLEET_BUF_INIT(ENGINE_WINDOW_SET_MAX);
	struct fleet_err ferr;
	struct copy_ctx *cc;

	if (!nnext || e->pend || imap_conn_is_broken(e->src) || e->src_sel != e->fs[e->cur].fe)
		return;
	cc = copy_ctx_new(e, src_name, dst_name, dst_mbx, next, nnext);
	uidset_of(&set, cc->slots, nnext);
	fleet_err_clear(&ferr);
	cc->fetch_id = imap_fetch_send(e->src, fleet_buf_cstr(&set), "(UID BODY.PEEK[])", &body_cb, cc, &ferr);
	fleet_buf_release(&set);
	if (cc->fetch_id < 0 || imap_conn_flush(e->src, &ferr) < 0) {
		if (cc->fetch_id > 0 && !imap_conn_is_broken(e->src)) {
			e->pend = cc;
			pend_drop(e);
			return;
		}
		copy_ctx_free(&cc);
		return;
	}
	e->pend = cc;
	if (e->next_last)
		prefetch_next(e, 1); /* the folder's last FETCH is out: the next folder's EXAMINE behind it */
}

/* An early body FETCH that will not be used: its answer read away (the callbacks take nothing:
 * the caller marked cc fatal or held), then cc freed. */
static void fetch_read_away(struct engine *e, struct copy_ctx **cc)
{
	struct fleet_err ferr;

	if ((*cc)->fetch_id > 0 && !imap_conn_is_broken(e->src))
		(void)imap_cmd_wait(e->src, (*cc)->fetch_id, NULL, FLEET_SCOPE_FOLDER, &ferr);
	copy_ctx_free(cc);
}

/* An early FETCH whose window will not be copied now (a failure, a stop, a refused MULTIAPPEND): its
 * answer is read and dropped (fatal: the callbacks append nothing), so that the source connection
 * is free for what comes next. */
static void pend_drop(struct engine *e)
{
	struct copy_ctx *cc = e->pend;

	if (!cc)
		return;
	e->pend = NULL;
	cc->fatal = 1;
	fetch_read_away(e, &cc);
}

/* The next folder's early body FETCH (presend_next_folder), not taken: read away, nothing of it
 * appended (held). Before anything else is asked of the source, and before that folder's fstart,
 * which its slots point into, is released. */
static void pend_next_drop(struct engine *e)
{
	struct copy_ctx *cc = e->pend_next;

	if (!cc)
		return;
	e->pend_next = NULL;
	e->pend_next_fe = NULL;
	cc->held = 1;
	fetch_read_away(e, &cc);
}

/* copy_window of a folder's first window takes the FETCH presend_next_folder sent for it only when
 * it asked for exactly this window's messages, in this order, the same way (one MULTIAPPEND or
 * not), and no body of it has been read yet; else it is read away and the window fetched anew. */
static void pend_next_adopt(struct engine *e, const struct imap_mailbox *dst_mbx, struct src_msg **msgs, size_t n)
{
	struct copy_ctx *pn = e->pend_next;
	int same;

	if (!pn)
		return;
	same = !e->pend && pn->nslots == n && pn->dst_mbx == dst_mbx && !pn->touched && pn->fetch_id > 0 &&
	       !imap_cmd_done(e->src, pn->fetch_id) && pn->multi == (e->multiappend && n > 1);
	for (size_t i = 0; same && i < n; i++)
		same = pn->slots[i].msg == msgs[i];
	if (!same) {
		log_debug("the body FETCH sent ahead for this folder is not this window's: read away");
		pend_next_drop(e);
		return;
	}
	e->pend_next = NULL;
	e->pend_next_fe = NULL;
	pn->held = 0;
	e->pend = pn;
}

static void presend_next_folder(struct engine *e);

/* IMAPFLEET_FAILPOINT=split-pair-drop: 1 the first time a pair other than the first reaches the
 * end of a window of a folder another pair split, in this process (split_folder.sh). */
static int split_pair_drop(const struct engine *e)
{
	static atomic_int fired;

	return e->in_split && e->job->lanes && e->job->lanes->lane > 0 &&
	       fleet_failpoint_armed("split-pair-drop") && atomic_exchange(&fired, 1) == 0;
}

static int copy_window(struct engine *e, int64_t folder, const char *src_name, const char *dst_name,
		       const struct imap_mailbox *src_mbx, struct imap_mailbox *dst_mbx, uint32_t *dst_uidnext,
		       struct src_msg **msgs, size_t n, struct ledger_folder_stats *fst, int retry,
		       struct src_msg **next, size_t nnext, struct fleet_err *err)
{
	const struct ledger *lg = &e->job->ledger;
	struct copy_ctx *cc;
	struct fleet_buf set = FLEET_BUF_INIT(ENGINE_WINDOW_SET_MAX);
	struct fleet_err ferr;
	int rc = 0, r;
	uint32_t max_uid = 0;

	if (!retry)
		pend_next_adopt(e, dst_mbx, msgs, n);
	else
		pend_next_drop(e);
	/* this window's FETCH went out already, behind the previous window's APPENDs (presend), or
	 * behind the previous folder's (presend_next_folder) */
	cc = !retry && e->pend ? e->pend : copy_ctx_new(e, src_name, dst_name, dst_mbx, msgs, n);
	e->pend = NULL;
	/* the next window's FETCH may go out early only where nothing changes windows meanwhile */
	if (retry || e->job->budget)
		nnext = 0;
	/* Nothing of this window is appended before its window_begin: a FETCH sent early is read (and
	 * its bodies appended) only after it. */
	if (!retry && lg->ops->window_begin(lg->ctx, folder, dst_mbx->uidvalidity, *dst_uidnext, msgs[0]->uid,
					    msgs[n - 1]->uid, err) < 0) {
		rc = -1;
		goto out;
	}
	fleet_err_clear(&ferr);
	if (cc->fetch_id > 0) {
		if (e->last_window && !retry)
			prefetch_next(e, 1); /* behind the FETCH sent ahead, if not sent already */
		r = imap_cmd_wait(e->src, cc->fetch_id, NULL, FLEET_SCOPE_FOLDER, &ferr);
		cc->fetch_id = -1;
	} else {
		/* the source went on to a later folder ahead (prefetch_next2): back to this one first */
		if (e->src_sel != e->fs[e->cur].fe &&
		    reselect_after_prefetch(e, src_name, src_mbx, dst_mbx, err) < 0) {
			rc = -1;
			goto out;
		}
		uidset_of(&set, cc->slots, n);
		cc->fetch_id = imap_fetch_send(e->src, fleet_buf_cstr(&set), "(UID BODY.PEEK[])", &body_cb, cc, &ferr);
		r = cc->fetch_id < 0 ? -1 : 0;
		if (r == 0 && e->last_window && !retry)
			prefetch_next(e, 1); /* the next folder's EXAMINE rides behind this FETCH */
		if (r == 0)
			r = imap_cmd_wait(e->src, cc->fetch_id, NULL, FLEET_SCOPE_FOLDER, &ferr);
		cc->fetch_id = -1;
	}
	if (r < 0 && (imap_conn_is_broken(e->src) || ferr.scope >= FLEET_SCOPE_ACCOUNT)) {
		/* The source went away mid-window, or refused the rest for the whole account (a daily
		 * limit, a throttle): what was appended is matched on the next attempt, and the messages
		 * whose bodies did not come are not the messages' fault. */
		*err = ferr;
		cc->fatal = 1;
	}
	if (e->last_window && !retry && !cc->fatal)
		prefetch_next(e, 0); /* answered while this window's APPENDs complete */
	if (!cc->multi && !cc->fatal && r == 0)
		presend(e, src_name, dst_name, dst_mbx, next, nnext);
	if (cc->multi && cc->multi_id >= 0 && !cc->fatal) {
		struct imap_uidset uids = {0};
		uint32_t uidv = 0;
		struct fleet_err merr;

		int ended;

		fleet_err_clear(&merr);
		ended = imap_append_end(e->dst, &merr);
		if (ended == 0 && e->last_window && !retry)
			prefetch_next_dst(e); /* the next SELECT rides behind this APPEND */
		if (ended == 0 && r == 0)
			presend(e, src_name, dst_name, dst_mbx, next, nnext); /* read after this window's end */
		if (ended == 0 && r == 0 && e->last_window && !retry)
			presend_next_folder(e); /* the next folder's bodies, answered while these APPENDs are */
		if (ended < 0 || imap_append_wait_multi(e->dst, cc->multi_id, &uidv, &uids, &merr) < 0) {
			imap_uidset_release(&uids);
			/* A full destination refuses the whole batch, though part of it may fit: one by one
			 * it takes what fits, and the first message refused ends the account. */
			if (imap_conn_is_broken(e->dst) ||
			    (merr.scope >= FLEET_SCOPE_FOLDER && (strcmp(merr.code, IMAP_CODE_OVERQUOTA) != 0 || cc->norder < 2))) {
				cc->fatal = 1;
				cc->fatal_err = merr;
			} else {
				/* The server refused the batch as a whole (one message too big, say):
				 * nothing of it was stored. Copy this window again message by message so
				 * that only the refused message fails, and do so from now on. */
				if (strcmp(merr.code, IMAP_CODE_OVERQUOTA) == 0)
					log_info("MULTIAPPEND of %zu messages refused, the destination is full: copying "
						 "what still fits one by one",
						 cc->norder);
				else
					log_info("MULTIAPPEND of %zu messages refused (%s): copying them one by one",
						 cc->norder, merr.message);
				e->multiappend = 0;
				pend_drop(e); /* the source answers the early FETCH first: read it away */
				if (reselect_after_prefetch(e, src_name, src_mbx, dst_mbx, err) < 0) {
					rc = -1;
					goto out;
				}
				rc = copy_window(e, folder, src_name, dst_name, src_mbx, dst_mbx, dst_uidnext, msgs, n,
						 fst, 1, NULL, 0, err);
				goto out;
			}
		} else {
			for (size_t i = 0; i < cc->norder; i++) {
				uint32_t uid = 0;

				if (uidv && imap_uidset_nth(&uids, i, &uid) == 0)
					cc->order[i]->msg->dst_uid = uid;
				cc->order[i]->append_done = 1;
				if (uid >= max_uid)
					max_uid = uid;
			}
			imap_uidset_release(&uids);
		}
	} else if (cc->multi && cc->multi_id >= 0 && cc->fatal) {
		/* A half-sent MULTIAPPEND cannot be finished: the server drops it whole, as it must;
		 * mark nothing as appended and let the open window cover it. */
		for (size_t i = 0; i < cc->norder; i++)
			cc->order[i]->started = 0;
	}
	/* A message the source listed but whose body never came (expunged meanwhile, a server bug, a
	 * FETCH answered NO) was not copied: it fails with that reason instead of vanishing from the
	 * account's counts. Not after a broken connection: then the next attempt copies it. */
	if (!cc->fatal && !imap_conn_is_broken(e->src)) {
		for (size_t i = 0; i < n; i++) {
			struct copy_slot *s = &cc->slots[i];

			if (s->started || s->failed || s->skipped || s->append_done)
				continue;
			s->failed = 1;
			fleet_err_set(&s->err, FLEET_ERR_PERMANENT, FLEET_SCOPE_MESSAGE, ENGINE_ERR_NO_BODY,
				      "the source listed this message but did not send its body%s%s",
				      fleet_err_is_set(&ferr) ? ": " : "", fleet_err_is_set(&ferr) ? ferr.message : "");
		}
	}
	if (!cc->multi && e->last_window && !retry && !cc->fatal) {
		prefetch_next_dst(e);
		if (r == 0)
			presend_next_folder(e);
	}
	/* Collect every APPEND result, also after a failure, so the ledger knows what landed. */
	for (size_t i = 0; i < n; i++) {
		struct copy_slot *s = &cc->slots[i];
		struct imap_append_result ar;

		if (!s->started || s->append_done)
			continue;
		if (imap_conn_is_broken(e->dst)) {
			s->started = 0; /* unknown outcome: the open window covers it */
			continue;
		}
		memset(&ar, 0, sizeof(ar));
		if (imap_append_wait(e->dst, s->append_id, &ar, &s->err) < 0) {
			s->failed = 1;
			if (imap_conn_is_broken(e->dst) || s->err.scope >= FLEET_SCOPE_FOLDER) {
				if (!cc->fatal) {
					cc->fatal = 1;
					cc->fatal_err = s->err;
				}
			}
			continue;
		}
		s->msg->dst_uid = ar.has_uid ? ar.uid : 0;
		if (ar.has_uid && ar.uid >= max_uid)
			max_uid = ar.uid;
	}
	if (!cc->fatal && split_pair_drop(e)) {
		/* Test (IMAPFLEET_FAILPOINT=split-pair-drop): a pair copying windows of another pair's
		 * split loses its connections after its APPENDs landed and before any is recorded. */
		for (size_t i = 0; i < n; i++)
			cc->slots[i].started = 0;
		cc->fatal = 1;
		fleet_err_set(&cc->fatal_err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, IMAP_ERR_EOF,
			      "connection closed by the destination (IMAPFLEET_FAILPOINT=split-pair-drop)");
	}
	if (cc->fatal && !fleet_err_is_set(err))
		*err = cc->fatal_err;
	for (size_t i = 0; i < n; i++)
		if (cc->slots[i].started && !cc->slots[i].failed) {
			fleet_failpoint("after-append"); /* the crash window: on the destination, not recorded */
			break;
		}

	/* Record what happened, then flush: only then is the window closed. */
	for (size_t i = 0; i < n; i++) {
		struct copy_slot *s = &cc->slots[i];
		struct ledger_record rec;

		if (s->skipped || (!s->started && !s->failed))
			continue;
		memset(&rec, 0, sizeof(rec));
		rec.src_uidvalidity = src_mbx->uidvalidity;
		rec.src_uid = s->msg->uid;
		rec.size = s->started ? s->bytes : s->msg->size;
		rec.internaldate = s->msg->internaldate;
		rec.flags = s->flags ? s->flags : s->msg->flags;
		rec.dst_uidvalidity = dst_mbx->uidvalidity;
		if (s->failed) {
			if (s->err.scope >= FLEET_SCOPE_FOLDER)
				continue; /* not the message's fault: retried with the account */
			rec.state = LEDGER_FAILED;
			rec.error = s->err.message;
			e->st->msgs_failed++;
			fst->failed++;
			add_failure(e, src_name, s->msg->uid, &s->err);
			log_warn("message uid %u (%llu bytes) not copied: %s", s->msg->uid,
				 (unsigned long long)s->msg->size, s->err.message);
		} else {
			rec.state = LEDGER_COPIED;
			rec.sha256 = s->sha;
			rec.dst_uid = s->msg->dst_uid;
			e->st->msgs_copied++;
			e->st->bytes_copied += s->bytes;
			fst->copied++;
			fst->bytes += s->bytes;
		}
		if (lg->ops->record(lg->ctx, folder, &rec, err) < 0) {
			rc = -1;
			goto out;
		}
	}
	if (cc->fatal) {
		/* Record what surely landed, and leave the window open: the next attempt matches the rest. */
		struct fleet_err ferr2;

		if (lg->ops->flush(lg->ctx, &ferr2) < 0)
			log_warn("could not record the last window: %s", ferr2.message);
		rc = -1;
		goto out;
	}
	/* The rows and the end of the window commit together, so a crash never leaves one without
	 * the other. */
	if (lg->ops->window_end(lg->ctx, folder, err) < 0) {
		rc = -1;
		goto out;
	}
	if (max_uid)
		*dst_uidnext = max_uid + 1;
	else if (!imap_conn_has_cap(e->dst, "UIDPLUS")) {
		struct imap_status_info si;

		if (imap_status(e->dst, dst_name, &si, err) < 0) {
			rc = -1;
			goto out;
		}
		if (si.have & IMAP_HAVE_UIDNEXT)
			*dst_uidnext = si.uidnext;
	}
out:
	if (cc->fetch_id > 0) {
		/* sent ahead but never read (window_begin failed): read away, nothing appended */
		cc->fatal = 1;
		if (!imap_conn_is_broken(e->src))
			(void)imap_cmd_wait(e->src, cc->fetch_id, NULL, FLEET_SCOPE_FOLDER, &ferr);
	}
	if (rc < 0)
		pend_drop(e);
	copy_ctx_free(&cc);
	fleet_buf_release(&set);
	return rc;
}

/* ---- one folder ------------------------------------------------------------------------------------------ */

/* ---- daily budgets ------------------------------------------------------------------------------ */

static int over_budget(const struct engine_budget *b, int side, int dir, uint64_t size)
{
	uint64_t lim = b->limit[side][dir], used = b->used[side][dir];

	/* At the start of a day (nothing used yet) one message goes through whatever its size. */
	return lim && used > 0 && (used >= lim || size > lim - used);
}

/* How many of the n messages at todo fit in today's budgets; counts them as used. */
static size_t budget_fit(struct engine *e, struct src_msg **todo, size_t n)
{
	struct engine_budget *b = e->job->budget;
	size_t k;

	if (!b)
		return n;
	for (k = 0; k < n; k++) {
		uint64_t sz = todo[k]->size;

		if (over_budget(b, 0, ENGINE_DOWN, sz) || over_budget(b, 1, ENGINE_UP, sz))
			break;
		b->used[0][ENGINE_DOWN] += sz;
		b->used[1][ENGINE_UP] += sz;
	}
	return k;
}

/* Not one more message fits: the attempt stops with DAILY_BUDGET, the rest of the folder pending. */
static void budget_stop(struct engine *e, struct src_msg **todo, size_t n, struct fleet_err *err)
{
	struct engine_budget *b = e->job->budget;
	int side = over_budget(b, 0, ENGINE_DOWN, todo[0]->size) ? 0 : 1;
	int dir = side ? ENGINE_UP : ENGINE_DOWN;

	for (size_t i = 0; i < n; i++)
		b->pending += todo[i]->size;
	fleet_err_set(err, FLEET_ERR_THROTTLED, FLEET_SCOPE_ACCOUNT, ENGINE_CODE_DAILY_BUDGET,
		      "daily budget reached: %.1f of %.1f MB %s the %s used today (--daily-%s%d); %zu messages "
		      "of this folder wait for the next day",
		      (double)b->used[side][dir] / 1048576.0, (double)b->limit[side][dir] / 1048576.0,
		      side ? "uploaded to" : "downloaded from", side ? "destination" : "source",
		      dir == ENGINE_UP ? "upload" : "download", side + 1, n);
}

/* The budget let only n of the want messages of the window at todo + off through: the attempt
 * stops (budget_stop) with every message not copied yet pending, the window's rest and the windows
 * still to come (below it with --newest-first, above it otherwise). */
static void budget_stop_window(struct engine *e, struct src_msg **todo, size_t ntodo, size_t off, size_t n,
			       size_t want, struct fleet_err *err)
{
	size_t from = e->o->newest_first ? 0 : off + want, to = e->o->newest_first ? off : ntodo;

	budget_stop(e, todo + off + n, want - n, err);
	for (size_t i = from; i < to; i++)
		e->job->budget->pending += todo[i]->size;
}

/* The bytes of the folders after the one that stopped, by STATUS SIZE where the source has it. */
static uint64_t pending_after(const struct fm_plan *plan, size_t i, const int *have, const struct imap_status_info *si,
			      const int *dhave, const struct imap_status_info *dsi)
{
	uint64_t sum = 0;

	for (size_t j = i + 1; j < plan->n; j++) {
		uint64_t d;

		if (!have[j] || !(si[j].have & IMAP_HAVE_SIZE))
			continue;
		d = dhave[j] && (dsi[j].have & IMAP_HAVE_SIZE) ? dsi[j].size : 0;
		sum += si[j].size > d ? si[j].size - d : 0;
	}
	return sum;
}

static int in_age_window(const struct engine *e, const struct src_msg *m)
{
	int64_t t, age_days;

	if (!e->o->maxage_days && !e->o->minage_days)
		return 1;
	if (identity_parse_internaldate(m->internaldate, &t) < 0)
		return 1; /* no date: never filtered out silently */
	age_days = ((int64_t)e->now - t) / 86400;
	if (e->o->maxage_days && age_days >= (int64_t)e->o->maxage_days)
		return 0;
	if (e->o->minage_days && age_days < (int64_t)e->o->minage_days)
		return 0;
	return 1;
}

static int cmp_pair_src(const void *key, const void *elem)
{
	return FLEET_CMP(*(const uint32_t *)key, ((const struct ledger_uid_pair *)elem)->src_uid);
}

/* Destination identities for UIDs >= from (1 = whole folder). */
static int fetch_dst_idents(struct engine *e, uint32_t from, struct msg_ident **out, size_t *nout,
			    struct fleet_err *err)
{
	struct src_list dl = {0};
	char set[32];

	*out = NULL;
	*nout = 0;
	snprintf(set, sizeof(set), "%u:*", from ? from : 1);
	if (fetch_meta(e->dst, set, 1, 0, &dl, err) < 0) {
		src_list_release(&dl);
		return -1;
	}
	*out = xcalloc(dl.n ? dl.n : 1, sizeof(**out));
	for (size_t i = 0; i < dl.n; i++)
		if (dl.v[i].uid >= from)
			(*out)[(*nout)++] = dl.v[i].ident;
	src_list_release(&dl);
	return 0;
}

/* The last bytes of a message: BODY.PEEK[]<off.len> of one UID into out. */
struct tail_ctx {
	struct fleet_buf *out;
	int got;
};

static int on_tail(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err)
{
	struct tail_ctx *t = ctx;

	(void)err;
	if (m->section && !t->got)
		t->got = fleet_buf_append(t->out, m->section, m->section_len) < 0 ? -1 : 1;
	return 0;
}

static int fetch_tail(struct imap_conn *c, uint32_t uid, uint64_t off, unsigned len, struct fleet_buf *out)
{
	static const struct imap_fetch_cb cb = {.on_message = on_tail};
	struct tail_ctx t = {out, 0};
	struct fleet_err err;
	char set[16], items[64];

	snprintf(set, sizeof(set), "%u", uid);
	snprintf(items, sizeof(items), "(UID BODY.PEEK[]<%llu.%u>)", (unsigned long long)off, len);
	return imap_fetch(c, set, items, &cb, &t, &err) < 0 || t.got != 1 ? -1 : 0;
}

/* The destination copy is the source message with its line ends written as Courier writes them
 * (identity_tail_as_stored: every line end as CRLF, a bare CR dropped, a CRLF added when there is
 * no final line end),
 * compared whole: the source's bytes so rewritten are the destination's, byte for byte. */
static int rewritten_copy(struct engine *e, const struct msg_ident *s, const struct msg_ident *d)
{
	struct fleet_buf a = FLEET_BUF_INIT(IDENTITY_REWRITE_MAX), t = FLEET_BUF_INIT(2 * IDENTITY_REWRITE_MAX + 4),
			 b = FLEET_BUF_INIT(IDENTITY_REWRITE_MAX);
	size_t skip = 0;
	int ok = 0;

	if (d->size <= IDENTITY_REWRITE_MAX && fetch_tail(e->src, s->uid, 0, (unsigned)s->size, &a) == 0 &&
	    a.len == s->size) {
		identity_tail_as_stored(a.data, a.len, &t, &skip);
		if (!skip && !fleet_buf_truncated(&t) && t.len == d->size &&
		    fetch_tail(e->dst, d->uid, 0, (unsigned)d->size, &b) == 0 && b.len == t.len &&
		    memcmp(t.data, b.data, t.len) == 0)
			ok = 1;
	}
	fleet_buf_release(&a);
	fleet_buf_release(&t);
	fleet_buf_release(&b);
	return ok;
}

/* identity_pad_fn: the destination copy is the source message with its end written as Courier
 * writes it (identity_tail_as_stored: line ends as CRLF, a CRLF added when there is no final line
 * end). 1 or 2 bytes longer, all the growth in the last bytes: the destination's last bytes are
 * the source's so rewritten. Else (a bare LF or CR inside, or a weak identity: no Message-ID):
 * the whole messages compared. */
static int padded_copy(void *ctx, const struct msg_ident *s, const struct msg_ident *d)
{
	struct engine *e = ctx;
	struct fleet_buf a = FLEET_BUF_INIT(ENGINE_PAD_TAIL + 2), t = FLEET_BUF_INIT(2 * ENGINE_PAD_TAIL + 4),
			 b = FLEET_BUF_INIT(2 * ENGINE_PAD_TAIL + 4);
	unsigned n = s->size < ENGINE_PAD_TAIL ? (unsigned)s->size : ENGINE_PAD_TAIL;
	size_t skip = 0;
	int ok = 0;

	if (d->size > s->size + 2 || d->size <= s->size || identity_is_weak(s))
		return rewritten_copy(e, s, d);
	if (n > 0 && fetch_tail(e->src, s->uid, s->size - n, n, &a) == 0 && a.len == n) {
		identity_tail_as_stored(a.data, a.len, &t, &skip);
		/* the copy's growth is all in the rewritten tail */
		if (!fleet_buf_truncated(&t) && t.len + s->size == d->size + (n - skip) &&
		    fetch_tail(e->dst, d->uid, d->size - t.len, (unsigned)t.len, &b) == 0 && b.len == t.len &&
		    memcmp(t.data, b.data, t.len) == 0)
			ok = 1;
	}
	fleet_buf_release(&a);
	fleet_buf_release(&t);
	fleet_buf_release(&b);
	/* growth not all in the tail: a bare LF or CR inside, written CRLF */
	return ok ? 1 : rewritten_copy(e, s, d);
}

/* Records as copied the source messages found on the destination by identity. */
/* Records as copied the source messages found on the destination by identity. Destination
 * messages the ledger already accounts for (known[], the dst UIDs of copied rows) are not
 * candidates: a new message identical to one copied earlier must still be copied. */
static int match_existing(struct engine *e, int64_t folder, const struct imap_mailbox *src_mbx,
			  const struct imap_mailbox *dst_mbx, struct src_msg **todo, size_t ntodo, uint32_t from,
			  const struct ledger_uid_pair *pairs, size_t npairs, size_t *nmatched,
			  struct identity_tally *tally, struct fleet_err *err)
{
	const struct ledger *lg = &e->job->ledger;
	struct msg_ident *dst = NULL, *src;
	uint32_t *matched;
	size_t ndst = 0;

	*nmatched = 0;
	memset(tally, 0, sizeof(*tally));
	if (ntodo == 0)
		return 0;
	if (fetch_dst_idents(e, from, &dst, &ndst, err) < 0)
		return -1;
	if (npairs && ndst) {
		uint32_t *known = xcalloc(npairs, sizeof(*known));
		size_t nknown = 0, k = 0;

		for (size_t i = 0; i < npairs; i++)
			if (pairs[i].dst_uid)
				known[nknown++] = pairs[i].dst_uid;
		if (nknown)
			qsort(known, nknown, sizeof(*known), fleet_cmp_u32);
		for (size_t i = 0; i < ndst; i++)
			if (!nknown || !bsearch(&dst[i].uid, known, nknown, sizeof(*known), fleet_cmp_u32))
				dst[k++] = dst[i];
		ndst = k;
		xfree(&known);
	}
	src = xcalloc(ntodo, sizeof(*src));
	matched = xcalloc(ntodo, sizeof(*matched));
	for (size_t i = 0; i < ntodo; i++)
		src[i] = todo[i]->ident;
	*nmatched = identity_match(src, ntodo, dst, ndst, matched, padded_copy, e, tally);
	for (size_t i = 0; i < ntodo; i++) {
		struct ledger_record rec;
		struct src_msg *m = NULL;

		if (!matched[i])
			continue;
		for (size_t k = 0; k < ntodo; k++)
			if (todo[k]->uid == src[i].uid)
				m = todo[k];
		if (!m)
			continue;
		m->copied = 1;
		m->dst_uid = matched[i];
		if (e->o->dry)
			continue;
		memset(&rec, 0, sizeof(rec));
		rec.src_uidvalidity = src_mbx->uidvalidity;
		rec.src_uid = m->uid;
		rec.size = m->size;
		rec.internaldate = m->internaldate;
		rec.flags = m->flags;
		rec.dst_uidvalidity = dst_mbx->uidvalidity;
		rec.dst_uid = matched[i];
		rec.state = LEDGER_COPIED;
		if (lg->ops->record(lg->ctx, folder, &rec, err) < 0)
			goto fail;
	}
	xfree(&src);
	xfree(&matched);
	xfree(&dst);
	return e->o->dry ? 0 : lg->ops->flush(lg->ctx, err);
fail:
	xfree(&src);
	xfree(&matched);
	xfree(&dst);
	return -1;
}

struct dst_flag {
	uint32_t uid;
	size_t order; /* place in the responses: the later of two for one UID is the newer */
	char *flags;
};

struct dst_flags_ctx {
	struct dst_flag *v;
	size_t n, alloc;
	struct fleet_buf tmp;
};

static int on_dst_flags(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err)
{
	struct dst_flags_ctx *d = ctx;

	d->v = xgrow(d->v, sizeof(*d->v), d->n + 1, &d->alloc);
	flags_from_node(m->flags, &d->tmp);
	if (fleet_buf_truncated(&d->tmp))
		log_warn("destination message UID %u: flags past %d bytes left out", m->uid, ENGINE_FLAGS_MAX);
	d->v[d->n].uid = m->uid;
	d->v[d->n].order = d->n;
	d->v[d->n++].flags = xstrdup(fleet_buf_cstr(&d->tmp));
	return 0;
}

static int cmp_dst_flag(const void *a, const void *b)
{
	const struct dst_flag *x = a, *y = b;

	return x->uid != y->uid ? FLEET_CMP(x->uid, y->uid) : FLEET_CMP(x->order, y->order);
}

static int cmp_dst_flag_uid(const void *a, const void *b)
{
	return FLEET_CMP(((const struct dst_flag *)a)->uid, ((const struct dst_flag *)b)->uid);
}

/* Sorts by UID and keeps one entry per UID, the last received (a flag update that came during
 * the FETCH is newer than the FETCH's own answer). */
static void dst_flags_index(struct dst_flags_ctx *d)
{
	size_t w = 0;

	if (d->n == 0)
		return;
	qsort(d->v, d->n, sizeof(*d->v), cmp_dst_flag);
	for (size_t r = 0; r < d->n; r++) {
		if (w > 0 && d->v[w - 1].uid == d->v[r].uid) {
			xfree(&d->v[w - 1].flags);
			d->v[w - 1] = d->v[r];
			continue;
		}
		d->v[w++] = d->v[r];
	}
	d->n = w;
}

/* Brings flag changes of already-copied messages over (delta passes). */
/* Whether an earlier pass copied any of these messages (then sync_flags reads the destination). */
static int any_copied_before(const struct src_list *sl)
{
	for (size_t i = 0; i < sl->n; i++)
		if (sl->v[i].copied && sl->v[i].dst_uid)
			return 1;
	return 0;
}

static int sync_flags(struct engine *e, struct src_list *sl, const struct imap_mailbox *dst_mbx,
		      struct fleet_err *err)
{
	struct dst_flags_ctx d = {NULL, 0, 0, FLEET_BUF_INIT(ENGINE_FLAGS_MAX)};
	struct imap_fetch_cb cb = {.on_message = on_dst_flags};
	size_t ncopied = 0;
	int rc = 0;

	for (size_t i = 0; i < sl->n; i++)
		if (sl->v[i].copied && sl->v[i].dst_uid)
			ncopied++;
	/* Nothing copied by an earlier pass (this one set the flags with APPEND): no need to read
	 * every destination message's flags. */
	if (ncopied == 0)
		return 0;
	if (imap_fetch(e->dst, "1:*", "(UID FLAGS)", &cb, &d, err) < 0) {
		rc = -1;
		goto out;
	}
	/* Looked up by UID: a linear scan per message would be quadratic in large folders. */
	dst_flags_index(&d);
	for (size_t i = 0; i < sl->n; i++) {
		struct src_msg *m = &sl->v[i];
		struct dst_flag key = {0}, *k;
		char *want;
		char set[16];

		if (!m->copied || !m->dst_uid)
			continue;
		key.uid = m->dst_uid;
		k = d.n ? bsearch(&key, d.v, d.n, sizeof(*d.v), cmp_dst_flag_uid) : NULL;
		if (!k)
			continue;
		want = filter_flags(m->flags, dst_mbx, &e->st->flags_dropped);
		if (!flags_equal(want, k->flags)) {
			snprintf(set, sizeof(set), "%u", m->dst_uid);
			if (imap_uid_store(e->dst, set, IMAP_STORE_REPLACE, want, 1, err) < 0) {
				xfree(&want);
				rc = -1;
				goto out;
			}
			e->st->flags_updated++;
		}
		xfree(&want);
	}
out:
	for (size_t k = 0; k < d.n; k++)
		xfree(&d.v[k].flags);
	xfree(&d.v);
	fleet_buf_release(&d.tmp);
	return rc;
}

/* ---- Gmail to Gmail: labels ------------------------------------------------------------------- */

struct dst_labels {
	uint32_t uid;
	char **labels;
	size_t nlabels;
};
struct dst_labels_ctx {
	struct dst_labels *v;
	size_t n, alloc;
};

static int on_dst_labels(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err)
{
	struct dst_labels_ctx *d = ctx;
	struct src_msg tmp;

	(void)err;
	memset(&tmp, 0, sizeof(tmp));
	labels_from_node(imap_list_get(m->resp ? m->resp->args : NULL, "X-GM-LABELS"), &tmp);
	d->v = xgrow(d->v, sizeof(*d->v), d->n + 1, &d->alloc);
	d->v[d->n].uid = m->uid;
	d->v[d->n].labels = tmp.labels;
	d->v[d->n].nlabels = tmp.nlabels;
	d->n++;
	return 0;
}

static int cmp_dst_labels(const void *a, const void *b)
{
	return FLEET_CMP(((const struct dst_labels *)a)->uid, ((const struct dst_labels *)b)->uid);
}

static int has_label(char *const *labels, size_t n, const char *l)
{
	for (size_t i = 0; i < n; i++)
		if (gmail_same_label(labels[i], l))
			return 1;
	return 0;
}

/* Every copied message gets on the destination the labels it has on the source: what is missing is
 * added (STORE +X-GM-LABELS), what the source no longer has is removed (-X-GM-LABELS), so a delta
 * pass carries label changes. Views such as \All are left alone. One FETCH of the destination's
 * labels, then a STORE per message that differs. */
static int sync_labels(struct engine *e, struct src_list *sl, struct fleet_err *err)
{
	struct dst_labels_ctx d = {NULL, 0, 0};
	struct imap_fetch_cb cb = {.on_message = on_dst_labels};
	const char **want = NULL, **add = NULL, **del = NULL;
	size_t npaired = 0;
	int rc = 0;

	for (size_t i = 0; i < sl->n; i++)
		if (sl->v[i].dst_uid)
			npaired++;
	if (npaired == 0 || e->o->dry)
		return 0;
	if (imap_fetch(e->dst, "1:*", "(UID X-GM-LABELS)", &cb, &d, err) < 0) {
		rc = -1;
		goto out;
	}
	if (d.n)
		qsort(d.v, d.n, sizeof(*d.v), cmp_dst_labels);
	for (size_t i = 0; i < sl->n; i++) {
		struct src_msg *m = &sl->v[i];
		struct dst_labels key = {0}, *k;
		size_t nw, na = 0, nd = 0;

		if (!m->dst_uid)
			continue;
		key.uid = m->dst_uid;
		k = d.n ? bsearch(&key, d.v, d.n, sizeof(*d.v), cmp_dst_labels) : NULL;
		if (!k)
			continue;
		want = xrealloc(want, (m->nlabels + 1) * sizeof(*want));
		add = xrealloc(add, (m->nlabels + 1) * sizeof(*add));
		del = xrealloc(del, (k->nlabels + 1) * sizeof(*del));
		nw = gmail_labels_to_set((const char *const *)m->labels, m->nlabels, want);
		for (size_t j = 0; j < nw; j++)
			if (!has_label(k->labels, k->nlabels, want[j]))
				add[na++] = want[j];
		for (size_t j = 0; j < k->nlabels; j++)
			if (gmail_label_is_settable(k->labels[j]) && !has_label(m->labels, m->nlabels, k->labels[j]))
				del[nd++] = k->labels[j];
		if (imap_uid_store_labels(e->dst, m->dst_uid, 1, add, na, err) < 0 ||
		    imap_uid_store_labels(e->dst, m->dst_uid, 0, del, nd, err) < 0) {
			rc = -1;
			goto out;
		}
		if (na || nd)
			e->st->flags_updated++;
	}
out:
	for (size_t k = 0; k < d.n; k++) {
		for (size_t j = 0; j < d.v[k].nlabels; j++)
			xfree(&d.v[k].labels[j]);
		xfree(&d.v[k].labels);
	}
	xfree(&d.v);
	xfree(&want);
	xfree(&add);
	xfree(&del);
	return rc;
}

/* --delete2: expunge destination copies of messages that left the source since they were copied. */
static int delete_vanished(struct engine *e, struct src_list *sl, const struct ledger_uid_pair *pairs,
			   size_t npairs, struct fleet_err *err)
{
	struct fleet_buf set = FLEET_BUF_INIT(ENGINE_FOLDER_SET_MAX);
	uint64_t n = 0, later = 0;
	int rc = 0;

	for (size_t i = 0; i < npairs; i++) {
		struct src_msg key = {.uid = pairs[i].src_uid};

		if (!pairs[i].dst_uid || (sl->n && bsearch(&key, sl->v, sl->n, sizeof(*sl->v), cmp_src_uid)))
			continue;
		if (fleet_buf_appendf(&set, set.len ? ",%u" : "%u", pairs[i].dst_uid) < 0)
			later++; /* past ENGINE_FOLDER_SET_MAX: expunged on the next pass */
		else
			n++;
	}
	if (later)
		log_info("--delete2: %llu more messages to expunge than one command holds: left for the next pass",
			 (unsigned long long)later);
	if (n == 0)
		goto out;
	if (!imap_conn_has_cap(e->dst, "UIDPLUS")) {
		log_warn("--delete2: the destination lacks UIDPLUS, so %llu messages cannot be expunged safely "
			 "(EXPUNGE would also remove messages users flagged \\Deleted there); left in place",
			 (unsigned long long)n);
		goto out;
	}
	if (imap_uid_store(e->dst, fleet_buf_cstr(&set), IMAP_STORE_ADD, "\\Deleted", 1, err) < 0 ||
	    imap_uid_expunge(e->dst, fleet_buf_cstr(&set), err) < 0) {
		rc = -1;
		goto out;
	}
	e->st->msgs_deleted += n;
out:
	fleet_buf_release(&set);
	return rc;
}

/* Ledger pairs whose destination message is gone (deleted behind our back, a restored mailbox)
 * are dropped, so their messages are copied again; *unknown counts pairs without a destination UID
 * (no UIDPLUS), which only identity matching can place. */
static int drop_vanished_pairs(struct engine *e, struct ledger_uid_pair *pairs, size_t *npairs, size_t *unknown,
			       struct fleet_err *err)
{
	struct src_list dl = {0};
	size_t k = 0;

	*unknown = 0;
	if (fetch_meta(e->dst, "1:*", 0, 0, &dl, err) < 0) {
		src_list_release(&dl);
		return -1;
	}
	for (size_t i = 0; i < *npairs; i++) {
		struct src_msg key = {.uid = pairs[i].dst_uid};

		if (!pairs[i].dst_uid)
			(*unknown)++;
		else if (!dl.n || !bsearch(&key, dl.v, dl.n, sizeof(*dl.v), cmp_src_uid))
			continue; /* gone from the destination */
		pairs[k++] = pairs[i];
	}
	log_warn("%zu of %zu messages copied earlier are no longer on the destination: copying them again",
		 *npairs - k, *npairs);
	*npairs = k;
	src_list_release(&dl);
	return 0;
}

/* Gmail mode: keeps the All Mail messages that the entry takes under the policy, with what
 * their labels mean as flags added (engine/gmail.h). */
static void gmail_select(struct engine *e, const struct fm_entry *fe, struct src_list *sl)
{
	struct fleet_buf fb = FLEET_BUF_INIT(ENGINE_FLAGS_MAX);
	size_t k = 0;

	for (size_t i = 0; i < sl->n; i++) {
		struct src_msg *m = &sl->v[i];
		const char *const *labels = (const char *const *)m->labels;

		if (!gmail_wants(e->plan, fe, (enum gmail_policy)e->o->gmail_labels, labels, m->nlabels)) {
			src_msg_release(m);
			continue;
		}
		fleet_buf_reset(&fb);
		fleet_buf_add_str(&fb, m->flags ? m->flags : "");
		gmail_label_flags((enum gmail_policy)e->o->gmail_labels, labels, m->nlabels, &fb);
		if (fleet_buf_truncated(&fb)) { /* the flags as they were: never a cut flag */
			log_warn("message UID %u: its labels' flags pass %d bytes, left out", m->uid, ENGINE_FLAGS_MAX);
		} else {
			xfree(&m->flags);
			m->flags = xstrdup(fleet_buf_cstr(&fb));
		}
		sl->v[k++] = *m;
	}
	sl->n = k;
	fleet_buf_release(&fb);
}

/* Whether the source folder as selected and listed is the one STATUS described (so that a later
 * pass may skip it when STATUS says the same again). With [UIDNEXT] from SELECT the two UIDNEXTs
 * say it. A server that sends no [UIDNEXT] on SELECT (Courier) is judged by what was listed: as
 * many messages as STATUS counted, every UID below STATUS's UIDNEXT. */
static int src_unchanged_since_status(const struct imap_mailbox *smbx, const struct src_list *sl,
				      const struct imap_status_info *si)
{
	if (smbx->uidnext)
		return smbx->uidnext == si->uidnext;
	if (!(si->have & IMAP_HAVE_UIDNEXT) || !si->uidnext || smbx->exists != si->messages)
		return 0;
	for (size_t i = 0; i < sl->n; i++)
		if (sl->v[i].uid >= si->uidnext)
			return 0;
	return 1;
}

/* pre: the folder's STATUS when prefetch_status got it, else NULL (then it is asked here); pre_dst:
 * the destination folder's STATUS, or NULL when unknown (then the folder is never skipped). */

/* Collects whatever fs still has in flight (errors do not matter any more) and releases it. */
static void fstart_release(struct engine *e, struct fstart *fs)
{
	struct fleet_err werr;
	const char *smb = fs->fe ? (fs->fe->src_mailbox ? fs->fe->src_mailbox : fs->fe->src_name) : "";

	if (fs->ssel_id > 0)
		imap_select_wait(e->src, fs->ssel_id, smb, 1, &fs->smbx, &werr);
	if (fs->meta_id > 0)
		meta_wait(e->src, fs->meta_id, &fs->mc, &werr);
	if (fs->dsel_id > 0)
		imap_select_wait(e->dst, fs->dsel_id, fs->fe ? fs->fe->dst_name : "", e->o->dry, &fs->dmbx, &werr);
	fleet_buf_release(&fs->mc.flags);
	src_list_release(&fs->sl);
	imap_mailbox_release(&fs->smbx);
	imap_mailbox_release(&fs->dmbx);
	memset(fs, 0, sizeof(*fs));
	fs->ssel_id = fs->meta_id = fs->dsel_id = -1;
}

/* The current folder's last APPEND is on the wire and the destination has nothing else to do for
 * it (e->dst_free): the next folder's SELECT goes out behind it, answered with the APPEND. */
static void prefetch_next_dst(struct engine *e)
{
	struct fstart *fs = FS_NEXT(e);
	struct fleet_err ferr;

	if (!e->dst_free || !fs->fe || fs->dsel_id > 0 || imap_conn_is_broken(e->dst))
		return;
	fs->dsel_id = imap_select_send(e->dst, fs->fe->dst_name, 0, &fs->dmbx, &ferr);
	if (fs->dsel_id > 0 && imap_conn_flush(e->dst, &ferr) == 0)
		e->dst_moved = 1;
}

/* --dry writes nothing and never SELECTs read-write: a destination folder that does not exist yet
 * is empty ("would create"), one that exists is EXAMINEd. */
static int dst_absent(const struct engine *e, const struct fm_entry *fe)
{
	return e->o->dry && !fe->exists_on_dst;
}

/* Before the current folder's first window: the folders this lane copies after it, with the STATUS
 * of both sides from the start of the account (ledger.h windows_ahead), so that the ledger can make
 * their first windows durable in the same write as this one's. Lane 0 only, and only until it has
 * started other connection pairs: from then on they claim folders too, and a window begun ahead for
 * a folder another pair has copied meanwhile would mark its row "copying" again. (A pair that
 * claims a folder begun ahead before that finds its window open and matches from its UIDNEXT, the
 * STATUS's, below anything appended there: safe, one UID FETCH more.) Not in Gmail mode, --dry or
 * with budgets, which change which folders are copied. */
struct named {
	const char *name;
	size_t i;
};

static int cmp_named(const void *a, const void *b)
{
	return strcasecmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

/* Marks the plan's folders that share their destination folder with another (a rename rule that
 * merges folders; case ignored, as some destinations do): a window begun ahead there would record a
 * UIDNEXT below what the other folder appends meanwhile. */
static int *shared_dst(const struct fm_plan *plan)
{
	struct named *v = xcalloc(plan->n ? plan->n : 1, sizeof(*v));
	int *shared = xcalloc(plan->n ? plan->n : 1, sizeof(*shared));

	for (size_t i = 0; i < plan->n; i++) {
		v[i].name = plan->entries[i].dst_name;
		v[i].i = i;
	}
	qsort(v, plan->n, sizeof(*v), cmp_named);
	for (size_t i = 1; i < plan->n; i++)
		if (strcasecmp(v[i - 1].name, v[i].name) == 0)
			shared[v[i - 1].i] = shared[v[i].i] = 1;
	xfree(&v);
	return shared;
}

static int name_ahead(struct engine *e, struct fleet_err *err)
{
	const struct ledger *lg = &e->job->ledger;
	struct ledger_ahead *next;
	size_t n = 0;
	int rc;

	if (!lg->ops->windows_ahead || !e->order || !e->pre_have || !e->dst_have || is_helper(e) || e->gmail ||
	    e->o->dry || e->job->budget || e->lanes_started) {
		log_debug("no windows begun ahead of their folders");
		return 0;
	}
	if (!e->dst_shared)
		e->dst_shared = shared_dst(e->plan);
	next = xcalloc(ENGINE_AHEAD_MAX, sizeof(*next));
	for (size_t oj = e->oi + 1; oj < e->plan->n && n < ENGINE_AHEAD_MAX; oj++) {
		size_t j = e->order[oj];
		const struct fm_entry *fe = &e->plan->entries[j];
		const struct imap_status_info *si = &e->pre_si[j], *di = &e->dst_si[j];

		if (!copyable(e, j) || e->dst_shared[j] || fe->gm_label || fe->gm_archive || fe->gm_to_gmail || !e->pre_have[j] ||
		    !e->dst_have[j] || !(si->have & IMAP_HAVE_UIDVALIDITY) || !(si->have & IMAP_HAVE_UIDNEXT) ||
		    !(si->have & IMAP_HAVE_MESSAGES) || !(di->have & IMAP_HAVE_UIDVALIDITY) ||
		    !(di->have & IMAP_HAVE_UIDNEXT) || !di->uidnext)
			continue;
		next[n].src_name = fe->src_name;
		next[n].src_uidvalidity = si->uidvalidity;
		next[n].src_uidnext = si->uidnext;
		next[n].src_messages = si->messages;
		next[n].dst_uidvalidity = di->uidvalidity;
		next[n++].dst_uidnext = di->uidnext;
	}
	rc = n ? lg->ops->windows_ahead(lg->ctx, n, next, err) : 0;
	xfree(&next);
	return rc;
}

/* Phase one of a folder (see struct fstart). Returns 0 when the commands are out, 1 when the folder
 * is unchanged since the last pass and skipped (counted here, unless ahead), 2 when ahead and the
 * folder is left to its turn (skipped or its UIDVALIDITY changed: the ledger is not touched ahead),
 * -1 on error. */
static int folder_send(struct engine *e, const struct fm_entry *fe, struct fstart *fs, struct fleet_err *err);

/* folder_begin's first half, what the ledger and the STATUS say: 0 go on (fs->want_ident set), else
 * as folder_begin. */
static int folder_check(struct engine *e, const struct fm_entry *fe, const struct imap_status_info *pre,
			const struct imap_status_info *pre_dst, struct fstart *fs, int ahead, struct fleet_err *err)
{
	const struct ledger *lg = &e->job->ledger;
	const char *smb = fe->src_mailbox ? fe->src_mailbox : fe->src_name;
	int gm = fe->gm_label != NULL || fe->gm_archive || fe->gm_to_gmail;
	int have_modseq, dst_same;

	fs->pre_dst = pre_dst;
	if (pre)
		fs->si = *pre;
	else if (ahead)
		return 2;
	else if (imap_status(e->src, smb, &fs->si, err) < 0)
		return -1;
	if (lg->ops->folder_open(lg->ctx, fe->src_name, fe->dst_name, fs->si.uidvalidity, &fs->info, err) < 0)
		return -1;
	have_modseq = (fs->si.have & IMAP_HAVE_HIGHESTMODSEQ) != 0;
	/* The destination must still hold what the ledger says was copied there: a mailbox emptied or
	 * re-created behind imapfleet's back (a re-provisioned account, a restore) is examined again. */
	dst_same = pre_dst && (pre_dst->have & IMAP_HAVE_UIDVALIDITY) && (pre_dst->have & IMAP_HAVE_MESSAGES) &&
		   pre_dst->uidvalidity == fs->info.dst_uidvalidity && pre_dst->messages >= fs->info.copied;
	/* Gmail mode never skips by STATUS: a label change need not change All Mail's STATUS. */
	if (!gm && !e->o->dry && !e->o->delete2 && !fs->info.window_open &&
	    fs->info.src_uidvalidity == fs->si.uidvalidity && fs->info.src_uidnext == fs->si.uidnext &&
	    fs->info.src_messages == fs->si.messages &&
	    (!have_modseq || !e->o->sync_flags || fs->info.src_highestmodseq == fs->si.highestmodseq) &&
	    fs->si.uidnext && dst_same) {
		if (ahead)
			return 2;
		e->st->folders_unchanged++;
		e->st->msgs_source += fs->si.messages;
		e->st->msgs_already += fs->si.messages;
		folder_listed(e);
		log_debug("unchanged since the last pass (STATUS), skipped");
		return 1;
	}
	if (fs->info.src_uidvalidity && fs->info.src_uidvalidity != fs->si.uidvalidity) {
		if (ahead)
			return 2;
		uidvalidity_changed(e, 0, fe->src_name, fs->info.src_uidvalidity, fs->si.uidvalidity);
		if (!e->o->dry && lg->ops->folder_reset(lg->ctx, fs->info.id, fs->si.uidvalidity, err) < 0)
			return -1;
		fs->rematch = 1;
	}
	/* EXAMINE and the metadata FETCH go out together. Whether the identities are needed is known
	 * for sure only later: guessed here from the ledger and the destination's STATUS, and fetched
	 * again in the rare case the guess was short. */
	fs->want_ident = !dst_absent(e, fe) &&
			 (fs->rematch || fs->info.window_open || e->o->dedupe_existing || e->o->dry ||
			  (fs->info.copied == 0 &&
			   (!pre_dst || !(pre_dst->have & IMAP_HAVE_MESSAGES) || pre_dst->messages > 0)));
	return 0;
}

static int folder_begin(struct engine *e, const struct fm_entry *fe, const struct imap_status_info *pre,
			const struct imap_status_info *pre_dst, struct fstart *fs, int ahead, struct fleet_err *err)
{
	int r;

	memset(fs, 0, sizeof(*fs));
	fs->ssel_id = fs->meta_id = fs->dsel_id = -1;
	r = folder_check(e, fe, pre, pre_dst, fs, ahead, err);
	return r != 0 ? r : folder_send(e, fe, fs, err);
}

/* folder_begin's second half: EXAMINE and the metadata FETCH (not when STATUS said the folder is
 * empty), flushed. */
static int folder_send(struct engine *e, const struct fm_entry *fe, struct fstart *fs, struct fleet_err *err)
{
	const char *smb = fe->src_mailbox ? fe->src_mailbox : fe->src_name;
	int gm = fe->gm_label != NULL || fe->gm_archive || fe->gm_to_gmail;

	fs->fe = fe;
	if ((fs->ssel_id = imap_select_send(e->src, smb, 1, &fs->smbx, err)) < 0)
		return -1;
	e->src_sel = fe;
	if (!(fs->si.have & IMAP_HAVE_MESSAGES) || fs->si.messages > 0) {
		fs->meta_id = meta_send(e->src, &fs->mc, &meta_cb, "1:*", fs->want_ident, gm, &fs->sl, err);
		if (fs->meta_id < 0) {
			fleet_buf_release(&fs->mc.flags);
			return -1;
		}
	}
	return imap_conn_flush(e->src, err) < 0 ? -1 : 0;
}

/* The copy windows of a folder: --batch N messages each when given. By default 64 messages, grown
 * up to ENGINE_WINDOW_MAX_MSGS while the window's bytes stay under ENGINE_WINDOW_AUTO_BYTES: every window costs
 * two round trips (its FETCH, its APPEND's answer), so a folder of many small messages takes far
 * fewer of them, while a window never holds more bytes than 64 large messages would. *starts gets
 * nwin + 1 offsets into todo (heap); returns nwin. */
static size_t plan_windows(const struct engine *e, struct src_msg **todo, size_t ntodo, size_t **starts)
{
	size_t nwin = 0, off = 0, min = e->o->batch ? e->o->batch : ENGINE_BATCH_DEFAULT;

	*starts = xcalloc(ntodo + 2, sizeof(**starts));
	while (off < ntodo) {
		size_t n = 0;
		uint64_t bytes = 0;

		while (off + n < ntodo && n < min)
			bytes += todo[off + n++]->size;
		while (!e->o->batch_set && off + n < ntodo && n < ENGINE_WINDOW_MAX_MSGS &&
		       bytes + todo[off + n]->size <= ENGINE_WINDOW_AUTO_BYTES)
			bytes += todo[off + n++]->size;
		(*starts)[nwin++] = off;
		off += n;
	}
	(*starts)[nwin] = ntodo;
	return nwin;
}

/* ---- a large folder split by UID range between connection pairs (engine_lanes.split_*) ---------- */

/* What the lanes that join a split need, borrowed from the lane that offered it: that lane waits
 * for them (split_close) before it touches the messages again or frees anything. */
struct split {
	int64_t folder;
	const char *src_name, *smb, *dst_name;
	uint32_t src_uidvalidity, dst_uidvalidity;
	struct src_msg **todo;
	const size_t *wstart;
	size_t nwin;
	int newest_first;
	atomic_ullong failed; /* messages the joined lanes recorded as failed */
	atomic_int broken;    /* a joined lane failed: windows it took may be left (err says why) */
	struct fleet_err err; /* written once, by the lane that set broken first */
};

/* The window the k-th take gives: from the top down with --newest-first, as without a split. */
static size_t split_win(const struct split *sp, long k)
{
	return sp->newest_first ? sp->nwin - 1 - (size_t)k : (size_t)k;
}

/* The folder's windows on several connection pairs, when worth it: far servers, a destination that
 * tells the UIDs it gives (UIDPLUS: after a crash only messages at or above the lowest open window's
 * UIDNEXT that no ledger row owns are matched, and without APPENDUID the rows own none), and lanes
 * (lane 0 starts more for it). NULL: the folder is copied by this lane alone. */
static struct split *split_begin(struct engine *e, const struct fstart *fs, const struct fm_entry *fe,
				 struct src_msg **todo, const size_t *wstart, size_t nwin)
{
	const struct engine_lanes *l = e->job->lanes;
	struct split *sp;

	if (!l || !l->split_offer || l->max < 2 || nwin < ENGINE_SPLIT_MIN_WINDOWS || e->gmail || e->o->dry ||
	    e->job->budget || fe->gm_label || fe->gm_archive || fe->gm_to_gmail ||
	    !imap_conn_has_cap(e->dst, "UIDPLUS") || !lanes_far(e))
		return NULL;
	sp = xcalloc(1, sizeof(*sp));
	sp->folder = fs->info.id;
	sp->src_name = fe->src_name;
	sp->smb = fe->src_mailbox ? fe->src_mailbox : fe->src_name;
	sp->dst_name = fe->dst_name;
	sp->src_uidvalidity = fs->smbx.uidvalidity;
	sp->dst_uidvalidity = fs->dmbx.uidvalidity;
	sp->todo = todo;
	sp->wstart = wstart;
	sp->nwin = nwin;
	sp->newest_first = e->o->newest_first;
	atomic_init(&sp->failed, 0);
	atomic_init(&sp->broken, 0);
	if (l->split_offer(l->ctx, sp, nwin) < 0) {
		xfree(&sp);
		return NULL;
	}
	log_info("%zu copy windows, shared with the account's other connection pairs", nwin);
	if (!l->lane) {
		unsigned want = nwin - 1 < l->max - 1 ? (unsigned)(nwin - 1) : l->max - 1;
		unsigned got = l->start(l->ctx, want);

		e->lanes_asked = 1;
		if (got)
			e->lanes_started = 1;
		log_debug("%u of %u more connection pairs wanted started for this folder's windows", got,
			  want);
	}
	return sp;
}

/* Lane 0, before the folder's metadata is read: when the source's STATUS says more than one window
 * is left to copy (so split_begin will split it, as far as the STATUS can tell), the helpers log in
 * now, while the metadata arrives, and wait for the split (split_expect) instead of logging in
 * after it. A guess that turns out wrong (messages copied already, matched) costs their logins. */
static void split_early(struct engine *e, const struct fstart *fs, const struct fm_entry *fe)
{
	const struct engine_lanes *l = e->job->lanes;
	uint64_t left, min = e->o->batch ? e->o->batch : ENGINE_BATCH_DEFAULT;
	unsigned got;

	if (!l || l->lane || !l->split_expect || !l->split_offer || e->lanes_asked || l->max < 2 || e->again ||
	    e->gmail || e->o->dry || e->job->budget || fe->gm_label || fe->gm_archive || fe->gm_to_gmail ||
	    fs->rematch || fs->info.window_open || !(fs->si.have & IMAP_HAVE_MESSAGES) ||
	    !imap_conn_has_cap(e->dst, "UIDPLUS"))
		return;
	left = fs->si.messages > fs->info.copied ? fs->si.messages - fs->info.copied : 0;
	if (e->o->batch_set ? left <= min
			    : left <= ENGINE_WINDOW_MAX_MSGS &&
				  !(left > min && (fs->si.have & IMAP_HAVE_SIZE) && fs->si.size > ENGINE_WINDOW_AUTO_BYTES))
		return;
	if (!lanes_far(e))
		return;
	e->lanes_asked = 1;
	e->split_expected = 1;
	l->split_expect(l->ctx, 1);
	got = l->start(l->ctx, l->max - 1);
	log_debug("%u of %u more connection pairs started while the metadata of %llu messages is read", got,
		  l->max - 1, (unsigned long long)left);
}

/* Copies the windows of sp this lane takes, one taken ahead so that its FETCH goes out behind the
 * current window's APPENDs (presend). fst counts them. */
static int split_copy(struct engine *e, struct split *sp, const struct imap_mailbox *smbx,
		      struct imap_mailbox *dmbx, uint32_t *dst_uidnext, struct ledger_folder_stats *fst,
		      struct fleet_err *err)
{
	const struct engine_lanes *l = e->job->lanes;
	long k = l->split_take(l->ctx, sp);
	size_t nw = 0;
	uint64_t copied = fst->copied;

	e->last_window = 0; /* the next folder is prefetched after the split, not inside it */
	while (k >= 0) {
		long kn;
		size_t w, off, n, nn = 0, offn = 0;

		if (cancelled(e))
			return fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN,
					     FLEET_ERR_CODE_CANCELLED, "stopped on request");
		kn = l->split_take(l->ctx, sp);
		w = split_win(sp, k);
		off = sp->wstart[w];
		n = sp->wstart[w + 1] - off;
		if (kn >= 0) {
			size_t wn = split_win(sp, kn);

			offn = sp->wstart[wn];
			nn = sp->wstart[wn + 1] - offn;
		}
		if (copy_window(e, sp->folder, sp->src_name, sp->dst_name, smbx, dmbx, dst_uidnext,
				sp->todo + off, n, fst, 0, nn ? sp->todo + offn : NULL, nn, err) < 0)
			return -1;
		report_progress(e);
		nw++;
		k = kn;
	}
	log_info("connection pair %u copied %zu of this folder's %zu windows (%llu messages)", l->lane + 1,
		 nw, sp->nwin, (unsigned long long)(fst->copied - copied));
	return 0;
}

/* This lane joined sp: it selects the folder on both of its connections and copies the windows it
 * takes. Returns 0, 1 when it cannot help (a UIDVALIDITY is not the one the split was made for: the
 * offering lane finds that out itself), -1 on error (the lane fails, and with it the account). */
static int split_help(struct engine *e, struct split *sp, struct fleet_err *err)
{
	struct ledger_folder_stats fst;
	uint32_t dst_uidnext;
	int sid, did = -1, rc = -1;

	memset(&fst, 0, sizeof(fst));
	imap_mailbox_release(&e->split_smbx);
	imap_mailbox_release(&e->split_dmbx);
	fleet_log_set_folder(sp->src_name);
	/* both SELECTs in one round trip */
	sid = imap_select_send(e->src, sp->smb, 1, &e->split_smbx, err);
	if (sid < 0 || imap_conn_flush(e->src, err) < 0)
		goto out;
	did = imap_select_send(e->dst, sp->dst_name, 0, &e->split_dmbx, err);
	if (did < 0 || imap_conn_flush(e->dst, err) < 0)
		goto out;
	if (imap_select_wait(e->src, sid, sp->smb, 1, &e->split_smbx, err) < 0)
		goto out;
	sid = -1;
	if (imap_select_wait(e->dst, did, sp->dst_name, 0, &e->split_dmbx, err) < 0)
		goto out;
	did = -1;
	if (e->split_smbx.uidvalidity != sp->src_uidvalidity ||
	    e->split_dmbx.uidvalidity != sp->dst_uidvalidity) {
		log_info("not helping with this folder: its UIDVALIDITY changed");
		rc = 1;
		goto out;
	}
	/* at or below every UID this lane's APPENDs get (0: unknown, match from the start) */
	dst_uidnext = e->split_dmbx.uidnext ? e->split_dmbx.uidnext : 1;
	log_info("connection pair %u copies windows of this folder too", e->job->lanes->lane + 1);
	e->in_split = 1;
	rc = split_copy(e, sp, &e->split_smbx, &e->split_dmbx, &dst_uidnext, &fst, err);
	e->in_split = 0;
	atomic_fetch_add(&sp->failed, fst.failed);
out:
	/* a SELECT sent and not read (sid, did > 0): the lane ends here and its connections with it */
	fleet_log_set_folder(NULL);
	return rc;
}

/* A lane with no folder of its own left: the windows of folders other lanes split, while any are
 * left. */
static int split_join_all(struct engine *e, struct fleet_err *err)
{
	const struct engine_lanes *l = e->job->lanes;
	void *p;

	if (!l || !l->split_join || e->o->dry || e->gmail)
		return 0;
	while (!cancelled(e) && (p = l->split_join(l->ctx, l->lane)) != NULL) {
		struct split *sp = p;
		const struct ledger *lg = &e->job->ledger;
		int r = split_help(e, sp, err), alone;
		struct fleet_err ferr;

		/* What this lane recorded is written before it leaves: after a failure the offering
		 * lane reads the folder's ledger again. */
		if (lg->ops->flush(lg->ctx, &ferr) < 0 && r >= 0) {
			*err = ferr;
			r = -1;
		}
		/* A failure the account can go on from: the offering lane copies what this lane left. */
		alone = r < 0 && strcmp(err->code, FLEET_ERR_CODE_CANCELLED) != 0 &&
			strcmp(err->code, LEDGER_ERR_LEASE_LOST) != 0 && err->scope <= FLEET_SCOPE_ACCOUNT;
		/* Two lanes may fail in the same folder at once: only the first writes the reason (the
		 * offering lane reads it after split_close, once every lane has left). */
		if (r < 0 && !atomic_exchange(&sp->broken, 1))
			sp->err = *err;
		l->split_leave(l->ctx, sp, l->lane, alone);
		if (r < 0)
			return -1;
		if (r > 0)
			break;
	}
	return 0;
}

/* The source is done with the current folder (its last bodies are read): send the next folder's
 * EXAMINE and metadata FETCH now, so that they are answered while the current folder's last APPENDs
 * complete. Nothing is sent for a folder that will be skipped, or when the source is busy. */
static void prefetch_next(struct engine *e, size_t busy)
{
	struct fstart *fs = FS_NEXT(e);
	struct fleet_err ferr;

	/* busy: commands the source may still be answering, the current folder's last body FETCH
	 * (sent just before): the EXAMINE goes out behind it, and its answer follows the bodies. */
	if (!e->next_fe || fs->fe || imap_conn_is_broken(e->src) || imap_conn_in_flight(e->src) > busy)
		return;
	fleet_err_clear(&ferr);
	if (folder_begin(e, e->next_fe, e->next_pre, e->next_pre_dst, fs, 1, &ferr) != 0) {
		/* left to its turn, where an error is reported properly */
		fstart_release(e, fs);
	}
	e->next_fe = NULL;
}

/* The next folder's first and only window went out ahead (presend_next_folder): the folder after
 * it is asked about right behind it (EXAMINE and metadata FETCH), so that its bodies can be asked
 * for as soon as the next folder's are in. The source has then moved two folders on: any other
 * command for the next folder selects it again first (reselect_after_prefetch). */
static void prefetch_next2(struct engine *e)
{
	struct fstart *fs = FS_NEXT2(e);
	struct fleet_err ferr;

	if (!e->next2_fe || fs->fe || imap_conn_is_broken(e->src) || !lane_claim(e, e->next2_fe))
		return;
	fleet_err_clear(&ferr);
	if (folder_begin(e, e->next2_fe, e->next2_pre, e->next2_pre_dst, fs, 1, &ferr) != 0)
		fstart_release(e, fs); /* left to its turn, where an error is reported properly */
	e->next2_fe = NULL;
}

/* The source has sent the current folder's last bodies, and the next folder's EXAMINE and metadata
 * FETCH went out behind them (prefetch_next): collect those, work out the next folder's first
 * window as migrate_folder will, and send its body FETCH now, held, so that the source answers it
 * while the destination answers this folder's last APPENDs: one round trip less per folder. Nothing
 * of it is appended before that folder's window_begin (copy_window adopts it then, and only if its
 * window is exactly this one; else it is read away). Only where the guess is plain: no ledger rows
 * and no open window for the folder, its destination empty by the STATUS at the start (so no
 * identity matching), no Gmail mode, budget or --dry; the ledger is not touched. */
static void presend_next_folder(struct engine *e)
{
	struct fstart *fs = FS_NEXT(e);
	const struct fm_entry *fe = fs->fe;
	const struct imap_status_info *pd = fs->pre_dst;
	struct fleet_buf set = FLEET_BUF_INIT(ENGINE_WINDOW_SET_MAX);
	struct src_msg **todo;
	size_t ntodo = 0, *starts = NULL, nwin, k;
	struct copy_ctx *cc;
	struct fleet_err ferr;

	if (!fe || e->pend_next || e->pend || fs->src_ready || fs->ssel_id <= 0 || fs->meta_id <= 0 ||
	    e->job->budget || e->o->dry || e->o->dedupe_existing || e->gmail || fe->gm_label || fe->gm_archive ||
	    fe->gm_to_gmail || fs->rematch || fs->want_ident || fs->info.window_open || fs->info.copied != 0 || !pd ||
	    !(pd->have & IMAP_HAVE_MESSAGES) || pd->messages != 0 || imap_conn_is_broken(e->src) ||
	    (fs->info.dst_uidvalidity &&
	     (!(pd->have & IMAP_HAVE_UIDVALIDITY) || pd->uidvalidity != fs->info.dst_uidvalidity)))
		return;
	/* The EXAMINE and metadata answers follow the bodies just read: collected now, kept for
	 * migrate_folder. */
	fs->src_ready = 1;
	fleet_err_clear(&fs->src_err);
	fs->ssel_r = imap_select_wait(e->src, fs->ssel_id, fe->src_mailbox ? fe->src_mailbox : fe->src_name, 1,
				      &fs->smbx, &fs->src_err);
	fs->ssel_id = -1;
	fleet_err_clear(&ferr);
	fs->meta_r = meta_wait(e->src, fs->meta_id, &fs->mc, fs->ssel_r < 0 ? &ferr : &fs->src_err);
	fs->meta_id = -1;
	if (fs->ssel_r < 0 || fs->meta_r < 0 || fs->smbx.uidvalidity != fs->si.uidvalidity || !fs->sl.n ||
	    fs->sl.v[0].uid == 0 || imap_conn_is_broken(e->src))
		return;
	todo = xcalloc(fs->sl.n, sizeof(*todo));
	for (size_t i = 0; i < fs->sl.n; i++) {
		struct src_msg *m = &fs->sl.v[i];

		if (in_age_window(e, m) && !(e->o->maxsize && m->size > e->o->maxsize) &&
		    !(e->appendlimit && m->size > e->appendlimit))
			todo[ntodo++] = m;
	}
	nwin = plan_windows(e, todo, ntodo, &starts);
	if (nwin) {
		k = e->o->newest_first ? nwin - 1 : 0;
		cc = copy_ctx_new(e, fe->src_name, fe->dst_name, &fs->dmbx, todo + starts[k], starts[k + 1] - starts[k]);
		cc->held = 1;
		uidset_of(&set, cc->slots, cc->nslots);
		fleet_log_set_folder(fe->src_name); /* its trace line under its own folder */
		cc->fetch_id = imap_fetch_send(e->src, fleet_buf_cstr(&set), "(UID BODY.PEEK[])", &body_cb, cc, &ferr);
		fleet_log_set_folder(e->fs[e->cur].fe ? e->fs[e->cur].fe->src_name : NULL);
		if (cc->fetch_id > 0) {
			e->pend_next = cc;
			e->pend_next_fe = fe;
			if (nwin == 1)
				prefetch_next2(e); /* flushes with it */
			if (imap_conn_flush(e->src, &ferr) < 0)
				pend_next_drop(e);
		} else {
			copy_ctx_free(&cc);
		}
	}
	fleet_buf_release(&set);
	xfree(&starts);
	xfree(&todo);
}

/* A folder the source's STATUS (from the start of the account) says is empty, where that is all
 * there is to do: nothing to copy, nothing to delete (--delete2) or label (Gmail), no --dry. Such a
 * folder is settled from the STATUS of both sides and the ledger, without EXAMINE or SELECT
 * (empty_folder), so it neither costs round trips of its own nor stops the folders after it from
 * being asked about ahead (engine_run's next_fe passes over it). */
static int empty_src(const struct engine *e, size_t j)
{
	const struct fm_entry *fe = &e->plan->entries[j];
	const struct imap_status_info *si = &e->pre_si[j], *di = &e->dst_si[j];
	unsigned need = IMAP_HAVE_MESSAGES | IMAP_HAVE_UIDVALIDITY | IMAP_HAVE_UIDNEXT;

	return e->pre_have[j] && e->dst_have[j] && (si->have & need) == need && si->messages == 0 && si->uidnext &&
	       (di->have & IMAP_HAVE_UIDVALIDITY) && di->uidvalidity && !e->o->dry && !e->o->delete2 && !e->gmail &&
	       !fe->src_mailbox && !fe->gm_label && !fe->gm_archive && !fe->gm_to_gmail;
}

/* Settles an empty_src folder: 1 done (recorded complete, or unchanged since the last pass), 0 when
 * the ledger holds more than STATUS can settle (copied messages, an open window, a new UIDVALIDITY:
 * migrate_folder looks at it), -1 on error. */
static int empty_folder(struct engine *e, const struct fm_entry *fe, const struct imap_status_info *si,
			const struct imap_status_info *di, struct fleet_err *err)
{
	const struct ledger *lg = &e->job->ledger;
	struct ledger_folder_info info;
	struct ledger_folder_stats fst;

	fleet_log_set_folder(fe->src_name);
	memset(&info, 0, sizeof(info));
	if (lg->ops->folder_open(lg->ctx, fe->src_name, fe->dst_name, si->uidvalidity, &info, err) < 0) {
		fleet_log_set_folder(NULL);
		return -1;
	}
	if (info.window_open || info.copied || (info.src_uidvalidity && info.src_uidvalidity != si->uidvalidity)) {
		fleet_log_set_folder(NULL);
		return 0;
	}
	if (info.src_uidvalidity == si->uidvalidity && info.src_uidnext == si->uidnext && info.src_messages == 0 &&
	    info.dst_uidvalidity == di->uidvalidity) {
		e->st->folders_unchanged++;
		log_debug("unchanged since the last pass (STATUS), skipped");
		fleet_log_set_folder(NULL);
		return 1;
	}
	memset(&fst, 0, sizeof(fst));
	fst.src_uidvalidity = si->uidvalidity;
	fst.dst_uidvalidity = di->uidvalidity;
	fst.src_uidnext = si->uidnext;
	fst.src_highestmodseq = (si->have & IMAP_HAVE_HIGHESTMODSEQ) ? si->highestmodseq : 0;
	fst.complete = 1;
	log_debug("empty on the source (STATUS): nothing to copy");
	fleet_log_set_folder(NULL);
	return lg->ops->folder_close(lg->ctx, info.id, &fst, err) < 0 ? -1 : 1;
}

/* pre: the folder's STATUS when prefetch_status got it, else NULL (then it is asked here); pre_dst:
 * the destination folder's STATUS, or NULL when unknown (then the folder is never skipped). */
static int migrate_folder(struct engine *e, const struct fm_entry *fe, const struct imap_status_info *pre,
			  const struct imap_status_info *pre_dst, struct fleet_err *err)
{
	const struct ledger *lg = &e->job->ledger;
	struct fstart *fs = &e->fs[e->cur];
	struct ledger_folder_stats fst;
	struct ledger_uid_pair *pairs = NULL;
	size_t npairs = 0;
	struct src_msg **todo = NULL;
	size_t ntodo = 0, nmatched = 0, filtered = 0, nouid = 0;
	uint32_t dst_uidnext;
	int need_match, rematch, rc = -1, r;
	size_t *wstart = NULL, nwin;
	struct split *sp = NULL;
	int split_closed = 0;
	/* Gmail mode: this entry reads All Mail and takes the messages of its label. */
	const char *smb = fe->src_mailbox ? fe->src_mailbox : fe->src_name;
	int gm = fe->gm_label != NULL || fe->gm_archive || fe->gm_to_gmail;

	memset(&fst, 0, sizeof(fst));
	fleet_log_set_folder(fe->src_name);

	if (e->pend_next && e->pend_next_fe != fe)
		pend_next_drop(e);
	e->dst_moved = 0; /* the destination's SELECT sent ahead was this folder's */
	if (fs->fe != fe) {
		fstart_release(e, fs);
		r = folder_begin(e, fe, pre, pre_dst, fs, 0, err);
		if (r != 0) {
			rc = r > 0 ? 0 : -1;
			goto out;
		}
	} else if (fs->early) {
		/* its commands went out with the STATUS: what the ledger and the STATUS say now */
		fs->early = 0;
		r = folder_check(e, fe, pre, pre_dst, fs, 0, err);
		fs->want_ident = 0; /* as sent: fetched again below when identities are needed */
		if (r != 0) {
			rc = r > 0 ? 0 : -1;
			goto out;
		}
	}
	rematch = fs->rematch;
	/* One round trip for the folder: its SELECT on the destination goes out now, and the ledger is
	 * read while both servers answer. */
	if (dst_absent(e, fe))
		log_debug("dry run: %s does not exist on the destination yet, taken as empty", fe->dst_name);
	else if (fs->dsel_id <= 0 && (fs->dsel_id = imap_select_send(e->dst, fe->dst_name, e->o->dry, &fs->dmbx, err)) < 0)
		goto out;
	if (imap_conn_flush(e->src, err) < 0 || (!dst_absent(e, fe) && imap_conn_flush(e->dst, err) < 0))
		goto out;
	split_early(e, fs, fe); /* the helpers log in while the metadata arrives */
	if (!rematch && lg->ops->copied_uids(lg->ctx, fs->info.id, fs->si.uidvalidity, &pairs, &npairs, err) < 0)
		goto out;
	if (fs->src_ready) { /* collected already by presend_next_folder */
		r = fs->ssel_r;
		if (r < 0)
			*err = fs->src_err;
	} else {
		r = imap_select_wait(e->src, fs->ssel_id, smb, 1, &fs->smbx, err);
		fs->ssel_id = -1;
	}
	if (r < 0)
		goto out;
	if (fs->src_ready) {
		if (fs->meta_r < 0 && (fs->smbx.exists || imap_conn_is_broken(e->src))) {
			*err = fs->src_err;
			goto out;
		}
	} else if (fs->meta_id > 0) {
		r = meta_wait(e->src, fs->meta_id, &fs->mc, err);
		fs->meta_id = -1;
		/* A folder emptied between STATUS and EXAMINE may answer UID FETCH 1:* with NO. */
		if (r < 0 && (fs->smbx.exists || imap_conn_is_broken(e->src)))
			goto out;
		fleet_err_clear(err);
	} else if (fs->smbx.exists && fetch_meta(e->src, "1:*", fs->want_ident, gm, &fs->sl, err) < 0) {
		goto out;
	}
	if (fs->dsel_id > 0) {
		r = imap_select_wait(e->dst, fs->dsel_id, fe->dst_name, e->o->dry, &fs->dmbx, err);
		fs->dsel_id = -1;
		if (r < 0)
			goto out;
	}
	if (!rematch && fs->smbx.uidvalidity != fs->si.uidvalidity) {
		/* changed between STATUS and EXAMINE: the ledger's rows of the new value */
		xfree(&pairs);
		npairs = 0;
		if (lg->ops->copied_uids(lg->ctx, fs->info.id, fs->smbx.uidvalidity, &pairs, &npairs, err) < 0)
			goto out;
	}
	if (fs->info.dst_uidvalidity && fs->info.dst_uidvalidity != fs->dmbx.uidvalidity && !rematch) {
		uidvalidity_changed(e, 1, fe->dst_name, fs->info.dst_uidvalidity, fs->dmbx.uidvalidity);
		rematch = 1;
		xfree(&pairs);
		npairs = 0;
	}
	dst_uidnext = fs->dmbx.uidnext;
	/* No [UIDNEXT] on SELECT (Courier): STATUS told it before, and only we write here meanwhile. */
	if (!dst_uidnext && pre_dst && (pre_dst->have & IMAP_HAVE_UIDNEXT) &&
	    pre_dst->uidvalidity == fs->dmbx.uidvalidity)
		dst_uidnext = pre_dst->uidnext;

	if (!rematch && npairs && fs->dmbx.exists < npairs) {
		size_t unknown;

		if (drop_vanished_pairs(e, pairs, &npairs, &unknown, err) < 0)
			goto out;
		if (unknown)
			rematch = 1; /* without destination UIDs only identity can tell what is still there */
		if (rematch) {
			xfree(&pairs);
			npairs = 0;
		}
	}
	/* Identity matching when the ledger cannot tell: after a crash in a window, a UIDVALIDITY change,
	 * on request, for --dry, and whenever the destination folder already holds mail that this
	 * ledger never recorded (another run, another tool, users already working there). */
	need_match = !dst_absent(e, fe) && (rematch || fs->info.window_open || e->o->dedupe_existing || e->o->dry ||
					    (npairs == 0 && fs->dmbx.exists > 0));
	if (need_match && e->src_sel != fe && reselect_after_prefetch(e, fe->src_name, &fs->smbx, &fs->dmbx, err) < 0)
		goto out; /* the source is asked about this folder again: select it again first */
	if (need_match && !fs->want_ident && fs->sl.n) {
		src_list_release(&fs->sl);
		if (fetch_meta(e->src, "1:*", 1, gm, &fs->sl, err) < 0)
			goto out;
	}
	/* A message listed without its UID (or with UID 0, which RFC 3501 forbids) cannot be fetched
	 * by UID nor recorded: it fails, and with it the folder (sorted first, so they are in front). */
	while (nouid < fs->sl.n && fs->sl.v[nouid].uid == 0)
		nouid++;
	if (nouid) {
		for (size_t i = 0; i < nouid; i++)
			src_msg_release(&fs->sl.v[i]);
		memmove(fs->sl.v, fs->sl.v + nouid, (fs->sl.n - nouid) * sizeof(*fs->sl.v));
		fs->sl.n -= nouid;
		e->st->msgs_source += nouid;
		e->st->msgs_failed += nouid;
	}
	if (gm && !fe->gm_to_gmail)
		gmail_select(e, fe, &fs->sl);
	for (size_t i = 0; i < fs->sl.n; i++) {
		struct ledger_uid_pair *p =
		    npairs ? bsearch(&fs->sl.v[i].uid, pairs, npairs, sizeof(*pairs), cmp_pair_src) : NULL;

		if (p) {
			fs->sl.v[i].copied = 1;
			fs->sl.v[i].dst_uid = p->dst_uid;
		}
	}
	e->st->msgs_source += fs->sl.n;

	/* What is left to copy, after the size and age filters. */
	todo = xcalloc(fs->sl.n ? fs->sl.n : 1, sizeof(*todo));
	for (size_t i = 0; i < fs->sl.n; i++) {
		struct src_msg *m = &fs->sl.v[i];

		if (m->copied) {
			e->st->msgs_already++;
			continue;
		}
		if (!in_age_window(e, m)) {
			e->st->msgs_skipped++;
			filtered++;
			continue;
		}
		if ((e->o->maxsize && m->size > e->o->maxsize) || (e->appendlimit && m->size > e->appendlimit)) {
			struct fleet_err serr;

			/* Known too big before transfer: skipped and reported, never sent (RFC 7889). */
			if (e->o->maxsize && m->size > e->o->maxsize)
				fleet_err_set(&serr, FLEET_ERR_PERMANENT, FLEET_SCOPE_MESSAGE, ENGINE_ERR_MAXSIZE,
					      "message of %llu bytes is larger than --maxsize %llu",
					      (unsigned long long)m->size, (unsigned long long)e->o->maxsize);
			else
				fleet_err_set(&serr, FLEET_ERR_PERMANENT, FLEET_SCOPE_MESSAGE, ENGINE_ERR_APPENDLIMIT,
					      "message of %llu bytes is larger than the destination's APPENDLIMIT %llu",
					      (unsigned long long)m->size, (unsigned long long)e->appendlimit);
			e->st->msgs_skipped++;
			filtered++;
			add_failure(e, fe->src_name, m->uid, &serr);
			if (!e->o->dry) {
				struct ledger_record rec = {0};

				rec.src_uidvalidity = fs->smbx.uidvalidity;
				rec.src_uid = m->uid;
				rec.size = m->size;
				rec.internaldate = m->internaldate;
				rec.flags = m->flags;
				rec.state = LEDGER_SKIPPED;
				rec.error = serr.message;
				if (lg->ops->record(lg->ctx, fs->info.id, &rec, err) < 0)
					goto out;
			}
			fst.skipped++;
			continue;
		}
		todo[ntodo++] = m;
	}

	if (need_match && ntodo) {
		/* After a crash in a window only the messages at or above its UIDNEXT can be ours;
		 * for dedupe and UIDVALIDITY changes the whole folder is compared. */
		struct identity_tally tl;
		uint32_t from = (fs->info.window_open && npairs > 0 && !rematch && !e->o->dedupe_existing && !e->o->dry)
					? fs->info.window_dst_uidnext
					: 1;

		if (match_existing(e, fs->info.id, &fs->smbx, &fs->dmbx, todo, ntodo, from, pairs, npairs, &nmatched,
				   &tl, err) < 0)
			goto out;
		if (nmatched)
			log_info("%zu messages already on the destination (matched by identity%s), not copied again",
				 nmatched, tl.padded ? ", some with the final CRLF the destination added" : "");
		if (tl.ambiguous + tl.weak)
			log_warn("%zu messages copied although the destination may hold them: %zu have more "
				 "look-alikes on the destination than on the source, %zu have no Message-ID and "
				 "bodies longer than %u bytes (identity not certain; check for duplicates)",
				 tl.ambiguous + tl.weak, tl.ambiguous, tl.weak, (unsigned)IDENTITY_PREFIX);
		e->st->msgs_matched += nmatched;
		e->st->msgs_ambiguous += tl.ambiguous + tl.weak;
		{
			size_t k = 0;

			for (size_t i = 0; i < ntodo; i++)
				if (!todo[i]->copied)
					todo[k++] = todo[i];
			ntodo = k;
		}
	}
	/* Whatever the window of a crashed attempt held is now matched or recorded: close it, also
	 * when nothing is left to copy, or the folder could never be skipped by STATUS again. */
	if (fs->info.window_open && !e->o->dry && lg->ops->windows_close(lg->ctx, fs->info.id, err) < 0)
		goto out;
	folder_listed(e);
	for (size_t i = 0; i < ntodo && !e->again; i++) /* counted once: not again after a lane failed */
		e->st->bytes_todo += todo[i]->size;
	if (!e->again)
		e->st->msgs_todo += ntodo;
	report_progress(e);
	if (ntodo)
		lanes_kick(e); /* there is mail to copy: the folders after this one on more connections */

	if (e->o->dry) {
		uint64_t bytes = 0;

		for (size_t i = 0; i < ntodo; i++)
			bytes += todo[i]->size;
		log_info("dry run: would copy %zu messages (%llu bytes)", ntodo, (unsigned long long)bytes);
		e->st->msgs_copied += ntodo; /* "would copy", reported as such by the caller */
		e->st->bytes_copied += bytes;
		rc = 0;
		goto out;
	}

	/* After its last APPENDs this folder needs the destination again only to read its flags
	 * (messages copied by an earlier pass), its labels (Gmail to Gmail) or to expunge (--delete2). */
	e->dst_free = !e->o->delete2 && !fe->gm_to_gmail && !(e->o->sync_flags && !rematch && any_copied_before(&fs->sl));
	e->dst_moved = 0;
	nwin = plan_windows(e, todo, ntodo, &wstart);
	sp = split_begin(e, fs, fe, todo, wstart, nwin);
	if (sp) {
		const struct engine_lanes *l = e->job->lanes;
		size_t given;

		r = split_copy(e, sp, &fs->smbx, &fs->dmbx, &dst_uidnext, &fst, err);
		/* every window given out is copied, or its lane failed, once the others have left */
		given = l->split_close(l->ctx, sp);
		split_closed = 1;
		if (r < 0)
			goto out;
		if (atomic_load(&sp->broken) && !e->again) {
			/* A lane that joined failed: what it took and did not record is read again now,
			 * once every lane has left and this lane's rows are written (its open window is
			 * matched, as after a crash), and what is left is copied by this lane. */
			log_warn("a connection pair copying this folder stopped (%s): the folder is read again "
				 "and what it left is copied",
				 sp->err.message);
			if (lg->ops->flush(lg->ctx, err) < 0)
				goto out;
			rc = FOLDER_AGAIN;
			goto out;
		}
		if (atomic_load(&sp->broken)) {
			/* failed again: what the failed lane took and did not copy is left to the next
			 * attempt (its open window is matched then): the folder is not complete */
			fleet_err_set(err, sp->err.cls,
				      sp->err.scope > FLEET_SCOPE_ACCOUNT ? sp->err.scope
									  : FLEET_SCOPE_ACCOUNT,
				      sp->err.code, "another connection pair copying this folder stopped: %s",
				      sp->err.message);
			goto out;
		}
		if (given < nwin) {
			fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_CANCELLED,
				      "stopped on request before copying %zu more windows", nwin - given);
			goto out;
		}
		fst.failed += atomic_load(&sp->failed);
	}
	if (!sp && nwin && name_ahead(e, err) < 0)
		goto out;
	for (size_t w = 0; !sp && w < nwin; w++) {
		/* --newest-first: the windows from the top down (each still in UID order); which messages
		 * a window holds, and so the ledger's windows, are the same either way */
		size_t k = e->o->newest_first ? nwin - 1 - w : w;
		size_t off = wstart[k], want = wstart[k + 1] - wstart[k];
		size_t n = budget_fit(e, todo + off, want);

		if (n == 0) {
			budget_stop_window(e, todo, ntodo, off, n, want, err);
			goto out;
		}
		if (cancelled(e)) {
			fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_CANCELLED,
				      "stopped on request before copying %zu more messages", ntodo - off);
			goto out;
		}
		e->last_window = w + 1 == nwin && n == want;
		e->next_last = w + 2 == nwin && n == want;
		{
			/* the next window, whose FETCH may go out behind this one's APPENDs */
			size_t kn = e->o->newest_first ? nwin - 2 - w : w + 1;
			size_t nn = w + 1 < nwin && n == want ? wstart[kn + 1] - wstart[kn] : 0;

			if (copy_window(e, fs->info.id, fe->src_name, fe->dst_name, &fs->smbx, &fs->dmbx,
					&dst_uidnext, todo + off, n, &fst, 0, nn ? todo + wstart[kn] : NULL, nn,
					err) < 0)
				goto out;
		}
		report_progress(e);
		if (n < want) { /* the budget ran out inside this window */
			budget_stop_window(e, todo, ntodo, off, n, want, err);
			goto out;
		}
	}
	if (cancelled(e)) {
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_CANCELLED, "stopped on request");
		goto out;
	}

	prefetch_next(e, 0); /* the source has nothing more to do for this folder */
	if (e->o->sync_flags && !rematch && sync_flags(e, &fs->sl, &fs->dmbx, err) < 0)
		goto out;
	if (fe->gm_to_gmail && sync_labels(e, &fs->sl, err) < 0)
		goto out;
	if (e->o->delete2 && delete_vanished(e, &fs->sl, pairs, npairs, err) < 0)
		goto out;

	fst.src_uidvalidity = fs->smbx.uidvalidity;
	fst.dst_uidvalidity = fs->dmbx.uidvalidity;
	fst.src_uidnext = fs->si.uidnext;
	fst.src_messages = fs->si.messages;
	fst.src_highestmodseq = fs->si.highestmodseq;
	/* A folder whose messages were left out by --maxage/--minage/--maxsize is never "complete":
	 * a later pass with other filters must look at it again instead of skipping it by STATUS. */
	fst.complete = fst.failed == 0 && filtered == 0 && nouid == 0 && src_unchanged_since_status(&fs->smbx, &fs->sl, &fs->si);
	if (lg->ops->folder_close(lg->ctx, fs->info.id, &fst, err) < 0)
		goto out;
	rc = 0;
	if (nouid) {
		struct fleet_err uerr;

		fleet_err_set(&uerr, FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER, ENGINE_ERR_NO_UID,
			      "the source listed %zu messages without a UID (UID 0): they cannot be copied safely "
			      "(report it to the source server's administrator)",
			      nouid);
		log_warn("%s", uerr.message);
		folder_failed(e, fe->src_name, fe->dst_name, &uerr);
		rc = 1;
	}
out:
	if (rc < 0 && err->scope <= FLEET_SCOPE_FOLDER && !imap_conn_is_broken(e->src) &&
	    !imap_conn_is_broken(e->dst) && strcmp(err->code, LEDGER_ERR_LEASE_LOST) != 0) {
		/* A folder-level failure is reported and the account goes on. */
		log_warn("folder not migrated: %s", err->message);
		folder_failed(e, fe->src_name, fe->dst_name, err);
		rc = 1;
	}
	pend_drop(e); /* a window not copied now: its early FETCH is read away */
	if (e->pend_next && (e->pend_next_fe == fe || rc < 0))
		pend_next_drop(e); /* sent for this folder, which did not take it */
	e->next_last = 0;
	if (sp) {
		/* the lanes that joined still use todo: none gets another window, and all have left */
		if (!split_closed)
			e->job->lanes->split_close(e->job->lanes->ctx, sp);
		xfree(&sp);
	}
	if (e->split_expected) {
		/* helpers that wait for a split of this folder (none came, or it is over) go on */
		e->job->lanes->split_expect(e->job->lanes->ctx, 0);
		e->split_expected = 0;
	}
	xfree(&todo);
	xfree(&wstart);
	xfree(&pairs);
	fstart_release(e, fs);
	fleet_log_set_folder(NULL);
	return rc;
}

/* ---- folders ---------------------------------------------------------------------------------------- */

/* The folders of a LIST for the plan; a name no command can send (a NUL in it) is left out and
 * counted in *unusable. Returns how many were kept. */
static size_t to_fm(const struct imap_list *l, struct fm_folder **out, size_t *unusable)
{
	size_t n = 0;

	*out = xcalloc(l->n ? l->n : 1, sizeof(**out));
	*unusable = 0;
	for (size_t i = 0; i < l->n; i++) {
		struct fm_folder *f = &(*out)[n];
		const struct imap_list_entry *le = &l->v[i];

		if (le->flags & IMAP_MBX_UNUSABLE) {
			(*unusable)++;
			continue;
		}
		n++;

		f->name = le->name;
		f->delim = le->delim;
		f->noselect = (le->flags & (IMAP_MBX_NOSELECT | IMAP_MBX_NONEXISTENT)) != 0;
		f->subscribed = (le->flags & IMAP_MBX_SUBSCRIBED) != 0;
		f->role = le->special[0] ? folder_role_from_attr(le->special) : ROLE_NONE;
	}
	return n;
}

/* NAMESPACE and LIST of both sides, and ENABLE CONDSTORE on the source when enable is set, all go
 * out before any answer is read: one round trip instead of five. Every command sent is collected;
 * the first failure is the one reported. */
static int fetch_folders(struct engine *e, int enable, struct imap_list *sl, struct imap_list *dl,
			 struct fleet_err *err)
{
	struct imap_conn *c[2] = {e->src, e->dst};
	struct imap_namespace *ns[2] = {&e->src_ns, &e->dst_ns};
	struct imap_list *l[2] = {sl, dl};
	int en = 0, nsid[2] = {-1, -1}, lsid[2][2] = {{-1, -1}, {-1, -1}}, nls[2] = {-1, -1}, ok = 1;
	struct fleet_err werr;

	if (enable && imap_conn_has_cap(e->src, "CONDSTORE"))
		en = imap_enable_send(e->src, "CONDSTORE", &werr);
	for (int k = 0; k < 2; k++) {
		if ((nsid[k] = imap_namespace_send(c[k], ns[k], ok ? err : &werr)) < 0)
			ok = 0;
		else if ((nls[k] = imap_list_send(c[k], l[k], lsid[k], ok ? err : &werr)) < 0)
			ok = 0;
		if (imap_conn_flush(c[k], ok ? err : &werr) < 0)
			ok = 0;
	}
	if (en > 0 && imap_cmd_wait(e->src, en, NULL, FLEET_SCOPE_ACCOUNT, &werr) == 0)
		e->src_condstore = 1;
	for (int k = 0; k < 2; k++) {
		int n = nls[k] > 0 ? nls[k] : lsid[k][0] > 0 ? 1 : 0;

		if (nsid[k] > 0 && imap_cmd_wait(c[k], nsid[k], NULL, FLEET_SCOPE_ACCOUNT, ok ? err : &werr) < 0)
			ok = 0;
		if (n && imap_list_wait(c[k], lsid[k], n, ok ? err : &werr) < 0)
			ok = 0;
	}
	return ok ? 0 : -1;
}

static int plan_folders(struct engine *e, struct fm_plan *plan, int enable, struct fleet_err *err)
{
	struct imap_list sl = {0}, dl = {0};
	struct fm_folder *sf = NULL, *df = NULL;
	struct fm_namespace sns, dns;
	struct fm_filter filt;
	size_t nsf, ndf, bad;
	int rc = -1;

	if (fetch_folders(e, enable, &sl, &dl, err) < 0)
		goto out;
	nsf = to_fm(&sl, &sf, &bad);
	/* A source name with a NUL byte: that folder fails, named (escaped); the others go on. */
	for (size_t i = 0; i < sl.n && bad; i++) {
		struct fleet_err why;

		if (!(sl.v[i].flags & IMAP_MBX_UNUSABLE))
			continue;
		fleet_err_set(&why, FLEET_ERR_PERMANENT, FLEET_SCOPE_FOLDER, ENGINE_ERR_PROTOCOL_NAME,
			      "the source lists a folder '%s' whose name holds a NUL byte, which no IMAP command "
			      "can name: its messages cannot be read (rename it on the server, then run again)",
			      sl.v[i].name);
		log_warn("folder not migrated: %s", why.message);
		folder_failed(e, sl.v[i].name, "", &why);
	}
	ndf = to_fm(&dl, &df, &bad);
	sns.prefix = e->src_ns.prefix;
	sns.delim = e->src_ns.delim;
	dns.prefix = e->dst_ns.prefix;
	dns.delim = e->dst_ns.delim;
	engine_opts_folder_filter(e->o, &filt);
	rc = folder_map_plan(sf, nsf, &sns, df, ndf, &dns, &filt, plan, err);
	if (rc == 0 && e->gmail && e->gmail_dst) {
		if (gmail_plan_to_gmail(plan, sf, nsf, df, ndf) == 0)
			log_info("Gmail to Gmail: All Mail copied once, each message's labels set with X-GM-LABELS");
		else
			e->gmail_dst = 0;
	}
	if (rc == 0 && e->gmail && !e->gmail_dst) {
		if (gmail_plan(plan, sf, nsf, &dns, df, ndf, e->o->archive_folder) < 0) {
			log_warn("Gmail mode: the source lists no \\All folder (All Mail); its folders are copied one by one");
			e->gmail = 0;
		} else {
			log_info("Gmail mode: reading All Mail with X-GM-LABELS, labels as %s",
				 e->o->gmail_labels == GMAIL_PRIMARY	? "one folder each (primary)"
				 : e->o->gmail_labels == GMAIL_KEYWORDS ? "keywords"
									: "folders");
		}
	}
out:
	xfree(&sf);
	xfree(&df);
	imap_list_release(&sl);
	imap_list_release(&dl);
	return rc;
}

/* CREATE (or SUBSCRIBE) of up to ENGINE_FOLDER_BATCH folders sent at once, their results read
 * afterwards: a round trip per batch, not per folder. The server still runs them in order, parents
 * first. */

static int want_subscribe(const struct engine *e, const struct fm_entry *fe)
{
	return fe->subscribed && !fe->dst_subscribed && e->o->subscribe && !e->o->dry && !fe->noselect;
}

/* The destination would not create the folder: reported, and its messages are left out. */
static void create_refused(struct engine *e, const struct fm_entry *fe, struct fleet_err *ferr)
{
	fleet_err_prefix(ferr, "cannot create folder '%s' (from '%s') on the destination", fe->dst_name,
			 fe->src_name);
	log_warn("%s; its messages are not copied", ferr->message);
	folder_failed(e, fe->src_name, fe->dst_name, ferr);
}

/* Waits for every id in id[0..n) (each must be collected, also after a failure); returns -1 when the
 * destination connection broke. */
static int create_batch_wait(struct engine *e, struct fm_plan *plan, int *refused, const size_t *idx,
			     const int *id, size_t n)
{
	int broken = 0;

	for (size_t k = 0; k < n; k++) {
		struct fm_entry *fe = &plan->entries[idx[k]];
		struct fleet_err ferr;

		fleet_err_clear(&ferr);
		if (imap_cmd_wait(e->dst, id[k], NULL, FLEET_SCOPE_FOLDER, &ferr) < 0 &&
		    strcmp(ferr.code, IMAP_CODE_ALREADYEXISTS) != 0) {
			if (broken || imap_conn_is_broken(e->dst)) {
				broken = 1;
				continue;
			}
			create_refused(e, fe, &ferr);
			refused[idx[k]] = 1;
			continue;
		}
		e->st->folders_created++;
	}
	return broken ? -1 : 0;
}

static void subscribe_batch_wait(struct engine *e, struct fm_plan *plan, const int *refused, const size_t *idx,
				 const int *id, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		struct fleet_err ferr;

		fleet_err_clear(&ferr);
		/* a folder whose CREATE was refused (reported) cannot be subscribed either */
		if (imap_cmd_wait(e->dst, id[k], NULL, FLEET_SCOPE_FOLDER, &ferr) < 0 && !imap_conn_is_broken(e->dst) &&
		    !refused[idx[k]]) {
			fleet_err_prefix(&ferr, "folder %s", plan->entries[idx[k]].dst_name);
			log_warn("could not subscribe to %s: %s", plan->entries[idx[k]].dst_name,
				 ferr.message);
		}
	}
}

/* The last CREATE and SUBSCRIBE batches of create_folders, sent and not read yet: the STATUS
 * commands of prefetch_status follow them in the same round trip (the server answers in order,
 * so a folder's STATUS comes after its CREATE), and create_folders_wait reads them. */
struct folder_batches {
	size_t cidx[ENGINE_FOLDER_BATCH], sidx[ENGINE_FOLDER_BATCH];
	int cid[ENGINE_FOLDER_BATCH], sid[ENGINE_FOLDER_BATCH];
	size_t nc, ns;
};

/* Sends one folder's CREATE or SUBSCRIBE into a batch, its id and plan index kept for the batch's
 * wait: 1 sent, 0 refused at once (ferr says why), -1 the connection broke. */
static int batch_send(struct engine *e, int (*send)(struct imap_conn *, const char *, struct fleet_err *),
		      const char *name, size_t i, int *id, size_t *idx, size_t *n, struct fleet_err *ferr)
{
	fleet_err_clear(ferr);
	id[*n] = send(e->dst, name, ferr);
	if (id[*n] < 0)
		return imap_conn_is_broken(e->dst) ? -1 : 0;
	idx[(*n)++] = i;
	return 1;
}

/* Creates missing destination folders (parents first) and carries subscriptions. A folder the
 * destination refuses is reported and left out; the account goes on. The last batches are left
 * in fb for create_folders_wait. */
static void create_folders(struct engine *e, struct fm_plan *plan, int *refused, struct folder_batches *fb)
{
	int r;

	fb->nc = fb->ns = 0;
	for (size_t i = 0; i < plan->n; i++) {
		struct fm_entry *fe = &plan->entries[i];
		struct fleet_err ferr;

		refused[i] = 0;
		if (fe->collision)
			log_warn("folder %s -> %s (%s)", fe->src_name, fe->dst_name, fe->note);
		else if (fe->note && *fe->src_name && strcmp(fe->src_name, fe->dst_name) != 0)
			log_info("folder %s -> %s (%s)", fe->src_name, fe->dst_name, fe->note);
		else if (fe->note)
			log_debug("folder %s (%s)", fe->dst_name, fe->note);
		if (fe->exists_on_dst || (fe->noselect && !fe->create_parent))
			continue;
		if (e->o->dry) {
			log_info("dry run: would create folder %s", fe->dst_name);
			e->st->folders_created++; /* "would be created", reported as such by the caller */
			continue;
		}
		r = batch_send(e, imap_create_send, fe->dst_name, i, fb->cid, fb->cidx, &fb->nc, &ferr);
		if (r < 0)
			break;
		if (r == 0) {
			create_refused(e, fe, &ferr);
			refused[i] = 1;
			continue;
		}
		if (fb->nc == ENGINE_FOLDER_BATCH) {
			if (create_batch_wait(e, plan, refused, fb->cidx, fb->cid, fb->nc) < 0) {
				fb->nc = 0;
				return;
			}
			fb->nc = 0;
		}
	}
	if (imap_conn_is_broken(e->dst))
		return;
	/* SUBSCRIBE right behind the CREATEs, without waiting for them */
	for (size_t i = 0; i < plan->n; i++) {
		struct fm_entry *fe = &plan->entries[i];
		struct fleet_err ferr;

		if (refused[i] || !want_subscribe(e, fe))
			continue;
		r = batch_send(e, imap_subscribe_send, fe->dst_name, i, fb->sid, fb->sidx, &fb->ns, &ferr);
		if (r < 0)
			break;
		if (r == 0) {
			log_warn("could not subscribe to %s: %s", fe->dst_name, ferr.message);
			continue;
		}
		if (fb->ns == ENGINE_FOLDER_BATCH) {
			if (create_batch_wait(e, plan, refused, fb->cidx, fb->cid, fb->nc) < 0) {
				fb->nc = fb->ns = 0;
				return;
			}
			fb->nc = 0;
			subscribe_batch_wait(e, plan, refused, fb->sidx, fb->sid, fb->ns);
			fb->ns = 0;
		}
	}
}

static void create_folders_wait(struct engine *e, struct fm_plan *plan, int *refused, struct folder_batches *fb)
{
	if (create_batch_wait(e, plan, refused, fb->cidx, fb->cid, fb->nc) == 0)
		subscribe_batch_wait(e, plan, refused, fb->sidx, fb->sid, fb->ns);
	fb->nc = fb->ns = 0;
}

/* STATUS of every folder to copy on both sides, pipelined ENGINE_STATUS_BATCH at a time on each
 * connection at once, so that a delta pass over unchanged folders costs a round trip per batch
 * instead of one per folder. The batch bound keeps the responses within the socket buffers while
 * the commands are still being written. A folder whose source STATUS fails here is asked again by
 * migrate_folder, which reports the error properly; without the destination's it is examined. */
struct status_batch {
	size_t idx[ENGINE_STATUS_BATCH];
	int id[ENGINE_STATUS_BATCH];
	size_t n;
};

static void status_batch_send(struct engine *e, struct imap_conn *c, int dst, const struct fm_plan *plan,
			      const int *refused, size_t from, size_t to, struct imap_status_info *si,
			      struct status_batch *b)
{
	b->n = 0;
	for (size_t i = from; i < to && !imap_conn_is_broken(c); i++) {
		struct fleet_err ferr;
		int id;

		if (plan->entries[i].noselect || refused[i])
			continue;
		if (dst && e->o->dry && !plan->entries[i].exists_on_dst)
			continue;
		id = imap_status_send(c,
				      dst			       ? plan->entries[i].dst_name
				      : plan->entries[i].src_mailbox ? plan->entries[i].src_mailbox
								     : plan->entries[i].src_name,
				      &si[i], &ferr);
		if (id < 0)
			continue;
		b->idx[b->n] = i;
		b->id[b->n++] = id;
	}
}

static void status_batch_wait(struct imap_conn *c, const struct status_batch *b, int *have)
{
	for (size_t k = 0; k < b->n; k++) {
		struct fleet_err ferr;

		have[b->idx[k]] = imap_cmd_wait(c, b->id[k], NULL, FLEET_SCOPE_FOLDER, &ferr) == 0;
	}
}

/* On a first pass (the destination lacks folders the source has), the first folder's EXAMINE and
 * metadata FETCH, and its SELECT on the destination, go out behind the STATUS commands, before the
 * ledger or the STATUS answers are known: its metadata arrives with the STATUS, one round trip
 * earlier. migrate_folder then asks the ledger (folder_check); a folder the STATUS or the ledger
 * settles otherwise has its answers read away. Reads only: nothing here touches the crash window.
 * Not for helpers, --dry, Gmail mode, budgets or --justfolders. */
static void first_folder_early(struct engine *e, const struct fm_plan *plan, const int *refused)
{
	struct fstart *fs = &e->fs[e->cur];
	const struct fm_entry *fe = NULL;
	int creates = 0;
	struct fleet_err ferr;

	if (!e->order || is_helper(e) || e->o->dry || e->gmail || e->o->justfolders || e->job->budget || fs->fe ||
	    imap_conn_is_broken(e->src) || imap_conn_is_broken(e->dst))
		return;
	for (size_t i = 0; i < plan->n; i++)
		if (!plan->entries[i].noselect && !refused[i] && !plan->entries[i].exists_on_dst)
			creates = 1;
	for (size_t oi = 0; oi < plan->n && !fe; oi++)
		if (!plan->entries[e->order[oi]].noselect && !refused[e->order[oi]])
			fe = &plan->entries[e->order[oi]];
	if (!creates || !fe || fe->src_mailbox || fe->gm_label || fe->gm_archive || fe->gm_to_gmail)
		return;
	memset(fs, 0, sizeof(*fs));
	fs->ssel_id = fs->meta_id = fs->dsel_id = -1;
	fleet_err_clear(&ferr);
	if (folder_send(e, fe, fs, &ferr) < 0 ||
	    (fs->dsel_id = imap_select_send(e->dst, fe->dst_name, 0, &fs->dmbx, &ferr)) < 0) {
		fstart_release(e, fs);
		e->src_sel = NULL;
		return;
	}
	fs->early = 1;
	log_debug("folder %s: EXAMINE, metadata FETCH and SELECT sent with the STATUS commands", fe->src_name);
}

static void prefetch_status(struct engine *e, struct fm_plan *plan, int *refused, struct folder_batches *fb,
			    struct imap_status_info *si, int *have, struct imap_status_info *dsi, int *dhave)
{
	for (size_t i = 0; i < plan->n; i += ENGINE_STATUS_BATCH) {
		size_t to = plan->n - i < ENGINE_STATUS_BATCH ? plan->n : i + ENGINE_STATUS_BATCH;
		struct status_batch bs, bd;

		struct fleet_err ferr;

		status_batch_send(e, e->src, 0, plan, refused, i, to, si, &bs);
		status_batch_send(e, e->dst, 1, plan, refused, i, to, dsi, &bd);
		if (i == 0)
			first_folder_early(e, plan, refused);
		/* both sides on the wire before either answer is read, behind the last CREATEs and
		 * SUBSCRIBEs: one round trip, not three */
		imap_conn_flush(e->src, &ferr);
		imap_conn_flush(e->dst, &ferr);
		if (fb)
			create_folders_wait(e, plan, refused, fb);
		status_batch_wait(e->src, &bs, have);
		status_batch_wait(e->dst, &bd, dhave);
	}
	if (fb)
		create_folders_wait(e, plan, refused, fb); /* no folder to ask about */
}

/* The folders whose source STATUS is known, named to the ledger at once (ledger.h folders_open):
 * one write for all of them instead of one per folder_open. Lane 0 only (helpers find the rows it
 * wrote), never in --dry (each folder_open writes as before). */
static int open_folders(struct engine *e, const struct fm_plan *plan, const int *refused, const int *pre_have,
			const struct imap_status_info *pre_si, struct fleet_err *err)
{
	const struct ledger *lg = &e->job->ledger;
	const char **src, **dst;
	uint32_t *uidv;
	size_t n = 0;
	int rc;

	if (!lg->ops->folders_open || is_helper(e) || e->o->dry || plan->n == 0)
		return 0;
	src = xcalloc(plan->n, sizeof(*src));
	dst = xcalloc(plan->n, sizeof(*dst));
	uidv = xcalloc(plan->n, sizeof(*uidv));
	for (size_t i = 0; i < plan->n; i++) {
		if (plan->entries[i].noselect || refused[i] || !pre_have[i])
			continue;
		src[n] = plan->entries[i].src_name;
		dst[n] = plan->entries[i].dst_name;
		uidv[n++] = pre_si[i].uidvalidity;
	}
	rc = n ? lg->ops->folders_open(lg->ctx, n, src, dst, uidv, err) : 0;
	xfree(&src);
	xfree(&dst);
	xfree(&uidv);
	return rc < 0 ? -1 : 0;
}

static void side_options(const struct engine *e, int side, struct imap_options *io)
{
	const struct engine_side *s = &e->job->side[side];

	memset(io, 0, sizeof(*io));
	io->ep = s->ep;
	io->ep.cancel = e->job->cancel; /* a stop request ends even a drip-fed read (stream.h) */
	io->user = s->user;
	io->password = s->password;
	io->authuser = s->authuser;
	io->oauth_token = s->oauth_token;
	io->auth = s->auth;
	io->trace = e->o->trace || fleet_log_enabled(FLEET_LOG_TRACE);
	io->label = side == 0 ? "src" : "dst";
	io->compress = e->o->compress[side];
}

/* The secret of the side's credential source, when it has one, into io (*secret owns it). */
static int side_secret(const struct engine *e, int side, int refresh, struct imap_options *io, char **secret,
		       struct fleet_err *err)
{
	const struct engine_side *s = &e->job->side[side];

	if (!s->cred)
		return 0;
	if (cred_fetch(s->cred, refresh, secret, err) < 0)
		return -1;
	if (s->cred->is_token) {
		io->oauth_token = *secret;
		io->password = NULL;
	} else {
		io->password = *secret;
		io->oauth_token = NULL;
	}
	return 0;
}

static int side_failed(struct engine *e, int side, struct fleet_err *err)
{
	const struct engine_side *s = &e->job->side[side];

	e->st->error_side = side;
	fleet_err_prefix(err, "%s %s@%s", side == 0 ? "source" : "destination", s->user, s->ep.host);
	return -1;
}

/* An expired token is refused like a wrong one: worth one more login with a new token. A password
 * is never retried (lockouts). */
static int token_refused(const struct engine *e, int side, const struct fleet_err *err)
{
	const struct engine_side *s = &e->job->side[side];

	return s->cred && s->cred->is_token && err->cls == FLEET_ERR_AUTH;
}

static int open_side(struct engine *e, int side, int refresh, struct imap_conn **out, struct fleet_err *err)
{
	struct imap_options io;
	char *secret = NULL;
	int rc;

	side_options(e, side, &io);
	for (;; refresh++) {
		if (side_secret(e, side, refresh, &io, &secret, err) < 0) {
			rc = -1;
			break;
		}
		rc = imap_conn_connect(&io, out, err);
		cred_free(&secret);
		if (rc == 0 || refresh || !token_refused(e, side, err))
			break;
		log_info("%s login refused with the token: getting a new token and trying once more",
			 side == 0 ? "source" : "destination");
	}
	if (rc < 0)
		return side_failed(e, side, err);
	e->st->sides_open |= 1u << side;
	return 0;
}

/* Both sides connect and log in at the same time (their round trips overlap); a side whose token
 * was refused gets a new one and logs in once more, as open_side does. A failure is reported for
 * the source first, as when the sides logged in one after the other. */
static int open_both(struct engine *e, struct fleet_err *err)
{
	struct imap_options io[2];
	const struct imap_options *iop[2] = {&io[0], &io[1]};
	struct imap_conn *c[2] = {NULL, NULL};
	struct fleet_err errs[2];
	char *secret[2] = {NULL, NULL};

	for (int k = 0; k < 2; k++) {
		side_options(e, k, &io[k]);
		if (side_secret(e, k, 0, &io[k], &secret[k], err) < 0) {
			cred_free(&secret[0]);
			return side_failed(e, k, err);
		}
	}
	imap_conn_connect_many(iop, 2, c, errs);
	for (int k = 0; k < 2; k++) {
		cred_free(&secret[k]);
		if (c[k])
			e->st->sides_open |= 1u << k;
	}
	e->src = c[0];
	e->dst = c[1];
	for (int k = 0; k < 2; k++) {
		if (c[k])
			continue;
		if (token_refused(e, k, &errs[k])) {
			log_info("%s login refused with the token: getting a new token and trying once more",
				 k == 0 ? "source" : "destination");
			if (open_side(e, k, 1, k ? &e->dst : &e->src, err) < 0)
				return -1;
			continue;
		}
		*err = errs[k];
		return side_failed(e, k, err);
	}
	return 0;
}

/* A full destination ends the account at once (OVERQUOTA, from the response code or the server's
 * words: io/imap_parser.c): one account-level error that says by how much it is short, from the
 * destination's GETQUOTAROOT and what is left to copy (this folder's rest, and the STATUS SIZE of
 * the folders not looked at yet; "at least" when the source does not tell every size). */
static void explain_overquota(struct engine *e, const struct fm_plan *plan, size_t at, const int *pre_have,
			      const struct imap_status_info *pre_si, struct fleet_err *err)
{
	const struct engine_stats *st = e->st;
	struct imap_quota q;
	struct fleet_err qerr;
	uint64_t left, used, limit;
	int all_known = !e->gmail;
	char said[FLEET_ERR_TEXT_MAX], u[32], l[32], r[32], sh[32];

	for (size_t j = at + 1; j < plan->n; j++)
		if (!plan->entries[j].noselect && !(pre_have[j] && (pre_si[j].have & IMAP_HAVE_SIZE)))
			all_known = 0;
	left = (st->bytes_todo > st->bytes_copied ? st->bytes_todo - st->bytes_copied : 0) +
	       (st->bytes_unlisted > e->unlisted_here ? st->bytes_unlisted - e->unlisted_here : 0);
	snprintf(said, sizeof(said), "%s", err->message);
	fleet_err_clear(&qerr);
	memset(&q, 0, sizeof(q));
	if (imap_conn_is_broken(e->dst) || !imap_conn_has_cap(e->dst, "QUOTA") ||
	    imap_getquotaroot(e->dst, "INBOX", &q, &qerr) < 0 || !q.has_storage) {
		fleet_human_size(left, r, sizeof(r));
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_CODE_OVERQUOTA,
			      "destination over quota with %s%s still to copy (the destination does not tell its "
			      "quota): raise its quota or free space there, then run again",
			      all_known ? "" : "at least ", r);
	} else {
		used = q.storage_used_kb * 1024;
		limit = q.storage_limit_kb * 1024;
		fleet_human_size(used, u, sizeof(u));
		fleet_human_size(limit, l, sizeof(l));
		fleet_human_size(left, r, sizeof(r));
		fleet_human_size(left > (limit > used ? limit - used : 0) ? left - (limit > used ? limit - used : 0) : 0,
				 sh, sizeof(sh));
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_ACCOUNT, IMAP_CODE_OVERQUOTA,
			      "destination over quota: %s of %s used, %s%s still to copy: short by %s%s; raise the "
			      "destination's quota by that much or free space there, then run again",
			      u, l, all_known ? "" : "at least ", r, all_known ? "" : "at least ", sh);
	}
	snprintf(err->detail, sizeof(err->detail), "%s", said);
}

/* The order folders are copied in: the plan's, or with --newest-first INBOX, then Sent, then the
 * rest in the plan's order (where this week's mail is). Heap array of plan->n indexes. */
static size_t *folder_order(const struct engine *e, const struct fm_plan *plan)
{
	static const enum folder_role first[] = {ROLE_INBOX, ROLE_SENT};
	size_t *order = xcalloc(plan->n ? plan->n : 1, sizeof(*order)), k = 0;
	char *taken = xcalloc(plan->n ? plan->n : 1, 1);

	for (size_t r = 0; e->o->newest_first && r < sizeof(first) / sizeof(first[0]); r++)
		for (size_t i = 0; i < plan->n; i++)
			if (!taken[i] && plan->entries[i].role == first[r]) {
				order[k++] = i;
				taken[i] = 1;
			}
	for (size_t i = 0; i < plan->n; i++)
		if (!taken[i])
			order[k++] = i;
	xfree(&taken);
	return order;
}

/* LOGOUT on both sides, sent and not waited for: every answer the account needed is in, and the
 * connections are closed right after (imap_conn_close), so the account's last round trip is not on
 * its path. The servers end the sessions when LOGOUT (or the close behind it) reaches them, half a
 * round trip later, well before a new connection through this slot can log in there (its connect,
 * TLS handshake and login take two round trips at least). */
static void logout_both(struct engine *e)
{
	struct imap_conn *c[2] = {e->src, e->dst};
	struct fleet_err werr;

	for (int k = 0; k < 2; k++)
		if (c[k])
			(void)imap_logout_send(c[k], &werr);
}

int engine_run(const struct engine_job *job, struct engine_stats *st, struct fleet_err *err)
{
	struct engine e;
	struct fm_plan plan;
	int *refused = NULL, *pre_have = NULL, *dst_have = NULL;
	size_t *order = NULL;
	struct imap_status_info *pre_si = NULL, *dst_si = NULL;
	struct folder_batches fb;
	int rc = -1;

	memset(&e, 0, sizeof(e));
	for (int k = 0; k < 2; k++)
		e.uv_names[k] = (struct fleet_buf)FLEET_BUF_INIT(ENGINE_UV_NAMES_MAX);
	memset(&plan, 0, sizeof(plan));
	memset(st, 0, sizeof(*st));
	e.job = job;
	e.o = job->opts;
	e.st = st;
	e.now = time(NULL);
	st->started_ms = fleet_wall_ms();
	st->error_side = -1;
	fleet_err_clear(err);

	if (open_both(&e, err) < 0)
		goto out;
	if (e.o->justlogin) {
		log_info("logged in on both sides (--justlogin)");
		rc = 0;
		goto out;
	}
	/* One APPEND command per window halves the destination server's work (one transaction
	 * instead of one per message). */
	e.multiappend = e.o->multiappend && imap_conn_has_cap(e.dst, "MULTIAPPEND") && imap_conn_has_cap(e.dst, "LITERAL+");
	if (imap_conn_cap_u64(e.dst, "APPENDLIMIT", &e.appendlimit) < 0)
		e.appendlimit = 0;
	fleet_err_clear(err);
	e.gmail = e.o->gmail > 0 || (e.o->gmail == 0 && imap_conn_has_cap(e.src, "X-GM-EXT-1"));
	e.gmail_dst = e.gmail && (imap_conn_has_cap(e.dst, "X-GM-EXT-1") ||
				  (e.o->preset[1] && strcmp(e.o->preset[1], "--gmail2") == 0));
	lanes_probe(&e);
	if (plan_folders(&e, &plan, 1, err) < 0)
		goto out;
	e.plan = &plan;
	st->folders_total = (unsigned)plan.n;
	st->folders_skipped = (unsigned)plan.nskipped;
	for (size_t i = 0; i < plan.nskipped && !is_helper(&e); i++)
		log_info("folder %s", plan.skipped[i]);

	refused = xcalloc(plan.n ? plan.n : 1, sizeof(*refused));
	e.refused = refused;
	/* Helpers create nothing: lane 0 did before it started them; what it could not create it
	 * claimed, so no helper takes it. */
	memset(&fb, 0, sizeof(fb));
	order = folder_order(&e, &plan);
	e.order = order;
	if (!is_helper(&e))
		create_folders(&e, &plan, refused, &fb);
	if (e.o->justfolders)
		create_folders_wait(&e, &plan, refused, &fb);
	if (!imap_conn_is_broken(e.dst) && !e.o->justfolders) {
		pre_si = xcalloc(plan.n ? plan.n : 1, sizeof(*pre_si));
		pre_have = xcalloc(plan.n ? plan.n : 1, sizeof(*pre_have));
		dst_si = xcalloc(plan.n ? plan.n : 1, sizeof(*dst_si));
		dst_have = xcalloc(plan.n ? plan.n : 1, sizeof(*dst_have));
		prefetch_status(&e, &plan, refused, &fb, pre_si, pre_have, dst_si, dst_have);
	}
	for (size_t i = 0; i < plan.n && job->lanes && !is_helper(&e); i++)
		if (refused[i] && !plan.entries[i].noselect)
			(void)lane_claim(&e, &plan.entries[i]);
	if (imap_conn_is_broken(e.dst)) {
		fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_ACCOUNT, ENGINE_ERR_CONNECTION,
			      "the destination connection broke while creating folders");
		goto out;
	}
	if (pre_have && open_folders(&e, &plan, refused, pre_have, pre_si, err) < 0)
		goto out;
	if (e.o->justfolders) {
		rc = st->folders_failed ? 1 : 0;
		goto out;
	}
	/* Gmail mode reads All Mail for every label: its size would count once per label. Helpers
	 * leave the account's estimate to lane 0. */
	for (size_t i = 0; i < plan.n && !e.gmail && !is_helper(&e); i++)
		if (!plan.entries[i].noselect && !refused[i] && pre_have[i] && (pre_si[i].have & IMAP_HAVE_SIZE))
			st->bytes_unlisted += pre_si[i].size;
	report_progress(&e);
	e.pre_have = pre_have;
	e.pre_si = pre_si;
	e.dst_have = dst_have;
	e.dst_si = dst_si;
	for (size_t oi = 0; oi < plan.n; oi++) {
		size_t i = order[oi];
		int r;

		e.oi = oi;
		if (plan.entries[i].noselect || refused[i]) {
			if (!is_helper(&e)) /* lane 0 counts them for the account */
				st->folders_done++;
			continue;
		}
		if (cancelled(&e)) {
			fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_CANCELLED, "stopped on request");
			goto out;
		}
		if (!lane_claim(&e, &plan.entries[i])) {
			/* another lane copies it: its size leaves this lane's estimate */
			if (!is_helper(&e) && !e.gmail && pre_have[i] && (pre_si[i].have & IMAP_HAVE_SIZE))
				st->bytes_unlisted -= pre_si[i].size < st->bytes_unlisted ? pre_si[i].size : st->bytes_unlisted;
			continue;
		}
		if (empty_src(&e, i)) {
			/* settled from STATUS, the fstart ring untouched: the folder asked about ahead
			 * is still the next one's */
			r = empty_folder(&e, &plan.entries[i], &pre_si[i], &dst_si[i], err);
			if (r < 0)
				goto out;
			if (r > 0) {
				st->folders_done++;
				report_progress(&e);
				continue;
			}
		}
		/* the next folder to be copied, which the source may be asked about ahead */
		e.next_fe = NULL;
		for (size_t oj = oi + 1; oj < plan.n; oj++) {
			size_t j = order[oj];

			if (plan.entries[j].noselect || refused[j] || empty_src(&e, j) || !lane_claim(&e, &plan.entries[j]))
				continue;
			e.next_fe = &plan.entries[j];
			e.next_pre = pre_have[j] ? &pre_si[j] : NULL;
			e.next_pre_dst = dst_have[j] ? &dst_si[j] : NULL;
			break;
		}
		/* and the one after it (claimed only when asked about ahead) */
		e.next2_fe = NULL;
		for (size_t oj = oi + 1, seen = 0; e.next_fe && oj < plan.n; oj++) {
			size_t j = order[oj];

			if (plan.entries[j].noselect || refused[j] || empty_src(&e, j))
				continue;
			if (&plan.entries[j] == e.next_fe) {
				seen = 1;
				continue;
			}
			if (!seen)
				continue;
			e.next2_fe = &plan.entries[j];
			e.next2_pre = pre_have[j] ? &pre_si[j] : NULL;
			e.next2_pre_dst = dst_have[j] ? &dst_si[j] : NULL;
			break;
		}
		e.unlisted_here = !e.gmail && pre_have[i] && (pre_si[i].have & IMAP_HAVE_SIZE) ? pre_si[i].size : 0;
		r = migrate_folder(&e, &plan.entries[i], pre_have[i] ? &pre_si[i] : NULL,
				   dst_have[i] ? &dst_si[i] : NULL, err);
		if (r == FOLDER_AGAIN) {
			/* once: what was begun ahead is dropped, the folder is examined and selected anew */
			pend_next_drop(&e);
			fstart_release(&e, FS_NEXT2(&e));
			fstart_release(&e, FS_NEXT(&e));
			e.src_sel = NULL;
			e.again = 1;
			r = migrate_folder(&e, &plan.entries[i], NULL, NULL, err);
			e.again = 0;
		}
		if (r < 0 && strcmp(err->code, IMAP_CODE_OVERQUOTA) == 0)
			explain_overquota(&e, &plan, i, pre_have, pre_si, err);
		e.cur = (e.cur + 1) % 3; /* what was begun ahead is the next folder's */
		folder_listed(&e);
		st->folders_done++;
		if (r < 0 && job->budget &&
		    (strcmp(err->code, ENGINE_CODE_DAILY_BUDGET) == 0 || strcmp(err->code, IMAP_CODE_DAILY_LIMIT) == 0))
			job->budget->pending += pending_after(&plan, i, pre_have, pre_si, dst_have, dst_si);
		if (r < 0)
			goto out;
		report_progress(&e);
		fleet_err_clear(err);
	}
	/* no folder of its own left: windows of the folders other lanes split */
	if (split_join_all(&e, err) < 0)
		goto out;
	rc = (st->msgs_failed || st->folders_failed) ? 1 : 0;
	logout_both(&e);
out:
	st->finished_ms = fleet_wall_ms();
	if (rc < 0 && !fleet_err_is_set(err))
		fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_ACCOUNT, ENGINE_ERR_UNKNOWN, "the account failed without a reason");
	if (rc < 0 && st->error_side < 0)
		st->error_side = (e.src && imap_conn_is_broken(e.src)) ? 0 : (e.dst && imap_conn_is_broken(e.dst)) ? 1 : -1;
	pend_next_drop(&e); /* before the fstart its slots point into */
	for (int k = 0; k < 3; k++) {
		if (!e.src || imap_conn_is_broken(e.src))
			e.fs[k].ssel_id = e.fs[k].meta_id = -1; /* nothing to read any more */
		if (!e.dst || imap_conn_is_broken(e.dst))
			e.fs[k].dsel_id = -1;
		fstart_release(&e, &e.fs[k]);
	}
	uidvalidity_say(&e);
	pend_drop(&e);
	imap_mailbox_release(&e.split_smbx);
	imap_mailbox_release(&e.split_dmbx);
	imap_conn_close(&e.src);
	imap_conn_close(&e.dst);
	folder_map_plan_release(&plan);
	xfree(&e.dst_shared);
	xfree(&order);
	xfree(&refused);
	xfree(&pre_si);
	xfree(&pre_have);
	xfree(&dst_si);
	xfree(&dst_have);
	return rc;
}

void engine_stats_add_lane(struct engine_stats *acc, const struct engine_stats *lane)
{
	acc->folders_unchanged += lane->folders_unchanged;
	acc->folders_failed += lane->folders_failed;
	acc->folders_done += lane->folders_done;
	acc->msgs_source += lane->msgs_source;
	acc->msgs_copied += lane->msgs_copied;
	acc->msgs_skipped += lane->msgs_skipped;
	acc->msgs_failed += lane->msgs_failed;
	acc->msgs_already += lane->msgs_already;
	acc->msgs_matched += lane->msgs_matched;
	acc->bytes_copied += lane->bytes_copied;
	acc->flags_updated += lane->flags_updated;
	acc->msgs_deleted += lane->msgs_deleted;
	acc->flags_dropped += lane->flags_dropped;
	acc->msgs_todo += lane->msgs_todo;
	acc->bytes_todo += lane->bytes_todo;
	acc->sides_open |= lane->sides_open;
	if (lane->finished_ms > acc->finished_ms)
		acc->finished_ms = lane->finished_ms;
	for (size_t i = 0; i < lane->nfailures && acc->nfailures < ENGINE_FAILURES_KEPT_MAX; i++) {
		acc->failures = xgrow(acc->failures, sizeof(*acc->failures), acc->nfailures + 1, &acc->nfailures_alloc);
		acc->failures[acc->nfailures++] = lane->failures[i];
	}
}

void engine_stats_release(struct engine_stats *st)
{
	xfree(&st->failures);
	st->nfailures = st->nfailures_alloc = 0;
}

/* ---- verify ------------------------------------------------------------------------------------------ */

struct vrow {
	uint32_t src_uid, dst_uid;
	uint64_t size;
	int has_sha;
	uint8_t sha[32];
	enum ledger_msg_state state;
};

struct vrows {
	struct vrow *v;
	size_t n, alloc;
};

static int collect_vrow(void *cbctx, const struct verify_ledger_row *row)
{
	struct vrows *vr = cbctx;
	struct vrow *w;

	w = xpush(&vr->v, &vr->n, &vr->alloc);
	w->src_uid = row->src_uid;
	w->dst_uid = row->dst_uid;
	w->size = row->size;
	w->state = row->state;
	if (row->sha256) {
		w->has_sha = 1;
		memcpy(w->sha, row->sha256, 32);
	}
	return 0;
}

static int cmp_vrow(const void *a, const void *b)
{
	return FLEET_CMP(((const struct vrow *)a)->src_uid, ((const struct vrow *)b)->src_uid);
}

/* Adds uid to a shown list (at most VERIFY_UIDS_SHOWN; the count is kept by the caller): such a
 * list always fits its buffer. */
_Static_assert(VERIFY_UIDS_SHOWN * 11 + 4 < ENGINE_VERIFY_LIST_MAX, "a verify list fits its buffer");
static void uid_list_add(struct fleet_buf *b, uint32_t count_before, uint32_t uid)
{
	if (count_before < VERIFY_UIDS_SHOWN)
		fleet_buf_addf(b, b->len ? ",%u" : "%u", uid);
	else if (count_before == VERIFY_UIDS_SHOWN)
		fleet_buf_add_str(b, ",...");
}

static char *uid_list_take(struct fleet_buf *b)
{
	return b->len ? fleet_buf_detach(b, NULL) : (fleet_buf_release(b), NULL);
}

/* --deep: the destination's bodies hashed as they stream, compared with the ledger's SHA-256. */
struct deep_ctx {
	const struct src_list *dl;
	const uint8_t *const *want; /* per dl entry: expected SHA-256, or NULL */
	const uint32_t *src_uid;    /* per dl entry: the paired source UID */
	EVP_MD_CTX *md;
	ssize_t cur;
	struct verify_folder *vf;
	struct fleet_buf *altered;
	uint32_t checked;
};

static ssize_t dl_index(const struct src_list *dl, uint32_t seq, uint32_t uid)
{
	for (size_t i = 0; i < dl->n; i++)
		if ((uid && dl->v[i].uid == uid) || (!uid && dl->v[i].seq == seq))
			return (ssize_t)i;
	return -1;
}

static int deep_start(void *ctx, uint32_t seq, uint32_t uid, uint64_t size, struct fleet_err *err)
{
	struct deep_ctx *d = ctx;
	struct src_msg key = {.uid = uid};
	const struct src_msg *m = uid ? bsearch(&key, d->dl->v, d->dl->n, sizeof(*d->dl->v), cmp_src_uid) : NULL;

	d->cur = m ? m - d->dl->v : dl_index(d->dl, seq, uid);
	if (d->cur >= 0 && d->want[d->cur])
		EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
	else
		d->cur = -1;
	return 0;
}

static int deep_data(void *ctx, const char *data, size_t len, struct fleet_err *err)
{
	struct deep_ctx *d = ctx;

	if (d->cur >= 0)
		EVP_DigestUpdate(d->md, data, len);
	return 0;
}

static int deep_end(void *ctx, struct fleet_err *err)
{
	struct deep_ctx *d = ctx;
	uint8_t sha[32];
	unsigned len = 0;

	if (d->cur < 0)
		return 0;
	EVP_DigestFinal_ex(d->md, sha, &len);
	d->checked++;
	if (memcmp(sha, d->want[d->cur], 32) != 0) {
		uid_list_add(d->altered, d->vf->altered, d->src_uid[d->cur]);
		d->vf->altered++;
	}
	d->cur = -1;
	return 0;
}

static int deep_msg(void *ctx, const struct imap_fetch_msg *m, struct fleet_err *err)
{
	return 0;
}

static int same_date(const char *a, const char *b)
{
	int64_t x, y;

	if (identity_parse_internaldate(a, &x) < 0 || identity_parse_internaldate(b, &y) < 0)
		return strcmp(a, b) == 0;
	return x == y;
}

/* One folder: 0 compared (vf filled), < 0 the connection broke (err). */
static int verify_folder(struct engine *e, const struct fm_entry *fe, const struct verify_reader *rd, int deep,
			 struct verify_folder *vf, struct fleet_err *err)
{
	struct imap_mailbox smbx, dmbx;
	struct src_list sl = {0}, dl = {0};
	struct vrows rows = {0};
	struct fleet_buf missing = FLEET_BUF_INIT(ENGINE_VERIFY_LIST_MAX), extra = FLEET_BUF_INIT(ENGINE_VERIFY_LIST_MAX),
			 altered = FLEET_BUF_INIT(ENGINE_VERIFY_LIST_MAX);
	struct fleet_err ferr;
	ssize_t *pair = NULL;
	char *claimed = NULL;
	int64_t fid = 0;
	uint32_t ldst_uidv = 0;
	int found = 0, ledger_dst_ok, rc = -1, dst_ok = 1;

	memset(&smbx, 0, sizeof(smbx));
	memset(&dmbx, 0, sizeof(dmbx));
	fleet_err_clear(&ferr);
	fleet_log_set_folder(fe->src_name);
	if (imap_select(e->src, fe->src_name, 1, &smbx, &ferr) < 0 ||
	    (smbx.exists && fetch_meta(e->src, "1:*", 0, 0, &sl, &ferr) < 0)) {
		if (imap_conn_is_broken(e->src)) {
			*err = ferr;
			goto out;
		}
		snprintf(vf->error, sizeof(vf->error), "source: %s", ferr.message);
		rc = 0;
		goto out;
	}
	vf->on_source = (uint32_t)sl.n;
	if (rd && (found = rd->folder(rd->ctx, fe->src_name, &fid, &ldst_uidv, err)) < 0)
		goto out;
	if (found && rd->rows(rd->ctx, fid, smbx.uidvalidity, collect_vrow, &rows, err) < 0)
		goto out;
	if (rows.n)
		qsort(rows.v, rows.n, sizeof(*rows.v), cmp_vrow);
	fleet_err_clear(&ferr);
	if (imap_select(e->dst, fe->dst_name, 1, &dmbx, &ferr) < 0 ||
	    (dmbx.exists && fetch_meta(e->dst, "1:*", 0, 0, &dl, &ferr) < 0)) {
		if (imap_conn_is_broken(e->dst)) {
			*err = ferr;
			goto out;
		}
		if (fe->exists_on_dst) {
			snprintf(vf->error, sizeof(vf->error), "destination: %s", ferr.message);
			rc = 0;
			goto out;
		}
		dst_ok = 0; /* the folder is not there: everything in it is missing */
	}
	vf->on_destination = (uint32_t)dl.n;
	ledger_dst_ok = dst_ok && found && ldst_uidv && ldst_uidv == dmbx.uidvalidity;
	pair = xcalloc(sl.n ? sl.n : 1, sizeof(*pair));
	claimed = xcalloc(dl.n ? dl.n : 1, 1);
	/* Pair through the ledger's destination UIDs first, then by size and INTERNALDATE (no UIDPLUS,
	 * a destination UIDVALIDITY that changed, messages that were there before). */
	for (size_t i = 0; i < sl.n; i++) {
		struct vrow key = {.src_uid = sl.v[i].uid}, *r;
		struct src_msg dkey = {0}, *d;

		pair[i] = -1;
		r = rows.n ? bsearch(&key, rows.v, rows.n, sizeof(*rows.v), cmp_vrow) : NULL;
		if (!r || r->state != LEDGER_COPIED || !ledger_dst_ok || !r->dst_uid)
			continue;
		dkey.uid = r->dst_uid;
		d = dl.n ? bsearch(&dkey, dl.v, dl.n, sizeof(*dl.v), cmp_src_uid) : NULL;
		if (d && !claimed[d - dl.v]) {
			pair[i] = d - dl.v;
			claimed[d - dl.v] = 1;
		}
	}
	for (size_t i = 0; i < sl.n; i++) {
		if (pair[i] >= 0)
			continue;
		for (size_t j = 0; j < dl.n; j++)
			if (!claimed[j] && dl.v[j].size == sl.v[i].size &&
			    same_date(dl.v[j].internaldate, sl.v[i].internaldate)) {
				pair[i] = (ssize_t)j;
				claimed[j] = 1;
				break;
			}
	}
	for (size_t i = 0; i < sl.n; i++) {
		struct vrow key = {.src_uid = sl.v[i].uid}, *r;
		const struct src_msg *s = &sl.v[i], *d;
		char *want;
		uint64_t dropped = 0;

		r = rows.n ? bsearch(&key, rows.v, rows.n, sizeof(*rows.v), cmp_vrow) : NULL;
		if (pair[i] < 0) {
			if (r && r->state == LEDGER_SKIPPED) {
				vf->skipped++; /* left out on purpose (--maxsize, APPENDLIMIT ...), reported as such */
				continue;
			}
			uid_list_add(&missing, vf->missing, s->uid);
			vf->missing++;
			continue;
		}
		d = &dl.v[pair[i]];
		if (d->size != s->size || (r && r->state == LEDGER_COPIED && r->size && r->size != s->size)) {
			uid_list_add(&altered, vf->altered, s->uid);
			vf->altered++;
		}
		if (!same_date(d->internaldate, s->internaldate))
			vf->dates++;
		want = filter_flags(s->flags, &dmbx, &dropped);
		if (!flags_equal(want, d->flags))
			vf->flags++;
		xfree(&want);
	}
	for (size_t j = 0; j < dl.n; j++)
		if (!claimed[j]) {
			uid_list_add(&extra, vf->extra, dl.v[j].uid);
			vf->extra++;
		}
	if (deep && dl.n) {
		const uint8_t **want = xcalloc(dl.n, sizeof(*want));
		uint32_t *srcuid = xcalloc(dl.n, sizeof(*srcuid));
		struct fleet_buf set = FLEET_BUF_INIT(ENGINE_FOLDER_SET_MAX);
		struct deep_ctx dc;
		struct imap_fetch_cb cb = {deep_msg, deep_start, deep_data, deep_end};

		for (size_t i = 0; i < sl.n; i++) {
			struct vrow key = {.src_uid = sl.v[i].uid}, *r;

			if (pair[i] < 0)
				continue;
			r = rows.n ? bsearch(&key, rows.v, rows.n, sizeof(*rows.v), cmp_vrow) : NULL;
			if (!r || !r->has_sha)
				continue;
			want[pair[i]] = r->sha;
			srcuid[pair[i]] = sl.v[i].uid;
			fleet_buf_addf(&set, set.len ? ",%u" : "%u", dl.v[pair[i]].uid);
		}
		memset(&dc, 0, sizeof(dc));
		dc.dl = &dl;
		dc.want = want;
		dc.src_uid = srcuid;
		dc.md = EVP_MD_CTX_new();
		dc.cur = -1;
		dc.vf = vf;
		dc.altered = &altered;
		fleet_err_clear(&ferr);
		if (set.len && imap_fetch(e->dst, fleet_buf_cstr(&set), "(UID BODY.PEEK[])", &cb, &dc, &ferr) < 0) {
			if (imap_conn_is_broken(e->dst)) {
				*err = ferr;
				EVP_MD_CTX_free(dc.md);
				fleet_buf_release(&set);
				xfree(&want);
				xfree(&srcuid);
				goto out;
			}
			snprintf(vf->error, sizeof(vf->error), "destination bodies: %s", ferr.message);
		} else if (fleet_buf_truncated(&set)) {
			snprintf(vf->error, sizeof(vf->error),
				 "destination bodies: more UIDs than one command holds (%d bytes); the first ones "
				 "checked, not the rest", ENGINE_FOLDER_SET_MAX);
		}
		log_debug("deep: %u bodies checked against the ledger's SHA-256", dc.checked);
		EVP_MD_CTX_free(dc.md);
		fleet_buf_release(&set);
		xfree(&want);
		xfree(&srcuid);
	}
	rc = 0;
out:
	vf->missing_uids = uid_list_take(&missing);
	vf->extra_uids = uid_list_take(&extra);
	vf->altered_uids = uid_list_take(&altered);
	xfree(&pair);
	xfree(&claimed);
	xfree(&rows.v);
	src_list_release(&sl);
	src_list_release(&dl);
	imap_mailbox_release(&smbx);
	imap_mailbox_release(&dmbx);
	fleet_log_set_folder(NULL);
	return rc;
}

void verify_result_release(struct verify_result *r)
{
	for (size_t i = 0; i < r->nfolders; i++) {
		xfree(&r->folders[i].missing_uids);
		xfree(&r->folders[i].extra_uids);
		xfree(&r->folders[i].altered_uids);
	}
	xfree(&r->folders);
	r->nfolders = r->alloc = 0;
}

int engine_verify(const struct engine_job *job, const struct verify_reader *rd, int deep, struct verify_result *r,
		  struct fleet_err *err)
{
	struct engine e;
	struct engine_stats st;
	struct fm_plan plan;
	int rc = -1;

	memset(&e, 0, sizeof(e));
	memset(&st, 0, sizeof(st));
	memset(&plan, 0, sizeof(plan));
	memset(r, 0, sizeof(*r));
	e.job = job;
	e.o = job->opts;
	e.st = &st;
	e.now = time(NULL);
	r->started_ms = fleet_wall_ms();
	fleet_err_clear(err);
	if (open_both(&e, err) < 0)
		goto out;
	if (plan_folders(&e, &plan, 0, err) < 0)
		goto out;
	for (size_t i = 0; i < plan.n; i++) {
		struct verify_folder *vf;

		if (plan.entries[i].noselect)
			continue;
		if (job->cancel && atomic_load(job->cancel)) {
			fleet_err_set(err, FLEET_ERR_TRANSIENT, FLEET_SCOPE_RUN, FLEET_ERR_CODE_CANCELLED, "stopped on request");
			goto out;
		}
		vf = xpush(&r->folders, &r->nfolders, &r->alloc);
		snprintf(vf->name, sizeof(vf->name), "%s", plan.entries[i].src_name);
		if (verify_folder(&e, &plan.entries[i], rd, deep, vf, err) < 0)
			goto out;
		r->on_source += vf->on_source;
		r->on_destination += vf->on_destination;
		r->missing += vf->missing;
		r->extra += vf->extra;
		r->altered += vf->altered;
		r->flags += vf->flags;
		r->dates += vf->dates;
		r->skipped += vf->skipped;
		r->folders_failed += vf->error[0] != 0;
	}
	r->pass = !r->missing && !r->extra && !r->altered && !r->dates && !r->folders_failed;
	imap_logout(e.src, NULL);
	imap_logout(e.dst, NULL);
	rc = 0;
out:
	r->finished_ms = fleet_wall_ms();
	imap_conn_close(&e.src);
	imap_conn_close(&e.dst);
	folder_map_plan_release(&plan);
	engine_stats_release(&st);
	return rc;
}

/* scheduler/ledger_state.c: engine ledger -> state layer. */
#include "scheduler/ledger_state.h"

#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/util.h"

/* A folder as read at the attempt's first folder_open, so that an unchanged folder costs no
 * statement. Only this engine writes the job's folders while it holds the lease; an entry is
 * dropped (stale) as soon as anything is written for its folder. */
struct folder_cache {
	char *src_name, *dst_name;
	struct state_folder f;
	int stale;
};

/* A folder opened with no copied row of its UIDVALIDITY in the ledger. */
struct opened {
	int64_t id;
	uint32_t uidv;
};

/* A folder's first window begun ahead (windows_ahead): durable once in `begun`, until the folder's
 * own window_begin takes it or it is closed unused. */
struct ahead {
	int64_t id;
	uint32_t dst_uidvalidity, dst_uidnext, last_uid;
};

struct ledger_state {
	struct state_conn *sc;
	struct state_lease lease;
	struct state_ledger_batch *batch;
	int listed; /* the job's folders were read (cache) */
	unsigned held; /* folder statuses held back since the last flush of folder_close */
	struct folder_cache *cache;
	size_t ncache, alloc_cache;
	/* folders opened whose open found no copied row (for uidv) and nothing written since: their
	 * copied_uids is empty without a statement. Several, not the last one only: the engine opens the
	 * next folder (presend) before it asks for the copied UIDs of the current one. */
	struct opened *empty;
	size_t nempty, alloc_empty;
	unsigned pair;
	/* the folders the engine named last (windows_ahead), and the windows begun ahead, not used yet */
	struct ahead *next, *begun;
	size_t nnext, alloc_next, nbegun, alloc_begun;
};

struct ledger_state *ledger_state_new(struct state_conn *sc, const struct state_lease *lease)
{
	struct ledger_state *ls = xcalloc(1, sizeof(*ls));

	ls->sc = sc;
	ls->lease = *lease;
	ls->batch = state_ledger_batch_new(sc, lease, 0);
	return ls;
}

void ledger_state_free(struct ledger_state **pls)
{
	struct ledger_state *ls = *pls;

	if (!ls)
		return;
	{
		struct fleet_err err;

		/* a caller that did not call ledger_state_flush (a no-op when nothing is held): when this
		 * fails too, the open window is matched next time */
		if (ledger_state_flush(ls, &err) < 0)
			log_warn("could not record the last window: %s", err.message);
	}
	state_ledger_batch_free(&ls->batch);
	xfree(&ls->next);
	xfree(&ls->begun);
	xfree(&ls->empty);
	for (size_t i = 0; i < ls->ncache; i++) {
		xfree(&ls->cache[i].src_name);
		xfree(&ls->cache[i].dst_name);
	}
	xfree(&ls->cache);
	xfree(pls);
}

void ledger_state_set_pair(struct ledger_state *ls, unsigned pair)
{
	ls->pair = pair;
	state_ledger_batch_set_pair(ls->batch, pair);
}

/* The window begun ahead for the folder, not used yet; NULL when none. */
static struct ahead *begun_ahead(const struct ledger_state *ls, int64_t folder)
{
	for (size_t i = 0; i < ls->nbegun; i++)
		if (ls->begun[i].id == folder)
			return &ls->begun[i];
	return NULL;
}

static void begun_drop(struct ledger_state *ls, struct ahead *a)
{
	*a = ls->begun[--ls->nbegun];
}

/* A window begun ahead and never used is closed in the next flush: nothing was appended in it. */
static void close_unused(struct ledger_state *ls, int64_t folder)
{
	struct ahead *a = begun_ahead(ls, folder);

	if (!a)
		return;
	state_ledger_batch_end_window(ls->batch, folder);
	begun_drop(ls, a);
}

int ledger_state_flush(struct ledger_state *ls, struct fleet_err *err)
{
	/* the engine returned: windows begun ahead for folders it did not reach close with the rest */
	while (ls->nbegun)
		close_unused(ls, ls->begun[0].id);
	return state_ledger_batch_flush(ls->batch, err);
}

static int cache_add(const char *src_name, const char *dst_name, const struct state_folder *f, void *ctx)
{
	struct ledger_state *ls = ctx;
	struct folder_cache *c;

	ls->cache = xgrow(ls->cache, sizeof(*ls->cache), ls->ncache + 1, &ls->alloc_cache);
	c = &ls->cache[ls->ncache++];
	c->src_name = xstrdup(src_name);
	c->dst_name = xstrdup(dst_name);
	c->f = *f;
	c->stale = 0;
	return 0;
}

/* Drops the folder's entry in ls->empty; returns 1 when there was one (for *uidv when given). */
static int empty_take(struct ledger_state *ls, int64_t folder, const uint32_t *uidv)
{
	for (size_t i = 0; i < ls->nempty; i++)
		if (ls->empty[i].id == folder) {
			int hit = !uidv || ls->empty[i].uidv == *uidv;

			ls->empty[i] = ls->empty[--ls->nempty];
			return hit;
		}
	return 0;
}

/* Something is written for the folder: its cached row no longer holds, nor what was read at open,
 * and it is no longer one to begin ahead (named before it was reached: its status may be held in
 * the batch already, and a window begun with it would mark it "copying" again). */
static void touched(struct ledger_state *ls, int64_t folder)
{
	size_t k = 0;

	for (size_t i = 0; i < ls->nnext; i++)
		if (ls->next[i].id != folder)
			ls->next[k++] = ls->next[i];
	ls->nnext = k;
	for (size_t i = 0; i < ls->ncache; i++)
		if (ls->cache[i].f.id == folder)
			ls->cache[i].stale = 1;
	empty_take(ls, folder, NULL);
}

/* The cached row, when opening the folder would write nothing: same destination name, and a
 * source UIDVALIDITY recorded already (or none to record). */
static const struct state_folder *cache_hit(const struct ledger_state *ls, const char *src_name,
					    const char *dst_name, uint32_t src_uidvalidity)
{
	for (size_t i = 0; i < ls->ncache; i++) {
		const struct folder_cache *c = &ls->cache[i];

		if (strcmp(c->src_name, src_name) != 0)
			continue;
		if (c->stale || strcmp(c->dst_name, dst_name ? dst_name : src_name) != 0 ||
		    (c->f.src_uidvalidity == 0 && src_uidvalidity != 0))
			return NULL;
		return &c->f;
	}
	return NULL;
}

static int ls_folder_open(void *ctx, const char *src_name, const char *dst_name, uint32_t src_uidvalidity,
			  struct ledger_folder_info *out, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;
	const struct state_folder *hit = cache_hit(ls, src_name, dst_name, src_uidvalidity);
	struct state_folder f;
	struct state_window w;
	int r;

	memset(out, 0, sizeof(*out));
	if (hit) {
		f = *hit;
	} else if (!ls->listed) {
		/* the first folder of the attempt brings the others along */
		if (state_folder_upsert_all(ls->sc, &ls->lease, src_name, dst_name, src_uidvalidity, &f, cache_add, ls,
					    err) < 0)
			return -1;
		ls->listed = 1;
	} else {
		if (state_folder_upsert(ls->sc, &ls->lease, src_name, dst_name, src_uidvalidity, &f, err) < 0)
			return -1;
		touched(ls, f.id);
	}
	empty_take(ls, f.id, NULL);
	if (!f.has_copied_rows) {
		ls->empty = xgrow(ls->empty, sizeof(*ls->empty), ls->nempty + 1, &ls->alloc_empty);
		ls->empty[ls->nempty].id = f.id;
		ls->empty[ls->nempty++].uidv = f.copied_rows_uidvalidity;
	}
	if (begun_ahead(ls, f.id))
		f.window_open = 0; /* this attempt's own window, begun ahead: nothing appended in it yet */
	out->id = f.id;
	out->src_uidvalidity = f.src_uidvalidity;
	out->dst_uidvalidity = f.dst_uidvalidity;
	out->src_uidnext = f.src_uidnext;
	out->src_messages = f.src_messages;
	out->src_highestmodseq = f.src_highestmodseq;
	out->copied = f.msgs_copied > 0 ? (uint64_t)f.msgs_copied : 0;
	if (!f.window_open)
		return 0;
	memset(&w, 0, sizeof(w));
	r = state_folder_get_window(ls->sc, f.id, &w, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		out->window_open = 1;
		out->window_dst_uidnext = w.dst_uidnext;
		state_window_release(&w);
	}
	return 0;
}

static int ls_folders_open(void *ctx, size_t n, const char *const *src_names, const char *const *dst_names,
			   const uint32_t *src_uidvalidities, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;

	if (ls->listed || n == 0)
		return 0;
	/* every folder of the job in the cache: the folder_open calls that follow cost nothing */
	if (state_folder_upsert_many(ls->sc, &ls->lease, n, src_names, dst_names, src_uidvalidities, cache_add, ls,
				     err) < 0)
		return -1;
	ls->listed = 1;
	return 0;
}

static int ls_folder_reset(void *ctx, int64_t folder, uint32_t new_src_uidvalidity, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;

	touched(ls, folder);
	{
		struct ahead *a = begun_ahead(ls, folder);

		if (a)
			begun_drop(ls, a); /* the reset clears the folder's window */
	}
	/* Old rows are kept: they are history, and never count as copied for the new UIDVALIDITY. */
	return state_folder_reset_uidvalidity(ls->sc, &ls->lease, folder, new_src_uidvalidity, STATE_UIDV_KEEP_OLD,
					      err);
}

struct pairs_ctx {
	struct ledger_uid_pair *v;
	size_t n, alloc;
};

static int collect_pair(const struct state_ledger_row *row, void *ctx)
{
	struct pairs_ctx *pc = ctx;

	if (row->state != STATE_MSG_COPIED)
		return 0;
	pc->v = xgrow(pc->v, sizeof(*pc->v), pc->n + 1, &pc->alloc);
	pc->v[pc->n].src_uid = row->src_uid;
	pc->v[pc->n++].dst_uid = row->dst_uid;
	return 0;
}

static int ls_copied_uids(void *ctx, int64_t folder, uint32_t src_uidvalidity, struct ledger_uid_pair **pairs,
			  size_t *n, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;
	struct pairs_ctx pc = {NULL, 0, 0};

	if (empty_take(ls, folder, &src_uidvalidity)) {
		/* the folder's open found no copied row, and nothing was written for it since (asked once:
		 * a second question reads the ledger) */
		*pairs = NULL;
		*n = 0;
		return 0;
	}
	if (state_ledger_foreach(ls->sc, folder, src_uidvalidity, 0, collect_pair, &pc, err) < 0) {
		xfree(&pc.v);
		return -1;
	}
	*pairs = pc.v; /* in UID order already */
	*n = pc.n;
	return 0;
}

/* The cached row of a folder named by windows_ahead, when its first window may begin ahead: known
 * and unchanged since it was read, no window open (a crashed attempt's is matched first), the same
 * UIDVALIDITY on both sides, and new mail by the STATUS (a folder unchanged since the last complete
 * pass is skipped by the engine: beginning a window there would write a row it does not write). */
static const struct state_folder *ahead_row(const struct ledger_state *ls, const struct ledger_ahead *x)
{
	for (size_t i = 0; i < ls->ncache; i++) {
		const struct folder_cache *c = &ls->cache[i];

		if (strcmp(c->src_name, x->src_name) != 0)
			continue;
		if (c->stale || c->f.window_open || x->src_messages == 0 || x->dst_uidnext == 0 ||
		    x->dst_uidvalidity == 0 || (c->f.src_uidvalidity && c->f.src_uidvalidity != x->src_uidvalidity) ||
		    (c->f.dst_uidvalidity && c->f.dst_uidvalidity != x->dst_uidvalidity) ||
		    (c->f.src_uidnext == x->src_uidnext && c->f.src_messages == x->src_messages))
			return NULL;
		return &c->f;
	}
	return NULL;
}

static int ls_windows_ahead(void *ctx, size_t n, const struct ledger_ahead *next, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;

	(void)err;
	ls->nnext = 0;
	/* pair 0 only: its windows are the folder rows' (a helper pair copies what it claims) */
	for (size_t i = 0; i < n && ls->pair == 0 && ls->nnext < LEDGER_STATE_AHEAD_MAX; i++) {
		const struct state_folder *f = ahead_row(ls, &next[i]);
		struct ahead *a;

		if (!f || begun_ahead(ls, f->id))
			continue;
		ls->next = xgrow(ls->next, sizeof(*ls->next), ls->nnext + 1, &ls->alloc_next);
		a = &ls->next[ls->nnext++];
		a->id = f->id;
		a->dst_uidvalidity = next[i].dst_uidvalidity;
		a->dst_uidnext = next[i].dst_uidnext;
		a->last_uid = next[i].src_uidnext > 0 ? next[i].src_uidnext - 1 : 0;
	}
	log_debug("%zu of the %zu folders named ahead may begin their first window with this one", ls->nnext, n);
	return 0;
}

static int ls_window_begin(void *ctx, int64_t folder, uint32_t dst_uidvalidity, uint32_t dst_uidnext,
			   uint32_t first_src_uid, uint32_t last_src_uid, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;
	struct ahead *a = begun_ahead(ls, folder);
	size_t nnext = 0;

	touched(ls, folder);
	if (a) {
		/* Begun ahead, durable already: good for this window when every UID appended here is at or
		 * above the UIDNEXT it recorded (the same UIDVALIDITY, a UIDNEXT no lower). */
		int fits = a->dst_uidvalidity == dst_uidvalidity && dst_uidnext >= a->dst_uidnext;

		begun_drop(ls, a);
		if (fits) {
			fleet_failpoint("window-begun-ahead"); /* durable, nothing of it appended yet */
			return 0;
		}
	}
	/* One statement: what is pending (the previous window's rows and end, say), this window, and
	 * the first windows of the folders named ahead (windows_ahead). */
	state_ledger_batch_window_begin(ls->batch, folder, dst_uidnext, first_src_uid, last_src_uid);
	for (size_t i = 0; i < ls->nnext; i++)
		if (ls->next[i].id != folder && !begun_ahead(ls, ls->next[i].id)) {
			state_ledger_batch_window_begin(ls->batch, ls->next[i].id, ls->next[i].dst_uidnext, 1,
							ls->next[i].last_uid);
			ls->next[nnext++] = ls->next[i];
		}
	ls->nnext = 0;
	if (state_ledger_batch_flush(ls->batch, err) < 0)
		return -1; /* none of them was begun */
	for (size_t i = 0; i < nnext; i++) {
		ls->begun = xgrow(ls->begun, sizeof(*ls->begun), ls->nbegun + 1, &ls->alloc_begun);
		ls->begun[ls->nbegun++] = ls->next[i];
	}
	if (nnext)
		fleet_failpoint("windows-ahead"); /* several folders' windows durable, nothing appended */
	return 0;
}

static int ls_record(void *ctx, int64_t folder, const struct ledger_record *rec, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;
	struct state_ledger_row row;

	touched(ls, folder);
	memset(&row, 0, sizeof(row));
	row.folder_id = folder;
	row.src_uidvalidity = rec->src_uidvalidity;
	row.src_uid = rec->src_uid;
	row.size = rec->size;
	row.internaldate = rec->internaldate;
	if (rec->sha256) {
		row.has_sha256 = 1;
		memcpy(row.sha256, rec->sha256, 32);
	}
	row.dst_uidvalidity = rec->dst_uidvalidity;
	row.dst_uid = rec->dst_uid;
	row.flags = rec->flags;
	row.state = rec->state == LEDGER_COPIED ? STATE_MSG_COPIED
		    : rec->state == LEDGER_FAILED ? STATE_MSG_FAILED
						  : STATE_MSG_SKIPPED;
	row.error = rec->error;
	return state_ledger_batch_add(ls->batch, &row, err);
}

static int ls_flush(void *ctx, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;

	return state_ledger_batch_flush(ls->batch, err);
}

static int ls_window_end(void *ctx, int64_t folder, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;

	(void)err;
	/* Rows and the end of the window commit in one transaction: the next one that writes anyway
	 * (the next window's begin, the folder's status, a failure, ledger_state_flush). Until then the
	 * window stays open, as if the process had stopped just before its end: a crash is resumed by
	 * matching, like every crash inside a window. */
	touched(ls, folder);
	state_ledger_batch_end_window(ls->batch, folder);
	fleet_failpoint("window-end-held"); /* the rows and the end written by nothing yet */
	return 0;
}

static int ls_windows_close(void *ctx, int64_t folder, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;

	(void)err;
	/* every pair's window, with the matched rows (held back as ls_window_end) */
	touched(ls, folder);
	state_ledger_batch_end_all_windows(ls->batch, folder);
	return 0;
}

static int ls_folder_close(void *ctx, int64_t folder, const struct ledger_folder_stats *st, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;
	struct state_folder_status fs;

	touched(ls, folder);
	close_unused(ls, folder); /* begun ahead, nothing to copy after all: closed with the status */
	memset(&fs, 0, sizeof(fs));
	fs.dst_uidvalidity = st->dst_uidvalidity;
	if (st->complete) {
		/* Only a complete pass may let the next one skip the folder from STATUS alone. */
		fs.state = STATE_FOLDER_DONE;
		fs.src_uidnext = st->src_uidnext;
		fs.src_messages = st->src_messages;
		fs.src_highestmodseq = st->src_highestmodseq;
	} else {
		fs.state = STATE_FOLDER_COPYING;
	}
	/* Held back with the folder's last rows and the end of its last window: written by the next
	 * statement that writes anyway (the next folder's first window begin, ledger_state_flush when
	 * the engine returns), or here once LEDGER_STATE_HELD_FOLDERS_MAX folders wait. A crash before
	 * that leaves the last window open: resumed by matching, like any crash inside a window. */
	state_ledger_batch_folder_status(ls->batch, folder, &fs);
	if (++ls->held < LEDGER_STATE_HELD_FOLDERS_MAX)
		return 0;
	ls->held = 0;
	return state_ledger_batch_flush(ls->batch, err);
}

static int ls_folder_failed(void *ctx, const char *src_name, const char *dst_name, const struct fleet_err *why,
			    struct fleet_err *err)
{
	struct ledger_state *ls = ctx;

	for (size_t i = 0; i < ls->ncache; i++)
		if (strcmp(ls->cache[i].src_name, src_name) == 0) {
			touched(ls, ls->cache[i].f.id);
			close_unused(ls, ls->cache[i].f.id);
		}
	if (state_ledger_batch_flush(ls->batch, err) < 0)
		return -1;
	return state_folder_mark_failed(ls->sc, &ls->lease, src_name, dst_name, why->message, err);
}

static const struct ledger_ops state_ops = {
	.folder_open = ls_folder_open,
	.folder_reset = ls_folder_reset,
	.folders_open = ls_folders_open,
	.copied_uids = ls_copied_uids,
	.windows_ahead = ls_windows_ahead,
	.window_begin = ls_window_begin,
	.record = ls_record,
	.flush = ls_flush,
	.window_end = ls_window_end,
	.windows_close = ls_windows_close,
	.folder_close = ls_folder_close,
	.folder_failed = ls_folder_failed,
};

struct ledger ledger_state_bind(struct ledger_state *ls)
{
	struct ledger l = {&state_ops, ls};

	return l;
}

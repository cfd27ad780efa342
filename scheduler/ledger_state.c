/* scheduler/ledger_state.c: engine ledger -> state layer. */
#include "scheduler/ledger_state.h"

#include <string.h>

#include "common/alloc.h"

struct ledger_state {
	struct state_conn *sc;
	struct state_lease lease;
	struct state_ledger_batch *batch;
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
	if (!*pls)
		return;
	state_ledger_batch_free(&(*pls)->batch);
	xfree(pls);
}

static int ls_folder_open(void *ctx, const char *src_name, const char *dst_name, uint32_t src_uidvalidity,
			  struct ledger_folder_info *out, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;
	struct state_folder f;
	struct state_window w;
	int r;

	memset(out, 0, sizeof(*out));
	if (state_folder_upsert(ls->sc, &ls->lease, src_name, dst_name, src_uidvalidity, &f, err) < 0)
		return -1;
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

static int ls_folder_reset(void *ctx, int64_t folder, uint32_t new_src_uidvalidity, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;

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

	if (state_ledger_foreach(ls->sc, folder, src_uidvalidity, 0, collect_pair, &pc, err) < 0) {
		xfree(&pc.v);
		return -1;
	}
	*pairs = pc.v; /* in UID order already */
	*n = pc.n;
	return 0;
}

static int ls_window_begin(void *ctx, int64_t folder, uint32_t dst_uidvalidity, uint32_t dst_uidnext,
			   uint32_t first_src_uid, uint32_t last_src_uid, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;

	if (state_ledger_batch_flush(ls->batch, err) < 0)
		return -1;
	return state_folder_window_begin(ls->sc, &ls->lease, folder, dst_uidnext, first_src_uid, last_src_uid, NULL,
					 0, err);
}

static int ls_record(void *ctx, int64_t folder, const struct ledger_record *rec, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;
	struct state_ledger_row row;

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

	/* Rows and the end of the window commit in one transaction. */
	state_ledger_batch_end_window(ls->batch, folder);
	return state_ledger_batch_flush(ls->batch, err);
}

static int ls_folder_close(void *ctx, int64_t folder, const struct ledger_folder_stats *st, struct fleet_err *err)
{
	struct ledger_state *ls = ctx;
	struct state_folder_status fs;

	if (state_ledger_batch_flush(ls->batch, err) < 0)
		return -1;
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
	return state_folder_record_status(ls->sc, &ls->lease, folder, &fs, err);
}

static int ls_folder_failed(void *ctx, const char *src_name, const char *dst_name, const struct fleet_err *why,
			    struct fleet_err *err)
{
	struct ledger_state *ls = ctx;

	if (state_ledger_batch_flush(ls->batch, err) < 0)
		return -1;
	return state_folder_mark_failed(ls->sc, &ls->lease, src_name, dst_name, why->message, err);
}

static const struct ledger_ops state_ops = {
	.folder_open = ls_folder_open,
	.folder_reset = ls_folder_reset,
	.copied_uids = ls_copied_uids,
	.window_begin = ls_window_begin,
	.record = ls_record,
	.flush = ls_flush,
	.window_end = ls_window_end,
	.folder_close = ls_folder_close,
	.folder_failed = ls_folder_failed,
};

struct ledger ledger_state_bind(struct ledger_state *ls)
{
	struct ledger l = {&state_ops, ls};

	return l;
}

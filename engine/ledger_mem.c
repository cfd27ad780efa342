/* engine/ledger_mem.c: the in-memory ledger (sync --dry, unit tests). Not thread-safe. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/util.h"
#include "engine/ledger.h"

struct mem_folder {
	char *src_name;
	struct ledger_folder_info info;
	struct ledger_uid_pair *uids;
	size_t nuids, nalloc;
};

struct ledger_mem {
	struct mem_folder *folders;
	size_t nfolders, nalloc;
	size_t nrecords;
};

struct ledger_mem *ledger_mem_new(void)
{
	return xcalloc(1, sizeof(struct ledger_mem));
}

void ledger_mem_free(struct ledger_mem **plm)
{
	struct ledger_mem *lm = *plm;

	if (!lm)
		return;
	for (size_t i = 0; i < lm->nfolders; i++) {
		xfree(&lm->folders[i].src_name);
		xfree(&lm->folders[i].uids);
	}
	xfree(&lm->folders);
	xfree(plm);
}

static struct mem_folder *folder_by_id(struct ledger_mem *lm, int64_t id)
{
	return (id >= 1 && (size_t)id <= lm->nfolders) ? &lm->folders[id - 1] : NULL;
}

static int mem_folder_open(void *ctx, const char *src_name, const char *dst_name, uint32_t src_uidvalidity,
			   struct ledger_folder_info *out, struct fleet_err *err)
{
	struct ledger_mem *lm = ctx;
	struct mem_folder *f;

	for (size_t i = 0; i < lm->nfolders; i++) {
		if (strcmp(lm->folders[i].src_name, src_name) == 0) {
			*out = lm->folders[i].info;
			return 0;
		}
	}
	f = xpush(&lm->folders, &lm->nfolders, &lm->nalloc);
	f->src_name = xstrdup(src_name);
	f->info.id = (int64_t)lm->nfolders;
	f->info.src_uidvalidity = src_uidvalidity;
	*out = f->info;
	return 0;
}

static int mem_folder_reset(void *ctx, int64_t folder, uint32_t new_src_uidvalidity, struct fleet_err *err)
{
	struct mem_folder *f = folder_by_id(ctx, folder);

	if (!f)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, LEDGER_ERR_NO_FOLDER, "unknown ledger folder");
	f->nuids = 0;
	f->info.src_uidvalidity = new_src_uidvalidity;
	f->info.src_uidnext = 0;
	f->info.src_highestmodseq = 0;
	return 0;
}

static int cmp_pair(const void *a, const void *b)
{
	return FLEET_CMP(((const struct ledger_uid_pair *)a)->src_uid, ((const struct ledger_uid_pair *)b)->src_uid);
}

static int mem_copied_uids(void *ctx, int64_t folder, uint32_t src_uidvalidity, struct ledger_uid_pair **uids,
			   size_t *n, struct fleet_err *err)
{
	struct mem_folder *f = folder_by_id(ctx, folder);

	if (!f)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, LEDGER_ERR_NO_FOLDER, "unknown ledger folder");
	*n = 0;
	*uids = NULL;
	if (f->info.src_uidvalidity != src_uidvalidity || f->nuids == 0)
		return 0;
	*uids = xmalloc(f->nuids * sizeof(**uids));
	memcpy(*uids, f->uids, f->nuids * sizeof(**uids));
	qsort(*uids, f->nuids, sizeof(**uids), cmp_pair);
	*n = f->nuids;
	return 0;
}

static int mem_window_begin(void *ctx, int64_t folder, uint32_t dst_uidvalidity, uint32_t dst_uidnext,
			    uint32_t first, uint32_t last, struct fleet_err *err)
{
	struct mem_folder *f = folder_by_id(ctx, folder);

	if (!f)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, LEDGER_ERR_NO_FOLDER, "unknown ledger folder");
	f->info.window_open = 1;
	f->info.window_dst_uidnext = dst_uidnext;
	f->info.dst_uidvalidity = dst_uidvalidity;
	return 0;
}

static int mem_record(void *ctx, int64_t folder, const struct ledger_record *rec, struct fleet_err *err)
{
	struct ledger_mem *lm = ctx;
	struct mem_folder *f = folder_by_id(lm, folder);

	if (!f)
		return fleet_err_set(err, FLEET_ERR_BUG, FLEET_SCOPE_FOLDER, LEDGER_ERR_NO_FOLDER, "unknown ledger folder");
	lm->nrecords++;
	f->info.src_uidvalidity = rec->src_uidvalidity;
	if (rec->state == LEDGER_COPIED) {
		f->uids = xgrow(f->uids, sizeof(*f->uids), f->nuids + 1, &f->nalloc);
		f->uids[f->nuids].src_uid = rec->src_uid;
		f->uids[f->nuids++].dst_uid = rec->dst_uid;
	}
	return 0;
}

static int mem_flush(void *ctx, struct fleet_err *err)
{
	return 0;
}

static int mem_window_end(void *ctx, int64_t folder, struct fleet_err *err)
{
	struct mem_folder *f = folder_by_id(ctx, folder);

	if (f)
		f->info.window_open = 0;
	return 0;
}

static int mem_folder_close(void *ctx, int64_t folder, const struct ledger_folder_stats *st, struct fleet_err *err)
{
	struct mem_folder *f = folder_by_id(ctx, folder);

	if (!f)
		return 0;
	f->info.src_uidvalidity = st->src_uidvalidity;
	f->info.dst_uidvalidity = st->dst_uidvalidity;
	if (st->complete) {
		f->info.src_uidnext = st->src_uidnext;
		f->info.src_messages = st->src_messages;
		f->info.src_highestmodseq = st->src_highestmodseq;
	}
	return 0;
}

static int mem_folder_failed(void *ctx, const char *src_name, const char *dst_name, const struct fleet_err *why,
			     struct fleet_err *err)
{
	return 0; /* the engine's stats carry the failure; nothing outlives the process here */
}

static const struct ledger_ops mem_ops = {
	.folder_open = mem_folder_open,
	.folder_reset = mem_folder_reset,
	.copied_uids = mem_copied_uids,
	.window_begin = mem_window_begin,
	.record = mem_record,
	.flush = mem_flush,
	.window_end = mem_window_end,
	.windows_close = mem_window_end,
	.folder_close = mem_folder_close,
	.folder_failed = mem_folder_failed,
};

struct ledger ledger_mem_bind(struct ledger_mem *lm)
{
	struct ledger l = {&mem_ops, lm};

	return l;
}

size_t ledger_mem_record_count(const struct ledger_mem *lm)
{
	return lm->nrecords;
}

int ledger_mem_window_open(const struct ledger_mem *lm, int64_t folder)
{
	return (folder >= 1 && (size_t)folder <= lm->nfolders) ? lm->folders[folder - 1].info.window_open : 0;
}

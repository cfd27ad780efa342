/* ops/report.c: `report`: loading a run into memory, and writing the files of the chosen formats
 * (the formats themselves are in report_csv.c, report_json.c and report_html.c).
 *
 * Every string that comes from the database goes through an escaper (ops/render.h); the renderers
 * print numbers and fixed text only otherwise.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/util.h"
#include "ops/render.h"
#include "ops/report.h"
#include "ops/report_private.h"

/* ---- runs ------------------------------------------------------------------------------------- */

static int run_list_cb(const struct state_run_report *row, void *ctx)
{
	struct run_list *l = ctx;
	struct run_info *ri;

	ri = xpush(&l->v, &l->n, &l->alloc);
	ri->id = row->run_id;
	ri->name = xstrdup(row->name);
	ri->state = xstrdup(row->state);
	ri->created_ms = row->created_at_ms;
	ri->updated_ms = row->updated_at_ms;
	return 0;
}

static int pass_cb(const struct state_pass_report *p, void *ctx)
{
	struct run_info *ri = ctx;
	struct state_pass_report *pi;

	ri->passes = xgrow(ri->passes, sizeof(*ri->passes), ri->npasses + 1, &ri->passes_alloc);
	pi = &ri->passes[ri->npasses++];
	*pi = *p;
	/* p->kind lives in the result, which is gone after the walk: one of the two kinds the schema
	 * allows, as a literal */
	pi->kind = strcmp(p->kind, "first") == 0 ? "first" : "delta";
	return 0;
}

void run_info_release(struct run_info *ri)
{
	xfree(&ri->name);
	xfree(&ri->state);
	xfree(&ri->passes);
}

void run_list_release(struct run_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		run_info_release(&l->v[i]);
	xfree(&l->v);
	l->n = l->alloc = 0;
}

/* Runs (all or one) with their counts. */
int run_list_load(struct state_conn *sc, int64_t run_id, struct run_list *l, struct fleet_err *err)
{
	memset(l, 0, sizeof(*l));
	if (state_report_runs(sc, run_id, run_list_cb, l, err) < 0)
		return -1;
	for (size_t i = 0; i < l->n; i++)
		if (state_report_run_counts(sc, l->v[i].id, &l->v[i].counts, err) < 0 ||
		    state_report_passes(sc, l->v[i].id, pass_cb, &l->v[i], err) < 0)
			return -1;
	return 0;
}

/* Where a run stands, from its accounts (the run row stays "active" until it is cancelled). */
const char *run_progress(const char *run_state, const struct state_run_counts *c)
{
	long total = 0;

	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		total += c->jobs[s];
	if (strcmp(run_state, "cancelled") == 0)
		return "cancelled";
	if (total == 0)
		return "no accounts";
	if (c->jobs[STATE_JOB_QUEUED] + c->jobs[STATE_JOB_RUNNING] > 0)
		return "in progress";
	return c->jobs[STATE_JOB_FAILED] || c->jobs[STATE_JOB_PARTIAL] ? "finished with failures" : "finished";
}

long counts_total(const struct state_run_counts *c)
{
	long t = 0;

	for (int s = 0; s < STATE_JOB_NSTATES; s++)
		t += c->jobs[s];
	return t;
}

int report_pick_run(struct state_conn *sc, int64_t run_id, int64_t *out, struct fleet_err *err)
{
	struct run_list l;
	int found;

	if (run_id <= 0)
		return state_report_default_run(sc, out, err);
	memset(&l, 0, sizeof(l));
	if (state_report_runs(sc, run_id, run_list_cb, &l, err) < 0) {
		run_list_release(&l);
		return -1;
	}
	found = l.n == 1;
	if (found)
		*out = run_id;
	run_list_release(&l);
	return found;
}

/* ---- loading a run ---------------------------------------------------------------------------- */

/* Copies the n strings *fields[i] into one allocation and points each field at its copy (NULL
 * becomes ""); returns the allocation, freed once by the caller. */
static char *strings_own(const char **const *fields, size_t n)
{
	size_t len = 0, at = 0;
	char *s;

	for (size_t i = 0; i < n; i++)
		len += strlen(*fields[i] ? *fields[i] : "") + 1;
	s = xmalloc(len);
	for (size_t i = 0; i < n; i++) {
		const char *v = *fields[i] ? *fields[i] : "";
		size_t k = strlen(v) + 1;

		memcpy(s + at, v, k);
		*fields[i] = s + at;
		at += k;
	}
	return s;
}

static int load_job_cb(const struct state_job_report *j, void *ctx)
{
	struct report *r = ctx;
	struct report_acct *a;

	a = xpush(&r->accts, &r->naccts, &r->accts_alloc);
	a->j = *j; /* its strings live in the result, which is gone after the walk: copied */
	a->strings = strings_own((const char **const[]){&a->j.host1, &a->j.user1, &a->j.host2, &a->j.user2,
							&a->j.last_error_class, &a->j.last_error_code,
							&a->j.last_error_text, &a->j.left_out, &a->j.verdict,
							&a->j.park_reason},
				 10);
	return 0;
}

static int cmp_acct_id(const void *key, const void *elem)
{
	int64_t k = *(const int64_t *)key, id = ((const struct report_acct *)elem)->j.job_id;

	return k < id ? -1 : k > id;
}

struct report_acct *find_acct(const struct report *r, int64_t id)
{
	return bsearch(&id, r->accts, r->naccts, sizeof(*r->accts), cmp_acct_id);
}

static int load_time_cb(const struct state_job_time *t, void *ctx)
{
	struct report *r = ctx;
	struct report_acct *a = find_acct(r, t->job_id);

	if (a) {
		a->busy_ms = t->busy_ms;
		a->attempts_total = t->attempts_total;
	}
	return 0;
}

/* "message of 107745 bytes is larger than --maxsize 102400" -> "message of N bytes is larger than
 * --maxsize N": a number standing alone (not inside a word like IMAP4rev1) is replaced, so that
 * reasons that differ only by a size, a UID or a count fall into one group. */
static char *reason_group(const char *reason)
{
	struct fleet_buf b = FLEET_BUF_INIT(strlen(reason) + 1); /* never longer than the reason */
	const char *p = reason;
	char *out;

	while (*p) {
		size_t n = strspn(p, "0123456789");
		int alone =
		    n > 0 && (p == reason || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[n]);

		if (alone) {
			fleet_buf_add(&b, "N", 1);
			p += n;
		} else {
			size_t k = n ? n : 1;

			fleet_buf_add(&b, p, k);
			p += k;
		}
	}
	if (fleet_buf_truncated(&b)) { /* cannot happen (see the cap): the reason as it is */
		fleet_buf_release(&b);
		return xstrdup(reason);
	}
	out = fleet_buf_detach(&b, NULL);
	return out ? out : xstrdup("");
}

static int load_msg_cb(const struct state_failed_msg *m, void *ctx)
{
	struct report *r = ctx;
	struct report_msg *x;

	x = xpush(&r->msgs, &r->nmsgs, &r->msgs_alloc);
	x->m = *m; /* its strings live in the result, which is gone after the walk: copied */
	if (!x->m.error[0])
		x->m.error = "no reason recorded";
	x->strings = strings_own((const char **const[]){&x->m.error, &x->m.src_folder}, 2);
	x->group = reason_group(x->m.error);
	return 0;
}

static int cmp_msg(const void *a, const void *b)
{
	const struct report_msg *x = a, *y = b;
	int c;

	if (x->m.job_id != y->m.job_id)
		return x->m.job_id < y->m.job_id ? -1 : 1;
	if (x->m.state != y->m.state)
		return x->m.state < y->m.state ? -1 : 1;
	if ((c = strcmp(x->group, y->group)) != 0)
		return c;
	if ((c = strcmp(x->m.src_folder, y->m.src_folder)) != 0)
		return c;
	if (x->m.src_uidvalidity != y->m.src_uidvalidity)
		return x->m.src_uidvalidity < y->m.src_uidvalidity ? -1 : 1;
	return x->m.src_uid < y->m.src_uid ? -1 : x->m.src_uid > y->m.src_uid;
}

/* A new cause with these texts (copied); returns its index in r->causes. */
static size_t cause_new(struct report *r, const char *cls, const char *code, const char *text)
{
	struct report_cause *c = xpush(&r->causes, &r->ncauses, &r->causes_alloc);

	c->cls = xstrdup(cls);
	c->code = xstrdup(code);
	c->text = xstrdup(text);
	return r->ncauses - 1;
}

static void cause_add_acct(struct report_cause *c, size_t ai)
{
	/* Callers add an account's entries together, so checking the last one is enough. */
	if (c->naccts && c->accts[c->naccts - 1] == ai)
		return;
	c->accts = xgrow(c->accts, sizeof(*c->accts), c->naccts + 1, &c->accts_alloc);
	c->accts[c->naccts++] = ai;
}

/* qsort has no context argument: the comparators below read the report being grouped from here
 * (single-threaded use; see report.h). */
static const struct report *group_r;

/* Accounts by (class, code, and the text when there is no code). */
static int cmp_acct_error(const void *pa, const void *pb)
{
	const struct report_acct *x = &group_r->accts[*(const size_t *)pa],
				 *y = &group_r->accts[*(const size_t *)pb];
	int c;

	if ((c = strcmp(x->j.last_error_class, y->j.last_error_class)) != 0 ||
	    (c = strcmp(x->j.last_error_code, y->j.last_error_code)) != 0)
		return c;
	if (!x->j.last_error_code[0] && (c = strcmp(x->j.last_error_text, y->j.last_error_text)) != 0)
		return c;
	return x->j.job_id < y->j.job_id ? -1 : x->j.job_id > y->j.job_id;
}

/* Messages by (state, reason), then in account order. */
static int cmp_msg_reason(const void *pa, const void *pb)
{
	size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;
	const struct report_msg *x = &group_r->msgs[ia], *y = &group_r->msgs[ib];
	int c;

	if (x->m.state != y->m.state)
		return x->m.state < y->m.state ? -1 : 1;
	if ((c = strcmp(x->group, y->group)) != 0)
		return c;
	return ia < ib ? -1 : ia > ib;
}

struct cause_rank {
	size_t old;
	const struct report_cause *c;
};

static int cmp_cause_rank(const void *pa, const void *pb)
{
	const struct report_cause *x = ((const struct cause_rank *)pa)->c,
				  *y = ((const struct cause_rank *)pb)->c;

	if (x->account_level != y->account_level)
		return x->account_level ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->text, y->text);
}

/* Groups the accounts' last errors and the messages' reasons (see struct report_cause), by sorting:
 * O(n log n) whatever the number of distinct reasons. Causes end most frequent first. */
static void build_causes(struct report *r)
{
	size_t n = 0, *idx = xcalloc(r->naccts + r->nmsgs + 1, sizeof(*idx));
	struct cause_rank *rank;
	struct report_cause *sorted;
	size_t *remap;

	group_r = r;
	for (size_t i = 0; i < r->naccts; i++)
		if (r->accts[i].j.last_error_class[0] || r->accts[i].j.last_error_text[0])
			idx[n++] = i;
	qsort(idx, n, sizeof(*idx), cmp_acct_error);
	for (size_t i = 0; i < n; i++) {
		const struct report_acct *a = &r->accts[idx[i]];
		const struct report_acct *p = i ? &r->accts[idx[i - 1]] : NULL;
		size_t c;

		if (!p || strcmp(p->j.last_error_class, a->j.last_error_class) ||
		    strcmp(p->j.last_error_code, a->j.last_error_code) ||
		    (!a->j.last_error_code[0] && strcmp(p->j.last_error_text, a->j.last_error_text))) {
			c = cause_new(r, a->j.last_error_class, a->j.last_error_code, a->j.last_error_text);
			r->causes[c].account_level = 1;
		}
		c = r->ncauses - 1;
		r->causes[c].count++;
		cause_add_acct(&r->causes[c], idx[i]);
	}
	for (size_t i = 0; i < r->nmsgs; i++)
		idx[i] = i;
	qsort(idx, r->nmsgs, sizeof(*idx), cmp_msg_reason);
	for (size_t i = 0; i < r->nmsgs; i++) {
		struct report_msg *m = &r->msgs[idx[i]];
		const struct report_msg *p = i ? &r->msgs[idx[i - 1]] : NULL;
		struct report_acct *a = find_acct(r, m->m.job_id);
		size_t c;

		if (!p || p->m.state != m->m.state || strcmp(p->group, m->group)) {
			c = cause_new(r, "", "", m->group);
			r->causes[c].mstate = m->m.state;
		}
		c = r->ncauses - 1;
		r->causes[c].count++;
		r->causes[c].bytes += (int64_t)m->m.size;
		r->causes[c].msgs = xgrow(r->causes[c].msgs, sizeof(size_t), r->causes[c].nmsgs + 1,
					  &r->causes[c].msgs_alloc);
		r->causes[c].msgs[r->causes[c].nmsgs++] = idx[i];
		if (a)
			cause_add_acct(&r->causes[c], (size_t)(a - r->accts));
		m->cause = c;
	}
	xfree(&idx);
	group_r = NULL;

	rank = xcalloc(r->ncauses + 1, sizeof(*rank));
	for (size_t c = 0; c < r->ncauses; c++) {
		rank[c].old = c;
		rank[c].c = &r->causes[c];
	}
	qsort(rank, r->ncauses, sizeof(*rank), cmp_cause_rank);
	sorted = xcalloc(r->ncauses + 1, sizeof(*sorted));
	remap = xcalloc(r->ncauses + 1, sizeof(*remap));
	for (size_t k = 0; k < r->ncauses; k++) {
		sorted[k] = r->causes[rank[k].old];
		remap[rank[k].old] = k;
	}
	for (size_t i = 0; i < r->nmsgs; i++)
		r->msgs[i].cause = remap[r->msgs[i].cause];
	xfree(&r->causes);
	r->causes = sorted;
	r->causes_alloc = r->ncauses + 1;
	xfree(&rank);
	xfree(&remap);
}

/* What is left and when it should be done: the live display's computation over the state's view
 * of the whole run (no account's live counters: nothing runs here). The rate: the ledger's bytes
 * per minute over the last REPORT_RATE_WINDOW_MS of the current pass. */
static int load_remaining(struct state_conn *sc, struct report *r, struct fleet_err *err)
{
	struct report_remaining *m = &r->remaining;
	struct progress_snapshot snap;
	struct state_run_bytes rb;
	int64_t from,
	    pass_start = r->run.npasses ? r->run.passes[r->run.npasses - 1].started_at_ms : r->first_start_ms;
	int64_t bytes = 0;

	memset(m, 0, sizeof(*m));
	m->eta_s = -1;
	if (state_report_run_bytes(sc, r->run.id, NULL, 0, &rb, err) < 0)
		return -1;
	memset(&snap, 0, sizeof(snap));
	snap.run_id = r->run.id;
	snap.running = r->run.counts.jobs[STATE_JOB_RUNNING];
	snap.queued = r->run.counts.jobs[STATE_JOB_QUEUED];
	snap.parked = r->run.counts.parked;
	snap.parked_until_ms = r->run.counts.parked_until_ms;
	snap.rest.known = 1;
	snap.rest.copied = rb.copied > 0 ? (uint64_t)rb.copied : 0;
	snap.rest.left = rb.left > 0 ? (uint64_t)rb.left : 0;
	snap.rest.seen = rb.seen;
	snap.rest.unseen = rb.unseen;
	snap.rest.estimated = rb.estimated;
	progress_bytes_of(&snap, &m->b);
	m->busy = snap.running + (snap.queued > snap.parked ? snap.queued - snap.parked : 0);
	m->live = m->busy > 0;
	/* Whole minutes from the window's first one, and not before the pass began. */
	from = (r->generated_ms - REPORT_RATE_WINDOW_MS) / 60000 * 60000;
	for (size_t i = 0; i < r->ntp; i++)
		if (r->tp[i].minute_ms >= from)
			bytes += r->tp[i].bytes;
	if (pass_start > from)
		from = pass_start;
	m->rate_window_ms = r->generated_ms - from;
	if (m->rate_window_ms >= REPORT_RATE_MIN_WINDOW_MS && bytes > 0)
		m->rate = (double)bytes / ((double)m->rate_window_ms / 1000.0);
	m->eta_s = progress_eta_of(&m->b, m->rate, m->busy);
	return 0;
}

int report_run_goes_on(const struct report *r)
{
	return r->run.counts.jobs[STATE_JOB_QUEUED] + r->run.counts.jobs[STATE_JOB_RUNNING] > 0;
}

void report_set_refresh(struct report *r, unsigned seconds)
{
	r->refresh_s = seconds;
}

int report_load(struct state_conn *sc, int64_t run_id, struct report **out, struct fleet_err *err)
{
	struct report *r = xcalloc(1, sizeof(*r));
	struct run_list l;
	int busy = 0;

	*out = NULL;
	r->run.id = run_id;
	r->generated_ms = (int64_t)fleet_wall_ms();
	if (run_list_load(sc, run_id, &l, err) < 0)
		goto fail_list;
	if (l.n != 1) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, STATE_ERR_NO_RUN,
			      "no run %lld in the state store", (long long)run_id);
		goto fail_list;
	}
	r->run = l.v[0]; /* taken: the list keeps none of it */
	l.n = 0;
	r->total = counts_total(&r->run.counts);
	run_list_release(&l);

	if (state_report_jobs(sc, run_id, load_job_cb, r, err) < 0 ||
	    state_report_job_times(sc, run_id, load_time_cb, r, err) < 0 ||
	    state_report_failed_messages(sc, run_id, STATE_MSG_MASK_FAILED | STATE_MSG_MASK_SKIPPED, 0,
					 load_msg_cb, r, err) < 0 ||
	    state_report_throughput(sc, run_id, &r->tp, &r->ntp, err) < 0)
		goto fail;
	if (r->nmsgs)
		qsort(r->msgs, r->nmsgs, sizeof(*r->msgs), cmp_msg);
	for (size_t i = 0; i < r->nmsgs; i++) {
		struct report_acct *a = find_acct(r, r->msgs[i].m.job_id);

		if (!a)
			continue;
		if (a->msg_count == 0)
			a->msg_first = i;
		a->msg_count++;
		if (r->msgs[i].m.state == STATE_MSG_SKIPPED)
			a->bytes_skipped += (int64_t)r->msgs[i].m.size;
		else
			a->bytes_failed += (int64_t)r->msgs[i].m.size;
	}
	for (size_t i = 0; i < r->naccts; i++) {
		const struct report_acct *a = &r->accts[i];

		r->bytes_skipped += a->bytes_skipped;
		r->bytes_failed += a->bytes_failed;
		r->busy_ms += a->busy_ms;
		if (a->j.started_at_ms > 0 &&
		    (r->first_start_ms == 0 || a->j.started_at_ms < r->first_start_ms))
			r->first_start_ms = a->j.started_at_ms;
		if (a->j.finished_at_ms > r->last_finish_ms)
			r->last_finish_ms = a->j.finished_at_ms;
		if (a->j.updated_at_ms > r->last_update_ms)
			r->last_update_ms = a->j.updated_at_ms;
		if (a->j.state == STATE_JOB_QUEUED || a->j.state == STATE_JOB_RUNNING)
			busy = 1;
	}
	if (busy)
		r->last_finish_ms = 0; /* not finished: elapsed time runs until now */
	if (load_remaining(sc, r, err) < 0)
		goto fail;
	build_causes(r);
	*out = r;
	return 0;
fail_list:
	run_list_release(&l);
fail:
	report_free(&r);
	return -1;
}

void report_set_title(struct report *r, const char *title)
{
	xfree(&r->title);
	if (title && *title)
		r->title = xstrdup(title);
}

void report_free(struct report **rp)
{
	struct report *r = *rp;

	if (!r)
		return;
	xfree(&r->title);
	for (size_t i = 0; i < r->naccts; i++)
		xfree(&r->accts[i].strings);
	for (size_t i = 0; i < r->nmsgs; i++) {
		xfree(&r->msgs[i].strings);
		xfree(&r->msgs[i].group);
	}
	for (size_t i = 0; i < r->ncauses; i++) {
		xfree(&r->causes[i].cls);
		xfree(&r->causes[i].code);
		xfree(&r->causes[i].text);
		xfree(&r->causes[i].accts);
		xfree(&r->causes[i].msgs);
	}
	xfree(&r->accts);
	xfree(&r->msgs);
	xfree(&r->causes);
	xfree(&r->tp);
	run_info_release(&r->run);
	xfree(rp);
}

/* Elapsed wall time of the run: first start to last finish, or to now while it goes on. */
int64_t run_elapsed_ms(const struct report *r)
{
	int64_t end = r->last_finish_ms ? r->last_finish_ms : r->generated_ms;

	return r->first_start_ms > 0 && end > r->first_start_ms ? end - r->first_start_ms : 0;
}

int64_t acct_duration_ms(const struct report_acct *a)
{
	return a->busy_ms;
}

void report_print_summary(const struct report *r, FILE *out)
{
	char b1[TBUF], b2[TBUF];

	fprintf(out,
		"run %lld: %ld accounts: %ld done, %ld partial, %ld failed, %ld running, %ld queued, %ld "
		"cancelled; "
		"%lld messages copied (%s), %lld skipped, %lld failed; elapsed %s\n",
		(long long)r->run.id, r->total, r->run.counts.jobs[STATE_JOB_DONE],
		r->run.counts.jobs[STATE_JOB_PARTIAL], r->run.counts.jobs[STATE_JOB_FAILED],
		r->run.counts.jobs[STATE_JOB_RUNNING], r->run.counts.jobs[STATE_JOB_QUEUED],
		r->run.counts.jobs[STATE_JOB_CANCELLED], (long long)r->run.counts.msgs_copied,
		fmt_bytes(b1, r->run.counts.bytes_copied), (long long)r->run.counts.msgs_skipped,
		(long long)r->run.counts.msgs_failed, fmt_duration(b2, run_elapsed_ms(r)));
	if (r->run.counts.msgs_uncertain)
		fprintf(out,
			"identity not certain: %lld of the copied messages may be on the destination twice\n",
			(long long)r->run.counts.msgs_uncertain);
}

const char *progress_label(const struct report *r)
{
	return run_progress(r->run.state, &r->run.counts);
}

const char *progress_css(const struct report *r)
{
	const char *l = progress_label(r);

	return !strcmp(l, "in progress")	      ? "s-running"
	       : !strcmp(l, "finished")		      ? "s-done"
	       : !strcmp(l, "finished with failures") ? "s-failed"
						      : "s-queued";
}

/* ---- files -------------------------------------------------------------------------------------- */

typedef int (*report_writer)(const struct report *r, FILE *out, struct fleet_err *err);

/* One report file, written whole or not at all, 0600 (it holds personal data). */
static int write_one(const struct report *r, const char *dir, const char *name, report_writer fn,
		     void (*written)(const char *path, void *ctx), void *ctx, struct fleet_err *err)
{
	char *path = xasprintf("%s/%s", dir, name);
	struct fleet_file_atomic a;
	int rc = -1;

	if (fleet_file_atomic_open(&a, path, err) < 0)
		goto out;
	errno = 0;
	if (fn(r, a.f, err) < 0) {
		fleet_file_atomic_abort(&a);
		fleet_err_prefix(err, "%s", path);
		goto out;
	}
	if (fleet_file_atomic_commit(&a, err) < 0)
		goto out;
	if (written)
		written(path, ctx);
	rc = 0;
out:
	if (rc < 0)
		snprintf(err->code, sizeof(err->code), "%s", REPORT_ERR_IO);
	xfree(&path);
	return rc;
}

int report_write_dir(const struct report *r, const char *dir, unsigned formats,
		     void (*written)(const char *path, void *ctx), void *ctx, struct fleet_err *err)
{
	if (fleet_file_mkdirs(dir, FLEET_DIR_MODE_PRIVATE) < 0)
		return fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, REPORT_ERR_IO,
				     "could not create the report directory %s: %s", dir, strerror(errno));
	if ((formats & REPORT_CSV) &&
	    (write_one(r, dir, "accounts.csv", report_write_accounts_csv, written, ctx, err) < 0 ||
	     write_one(r, dir, "failures.csv", report_write_failures_csv, written, ctx, err) < 0 ||
	     write_one(r, dir, "passes.csv", report_write_passes_csv, written, ctx, err) < 0))
		return -1;
	if ((formats & REPORT_JSON) &&
	    write_one(r, dir, "accounts.json", report_write_json, written, ctx, err) < 0)
		return -1;
	if ((formats & REPORT_HTML) &&
	    write_one(r, dir, "report.html", report_write_html, written, ctx, err) < 0)
		return -1;
	return 0;
}

int report_formats_parse(const char *s, unsigned *formats)
{
	const char *p = s;

	*formats = 0;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 3 && !strncmp(p, "csv", 3))
			*formats |= REPORT_CSV;
		else if (n == 4 && !strncmp(p, "json", 4))
			*formats |= REPORT_JSON;
		else if (n == 4 && !strncmp(p, "html", 4))
			*formats |= REPORT_HTML;
		else if (n == 3 && !strncmp(p, "all", 3))
			*formats |= REPORT_ALL;
		else
			return -1;
		p += n;
		if (*p == ',')
			p++;
	}
	return *formats ? 0 : -1;
}

json_t *jv_job_error(const struct state_job_report *j)
{
	if (!j->last_error_class[0] && !j->last_error_text[0])
		return json_null();
	return json_pack("{s:o, s:o, s:o}", "class", jv_opt(j->last_error_class), "code",
			 jv_opt(j->last_error_code), "text", jv_str(j->last_error_text));
}

json_t *jv_job_pass(const struct state_job_report *j)
{
	if (!j->pass_number)
		return json_null();
	return json_pack("{s:i, s:I, s:I, s:I, s:I}", "number", j->pass_number, "copied",
			 (json_int_t)j->pass_copied, "already_there", (json_int_t)j->pass_matched, "skipped",
			 (json_int_t)j->pass_skipped, "failed", (json_int_t)j->pass_failed);
}

json_t *jv_job_verify(const struct state_job_report *j)
{
	if (!j->verdict || !j->verdict[0])
		return json_null();
	return json_pack("{s:o, s:o, s:I, s:I}", "verdict", jv_str(j->verdict), "verified_at",
			 jv_time(j->verified_at_ms), "on_source", (json_int_t)j->on_source, "on_destination",
			 (json_int_t)j->on_destination);
}

json_t *jv_passes(const struct state_pass_report *p, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_pack("{s:i, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "number",
				 p[i].number, "kind", p[i].kind, "started_at", jv_time(p[i].started_at_ms), "ended_at",
				 jv_time(p[i].ended_at_ms), "accounts", (json_int_t)p[i].accounts, "done",
				 (json_int_t)p[i].done, "partial", (json_int_t)p[i].partial, "failed_accounts",
				 (json_int_t)p[i].failed, "copied", (json_int_t)p[i].copied, "already_there",
				 (json_int_t)p[i].matched, "skipped", (json_int_t)p[i].skipped, "failed",
				 (json_int_t)p[i].msgs_failed, "bytes_copied", (json_int_t)p[i].bytes_copied);

		json_object_set_new(o, "uncertain", json_integer(p[i].uncertain));
		json_array_append_new(a, o);
	}
	return a;
}

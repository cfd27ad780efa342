/* scheduler/progress.c: the live progress display (see progress.h). */
#include "scheduler/progress.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/escape.h"

struct progress {
	int have_sample;
	uint64_t base_ms, base_bytes; /* where the rate is measured from */
	uint64_t last_ms, last_bytes;
	double rate;	  /* bytes per second, smoothed */
	double elapsed_s; /* since base_ms */
};

struct progress *progress_new(void)
{
	return xcalloc(1, sizeof(struct progress));
}

void progress_free(struct progress **p)
{
	xfree(p);
}

/* Queued and not parked. */
static long queued_now(const struct progress_snapshot *snap)
{
	return snap->queued > snap->parked ? snap->queued - snap->parked : 0;
}

void progress_bytes_of(const struct progress_snapshot *snap, struct progress_bytes *out)
{
	uint64_t left = 0;
	unsigned seen = snap->finished_here + (unsigned)snap->nacct;
	long unseen = queued_now(snap);
	int listing = 0;

	memset(out, 0, sizeof(*out));
	out->copied = snap->bytes_copied;
	for (size_t i = 0; i < snap->nacct; i++) {
		const struct progress_account *a = &snap->acct[i];
		uint64_t want = a->bytes_todo + a->bytes_unlisted;

		left += want > a->bytes_copied ? want - a->bytes_copied : 0;
		listing |= a->listing;
	}
	if (snap->rest.known) {
		/* The whole run: the ledger's bytes, and what the accounts elsewhere have left. */
		out->copied = snap->rest.copied;
		left += snap->rest.left;
		listing |= snap->rest.estimated;
		seen = (unsigned)snap->rest.seen + (unsigned)snap->nacct;
		unseen = snap->rest.unseen;
	}
	out->total = out->copied + left;
	out->known = 1;
	out->estimated = listing;
	if (unseen > 0) {
		if (seen == 0) {
			out->known = 0; /* nothing measured yet: no total to speak of */
			return;
		}
		/* The accounts still queued are taken to be like those seen so far. */
		out->total += (uint64_t)((double)out->total / seen * (double)unseen);
		out->estimated = 1;
	}
}

void progress_update(struct progress *p, const struct progress_snapshot *snap, uint64_t now_ms)
{
	struct progress_bytes b;
	double dt, inst;
	uint64_t copied;

	progress_bytes_of(snap, &b);
	copied = b.copied;
	if (!p->have_sample) {
		p->have_sample = 1;
		/* This host's bytes count from the process's start; the run's from this first look. */
		p->base_ms = snap->rest.known || now_ms < snap->elapsed_ms ? now_ms : now_ms - snap->elapsed_ms;
		p->base_bytes = snap->rest.known ? copied : 0;
		p->last_ms = now_ms;
		p->last_bytes = copied;
		p->elapsed_s = (double)(now_ms - p->base_ms) / 1000.0;
		p->rate = p->elapsed_s > 0 ? (double)(copied - p->base_bytes) / p->elapsed_s : 0;
		return;
	}
	if (now_ms <= p->last_ms)
		return;
	dt = (double)(now_ms - p->last_ms) / 1000.0;
	inst = copied >= p->last_bytes ? (double)(copied - p->last_bytes) / dt : 0;
	p->elapsed_s = (double)(now_ms - p->base_ms) / 1000.0;
	if (p->elapsed_s < PROGRESS_RATE_TAU_S && p->elapsed_s > 0)
		p->rate = copied > p->base_bytes ? (double)(copied - p->base_bytes) / p->elapsed_s
						 : 0; /* the start: the mean so far */
	else
		p->rate += dt / (PROGRESS_RATE_TAU_S + dt) * (inst - p->rate); /* EWMA for uneven steps */
	p->last_ms = now_ms;
	p->last_bytes = copied;
}

double progress_rate(const struct progress *p)
{
	return p->rate > 0 ? p->rate : 0;
}

double progress_eta_of(const struct progress_bytes *b, double rate, long busy)
{
	if (!b->known)
		return -1;
	if (b->total <= b->copied)
		return busy > 0 ? -1 : 0;
	if (rate <= 0)
		return -1;
	return (double)(b->total - b->copied) / rate;
}

double progress_eta(const struct progress *p, const struct progress_snapshot *snap)
{
	struct progress_bytes b;

	progress_bytes_of(snap, &b);
	return progress_eta_of(&b, p->elapsed_s < 2 ? 0 : p->rate, queued_now(snap) + snap->running);
}

/* ---- text ---------------------------------------------------------------------------------------- */

static unsigned cp_width(uint32_t c)
{
	if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x200B && c <= 0x200F) || (c >= 0xFE00 && c <= 0xFE0F))
		return 0;
	if ((c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) || (c >= 0xAC00 && c <= 0xD7A3) ||
	    (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
	    (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
	    (c >= 0x1F900 && c <= 0x1F9FF) || (c >= 0x20000 && c <= 0x3FFFD))
		return 2;
	return 1;
}

/* Decodes the character at s (n bytes valid); *len its length (1 for an invalid byte). */
static uint32_t decode(const char *s, size_t n, size_t *len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t k = fleet_utf8_seq(s, n);
	uint32_t c;

	if (k <= 1) {
		*len = 1;
		return u[0];
	}
	*len = k;
	c = u[0] & (0x7F >> k);
	for (size_t i = 1; i < k; i++)
		c = (c << 6) | (u[i] & 0x3F);
	return c;
}

size_t progress_text_width(const char *s, size_t len)
{
	size_t w = 0, k;

	for (size_t i = 0; i < len; i += k)
		w += cp_width(decode(s + i, len - i, &k));
	return w;
}

/* Bytes of s that fit in cols columns. */
static size_t cut_to_width(const char *s, size_t len, size_t cols)
{
	size_t w = 0, k, i;

	for (i = 0; i < len; i += k) {
		unsigned cw = cp_width(decode(s + i, len - i, &k));

		if (w + cw > cols)
			break;
		w += cw;
	}
	return i;
}

static void human_pair(char *out, size_t cap, uint64_t a, uint64_t b, int approx)
{
	static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
	double div = 1;
	unsigned u = 0;

	while (u < 4 && (double)b / div >= 1024.0 * 0.995) {
		div *= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, cap, "%llu/%s%llu B", (unsigned long long)a, approx ? "~" : "",
			 (unsigned long long)b);
	else
		snprintf(out, cap, "%.1f/%s%.1f %s", (double)a / div, approx ? "~" : "", (double)b / div,
			 units[u]);
}

static void human_rate(char *out, size_t cap, double bps)
{
	if (bps >= 1048576.0 * 0.995)
		snprintf(out, cap, "%.1f MB/s", bps / 1048576.0);
	else
		snprintf(out, cap, "%.0f KB/s", bps / 1024.0);
}

static void human_eta(char *out, size_t cap, double secs)
{
	long s = (long)(secs + 0.5);

	if (secs < 0 || secs > 99 * 3600.0)
		snprintf(out, cap, "ETA --:--");
	else if (s >= 3600)
		snprintf(out, cap, "ETA %ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
	else
		snprintf(out, cap, "ETA %ld:%02ld", s / 60, s % 60);
}

/* The pieces of the first line, shared by the block and the plain line. */
struct head {
	char run[32], pct[16], bytes[64], rate[32], eta[32];
	double frac; /* 0..1, < 0 when unknown */
};

static void head_of(const struct progress *p, const struct progress_snapshot *snap, struct head *h)
{
	struct progress_bytes b;

	progress_bytes_of(snap, &b);
	snprintf(h->run, sizeof(h->run), "run %lld", (long long)snap->run_id);
	h->frac = -1;
	if (b.known && b.total > 0)
		h->frac = (double)b.copied / (double)b.total;
	else if (b.known && queued_now(snap) + snap->running == 0)
		h->frac = 1;
	if (h->frac > 1)
		h->frac = 1;
	if (h->frac >= 0)
		snprintf(h->pct, sizeof(h->pct), "%s%d%%", b.estimated ? "~" : "", (int)(h->frac * 100.0));
	else
		snprintf(h->pct, sizeof(h->pct), "--%%");
	if (b.known)
		human_pair(h->bytes, sizeof(h->bytes), b.copied, b.total, b.estimated);
	else
		snprintf(h->bytes, sizeof(h->bytes), "%.1f MB", (double)b.copied / 1048576.0);
	human_rate(h->rate, sizeof(h->rate), progress_rate(p));
	human_eta(h->eta, sizeof(h->eta), progress_eta(p, snap));
}

/* "accounts 14/40 finished: 12 done, 1 partial, 1 failed; 8 running (8 here), 18 queued" in the
 * longest form that fits cols (level 0 full, 1 shorter, 2 shortest). */
static void accounts_text(const struct progress_snapshot *snap, int level, struct fleet_buf *out)
{
	long finished = snap->done + snap->partial + snap->failed + snap->cancelled;
	long total = finished + snap->running + snap->queued;

	if (level <= 1) {
		fleet_buf_addf(out, "accounts %ld/%ld%s: %ld done, ", finished, total,
				  level ? "" : " finished", snap->done);
		if (snap->partial)
			fleet_buf_addf(out, "%ld partial, ", snap->partial);
		fleet_buf_addf(out, "%ld failed", snap->failed);
		if (snap->cancelled)
			fleet_buf_addf(out, ", %ld cancelled", snap->cancelled);
		if (level == 0)
			fleet_buf_addf(out, "; %ld running (%u here), %ld queued", snap->running,
					  snap->running_here, queued_now(snap));
		else
			fleet_buf_addf(out, ", %ld running, %ld queued", snap->running, queued_now(snap));
		if (snap->parked > 0) {
			fleet_buf_addf(out, ", %ld parked", snap->parked);
			if (level == 0 && snap->parked_until_ms > 0) {
				time_t t = (time_t)(snap->parked_until_ms / 1000);
				struct tm tm;
				char when[32];

				gmtime_r(&t, &tm);
				strftime(when, sizeof(when), "%m-%d %H:%M", &tm);
				fleet_buf_addf(out, " (the last resumes %s UTC)", when);
			}
		}
	} else {
		fleet_buf_addf(out, "%ld/%ld ok %ld", finished, total, snap->done);
		if (snap->partial)
			fleet_buf_addf(out, " part %ld", snap->partial);
		fleet_buf_addf(out, " fail %ld run %ld q %ld", snap->failed, snap->running, queued_now(snap));
		if (snap->parked > 0)
			fleet_buf_addf(out, " park %ld", snap->parked);
	}
}

/* Appends line (len bytes) cut to cols columns, then '\n' unless last. */
static void put_line(struct fleet_buf *out, const char *line, size_t len, size_t cols)
{
	if (out->len)
		fleet_buf_add(out, "\n", 1);
	fleet_buf_add(out, line, cut_to_width(line, len, cols));
}

static size_t w_of(const char *s)
{
	return progress_text_width(s, strlen(s));
}

static void head_line(const struct head *h, size_t cols, struct fleet_buf *line)
{
	/* What goes, in the order it is given up when the terminal is narrow. */
	int with_rate = 1, with_run = 1;

	for (;;) {
		size_t fixed = (with_run ? w_of(h->run) + 2 : 0) + w_of(h->pct) + 1 + w_of(h->bytes) +
			       (with_rate ? 2 + w_of(h->rate) : 0) + 2 + w_of(h->eta);
		size_t barw = 0;

		if (fixed + 1 + PROGRESS_BAR_MIN <= cols)
			barw = cols - fixed - 1 > PROGRESS_BAR_MAX ? PROGRESS_BAR_MAX : cols - fixed - 1;
		if (fixed > cols && with_rate) {
			with_rate = 0;
			continue;
		}
		if (fixed > cols && with_run) {
			with_run = 0;
			continue;
		}
		fleet_buf_reset(line);
		if (with_run)
			fleet_buf_addf(line, "%s  ", h->run);
		fleet_buf_addf(line, "%s ", h->pct);
		if (barw) {
			size_t inner = barw - 2, fill = h->frac > 0 ? (size_t)(h->frac * (double)inner) : 0;

			fleet_buf_add(line, "[", 1);
			for (size_t i = 0; i < inner; i++)
				fleet_buf_add(line,
						 i < fill				   ? "="
						 : (i == fill && fill < inner && fill > 0) ? ">"
											   : " ",
						 1);
			fleet_buf_add(line, "] ", 2);
		}
		fleet_buf_addf(line, "%s", h->bytes);
		if (with_rate)
			fleet_buf_addf(line, "  %s", h->rate);
		fleet_buf_addf(line, "  %s", h->eta);
		return;
	}
}

static void account_line(const struct progress_account *a, size_t cols, struct fleet_buf *line)
{
	char folders[48], msgs[64], bytes[64];
	int parts = 3;

	snprintf(folders, sizeof(folders), "folder %u/%u", a->folders_done, a->folders_total);
	snprintf(msgs, sizeof(msgs), "%llu/%s%llu msgs", (unsigned long long)a->msgs_copied,
		 a->listing ? "~" : "", (unsigned long long)a->msgs_todo);
	human_pair(bytes, sizeof(bytes), a->bytes_copied, a->bytes_todo + a->bytes_unlisted, a->listing);
	for (;; parts--) {
		size_t right =
		    w_of(bytes) + (parts >= 2 ? 2 + w_of(msgs) : 0) + (parts >= 3 ? 2 + w_of(folders) : 0);
		size_t lw = w_of(a->label);

		if (parts > 1 && 2 + 8 + 2 + right > cols)
			continue;
		fleet_buf_reset(line);
		fleet_buf_add(line, "  ", 2);
		if (2 + lw + 2 + right > cols) {
			/* The label gives way, keeping its start (the user name). */
			size_t keep = cols > 2 + 2 + right + 2 ? cols - 2 - 2 - right - 2 : 0;

			fleet_buf_add(line, a->label, cut_to_width(a->label, strlen(a->label), keep));
			fleet_buf_add(line, "..", 2);
			lw = keep + 2;
		} else {
			fleet_buf_add(line, a->label, strlen(a->label));
		}
		/* Counters aligned on the right edge of the label column. */
		for (size_t k = lw; k + 2 + right < cols && k < 28; k++)
			fleet_buf_add(line, " ", 1);
		fleet_buf_add(line, "  ", 2);
		if (parts >= 3)
			fleet_buf_addf(line, "%s  ", folders);
		if (parts >= 2)
			fleet_buf_addf(line, "%s  ", msgs);
		fleet_buf_addf(line, "%s", bytes);
		return;
	}
}

void progress_render_block(const struct progress *p, const struct progress_snapshot *snap, unsigned cols,
			   unsigned rows, struct fleet_buf *out)
{
	struct fleet_buf line = FLEET_BUF_INIT(PROGRESS_LINE_MAX);
	struct head h;
	size_t width = cols > 1 ? cols - 1 : 1; /* never the last column: no line may wrap */
	size_t max_lines = rows > 1 ? rows - 1 : 1, nshow;

	fleet_buf_reset(out);
	head_of(p, snap, &h);
	head_line(&h, width, &line);
	put_line(out, fleet_buf_cstr(&line), line.len, width);
	if (max_lines >= 2) {
		for (int level = 0; level < 3; level++) {
			fleet_buf_reset(&line);
			accounts_text(snap, level, &line);
			if (progress_text_width(fleet_buf_cstr(&line), line.len) <= width)
				break;
		}
		put_line(out, fleet_buf_cstr(&line), line.len, width);
	}
	nshow = snap->nacct;
	if (nshow > PROGRESS_ACCOUNT_LINES)
		nshow = PROGRESS_ACCOUNT_LINES;
	if (nshow > (max_lines > 2 ? max_lines - 2 : 0))
		nshow = max_lines > 2 ? max_lines - 2 : 0;
	if (nshow < snap->nacct && nshow > 0)
		nshow--; /* room for "... N more" */
	for (size_t i = 0; i < nshow; i++) {
		account_line(&snap->acct[i], width, &line);
		put_line(out, fleet_buf_cstr(&line), line.len, width);
	}
	if (nshow < snap->nacct && max_lines > 2) {
		fleet_buf_reset(&line);
		fleet_buf_addf(&line, "  ... %zu more running here", snap->nacct - nshow);
		put_line(out, fleet_buf_cstr(&line), line.len, width);
	}
	fleet_buf_release(&line);
	(void)fleet_buf_mark_cut(out);
}

void progress_render_line(const struct progress *p, const struct progress_snapshot *snap,
			  struct fleet_buf *out)
{
	struct head h;

	fleet_buf_reset(out);
	head_of(p, snap, &h);
	fleet_buf_addf(out, "progress: %s: %s %s, %s, %s; ", h.run, h.pct, h.bytes, h.rate, h.eta);
	accounts_text(snap, 0, out);
	(void)fleet_buf_mark_cut(out);
}

/* ---- the terminal ---------------------------------------------------------------------------------- */

void progress_term_size(int fd, unsigned *cols, unsigned *rows)
{
	struct winsize ws;

	*cols = 80;
	*rows = 24;
	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		*cols = ws.ws_col;
		if (ws.ws_row > 0)
			*rows = ws.ws_row;
	}
}

static atomic_int g_resized;

static void on_winch(int sig)
{
	(void)sig;
	atomic_store(&g_resized, 1);
}

void progress_watch_resize(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_winch;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGWINCH, &sa, NULL);
}

int progress_resized(void)
{
	return atomic_exchange(&g_resized, 0);
}

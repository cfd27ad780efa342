/* scheduler/health.c: which servers answer (see health.h). */
#include "scheduler/health.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/util.h"
#include "io/imap.h"
#include "scheduler/registry.h"

struct health_entry {
	char *key; /* first: the registry's key */
	char *host, *cafile, *verify_host, *label;
	struct io_endpoint ep; /* strings point into the entry */
	enum health_state state;
	uint64_t down_since_ms, down_since_wall_ms;
	uint64_t next_probe_ms;
	unsigned probe_delay_ms;
	int probing; /* a thread is probing it now */
	char why[FLEET_ERR_TEXT_MAX];
	char reason[FLEET_ERR_TEXT_MAX]; /* when given up */
};

struct server_health {
	struct registry reg; /* first (registry_owner_new); of struct health_entry; a server never failed
			      * has none (up) */
	uint64_t down_limit_ms;
};
_Static_assert(offsetof(struct server_health, reg) == 0, "the registry is the first member");

struct server_health *server_health_new(uint64_t down_limit_ms)
{
	struct server_health *h = registry_owner_new(sizeof(*h), sizeof(struct health_entry));

	h->down_limit_ms = down_limit_ms;
	return h;
}

static void entry_release(void *rec)
{
	struct health_entry *e = rec;

	xfree(&e->host);
	xfree(&e->cafile);
	xfree(&e->verify_host);
	xfree(&e->label);
}

void server_health_free(struct server_health **ph)
{
	registry_owner_free(ph, entry_release);
}

enum health_state server_health_state(struct server_health *h, const char *key)
{
	struct health_entry *e;
	enum health_state st;

	registry_lock(&h->reg);
	e = registry_find(&h->reg, key);
	st = e ? e->state : HEALTH_UP;
	registry_unlock(&h->reg);
	return st;
}

int server_health_probe(const struct io_endpoint *ep, struct fleet_err *err)
{
	struct imap_options o;
	struct imap_conn *c = NULL;

	memset(&o, 0, sizeof(o));
	o.ep = *ep;
	o.ep.connect_timeout_ms = HEALTH_PROBE_TIMEOUT_MS;
	o.ep.io_timeout_ms = HEALTH_PROBE_TIMEOUT_MS;
	o.label = ep->label;
	o.no_id = 1;
	if (imap_conn_open(&o, &c, err) < 0)
		return -1;
	imap_conn_close(&c);
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int server_health_mark_down(struct server_health *h, const char *key, const struct io_endpoint *ep,
			    const struct fleet_err *why)
{
	struct health_entry *e;
	int changed = 0;

	registry_lock(&h->reg);
	e = registry_find(&h->reg, key);
	if (!e && !ep) {
		registry_unlock(&h->reg);
		return 0;
	}
	if (!e) {
		e = registry_add(&h->reg, key);
		e->host = xstrdup(ep->host);
		e->cafile = dup_or_null(ep->cafile);
		e->verify_host = dup_or_null(ep->verify_host);
		e->label = dup_or_null(ep->label);
		e->ep = *ep;
		e->ep.host = e->host;
		e->ep.cafile = e->cafile;
		e->ep.verify_host = e->verify_host;
		e->ep.label = e->label;
	}
	if (e->state == HEALTH_UP) {
		uint64_t now = fleet_now_ms();

		e->state = HEALTH_DOWN;
		e->down_since_ms = now;
		e->down_since_wall_ms = fleet_wall_ms();
		e->probe_delay_ms = HEALTH_PROBE_FIRST_MS;
		e->next_probe_ms = now + e->probe_delay_ms;
		changed = 1;
	}
	if (why)
		snprintf(e->why, sizeof(e->why), "%s", why->message);
	registry_unlock(&h->reg);
	return changed;
}

static void format_utc(uint64_t wall_ms, char *out, size_t cap)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

int server_health_run_probes(struct server_health *h, health_event_cb cb, void *ctx)
{
	int down = 0;

	for (size_t i = 0;; i++) {
		struct health_entry *e;
		struct io_endpoint ep;
		struct fleet_err perr;
		struct health_report r;
		char key[300], host[256], why[FLEET_ERR_TEXT_MAX], since[40];
		uint64_t now = fleet_now_ms();
		int ok;

		registry_lock(&h->reg);
		if (i >= h->reg.n) {
			registry_unlock(&h->reg);
			break;
		}
		e = registry_at(&h->reg, i);
		if (e->state != HEALTH_DOWN || e->probing || now < e->next_probe_ms) {
			down += e->state == HEALTH_DOWN;
			registry_unlock(&h->reg);
			continue;
		}
		e->probing = 1;
		ep = e->ep; /* its strings stay valid: entries are freed only with the table */
		registry_unlock(&h->reg);

		ok = server_health_probe(&ep, &perr) == 0;

		registry_lock(&h->reg);
		e = registry_at(&h->reg, i); /* the table may have grown (moved) meanwhile */
		e->probing = 0;
		now = fleet_now_ms();
		memset(&r, 0, sizeof(r));
		snprintf(key, sizeof(key), "%s", e->key);
		snprintf(host, sizeof(host), "%s", e->host);
		r.key = key;
		r.host = host;
		r.port = e->ep.port;
		r.down_ms = now - e->down_since_ms;
		r.down_since_wall_ms = e->down_since_wall_ms;
		if (ok) {
			e->state = HEALTH_UP;
			snprintf(why, sizeof(why), "%s", e->why);
		} else {
			snprintf(e->why, sizeof(e->why), "%s", perr.message);
			snprintf(why, sizeof(why), "%s", e->why);
			if (h->down_limit_ms && now - e->down_since_ms >= h->down_limit_ms) {
				e->state = HEALTH_GAVE_UP;
				format_utc(e->down_since_wall_ms, since, sizeof(since));
				snprintf(e->reason, sizeof(e->reason),
					 "server %s refused or dropped every connection for %llu s (down since %s; "
					 "last: %s)",
					 e->key, (unsigned long long)(r.down_ms / 1000), since, e->why);
			} else {
				e->probe_delay_ms = e->probe_delay_ms * 2 > HEALTH_PROBE_CAP_MS ? HEALTH_PROBE_CAP_MS
												  : e->probe_delay_ms * 2;
				e->next_probe_ms = now + e->probe_delay_ms;
				down++;
			}
		}
		r.why = why;
		ok = ok ? 1 : e->state == HEALTH_GAVE_UP ? 2 : 0;
		registry_unlock(&h->reg);
		if (ok == 1)
			cb(ctx, HEALTH_EVENT_UP, &r);
		else if (ok == 2)
			cb(ctx, HEALTH_EVENT_GAVE_UP, &r);
	}
	return down;
}

int server_health_reason(struct server_health *h, const char *key, struct fleet_err *err)
{
	struct health_entry *e;
	int rc = -1;

	registry_lock(&h->reg);
	e = registry_find(&h->reg, key);
	if (e && e->state == HEALTH_GAVE_UP) {
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, HEALTH_ERR_SERVER_DOWN, "%s", e->reason);
		fleet_err_detail(err, "run `imapfleet retry --failed` once the server answers again");
		rc = 0;
	}
	registry_unlock(&h->reg);
	return rc;
}

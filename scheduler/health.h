/* scheduler/health.h: which servers answer (design section 8: a server's outage is not the
 * accounts' fault).
 *
 * A server is a host:port, on either side. It is up until an account attempt fails at the
 * connection level on it (refused, reset, closed, timed out: a transient error on that side) AND
 * a probe right after (a fresh connection up to the greeting, STARTTLS and capabilities, no login)
 * fails too: then it is down. While it is down the scheduler spends no account attempt on it
 * (its accounts are parked in the state store), and probes it with backoff (1 s, doubling up to
 * HEALTH_PROBE_CAP_MS). The first probe that succeeds brings it up again and its accounts resume;
 * a server still down after the down limit is given up: its accounts fail with one server-level
 * reason.
 *
 * Threads: every function is thread-safe (one mutex). Probes run in the caller's thread without
 * the mutex held.
 */
#ifndef IMAPFLEET_SCHEDULER_HEALTH_H
#define IMAPFLEET_SCHEDULER_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "io/stream.h"

/* err->code values this module raises (compare with these names, never with the text). */
/* the server is known to be down: the account waits */
#define HEALTH_ERR_SERVER_DOWN "SERVER_DOWN"

#define HEALTH_PROBE_FIRST_MS 1000u
#define HEALTH_PROBE_CAP_MS 10000u
/* Connect and greeting deadline of one probe. */
#define HEALTH_PROBE_TIMEOUT_MS 5000u

enum health_state { HEALTH_UP = 0, HEALTH_DOWN, HEALTH_GAVE_UP };

struct server_health;

/* down_limit_ms: how long a server may stay down before its accounts fail (0 = never). */
struct server_health *server_health_new(uint64_t down_limit_ms);
void server_health_free(struct server_health **h);

enum health_state server_health_state(struct server_health *h, const char *key);

/* One probe of ep (connect, TLS as ep says, greeting, capabilities; no login). 0 when the server
 * answered, < 0 with err otherwise. Blocks up to about HEALTH_PROBE_TIMEOUT_MS. */
int server_health_probe(const struct io_endpoint *ep, struct fleet_err *err);

/* Marks key down (ep is copied: later probes use it; NULL for a server already known; why, the
 * failure that showed it, may be NULL). Returns 1
 * when the server was up until this call (the caller logs it, once, and parks its accounts), 0
 * when it was already down or given up. */
int server_health_mark_down(struct server_health *h, const char *key, const struct io_endpoint *ep,
			    const struct fleet_err *why);

/* What server_health_run_probes reports. */
enum health_event { HEALTH_EVENT_UP = 0, HEALTH_EVENT_GAVE_UP };
struct health_report {
	const char *key;  /* "host:port" */
	const char *host; /* host and port, for the state store */
	unsigned port;
	uint64_t down_ms; /* how long it was down */
	uint64_t down_since_wall_ms;
	const char *why;  /* the last failure (probe or attempt) */
};
typedef void (*health_event_cb)(void *ctx, enum health_event ev, const struct health_report *r);

/* Probes every down server whose probe is due (in this thread), calls cb for each that answers
 * again (now up) or that passed the down limit (now given up). Returns the number of servers still
 * down. */
int server_health_run_probes(struct server_health *h, health_event_cb cb, void *ctx);

/* The server-level reason of a given-up server, for the accounts that reach it later: fills err
 * (class permanent, scope run, code SERVER_DOWN). Returns 0, or -1 when key is not given up. */
int server_health_reason(struct server_health *h, const char *key, struct fleet_err *err);

#endif

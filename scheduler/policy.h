/* scheduler/policy.h: what to do after an account attempt failed, and how many connections each
 * server asks for (design section 8).
 *
 * The retry decision reads the error's class and scope only, never its text:
 *   transient  retry with exponential backoff and full jitter, capped, a bounded number of times
 *   throttled  retry no sooner than the server's hint, and tell the limiter (AIMD)
 *   auth       never retried blindly: the account fails with the reason
 *   permanent  fails the account (a message-scope failure never reaches here: the engine records it
 *              and goes on)
 *   bug        fails the account; the report asks for a bug report
 */
#ifndef IMAPFLEET_SCHEDULER_POLICY_H
#define IMAPFLEET_SCHEDULER_POLICY_H

#include <stdint.h>

#include "common/err.h"

/* The retry defaults: the first backoff is long enough for a restarting server, the largest
 * short enough that a run over a night still retries several times. */
#define RETRY_BASE_MS	  2000u
#define RETRY_CAP_MS	  600000u
#define RETRY_MAX_ATTEMPTS 5u
/* A server that throttled us gets no new connection for its Retry-After, at least this long. */
#define HOST_THROTTLE_HOLD_MIN_MS 1000u
/* The host limiter grows a server's limit by one after this many clean finishes: slow recovery,
 * so a server that throttled us is not hit at full concurrency again a moment later. */
#define HOST_AIMD_SUCCESSES_PER_STEP 4

struct retry_policy {
	unsigned base_ms;      /* first backoff ceiling (default RETRY_BASE_MS) */
	unsigned cap_ms;       /* largest backoff (default RETRY_CAP_MS) */
	unsigned max_attempts; /* attempts in all, first included (default RETRY_MAX_ATTEMPTS) */
};

void retry_policy_init(struct retry_policy *p);

enum retry_verdict { RETRY_LATER = 0, RETRY_GIVE_UP };

/* attempt: how many attempts were made so far (1 after the first). rnd: a uniform random
 * number in [0, 1) (injected so the policy is testable). *delay_ms is set for RETRY_LATER. */
enum retry_verdict retry_policy_decide(const struct retry_policy *p, const struct fleet_err *err,
				       unsigned attempt, double rnd, unsigned *delay_ms);

/* ---- per-server connection limits with additive-increase / multiplicative-decrease ----------- */

struct host_limiter;

/* max_per_host: the configured ceiling (--max-conns-per-host). Thread-safe. */
struct host_limiter *host_limiter_new(unsigned max_per_host);
void host_limiter_free(struct host_limiter **hl);

/* 1 when a connection slot for server ("host:port") was taken, 0 when the server is at its current
 * limit or cooling down after throttling. Never blocks. */
int host_limiter_try_acquire(struct host_limiter *hl, const char *server);
void host_limiter_release(struct host_limiter *hl, const char *server);

/* The server throttled us: halve its limit (at least 1) and hold new connections for
 * retry_after_ms (at least HOST_THROTTLE_HOLD_MIN_MS). */
void host_limiter_throttled(struct host_limiter *hl, const char *server, unsigned retry_after_ms);
/* An account on this server finished cleanly: after enough successes the limit grows by one,
 * up to the ceiling. */
void host_limiter_success(struct host_limiter *hl, const char *server);

/* ---- what this process knows of the server's slots in the state database (state_slot_acquire) --
 * The shared slots are the truth; this only spares a try that cannot succeed. It never grants a
 * slot, so the per-server limit across hosts holds whatever it says. */
/* Slots seen full this long ago still count as full, unless this process released one since. */
#define HOST_SEEN_FULL_MS 100u
/* This process took (delta 1) or released (delta -1) one of the server's shared slots. A release
 * also lowers the count last seen, so the next try is made at once. */
void host_limiter_slot_held(struct host_limiter *hl, const char *server, int delta);
/* A try found every slot held: held slots below the limit, by every host. */
void host_limiter_slots_full(struct host_limiter *hl, const char *server, unsigned held);
/* 1 when a try for a slot cannot succeed now: this process alone holds the server's limit, or every
 * slot was seen held within HOST_SEEN_FULL_MS and none was released here since. */
int host_limiter_known_full(struct host_limiter *hl, const char *server);

unsigned host_limiter_limit(struct host_limiter *hl, const char *server);
unsigned host_limiter_in_use(struct host_limiter *hl, const char *server);
/* Milliseconds until the server accepts new connections again (0 = now). */
unsigned host_limiter_cooldown_ms(struct host_limiter *hl, const char *server);

#endif

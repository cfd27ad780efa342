#include "scheduler/policy.h"

#include <stddef.h>

#include "common/alloc.h"
#include "common/util.h"
#include "scheduler/registry.h"

void retry_policy_init(struct retry_policy *p)
{
	p->base_ms = RETRY_BASE_MS;
	p->cap_ms = RETRY_CAP_MS;
	p->max_attempts = RETRY_MAX_ATTEMPTS;
}

enum retry_verdict retry_policy_decide(const struct retry_policy *p, const struct fleet_err *err,
				       unsigned attempt, double rnd, unsigned *delay_ms)
{
	uint64_t ceiling;
	unsigned shift;

	*delay_ms = 0;
	if (!fleet_err_retryable(err) || attempt >= p->max_attempts)
		return RETRY_GIVE_UP;
	/* Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^(attempt-1))]. */
	shift = attempt > 0 ? attempt - 1 : 0;
	ceiling = shift >= 32 ? p->cap_ms : (uint64_t)p->base_ms << shift;
	if (ceiling > p->cap_ms)
		ceiling = p->cap_ms;
	if (rnd < 0)
		rnd = 0;
	if (rnd >= 1)
		rnd = 0.999999;
	*delay_ms = (unsigned)(rnd * (double)ceiling);
	if (err->cls == FLEET_ERR_THROTTLED) {
		/* The server's hint is a floor; without one, wait at least the base. */
		unsigned floor_ms = err->retry_after_ms ? err->retry_after_ms : p->base_ms;

		if (*delay_ms < floor_ms)
			*delay_ms = floor_ms;
	}
	return RETRY_LATER;
}

/* ---- host limiter ------------------------------------------------------------------------- */

struct host_entry {
	char *key; /* first: the registry's key, the server ("host:port") */
	unsigned limit, in_use, successes;
	uint64_t hold_until_ms;
	unsigned held;        /* shared slots this process holds */
	unsigned seen;        /* slots held (all hosts) when a try last found the server full */
	uint64_t seen_at_ms;  /* when; 0: not seen full */
};

struct host_limiter {
	struct registry reg; /* first (registry_owner_new); of struct host_entry */
	unsigned max;
};
_Static_assert(offsetof(struct host_limiter, reg) == 0, "the registry is the first member");

struct host_limiter *host_limiter_new(unsigned max_per_host)
{
	struct host_limiter *hl = registry_owner_new(sizeof(*hl), sizeof(struct host_entry));

	hl->max = max_per_host ? max_per_host : 1;
	return hl;
}

void host_limiter_free(struct host_limiter **phl)
{
	registry_owner_free(phl, NULL);
}

/* Takes the lock and returns the server's entry, added at the configured ceiling when it has none.
 * The caller unlocks (registry_unlock) when done with it. */
static struct host_entry *lock_entry(struct host_limiter *hl, const char *server)
{
	struct host_entry *e;

	registry_lock(&hl->reg);
	e = registry_find(&hl->reg, server);
	if (!e) {
		e = registry_add(&hl->reg, server);
		e->limit = hl->max;
	}
	return e;
}

int host_limiter_try_acquire(struct host_limiter *hl, const char *server)
{
	struct host_entry *e = lock_entry(hl, server);
	int ok = e->in_use < e->limit && fleet_now_ms() >= e->hold_until_ms;

	if (ok)
		e->in_use++;
	registry_unlock(&hl->reg);
	return ok;
}

void host_limiter_release(struct host_limiter *hl, const char *server)
{
	struct host_entry *e = lock_entry(hl, server);

	if (e->in_use)
		e->in_use--;
	registry_unlock(&hl->reg);
}

void host_limiter_throttled(struct host_limiter *hl, const char *server, unsigned retry_after_ms)
{
	struct host_entry *e = lock_entry(hl, server);

	e->limit = e->limit > 1 ? e->limit / 2 : 1;
	e->successes = 0;
	e->hold_until_ms = fleet_now_ms() + (retry_after_ms > HOST_THROTTLE_HOLD_MIN_MS ? retry_after_ms : HOST_THROTTLE_HOLD_MIN_MS);
	registry_unlock(&hl->reg);
}

void host_limiter_success(struct host_limiter *hl, const char *server)
{
	struct host_entry *e = lock_entry(hl, server);

	if (e->limit < hl->max && ++e->successes >= HOST_AIMD_SUCCESSES_PER_STEP) {
		e->limit++;
		e->successes = 0;
	}
	registry_unlock(&hl->reg);
}

/* A copy of the server's entry, taken under the lock (its name is borrowed: read the numbers only). */
static struct host_entry entry_copy(struct host_limiter *hl, const char *server)
{
	struct host_entry e = *lock_entry(hl, server);

	registry_unlock(&hl->reg);
	return e;
}

unsigned host_limiter_limit(struct host_limiter *hl, const char *server)
{
	return entry_copy(hl, server).limit;
}

unsigned host_limiter_in_use(struct host_limiter *hl, const char *server)
{
	return entry_copy(hl, server).in_use;
}

unsigned host_limiter_cooldown_ms(struct host_limiter *hl, const char *server)
{
	uint64_t now = fleet_now_ms(), until = entry_copy(hl, server).hold_until_ms;

	return until > now ? (unsigned)(until - now) : 0;
}

void host_limiter_slot_held(struct host_limiter *hl, const char *server, int delta)
{
	struct host_entry *e = lock_entry(hl, server);

	if (delta > 0) {
		e->held++;
		e->seen++;
	} else {
		if (e->held)
			e->held--;
		if (e->seen)
			e->seen--;
	}
	registry_unlock(&hl->reg);
}

void host_limiter_slots_full(struct host_limiter *hl, const char *server, unsigned held)
{
	struct host_entry *e = lock_entry(hl, server);

	e->seen = held;
	e->seen_at_ms = fleet_now_ms();
	registry_unlock(&hl->reg);
}

int host_limiter_known_full(struct host_limiter *hl, const char *server)
{
	struct host_entry e = entry_copy(hl, server);

	if (e.held >= e.limit)
		return 1;
	return e.seen_at_ms && fleet_now_ms() - e.seen_at_ms < HOST_SEEN_FULL_MS && e.seen >= e.limit;
}

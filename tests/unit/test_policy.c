/* Unit tests for scheduler/policy.c: retry decisions by class, backoff bounds, AIMD limits. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "common/err.h"
#include "common/util.h"
#include "scheduler/policy.h"

static struct fleet_err make_err(enum fleet_err_class cls, unsigned retry_after)
{
	struct fleet_err e;

	fleet_err_set(&e, cls, FLEET_SCOPE_ACCOUNT, NULL, "x");
	e.retry_after_ms = retry_after;
	return e;
}

static void transient_errors_are_retried_until_attempts_run_out(void **state)
{
	struct retry_policy p;
	struct fleet_err e = make_err(FLEET_ERR_TRANSIENT, 0);
	unsigned d;

	retry_policy_init(&p);
	for (unsigned a = 1; a < p.max_attempts; a++)
		assert_int_equal(retry_policy_decide(&p, &e, a, 0.5, &d), RETRY_LATER);
	assert_int_equal(retry_policy_decide(&p, &e, p.max_attempts, 0.5, &d), RETRY_GIVE_UP);
}

static void auth_permanent_and_bug_are_never_retried(void **state)
{
	const enum fleet_err_class never[] = {FLEET_ERR_AUTH, FLEET_ERR_PERMANENT, FLEET_ERR_BUG};
	struct retry_policy p;
	unsigned d;

	retry_policy_init(&p);
	for (size_t i = 0; i < 3; i++) {
		struct fleet_err e = make_err(never[i], 0);

		assert_int_equal(retry_policy_decide(&p, &e, 1, 0.5, &d), RETRY_GIVE_UP);
	}
}

static void backoff_is_full_jitter_bounded_by_the_exponential_ceiling_and_cap(void **state)
{
	struct retry_policy p = {1000, 30000, 100};
	struct fleet_err e = make_err(FLEET_ERR_TRANSIENT, 0);
	unsigned d;

	retry_policy_decide(&p, &e, 1, 0.0, &d);
	assert_int_equal(d, 0);
	retry_policy_decide(&p, &e, 1, 0.999, &d);
	assert_true(d <= 1000 && d >= 990);
	retry_policy_decide(&p, &e, 3, 0.999, &d);
	assert_true(d <= 4000 && d >= 3990);
	retry_policy_decide(&p, &e, 40, 0.999, &d);
	assert_true(d <= 30000 && d >= 29900);
}

static void throttled_waits_at_least_the_servers_hint(void **state)
{
	struct retry_policy p;
	struct fleet_err e = make_err(FLEET_ERR_THROTTLED, 45000);
	unsigned d;

	retry_policy_init(&p);
	assert_int_equal(retry_policy_decide(&p, &e, 1, 0.0, &d), RETRY_LATER);
	assert_int_equal(d, 45000);
}

static void limiter_never_hands_out_more_than_the_limit(void **state)
{
	struct host_limiter *hl = host_limiter_new(3);

	assert_int_equal(host_limiter_try_acquire(hl, "a:993"), 1);
	assert_int_equal(host_limiter_try_acquire(hl, "a:993"), 1);
	assert_int_equal(host_limiter_try_acquire(hl, "a:993"), 1);
	assert_int_equal(host_limiter_try_acquire(hl, "a:993"), 0);
	assert_int_equal(host_limiter_try_acquire(hl, "b:993"), 1); /* other servers are independent */
	host_limiter_release(hl, "a:993");
	assert_int_equal(host_limiter_try_acquire(hl, "a:993"), 1);
	assert_int_equal(host_limiter_in_use(hl, "a:993"), 3);
	host_limiter_free(&hl);
	assert_null(hl);
}

static void throttling_halves_the_limit_and_success_grows_it_back_slowly(void **state)
{
	struct host_limiter *hl = host_limiter_new(8);

	host_limiter_throttled(hl, "s:993", 0);
	assert_int_equal(host_limiter_limit(hl, "s:993"), 4);
	assert_true(host_limiter_cooldown_ms(hl, "s:993") > 0);
	assert_int_equal(host_limiter_try_acquire(hl, "s:993"), 0); /* cooling down */
	host_limiter_throttled(hl, "s:993", 0);
	host_limiter_throttled(hl, "s:993", 0);
	host_limiter_throttled(hl, "s:993", 0);
	assert_int_equal(host_limiter_limit(hl, "s:993"), 1); /* never below one */
	for (int i = 0; i < 3; i++)
		host_limiter_success(hl, "s:993");
	assert_int_equal(host_limiter_limit(hl, "s:993"), 1);
	host_limiter_success(hl, "s:993");
	assert_int_equal(host_limiter_limit(hl, "s:993"), 2);
	for (int i = 0; i < 100; i++)
		host_limiter_success(hl, "s:993");
	assert_int_equal(host_limiter_limit(hl, "s:993"), 8); /* back to the ceiling, not beyond */
	host_limiter_free(&hl);
}

static void a_server_known_full_is_not_asked_again_until_a_slot_is_released_or_a_moment_passes(void **state)
{
	struct host_limiter *hl = host_limiter_new(2);

	(void)state;
	assert_int_equal(host_limiter_known_full(hl, "a:993"), 0); /* never asked: ask */
	host_limiter_slot_held(hl, "a:993", 1);
	assert_int_equal(host_limiter_known_full(hl, "a:993"), 0); /* one of two held here */
	host_limiter_slot_held(hl, "a:993", 1);
	assert_int_equal(host_limiter_known_full(hl, "a:993"), 1); /* this process holds the limit */
	assert_int_equal(host_limiter_known_full(hl, "b:993"), 0); /* other servers are independent */
	host_limiter_slot_held(hl, "a:993", -1);
	assert_int_equal(host_limiter_known_full(hl, "a:993"), 0);
	/* another host holds the other slot: seen full, not asked again for a moment */
	host_limiter_slots_full(hl, "a:993", 2);
	assert_int_equal(host_limiter_known_full(hl, "a:993"), 1);
	fleet_sleep_ms(HOST_SEEN_FULL_MS + 20);
	assert_int_equal(host_limiter_known_full(hl, "a:993"), 0); /* the other host may have released */
	host_limiter_slots_full(hl, "a:993", 2);
	host_limiter_slot_held(hl, "a:993", -1); /* released here: asked again at once */
	assert_int_equal(host_limiter_known_full(hl, "a:993"), 0);
	host_limiter_throttled(hl, "a:993", 0); /* the limit falls to 1 */
	host_limiter_slots_full(hl, "a:993", 1);
	assert_int_equal(host_limiter_known_full(hl, "a:993"), 1);
	host_limiter_free(&hl);
}

struct race {
	struct host_limiter *hl;
	int peak;
	int current;
	pthread_mutex_t lock;
};

static void *hammer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < 2000; i++) {
		if (host_limiter_try_acquire(r->hl, "h:1")) {
			pthread_mutex_lock(&r->lock);
			if (++r->current > r->peak)
				r->peak = r->current;
			pthread_mutex_unlock(&r->lock);
			pthread_mutex_lock(&r->lock);
			r->current--;
			pthread_mutex_unlock(&r->lock);
			host_limiter_release(r->hl, "h:1");
		}
	}
	return NULL;
}

static void limiter_holds_under_concurrent_use(void **state)
{
	struct race r = {host_limiter_new(2), 0, 0, PTHREAD_MUTEX_INITIALIZER};
	pthread_t t[8];

	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, hammer, &r);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	assert_true(r.peak <= 2);
	assert_int_equal(host_limiter_in_use(r.hl, "h:1"), 0);
	host_limiter_free(&r.hl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(transient_errors_are_retried_until_attempts_run_out),
		cmocka_unit_test(auth_permanent_and_bug_are_never_retried),
		cmocka_unit_test(backoff_is_full_jitter_bounded_by_the_exponential_ceiling_and_cap),
		cmocka_unit_test(throttled_waits_at_least_the_servers_hint),
		cmocka_unit_test(limiter_never_hands_out_more_than_the_limit),
		cmocka_unit_test(throttling_halves_the_limit_and_success_grows_it_back_slowly),
		cmocka_unit_test(limiter_holds_under_concurrent_use),
		cmocka_unit_test(a_server_known_full_is_not_asked_again_until_a_slot_is_released_or_a_moment_passes),
	};

	return unit_run("policy", tests, NULL, NULL);
}

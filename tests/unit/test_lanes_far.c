/* Unit tests for the rule that tells near servers from far ones before more connection pairs are
 * started for an account (engine_lanes_judge in engine/engine.c, over io/imap.c's imap_rtt_add):
 * answers stretched by a busy machine never make a near server far; a far one is far. Each case
 * gives, per side, the answers to the login's commands and the NOOPs timed alone after it, each
 * (queued at, answered at) in ms, in the order they came. The rule: an answer under 10 ms proves
 * a side near; a side is far when 3 NOOPs or more took at most half again the quickest (10 ms or
 * more) and the NOOPs spread over 80 ms or more; unsure otherwise (more NOOPs are sent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/unit.h"

#include "engine/engine.h"
#include "io/imap.h"

#define SAMPLES_MAX 32

struct sample {
	uint64_t sent, done;
};

struct side_samples {
	struct sample all[SAMPLES_MAX];	  /* every answer, NOOPs included; ends at the first {0, 0} */
	struct sample noops[SAMPLES_MAX]; /* the NOOPs alone */
};

struct judge_case {
	const char *name;
	struct side_samples side[2];
	enum engine_distance want;
	int want_unsure[2];
};

static void sum_up(const struct sample *s, struct imap_rtt *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < SAMPLES_MAX && (s[i].sent || s[i].done); i++)
		imap_rtt_add(r, s[i].sent, s[i].done);
}

static enum engine_distance judge(const struct side_samples side[2], int unsure[2], char *why, size_t cap)
{
	struct imap_rtt all[2];
	struct engine_probes noops[2];

	memset(noops, 0, sizeof(noops));
	for (int i = 0; i < 2; i++) {
		const struct sample *s = side[i].noops;

		sum_up(side[i].all, &all[i]);
		for (size_t k = 0; k < ENGINE_LANES_PROBES_MAX && (s[k].sent || s[k].done); k++) {
			noops[i].v[k].sent_ms = s[k].sent;
			noops[i].v[k].done_ms = s[k].done;
			noops[i].n++;
		}
	}
	return engine_lanes_judge(all, noops, unsure, why, cap);
}

static void judge_row(void **state)
{
	const struct judge_case *c = *state;
	int unsure[2];
	char why[512];

	assert_int_equal(judge(c->side, unsure, why, sizeof(why)), c->want);
	assert_int_equal(unsure[0], c->want_unsure[0]);
	assert_int_equal(unsure[1], c->want_unsure[1]);
}

/* The source's login on loopback: AUTHENTICATE, then ID, ENABLE, NAMESPACE and LIST in flight
 * together, then the STATUS of the folders together. */
#define NEAR_LOGIN                                                                                           \
	{100, 106}, {106, 107}, {106, 107}, {106, 107}, {106, 108}, {108, 110},                              \
	{                                                                                                    \
		108, 110                                                                                     \
	}
/* The destination's on loopback: a slower AUTHENTICATE, one quick round, then CREATEs (40 ms). */
#define NEAR_DST_LOGIN                                                                                       \
	{100, 111}, {111, 112}, {111, 112}, {112, 152},                                                      \
	{                                                                                                    \
		112, 152                                                                                     \
	}
/* The same, with one stall of 14 ms of the engine's thread over the quick round: no answer under
 * 10 ms (conns_per_account step 0 on a loaded machine, judged far by the quickest answer alone). */
#define STALLED_DST_LOGIN                                                                                    \
	{100, 113}, {113, 127}, {113, 127}, {127, 170},                                                      \
	{                                                                                                    \
		127, 170                                                                                     \
	}
/* A source 30 ms away (a delay proxy, a WAN): every answer a round trip at the least. */
#define FAR_LOGIN                                                                                            \
	{100, 131}, {131, 162}, {131, 162}, {131, 162},                                                      \
	{                                                                                                    \
		131, 163                                                                                     \
	}
#define FAR_NOOPS                                                                                            \
	{163, 194}, {194, 225},                                                                              \
	{                                                                                                    \
		225, 256                                                                                     \
	}
/* no NOOP */
#define NONE                                                                                                 \
	{                                                                                                    \
		{                                                                                            \
			0, 0                                                                                 \
		}                                                                                            \
	}

static const struct judge_case cases[] = {
    {"loopback_on_an_idle_machine_is_near",
     {{{NEAR_LOGIN}, NONE}, {{NEAR_DST_LOGIN}, NONE}},
     ENGINE_NEAR,
     {0, 0}},
    {"one_stall_over_every_quick_answer_leaves_a_side_unknown_not_far",
     {{{NEAR_LOGIN}, NONE}, {{STALLED_DST_LOGIN}, NONE}},
     ENGINE_UNSURE,
     {0, 1}},
    {"after_the_stall_one_quick_noop_makes_it_near",
     {{{NEAR_LOGIN}, NONE}, {{STALLED_DST_LOGIN, {170, 172}}, {{170, 172}}}},
     ENGINE_NEAR,
     {0, 0}},
    {"a_quick_answer_to_a_later_command_makes_it_near_whatever_the_noops_said",
     {{{NEAR_LOGIN}, NONE},
      {{STALLED_DST_LOGIN, {170, 190}, {190, 212}, {230, 250}, {300, 302}},
       {{170, 190}, {190, 212}, {230, 250}}}},
     ENGINE_NEAR,
     {0, 0}},
    /* a burst of load stretched three NOOPs in a row, but over less than 80 ms */
    {"noops_stretched_by_one_burst_are_not_far",
     {{{NEAR_LOGIN}, NONE},
      {{STALLED_DST_LOGIN, {170, 190}, {190, 210}, {210, 240}}, {{170, 190}, {190, 210}, {210, 240}}}},
     ENGINE_UNSURE,
     {0, 1}},
    /* conns_per_account step 0 at load 52: NOOPs of 15, 100 and 120 ms; a network's round trip
     * would repeat */
    {"noops_that_do_not_agree_are_not_far",
     {{{NEAR_LOGIN}, NONE},
      {{STALLED_DST_LOGIN, {170, 185}, {185, 285}, {285, 405}}, {{170, 185}, {185, 285}, {285, 405}}}},
     ENGINE_UNSURE,
     {0, 1}},
    /* the login's answers are no proof of a far server, however many and however slow: its
     * commands make the server work, and the engine reads one side while the other's answer waits */
    {"slow_answers_to_the_login_alone_are_not_far",
     {{{NEAR_LOGIN}, NONE},
      {{{100, 115}, {115, 140}, {140, 160}, {160, 190}, {190, 210}, {210, 240}, {240, 260}, {260, 380}},
       NONE}},
     ENGINE_UNSURE,
     {0, 1}},
    {"a_side_without_answers_is_not_known", {{{NEAR_LOGIN}, NONE}, {NONE, NONE}}, ENGINE_UNSURE, {0, 1}},
    {"a_far_source_after_its_login_is_not_known_yet",
     {{{FAR_LOGIN}, NONE}, {{NEAR_LOGIN}, NONE}},
     ENGINE_UNSURE,
     {1, 0}},
    {"a_far_source_with_3_noops_over_80_ms_is_far_though_the_destination_is_near",
     {{{FAR_LOGIN, FAR_NOOPS}, {FAR_NOOPS}}, {{NEAR_LOGIN}, NONE}},
     ENGINE_FAR,
     {0, 0}},
    {"a_far_destination_is_far_too",
     {{{NEAR_LOGIN}, NONE}, {{FAR_LOGIN, FAR_NOOPS}, {FAR_NOOPS}}},
     ENGINE_FAR,
     {0, 0}},
    {"both_far_is_far",
     {{{FAR_LOGIN, FAR_NOOPS}, {FAR_NOOPS}}, {{FAR_LOGIN, FAR_NOOPS}, {FAR_NOOPS}}},
     ENGINE_FAR,
     {0, 0}},
    /* the edges: a NOOP of 9 ms is near, 10 ms is not; 3 NOOPs over exactly 80 ms are far, 2, or
     * 3 over 79 ms, are not; 30 ms is half again 20 ms, 31 ms is more */
    {"a_noop_of_9_ms_is_near",
     {{{FAR_LOGIN, {163, 173}, {173, 182}}, {{163, 173}, {173, 182}}}, {{NEAR_LOGIN}, NONE}},
     ENGINE_NEAR,
     {0, 0}},
    {"3_noops_of_10_ms_over_80_ms_are_far",
     {{{FAR_LOGIN}, {{200, 210}, {230, 240}, {270, 280}}}, {{NEAR_LOGIN}, NONE}},
     ENGINE_FAR,
     {0, 0}},
    {"2_noops_over_80_ms_are_not_known",
     {{{FAR_LOGIN}, {{200, 210}, {270, 280}}}, {{NEAR_LOGIN}, NONE}},
     ENGINE_UNSURE,
     {1, 0}},
    {"noops_of_20_30_30_ms_agree",
     {{{FAR_LOGIN}, {{100, 120}, {150, 180}, {200, 230}}}, {{NEAR_LOGIN}, NONE}},
     ENGINE_FAR,
     {0, 0}},
    {"noops_of_20_30_31_ms_do_not",
     {{{FAR_LOGIN}, {{100, 120}, {150, 180}, {200, 231}}}, {{NEAR_LOGIN}, NONE}},
     ENGINE_UNSURE,
     {1, 0}},
    {"3_noops_over_79_ms_are_not_known",
     {{{FAR_LOGIN}, {{200, 210}, {230, 240}, {269, 279}}}, {{NEAR_LOGIN}, NONE}},
     ENGINE_UNSURE,
     {1, 0}},
};

static void rounds_are_counted_from_answers_to_commands_sent_after_the_last_counted_answer(void **state)
{
	struct imap_rtt r;

	(void)state;
	memset(&r, 0, sizeof(r));
	imap_rtt_add(&r, 10, 20); /* round 1 */
	imap_rtt_add(&r, 12, 25); /* sent before 20: in flight with it */
	imap_rtt_add(&r, 20, 31); /* sent as the answer came: round 2 */
	imap_rtt_add(&r, 24, 40); /* in flight with round 2 */
	imap_rtt_add(&r, 45, 47); /* round 3, the quickest */
	assert_int_equal(r.n, 5);
	assert_int_equal(r.rounds, 3);
	assert_int_equal(r.min_ms, 2);
	assert_int_equal(r.first_ms, 10);
	assert_int_equal(r.last_ms, 47);
}

static void the_reason_names_each_side_and_its_figures(void **state)
{
	static const struct side_samples side[2] = {{{FAR_LOGIN, FAR_NOOPS}, {FAR_NOOPS}},
						    {{NEAR_LOGIN}, NONE}};
	char why[512], small[40];

	(void)state;
	assert_int_equal(judge(side, NULL, why, sizeof(why)), ENGINE_FAR);
	assert_contains(
	    why,
	    "source far: quickest of 8 answers 31 ms, of 3 NOOPs 31 ms (3 within half again) over 93 ms");
	assert_contains(why, "destination near: quickest of 7 answers 1 ms, no NOOP");
	/* a short buffer gets a cut text, marked, and still a string */
	assert_int_equal(judge(side, NULL, small, sizeof(small)), ENGINE_FAR);
	assert_true(strlen(small) < sizeof(small));
	assert_contains(small, "...");
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rounds_are_counted_from_answers_to_commands_sent_after_the_last_counted_answer),
	    cmocka_unit_test(the_reason_names_each_side_and_its_figures),
	};

	return unit_run_rows("lanes_far", tests, cases, judge_row, NULL, NULL, NULL);
}

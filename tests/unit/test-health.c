/* Unit tests for src/check/health.c and src/cfg/kw-health.c: the check counter (rise/fall, first
 * result), passive ejection and its caps, probes, latency buckets and the peer comparison, the
 * per-try deadline, the retry budget, fail-open, the agent's weight, and the health keywords. */
#include <string.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/loop.h>
#include <keel/proxy.h>

#include "rt.h"
#include "unit.h"

static struct proxy *be;

static void teardown(void)
{
	rt_teardown();
	be = NULL;
}

/* Loads "backend be" with body, then the runtime and health state of one worker. */
static bool setup(const char *body)
{
	be = rt_setup(body, true);
	clock_update();
	return be != NULL;
}

static bool up(int i)
{
	return atomic_load(&be->srv[i]->oper) == SRV_OPER_UP;
}

static struct chk_result res(bool ok, const char *why)
{
	struct chk_result r = {.ok = ok, .code = ok ? CHK_C_L7OK : CHK_C_L7STS, .status = ok ? 200 : 500};

	snprintf(r.reason, sizeof(r.reason), "%s", why);
	return r;
}

/* Feeds n responses of ttfb_us to server i, then runs enough ticks to fill the window. */
static void feed(int i, int n, uint64_t ttfb_us)
{
	while (n--)
		health_response(be->srv[i], ttfb_us, 200);
}

TEST(lat_buckets_are_monotonic_and_bounded)
{
	uint64_t us;
	int prev = 0;

	CHECK_EQ_INT(lat_bucket(0), 0);
	CHECK_EQ_INT(lat_bucket(63), 0);
	for (us = 64; us < 4000000000ull; us = us * 9 / 8 + 1) {
		int b = lat_bucket(us);

		CHECK(b >= prev);
		CHECK(b < LAT_BUCKETS);
		/* The bucket's upper bound is above the value and within 25% + 1 of it. */
		CHECK(lat_bucket_us(b) >= us || b == LAT_BUCKETS - 1);
		CHECK(b == LAT_BUCKETS - 1 || lat_bucket_us(b) <= us + us / 4 + 1);
		prev = b;
	}
	CHECK_EQ_INT(lat_bucket(UINT64_MAX), LAT_BUCKETS - 1);
}

TEST(first_check_decides_then_rise_and_fall)
{
	struct chk_result ok = res(true, "status 200"), ko = res(false, "status 500");

	if (!setup(" server a 127.0.0.1:1 check rise 2 fall 3\n server b 127.0.0.1:2 check"))
		return;
	CHECK(up(0));
	health_check_result(be->srv[0], &ko);
	CHECK(!up(0)); /* the first result counts at once */
	health_check_result(be->srv[0], &ok);
	CHECK(!up(0));
	health_check_result(be->srv[0], &ok);
	CHECK(up(0)); /* rise 2 */
	health_check_result(be->srv[0], &ok);
	health_check_result(be->srv[0], &ok);
	health_check_result(be->srv[0], &ko);
	health_check_result(be->srv[0], &ko);
	CHECK(up(0));
	health_check_result(be->srv[0], &ko);
	CHECK(!up(0)); /* fall 3 */
	CHECK(strstr(be->srv[0]->hl->why, "status 500") != NULL);
}

TEST(passive_errors_eject_but_never_the_last_server)
{
	int i;

	if (!setup(" server a 127.0.0.1:1\n server b 127.0.0.1:2"))
		return;
	health_event(be->srv[0], HEV_TIMEOUT, 250000, NULL);
	health_event(be->srv[0], HEV_TIMEOUT, 250000, NULL);
	CHECK(up(0));
	health_event(be->srv[0], HEV_TIMEOUT, 250000, NULL);
	CHECK(!up(0));
	CHECK(be->srv[0]->hl->ejected);
	CHECK(health_srv_out(be->srv[0]));
	CHECK(!health_srv_out(be->srv[1]));
	CHECK(strstr(be->srv[0]->hl->why, "response timeout") != NULL);
	for (i = 0; i < 10; i++)
		health_event(be->srv[1], HEV_CONN_FAIL, 0, "connection refused");
	CHECK(up(1)); /* the last server left is kept */
	CHECK(!health_fail_open(be));
}

TEST(success_resets_the_error_streak)
{
	if (!setup(" server a 127.0.0.1:1\n server b 127.0.0.1:2"))
		return;
	health_event(be->srv[0], HEV_RESET, 0, NULL);
	health_event(be->srv[0], HEV_RESET, 0, NULL);
	health_response(be->srv[0], 1000, 200);
	health_event(be->srv[0], HEV_RESET, 0, NULL);
	health_event(be->srv[0], HEV_RESET, 0, NULL);
	CHECK(up(0));
}

TEST(max_eject_percent_caps_ejections)
{
	int i, k;

	if (!setup(" max-eject-percent 25\n server a 127.0.0.1:1\n server b 127.0.0.1:2\n"
		   " server c 127.0.0.1:3\n server d 127.0.0.1:4"))
		return;
	for (k = 0; k < 3; k++)
		for (i = 0; i < 3; i++)
			health_event(be->srv[k], HEV_TIMEOUT, 0, NULL);
	CHECK(!up(0));
	CHECK(up(1)); /* 25% of 4: one server */
	CHECK(up(2));
}

TEST(observe_layer7_counts_5xx_and_layer4_does_not)
{
	int i;

	if (!setup(" server a 127.0.0.1:1 observe layer7\n server b 127.0.0.1:2\n server c 127.0.0.1:3"))
		return;
	for (i = 0; i < 5; i++) {
		health_response(be->srv[0], 1000, 503);
		health_response(be->srv[1], 1000, 503);
	}
	CHECK(!up(0));
	CHECK(up(1));
}

TEST(a_5xx_storm_relative_to_peers_ejects_without_observe)
{
	int i;

	if (!setup(" server a 127.0.0.1:1\n server b 127.0.0.1:2\n server c 127.0.0.1:3"))
		return;
	for (i = 0; i < 60; i++) {
		health_response(be->srv[0], 1000, 500);
		health_response(be->srv[1], 1000, 200);
		health_response(be->srv[2], 1000, i % 10 ? 200 : 503); /* 10%: below the storm */
	}
	health_tick();
	CHECK(!up(0));
	CHECK(strstr(be->srv[0]->hl->why, "5xx") != NULL);
	CHECK(up(1) && up(2));
	/* The whole farm failing ejects nobody. */
	if (!setup(" server a 127.0.0.1:1\n server b 127.0.0.1:2"))
		return;
	for (i = 0; i < 60; i++) {
		health_response(be->srv[0], 1000, 500);
		health_response(be->srv[1], 1000, 502);
	}
	health_tick();
	CHECK(up(0) && up(1));
}

TEST(ejected_server_is_probed_and_returns)
{
	struct chk_result ok = res(true, "status 200");
	uint32_t delay = 0;

	if (!setup(" server a 127.0.0.1:1 eject-time 100ms\n server b 127.0.0.1:2"))
		return;
	CHECK_EQ_INT(health_check_plan(be->srv[0], &delay), CHK_PLAN_IDLE);
	health_event(be->srv[0], HEV_TIMEOUT, 0, NULL);
	health_event(be->srv[0], HEV_TIMEOUT, 0, NULL);
	health_event(be->srv[0], HEV_TIMEOUT, 0, NULL);
	CHECK(!up(0));
	CHECK_EQ_INT(health_check_plan(be->srv[0], &delay), CHK_PLAN_IDLE);
	CHECK(delay <= 101);
	now_us += 200000;
	CHECK_EQ_INT(health_check_plan(be->srv[0], &delay), CHK_PLAN_PROBE);
	health_check_result(be->srv[0], &ok);
	CHECK(up(0));
	/* The second ejection lasts twice as long. */
	health_event(be->srv[0], HEV_TIMEOUT, 0, NULL);
	health_event(be->srv[0], HEV_TIMEOUT, 0, NULL);
	health_event(be->srv[0], HEV_TIMEOUT, 0, NULL);
	CHECK(!up(0));
	CHECK(be->srv[0]->hl->eject_until >= now_us + 199000);
}

TEST(tcp_check_passing_does_not_end_an_ejection)
{
	struct chk_result ok = {.ok = true, .code = CHK_C_L4OK};
	uint32_t delay = 0;

	if (!setup(" server a 127.0.0.1:1 check eject-time 100ms\n server b 127.0.0.1:2 check"))
		return;
	health_check_result(be->srv[0], &ok);
	health_event(be->srv[0], HEV_TIMEOUT, 0, NULL);
	health_event(be->srv[0], HEV_TIMEOUT, 0, NULL);
	health_event(be->srv[0], HEV_TIMEOUT, 0, NULL);
	now_us += 200000;
	health_check_result(be->srv[0], &ok);
	CHECK(!up(0)); /* a frozen server still accepts connections */
	CHECK_EQ_INT(health_check_plan(be->srv[0], &delay), CHK_PLAN_PROBE);
	health_check_result(be->srv[0], &ok);
	CHECK(up(0));
}

TEST(slow_server_loses_weight_then_is_ejected)
{
	int t;

	if (!setup(" server a 127.0.0.1:1 weight 8\n server b 127.0.0.1:2 weight 8\n"
		   " server c 127.0.0.1:3 weight 8"))
		return;
	feed(0, 100, 2000);
	feed(1, 100, 3000);
	feed(2, 100, 900000);
	health_tick();
	CHECK(be->srv[2]->hl->slow);
	CHECK_EQ_INT(atomic_load(&be->srv[2]->eweight), 2);
	CHECK(!be->srv[0]->hl->slow);
	for (t = 0; t < 12; t++) {
		feed(0, 10, 2000);
		feed(1, 10, 3000);
		feed(2, 10, 900000);
		health_tick();
	}
	CHECK(!up(2));
	CHECK(strstr(be->srv[2]->hl->why, "latency") != NULL);
}

TEST(slowdown_of_every_server_flags_none)
{
	if (!setup(" server a 127.0.0.1:1\n server b 127.0.0.1:2\n server c 127.0.0.1:3"))
		return;
	feed(0, 100, 800000);
	feed(1, 100, 900000);
	feed(2, 100, 1000000);
	health_tick();
	CHECK(!be->srv[0]->hl->slow && !be->srv[1]->hl->slow && !be->srv[2]->hl->slow);
}

TEST(pertry_follows_latency_within_bounds)
{
	if (!setup(" timeout server 10s\n server a 127.0.0.1:1\n server b 127.0.0.1:2"))
		return;
	health_tick();
	CHECK_EQ_INT(health_pertry_ms(be), 250); /* no estimate yet: the floor */
	feed(0, 100, 1000);
	feed(1, 100, 1000);
	health_tick();
	CHECK_EQ_INT(health_pertry_ms(be), 250); /* fast servers: the floor */
	feed(0, 500, 400000);
	feed(1, 500, 400000);
	health_tick();
	CHECK(health_pertry_ms(be) >= 1200 && health_pertry_ms(be) <= 1600);
	CHECK(setup(" timeout server 2s\n per-try-timeout auto min 100ms max 5s\n server a 127.0.0.1:1"));
	CHECK_EQ_INT(be->chk.pertry_max_ms, 2000); /* never above timeout server */
	CHECK(setup(" per-try-timeout off\n server a 127.0.0.1:1"));
	CHECK_EQ_INT(health_pertry_ms(be), 0);
	CHECK(setup(" per-try-timeout 400ms\n server a 127.0.0.1:1"));
	CHECK_EQ_INT(health_pertry_ms(be), 400);
}

TEST(retry_budget_bounds_per_try_retries)
{
	int i, n = 0;

	if (!setup(" retry-budget 10% min 5\n server a 127.0.0.1:1\n server b 127.0.0.1:2"))
		return;
	for (i = 0; i < 20; i++)
		n += health_retry_allowed(be);
	CHECK_EQ_INT(n, 5);
	/* 1000 requests in the window: 5 + 100 retries. */
	CTR_ADD(be->ctr[0].req_tot, 1000);
	health_tick();
	for (i = 0, n = 0; i < 200; i++)
		n += health_retry_allowed(be);
	CHECK_EQ_INT(n, 100);
}

TEST(all_down_fails_open_or_not)
{
	struct chk_result ko = res(false, "status 500");

	if (!setup(" server a 127.0.0.1:1 check\n server b 127.0.0.1:2 check"))
		return;
	health_check_result(be->srv[0], &ko);
	CHECK(srv_usable(be->srv[1]));
	health_check_result(be->srv[1], &ko);
	CHECK(health_fail_open(be));
	CHECK(srv_usable(be->srv[0]) && srv_usable(be->srv[1]));
	CHECK(!health_srv_out(be->srv[0])); /* failing open: requests on it are not cut */
	if (!setup(" all-servers-down maintenance\n server a 127.0.0.1:1 check"))
		return;
	health_check_result(be->srv[0], &ko);
	CHECK(!health_fail_open(be));
	CHECK(!srv_usable(be->srv[0]));
	CHECK(health_srv_out(be->srv[0]));
}

TEST(agent_weight_and_words)
{
	struct agent_result ar = {.ok = true, .weight_pct = 50, .word = AGENT_NONE};

	if (!setup(" server a 127.0.0.1:1 weight 10\n server b 127.0.0.1:2"))
		return;
	health_agent_result(be->srv[0], &ar);
	CHECK_EQ_INT(atomic_load(&be->srv[0]->eweight), 5);
	ar.word = AGENT_DRAIN;
	health_agent_result(be->srv[0], &ar);
	CHECK_EQ_INT(atomic_load(&be->srv[0]->admin), SRV_ADMIN_DRAIN);
	ar.word = AGENT_DOWN;
	health_agent_result(be->srv[0], &ar);
	CHECK(!up(0));
	ar.word = AGENT_UP;
	health_agent_result(be->srv[0], &ar);
	CHECK(up(0));
}

TEST(runtime_admin_weight_and_checks)
{
	struct chk_result ko = res(false, "status 500");

	if (!setup(" server a 127.0.0.1:1 check weight 10\n server b 127.0.0.1:2"))
		return;
	health_set_admin(be->srv[0], SRV_ADMIN_DRAIN, "test");
	CHECK(!srv_usable(be->srv[0]));
	CHECK(strstr(be->srv[0]->hl->why, "drain by test") != NULL);
	health_set_admin(be->srv[0], SRV_ADMIN_READY, "test");
	CHECK(srv_usable(be->srv[0]));
	CHECK_EQ_INT(health_set_weight(be->srv[0], 300, "test"), ERR);
	CHECK_EQ_INT(health_set_weight(be->srv[0], 4, "test"), OK);
	CHECK_EQ_INT(atomic_load(&be->srv[0]->eweight), 4);
	health_check_result(be->srv[0], &ko);
	CHECK(!up(0));
	health_set_checks(be->srv[0], false, "test"); /* a paused check no longer holds it down */
	CHECK(up(0));
	health_set_checks(be->srv[0], true, "test");
	CHECK(!up(0));
}

TEST(slowstart_ramps_the_weight)
{
	struct chk_result ok = res(true, "status 200"), ko = res(false, "status 500");

	if (!setup(" server a 127.0.0.1:1 check weight 100 slowstart 10s\n server b 127.0.0.1:2"))
		return;
	health_check_result(be->srv[0], &ko);
	health_check_result(be->srv[0], &ok);
	health_check_result(be->srv[0], &ok);
	CHECK(up(0));
	CHECK(atomic_load(&be->srv[0]->eweight) <= 2);
	now_us += 5000000;
	health_tick();
	CHECK(atomic_load(&be->srv[0]->eweight) >= 45 && atomic_load(&be->srv[0]->eweight) <= 55);
	now_us += 6000000;
	health_tick();
	CHECK_EQ_INT(atomic_load(&be->srv[0]->eweight), 100);
}

TEST(health_keywords_reject_bad_input)
{
	static const char *const bad[] = {
		" per-try-timeout",
		" per-try-timeout soon",
		" per-try-timeout auto min 2s max 1s",
		" per-try-timeout auto lo 1s",
		" retry-budget 150%",
		" retry-budget 10 min",
		" retry-budget x",
		" all-servers-down maybe",
		" max-eject-percent",
		" slow-server factor 1",
		" slow-server floor",
		" slow-server speed 3",
		" server a 127.0.0.1:1 error-limit 0",
		" server a 127.0.0.1:1 observe layer5",
		" server a 127.0.0.1:1 on-error reboot",
		" server a 127.0.0.1:1 slowstart",
		" server a 127.0.0.1:1 eject-time 10ms",
	};
	size_t i;
	char text[512];

	teardown();
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		cfg_reset();
		cfg_silent = true;
		snprintf(text, sizeof(text), "backend be\n%s\n", bad[i]);
		if (!CHECK(cfg_load_string("bad.cfg", text, strlen(text)) != OK))
			fprintf(stderr, "  accepted: %s\n", bad[i]);
	}
	cfg_reset();
}

TEST(health_keywords_are_inherited_from_defaults)
{
	teardown();
	cfg_silent = true;
	{
		const char *text = "defaults\n retry-budget 20 min 3\n all-servers-down maintenance\n"
				   " default-server error-limit 7 observe layer7 slowstart 30s\n"
				   "backend be\n server a 127.0.0.1:1\n";
		struct proxy *p;

		if (!CHECK(cfg_load_string("inh.cfg", text, strlen(text)) == OK))
			return;
		p = proxy_by_name("be", PR_CAP_BE);
		CHECK_EQ_INT(p->chk.budget_pct, 20);
		CHECK_EQ_INT(p->chk.budget_min, 3);
		CHECK(!p->chk.fail_open);
		CHECK_EQ_INT(p->srv[0]->chk.error_limit, 7);
		CHECK(p->srv[0]->chk.observe_l7);
		CHECK_EQ_INT(p->srv[0]->chk.slowstart, 30000);
	}
	cfg_reset();
}

UNIT_RUN()

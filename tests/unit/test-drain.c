/* Unit tests for src/sticky/drain.c and the drain parts of cookie.c, stick.c and health.c: the set
 * of cookie users (idle expiry, bound, deletion inside clusters, growth), the one decision for a
 * pinned user of a draining server (cookie_verdict(): drain-idle, drain-deadline, drain-idle 0),
 * the drain's start recorded and cleared by health.c, the count shown to operators, the keywords
 * and the admin socket's drain limits. */
#include <string.h>

#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/cookie.h>
#include <keel/drain.h>
#include <keel/health.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/stick.h>

#include "cfgload.h"
#include "rt.h"
#include "unit.h"

#define S 1000000ull /* one second in us */

/* ---- the set of cookie users ---- */

TEST(users_touch_seen_count_clear)
{
	struct drain_users u;

	drain_users_init(&u, 1000);
	CHECK_EQ_U64(drain_users_seen(&u, 42), 0);
	CHECK_EQ_INT(drain_users_count(&u, 10 * S, 2 * S), 0);
	CHECK(drain_users_touch(&u, 42, 10 * S, 2 * S));
	CHECK(drain_users_touch(&u, 43, 11 * S, 2 * S));
	CHECK_EQ_U64(drain_users_seen(&u, 42), 10 * S);
	/* a touch with an older clock (another thread's) keeps the latest time */
	CHECK(drain_users_touch(&u, 43, 11 * S - 5, 2 * S));
	CHECK_EQ_U64(drain_users_seen(&u, 43), 11 * S);
	CHECK_EQ_INT(drain_users_count(&u, 11 * S, 2 * S), 2);
	/* idle for drain-idle or more: not counted (12 s: 42 idle 2 s, 43 idle 1 s) */
	CHECK_EQ_INT(drain_users_count(&u, 12 * S, 2 * S), 1);
	CHECK_EQ_INT(drain_users_count(&u, 20 * S, 2 * S), 0);
	/* drain-idle 0: everyone seen this drain stays */
	CHECK_EQ_INT(drain_users_count(&u, 1000 * S, 0), 2);
	drain_users_clear(&u);
	CHECK_EQ_U64(drain_users_seen(&u, 42), 0);
	CHECK_EQ_INT(drain_users_count(&u, 11 * S, 0), 0);
	drain_users_destroy(&u);
}

TEST(users_bound_makes_room_from_gone_users_only)
{
	struct drain_users u;
	uint64_t fp;

	drain_users_init(&u, 4);
	for (fp = 1; fp <= 4; fp++)
		CHECK(drain_users_touch(&u, fp, fp * S, 10 * S));
	/* full, and nobody gone yet: the fifth is not tracked */
	CHECK(!drain_users_touch(&u, 5, 6 * S, 10 * S));
	CHECK_EQ_U64(u.untracked, 1);
	CHECK_EQ_U64(drain_users_seen(&u, 5), 0);
	/* a known user is still refreshed */
	CHECK(drain_users_touch(&u, 4, 7 * S, 10 * S));
	/* at 12.5 s users 1 and 2 are idle for 10 s or more: their slots go to new users */
	CHECK(drain_users_touch(&u, 5, 12500000, 10 * S));
	CHECK(drain_users_touch(&u, 6, 12500000, 10 * S));
	CHECK(!drain_users_touch(&u, 7, 12500000, 10 * S));
	CHECK_EQ_U64(drain_users_seen(&u, 1), 0);
	CHECK_EQ_U64(drain_users_seen(&u, 2), 0);
	CHECK_EQ_U64(drain_users_seen(&u, 3), 3 * S);
	CHECK_EQ_U64(drain_users_seen(&u, 4), 7 * S);
	CHECK_EQ_U64(drain_users_seen(&u, 6), 12500000);
	/* drain-idle 0 never drops anyone */
	CHECK(!drain_users_touch(&u, 8, 1000 * S, 0));
	drain_users_destroy(&u);
}

TEST(users_deletion_inside_a_cluster_keeps_the_others_findable)
{
	struct drain_users u;
	uint64_t k, fp[40];
	int i, found = 0;

	drain_users_init(&u, 1000);
	/* Every fingerprint's home slot is 5 (the high half only touches bits the mask drops), and
	 * a second cluster wraps around the end of the 256 slots. */
	for (i = 0; i < 20; i++) {
		k = (uint64_t)(i + 1) << 40;
		fp[i] = k | 5;
		fp[20 + i] = k | 254;
	}
	for (i = 0; i < 40; i++)
		CHECK(drain_users_touch(&u, fp[i], (i % 2 ? 100 : 1) * S, 0));
	CHECK_EQ_INT(u.cap, DRAIN_USERS_MIN_SLOTS);
	/* the bound forces a purge: make it small, then touch a new user at 50 s (idle 10 s) */
	u.max = 40;
	CHECK(drain_users_touch(&u, 77, 50 * S, 10 * S));
	for (i = 0; i < 40; i++) {
		uint64_t seen = drain_users_seen(&u, fp[i]);

		if (i % 2)
			found += CHECK_EQ_U64(seen, 100 * S);
		else
			CHECK_EQ_U64(seen, 0);
	}
	CHECK_EQ_INT(found, 20);
	CHECK_EQ_INT(u.n, 21);
	CHECK_EQ_U64(drain_users_seen(&u, 77), 50 * S);
	drain_users_destroy(&u);
}

TEST(users_set_grows_to_its_bound)
{
	struct drain_users u;
	uint64_t fp;
	int ok = 0;

	drain_users_init(&u, 1000);
	for (fp = 1; fp <= 1000; fp++)
		ok += drain_users_touch(&u, fp * 0x9E3779B97F4A7C15ull, S, 0);
	CHECK_EQ_INT(ok, 1000);
	CHECK(u.cap >= 1024 && u.n == 1000 && u.n <= u.cap / 4 * 3);
	for (fp = 1; fp <= 1000; fp++)
		if (drain_users_seen(&u, fp * 0x9E3779B97F4A7C15ull) != S)
			break;
	CHECK_EQ_U64(fp, 1001);
	CHECK(!drain_users_touch(&u, 12345, S, 0));
	CHECK_EQ_INT(drain_users_count(&u, 2 * S, 0), 1000);
	drain_users_destroy(&u);
}

/* ---- the decision and the drain's start ---- */

static struct proxy *be;

static bool setup(const char *body)
{
	be = rt_setup(body, false);
	clock_update();
	return be != NULL;
}

static const char *const two_cookie_servers =
    " cookie SRV insert indirect\n"
    " server s1 127.0.0.1:1 cookie a drain-idle 2s\n"
    " server s2 127.0.0.1:2 cookie b drain-idle 2s drain-deadline 10s\n";

TEST(verdict_keeps_active_users_and_moves_idle_ones)
{
	struct server *s1, *s2;
	uint64_t start;

	if (!CHECK(setup(two_cookie_servers)))
		return;
	s1 = be->srv[0];
	s2 = be->srv[1];
	/* not draining: whatever the user's last request */
	CHECK_EQ_INT(cookie_verdict(s1, false, 0), CKV_GO);
	CHECK_EQ_INT(cookie_verdict(s1, false, 1), CKV_GO);
	health_set_admin(s1, SRV_ADMIN_DRAIN, "test");
	start = atomic_load(&s1->drain.start_us);
	if (!CHECK(start))
		return;
	now_us = start + S;
	/* a cookie user not seen yet: idle since the start at least (1 s < 2 s) */
	CHECK_EQ_INT(cookie_verdict(s1, false, 0), CKV_GO);
	/* a stick entry last used 5 s before the drain: idle 6 s */
	CHECK_EQ_INT(cookie_verdict(s1, false, start - 5 * S), CKV_GONE);
	/* a clock a little behind the one that stamped the start */
	now_us = start - 10;
	CHECK_EQ_INT(cookie_verdict(s1, false, 0), CKV_GO);
	now_us = start + 2 * S;
	CHECK_EQ_INT(cookie_verdict(s1, false, 0), CKV_GONE);
	CHECK_EQ_INT(cookie_verdict(s1, false, start + 1500000), CKV_GO);
	now_us = start + 3500000;
	CHECK_EQ_INT(cookie_verdict(s1, false, start + 1500000), CKV_GONE);
	/* an active user stays for as long as it keeps coming (no deadline on s1) */
	now_us = start + 3600 * S;
	CHECK_EQ_INT(cookie_verdict(s1, false, now_us - S), CKV_GO);
	/* maintenance moves everyone; ready keeps everyone */
	health_set_admin(s1, SRV_ADMIN_MAINT, "test");
	CHECK_EQ_INT(cookie_verdict(s1, false, now_us), CKV_MAINT);
	health_set_admin(s1, SRV_ADMIN_READY, "test");
	CHECK_EQ_INT(cookie_verdict(s1, false, 0), CKV_GO);

	/* the deadline moves even an active user */
	health_set_admin(s2, SRV_ADMIN_DRAIN, "test");
	start = atomic_load(&s2->drain.start_us);
	now_us = start + 9 * S;
	CHECK_EQ_INT(cookie_verdict(s2, false, now_us - 10), CKV_GO);
	now_us = start + 10 * S;
	CHECK_EQ_INT(cookie_verdict(s2, false, now_us - 10), CKV_GONE);

	/* drain-idle 0: kept for ever, as in HAProxy */
	health_set_admin(s1, SRV_ADMIN_DRAIN, "test");
	health_set_drain(s1, &(struct drain_limits){.has_idle = true, .idle_ms = 0}, "test");
	now_us = atomic_load(&s1->drain.start_us) + 86400 * S;
	CHECK_EQ_INT(cookie_verdict(s1, false, 0), CKV_GO);
	CHECK_EQ_INT(cookie_verdict(s1, false, 1), CKV_GO);
	/* down without "option persist": moved as before, drain or not */
	atomic_store(&s1->oper, SRV_OPER_DOWN);
	atomic_store(&s2->oper, SRV_OPER_UP);
	CHECK_EQ_INT(cookie_verdict(s1, false, now_us), CKV_DOWN);
	CHECK_EQ_INT(cookie_verdict(s1, true, now_us), CKV_GO);
	rt_teardown();
}

TEST(drain_start_and_limits_are_recorded_where_the_state_changes)
{
	struct server *s1;
	uint64_t start;

	if (!CHECK(setup(two_cookie_servers)))
		return;
	s1 = be->srv[0];
	CHECK_EQ_U64(atomic_load(&s1->drain.start_us), 0);
	health_set_admin(s1, SRV_ADMIN_DRAIN, "test");
	start = atomic_load(&s1->drain.start_us);
	CHECK(start > 0);
	CHECK_EQ_INT(atomic_load(&s1->drain.idle_ms), 2000);
	CHECK_EQ_INT(atomic_load(&s1->drain.deadline_ms), 0);
	/* the same state again: the drain goes on from its start */
	health_set_admin(s1, SRV_ADMIN_DRAIN, "test");
	CHECK_EQ_U64(atomic_load(&s1->drain.start_us), start);
	/* new limits for the running drain, same start */
	health_set_drain(s1, &(struct drain_limits){.has_deadline = true, .deadline_ms = 60000},
			 "test");
	CHECK_EQ_U64(atomic_load(&s1->drain.start_us), start);
	CHECK_EQ_INT(atomic_load(&s1->drain.idle_ms), 2000);
	CHECK_EQ_INT(atomic_load(&s1->drain.deadline_ms), 60000);
	/* an override keeps the running drain's other limit, not the configured one */
	health_set_drain(s1, &(struct drain_limits){.has_idle = true, .idle_ms = 0}, "test");
	health_set_drain(s1, &(struct drain_limits){.has_deadline = true, .deadline_ms = 0},
			 "test");
	CHECK_EQ_INT(atomic_load(&s1->drain.idle_ms), 0);
	CHECK_EQ_INT(atomic_load(&s1->drain.deadline_ms), 0);
	CHECK_EQ_U64(atomic_load(&s1->drain.start_us), start);
	/* ready and maint clear it; a new drain takes the configured limits back */
	health_set_admin(s1, SRV_ADMIN_READY, "test");
	CHECK_EQ_U64(atomic_load(&s1->drain.start_us), 0);
	health_set_drain(s1, &(struct drain_limits){.has_idle = true, .idle_ms = 5000}, "test");
	CHECK(atomic_load(&s1->drain.start_us) >= start);
	CHECK_EQ_INT(atomic_load(&s1->drain.idle_ms), 5000);
	CHECK_EQ_INT(atomic_load(&s1->drain.deadline_ms), 0);
	health_set_admin(s1, SRV_ADMIN_MAINT, "test");
	CHECK_EQ_U64(atomic_load(&s1->drain.start_us), 0);
	health_set_admin(s1, SRV_ADMIN_DRAIN, "test");
	CHECK_EQ_INT(atomic_load(&s1->drain.idle_ms), 2000);
	rt_teardown();
}

/* ---- what operators see ---- */

static void store(struct stktable *t, const char *k, int id, uint64_t now_ms)
{
	uint8_t key[STICK_STR_MAX];
	uint16_t kl;

	if (CHECK(stick_key_text(t, k, key, &kl)))
		CHECK_EQ_INT(stick_store(t, key, kl, id, now_ms), OK);
}

TEST(sticky_count_of_a_draining_server)
{
	struct sticky_count sc;
	struct stktable *t;
	struct server *s1;
	uint64_t start;

	if (!CHECK(setup(" cookie SRV insert indirect\n"
			 " stick-table type string size 100\n"
			 " stick on req.cook(u)\n"
			 " server s1 127.0.0.1:1 cookie a drain-idle 10s drain-deadline 1m\n"
			 " server s2 127.0.0.1:2 cookie b\n")))
		return;
	s1 = be->srv[0];
	t = be->stk.table;
	start = drain_clock_us();
	/* before the drain: the entries naming the server */
	store(t, "old", 0, start / 1000 - 20000);
	store(t, "recent", 0, start / 1000 - 5000);
	store(t, "other", 1, start / 1000);
	drain_sticky_count(s1, start, &sc);
	CHECK(sc.users == 2 && sc.pending_ms == 0);
	health_set_admin(s1, SRV_ADMIN_DRAIN, "test");
	start = atomic_load(&s1->drain.start_us);
	/* "old" was last used 20 s ago (drain-idle 10 s); cookie users may come for 10 s */
	drain_sticky_count(s1, start, &sc);
	CHECK_EQ_INT(sc.users, 1);
	CHECK_EQ_INT(sc.pending_ms, 10000);
	drain_cookie_stay(s1, 99, start + 2 * S);
	drain_sticky_count(s1, start + 3 * S, &sc);
	CHECK_EQ_INT(sc.users, 2);
	CHECK_EQ_INT(sc.pending_ms, 7000);
	/* 10 s on: "recent" is idle 15 s, the cookie user 8 s, unseen cookie users are gone */
	drain_sticky_count(s1, start + 10 * S, &sc);
	CHECK(sc.users == 1 && sc.pending_ms == 0);
	drain_sticky_count(s1, start + 12 * S, &sc);
	CHECK(sc.users == 0 && sc.pending_ms == 0);
	/* the deadline: nobody is bound any more */
	drain_cookie_stay(s1, 99, start + 59 * S);
	drain_sticky_count(s1, start + 59 * S, &sc);
	CHECK_EQ_INT(sc.users, 1);
	drain_sticky_count(s1, start + 60 * S, &sc);
	CHECK(sc.users == 0 && sc.pending_ms == 0);
	/* drain-idle 0 without a deadline: cookie users may come for ever */
	health_set_drain(s1, &(struct drain_limits){true, true, 0, 0}, "test");
	drain_sticky_count(s1, start + 3600 * S, &sc);
	CHECK_EQ_INT(sc.users, 3); /* both entries and the cookie user */
	CHECK_EQ_INT(sc.pending_ms, -1);
	/* with a deadline shorter than drain-idle, unseen users count until the deadline */
	health_set_drain(s1, &(struct drain_limits){true, true, 30000, 20000}, "test");
	drain_sticky_count(s1, start + 5 * S, &sc);
	CHECK_EQ_INT(sc.pending_ms, 15000);
	/* maintenance: everyone moves at its next request */
	health_set_admin(s1, SRV_ADMIN_MAINT, "test");
	drain_sticky_count(s1, start, &sc);
	CHECK(sc.users == 0 && sc.pending_ms == 0);
	rt_teardown();
}

TEST(stick_entries_remember_their_last_use)
{
	struct stktable *t;
	uint8_t key[STICK_STR_MAX];
	uint64_t seen = 0;
	uint16_t kl;

	if (!CHECK(setup(" stick-table type string size 2000\n"
			 " stick on req.cook(u)\n"
			 " server s1 127.0.0.1:1\n server s2 127.0.0.1:2\n")))
		return;
	t = be->stk.table;
	CHECK_EQ_INT(t->nshards, STICK_SHARDS);
	store(t, "a", 0, 1000);
	store(t, "b", 0, 5000);
	store(t, "c", 1, 5000);
	CHECK(stick_key_text(t, "a", key, &kl));
	CHECK_EQ_INT(stick_lookup_seen(t, key, kl, 8000, &seen), 0);
	CHECK_EQ_U64(seen, 1000);
	CHECK_EQ_INT(stick_lookup_seen(t, key, kl, 9000, &seen), 0);
	CHECK_EQ_U64(seen, 8000);
	/* within 2 s of 10 s: only "a" (b was stored at 5 s); within 6 s: a and b */
	CHECK_EQ_INT(stick_count_recent(be->srv[0], 10000, 2000), 1);
	CHECK_EQ_INT(stick_count_recent(be->srv[0], 10000, 6000), 2);
	CHECK_EQ_INT(stick_count_recent(be->srv[1], 10000, 6000), 1);
	CHECK_EQ_INT(stick_count_recent(be->srv[1], 10000, 4000), 0);
	/* idle 0: every entry naming the server */
	CHECK_EQ_INT(stick_count_recent(be->srv[0], 10000, 0), 2);
	rt_teardown();
}

/* ---- keywords, admin socket, fingerprints ---- */

TEST(keywords_defaults_and_inheritance)
{
	struct proxy *p;

	if (!CHECK_EQ_INT(load("defaults\n mode http\n default-server drain-idle 90s\n"
			       "backend b\n default-server drain-deadline 30m\n"
			       " server s1 127.0.0.1:1\n"
			       " server s2 127.0.0.1:2 drain-idle 0 drain-deadline off\n"
			       " server s3 127.0.0.1:3 drain-idle 1500ms\n"
			       "backend c\n server s 127.0.0.1:1\n"),
			  OK))
		return;
	p = proxy_by_name("b", PR_CAP_BE);
	CHECK_EQ_INT(p->srv[0]->drain_idle_ms, 90000);
	CHECK_EQ_INT(p->srv[0]->drain_deadline_ms, 1800000);
	CHECK_EQ_INT(p->srv[1]->drain_idle_ms, 0);
	CHECK_EQ_INT(p->srv[1]->drain_deadline_ms, 0);
	CHECK_EQ_INT(p->srv[2]->drain_idle_ms, 1500);
	p = proxy_by_name("c", PR_CAP_BE);
	CHECK_EQ_INT(p->srv[0]->drain_idle_ms, 90000);
	CHECK_EQ_INT(p->srv[0]->drain_deadline_ms, 0);
	/* keel's defaults: 10 minutes, no deadline */
	if (!CHECK_EQ_INT(load("backend c\n server s 127.0.0.1:1\n"), OK))
		return;
	p = proxy_by_name("c", PR_CAP_BE);
	CHECK_EQ_INT(p->srv[0]->drain_idle_ms, DRAIN_IDLE_DEF_MS);
	CHECK_EQ_INT(p->srv[0]->drain_deadline_ms, 0);
	cfg_reset();
}

TEST(keyword_errors_are_clear)
{
	char msg[1024];

	CHECK_EQ_INT(
	    load_msgs("backend b\n server s1 127.0.0.1:1 drain-idle abc\n", msg, sizeof(msg)), ERR);
	CHECK(strstr(msg, "test.cfg:2") && strstr(msg, "server 's1': invalid 'drain-idle' value "
						       "'abc': expects a number"));
	CHECK_EQ_INT(
	    load_msgs("backend b\n server s1 127.0.0.1:1 drain-deadline\n", msg, sizeof(msg)), ERR);
	CHECK(strstr(msg, "'drain-deadline' expects a time such as 30m"));
	CHECK_EQ_INT(load_msgs("backend b\n default-server drain-idle 10x\n", msg, sizeof(msg)),
		     ERR);
	CHECK(strstr(msg, "server 'default-server': invalid 'drain-idle' value '10x': unknown time "
			  "unit"));
	CHECK_EQ_INT(
	    load_msgs("backend b\n server s1 127.0.0.1:1 drain-idle -1s\n", msg, sizeof(msg)), ERR);
	CHECK_EQ_INT(
	    load_msgs("backend b\n server s1 127.0.0.1:1 drain-deadline 99d\n", msg, sizeof(msg)),
	    ERR);
	CHECK(strstr(msg, "out of range"));
	CHECK_EQ_INT(
	    load_msgs("backend b\n server s1 127.0.0.1:1 drain-idel 1s\n", msg, sizeof(msg)), ERR);
	CHECK(strstr(msg, "did you mean 'drain-idle'"));
	cfg_reset();
}

TEST(admin_socket_drain_limits)
{
	struct drain_limits lim;
	char err[256], a0[] = "idle", a1[] = "30s", a2[] = "deadline", a3[] = "off", bad[] = "x";
	char *ok[] = {a0, a1, a2, a3}, *one[] = {a2, a1}, *e1[] = {bad}, *e2[] = {a0},
	     *e3[] = {a0, bad};

	CHECK_EQ_INT(drain_parse_limits(4, ok, &lim, err, sizeof(err)), OK);
	CHECK(lim.has_idle && lim.idle_ms == 30000 && lim.has_deadline && lim.deadline_ms == 0);
	CHECK_EQ_INT(drain_parse_limits(2, one, &lim, err, sizeof(err)), OK);
	CHECK(!lim.has_idle && lim.has_deadline && lim.deadline_ms == 30000);
	CHECK_EQ_INT(drain_parse_limits(0, ok, &lim, err, sizeof(err)), OK);
	CHECK(!lim.has_idle && !lim.has_deadline);
	CHECK_EQ_INT(drain_parse_limits(1, e1, &lim, err, sizeof(err)), ERR);
	CHECK_STR(err, "unexpected 'x' after 'drain': expects [idle TIME] [deadline TIME|off]");
	CHECK_EQ_INT(drain_parse_limits(1, e2, &lim, err, sizeof(err)), ERR);
	CHECK_STR(err, "'idle' expects a time (e.g. 30s, 10m; 0 or off: keep the sticky users for "
		       "ever)");
	CHECK_EQ_INT(drain_parse_limits(2, e3, &lim, err, sizeof(err)), ERR);
	CHECK(!strncmp(err, "invalid idle 'x': ", 18));
	drain_limits_str(600000, 0, err, sizeof(err));
	CHECK_STR(err, "drain-idle 10m, no drain-deadline");
	drain_limits_str(0, 1500, err, sizeof(err));
	CHECK_STR(err, "drain-idle 0 (sticky users kept), drain-deadline 1500ms");
}

TEST(user_hash_ignores_order_and_the_persistence_cookie)
{
	const char *a = "PHPSESSID=abc; SRV=web1|65f0a0b1; lang=fr";
	const char *b = "lang=fr;SRV=web1|65f0a0ff;  PHPSESSID=abc";
	const char *c = "PHPSESSID=abd; SRV=web1; lang=fr";
	uint64_t ha = cookie_user_hash(a, (uint32_t)strlen(a), "SRV", 3);

	CHECK_EQ_U64(cookie_user_hash(b, (uint32_t)strlen(b), "SRV", 3), ha);
	CHECK(cookie_user_hash(c, (uint32_t)strlen(c), "SRV", 3) != ha);
	/* only the persistence cookie: nothing tells users apart but their address */
	CHECK_EQ_U64(cookie_user_hash("SRV=web1", 8, "SRV", 3), 0);
	/* two headers add up like one */
	CHECK_EQ_U64(cookie_user_hash("PHPSESSID=abc; SRV=x", 20, "SRV", 3) +
			 cookie_user_hash("lang=fr", 7, "SRV", 3),
		     ha);
}

UNIT_RUN()

/* Unit tests for the stats dashboard's pieces: the CSRF token (SipHash-2-4 reference vectors,
 * binding to the user), the form and Origin parsers (src/admin/stats-admin.c, included), and the
 * history rings (src/admin/history.c): sampling, order, wrap-around, and a reader racing the
 * writer that must never see a torn ring. */
#include <pthread.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/history.h>
#include <keel/proxy.h>
#include <keel/worker.h>

#include "../../src/admin/stats-admin.c"
#include "cfgload.h"
#include "unit.h"

TEST(siphash_reference_vectors)
{
	uint8_t key[16], msg[64];
	int i;

	for (i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	/* Aumasson and Bernstein, "SipHash: a fast short-input PRF", appendix A and vectors.h */
	CHECK_EQ_U64(siphash24(key, msg, 0), 0x726fdb47dd0e0e31ull);
	CHECK_EQ_U64(siphash24(key, msg, 15), 0xa129ca6149be45e5ull);
	CHECK_EQ_U64(siphash24(key, msg, 8), 0x93f5f5799a932462ull);
}

TEST(token_is_stable_and_bound_to_user_and_frontend)
{
	struct proxy a = {.name = "fe"}, b = {.name = "other"};
	char t1[STATS_TOKEN_LEN + 1], t2[STATS_TOKEN_LEN + 1], t3[STATS_TOKEN_LEN + 1];
	char t4[STATS_TOKEN_LEN + 1];
	size_t i;

	stats_admin_token(&a, "admin", t1);
	stats_admin_token(&a, "admin", t2);
	stats_admin_token(&a, "ops", t3);
	stats_admin_token(&b, "admin", t4);
	CHECK_EQ_INT((int)strlen(t1), STATS_TOKEN_LEN);
	for (i = 0; i < strlen(t1); i++)
		CHECK((t1[i] >= '0' && t1[i] <= '9') || (t1[i] >= 'a' && t1[i] <= 'f'));
	CHECK_STR(t1, t2);
	CHECK(strcmp(t1, t3) != 0);
	CHECK(strcmp(t1, t4) != 0);
	/* the secret is random: not the all-zero key */
	{
		uint8_t zero[16] = {0};
		char msg[64];
		int n = snprintf(msg, sizeof(msg), "keel-stats-csrf%cfe%cadmin", 0, 0);
		char z[17];

		snprintf(z, sizeof(z), "%016llx",
			 (unsigned long long)siphash24(zero, (const uint8_t *)msg, (size_t)n));
		CHECK(strncmp(t1, z, 16) != 0);
	}
	CHECK(ct_eq("abc", 3, "abc", 3));
	CHECK(!ct_eq("abc", 3, "abd", 3));
	CHECK(!ct_eq("abc", 3, "abcd", 4));
	CHECK(!ct_eq("", 0, "a", 1));
}

TEST(form_fields)
{
	const char *f = "action=drain&b=my+be&s=web%2F1&token=00ff&empty=&x";
	char v[16];

	CHECK(stats_form_get(f, strlen(f), "action", v, sizeof(v)) && !strcmp(v, "drain"));
	CHECK(stats_form_get(f, strlen(f), "b", v, sizeof(v)) && !strcmp(v, "my be"));
	CHECK(stats_form_get(f, strlen(f), "s", v, sizeof(v)) && !strcmp(v, "web/1"));
	CHECK(stats_form_get(f, strlen(f), "token", v, sizeof(v)) && !strcmp(v, "00ff"));
	CHECK(stats_form_get(f, strlen(f), "empty", v, sizeof(v)) && !strcmp(v, ""));
	CHECK(stats_form_get(f, strlen(f), "x", v, sizeof(v)) && !strcmp(v, ""));
	CHECK(!stats_form_get(f, strlen(f), "missing", v, sizeof(v)));
	CHECK(!stats_form_get(f, strlen(f), "act", v, sizeof(v)));  /* no prefix match */
	CHECK(!stats_form_get("a=%2", 4, "a", v, sizeof(v)));       /* truncated escape */
	CHECK(!stats_form_get("a=%zz", 5, "a", v, sizeof(v)));      /* bad escape */
	CHECK(!stats_form_get("a=%00", 5, "a", v, sizeof(v)));      /* NUL */
	CHECK(!stats_form_get("a=0123456789abcdef", 18, "a", v, sizeof(v))); /* too long */
	/* the length bounds the parse, not a NUL */
	CHECK(stats_form_get("a=1&b=2", 3, "a", v, sizeof(v)) && !strcmp(v, "1"));
	CHECK(!stats_form_get("a=1&b=2", 3, "b", v, sizeof(v)));
}

TEST(origin_and_referer_against_host)
{
	CHECK(stats_origin_matches("http://lb:8080", 14, "lb:8080", 7));
	CHECK(stats_origin_matches("https://LB:8080", 15, "lb:8080", 7));
	CHECK(stats_origin_matches("http://lb:8080/stats?x", 22, "lb:8080", 7));
	CHECK(!stats_origin_matches("http://lb:8081", 14, "lb:8080", 7));
	CHECK(!stats_origin_matches("http://lb:8080.evil", 19, "lb:8080", 7));
	CHECK(!stats_origin_matches("http://evil/lb:8080", 19, "lb:8080", 7));
	CHECK(!stats_origin_matches("null", 4, "lb:8080", 7));
	CHECK(!stats_origin_matches("ftp://lb:8080", 13, "lb:8080", 7));
	CHECK(!stats_origin_matches("http://", 7, "", 0));
}

/* ---- history ---- */

static struct proxy *fe, *be;

static bool setup(void)
{
	const char *text = "global\n nbthread 1\nfrontend fe\n bind 127.0.0.1:1\n default_backend be\n"
			   "backend be\n server a 127.0.0.1:1\n server b 127.0.0.1:2\n";
	char *err = NULL;

	health_deinit();
	history_deinit();
	cfg_reset();
	cfg_silent = true;
	if (cfg_load_string("dash.cfg", text, strlen(text)) != OK)
		return FAIL("configuration rejected");
	keel_nworkers = 1;
	proxy_runtime_init();
	if (health_init(1, &err) != OK)
		return FAIL("health_init: %s", err);
	clock_update();
	fe = proxy_by_name("fe", PR_CAP_FE);
	be = proxy_by_name("be", PR_CAP_BE);
	return fe && be;
}

static void teardown(void)
{
	health_deinit();
	history_deinit();
	cfg_reset();
}

/* One sample: the counters move by req requests, then HIST_EVERY_TICKS ticks. */
static void one_sample(struct server *s, uint64_t req, uint64_t err5)
{
	int i;

	CTR_ADD(s->ctr[0].req_tot, req);
	CTR_ADD(s->ctr[0].rsp[5], err5);
	for (i = 0; i < HIST_EVERY_TICKS; i++)
		history_tick();
}

TEST(history_samples_in_order_and_wraps)
{
	struct hist_view *v = malloc(sizeof(*v));
	struct server *a;
	int i;

	if (!CHECK(v) || !setup())
		goto out;
	a = be->srv[0];
	CHECK(!history_read(a, HIST_SRV, v));
	CHECK_EQ_INT(v->n, 0);
	CTR_ADD(a->ctr[0].req_tot, 1000); /* before the first tick: the base, never a sample */
	history_tick();                     /* builds the rings and takes the base readings */
	CHECK(!history_read(a, HIST_SRV, v));
	one_sample(a, 7, 2);
	CHECK(history_read(a, HIST_SRV, v));
	CHECK_EQ_INT(v->n, 1);
	CHECK_EQ_INT(v->s[0].req, 7);
	CHECK_EQ_INT(v->s[0].err, 2);
	CHECK_EQ_INT(v->interval_ms, HIST_EVERY_TICKS * HEALTH_TICK_MS);
	/* the other server and the proxies have their own rings */
	CHECK(history_read(be->srv[1], HIST_SRV, v) && v->n == 1 && v->s[0].req == 0);
	CHECK(history_read(be, HIST_BE, v) && v->n == 1);
	CHECK(history_read(fe, HIST_FE, v) && v->n == 1);
	CHECK(!history_read(fe, HIST_SRV, v));
	for (i = 0; i < HIST_SAMPLES + 10; i++)
		one_sample(a, (uint64_t)i + 100, 0);
	CHECK(history_read(a, HIST_SRV, v));
	CHECK_EQ_INT(v->n, HIST_SAMPLES);
	/* oldest first, the last HIST_SAMPLES samples */
	for (i = 0; i < HIST_SAMPLES; i++)
		if (!CHECK_EQ_INT(v->s[i].req, 100 + 10 + i))
			break;
out:
	free(v);
	teardown();
}

static atomic_bool stop_reader;
static atomic_int torn, reads;

/* Checks that every copy is one the writer published: consecutive samples differ by one. */
static void *reader(void *arg)
{
	struct server *a = arg;
	struct hist_view *v = malloc(sizeof(*v));
	int i;

	while (v && !atomic_load(&stop_reader)) {
		if (!history_read(a, HIST_SRV, v))
			continue;
		atomic_fetch_add(&reads, 1);
		for (i = 1; i < v->n; i++)
			if (v->s[i].req != v->s[i - 1].req + 1 || v->s[i].p99_us != 0)
				atomic_fetch_add(&torn, 1);
	}
	free(v);
	return NULL;
}

TEST(history_reader_never_sees_a_torn_ring)
{
	pthread_t th;
	struct server *a;
	int i;

	if (!setup())
		goto out;
	a = be->srv[0];
	history_tick();
	one_sample(a, 1, 0);
	atomic_store(&stop_reader, false);
	atomic_store(&torn, 0);
	atomic_store(&reads, 0);
	if (!CHECK(pthread_create(&th, NULL, reader, a) == 0))
		goto out;
	/* At least 3000 samples, and on until the reader got through a few hundred copies. */
	for (i = 0; i < 3000 || (atomic_load(&reads) < 300 && i < 50000000); i++)
		one_sample(a, (uint64_t)i + 2, 0);
	atomic_store(&stop_reader, true);
	pthread_join(th, NULL);
	CHECK_EQ_INT(atomic_load(&torn), 0);
	CHECK(atomic_load(&reads) > 0);
out:
	teardown();
}

UNIT_RUN()

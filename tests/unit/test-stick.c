/* Unit tests for src/sticky/stick.c: the table (insert, lookup, update, LRU eviction at capacity,
 * expiry, key bounds, per-server counts, two threads at once) and the "stick-table" / "stick"
 * keywords. */
#include <pthread.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/proxy.h>
#include <keel/stick.h>

#include "cfgload.h"
#include "unit.h"

static void mk(struct stktable *t, enum stick_type type, uint16_t keylen, uint32_t size,
	       uint32_t expire_ms)
{
	memset(t, 0, sizeof(*t));
	t->name = "t";
	t->type = (uint8_t)type;
	t->keylen = keylen;
	t->size = size;
	t->expire_ms = expire_ms;
	stick_table_init(t, 8);
}

static int store_s(struct stktable *t, const char *k, int id, uint64_t now)
{
	uint8_t key[STICK_STR_MAX];
	uint16_t kl;

	if (!stick_key_text(t, k, key, &kl))
		return ERR;
	return stick_store(t, key, kl, id, now);
}

static int look_s(struct stktable *t, const char *k, uint64_t now)
{
	uint8_t key[STICK_STR_MAX];
	uint16_t kl;

	if (!stick_key_text(t, k, key, &kl))
		return -2;
	return stick_lookup(t, key, kl, now);
}

TEST(insert_lookup_update)
{
	struct stktable t;

	mk(&t, STK_STRING, 32, 100, 0);
	CHECK_EQ_INT(look_s(&t, "a", 1), -1);
	CHECK_EQ_INT(store_s(&t, "a", 1, 1), OK);
	CHECK_EQ_INT(store_s(&t, "b", 2, 1), OK);
	CHECK_EQ_INT(look_s(&t, "a", 2), 1);
	CHECK_EQ_INT(look_s(&t, "b", 2), 2);
	CHECK_EQ_INT(stick_used(&t), 2);
	CHECK_EQ_INT(t.srv_count[1], 1);
	/* an update moves the entry and its count */
	CHECK_EQ_INT(store_s(&t, "a", 2, 3), OK);
	CHECK_EQ_INT(look_s(&t, "a", 3), 2);
	CHECK_EQ_INT(stick_used(&t), 2);
	CHECK_EQ_INT(t.srv_count[1], 0);
	CHECK_EQ_INT(t.srv_count[2], 2);
	{
		uint8_t key[8];
		uint16_t kl;

		CHECK(stick_key_text(&t, "b", key, &kl));
		CHECK(stick_remove(&t, key, kl));
		CHECK(!stick_remove(&t, key, kl));
	}
	CHECK_EQ_INT(look_s(&t, "b", 4), -1);
	CHECK_EQ_INT(t.srv_count[2], 1);
	stick_clear(&t);
	CHECK_EQ_INT(stick_used(&t), 0);
	CHECK_EQ_INT(t.srv_count[2], 0);
	CHECK_EQ_INT(look_s(&t, "a", 5), -1);
	stick_table_free(&t);
}

TEST(lru_eviction_at_capacity)
{
	struct stktable t;

	mk(&t, STK_INTEGER, 8, 3, 0);
	CHECK_EQ_INT(t.nshards, 1); /* small: one shard, an exact LRU */
	store_s(&t, "1", 0, 1);
	store_s(&t, "2", 0, 2);
	store_s(&t, "3", 0, 3);
	CHECK_EQ_INT(look_s(&t, "1", 4), 0); /* 1 is now the most recent: 2 is the oldest */
	store_s(&t, "4", 1, 5);
	CHECK_EQ_INT(stick_used(&t), 3);
	CHECK_EQ_INT(look_s(&t, "2", 6), -1);
	CHECK_EQ_INT(look_s(&t, "1", 6), 0);
	CHECK_EQ_INT(look_s(&t, "3", 6), 0);
	CHECK_EQ_INT(look_s(&t, "4", 6), 1);
	CHECK_EQ_U64(t.evictions, 1);
	CHECK_EQ_INT(t.srv_count[0] + t.srv_count[1], 3);
	stick_table_free(&t);

	/* a large table is sharded and still bounded by its size */
	mk(&t, STK_INTEGER, 8, 5000, 0);
	CHECK_EQ_INT(t.nshards, STICK_SHARDS);
	for (int i = 0; i < 20000; i++) {
		char k[16];

		snprintf(k, sizeof(k), "%d", i);
		store_s(&t, k, i % 8, (uint64_t)i);
	}
	CHECK(stick_used(&t) <= 5000 && stick_used(&t) > 4500);
	CHECK_EQ_INT(look_s(&t, "19999", 20000), 19999 % 8);
	stick_table_free(&t);
}

TEST(expiry_counts_from_last_access)
{
	struct stktable t;

	mk(&t, STK_IP, 16, 10, 1000);
	CHECK_EQ_INT(store_s(&t, "10.0.0.1", 3, 0), OK);
	CHECK_EQ_INT(store_s(&t, "::1", 4, 0), OK);
	CHECK_EQ_INT(look_s(&t, "10.0.0.1", 900), 3); /* refreshed: now expires at 1900 */
	CHECK_EQ_INT(look_s(&t, "::1", 1000), -1);    /* expired and dropped */
	CHECK_EQ_INT(stick_used(&t), 1);
	CHECK_EQ_INT(look_s(&t, "10.0.0.1", 1800), 3);
	stick_purge(&t, 5000);
	CHECK_EQ_INT(stick_used(&t), 0);
	CHECK_EQ_INT(t.srv_count[3], 0);
	/* an expired entry at the LRU tail makes room before an eviction would */
	store_s(&t, "10.0.0.2", 1, 6000);
	CHECK_EQ_INT(look_s(&t, "10.0.0.2", 6999), 1);
	stick_table_free(&t);
}

TEST(keys_by_type_and_bounds)
{
	struct stktable t;
	struct sample smp = {0};
	uint8_t key[STICK_STR_MAX];
	uint16_t kl;

	mk(&t, STK_STRING, 4, 10, 0);
	smp.str = "abcdefgh";
	smp.len = 8;
	CHECK(stick_key(&t, &smp, key, &kl));
	CHECK(kl == 4 && !memcmp(key, "abcd", 4)); /* truncated to len, as HAProxy */
	store_s(&t, "abcdXYZ", 1, 0);
	CHECK_EQ_INT(look_s(&t, "abcd", 0), 1);
	smp.len = 0;
	CHECK(!stick_key(&t, &smp, key, &kl)); /* an empty value is no key */
	CHECK(!stick_key_text(&t, "", key, &kl));
	stick_table_free(&t);

	mk(&t, STK_IP, 16, 10, 0);
	memset(&smp, 0, sizeof(smp));
	smp.is_ip = 1;
	smp.family = AF_INET;
	memcpy(smp.ip, "\x7f\x00\x00\x01", 4);
	CHECK(stick_key(&t, &smp, key, &kl) && kl == 16);
	stick_store(&t, key, kl, 2, 0);
	CHECK_EQ_INT(look_s(&t, "127.0.0.1", 0), 2); /* the same key from text */
	memset(&smp, 0, sizeof(smp));
	smp.str = "not an ip";
	smp.len = 9;
	CHECK(!stick_key(&t, &smp, key, &kl));
	stick_table_free(&t);

	mk(&t, STK_INTEGER, 8, 10, 0);
	CHECK(!stick_key_text(&t, "12x", key, &kl));
	memset(&smp, 0, sizeof(smp));
	smp.num = 42;
	CHECK(stick_key(&t, &smp, key, &kl) && kl == 8);
	stick_store(&t, key, kl, 5, 0);
	CHECK_EQ_INT(look_s(&t, "42", 0), 5);
	stick_table_free(&t);
}

struct worker {
	struct stktable *t;
	int base;
	int hits;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 20000; i++) {
		char k[16];

		snprintf(k, sizeof(k), "%d", w->base + i % 1000);
		if (look_s(w->t, k, (uint64_t)i) >= 0)
			w->hits++;
		store_s(w->t, k, i % 4, (uint64_t)i);
	}
	return NULL;
}

TEST(two_threads_smoke)
{
	struct stktable t;
	struct worker w[2] = {{&t, 0, 0}, {&t, 500, 0}}; /* half of the keys are shared */
	pthread_t th[2];
	int i, sum = 0;

	mk(&t, STK_STRING, 8, 2048, 0);
	for (i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, hammer, &w[i]);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(w[0].hits > 0 && w[1].hits > 0);
	CHECK(stick_used(&t) <= 2048);
	for (i = 0; i < 8; i++)
		sum += t.srv_count[i];
	CHECK_EQ_INT(sum, (int)stick_used(&t)); /* the per-server counts stay exact */
	stick_table_free(&t);
}

#define BE "defaults\n mode http\nbackend be\n server s1 127.0.0.1:1\n server s2 127.0.0.1:2\n"

TEST(keywords)
{
	struct proxy *p;

	CHECK_EQ_INT(load(BE " stick-table type string len 64 size 10k expire 30m\n"
			     " stick on req.cook(PHPSESSID)\n"
			     " stick store-response res.cook(PHPSESSID) table be\n"
			     " acl api path_beg /api\n"
			     " stick match src if !api\n"),
		     OK);
	p = proxy_by_name("be", PR_CAP_BE);
	if (!CHECK(p && p->stk.table))
		return;
	CHECK_EQ_INT(p->stk.table->type, STK_STRING);
	CHECK_EQ_INT(p->stk.table->keylen, 64);
	CHECK_EQ_INT(p->stk.table->size, 10240);
	CHECK_EQ_INT(p->stk.table->expire_ms, 1800000);
	CHECK_EQ_INT(p->stk.nrules, 3);
	CHECK(p->stk.rules[0].kind == STKR_ON && p->stk.rules[0].t == p->stk.table);
	CHECK(p->stk.rules[1].kind == STKR_STORE_RSP && p->stk.rules[1].t == p->stk.table);
	CHECK(p->stk.rules[2].kind == STKR_MATCH && p->stk.rules[2].cond);
	CHECK_EQ_INT(stick_count_for(p->srv[0]), 0);
	/* default len 32; ipv6 is ip; peers and store are warnings */
	CHECK_EQ_INT(
	    load(BE " stick-table type string size 1 peers p store gpc0\n stick on hdr(x)\n"), OK);
	CHECK_EQ_INT(proxy_by_name("be", PR_CAP_BE)->stk.table->keylen, STICK_STR_LEN);
	CHECK_EQ_INT(load(BE " stick-table type ipv6 size 1\n"), OK);
	/* a rule naming another backend's table */
	CHECK_EQ_INT(load(BE
			  " stick on src table other\nbackend other\n stick-table type ip size 1m\n"
			  " server x 127.0.0.1:3\n"),
		     OK);
	CHECK(proxy_by_name("be", PR_CAP_BE)->stk.rules[0].t ==
	      proxy_by_name("other", PR_CAP_BE)->stk.table);
	CHECK_EQ_INT(proxy_by_name("other", PR_CAP_BE)->stk.table->nshards, STICK_SHARDS);
	cfg_reset();
}

TEST(keyword_errors)
{
	CHECK_EQ_INT(load(BE " stick on src\n"), ERR); /* no table */
	CHECK_EQ_INT(load(BE " stick on src table nosuch\n"), ERR);
	CHECK_EQ_INT(load(BE " stick-table type ip\n"), ERR); /* no size */
	CHECK_EQ_INT(load(BE " stick-table type binary size 1\n"), ERR);
	CHECK_EQ_INT(load(BE " stick-table type ip len 4 size 1\n"), ERR);
	CHECK_EQ_INT(load(BE " stick-table type string len 999 size 1\n"), ERR);
	CHECK_EQ_INT(load(BE " stick-table type ip size 0\n"), ERR);
	CHECK_EQ_INT(load(BE " stick-table type ip size 1\n stick-table type ip size 1\n"), ERR);
	CHECK_EQ_INT(load(BE " stick-table type ip size 1\n stick up src\n"), ERR);
	CHECK_EQ_INT(load(BE " stick-table type ip size 1\n stick on nosuch\n"), ERR);
	CHECK_EQ_INT(load(BE " stick-table type ip size 1\n stick on src if nosuchacl\n"), ERR);
	CHECK_EQ_INT(load(BE " stick-table type ip size 1\n stick on src junk\n"), ERR);
	CHECK_EQ_INT(load(BE " stick-table type ip size 1\n stick on\n"), ERR);
	cfg_reset();
}

UNIT_RUN()

/* Stick tables with HAProxy's semantics: "stick-table" declares a bounded key → server map in a
 * backend, "stick match" pins a request whose key is in it, "stick store-request" and
 * "stick store-response" learn the server that answered, "stick on" does both.
 *
 * A table is shared by the worker threads. It is split in shards (STICK_SHARDS for a large
 * table, one for a small one so that the size bound and the LRU are exact), each a mutex, a
 * chained hash map and an intrusive LRU list (most recent first) over a slab of fixed-size
 * entries allocated on the shard's first store: no allocation per request. A full shard evicts
 * its least recently used entry; "expire" counts from the last lookup or store, and expired
 * entries are dropped when met (lookup, LRU tail on store, purge). docs/configuration.md,
 * "stick-table", lists the differences from HAProxy. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <keel/acl.h>
#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/cookie.h>
#include <keel/lb.h>
#include <keel/proxy.h>
#include <keel/sample.h>
#include <keel/sbuf.h>
#include <keel/server.h>
#include <keel/stick.h>
#include <keel/stream-t.h>

struct stick_entry {
	struct stick_entry *hnext; /* hash chain */
	struct list lru;	   /* in the shard's LRU list, or its free list */
	uint64_t hash;
	uint64_t exp_ms; /* monotonic; 0: never */
	uint64_t seen_ms; /* monotonic: the last lookup or store (a draining server's drain-idle) */
	int32_t srv_id;
	uint16_t klen;
	uint8_t key[];
};

struct stick_shard {
	pthread_mutex_t lock;
	uint32_t cap, n;
	uint32_t mask; /* buckets - 1 */
	struct stick_entry **buckets;
	char *slab; /* cap entries of esize bytes, NULL until the first store */
	size_t esize;
	struct list lru, free;
} __attribute__((aligned(64)));

/* ---- the table ---- */

/* The balancer's hash (FNV-1a with a 64-bit finaliser): the shard takes its high bits. */
static uint64_t hash_key(const uint8_t *k, uint16_t n)
{
	return lb_hash(k, n);
}

static struct stick_shard *shard_of(struct stktable *t, uint64_t h)
{
	return &t->shards[t->nshards == 1 ? 0 : (h >> 58) & (STICK_SHARDS - 1)];
}

int stick_table_init(struct stktable *t, int srv_cap)
{
	int i;

	t->nshards = t->size >= STICK_SHARDS * STICK_SHARD_MIN ? STICK_SHARDS : 1;
	t->shards = aligned_alloc(64, sizeof(*t->shards) * (size_t)t->nshards);
	t->srv_cap = srv_cap;
	t->srv_count = calloc((size_t)(srv_cap ? srv_cap : 1), sizeof(*t->srv_count));
	if (!t->shards || !t->srv_count) {
		free(t->shards);
		free(t->srv_count);
		t->shards = NULL;
		t->srv_count = NULL;
		return ERR;
	}
	memset(t->shards, 0, sizeof(*t->shards) * (size_t)t->nshards);
	for (i = 0; i < t->nshards; i++) {
		struct stick_shard *sh = &t->shards[i];

		pthread_mutex_init(&sh->lock, NULL);
		/* the remainder goes to the first shards: the capacities add up to size */
		sh->cap =
		    t->size / (uint32_t)t->nshards + ((uint32_t)i < t->size % (uint32_t)t->nshards);
		sh->esize = (sizeof(struct stick_entry) + t->keylen + 7) & ~(size_t)7;
		list_init(&sh->lru);
		list_init(&sh->free);
	}
	atomic_store(&t->used, 0);
	return OK;
}

void stick_table_free(struct stktable *t)
{
	int i;

	if (!t->shards)
		return;
	for (i = 0; i < t->nshards; i++) {
		pthread_mutex_destroy(&t->shards[i].lock);
		free(t->shards[i].slab);
		free(t->shards[i].buckets);
	}
	free(t->shards);
	free(t->srv_count);
	t->shards = NULL;
	t->srv_count = NULL;
}

static void arena_free_table(void *p)
{
	stick_table_free(p);
}

/* The slab and the buckets of a shard, on its first store (under its lock). */
static bool shard_ready(struct stick_shard *sh)
{
	uint32_t nb = 1, i;

	if (sh->slab)
		return true;
	if (!sh->cap)
		return false;
	while (nb < sh->cap)
		nb <<= 1;
	sh->slab = malloc(sh->esize * sh->cap);
	sh->buckets = calloc(nb, sizeof(*sh->buckets));
	if (!sh->slab || !sh->buckets) {
		free(sh->slab);
		free(sh->buckets);
		sh->slab = NULL;
		sh->buckets = NULL;
		return false;
	}
	sh->mask = nb - 1;
	for (i = 0; i < sh->cap; i++)
		list_add_tail(&sh->free, &((struct stick_entry *)(sh->slab + i * sh->esize))->lru);
	return true;
}

static void count_srv(struct stktable *t, int id, int delta)
{
	if (id >= 0 && id < t->srv_cap)
		atomic_fetch_add_explicit(&t->srv_count[id], delta, memory_order_relaxed);
}

static struct stick_entry *find(struct stick_shard *sh, uint64_t h, const uint8_t *key,
				uint16_t klen, struct stick_entry ***prevp)
{
	struct stick_entry **pp = &sh->buckets[h & sh->mask], *e;

	for (; (e = *pp); pp = &e->hnext)
		if (e->hash == h && e->klen == klen && !memcmp(e->key, key, klen)) {
			if (prevp)
				*prevp = pp;
			return e;
		}
	return NULL;
}

/* Unlinks e from its chain and the LRU and gives it back to the free list (under the lock). */
static void drop(struct stktable *t, struct stick_shard *sh, struct stick_entry *e)
{
	struct stick_entry **pp = &sh->buckets[e->hash & sh->mask];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	list_del(&e->lru);
	list_add_head(&sh->free, &e->lru);
	sh->n--;
	atomic_fetch_sub_explicit(&t->used, 1, memory_order_relaxed);
	count_srv(t, e->srv_id, -1);
}

/* Raises a flag the state file's writer clears. Read first: a flag already up is not written
 * again, so that the table's cache line is not bounced between the workers on every request. */
static void mark(atomic_bool *flag)
{
	if (!atomic_load_explicit(flag, memory_order_relaxed))
		atomic_store_explicit(flag, true, memory_order_relaxed);
}

static bool expired(const struct stick_entry *e, uint64_t now_ms)
{
	return e->exp_ms && e->exp_ms <= now_ms;
}

/* Drops the expired entries at the LRU tail: the least recently touched expire first. */
static void prune(struct stktable *t, struct stick_shard *sh, uint64_t now_ms)
{
	while (!list_empty(&sh->lru)) {
		struct stick_entry *e = list_last(&sh->lru, struct stick_entry, lru);

		if (!expired(e, now_ms))
			break;
		drop(t, sh, e);
	}
}

int stick_lookup(struct stktable *t, const uint8_t *key, uint16_t klen, uint64_t now_ms)
{
	return stick_lookup_seen(t, key, klen, now_ms, NULL);
}

int stick_lookup_seen(struct stktable *t, const uint8_t *key, uint16_t klen, uint64_t now_ms,
		      uint64_t *seen_ms)
{
	uint64_t h = hash_key(key, klen);
	struct stick_shard *sh = shard_of(t, h);
	struct stick_entry *e;
	int id = -1;

	pthread_mutex_lock(&sh->lock);
	if (sh->slab && (e = find(sh, h, key, klen, NULL))) {
		if (expired(e, now_ms)) {
			drop(t, sh, e);
		} else {
			id = e->srv_id;
			if (seen_ms)
				*seen_ms = e->seen_ms;
			e->seen_ms = MAX(e->seen_ms, now_ms);
			if (t->expire_ms) {
				e->exp_ms = now_ms + t->expire_ms;
				mark(&t->touched);
			}
			list_del(&e->lru);
			list_add_head(&sh->lru, &e->lru);
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return id;
}

int stick_store(struct stktable *t, const uint8_t *key, uint16_t klen, int srv_id, uint64_t now_ms)
{
	uint64_t h = hash_key(key, klen);
	struct stick_shard *sh = shard_of(t, h);
	struct stick_entry *e;

	if (klen > t->keylen)
		return ERR;
	pthread_mutex_lock(&sh->lock);
	if (!shard_ready(sh)) {
		pthread_mutex_unlock(&sh->lock);
		return ERR;
	}
	e = find(sh, h, key, klen, NULL);
	if (e) {
		list_del(&e->lru);
		if (e->srv_id != srv_id) {
			count_srv(t, e->srv_id, -1);
			count_srv(t, srv_id, 1);
			mark(&t->changed);
		} else {
			mark(&t->touched);
		}
	} else {
		prune(t, sh, now_ms);
		if (list_empty(&sh->free)) {
			/* full: the least recently used entry makes room */
			drop(t, sh, list_last(&sh->lru, struct stick_entry, lru));
			atomic_fetch_add_explicit(&t->evictions, 1, memory_order_relaxed);
		}
		e = list_first(&sh->free, struct stick_entry, lru);
		list_del(&e->lru);
		e->hash = h;
		e->klen = klen;
		memcpy(e->key, key, klen);
		e->hnext = sh->buckets[h & sh->mask];
		sh->buckets[h & sh->mask] = e;
		sh->n++;
		atomic_fetch_add_explicit(&t->used, 1, memory_order_relaxed);
		count_srv(t, srv_id, 1);
		mark(&t->changed);
	}
	e->srv_id = srv_id;
	e->exp_ms = t->expire_ms ? now_ms + t->expire_ms : 0;
	e->seen_ms = now_ms;
	list_add_head(&sh->lru, &e->lru);
	pthread_mutex_unlock(&sh->lock);
	return OK;
}

bool stick_remove(struct stktable *t, const uint8_t *key, uint16_t klen)
{
	uint64_t h = hash_key(key, klen);
	struct stick_shard *sh = shard_of(t, h);
	struct stick_entry *e = NULL;

	pthread_mutex_lock(&sh->lock);
	if (sh->slab && (e = find(sh, h, key, klen, NULL))) {
		drop(t, sh, e);
		mark(&t->changed);
	}
	pthread_mutex_unlock(&sh->lock);
	return e != NULL;
}

void stick_clear(struct stktable *t)
{
	int i;

	for (i = 0; i < t->nshards; i++) {
		struct stick_shard *sh = &t->shards[i];

		pthread_mutex_lock(&sh->lock);
		while (!list_empty(&sh->lru))
			drop(t, sh, list_first(&sh->lru, struct stick_entry, lru));
		pthread_mutex_unlock(&sh->lock);
	}
	mark(&t->changed);
}

unsigned stick_used(const struct stktable *t)
{
	return atomic_load_explicit(&t->used, memory_order_relaxed);
}

void stick_purge(struct stktable *t, uint64_t now_ms)
{
	int i;

	if (!t->expire_ms)
		return;
	for (i = 0; i < t->nshards; i++) {
		pthread_mutex_lock(&t->shards[i].lock);
		prune(t, &t->shards[i], now_ms);
		pthread_mutex_unlock(&t->shards[i].lock);
	}
}

/* The monotonic clock in ms, read fresh: the admin thread has no loop refreshing now_us. */
static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int stick_count_for(const struct server *srv)
{
	struct stktable *t = srv->be->stk.table;

	if (!t || !t->shards || srv->id >= t->srv_cap)
		return 0;
	stick_purge(t, mono_ms());
	return atomic_load_explicit(&t->srv_count[srv->id], memory_order_relaxed);
}

/* How far behind the most recent use an entry may sit in a shard's LRU order: the workers stamp
 * entries with their own cached clocks, which differ by a loop iteration at most. */
#define STICK_LRU_SLACK_MS 1000

int stick_count_recent(const struct server *srv, uint64_t now_ms, uint64_t idle_ms)
{
	struct stktable *t = srv->be->stk.table;
	uint64_t from = now_ms > idle_ms ? now_ms - idle_ms : 0;
	struct list *l;
	int i, n = 0;

	if (!idle_ms)
		return stick_count_for(srv);
	if (!t || !t->shards || srv->id >= t->srv_cap)
		return 0;
	for (i = 0; i < t->nshards; i++) {
		struct stick_shard *sh = &t->shards[i];

		pthread_mutex_lock(&sh->lock);
		/* most recent first: the walk stops at the entries used before the window */
		list_for_each(l, &sh->lru)
		{
			const struct stick_entry *e = list_entry(l, struct stick_entry, lru);

			if (e->seen_ms + STICK_LRU_SLACK_MS <= from)
				break;
			n += e->srv_id == srv->id && e->seen_ms > from && !expired(e, now_ms);
		}
		pthread_mutex_unlock(&sh->lock);
	}
	return n;
}

/* ---- keys ---- */

bool stick_key(const struct stktable *t, const struct sample *smp, uint8_t *key, uint16_t *klen)
{
	char tmp[64];
	size_t n;

	switch (t->type) {
	case STK_IP:
		if (smp->is_ip) {
			if (smp->family == AF_INET) {
				memset(key, 0, 10);
				key[10] = key[11] = 0xff;
				memcpy(key + 12, smp->ip, 4);
			} else {
				memcpy(key, smp->ip, 16);
			}
			*klen = 16;
			return true;
		}
		if (!smp->str || !smp->len || smp->len >= sizeof(tmp))
			return false;
		memcpy(tmp, smp->str, smp->len);
		tmp[smp->len] = '\0';
		return stick_key_text(t, tmp, key, klen);
	case STK_INTEGER:
		if (smp->is_ip)
			return false;
		if (smp->str) {
			if (!smp->len || smp->len >= sizeof(tmp))
				return false;
			memcpy(tmp, smp->str, smp->len);
			tmp[smp->len] = '\0';
			return stick_key_text(t, tmp, key, klen);
		}
		memcpy(key, &smp->num, 8);
		*klen = 8;
		return true;
	default:
		if (smp->is_ip || !smp->str) {
			n = sample_to_str(smp, tmp, sizeof(tmp));
			if (!n)
				return false;
			n = MIN(n, (size_t)t->keylen);
			memcpy(key, tmp, n);
		} else {
			if (!smp->len)
				return false;
			n = MIN((size_t)smp->len, (size_t)t->keylen);
			memcpy(key, smp->str, n);
		}
		*klen = (uint16_t)n;
		return true;
	}
}

bool stick_key_text(const struct stktable *t, const char *s, uint8_t *key, uint16_t *klen)
{
	char *end;
	long long v;
	size_t n;

	switch (t->type) {
	case STK_IP:
		if (inet_pton(AF_INET, s, key + 12) == 1) {
			memset(key, 0, 10);
			key[10] = key[11] = 0xff;
		} else if (inet_pton(AF_INET6, s, key) != 1) {
			return false;
		}
		*klen = 16;
		return true;
	case STK_INTEGER:
		errno = 0;
		v = strtoll(s, &end, 10);
		if (!*s || *end || errno)
			return false;
		memcpy(key, &v, 8);
		*klen = 8;
		return true;
	default:
		n = strlen(s);
		if (!n)
			return false;
		n = MIN(n, (size_t)t->keylen);
		memcpy(key, s, n);
		*klen = (uint16_t)n;
		return true;
	}
}

static const char *const type_names[] = {"ip", "integer", "string"};

static void key_text(const struct stktable *t, const struct stick_entry *e, struct sbuf *o)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char tmp[INET6_ADDRSTRLEN];
	long long v;
	uint16_t i;

	switch (t->type) {
	case STK_IP:
		if (!memcmp(e->key, v4mapped, 12))
			inet_ntop(AF_INET, e->key + 12, tmp, sizeof(tmp));
		else
			inet_ntop(AF_INET6, e->key, tmp, sizeof(tmp));
		sbuf_printf(o, "%s", tmp);
		break;
	case STK_INTEGER:
		memcpy(&v, e->key, 8);
		sbuf_printf(o, "%lld", v);
		break;
	default:
		/* a key comes from a client: blanks and control bytes are escaped */
		for (i = 0; i < e->klen; i++) {
			uint8_t ch = e->key[i];

			if (ch <= ' ' || ch >= 127 || ch == '\\')
				sbuf_printf(o, "\\x%02x", ch);
			else
				sbuf_put(o, (const char *)&ch, 1);
		}
	}
}

void stick_dump(struct stktable *t, bool entries, struct sbuf *o)
{
	uint64_t now = mono_ms();
	struct list *l;
	int i;

	stick_purge(t, now);
	sbuf_printf(o, "# table: %s, type: %s, size:%u, used:%u\n", t->name, type_names[t->type],
		    t->size, stick_used(t));
	if (!entries)
		return;
	for (i = 0; i < t->nshards; i++) {
		struct stick_shard *sh = &t->shards[i];

		pthread_mutex_lock(&sh->lock);
		list_for_each(l, &sh->lru)
		{
			struct stick_entry *e = list_entry(l, struct stick_entry, lru);
			const struct server *srv = NULL;

			if (e->srv_id >= 0 && e->srv_id < server_count(t->be))
				srv = t->be->srv[e->srv_id];
			sbuf_printf(o, "key=");
			key_text(t, e, o);
			sbuf_printf(
			    o, " server_id=%d server_name=%s exp=%llu\n", e->srv_id + 1,
			    srv ? srv->name : "-",
			    (unsigned long long)(e->exp_ms ? e->exp_ms - MIN(now, e->exp_ms) : 0));
		}
		pthread_mutex_unlock(&sh->lock);
	}
}

struct stktable *stick_table_by_name(const char *name)
{
	struct proxy *p = proxy_by_name(name, PR_CAP_BE);

	return p && p->stk.table && p->stk.table->shards ? p->stk.table : NULL;
}

/* ---- configuration ---- */

int stick_table_kw(struct cfg_ctx *c, int argc, char **argv)
{
	struct stktable *t;
	const char *why;
	uint32_t len = STICK_STR_LEN;
	bool has_len = false;
	int i;

	if (!(c->cur->cap & PR_CAP_BE)) {
		cfg_warn(c,
			 "'stick-table' in a frontend only serves track-sc counters, which are not "
			 "implemented; ignored");
		return OK;
	}
	if (c->cur->stk.table) {
		cfg_err(c, "'stick-table': only one table per backend");
		return ERR;
	}
	t = arena_alloc(&cfg_arena, sizeof(*t));
	t->name = c->cur->name;
	t->be = c->cur;
	t->type = 0xff;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "type")) {
			if (!val) {
				cfg_err(c,
					"'stick-table type' expects ip, ipv6, integer or string");
				return ERR;
			}
			if (!strcmp(val, "ip") || !strcmp(val, "ipv6")) {
				t->type = STK_IP;
			} else if (!strcmp(val, "integer")) {
				t->type = STK_INTEGER;
			} else if (!strcmp(val, "string")) {
				t->type = STK_STRING;
			} else if (!strcmp(val, "binary")) {
				cfg_err(
				    c, "'stick-table type binary' is not implemented (use string)");
				return ERR;
			} else {
				cfg_err(
				    c,
				    "'stick-table type' expects ip, ipv6, integer or string, not "
				    "'%s'",
				    val);
				return ERR;
			}
			i++;
			if (i + 1 < argc && !strcmp(argv[i + 1], "len")) {
				long v;

				if (i + 2 >= argc ||
				    cfg_parse_int(argv[i + 2], 1, STICK_STR_MAX, &v)) {
					cfg_err(c, "'stick-table ... len' expects 1 to %d",
						STICK_STR_MAX);
					return ERR;
				}
				len = (uint32_t)v;
				has_len = true;
				i += 2;
			}
		} else if (!strcmp(a, "size")) {
			if (!val || cfg_parse_size(val, &t->size, &why) || !t->size ||
			    t->size > STICK_SIZE_MAX) {
				cfg_err(
				    c,
				    "'stick-table size' expects a number of entries from 1 to %u "
				    "(k and m suffixes allowed)",
				    STICK_SIZE_MAX);
				return ERR;
			}
			i++;
		} else if (!strcmp(a, "expire")) {
			if (!val || cfg_parse_time(val, &t->expire_ms, &why)) {
				cfg_err(c, "'stick-table expire' expects a time (e.g. 30m)");
				return ERR;
			}
			i++;
		} else if (!strcmp(a, "peers") || !strcmp(a, "srvkey") || !strcmp(a, "write-to")) {
			if (!val) {
				cfg_err(c, "'stick-table %s' expects a value", a);
				return ERR;
			}
			cfg_warn(
			    c, "'stick-table %s' is accepted but not implemented; ignored%s", a,
			    !strcmp(a, "peers") ? " (the table is local to this process)" : "");
			i++;
		} else if (!strcmp(a, "store")) {
			if (!val) {
				cfg_err(c, "'stick-table store' expects data types");
				return ERR;
			}
			cfg_warn(c,
				 "'stick-table store %s': stored data (counters, rates) is not "
				 "implemented; the table only maps keys to servers",
				 val);
			i++;
		} else if (!strcmp(a, "nopurge") || !strcmp(a, "recv-only")) {
			cfg_warn(c, "'stick-table %s' is accepted but not implemented; ignored", a);
		} else {
			cfg_err(c,
				"'stick-table': unknown option '%s' (type, size, expire, peers, "
				"store, nopurge, srvkey)",
				a);
			return ERR;
		}
	}
	if (t->type == 0xff || !t->size) {
		cfg_err(c, "'stick-table' needs a 'type' and a 'size'");
		return ERR;
	}
	if (has_len && t->type != STK_STRING) {
		cfg_err(c, "'stick-table': 'len' only applies to type string");
		return ERR;
	}
	t->keylen = t->type == STK_IP ? 16 : t->type == STK_INTEGER ? 8 : (uint16_t)len;
	c->cur->stk.table = t;
	return OK;
}

int stick_kw(struct cfg_ctx *c, int argc, char **argv)
{
	struct stick_conf *sc = &c->cur->stk;
	struct stick_rule r = {0};
	const char *rest;
	char *err = NULL;
	int i;

	if (argc < 3) {
		cfg_err(
		    c, "'stick' expects on, match, store-request or store-response, then a sample");
		return ERR;
	}
	if (!strcmp(argv[1], "on"))
		r.kind = STKR_ON;
	else if (!strcmp(argv[1], "match"))
		r.kind = STKR_MATCH;
	else if (!strcmp(argv[1], "store-request"))
		r.kind = STKR_STORE_REQ;
	else if (!strcmp(argv[1], "store-response"))
		r.kind = STKR_STORE_RSP;
	else {
		cfg_err(c, "'stick %s': expects on, match, store-request or store-response",
			argv[1]);
		return ERR;
	}
	if (sample_expr_parse(argv[2], &r.expr, &rest, &err)) {
		cfg_err(c, "'stick %s': %s", argv[1], err);
		free(err);
		return ERR;
	}
	if (*rest) {
		cfg_err(c, "'stick %s': unexpected '%s' after the sample", argv[1], rest);
		return ERR;
	}
	for (i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "table")) {
			if (i + 1 >= argc) {
				cfg_err(c, "'stick %s ... table' expects a backend name", argv[1]);
				return ERR;
			}
			r.table_name = arena_strdup(&cfg_arena, argv[++i]);
		} else if (!strcmp(argv[i], "if") || !strcmp(argv[i], "unless")) {
			r.cond = acl_cond_parse(c, c->cur, argc - i, argv + i);
			if (!r.cond)
				return ERR;
			break;
		} else {
			cfg_err(c, "'stick %s': unexpected '%s' (table NAME, if COND, unless COND)",
				argv[1], argv[i]);
			return ERR;
		}
	}
	r.file = c->file;
	r.line = c->line;
	sc->rules = arena_grow(&cfg_arena, sc->rules, (size_t)sc->nrules, (size_t)sc->nrules + 1,
			       sizeof(r));
	sc->rules[sc->nrules++] = r;
	return OK;
}

int stick_validate(struct cfg_ctx *c, struct proxy *p)
{
	struct stick_conf *sc = &p->stk;
	int i, nerr = c->nerr;

	if (sc->table && !sc->table->shards) {
		if (stick_table_init(sc->table, MAX(p->srv_cap, server_count(p))) != OK) {
			cfg_err(c, "'%s': stick-table: out of memory", p->name);
			return ERR;
		}
		arena_on_free(&cfg_arena, arena_free_table, sc->table);
	}
	for (i = 0; i < sc->nrules; i++) {
		struct stick_rule *r = &sc->rules[i];
		const char *file = c->file;
		int line = c->line;

		c->file = r->file;
		c->line = r->line;
		if (r->table_name) {
			struct proxy *o = proxy_by_name(r->table_name, PR_CAP_BE);

			if (!o || !o->stk.table || o->disabled)
				cfg_err(c, "'stick': no stick-table in backend '%s'",
					r->table_name);
			else
				r->t = o->stk.table;
		} else if (!sc->table) {
			cfg_err(c,
				"'stick': backend '%s' has no stick-table (declare one, or name "
				"another backend's with 'table NAME')",
				p->name);
		} else {
			r->t = sc->table;
		}
		c->file = file;
		c->line = line;
	}
	return c->nerr > nerr ? ERR : OK;
}

/* ---- the request path ---- */

static uint64_t req_now_ms(void)
{
	return now_us / 1000;
}

static bool pending_has(const struct stick_txn *st, const struct stktable *t, bool moved_ok)
{
	int i;

	for (i = 0; i < st->n; i++)
		if (st->st[i].t == t && (moved_ok || !st->st[i].moved))
			return true;
	return false;
}

/* Keeps key for a store when the response arrives (only one per table, as HAProxy). */
static void pending_add(struct txn *txn, struct stktable *t, const uint8_t *key, uint16_t klen,
			bool moved)
{
	struct stick_txn *st = &txn->stk;

	if (st->n == STICK_MAX_PENDING || st->used + klen > STICK_TXN_KEYS ||
	    pending_has(st, t, true))
		return;
	memcpy(txn->stk_keys + st->used, key, klen);
	st->st[st->n].t = t;
	st->st[st->n].off = st->used;
	st->st[st->n].len = klen;
	st->st[st->n].moved = moved;
	st->n++;
	st->used = (uint16_t)(st->used + klen);
}

void stick_request(struct stream *s)
{
	struct proxy *be = s->be;
	struct txn *txn = s->txn;
	uint8_t key[STICK_STR_MAX];
	int i;

	for (i = 0; i < be->stk.nrules; i++) {
		const struct stick_rule *r = &be->stk.rules[i];
		struct sample smp;
		uint64_t seen = 0;
		uint16_t klen;
		int id;

		if (!(r->kind & STKR_ON) || !r->t || !r->t->shards)
			continue;
		/* A request already pinned (by a cookie or an earlier match) skips the matches. */
		if (!(r->kind & STKR_STORE_REQ) && (txn->flags & TX_CK_PINNED))
			continue;
		if (r->cond && !acl_cond_eval(r->cond, s))
			continue;
		if (!sample_fetch(s, &r->expr, &smp) || !stick_key(r->t, &smp, key, &klen))
			continue;
		if ((r->kind & STKR_MATCH) && !(txn->flags & TX_CK_PINNED) &&
		    (id = stick_lookup_seen(r->t, key, klen, req_now_ms(), &seen)) >= 0 &&
		    id < server_count(be)) {
			struct server *srv = be->srv[id];
			enum ck_verdict v = cookie_verdict(srv, (be->opts & PO_PERSIST) != 0,
							   seen * 1000);

			if (!txn->stk.srv)
				txn->stk.srv = srv;
			if (v == CKV_GO) {
				txn->stk.srv = srv;
				txn->flags |= TX_STK_PINNED | TX_CK_PINNED;
			} else {
				/* A user gone from a draining server no longer names it (the lookup
				 * just refreshed the entry): if the request fails it is balanced
				 * afresh, never brought back. */
				if (v == CKV_GONE) {
					stick_remove(r->t, key, klen);
					if (txn->stk.srv == srv)
						txn->flags |= TX_STK_DRAINED;
				}
				/* The user moves: the entry follows it to the server that answers.
				 */
				pending_add(txn, r->t, key, klen, true);
			}
		}
		if (r->kind & STKR_STORE_REQ)
			pending_add(txn, r->t, key, klen, false);
	}
}

void stick_response(struct stream *s, int tid)
{
	struct proxy *be = s->be;
	struct txn *txn = s->txn;
	struct server *srv = s->srv;
	uint8_t key[STICK_STR_MAX];
	uint64_t now = req_now_ms();
	const struct stktable *done[8];
	int i, ndone = 0;

	if (!srv)
		return;
	/* A user the cookie already reported is not counted twice. */
	if (txn->stk.srv && txn->stk.srv != srv && txn->stk.srv != txn->ck_srv)
		cookie_report_moved(txn->stk.srv, srv, (txn->flags & TX_STK_DRAINED) != 0, tid);
	for (i = 0; i < txn->stk.n; i++)
		stick_store(txn->stk.st[i].t, txn->stk_keys + txn->stk.st[i].off,
			    txn->stk.st[i].len, srv->id, now);
	for (i = 0; i < be->stk.nrules; i++) {
		const struct stick_rule *r = &be->stk.rules[i];
		struct sample smp;
		uint16_t klen;
		int k;

		if (r->kind != STKR_STORE_RSP || !r->t || !r->t->shards ||
		    pending_has(&txn->stk, r->t, false))
			continue;
		/* only the first store-response that stores counts for a table */
		for (k = 0; k < ndone && done[k] != r->t; k++)
			;
		if (k < ndone)
			continue;
		if (r->cond && !acl_cond_eval(r->cond, s))
			continue;
		if (!sample_fetch(s, &r->expr, &smp) || !stick_key(r->t, &smp, key, &klen))
			continue;
		stick_store(r->t, key, klen, srv->id, now);
		if (ndone < (int)ARRAY_SIZE(done))
			done[ndone++] = r->t;
	}
	txn->stk.n = 0;
	txn->stk.used = 0;
}

/* ---- the state file (src/admin/state.c) ---- */

void stick_foreach(struct stktable *t, stick_entry_fn fn, void *arg)
{
	uint64_t now = mono_ms();
	struct list *l;
	int i;

	for (i = 0; i < t->nshards; i++) {
		struct stick_shard *sh = &t->shards[i];

		pthread_mutex_lock(&sh->lock);
		prune(t, sh, now);
		/* oldest first: stick_restore() then rebuilds the same LRU order */
		for (l = sh->lru.prev; l != &sh->lru; l = l->prev) {
			const struct stick_entry *e = list_entry(l, struct stick_entry, lru);

			fn(arg, e->key, e->klen, e->srv_id, e->exp_ms ? e->exp_ms - now : 0);
		}
		pthread_mutex_unlock(&sh->lock);
	}
}

int stick_restore(struct stktable *t, const uint8_t *key, uint16_t klen, int srv_id,
		  uint64_t left_ms)
{
	uint64_t now = mono_ms(), h = hash_key(key, klen);
	struct stick_shard *sh = shard_of(t, h);
	struct stick_entry *e;

	if (stick_store(t, key, klen, srv_id, now) != OK)
		return ERR;
	/* a saved lifetime is kept, never lengthened to a full "expire" */
	if (t->expire_ms && left_ms && left_ms < t->expire_ms) {
		pthread_mutex_lock(&sh->lock);
		e = find(sh, h, key, klen, NULL);
		if (e)
			e->exp_ms = now + left_ms;
		pthread_mutex_unlock(&sh->lock);
	}
	return OK;
}

static const struct cfg_kw stick_kws[] = {
	{"stick-table", CFG_S_NODEF, stick_table_kw, 0, NULL},
	{"stick", CFG_S_BE_ONLY, stick_kw, 0, NULL},
	CFG_KW_END,
};

const struct cfg_module stick_module = {
	.name = "stick",
	.keywords = stick_kws,
};

const struct proxy_hooks stick_hooks = {
	.check_backend = stick_validate,
};


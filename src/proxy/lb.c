/* Balancing algorithms. Per-thread state (round-robin positions, hash maps) lives in struct
 * be_tctx, so picking a server takes no lock; server load (cur_sess) is read from the shared
 * atomics. A backend has a handful to a few dozen servers, so the O(n) scans below cost less than
 * keeping a tree in sync across threads. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/common.h>
#include <keel/http.h>
#include <keel/lb.h>
#include <keel/proxy.h>
#include <keel/sample.h>

uint64_t lb_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	/* FNV alone clusters on short similar keys; the murmur3 finaliser spreads them. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static int srv_weight(const struct server *s)
{
	return atomic_load_explicit(&s->eweight, memory_order_relaxed);
}

/* Backup servers only take traffic when no active server is usable. */
static bool use_backups(const struct proxy *be)
{
	int i;

	for (i = 0; i < be->nsrv; i++)
		if (!be->srv[i]->backup && srv_usable(be->srv[i]))
			return false;
	return true;
}

static bool candidate(const struct proxy *be, const struct server *s, bool backups, int first_backup)
{
	if (!srv_usable(s) || s->backup != backups)
		return false;
	/* Without "option allbackups" only the first usable backup serves. */
	if (backups && !(be->opts & PO_ALLBACKUPS) && s->id != first_backup)
		return false;
	return true;
}

static int first_usable_backup(const struct proxy *be)
{
	int i;

	for (i = 0; i < be->nsrv; i++)
		if (be->srv[i]->backup && srv_usable(be->srv[i]))
			return i;
	return -1;
}

/* Rebuilds the per-thread schedule when the servers' states changed: the smooth weighted
 * round-robin sequence over usable servers (weights 5,1,1 give a a b a c a a), one full cycle
 * long. Every thread builds the same schedule from the same shared state, and a shared atomic
 * position walks it, so the order is global across threads without any lock. */
static void refresh_map(struct proxy *be, struct be_tctx *bt)
{
	unsigned gen = atomic_load_explicit(&be->srv_gen, memory_order_acquire);
	/* One snapshot of the count: "add server" may publish more while we build (they bump
	 * srv_gen after publishing, so the next pick rebuilds). */
	int nsrv = atomic_load_explicit(&be->nsrv, memory_order_acquire);
	int64_t cw[nsrv > 0 ? nsrv : 1];
	int64_t total = 0;
	bool backups;
	int fb, i;
	uint32_t k, cycle = 0;

	if (gen == bt->gen && bt->map)
		return;
	bt->gen = gen;
	backups = use_backups(be);
	fb = backups ? first_usable_backup(be) : -1;
	bt->backups_only = backups;
	bt->nmap = 0;
	for (i = 0; i < nsrv; i++) {
		cw[i] = 0;
		if (candidate(be, be->srv[i], backups, fb)) {
			total += srv_weight(be->srv[i]);
			cycle += (uint32_t)srv_weight(be->srv[i]);
		}
	}
	if (cycle > bt->mapcap) {
		uint16_t *m = realloc(bt->map, cycle * sizeof(*m));

		if (!m)
			return;
		bt->map = m;
		bt->mapcap = cycle;
	}
	for (k = 0; k < cycle; k++) {
		int best = -1;

		for (i = 0; i < nsrv; i++) {
			if (!candidate(be, be->srv[i], backups, fb))
				continue;
			cw[i] += srv_weight(be->srv[i]);
			if (best < 0 || cw[i] > cw[best])
				best = i;
		}
		cw[best] -= total;
		bt->map[bt->nmap++] = (uint16_t)best;
	}
}

/* Walks the schedule from the shared position, skipping full servers and the one to avoid. */
static struct server *pick_roundrobin(struct proxy *be, struct be_tctx *bt,
				      const struct server *avoid)
{
	uint32_t k;

	refresh_map(be, bt);
	for (k = 0; k < bt->nmap; k++) {
		unsigned pos = atomic_fetch_add_explicit(&be->rr_seq, 1, memory_order_relaxed);
		struct server *s = be->srv[bt->map[pos % bt->nmap]];

		if (!srv_full(s) && s != avoid && srv_usable(s))
			return s;
	}
	return NULL;
}

/* a is less loaded than b, relative to weights: a.cur / a.w < b.cur / b.w */
static bool less_loaded(const struct server *a, const struct server *b)
{
	int64_t ca = atomic_load_explicit(&a->cur_sess, memory_order_relaxed);
	int64_t cb = atomic_load_explicit(&b->cur_sess, memory_order_relaxed);

	return (ca + 1) * srv_weight(b) < (cb + 1) * srv_weight(a);
}

static struct server *pick_leastconn(struct proxy *be, struct be_tctx *bt,
				     const struct server *avoid)
{
	struct server *best = NULL;
	bool backups = use_backups(be);
	int fb = backups ? first_usable_backup(be) : -1;
	int i, n = be->nsrv;
	uint32_t start = n ? bt->rr_pos++ % (uint32_t)n : 0;

	/* Rotating the starting point spreads ties instead of piling them on the first server. */
	for (i = 0; i < n; i++) {
		struct server *s = be->srv[(start + (uint32_t)i) % (uint32_t)n];

		if (!candidate(be, s, backups, fb) || srv_full(s) || s == avoid)
			continue;
		if (!best || less_loaded(s, best))
			best = s;
	}
	return best;
}

static uint64_t rnd_next(void)
{
	uint64_t x = proxy_thread->rnd;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	proxy_thread->rnd = x;
	return x;
}

static struct server *pick_weighted_random(struct proxy *be, struct be_tctx *bt,
					   const struct server *avoid)
{
	uint32_t k, tries;

	refresh_map(be, bt);
	if (!bt->nmap)
		return NULL;
	for (tries = 0; tries < 2 * bt->nmap + 2; tries++) {
		struct server *s;

		k = (uint32_t)(rnd_next() % bt->nmap);
		s = be->srv[bt->map[k]];
		if (!srv_full(s) && s != avoid && srv_usable(s))
			return s;
	}
	/* Unlucky draws (most weight on full or avoided servers): scan from a random point. */
	k = (uint32_t)(rnd_next() % bt->nmap);
	for (tries = 0; tries < bt->nmap; tries++) {
		struct server *s = be->srv[bt->map[(k + tries) % bt->nmap]];

		if (!srv_full(s) && s != avoid && srv_usable(s))
			return s;
	}
	return NULL;
}

static struct server *pick_random(struct proxy *be, struct be_tctx *bt, const struct server *avoid)
{
	/* Power of two choices: two weighted draws, keep the less loaded. */
	struct server *a = pick_weighted_random(be, bt, avoid);
	struct server *b = pick_weighted_random(be, bt, avoid);

	if (!a || !b)
		return a ? a : b;
	return less_loaded(b, a) ? b : a;
}

static struct server *pick_first(struct proxy *be, const struct server *avoid)
{
	bool backups = use_backups(be);
	int fb = backups ? first_usable_backup(be) : -1;
	int i;

	for (i = 0; i < be->nsrv; i++) {
		struct server *s = be->srv[i];

		if (candidate(be, s, backups, fb) && !srv_full(s) && s != avoid)
			return s;
	}
	return NULL;
}

static int chash_cmp(const void *a, const void *b)
{
	const struct chash_pt *x = a, *y = b;

	return x->h < y->h ? -1 : x->h > y->h;
}

void lb_build_ring(struct proxy *be)
{
	struct chash *ch;
	uint32_t n = 0;
	int i, k, nsrv = atomic_load(&be->nsrv);

	if (!(be->cap & PR_CAP_BE) || be->hash_type != HASH_CONSISTENT || !nsrv)
		return;
	ch = arena_alloc(&cfg_arena, sizeof(*ch));
	for (i = 0; i < nsrv; i++)
		if (!atomic_load(&be->srv[i]->deleted))
			n += (uint32_t)be->srv[i]->weight * 16u;
	ch->pts = arena_alloc(&cfg_arena, (n ? n : 1) * sizeof(*ch->pts));
	ch->n = 0;
	/* Points depend on the server's name, not its position: adding or removing a
	 * server only moves the keys that land on its own points. */
	for (i = 0; i < nsrv; i++) {
		const struct server *s = be->srv[i];

		if (atomic_load(&s->deleted))
			continue;
		for (k = 0; k < s->weight * 16; k++) {
			char key[160];
			int kl = snprintf(key, sizeof(key), "%s#%d", s->name, k);

			ch->pts[ch->n].h = lb_hash(key, (size_t)kl);
			ch->pts[ch->n].srv = (uint16_t)i;
			ch->n++;
		}
	}
	qsort(ch->pts, ch->n, sizeof(*ch->pts), chash_cmp);
	/* Filled before it is published; a ring it replaces stays allocated (arena) until exit,
	 * since a worker may still be walking it. */
	atomic_store_explicit(&be->chash, ch, memory_order_release);
}

void lb_build_rings(void)
{
	struct list *l;

	list_for_each(l, &keel_proxies)
		lb_build_ring(list_entry(l, struct proxy, list));
}

struct server *lb_hash_pick(struct proxy *be, struct be_tctx *bt, uint64_t h)
{
	const struct chash *ch = atomic_load_explicit(&be->chash, memory_order_acquire);

	if (be->hash_type == HASH_CONSISTENT && ch && ch->n) {
		bool backups = use_backups(be);
		int fb = backups ? first_usable_backup(be) : -1;
		uint32_t lo = 0, hi = ch->n, k;

		while (lo < hi) {
			uint32_t mid = (lo + hi) / 2;

			if (ch->pts[mid].h < h)
				lo = mid + 1;
			else
				hi = mid;
		}
		/* Walk clockwise to the first usable server. */
		for (k = 0; k < ch->n; k++) {
			struct server *s = be->srv[ch->pts[(lo + k) % ch->n].srv];

			if (candidate(be, s, backups, fb))
				return s;
		}
		return NULL;
	}
	refresh_map(be, bt);
	if (!bt->nmap)
		return NULL;
	return be->srv[bt->map[h % bt->nmap]];
}

bool lb_hash_key(struct stream *s, struct proxy *be, uint64_t *h)
{
	const struct http_head *rq = s->txn->req_head;
	struct sample smp;
	struct sample_expr e = {0};

	switch (be->lb) {
	case LB_SOURCE:
		if (s->sess->addr.sa.sa_family == AF_INET)
			*h = lb_hash(&s->sess->addr.in.sin_addr, 4);
		else
			*h = lb_hash(&s->sess->addr.in6.sin6_addr, 16);
		return true;
	case LB_URI:
		if (!rq)
			return false;
		if (be->uri_whole)
			*h = lb_hash(http_ptr(rq, rq->uri), rq->uri.len);
		else
			*h = lb_hash(http_ptr(rq, rq->path), rq->path.len);
		return true;
	case LB_HDR:
		e.fetch = SMP_HDR;
		break;
	case LB_URL_PARAM:
		e.fetch = SMP_URL_PARAM;
		break;
	default:
		return false;
	}
	e.arg = be->lb_arg;
	e.arglen = be->lb_arglen;
	if (!sample_fetch(s, &e, &smp) || !smp.len)
		return false;
	*h = lb_hash(smp.str, smp.len);
	return true;
}

struct server *lb_pick(struct stream *s, struct be_tctx *bt, const struct server *avoid)
{
	struct proxy *be = s->be;

	switch (be->lb) {
	case LB_STATIC_RR:
		/* Same schedule as roundrobin: weights only change at configuration time. */
		return pick_roundrobin(be, bt, avoid);
	case LB_LEASTCONN:
		return pick_leastconn(be, bt, avoid);
	case LB_RANDOM:
		return pick_random(be, bt, avoid);
	case LB_FIRST:
		return pick_first(be, avoid);
	case LB_SOURCE:
	case LB_URI:
	case LB_HDR:
	case LB_URL_PARAM:
		/* No key (header absent...): fall back to round-robin, as HAProxy does. A retry
		 * (avoid set) also leaves the hash to reach another server. */
		if (!avoid && s->txn && (s->txn->flags & TX_HAS_HASH))
			return lb_hash_pick(be, bt, s->txn->lb_hash);
		return pick_roundrobin(be, bt, avoid);
	case LB_ROUNDROBIN:
	default:
		return pick_roundrobin(be, bt, avoid);
	}
}

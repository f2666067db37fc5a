/* The stats page's history: one ring of samples per frontend, backend and server.
 *
 * Writer: only the health tick on worker 0 (history_tick()). Readers: the stats page on any
 * worker (history_read()). Each ring is a seqlock (Boehm, "Can seqlocks get along with
 * programming language memory models?"): the writer makes seq odd, writes the samples, makes it
 * even again; a reader copies the ring between two reads of seq and retries when they differ or
 * are odd. Every shared field is an atomic accessed relaxed, with the fences giving the order, so
 * there is no data race in the C11 sense. A sample is taken every 5 s, so a retry is rare and the
 * second try succeeds.
 *
 * The table of rings is built by the first tick (the configuration is complete by then) and
 * published through an atomic pointer; it is freed by history_deinit() after the workers joined.
 * Rings are sorted by (object, kind) and found by binary search. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/health.h>
#include <keel/history.h>
#include <keel/proxy-t.h>
#include <keel/proxy.h>
#include <keel/worker.h>


struct hist_cell {
	atomic_uint req, err, p99_us;
};

struct hist_ring {
	const void *obj;
	enum hist_kind kind;
	atomic_uint seq;              /* odd while the writer updates the ring */
	atomic_int n;                 /* valid samples */
	atomic_int pos;               /* where the next sample goes */
	_Atomic uint64_t last_wall_ms;
	struct hist_cell s[HIST_SAMPLES];
	/* writer only */
	uint64_t prev_req, prev_err;
	bool primed;                  /* prev_* hold a reading */
};

struct hist_table {
	int n;
	struct hist_ring *r;
};

static _Atomic(struct hist_table *) table;
static int ticks; /* writer only */

static int key_cmp(const void *o, enum hist_kind k, const struct hist_ring *r)
{
	if ((uintptr_t)o != (uintptr_t)r->obj)
		return (uintptr_t)o < (uintptr_t)r->obj ? -1 : 1;
	return (int)k - (int)r->kind;
}

static int ring_cmp(const void *a, const void *b)
{
	const struct hist_ring *x = a;

	return key_cmp(x->obj, x->kind, b);
}

static void add(struct hist_ring *r, int *n, const void *obj, enum hist_kind kind)
{
	r[*n].obj = obj;
	r[*n].kind = kind;
	(*n)++;
}

static struct hist_table *build(void)
{
	struct hist_table *t = calloc(1, sizeof(*t));
	struct list *l;
	int cap = 0, i;

	if (!t)
		return NULL;
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		cap += 2 + p->nsrv;
	}
	/* Filled before it is published: the plain writes (and qsort's copies) race with nobody. */
	t->r = calloc((size_t)MAX(cap, 1), sizeof(*t->r));
	if (!t->r) {
		free(t);
		return NULL;
	}
	list_for_each(l, &keel_proxies) {
		struct proxy *p = list_entry(l, struct proxy, list);

		if (p->cap & PR_CAP_FE)
			add(t->r, &t->n, p, HIST_FE);
		if (!(p->cap & PR_CAP_BE))
			continue;
		add(t->r, &t->n, p, HIST_BE);
		for (i = 0; i < p->nsrv; i++)
			add(t->r, &t->n, p->srv[i], HIST_SRV);
	}
	qsort(t->r, (size_t)t->n, sizeof(*t->r), ring_cmp);
	return t;
}

static uint64_t rd(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* Cumulative requests and errors of an object, and its current p99. */
static void reading(const struct hist_ring *r, uint64_t *req, uint64_t *err, uint32_t *p99)
{
	const struct counters *c;
	int t, k;

	*req = *err = 0;
	*p99 = 0;
	if (r->kind == HIST_SRV) {
		const struct server *srv = r->obj;

		c = srv->ctr;
		if (srv->hl)
			*p99 = atomic_load_explicit(&srv->hl->p99_us, memory_order_relaxed);
	} else {
		const struct proxy *p = r->obj;

		c = p->ctr;
		if (r->kind == HIST_BE && p->hl)
			*p99 = atomic_load_explicit(&p->hl->p99_us, memory_order_relaxed);
	}
	if (!c)
		return;
	for (t = 0; t < keel_nworkers; t++) {
		switch (r->kind) {
		case HIST_FE:
			*req += rd(&c[t].req_tot);
			*err += rd(&c[t].rsp[5]);
			break;
		case HIST_BE:
			/* A backend counts answers (its servers' and keel's own 5xx), not requests. */
			for (k = 0; k < 6; k++)
				*req += rd(&c[t].rsp[k]);
			*err += rd(&c[t].rsp[5]);
			break;
		case HIST_SRV:
			*req += rd(&c[t].req_tot);
			*err += rd(&c[t].rsp[5]) + rd(&c[t].failed_conn) + rd(&c[t].failed_rsp);
			break;
		}
	}
}

static uint32_t delta32(uint64_t now, uint64_t before)
{
	uint64_t d = now >= before ? now - before : 0;

	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void sample(struct hist_ring *r)
{
	uint64_t req, err;
	uint32_t p99;
	unsigned seq;
	int pos, n;

	reading(r, &req, &err, &p99);
	if (!r->primed) {
		/* The first reading only sets the base: the ring starts with the next interval. */
		r->prev_req = req;
		r->prev_err = err;
		r->primed = true;
		return;
	}
	seq = atomic_load_explicit(&r->seq, memory_order_relaxed);
	atomic_store_explicit(&r->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	pos = atomic_load_explicit(&r->pos, memory_order_relaxed);
	n = atomic_load_explicit(&r->n, memory_order_relaxed);
	atomic_store_explicit(&r->s[pos].req, delta32(req, r->prev_req), memory_order_relaxed);
	atomic_store_explicit(&r->s[pos].err, delta32(err, r->prev_err), memory_order_relaxed);
	atomic_store_explicit(&r->s[pos].p99_us, p99, memory_order_relaxed);
	atomic_store_explicit(&r->pos, (pos + 1) % HIST_SAMPLES, memory_order_relaxed);
	atomic_store_explicit(&r->n, MIN(n + 1, HIST_SAMPLES), memory_order_relaxed);
	atomic_store_explicit(&r->last_wall_ms, wall_us / 1000, memory_order_relaxed);
	atomic_store_explicit(&r->seq, seq + 2, memory_order_release);
	r->prev_req = req;
	r->prev_err = err;
}

void history_tick(void)
{
	struct hist_table *t = atomic_load_explicit(&table, memory_order_relaxed);
	int i;

	if (!t) {
		t = build();
		if (!t)
			return; /* out of memory: no history, the page says so; try again next tick */
		for (i = 0; i < t->n; i++)
			sample(&t->r[i]); /* the base readings */
		atomic_store_explicit(&table, t, memory_order_release);
		ticks = 0;
		return;
	}
	if (++ticks < HIST_EVERY_TICKS)
		return;
	ticks = 0;
	for (i = 0; i < t->n; i++)
		sample(&t->r[i]);
}

bool history_read(const void *obj, enum hist_kind kind, struct hist_view *v)
{
	struct hist_table *t = atomic_load_explicit(&table, memory_order_acquire);
	struct hist_ring *r = NULL;
	int lo = 0, hi, tries, i;

	v->n = 0;
	v->interval_ms = HIST_EVERY_TICKS * HEALTH_TICK_MS;
	v->last_wall_ms = 0;
	if (!t)
		return false;
	hi = t->n - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2, c = key_cmp(obj, kind, &t->r[mid]);

		if (!c) {
			r = &t->r[mid];
			break;
		}
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	if (!r)
		return false;
	/* The writer holds seq odd for a few microseconds every 5 s: a handful of tries is plenty. */
	for (tries = 0; tries < 1000; tries++) {
		unsigned s1 = atomic_load_explicit(&r->seq, memory_order_acquire), s2;
		int n, pos;

		if (s1 & 1) {
			sched_yield();
			continue;
		}
		n = atomic_load_explicit(&r->n, memory_order_relaxed);
		pos = atomic_load_explicit(&r->pos, memory_order_relaxed);
		v->last_wall_ms = atomic_load_explicit(&r->last_wall_ms, memory_order_relaxed);
		n = MIN(MAX(n, 0), HIST_SAMPLES);
		for (i = 0; i < n; i++) {
			/* oldest first: the slot after the newest when full, else slot 0 */
			int k = (pos - n + i + 2 * HIST_SAMPLES) % HIST_SAMPLES;

			v->s[i].req = atomic_load_explicit(&r->s[k].req, memory_order_relaxed);
			v->s[i].err = atomic_load_explicit(&r->s[k].err, memory_order_relaxed);
			v->s[i].p99_us = atomic_load_explicit(&r->s[k].p99_us, memory_order_relaxed);
		}
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&r->seq, memory_order_relaxed);
		if (s1 == s2) {
			v->n = n;
			return n > 0;
		}
	}
	return false;
}

void history_deinit(void)
{
	struct hist_table *t = atomic_exchange(&table, NULL);

	if (!t)
		return;
	free(t->r);
	free(t);
	ticks = 0;
}

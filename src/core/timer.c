/* Binary min-heap of timers. Each timer remembers its slot so that moving or removing it is a sift,
 * not a search: O(log n) for every operation, independent of how many connections are idle. */
#include <stdlib.h>

#include <keel/common.h>
#include <keel/loop.h>
#include <keel/timer.h>

static void heap_set(struct timer_heap *th, uint32_t i, struct timer *t)
{
	th->h[i] = t;
	t->idx = i + 1;
}

static void sift_up(struct timer_heap *th, uint32_t i)
{
	struct timer *t = th->h[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (th->h[parent]->expire <= t->expire)
			break;
		heap_set(th, i, th->h[parent]);
		i = parent;
	}
	heap_set(th, i, t);
}

static void sift_down(struct timer_heap *th, uint32_t i)
{
	struct timer *t = th->h[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= th->n)
			break;
		if (c + 1 < th->n && th->h[c + 1]->expire < th->h[c]->expire)
			c++;
		if (t->expire <= th->h[c]->expire)
			break;
		heap_set(th, i, th->h[c]);
		i = c;
	}
	heap_set(th, i, t);
}

int timer_heap_arm(struct timer_heap *th, struct timer *t, uint64_t expire)
{
	if (t->idx) {
		uint64_t old = t->expire;
		uint32_t i = t->idx - 1;

		t->expire = expire;
		if (expire < old)
			sift_up(th, i);
		else if (expire > old)
			sift_down(th, i);
		return OK;
	}
	if (th->n == th->cap) {
		uint32_t cap = th->cap ? th->cap * 2 : 256;
		struct timer **h = realloc(th->h, cap * sizeof(*h));

		if (!h)
			return ERR;
		th->h = h;
		th->cap = cap;
	}
	t->expire = expire;
	th->h[th->n] = t;
	t->idx = th->n + 1;
	th->n++;
	sift_up(th, th->n - 1);
	return OK;
}

void timer_heap_disarm(struct timer_heap *th, struct timer *t)
{
	uint32_t i;
	struct timer *last;

	if (!t->idx)
		return;
	i = t->idx - 1;
	BUG_ON(i >= th->n || th->h[i] != t);
	t->idx = 0;
	th->n--;
	if (i == th->n)
		return;
	last = th->h[th->n];
	heap_set(th, i, last);
	if (i > 0 && th->h[(i - 1) / 2]->expire > last->expire)
		sift_up(th, i);
	else
		sift_down(th, i);
}

uint64_t timer_heap_next(const struct timer_heap *th)
{
	return th->n ? th->h[0]->expire : UINT64_MAX;
}

unsigned timer_heap_run(struct timer_heap *th, uint64_t now)
{
	unsigned fired = 0, budget = th->n * 4 + 64;

	/* A callback that keeps re-arming a timer for a time already due would keep this loop
	 * going forever: the budget lets periodic timers catch up but bounds one run; what is
	 * left fires at the next loop iteration. */
	while (th->n && th->h[0]->expire <= now && budget--) {
		struct timer *t = th->h[0];

		timer_heap_disarm(th, t);
		fired++;
		t->cb(t);
	}
	return fired;
}

void timer_heap_free(struct timer_heap *th)
{
	free(th->h);
	th->h = NULL;
	th->n = th->cap = 0;
}

void timer_arm(struct timer *t, uint64_t expire)
{
	/* The heap only grows when a new connection arms its first timer; failing that is fatal. */
	if (timer_heap_arm(&tl->timers, t, expire) != OK) {
		fprintf(stderr, "keel: out of memory growing the timer heap\n");
		abort();
	}
}

void timer_disarm(struct timer *t)
{
	timer_heap_disarm(&tl->timers, t);
}

/* Timers: arm, re-arm and disarm in O(log n); expiry in O(log n) per fired timer. */
#ifndef KEEL_TIMER_H
#define KEEL_TIMER_H

#include <stdbool.h>

#include <keel/timer-t.h>

static inline void timer_init(struct timer *t, timer_cb cb)
{
	t->expire = 0;
	t->idx = 0;
	t->cb = cb;
}

static inline bool timer_armed(const struct timer *t)
{
	return t->idx != 0;
}

/* Arms (or moves) t to fire at expire. Returns ERR only when the heap cannot grow. */
int timer_heap_arm(struct timer_heap *th, struct timer *t, uint64_t expire);
void timer_heap_disarm(struct timer_heap *th, struct timer *t);
/* Earliest deadline, or UINT64_MAX when nothing is armed. */
uint64_t timer_heap_next(const struct timer_heap *th);
/* Fires every timer whose deadline is <= now; a callback may re-arm or disarm any timer. Returns
 * the number fired. */
unsigned timer_heap_run(struct timer_heap *th, uint64_t now);
void timer_heap_free(struct timer_heap *th);

/* The same operations on the calling thread's loop heap. */
void timer_arm(struct timer *t, uint64_t expire);
void timer_disarm(struct timer *t);

#endif

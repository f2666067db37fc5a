/* Timer types: a binary min-heap of deadlines, one heap per event loop. */
#ifndef KEEL_TIMER_T_H
#define KEEL_TIMER_T_H

#include <stdint.h>

struct timer;
typedef void (*timer_cb)(struct timer *t);

struct timer {
	uint64_t expire; /* monotonic microseconds */
	uint32_t idx;    /* position in the heap + 1; 0 when not armed */
	timer_cb cb;
};

struct timer_heap {
	struct timer **h;
	uint32_t n, cap;
};

#endif

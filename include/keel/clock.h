/* Time: a monotonic microsecond clock cached once per loop iteration, and the matching wall clock. */
#ifndef KEEL_CLOCK_H
#define KEEL_CLOCK_H

#include <stdint.h>

/* Monotonic time in microseconds, refreshed by clock_update() at each loop wake-up. Reading the
 * cached value costs nothing; code that needs a fresh reading calls clock_update() first. */
extern __thread uint64_t now_us;
/* Wall-clock time in microseconds since the epoch, refreshed together with now_us. */
extern __thread uint64_t wall_us;

void clock_update(void);

static inline uint64_t now_ms(void)
{
	return now_us / 1000;
}

/* A duration in ms (how timeouts are configured) in us (how deadlines are kept). */
static inline uint64_t ms_to_us(uint32_t ms)
{
	return (uint64_t)ms * 1000u;
}

/* Converts a monotonic instant of this thread to wall-clock microseconds. */
static inline uint64_t clock_to_wall(uint64_t mono_us)
{
	return wall_us - (now_us - mono_us);
}

#endif

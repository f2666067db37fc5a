/* Cached clocks: one clock_gettime() pair per loop iteration instead of one per use. */
#include <time.h>

#include <keel/clock.h>

__thread uint64_t now_us;
__thread uint64_t wall_us;

void clock_update(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	clock_gettime(CLOCK_REALTIME, &ts);
	wall_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

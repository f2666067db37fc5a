/* Stats history types (include/keel/history.h): the samples behind the stats page's sparklines. */
#ifndef KEEL_HISTORY_T_H
#define KEEL_HISTORY_T_H

#include <stdint.h>

#define HIST_EVERY_TICKS 10 /* health ticks (HEALTH_TICK_MS) between samples: 5 s */
#define HIST_SAMPLES 120    /* 10 minutes */

enum hist_kind {
	HIST_FE = 0, /* a proxy's frontend side (struct proxy) */
	HIST_BE,     /* a proxy's backend side (struct proxy) */
	HIST_SRV,    /* a server (struct server) */
};

struct hist_sample {
	uint32_t req;    /* requests finished in the interval (frontend: received) */
	uint32_t err;    /* 5xx answers, connection and response errors in the interval */
	uint32_t p99_us; /* TTFB p99 at the end of the interval (0: too few samples, frontends) */
};

/* A consistent copy of one ring, oldest sample first. */
struct hist_view {
	int n;                  /* valid samples in s[0..n-1] */
	uint32_t interval_ms;   /* time between samples */
	uint64_t last_wall_ms;  /* when s[n-1] was taken (ms since the epoch) */
	struct hist_sample s[HIST_SAMPLES];
};

#endif

/* A short history for the stats page's sparklines: per frontend, backend and server, one sample
 * every HIST_EVERY_TICKS health ticks (5 s) over the last HIST_SAMPLES samples (10 minutes):
 * requests, errors and the TTFB p99 of the interval.
 *
 * One writer, the health tick on worker 0 (history_tick()); any worker reads (history_read()).
 * Each ring is a seqlock: the reader copies it and retries when the writer was in the middle of
 * an update. Protocol: docs/internals/health.md, "History". */
#ifndef KEEL_HISTORY_H
#define KEEL_HISTORY_H

#include <stdbool.h>

#include <keel/history-t.h>

/* Called by health_tick() on worker 0 at every tick: takes a sample every HIST_EVERY_TICKS (the
 * first call allocates the rings, after the configuration is complete). */
void history_tick(void);
/* Copies the ring of obj (a struct proxy for HIST_FE/HIST_BE, a struct server for HIST_SRV) into
 * v. Returns false (v->n = 0) when there is no history yet or obj is unknown. Any thread. */
bool history_read(const void *obj, enum hist_kind kind, struct hist_view *v);
/* Frees the rings (after the workers stopped). */
void history_deinit(void);

#endif

/* The worker threads' context (src/core/worker.c). */
#ifndef KEEL_WORKER_T_H
#define KEEL_WORKER_T_H

#include <stdbool.h>

#include <keel/loop-t.h>

/* A worker thread, as every layer sees it: which worker it is, its event loop, and whether it is
 * stopping. The layers above keep their own per-thread state (the proxy layer's struct
 * proxy_thread, the health checks' runner). */
struct worker {
	int id;           /* 0..keel_nworkers-1: index of the per-thread counters, rings, histograms */
	struct loop loop; /* its event loop; loop.id == id */
	bool stopping;    /* soft stop: accepts nothing new, closes idle connections */
};

#endif

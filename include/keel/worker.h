/* Worker threads: how many there are, their loops, and the calling worker's context. The
 * process layer creates them (src/process/process.c); every layer may read this_worker. */
#ifndef KEEL_WORKER_H
#define KEEL_WORKER_H

#include <stdint.h>

#include <keel/worker-t.h>

/* The number of worker threads: the size of every per-thread array (counters, rings,
 * histograms). Set before the runtime is set up (proxy_runtime_init()). */
extern int keel_nworkers;
/* The workers, keel_nworkers of them once started; NULL before (unit tests run without). */
extern struct worker *keel_workers;
/* The calling thread's worker; NULL on the main, admin, logger and state threads. */
extern __thread struct worker *this_worker;
/* Wall-clock second at which the process started (stats pages, "show info"). */
extern uint64_t keel_start_wall;

/* Allocates the keel_nworkers workers and their loops (buffers of bufsize bytes). OK or ERR with
 * *err (malloc'd). */
int workers_init(uint32_t bufsize, char **err);
/* Frees them (after every worker thread was joined). */
void workers_destroy(void);
/* Makes w the calling thread's worker (this_worker) and its loop the thread's loop. */
void worker_bind(struct worker *w);
/* Sets wake flags on every worker's loop (loop_signal()): a no-op before they exist. Any
 * thread. */
void workers_signal(unsigned flags);

#endif

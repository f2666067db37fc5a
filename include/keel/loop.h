/* Event loop: edge-triggered epoll, timers, tasklets. */
#ifndef KEEL_LOOP_H
#define KEEL_LOOP_H

#include <keel/loop-t.h>

/* The calling thread's loop (NULL outside worker threads and before loop_bind()). */
extern __thread struct loop *tl;

/* Creates the epoll set, the wake-up eventfd and the pools. Returns OK or ERR with *err set. */
int loop_init(struct loop *l, int id, uint32_t bufsize, char **err);
void loop_bind(struct loop *l);
/* Registers fd once, edge-triggered for both directions: no epoll_ctl() is needed afterwards. */
int loop_add(struct fdh *h, int fd);
/* Closes h's fd (epoll forgets it by itself) and marks h so pending events are ignored. */
void loop_close(struct fdh *h);
/* Removes h's fd from this thread's epoll set. Needed before loop_close() when the socket
 * stays open elsewhere (shared with another process or thread, passed on with SCM_RIGHTS):
 * epoll forgets a socket only once every descriptor of it is closed. */
void loop_forget(struct fdh *h);
void tasklet_init(struct tasklet *t, void (*cb)(struct tasklet *t));
/* Queues t to run at the end of this iteration (no-op when already queued). */
void tasklet_wake(struct tasklet *t);
void tasklet_cancel(struct tasklet *t);
/* Sets wake flags on another (or the same) loop and wakes it. Safe from any thread. */
void loop_signal(struct loop *l, unsigned flags);
/* Returns obj to pool at the end of the current iteration: events still pending in this batch may
 * point at it, so its memory must stay valid (and unused) until then. */
void loop_defer_free(struct pool *p, void *obj);
/* Whether the calling worker is handling this iteration's epoll events; its tasklets, timers
 * and the other threads are not. Sessions write only outside it (session.c, send_later()). */
static inline bool loop_io_phase(void)
{
	return tl && tl->io_phase;
}
/* Runs until l->quit is set. */
void loop_run(struct loop *l);
void loop_destroy(struct loop *l);

#endif

/* Event loop types: one loop per worker thread, each with its own epoll set, timers and pools. */
#ifndef KEEL_LOOP_T_H
#define KEEL_LOOP_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <keel/list.h>
#include <keel/pool-t.h>
#include <keel/timer-t.h>

struct kpipe;

/* Anything registered with epoll starts with an fdh: epoll's data pointer points at it. A handler
 * whose fd was closed during the current batch has fd == -1 and is skipped. */
struct fdh {
	void (*cb)(struct fdh *h, uint32_t events);
	int fd;
};

/* Work deferred to the end of the current loop iteration: frees, and wake-ups of objects that must
 * not be run from inside another object's callback. */
struct tasklet {
	struct list list;
	void (*cb)(struct tasklet *t);
};

/* Reasons another thread wakes a loop (bit flags, set atomically, read and cleared by the loop). */
enum loop_wake {
	LOOP_WAKE_QUEUE = 1u << 0, /* a server slot was freed or a server came back: dequeue */
	LOOP_WAKE_STOP = 1u << 1,  /* soft stop: close listeners, finish in-flight work */
	LOOP_WAKE_HALT = 1u << 2,  /* hard stop: close everything now */
	LOOP_WAKE_RECLAIM = 1u << 3, /* maxconn: another worker with a client waiting has no
				      * connection of its own to close (session_reclaim_ask()) */
};

struct loop {
	int id; /* worker index, 0..nbthread-1 */
	int epfd;
	struct fdh wake;
	atomic_uint wake_flags;
	void (*on_wake)(struct loop *l, unsigned flags);
	struct timer_heap timers;
	struct list tasklets;
	struct pool buf_pool;
	struct pool sbuf_pool; /* stream buffers (buf_grow()), set up on first use */
	struct kpipe *pipes;   /* empty pipes for splice(2) (pipe.h) */
	uint32_t npipes;
	char *scratch; /* bufsize bytes of per-thread scratch, valid within one callback */
	uint32_t bufsize;
	bool quit;
	bool io_phase; /* the epoll events of this iteration are being handled (loop_run()) */
	uint64_t iter; /* iterations run: tells the events of this epoll batch from later ones */
	pthread_t thread;
	/* objects released during this iteration, freed once every pending event is handled */
	struct deferred_free {
		struct pool *pool;
		void *obj;
	} *dfree;
	uint32_t ndfree, dfreecap;
};

#endif

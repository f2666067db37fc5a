/* Per-thread backend state: balancing positions, the local queue, idle server connections. Only
 * the owning worker thread touches it, so none of it needs a lock. */
#ifndef KEEL_BACKEND_T_H
#define KEEL_BACKEND_T_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/http-t.h>
#include <keel/list.h>
#include <keel/loop-t.h>
#include <keel/pool-t.h>

struct sess_rc_lists;

struct srv_tctx {
	struct list idle; /* idle struct sconn, most recently used first */
	uint32_t nidle;
};

struct be_tctx {
	struct srv_tctx *srv; /* one per server of the backend */
	struct list queue;    /* struct session waiting for a slot, oldest first */
	uint32_t nqueued;
	unsigned gen;         /* the proxy's srv_gen the table below was built for */
	uint16_t *map;        /* the weighted schedule of usable servers (round-robin, map hashing) */
	uint32_t nmap, mapcap;
	uint32_t rr_pos;
	bool backups_only;
};

/* A point on the consistent-hashing ring (shared, read-only once built). */
struct chash_pt {
	uint64_t h;
	uint16_t srv;
};

struct chash {
	struct chash_pt *pts;
	uint32_t n;
};

/* The proxy layer's per-thread state (its worker: this_worker, include/keel/worker.h). */
struct proxy_thread {
	struct be_tctx *be;      /* indexed by proxy id */
	int nbe;
	struct list listeners;   /* struct listener */
	struct list sessions;    /* struct session */
	uint32_t nsess;
	struct sess_rc_lists *rc; /* indexed by proxy id: the sessions closed first when
				  * connections run out (session_reclaim()) */
	uint64_t rc_idle, rc_heads; /* closed by session_reclaim() since the last log line */
	struct timer rc_log;     /* writes that line, at most once a second */
	struct pool txn_pool, sconn_pool; /* (the muxes keep their connections' pools) */
	struct http_hdr *hdrs;   /* tune.http.maxhdr header slots for head analysis */
	struct http_hdr *hdrs2;
	uint64_t rnd;            /* xorshift state for random balancing */
	struct timer resume;     /* retries paused listeners (maxconn, EMFILE) */
	struct timer connpass_retry; /* soft stop: the new process was behind (session.c) */
};

#endif

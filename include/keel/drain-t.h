/* Drain types: what a server in admin drain does with its sticky users ("drain-idle",
 * "drain-deadline", src/sticky/drain.c). The drain itself (its start and its limits) is recorded
 * by health.c, the one place where the admin state changes; the request path reads it with atomic
 * loads; docs/internals/health.md, "Drain and sticky users", describes the protocol. */
#ifndef KEEL_DRAIN_T_H
#define KEEL_DRAIN_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Default "drain-idle": a sticky user of a draining server not seen for this long is gone
 * (docs/configuration.md explains the choice). */
#define DRAIN_IDLE_DEF_MS 600000
/* The cookie users one drain tracks per server at most; the others are not counted and count as
 * not seen since the drain began. 2^17 slots of 16 bytes (2 MB) at 3/4 load. */
#define DRAIN_USERS_MAX 98304
#define DRAIN_USERS_MIN_SLOTS 256 /* first allocation of a drain's set (4 kB) */

/* One tracked cookie user. */
struct drain_slot {
	uint64_t fp;	  /* the user's fingerprint, 0: empty slot */
	uint64_t seen_us; /* its last request to the server (monotonic) */
};

/* The cookie users of a draining server that came back during the drain: an open-addressing
 * hash set (linear probing, backward-shift deletion) of fingerprints with their last request.
 * Only requests pinned to the server while it drains take its lock, and the operators' views. */
struct drain_users {
	pthread_mutex_t lock;
	struct drain_slot *slot; /* cap slots (a power of two), NULL until a drain's first user */
	uint32_t cap, n;
	uint32_t max;		 /* users at most (DRAIN_USERS_MAX; tests set it lower) */
	uint64_t untracked;	 /* users met while the set was full, this drain */
	atomic_bool full_logged; /* the "set is full" line of this drain was written */
};

/* A server's drain. health.c writes start_us and the limits before it publishes the admin state
 * DRAIN, and clears start_us when the state leaves DRAIN. */
struct srv_drain {
	_Atomic uint64_t start_us; /* monotonic, when this drain began; 0: not draining */
	atomic_uint idle_ms;	   /* this drain's drain-idle (0: sticky users are kept for ever) */
	atomic_uint deadline_ms;   /* this drain's drain-deadline (0: none) */
	atomic_bool deadline_logged; /* the tick logged that the deadline passed */
	struct drain_users users;    /* cookie users seen during the drain */
};

/* A drain's own limits ("set server B/S state drain idle T deadline T"); an unset one keeps the
 * server's configured value. */
struct drain_limits {
	bool has_idle, has_deadline;
	uint32_t idle_ms, deadline_ms;
};

/* What operators see of a server's sticky users (drain_sticky_count()). */
struct sticky_count {
	int users; /* users still bound: stick entries and cookie users seen, within drain-idle
		    * for a draining server */
	int64_t pending_ms; /* a draining server with cookie persistence: for how long cookie users
			     * not seen since the drain began may still come back and stay (0: none
			     * can, -1: for ever, drain-idle 0 without a deadline) */
};

#endif

/* Server selection, slots (maxconn), queues and server connections. */
#ifndef KEEL_BACKEND_H
#define KEEL_BACKEND_H

#include <stdbool.h>

#include <keel/backend-t.h>
#include <keel/session-t.h>

/* Whether a server may receive new traffic (admin ready, operationally up, weight > 0). */
bool srv_usable(const struct server *s);
bool srv_full(const struct server *s);
/* Whether a server of be other than srv is usable and has a free slot (a retry can go there). */
bool backend_has_other(const struct proxy *be, const struct server *srv);
/* Takes a slot on srv if its maxconn allows; returns false when full. */
bool srv_take_slot(struct server *srv);
/* Gives a slot back and wakes the queues when someone waits. */
void srv_put_slot(struct server *srv);

/* Picks a server for s (not avoid, if another is usable). Returns NULL when none is usable. The
 * slot is not taken. */
struct server *lb_pick(struct session *s, struct be_tctx *bt, const struct server *avoid);
/* Builds the consistent-hashing rings (start-up, main thread). */
void lb_build_rings(void);
/* (Re)builds one backend's consistent-hashing ring and publishes it (release); the previous ring
 * stays allocated until exit. "add server" and "del server" call it (admin thread). */
void lb_build_ring(struct proxy *be);
uint64_t lb_hash(const void *data, size_t len);
/* The balancing key of s's request for hash-based algorithms (source, uri, hdr, url_param).
 * Needs the parsed request head; false when the algorithm has no key or the key is absent. */
bool lb_hash_key(struct session *s, struct proxy *be, uint64_t *h);
/* Exposed for unit tests: chooses among a backend's servers for a hash. */
struct server *lb_hash_pick(struct proxy *be, struct be_tctx *bt, uint64_t h);

/* Assigns a server and a slot to s: OK (s->srv set), AGAIN (queued) or ERR (no server). */
int backend_assign(struct session *s);
/* Same, for a given server (retry without redispatch). */
int backend_assign_pinned(struct session *s, struct server *srv);
/* Removes s from its queue, if queued. */
void backend_dequeue(struct session *s);
/* Serves this thread's queues (after a wake-up or an enqueue). */
void backend_process_queues(void);

/* Connects s to s->srv, reusing an idle connection when possible. OK, or ERR (s->txn->err_why). */
int backend_connect(struct session *s);
/* Detaches the server connection from s: back to the idle pool when reusable, else closed. */
void backend_release_conn(struct session *s, bool reusable);
/* Closes every idle server connection of this thread (soft stop). */
void backend_close_idle(void);
/* Closes this thread's idle connections to deleted servers and to replaced addresses. */
void backend_purge_stale(void);

/* Per-thread context set-up and tear-down. */
int thread_ctx_init(struct thread_ctx *t, struct loop *l, char **err);
void thread_ctx_destroy(struct thread_ctx *t);

/* The session layer's entry points: from a safe point, and from an fd callback. */
void session_wake(struct session *s);
void session_run(struct session *s);

#endif

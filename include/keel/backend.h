/* Server selection, slots (maxconn), queues and server connections. */
#ifndef KEEL_BACKEND_H
#define KEEL_BACKEND_H

#include <stdbool.h>

#include <keel/backend-t.h>
#include <keel/stream-t.h>

/* Whether a server may receive new traffic (admin ready, operationally up, weight > 0). */
bool srv_usable(const struct server *s);
bool srv_full(const struct server *s);
/* Whether a server of be other than srv is usable and has a free slot (a retry can go there). */
bool backend_has_other(const struct proxy *be, const struct server *srv);
/* Takes a slot on srv if its maxconn allows; returns false when full. */
bool srv_take_slot(struct server *srv);
/* Gives a slot back and wakes the queues when someone waits. */
void srv_put_slot(struct server *srv);

/* Assigns a server and a slot to s: OK (s->srv set), AGAIN (queued) or ERR (no server). */
int backend_assign(struct stream *s);
/* Same, for a given server (retry without redispatch). */
int backend_assign_pinned(struct stream *s, struct server *srv);
/* Removes s from its queue, if queued. */
void backend_dequeue(struct stream *s);
/* Serves this thread's queues (after a wake-up or an enqueue). */
void backend_process_queues(void);

/* Connects s to s->srv, reusing an idle connection when possible. OK, or ERR (s->txn->err_why). */
int backend_connect(struct stream *s);
/* Detaches the server connection from s: back to the idle pool when reusable, else closed. */
void backend_release_conn(struct stream *s, bool reusable);
/* srv sent bytes after the end of a response: counted as a failed response and a protocol error
 * against its health, and logged (once a second at most). The caller never reuses the
 * connection. */
void backend_stray_bytes(struct server *srv);
/* Closes every idle server connection of this thread (soft stop). */
void backend_close_idle(void);
/* Closes this thread's idle connections to deleted servers and to replaced addresses. */
void backend_purge_stale(void);

/* The calling worker's proxy state (NULL outside the workers). */
extern __thread struct proxy_thread *proxy_thread;
/* Sets up t for the calling worker (this_worker) and makes it proxy_thread; tear-down. */
int proxy_thread_init(struct proxy_thread *t, char **err);
void proxy_thread_destroy(struct proxy_thread *t);

#endif

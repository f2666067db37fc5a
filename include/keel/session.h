/* Sessions: the per-connection state machine (src/proxy/session.c). */
#ifndef KEEL_SESSION_H
#define KEEL_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>

#include <keel/session-t.h>

/* Client connections open in the process, all threads (maxconn, the stats pages). */
extern atomic_int keel_actconn;

/* Takes ownership of an accepted client socket. */
void session_accept(struct listener *li, int fd, const union sockaddr_u *addr);
/* The only ways to change s->rq, s->ss and s->rs: each checks the transition against its table
 * in session.c (BUG_ON() on one that is not listed there). */
void sess_set_rq(struct session *s, enum req_state to);
void sess_set_ss(struct session *s, enum srv_state to);
void sess_set_rs(struct session *s, enum rsp_state to);
/* Runs s's state machine from a safe point (end of the current loop iteration). */
void session_wake(struct session *s);
/* Runs s's state machine now (from an fd callback: the client's or its server connection's). */
void session_run(struct session *s);
/* Answers with keel's (or the errorfile's) page for status and closes the connection after it. */
void session_error(struct session *s, int status, const char *why, const char *term);
/* Answers with a response built on the heap (ownership passes to the session). */
void session_reply_heap(struct session *s, char *data, uint32_t len, int status, bool close);
/* Soft stop: closes idle client connections, marks the others to close after their response. */
void session_soft_stop(void);
/* Hard stop: closes every session of this thread now. */
void session_kill_all(void);

/* Writes the request log line. */
void session_log(struct session *s);

#endif

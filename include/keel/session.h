/* Sessions: client connections, whatever their mux (src/proxy/session.c). */
#ifndef KEEL_SESSION_H
#define KEEL_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>

#include <keel/session-t.h>

/* Client connections open in the process, all threads (maxconn, the stats pages). */
extern atomic_int keel_actconn;

/* Sets up sess, which its mux allocated zeroed, for the client socket fd accepted on li: its
 * addresses, its connection with the bind line's transport and the mux's event handler cb, and
 * the counts (maxconn, the frontend's connections). OK, or ERR (fd left open for the caller). */
int session_init(struct session *sess, const struct mux_ops *mux, struct listener *li, int fd,
		 const union sockaddr_u *addr, void (*cb)(struct fdh *, uint32_t));
/* Closes sess's connection and forgets it (the mux frees the memory). */
void session_free(struct session *sess);
/* Sets up the calling worker's session list and reclaim lists (proxy_thread_init():
 * proxy_thread is set); frees them. OK or ERR (out of memory). */
int session_thread_init(void);
void session_thread_exit(void);

/* Puts sess in class rc (enum sess_rc, what closing it would cost its client): its mux calls it
 * when that changes (it may leave a session whose head ended in RC_HEAD: mux_ops.reclaim
 * tells). A session entering a class goes to the end of that class's list, stamped now; one
 * already in it keeps its place. O(1). */
void session_move_rc(struct session *sess, enum sess_rc rc);
static inline void session_set_rc(struct session *sess, enum sess_rc rc)
{
	if (sess->rc != rc)
		session_move_rc(sess, rc);
}

/* Connections ran out (maxconn): closes up to n of this thread's sessions that have no request
 * in progress, to make room for new ones. Idle keep-alive connections go first, the longest idle
 * first; then connections whose request head is incomplete, the oldest head first (a connection
 * that sent nothing counts from its accept); none idle for less than 1 s or with a head started
 * less than 100 ms ago. fe: only that frontend's sessions (its own maxconn
 * is reached), or NULL: any frontend's (the global maxconn). Each close goes through the mux
 * (mux_ops.reclaim), which may refuse. Counted per frontend and logged (at most a line a second
 * per thread). Returns how many were closed; 0 when none could be; AGAIN when none was
 * closed but the mux refused some (busy, or with bytes not read yet: they left the lists, and
 * a call at the next loop iteration goes further). */
int session_reclaim(struct proxy *fe, int n);
/* For a worker with a client waiting whose own connections are all busy (session_reclaim()
 * returned 0): asks the other workers to close one of theirs (fe: of that frontend, NULL: of
 * any), so that a slot frees for it. Any thread. */
void session_reclaim_ask(struct proxy *fe);
/* A worker's part of what was asked (LOOP_WAKE_RECLAIM): closes what it can of it, by the same
 * policy; what it cannot close is dropped (the asker asks again while its client waits). */
void session_reclaim_asked(void);

/* Stops this thread's sessions: soft, those with nothing in progress go to the new process when
 * a reload started one (connpass.h), the others are left to their mux (idle ones close, the
 * others finish); hard, every one closes now. session_stop(): the soft stop of one, which its
 * mux calls again when its request ended during the stop. */
void session_stop_all(bool hard);
void session_stop(struct session *sess);
/* Whether a response on sess must close its connection because of a soft stop: no new process
 * can take the connection after it. */
bool session_close_on_stop(const struct session *sess);

#endif

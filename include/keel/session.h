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
/* Stops this thread's sessions: soft, those with nothing in progress go to the new process when
 * a reload started one (connpass.h), the others are left to their mux (idle ones close, the
 * others finish); hard, every one closes now. session_stop(): the soft stop of one, which its
 * mux calls again when its request ended during the stop. */
void session_stop_all(bool hard);
void session_stop(struct session *sess);
/* Whether a response on sess must close its connection because of a soft stop: no new process
 * can take the connection after it. */
bool session_close_on_stop(const struct session *sess);
/* Sets up this thread's session list (proxy_thread_init()). */
void session_thread_init(void);

#endif

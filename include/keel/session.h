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
/* Stops this thread's sessions: soft, each mux closes its idle connections and lets the others
 * finish; hard, every one closes now. */
void session_stop_all(bool hard);

#endif

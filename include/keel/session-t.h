/* Session types. A session is one client connection: its socket and transport, the mux that
 * turns its bytes into streams (include/keel/stream-t.h), and what its streams share. */
#ifndef KEEL_SESSION_T_H
#define KEEL_SESSION_T_H

#include <netinet/in.h>
#include <stdint.h>

#include <keel/conn-t.h>
#include <keel/list.h>

struct listener;
struct mux_ops;
struct proxy;

union sockaddr_u {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct session {
	struct conn cli;            /* the client's socket and transport */
	const struct mux_ops *mux;  /* HTTP/1 (mux-h1.c) */
	struct listener *li;
	struct proxy *fe;
	uint64_t t_accept, t_idle;  /* monotonic us: accepted, last became idle (keep-alive) */
	uint64_t wall_accept;
	uint32_t nreq;              /* requests started on it */
	union sockaddr_u addr;      /* client */
	union sockaddr_u local;     /* where the client connected */
	struct list list;           /* in the thread's session list (for soft stop) */
};

#endif

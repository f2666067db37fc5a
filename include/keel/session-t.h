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

/* What closing a session would cost a client when connections run out (maxconn): its mux says
 * which class it is in (session_set_rc()), session_reclaim() closes the cheapest first. */
enum sess_rc {
	RC_BUSY = 0, /* a request in progress (at a server, its response being sent, a lingering
		      * close, a tunnel): never closed to make room */
	RC_IDLE,     /* keep-alive between requests, nothing of the next one read: closed first */
	RC_HEAD,     /* a request head still incomplete, or nothing sent since the accept: closed
		      * once no idle one is left, the oldest head first (a mux may leave a session
		      * here once its head ended: its reclaim op then refuses) */
};

/* A thread's sessions of one frontend that may be closed when connections run out, each list
 * ordered by the time its sessions entered it (oldest first). */
struct sess_rc_lists {
	struct list idle;  /* RC_IDLE */
	struct list heads; /* RC_HEAD */
};

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
	uint64_t t_ready;           /* its transport's handshake done (TLS); 0 before */
	uint64_t wall_accept;
	uint32_t nreq;              /* requests started on it */
	uint8_t rc;                 /* enum sess_rc */
	uint64_t t_rc;              /* monotonic us: when it entered its rc class */
	struct list rc_list;        /* in one list of rcl, or none (RC_BUSY) */
	struct sess_rc_lists *rcl;  /* its frontend's lists in its worker */
	union sockaddr_u addr;      /* client */
	union sockaddr_u local;     /* where the client connected */
	struct list list;           /* in the thread's session list (for soft stop) */
};

#endif

/* Connections: a socket, the transport that moves its bytes, and what is known of its state. A
 * client connection (a session's) and a server connection (struct sconn) are both one. */
#ifndef KEEL_CONN_T_H
#define KEEL_CONN_T_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <keel/loop-t.h>

/* What is known of a connection's socket. Readiness (RD_READY, WR_READY) is edge-triggered: set
 * by an epoll event, cleared by the transport when it proves the direction drained or full. */
enum conn_flags {
	CF_RD_READY = 1u << 0, /* epoll said readable and we have not drained it yet */
	CF_WR_READY = 1u << 1, /* writable: the last write did not hit EAGAIN */
	CF_EOF = 1u << 2,      /* the peer will send nothing more */
	CF_ERROR = 1u << 3,    /* socket error (reset...) */
	CF_SHUTW = 1u << 4,    /* we shut down our sending side */
	CF_CONNECTED = 1u << 5,/* server side: connect() completed */
	CF_RDHUP = 1u << 6,    /* the peer shut down its sending side: read until EOF */
};

struct conn;
struct kpipe;

/* A transport: how bytes move between a connection's socket and keel's buffers. Raw TCP is the
 * first (src/core/xprt-raw.c); TLS adds another, selected by the bind or server line. Every
 * operation is non-blocking and keeps the readiness flags true (include/keel/conn.h gives the
 * contract of each). An operation a transport cannot do is NULL. */
struct xprt_ops {
	const char *name;
	/* Sets up the transport's state of a new connection (c->xprt_ctx) from conf, the bind or
	 * server line's settings; NULL: none. OK or ERR. */
	int (*init)(struct conn *c, void *conf);
	ssize_t (*recv)(struct conn *c, void *buf, size_t len);
	ssize_t (*send)(struct conn *c, const void *buf, size_t len);
	/* Zero-copy: socket -> pipe, pipe -> socket (splice(2)); NULL when bytes must be seen. */
	ssize_t (*splice_in)(struct conn *c, struct kpipe *p, size_t len);
	ssize_t (*splice_out)(struct conn *c, struct kpipe *p, size_t len);
	/* Whether bytes wait to be read, without reading them. */
	int (*peek)(struct conn *c);
	void (*shutw)(struct conn *c);
	/* Completes the transport's own exchange before data (TLS handshake); NULL: none. */
	int (*handshake)(struct conn *c);
	/* Frees the transport's state; the socket itself is closed by conn_close(). */
	void (*close)(struct conn *c);
	/* Whether all of the transport's state is in the socket, so that another process can
	 * go on with it (raw TCP; not TLS, whose keys are in our memory). */
	bool movable;
};

struct conn {
	struct fdh h;                /* the socket and the loop callback of its owner */
	uint16_t flags;              /* enum conn_flags */
	const struct xprt_ops *xprt;
	void *xprt_ctx;              /* the transport's state (NULL for raw TCP) */
	struct list wait;            /* in its transport's queue of connections waiting for a
				      * turn (TLS: costly handshake steps, xprt-ssl.c) */
};

#endif

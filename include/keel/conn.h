/* Connections and their transports (src/core/conn.c, src/core/xprt-raw.c). The stream and the
 * muxes move bytes only through these functions, never with recv()/send() on a descriptor, so
 * that a transport (TLS) slides under them without a branch in their code. */
#ifndef KEEL_CONN_H
#define KEEL_CONN_H

#include <stdbool.h>
#include <sys/epoll.h>

#include <keel/conn-t.h>

/* Raw TCP: the transport of every connection without TLS. */
extern const struct xprt_ops xprt_raw;

/* Sets up c for the accepted or connecting socket fd with transport x (its settings: conf), and
 * registers it with the calling thread's loop (cb: the owner's event handler). OK, or ERR (fd
 * left open, nothing else held). */
int conn_init(struct conn *c, int fd, const struct xprt_ops *x, void *conf,
	      void (*cb)(struct fdh *, uint32_t));

/* Folds epoll events into c's flags (the owner's event handler calls it first). */
static inline void conn_events(struct conn *c, uint32_t events)
{
	if (events & EPOLLIN)
		c->flags |= CF_RD_READY;
	if (events & EPOLLRDHUP)
		c->flags |= CF_RD_READY | CF_RDHUP;
	if (events & EPOLLOUT)
		c->flags |= CF_WR_READY;
	if (events & (EPOLLERR | EPOLLHUP))
		c->flags |= CF_ERROR | CF_RD_READY;
}

/* The outcome of a non-blocking connect() once the socket turned writable or failed: 0 when
 * connected, else the errno value (ECONNREFUSED...). */
int conn_connect_error(struct conn *c);
/* Frees the transport's state and closes the socket; pending events for it are then ignored. */
void conn_close(struct conn *c);

/* Reads up to len bytes. Returns the count (> 0; a short read clears CF_RD_READY unless the
 * peer half-closed), 0 when nothing can be read now (CF_RD_READY cleared unless interrupted),
 * or ERR when the peer closed (CF_EOF) or failed (CF_ERROR). */
static inline ssize_t conn_recv(struct conn *c, void *buf, size_t len)
{
	return c->xprt->recv(c, buf, len);
}

/* Writes up to len bytes. Returns the count (> 0; a short write clears CF_WR_READY), 0 when
 * nothing can be written now (CF_WR_READY cleared unless interrupted), or ERR when the write
 * failed: no flag is set, the caller decides what the failure means for it. */
static inline ssize_t conn_send(struct conn *c, const void *buf, size_t len)
{
	return c->xprt->send(c, buf, len);
}

/* Whether c's transport can move bytes through a pipe without copying them (splice(2)). */
static inline bool conn_can_splice(const struct conn *c)
{
	return c->xprt->splice_in && c->xprt->splice_out;
}

/* Moves up to len bytes from c's socket into p (does not update p->len). Returns the count,
 * 0 when nothing moved now (CF_RD_READY cleared when p is empty: only then does that prove the
 * socket drained), or ERR when the peer closed (CF_EOF) or failed (CF_ERROR). */
static inline ssize_t conn_splice_in(struct conn *c, struct kpipe *p, size_t len)
{
	return c->xprt->splice_in(c, p, len);
}

/* Moves up to len bytes from p to c's socket (does not update p->len). Returns the count (fewer
 * than len clears CF_WR_READY), 0 when the socket is full (CF_WR_READY cleared) or the call
 * was interrupted, or ERR on failure (no flag set, as conn_send()). */
static inline ssize_t conn_splice_out(struct conn *c, struct kpipe *p, size_t len)
{
	return c->xprt->splice_out(c, p, len);
}

/* Whether bytes wait to be read on c: 1 yes, 0 no, ERR when the peer closed (CF_EOF). */
static inline int conn_peek(struct conn *c)
{
	return c->xprt->peek(c);
}

/* Completes c's transport handshake (TLS) before any data: OK when done or when the transport
 * has none, AGAIN while it waits for the socket (readiness flags cleared as for a read or a
 * write), ERR when it failed (CF_ERROR). Cheap once done: callers ask before each read. */
static inline int conn_handshake(struct conn *c)
{
	return c->xprt->handshake ? c->xprt->handshake(c) : 0;
}

/* Shuts down c's sending side (CF_SHUTW). */
static inline void conn_shutw(struct conn *c)
{
	c->xprt->shutw(c);
}

#endif

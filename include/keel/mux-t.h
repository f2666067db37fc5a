/* Muxes: what turns a client connection's bytes into streams and the streams' responses back
 * into bytes (docs/internals/architecture.md, "The objects of a request"). HTTP/1 is the first
 * (src/proxy/mux-h1.c): one stream at a time per connection. HTTP/2 adds another, with many. */
#ifndef KEEL_MUX_T_H
#define KEEL_MUX_T_H

#include <stdbool.h>

struct listener;
struct session;
struct stream;
union sockaddr_u;

/* A mux's operations. The stream calls the client-facing ones from its steps (stream.c); the
 * listener calls accept; the worker calls stop; session_reclaim() calls reclaim. A stream sees
 * its client only through these and through s->cflags, which the mux keeps true for it (CF_EOF:
 * the client sends nothing more on this stream; CF_ERROR: the client side is gone; CF_SHUTW:
 * nothing more goes to it). */
struct mux_ops {
	const char *name;
	/* Whether snd() sends a spliced response body from its pipe as it is (splice(2)): HTTP/1
	 * does, a mux that frames the body cannot. */
	bool splice;
	/* Takes an accepted client socket: creates the session (and, for HTTP/1, its stream).
	 * Returns it, or NULL when it could not (the socket is then closed). */
	struct session *(*accept)(struct listener *li, int fd, const union sockaddr_u *addr);
	/* Brings the client's bytes for s into s->req (HTTP/1: reads the socket), and starts a
	 * request when its first byte arrives. Returns whether anything happened. */
	bool (*rcv)(struct stream *s);
	/* Moves what s has for the client on its way: the reply, s->rsp between out and fwd, the
	 * pipe of a spliced body. Returns whether anything happened. */
	bool (*snd)(struct stream *s);
	/* Shuts the client's direction of s (a tunnel's server side ended: CF_SHUTW). */
	void (*shutw)(struct stream *s);
	/* s's transaction is over, its response sent: keep_alive says whether the client may send
	 * another request on it (HTTP/1: the next request, or a lingering close). */
	void (*end)(struct stream *s, bool keep_alive);
	/* Releases the client side of s once the stream closed (stream_close()): HTTP/1 closes
	 * the connection and frees it at the end of the loop iteration. */
	void (*close)(struct stream *s);
	/* Soft stop (hard: close now) of the session's idle streams and connection. */
	void (*stop)(struct session *sess, bool hard);
	/* Whether nothing is in progress on the session and nothing of a next request was read:
	 * the socket alone holds the connection's state, so that another process can serve it
	 * from there (a reload passes such connections on: connpass.h, session_stop()). */
	bool (*quiet)(struct session *sess);
	/* Connections ran out: closes sess now, as its keep-alive or request head timeout would
	 * (HTTP/1: a 408 for an incomplete head). sess is RC_IDLE or RC_HEAD as the mux last said
	 * (session_set_rc()). Returns false, sess left open, when closing it would harm its client
	 * after all: a request in progress (a mux need not report when a head ends: this call is
	 * the check), or the next request arrived unread. The session then takes it out of its
	 * list until the mux says again. */
	bool (*reclaim)(struct session *sess);
};

#endif

/* The HTTP/1 mux: a client connection carries one stream at a time, request after request
 * (keep-alive), with pipelined requests waiting in the socket until the current one is answered.
 *
 * The connection and its stream are one allocation (struct h1c): the stream lives as long as the
 * connection and is reset between requests, and its transaction (struct txn) exists only while a
 * request is in progress, so that an idle keep-alive connection costs a few hundred bytes. The
 * stream's request side has two states that belong to this mux: RQ_IDLE (waiting for the next
 * request: h1_rcv() starts it at its first byte) and RQ_CLOSING (the lingering close after the
 * last response: h1_rcv() reads and drops until the client closes).
 *
 * The client's socket flags are the connection's (sess->cli.flags); the stream sees them in
 * s->cflags, which h1_sync() copies after every operation that may change them. */
#include <string.h>
#include <unistd.h>

#include <keel/chan.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/conn.h>
#include <keel/global.h>
#include <keel/listener-t.h>
#include <keel/loop.h>
#include <keel/mux.h>
#include <keel/pipe.h>
#include <keel/pool.h>
#include <keel/proxy-t.h>
#include <keel/session.h>
#include <keel/stream.h>
#include <keel/timer.h>
#include <keel/worker.h>

/* An HTTP/1 connection: the session and its one stream. */
struct h1c {
	struct session sess;
	struct stream st;
};

/* A soft stop closes a keep-alive connection once it has been idle this long: a client that
 * reuses it sooner (likely for the last one it used) gets its answer and the close, instead of a
 * request racing our close (a reset). */
#define STOP_IDLE_GRACE_US 1000000

static __thread struct pool h1c_pool;

void mux_h1_thread_init(void)
{
	pool_init(&h1c_pool, "h1 connection", sizeof(struct h1c), 4096);
}

void mux_h1_thread_exit(void)
{
	pool_flush(&h1c_pool);
}

static struct stream *h1_stream(struct session *sess)
{
	return &container_of(sess, struct h1c, sess)->st;
}

/* What closing the connection would cost its client now (enum sess_rc, session_reclaim()):
 * nothing much while it waits for the next keep-alive request (RQ_IDLE after a request), a
 * slow or stalled client while its request head is incomplete (RQ_HEAD, or RQ_IDLE before the
 * first request: counted from the accept); anything else carries a request.
 *
 * The session is told of two changes only, each where it happens: a request head starts
 * (RC_HEAD: h1_accept() for the first, counted from the accept, h1_start() for the next ones)
 * and the connection waits for the next request (RC_IDLE: h1_end()). The end of a head (in
 * the stream's analysis) is not reported: the session stays in its heads list while its
 * request is served, until the next change, or until session_reclaim() meets it and
 * h1_reclaim() says it is busy. That keeps a keep-alive request at two list moves, and nothing
 * on every read. */
static enum sess_rc h1_rc(const struct stream *s)
{
	if (s->rq == RQ_IDLE)
		return s->sess->nreq ? RC_IDLE : RC_HEAD;
	return s->rq == RQ_HEAD ? RC_HEAD : RC_BUSY;
}

/* The stream's view of the client side is the connection's flags. */
static void h1_sync(struct stream *s)
{
	s->cflags = s->sess->cli.flags;
}

static void h1_io_cb(struct fdh *h, uint32_t events)
{
	struct session *sess = container_of(h, struct session, cli.h);

	conn_events(&sess->cli, events);
	stream_run(h1_stream(sess));
}

static struct session *h1_accept(struct listener *li, int fd, const union sockaddr_u *addr)
{
	struct h1c *h = pool_alloc(&h1c_pool);
	struct stream *s;

	if (!h) {
		close(fd);
		return NULL;
	}
	memset(h, 0, sizeof(*h));
	if (session_init(&h->sess, &mux_h1, li, fd, addr, h1_io_cb) != OK) {
		close(fd);
		pool_free(&h1c_pool, h);
		return NULL;
	}
	s = &h->st;
	stream_init(s, &h->sess); /* RQ_IDLE: the first request has http-request to arrive */
	s->cli_exp = now_us + ms_to_us(s->fe->to.http_request);
	timer_arm(&s->timer, s->cli_exp);
	session_set_rc(&h->sess, RC_HEAD);
	return &h->sess;
}

/* ---- client side in ----
 *
 * h1_read(): reads the client socket into s->req (when it is readable). Not while a request is answered (RQ_DONE:
 * pipelined bytes wait in the socket); after the last response (RQ_CLOSING), reads and drops.
 * h1_start(): RQ_IDLE -> HEAD at the first byte of a request (a transaction starts), or the
 * stream closes when the client closed its idle connection. */

static bool h1_read(struct stream *s, struct conn *cn)
{
	struct chan *c = &s->req;
	uint32_t room, reserve = chan_reserve(s->rq == RQ_IDLE || s->rq == RQ_HEAD);
	ssize_t n;

	/* A transport with its own exchange (TLS) completes it before any request byte. */
	if (!s->sess->t_ready) {
		if (conn_handshake(cn) != OK)
			return false;
		s->sess->t_ready = now_us;
	}
	/* While a request is being answered, pipelined bytes wait in the socket. */
	if (s->rq == RQ_DONE)
		return false;
	if (s->rq == RQ_CLOSING) {
		char sink[4096];

		return conn_recv(cn, sink, sizeof(sink)) != 0;
	}
	if (!buf_get(&c->b)) {
		cn->flags |= CF_ERROR;
		return true;
	}
	if (s->rq == RQ_BODY)
		chan_stream(c, &s->txn->req_p);
	if (buf_room(&c->b) <= reserve) {
		/* Retained request bytes (for a retry) give way to the body, unless the body is
		 * held (TX_HOLD): then the client waits, as it would for a server's 100. */
		if (s->txn && (s->txn->flags & (TX_RETAIN | TX_HOLD)) == TX_RETAIN &&
		    c->b.head < c->out) {
			s->txn->flags &= ~(uint32_t)TX_RETAIN;
			c->b.head = c->out;
		}
		chan_compact(c);
	}
	room = buf_room(&c->b);
	if (room <= reserve)
		return false;
	room -= reserve;
	n = conn_recv(cn, buf_tail(&c->b), room);
	if (n > 0) {
		c->b.tail += (uint32_t)n;
		if (s->rq == RQ_BODY || s->rq == RQ_TUNNEL)
			s->cli_exp = now_us + ms_to_us(s->rq == RQ_TUNNEL ? s->fe->to.tunnel
									  : s->fe->to.client);
		return true;
	}
	/* An idle connection holds no buffer: give it back until bytes arrive. */
	chan_release(c);
	return n < 0;
}

static bool h1_start(struct stream *s)
{
	struct chan *c = &s->req;

	/* Empty lines before a request line are tolerated (RFC 9112 section 2.2). */
	while (c->b.data && buf_len(&c->b) >= 2 && buf_head(&c->b)[0] == '\r' &&
	       buf_head(&c->b)[1] == '\n') {
		c->b.head += 2;
		c->out = c->fwd = c->b.head;
	}
	if (!c->b.data || c->b.tail == c->fwd) {
		if (s->cflags & (CF_EOF | CF_ERROR)) {
			stream_close(s); /* the client closed an idle connection */
			return true;
		}
		return false;
	}
	if (!stream_txn_start(s)) {
		stream_close(s);
		return true;
	}
	c->out = c->fwd = c->b.head;
	stream_set_rq(s, RQ_HEAD);
	session_set_rc(s->sess, RC_HEAD);
	s->cli_exp = now_us + ms_to_us(s->fe->to.http_request);
	/* No progress of its own: the stream's req_process() scans the head right after. */
	return false;
}

static bool h1_rcv(struct stream *s)
{
	struct conn *cn = &s->sess->cli;
	bool p = false;

	/* Nothing to read is the common case: checked here, before the call. */
	if ((cn->flags & CF_RD_READY) && !(cn->flags & (CF_EOF | CF_ERROR)))
		p = h1_read(s, cn);
	h1_sync(s);
	if (s->rq == RQ_IDLE)
		p |= h1_start(s);
	return p;
}

/* ---- client side out ----
 *
 * h1_snd(): in any state, writes what the stream has for the client: a local reply, else
 * s->rsp between out and fwd, then (once the buffer is empty) the pipe of a spliced body; after
 * the loop's I/O phase only (stream_send_later()). It changes no state: txn_end() sees the end.
 * A failed write marks the client gone (CF_ERROR). */

/* A write to the client that failed: the client is gone (the stream sees CF_ERROR). */
static bool h1_write_failed(struct stream *s)
{
	s->sess->cli.flags |= CF_ERROR;
	h1_sync(s);
	return true;
}

/* h1_snd() for a spliced body: pipe -> client socket. */
static bool h1_splice_out(struct stream *s)
{
	struct txn *t = s->txn;
	struct kpipe *p = t->rsp_pipe;
	ssize_t n = conn_splice_out(&s->sess->cli, p, p->len);

	if (n > 0) {
		p->len -= (uint32_t)n;
		t->flags |= TX_RSP_STARTED;
		t->bytes_out += (uint64_t)n;
		s->cli_exp = now_us + ms_to_us(s->fe->to.client);
		h1_sync(s);
		return true;
	}
	h1_sync(s);
	return n < 0 ? h1_write_failed(s) : false;
}

static bool h1_snd(struct stream *s)
{
	struct conn *cn = &s->sess->cli;
	struct txn *t = s->txn;
	struct chan *c = &s->rsp;
	const char *data;
	uint32_t len;
	ssize_t n;

	if (!(cn->flags & CF_WR_READY) || (cn->flags & (CF_ERROR | CF_SHUTW)))
		return false;
	if (t && (t->flags & TX_REPLY)) {
		data = t->reply + t->reply_off;
		len = t->reply_len - t->reply_off;
	} else {
		data = c->b.data + c->out;
		len = c->fwd - c->out;
		/* The pipe only ever follows the buffer: it is used once the buffer is empty. */
		if (!len && t && t->rsp_pipe && t->rsp_pipe->len)
			return stream_send_later(s) ? false : h1_splice_out(s);
	}
	if (!len || stream_send_later(s))
		return false;
	n = conn_send(cn, data, len);
	h1_sync(s);
	if (n > 0) {
		s->cli_exp = now_us + ms_to_us(s->rq == RQ_TUNNEL ? s->fe->to.tunnel : s->fe->to.client);
		if (t) {
			t->flags |= TX_RSP_STARTED;
			t->bytes_out += (uint64_t)n;
			if (t->flags & TX_REPLY) {
				t->reply_off += (uint32_t)n;
				return true;
			}
		}
		c->out += (uint32_t)n;
		c->b.head = c->out;
		chan_reset_if_empty(c);
		return true;
	}
	return n < 0 ? h1_write_failed(s) : false;
}

static void h1_shutw(struct stream *s)
{
	conn_shutw(&s->sess->cli);
	h1_sync(s);
}

/* ---- end of a request ----
 *
 * h1_end(): after txn_end() (rq DONE, or BODY when a reply cut the request short): keep-alive
 * -> IDLE for the next request (rs, ss back to NONE); otherwise the lingering close -> CLOSING,
 * or the stream closes at once when nothing is left to read. */

/* The lingering close. Closing with unread bytes from the client makes the kernel send a reset,
 * which can destroy the response still in flight. When nothing is pending, close now (the kernel
 * delivers the data, then the FIN); otherwise half-close and read until the client closes or
 * client-fin passes. */
static void h1_start_closing(struct stream *s)
{
	if (s->rq == RQ_DONE && !(s->txn->flags & TX_CLOSE_AFTER) &&
	    s->req.fwd == s->req.b.tail && !(s->sess->cli.flags & CF_RD_READY)) {
		stream_close(s);
		return;
	}
	stream_txn_free(s);
	h1_shutw(s);
	stream_set_rq(s, RQ_CLOSING);
	s->srv_exp = 0;
	chan_drop(&s->req);
	chan_drop(&s->rsp);
	s->cli_exp = now_us + ms_to_us(s->fe->to.client_fin);
}

static void h1_end(struct stream *s, bool keep_alive)
{
	if (!keep_alive) {
		h1_start_closing(s);
		return;
	}
	/* Keep-alive: the next request starts right after this one (maybe already received). */
	stream_txn_free(s);
	s->srv = NULL;
	s->be = NULL;
	stream_set_ss(s, SS_NONE);
	stream_set_rs(s, RS_NONE);
	stream_set_rq(s, RQ_IDLE);
	s->req.b.head = s->req.out = s->req.fwd;
	chan_release(&s->req);
	chan_release(&s->rsp);
	s->sess->t_idle = now_us;
	session_set_rc(s->sess, RC_IDLE);
	s->srv_exp = 0;
	s->cli_exp = now_us + ms_to_us(s->fe->to.http_keep_alive);
	/* Pipelined bytes still in the socket left CF_RD_READY set (edges that came during the
	 * response were not consumed): no speculative read is needed. */
	if (this_worker->stopping)
		session_stop(s->sess); /* to the new process, or the idle grace */
}

static void h1_close(struct stream *s)
{
	struct h1c *h = container_of(s, struct h1c, st);

	session_free(&h->sess);
	loop_defer_free(&h1c_pool, h);
}

/* Soft stop, when the connection cannot go to a new process (session_stop()): the connections
 * with a request in progress close after their response (every response then says "Connection:
 * close"). A connection accepted just before the stop has not sent its first request yet: it
 * is served once. An idle keep-alive connection closes once idle for STOP_IDLE_GRACE_US; one
 * whose transport can never move (TLS) is not closed at all: its next request gets an answer
 * with the close, or its keep-alive timeout ends it as usual, so that no request races our
 * close (hard-stop-after bounds the wait). */
static void h1_stop(struct session *sess, bool hard)
{
	struct stream *s = h1_stream(sess);
	uint64_t exp = sess->t_idle + STOP_IDLE_GRACE_US;

	if (hard) {
		stream_set_term(s, "KI");
		stream_close(s);
		return;
	}
	if (s->rq != RQ_IDLE || s->txn || !sess->nreq || !sess->cli.xprt->movable)
		return;
	if (exp <= now_us) {
		stream_close(s);
	} else if (!s->cli_exp || exp < s->cli_exp) {
		s->cli_exp = exp;
		stream_arm_timer(s);
	}
}

static bool h1_quiet(struct session *sess)
{
	struct stream *s = h1_stream(sess);

	return s->rq == RQ_IDLE && !s->txn && !buf_len(&s->req.b);
}

/* Connections ran out (session_reclaim()). An idle keep-alive connection closes as at its
 * keep-alive timeout, and one that sent nothing since its accept as at its http-request timeout
 * (silently); an incomplete head gets the 408 of that timeout, written at once (this is no time
 * to wait on a slow client: a full socket loses it), then the connection closes. A request that
 * arrived but is not read yet (its event is still pending in this loop iteration) is not lost:
 * closing over unread bytes would reset the connection; it is spared (false) and read as
 * usual. */
static bool h1_reclaim(struct session *sess)
{
	struct stream *s = h1_stream(sess);
	struct txn *t = s->txn;

	if (h1_rc(s) == RC_BUSY)
		return false; /* its head ended: a request in progress */
	if (s->rq == RQ_IDLE) {
		if (conn_peek(&sess->cli) > 0)
			return false;
		stream_close(s);
		return true;
	}
	stream_error(s, 408, "maxconn reached: an incomplete request head was closed for a new "
			     "connection", "cR");
	if (t && (t->flags & TX_REPLY)) {
		ssize_t n = conn_send(&sess->cli, t->reply, t->reply_len);

		if (n > 0)
			t->bytes_out += (uint64_t)n;
	}
	stream_close(s);
	return true;
}

const struct mux_ops mux_h1 = {
	.name = "h1",
	.splice = true,
	.accept = h1_accept,
	.rcv = h1_rcv,
	.snd = h1_snd,
	.shutw = h1_shutw,
	.end = h1_end,
	.close = h1_close,
	.stop = h1_stop,
	.quiet = h1_quiet,
	.reclaim = h1_reclaim,
};

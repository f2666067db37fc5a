/* The session state machine: one client connection, its transactions, and the server connection
 * each transaction uses.
 *
 * Every event (socket readiness, timer, queue wake-up) ends in session_run(), which runs the steps
 * below in order until none makes progress:
 *   cli_recv -> req_process -> srv_process -> srv_send -> srv_recv -> rsp_process -> cli_send
 *   -> tunnel_process -> txn_end
 * Each step looks at the state (s->rq, s->ss, s->rs) and the socket flags and does what it can
 * without blocking. States change only through sess_set_rq(), sess_set_ss() and sess_set_rs()
 * (called here, in backend.c and in http-ana.c), which check each change against the tables of
 * allowed transitions below. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <keel/backend.h>
#include <keel/health.h>
#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/errors.h>
#include <keel/global.h>
#include <keel/http-ana.h>
#include <keel/http.h>
#include <keel/log.h>
#include <keel/loop.h>
#include <keel/pipe.h>
#include <keel/sample.h>
#include <keel/session.h>
#include <keel/timer.h>
#include <keel/worker.h>

atomic_int keel_actconn;

static void session_close(struct session *s);
static void sess_timer_cb(struct timer *t);
static void sess_task_cb(struct tasklet *t);

static uint64_t ms(uint32_t v)
{
	return (uint64_t)v * 1000u;
}

/* ---- states ----
 *
 * s->rq, s->ss and s->rs change only through the three setters below. Each table gives, for a
 * current state, the states it may go to (bit 1u << next); a change not listed is a bug. The
 * memset of session_accept() starts a session in RQ_IDLE, SS_NONE, RS_NONE. Some entries are
 * not reached by the code as it is (marked "not reached"): they stay because the function that
 * takes them is written to work from there, and a missing entry would stop the process (BUG_ON()
 * is always on). */

static const uint8_t rq_next[] = {
	/* req_process() on the first byte of a request (HEAD); reply_start() (DONE: not reached,
	 * an idle session has no transaction). */
	[RQ_IDLE] = 1u << RQ_HEAD | 1u << RQ_DONE,
	/* http_ana_request() forwards the head (BODY, or DONE without a body); reply_start()
	 * answers locally (DONE). */
	[RQ_HEAD] = 1u << RQ_BODY | 1u << RQ_DONE,
	/* req_process() at the end of the body (DONE); rsp_process() on a 101 that came before the
	 * end of the body (TUNNEL: not reached in the tests); start_closing() when the response or
	 * a reply is out before the end of the body (CLOSING). */
	[RQ_BODY] = 1u << RQ_DONE | 1u << RQ_TUNNEL | 1u << RQ_CLOSING,
	/* txn_end() keeps the connection alive (IDLE) or start_closing() closes it (CLOSING);
	 * rsp_process() on a 101 (TUNNEL). */
	[RQ_DONE] = 1u << RQ_IDLE | 1u << RQ_CLOSING | 1u << RQ_TUNNEL,
	/* Final: the session closes from these. */
	[RQ_TUNNEL] = 0,
	[RQ_CLOSING] = 0,
};

static const uint8_t ss_next[] = {
	/* srv_process(): backend_assign() queues (QUEUED), backend_connect() connects
	 * (CONNECTING) or takes a pooled connection (READY), or fails and conn_failed() retries
	 * through rewind_request() (NONE again: not reached in the tests); reply_start() answers
	 * locally (CLOSED). */
	[SS_NONE] = 1u << SS_NONE | 1u << SS_QUEUED | 1u << SS_CONNECTING | 1u << SS_READY |
		    1u << SS_CLOSED,
	/* backend_process_queues() gives it a slot (NONE: srv_process() then connects);
	 * reply_start() on the queue timeout (CLOSED). */
	[SS_QUEUED] = 1u << SS_NONE | 1u << SS_CLOSED,
	/* srv_process() sees the connect complete (READY); conn_failed() retries through
	 * rewind_request() (NONE) or answers 503 through reply_start() (CLOSED). */
	[SS_CONNECTING] = 1u << SS_READY | 1u << SS_NONE | 1u << SS_CLOSED,
	/* rewind_request() after an empty response or a per-try timeout, and txn_end() after a
	 * keep-alive response (NONE); reply_start() answers 502 or 504 (CLOSED). */
	[SS_READY] = 1u << SS_NONE | 1u << SS_CLOSED,
	/* txn_end() after a keep-alive reply (NONE); reply_start() again, each reply replacing the
	 * previous one (CLOSED: not reached). */
	[SS_CLOSED] = 1u << SS_NONE | 1u << SS_CLOSED,
};

static const uint8_t rs_next[] = {
	/* rsp_process() on the first response byte (HEAD); rewind_request() on a retry and
	 * txn_end() after a keep-alive reply (NONE again); abort_response() (DONE: not reached,
	 * with no head received no byte went to the client, which gets a 504 instead). */
	[RS_NONE] = 1u << RS_NONE | 1u << RS_HEAD | 1u << RS_DONE,
	/* rsp_process() on the next bytes of the head or on the head after a 1xx (HEAD again);
	 * http_ana_response() on a complete head (BODY; DONE without a body; TUNNEL on a 101);
	 * abort_response() on a server timeout after a 1xx went to the client (DONE);
	 * rewind_request() and txn_end() (NONE: not reached, no retry once a 1xx went to the
	 * client, and only replies made from the request head keep the connection alive). */
	[RS_HEAD] = 1u << RS_HEAD | 1u << RS_BODY | 1u << RS_DONE | 1u << RS_TUNNEL |
		    1u << RS_NONE,
	/* rsp_process() and srv_splice_in() at the end of the body, abort_response() on a
	 * truncated or invalid body or a timeout (DONE); txn_end() (NONE: not reached, as for
	 * HEAD). */
	[RS_BODY] = 1u << RS_DONE | 1u << RS_NONE,
	/* txn_end() after a keep-alive response (NONE); abort_response() on a server timeout
	 * (DONE again: not reached, refresh_cli_exp() clears srv_exp once the response is in). */
	[RS_DONE] = 1u << RS_NONE | 1u << RS_DONE,
	/* Final: the session closes from it. */
	[RS_TUNNEL] = 0,
};

void sess_set_rq(struct session *s, enum req_state to)
{
	BUG_ON(!(rq_next[s->rq] & (1u << to)));
	s->rq = (uint8_t)to;
}

void sess_set_ss(struct session *s, enum srv_state to)
{
	BUG_ON(!(ss_next[s->ss] & (1u << to)));
	s->ss = (uint8_t)to;
}

void sess_set_rs(struct session *s, enum rsp_state to)
{
	BUG_ON(!(rs_next[s->rs] & (1u << to)));
	s->rs = (uint8_t)to;
}

/* ---- buffers ---- */

/* Moves a channel's bytes to the start of its storage, keeping out/fwd aligned. */
static void chan_compact(struct chan *c)
{
	uint32_t shift = c->b.head;

	if (!shift)
		return;
	buf_compact(&c->b);
	c->out -= shift;
	c->fwd -= shift;
}

static void chan_reset_if_empty(struct chan *c)
{
	if (c->b.data && c->b.head == c->b.tail) {
		c->b.head = c->b.tail = c->out = c->fwd = 0;
	}
}

static void chan_release(struct chan *c)
{
	chan_reset_if_empty(c);
	if (c->b.data && c->b.head == c->b.tail)
		buf_release(&c->b, false);
}

/* Whether what is left of the body that p is parsing needs more than an ordinary buffer: a
 * Content-Length body with more than bufsize bytes to come, or a chunked or close-delimited one,
 * whose size is unknown. */
static bool body_is_large(const llhttp_t *p)
{
	if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED))
		return p->content_length > tl->bufsize;
	return true;
}

/* Called before a read into a channel whose body is streaming: once the channel is empty (all
 * sent, nothing retained), a large body moves to a stream buffer (tune.bufsize.stream), so that
 * each read and each write carries up to that many bytes instead of bufsize: about a quarter of
 * the system calls per MB, and larger TCP segments. The buffer goes back to its pool when the
 * channel empties at the end, like an ordinary one. Heads never need it: their size limits
 * stay relative to bufsize. */
static void chan_stream(struct chan *c, const llhttp_t *p)
{
	if (c->b.head == c->b.tail && c->b.size == tl->bufsize &&
	    global.bufsize_stream > tl->bufsize && body_is_large(p) &&
	    buf_grow(&c->b, global.bufsize_stream))
		c->out = c->fwd = 0;
}

/* Free bytes a read must leave at the end of a channel's buffer. While a head is awaited, its
 * rewrite (X-Forwarded-For, rules, Connection, cookies) may make it longer, and body bytes that
 * come in the same read must not take that room: tune.maxrewrite stays free, as in HAProxy.
 * Without it, a POST whose first read filled the buffer got a 431 with "option forwardfor", and a
 * response whose head keel lengthens a 502. The head size limit (bufsize - maxrewrite) is what a
 * read can then fill, so a head that does not fit still fails as too large, never stalls. */
static uint32_t chan_reserve(bool head_pending)
{
	return head_pending ? global.maxrewrite : 0;
}

static void chan_drop(struct chan *c)
{
	if (c->b.data)
		buf_release(&c->b, true);
	c->out = c->fwd = 0;
}

/* ---- transactions ---- */

static struct txn *txn_new(struct session *s)
{
	struct txn *t = pool_alloc(&proxy_thread->txn_pool);

	if (!t)
		return NULL;
	memset(t, 0, offsetof(struct txn, reqline));
	t->t_start = now_us;
	t->wall_start = wall_us;
	t->term[0] = t->term[1] = '-';
	t->retries = (uint8_t)MIN(s->fe->retries, 255);
	s->txn = t;
	s->nreq++;
	return t;
}

static void txn_free(struct session *s)
{
	struct txn *t = s->txn;

	if (!t)
		return;
	free(t->reply_heap);
	pipe_put(t->rsp_pipe);
	pool_free(&proxy_thread->txn_pool, t);
	s->txn = NULL;
}

static void set_term(struct session *s, const char *term)
{
	if (s->txn && s->txn->term[0] == '-' && term) {
		s->txn->term[0] = term[0];
		s->txn->term[1] = term[1];
	}
}

/* ---- replies keel writes itself ---- */

static void reply_start(struct session *s, const char *data, uint32_t len, char *heap, int status,
			bool close)
{
	struct txn *t = s->txn;

	free(t->reply_heap);
	t->reply = data;
	t->reply_len = len;
	t->reply_off = 0;
	t->reply_heap = heap;
	t->status = (uint16_t)status;
	t->flags |= TX_REPLY;
	if (close)
		t->flags |= TX_CLOSE_AFTER;
	/* The request will not go further: drop what the server side was doing. */
	if (s->ss == SS_QUEUED)
		backend_dequeue(s);
	if (s->sc)
		backend_release_conn(s, false);
	if (s->has_slot) {
		srv_put_slot(s->srv);
		s->has_slot = false;
	}
	sess_set_ss(s, SS_CLOSED);
	s->srv_exp = 0;
	if (s->rq == RQ_HEAD || s->rq == RQ_IDLE)
		sess_set_rq(s, RQ_DONE);
	s->cli_exp = now_us + ms(s->fe->to.client);
}

void session_error(struct session *s, int status, const char *why, const char *term)
{
	uint32_t len;
	const char *r;

	if (!s->txn)
		return;
	r = http_err_response(s->fe->errmsg, s->be ? s->be->errmsg : NULL, status, &len);
	s->txn->err_why = why;
	set_term(s, term);
	if (status >= 500 && s->be)
		CTR_INC(s->be->ctr[this_worker->id].rsp[5]);
	reply_start(s, r, len, NULL, status, true);
}

void session_reply_heap(struct session *s, char *data, uint32_t len, int status, bool close)
{
	reply_start(s, data, len, data, status, close);
}

/* ---- accept ---- */

static void cli_io_cb(struct fdh *h, uint32_t events)
{
	struct session *s = container_of(h, struct session, cli);

	if (events & EPOLLIN)
		s->cflags |= CF_RD_READY;
	if (events & EPOLLRDHUP)
		s->cflags |= CF_RD_READY | CF_RDHUP;
	if (events & EPOLLOUT)
		s->cflags |= CF_WR_READY;
	if (events & (EPOLLERR | EPOLLHUP))
		s->cflags |= CF_ERROR | CF_RD_READY;
	session_run(s);
}

void session_accept(struct listener *li, int fd, const union sockaddr_u *addr)
{
	struct session *s = pool_alloc(&proxy_thread->sess_pool);
	socklen_t llen = sizeof(s->local);
	int one = 1;

	if (!s) {
		close(fd);
		return;
	}
	memset(s, 0, sizeof(*s));
	s->cli.cb = cli_io_cb;
	s->li = li;
	s->fe = li->fe;
	s->addr = *addr;
	getsockname(fd, &s->local.sa, &llen);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	timer_init(&s->timer, sess_timer_cb);
	tasklet_init(&s->task, sess_task_cb);
	list_init(&s->qlist);
	s->t_accept = s->t_idle = now_us;
	s->wall_accept = wall_us; /* the memset left rq, ss and rs at RQ_IDLE, SS_NONE, RS_NONE */
	if (loop_add(&s->cli, fd) != OK) {
		close(fd);
		pool_free(&proxy_thread->sess_pool, s);
		return;
	}
	atomic_fetch_add_explicit(&keel_actconn, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->fe->feconn, 1, memory_order_relaxed);
	CTR_INC(s->fe->ctr[this_worker->id].conn_tot);
	list_add_tail(&proxy_thread->sessions, &s->list);
	proxy_thread->nsess++;
	s->cli_exp = now_us + ms(s->fe->to.http_request);
	timer_arm(&s->timer, s->cli_exp);
}

/* ---- client side ---- */

static bool cli_recv(struct session *s)
{
	struct chan *c = &s->req;
	uint32_t room, reserve = chan_reserve(s->rq == RQ_IDLE || s->rq == RQ_HEAD);
	ssize_t n;

	if (!(s->cflags & CF_RD_READY) || (s->cflags & (CF_EOF | CF_ERROR)))
		return false;
	/* While a request is being answered, pipelined bytes wait in the socket. */
	if (s->rq == RQ_DONE)
		return false;
	if (s->rq == RQ_CLOSING) {
		char sink[4096];

		n = recv(s->cli.fd, sink, sizeof(sink), 0);
		if (n > 0)
			return true;
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			s->cflags |= n == 0 ? CF_EOF : CF_ERROR;
		s->cflags &= (uint16_t)~CF_RD_READY;
		return n == 0 || errno != EAGAIN;
	}
	if (!buf_get(&c->b)) {
		s->cflags |= CF_ERROR;
		return true;
	}
	if (s->rq == RQ_BODY)
		chan_stream(c, &s->txn->req_p);
	if (buf_room(&c->b) <= reserve) {
		/* Retained request bytes (for a retry) give way to the body. */
		if (s->txn && (s->txn->flags & TX_RETAIN) && c->b.head < c->out) {
			s->txn->flags &= ~(uint32_t)TX_RETAIN;
			c->b.head = c->out;
		}
		chan_compact(c);
	}
	room = buf_room(&c->b);
	if (room <= reserve)
		return false;
	room -= reserve;
	n = recv(s->cli.fd, buf_tail(&c->b), room, 0);
	if (n > 0) {
		c->b.tail += (uint32_t)n;
		/* A short read drained the socket: the next edge will tell when more arrives. A
		 * FIN that came with the data raises no new edge, so then read on to the EOF. */
		if ((uint32_t)n < room && !(s->cflags & CF_RDHUP))
			s->cflags &= (uint16_t)~CF_RD_READY;
		if (s->rq == RQ_BODY || s->rq == RQ_TUNNEL)
			s->cli_exp = now_us + ms(s->rq == RQ_TUNNEL ? s->fe->to.tunnel : s->fe->to.client);
		return true;
	}
	s->cflags &= (uint16_t)~CF_RD_READY;
	/* An idle connection holds no buffer: give it back until bytes arrive. */
	chan_release(c);
	if (n == 0) {
		s->cflags |= CF_EOF;
		return true;
	}
	if (errno == EAGAIN || errno == EINTR) {
		if (errno == EINTR)
			s->cflags |= CF_RD_READY;
		return false;
	}
	s->cflags |= CF_ERROR;
	return true;
}

/* Response bytes received and not yet sent to the client: in the buffer and in the pipe. */
static uint32_t rsp_pending(const struct session *s)
{
	const struct kpipe *p = s->txn ? s->txn->rsp_pipe : NULL;

	return s->rsp.fwd - s->rsp.out + (p ? p->len : 0);
}

/* Whether a write has to wait (the caller then writes nothing now). While the loop handles the
 * epoll events of an iteration (loop_io_phase()), sessions read, parse and decide, but each one
 * with something to write queues itself (its tasklet runs after the last event) instead of
 * writing. Each write can wake the process at the other end: written in one burst, the writes of
 * an iteration wake each peer about once, the peer finds them all in one epoll_wait(), and fewer
 * woken peers preempt the worker in the middle of its events. On the bench machine (2 CPUs,
 * keep-alive, 100 connections, 16 alternating rounds against the previous build) the worker was
 * preempted 0.285 times per request instead of 0.334, and used 7% less CPU per request for 9%
 * more requests/s (docs/benchmarks.md). The cost is one more session_run() per write. */
static bool send_later(struct session *s)
{
	if (!loop_io_phase())
		return false;
	session_wake(s);
	return true;
}

/* What a write to the client that moved nothing (n <= 0) means: a full socket (EAGAIN: no more
 * writes until epoll says so) or an interrupted call is no progress (false); anything else is an
 * error for the session to handle (true). */
static bool cli_send_failed(struct session *s, ssize_t n)
{
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			s->cflags &= (uint16_t)~CF_WR_READY;
		return false;
	}
	s->cflags |= CF_ERROR;
	return true;
}

/* cli_send() for a spliced body: pipe -> client socket. A short splice means the socket is full
 * (the kernel stops only when the pipe is empty, and the pipe holds exactly len bytes). */
static bool cli_splice_out(struct session *s)
{
	struct txn *t = s->txn;
	struct kpipe *p = t->rsp_pipe;
	ssize_t n;

	n = splice(p->rd, NULL, s->cli.fd, NULL, p->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0) {
		if ((uint32_t)n < p->len)
			s->cflags &= (uint16_t)~CF_WR_READY;
		p->len -= (uint32_t)n;
		t->flags |= TX_RSP_STARTED;
		t->bytes_out += (uint64_t)n;
		s->cli_exp = now_us + ms(s->fe->to.client);
		return true;
	}
	return cli_send_failed(s, n);
}

static bool cli_send(struct session *s)
{
	struct txn *t = s->txn;
	struct chan *c = &s->rsp;
	const char *data;
	uint32_t len;
	ssize_t n;

	if (!(s->cflags & CF_WR_READY) || (s->cflags & (CF_ERROR | CF_SHUTW)))
		return false;
	if (t && (t->flags & TX_REPLY)) {
		data = t->reply + t->reply_off;
		len = t->reply_len - t->reply_off;
	} else {
		data = c->b.data + c->out;
		len = c->fwd - c->out;
		/* The pipe only ever follows the buffer: it is used once the buffer is empty. */
		if (!len && t && t->rsp_pipe && t->rsp_pipe->len)
			return send_later(s) ? false : cli_splice_out(s);
	}
	if (!len || send_later(s))
		return false;
	n = send(s->cli.fd, data, len, MSG_NOSIGNAL);
	if (n > 0) {
		if ((uint32_t)n < len)
			s->cflags &= (uint16_t)~CF_WR_READY;
		s->cli_exp = now_us + ms(s->rq == RQ_TUNNEL ? s->fe->to.tunnel : s->fe->to.client);
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
	return cli_send_failed(s, n);
}

/* ---- request ---- */

static bool req_process(struct session *s)
{
	struct chan *c = &s->req;
	struct txn *t = s->txn;
	uint32_t len, hlen = 0;
	int r;

	switch (s->rq) {
	case RQ_IDLE:
		/* Empty lines before a request line are tolerated (RFC 9112 section 2.2). */
		while (c->b.data && buf_len(&c->b) >= 2 && buf_head(&c->b)[0] == '\r' &&
		       buf_head(&c->b)[1] == '\n') {
			c->b.head += 2;
			c->out = c->fwd = c->b.head;
		}
		if (!c->b.data || c->b.tail == c->fwd) {
			if (s->cflags & (CF_EOF | CF_ERROR)) {
				session_close(s); /* the client closed an idle connection */
				return true;
			}
			return false;
		}
		if (!txn_new(s)) {
			session_close(s);
			return true;
		}
		t = s->txn;
		c->out = c->fwd = c->b.head;
		sess_set_rq(s, RQ_HEAD);
		s->cli_exp = now_us + ms(s->fe->to.http_request);
		/* fall through */
	case RQ_HEAD:
		len = buf_len(&c->b);
		r = http_scan_head(buf_head(&c->b), len, &t->req_scan, &hlen, &t->req_line1);
		if (r == HTTP_SCAN_ERROR) {
			CTR_INC(s->fe->ctr[this_worker->id].failed_req);
			session_error(s, 400, "invalid line ending or obs-fold in request head", "PR");
			return true;
		}
		if (r == HTTP_SCAN_MORE) {
			if (len >= tl->bufsize - global.maxrewrite) {
				CTR_INC(s->fe->ctr[this_worker->id].failed_req);
				session_error(s, t->req_line1 ? 431 : 414,
					      t->req_line1 ? "request head too large" : "request line too long",
					      "PR");
				return true;
			}
			if (s->cflags & (CF_EOF | CF_ERROR)) {
				set_term(s, "CR");
				CTR_INC(s->fe->ctr[this_worker->id].cli_aborts);
				session_close(s);
				return true;
			}
			return false;
		}
		if (hlen > tl->bufsize - global.maxrewrite) {
			session_error(s, t->req_line1 ? 431 : 414, "request head too large", "PR");
			return true;
		}
		if (http_ana_request(s, hlen) != OK) {
			/* Answered locally: the head is consumed, a body (if any) is not. */
			c->out = c->fwd = c->b.head + hlen;
			return true;
		}
		s->cli_exp = s->rq == RQ_BODY ? now_us + ms(s->fe->to.client) : 0;
		if (s->rq != RQ_BODY)
			return true;
		/* Body bytes that came with the head leave with it, in one write. */
		req_process(s);
		return true;
	case RQ_BODY: {
		uint32_t used;
		bool done;
		const char *why = NULL;

		/* An error answered from inside the body: the connection closes once the reply
		 * is out (txn_end()), and what follows the bad bytes is never parsed. */
		if (t->flags & TX_REPLY)
			return false;
		if (c->fwd < c->b.tail) {
			if (http_parse_body(&t->req_p, c->b.data + c->fwd, c->b.tail - c->fwd, &used,
					    &done, &why) != OK) {
				CTR_INC(s->fe->ctr[this_worker->id].failed_req);
				/* Whatever the server got, the client has heard nothing yet: it gets
				 * its 400 and the server connection is dropped. */
				if (!(t->flags & TX_RSP_STARTED)) {
					session_error(s, 400, why, "PD");
				} else {
					set_term(s, "PD");
					session_close(s);
				}
				return true;
			}
			c->fwd += used;
			t->bytes_in += used;
			if (done)
				sess_set_rq(s, RQ_DONE);
			return used > 0 || done;
		}
		if (s->cflags & (CF_EOF | CF_ERROR)) {
			/* The client went away in the middle of its body. */
			set_term(s, "CD");
			CTR_INC(s->fe->ctr[this_worker->id].cli_aborts);
			session_close(s);
			return true;
		}
		return false;
	}
	case RQ_TUNNEL:
		if (c->fwd < c->b.tail) {
			t->bytes_in += c->b.tail - c->fwd;
			c->fwd = c->b.tail;
			return true;
		}
		return false;
	default:
		return false;
	}
}

/* ---- server side ---- */

/* Whether the request can be sent again from the start. */
static bool replayable(const struct session *s)
{
	const struct txn *t = s->txn;

	if (t->flags & TX_RSP_STARTED)
		return false;
	if (!(t->flags & TX_REQ_SENT))
		return true;
	return (t->flags & TX_RETAIN) != 0;
}

static void srv_detach(struct session *s)
{
	backend_release_conn(s, false);
	if (s->has_slot) {
		srv_put_slot(s->srv);
		s->has_slot = false;
	}
}

static void rewind_request(struct session *s)
{
	struct txn *t = s->txn;

	s->req.out = s->req.b.head;
	t->flags &= ~(uint32_t)TX_REQ_SENT;
	/* Response bytes from the failed attempt are dropped. */
	s->rsp.b.head = s->rsp.b.tail = s->rsp.out = s->rsp.fwd = 0;
	t->rsp_scan = 0;
	sess_set_rs(s, RS_NONE);
	sess_set_ss(s, SS_NONE);
}

/* Whether a retry leaves srv. Only hash-based balancing and cookie persistence (TX_CK_PINNED) keep
 * a request on its server; "option redispatch" or an unusable server moves even those. */
static bool retry_elsewhere(const struct session *s, const struct server *srv)
{
	return !srv || (s->be->opts & PO_REDISPATCH) ||
	       (s->be->lb < LB_SOURCE && !(s->txn->flags & TX_CK_PINNED)) || !srv_usable(srv);
}

/* A connection attempt failed (refused, timeout, unreachable). Retries, possibly elsewhere. */
static void conn_failed(struct session *s, const char *why, bool timeout)
{
	struct txn *t = s->txn;
	struct server *srv = s->srv;

	if (srv) {
		CTR_INC(srv->ctr[this_worker->id].failed_conn);
		if (timeout)
			CTR_INC(srv->ctr[this_worker->id].timeouts);
		health_event(srv, HEV_CONN_FAIL, timeout ? now_us - t->t_queue : 0, why);
	}
	CTR_INC(s->be->ctr[this_worker->id].failed_conn);
	srv_detach(s);
	t->last_srv = srv;
	t->err_why = why;
	if (t->retries > 0 && replayable(s)) {
		t->retries--;
		if (srv)
			CTR_INC(srv->ctr[this_worker->id].retries);
		CTR_INC(s->be->ctr[this_worker->id].retries);
		if (retry_elsewhere(s, srv)) {
			if (srv)
				CTR_INC(s->be->ctr[this_worker->id].redispatches);
			s->srv = NULL;
		}
		rewind_request(s);
		return;
	}
	session_error(s, 503, why, timeout ? "sC" : "SC");
}

/* The server closed or reset the connection before any byte of the response. */
static void empty_response(struct session *s, const char *why)
{
	struct txn *t = s->txn;
	struct server *srv = s->srv;
	bool reused = (t->flags & TX_REUSED) != 0;

	CTR_INC(srv->ctr[this_worker->id].failed_rsp);
	srv_detach(s);
	t->last_srv = srv;
	t->err_why = why;
	/* A pooled connection the server closed while idle says nothing about its health. */
	if (!reused || (t->flags & TX_FREE_RETRY))
		health_event(srv, HEV_RESET, now_us - t->t_conn, why);
	/* Only a request that is safe to send twice goes again. A reused connection that the
	 * server closed while idle is the usual cause: one extra try on a fresh connection. */
	if (replayable(s) && (!(t->flags & TX_REQ_SENT) || http_meth_idempotent(t->meth))) {
		if (reused && !(t->flags & TX_FREE_RETRY)) {
			t->flags |= TX_FREE_RETRY;
			t->flags &= ~(uint32_t)TX_REUSED;
			rewind_request(s);
			return;
		}
		if (t->retries > 0) {
			t->retries--;
			CTR_INC(srv->ctr[this_worker->id].retries);
			CTR_INC(s->be->ctr[this_worker->id].retries);
			if (retry_elsewhere(s, srv)) {
				CTR_INC(s->be->ctr[this_worker->id].redispatches);
				s->srv = NULL;
			}
			rewind_request(s);
			return;
		}
	}
	CTR_INC(s->be->ctr[this_worker->id].failed_rsp);
	session_error(s, 502, why, "SH");
}

/* Whether the request may be sent to another server after it reached one: idempotent, without a
 * body, not an upgrade, with a retry left, and no response byte sent to the client yet. */
static bool resendable(const struct session *s)
{
	const struct txn *t = s->txn;

	return !(t->flags & (TX_REQ_BODY | TX_UPGRADE)) && t->retries > 0 &&
	       http_meth_idempotent(t->meth) && replayable(s);
}

/* The server-side deadline while the server owes us the response head. timeout server runs from
 * the last activity; the per-try deadline runs from the start of the try, and past it the request
 * wakes up every per-try period to look at its server's health (see srv_wait_expired()). */
static uint64_t srv_wait_exp(struct session *s, bool activity)
{
	struct txn *t = s->txn;
	uint64_t d;

	if (activity)
		t->srv_full_exp = now_us + ms(s->be->to.server);
	if (!t->pertry_ms || s->rs != RS_NONE)
		return t->srv_full_exp;
	d = t->t_conn + ms(t->pertry_ms);
	if (d <= now_us)
		d = now_us + ms(t->pertry_ms);
	return MIN(d, t->srv_full_exp);
}

/* Sends the request to another server after a per-try timeout (within the retry budget), or
 * because its server was taken out while it waited (free: the request leaves a server that gets
 * no traffic anyway, so it adds no load to the sick one). */
static bool pertry_retry(struct session *s, bool free)
{
	struct txn *t = s->txn;
	struct server *srv = s->srv;

	t->flags |= TX_PERTRY_DONE;
	if (!backend_has_other(s->be, srv) || (!free && !health_retry_allowed(s->be)))
		return false;
	CTR_INC(srv->ctr[this_worker->id].retries);
	CTR_INC(s->be->ctr[this_worker->id].retries);
	CTR_INC(s->be->ctr[this_worker->id].redispatches);
	if (!free) {
		t->pertry_srv = srv;
		t->pertry_waited_ms = (uint32_t)((now_us - t->t_conn) / 1000);
	}
	t->retries--;
	srv_detach(s);
	t->last_srv = srv;
	rewind_request(s);
	s->srv = NULL;
	return true;
}

/* No response byte yet at a per-try wake-up, before timeout server. Returns true when handled:
 * the request went to another server (once per request on the per-try deadline, or because its
 * server was taken out while it waited), or it failed because its server was taken out and it
 * cannot be sent again (a POST must not wait for a frozen server until timeout server: the
 * client gets a clear 504 now), or it keeps waiting. */
static bool srv_wait_expired(struct session *s)
{
	struct txn *t = s->txn;
	struct server *srv = s->srv;
	bool out = srv && health_srv_out(srv);

	if (now_us >= t->srv_full_exp)
		return false;
	/* A cookie-pinned request leaves its server only when that server is taken out. */
	if (resendable(s) && (out || !(t->flags & (TX_PERTRY_DONE | TX_CK_PINNED))) &&
	    pertry_retry(s, out))
		return true;
	if (out) {
		CTR_INC(srv->ctr[this_worker->id].timeouts);
		CTR_INC(s->be->ctr[this_worker->id].timeouts);
		srv_detach(s);
		session_error(s, 504, "server taken out while the request waited (not retried)", "sH");
		return true;
	}
	s->srv_exp = srv_wait_exp(s, false);
	return true;
}

/* A response head arrived: feeds the server's latency and error streak, and charges the server a
 * per-try timeout left when this retry answered faster than that server was given. */
static void rsp_head_health(struct session *s)
{
	struct txn *t = s->txn;
	uint64_t ttfb = now_us - t->t_conn;

	if (t->pertry_srv) {
		if (ttfb < (uint64_t)t->pertry_waited_ms * 1000)
			health_event(t->pertry_srv, HEV_TIMEOUT, (uint64_t)t->pertry_waited_ms * 1000,
				     "another server answered the retry in time");
		t->pertry_srv = NULL;
	}
	health_response(s->srv, ttfb, t->status);
}

static bool srv_process(struct session *s)
{
	struct txn *t = s->txn;
	struct sconn *sc = s->sc;
	int r, err = 0;
	socklen_t el = sizeof(err);

	if (!t || (t->flags & TX_REPLY) || !s->be)
		return false;
	switch (s->ss) {
	case SS_NONE:
		if (s->rq != RQ_BODY && s->rq != RQ_DONE)
			return false;
		if (!s->has_slot) {
			r = s->srv ? backend_assign_pinned(s, s->srv) : backend_assign(s);
			if (r == ERR) {
				session_error(s, 503, "no server available", "SC");
				return true;
			}
			if (r == AGAIN) {
				s->srv_exp = t->t_head + ms(s->be->to.queue);
				return true;
			}
		}
		if (!t->t_queue)
			t->t_queue = now_us;
		t->pertry_ms = health_pertry_ms(s->be);
		if (backend_connect(s) != OK) {
			conn_failed(s, t->err_why, false);
			return true;
		}
		if (s->ss == SS_CONNECTING)
			s->srv_exp = now_us + ms(s->be->to.connect);
		else
			s->srv_exp = srv_wait_exp(s, true);
		return true;
	case SS_CONNECTING:
		if (!(sc->flags & (CF_WR_READY | CF_ERROR)))
			return false;
		if (getsockopt(sc->h.fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1)
			err = errno;
		if (!err && !(sc->flags & CF_ERROR)) {
			sc->flags |= CF_CONNECTED;
			sess_set_ss(s, SS_READY);
			t->t_conn = now_us;
			s->srv_exp = srv_wait_exp(s, true);
			return true;
		}
		conn_failed(s, err ? strerror(err) : "connection error", false);
		return true;
	default:
		return false;
	}
}

static bool srv_send(struct session *s)
{
	struct chan *c = &s->req;
	struct sconn *sc = s->sc;
	struct txn *t = s->txn;
	ssize_t n;

	if (s->ss != SS_READY || !sc || c->out >= c->fwd || !(sc->flags & CF_WR_READY) ||
	    (sc->flags & CF_SHUTW) || send_later(s))
		return false;
	n = send(sc->h.fd, c->b.data + c->out, c->fwd - c->out, MSG_NOSIGNAL);
	if (n > 0) {
		if ((uint32_t)n < c->fwd - c->out)
			sc->flags &= (uint16_t)~CF_WR_READY;
		c->out += (uint32_t)n;
		t->flags |= TX_REQ_SENT;
		if (!(t->flags & TX_RETAIN))
			c->b.head = c->out;
		chan_reset_if_empty(c);
		s->srv_exp = s->rq == RQ_TUNNEL ? now_us + ms(s->be->to.tunnel) : srv_wait_exp(s, true);
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			sc->flags &= (uint16_t)~CF_WR_READY;
		return false;
	}
	/* The server stopped reading (it may have answered early, e.g. 413): stop sending and
	 * let the read side tell whether a response comes. */
	sc->flags |= CF_SHUTW;
	sc->flags |= CF_RD_READY;
	t->flags &= ~(uint32_t)TX_SRV_KEEPALIVE;
	return true;
}

/* Whether the response body goes through a pipe (splice(2)) from now on. Decided once per
 * response, at the first read of its body into an empty channel: splicing asked for on the
 * frontend or the backend ("option splice-response" or "splice-auto") and not forbidden by
 * "nosplice"; a Content-Length body with more than bufsize bytes to come, whose bytes are then
 * counted off llhttp's content_length instead of being parsed (nothing in a Content-Length body
 * needs parsing); and a pipe to be had, else the body is copied as usual. */
static bool rsp_splice(struct session *s)
{
	struct txn *t = s->txn;
	const llhttp_t *p = &t->rsp_p;

	if (t->rsp_pipe)
		return true;
	if (t->rsp_nosplice || (s->rsp.b.data && s->rsp.b.head != s->rsp.b.tail))
		return false;
	t->rsp_nosplice = true;
	if (global.nosplice || !((s->fe->opts | s->be->opts) & (PO_SPLICE_RSP | PO_SPLICE_AUTO)) ||
	    !(p->flags & F_CONTENT_LENGTH) || (p->flags & F_CHUNKED) ||
	    p->content_length <= tl->bufsize)
		return false;
	t->rsp_pipe = pipe_get();
	if (!t->rsp_pipe)
		return false;
	t->rsp_nosplice = false;
	chan_release(&s->rsp); /* a spliced body needs no buffer */
	return true;
}

/* srv_recv() for a spliced body: server socket -> pipe, never more than the body has left, so
 * that the bytes of a next response stay in the socket. Returns whether something happened. */
static bool srv_splice_in(struct session *s)
{
	struct sconn *sc = s->sc;
	struct txn *t = s->txn;
	struct kpipe *p = t->rsp_pipe;
	size_t want;
	ssize_t n;

	if (p->len >= PIPE_CAP)
		return false;
	want = (size_t)MIN(t->rsp_p.content_length, (uint64_t)(PIPE_CAP - p->len));
	n = splice(sc->h.fd, NULL, p->wr, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0) {
		p->len += (uint32_t)n;
		/* llhttp is told the bytes passed, as if it had parsed them. */
		t->rsp_p.content_length -= (uint64_t)n;
		s->srv_exp = now_us + ms(s->be->to.server);
		if (t->rsp_p.content_length)
			return true;
		sess_set_rs(s, RS_DONE);
		/* Bytes after the response make the connection unfit for reuse (rsp_process()). A
		 * copy reads them with the end of the body; a splice stops at it, so peek, unless
		 * the socket is known to be drained (no edge since the last EAGAIN). */
		if (sc->flags & CF_RD_READY) {
			n = recv(sc->h.fd, &(char){0}, 1, MSG_PEEK | MSG_DONTWAIT);
			if (n > 0)
				t->flags &= ~(uint32_t)TX_SRV_KEEPALIVE;
			else if (n == 0)
				sc->flags |= CF_EOF;
		}
		return true;
	}
	if (n == 0) {
		sc->flags &= (uint16_t)~CF_RD_READY;
		sc->flags |= CF_EOF;
		return true;
	}
	if (errno == EAGAIN) {
		/* Either the socket is empty or the pipe is full (it counts pages, not bytes): only
		 * with an empty pipe does EAGAIN prove the socket drained. Otherwise the next
		 * attempt, once the pipe has been emptied, tells. */
		if (!p->len)
			sc->flags &= (uint16_t)~CF_RD_READY;
		return false;
	}
	if (errno == EINTR)
		return false;
	sc->flags |= CF_ERROR;
	return true;
}

static bool srv_recv(struct session *s)
{
	struct chan *c = &s->rsp;
	struct sconn *sc = s->sc;
	uint32_t room, reserve = chan_reserve(s->rs == RS_NONE || s->rs == RS_HEAD);
	ssize_t n;

	if (s->ss != SS_READY || !sc || !(sc->flags & CF_RD_READY) ||
	    (sc->flags & (CF_EOF | CF_ERROR)) || s->rs == RS_DONE)
		return false;
	if (s->rs == RS_BODY && rsp_splice(s))
		return srv_splice_in(s);
	if (!buf_get(&c->b)) {
		sc->flags |= CF_ERROR;
		return true;
	}
	if (s->rs == RS_BODY)
		chan_stream(c, &s->txn->rsp_p);
	if (buf_room(&c->b) <= reserve)
		chan_compact(c);
	room = buf_room(&c->b);
	if (room <= reserve)
		return false;
	room -= reserve;
	n = recv(sc->h.fd, buf_tail(&c->b), room, 0);
	if (n > 0) {
		c->b.tail += (uint32_t)n;
		if ((uint32_t)n < room && !(sc->flags & CF_RDHUP))
			sc->flags &= (uint16_t)~CF_RD_READY;
		s->srv_exp = now_us + ms(s->rs == RS_TUNNEL ? s->be->to.tunnel : s->be->to.server);
		return true;
	}
	sc->flags &= (uint16_t)~CF_RD_READY;
	chan_release(c);
	if (n == 0) {
		sc->flags |= CF_EOF;
		return true;
	}
	if (errno == EAGAIN || errno == EINTR) {
		if (errno == EINTR)
			sc->flags |= CF_RD_READY;
		return false;
	}
	sc->flags |= CF_ERROR;
	return true;
}

/* ---- response ---- */

static void abort_response(struct session *s, const char *term)
{
	/* Headers may already be on their way: the only honest signal left is closing. */
	set_term(s, term);
	CTR_INC(s->be->ctr[this_worker->id].srv_aborts);
	s->txn->flags &= ~(uint32_t)(TX_CLI_KEEPALIVE | TX_SRV_KEEPALIVE);
	sess_set_rs(s, RS_DONE);
	backend_release_conn(s, false);
}

static bool rsp_process(struct session *s)
{
	struct chan *c = &s->rsp;
	struct txn *t = s->txn;
	struct sconn *sc = s->sc;
	bool srv_gone = sc && (sc->flags & (CF_EOF | CF_ERROR));
	uint32_t hlen = 0, len;
	int r;

	if (!t || (t->flags & TX_REPLY) || s->ss != SS_READY)
		return false;
	switch (s->rs) {
	case RS_NONE:
	case RS_HEAD:
		/* The next head starts once the previous (interim) one is on its way. */
		if (c->out < c->fwd)
			return false;
		if (c->b.data && c->fwd < c->b.tail) {
			c->b.head = c->out = c->fwd;
			sess_set_rs(s, RS_HEAD);
			len = buf_len(&c->b);
			r = http_scan_head(buf_head(&c->b), len, &t->rsp_scan, &hlen, &(bool){false});
			if (r == HTTP_SCAN_MORE && len < tl->bufsize - global.maxrewrite && !srv_gone)
				return false;
			if (r != HTTP_SCAN_DONE) {
				CTR_INC(s->srv->ctr[this_worker->id].failed_rsp);
				CTR_INC(s->be->ctr[this_worker->id].failed_rsp);
				health_event(s->srv, HEV_RESET, now_us - t->t_conn,
					     "invalid or truncated response head");
				srv_detach(s);
				session_error(s, 502,
					      r == HTTP_SCAN_ERROR ? "invalid response head"
					      : srv_gone ? "server closed in the middle of the response head"
							 : "response head too large",
					      "SH");
				return true;
			}
			{
				bool interim;

				if (http_ana_response(s, hlen, &interim) != OK) {
					CTR_INC(s->srv->ctr[this_worker->id].failed_rsp);
					CTR_INC(s->be->ctr[this_worker->id].failed_rsp);
					health_event(s->srv, HEV_RESET, now_us - t->t_conn,
						     "invalid response head");
					srv_detach(s);
					session_error(s, 502, t->err_why, "PH");
					return true;
				}
				t->rsp_scan = 0;
				if (interim)
					return true;
			}
			rsp_head_health(s);
			CTR_INC(s->srv->ctr[this_worker->id].rsp[t->status / 100 <= 5 ? t->status / 100 : 0]);
			CTR_INC(s->be->ctr[this_worker->id].rsp[t->status / 100 <= 5 ? t->status / 100 : 0]);
			/* The request no longer needs to be kept for a retry. */
			if (t->flags & TX_RETAIN) {
				t->flags &= ~(uint32_t)TX_RETAIN;
				s->req.b.head = s->req.out;
			}
			if (s->rs == RS_TUNNEL) {
				sess_set_rq(s, RQ_TUNNEL);
				s->cli_exp = now_us + ms(s->fe->to.tunnel);
				s->srv_exp = now_us + ms(s->be->to.tunnel);
			}
			/* Body bytes that came with the head leave with it, in one write. */
			if (s->rs == RS_BODY)
				rsp_process(s);
			return true;
		}
		if (srv_gone) {
			empty_response(s, sc->flags & CF_ERROR ? "server reset the connection"
							       : "server closed the connection without responding");
			return true;
		}
		return false;
	case RS_BODY:
		if (c->fwd < c->b.tail) {
			uint32_t used;
			bool done;
			const char *why = NULL;

			if (http_parse_body(&t->rsp_p, c->b.data + c->fwd, c->b.tail - c->fwd, &used,
					    &done, &why) != OK) {
				abort_response(s, "SD");
				return true;
			}
			c->fwd += used;
			if (done) {
				sess_set_rs(s, RS_DONE);
				if (c->fwd < c->b.tail) {
					/* Bytes after the response: the connection is not clean. */
					t->flags &= ~(uint32_t)TX_SRV_KEEPALIVE;
					c->b.tail = c->fwd;
				}
			}
			return true;
		}
		if (srv_gone) {
			/* A body delimited by the close ends here; any other is truncated. */
			if (llhttp_message_needs_eof(&t->rsp_p) && !(sc->flags & CF_ERROR)) {
				sess_set_rs(s, RS_DONE);
				t->flags &= ~(uint32_t)(TX_SRV_KEEPALIVE | TX_CLI_KEEPALIVE);
				backend_release_conn(s, false);
			} else {
				abort_response(s, "SD");
			}
			return true;
		}
		return false;
	default:
		return false;
	}
}

/* ---- tunnel (after 101 Switching Protocols) ---- */

static bool tunnel_process(struct session *s)
{
	struct sconn *sc = s->sc;
	bool progress = false;

	if (s->rs != RS_TUNNEL)
		return false;
	if (s->rsp.fwd < s->rsp.b.tail) {
		s->rsp.fwd = s->rsp.b.tail;
		progress = true;
	}
	/* Propagate half-closes once the bytes before them are delivered. */
	/* Once one side is half-closed, the other gets client-fin / server-fin to close too. */
	if ((s->cflags & CF_EOF) && sc && !(sc->flags & CF_SHUTW) && s->req.out == s->req.fwd) {
		shutdown(sc->h.fd, SHUT_WR);
		sc->flags |= CF_SHUTW;
		s->srv_exp = now_us + ms(s->be->to.server_fin);
		progress = true;
	}
	if (sc && (sc->flags & CF_EOF) && !(s->cflags & CF_SHUTW) && s->rsp.out == s->rsp.fwd) {
		shutdown(s->cli.fd, SHUT_WR);
		s->cflags |= CF_SHUTW;
		s->cli_exp = now_us + ms(s->fe->to.client_fin);
		progress = true;
	}
	if ((s->cflags & CF_ERROR) || !sc || (sc->flags & CF_ERROR) ||
	    ((s->cflags & CF_EOF) && (sc->flags & CF_EOF) && s->req.out == s->req.fwd &&
	     s->rsp.out == s->rsp.fwd)) {
		session_log(s);
		session_close(s);
		return true;
	}
	return progress;
}

/* ---- end of a transaction ---- */

static void start_closing(struct session *s)
{
	/* Closing with unread bytes from the client makes the kernel send a reset, which can
	 * destroy the response still in flight. When nothing is pending, close now (the kernel
	 * delivers the data, then the FIN); otherwise half-close and read until the client
	 * closes or client-fin passes. */
	if (s->rq == RQ_DONE && !(s->txn->flags & TX_CLOSE_AFTER) &&
	    s->req.fwd == s->req.b.tail && !(s->cflags & CF_RD_READY)) {
		session_close(s);
		return;
	}
	txn_free(s);
	shutdown(s->cli.fd, SHUT_WR);
	s->cflags |= CF_SHUTW;
	sess_set_rq(s, RQ_CLOSING);
	s->srv_exp = 0;
	chan_drop(&s->req);
	chan_drop(&s->rsp);
	s->cli_exp = now_us + ms(s->fe->to.client_fin);
}

static bool txn_end(struct session *s)
{
	struct txn *t = s->txn;
	bool cli_ka, srv_reuse;

	if (!t || s->rs == RS_TUNNEL)
		return false;
	if (t->flags & TX_REPLY) {
		if (t->reply_off < t->reply_len)
			return false;
		/* The client may still be sending a body we never read: close after a reply
		 * unless the request was complete. */
		cli_ka = !(t->flags & (TX_CLOSE_AFTER | TX_REQ_BODY)) &&
			 (t->flags & TX_CLI_KEEPALIVE) && s->rq == RQ_DONE;
		srv_reuse = false;
	} else {
		if (s->rs != RS_DONE || rsp_pending(s))
			return false;
		cli_ka = (t->flags & TX_CLI_KEEPALIVE) && s->rq == RQ_DONE;
		srv_reuse = (t->flags & TX_SRV_KEEPALIVE) && s->rq == RQ_DONE &&
			    s->req.out == s->req.fwd;
	}
	t->t_end = now_us;
	if (t->status && s->fe)
		CTR_INC(s->fe->ctr[this_worker->id].rsp[t->status / 100 <= 5 ? t->status / 100 : 0]);
	CTR_ADD(s->fe->ctr[this_worker->id].bytes_in, t->bytes_in);
	CTR_ADD(s->fe->ctr[this_worker->id].bytes_out, t->bytes_out);
	if (s->be && s->be != s->fe) {
		CTR_ADD(s->be->ctr[this_worker->id].bytes_in, t->bytes_in);
		CTR_ADD(s->be->ctr[this_worker->id].bytes_out, t->bytes_out);
	}
	if (s->srv) {
		CTR_INC(s->srv->ctr[this_worker->id].req_tot);
		CTR_ADD(s->srv->ctr[this_worker->id].bytes_in, t->bytes_in);
		CTR_ADD(s->srv->ctr[this_worker->id].bytes_out, t->bytes_out);
	}
	session_log(s);
	backend_release_conn(s, srv_reuse);
	if (s->has_slot) {
		srv_put_slot(s->srv);
		s->has_slot = false;
	}
	if (!cli_ka || this_worker->stopping || (s->cflags & (CF_EOF | CF_ERROR))) {
		start_closing(s);
		return true;
	}
	/* Keep-alive: the next request starts right after this one (maybe already received). */
	txn_free(s);
	s->srv = NULL;
	s->be = NULL;
	sess_set_ss(s, SS_NONE);
	sess_set_rs(s, RS_NONE);
	sess_set_rq(s, RQ_IDLE);
	s->req.b.head = s->req.out = s->req.fwd;
	chan_release(&s->req);
	chan_release(&s->rsp);
	s->t_idle = now_us;
	s->srv_exp = 0;
	s->cli_exp = now_us + ms(s->fe->to.http_keep_alive);
	/* Pipelined bytes still in the socket left CF_RD_READY set (edges that came during the
	 * response were not consumed): no speculative read is needed. */
	return true;
}

/* ---- closing ---- */

static void session_close(struct session *s)
{
	if (s->closing)
		return;
	if (s->txn && !(s->txn->flags & TX_LOGGED) && s->txn->t_start) {
		if (!s->txn->t_end)
			s->txn->t_end = now_us;
		session_log(s);
	}
	s->closing = true;
	if (s->ss == SS_QUEUED)
		backend_dequeue(s);
	backend_release_conn(s, false);
	if (s->has_slot) {
		srv_put_slot(s->srv);
		s->has_slot = false;
	}
	loop_close(&s->cli);
	timer_disarm(&s->timer);
	tasklet_cancel(&s->task);
	chan_drop(&s->req);
	chan_drop(&s->rsp);
	txn_free(s);
	list_del(&s->list);
	proxy_thread->nsess--;
	atomic_fetch_sub_explicit(&keel_actconn, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&s->fe->feconn, 1, memory_order_relaxed);
	loop_defer_free(&proxy_thread->sess_pool, s);
	if (this_worker->stopping && proxy_thread->nsess == 0)
		this_worker->loop.quit = true;
}

/* ---- timeouts ---- */

static void on_timeout(struct session *s)
{
	struct txn *t = s->txn;

	if (s->srv_exp && now_us >= s->srv_exp) {
		s->srv_exp = 0;
		switch (s->ss) {
		case SS_QUEUED:
			CTR_INC(s->be->ctr[this_worker->id].queue_timeouts);
			session_error(s, 503, "timeout in queue", "sQ");
			return;
		case SS_CONNECTING:
			conn_failed(s, "connect timeout", true);
			return;
		case SS_READY:
			if (s->rs == RS_TUNNEL) {
				/* tunnel idle, or server-fin after a half-close */
				set_term(s, "sD");
				session_close(s);
				return;
			}
			if (t->pertry_ms && s->rs == RS_NONE && srv_wait_expired(s))
				return;
			if (s->srv) {
				CTR_INC(s->srv->ctr[this_worker->id].timeouts);
				health_event(s->srv, HEV_TIMEOUT, now_us - t->t_conn, NULL);
			}
			CTR_INC(s->be->ctr[this_worker->id].timeouts);
			if (!(t->flags & TX_RSP_STARTED) && s->rs <= RS_HEAD) {
				srv_detach(s);
				session_error(s, 504, "server response timeout", "sH");
			} else {
				abort_response(s, "sD");
			}
			return;
		default:
			break;
		}
	}
	if (s->cli_exp && now_us >= s->cli_exp) {
		s->cli_exp = 0;
		switch (s->rq) {
		case RQ_IDLE:
		case RQ_CLOSING:
			session_close(s);
			return;
		case RQ_HEAD:
			CTR_INC(s->fe->ctr[this_worker->id].failed_req);
			session_error(s, 408, "timeout while receiving the request head", "cR");
			return;
		case RQ_BODY:
			if (!(t->flags & TX_RSP_STARTED) && !(t->flags & TX_REPLY)) {
				session_error(s, 408, "timeout while receiving the request body", "cD");
				return;
			}
			break;
		default:
			break;
		}
		/* Waiting on the client (slow reader, tunnel idle): give up on it. */
		set_term(s, "cD");
		session_close(s);
		return;
	}
}

static void session_update_timer(struct session *s)
{
	uint64_t exp = 0;

	if (s->cli_exp)
		exp = s->cli_exp;
	if (s->srv_exp && (!exp || s->srv_exp < exp))
		exp = s->srv_exp;
	/* Waiting on a server response does not time out on the client side. */
	if (!exp) {
		timer_disarm(&s->timer);
		return;
	}
	/* Deadlines only move later during traffic: re-arming is deferred until the timer fires,
	 * which keeps heap operations off the per-read path. */
	if (!timer_armed(&s->timer) || exp < s->timer.expire)
		timer_arm(&s->timer, exp);
}

static void sess_timer_cb(struct timer *tm)
{
	struct session *s = container_of(tm, struct session, timer);

	if ((s->cli_exp && now_us >= s->cli_exp) || (s->srv_exp && now_us >= s->srv_exp))
		on_timeout(s);
	session_run(s);
}

static void sess_task_cb(struct tasklet *t)
{
	session_run(container_of(t, struct session, task));
}

void session_wake(struct session *s)
{
	tasklet_wake(&s->task);
}

/* Client-side deadline for the current state. */
static void refresh_cli_exp(struct session *s)
{
	struct txn *t = s->txn;

	/* While the server works on the request, only the server timeout runs. */
	if (s->rq == RQ_DONE && !(t && (t->flags & TX_REPLY)) && !rsp_pending(s))
		s->cli_exp = 0;
	else if (s->rq == RQ_DONE && !s->cli_exp)
		s->cli_exp = now_us + ms(s->fe->to.client);
	if (s->ss != SS_QUEUED && s->ss != SS_CONNECTING && s->ss != SS_READY)
		s->srv_exp = 0;
	if (s->ss == SS_READY && (s->rs == RS_DONE || (t && (t->flags & TX_REPLY))))
		s->srv_exp = 0;
}

/* Bytes a spliced response may move in one session_run() before it lets the other sessions of the
 * thread have their turn (it goes on from a tasklet, after them). A pipe moves a megabyte in a
 * few dozen system calls: without this, one download would have the loop until its server
 * socket is drained, and with ten 1 MB downloads through one thread the throughput measured
 * 0.78x of what it is with 256 KB turns (bench, 6 rounds). Copied bodies did not gain from it
 * (0.94x, within noise), so they keep running until they block. */
#define SPLICE_RUN_BUDGET (256u * 1024u)

void session_run(struct session *s)
{
	int guard = 0;
	uint64_t spliced = 0;

	while (!s->closing) {
		bool p = false;
		struct txn *t0 = s->txn;
		uint64_t out0 = t0 ? t0->bytes_out : 0;

		p |= cli_recv(s);
		if (s->closing)
			break;
		p |= req_process(s);
		if (s->closing)
			break;
		p |= srv_process(s);
		p |= srv_send(s);
		p |= srv_recv(s);
		p |= rsp_process(s);
		p |= cli_send(s);
		if (s->closing)
			break;
		p |= tunnel_process(s);
		if (s->closing)
			break;
		if (s->cflags & CF_ERROR) {
			/* The client is gone: nothing left to do for it. */
			if (s->txn && s->rq != RQ_CLOSING) {
				set_term(s, "CD");
				CTR_INC(s->fe->ctr[this_worker->id].cli_aborts);
			}
			session_close(s);
			break;
		}
		if (t0 && s->txn == t0 && t0->rsp_pipe)
			spliced += t0->bytes_out - out0;
		p |= txn_end(s);
		if (s->closing || !p)
			break;
		if (spliced >= SPLICE_RUN_BUDGET) {
			session_wake(s);
			break;
		}
		BUG_ON(++guard > 100000);
	}
	if (s->closing)
		return;
	if (s->rq == RQ_CLOSING && (s->cflags & (CF_EOF | CF_ERROR))) {
		session_close(s);
		return;
	}
	refresh_cli_exp(s);
	session_update_timer(s);
}

/* ---- logs ---- */

static struct logformat fmt_httplog, fmt_tcplog;

static void ensure_formats(void)
{
	static atomic_int done;
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

	if (atomic_load(&done))
		return;
	pthread_mutex_lock(&lock);
	if (!atomic_load(&done)) {
		struct cfg_ctx c = {0};

		logformat_parse(&c, LOGFMT_HTTPLOG, &fmt_httplog);
		logformat_parse(&c, "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq",
				&fmt_tcplog);
		atomic_store(&done, 1);
	}
	pthread_mutex_unlock(&lock);
}

static size_t json_str(char *o, size_t cap, const char *s, size_t n)
{
	size_t k = 0, i;

	for (i = 0; i < n && k + 7 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			o[k++] = '\\';
			o[k++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			k += (size_t)snprintf(o + k, cap - k, "\\u%04x", ch);
		} else {
			o[k++] = (char)ch;
		}
	}
	return k;
}

static size_t render_json(struct session *s, char *out, size_t cap)
{
	struct txn *t = s->txn;
	char ip[64], rl[KEEL_LOG_URI_LEN * 6 + 8], why[512];
	struct sample smp;
	struct sample_expr e = {.fetch = SMP_SRC};
	size_t rll, wl;
	long long tr = -1, tw = -1, tc_ = -1, tres = -1, ta = -1;

	sample_fetch(s, &e, &smp);
	sample_to_str(&smp, ip, sizeof(ip));
	rll = json_str(rl, sizeof(rl), t->reqline, t->reqline_len);
	wl = t->err_why ? json_str(why, sizeof(why), t->err_why, strlen(t->err_why)) : 0;
#define SPAN(a, b) ((a) && (b) && (b) >= (a) ? (long long)(((b) - (a)) / 1000) : -1)
	tr = SPAN(t->t_start, t->t_head);
	tw = SPAN(t->t_head, t->t_queue);
	tc_ = SPAN(t->t_queue, t->t_conn);
	tres = SPAN(t->t_conn, t->t_rsp);
	ta = SPAN(t->t_start, t->t_end);
#undef SPAN
	return (size_t)snprintf(
		out, cap,
		"{\"time\":%.3f,\"client_ip\":\"%s\",\"client_port\":%u,\"frontend\":\"%s\","
		"\"backend\":\"%s\",\"server\":\"%s\",\"TR\":%lld,\"Tw\":%lld,\"Tc\":%lld,"
		"\"Tr\":%lld,\"Ta\":%lld,\"status\":%u,\"bytes_read\":%llu,\"bytes_uploaded\":%llu,"
		"\"termination_state\":\"%c%c\",\"retries\":%d,\"request\":\"%.*s\"%s%.*s%s}",
		(double)t->wall_start / 1e6, ip,
		(unsigned)ntohs(s->addr.sa.sa_family == AF_INET6 ? s->addr.in6.sin6_port
								  : s->addr.in.sin_port),
		s->fe->name, s->be ? s->be->name : s->fe->name, s->srv ? s->srv->name : "<NOSRV>", tr,
		tw, tc_, tres, ta, t->status, (unsigned long long)t->bytes_out,
		(unsigned long long)t->bytes_in, t->term[0], t->term[1],
		s->be ? MAX(0, s->be->retries - t->retries) : 0, (int)rll, rl,
		wl ? ",\"reason\":\"" : "", (int)wl, why, wl ? "\"" : "");
}

void session_log(struct session *s)
{
	struct txn *t = s->txn;
	char line[4096];
	size_t n;
	const struct proxy *fe = s->fe;
	uint32_t opts = fe->opts;

	if (!t || (t->flags & TX_LOGGED))
		return;
	t->flags |= TX_LOGGED;
	if (!fe->logs.n && !(fe->log_global && global.logs.n))
		return;
	if ((opts & PO_DONTLOGNULL) && t->bytes_in == 0 && !t->reqline_len)
		return;
	if ((opts & PO_DONTLOG_NORMAL) && t->status < 500 && t->term[0] == '-')
		return;
	if (!t->t_end)
		t->t_end = now_us;
	ensure_formats();
	if (opts & PO_LOGJSON)
		n = render_json(s, line, sizeof(line));
	else if (fe->logfmt_set)
		n = logformat_render(&fe->logfmt, s, line, sizeof(line));
	else if (opts & PO_HTTPLOG)
		n = logformat_render(&fmt_httplog, s, line, sizeof(line));
	else
		n = logformat_render(&fmt_tcplog, s, line, sizeof(line));
	n = MIN(n, sizeof(line) - 1);
	log_request(this_worker->id, &fe->logs, fe->log_global,
		    (t->status >= 500 || t->term[0] != '-') && (opts & PO_LOG_SEPARATE_ERRORS)
			    ? LOG_LVL_ERR : LOG_LVL_INFO,
		    line, n);
}

/* ---- stopping ---- */

#define STOP_IDLE_GRACE_US 1000000

void session_soft_stop(void)
{
	struct list *l, *tmp;

	list_for_each_safe(l, tmp, &proxy_thread->sessions) {
		struct session *s = list_entry(l, struct session, list);

		uint64_t exp = s->t_idle + STOP_IDLE_GRACE_US;

		/* The others close after their response. A connection accepted just before the
		 * stop has not sent its first request yet: it is served once, with "Connection:
		 * close". An idle keep-alive connection closes once idle for STOP_IDLE_GRACE_US:
		 * a client that reuses it sooner (likely for the last one it used) gets its
		 * answer and the close, instead of a request racing our close (a reset). */
		if (s->rq != RQ_IDLE || s->txn || !s->nreq)
			continue;
		if (exp <= now_us) {
			session_close(s);
		} else if (!s->cli_exp || exp < s->cli_exp) {
			s->cli_exp = exp;
			session_update_timer(s);
		}
	}
	if (proxy_thread->nsess == 0)
		this_worker->loop.quit = true;
}

void session_kill_all(void)
{
	struct list *l, *tmp;

	list_for_each_safe(l, tmp, &proxy_thread->sessions) {
		struct session *s = list_entry(l, struct session, list);

		set_term(s, "KI");
		session_close(s);
	}
	this_worker->loop.quit = true;
}

/* The stream state machine: one request on a client connection, its response, and the server
 * connection that serves it.
 *
 * Every event (socket readiness, timer, queue wake-up) ends in stream_run(), which runs the steps
 * below in order until none makes progress:
 *   mux rcv -> req_process -> srv_process -> srv_send -> srv_recv -> rsp_process -> mux snd
 *   -> tunnel_process -> txn_end
 * The two mux steps are the client's side (s->sess->mux, include/keel/mux-t.h: HTTP/1 reads and
 * writes the client socket); the others are the stream's own. Each step looks at the state
 * (s->rq, s->ss, s->rs) and the flags (s->cflags for the client as the mux reports it, the server
 * connection's) and does what it can without blocking; the contract of each, which states it
 * expects and which it may leave, is above it. States change only through stream_set_rq(),
 * stream_set_ss() and stream_set_rs() (called here, in mux-h1.c, backend.c and http-ana.c), which
 * check each change against the tables of allowed transitions below. Whether a failed try goes to
 * a server again, and which, is decided in one place: try_again(). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <keel/backend.h>
#include <keel/chan.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/conn.h>
#include <keel/errors.h>
#include <keel/global.h>
#include <keel/health.h>
#include <keel/http-ana.h>
#include <keel/http.h>
#include <keel/log.h>
#include <keel/loop.h>
#include <keel/mux-t.h>
#include <keel/pipe.h>
#include <keel/pool.h>
#include <keel/session.h>
#include <keel/stream.h>
#include <keel/timer.h>
#include <keel/worker.h>

static void stream_timer_cb(struct timer *t);
static void stream_task_cb(struct tasklet *t);

/* ---- states ----
 *
 * s->rq, s->ss and s->rs change only through the three setters below. Each table gives, for a
 * current state, the states it may go to (bit 1u << next); a change not listed is a bug. A
 * stream starts zeroed: RQ_IDLE, SS_NONE, RS_NONE (stream_init()). Some entries are
 * not reached by the code as it is (marked "not reached"): they stay because the function that
 * takes them is written to work from there, and a missing entry would stop the process (BUG_ON()
 * is always on). */

static const uint8_t rq_next[] = {
	/* The mux on the first byte of a request (HEAD: mux-h1.c, h1_start()); reply_start()
	 * (DONE: not reached, an idle stream has no transaction). */
	[RQ_IDLE] = 1u << RQ_HEAD | 1u << RQ_DONE,
	/* http_ana_request() forwards the head (BODY, or DONE without a body); reply_start()
	 * answers locally (DONE). */
	[RQ_HEAD] = 1u << RQ_BODY | 1u << RQ_DONE,
	/* req_process() at the end of the body (DONE); rsp_process() on a 101 that came before the
	 * end of the body (TUNNEL: not reached in the tests); the mux's lingering close when the
	 * response or a reply is out before the end of the body (CLOSING: h1_start_closing()). */
	[RQ_BODY] = 1u << RQ_DONE | 1u << RQ_TUNNEL | 1u << RQ_CLOSING,
	/* After txn_end(), the mux keeps the connection alive (IDLE: h1_end()) or closes it
	 * (CLOSING: h1_start_closing()); rsp_process() on a 101 (TUNNEL). */
	[RQ_DONE] = 1u << RQ_IDLE | 1u << RQ_CLOSING | 1u << RQ_TUNNEL,
	/* Final: the stream closes from these. */
	[RQ_TUNNEL] = 0,
	[RQ_CLOSING] = 0,
};

static const uint8_t ss_next[] = {
	/* srv_process(): backend_assign() queues (QUEUED), backend_connect() connects
	 * (CONNECTING) or takes a pooled connection (READY), or fails and try_again() retries
	 * through rewind_request() (NONE again: not reached in the tests); reply_start() answers
	 * locally (CLOSED). */
	[SS_NONE] = 1u << SS_NONE | 1u << SS_QUEUED | 1u << SS_CONNECTING | 1u << SS_READY |
		    1u << SS_CLOSED,
	/* backend_process_queues() gives it a slot (NONE: srv_process() then connects);
	 * reply_start() on the queue timeout (CLOSED). */
	[SS_QUEUED] = 1u << SS_NONE | 1u << SS_CLOSED,
	/* srv_process() sees the connect complete (READY); try_again() retries through
	 * rewind_request() (NONE) or conn_failed() answers 503 through reply_start() (CLOSED). */
	[SS_CONNECTING] = 1u << SS_READY | 1u << SS_NONE | 1u << SS_CLOSED,
	/* rewind_request() after an empty response or a per-try timeout, and the mux after a
	 * keep-alive response (NONE: h1_end()); reply_start() answers 502 or 504 (CLOSED). */
	[SS_READY] = 1u << SS_NONE | 1u << SS_CLOSED,
	/* The mux after a keep-alive reply (NONE: h1_end()); reply_start() again, each reply
	 * replacing the previous one (CLOSED: not reached). */
	[SS_CLOSED] = 1u << SS_NONE | 1u << SS_CLOSED,
};

static const uint8_t rs_next[] = {
	/* rsp_process() on the first response byte (HEAD); rewind_request() on a retry and
	 * h1_end() after a keep-alive reply (NONE again); abort_response() (DONE: not reached,
	 * with no head received no byte went to the client, which gets a 504 instead). */
	[RS_NONE] = 1u << RS_NONE | 1u << RS_HEAD | 1u << RS_DONE,
	/* rsp_process() on the next bytes of the head or on the head after a 1xx (HEAD again);
	 * http_ana_response() on a complete head (BODY; DONE without a body; TUNNEL on a 101);
	 * abort_response() on a server timeout after a 1xx went to the client (DONE);
	 * rewind_request() and h1_end() (NONE: not reached, no retry once a 1xx went to the
	 * client, and only replies made from the request head keep the connection alive). */
	[RS_HEAD] = 1u << RS_HEAD | 1u << RS_BODY | 1u << RS_DONE | 1u << RS_TUNNEL |
		    1u << RS_NONE,
	/* rsp_process() and srv_splice_in() at the end of the body, abort_response() on a
	 * truncated or invalid body or a timeout (DONE); h1_end() (NONE: not reached, as for
	 * HEAD). */
	[RS_BODY] = 1u << RS_DONE | 1u << RS_NONE,
	/* h1_end() after a keep-alive response (NONE); abort_response() on a server timeout
	 * (DONE again: not reached, refresh_cli_exp() clears srv_exp once the response is in). */
	[RS_DONE] = 1u << RS_NONE | 1u << RS_DONE,
	/* Final: the stream closes from it. */
	[RS_TUNNEL] = 0,
};

void stream_set_rq(struct stream *s, enum req_state to)
{
	BUG_ON(!(rq_next[s->rq] & (1u << to)));
	s->rq = (uint8_t)to;
}

void stream_set_ss(struct stream *s, enum srv_state to)
{
	BUG_ON(!(ss_next[s->ss] & (1u << to)));
	s->ss = (uint8_t)to;
}

void stream_set_rs(struct stream *s, enum rsp_state to)
{
	BUG_ON(!(rs_next[s->rs] & (1u << to)));
	s->rs = (uint8_t)to;
}

/* ---- transactions ---- */

struct txn *stream_txn_start(struct stream *s)
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
	s->sess->nreq++;
	return t;
}

void stream_txn_free(struct stream *s)
{
	struct txn *t = s->txn;

	if (!t)
		return;
	free(t->reply_heap);
	pipe_put(t->rsp_pipe);
	pool_free(&proxy_thread->txn_pool, t);
	s->txn = NULL;
}

void stream_set_term(struct stream *s, const char *term)
{
	if (s->txn && s->txn->term[0] == '-' && term) {
		s->txn->term[0] = term[0];
		s->txn->term[1] = term[1];
	}
}

/* ---- replies keel writes itself ---- */

static void reply_start(struct stream *s, const char *data, uint32_t len, char *heap, int status,
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
	stream_set_ss(s, SS_CLOSED);
	s->srv_exp = 0;
	if (s->rq == RQ_HEAD || s->rq == RQ_IDLE)
		stream_set_rq(s, RQ_DONE);
	s->cli_exp = now_us + ms_to_us(s->fe->to.client);
}

void stream_error(struct stream *s, int status, const char *why, const char *term)
{
	uint32_t len;
	const char *r;

	if (!s->txn)
		return;
	r = http_err_response(s->fe->errmsg, s->be ? s->be->errmsg : NULL, status, &len);
	s->txn->err_why = why;
	stream_set_term(s, term);
	if (status >= 500 && s->be)
		CTR_INC(s->be->ctr[this_worker->id].rsp[5]);
	reply_start(s, r, len, NULL, status, true);
}

void stream_reply_heap(struct stream *s, char *data, uint32_t len, int status, bool close)
{
	reply_start(s, data, len, data, status, close);
}

/* Response bytes received and not yet sent to the client: in the buffer and in the pipe. */
static uint32_t rsp_pending(const struct stream *s)
{
	const struct kpipe *p = s->txn ? s->txn->rsp_pipe : NULL;

	return s->rsp.fwd - s->rsp.out + (p ? p->len : 0);
}

/* Whether s has something for its client: a reply not all sent, or response bytes (in the
 * buffer or the pipe). The mux is asked to send only then: most passes of stream_run() have
 * nothing to send, and the call through the mux costs more than this test. */
static bool cli_pending(const struct stream *s)
{
	const struct txn *t = s->txn;

	if (t && (t->flags & TX_REPLY))
		return t->reply_off < t->reply_len;
	return rsp_pending(s) != 0;
}

/* ---- request ----
 *
 * req_process(): the request side once the mux started it (RQ_HEAD; RQ_IDLE and RQ_CLOSING are
 * the HTTP/1 connection's, handled by mux-h1.c). HEAD: scans the head as bytes come, analyses
 * it once complete (http_ana_request()) -> BODY or DONE, or a local reply (DONE); a client gone
 * first closes the stream. BODY: validates the body's framing as it passes -> DONE; a bad chunk
 * gets a 400 (or, once the response started, the stream closes). TUNNEL: forwards everything.
 * DONE: nothing (pipelined bytes wait in the socket). */

/* The client went away before the end of its request (term: the log's termination state). */
static void cli_aborted(struct stream *s, const char *term)
{
	stream_set_term(s, term);
	CTR_INC(s->fe->ctr[this_worker->id].cli_aborts);
	stream_close(s);
}

static bool req_process(struct stream *s)
{
	struct chan *c = &s->req;
	struct txn *t = s->txn;
	uint32_t len, hlen = 0;
	int r;

	switch (s->rq) {
	case RQ_HEAD:
		len = buf_len(&c->b);
		r = http_scan_head(buf_head(&c->b), len, &t->req_scan, &hlen, &t->req_line1);
		if (r == HTTP_SCAN_ERROR) {
			CTR_INC(s->fe->ctr[this_worker->id].failed_req);
			stream_error(s, 400, "invalid line ending or obs-fold in request head", "PR");
			return true;
		}
		if (r == HTTP_SCAN_MORE) {
			if (len >= tl->bufsize - global.maxrewrite) {
				CTR_INC(s->fe->ctr[this_worker->id].failed_req);
				stream_error(s, t->req_line1 ? 431 : 414,
					     t->req_line1 ? "request head too large"
							  : "request line too long",
					     "PR");
				return true;
			}
			if (s->cflags & (CF_EOF | CF_ERROR)) {
				cli_aborted(s, "CR");
				return true;
			}
			return false;
		}
		if (hlen > tl->bufsize - global.maxrewrite) {
			stream_error(s, t->req_line1 ? 431 : 414, "request head too large", "PR");
			return true;
		}
		if (http_ana_request(s, hlen) != OK) {
			/* Answered locally: the head is consumed, a body (if any) is not. */
			c->out = c->fwd = c->b.head + hlen;
			return true;
		}
		s->cli_exp = s->rq == RQ_BODY ? now_us + ms_to_us(s->fe->to.client) : 0;
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
					stream_error(s, 400, why, "PD");
				} else {
					stream_set_term(s, "PD");
					stream_close(s);
				}
				return true;
			}
			c->fwd += used;
			t->bytes_in += used;
			if (done)
				stream_set_rq(s, RQ_DONE);
			return used > 0 || done;
		}
		if (s->cflags & (CF_EOF | CF_ERROR)) {
			/* The client went away in the middle of its body. */
			cli_aborted(s, "CD");
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

/* ---- server side ----
 *
 * srv_process(): a request with a backend and no reply yet. NONE: takes a slot on a server
 * (balancing, or the pinned server) -> QUEUED when all are full, then connects -> CONNECTING, or
 * READY on a pooled connection; no server at all is a 503. CONNECTING: the connect completed ->
 * READY, or failed -> try_again() (NONE) or a 503 (CLOSED). Other states: nothing.
 * srv_send(): READY only: writes s->req between out and fwd to the server (after the I/O phase).
 * srv_recv(): READY only, until the response is DONE: reads into s->rsp, or splices into the
 * response's pipe. Neither changes a state, except srv_splice_in() at the end of a spliced body
 * (RS_DONE). */

/* Whether the request can be sent again from the start. */
static bool replayable(const struct stream *s)
{
	const struct txn *t = s->txn;

	if (t->flags & TX_RSP_STARTED)
		return false;
	if (!(t->flags & TX_REQ_SENT))
		return true;
	return (t->flags & TX_RETAIN) != 0;
}

static void srv_detach(struct stream *s)
{
	backend_release_conn(s, false);
	if (s->has_slot) {
		srv_put_slot(s->srv);
		s->has_slot = false;
	}
}

static void rewind_request(struct stream *s)
{
	struct txn *t = s->txn;

	s->req.out = s->req.b.head;
	t->flags &= ~(uint32_t)(TX_REQ_SENT | TX_CONTINUED);
	t->t_sent = 0;
	/* Response bytes from the failed attempt are dropped. */
	s->rsp.b.head = s->rsp.b.tail = s->rsp.out = s->rsp.fwd = 0;
	t->rsp_scan = 0;
	stream_set_rs(s, RS_NONE);
	stream_set_ss(s, SS_NONE);
}

/* Whether a retry leaves srv. Only hash-based balancing and cookie persistence (TX_CK_PINNED) keep
 * a request on its server; "option redispatch" or an unusable server moves even those. */
static bool retry_elsewhere(const struct stream *s, const struct server *srv)
{
	return !srv || (s->be->opts & PO_REDISPATCH) ||
	       (s->be->lb < LB_SOURCE && !(s->txn->flags & TX_CK_PINNED)) || !srv_usable(srv);
}

/* Whether a request the server may have received can be sent to another: idempotent without a
 * body, or any whose body is still held (TX_HOLD: without its body, the server cannot have run
 * it); not an upgrade, with a retry left, and no response byte sent to the client yet. */
static bool resendable(const struct stream *s)
{
	const struct txn *t = s->txn;

	return !(t->flags & TX_UPGRADE) && t->retries > 0 && replayable(s) &&
	       ((t->flags & TX_HOLD) || (!(t->flags & TX_REQ_BODY) && http_meth_idempotent(t->meth)));
}

/* The body of a held request goes: its server answered 100, or it is not known to answer one
 * and had its wait. From its first byte, a request that is not idempotent cannot be sent again. */
static void hold_release(struct stream *s)
{
	struct txn *t = s->txn;

	t->flags &= ~(uint32_t)TX_HOLD;
	if (!http_meth_idempotent(t->meth))
		t->flags &= ~(uint32_t)TX_RETAIN;
}

/* How long a held body waits for a 100 when per-try timeouts are off ("per-try-timeout off"):
 * the server's 100, or its removal, is looked for at this period. A server not known to answer
 * 100 is looked at every HOLD_PROBE_MS: once it answered anything else since the head left, it
 * is alive and ignores Expect, and the body goes; after HOLD_PROBE_MAX_MS without a sign of
 * life it may simply be idle, and the body goes too (a frozen one keeps it until then, and the
 * request moves if its server is taken out meanwhile). */
#define HOLD_WAIT_MS 1000
#define HOLD_PROBE_MS 250
#define HOLD_PROBE_MAX_MS 1000

/* The server-side deadline while the server owes us the response head. timeout server runs from
 * the last activity; the per-try deadline runs from the start of the try, and past it the request
 * wakes up every per-try period to look at its server's health (see srv_wait_expired()). */
static uint64_t srv_wait_exp(struct stream *s, bool activity)
{
	struct txn *t = s->txn;
	uint32_t period = t->pertry_ms ? t->pertry_ms : HOLD_WAIT_MS;
	uint64_t d;

	if ((t->flags & TX_HOLD) && s->srv && atomic_load(&s->srv->expect) != SRV_EXPECT_100)
		period = MIN(period, HOLD_PROBE_MS);
	if (activity)
		t->srv_full_exp = now_us + ms_to_us(s->be->to.server);
	/* A held body wakes the request up too, per-try timeouts or not (srv_wait_expired()). */
	if ((!t->pertry_ms && !(t->flags & TX_HOLD)) || s->rs != RS_NONE)
		return t->srv_full_exp;
	d = t->t_conn + ms_to_us(period);
	if (d <= now_us)
		d = now_us + ms_to_us(period);
	return MIN(d, t->srv_full_exp);
}

/* Why a try failed, for try_again(). */
enum retry_why {
	RETRY_CONN,    /* the connection failed (refused, timeout, unreachable) */
	RETRY_EMPTY,   /* the server closed or reset it without a byte of response */
	RETRY_PERTRY,  /* no response head within the per-try deadline */
	RETRY_SRV_OUT, /* the server was taken out (ejected, down) while the request waited */
};

/* The one place that decides whether a request whose try failed goes to a server again, and to
 * which: the retries left ("retries"), whether the request can be sent twice (replayable(),
 * idempotence), a reused pooled connection's free retry, the retry budget of per-try timeouts,
 * redispatch ("option redispatch", hash-based balancing) and persistence (a cookie-pinned request
 * stays on its server unless that server is out). Returns true when the request was rewound for
 * another try (s->srv kept for the same server, NULL for the balancer to choose), false when the
 * caller answers the client instead. A per-try timeout or a server taken out sends the request
 * elsewhere or not at all: there is no point in asking a stuck server again. */
static bool try_again(struct stream *s, enum retry_why why)
{
	struct txn *t = s->txn;
	struct server *srv = s->srv;
	bool elsewhere;

	switch (why) {
	case RETRY_CONN:
		if (!t->retries || !replayable(s))
			return false;
		elsewhere = retry_elsewhere(s, srv);
		break;
	case RETRY_EMPTY:
		/* Only a request that is safe to send twice goes again. A reused connection that
		 * the server closed while idle is the usual cause: one extra try on a fresh
		 * connection, to the same server, not counted as a retry. */
		if (!replayable(s) || ((t->flags & TX_REQ_SENT) && !http_meth_idempotent(t->meth) &&
					!(t->flags & TX_HOLD)))
			return false;
		if ((t->flags & TX_REUSED) && !(t->flags & TX_FREE_RETRY)) {
			t->flags |= TX_FREE_RETRY;
			t->flags &= ~(uint32_t)TX_REUSED;
			rewind_request(s);
			return true;
		}
		if (!t->retries)
			return false;
		elsewhere = retry_elsewhere(s, srv);
		break;
	case RETRY_PERTRY:
	case RETRY_SRV_OUT:
	default:
		/* Once per request on the per-try deadline, and never for a cookie-pinned request
		 * unless its server was taken out. Leaving a server taken out is free: it gets no
		 * traffic anyway, so the retry adds no load to the sick one and needs no budget. */
		if (!resendable(s) ||
		    (why == RETRY_PERTRY && (t->flags & (TX_PERTRY_DONE | TX_CK_PINNED))))
			return false;
		t->flags |= TX_PERTRY_DONE;
		if (!backend_has_other(s->be, srv) ||
		    (why == RETRY_PERTRY && !health_retry_allowed(s->be)))
			return false;
		if (why == RETRY_PERTRY) {
			/* Charged to srv if the retry answers faster (rsp_head_health()). */
			t->pertry_srv = srv;
			t->pertry_waited_ms = (uint32_t)((now_us - t->t_conn) / 1000);
		}
		elsewhere = true;
		break;
	}
	t->retries--;
	if (srv)
		CTR_INC(srv->ctr[this_worker->id].retries);
	CTR_INC(s->be->ctr[this_worker->id].retries);
	if (elsewhere && srv)
		CTR_INC(s->be->ctr[this_worker->id].redispatches);
	srv_detach(s);
	t->last_srv = srv;
	if (elsewhere)
		s->srv = NULL;
	rewind_request(s);
	return true;
}

/* A connection attempt failed (refused, timeout, unreachable): counted, reported to health,
 * then another try or a 503. */
static void conn_failed(struct stream *s, const char *why, bool timeout)
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
	if (!try_again(s, RETRY_CONN))
		stream_error(s, 503, why, timeout ? "sC" : "SC");
}

/* The server closed or reset the connection before any byte of the response: counted,
 * reported to health, then another try or a 502. */
static void empty_response(struct stream *s, const char *why)
{
	struct txn *t = s->txn;
	struct server *srv = s->srv;

	CTR_INC(srv->ctr[this_worker->id].failed_rsp);
	srv_detach(s);
	t->last_srv = srv;
	t->err_why = why;
	/* A pooled connection the server closed while idle says nothing about its health. */
	if (!(t->flags & TX_REUSED) || (t->flags & TX_FREE_RETRY))
		health_event(srv, HEV_RESET, now_us - t->t_conn, why);
	if (try_again(s, RETRY_EMPTY))
		return;
	CTR_INC(s->be->ctr[this_worker->id].failed_rsp);
	stream_error(s, 502, why, "SH");
}

/* No response byte yet at a per-try wake-up, before timeout server. Returns true when handled:
 * the request went to another server (once per request on the per-try deadline, or because its
 * server was taken out while it waited), or it failed because its server was taken out and it
 * cannot be sent again (a POST must not wait for a frozen server until timeout server: the
 * client gets a clear 504 now), or it keeps waiting. A held body whose server is not known to
 * answer 100 goes once that server shows it is alive, or after HOLD_PROBE_MAX_MS. */
static bool srv_wait_expired(struct stream *s)
{
	struct txn *t = s->txn;
	struct server *srv = s->srv;
	bool out = srv && health_srv_out(srv);

	if (now_us >= t->srv_full_exp)
		return false;
	if ((t->flags & TX_HOLD) && srv && !out && atomic_load(&srv->expect) != SRV_EXPECT_100) {
		if (health_alive_us(srv) > t->t_sent ||
		    now_us - t->t_sent >= ms_to_us(HOLD_PROBE_MAX_MS)) {
			hold_release(s);
			t->flags |= TX_HOLD_WAITED;
		}
		s->srv_exp = srv_wait_exp(s, false);
		return true;
	}
	if ((out || t->pertry_ms) && try_again(s, out ? RETRY_SRV_OUT : RETRY_PERTRY))
		return true;
	/* A held request that stays (pinned by a cookie, no retry budget, no other server): a
	 * missing 100 is the server's, whatever its application's speed. Said once to health, so
	 * that a frozen server that only gets such requests is still taken out (and they move). */
	if ((t->flags & (TX_HOLD | TX_HOLD_LATE)) == TX_HOLD && !out) {
		t->flags |= TX_HOLD_LATE;
		health_event(srv, HEV_TIMEOUT, now_us - t->t_conn, "no 100 Continue within the per-try timeout");
	}
	if (out) {
		CTR_INC(srv->ctr[this_worker->id].timeouts);
		CTR_INC(s->be->ctr[this_worker->id].timeouts);
		srv_detach(s);
		stream_error(s, 504, "server taken out while the request waited (not retried)", "sH");
		return true;
	}
	s->srv_exp = srv_wait_exp(s, false);
	return true;
}

/* A response head arrived: feeds the server's latency and error streak, and charges the server a
 * per-try timeout left when this retry answered faster than that server was given. */
static void rsp_head_health(struct stream *s)
{
	struct txn *t = s->txn;
	/* From the last request byte the server got: the time a client takes to upload a body
	 * (a slow link, a hostile trickle) is not the server's. */
	uint64_t ttfb = now_us - (t->t_sent ? t->t_sent : t->t_conn);

	if (t->pertry_srv) {
		if (ttfb < (uint64_t)t->pertry_waited_ms * 1000)
			health_event(t->pertry_srv, HEV_TIMEOUT, (uint64_t)t->pertry_waited_ms * 1000,
				     "another server answered the retry in time");
		t->pertry_srv = NULL;
	}
	health_response(s->srv, ttfb, t->status);
}

static bool srv_process(struct stream *s)
{
	struct txn *t = s->txn;
	struct sconn *sc = s->sc;
	int r, err;

	if (!t || (t->flags & TX_REPLY) || !s->be)
		return false;
	switch (s->ss) {
	case SS_NONE:
		if (s->rq != RQ_BODY && s->rq != RQ_DONE)
			return false;
		if (!s->has_slot) {
			r = s->srv ? backend_assign_pinned(s, s->srv) : backend_assign(s);
			if (r == ERR) {
				stream_error(s, 503, "no server available", "SC");
				return true;
			}
			if (r == AGAIN) {
				s->srv_exp = t->t_head + ms_to_us(s->be->to.queue);
				return true;
			}
		}
		if (!t->t_queue)
			t->t_queue = now_us;
		t->pertry_ms = health_pertry_ms(s->be);
		/* A server known to ignore Expect gets the body at once (and no Expect from keel). */
		if ((t->flags & TX_HOLD) && atomic_load(&s->srv->expect) == SRV_EXPECT_NONE) {
			if (t->flags & TX_EXPECT_OURS)
				http_ana_strip_expect(s);
			hold_release(s);
		}
		if (backend_connect(s) != OK) {
			conn_failed(s, t->err_why, false);
			return true;
		}
		if (s->ss == SS_CONNECTING)
			s->srv_exp = now_us + ms_to_us(s->be->to.connect);
		else
			s->srv_exp = srv_wait_exp(s, true);
		return true;
	case SS_CONNECTING:
		if (!(sc->c.flags & (CF_WR_READY | CF_ERROR)))
			return false;
		err = conn_connect_error(&sc->c);
		if (err || (sc->c.flags & CF_ERROR)) {
			conn_failed(s, err ? strerror(err) : "connection error", false);
			return true;
		}
		/* A transport with its own exchange (TLS) completes it before the request. */
		r = conn_handshake(&sc->c);
		if (r == AGAIN)
			return false;
		if (r != OK) {
			conn_failed(s, "transport handshake failed", false);
			return true;
		}
		sc->c.flags |= CF_CONNECTED;
		stream_set_ss(s, SS_READY);
		t->t_conn = now_us;
		s->srv_exp = srv_wait_exp(s, true);
		return true;
	default:
		return false;
	}
}

static bool srv_send(struct stream *s)
{
	struct chan *c = &s->req;
	struct sconn *sc = s->sc;
	struct txn *t = s->txn;
	uint32_t end = c->fwd;
	ssize_t n;

	/* A held body waits for the server's 100: only the head goes (it is retained, from b.head);
	 * after a final response without a 100 (t->status), nothing more does. */
	if (t && (t->flags & TX_HOLD))
		end = t->status ? c->out : MIN(end, c->b.head + t->req_hlen);
	if (s->ss != SS_READY || !sc || c->out >= end || !(sc->c.flags & CF_WR_READY) ||
	    (sc->c.flags & CF_SHUTW) || stream_send_later(s))
		return false;
	n = conn_send(&sc->c, c->b.data + c->out, end - c->out);
	if (n > 0) {
		c->out += (uint32_t)n;
		t->t_sent = now_us;
		t->flags |= TX_REQ_SENT;
		if (!(t->flags & TX_RETAIN))
			c->b.head = c->out;
		chan_reset_if_empty(c);
		s->srv_exp = s->rq == RQ_TUNNEL ? now_us + ms_to_us(s->be->to.tunnel) : srv_wait_exp(s, true);
		return true;
	}
	if (!n)
		return false;
	/* The server stopped reading (it may have answered early, e.g. 413): stop sending and
	 * let the read side tell whether a response comes. */
	sc->c.flags |= CF_SHUTW | CF_RD_READY;
	t->flags &= ~(uint32_t)TX_SRV_KEEPALIVE;
	return true;
}

/* Whether the response body goes through a pipe (splice(2)) from now on. Decided once per
 * response, at the first read of its body into an empty channel: splicing asked for on the
 * frontend or the backend ("option splice-response" or "splice-auto") and not forbidden by
 * "nosplice"; a Content-Length body with more than bufsize bytes to come, whose bytes are then
 * counted off llhttp's content_length instead of being parsed (nothing in a Content-Length body
 * needs parsing); a mux that sends a pipe's bytes as they are and transports that splice on both
 * sides (not TLS); and a pipe to be had, else the body is copied as usual. */
static bool rsp_splice(struct stream *s)
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
	    p->content_length <= tl->bufsize || !s->sess->mux->splice ||
	    !conn_can_splice(&s->sess->cli) || !conn_can_splice(&s->sc->c))
		return false;
	t->rsp_pipe = pipe_get();
	if (!t->rsp_pipe)
		return false;
	t->rsp_nosplice = false;
	chan_release(&s->rsp); /* a spliced body needs no buffer */
	return true;
}

/* The server sent bytes after the end of its response (a buggy or hostile application, a body
 * longer than its Content-Length, a body after a HEAD): its connection is never reused, the
 * bytes reach no client, and the server is charged with a protocol error. Without this, the next
 * request on the connection would get them as its answer: one client's response delivered to
 * another. */
static void rsp_stray(struct stream *s)
{
	s->txn->flags &= ~(uint32_t)TX_SRV_KEEPALIVE;
	backend_stray_bytes(s->srv);
}

/* At the end of a response: drops what the buffer holds past it (rsp_stray()). */
static void rsp_drop_stray(struct stream *s)
{
	struct chan *c = &s->rsp;

	if (c->fwd < c->b.tail) {
		rsp_stray(s);
		c->b.tail = c->fwd;
	}
}

/* srv_recv() for a spliced body: server socket -> pipe, never more than the body has left, so
 * that the bytes of a next response stay in the socket. Returns whether something happened. */
static bool srv_splice_in(struct stream *s)
{
	struct sconn *sc = s->sc;
	struct txn *t = s->txn;
	struct kpipe *p = t->rsp_pipe;
	size_t want;
	ssize_t n;

	if (p->len >= PIPE_CAP)
		return false;
	want = (size_t)MIN(t->rsp_p.content_length, (uint64_t)(PIPE_CAP - p->len));
	n = conn_splice_in(&sc->c, p, want);
	if (n > 0) {
		p->len += (uint32_t)n;
		/* llhttp is told the bytes passed, as if it had parsed them. */
		t->rsp_p.content_length -= (uint64_t)n;
		s->srv_exp = now_us + ms_to_us(s->be->to.server);
		if (t->rsp_p.content_length)
			return true;
		stream_set_rs(s, RS_DONE);
		/* Bytes after the response make the connection unfit for reuse (rsp_process()). A
		 * copy reads them with the end of the body; a splice stops at it, so peek, unless
		 * the socket is known to be drained (no edge since the last EAGAIN). */
		if ((sc->c.flags & CF_RD_READY) && conn_peek(&sc->c) > 0)
			rsp_stray(s);
		return true;
	}
	return n < 0;
}

static bool srv_recv(struct stream *s)
{
	struct chan *c = &s->rsp;
	struct sconn *sc = s->sc;
	uint32_t room, reserve = chan_reserve(s->rs == RS_NONE || s->rs == RS_HEAD);
	ssize_t n;

	if (s->ss != SS_READY || !sc || !(sc->c.flags & CF_RD_READY) ||
	    (sc->c.flags & (CF_EOF | CF_ERROR)) || s->rs == RS_DONE)
		return false;
	if (s->rs == RS_BODY && rsp_splice(s))
		return srv_splice_in(s);
	if (!buf_get(&c->b)) {
		sc->c.flags |= CF_ERROR;
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
	n = conn_recv(&sc->c, buf_tail(&c->b), room);
	if (n > 0) {
		c->b.tail += (uint32_t)n;
		s->srv_exp = now_us + ms_to_us(s->rs == RS_TUNNEL ? s->be->to.tunnel : s->be->to.server);
		return true;
	}
	chan_release(c);
	return n < 0;
}

/* ---- response ----
 *
 * rsp_process(): the response side while the server connection is READY. NONE/HEAD: scans the
 * head as bytes come -> HEAD, then analyses it (http_ana_response()) -> BODY, DONE or TUNNEL (a
 * 1xx is forwarded and HEAD starts again); a bad head is a 502, a server gone before any byte
 * goes to try_again() (empty_response()). BODY: validates the framing as bytes pass -> DONE; a
 * bad or truncated body aborts the response (the client connection then closes). */

static void abort_response(struct stream *s, const char *term)
{
	/* Headers may already be on their way: the only honest signal left is closing. */
	stream_set_term(s, term);
	CTR_INC(s->be->ctr[this_worker->id].srv_aborts);
	s->txn->flags &= ~(uint32_t)(TX_CLI_KEEPALIVE | TX_SRV_KEEPALIVE);
	stream_set_rs(s, RS_DONE);
	backend_release_conn(s, false);
}

/* Records what srv does with Expect; the first time it turns out to ignore it, says so: its
 * request bodies go at once from then on, and cannot move if it freezes. */
static void srv_expect_learn(struct server *srv, enum srv_expect v)
{
	if (atomic_exchange(&srv->expect, (uint8_t)v) != v && v == SRV_EXPECT_NONE)
		keel_log(LOG_LVL_NOTICE, "server %s/%s does not answer Expect: 100-continue: request bodies go to it with their head",
			 srv->be->name, srv->name);
}

/* An interim response (1xx) was analysed. A 100 shows its server reads the request: it is
 * learnt, and a held body goes. */
static void rsp_interim(struct stream *s)
{
	struct txn *t = s->txn;

	if (!(t->flags & TX_CONTINUED))
		return;
	srv_expect_learn(s->srv, SRV_EXPECT_100);
	if (t->flags & TX_HOLD)
		hold_release(s);
}

/* A final response head was analysed. While the body is held, the server answered without
 * asking for it: it never gets it, so its connection is not reused; a 417 to keel's own Expect
 * means a server that refuses the header: the request goes to it again without (it did not run
 * it). A response without any 100 to a body released after the wait shows a server that
 * ignores Expect. Returns true when the request was rewound. */
static bool rsp_final_held(struct stream *s)
{
	struct txn *t = s->txn;

	if (!(t->flags & TX_HOLD)) {
		if ((t->flags & (TX_HOLD_WAITED | TX_CONTINUED)) == TX_HOLD_WAITED)
			srv_expect_learn(s->srv, SRV_EXPECT_NONE);
		return false;
	}
	if (t->status != 417 || !(t->flags & TX_EXPECT_OURS)) {
		t->flags &= ~(uint32_t)TX_SRV_KEEPALIVE;
		return false;
	}
	srv_expect_learn(s->srv, SRV_EXPECT_NONE);
	srv_detach(s);
	rewind_request(s);
	http_ana_strip_expect(s);
	hold_release(s);
	t->status = 0;
	return true;
}

static bool rsp_process(struct stream *s)
{
	struct chan *c = &s->rsp;
	struct txn *t = s->txn;
	struct sconn *sc = s->sc;
	bool srv_gone = sc && (sc->c.flags & (CF_EOF | CF_ERROR));
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
			stream_set_rs(s, RS_HEAD);
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
				stream_error(s, 502,
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
					stream_error(s, 502, t->err_why, "PH");
					return true;
				}
				t->rsp_scan = 0;
				if (interim) {
					rsp_interim(s);
					return true;
				}
				if (rsp_final_held(s))
					return true;
			}
			if (s->rs == RS_DONE) /* no body: a HEAD, a 204, a 304... */
				rsp_drop_stray(s);
			rsp_head_health(s);
			CTR_INC(s->srv->ctr[this_worker->id].rsp[t->status / 100 <= 5 ? t->status / 100 : 0]);
			CTR_INC(s->be->ctr[this_worker->id].rsp[t->status / 100 <= 5 ? t->status / 100 : 0]);
			/* The request no longer needs to be kept for a retry. */
			if (t->flags & TX_RETAIN) {
				t->flags &= ~(uint32_t)TX_RETAIN;
				s->req.b.head = s->req.out;
			}
			if (s->rs == RS_TUNNEL) {
				stream_set_rq(s, RQ_TUNNEL);
				s->cli_exp = now_us + ms_to_us(s->fe->to.tunnel);
				s->srv_exp = now_us + ms_to_us(s->be->to.tunnel);
			}
			/* Body bytes that came with the head leave with it, in one write. */
			if (s->rs == RS_BODY)
				rsp_process(s);
			return true;
		}
		if (srv_gone) {
			empty_response(s, sc->c.flags & CF_ERROR ? "server reset the connection"
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
				stream_set_rs(s, RS_DONE);
				rsp_drop_stray(s);
			}
			return true;
		}
		if (srv_gone) {
			/* A body delimited by the close ends here; any other is truncated. */
			if (llhttp_message_needs_eof(&t->rsp_p) && !(sc->c.flags & CF_ERROR)) {
				stream_set_rs(s, RS_DONE);
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

/* ---- tunnel (after 101 Switching Protocols) ----
 *
 * tunnel_process(): RS_TUNNEL (and RQ_TUNNEL) only: forwards raw bytes both ways and passes each
 * side's half-close to the other once the bytes before it are delivered; the stream closes when
 * both sides ended or one failed. */

static bool tunnel_process(struct stream *s)
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
	if ((s->cflags & CF_EOF) && sc && !(sc->c.flags & CF_SHUTW) && s->req.out == s->req.fwd) {
		conn_shutw(&sc->c);
		s->srv_exp = now_us + ms_to_us(s->be->to.server_fin);
		progress = true;
	}
	if (sc && (sc->c.flags & CF_EOF) && !(s->cflags & CF_SHUTW) && s->rsp.out == s->rsp.fwd) {
		s->sess->mux->shutw(s);
		s->cli_exp = now_us + ms_to_us(s->fe->to.client_fin);
		progress = true;
	}
	if ((s->cflags & CF_ERROR) || !sc || (sc->c.flags & CF_ERROR) ||
	    ((s->cflags & CF_EOF) && (sc->c.flags & CF_EOF) && s->req.out == s->req.fwd &&
	     s->rsp.out == s->rsp.fwd)) {
		stream_log(s);
		stream_close(s);
		return true;
	}
	return progress;
}

/* ---- end of a transaction ----
 *
 * txn_end(): once the local reply is out, or the response is DONE and all of it sent: counts,
 * logs, gives the server connection back (to its idle pool when clean) with its slot, then hands
 * the client side to the mux (mux->end()), which starts the next request or closes. */

static bool txn_end(struct stream *s)
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
	/* Bytes or a close that came after the response and were not read: the connection is not
	 * clean (RD_READY is also left set by a read that filled the buffer: then nothing waits). */
	if (srv_reuse && s->sc && (s->sc->c.flags & CF_RD_READY)) {
		int r = conn_peek(&s->sc->c);

		if (r > 0)
			rsp_stray(s);
		srv_reuse = r == 0;
	}
	stream_log(s);
	backend_release_conn(s, srv_reuse);
	if (s->has_slot) {
		srv_put_slot(s->srv);
		s->has_slot = false;
	}
	/* What the response told the client stands: a stop that began since then deals with
	 * the idle connection (h1_end(): session_stop()), never by closing it under a client
	 * that was told it may send again. */
	s->sess->mux->end(s, cli_ka && !(s->cflags & (CF_EOF | CF_ERROR)));
	return true;
}

/* ---- life ---- */

void stream_init(struct stream *s, struct session *sess)
{
	s->sess = sess;
	s->fe = sess->fe;
	timer_init(&s->timer, stream_timer_cb);
	tasklet_init(&s->task, stream_task_cb);
	list_init(&s->qlist);
}

void stream_close(struct stream *s)
{
	if (s->closing)
		return;
	if (s->txn && !(s->txn->flags & TX_LOGGED) && s->txn->t_start) {
		if (!s->txn->t_end)
			s->txn->t_end = now_us;
		stream_log(s);
	}
	s->closing = true;
	if (s->ss == SS_QUEUED)
		backend_dequeue(s);
	backend_release_conn(s, false);
	if (s->has_slot) {
		srv_put_slot(s->srv);
		s->has_slot = false;
	}
	timer_disarm(&s->timer);
	tasklet_cancel(&s->task);
	chan_drop(&s->req);
	chan_drop(&s->rsp);
	stream_txn_free(s);
	s->sess->mux->close(s);
}

/* ---- timeouts and the run ---- */

static void on_timeout(struct stream *s)
{
	struct txn *t = s->txn;

	if (s->srv_exp && now_us >= s->srv_exp) {
		s->srv_exp = 0;
		switch (s->ss) {
		case SS_QUEUED:
			CTR_INC(s->be->ctr[this_worker->id].queue_timeouts);
			stream_error(s, 503, "timeout in queue", "sQ");
			return;
		case SS_CONNECTING:
			conn_failed(s, "connect timeout", true);
			return;
		case SS_READY:
			if (s->rs == RS_TUNNEL) {
				/* tunnel idle, or server-fin after a half-close */
				stream_set_term(s, "sD");
				stream_close(s);
				return;
			}
			if ((t->pertry_ms || (t->flags & TX_HOLD)) && s->rs == RS_NONE &&
			    srv_wait_expired(s))
				return;
			if (s->srv) {
				CTR_INC(s->srv->ctr[this_worker->id].timeouts);
				health_event(s->srv, HEV_TIMEOUT, now_us - t->t_conn, NULL);
			}
			CTR_INC(s->be->ctr[this_worker->id].timeouts);
			if (!(t->flags & TX_RSP_STARTED) && s->rs <= RS_HEAD) {
				srv_detach(s);
				stream_error(s, 504, "server response timeout", "sH");
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
			stream_close(s);
			return;
		case RQ_HEAD:
			CTR_INC(s->fe->ctr[this_worker->id].failed_req);
			stream_error(s, 408, "timeout while receiving the request head", "cR");
			return;
		case RQ_BODY:
			if (!(t->flags & TX_RSP_STARTED) && !(t->flags & TX_REPLY)) {
				stream_error(s, 408, "timeout while receiving the request body", "cD");
				return;
			}
			break;
		default:
			break;
		}
		/* Waiting on the client (slow reader, tunnel idle): give up on it. */
		stream_set_term(s, "cD");
		stream_close(s);
		return;
	}
}

void stream_arm_timer(struct stream *s)
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

static void stream_timer_cb(struct timer *tm)
{
	struct stream *s = container_of(tm, struct stream, timer);

	if ((s->cli_exp && now_us >= s->cli_exp) || (s->srv_exp && now_us >= s->srv_exp))
		on_timeout(s);
	stream_run(s);
}

static void stream_task_cb(struct tasklet *t)
{
	stream_run(container_of(t, struct stream, task));
}

void stream_wake(struct stream *s)
{
	tasklet_wake(&s->task);
}

/* Client-side deadline for the current state. */
static void refresh_cli_exp(struct stream *s)
{
	struct txn *t = s->txn;

	/* While the server works on the request, only the server timeout runs. */
	if (s->rq == RQ_DONE && !(t && (t->flags & TX_REPLY)) && !rsp_pending(s))
		s->cli_exp = 0;
	else if (s->rq == RQ_DONE && !s->cli_exp)
		s->cli_exp = now_us + ms_to_us(s->fe->to.client);
	if (s->ss != SS_QUEUED && s->ss != SS_CONNECTING && s->ss != SS_READY)
		s->srv_exp = 0;
	if (s->ss == SS_READY && (s->rs == RS_DONE || (t && (t->flags & TX_REPLY))))
		s->srv_exp = 0;
}

/* Bytes a spliced response may move in one stream_run() before it lets the other streams of the
 * thread have their turn (it goes on from a tasklet, after them). A pipe moves a megabyte in a
 * few dozen system calls: without this, one download would have the loop until its server
 * socket is drained, and with ten 1 MB downloads through one thread the throughput measured
 * 0.78x of what it is with 256 KB turns (bench, 6 rounds). Copied bodies did not gain from it
 * (0.94x, within noise), so they keep running until they block. */
#define SPLICE_RUN_BUDGET (256u * 1024u)

void stream_run(struct stream *s)
{
	const struct mux_ops *mux = s->sess->mux;
	int guard = 0;
	uint64_t spliced = 0;

	while (!s->closing) {
		bool p = false;
		struct txn *t0 = s->txn;
		uint64_t out0 = t0 ? t0->bytes_out : 0;

		p |= mux->rcv(s);
		if (s->closing)
			break;
		p |= req_process(s);
		if (s->closing)
			break;
		p |= srv_process(s);
		p |= srv_send(s);
		p |= srv_recv(s);
		p |= rsp_process(s);
		if (cli_pending(s))
			p |= mux->snd(s);
		if (s->closing)
			break;
		p |= tunnel_process(s);
		if (s->closing)
			break;
		if (s->cflags & CF_ERROR) {
			/* The client is gone: nothing left to do for it. An idle or closing
			 * connection is no abort. */
			if (s->txn && s->rq != RQ_CLOSING)
				cli_aborted(s, "CD");
			else
				stream_close(s);
			break;
		}
		if (t0 && s->txn == t0 && t0->rsp_pipe)
			spliced += t0->bytes_out - out0;
		p |= txn_end(s);
		if (s->closing || !p)
			break;
		if (spliced >= SPLICE_RUN_BUDGET) {
			stream_wake(s);
			break;
		}
		BUG_ON(++guard > 100000);
	}
	if (s->closing)
		return;
	/* A lingering close ends when the client closes (or client-fin passes). */
	if (s->rq == RQ_CLOSING && (s->cflags & (CF_EOF | CF_ERROR))) {
		stream_close(s);
		return;
	}
	refresh_cli_exp(s);
	stream_arm_timer(s);
}

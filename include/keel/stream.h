/* Streams: the request state machine (src/proxy/stream.c) and the request log line
 * (src/proxy/stream-log.c). A mux creates its streams and feeds them; the analysis, the
 * balancing, the server side and the logs see only streams. */
#ifndef KEEL_STREAM_H
#define KEEL_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/loop.h>
#include <keel/stream-t.h>

/* Sets up s (allocated zeroed by its mux) for a stream of sess: RQ_IDLE, SS_NONE, RS_NONE, no
 * transaction, its timer and tasklet ready. */
void stream_init(struct stream *s, struct session *sess);
/* Starts a transaction on s for a request whose first byte arrived (the mux calls it): the
 * timestamps, the retries. NULL when out of memory. */
struct txn *stream_txn_start(struct stream *s);
/* Frees s's transaction, if any. */
void stream_txn_free(struct stream *s);
/* Ends s now: logs what was not logged, leaves its queue, releases its server connection, slot,
 * buffers and transaction, then lets its mux release the client side (mux->close()). The
 * memory is freed at the end of the loop iteration. */
void stream_close(struct stream *s);

/* The only ways to change s->rq, s->ss and s->rs: each checks the transition against its table
 * in stream.c (BUG_ON() on one that is not listed there). */
void stream_set_rq(struct stream *s, enum req_state to);
void stream_set_ss(struct stream *s, enum srv_state to);
void stream_set_rs(struct stream *s, enum rsp_state to);

/* Runs s's steps until none makes progress (from an event: the client's, its server
 * connection's, its timer). */
void stream_run(struct stream *s);
/* Runs s's steps from a safe point (end of the current loop iteration). */
void stream_wake(struct stream *s);
/* Whether a write has to wait (the caller then writes nothing now). While the loop handles the
 * epoll events of an iteration (loop_io_phase()), streams read, parse and decide, but each one
 * with something to write queues itself (its tasklet runs after the last event) instead of
 * writing. Each write can wake the process at the other end: written in one burst, the writes of
 * an iteration wake each peer about once, the peer finds them all in one epoll_wait(), and fewer
 * woken peers preempt the worker in the middle of its events. On the bench machine (2 CPUs,
 * keep-alive, 100 connections, 16 alternating rounds against the previous build) the worker was
 * preempted 0.285 times per request instead of 0.334, and used 7% less CPU per request for 9%
 * more requests/s (docs/benchmarks.md). The cost is one more stream_run() per write. Every
 * write of a stream or a mux asks first. */
static inline bool stream_send_later(struct stream *s)
{
	if (!loop_io_phase())
		return false;
	stream_wake(s);
	return true;
}

/* Arms s's timer for the nearest of its client and server deadlines. */
void stream_arm_timer(struct stream *s);

/* Answers with keel's (or the errorfile's) page for status and closes the connection after it. */
void stream_error(struct stream *s, int status, const char *why, const char *term);
/* Answers with a response built on the heap (ownership passes to the stream). */
void stream_reply_heap(struct stream *s, char *data, uint32_t len, int status, bool close);
/* Sets the log's termination state (HAProxy's two letters, "cD", "sH"...) unless already set. */
void stream_set_term(struct stream *s, const char *term);

/* Writes the request log line (once per transaction). */
void stream_log(struct stream *s);

#endif

/* Streams: the request state machine (src/proxy/stream.c) and the request log line
 * (src/proxy/stream-log.c). A mux creates its streams and feeds them; the analysis, the
 * balancing, the server side and the logs see only streams. */
#ifndef KEEL_STREAM_H
#define KEEL_STREAM_H

#include <stdbool.h>
#include <stdint.h>

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
/* Whether a write must wait for the end of the loop's I/O phase (the writer then writes nothing
 * now: s was woken to write later). Every write of a stream or a mux asks first. */
bool stream_send_later(struct stream *s);
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

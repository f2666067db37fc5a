/* Stream types. A stream is one request and its response on a client connection (a session),
 * with the server side that serves it; a transaction (txn) holds what only exists while a
 * request is in progress, so that an idle keep-alive connection costs a few hundred bytes. A
 * server connection (sconn) belongs to a stream while it carries a request, and to its server's
 * per-thread idle list otherwise. */
#ifndef KEEL_STREAM_T_H
#define KEEL_STREAM_T_H

#include <stdbool.h>
#include <stdint.h>

#include <keel/chan-t.h>
#include <keel/conn-t.h>
#include <keel/http-t.h>
#include <keel/list.h>
#include <keel/loop-t.h>
#include <keel/proxy-t.h>
#include <keel/session-t.h>
#include <keel/stick-t.h>
#include <keel/timer-t.h>

/* The three state variables of a stream change only through stream_set_rq(), stream_set_ss()
 * and stream_set_rs(), which check each change against a table in stream.c. After "->" below:
 * the possible next states (some states may also be set to themselves; the tables say which). */

/* Request side of a stream. IDLE and CLOSING belong to HTTP/1's connection (mux-h1.c): a
 * stream that waits for the next request on its connection, and one whose connection closes. */
enum req_state {
	RQ_IDLE = 0, /* waiting for the first byte of a request (keep-alive) -> HEAD, DONE */
	RQ_HEAD,     /* receiving the request head -> BODY, DONE */
	RQ_BODY,     /* head forwarded (or on its way), body streaming -> DONE, TUNNEL, CLOSING */
	RQ_DONE,     /* whole request received -> IDLE, TUNNEL, CLOSING */
	RQ_TUNNEL,   /* upgraded: raw bytes both ways -> none (the session closes) */
	RQ_CLOSING,  /* final response sent; waiting for the client to close (client-fin) -> none */
};

/* Server side of a transaction. */
enum srv_state {
	SS_NONE = 0,   /* no server chosen yet -> QUEUED, CONNECTING, READY, CLOSED */
	SS_QUEUED,     /* waiting for a free slot (maxconn) -> NONE, CLOSED */
	SS_CONNECTING, /* connect() in progress -> READY, NONE (retry), CLOSED */
	SS_READY,      /* connected (new or reused), request flowing -> NONE, CLOSED */
	SS_CLOSED,     /* the server connection is gone for this transaction -> NONE */
};

/* Response side of a transaction. */
enum rsp_state {
	RS_NONE = 0, /* nothing received -> HEAD, DONE */
	RS_HEAD,     /* receiving a response head -> BODY, DONE, TUNNEL, NONE */
	RS_BODY,     /* head forwarded, body streaming -> DONE, NONE */
	RS_DONE,     /* whole response received from the server -> NONE */
	RS_TUNNEL,   /* 101 forwarded: raw bytes both ways -> none (the session closes) */
};

/* Transaction flags. */
enum txn_flags {
	TX_CLI_KEEPALIVE = 1u << 0, /* the client connection stays open after this response */
	TX_SRV_KEEPALIVE = 1u << 1, /* the server connection can be reused after this response */
	TX_RETAIN = 1u << 2,        /* request bytes are kept in the buffer for a possible retry */
	TX_RSP_STARTED = 1u << 3,   /* a byte of the response went to the client: no more retries */
	TX_HEAD_REQ = 1u << 4,
	TX_UPGRADE = 1u << 5,       /* the request asked for an upgrade */
	TX_REPLY = 1u << 6,         /* keel answers itself (error, stats, redirect) */
	TX_REQ_SENT = 1u << 7,      /* some request bytes reached a server connection */
	TX_LOGGED = 1u << 8,
	TX_CLOSE_AFTER = 1u << 9,   /* close the client after the reply (errors) */
	TX_REUSED = 1u << 10,       /* the server connection came from the idle pool */
	TX_STATS = 1u << 11,
	TX_CLI_10 = 1u << 12,       /* HTTP/1.0 client */
	TX_ABS_URI = 1u << 13,
	TX_FREE_RETRY = 1u << 14,   /* the retry owed to a stale pooled connection was used */
	TX_REQ_BODY = 1u << 15,     /* the request head announced a body */
	TX_HAS_HASH = 1u << 16,     /* lb_hash holds the request's balancing key */
	TX_PERTRY_DONE = 1u << 17,  /* the per-try retry was used (or refused): no other */
	TX_CK_PINNED = 1u << 18,    /* a persistence cookie chose s->srv: retries stay there */
	TX_CK_SEEN = 1u << 19,      /* the request carried the persistence cookie (any value) */
	TX_STK_PINNED = 1u << 20,   /* a stick table chose s->srv (TX_CK_PINNED is set too) */
	TX_CK_DRAINED = 1u << 21,   /* the cookie's server drains and its user was gone: moved */
	TX_STK_DRAINED = 1u << 22,  /* same for the stick table's server */
	/* Expect: 100-continue (docs/configuration.md, "Requests with a body"). */
	TX_HOLD = 1u << 23,         /* the body waits until the server answers 100 (or a final
				     * status): none of it left, so the server cannot have run the
				     * request and another may */
	TX_EXPECT_OURS = 1u << 24,  /* keel added the Expect header: its 100s are not relayed */
	TX_HOLD_WAITED = 1u << 25,  /* released without a 100 (a server not known to send one):
				     * a response without any 100 shows it ignores Expect */
	TX_CONTINUED = 1u << 26,    /* the server of this try answered 100 */
	TX_HOLD_LATE = 1u << 27,    /* its server, known to answer 100, did not within the per-try
				     * timeout: reported to health once */
};

struct kpipe;

struct sconn {
	struct conn c;         /* the socket and its transport */
	struct server *srv;
	struct stream *owner;  /* NULL while idle */
	struct list idle;      /* in the server's per-thread idle list */
	struct timer timer;    /* idle purge */
	uint32_t nreq;
	unsigned addr_gen;     /* the server's srv_addr.gen at connect: older ones are not reused */
	uint64_t sni_hash;     /* TLS: the hash of the name asked for (0: none), for reuse */
	uint64_t taken_iter;   /* the loop iteration that took it from the idle pool */
	union sockaddr_u local;
};

#define KEEL_LOG_URI_LEN 1024
#define KEEL_CAP_LEN 512

struct txn {
	llhttp_t req_p, rsp_p;
	uint32_t flags;             /* enum txn_flags */
	uint16_t status;
	enum http_meth meth;
	uint8_t req_minor;
	uint8_t retries;            /* attempts left */
	uint8_t rsp_scan_line1;
	uint32_t req_scan, rsp_scan;/* head scanners' resume points */
	bool req_line1;
	uint64_t req_body_left;
	uint32_t req_hlen;          /* the request head's length as sent to servers */
	struct server *last_srv;    /* where the previous attempt went (redispatch avoids it) */
	uint32_t pertry_ms;         /* per-try deadline from t_conn, then the period at which a
				     * waiting request looks at its server's health; 0: off */
	uint64_t srv_full_exp;      /* when timeout server expires for the response head */
	uint32_t pertry_waited_ms;  /* how long the abandoned attempt waited */
	struct server *pertry_srv;  /* left by a per-try timeout: charged if the retry is fast */
	uint64_t lb_hash;           /* balancing key for hash-based algorithms */
	struct server *ck_srv;      /* the server named by the request's persistence cookie */
	uint32_t ck_last, ck_first; /* the cookie's dates (maxidle/maxlife), s since the epoch */
	struct stick_txn stk;       /* stick tables: matched server, pending stores */
	/* timestamps, monotonic us: request start, head received, out of queue, connected,
	 * response head received, end */
	uint64_t t_start, t_head, t_queue, t_conn, t_rsp, t_end;
	uint64_t t_sent;            /* request bytes last went to the server (latency counts from
				     * there: a slow upload is the client's time, not the server's) */
	uint64_t wall_start;
	uint64_t bytes_in, bytes_out;
	uint32_t rsp_head_left;     /* response head bytes not sent yet (decides TX_RSP_STARTED) */
	struct kpipe *rsp_pipe;     /* the response body goes through this pipe (splice), or NULL */
	bool rsp_nosplice;          /* decided: this response body is copied, not spliced */
	const char *reply;          /* locally generated response */
	uint32_t reply_len, reply_off;
	char *reply_heap;           /* reply storage to free(), or NULL */
	char term[2];               /* termination state, HAProxy style ("--", "cD", "sH"...) */
	const char *err_why;        /* reason behind an error status, for the log */
	uint32_t reqline_len;
	uint16_t sni_len;           /* cleared with the fields above reqline (stream.c) */
	char reqline[KEEL_LOG_URI_LEN];
	char sni[256];              /* TLS to the server: the name from the request (be->srv_sni) */
	uint32_t cap_req_len, cap_rsp_len;
	char cap_req[KEEL_CAP_LEN];
	char cap_rsp[KEEL_CAP_LEN];
	struct http_head *req_head; /* valid only during request analysis */
	struct http_head *rsp_head; /* valid only during response analysis */
	uint8_t stk_keys[STICK_TXN_KEYS]; /* keys of stk's pending stores (not zeroed) */
};

struct stream {
	struct session *sess;       /* the client connection it arrived on */
	uint16_t cflags;            /* its client side as the mux tells it: CF_EOF (the client sends
				     * nothing more), CF_ERROR (gone), CF_SHUTW (nothing more to it) */
	uint8_t rq, ss, rs;         /* enum req_state, srv_state, rsp_state */
	bool closing;               /* freed at the end of the loop iteration */
	bool has_slot;              /* holds one of s->srv's maxconn slots */
	struct proxy *fe, *be;      /* fe: the session's */
	struct server *srv;
	struct sconn *sc;
	struct txn *txn;
	struct chan req, rsp;
	struct timer timer;
	struct tasklet task;        /* re-run the state machine from a safe point */
	struct list qlist;          /* in a per-thread backend queue */
	struct server *q_srv;       /* queued for this server (NULL: any server of the backend) */
	uint64_t cli_exp, srv_exp;  /* deadlines, 0 when none */
};

#endif

/* h1resp: an incremental, strict HTTP/1.x response parser for the bench clients (oload,
 * idleconns). It frames responses (Content-Length, chunked, until close, no body) without
 * keeping them: bytes are fed as they arrive, in any split, and only a small line buffer is
 * kept per connection. Interim 1xx responses are skipped. Anything ambiguous (bare LF, obs-fold,
 * both Content-Length and Transfer-Encoding, differing Content-Lengths, a bad chunk size) is an
 * error: these tools test proxies, and a proxy that emits such bytes has a bug. */
#ifndef BENCH_H1RESP_H
#define BENCH_H1RESP_H

#include <stddef.h>
#include <stdint.h>

#define H1RESP_MORE 0 /* the response is not complete yet */
#define H1RESP_DONE 1 /* a whole response was parsed */
#define H1RESP_ERR -1 /* malformed: r->error says why; the connection must be closed */

/* Bytes kept of one line: longer lines are fine for headers nobody reads, errors otherwise. */
#define H1RESP_LINE_MAX 1024
#define H1RESP_HEAD_MAX (64 << 10) /* status line + headers, or trailers, of one response */
#define H1RESP_CAPTURE_MAX 64	   /* bytes kept of the captured header's value */
#define H1RESP_CAPTURE_LONG 0xffff /* cap_len of a value too long for the line buffer */

/* Flags of a parsed head. */
#define H1RESP_F_CLOSE 0x01	   /* Connection: close, or the body ends at close, or HTTP/1.0 */
#define H1RESP_F_KEEPALIVE 0x02	   /* Connection: keep-alive (matters for HTTP/1.0) */
#define H1RESP_F_CLEN 0x04	   /* a Content-Length was seen */
#define H1RESP_F_TE 0x08	   /* a Transfer-Encoding was seen */
#define H1RESP_F_CHUNKED 0x10	   /* chunked is the final transfer coding */
#define H1RESP_F_CHUNKED_SEEN 0x20 /* chunked appeared in Transfer-Encoding */

enum h1resp_state {
	H1RESP_ST_STATUS,     /* status line */
	H1RESP_ST_HEADER,     /* header lines up to the empty one */
	H1RESP_ST_BODY_CLEN,  /* r->left body bytes to go */
	H1RESP_ST_CHUNK_SIZE, /* chunk-size [; ext] line */
	H1RESP_ST_CHUNK_DATA, /* r->left chunk bytes to go */
	H1RESP_ST_CHUNK_END,  /* the CRLF after chunk data */
	H1RESP_ST_TRAILER,    /* trailer lines up to the empty one */
	H1RESP_ST_BODY_EOF,   /* the body runs until the server closes */
	H1RESP_ST_DONE,
	H1RESP_ST_ERR,
};

struct h1resp {
	enum h1resp_state state;
	int head_request; /* the request was HEAD: no body whatever the headers say */
	int status;	  /* of the final (non-1xx) response once the head is parsed */
	int minor;	  /* HTTP/1.<minor> */
	unsigned flags;
	int interim;	     /* 1xx responses skipped */
	uint64_t clen;	     /* Content-Length value */
	uint64_t left;	     /* bytes to go in the current body part */
	uint64_t body;	     /* body bytes seen (chunk data only for chunked) */
	uint64_t total;	     /* bytes consumed, heads included */
	uint32_t head_bytes; /* bytes of the current head or trailer section */
	uint16_t linelen;    /* bytes kept in line */
	uint8_t line_long;   /* the current line was longer than H1RESP_LINE_MAX */
	uint8_t cr;	     /* the previous byte was a CR */
	const char *error;   /* why H1RESP_ERR, a static string */
	/* One header whose value the caller wants (oload --check-id): set capture, the lower-case
	 * name, after h1resp_init(). Counted over the final response's head only (not 1xx, not
	 * trailers): cap_count times seen (saturating), cap_len the length of the first value
	 * (OWS trimmed; H1RESP_CAPTURE_LONG past the line buffer), its first bytes in cap_val. */
	const char *capture;
	uint8_t cap_count;
	uint16_t cap_len;
	char cap_val[H1RESP_CAPTURE_MAX];
	char line[H1RESP_LINE_MAX];
};

/* Prepares r for a new response; head_request is non-zero when the request was HEAD. No header
 * is captured until the caller sets r->capture. */
void h1resp_init(struct h1resp *r, int head_request);

/* Parses up to len bytes of p. Stores in *used how many were consumed (all of them unless the
 * response ended before the end of p: the rest belongs to no request). Returns H1RESP_MORE,
 * H1RESP_DONE or H1RESP_ERR. Once DONE or ERR, further calls return the same and consume nothing.
 */
int h1resp_feed(struct h1resp *r, const char *p, size_t len, size_t *used);

/* The server closed the connection. Returns H1RESP_DONE when that completes the response (a
 * body delimited by the close), H1RESP_ERR otherwise (r->error set), or the current result when
 * it was already DONE or ERR. */
int h1resp_eof(struct h1resp *r);

/* After H1RESP_DONE: non-zero when the connection may carry another request. */
int h1resp_reusable(const struct h1resp *r);

/* Non-zero when nothing of a response has arrived yet. */
int h1resp_untouched(const struct h1resp *r);

#endif

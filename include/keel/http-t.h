/* HTTP/1 message types: a parsed head is a set of (offset, length) views into the buffer that holds
 * it, never a copy. */
#ifndef KEEL_HTTP_T_H
#define KEEL_HTTP_T_H

#include <stdbool.h>
#include <stdint.h>

#include <llhttp.h>

/* A view into a head: offsets are relative to the first byte of the head. */
struct span {
	uint32_t off;
	uint32_t len;
};

struct http_hdr {
	struct span name;
	struct span value;
	bool del; /* removed by a rewrite: skipped when the head is rebuilt */
};

enum http_meth {
	HTTP_METH_OTHER = 0,
	HTTP_METH_GET,
	HTTP_METH_HEAD,
	HTTP_METH_POST,
	HTTP_METH_PUT,
	HTTP_METH_DELETE,
	HTTP_METH_OPTIONS,
	HTTP_METH_TRACE,
	HTTP_METH_CONNECT,
	HTTP_METH_PATCH,
};

/* Message flags learnt while parsing the head. */
enum http_msg_flags {
	HM_CHUNKED = 1u << 0,     /* Transfer-Encoding ends with chunked */
	HM_HAS_CL = 1u << 1,      /* Content-Length present */
	HM_KEEPALIVE = 1u << 2,   /* the sender allows the connection to stay open after it */
	HM_UPGRADE = 1u << 3,     /* Connection: upgrade + Upgrade (request) or 101 (response) */
	HM_NO_BODY = 1u << 4,     /* no body follows the head (complete with the head) */
	HM_CLOSE_DELIM = 1u << 5, /* response body runs until the server closes */
	HM_ABS_URI = 1u << 6,     /* request target in absolute-form */
	HM_EXPECT_100 = 1u << 7,  /* Expect: 100-continue */
	HM_DONE = 1u << 8,        /* the whole message (head and body) has been parsed */
	HM_TE = 1u << 9,          /* a Transfer-Encoding header is present */
};

/* A parsed request or response head, valid while the bytes it points into do not move. */
struct http_head {
	const char *base; /* first byte of the head */
	uint32_t len;     /* length up to and including the empty line */
	uint32_t flags;   /* enum http_msg_flags */
	uint8_t major, minor;
	enum http_meth meth;
	uint16_t status;     /* responses */
	struct span method;  /* requests */
	struct span uri;     /* requests: the raw request target */
	struct span path;    /* requests: path part of the target (origin-form view) */
	struct span authority; /* absolute-form requests: the host[:port] of the target */
	struct span reason;  /* responses */
	uint64_t content_length;
	uint16_t nhdr, maxhdr;
	struct http_hdr *hdr; /* maxhdr entries, provided by the caller */
	int err_status;       /* status to answer when parsing fails (400, 414, 431, 501, 502) */
	const char *err;      /* why parsing failed, for logs */
	/* parser scratch */
	bool in_value;
	bool skip_body; /* responses to HEAD: no body whatever the headers say */
};

/* What http_scan_head() found. */
enum http_scan_result {
	HTTP_SCAN_MORE = 0,  /* the head is not complete yet */
	HTTP_SCAN_DONE = 1,  /* *head_len holds the length of the complete head */
	HTTP_SCAN_ERROR = 2, /* framing error (bare LF, obs-fold, NUL): answer 400 */
};

/* An errorfile: a whole HTTP response replacing keel's page for one status (per proxy). */
struct errmsg {
	char *data;              /* a whole HTTP response */
	uint32_t len;
};

#define KEEL_ERR_CODES 17 /* see HTTP_ERR_CODES_STR in errors.h */

#endif

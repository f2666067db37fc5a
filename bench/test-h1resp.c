/* Unit tests of h1resp: every response is fed whole, split at every byte position, and one
 * byte at a time; each way must give the same result. Ends with "N passed, N failed". */
#include <stdio.h>
#include <string.h>

#include "h1resp.h"

static int passed, failed;

struct want {
	int rc;		/* result after the bytes (before EOF) */
	int eof_rc;	/* result after EOF, when rc is H1RESP_MORE; 0: EOF not tried */
	int status;	/* final status */
	long long body; /* body bytes, -1: not checked */
	int reusable;	/* h1resp_reusable() after DONE */
	size_t rest;	/* bytes left unconsumed after DONE */
};

/* Feeds msg to a fresh parser in pieces of at most step bytes, the first piece being split
 * bytes long (0: no special first piece). */
static int run(struct h1resp *r, const char *msg, size_t len, int head, size_t split, size_t step,
	       size_t *consumed)
{
	size_t off = 0, used, n;
	int rc = H1RESP_MORE;

	h1resp_init(r, head);
	*consumed = 0;
	while (off < len) {
		n = len - off;
		if (split && off == 0 && split < n)
			n = split;
		else if (step && step < n)
			n = step;
		rc = h1resp_feed(r, msg + off, n, &used);
		*consumed += used;
		if (used < n || rc != H1RESP_MORE)
			break;
		off += n;
	}
	return rc;
}

static void check_n(const char *name, const char *msg, size_t len, int head, struct want w)
{
	size_t consumed, split, steps[] = {0, 1, 2, 7};
	struct h1resp r;
	int rc, ok = 1;
	unsigned i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]) && ok; i++) {
		for (split = 0; split <= (steps[i] ? 0 : len) && ok; split++) {
			rc = run(&r, msg, len, head, split, steps[i], &consumed);
			if (rc == H1RESP_MORE && w.eof_rc)
				rc = h1resp_eof(&r);
			if (rc != (w.rc == H1RESP_MORE && w.eof_rc ? w.eof_rc : w.rc)) {
				fprintf(stderr, "%s (step %zu split %zu): rc %d (%s)\n", name,
					steps[i], split, rc, r.error ? r.error : "-");
				ok = 0;
			} else if (rc == H1RESP_DONE &&
				   (r.status != w.status ||
				    (w.body >= 0 && (long long)r.body != w.body) ||
				    !!h1resp_reusable(&r) != w.reusable ||
				    len - consumed != w.rest)) {
				fprintf(stderr,
					"%s (step %zu split %zu): status %d body %llu reusable %d "
					"rest %zu\n",
					name, steps[i], split, r.status, (unsigned long long)r.body,
					h1resp_reusable(&r), len - consumed);
				ok = 0;
			}
		}
	}
	if (ok)
		passed++;
	else
		failed++;
	printf("%s %s\n", ok ? "ok  " : "FAIL", name);
}

static void check(const char *name, const char *msg, int head, struct want w)
{
	check_n(name, msg, strlen(msg), head, w);
}

#define DONE(st, b, re) ((struct want){H1RESP_DONE, 0, st, b, re, 0})
#define ERR ((struct want){H1RESP_ERR, 0, 0, -1, 0, 0})

static void big_tests(void)
{
	static char buf[80 << 10];
	size_t n;

	/* A 2000-byte header that nobody reads is fine; a 2000-byte Content-Length line is not. */
	n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\nX-Long: ");
	memset(buf + n, 'a', 2000);
	strcpy(buf + n + 2000, "\r\nContent-Length: 2\r\n\r\nhi");
	check("long uninteresting header", buf, 0, DONE(200, 2, 1));
	n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: ");
	memset(buf + n, '0', 2000);
	strcpy(buf + n + 2000, "2\r\n\r\nhi");
	check("long Content-Length line", buf, 0, ERR);
	n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\n");
	while (n < sizeof(buf) - 100)
		n += (size_t)sprintf(buf + n, "X-A: 0123456789012345678901234567890123456789\r\n");
	strcpy(buf + n, "Content-Length: 0\r\n\r\n");
	check("head over 64 KB", buf, 0, ERR);
}

/* r->capture: the value and count of one header of the final response, whole or byte by byte. */
static void check_capture(const char *name, const char *msg, int count, const char *val)
{
	size_t len = strlen(msg), off, used, step;
	struct h1resp r;
	int ok = 1, rc;

	for (step = 1; step <= len && ok; step = step == 1 ? len : len + 1) {
		h1resp_init(&r, 0);
		r.capture = "x-req-id";
		rc = H1RESP_MORE;
		for (off = 0; off < len && rc == H1RESP_MORE; off += used)
			rc = h1resp_feed(&r, msg + off, step < len - off ? step : len - off, &used);
		if (rc != H1RESP_DONE || r.cap_count != count ||
		    (val && (r.cap_len != strlen(val) || memcmp(r.cap_val, val, r.cap_len)))) {
			fprintf(stderr, "%s (step %zu): rc %d count %d len %d\n", name, step, rc,
				r.cap_count, r.cap_len);
			ok = 0;
		}
	}
	if (ok)
		passed++;
	else
		failed++;
	printf("%s %s\n", ok ? "ok  " : "FAIL", name);
}

static void capture_tests(void)
{
	check_capture("capture: value, any case, OWS trimmed",
		      "HTTP/1.1 200 OK\r\nx-REQ-id:  42 \r\nContent-Length: 0\r\n\r\n", 1, "42");
	check_capture("capture: absent", "HTTP/1.1 200 OK\r\nX-Req: 1\r\nContent-Length: 0\r\n\r\n",
		      0, NULL);
	check_capture("capture: repeated, the first kept",
		      "HTTP/1.1 200 OK\r\nX-Req-Id: 7\r\nX-Req-Id: 8\r\nContent-Length: 0\r\n\r\n",
		      2, "7");
	check_capture("capture: a 1xx's header does not count",
		      "HTTP/1.1 100 Continue\r\nX-Req-Id: 9\r\n\r\nHTTP/1.1 200 OK\r\n"
		      "Content-Length: 0\r\n\r\n",
		      0, NULL);
	check_capture("capture: trailers do not count",
		      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Req-Id: 3\r\n\r\n0\r\n"
		      "X-Req-Id: 4\r\n\r\n",
		      1, "3");
}

int main(void)
{
	check("content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0,
	      DONE(200, 5, 1));
	check("content-length 0, no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0,
	      DONE(200, 0, 1));
	check("content-length list", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", 0,
	      DONE(200, 3, 1));
	check("repeated content-length",
	      "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nCONTENT-LENGTH: 3\r\n\r\nabc", 0,
	      DONE(200, 3, 1));
	check("differing content-length",
	      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 0, ERR);
	check("negative content-length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, ERR);
	check("content-length + chunked",
	      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	      0, ERR);
	check("chunked",
	      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1A;ext=1\r\n"
	      "abcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
	      0, DONE(200, 31, 1));
	check("chunked with trailers",
	      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: "
	      "1\r\n\r\n",
	      0, DONE(200, 3, 1));
	check("chunked not final: until close",
	      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxyz", 0,
	      ((struct want){H1RESP_MORE, H1RESP_DONE, 200, 3, 0, 0}));
	check("chunked twice",
	      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 0, ERR);
	check("bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0,
	      ERR);
	check("chunk without CRLF",
	      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 0, ERR);
	check("chunk size overflow",
	      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 0, ERR);
	check("100 continue then 200",
	      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", 0,
	      DONE(201, 1, 1));
	check("101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 0, ERR);
	check("HEAD ignores content-length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 1,
	      DONE(200, 0, 1));
	check("204", "HTTP/1.1 204 No Content\r\n\r\n", 0, DONE(204, 0, 1));
	check("304 with content-length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	      0, DONE(304, 0, 1));
	check("500 is framed like any other", "HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno", 0,
	      DONE(500, 2, 1));
	check("body until close", "HTTP/1.1 200 OK\r\n\r\nall of it", 0,
	      ((struct want){H1RESP_MORE, H1RESP_DONE, 200, 9, 0, 0}));
	check("closed mid-body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0,
	      ((struct want){H1RESP_MORE, H1RESP_ERR, 0, -1, 0, 0}));
	check("closed mid-head", "HTTP/1.1 200 OK\r\nContent-Le", 0,
	      ((struct want){H1RESP_MORE, H1RESP_ERR, 0, -1, 0, 0}));
	check("connection close",
	      "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", 0,
	      DONE(200, 0, 0));
	check("http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, DONE(200, 0, 0));
	check("http/1.0 keep-alive",
	      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 0,
	      DONE(200, 0, 1));
	check("two responses back to back",
	      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: "
	      "0\r\n\r\n",
	      0, ((struct want){H1RESP_DONE, 0, 200, 1, 1, 38}));
	check("bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 0, ERR);
	check("CR without LF", "HTTP/1.1 200 OK\rX\r\n\r\n", 0, ERR);
	check("obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n", 0, ERR);
	check("no colon", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 0, ERR);
	check("space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", 0, ERR);
	check("http/2 status line", "HTTP/2 200 OK\r\n\r\n", 0, ERR);
	check("status 600", "HTTP/1.1 600 What\r\nContent-Length: 0\r\n\r\n", 0, ERR);
	check("garbage", "<html>hello</html>\r\n", 0, ERR);
	check_n("NUL in header", "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n", 29, 0, ERR);
	big_tests();
	capture_tests();
	{
		struct h1resp r;

		h1resp_init(&r, 0);
		if (h1resp_eof(&r) == H1RESP_ERR &&
		    !strcmp(r.error, "closed before any response byte")) {
			passed++;
			printf("ok   eof before anything\n");
		} else {
			failed++;
			printf("FAIL eof before anything\n");
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

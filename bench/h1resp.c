/* h1resp: incremental HTTP/1.x response framing for the bench clients (see h1resp.h). */
#include <string.h>

#include "h1resp.h"

static int fail(struct h1resp *r, const char *why)
{
	r->state = H1RESP_ST_ERR;
	r->error = why;
	return H1RESP_ERR;
}

static int result(const struct h1resp *r)
{
	if (r->state == H1RESP_ST_DONE)
		return H1RESP_DONE;
	if (r->state == H1RESP_ST_ERR)
		return H1RESP_ERR;
	return H1RESP_MORE;
}

void h1resp_init(struct h1resp *r, int head_request)
{
	/* The line buffer is left as is: linelen says what of it is valid. */
	r->state = H1RESP_ST_STATUS;
	r->head_request = head_request;
	r->status = 0;
	r->minor = 0;
	r->flags = 0;
	r->interim = 0;
	r->clen = 0;
	r->left = 0;
	r->body = 0;
	r->total = 0;
	r->head_bytes = 0;
	r->linelen = 0;
	r->line_long = 0;
	r->cr = 0;
	r->error = NULL;
	r->capture = NULL;
	r->cap_count = 0;
	r->cap_len = 0;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Case-insensitive comparison of the n bytes at p with the lower-case word w. */
static int word_is(const char *p, size_t n, const char *w)
{
	size_t i;

	if (strlen(w) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (lower((unsigned char)p[i]) != w[i])
			return 0;
	return 1;
}

static int is_tchar(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(int c)
{
	return c == ' ' || c == '\t';
}

/* Calls fn(r, p, n) for each element of a comma-separated list, OWS and empty elements
 * dropped. Stops at the first non-zero return. */
static int list_each(struct h1resp *r, const char *v, size_t len,
		     int (*fn)(struct h1resp *, const char *, size_t))
{
	size_t i = 0, s, e;
	int rc;

	while (i < len) {
		while (i < len && (is_ows(v[i]) || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (e > s) {
			rc = fn(r, v + s, e - s);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int clen_elem(struct h1resp *r, const char *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return fail(r, "invalid Content-Length");
		if (v > (UINT64_C(1) << 56))
			return fail(r, "Content-Length too large");
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if ((r->flags & H1RESP_F_CLEN) && v != r->clen)
		return fail(r, "differing Content-Length values");
	r->flags |= H1RESP_F_CLEN;
	r->clen = v;
	return 0;
}

static int te_elem(struct h1resp *r, const char *p, size_t n)
{
	size_t k = 0;

	while (k < n && p[k] != ';' && !is_ows(p[k]))
		k++;
	if (word_is(p, k, "chunked")) {
		if (r->flags & H1RESP_F_CHUNKED_SEEN)
			return fail(r, "chunked applied twice");
		r->flags |= H1RESP_F_CHUNKED | H1RESP_F_CHUNKED_SEEN;
	} else {
		/* A coding after chunked: chunked is not final, the body runs until close. */
		r->flags &= ~H1RESP_F_CHUNKED;
	}
	return 0;
}

static int conn_elem(struct h1resp *r, const char *p, size_t n)
{
	if (word_is(p, n, "close"))
		r->flags |= H1RESP_F_CLOSE;
	else if (word_is(p, n, "keep-alive"))
		r->flags |= H1RESP_F_KEEPALIVE;
	return 0;
}

static int status_line(struct h1resp *r)
{
	const char *l = r->line;

	if (r->linelen < 12 || memcmp(l, "HTTP/1.", 7) || (l[7] != '0' && l[7] != '1') ||
	    l[8] != ' ')
		return fail(r, "invalid status line");
	if (l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9')
		return fail(r, "invalid status code");
	if (r->linelen > 12 && l[12] != ' ')
		return fail(r, "invalid status line");
	r->minor = l[7] - '0';
	r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	r->flags = 0;
	r->clen = 0;
	r->cap_count = 0; /* a 1xx's headers do not count */
	r->cap_len = 0;
	r->state = H1RESP_ST_HEADER;
	return 0;
}

static int header_line(struct h1resp *r)
{
	const char *l = r->line, *colon, *v;
	size_t n, vl;

	if (is_ows(l[0]))
		return fail(r, "obsolete line folding");
	colon = memchr(l, ':', r->linelen);
	if (!colon)
		return fail(r, r->line_long ? "header name too long" : "header line without colon");
	n = (size_t)(colon - l);
	if (!n)
		return fail(r, "empty header name");
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)l[i]))
			return fail(r, "invalid header name");
	v = colon + 1;
	vl = r->linelen - n - 1;
	while (vl && is_ows(*v)) {
		v++;
		vl--;
	}
	while (vl && is_ows(v[vl - 1]))
		vl--;
	if (r->capture && word_is(l, n, r->capture) && r->cap_count++ == 0) {
		r->cap_len = r->line_long ? H1RESP_CAPTURE_LONG : (uint16_t)vl;
		memcpy(r->cap_val, v, vl < H1RESP_CAPTURE_MAX ? vl : H1RESP_CAPTURE_MAX);
	}
	if (r->cap_count == 0xff)
		r->cap_count--; /* saturates */
	if (word_is(l, n, "content-length")) {
		if (r->line_long)
			return fail(r, "Content-Length too long");
		if (!vl)
			return fail(r, "empty Content-Length");
		return list_each(r, v, vl, clen_elem);
	}
	if (word_is(l, n, "transfer-encoding")) {
		if (r->line_long)
			return fail(r, "Transfer-Encoding too long");
		r->flags |= H1RESP_F_TE;
		return list_each(r, v, vl, te_elem);
	}
	if (word_is(l, n, "connection")) {
		if (r->line_long)
			return fail(r, "Connection header too long");
		return list_each(r, v, vl, conn_elem);
	}
	return 0;
}

/* The empty line after the headers: decides how the body is framed (RFC 9112 6.3). */
static int head_end(struct h1resp *r)
{
	if (r->status < 200) {
		if (r->status == 101)
			return fail(r, "unexpected 101 Switching Protocols");
		r->interim++;
		r->state = H1RESP_ST_STATUS;
		r->head_bytes = 0;
		return 0;
	}
	if ((r->flags & H1RESP_F_TE) && (r->flags & H1RESP_F_CLEN))
		return fail(r, "both Transfer-Encoding and Content-Length");
	if (r->minor == 0 && !(r->flags & H1RESP_F_KEEPALIVE))
		r->flags |= H1RESP_F_CLOSE;
	if (r->head_request || r->status == 204 || r->status == 304) {
		r->state = H1RESP_ST_DONE;
	} else if (r->flags & H1RESP_F_TE) {
		if (r->flags & H1RESP_F_CHUNKED) {
			r->state = H1RESP_ST_CHUNK_SIZE;
		} else {
			r->flags |= H1RESP_F_CLOSE;
			r->state = H1RESP_ST_BODY_EOF;
		}
	} else if (r->flags & H1RESP_F_CLEN) {
		r->left = r->clen;
		r->state = r->clen ? H1RESP_ST_BODY_CLEN : H1RESP_ST_DONE;
	} else {
		r->flags |= H1RESP_F_CLOSE;
		r->state = H1RESP_ST_BODY_EOF;
	}
	return 0;
}

static int chunk_size_line(struct h1resp *r)
{
	const char *l = r->line;
	uint64_t v = 0;
	size_t i = 0;

	for (; i < r->linelen; i++) {
		int c = lower((unsigned char)l[i]), d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			break;
		if (i >= 15)
			return fail(r, "chunk size too large");
		v = v * 16 + (uint64_t)d;
	}
	if (!i)
		return fail(r, "invalid chunk size");
	while (i < r->linelen && is_ows(l[i]))
		i++;
	if (i < r->linelen && l[i] != ';')
		return fail(r, "invalid chunk size");
	if (!v) {
		r->state = H1RESP_ST_TRAILER;
		r->head_bytes = 0;
	} else {
		r->left = v;
		r->state = H1RESP_ST_CHUNK_DATA;
	}
	return 0;
}

/* One complete line (without its CRLF) is in r->line. */
static int line_done(struct h1resp *r)
{
	int empty = !r->linelen && !r->line_long;
	int rc = 0;

	switch (r->state) {
	case H1RESP_ST_STATUS:
		rc = status_line(r);
		break;
	case H1RESP_ST_HEADER:
		rc = empty ? head_end(r) : header_line(r);
		break;
	case H1RESP_ST_CHUNK_SIZE:
		rc = chunk_size_line(r);
		break;
	case H1RESP_ST_CHUNK_END:
		if (!empty)
			return fail(r, "no CRLF after chunk data");
		r->state = H1RESP_ST_CHUNK_SIZE;
		break;
	case H1RESP_ST_TRAILER:
		if (empty)
			r->state = H1RESP_ST_DONE;
		else if (is_ows(r->line[0]) || !memchr(r->line, ':', r->linelen))
			rc = fail(r, "invalid trailer line");
		break;
	default:
		break;
	}
	r->linelen = 0;
	r->line_long = 0;
	return rc;
}

/* Adds one byte to the current line. Returns 1 when it ended the line, 0 when the line goes on,
 * H1RESP_ERR on a byte that cannot be there. */
static int line_byte(struct h1resp *r, unsigned char c)
{
	if (r->state == H1RESP_ST_CHUNK_END && c != '\r' && c != '\n')
		return fail(r, "no CRLF after chunk data");
	if (r->state != H1RESP_ST_CHUNK_SIZE && r->state != H1RESP_ST_CHUNK_END &&
	    ++r->head_bytes > H1RESP_HEAD_MAX)
		return fail(r, "response head too large");
	if (r->cr) {
		if (c != '\n')
			return fail(r, "CR not followed by LF");
		r->cr = 0;
		return 1;
	}
	if (c == '\r') {
		r->cr = 1;
		return 0;
	}
	if (c == '\n')
		return fail(r, "bare LF");
	if ((c < 0x20 && c != '\t') || c == 0x7f)
		return fail(r, "control character in head");
	if (r->linelen < H1RESP_LINE_MAX) {
		r->line[r->linelen++] = (char)c;
	} else {
		if (r->state == H1RESP_ST_CHUNK_SIZE)
			return fail(r, "chunk size line too long");
		r->line_long = 1;
	}
	return 0;
}

int h1resp_feed(struct h1resp *r, const char *p, size_t len, size_t *used)
{
	size_t i = 0;
	uint64_t n;
	int rc;

	while (i < len && r->state != H1RESP_ST_DONE && r->state != H1RESP_ST_ERR) {
		switch (r->state) {
		case H1RESP_ST_BODY_CLEN:
		case H1RESP_ST_CHUNK_DATA:
			n = len - i < r->left ? len - i : r->left;
			i += n;
			r->left -= n;
			r->body += n;
			if (!r->left)
				r->state = r->state == H1RESP_ST_BODY_CLEN ? H1RESP_ST_DONE
									   : H1RESP_ST_CHUNK_END;
			break;
		case H1RESP_ST_BODY_EOF:
			r->body += len - i;
			i = len;
			break;
		default:
			rc = line_byte(r, (unsigned char)p[i++]);
			if (rc == 1)
				line_done(r);
			break;
		}
	}
	r->total += i;
	*used = i;
	return result(r);
}

int h1resp_eof(struct h1resp *r)
{
	if (r->state == H1RESP_ST_BODY_EOF)
		r->state = H1RESP_ST_DONE;
	else if (r->state != H1RESP_ST_DONE && r->state != H1RESP_ST_ERR)
		fail(r, h1resp_untouched(r) ? "closed before any response byte"
					    : "closed in the middle of the response");
	return result(r);
}

int h1resp_reusable(const struct h1resp *r)
{
	return r->state == H1RESP_ST_DONE && !(r->flags & H1RESP_F_CLOSE);
}

int h1resp_untouched(const struct h1resp *r)
{
	return r->state == H1RESP_ST_STATUS && !r->total && !r->linelen && !r->cr && !r->interim;
}

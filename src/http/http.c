/* HTTP/1 head and body parsing. llhttp does the tokenising and the framing rules; this file adds
 * what keel is stricter about (bare LF, obs-fold, spaces before the colon, request-target forms,
 * versions, Host) and records the head as spans into the receive buffer. */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <keel/common.h>
#include <keel/http.h>

int http_scan_head(const char *buf, uint32_t len, uint32_t *pos, uint32_t *head_len,
		   bool *line1_done)
{
	uint32_t i = *pos; /* always the start of a line */

	while (i < len) {
		const char *nl;
		uint32_t k;

		/* A line that starts with whitespace continues the previous header (obs-fold). */
		if (i > 0 && (buf[i] == ' ' || buf[i] == '\t'))
			return HTTP_SCAN_ERROR;
		nl = memchr(buf + i, '\n', len - i);
		if (!nl)
			break;
		k = (uint32_t)(nl - buf);
		if (k == i || buf[k - 1] != '\r')
			return HTTP_SCAN_ERROR; /* bare LF */
		if (i > 0 || k > 1)
			*line1_done = true;
		if (k == i + 1 && i > 0) {
			*head_len = k + 1;
			*pos = k + 1;
			return HTTP_SCAN_DONE;
		}
		i = k + 1;
	}
	*pos = i;
	return HTTP_SCAN_MORE;
}

static struct http_head *head_of(llhttp_t *p)
{
	return p->data;
}

static inline void span_extend(struct span *s, const struct http_head *h, const char *at,
			       size_t len)
{
	if (s->len == 0)
		s->off = (uint32_t)(at - h->base);
	s->len = (uint32_t)(at - h->base) + (uint32_t)len - s->off;
}

static int fail(struct http_head *h, int status, const char *why)
{
	h->err_status = status;
	h->err = why;
	return -1;
}

/* A failure found by a callback: a bad response is the server's fault (502). */
static int fail_p(llhttp_t *p, int status, const char *why)
{
	return fail(p->data, p->type == HTTP_RESPONSE ? 502 : status, why);
}

/* RFC 9110 token characters, as a table: this runs for every byte of every header name, and a
 * strchr() per '-' cost a tenth of the parse (bench/micro, "http/parse"). */
static const bool tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
	['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
	['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
	['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
	['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
	['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

static bool is_tchar(unsigned char c)
{
	return tchar[c];
}

/* After the head, p->data is NULL: trailer fields of a chunked body reach the header callbacks,
 * and are ignored (llhttp has checked their syntax; they are forwarded as they are). */

/* on_method(), on_url() and on_status(): llhttp has one callback per piece of the first line,
 * and each grows that piece's span. */
#define ON_FIRST_LINE(cb, piece)                                                                   \
	static int cb(llhttp_t *p, const char *at, size_t len)                                     \
	{                                                                                          \
		if (p->data)                                                                       \
			span_extend(&head_of(p)->piece, head_of(p), at, len);                      \
		return 0;                                                                          \
	}
ON_FIRST_LINE(on_method, method)
ON_FIRST_LINE(on_url, uri)
ON_FIRST_LINE(on_status, reason)

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_head *h = head_of(p);

	if (!h)
		return 0;
	if (h->nhdr >= h->maxhdr)
		return fail_p(p, 431, "too many header fields");
	span_extend(&h->hdr[h->nhdr].name, h, at, len);
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct http_head *h = head_of(p);
	struct http_hdr *hd;
	uint32_t i;

	if (!h)
		return 0;
	hd = &h->hdr[h->nhdr];
	/* llhttp 8 tolerates "Name :" and "Na me:"; keel does not (RFC 9112 section 5.1:
	 * whitespace in or before the name is a smuggling vector). Names are tokens. */
	if (hd->name.len == 0 || h->base[hd->name.off + hd->name.len] != ':')
		return fail_p(p, 400, "invalid header name");
	for (i = 0; i < hd->name.len; i++)
		if (!is_tchar((unsigned char)h->base[hd->name.off + i]))
			return fail_p(p, 400, "invalid character in a header name");
	hd->value.off = hd->name.off + hd->name.len + 1;
	hd->value.len = 0;
	h->in_value = true;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_head *h = head_of(p);

	if (h)
		span_extend(&h->hdr[h->nhdr].value, h, at, len);
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct http_head *h = head_of(p);
	struct http_hdr *hd;

	if (!h)
		return 0;
	hd = &h->hdr[h->nhdr];
	while (hd->value.len && (h->base[hd->value.off + hd->value.len - 1] == ' ' ||
				 h->base[hd->value.off + hd->value.len - 1] == '\t'))
		hd->value.len--;
	hd->del = false;
	h->nhdr++;
	h->in_value = false;
	if (h->nhdr < h->maxhdr) {
		h->hdr[h->nhdr].name.len = 0;
		h->hdr[h->nhdr].value.len = 0;
	}
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct http_head *h = head_of(p);

	h->major = p->http_major;
	h->minor = p->http_minor;
	if (p->flags & F_CHUNKED)
		h->flags |= HM_CHUNKED;
	if (p->flags & F_CONTENT_LENGTH) {
		h->flags |= HM_HAS_CL;
		h->content_length = p->content_length;
	}
	if (p->flags & F_TRANSFER_ENCODING)
		h->flags |= HM_TE;
	if (llhttp_should_keep_alive(p))
		h->flags |= HM_KEEPALIVE;
	if (p->type == HTTP_RESPONSE) {
		h->status = p->status_code;
		/* RFC 9112 section 6.3: 1xx, 204 and 304 never have a body, whatever the headers
		 * say (llhttp 8 would wait for one). 101 is left to llhttp's upgrade logic. */
		if ((h->status < 200 && h->status != 101) || h->status == 204 || h->status == 304)
			return 1;
	}
	return h->skip_body ? 1 : 0;
}

static int on_message_complete(llhttp_t *p)
{
	(void)p;
	/* Stop at the end of the message: what follows belongs to the next one (pipelining), and the
	 * caller must see where this one ended. */
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
	.on_method = on_method,
	.on_url = on_url,
	.on_status = on_status,
	.on_header_field = on_header_field,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

/* The host and port of an authority ("host", "host:port", "[v6]:port"): false when it is not
 * one a reverse proxy should forward, with *why: userinfo, an empty or invalid host (a DNS name's
 * letters, digits, '-', '.', '_', '~' and %XX escapes, or a bracketed IPv6 address), a port that
 * is not a number from 1 to 65535. *port is 0 when absent. */
static bool split_authority(const char *a, uint32_t len, uint32_t *hostlen, long *port,
			    const char **why)
{
	uint32_t i = 0, p;

	*port = 0;
	if (memchr(a, '@', len)) {
		*why = "userinfo in the request target";
		return false;
	}
	if (len && a[0] == '[') {
		for (i = 1; i < len && a[i] != ']'; i++)
			if (!isxdigit((unsigned char)a[i]) && a[i] != ':' && a[i] != '.')
				break;
		if (i >= len || a[i] != ']' || i < 3) {
			*why = "invalid IPv6 address in the request target";
			return false;
		}
		i++;
	} else {
		for (; i < len && a[i] != ':'; i++) {
			if (a[i] == '%' && i + 2 < len && isxdigit((unsigned char)a[i + 1]) &&
			    isxdigit((unsigned char)a[i + 2]))
				i += 2;
			else if (!isalnum((unsigned char)a[i]) && !strchr("-._~", a[i]))
				break;
		}
		if (!i || (i < len && a[i] != ':')) {
			*why = i ? "invalid host in the request target" : "empty host in the request target";
			return false;
		}
	}
	*hostlen = i;
	if (i == len)
		return true;
	/* ":" then the port: 1 to 5 digits, no sign, no spaces (strtol() would take those). */
	for (p = i + 1; p < len && p - i <= 5 && isdigit((unsigned char)a[p]); p++)
		*port = *port * 10 + (a[p] - '0');
	if (a[i] != ':' || p == i + 1 || p != len || *port < 1 || *port > 65535) {
		*why = "invalid port in the request target";
		return false;
	}
	return true;
}

/* Splits the request target into the origin-form view (path and query) and, for absolute-form
 * ("http://authority/path?query"), the authority, validated (split_authority()). A fragment
 * never belongs in a request (RFC 9112 section 3.2), and only the http scheme fits a plain
 * connection. */
static int check_target(struct http_head *h)
{
	const char *u = http_ptr(h, h->uri), *why;
	uint32_t i, end, hl;
	long port;

	if (memchr(u, '#', h->uri.len))
		return fail(h, 400, "fragment in the request target");
	if (h->uri.len && u[0] == '/') {
		h->path = h->uri;
	} else if (h->uri.len >= 7 && !strncasecmp(u, "http://", 7)) {
		for (i = 7; i < h->uri.len && u[i] != '/' && u[i] != '?'; i++)
			;
		if (i == 7)
			return fail(h, 400, "absolute-form target without authority");
		if (!split_authority(u + 7, i - 7, &hl, &port, &why))
			return fail(h, 400, why);
		h->authority.off = h->uri.off + 7;
		h->authority.len = i - 7;
		h->path.off = h->uri.off + i;
		h->path.len = h->uri.len - i;
		h->flags |= HM_ABS_URI;
	} else if (h->uri.len >= 8 && !strncasecmp(u, "https://", 8)) {
		return fail(h, 400, "https target on a plain HTTP connection");
	} else {
		return fail(h, 400, "request target is neither origin-form nor absolute-form");
	}
	/* The path view stops at the query. */
	u = http_ptr(h, h->path);
	for (end = 0; end < h->path.len && u[end] != '?'; end++)
		;
	h->path.len = end;
	return 0;
}

static int check_request(struct http_head *h)
{
	int hosts = 0, i;

	if (h->method.off != 0)
		return fail(h, 400, "bytes before the request line");
	if (h->major == 0)
		return fail(h, 400, "HTTP/0.9 request");
	if (h->major != 1 || h->minor > 1)
		return fail(h, 505, "unsupported HTTP version");
	h->meth = http_meth_parse(http_ptr(h, h->method), h->method.len);
	/* CONNECT's authority-form target is neither origin-form nor absolute-form. */
	if (h->meth == HTTP_METH_CONNECT)
		return fail(h, 400, "CONNECT (authority-form target) is not supported");
	if (check_target(h))
		return -1;
	for (i = 0; i < h->nhdr; i++) {
		const struct http_hdr *hd = &h->hdr[i];

		if (hd->name.len == 4 && !strncasecmp(http_ptr(h, hd->name), "host", 4))
			hosts++;
		else if (hd->name.len == 6 && !strncasecmp(http_ptr(h, hd->name), "expect", 6) &&
			 http_value_has_token(http_ptr(h, hd->value), hd->value.len, "100-continue",
					      12))
			h->flags |= HM_EXPECT_100;
	}
	if (hosts > 1)
		return fail(h, 400, "more than one Host header");
	if (hosts == 0 && h->minor == 1)
		return fail(h, 400, "HTTP/1.1 request without Host");
	/* RFC 9112 section 6.1: Transfer-Encoding in a 1.0 message cannot be trusted for framing. */
	if ((h->flags & HM_TE) && h->minor == 0)
		return fail(h, 400, "Transfer-Encoding in an HTTP/1.0 request");
	return 0;
}

static int check_response(struct http_head *h)
{
	/* llhttp skips a lone CR before the status line; the head then forwarded would not start
	 * with its status line. */
	if (h->len < 5 || memcmp(h->base, "HTTP/", 5))
		return fail(h, 502, "status line does not start with HTTP/");
	if (h->major != 1 || h->minor > 1)
		return fail(h, 502, "unsupported HTTP version in response");
	if (h->status < 100 || h->status > 599)
		return fail(h, 502, "invalid response status");
	return 0;
}

int http_parse_head(llhttp_t *p, int type, const char *head, uint32_t len, struct http_head *h)
{
	enum llhttp_errno e;
	bool skip = h->skip_body;

	memset(h, 0, offsetof(struct http_head, nhdr));
	h->base = head;
	h->len = len;
	h->nhdr = 0;
	h->err_status = 0;
	h->err = NULL;
	h->in_value = false;
	h->skip_body = skip;
	if (h->maxhdr)
		h->hdr[0].name.len = h->hdr[0].value.len = 0;

	llhttp_init(p, (llhttp_type_t)type, &settings);
	p->data = h;
	e = llhttp_execute(p, head, len);
	switch (e) {
	case HPE_OK:
		/* Head fully consumed, body expected (or read until close for a response). */
		if (type == HTTP_RESPONSE && !(h->flags & (HM_CHUNKED | HM_HAS_CL)))
			h->flags |= HM_CLOSE_DELIM;
		break;
	case HPE_PAUSED:
	case HPE_PAUSED_UPGRADE:
		if (llhttp_get_error_pos(p) != head + len) {
			p->data = NULL;
			return fail(h, type == HTTP_REQUEST ? 400 : 502, "garbage after head");
		}
		h->flags |= HM_DONE | HM_NO_BODY;
		break;
	default:
		p->data = NULL;
		if (!h->err_status)
			fail(h, type == HTTP_REQUEST ? 400 : 502, llhttp_get_error_reason(p));
		return ERR;
	}
	/* Connection: upgrade plus Upgrade (llhttp's upgrade flag, set with the headers). */
	if (llhttp_get_upgrade(p))
		h->flags |= HM_UPGRADE;
	/* h lives in the caller's frame: the body phase must not see it (trailers). */
	p->data = NULL;
	if (type == HTTP_REQUEST ? check_request(h) : check_response(h))
		return ERR;
	return OK;
}

int http_parse_body(llhttp_t *p, const char *data, uint32_t len, uint32_t *used, bool *done,
		    const char **why)
{
	enum llhttp_errno e = llhttp_execute(p, data, len);

	*done = false;
	switch (e) {
	case HPE_OK:
		*used = len;
		return OK;
	case HPE_PAUSED:
	case HPE_PAUSED_UPGRADE:
		*used = (uint32_t)(llhttp_get_error_pos(p) - data);
		*done = true;
		return OK;
	default:
		*why = llhttp_get_error_reason(p);
		return ERR;
	}
}

int http_hdr_find(const struct http_head *h, const char *name, size_t nlen, int from)
{
	int i;

	for (i = from; i < h->nhdr; i++) {
		const struct http_hdr *hd = &h->hdr[i];

		if (!hd->del && hd->name.len == nlen && !strncasecmp(http_ptr(h, hd->name), name, nlen))
			return i;
	}
	return -1;
}

bool http_value_has_token(const char *v, size_t vlen, const char *tok, size_t toklen)
{
	size_t i = 0;

	while (i < vlen) {
		size_t s, e;

		while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < vlen && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == toklen && !strncasecmp(v + s, tok, toklen))
			return true;
	}
	return false;
}

enum http_meth http_meth_parse(const char *m, size_t len)
{
	static const struct {
		const char *name;
		enum http_meth meth;
	} tab[] = {
		{"GET", HTTP_METH_GET},         {"HEAD", HTTP_METH_HEAD},
		{"POST", HTTP_METH_POST},       {"PUT", HTTP_METH_PUT},
		{"DELETE", HTTP_METH_DELETE},   {"OPTIONS", HTTP_METH_OPTIONS},
		{"TRACE", HTTP_METH_TRACE},     {"CONNECT", HTTP_METH_CONNECT},
		{"PATCH", HTTP_METH_PATCH},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tab); i++)
		if (strlen(tab[i].name) == len && !memcmp(tab[i].name, m, len))
			return tab[i].meth;
	return HTTP_METH_OTHER;
}

bool http_meth_idempotent(enum http_meth m)
{
	/* Only the methods the issue calls safe to replay: GET, HEAD, OPTIONS (and TRACE). PUT and
	 * DELETE are idempotent by RFC but replaying them surprises applications. */
	return m == HTTP_METH_GET || m == HTTP_METH_HEAD || m == HTTP_METH_OPTIONS ||
	       m == HTTP_METH_TRACE;
}

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 410: return "Gone";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 425: return "Too Early";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

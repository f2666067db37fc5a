/* The HTTP check and the live-traffic probe: the requests sent, and the verdict on an answer.
 *
 * What is sent (built once, when a server's checks start):
 *   HTTP check  "METHOD URI VERSION", then Host (the server's address as written in the
 *               configuration), the configured headers, User-Agent: keel-check, Connection: close
 *               (each unless configured), Content-Length with a body;
 *   probe       "HEAD <httpchk URI or /> HTTP/1.1" with Host, User-Agent: keel-probe and
 *               Connection: close: any valid response head below 500 passes.
 * The runner (check.c) hands over at most tune.bufsize bytes of an answer: a body is matched on
 * what fits (see chk_http_eval()). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <keel/check.h>
#include <keel/common.h>
#include <keel/proxy-t.h>

/* ---- expects ---- */

/* "200", "200-399", "200,204,300-310" (validated at load time). */
static bool status_in(const char *list, int status)
{
	const char *s = list;

	while (*s) {
		char *end;
		long lo = strtol(s, &end, 10), hi = lo;

		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		if (status >= lo && status <= hi)
			return true;
		if (*end != ',')
			break;
		s = end + 1;
	}
	return false;
}

/* Whether e passes for this status and body; when not, r says why. */
static bool expect_ok(const struct chk_expect *e, int status, const char *body, size_t blen,
		      int fin, struct chk_result *r)
{
	char code[8], pat[CHK_SHOW_MAX + 1];
	bool m;

	snprintf(code, sizeof(code), "%03u", (unsigned)status % 1000u);
	chk_show(pat, sizeof(pat), e->arg, strlen(e->arg));
	switch (e->type) {
	case CHK_EXP_STATUS:
		if (status_in(e->arg, status) != e->negate)
			return true;
		chk_set_res(r, false, CHK_C_L7STS, "status %d (expected %s%s)", status,
			    e->negate ? "not " : "", pat);
		return false;
	case CHK_EXP_RSTATUS:
		if (chk_re_match(e->re, code, 3) != e->negate)
			return true;
		chk_set_res(r, false, CHK_C_L7STS, "status %d (expected %sto match '%s')", status,
			    e->negate ? "not " : "", pat);
		return false;
	case CHK_EXP_STRING:
		m = blen && memmem(body, blen, e->arg, strlen(e->arg));
		break;
	case CHK_EXP_RSTRING:
	default:
		m = chk_re_match(e->re, body, blen);
		break;
	}
	if (m != e->negate)
		return true;
	chk_set_res(r, false, CHK_C_L7BODY, "body %s '%s'%s",
		    e->type == CHK_EXP_STRING ? (m ? "contained" : "did not contain")
					      : (m ? "matched" : "did not match"),
		    pat, fin == CHK_FIN_FULL ? " (body truncated)" : "");
	r->status = status;
	return false;
}

/* ---- HTTP answers ---- */

struct rsp_head {
	int status;
	size_t end;	/* offset of the body */
	long long clen; /* -1: none */
	bool chunked;
};

/* Offset just past the empty line ending the head that starts at off, or 0 when not there yet. */
static size_t head_end(const char *b, size_t len, size_t off)
{
	const char *p = b + off, *end = b + len;

	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		p++;
		if (p < end && *p == '\n')
			return (size_t)(p + 1 - b);
		if (p + 1 < end && p[0] == '\r' && p[1] == '\n')
			return (size_t)(p + 2 - b);
		if (p >= end || (p + 1 >= end && *p == '\r'))
			return 0;
	}
	return 0;
}

/* Reads Content-Length and Transfer-Encoding from the header lines in [from, h->end). */
static bool parse_fields(const char *b, size_t from, struct rsp_head *h)
{
	size_t i = from;

	h->clen = -1;
	h->chunked = false;
	while (i < h->end) {
		const char *line = b + i, *lf = memchr(line, '\n', h->end - i);
		size_t n = lf ? (size_t)(lf - line) : h->end - i;
		const char *v;

		i += n + 1;
		if (n >= 15 && !strncasecmp(line, "content-length:", 15)) {
			long long cl = 0;
			size_t k = 15;

			for (v = line + k; k < n && (*v == ' ' || *v == '\t'); v++, k++)
				;
			if (k >= n || !chk_is_digit(*v))
				return false;
			for (; k < n && chk_is_digit(*v) && cl < (1ll << 50); v++, k++)
				cl = cl * 10 + (*v - '0');
			if (h->clen >= 0 && h->clen != cl)
				return false;
			h->clen = cl;
		} else if (n >= 18 && !strncasecmp(line, "transfer-encoding:", 18)) {
			/* "chunked" last: the body is chunked (HTTP/1.1 framing rules) */
			size_t e = n;

			while (e > 18 &&
			       (line[e - 1] == '\r' || line[e - 1] == ' ' || line[e - 1] == '\t'))
				e--;
			h->chunked = e >= 25 && !strncasecmp(line + e - 7, "chunked", 7);
		}
	}
	return true;
}

/* Parses the status line and head starting at off. OK, AGAIN, or ERR with r filled. */
static int parse_one_head(const char *b, size_t len, size_t off, int fin, struct rsp_head *h,
			  struct chk_result *r)
{
	const char *s = b + off, *lf;
	size_t n = len - off;
	char txt[CHK_SHOW_MAX + 1];

	if (memcmp(s, "HTTP/", MIN(n, 5)) ||
	    (n >= 13 && !(chk_is_digit(s[5]) && s[6] == '.' && chk_is_digit(s[7]) && s[8] == ' ' &&
			  chk_is_digit(s[9]) && chk_is_digit(s[10]) && chk_is_digit(s[11]) &&
			  (s[12] == ' ' || s[12] == '\r' || s[12] == '\n')))) {
		chk_set_res(r, false, CHK_C_L7RSP, "invalid response '%s'",
			    chk_show(txt, sizeof(txt), s, n));
		return ERR;
	}
	lf = memchr(s, '\n', n);
	h->end = lf ? head_end(b, len, off) : 0;
	if (n < 13 || !h->end) {
		if (fin == CHK_FIN_NO)
			return AGAIN;
		if (fin == CHK_FIN_FULL)
			chk_set_res(r, false, CHK_C_L7RSP, "response head larger than %zu bytes",
				    len);
		else if (n < 13 || !lf)
			chk_set_res(r, false, CHK_C_L7RSP, "connection closed in the status line");
		else
			chk_set_res(r, false, CHK_C_L7RSP,
				    "connection closed in the response head");
		return ERR;
	}
	h->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (h->status < 100) {
		chk_set_res(r, false, CHK_C_L7RSP, "invalid status %03d", h->status);
		return ERR;
	}
	if (!parse_fields(b, (size_t)(lf + 1 - b), h)) {
		chk_set_res(r, false, CHK_C_L7RSP, "invalid Content-Length (status %d)", h->status);
		r->status = h->status;
		return ERR;
	}
	return OK;
}

/* The final response head: interim 1xx heads (but 101) are skipped. */
static int parse_head(const char *b, size_t len, int fin, struct rsp_head *h, struct chk_result *r)
{
	size_t off = 0;
	int rc;

	if (!len) {
		if (fin == CHK_FIN_NO)
			return AGAIN;
		chk_set_res(r, false, CHK_C_L7RSP, "connection closed before a response");
		return ERR;
	}
	for (;;) {
		rc = parse_one_head(b, len, off, fin, h, r);
		if (rc != OK || h->status >= 200 || h->status == 101)
			return rc;
		off = h->end;
		if (off >= len) {
			if (fin == CHK_FIN_NO)
				return AGAIN;
			chk_set_res(r, false, CHK_C_L7RSP,
				    "connection closed after an interim %d response", h->status);
			return ERR;
		}
	}
}

/* Decodes a chunked body from b into out (out may be b: it never writes ahead of its reading,
 * or NULL to only scan). Returns the decoded length; *done when the last chunk was seen or the
 * framing is broken (nothing more is worth waiting for). */
static size_t dechunk(char *b, size_t len, char *out, bool *done)
{
	size_t i = 0, o = 0;

	*done = false;
	for (;;) {
		unsigned long long sz = 0;
		size_t digits = 0, take;
		const char *lf;

		while (i < len && isxdigit((unsigned char)b[i]) && digits < 12) {
			char ch = b[i++];

			sz = sz * 16 +
			     (unsigned)(chk_is_digit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10);
			digits++;
		}
		if (i >= len)
			return o;
		if (!digits || (b[i] != '\r' && b[i] != '\n' && b[i] != ';')) {
			*done = true; /* broken framing */
			return o;
		}
		lf = memchr(b + i, '\n', len - i);
		if (!lf)
			return o;
		i = (size_t)(lf + 1 - b);
		if (!sz) {
			*done = true;
			return o;
		}
		take = (size_t)MIN((unsigned long long)(len - i), sz);
		if (out)
			memmove(out + o, b + i, take);
		o += take;
		i += take;
		if (take < sz)
			return o;
		/* the CRLF after the data */
		if (i < len && b[i] == '\r')
			i++;
		if (i < len && b[i] == '\n')
			i++;
		else if (i < len) {
			*done = true;
			return o;
		}
	}
}

static bool needs_body(const struct chk_proxy_conf *k)
{
	int i;

	for (i = 0; i < k->nexpect; i++)
		if (k->expect[i].type == CHK_EXP_STRING || k->expect[i].type == CHK_EXP_RSTRING)
			return true;
	return false;
}

/* The body of the response in buf: AGAIN while it may still grow, else OK with *body and *blen
 * (decoded when chunked, cut to Content-Length). */
static int get_body(char *buf, size_t len, int fin, const struct rsp_head *h, bool head_req,
		    char **body, size_t *blen)
{
	char *b = buf + h->end;
	size_t n = len - h->end;
	bool done;

	*body = b;
	*blen = 0;
	if (head_req || h->status == 204 || h->status == 304 || h->status < 200)
		return OK;
	if (h->chunked) {
		dechunk(b, n, NULL, &done);
		if (!done && fin == CHK_FIN_NO)
			return AGAIN;
		*blen = dechunk(b, n, b, &done);
	} else if (h->clen >= 0) {
		if ((long long)n < h->clen && fin == CHK_FIN_NO)
			return AGAIN;
		*blen = (size_t)MIN((long long)n, h->clen);
	} else {
		if (fin == CHK_FIN_NO)
			return AGAIN; /* delimited by the close */
		*blen = n;
	}
	return OK;
}

int chk_http_eval(const struct proxy *be, bool probe, char *buf, size_t len, int fin,
		  struct chk_result *r)
{
	const struct chk_proxy_conf *k = &be->chk;
	struct rsp_head h;
	char *body;
	size_t blen;
	int rc, i;

	r->status = 0;
	rc = parse_head(buf, len, fin, &h, r);
	if (rc != OK)
		return rc == AGAIN ? AGAIN : OK;
	r->status = h.status;
	if (probe) {
		if (h.status < 500)
			chk_set_res(r, true, CHK_C_L7OK, "status %d", h.status);
		else
			chk_set_res(r, false, CHK_C_L7STS, "status %d (a probe expects below 500)",
				    h.status);
		return OK;
	}
	if (!k->nexpect) {
		/* HAProxy's rule: 2xx and 3xx pass. */
		if (h.status >= 200 && h.status < 400)
			chk_set_res(r, true, CHK_C_L7OK, "status %d", h.status);
		else
			chk_set_res(r, false, CHK_C_L7STS, "status %d (expected 2xx/3xx)",
				    h.status);
		return OK;
	}
	body = buf + h.end;
	blen = 0;
	if (needs_body(k) &&
	    get_body(buf, len, fin, &h, k->method && !strcasecmp(k->method, "HEAD"), &body,
		     &blen) == AGAIN)
		return AGAIN;
	for (i = 0; i < k->nexpect; i++)
		if (!expect_ok(&k->expect[i], h.status, body, blen, fin, r)) {
			r->status = h.status;
			return OK;
		}
	chk_set_res(r, true, CHK_C_L7OK, "status %d", h.status);
	return OK;
}

/* ---- requests ---- */

static bool has_hdr(const char *hdrs, const char *name)
{
	size_t n = strlen(name);
	const char *p = hdrs;

	while (p && *p) {
		if (!strncasecmp(p, name, n) && p[n] == ':')
			return true;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

/* The Host header: the server's address as written, without an ipv4@/ipv6@ prefix. */
static const char *host_of(const struct server *s)
{
	const char *a = s->addr_str ? s->addr_str : "";

	if (!strncmp(a, "ipv4@", 5) || !strncmp(a, "ipv6@", 5))
		a += 5;
	return a;
}

char *chk_http_req(const struct server *s, uint32_t *len)
{
	const struct chk_proxy_conf *k = &s->be->chk;
	const char *h = k->hdrs ? k->hdrs : "", *body = k->body ? k->body : "";
	char host[300] = "", cl[48] = "";
	char *req;
	int n;

	/* Added unless configured: the request must reach the same virtual host as live traffic,
	 * and the server must not keep the connection open after answering. */
	if (!has_hdr(h, "host"))
		snprintf(host, sizeof(host), "Host: %s\r\n", host_of(s));
	if (*body && !has_hdr(h, "content-length"))
		snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
	n = asprintf(&req, "%s %s %s\r\n%s%s%s%s%s\r\n%s", k->method ? k->method : "OPTIONS",
		     k->uri ? k->uri : "/", k->version ? k->version : "HTTP/1.0", host, h,
		     has_hdr(h, "user-agent") ? "" : "User-Agent: keel-check\r\n",
		     has_hdr(h, "connection") ? "" : "Connection: close\r\n", cl, body);
	if (n < 0)
		return NULL;
	*len = (uint32_t)n;
	return req;
}

char *chk_probe_req(const struct server *s, uint32_t *len)
{
	const struct proxy *be = s->be;
	const char *uri = (be->opts & PO_HTTPCHK) && be->chk.uri ? be->chk.uri : "/";
	char *req;
	int n;

	n = asprintf(&req,
		     "HEAD %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: keel-probe\r\n"
		     "Connection: close\r\n\r\n",
		     uri, host_of(s));
	if (n < 0)
		return NULL;
	*len = (uint32_t)n;
	return req;
}

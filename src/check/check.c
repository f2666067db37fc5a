/* The active check and agent runner.
 *
 * Each worker thread runs the checks of the servers it owns (global server index % nbthread), so
 * a check object is only ever touched by one thread and needs no lock; results go to health.c,
 * which owns every decision. A server has two tasks, each a connection with one timer:
 *
 *   check: asks health_check_plan() what to do next and when (nothing, the configured check, or a
 *          live-traffic probe of an ejected server), does it, reports through
 *          health_check_result(), asks again;
 *   agent: every agent-inter, reads one line from the agent and reports health_agent_result().
 *
 * The timer holds the next run while a task is idle and the deadline while it runs. Sockets are
 * non-blocking, addresses were resolved at load time, and every run ends (result, timeout, error)
 * with its socket closed and its buffer returned. A connection is only ever opened from a timer
 * callback: events still pending in the current epoll batch for a socket closed in an I/O
 * callback are then ignored (fd == -1) instead of being mistaken for the new socket's.
 *
 * What is sent:
 *   HTTP check  "METHOD URI VERSION", then Host (the server's address as written in the
 *               configuration), the configured headers, User-Agent: keel-check, Connection: close
 *               (each unless configured), Content-Length with a body;
 *   probe       "HEAD <httpchk URI or /> HTTP/1.1" with Host, User-Agent: keel-probe and
 *               Connection: close: any valid response head below 500 passes;
 *   agent       agent-send, if set.
 * At most tune.bufsize bytes of an answer are read (16 KB by default): a body is matched on what
 * fits (see chk_http_eval()). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pcre2.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/check.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/global.h>
#include <keel/log.h>
#include <keel/loop.h>
#include <keel/proxy.h>
#include <keel/server.h>
#include <keel/timer.h>
#include <keel/worker.h>

#define AGENT_MAX_LINE 1024 /* longest agent answer read */
#define FIRST_SPREAD_MS 500 /* the first runs are spread over this, by server index */
#define SHOW_MAX 24	    /* bytes of a pattern or an answer quoted in a reason */

/* A task's states. IDLE -> CONNECT (timer: run) -> SEND -> RECV -> IDLE (result). tcp-check
 * steps loop SEND/RECV, and go through NEXT (a connect step: the new socket is opened from the
 * timer). Any state -> IDLE on an error or a deadline. */
enum task_st {
	TS_IDLE = 0, /* timer: the next run */
	TS_CONNECT,  /* connect() in progress; timer: connect deadline */
	TS_SEND,     /* writing; timer: deadline */
	TS_RECV,     /* reading the answer; timer: deadline */
	TS_NEXT,     /* tcp-check: timer (now) opens the next connection */
};

struct chk_srv;

struct chk_task {
	struct fdh h;
	struct timer timer;
	struct chk_srv *cs;
	bool is_agent;
	enum task_st st;
	enum chk_plan plan; /* check task: the action of the next (or current) run */
	uint64_t t_start;   /* us */
	uint64_t conn_deadline, deadline;
	uint32_t conn_ms; /* the connect limit, for the reason */
	const char *out;  /* bytes to send */
	uint32_t outlen, outoff;
	char *buf; /* received bytes (NUL-terminated), a loop buffer during a run */
	uint32_t len, cap;
	int step; /* tcp-check: the step being run */
};

struct chk_srv {
	struct server *srv; /* NULL until the slot holds a published server */
	struct proxy *be;   /* the slot: be->srv[slot] */
	int slot;
	bool stopped;       /* the server was deleted: its tasks are closed */
	struct chk_task chk, agent;
	char *req, *probe; /* the check and probe requests, built once */
	uint32_t reqlen, probelen;
};

static __thread struct chk_srv *tl_cs;
static __thread int tl_ncs;
static __thread struct timer tl_scan;      /* picks up added servers, stops deleted ones */
static __thread unsigned tl_scan_changes; /* server_changes at the last pool purge */

#define SCAN_MS 200

static void fmt(char *dst, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *dst, size_t n, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(dst, n, f, ap); /* reasons are cut at their buffer's size on purpose */
	va_end(ap);
}

/* Copies at most SHOW_MAX bytes of s, control and non-ASCII bytes as '.', for a reason. */
static const char *show(char *dst, size_t cap, const char *s, size_t len)
{
	size_t i, n = MIN(len, MIN(cap - 1, (size_t)SHOW_MAX));

	for (i = 0; i < n; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '.';
	dst[n] = '\0';
	return dst;
}

static void set_res(struct chk_result *r, bool ok, enum chk_code code, const char *f, ...)
    __attribute__((format(printf, 4, 5)));
static void set_res(struct chk_result *r, bool ok, enum chk_code code, const char *f, ...)
{
	va_list ap;

	r->ok = ok;
	r->code = code;
	va_start(ap, f);
	vsnprintf(r->reason, sizeof(r->reason), f, ap);
	va_end(ap);
}

/* ---- expects ---- */

static bool re_match(void *re, const char *s, size_t len)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	int rc;

	/* Checks are seconds apart: a match block per match keeps this thread-agnostic. */
	if (!md)
		return false;
	rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}

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
	char code[8], pat[SHOW_MAX + 1];
	bool m;

	snprintf(code, sizeof(code), "%03u", (unsigned)status % 1000u);
	show(pat, sizeof(pat), e->arg, strlen(e->arg));
	switch (e->type) {
	case CHK_EXP_STATUS:
		if (status_in(e->arg, status) != e->negate)
			return true;
		set_res(r, false, CHK_C_L7STS, "status %d (expected %s%s)", status,
			e->negate ? "not " : "", pat);
		return false;
	case CHK_EXP_RSTATUS:
		if (re_match(e->re, code, 3) != e->negate)
			return true;
		set_res(r, false, CHK_C_L7STS, "status %d (expected %sto match '%s')", status,
			e->negate ? "not " : "", pat);
		return false;
	case CHK_EXP_STRING:
		m = blen && memmem(body, blen, e->arg, strlen(e->arg));
		break;
	case CHK_EXP_RSTRING:
	default:
		m = re_match(e->re, body, blen);
		break;
	}
	if (m != e->negate)
		return true;
	set_res(r, false, CHK_C_L7BODY, "body %s '%s'%s",
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

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

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
			if (k >= n || !is_digit(*v))
				return false;
			for (; k < n && is_digit(*v) && cl < (1ll << 50); v++, k++)
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
	char txt[SHOW_MAX + 1];

	if (memcmp(s, "HTTP/", MIN(n, 5)) ||
	    (n >= 13 && !(is_digit(s[5]) && s[6] == '.' && is_digit(s[7]) && s[8] == ' ' &&
			  is_digit(s[9]) && is_digit(s[10]) && is_digit(s[11]) &&
			  (s[12] == ' ' || s[12] == '\r' || s[12] == '\n')))) {
		set_res(r, false, CHK_C_L7RSP, "invalid response '%s'",
			show(txt, sizeof(txt), s, n));
		return ERR;
	}
	lf = memchr(s, '\n', n);
	h->end = lf ? head_end(b, len, off) : 0;
	if (n < 13 || !h->end) {
		if (fin == CHK_FIN_NO)
			return AGAIN;
		if (fin == CHK_FIN_FULL)
			set_res(r, false, CHK_C_L7RSP, "response head larger than %zu bytes", len);
		else if (n < 13 || !lf)
			set_res(r, false, CHK_C_L7RSP, "connection closed in the status line");
		else
			set_res(r, false, CHK_C_L7RSP, "connection closed in the response head");
		return ERR;
	}
	h->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (h->status < 100) {
		set_res(r, false, CHK_C_L7RSP, "invalid status %03d", h->status);
		return ERR;
	}
	if (!parse_fields(b, (size_t)(lf + 1 - b), h)) {
		set_res(r, false, CHK_C_L7RSP, "invalid Content-Length (status %d)", h->status);
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
		set_res(r, false, CHK_C_L7RSP, "connection closed before a response");
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
			set_res(r, false, CHK_C_L7RSP,
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

			sz = sz * 16 + (unsigned)(is_digit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10);
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
			set_res(r, true, CHK_C_L7OK, "status %d", h.status);
		else
			set_res(r, false, CHK_C_L7STS, "status %d (a probe expects below 500)",
				h.status);
		return OK;
	}
	if (!k->nexpect) {
		/* HAProxy's rule: 2xx and 3xx pass. */
		if (h.status >= 200 && h.status < 400)
			set_res(r, true, CHK_C_L7OK, "status %d", h.status);
		else
			set_res(r, false, CHK_C_L7STS, "status %d (expected 2xx/3xx)", h.status);
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
	set_res(r, true, CHK_C_L7OK, "status %d", h.status);
	return OK;
}

/* ---- tcp-check ---- */

int chk_tcp_expect(const struct tcpchk_step *st, int idx, const char *buf, size_t len, int fin,
		   struct chk_result *r)
{
	const struct chk_expect *e = &st->exp;
	char pat[SHOW_MAX + 1], got[SHOW_MAX + 1];
	bool m;

	m = e->type == CHK_EXP_RSTRING ? re_match(e->re, buf, len)
				       : len && st->len && memmem(buf, len, st->data, st->len);
	show(pat, sizeof(pat), e->arg, strlen(e->arg));
	show(got, sizeof(got), buf, len);
	r->status = 0;
	if (m) {
		if (!e->negate)
			return OK;
		set_res(r, false, CHK_C_L7RSP, "step %d: received '%s', expected no '%s'", idx, got,
			pat);
		return ERR;
	}
	/* A negated expect is decided on the first bytes received (a server that keeps its
	 * connection open would otherwise always take the whole timeout). */
	if (e->negate && len)
		return OK;
	if (fin == CHK_FIN_NO)
		return AGAIN;
	if (!len)
		set_res(r, false, CHK_C_L7RSP, "step %d: connection closed before '%s'", idx, pat);
	else
		set_res(r, false, CHK_C_L7RSP, "step %d: expected '%s', received '%s'", idx, pat,
			got);
	return ERR;
}

/* ---- agent ---- */

static enum agent_word agent_word(const char *w, size_t n)
{
	static const struct {
		const char *name;
		enum agent_word word;
	} words[] = {
	    {"up", AGENT_UP},		{"down", AGENT_DOWN},	{"ready", AGENT_READY},
	    {"drain", AGENT_DRAIN},	{"maint", AGENT_MAINT}, {"fail", AGENT_FAIL},
	    {"stopped", AGENT_STOPPED},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(words); i++)
		if (strlen(words[i].name) == n && !strncasecmp(w, words[i].name, n))
			return words[i].word;
	return AGENT_NONE;
}

/* agent_result carries one state word: when an answer has several, the one that takes the most
 * traffic away wins (down/fail/stopped, then maint, drain, ready, up). */
static int word_rank(enum agent_word w)
{
	switch (w) {
	case AGENT_DOWN:
	case AGENT_FAIL:
	case AGENT_STOPPED:
		return 5;
	case AGENT_MAINT:
		return 4;
	case AGENT_DRAIN:
		return 3;
	case AGENT_READY:
		return 2;
	case AGENT_UP:
		return 1;
	default:
		return 0;
	}
}

void chk_agent_parse(const char *s, size_t len, struct agent_result *ar)
{
	const char *lf = memchr(s, '\n', len), *p, *end;
	size_t n = lf ? (size_t)(lf - s) : len, i, o = 0;

	memset(ar, 0, sizeof(*ar));
	ar->ok = true;
	ar->weight_pct = -1;
	while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	/* The answer itself goes to the logs, made printable. */
	for (i = 0; i < n && o < sizeof(ar->reason) - 1; i++)
		ar->reason[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '.';
	ar->reason[o] = '\0';
	if (!n)
		snprintf(ar->reason, sizeof(ar->reason), "(empty answer)");
	end = memchr(s, '#', n);
	end = end ? end : s + n;
	for (p = s; p < end;) {
		const char *w;
		size_t wl;

		while (p < end && (*p == ' ' || *p == ',' || *p == '\t'))
			p++;
		for (w = p; p < end && *p != ' ' && *p != ',' && *p != '\t'; p++)
			;
		wl = (size_t)(p - w);
		if (wl >= 2 && wl <= 7 && w[wl - 1] == '%') {
			long v = 0;

			for (i = 0; i < wl - 1 && is_digit(w[i]); i++)
				v = v * 10 + (w[i] - '0');
			if (i == wl - 1)
				ar->weight_pct = (int)v;
		} else if (wl) {
			enum agent_word aw = agent_word(w, wl);

			if (word_rank(aw) > word_rank(ar->word))
				ar->word = aw;
		}
	}
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

static char *build_check_req(const struct server *s, uint32_t *len)
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

static char *build_probe_req(const struct server *s, uint32_t *len)
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

/* ---- addresses ---- */

/* Where a run connects: the agent address; the server's own address for a probe (it stands for
 * live traffic); the check address and port otherwise. port overrides (tcp-check connect port).
 * Returns the address length, 0 when there is no port to connect to. */
static socklen_t target(const struct chk_task *t, int port, struct sockaddr_storage *ss)
{
	const struct server *s = t->cs->srv;
	const struct chk_srv_conf *k = &s->chk;
	struct sockaddr_storage sa; /* the published address ("set server addr") */
	socklen_t len, salen;
	bool from_client;

	server_addr(s, &sa, &salen, &from_client);
	if (t->is_agent) {
		*ss = k->has_agent_addr ? k->agent_addr : k->has_addr ? k->addr : sa;
		len = k->has_agent_addr ? k->agent_addrlen : k->has_addr ? k->addrlen : salen;
		port = port		   ? port
		       : k->agent_port	   ? k->agent_port
		       : k->has_agent_addr ? sockaddr_port(&k->agent_addr)
					   : 0;
	} else if (t->plan == CHK_PLAN_PROBE) {
		*ss = sa;
		len = salen;
		port = port ? port : from_client ? k->port : sockaddr_port(&sa);
	} else {
		*ss = k->has_addr ? k->addr : sa;
		len = k->has_addr ? k->addrlen : salen;
		port = port ? port : k->port ? k->port : sockaddr_port(ss);
		if (!port && !from_client)
			port = sockaddr_port(&sa);
	}
	if (!port)
		return 0;
	sockaddr_set_port(ss, port);
	return len;
}

/* ---- tasks ---- */

static void task_timer_cb(struct timer *tm);
static void task_io_cb(struct fdh *h, uint32_t events);
static void tcp_next(struct chk_task *t);

static const char *errtext(int e, char *buf, size_t n)
{
	switch (e) {
	case ECONNREFUSED:
		return "connection refused";
	case ECONNRESET:
		return "connection reset";
	case EHOSTUNREACH:
		return "host unreachable";
	case ENETUNREACH:
		return "network unreachable";
	case ETIMEDOUT:
		return "connection timed out";
	case EADDRNOTAVAIL:
		return "no local address or port available";
	default:
		snprintf(buf, n, "socket error %d (%s)", e,
			 strerrorname_np(e) ? strerrorname_np(e) : "?");
		return buf;
	}
}

static const struct proxy *be_of(const struct chk_task *t)
{
	return t->cs->srv->be;
}

static void task_close(struct chk_task *t)
{
	loop_close(&t->h);
	if (t->buf) {
		pool_free(&tl->buf_pool, t->buf);
		t->buf = NULL;
	}
	t->len = t->cap = 0;
	t->out = NULL;
	t->outlen = t->outoff = 0;
}

/* Asks health.c what to do next and when; the timer runs it. */
static void replan(struct chk_task *t)
{
	uint32_t delay = 0;

	t->plan = health_check_plan(t->cs->srv, &delay);
	t->st = TS_IDLE;
	timer_arm(&t->timer, now_us + (uint64_t)MAX(delay, 1) * 1000);
}

static void check_done(struct chk_task *t, struct chk_result *r)
{
	r->dur_ms = (uint32_t)((now_us - t->t_start) / 1000);
	task_close(t);
	timer_disarm(&t->timer);
	health_check_result(t->cs->srv, r);
	replan(t);
}

static void agent_done(struct chk_task *t, struct agent_result *ar)
{
	task_close(t);
	t->st = TS_IDLE;
	health_agent_result(t->cs->srv, ar);
	timer_arm(&t->timer, now_us + (uint64_t)MAX(t->cs->srv->chk.agent_inter, 1) * 1000);
}

/* Ends a run on a failure before any answer (connect, socket, timeout). */
static void fail(struct chk_task *t, enum chk_code code, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct chk_task *t, enum chk_code code, const char *f, ...)
{
	char why[CHK_REASON_LEN];
	va_list ap;

	va_start(ap, f);
	vsnprintf(why, sizeof(why), f, ap);
	va_end(ap);
	if (t->is_agent) {
		struct agent_result ar = {.ok = false, .weight_pct = -1, .word = AGENT_NONE};

		fmt(ar.reason, sizeof(ar.reason), "%s", why);
		agent_done(t, &ar);
	} else {
		struct chk_result r = {.ok = false, .code = code};

		fmt(r.reason, sizeof(r.reason), "%s", why);
		check_done(t, &r);
	}
}

/* Opens a connection (from a timer callback only, see the top of the file). */
static void task_connect(struct chk_task *t, int port)
{
	const struct proxy *be = be_of(t);
	struct sockaddr_storage ss;
	socklen_t len = target(t, port, &ss);
	char eb[64];
	int fd, one = 1;

	if (!len) {
		fail(t, CHK_C_SOCKERR, "no port to connect to");
		return;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		fail(t, CHK_C_SOCKERR, "cannot create a socket: %s",
		     errtext(errno, eb, sizeof(eb)));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t->h.cb = task_io_cb;
	if (loop_add(&t->h, fd) != OK) {
		t->h.fd = -1;
		close(fd);
		fail(t, CHK_C_SOCKERR, "epoll registration failed");
		return;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) == -1 && errno != EINPROGRESS) {
		int e = errno;

		task_close(t);
		fail(t, CHK_C_L4CON, "%s", errtext(e, eb, sizeof(eb)));
		return;
	}
	t->conn_ms = MIN(be->to.connect, be->to.check);
	t->conn_deadline = now_us + (uint64_t)t->conn_ms * 1000;
	t->st = TS_CONNECT;
	timer_arm(&t->timer, MIN(t->conn_deadline, t->deadline));
}

/* Starts a run: the timer fired in TS_IDLE. */
static void task_start(struct chk_task *t)
{
	const struct proxy *be = be_of(t);

	t->t_start = now_us;
	t->deadline = now_us + (uint64_t)be->to.check * 1000;
	t->buf = pool_alloc(&tl->buf_pool);
	if (!t->buf) {
		fail(t, CHK_C_SOCKERR, "out of memory");
		return;
	}
	t->len = 0;
	t->cap = t->is_agent ? MIN(tl->bufsize, AGENT_MAX_LINE) - 1 : tl->bufsize - 1;
	t->step = 0;
	t->out = NULL;
	t->outlen = t->outoff = 0;
	if (!t->is_agent && t->plan == CHK_PLAN_CHECK && be->chk.kind == CHK_KIND_TCP &&
	    (be->opts & PO_TCPCHK) && be->chk.nsteps) {
		const struct tcpchk_step *st = &be->chk.steps[0];

		/* A first rule that is not a connect has an implicit one before it. */
		if (st->type == TCPCHK_CONNECT)
			t->step = 1;
		task_connect(t, st->type == TCPCHK_CONNECT ? st->port : 0);
		return;
	}
	task_connect(t, 0);
}

/* The connection is up: what to send. */
static void task_connected(struct chk_task *t)
{
	const struct proxy *be = be_of(t);
	struct chk_srv *cs = t->cs;

	timer_arm(&t->timer, t->deadline);
	if (t->is_agent) {
		const char *s = cs->srv->chk.agent_send;

		t->out = s;
		t->outlen = s ? (uint32_t)strlen(s) : 0;
	} else if (t->plan == CHK_PLAN_PROBE) {
		t->out = cs->probe;
		t->outlen = cs->probelen;
	} else if (be->chk.kind == CHK_KIND_HTTP) {
		t->out = cs->req;
		t->outlen = cs->reqlen;
	} else if ((be->opts & PO_TCPCHK) && be->chk.nsteps) {
		tcp_next(t);
		return;
	} else {
		struct chk_result r = {.ok = true, .code = CHK_C_L4OK};

		fmt(r.reason, sizeof(r.reason), "connected");
		check_done(t, &r);
		return;
	}
	t->outoff = 0;
	t->st = t->outlen ? TS_SEND : TS_RECV;
}

static void on_connect_event(struct chk_task *t, uint32_t events)
{
	socklen_t el = sizeof(int);
	char eb[64];
	int err = 0;

	if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		return;
	if (getsockopt(t->h.fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1)
		err = errno;
	if (!err && (events & (EPOLLERR | EPOLLHUP)))
		err = ECONNRESET;
	if (err) {
		fail(t, CHK_C_L4CON, "%s", errtext(err, eb, sizeof(eb)));
		return;
	}
	task_connected(t);
}

/* Writes what is left of t->out. Returns OK when all is sent, AGAIN, or ERR (run ended). */
static int task_send(struct chk_task *t)
{
	char eb[64];

	while (t->outoff < t->outlen) {
		ssize_t n = send(t->h.fd, t->out + t->outoff, t->outlen - t->outoff, MSG_NOSIGNAL);

		if (n > 0) {
			t->outoff += (uint32_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return AGAIN;
		fail(t, t->is_agent ? CHK_C_AGENT : CHK_C_L7RSP, "%s while sending%s",
		     errtext(n == -1 ? errno : EPIPE, eb, sizeof(eb)),
		     t->is_agent ? " to the agent" : " the request");
		return ERR;
	}
	return OK;
}

/* Reads until EAGAIN, the end or a full buffer. Returns the fin state (CHK_FIN_*). *err is set
 * on a socket error (which also ends the input). */
static int task_recv(struct chk_task *t, int *err)
{
	*err = 0;
	for (;;) {
		ssize_t n;

		if (t->len >= t->cap)
			return CHK_FIN_FULL;
		n = recv(t->h.fd, t->buf + t->len, t->cap - t->len, 0);
		if (n > 0) {
			t->len += (uint32_t)n;
			t->buf[t->len] = '\0';
			continue;
		}
		if (n == 0)
			return CHK_FIN_EOF;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return CHK_FIN_NO;
		*err = errno;
		return CHK_FIN_EOF;
	}
}

static void http_input(struct chk_task *t, int fin, int err)
{
	struct chk_result r;
	char eb[64];

	memset(&r, 0, sizeof(r));
	if (chk_http_eval(be_of(t), t->plan == CHK_PLAN_PROBE, t->buf, t->len, fin, &r) == AGAIN)
		return;
	if (!r.ok && err && !t->len)
		fmt(r.reason, sizeof(r.reason), "%s before a response",
		    errtext(err, eb, sizeof(eb)));
	check_done(t, &r);
}

static void agent_input(struct chk_task *t, int fin, int err)
{
	struct agent_result ar;
	char eb[64];

	if (!memchr(t->buf, '\n', t->len) && fin == CHK_FIN_NO)
		return;
	if (!t->len) {
		fail(t, CHK_C_AGENT, "agent %s without an answer",
		     err ? errtext(err, eb, sizeof(eb)) : "closed the connection");
		return;
	}
	chk_agent_parse(t->buf, t->len, &ar);
	agent_done(t, &ar);
}

/* tcp-check: runs the steps from t->step until one has to wait. */
static void tcp_next(struct chk_task *t)
{
	const struct chk_proxy_conf *k = &be_of(t)->chk;

	while (t->step < k->nsteps) {
		const struct tcpchk_step *st = &k->steps[t->step];
		struct chk_result r;
		int rc, fin, err;

		switch (st->type) {
		case TCPCHK_CONNECT:
			/* A new connection: opened from the timer, not from this callback. */
			loop_close(&t->h);
			t->len = 0;
			t->st = TS_NEXT;
			timer_arm(&t->timer, now_us);
			return;
		case TCPCHK_SEND:
			if (t->st != TS_SEND) {
				t->out = st->data;
				t->outlen = st->len;
				t->outoff = 0;
				t->len =
				    0; /* a new exchange: earlier bytes answered earlier rules */
				t->st = TS_SEND;
			}
			rc = task_send(t);
			if (rc != OK)
				return;
			t->st = TS_RECV;
			t->step++;
			break;
		case TCPCHK_EXPECT:
			t->st = TS_RECV;
			fin = task_recv(t, &err);
			memset(&r, 0, sizeof(r));
			rc = chk_tcp_expect(st, t->step + 1, t->buf, t->len, fin, &r);
			if (rc == AGAIN)
				return;
			if (rc == ERR) {
				check_done(t, &r);
				return;
			}
			t->step++;
			break;
		}
	}
	{
		struct chk_result r = {.ok = true, .code = CHK_C_L7OK};

		fmt(r.reason, sizeof(r.reason), "tcp-check passed (%d rules)", k->nsteps);
		check_done(t, &r);
	}
}

/* Input, output or an error on the task's socket. */
static void task_io_cb(struct fdh *h, uint32_t events)
{
	struct chk_task *t = container_of(h, struct chk_task, h);
	const struct proxy *be = be_of(t);
	int fin, err;

	if (t->st == TS_CONNECT) {
		on_connect_event(t, events);
		if (t->st == TS_IDLE || t->st == TS_NEXT)
			return;
		/* the answer may already be there: fall through to sending, then reading */
	}
	if (!t->is_agent && t->plan == CHK_PLAN_CHECK && be->chk.kind == CHK_KIND_TCP) {
		/* tcp-check rules (connect-only checks ended in task_connected()) */
		if (t->st == TS_SEND || t->st == TS_RECV)
			tcp_next(t);
		return;
	}
	if (t->st == TS_SEND) {
		if (task_send(t) != OK)
			return;
		t->st = TS_RECV;
	}
	if (t->st != TS_RECV)
		return;
	fin = task_recv(t, &err);
	if (t->is_agent)
		agent_input(t, fin, err);
	else
		http_input(t, fin, err);
}

/* The deadline of a run (connect or whole check). */
static void task_timeout(struct chk_task *t)
{
	const struct proxy *be = be_of(t);
	uint32_t ms = be->to.check;

	if (t->st == TS_CONNECT) {
		fail(t, t->is_agent ? CHK_C_AGENT : CHK_C_L4TOUT, "connect timeout after %u ms",
		     now_us >= t->conn_deadline ? t->conn_ms : ms);
		return;
	}
	if (t->is_agent) {
		/* an answer without its newline is still an answer */
		if (t->len)
			agent_input(t, CHK_FIN_EOF, 0);
		else
			fail(t, CHK_C_AGENT, "timeout after %u ms waiting for the agent", ms);
		return;
	}
	if (t->st == TS_SEND)
		fail(t, CHK_C_L7TOUT, "timeout after %u ms sending the request", ms);
	else if (t->plan == CHK_PLAN_CHECK && be->chk.kind == CHK_KIND_TCP &&
		 t->step < be->chk.nsteps && be->chk.steps[t->step].type == TCPCHK_EXPECT) {
		const struct tcpchk_step *st = &be->chk.steps[t->step];
		struct chk_result r;
		char pat[SHOW_MAX + 1];

		/* Like HAProxy, a mismatch waits for more bytes until the end: say what came. */
		if (t->len &&
		    chk_tcp_expect(st, t->step + 1, t->buf, t->len, CHK_FIN_EOF, &r) == ERR)
			fail(t, CHK_C_L7TOUT, "%s (timeout after %u ms)", r.reason, ms);
		else
			fail(t, CHK_C_L7TOUT, "step %d: timeout after %u ms waiting for '%s'",
			     t->step + 1, ms,
			     show(pat, sizeof(pat), st->exp.arg, strlen(st->exp.arg)));
	} else
		fail(t, CHK_C_L7TOUT, "timeout after %u ms waiting for the response%s", ms,
		     t->len ? " body" : "");
}

static void task_timer_cb(struct timer *tm)
{
	struct chk_task *t = container_of(tm, struct chk_task, timer);

	switch (t->st) {
	case TS_IDLE:
		/* Soft stop: no new checks (in-flight ones end normally); nor for a deleted server. */
		if (this_worker->stopping || server_deleted(t->cs->srv))
			return;
		if (!t->is_agent && t->plan == CHK_PLAN_IDLE)
			replan(t);
		else
			task_start(t);
		return;
	case TS_NEXT:
		t->step++;
		task_connect(t, be_of(t)->chk.steps[t->step - 1].port);
		return;
	case TS_CONNECT:
	case TS_SEND:
	case TS_RECV:
		task_timeout(t);
		return;
	}
}

/* ---- per thread ---- */

static void task_init(struct chk_task *t, struct chk_srv *cs, bool agent)
{
	memset(t, 0, sizeof(*t));
	t->cs = cs;
	t->is_agent = agent;
	t->h.fd = -1;
	t->h.cb = task_io_cb;
	timer_init(&t->timer, task_timer_cb);
}

/* The server slots this thread owns, in keel_proxies order: every slot of a backend's capacity,
 * so that a server published later by "add server" already has its owner. */
static int owned_slots(struct chk_srv *out)
{
	struct list *l;
	int idx = 0, n = 0, i;

	list_for_each(l, &keel_proxies)
	{
		struct proxy *p = list_entry(l, struct proxy, list);
		int cap = MAX(p->srv_cap, p->nsrv);

		if (p->disabled || !(p->cap & PR_CAP_BE))
			continue;
		for (i = 0; i < cap; i++, idx++) {
			if (idx % global.nbthread != this_worker->id)
				continue;
			if (out) {
				out[n].be = p;
				out[n].slot = i;
			}
			n++;
		}
	}
	return n;
}

/* Starts the checks of a slot that holds a published server; i spreads the first runs. */
static int cs_start(struct chk_srv *cs, struct server *srv, int i)
{
	uint64_t first = now_us + (uint64_t)(i * 37 % FIRST_SPREAD_MS) * 1000;

	cs->req = build_check_req(srv, &cs->reqlen);
	cs->probe = build_probe_req(srv, &cs->probelen);
	if (!cs->req || !cs->probe) {
		free(cs->req);
		free(cs->probe);
		cs->req = cs->probe = NULL;
		return ERR;
	}
	cs->srv = srv;
	replan(&cs->chk);
	timer_arm(&cs->chk.timer, MIN(cs->chk.timer.expire, first));
	if (srv->chk.agent)
		timer_arm(&cs->agent.timer, first);
	return OK;
}

/* This thread's periodic look at its slots: starts the checks of servers added since, stops
 * those of deleted ones, and closes idle connections that must not be reused. */
static void scan_cb(struct timer *t)
{
	unsigned ch = atomic_load_explicit(&server_changes, memory_order_acquire);
	int i;

	if (this_worker->stopping)
		return;
	for (i = 0; i < tl_ncs; i++) {
		struct chk_srv *cs = &tl_cs[i];

		if (!cs->srv) {
			struct server *srv;

			if (cs->slot >= server_count(cs->be))
				continue;
			srv = cs->be->srv[cs->slot];
			if (srv->hl && !server_deleted(srv) && cs_start(cs, srv, i) != OK)
				keel_log(LOG_LVL_ERR, "server '%s/%s': cannot start its checks: out of memory",
					 cs->be->name, srv->name);
		} else if (!cs->stopped && server_deleted(cs->srv)) {
			task_close(&cs->chk);
			task_close(&cs->agent);
			timer_disarm(&cs->chk.timer);
			timer_disarm(&cs->agent.timer);
			cs->stopped = true;
		}
	}
	if (ch != tl_scan_changes) {
		tl_scan_changes = ch;
		backend_purge_stale();
	}
	timer_arm(t, now_us + SCAN_MS * 1000);
}

int check_thread_start(char **err)
{
	int i, n = owned_slots(NULL);

	tl_ncs = 0;
	tl_scan_changes = atomic_load(&server_changes);
	timer_init(&tl_scan, scan_cb);
	timer_arm(&tl_scan, now_us + SCAN_MS * 1000);
	if (!n)
		return OK;
	tl_cs = calloc((size_t)n, sizeof(*tl_cs));
	if (!tl_cs)
		goto oom;
	owned_slots(tl_cs);
	tl_ncs = n;
	for (i = 0; i < n; i++) {
		task_init(&tl_cs[i].chk, &tl_cs[i], false);
		task_init(&tl_cs[i].agent, &tl_cs[i], true);
	}
	for (i = 0; i < n; i++) {
		struct chk_srv *cs = &tl_cs[i];
		struct server *srv;

		/* The first runs are spread so that a large farm is not checked all at once. */
		if (cs->slot >= server_count(cs->be))
			continue;
		srv = cs->be->srv[cs->slot];
		if (srv->hl && cs_start(cs, srv, i) != OK)
			goto oom;
	}
	return OK;
oom:
	check_thread_stop();
	*err = strfmt("cannot allocate the health checks: out of memory");
	return ERR;
}

void check_thread_stop(void)
{
	int i;

	timer_disarm(&tl_scan);
	for (i = 0; i < tl_ncs; i++) {
		struct chk_srv *cs = &tl_cs[i];

		task_close(&cs->chk);
		task_close(&cs->agent);
		timer_disarm(&cs->chk.timer);
		timer_disarm(&cs->agent.timer);
		free(cs->req);
		free(cs->probe);
	}
	free(tl_cs);
	tl_cs = NULL;
	tl_ncs = 0;
}

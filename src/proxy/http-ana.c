/* HTTP head analysis: what keel decides once a request or response head is complete, and the
 * rewrite of that head (hop-by-hop headers, X-Forwarded-*, rules) in place in the buffer. */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include <keel/acl.h>
#include <keel/backend.h>
#include <keel/buf.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/cookie.h>
#include <keel/drain.h>
#include <keel/global.h>
#include <keel/http-ana.h>
#include <keel/http.h>
#include <keel/lb.h>
#include <keel/loop.h>
#include <keel/sample.h>
#include <keel/service.h>
#include <keel/session.h>
#include <keel/ssl.h>
#include <keel/stick.h>
#include <keel/stream.h>
#include <keel/worker.h>

#define MAX_ADDED 32
#define EDIT_ARENA 8192

/* Pending edits to a head: deletions are flags on the parsed headers, additions are appended. */
struct added_hdr {
	const char *name;
	uint32_t nlen;
	const char *val;
	uint32_t vlen;
	bool del;
};

struct head_edit {
	struct http_head *h;
	struct added_hdr add[MAX_ADDED];
	int nadd;
	char arena[EDIT_ARENA];
	uint32_t used;
	const char *path;     /* set-path: replaces the path, keeps the query */
	uint32_t pathlen;
	bool overflow;
};

static __thread struct head_edit ed_tls;

static void edit_init(struct head_edit *ed, struct http_head *h)
{
	ed->h = h;
	ed->nadd = 0;
	ed->used = 0;
	ed->path = NULL;
	ed->pathlen = 0;
	ed->overflow = false;
}

static bool name_eq(const char *a, uint32_t al, const char *b, uint32_t bl)
{
	return al == bl && !strncasecmp(a, b, al);
}

static void edit_del(struct head_edit *ed, const char *name, uint32_t nlen)
{
	int i;

	for (i = 0; i < ed->h->nhdr; i++)
		if (name_eq(http_ptr(ed->h, ed->h->hdr[i].name), ed->h->hdr[i].name.len, name, nlen))
			ed->h->hdr[i].del = true;
	for (i = 0; i < ed->nadd; i++)
		if (name_eq(ed->add[i].name, ed->add[i].nlen, name, nlen))
			ed->add[i].del = true;
}

static bool edit_has(struct head_edit *ed, const char *name, uint32_t nlen)
{
	int i;

	if (http_hdr_find(ed->h, name, nlen, 0) >= 0)
		return true;
	for (i = 0; i < ed->nadd; i++)
		if (!ed->add[i].del && name_eq(ed->add[i].name, ed->add[i].nlen, name, nlen))
			return true;
	return false;
}

static char *edit_alloc(struct head_edit *ed, uint32_t n)
{
	char *p;

	if (ed->used + n > EDIT_ARENA) {
		ed->overflow = true;
		return NULL;
	}
	p = ed->arena + ed->used;
	ed->used += n;
	return p;
}

static void edit_add(struct head_edit *ed, const char *name, uint32_t nlen, const char *val,
		     uint32_t vlen)
{
	struct added_hdr *a;

	if (ed->nadd == MAX_ADDED) {
		ed->overflow = true;
		return;
	}
	a = &ed->add[ed->nadd++];
	a->name = name;
	a->nlen = nlen;
	a->val = val;
	a->vlen = vlen;
	a->del = false;
}

/* Renders a log-format value into the edit arena. */
static bool render_value(struct head_edit *ed, const struct logformat *lf, struct stream *s,
			 const char **val, uint32_t *vlen)
{
	char tmp[2048];
	size_t n = logformat_render(lf, s, tmp, sizeof(tmp));
	char *p = edit_alloc(ed, (uint32_t)n);
	size_t i;

	if (!p)
		return false;
	/* A header value must not smuggle a line break in. */
	for (i = 0; i < n; i++)
		p[i] = (tmp[i] == '\r' || tmp[i] == '\n' || tmp[i] == '\0') ? ' ' : tmp[i];
	*val = p;
	*vlen = (uint32_t)n;
	return true;
}

/* Appends src to the scratch output; false when it does not fit. */
struct out {
	char *p;
	uint32_t len, cap;
};

static bool put(struct out *o, const char *s, uint32_t n)
{
	if (o->len + n > o->cap)
		return false;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	return true;
}

static bool put_hdr(struct out *o, const char *n, uint32_t nl, const char *v, uint32_t vl)
{
	return put(o, n, nl) && put(o, ": ", 2) && put(o, v, vl) && put(o, "\r\n", 2);
}

static bool is_hop_by_hop(const char *n, uint32_t nl)
{
	return name_eq(n, nl, "connection", 10) || name_eq(n, nl, "keep-alive", 10) ||
	       name_eq(n, nl, "proxy-connection", 16) || name_eq(n, nl, "upgrade", 7);
}

/* Serialises the edited head into the thread scratch. first/firstlen is the start line without
 * CRLF. Returns the length, or 0 when it does not fit. */
/* A piece of a start line. */
struct piece {
	const char *p;
	uint32_t len;
};

/* The Expect line keel adds to a request with a body (TX_EXPECT_OURS): always the last one of
 * the head, so that http_ana_strip_expect() finds it. */
#define EXPECT_LINE "Expect: 100-continue\r\n"
#define EXPECT_LINE_LEN (sizeof(EXPECT_LINE) - 1)

static uint32_t serialise(struct head_edit *ed, const struct piece *first, int nfirst,
			  bool keep_upgrade, const char *conn_hdr, bool expect)
{
	struct out o = {.p = tl->scratch, .len = 0, .cap = tl->bufsize};
	const struct http_head *h = ed->h;
	int i;

	for (i = 0; i < nfirst; i++)
		if (!put(&o, first[i].p, first[i].len))
			return 0;
	if (!put(&o, "\r\n", 2))
		return 0;
	for (i = 0; i < h->nhdr; i++) {
		const struct http_hdr *hd = &h->hdr[i];
		const char *n = http_ptr(h, hd->name);

		if (hd->del)
			continue;
		if (is_hop_by_hop(n, hd->name.len) &&
		    !(keep_upgrade && name_eq(n, hd->name.len, "upgrade", 7)))
			continue;
		if (!put_hdr(&o, n, hd->name.len, http_ptr(h, hd->value), hd->value.len))
			return 0;
	}
	for (i = 0; i < ed->nadd; i++)
		if (!ed->add[i].del &&
		    !put_hdr(&o, ed->add[i].name, ed->add[i].nlen, ed->add[i].val, ed->add[i].vlen))
			return 0;
	if (conn_hdr && !put_hdr(&o, "Connection", 10, conn_hdr, (uint32_t)strlen(conn_hdr)))
		return 0;
	if (expect && !put(&o, EXPECT_LINE, EXPECT_LINE_LEN))
		return 0;
	if (!put(&o, "\r\n", 2))
		return 0;
	return o.len;
}

/* Replaces the head at the start of chan with the scratch's newlen bytes, moving what follows. */
static bool replace_head(struct chan *c, uint32_t oldlen, uint32_t newlen)
{
	struct buf *b = &c->b;
	uint32_t rest = b->tail - b->head - oldlen;

	if (newlen > oldlen && b->size - b->tail < newlen - oldlen) {
		buf_compact(b);
		if (b->size - b->tail < newlen - oldlen)
			return false;
	}
	memmove(b->data + b->head + newlen, b->data + b->head + oldlen, rest);
	memcpy(b->data + b->head, tl->scratch, newlen);
	b->tail = b->head + newlen + rest;
	c->out = b->head;
	c->fwd = b->head + newlen;
	return true;
}

static void apply_rules(struct stream *s, struct head_edit *ed, struct list *rules, int *deny,
			struct http_rule **final)
{
	struct list *l;

	list_for_each(l, rules) {
		struct http_rule *r = list_entry(l, struct http_rule, list);
		const char *v;
		uint32_t vl;

		if (!acl_cond_eval(r->cond, s))
			continue;
		switch (r->action) {
		case HRA_SET_HDR:
			if (!render_value(ed, &r->value, s, &v, &vl))
				break;
			edit_del(ed, r->name, r->namelen);
			edit_add(ed, r->name, r->namelen, v, vl);
			break;
		case HRA_ADD_HDR:
			if (render_value(ed, &r->value, s, &v, &vl))
				edit_add(ed, r->name, r->namelen, v, vl);
			break;
		case HRA_DEL_HDR:
			edit_del(ed, r->name, r->namelen);
			break;
		case HRA_SET_PATH:
			if (render_value(ed, &r->value, s, &v, &vl)) {
				ed->path = v;
				ed->pathlen = vl;
			}
			break;
		case HRA_ALLOW:
			return;
		case HRA_DENY:
			*deny = r->status;
			*final = r;
			return;
		case HRA_AUTH:
		case HRA_REDIRECT:
		case HRA_RETURN:
		case HRA_USE_SERVICE:
			*final = r;
			return;
		default:
			break;
		}
	}
}

/* Dotted IPv4 into out (16 bytes); returns its length. glibc's inet_ntop() goes through sprintf(),
 * which cost more than the rest of the request analysis on small requests (bench/micro). */
static size_t ipv4_str(const void *addr, char *out)
{
	const unsigned char *b = addr;
	size_t n = 0;
	int i;

	for (i = 0; i < 4; i++) {
		unsigned v = b[i];

		if (v >= 100)
			out[n++] = (char)('0' + v / 100);
		if (v >= 10)
			out[n++] = (char)('0' + v / 10 % 10);
		out[n++] = (char)('0' + v % 10);
		if (i < 3)
			out[n++] = '.';
	}
	out[n] = 0;
	return n;
}

/* Copies src into dst for a log line, escaping what could garble or forge one: control
 * characters, non-ASCII bytes, '"' and '#' become #XX (as HAProxy does). Returns the length. */
static uint32_t log_escape(char *dst, uint32_t cap, const char *src, uint32_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	uint32_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)src[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '#') {
			if (o + 1 > cap)
				break;
			dst[o++] = (char)ch;
		} else {
			if (o + 3 > cap)
				break;
			dst[o++] = '#';
			dst[o++] = hex[ch >> 4];
			dst[o++] = hex[ch & 15];
		}
	}
	return o;
}

static void capture_headers(struct stream *s, const struct http_head *h, bool req)
{
	struct txn *t = s->txn;
	const struct capture *caps = req ? s->fe->req_cap : s->fe->rsp_cap;
	int n = req ? s->fe->nreq_cap : s->fe->nrsp_cap, i;
	char *out = req ? t->cap_req : t->cap_rsp;
	uint32_t len = 0;

	for (i = 0; i < n; i++) {
		int k = http_hdr_find(h, caps[i].name, caps[i].namelen, 0);

		if (i && len < KEEL_CAP_LEN)
			out[len++] = '|';
		if (k >= 0)
			len += log_escape(out + len, KEEL_CAP_LEN - len, http_ptr(h, h->hdr[k].value),
					  MIN(h->hdr[k].value.len, caps[i].len));
	}
	if (req)
		t->cap_req_len = len;
	else
		t->cap_rsp_len = len;
}

void http_reply_auth(struct stream *s, const char *realm)
{
	char *r = strfmt("HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\ncache-control: no-cache\r\n"
			 "www-authenticate: Basic realm=\"%s\"\r\nconnection: close\r\n\r\n",
			 realm);

	stream_reply_heap(s, r, (uint32_t)strlen(r), 401, true);
}

static void reply_final_rule(struct stream *s, struct head_edit *ed, struct http_rule *r)
{
	const char *v;
	uint32_t vl;
	char *resp;

	switch (r->action) {
	case HRA_DENY:
		CTR_INC(s->fe->ctr[this_worker->id].denied_req);
		stream_error(s, r->status, "denied by http-request rule", "PR");
		return;
	case HRA_AUTH:
		http_reply_auth(s, r->realm);
		return;
	case HRA_REDIRECT: {
		const struct http_head *h = ed->h;
		const char *path = h->path.len ? http_ptr(h, h->path) : "/";
		uint32_t pl = h->path.len ? (uint32_t)(h->uri.off + h->uri.len - h->path.off) : 1;

		if (!render_value(ed, &r->value, s, &v, &vl)) {
			stream_error(s, 500, "redirect value too long", "PR");
			return;
		}
		if (r->redir_kind == 0)
			resp = strfmt("HTTP/1.1 %d %s\r\nlocation: %.*s\r\ncontent-length: 0\r\n"
				      "cache-control: no-cache\r\nconnection: close\r\n\r\n",
				      r->status, http_reason(r->status), (int)vl, v);
		else if (r->redir_kind == 1)
			resp = strfmt("HTTP/1.1 %d %s\r\nlocation: %.*s%.*s\r\ncontent-length: 0\r\n"
				      "cache-control: no-cache\r\nconnection: close\r\n\r\n",
				      r->status, http_reason(r->status), (int)vl, v, (int)pl, path);
		else {
			int hi = http_hdr_find(h, "host", 4, 0);

			resp = strfmt("HTTP/1.1 %d %s\r\nlocation: %.*s://%.*s%.*s\r\n"
				      "content-length: 0\r\ncache-control: no-cache\r\n"
				      "connection: close\r\n\r\n",
				      r->status, http_reason(r->status), (int)vl, v,
				      hi >= 0 ? (int)h->hdr[hi].value.len : 0,
				      hi >= 0 ? http_ptr(h, h->hdr[hi].value) : "", (int)pl, path);
		}
		stream_reply_heap(s, resp, (uint32_t)strlen(resp), r->status, true);
		return;
	}
	case HRA_RETURN: {
		const char *body = r->body ? r->body : "";

		resp = strfmt("HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: %s\r\n"
			      "cache-control: no-cache\r\nconnection: close\r\n\r\n%s",
			      r->status, http_reason(r->status), strlen(body),
			      r->content_type ? r->content_type : "text/plain", body);
		stream_reply_heap(s, resp, (uint32_t)strlen(resp), r->status, true);
		return;
	}
	case HRA_USE_SERVICE:
		r->svc->serve(s, ed->h);
		return;
	default:
		return;
	}
}

static struct proxy *choose_backend(struct stream *s)
{
	struct list *l;

	if (s->fe->cap & PR_CAP_BE)
		return s->fe;
	list_for_each(l, &s->fe->switching) {
		struct switching_rule *r = list_entry(l, struct switching_rule, list);

		if (acl_cond_eval(r->cond, s))
			return r->be;
	}
	return s->fe->defbe;
}

static void add_forwarded(struct stream *s, struct head_edit *ed, const struct proxy *px)
{
	char ip[INET6_ADDRSTRLEN];
	const char *name = px->fwdfor_hdr ? px->fwdfor_hdr : "X-Forwarded-For";
	uint32_t nlen = px->fwdfor_hdr ? px->fwdfor_hdrlen : 15;
	const void *a = s->sess->addr.sa.sa_family == AF_INET ? (const void *)&s->sess->addr.in.sin_addr
							 : (const void *)&s->sess->addr.in6.sin6_addr;
	char *v;
	size_t l;

	if (px->fwdfor_except_set &&
	    acl_net_match(s->sess->addr.sa.sa_family, a, px->fwdfor_except_family, px->fwdfor_except,
			  px->fwdfor_except_prefix))
		return;
	if (px->fwdfor_ifnone && edit_has(ed, name, nlen))
		return;
	if (s->sess->addr.sa.sa_family == AF_INET)
		l = ipv4_str(a, ip);
	else if (inet_ntop(s->sess->addr.sa.sa_family, a, ip, sizeof(ip)))
		l = strlen(ip);
	else
		return;
	v = edit_alloc(ed, (uint32_t)l);
	if (!v)
		return;
	memcpy(v, ip, l);
	/* A new header line after any existing ones: together they read as the appended list. */
	edit_add(ed, name, nlen, v, (uint32_t)l);
	/* X-Forwarded-Proto tells the application which scheme the client used. A client-sent
	 * value is replaced; a value set by an http-request rule is kept. */
	if (!px->fwdfor_ifnone || !edit_has(ed, "X-Forwarded-Proto", 17)) {
		int i;
		bool by_rule = false;

		for (i = 0; i < ed->nadd; i++)
			if (!ed->add[i].del && name_eq(ed->add[i].name, ed->add[i].nlen, "x-forwarded-proto", 17))
				by_rule = true;
		if (!by_rule) {
			bool tls = ssl_conn_used(&s->sess->cli);

			edit_del(ed, "X-Forwarded-Proto", 17);
			edit_add(ed, "X-Forwarded-Proto", 17, tls ? "https" : "http", tls ? 5 : 4);
		}
	}
}

/* The user behind a request whose persistence cookie names a draining server: its client address
 * and its Cookie headers without the persistence cookie, so that each browser with its own
 * application session counts once (docs/internals/health.md, "Drain and sticky users"). Never 0. */
static uint64_t ck_user_fp(const struct stream *s, const struct http_head *h,
			   const struct cookie_conf *ck)
{
	const void *a = s->sess->addr.sa.sa_family == AF_INET ? (const void *)&s->sess->addr.in.sin_addr
							 : (const void *)&s->sess->addr.in6.sin6_addr;
	uint64_t fp = lb_hash(a, s->sess->addr.sa.sa_family == AF_INET ? 4 : 16), c = 0;
	int i;

	/* the original values: a rewrite only flags them deleted */
	for (i = 0; i < h->nhdr; i++)
		if (name_eq(http_ptr(h, h->hdr[i].name), h->hdr[i].name.len, "cookie", 6))
			c += cookie_user_hash(http_ptr(h, h->hdr[i].value), h->hdr[i].value.len,
					      ck->name, ck->namelen);
	fp ^= lb_hash(&c, sizeof(c));
	return fp ? fp : 1;
}

/* Where the user of a request whose cookie names srv goes (cookie_verdict()); a user that stays
 * on a draining server is recorded there, so that it counts and keeps its place. */
static enum ck_verdict ck_verdict(struct stream *s, const struct http_head *h, struct server *srv)
{
	bool persist = (s->be->opts & PO_PERSIST) != 0;
	enum ck_verdict v;
	uint64_t fp;

	if (atomic_load_explicit(&srv->admin, memory_order_relaxed) != SRV_ADMIN_DRAIN)
		return cookie_verdict(srv, persist, 0);
	fp = ck_user_fp(s, h, &s->be->ck);
	v = cookie_verdict(srv, persist, drain_cookie_seen(srv, fp));
	if (v == CKV_GO)
		drain_cookie_stay(srv, fp, now_us);
	return v;
}

/* Cookie persistence, request side (docs/configuration.md, "cookie"): reads the persistence
 * cookie, decides whether it pins the request (TX_CK_PINNED, t->ck_srv; s->srv is set once the
 * analysis succeeded), removes it (insert indirect) or strips its "SRV~" prefix (prefix) in the
 * Cookie headers sent to the server, and tells the new server where a moved user came from. */
static void ck_request(struct stream *s, struct head_edit *ed)
{
	const struct cookie_conf *ck = &s->be->ck;
	struct txn *t = s->txn;
	struct http_head *h = ed->h;
	struct server *srv = NULL;
	bool rewrite = ck->mode == CK_PREFIX || (ck->mode == CK_INSERT && (ck->opts & CKO_INDIRECT));
	enum ck_verdict verdict;
	int i, n = h->nhdr;

	for (i = 0; i < n; i++) {
		struct http_hdr *hd = &h->hdr[i];
		const char *hn = http_ptr(h, hd->name), *v = http_ptr(h, hd->value);
		uint32_t off, len, srvlen, nl;
		char *out;

		if (hd->del)
			continue;
		/* Only keel says where a user was moved from: a client's claim is dropped. */
		if (name_eq(hn, hd->name.len, "x-keel-moved-from", 17) && !(ck->opts & CKO_NO_MOVED_HDR))
			hd->del = true;
		if (!name_eq(hn, hd->name.len, "cookie", 6) ||
		    !cookie_find(v, hd->value.len, ck->name, ck->namelen, &off, &len))
			continue;
		if (!(t->flags & TX_CK_SEEN)) {
			/* The first occurrence decides, as in HAProxy. */
			t->flags |= TX_CK_SEEN;
			cookie_split(ck, v + off, len, &srvlen, &t->ck_last, &t->ck_first);
			if (cookie_dates_ok(ck, t->ck_last, t->ck_first, (uint32_t)(wall_us / 1000000)))
				srv = cookie_server(s->be, v + off, srvlen);
		}
		if (!rewrite)
			continue;
		out = edit_alloc(ed, hd->value.len + hd->value.len / 2 + 2);
		if (!out)
			return;
		nl = cookie_req_rewrite(v, hd->value.len, ck->name, ck->namelen, ck->mode == CK_PREFIX,
					out);
		hd->del = true;
		if (nl)
			edit_add(ed, "Cookie", 6, out, nl);
	}
	if (!srv)
		return;
	t->ck_srv = srv;
	verdict = ck_verdict(s, h, srv);
	if (verdict == CKV_GO) {
		t->flags |= TX_CK_PINNED;
		return;
	}
	if (verdict == CKV_GONE)
		t->flags |= TX_CK_DRAINED;
	if (!(ck->opts & CKO_NO_MOVED_HDR))
		edit_add(ed, "X-Keel-Moved-From", 17, srv->name, (uint32_t)strlen(srv->name));
}

/* Whether a Cache-Control header already keeps shared caches from storing the response. */
static bool rsp_private(const struct http_head *h)
{
	static const char *const words[] = {"private", "no-store", "no-cache"};
	int i = -1;
	size_t w;

	while ((i = http_hdr_find(h, "cache-control", 13, i + 1)) >= 0) {
		const char *v = http_ptr(h, h->hdr[i].value);
		uint32_t len = h->hdr[i].value.len, k;

		for (w = 0; w < ARRAY_SIZE(words); w++)
			for (k = 0; k + strlen(words[w]) <= len; k++)
				if (!strncasecmp(v + k, words[w], strlen(words[w])))
					return true;
	}
	return false;
}

/* Cookie persistence, response side: reports a sticky user served by another server than its
 * cookie named, handles the server's own Set-Cookie of the persistence cookie (removed in insert
 * mode and for direct hits with indirect, rewritten in rewrite and prefix modes, left alone with
 * preserve) and inserts keel's cookie in insert mode when the client lacks a valid one for the
 * server that answered (or a dated cookie needs a refresh). */
static void ck_response(struct stream *s, struct head_edit *ed)
{
	const struct cookie_conf *ck = &s->be->ck;
	struct txn *t = s->txn;
	struct http_head *h = ed->h;
	struct server *srv = s->srv;
	bool direct = srv && t->ck_srv == srv, found = false, refresh;
	uint32_t now_s = (uint32_t)(wall_us / 1000000), cap, nl;
	int i, n = h->nhdr;
	char *out;

	if (!srv)
		return;
	if (t->ck_srv && t->ck_srv != srv)
		cookie_report_moved(t->ck_srv, srv, (t->flags & TX_CK_DRAINED) != 0, this_worker->id);
	for (i = 0; i < n; i++) {
		struct http_hdr *hd = &h->hdr[i];
		const char *v = http_ptr(h, hd->value);
		uint32_t off, len;

		if (hd->del || !name_eq(http_ptr(h, hd->name), hd->name.len, "set-cookie", 10) ||
		    !cookie_setcookie_match(v, hd->value.len, ck->name, ck->namelen, &off, &len))
			continue;
		found = true;
		if (ck->opts & CKO_PRESERVE)
			continue;
		if (ck->mode == CK_INSERT || (direct && (ck->opts & CKO_INDIRECT))) {
			hd->del = true;
			continue;
		}
		if (!srv->cookie || (ck->mode != CK_REWRITE && ck->mode != CK_PREFIX))
			continue;
		/* NAME=<server cookie>[~<server's value>]<the server's attributes> */
		cap = ck->namelen + (uint32_t)strlen(srv->cookie) + hd->value.len + 3;
		out = edit_alloc(ed, cap);
		if (!out)
			return;
		if (ck->mode == CK_REWRITE)
			nl = (uint32_t)snprintf(out, cap, "%s=%s%.*s", ck->name, srv->cookie,
						(int)(hd->value.len - off - len), v + off + len);
		else
			nl = (uint32_t)snprintf(out, cap, "%s=%s%c%.*s", ck->name, srv->cookie,
						CK_PREFIX_DELIM, (int)(hd->value.len - off), v + off);
		hd->del = true;
		edit_add(ed, "Set-Cookie", 10, out, MIN(nl, cap - 1));
	}
	if (ck->mode != CK_INSERT || (found && (ck->opts & CKO_PRESERVE)) ||
	    ((ck->opts & CKO_POSTONLY) && t->meth != HTTP_METH_POST))
		return;
	/* A dated cookie is refreshed when its last date is a few seconds old, or it lacks one. */
	refresh = (ck->maxidle_s || ck->maxlife_s) &&
		  (!t->ck_last || (int32_t)(now_s - t->ck_last) >= CK_REFRESH_S ||
		   (ck->maxlife_s && !t->ck_first));
	if (direct && !refresh)
		return;
	/* A server without a cookie value cannot be stuck to: a client's stale cookie is deleted
	 * (keel sends nothing to a client that has none, where HAProxy sends the deletion). */
	if (!srv->cookie && !(t->flags & TX_CK_SEEN))
		return;
	cap = ck->namelen + (srv->cookie ? (uint32_t)strlen(srv->cookie) : 0) +
	      (ck->domains ? (uint32_t)strlen(ck->domains) : 0) +
	      (ck->attrs ? (uint32_t)strlen(ck->attrs) : 0) + 96;
	out = edit_alloc(ed, cap);
	if (!out)
		return;
	nl = cookie_format(ck, srv->cookie, now_s, direct ? t->ck_first : 0, out, cap);
	if (!nl)
		return;
	edit_add(ed, "Set-Cookie", 10, out, nl);
	/* nocache: a shared cache must not hand this user's cookie to others. */
	if ((ck->opts & CKO_NOCACHE) && !rsp_private(h))
		edit_add(ed, "Cache-Control", 13, "private", 7);
}

static void capture_reqline(struct txn *t, const struct http_head *h)
{
	const char *nl = memchr(h->base, '\r', h->len);
	uint32_t l = nl ? (uint32_t)(nl - h->base) : 0;

	t->reqline_len = log_escape(t->reqline, KEEL_LOG_URI_LEN, h->base, l);
}

/* Whether the body of request h waits for the server's 100 (docs/configuration.md, "Requests
 * with a body"): the backend's option http-expect-continue (the default), an HTTP/1.1 request
 * with a body, not an upgrade, without an Expect of another kind. The client's own
 * "Expect: 100-continue" is kept (the client waits for the 100 too: it is relayed); otherwise keel
 * adds one, and swallows the 100s. */
static void hold_body(struct stream *s, const struct http_head *h)
{
	struct txn *t = s->txn;

	if (!(s->be->opts & PO_EXPECT_CONTINUE) || !(t->flags & TX_REQ_BODY) ||
	    (t->flags & TX_UPGRADE) || h->minor == 0)
		return;
	if (h->flags & HM_EXPECT_100) {
		t->flags |= TX_HOLD;
	} else if (http_hdr_find(h, "expect", 6, 0) < 0) {
		t->flags |= TX_HOLD | TX_EXPECT_OURS;
	}
}

void http_ana_strip_expect(struct stream *s)
{
	struct txn *t = s->txn;
	struct chan *c = &s->req;
	uint32_t at = c->b.head + t->req_hlen - 2 - (uint32_t)EXPECT_LINE_LEN;

	/* The head is retained while the body is held (TX_RETAIN): it starts at b.head. */
	BUG_ON(!(t->flags & TX_EXPECT_OURS) || !(t->flags & TX_RETAIN) ||
	       memcmp(c->b.data + at, EXPECT_LINE, EXPECT_LINE_LEN));
	memmove(c->b.data + at, c->b.data + at + EXPECT_LINE_LEN,
		c->b.tail - at - (uint32_t)EXPECT_LINE_LEN);
	c->b.tail -= (uint32_t)EXPECT_LINE_LEN;
	c->fwd -= (uint32_t)EXPECT_LINE_LEN;
	c->out = c->b.head;
	t->req_hlen -= (uint32_t)EXPECT_LINE_LEN;
	t->flags &= ~(uint32_t)TX_EXPECT_OURS;
}

int http_ana_request(struct stream *s, uint32_t hlen)
{
	struct txn *t = s->txn;
	struct http_head *h = &(struct http_head){0};
	struct head_edit *ed = &ed_tls;
	struct http_rule *final = NULL;
	const struct http_service *svc;
	int deny = 0;
	struct piece line[5];
	uint32_t newlen;
	const char *conn = NULL;
	bool srv_close;

	h->hdr = proxy_thread->hdrs;
	h->maxhdr = (uint16_t)global.maxhdr;
	t->t_head = now_us;
	CTR_INC(s->fe->ctr[this_worker->id].req_tot);
	if (http_parse_head(&t->req_p, HTTP_REQUEST, buf_head(&s->req.b), hlen, h) != OK) {
		/* Keep what we can for the log. */
		capture_reqline(t, h);
		CTR_INC(s->fe->ctr[this_worker->id].failed_req);
		stream_error(s, h->err_status, h->err, "PR");
		return ERR;
	}
	t->req_head = h;
	if (!(h->flags & HM_DONE))
		t->flags |= TX_REQ_BODY;
	t->meth = h->meth;
	t->req_minor = h->minor;
	capture_reqline(t, h);
	if (h->meth == HTTP_METH_HEAD)
		t->flags |= TX_HEAD_REQ;
	if (h->minor == 0)
		t->flags |= TX_CLI_10;
	if (h->flags & HM_KEEPALIVE)
		t->flags |= TX_CLI_KEEPALIVE;
	if (s->fe->nreq_cap)
		capture_headers(s, h, true);
	edit_init(ed, h);

	/* Locally served URIs come before any rule. */
	if (s->fe->monitor_uri && h->path.len == strlen(s->fe->monitor_uri) &&
	    !memcmp(http_ptr(h, h->path), s->fe->monitor_uri, h->path.len)) {
		static const char ok[] = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\ncache-control: no-cache\r\n\r\n";
		char *r = strfmt("%s", ok);

		stream_reply_heap(s, r, (uint32_t)strlen(r), 200, false);
		goto out_reply;
	}
	/* Pages an upper layer serves (the metrics and stats pages). */
	svc = s->fe->svc_mask ? http_service_claim(s->fe, h) : NULL;
	if (svc) {
		svc->serve(s, h);
		goto out_reply;
	}
	apply_rules(s, ed, &s->fe->req_rules, &deny, &final);
	if (final) {
		reply_final_rule(s, ed, final);
		goto out_reply;
	}
	s->be = choose_backend(s);
	if (!s->be) {
		stream_error(s, 503, "no backend for this request", "PR");
		goto out_reply;
	}
	if (s->be != s->fe) {
		/* A listen section counted the request above; a backend counts it here (stats, the
		 * retry budget's window). */
		CTR_INC(s->be->ctr[this_worker->id].req_tot);
		apply_rules(s, ed, &s->be->req_rules, &deny, &final);
		if (final) {
			reply_final_rule(s, ed, final);
			goto out_reply;
		}
	}
	if (s->be->ck.name)
		ck_request(s, ed);
	if (s->be->stk.nrules) {
		/* Stick tables pin like the cookie (which goes first) and announce a move the same
		 * way; only keel says where a user came from. */
		if (!s->be->ck.name)
			edit_del(ed, "X-Keel-Moved-From", 17);
		stick_request(s);
		if (t->stk.srv && !(t->flags & TX_STK_PINNED) && t->stk.srv != t->ck_srv &&
		    !(s->be->ck.opts & CKO_NO_MOVED_HDR))
			edit_add(ed, "X-Keel-Moved-From", 17, t->stk.srv->name,
				 (uint32_t)strlen(t->stk.srv->name));
	}
	if ((s->fe->opts | s->be->opts) & PO_FORWARDFOR)
		add_forwarded(s, ed, (s->be->opts & PO_FORWARDFOR) ? s->be : s->fe);
	/* Hash-based balancing reads the head, which is rewritten below: take the key now. */
	if (lb_hash_key(s, s->be, &t->lb_hash))
		t->flags |= TX_HAS_HASH;
	/* So does the name TLS servers are asked for (their "sni" expression). */
	if (s->be->srv_sni) {
		struct sample smp;

		if (sample_fetch(s, s->be->srv_sni, &smp))
			t->sni_len = (uint16_t)sample_to_str(&smp, t->sni, sizeof(t->sni));
	}
	if (ed->overflow) {
		stream_error(s, 500, "header rewrite overflow", "PR");
		goto out_reply;
	}

	/* Connection management towards the server. */
	srv_close = ((s->fe->opts | s->be->opts) & (PO_HTTP_SERVER_CLOSE | PO_HTTPCLOSE)) != 0;
	if ((s->fe->opts | s->be->opts) & PO_HTTPCLOSE)
		t->flags &= ~(uint32_t)TX_CLI_KEEPALIVE;
	if (h->flags & HM_UPGRADE) {
		t->flags |= TX_UPGRADE;
		conn = "upgrade";
	} else if (srv_close) {
		conn = "close";
	} else if (h->minor == 0) {
		conn = "keep-alive"; /* keeps the server connection reusable for 1.0 clients */
	}
	if (!srv_close)
		t->flags |= TX_SRV_KEEPALIVE;
	if (h->flags & HM_ABS_URI) {
		/* A reverse proxy talks origin-form to servers; the authority becomes the Host. */
		edit_del(ed, "host", 4);
		edit_add(ed, "Host", 4, http_ptr(h, h->authority), h->authority.len);
	}

	/* Request line: METHOD SP origin-form-target SP HTTP/1.x */
	{
		const char *target;
		uint32_t tlen;
		const char *q = NULL;
		uint32_t qlen = 0;

		if (h->flags & HM_ABS_URI) {
			target = http_ptr(h, h->path);
			tlen = h->uri.off + h->uri.len - h->path.off;
			if (!tlen) {
				target = "/";
				tlen = 1;
			} else if (target[0] == '?') {
				/* "http://host?x" */
				q = target;
				qlen = tlen;
				target = "/";
				tlen = 1;
			}
		} else {
			target = http_ptr(h, h->uri);
			tlen = h->uri.len;
		}
		if (ed->path) {
			const char *qs = memchr(target, '?', tlen);

			if (qs && !q) {
				q = qs;
				qlen = (uint32_t)(target + tlen - qs);
			}
			target = ed->path;
			tlen = ed->pathlen;
		}
		line[0] = (struct piece){http_ptr(h, h->method), h->method.len};
		line[1] = (struct piece){" ", 1};
		line[2] = (struct piece){target, tlen};
		line[3] = (struct piece){q ? q : "", qlen};
		line[4] = (struct piece){h->minor ? " HTTP/1.1" : " HTTP/1.0", 9};
	}
	hold_body(s, h);
	newlen = serialise(ed, line, 5, (t->flags & TX_UPGRADE) != 0, conn,
			   (t->flags & TX_EXPECT_OURS) != 0);
	t->req_hlen = newlen;
	if (!newlen || !replace_head(&s->req, hlen, newlen)) {
		stream_error(s, 431, "request head too large after rewrite", "PR");
		goto out_reply;
	}
	t->bytes_in += hlen;
	if (h->flags & HM_DONE) {
		stream_set_rq(s, RQ_DONE);
	} else {
		stream_set_rq(s, RQ_BODY);
		t->req_body_left = h->content_length;
	}
	/* Requests safe to replay keep their bytes until the response starts; a held one while no
	 * byte of its body left. */
	if (http_meth_idempotent(h->meth) || (t->flags & TX_HOLD))
		t->flags |= TX_RETAIN;
	/* A persistence cookie pins the request: srv_process() then takes backend_assign_pinned(). */
	if (t->flags & TX_CK_PINNED)
		s->srv = (t->flags & TX_STK_PINNED) ? t->stk.srv : t->ck_srv;
	t->req_head = NULL;
	return OK;

out_reply:
	t->req_head = NULL;
	return ERR;
}

int http_ana_response(struct stream *s, uint32_t hlen, bool *interim)
{
	struct txn *t = s->txn;
	struct http_head *h = &(struct http_head){0};
	struct head_edit *ed = &ed_tls;
	struct http_rule *final = NULL;
	int deny = 0;
	const char *conn = NULL;
	const char *eol;
	uint32_t newlen;
	bool cli_ka;

	h->hdr = proxy_thread->hdrs2;
	h->maxhdr = (uint16_t)global.maxhdr;
	h->skip_body = (t->flags & TX_HEAD_REQ) != 0;
	*interim = false;
	if (http_parse_head(&t->rsp_p, HTTP_RESPONSE, buf_head(&s->rsp.b), hlen, h) != OK) {
		t->err_why = h->err;
		return ERR;
	}
	if (h->status < 200 && h->status != 101) {
		/* 100 Continue, 103 Early Hints: relayed as they are; the final response follows.
		 * A 100 to keel's own Expect is for keel (the stream releases the body), not for a
		 * client that did not ask for it. */
		*interim = true;
		if (h->status == 100)
			t->flags |= TX_CONTINUED;
		s->rsp.out = s->rsp.b.head;
		s->rsp.fwd = s->rsp.b.head + hlen;
		if (h->status == 100 && (t->flags & TX_EXPECT_OURS))
			s->rsp.b.head = s->rsp.out = s->rsp.fwd;
		return OK;
	}
	if (h->status == 101 && !(t->flags & TX_UPGRADE)) {
		t->err_why = "101 response to a request that did not ask for an upgrade";
		return ERR;
	}
	t->rsp_head = h;
	t->status = h->status;
	t->t_rsp = now_us;
	if (s->fe->nrsp_cap)
		capture_headers(s, h, false);
	edit_init(ed, h);
	apply_rules(s, ed, &s->be->rsp_rules, &deny, &final);
	if (!final && s->be != s->fe)
		apply_rules(s, ed, &s->fe->rsp_rules, &deny, &final);
	if (s->be->ck.name && !final)
		ck_response(s, ed);
	if (s->be->stk.nrules && !final)
		stick_response(s, this_worker->id);
	t->rsp_head = NULL;
	if (final && final->action == HRA_DENY) {
		t->err_why = "denied by http-response rule";
		t->status = (uint16_t)deny;
		return ERR;
	}
	if (ed->overflow) {
		t->err_why = "header rewrite overflow";
		return ERR;
	}
	/* Server side: reusable only if the server keeps it open and the body is delimited. */
	if (!(h->flags & HM_KEEPALIVE) || (h->flags & HM_CLOSE_DELIM) || h->status == 101)
		t->flags &= ~(uint32_t)TX_SRV_KEEPALIVE;
	/* Client side: keep alive unless someone asked to close, or the body runs to the close. */
	cli_ka = (t->flags & TX_CLI_KEEPALIVE) && !(h->flags & HM_CLOSE_DELIM) && !session_close_on_stop(s->sess) &&
		 !((s->fe->opts | s->be->opts) & PO_HTTPCLOSE);
	if (!cli_ka)
		t->flags &= ~(uint32_t)TX_CLI_KEEPALIVE;
	if (h->status == 101)
		conn = "upgrade";
	else if (!cli_ka)
		conn = "close";
	else if (t->flags & TX_CLI_10)
		conn = "keep-alive";
	eol = memchr(h->base, '\r', hlen);
	newlen = serialise(ed, &(struct piece){h->base, (uint32_t)(eol - h->base)}, 1,
			   h->status == 101, conn, false);
	if (!newlen || !replace_head(&s->rsp, hlen, newlen)) {
		t->err_why = "response head too large after rewrite";
		return ERR;
	}
	t->rsp_head_left = newlen;
	if (h->status == 101) {
		stream_set_rs(s, RS_TUNNEL);
	} else if (h->flags & HM_DONE) {
		stream_set_rs(s, RS_DONE);
	} else {
		stream_set_rs(s, RS_BODY);
	}
	return OK;
}

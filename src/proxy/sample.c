/* Sample fetches and log-format strings. A sample is read straight from the parsed request head
 * (a view, no copy) while the head is being analysed; log lines are rendered from the transaction's
 * captured fields once the response is done. */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/cookie.h>
#include <keel/http.h>
#include <keel/sample.h>
#include <keel/server.h>
#include <keel/session.h>
#include <keel/ssl.h>
#include <keel/stream-t.h>

const char *const LOGFMT_HTTPLOG =
	"%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc "
	"%sq/%bq %hr %hs %{+Q}r";
const char *const LOGFMT_CLF =
	"%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc "
	"%ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl";

static const struct {
	const char *name;
	enum sample_fetch fetch;
	bool needs_arg;
} fetches[] = {
	{"src", SMP_SRC, false},
	{"src_port", SMP_SRC_PORT, false},
	{"dst", SMP_DST, false},
	{"dst_port", SMP_DST_PORT, false},
	{"method", SMP_METHOD, false},
	{"path", SMP_PATH, false},
	{"url", SMP_URL, false},
	{"query", SMP_QUERY, false},
	{"hdr", SMP_HDR, true},
	{"req.hdr", SMP_HDR, true},
	{"req.fhdr", SMP_HDR, true},
	{"res.hdr", SMP_RES_HDR, true},
	{"shdr", SMP_RES_HDR, true},
	{"status", SMP_STATUS, false},
	{"be_name", SMP_BE_NAME, false},
	{"fe_name", SMP_FE_NAME, false},
	{"srv_name", SMP_SRV_NAME, false},
	{"req.ver", SMP_REQ_VER, false},
	{"req_ver", SMP_REQ_VER, false},
	{"always_true", SMP_ALWAYS_TRUE, false},
	{"always_false", SMP_ALWAYS_FALSE, false},
	{"url_param", SMP_URL_PARAM, true},
	{"urlp", SMP_URL_PARAM, true},
	{"req.cook", SMP_COOKIE, true},
	{"cook", SMP_COOKIE, true},
	{"res.cook", SMP_RES_COOKIE, true},
	{"scook", SMP_RES_COOKIE, true},
	{"str", SMP_STR, true},
	{"ssl_fc", SMP_SSL_FC, false},
	{"ssl_fc_sni", SMP_SSL_FC_SNI, false},
	{"ssl_fc_protocol", SMP_SSL_FC_PROTOCOL, false},
	{"ssl_fc_cipher", SMP_SSL_FC_CIPHER, false},
	{"ssl_fc_alpn", SMP_SSL_FC_ALPN, false},
	{"ssl_c_used", SMP_SSL_C_USED, false},
	{"ssl_c_verify", SMP_SSL_C_VERIFY, false},
	{"ssl_c_s_dn", SMP_SSL_C_S_DN, false},
};

int sample_expr_parse(const char *s, struct sample_expr *e, const char **rest, char **err)
{
	size_t n = 0, i;
	const char *arg = NULL;
	size_t arglen = 0;

	while (s[n] && (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '.'))
		n++;
	if (s[n] == '(') {
		const char *close = strchr(s + n, ')');

		if (!close) {
			*err = strfmt("'%s': missing ')'", s);
			return ERR;
		}
		arg = s + n + 1;
		arglen = (size_t)(close - arg);
	}
	for (i = 0; i < ARRAY_SIZE(fetches); i++) {
		if (strlen(fetches[i].name) != n || strncmp(fetches[i].name, s, n))
			continue;
		memset(e, 0, sizeof(*e));
		e->fetch = fetches[i].fetch;
		if (fetches[i].needs_arg && (!arg || !arglen)) {
			*err = strfmt("'%.*s' expects an argument, e.g. %.*s(name)", (int)n, s, (int)n, s);
			return ERR;
		}
		if (arg && arglen) {
			const char *comma = memchr(arg, ',', arglen);
			size_t nl = comma ? (size_t)(comma - arg) : arglen;

			e->arg = arena_strndup(&cfg_arena, arg, nl);
			e->arglen = (uint32_t)nl;
			if (comma) {
				long occ;
				char tmp[16];
				size_t ol = arglen - nl - 1;

				if (ol == 0 || ol >= sizeof(tmp)) {
					*err = strfmt("'%s': invalid occurrence", s);
					return ERR;
				}
				memcpy(tmp, comma + 1, ol);
				tmp[ol] = '\0';
				if (cfg_parse_int(tmp, -100, 100, &occ)) {
					*err = strfmt("'%s': invalid occurrence", s);
					return ERR;
				}
				e->occ = (int)occ;
			}
		}
		*rest = arg ? arg + arglen + 1 : s + n;
		if (**rest == ',') {
			*err = strfmt("'%s': sample converters are not implemented yet", s);
			return ERR;
		}
		return OK;
	}
	{
		const char *names[ARRAY_SIZE(fetches)];
		const char *near;
		char word[64];

		for (i = 0; i < ARRAY_SIZE(fetches); i++)
			names[i] = fetches[i].name;
		snprintf(word, sizeof(word), "%.*s", (int)MIN(n, 63), s);
		near = cfg_nearest(word, names, ARRAY_SIZE(names));
		*err = strfmt("unknown sample fetch '%s'%s%s%s", word, near ? "; did you mean '" : "",
			      near ? near : "", near ? "'?" : "");
	}
	return ERR;
}

static bool set_str(struct sample *out, const char *p, uint32_t len)
{
	out->is_ip = 0;
	out->str = p;
	out->len = len;
	return true;
}

static bool set_addr(struct sample *out, const union sockaddr_u *a)
{
	out->is_ip = 1;
	out->family = a->sa.sa_family;
	if (a->sa.sa_family == AF_INET)
		memcpy(out->ip, &a->in.sin_addr, 4);
	else if (a->sa.sa_family == AF_INET6)
		memcpy(out->ip, &a->in6.sin6_addr, 16);
	else
		return false;
	return true;
}

static uint16_t addr_port(const union sockaddr_u *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->in6.sin6_port : a->in.sin_port);
}

/* The query string of rq's URI, after the '?': false when it has none. */
static inline bool uri_query(const struct http_head *rq, const char **q, uint32_t *len)
{
	const char *u = http_ptr(rq, rq->uri);
	const char *mark = memchr(u, '?', rq->uri.len);

	if (!mark)
		return false;
	*q = mark + 1;
	*len = rq->uri.len - (uint32_t)(*q - u);
	return true;
}

/* Finds name=value in a '&'-separated query. */
static bool find_param(const char *q, uint32_t qlen, const char *name, uint32_t nlen,
		       struct sample *out)
{
	uint32_t i = 0;

	while (i < qlen) {
		uint32_t s = i, e;

		while (i < qlen && q[i] != '&' && q[i] != ';')
			i++;
		e = i;
		if (e - s > nlen && !memcmp(q + s, name, nlen) && q[s + nlen] == '=')
			return set_str(out, q + s + nlen + 1, e - s - nlen - 1);
		i++;
	}
	return false;
}

static bool find_cookie(const struct http_head *h, const char *name, uint32_t nlen,
			struct sample *out)
{
	int i = -1;

	while ((i = http_hdr_find(h, "cookie", 6, i + 1)) >= 0) {
		const char *v = http_ptr(h, h->hdr[i].value);
		uint32_t vl = h->hdr[i].value.len, k = 0;

		while (k < vl) {
			uint32_t s, e, eq;

			while (k < vl && (v[k] == ' ' || v[k] == ';'))
				k++;
			s = k;
			while (k < vl && v[k] != ';')
				k++;
			e = k;
			for (eq = s; eq < e && v[eq] != '='; eq++)
				;
			if (eq < e && eq - s == nlen && !memcmp(v + s, name, nlen))
				return set_str(out, v + eq + 1, e - eq - 1);
		}
	}
	return false;
}

static bool set_cstr(struct sample *out, const char *v)
{
	return v && set_str(out, v, (uint32_t)strlen(v));
}

/* The TLS fetches, from the client connection (ssl_fc*, ssl_c*). */
static bool ssl_fetch(const struct conn *c, enum sample_fetch f, struct sample *out)
{
	/* One subject at a time: a sample is used (compared, copied) before the next fetch. */
	static _Thread_local char dn[1024];
	unsigned alen;
	const char *a;
	int n;

	switch (f) {
	case SMP_SSL_FC:
		out->num = ssl_conn_used(c);
		return true;
	case SMP_SSL_FC_SNI:
		return set_cstr(out, ssl_conn_sni(c));
	case SMP_SSL_FC_PROTOCOL:
		return set_cstr(out, ssl_conn_protocol(c));
	case SMP_SSL_FC_CIPHER:
		return set_cstr(out, ssl_conn_cipher(c));
	case SMP_SSL_FC_ALPN:
		a = ssl_conn_alpn(c, &alen);
		return a && set_str(out, a, alen);
	case SMP_SSL_C_USED:
		out->num = ssl_conn_client_cert(c);
		return ssl_conn_used(c);
	case SMP_SSL_C_VERIFY:
		out->num = ssl_conn_verify(c);
		return ssl_conn_used(c);
	case SMP_SSL_C_S_DN:
		n = ssl_conn_client_dn(c, dn, sizeof(dn));
		return n >= 0 && set_str(out, dn, (uint32_t)n);
	default:
		return false;
	}
}

bool sample_fetch(struct stream *s, const struct sample_expr *e, struct sample *out)
{
	const struct http_head *rq = s->txn ? s->txn->req_head : NULL;
	const struct http_head *rs = s->txn ? s->txn->rsp_head : NULL;
	const char *q;
	uint32_t qlen;
	int i;

	memset(out, 0, sizeof(*out));
	switch (e->fetch) {
	case SMP_SRC:
		return set_addr(out, &s->sess->addr);
	case SMP_DST:
		return set_addr(out, &s->sess->local);
	case SMP_SRC_PORT:
		out->num = addr_port(&s->sess->addr);
		return true;
	case SMP_DST_PORT:
		out->num = addr_port(&s->sess->local);
		return true;
	case SMP_METHOD:
		return rq && set_str(out, http_ptr(rq, rq->method), rq->method.len);
	case SMP_PATH:
		if (!rq)
			return false;
		if (rq->path.len == 0)
			return set_str(out, "/", 1);
		return set_str(out, http_ptr(rq, rq->path), rq->path.len);
	case SMP_URL:
		return rq && set_str(out, http_ptr(rq, rq->uri), rq->uri.len);
	case SMP_QUERY:
		return rq && uri_query(rq, &q, &qlen) && set_str(out, q, qlen);
	case SMP_URL_PARAM:
		return rq && uri_query(rq, &q, &qlen) &&
		       find_param(q, qlen, e->arg, e->arglen, out);
	case SMP_COOKIE:
		return rq && find_cookie(rq, e->arg, e->arglen, out);
	case SMP_RES_COOKIE: {
		uint32_t off, len;

		/* The first Set-Cookie that sets the name (Set-Cookie is never a list). */
		i = -1;
		while (rs && (i = http_hdr_find(rs, "set-cookie", 10, i + 1)) >= 0) {
			const char *v = http_ptr(rs, rs->hdr[i].value);

			if (cookie_setcookie_match(v, rs->hdr[i].value.len, e->arg, e->arglen, &off,
						   &len))
				return set_str(out, v + off, len);
		}
		return false;
	}
	case SMP_HDR:
	case SMP_RES_HDR: {
		const struct http_head *h = e->fetch == SMP_HDR ? rq : rs;
		int found = -1, n = 0, want = e->occ;

		if (!h)
			return false;
		/* occ > 0: that occurrence from the first; 0 or < 0: counted from the last. */
		i = -1;
		if (want > 0) {
			while ((i = http_hdr_find(h, e->arg, e->arglen, i + 1)) >= 0)
				if (++n == want) {
					found = i;
					break;
				}
		} else {
			int all[64], cnt = 0;

			while ((i = http_hdr_find(h, e->arg, e->arglen, i + 1)) >= 0 && cnt < 64)
				all[cnt++] = i;
			/* 0 and -1 mean the last occurrence, -2 the one before... */
			if (want == 0)
				want = -1;
			if (cnt && -want <= cnt)
				found = all[cnt + want];
		}
		if (found < 0)
			return false;
		return set_str(out, http_ptr(h, h->hdr[found].value), h->hdr[found].value.len);
	}
	case SMP_STATUS:
		if (!rs)
			return false;
		out->num = rs->status;
		return true;
	case SMP_BE_NAME:
		return s->be && set_str(out, s->be->name, (uint32_t)strlen(s->be->name));
	case SMP_FE_NAME:
		return set_str(out, s->fe->name, (uint32_t)strlen(s->fe->name));
	case SMP_SRV_NAME:
		return s->srv && set_str(out, s->srv->name, (uint32_t)strlen(s->srv->name));
	case SMP_REQ_VER:
		if (!rq)
			return false;
		return set_str(out, rq->minor ? "1.1" : "1.0", 3);
	case SMP_ALWAYS_TRUE:
		out->num = 1;
		return true;
	case SMP_ALWAYS_FALSE:
		return false;
	case SMP_STR:
		return set_str(out, e->arg, e->arglen);
	default:
		return ssl_fetch(&s->sess->cli, e->fetch, out);
	}
	return false;
}

size_t sample_to_str(const struct sample *smp, char *out, size_t cap)
{
	size_t n;

	if (!cap)
		return 0;
	if (smp->is_ip) {
		if (!inet_ntop(smp->family, smp->ip, out, (socklen_t)cap))
			return 0;
		return strlen(out);
	}
	if (smp->str) {
		n = MIN((size_t)smp->len, cap - 1);
		memcpy(out, smp->str, n);
		out[n] = '\0';
		return n;
	}
	n = (size_t)snprintf(out, cap, "%lld", (long long)smp->num);
	return MIN(n, cap - 1);
}

/* ---- log-format ---- */

static const struct {
	const char *name;
	enum lf_kind kind;
} lfvars[] = {
	{"ci", LF_CLIENT_IP},   {"cp", LF_CLIENT_PORT}, {"fi", LF_FRONT_IP},
	{"fp", LF_FRONT_PORT},  {"bi", LF_BACK_SRC_IP}, {"bp", LF_BACK_SRC_PORT},
	{"si", LF_SRV_IP},      {"sp", LF_SRV_PORT},    {"t", LF_DATE},
	{"tr", LF_DATE_TR},     {"trg", LF_DATE_TR},    {"trl", LF_DATE_TR},
	{"T", LF_DATE},         {"Tl", LF_DATE},        {"Ts", LF_TS},
	{"ms", LF_MS},          {"f", LF_FRONTEND},     {"ft", LF_FRONTEND_XPRT},
	{"b", LF_BACKEND},      {"s", LF_SERVER},       {"ST", LF_STATUS},
	{"B", LF_BYTES},        {"U", LF_BYTES_UP},     {"Tq", LF_TQ},
	{"TR", LF_TQ},          {"Tw", LF_TW},          {"Tc", LF_TC},
	{"Tr", LF_TR},          {"Ta", LF_TA},          {"Tt", LF_TT},
	{"Th", LF_TH},          {"Ti", LF_TI},          {"r", LF_REQ_LINE},
	{"HM", LF_METHOD},      {"HU", LF_URI},         {"HP", LF_PATH},
	{"HPO", LF_PATH},       {"HQ", LF_URI},         {"HV", LF_VERSION},
	{"ts", LF_TERM},        {"tsc", LF_TERM_COOKIE}, {"hr", LF_CAP_REQ},
	{"hrl", LF_CAP_REQ},    {"hs", LF_CAP_RES},     {"hsl", LF_CAP_RES},
	{"ac", LF_CONN_ACT},    {"fc", LF_CONN_FE},     {"bc", LF_CONN_BE},
	{"sc", LF_CONN_SRV},    {"rc", LF_RETRIES},     {"sq", LF_QUEUE_SRV},
	{"bq", LF_QUEUE_BE},    {"pid", LF_PID},        {"rt", LF_REQ_COUNTER},
	{"H", LF_HOSTNAME},     {"ID", LF_UNIQUE_ID},   {"CC", LF_UNIQUE_ID},
	{"CS", LF_UNIQUE_ID},   {"o", LF_UNIQUE_ID},    {"lc", LF_UNIQUE_ID},
	{"rid", LF_UNIQUE_ID},  {"sslc", LF_SSL_CIPHER}, {"sslv", LF_SSL_VERSION},
};

static void lf_add(struct logformat *lf, const struct lf_node *n)
{
	lf->nodes = arena_grow(&cfg_arena, lf->nodes, (size_t)lf->n, (size_t)lf->n + 1,
			       sizeof(*n));
	lf->nodes[lf->n++] = *n;
}

static void lf_lit(struct logformat *lf, const char *s, size_t len)
{
	struct lf_node n = {.kind = LF_LIT};

	if (!len)
		return;
	n.lit = arena_strndup(&cfg_arena, s, len);
	n.litlen = (uint32_t)len;
	lf_add(lf, &n);
}

int logformat_parse(struct cfg_ctx *c, const char *s, struct logformat *lf)
{
	const char *p = s, *lit = s;

	memset(lf, 0, sizeof(*lf));
	lf->src = arena_strdup(&cfg_arena, s);
	while (*p) {
		struct lf_node n = {0};
		size_t k;

		if (*p != '%') {
			p++;
			continue;
		}
		lf_lit(lf, lit, (size_t)(p - lit));
		p++;
		if (*p == '%') {
			lf_lit(lf, "%", 1);
			lit = ++p;
			continue;
		}
		if (*p == '{') {
			const char *close = strchr(p, '}');

			if (!close) {
				cfg_err(c, "log-format '%s': missing '}'", s);
				return ERR;
			}
			if (memmem(p, (size_t)(close - p), "+Q", 2))
				n.quote = 1;
			p = close + 1;
		}
		if (*p == '[') {
			const char *rest;
			char *err = NULL;
			const char *close = strchr(p, ']');

			if (!close) {
				cfg_err(c, "log-format '%s': missing ']'", s);
				return ERR;
			}
			{
				char expr[256];
				size_t el = (size_t)(close - p - 1);

				if (el >= sizeof(expr)) {
					cfg_err(c, "log-format: sample expression too long");
					return ERR;
				}
				memcpy(expr, p + 1, el);
				expr[el] = '\0';
				if (sample_expr_parse(expr, &n.smp, &rest, &err)) {
					cfg_err(c, "log-format '%s': %s", s, err);
					free(err);
					return ERR;
				}
				if (*rest) {
					cfg_err(c, "log-format '%s': unexpected '%s' in sample", s, rest);
					return ERR;
				}
			}
			n.kind = LF_SAMPLE;
			lf_add(lf, &n);
			lit = p = close + 1;
			continue;
		}
		{
			size_t len = 0, best = 0;
			int bi = -1;

			while (isalnum((unsigned char)p[len]))
				len++;
			/* Longest variable name that is a prefix of what follows ("%Tr" vs "%T"). */
			for (k = 0; k < ARRAY_SIZE(lfvars); k++) {
				size_t vl = strlen(lfvars[k].name);

				if (vl <= len && vl > best && !strncmp(p, lfvars[k].name, vl) &&
				    vl == len) {
					best = vl;
					bi = (int)k;
				}
			}
			if (bi < 0) {
				const char *names[ARRAY_SIZE(lfvars)];
				char word[32];
				const char *near;

				for (k = 0; k < ARRAY_SIZE(lfvars); k++)
					names[k] = lfvars[k].name;
				snprintf(word, sizeof(word), "%.*s", (int)MIN(len, 31), p);
				near = cfg_nearest(word, names, ARRAY_SIZE(names));
				cfg_err(c, "log-format: unknown variable '%%%s'%s%s%s", word,
					near ? "; did you mean '%" : "", near ? near : "",
					near ? "'?" : "");
				return ERR;
			}
			n.kind = lfvars[bi].kind;
			lf_add(lf, &n);
			lit = p = p + best;
		}
	}
	lf_lit(lf, lit, (size_t)(p - lit));
	return OK;
}

/* Appends helpers that never overflow out (cap includes the final NUL). */
struct lfout {
	char *p;
	size_t len, cap;
};

static void put(struct lfout *o, const char *s, size_t n)
{
	if (o->len + n >= o->cap)
		n = o->cap - 1 - o->len;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void putc_(struct lfout *o, char ch)
{
	put(o, &ch, 1);
}

static void putnum(struct lfout *o, long long v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%lld", v);

	put(o, tmp, (size_t)n);
}

static void putaddr(struct lfout *o, const union sockaddr_u *a, bool port)
{
	char tmp[INET6_ADDRSTRLEN];

	if (a->sa.sa_family != AF_INET && a->sa.sa_family != AF_INET6) {
		putc_(o, '-');
		return;
	}
	if (port) {
		putnum(o, addr_port(a));
		return;
	}
	if (inet_ntop(a->sa.sa_family,
		      a->sa.sa_family == AF_INET ? (const void *)&a->in.sin_addr
						 : (const void *)&a->in6.sin6_addr,
		      tmp, sizeof(tmp)))
		put(o, tmp, strlen(tmp));
}

static void putdate(struct lfout *o, uint64_t wall)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)(wall / 1000000);
	struct tm tm;
	char tmp[40];
	int n;

	localtime_r(&t, &tm);
	n = snprintf(tmp, sizeof(tmp), "%02d/%s/%04d:%02d:%02d:%02d.%03u", tm.tm_mday,
		     mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (unsigned)((wall / 1000) % 1000));
	put(o, tmp, (size_t)n);
}

/* A timer in ms from a to b, or -1 when a phase did not happen. */
static long long span_ms(uint64_t a, uint64_t b)
{
	if (!a || !b || b < a)
		return -1;
	return (long long)((b - a) / 1000);
}

static int sum_atomic(const atomic_int *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}


size_t logformat_render(const struct logformat *lf, struct stream *s, char *out, size_t cap)
{
	struct lfout o = {.p = out, .len = 0, .cap = cap};
	const struct txn *t = s->txn;
	int i;
	bool swallow_space = false;

	if (!cap)
		return 0;
	for (i = 0; i < lf->n; i++) {
		const struct lf_node *n = &lf->nodes[i];
		size_t start = o.len;

		if (n->quote)
			putc_(&o, '"');
		switch (n->kind) {
		case LF_LIT:
			if (swallow_space && n->litlen && n->lit[0] == ' ')
				put(&o, n->lit + 1, n->litlen - 1);
			else
				put(&o, n->lit, n->litlen);
			break;
		case LF_SAMPLE: {
			struct sample smp;
			char tmp[512];
			size_t l;

			if (sample_fetch(s, &n->smp, &smp)) {
				l = sample_to_str(&smp, tmp, sizeof(tmp));
				put(&o, tmp, l);
			} else if (!lf->empty_missing) {
				putc_(&o, '-');
			}
			break;
		}
		case LF_CLIENT_IP: putaddr(&o, &s->sess->addr, false); break;
		case LF_CLIENT_PORT: putaddr(&o, &s->sess->addr, true); break;
		case LF_FRONT_IP: putaddr(&o, &s->sess->local, false); break;
		case LF_FRONT_PORT: putaddr(&o, &s->sess->local, true); break;
		case LF_BACK_SRC_IP:
		case LF_BACK_SRC_PORT:
			if (s->sc)
				putaddr(&o, &s->sc->local, n->kind == LF_BACK_SRC_PORT);
			else
				putc_(&o, '-');
			break;
		case LF_SRV_IP:
		case LF_SRV_PORT:
			if (s->srv) {
				struct sockaddr_storage sa;

				server_addr(s->srv, &sa, NULL, NULL);
				putaddr(&o, (const union sockaddr_u *)&sa, n->kind == LF_SRV_PORT);
			} else
				putc_(&o, '-');
			break;
		case LF_DATE:
		case LF_DATE_TR:
			putdate(&o, t ? t->wall_start : s->sess->wall_accept);
			break;
		case LF_TS:
			putnum(&o, (long long)((t ? t->wall_start : s->sess->wall_accept) / 1000000));
			break;
		case LF_MS:
			putnum(&o, (long long)(((t ? t->wall_start : s->sess->wall_accept) / 1000) % 1000));
			break;
		case LF_FRONTEND: put(&o, s->fe->name, strlen(s->fe->name)); break;
		case LF_FRONTEND_XPRT:
			put(&o, s->fe->name, strlen(s->fe->name));
			if (ssl_conn_used(&s->sess->cli))
				putc_(&o, '~');
			break;
		case LF_BACKEND:
			if (s->be)
				put(&o, s->be->name, strlen(s->be->name));
			else
				put(&o, s->fe->name, strlen(s->fe->name));
			break;
		case LF_SERVER:
			if (s->srv)
				put(&o, s->srv->name, strlen(s->srv->name));
			else
				put(&o, "<NOSRV>", 7);
			break;
		case LF_STATUS: putnum(&o, t ? t->status : 0); break;
		case LF_BYTES: putnum(&o, t ? (long long)t->bytes_out : 0); break;
		case LF_BYTES_UP: putnum(&o, t ? (long long)t->bytes_in : 0); break;
		case LF_TQ: putnum(&o, t ? span_ms(t->t_start, t->t_head) : -1); break;
		case LF_TW: putnum(&o, t ? span_ms(t->t_head, t->t_queue) : -1); break;
		case LF_TC: putnum(&o, t ? span_ms(t->t_queue, t->t_conn) : -1); break;
		case LF_TR: putnum(&o, t ? span_ms(t->t_conn, t->t_rsp) : -1); break;
		case LF_TA: putnum(&o, t ? span_ms(t->t_start, t->t_end) : -1); break;
		case LF_TT: putnum(&o, span_ms(s->sess->t_accept, t && t->t_end ? t->t_end : now_us)); break;
		case LF_TH: /* the handshake counts for the first request of a connection only */
			putnum(&o, s->sess->nreq <= 1 && s->sess->t_ready
					   ? span_ms(s->sess->t_accept, s->sess->t_ready) : 0);
			break;
		case LF_TI: putnum(&o, t ? span_ms(s->sess->t_idle, t->t_start) : -1); break;
		case LF_REQ_LINE:
			if (t && t->reqline_len)
				put(&o, t->reqline, t->reqline_len);
			else
				put(&o, "<BADREQ>", 8);
			break;
		case LF_METHOD:
		case LF_URI:
		case LF_PATH:
		case LF_VERSION: {
			/* Split the captured request line: METHOD SP URI SP VERSION */
			const char *rl = t ? t->reqline : "";
			size_t rlen = t ? t->reqline_len : 0;
			const char *sp1 = memchr(rl, ' ', rlen);
			const char *sp2 = sp1 ? memrchr(sp1 + 1, ' ', rlen - (size_t)(sp1 + 1 - rl)) : NULL;

			if (!sp1) {
				putc_(&o, '-');
				break;
			}
			if (n->kind == LF_METHOD) {
				put(&o, rl, (size_t)(sp1 - rl));
			} else if (n->kind == LF_VERSION) {
				if (sp2)
					put(&o, sp2 + 1, rlen - (size_t)(sp2 + 1 - rl));
				else
					putc_(&o, '-');
			} else {
				const char *ue = sp2 ? sp2 : rl + rlen;
				const char *q = n->kind == LF_PATH ? memchr(sp1 + 1, '?', (size_t)(ue - sp1 - 1)) : NULL;

				put(&o, sp1 + 1, (size_t)((q ? q : ue) - sp1 - 1));
			}
			break;
		}
		case LF_TERM:
		case LF_TERM_COOKIE:
			put(&o, t ? t->term : "--", 2);
			if (n->kind == LF_TERM_COOKIE)
				put(&o, "--", 2);
			break;
		case LF_CAP_REQ:
		case LF_CAP_RES: {
			int ncap = n->kind == LF_CAP_REQ ? s->fe->nreq_cap : s->fe->nrsp_cap;

			if (!ncap)
				break;
			putc_(&o, '{');
			if (t)
				put(&o, n->kind == LF_CAP_REQ ? t->cap_req : t->cap_rsp,
				    n->kind == LF_CAP_REQ ? t->cap_req_len : t->cap_rsp_len);
			putc_(&o, '}');
			break;
		}
		case LF_CONN_ACT: putnum(&o, sum_atomic(&keel_actconn)); break;
		case LF_CONN_FE: putnum(&o, sum_atomic(&s->fe->feconn)); break;
		case LF_CONN_BE: putnum(&o, s->be ? sum_atomic(&s->be->beconn) : 0); break;
		case LF_CONN_SRV: putnum(&o, s->srv ? sum_atomic(&s->srv->cur_sess) : 0); break;
		case LF_RETRIES: {
			int used = 0;

			if (t && s->be)
				used = s->be->retries - t->retries;
			putnum(&o, used < 0 ? 0 : used);
			break;
		}
		case LF_QUEUE_SRV: putnum(&o, s->srv ? sum_atomic(&s->srv->nbpend) : 0); break;
		case LF_QUEUE_BE: putnum(&o, s->be ? sum_atomic(&s->be->nbpend) : 0); break;
		case LF_PID: putnum(&o, (long long)getpid()); break;
		case LF_REQ_COUNTER: putnum(&o, s->sess->nreq); break;
		case LF_HOSTNAME: {
			char host[256];

			if (gethostname(host, sizeof(host)) == 0) {
				host[sizeof(host) - 1] = '\0';
				put(&o, host, strlen(host));
			}
			break;
		}
		case LF_UNIQUE_ID: putc_(&o, '-'); break;
		case LF_SSL_CIPHER:
		case LF_SSL_VERSION: {
			const char *v = n->kind == LF_SSL_CIPHER ? ssl_conn_cipher(&s->sess->cli)
								 : ssl_conn_protocol(&s->sess->cli);

			if (v)
				put(&o, v, strlen(v));
			else
				putc_(&o, '-');
			break;
		}
		}
		/* An empty capture block leaves no double space behind (as HAProxy does). */
		swallow_space = (n->kind == LF_CAP_REQ || n->kind == LF_CAP_RES) && o.len == start;
		if (n->quote)
			putc_(&o, '"');
	}
	o.p[o.len] = '\0';
	return o.len;
}

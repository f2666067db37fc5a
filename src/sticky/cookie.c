/* Cookie persistence with HAProxy's semantics: the "cookie" keyword, the text helpers over Cookie
 * and Set-Cookie values, and the report of sticky users moved off a server. The head rewrite that
 * uses them is in src/proxy/http-ana.c (ck_request(), ck_response()); docs/configuration.md,
 * "cookie", describes the behaviour and keel's differences from HAProxy. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <keel/backend.h>
#include <keel/cfg.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/cookie.h>
#include <keel/health.h>
#include <keel/lb.h>
#include <keel/log.h>
#include <keel/proxy.h>
#include <keel/server.h>

/* ---- configuration ---- */

static bool token_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s >= 127 || strchr("()<>@,;:\\\"/[]?={}", *s))
			return false;
	return true;
}

/* Appends "; <what><v>" to *dst (arena). */
static void append_attr(char **dst, const char *what, const char *v)
{
	size_t old = *dst ? strlen(*dst) : 0;
	size_t n = old + 2 + strlen(what) + strlen(v) + 1;
	char *p = arena_alloc(&cfg_arena, n);

	snprintf(p, n, "%s; %s%s", *dst ? *dst : "", what, v);
	*dst = p;
}

/* The options that only set a flag. */
static const struct {
	const char *name;
	unsigned flag;
} option_flags[] = {
	{"indirect", CKO_INDIRECT}, {"nocache", CKO_NOCACHE},
	{"postonly", CKO_POSTONLY}, {"preserve", CKO_PRESERVE},
	{"httponly", CKO_HTTPONLY}, {"secure", CKO_SECURE},
	{"no-moved-header", CKO_NO_MOVED_HDR},
};

/* The flag that option a sets, or 0. */
static unsigned option_flag(const char *a)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(option_flags); i++)
		if (!strcmp(a, option_flags[i].name))
			return option_flags[i].flag;
	return 0;
}

int cookie_kw(struct cfg_ctx *c, int argc, char **argv)
{
	struct cookie_conf *ck = &c->cur->ck;
	const char *why;
	int i, modes = 0;

	if (argc < 2 || !token_ok(argv[1])) {
		cfg_err(c, "'cookie' expects a cookie name (a token: no blank, ';', ',' or '=')");
		return ERR;
	}
	memset(ck, 0, sizeof(*ck));
	ck->name = arena_strdup(&cfg_arena, argv[1]);
	ck->namelen = (uint32_t)strlen(argv[1]);
	ck->mode = CK_PASSIVE;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned flag;

		if (!strcmp(a, "insert") || !strcmp(a, "rewrite") || !strcmp(a, "prefix")) {
			ck->mode = a[0] == 'i' ? CK_INSERT : a[0] == 'r' ? CK_REWRITE : CK_PREFIX;
			modes++;
		} else if ((flag = option_flag(a))) {
			ck->opts |= flag;
		} else if (!strcmp(a, "domain") || !strcmp(a, "attr")) {
			if (!val || !*val || strpbrk(val, ";\r\n") || (a[0] == 'd' && strchr(val, ' '))) {
				cfg_err(c, "cookie: '%s' expects a value without ';' or line breaks", a);
				return ERR;
			}
			if (a[0] == 'd')
				append_attr(&ck->domains, "domain=", val);
			else
				append_attr(&ck->attrs, "", val);
			i++;
		} else if (!strcmp(a, "maxidle") || !strcmp(a, "maxlife")) {
			uint32_t ms;

			if (!val || cfg_parse_time(val, &ms, &why)) {
				cfg_err(c, "cookie: '%s' expects a time (e.g. 30m)", a);
				return ERR;
			}
			if (!strcmp(a, "maxidle"))
				ck->maxidle_s = (ms + 999) / 1000;
			else
				ck->maxlife_s = (ms + 999) / 1000;
			i++;
		} else if (!strcmp(a, "dynamic")) {
			cfg_err(c, "cookie: 'dynamic' cookies are not supported yet; give each server a "
				   "'cookie VALUE'");
			return ERR;
		} else {
			cfg_err(c, "cookie: unknown option '%s' (insert, rewrite, prefix, indirect, "
				   "nocache, postonly, preserve, httponly, secure, domain, maxidle, "
				   "maxlife, attr, no-moved-header)", a);
			return ERR;
		}
	}
	if (modes > 1) {
		cfg_err(c, "cookie: 'insert', 'rewrite' and 'prefix' exclude each other");
		return ERR;
	}
	if ((ck->opts & (CKO_POSTONLY | CKO_NOCACHE)) && ck->mode != CK_INSERT)
		cfg_warn(c, "cookie: 'postonly' and 'nocache' only apply to 'insert'; ignored");
	if ((ck->maxidle_s || ck->maxlife_s) && ck->mode != CK_INSERT) {
		cfg_err(c, "cookie: 'maxidle' and 'maxlife' only work with 'insert'");
		return ERR;
	}
	if ((ck->domains || ck->attrs || (ck->opts & (CKO_HTTPONLY | CKO_SECURE))) &&
	    ck->mode != CK_INSERT)
		cfg_warn(c, "cookie: 'domain', 'attr', 'httponly' and 'secure' only apply to 'insert'");
	return OK;
}

/* ---- text helpers ---- */

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* One "name=value" pair of a Cookie header, from *pos; false at the end. */
struct pair {
	uint32_t n_off, n_len, v_off, v_len;
	bool eq; /* has an '=' */
};

static bool next_pair(const char *v, uint32_t len, uint32_t *pos, struct pair *p)
{
	uint32_t i = *pos, end, eq;

	while (i < len && (is_blank(v[i]) || v[i] == ';'))
		i++;
	if (i >= len)
		return false;
	for (end = i; end < len && v[end] != ';'; end++)
		;
	*pos = end;
	for (eq = i; eq < end && v[eq] != '='; eq++)
		;
	p->n_off = i;
	p->n_len = eq - i;
	while (p->n_len && is_blank(v[i + p->n_len - 1]))
		p->n_len--;
	if (eq == end) {
		/* a cookie without '=' (allowed by some browsers): a name, no value */
		p->v_off = end;
		p->v_len = 0;
		p->eq = false;
		return true;
	}
	p->eq = true;
	p->v_off = eq + 1;
	while (p->v_off < end && is_blank(v[p->v_off]))
		p->v_off++;
	p->v_len = end - p->v_off;
	while (p->v_len && is_blank(v[p->v_off + p->v_len - 1]))
		p->v_len--;
	return true;
}

static bool pair_is(const char *v, const struct pair *p, const char *name, uint32_t nlen)
{
	/* cookie names are case-sensitive */
	return p->n_len == nlen && !memcmp(v + p->n_off, name, nlen);
}

bool cookie_find(const char *v, uint32_t len, const char *name, uint32_t nlen, uint32_t *val_off,
		 uint32_t *val_len)
{
	uint32_t pos = 0;
	struct pair p;

	while (next_pair(v, len, &pos, &p))
		if (pair_is(v, &p, name, nlen)) {
			*val_off = p.v_off;
			*val_len = p.v_len;
			return true;
		}
	return false;
}

uint64_t cookie_user_hash(const char *v, uint32_t len, const char *name, uint32_t nlen)
{
	uint64_t sum = 0;
	uint32_t pos = 0;
	struct pair p;

	/* a sum of the pairs' hashes: the same cookies in another order are the same user */
	while (next_pair(v, len, &pos, &p))
		if (!pair_is(v, &p, name, nlen))
			sum += lb_hash(v + p.n_off,
				       (size_t)(p.eq ? p.v_off + p.v_len - p.n_off : p.n_len));
	return sum;
}

uint32_t cookie_req_rewrite(const char *v, uint32_t len, const char *name, uint32_t nlen, bool strip,
			    char *out)
{
	uint32_t pos = 0, o = 0;
	struct pair p;

	while (next_pair(v, len, &pos, &p)) {
		uint32_t from = p.n_off, n = p.v_off + p.v_len - p.n_off;

		if (pair_is(v, &p, name, nlen)) {
			const char *t = memchr(v + p.v_off, CK_PREFIX_DELIM, p.v_len);

			if (!strip)
				continue;
			if (!p.eq) {
				/* a bare name: kept as it is (the bound on out counts on it) */
				if (o)
					out[o++] = ';', out[o++] = ' ';
				memcpy(out + o, v + from, p.n_len);
				o += p.n_len;
				continue;
			}
			if (o)
				out[o++] = ';', out[o++] = ' ';
			memcpy(out + o, name, nlen);
			o += nlen;
			out[o++] = '=';
			if (t) {
				n = (uint32_t)(v + p.v_off + p.v_len - (t + 1));
				memcpy(out + o, t + 1, n);
			} else {
				n = p.v_len;
				memcpy(out + o, v + p.v_off, n);
			}
			o += n;
			continue;
		}
		if (!p.eq)
			n = p.n_len;
		if (o)
			out[o++] = ';', out[o++] = ' ';
		memcpy(out + o, v + from, n);
		o += n;
	}
	return o;
}

static uint32_t hex32(const char *s, uint32_t len)
{
	uint32_t v = 0, i;

	if (!len || len > 8)
		return 0;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (uint32_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (uint32_t)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (uint32_t)(ch - 'A' + 10);
		else
			return 0;
	}
	return v;
}

void cookie_split(const struct cookie_conf *ck, const char *v, uint32_t len, uint32_t *srvlen,
		  uint32_t *last, uint32_t *first)
{
	const char *d, *d2;

	*last = *first = 0;
	*srvlen = len;
	if (ck->mode == CK_PREFIX) {
		d = memchr(v, CK_PREFIX_DELIM, len);
		*srvlen = d ? (uint32_t)(d - v) : 0;
		return;
	}
	if (ck->mode != CK_INSERT || !(d = memchr(v, CK_DATE_DELIM, len)))
		return;
	*srvlen = (uint32_t)(d - v);
	d++;
	d2 = memchr(d, CK_DATE_DELIM, (size_t)(v + len - d));
	*last = hex32(d, (uint32_t)((d2 ? d2 : v + len) - d));
	if (d2)
		*first = hex32(d2 + 1, (uint32_t)(v + len - d2 - 1));
}

bool cookie_dates_ok(const struct cookie_conf *ck, uint32_t last, uint32_t first, uint32_t now_s)
{
	if (ck->maxidle_s && last) {
		if (last > now_s + CK_FUTURE_S || now_s - MIN(now_s, last) > ck->maxidle_s)
			return false;
	}
	if (ck->maxlife_s && first) {
		if (first > now_s + CK_FUTURE_S || now_s - MIN(now_s, first) > ck->maxlife_s)
			return false;
	}
	return true;
}

struct server *cookie_server(const struct proxy *be, const char *v, uint32_t len)
{
	int i, n = server_count(be);

	if (!len)
		return NULL;
	for (i = 0; i < n; i++) {
		struct server *s = be->srv[i];

		if (s->cookie && strlen(s->cookie) == len && !memcmp(s->cookie, v, len) &&
		    !server_deleted(s))
			return s;
	}
	return NULL;
}

/* Whether a sticky user of srv, in admin drain, is gone: the drain's deadline passed, or the user
 * has been idle for drain-idle. seen_us: its last request (0: not seen since the drain began, so
 * idle since its start at least). A drain without a start (it is ending) keeps everyone. */
static bool drain_gone(const struct server *srv, uint64_t seen_us)
{
	const struct srv_drain *d = &srv->drain;
	uint64_t start = atomic_load_explicit(&d->start_us, memory_order_acquire);
	uint64_t idle = (uint64_t)atomic_load_explicit(&d->idle_ms, memory_order_relaxed) * 1000;
	uint64_t dl = (uint64_t)atomic_load_explicit(&d->deadline_ms, memory_order_relaxed) * 1000;
	uint64_t last = seen_us ? seen_us : start;

	if (!start)
		return false;
	/* this thread's cached clock may be a little behind the one that stamped start or seen */
	if (dl && now_us > start && now_us - start >= dl)
		return true;
	return idle && now_us > last && now_us - last >= idle;
}

enum ck_verdict cookie_verdict(const struct server *srv, bool persist, uint64_t seen_us)
{
	int admin = atomic_load_explicit(&srv->admin, memory_order_relaxed);

	if (server_deleted(srv) || admin == SRV_ADMIN_MAINT)
		return CKV_MAINT;
	/* down: kept by "option persist", or when the backend fails open (and it is not ejected) */
	if (!persist && atomic_load_explicit(&srv->oper, memory_order_relaxed) != SRV_OPER_UP &&
	    !(srv->be->hl && srv->hl && health_fail_open(srv->be) &&
	      !atomic_load(&srv->hl->ejected)))
		return CKV_DOWN;
	/* Drain refuses new users and keeps its sticky users until they go idle (or its deadline);
	 * weight 0 keeps them for ever. */
	if (admin == SRV_ADMIN_DRAIN && drain_gone(srv, seen_us))
		return CKV_GONE;
	return CKV_GO;
}

bool cookie_setcookie_match(const char *v, uint32_t len, const char *name, uint32_t nlen,
			    uint32_t *val_off, uint32_t *val_len)
{
	uint32_t pos = 0;
	struct pair p;

	if (!next_pair(v, len, &pos, &p) || !pair_is(v, &p, name, nlen) || !p.eq)
		return false;
	*val_off = p.v_off;
	*val_len = p.v_len;
	return true;
}

uint32_t cookie_format(const struct cookie_conf *ck, const char *value, uint32_t now_s,
		       uint32_t first, char *out, uint32_t cap)
{
	int n;

	if (!value)
		n = snprintf(out, cap, "%s=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/%s%s%s%s",
			     ck->name, ck->domains ? ck->domains : "",
			     (ck->opts & CKO_HTTPONLY) ? "; HttpOnly" : "",
			     (ck->opts & CKO_SECURE) ? "; Secure" : "", ck->attrs ? ck->attrs : "");
	else if (ck->maxidle_s || ck->maxlife_s)
		/* The last date is always there (HAProxy's rule); the first one with maxlife. */
		n = snprintf(out, cap, "%s=%s%c%x%c%x; path=/%s%s%s%s", ck->name, value, CK_DATE_DELIM,
			     now_s, CK_DATE_DELIM, ck->maxlife_s ? (first ? first : now_s) : 0,
			     ck->domains ? ck->domains : "",
			     (ck->opts & CKO_HTTPONLY) ? "; HttpOnly" : "",
			     (ck->opts & CKO_SECURE) ? "; Secure" : "", ck->attrs ? ck->attrs : "");
	else
		n = snprintf(out, cap, "%s=%s; path=/%s%s%s%s", ck->name, value,
			     ck->domains ? ck->domains : "",
			     (ck->opts & CKO_HTTPONLY) ? "; HttpOnly" : "",
			     (ck->opts & CKO_SECURE) ? "; Secure" : "", ck->attrs ? ck->attrs : "");
	if (n < 0 || (uint32_t)n >= cap)
		return 0;
	return (uint32_t)n;
}

/* ---- the report ---- */

/* Why a user left a draining server: its deadline passed, or the user was idle (cookie_verdict()
 * decided it; the deadline is checked again here, a few microseconds later at most). */
static void drain_why(const struct server *from, char *why, size_t len)
{
	uint64_t start = atomic_load(&from->drain.start_us);
	uint32_t dl = atomic_load(&from->drain.deadline_ms);

	if (dl && start && now_us > start && now_us - start >= (uint64_t)dl * 1000)
		snprintf(why, len, "server in DRAIN for drain-deadline (%u ms)", dl);
	else
		snprintf(why, len, "server in DRAIN, user idle for drain-idle (%u ms) or more",
			 atomic_load(&from->drain.idle_ms));
}

void cookie_report_moved(struct server *from, const struct server *to, bool drained, int tid)
{
	struct cookie_conf *ck = &from->be->ck;
	uint64_t next = atomic_load_explicit(&ck->log_next_us, memory_order_relaxed);
	struct health_view v;
	char why[CHK_REASON_LEN + 48];
	unsigned skipped;

	CTR_INC(from->ctr[tid].sticky_moves);
	if (now_us < next ||
	    !atomic_compare_exchange_strong(&ck->log_next_us, &next, now_us + 1000000)) {
		atomic_fetch_add_explicit(&ck->log_skipped, 1, memory_order_relaxed);
		return;
	}
	skipped = atomic_exchange_explicit(&ck->log_skipped, 0, memory_order_relaxed);
	if (drained) {
		drain_why(from, why, sizeof(why));
	} else if (server_deleted(from)) {
		snprintf(why, sizeof(why), "server deleted");
	} else if (atomic_load(&from->admin) == SRV_ADMIN_MAINT) {
		snprintf(why, sizeof(why), "server in MAINT");
	} else {
		health_view(from, &v);
		if (atomic_load(&from->oper) == SRV_OPER_UP && !health_srv_out(from))
			snprintf(why, sizeof(why), "server %s, request redispatched after a failed try",
				 v.state);
		else
			snprintf(why, sizeof(why), "server %s (%s)", v.state,
				 v.why[0] ? v.why : "no reason recorded");
	}
	keel_log(LOG_LVL_NOTICE, "sticky user moved from %s/%s to %s/%s: %s%s%.0u%s", from->be->name,
		 from->name, to->be->name, to->name, why, skipped ? " (" : "", skipped,
		 skipped ? " more moves in the last second not logged)" : "");
}

static const struct cfg_kw cookie_kws[] = {
	{"cookie", CFG_S_BE, cookie_kw, 0, NULL},
	CFG_KW_END,
};

const struct cfg_module cookie_module = {
	.name = "cookie",
	.keywords = cookie_kws,
};

